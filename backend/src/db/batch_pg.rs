//! The message writer's batches on PostgreSQL, at group-commit speed and correct when several
//! servers write into one database: one transaction per batch, and a fixed number of statements
//! whatever the batch's size, each taking its rows as arrays (`unnest`).
//!
//! A batch first locks the head rows of every room it touches, **in room-id order**, in one
//! statement. Two servers whose batches touch the same rooms in different job orders then wait
//! for each other instead of each holding one room the other needs (a deadlock). Holding a
//! room's head means no one else can add to the room until the commit: seqs assigned from the
//! locked heads stay gap-free and unique, and the look-up of already stored `client_msg_id`s
//! that follows is exact, so the insert never meets a conflict.
//!
//! Statements per batch: `BEGIN`; lock the heads (with the members and whether one is
//! deactivated); find the sends already stored; hold the uploads the sends attach (only when
//! some do); insert the new messages; record their attachments and mark those uploads sent;
//! move the rooms' heads; record the senders (read marker and sent count); add the recipients'
//! contact entries; move read markers (only when the batch has reads); `COMMIT`. A statement
//! with no rows is skipped. A deadlock or serialization failure rolls the batch back and runs it again.

use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::sync::Arc;

use chrono::{NaiveDateTime, SubsecRound};
use diesel::pg::{Pg, PgConnection};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamp};

use super::models::MessageRow;
use super::schema::uploads;
use super::uploads::UploadRow;
use crate::domain::{MessageId, RoomId, Seq, UserId};

/// How many times a batch runs at most when it keeps meeting deadlocks or serialization
/// failures.
const ATTEMPTS: u32 = 3;

/// One request of a batch, in the order it was queued.
#[derive(Debug, Clone, Copy)]
pub enum BatchJob<'a> {
    Send {
        user: UserId,
        room: RoomId,
        client_msg_id: &'a str,
        body: &'a str,
        /// Checked by the caller: a message of the same room.
        reply_to: Option<MessageId>,
        /// Upload ids, distinct (checked by the caller); each must be the sender's.
        attachments: &'a [String],
    },
    Read {
        user: UserId,
        room: RoomId,
        up_to: Seq,
    },
}

/// Why a job of the batch was not carried out (the rest of the batch was).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No such room, or the user is not one of its members.
    NotMember,
    /// One of the room's members is deactivated (sends only).
    Deactivated,
    /// The send's attachment at this index is not one of the sender's uploads.
    NotYourUpload(usize),
}

/// A stored send: the message, whether this job stored it (false when the sender's
/// `client_msg_id` was already known in the room: the stored message is returned), and the
/// room's members `(user_low, user_high)`.
#[derive(Debug, Clone)]
pub struct Stored {
    pub message: Arc<MessageRow>,
    pub created: bool,
    pub members: (UserId, UserId),
    /// The uploads a new message carries, in order (empty when `created` is false: the stored
    /// message's are read by the caller).
    pub attachments: Vec<UploadRow>,
}

/// What became of each job, in the batch's order.
#[derive(Debug, Clone)]
pub enum Outcome {
    Sent(Result<Stored, Refused>),
    /// The room's members and the new marker when the reader's marker moved.
    Read(Result<Option<(UserId, UserId, Seq)>, Refused>),
}

