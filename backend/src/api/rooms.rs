//! `/api/rooms/*`: rooms, message history, sending, read markers.

use actix_web::{delete, get, patch, post, put, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::dto::{MessageDto, RoomDto};
use super::json::{render, ApiJson, ApiQuery, Rendered};
use crate::auth::{AuthUser, ListCaller};
use crate::db::changes::ChangeKind;
use crate::db::messages::Cursor;
use crate::domain::{Emoji, MessageBody, MessageId, RoomId, Seq};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::services::messages::NewMessage;
use crate::services::{messages, rooms};
use crate::state::AppState;

/// The rooms the caller belongs to, most recent conversation first.
#[utoipa::path(
    operation_id = "list_rooms",
    tag = "rooms",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's rooms", body = Vec<RoomDto>),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 429, description = "This user already has as many list requests running and waiting as allowed (`rate_limited`, with `Retry-After`); see README, Limits", body = ErrorBody),
    )
)]
#[get("/rooms")]
pub async fn list(state: web::Data<AppState>, ListCaller(user): ListCaller) -> ApiResult<Rendered> {
    let turn = state.heavy.turn(user.id).await?;
    let body = rooms::list(&state, user.id, render::<_, RoomDto>).await?;
    turn.charge(body.len());
    Ok(body)
}

