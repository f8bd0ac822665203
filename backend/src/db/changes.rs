//! Changes to stored messages — edits, deletes, reactions — each numbered in its room by
//! `change_seq` (1, 2, 3, … with no gaps, in commit order). The message writer carries out a
//! batch of them inside its transaction with [`apply_batch`], holding the rooms: on SQLite the
//! batch's `BEGIN IMMEDIATE` holds the whole database; on PostgreSQL the rooms' rows are locked
//! in id order first (the order the send batches lock them in, so the two never deadlock). So
//! a room's next change number is read and written without a race, and the checks (is it
//! deleted, is this reaction there already) hold until the commit.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::audit::{self, NewEntry};
use super::models::{MessageRow, ReactionGroup};
use super::schema::{message_attachments, message_edits, messages, reactions, rooms};
use super::DbConnection;
use crate::domain::{Emoji, MessageBody, MessageId, RoomId, UserId};
use crate::error::{ApiError, ApiResult};

/// The audit log's action for an administrator's delete.
pub const ADMIN_DELETE_ACTION: &str = "message.delete";

/// Distinct emoji one message may carry at most.
pub const MAX_EMOJI_PER_MESSAGE: i64 = 20;

/// Edits one message may take at most: each keeps the body it replaces (for administrators), so
/// this bounds the rows and bytes one message can grow to.
pub const MAX_EDITS_PER_MESSAGE: i64 = 100;

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

/// A message as the batch has changed it so far.
struct Working {
    message: MessageRow,
    members: (UserId, UserId),
    /// Its reactions, oldest first: `(row id, emoji, user)`, the id `None` for one added by this
    /// batch (inserted at the end, in this order, so ids keep the order).
    reactions: Vec<(Option<i64>, String, UserId)>,
    /// Edited by this batch (each edit's earlier body waits in [`Writes::edits`]).
    edited: bool,
    /// Its edits so far (counted only for the messages the batch edits).
    edits: i64,
    /// Deleted by this batch.
    deleted: bool,
    /// Numbered by this batch.
    touched: bool,
}

impl Working {
    fn has(&self, emoji: &str, user: UserId) -> bool {
        self.reactions
            .iter()
            .any(|(_, e, u)| e == emoji && *u == user)
    }

    fn groups(&self) -> Vec<ReactionGroup> {
        super::messages::group_reactions(
            self.reactions
                .iter()
                .map(|(_, e, u)| (e.clone(), *u))
                .collect(),
        )
    }
}

/// What one batch writes, gathered while its changes are carried out in memory and written
/// with a few statements per kind at the end.
#[derive(Default)]
struct Writes {
    /// Reaction rows taken back one by one (of messages not deleted by the batch).
    removed_reactions: Vec<i64>,
    /// Earlier bodies to keep: `(message, body)`, in order.
    edits: Vec<(MessageId, String)>,
    audit: Vec<NewEntry<'static>>,
}