/// A committed batch.
#[derive(Debug)]
pub struct Committed {
    pub outcomes: Vec<Outcome>,
    /// How many times the batch was rolled back by a deadlock or serialization failure and run
    /// again before it committed.
    pub retries: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Database(#[from] DieselError),
    #[error("{0}")]
    Inconsistent(&'static str),
}

/// Runs `jobs` in one transaction and commits it; every outcome holds only once this returns
/// `Ok`. On an error nothing of the batch is stored (or, if the connection broke during the
/// commit, possibly all of it: a resend with the same `client_msg_id` finds it).
pub fn commit(conn: &mut PgConnection, jobs: &[BatchJob<'_>]) -> Result<Committed, BatchError> {
    let mut retries = 0;
    loop {
        let result = conn
            .build_transaction()
            .read_committed()
            .run(|c| apply(c, jobs));
        match result {
            Ok(outcomes) => return Ok(Committed { outcomes, retries }),
            Err(BatchError::Database(e)) if retries + 1 < ATTEMPTS && is_retryable(&e) => {
                retries += 1;
                tracing::warn!(error = %e, attempt = retries + 1, "a message batch is run again");
            }
            Err(e) => return Err(e),
        }
    }
}

/// A deadlock (SQLSTATE 40P01, which diesel does not name: told by PostgreSQL's message) or a
/// serialization failure (40001): the transaction was rolled back and may succeed if run again.
fn is_retryable(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            info.message().starts_with("deadlock detected")
        }
        _ => false,
    }
}

/// A room's head as locked, and as the batch moves it.
#[derive(Debug, Clone, Copy)]
struct Head {
    low: UserId,
    high: UserId,
    /// Where the room's history ended when the batch locked it.
    from_seq: Seq,
    last_seq: Seq,
    last_message_id: MessageId,
    deactivated: bool,
}

impl Head {
    fn has_member(&self, user: UserId) -> bool {
        self.low == user || self.high == user
    }
}

/// A job's outcome before the batch's statements have run.
enum Slot {
    Ready(Outcome),
    /// A new message: its index among the inserted rows; `created` is false for a resend of a
    /// `client_msg_id` that an earlier job of the same batch stores.
    New {
        row: usize,
        created: bool,
        members: (UserId, UserId),
    },
    /// A read marker moved to `up_to` (clamped) unless it is already there.
    Read {
        room: RoomId,
        user: UserId,
        up_to: Seq,
    },
}

/// The messages a batch inserts, as columns.
#[derive(Default)]
struct NewRows<'a> {
    room: Vec<i64>,
    seq: Vec<i64>,
    sender: Vec<i64>,
    client_msg_id: Vec<&'a str>,
    body: Vec<&'a str>,
    /// 0 for none.
    reply_to: Vec<i64>,
    attachments: Vec<&'a [String]>,
}

