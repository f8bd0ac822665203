//! The error shape for failures actix or the extractors produce: bad JSON, wrong content type,
//! oversized bodies, unknown paths, wrong methods.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{spawn_app, TestApp, User};
use crate::support::*;

const JSON: Option<&str> = Some("application/json");

async fn post_raw(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> crate::helpers::Resp {
    raw(
        app,
        Method::POST,
        path,
        token,
        content_type,
        Some(body.to_vec()),
    )
    .await
    .json()
}

async fn setup() -> (TestApp, User, i64) {
    let app = spawn_app().await;
    let (alice, _, room) = app.pair("alice", "bob").await;
    (app, alice, room)
}

#[tokio::test]
async fn malformed_json_is_400_invalid_json() {
    let (app, alice, room) = setup().await;
    let bodies: [&[u8]; 7] = [
        b"{",
        b"{\"username\": \"carol\", \"password\": }",
        b"not json at all",
        b"",
        b"   ",
        b"{\"username\":\"carol\",\"password\":\"tortoise-42\"} trailing",
        b"\xff\xfe{}",
    ];
    for body in bodies {
        let r = post_raw(&app, "/api/auth/register", None, JSON, body).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_json");
        let r = post_raw(&app, "/api/contacts", Some(&alice.token), JSON, body).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_json");
        let path = format!("/api/rooms/{room}/messages");
        let r = post_raw(&app, &path, Some(&alice.token), JSON, body).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_json");
        let path = format!("/api/rooms/{room}/read");
        let r = post_raw(&app, &path, Some(&alice.token), JSON, body).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_json");
    }
    // Nothing was created by any of it.
    assert_eq!(
        login(&app, "carol", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let h = history(&app, &alice, room, "").await;
    assert_eq!(h.body["messages"], json!([]));
}

#[tokio::test]
async fn a_charset_or_json_suffix_is_still_json() {
    let app = spawn_app().await;
    let r = post_raw(
        &app,
        "/api/auth/register",
        None,
        Some("application/json; charset=utf-8"),
        br#"{"username":"alice","password":"tortoise-42"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let r = post_raw(
        &app,
        "/api/auth/login",
        None,
        Some("Application/JSON"),
        br#"{"username":"alice","password":"tortoise-42"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_415() {
    let (app, alice, room) = setup().await;
    let body = br#"{"username":"carol","password":"tortoise-42"}"#;
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/xml"),
        Some("json"),
    ] {
        let r = post_raw(&app, "/api/auth/register", None, ct, body).await;
        assert_error(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
        let r = post_raw(&app, "/api/auth/login", None, ct, body).await;
        assert_error(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
        let path = format!("/api/rooms/{room}/messages");
        let r = post_raw(
            &app,
            &path,
            Some(&alice.token),
            ct,
            br#"{"client_msg_id":"x","body":"hi"}"#,
        )
        .await;
        assert_error(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
    }
    assert_eq!(
        login(&app, "carol", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let h = history(&app, &alice, room, "").await;
    assert_eq!(h.body["messages"], json!([]));
}

/// A message request whose JSON is exactly `total` bytes long.
fn message_of_size(total: usize) -> Vec<u8> {
    let empty = br#"{"client_msg_id":"big","body":""}"#.len();
    let body = "x".repeat(total - empty);
    let doc = format!(r#"{{"client_msg_id":"big","body":"{body}"}}"#).into_bytes();
    assert_eq!(doc.len(), total);
    doc
}

#[tokio::test]
async fn bodies_over_64_kib_are_413() {
    let (app, alice, room) = setup().await;
    let path = format!("/api/rooms/{room}/messages");
    // Exactly 64 KiB is read (and then refused for the message's length).
    let r = post_raw(
        &app,
        &path,
        Some(&alice.token),
        JSON,
        &message_of_size(65_536),
    )
    .await;
    assert_invalid(&r, &["body"]);
    // One byte more is too large.
    let r = post_raw(
        &app,
        &path,
        Some(&alice.token),
        JSON,
        &message_of_size(65_537),
    )
    .await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let r = post_raw(
        &app,
        &path,
        Some(&alice.token),
        JSON,
        &message_of_size(1_000_000),
    )
    .await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // On the public endpoints too.
    let big = format!(
        r#"{{"username":"carol","password":"tortoise-42","display_name":"{}"}}"#,
        "d".repeat(70_000)
    );
    let r = post_raw(&app, "/api/auth/register", None, JSON, big.as_bytes()).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // The server is fine afterwards.
    let m = app.send(&alice, room, "after", "still works").await;
    assert_eq!(m["seq"], 1);
}

#[tokio::test]
async fn unknown_api_paths_are_json_404() {
    let (app, alice, room) = setup().await;
    for path in [
        "/api/nope".to_owned(),
        "/api/".to_owned(),
        "/api".to_owned(),
        "/api/users".to_owned(),
        "/api/contacts/1/extra".to_owned(),
        format!("/api/rooms/{room}/nope"),
        format!("/api/rooms/{room}/messages/1/extra"),
        "/api/auth".to_owned(),
        "/api/auth/register/x".to_owned(),
    ] {
        let r = app.get(&path, &alice.token).await;
        assert_error(&r, StatusCode::NOT_FOUND, "not_found");
        // Without a token too: a missing route is not an auth question.
        let r = app.call(Method::GET, &path, None, None).await;
        assert_error(&r, StatusCode::NOT_FOUND, "not_found");
        let r = app.call(Method::POST, &path, None, Some(json!({}))).await;
        assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    }
}

fn allow(r: &crate::helpers::Resp) -> Vec<String> {
    let mut v: Vec<String> = r
        .headers
        .get(reqwest::header::ALLOW)
        .unwrap_or_else(|| panic!("405 without Allow: {r:?}"))
        .to_str()
        .unwrap()
        .split(',')
        .map(|m| m.trim().to_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow() {
    let (app, alice, room) = setup().await;
    let cases: Vec<(Method, String, Vec<&str>)> = vec![
        (Method::PUT, "/api/contacts".into(), vec!["GET", "POST"]),
        (Method::DELETE, "/api/contacts".into(), vec!["GET", "POST"]),
        (Method::PATCH, "/api/contacts".into(), vec!["GET", "POST"]),
        (Method::GET, "/api/auth/login".into(), vec!["POST"]),
        (Method::GET, "/api/auth/register".into(), vec!["POST"]),
        (Method::GET, "/api/auth/logout".into(), vec!["POST"]),
        (
            Method::PUT,
            "/api/me".into(),
            vec!["DELETE", "GET", "PATCH"],
        ),
        (
            Method::POST,
            "/api/me".into(),
            vec!["DELETE", "GET", "PATCH"],
        ),
        (Method::GET, "/api/me/password".into(), vec!["POST"]),
        (Method::POST, "/api/sessions".into(), vec!["GET"]),
        (Method::GET, "/api/sessions/5".into(), vec!["DELETE"]),
        (
            Method::GET,
            "/api/sessions/revoke-others".into(),
            vec!["POST"],
        ),
        (
            Method::DELETE,
            "/api/sessions/revoke-others".into(),
            vec!["POST"],
        ),
        (Method::POST, "/api/rooms".into(), vec!["GET"]),
        (Method::PUT, format!("/api/rooms/{room}"), vec!["GET"]),
        (
            Method::DELETE,
            format!("/api/rooms/{room}/messages"),
            vec!["GET", "POST"],
        ),
        (Method::GET, format!("/api/rooms/{room}/read"), vec!["POST"]),
        (Method::POST, "/api/users/search".into(), vec!["GET"]),
        (Method::POST, "/api/health".into(), vec!["GET"]),
        (Method::GET, "/api/contacts/5".into(), vec!["DELETE"]),
    ];
    for (method, path, allowed) in cases {
        let r = app
            .call(method.clone(), &path, Some(&alice.token), Some(json!({})))
            .await;
        assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        assert_eq!(allow(&r), allowed, "{method} {path}");
        // The same without a token.
        let r = app.call(method.clone(), &path, None, None).await;
        assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    }
}

#[tokio::test]
async fn validation_errors_name_every_field_with_a_reason() {
    let app = spawn_app().await;
    let r = register_raw(
        &app,
        json!({"username": "a", "password": "b", "display_name": " "}),
    )
    .await;
    assert_invalid(&r, &["username", "password", "display_name"]);
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("username") && msg.contains("password"),
        "{msg}"
    );
}

/// Sends a raw HTTP/1.1 request and returns everything the server wrote before closing.
async fn raw_http(app: &TestApp, request: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("the server did not close the connection")
        .unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let (app, alice, room) = setup().await;
    for path in [
        "/api/health".to_owned(),
        "/api/me".to_owned(),
        format!("/api/rooms/{room}/messages"),
    ] {
        let get = app.call(Method::GET, &path, Some(&alice.token), None).await;
        let response = raw_http(
            &app,
            format!(
                "HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
                 Connection: close\r\n\r\n",
                alice.token
            ),
        )
        .await;
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{path}: {head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{path}: {head}"
        );
        assert_eq!(body, "", "{path}: HEAD sent a body");
        assert_eq!(get.status, StatusCode::OK, "{path}");
    }
    // Auth and routing answer as for GET; a POST-only path is still a 405.
    let r = app.call(Method::HEAD, "/api/me", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app.call(Method::HEAD, "/api/auth/login", None, None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(allow(&r), ["POST"]);
}

/// The whole error body of a 422, as `(message, fields)`.
fn invalid(r: &crate::helpers::Resp) -> (String, serde_json::Map<String, serde_json::Value>) {
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{r:?}");
    assert_eq!(keys(&r.body), set(&["error"]), "{}", r.body);
    let e = &r.body["error"];
    assert_eq!(keys(e), set(&["code", "message", "fields"]), "{}", r.body);
    assert_eq!(e["code"], "validation_failed");
    (
        e["message"].as_str().unwrap().to_owned(),
        e["fields"].as_object().unwrap().clone(),
    )
}

#[tokio::test]
async fn a_body_missing_several_fields_names_every_one() {
    let (app, alice, room) = setup().await;
    let r = register_raw(&app, json!({})).await;
    assert_eq!(
        r.body,
        json!({"error": {
            "code": "validation_failed",
            "message": "password: is required; username: is required",
            "fields": {"password": "is required", "username": "is required"},
        }})
    );
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The same on every JSON endpoint: a message needs its id and its body.
    let r = send_raw(&app, &alice, room, json!({"reply_to": 1})).await;
    assert_eq!(
        invalid(&r).1,
        *json!({"client_msg_id": "is required", "body": "is required"})
            .as_object()
            .unwrap()
    );
    let r = app
        .post(&format!("/api/rooms/{room}/read"), &alice.token, json!({}))
        .await;
    assert_eq!(
        invalid(&r).1,
        *json!({"up_to": "is required"}).as_object().unwrap()
    );
    // Nothing was created.
    assert_eq!(
        history(&app, &alice, room, "").await.body["messages"],
        json!([])
    );
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_named_together() {
    let (app, alice, room) = setup().await;
    // A wrong type and a missing field.
    let r = register_raw(&app, json!({"username": 42, "display_name": "Zoë 🌷"})).await;
    let (message, fields) = invalid(&r);
    assert_eq!(
        fields.keys().collect::<Vec<_>>(),
        ["password", "username"],
        "{message}"
    );
    assert_eq!(fields["password"], "is required");
    assert_eq!(
        fields["username"],
        "invalid type: integer `42`, expected a string"
    );
    assert!(message.contains("password: is required"), "{message}");
    assert!(message.contains("username: invalid type"), "{message}");
    // Every field of a message at once, wrong types of every kind, a nested one with its path.
    let r = send_raw(
        &app,
        &alice,
        room,
        json!({"client_msg_id": null, "body": ["مرحبا"], "reply_to": "one",
               "attachments": ["3f2a9c0e5b7d41e8a6c4b2d0f9e8a7c6", 7]}),
    )
    .await;
    let (_, fields) = invalid(&r);
    assert_eq!(
        fields.keys().collect::<Vec<_>>(),
        ["attachments[1]", "body", "client_msg_id", "reply_to"]
    );
    assert_eq!(
        fields["reply_to"],
        "invalid type: string \"one\", expected i64"
    );
    // Once the types are right, the values are checked (all of them at once, as before).
    let r = register_raw(&app, json!({"username": "a", "password": "b"})).await;
    assert_invalid(&r, &["username", "password"]);
    assert_eq!(
        history(&app, &alice, room, "").await.body["messages"],
        json!([])
    );
}

#[tokio::test]
async fn a_body_that_is_not_an_object_says_so_and_names_no_field() {
    let (app, alice, room) = setup().await;
    for (body, kind) in [
        (json!([]), "an array"),
        (json!(["alice", "tortoise-42"]), "an array"),
        (json!("x"), "a string"),
        (json!(17), "a number"),
        (json!(null), "null"),
    ] {
        for r in [
            register_raw(&app, body.clone()).await,
            send_raw(&app, &alice, room, body.clone()).await,
            app.post(
                &format!("/api/rooms/{room}/read"),
                &alice.token,
                body.clone(),
            )
            .await,
        ] {
            assert_eq!(
                r.body,
                json!({"error": {
                    "code": "validation_failed",
                    "message": format!("the request body must be a JSON object, not {kind}"),
                    "fields": {},
                }}),
                "{body}"
            );
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        }
    }
}

#[tokio::test]
async fn path_parameters_that_are_not_integers_are_422_naming_them() {
    let (app, alice, room) = setup().await;
    let m = app.send(&alice, room, "m1", "hello").await;
    let message = m["id"].as_i64().unwrap();

    let r = app.get("/api/rooms/abc/messages", &alice.token).await;
    assert_eq!(
        r.body,
        json!({"error": {
            "code": "validation_failed",
            "message": "room_id: must be an integer, not 'abc'",
            "fields": {"room_id": "must be an integer, not 'abc'"},
        }})
    );
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // As a bad query parameter is.
    let r = app
        .get(
            &format!("/api/rooms/{room}/messages?before=abc"),
            &alice.token,
        )
        .await;
    assert_invalid(&r, &["before"]);

    // Every path integer, on every method; each bad one named.
    let cases: Vec<(Method, String, Option<serde_json::Value>, Vec<&str>)> = vec![
        (Method::GET, "/api/rooms/abc".into(), None, vec!["room_id"]),
        (
            Method::GET,
            "/api/rooms/1.5/changes".into(),
            None,
            vec!["room_id"],
        ),
        (
            Method::POST,
            "/api/rooms/x/messages".into(),
            Some(json!({"client_msg_id": "a", "body": "hi"})),
            vec!["room_id"],
        ),
        (
            Method::POST,
            "/api/rooms/%F0%9F%99%82/read".into(),
            Some(json!({"up_to": 1})),
            vec!["room_id"],
        ),
        (
            Method::PATCH,
            "/api/rooms/abc/messages/xyz".into(),
            Some(json!({"body": "edited"})),
            vec!["message_id", "room_id"],
        ),
        (
            Method::DELETE,
            format!("/api/rooms/{room}/messages/last"),
            None,
            vec!["message_id"],
        ),
        (
            Method::PUT,
            format!("/api/rooms/{room}/messages/nine/reactions/%F0%9F%91%8D"),
            None,
            vec!["message_id"],
        ),
        (
            Method::DELETE,
            "/api/contacts/bob".into(),
            None,
            vec!["user_id"],
        ),
        (
            Method::DELETE,
            "/api/sessions/abc".into(),
            None,
            vec!["session_id"],
        ),
        (
            Method::GET,
            "/api/rooms/99999999999999999999/messages".into(),
            None,
            vec!["room_id"],
        ),
    ];
    for (method, path, body, named) in cases {
        let r = app
            .call(method.clone(), &path, Some(&alice.token), body.clone())
            .await;
        assert_invalid(&r, &named);
        // Without a token it is the token that is missing (but for the session path, read
        // first so that `DELETE /api/sessions/revoke-others` is a wrong method, not a 401).
        let r = app.call(method.clone(), &path, None, body).await;
        if path.starts_with("/api/sessions/") {
            assert_invalid(&r, &named);
        } else {
            assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
        }
    }
    let r = app
        .get("/api/rooms/99999999999999999999/messages", &alice.token)
        .await;
    assert_eq!(
        r.body["error"]["fields"]["room_id"],
        "must be an integer between -9223372036854775808 and 9223372036854775807, not \
         '99999999999999999999'"
    );
    let r = app.get("/api/rooms/%F0%9F%99%82", &alice.token).await;
    assert_eq!(
        r.body["error"]["fields"]["room_id"],
        "must be an integer, not '🙂'"
    );
    // Integers that name nothing are still 404; a literal path is still 405 on a wrong method.
    for path in ["/api/rooms/0", "/api/rooms/-1", "/api/rooms/987654321"] {
        assert_error(
            &app.get(path, &alice.token).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
    let r = app.delete("/api/contacts/search", &alice.token).await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    // The message is untouched.
    let h = history(&app, &alice, room, "").await;
    assert_eq!(h.body["messages"][0]["id"], json!(message));
    assert_eq!(h.body["messages"][0]["reactions"], json!([]));
}
