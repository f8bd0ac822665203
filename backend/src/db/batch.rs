//! The message writer's statements on SQLite, shaped for group commit: one prepared (and cached)
//! insert per message, and one statement per batch for everything the batch's messages share —
//! the rooms' newest seq and message, the senders' read markers and the recipients' contact
//! entries. Per-batch statements take their rows as one JSON array bound as a single
//! parameter, so their SQL text never changes with the batch size.
//!
//! The caller runs these inside one `BEGIN IMMEDIATE` transaction and assigns seqs itself from
//! [`RoomHead::last_seq`]; [`finish_rooms`] checks that no one else moved a room's seq meanwhile.

use std::fmt::Write;
use std::marker::PhantomData;

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Text};
use diesel::sqlite::{Sqlite, SqliteConnection};

use super::models::MessageRow;
use super::schema::{message_attachments, messages, rooms, uploads, users};
use super::uploads::UploadRow;
use crate::domain::{MessageId, RoomId, Seq, UserId};

/// What the writer needs of a room: its members and where its history ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomHead {
    pub user_low: UserId,
    pub user_high: UserId,
    pub last_seq: Seq,
    pub last_message_id: MessageId,
}

pub fn room_head(conn: &mut SqliteConnection, room: RoomId) -> QueryResult<Option<RoomHead>> {
    rooms::table
        .find(room)
        .select((
            rooms::user_low,
            rooms::user_high,
            rooms::last_seq,
            rooms::last_message_id,
        ))
        .first::<(UserId, UserId, Seq, MessageId)>(conn)
        .optional()
        .map(|row| {
            row.map(
                |(user_low, user_high, last_seq, last_message_id)| RoomHead {
                    user_low,
                    user_high,
                    last_seq,
                    last_message_id,
                },
            )
        })
}

/// Inserts a message with the given id and seq; returns false if it was not inserted because
/// the sender already sent `client_msg_id` in this room or — if another writer got there
/// first — the id or seq is taken (the caller tells these apart with [`find_by_client_id`]).
///
/// `OR IGNORE` (with foreign keys deferred to the commit, see [`begin_batch`]) and no
/// `RETURNING` mean no constraint can abort the statement halfway, so SQLite needs no statement
/// journal for it: no copy of every page the insert touches.
#[allow(clippy::too_many_arguments)]
pub fn insert_message(
    conn: &mut SqliteConnection,
    id: MessageId,
    room: RoomId,
    seq: Seq,
    sender: UserId,
    client_msg_id: &str,
    body: &str,
    reply_to: Option<MessageId>,
    created_at: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::insert_or_ignore_into(messages::table)
        .values((
            messages::id.eq(id),
            messages::room_id.eq(room),
            messages::seq.eq(seq),
            messages::sender_id.eq(sender),
            messages::client_msg_id.eq(client_msg_id),
            messages::body.eq(body),
            messages::reply_to.eq(reply_to),
            messages::created_at.eq(created_at),
        ))
        .execute(conn)
        .map(|n| n == 1)
}

/// The newest message id (0 when there is none). Messages are never removed, so ids above it
/// are free.
pub fn last_message_id(conn: &mut SqliteConnection) -> QueryResult<MessageId> {
    messages::table
        .select(diesel::dsl::max(messages::id))
        .first::<Option<MessageId>>(conn)
        .map(|id| id.unwrap_or(MessageId(0)))
}

/// Starts a batch inside its transaction: foreign keys are checked at the commit rather than
/// after each statement (the setting ends with the transaction).
pub fn begin_batch(conn: &mut SqliteConnection) -> QueryResult<()> {
    conn.batch_execute("PRAGMA defer_foreign_keys = ON;")
}

pub fn find_by_client_id(
    conn: &mut SqliteConnection,
    room: RoomId,
    sender: UserId,
    client_msg_id: &str,
) -> QueryResult<Option<MessageRow>> {
    messages::table
        .filter(messages::room_id.eq(room))
        .filter(messages::sender_id.eq(sender))
        .filter(messages::client_msg_id.eq(client_msg_id))
        .select(MessageRow::as_select())
        .first(conn)
        .optional()
}