/// One room of the caller's.
#[utoipa::path(
    tag = "rooms",
    security(("bearer" = [])),
    params(("room_id" = i64, Path, minimum = 1, description = "The room's id")),
    responses(
        (status = 200, description = "The room", body = RoomDto),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 404, description = "No such room, or the caller is not in it", body = ErrorBody),
    )
)]
#[get("/rooms/{room_id}")]
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> ApiResult<web::Json<RoomDto>> {
    Ok(web::Json(
        rooms::get(&state, user.id, RoomId(path.into_inner()))
            .await?
            .into(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only messages with a smaller seq (page back in time).
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    pub before: Option<i64>,
    /// Only messages with a larger seq (page forward, or catch up).
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    pub after: Option<i64>,
    /// At most this many messages (1–200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessagePage {
    /// Ascending seq.
    pub messages: Vec<MessageDto>,
    /// Whether more messages lie beyond this page: older ones when paging back (no cursor or
    /// `before`), newer ones when paging forward (`after`). Also true when the page was cut at
    /// its byte cap.
    pub has_more: bool,
}

/// A page of a room's history, in ascending seq order.
///
/// With no cursor: the newest messages. With `before`: the newest messages older than it.
/// With `after`: the oldest messages newer than it. With both: the oldest messages between them.
///
/// A page holds at most `limit` messages and at most 256 KiB of message JSON (the server's
/// `LETSCHAT_HISTORY_PAGE_BYTES`): a page cut by bytes keeps the messages nearest the cursor
/// and says `has_more: true`, so paging on from its first (or last) seq returns every message
/// once. At least one message always comes when any is left.
#[utoipa::path(
    tag = "messages",
    security(("bearer" = [])),
    params(("room_id" = i64, Path, minimum = 1, description = "The room's id"), HistoryQuery),
    responses(
        (status = 200, description = "A page of messages", body = MessagePage),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 404, description = "No such room, or the caller is not in it", body = ErrorBody),
        (status = 422, description = "Invalid cursor or limit", body = ErrorBody),
    )
)]
#[get("/rooms/{room_id}/messages")]
pub async fn history(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    query: ApiQuery<HistoryQuery>,
) -> ApiResult<web::Json<MessagePage>> {
    let q = query.0;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::validation("limit", "must be between 1 and 200"));
    }
    for (name, v) in [("before", q.before), ("after", q.after)] {
        if v.is_some_and(|v| v < 0) {
            return Err(ApiError::validation(name, "must not be negative"));
        }
    }
    let cursor = match (q.before, q.after) {
        (None, None) => Cursor::Latest,
        (Some(b), None) => Cursor::Before(Seq(b)),
        (None, Some(a)) => Cursor::After(Seq(a)),
        (Some(b), Some(a)) => Cursor::Between(Seq(a), Seq(b)),
    };
    let page = messages::history(&state, user.id, RoomId(path.into_inner()), cursor, limit).await?;
    Ok(web::Json(MessagePage {
        messages: page.messages.into_iter().map(Into::into).collect(),
        has_more: page.has_more,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SendMessageRequest {
    /// Chosen by the client (a UUID is best), 1–64 printable ASCII characters. Sending the
    /// same one again returns the message stored the first time.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[!-~]+$",
        example = "7d0f1c9e-1b9a-4c57-9f3e-2b8c0d1e4a6f"
    )]
    pub client_msg_id: String,
    /// 1–4,000 characters, at least one of them visible (not only spaces, zero-width or format
    /// characters); no control characters but tab, line feed and carriage return. Stored
    /// trimmed. With `attachments` it may be `""` (a message of files alone). (Its `pattern` is
    /// set from `domain::values::patterns::MESSAGE_TEXT` by `openapi::build`.)
    #[schema(min_length = 1, max_length = 4000, example = "Hello!")]
    pub body: String,
    /// The message of the same room this one answers; it must not be deleted.
    #[serde(default)]
    #[schema(minimum = 1, example = json!(null))]
    pub reply_to: Option<i64>,
    /// Files to carry, in this order: ids of the caller's own uploads (`POST /api/uploads`), at
    /// most 10, each once. An upload may be sent in several messages.
    #[serde(default)]
    #[schema(max_items = 10, example = json!([]))]
    pub attachments: Vec<String>,
}

/// Send a message. Idempotent by `client_msg_id`.
///
/// Storing it moves the sender's own read marker forward to it (replying means having read the
/// conversation): the room's `read_up_to` for the sender becomes its `seq` and what came before
/// no longer counts as unread for them. No `read` frame is sent for that move; the other
/// member's marker does not change. The same holds for a `send` frame on the WebSocket.
#[utoipa::path(
    tag = "messages",
    security(("bearer" = [])),
    params(("room_id" = i64, Path, minimum = 1, description = "The room's id")),
    request_body = SendMessageRequest,
    responses(
        (status = 201, description = "Stored", body = MessageDto),
        (status = 200, description = "This client_msg_id was already stored: the same message", body = MessageDto),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 403, description = "The other member's account is deactivated (`forbidden`)", body = ErrorBody),
        (status = 404, description = "No such room, or the caller is not in it", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid client_msg_id or body, `reply_to` is not a message of this room that is not deleted, or `attachments` names more than 10 uploads, one twice, or one that is not the caller's (`validation_failed`; every invalid field at once)", body = ErrorBody),
    )
)]
#[post("/rooms/{room_id}/messages")]
pub async fn send(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    body: ApiJson<SendMessageRequest>,
) -> ApiResult<HttpResponse> {
    let req = body.0;
    let message = NewMessage::parse(
        &req.client_msg_id,
        &req.body,
        req.reply_to,
        &req.attachments,
    )?;
    let sent = messages::send(&state, user.id, RoomId(path.into_inner()), message, None).await?;
    let dto = MessageDto::from(sent.message.data());
    Ok(if sent.created {
        HttpResponse::Created().json(dto)
    } else {
        HttpResponse::Ok().json(dto)
    })
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReadRequest {
    /// The highest seq the caller has read. Markers only move forward; a seq past the newest
    /// message counts as the newest.
    #[schema(minimum = 0, maximum = 9223372036854775807_i64, example = 42)]
    #[serde(deserialize_with = "super::json::integer")]
    pub up_to: i64,
}

/// Mark the room read up to a seq.
#[utoipa::path(
    tag = "rooms",
    security(("bearer" = [])),
    params(("room_id" = i64, Path, minimum = 1, description = "The room's id")),
    request_body = ReadRequest,
    responses(
        (status = 204, description = "Marker stored"),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 404, description = "No such room, or the caller is not in it", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Negative or missing up_to", body = ErrorBody),
    )
)]
#[post("/rooms/{room_id}/read")]
pub async fn read(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    body: ApiJson<ReadRequest>,
) -> ApiResult<HttpResponse> {
    let up_to = body.0.up_to;
    if up_to < 0 {
        return Err(ApiError::validation("up_to", "must not be negative"));
    }
    messages::mark_read(&state, user.id, RoomId(path.into_inner()), Seq(up_to), None).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Path of one message of a room.
type MessagePath = web::Path<(i64, i64)>;

#[derive(Debug, Deserialize, ToSchema)]
pub struct EditMessageRequest {
    /// The new text, validated like a sent message's body. (Its `pattern` is set by
    /// `openapi::build`.)
    #[schema(min_length = 1, max_length = 4000, example = "Hello again!")]
    pub body: String,
}

/// Edit one of your messages.
///
/// Only its sender may edit it. The earlier text is kept for administrators; members see only
/// `edited_at`. An unchanged body answers 200 and records no change. With `LETSCHAT_EDIT_WINDOW`
/// set, messages older than it answer 403. Both members' connections get `message_updated`.
#[utoipa::path(
    tag = "messages",
    security(("bearer" = [])),
    params(
        ("room_id" = i64, Path, minimum = 1, description = "The room's id"),
        ("message_id" = i64, Path, minimum = 1, description = "The message's id"),
    ),
    request_body = EditMessageRequest,
    responses(
        (status = 200, description = "The message with its new body and `edited_at`", body = MessageDto),
        (status = 403, description = "Not the caller's message, past the edit window, or already edited 100 times (`forbidden`)", body = ErrorBody),
        (status = 404, description = "No such room or message, or the caller is not in the room", body = ErrorBody),
        (status = 409, description = "The message was deleted (`conflict`)", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ErrorBody),
        (status = 429, description = "Over this user's allowance of message changes (`rate_limited`, with `Retry-After`; `LETSCHAT_MAX_CHANGES_PER_SEC`, see README, Limits)", body = ErrorBody),
    )
)]
#[patch("/rooms/{room_id}/messages/{message_id}")]
pub async fn edit(
    state: web::Data<AppState>,
    user: AuthUser,
    path: MessagePath,
    body: ApiJson<EditMessageRequest>,
) -> ApiResult<web::Json<MessageDto>> {
    let (room, message) = path.into_inner();
    let text = MessageBody::parse(&body.0.body)?;
    let changed = messages::edit(&state, user.id, RoomId(room), MessageId(message), text).await?;
    Ok(web::Json(MessageDto::from(changed.message.data())))
}

