//! `/api/users/search`.

use actix_web::{get, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::dto::UserDto;
use super::json::{render, ApiQuery, Rendered};
use crate::auth::ListCaller;
use crate::domain::SearchQuery;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::services::accounts;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserSearchQuery {
    /// Text to find in usernames and display names, case-insensitively: 1–64 characters, at
    /// least one of them not whitespace, no control characters; trimmed.
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub q: String,
    /// At most this many users (1–50, default 20).
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<i64>,
}

/// Find users by username or display name (never the caller, never deactivated accounts).
#[utoipa::path(
    operation_id = "search_users",
    tag = "users",
    security(("bearer" = [])),
    params(UserSearchQuery),
    responses(
        (status = 200, description = "Matching users, by username", body = Vec<UserDto>),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 422, description = "Missing or invalid `q` or `limit`", body = ErrorBody),
        (status = 429, description = "This user already has as many list requests running and waiting as allowed (`rate_limited`, with `Retry-After`); see README, Limits", body = ErrorBody),
    )
)]
#[get("/users/search")]
pub async fn search(
    state: web::Data<AppState>,
    ListCaller(user): ListCaller,
    query: ApiQuery<UserSearchQuery>,
) -> ApiResult<Rendered> {
    let query = query.0;
    let q = SearchQuery::parse(&query.q)?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=50).contains(&limit) {
        return Err(ApiError::validation("limit", "must be between 1 and 50"));
    }
    let turn = state.heavy.turn(user.id).await?;
    let body = accounts::search_users(&state, user.id, q, limit, render::<_, UserDto>).await?;
    turn.charge(body.len());
    Ok(body)
}
