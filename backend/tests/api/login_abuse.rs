//! Logins an attacker cannot deny or lock: device tokens beat an account lockout, an
//! administrator's reset (REST or `letschat admin reset-password`) clears the throttle, every
//! byte of a password counts, common and username passwords are refused, JWTs with a future
//! `nbf` or a `crit` header are refused, a login flood from many addresses leaves a user of
//! another network able to sign in, and the per-address limit answers before the body is read.

use std::net::IpAddr;
use std::process::Stdio;
use std::time::Duration;

use diesel::{Connection, RunQueryDsl};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{spawn_app_with, Resp, TestApp};
use crate::support::{assert_error, assert_invalid, register_raw, PASSWORD};

const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

async fn login_with(app: &TestApp, username: &str, password: &str, device: Option<&str>) -> Resp {
    let mut body = json!({"username": username, "password": password});
    if let Some(d) = device {
        body["device_token"] = json!(d);
    }
    app.call(Method::POST, "/api/auth/login", None, Some(body))
        .await
}

/// Registers `name` with `PASSWORD`; (user id, token, device token).
async fn register(app: &TestApp, name: &str) -> (i64, String, String) {
    let r = register_raw(app, json!({"username": name, "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let device = r.body["device_token"]
        .as_str()
        .expect("device_token")
        .to_owned();
    assert!(device.len() >= 20, "{device}");
    (
        r.body["user"]["id"].as_i64().unwrap(),
        r.body["token"].as_str().unwrap().to_owned(),
        device,
    )
}

fn assert_locked(r: &Resp) {
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(
        r.headers.get(reqwest::header::RETRY_AFTER).is_some(),
        "{r:?}"
    );
}

/// Fails `n` logins on `name` without a device token (the attacker).
async fn guess(app: &TestApp, name: &str, n: usize) {
    for i in 0..n {
        let r = login_with(app, name, &format!("guess-{i}-wrong"), None).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    }
}

#[tokio::test]
async fn a_device_token_beats_a_lockout() {
    let app = spawn_app_with(|c| c.auth_limits.failed_logins_per_hour = 5).await;
    let (_, _, device) = register(&app, "alice").await;
    let (_, _, bobs_device) = register(&app, "bob").await;
    // The attacker locks the account.
    guess(&app, "alice", 5).await;
    assert_locked(&login_with(&app, "alice", "guess-5-wrong", None).await);
    // Without a device token the owner is locked out too, even with the right password; so is
    // anyone with a forged token or another account's.
    assert_locked(&login_with(&app, "alice", PASSWORD, None).await);
    assert_locked(&login_with(&app, "alice", PASSWORD, Some(&bobs_device)).await);
    let forged = format!("{}x", &device[..device.len() - 1]);
    assert_locked(&login_with(&app, "alice", PASSWORD, Some(&forged)).await);
    assert_locked(&login_with(&app, "alice", PASSWORD, Some("not-a-token")).await);
    // With its device token the owner signs in, and gets a new token that works as well.
    let r = login_with(&app, "ALICE", PASSWORD, Some(&device)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let token = r.body["token"].as_str().unwrap();
    assert_eq!(app.get("/api/me", token).await.status, StatusCode::OK);
    let fresh = r.body["device_token"].as_str().unwrap().to_owned();
    assert_ne!(fresh, device);
    let r = login_with(&app, "alice", PASSWORD, Some(&fresh)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    // The account stays locked for everyone else.
    assert_locked(&login_with(&app, "alice", PASSWORD, None).await);
}

#[tokio::test]
async fn a_wrong_password_with_a_device_token_counts_only_against_that_token() {
    let app = spawn_app_with(|c| {
        c.auth_limits.failed_logins_per_hour = 2;
        c.auth_limits.failed_logins_per_device = 2;
    })
    .await;
    let (_, _, device) = register(&app, "alice").await;
    for i in 0..2 {
        let r = login_with(&app, "alice", &format!("typo-{i}-wrong"), Some(&device)).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // The token is used up...
    assert_locked(&login_with(&app, "alice", PASSWORD, Some(&device)).await);
    // ...but the account's own allowance (2) was not touched: a login without a token works.
    let r = login_with(&app, "alice", PASSWORD, None).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let other_device = r.body["device_token"].as_str().unwrap().to_owned();
    // Another device token of the account is judged on its own failures (none).
    let r = login_with(&app, "alice", PASSWORD, Some(&other_device)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_locked(&login_with(&app, "alice", PASSWORD, Some(&device)).await);
}

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

#[tokio::test]
async fn an_admin_password_reset_clears_the_throttle() {
    let app = spawn_app_with(|c| c.auth_limits.failed_logins_per_hour = 3).await;
    let (_, root_token, _) = register(&app, "root").await;
    let (ok, out, err) = cli(&app, &["create", "--username", "root"], None).await;
    assert!(ok, "{out} {err}");
    let (alice, _, _) = register(&app, "alice").await;
    // An administrator's account can be locked the same way...
    guess(&app, "root", 3).await;
    assert_locked(&login_with(&app, "root", PASSWORD, None).await);
    guess(&app, "alice", 3).await;
    assert_locked(&login_with(&app, "alice", PASSWORD, None).await);
    let path = format!("/api/admin/users/{alice}/password");
    // The new password follows the rules.
    let r = app
        .post(&path, &root_token, json!({"password": "iloveyou"}))
        .await;
    assert_invalid(&r, &["password"]);
    let r = app
        .post(&path, &root_token, json!({"password": "ALICE"}))
        .await;
    assert_invalid(&r, &["password"]);
    assert_locked(&login_with(&app, "alice", PASSWORD, None).await);
    let r = app
        .post(
            &path,
            &root_token,
            json!({"password": "new secret ✨ for alice"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    // The throttle is gone: the old password is just wrong, the new one works.
    let r = login_with(&app, "alice", PASSWORD, None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    let r = login_with(&app, "alice", "new secret ✨ for alice", None).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
}

#[tokio::test]
async fn the_cli_reset_password_clears_the_throttle() {
    let app = spawn_app_with(|c| c.auth_limits.failed_logins_per_hour = 3).await;
    let (_, old_token, _) = register(&app, "Alice").await;
    guess(&app, "alice", 3).await;
    assert_locked(&login_with(&app, "alice", PASSWORD, None).await);
    // Refused passwords change nothing.
    let (ok, _, err) = cli(&app, &["reset-password", "alice"], Some("password1")).await;
    assert!(!ok && err.contains("common"), "{err}");
    let (ok, _, err) = cli(&app, &["reset-password", "alice"], Some("aLiCe")).await;
    assert!(!ok, "{err}");
    let (ok, _, err) = cli(&app, &["reset-password", "nobody"], Some("whatever-it-is")).await;
    assert!(!ok && err.contains("nobody"), "{err}");
    let (ok, _, err) = cli(&app, &["reset-password", "alice"], None).await;
    assert!(!ok && err.contains("LETSCHAT_ADMIN_PASSWORD"), "{err}");
    assert_locked(&login_with(&app, "alice", PASSWORD, None).await);

    let (ok, out, err) = cli(&app, &["reset-password", "alice"], Some("שלום-עולם-2026")).await;
    assert!(ok, "{out} {err}");
    assert!(out.contains("Alice"), "{out}");
    // The running server sees the reset: throttle cleared, old sessions ended.
    let r = login_with(&app, "alice", "שלום-עולם-2026", None).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_error(
        &app.get("/api/me", &old_token).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

#[tokio::test]
async fn every_byte_of_a_long_password_counts() {
    let app = spawn_app_with(|_| {}).await;
    // 72 bytes in common (24 three-byte characters), then different tails.
    let head = "€".repeat(24);
    assert_eq!(head.len(), 72);
    let first = format!("{head} first tail");
    let second = format!("{head} second tail");
    let r = register_raw(&app, json!({"username": "alice", "password": first})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let r = login_with(&app, "alice", &second, None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    let r = login_with(&app, "alice", &head, None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    let r = login_with(&app, "alice", &first, None).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
}

#[derive(diesel::QueryableByName)]
struct HashRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    password_hash: String,
}

/// Runs `sql` on the app's database and returns the password hashes it selects.
fn hashes(database_url: &str, sql: &str, select: &str) -> Vec<String> {
    let rows: Vec<HashRow> = if let Some(path) = database_url.strip_prefix("sqlite://") {
        let mut c = diesel::SqliteConnection::establish(path).unwrap();
        diesel::sql_query(sql).execute(&mut c).unwrap();
        diesel::sql_query(select).load(&mut c).unwrap()
    } else {
        let mut c = diesel::PgConnection::establish(database_url).unwrap();
        diesel::sql_query(sql).execute(&mut c).unwrap();
        diesel::sql_query(select).load(&mut c).unwrap()
    };
    rows.into_iter().map(|r| r.password_hash).collect()
}

#[tokio::test]
async fn a_legacy_bcrypt_hash_still_verifies_and_is_upgraded() {
    let app = spawn_app_with(|_| {}).await;
    register(&app, "alice").await;
    let legacy = bcrypt::hash("an old plain password", 4).unwrap();
    let select = "SELECT password_hash FROM users WHERE username_key = 'alice'";
    let before = hashes(
        &app.database_url,
        &format!("UPDATE users SET password_hash = '{legacy}' WHERE username_key = 'alice'"),
        select,
    );
    assert_eq!(before, vec![legacy.clone()]);
    let r = login_with(&app, "alice", "an old plain password", None).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let after = hashes(&app.database_url, "SELECT 1", select);
    assert!(after[0].starts_with("sha256:$2"), "{after:?}");
    let r = login_with(&app, "alice", "an old plain password", None).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let r = login_with(&app, "alice", "an old plain passworD", None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn common_passwords_and_the_username_are_refused() {
    let app = spawn_app_with(|_| {}).await;
    for password in [
        "password",
        "PASSWORD",
        "iloveyou",
        "12345678",
        "qwertyuiop",
        "trustno1",
    ] {
        let r = register_raw(&app, json!({"username": "alice", "password": password})).await;
        assert_invalid(&r, &["password"]);
        assert!(
            r.body["error"]["fields"]["password"]
                .as_str()
                .unwrap()
                .contains("common"),
            "{r:?}"
        );
    }
    let r = register_raw(
        &app,
        json!({"username": "Alice.Liddell", "password": "aLICE.lIDDELL"}),
    )
    .await;
    assert_invalid(&r, &["password"]);
    assert!(
        r.body["error"]["fields"]["password"]
            .as_str()
            .unwrap()
            .contains("username"),
        "{r:?}"
    );
    // Both problems at once are reported together.
    let r = register_raw(&app, json!({"username": "a b", "password": "password"})).await;
    assert_invalid(&r, &["username", "password"]);
    // Nothing was created; a good password goes through.
    let r = register_raw(
        &app,
        json!({"username": "Alice.Liddell", "password": "down the rabbit hole 🐇"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
}

#[tokio::test]
async fn admin_created_accounts_follow_the_password_rules() {
    let app = spawn_app_with(|_| {}).await;
    let (_, root, _) = register(&app, "root").await;
    let (ok, out, err) = cli(&app, &["create", "--username", "root"], None).await;
    assert!(ok, "{out} {err}");
    for password in ["letmein1", "Dora.Explorer"] {
        let r = app
            .post(
                "/api/admin/users",
                &root,
                json!({"username": "dora.explorer", "password": password}),
            )
            .await;
        assert_invalid(&r, &["password"]);
    }
    // And the command line's `admin create`.
    let (ok, _, err) = cli(&app, &["create", "--username", "eve"], Some("sunshine")).await;
    assert!(!ok && err.contains("common"), "{err}");
    let (ok, _, err) = cli(&app, &["create", "--username", "eve"], Some("EVE")).await;
    assert!(!ok, "{err}");
}

fn sign(header: &Header, claims: &Value) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(SECRET)).unwrap()
}

#[tokio::test]
async fn jwts_with_a_future_nbf_or_a_crit_header_are_refused() {
    let app = spawn_app_with(|_| {}).await;
    let (id, token, _) = register(&app, "alice").await;
    let sid = crate::support::session_of(&token);
    let now = chrono::Utc::now().timestamp();
    let claims = |extra: Value| {
        let mut c = json!({"sub": id.to_string(), "iat": now, "exp": now + 600, "jti": format!("t-{extra}"), "gen": 0, "sid": sid});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                c[k] = v;
            }
        }
        c
    };
    let plain = Header::new(Algorithm::HS256);
    // The same claims signed the same way work: what follows is refused for nbf/crit alone.
    let ok = sign(&plain, &claims(json!({"nbf": now - 60})));
    assert_eq!(app.get("/api/me", &ok).await.status, StatusCode::OK);

    let early = sign(&plain, &claims(json!({"nbf": now + 3600})));
    assert_error(
        &app.get("/api/me", &early).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    let mut crit = Header::new(Algorithm::HS256);
    crit.crit = Some(vec!["exp".into()]);
    let t = sign(&crit, &claims(json!({})));
    assert_error(
        &app.get("/api/me", &t).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let mut crit = Header::new(Algorithm::HS256);
    crit.crit = Some(vec!["x-unknown".into()]);
    crit.extras.insert("x-unknown", "1");
    let t = sign(&crit, &claims(json!({})));
    assert_error(
        &app.get("/api/me", &t).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().ok())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_login_flood_from_many_addresses_does_not_stop_a_user_of_another_network() {
    // One hasher and a short queue: the flood alone can fill it many times over. (Paced at
    // the default share, each of the flood's wrong passwords holds public hashing back for ten
    // times its hash: at cost 8 in a debug build on a busy machine that reaches the 10 s a login
    // may wait, which is the documented limit for new devices, not what this test is about.)
    let app = spawn_app_with(|c| {
        c.bcrypt_cost = 6;
        c.hash_concurrency = 1;
        c.hash_queue = 6;
        c.hash_per_prefix = 3;
        c.hash_per_address = 2;
    })
    .await;
    register(&app, "alice").await;
    let url = app.url("/api/auth/login");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut attackers = Vec::new();
    let sources = (2..=41)
        .map(|i| format!("127.0.0.{i}"))
        .chain((2..=11).map(|i| format!("127.0.1.{i}")))
        .chain((2..=11).map(|i| format!("127.0.2.{i}")));
    for ip in sources {
        let (client, url, stop) = (client_from(&ip), url.clone(), stop.clone());
        attackers.push(tokio::spawn(async move {
            let (mut refused, mut answered) = (0u32, 0u32);
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let body =
                    json!({"username": format!("victim{}", n % 7), "password": "hunter2-wrong"});
                match client.post(&url).json(&body).send().await {
                    Ok(r) if r.status() == StatusCode::TOO_MANY_REQUESTS => refused += 1,
                    Ok(_) => answered += 1,
                    Err(_) => {}
                }
            }
            (refused, answered)
        }));
    }
    // Let the flood fill the queue, then the real user signs in from another /24.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let user = client_from("127.0.9.9");
    let mut ok = 0;
    let attempts = 8;
    for _ in 0..attempts {
        let r = user
            .post(&url)
            .json(&json!({"username": "alice", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::OK {
            ok += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut refused, mut answered) = (0, 0);
    for a in attackers {
        let (r, a) = a.await.unwrap();
        refused += r;
        answered += a;
    }
    assert!(
        refused > 0,
        "the flood never filled its share: {answered} answered"
    );
    assert_eq!(
        ok, attempts,
        "the real user got {ok}/{attempts} logins through ({refused} flood requests refused, {answered} answered)"
    );
}

#[tokio::test]
async fn the_per_address_limit_answers_before_reading_the_body() {
    let app = spawn_app_with(|c| c.auth_limits.per_ip_per_minute = 2).await;
    register(&app, "alice").await; // 1
    let r = login_with(&app, "alice", PASSWORD, None).await; // 2
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    for path in ["/api/auth/login", "/api/auth/register"] {
        // Announce a large body, send only its first bytes, and never the rest.
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
            .await
            .unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: 60000\r\n\r\n{{\"username\":\"alice\",\"password\":\""
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        // A guard, not a timing assertion: a server waiting for the body would never answer.
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
            .await
            .expect("answered without the body")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 429"), "{path}: {text}");
        assert!(text.to_ascii_lowercase().contains("retry-after:"), "{text}");
        assert!(text.contains("rate_limited"), "{text}");
    }
}
