//! Concurrent requests: gap-free seqs, idempotent resends racing each other, both sides of a pair
//! adding each other at once, and racing registrations.

use std::collections::{BTreeSet, HashSet};

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Resp, TestApp, User};
use crate::support::*;

async fn send(app: &TestApp, user: &User, room: i64, cmid: String, body: String) -> Resp {
    send_raw(
        app,
        user,
        room,
        json!({"client_msg_id": cmid, "body": body}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_senders_400_messages_at_once_get_seqs_1_to_400() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    const EACH: usize = 200;

    let mut requests = Vec::with_capacity(2 * EACH);
    for i in 0..EACH {
        for who in [&alice, &bob] {
            requests.push(send(
                &app,
                who,
                room,
                format!("{}-{i}", who.username),
                format!("{} says {i}", who.username),
            ));
        }
    }
    let responses = join_all(requests).await;
    let mut seqs_returned = BTreeSet::new();
    for r in &responses {
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
        assert_message(&r.body);
        assert!(
            seqs_returned.insert(r.body["seq"].as_i64().unwrap()),
            "seq handed out twice"
        );
    }
    assert_eq!(seqs_returned, (1..=400).collect());

    // The stored history, paged back from the newest: 1..=400 with no gap or duplicate.
    let mut history_msgs: Vec<Value> = Vec::new();
    let mut query = "limit=200".to_owned();
    loop {
        let r = history(&app, &alice, room, &query).await;
        assert_eq!(r.status, StatusCode::OK);
        let mut page: Vec<Value> = r.body["messages"].as_array().unwrap().clone();
        let first = page[0]["seq"].as_i64().unwrap();
        page.append(&mut history_msgs);
        history_msgs = page;
        if !r.body["has_more"].as_bool().unwrap() {
            break;
        }
        query = format!("before={first}&limit=200");
    }
    let seqs: Vec<i64> = history_msgs
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=400).collect::<Vec<_>>());

    // 200 per sender, every client_msg_id once, and each stored message is exactly what its
    // sender sent (their relative order is not promised: the requests raced).
    for who in [&alice, &bob] {
        let mine: Vec<&Value> = history_msgs
            .iter()
            .filter(|m| m["sender_id"] == json!(who.id))
            .collect();
        assert_eq!(mine.len(), EACH, "{}", who.username);
        let ids: HashSet<String> = mine
            .iter()
            .map(|m| m["client_msg_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), EACH);
        for m in mine {
            let cmid = m["client_msg_id"].as_str().unwrap();
            let i = cmid.rsplit('-').next().unwrap();
            assert_eq!(m["body"], json!(format!("{} says {i}", who.username)));
        }
    }
    let ids: HashSet<i64> = history_msgs
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 400, "message ids are unique");

    // The history agrees with what each send returned.
    for r in &responses {
        let seq = r.body["seq"].as_i64().unwrap() as usize;
        assert_eq!(history_msgs[seq - 1], r.body);
    }

    // The room and the unread counts agree with it.
    let room_resp = app.get(&format!("/api/rooms/{room}"), &bob.token).await;
    assert_eq!(room_resp.body["last_seq"], 400);
    for (me, other) in [(&alice, &bob), (&bob, &alice)] {
        let last_own = history_msgs
            .iter()
            .filter(|m| m["sender_id"] == json!(me.id))
            .map(|m| m["seq"].as_i64().unwrap())
            .max()
            .unwrap();
        assert_eq!(
            unread(&app, me, other).await,
            400 - last_own,
            "{}",
            me.username
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_resends_of_one_client_msg_id_store_one_message() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    for round in 0..5 {
        let cmid = format!("same-{round}");
        let responses =
            join_all((0..20).map(|_| send(&app, &alice, room, cmid.clone(), "once".to_owned())))
                .await;
        let created = responses
            .iter()
            .filter(|r| r.status == StatusCode::CREATED)
            .count();
        assert_eq!(created, 1, "exactly one send stores it: {responses:?}");
        for r in &responses {
            assert!(
                r.status == StatusCode::CREATED || r.status == StatusCode::OK,
                "{r:?}"
            );
            assert_eq!(
                r.body, responses[0].body,
                "all answers are the same message"
            );
        }
        assert_eq!(responses[0].body["seq"], json!(round + 1));
    }
    let (seqs, _) = page(&app, &bob, room, "").await;
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_sides_adding_each_other_at_once_share_one_room() {
    let app = spawn_app().await;
    let mut pairs = Vec::new();
    for i in 0..8 {
        let a = app.register(&format!("left{i}")).await;
        let b = app.register(&format!("right{i}")).await;
        pairs.push((a, b));
    }
    let adds = pairs.iter().flat_map(|(a, b)| {
        [
            app.post("/api/contacts", &a.token, json!({"username": b.username})),
            app.post("/api/contacts", &b.token, json!({"username": a.username})),
            app.post("/api/contacts", &a.token, json!({"username": b.username})),
        ]
    });
    let responses = join_all(adds).await;
    for (chunk, (a, b)) in responses.chunks(3).zip(&pairs) {
        for r in chunk {
            assert!(
                r.status == StatusCode::CREATED || r.status == StatusCode::OK,
                "{r:?}"
            );
        }
        let room = &chunk[0].body["room_id"];
        assert!(
            chunk.iter().all(|r| &r.body["room_id"] == room),
            "{chunk:?}"
        );
        // a added b twice at once: one of them created the contact.
        let a_created = [&chunk[0], &chunk[2]]
            .iter()
            .filter(|r| r.status == StatusCode::CREATED)
            .count();
        assert_eq!(a_created, 1);
        assert_eq!(chunk[1].status, StatusCode::CREATED);
        for u in [a, b] {
            let rooms = app.get("/api/rooms", &u.token).await.body;
            assert_eq!(rooms.as_array().unwrap().len(), 1, "{rooms}");
            assert_eq!(&rooms[0]["id"], room);
            assert_eq!(contacts(&app, u).await.len(), 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_registrations_of_one_name_create_one_account() {
    let app = spawn_app().await;
    let responses = join_all((0..12).map(|i| {
        let name = if i % 2 == 0 { "racer" } else { "RACER" };
        app.call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"username": name, "password": format!("password-{i}")})),
        )
    }))
    .await;
    let created: Vec<&Resp> = responses
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    assert_eq!(created.len(), 1, "{responses:?}");
    for r in responses.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_error(r, StatusCode::CONFLICT, "conflict");
    }
    // The winner's password is the one that works.
    let winner = responses
        .iter()
        .position(|r| r.status == StatusCode::CREATED)
        .unwrap();
    let r = login(&app, "racer", &format!("password-{winner}")).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let zed = app.register("zed").await;
    let found = app.get("/api/users/search?q=racer", &zed.token).await;
    assert_eq!(found.body.as_array().unwrap().len(), 1);
}

/// Writes a message into a room behind the server's back, as another server process on the
/// same database would: the row at `seq`, and the room's head moved to it.
fn write_outside(database_url: &str, room: i64, sender: i64, seq: i64) {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let sql = format!(
        "INSERT INTO messages (room_id, seq, sender_id, client_msg_id, body, created_at) \
         VALUES ({room}, {seq}, {sender}, 'outside-{seq}', 'from another process', CURRENT_TIMESTAMP); \
         UPDATE rooms SET last_seq = {seq}, \
         last_message_id = (SELECT max(id) FROM messages WHERE room_id = {room}) WHERE id = {room};"
    );
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let mut c = diesel::SqliteConnection::establish(path).unwrap();
        c.batch_execute("PRAGMA busy_timeout = 10000;").unwrap();
        c.batch_execute(&format!("BEGIN IMMEDIATE; {sql} COMMIT;"))
            .unwrap();
    } else {
        let mut c = diesel::PgConnection::establish(database_url).unwrap();
        c.batch_execute(&format!("BEGIN; {sql} COMMIT;")).unwrap();
    }
}

#[tokio::test]
async fn a_room_written_by_another_process_keeps_gap_free_seqs() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    // The server learns the room's head...
    assert_eq!(app.send(&alice, room, "a-1", "one").await["seq"], 1);
    // ...then another process adds seq 2 and 3.
    let url = app.database_url.clone();
    let (id, r) = (alice.id, room);
    tokio::task::spawn_blocking(move || {
        write_outside(&url, r, id, 2);
        write_outside(&url, r, id, 3);
    })
    .await
    .unwrap();
    // The next sends continue after them, and a resend is still recognised.
    assert_eq!(app.send(&bob, room, "b-1", "four").await["seq"], 4);
    assert_eq!(app.send(&alice, room, "a-2", "five").await["seq"], 5);
    let again = send(&app, &alice, room, "a-1".into(), "one".into()).await;
    assert_eq!(again.status, StatusCode::OK, "{again:?}");
    assert_eq!(again.body["seq"], 1);

    let r = history(&app, &bob, room, "limit=50").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(pluck(&r.body["messages"], "seq"), [1, 2, 3, 4, 5]);
    assert_eq!(
        pluck(&r.body["messages"], "body"),
        [
            "one",
            "from another process",
            "from another process",
            "four",
            "five"
        ]
    );
}
