//! Publish/subscribe between the services (which publish events after they commit) and the
//! WebSocket sessions (which subscribe by user). The `Broker` trait is the boundary: the
//! in-process hub implements it today, and a Redis-backed one can implement it for several
//! server instances without touching sessions or services.
//!
//! Events are plain data defined here (nothing from the data layer or the WebSocket protocol),
//! serializable in the versioned envelope of [`wire`]: the form in which they cross instances.

pub mod memory;
pub mod redis;
pub mod redis_link;
pub mod wire;

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytestring::ByteString;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::sync::mpsc;

use crate::domain::{MessageId, RoomId, Seq, SessionId, UserId};

pub use memory::MemoryBroker;

/// Names one running server instance, chosen at random when it starts: connection ids are only
/// unique within one process, so an event's origin names the instance as well. Written as 16
/// hex digits, in logs and on the wire (a JSON number that large would lose digits in some
/// readers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InstanceId(pub u64);

impl InstanceId {
    pub fn random() -> InstanceId {
        InstanceId(rand::random())
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for InstanceId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for InstanceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let hex = String::deserialize(d)?;
        match u64::from_str_radix(&hex, 16) {
            Ok(n) if hex.len() == 16 => Ok(InstanceId(n)),
            _ => Err(serde::de::Error::custom(format!(
                "an instance id is 16 hex digits, not {hex:?}"
            ))),
        }
    }
}

/// Identifies one WebSocket connection, unique within this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnId(pub u64);

impl ConnId {
    pub fn next() -> ConnId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// One connection anywhere: the instance that holds it and its id there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    pub instance: InstanceId,
    pub conn: ConnId,
}

/// A stored message as clients see it: the contract's `message` object, field for field, and
/// serialized exactly as that object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageData {
    pub id: MessageId,
    pub room_id: RoomId,
    pub seq: Seq,
    pub sender_id: UserId,
    pub client_msg_id: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// When the sender last edited it.
    #[serde(default)]
    pub edited_at: Option<DateTime<Utc>>,
    /// Set on a tombstone (deleted by its sender or an administrator; `body` is then empty,
    /// `reactions` empty and `reply_to` null).
    #[serde(default)]
    pub deleted_at: Option<DateTime<Utc>>,
    /// The message of the same room this one answers.
    #[serde(default)]
    pub reply_to: Option<MessageId>,
    /// One entry per distinct emoji, in the order each was first added.
    #[serde(default)]
    pub reactions: Vec<ReactionData>,
    /// The room's change that last touched this message (0: never changed).
    #[serde(default)]
    pub change_seq: i64,
    /// The files it carries, in the order sent (`[]` once it is deleted).
    #[serde(default)]
    pub attachments: Vec<AttachmentData>,
}

/// A file a message carries: the contract's `attachment` object, with links signed by the
/// instance that built it (every instance shares the key, so they work on any of them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentData {
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub url: String,
    pub thumbnail_url: Option<String>,
}

/// A user as others see them: the contract's `user` object, field for field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserData {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub created_at: DateTime<Utc>,
}

/// The reactions with one emoji to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionData {
    pub emoji: String,
    /// In the order they reacted.
    pub user_ids: Vec<UserId>,
}

/// A message as events carry it, behind an `Arc` shared by every connection the event reaches.
/// Serialized as its [`MessageData`] alone.
#[derive(Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SharedMessage {
    data: MessageData,
    /// A cache: the bytes connections send for this message, rendered by the first one that
    /// needs them and shared by all (a `ByteString` clone only bumps a reference count), so a
    /// message is rendered once per instance however many connections receive it. Never
    /// serialized: each instance renders its own.
    #[serde(skip)]
    rendered: OnceLock<ByteString>,
    /// When this instance built it (right after the commit, or when it arrived from another
    /// instance): the start of `letschat_commit_to_delivery_seconds`.
    #[serde(skip, default = "Instant::now")]
    created: Instant,
}

impl SharedMessage {
    pub fn new(data: MessageData) -> SharedMessage {
        SharedMessage {
            data,
            rendered: OnceLock::new(),
            created: Instant::now(),
        }
    }

    /// Time since this instance built it (see `created`).
    pub fn since_published(&self) -> std::time::Duration {
        self.created.elapsed()
    }

    pub fn data(&self) -> &MessageData {
        &self.data
    }