/// Delete one of your messages.
///
/// Only its sender may delete it. Its text, earlier versions and reactions are erased; it
/// keeps its `id` and `seq` (a tombstone with `deleted_at`). Deleting it again answers 204 and
/// records no change. Both members' connections get `message_updated`.
#[utoipa::path(
    operation_id = "delete_own_message",
    tag = "messages",
    security(("bearer" = [])),
    params(
        ("room_id" = i64, Path, minimum = 1, description = "The room's id"),
        ("message_id" = i64, Path, minimum = 1, description = "The message's id"),
    ),
    responses(
        (status = 204, description = "Deleted (or already deleted)"),
        (status = 403, description = "Not the caller's message (`forbidden`)", body = ErrorBody),
        (status = 404, description = "No such room or message, or the caller is not in the room", body = ErrorBody),
        (status = 429, description = "Over this user's allowance of message changes (`rate_limited`, with `Retry-After`; `LETSCHAT_MAX_CHANGES_PER_SEC`, see README, Limits)", body = ErrorBody),
    )
)]
#[delete("/rooms/{room_id}/messages/{message_id}")]
pub async fn delete_message(
    state: web::Data<AppState>,
    user: AuthUser,
    path: MessagePath,
) -> ApiResult<HttpResponse> {
    let (room, message) = path.into_inner();
    messages::change(
        &state,
        user.id,
        RoomId(room),
        MessageId(message),
        ChangeKind::Delete { by_admin: None },
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// React to a message with an emoji. Idempotent.
///
/// `emoji` is one emoji — one grapheme cluster, skin tones and ZWJ sequences included —
/// URL-encoded. A message carries at most 20 different emoji. Reacting again with the same
/// emoji answers 200 and records no change.
#[utoipa::path(
    tag = "messages",
    security(("bearer" = [])),
    params(
        ("room_id" = i64, Path, minimum = 1, description = "The room's id"),
        ("message_id" = i64, Path, minimum = 1, description = "The message's id"),
        ("emoji" = String, Path, description = "One emoji, URL-encoded (e.g. `%F0%9F%91%8D` for 👍)", example = "👍"),
    ),
    responses(
        (status = 200, description = "The message with its reactions", body = MessageDto),
        (status = 404, description = "No such room or message, or the caller is not in the room", body = ErrorBody),
        (status = 409, description = "The message was deleted (`conflict`)", body = ErrorBody),
        (status = 422, description = "Not exactly one emoji, or the message already carries 20 different emoji", body = ErrorBody),
        (status = 429, description = "Over this user's allowance of message changes (`rate_limited`, with `Retry-After`; `LETSCHAT_MAX_CHANGES_PER_SEC`, see README, Limits)", body = ErrorBody),
    )
)]
#[put("/rooms/{room_id}/messages/{message_id}/reactions/{emoji}")]
pub async fn react(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(i64, i64, String)>,
) -> ApiResult<web::Json<MessageDto>> {
    reaction(state, user, path, true).await
}

