//! The WebSocket frames of the wire contract (docs/websocket.md, and the AsyncAPI document
//! built from these types: `asyncapi`): what clients send, what the server sends back. All
//! frames are JSON text with a `type`.

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::dto::{MessageDto, UserDto};
use crate::broker::{MessageData, SharedMessage};
use crate::domain::{RoomId, Seq, UserId};

/// Client → server.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Authenticates the connection (unless the upgrade request carried the token).
    Auth {
        /// The `token` from `POST /api/auth/login` or `/api/auth/register`.
        token: String,
    },
    /// Sends a message; answered with `ack` once it is stored.
    Send {
        #[schema(minimum = 1)]
        room_id: i64,
        /// Chosen by the client (a UUID is best), 1–64 printable ASCII characters. Sending the
        /// same one again answers with the message stored the first time.
        #[schema(min_length = 1, max_length = 64, pattern = "^[!-~]+$")]
        client_msg_id: String,
        /// 1–4,000 characters with a visible one, stored trimmed; `""` allowed with attachments.
        #[schema(max_length = 4000)]
        body: String,
        /// The message of the same room this one answers.
        #[serde(default)]
        #[schema(minimum = 1)]
        reply_to: Option<i64>,
        /// Ids of the sender's uploads the message carries (at most 10).
        #[serde(default)]
        #[schema(max_items = 10)]
        attachments: Vec<String>,
    },
    /// Replays a room's messages after a seq (and its changes after a `change_seq`).
    Sync {
        #[schema(minimum = 1)]
        room_id: i64,
        /// The last seq the client has (0 for none).
        #[schema(minimum = 0)]
        after: i64,
        /// Also replay the changes after this `change_seq`, after the messages.
        #[serde(default)]
        #[schema(minimum = 0)]
        changes_after: Option<i64>,
    },
    /// The user is typing in a room.
    Typing {
        #[schema(minimum = 1)]
        room_id: i64,
    },
    /// The user has read a room up to a seq.
    Read {
        #[schema(minimum = 1)]
        room_id: i64,
        #[schema(minimum = 0)]
        up_to: i64,
    },
    /// Asks for a `pong`.
    Ping,
}

pub const CLIENT_TYPES: [&str; 6] = ["auth", "send", "sync", "typing", "read", "ping"];

/// A room as the `ready` frame lists it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoomState {
    pub room_id: RoomId,
    /// The room's newest seq (0 while it is empty).
    pub last_seq: Seq,
    /// The user's read marker.
    pub read_up_to: Seq,
    /// The other member's read marker: what they have read of this room.
    pub peer_read_up_to: Seq,
    /// The room's newest change (edit, delete, reaction).
    #[schema(minimum = 0)]
    pub last_change_seq: i64,
}

/// Server → client. `ack` and `message` frames are sent pre-rendered (see `MessageFrames`); their
/// variants here define the shape, and the tests hold the two byte for byte equal.
/// (`Deserialize` is for clients written in Rust and for the tests.)
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    /// The connection is authenticated: the user and every room of theirs.
    Ready {
        user: UserDto,
        rooms: Vec<RoomState>,
    },
    /// The sender's message is stored: the message as stored.
    Ack {
        client_msg_id: &'a str,
        message: MessageDto,
    },
    /// A new message in one of the user's rooms (live, or replayed by a `sync`).
    Message { message: MessageDto },
    /// A `sync` has replayed everything it had to.
    Synced {
        room_id: RoomId,
        last_seq: Seq,
        /// With `changes_after` in the `sync`: the change the client now has every change up to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(minimum = 0)]
        last_change_seq: Option<i64>,
    },
    /// The other member is typing.
    Typing { room_id: RoomId, user_id: UserId },
    /// A member's read marker moved.
    Read {
        room_id: RoomId,
        user_id: UserId,
        up_to: Seq,
    },
    /// A contact's first connection opened, or their last one closed.
    Presence { user_id: UserId, online: bool },
    /// A user's profile changed (their display name, or their account was deleted): the user
    /// as they are now, to their contacts and their own connections.
    UserUpdated { user: UserDto },
    /// A change to a message (edit, delete, reaction): the message as it is after it. Sent
    /// pre-rendered (`updated_frame`); this variant defines the shape.
    MessageUpdated { message: MessageDto },
    /// An administrator deleted a message; `message` is its tombstone.
    MessageDeleted {
        room_id: RoomId,
        seq: Seq,
        message: MessageDto,
    },
    /// The answer to a `ping`.
    Pong,
    /// A frame could not be handled (the connection stays open), or the connection is about to
    /// be closed.
    Error {
        /// One of the REST API's error codes.
        code: &'a str,
        message: String,
        /// The `client_msg_id` of the `send` this error is about.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
}

