//! `/api/contacts`: add, list (order, last message, unread count), search, delete; and the
//! one-room-per-pair rule seen from both sides.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp, User};
use crate::support::*;

async fn add(app: &TestApp, owner: &User, username: &str) -> crate::helpers::Resp {
    app.post("/api/contacts", &owner.token, json!({"username": username}))
        .await
}

async fn search_names(app: &TestApp, user: &User, q: &str) -> Vec<String> {
    let r = app
        .get(&format!("/api/contacts/search?q={q}"), &user.token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let list = r.body.as_array().expect("array").clone();
    list.iter().for_each(assert_contact);
    list.iter()
        .map(|c| c["user"]["username"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn add_creates_a_contact_then_answers_200_with_the_same_room() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = register_named(&app, "bob", "Bob Builder").await;

    let r = add(&app, &alice, "bob").await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_contact(&r.body);
    assert_eq!(r.body["user"]["id"], json!(bob.id));
    assert_eq!(r.body["user"]["username"], "bob");
    assert_eq!(r.body["user"]["display_name"], "Bob Builder");
    assert_eq!(r.body["last_message"], Value::Null);
    assert_eq!(r.body["unread_count"], 0);
    assert_eq!(r.body["online"], false);
    let room = r.body["room_id"].as_i64().unwrap();

    // Again, in any case of the name: 200, same contact, same room.
    for name in ["bob", "BOB", "Bob"] {
        let again = add(&app, &alice, name).await;
        assert_eq!(again.status, StatusCode::OK, "{again:?}");
        assert_eq!(again.body, r.body);
    }
    // Exactly one entry in the list.
    let list = contacts(&app, &alice).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0], r.body);
    // The room is real and both are in it.
    let room_resp = app.get(&format!("/api/rooms/{room}"), &bob.token).await;
    assert_eq!(room_resp.status, StatusCode::OK);
}

#[tokio::test]
async fn add_refuses_unknown_users_and_oneself() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    assert_error(
        &add(&app, &alice, "nobody").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &add(&app, &alice, "nobody.at-all").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_invalid(&add(&app, &alice, "alice").await, &["username"]);
    assert_invalid(&add(&app, &alice, "ALICE").await, &["username"]);
    let r = app.post("/api/contacts", &alice.token, json!({})).await;
    assert_invalid(&r, &["username"]);
    let r = app
        .post("/api/contacts", &alice.token, json!({"username": 42}))
        .await;
    assert_invalid(&r, &["username"]);
    // Nothing was added, and no room was made.
    assert!(contacts(&app, &alice).await.is_empty());
    let rooms = app.get("/api/rooms", &alice.token).await;
    assert_eq!(rooms.body, json!([]));
}

#[tokio::test]
async fn one_room_per_pair_from_both_sides() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;

    let from_alice = add(&app, &alice, "bob").await;
    assert_eq!(from_alice.status, StatusCode::CREATED);
    let from_bob = add(&app, &bob, "alice").await;
    // New in bob's list, but the same room.
    assert_eq!(from_bob.status, StatusCode::CREATED, "{from_bob:?}");
    assert_eq!(from_alice.body["room_id"], from_bob.body["room_id"]);
    assert_eq!(from_bob.body["user"]["id"], json!(alice.id));
    let room = from_alice.body["room_id"].as_i64().unwrap();

    for u in [&alice, &bob] {
        let r = app.get("/api/rooms", &u.token).await;
        assert_eq!(r.status, StatusCode::OK);
        let rooms = r.body.as_array().unwrap();
        assert_eq!(rooms.len(), 1, "{}: {}", u.username, r.body);
        assert_room(&rooms[0]);
        assert_eq!(rooms[0]["id"], json!(room));
        let mut ids: Vec<i64> = rooms[0]["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect();
        ids.sort();
        let mut want = vec![alice.id, bob.id];
        want.sort();
        assert_eq!(ids, want);
    }
}

#[tokio::test]
async fn a_message_makes_the_sender_a_contact_of_the_recipient() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.add_contact(&alice, &bob).await;
    assert!(contacts(&app, &bob).await.is_empty(), "adding is one-sided");

    let sent = app.send(&alice, room, "m1", "hello bob").await;
    let list = contacts(&app, &bob).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["user"]["id"], json!(alice.id));
    assert_eq!(list[0]["room_id"], json!(room));
    assert_eq!(list[0]["unread_count"], 1);
    assert_eq!(list[0]["last_message"], sent);

    // Bob now adding alice is "already there": 200.
    let r = add(&app, &bob, "alice").await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");

    // If bob removes alice, her next message brings her back.
    let d = app
        .delete(&format!("/api/contacts/{}", alice.id), &bob.token)
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    assert!(contacts(&app, &bob).await.is_empty());
    app.send(&alice, room, "m2", "still there?").await;
    let list = contacts(&app, &bob).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["user"]["id"], json!(alice.id));
    assert_eq!(list[0]["unread_count"], 2);
}