/// Take back your reaction with an emoji. Idempotent.
#[utoipa::path(
    tag = "messages",
    security(("bearer" = [])),
    params(
        ("room_id" = i64, Path, minimum = 1, description = "The room's id"),
        ("message_id" = i64, Path, minimum = 1, description = "The message's id"),
        ("emoji" = String, Path, description = "One emoji, URL-encoded", example = "👍"),
    ),
    responses(
        (status = 200, description = "The message with its reactions", body = MessageDto),
        (status = 404, description = "No such room or message, or the caller is not in the room", body = ErrorBody),
        (status = 422, description = "Not exactly one emoji", body = ErrorBody),
        (status = 429, description = "Over this user's allowance of message changes (`rate_limited`, with `Retry-After`; `LETSCHAT_MAX_CHANGES_PER_SEC`, see README, Limits)", body = ErrorBody),
    )
)]
#[delete("/rooms/{room_id}/messages/{message_id}/reactions/{emoji}")]
pub async fn unreact(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(i64, i64, String)>,
) -> ApiResult<web::Json<MessageDto>> {
    reaction(state, user, path, false).await
}

async fn reaction(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(i64, i64, String)>,
    add: bool,
) -> ApiResult<web::Json<MessageDto>> {
    let (room, message, emoji) = path.into_inner();
    let emoji = Emoji::parse(&emoji)?;
    let changed = messages::change(
        &state,
        user.id,
        RoomId(room),
        MessageId(message),
        ChangeKind::React { emoji, add },
    )
    .await?;
    Ok(web::Json(MessageDto::from(changed.message.data())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Only changes numbered after this `change_seq` (default 0: every changed message).
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    pub after: Option<i64>,
    /// At most this many messages (1–200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChangesPage {
    /// Each message changed after `after`, once, in order of its `change_seq`, as it is now.
    pub messages: Vec<MessageDto>,
    /// Whether more changed messages follow: page on with `after` = the last one's `change_seq`.
    pub has_more: bool,
    /// The room's newest change.
    #[schema(minimum = 0)]
    pub last_change_seq: i64,
}

/// The messages of a room changed (edited, deleted, reacted to) after a `change_seq`.
///
/// A client that knows the room's last `change_seq` fetches exactly the changes it missed; a
/// message changed several times comes once, as it is now, at its latest change.
#[utoipa::path(
    tag = "messages",
    security(("bearer" = [])),
    params(("room_id" = i64, Path, minimum = 1, description = "The room's id"), ChangesQuery),
    responses(
        (status = 200, description = "A page of changed messages", body = ChangesPage),
        (status = 404, description = "No such room, or the caller is not in it", body = ErrorBody),
        (status = 422, description = "Invalid `after` or `limit`", body = ErrorBody),
    )
)]
#[get("/rooms/{room_id}/changes")]
pub async fn changes(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    query: ApiQuery<ChangesQuery>,
) -> ApiResult<web::Json<ChangesPage>> {
    let q = query.0;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::validation("limit", "must be between 1 and 200"));
    }
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::validation("after", "must not be negative"));
    }
    let page = messages::changes(&state, user.id, RoomId(path.into_inner()), after, limit).await?;
    Ok(web::Json(ChangesPage {
        messages: page.messages.into_iter().map(Into::into).collect(),
        has_more: page.has_more,
        last_change_seq: page.last_change_seq,
    }))
}
