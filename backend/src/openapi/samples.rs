//! The objects the documentation shows as examples: one small, consistent story (Alice and Bob
//! talk in room 7), built from the response types themselves, so that an example always has
//! every field its object has. The OpenAPI document shows them as its schemas' examples and the
//! AsyncAPI document puts them in its frames.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::api::admin::{
    AdminRoom, AdminRoomPage, AdminStats, AdminUserDto, AdminUserPage, AuditEntry, AuditPage,
    MessageEditDto,
};
use crate::api::auth::AuthResponse;
use crate::api::dto::{ContactDto, MeDto, MessageDto, ReactionDto, RoomDto, UploadDto, UserDto};
use crate::api::health::{BrokerHealth, Health};
use crate::api::rooms::{ChangesPage, MessagePage};
use crate::api::sessions::SessionDto;
use crate::domain::{MessageId, RoomId, Seq, SessionId, UserId};
use crate::error::{ErrorBody, ErrorDetail};

/// A time of the story (RFC 3339).
fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

pub const ALICE: UserId = UserId(1);
pub const BOB: UserId = UserId(2);
pub const ROOM: RoomId = RoomId(7);
/// Alice's newest message in room 7.
pub const MESSAGE_SEQ: Seq = Seq(43);

pub fn alice() -> UserDto {
    UserDto {
        id: ALICE,
        username: "alice".into(),
        display_name: "Alice Liddell".into(),
        created_at: at("2026-11-02T09:15:00Z"),
    }
}

pub fn bob() -> UserDto {
    UserDto {
        id: BOB,
        username: "bob".into(),
        display_name: "Bob Marley 🎸".into(),
        created_at: at("2026-11-03T18:40:12Z"),
    }
}

pub fn me() -> MeDto {
    MeDto {
        user: alice(),
        is_admin: false,
    }
}

/// A photo as uploaded (and then carried by [`message`]).
pub fn upload() -> UploadDto {
    UploadDto {
        id: "3f2a9c0e5b7d41e8a6c4b2d0f9e8a7c6".into(),
        name: "café terrace.jpg".into(),
        content_type: "image/jpeg".into(),
        size: 2_097_152,
        sha256: "d243f6a473c86fb8aa6504a523930545313b9d9434a79d64d6998ff2fc22efac".into(),
        width: Some(4032),
        height: Some(3024),
        url: "/api/files/3f2a9c0e5b7d41e8a6c4b2d0f9e8a7c6?e=1795694400&s=Rj9xK2vQ0mT7wYc4".into(),
        thumbnail_url: Some(
            "/api/files/3f2a9c0e5b7d41e8a6c4b2d0f9e8a7c6/thumbnail?e=1795694400&s=Qm7tL1pZ8nB3"
                .into(),
        ),
    }
}

/// Bob's thumbs-up.
pub fn reaction() -> ReactionDto {
    ReactionDto {
        emoji: "👍".into(),
        user_ids: vec![BOB],
    }
}

/// Alice's newest message: live (not deleted), a reply, with a reaction from Bob and a photo.
pub fn message() -> MessageDto {
    MessageDto {
        id: MessageId(311),
        room_id: ROOM,
        seq: MESSAGE_SEQ,
        sender_id: ALICE,
        client_msg_id: "7d0f1c9e-1b9a-4c57-9f3e-2b8c0d1e4a6f".into(),
        body: "See you at the café at 6? ☕".into(),
        created_at: at("2026-11-25T12:01:02.345Z"),
        edited_at: None,
        deleted_at: None,
        reply_to: Some(MessageId(310)),
        reactions: vec![reaction()],
        change_seq: 12,
        attachments: vec![upload()],
    }
}

/// The message before it: Bob's, plain text, never changed.
pub fn earlier_message() -> MessageDto {
    MessageDto {
        id: MessageId(310),
        room_id: ROOM,
        seq: Seq(MESSAGE_SEQ.0 - 1),
        sender_id: BOB,
        client_msg_id: "c81e728d-9d4c-4f63-a0b1-6f3e2c9d7a15".into(),
        body: "Are we still on for tonight?".into(),
        created_at: at("2026-11-25T11:58:40.120Z"),
        edited_at: None,
        deleted_at: None,
        reply_to: None,
        reactions: Vec::new(),
        change_seq: 0,
        attachments: Vec::new(),
    }
}

/// [`message`] after Alice edited it: a new body, `edited_at`, the next change.
pub fn edited_message() -> MessageDto {
    MessageDto {
        body: "See you at the café at 6:30? ☕".into(),
        edited_at: Some(at("2026-11-25T12:05:00Z")),
        change_seq: 13,
        ..message()
    }
}

/// [`message`] after it was deleted: its tombstone.
pub fn deleted_message() -> MessageDto {
    MessageDto {
        body: String::new(),
        edited_at: None,
        deleted_at: Some(at("2026-11-25T12:30:00Z")),
        reply_to: None,
        reactions: Vec::new(),
        change_seq: 14,
        attachments: Vec::new(),
        ..message()
    }
}

pub fn room() -> RoomDto {
    RoomDto {
        id: ROOM,
        members: vec![alice(), bob()],
        created_at: at("2026-11-03T18:42:05Z"),
        last_seq: MESSAGE_SEQ,
        last_change_seq: 12,
        // Bob's two newest messages are unread, as the contacts list shows them.
        unread_count: 2,
        read_up_to: Seq(MESSAGE_SEQ.0 - 2),
    }
}

