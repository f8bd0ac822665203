//! Integration tests: the real server on a free port with its own temporary database (SQLite,
//! or PostgreSQL when `LETSCHAT_TEST_BACKEND=postgres`), driven over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod openapi;
mod smoke;
