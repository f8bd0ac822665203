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
//! - **Counting without a walk.** `<prefix>p-users` holds every user with an entry, scored with
//!   their latest entry's expiry (raised with `ZADD GT` when an entry is added or refreshed,
//!   set to the latest remaining one or removed when an entry goes), so the users online on any
//!   instance are `ZCOUNT now +inf`: O(log n), whatever the number of users. Each instance also
//!   reports its open connections (the hash `<prefix>p-connections`, with the report's expiry
//!   in `<prefix>p-instances`) whenever a user comes or goes there and at every refresh; the
//!   cluster's connections are this instance's own count plus the others' last reports (at
//!   most [`REFRESH_EVERY`] old), and a dead instance's report expires with its entries.
//! - **Transitions are atomic** (scripts): "came online" is reported only when no other
//!   instance held the user, "went offline" only when none holds them any more; the count's
//!   keys change in the same scripts as the entries they follow.
//! - **Redis unavailable**: answers fall back to this instance's own count, and the state change
//!   is logged once; entries are refreshed again when Redis is back.
//!
//! Works with a single Redis server (or a Sentinel-managed one) of version 6.2 or later
//! (`ZADD GT`), not Redis Cluster: the scripts touch keys of several users.

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

/// `settle(set, users, user, now)`: scores `user` in the users' set with the latest expiry of
/// their live entries, or removes them when none is left. Run after an entry leaves `set`.
const SETTLE: &str = "
    local function settle(set, users, user, now)
        local top = redis.call('ZRANGE', set, -1, -1, 'WITHSCORES')
        if top[2] and tonumber(top[2]) >= now then
            redis.call('ZADD', users, top[2], user)
        else
            redis.call('ZREM', users, user)
        end
    end";

/// `report(instances, connections, instance, expires, n)`: this instance's open connections.
const REPORT: &str = "
    local function report(instances, connections, instance, expires, n)
        redis.call('HSET', connections, instance, n)
        redis.call('ZADD', instances, expires, instance)
    end";

/// KEYS: the user's set, the index, the users' set, the instances' reports' expiries, their
/// connections. ARGV: instance, ttl ms, user, this instance's connections. Returns how many
/// instances held the user (live entries) before this one was added.
static CAME_ONLINE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{NOW_MS} {REPORT}
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
        local before = redis.call('ZCOUNT', KEYS[1], '-inf', '+inf')
        if redis.call('ZSCORE', KEYS[1], ARGV[1]) then before = before - 1 end
        local expires = now + tonumber(ARGV[2])
        redis.call('ZADD', KEYS[1], expires, ARGV[1])
        redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
        redis.call('ZADD', KEYS[2], expires, ARGV[3] .. ':' .. ARGV[1])
        redis.call('ZADD', KEYS[3], 'GT', expires, ARGV[3])
        report(KEYS[4], KEYS[5], ARGV[1], expires, ARGV[4])
        return before"
    ))
});

/// KEYS and ARGV as [`CAME_ONLINE`]'s. Returns how many instances still hold the user (live
/// entries).
static WENT_OFFLINE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{NOW_MS} {SETTLE} {REPORT}
        redis.call('ZREM', KEYS[1], ARGV[1])
        redis.call('ZREM', KEYS[2], ARGV[3] .. ':' .. ARGV[1])
        settle(KEYS[1], KEYS[3], ARGV[3], now)
        report(KEYS[4], KEYS[5], ARGV[1], now + tonumber(ARGV[2]), ARGV[4])
        return redis.call('ZCOUNT', KEYS[1], now, '+inf')"
    ))
});

/// KEYS: the index, the users' set, the instances' reports' expiries, their connections, then
/// one set per user. ARGV: instance, ttl ms, this instance's connections, then the users (in
/// KEYS' order).
static REFRESH: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{NOW_MS} {REPORT}
        local expires = now + tonumber(ARGV[2])
        for i = 5, #KEYS do
            local user = ARGV[i - 1]
            redis.call('ZADD', KEYS[i], expires, ARGV[1])
            redis.call('PEXPIRE', KEYS[i], 2 * tonumber(ARGV[2]))
            redis.call('ZADD', KEYS[1], expires, user .. ':' .. ARGV[1])
            redis.call('ZADD', KEYS[2], 'GT', expires, user)
        end
        report(KEYS[3], KEYS[4], ARGV[1], expires, ARGV[3])
        return #KEYS - 4"
    ))
});