/// Carries out a batch of changes in the open transaction, in order: each room's changes are
/// numbered in the order they come. Everything is read in a few statements (the rooms, locked
/// on PostgreSQL; the messages; their reactions), the changes are carried out in memory, and
/// written with a few statements per kind, so a storm of reactions costs the writer a few
/// statements per batch rather than per change.
///
/// Refusals (not found, not the sender's, deleted, past the edit window, too many emoji) are
/// the inner `Err` and change nothing; an outer `Err` (the database failed) aborts the
/// transaction.
pub fn apply_batch(
    conn: &mut DbConnection,
    requests: &[ChangeRequest],
    now: NaiveDateTime,
) -> ApiResult<Vec<Result<Applied, ApiError>>> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    // An administrator names only the message: its room first.
    let unplaced: Vec<MessageId> = requests
        .iter()
        .filter(|r| r.room.is_none())
        .map(|r| r.message)
        .collect();
    let placed: HashMap<MessageId, RoomId> = if unplaced.is_empty() {
        HashMap::new()
    } else {
        messages::table
            .filter(messages::id.eq_any(&unplaced))
            .select((messages::id, messages::room_id))
            .load::<(MessageId, RoomId)>(conn)?
            .into_iter()
            .collect()
    };
    let room_of = |r: &ChangeRequest| r.room.or_else(|| placed.get(&r.message).copied());
    let mut room_ids: Vec<RoomId> = requests.iter().filter_map(room_of).collect();
    room_ids.sort_unstable();
    room_ids.dedup();
    let mut rooms = load_rooms(conn, &room_ids)?;
    let message_ids: Vec<MessageId> = requests.iter().map(|r| r.message).collect();
    let mut working: HashMap<MessageId, Working> = HashMap::new();
    for message in messages::table
        .filter(messages::id.eq_any(&message_ids))
        .select(MessageRow::as_select())
        .load::<MessageRow>(conn)?
    {
        if let Some(&(low, high, _)) = rooms.get(&message.room_id) {
            working.insert(
                message.id,
                Working {
                    message,
                    members: (low, high),
                    reactions: Vec::new(),
                    edited: false,
                    edits: 0,
                    deleted: false,
                    touched: false,
                },
            );
        }
    }
    let live: Vec<MessageId> = working
        .values()
        .filter(|w| w.message.deleted_at.is_none())
        .map(|w| w.message.id)
        .collect();
    if !live.is_empty() {
        for (id, message, emoji, user) in reactions::table
            .filter(reactions::message_id.eq_any(&live))
            .order(reactions::id.asc())
            .select((
                reactions::id,
                reactions::message_id,
                reactions::emoji,
                reactions::user_id,
            ))
            .load::<(i64, MessageId, String, UserId)>(conn)?
        {
            if let Some(w) = working.get_mut(&message) {
                w.reactions.push((Some(id), emoji, user));
            }
        }
    }
    let edited: Vec<MessageId> = requests
        .iter()
        .filter(|r| matches!(r.kind, ChangeKind::Edit { .. }))
        .map(|r| r.message)
        .collect();
    if !edited.is_empty() {
        for (message, count) in message_edits::table
            .filter(message_edits::message_id.eq_any(&edited))
            .group_by(message_edits::message_id)
            .select((message_edits::message_id, diesel::dsl::count_star()))
            .load::<(MessageId, i64)>(conn)?
        {
            if let Some(w) = working.get_mut(&message) {
                w.edits = count;
            }
        }
    }
    let mut writes = Writes::default();
    let mut outcomes = Vec::with_capacity(requests.len());
    for req in requests {
        let outcome = match room_of(req) {
            None => Err(ApiError::not_found("message")),
            Some(room) => match working.get_mut(&req.message) {
                // No such message in that room: a member learns no more than an outsider.
                Some(w) if w.message.room_id == room => match rooms.get_mut(&room) {
                    Some((_, _, last_change)) => apply_one(w, req, now, last_change, &mut writes),
                    None => Err(ApiError::not_found("message")),
                },
                _ => Err(ApiError::not_found("message")),
            },
        };
        outcomes.push(outcome);
    }
    write(conn, &working, &rooms, writes, now)?;
    Ok(outcomes)
}

/// The rooms' members and newest change numbers, locked in id order on PostgreSQL (SQLite's
/// write transaction holds the whole database already).
fn load_rooms(
    conn: &mut DbConnection,
    ids: &[RoomId],
) -> QueryResult<HashMap<RoomId, (UserId, UserId, i64)>> {
    let query = rooms::table
        .filter(rooms::id.eq_any(ids))
        .order(rooms::id)
        .select((
            rooms::id,
            rooms::user_low,
            rooms::user_high,
            rooms::last_change_seq,
        ));
    let rows: Vec<(RoomId, UserId, UserId, i64)> = match conn {
        DbConnection::Postgresql(pg) => query.for_no_key_update().load(pg)?,
        DbConnection::Sqlite(s) => query.load(s)?,
    };
    Ok(rows
        .into_iter()
        .map(|(id, low, high, last)| (id, (low, high, last)))
        .collect())
}

