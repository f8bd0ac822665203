//! Per-user concurrency on the heavy list endpoints (`GET /api/rooms`, `GET /api/contacts`,
//! `GET /api/contacts/search`, `GET /api/users/search`): each user's requests there take turns,
//! at most `per_user` at once, with up to `queue_per_user` more waiting at most `wait` for a
//! turn; any other gets 429 `rate_limited` with `Retry-After`. So one user's burst of list
//! requests holds at most `per_user` database connections and blocking threads, and everyone
//! else's requests and messages go on as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::HeavyLimits;
use crate::domain::UserId;
use crate::error::{ApiError, ApiResult};

/// The shared limiter (cheap to clone).
#[derive(Clone)]
pub struct HeavyLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    limits: HeavyLimits,
    /// Users with a request running or waiting: their turns and how many requests hold or wait
    /// for one. An entry goes when its last request ends, so the map holds only active users.
    users: Mutex<HashMap<UserId, Slot>>,
}

struct Slot {
    turns: Arc<Semaphore>,
    admitted: usize,
}

/// A request's turn; dropping it lets the user's next request run.
pub struct Turn {
    _permit: OwnedSemaphorePermit,
    _admission: Admission,
}

/// Counts a request as admitted (running or waiting) until dropped.
struct Admission {
    inner: Arc<Inner>,
    user: UserId,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut users = self
            .inner
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = users.get_mut(&self.user) {
            slot.admitted = slot.admitted.saturating_sub(1);
            if slot.admitted == 0 {
                users.remove(&self.user);
            }
        }
    }
}

fn busy(limits: &HeavyLimits) -> ApiError {
    ApiError::RateLimited {
        retry_after_secs: limits.wait.as_secs().max(1),
    }
}

impl HeavyLimiter {
    pub fn new(limits: &HeavyLimits) -> Self {
        HeavyLimiter {
            inner: Arc::new(Inner {
                limits: limits.clone(),
                users: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Waits for `user`'s turn: 429 at once when the user already has as many requests running
    /// and waiting as allowed, or after the configured wait.
    pub async fn turn(&self, user: UserId) -> ApiResult<Turn> {
        let limits = &self.inner.limits;
        let turns = {
            let mut users = self
                .inner
                .users
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let slot = users.entry(user).or_insert_with(|| Slot {
                turns: Arc::new(Semaphore::new(limits.per_user.max(1))),
                admitted: 0,
            });
            if slot.admitted >= limits.per_user.max(1) + limits.queue_per_user {
                return Err(busy(limits));
            }
            slot.admitted += 1;
            Arc::clone(&slot.turns)
        };
        let admission = Admission {
            inner: Arc::clone(&self.inner),
            user,
        };
        match tokio::time::timeout(limits.wait, turns.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Turn {
                _permit: permit,
                _admission: admission,
            }),
            // Timed out (or, never, closed): the admission is released by its drop.
            _ => Err(busy(limits)),
        }
    }

    /// Users with a request running or waiting (for tests and figures).
    pub fn active_users(&self) -> usize {
        self.inner
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limiter(queue: usize) -> HeavyLimiter {
        HeavyLimiter::new(&HeavyLimits {
            per_user: 1,
            queue_per_user: queue,
            wait: Duration::from_millis(200),
        })
    }

    #[tokio::test]
    async fn one_turn_per_user_then_a_bounded_queue() {
        let l = limiter(1);
        let first = l.turn(UserId(1)).await.unwrap();
        // Another user is not affected.
        let other = l.turn(UserId(2)).await.unwrap();
        // A second request of user 1 waits; a third is refused at once.
        let l2 = l.clone();
        let waiting = tokio::spawn(async move { l2.turn(UserId(1)).await.is_ok() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(matches!(
            l.turn(UserId(1)).await,
            Err(ApiError::RateLimited { .. })
        ));
        drop(first);
        assert!(waiting.await.unwrap(), "the waiting request runs next");
        drop(other);
        assert_eq!(l.active_users(), 0, "idle users are forgotten");
    }

    #[tokio::test]
    async fn waiting_too_long_is_429() {
        let l = limiter(4);
        let _first = l.turn(UserId(1)).await.unwrap();
        assert!(matches!(
            l.turn(UserId(1)).await,
            Err(ApiError::RateLimited {
                retry_after_secs: 1
            })
        ));
        assert_eq!(l.active_users(), 1);
    }
}