fn apply(conn: &mut PgConnection, jobs: &[BatchJob<'_>]) -> Result<Vec<Outcome>, BatchError> {
    let mut heads = lock_heads(conn, jobs)?;
    let known = find_known(conn, jobs, &heads)?;
    let uploads = lock_uploads(conn, jobs)?;
    // Stored with microseconds, as PostgreSQL keeps them: the ack shows what history will.
    let now = crate::db::now().trunc_subsecs(6);

    let mut slots = Vec::with_capacity(jobs.len());
    let mut rows = NewRows::default();
    // Sends of this batch by (room, sender, client_msg_id): their row.
    let mut pending: HashMap<(RoomId, UserId, &str), usize> = HashMap::new();
    for job in jobs {
        let slot = match *job {
            BatchJob::Send {
                user,
                room,
                client_msg_id,
                body,
                reply_to,
                attachments,
            } => match heads.get_mut(&room).filter(|h| h.has_member(user)) {
                None => Slot::Ready(Outcome::Sent(Err(Refused::NotMember))),
                Some(head) if head.deactivated => {
                    Slot::Ready(Outcome::Sent(Err(Refused::Deactivated)))
                }
                Some(head) => {
                    let members = (head.low, head.high);
                    let stored = known
                        .get(&(room, user))
                        .and_then(|ids| ids.get(client_msg_id));
                    if let Some(message) = stored {
                        Slot::Ready(Outcome::Sent(Ok(Stored {
                            message: Arc::clone(message),
                            created: false,
                            members,
                            attachments: Vec::new(),
                        })))
                    } else if let Some(&row) = pending.get(&(room, user, client_msg_id)) {
                        Slot::New {
                            row,
                            created: false,
                            members,
                        }
                    } else if let Some(index) = attachments
                        .iter()
                        .position(|id| uploads.get(id).is_none_or(|u| u.uploader_id != user))
                    {
                        Slot::Ready(Outcome::Sent(Err(Refused::NotYourUpload(index))))
                    } else {
                        head.last_seq = Seq(head.last_seq.0 + 1);
                        let row = rows.room.len();
                        rows.room.push(room.0);
                        rows.seq.push(head.last_seq.0);
                        rows.sender.push(user.0);
                        rows.client_msg_id.push(client_msg_id);
                        rows.body.push(body);
                        rows.reply_to.push(reply_to.map_or(0, |m| m.0));
                        rows.attachments.push(attachments);
                        pending.insert((room, user, client_msg_id), row);
                        Slot::New {
                            row,
                            created: true,
                            members,
                        }
                    }
                }
            },
            BatchJob::Read { user, room, up_to } => {
                match heads.get(&room).filter(|h| h.has_member(user)) {
                    // Past the newest message (as of the jobs before it) counts as the newest.
                    Some(head) => Slot::Read {
                        room,
                        user,
                        up_to: up_to.min(head.last_seq),
                    },
                    None => Slot::Ready(Outcome::Read(Err(Refused::NotMember))),
                }
            }
        };
        slots.push(slot);
    }

    let messages = insert_messages(conn, &rows, now)?;
    for (message, &room) in messages.iter().zip(&rows.room) {
        if let Some(head) = heads.get_mut(&RoomId(room)) {
            head.last_message_id = head.last_message_id.max(message.id);
        }
    }
    attach_uploads(conn, &messages, &rows.attachments, now)?;
    let moved = advance_reads(conn, &slots)?;
    finish_rooms(conn, &heads)?;
    record_senders(conn, &messages)?;
    insert_contacts(conn, &messages, &heads, now)?;

    // Each read job in order: did it move the marker past where the jobs before it left it?
    let mut markers = moved;
    let outcomes = slots
        .into_iter()
        .map(|slot| match slot {
            Slot::Ready(outcome) => outcome,
            Slot::New {
                row,
                created,
                members,
            } => Outcome::Sent(Ok(Stored {
                message: Arc::clone(&messages[row]),
                created,
                members,
                attachments: if created {
                    rows.attachments[row]
                        .iter()
                        .filter_map(|id| uploads.get(id).cloned())
                        .collect()
                } else {
                    Vec::new()
                },
            })),
            Slot::Read { room, user, up_to } => {
                let members = heads.get(&room).map_or((user, user), |h| (h.low, h.high));
                let moved = match markers.get_mut(&(room, user)) {
                    Some(marker) if *marker < up_to => {
                        *marker = up_to;
                        Some((members.0, members.1, up_to))
                    }
                    _ => None,
                };
                Outcome::Read(Ok(moved))
            }
        })
        .collect();
    Ok(outcomes)
}

/// Locks the heads of the batch's rooms in id order; with each room's members and whether one of
/// them is deactivated (read afresh for every batch: a deactivation counts from the next batch).
fn lock_heads(
    conn: &mut PgConnection,
    jobs: &[BatchJob<'_>],
) -> Result<HashMap<RoomId, Head>, BatchError> {
    let mut rooms: Vec<i64> = jobs
        .iter()
        .map(|job| match job {
            BatchJob::Send { room, .. } | BatchJob::Read { room, .. } => room.0,
        })
        .collect();
    rooms.sort_unstable();
    rooms.dedup();
    if rooms.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(RoomId, UserId, UserId, Seq, MessageId, bool)> =
        Stmt::<LockHeads>::new(&[Param::Ints(&rooms)]).load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(room, low, high, last_seq, last_message_id, deactivated)| {
                let head = Head {
                    low,
                    high,
                    from_seq: last_seq,
                    last_seq,
                    last_message_id,
                    deactivated,
                };
                (room, head)
            },
        )
        .collect())
}