#[tokio::test]
async fn contacts_are_sorted_by_most_recent_conversation() {
    let app = spawn_app().await;
    let me = app.register("myself").await;
    let mut others = Vec::new();
    for name in ["bob", "carol", "dave", "erin"] {
        let u = app.register(name).await;
        others.push(u);
    }
    let mut rooms = Vec::new();
    for o in &others {
        rooms.push(app.add_contact(&me, o).await);
    }
    let (bob, carol, dave, erin) = (&others[0], &others[1], &others[2], &others[3]);
    let (r_bob, r_carol, r_dave) = (rooms[0], rooms[1], rooms[2]);

    let names = contact_names(&app, &me).await;
    assert_eq!(names.len(), 4);

    app.send(&me, r_bob, "1", "to bob").await;
    app.send(&me, r_carol, "2", "to carol").await;
    let names = contact_names(&app, &me).await;
    assert_eq!(names[..2], ["carol", "bob"], "{names:?}");

    app.send(bob, r_bob, "3", "bob answers").await;
    let names = contact_names(&app, &me).await;
    assert_eq!(names[..2], ["bob", "carol"], "{names:?}");

    app.send(dave, r_dave, "4", "dave writes").await;
    let names = contact_names(&app, &me).await;
    assert_eq!(names[..3], ["dave", "bob", "carol"], "{names:?}");
    // The one without any conversation comes last.
    assert_eq!(names[3], "erin");

    app.send(&me, r_carol, "5", "carol again").await;
    assert_eq!(
        contact_names(&app, &me).await,
        ["carol", "dave", "bob", "erin"]
    );
    // Erin's first message puts her on top.
    let r_erin = rooms[3];
    app.send(erin, r_erin, "6", "hi from erin").await;
    assert_eq!(
        contact_names(&app, &me).await,
        ["erin", "carol", "dave", "bob"]
    );
    // A message in a room unrelated to me changes nothing in my list.
    let room_bc = app.add_contact(bob, carol).await;
    app.send(bob, room_bc, "7", "between bob and carol").await;
    assert_eq!(
        contact_names(&app, &me).await,
        ["erin", "carol", "dave", "bob"]
    );
}

#[tokio::test]
async fn contacts_carry_last_message_and_unread_count() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let carol = app.register("carol").await;
    let room_ac = app.add_contact(&alice, &carol).await;
    assert_eq!(app.add_contact(&bob, &alice).await, room);

    app.send(&bob, room, "b1", "one").await;
    app.send(&bob, room, "b2", "two").await;
    let last = app.send(&bob, room, "b3", "three").await;
    app.send(&carol, room_ac, "c1", "from carol").await;

    let a_bob = contact_of(&app, &alice, &bob).await;
    assert_eq!(a_bob["unread_count"], 3);
    assert_eq!(a_bob["last_message"], last);
    assert_eq!(a_bob["room_id"], json!(room));
    let a_carol = contact_of(&app, &alice, &carol).await;
    assert_eq!(a_carol["unread_count"], 1);
    assert_eq!(a_carol["last_message"]["body"], "from carol");

    // The sender has read their own messages.
    let b_alice = contact_of(&app, &bob, &alice).await;
    assert_eq!(b_alice["unread_count"], 0);
    assert_eq!(b_alice["last_message"], last);

    // Alice answers: her unread count drops to 0, bob's rises to 1, both see her message last.
    let answer = app.send(&alice, room, "a1", "hi bob").await;
    assert_eq!(unread(&app, &alice, &bob).await, 0);
    assert_eq!(unread(&app, &bob, &alice).await, 1);
    assert_eq!(contact_of(&app, &bob, &alice).await["last_message"], answer);
    assert_eq!(contact_of(&app, &alice, &bob).await["last_message"], answer);
}

