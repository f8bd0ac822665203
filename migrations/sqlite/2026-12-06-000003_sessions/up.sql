-- Sessions: one row per token issued by register or login. A token names its session (`sid`
-- claim) and every request checks that the row still exists, so ending a session (logout,
-- revocation, a password change, account deletion, deactivation, a password reset) is deleting
-- its row, and takes effect on every instance at once. `last_seen_at` is moved on at most once a
-- minute per session; `expires_at` is the token's expiry (expired rows are purged hourly).
-- Tokens issued before this migration name no session and are refused: users sign in again.
-- (`revoked_tokens` is no longer written; it stays for instances of the previous version during
-- a rolling upgrade.)
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    user_agent TEXT,
    ip TEXT
);
CREATE INDEX sessions_user_idx ON sessions (user_id, last_seen_at);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- Set when the user deleted their account: the row stays (messages and rooms name it) under the
-- username `~deleted-<id>` and the display name "Deleted user"; `deactivated_at` is set too.
ALTER TABLE users ADD COLUMN deleted_at TIMESTAMP;
