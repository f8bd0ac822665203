//! Administration: the `letschat admin` command line, every `/api/admin/*` endpoint (and 403 for
//! everyone else), deactivation cutting off REST and WebSocket access at once, tombstones with
//! their `message_deleted` frame, and the audit log.

use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp, User};
use crate::support::{
    admin, assert_error, assert_invalid, assert_message, assert_user, login, PASSWORD,
};
use crate::ws_support::Closed;

/// Runs `letschat admin <args>` on the app's database; (success, stdout, stderr).
async fn cli(app: &TestApp, args: &[&str], password: Option<&str>) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_letschat"));
    cmd.arg("admin")
        .args(args)
        .env("DATABASE_URL", &app.database_url)
        .env("LETSCHAT_BCRYPT_COST", "4")
        .env_remove("LETSCHAT_ADMIN_PASSWORD")
        .stdin(Stdio::null());
    if let Some(p) = password {
        cmd.env("LETSCHAT_ADMIN_PASSWORD", p);
    }
    let out = cmd.output().await.expect("the CLI runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn put(app: &TestApp, path: &str, token: &str, body: Value) -> crate::helpers::Resp {
    app.call(Method::PUT, path, Some(token), Some(body)).await
}

async fn audit_actions(app: &TestApp, token: &str) -> Vec<(String, String, i64)> {
    crate::support::audit_entries(app, token)
        .await
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["target_type"].as_str().unwrap().to_owned(),
                e["target_id"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn cli_admin_create_creates_promotes_and_lists() {
    let app = spawn_app().await;
    // No default admin account.
    let (ok, out, _) = cli(&app, &["list"], None).await;
    assert!(ok);
    assert!(out.contains("no administrators"), "{out}");

    // Creating an account needs a password: none given and no terminal is an error.
    let (ok, _, err) = cli(&app, &["create", "--username", "root"], None).await;
    assert!(!ok);
    assert!(err.contains("LETSCHAT_ADMIN_PASSWORD"), "{err}");
    // It is validated like registration.
    let (ok, _, err) = cli(&app, &["create", "--username", "root"], Some("short")).await;
    assert!(!ok);
    assert!(err.contains("password"), "{err}");
    let (ok, _, err) = cli(
        &app,
        &["create", "--username", "no spaces"],
        Some("tortoise-42"),
    )
    .await;
    assert!(!ok, "{err}");

    let (ok, out, err) = cli(
        &app,
        &[
            "create",
            "--username",
            "Root",
            "--display-name",
            "The Operator",
        ],
        Some("correct horse"),
    )
    .await;
    assert!(ok, "{out} {err}");
    assert!(out.contains("created administrator Root"), "{out}");
    let r = login(&app, "root", "correct horse").await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["user"]["display_name"], "The Operator");
    let root_token = r.body["token"].as_str().unwrap().to_owned();
    let me = app.get("/api/me", &root_token).await;
    assert_eq!(me.body["is_admin"], json!(true), "{:?}", me.body);

    // An existing user is promoted (no password needed), and it takes effect at once.
    let bob = app.register("bob").await;
    let me = app.get("/api/me", &bob.token).await;
    assert_user(&me.body); // exactly a `user` for non-admins: no `is_admin` key
    assert_eq!(
        app.get("/api/admin/stats", &bob.token).await.status,
        StatusCode::FORBIDDEN
    );
    let (ok, out, _) = cli(&app, &["create", "--username", "BOB"], None).await;
    assert!(ok);
    assert!(out.contains("promoted to administrator: bob"), "{out}");
    assert_eq!(
        app.get("/api/admin/stats", &bob.token).await.status,
        StatusCode::OK
    );
    let (ok, out, _) = cli(&app, &["create", "--username", "bob"], None).await;
    assert!(ok && out.contains("already an administrator"), "{out}");

    let (ok, out, _) = cli(&app, &["list"], None).await;
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].contains("Root") && lines[1].contains("bob"),
        "{out}"
    );

    // Both are in the audit log, with no actor (the command line).
    let r = app.get("/api/admin/audit", &root_token).await;
    let entries = r.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{:?}", r.body);
    assert_eq!(entries[0]["action"], "user.grant_admin");
    assert_eq!(entries[0]["target_id"], json!(bob.id));
    assert_eq!(entries[1]["action"], "user.create");
    assert!(entries.iter().all(|e| e["actor_id"].is_null()));
}

