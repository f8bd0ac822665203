//! `/api/admin/*`: the administration API. Every route takes an [`AdminUser`]: a valid token of
//! an account with the admin role; anyone else gets 403 `forbidden`. Lists are cursor pages.

use actix_web::{delete, get, post, put, web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::dto::{MessageDto, UserDto};
use super::json::{ApiJson, ApiQuery};
use super::rooms::MessagePage;
use crate::auth::AdminUser;
use crate::db::messages::Cursor;
use crate::domain::{DisplayName, MessageId, Password, RoomId, SearchQuery, Seq, UserId, Username};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::services::admin::{self, AdminRoomView, AdminUserView, AuditView, Stats};
use crate::state::AppState;

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}

fn limit_of(limit: Option<i64>, default: i64, max: i64) -> ApiResult<i64> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            format!("must be between 1 and {max}"),
        ));
    }
    Ok(limit)
}

fn cursor_of(name: &str, v: Option<i64>) -> ApiResult<Option<i64>> {
    match v {
        Some(v) if v < 0 => Err(ApiError::validation(name, "must not be negative")),
        v => Ok(v),
    }
}

/// A user as administrators see them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = AdminUser)]
pub struct AdminUserDto {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub created_at: DateTime<Utc>,
    pub is_admin: bool,
    /// When the account was deactivated; null while it is active.
    pub deactivated_at: Option<DateTime<Utc>>,
    /// Last login, or when their first connection opened or last one closed; null if never.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Whether the user has an open WebSocket now, to any instance of the server.
    pub online: bool,
    #[schema(minimum = 0)]
    pub contacts_count: i64,
    #[schema(minimum = 0)]
    pub rooms_count: i64,
    /// Messages the user sent (deleted ones included).
    #[schema(minimum = 0)]
    pub messages_count: i64,
}

impl From<AdminUserView> for AdminUserDto {
    fn from(v: AdminUserView) -> Self {
        let a = v.activity;
        AdminUserDto {
            id: a.user.id,
            username: a.user.username,
            display_name: a.user.display_name,
            created_at: utc(a.user.created_at),
            is_admin: a.user.is_admin,
            deactivated_at: a.user.deactivated_at.map(utc),
            last_seen_at: a.last_seen_at.map(utc),
            online: v.online,
            contacts_count: a.contacts,
            rooms_count: a.rooms,
            messages_count: a.messages,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminUserPage {
    /// Ascending id.
    pub users: Vec<AdminUserDto>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_cursor: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminUsersQuery {
    /// Only users whose username or display name contains this, case-insensitively (1–64
    /// characters, at least one of them not whitespace, no control characters; trimmed).
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub q: Option<String>,
    /// Only users with a larger id (the previous page's `next_cursor`).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// At most this many users (1–100, default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// List and search users, with their activity counts.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(AdminUsersQuery),
    responses(
        (status = 200, description = "A page of users, by id", body = AdminUserPage),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 403, description = "The caller is not an administrator", body = ErrorBody),
        (status = 422, description = "Invalid `q`, `after` or `limit`", body = ErrorBody),
    )
)]
#[get("/admin/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: ApiQuery<AdminUsersQuery>,
) -> ApiResult<web::Json<AdminUserPage>> {
    let q = query.0;
    let limit = limit_of(q.limit, 50, 100)?;
    let after = cursor_of("after", q.after)?.map(UserId);
    let search = match q.q.as_deref() {
        None => None,
        Some(raw) => Some(SearchQuery::parse(raw)?),
    };
    let page = admin::list_users(&state, search, after, limit).await?;
    Ok(web::Json(AdminUserPage {
        users: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next.map(|u| u.0),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AdminCreateUserRequest {
    /// 3–32 characters of letters, digits, `_`, `.` and `-`; unique case-insensitively.
    #[schema(
        min_length = 3,
        max_length = 32,
        pattern = "^[A-Za-z0-9_.-]+$",
        example = "carol"
    )]
    pub username: String,
    /// 8–128 characters.
    #[schema(min_length = 8, max_length = 128, example = "violet lamp stairs 42")]
    pub password: String,
    /// 1–64 characters, at least one of them visible (not only spaces, zero-width or format
    /// characters), no control characters, no bidi overrides or isolates; defaults to the
    /// username. (Its `pattern` is set by `openapi::build`.)
    #[schema(min_length = 1, max_length = 64, example = "Carol Danvers")]
    pub display_name: Option<String>,
    /// Make the new account an administrator (default false).
    #[serde(default)]
    #[schema(example = false)]
    pub is_admin: bool,
}

/// Create an account.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    request_body = AdminCreateUserRequest,
    responses(
        (status = 201, description = "Created", body = AdminUserDto),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 403, description = "The caller is not an administrator", body = ErrorBody),
        (status = 409, description = "Username taken", body = ErrorBody),
        (status = 422, description = "Invalid username, password or display name", body = ErrorBody),
    )
)]
#[post("/admin/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    admin: AdminUser,
    body: ApiJson<AdminCreateUserRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let mut fields = crate::error::FieldErrors::new();
    let username = Username::parse(&body.username).map_err(|e| collect(&mut fields, e));
    let password = Password::parse(&body.password).map_err(|e| collect(&mut fields, e));
    let display_name = match body.display_name.as_deref() {
        None => Ok(None),
        Some(d) => DisplayName::parse(d)
            .map(Some)
            .map_err(|e| collect(&mut fields, e)),
    };
    let (Ok(username), Ok(password), Ok(display_name)) = (username, password, display_name) else {
        return Err(ApiError::validation_fields(fields));
    };
    let user = admin::create_user(
        &state,
        admin.0.id,
        username,
        password,
        display_name,
        body.is_admin,
    )
    .await?;
    Ok(HttpResponse::Created().json(AdminUserDto::from(user)))
}

