-- Tokens carry the generation they were issued in; a password reset moves the user to the next
-- one, which ends every session signed in before it.
ALTER TABLE users ADD COLUMN session_generation BIGINT NOT NULL DEFAULT 0;