/// KEYS: the index, the users' set, the instances' reports' expiries, their connections.
/// ARGV: the sets' key prefix, the most entries to pop. Pops expired index entries, removes
/// them from their user's set, and returns the users left with no live entry; drops the
/// reports of instances that stopped making them.
static EXPIRED: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{NOW_MS} {SETTLE}
        local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[2]))
        local offline = {{}}
        for _, m in ipairs(expired) do
            redis.call('ZREM', KEYS[1], m)
            local user, inst = string.match(m, '^(%d+):(%d+)$')
            if user then
                local key = ARGV[1] .. user
                local score = redis.call('ZSCORE', key, inst)
                if score and tonumber(score) < now then redis.call('ZREM', key, inst) end
                settle(key, KEYS[2], user, now)
                if redis.call('ZCOUNT', key, now, '+inf') == 0 then
                    table.insert(offline, tonumber(user))
                end
            end
        end
        -- Whoever's latest entry expired has no live one (the score is the latest expiry).
        redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. now)
        for _, inst in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. now)) do
            redis.call('HDEL', KEYS[4], inst)
        end
        redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. now)
        return offline"
    ))
});

/// KEYS: the users' set, the instances' reports' expiries, their connections. ARGV: this
/// instance. Returns the users with a live entry, and the connections the other instances
/// reported last (live reports only).
static COUNTS: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{NOW_MS}
        local users = redis.call('ZCOUNT', KEYS[1], now, '+inf')
        local connections = 0
        for _, inst in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], now, '+inf')) do
            if inst ~= ARGV[1] then
                connections = connections + (tonumber(redis.call('HGET', KEYS[3], inst)) or 0)
            end
        end
        return {{users, connections}}"
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

/// Figures of every instance together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterCounts {
    /// Users with at least one connection on some instance.
    pub online_users: usize,
    /// Open connections: this instance's now, plus each other instance's as it last reported
    /// them (at most [`REFRESH_EVERY`] ago).
    pub connections: usize,
}

