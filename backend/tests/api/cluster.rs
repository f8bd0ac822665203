//! Several servers on one PostgreSQL database: two real `letschat` processes with senders on
//! both hammering one room, and the writer's batches from two connections locking the same
//! rooms. PostgreSQL only (`LETSCHAT_TEST_BACKEND=postgres`): SQLite serves one process.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use letschat::db::batch_pg::{self, BatchJob, Outcome};
use letschat::domain::{RoomId, UserId};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::helpers::{fresh_database, postgres_url, spawn_app, ChildServer, TestApp, User};

/// True (after saying why) when this run is not on PostgreSQL.
fn not_on_postgres(test: &str) -> bool {
    if postgres_url().is_some() {
        return false;
    }
    eprintln!("{test}: skipped, it needs PostgreSQL (LETSCHAT_TEST_BACKEND=postgres)");
    true
}

/// Messages each sender sends.
const EACH: usize = 300;
/// Sends a sender keeps unacknowledged at once.
const WINDOW: usize = 8;

/// What one sending connection did.
struct SenderLog {
    name: String,
    user_id: i64,
    /// Its distinct client_msg_ids, in the order it sent them.
    order: Vec<String>,
    /// client_msg_id → the acknowledged message.
    acked: HashMap<String, Value>,
    /// Resends of acknowledged messages checked on the other server.
    resent: usize,
}