/// Of `ids`, the uploads that exist (the writer checks whose they are).
pub fn uploads_among(conn: &mut SqliteConnection, ids: &[&str]) -> QueryResult<Vec<UploadRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    uploads::table
        .filter(uploads::id.eq_any(ids))
        .select(UploadRow::as_select())
        .load(conn)
}

/// Records the uploads a new message carries, in order, and marks them sent (the first time).
pub fn attach(
    conn: &mut SqliteConnection,
    message: MessageId,
    ids: &[String],
    now: NaiveDateTime,
) -> QueryResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(position, id)| {
            (
                message_attachments::message_id.eq(message),
                message_attachments::upload_id.eq(id),
                message_attachments::position.eq(i32::try_from(position).unwrap_or(i32::MAX)),
            )
        })
        .collect();
    diesel::insert_into(message_attachments::table)
        .values(rows)
        .execute(conn)?;
    diesel::update(
        uploads::table
            .filter(uploads::id.eq_any(ids))
            .filter(uploads::sent_at.is_null()),
    )
    .set(uploads::sent_at.eq(now))
    .execute(conn)?;
    Ok(())
}

/// A room's new head after a batch, and the seq the batch started from.
#[derive(Debug, Clone, Copy)]
pub struct RoomAdvance {
    pub room: RoomId,
    pub from_seq: Seq,
    pub last_seq: Seq,
    pub last_message_id: MessageId,
}

/// Moves each room's `last_seq` and `last_message_id` forward. Returns false, changing
/// nothing the caller should keep, if some room's seq was no longer `from_seq` (another writer
/// got there first): the caller then rolls the transaction back.
pub fn finish_rooms(conn: &mut SqliteConnection, rooms: &[RoomAdvance]) -> QueryResult<bool> {
    if rooms.is_empty() {
        return Ok(true);
    }
    let mut json = String::with_capacity(rooms.len() * 40);
    json.push('[');
    for (i, r) in rooms.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        push_ints(
            &mut json,
            &[r.room.0, r.from_seq.0, r.last_seq.0, r.last_message_id.0],
        );
    }
    json.push(']');
    let changed = Fixed::<FinishRooms>::new(&[&json]).execute(conn)?;
    Ok(changed == rooms.len())
}

/// Records what senders did in a batch: each `(room, user, seq, sent)` adds `sent` messages to
/// `user`'s count in `room` and moves their read marker to `seq` unless it is already further
/// (sending reads everything before it).
pub fn record_senders(
    conn: &mut SqliteConnection,
    senders: &[(RoomId, UserId, Seq, i64)],
) -> QueryResult<()> {
    if senders.is_empty() {
        return Ok(());
    }
    let mut json = String::with_capacity(senders.len() * 32);
    json.push('[');
    for (i, (room, user, seq, sent)) in senders.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        push_ints(&mut json, &[room.0, user.0, seq.0, *sent]);
    }
    json.push(']');
    Fixed::<RecordSenders>::new(&[&json])
        .execute(conn)
        .map(|_| ())
}

/// Moves one read marker forward; true if it moved.
pub fn advance_read_marker(
    conn: &mut SqliteConnection,
    room: RoomId,
    user: UserId,
    up_to: Seq,
) -> QueryResult<bool> {
    diesel::sql_query(
        "UPDATE room_members SET read_up_to = ? \
         WHERE room_id = ? AND user_id = ? AND read_up_to < ?",
    )
    .bind::<BigInt, _>(up_to.0)
    .bind::<BigInt, _>(room.0)
    .bind::<BigInt, _>(user.0)
    .bind::<BigInt, _>(up_to.0)
    .execute(conn)
    .map(|n| n > 0)
}

