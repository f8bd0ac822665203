//! Who is online across instances, kept in Redis when several instances share one (see
//! [`crate::presence`] for each instance's own count of connections).
//!
//! - **Entries with a lifetime, refreshed by their owner.** For each user, `<prefix>p:<user>` is
//!   a sorted set of the instances that hold a connection of theirs, each scored with the time
//!   (Redis's clock, in ms) its entry expires. An instance adds itself at the user's first
//!   connection there, removes itself at the last, and re-scores every entry of its own every
//!   [`REFRESH_EVERY`] to [`ENTRY_TTL`] ahead. A user is online while some entry has not expired.
//!   An instance that dies stops refreshing: its users read as offline within [`ENTRY_TTL`], and
//!   nobody has to clean anything up or reset anything at start-up for that to hold.
//! - **Telling contacts.** Expiry alone tells nobody. The index `<prefix>p-expiry` holds every
//!   entry (`<user>:<instance>`, same score); every instance pops expired index entries now and
//!   then ([`ClusterPresence::expired_users`], atomic in a script, so each expired entry is
//!   handled by exactly one instance), and whoever pops the last live entry of a user reports
//!   the user offline, for their contacts to be told.
//! - **Transitions are atomic** (scripts): "came online" is reported only when no other
//!   instance held the user, "went offline" only when none holds them any more.
//! - **Redis unavailable**: answers fall back to this instance's own count, and the state change
//!   is logged once; entries are refreshed again when Redis is back.
//!
//! Works with a single Redis server (or a Sentinel-managed one), not Redis Cluster: the scripts
//! touch keys of several users.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::domain::UserId;
use crate::presence::Presence;

/// How long an entry lives without being refreshed.
pub const ENTRY_TTL: Duration = Duration::from_secs(30);
/// How often an instance refreshes its entries (and looks for expired ones).
pub const REFRESH_EVERY: Duration = Duration::from_secs(10);
/// Users refreshed by one script call.
const REFRESH_CHUNK: usize = 500;
/// Expired entries popped by one script call.
const EXPIRED_CHUNK: usize = 500;

const NOW_MS: &str =
    "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)";

/// KEYS: the user's set, the index. ARGV: instance, ttl ms, user. Returns how many instances
/// held the user (live entries) before this one was added.
static CAME_ONLINE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{NOW_MS}
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
        local before = redis.call('ZCOUNT', KEYS[1], '-inf', '+inf')
        if redis.call('ZSCORE', KEYS[1], ARGV[1]) then before = before - 1 end
        local expires = now + tonumber(ARGV[2])
        redis.call('ZADD', KEYS[1], expires, ARGV[1])
        redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
        redis.call('ZADD', KEYS[2], expires, ARGV[3] .. ':' .. ARGV[1])
        return before"
    ))
});

/// KEYS: the user's set, the index. ARGV: instance, user. Returns how many instances still
/// hold the user (live entries).
static WENT_OFFLINE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{NOW_MS}
        redis.call('ZREM', KEYS[1], ARGV[1])
        redis.call('ZREM', KEYS[2], ARGV[2] .. ':' .. ARGV[1])
        return redis.call('ZCOUNT', KEYS[1], now, '+inf')"
    ))
});

/// KEYS: the index, then one set per user. ARGV: instance, ttl ms, then the users (in KEYS'
/// order).
static REFRESH: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{NOW_MS}
        local expires = now + tonumber(ARGV[2])
        for i = 2, #KEYS do
            redis.call('ZADD', KEYS[i], expires, ARGV[1])
            redis.call('PEXPIRE', KEYS[i], 2 * tonumber(ARGV[2]))
            redis.call('ZADD', KEYS[1], expires, ARGV[i + 1] .. ':' .. ARGV[1])
        end
        return #KEYS - 1"
    ))
});

/// KEYS: the index. ARGV: the sets' key prefix, the most entries to pop. Pops expired index
/// entries, removes them from their user's set, and returns the users left with no live entry.
static EXPIRED: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{NOW_MS}
        local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[2]))
        local offline = {{}}
        for _, m in ipairs(expired) do
            redis.call('ZREM', KEYS[1], m)
            local user, inst = string.match(m, '^(%d+):(%d+)$')
            if user then
                local key = ARGV[1] .. user
                local score = redis.call('ZSCORE', key, inst)
                if score and tonumber(score) < now then redis.call('ZREM', key, inst) end
                if redis.call('ZCOUNT', key, now, '+inf') == 0 then
                    table.insert(offline, tonumber(user))
                end
            end
        end
        return offline"
    ))
});

