//! The low findings of the security review (issue 9), each through the real server: invisible
//! text and bidi controls refused, deactivated accounts hidden and unreachable (and their old
//! tokens dead for good), the contacts cap, per-user turns and byte budgets on the heavy list
//! endpoints, and administrators' reads of rooms in the audit log.

use letschat::domain::UserId;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, spawn_app_with_state, TestApp, User};
use crate::support::{admin, assert_error, assert_invalid, history, login, register_raw, PASSWORD};

fn send_path(room: i64) -> String {
    format!("/api/rooms/{room}/messages")
}

/// Bodies with nothing visible in them.
const INVISIBLE: [&str; 6] = [
    "\u{200B}",
    "\u{2060}\u{FEFF}",
    "   \u{200D}  ",
    "\u{3164}\u{3164}",
    "\u{2800}",
    "\u{E0068}\u{E0069}",
];

#[tokio::test]
async fn invisible_bodies_are_refused_on_rest_and_websocket() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let mut ws = app.ws(&alice.token).await;
    for (i, body) in INVISIBLE.iter().enumerate() {
        let r = app
            .post(
                &send_path(room),
                &alice.token,
                json!({"client_msg_id": format!("rest-{i}"), "body": body}),
            )
            .await;
        assert_invalid(&r, &["body"]);
        ws.send_msg(room, &format!("ws-{i}"), body).await;
        let f = ws.next_of("error").await;
        assert_eq!(
            (f["code"].as_str(), f["client_msg_id"].as_str()),
            (Some("validation_failed"), Some(format!("ws-{i}").as_str())),
            "{f}"
        );
    }
    // Nothing was stored.
    let h = history(&app, &bob, room, "").await;
    assert_eq!(h.body["messages"], json!([]), "{h:?}");

    // Real text with joiners, right-to-left scripts and long words goes through unchanged.
    let long_word = "Donaudampfschifffahrtsgesellschaftskapitän".repeat(40);
    let bodies = [
        "👩‍👩‍👧‍👦 family, 👩🏽‍💻 at work, 🏳️‍🌈 and 🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}"
            .to_owned(),
        "שלום! מה שלומך היום?".to_owned(),
        "مرحبا بالعالم، كيف حالك؟ \u{200F}".to_owned(),
        "abc \u{2067}עברית\u{2069} def".to_owned(),
        long_word.clone(),
        "\u{200B}zero-width around\u{200B}".to_owned(),
    ];
    for (i, body) in bodies.iter().enumerate() {
        let m = app.send(&alice, room, &format!("ok-{i}"), body).await;
        assert_eq!(m["body"].as_str(), Some(body.trim()), "{m}");
    }
    ws.send_msg(room, "ws-ok", &bodies[0]).await;
    let ack = ws.next_of("ack").await;
    assert_eq!(ack["message"]["body"].as_str(), Some(bodies[0].as_str()));
    let h = history(&app, &bob, room, "").await;
    assert_eq!(h.body["messages"].as_array().map(Vec::len), Some(7));
    assert_eq!(
        h.body["messages"][4]["body"].as_str(),
        Some(long_word.as_str())
    );
}

