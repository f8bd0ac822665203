//! Assertions and request helpers shared by the REST API tests (on top of `helpers`).
#![allow(dead_code)]

use std::collections::BTreeSet;

use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{Resp, TestApp, User};

/// The password every helper-registered user has (see `TestApp::register`).
pub const PASSWORD: &str = "tortoise-42";

/// The keys of a JSON object (panics on anything else).
/// `key` of every object in the array `v`.
pub fn pluck<'a>(v: &'a Value, key: &str) -> Vec<&'a Value> {
    v.as_array()
        .map(|a| a.iter().map(|o| &o[key]).collect())
        .unwrap_or_default()
}

pub fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("expected a JSON object, got {v}"))
        .keys()
        .cloned()
        .collect()
}

pub fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// An RFC 3339 UTC timestamp.
pub fn assert_utc_time(v: &Value) {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("time must be a string: {v}"));
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("'{s}' is not RFC 3339: {e}"));
    assert_eq!(t.offset().local_minus_utc(), 0, "'{s}' is not UTC");
}

/// A `user` object: exactly `{id, username, display_name, created_at}`.
pub fn assert_user(v: &Value) {
    assert_eq!(
        keys(v),
        set(&["id", "username", "display_name", "created_at"]),
        "user object: {v}"
    );
    assert!(v["id"].as_i64().is_some_and(|id| id > 0), "{v}");
    assert!(v["username"].is_string(), "{v}");
    assert!(v["display_name"].is_string(), "{v}");
    assert_utc_time(&v["created_at"]);
}

/// A `message` object: exactly `{id, room_id, seq, sender_id, client_msg_id, body, created_at,
/// edited_at, deleted_at, reply_to, reactions, change_seq}`, a deleted one with an empty body,
/// no reactions and no reply.
pub fn assert_message(v: &Value) {
    assert_eq!(
        keys(v),
        set(&[
            "id",
            "room_id",
            "seq",
            "sender_id",
            "client_msg_id",
            "body",
            "created_at",
            "edited_at",
            "deleted_at",
            "reply_to",
            "reactions",
            "change_seq",
            "attachments"
        ]),
        "message object: {v}"
    );
    for k in ["id", "room_id", "seq", "sender_id", "change_seq"] {
        assert!(v[k].is_i64(), "{k} must be an integer: {v}");
    }
    assert!(
        v["client_msg_id"].is_string() && v["body"].is_string(),
        "{v}"
    );
    assert!(
        v["attachments"].is_array(),
        "attachments must be an array: {v}"
    );
    if !v["deleted_at"].is_null() {
        assert_eq!(
            v["attachments"],
            serde_json::json!([]),
            "a tombstone carries no files: {v}"
        );
    }
    assert_utc_time(&v["created_at"]);
    for k in ["edited_at", "deleted_at"] {
        if !v[k].is_null() {
            assert_utc_time(&v[k]);
        }
    }
    assert!(v["reply_to"].is_null() || v["reply_to"].is_i64(), "{v}");
    let reactions = v["reactions"].as_array().expect("reactions is an array");
    for r in reactions {
        assert_eq!(keys(r), set(&["emoji", "user_ids"]), "reaction: {v}");
        assert!(
            r["user_ids"].as_array().is_some_and(|u| !u.is_empty()),
            "{v}"
        );
    }
    if !v["deleted_at"].is_null() {
        assert_eq!(v["body"], "", "a deleted message has no body: {v}");
        assert!(reactions.is_empty() && v["reply_to"].is_null(), "{v}");
    }
}

/// A `contact` object: exactly `{user, room_id, last_message, unread_count, online}`.
pub fn assert_contact(v: &Value) {
    assert_eq!(
        keys(v),
        set(&["user", "room_id", "last_message", "unread_count", "online"]),
        "contact object: {v}"
    );
    assert_user(&v["user"]);
    assert!(v["room_id"].is_i64(), "{v}");
    assert!(v["unread_count"].as_i64().is_some_and(|n| n >= 0), "{v}");
    assert!(v["online"].is_boolean(), "{v}");
    if !v["last_message"].is_null() {
        assert_message(&v["last_message"]);
    }
}

