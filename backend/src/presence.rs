//! Who is online on this server: a count of open connections per user. Sessions call
//! `connect`/`disconnect`; the contacts list reads `is_online`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::domain::UserId;

#[derive(Clone, Default)]
pub struct Presence {
    connections: Arc<RwLock<HashMap<UserId, usize>>>,
}

impl Presence {
    /// Registers a connection; true when it is the user's first (they just came online).
    pub fn connect(&self, user: UserId) -> bool {
        let Ok(mut map) = self.connections.write() else {
            return false;
        };
        let n = map.entry(user).or_insert(0);
        *n += 1;
        *n == 1
    }

    /// Unregisters a connection; true when it was the user's last (they just went offline).
    pub fn disconnect(&self, user: UserId) -> bool {
        let Ok(mut map) = self.connections.write() else {
            return false;
        };
        match map.get_mut(&user) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                map.remove(&user);
                true
            }
            None => false,
        }
    }

    pub fn is_online(&self, user: UserId) -> bool {
        self.connections
            .read()
            .map(|m| m.contains_key(&user))
            .unwrap_or(false)
    }

    /// Open connections in all.
    pub fn connection_count(&self) -> usize {
        self.connections
            .read()
            .map(|m| m.values().sum())
            .unwrap_or(0)
    }

    /// Users with at least one open connection.
    pub fn online_users(&self) -> usize {
        self.connections.read().map(|m| m.len()).unwrap_or(0)
    }
}
