DROP INDEX messages_sender_id_idx;
ALTER TABLE users DROP COLUMN deleted_at;
DROP TABLE sessions;
