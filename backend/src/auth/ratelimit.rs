//! Rate limits on sign-in:
//! - requests per client address and per network prefix (/24 for IPv4, /64 for IPv6), on
//!   register and login, with governor's GCRA limiter — checked before the request body is read
//!   (see `api::auth::sign_in_gate`);
//! - failed logins per account, as a sliding window: an account takes the configured number of
//!   failures in any rolling hour, then refuses logins until the oldest of them is an hour old.
//!   Failures that came with a valid device token count against that token only (OWASP "device
//!   cookies"), and a login with a valid device token is judged on that token's failures only,
//!   so guessing passwords cannot lock an account's owner out.
//!
//! Accounts are keyed by user id *and* their `login_throttle_epoch` (kept in the database): an
//! administrator's password reset moves the epoch on, which every instance sees at the next
//! login, so the account's earlier failures stop counting everywhere.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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
    per_prefix: DefaultKeyedRateLimiter<IpAddr>,
    /// Failed logins allowed per account (without a device token) in any window.
    account_allowance: usize,
    /// Failed logins allowed per device token in any window.
    device_allowance: usize,
    /// Per account or device token: the times of its failed logins within the last window,
    /// oldest first.
    failures: Mutex<HashMap<Throttle, VecDeque<Instant>>>,
    clock: DefaultClock,
}

/// What failed logins are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Throttle {
    Account(String),
    Device(String),
}

