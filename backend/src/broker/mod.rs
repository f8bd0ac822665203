//! Publish/subscribe between the services (which publish events after they commit) and the
//! WebSocket sessions (which subscribe by user). The `Broker` trait is the boundary: the
//! in-process hub implements it today, and a Redis-backed one can implement it for several
//! server instances without touching sessions or services.

pub mod memory;
pub mod redis_link;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::db::models::MessageRow;
use crate::domain::{RoomId, Seq, UserId};
use crate::ws::protocol::WireMessage;

pub use memory::MemoryBroker;

/// Identifies one WebSocket connection, unique within this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    pub fn next() -> ConnId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// What services publish and connections receive. Sessions turn these into wire frames.
#[derive(Debug, Clone)]
pub enum Event {
    /// A stored message, to both members of its room. The connection it was sent from (if
    /// any) turns it into that client's `ack`, so acks and messages share one ordered stream.
    /// Build it with `Event::message`: its JSON is rendered once for all connections.
    Message {
        message: Arc<WireMessage>,
        origin: Option<ConnId>,
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
    Revoked {
        jti: Arc<str>,
    },
    /// The recipient's account was deactivated: all their connections must close.
    Deactivated,
    /// The user's password was reset: every session signed in before it ends.
    SessionsEnded,
    /// An administrator deleted a message: the tombstone (empty body, `deleted_at` set), to
    /// both members of its room.
    MessageDeleted {
        message: Arc<MessageRow>,
    },
}

impl Event {
    /// The event for a stored message sent from `origin` (if it came over a WebSocket).
    pub fn message(row: Arc<MessageRow>, origin: Option<ConnId>) -> Event {
        Event::Message {
            message: Arc::new(WireMessage::new(row)),
            origin,
        }
    }
}

/// The queue a connection reads its events from.
pub type Outbox = mpsc::Sender<Event>;

/// The recipients of one event: up to two users (the members of a room), or any list.
#[derive(Debug, Clone)]
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
    /// Routes events for `user` to `outbox` until `unsubscribe` (or until the connection is
    /// dropped for not keeping up: then `outbox`'s receiver sees the channel close).
    fn subscribe(&self, user: UserId, conn: ConnId, outbox: Outbox);
    fn unsubscribe(&self, user: UserId, conn: ConnId);
    /// Delivers `event` to every connection of every recipient except `exclude`. Never blocks;
    /// events published from one thread reach each connection in the order they were published.
    fn publish(&self, to: Recipients, exclude: Option<ConnId>, event: Event);
    /// Open connections on this instance.
    fn connections(&self) -> usize;
}

pub type SharedBroker = Arc<dyn Broker>;
