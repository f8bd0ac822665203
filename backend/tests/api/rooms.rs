//! `/api/rooms` and `/api/rooms/{id}`: listing, details, and that a room is invisible to anyone
//! outside it on every room endpoint.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Resp, TestApp, User};
use crate::support::*;

fn member_ids(room: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> = room["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort();
    v
}

#[tokio::test]
async fn list_shows_exactly_the_callers_rooms() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    assert_eq!(app.get("/api/rooms", &alice.token).await.body, json!([]));

    let ab = app.add_contact(&alice, &bob).await;
    let ac = app.add_contact(&alice, &carol).await;
    let cd = app.add_contact(&carol, &dave).await;
    assert_ne!(ab, ac);

    let r = app.get("/api/rooms", &alice.token).await;
    assert_eq!(r.status, StatusCode::OK);
    let rooms = r.body.as_array().unwrap();
    rooms.iter().for_each(assert_room);
    let mut ids: Vec<i64> = rooms.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, sorted(vec![ab, ac]));
    for room in rooms {
        let ids = member_ids(room);
        assert!(ids.contains(&alice.id));
        if room["id"] == json!(ab) {
            assert_eq!(ids, sorted(vec![alice.id, bob.id]));
        } else {
            assert_eq!(ids, sorted(vec![alice.id, carol.id]));
        }
    }

    let bob_rooms = app.get("/api/rooms", &bob.token).await.body;
    assert_eq!(bob_rooms.as_array().unwrap().len(), 1);
    assert_eq!(bob_rooms[0]["id"], json!(ab));
    let carol_rooms = app.get("/api/rooms", &carol.token).await.body;
    let mut ids: Vec<i64> = carol_rooms
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, sorted(vec![ac, cd]));
}

#[tokio::test]
async fn get_returns_members_created_at_and_last_seq() {
    let app = spawn_app().await;
    let alice = register_named(&app, "alice", "Alice A").await;
    let bob = app.register("bob").await;
    let room = app.add_contact(&alice, &bob).await;

    let r = app.get(&format!("/api/rooms/{room}"), &bob.token).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_room(&r.body);
    assert_eq!(r.body["id"], json!(room));
    assert_eq!(r.body["last_seq"], 0);
    assert_eq!(member_ids(&r.body), sorted(vec![alice.id, bob.id]));
    // Members are the users as /api/me shows them.
    let alice_me = app.get("/api/me", &alice.token).await.body;
    assert!(r.body["members"].as_array().unwrap().contains(&alice_me));
    assert_eq!(
        r.body,
        app.get(&format!("/api/rooms/{room}"), &alice.token)
            .await
            .body,
        "both members see the same room"
    );
    let created_at = r.body["created_at"].clone();

    app.send(&alice, room, "1", "one").await;
    app.send(&bob, room, "2", "two").await;
    let r = app.get(&format!("/api/rooms/{room}"), &alice.token).await;
    assert_eq!(r.body["last_seq"], 2);
    assert_eq!(r.body["created_at"], created_at, "created_at does not move");

    // The list shows the same object.
    let listed = app.get("/api/rooms", &alice.token).await.body;
    assert_eq!(listed, json!([r.body]));
}

/// Every room endpoint, answering for `user` in `room`.
async fn every_room_endpoint(app: &TestApp, user: &User, room: &str) -> Vec<Resp> {
    vec![
        app.get(&format!("/api/rooms/{room}"), &user.token).await,
        app.get(&format!("/api/rooms/{room}/messages"), &user.token)
            .await,
        app.get(
            &format!("/api/rooms/{room}/messages?after=0&limit=10"),
            &user.token,
        )
        .await,
        app.post(
            &format!("/api/rooms/{room}/messages"),
            &user.token,
            json!({"client_msg_id": "intruder-1", "body": "let me in"}),
        )
        .await,
        app.post(
            &format!("/api/rooms/{room}/read"),
            &user.token,
            json!({"up_to": 1}),
        )
        .await,
    ]
}

#[tokio::test]
async fn other_peoples_rooms_are_404_on_every_endpoint() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let mallory = app.register("mallory").await;
    app.send(&alice, room, "1", "private").await;

    let foreign = every_room_endpoint(&app, &mallory, &room.to_string()).await;
    let missing = every_room_endpoint(&app, &mallory, "987654321").await;
    for (f, m) in foreign.iter().zip(&missing) {
        assert_error(f, StatusCode::NOT_FOUND, "not_found");
        assert_error(m, StatusCode::NOT_FOUND, "not_found");
        // Indistinguishable from a room that does not exist.
        assert_eq!(f.body, m.body);
    }

    // Mallory's attempts changed nothing: still one message, bob's unread count intact.
    let h = history(&app, &alice, room, "").await;
    assert_eq!(h.body["messages"].as_array().unwrap().len(), 1);
    assert_eq!(unread(&app, &bob, &alice).await, 1);
    // And mallory got no room or contact out of it.
    assert_eq!(app.get("/api/rooms", &mallory.token).await.body, json!([]));
    assert!(contacts(&app, &mallory).await.is_empty());
    assert!(contacts(&app, &alice)
        .await
        .iter()
        .all(|c| c["user"]["id"] != json!(mallory.id)));
}

