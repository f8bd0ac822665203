//! The per-user limit on message changes (edits, deletes, reactions): each user may make
//! `LETSCHAT_MAX_CHANGES_PER_SEC` a second on one instance, with a burst of three seconds' worth,
//! using governor's GCRA limiter keyed by user. A person reacting and editing by hand never
//! comes near it; a script toggling reactions in a loop gets 429 `rate_limited` with
//! `Retry-After`, before its change reaches the writer. An administrator's delete is not
//! counted.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::domain::UserId;
use crate::error::{ApiError, ApiResult};

/// Seconds of the rate one user may use at once.
const BURST_SECONDS: u32 = 3;

#[derive(Clone)]
pub struct ChangeLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<UserId>>,
    clock: DefaultClock,
}

impl ChangeLimiter {
    pub fn new(per_sec: u32) -> Self {
        let rate = NonZeroU32::new(per_sec.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(per_sec.max(1).saturating_mul(BURST_SECONDS))
            .unwrap_or(NonZeroU32::MIN);
        ChangeLimiter {
            limiter: Arc::new(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            )),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one change by `user`; past the limit, 429 with when to try again.
    pub fn check(&self, user: UserId) -> ApiResult<()> {
        self.limiter.check_key(&user).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
        })
    }

    /// Forgets users whose allowance is full again (called periodically).
    pub fn purge(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_three_seconds_worth_at_once_then_waits() {
        let limiter = ChangeLimiter::new(2);
        let (me, other) = (UserId(1), UserId(2));
        for _ in 0..6 {
            assert!(limiter.check(me).is_ok());
        }
        match limiter.check(me) {
            Err(ApiError::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
            other => panic!("expected 429, got {other:?}"),
        }
        // Another user's allowance is their own.
        assert!(limiter.check(other).is_ok());
    }
}
