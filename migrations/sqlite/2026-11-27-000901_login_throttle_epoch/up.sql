-- Moved on by an administrator's password reset: failed-login counts of an earlier epoch no longer throttle the account (on every instance).
ALTER TABLE users ADD COLUMN login_throttle_epoch BIGINT NOT NULL DEFAULT 0;
