//! Deleting one's own account. After the password is checked again, one transaction ends every
//! session, takes the account off every contacts list (and empties its own) and turns it into
//! what a deleted account leaves behind — username `~deleted-<id>` (which can never be
//! registered, so the old name is free again), display name "Deleted user", deactivated, its row
//! and id kept because rooms and messages name it. Then its messages become tombstones: through
//! the message writer, as deletes by their sender, a few hundred per batch so the writer never
//! holds a room for long and every message gets its change number and a `message_updated` frame
//! to the other member; then the reactions it left on others' messages are taken back the same
//! way, as if it took each back itself (a numbered change, `message_updated` to the room's
//! members); and its uploads that no message carries any more are deleted (their links stop
//! working; the sweep deletes the bytes).
//!
//! The erasure runs in a task of its own, so a client that goes away does not stop it halfway;
//! an erasure interrupted by a crash is finished by the next upload sweep
//! ([`finish_interrupted`]).

use futures_util::future::join_all;

use crate::auth::AuthUser;
use crate::db::{
    self, audit::NewEntry, changes::ChangeKind, changes::ChangeRequest, write_transaction,
};
use crate::domain::{Emoji, MessageId, UserId};
use crate::error::{ApiError, ApiResult};
use crate::services::accounts::{self, sessions_revoked, user_updated};
use crate::services::admin::action;
use crate::services::writer::Changed;
use crate::state::AppState;

/// Messages erased (or reactions taken back) per round trip to the writer: small enough that
/// sends queued meanwhile wait for at most one such batch.
const ERASE_BATCH: i64 = 256;

/// Deleted accounts whose interrupted erasure one sweep finishes, at most.
const RESUME_PER_SWEEP: i64 = 16;

/// Deletes the caller's account once `password` is confirmed (a wrong one is 422 naming
/// `password`). Returns once its messages are tombstones and its reactions gone.
pub async fn delete_account(
    state: &AppState,
    caller: &AuthUser,
    ip: std::net::IpAddr,
    password: String,
) -> ApiResult<()> {
    let user = accounts::me(state, caller.id).await?;
    accounts::confirm_password(state, ip, &user, password, "password").await?;
    let id = user.id;
    let (row, ended, watchers) = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                // Told before the contacts go: they see the account become "Deleted user".
                let watchers = db::contacts::watchers(c, id)?;
                let row = db::users::mark_deleted(c, id, db::now())?.ok_or_else(|| {
                    ApiError::Unauthorized("this account no longer exists".into())
                })?;
                let ended = db::users::end_sessions(c, id)?;
                db::contacts::delete_all_of(c, id)?;
                db::audit::record(
                    c,
                    &NewEntry::on_own_account(
                        id,
                        action::USER_DELETE,
                        format!("@{}", user.username),
                    ),
                )?;
                Ok::<_, ApiError>((row, ended, watchers))
            })
        })
        .await?;
    tracing::info!(user_id = %id, "account deleted by its owner");
    sessions_revoked(state, id, ended);
    user_updated(state, &row, watchers);
    let owned = state.clone();
    tokio::spawn(async move { erase(&owned, id).await })
        .await
        .map_err(|e| ApiError::internal(format!("the erasure task failed: {e}")))?
        .map(|_| ())
}

/// What one erasure did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Erased {
    /// Messages turned into tombstones.
    pub messages: usize,
    /// Reactions taken back from others' messages.
    pub reactions: usize,
}

/// Turns every message `user` sent into a tombstone, takes back every reaction they left, then
/// deletes their uploads no message carries. Safe to run again, and concurrently.
pub async fn erase(state: &AppState, user: UserId) -> ApiResult<Erased> {
    let mut erased = Erased::default();
    let mut after = MessageId(0);
    loop {
        let batch = state
            .db
            .run(move |c| db::messages::live_of_sender(c, user, after, ERASE_BATCH))
            .await?;
        let Some(&(last, _)) = batch.last() else {
            break;
        };
        after = last;
        let deletes = batch.into_iter().map(|(message, room)| {
            state.writer.change(ChangeRequest {
                actor: user,
                room: Some(room),
                message,
                kind: ChangeKind::Delete { by_admin: None },
            })
        });
        erased.messages += settle(join_all(deletes).await)?;
    }
    // Its own messages' reactions went with them: what is left is on others' messages.
    let mut after = 0;
    loop {
        let batch = state
            .db
            .run(move |c| db::messages::reactions_of_user(c, user, after, ERASE_BATCH))
            .await?;
        let Some(last) = batch.last() else {
            break;
        };
        after = last.id;
        let removals = batch.into_iter().map(|reaction| {
            state.writer.change(ChangeRequest {
                actor: user,
                room: Some(reaction.room),
                message: reaction.message,
                kind: ChangeKind::React {
                    emoji: Emoji::stored(reaction.emoji),
                    add: false,
                },
            })
        });
        erased.reactions += settle(join_all(removals).await)?;
    }
    state
        .db
        .run(move |c| db::uploads::delete_unattached_of(c, user))
        .await?;
    Ok(erased)
}

/// How many of a batch's changes the writer carried out. A refusal (the message deleted or gone
/// meanwhile) leaves nothing to erase; a failure of the writer or the database is the erasure's,
/// and the next sweep finishes the work.
fn settle(outcomes: Vec<ApiResult<Changed>>) -> ApiResult<usize> {
    let mut done = 0;
    for outcome in outcomes {
        match outcome {
            Ok(_) => done += 1,
            Err(e @ (ApiError::Internal(_) | ApiError::Unavailable)) => return Err(e),
            Err(e) => tracing::debug!(error = %e, "erasing what a deleted account left"),
        }
    }
    Ok(done)
}

/// Finishes erasures a crash interrupted (called before each upload sweep, which then deletes
/// the files they freed).
pub async fn finish_interrupted(state: &AppState) -> ApiResult<()> {
    let users = state
        .db
        .run(|c| db::users::deleted_not_erased(c, RESUME_PER_SWEEP))
        .await?;
    for user in users {
        let erased = erase(state, user).await?;
        tracing::info!(
            user_id = %user,
            messages = erased.messages,
            reactions = erased.reactions,
            "finished erasing a deleted account's messages and reactions"
        );
    }
    Ok(())
}
