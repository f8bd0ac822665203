-- Uploads: one row per `POST /api/uploads`. The bytes live in the blob store under their SHA-256
-- (the same bytes are stored once however many rows name them); the row says who uploaded them,
-- under which name, and what the server found in them. `sent_at` is set when a message first
-- carries the upload: until then it is private to its uploader and swept after 24 h.
CREATE TABLE uploads (
    id TEXT PRIMARY KEY NOT NULL,
    uploader_id BIGINT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    has_thumbnail BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
-- The daily quota: one user's uploads of the last 24 h.
CREATE INDEX uploads_uploader_created_idx ON uploads (uploader_id, created_at);
-- Serving: is this hash still used by a live message? And the sweep: is a blob still named?
CREATE INDEX uploads_sha256_idx ON uploads (sha256);
-- The sweep: unsent uploads by age.
CREATE INDEX uploads_unsent_created_idx ON uploads (created_at) WHERE sent_at IS NULL;

-- The uploads a message carries, in the order sent. No cascade from `uploads`: an upload still
-- attached to a message cannot be deleted (the sweep only deletes those no message carries).
CREATE TABLE message_attachments (
    message_id BIGINT NOT NULL REFERENCES messages (id),
    upload_id TEXT NOT NULL REFERENCES uploads (id),
    position INTEGER NOT NULL,
    PRIMARY KEY (message_id, position)
);
-- Which messages carry this upload (serving, the sweep).
CREATE INDEX message_attachments_upload_idx ON message_attachments (upload_id);
