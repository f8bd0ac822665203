DROP TABLE audit_log;
DROP INDEX messages_created_idx;
DROP INDEX messages_sender_idx;
ALTER TABLE messages DROP COLUMN deleted_at;
DROP INDEX users_admin_idx;
ALTER TABLE users DROP COLUMN last_seen_at;
ALTER TABLE users DROP COLUMN deactivated_at;
ALTER TABLE users DROP COLUMN is_admin;
