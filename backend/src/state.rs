//! Shared application state, handed to every handler.

use std::sync::Arc;

use crate::auth::{AuthRateLimits, PasswordHasher, TokenService};
use crate::config::Config;
use crate::db::Db;
use crate::presence::Presence;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub hasher: PasswordHasher,
    pub tokens: TokenService,
    pub limits: AuthRateLimits,
    pub presence: Presence,
    pub config: Arc<Config>,
}
