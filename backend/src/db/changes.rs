//! Changes to stored messages — edits, deletes, reactions — each numbered in its room by
//! `change_seq` (1, 2, 3, … with no gaps, in commit order). The message writer runs these inside
//! its transactions, one room at a time and holding the room: on SQLite the batch's
//! `BEGIN IMMEDIATE` holds the whole database; on PostgreSQL [`lock_rooms`] locks the rooms' rows
//! in id order first (the order the send batches lock them in, so the two never deadlock). So
//! a room's next change number is read and written without a race, and the checks below
//! (is it deleted, is this reaction there already) hold until the commit.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::audit::{self, NewEntry};
use super::models::{MessageRow, ReactionGroup};
use super::schema::{message_edits, messages, reactions, rooms};
use super::DbConnection;
use crate::domain::{Emoji, MessageBody, MessageId, RoomId, UserId};
use crate::error::{ApiError, ApiResult};

/// The audit log's action for an administrator's delete.
pub const ADMIN_DELETE_ACTION: &str = "message.delete";

/// Distinct emoji one message may carry at most.
pub const MAX_EMOJI_PER_MESSAGE: i64 = 20;

/// What to change.
#[derive(Debug, Clone)]
pub enum ChangeKind {
    /// A new body; refused after `window` (from the message's creation) when one is set.
    Edit {
        body: MessageBody,
        window: Option<std::time::Duration>,
    },
    /// Erases the body, every earlier version and the reactions; keeps `id` and `seq`. An
    /// administrator (`by_admin`) may delete anyone's message; the deletion is audited.
    Delete {
        by_admin: Option<UserId>,
    },
    React {
        emoji: Emoji,
        add: bool,
    },
}

/// Who changes which message.
#[derive(Debug, Clone)]
pub struct ChangeRequest {
    pub actor: UserId,
    /// The room the caller names; `None` for an administrator, who names only the message.
    pub room: Option<RoomId>,
    pub message: MessageId,
    pub kind: ChangeKind,
}

/// A change carried out (or found already made: `changed` false, nothing numbered).
#[derive(Debug, Clone)]
pub struct Applied {
    pub message: MessageRow,
    pub reactions: Vec<ReactionGroup>,
    pub changed: bool,
    /// The room's members `(user_low, user_high)`.
    pub members: (UserId, UserId),
}

/// Locks the rooms' rows in id order (PostgreSQL; SQLite's write transaction holds the whole
/// database already).
pub fn lock_rooms(conn: &mut DbConnection, mut ids: Vec<RoomId>) -> QueryResult<()> {
    ids.sort_unstable();
    ids.dedup();
    if let DbConnection::Postgresql(pg) = conn {
        let ids: Vec<i64> = ids.iter().map(|r| r.0).collect();
        rooms::table
            .filter(rooms::id.eq_any(ids))
            .order(rooms::id)
            .select(rooms::id)
            .for_no_key_update()
            .load::<i64>(pg)?;
    }
    Ok(())
}

/// The room of a message (for an administrator's delete, which names only the message).
pub fn room_of(conn: &mut DbConnection, message: MessageId) -> QueryResult<Option<RoomId>> {
    messages::table
        .find(message)
        .select(messages::room_id)
        .first::<RoomId>(conn)
        .optional()
}

