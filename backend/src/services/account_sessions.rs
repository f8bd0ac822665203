//! The caller's sign-in sessions (one per token, see `db::sessions`): listing them, and ending
//! one or every other one. An ended session's token is refused from the next request on, on
//! every instance (the check reads the shared database), and its WebSockets close (1008) on
//! every instance (a broker event).

use crate::auth::AuthUser;
use crate::db::{self, audit::NewEntry, sessions::SessionRow, write_transaction};
use crate::domain::SessionId;
use crate::error::{ApiError, ApiResult};
use crate::services::accounts::sessions_revoked;
use crate::services::admin::action;
use crate::state::AppState;

/// Sessions a list shows at most (the most recently seen).
pub const MAX_LISTED: i64 = 1000;

/// A session as its owner sees it.
pub struct SessionView {
    pub row: SessionRow,
    /// The session of the token that asked.
    pub current: bool,
}

/// The caller's live sessions, most recently seen first.
pub async fn list(state: &AppState, caller: &AuthUser) -> ApiResult<Vec<SessionView>> {
    let (user, current) = (caller.id, caller.session);
    let rows = state
        .db
        .run(move |c| db::sessions::list(c, user, db::now(), MAX_LISTED))
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| SessionView {
            current: row.id == current,
            row,
        })
        .collect())
}

/// Ends one of the caller's sessions (the current one too: that is a logout). Another user's
/// session, or one that already ended, is 404.
pub async fn end(state: &AppState, caller: &AuthUser, session: SessionId) -> ApiResult<()> {
    let user = caller.id;
    state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                if !db::sessions::end(c, user, session)? {
                    return Err(ApiError::not_found("session"));
                }
                db::audit::record(
                    c,
                    &NewEntry::on_own_account(
                        user,
                        action::SESSION_REVOKE,
                        format!("session {session}"),
                    ),
                )
            })
        })
        .await?;
    sessions_revoked(state, user, vec![session]);
    Ok(())
}

/// Ends every session of the caller but the current one.
pub async fn end_others(state: &AppState, caller: &AuthUser) -> ApiResult<()> {
    let (user, keep) = (caller.id, caller.session);
    let ended = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let ended = db::sessions::end_all_but(c, user, Some(keep))?;
                if !ended.is_empty() {
                    db::audit::record(
                        c,
                        &NewEntry::on_own_account(
                            user,
                            action::SESSION_REVOKE,
                            format!("{} other sessions", ended.len()),
                        ),
                    )?;
                }
                Ok::<_, ApiError>(ended)
            })
        })
        .await?;
    sessions_revoked(state, user, ended);
    Ok(())
}
