//! The WebSocket protocol as an AsyncAPI 3.0 document, served at `/api/asyncapi.json` (and
//! committed as `asyncapi.json`), and as a page for people at `/api/docs/websocket` ([`page`]).
//!
//! The payload of every frame is generated from the frame types of `ws::protocol` (their
//! `ToSchema`), its examples are built from those types too (server frames) or parsed by them
//! (client frames, in the tests), and the tests check that every `type` serde knows for
//! `ClientFrame` and `ServerFrame` is documented here: a new frame cannot go undocumented.
//! The document describes the server: its `receive` operations are the frames clients send,
//! its `send` operations the frames it sends.

pub mod page;

use serde_json::{json, Map, Value};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::api::dto::UserDto;
use crate::config::WsConfig;
use crate::openapi::samples;
use crate::ws::protocol::{ClientFrame, RoomState, ServerFrame};

/// Who sends a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client → server (the server's `receive` operations).
    ClientToServer,
    /// Server → client (the server's `send` operations).
    ServerToClient,
}

impl Direction {
    /// The prefix of the frame's ids in the document (`client.send`, `server.ack`).
    pub fn prefix(self) -> &'static str {
        match self {
            Direction::ClientToServer => "client",
            Direction::ServerToClient => "server",
        }
    }
}

/// One frame type, as documented.
#[derive(Debug)]
pub struct Frame {
    pub direction: Direction,
    /// Its `type`.
    pub kind: &'static str,
    pub title: &'static str,
    pub summary: &'static str,
    /// CommonMark.
    pub description: &'static str,
    /// The server frames that answer it (client frames only).
    pub replies: &'static [&'static str],
    /// (summary, payload).
    pub examples: Vec<(&'static str, Value)>,
}

impl Frame {
    pub fn id(&self) -> String {
        format!("{}.{}", self.direction.prefix(), self.kind)
    }
}