/// Carries out one change. Refusals (not found, not the sender's, deleted, past the edit window,
/// too many emoji) are the inner `Err` and change nothing; an outer `Err` (the database failed)
/// aborts the transaction.
pub fn apply(
    conn: &mut DbConnection,
    req: &ChangeRequest,
    now: NaiveDateTime,
) -> ApiResult<Result<Applied, ApiError>> {
    let Some(room) = req
        .room
        .map_or_else(|| room_of(conn, req.message), |r| Ok(Some(r)))?
    else {
        return Ok(Err(ApiError::not_found("message")));
    };
    // The message with its room's members, in one look-up.
    let Some((mut message, low, high)) = messages::table
        .inner_join(rooms::table)
        .filter(messages::id.eq(req.message))
        .filter(messages::room_id.eq(room))
        .select((MessageRow::as_select(), rooms::user_low, rooms::user_high))
        .first::<(MessageRow, UserId, UserId)>(conn)
        .optional()?
    else {
        // No such message in that room: a member learns no more than an outsider.
        return Ok(Err(ApiError::not_found("message")));
    };
    let admin = matches!(req.kind, ChangeKind::Delete { by_admin: Some(_) });
    if !admin && req.actor != low && req.actor != high {
        return Ok(Err(ApiError::not_found("room")));
    }
    let own = message.sender_id == req.actor;
    let deleted = message.deleted_at.is_some();
    // A live message's reactions, oldest first: what the checks below and the answer need.
    let mut reacted: Vec<(String, UserId)> = if deleted {
        Vec::new()
    } else {
        reactions::table
            .filter(reactions::message_id.eq(message.id))
            .order(reactions::id.asc())
            .select((reactions::emoji, reactions::user_id))
            .load(conn)?
    };
    let changed = match &req.kind {
        ChangeKind::Edit { body, window } => {
            if !own {
                return Ok(Err(ApiError::Forbidden(
                    "only its sender can edit a message".into(),
                )));
            }
            if deleted {
                return Ok(Err(ApiError::Conflict("this message was deleted".into())));
            }
            if let Some(window) = window {
                let age = now.signed_duration_since(message.created_at);
                if age.to_std().is_ok_and(|age| age > *window) {
                    return Ok(Err(ApiError::Forbidden(format!(
                        "messages can only be edited within {} of sending",
                        humantime::format_duration(*window)
                    ))));
                }
            }
            if body.as_str() == message.body {
                false
            } else {
                let change = next_change(conn, room)?;
                diesel::insert_into(message_edits::table)
                    .values((
                        message_edits::message_id.eq(message.id),
                        message_edits::body.eq(&message.body),
                        message_edits::replaced_at.eq(now),
                    ))
                    .execute(conn)?;
                diesel::update(messages::table.find(message.id))
                    .set((
                        messages::body.eq(body.as_str()),
                        messages::edited_at.eq(Some(now)),
                        messages::change_seq.eq(change),
                    ))
                    .execute(conn)?;
                message.body = body.as_str().to_owned();
                message.edited_at = Some(now);
                message.change_seq = change;
                true
            }
        }
        ChangeKind::Delete { by_admin } => {
            if !own && by_admin.is_none() {
                return Ok(Err(ApiError::Forbidden(
                    "only its sender can delete a message".into(),
                )));
            }
            if deleted {
                false
            } else {
                let change = next_change(conn, room)?;
                diesel::delete(reactions::table.filter(reactions::message_id.eq(message.id)))
                    .execute(conn)?;
                diesel::delete(
                    message_edits::table.filter(message_edits::message_id.eq(message.id)),
                )
                .execute(conn)?;
                diesel::update(messages::table.find(message.id))
                    .set((
                        messages::body.eq(""),
                        messages::deleted_at.eq(Some(now)),
                        messages::reply_to.eq(None::<MessageId>),
                        messages::change_seq.eq(change),
                    ))
                    .execute(conn)?;
                if let Some(admin) = by_admin {
                    audit::record(
                        conn,
                        &NewEntry {
                            actor: Some(*admin),
                            action: ADMIN_DELETE_ACTION,
                            target_type: "message",
                            target_id: message.id.0,
                            detail: format!("room {} seq {}", room, message.seq),
                        },
                    )?;
                }
                message.body = String::new();
                message.deleted_at = Some(now);
                message.reply_to = None;
                message.change_seq = change;
                reacted.clear();
                true
            }
        }
        ChangeKind::React { emoji, add: true } => {
            if deleted {
                return Ok(Err(ApiError::Conflict("this message was deleted".into())));
            }
            let present = reacted
                .iter()
                .any(|(e, u)| e == emoji.as_str() && *u == req.actor);
            if present {
                false
            } else {
                let mut distinct: Vec<&str> = reacted.iter().map(|(e, _)| e.as_str()).collect();
                distinct.sort_unstable();
                distinct.dedup();
                if distinct.len() as i64 >= MAX_EMOJI_PER_MESSAGE
                    && !distinct.contains(&emoji.as_str())
                {
                    return Ok(Err(ApiError::validation(
                        "emoji",
                        format!(
                            "a message carries at most {MAX_EMOJI_PER_MESSAGE} different emoji"
                        ),
                    )));
                }
                let change = next_change(conn, room)?;
                diesel::insert_into(reactions::table)
                    .values((
                        reactions::message_id.eq(message.id),
                        reactions::user_id.eq(req.actor),
                        reactions::emoji.eq(emoji.as_str()),
                        reactions::created_at.eq(now),
                    ))
                    .execute(conn)?;
                touch(conn, message.id, change)?;
                message.change_seq = change;
                reacted.push((emoji.as_str().to_owned(), req.actor));
                true
            }
        }
        ChangeKind::React { emoji, add: false } => {
            let before = reacted.len();
            reacted.retain(|(e, u)| !(e == emoji.as_str() && *u == req.actor));
            let present = reacted.len() != before;
            if present {
                let change = next_change(conn, room)?;
                diesel::delete(
                    reactions::table
                        .filter(reactions::message_id.eq(message.id))
                        .filter(reactions::user_id.eq(req.actor))
                        .filter(reactions::emoji.eq(emoji.as_str())),
                )
                .execute(conn)?;
                touch(conn, message.id, change)?;
                message.change_seq = change;
            }
            present
        }
    };
    Ok(Ok(Applied {
        message,
        reactions: super::messages::group_reactions(reacted),
        changed,
        members: (low, high),
    }))
}

