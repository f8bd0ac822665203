-- Message changes: edits, deletes, replies and reactions. Every change to a message is numbered
-- per room by `change_seq` (1, 2, 3, ... with no gaps, independent of `seq`); `rooms.last_change_seq`
-- is the newest, and each message keeps the change that last touched it (0: never changed).
-- Columns with a constant default: no table rewrite.
ALTER TABLE rooms ADD COLUMN last_change_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE messages
    ADD COLUMN edited_at TIMESTAMP,
    ADD COLUMN reply_to BIGINT REFERENCES messages (id),
    ADD COLUMN change_seq BIGINT NOT NULL DEFAULT 0;
-- `GET /api/rooms/{id}/changes` and `sync` with `changes_after` page this index; a change number is
-- on at most one message.
CREATE UNIQUE INDEX messages_room_change_key ON messages (room_id, change_seq) WHERE change_seq > 0;

-- Deleted messages are not unread: the contacts list counts them after each read marker.
CREATE INDEX messages_room_deleted_idx ON messages (room_id, seq) WHERE deleted_at IS NOT NULL;

-- One row per (message, user, emoji); `id` orders a message's reactions as they were added.
CREATE TABLE reactions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id BIGINT NOT NULL REFERENCES messages (id),
    user_id BIGINT NOT NULL REFERENCES users (id),
    emoji TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX reactions_key ON reactions (message_id, user_id, emoji);

-- Earlier bodies of edited messages (administrators can read them; members see only `edited_at`).
-- Erased with the message when it is deleted.
CREATE TABLE message_edits (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id BIGINT NOT NULL REFERENCES messages (id),
    body TEXT NOT NULL,
    replaced_at TIMESTAMP NOT NULL
);
CREATE INDEX message_edits_message_idx ON message_edits (message_id, id);
