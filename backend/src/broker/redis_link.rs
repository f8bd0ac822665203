//! The link between instances through Redis pub/sub: opaque event payloads published to
//! per-user channels, and received for the users this instance holds connections of.
//!
//! - **Routing.** An event for user U is published to the channel `<prefix>u:<U>`; an instance
//!   subscribes to that channel while it holds at least one connection of U ([`RedisLink::watch`]
//!   / [`RedisLink::unwatch`], counted). An instance's Redis traffic thus grows with the users
//!   connected to it and the events it publishes, not with the number of instances.
//! - **One subscriber connection** per instance for all its channels, plus one multiplexed
//!   command connection that publishes in pipelines (whatever is queued goes in one round trip).
//! - **Losses are expected and announced.** Pub/sub forgets what it could not deliver: while the
//!   subscriber is away (Redis restarted, network cut) events are lost, and a publish that fails
//!   is dropped rather than retried or queued without bound. After every (re)subscription the
//!   link yields [`Inbound::Resubscribed`], so that whoever delivers events re-checks what it
//!   may have missed against the database, which is the truth.
//! - **Liveness.** The link publishes a probe to its own channel `<prefix>i:<instance>` every
//!   [`PROBE_EVERY`] and expects it back; a subscriber that has heard nothing of it for
//!   [`PROBE_TIMEOUT`] (a half-open connection, a subscription lost on the server's side) is
//!   dropped and reconnected.
//! - **State changes are logged once each** ("Redis link down" / "up again"), and
//!   [`RedisLink::is_up`] tells the health endpoint.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::domain::UserId;

/// How often the subscriber's liveness probe is published.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);
/// A subscriber that has not received its own probe for this long is reconnected.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(6);
/// Connecting (TCP and handshake) and each pipeline's answer must take less than this.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// Waits between reconnection attempts: from the first to the last, doubling.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_LAST: Duration = Duration::from_secs(2);
/// Payloads waiting to be published; past this, new ones are dropped (and counted).
const PUBLISH_QUEUE: usize = 65_536;
/// Payloads published in one pipeline at most.
const PIPELINE_MAX: usize = 512;
/// Channels named in one SUBSCRIBE when (re)subscribing.
const SUBSCRIBE_CHUNK: usize = 1_000;

/// What the link hands to the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A payload published for `user`, whom this instance watches. (The same payload may be
    /// published for several users; it then arrives once per watched user.)
    Event { user: UserId, payload: Bytes },
    /// The subscriber has (re)subscribed to every watched channel: what was published while it
    /// was away is lost, and must be looked for in the database.
    Resubscribed,
    /// Redis confirmed the subscription to `user`'s channel: what was published for them
    /// before that (since their connection read the database) must be looked for there.
    Watching(UserId),
}

/// Counters, for metrics and tests.
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Payloads published (in a pipeline that Redis answered).
    pub published: AtomicU64,
    /// Payloads dropped: the queue was full, or Redis did not take them.
    pub dropped: AtomicU64,
    /// Payloads received for watched users.
    pub received: AtomicU64,
    /// Subscriber connections made after the first.
    pub reconnects: AtomicU64,
}

#[derive(Debug)]
enum SubCommand {
    Subscribe(UserId, String),
    Unsubscribe(String),
    /// Tests: drop every subscription on the server's side without the link knowing, as a
    /// server restart behind a proxy would, so that only the probe can notice.
    #[cfg(test)]
    Forget,
}

struct State {
    watched: Mutex<HashMap<UserId, usize>>,
    subscriber_up: AtomicBool,
    publisher_up: AtomicBool,
    stats: LinkStats,
}

/// A handle on the link; clones share it. The link's tasks end when the last handle is dropped.
#[derive(Clone)]
pub struct RedisLink {
    state: Arc<State>,
    prefix: Arc<str>,
    subscriptions: mpsc::UnboundedSender<SubCommand>,
    outgoing: mpsc::Sender<(String, Bytes)>,
    drop_publishes: Option<Arc<AtomicU64>>,
}

/// Settings of the link.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// `redis://host:port/db`.
    pub url: String,
    /// Put before every channel name, so that several deployments (or tests) can share one
    /// Redis.
    pub prefix: String,
    /// This instance's id (its probe channel).
    pub instance: u64,
    /// Tests: while above zero, each publication is dropped and the count goes down by one.
    pub drop_publishes: Option<Arc<AtomicU64>>,
}

/// A `REDIS_URL` that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("REDIS_URL: {0}")]
pub struct LinkError(String);

