//! Rate limits on sign-in: requests per client IP (register and login), and failed logins per
//! account. Both use governor's GCRA limiters; the per-account one is sized so that no rolling
//! hour ever sees more than the configured number of failures.

use std::collections::HashMap;
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

struct Inner {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    failures: DefaultKeyedRateLimiter<String>,
    /// Accounts that used up their failures, and until when.
    locked: Mutex<HashMap<String, Instant>>,
    clock: DefaultClock,
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
        // A burst of half the hourly allowance, refilled over the hour: at most the full
        // allowance in any window of an hour.
        let half = (limits.failed_logins_per_hour / 2).max(1);
        let failures = Quota::with_period(Duration::from_secs(3600) / half)
            .unwrap_or_else(|| Quota::per_hour(nonzero(half)))
            .allow_burst(nonzero(half));
        AuthRateLimits {
            inner: Arc::new(Inner {
                per_ip: RateLimiter::keyed(per_ip),
                failures: RateLimiter::keyed(failures),
                locked: Mutex::new(HashMap::new()),
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

    /// Refuses a login attempt on an account that is locked after too many failures.
    pub fn check_account(&self, username_key: &str) -> Result<(), ApiError> {
        let mut locked = self
            .inner
            .locked
            .lock()
            .map_err(|_| ApiError::internal("lock poisoned"))?;
        match locked.get(username_key) {
            Some(until) if *until > Instant::now() => Err(retry_after(*until - Instant::now())),
            Some(_) => {
                locked.remove(username_key);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Records a failed login on an account; locks it once its allowance is used up.
    pub fn record_failure(&self, username_key: &str) {
        let key = username_key.to_owned();
        if let Err(not_until) = self.inner.failures.check_key(&key) {
            let wait = not_until.wait_time_from(self.inner.clock.now());
            if let Ok(mut locked) = self.inner.locked.lock() {
                locked.insert(key, Instant::now() + wait);
            }
        }
    }

    /// Drops state that no longer limits anyone (called periodically).
    pub fn purge(&self) {
        self.inner.per_ip.retain_recent();
        self.inner.failures.retain_recent();
        if let Ok(mut locked) = self.inner.locked.lock() {
            let now = Instant::now();
            locked.retain(|_, until| *until > now);
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
        for _ in 0..5 {
            assert!(l.check_account("bob").is_ok());
            l.record_failure("bob");
        }
        assert!(l.check_account("bob").is_ok());
        l.record_failure("bob");
        assert!(matches!(
            l.check_account("bob"),
            Err(ApiError::RateLimited { .. })
        ));
        assert!(l.check_account("alice").is_ok());
    }
}
