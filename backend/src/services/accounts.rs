//! Accounts: register, login, logout, token authentication, and the owner's own changes to
//! their account (display name, password).
//!
//! Every register and login opens a session (`db::sessions`) that its token names; logout ends
//! it. Sign-in requests were already counted per address and prefix before their body was read
//! (`api::auth::sign_in_gate`). Logins are then throttled per account — failures with a valid
//! device token count against that token only (see `auth::ratelimit`) — and their password
//! checks share the hashing pool fairly by source address (`auth::password`). The endpoints that
//! check the caller's password again (a password change, deleting the account) pass the same
//! gate and are throttled per account the same way.

use std::net::IpAddr;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::auth::password::Source;
use crate::auth::{AuthUser, TokenService};
use crate::broker::{Event, Recipients, UserData};
use crate::db::{self, models::UserRow, write_transaction, DbConnection};
use crate::domain::{DisplayName, Password, SessionId, UserId, Username};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A session's `last_seen_at` is moved on by a request at most this often: the token check
/// reads it anyway, and writes only when it is older.
pub const SEEN_EVERY: chrono::Duration = chrono::Duration::seconds(60);

/// Characters of a `User-Agent` kept with a session, at most.
pub const MAX_USER_AGENT: usize = 256;

/// Where a sign-in comes from, as the session list shows it.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: IpAddr,
    /// At most [`MAX_USER_AGENT`] characters, without control characters; `None` when absent
    /// or empty.
    pub user_agent: Option<String>,
}

impl Client {
    pub fn new(ip: IpAddr, user_agent: Option<&str>) -> Client {
        let user_agent = user_agent
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_USER_AGENT)
                    .collect::<String>()
                    .trim()
                    .to_owned()
            })
            .filter(|ua| !ua.is_empty());
        Client { ip, user_agent }
    }
}

/// The user as events carry it.
pub fn user_data(user: &UserRow) -> UserData {
    UserData {
        id: user.id,
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        created_at: DateTime::from_naive_utc_and_offset(user.created_at, Utc),
    }
}

/// A token whose session was ended (logout, revocation, a password change or reset) or that
/// names none (issued before sessions existed): its owner signs in again. The message is fixed
/// (the contract's), so that clients can tell it from an expired token.
pub fn session_revoked() -> ApiError {
    ApiError::Unauthorized("token revoked".into())
}

/// A token refused for what it is, before any session is looked at. The messages are fixed.
pub fn token_refused(e: crate::auth::TokenError) -> ApiError {
    use crate::auth::TokenError;
    ApiError::Unauthorized(
        match e {
            TokenError::Expired => "token expired",
            TokenError::Malformed => "token malformed: not a JSON Web Token",
            TokenError::Invalid => {
                "token invalid: not signed by this server, or missing a required claim"
            }
        }
        .into(),
    )
}

fn bad_credentials() -> ApiError {
    ApiError::Unauthorized("wrong username or password".into())
}

/// Opens a session for `user` coming from `client` and signs its token, on `c`.
fn open_session(
    c: &mut DbConnection,
    tokens: &TokenService,
    user: &UserRow,
    client: &Client,
) -> ApiResult<String> {
    let ip = client.ip.to_string();
    // Ids are random: a taken one (never seen in practice) is drawn again.
    for _ in 0..4 {
        let id = SessionId::random();
        let (token, claims) = tokens
            .issue(user.id, user.session_generation, id.0)
            .map_err(|e| ApiError::internal(format!("cannot sign a token: {e}")))?;
        let expires_at = DateTime::from_timestamp(claims.exp, 0)
            .map(|t| t.naive_utc())
            .ok_or_else(|| ApiError::internal("a token expiry out of range"))?;
        let new = db::sessions::NewSession {
            id,
            user: user.id,
            expires_at,
            user_agent: client.user_agent.as_deref(),
            ip: Some(&ip),
        };
        if db::sessions::open(c, &new, db::now())? {
            return Ok(token);
        }
    }
    Err(ApiError::internal("no free session id"))
}