fn collect(into: &mut crate::error::FieldErrors, e: ApiError) {
    if let ApiError::Validation { fields, .. } = e {
        into.extend(fields);
    }
}

/// One user, with their activity counts.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("user_id" = i64, Path, minimum = 1, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = AdminUserDto),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 403, description = "The caller is not an administrator", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
#[get("/admin/users/{user_id}")]
pub async fn get_user(
    state: web::Data<AppState>,
    _admin: AdminUser,
    path: web::Path<i64>,
) -> ApiResult<web::Json<AdminUserDto>> {
    let user = admin::get_user(&state, UserId(path.into_inner())).await?;
    Ok(web::Json(user.into()))
}

/// Deactivate an account: it can no longer log in, its tokens stop working at once (for good:
/// reactivation does not revive them) and its open WebSockets close (an `unauthorized` error
/// frame, then close code 1008). While deactivated, the account is absent from user search,
/// cannot be added as a contact (404) and cannot be sent messages (403).
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("user_id" = i64, Path, minimum = 1, description = "The user's id")),
    responses(
        (status = 200, description = "The user, deactivated (already deactivated: unchanged)", body = AdminUserDto),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 403, description = "The caller is not an administrator", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Administrators cannot deactivate themselves; the account was deleted by its owner", body = ErrorBody),
    )
)]
#[post("/admin/users/{user_id}/deactivate")]
pub async fn deactivate(
    state: web::Data<AppState>,
    admin: AdminUser,
    path: web::Path<i64>,
) -> ApiResult<web::Json<AdminUserDto>> {
    let user = admin::set_active(&state, admin.0.id, UserId(path.into_inner()), false).await?;
    Ok(web::Json(user.into()))
}

