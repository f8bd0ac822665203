//! `AuthUser`: the authenticated caller, extracted from `Authorization: Bearer <jwt>`.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};

use crate::domain::{SessionId, UserId};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: UserId,
    pub jti: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Whether the account has the admin role (read with the revocation check).
    pub is_admin: bool,
    /// The account's session generation the token was issued in (a password reset moves it on).
    pub gen: i64,
    /// The session the token belongs to.
    pub session: SessionId,
}

/// The token of an `Authorization: Bearer` header, if any.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    bearer(req).ok()
}

/// The token of the `Authorization: Bearer` header, or a 401 that says what is wrong with the
/// header: missing, another scheme than Bearer, or no token after it.
pub fn bearer(req: &HttpRequest) -> Result<&str, ApiError> {
    const HOW: &str = "send 'Authorization: Bearer <token>'";
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::Unauthorized(format!(
            "missing Authorization header: {HOW}"
        )));
    };
    let value = value
        .to_str()
        .map_err(|_| {
            ApiError::Unauthorized(format!(
                "malformed Authorization header (not visible ASCII): {HOW}"
            ))
        })?
        .trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Name the scheme only when it looks like one: never echo a credential.
        let named = scheme.len() <= 20 && scheme.bytes().all(|b| b.is_ascii_alphanumeric());
        return Err(ApiError::Unauthorized(if named && !token.is_empty() {
            format!("the Authorization header uses the '{scheme}' scheme, not Bearer: {HOW}")
        } else {
            format!("the Authorization header is not a Bearer token: {HOW}")
        }));
    }
    match token.trim() {
        "" => Err(ApiError::Unauthorized(format!(
            "missing token after 'Bearer': {HOW}"
        ))),
        token => Ok(token),
    }
}

/// The application state and the bearer token of `req`: what both extractors start from.
fn state_and_token(req: &HttpRequest) -> Result<(web::Data<AppState>, String), ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("application state missing"))?;
    let token = bearer(req)?.to_owned();
    Ok((state, token))
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = state_and_token(req);
        Box::pin(async move {
            let (state, token) = found?;
            crate::services::accounts::authenticate(&state, &token).await
        })
    }
}

/// The caller of a heavy list endpoint (see `services::heavy`): authenticated as by [`AuthUser`],
/// except that the token's signature and expiry are checked first and, when that user's list
/// budget is in debt, the request gets 429 before the database is asked. A client that keeps
/// asking for its lists while refused costs no query per refusal.
#[derive(Debug, Clone)]
pub struct ListCaller(pub AuthUser);

impl FromRequest for ListCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = state_and_token(req);
        Box::pin(async move {
            let (state, token) = found?;
            if let Some(user) = state.tokens.verify(&token).and_then(|c| c.user_id()) {
                state.heavy.check_budget(user)?;
            }
            crate::services::accounts::authenticate(&state, &token)
                .await
                .map(ListCaller)
        })
    }
}
