//! Accounts: register, login, logout, token authentication.

use std::net::IpAddr;

use crate::auth::AuthUser;
use crate::broker::{Event, Recipients};
use crate::db::{self, models::UserRow};
use crate::domain::{DisplayName, Password, UserId, Username};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A session signed in before the user's password was reset.
pub fn session_ended() -> ApiError {
    ApiError::Unauthorized("this session has ended: the password was changed".into())
}

fn bad_credentials() -> ApiError {
    ApiError::Unauthorized("wrong username or password".into())
}

fn issue(state: &AppState, user: &UserRow) -> ApiResult<String> {
    state
        .tokens
        .issue(user.id, user.session_generation)
        .map(|(token, _)| token)
        .map_err(|e| ApiError::internal(format!("cannot sign a token: {e}")))
}

pub async fn register(
    state: &AppState,
    ip: IpAddr,
    username: Username,
    password: Password,
    display_name: Option<DisplayName>,
) -> ApiResult<(String, UserRow)> {
    state.limits.check_ip(ip)?;
    // A cheap look-up first, so a taken name costs no hash; the unique index settles races.
    let key = username.key();
    if state
        .db
        .run(move |c| db::users::find_by_username(c, &key))
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(format!(
            "the username '{}' is taken",
            username.as_str()
        )));
    }
    let hash = state.hasher.hash(password.expose().to_owned()).await?;
    let display_name = display_name.unwrap_or_else(|| DisplayName::from_username(&username));
    let user = state
        .db
        .run(move |c| db::users::insert(c, &username, &display_name, &hash))
        .await?;
    let token = issue(state, &user)?;
    tracing::info!(user_id = %user.id, "registered");
    Ok((token, user))
}

/// Same answer and about the same time for an unknown user and a wrong password.
pub async fn login(
    state: &AppState,
    ip: IpAddr,
    username: String,
    password: String,
) -> ApiResult<(String, UserRow)> {
    state.limits.check_ip(ip)?;
    let key = username.to_ascii_lowercase();
    state.limits.check_account(&key)?;
    let lookup = key.clone();
    let user = state
        .db
        .run(move |c| db::users::find_by_username(c, &lookup))
        .await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    if !state.hasher.verify(password, hash).await? {
        state.limits.record_failure(&key);
        return Err(bad_credentials());
    }
    let user = user.ok_or_else(bad_credentials)?;
    // Told only to someone who knows the password, so it reveals nothing to a guesser.
    if user.deactivated_at.is_some() {
        return Err(ApiError::Forbidden(
            "this account has been deactivated".into(),
        ));
    }
    let token = issue(state, &user)?;
    crate::services::admin::touch_last_seen(state, user.id).await;
    Ok((token, user))
}

/// Revokes the caller's token at once; their other tokens keep working.
pub async fn logout(state: &AppState, user: &AuthUser) -> ApiResult<()> {
    let jti = user.jti.clone();
    let id = user.id;
    let expires_at = chrono::DateTime::from_timestamp(user.exp, 0)
        .map(|t| t.naive_utc())
        .unwrap_or_else(db::now);
    let revoked = jti.clone();
    state
        .db
        .run(move |c| db::tokens::revoke(c, &revoked, id, expires_at))
        .await?;
    // Close the WebSockets opened with this token.
    state.broker.publish(
        Recipients::One(id),
        None,
        Event::Revoked { jti: jti.into() },
    );
    Ok(())
}

/// Verifies a token: signature, algorithm, expiry, revocation.
pub async fn authenticate(state: &AppState, token: &str) -> ApiResult<AuthUser> {
    let invalid = || ApiError::Unauthorized("invalid or expired token".into());
    let claims = state.tokens.verify(token).ok_or_else(invalid)?;
    let id = claims.user_id().ok_or_else(invalid)?;
    let jti = claims.jti.clone();
    // Revocation, deactivation and role in one round trip, on every request.
    let access = state
        .db
        .run(move |c| db::admin::access(c, id, &jti))
        .await?
        .ok_or_else(|| ApiError::Unauthorized("this account no longer exists".into()))?;
    if access.revoked {
        return Err(ApiError::Unauthorized("this token has been revoked".into()));
    }
    // Deactivation also moves the generation on: say why while the account is deactivated.
    if access.deactivated {
        return Err(ApiError::Unauthorized(
            "this account has been deactivated".into(),
        ));
    }
    if access.session_generation != claims.gen {
        return Err(session_ended());
    }
    Ok(AuthUser {
        id,
        jti: claims.jti,
        exp: claims.exp,
        is_admin: access.is_admin,
    })
}

pub async fn me(state: &AppState, user: UserId) -> ApiResult<UserRow> {
    state
        .db
        .run(move |c| db::users::find(c, user))
        .await?
        .ok_or_else(|| ApiError::Unauthorized("this account no longer exists".into()))
}

pub async fn search_users(
    state: &AppState,
    me: UserId,
    query: crate::domain::SearchQuery,
    limit: i64,
) -> ApiResult<Vec<UserRow>> {
    state
        .db
        .run(move |c| db::users::search(c, query.like_pattern(), me, limit))
        .await
}