/// Reactivate a deactivated account: it can log in again. Tokens issued before the deactivation
/// stay invalid (deactivation ended those sessions): the user signs in anew.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("user_id" = i64, Path, minimum = 1, description = "The user's id")),
    responses(
        (status = 200, description = "The user, active", body = AdminUserDto),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 403, description = "The caller is not an administrator", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The account was deleted by its owner: it cannot come back", body = ErrorBody),
    )
)]
#[post("/admin/users/{user_id}/reactivate")]
pub async fn reactivate(
    state: web::Data<AppState>,
    admin: AdminUser,
    path: web::Path<i64>,
) -> ApiResult<web::Json<AdminUserDto>> {
    let user = admin::set_active(&state, admin.0.id, UserId(path.into_inner()), true).await?;
    Ok(web::Json(user.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AdminPasswordRequest {
    /// 8–128 characters.
    #[schema(min_length = 8, max_length = 128, example = "a new passphrase, 2026")]
    pub password: String,
}

/// Set a new password for an account. Every session signed in before it ends: the user's
/// tokens stop working and their open WebSockets close with 1008.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("user_id" = i64, Path, minimum = 1, description = "The user's id")),
    request_body = AdminPasswordRequest,
    responses(
        (status = 204, description = "Password changed"),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 403, description = "The caller is not an administrator", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The account was deleted by its owner", body = ErrorBody),
        (status = 422, description = "Invalid password", body = ErrorBody),
    )
)]
#[post("/admin/users/{user_id}/password")]
pub async fn reset_password(
    state: web::Data<AppState>,
    admin: AdminUser,
    path: web::Path<i64>,
    body: ApiJson<AdminPasswordRequest>,
) -> ApiResult<HttpResponse> {
    let password = Password::parse(&body.0.password)?;
    admin::reset_password(&state, admin.0.id, UserId(path.into_inner()), password).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AdminRoleRequest {
    /// true to grant the admin role, false to remove it.
    #[schema(example = true)]
    pub is_admin: bool,
}

/// Grant or remove the admin role.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("user_id" = i64, Path, minimum = 1, description = "The user's id")),
    request_body = AdminRoleRequest,
    responses(
        (status = 200, description = "The user", body = AdminUserDto),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 403, description = "The caller is not an administrator", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Administrators cannot remove their own role; the account was deleted by its owner", body = ErrorBody),
        (status = 422, description = "`is_admin` missing or not a boolean", body = ErrorBody),
    )
)]
#[put("/admin/users/{user_id}/admin")]
pub async fn set_role(
    state: web::Data<AppState>,
    admin: AdminUser,
    path: web::Path<i64>,
    body: ApiJson<AdminRoleRequest>,
) -> ApiResult<web::Json<AdminUserDto>> {
    let user = admin::set_admin(
        &state,
        admin.0.id,
        UserId(path.into_inner()),
        body.0.is_admin,
    )
    .await?;
    Ok(web::Json(user.into()))
}

/// A room as administrators see it. Not a member's `Room`: an administrator reads rooms they
/// are not in, so it has no `unread_count` or `read_up_to` (those are each member's own, shown
/// to them by `GET /api/rooms`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminRoom {
    pub id: RoomId,
    #[schema(min_items = 2, max_items = 2)]
    pub members: Vec<UserDto>,
    pub created_at: DateTime<Utc>,
    pub last_seq: Seq,
    /// Messages in the room, deleted ones included (equal to `last_seq`: seqs have no gaps).
    #[schema(minimum = 0)]
    pub message_count: i64,
    /// When the newest message was sent; null while the room is empty.
    pub last_activity_at: Option<DateTime<Utc>>,
}

