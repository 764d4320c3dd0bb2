-- The audit log filters by user as "about or by": index the actor too.
CREATE INDEX security_events_actor_id ON security_events (actor_id, at);
