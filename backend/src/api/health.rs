//! `/api/health`.

use actix_web::{get, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// Whether the server and its database answer.
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
    Ok(web::Json(Health {
        status: "ok".into(),
    }))
}
