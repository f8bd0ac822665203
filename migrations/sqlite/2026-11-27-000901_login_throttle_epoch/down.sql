ALTER TABLE users DROP COLUMN login_throttle_epoch;
