//! Password hashing: bcrypt over a SHA-256 pre-hash, so every byte of a password counts (bcrypt
//! alone ignores what follows byte 72), run on a dedicated pool of low-priority threads whose
//! work is shared fairly between source addresses.
//!
//! - **Format.** New hashes are `sha256:` + bcrypt(base64(SHA-256(password))). Hashes without the
//!   mark are plain bcrypt from before; they still verify, and a successful login replaces them
//!   (see [`Verified::upgraded`]).
//! - **Fairness.** A flood of logins from many addresses must slow everyone a little, not stop
//!   everyone: jobs wait in one queue per network prefix (/24 for IPv4, /64 for IPv6), served
//!   round-robin; one prefix may hold at most `per_prefix` jobs (queued or running) and one
//!   address `per_address`, past which that source gets 429. When the whole queue is full, a new
//!   job evicts the newest job of the longest queue instead of being refused, so a prefix with
//!   little waiting is always admitted. Logins presenting a valid device token (and the server's
//!   own hashing for authenticated callers) wait in a priority queue served first.
//! - **Priority.** The threads put themselves in the `SCHED_IDLE` class (see
//!   [`crate::background`]), so bcrypt runs on CPU that messaging does not want and yields the
//!   core the moment a messaging thread wakes; each is pinned to one core, never the first, so
//!   one core is always free of hashing.
//! - **Timing.** A login for an unknown account verifies a real hash of the same cost and format
//!   (the dummy hash), so it takes as long as a wrong password.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use super::ratelimit::prefix_of;
use crate::error::{ApiError, ApiResult};

/// The mark of a pre-hashed bcrypt hash.
const PREHASHED: &str = "sha256:";

fn prehash(password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(password.as_bytes()))
}

/// A new hash of `password` (pre-hashed), for the server's pool and the command line alike.
pub fn hash_sync(password: &str, cost: u32) -> Result<String, bcrypt::BcryptError> {
    Ok(format!(
        "{PREHASHED}{}",
        bcrypt::hash(prehash(password), cost)?
    ))
}

/// The outcome of a login's password check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// A pre-hashed replacement for a matching legacy (plain bcrypt) hash. Not given for a
    /// password over 72 bytes: plain bcrypt matched only its first 72, so the tail may differ
    /// from the one the owner chose.
    pub upgraded: Option<String>,
}

/// Checks `password` against a stored hash of either format.
pub fn verify_sync(password: &str, stored: &str, cost: u32) -> Verified {
    if let Some(hash) = stored.strip_prefix(PREHASHED) {
        let ok = bcrypt::verify(prehash(password), hash).unwrap_or(false);
        return Verified { ok, upgraded: None };
    }
    let ok = bcrypt::verify(password, stored).unwrap_or(false);
    let upgraded = (ok && password.len() <= 72)
        .then(|| hash_sync(password, cost).ok())
        .flatten();
    Verified { ok, upgraded }
}

/// Who a hashing job is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// The server's own work for an authenticated caller (admin create/reset, password
    /// checks of signed-in users): the priority queue, no per-source caps.
    Internal,
    /// A login with a valid device token: the priority queue, with per-source caps.
    Trusted,
    /// Anyone else (register, logins without a device token).
    Public,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub addr: IpAddr,
    pub class: Class,
}

impl Source {
    /// A sign-in request from `addr`; `trusted` when it carries a valid device token.
    pub fn client(addr: IpAddr, trusted: bool) -> Self {
        Source {
            addr,
            class: if trusted {
                Class::Trusted
            } else {
                Class::Public
            },
        }
    }

    pub fn internal() -> Self {
        Source {
            addr: IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            class: Class::Internal,
        }
    }

    fn priority(&self) -> bool {
        self.class != Class::Public
    }
}

/// Limits of the fair queue.
#[derive(Debug, Clone, Copy)]
pub struct Fairness {
    /// Jobs waiting, in all, before new ones evict others (or are refused).
    pub capacity: usize,
    /// Jobs one /24 (IPv4) or /64 (IPv6) may have queued or running.
    pub per_prefix: usize,
    /// Jobs one address may have queued or running.
    pub per_address: usize,
}

/// What `FairQueue::push` did with a job.
#[derive(Debug)]
pub enum Admission<J> {
    /// Queued; `evicted` (if any) was dropped to make room.
    Queued { evicted: Option<J> },
    /// Over its source's share: not queued.
    Refused(J),
}

/// A job taken from the queue, with the ticket `done` needs to release its share.
#[derive(Debug)]
pub struct Taken<J> {
    pub job: J,
    pub ticket: Ticket,
}

#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    source: Source,
    prefix: IpAddr,
}

#[derive(Debug)]
struct Lane<J> {
    /// Per prefix, its jobs in arrival order.
    queues: HashMap<IpAddr, VecDeque<(Source, J)>>,
    /// Prefixes with waiting jobs, in the order they will be served.
    order: VecDeque<IpAddr>,
}

