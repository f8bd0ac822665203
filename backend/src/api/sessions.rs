//! `/api/sessions`: the caller's sign-in sessions (one per token), and ending them.

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::domain::SessionId;
use crate::error::{ApiResult, ErrorBody};
use crate::services::account_sessions::{self, SessionView};
use crate::state::AppState;

/// A sign-in session: one per token, opened by a register or a login.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Session)]
pub struct SessionDto {
    /// Random, stable for the session's life (at most 2^53 − 1).
    pub id: SessionId,
    pub created_at: DateTime<Utc>,
    /// The last activity of the session's token, to the minute: a request made with it, or a
    /// WebSocket opened with it, which counts as activity for as long as it stays open. It is
    /// recorded at most once a minute.
    pub last_seen_at: DateTime<Utc>,
    /// The `User-Agent` of the register or login that opened it (at most 256 characters).
    #[schema(
        required = true,
        max_length = 256,
        example = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
    )]
    pub user_agent: Option<String>,
    /// The address the register or login came from, as the server saw it.
    #[schema(required = true, example = "203.0.113.7")]
    pub ip: Option<String>,
    /// Whether this is the session of the token that asked.
    pub current: bool,
}

fn utc(t: chrono::NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}

impl From<SessionView> for SessionDto {
    fn from(v: SessionView) -> Self {
        SessionDto {
            id: v.row.id,
            created_at: utc(v.row.created_at),
            last_seen_at: utc(v.row.last_seen_at),
            user_agent: v.row.user_agent,
            ip: v.row.ip,
            current: v.current,
        }
    }
}

/// The caller's live sessions (tokens not expired, sessions not ended), most recently seen
/// first; at most the 1,000 most recent. A session is seen when its token makes a request, and
/// for as long as a WebSocket opened with it stays open (`last_seen_at` moves on about once a
/// minute meanwhile), so a device that only listens does not look idle.
#[utoipa::path(
    operation_id = "list_sessions",
    tag = "sessions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's sessions, `current` true for the caller's own", body = Vec<SessionDto>),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
    )
)]
#[get("/sessions")]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
) -> ApiResult<web::Json<Vec<SessionDto>>> {
    let sessions = account_sessions::list(&state, &user).await?;
    Ok(web::Json(sessions.into_iter().map(Into::into).collect()))
}

/// End one of the caller's sessions: its token stops working at once and its WebSockets close
/// with 1008, on every instance. Ending the caller's own session is a logout.
#[utoipa::path(
    operation_id = "end_session",
    tag = "sessions",
    security(("bearer" = [])),
    params(("session_id" = i64, Path, minimum = 1, description = "The session's id")),
    responses(
        (status = 204, description = "The session ended"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 404, description = "No such session of the caller (another user's, one that already ended, or an id that is not an integer)", body = ErrorBody),
    )
)]
#[delete("/sessions/{session_id}")]
pub async fn end(
    state: web::Data<AppState>,
    // Before the token: `DELETE /api/sessions/revoke-others` is a wrong method (405), not a 401.
    path: web::Path<i64>,
    user: AuthUser,
) -> ApiResult<HttpResponse> {
    account_sessions::end(&state, &user, SessionId(path.into_inner())).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// End every session of the caller but the current one (their tokens stop working, their
/// WebSockets close with 1008, on every instance).
#[utoipa::path(
    operation_id = "revoke_other_sessions",
    tag = "sessions",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Every other session ended"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
    )
)]
#[post("/sessions/revoke-others")]
pub async fn revoke_others(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    account_sessions::end_others(&state, &user).await?;
    Ok(HttpResponse::NoContent().finish())
}