/// Carries out one change on the batch's copy of its message, numbering it from `last_change`.
fn apply_one(
    w: &mut Working,
    req: &ChangeRequest,
    now: NaiveDateTime,
    last_change: &mut i64,
    writes: &mut Writes,
) -> Result<Applied, ApiError> {
    let (low, high) = w.members;
    let admin = matches!(req.kind, ChangeKind::Delete { by_admin: Some(_) });
    if !admin && req.actor != low && req.actor != high {
        return Err(ApiError::not_found("room"));
    }
    let own = w.message.sender_id == req.actor;
    let deleted = w.message.deleted_at.is_some();
    let mut number = |w: &mut Working| {
        *last_change += 1;
        w.message.change_seq = *last_change;
        w.touched = true;
    };
    let changed = match &req.kind {
        ChangeKind::Edit { body, window } => {
            if !own {
                return Err(ApiError::Forbidden(
                    "only its sender can edit a message".into(),
                ));
            }
            if deleted {
                return Err(ApiError::Conflict("this message was deleted".into()));
            }
            if let Some(window) = window {
                let age = now.signed_duration_since(w.message.created_at);
                if age.to_std().is_ok_and(|age| age > *window) {
                    return Err(ApiError::Forbidden(format!(
                        "messages can only be edited within {} of sending",
                        humantime::format_duration(*window)
                    )));
                }
            }
            if body.as_str() == w.message.body {
                false
            } else if w.edits >= MAX_EDITS_PER_MESSAGE {
                return Err(ApiError::Forbidden(format!(
                    "a message can be edited at most {MAX_EDITS_PER_MESSAGE} times"
                )));
            } else {
                let previous = std::mem::replace(&mut w.message.body, body.as_str().to_owned());
                writes.edits.push((w.message.id, previous));
                w.message.edited_at = Some(now);
                w.edited = true;
                w.edits += 1;
                number(w);
                true
            }
        }
        ChangeKind::Delete { by_admin } => {
            if !own && by_admin.is_none() {
                return Err(ApiError::Forbidden(
                    "only its sender can delete a message".into(),
                ));
            }
            if deleted {
                false
            } else {
                let id = w.message.id;
                // Nothing of it stays: not its reactions, not its earlier bodies.
                writes.edits.retain(|(m, _)| *m != id);
                w.reactions.clear();
                w.message.body = String::new();
                w.message.deleted_at = Some(now);
                w.message.reply_to = None;
                w.deleted = true;
                number(w);
                if let Some(admin) = by_admin {
                    writes.audit.push(NewEntry {
                        actor: Some(*admin),
                        action: ADMIN_DELETE_ACTION,
                        target_type: "message",
                        target_id: id.0,
                        detail: format!("room {} seq {}", w.message.room_id, w.message.seq),
                    });
                }
                true
            }
        }
        ChangeKind::React { emoji, add: true } => {
            if deleted {
                return Err(ApiError::Conflict("this message was deleted".into()));
            }
            if w.has(emoji.as_str(), req.actor) {
                false
            } else {
                let mut distinct: Vec<&str> =
                    w.reactions.iter().map(|(_, e, _)| e.as_str()).collect();
                distinct.sort_unstable();
                distinct.dedup();
                if distinct.len() as i64 >= MAX_EMOJI_PER_MESSAGE
                    && !distinct.contains(&emoji.as_str())
                {
                    return Err(ApiError::validation(
                        "emoji",
                        format!(
                            "a message carries at most {MAX_EMOJI_PER_MESSAGE} different emoji"
                        ),
                    ));
                }
                w.reactions
                    .push((None, emoji.as_str().to_owned(), req.actor));
                number(w);
                true
            }
        }
        ChangeKind::React { emoji, add: false } => {
            let at = w
                .reactions
                .iter()
                .position(|(_, e, u)| e == emoji.as_str() && *u == req.actor);
            match at {
                Some(at) => {
                    if let (Some(id), _, _) = w.reactions.remove(at) {
                        writes.removed_reactions.push(id);
                    }
                    number(w);
                    true
                }
                None => false,
            }
        }
    };
    Ok(Applied {
        message: w.message.clone(),
        reactions: w.groups(),
        changed,
        members: (low, high),
    })
}

