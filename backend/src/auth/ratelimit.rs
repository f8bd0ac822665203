//! Rate limits on sign-in: requests per client IP (register and login), with governor's GCRA
//! limiter; and failed logins per account, as a sliding window: an account takes exactly the
//! configured number of failures in any rolling hour, and refuses every login (even a right one)
//! until the oldest of them is an hour old.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::AuthLimits;
use crate::error::ApiError;

#[derive(Clone)]
pub struct AuthRateLimits {
    inner: Arc<Inner>,
}

/// The window failed logins are counted over.
const FAILURE_WINDOW: Duration = Duration::from_secs(3600);

struct Inner {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    /// Failed logins allowed per account in any window.
    failure_allowance: usize,
    /// Per account: the times of its failed logins within the last window, oldest first.
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
    clock: DefaultClock,
}

/// Forgets the failures that have left the window.
fn prune(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= FAILURE_WINDOW)
    {
        times.pop_front();
    }
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN)
}

fn retry_after(wait: Duration) -> ApiError {
    ApiError::RateLimited {
        retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}

impl AuthRateLimits {
    pub fn new(limits: &AuthLimits) -> Self {
        let per_ip = Quota::per_minute(nonzero(limits.per_ip_per_minute));
        AuthRateLimits {
            inner: Arc::new(Inner {
                per_ip: RateLimiter::keyed(per_ip),
                failure_allowance: usize::try_from(limits.failed_logins_per_hour.max(1))
                    .unwrap_or(usize::MAX),
                failures: Mutex::new(HashMap::new()),
                clock: DefaultClock::default(),
            }),
        }
    }

    /// Counts one register or login request from `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.inner
            .per_ip
            .check_key(&ip)
            .map_err(|not_until| retry_after(not_until.wait_time_from(self.inner.clock.now())))
    }

    /// Refuses a login attempt on an account that has used up its failures for the last hour.
    pub fn check_account(&self, username_key: &str) -> Result<(), ApiError> {
        let mut failures = self
            .inner
            .failures
            .lock()
            .map_err(|_| ApiError::internal("lock poisoned"))?;
        let Some(times) = failures.get_mut(username_key) else {
            return Ok(());
        };
        let now = Instant::now();
        prune(times, now);
        match times.front() {
            Some(oldest) if times.len() >= self.inner.failure_allowance => Err(retry_after(
                (*oldest + FAILURE_WINDOW).saturating_duration_since(now),
            )),
            _ => Ok(()),
        }
    }

    /// Records a failed login on an account.
    pub fn record_failure(&self, username_key: &str) {
        if let Ok(mut failures) = self.inner.failures.lock() {
            let now = Instant::now();
            let times = failures.entry(username_key.to_owned()).or_default();
            prune(times, now);
            times.push_back(now);
        }
    }

    /// Drops state that no longer limits anyone (called periodically).
    pub fn purge(&self) {
        self.inner.per_ip.retain_recent();
        if let Ok(mut failures) = self.inner.failures.lock() {
            let now = Instant::now();
            failures.retain(|_, times| {
                prune(times, now);
                !times.is_empty()
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_burst_then_refused() {
        let l = AuthRateLimits::new(&AuthLimits {
            per_ip_per_minute: 3,
            failed_logins_per_hour: 100,
        });
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check_ip(ip).is_ok());
        }
        assert!(
            matches!(l.check_ip(ip), Err(ApiError::RateLimited { retry_after_secs }) if retry_after_secs >= 1)
        );
        assert!(l.check_ip("127.0.0.2".parse().unwrap()).is_ok());
    }

    #[test]
    fn account_locks_after_allowance() {
        let l = AuthRateLimits::new(&AuthLimits {
            per_ip_per_minute: 1000,
            failed_logins_per_hour: 10,
        });
        for _ in 0..10 {
            assert!(l.check_account("bob").is_ok());
            l.record_failure("bob");
        }
        assert!(matches!(
            l.check_account("bob"),
            Err(ApiError::RateLimited { retry_after_secs }) if retry_after_secs > 3500
        ));
        assert!(l.check_account("alice").is_ok());
        l.purge();
        assert!(
            l.check_account("bob").is_err(),
            "purge keeps failures within the hour"
        );
    }
}