fn frame(v: ServerFrame<'_>) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// Every client frame.
pub fn client_frames() -> Vec<Frame> {
    let c = Direction::ClientToServer;
    vec![
        Frame {
            direction: c,
            kind: "auth",
            title: "Authenticate",
            summary: "The token, as the first frame (browsers).",
            description: "Browsers cannot set headers on a WebSocket: they send the `token` \
from `POST /api/auth/login` or `POST /api/auth/register` as the first frame, within \
{AUTH_TIMEOUT} s of opening the connection. Native clients may send \
`Authorization: Bearer <token>` with the upgrade request instead and skip this frame. \
The answer is `ready`; a missing, invalid, expired or revoked token (or any other frame first) \
gets an `error` with code `unauthorized` and close code 1008. On a connection that is already \
authenticated, `auth` is `validation_failed`.",
            replies: &["ready", "error"],
            examples: vec![(
                "Authenticate",
                json!({"type": "auth", "token": samples::auth_response().token}),
            )],
        },
        Frame {
            direction: c,
            kind: "send",
            title: "Send a message",
            summary: "Stored, then acknowledged with `ack`; resending is safe.",
            description: "`client_msg_id` is chosen by the client (a UUID is best; 1–64 \
printable ASCII characters) and makes sending idempotent: a `send` with a `client_msg_id` the \
server already stored for this sender and room is answered with the same `ack` and the same \
message, and nothing is stored or delivered again. `body` is 1–4,000 characters with at least \
one visible character (not only spaces, zero-width or format characters), stored trimmed; it \
may be `\"\"` when the message carries attachments. `reply_to` (optional) is a message of the \
same room that is not deleted. `attachments` (optional) are at most 10 distinct ids of the \
sender's own uploads (`POST /api/uploads`), in the order they should appear.\n\n\
The `ack` comes once the message is durable; the other member's connections and the sender's \
other connections get it as `message`. A refused `send` gets an `error` carrying its \
`client_msg_id`: `validation_failed` (naming the field), `not_found` (a room the user is not \
in), `forbidden` (the other member's account is deactivated), `rate_limited`.",
            replies: &["ack", "error"],
            examples: vec![
                (
                    "A reply with a photo",
                    json!({"type": "send", "room_id": samples::ROOM.0,
                        "client_msg_id": samples::message().client_msg_id,
                        "body": samples::message().body, "reply_to": 310,
                        "attachments": [samples::upload().id]}),
                ),
                (
                    "Plain text",
                    json!({"type": "send", "room_id": samples::ROOM.0,
                        "client_msg_id": "0b6f6a0e-5d1c-4b9e-8f0a-3c2d1e4f5a6b",
                        "body": "On my way 🚲"}),
                ),
            ],
        },
        Frame {
            direction: c,
            kind: "sync",
            title: "Catch up on a room",
            summary: "Replays every message after a seq (and every change after a change_seq).",
            description: "The server replays every message of the room with `seq > after`, in \
seq order, as `message` frames (the connection's own messages too); then, with \
`changes_after`, one `message_updated` for each message changed after that `change_seq`, as \
the message is now, in order of `change_seq`; then `synced`. A replay is sent a page at a time \
(at most {SYNC_PAGE_KIB} KiB of frames and 500 messages), and the connection keeps serving \
everything else meanwhile. Up to {MAX_PENDING_SYNCS} `sync` requests wait their turn, replayed \
in the order they came; one more gets an `error` with code `rate_limited`. A room the user is \
not in is `not_found`.",
            replies: &["message", "message_updated", "synced", "error"],
            examples: vec![
                (
                    "Messages after seq 40",
                    json!({"type": "sync", "room_id": samples::ROOM.0, "after": 40}),
                ),
                (
                    "Messages after seq 40 and changes after change 12",
                    json!({"type": "sync", "room_id": samples::ROOM.0, "after": 40,
                        "changes_after": 12}),
                ),
            ],
        },
        Frame {
            direction: c,
            kind: "typing",
            title: "Typing",
            summary: "Relayed to the other member as `typing`.",
            description: "Relayed to the other member's connections. At most one per room per \
second per connection is relayed; extra ones are dropped silently. No answer.",
            replies: &[],
            examples: vec![(
                "Typing in room 7",
                json!({"type": "typing", "room_id": samples::ROOM.0}),
            )],
        },
        Frame {
            direction: c,
            kind: "read",
            title: "Mark as read",
            summary: "Moves the user's read marker; relayed as `read`.",
            description: "Stores the user's read marker of the room. It only moves forward; an \
`up_to` past the newest message counts as the newest. The `read` frame goes to every \
connection of both members but this one, so the other member sees the receipt and the \
user's other devices clear their unread count. No answer.",
            replies: &[],
            examples: vec![(
                "Read up to seq 43",
                json!({"type": "read", "room_id": samples::ROOM.0, "up_to": samples::MESSAGE_SEQ.0}),
            )],
        },
        Frame {
            direction: c,
            kind: "ping",
            title: "Ping",
            summary: "Answered with `pong`.",
            description: "An application-level ping, answered with `pong`. (The server's own \
keep-alive uses WebSocket ping frames, which browsers and WebSocket libraries answer by \
themselves.)",
            replies: &["pong"],
            examples: vec![("Ping", json!({"type": "ping"}))],
        },
    ]
}

/// Every server frame.
pub fn server_frames() -> Vec<Frame> {
    let s = Direction::ServerToClient;
    let room_state = RoomState {
        room_id: samples::ROOM,
        last_seq: samples::MESSAGE_SEQ,
        read_up_to: crate::domain::Seq(40),
        peer_read_up_to: crate::domain::Seq(42),
        last_change_seq: 12,
    };
    let message = samples::message();
    vec![
        Frame {
            direction: s,
            kind: "ready",
            title: "Ready",
            summary: "Authenticated: the user and every room with its newest seq and read markers.",
            description: "The first frame after authentication. `rooms` lists every room of \
the user with its newest `seq`, the user's read marker (`read_up_to`), the other member's \
(`peer_read_up_to`, for read receipts after a reload or on a new device) and the room's newest \
change (`last_change_seq`), so a reconnecting client sees every gap in one round trip and \
sends a `sync` for each room it is behind in. Live messages at or below a room's `last_seq` \
here are not sent live: the client gets them by `sync`.",
            replies: &[],
            examples: vec![(
                "Alice is connected",
                frame(ServerFrame::Ready {
                    user: samples::alice(),
                    rooms: vec![room_state],
                }),
            )],
        },
        Frame {
            direction: s,
            kind: "ack",
            title: "Acknowledged",
            summary: "The sender's message is stored: the message as stored.",
            description: "Sent to the connection that sent the message, once the transaction \
that stored it has committed (durable: it survives a crash or a power loss). A resent \
`client_msg_id` gets the same `ack` with the same message. Each connection receives a room's \
`ack` and `message` frames in seq order.",
            replies: &[],
            examples: vec![(
                "Alice's reply is stored as seq 43",
                frame(ServerFrame::Ack {
                    client_msg_id: &message.client_msg_id,
                    message: message.clone(),
                }),
            )],
        },
        Frame {
            direction: s,
            kind: "message",
            title: "New message",
            summary: "A message in one of the user's rooms: live, or replayed by a `sync`.",
            description: "Goes to every connection of both members — the sender's other \
devices included; the sending connection gets the `ack` instead. Messages sent over REST \
(`POST /api/rooms/{room_id}/messages`) arrive as `message` on every connection. Replays \
(`sync`, and the server's own repairs after a lost link between instances) look the same.",
            replies: &[],
            examples: vec![(
                "Bob receives Alice's reply",
                frame(ServerFrame::Message {
                    message: message.clone(),
                }),
            )],
        },
        Frame {
            direction: s,
            kind: "message_updated",
            title: "Message changed",
            summary: "An edit, a delete or a reaction: the message as it is now.",
            description: "Goes to every connection of both members — the one that made the \
change included — for every change of a message: an edit, a delete (by its sender or an \
administrator), a reaction added or taken back. `message.change_seq` is the change's number: \
per room 1, 2, 3, … with no gaps, in commit order, independent of `seq`. Changes that change \
nothing (the same body again, a reaction already there, deleting a deleted message) send \
nothing. A deleted message is a tombstone: same `id` and `seq`, `body` `\"\"`, `reactions` \
and `attachments` `[]`, `reply_to` null, `deleted_at` set. A client keeps, for each message \
id, the version with the highest `change_seq`.",
            replies: &[],
            examples: vec![
                (
                    "Alice edited her message",
                    frame(ServerFrame::MessageUpdated {
                        message: samples::edited_message(),
                    }),
                ),
                (
                    "Alice deleted it",
                    frame(ServerFrame::MessageUpdated {
                        message: samples::deleted_message(),
                    }),
                ),
            ],
        },
        Frame {
            direction: s,
            kind: "message_deleted",
            title: "Message deleted by an administrator",
            summary:
                "Sent after its `message_updated`, for clients written before changes existed.",
            description: "When an administrator deletes a message (`DELETE \
/api/admin/messages/{message_id}`), both members get its `message_updated` and then this \
frame, with the tombstone. Clients that handle `message_updated` can ignore it.",
            replies: &[],
            examples: vec![(
                "An administrator deleted seq 43",
                frame(ServerFrame::MessageDeleted {
                    room_id: samples::ROOM,
                    seq: samples::MESSAGE_SEQ,
                    message: samples::deleted_message(),
                }),
            )],
        },
        Frame {
            direction: s,
            kind: "synced",
            title: "Caught up",
            summary: "A `sync` has replayed everything it had to.",
            description: "Follows the last frame a `sync` replayed. `last_seq` is the room's \
newest seq the client now has; `last_change_seq` is present when the `sync` had \
`changes_after`. Later messages arrive live.",
            replies: &[],
            examples: vec![
                (
                    "Room 7 is caught up",
                    frame(ServerFrame::Synced {
                        room_id: samples::ROOM,
                        last_seq: samples::MESSAGE_SEQ,
                        last_change_seq: None,
                    }),
                ),
                (
                    "Messages and changes caught up",
                    frame(ServerFrame::Synced {
                        room_id: samples::ROOM,
                        last_seq: samples::MESSAGE_SEQ,
                        last_change_seq: Some(13),
                    }),
                ),
            ],
        },
        Frame {
            direction: s,
            kind: "typing",
            title: "Typing",
            summary: "The other member is typing.",
            description: "Relayed from the other member's `typing` frame. Show it for a few \
seconds; it is not repeated more than once a second.",
            replies: &[],
            examples: vec![(
                "Bob is typing",
                frame(ServerFrame::Typing {
                    room_id: samples::ROOM,
                    user_id: samples::BOB,
                }),
            )],
        },
        Frame {
            direction: s,
            kind: "read",
            title: "Read receipt",
            summary: "A member's read marker moved.",
            description: "Goes to every connection of both members except the one that sent \
the `read` (or made the REST call): the other member sees the receipt, the reader's other \
devices clear their unread count.",
            replies: &[],
            examples: vec![(
                "Bob has read up to seq 43",
                frame(ServerFrame::Read {
                    room_id: samples::ROOM,
                    user_id: samples::BOB,
                    up_to: samples::MESSAGE_SEQ,
                }),
            )],
        },
        Frame {
            direction: s,
            kind: "presence",
            title: "Presence",
            summary: "A contact came online or went offline.",
            description: "Goes to the user's contacts (both directions) when the user's first \
connection opens (`online: true`) and when the last one closes (`online: false`).",
            replies: &[],
            examples: vec![(
                "Bob is online",
                frame(ServerFrame::Presence {
                    user_id: samples::BOB,
                    online: true,
                }),
            )],
        },
        Frame {
            direction: s,
            kind: "user_updated",
            title: "Profile changed",
            summary: "A user's display name changed, or their account was deleted.",
            description: "Goes to the connections of the user's contacts (both directions) and \
to the user's own connections, on every instance. `user` is the user as they are now; a \
client replaces what it shows for that `id`. A deleted account reads \
`\"username\": \"~deleted-<id>\"`, `\"display_name\": \"Deleted user\"`. A client that was \
not connected learns new names from `ready` (its own) and from the contacts and rooms it \
fetches after reconnecting.",
            replies: &[],
            examples: vec![
                (
                    "Bob changed his display name",
                    frame(ServerFrame::UserUpdated {
                        user: UserDto {
                            display_name: "Bob M.".into(),
                            ..samples::bob()
                        },
                    }),
                ),
                (
                    "Bob deleted his account",
                    frame(ServerFrame::UserUpdated {
                        user: UserDto {
                            username: format!("~deleted-{}", samples::BOB.0),
                            display_name: "Deleted user".into(),
                            ..samples::bob()
                        },
                    }),
                ),
            ],
        },
        Frame {
            direction: s,
            kind: "pong",
            title: "Pong",
            summary: "The answer to a `ping`.",
            description: "The answer to the connection's own `ping`. It is sent even while \
the connection is over its outgoing budget (see Limits), like `ack` and `error`.",
            replies: &[],
            examples: vec![("Pong", frame(ServerFrame::Pong))],
        },
        Frame {
            direction: s,
            kind: "error",
            title: "Error",
            summary: "A frame could not be handled; the connection stays open.",
            description: "`code` is one of the REST API's error codes: `invalid_json` (the \
frame is not JSON), `validation_failed` (an unknown `type`, a missing or malformed field), \
`not_found` (a room the user is not in — it never tells whether the room exists), \
`forbidden` (a `send` into a room whose other member's account is deactivated; nothing is \
stored), `unauthorized` (authentication failed, or the session ended: close code 1008 follows), \
`rate_limited` (one connection too many — close code 1008 follows —, or too many `sync` \
requests waiting), `internal`, `unavailable`. An error about a `send` carries its \
`client_msg_id`. Bad frames get an error frame, never a dropped connection.",
            replies: &[],
            examples: vec![
                (
                    "A room the user is not in",
                    frame(ServerFrame::Error {
                        code: "not_found",
                        message: "room not found".into(),
                        client_msg_id: Some(samples::message().client_msg_id),
                    }),
                ),
                (
                    "An unknown frame type",
                    frame(ServerFrame::Error {
                        code: "validation_failed",
                        message: format!(
                            "unknown frame type \"shout\"; expected one of {}",
                            crate::ws::protocol::CLIENT_TYPES.join(", ")
                        ),
                        client_msg_id: None,
                    }),
                ),
                (
                    "The session ended (close code 1008 follows)",
                    frame(ServerFrame::Error {
                        code: "unauthorized",
                        message: "this token has been revoked: its session has ended".into(),
                        client_msg_id: None,
                    }),
                ),
            ],
        },
    ]
}

/// Close codes the server closes connections with, and when.
pub const CLOSE_CODES: [(u16, &str, &str); 8] = [
    (1000, "Normal", "The connection sent nothing (not even a pong) for {IDLE_TIMEOUT} s; the server pings every {PING_INTERVAL} s."),
    (1001, "Away", "The server is shutting down."),
    (1002, "Protocol", "The client broke the WebSocket protocol."),
    (1003, "Unsupported", "A binary frame: every frame must be JSON text."),
    (1008, "Policy", "Not authenticated in time, a bad, expired or revoked token, the token's session ended (logout, ended from another device, a password change, the account deleted or deactivated), a flood (more than {MAX_FRAMES_PER_SEC} text, binary or ping frames per second sustained, bursts of twice that), or one connection too many. Do not reconnect with the same token: log in again (except after a flood)."),
    (1009, "Size", "A frame larger than {MAX_FRAME_KIB} KiB."),
    (1011, "Error", "An unexpected server error; reconnect and `sync`."),
    (1013, "Again", "The client does not read fast enough: it stayed over its outgoing budget for {OVER_BUDGET_GRACE} s, its queue of undelivered events ({QUEUE_CAPACITY}) filled up, or the socket refused writes for {WRITE_TIMEOUT} s. Reconnect and `sync`."),
];

const OVERVIEW: &str = "The WebSocket at `/api/ws` carries live messaging: sending with \
acknowledgement, delivery to every device, catch-up after a reconnect, typing, read receipts, \
presence and changes to messages. Objects (`user`, `message`, …) are the REST API's \
(`/api/docs/`); times are RFC 3339 UTC.

This document describes the server: its `receive` operations are the frames a client sends, \
its `send` operations the frames it sends to clients.

## Frames

Every frame is a JSON **text** frame with a `\"type\"`. A frame the server cannot handle (not \
JSON, an unknown `type`, a missing or malformed field) is answered with an `error` frame and \
the connection stays open. Binary frames close the connection (1003).

## Delivery guarantees

- **Durable before acknowledged.** A message is acknowledged (`ack`) only after the \
transaction that stored it has committed.
- **Exactly once.** Resending a `client_msg_id` the server already stored (for that sender and \
room) returns the same `ack` with the same message and is not delivered again. A client that \
did not get an `ack` resends with the same `client_msg_id`: it can never create a duplicate.
- **In order.** `seq` starts at 1 in each room and increases by 1 with no gaps. Each \
connection receives a room's `message` and `ack` frames in seq order, and the messages one \
connection sends get increasing seqs in the order it sent them.
- **Nothing lost.** Every stored message reaches every member: live while connected, and \
through `sync` after a reconnect. A live message already replayed by a `sync` on the same \
connection is not sent again.
- **Several instances.** With several server instances (PostgreSQL and Redis) the same holds \
whatever instance or Redis fails: a connection that is about to receive a message whose seq is \
not the next one replays the missing ones from the database first, and every \
{POSITION_CHECK} s it compares its rooms' heads with what it has sent. These repairs look like \
live `message` frames (or the connection's own `ack`s) in seq order, with no `synced` after them.