/// KEYS: one set per user. Returns, per user, how many live entries they have.
static COUNT_LIVE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{NOW_MS}
        local n = {{}}
        for i = 1, #KEYS do n[i] = redis.call('ZCOUNT', KEYS[i], now, '+inf') end
        return n"
    ))
});

/// Presence across instances. Cheap to clone.
#[derive(Clone)]
pub struct ClusterPresence {
    conn: ConnectionManager,
    /// `<prefix>p:`, the users' sets' key prefix.
    sets: String,
    index: String,
    instance: String,
    ttl_ms: u64,
    local: Presence,
    up: std::sync::Arc<AtomicBool>,
}

/// What [`ClusterPresence::connect`] needs.
#[derive(Debug, Clone)]
pub struct PresenceConfig {
    pub url: String,
    pub prefix: String,
    pub instance: u64,
    /// [`ENTRY_TTL`] but in tests.
    pub ttl: Duration,
}

impl ClusterPresence {
    /// A handle on the shared presence; connects lazily (an unreachable Redis is not an error
    /// here: answers fall back to `local` until it answers). Only a malformed URL is.
    pub fn connect(config: PresenceConfig, local: Presence) -> Result<ClusterPresence, String> {
        let client = redis::Client::open(config.url.as_str()).map_err(|e| e.to_string())?;
        let manager = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let conn =
            ConnectionManager::new_lazy_with_config(client, manager).map_err(|e| e.to_string())?;
        Ok(ClusterPresence {
            conn,
            sets: format!("{}p:", config.prefix),
            index: format!("{}p-expiry", config.prefix),
            instance: config.instance.to_string(),
            ttl_ms: u64::try_from(config.ttl.as_millis()).unwrap_or(u64::MAX),
            local,
            // Optimistic until the first failure, so the first one is logged.
            up: std::sync::Arc::new(AtomicBool::new(true)),
        })
    }

    fn set_of(&self, user: UserId) -> String {
        format!("{}{}", self.sets, user.0)
    }