impl RedisLink {
    /// Starts the link's tasks on the current runtime and returns the handle and the stream of
    /// what arrives. Only a malformed URL is an error: an unreachable Redis is retried for as
    /// long as the link lives (the first [`Inbound::Resubscribed`] says it is there).
    pub fn start(config: LinkConfig) -> Result<(RedisLink, mpsc::Receiver<Inbound>), LinkError> {
        let client =
            redis::Client::open(config.url.as_str()).map_err(|e| LinkError(e.to_string()))?;
        let state = Arc::new(State {
            watched: Mutex::new(HashMap::new()),
            subscriber_up: AtomicBool::new(false),
            publisher_up: AtomicBool::new(false),
            stats: LinkStats::default(),
        });
        let prefix: Arc<str> = config.prefix.into();
        let probe = format!("{prefix}i:{}", config.instance);
        let (sub_tx, sub_rx) = mpsc::unbounded_channel();
        let (out_tx, out_rx) = mpsc::channel(PUBLISH_QUEUE);
        // Bounded: a receiver that stops taking events stalls the subscriber, and the probe
        // then reconnects it; memory never grows without bound.
        let (in_tx, in_rx) = mpsc::channel(PUBLISH_QUEUE);
        tokio::spawn(subscriber(
            client.clone(),
            Arc::clone(&state),
            Arc::clone(&prefix),
            probe.clone(),
            sub_rx,
            in_tx,
        ));
        tokio::spawn(publisher(client, Arc::clone(&state), out_rx));
        let link = RedisLink {
            state,
            prefix,
            subscriptions: sub_tx,
            outgoing: out_tx.clone(),
            drop_publishes: config.drop_publishes,
        };
        tokio::spawn(prober(out_tx.downgrade(), probe));
        Ok((link, in_rx))
    }

    fn channel_of(&self, user: UserId) -> String {
        user_channel(&self.prefix, user)
    }

    /// This instance holds one more connection of `user`: receive what is published for them.
    pub fn watch(&self, user: UserId) {
        let Ok(mut watched) = self.state.watched.lock() else {
            return;
        };
        let n = watched.entry(user).or_insert(0);
        *n += 1;
        if *n == 1 {
            let _ = self
                .subscriptions
                .send(SubCommand::Subscribe(user, self.channel_of(user)));
        }
    }