/// One connection of `user` to the server on `port`, keeping [`WINDOW`] sends in flight until
/// [`EACH`] are acknowledged. Every 50th message is sent twice at once (both acks must carry
/// the one stored message), and every 10th acknowledged one is resent over REST to `other`,
/// which must answer with the stored message.
async fn hammer(name: String, user: User, room: i64, port: u16, other: u16) -> SenderLog {
    let app = TestApp::for_address(port);
    let mut ws = app.ws(&user.token).await;
    let (to_resend, mut resends) = mpsc::unbounded_channel::<Value>();
    let resender = {
        let user = user.clone();
        tokio::spawn(async move {
            let other = TestApp::for_address(other);
            let mut checked = 0;
            while let Some(m) = resends.recv().await {
                let r = other
                    .post(
                        &format!("/api/rooms/{room}/messages"),
                        &user.token,
                        json!({"client_msg_id": m["client_msg_id"], "body": "a different body"}),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::OK, "resend of {m}: {:?}", r.body);
                assert_eq!(r.body, m, "a resend on the other server");
                checked += 1;
            }
            checked
        })
    };

    let mut order = Vec::with_capacity(EACH);
    let mut acked: HashMap<String, Value> = HashMap::new();
    // client_msg_id → acks still to come.
    let mut awaiting: HashMap<String, usize> = HashMap::new();
    let mut in_flight = 0;
    while order.len() < EACH || in_flight > 0 {
        while order.len() < EACH && in_flight < WINDOW {
            let i = order.len();
            let cmid = format!("{name}-{i}");
            let copies = if i % 50 == 7 { 2 } else { 1 };
            for _ in 0..copies {
                ws.send_msg(room, &cmid, &format!("{name} says {i}")).await;
            }
            awaiting.insert(cmid.clone(), copies);
            in_flight += copies;
            order.push(cmid);
        }
        let frame = ws
            .try_next(Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("{name}: no frame within 30 s"));
        match frame["type"].as_str() {
            Some("ack") => {
                let cmid = frame["client_msg_id"].as_str().unwrap().to_owned();
                let m = frame["message"].clone();
                assert_eq!(m["client_msg_id"], cmid.as_str());
                assert_eq!(m["sender_id"], user.id);
                let left = awaiting
                    .get_mut(&cmid)
                    .unwrap_or_else(|| panic!("{name}: unexpected ack {frame}"));
                *left -= 1;
                if *left == 0 {
                    awaiting.remove(&cmid);
                }
                in_flight -= 1;
                match acked.get(&cmid) {
                    Some(first) => assert_eq!(first, &m, "{name}: {cmid} acked twice, differently"),
                    None => {
                        if acked.len() % 10 == 3 {
                            to_resend.send(m.clone()).unwrap();
                        }
                        acked.insert(cmid, m);
                    }
                }
            }
            Some("error") => panic!("{name}: {frame}"),
            // Other connections' messages, read markers, presence.
            _ => {}
        }
    }
    drop(to_resend);
    let resent = resender.await.unwrap();
    SenderLog {
        name,
        user_id: user.id,
        order,
        acked,
        resent,
    }
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Member {
    #[diesel(sql_type = BigInt)]
    user_id: i64,
    #[diesel(sql_type = BigInt)]
    read_up_to: i64,
    #[diesel(sql_type = BigInt)]
    sent_count: i64,
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Head {
    #[diesel(sql_type = BigInt)]
    last_seq: i64,
    #[diesel(sql_type = BigInt)]
    last_message_id: i64,
    #[diesel(sql_type = BigInt)]
    contacts: i64,
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Seqs {
    #[diesel(sql_type = BigInt)]
    last_seq: i64,
    #[diesel(sql_type = BigInt)]
    distinct_seqs: i64,
    #[diesel(sql_type = BigInt)]
    newest_seq: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_database_store_every_acked_message_once_with_gap_free_seqs() {
    if not_on_postgres("two_servers_on_one_database") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (url, _pg) = fresh_database(dir.path());
    let env = [
        ("LETSCHAT_AUTH_RATE_PER_IP", "100000"),
        ("LETSCHAT_WS_MAX_FRAMES_PER_SEC", "100000"),
    ];
    // One after the other: the first runs the migrations.
    let first = ChildServer::start(None, &url, &env).await;
    let second = ChildServer::start(None, &url, &env).await;
    let (a, b) = (
        TestApp::for_address(first.port),
        TestApp::for_address(second.port),
    );
    let (alice, bob, room) = a.pair("alice", "bob").await;

    // Two users, each connected to both servers: four senders on one room.
    let senders = [
        ("alice-1", &alice, first.port, second.port),
        ("alice-2", &alice, second.port, first.port),
        ("bob-1", &bob, first.port, second.port),
        ("bob-2", &bob, second.port, first.port),
    ];
    let tasks: Vec<_> = senders
        .iter()
        .map(|(name, user, port, other)| {
            tokio::spawn(hammer(
                (*name).to_owned(),
                (*user).clone(),
                room,
                *port,
                *other,
            ))
        })
        .collect();
    let mut logs = Vec::new();
    for t in tasks {
        logs.push(
            tokio::time::timeout(Duration::from_secs(180), t)
                .await
                .expect("a sender finished")
                .unwrap(),
        );
    }

    // The same new client_msg_id sent to both servers at once: one stores it, both answer it.
    let mut raced = Vec::new();
    for i in 0..20 {
        let body = json!({"client_msg_id": format!("race-{i}"), "body": format!("race {i}")});
        let path = format!("/api/rooms/{room}/messages");
        let (ra, rb) = tokio::join!(
            a.post(&path, &alice.token, body.clone()),
            b.post(&path, &alice.token, body)
        );
        let mut statuses = [ra.status, rb.status];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::CREATED], "race {i}");
        assert_eq!(ra.body, rb.body, "race {i}: two servers, two messages");
        raced.push(ra.body);
    }

    let history = b.full_history(&bob.token, room).await;
    let sent: usize = logs.iter().map(|l| l.order.len()).sum::<usize>() + raced.len();
    assert_eq!(history.len(), sent, "stored messages");
    // Seqs exactly 1..=N.
    for (i, m) in history.iter().enumerate() {
        assert_eq!(m["seq"].as_i64().unwrap(), i as i64 + 1, "{m}");
    }
    // Each (sender, client_msg_id) once.
    let mut seen = HashSet::new();
    for m in &history {
        let key = (
            m["sender_id"].as_i64().unwrap(),
            m["client_msg_id"].as_str().unwrap().to_owned(),
        );
        assert!(seen.insert(key), "stored twice: {m}");
    }
    let by_seq: BTreeMap<i64, &Value> = history
        .iter()
        .map(|m| (m["seq"].as_i64().unwrap(), m))
        .collect();
    for log in &logs {
        assert_eq!(
            log.acked.len(),
            EACH,
            "{}: every send acknowledged",
            log.name
        );
        // Every acknowledged message stored as acknowledged, and a sender's messages in the
        // order it sent them.
        let mut last = 0;
        for cmid in &log.order {
            let m = &log.acked[cmid];
            let seq = m["seq"].as_i64().unwrap();
            assert_eq!(by_seq[&seq], m, "{}: {cmid}", log.name);
            assert!(
                seq > last,
                "{}: {cmid} got seq {seq} after {last}",
                log.name
            );
            last = seq;
        }
        assert!(
            log.resent >= EACH / 10,
            "{}: {} resends",
            log.name,
            log.resent
        );
        assert_eq!(
            log.user_id,
            if log.name.starts_with("alice") {
                alice.id
            } else {
                bob.id
            }
        );
    }
    for m in &raced {
        assert_eq!(by_seq[&m["seq"].as_i64().unwrap()], m);
    }

    // What the batches keep beside the messages: the room's head, each sender's read marker
    // (their newest message) and sent count, and the recipient's contact entry.
    let mut c = PgConnection::establish(&url).unwrap();
    let members: Vec<Member> = diesel::sql_query(
        "SELECT user_id, read_up_to, sent_count FROM room_members WHERE room_id = $1 \
         ORDER BY user_id",
    )
    .bind::<BigInt, _>(room)
    .load(&mut c)
    .unwrap();
    let expected: Vec<Member> = [&alice, &bob]
        .iter()
        .map(|u| {
            let mine: Vec<&Value> = history.iter().filter(|m| m["sender_id"] == u.id).collect();
            Member {
                user_id: u.id,
                read_up_to: mine
                    .iter()
                    .map(|m| m["seq"].as_i64().unwrap())
                    .max()
                    .unwrap(),
                sent_count: mine.len() as i64,
            }
        })
        .collect();
    assert_eq!(members, expected);
    let head: Head = diesel::sql_query(
        "SELECT last_seq, last_message_id, \
         (SELECT count(*) FROM contacts WHERE room_id = rooms.id) AS contacts \
         FROM rooms WHERE id = $1",
    )
    .bind::<BigInt, _>(room)
    .get_result(&mut c)
    .unwrap();
    let newest = history
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .max()
        .unwrap();
    assert_eq!(
        head,
        Head {
            last_seq: sent as i64,
            last_message_id: newest,
            contacts: 2,
        }
    );
    eprintln!(
        "two servers: {sent} messages from 4 senders, {} resends across servers, seqs 1..={sent}",
        logs.iter().map(|l| l.resent).sum::<usize>()
    );
}

/// On PostgreSQL, a server with `ann` sharing a room with `ben` and one with `cat`: the server,
/// the three users and the two rooms. None (after saying why) on SQLite.
async fn ann_ben_and_cat(test: &str) -> Option<(TestApp, Vec<User>, Vec<i64>)> {
    if not_on_postgres(test) {
        return None;
    }
    let app = spawn_app().await;
    let mut users = Vec::new();
    for name in ["ann", "ben", "cat"] {
        users.push(app.register(name).await);
    }
    let mut rooms = Vec::new();
    for other in &users[1..] {
        rooms.push(app.add_contact(&users[0], other).await);
    }
    Some((app, users, rooms))
}

fn sends<'a>(user: i64, rooms: &[i64], ids: &'a [String]) -> Vec<BatchJob<'a>> {
    ids.iter()
        .zip(rooms.iter().cycle())
        .map(|(id, room)| BatchJob::Send {
            user: UserId(user),
            room: RoomId(*room),
            client_msg_id: id,
            body: "hello",
            reply_to: None,
            attachments: &[],
        })
        .collect()
}