impl<J> Default for Lane<J> {
    fn default() -> Self {
        Lane {
            queues: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<J> Lane<J> {
    fn len_of(&self, prefix: &IpAddr) -> usize {
        self.queues.get(prefix).map_or(0, VecDeque::len)
    }

    fn push(&mut self, prefix: IpAddr, source: Source, job: J) {
        let queue = self.queues.entry(prefix).or_default();
        if queue.is_empty() {
            self.order.push_back(prefix);
        }
        queue.push_back((source, job));
    }

    /// Round-robin: the first prefix in line gives one job and goes to the back.
    fn pop(&mut self) -> Option<(IpAddr, Source, J)> {
        let prefix = self.order.pop_front()?;
        let queue = self.queues.get_mut(&prefix)?;
        let (source, job) = queue.pop_front()?;
        if queue.is_empty() {
            self.queues.remove(&prefix);
        } else {
            self.order.push_back(prefix);
        }
        Some((prefix, source, job))
    }

    /// Removes the newest job of the longest queue, if it is longer than `than`.
    fn evict_longest(&mut self, than: usize) -> Option<(IpAddr, Source, J)> {
        let (prefix, len) = self
            .queues
            .iter()
            .map(|(p, q)| (*p, q.len()))
            .max_by_key(|(_, len)| *len)?;
        if len <= than {
            return None;
        }
        let queue = self.queues.get_mut(&prefix)?;
        let (source, job) = queue.pop_back()?;
        if queue.is_empty() {
            self.queues.remove(&prefix);
            self.order.retain(|p| *p != prefix);
        }
        Some((prefix, source, job))
    }

    fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// The scheduler, without threads (unit-tested on its own).
#[derive(Debug)]
pub struct FairQueue<J> {
    limits: Fairness,
    priority: Lane<J>,
    public: Lane<J>,
    waiting: usize,
    /// Jobs queued or running, per (priority lane, prefix) and per (priority lane, address).
    per_prefix: HashMap<(bool, IpAddr), usize>,
    per_address: HashMap<(bool, IpAddr), usize>,
    picks: u64,
}

fn release(map: &mut HashMap<(bool, IpAddr), usize>, key: (bool, IpAddr)) {
    if let Some(n) = map.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&key);
        }
    }
}

impl<J> FairQueue<J> {
    pub fn new(limits: Fairness) -> Self {
        FairQueue {
            limits: Fairness {
                capacity: limits.capacity.max(1),
                per_prefix: limits.per_prefix.max(1),
                per_address: limits.per_address.max(1),
            },
            priority: Lane::default(),
            public: Lane::default(),
            waiting: 0,
            per_prefix: HashMap::new(),
            per_address: HashMap::new(),
            picks: 0,
        }
    }

    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Whether `source` already holds its share (its address's or its network's) of queued and
    /// running jobs, so that a job of its would be refused whatever the queue's length.
    pub fn over_share(&self, source: Source) -> bool {
        if source.class == Class::Internal {
            return false;
        }
        let lane_key = source.priority();
        let by_prefix = self.per_prefix.get(&(lane_key, prefix_of(source.addr)));
        let by_addr = self.per_address.get(&(lane_key, source.addr));
        by_prefix.copied().unwrap_or(0) >= self.limits.per_prefix
            || by_addr.copied().unwrap_or(0) >= self.limits.per_address
    }

    pub fn push(&mut self, source: Source, job: J) -> Admission<J> {
        let prefix = prefix_of(source.addr);
        let lane_key = source.priority();
        if self.over_share(source) {
            return Admission::Refused(job);
        }
        let mut evicted = None;
        if self.waiting >= self.limits.capacity {
            // Make room at the expense of the longest public queue: for a login with a valid
            // device token, any public job (its owner has proven this device before); for a
            // public job, only a queue longer than this source's own would be after it joined,
            // so whoever has the least waiting gets in and a lone job is never pushed out by
            // a flood of newcomers.
            let than = if lane_key {
                0
            } else {
                self.public.len_of(&prefix) + 1
            };
            match self.public.evict_longest(than) {
                Some((p, s, j)) => {
                    self.forget(Ticket {
                        source: s,
                        prefix: p,
                    });
                    self.waiting -= 1;
                    evicted = Some(j);
                }
                None => return Admission::Refused(job),
            }
        }
        *self.per_prefix.entry((lane_key, prefix)).or_default() += 1;
        *self.per_address.entry((lane_key, source.addr)).or_default() += 1;
        let lane = if lane_key {
            &mut self.priority
        } else {
            &mut self.public
        };
        lane.push(prefix, source, job);
        self.waiting += 1;
        Admission::Queued { evicted }
    }