#[tokio::test]
async fn display_names_with_bidi_controls_or_nothing_visible_are_refused() {
    let app = spawn_app().await;
    let root = admin(&app, "root").await;
    let bad = [
        "evil\u{202E}gnp.exe",
        "\u{2067}admin\u{2069}",
        "Mallory\u{202A}",
        "x\u{2066}y",
        "\u{200B}\u{200B}",
        "\u{3164}",
        "\u{2800}\u{2800}",
    ];
    for (i, name) in bad.iter().enumerate() {
        let r = register_raw(
            &app,
            json!({"username": format!("user{i}"), "password": PASSWORD, "display_name": name}),
        )
        .await;
        assert_invalid(&r, &["display_name"]);
        let r = app
            .post(
                "/api/admin/users",
                &root.token,
                json!({"username": format!("made{i}"), "password": PASSWORD, "display_name": name}),
            )
            .await;
        assert_invalid(&r, &["display_name"]);
    }
    // Right-to-left names, emoji and direction marks are fine.
    for (i, name) in ["דנה כהן", "سارة 🌙", "\u{200F}نور", "Zoë 👩‍🚀"]
        .iter()
        .enumerate()
    {
        let r = register_raw(
            &app,
            json!({"username": format!("fine{i}"), "password": PASSWORD, "display_name": name}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{name:?}: {r:?}");
        assert_eq!(r.body["user"]["display_name"].as_str(), Some(*name));
    }
}

#[tokio::test]
async fn deactivated_accounts_are_hidden_unreachable_and_lose_their_old_tokens() {
    let app = spawn_app().await;
    let root = admin(&app, "root").await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let carol = app.register("carol").await;
    app.send(&alice, room, "before", "hello Bob").await;
    let mut alice_ws = app.ws(&alice.token).await;

    let r = app
        .post(
            &format!("/api/admin/users/{}/deactivate", bob.id),
            &root.token,
            json!(null),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let r = app.get("/api/me", &bob.token).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(
        r.body["error"]["message"], "this account has been deactivated",
        "{r:?}"
    );

    // Not found in search, by anyone.
    for who in [&alice, &carol] {
        let r = app.get("/api/users/search?q=bob", &who.token).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, json!([]), "{r:?}");
    }
    // Cannot be added: 404 as for an unknown name, whether or not already a contact.
    for who in [&carol, &alice] {
        let r = app
            .post("/api/contacts", &who.token, json!({"username": "bob"}))
            .await;
        assert_error(&r, StatusCode::NOT_FOUND, "not_found");
        let unknown = app
            .post("/api/contacts", &who.token, json!({"username": "nobody"}))
            .await;
        assert_error(&unknown, StatusCode::NOT_FOUND, "not_found");
    }
    // Cannot be sent messages: 403 over REST and an error frame over the WebSocket.
    let r = app
        .post(
            &send_path(room),
            &alice.token,
            json!({"client_msg_id": "after", "body": "are you there?"}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    alice_ws.send_msg(room, "ws-after", "hello?").await;
    let f = alice_ws.next_of("error").await;
    assert_eq!(
        (f["code"].as_str(), f["client_msg_id"].as_str()),
        (Some("forbidden"), Some("ws-after")),
        "{f}"
    );
    let h = history(&app, &alice, room, "").await;
    assert_eq!(h.body["messages"].as_array().map(Vec::len), Some(1));

    // Reactivated: the token from before stays dead, a new login works, and he is back.
    let r = app
        .post(
            &format!("/api/admin/users/{}/reactivate", bob.id),
            &root.token,
            json!(null),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_error(
        &app.get("/api/me", &bob.token).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let fresh = login(&app, "bob", PASSWORD).await;
    assert_eq!(fresh.status, StatusCode::OK, "{fresh:?}");
    let token = fresh.body["token"].as_str().unwrap();
    assert_eq!(app.get("/api/me", token).await.status, StatusCode::OK);
    let r = app.get("/api/users/search?q=bob", &carol.token).await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(1), "{r:?}");
    app.send(&alice, room, "back", "welcome back").await;
    alice_ws.send_msg(room, "ws-back", "hi again").await;
    assert_eq!(alice_ws.next_of("ack").await["client_msg_id"], "ws-back");
}

#[tokio::test]
async fn the_contacts_list_is_capped() {
    let app = spawn_app_with(|c| c.max_contacts = 3).await;
    let alice = app.register("alice").await;
    let mut others = Vec::new();
    for name in ["bob", "carol", "dave", "erin"] {
        others.push(app.register(name).await);
    }
    for other in &others[..3] {
        let r = app
            .post(
                "/api/contacts",
                &alice.token,
                json!({"username": other.username}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    }
    // The fourth is refused; an existing one re-added still answers 200, with its own view.
    let r = app
        .post("/api/contacts", &alice.token, json!({"username": "erin"}))
        .await;
    assert_error(&r, StatusCode::CONFLICT, "conflict");
    app.send(
        &others[1],
        r_room(&app, &alice, &others[1]).await,
        "m1",
        "hi Alice",
    )
    .await;
    let r = app
        .post("/api/contacts", &alice.token, json!({"username": "carol"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["user"]["username"], "carol");
    assert_eq!(r.body["unread_count"], 1);
    assert_eq!(r.body["last_message"]["body"], "hi Alice");
    let list = app.get("/api/contacts", &alice.token).await;
    assert_eq!(list.body.as_array().map(Vec::len), Some(3));
    // Room for one again after a removal.
    let r = app
        .delete(&format!("/api/contacts/{}", others[0].id), &alice.token)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app
        .post("/api/contacts", &alice.token, json!({"username": "erin"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    // Another user's list is their own.
    let r = app
        .post(
            "/api/contacts",
            &others[3].token,
            json!({"username": "dave"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
}

/// The room `a` shares with `b`, from `a`'s contacts list.
async fn r_room(app: &TestApp, a: &User, b: &User) -> i64 {
    let list = app.get("/api/contacts", &a.token).await;
    list.body
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["user"]["id"] == b.id)
        .and_then(|c| c["room_id"].as_i64())
        .expect("a contact")
}

async fn status_of(app: &TestApp, path: &str, token: &str) -> (StatusCode, Option<String>) {
    let r = app.call(Method::GET, path, Some(token), None).await;
    if r.status == StatusCode::TOO_MANY_REQUESTS {
        assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    }
    let retry = r
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (r.status, retry)
}

const HEAVY: [&str; 4] = [
    "/api/rooms",
    "/api/contacts",
    "/api/contacts/search?q=user",
    "/api/users/search?q=user",
];

#[tokio::test]
async fn heavy_list_requests_take_turns_per_user() {
    let (app, state) = spawn_app_with_state(|c| {
        c.heavy.per_user = 1;
        c.heavy.queue_per_user = 2;
        c.heavy.wait = std::time::Duration::from_millis(300);
    })
    .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    for i in 0..3 {
        let u = app.register(&format!("user{i}")).await;
        app.add_contact(&alice, &u).await;
        app.add_contact(&bob, &u).await;
    }
    // While one of alice's list requests runs (its turn held here), her next two wait and get
    // 429 after the wait, and every other gets 429 at once; bob is not affected at all.
    let held = state.heavy.turn(UserId(alice.id)).await.unwrap();
    let burst = futures::future::join_all(
        (0..12).map(|i| status_of(&app, HEAVY[i % HEAVY.len()], &alice.token)),
    );
    let others = async {
        let mut out = Vec::new();
        for path in HEAVY.iter().chain(HEAVY.iter()) {
            out.push(status_of(&app, path, &bob.token).await);
        }
        out
    };
    let (burst, others) = tokio::join!(burst, others);
    assert!(
        burst
            .iter()
            .all(|(s, retry)| *s == StatusCode::TOO_MANY_REQUESTS && retry.as_deref() == Some("1")),
        "{burst:?}"
    );
    assert!(
        others.iter().all(|(s, _)| *s == StatusCode::OK),
        "{others:?}"
    );
    drop(held);
    // Her turn free again: she is served, and idle users are forgotten.
    for path in HEAVY {
        assert_eq!(status_of(&app, path, &alice.token).await.0, StatusCode::OK);
    }
    assert_eq!(state.heavy.active_users(), 0);

    // A real burst: 32 parallel requests of one user. Each is answered 200 or 429 (at most one
    // runs and two wait at any time), while another user's requests all succeed.
    let burst =
        futures::future::join_all((0..32).map(|_| status_of(&app, "/api/rooms", &alice.token)));
    let others = async {
        let mut out = Vec::new();
        for _ in 0..8 {
            out.push(status_of(&app, "/api/rooms", &bob.token).await);
        }
        out
    };
    let (burst, others) = tokio::join!(burst, others);
    let ok = burst.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let limited = burst
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(ok + limited, 32, "{burst:?}");
    // Both happen: she is served in turn, and the overlapping rest is turned away (here about
    // 6-10 served and 22-26 refused).
    assert!(ok >= 1 && limited >= 1, "{burst:?}");
    assert!(
        others.iter().all(|(s, _)| *s == StatusCode::OK),
        "{others:?}"
    );
}

#[tokio::test]
async fn one_users_list_responses_draw_on_a_byte_budget() {
    // A budget of 3,000 bytes refilled at 100 bytes/s: alice's lists of 12 rooms (about 250
    // bytes a room) take it into debt at once.
    let app = spawn_app_with(|c| {
        c.heavy.burst_bytes = 3_000;
        c.heavy.bytes_per_sec = 100;
    })
    .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    for i in 0..12 {
        let u = app.register(&format!("user-with-a-long-name-{i}")).await;
        app.add_contact(&alice, &u).await;
    }
    app.add_contact(&bob, &alice).await;

    // The first list is served whole, as rendered JSON.
    let first = app
        .call(Method::GET, "/api/rooms", Some(&alice.token), None)
        .await;
    assert_eq!(first.status, StatusCode::OK, "{first:?}");
    assert_eq!(
        first
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    assert_eq!(first.body.as_array().map(Vec::len), Some(13));
    let size: usize = first
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Content-Length");
    assert_eq!(size, serde_json::to_vec(&first.body).unwrap().len());
    assert!(size > 3_000, "a list of {size} bytes");

    // Then every heavy list of hers is 429 at once, saying when the budget is back above zero.
    let expected_wait = (size - 3_000).div_ceil(100);
    for path in HEAVY {
        let (status, retry) = status_of(&app, path, &alice.token).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{path}");
        let retry: usize = retry.expect("Retry-After").parse().unwrap();
        assert!(
            retry <= expected_wait && retry + 2 >= expected_wait,
            "Retry-After {retry}, debt {} bytes at 100 bytes/s",
            size - 3_000
        );
    }
    // Everything else of hers, and bob's lists, go on.
    assert_eq!(
        app.call(Method::GET, "/api/me", Some(&alice.token), None)
            .await
            .status,
        StatusCode::OK
    );
    for path in HEAVY {
        assert_eq!(
            status_of(&app, path, &bob.token).await.0,
            StatusCode::OK,
            "{path}"
        );
    }
}

#[tokio::test]
async fn admin_reads_of_a_room_are_audited_once_per_admin_room_and_hour() {
    let app = spawn_app().await;
    let root = admin(&app, "root").await;
    let second = admin(&app, "moderator").await;
    let (alice, _bob, room) = app.pair("alice", "bob").await;
    app.send(&alice, room, "m1", "private words").await;

    for _ in 0..3 {
        let r = read_room(&app, &root, room).await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        assert_eq!(r.body["messages"][0]["body"], "private words");
    }
    let entries = room_reads(&app, &root, room).await;
    assert_eq!(
        entries.len(),
        1,
        "one entry per admin, room and hour: {entries:?}"
    );
    let e = &entries[0];
    assert_eq!(e["actor_id"], json!(root.id));
    assert_eq!(e["actor_username"], "root");
    assert_eq!(e["target_type"], "room");
    let detail = e["detail"].as_str().unwrap();
    assert!(
        detail.contains("@alice") && detail.contains("@bob"),
        "{detail}"
    );

    // Another administrator's read is recorded on its own; an unknown room records nothing.
    assert_eq!(read_room(&app, &second, room).await.status, StatusCode::OK);
    let r = app.get("/api/admin/rooms/999/messages", &root.token).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let entries = room_reads(&app, &root, room).await;
    let actors: Vec<&str> = entries
        .iter()
        .map(|e| e["actor_username"].as_str().unwrap())
        .collect();
    assert_eq!(actors, ["moderator", "root"]);
    let all = app.get("/api/admin/audit?limit=200", &root.token).await;
    let reads_anywhere = all.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "room.read")
        .count();
    assert_eq!(reads_anywhere, 2);
}

async fn read_room(app: &TestApp, admin: &User, room: i64) -> crate::helpers::Resp {
    app.get(&format!("/api/admin/rooms/{room}/messages"), &admin.token)
        .await
}

async fn room_reads(app: &TestApp, admin: &User, room: i64) -> Vec<Value> {
    crate::support::audit_entries(app, &admin.token)
        .await
        .into_iter()
        .filter(|e| e["action"] == "room.read" && e["target_id"] == room)
        .collect()
}