/// A `room` object: exactly `{id, members, created_at, last_seq, last_change_seq,
/// unread_count, read_up_to}` with two members.
pub fn assert_room(v: &Value) {
    assert_eq!(
        keys(v),
        set(&[
            "id",
            "members",
            "created_at",
            "last_seq",
            "last_change_seq",
            "unread_count",
            "read_up_to"
        ]),
        "room object: {v}"
    );
    assert!(v["unread_count"].as_i64().is_some_and(|n| n >= 0), "{v}");
    assert!(
        v["read_up_to"]
            .as_i64()
            .is_some_and(|n| n >= 0 && n <= v["last_seq"].as_i64().unwrap_or(0)),
        "{v}"
    );
    assert!(v["id"].is_i64(), "{v}");
    let members = v["members"].as_array().expect("members is an array");
    assert_eq!(members.len(), 2, "a room has exactly two members: {v}");
    members.iter().for_each(assert_user);
    assert_utc_time(&v["created_at"]);
    assert!(v["last_seq"].as_i64().is_some_and(|n| n >= 0), "{v}");
    assert!(v["last_change_seq"].as_i64().is_some_and(|n| n >= 0), "{v}");
}

/// Asserts the status, the JSON content type and the exact error shape
/// `{"error": {"code", "message", "fields"?}}` with the given code; `fields` appears exactly
/// for `validation_failed`.
pub fn assert_error(r: &Resp, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "expected {status} {code}, got {r:?}");
    let ct = r
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        ct.starts_with("application/json"),
        "error content type is '{ct}': {r:?}"
    );
    assert_eq!(keys(&r.body), set(&["error"]), "error body: {}", r.body);
    let e = &r.body["error"];
    let expected_keys = if code == "validation_failed" {
        set(&["code", "message", "fields"])
    } else {
        set(&["code", "message"])
    };
    assert_eq!(keys(e), expected_keys, "error object: {}", r.body);
    assert_eq!(e["code"], json!(code), "error code: {}", r.body);
    let message = e["message"].as_str().expect("message is a string");
    assert!(!message.trim().is_empty(), "empty error message");
    if code == "validation_failed" {
        let fields = e["fields"].as_object().expect("fields is an object");
        assert!(!fields.is_empty(), "validation_failed without fields");
        for (k, why) in fields {
            assert!(
                why.as_str().is_some_and(|s| !s.is_empty()),
                "field {k}: {why}"
            );
        }
    }
}

/// Like `assert_error` for 422, and checks `fields` names exactly `names`.
pub fn assert_invalid(r: &Resp, names: &[&str]) {
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        keys(&r.body["error"]["fields"]),
        set(names),
        "invalid fields: {}",
        r.body
    );
}

