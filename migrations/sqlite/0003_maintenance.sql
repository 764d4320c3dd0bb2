-- One-off data changes done in Rust after the schema migrations (a key
-- recomputed under new rules, say): each task's name once it has run.
CREATE TABLE maintenance (
    task    TEXT PRIMARY KEY NOT NULL,
    done_at BIGINT NOT NULL
);
