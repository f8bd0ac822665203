//! Accounts: register, login, logout, token authentication.
//!
//! Sign-in requests were already counted per address and prefix before their body was read
//! (`api::auth::sign_in_gate`). Logins are then throttled per account — failures with a valid
//! device token count against that token only (see `auth::ratelimit`) — and their password
//! checks share the hashing pool fairly by source address (`auth::password`).

use std::net::IpAddr;

use crate::auth::password::Source;
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

/// Creates an account; returns its token, row and a device token.
pub async fn register(
    state: &AppState,
    ip: IpAddr,
    username: Username,
    password: Password,
    display_name: Option<DisplayName>,
) -> ApiResult<(String, UserRow, String)> {
    password.refuse_username(username.as_str())?;
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
    let hash = state
        .hasher
        .hash_from(Source::client(ip, false), password.expose().to_owned())
        .await?;
    let display_name = display_name.unwrap_or_else(|| DisplayName::from_username(&username));
    let user = state
        .db
        .run(move |c| db::users::insert(c, &username, &display_name, &hash))
        .await?;
    let token = issue(state, &user)?;
    let device_token = state.tokens.device.issue(user.id);
    tracing::info!(user_id = %user.id, "registered");
    Ok((token, user, device_token))
}

/// Same answer and about the same time for an unknown user and a wrong password. Returns the
/// token, the user and a new device token.
pub async fn login(
    state: &AppState,
    ip: IpAddr,
    username: String,
    password: String,
    device_token: Option<String>,
) -> ApiResult<(String, UserRow, String)> {
    // A source already holding its share of the hashers is refused before the account is
    // looked up (a flood's refusals cost no query); one presenting a device token is not, as
    // its login may go to the priority lane.
    if device_token.is_none() && state.hasher.over_share(Source::client(ip, false)) {
        return Err(ApiError::RateLimited {
            retry_after_secs: 1,
        });
    }
    let key = username.to_ascii_lowercase();
    let lookup = key.clone();
    let (user, epoch) = state
        .db
        .run(move |c| {
            let user = db::users::find_by_username(c, &lookup)?;
            let epoch = match &user {
                Some(u) => db::users::login_throttle_epoch(c, u.id)?,
                None => 0,
            };
            Ok::<_, ApiError>((user, epoch))
        })
        .await?;
    // Unknown names are throttled like accounts, so a 429 tells nothing about existence.
    let account = match &user {
        Some(u) => format!("{}#{epoch}", u.id),
        None => format!("?{key}"),
    };
    let device = match (&user, device_token) {
        (Some(u), Some(t)) => state.tokens.device.verify(&t, u.id),
        _ => None,
    };
    state.limits.check_login(&account, device.as_deref())?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let verified = state
        .hasher
        .verify_from(Source::client(ip, device.is_some()), password, hash)
        .await?;
    if !verified.ok {
        state.limits.record_failure(&account, device.as_deref());
        return Err(bad_credentials());
    }
    let user = user.ok_or_else(bad_credentials)?;
    state.limits.record_success(device.as_deref());
    if let Some(new_hash) = verified.upgraded {
        let (id, old) = (user.id, user.password_hash.clone());
        if let Err(e) = state
            .db
            .run(move |c| db::users::upgrade_password_hash(c, id, &old, &new_hash))
            .await
        {
            tracing::warn!(error = %e, "cannot upgrade a legacy password hash");
        }
    }
    // Told only to someone who knows the password, so it reveals nothing to a guesser.
    if user.deactivated_at.is_some() {
        return Err(ApiError::Forbidden(
            "this account has been deactivated".into(),
        ));
    }
    let token = issue(state, &user)?;
    let device_token = state.tokens.device.issue(user.id);
    crate::services::admin::touch_last_seen(state, user.id).await;
    Ok((token, user, device_token))
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
    let access = access_now(state, id, claims.jti.clone(), claims.gen).await?;
    Ok(AuthUser {
        id,
        jti: claims.jti,
        exp: claims.exp,
        is_admin: access.is_admin,
        gen: claims.gen,
    })
}

/// Checks again that an authenticated connection's token still holds: not expired, not
/// revoked, the account active and its sessions not ended since. Open WebSockets are told of
/// such changes by events; this catches one whose event was lost between instances.
pub async fn still_valid(state: &AppState, auth: &AuthUser) -> ApiResult<()> {
    if auth.exp <= chrono::Utc::now().timestamp() {
        return Err(ApiError::Unauthorized("invalid or expired token".into()));
    }
    access_now(state, auth.id, auth.jti.clone(), auth.gen)
        .await
        .map(|_| ())
}

/// Revocation, deactivation, session generation and role, in one round trip.
async fn access_now(
    state: &AppState,
    id: UserId,
    jti: String,
    gen: i64,
) -> ApiResult<db::admin::Access> {
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
    if access.session_generation != gen {
        return Err(session_ended());
    }
    Ok(access)
}

pub async fn me(state: &AppState, user: UserId) -> ApiResult<UserRow> {
    state
        .db
        .run(move |c| db::users::find(c, user))
        .await?
        .ok_or_else(|| ApiError::Unauthorized("this account no longer exists".into()))
}

/// Users matching `query` (a substring search, which may scan the whole table), handed to
/// `render` on the same low-priority background thread as the query (see [`crate::background`]).
pub async fn search_users<T, R>(
    state: &AppState,
    me: UserId,
    query: crate::domain::SearchQuery,
    limit: i64,
    render: R,
) -> ApiResult<T>
where
    R: FnOnce(Vec<UserRow>) -> ApiResult<T> + Send + 'static,
    T: Send + 'static,
{
    state
        .db
        .run_background(move |c| render(db::users::search(c, query.like_pattern(), me, limit)?))
        .await
}

/// The command line's `admin reset-password`: sets `password_hash` (already hashed) for
/// `username`, ends the account's sessions (their tokens stop working at the next request, on
/// every instance) and clears its login throttle. Recorded in the audit log with no actor.
pub fn reset_password_offline(
    conn: &mut db::DbConnection,
    username: &Username,
    password_hash: &str,
) -> ApiResult<UserRow> {
    db::write_transaction(conn, |c| {
        let user = db::users::find_by_username(c, &username.key())?
            .ok_or_else(|| ApiError::not_found("user"))?;
        db::admin::set_password(c, user.id, password_hash)?;
        db::users::clear_login_throttle(c, user.id)?;
        db::audit::record(
            c,
            &db::audit::NewEntry {
                actor: None,
                action: crate::services::admin::action::USER_PASSWORD_RESET,
                target_type: "user",
                target_id: user.id.0,
                detail: format!("@{}", user.username),
            },
        )?;
        Ok(user)
    })
}
