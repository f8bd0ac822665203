-- Administration: roles, deactivation, last-seen, message tombstones and the audit log.
ALTER TABLE users ADD COLUMN is_admin BOOLEAN NOT NULL DEFAULT FALSE;
-- Set while the account is deactivated: it cannot log in and its tokens stop working.
ALTER TABLE users ADD COLUMN deactivated_at TIMESTAMP;
-- Updated on login and when the user's first WebSocket opens or last one closes.
ALTER TABLE users ADD COLUMN last_seen_at TIMESTAMP;
CREATE INDEX users_admin_idx ON users (is_admin);

-- A deleted message is a tombstone: body erased, `deleted_at` set, seq kept.
ALTER TABLE messages ADD COLUMN deleted_at TIMESTAMP;
-- Per-user message counts and "messages in the last hour/day" for the admin screens.
CREATE INDEX messages_sender_idx ON messages (sender_id);
CREATE INDEX messages_created_idx ON messages (created_at);

-- Every administrative action. `actor_id` is NULL for the command line (`letschat admin`).
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    actor_id BIGINT REFERENCES users (id),
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id BIGINT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id, id);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, id);