## Reconnecting

Treat any close (and any network error) the same way:

1. Wait, then reconnect: exponential backoff with full jitter (a random delay between 0 and \
`min(30 s, 0.5 s × 2^attempt)`), resetting `attempt` once a connection has stayed up for a \
while. After close code 1008 for an ended session, log in again instead.
2. On `ready`, for every room whose `last_seq` is above the last seq the client has, send \
`{\"type\":\"sync\",\"room_id\":…,\"after\":<last seq the client has>}`; the replay ends with \
`synced`.
3. Resend every message that was sent but not acknowledged, with its original `client_msg_id`.
4. Deduplicate by `(room_id, seq)`: a message can arrive both live and in a replay.
5. Changes: keep each room's last `change_seq` (from `message_updated`, `synced` and `ready`). \
For every room whose `ready.rooms[].last_change_seq` is above it, add \
`\"changes_after\":<last change seen>` to the room's `sync`. REST clients page the same with \
`GET /api/rooms/{room_id}/changes?after=`.

## Limits

- **Connections per user**: at most {MAX_CONNECTIONS_PER_USER} WebSockets per user on one \
server (`LETSCHAT_MAX_CONNECTIONS_PER_USER`). The next one gets an `error` with code \
`rate_limited` after authenticating, and close code 1008.
- **Frames**: at most {MAX_FRAME_KIB} KiB each (1009), {MAX_FRAMES_PER_SEC} per second \
sustained (1008).
- **Outgoing budget**: every frame the server sends counts against a budget of \
{OUTGOING_BUDGET_KIB} KiB until the client confirms reading it: after every 64 KiB the server \
sends a WebSocket ping, and the client's pong (sent by every WebSocket library by itself) \
confirms everything before it. Over the budget, the server sends that connection nothing but \
answers to its own frames (`ack`, `error`, `pong`) until it catches up; a connection over \
budget for {OVER_BUDGET_GRACE} s is closed with 1013.
- **Backpressure**: a connection stops reading new frames while 64 of its sends wait for their \
commit.

