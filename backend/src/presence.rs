//! Who is online on this server: a count of open connections per user. Sessions call
//! `connect`/`disconnect`; the contacts list reads `is_online`. Also which sign-in sessions hold
//! an open WebSocket here ([`OpenSessions`]), so that they can be marked seen.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::domain::{SessionId, UserId};

#[derive(Clone, Default)]
pub struct Presence {
    connections: Arc<RwLock<HashMap<UserId, usize>>>,
    /// The sum of `connections`' counts, changed under its write lock: read without the lock
    /// (and without a walk over every user) each time a user comes or goes on several instances.
    total: Arc<AtomicUsize>,
}

impl Presence {
    /// Registers a connection; true when it is the user's first (they just came online).
    pub fn connect(&self, user: UserId) -> bool {
        let Ok(mut map) = self.connections.write() else {
            return false;
        };
        let n = map.entry(user).or_insert(0);
        *n += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        *n == 1
    }

    /// Unregisters a connection; true when it was the user's last (they just went offline).
    pub fn disconnect(&self, user: UserId) -> bool {
        let Ok(mut map) = self.connections.write() else {
            return false;
        };
        let last = match map.get_mut(&user) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                map.remove(&user);
                true
            }
            None => return false,
        };
        self.total.fetch_sub(1, Ordering::Relaxed);
        last
    }

    pub fn is_online(&self, user: UserId) -> bool {
        self.connections
            .read()
            .map(|m| m.contains_key(&user))
            .unwrap_or(false)
    }

    /// Open connections in all.
    pub fn connection_count(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// The users with at least one open connection.
    pub fn online_user_ids(&self) -> Vec<UserId> {
        self.connections
            .read()
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Users with at least one open connection.
    pub fn online_users(&self) -> usize {
        self.connections.read().map(|m| m.len()).unwrap_or(0)
    }
}

/// One of a user's connections, reserved by `Presence::reserve`. Dropping it gives the slot
/// back, so no early return or panic leaves a connection counted (or a user shown online).
pub struct Slot {
    presence: Presence,
    user: UserId,
    first: bool,
    released: bool,
}

impl Presence {
    /// Counts a new connection of `user` unless they already hold `max` on this instance. The
    /// check and the count happen under one lock, so parallel upgrades cannot exceed `max`.
    pub fn reserve(&self, user: UserId, max: usize) -> Option<Slot> {
        let mut map = self
            .connections
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(user).or_insert(0);
        if *n >= max {
            if *n == 0 {
                map.remove(&user);
            }
            return None;
        }
        *n += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        let first = *n == 1;
        drop(map);
        Some(Slot {
            presence: self.clone(),
            user,
            first,
            released: false,
        })
    }
}

impl Slot {
    /// True when this is the user's only connection: they just came online.
    pub fn first(&self) -> bool {
        self.first
    }

    /// Gives the slot back; true when it was the user's last connection (they went offline).
    pub fn release(mut self) -> bool {
        self.released = true;
        self.presence.disconnect(self.user)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.released {
            self.presence.disconnect(self.user);
        }
    }
}

/// Open WebSockets per sign-in session on this instance: a socket counts as activity of the
/// session whose token opened it, and a periodic task marks these sessions seen
/// (`services::sessions::spawn_seen_upkeep`).
#[derive(Clone, Default)]
pub struct OpenSessions {
    sockets: Arc<Mutex<HashMap<SessionId, usize>>>,
}

impl OpenSessions {
    /// Counts a socket of `session` until the returned guard is dropped.
    pub fn open(&self, session: SessionId) -> SessionSocket {
        let mut map = self.sockets.lock().unwrap_or_else(PoisonError::into_inner);
        *map.entry(session).or_insert(0) += 1;
        SessionSocket {
            sessions: self.clone(),
            session,
        }
    }

    /// The sessions with at least one open socket.
    pub fn ids(&self) -> Vec<SessionId> {
        self.sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
    }
}

/// One open socket of a session, counted by [`OpenSessions::open`] until dropped.
pub struct SessionSocket {
    sessions: OpenSessions,
    session: SessionId,
}

impl Drop for SessionSocket {
    fn drop(&mut self) {
        let mut map = self
            .sessions
            .sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.session) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.session);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_counts_while_any_of_its_sockets_is_open() {
        let open = OpenSessions::default();
        let (a, b) = (SessionId(11), SessionId(12));
        let first = open.open(a);
        let second = open.open(a);
        let other = open.open(b);
        let mut ids = open.ids();
        ids.sort_unstable();
        assert_eq!(ids, vec![a, b]);
        drop(first);
        drop(other);
        assert_eq!(open.ids(), vec![a]);
        drop(second);
        assert!(open.ids().is_empty());
    }

    #[test]
    fn slots_are_capped_per_user_and_given_back_on_drop() {
        let p = Presence::default();
        let a = UserId(1);
        let slots: Vec<Slot> = (0..3).filter_map(|_| p.reserve(a, 3)).collect();
        assert_eq!(slots.len(), 3);
        assert!(slots[0].first() && !slots[1].first());
        assert!(p.reserve(a, 3).is_none());
        assert!(p.reserve(UserId(2), 3).is_some_and(|s| s.first()));
        let mut slots = slots.into_iter();
        drop(slots.next());
        assert_eq!(p.connection_count(), 2);
        let again = p.reserve(a, 3);
        assert!(again.is_some());
        assert!(!slots.next().is_some_and(Slot::release));
        assert!(!again.is_some_and(Slot::release));
        assert!(slots.next().is_some_and(Slot::release));
        assert!(!p.is_online(a));
        assert!(p.reserve(a, 0).is_none());
        assert!(!p.is_online(a));
        assert_eq!(p.connection_count(), 0);
        // Counted as the map is, whichever way in and out.
        assert!(p.connect(a) && !p.connect(a));
        assert_eq!(p.connection_count(), 2);
        assert!(!p.disconnect(a) && p.disconnect(a) && !p.disconnect(a));
        assert_eq!(p.connection_count(), 0);
    }
}