/// The uploads the batch's sends attach, by id, each held (`FOR KEY SHARE`) until the commit so
/// that the sweep cannot delete one between this check and the attachment's insert.
fn lock_uploads(
    conn: &mut PgConnection,
    jobs: &[BatchJob<'_>],
) -> Result<HashMap<String, UploadRow>, BatchError> {
    let mut ids: Vec<&str> = jobs
        .iter()
        .flat_map(|job| match job {
            BatchJob::Send { attachments, .. } => attachments.iter().map(String::as_str),
            BatchJob::Read { .. } => [].iter().map(String::as_str),
        })
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    ids.sort_unstable();
    ids.dedup();
    let rows: Vec<UploadRow> = uploads::table
        .filter(uploads::id.eq_any(&ids))
        .order(uploads::id)
        .select(UploadRow::as_select())
        .for_key_share()
        .load(conn)?;
    Ok(rows.into_iter().map(|u| (u.id.clone(), u)).collect())
}

/// Records the uploads each new message carries, in order, and marks them sent: two statements
/// for the whole batch (none when no message carries any).
fn attach_uploads(
    conn: &mut PgConnection,
    messages: &[Arc<MessageRow>],
    attachments: &[&[String]],
    now: NaiveDateTime,
) -> Result<(), BatchError> {
    let mut message_ids = Vec::new();
    let mut upload_ids: Vec<&str> = Vec::new();
    let mut positions = Vec::new();
    for (message, ids) in messages.iter().zip(attachments) {
        for (position, id) in ids.iter().enumerate() {
            message_ids.push(message.id.0);
            upload_ids.push(id);
            positions.push(i64::try_from(position).unwrap_or(i64::MAX));
        }
    }
    if message_ids.is_empty() {
        return Ok(());
    }
    Stmt::<InsertAttachments>::new(&[
        Param::Ints(&message_ids),
        Param::Texts(&upload_ids),
        Param::Ints(&positions),
    ])
    .execute(conn)?;
    upload_ids.sort_unstable();
    upload_ids.dedup();
    Stmt::<MarkSent>::new(&[Param::Time(now), Param::Texts(&upload_ids)]).execute(conn)?;
    Ok(())
}

/// The messages already stored for the batch's sends, by (room, sender) and client_msg_id.
/// Only sends that can be carried out are looked up.
fn find_known(
    conn: &mut PgConnection,
    jobs: &[BatchJob<'_>],
    heads: &HashMap<RoomId, Head>,
) -> Result<Known, BatchError> {
    let mut keys: Vec<(RoomId, UserId, &str)> = jobs
        .iter()
        .filter_map(|job| match *job {
            BatchJob::Send {
                user,
                room,
                client_msg_id,
                ..
            } => Some((room, user, client_msg_id)),
            BatchJob::Read { .. } => None,
        })
        .filter(|(room, user, _)| {
            heads
                .get(room)
                .is_some_and(|h| h.has_member(*user) && !h.deactivated)
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let rooms: Vec<i64> = keys.iter().map(|k| k.0 .0).collect();
    let senders: Vec<i64> = keys.iter().map(|k| k.1 .0).collect();
    let ids: Vec<&str> = keys.iter().map(|k| k.2).collect();
    let rows: Vec<MessageRow> = Stmt::<FindKnown>::new(&[
        Param::Ints(&rooms),
        Param::Ints(&senders),
        Param::Texts(&ids),
    ])
    .load(conn)?;
    let mut known: Known = HashMap::new();
    for row in rows {
        known
            .entry((row.room_id, row.sender_id))
            .or_default()
            .insert(row.client_msg_id.clone(), Arc::new(row));
    }
    Ok(known)
}

/// Stored messages by (room, sender), then client_msg_id.
type Known = HashMap<(RoomId, UserId), HashMap<String, Arc<MessageRow>>>;

/// Inserts the batch's new messages in one statement; returns them, in `rows`' order.
fn insert_messages(
    conn: &mut PgConnection,
    rows: &NewRows<'_>,
    now: NaiveDateTime,
) -> Result<Vec<Arc<MessageRow>>, BatchError> {
    if rows.room.is_empty() {
        return Ok(Vec::new());
    }
    let inserted: Vec<(MessageId, RoomId, Seq)> = Stmt::<InsertMessages>::new(&[
        Param::Time(now),
        Param::Ints(&rows.room),
        Param::Ints(&rows.seq),
        Param::Ints(&rows.sender),
        Param::Texts(&rows.client_msg_id),
        Param::Texts(&rows.body),
        Param::Ints(&rows.reply_to),
    ])
    .load(conn)?;
    let mut ids: HashMap<(RoomId, Seq), MessageId> = inserted
        .into_iter()
        .map(|(id, room, seq)| ((room, seq), id))
        .collect();
    let mut messages = Vec::with_capacity(rows.room.len());
    for row in 0..rows.room.len() {
        let (room, seq) = (RoomId(rows.room[row]), Seq(rows.seq[row]));
        let id = ids.remove(&(room, seq)).ok_or(BatchError::Inconsistent(
            "an inserted message was not returned",
        ))?;
        messages.push(Arc::new(MessageRow {
            id,
            room_id: room,
            seq,
            sender_id: UserId(rows.sender[row]),
            client_msg_id: rows.client_msg_id[row].to_owned(),
            body: rows.body[row].to_owned(),
            created_at: now,
            deleted_at: None,
            edited_at: None,
            reply_to: match rows.reply_to[row] {
                0 => None,
                id => Some(MessageId(id)),
            },
            change_seq: 0,
        }));
    }
    Ok(messages)
}

/// Moves each room the batch wrote to onward to its new head. The rooms are locked: a head that
/// is not where the batch found it means something wrote without the lock.
fn finish_rooms(conn: &mut PgConnection, heads: &HashMap<RoomId, Head>) -> Result<(), BatchError> {
    let columns = int_columns(
        heads
            .iter()
            .filter(|(_, h)| h.last_seq != h.from_seq)
            .map(|(room, h)| [room.0, h.from_seq.0, h.last_seq.0, h.last_message_id.0]),
    );
    let moved = columns[0].len();
    if moved == 0 {
        return Ok(());
    }
    if Stmt::<FinishRooms>::new(&params(None, &columns)).execute(conn)? != moved {
        return Err(BatchError::Inconsistent(
            "a locked room's seq moved under the writer",
        ));
    }
    Ok(())
}

/// Adds each sender's new messages to their sent count in the room and moves their read marker
/// to the newest of them (sending reads everything before it).
fn record_senders(conn: &mut PgConnection, messages: &[Arc<MessageRow>]) -> Result<(), BatchError> {
    let mut senders: BTreeMap<(RoomId, UserId), (Seq, i64)> = BTreeMap::new();
    for m in messages {
        let entry = senders
            .entry((m.room_id, m.sender_id))
            .or_insert((m.seq, 0));
        entry.0 = entry.0.max(m.seq);
        entry.1 += 1;
    }
    if senders.is_empty() {
        return Ok(());
    }
    let columns = int_columns(
        senders
            .into_iter()
            .map(|((room, user), (seq, sent))| [room.0, user.0, seq.0, sent]),
    );
    Stmt::<RecordSenders>::new(&params(None, &columns)).execute(conn)?;
    Ok(())
}

/// Whoever writes to you becomes your contact: each recipient gets an entry for the sender if
/// they have none.
fn insert_contacts(
    conn: &mut PgConnection,
    messages: &[Arc<MessageRow>],
    heads: &HashMap<RoomId, Head>,
    now: NaiveDateTime,
) -> Result<(), BatchError> {
    let mut entries: BTreeMap<(UserId, UserId), RoomId> = BTreeMap::new();
    for m in messages {
        if let Some(head) = heads.get(&m.room_id) {
            let recipient = if head.low == m.sender_id {
                head.high
            } else {
                head.low
            };
            entries.insert((recipient, m.sender_id), m.room_id);
        }
    }
    if entries.is_empty() {
        return Ok(());
    }
    let columns = int_columns(
        entries
            .into_iter()
            .map(|((owner, contact), room)| [owner.0, contact.0, room.0]),
    );
    Stmt::<InsertContacts>::new(&params(Some(Param::Time(now)), &columns)).execute(conn)?;
    Ok(())
}

/// Moves the batch's read markers (each to the furthest any job asks for), never backwards.
/// Returns, for each marker that moved, where it was before the batch.
fn advance_reads(
    conn: &mut PgConnection,
    slots: &[Slot],
) -> Result<HashMap<(RoomId, UserId), Seq>, BatchError> {
    let mut furthest: BTreeMap<(RoomId, UserId), Seq> = BTreeMap::new();
    for slot in slots {
        if let Slot::Read { room, user, up_to } = *slot {
            let entry = furthest.entry((room, user)).or_insert(up_to);
            *entry = (*entry).max(up_to);
        }
    }
    if furthest.is_empty() {
        return Ok(HashMap::new());
    }
    let columns = int_columns(
        furthest
            .into_iter()
            .map(|((room, user), up_to)| [room.0, user.0, up_to.0]),
    );
    let moved: Vec<(RoomId, UserId, Seq)> =
        Stmt::<AdvanceReads>::new(&params(None, &columns)).load(conn)?;
    Ok(moved
        .into_iter()
        .map(|(room, user, before)| ((room, user), before))
        .collect())
}

/// Writes a batch of message changes (see `db::changes`): one statement per kind of change and
/// one for the rooms' change numbers, whatever the batch's size.
pub fn write_changes(
    conn: &mut PgConnection,
    rows: &super::changes::NumberedRows<'_>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    if !rows.deleted.is_empty() {
        let columns = int_columns(rows.deleted.iter().copied());
        let params = [
            Param::Time(now),
            Param::Time(now),
            Param::Ints(&columns[0]),
            Param::Ints(&columns[1]),
            Param::Ints(&columns[2]),
        ];
        Stmt::<DeleteMessages>::new(&params).execute(conn)?;
    }
    if !rows.edited.is_empty() {
        let ids: Vec<i64> = rows.edited.iter().map(|e| e.0).collect();
        let bodies: Vec<&str> = rows.edited.iter().map(|e| e.1).collect();
        let changes: Vec<i64> = rows.edited.iter().map(|e| e.2).collect();
        let params = [
            Param::Time(now),
            Param::Ints(&ids),
            Param::Texts(&bodies),
            Param::Ints(&changes),
        ];
        Stmt::<EditMessages>::new(&params).execute(conn)?;
    }
    if !rows.reacted.is_empty() {
        let columns = int_columns(rows.reacted.iter().copied());
        Stmt::<NumberMessages>::new(&params(None, &columns)).execute(conn)?;
    }
    if !rows.rooms.is_empty() {
        let columns = int_columns(rows.rooms.iter().copied());
        Stmt::<NumberRooms>::new(&params(None, &columns)).execute(conn)?;
    }
    Ok(())
}

/// The deletion time twice, then `[message], [change_seq], [edited]`: tombstones (`edited` 1
/// when the same batch edited it first: its `edited_at` is the batch's time too).
struct DeleteMessages;
impl StmtSql for DeleteMessages {
    const SQL: &'static str = "UPDATE messages SET body = '', deleted_at = ?, \
         edited_at = CASE WHEN u.edited = 1 THEN ? ELSE messages.edited_at END, \
         reply_to = NULL, change_seq = u.change_seq \
         FROM unnest(?::bigint[], ?::bigint[], ?::bigint[]) AS u(id, change_seq, edited) \
         WHERE messages.id = u.id";
    type Row = ();
}

/// The edit time, then `[message], [body], [change_seq]`.
struct EditMessages;
impl StmtSql for EditMessages {
    const SQL: &'static str = "UPDATE messages SET edited_at = ?, body = u.body, \
         change_seq = u.change_seq \
         FROM unnest(?::bigint[], ?::text[], ?::bigint[]) AS u(id, body, change_seq) \
         WHERE messages.id = u.id";
    type Row = ();
}

/// `[message], [change_seq]`.
struct NumberMessages;
impl StmtSql for NumberMessages {
    const SQL: &'static str = "UPDATE messages SET change_seq = u.change_seq \
         FROM unnest(?::bigint[], ?::bigint[]) AS u(id, change_seq) WHERE messages.id = u.id";
    type Row = ();
}

/// `[room], [last_change_seq]`.
struct NumberRooms;
impl StmtSql for NumberRooms {
    const SQL: &'static str = "UPDATE rooms SET last_change_seq = u.last_change_seq \
         FROM unnest(?::bigint[], ?::bigint[]) AS u(id, last_change_seq) WHERE rooms.id = u.id";
    type Row = ();
}

/// Rows of integers as one array per column: the shape `unnest` takes them in.
fn int_columns<const N: usize>(rows: impl IntoIterator<Item = [i64; N]>) -> [Vec<i64>; N] {
    let mut columns: [Vec<i64>; N] = std::array::from_fn(|_| Vec::new());
    for row in rows {
        for (column, value) in columns.iter_mut().zip(row) {
            column.push(value);
        }
    }
    columns
}

/// A statement's parameters: `first`, if any, then one array per column.
fn params<'a>(first: Option<Param<'a>>, columns: &'a [Vec<i64>]) -> Vec<Param<'a>> {
    first
        .into_iter()
        .chain(columns.iter().map(|c| Param::Ints(c)))
        .collect()
}

/// A parameter of a [`Stmt`].
enum Param<'a> {
    Ints(&'a [i64]),
    Texts(&'a [&'a str]),
    Time(NaiveDateTime),
}

/// A statement whose SQL never changes whatever the batch's size (its rows come as arrays), so
/// it is prepared once per connection and then taken from the connection's statement cache,
/// keyed by its type (diesel prepares `sql_query` again on every call).
struct Stmt<'a, K> {
    params: &'a [Param<'a>],
    kind: PhantomData<K>,
}