    /// The next job: the priority lane first, but every fourth pick goes to the public lane
    /// when it has work, so device-token logins cannot starve everyone else. With
    /// `public_allowed` false (the hasher has used up its public share for now, see [`Pace`]),
    /// only the priority lane is served.
    pub fn pop(&mut self, public_allowed: bool) -> Option<Taken<J>> {
        let public_ready = public_allowed && !self.public.is_empty();
        if self.priority.is_empty() && !public_ready {
            return None;
        }
        self.picks = self.picks.wrapping_add(1);
        let public_turn = self.picks.is_multiple_of(4);
        let from_priority = !self.priority.is_empty() && (!public_ready || !public_turn);
        let (prefix, source, job) = if from_priority {
            self.priority.pop()?
        } else {
            self.public.pop()?
        };
        self.waiting -= 1;
        Some(Taken {
            job,
            ticket: Ticket { source, prefix },
        })
    }

    /// Whether public jobs are waiting.
    pub fn public_waiting(&self) -> bool {
        !self.public.is_empty()
    }

    /// Releases the share of a job taken with `pop` once it has run.
    pub fn done(&mut self, taken: Ticket) {
        self.forget(taken);
    }

    fn forget(&mut self, t: Ticket) {
        let lane_key = t.source.priority();
        release(&mut self.per_prefix, (lane_key, t.prefix));
        release(&mut self.per_address, (lane_key, t.source.addr));
    }
}

type Job = Box<dyn FnOnce(&Settings) -> Outcome + Send>;

struct Settings {
    cost: u32,
    /// A real hash of a random password at the configured cost and format: unknown users are
    /// verified against it, so a login takes as long whether or not the account exists.
    dummy_hash: String,
}

struct Shared {
    queue: Mutex<FairQueue<Job>>,
    ready: Condvar,
    closed: std::sync::atomic::AtomicBool,
}

/// Stops the threads when the last handle goes.
struct Pool {
    shared: Arc<Shared>,
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.shared.ready.notify_all();
    }
}

#[derive(Clone)]
pub struct PasswordHasher {
    pool: Arc<Pool>,
    max_wait: std::time::Duration,
}

/// A job's state, shared by the job and its caller.
const WAITING: u8 = 0;
const STARTED: u8 = 1;
const ABANDONED: u8 = 2;

/// How the hashing pool is set up.
#[derive(Debug, Clone, Copy)]
pub struct HasherConfig {
    pub cost: u32,
    /// Hashing threads.
    pub threads: usize,
    pub fairness: Fairness,
    /// A job that waited longer than this for a hasher is not run: its caller gets 429. Clients
    /// give up (and actix does not always drop a request whose client went away), so a flood's
    /// backlog must not keep the hashers busy long after the flood.
    pub max_wait: std::time::Duration,
    /// How much of each hasher's time public jobs may take (see [`PublicPace`]).
    pub public_pace: PublicPace,
}

fn rate_limited() -> ApiError {
    ApiError::RateLimited {
        retry_after_secs: 1,
    }
}

/// How much of a hasher's time public jobs (registrations, logins without a device token) may
/// take: `share` of it over the long run, with up to `burst` of hashing at once after a quiet
/// spell. A token bucket counted in seconds: each public job is charged the wall time it took,
/// so a hash slowed by messaging (which this idle-class thread yields to) costs more and the
/// hasher backs off further while messaging is busy; the debt is capped at `max_debt`, so
/// public hashing resumes soon after a spell in which the machine had no CPU to spare. While the
/// bucket is empty only the priority lane is served.
///
/// Why: a login flood from many addresses, each within its limits, still keeps the hashers busy,
/// and on a machine whose "cores" share one physical core no CPU priority keeps a busy hasher
/// from slowing messaging (measured in the `abuse` benchmark, see docs/performance.md). Paced,
/// the flood's logins wait their turn (and past `max_wait` are answered 429 without being
/// hashed) while signed-in users' own work and device-token logins go first as before.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PublicPace {
    /// Fraction of each hasher's time, 0 < share ≤ 1 (1: no pacing).
    pub share: f64,
    /// Seconds of public hashing one hasher may do back to back after resting.
    pub burst: std::time::Duration,
    /// The most a hasher may be in debt (it then waits at most `max_debt / share`).
    pub max_debt: std::time::Duration,
}

impl PublicPace {
    pub const UNPACED: PublicPace = PublicPace {
        share: 1.0,
        burst: std::time::Duration::ZERO,
        max_debt: std::time::Duration::ZERO,
    };
}

/// What a hasher's job turned out to be, for its pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A hash made, a password that matched, or a job skipped (its caller had gone).
    Done,
    /// A login's password that did not match (or an unknown user's).
    WrongPassword,
}

