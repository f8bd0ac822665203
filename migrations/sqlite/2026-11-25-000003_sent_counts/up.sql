-- How many messages each member sent in the room. The admin screens' per-user message counts
-- add these up instead of counting rows on an index of messages.sender_id, which every insert
-- had to update at a random place (a third of the pages a batch of messages dirtied). The
-- writer keeps the count in the same statement that moves the sender's read marker.
ALTER TABLE room_members ADD COLUMN sent_count BIGINT NOT NULL DEFAULT 0;
UPDATE room_members SET sent_count = (
    SELECT count(*) FROM messages
    WHERE messages.room_id = room_members.room_id AND messages.sender_id = room_members.user_id
);
DROP INDEX messages_sender_idx;
