DROP TABLE message_edits;
DROP TABLE reactions;
DROP INDEX messages_room_change_key;
DROP INDEX messages_room_deleted_idx;
ALTER TABLE messages DROP COLUMN change_seq, DROP COLUMN reply_to, DROP COLUMN edited_at;
ALTER TABLE rooms DROP COLUMN last_change_seq;
