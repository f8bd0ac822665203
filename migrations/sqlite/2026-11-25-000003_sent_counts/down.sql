CREATE INDEX messages_sender_idx ON messages (sender_id);
ALTER TABLE room_members DROP COLUMN sent_count;