/// Writes what the batch did: deletions first, then the rows added, then the messages and the
/// rooms' change numbers.
fn write(
    conn: &mut DbConnection,
    working: &HashMap<MessageId, Working>,
    rooms: &HashMap<RoomId, (UserId, UserId, i64)>,
    writes: Writes,
    now: NaiveDateTime,
) -> ApiResult<()> {
    let mut touched: Vec<&Working> = working.values().filter(|w| w.touched).collect();
    if touched.is_empty() {
        return Ok(());
    }
    touched.sort_unstable_by_key(|w| w.message.id);
    let deleted: Vec<MessageId> = touched
        .iter()
        .filter(|w| w.deleted)
        .map(|w| w.message.id)
        .collect();
    if !deleted.is_empty() {
        diesel::delete(reactions::table.filter(reactions::message_id.eq_any(&deleted)))
            .execute(conn)?;
        diesel::delete(message_edits::table.filter(message_edits::message_id.eq_any(&deleted)))
            .execute(conn)?;
        // Their files' links stop working (unless the same bytes live on in another message);
        // the sweep deletes the bytes nothing carries any more.
        diesel::delete(
            message_attachments::table.filter(message_attachments::message_id.eq_any(&deleted)),
        )
        .execute(conn)?;
    }
    if !writes.removed_reactions.is_empty() {
        diesel::delete(reactions::table.filter(reactions::id.eq_any(&writes.removed_reactions)))
            .execute(conn)?;
    }
    let added: Vec<_> = touched
        .iter()
        .filter(|w| !w.deleted)
        .flat_map(|w| {
            w.reactions
                .iter()
                .filter(|(id, _, _)| id.is_none())
                .map(|(_, emoji, user)| {
                    (
                        reactions::message_id.eq(w.message.id),
                        reactions::user_id.eq(*user),
                        reactions::emoji.eq(emoji.as_str()),
                        reactions::created_at.eq(now),
                    )
                })
        })
        .collect();
    for chunk in added.chunks(INSERT_CHUNK) {
        let insert = diesel::insert_into(reactions::table).values(chunk);
        match conn {
            DbConnection::Postgresql(pg) => insert.execute(pg)?,
            DbConnection::Sqlite(s) => insert.execute(s)?,
        };
    }
    let kept: Vec<_> = writes
        .edits
        .iter()
        .map(|(message, body)| {
            (
                message_edits::message_id.eq(*message),
                message_edits::body.eq(body.as_str()),
                message_edits::replaced_at.eq(now),
            )
        })
        .collect();
    for chunk in kept.chunks(INSERT_CHUNK) {
        let insert = diesel::insert_into(message_edits::table).values(chunk);
        match conn {
            DbConnection::Postgresql(pg) => insert.execute(pg)?,
            DbConnection::Sqlite(s) => insert.execute(s)?,
        };
    }
    for entry in &writes.audit {
        audit::record(conn, entry)?;
    }
    let mut numbered = NumberedRows::default();
    for w in &touched {
        let (id, change) = (w.message.id.0, w.message.change_seq);
        if w.deleted {
            numbered.deleted.push([id, change, i64::from(w.edited)]);
        } else if w.edited {
            numbered.edited.push((id, w.message.body.as_str(), change));
        } else {
            numbered.reacted.push([id, change]);
        }
    }
    let mut changed_rooms: Vec<RoomId> = touched.iter().map(|w| w.message.room_id).collect();
    changed_rooms.sort_unstable();
    changed_rooms.dedup();
    numbered.rooms = changed_rooms
        .iter()
        .filter_map(|room| rooms.get(room).map(|&(_, _, last)| [room.0, last]))
        .collect();
    match conn {
        DbConnection::Postgresql(pg) => super::batch_pg::write_changes(pg, &numbered, now)?,
        DbConnection::Sqlite(_) => {
            for &[id, change, edited] in &numbered.deleted {
                let target = messages::table.find(id);
                if edited == 1 {
                    diesel::update(target)
                        .set(messages::edited_at.eq(Some(now)))
                        .execute(conn)?;
                }
                diesel::update(target)
                    .set((
                        messages::body.eq(""),
                        messages::deleted_at.eq(Some(now)),
                        messages::reply_to.eq(None::<MessageId>),
                        messages::change_seq.eq(change),
                    ))
                    .execute(conn)?;
            }
            for &(id, body, change) in &numbered.edited {
                diesel::update(messages::table.find(id))
                    .set((
                        messages::body.eq(body),
                        messages::edited_at.eq(Some(now)),
                        messages::change_seq.eq(change),
                    ))
                    .execute(conn)?;
            }
            for &[id, change] in &numbered.reacted {
                diesel::update(messages::table.find(id))
                    .set(messages::change_seq.eq(change))
                    .execute(conn)?;
            }
            for &[room, last] in &numbered.rooms {
                diesel::update(rooms::table.find(room))
                    .set(rooms::last_change_seq.eq(last))
                    .execute(conn)?;
            }
        }
    }
    Ok(())
}

/// The messages a batch numbered, by what it did to them, each `(id, change_seq)`, and its
/// rooms' newest change numbers `(room, last_change_seq)`.
#[derive(Default)]
pub struct NumberedRows<'a> {
    /// With 1 when the batch edited it before deleting it (its `edited_at` is the batch's time).
    pub deleted: Vec<[i64; 3]>,
    /// With the new body.
    pub edited: Vec<(i64, &'a str, i64)>,
    /// Only their reactions changed.
    pub reacted: Vec<[i64; 2]>,
    pub rooms: Vec<[i64; 2]>,
}

/// Rows per multi-row insert (well under SQLite's 32,766 parameters).
const INSERT_CHUNK: usize = 1000;

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
