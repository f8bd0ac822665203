//! Messages: the idempotent send (seq assigned in the insert's transaction), history pages and
//! read markers.

use crate::db::{self, messages::Cursor, models::MessageRow, write_transaction, DbConnection};
use crate::domain::{ClientMsgId, MessageBody, RoomId, Seq, UserId};
use crate::error::ApiResult;
use crate::services::rooms::room_not_found;
use crate::state::AppState;

/// The outcome of a send: the stored message, and whether this call stored it (false when the
/// `client_msg_id` was already known and the earlier message is returned instead).
pub struct Sent {
    pub message: MessageRow,
    pub created: bool,
}

pub async fn send(
    state: &AppState,
    me: UserId,
    room: RoomId,
    client_msg_id: ClientMsgId,
    body: MessageBody,
) -> ApiResult<Sent> {
    state
        .db
        .run(move |c| send_blocking(c, me, room, &client_msg_id, &body))
        .await
}

fn send_blocking(
    c: &mut DbConnection,
    me: UserId,
    room: RoomId,
    client_msg_id: &ClientMsgId,
    body: &MessageBody,
) -> ApiResult<Sent> {
    let (room_row, _) = db::rooms::find_for_member(c, room, me)?.ok_or_else(room_not_found)?;
    if let Some(message) = db::messages::find_by_client_id(c, room, me, client_msg_id.as_str())? {
        return Ok(Sent {
            message,
            created: false,
        });
    }
    let recipient = room_row.other_member(me);
    let stored = write_transaction(c, |c| -> ApiResult<Sent> {
        // Checked again under the write lock: a concurrent resend may have stored it meanwhile.
        if let Some(message) = db::messages::find_by_client_id(c, room, me, client_msg_id.as_str())?
        {
            return Ok(Sent {
                message,
                created: false,
            });
        }
        let message =
            db::messages::insert_next(c, room, me, client_msg_id.as_str(), body.as_str())?;
        // Sending reads everything before it; and whoever writes to you becomes your contact.
        db::rooms::advance_read_marker(c, room, me, message.seq)?;
        db::contacts::insert_if_absent(c, recipient, me, room)?;
        Ok(Sent {
            message,
            created: true,
        })
    });
    match stored {
        Ok(sent) => Ok(sent),
        Err(e) => {
            // On PostgreSQL two concurrent first sends of one client_msg_id race to the unique
            // index; the loser finds the winner's message.
            match db::messages::find_by_client_id(c, room, me, client_msg_id.as_str())? {
                Some(message) => Ok(Sent {
                    message,
                    created: false,
                }),
                None => Err(e),
            }
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
    state
        .db
        .run(move |c| {
            db::rooms::find_for_member(c, room, me)?.ok_or_else(room_not_found)?;
            let (messages, has_more) = db::messages::page(c, room, cursor, limit)?;
            Ok(Page { messages, has_more })
        })
        .await
}

/// Moves `me`'s read marker forward to `up_to` (a seq past the newest message counts as the newest).
pub async fn mark_read(state: &AppState, me: UserId, room: RoomId, up_to: Seq) -> ApiResult<()> {
    state
        .db
        .run(move |c| {
            let (room_row, _) =
                db::rooms::find_for_member(c, room, me)?.ok_or_else(room_not_found)?;
            db::rooms::advance_read_marker(c, room, me, up_to.min(room_row.last_seq))
        })
        .await
}
