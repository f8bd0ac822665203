//! The caller's own account: `PATCH /api/me` (display name, told live to contacts with
//! `user_updated`), `POST /api/me/password` (other sessions end) and `DELETE /api/me` (sessions
//! end, the account leaves search and contacts lists, its name is free again, its messages
//! become tombstones, its reactions on others' messages are taken back, its files stop being
//! served).

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, TestApp, User};
use crate::support::{
    admin, assert_error, assert_invalid, assert_message, assert_user, contact_names, login, react,
    PASSWORD,
};
use crate::ws_support::Ws;

const NEW_PASSWORD: &str = "a much better passphrase";

async fn patch_me(app: &TestApp, user: &User, body: Value) -> crate::helpers::Resp {
    app.call(Method::PATCH, "/api/me", Some(&user.token), Some(body))
        .await
}

async fn change_password(
    app: &TestApp,
    user: &User,
    current: &str,
    new: &str,
) -> crate::helpers::Resp {
    app.post(
        "/api/me/password",
        &user.token,
        json!({"current_password": current, "new_password": new}),
    )
    .await
}

async fn delete_me(app: &TestApp, user: &User, password: &str) -> crate::helpers::Resp {
    app.call(
        Method::DELETE,
        "/api/me",
        Some(&user.token),
        Some(json!({"password": password})),
    )
    .await
}

/// Uploads `bytes` as `name`; returns the upload object.
async fn upload(app: &TestApp, user: &User, name: &str, bytes: Vec<u8>) -> Value {
    let part = Part::bytes(bytes).file_name(name.to_owned());
    let res = app
        .client
        .post(app.url("/api/uploads"))
        .bearer_auth(&user.token)
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

/// The status a signed file link answers with.
async fn fetch_status(app: &TestApp, url: &str) -> StatusCode {
    app.client.get(app.url(url)).send().await.unwrap().status()
}

/// The next frame of type `t` within `wait`, skipping others; None if none came.
async fn maybe_next_of(ws: &mut Ws, t: &str, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let f = ws.try_next_any(left).await?;
        if f["type"] == t {
            return Some(f);
        }
    }
}