/// The `type` of every frame of `T` ([`ClientFrame`] or [`ServerFrame`]), as serde reads them:
/// the list the documentation is checked against, so that a new frame cannot go undocumented.
pub fn frame_types<T: Deserialize<'static>>() -> &'static [&'static str] {
    use serde::de::value::MapDeserializer;

    /// An error that keeps what serde says it expected when it meets an unknown variant.
    #[derive(Debug)]
    struct Expected(&'static [&'static str]);
    impl std::fmt::Display for Expected {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "expected one of {:?}", self.0)
        }
    }
    impl std::error::Error for Expected {}
    impl serde::de::Error for Expected {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Expected(&[])
        }
        fn unknown_variant(_: &str, expected: &'static [&'static str]) -> Self {
            Expected(expected)
        }
    }

    // A `type` no frame has: serde answers with the list of those it knows.
    let frame = MapDeserializer::<_, Expected>::new(std::iter::once(("type", "")));
    match T::deserialize(frame) {
        Err(Expected(types)) => types,
        Ok(_) => &[],
    }
}

impl ServerFrame<'_> {
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"frame encoding failed"}"#.to_owned()
        })
    }
}

const ENCODING_FAILED: &str =
    r#"{"type":"error","code":"internal","message":"frame encoding failed"}"#;
const MESSAGE_PREFIX: &str = r#"{"type":"message","message":"#;
const ACK_PREFIX: &str = r#"{"type":"ack","client_msg_id":"#;
const ACK_MESSAGE_KEY: &str = r#","message":"#;
const UPDATED_PREFIX: &str = r#"{"type":"message_updated","message":"#;

/// The frames of a message an event carries. Its `message` frame is rendered once per instance,
/// by the first connection that needs it, into the message's cache and shared by all of them (a
/// `ByteString` clone only bumps a reference count); the sender's `ack` is spliced from the
/// same JSON.
pub trait MessageFrames {
    /// `{"type":"message","message":…}`.
    fn message_frame(&self) -> ByteString;
    /// `{"type":"ack","client_msg_id":…,"message":…}`.
    fn ack_frame(&self, client_msg_id: &str) -> ByteString;
    /// `{"type":"message_updated","message":…}`.
    fn updated_frame(&self) -> ByteString;
}

impl MessageFrames for SharedMessage {
    fn message_frame(&self) -> ByteString {
        self.rendered(message_frame).clone()
    }

    fn ack_frame(&self, client_msg_id: &str) -> ByteString {
        ack_from_message_frame(self.rendered(message_frame), client_msg_id)
    }

    fn updated_frame(&self) -> ByteString {
        updated_from_message_frame(self.rendered(message_frame))
    }
}

/// The `message_updated` frame for a message whose `message` frame is rendered.
pub fn updated_from_message_frame(message_frame: &str) -> ByteString {
    match message_frame.strip_prefix(MESSAGE_PREFIX) {
        Some(rest) => {
            let mut s = String::with_capacity(UPDATED_PREFIX.len() + rest.len());
            s.push_str(UPDATED_PREFIX);
            s.push_str(rest);
            ByteString::from(s)
        }
        None => ByteString::from_static(ENCODING_FAILED),
    }
}

/// `{"type":"message","message":…}` for one message, written straight from its data.
pub fn message_frame(m: &MessageData) -> ByteString {
    let mut buf =
        Vec::with_capacity(MESSAGE_PREFIX.len() + m.client_msg_id.len() + m.body.len() + 192);
    buf.extend_from_slice(MESSAGE_PREFIX.as_bytes());
    // Serializing a plain struct into memory cannot fail, and serde_json writes UTF-8.
    if serde_json::to_writer(&mut buf, m).is_err() {
        return ByteString::from_static(ENCODING_FAILED);
    }
    buf.push(b'}');
    ByteString::try_from(buf).unwrap_or_else(|_| ByteString::from_static(ENCODING_FAILED))
}

