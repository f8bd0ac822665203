//! Register, login, logout, `/api/me`, and every way a token can be bad.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use letschat::auth::{Claims, TokenService};
use letschat::config::Secret;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, test_config, TestApp};
use crate::support::*;

fn test_secret() -> Secret {
    test_config("sqlite://unused.db".into()).jwt_secret
}

async fn me(app: &TestApp, token: &str) -> crate::helpers::Resp {
    app.get("/api/me", token).await
}

#[tokio::test]
async fn register_returns_201_with_token_and_user() {
    let app = spawn_app().await;
    let raw_resp = raw(
        &app,
        Method::POST,
        "/api/auth/register",
        None,
        Some("application/json"),
        Some(br#"{"username":"alice","password":"tortoise-42"}"#.to_vec()),
    )
    .await;
    assert_eq!(raw_resp.status, StatusCode::CREATED, "{raw_resp:?}");
    assert!(raw_resp.content_type().starts_with("application/json"));
    // No password material anywhere in the answer.
    let lower = raw_resp.text.to_lowercase();
    assert!(!lower.contains("password"), "{}", raw_resp.text);
    assert!(
        !lower.contains("$2"),
        "looks like a bcrypt hash: {}",
        raw_resp.text
    );
    let r = raw_resp.json();
    assert_eq!(keys(&r.body), set(&["token", "user", "device_token"]));
    let user = &r.body["user"];
    assert_user(user);
    assert_eq!(user["username"], "alice");
    assert_eq!(
        user["display_name"], "alice",
        "display_name defaults to the username"
    );
    let token = r.body["token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    // The token works, and /api/me answers the same user object.
    let m = me(&app, token).await;
    assert_eq!(m.status, StatusCode::OK);
    assert_eq!(&m.body, user);
}

#[tokio::test]
async fn register_keeps_case_and_trims_the_display_name() {
    let app = spawn_app().await;
    let r = register_raw(
        &app,
        json!({"username": "Alice.B-1_x", "password": "tortoise-42", "display_name": "  Alice Liddell  "}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_user(&r.body["user"]);
    assert_eq!(r.body["user"]["username"], "Alice.B-1_x");
    assert_eq!(r.body["user"]["display_name"], "Alice Liddell");
    // Unicode display names are fine.
    let r = register_raw(
        &app,
        json!({"username": "zoe", "password": "tortoise-42", "display_name": "Zoë 🌸"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(r.body["user"]["display_name"], "Zoë 🌸");
}

#[tokio::test]
async fn distinct_users_get_distinct_ids() {
    let app = spawn_app().await;
    let a = app.register("alice").await;
    let b = app.register("bob").await;
    assert_ne!(a.id, b.id);
    assert_ne!(a.token, b.token);
    assert_eq!(me(&app, &a.token).await.body["id"], json!(a.id));
    assert_eq!(me(&app, &b.token).await.body["id"], json!(b.id));
}

#[tokio::test]
async fn a_taken_username_is_a_conflict_in_any_case() {
    let app = spawn_app().await;
    app.register("alice").await;
    for name in ["alice", "ALICE", "Alice", "aLiCe"] {
        let r = register_raw(&app, json!({"username": name, "password": "otherpassword"})).await;
        assert_error(&r, StatusCode::CONFLICT, "conflict");
    }
    // The original account is untouched: its password still works, the new one does not.
    assert_eq!(login(&app, "alice", PASSWORD).await.status, StatusCode::OK);
    assert_error(
        &login(&app, "alice", "otherpassword").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

#[tokio::test]
async fn register_validates_every_field() {
    let app = spawn_app().await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"username": "ab", "password": "tortoise-42"}),
            vec!["username"],
        ),
        (
            json!({"username": "", "password": "tortoise-42"}),
            vec!["username"],
        ),
        (
            json!({"username": "a".repeat(33), "password": "tortoise-42"}),
            vec!["username"],
        ),
        (
            json!({"username": "al ice", "password": "tortoise-42"}),
            vec!["username"],
        ),
        (
            json!({"username": "al!ce", "password": "tortoise-42"}),
            vec!["username"],
        ),
        (
            json!({"username": "élan", "password": "tortoise-42"}),
            vec!["username"],
        ),
        (
            json!({"username": "a/b/c", "password": "tortoise-42"}),
            vec!["username"],
        ),
        (
            json!({"username": "alice", "password": "1234567"}),
            vec!["password"],
        ),
        (
            json!({"username": "alice", "password": ""}),
            vec!["password"],
        ),
        (
            json!({"username": "alice", "password": "x".repeat(129)}),
            vec!["password"],
        ),
        (
            json!({"username": "alice", "password": "tortoise-42", "display_name": ""}),
            vec!["display_name"],
        ),
        (
            json!({"username": "alice", "password": "tortoise-42", "display_name": "   "}),
            vec!["display_name"],
        ),
        (
            json!({"username": "alice", "password": "tortoise-42", "display_name": "d".repeat(65)}),
            vec!["display_name"],
        ),
        (
            json!({"username": "alice", "password": "tortoise-42", "display_name": "bell\u{7}"}),
            vec!["display_name"],
        ),
        (
            json!({"username": "ab", "password": "short", "display_name": ""}),
            vec!["username", "password", "display_name"],
        ),
    ];
    for (body, fields) in cases {
        let r = register_raw(&app, body.clone()).await;
        assert_invalid(&r, &fields);
        // Nothing was created: no token.
        assert!(r.body.get("token").is_none(), "{body}");
    }
    // None of the rejected attempts took the name.
    let r = register_raw(
        &app,
        json!({"username": "alice", "password": "tortoise-42"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
}

#[tokio::test]
async fn register_accepts_the_boundaries() {
    let app = spawn_app().await;
    let cases = [
        json!({"username": "abc", "password": "q7-wz!kx"}),
        json!({"username": "b".repeat(32), "password": "x".repeat(128)}),
        json!({"username": "c_d.e-f", "password": "é".repeat(128)}),
        json!({"username": "dname", "password": "tortoise-42", "display_name": "d".repeat(64)}),
        json!({"username": "dname2", "password": "tortoise-42", "display_name": "é".repeat(64)}),
    ];
    for body in cases {
        let r = register_raw(&app, body.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{body}: {r:?}");
    }
    // The 128-character password really is the password.
    let r = login(&app, &"b".repeat(32), &"x".repeat(128)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
}

#[tokio::test]
async fn missing_or_mistyped_fields_are_named() {
    let app = spawn_app().await;
    let r = register_raw(&app, json!({"password": "tortoise-42"})).await;
    assert_invalid(&r, &["username"]);
    let r = register_raw(&app, json!({"username": "alice"})).await;
    assert_invalid(&r, &["password"]);
    let r = register_raw(&app, json!({"username": 5, "password": "tortoise-42"})).await;
    assert_invalid(&r, &["username"]);
    let r = register_raw(&app, json!({"username": "alice", "password": null})).await;
    assert_invalid(&r, &["password"]);
    let r = register_raw(
        &app,
        json!({"username": "alice", "password": "tortoise-42", "display_name": 7}),
    )
    .await;
    assert_invalid(&r, &["display_name"]);
    let r = register_raw(&app, json!(["alice", "tortoise-42"])).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{r:?}");
    assert_eq!(
        r.body["error"]["message"],
        "the request body must be a JSON object, not an array"
    );

    let r = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"username": "alice"})),
        )
        .await;
    assert_invalid(&r, &["password"]);
    let r = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"password": "tortoise-42"})),
        )
        .await;
    assert_invalid(&r, &["username"]);
}

#[tokio::test]
async fn login_returns_a_fresh_working_token() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let r = login(&app, "alice", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(keys(&r.body), set(&["token", "user", "device_token"]));
    assert_user(&r.body["user"]);
    assert_eq!(r.body["user"]["id"], json!(alice.id));
    assert_eq!(r.body["user"]["username"], "alice");
    let token = r.body["token"].as_str().unwrap();
    assert_ne!(token, alice.token, "each login issues its own token");
    let m = me(&app, token).await;
    assert_eq!(m.status, StatusCode::OK);
    assert_eq!(m.body, r.body["user"]);
}

#[tokio::test]
async fn login_username_is_case_insensitive() {
    let app = spawn_app().await;
    let u = app.register("Alice").await;
    for name in ["Alice", "alice", "ALICE"] {
        let r = login(&app, name, PASSWORD).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {r:?}");
        assert_eq!(r.body["user"]["id"], json!(u.id));
        assert_eq!(r.body["user"]["username"], "Alice", "stored case is kept");
    }
    // The password is not case-insensitive.
    let r = login(&app, "alice", &PASSWORD.to_uppercase()).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = spawn_app().await;
    app.register("alice").await;
    let wrong = login(&app, "alice", "not-the-password").await;
    let unknown = login(&app, "nobody", "not-the-password").await;
    let unknown_same_pw = login(&app, "nobody", PASSWORD).await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_error(&unknown, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(wrong.body, unknown.body, "the answers must not differ");
    assert_eq!(wrong.body, unknown_same_pw.body);
    // Empty strings are just wrong credentials too.
    let empty = login(&app, "", "").await;
    assert_eq!(empty.status, StatusCode::UNAUTHORIZED, "{empty:?}");
}

#[tokio::test]
async fn logout_revokes_only_that_token() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let second = login(&app, "alice", PASSWORD).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = raw(
        &app,
        Method::POST,
        "/api/auth/logout",
        Some(&alice.token),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    assert!(r.text.is_empty(), "204 has no body: {:?}", r.text);

    // The logged-out token stops working at once, everywhere.
    assert_error(
        &me(&app, &alice.token).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &app.get("/api/contacts", &alice.token).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    // Logging out again with it is refused too.
    let again = app
        .call(Method::POST, "/api/auth/logout", Some(&alice.token), None)
        .await;
    assert_error(&again, StatusCode::UNAUTHORIZED, "unauthorized");

    // The other token of the same user keeps working.
    let m = me(&app, &second).await;
    assert_eq!(m.status, StatusCode::OK);
    assert_eq!(m.body["id"], json!(alice.id));
    // And a new login still works.
    assert_eq!(login(&app, "alice", PASSWORD).await.status, StatusCode::OK);
}

#[tokio::test]
async fn logout_needs_a_token() {
    let app = spawn_app().await;
    let r = app.call(Method::POST, "/api/auth/logout", None, None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
}

/// The protected endpoints, each with a body where one is needed.
fn protected(room: i64) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, "/api/me".into(), None),
        (Method::POST, "/api/auth/logout".into(), None),
        (Method::GET, "/api/users/search?q=a".into(), None),
        (Method::GET, "/api/contacts".into(), None),
        (Method::GET, "/api/contacts/search?q=a".into(), None),
        (
            Method::POST,
            "/api/contacts".into(),
            Some(json!({"username": "bob"})),
        ),
        (Method::DELETE, "/api/contacts/1".into(), None),
        (Method::GET, "/api/rooms".into(), None),
        (Method::GET, format!("/api/rooms/{room}"), None),
        (Method::GET, format!("/api/rooms/{room}/messages"), None),
        (
            Method::POST,
            format!("/api/rooms/{room}/messages"),
            Some(json!({"client_msg_id": "x", "body": "hi"})),
        ),
        (
            Method::POST,
            format!("/api/rooms/{room}/read"),
            Some(json!({"up_to": 1})),
        ),
    ]
}

async fn assert_all_unauthorized(app: &TestApp, room: i64, authorization: Option<&str>) {
    for (method, path, body) in protected(room) {
        let r = with_authorization(app, method.clone(), &path, authorization, body).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
        assert_eq!(
            r.headers
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok()),
            Some("Bearer"),
            "{method} {path} with {authorization:?}"
        );
    }
}

fn sign(claims: &Value, alg: Algorithm, secret: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
}

#[tokio::test]
async fn bad_credentials_are_401_on_every_protected_endpoint() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let secret = test_secret();
    let now = chrono::Utc::now().timestamp();
    // Alice's session (tokens name theirs).
    let sid = TokenService::new(&secret, Duration::from_secs(3600))
        .verify(&alice.token)
        .and_then(|c| c.sid)
        .expect("alice's token names its session");
    let claims = |sub: String| json!({"sub": sub, "iat": now, "exp": now + 3600, "jti": uuid::Uuid::new_v4().to_string(), "sid": sid});

    // Sanity: a token we sign with the server's secret and a fresh jti is accepted, so the
    // refusals below are about what we broke, not about how we build tokens.
    let ours = sign(
        &claims(alice.id.to_string()),
        Algorithm::HS256,
        secret.expose(),
    );
    assert_eq!(me(&app, &ours).await.status, StatusCode::OK);

    // Signed with the server's secret, but naming no session (as tokens issued before sessions
    // existed), or naming alice's session for bob.
    let sessionless = sign(
        &json!({"sub": alice.id.to_string(), "iat": now, "exp": now + 3600, "jti": "no-sid"}),
        Algorithm::HS256,
        secret.expose(),
    );
    assert_all_unauthorized(&app, room, Some(&format!("Bearer {sessionless}"))).await;
    let borrowed = sign(
        &claims(bob.id.to_string()),
        Algorithm::HS256,
        secret.expose(),
    );
    assert_all_unauthorized(&app, room, Some(&format!("Bearer {borrowed}"))).await;

    // No header at all.
    assert_all_unauthorized(&app, room, None).await;
    // Garbage, empty, and the wrong scheme.
    assert_all_unauthorized(&app, room, Some("Bearer garbage")).await;
    assert_all_unauthorized(&app, room, Some("Bearer ")).await;
    assert_all_unauthorized(&app, room, Some("Bearer a.b.c")).await;
    assert_all_unauthorized(&app, room, Some(&format!("Basic {}", alice.token))).await;
    assert_all_unauthorized(&app, room, Some(&alice.token)).await;

    // Signed with another secret.
    let other = TokenService::new(
        &Secret::new(b"another-secret-another-secret-another!".to_vec()),
        Duration::from_secs(3600),
    );
    let (foreign, _) = other
        .issue(letschat::domain::UserId(alice.id), 0, sid)
        .unwrap();
    assert_all_unauthorized(&app, room, Some(&format!("Bearer {foreign}"))).await;

    // `alg: none`, unsigned.
    let none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(claims(alice.id.to_string()).to_string().as_bytes())
    );
    assert_all_unauthorized(&app, room, Some(&format!("Bearer {none}"))).await;

    // The right secret but another algorithm than the pinned HS256.
    let hs512 = sign(
        &claims(alice.id.to_string()),
        Algorithm::HS512,
        secret.expose(),
    );
    assert_all_unauthorized(&app, room, Some(&format!("Bearer {hs512}"))).await;

    // A tampered payload: alice's real token with `sub` changed to bob, signature kept.
    let verifier = TokenService::new(&secret, Duration::from_secs(3600));
    let mut real: Claims = verifier
        .verify(&alice.token)
        .expect("alice's token verifies");
    real.sub = bob.id.to_string();
    let parts: Vec<&str> = alice.token.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64url(serde_json::to_string(&real).unwrap().as_bytes()),
        parts[2]
    );
    assert_ne!(tampered, alice.token);
    assert_all_unauthorized(&app, room, Some(&format!("Bearer {tampered}"))).await;

    // Expired (beyond any leeway).
    let expired = sign(
        &json!({"sub": alice.id.to_string(), "iat": now - 7200, "exp": now - 3600, "jti": "expired-1"}),
        Algorithm::HS256,
        secret.expose(),
    );
    assert_all_unauthorized(&app, room, Some(&format!("Bearer {expired}"))).await;

    // Validly signed but missing a required claim, or naming no user.
    let no_jti = sign(
        &json!({"sub": alice.id.to_string(), "iat": now, "exp": now + 3600}),
        Algorithm::HS256,
        secret.expose(),
    );
    assert_all_unauthorized(&app, room, Some(&format!("Bearer {no_jti}"))).await;
    let not_a_number = sign(&claims("alice".into()), Algorithm::HS256, secret.expose());
    assert_all_unauthorized(&app, room, Some(&format!("Bearer {not_a_number}"))).await;
    let ghost = sign(
        &claims("987654321".into()),
        Algorithm::HS256,
        secret.expose(),
    );
    assert_error(
        &me(&app, &ghost).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    // The real tokens still work after all that.
    assert_eq!(me(&app, &alice.token).await.status, StatusCode::OK);
    assert_eq!(me(&app, &bob.token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn public_endpoints_need_no_token() {
    let app = spawn_app().await;
    let r = app.call(Method::GET, "/api/health", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        json!({"status": "ok", "broker": {"kind": "in_process", "connected": true}})
    );
    // A broken token on a public endpoint does not block it.
    let r = with_authorization(
        &app,
        Method::POST,
        "/api/auth/register",
        Some("Bearer garbage"),
        Some(json!({"username": "alice", "password": "tortoise-42"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let r = with_authorization(
        &app,
        Method::POST,
        "/api/auth/login",
        Some("Bearer garbage"),
        Some(json!({"username": "alice", "password": "tortoise-42"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
}

/// Every protected endpoint refuses `authorization` with 401 `unauthorized` and exactly
/// `message`.
async fn assert_all_refused_with(
    app: &TestApp,
    room: i64,
    authorization: Option<&str>,
    message: &str,
) {
    assert_all_unauthorized(app, room, authorization).await;
    for (method, path, body) in protected(room) {
        let r = with_authorization(app, method.clone(), &path, authorization, body).await;
        assert_eq!(
            r.body["error"]["message"], message,
            "{method} {path} with {authorization:?}"
        );
    }
}

#[tokio::test]
async fn a_refused_token_says_why() {
    let app = spawn_app().await;
    let (alice, _, room) = app.pair("alice", "bob").await;
    let secret = test_secret();
    let now = chrono::Utc::now().timestamp();
    let sid = session_of(&alice.token);
    const HOW: &str = "send 'Authorization: Bearer <token>'";

    // The header: missing, another scheme, no scheme, no token after `Bearer`.
    assert_all_refused_with(
        &app,
        room,
        None,
        &format!("missing Authorization header: {HOW}"),
    )
    .await;
    assert_all_refused_with(
        &app,
        room,
        Some(&format!("Basic {}", b64url(b"alice:tortoise-42"))),
        &format!("the Authorization header uses the 'Basic' scheme, not Bearer: {HOW}"),
    )
    .await;
    // A bare token: its text is never echoed back.
    let bare = with_authorization(&app, Method::GET, "/api/me", Some(&alice.token), None).await;
    assert_eq!(
        bare.body["error"]["message"],
        format!("the Authorization header is not a Bearer token: {HOW}")
    );
    assert_all_refused_with(
        &app,
        room,
        Some("Bearer "),
        &format!("missing token after 'Bearer': {HOW}"),
    )
    .await;

    // The token: garbage, signed by someone else, expired, revoked.
    for garbage in ["Bearer garbage", "Bearer a.b.c", "Bearer not-a-jwt-at-all"] {
        assert_all_refused_with(
            &app,
            room,
            Some(garbage),
            "token malformed: not a JSON Web Token",
        )
        .await;
    }
    let claims = |iat: i64, exp: i64| {
        json!({"sub": alice.id.to_string(), "iat": iat, "exp": exp,
               "jti": uuid::Uuid::new_v4().to_string(), "sid": sid})
    };
    let foreign = sign(
        &claims(now, now + 3600),
        Algorithm::HS256,
        b"another-secret-another-secret-another!",
    );
    assert_all_refused_with(
        &app,
        room,
        Some(&format!("Bearer {foreign}")),
        "token invalid: not signed by this server, or missing a required claim",
    )
    .await;
    // Signed with the server's secret for alice's live session, only past its lifetime.
    let expired = sign(
        &claims(now - 7200, now - 3600),
        Algorithm::HS256,
        secret.expose(),
    );
    assert_all_refused_with(
        &app,
        room,
        Some(&format!("Bearer {expired}")),
        "token expired",
    )
    .await;
    let fresh = sign(&claims(now, now + 3600), Algorithm::HS256, secret.expose());
    assert_eq!(
        me(&app, &fresh).await.status,
        StatusCode::OK,
        "only expiry differed"
    );

    // Revoked: after logout, that token (and every token of its session) reads "token revoked".
    let r = app
        .call(Method::POST, "/api/auth/logout", Some(&alice.token), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_all_refused_with(
        &app,
        room,
        Some(&format!("Bearer {}", alice.token)),
        "token revoked",
    )
    .await;
    assert_error(
        &me(&app, &fresh).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_eq!(
        me(&app, &fresh).await.body["error"]["message"],
        "token revoked"
    );
    // An expired token of an ended session is still, first of all, expired.
    assert_eq!(
        me(&app, &expired).await.body["error"]["message"],
        "token expired"
    );

    // A password change ends the other sessions the same way.
    let laptop = app.login_as("bob", "laptop").await;
    let phone = app.login_as("bob", "phone").await;
    let r = app
        .post(
            "/api/me/password",
            &laptop.token,
            json!({"current_password": PASSWORD, "new_password": "staple battery horse correct"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    let r = me(&app, &phone.token).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(r.body["error"]["message"], "token revoked");
    assert_eq!(me(&app, &laptop.token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_websocket_refused_for_its_token_says_why() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let now = chrono::Utc::now().timestamp();
    let expired = sign(
        &json!({"sub": alice.id.to_string(), "iat": now - 7200, "exp": now - 3600,
                "jti": "old", "sid": session_of(&alice.token)}),
        Algorithm::HS256,
        test_secret().expose(),
    );
    let ended = app.login_as("alice", "old phone").await.token;
    let r = app
        .call(Method::POST, "/api/auth/logout", Some(&ended), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    for (token, message) in [
        (expired, "token expired"),
        (
            "garbage".to_owned(),
            "token malformed: not a JSON Web Token",
        ),
        (ended, "token revoked"),
    ] {
        let mut ws = crate::ws_support::Ws {
            inner: app.ws_raw().await,
            ready: Value::Null,
        };
        ws.send(json!({"type": "auth", "token": token})).await;
        let f = ws.next_of("error").await;
        assert_eq!(
            (f["code"].as_str(), f["message"].as_str()),
            (Some("unauthorized"), Some(message))
        );
    }
}
