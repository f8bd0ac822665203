//! Response objects of the wire contract, and their conversions from rows.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::broker::{AttachmentData, MessageData, UserData};
use crate::db::models::{MessageRow, UserRow};
use crate::domain::{MessageId, RoomId, Seq, UserId};
use crate::services::contacts::ContactView;
use crate::services::rooms::RoomView;

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}

/// A user as others see them (never a password hash).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = User)]
pub struct UserDto {
    pub id: UserId,
    /// Unique (case-insensitively); `~deleted-<id>` once the account is deleted.
    pub username: String,
    /// What to show; `Deleted user` once the account is deleted.
    pub display_name: String,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

impl From<UserRow> for UserDto {
    fn from(u: UserRow) -> Self {
        UserDto {
            id: u.id,
            username: u.username,
            display_name: u.display_name,
            created_at: utc(u.created_at),
        }
    }
}

impl From<UserData> for UserDto {
    fn from(u: UserData) -> Self {
        UserDto {
            id: u.id,
            username: u.username,
            display_name: u.display_name,
            created_at: u.created_at,
        }
    }
}

/// The caller's own account: their `user` object, plus `is_admin: true` for administrators
/// (absent for everyone else, so the object is exactly a `user` for them).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Me)]
pub struct MeDto {
    #[serde(flatten)]
    pub user: UserDto,
    /// Present, and true, only for administrators.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_admin: bool,
}

/// A stored message. `seq` starts at 1 in each room and increases by 1 with no gaps.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Message)]
pub struct MessageDto {
    pub id: MessageId,
    pub room_id: RoomId,
    pub seq: Seq,
    pub sender_id: UserId,
    /// The id its sender chose when sending it (sending it again returns this message).
    pub client_msg_id: String,
    /// The text, trimmed; `""` once deleted, and possibly for a message of files alone.
    pub body: String,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// When its sender last edited it (null if never).
    #[schema(required = true)]
    pub edited_at: Option<DateTime<Utc>>,
    /// When it was deleted, by its sender or an administrator (null if not): `body` is then
    /// `""`, `reactions` `[]` and `reply_to` null. It keeps its `id` and `seq`, so histories
    /// stay gap-free.
    #[schema(required = true)]
    pub deleted_at: Option<DateTime<Utc>>,
    /// The message of the same room this one answers (null if none, or once this one is
    /// deleted).
    #[schema(required = true)]
    pub reply_to: Option<MessageId>,
    /// One entry per distinct emoji, in the order each was first added.
    pub reactions: Vec<ReactionDto>,
    /// The room's change that last touched this message (0 if never changed).
    #[schema(minimum = 0)]
    pub change_seq: i64,
    /// The files it carries, in the order sent (`[]` if none, or once it is deleted). Their
    /// links are signed afresh for every response and frame.
    #[schema(max_items = 10)]
    pub attachments: Vec<UploadDto>,
}

/// The reactions with one emoji to a message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Reaction)]
pub struct ReactionDto {
    /// One emoji (one grapheme cluster).
    #[schema(example = "👍")]
    pub emoji: String,
    /// Who reacted with it, in the order they did.
    pub user_ids: Vec<UserId>,
}

impl From<MessageData> for MessageDto {
    fn from(m: MessageData) -> Self {
        MessageDto {
            id: m.id,
            room_id: m.room_id,
            seq: m.seq,
            sender_id: m.sender_id,
            client_msg_id: m.client_msg_id,
            body: m.body,
            created_at: m.created_at,
            edited_at: m.edited_at,
            deleted_at: m.deleted_at,
            reply_to: m.reply_to,
            reactions: m
                .reactions
                .into_iter()
                .map(|r| ReactionDto {
                    emoji: r.emoji,
                    user_ids: r.user_ids,
                })
                .collect(),
            change_seq: m.change_seq,
            attachments: m.attachments.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<&MessageData> for MessageDto {
    fn from(m: &MessageData) -> Self {
        m.clone().into()
    }
}

impl From<MessageRow> for MessageDto {
    fn from(m: MessageRow) -> Self {
        MessageData::from(m).into()
    }
}

impl From<&MessageRow> for MessageDto {
    fn from(m: &MessageRow) -> Self {
        m.clone().into()
    }
}

/// One of the caller's contacts, with the room they share.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Contact)]
pub struct ContactDto {
    pub user: UserDto,
    pub room_id: RoomId,
    /// The newest message of the shared room, if any.
    pub last_message: Option<MessageDto>,
    /// Messages in the room after the caller's read marker.
    #[schema(minimum = 0)]
    pub unread_count: i64,
    /// Whether the contact has an open connection.
    pub online: bool,
}

impl From<ContactView> for ContactDto {
    fn from(c: ContactView) -> Self {
        ContactDto {
            user: c.user.into(),
            room_id: c.room_id,
            last_message: c.last_message.map(Into::into),
            unread_count: c.unread_count,
            online: c.online,
        }
    }
}

/// A private room of exactly two members.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Room)]
pub struct RoomDto {
    pub id: RoomId,
    /// The two members.
    #[schema(min_items = 2, max_items = 2)]
    pub members: Vec<UserDto>,
    pub created_at: DateTime<Utc>,
    /// The newest message's seq; 0 while the room is empty.
    pub last_seq: Seq,
    /// The room's newest change (edit, delete, reaction); 0 while there is none.
    #[schema(minimum = 0)]
    pub last_change_seq: i64,
    /// The caller's own: messages after their read marker, deleted ones not counted — the
    /// number `GET /api/contacts` shows for this room (and still shown once the contact is
    /// removed).
    #[schema(minimum = 0)]
    pub unread_count: i64,
    /// The caller's own read marker: the highest seq they have read (0 for none). It moves
    /// forward with `POST /api/rooms/{room_id}/read` and `read` frames, and to the message they
    /// send when they send one (replying means having read the conversation).
    pub read_up_to: Seq,
}

impl From<RoomView> for RoomDto {
    fn from(r: RoomView) -> Self {
        RoomDto {
            id: r.room.id,
            members: r.members.into_iter().map(Into::into).collect(),
            created_at: utc(r.room.created_at),
            last_seq: r.room.last_seq,
            last_change_seq: r.room.last_change_seq,
            unread_count: r.read.unread_count,
            read_up_to: r.read.read_up_to,
        }
    }
}

/// An uploaded file; in a message, an attachment. `content_type` is what the server detected
/// from the bytes, not what the client claimed. `url` and `thumbnail_url` are signed links
/// (relative to the server) that work without an `Authorization` header and expire after
/// `LETSCHAT_UPLOAD_LINK_TTL` (1 h, rounded up to the next five minutes); every response that
/// shows an upload signs them afresh for its reader.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Upload)]
pub struct UploadDto {
    /// 32 lowercase hex digits.
    #[schema(
        pattern = "^[0-9a-f]{32}$",
        example = "3f2a9c0e5b7d41e8a6c4b2d0f9e8a7c6"
    )]
    pub id: String,
    /// The file name as sent, made safe: no folders, control or bidirectional-override
    /// characters, at most 200 bytes.
    #[schema(example = "holiday.jpg")]
    pub name: String,
    /// Detected from the bytes (`application/octet-stream` when unknown).
    #[schema(example = "image/jpeg")]
    pub content_type: String,
    /// Bytes.
    #[schema(minimum = 1, example = 2_097_152)]
    pub size: i64,
    /// SHA-256 of the bytes, lowercase hex.
    #[schema(
        pattern = "^[0-9a-f]{64}$",
        example = "d243f6a473c86fb8aa6504a523930545313b9d9434a79d64d6998ff2fc22efac"
    )]
    pub sha256: String,
    /// For images the server decoded: as displayed (EXIF orientation applied); else null.
    #[schema(required = true, minimum = 1, example = 4032)]
    pub width: Option<i32>,
    #[schema(required = true, minimum = 1, example = 3024)]
    pub height: Option<i32>,
    /// The bytes as uploaded: `/api/files/{id}?e=<expiry>&s=<signature>`.
    #[schema(example = "/api/files/3f2a9c0e5b7d41e8a6c4b2d0f9e8a7c6?e=1767225600&s=Rj9x...")]
    pub url: String,
    /// A JPEG of at most 400 pixels on its long side, for images the server decoded; else null.
    #[schema(
        required = true,
        example = "/api/files/3f2a9c0e5b7d41e8a6c4b2d0f9e8a7c6/thumbnail?e=1767225600&s=Qm7t..."
    )]
    pub thumbnail_url: Option<String>,
}

impl UploadDto {
    /// `upload` with its links signed at `now` for the reader this is sent to.
    pub fn signed(
        upload: crate::db::uploads::UploadRow,
        links: &crate::services::uploads::Links,
        now: std::time::SystemTime,
    ) -> UploadDto {
        crate::services::uploads::attachment_data(upload, links, now).into()
    }
}

impl From<AttachmentData> for UploadDto {
    fn from(a: AttachmentData) -> Self {
        UploadDto {
            id: a.id,
            name: a.name,
            content_type: a.content_type,
            size: a.size,
            sha256: a.sha256,
            width: a.width,
            height: a.height,
            url: a.url,
            thumbnail_url: a.thumbnail_url,
        }
    }
}