pub fn contact() -> ContactDto {
    ContactDto {
        user: bob(),
        room_id: ROOM,
        last_message: Some(message()),
        unread_count: 2,
        online: true,
    }
}

pub fn session() -> SessionDto {
    SessionDto {
        id: SessionId(4_821_113_907_262_145),
        created_at: at("2026-11-20T08:12:44Z"),
        last_seen_at: at("2026-11-25T12:01:00Z"),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0".into()),
        ip: Some("203.0.113.7".into()),
        current: true,
    }
}

/// A device token of Alice's (as `auth::device` writes them: `d1.` and 56 bytes, base64url).
pub const DEVICE_TOKEN: &str =
    "d1.AAAAAAAAAAF4N3tSV1e0lEJ_iQFPl9eZNIpin1zu0DLD6HBuxH2b-vsA-0JQsBjdllQ1ylDLg24";

pub fn auth_response() -> AuthResponse {
    AuthResponse {
        token: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOjEsInNpZCI6NDgyMTExMzkwNzI2MjE0NSwiZXhwIjoxNzk2Mjk4ODAwfQ.5mX0Jq8sQJ3pVbq1r2yHkzRk7f3Xc1lYp6H2nWvA9dE".into(),
        user: alice(),
        device_token: DEVICE_TOKEN.into(),
    }
}

pub fn health() -> Health {
    Health {
        status: "ok".into(),
        broker: BrokerHealth {
            kind: "in_process".into(),
            connected: true,
        },
    }
}

pub fn message_page() -> MessagePage {
    MessagePage {
        messages: vec![earlier_message(), message()],
        has_more: true,
    }
}

pub fn changes_page() -> ChangesPage {
    ChangesPage {
        messages: vec![edited_message()],
        has_more: false,
        last_change_seq: 13,
    }
}

pub fn admin_user() -> AdminUserDto {
    let bob = bob();
    AdminUserDto {
        id: bob.id,
        username: bob.username,
        display_name: bob.display_name,
        created_at: bob.created_at,
        is_admin: false,
        deactivated_at: None,
        last_seen_at: Some(at("2026-11-25T11:58:41Z")),
        online: true,
        contacts_count: 12,
        rooms_count: 12,
        messages_count: 873,
    }
}

pub fn admin_user_page() -> AdminUserPage {
    AdminUserPage {
        users: vec![admin_user()],
        next_cursor: Some(BOB.0),
    }
}

pub fn admin_room() -> AdminRoom {
    AdminRoom {
        id: ROOM,
        members: vec![alice(), bob()],
        created_at: at("2026-11-03T18:42:05Z"),
        last_seq: MESSAGE_SEQ,
        message_count: MESSAGE_SEQ.0,
        last_activity_at: Some(at("2026-11-25T12:01:02.345Z")),
    }
}

pub fn admin_room_page() -> AdminRoomPage {
    AdminRoomPage {
        rooms: vec![admin_room()],
        next_cursor: Some(ROOM.0),
    }
}

pub fn message_edit() -> MessageEditDto {
    MessageEditDto {
        body: "See you at the café at 6? ☕".into(),
        replaced_at: at("2026-11-25T12:05:00Z"),
    }
}

pub fn admin_stats() -> AdminStats {
    AdminStats {
        users: 1_284,
        admins: 2,
        deactivated_users: 7,
        rooms: 3_906,
        messages: 1_482_337,
        messages_last_hour: 2_310,
        messages_last_day: 41_877,
        uploads: 18_204,
        upload_bytes: 26_843_545_600,
        connections: 611,
        online_users: 402,
    }
}

pub fn audit_entry() -> AuditEntry {
    AuditEntry {
        id: 58,
        actor_id: Some(UserId(3)),
        actor_username: Some("carol".into()),
        action: "user.deactivate".into(),
        target_type: "user".into(),
        target_id: 19,
        detail: "@mallory".into(),
        created_at: at("2026-11-24T21:17:30Z"),
    }
}

pub fn audit_page() -> AuditPage {
    AuditPage {
        entries: vec![audit_entry()],
        next_cursor: Some(58),
    }
}

/// A refused registration: what every error looks like, `fields` included.
pub fn error_body() -> ErrorBody {
    ErrorBody {
        error: error_detail(),
    }
}

pub fn error_detail() -> ErrorDetail {
    let why = "may contain only letters, digits, '_', '.' and '-'";
    ErrorDetail {
        code: "validation_failed".into(),
        message: format!("username: {why}"),
        fields: Some([("username".to_owned(), why.to_owned())].into()),
    }
}

fn value(v: impl Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// The example of each response schema of the OpenAPI document, by schema name.
pub fn schema_examples() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("User", value(alice())),
        ("Me", value(me())),
        ("Message", value(message())),
        ("Reaction", value(reaction())),
        ("Upload", value(upload())),
        ("Room", value(room())),
        ("Contact", value(contact())),
        ("Session", value(session())),
        ("AuthResponse", value(auth_response())),
        ("Health", value(health())),
        ("BrokerHealth", value(health().broker)),
        ("MessagePage", value(message_page())),
        ("ChangesPage", value(changes_page())),
        ("AdminUser", value(admin_user())),
        ("AdminUserPage", value(admin_user_page())),
        ("AdminRoom", value(admin_room())),
        ("AdminRoomPage", value(admin_room_page())),
        ("MessageEditDto", value(message_edit())),
        ("AdminStats", value(admin_stats())),
        ("AuditEntry", value(audit_entry())),
        ("AuditPage", value(audit_page())),
        ("ErrorBody", value(error_body())),
        ("ErrorDetail", value(error_detail())),
    ]
}
