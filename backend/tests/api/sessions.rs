//! Sign-in sessions: one per token, listed by `GET /api/sessions`, ended by `DELETE
//! /api/sessions/{id}`, `POST /api/sessions/revoke-others` and logout. An ended session's token
//! is refused at once and its WebSockets close with 1008.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, TestApp, User};
use crate::support::{assert_error, assert_invalid, assert_utc_time, keys, session_of, set};

/// The caller's sessions as `GET /api/sessions` lists them.
async fn sessions(app: &TestApp, user: &User) -> Vec<Value> {
    let r = app.get("/api/sessions", &user.token).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body.as_array().expect("a list").clone()
}

fn ids(list: &[Value]) -> Vec<i64> {
    list.iter().map(|s| s["id"].as_i64().unwrap()).collect()
}

/// The token is refused, saying its session ended.
async fn assert_refused(app: &TestApp, user: &User) {
    let r = app.get("/api/me", &user.token).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("revoked"), "{message}");
}

#[tokio::test]
async fn two_logins_are_listed_most_recently_seen_first_with_the_current_one_marked() {
    let app = spawn_app().await;
    let registered = app.register("alice").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let phone = app
        .login_as("alice", "LetsChat-Phone/1.0 (Android 15)")
        .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let laptop = app
        .login_as("alice", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
        .await;

    let list = sessions(&app, &laptop).await;
    assert_eq!(
        ids(&list),
        vec![
            session_of(&laptop.token),
            session_of(&phone.token),
            session_of(&registered.token)
        ],
        "{list:?}"
    );
    for s in &list {
        assert_eq!(
            keys(s),
            set(&[
                "id",
                "created_at",
                "last_seen_at",
                "user_agent",
                "ip",
                "current"
            ]),
            "{s}"
        );
        assert_utc_time(&s["created_at"]);
        assert_utc_time(&s["last_seen_at"]);
        assert_eq!(s["ip"], "127.0.0.1", "{s}");
        let id = s["id"].as_i64().unwrap();
        assert!((1..1 << 53).contains(&id), "{s}");
    }
    assert_eq!(
        list[0]["user_agent"],
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
    );
    assert_eq!(list[1]["user_agent"], "LetsChat-Phone/1.0 (Android 15)");
    // The test client sends no User-Agent.
    assert_eq!(list[2]["user_agent"], Value::Null);
    let current: Vec<bool> = list
        .iter()
        .map(|s| s["current"].as_bool().unwrap())
        .collect();
    assert_eq!(current, vec![true, false, false]);
    // Asked with another token, another session is the current one.
    let from_phone = sessions(&app, &phone).await;
    let current: Vec<i64> = from_phone
        .iter()
        .filter(|s| s["current"] == true)
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    assert_eq!(current, vec![session_of(&phone.token)]);

    // Nobody else's sessions are listed.
    let bob = app.register("bob").await;
    assert_eq!(
        ids(&sessions(&app, &bob).await),
        vec![session_of(&bob.token)]
    );
}

#[tokio::test]
async fn a_long_user_agent_is_cut_and_control_characters_dropped() {
    let app = spawn_app().await;
    app.register("alice").await;
    let long = format!("Agent\t/{}", "x".repeat(1000));
    let alice = app.login_as("alice", &long).await;
    let list = sessions(&app, &alice).await;
    let ua = list[0]["user_agent"].as_str().unwrap();
    assert_eq!(ua.chars().count(), 256, "{ua}");
    assert!(ua.starts_with("Agent/xxx"), "{ua}");
}

#[tokio::test]
async fn ending_a_session_refuses_its_token_at_once_and_closes_its_sockets() {
    let app = spawn_app().await;
    let laptop = app.register("alice").await;
    let phone = app.login_as("alice", "phone").await;
    let mut phone_ws = app.ws(&phone.token).await;
    let mut phone_ws_2 = app.ws(&phone.token).await;
    let mut laptop_ws = app.ws(&laptop.token).await;

    let phone_session = session_of(&phone.token);
    let r = app
        .delete(&format!("/api/sessions/{phone_session}"), &laptop.token)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);

    assert_refused(&app, &phone).await;
    phone_ws.assert_ended_unauthorized().await;
    phone_ws_2.assert_ended_unauthorized().await;
    // A new socket with the ended session's token is refused too.
    let mut raw = app.ws_raw().await;
    {
        use futures::{SinkExt, StreamExt};
        raw.send(tokio_tungstenite::tungstenite::Message::text(
            json!({"type": "auth", "token": phone.token}).to_string(),
        ))
        .await
        .unwrap();
        let frame = raw.next().await.unwrap().unwrap();
        let e: Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
        assert_eq!(e["code"], "unauthorized", "{e}");
    }
    // The other session goes on.
    laptop_ws.assert_open().await;
    assert_eq!(
        app.get("/api/me", &laptop.token).await.status,
        StatusCode::OK
    );
    assert_eq!(
        ids(&sessions(&app, &laptop).await),
        vec![session_of(&laptop.token)]
    );
    // Ending it again: it is gone.
    let again = app
        .delete(&format!("/api/sessions/{phone_session}"), &laptop.token)
        .await;
    assert_error(&again, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn another_users_session_is_not_found_and_stays() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let mut alice_ws = app.ws(&alice.token).await;
    let theirs = session_of(&alice.token);
    let r = app
        .delete(&format!("/api/sessions/{theirs}"), &bob.token)
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    for path in [
        "/api/sessions/0",
        "/api/sessions/-1",
        "/api/sessions/9007199254740993",
    ] {
        let r = app.delete(path, &bob.token).await;
        assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    }
    // Not an id at all: the parameter is named.
    let r = app.delete("/api/sessions/abc", &bob.token).await;
    assert_invalid(&r, &["session_id"]);
    assert_eq!(
        app.get("/api/me", &alice.token).await.status,
        StatusCode::OK
    );
    alice_ws.assert_open().await;
    // Sessions are answered only with a token.
    let r = app
        .call(reqwest::Method::GET, "/api/sessions", None, None)
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn revoking_the_others_keeps_the_current_session() {
    let app = spawn_app().await;
    let first = app.register("alice").await;
    let second = app.login_as("alice", "second").await;
    let current = app.login_as("alice", "current").await;
    let mut first_ws = app.ws(&first.token).await;
    let mut second_ws = app.ws(&second.token).await;
    let mut current_ws = app.ws(&current.token).await;
    let bob = app.register("bob").await;

    let r = app
        .post("/api/sessions/revoke-others", &current.token, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_refused(&app, &first).await;
    assert_refused(&app, &second).await;
    first_ws.assert_ended_unauthorized().await;
    second_ws.assert_ended_unauthorized().await;
    current_ws.assert_open().await;
    let list = sessions(&app, &current).await;
    assert_eq!(ids(&list), vec![session_of(&current.token)]);
    assert_eq!(list[0]["current"], true);
    // Another user's sessions are not touched.
    assert_eq!(app.get("/api/me", &bob.token).await.status, StatusCode::OK);
    // With nothing else left, it is still 204.
    let r = app
        .post("/api/sessions/revoke-others", &current.token, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
}

#[tokio::test]
async fn logging_out_ends_the_session_and_only_it() {
    let app = spawn_app().await;
    let first = app.register("alice").await;
    let second = app.login_as("alice", "second").await;
    let r = app.post("/api/auth/logout", &second.token, json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_refused(&app, &second).await;
    assert_eq!(
        ids(&sessions(&app, &first).await),
        vec![session_of(&first.token)]
    );
    // Ending one's own current session is a logout too.
    let own = session_of(&first.token);
    let r = app
        .delete(&format!("/api/sessions/{own}"), &first.token)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_refused(&app, &first).await;
}

#[tokio::test]
async fn last_seen_is_moved_on_at_most_once_a_minute() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let seen = |list: &[Value]| list[0]["last_seen_at"].as_str().unwrap().to_owned();
    let before = seen(&sessions(&app, &alice).await);
    // Two more requests within the minute: nothing is written.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        app.get("/api/me", &alice.token).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/contacts", &alice.token).await.status,
        StatusCode::OK
    );
    assert_eq!(seen(&sessions(&app, &alice).await), before);
    // Once it is over a minute old, the next request records it.
    let sid = session_of(&alice.token);
    app.execute_sql(&format!(
        "UPDATE sessions SET last_seen_at = '2020-01-01 00:00:00' WHERE id = {sid}"
    ));
    assert_eq!(
        app.get("/api/me", &alice.token).await.status,
        StatusCode::OK
    );
    let after = seen(&sessions(&app, &alice).await);
    assert!(!after.starts_with("2020-"), "{after}");
    let time = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    assert!(time(&after) > time(&before), "{after} after {before}");
    // And not again right after.
    assert_eq!(
        app.get("/api/me", &alice.token).await.status,
        StatusCode::OK
    );
    assert_eq!(seen(&sessions(&app, &alice).await), after);
}

/// `session`'s `last_seen_at` in `list`.
fn last_seen(list: &[Value], session: i64) -> String {
    let s = list
        .iter()
        .find(|s| s["id"] == session)
        .unwrap_or_else(|| panic!("session {session} not in {list:?}"));
    s["last_seen_at"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_open_websocket_keeps_its_session_seen_and_an_idle_one_stays_as_it_was() {
    let every = Duration::from_millis(300);
    let app = spawn_app_with(|c| c.ws.session_seen_every = every).await;
    let (laptop, bob, _) = app.pair("alice", "bob").await;
    let phone = app
        .login_as("alice", "LetsChat-Phone/1.0 (Android 15)")
        .await;
    let desk = app.login_as("alice", "Mozilla/5.0 Firefox/140.0").await;
    let (on_laptop, on_phone) = (session_of(&laptop.token), session_of(&phone.token));
    let mut bob_ws = app.ws(&bob.token).await;
    // Two sockets of the laptop's session, none of the phone's.
    let laptop_ws = app.ws(&laptop.token).await;
    let laptop_tab = app.ws(&laptop.token).await;
    // As if both were last seen long ago, after the sockets opened (whose token check moves a
    // stale session on by itself): from here only the open sockets move the laptop's on.
    let long_ago = |list: &[Value], session| last_seen(list, session).starts_with("2020-");
    app.execute_sql(&format!(
        "UPDATE sessions SET last_seen_at = '2020-01-01 00:00:00' WHERE id IN ({on_laptop}, {on_phone})"
    ));
    assert!(long_ago(&sessions(&app, &desk).await, on_laptop));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let list = loop {
        let list = sessions(&app, &desk).await;
        if !long_ago(&list, on_laptop) {
            break list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the laptop's session was never marked seen: {list:?}"
        );
        tokio::time::sleep(every / 3).await;
    };
    let seen = last_seen(&list, on_laptop)
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap();
    let age = chrono::Utc::now() - seen;
    assert!(age < chrono::TimeDelta::seconds(30), "{seen} is {age} old");
    assert!(long_ago(&list, on_phone), "{list:?}");
    // Still listed first among alice's other devices: it is in use.
    let order = ids(&list);
    assert!(
        order.iter().position(|s| *s == on_laptop) < order.iter().position(|s| *s == on_phone),
        "{list:?}"
    );
    // The idle session stays as it was, round after round.
    tokio::time::sleep(every * 4).await;
    assert!(long_ago(&sessions(&app, &desk).await, on_phone));

    // Once its last socket has closed (alice is announced offline), the session is left alone.
    drop(laptop_ws);
    drop(laptop_tab);
    loop {
        let f = bob_ws.next_of("presence").await;
        if f["user_id"] == laptop.id && f["online"] == false {
            break;
        }
    }
    app.execute_sql(&format!(
        "UPDATE sessions SET last_seen_at = '2020-01-01 00:00:00' WHERE id = {on_laptop}"
    ));
    tokio::time::sleep(every * 4).await;
    assert!(long_ago(&sessions(&app, &desk).await, on_laptop));
}

#[tokio::test]
async fn expired_sessions_are_not_listed() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let old = app.login_as("alice", "old").await;
    app.execute_sql(&format!(
        "UPDATE sessions SET expires_at = '2020-01-01 00:00:00' WHERE id = {}",
        session_of(&old.token)
    ));
    assert_eq!(
        ids(&sessions(&app, &alice).await),
        vec![session_of(&alice.token)]
    );
}