/// The audit log as `(action, actor_id, detail)`.
async fn audit_actions(app: &TestApp, admin: &User) -> Vec<(String, i64, String)> {
    crate::support::audit_entries(app, &admin.token)
        .await
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor_id"].as_i64().unwrap_or(0),
                e["detail"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

// ---- display name -------------------------------------------------------------------------------

#[tokio::test]
async fn a_new_display_name_reaches_contacts_and_own_connections_live() {
    let app = spawn_app().await;
    // Alice and bob have each other on their lists.
    let (alice, bob, _room) = app.pair("alice", "bob").await;
    app.add_contact(&bob, &alice).await;
    // Carol has alice on her list, alice does not have carol: carol is told too.
    let carol = app.register("carol").await;
    app.add_contact(&carol, &alice).await;
    let dave = app.register("dave").await;
    let mut bob_ws = app.ws(&bob.token).await;
    let mut carol_ws = app.ws(&carol.token).await;
    let mut dave_ws = app.ws(&dave.token).await;
    let mut alice_ws = app.ws(&alice.token).await;

    let r = patch_me(&app, &alice, json!({"display_name": "  Alice Liddell  "})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_user(&r.body);
    assert_eq!(r.body["display_name"], "Alice Liddell");
    assert_eq!(r.body["username"], "alice");
    assert_eq!(r.body["id"], alice.id);

    for ws in [&mut bob_ws, &mut carol_ws, &mut alice_ws] {
        let f = ws.next_of("user_updated").await;
        assert_eq!(f["user"], r.body, "{f}");
        assert_eq!(f.as_object().unwrap().len(), 2, "{f}");
    }
    assert!(
        maybe_next_of(&mut dave_ws, "user_updated", Duration::from_millis(500))
            .await
            .is_none()
    );
    // Everything that shows alice shows the new name.
    assert_eq!(contact_names(&app, &bob).await, vec!["alice".to_owned()]);
    let contacts = app.get("/api/contacts", &bob.token).await;
    assert_eq!(contacts.body[0]["user"]["display_name"], "Alice Liddell");
    let me = app.get("/api/me", &alice.token).await;
    assert_eq!(me.body["display_name"], "Alice Liddell");
    let found = app.get("/api/users/search?q=liddell", &dave.token).await;
    assert_eq!(found.body[0]["id"], alice.id, "{:?}", found.body);
    // A reconnecting client learns it from `ready`.
    let again = app.ws(&alice.token).await;
    assert_eq!(again.ready["user"]["display_name"], "Alice Liddell");
}

#[tokio::test]
async fn a_display_name_is_validated_as_at_registration() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    for bad in [
        json!({"display_name": ""}),
        json!({"display_name": "   "}),
        json!({"display_name": "\u{200B}\u{200B}"}),
        json!({"display_name": "x".repeat(65)}),
        json!({"display_name": "evil\u{202E}txt"}),
        json!({"display_name": "line\nbreak"}),
        json!({"display_name": 42}),
        json!({}),
    ] {
        let r = patch_me(&app, &alice, bad.clone()).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_invalid(&r, &["display_name"]);
    }
    let r = app
        .call(
            Method::PATCH,
            "/api/me",
            None,
            Some(json!({"display_name": "A"})),
        )
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(
        app.get("/api/me", &alice.token).await.body["display_name"],
        "alice"
    );
}

// ---- password -----------------------------------------------------------------------------------

#[tokio::test]
async fn changing_the_password_ends_every_other_session_and_keeps_this_one() {
    let app = spawn_app().await;
    let root = admin(&app, "root").await;
    let alice = app.register("alice").await;
    let phone = app.login_as("alice", "phone").await;
    let mut phone_ws = app.ws(&phone.token).await;
    let mut alice_ws = app.ws(&alice.token).await;

    // A wrong current password changes nothing.
    let r = change_password(&app, &alice, "not my password", NEW_PASSWORD).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_invalid(&r, &["current_password"]);
    // A weak new one neither (as at registration): too short, common, the username.
    for weak in ["short", "password123", &"x".repeat(129)] {
        let r = change_password(&app, &alice, PASSWORD, weak).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_invalid(&r, &["new_password"]);
    }
    let wonderland = app.register("wonderland").await;
    let r = change_password(&app, &wonderland, PASSWORD, "WonderLand").await;
    assert_invalid(&r, &["new_password"]);
    let r = app
        .post(
            "/api/me/password",
            &alice.token,
            json!({"current_password": PASSWORD}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        app.get("/api/me", &phone.token).await.status,
        StatusCode::OK
    );
    assert_eq!(login(&app, "alice", PASSWORD).await.status, StatusCode::OK);

    let r = change_password(&app, &alice, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    // The other sessions (the phone, and the login just above) are over, at once.
    assert_error(
        &app.get("/api/me", &phone.token).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    phone_ws.assert_ended_unauthorized().await;
    // This one goes on, REST and WebSocket.
    assert_eq!(
        app.get("/api/me", &alice.token).await.status,
        StatusCode::OK
    );
    alice_ws.assert_open().await;
    let list = app.get("/api/sessions", &alice.token).await;
    assert_eq!(list.body.as_array().unwrap().len(), 1, "{:?}", list.body);
    // Only the new password signs in.
    assert_error(
        &login(&app, "alice", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_eq!(
        login(&app, "alice", NEW_PASSWORD).await.status,
        StatusCode::OK
    );
    // Audited, with the owner as actor.
    let audit = audit_actions(&app, &root).await;
    assert!(
        audit
            .iter()
            .any(|(a, actor, detail)| a == "user.password_change"
                && *actor == alice.id
                && detail.contains("@alice")),
        "{audit:?}"
    );
    assert_ne!(root.id, alice.id);
}

#[tokio::test]
async fn wrong_current_passwords_are_throttled_per_account_apart_from_logins() {
    let app = spawn_app_with(|c| c.auth_limits.failed_logins_per_hour = 3).await;
    let alice = app.register("alice").await;
    for _ in 0..3 {
        let r = change_password(&app, &alice, "guess guess", NEW_PASSWORD).await;
        assert_invalid(&r, &["current_password"]);
    }
    let r = change_password(&app, &alice, PASSWORD, NEW_PASSWORD).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(r.headers.get(reqwest::header::RETRY_AFTER).is_some());
    // Deleting the account asks for the password too: the same throttle.
    let r = delete_me(&app, &alice, PASSWORD).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    // The owner's logins are not locked by it.
    assert_eq!(login(&app, "alice", PASSWORD).await.status, StatusCode::OK);
    // Nor another account.
    let bob = app.register("bob").await;
    let r = change_password(&app, &bob, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
}

// ---- deletion -----------------------------------------------------------------------------------

#[tokio::test]
async fn a_wrong_password_deletes_nothing() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    app.send(&alice, room, "a-1", "still here").await;
    let r = delete_me(&app, &alice, "not my password").await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_invalid(&r, &["password"]);
    let r = app
        .call(
            Method::DELETE,
            "/api/me",
            Some(&alice.token),
            Some(json!({})),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        app.get("/api/me", &alice.token).await.status,
        StatusCode::OK
    );
    assert_eq!(contact_names(&app, &bob).await, vec!["alice".to_owned()]);
    let history = app.full_history(&bob.token, room).await;
    assert_eq!(history[0]["body"], "still here");
}

#[tokio::test]
async fn a_deleted_account_is_gone_and_its_messages_are_tombstones() {
    let app = spawn_app().await;
    let root = admin(&app, "root").await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let carol = app.register("carol").await;
    let carol_room = app.add_contact(&alice, &carol).await;
    let phone = app.login_as("alice", "phone").await;

    // Alice's messages, one with a file; bob's answers; a file alice never sent.
    let photo = upload(&app, &alice, "photo.bin", vec![7u8; 4096]).await;
    let unsent = upload(&app, &alice, "draft.bin", vec![9u8; 2048]).await;
    let r = app
        .post(
            &format!("/api/rooms/{room}/messages"),
            &alice.token,
            json!({"client_msg_id": "a-1", "body": "see this", "attachments": [photo["id"]]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let link = r.body["attachments"][0]["url"].as_str().unwrap().to_owned();
    app.send(&bob, room, "b-1", "nice").await;
    app.send(&alice, room, "a-2", "thanks").await;
    app.send(&alice, carol_room, "c-1", "hi carol").await;
    let reacted = app.send(&bob, room, "b-2", "react to me").await;
    let r = app
        .call(
            Method::PUT,
            &format!(
                "/api/rooms/{room}/messages/{}/reactions/%F0%9F%91%8D",
                reacted["id"]
            ),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(fetch_status(&app, &link).await, StatusCode::OK);
    assert_eq!(
        fetch_status(&app, unsent["url"].as_str().unwrap()).await,
        StatusCode::OK
    );
    let changes_before = app
        .get(&format!("/api/rooms/{room}"), &bob.token)
        .await
        .body["last_change_seq"]
        .as_i64()
        .unwrap();

    let mut bob_ws = app.ws(&bob.token).await;
    let mut alice_ws = app.ws(&alice.token).await;
    let mut phone_ws = app.ws(&phone.token).await;

    let r = delete_me(&app, &alice, PASSWORD).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);

    // Every session is over: tokens refused, sockets closed with 1008.
    for token in [&alice.token, &phone.token] {
        assert_error(
            &app.get("/api/me", token).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    for ws in [&mut alice_ws, &mut phone_ws] {
        ws.assert_ended_unauthorized().await;
    }
    assert_error(
        &login(&app, "alice", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    // Bob is told: alice became "Deleted user", then each of her messages a tombstone, each
    // change numbered after the last.
    let deleted_name = format!("~deleted-{}", alice.id);
    let renamed = bob_ws.next_of("user_updated").await;
    assert_eq!(renamed["user"]["id"], alice.id);
    assert_eq!(renamed["user"]["username"], deleted_name.as_str());
    assert_eq!(renamed["user"]["display_name"], "Deleted user");
    let mut updated = Vec::new();
    while updated.len() < 3 {
        let f = bob_ws.next_of("message_updated").await;
        assert_message(&f["message"]);
        updated.push(f["message"].clone());
    }
    let change_seqs: Vec<i64> = updated
        .iter()
        .map(|m| m["change_seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        change_seqs,
        vec![changes_before + 1, changes_before + 2, changes_before + 3]
    );
    assert!(updated[..2]
        .iter()
        .all(|m| m["deleted_at"].is_string() && m["body"] == ""));
    // Then her reaction on bob's message is taken back.
    assert_eq!(updated[2]["id"], reacted["id"]);
    assert_eq!(updated[2]["reactions"], json!([]));
    assert_eq!(updated[2]["body"], "react to me");

    // The history keeps every seq; alice's are tombstones, bob's untouched but for her
    // reaction, which is gone.
    let history = app.full_history(&bob.token, room).await;
    let seqs: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    for m in &history {
        assert_message(m);
        if m["sender_id"] == alice.id {
            assert_eq!(m["body"], "", "{m}");
            assert!(m["deleted_at"].is_string(), "{m}");
            assert_eq!(m["attachments"], json!([]), "{m}");
        } else {
            assert!(m["deleted_at"].is_null(), "{m}");
            assert_ne!(m["body"], "", "{m}");
            assert_eq!(m["reactions"], json!([]), "{m}");
        }
    }
    let carol_history = app.full_history(&carol.token, carol_room).await;
    assert_eq!(carol_history[0]["body"], "", "{carol_history:?}");
    // The files are no longer served.
    assert_eq!(fetch_status(&app, &link).await, StatusCode::FORBIDDEN);
    assert_eq!(
        fetch_status(&app, unsent["url"].as_str().unwrap()).await,
        StatusCode::FORBIDDEN
    );

    // Gone from search and from every contacts list; the room stays, showing what is left.
    for q in ["alice", "deleted"] {
        let found = app
            .get(&format!("/api/users/search?q={q}"), &bob.token)
            .await;
        assert_eq!(found.body, json!([]), "{q}: {:?}", found.body);
    }
    assert!(contact_names(&app, &bob).await.is_empty());
    assert!(contact_names(&app, &carol).await.is_empty());
    let room_view = app.get(&format!("/api/rooms/{room}"), &bob.token).await;
    let members = room_view.body["members"].as_array().unwrap();
    let gone = members.iter().find(|u| u["id"] == alice.id).unwrap();
    assert_user(gone);
    assert_eq!(gone["username"], deleted_name.as_str());
    assert_eq!(gone["display_name"], "Deleted user");
    // Nobody can add or write to it.
    let r = app
        .post(
            "/api/contacts",
            &bob.token,
            json!({"username": deleted_name}),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app
        .post(
            &format!("/api/rooms/{room}/messages"),
            &bob.token,
            json!({"client_msg_id": "b-3", "body": "hello?"}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");

    // The name is free: someone else registers it, and the old tombstones stay as they were.
    let new_alice = app.register("alice").await;
    assert_ne!(new_alice.id, alice.id);
    assert!(contact_names(&app, &new_alice).await.is_empty());
    let rooms = app.get("/api/rooms", &new_alice.token).await;
    assert_eq!(rooms.body, json!([]));
    assert_eq!(app.full_history(&bob.token, room).await, history);
    let room_view = app.get(&format!("/api/rooms/{room}"), &bob.token).await;
    assert!(room_view.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["username"] == deleted_name.as_str()));
    let found = app.get("/api/users/search?q=alice", &bob.token).await;
    assert_eq!(found.body[0]["id"], new_alice.id, "{:?}", found.body);

    // Administrators cannot bring it back; the deletion is audited.
    let r = app
        .post(
            &format!("/api/admin/users/{}/reactivate", alice.id),
            &root.token,
            json!({}),
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "conflict");
    let r = app
        .post(
            &format!("/api/admin/users/{}/password", alice.id),
            &root.token,
            json!({"password": NEW_PASSWORD}),
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "conflict");
    let audit = audit_actions(&app, &root).await;
    assert!(
        audit.iter().any(|(a, actor, detail)| a == "user.delete"
            && *actor == alice.id
            && detail == "@alice"),
        "{audit:?}"
    );
}

#[tokio::test]
async fn hundreds_of_messages_are_erased_in_batches_with_gap_free_changes() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let mut ws = app.ws(&alice.token).await;
    let n = 300;
    for i in 0..n {
        ws.send_msg(room, &format!("m-{i}"), &format!("message {i}"))
            .await;
    }
    for _ in 0..n {
        ws.next_of("ack").await;
    }
    app.send(&bob, room, "b-1", "the last word").await;
    let r = delete_me(&app, &alice, PASSWORD).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let history = app.full_history(&bob.token, room).await;
    assert_eq!(history.len(), n + 1);
    assert!(history[..n]
        .iter()
        .all(|m| m["body"] == "" && m["deleted_at"].is_string()));
    assert_eq!(history[n]["body"], "the last word");
    // Every tombstone is one change, numbered 1..=n with no gap.
    let seen: Vec<i64> = app
        .full_changes(&bob.token, room)
        .await
        .iter()
        .map(|m| m["change_seq"].as_i64().unwrap())
        .collect();
    let head = app.get(&format!("/api/rooms/{room}"), &bob.token).await;
    assert_eq!(head.body["last_change_seq"], n as i64);
    assert_eq!(seen, (1..=n as i64).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_erasure_a_crash_interrupted_is_finished_by_the_next_sweep() {
    let app = spawn_app_with(|c| c.uploads.sweep_interval = Duration::from_millis(200)).await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    app.send(&alice, room, "a-1", "one").await;
    app.send(&alice, room, "a-2", "two").await;
    let mut bob_ws = app.ws(&bob.token).await;
    // As a server that died right after committing the deletion leaves it: the account is
    // deleted, its messages are not erased yet.
    app.execute_sql(&format!(
        "UPDATE users SET deleted_at = created_at, deactivated_at = created_at, \
         username = '~deleted-{0}', username_key = '~deleted-{0}' WHERE id = {0}",
        alice.id
    ));
    for _ in 0..2 {
        let f = bob_ws.next_of("message_updated").await;
        assert_eq!(f["message"]["body"], "", "{f}");
    }
    let history = app.full_history(&bob.token, room).await;
    assert!(
        history.iter().all(|m| m["deleted_at"].is_string()),
        "{history:?}"
    );
}

/// A room's newest change number, as `user` sees it.
async fn change_head(app: &TestApp, user: &User, room: i64) -> i64 {
    let r = app.get(&format!("/api/rooms/{room}"), &user.token).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["last_change_seq"].as_i64().unwrap()
}

/// Who reacted with what on `message`, as history shows it.
fn reactions_on(history: &[Value], message: &Value) -> Value {
    history
        .iter()
        .find(|m| m["id"] == message["id"])
        .unwrap_or_else(|| panic!("{} not in {history:?}", message["id"]))["reactions"]
        .clone()
}

#[tokio::test]
async fn a_deleted_accounts_reactions_are_taken_back_as_changes_everyone_sees() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let carol = app.register("carol").await;
    let carol_room = app.add_contact(&bob, &carol).await;
    let first = app
        .send(&alice, room, "a-1", "שלום — are we still on for Friday? 🎉")
        .await;
    let second = app.send(&alice, room, "a-2", "Ça marche, à vendredi").await;
    let bobs = app.send(&bob, room, "b-1", "yes! 🙌").await;
    let carols = app.send(&carol, carol_room, "c-1", "hi bob").await;
    for (user, in_room, message, emoji) in [
        (&bob, room, &first, "👍"),
        (&bob, room, &first, "👩🏽‍💻"),
        (&alice, room, &first, "❤️"),
        (&bob, room, &second, "🇺🇦"),
        (&alice, room, &bobs, "👍"),
        (&bob, carol_room, &carols, "👍🏽"),
    ] {
        let r = react(&app, user, in_room, &message["id"], emoji, true).await;
        assert_eq!(r.status, StatusCode::OK, "{emoji}: {r:?}");
    }
    let head = change_head(&app, &alice, room).await;
    let carol_head = change_head(&app, &carol, carol_room).await;
    let mut alice_ws = app.ws(&alice.token).await;
    let mut carol_ws = app.ws(&carol.token).await;

    let r = delete_me(&app, &bob, PASSWORD).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);

    // Alice sees it live, each a change numbered after the last: bob's message becomes a
    // tombstone (her reaction on it goes with it), then each reaction of his on her messages is
    // taken back, oldest first.
    let mut updated = Vec::new();
    while updated.len() < 4 {
        let f = alice_ws.next_of("message_updated").await;
        assert_eq!(f["message"]["room_id"], room, "{f}");
        assert_message(&f["message"]);
        updated.push(f["message"].clone());
    }
    let numbers: Vec<i64> = updated
        .iter()
        .map(|m| m["change_seq"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, (head + 1..=head + 4).collect::<Vec<_>>());
    let ids: Vec<&Value> = updated.iter().map(|m| &m["id"]).collect();
    assert_eq!(
        ids,
        [&bobs["id"], &first["id"], &first["id"], &second["id"]]
    );
    assert!(updated[0]["deleted_at"].is_string());
    assert_eq!(updated[0]["reactions"], json!([]));
    assert_eq!(
        updated[1]["reactions"],
        json!([{"emoji": "👩🏽‍💻", "user_ids": [bob.id]}, {"emoji": "❤️", "user_ids": [alice.id]}])
    );
    let only_alices = json!([{"emoji": "❤️", "user_ids": [alice.id]}]);
    assert_eq!(updated[2]["reactions"], only_alices);
    assert_eq!(updated[3]["reactions"], json!([]));
    assert_eq!(updated[3]["body"], "Ça marche, à vendredi");
    // Nothing more: no change twice, nothing from a room she is not in.
    assert!(
        maybe_next_of(&mut alice_ws, "message_updated", Duration::from_millis(300))
            .await
            .is_none()
    );

    // History and the changes feed agree; a client that reconnects learns the same.
    let history = app.full_history(&alice.token, room).await;
    assert_eq!(reactions_on(&history, &first), only_alices);
    assert_eq!(reactions_on(&history, &second), json!([]));
    assert_eq!(reactions_on(&history, &bobs), json!([]));
    let changes = app.full_changes(&alice.token, room).await;
    let latest: Vec<(&Value, &Value)> = changes
        .iter()
        .filter(|m| m["change_seq"].as_i64().unwrap() > head)
        .map(|m| (&m["id"], &m["change_seq"]))
        .collect();
    assert_eq!(
        latest,
        [
            (&bobs["id"], &json!(head + 1)),
            (&first["id"], &json!(head + 3)),
            (&second["id"], &json!(head + 4)),
        ]
    );
    assert_eq!(reactions_on(&changes, &first), only_alices);
    assert_eq!(change_head(&app, &alice, room).await, head + 4);

    // In bob's other room too: carol's message loses his reaction, live and in history.
    let f = carol_ws.next_of("message_updated").await;
    assert_eq!(f["message"]["id"], carols["id"]);
    assert_eq!(f["message"]["change_seq"], carol_head + 1);
    assert_eq!(f["message"]["reactions"], json!([]));
    let history = app.full_history(&carol.token, carol_room).await;
    assert_eq!(reactions_on(&history, &carols), json!([]));
}

#[tokio::test]
async fn reactions_an_interrupted_erasure_left_are_taken_back_by_the_next_sweep() {
    let app = spawn_app_with(|c| c.uploads.sweep_interval = Duration::from_millis(200)).await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let news = app.send(&bob, room, "b-1", "🎉 release day").await;
    for emoji in ["🎉", "🚀"] {
        let r = react(&app, &alice, room, &news["id"], emoji, true).await;
        assert_eq!(r.status, StatusCode::OK, "{emoji}: {r:?}");
    }
    let mut bob_ws = app.ws(&bob.token).await;
    // As a server that died after erasing alice's messages (she sent none) but before her
    // reactions leaves it.
    app.execute_sql(&format!(
        "UPDATE users SET deleted_at = created_at, deactivated_at = created_at, \
         username = '~deleted-{0}', username_key = '~deleted-{0}' WHERE id = {0}",
        alice.id
    ));
    let f = bob_ws.next_of("message_updated").await;
    assert_eq!(
        f["message"]["reactions"],
        json!([{"emoji": "🚀", "user_ids": [alice.id]}])
    );
    let f = bob_ws.next_of("message_updated").await;
    assert_eq!(f["message"]["reactions"], json!([]));
    assert_eq!(f["message"]["body"], "🎉 release day");
    let history = app.full_history(&bob.token, room).await;
    assert_eq!(reactions_on(&history, &news), json!([]));
}
