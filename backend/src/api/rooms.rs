//! `/api/rooms/*`: rooms, message history, sending, read markers.

use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::dto::{MessageDto, RoomDto};
use super::json::{render, ApiJson, ApiQuery, Rendered};
use crate::auth::{AuthUser, ListCaller};
use crate::db::messages::Cursor;
use crate::domain::{ClientMsgId, MessageBody, RoomId, Seq};
use crate::error::{ApiError, ApiResult, ErrorBody};
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
    tag = "rooms",
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
    /// trimmed. (Its `pattern` is set from `domain::values::patterns::MESSAGE_TEXT` by
    /// `openapi::build`.)
    #[schema(min_length = 1, max_length = 4000, example = "Hello!")]
    pub body: String,
}

/// Send a message. Idempotent by `client_msg_id`.
#[utoipa::path(
    tag = "rooms",
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
        (status = 422, description = "Invalid client_msg_id or body", body = ErrorBody),
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
    let cmid = ClientMsgId::parse(&req.client_msg_id);
    let text = MessageBody::parse(&req.body);
    let (cmid, text) = match (cmid, text) {
        (Ok(c), Ok(t)) => (c, t),
        (c, t) => {
            let mut fields = crate::error::FieldErrors::new();
            for e in [c.err(), t.err()].into_iter().flatten() {
                if let ApiError::Validation { fields: f, .. } = e {
                    fields.extend(f);
                }
            }
            return Err(ApiError::validation_fields(fields));
        }
    };
    let sent = messages::send(&state, user.id, RoomId(path.into_inner()), cmid, text, None).await?;
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