/// The SQL of a [`Stmt`] (each `?` takes the next parameter) and the types of its rows.
trait StmtSql: 'static {
    const SQL: &'static str;
    type Row;
}

impl<'a, K: StmtSql> Stmt<'a, K> {
    fn new(params: &'a [Param<'a>]) -> Self {
        Stmt {
            params,
            kind: PhantomData,
        }
    }
}

impl<K: StmtSql> QueryId for Stmt<'_, K> {
    type QueryId = Stmt<'static, K>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<K: StmtSql> Query for Stmt<'_, K> {
    type SqlType = K::Row;
}

impl<K: StmtSql> QueryFragment<Pg> for Stmt<'_, K> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let mut parts = K::SQL.split('?');
        if let Some(first) = parts.next() {
            out.push_sql(first);
        }
        for (part, param) in parts.zip(self.params.iter()) {
            match param {
                Param::Ints(v) => out.push_bind_param::<Array<BigInt>, [i64]>(v)?,
                Param::Texts(v) => out.push_bind_param::<Array<Text>, [&str]>(v)?,
                Param::Time(t) => out.push_bind_param::<Timestamp, NaiveDateTime>(t)?,
            }
            out.push_sql(part);
        }
        Ok(())
    }
}

impl<K> RunQueryDsl<PgConnection> for Stmt<'_, K> {}

