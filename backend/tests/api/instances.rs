//! Two instances of the server in one process, sharing one database and a Redis of the test's
//! own: what one instance's users do reaches the other's, in order, exactly once, and what
//! Redis loses on the way is repaired from the database without the clients asking.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use letschat::config::RedisConfig;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, spawn_instance_of, TestApp, User};
use crate::nginx_support::TestNginx;
use crate::support::admin;
use crate::ws_support::Ws;

/// A `redis-server` of this test's own on a free port (the shared one is never restarted).
struct TestRedis {
    port: u16,
    child: Option<Child>,
}

impl TestRedis {
    fn start_on(port: u16) -> TestRedis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (Debian package redis-server)");
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

    fn start() -> TestRedis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        TestRedis::start_on(port)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn config(&self, drop: &Arc<AtomicU64>) -> RedisConfig {
        RedisConfig {
            url: format!("redis://127.0.0.1:{}", self.port),
            prefix: "test:".into(),
            drop_publishes: Some(Arc::clone(drop)),
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Two instances on one database and `redis`; the counters drop each instance's next
/// publications.
async fn two_instances(redis: &TestRedis) -> (TestApp, TestApp, Arc<AtomicU64>, Arc<AtomicU64>) {
    let (drop_a, drop_b) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let a = spawn_app_with(|c| c.redis = Some(redis.config(&drop_a))).await;
    let b = spawn_instance_of(&a, |c| c.redis = Some(redis.config(&drop_b))).await;
    (a, b, drop_a, drop_b)
}

/// Two instances as [`two_instances`] gives them, each also serving its metrics: A, B, the
/// counter that drops A's next publications, and A's and B's metrics ports.
async fn two_metered_instances(redis: &TestRedis) -> (TestApp, TestApp, Arc<AtomicU64>, u16, u16) {
    let (drop_a, drop_b) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (metrics_a, metrics_b) = (free_port(), free_port());
    let a = spawn_app_with(|c| {
        c.redis = Some(redis.config(&drop_a));
        c.metrics_bind = Some(format!("127.0.0.1:{metrics_a}").parse().unwrap());
    })
    .await;
    let b = spawn_instance_of(&a, |c| {
        c.redis = Some(redis.config(&drop_b));
        c.metrics_bind = Some(format!("127.0.0.1:{metrics_b}").parse().unwrap());
    })
    .await;
    (a, b, drop_a, metrics_a, metrics_b)
}

/// The next `message` frames until `n` have come (within 10 s each): their bodies.
async fn bodies(ws: &mut Ws, n: usize) -> Vec<(i64, String)> {
    let mut got = Vec::new();
    while got.len() < n {
        let f = ws
            .try_next(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("only {} of {n} messages came: {got:?}", got.len()));
        if f["type"] == "message" {
            got.push((
                f["message"]["seq"].as_i64().unwrap(),
                f["message"]["body"].as_str().unwrap().to_owned(),
            ));
        }
    }
    got
}

/// Nothing but `presence` frames for a moment: no duplicate came.
async fn nothing_more(ws: &mut Ws) {
    if let Some(f) = ws.try_next(Duration::from_millis(700)).await {
        panic!("unexpected frame: {f}");
    }
}

/// `GET /api/health` once its `broker.connected` is `connected` (within 15 s).
async fn broker_health(app: &TestApp, connected: bool) -> Value {
    for _ in 0..150 {
        let r = app.get("/api/health", "").await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        if r.body["broker"]["connected"] == connected {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("broker.connected never became {connected}");
}

/// `texts` as the `(seq, body)` pairs they get when stored from seq `first` on.
fn from_seq(first: i64, texts: &[String]) -> Vec<(i64, String)> {
    (first..).zip(texts.iter().cloned()).collect()
}

fn numbered(from: usize, to: usize, who: &str) -> Vec<String> {
    (from..=to)
        .map(|i| format!("{who} {i}: مرحبا 🌍 a longer line of text, as people write"))
        .collect()
}

#[tokio::test]
async fn users_on_different_instances_chat_live_both_ways() {
    let redis = TestRedis::start();
    let (a, b, _, _) = two_instances(&redis).await;
    let (alice, bob, room) = a.pair("alice_on_a", "bob_on_b").await;
    let mut wa = a.ws(&alice.token).await;
    let mut wb = b.ws(&bob.token).await;

    wa.send_msg(room, "a-1", "Hello from instance A 👋").await;
    assert_eq!(wa.next_of("ack").await["message"]["seq"], 1);
    assert_eq!(
        bodies(&mut wb, 1).await,
        vec![(1, "Hello from instance A 👋".to_owned())]
    );
    // Read markers and typing cross too.
    wb.send(json!({"type": "read", "room_id": room, "up_to": 1}))
        .await;
    let r = wa.next_of("read").await;
    assert_eq!(
        (r["user_id"].as_i64(), r["up_to"].as_i64()),
        (Some(bob.id), Some(1))
    );
    wa.send(json!({"type": "typing", "room_id": room})).await;
    let t = wb.next_of("typing").await;
    assert_eq!(
        (t["room_id"].as_i64(), t["user_id"].as_i64()),
        (Some(room), Some(alice.id))
    );
    wb.send_msg(room, "b-1", "And back from B").await;
    assert_eq!(wb.next_of("ack").await["message"]["seq"], 2);
    assert_eq!(
        bodies(&mut wa, 1).await,
        vec![(2, "And back from B".to_owned())]
    );
    nothing_more(&mut wa).await;
    nothing_more(&mut wb).await;
}

#[tokio::test]
async fn a_user_on_both_instances_gets_every_message_once_in_order() {
    let redis = TestRedis::start();
    let (a, b, _, metrics_a, metrics_b) = two_metered_instances(&redis).await;
    let (alice, bob, room) = a.pair("alice_twice", "bob_sender").await;
    let mut alice_a = a.ws(&alice.token).await;
    let mut alice_b = b.ws(&alice.token).await;
    let lag_before = [lag_samples(metrics_a).await, lag_samples(metrics_b).await];
    // Bob sends through both instances in turn, over REST.
    let texts = numbered(1, 30, "bob");
    for (i, t) in texts.iter().enumerate() {
        let via = if i % 2 == 0 { &a } else { &b };
        via.send(&bob, room, &format!("m-{i}"), t).await;
    }
    let want = from_seq(1, &texts);
    assert_eq!(bodies(&mut alice_a, 30).await, want);
    assert_eq!(bodies(&mut alice_b, 30).await, want);
    nothing_more(&mut alice_a).await;
    nothing_more(&mut alice_b).await;
    // Each instance timed the 15 messages that came from the other (at least: other events,
    // presence, may have crossed too), in real buckets.
    let lag_after = [lag_samples(metrics_a).await, lag_samples(metrics_b).await];
    for (before, after) in lag_before.iter().zip(lag_after) {
        assert!(after >= before + 15.0, "{before} -> {after}");
    }
    let text = metrics_text(metrics_b).await;
    assert!(
        text.contains("letschat_broker_lag_seconds_bucket{le=\"0.0001\"}"),
        "{text}"
    );
    assert!(metric(metrics_b, "letschat_broker_lag_seconds_sum").await >= 0.0);
}

#[tokio::test]
async fn a_publication_redis_never_delivered_is_repaired_by_the_next_message() {
    let redis = TestRedis::start();
    let (a, b, drop_a, metrics_a, metrics_b) = two_metered_instances(&redis).await;
    let (alice, bob, room) = a.pair("alice_lossy", "bob_lossy").await;
    let mut wa = a.ws(&alice.token).await;
    let mut wb = b.ws(&bob.token).await;
    wa.send_msg(room, "x-0", "first, delivered").await;
    assert_eq!(wa.next_of("ack").await["message"]["seq"], 1);
    assert_eq!(bodies(&mut wb, 1).await[0].0, 1);
    // Instance A's next four publications are lost on the way to Redis: two messages, each
    // published for both members.
    drop_a.store(4, Ordering::SeqCst);
    wa.send_msg(room, "x-1", "second, lost").await;
    wa.send_msg(room, "x-2", "third, lost").await;
    assert_eq!(wa.next_of("ack").await["message"]["seq"], 2);
    assert_eq!(wa.next_of("ack").await["message"]["seq"], 3);
    assert_eq!(drop_a.load(Ordering::SeqCst), 0);
    // Nothing reached Bob yet; the next message shows the gap, which B replays first.
    nothing_more(&mut wb).await;
    wa.send_msg(room, "x-3", "fourth, delivered").await;
    assert_eq!(
        bodies(&mut wb, 3).await,
        vec![
            (2, "second, lost".to_owned()),
            (3, "third, lost".to_owned()),
            (4, "fourth, delivered".to_owned()),
        ]
    );
    // A repair sends no `synced`: the client did not ask for one.
    nothing_more(&mut wb).await;
    // The metrics say what happened: A dropped four publications, B repaired a gap.
    assert_eq!(metric(metrics_a, "letschat_redis_dropped_total").await, 4.0);
    assert_eq!(metric(metrics_a, "letschat_redis_connected").await, 1.0);
    assert!(metric(metrics_a, "letschat_redis_published_total").await >= 4.0);
    assert!(metric(metrics_b, "letschat_gap_repairs_total").await >= 1.0);
    assert!(metric(metrics_b, "letschat_redis_received_total").await >= 2.0);
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn metrics_text(port: u16) -> String {
    reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Publications from other instances that `port`'s instance has timed.
async fn lag_samples(port: u16) -> f64 {
    metric(port, "letschat_broker_lag_seconds_count").await
}

/// One unlabelled sample of `/metrics` on `port`.
async fn metric(port: u16, name: &str) -> f64 {
    let text = metrics_text(port).await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[tokio::test]
async fn after_redis_restarts_what_was_sent_meanwhile_arrives_without_a_sync() {
    let mut redis = TestRedis::start();
    let port = redis.port;
    let (a, b, _, _) = two_instances(&redis).await;
    let (alice, bob, room) = a.pair("alice_restart", "bob_restart").await;
    let mut wa = a.ws(&alice.token).await;
    let mut wb = b.ws(&bob.token).await;
    wa.send_msg(room, "r-0", "before the restart").await;
    assert_eq!(wa.next_of("ack").await["message"]["seq"], 1);
    assert_eq!(
        bodies(&mut wb, 1).await,
        vec![(1, "before the restart".to_owned())]
    );

    redis.stop();
    // Sent while Redis is down: stored and acknowledged all the same.
    let texts = numbered(2, 6, "alice");
    for (i, t) in texts.iter().enumerate() {
        wa.send_msg(room, &format!("r-{}", i + 1), t).await;
    }
    for seq in 2..=6 {
        assert_eq!(wa.next_of("ack").await["message"]["seq"], seq);
    }
    // The instance still serves, and says that the link between instances is down.
    let health = broker_health(&a, false).await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["broker"]["kind"], "redis");

    let _redis = TestRedis::start_on(port);
    // B resubscribes and its connections recheck their rooms: the five arrive, in order.
    let want = from_seq(2, &texts);
    assert_eq!(bodies(&mut wb, 5).await, want);
    assert_eq!(broker_health(&a, true).await["broker"]["connected"], true);
    // And live delivery goes on.
    wa.send_msg(room, "r-9", "after the restart").await;
    assert_eq!(
        bodies(&mut wb, 1).await,
        vec![(7, "after the restart".to_owned())]
    );
    nothing_more(&mut wb).await;
}

#[tokio::test]
async fn presence_crosses_instances_and_the_contacts_list_agrees() {
    let redis = TestRedis::start();
    let (a, b, _, _) = two_instances(&redis).await;
    let (alice, bob, _room) = a.pair("alice_presence", "bob_presence").await;
    let online_on_a = |contacts: &Value| {
        contacts
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["user"]["id"].as_i64() == Some(bob.id))
            .map(|c| c["online"].as_bool().unwrap())
    };
    let mut wa = a.ws(&alice.token).await;
    assert_eq!(
        online_on_a(&a.get("/api/contacts", &alice.token).await.body),
        Some(false)
    );

    // Bob comes online on B: Alice, on A, is told, and A's contacts list agrees.
    let wb = b.ws(&bob.token).await;
    let p = wa.next_of("presence").await;
    assert_eq!(
        (p["user_id"].as_i64(), p["online"].as_bool()),
        (Some(bob.id), Some(true))
    );
    assert_eq!(
        online_on_a(&a.get("/api/contacts", &alice.token).await.body),
        Some(true)
    );

    // A second connection of Bob's, on A: not news.
    let wb2 = a.ws(&bob.token).await;
    // He leaves B; still online on A: not news either.
    drop(wb);
    assert!(
        wa.try_next_any(Duration::from_millis(800)).await.is_none(),
        "no presence change while Bob is still on A"
    );
    assert_eq!(
        online_on_a(&b.get("/api/contacts", &alice.token).await.body),
        Some(true)
    );
    // And leaves A: offline everywhere.
    drop(wb2);
    let p = wa.next_of("presence").await;
    assert_eq!(
        (p["user_id"].as_i64(), p["online"].as_bool()),
        (Some(bob.id), Some(false))
    );
    assert_eq!(
        online_on_a(&b.get("/api/contacts", &alice.token).await.body),
        Some(false)
    );
}

/// What `/api/admin/users` (the page that finds `user`) and `/api/admin/users/{id}` on `app`
/// say of whether `user` is online: both must agree.
async fn admin_sees_online(app: &TestApp, admin: &User, user: &User) -> bool {
    let page = app
        .get(
            &format!("/api/admin/users?q={}", user.username),
            &admin.token,
        )
        .await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    let listed = page.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"].as_i64() == Some(user.id))
        .map(|u| u["online"].as_bool().unwrap())
        .expect("the user is listed");
    let one = app
        .get(&format!("/api/admin/users/{}", user.id), &admin.token)
        .await;
    assert_eq!(one.status, 200, "{:?}", one.body);
    assert_eq!(one.body["online"].as_bool(), Some(listed), "{:?}", one.body);
    listed
}

/// `online_users` and `connections` of `/api/admin/stats` on `app`.
async fn admin_counts(app: &TestApp, admin: &User) -> (i64, i64) {
    let r = app.get("/api/admin/stats", &admin.token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    (
        r.body["online_users"].as_i64().unwrap(),
        r.body["connections"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn administrators_see_who_is_online_on_any_instance() {
    let redis = TestRedis::start();
    let (a, b, _, _) = two_instances(&redis).await;
    let root = admin(&a, "root_of_both").await;
    let (alice, bob, _room) = a.pair("alice_on_a_only", "bob_on_b_only").await;
    assert!(!admin_sees_online(&a, &root, &bob).await);
    assert_eq!(admin_counts(&a, &root).await, (0, 0));

    // Bob connects to B only; A's administration says he is online and counts him.
    let bob_ws = b.ws(&bob.token).await;
    assert!(admin_sees_online(&a, &root, &bob).await);
    assert_eq!(admin_counts(&a, &root).await, (1, 1));
    // With Alice on A: each counted once, wherever asked.
    let _alice_ws = a.ws(&alice.token).await;
    assert!(admin_sees_online(&b, &root, &alice).await);
    assert_eq!(admin_counts(&a, &root).await, (2, 2));
    assert_eq!(admin_counts(&b, &root).await, (2, 2));

    // Bob leaves: A says so once B has told Redis (it does on the way out, at once).
    drop(bob_ws);
    let mut counts = (0, 0);
    for _ in 0..100 {
        counts = admin_counts(&a, &root).await;
        if counts == (1, 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(counts, (1, 1));
    assert!(!admin_sees_online(&a, &root, &bob).await);
    assert!(admin_sees_online(&a, &root, &alice).await);
}

#[tokio::test]
async fn logging_out_on_one_instance_closes_that_tokens_socket_on_the_other_at_once() {
    let redis = TestRedis::start();
    let (a, b, _, _) = two_instances(&redis).await;
    let (alice, _bob, _room) = a.pair("alice_logout", "bob_logout").await;
    let mut on_b = b.ws(&alice.token).await;
    let r = a.post("/api/auth/logout", &alice.token, json!({})).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let e = on_b.next_of("error").await;
    assert_eq!(e["code"], "unauthorized");
    assert_eq!(
        on_b.closed(Duration::from_secs(5)).await,
        crate::ws_support::Closed::Code(1008)
    );
}

#[tokio::test]
async fn a_revocation_lost_between_instances_still_ends_the_socket_at_the_next_check() {
    let redis = TestRedis::start();
    let (drop_a, drop_b) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let quick = |c: &mut letschat::config::Config, d: &Arc<AtomicU64>| {
        c.redis = Some(redis.config(d));
        c.ws.position_check = Duration::from_millis(500);
    };
    let a = spawn_app_with(|c| quick(c, &drop_a)).await;
    let b = spawn_instance_of(&a, |c| quick(c, &drop_b)).await;
    let (alice, _bob, _room) = a.pair("alice_lost_logout", "bob_lost_logout").await;
    let mut on_b = b.ws(&alice.token).await;
    // The revocation event never reaches Redis.
    drop_a.store(1, Ordering::SeqCst);
    let r = a.post("/api/auth/logout", &alice.token, json!({})).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(drop_a.load(Ordering::SeqCst), 0);
    let e = on_b.next_of("error").await;
    assert_eq!(e["code"], "unauthorized");
    assert_eq!(
        on_b.closed(Duration::from_secs(5)).await,
        crate::ws_support::Closed::Code(1008)
    );
}

#[tokio::test]
async fn ending_a_session_on_one_instance_closes_its_sockets_on_the_other_at_once() {
    let redis = TestRedis::start();
    let (a, b, _, _) = two_instances(&redis).await;
    let laptop = a.register("alice_sessions").await;
    let phone = b.login_as("alice_sessions", "phone").await;
    let tablet = a.login_as("alice_sessions", "tablet").await;
    let mut phone_on_b = b.ws(&phone.token).await;
    let mut tablet_on_b = b.ws(&tablet.token).await;
    let mut laptop_on_b = b.ws(&laptop.token).await;

    // Ended on A: its socket on B gets an error frame and 1008 at once; the others stay.
    let phone_session = crate::support::session_of(&phone.token);
    let r = a
        .delete(&format!("/api/sessions/{phone_session}"), &laptop.token)
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    phone_on_b.assert_ended_unauthorized().await;
    assert_eq!(b.get("/api/me", &phone.token).await.status, 401);
    laptop_on_b.assert_open().await;

    // Every other session ended on A, from the laptop: the tablet's socket on B closes.
    let r = a
        .post("/api/sessions/revoke-others", &laptop.token, json!({}))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    tablet_on_b.assert_ended_unauthorized().await;
    assert_eq!(b.get("/api/me", &tablet.token).await.status, 401);
    laptop_on_b.assert_open().await;
    assert_eq!(b.get("/api/me", &laptop.token).await.status, 200);
}

#[tokio::test]
async fn a_new_display_name_reaches_contacts_on_the_other_instance() {
    let redis = TestRedis::start();
    let (a, b, _, _) = two_instances(&redis).await;
    let (alice, bob, _room) = a.pair("alice_renamed", "bob_sees_it").await;
    let mut bob_on_b = b.ws(&bob.token).await;
    let mut alice_on_b = b.ws(&alice.token).await;
    let r = a
        .call(
            reqwest::Method::PATCH,
            "/api/me",
            Some(&alice.token),
            Some(json!({"display_name": "Alice, renamed"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    for ws in [&mut bob_on_b, &mut alice_on_b] {
        let f = ws.next_of("user_updated").await;
        assert_eq!(f["user"], r.body, "{f}");
    }
}

/// Two real server processes on one PostgreSQL database and the test's Redis, one of them
/// SIGKILLed while messages cross between them: nothing acknowledged is lost or duplicated for
/// the receiver on the survivor (who never asks for a sync), the sender resends what was not
/// acknowledged to the survivor, and a user who was only on the killed instance is reported
/// offline to their contact within 60 s.
#[tokio::test]
async fn an_instance_killed_under_load_loses_nothing_acknowledged() {
    if crate::helpers::postgres_url().is_none() {
        eprintln!(
            "instance kill test: skipped, it needs PostgreSQL (LETSCHAT_TEST_BACKEND=postgres)"
        );
        return;
    }
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let (url, _pg) = crate::helpers::fresh_database(dir.path());
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);
    let env = [
        ("REDIS_URL", redis_url.as_str()),
        ("LETSCHAT_REDIS_PREFIX", "kill:"),
    ];
    let mut doomed = crate::helpers::ChildServer::start(None, &url, &env).await;
    let survivor = crate::helpers::ChildServer::start(None, &url, &env).await;
    let (on_doomed, on_survivor) = (
        TestApp::for_address(doomed.port),
        TestApp::for_address(survivor.port),
    );
    let (alice, bob, room) = on_doomed.pair("alice_killed", "bob_survives").await;
    let carol = on_doomed.register("carol_only_on_doomed").await;
    on_doomed.add_contact(&carol, &bob).await;
    on_doomed.add_contact(&bob, &carol).await;

    let mut bob_ws = on_survivor.ws(&bob.token).await;
    let _carol_ws = on_doomed.ws(&carol.token).await;
    let p = bob_ws.next_of("presence").await;
    assert_eq!(
        (p["user_id"].as_i64(), p["online"].as_bool()),
        (Some(carol.id), Some(true))
    );

    // Alice sends 60 messages through the doomed instance, 8 unacknowledged at a time; it is
    // killed after the 25th ack.
    let texts = numbered(1, 60, "alice");
    let mut alice_ws = on_doomed.ws(&alice.token).await;
    let mut acked: Vec<(String, i64)> = Vec::new();
    let mut next = 0;
    let mut in_flight = 0;
    loop {
        while in_flight < 8 && next < texts.len() {
            alice_ws
                .send_msg(room, &format!("k-{next}"), &texts[next])
                .await;
            next += 1;
            in_flight += 1;
        }
        let Some(f) = alice_ws.try_next(Duration::from_secs(5)).await else {
            break;
        };
        if f["type"] == "ack" {
            in_flight -= 1;
            acked.push((
                f["client_msg_id"].as_str().unwrap().to_owned(),
                f["message"]["seq"].as_i64().unwrap(),
            ));
            if acked.len() == 25 {
                doomed.kill();
                break;
            }
        }
    }
    // Alice reconnects to the survivor and resends everything not acknowledged, with the same
    // client_msg_ids, then the rest.
    let mut alice_ws = on_survivor.ws(&alice.token).await;
    let done: HashSet<String> = acked.iter().map(|(c, _)| c.clone()).collect();
    let mut waiting = 0;
    for (i, t) in texts.iter().enumerate() {
        let cmid = format!("k-{i}");
        if !done.contains(&cmid) {
            alice_ws.send_msg(room, &cmid, t).await;
            waiting += 1;
        }
    }
    while waiting > 0 {
        let f = alice_ws.next_of("ack").await;
        acked.push((
            f["client_msg_id"].as_str().unwrap().to_owned(),
            f["message"]["seq"].as_i64().unwrap(),
        ));
        waiting -= 1;
    }
    // Every message stored once: 60 seqs, one per client_msg_id.
    let seqs: HashSet<i64> = acked.iter().map(|(_, s)| *s).collect();
    assert_eq!(seqs.len(), 60, "{acked:?}");
    assert_eq!(
        (seqs.iter().min(), seqs.iter().max()),
        (Some(&1), Some(&60))
    );

    // Bob, on the survivor, gets all 60, once each, in seq order, without a sync.
    let got = bodies(&mut bob_ws, 60).await;
    assert_eq!(
        got.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        (1..=60).collect::<Vec<i64>>()
    );
    let by_seq: HashMap<i64, String> = acked
        .iter()
        .map(|(c, s)| (*s, texts[c[2..].parse::<usize>().unwrap()].clone()))
        .collect();
    for (seq, body) in &got {
        assert_eq!(Some(body), by_seq.get(seq), "seq {seq}");
    }

    // Carol was only on the killed instance: Bob hears she went offline within 60 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let f = bob_ws
            .try_next_any(left)
            .await
            .expect("carol reported offline within 60 s");
        if f["type"] == "presence" && f["user_id"].as_i64() == Some(carol.id) {
            assert_eq!(f["online"], false);
            break;
        }
    }
    let r = on_survivor.get("/api/contacts", &bob.token).await;
    let carol_row = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["user"]["id"].as_i64() == Some(carol.id))
        .cloned()
        .unwrap();
    assert_eq!(carol_row["online"], false);
}

/// Through a real nginx round-robining two real server processes: every connection of Bob's
/// (spread over both instances by the round robin) gets each of Alice's messages once, in
/// order, and her acks come back through the proxy.
#[tokio::test]
async fn through_nginx_round_robin_every_connection_gets_every_message_once() {
    if crate::helpers::postgres_url().is_none() {
        eprintln!("nginx test: skipped, it needs PostgreSQL (LETSCHAT_TEST_BACKEND=postgres)");
        return;
    }
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let (url, _pg) = crate::helpers::fresh_database(dir.path());
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);
    let env = [
        ("REDIS_URL", redis_url.as_str()),
        ("LETSCHAT_REDIS_PREFIX", "nginx:"),
    ];
    let first = crate::helpers::ChildServer::start(None, &url, &env).await;
    let second = crate::helpers::ChildServer::start(None, &url, &env).await;
    let nginx = TestNginx::start(&[first.port, second.port]);
    let front = TestApp::for_address(nginx.port);

    let (alice, bob, room) = front.pair("alice_behind_nginx", "bob_behind_nginx").await;
    // Four connections of Bob's: the round robin puts two on each instance.
    let mut bobs = Vec::new();
    for _ in 0..4 {
        bobs.push(front.ws(&bob.token).await);
    }
    let mut alice_ws = front.ws(&alice.token).await;
    let texts = numbered(1, 20, "alice");
    for (i, t) in texts.iter().enumerate() {
        alice_ws.send_msg(room, &format!("n-{i}"), t).await;
    }
    for seq in 1..=20 {
        assert_eq!(alice_ws.next_of("ack").await["message"]["seq"], seq);
    }
    let want = from_seq(1, &texts);
    for b in &mut bobs {
        assert_eq!(bodies(b, 20).await, want);
    }
    for b in &mut bobs {
        nothing_more(b).await;
    }
    // REST through the proxy sees the same history, whichever instance answers.
    for _ in 0..2 {
        let h = front.full_history(&bob.token, room).await;
        assert_eq!(h.len(), 20);
    }
}

/// The `change_seq`s of the next `n` `message_updated` frames (within 10 s each).
async fn change_seqs(ws: &mut Ws, n: usize) -> Vec<i64> {
    let mut got = Vec::new();
    while got.len() < n {
        let f = ws
            .try_next(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("only {} of {n} changes came: {got:?}", got.len()));
        if f["type"] == "message_updated" {
            got.push(f["message"]["change_seq"].as_i64().unwrap());
        }
    }
    got
}

#[tokio::test]
async fn changes_cross_instances_and_a_lost_one_is_repaired_by_the_next() {
    let redis = TestRedis::start();
    let (a, b, drop_a, _drop_b) = two_instances(&redis).await;
    let (alice, bob, room) = a.pair("alice_edits", "bob_watches").await;
    let m = a.send(&alice, room, "e-1", "a typo here").await;
    let mut wa = a.ws(&alice.token).await;
    let mut wb = b.ws(&bob.token).await;
    let path = format!("/api/rooms/{room}/messages/{}", m["id"]);
    let edit = |body: &str| serde_json::json!({ "body": body });
    let r = a
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(&alice.token),
            Some(edit("no typo here")),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(change_seqs(&mut wb, 1).await, vec![1]);
    assert_eq!(change_seqs(&mut wa, 1).await, vec![1]);
    // A reaction from B's side reaches Alice on A.
    let react = format!("{path}/reactions/%F0%9F%91%8D");
    let r = b
        .call(reqwest::Method::PUT, &react, Some(&bob.token), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(change_seqs(&mut wa, 1).await, vec![2]);
    assert_eq!(change_seqs(&mut wb, 1).await, vec![2]);
    // A's next publication (change 3, for both members) is lost on the way to Redis: Bob gets it
    // before change 4, from the database.
    drop_a.store(2, Ordering::SeqCst);
    for body in ["third version", "fourth version"] {
        let r = a
            .call(
                reqwest::Method::PATCH,
                &path,
                Some(&alice.token),
                Some(edit(body)),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(
        change_seqs(&mut wb, 1).await,
        vec![4],
        "the message as it is now, once"
    );
    nothing_more(&mut wb).await;
    assert_eq!(
        change_seqs(&mut wa, 2).await,
        vec![3, 4],
        "local connections never wait for Redis"
    );
}