    /// This instance holds one connection of `user` fewer.
    pub fn unwatch(&self, user: UserId) {
        let Ok(mut watched) = self.state.watched.lock() else {
            return;
        };
        let Some(n) = watched.get_mut(&user) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            watched.remove(&user);
            let _ = self
                .subscriptions
                .send(SubCommand::Unsubscribe(self.channel_of(user)));
        }
    }

    /// Publishes `payload` for `user`, without waiting. Dropped (and counted) when the queue is
    /// full or Redis does not take it.
    pub fn publish(&self, user: UserId, payload: Bytes) {
        if let Some(n) = &self.drop_publishes {
            if n.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                self.state.stats.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if self
            .outgoing
            .try_send((self.channel_of(user), payload))
            .is_err()
        {
            self.state.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether both the subscriber and the publisher are connected.
    pub fn is_up(&self) -> bool {
        self.state.subscriber_up.load(Ordering::Relaxed)
            && self.state.publisher_up.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> &LinkStats {
        &self.state.stats
    }

    #[cfg(test)]
    fn forget_subscriptions(&self) {
        let _ = self.subscriptions.send(SubCommand::Forget);
    }
}

fn user_channel(prefix: &str, user: UserId) -> String {
    format!("{prefix}u:{}", user.0)
}

fn user_of_channel(prefix: &str, channel: &str) -> Option<UserId> {
    channel
        .strip_prefix(prefix)?
        .strip_prefix("u:")?
        .parse()
        .ok()
        .map(UserId)
}

/// Logs a change of a connection's state, once per change.
fn set_up(flag: &AtomicBool, up: bool, what: &str, error: Option<&dyn std::fmt::Display>) {
    if flag.swap(up, Ordering::Relaxed) != up {
        match (up, error) {
            (true, _) => tracing::info!("Redis {what} connected"),
            (false, Some(e)) => tracing::warn!(error = %e, "Redis {what} lost"),
            (false, None) => tracing::warn!("Redis {what} lost"),
        }
    }
}

async fn subscriber(
    client: redis::Client,
    state: Arc<State>,
    prefix: Arc<str>,
    probe: String,
    mut commands: mpsc::UnboundedReceiver<SubCommand>,
    inbound: mpsc::Sender<Inbound>,
) {
    let mut backoff = BACKOFF_FIRST;
    let mut first = true;
    loop {
        // Commands that come while away are reflected in `watched`: subscribing to its current
        // set (and the probe) covers them.
        while commands.try_recv().is_ok() {}
        let (mut sink, mut stream) = match subscribe_all(&client, &state, &prefix, &probe).await {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(why) => {
                set_up(&state.subscriber_up, false, "subscriber", Some(&why));
                if !wait_or_closed(&mut commands, &mut backoff).await {
                    return;
                }
                continue;
            }
        };
        backoff = BACKOFF_FIRST;
        if !first {
            state.stats.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        first = false;
        set_up(&state.subscriber_up, true, "subscriber", None);
        if inbound.send(Inbound::Resubscribed).await.is_err() {
            return;
        }
        let mut heard = Instant::now();
        let mut check = tokio::time::interval(PROBE_EVERY);
        let why: String = loop {
            tokio::select! {
                msg = stream.next() => {
                    let Some(msg) = msg else { break "the connection closed".into() };
                    if msg.get_channel_name() == probe {
                        heard = Instant::now();
                        continue;
                    }
                    let Some(user) = user_of_channel(&prefix, msg.get_channel_name()) else {
                        continue;
                    };
                    state.stats.received.fetch_add(1, Ordering::Relaxed);
                    let payload = Bytes::copy_from_slice(msg.get_payload_bytes());
                    if inbound.send(Inbound::Event { user, payload }).await.is_err() {
                        return;
                    }
                }
                cmd = commands.recv() => {
                    let r = match cmd {
                        None => return,
                        Some(SubCommand::Subscribe(user, c)) => {
                            let r = tokio::time::timeout(REDIS_TIMEOUT, sink.subscribe(c)).await;
                            if matches!(r, Ok(Ok(()))) && inbound.send(Inbound::Watching(user)).await.is_err() {
                                return;
                            }
                            r
                        }
                        Some(SubCommand::Unsubscribe(c)) => {
                            tokio::time::timeout(REDIS_TIMEOUT, sink.unsubscribe(c)).await
                        }
                        #[cfg(test)]
                        Some(SubCommand::Forget) => {
                            let Some(all) = channels(&state, &prefix, &probe) else { return };
                            tokio::time::timeout(REDIS_TIMEOUT, sink.unsubscribe(all)).await
                        }
                    };
                    match r {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => break format!("(un)subscribing failed: {e}"),
                        Err(_) => break "(un)subscribing timed out".into(),
                    }
                }
                _ = check.tick() => {
                    if heard.elapsed() > PROBE_TIMEOUT {
                        break "its own probe did not come back".into();
                    }
                }
            }
        };
        set_up(&state.subscriber_up, false, "subscriber", Some(&why));
        if !wait_or_closed(&mut commands, &mut backoff).await {
            return;
        }
    }
}

/// The channels to be subscribed to: every watched user's and the probe's (`None` if the map
/// is poisoned).
fn channels(state: &State, prefix: &str, probe: &str) -> Option<Vec<String>> {
    let watched = state.watched.lock().ok()?;
    let mut channels: Vec<String> = watched.keys().map(|u| user_channel(prefix, *u)).collect();
    channels.push(probe.to_owned());
    Some(channels)
}

type Subscribed = (redis::aio::PubSubSink, redis::aio::PubSubStream);

/// Connects a subscriber and subscribes it to [`channels`]; `Ok(None)` if the map is poisoned.
async fn subscribe_all(
    client: &redis::Client,
    state: &State,
    prefix: &str,
    probe: &str,
) -> Result<Option<Subscribed>, String> {
    let pubsub = match tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub()).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("connecting timed out".into()),
    };
    let (mut sink, stream) = pubsub.split();
    let Some(channels) = channels(state, prefix, probe) else {
        return Ok(None);
    };
    for chunk in channels.chunks(SUBSCRIBE_CHUNK) {
        match tokio::time::timeout(REDIS_TIMEOUT, sink.subscribe(chunk)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("subscribing failed: {e}")),
            Err(_) => return Err("subscribing timed out".into()),
        }
    }
    Ok(Some((sink, stream)))
}

/// Sleeps the backoff (doubling it for next time); false if the link was dropped meanwhile.
async fn wait_or_closed(
    commands: &mut mpsc::UnboundedReceiver<SubCommand>,
    backoff: &mut Duration,
) -> bool {
    let until = Instant::now() + *backoff;
    *backoff = (*backoff * 2).min(BACKOFF_LAST);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => return true,
            cmd = commands.recv() => {
                // Commands are reflected in `watched` and replayed at reconnection.
                if cmd.is_none() {
                    return false;
                }
            }
        }
    }
}