## A replay and live events together

While a room is being replayed, a live `message` of that room that the replay has not reached \
is not sent live: the replay reads it, and `synced` comes right after the last replayed \
message. A message the connection itself sent during the replay is acknowledged in its place, \
in seq order. The same holds for changes: each change arrives once and in `change_seq` order.";

const CONNECTION: &str = "Open `wss://<host>/api/ws` (`ws://` on plain HTTP). Authenticate \
in one of two ways:

- **Header** (native clients): send `Authorization: Bearer <token>` with the upgrade request; \
the server then sends `ready` at once.
- **First frame** (browsers, which cannot set headers on a WebSocket): send \
`{\"type\":\"auth\",\"token\":\"<token>\"}` within {AUTH_TIMEOUT} s.

The token is the `token` from `POST /api/auth/login` or `POST /api/auth/register`. It is never \
put in the URL: a `?token=` query parameter is ignored. A missing, invalid, expired or revoked \
token gets an `error` frame with code `unauthorized`, then close code 1008.

Whenever the token's session ends (logout, ended from another device, every other session \
ended, a password change, the account deleted or deactivated by an administrator), every \
connection opened with it, on every server instance, gets an `error` frame (`unauthorized`) \
and close code 1008 at once.

Browsers send an `Origin` header: the upgrade is refused with 403 unless it is the server's own \
origin or one listed in `LETSCHAT_ALLOWED_ORIGINS`. Clients that send no `Origin` (native \
clients) are allowed. A request to `/api/ws` without a usable WebSocket upgrade gets 426 \
`upgrade_required` with `Upgrade: websocket`, in the REST API's JSON error shape.