    fn note<T>(&self, r: redis::RedisResult<T>) -> Option<T> {
        match r {
            Ok(v) => {
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::info!("Redis presence answering again");
                }
                Some(v)
            }
            Err(e) => {
                if self.up.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "Redis presence unavailable; answering from this instance's connections only");
                }
                None
            }
        }
    }

    /// `user`'s first connection on this instance opened: true if no other instance held them
    /// (they came online for everyone).
    pub async fn came_online(&self, user: UserId) -> bool {
        let mut conn = self.conn.clone();
        let r = CAME_ONLINE
            .key(self.set_of(user))
            .key(&self.index)
            .arg(&self.instance)
            .arg(self.ttl_ms)
            .arg(user.0)
            .invoke_async::<i64>(&mut conn)
            .await;
        self.note(r).is_none_or(|before| before == 0)
    }

    /// `user`'s last connection on this instance closed: true if no instance holds them now.
    pub async fn went_offline(&self, user: UserId) -> bool {
        let mut conn = self.conn.clone();
        let r = WENT_OFFLINE
            .key(self.set_of(user))
            .key(&self.index)
            .arg(&self.instance)
            .arg(user.0)
            .invoke_async::<i64>(&mut conn)
            .await;
        self.note(r).is_none_or(|left| left == 0)
    }

    /// Whether each of `users` is online on some instance (one round trip).
    pub async fn online(&self, users: &[UserId]) -> Vec<bool> {
        if users.is_empty() {
            return Vec::new();
        }
        let mut script = COUNT_LIVE.prepare_invoke();
        for u in users {
            script.key(self.set_of(*u));
        }
        let mut conn = self.conn.clone();
        let r = script.invoke_async::<Vec<i64>>(&mut conn).await;
        match self.note(r) {
            Some(counts) if counts.len() == users.len() => counts
                .iter()
                .zip(users)
                .map(|(n, u)| *n > 0 || self.local.is_online(*u))
                .collect(),
            _ => users.iter().map(|u| self.local.is_online(*u)).collect(),
        }
    }

    /// Re-scores this instance's entries for every user it holds a connection of.
    pub async fn refresh(&self) {
        let users = self.local.online_user_ids();
        for chunk in users.chunks(REFRESH_CHUNK) {
            let mut script = REFRESH.prepare_invoke();
            script.key(&self.index).arg(&self.instance).arg(self.ttl_ms);
            for u in chunk {
                script.key(self.set_of(*u)).arg(u.0);
            }
            let mut conn = self.conn.clone();
            let r = script.invoke_async::<i64>(&mut conn).await;
            if self.note(r).is_none() {
                return;
            }
        }
    }

    /// Pops expired entries (of instances that stopped refreshing them) and returns the users
    /// who, with them, have no live entry left: they went offline, and their contacts are to be
    /// told. Each expired entry is popped by one instance only.
    pub async fn expired_users(&self) -> Vec<UserId> {
        let mut offline = Vec::new();
        loop {
            let mut conn = self.conn.clone();
            let r = EXPIRED
                .key(&self.index)
                .arg(&self.sets)
                .arg(EXPIRED_CHUNK)
                .invoke_async::<Vec<i64>>(&mut conn)
                .await;
            let Some(users) = self.note(r) else {
                return offline;
            };
            let n = users.len();
            // A user this instance holds is online whatever Redis says (its entry comes back at
            // the next refresh).
            offline.extend(
                users
                    .into_iter()
                    .map(UserId)
                    .filter(|u| !self.local.is_online(*u)),
            );
            if n < EXPIRED_CHUNK {
                return offline;
            }
        }
    }

    /// Whether Redis answered the last call.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::redis_link::test_redis::TestRedis;

    fn presence(redis: &TestRedis, instance: u64, ttl: Duration) -> (ClusterPresence, Presence) {
        let local = Presence::default();
        let p = ClusterPresence::connect(
            PresenceConfig {
                url: redis.url(),
                prefix: "test:".into(),
                instance,
                ttl,
            },
            local.clone(),
        )
        .unwrap();
        (p, local)
    }

    #[tokio::test]
    async fn a_user_is_online_while_any_instance_holds_them() {
        let redis = TestRedis::start();
        let (a, a_local) = presence(&redis, 1, ENTRY_TTL);
        let (b, b_local) = presence(&redis, 2, ENTRY_TTL);
        let (alice, bob) = (UserId(5), UserId(6));
        assert_eq!(a.online(&[alice, bob]).await, vec![false, false]);
        // Alice on A: she came online.
        let slot_a = a_local.reserve(alice, 8).unwrap();
        assert!(a.came_online(alice).await);
        assert_eq!(b.online(&[alice, bob]).await, vec![true, false]);
        // And on B too: not news.
        let slot_b = b_local.reserve(alice, 8).unwrap();
        assert!(!b.came_online(alice).await);
        // She leaves A: still on B.
        drop(slot_a);
        assert!(!a.went_offline(alice).await);
        assert_eq!(a.online(&[alice]).await, vec![true]);
        // And B: offline.
        drop(slot_b);
        assert!(b.went_offline(alice).await);
        assert_eq!(a.online(&[alice]).await, vec![false]);
        // Nothing expired: nobody to report.
        assert!(a.expired_users().await.is_empty());
        assert!(a.is_up() && b.is_up());
    }

    #[tokio::test]
    async fn an_instance_that_stops_refreshing_loses_its_users_and_one_instance_reports_them() {
        let redis = TestRedis::start();
        let ttl = Duration::from_millis(800);
        let (dead, dead_local) = presence(&redis, 1, ttl);
        let (live, live_local) = presence(&redis, 2, ttl);
        let (third, _) = presence(&redis, 3, ttl);
        let (carol, dave) = (UserId(7), UserId(8));
        let _c = dead_local.reserve(carol, 8).unwrap();
        let _d = dead_local.reserve(dave, 8).unwrap();
        assert!(dead.came_online(carol).await && dead.came_online(dave).await);
        // Dave is also on the live instance, which keeps refreshing.
        let _d2 = live_local.reserve(dave, 8).unwrap();
        assert!(!live.came_online(dave).await);
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            live.refresh().await;
        }
        // The dead instance's entries expired: Carol reads offline, Dave (held by the live
        // instance) online.
        assert_eq!(third.online(&[carol, dave]).await, vec![false, true]);
        let (first, second) = tokio::join!(live.expired_users(), third.expired_users());
        let mut reported: Vec<UserId> = first.into_iter().chain(second).collect();
        reported.sort();
        assert_eq!(reported, vec![carol], "reported once, by one instance");
        assert!(live.expired_users().await.is_empty());
    }

    #[tokio::test]
    async fn without_redis_answers_come_from_this_instance() {
        let mut redis = TestRedis::start();
        let (a, a_local) = presence(&redis, 1, ENTRY_TTL);
        redis.stop();
        let erin = UserId(9);
        let _slot = a_local.reserve(erin, 8).unwrap();
        assert!(a.came_online(erin).await);
        assert!(!a.is_up());
        assert_eq!(a.online(&[erin, UserId(10)]).await, vec![true, false]);
        assert!(a.expired_users().await.is_empty());
    }
}