/// Adds `(owner, contact, room)` contact entries that do not exist yet.
pub fn insert_contacts_if_absent(
    conn: &mut SqliteConnection,
    entries: &[(UserId, UserId, RoomId)],
    now: NaiveDateTime,
) -> QueryResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut json = String::with_capacity(entries.len() * 30);
    json.push('[');
    for (i, (owner, contact, room)) in entries.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        push_ints(&mut json, &[owner.0, contact.0, room.0]);
    }
    json.push(']');
    // Stored as diesel stores timestamps on SQLite.
    let now = now.format("%F %T%.f").to_string();
    Fixed::<InsertContacts>::new(&[&now, &json])
        .execute(conn)
        .map(|_| ())
}

/// A statement whose SQL never changes, with text parameters. Unlike `sql_query`, which diesel
/// prepares again on every call, it is prepared once per connection and then taken from the
/// connection's statement cache, keyed by its type.
struct Fixed<'a, K> {
    params: &'a [&'a str],
    kind: PhantomData<K>,
}

/// The SQL of a [`Fixed`] statement; each `?` takes the next parameter.
trait FixedSql: 'static {
    const SQL: &'static str;
}

impl<'a, K: FixedSql> Fixed<'a, K> {
    fn new(params: &'a [&'a str]) -> Self {
        Fixed {
            params,
            kind: PhantomData,
        }
    }
}

impl<K: FixedSql> QueryId for Fixed<'_, K> {
    type QueryId = Fixed<'static, K>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<K: FixedSql> QueryFragment<Sqlite> for Fixed<'_, K> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        let mut parts = K::SQL.split('?');
        if let Some(first) = parts.next() {
            out.push_sql(first);
        }
        for (part, param) in parts.zip(self.params.iter()) {
            out.push_bind_param::<Text, str>(param)?;
            out.push_sql(part);
        }
        Ok(())
    }
}

impl<K> RunQueryDsl<SqliteConnection> for Fixed<'_, K> {}

/// `[[room, from_seq, last_seq, last_message_id], …]`
struct FinishRooms;
impl FixedSql for FinishRooms {
    const SQL: &'static str =
        "UPDATE rooms SET last_seq = j.value ->> 2, last_message_id = j.value ->> 3 \
         FROM json_each(?) AS j \
         WHERE rooms.id = j.value ->> 0 AND rooms.last_seq = j.value ->> 1";
}

/// `[[room, user, seq, sent], …]`
struct RecordSenders;
impl FixedSql for RecordSenders {
    const SQL: &'static str =
        "UPDATE room_members SET read_up_to = max(read_up_to, j.value ->> 2), \
         sent_count = sent_count + (j.value ->> 3) \
         FROM json_each(?) AS j \
         WHERE room_members.room_id = j.value ->> 0 AND room_members.user_id = j.value ->> 1";
}

/// The creation time, then `[[owner, contact, room], …]`. `WHERE true` keeps SQLite from
/// reading `ON CONFLICT` as a join constraint.
struct InsertContacts;
impl FixedSql for InsertContacts {
    const SQL: &'static str = "INSERT INTO contacts (owner_id, contact_id, room_id, created_at) \
         SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, ? FROM json_each(?) AS j WHERE true \
         ON CONFLICT (owner_id, contact_id) DO NOTHING";
}

/// Appends `[a,b,…]`.
fn push_ints(out: &mut String, values: &[i64]) {
    out.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{v}");
    }
    out.push(']');
}

/// Which of `users` are deactivated accounts (primary-key look-ups).
pub fn deactivated_among(
    conn: &mut SqliteConnection,
    ids: &[UserId],
) -> QueryResult<std::collections::HashSet<UserId>> {
    let mut found = std::collections::HashSet::new();
    // In chunks: SQLite caps the number of bound parameters.
    for chunk in ids.chunks(10_000) {
        found.extend(
            users::table
                .filter(users::id.eq_any(chunk))
                .filter(users::deactivated_at.is_not_null())
                .select(users::id)
                .load::<UserId>(conn)?,
        );
    }
    Ok(found)
}