/// `[room]` → the locked heads in id order, each with whether a member is deactivated.
/// `NO KEY UPDATE` is the lock an update of a room's head takes: writers wait for each other, but
/// inserts that only reference the room (a contact, a membership) do not wait for the batch.
struct LockHeads;
impl StmtSql for LockHeads {
    const SQL: &'static str =
        "SELECT r.id, r.user_low, r.user_high, r.last_seq, r.last_message_id, \
         (lo.deactivated_at IS NOT NULL OR hi.deactivated_at IS NOT NULL) \
         FROM rooms r JOIN users lo ON lo.id = r.user_low JOIN users hi ON hi.id = r.user_high \
         WHERE r.id = ANY(?::bigint[]) ORDER BY r.id FOR NO KEY UPDATE OF r";
    type Row = (BigInt, BigInt, BigInt, BigInt, BigInt, Bool);
}

/// `[room], [sender], [client_msg_id]` → the stored messages with those keys.
struct FindKnown;
impl StmtSql for FindKnown {
    const SQL: &'static str = "SELECT m.id, m.room_id, m.seq, m.sender_id, m.client_msg_id, \
         m.body, m.created_at, m.deleted_at, m.edited_at, m.reply_to, m.change_seq \
         FROM unnest(?::bigint[], ?::bigint[], ?::text[]) AS k(room_id, sender_id, client_msg_id) \
         JOIN messages m ON m.room_id = k.room_id AND m.sender_id = k.sender_id \
         AND m.client_msg_id = k.client_msg_id";
    type Row = (
        BigInt,
        BigInt,
        BigInt,
        BigInt,
        Text,
        Text,
        Timestamp,
        Nullable<Timestamp>,
        Nullable<Timestamp>,
        Nullable<BigInt>,
        BigInt,
    );
}