/// Creates an account; returns its token, row and a device token.
pub async fn register(
    state: &AppState,
    client: Client,
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
        .hash_from(
            Source::client(client.ip, false),
            password.expose().to_owned(),
        )
        .await?;
    let display_name = display_name.unwrap_or_else(|| DisplayName::from_username(&username));
    let tokens = state.tokens.clone();
    let (user, token) = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let user = db::users::insert(c, &username, &display_name, &hash)?;
                let token = open_session(c, &tokens, &user, &client)?;
                Ok::<_, ApiError>((user, token))
            })
        })
        .await?;
    let device_token = state.tokens.device.issue(user.id);
    tracing::info!(user_id = %user.id, "registered");
    Ok((token, user, device_token))
}

/// Same answer and about the same time for an unknown user and a wrong password. Returns the
/// token, the user and a new device token.
pub async fn login(
    state: &AppState,
    client: Client,
    username: String,
    password: String,
    device_token: Option<String>,
) -> ApiResult<(String, UserRow, String)> {
    // A source already holding its share of the hashers is refused before the account is
    // looked up (a flood's refusals cost no query); one presenting a device token is not, as
    // its login may go to the priority lane.
    let ip = client.ip;
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
            .run(move |c| db::users::replace_password_hash(c, id, &old, &new_hash))
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
    let tokens = state.tokens.clone();
    let opened = user.clone();
    let token = state
        .db
        .run(move |c| open_session(c, &tokens, &opened, &client))
        .await?;
    let device_token = state.tokens.device.issue(user.id);
    crate::services::admin::touch_last_seen(state, user.id).await;
    Ok((token, user, device_token))
}

/// Ends the caller's session at once, on every instance; their other sessions keep working.
pub async fn logout(state: &AppState, user: &AuthUser) -> ApiResult<()> {
    let (id, session) = (user.id, user.session);
    state
        .db
        .run(move |c| db::sessions::end(c, id, session))
        .await?;
    sessions_revoked(state, id, vec![session]);
    Ok(())
}

/// Closes the WebSockets of `user`'s sessions `ended` (on every instance).
pub fn sessions_revoked(state: &AppState, user: UserId, ended: Vec<SessionId>) {
    if ended.is_empty() {
        return;
    }
    state.broker.publish(
        Recipients::One(user),
        None,
        Event::SessionsRevoked { ids: ended.into() },
    );
}

/// Verifies a token: signature, algorithm, expiry, its session, the account.
pub async fn authenticate(state: &AppState, token: &str) -> ApiResult<AuthUser> {
    let claims = state.tokens.check(token).map_err(token_refused)?;
    let id = claims
        .user_id()
        .ok_or_else(|| token_refused(crate::auth::TokenError::Invalid))?;
    // Issued before sessions existed: its owner signs in again.
    let session = claims.sid.map(SessionId).ok_or_else(session_revoked)?;
    let access = access_now(state, id, session, claims.gen).await?;
    Ok(AuthUser {
        id,
        jti: claims.jti,
        exp: claims.exp,
        is_admin: access.is_admin,
        gen: claims.gen,
        session,
    })
}

/// Checks again that an authenticated connection's token still holds: not expired, its
/// session not ended, the account active. Open WebSockets are told of such changes by events;
/// this catches one whose event was lost between instances.
pub async fn still_valid(state: &AppState, auth: &AuthUser) -> ApiResult<()> {
    if auth.exp <= chrono::Utc::now().timestamp() {
        return Err(token_refused(crate::auth::TokenError::Expired));
    }
    access_now(state, auth.id, auth.session, auth.gen)
        .await
        .map(|_| ())
}

/// The session, deactivation, session generation and role, in one round trip; and, at most
/// once a minute per session, a second statement that records that the session was seen.
async fn access_now(
    state: &AppState,
    id: UserId,
    session: SessionId,
    gen: i64,
) -> ApiResult<db::admin::Access> {
    let access = state
        .db
        .run(move |c| {
            let access = db::admin::access(c, id, session)?;
            if let Some(a) = &access {
                if !a.deactivated && a.session_generation == gen {
                    touch_if_stale(c, session, a.session_seen);
                }
            }
            Ok(access)
        })
        .await?
        .ok_or_else(|| ApiError::Unauthorized("this account no longer exists".into()))?;
    // Deactivation also ends the sessions: say why while the account is deactivated.
    if access.deactivated {
        return Err(ApiError::Unauthorized(
            "this account has been deactivated".into(),
        ));
    }
    if access.session_generation != gen {
        return Err(session_revoked());
    }
    if access.session_seen.is_none() {
        return Err(session_revoked());
    }
    Ok(access)
}