/// The `ack` for a message whose `message` frame is already rendered (by `message_frame`).
pub fn ack_from_message_frame(message_frame: &str, client_msg_id: &str) -> ByteString {
    match message_frame.strip_prefix(MESSAGE_PREFIX) {
        Some(rest) => ack_frame(client_msg_id, rest.strip_suffix('}').unwrap_or(rest)),
        None => ByteString::from_static(ENCODING_FAILED),
    }
}

/// `{"type":"ack","client_msg_id":…,"message":…}` around an already rendered message.
fn ack_frame(client_msg_id: &str, message_json: &str) -> ByteString {
    let mut buf = Vec::with_capacity(
        ACK_PREFIX.len() + client_msg_id.len() + 2 + ACK_MESSAGE_KEY.len() + message_json.len() + 1,
    );
    buf.extend_from_slice(ACK_PREFIX.as_bytes());
    // serde_json escapes the id; writing a string into memory cannot fail.
    if serde_json::to_writer(&mut buf, client_msg_id).is_err() {
        return ByteString::from_static(ENCODING_FAILED);
    }
    buf.extend_from_slice(ACK_MESSAGE_KEY.as_bytes());
    buf.extend_from_slice(message_json.as_bytes());
    buf.push(b'}');
    ByteString::try_from(buf).unwrap_or_else(|_| ByteString::from_static(ENCODING_FAILED))
}

/// Why a text frame could not be understood: the error frame to answer with.
#[derive(Debug, PartialEq, Eq)]
pub struct FrameError {
    pub code: &'static str,
    pub message: String,
    pub client_msg_id: Option<String>,
}

/// Parses a client frame, or explains what is wrong with it.
pub fn parse(text: &str) -> Result<ClientFrame, FrameError> {
    match serde_json::from_str::<ClientFrame>(text) {
        Ok(frame) => Ok(frame),
        Err(e) => Err(explain(text, &e)),
    }
}

