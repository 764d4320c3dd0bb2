//! All SQL is written as literals with bound parameters. This scans the
//! sources and fails on SQL built with `format!`, `push_str`, `+` or a
//! non-literal argument to `sqlx::query*`.

use std::path::Path;

const KEYWORDS: &[&str] = &[
    "select ",
    "insert into",
    "update ",
    "delete from",
    " where ",
    "drop table",
    "create table",
];

fn looks_like_sql(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    KEYWORDS.iter().any(|k| lower.contains(k))
}

/// The offending lines of one source text.
fn violations(source: &str) -> Vec<String> {
    let building = regex::Regex::new(r#"(format!|write!|push_str|concat!|\+\s*")"#).unwrap();
    let query_call =
        regex::Regex::new(r"sqlx::query(_as|_scalar)?(::<[^>]*>)?\(\s*([^\s])").unwrap();
    let mut out = Vec::new();
    let lines: Vec<&str> = source.lines().collect();
    for (n, line) in lines.iter().enumerate() {
        // A statement may span lines: look at this line and the next two.
        let window = lines[n..lines.len().min(n + 3)].join(" ");
        if building.is_match(line) && looks_like_sql(&window) {
            out.push(format!("{}: {}", n + 1, line.trim()));
        }
    }
    let flat = lines.join("\n");
    for cap in query_call.captures_iter(&flat) {
        if &cap[3] != "\"" && &cap[3] != "r" {
            out.push(format!("non-literal query: {}", &cap[0]));
        }
    }
    out
}

/// Every `.rs` file under `dir`.
pub fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_scanner_catches_sql_built_from_strings() {
    let bad = [
        "let q = format!(\"SELECT * FROM users WHERE name = '{}'\", name);",
        "sql.push_str(\" WHERE id = \");",
        "let q = \"DELETE FROM users\".to_owned() + \" WHERE id = \" + &id;",
        "sqlx::query(&q).execute(pool)",
        "sqlx::query_as::<_, Row>(query_text)",
    ];
    for source in bad {
        assert!(!violations(source).is_empty(), "missed: {source}");
    }
    let good = "sqlx::query(\"SELECT id FROM users WHERE id = $1\").bind(id)";
    assert!(violations(good).is_empty());
}

#[test]
fn no_source_builds_sql_from_strings() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 20);
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        found.extend(
            violations(&text)
                .into_iter()
                .map(|v| format!("{}:{v}", file.display())),
        );
    }
    assert!(
        found.is_empty(),
        "SQL built from strings:\n{}",
        found.join("\n")
    );
}
