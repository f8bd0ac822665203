//! The WebSocket frames of the wire contract (docs/websocket.md): what clients send, what the
//! server sends back. All frames are JSON text with a `type`.

use serde::{Deserialize, Serialize};

use crate::api::dto::{MessageDto, UserDto};
use crate::domain::{RoomId, Seq, UserId};

/// Client → server.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Auth {
        token: String,
    },
    Send {
        room_id: i64,
        client_msg_id: String,
        body: String,
    },
    Sync {
        room_id: i64,
        after: i64,
    },
    Typing {
        room_id: i64,
    },
    Read {
        room_id: i64,
        up_to: i64,
    },
    Ping,
}

pub const CLIENT_TYPES: [&str; 6] = ["auth", "send", "sync", "typing", "read", "ping"];

/// A room as the `ready` frame lists it.
#[derive(Debug, Serialize)]
pub struct RoomState {
    pub room_id: RoomId,
    pub last_seq: Seq,
    pub read_up_to: Seq,
}

/// Server → client.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Ready {
        user: UserDto,
        rooms: Vec<RoomState>,
    },
    Ack {
        client_msg_id: &'a str,
        message: MessageDto,
    },
    Message {
        message: MessageDto,
    },
    Synced {
        room_id: RoomId,
        last_seq: Seq,
    },
    Typing {
        room_id: RoomId,
        user_id: UserId,
    },
    Read {
        room_id: RoomId,
        user_id: UserId,
        up_to: Seq,
    },
    Presence {
        user_id: UserId,
        online: bool,
    },
    /// An administrator deleted a message; `message` is its tombstone.
    MessageDeleted {
        room_id: RoomId,
        seq: Seq,
        message: MessageDto,
    },
    Pong,
    Error {
        code: &'a str,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
}

impl ServerFrame<'_> {
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"frame encoding failed"}"#.to_owned()
        })
    }
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
    }
}