/// A public hash that turned out to be a wrong password is charged this many times its time:
/// a stranger's wrong passwords get `share / 2.5` of a hasher (10 % at the default 25 %), its
/// registrations and right passwords the whole share. A flood of wrong passwords then takes
/// little of the machine, and while none comes, new users and new devices are served at the
/// full share.
pub const WRONG_PASSWORD_WEIGHT: f64 = 2.5;

/// One hasher's bucket (see [`PublicPace`]).
#[derive(Debug)]
pub struct Pace {
    share: f64,
    burst: f64,
    max_debt: f64,
    /// Seconds of public hashing this hasher may start now (negative: in debt).
    credit: f64,
    at: std::time::Instant,
}

impl Pace {
    pub fn new(pace: PublicPace, now: std::time::Instant) -> Pace {
        let burst = pace.burst.as_secs_f64();
        Pace {
            share: pace.share.clamp(0.001, 1.0),
            burst,
            max_debt: pace.max_debt.as_secs_f64(),
            credit: burst,
            at: now,
        }
    }

    fn unpaced(&self) -> bool {
        self.share >= 1.0
    }

    /// Whether a public job may start at `now`.
    pub fn allows(&mut self, now: std::time::Instant) -> bool {
        if self.unpaced() {
            return true;
        }
        let earned = now.saturating_duration_since(self.at).as_secs_f64() * self.share;
        self.credit = (self.credit + earned).min(self.burst);
        self.at = now;
        self.credit > 0.0
    }

    /// Charges a public job that ran for `took`: `WRONG_PASSWORD_WEIGHT` times that when it
    /// turned out to be a wrong password.
    pub fn charge(&mut self, took: std::time::Duration, outcome: Outcome) {
        if !self.unpaced() {
            let weight = match outcome {
                Outcome::Done => 1.0,
                Outcome::WrongPassword => WRONG_PASSWORD_WEIGHT,
            };
            self.credit = (self.credit - took.as_secs_f64() * weight).max(-self.max_debt);
        }
    }

    /// How long until a public job may start (after `allows` said no).
    pub fn until_allowed(&self) -> std::time::Duration {
        let secs = (-self.credit).max(0.0) / self.share;
        std::time::Duration::from_secs_f64(secs) + std::time::Duration::from_millis(1)
    }
}

fn worker(index: usize, shared: Arc<Shared>, settings: Arc<Settings>, pace: PublicPace) {
    crate::background::lower_own_priority("password hashing");
    crate::background::pin_from_last_cpu(index);
    let mut pace = Pace::new(pace, std::time::Instant::now());
    loop {
        let taken = {
            let Ok(mut queue) = shared.queue.lock() else {
                return;
            };
            loop {
                let allowed = pace.allows(std::time::Instant::now());
                if let Some(t) = queue.pop(allowed) {
                    break t;
                }
                if shared.closed.load(std::sync::atomic::Ordering::Acquire) {
                    return;
                }
                queue = if !allowed && queue.public_waiting() {
                    // Public work waits for this hasher's share to come back; a priority job
                    // (or shutdown) wakes it sooner.
                    match shared.ready.wait_timeout(queue, pace.until_allowed()) {
                        Ok((q, _)) => q,
                        Err(_) => return,
                    }
                } else {
                    match shared.ready.wait(queue) {
                        Ok(q) => q,
                        Err(_) => return,
                    }
                };
            }
        };
        let ticket = taken.ticket;
        let started = std::time::Instant::now();
        let outcome = (taken.job)(&settings);
        if ticket.source.class == Class::Public {
            pace.charge(started.elapsed(), outcome);
        }
        if let Ok(mut queue) = shared.queue.lock() {
            queue.done(ticket);
        }
    }
}