/// A raw response: status, headers, body text.
#[derive(Debug)]
pub struct RawResp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl RawResp {
    pub fn content_type(&self) -> &str {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> Resp {
        Resp {
            status: self.status,
            headers: self.headers.clone(),
            body: serde_json::from_str(&self.text).unwrap_or(Value::Null),
        }
    }
}

/// Sends a request with exactly the given content type (or none) and raw body bytes.
pub async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> RawResp {
    let mut req = app.client.request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(ct) = content_type {
        req = req.header(CONTENT_TYPE, ct);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let res = req.send().await.expect("request sent");
    RawResp {
        status: res.status(),
        headers: res.headers().clone(),
        text: res.text().await.expect("body read"),
    }
}

/// Sends a request with an arbitrary `Authorization` header value (or none).
pub async fn with_authorization(
    app: &TestApp,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<Value>,
) -> Resp {
    let mut req = app.client.request(method, app.url(path));
    if let Some(a) = authorization {
        req = req.header(reqwest::header::AUTHORIZATION, a);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request sent");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.expect("body read");
    Resp {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// `POST /api/auth/register` with any JSON body.
pub async fn register_raw(app: &TestApp, body: Value) -> Resp {
    app.call(Method::POST, "/api/auth/register", None, Some(body))
        .await
}

/// `POST /api/auth/login`.
pub async fn login(app: &TestApp, username: &str, password: &str) -> Resp {
    app.call(
        Method::POST,
        "/api/auth/login",
        None,
        Some(json!({"username": username, "password": password})),
    )
    .await
}

/// Registers a user with a display name.
pub async fn register_named(app: &TestApp, username: &str, display_name: &str) -> User {
    let r = register_raw(
        app,
        json!({"username": username, "password": PASSWORD, "display_name": display_name}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "register {username}: {r:?}");
    User {
        id: r.body["user"]["id"].as_i64().expect("user id"),
        username: username.to_owned(),
        token: r.body["token"].as_str().expect("token").to_owned(),
    }
}

/// Registers `name` and makes them an administrator through `letschat admin create`.
pub async fn admin(app: &TestApp, name: &str) -> User {
    let user = app.register(name).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_letschat"))
        .args(["admin", "create", "--username", name])
        .env("DATABASE_URL", &app.database_url)
        .env("LETSCHAT_BCRYPT_COST", "4")
        .env_remove("LETSCHAT_ADMIN_PASSWORD")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("the CLI runs");
    assert!(out.status.success(), "admin create: {out:?}");
    user
}

/// One page of a room's history: `query` is the query string without `?` (may be empty).
pub async fn history(app: &TestApp, user: &User, room: i64, query: &str) -> Resp {
    let path = if query.is_empty() {
        format!("/api/rooms/{room}/messages")
    } else {
        format!("/api/rooms/{room}/messages?{query}")
    };
    app.get(&path, &user.token).await
}

/// A 200 page: its seqs and `has_more`, after checking every message's shape and the order.
pub async fn page(app: &TestApp, user: &User, room: i64, query: &str) -> (Vec<i64>, bool) {
    let r = history(app, user, room, query).await;
    assert_eq!(r.status, StatusCode::OK, "history ?{query}: {r:?}");
    assert_eq!(keys(&r.body), set(&["messages", "has_more"]), "{}", r.body);
    let messages = r.body["messages"].as_array().expect("messages array");
    messages.iter().for_each(assert_message);
    let seqs: Vec<i64> = messages
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "page not ascending: {seqs:?}"
    );
    assert!(
        messages.iter().all(|m| m["room_id"] == json!(room)),
        "a message of another room"
    );
    (seqs, r.body["has_more"].as_bool().expect("has_more bool"))
}

/// `user`'s contacts list (checked for shape).
pub async fn contacts(app: &TestApp, user: &User) -> Vec<Value> {
    let r = app.get("/api/contacts", &user.token).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let list = r.body.as_array().expect("contacts array").clone();
    list.iter().for_each(assert_contact);
    list
}

/// The usernames of `user`'s contacts, in list order.
pub async fn contact_names(app: &TestApp, user: &User) -> Vec<String> {
    contacts(app, user)
        .await
        .iter()
        .map(|c| c["user"]["username"].as_str().expect("username").to_owned())
        .collect()
}

/// `user`'s contact entry for `other`.
pub async fn contact_of(app: &TestApp, user: &User, other: &User) -> Value {
    contacts(app, user)
        .await
        .into_iter()
        .find(|c| c["user"]["id"] == json!(other.id))
        .unwrap_or_else(|| panic!("{} is not a contact of {}", other.username, user.username))
}

/// `user`'s unread count in the room shared with `other` (from the contacts list).
pub async fn unread(app: &TestApp, user: &User, other: &User) -> i64 {
    contact_of(app, user, other).await["unread_count"]
        .as_i64()
        .expect("unread_count")
}

/// `POST /api/rooms/{room}/read`.
pub async fn mark_read(app: &TestApp, user: &User, room: i64, up_to: Value) -> Resp {
    app.post(
        &format!("/api/rooms/{room}/read"),
        &user.token,
        json!({ "up_to": up_to }),
    )
    .await
}

/// `POST /api/rooms/{room}/messages` with any JSON body.
pub async fn send_raw(app: &TestApp, user: &User, room: i64, body: Value) -> Resp {
    app.post(&format!("/api/rooms/{room}/messages"), &user.token, body)
        .await
}

/// Unpadded base64url, as JWTs use.
pub fn b64url(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[test]
fn b64url_matches_known_values() {
    assert_eq!(b64url(b""), "");
    assert_eq!(b64url(b"f"), "Zg");
    assert_eq!(b64url(b"fo"), "Zm8");
    assert_eq!(b64url(b"foo"), "Zm9v");
    assert_eq!(b64url(b"foob"), "Zm9vYg");
    assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
    assert_eq!(
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"
    );
}

/// The session a token of a test server names (its `sid` claim).
pub fn session_of(token: &str) -> i64 {
    let secret = crate::helpers::test_config(String::new()).jwt_secret;
    letschat::auth::TokenService::new(&secret, std::time::Duration::from_secs(3600))
        .verify(token)
        .and_then(|c| c.sid)
        .expect("a token of the test server, naming its session")
}

/// The newest 200 entries of the audit log, as an administrator (`token`) reads them.
pub async fn audit_entries(app: &TestApp, token: &str) -> Vec<Value> {
    let r = app.get("/api/admin/audit?limit=200", token).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    r.body["entries"].as_array().expect("entries").clone()
}

/// `s` percent-encoded for a URL path segment (every byte but ASCII letters and digits).
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Adds (`PUT`) or takes back (`DELETE`) `user`'s reaction `emoji` on message `id`.
pub async fn react(
    app: &TestApp,
    user: &User,
    room: i64,
    id: &Value,
    emoji: &str,
    add: bool,
) -> Resp {
    let method = if add { Method::PUT } else { Method::DELETE };
    app.call(
        method,
        &format!("/api/rooms/{room}/messages/{id}/reactions/{}", enc(emoji)),
        Some(&user.token),
        None,
    )
    .await
}
