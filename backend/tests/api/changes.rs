//! Message changes: edit, delete, reply, react — every change numbered per room by `change_seq`,
//! over REST and the WebSocket, live and through `sync` / `GET .../changes`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, Resp, TestApp, User};
use crate::support::*;

/// A long, mixed-script body like users write.
const LONG: &str =
    "Ça marche 👍 — שלום עולם — supercalifragilisticexpialidocious-and-then-some-unbroken-text 🇺🇦";

async fn edit(app: &TestApp, user: &User, room: i64, id: &Value, body: &str) -> Resp {
    app.call(
        Method::PATCH,
        &format!("/api/rooms/{room}/messages/{id}"),
        Some(&user.token),
        Some(json!({ "body": body })),
    )
    .await
}

async fn delete(app: &TestApp, user: &User, room: i64, id: &Value) -> Resp {
    app.delete(&format!("/api/rooms/{room}/messages/{id}"), &user.token)
        .await
}

async fn changes(app: &TestApp, user: &User, room: i64, query: &str) -> Resp {
    app.get(&format!("/api/rooms/{room}/changes{query}"), &user.token)
        .await
}

async fn room_change_head(app: &TestApp, user: &User, room: i64) -> i64 {
    let r = app.get(&format!("/api/rooms/{room}"), &user.token).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_room(&r.body);
    r.body["last_change_seq"].as_i64().unwrap()
}