impl From<AdminRoomView> for AdminRoom {
    fn from(v: AdminRoomView) -> Self {
        let room = v.activity.room;
        AdminRoom {
            id: room.id,
            members: v.members.into_iter().map(Into::into).collect(),
            created_at: utc(room.created_at),
            last_seq: room.last_seq,
            message_count: room.last_seq.0,
            last_activity_at: v.activity.last_activity_at.map(utc),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminRoomPage {
    /// Newest room first.
    pub rooms: Vec<AdminRoom>,
    /// Pass as `before` for the next page; null on the last page.
    pub next_cursor: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminRoomsQuery {
    /// Only the rooms of this user.
    #[param(minimum = 1)]
    pub user_id: Option<i64>,
    /// Only rooms with a smaller id (the previous page's `next_cursor`).
    #[param(minimum = 0)]
    pub before: Option<i64>,
    /// At most this many rooms (1–100, default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// List rooms, newest first, with member names, message counts and last activity.
#[utoipa::path(
    operation_id = "admin_list_rooms",
    tag = "admin",
    security(("bearer" = [])),
    params(AdminRoomsQuery),
    responses(
        (status = 200, description = "A page of rooms", body = AdminRoomPage),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 403, description = "The caller is not an administrator", body = ErrorBody),
        (status = 422, description = "Invalid `user_id`, `before` or `limit`", body = ErrorBody),
    )
)]
#[get("/admin/rooms")]
pub async fn list_rooms(
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: ApiQuery<AdminRoomsQuery>,
) -> ApiResult<web::Json<AdminRoomPage>> {
    let q = query.0;
    let limit = limit_of(q.limit, 50, 100)?;
    let before = cursor_of("before", q.before)?.map(RoomId);
    if q.user_id.is_some_and(|id| id < 1) {
        return Err(ApiError::validation("user_id", "must be 1 or more"));
    }
    let member = q.user_id.map(UserId);
    let page = admin::list_rooms(&state, member, before, limit).await?;
    Ok(web::Json(AdminRoomPage {
        rooms: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next.map(|r| r.0),
    }))
}

/// One room.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("room_id" = i64, Path, minimum = 1, description = "The room's id")),
    responses(
        (status = 200, description = "The room", body = AdminRoom),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 403, description = "The caller is not an administrator", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
    )
)]
#[get("/admin/rooms/{room_id}")]
pub async fn get_room(
    state: web::Data<AppState>,
    _admin: AdminUser,
    path: web::Path<i64>,
) -> ApiResult<web::Json<AdminRoom>> {
    let room = admin::get_room(&state, RoomId(path.into_inner())).await?;
    Ok(web::Json(room.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminHistoryQuery {
    /// Only messages with a smaller seq (page back in time).
    #[param(minimum = 0)]
    pub before: Option<i64>,
    /// Only messages with a larger seq.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// At most this many messages (1–200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// A page of any room's messages, deleted ones included as tombstones; paging, and the byte
/// cap on a page (256 KiB of message JSON by default), as in `GET /api/rooms/{room_id}/messages`.
/// Reading a room is audited: one `room.read` entry per administrator, room and hour, naming
/// both members.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("room_id" = i64, Path, minimum = 1, description = "The room's id"), AdminHistoryQuery),
    responses(
        (status = 200, description = "A page of messages, ascending seq", body = MessagePage),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 403, description = "The caller is not an administrator", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 422, description = "Invalid cursor or limit", body = ErrorBody),
    )
)]
#[get("/admin/rooms/{room_id}/messages")]
pub async fn room_messages(
    state: web::Data<AppState>,
    admin: AdminUser,
    path: web::Path<i64>,
    query: ApiQuery<AdminHistoryQuery>,
) -> ApiResult<web::Json<MessagePage>> {
    let q = query.0;
    let limit = limit_of(q.limit, 50, 200)?;
    let cursor = match (cursor_of("before", q.before)?, cursor_of("after", q.after)?) {
        (None, None) => Cursor::Latest,
        (Some(b), None) => Cursor::Before(Seq(b)),
        (None, Some(a)) => Cursor::After(Seq(a)),
        (Some(b), Some(a)) => Cursor::Between(Seq(a), Seq(b)),
    };
    let (messages, has_more) =
        admin::room_messages(&state, admin.0.id, RoomId(path.into_inner()), cursor, limit).await?;
    Ok(web::Json(MessagePage {
        messages: messages.into_iter().map(Into::into).collect(),
        has_more,
    }))
}

/// Delete a message: it becomes a tombstone (body, earlier versions and reactions erased,
/// `deleted_at` set, seq kept) as a change of its room, and both members' connections get
/// `message_updated` and then `message_deleted`. Deleting it again changes nothing.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("message_id" = i64, Path, minimum = 1, description = "The message's id")),
    responses(
        (status = 200, description = "The tombstone", body = MessageDto),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 403, description = "The caller is not an administrator", body = ErrorBody),
        (status = 404, description = "No such message", body = ErrorBody),
    )
)]
#[delete("/admin/messages/{message_id}")]
pub async fn delete_message(
    state: web::Data<AppState>,
    admin: AdminUser,
    path: web::Path<i64>,
) -> ApiResult<web::Json<MessageDto>> {
    let message = admin::delete_message(&state, admin.0.id, MessageId(path.into_inner())).await?;
    Ok(web::Json(message.into()))
}

/// One earlier version of an edited message.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageEditDto {
    /// The text it had.
    pub body: String,
    /// When an edit replaced it.
    pub replaced_at: chrono::DateTime<chrono::Utc>,
}

/// The earlier versions of a message, oldest first (members see only `edited_at`). A deleted
/// message has none: deleting erases them.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("message_id" = i64, Path, minimum = 1, description = "The message's id")),
    responses(
        (status = 200, description = "The earlier versions, oldest first", body = Vec<MessageEditDto>),
        (status = 403, description = "The caller is not an administrator", body = ErrorBody),
        (status = 404, description = "No such message", body = ErrorBody),
    )
)]
#[get("/admin/messages/{message_id}/edits")]
pub async fn message_edits(
    state: web::Data<AppState>,
    _admin: AdminUser,
    path: web::Path<i64>,
) -> ApiResult<web::Json<Vec<MessageEditDto>>> {
    let edits = admin::message_edits(&state, MessageId(path.into_inner())).await?;
    Ok(web::Json(
        edits
            .into_iter()
            .map(|(body, at)| MessageEditDto {
                body,
                replaced_at: at.and_utc(),
            })
            .collect(),
    ))
}

