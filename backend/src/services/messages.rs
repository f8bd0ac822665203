//! Messages: the idempotent send and read markers (both through the group-commit writer, which
//! publishes their events), history pages, and catch-up for reconnecting clients.

use std::time::SystemTime;

use crate::broker::{AttachmentData, MessageData, Origin, ReactionData};
use crate::db::changes::{ChangeKind, ChangeRequest};
use crate::db::{self, messages::Cursor, models::MessageRow, models::ReactionGroup};
use crate::domain::{ClientMsgId, MessageBody, MessageId, RoomId, Seq, UploadIds, UserId};
use crate::error::{ApiError, ApiResult, FieldErrors};
use crate::services::rooms::room_not_found;
use crate::services::uploads::{self, Links};
use crate::state::AppState;

pub use crate::services::writer::{Changed, Sent};

/// A message as a client asks to send it (REST or WebSocket), its fields checked.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub client_msg_id: ClientMsgId,
    pub body: MessageBody,
    /// The message of the same room this one answers.
    pub reply_to: Option<MessageId>,
    /// The sender's uploads it carries (whose they are is checked when it is stored).
    pub attachments: UploadIds,
}

impl NewMessage {
    /// Checks every field, reporting every invalid one at once (422 `validation_failed`). The
    /// body may be empty when the message carries attachments.
    pub fn parse(
        client_msg_id: &str,
        body: &str,
        reply_to: Option<i64>,
        attachments: &[String],
    ) -> ApiResult<NewMessage> {
        let mut fields = FieldErrors::new();
        let mut take = |e: ApiError| {
            if let ApiError::Validation { fields: f, .. } = e {
                fields.extend(f);
            }
        };
        let cmid = ClientMsgId::parse(client_msg_id).map_err(&mut take).ok();
        let attachments = UploadIds::parse(attachments).map_err(&mut take).ok();
        let body =
            MessageBody::parse_with(body, attachments.as_ref().unwrap_or(&UploadIds::default()))
                .map_err(&mut take)
                .ok();
        let reply_to = match reply_to {
            Some(id) if id < 1 => {
                take(ApiError::validation(
                    "reply_to",
                    "must be a message id (at least 1)",
                ));
                None
            }
            other => other.map(MessageId),
        };
        match (cmid, body, attachments) {
            (Some(client_msg_id), Some(body), Some(attachments)) if fields.is_empty() => {
                Ok(NewMessage {
                    client_msg_id,
                    body,
                    reply_to,
                    attachments,
                })
            }
            _ => Err(ApiError::validation_fields(fields)),
        }
    }
}