#[tokio::test]
async fn every_admin_endpoint_is_forbidden_to_others() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let m = app.send(&alice, room, "c1", "hello").await;
    let mid = m["id"].as_i64().unwrap();
    let endpoints: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/admin/users".into(), None),
        (Method::GET, "/api/admin/users?q=a".into(), None),
        (
            Method::POST,
            "/api/admin/users".into(),
            Some(json!({"username": "carol", "password": "tortoise-42"})),
        ),
        (Method::GET, format!("/api/admin/users/{}", bob.id), None),
        (
            Method::POST,
            format!("/api/admin/users/{}/deactivate", bob.id),
            None,
        ),
        (
            Method::POST,
            format!("/api/admin/users/{}/reactivate", bob.id),
            None,
        ),
        (
            Method::POST,
            format!("/api/admin/users/{}/password", bob.id),
            Some(json!({"password": "new-password"})),
        ),
        (
            Method::PUT,
            format!("/api/admin/users/{}/admin", alice.id),
            Some(json!({"is_admin": true})),
        ),
        (Method::GET, "/api/admin/rooms".into(), None),
        (Method::GET, format!("/api/admin/rooms/{room}"), None),
        (
            Method::GET,
            format!("/api/admin/rooms/{room}/messages"),
            None,
        ),
        (Method::DELETE, format!("/api/admin/messages/{mid}"), None),
        (Method::GET, "/api/admin/stats".into(), None),
        (Method::GET, "/api/admin/audit".into(), None),
    ];
    for (method, path, body) in &endpoints {
        let r = app
            .call(method.clone(), path, Some(&alice.token), body.clone())
            .await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
        let r = app.call(method.clone(), path, None, body.clone()).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // Nothing happened.
    let root = admin(&app, "root").await;
    let r = app
        .get(&format!("/api/admin/users/{}", bob.id), &root.token)
        .await;
    assert!(r.body["deactivated_at"].is_null());
    assert_eq!(r.body["is_admin"], json!(false));
    let h = app
        .get(&format!("/api/rooms/{room}/messages"), &bob.token)
        .await;
    assert_eq!(h.body["messages"][0]["body"], "hello");
    assert_eq!(
        login(&app, "bob", PASSWORD).await.status,
        StatusCode::OK,
        "password unchanged"
    );
    assert_eq!(
        audit_actions(&app, &root.token).await.len(),
        1,
        "only the CLI's grant"
    );
}