#[tokio::test]
async fn the_sender_edits_and_the_other_member_cannot() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let carol = app.register("carol").await;
    let m = app.send(&alice, room, "e1", "helo").await;
    assert_eq!(m["change_seq"], 0);
    assert!(m["edited_at"].is_null() && m["reactions"] == json!([]));
    assert_eq!(room_change_head(&app, &alice, room).await, 0);

    let r = edit(&app, &alice, room, &m["id"], &format!("  {LONG}  ")).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_message(&r.body);
    assert_eq!(r.body["body"], LONG, "validated and trimmed like a send");
    assert_eq!(
        (r.body["id"].clone(), r.body["seq"].clone()),
        (m["id"].clone(), m["seq"].clone())
    );
    assert_eq!(r.body["change_seq"], 1);
    assert_utc_time(&r.body["edited_at"]);
    assert_eq!(room_change_head(&app, &bob, room).await, 1);
    let h = history(&app, &bob, room, "").await;
    assert_eq!(h.body["messages"][0], r.body, "history shows the edit");

    // The other member: 403; someone outside the room: 404; a message of another room: 404.
    assert_error(
        &edit(&app, &bob, room, &m["id"], "mine now").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &edit(&app, &carol, room, &m["id"], "x").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let other = app.add_contact(&alice, &carol).await;
    assert_error(
        &edit(&app, &alice, other, &m["id"], "x").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &edit(&app, &alice, room, &json!(999_999), "x").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // Bodies are validated like sends.
    assert_invalid(
        &edit(&app, &alice, room, &m["id"], " \u{200b} ").await,
        &["body"],
    );
    assert_invalid(
        &edit(&app, &alice, room, &m["id"], &"x".repeat(4001)).await,
        &["body"],
    );

    // The same body again: 200, nothing recorded.
    let same = edit(&app, &alice, room, &m["id"], LONG).await;
    assert_eq!(same.status, StatusCode::OK);
    assert_eq!(same.body, r.body);
    assert_eq!(room_change_head(&app, &alice, room).await, 1);

    // Deleted: 409.
    assert_eq!(
        delete(&app, &alice, room, &m["id"]).await.status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &edit(&app, &alice, room, &m["id"], "back").await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_eq!(room_change_head(&app, &alice, room).await, 2);
}

#[tokio::test]
async fn edits_close_after_the_edit_window() {
    let app = spawn_app_with(|c| c.edit_window = Some(Duration::from_secs(1))).await;
    let (alice, _bob, room) = app.pair("alice", "bob").await;
    let m = app.send(&alice, room, "w1", "quick").await;
    assert_eq!(
        edit(&app, &alice, room, &m["id"], "quick fix").await.status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let r = edit(&app, &alice, room, &m["id"], "too late").await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        r.body["error"]["message"].as_str().unwrap().contains("1s"),
        "{r:?}"
    );
    // Deleting is not limited by the window.
    assert_eq!(
        delete(&app, &alice, room, &m["id"]).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_deleted_message_is_readable_nowhere() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let first = app.send(&bob, room, "d0", "the question").await;
    let secret = "my password is hunter2 🔑";
    let m = send_raw(
        &app,
        &alice,
        room,
        json!({"client_msg_id":"d1","body":secret,"reply_to":first["id"]}),
    )
    .await;
    assert_eq!(m.status, StatusCode::CREATED);
    let m = m.body;
    assert_eq!(m["reply_to"], first["id"]);
    assert_eq!(
        edit(&app, &alice, room, &m["id"], "my password is hunter3")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        react(&app, &bob, room, &m["id"], "😱", true).await.status,
        StatusCode::OK
    );

    // The other member cannot delete it.
    assert_error(
        &delete(&app, &bob, room, &m["id"]).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let r = delete(&app, &alice, room, &m["id"]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(room_change_head(&app, &alice, room).await, 3);
    // Again: 204, no new change.
    assert_eq!(
        delete(&app, &alice, room, &m["id"]).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(room_change_head(&app, &alice, room).await, 3);

    let h = history(&app, &bob, room, "").await;
    let tomb = &h.body["messages"][1];
    assert_message(tomb);
    assert_eq!(
        (tomb["id"].clone(), tomb["seq"].clone()),
        (m["id"].clone(), m["seq"].clone())
    );
    assert_eq!(tomb["change_seq"], 3);
    assert_utc_time(&tomb["deleted_at"]);
    // Nowhere: history, changes, contacts' last message, the admin's room view and edits.
    let admin = admin(&app, "root").await;
    let everywhere = [
        h.body.to_string(),
        changes(&app, &bob, room, "").await.body.to_string(),
        app.get("/api/contacts", &bob.token).await.body.to_string(),
        app.get(&format!("/api/admin/rooms/{room}/messages"), &admin.token)
            .await
            .body
            .to_string(),
        app.get(
            &format!("/api/admin/messages/{}/edits", m["id"]),
            &admin.token,
        )
        .await
        .body
        .to_string(),
    ];
    for text in everywhere {
        assert!(
            !text.contains("hunter"),
            "deleted text still readable: {text}"
        );
        assert!(
            !text.contains("😱"),
            "a deleted message's reactions are gone: {text}"
        );
    }
    // A deleted message cannot be reacted to or answered.
    assert_error(
        &react(&app, &bob, room, &m["id"], "👍", true).await,
        StatusCode::CONFLICT,
        "conflict",
    );
    let reply = send_raw(
        &app,
        &bob,
        room,
        json!({"client_msg_id":"d2","body":"what?","reply_to":m["id"]}),
    )
    .await;
    assert_invalid(&reply, &["reply_to"]);
}

#[tokio::test]
async fn reactions_are_idempotent_ordered_and_one_emoji_each() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let m = app.send(&alice, room, "r1", LONG).await;
    let id = &m["id"];

    let r = react(&app, &bob, room, id, "👍", true).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_message(&r.body);
    assert_eq!(
        r.body["reactions"],
        json!([{"emoji":"👍","user_ids":[bob.id]}])
    );
    assert_eq!(r.body["change_seq"], 1);
    // Again: the same, no new change.
    let again = react(&app, &bob, room, id, "👍", true).await;
    assert_eq!(
        (again.status, again.body["change_seq"].clone()),
        (StatusCode::OK, json!(1))
    );
    let r = react(&app, &alice, room, id, "👍", true).await;
    assert_eq!(
        r.body["reactions"],
        json!([{"emoji":"👍","user_ids":[bob.id, alice.id]}])
    );
    // Skin tones, ZWJ sequences, flags and keycaps are one emoji each.
    for e in ["👍🏽", "👩🏽‍💻", "🏳️‍🌈", "🇺🇦", "1️⃣", "❤️"] {
        let r = react(&app, &alice, room, id, e, true).await;
        assert_eq!(r.status, StatusCode::OK, "{e}: {r:?}");
    }
    let r = react(&app, &bob, room, id, "❤️", true).await;
    let emoji: Vec<&str> = r.body["reactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["emoji"].as_str().unwrap())
        .collect();
    assert_eq!(
        emoji,
        ["👍", "👍🏽", "👩🏽‍💻", "🏳️‍🌈", "🇺🇦", "1️⃣", "❤️"],
        "in the order first added"
    );
    assert_eq!(
        r.body["reactions"][6]["user_ids"],
        json!([alice.id, bob.id])
    );
    // Not one emoji: 422.
    for bad in ["a", "👍👍", "ab", "©", " ", "👍 "] {
        assert_invalid(&react(&app, &alice, room, id, bad, true).await, &["emoji"]);
    }
    // Taking one back, twice.
    let r = react(&app, &bob, room, id, "👍", false).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["reactions"][0],
        json!({"emoji":"👍","user_ids":[alice.id]})
    );
    let head = room_change_head(&app, &bob, room).await;
    let r = react(&app, &bob, room, id, "👍", false).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        room_change_head(&app, &bob, room).await,
        head,
        "nothing to take back: no change"
    );
    // At most 20 distinct emoji on a message.
    let m2 = app.send(&alice, room, "r2", "react to me").await;
    let twenty = [
        "😀", "😃", "😄", "😁", "😆", "😅", "😂", "🤣", "😊", "😇", "🙂", "🙃", "😉", "😌", "😍",
        "🥰", "😘", "😗", "😙", "😚",
    ];
    for e in twenty {
        assert_eq!(
            react(&app, &bob, room, &m2["id"], e, true).await.status,
            StatusCode::OK
        );
    }
    assert_invalid(
        &react(&app, &bob, room, &m2["id"], "😋", true).await,
        &["emoji"],
    );
    // An emoji already there can still be added by the other member.
    assert_eq!(
        react(&app, &alice, room, &m2["id"], "😀", true)
            .await
            .status,
        StatusCode::OK
    );
    // Outside the room: 404.
    let carol = app.register("carol").await;
    assert_error(
        &react(&app, &carol, room, id, "👍", true).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn replies_name_a_message_of_the_same_room() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let carol = app.register("carol").await;
    let other = app.add_contact(&alice, &carol).await;
    let q = app.send(&bob, room, "q", "Which one?").await;
    let elsewhere = app.send(&carol, other, "x", "elsewhere").await;

    let r = send_raw(
        &app,
        &alice,
        room,
        json!({"client_msg_id":"a1","body":"This one","reply_to":q["id"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["reply_to"], q["id"]);
    assert_invalid(
        &send_raw(
            &app,
            &alice,
            room,
            json!({"client_msg_id":"a2","body":"x","reply_to":elsewhere["id"]}),
        )
        .await,
        &["reply_to"],
    );
    assert_invalid(
        &send_raw(
            &app,
            &alice,
            room,
            json!({"client_msg_id":"a3","body":"x","reply_to":123_456}),
        )
        .await,
        &["reply_to"],
    );
    // Over the WebSocket too.
    let mut ws = app.ws(&alice.token).await;
    ws.send(json!({"type":"send","room_id":room,"client_msg_id":"w1","body":"by socket","reply_to":q["id"]})).await;
    let ack = ws.next_of("ack").await;
    assert_eq!(ack["message"]["reply_to"], q["id"]);
    ws.send(json!({"type":"send","room_id":room,"client_msg_id":"w2","body":"x","reply_to":elsewhere["id"]})).await;
    let e = ws.next_of("error").await;
    assert_eq!(
        (e["code"].clone(), e["client_msg_id"].clone()),
        (json!("validation_failed"), json!("w2"))
    );
    // Deleting the original leaves the reply pointing at its tombstone.
    assert_eq!(
        delete(&app, &bob, room, &q["id"]).await.status,
        StatusCode::NO_CONTENT
    );
    let h = history(&app, &alice, room, "").await;
    assert_eq!(h.body["messages"][1]["reply_to"], q["id"]);
}

#[tokio::test]
async fn changes_page_in_order_each_message_once_as_it_is_now() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            app.send(&alice, room, &format!("p{i}"), &format!("message {i}"))
                .await["id"]
                .clone(),
        );
    }
    // Changes 1..=6: message 0 edited (1), 1 reacted (2), 2 deleted (3), 0 edited again (4),
    // 3 reacted (5), 1 reaction taken back (6).
    edit(&app, &alice, room, &ids[0], "message 0, fixed").await;
    react(&app, &bob, room, &ids[1], "🎉", true).await;
    delete(&app, &alice, room, &ids[2]).await;
    edit(&app, &alice, room, &ids[0], "message 0, fixed twice").await;
    react(&app, &bob, room, &ids[3], "🎉", true).await;
    react(&app, &bob, room, &ids[1], "🎉", false).await;

    let all = changes(&app, &bob, room, "").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.body["last_change_seq"], 6);
    assert_eq!(all.body["has_more"], false);
    let msgs = all.body["messages"].as_array().unwrap();
    msgs.iter().for_each(assert_message);
    let order: Vec<(Value, Value)> = msgs
        .iter()
        .map(|m| (m["id"].clone(), m["change_seq"].clone()))
        .collect();
    assert_eq!(
        order,
        vec![
            (ids[2].clone(), json!(3)),
            (ids[0].clone(), json!(4)),
            (ids[3].clone(), json!(5)),
            (ids[1].clone(), json!(6)),
        ],
        "once each, at its latest change"
    );
    assert_eq!(msgs[1]["body"], "message 0, fixed twice");
    assert_eq!(msgs[3]["reactions"], json!([]));

    // Paging.
    let p1 = changes(&app, &bob, room, "?limit=2").await;
    assert_eq!(
        (
            p1.body["messages"].as_array().unwrap().len(),
            p1.body["has_more"].clone()
        ),
        (2, json!(true))
    );
    let p2 = changes(&app, &bob, room, "?after=4&limit=2").await;
    let got: Vec<Value> = p2.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["change_seq"].clone())
        .collect();
    assert_eq!(
        (got, p2.body["has_more"].clone()),
        (vec![json!(5), json!(6)], json!(false))
    );
    assert_eq!(
        changes(&app, &bob, room, "?after=6").await.body["messages"],
        json!([])
    );
    // Errors.
    assert_invalid(&changes(&app, &bob, room, "?after=-1").await, &["after"]);
    assert_invalid(&changes(&app, &bob, room, "?limit=201").await, &["limit"]);
    let carol = app.register("carol").await;
    assert_error(
        &changes(&app, &carol, room, "").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn every_change_reaches_both_members_and_the_acting_connection() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let m = app.send(&alice, room, "l1", "live").await;
    let mut a1 = app.ws(&alice.token).await;
    let mut a2 = app.ws(&alice.token).await;
    let mut b1 = app.ws(&bob.token).await;
    assert_eq!(a1.ready["rooms"][0]["last_change_seq"], 0);

    let r = edit(&app, &alice, room, &m["id"], "live, edited").await;
    for ws in [&mut a1, &mut a2, &mut b1] {
        let f = ws.next_of("message_updated").await;
        assert_eq!(f["message"], r.body);
    }
    react(&app, &bob, room, &m["id"], "🔥", true).await;
    for ws in [&mut a1, &mut a2, &mut b1] {
        let f = ws.next_of("message_updated").await;
        assert_eq!(
            (
                f["message"]["change_seq"].clone(),
                f["message"]["reactions"][0]["emoji"].clone()
            ),
            (json!(2), json!("🔥"))
        );
    }
    // An administrator's delete: message_updated, then the older message_deleted.
    let admin = admin(&app, "root").await;
    let d = app
        .delete(&format!("/api/admin/messages/{}", m["id"]), &admin.token)
        .await;
    assert_eq!(d.status, StatusCode::OK);
    for ws in [&mut a1, &mut b1] {
        let f = ws.next().await;
        assert_eq!(
            (f["type"].clone(), f["message"]["change_seq"].clone()),
            (json!("message_updated"), json!(3))
        );
        assert_eq!(ws.next().await["type"], "message_deleted");
    }
    let b2 = app.ws(&bob.token).await;
    assert_eq!(b2.ready["rooms"][0]["last_change_seq"], 3);
    // Nothing more came.
    assert!(b1.try_next(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn a_reconnecting_client_gets_exactly_the_changes_it_missed() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let mut ids = Vec::new();
    for i in 0..60 {
        ids.push(
            app.send(&alice, room, &format!("m{i}"), &format!("{LONG} #{i}"))
                .await["id"]
                .clone(),
        );
    }
    edit(&app, &alice, room, &ids[0], "seen before going offline").await;
    let b = app.ws(&bob.token).await;
    let known = b.ready["rooms"][0]["last_change_seq"].as_i64().unwrap();
    assert_eq!(known, 1);
    drop(b);

    // 50 changes while Bob is away, on 50 messages.
    for (i, id) in ids.iter().enumerate().skip(5).take(50) {
        let r = if i % 2 == 0 {
            react(&app, &alice, room, id, "👀", true).await
        } else {
            edit(&app, &alice, room, id, &format!("edited while away #{i}")).await
        };
        assert_eq!(r.status, StatusCode::OK);
    }
    let mut b = app.ws(&bob.token).await;
    assert_eq!(b.ready["rooms"][0]["last_change_seq"], 51);
    b.send(json!({"type":"sync","room_id":room,"after":60,"changes_after":known}))
        .await;
    let mut got = Vec::new();
    loop {
        let f = b.next().await;
        match f["type"].as_str() {
            Some("message_updated") => got.push(f["message"]["change_seq"].as_i64().unwrap()),
            Some("synced") => {
                assert_eq!(
                    (f["last_seq"].clone(), f["last_change_seq"].clone()),
                    (json!(60), json!(51))
                );
                break;
            }
            other => panic!("unexpected frame {other:?}: {f}"),
        }
    }
    assert_eq!(
        got,
        (2..=51).collect::<Vec<_>>(),
        "exactly the 50 missed, in order"
    );
    // Then live, each once.
    react(&app, &alice, room, &ids[0], "✅", true).await;
    assert_eq!(
        b.next_of("message_updated").await["message"]["change_seq"],
        52
    );
    assert!(
        b.try_next(Duration::from_millis(300)).await.is_none(),
        "nothing twice"
    );
    // A negative changes_after is refused.
    b.send(json!({"type":"sync","room_id":room,"after":0,"changes_after":-1}))
        .await;
    assert_eq!(b.next_of("error").await["code"], "validation_failed");
}

#[tokio::test]
async fn change_numbers_stay_gap_free_under_concurrent_changes_from_both_members() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(
            app.send(&alice, room, &format!("c{i}"), &format!("concurrent {i}"))
                .await["id"]
                .clone(),
        );
    }
    let mut watcher = app.ws(&bob.token).await;
    let emoji = ["👍", "🎉", "🔥", "😂"];
    // 200 changes at once: each member reacts with two emoji to every message, interleaved.
    let client = std::sync::Arc::new(TestApp::for_address(app.port));
    let mut tasks = Vec::new();
    for id in &ids {
        for (k, user) in [&alice, &bob].into_iter().enumerate() {
            for e in &emoji[2 * k..2 * k + 2] {
                let (app, user, id, e) = (client.clone(), user.clone(), id.clone(), *e);
                tasks.push(tokio::spawn(async move {
                    react(&app, &user, room, &id, e, true).await.status
                }));
            }
        }
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(room_change_head(&app, &alice, room).await, 200);
    let mut seen = Vec::new();
    while seen.len() < 200 {
        let f = watcher.next_of("message_updated").await;
        seen.push(f["message"]["change_seq"].as_i64().unwrap());
    }
    assert_eq!(
        seen,
        (1..=200).collect::<Vec<_>>(),
        "every change once, in order, no gaps"
    );
    let all = changes(&app, &bob, room, "?limit=200").await;
    let msgs = all.body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 50);
    for m in msgs {
        let groups = m["reactions"].as_array().unwrap();
        assert_eq!(groups.len(), 4, "{m}");
    }
}

#[tokio::test]
async fn contacts_show_the_edited_or_deleted_last_message_and_skip_deleted_unread() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    app.send(&alice, room, "u1", "one").await;
    app.send(&alice, room, "u2", "two").await;
    let last = app.send(&alice, room, "u3", "three, with a typo").await;
    assert_eq!(unread(&app, &bob, &alice).await, 3);
    edit(&app, &alice, room, &last["id"], "three").await;
    let c = contact_of(&app, &bob, &alice).await;
    assert_contact(&c);
    assert_eq!(c["last_message"]["body"], "three");
    assert_utc_time(&c["last_message"]["edited_at"]);
    delete(&app, &alice, room, &last["id"]).await;
    let c = contact_of(&app, &bob, &alice).await;
    assert_eq!(
        (c["last_message"]["body"].clone(), c["unread_count"].clone()),
        (json!(""), json!(2))
    );
    assert_utc_time(&c["last_message"]["deleted_at"]);
    mark_read(&app, &bob, room, json!(3)).await;
    assert_eq!(unread(&app, &bob, &alice).await, 0);
}

#[tokio::test]
async fn administrators_read_earlier_versions() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let m = app.send(&alice, room, "v1", "first version").await;
    edit(&app, &alice, room, &m["id"], "second version").await;
    edit(&app, &alice, room, &m["id"], "third version").await;
    let admin = admin(&app, "root").await;
    let r = app
        .get(
            &format!("/api/admin/messages/{}/edits", m["id"]),
            &admin.token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let bodies: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["first version", "second version"]);
    for e in r.body.as_array().unwrap() {
        assert_utc_time(&e["replaced_at"]);
    }
    assert_error(
        &app.get(
            &format!("/api/admin/messages/{}/edits", m["id"]),
            &bob.token,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &app.get("/api/admin/messages/999999/edits", &admin.token)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // Members see only edited_at.
    let h = history(&app, &bob, room, "").await;
    assert!(!h.body.to_string().contains("first version"));
}

/// `(body, deleted, reactions as (emoji, user) pairs)` of a message object.
fn state_of(m: &Value) -> (String, bool, std::collections::BTreeSet<(String, i64)>) {
    let mut reactions = std::collections::BTreeSet::new();
    for g in m["reactions"].as_array().unwrap() {
        for u in g["user_ids"].as_array().unwrap() {
            reactions.insert((g["emoji"].as_str().unwrap().to_owned(), u.as_i64().unwrap()));
        }
    }
    (
        m["body"].as_str().unwrap().to_owned(),
        !m["deleted_at"].is_null(),
        reactions,
    )
}

#[tokio::test]
async fn concurrent_edits_reactions_and_a_delete_on_the_same_messages_each_follow_from_the_last() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let a1 = app.send(&alice, room, "s1", LONG).await["id"].clone();
    let a2 = app.send(&alice, room, "s2", "second").await["id"].clone();
    let b1 = app.send(&bob, room, "s3", "bob's, to be deleted").await["id"].clone();
    let mut initial = std::collections::HashMap::new();
    let h = history(&app, &alice, room, "").await;
    for m in h.body["messages"].as_array().unwrap() {
        initial.insert(m["id"].to_string(), m.clone());
    }
    let mut watcher = app.ws(&bob.token).await;
    let emoji = ["👍", "🎉", "🇺🇦", "❤️"];
    // 200 requests at once, most of them landing in the same writer batches: both members
    // toggle reactions on all three messages, each edits their own, Bob deletes his midway.
    let client = std::sync::Arc::new(TestApp::for_address(app.port));
    let mut tasks = Vec::new();
    for k in 0..200usize {
        let (app, alice, bob) = (client.clone(), alice.clone(), bob.clone());
        let (a1, a2, b1) = (a1.clone(), a2.clone(), b1.clone());
        tasks.push(tokio::spawn(async move {
            let (user, target) = match k % 5 {
                0 => (&alice, &a1),
                1 => (&bob, &a1),
                2 => (&alice, &a2),
                3 => (&bob, &b1),
                _ => (&alice, &b1),
            };
            let r = if k == 100 {
                delete(&app, &bob, room, &b1).await
            } else if k % 7 == 0 {
                let own = if k % 2 == 0 {
                    (&alice, &a1)
                } else {
                    (&bob, &b1)
                };
                edit(&app, own.0, room, own.1, &format!("{LONG} — edit {k}")).await
            } else {
                react(&app, user, room, target, emoji[k % 4], (k / 4) % 2 == 0).await
            };
            (k, r.status)
        }));
    }
    for t in tasks {
        let (k, status) = t.await.unwrap();
        // Edits and new reactions on Bob's message after its deletion are 409; all else 200
        // (204 for the delete).
        let expected = if k == 100 {
            status == StatusCode::NO_CONTENT
        } else {
            status == StatusCode::OK || status == StatusCode::CONFLICT
        };
        assert!(expected, "request {k}: {status}");
    }
    let head = room_change_head(&app, &alice, room).await;
    assert!(head >= 10, "only {head} changes numbered");
    // Each frame is the message just after its change: it differs from the message's previous
    // frame by exactly one change.
    let mut last: std::collections::HashMap<String, Value> = [&a1, &a2, &b1]
        .iter()
        .map(|id| (id.to_string(), Value::Null))
        .collect();
    for n in 1..=head {
        let f = watcher.next_of("message_updated").await;
        let m = &f["message"];
        assert_eq!(m["change_seq"], n, "in order, no gaps");
        let id = m["id"].to_string();
        let before = match last.get(&id) {
            Some(Value::Null) | None => initial[&id].clone(),
            Some(v) => v.clone(),
        };
        let (b0, d0, r0) = state_of(&before);
        let (b1s, d1, r1) = state_of(m);
        assert!(!d0, "no change after a delete: {m}");
        let one_reaction = r0.symmetric_difference(&r1).count() == 1;
        let edited = b0 != b1s && r0 == r1 && !d1 && !m["edited_at"].is_null();
        let deleted = d1 && b1s.is_empty() && r1.is_empty();
        assert!(
            (one_reaction && b0 == b1s && !d1) || edited || deleted,
            "change {n} is not one change: {before} -> {m}"
        );
        last.insert(id, m.clone());
    }
    assert!(
        watcher.try_next(Duration::from_millis(300)).await.is_none(),
        "nothing more"
    );
    // The messages as stored are the last frames.
    let h = history(&app, &alice, room, "").await;
    for m in h.body["messages"].as_array().unwrap() {
        if let Some(f) = last.get(&m["id"].to_string()).filter(|f| !f.is_null()) {
            assert_eq!(m, f);
        }
    }
    let deleted = last[&b1.to_string()].clone();
    assert!(!deleted["deleted_at"].is_null(), "{deleted}");
}

#[tokio::test]
async fn a_user_changing_messages_in_a_loop_is_slowed_down_with_429() {
    let app = spawn_app_with(|c| c.max_changes_per_sec = 2).await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let m = app.send(&alice, room, "r1", "react").await["id"].clone();
    // Three seconds' worth at once.
    for k in 0..6 {
        let r = react(&app, &alice, room, &m, "👍", k % 2 == 0).await;
        assert_eq!(r.status, StatusCode::OK, "change {k}");
    }
    let r = react(&app, &alice, room, &m, "👍", true).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(retry, 1);
    let r = edit(&app, &alice, room, &m, "edited").await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    // Nothing was numbered for the refused ones; the other member is not slowed.
    assert_eq!(room_change_head(&app, &alice, room).await, 6);
    let r = react(&app, &bob, room, &m, "🎉", true).await;
    assert_eq!(r.status, StatusCode::OK);
    // A second later Alice may change again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = edit(&app, &alice, room, &m, "edited").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["change_seq"], 8);
}

#[tokio::test]
async fn a_message_takes_at_most_a_hundred_edits() {
    let app = spawn_app().await;
    let (alice, _bob, room) = app.pair("alice", "bob").await;
    let m = app.send(&alice, room, "e1", LONG).await["id"].clone();
    for k in 1..=100 {
        let r = edit(&app, &alice, room, &m, &format!("{LONG} #{k}")).await;
        assert_eq!(r.status, StatusCode::OK, "edit {k}");
    }
    let r = edit(&app, &alice, room, &m, "one more").await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("at most 100 times"));
    // Unchanged, and still deletable.
    let h = history(&app, &alice, room, "").await;
    assert_eq!(h.body["messages"][0]["body"], format!("{LONG} #100"));
    assert_eq!(
        delete(&app, &alice, room, &m).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_resend_answers_with_the_message_as_it_is_now() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let m = app.send(&alice, room, "again-1", "hello").await;
    edit(&app, &alice, room, &m["id"], "hello, edited").await;
    react(&app, &bob, room, &m["id"], "🎉", true).await;
    let again = send_raw(
        &app,
        &alice,
        room,
        json!({"client_msg_id": "again-1", "body": "hello"}),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{again:?}");
    assert_eq!(again.body["id"], m["id"]);
    assert_eq!(again.body["body"], "hello, edited");
    assert_eq!(again.body["change_seq"], 2);
    assert_eq!(
        again.body["reactions"],
        json!([{"emoji": "🎉", "user_ids": [bob.id]}])
    );
}