/// The creation time, then `[room], [seq], [sender], [client_msg_id], [body], [reply_to or 0]` → `(id, room, seq)`
/// of each row. Ids are taken in the rows' order, so a room's ids grow with its seqs.
struct InsertMessages;
impl StmtSql for InsertMessages {
    const SQL: &'static str =
        "INSERT INTO messages (room_id, seq, sender_id, client_msg_id, body, reply_to, created_at) \
         SELECT t.room_id, t.seq, t.sender_id, t.client_msg_id, t.body, NULLIF(t.reply_to, 0), ? \
         FROM unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::bigint[]) \
         WITH ORDINALITY AS t(room_id, seq, sender_id, client_msg_id, body, reply_to, ord) \
         ORDER BY t.ord \
         RETURNING id, room_id, seq";
    type Row = (BigInt, BigInt, BigInt);
}

/// `[message], [upload], [position]`.
struct InsertAttachments;
impl StmtSql for InsertAttachments {
    const SQL: &'static str = "INSERT INTO message_attachments (message_id, upload_id, position) \
         SELECT u.message_id, u.upload_id, u.position::integer \
         FROM unnest(?::bigint[], ?::text[], ?::bigint[]) AS u(message_id, upload_id, position)";
    type Row = ();
}

/// The time, then `[upload]`: uploads a message carries for the first time.
struct MarkSent;
impl StmtSql for MarkSent {
    const SQL: &'static str = "UPDATE uploads SET sent_at = ? \
         WHERE id = ANY(?::text[]) AND sent_at IS NULL";
    type Row = ();
}

