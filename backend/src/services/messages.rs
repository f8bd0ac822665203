//! Messages: the idempotent send and read markers (both through the group-commit writer, which
//! publishes their events), history pages, and catch-up for reconnecting clients.

use crate::broker::{MessageData, Origin};
use crate::db::{self, messages::Cursor, models::MessageRow};
use crate::domain::{ClientMsgId, MessageBody, RoomId, Seq, UserId};
use crate::error::ApiResult;
use crate::services::rooms::room_not_found;
use crate::state::AppState;

pub use crate::services::writer::Sent;

/// Stores a message in `room` (idempotent by `client_msg_id`) and delivers it to every
/// connection of both members except `exclude` (the sending connection, which gets an ack).
pub async fn send(
    state: &AppState,
    me: UserId,
    room: RoomId,
    client_msg_id: ClientMsgId,
    body: MessageBody,
    exclude: Option<Origin>,
) -> ApiResult<Sent> {
    state
        .writer
        .send(me, room, client_msg_id, body, exclude)
        .await
}

/// A stored message as events carry it to clients.
impl From<MessageRow> for MessageData {
    fn from(m: MessageRow) -> Self {
        MessageData {
            id: m.id,
            room_id: m.room_id,
            seq: m.seq,
            sender_id: m.sender_id,
            client_msg_id: m.client_msg_id,
            body: m.body,
            created_at: m.created_at.and_utc(),
            deleted_at: m.deleted_at.map(|t| t.and_utc()),
        }
    }
}

pub struct Page {
    pub messages: Vec<MessageRow>,
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
            Ok(render(
                rows.into_iter().map(MessageData::from).collect(),
                more,
            ))
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
