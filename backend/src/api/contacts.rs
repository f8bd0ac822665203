//! `/api/contacts`.

use actix_web::{delete, get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::dto::ContactDto;
use super::json::{render, ApiJson, ApiQuery, Rendered};
use crate::auth::{AuthUser, ListCaller};
use crate::domain::{SearchQuery, UserId, Username};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::services::contacts;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
pub struct AddContactRequest {
    /// The username to add (case-insensitive). Any string: one that is no account's username
    /// (including one that could not be a username at all) gets 404.
    #[schema(example = "bob")]
    pub username: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactSearchQuery {
    /// Text to find in the contacts' usernames and display names, case-insensitively: 1–64
    /// characters, at least one of them not whitespace, no control characters; trimmed.
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub q: String,
}

/// The caller's contacts, most recent conversation first.
#[utoipa::path(
    operation_id = "list_contacts",
    tag = "contacts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Contacts, most recent conversation first", body = Vec<ContactDto>),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 429, description = "This user already has as many list requests running and waiting as allowed (`rate_limited`, with `Retry-After`); see README, Limits", body = ErrorBody),
    )
)]
#[get("/contacts")]
pub async fn list(state: web::Data<AppState>, ListCaller(user): ListCaller) -> ApiResult<Rendered> {
    let turn = state.heavy.turn(user.id).await?;
    let body = contacts::list(&state, user.id, None, render::<_, ContactDto>).await?;
    turn.charge(body.len());
    Ok(body)
}

/// Filter the caller's own contacts by username or display name.
#[utoipa::path(
    operation_id = "search_contacts",
    tag = "contacts",
    security(("bearer" = [])),
    params(ContactSearchQuery),
    responses(
        (status = 200, description = "Matching contacts, most recent conversation first", body = Vec<ContactDto>),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 422, description = "Missing or invalid `q`", body = ErrorBody),
        (status = 429, description = "This user already has as many list requests running and waiting as allowed (`rate_limited`, with `Retry-After`); see README, Limits", body = ErrorBody),
    )
)]
#[get("/contacts/search")]
pub async fn search(
    state: web::Data<AppState>,
    ListCaller(user): ListCaller,
    query: ApiQuery<ContactSearchQuery>,
) -> ApiResult<Rendered> {
    let q = SearchQuery::parse(&query.0.q)?;
    let turn = state.heavy.turn(user.id).await?;
    let body = contacts::list(&state, user.id, Some(q), render::<_, ContactDto>).await?;
    turn.charge(body.len());
    Ok(body)
}

/// Add a contact by username; creates the room the two share if it does not exist yet.
/// A deactivated account cannot be added (404, as for an unknown username). A user has at most
/// `LETSCHAT_MAX_CONTACTS` contacts (default 5,000): adding one more is 409 `conflict`.
#[utoipa::path(
    tag = "contacts",
    security(("bearer" = [])),
    request_body = AddContactRequest,
    responses(
        (status = 201, description = "Contact added", body = ContactDto),
        (status = 200, description = "Already a contact", body = ContactDto),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 404, description = "No user has this username, or that account is deactivated", body = ErrorBody),
        (status = 409, description = "The caller already has the most contacts allowed (`LETSCHAT_MAX_CONTACTS`, default 5,000); re-adding an existing contact still answers 200", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Missing username, or the caller's own", body = ErrorBody),
    )
)]
#[post("/contacts")]
pub async fn add(
    state: web::Data<AppState>,
    user: AuthUser,
    body: ApiJson<AddContactRequest>,
) -> ApiResult<HttpResponse> {
    // A name that cannot be a username is nobody's: 404 without asking the database (which, on
    // PostgreSQL, refuses text with NUL characters).
    let username = Username::parse(&body.0.username).map_err(|_| {
        ApiError::NotFound(format!(
            "no user is called '{}'",
            body.0.username.escape_debug()
        ))
    })?;
    let (contact, created) = contacts::add(&state, user.id, username.as_str().to_owned()).await?;
    let dto = ContactDto::from(contact);
    Ok(if created {
        HttpResponse::Created().json(dto)
    } else {
        HttpResponse::Ok().json(dto)
    })
}

/// Remove a contact. The room and its history stay.
#[utoipa::path(
    tag = "contacts",
    security(("bearer" = [])),
    params(("user_id" = i64, Path, minimum = 1, description = "The contact's user id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 404, description = "Not one of the caller's contacts", body = ErrorBody),
    )
)]
#[delete("/contacts/{user_id}")]
pub async fn remove(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    contacts::remove(&state, user.id, UserId(path.into_inner())).await?;
    Ok(HttpResponse::NoContent().finish())
}
