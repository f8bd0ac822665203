//! Per-user limits on the heavy list endpoints (`GET /api/rooms`, `GET /api/contacts`,
//! `GET /api/contacts/search`, `GET /api/users/search`):
//!
//! - **Turns.** Each user's requests there take turns, at most `per_user` at once, with up to
//!   `queue_per_user` more waiting at most `wait` for a turn; any other gets 429 `rate_limited`
//!   with `Retry-After`. So one user's burst of list requests holds at most `per_user` database
//!   connections and threads.
//! - **Bytes.** What a user's list responses cost (reading the rows, rendering the JSON, writing
//!   it to the socket) grows with their size, so each user has a byte budget: a bucket of
//!   `burst_bytes` refilled at `bytes_per_sec`. A response is charged once rendered and may take
//!   the bucket below zero; while it is below zero the user's next list requests get 429 at once,
//!   with `Retry-After` saying when it is back above. Opening the app (one or two lists) never
//!   comes near it; a client asking for its 1,000 rooms in a loop gets about one list a second,
//!   so one user cannot keep a core busy for everyone else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

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
    /// Byte budgets of users who were charged and whose bucket is not yet full again (a full
    /// bucket is the same as none, so the map holds only recently active users).
    budgets: Mutex<HashMap<UserId, Budget>>,
}

/// A user's byte bucket: `level` bytes available (below zero: in debt) as of `at`.
struct Budget {
    level: f64,
    at: Instant,
}

impl Budget {
    fn refill(&mut self, now: Instant, limits: &HeavyLimits) {
        let gained = now.saturating_duration_since(self.at).as_secs_f64() * rate(limits);
        self.level = (self.level + gained).min(limits.burst_bytes as f64);
        self.at = now;
    }

    fn full(&self, limits: &HeavyLimits) -> bool {
        self.level >= limits.burst_bytes as f64
    }
}

fn rate(limits: &HeavyLimits) -> f64 {
    limits.bytes_per_sec.max(1) as f64
}

/// Budgets kept before the full ones are swept out.
const BUDGETS_BEFORE_SWEEP: usize = 4096;

struct Slot {
    turns: Arc<Semaphore>,
    admitted: usize,
}

/// A request's turn; dropping it lets the user's next request run.
pub struct Turn {
    _permit: OwnedSemaphorePermit,
    admission: Admission,
}

impl Turn {
    /// Charges the response's size to the user's byte budget.
    pub fn charge(&self, bytes: usize) {
        let inner = &self.admission.inner;
        let limits = &inner.limits;
        let now = Instant::now();
        let mut budgets = inner.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        if budgets.len() >= BUDGETS_BEFORE_SWEEP {
            budgets.retain(|_, b| {
                b.refill(now, limits);
                !b.full(limits)
            });
        }
        let budget = budgets.entry(self.admission.user).or_insert(Budget {
            level: limits.burst_bytes as f64,
            at: now,
        });
        budget.refill(now, limits);
        budget.level -= bytes as f64;
    }
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

/// 429 while `user`'s byte budget is in debt, with the seconds until it is not.
fn check_budget(inner: &Inner, user: UserId) -> ApiResult<()> {
    let limits = &inner.limits;
    let mut budgets = inner.budgets.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(budget) = budgets.get_mut(&user) else {
        return Ok(());
    };
    budget.refill(Instant::now(), limits);
    if budget.level < 0.0 {
        let secs = (-budget.level / rate(limits)).ceil();
        return Err(ApiError::RateLimited {
            retry_after_secs: (secs as u64).max(1),
        });
    }
    if budget.full(limits) {
        budgets.remove(&user);
    }
    Ok(())
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
                budgets: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Waits for `user`'s turn: 429 at once when the user's byte budget is in debt or the user
    /// already has as many requests running and waiting as allowed, or after the configured wait.
    pub async fn turn(&self, user: UserId) -> ApiResult<Turn> {
        check_budget(&self.inner, user)?;
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
                admission,
            }),
            // Timed out (or, never, closed): the admission is released by its drop.
            _ => Err(busy(limits)),
        }
    }

    /// 429 while `user`'s byte budget is in debt (also checked by [`HeavyLimiter::turn`]; this is
    /// for callers that can refuse before doing other work).
    pub fn check_budget(&self, user: UserId) -> ApiResult<()> {
        check_budget(&self.inner, user)
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
            ..HeavyLimits::default()
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
    async fn a_user_in_debt_waits_for_the_budget_to_refill() {
        let l = HeavyLimiter::new(&HeavyLimits {
            bytes_per_sec: 1_000,
            burst_bytes: 10_000,
            ..HeavyLimits::default()
        });
        // Within the burst: served. A response of 13,000 bytes takes the bucket 3,000 into debt.
        let t = l.turn(UserId(1)).await.unwrap();
        t.charge(6_000);
        drop(t);
        let t = l.turn(UserId(1)).await.unwrap();
        t.charge(7_000);
        drop(t);
        match l.turn(UserId(1)).await {
            Err(ApiError::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 3),
            other => panic!("expected 429, got {:?}", other.err()),
        }
        // Another user has a full bucket of their own.
        assert!(l.turn(UserId(2)).await.is_ok());
        // Once refilled past zero, served again.
        tokio::time::sleep(Duration::from_millis(3_100)).await;
        assert!(l.turn(UserId(1)).await.is_ok());
    }

    #[tokio::test]
    async fn full_budgets_are_forgotten() {
        let l = HeavyLimiter::new(&HeavyLimits {
            bytes_per_sec: 1_000_000,
            burst_bytes: 1_000,
            ..HeavyLimits::default()
        });
        let t = l.turn(UserId(1)).await.unwrap();
        t.charge(500);
        drop(t);
        assert_eq!(l.inner.budgets.lock().unwrap().len(), 1);
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(l.turn(UserId(1)).await.unwrap());
        assert_eq!(l.inner.budgets.lock().unwrap().len(), 0);
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
