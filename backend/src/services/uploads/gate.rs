//! How many uploads may be in progress at once: per user, and on the whole instance. Past
//! either, the next upload is answered 429 at once (before its body is read), so a hostile
//! client can hold at most `per_user` temporary files, bodies and upload threads' jobs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::domain::UserId;
use crate::error::ApiError;

#[derive(Clone)]
pub struct Gate {
    inner: Arc<Inner>,
}

struct Inner {
    per_user: usize,
    total: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    /// Users with an upload in progress (an entry goes with its last upload).
    users: HashMap<UserId, usize>,
}

/// One admitted upload; dropping it lets the next one in.
pub struct Pass {
    inner: Arc<Inner>,
    user: UserId,
}

impl Gate {
    pub fn new(per_user: usize, total: usize) -> Gate {
        Gate {
            inner: Arc::new(Inner {
                per_user: per_user.max(1),
                total: total.max(1),
                open: Mutex::new(Open::default()),
            }),
        }
    }

    /// Admits an upload of `user`, or says 429 when that user, or the instance, already has as
    /// many in progress as allowed.
    pub fn enter(&self, user: UserId) -> Result<Pass, ApiError> {
        let mut open = self
            .inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mine = open.users.get(&user).copied().unwrap_or(0);
        if mine >= self.inner.per_user || open.total >= self.inner.total {
            return Err(ApiError::RateLimited {
                retry_after_secs: 1,
            });
        }
        open.total += 1;
        open.users.insert(user, mine + 1);
        Ok(Pass {
            inner: Arc::clone(&self.inner),
            user,
        })
    }

    /// Uploads in progress now.
    pub fn in_progress(&self) -> usize {
        self.inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        let mut open = self
            .inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.users.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.users.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_per_user_and_in_all() {
        let gate = Gate::new(2, 3);
        let (a, b) = (UserId(1), UserId(2));
        let a1 = gate.enter(a).unwrap();
        let _a2 = gate.enter(a).unwrap();
        assert!(gate.enter(a).is_err());
        let _b1 = gate.enter(b).unwrap();
        assert!(gate.enter(b).is_err(), "the instance is full");
        drop(a1);
        let _b2 = gate.enter(b).unwrap();
        assert_eq!(gate.in_progress(), 3);
    }
}