## Close codes

{CLOSE_CODES}";

/// The numbers the prose quotes, from the server's defaults.
fn fill(text: &str) -> String {
    let ws = WsConfig::default();
    let kib = |bytes: usize| (bytes / 1024).to_string();
    let secs = |d: std::time::Duration| d.as_secs().to_string();
    let close_codes = {
        let mut table = String::from("| code | when |\n|---|---|\n");
        for (code, _, when) in CLOSE_CODES {
            table.push_str(&format!("| {code} | {when} |\n"));
        }
        table
    };
    let values = [
        ("{CLOSE_CODES}", close_codes),
        ("{AUTH_TIMEOUT}", secs(ws.auth_timeout)),
        ("{IDLE_TIMEOUT}", secs(ws.idle_timeout)),
        ("{PING_INTERVAL}", secs(ws.ping_interval)),
        ("{WRITE_TIMEOUT}", secs(ws.write_timeout)),
        ("{OVER_BUDGET_GRACE}", secs(ws.over_budget_grace)),
        ("{POSITION_CHECK}", secs(ws.position_check)),
        ("{MAX_FRAMES_PER_SEC}", ws.max_frames_per_sec.to_string()),
        ("{QUEUE_CAPACITY}", format_thousands(ws.queue_capacity)),
        (
            "{MAX_CONNECTIONS_PER_USER}",
            ws.max_connections_per_user.to_string(),
        ),
        (
            "{OUTGOING_BUDGET_KIB}",
            format_thousands(ws.outgoing_budget / 1024),
        ),
        ("{SYNC_PAGE_KIB}", kib(ws.sync_page_bytes)),
        ("{MAX_PENDING_SYNCS}", ws.max_pending_syncs.to_string()),
        ("{MAX_FRAME_KIB}", kib(crate::ws::MAX_FRAME)),
    ];
    let mut text = text.to_owned();
    for (key, value) in values {
        text = text.replace(key, &value);
    }
    text
}