/// Records that `session` was seen now, when it was last seen over [`SEEN_EVERY`] ago. Best
/// effort: a failure is logged, never the request's.
fn touch_if_stale(c: &mut DbConnection, session: SessionId, seen: Option<NaiveDateTime>) {
    let now = db::now();
    let stale_before = now - SEEN_EVERY;
    if seen.is_some_and(|t| t < stale_before) {
        if let Err(e) = db::sessions::touch(c, session, now, stale_before) {
            tracing::warn!(error = %e, "cannot record that a session was seen");
        }
    }
}

pub async fn me(state: &AppState, user: UserId) -> ApiResult<UserRow> {
    state
        .db
        .run(move |c| db::users::find(c, user))
        .await?
        .ok_or_else(|| ApiError::Unauthorized("this account no longer exists".into()))
}

/// Sets the caller's display name and tells their contacts' and their own connections
/// (`user_updated`, on every instance). Returns the account as it is now.
pub async fn set_display_name(
    state: &AppState,
    user: UserId,
    name: DisplayName,
) -> ApiResult<UserRow> {
    let (row, watchers) = state
        .db
        .run(move |c| {
            let row = db::users::set_display_name(c, user, &name)?
                .ok_or_else(|| ApiError::Unauthorized("this account no longer exists".into()))?;
            Ok((row, db::contacts::watchers(c, user)?))
        })
        .await?;
    let mut to = watchers;
    to.push(user);
    user_updated(state, &row, to);
    Ok(row)
}

/// Tells `to`'s connections that `user` is now as `user` says (`user_updated`).
pub fn user_updated(state: &AppState, user: &UserRow, to: Vec<UserId>) {
    if to.is_empty() {
        return;
    }
    state.broker.publish(
        Recipients::Many(to.into()),
        None,
        Event::UserUpdated {
            user: user_data(user),
        },
    );
}

/// Checks the password of the caller's account once more before a change that needs it (as a
/// login would: throttled per account, the hash on the fair pool as `ip`'s). A wrong one is 422
/// naming `field`.
pub async fn confirm_password(
    state: &AppState,
    ip: IpAddr,
    user: &UserRow,
    password: String,
    field: &str,
) -> ApiResult<()> {
    let source = Source::client(ip, false);
    if state.hasher.over_share(source) {
        return Err(ApiError::RateLimited {
            retry_after_secs: 1,
        });
    }
    // Counted apart from the login throttle: a stolen token cannot lock the owner out of
    // logging in by failing here.
    let throttle = format!("confirm:{}", user.id);
    state.limits.check_login(&throttle, None)?;
    let verified = state
        .hasher
        .verify_from(source, password, Some(user.password_hash.clone()))
        .await?;
    if !verified.ok {
        state.limits.record_failure(&throttle, None);
        return Err(ApiError::validation(
            field,
            "is not the password of this account",
        ));
    }
    Ok(())
}

/// Changes the caller's password after checking the current one: every other session of the
/// account ends (its tokens stop working, its WebSockets close), the caller's own stays.
/// Audited.
pub async fn change_password(
    state: &AppState,
    caller: &AuthUser,
    ip: IpAddr,
    current: String,
    new: Password,
) -> ApiResult<()> {
    let user = me(state, caller.id).await?;
    new.refuse_username(&user.username)
        .map_err(|e| e.rename_field("password", "new_password"))?;
    confirm_password(state, ip, &user, current, "current_password").await?;
    let hash = state
        .hasher
        .hash_from(Source::client(ip, false), new.expose().to_owned())
        .await?;
    let (id, keep, old) = (user.id, caller.session, user.password_hash.clone());
    let ended = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                if !db::users::replace_password_hash(c, id, &old, &hash)? {
                    return Err(ApiError::Conflict(
                        "the password was changed meanwhile; sign in again".into(),
                    ));
                }
                let ended = db::sessions::end_all_but(c, id, Some(keep))?;
                db::audit::record(
                    c,
                    &db::audit::NewEntry::on_own_account(
                        id,
                        crate::services::admin::action::USER_PASSWORD_CHANGE,
                        format!("@{} ({} other sessions ended)", user.username, ended.len()),
                    ),
                )?;
                Ok(ended)
            })
        })
        .await?;
    tracing::info!(user_id = %id, ended = ended.len(), "password changed");
    sessions_revoked(state, id, ended);
    Ok(())
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
