//! Integration tests: the real server on a free port with its own temporary database (SQLite,
//! or PostgreSQL when `LETSCHAT_TEST_BACKEND=postgres`), driven over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;
mod nginx_support;
mod support;

mod account;
mod admin;
mod auth;
mod changes;
mod cluster;
mod concurrency;
mod contacts;
mod crash;
mod docs;
mod errors;
mod http_limits;
mod instances;
mod low_findings;
mod messages;
mod metrics;
mod openapi;
mod operator;
mod proxies;
mod rate_limits;
mod rooms;
mod sessions;
mod smoke;
mod uploads;
mod users;
mod web_headers;
mod ws;
mod ws_limits;
mod ws_support;

mod login_abuse;