fn seqs_of(outcomes: &[Outcome]) -> Vec<(i64, i64)> {
    outcomes
        .iter()
        .map(|o| match o {
            Outcome::Sent(Ok(s)) => (s.message.room_id.0, s.message.seq.0),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_touching_two_rooms_in_opposite_orders_do_not_deadlock() {
    let Some((app, users, rooms)) = ann_ben_and_cat("batches_in_opposite_orders").await else {
        return;
    };
    let (ann, url) = (users[0].id, app.database_url.clone());
    const ROUNDS: usize = 40;
    const JOBS: usize = 40;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let writers: Vec<_> = [rooms.clone(), vec![rooms[1], rooms[0]]]
        .into_iter()
        .enumerate()
        .map(|(w, order)| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut c = PgConnection::establish(&url).unwrap();
                let mut retries = 0;
                for round in 0..ROUNDS {
                    let ids: Vec<String> = (0..JOBS).map(|j| format!("w{w}-{round}-{j}")).collect();
                    let jobs = sends(ann, &order, &ids);
                    barrier.wait();
                    let done = batch_pg::commit(&mut c, &jobs).unwrap();
                    retries += done.retries;
                    assert_eq!(done.outcomes.len(), JOBS);
                }
                retries
            })
        })
        .collect();
    let retries: Vec<u32> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert_eq!(retries, [0, 0], "batches were rolled back (deadlocks)");

    let mut c = PgConnection::establish(&url).unwrap();
    for room in &rooms {
        let seqs: Seqs = diesel::sql_query(
            "SELECT last_seq, \
             (SELECT count(DISTINCT seq) FROM messages WHERE room_id = $1) AS distinct_seqs, \
             (SELECT max(seq) FROM messages WHERE room_id = $1) AS newest_seq \
             FROM rooms WHERE id = $1",
        )
        .bind::<BigInt, _>(*room)
        .get_result(&mut c)
        .unwrap();
        // Both writers, half of each batch in each room.
        let n = (ROUNDS * JOBS) as i64;
        assert_eq!(
            seqs,
            Seqs {
                last_seq: n,
                distinct_seqs: n,
                newest_seq: n
            },
            "room {room}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_locks_its_rooms_in_id_order_and_runs_again_after_a_deadlock() {
    let Some((app, users, rooms)) = ann_ben_and_cat("batch_deadlock").await else {
        return;
    };
    let (ann, url) = (users[0].id, app.database_url.clone());
    let (low, high) = (rooms[0].min(rooms[1]), rooms[0].max(rooms[1]));
    let lock = |c: &mut PgConnection, room: i64, nowait: bool| {
        c.batch_execute(&format!(
            "SELECT id FROM rooms WHERE id = {room} FOR NO KEY UPDATE{}",
            if nowait { " NOWAIT" } else { "" }
        ))
    };

    // Another server's transaction holds the higher room; its deadlock check waits longer than
    // the batch's, so the batch is the one PostgreSQL rolls back.
    let mut other = PgConnection::establish(&url).unwrap();
    other
        .batch_execute("SET deadlock_timeout = '10s'; BEGIN")
        .unwrap();
    lock(&mut other, high, false).unwrap();

    // A batch whose first job is in the higher room.
    let batch = {
        let url = url.clone();
        std::thread::spawn(move || {
            let mut c = PgConnection::establish(&url).unwrap();
            let ids: Vec<String> = (0..4).map(|i| format!("m{i}")).collect();
            let done = batch_pg::commit(&mut c, &sends(ann, &[high, low], &ids)).unwrap();
            (seqs_of(&done.outcomes), done.retries)
        })
    };
    let mut probe = PgConnection::establish(&url).unwrap();
    let mut waited = 0;
    loop {
        let waiting: Count = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .get_result(&mut probe)
        .unwrap();
        if waiting.n == 1 {
            break;
        }
        waited += 1;
        assert!(waited < 500, "the batch never waited for the higher room");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Waiting for the higher room, the batch already holds the lower one: id order, not job order.
    assert!(
        lock(&mut probe, low, true).is_err(),
        "the batch does not hold the lower room"
    );

    // Now the other transaction wants the lower room: a deadlock, which rolls the batch back.
    lock(&mut other, low, false).unwrap();
    other.batch_execute("COMMIT").unwrap();
    let (seqs, retries) = batch.join().unwrap();
    assert_eq!(retries, 1, "the batch was run again once");
    assert_eq!(seqs, [(high, 1), (low, 1), (high, 2), (low, 2)]);
}

#[tokio::test]
async fn a_batch_stores_a_client_msg_id_sent_twice_in_it_once() {
    let Some((app, users, rooms)) = ann_ben_and_cat("batch_resend").await else {
        return;
    };
    let (ann, ben, room) = (UserId(users[0].id), UserId(users[1].id), RoomId(rooms[0]));
    let mut c = PgConnection::establish(&app.database_url).unwrap();
    let send = |user, id: &'static str, body: &'static str| BatchJob::Send {
        user,
        room,
        client_msg_id: id,
        body,
        reply_to: None,
        attachments: &[],
    };
    let first = batch_pg::commit(
        &mut c,
        &[
            send(ann, "x", "one"),
            send(ann, "x", "again"),
            send(ben, "x", "ben's own x"),
            send(ann, "y", "two"),
        ],
    )
    .unwrap();
    let stored = |o: &Outcome| match o {
        Outcome::Sent(Ok(s)) => (s.message.seq.0, s.message.body.clone(), s.created),
        other => panic!("{other:?}"),
    };
    let got: Vec<_> = first.outcomes.iter().map(stored).collect();
    assert_eq!(
        got,
        [
            (1, "one".to_owned(), true),
            (1, "one".to_owned(), false),
            (2, "ben's own x".to_owned(), true),
            (3, "two".to_owned(), true),
        ]
    );
    // A later batch: the stored message, no new seq.
    let second =
        batch_pg::commit(&mut c, &[send(ann, "y", "resent"), send(ann, "z", "three")]).unwrap();
    let got: Vec<_> = second.outcomes.iter().map(stored).collect();
    assert_eq!(
        got,
        [(3, "two".to_owned(), false), (4, "three".to_owned(), true)]
    );
}

#[tokio::test]
async fn the_writer_replaces_a_connection_the_database_closed() {
    let Some((app, users, rooms)) = ann_ben_and_cat("writer_reconnects").await else {
        return;
    };
    let (ann, room) = (&users[0], rooms[0]);
    app.send(ann, room, "before", "before").await;

    // What a database restart does to the server's connections.
    let mut c = PgConnection::establish(&app.database_url).unwrap();
    let closed: Count = diesel::sql_query(
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .get_result(&mut c)
    .unwrap();
    assert!(closed.n >= 1, "the server had no connection");

    // The batch that meets the closed connection fails; the client sends again, as clients do.
    let path = format!("/api/rooms/{room}/messages");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = app
            .post(
                &path,
                &ann.token,
                json!({"client_msg_id": "after", "body": "after"}),
            )
            .await;
        statuses.push(r.status);
        if r.status == StatusCode::CREATED {
            assert_eq!(r.body["seq"], 2, "{:?}", r.body);
            return;
        }
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{:?}", r.body);
    }
    panic!("the writer did not recover: {statuses:?}");
}
