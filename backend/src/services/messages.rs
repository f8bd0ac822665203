//! Messages: the idempotent send and read markers (both through the group-commit writer, which
//! publishes their events), history pages, and catch-up for reconnecting clients.

use crate::broker::{MessageData, Origin, ReactionData};
use crate::db::changes::{ChangeKind, ChangeRequest};
use crate::db::{self, messages::Cursor, models::MessageRow, models::ReactionGroup};
use crate::domain::{ClientMsgId, MessageBody, MessageId, RoomId, Seq, UserId};
use crate::error::{ApiError, ApiResult};
use crate::services::rooms::room_not_found;
use crate::state::AppState;

pub use crate::services::writer::{Changed, Sent};

/// Stores a message in `room` (idempotent by `client_msg_id`) and delivers it to every
/// connection of both members except `exclude` (the sending connection, which gets an ack).
/// `reply_to` must name a message of the same room that is not deleted (422 otherwise).
pub async fn send(
    state: &AppState,
    me: UserId,
    room: RoomId,
    client_msg_id: ClientMsgId,
    body: MessageBody,
    reply_to: Option<MessageId>,
    exclude: Option<Origin>,
) -> ApiResult<Sent> {
    if let Some(target) = reply_to {
        check_reply(state, me, room, target).await?;
    }
    state
        .writer
        .send(me, room, client_msg_id, body, reply_to, exclude)
        .await
}

/// That `me` is in `room` (404) and that `target` is a message of it that is not deleted (422).
pub async fn check_reply(
    state: &AppState,
    me: UserId,
    room: RoomId,
    target: MessageId,
) -> ApiResult<()> {
    state
        .db
        .run(move |c| {
            db::rooms::find_for_member(c, room, me)?.ok_or_else(room_not_found)?;
            match db::messages::find_in_room(c, room, target)? {
                Some(m) if m.deleted_at.is_none() => Ok(()),
                Some(_) => Err(ApiError::validation(
                    "reply_to",
                    "the message it answers was deleted",
                )),
                None => Err(ApiError::validation(
                    "reply_to",
                    "must be a message of the same room",
                )),
            }
        })
        .await
}

/// Edits, deletes or reacts to a message of `room` as `me` (see `db::changes` for the rules),
/// in the room's order of changes; every connection of both members gets `message_updated`.
pub async fn change(
    state: &AppState,
    me: UserId,
    room: RoomId,
    message: MessageId,
    kind: ChangeKind,
) -> ApiResult<Changed> {
    state.changes.check(me)?;
    state
        .writer
        .change(ChangeRequest {
            actor: me,
            room: Some(room),
            message,
            kind,
        })
        .await
}

/// A new body for `me`'s message, within the edit window (`LETSCHAT_EDIT_WINDOW`).
pub async fn edit(
    state: &AppState,
    me: UserId,
    room: RoomId,
    message: MessageId,
    body: MessageBody,
) -> ApiResult<Changed> {
    let window = state.config.edit_window;
    change(state, me, room, message, ChangeKind::Edit { body, window }).await
}

/// The messages of `room` changed after `after`, in order of their change, as they are now.
pub struct ChangesPage {
    pub messages: Vec<MessageData>,
    pub has_more: bool,
    pub last_change_seq: i64,
}

pub async fn changes(
    state: &AppState,
    me: UserId,
    room: RoomId,
    after: i64,
    limit: i64,
) -> ApiResult<ChangesPage> {
    state
        .db
        .run(move |c| {
            db::rooms::find_for_member(c, room, me)?.ok_or_else(room_not_found)?;
            let last_change_seq = db::changes::last_change(c, room)?;
            let (rows, has_more) = db::changes::page(c, room, after, limit)?;
            Ok(ChangesPage {
                messages: load_reactions(c, rows)?,
                has_more,
                last_change_seq,
            })
        })
        .await
}