/// `[room], [from_seq], [last_seq], [last_message_id]`.
struct FinishRooms;
impl StmtSql for FinishRooms {
    const SQL: &'static str = "UPDATE rooms SET last_seq = u.last_seq, \
         last_message_id = GREATEST(rooms.last_message_id, u.last_message_id) \
         FROM unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[]) \
         AS u(id, from_seq, last_seq, last_message_id) \
         WHERE rooms.id = u.id AND rooms.last_seq = u.from_seq";
    type Row = ();
}

/// `[room], [user], [seq], [sent]`.
struct RecordSenders;
impl StmtSql for RecordSenders {
    const SQL: &'static str = "UPDATE room_members \
         SET read_up_to = GREATEST(room_members.read_up_to, u.seq), \
         sent_count = room_members.sent_count + u.sent \
         FROM unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[]) \
         AS u(room_id, user_id, seq, sent) \
         WHERE room_members.room_id = u.room_id AND room_members.user_id = u.user_id";
    type Row = ();
}

/// The creation time, then `[owner], [contact], [room]`.
struct InsertContacts;
impl StmtSql for InsertContacts {
    const SQL: &'static str = "INSERT INTO contacts (owner_id, contact_id, room_id, created_at) \
         SELECT u.owner_id, u.contact_id, u.room_id, ? \
         FROM unnest(?::bigint[], ?::bigint[], ?::bigint[]) AS u(owner_id, contact_id, room_id) \
         ON CONFLICT (owner_id, contact_id) DO NOTHING";
    type Row = ();
}

/// `[room], [user], [up_to]` (one row per member) → `(room, user, marker before)` of each marker
/// that moved. `old` is the same row as the statement's snapshot saw it, before the update.
struct AdvanceReads;
impl StmtSql for AdvanceReads {
    const SQL: &'static str = "UPDATE room_members AS m SET read_up_to = u.up_to \
         FROM unnest(?::bigint[], ?::bigint[], ?::bigint[]) AS u(room_id, user_id, up_to), \
         room_members AS old \
         WHERE m.room_id = u.room_id AND m.user_id = u.user_id \
         AND old.room_id = m.room_id AND old.user_id = m.user_id \
         AND m.read_up_to < u.up_to \
         RETURNING m.room_id, m.user_id, old.read_up_to";
    type Row = (BigInt, BigInt, BigInt);
}
