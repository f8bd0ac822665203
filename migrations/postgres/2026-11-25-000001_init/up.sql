-- Accounts. `username_key` is the case-folded username that uniqueness and lookups use.
CREATE TABLE users (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username TEXT NOT NULL,
    username_key TEXT NOT NULL,
    display_name TEXT NOT NULL,
    display_name_key TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX users_username_key ON users (username_key);

-- One room per unordered pair of users: (user_low, user_high) with user_low < user_high is unique.
-- `last_seq` is the newest message's seq (0 when empty); `last_message_id` orders conversations by recency.
CREATE TABLE rooms (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_low BIGINT NOT NULL REFERENCES users (id),
    user_high BIGINT NOT NULL REFERENCES users (id),
    last_seq BIGINT NOT NULL DEFAULT 0,
    last_message_id BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    CHECK (user_low < user_high)
);
CREATE UNIQUE INDEX rooms_pair_key ON rooms (user_low, user_high);
CREATE INDEX rooms_user_high_idx ON rooms (user_high);

-- Membership and each member's read marker (the highest seq they have read).
CREATE TABLE room_members (
    room_id BIGINT NOT NULL REFERENCES rooms (id),
    user_id BIGINT NOT NULL REFERENCES users (id),
    read_up_to BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user_idx ON room_members (user_id, room_id);

-- A user's contacts list (owner -> contact), with the room the two share.
CREATE TABLE contacts (
    owner_id BIGINT NOT NULL REFERENCES users (id),
    contact_id BIGINT NOT NULL REFERENCES users (id),
    room_id BIGINT NOT NULL REFERENCES rooms (id),
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (owner_id, contact_id)
);
CREATE INDEX contacts_contact_idx ON contacts (contact_id, owner_id);

CREATE TABLE messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id BIGINT NOT NULL REFERENCES rooms (id),
    seq BIGINT NOT NULL,
    sender_id BIGINT NOT NULL REFERENCES users (id),
    client_msg_id TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX messages_room_seq_key ON messages (room_id, seq);
CREATE UNIQUE INDEX messages_room_sender_client_key ON messages (room_id, sender_id, client_msg_id);

-- Tokens revoked by logout, kept until they would have expired anyway.
CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id),
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX revoked_tokens_expires_idx ON revoked_tokens (expires_at);