impl PasswordHasher {
    /// Computes the dummy hash and starts the threads, so call it off the executor.
    pub fn new(config: HasherConfig) -> Result<Self, String> {
        let random: [u8; 16] = rand::random();
        let settings = Arc::new(Settings {
            cost: config.cost,
            dummy_hash: hash_sync(&hex::encode(random), config.cost).map_err(|e| e.to_string())?,
        });
        let shared = Arc::new(Shared {
            queue: Mutex::new(FairQueue::new(config.fairness)),
            ready: Condvar::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        for i in 0..config.threads.max(1) {
            let (shared, settings) = (Arc::clone(&shared), Arc::clone(&settings));
            let pace = config.public_pace;
            std::thread::Builder::new()
                .name(format!("password-{i}"))
                .spawn(move || worker(i, shared, settings, pace))
                .map_err(|e| format!("cannot start the password hashers: {e}"))?;
        }
        Ok(PasswordHasher {
            pool: Arc::new(Pool { shared }),
            max_wait: config.max_wait,
        })
    }

    /// Queues `f` for `source` and waits for its result; 429 when the source is over its share
    /// (or its job was evicted to make room for a source with less waiting, or waited longer
    /// than `max_wait` for a hasher). `outcome` tells the hasher's pace what the result was.
    async fn run<T, F>(&self, source: Source, f: F, outcome: fn(&T) -> Outcome) -> ApiResult<T>
    where
        F: FnOnce(&Settings) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, mut rx) = oneshot::channel();
        // Waiting, then either started by a hasher or abandoned by its caller, whichever comes
        // first: a job is never run for a caller that was already answered.
        let state = Arc::new(AtomicU8::new(WAITING));
        let job_state = Arc::clone(&state);
        let job: Job = Box::new(move |settings| {
            // The caller has gone (client disconnected) or stopped waiting: skip the work
            // (dropping `tx` answers 429 if anyone still listens).
            let started = job_state
                .compare_exchange(WAITING, STARTED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            if !started || tx.is_closed() {
                return Outcome::Done;
            }
            let result = f(settings);
            let what = outcome(&result);
            let _ = tx.send(result);
            what
        });
        let shared = &self.pool.shared;
        {
            let mut queue = shared
                .queue
                .lock()
                .map_err(|_| ApiError::internal("password queue poisoned"))?;
            match queue.push(source, job) {
                Admission::Refused(_) => return Err(rate_limited()),
                Admission::Queued { evicted } => drop(evicted),
            }
        }
        shared.ready.notify_one();
        match tokio::time::timeout(self.max_wait, &mut rx).await {
            Ok(answer) => answer.map_err(|_| rate_limited()),
            // Not started within `max_wait` (its client has most likely given up): 429 now,
            // and the job is skipped when its turn comes. One that has started is waited for.
            Err(_) => {
                if state
                    .compare_exchange(WAITING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    Err(rate_limited())
                } else {
                    rx.await.map_err(|_| rate_limited())
                }
            }
        }
    }

    /// Whether a job of `source` would be refused now because the source already holds its
    /// share: a login can then be refused before anything else is done for it.
    pub fn over_share(&self, source: Source) -> bool {
        self.pool
            .shared
            .queue
            .lock()
            .map(|q| q.over_share(source))
            .unwrap_or(false)
    }

    /// Hashes a password for the server's own use (an authenticated caller's request).
    pub async fn hash(&self, password: String) -> ApiResult<String> {
        self.hash_from(Source::internal(), password).await
    }

    /// Hashes a password on behalf of `source` (registration).
    pub async fn hash_from(&self, source: Source, password: String) -> ApiResult<String> {
        self.run(
            source,
            move |s| hash_sync(&password, s.cost),
            |_| Outcome::Done,
        )
        .await?
        .map_err(|e| ApiError::internal(format!("bcrypt: {e}")))
    }

    /// Verifies `password` for an authenticated caller (against the dummy hash when there is
    /// no account, so both cases cost the same; false then).
    pub async fn verify(&self, password: String, hash: Option<String>) -> ApiResult<bool> {
        Ok(self
            .verify_from(Source::internal(), password, hash)
            .await?
            .ok)
    }

    /// Verifies a login's password on behalf of `source`.
    pub async fn verify_from(
        &self,
        source: Source,
        password: String,
        hash: Option<String>,
    ) -> ApiResult<Verified> {
        self.run(
            source,
            move |s| {
                let known = hash.is_some();
                let target = hash.as_deref().unwrap_or(&s.dummy_hash);
                let mut v = verify_sync(&password, target, s.cost);
                v.ok &= known;
                v
            },
            |v| {
                if v.ok {
                    Outcome::Done
                } else {
                    Outcome::WrongPassword
                }
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn public(s: &str) -> Source {
        Source::client(ip(s), false)
    }

    fn pool(
        threads: usize,
        per_source: usize,
        max_wait: std::time::Duration,
        public_pace: PublicPace,
    ) -> PasswordHasher {
        PasswordHasher::new(HasherConfig {
            cost: 4,
            threads,
            fairness: Fairness {
                capacity: 8,
                per_prefix: per_source,
                per_address: per_source,
            },
            max_wait,
            public_pace,
        })
        .unwrap()
    }

    fn queue(capacity: usize, per_prefix: usize, per_address: usize) -> FairQueue<u32> {
        FairQueue::new(Fairness {
            capacity,
            per_prefix,
            per_address,
        })
    }

    /// Pops everything, releasing each job at once; the jobs in serving order.
    fn drain(q: &mut FairQueue<u32>) -> Vec<u32> {
        let mut out = Vec::new();
        while let Some(t) = q.pop(true) {
            out.push(t.job);
            q.done(t.ticket);
        }
        out
    }

    #[test]
    fn a_source_over_its_share_is_known_before_it_queues() {
        let mut q = queue(100, 3, 2);
        assert!(!q.over_share(public("10.0.0.1")));
        q.push(public("10.0.0.1"), 1);
        q.push(public("10.0.0.1"), 2);
        // The address has its two; its network has room for one more, from another address.
        assert!(q.over_share(public("10.0.0.1")));
        assert!(!q.over_share(public("10.0.0.2")));
        q.push(public("10.0.0.2"), 3);
        assert!(q.over_share(public("10.0.0.3")), "the /24 holds its three");
        // Another network, the priority lane and the server's own work are not affected.
        assert!(!q.over_share(public("10.0.1.1")));
        assert!(!q.over_share(Source::client(ip("10.0.0.1"), true)));
        assert!(!q.over_share(Source::internal()));
        // Once a job is done, its address is under its share again.
        let t = q.pop(true).unwrap();
        q.done(t.ticket);
        assert!(!q.over_share(public("10.0.0.1")));
    }

    #[test]
    fn prefixes_are_served_round_robin() {
        let mut q = queue(100, 10, 10);
        // Prefix A queues three jobs from three addresses, then B and C one each.
        for (i, a) in ["10.0.0.1", "10.0.0.2", "10.0.0.3"].iter().enumerate() {
            assert!(matches!(
                q.push(public(a), i as u32),
                Admission::Queued { .. }
            ));
        }
        assert!(matches!(
            q.push(public("10.0.1.1"), 10),
            Admission::Queued { .. }
        ));
        assert!(matches!(
            q.push(public("2001:db8::1"), 20),
            Admission::Queued { .. }
        ));
        assert_eq!(drain(&mut q), vec![0, 10, 20, 1, 2]);
    }

    #[test]
    fn a_prefix_and_an_address_get_only_their_share() {
        let mut q = queue(100, 3, 2);
        assert!(matches!(
            q.push(public("10.0.0.1"), 1),
            Admission::Queued { .. }
        ));
        assert!(matches!(
            q.push(public("10.0.0.1"), 2),
            Admission::Queued { .. }
        ));
        // The address is at its cap; another address of the /24 is not...
        assert!(matches!(
            q.push(public("10.0.0.1"), 3),
            Admission::Refused(3)
        ));
        assert!(matches!(
            q.push(public("10.0.0.9"), 4),
            Admission::Queued { .. }
        ));
        // ...until the /24 is at its cap.
        assert!(matches!(
            q.push(public("10.0.0.77"), 5),
            Admission::Refused(5)
        ));
        // An IPv6 /64 is one prefix too.
        assert!(matches!(
            q.push(public("2001:db8:0:1::1"), 6),
            Admission::Queued { .. }
        ));
        assert!(matches!(
            q.push(public("2001:db8:0:1::2"), 7),
            Admission::Queued { .. }
        ));
        assert!(matches!(
            q.push(public("2001:db8:0:1::3"), 8),
            Admission::Queued { .. }
        ));
        assert!(matches!(
            q.push(public("2001:db8:0:1::4"), 9),
            Admission::Refused(9)
        ));
        assert!(matches!(
            q.push(public("2001:db8:0:2::1"), 10),
            Admission::Queued { .. }
        ));
        // A running job keeps its share until it is done.
        let t = q.pop(true).unwrap();
        assert_eq!(t.job, 1);
        assert!(matches!(
            q.push(public("10.0.0.5"), 11),
            Admission::Refused(11)
        ));
        q.done(t.ticket);
        assert!(matches!(
            q.push(public("10.0.0.5"), 12),
            Admission::Queued { .. }
        ));
    }

    #[test]
    fn a_full_queue_makes_room_for_a_newcomer_at_the_longest_queues_expense() {
        let mut q = queue(6, 4, 4);
        // Two flooding prefixes fill the queue.
        for i in 0..4 {
            assert!(matches!(
                q.push(public("10.0.0.1"), i),
                Admission::Queued { .. }
            ));
        }
        for i in 10..12 {
            assert!(matches!(
                q.push(public("10.0.1.1"), i),
                Admission::Queued { .. }
            ));
        }
        assert_eq!(q.waiting(), 6);
        // A newcomer gets in: the newest job of the longest queue goes.
        match q.push(public("192.168.7.7"), 99) {
            Admission::Queued { evicted } => assert_eq!(evicted, Some(3)),
            other => panic!("{other:?}"),
        }
        assert_eq!(q.waiting(), 6);
        // One whose own queue is as long as the longest is refused instead.
        assert!(matches!(
            q.push(public("10.0.0.2"), 5),
            Admission::Refused(5)
        ));
        // The newcomer is served in the first round.
        let order = drain(&mut q);
        assert_eq!(&order[..3], &[0, 10, 99]);
        assert_eq!(order.len(), 6);
    }

    #[test]
    fn device_token_logins_go_first_but_do_not_starve_the_rest() {
        let mut q = queue(100, 100, 100);
        for i in 0..3 {
            assert!(matches!(
                q.push(public("10.0.0.1"), i),
                Admission::Queued { .. }
            ));
        }
        for i in 10..16 {
            let s = Source::client(ip("10.0.5.5"), true);
            assert!(matches!(q.push(s, i), Admission::Queued { .. }));
        }
        assert!(matches!(
            q.push(Source::internal(), 50),
            Admission::Queued { .. }
        ));
        let order = drain(&mut q);
        assert_eq!(order, vec![10, 50, 11, 0, 12, 13, 14, 1, 15, 2]);
    }

    #[test]
    fn a_device_token_login_gets_in_when_a_flood_from_many_prefixes_fills_the_queue() {
        let mut q = queue(4, 2, 2);
        // Four flooding prefixes with one job each: no public queue is longer than one.
        for i in 0..4u32 {
            assert!(matches!(
                q.push(public(&format!("10.0.{i}.1")), i),
                Admission::Queued { .. }
            ));
        }
        // Another public newcomer is refused (it would only swap places with a lone job)...
        assert!(matches!(
            q.push(public("10.0.9.1"), 9),
            Admission::Refused(9)
        ));
        // ...but a login with a valid device token takes a public job's place and goes first.
        match q.push(Source::client(ip("192.168.7.7"), true), 99) {
            Admission::Queued { evicted } => assert!(evicted.is_some()),
            other => panic!("{other:?}"),
        }
        assert_eq!(q.waiting(), 4);
        assert_eq!(drain(&mut q)[0], 99);
    }

    #[test]
    fn internal_work_has_no_per_source_cap() {
        let mut q = queue(100, 1, 1);
        for i in 0..5 {
            assert!(matches!(
                q.push(Source::internal(), i),
                Admission::Queued { .. }
            ));
        }
    }

    #[test]
    fn every_byte_counts_and_legacy_hashes_still_verify() {
        let a = format!("{}{}", "x".repeat(72), "tail-one");
        let b = format!("{}{}", "x".repeat(72), "tail-two");
        let h = hash_sync(&a, 4).unwrap();
        assert!(h.starts_with(PREHASHED));
        assert!(verify_sync(&a, &h, 4).ok);
        assert!(!verify_sync(&b, &h, 4).ok);
        // A plain bcrypt hash from before verifies, and is upgraded when the password fits.
        let legacy = bcrypt::hash("old-password", 4).unwrap();
        let v = verify_sync("old-password", &legacy, 4);
        assert!(v.ok);
        let new = v.upgraded.expect("upgraded");
        assert!(verify_sync("old-password", &new, 4).ok);
        assert!(!verify_sync("old-passwore", &legacy, 4).ok);
        // Over 72 bytes plain bcrypt cannot tell the tails apart: no upgrade then.
        let legacy_long = bcrypt::hash(&a, 4).unwrap();
        let v = verify_sync(&b, &legacy_long, 4);
        assert!(v.ok && v.upgraded.is_none());
    }

    #[tokio::test]
    async fn the_pool_hashes_and_verifies() {
        let h = pool(
            2,
            2,
            std::time::Duration::from_secs(10),
            PublicPace::UNPACED,
        );
        let hash = h.hash("amber-tortoise".into()).await.unwrap();
        assert!(h
            .verify("amber-tortoise".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!h.verify("amber-tortoisf".into(), Some(hash)).await.unwrap());
        let v = h
            .verify_from(public("10.1.1.1"), "x".into(), None)
            .await
            .unwrap();
        assert!(!v.ok);
    }

    #[tokio::test]
    async fn a_job_that_waited_too_long_is_not_run() {
        let h = pool(
            1,
            4,
            std::time::Duration::from_millis(100),
            PublicPace::UNPACED,
        );
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        // The one hasher is busy for 400 ms; the job queued behind it waits past its 100 ms.
        let busy = {
            let h = h.clone();
            tokio::spawn(async move {
                h.run(
                    public("10.1.1.1"),
                    |_| std::thread::sleep(std::time::Duration::from_millis(400)),
                    |_| Outcome::Done,
                )
                .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let counter = Arc::clone(&ran);
        let late = h
            .run(
                public("10.2.2.2"),
                move |_| counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
                |_| Outcome::Done,
            )
            .await;
        assert!(
            matches!(late, Err(ApiError::RateLimited { .. })),
            "{late:?}"
        );
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert!(busy.await.unwrap().is_ok());
        // With the hasher free, the same source's next job runs.
        let counter = Arc::clone(&ran);
        let next = h
            .run(
                public("10.2.2.2"),
                move |_| counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
                |_| Outcome::Done,
            )
            .await;
        assert_eq!(next.unwrap(), 0);
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn the_public_pace_gives_a_burst_then_its_share() {
        use std::time::{Duration, Instant};
        let t0 = Instant::now();
        let mut pace = Pace::new(
            PublicPace {
                share: 0.25,
                burst: Duration::from_secs(1),
                max_debt: Duration::from_secs(2),
            },
            t0,
        );
        // A second of hashing at once after a quiet spell...
        assert!(pace.allows(t0));
        pace.charge(Duration::from_millis(600), Outcome::Done);
        assert!(pace.allows(t0));
        pace.charge(Duration::from_millis(600), Outcome::Done);
        // ... then in debt by 0.2 s: at a quarter share, 0.8 s until the next public job.
        assert!(!pace.allows(t0));
        let wait = pace.until_allowed();
        assert!(
            wait >= Duration::from_millis(800) && wait < Duration::from_millis(810),
            "{wait:?}"
        );
        assert!(!pace.allows(t0 + Duration::from_millis(790)));
        assert!(pace.allows(t0 + Duration::from_millis(801)));
        // Rest does not bank more than the burst.
        let later = t0 + Duration::from_secs(3600);
        assert!(pace.allows(later));
        pace.charge(Duration::from_millis(1001), Outcome::Done);
        assert!(!pace.allows(later));
        // However long a hash took (a machine with no CPU to spare), the wait is capped: 2 s of
        // debt at a quarter share, 8 s.
        pace.charge(Duration::from_secs(600), Outcome::WrongPassword);
        assert!(!pace.allows(later));
        let wait = pace.until_allowed();
        assert!(wait <= Duration::from_millis(8010), "{wait:?}");
        assert!(pace.allows(later + Duration::from_millis(8001)));
        // Unpaced: always allowed, whatever it ran.
        let mut free = Pace::new(PublicPace::UNPACED, t0);
        free.charge(Duration::from_secs(100), Outcome::WrongPassword);
        assert!(free.allows(t0));
    }

    #[test]
    fn wrong_passwords_get_a_smaller_share_than_registrations_and_right_passwords() {
        use std::time::{Duration, Instant};
        let t0 = Instant::now();
        // Quarter-second hashes, each started as soon as the pace allows, for 100 s at a
        // quarter share after a one-second burst: the whole share when they succeed (4 + 100),
        // 10 % when they are wrong passwords (a 1 s burst ends after two of them, then 40).
        for (outcome, expected) in [(Outcome::Done, 104), (Outcome::WrongPassword, 42)] {
            let mut pace = Pace::new(
                PublicPace {
                    share: 0.25,
                    burst: Duration::from_secs(1),
                    max_debt: Duration::from_secs(10),
                },
                t0,
            );
            let (mut now, mut ran) = (t0, 0);
            while now < t0 + Duration::from_secs(100) {
                if pace.allows(now) {
                    pace.charge(Duration::from_millis(250), outcome);
                    now += Duration::from_millis(250);
                    ran += 1;
                } else {
                    now += pace.until_allowed();
                }
            }
            assert!(
                (expected - 1..=expected + 1).contains(&ran),
                "{outcome:?}: {ran} hashes"
            );
        }
    }

    #[test]
    fn a_hasher_out_of_public_share_serves_only_the_priority_lane() {
        let mut q = queue(100, 10, 10);
        q.push(public("10.0.0.1"), 1);
        assert!(q.pop(false).is_none());
        assert!(q.public_waiting());
        q.push(Source::client(ip("10.0.1.1"), true), 2);
        q.push(Source::internal(), 3);
        let order: Vec<u32> = std::iter::from_fn(|| q.pop(false).map(|t| t.job)).collect();
        assert_eq!(order, vec![2, 3]);
        assert_eq!(q.pop(true).map(|t| t.job), Some(1));
        assert!(!q.public_waiting());
    }

    #[tokio::test]
    async fn public_work_is_paced_while_device_token_logins_go_first() {
        use std::time::{Duration, Instant};
        let h = pool(
            1,
            4,
            Duration::from_secs(10),
            PublicPace {
                share: 0.25,
                burst: Duration::from_millis(10),
                max_debt: Duration::from_secs(10),
            },
        );
        let t0 = Instant::now();
        // A public job of 200 ms uses the 10 ms burst; the hasher earns a quarter of the time
        // since the job began, so the next public job may start 760 ms after it began.
        let first_started = h
            .run(
                public("10.1.1.1"),
                move |_| {
                    let started = t0.elapsed();
                    std::thread::sleep(Duration::from_millis(200));
                    started
                },
                |_| Outcome::Done,
            )
            .await
            .unwrap();
        let next_public = {
            let h = h.clone();
            tokio::spawn(async move {
                h.run(public("10.2.2.2"), move |_| t0.elapsed(), |_| Outcome::Done)
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let trusted_started = h
            .run(
                Source::client(ip("10.3.3.3"), true),
                move |_| t0.elapsed(),
                |_| Outcome::Done,
            )
            .await
            .unwrap();
        let public_started = next_public.await.unwrap().unwrap();
        assert!(
            trusted_started < public_started,
            "{trusted_started:?} {public_started:?}"
        );
        assert!(
            public_started >= first_started + Duration::from_millis(700),
            "{first_started:?} {public_started:?}"
        );
    }
}
