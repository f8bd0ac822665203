//! Sign-in rate limits: per client address (register + login), and failed logins per account.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, Resp};
use crate::support::*;

fn retry_after(r: &Resp) -> u64 {
    r.headers
        .get(reqwest::header::RETRY_AFTER)
        .unwrap_or_else(|| panic!("429 without Retry-After: {r:?}"))
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is a number of seconds")
}

fn assert_rate_limited(r: &Resp) {
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(retry_after(r) >= 1, "{r:?}");
}

#[tokio::test]
async fn the_fourth_register_from_one_address_is_rate_limited() {
    let app = spawn_app_with(|c| c.auth_limits.per_ip_per_minute = 3).await;
    for name in ["alice", "bob", "carol"] {
        let r = register_raw(&app, json!({"username": name, "password": PASSWORD})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {r:?}");
    }
    let r = register_raw(&app, json!({"username": "dave", "password": PASSWORD})).await;
    assert_rate_limited(&r);
    // Refused means not created: dave cannot log in (login is limited too, so this is 429,
    // not 200).
    let r = login(&app, "dave", PASSWORD).await;
    assert_rate_limited(&r);
}

#[tokio::test]
async fn the_fourth_login_from_one_address_is_rate_limited() {
    let app = spawn_app_with(|c| c.auth_limits.per_ip_per_minute = 3).await;
    let alice = app.register("alice").await; // 1
    assert_eq!(login(&app, "alice", PASSWORD).await.status, StatusCode::OK); // 2
    assert_eq!(login(&app, "alice", PASSWORD).await.status, StatusCode::OK); // 3
    let r = login(&app, "alice", PASSWORD).await; // 4
    assert_rate_limited(&r);
    // Only the sign-in endpoints are limited: the existing token keeps working.
    let me = app.get("/api/me", &alice.token).await;
    assert_eq!(me.status, StatusCode::OK);
    for _ in 0..5 {
        assert_eq!(
            app.get("/api/contacts", &alice.token).await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn every_sign_in_route_counts_against_the_address_and_is_refused_like_any_answer() {
    let app = spawn_app_with(|c| c.auth_limits.per_ip_per_minute = 2).await;
    let alice = app.register("alice").await; // 1
    assert_eq!(login(&app, "alice", PASSWORD).await.status, StatusCode::OK); // 2
    let password_change = app
        .post(
            "/api/me/password",
            &alice.token,
            json!({"current_password": PASSWORD, "new_password": "another-long-one-42"}),
        )
        .await;
    let deletion = app
        .call(
            reqwest::Method::DELETE,
            "/api/me",
            Some(&alice.token),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    for r in [&password_change, &deletion] {
        assert_rate_limited(r);
        // Refused before routing, still with the headers every answer carries.
        assert_eq!(
            r.headers
                .get("x-content-type-options")
                .and_then(|v| v.to_str().ok()),
            Some("nosniff"),
            "{r:?}"
        );
        assert!(r.headers.contains_key("content-security-policy"), "{r:?}");
    }
    // Neither went through: the account is still there.
    assert_eq!(
        app.get("/api/me", &alice.token).await.status,
        StatusCode::OK
    );
    // Other routes are not counted, and a route the list names exists in the API as written.
    assert_eq!(
        app.get("/api/contacts", &alice.token).await.status,
        StatusCode::OK
    );
    let spec = app
        .call(reqwest::Method::GET, "/api/openapi.json", None, None)
        .await;
    for (method, path) in letschat::api::auth::SIGN_IN_ROUTES {
        let method = method.as_str().to_ascii_lowercase();
        assert!(
            spec.body["paths"][path][&method].is_object(),
            "{method} {path} is not in the API"
        );
    }
}

#[tokio::test]
async fn failed_logins_lock_the_account_but_not_others() {
    let app = spawn_app_with(|c| c.auth_limits.failed_logins_per_hour = 4).await;
    let alice = app.register("alice").await;
    app.register("bob").await;

    // The allowance: four failures are answered as wrong credentials.
    for i in 1..=4 {
        let r = login(&app, "alice", &format!("wrong-password-{i}")).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // After it the account answers 429, even to the right password, in any case of the name.
    let r = login(&app, "alice", PASSWORD).await;
    assert_rate_limited(&r);
    let r = login(&app, "ALICE", PASSWORD).await;
    assert_rate_limited(&r);
    let r = login(&app, "alice", "wrong-password-5").await;
    assert_rate_limited(&r);

    // Another account is not affected.
    let r = login(&app, "bob", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    // Nor are alice's existing tokens.
    assert_eq!(
        app.get("/api/me", &alice.token).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn failures_on_one_account_do_not_count_against_another() {
    let app = spawn_app_with(|c| c.auth_limits.failed_logins_per_hour = 4).await;
    app.register("alice").await;
    app.register("bob").await;
    for _ in 0..3 {
        assert_eq!(
            login(&app, "alice", "nope-nope").await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            login(&app, "bob", "nope-nope").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Three failures each, within the allowance of four: both still log in.
    assert_eq!(login(&app, "alice", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(login(&app, "bob", PASSWORD).await.status, StatusCode::OK);
}

#[tokio::test]
async fn rate_limited_requests_are_refused_before_validation_of_credentials() {
    // A locked-out unknown account name is just as locked: no way to probe which names exist.
    let app = spawn_app_with(|c| c.auth_limits.failed_logins_per_hour = 2).await;
    app.register("alice").await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..3 {
        known.push(login(&app, "alice", "wrong-wrong").await);
        unknown.push(login(&app, "nobody", "wrong-wrong").await);
    }
    let statuses = |v: &[Resp]| v.iter().map(|r| r.status).collect::<Vec<_>>();
    assert_eq!(statuses(&known), statuses(&unknown));
    assert_eq!(
        statuses(&known),
        vec![
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    assert_rate_limited(&known[2]);
    assert_rate_limited(&unknown[2]);
}

/// Reads one HTTP/1.1 response (headers and a `content-length` body) from `s`; `None` when the
/// server closed the connection first.
async fn read_response(s: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Some(String::from_utf8_lossy(&buf[..end + 4 + len]).into_owned());
            }
        }
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("the server answers within 10 s")
            .unwrap_or(0);
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn login_request(body: &str) -> String {
    format!(
        "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Sends `request` on `s` and checks its answer starts with `expected`, is a JSON error and
/// leaves the connection open for the next request.
async fn answered_on_the_same_connection(
    s: &mut tokio::net::TcpStream,
    i: usize,
    request: &str,
    expected: &str,
) {
    use tokio::io::AsyncWriteExt;
    s.write_all(request.as_bytes()).await.unwrap();
    let answer = read_response(s)
        .await
        .unwrap_or_else(|| panic!("request {i}: the connection was closed"));
    assert!(answer.starts_with(expected), "request {i}: {answer}");
    assert!(answer.contains("\"code\""), "request {i}: {answer}");
    assert!(
        !answer.to_lowercase().contains("connection: close"),
        "request {i}: {answer}"
    );
}

#[tokio::test]
async fn refused_logins_keep_their_connection_so_a_flood_costs_no_new_connections() {
    let app = spawn_app_with(|c| c.auth_limits.per_ip_per_minute = 1).await;
    let body = r#"{"username":"mallory-ﻣﺎﻟﻮﺭﻱ-😈","password":"wrong-wrong-wrong"}"#;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    // The first is within the limit (401); the next five on the same connection are refused,
    // each answered on it.
    for i in 0..6 {
        let expected = if i == 0 {
            "HTTP/1.1 401"
        } else {
            "HTTP/1.1 429"
        };
        answered_on_the_same_connection(&mut s, i, &login_request(body), expected).await;
    }
}

#[tokio::test]
async fn any_request_answered_without_reading_its_small_body_keeps_its_connection() {
    let app = spawn_app().await;
    let body = r#"{"username":"نور-الهدى-🌙-with-a-rather-long-name"}"#;
    let request = |path: &str, auth: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    // No token, a malformed token, a path that does not exist, no token again: each answered
    // before the body is read, each on the same connection.
    for (i, (path, auth, expected)) in [
        ("/api/contacts", "", "HTTP/1.1 401"),
        (
            "/api/contacts",
            "Authorization: Bearer not-a-token\r\n",
            "HTTP/1.1 401",
        ),
        ("/api/no-such-thing", "", "HTTP/1.1 404"),
        ("/api/contacts", "", "HTTP/1.1 401"),
    ]
    .into_iter()
    .enumerate()
    {
        answered_on_the_same_connection(&mut s, i, &request(path, auth), expected).await;
    }
}

#[tokio::test]
async fn a_refused_login_whose_body_does_not_come_is_answered_and_its_connection_closed() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(|c| c.auth_limits.per_ip_per_minute = 1).await;
    let body = r#"{"username":"alice","password":"wrong-wrong-wrong"}"#;
    assert_eq!(
        login(&app, "alice", "wrong-wrong-wrong").await.status,
        StatusCode::UNAUTHORIZED
    );
    // Headers promising a body that never comes, then one declaring more than a login needs:
    // both are refused at once and not waited for.
    for request in [
        login_request(body).replace(&format!("\r\n\r\n{body}"), "\r\n\r\n"),
        login_request(body).replace(
            &format!("Content-Length: {}", body.len()),
            "Content-Length: 1000000",
        ),
    ] {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
            .await
            .unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let started = std::time::Instant::now();
        let answer = read_response(&mut s).await.expect("an answer");
        assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // The unread body is not waited for: the connection ends.
        assert!(read_response(&mut s).await.is_none());
    }
}