    /// The cached rendering, made by `render` if this is the first call.
    pub fn rendered(&self, render: impl FnOnce(&MessageData) -> ByteString) -> &ByteString {
        self.rendered.get_or_init(|| render(&self.data))
    }
}

impl Deref for SharedMessage {
    type Target = MessageData;

    fn deref(&self) -> &MessageData {
        &self.data
    }
}

impl PartialEq for SharedMessage {
    fn eq(&self, other: &Self) -> bool {
        self.data == other.data
    }
}

/// What services publish and connections receive. Sessions turn these into wire frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A stored message, to both members of its room. The connection it was sent from (if
    /// any) turns it into that client's `ack`, so acks and messages share one ordered stream.
    Message {
        message: Arc<SharedMessage>,
        origin: Option<Origin>,
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
    /// The token with this id was revoked: connections authenticated with it must close.
    /// Published by instances of the version before sessions (their logout); this version
    /// publishes [`Event::SessionsRevoked`].
    Revoked {
        jti: Arc<str>,
    },
    /// The recipient's account was deactivated: all their connections must close.
    Deactivated,
    /// The user's password was reset: every session signed in before it ends.
    SessionsEnded,
    /// These sessions of the recipient ended (logout, revocation, a password change, account
    /// deletion): connections authenticated with their tokens must close.
    SessionsRevoked {
        ids: Arc<[SessionId]>,
    },
    /// A user's profile changed (display name, or the account was deleted): as it is now, to
    /// their contacts and their own connections.
    UserUpdated {
        user: UserData,
    },
    /// An administrator deleted a message: the tombstone (empty body, `deleted_at` set), to
    /// both members of its room (after its `MessageUpdated`).
    MessageDeleted {
        message: Arc<SharedMessage>,
    },
    /// A change to a message (edit, delete, reaction), as the message is after it; its
    /// `change_seq` is the change's number in the room. To every connection of both members.
    MessageUpdated {
        message: Arc<SharedMessage>,
    },
    /// Events may have been lost on their way between instances (the Redis subscriber was
    /// away, or a connection's periodic check is due): each connection compares its rooms'
    /// heads in the database with what it has delivered and replays the difference. Never
    /// crosses instances.
    Recheck,
}

/// What the link between instances has done since this instance started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterStats {
    pub connected: bool,
    /// Publications Redis took.
    pub published: u64,
    /// Publications dropped (Redis unreachable, or the queue to it full).
    pub dropped: u64,
    /// Publications received for this instance's users.
    pub received: u64,
    /// Subscriber reconnections after the first connection.
    pub reconnects: u64,
}

/// The queue a connection reads its events from.
pub type Outbox = mpsc::Sender<Event>;

/// The recipients of one event: up to two users (the members of a room), or any list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipients {
    Pair(UserId, UserId),
    One(UserId),
    Many(Arc<[UserId]>),
}

impl Recipients {
    pub fn for_each(&self, mut f: impl FnMut(UserId)) {
        match self {
            Recipients::Pair(a, b) => {
                f(*a);
                if a != b {
                    f(*b);
                }
            }
            Recipients::One(a) => f(*a),
            Recipients::Many(list) => list.iter().copied().for_each(f),
        }
    }
}

pub trait Broker: Send + Sync + 'static {
    /// This server instance.
    fn instance(&self) -> InstanceId;
    /// Routes events for `user` to `outbox`, a connection of this instance, until
    /// `unsubscribe` (or until the connection is dropped for not keeping up: then `outbox`'s
    /// receiver sees the channel close).
    fn subscribe(&self, user: UserId, conn: ConnId, outbox: Outbox);
    fn unsubscribe(&self, user: UserId, conn: ConnId);
    /// Delivers `event` to every connection of every recipient except `exclude`. Never blocks;
    /// events published from one thread reach each connection in the order they were published.
    fn publish(&self, to: Recipients, exclude: Option<Origin>, event: Event);
    /// Open connections on this instance.
    fn connections(&self) -> usize;
    /// With several instances: whether the link between them is up now. `None` for a single
    /// instance (nothing to link).
    fn cluster_status(&self) -> Option<bool> {
        None
    }
    /// With several instances: the link's counters since start (for the metrics endpoint).
    fn cluster_stats(&self) -> Option<ClusterStats> {
        None
    }
}

pub type SharedBroker = Arc<dyn Broker>;