fn format_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The payload schema of each frame `type` of `T`, from its `ToSchema` (a `oneOf` of one
/// object per variant, told apart by `type`).
fn payload_schemas<T: PartialSchema>() -> Vec<(String, Value)> {
    let schema = serde_json::to_value(T::schema()).unwrap_or_default();
    schema["oneOf"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|variant| {
            let kind = variant["properties"]["type"]["enum"][0].as_str()?;
            Some((kind.to_owned(), variant.clone()))
        })
        .collect()
}

/// The objects the frames refer to (`User`, `Message`, …), with the documentation's examples.
fn object_schemas() -> Map<String, Value> {
    let mut found: Vec<(String, RefOr<Schema>)> = Vec::new();
    <ClientFrame as ToSchema>::schemas(&mut found);
    <ServerFrame as ToSchema>::schemas(&mut found);
    let examples: std::collections::HashMap<_, _> =
        samples::schema_examples().into_iter().collect();
    let mut objects = Map::new();
    for (name, schema) in found {
        let mut schema = serde_json::to_value(schema).unwrap_or_default();
        if let (Some(example), Some(object)) = (examples.get(name.as_str()), schema.as_object_mut())
        {
            object.insert("examples".into(), json!([example]));
        }
        objects.insert(name, schema);
    }
    objects
}

/// The whole document.
pub fn build() -> Value {
    let frames: Vec<Frame> = client_frames().into_iter().chain(server_frames()).collect();
    let mut schemas = object_schemas();
    let mut messages = Map::new();
    let mut channel_messages = Map::new();
    let mut operations = Map::new();
    let payloads: std::collections::HashMap<(Direction, String), Value> =
        payload_schemas::<ClientFrame>()
            .into_iter()
            .map(|(k, v)| ((Direction::ClientToServer, k), v))
            .chain(
                payload_schemas::<ServerFrame>()
                    .into_iter()
                    .map(|(k, v)| ((Direction::ServerToClient, k), v)),
            )
            .collect();
    let message_ref = |id: &str| json!({"$ref": format!("#/channels/chat/messages/{id}")});
    for f in &frames {
        let id = f.id();
        if let Some(payload) = payloads.get(&(f.direction, f.kind.to_owned())) {
            schemas.insert(id.clone(), payload.clone());
        }
        let examples: Vec<Value> = f
            .examples
            .iter()
            .map(|(summary, payload)| json!({"summary": summary, "payload": payload}))
            .collect();
        messages.insert(
            id.clone(),
            json!({
                "name": f.kind,
                "title": f.title,
                "summary": f.summary,
                "description": fill(f.description),
                "contentType": "application/json",
                "payload": {"$ref": format!("#/components/schemas/{id}")},
                "examples": examples,
            }),
        );
        channel_messages.insert(
            id.clone(),
            json!({"$ref": format!("#/components/messages/{id}")}),
        );
        let mut operation = json!({
            "action": match f.direction {
                Direction::ClientToServer => "receive",
                Direction::ServerToClient => "send",
            },
            "channel": {"$ref": "#/channels/chat"},
            "title": f.title,
            "summary": f.summary,
            "messages": [message_ref(&id)],
        });
        if !f.replies.is_empty() {
            operation["reply"] = json!({
                "channel": {"$ref": "#/channels/chat"},
                "messages": f.replies.iter()
                    .map(|r| message_ref(&format!("server.{r}")))
                    .collect::<Vec<_>>(),
            });
        }
        operations.insert(id, operation);
    }
    json!({
        "asyncapi": "3.0.0",
        "id": "urn:letschat:websocket",
        "info": {
            "title": "Let's Chat WebSocket protocol",
            "version": env!("CARGO_PKG_VERSION"),
            "description": fill(OVERVIEW),
            "license": {"name": "MIT"},
            "externalDocs": {
                "description": "The REST API (OpenAPI, Swagger UI)",
                "url": "/api/docs/",
            },
        },
        "defaultContentType": "application/json",
        "servers": {
            "public": {
                "host": "{host}",
                "protocol": "wss",
                "title": "Your server",
                "description": "The server's public address (behind TLS).",
                "variables": {
                    "host": {
                        "default": "chat.example.com",
                        "description": "Host name (and port) of the server",
                    },
                },
                "security": [{"$ref": "#/components/securitySchemes/bearer"}],
            },
            "local": {
                "host": "localhost:8080",
                "protocol": "ws",
                "title": "A server on this computer",
                "description": "`make run` or `letschat` with the default `LETSCHAT_BIND`.",
                "security": [{"$ref": "#/components/securitySchemes/bearer"}],
            },
        },
        "channels": {
            "chat": {
                "address": crate::ws::PATH,
                "title": "Live messaging",
                "summary": "One WebSocket per device; every frame JSON text with a `type`.",
                "description": fill(CONNECTION),
                "messages": channel_messages,
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "headers": {
                            "type": "object",
                            "properties": {
                                "Authorization": {
                                    "type": "string",
                                    "pattern": "^Bearer .+$",
                                    "description": "`Bearer <token>`; or send an `auth` frame first.",
                                },
                                "Origin": {
                                    "type": "string",
                                    "description": "Sent by browsers: the server's own origin or one in `LETSCHAT_ALLOWED_ORIGINS`.",
                                },
                            },
                        },
                        "bindingVersion": "0.1.0",
                    },
                },
            },
        },
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The `token` from `POST /api/auth/login` or `POST /api/auth/register`, as `Authorization: Bearer <token>` on the upgrade request, or in the first frame (`auth`).",
                },
            },
        },
    })
}