#[tokio::test]
async fn users_are_listed_searched_and_paged_with_counts() {
    let app = spawn_app().await;
    let root = admin(&app, "root").await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let carol = app.register("carol").await;
    let room_ac = app.add_contact(&alice, &carol).await;
    app.send(&alice, room, "a1", "one").await;
    app.send(&alice, room, "a2", "two").await;
    app.send(&bob, room, "b1", "three").await;
    app.send(&alice, room_ac, "c1", "hi carol").await;
    // A resend is the same message: it does not count again.
    let again = app
        .post(
            &format!("/api/rooms/{room}/messages"),
            &alice.token,
            json!({"client_msg_id": "a1", "body": "one"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{again:?}");

    let r = app.get("/api/admin/users", &root.token).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let users = r.body["users"].as_array().unwrap();
    let names: Vec<&str> = users
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["root", "alice", "bob", "carol"]);
    assert!(r.body["next_cursor"].is_null());
    let a = &users[1];
    assert_eq!(a["id"], json!(alice.id));
    assert_eq!(a["contacts_count"], 2);
    assert_eq!(a["rooms_count"], 2);
    // Two in the room with bob, one in the room with carol.
    assert_eq!(a["messages_count"], 3);
    assert_eq!(a["is_admin"], json!(false));
    assert!(a["deactivated_at"].is_null());
    assert!(
        a["last_seen_at"].is_null(),
        "registering is not a login: {a}"
    );
    assert_eq!(a["online"], json!(false));
    // bob got a contact by being written to
    assert_eq!(users[2]["messages_count"], 1);
    assert_eq!(users[3]["rooms_count"], 1);
    assert_eq!(users[0]["is_admin"], json!(true));

    // Paging by cursor.
    let r = app.get("/api/admin/users?limit=3", &root.token).await;
    assert_eq!(r.body["users"].as_array().unwrap().len(), 3);
    let next = r.body["next_cursor"].as_i64().unwrap();
    assert_eq!(next, bob.id);
    let r = app
        .get(
            &format!("/api/admin/users?limit=3&after={next}"),
            &root.token,
        )
        .await;
    let rest: Vec<i64> = r.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    assert_eq!(rest, [carol.id]);
    assert!(r.body["next_cursor"].is_null());

    // Search by username or display name, case-insensitively.
    let r = app.get("/api/admin/users?q=AL", &root.token).await;
    let found: Vec<i64> = r.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    assert_eq!(found, [alice.id]);

    // One user.
    let r = app
        .get(&format!("/api/admin/users/{}", bob.id), &root.token)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["username"], "bob");
    assert_eq!(r.body["contacts_count"], 1);
    assert_error(
        &app.get("/api/admin/users/999999", &root.token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_invalid(
        &app.get("/api/admin/users?limit=0", &root.token).await,
        &["limit"],
    );
    assert_invalid(
        &app.get("/api/admin/users?limit=101", &root.token).await,
        &["limit"],
    );
    assert_invalid(
        &app.get("/api/admin/users?after=-1", &root.token).await,
        &["after"],
    );
}

#[tokio::test]
async fn admins_create_users() {
    let app = spawn_app().await;
    let root = admin(&app, "root").await;
    let r = app
        .post(
            "/api/admin/users",
            &root.token,
            json!({"username": "Dora", "password": "tortoise-42", "display_name": "Dora E."}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(r.body["username"], "Dora");
    assert_eq!(r.body["display_name"], "Dora E.");
    assert_eq!(r.body["is_admin"], json!(false));
    assert_eq!(r.body["messages_count"], 0);
    let dora = r.body["id"].as_i64().unwrap();
    assert_eq!(
        login(&app, "dora", "tortoise-42").await.status,
        StatusCode::OK
    );

    let r = app
        .post(
            "/api/admin/users",
            &root.token,
            json!({"username": "eve", "password": "tortoise-42", "is_admin": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(r.body["is_admin"], json!(true));
    let eve = r.body["id"].as_i64().unwrap();

    assert_error(
        &app.post(
            "/api/admin/users",
            &root.token,
            json!({"username": "dora", "password": "tortoise-42"}),
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_invalid(
        &app.post(
            "/api/admin/users",
            &root.token,
            json!({"username": "x", "password": "short"}),
        )
        .await,
        &["username", "password"],
    );
    let actions = audit_actions(&app, &root.token).await;
    assert_eq!(
        actions[..2],
        [
            ("user.create".to_owned(), "user".to_owned(), eve),
            ("user.create".to_owned(), "user".to_owned(), dora),
        ]
    );
    let r = app.get("/api/admin/audit?limit=1", &root.token).await;
    let e = &r.body["entries"][0];
    assert_eq!(e["actor_id"], json!(root.id));
    assert_eq!(e["actor_username"], "root");
    assert_eq!(e["detail"], "@eve (admin)");
}

#[tokio::test]
async fn deactivation_cuts_off_rest_and_websockets_at_once() {
    let app = spawn_app().await;
    let root = admin(&app, "root").await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    // Two devices of bob's, and one of alice's.
    let mut bob1 = app.ws(&bob.token).await;
    let mut bob2 = app.ws(&bob.token).await;
    let mut alice_ws = app.ws(&alice.token).await;
    let second = login(&app, "bob", PASSWORD).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = app
        .post(
            &format!("/api/admin/users/{}/deactivate", bob.id),
            &root.token,
            json!(null),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(r.body["deactivated_at"].is_string());

    // Both of bob's sockets get `unauthorized` and close with 1008.
    for ws in [&mut bob1, &mut bob2] {
        let f = ws.next_of("error").await;
        assert_eq!(f["code"], "unauthorized", "{f}");
        assert_eq!(ws.closed(Duration::from_secs(5)).await, Closed::Code(1008));
    }
    // Every token of his is refused at once, over REST and for new sockets.
    for token in [&bob.token, &second] {
        assert_error(
            &app.get("/api/me", token).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
        assert_error(
            &app.get(&format!("/api/rooms/{room}/messages"), token).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    let mut raw = app.ws_raw().await;
    {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        raw.send(Message::text(
            json!({"type":"auth","token": bob.token}).to_string(),
        ))
        .await
        .unwrap();
        let mut got_error = false;
        while let Some(Ok(m)) = raw.next().await {
            match m {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    assert_eq!(v["type"], "error");
                    assert_eq!(v["code"], "unauthorized");
                    got_error = true;
                }
                Message::Close(f) => {
                    assert_eq!(f.map(|f| u16::from(f.code)), Some(1008));
                    break;
                }
                _ => {}
            }
        }
        assert!(got_error);
    }
    // He cannot log in: 403 once the password is right, the same 401 as ever when it is wrong.
    assert_error(
        &login(&app, "bob", PASSWORD).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &login(&app, "bob", "wrong-password").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    // Alice is untouched.
    assert_eq!(
        app.get("/api/me", &alice.token).await.status,
        StatusCode::OK
    );
    alice_ws.send(json!({"type":"ping"})).await;
    assert_eq!(alice_ws.next_of("pong").await["type"], "pong");

    // Deactivating again changes nothing; an admin cannot deactivate themselves.
    let r = app
        .post(
            &format!("/api/admin/users/{}/deactivate", bob.id),
            &root.token,
            json!(null),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_error(
        &app.post(
            &format!("/api/admin/users/{}/deactivate", root.id),
            &root.token,
            json!(null),
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_error(
        &app.post(
            "/api/admin/users/999999/deactivate",
            &root.token,
            json!(null),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let stats = app.get("/api/admin/stats", &root.token).await;
    assert_eq!(stats.body["deactivated_users"], 1);

    // Reactivated: he logs in again; the tokens from before the deactivation stay dead.
    let r = app
        .post(
            &format!("/api/admin/users/{}/reactivate", bob.id),
            &root.token,
            json!(null),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["deactivated_at"].is_null());
    for token in [&bob.token, &second] {
        assert_error(
            &app.get("/api/me", token).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    let fresh = login(&app, "bob", PASSWORD).await;
    assert_eq!(fresh.status, StatusCode::OK);
    let mut again = app.ws(fresh.body["token"].as_str().unwrap()).await;
    again.send(json!({"type":"ping"})).await;
    assert_eq!(again.next_of("pong").await["type"], "pong");

    let actions: Vec<String> = audit_actions(&app, &root.token)
        .await
        .into_iter()
        .filter(|(_, t, id)| t == "user" && *id == bob.id)
        .map(|(a, _, _)| a)
        .collect();
    assert_eq!(
        actions,
        ["user.reactivate", "user.deactivate"],
        "one entry per change"
    );
}

#[tokio::test]
async fn deactivation_holds_across_a_restart() {
    // The flag lives in the database: a second server on the same database refuses the token.
    let app = spawn_app().await;
    let root = admin(&app, "root").await;
    let bob = app.register("bob").await;
    app.post(
        &format!("/api/admin/users/{}/deactivate", bob.id),
        &root.token,
        json!(null),
    )
    .await;
    let config = crate::helpers::test_config(app.database_url.clone());
    let second = letschat::startup::Application::build(config).await.unwrap();
    let other = TestApp::for_address(second.port());
    tokio::spawn(second.run_until_stopped());
    assert_error(
        &other.get("/api/me", &bob.token).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_eq!(
        other.get("/api/me", &root.token).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn admins_reset_passwords_and_manage_roles() {
    let app = spawn_app().await;
    let root = admin(&app, "root").await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let mut bob_ws = app.ws(&bob.token).await;
    let mut alice_ws = app.ws(&alice.token).await;
    let r = app
        .post(
            &format!("/api/admin/users/{}/password", bob.id),
            &root.token,
            json!({"password": "brand-new-secret"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    assert_error(
        &login(&app, "bob", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    // Whoever signed in with the old password is signed out everywhere: the token is refused
    // and the open socket gets `unauthorized` and closes with 1008.
    let f = bob_ws.next_of("error").await;
    assert_eq!(f["code"], "unauthorized", "{f}");
    assert_eq!(
        bob_ws.closed(Duration::from_secs(5)).await,
        Closed::Code(1008)
    );
    assert_error(
        &app.get("/api/me", &bob.token).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    // The new password signs in, and that session works; other users are untouched.
    let relogin = login(&app, "bob", "brand-new-secret").await;
    assert_eq!(relogin.status, StatusCode::OK);
    let bob = User {
        token: relogin.body["token"].as_str().unwrap().to_owned(),
        ..bob
    };
    assert_eq!(app.get("/api/me", &bob.token).await.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/me", &alice.token).await.status,
        StatusCode::OK
    );
    app.send(&alice, room, "after-reset", "still here").await;
    let m = alice_ws.next_of("message").await;
    assert_eq!(m["message"]["body"], "still here", "{m}");
    assert_invalid(
        &app.post(
            &format!("/api/admin/users/{}/password", bob.id),
            &root.token,
            json!({"password": "short"}),
        )
        .await,
        &["password"],
    );
    assert_error(
        &app.post(
            "/api/admin/users/999999/password",
            &root.token,
            json!({"password": "long-enough"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // Grant: bob can use the admin API at once, and /api/me says so.
    let r = put(
        &app,
        &format!("/api/admin/users/{}/admin", bob.id),
        &root.token,
        json!({"is_admin": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["is_admin"], json!(true));
    assert_eq!(
        app.get("/api/me", &bob.token).await.body["is_admin"],
        json!(true)
    );
    assert_eq!(
        app.get("/api/admin/stats", &bob.token).await.status,
        StatusCode::OK
    );
    // Nobody removes their own role; another admin can.
    assert_error(
        &put(
            &app,
            &format!("/api/admin/users/{}/admin", bob.id),
            &bob.token,
            json!({"is_admin": false}),
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    );
    let r = put(
        &app,
        &format!("/api/admin/users/{}/admin", bob.id),
        &root.token,
        json!({"is_admin": false}),
    )
    .await;
    assert_eq!(r.body["is_admin"], json!(false));
    assert_error(
        &app.get("/api/admin/stats", &bob.token).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_invalid(
        &put(
            &app,
            &format!("/api/admin/users/{}/admin", bob.id),
            &root.token,
            json!({"is_admin": "yes"}),
        )
        .await,
        &["is_admin"],
    );

    let actions: Vec<String> = audit_actions(&app, &root.token)
        .await
        .into_iter()
        .filter(|(_, _, id)| *id == bob.id)
        .map(|(a, _, _)| a)
        .collect();
    assert_eq!(
        actions,
        [
            "user.revoke_admin",
            "user.grant_admin",
            "user.password_reset"
        ]
    );
}

#[tokio::test]
async fn rooms_are_listed_with_members_counts_and_activity() {
    let app = spawn_app().await;
    let root = admin(&app, "root").await;
    let (alice, bob, r1) = app.pair("alice", "bob").await;
    let carol = app.register("carol").await;
    let r2 = app.add_contact(&alice, &carol).await;
    let r3 = app.add_contact(&bob, &carol).await;
    app.send(&alice, r1, "1", "hi").await;
    app.send(&bob, r1, "2", "hey").await;

    let r = app.get("/api/admin/rooms", &root.token).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let rooms = r.body["rooms"].as_array().unwrap();
    let ids: Vec<i64> = rooms.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [r3, r2, r1], "newest first");
    let first = &rooms[2];
    assert_eq!(first["message_count"], 2);
    assert_eq!(first["last_seq"], 2);
    assert!(first["last_activity_at"].is_string());
    let names: Vec<&str> = first["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    first["members"]
        .as_array()
        .unwrap()
        .iter()
        .for_each(assert_user);
    assert!(rooms[0]["last_activity_at"].is_null());
    assert_eq!(rooms[0]["message_count"], 0);

    let r = app.get("/api/admin/rooms?limit=2", &root.token).await;
    assert_eq!(r.body["next_cursor"], json!(r2));
    let r = app
        .get(
            &format!("/api/admin/rooms?limit=2&before={r2}"),
            &root.token,
        )
        .await;
    assert_eq!(r.body["rooms"].as_array().unwrap().len(), 1);
    assert!(r.body["next_cursor"].is_null());

    let r = app
        .get(
            &format!("/api/admin/rooms?user_id={}", carol.id),
            &root.token,
        )
        .await;
    let ids: Vec<i64> = r.body["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [r3, r2]);

    let r = app
        .get(&format!("/api/admin/rooms/{r1}"), &root.token)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["id"], json!(r1));
    assert_error(
        &app.get("/api/admin/rooms/999999", &root.token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn admins_read_rooms_and_delete_messages_as_tombstones() {
    let app = spawn_app().await;
    let root = admin(&app, "root").await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    for i in 1..=5 {
        app.send(&alice, room, &format!("c{i}"), &format!("message {i}"))
            .await;
    }
    // Any room, paged like the members' history.
    let r = app
        .get(
            &format!("/api/admin/rooms/{room}/messages?limit=2"),
            &root.token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let seqs: Vec<i64> = r.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [4, 5]);
    assert_eq!(r.body["has_more"], json!(true));
    let r = app
        .get(
            &format!("/api/admin/rooms/{room}/messages?before=4"),
            &root.token,
        )
        .await;
    assert_eq!(r.body["messages"].as_array().unwrap().len(), 3);
    assert_eq!(r.body["has_more"], json!(false));
    let third = r.body["messages"][2].clone();
    assert_eq!(third["seq"], 3);
    assert_error(
        &app.get("/api/admin/rooms/999999/messages", &root.token)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let mut alice_ws = app.ws(&alice.token).await;
    let mut bob_ws = app.ws(&bob.token).await;
    let id = third["id"].as_i64().unwrap();
    let r = app
        .delete(&format!("/api/admin/messages/{id}"), &root.token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["body"], "");
    assert_eq!(r.body["seq"], 3);
    assert!(r.body["deleted_at"].is_string());

    // Both members are told.
    for ws in [&mut alice_ws, &mut bob_ws] {
        let f = ws.next_of("message_deleted").await;
        assert_eq!(f["room_id"], json!(room));
        assert_eq!(f["seq"], 3);
        assert_eq!(f["message"]["id"], json!(id));
        assert_eq!(f["message"]["body"], "");
        assert!(f["message"]["deleted_at"].is_string());
    }
    // Histories stay gap-free and show the tombstone; other messages keep the exact shape.
    let h = app
        .get(&format!("/api/rooms/{room}/messages"), &bob.token)
        .await;
    let msgs = h.body["messages"].as_array().unwrap();
    let seqs: Vec<i64> = msgs.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(msgs[2]["body"], "");
    assert!(msgs[2]["deleted_at"].is_string());
    assert_message(&msgs[1]);
    // The contacts list and a reconnect's sync see the same.
    alice_ws
        .send(json!({"type":"sync","room_id": room,"after": 2}))
        .await;
    let m = alice_ws.next_of("message").await;
    assert_eq!(
        (m["message"]["seq"].clone(), m["message"]["body"].clone()),
        (json!(3), json!(""))
    );
    // Sending goes on with the next seq.
    let next = app.send(&bob, room, "after-delete", "still here").await;
    assert_eq!(next["seq"], 6);

    // Deleting again changes nothing: same tombstone, no second frame or audit entry.
    let again = app
        .delete(&format!("/api/admin/messages/{id}"), &root.token)
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body, r.body);
    assert_error(
        &app.delete("/api/admin/messages/999999", &root.token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let deletes: Vec<_> = audit_actions(&app, &root.token)
        .await
        .into_iter()
        .filter(|(a, _, _)| a == "message.delete")
        .collect();
    assert_eq!(
        deletes,
        [("message.delete".to_owned(), "message".to_owned(), id)]
    );
}

#[tokio::test]
async fn stats_count_users_rooms_messages_and_connections() {
    let app = spawn_app().await;
    let root = admin(&app, "root").await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    app.send(&alice, room, "1", "a").await;
    app.send(&bob, room, "2", "b").await;
    app.send(&bob, room, "3", "c").await;
    let _w1 = app.ws(&alice.token).await;
    let _w2 = app.ws(&alice.token).await;
    let r = app.get("/api/admin/stats", &root.token).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let s = &r.body;
    assert_eq!(s["users"], 3);
    assert_eq!(s["admins"], 1);
    assert_eq!(s["deactivated_users"], 0);
    assert_eq!(s["rooms"], 1);
    assert_eq!(s["messages"], 3);
    assert_eq!(s["messages_last_hour"], 3);
    assert_eq!(s["messages_last_day"], 3);
    assert_eq!(s["connections"], 2);
    assert_eq!(s["online_users"], 1);
    // An online user shows as such, with a last-seen time.
    let u = app
        .get(&format!("/api/admin/users/{}", alice.id), &root.token)
        .await;
    assert_eq!(u.body["online"], json!(true));
    assert!(u.body["last_seen_at"].is_string());
}

#[tokio::test]
async fn the_audit_log_pages_newest_first() {
    let app = spawn_app().await;
    let root = admin(&app, "root").await;
    let bob = app.register("bob").await;
    for _ in 0..3 {
        app.post(
            &format!("/api/admin/users/{}/deactivate", bob.id),
            &root.token,
            json!(null),
        )
        .await;
        app.post(
            &format!("/api/admin/users/{}/reactivate", bob.id),
            &root.token,
            json!(null),
        )
        .await;
    }
    // 1 (CLI) + 6 entries.
    let r = app.get("/api/admin/audit?limit=4", &root.token).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let first: Vec<i64> = r.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(first.len(), 4);
    assert!(first.windows(2).all(|w| w[0] > w[1]));
    let e = &r.body["entries"][0];
    assert_eq!(e["action"], "user.reactivate");
    assert_eq!(e["target_type"], "user");
    assert_eq!(e["target_id"], json!(bob.id));
    assert_eq!(e["detail"], "@bob");
    crate::support::assert_utc_time(&e["created_at"]);
    let cursor = r.body["next_cursor"].as_i64().unwrap();
    assert_eq!(cursor, *first.last().unwrap());
    let r = app
        .get(
            &format!("/api/admin/audit?limit=4&before={cursor}"),
            &root.token,
        )
        .await;
    let rest = r.body["entries"].as_array().unwrap();
    assert_eq!(rest.len(), 3);
    assert!(r.body["next_cursor"].is_null());
    assert_eq!(rest[2]["action"], "user.grant_admin");
    assert!(rest[2]["actor_id"].is_null());
    assert_invalid(
        &app.get("/api/admin/audit?limit=500", &root.token).await,
        &["limit"],
    );
}