async fn publisher(
    client: redis::Client,
    state: Arc<State>,
    mut outgoing: mpsc::Receiver<(String, Bytes)>,
) {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT));
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    let mut next_attempt = Instant::now();
    let mut backoff = BACKOFF_FIRST;
    let mut batch = Vec::with_capacity(PIPELINE_MAX);
    while outgoing.recv_many(&mut batch, PIPELINE_MAX).await > 0 {
        if conn.is_none() && Instant::now() >= next_attempt {
            match client
                .get_multiplexed_async_connection_with_config(&config)
                .await
            {
                Ok(c) => {
                    conn = Some(c);
                    backoff = BACKOFF_FIRST;
                }
                Err(e) => {
                    set_up(&state.publisher_up, false, "publisher", Some(&e));
                    next_attempt = Instant::now() + backoff;
                    backoff = (backoff * 2).min(BACKOFF_LAST);
                }
            }
        }
        let n = batch.len() as u64;
        let Some(c) = conn.as_mut() else {
            // Not connected: drop rather than queue (the database repairs what is missed).
            state.stats.dropped.fetch_add(n, Ordering::Relaxed);
            batch.clear();
            continue;
        };
        let mut pipe = redis::pipe();
        for (channel, payload) in batch.drain(..) {
            pipe.cmd("PUBLISH")
                .arg(channel)
                .arg(payload.as_ref())
                .ignore();
        }
        match pipe.query_async::<()>(c).await {
            Ok(()) => {
                state.stats.published.fetch_add(n, Ordering::Relaxed);
                set_up(&state.publisher_up, true, "publisher", None);
            }
            Err(e) => {
                state.stats.dropped.fetch_add(n, Ordering::Relaxed);
                set_up(&state.publisher_up, false, "publisher", Some(&e));
                conn = None;
                next_attempt = Instant::now() + backoff;
                backoff = (backoff * 2).min(BACKOFF_LAST);
            }
        }
    }
}

/// Publishes the liveness probe to this instance's own channel, until the link is dropped.
async fn prober(outgoing: mpsc::WeakSender<(String, Bytes)>, probe: String) {
    let mut tick = tokio::time::interval(PROBE_EVERY);
    loop {
        tick.tick().await;
        let Some(tx) = outgoing.upgrade() else {
            return;
        };
        let _ = tx.try_send((probe.clone(), Bytes::from_static(b"probe")));
    }
}

/// A Redis server of a test's own (the Debian package's `redis-server`), for the tests of
/// everything that speaks to Redis.
#[cfg(test)]
pub(crate) mod test_redis {
    use std::net::TcpListener;
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    /// A Redis server of the test's own, on a free port.
    pub struct TestRedis {
        pub port: u16,
        child: Option<Child>,
    }

    impl TestRedis {
        pub fn start_on(port: u16) -> TestRedis {
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server (Debian package redis-server) must be installed");
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "redis-server did not start"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            TestRedis {
                port,
                child: Some(child),
            }
        }

        pub fn start() -> TestRedis {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            TestRedis::start_on(port)
        }

        pub fn stop(&mut self) {
            if let Some(mut c) = self.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }

        pub fn url(&self) -> String {
            format!("redis://127.0.0.1:{}", self.port)
        }
    }