/// The document as served and committed: pretty JSON with a final newline.
pub fn json() -> String {
    let mut text = serde_json::to_string_pretty(&build()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::protocol::frame_types;

    #[test]
    fn every_frame_type_is_documented_once() {
        for (direction, known) in [
            (Direction::ClientToServer, frame_types::<ClientFrame>()),
            (Direction::ServerToClient, frame_types::<ServerFrame>()),
        ] {
            assert!(known.len() >= 6, "{known:?}");
            let frames = match direction {
                Direction::ClientToServer => client_frames(),
                Direction::ServerToClient => server_frames(),
            };
            let mut documented: Vec<&str> = frames.iter().map(|f| f.kind).collect();
            documented.sort_unstable();
            let mut known = known.to_vec();
            known.sort_unstable();
            assert_eq!(documented, known, "{direction:?}");
            for f in &frames {
                assert_eq!(f.direction, direction);
                assert!(!f.examples.is_empty(), "{}", f.kind);
                for (_, payload) in &f.examples {
                    assert_eq!(payload["type"], f.kind, "{payload}");
                }
            }
        }
    }

    #[test]
    fn client_examples_are_frames_the_server_reads() {
        for f in client_frames() {
            for (summary, payload) in &f.examples {
                let text = payload.to_string();
                assert!(
                    crate::ws::protocol::parse(&text).is_ok(),
                    "{summary}: {text}"
                );
            }
            for reply in f.replies {
                assert!(server_frames().iter().any(|s| s.kind == *reply), "{reply}");
            }
        }
    }

    #[test]
    fn server_examples_read_back_as_frames() {
        for f in server_frames() {
            for (summary, payload) in &f.examples {
                let text: &'static str = Box::leak(payload.to_string().into_boxed_str());
                let parsed: ServerFrame<'static> =
                    serde_json::from_str(text).unwrap_or_else(|e| panic!("{summary}: {e}: {text}"));
                assert_eq!(serde_json::to_value(parsed).unwrap(), *payload);
            }
        }
    }

    /// Every close code the session uses is in the table.
    #[test]
    fn close_codes_match_the_session() {
        let source = include_str!("ws/session.rs");
        let mut used: Vec<&str> = source
            .split("CloseCode::")
            .skip(1)
            .filter_map(|rest| rest.split(|c: char| !c.is_alphanumeric()).next())
            .filter(|name| !name.is_empty())
            .collect();
        used.sort_unstable();
        used.dedup();
        assert!(used.len() >= 6, "{used:?}");
        for name in used {
            assert!(
                CLOSE_CODES.iter().any(|(_, n, _)| *n == name),
                "CloseCode::{name} is not documented"
            );
        }
        for (code, name, _) in CLOSE_CODES {
            let close: u16 = match name {
                "Normal" => actix_ws::CloseCode::Normal,
                "Away" => actix_ws::CloseCode::Away,
                "Protocol" => actix_ws::CloseCode::Protocol,
                "Unsupported" => actix_ws::CloseCode::Unsupported,
                "Policy" => actix_ws::CloseCode::Policy,
                "Size" => actix_ws::CloseCode::Size,
                "Error" => actix_ws::CloseCode::Error,
                "Again" => actix_ws::CloseCode::Again,
                other => panic!("{other}"),
            }
            .into();
            assert_eq!(close, code, "{name}");
        }
    }

    #[test]
    fn the_prose_has_no_placeholder_left() {
        let doc = json();
        for key in [
            "{AUTH_",
            "{MAX_",
            "{CLOSE_",
            "{IDLE_",
            "{OUTGOING_",
            "{SYNC_",
        ] {
            assert!(!doc.contains(key), "{key}");
        }
        assert!(doc.contains("within 10 s"));
    }
}