/// Stores a message in `room` (idempotent by `client_msg_id`) and delivers it to every
/// connection of both members except `exclude` (the sending connection, which gets an ack).
/// `reply_to` must name a message of the same room that is not deleted (422 otherwise);
/// `attachments` must be the sender's own uploads (422 otherwise).
pub async fn send(
    state: &AppState,
    me: UserId,
    room: RoomId,
    message: NewMessage,
    exclude: Option<Origin>,
) -> ApiResult<Sent> {
    if let Some(target) = message.reply_to {
        check_reply(state, me, room, target).await?;
    }
    state.writer.send(me, room, message, exclude).await
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
    let links = state.uploads.links().clone();
    state
        .db
        .run(move |c| {
            db::rooms::find_for_member(c, room, me)?.ok_or_else(room_not_found)?;
            let last_change_seq = db::changes::last_change(c, room)?;
            let (rows, has_more) = db::changes::page(c, room, after, limit)?;
            Ok(ChangesPage {
                messages: load_details(c, rows, &links)?,
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
    let links = state.uploads.links().clone();
    state
        .db
        .run(move |c| {
            let last = db::changes::last_change(c, room)?;
            let (rows, more) = db::changes::page(c, room, after, limit)?;
            Ok(render(load_details(c, rows, &links)?, more, last))
        })
        .await
}

/// A stored message without reactions or attachments (a new one without any, or a tombstone)
/// as events carry it to clients; [`message_data`] for one that may have them.
impl From<MessageRow> for MessageData {
    fn from(m: MessageRow) -> Self {
        message_data(m, Vec::new(), Vec::new())
    }
}

/// A stored message, its reactions and its attachments (signed for the reader) as events and
/// answers carry them. A deleted message carries none.
pub fn message_data(
    m: MessageRow,
    reactions: Vec<ReactionGroup>,
    attachments: Vec<AttachmentData>,
) -> MessageData {
    let deleted = m.deleted_at.is_some();
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
        attachments: if deleted { Vec::new() } else { attachments },
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

/// Rows read from the database with their reactions and attachments (two more queries), the
/// attachments' links signed now with `links`.
pub fn load_details(
    c: &mut crate::db::DbConnection,
    rows: Vec<MessageRow>,
    links: &Links,
) -> ApiResult<Vec<MessageData>> {
    let live: Vec<MessageId> = rows
        .iter()
        .filter(|m| m.deleted_at.is_none())
        .map(|m| m.id)
        .collect();
    let mut attachments = uploads::attachments_by_message(c, &live, links, SystemTime::now())?;
    Ok(db::messages::with_reactions(c, rows)?
        .into_iter()
        .map(|(m, r)| {
            let a = attachments.remove(&m.id).unwrap_or_default();
            message_data(m, r, a)
        })
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
    let links = state.uploads.links().clone();
    state
        .db
        .run(move |c| {
            db::rooms::find_for_member(c, room, me)?.ok_or_else(room_not_found)?;
            let (messages, has_more) =
                db::messages::page_capped(c, room, cursor, limit, max_bytes)?;
            let mut messages = load_details(c, messages, &links)?;
            let newest_first = matches!(cursor, Cursor::Latest | Cursor::Before(_));
            let cut = cap_with_attachments(&mut messages, newest_first, max_bytes, 0);
            Ok(Page {
                messages,
                has_more: has_more || cut,
            })
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
    let links = state.uploads.links().clone();
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
            let mut messages = load_details(c, rows, &links)?;
            let cut = cap_with_attachments(&mut messages, false, limit.bytes, limit.per_message);
            Ok(render(messages, more || cut))
        })
        .await
}

/// Bytes one attachment takes in JSON, at most: its strings (names escaped at worst as `\uXXXX`
/// would be longer, but names are made safe: no control characters) and room for the rest.
fn attachment_json_size(a: &AttachmentData) -> usize {
    const FIXED: usize = 240;
    FIXED
        + 2 * a.name.len()
        + a.content_type.len()
        + a.url.len()
        + a.thumbnail_url.as_ref().map_or(0, String::len)
}

/// A page capped in bytes by its bodies (in the query) may still be large with its attachments
/// (ten per message, about half a kilobyte each): counted again here with them, dropping
/// messages far from the cursor (the oldest when `newest_first`) until it fits `max_bytes`,
/// each message counting `per_message` more. At least one message stays. True when any went.
fn cap_with_attachments(
    messages: &mut Vec<MessageData>,
    newest_first: bool,
    max_bytes: usize,
    per_message: usize,
) -> bool {
    if messages.iter().all(|m| m.attachments.is_empty()) {
        return false;
    }
    let size = |m: &MessageData| {
        db::messages::json_size_parts(&m.body, &m.client_msg_id)
            + per_message
            + m.attachments
                .iter()
                .map(attachment_json_size)
                .sum::<usize>()
    };
    db::messages::cap_page(messages, newest_first, max_bytes, size)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: i64, files: usize) -> MessageData {
        let at = chrono::DateTime::from_timestamp(0, 0).unwrap_or_default();
        MessageData {
            id: MessageId(seq),
            room_id: RoomId(1),
            seq: Seq(seq),
            sender_id: UserId(1),
            client_msg_id: format!("c{seq}"),
            body: String::new(),
            created_at: at,
            edited_at: None,
            deleted_at: None,
            reply_to: None,
            reactions: Vec::new(),
            change_seq: 0,
            attachments: (0..files)
                .map(|i| AttachmentData {
                    id: format!("{i:032x}"),
                    name: format!("{}-{i}.pdf", "very long name ".repeat(13)),
                    content_type: "application/pdf".into(),
                    size: 1,
                    sha256: "0".repeat(64),
                    width: None,
                    height: None,
                    url: format!("/api/files/{i:032x}?e=1767225600&s={}", "s".repeat(43)),
                    thumbnail_url: None,
                })
                .collect(),
        }
    }

    #[test]
    fn pages_of_messages_with_many_files_are_capped_with_them() {
        let page = || (1..=500).map(|s| message(s, 10)).collect::<Vec<_>>();
        let one = serde_json::to_vec(&message(1, 10))
            .unwrap_or_default()
            .len();
        assert!(one > 4_000, "ten attachments are several KiB: {one}");

        let mut oldest_first = page();
        assert!(cap_with_attachments(
            &mut oldest_first,
            false,
            256 * 1024,
            256
        ));
        let kept: usize = oldest_first
            .iter()
            .map(|m| serde_json::to_vec(m).unwrap_or_default().len() + 256)
            .sum();
        assert!(kept <= 256 * 1024, "{kept}");
        assert!(oldest_first.len() > 10 && oldest_first.len() < 100);
        assert_eq!(oldest_first[0].seq, Seq(1), "the oldest are kept");

        let mut newest_first = page();
        assert!(cap_with_attachments(&mut newest_first, true, 256 * 1024, 0));
        assert_eq!(newest_first.last().map(|m| m.seq), Some(Seq(500)));

        // At least one, however large; pages without files are left to the query's cap.
        let mut tiny = page();
        assert!(cap_with_attachments(&mut tiny, false, 10, 0));
        assert_eq!(tiny.len(), 1);
        let mut plain: Vec<_> = (1..=500).map(|s| message(s, 0)).collect();
        assert!(!cap_with_attachments(&mut plain, false, 10, 0));
        assert_eq!(plain.len(), 500);
    }
}
