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
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The application state and the bearer token of `req`: what both extractors start from.
fn state_and_token(req: &HttpRequest) -> Result<(web::Data<AppState>, String), ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("application state missing"))?;
    let token = bearer_token(req).map(str::to_owned).ok_or_else(|| {
        ApiError::Unauthorized("missing 'Authorization: Bearer <token>' header".into())
    })?;
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