    impl Drop for TestRedis {
        fn drop(&mut self) {
            self.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_redis::TestRedis;
    use super::*;

    fn link(redis: &TestRedis, instance: u64) -> (RedisLink, mpsc::Receiver<Inbound>) {
        RedisLink::start(LinkConfig {
            url: redis.url(),
            prefix: "test:".into(),
            instance,
            drop_publishes: None,
        })
        .unwrap()
    }

    async fn next(rx: &mut mpsc::Receiver<Inbound>) -> Inbound {
        tokio::time::timeout(Duration::from_secs(15), rx.recv())
            .await
            .expect("nothing arrived in 15 s")
            .expect("the link ended")
    }

    /// Publishes until one arrives (a subscription takes effect a moment after `watch`).
    async fn publish_until_received(
        from: &RedisLink,
        to: &mut mpsc::Receiver<Inbound>,
        user: UserId,
        payload: &'static [u8],
    ) {
        for _ in 0..100 {
            from.publish(user, Bytes::from_static(payload));
            if let Ok(Some(got)) = tokio::time::timeout(Duration::from_millis(100), to.recv()).await
            {
                if matches!(got, Inbound::Watching(_)) {
                    continue;
                }
                assert_eq!(
                    got,
                    Inbound::Event {
                        user,
                        payload: Bytes::from_static(payload)
                    }
                );
                // Later copies of the same payload may still be in flight: drain them.
                while let Ok(Some(_)) =
                    tokio::time::timeout(Duration::from_millis(200), to.recv()).await
                {
                }
                return;
            }
        }
        panic!("never received");
    }

    #[tokio::test]
    async fn events_reach_the_instances_that_watch_the_user_and_only_them() {
        let redis = TestRedis::start();
        let (a, mut a_in) = link(&redis, 1);
        let (b, mut b_in) = link(&redis, 2);
        assert_eq!(next(&mut a_in).await, Inbound::Resubscribed);
        assert_eq!(next(&mut b_in).await, Inbound::Resubscribed);
        let alice = UserId(7);
        a.watch(alice);
        a.watch(alice);
        publish_until_received(&b, &mut a_in, alice, b"hello").await;
        // Watched on both instances: each gets what is published for Bob, named for him.
        let bob = UserId(8);
        a.watch(bob);
        b.watch(bob);
        publish_until_received(&a, &mut b_in, bob, b"for bob").await;
        b.unwatch(bob);
        a.unwatch(bob);
        while let Ok(Some(got)) =
            tokio::time::timeout(Duration::from_millis(300), a_in.recv()).await
        {
            assert!(
                got == Inbound::Watching(bob)
                    || got
                        == Inbound::Event {
                            user: bob,
                            payload: Bytes::from_static(b"for bob")
                        },
                "{got:?}"
            );
        }
        // B does not watch Alice: nothing for it.
        assert!(
            tokio::time::timeout(Duration::from_millis(300), b_in.recv())
                .await
                .is_err()
        );
        // One connection of two gone: still watched.
        a.unwatch(alice);
        publish_until_received(&b, &mut a_in, alice, b"still").await;
        // The last one gone: no longer.
        a.unwatch(alice);
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.publish(alice, Bytes::from_static(b"gone"));
        assert!(
            tokio::time::timeout(Duration::from_millis(500), a_in.recv())
                .await
                .is_err()
        );
        assert!(a.is_up() && b.is_up());
        assert!(b.stats().published.load(Ordering::Relaxed) >= 3);
    }

    #[tokio::test]
    async fn after_redis_restarts_the_link_resubscribes_and_says_so() {
        let mut redis = TestRedis::start();
        let port = redis.port;
        let (a, mut a_in) = link(&redis, 1);
        let (b, _b_in) = link(&redis, 2);
        assert_eq!(next(&mut a_in).await, Inbound::Resubscribed);
        let bob = UserId(9);
        a.watch(bob);
        publish_until_received(&b, &mut a_in, bob, b"before").await;
        redis.stop();
        // Published while Redis is down: dropped, and counted.
        let dropped = b.stats().dropped.load(Ordering::Relaxed);
        for _ in 0..5 {
            b.publish(bob, Bytes::from_static(b"lost"));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(b.stats().dropped.load(Ordering::Relaxed) > dropped);
        assert!(!a.is_up());
        let _redis = TestRedis::start_on(port);
        assert_eq!(next(&mut a_in).await, Inbound::Resubscribed);
        publish_until_received(&b, &mut a_in, bob, b"after").await;
        assert!(a.is_up());
        assert!(a.stats().reconnects.load(Ordering::Relaxed) >= 1);
    }

    #[tokio::test]
    async fn a_subscriber_that_went_silent_is_noticed_by_its_probe_and_reconnected() {
        let redis = TestRedis::start();
        let (a, mut a_in) = link(&redis, 1);
        let (b, _b_in) = link(&redis, 2);
        assert_eq!(next(&mut a_in).await, Inbound::Resubscribed);
        let carol = UserId(11);
        a.watch(carol);
        publish_until_received(&b, &mut a_in, carol, b"one").await;
        // The server forgets the subscriptions; the connection stays open.
        a.forget_subscriptions();
        let started = std::time::Instant::now();
        assert_eq!(next(&mut a_in).await, Inbound::Resubscribed);
        let took = started.elapsed();
        assert!(
            took >= PROBE_TIMEOUT - PROBE_EVERY && took <= PROBE_TIMEOUT + 3 * PROBE_EVERY,
            "{took:?}"
        );
        publish_until_received(&b, &mut a_in, carol, b"two").await;
    }
}
