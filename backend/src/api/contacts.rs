//! `/api/contacts`.

use actix_web::{delete, get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::dto::ContactDto;
use super::json::ApiJson;
use crate::auth::AuthUser;
use crate::domain::{SearchQuery, UserId};
use crate::error::{ApiResult, ErrorBody};
use crate::services::contacts;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
pub struct AddContactRequest {
    /// The username to add (case-insensitive).
    #[schema(example = "bob")]
    pub username: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactSearchQuery {
    /// Text to find in the contacts' usernames and display names, case-insensitively.
    #[param(min_length = 1, max_length = 64, pattern = "\\S")]
    pub q: String,
}

/// The caller's contacts, most recent conversation first.
#[utoipa::path(
    tag = "contacts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Contacts, most recent conversation first", body = Vec<ContactDto>),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
    )
)]
#[get("/contacts")]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
) -> ApiResult<web::Json<Vec<ContactDto>>> {
    let found = contacts::list(&state, user.id, None).await?;
    Ok(web::Json(found.into_iter().map(Into::into).collect()))
}

/// Filter the caller's own contacts by username or display name.
#[utoipa::path(
    tag = "contacts",
    security(("bearer" = [])),
    params(ContactSearchQuery),
    responses(
        (status = 200, description = "Matching contacts, most recent conversation first", body = Vec<ContactDto>),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 422, description = "Missing or invalid `q`", body = ErrorBody),
    )
)]
#[get("/contacts/search")]
pub async fn search(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<ContactSearchQuery>,
) -> ApiResult<web::Json<Vec<ContactDto>>> {
    let q = SearchQuery::parse(&query.q)?;
    let found = contacts::list(&state, user.id, Some(q)).await?;
    Ok(web::Json(found.into_iter().map(Into::into).collect()))
}

/// Add a contact by username; creates the room the two share if it does not exist yet.
#[utoipa::path(
    tag = "contacts",
    security(("bearer" = [])),
    request_body = AddContactRequest,
    responses(
        (status = 201, description = "Contact added", body = ContactDto),
        (status = 200, description = "Already a contact", body = ContactDto),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 404, description = "No user has this username", body = ErrorBody),
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
    let (contact, created) = contacts::add(&state, user.id, body.0.username).await?;
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
    params(("user_id" = i64, Path, description = "The contact's user id")),
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