/// Takes the room's next change number (the room is held: see the module's comment).
fn next_change(conn: &mut DbConnection, room: RoomId) -> QueryResult<i64> {
    diesel::update(rooms::table.find(room))
        .set(rooms::last_change_seq.eq(rooms::last_change_seq + 1))
        .returning(rooms::last_change_seq)
        .get_result::<i64>(conn)
}

fn touch(conn: &mut DbConnection, message: MessageId, change: i64) -> QueryResult<()> {
    diesel::update(messages::table.find(message))
        .set(messages::change_seq.eq(change))
        .execute(conn)
        .map(|_| ())
}

/// The messages of `room` changed after `after`, oldest change first, at most `limit`, with
/// whether more follow.
pub fn page(
    conn: &mut DbConnection,
    room: RoomId,
    after: i64,
    limit: i64,
) -> ApiResult<(Vec<MessageRow>, bool)> {
    let mut rows: Vec<MessageRow> = messages::table
        .filter(messages::room_id.eq(room))
        .filter(messages::change_seq.gt(after))
        .order(messages::change_seq.asc())
        .select(MessageRow::as_select())
        .limit(limit + 1)
        .load(conn)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    Ok((rows, more))
}

/// The room's newest change number.
pub fn last_change(conn: &mut DbConnection, room: RoomId) -> ApiResult<i64> {
    Ok(rooms::table
        .find(room)
        .select(rooms::last_change_seq)
        .first::<i64>(conn)
        .optional()?
        .unwrap_or(0))
}

/// Earlier bodies of a message, oldest first, with when each was replaced (administrators).
pub fn edits_of(
    conn: &mut DbConnection,
    message: MessageId,
) -> ApiResult<Vec<(String, NaiveDateTime)>> {
    Ok(message_edits::table
        .filter(message_edits::message_id.eq(message))
        .order(message_edits::id.asc())
        .select((message_edits::body, message_edits::replaced_at))
        .load(conn)?)
}