/// Presence across instances. Cheap to clone.
#[derive(Clone)]
pub struct ClusterPresence {
    conn: ConnectionManager,
    /// `<prefix>p:`, the users' sets' key prefix.
    sets: String,
    index: String,
    /// `<prefix>p-users`: each user with an entry, scored with their latest entry's expiry.
    users: String,
    /// `<prefix>p-instances`: each instance's connections report, scored with its expiry.
    instances: String,
    /// `<prefix>p-connections`: each instance's open connections, as it last reported them.
    connections: String,
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
            users: format!("{}p-users", config.prefix),
            instances: format!("{}p-instances", config.prefix),
            connections: format!("{}p-connections", config.prefix),
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
        let r = self.transition(&CAME_ONLINE, user).await;
        self.note(r).is_none_or(|before| before == 0)
    }

    /// Runs [`CAME_ONLINE`] or [`WENT_OFFLINE`] (same keys and arguments) for `user`.
    async fn transition(&self, script: &redis::Script, user: UserId) -> redis::RedisResult<i64> {
        let mut conn = self.conn.clone();
        script
            .key(self.set_of(user))
            .key(&self.index)
            .key(&self.users)
            .key(&self.instances)
            .key(&self.connections)
            .arg(&self.instance)
            .arg(self.ttl_ms)
            .arg(user.0)
            .arg(self.local.connection_count())
            .invoke_async::<i64>(&mut conn)
            .await
    }

    /// `user`'s last connection on this instance closed: true if no instance holds them now.
    pub async fn went_offline(&self, user: UserId) -> bool {
        let r = self.transition(&WENT_OFFLINE, user).await;
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

    /// Users online and open connections on every instance (one round trip). Without Redis,
    /// this instance's.
    pub async fn counts(&self) -> ClusterCounts {
        let local = ClusterCounts {
            online_users: self.local.online_users(),
            connections: self.local.connection_count(),
        };
        let mut conn = self.conn.clone();
        let r = COUNTS
            .key(&self.users)
            .key(&self.instances)
            .key(&self.connections)
            .arg(&self.instance)
            .invoke_async::<(usize, usize)>(&mut conn)
            .await;
        match self.note(r) {
            // This instance's users are online whatever Redis says (after a Redis restart,
            // until the next refresh puts their entries back).
            Some((users, others)) => ClusterCounts {
                online_users: users.max(local.online_users),
                connections: local.connections.saturating_add(others),
            },
            None => local,
        }
    }

    /// Re-scores this instance's entries for every user it holds a connection of, and reports
    /// its connections (also when it holds none, so that its last report says so).
    pub async fn refresh(&self) {
        let users = self.local.online_user_ids();
        let chunks: Vec<&[UserId]> = if users.is_empty() {
            vec![&[]]
        } else {
            users.chunks(REFRESH_CHUNK).collect()
        };
        for chunk in chunks {
            let mut script = REFRESH.prepare_invoke();
            script
                .key(&self.index)
                .key(&self.users)
                .key(&self.instances)
                .key(&self.connections)
                .arg(&self.instance)
                .arg(self.ttl_ms)
                .arg(self.local.connection_count());
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
                .key(&self.users)
                .key(&self.instances)
                .key(&self.connections)
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

    fn counted(online_users: usize, connections: usize) -> ClusterCounts {
        ClusterCounts {
            online_users,
            connections,
        }
    }

    /// How many members the sorted set or hash `key` (after the "test:" prefix) holds.
    async fn members(redis: &TestRedis, key: &str) -> usize {
        let client = redis::Client::open(redis.url()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let key = format!("test:{key}");
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut c)
            .await
            .unwrap();
        let command = if kind == "hash" { "HLEN" } else { "ZCARD" };
        redis::cmd(command)
            .arg(&key)
            .query_async(&mut c)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_counts_take_every_instance_and_each_user_once() {
        let redis = TestRedis::start();
        let (a, a_local) = presence(&redis, 1, ENTRY_TTL);
        let (b, b_local) = presence(&redis, 2, ENTRY_TTL);
        assert_eq!(a.counts().await, counted(0, 0));
        let (alice, bob) = (UserId(5), UserId(6));
        let _alice_a = a_local.reserve(alice, 8).unwrap();
        assert!(a.came_online(alice).await);
        let bob_b = b_local.reserve(bob, 8).unwrap();
        assert!(b.came_online(bob).await);
        // Bob's second connection on B runs no script: B reports it at its next refresh.
        let bob_b2 = b_local.reserve(bob, 8).unwrap();
        let bob_a = a_local.reserve(bob, 8).unwrap();
        assert!(!a.came_online(bob).await);
        // Bob is on both instances and counted once; A counts its own two connections now.
        assert_eq!(a.counts().await, counted(2, 3));
        b.refresh().await;
        assert_eq!(a.counts().await, counted(2, 4));
        assert_eq!(b.counts().await, counted(2, 4));
        // He leaves A: still online on B.
        drop(bob_a);
        assert!(!a.went_offline(bob).await);
        assert_eq!(b.counts().await, counted(2, 3));
        // And B: only Alice is left.
        drop(bob_b2);
        drop(bob_b);
        assert!(b.went_offline(bob).await);
        assert_eq!(a.counts().await, counted(1, 1));
        assert_eq!(b.counts().await, counted(1, 1));
        assert_eq!(members(&redis, "p-users").await, 1);
        // An instance with nobody left says so at its refresh too.
        b.refresh().await;
        assert_eq!(a.counts().await, counted(1, 1));
    }

    #[tokio::test]
    async fn when_the_latest_entry_goes_a_user_is_counted_until_their_others_expire() {
        let redis = TestRedis::start();
        let ttl = Duration::from_millis(800);
        // A's entries live 30 s, B's 0.8 s (B then stops refreshing, as a dead instance does).
        let (a, a_local) = presence(&redis, 1, ENTRY_TTL);
        let (b, b_local) = presence(&redis, 2, ttl);
        let erin = UserId(9);
        let _on_b = b_local.reserve(erin, 8).unwrap();
        assert!(b.came_online(erin).await);
        let on_a = a_local.reserve(erin, 8).unwrap();
        assert!(!a.came_online(erin).await);
        drop(on_a);
        assert!(!a.went_offline(erin).await);
        assert_eq!(a.counts().await, counted(1, 1));
        // B's entry, now Erin's latest, expires: she is no longer counted, before anyone pops it.
        tokio::time::sleep(ttl + Duration::from_millis(300)).await;
        assert_eq!(a.online(&[erin]).await, vec![false]);
        assert_eq!(a.counts().await, counted(0, 0));
        assert_eq!(a.expired_users().await, vec![erin]);
        assert_eq!(members(&redis, "p-users").await, 0);
        // B's report expired with its entries, and is gone; A's own stays.
        assert_eq!(members(&redis, "p-instances").await, 1);
        assert_eq!(members(&redis, "p-connections").await, 1);
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
        assert_eq!(third.counts().await, counted(2, 3));
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            live.refresh().await;
        }
        // The dead instance's entries expired: Carol reads offline, Dave (held by the live
        // instance) online; the dead instance's two connections are no longer counted.
        assert_eq!(third.online(&[carol, dave]).await, vec![false, true]);
        assert_eq!(third.counts().await, counted(1, 1));
        let (first, second) = tokio::join!(live.expired_users(), third.expired_users());
        let mut reported: Vec<UserId> = first.into_iter().chain(second).collect();
        reported.sort();
        assert_eq!(reported, vec![carol], "reported once, by one instance");
        assert!(live.expired_users().await.is_empty());
        assert_eq!(third.counts().await, counted(1, 1));
        assert_eq!(members(&redis, "p-users").await, 1);
        assert_eq!(members(&redis, "p-connections").await, 1);
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
        assert_eq!(a.counts().await, counted(1, 1));
        assert!(a.expired_users().await.is_empty());
    }
}