/// Server statistics.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminStats {
    #[schema(minimum = 0)]
    pub users: i64,
    #[schema(minimum = 0)]
    pub admins: i64,
    #[schema(minimum = 0)]
    pub deactivated_users: i64,
    #[schema(minimum = 0)]
    pub rooms: i64,
    /// Every message ever stored, deleted ones included.
    #[schema(minimum = 0)]
    pub messages: i64,
    #[schema(minimum = 0)]
    pub messages_last_hour: i64,
    #[schema(minimum = 0)]
    pub messages_last_day: i64,
    /// Uploads stored: those not yet sent (kept 24 h) and those messages carry.
    #[schema(minimum = 0)]
    pub uploads: i64,
    /// Their bytes, each upload counted (the same bytes uploaded twice are stored once).
    #[schema(minimum = 0)]
    pub upload_bytes: i64,
    /// Open WebSocket connections on every instance of the server: the answering instance's
    /// now, plus each other's as it last reported them (when one of its users came or went, and
    /// every 10 s).
    #[schema(minimum = 0)]
    pub connections: i64,
    /// Users with at least one open connection now, to any instance of the server (each
    /// counted once).
    #[schema(minimum = 0)]
    pub online_users: i64,
}

impl From<Stats> for AdminStats {
    fn from(s: Stats) -> Self {
        let t = s.totals;
        AdminStats {
            users: t.users,
            admins: t.admins,
            deactivated_users: t.deactivated_users,
            rooms: t.rooms,
            messages: t.messages,
            messages_last_hour: t.messages_last_hour,
            messages_last_day: t.messages_last_day,
            uploads: t.uploads,
            upload_bytes: t.upload_bytes,
            connections: i64::try_from(s.connections).unwrap_or(i64::MAX),
            online_users: i64::try_from(s.online_users).unwrap_or(i64::MAX),
        }
    }
}

/// Users, rooms, messages, connections now and recent traffic.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Statistics", body = AdminStats),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 403, description = "The caller is not an administrator", body = ErrorBody),
    )
)]
#[get("/admin/stats")]
pub async fn stats(
    state: web::Data<AppState>,
    _admin: AdminUser,
) -> ApiResult<web::Json<AdminStats>> {
    Ok(web::Json(admin::stats(&state).await?.into()))
}

/// One recorded administrative action.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// The administrator who acted; null for the command line (`letschat admin`).
    pub actor_id: Option<UserId>,
    pub actor_username: Option<String>,
    /// `user.create`, `user.deactivate`, `user.reactivate`, `user.password_reset`,
    /// `user.grant_admin`, `user.revoke_admin`, `message.delete` or `room.read` (an
    /// administrator read a room's messages; one entry per administrator, room and hour); and
    /// the owners' own `user.password_change`, `user.delete` and `session.revoke` (ended one
    /// session, or every other one), whose actor is the account itself.
    pub action: String,
    /// `user`, `message` or `room`.
    pub target_type: String,
    pub target_id: i64,
    /// A short description of the target (`@username`, `room 7 seq 12`, `room 7 (@alice and
    /// @bob)`).
    pub detail: String,
    pub created_at: DateTime<Utc>,
}

impl From<AuditView> for AuditEntry {
    fn from(v: AuditView) -> Self {
        AuditEntry {
            id: v.row.id,
            actor_id: v.row.actor_id,
            actor_username: v.actor_username,
            action: v.row.action,
            target_type: v.row.target_type,
            target_id: v.row.target_id,
            detail: v.row.detail,
            created_at: utc(v.row.created_at),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next page; null on the last page.
    pub next_cursor: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries with a smaller id (the previous page's `next_cursor`).
    #[param(minimum = 0)]
    pub before: Option<i64>,
    /// At most this many entries (1–200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// The audit log: every administrative action, newest first.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries", body = AuditPage),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 403, description = "The caller is not an administrator", body = ErrorBody),
        (status = 422, description = "Invalid `before` or `limit`", body = ErrorBody),
    )
)]
#[get("/admin/audit")]
pub async fn audit(
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: ApiQuery<AuditQuery>,
) -> ApiResult<web::Json<AuditPage>> {
    let q = query.0;
    let limit = limit_of(q.limit, 50, 200)?;
    let before = cursor_of("before", q.before)?;
    let page = admin::audit(&state, before, limit).await?;
    Ok(web::Json(AuditPage {
        entries: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next,
    }))
}
