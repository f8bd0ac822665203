//! `/api/health`.

use actix_web::{get, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` while this instance serves (its database answers), even when the link between
    /// instances is down: it then still serves its own connections and stores every message.
    #[schema(example = "ok")]
    pub status: String,
    pub broker: BrokerHealth,
}

/// How events reach connections.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BrokerHealth {
    /// `in_process` (one instance) or `redis` (one of several instances, `REDIS_URL`).
    #[schema(example = "redis")]
    pub kind: String,
    /// Whether events can cross to the other instances now. Always true for `in_process`;
    /// false while Redis is unreachable (connections on other instances receive what they
    /// missed once it is back).
    #[schema(example = true)]
    pub connected: bool,
}

/// Whether the server and its database answer, and whether events cross between instances.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Healthy", body = Health),
        (status = 503, description = "The database does not answer", body = ErrorBody),
    )
)]
#[get("/health")]
pub async fn health(state: web::Data<AppState>) -> ApiResult<web::Json<Health>> {
    state
        .db
        .run(|c| {
            crate::db::ping(c).map_err(|e| {
                tracing::error!(error = %e, "health check failed");
                crate::error::ApiError::Unavailable
            })
        })
        .await?;
    let broker = match state.broker.cluster_status() {
        None => BrokerHealth {
            kind: "in_process".into(),
            connected: true,
        },
        Some(connected) => BrokerHealth {
            kind: "redis".into(),
            connected,
        },
    };
    Ok(web::Json(Health {
        status: "ok".into(),
        broker,
    }))
}
