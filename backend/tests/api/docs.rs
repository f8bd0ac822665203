//! Swagger UI, the served spec, and the single-page-app fallback outside `/api`.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::spawn_app;
use crate::support::*;

#[tokio::test]
async fn swagger_ui_is_served_offline() {
    let app = spawn_app().await;
    let r = raw(&app, Method::GET, "/api/docs/", None, None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(
        r.content_type().starts_with("text/html"),
        "{}",
        r.content_type()
    );
    assert!(r.text.to_lowercase().contains("swagger"), "{}", r.text);

    // Its assets come from this server, not a CDN.
    assert!(
        !r.text.contains("://cdn") && !r.text.contains("unpkg.com"),
        "{}",
        r.text
    );
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        let a = raw(
            &app,
            Method::GET,
            &format!("/api/docs/{asset}"),
            None,
            None,
            None,
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{asset}");
        assert!(!a.text.is_empty(), "{asset}");
    }
    // The UI is pointed at the served spec.
    let init = raw(
        &app,
        Method::GET,
        "/api/docs/swagger-initializer.js",
        None,
        None,
        None,
    )
    .await;
    assert!(init.text.contains("/api/openapi.json"), "{}", init.text);

    // Without the trailing slash: redirected to it.
    let r = raw(&app, Method::GET, "/api/docs", None, None, None).await;
    assert!(r.status.is_redirection(), "{r:?}");
    assert_eq!(
        r.headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some("/api/docs/")
    );
}

#[tokio::test]
async fn the_spec_lists_every_contract_path() {
    let app = spawn_app().await;
    let r = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r
        .headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json")));
    let spec = &r.body;
    assert_eq!(spec["openapi"], "3.1.0");
    assert!(spec["info"]["title"].is_string());
    let paths = spec["paths"].as_object().expect("paths");
    let contract: [(&str, &[&str]); 13] = [
        ("/api/auth/register", &["post"]),
        ("/api/auth/login", &["post"]),
        ("/api/auth/logout", &["post"]),
        ("/api/me", &["get"]),
        ("/api/users/search", &["get"]),
        ("/api/contacts", &["get", "post"]),
        ("/api/contacts/search", &["get"]),
        ("/api/contacts/{user_id}", &["delete"]),
        ("/api/rooms", &["get"]),
        ("/api/rooms/{room_id}", &["get"]),
        ("/api/rooms/{room_id}/messages", &["get", "post"]),
        ("/api/rooms/{room_id}/read", &["post"]),
        ("/api/health", &["get"]),
    ];
    for (path, methods) in contract {
        let item = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing from the spec"));
        for m in methods {
            assert!(item.get(*m).is_some(), "{m} {path} missing from the spec");
        }
    }
    // The contract's objects are described.
    let schemas = spec["components"]["schemas"].as_object().expect("schemas");
    for name in ["User", "Contact", "Room", "Message", "ErrorBody"] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    let user_props: Vec<&String> = schemas["User"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        user_props.len(),
        4,
        "User has exactly id, username, display_name, created_at: {user_props:?}"
    );
    // The served spec is the one the code generates (and `openapi.yaml` is checked against).
    let served: Value = r.body.clone();
    let generated: Value =
        serde_json::to_value(letschat::openapi::build()).expect("spec serialises");
    assert_eq!(served, generated);
}

#[tokio::test]
async fn paths_outside_the_api_get_the_web_app_not_json() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/some/client/route",
        "/chat/42",
        "/login",
        "/index.html",
    ] {
        let r = raw(&app, Method::GET, path, None, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {r:?}");
        assert!(
            r.content_type().starts_with("text/html"),
            "{path}: {}",
            r.content_type()
        );
        assert!(r.text.to_lowercase().contains("<html"), "{path}");
        assert!(
            serde_json::from_str::<Value>(&r.text).is_err(),
            "{path} answered JSON"
        );
    }
}
