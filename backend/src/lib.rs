//! Let's Chat: a self-hostable 1:1 chat server.

pub mod api;
pub mod asyncapi;
pub mod auth;
pub mod background;
pub mod broker;
pub mod cli;
pub mod client_addr;
pub mod cluster_presence;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod http_limits;
pub mod metrics;
pub mod openapi;
pub mod presence;
#[cfg(test)]
mod properties;
pub mod services;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod web;
pub mod ws;