/// The network a client address belongs to for fair sharing: its /24 (IPv4, IPv4-mapped IPv6
/// included) or its /64 (IPv6).
pub fn prefix_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => prefix_of(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
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

fn allowance(n: u32) -> usize {
    usize::try_from(n.max(1)).unwrap_or(usize::MAX)
}

impl AuthRateLimits {
    pub fn new(limits: &AuthLimits) -> Self {
        AuthRateLimits {
            inner: Arc::new(Inner {
                per_ip: RateLimiter::keyed(Quota::per_minute(nonzero(limits.per_ip_per_minute))),
                per_prefix: RateLimiter::keyed(Quota::per_minute(nonzero(
                    limits.per_prefix_per_minute,
                ))),
                account_allowance: allowance(limits.failed_logins_per_hour),
                device_allowance: allowance(limits.failed_logins_per_device),
                failures: Mutex::new(HashMap::new()),
                clock: DefaultClock::default(),
            }),
        }
    }

    /// Counts one register or login request from `ip`, against its address and its prefix.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        let now = self.inner.clock.now();
        self.inner
            .per_ip
            .check_key(&ip)
            .map_err(|not_until| retry_after(not_until.wait_time_from(now)))?;
        self.inner
            .per_prefix
            .check_key(&prefix_of(ip))
            .map_err(|not_until| retry_after(not_until.wait_time_from(now)))
    }

    fn key(account: &str, device: Option<&str>) -> Throttle {
        match device {
            Some(d) => Throttle::Device(d.to_owned()),
            None => Throttle::Account(account.to_owned()),
        }
    }

    /// Refuses a login attempt that has used up its failures for the last hour: those of the
    /// device token when the login presents a valid one (`device`), else the account's.
    pub fn check_login(&self, account: &str, device: Option<&str>) -> Result<(), ApiError> {
        let key = Self::key(account, device);
        let allowance = match key {
            Throttle::Device(_) => self.inner.device_allowance,
            Throttle::Account(_) => self.inner.account_allowance,
        };
        let mut failures = self
            .inner
            .failures
            .lock()
            .map_err(|_| ApiError::internal("lock poisoned"))?;
        let Some(times) = failures.get_mut(&key) else {
            return Ok(());
        };
        let now = Instant::now();
        prune(times, now);
        match times.front() {
            Some(oldest) if times.len() >= allowance => Err(retry_after(
                (*oldest + FAILURE_WINDOW).saturating_duration_since(now),
            )),
            _ => Ok(()),
        }
    }

    /// Records a failed login, against the device token if it had a valid one, else against
    /// the account.
    pub fn record_failure(&self, account: &str, device: Option<&str>) {
        if let Ok(mut failures) = self.inner.failures.lock() {
            let now = Instant::now();
            let times = failures.entry(Self::key(account, device)).or_default();
            prune(times, now);
            times.push_back(now);
        }
    }

    /// A successful login with a device token forgets that token's failures.
    pub fn record_success(&self, device: Option<&str>) {
        if let (Some(d), Ok(mut failures)) = (device, self.inner.failures.lock()) {
            failures.remove(&Throttle::Device(d.to_owned()));
        }
    }

    /// Drops state that no longer limits anyone (called periodically).
    pub fn purge(&self) {
        self.inner.per_ip.retain_recent();
        self.inner.per_prefix.retain_recent();
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

    fn limits(per_ip: u32, per_prefix: u32, account: u32, device: u32) -> AuthLimits {
        AuthLimits {
            per_ip_per_minute: per_ip,
            failed_logins_per_hour: account,
            per_prefix_per_minute: per_prefix,
            failed_logins_per_device: device,
        }
    }

    #[test]
    fn per_ip_burst_then_refused() {
        let l = AuthRateLimits::new(&limits(3, 1000, 100, 10));
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
    fn per_prefix_counts_a_whole_slash_24_or_slash_64() {
        let l = AuthRateLimits::new(&limits(1000, 4, 100, 10));
        for i in 1..=4 {
            assert!(l.check_ip(format!("10.1.2.{i}").parse().unwrap()).is_ok());
        }
        assert!(l.check_ip("10.1.2.200".parse().unwrap()).is_err());
        assert!(l.check_ip("10.1.3.1".parse().unwrap()).is_ok());
        for i in 1..=4 {
            assert!(l
                .check_ip(format!("2001:db8::{i}").parse().unwrap())
                .is_ok());
        }
        assert!(l.check_ip("2001:db8::ffff:1".parse().unwrap()).is_err());
        assert!(l.check_ip("2001:db8:0:1::1".parse().unwrap()).is_ok());
    }

    #[test]
    fn prefixes() {
        let p = |s: &str| prefix_of(s.parse().unwrap()).to_string();
        assert_eq!(p("192.0.2.77"), "192.0.2.0");
        assert_eq!(p("::ffff:192.0.2.77"), "192.0.2.0");
        assert_eq!(p("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::");
    }

    #[test]
    fn account_locks_after_allowance() {
        let l = AuthRateLimits::new(&limits(1000, 1000, 10, 10));
        for _ in 0..10 {
            assert!(l.check_login("bob", None).is_ok());
            l.record_failure("bob", None);
        }
        assert!(matches!(
            l.check_login("bob", None),
            Err(ApiError::RateLimited { retry_after_secs }) if retry_after_secs > 3500
        ));
        assert!(l.check_login("alice", None).is_ok());
        l.purge();
        assert!(
            l.check_login("bob", None).is_err(),
            "purge keeps failures within the hour"
        );
    }

    #[test]
    fn a_device_token_is_judged_on_its_own_failures() {
        let l = AuthRateLimits::new(&limits(1000, 1000, 3, 2));
        for _ in 0..3 {
            l.record_failure("bob", None);
        }
        assert!(l.check_login("bob", None).is_err());
        // The owner's device is not locked by the attacker's failures...
        assert!(l.check_login("bob", Some("dev1")).is_ok());
        // ...and its own failures count against it only.
        l.record_failure("bob", Some("dev1"));
        l.record_failure("bob", Some("dev1"));
        assert!(l.check_login("bob", Some("dev1")).is_err());
        assert!(l.check_login("bob", Some("dev2")).is_ok());
        // Success forgets the token's failures.
        l.record_success(Some("dev1"));
        assert!(l.check_login("bob", Some("dev1")).is_ok());
        assert!(l.check_login("bob", None).is_err());
    }
}
