//! Shared application state, handed to every handler.

use std::sync::Arc;

use tokio::sync::watch;

use crate::auth::{AuthRateLimits, PasswordHasher, TokenService};
use crate::broker::SharedBroker;
use crate::config::Config;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::presence::{OpenSessions, Presence};
use crate::services::heavy::HeavyLimiter;
use crate::services::uploads::Uploads;
use crate::services::writer::Writer;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub hasher: PasswordHasher,
    pub tokens: TokenService,
    pub limits: AuthRateLimits,
    pub presence: Presence,
    /// The sign-in sessions with a WebSocket open on this instance, kept seen while it is.
    pub open_sessions: OpenSessions,
    /// Several instances: who is online on any of them (see [`crate::cluster_presence`]).
    pub cluster_presence: Option<crate::cluster_presence::ClusterPresence>,
    pub broker: SharedBroker,
    pub writer: Writer,
    /// Per-user turns on the heavy list endpoints.
    pub heavy: HeavyLimiter,
    /// Per-user allowance of message changes.
    pub changes: crate::services::change_limit::ChangeLimiter,
    /// Uploads: the blob store, the upload threads and the link signer.
    pub uploads: Uploads,
    pub config: Arc<Config>,
    /// What the metrics endpoint exports (no-op handles when it is off).
    pub metrics: Arc<Metrics>,
    /// Becomes true when the server is shutting down: WebSocket sessions close with 1001.
    pub shutdown: watch::Receiver<bool>,
}