/// A page of changes for a replay (`sync` with `changes_after`): the messages changed after
/// `after`, at most `limit`, with whether more follow. The caller has checked membership.
pub async fn changes_after<T, R>(
    state: &AppState,
    room: RoomId,
    after: i64,
    limit: i64,
    render: R,
) -> ApiResult<T>
where
    R: FnOnce(Vec<MessageData>, bool, i64) -> T + Send + 'static,
    T: Send + 'static,
{
    state
        .db
        .run(move |c| {
            let last = db::changes::last_change(c, room)?;
            let (rows, more) = db::changes::page(c, room, after, limit)?;
            Ok(render(load_reactions(c, rows)?, more, last))
        })
        .await
}

/// A stored message without reactions (a new one, or a tombstone) as events carry it to
/// clients; [`message_data`] for one that may have reactions.
impl From<MessageRow> for MessageData {
    fn from(m: MessageRow) -> Self {
        message_data(m, Vec::new())
    }
}

/// A stored message and its reactions as events and answers carry them.
pub fn message_data(m: MessageRow, reactions: Vec<ReactionGroup>) -> MessageData {
    MessageData {
        id: m.id,
        room_id: m.room_id,
        seq: m.seq,
        sender_id: m.sender_id,
        client_msg_id: m.client_msg_id,
        body: m.body,
        created_at: m.created_at.and_utc(),
        edited_at: m.edited_at.map(|t| t.and_utc()),
        deleted_at: m.deleted_at.map(|t| t.and_utc()),
        reply_to: m.reply_to,
        reactions: reaction_data(reactions),
        change_seq: m.change_seq,
    }
}

/// Reactions as events and answers carry them.
pub fn reaction_data(groups: Vec<ReactionGroup>) -> Vec<ReactionData> {
    groups
        .into_iter()
        .map(|g| ReactionData {
            emoji: g.emoji,
            user_ids: g.user_ids,
        })
        .collect()
}

/// Rows read from the database with their reactions (one more query).
pub fn load_reactions(
    c: &mut crate::db::DbConnection,
    rows: Vec<MessageRow>,
) -> ApiResult<Vec<MessageData>> {
    Ok(db::messages::with_reactions(c, rows)?
        .into_iter()
        .map(|(m, r)| message_data(m, r))
        .collect())
}

pub struct Page {
    pub messages: Vec<MessageData>,
    pub has_more: bool,
}

pub async fn history(
    state: &AppState,
    me: UserId,
    room: RoomId,
    cursor: Cursor,
    limit: i64,
) -> ApiResult<Page> {
    let max_bytes = state.config.http.history_page_bytes;
    state
        .db
        .run(move |c| {
            db::rooms::find_for_member(c, room, me)?.ok_or_else(room_not_found)?;
            let (messages, has_more) =
                db::messages::page_capped(c, room, cursor, limit, max_bytes)?;
            let messages = load_reactions(c, messages)?;
            Ok(Page { messages, has_more })
        })
        .await
}

/// How much one page of a replay holds at most: `rows` messages, and `bytes` counting each
/// message's body plus `per_message` (but at least one message, however large).
#[derive(Debug, Clone, Copy)]
pub struct PageLimit {
    pub rows: i64,
    pub bytes: usize,
    pub per_message: usize,
}

/// The oldest messages of `room` after `after`, within `limit`, handed with whether more follow
/// to `render` on the database thread, so that only what it renders comes back (catch-up after a
/// reconnect). The caller has checked that the reader is a member of `room`.
pub async fn page_after<T, R>(
    state: &AppState,
    room: RoomId,
    after: Seq,
    limit: PageLimit,
    render: R,
) -> ApiResult<T>
where
    R: FnOnce(Vec<MessageData>, bool) -> T + Send + 'static,
    T: Send + 'static,
{
    state
        .db
        .run(move |c| {
            let (rows, more) = db::messages::page_after_bytes(
                c,
                room,
                after,
                limit.rows,
                limit.bytes,
                limit.per_message,
            )?;
            Ok(render(load_reactions(c, rows)?, more))
        })
        .await
}

/// Moves `me`'s read marker forward to `up_to` (a seq past the newest message counts as the
/// newest) and tells the room's members' other connections.
pub async fn mark_read(
    state: &AppState,
    me: UserId,
    room: RoomId,
    up_to: Seq,
    exclude: Option<Origin>,
) -> ApiResult<()> {
    state.writer.read(me, room, up_to, exclude).await
}