#[tokio::test]
async fn contact_search_filters_only_own_contacts() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bobby = register_named(&app, "bobby", "Robert Tables").await;
    let carol = register_named(&app, "carol", "Carol BOBsdottir").await;
    register_named(&app, "bobcat", "Not A Contact").await;
    app.add_contact(&alice, &bobby).await;
    app.add_contact(&alice, &carol).await;
    // Carol has bobcat as a contact; that is not alice's business.
    let bobcat = crate::helpers::User {
        id: 0,
        username: "bobcat".into(),
        token: String::new(),
    };
    app.add_contact(&carol, &bobcat).await;

    let mut found = search_names(&app, &alice, "bob").await;
    found.sort();
    assert_eq!(found, ["bobby", "carol"]);
    assert_eq!(search_names(&app, &alice, "BOBBY").await, ["bobby"]);
    assert_eq!(search_names(&app, &alice, "tables").await, ["bobby"]);
    assert_eq!(search_names(&app, &alice, "sdott").await, ["carol"]);
    assert!(search_names(&app, &alice, "cat").await.is_empty());
    assert!(search_names(&app, &alice, "zzz").await.is_empty());
    assert!(search_names(&app, &alice, "alice").await.is_empty());
    assert!(search_names(&app, &alice, "%25").await.is_empty());
    assert!(search_names(&app, &alice, "_").await.is_empty());

    // Search results are full contacts, equal to the list entries.
    let r = app.get("/api/contacts/search?q=bobby", &alice.token).await;
    let listed = contact_of(&app, &alice, &bobby).await;
    assert_eq!(r.body, json!([listed]));

    for q in ["", "%20"] {
        let r = app
            .get(&format!("/api/contacts/search?q={q}"), &alice.token)
            .await;
        assert_invalid(&r, &["q"]);
    }
    let r = app.get("/api/contacts/search", &alice.token).await;
    assert_invalid(&r, &["q"]);
}

#[tokio::test]
async fn contact_search_keeps_the_recency_order() {
    let app = spawn_app().await;
    let me = app.register("myself").await;
    let p1 = app.register("pal1").await;
    let p2 = app.register("pal2").await;
    let r1 = app.add_contact(&me, &p1).await;
    let r2 = app.add_contact(&me, &p2).await;
    app.send(&me, r2, "x", "to pal2").await;
    app.send(&me, r1, "y", "to pal1").await;
    assert_eq!(search_names(&app, &me, "pal").await, ["pal1", "pal2"]);
    app.send(&p2, r2, "z", "pal2 again").await;
    assert_eq!(search_names(&app, &me, "pal").await, ["pal2", "pal1"]);
}

#[tokio::test]
async fn delete_removes_the_contact_but_keeps_room_and_history() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    app.add_contact(&bob, &alice).await;
    let m1 = app.send(&alice, room, "1", "first").await;
    let m2 = app.send(&bob, room, "2", "second").await;

    let r = raw(
        &app,
        Method::DELETE,
        &format!("/api/contacts/{}", bob.id),
        Some(&alice.token),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    assert!(r.text.is_empty());
    assert!(contacts(&app, &alice).await.is_empty());
    assert!(
        search_names(&app, &alice, "bob").await.is_empty(),
        "gone from search too"
    );

    // Bob's own list is untouched.
    assert_eq!(contact_names(&app, &bob).await, ["alice"]);

    // The room and its history stay, for both.
    for u in [&alice, &bob] {
        let g = app.get(&format!("/api/rooms/{room}"), &u.token).await;
        assert_eq!(g.status, StatusCode::OK);
        assert_eq!(g.body["last_seq"], 2);
        let h = history(&app, u, room, "").await;
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(h.body["messages"], json!([m1, m2]));
        let rooms = app.get("/api/rooms", &u.token).await;
        assert_eq!(rooms.body.as_array().unwrap().len(), 1);
    }
    // Alice can still write there.
    app.send(&alice, room, "3", "third").await;

    // Deleting again, or someone who never was a contact: 404.
    let again = app
        .delete(&format!("/api/contacts/{}", bob.id), &alice.token)
        .await;
    assert_error(&again, StatusCode::NOT_FOUND, "not_found");
    let carol = app.register("carol").await;
    let never = app
        .delete(&format!("/api/contacts/{}", carol.id), &alice.token)
        .await;
    assert_error(&never, StatusCode::NOT_FOUND, "not_found");
    for id in ["987654321", "0", "-1"] {
        let r = app
            .delete(&format!("/api/contacts/{id}"), &alice.token)
            .await;
        assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    }
    // Not an id at all: the parameter is named.
    for id in ["abc", "1.5"] {
        let r = app
            .delete(&format!("/api/contacts/{id}"), &alice.token)
            .await;
        assert_invalid(&r, &["user_id"]);
    }
    let me_del = app
        .delete(&format!("/api/contacts/{}", alice.id), &alice.token)
        .await;
    assert_error(&me_del, StatusCode::NOT_FOUND, "not_found");

    // Adding back: a new contact entry (201) in the same room, with the history's last message.
    let back = add(&app, &alice, "bob").await;
    assert_eq!(back.status, StatusCode::CREATED, "{back:?}");
    assert_eq!(back.body["room_id"], json!(room));
    assert_eq!(back.body["last_message"]["seq"], 3);
    assert_eq!(back.body["last_message"]["body"], "third");
}