#[tokio::test]
async fn malformed_room_ids_are_422_naming_the_parameter() {
    let app = spawn_app().await;
    let (alice, _, _) = app.pair("alice", "bob").await;
    for id in ["abc", "1x", "1.0", "99999999999999999999999", "%20"] {
        for r in every_room_endpoint(&app, &alice, id).await {
            assert_invalid(&r, &["room_id"]);
        }
    }
    // Integers that are no room of the caller's are 404, as every other room not theirs.
    for id in ["-1", "0"] {
        for r in every_room_endpoint(&app, &alice, id).await {
            assert_error(&r, StatusCode::NOT_FOUND, "not_found");
        }
    }
}

#[tokio::test]
async fn rooms_need_a_valid_token() {
    let app = spawn_app().await;
    let (_, _, room) = app.pair("alice", "bob").await;
    let r = app
        .call(Method::GET, &format!("/api/rooms/{room}"), None, None)
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
}

/// `user`'s `(unread_count, read_up_to)` in `room`, from `GET /api/rooms/{id}`, checked equal to
/// what `GET /api/rooms` shows for it.
async fn read_state(app: &TestApp, user: &User, room: i64) -> (i64, i64) {
    let one = app.get(&format!("/api/rooms/{room}"), &user.token).await;
    assert_eq!(one.status, StatusCode::OK, "{one:?}");
    assert_room(&one.body);
    let list = app.get("/api/rooms", &user.token).await.body;
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == json!(room))
        .expect("the room is listed")
        .clone();
    assert_room(&listed);
    assert_eq!(listed, one.body, "list and get show the same room");
    (
        one.body["unread_count"].as_i64().unwrap(),
        one.body["read_up_to"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn a_room_shows_the_callers_own_unread_count_and_read_marker() {
    let app = spawn_app().await;
    let alice = register_named(&app, "alice", "Алиса").await;
    let bob = register_named(&app, "bob", "بوب 🌙").await;
    let room = app.add_contact(&alice, &bob).await;
    assert_eq!(read_state(&app, &alice, room).await, (0, 0));

    for (i, body) in ["مرحبا يا أليس", "Как дела? 👋", "third"]
        .iter()
        .enumerate()
    {
        app.send(&bob, room, &format!("b{i}"), body).await;
    }
    // Alice has read nothing; bob, who sent them, has read his own.
    assert_eq!(read_state(&app, &alice, room).await, (3, 0));
    assert_eq!(read_state(&app, &bob, room).await, (0, 3));
    // The same number the contacts list shows.
    assert_eq!(unread(&app, &alice, &bob).await, 3);

    // Reading moves the marker and the count.
    let r = mark_read(&app, &alice, room, json!(2)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    assert_eq!(read_state(&app, &alice, room).await, (1, 2));
    assert_eq!(unread(&app, &alice, &bob).await, 1);

    // A deleted message is not unread, here as in the contacts list.
    let third = app.full_history(&bob.token, room).await[2]["id"]
        .as_i64()
        .unwrap();
    let r = app
        .delete(&format!("/api/rooms/{room}/messages/{third}"), &bob.token)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    assert_eq!(read_state(&app, &alice, room).await, (0, 2));
    assert_eq!(unread(&app, &alice, &bob).await, 0);

    // Reading past the end counts as reading to the end.
    app.send(&bob, room, "b3", "fourth").await;
    assert_eq!(read_state(&app, &alice, room).await, (1, 2));
    mark_read(&app, &alice, room, json!(1000)).await;
    assert_eq!(read_state(&app, &alice, room).await, (0, 4));
}

#[tokio::test]
async fn sending_moves_the_senders_own_read_marker_to_the_message() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    for i in 0..4 {
        app.send(&bob, room, &format!("b{i}"), "are you there?")
            .await;
    }
    assert_eq!(read_state(&app, &alice, room).await, (4, 0));
    // Replying means having read the conversation: alice's marker moves to her reply.
    let reply = app.send(&alice, room, "a0", "yes, here 🙂").await;
    assert_eq!(reply["seq"], 5);
    assert_eq!(read_state(&app, &alice, room).await, (0, 5));
    assert_eq!(unread(&app, &alice, &bob).await, 0);
    // Bob's marker stays where his own last message put it.
    assert_eq!(read_state(&app, &bob, room).await, (1, 4));

    // Over the WebSocket too.
    app.send(&bob, room, "b4", "good").await;
    assert_eq!(read_state(&app, &alice, room).await, (1, 5));
    let mut ws = app.ws(&alice.token).await;
    ws.send_msg(room, "a1", "שלום, all good").await;
    let ack = ws.next_of("ack").await;
    assert_eq!(ack["message"]["seq"], 7);
    assert_eq!(read_state(&app, &alice, room).await, (0, 7));
    // And the next `ready` says so.
    let again = app.ws(&alice.token).await;
    assert_eq!(again.ready["rooms"][0]["read_up_to"], 7);
    // Only the sender's marker moved.
    assert_eq!(read_state(&app, &bob, room).await, (1, 6));
}

#[tokio::test]
async fn a_room_whose_contact_was_removed_keeps_its_read_state() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    for i in 0..3 {
        app.send(&bob, room, &format!("b{i}"), "ping").await;
    }
    mark_read(&app, &alice, room, json!(1)).await;
    assert_eq!(unread(&app, &alice, &bob).await, 2);

    let r = app
        .delete(&format!("/api/contacts/{}", bob.id), &alice.token)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    assert!(contacts(&app, &alice).await.is_empty());
    // The room stays, with the same numbers the contact showed.
    assert_eq!(read_state(&app, &alice, room).await, (2, 1));
    mark_read(&app, &alice, room, json!(3)).await;
    assert_eq!(read_state(&app, &alice, room).await, (0, 3));
}