fn explain(text: &str, e: &serde_json::Error) -> FrameError {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(syntax) => {
            return FrameError {
                code: "invalid_json",
                message: format!("the frame is not valid JSON: {syntax}"),
                client_msg_id: None,
            }
        }
    };
    let client_msg_id = value
        .get("client_msg_id")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let message = match value.get("type") {
        None => "the frame has no \"type\"".to_owned(),
        Some(serde_json::Value::String(t)) if !CLIENT_TYPES.contains(&t.as_str()) => {
            format!(
                "unknown frame type \"{t}\"; expected one of {}",
                CLIENT_TYPES.join(", ")
            )
        }
        Some(_) => {
            let msg = e.to_string();
            msg.split(" at line ").next().unwrap_or(&msg).to_owned()
        }
    };
    FrameError {
        code: "validation_failed",
        message,
        client_msg_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_explains() {
        assert!(matches!(parse(r#"{"type":"ping"}"#), Ok(ClientFrame::Ping)));
        assert!(matches!(
            parse(r#"{"type":"send","room_id":1,"client_msg_id":"a","body":"hi"}"#),
            Ok(ClientFrame::Send { room_id: 1, .. })
        ));
        assert_eq!(parse("{nope").unwrap_err().code, "invalid_json");
        let e = parse(r#"{"type":"shout"}"#).unwrap_err();
        assert_eq!(e.code, "validation_failed");
        assert!(e.message.contains("unknown frame type"));
        let e =
            parse(r#"{"type":"send","room_id":"x","client_msg_id":"c1","body":"hi"}"#).unwrap_err();
        assert_eq!(
            (e.code, e.client_msg_id.as_deref()),
            ("validation_failed", Some("c1"))
        );
        assert!(parse(r#"{"room_id":1}"#)
            .unwrap_err()
            .message
            .contains("no \"type\""));
    }

    fn row(client_msg_id: &str, body: &str, deleted: bool, nanos: u32) -> MessageData {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 25)
            .and_then(|d| d.and_hms_nano_opt(14, 7, 9, nanos))
            .unwrap()
            .and_utc();
        MessageData {
            id: crate::domain::MessageId(42),
            room_id: RoomId(7),
            seq: Seq(1234),
            sender_id: UserId(3),
            client_msg_id: client_msg_id.to_owned(),
            body: body.to_owned(),
            created_at: at,
            edited_at: (!deleted && nanos % 2 == 1).then_some(at),
            deleted_at: deleted.then_some(at),
            reply_to: (!deleted).then_some(crate::domain::MessageId(41)),
            reactions: if deleted {
                Vec::new()
            } else {
                vec![
                    crate::broker::ReactionData {
                        emoji: "👩🏽‍💻".into(),
                        user_ids: vec![UserId(3), UserId(4)],
                    },
                    crate::broker::ReactionData {
                        emoji: "👍".into(),
                        user_ids: vec![UserId(4)],
                    },
                ]
            },
            change_seq: if deleted { 9 } else { 0 },
            attachments: if deleted {
                Vec::new()
            } else {
                vec![
                    crate::broker::AttachmentData {
                        id: "0123456789abcdef0123456789abcdef".into(),
                        name: "\"quoted\" \\ \u{202e}gnp.exe".into(),
                        content_type: "application/pdf".into(),
                        size: 1,
                        sha256: "0f".repeat(32),
                        width: None,
                        height: None,
                        url: "/api/files/0123456789abcdef0123456789abcdef?e=9&s=a+b/c=".into(),
                        thumbnail_url: None,
                    },
                    crate::broker::AttachmentData {
                        id: "fedcba9876543210fedcba9876543210".into(),
                        name: "panorama 🏔️.png".into(),
                        content_type: "image/png".into(),
                        size: 25 * 1024 * 1024,
                        sha256: "e3".repeat(32),
                        width: Some(12000),
                        height: Some(400),
                        url: "/api/files/fedcba9876543210fedcba9876543210?e=9&s=z".into(),
                        thumbnail_url: Some(
                            "/api/files/fedcba9876543210fedcba9876543210/thumbnail?e=9&s=t".into(),
                        ),
                    },
                ]
            },
        }
    }

    #[test]
    fn pre_rendered_frames_match_the_serialized_ones() {
        let rows = [
            row("c-1", "hello", false, 0),
            row(
                "c\"2\\",
                "quote \" backslash \\ nl \n tab \t nul \u{0} del \u{7f}",
                false,
                123_456_789,
            ),
            row("é✓", "héllo 😀 </script> \u{1f}\u{8}\u{c}", false, 1_000),
            row("gone", "", true, 500_000_000),
        ];
        for r in rows {
            let wire = SharedMessage::new(r.clone());
            let expected = ServerFrame::Message {
                message: MessageDto::from(&r),
            }
            .to_json();
            assert_eq!(&*wire.message_frame(), expected);
            assert_eq!(&*message_frame(&r), expected);
            let ack = ServerFrame::Ack {
                client_msg_id: &r.client_msg_id,
                message: MessageDto::from(&r),
            }
            .to_json();
            assert_eq!(
                &*ack_from_message_frame(&message_frame(&r), &r.client_msg_id),
                ack
            );
            let updated = ServerFrame::MessageUpdated {
                message: MessageDto::from(&r),
            }
            .to_json();
            assert_eq!(&*wire.updated_frame(), updated);
            for cmid in [r.client_msg_id.as_str(), "other \"id\"\r"] {
                let expected = ServerFrame::Ack {
                    client_msg_id: cmid,
                    message: MessageDto::from(&r),
                }
                .to_json();
                assert_eq!(&*wire.ack_frame(cmid), expected);
            }
        }
    }

    /// The frame types serde knows, as the documentation reads them, are the enums' variants.
    #[test]
    fn frame_types_are_read_from_the_enums() {
        assert_eq!(frame_types::<ClientFrame>(), CLIENT_TYPES);
        let server = frame_types::<ServerFrame>();
        for t in [
            "ready",
            "ack",
            "message",
            "message_updated",
            "user_updated",
            "error",
        ] {
            assert!(server.contains(&t), "{t}: {server:?}");
        }
        assert_eq!(server.len(), 12, "{server:?}");
    }

    #[test]
    fn server_frames_have_a_type() {
        let f = ServerFrame::Error {
            code: "not_found",
            message: "room not found".into(),
            client_msg_id: None,
        };
        assert_eq!(
            f.to_json(),
            r#"{"type":"error","code":"not_found","message":"room not found"}"#
        );
        assert_eq!(ServerFrame::Pong.to_json(), r#"{"type":"pong"}"#);
        let user = UserDto {
            id: UserId(7),
            username: "~deleted-7".into(),
            display_name: "Deleted user".into(),
            created_at: "2026-11-25T12:00:00Z".parse().unwrap(),
        };
        assert_eq!(
            ServerFrame::UserUpdated { user }.to_json(),
            r#"{"type":"user_updated","user":{"id":7,"username":"~deleted-7","display_name":"Deleted user","created_at":"2026-11-25T12:00:00Z"}}"#
        );
    }
}
