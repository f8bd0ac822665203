//! Behind a reverse proxy (`LETSCHAT_TRUSTED_PROXIES`): forwarding headers are believed from
//! trusted proxies only, each forwarded client gets its own sign-in limits and its own address
//! in the session list, the proxy's connections are not capped per address, and the same holds
//! through a real nginx.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{spawn_app_with, Resp, TestApp};
use crate::nginx_support::{nginx_binary, TestNginx};
use crate::support::{assert_error, PASSWORD};

/// Sends `POST path` with `body` and extra `headers` from `client` to `base` (`http://…`).
async fn post_with(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> Resp {
    let mut req = client.request(Method::POST, format!("{base}{path}"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.json(&body).send().await.expect("request sent");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.unwrap();
    Resp {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// Logs `username` in (password `PASSWORD`) with `headers`.
async fn login(app: &TestApp, username: &str, headers: &[(&str, &str)]) -> Resp {
    post_with(
        &app.client,
        &app.address,
        "/api/auth/login",
        headers,
        json!({"username": username, "password": PASSWORD}),
    )
    .await
}

/// Registers `username` (password `PASSWORD`) with `headers`: its token.
async fn register(app: &TestApp, username: &str, headers: &[(&str, &str)]) -> String {
    let r = post_with(
        &app.client,
        &app.address,
        "/api/auth/register",
        headers,
        json!({"username": username, "password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    r.body["token"].as_str().unwrap().to_owned()
}

/// The address `GET /api/sessions` shows for the session of `token`.
async fn session_ip(base: &str, token: &str) -> String {
    let r = reqwest::Client::new()
        .get(format!("{base}/api/sessions"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let list: Value = r.json().await.unwrap();
    let current: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] == true)
        .collect();
    assert_eq!(current.len(), 1, "{list}");
    current[0]["ip"].as_str().unwrap_or("").to_owned()
}

fn assert_limited(r: &Resp) {
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(r.headers.get("retry-after").is_some(), "{r:?}");
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    // Proxies are trusted, but not this one (the test connects from 127.0.0.1).
    let app = spawn_app_with(|c| {
        c.auth_limits.per_ip_per_minute = 3;
        c.trusted_proxies = proxies("10.0.0.0/8,::1/128");
    })
    .await;
    let token = register(&app, "alice", &[("X-Forwarded-For", "203.0.113.1")]).await;
    assert_eq!(session_ip(&app.address, &token).await, "127.0.0.1");
    // Every attempt names another client; they all count against the peer.
    let r = login(&app, "alice", &[("Forwarded", "for=203.0.113.2")]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let token = r.body["token"].as_str().unwrap().to_owned();
    assert_eq!(session_ip(&app.address, &token).await, "127.0.0.1");
    let r = login(
        &app,
        "alice",
        &[("X-Forwarded-For", "10.0.0.1, 203.0.113.3")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_limited(&login(&app, "alice", &[("X-Forwarded-For", "203.0.113.4")]).await);
    assert_limited(&login(&app, "alice", &[("Forwarded", "for=\"[2001:db8::5]\"")]).await);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_login_limit() {
    let app = spawn_app_with(|c| {
        c.auth_limits.per_ip_per_minute = 2;
        c.trusted_proxies = proxies("127.0.0.1/32");
    })
    .await;
    register(&app, "alice", &[("X-Forwarded-For", "198.51.100.200")]).await;
    let first = [("X-Forwarded-For", "203.0.113.7")];
    for _ in 0..2 {
        let r = login(&app, "alice", &first).await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
    }
    assert_limited(&login(&app, "alice", &first).await);
    // Naming another client to the left of what the proxy wrote changes nothing.
    let prepended = [("X-Forwarded-For", "192.0.2.99, 203.0.113.7")];
    assert_limited(&login(&app, "alice", &prepended).await);

    // Other clients behind the same proxy are not held back by the first.
    let r = login(&app, "alice", &[("X-Forwarded-For", "198.51.100.9")]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let r = login(
        &app,
        "alice",
        &[("Forwarded", "for=\"[2001:db8:cafe::17]:4711\";proto=https")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    // A request the proxy forwarded without naming anyone is the proxy's own.
    let r = login(&app, "alice", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
}

#[tokio::test]
async fn the_session_list_shows_the_forwarded_address() {
    let app = spawn_app_with(|c| c.trusted_proxies = proxies("127.0.0.1/32")).await;
    let token = register(&app, "alice", &[("Forwarded", "for=\"[2001:db8::7]:443\"")]).await;
    assert_eq!(session_ip(&app.address, &token).await, "2001:db8::7");
    let r = login(
        &app,
        "alice",
        &[
            ("X-Forwarded-For", "192.0.2.1, 203.0.113.7"),
            (
                "User-Agent",
                "Mozilla/5.0 (Linux; Android 15) Firefox/141.0",
            ),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let token = r.body["token"].as_str().unwrap();
    assert_eq!(session_ip(&app.address, token).await, "203.0.113.7");
    // Not an address: the proxy's own.
    let r = login(&app, "alice", &[("X-Forwarded-For", "unknown")]).await;
    let token = r.body["token"].as_str().unwrap();
    assert_eq!(session_ip(&app.address, token).await, "127.0.0.1");
}

/// Opens `n` connections to `port` and asks each for `/api/health`: their statuses, while all
/// of them stay open.
async fn statuses_of_held_connections(port: u16, n: usize) -> Vec<u16> {
    let mut held = Vec::new();
    let mut statuses = Vec::new();
    for _ in 0..n {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        s.write_all(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        statuses.push(status);
        held.push(s);
    }
    statuses
}

#[tokio::test]
async fn a_trusted_proxy_s_connections_are_not_capped_per_address() {
    let cap = |trusted: &str| {
        let trusted = proxies(trusted);
        move |c: &mut letschat::config::Config| {
            c.http.max_connections_per_ip = 2;
            c.http.keep_alive = Duration::from_secs(120);
            c.trusted_proxies = trusted;
        }
    };
    let proxied = spawn_app_with(cap("127.0.0.1/32")).await;
    assert_eq!(
        statuses_of_held_connections(proxied.port, 5).await,
        [200; 5]
    );
    let direct = spawn_app_with(cap("10.0.0.0/8")).await;
    assert_eq!(
        statuses_of_held_connections(direct.port, 3).await,
        [200, 200, 429]
    );
}

/// A client of its own source address (any of 127.0.0.0/8 is this machine).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Through a real nginx that appends the address it sees to `X-Forwarded-For` (the deployment
/// guide's configuration) and connects to the server from 127.0.0.2, the one trusted proxy:
/// clients from 127.0.0.3 and 127.0.0.4 have limits and sessions of their own, a header a client
/// wrote itself is not believed, and nor is one sent to the server directly.
#[tokio::test]
async fn through_nginx_each_client_is_told_apart_by_its_own_address() {
    if nginx_binary().is_none() {
        eprintln!("nginx test: skipped, /usr/sbin/nginx is absent (apt-get install -y nginx)");
        return;
    }
    let app = spawn_app_with(|c| {
        c.auth_limits.per_ip_per_minute = 2;
        c.trusted_proxies = proxies("127.0.0.2/32");
    })
    .await;
    let nginx = TestNginx::start_with(
        &[app.port],
        "proxy_bind 127.0.0.2;\n\
         proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    );
    let front = format!("http://127.0.0.1:{}", nginx.port);
    let body = json!({"username": "alice", "password": PASSWORD});
    let r = post_with(
        &client_from("127.0.0.5"),
        &app.address,
        "/api/auth/register",
        &[],
        body.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");

    let first = client_from("127.0.0.3");
    let login_path = "/api/auth/login";
    let r = post_with(&first, &front, login_path, &[], body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let token = r.body["token"].as_str().unwrap().to_owned();
    assert_eq!(session_ip(&front, &token).await, "127.0.0.3");
    // nginx appends to what the client sent: the client's own entry is not believed.
    let spoofed = [("X-Forwarded-For", "192.0.2.1")];
    let r = post_with(&first, &front, login_path, &spoofed, body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let token = r.body["token"].as_str().unwrap().to_owned();
    assert_eq!(session_ip(&front, &token).await, "127.0.0.3");
    assert_limited(&post_with(&first, &front, login_path, &spoofed, body.clone()).await);
    // Straight to the server, past the proxy, the header is not believed either: the same
    // client, already at its limit.
    assert_limited(&post_with(&first, &app.address, login_path, &spoofed, body.clone()).await);

    let second = client_from("127.0.0.4");
    let r = post_with(&second, &front, login_path, &[], body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let token = r.body["token"].as_str().unwrap().to_owned();
    assert_eq!(session_ip(&front, &token).await, "127.0.0.4");
}

/// `LETSCHAT_TRUSTED_PROXIES` as the server reads it.
fn proxies(raw: &str) -> letschat::client_addr::TrustedProxies {
    letschat::client_addr::TrustedProxies::parse(raw).unwrap()
}
