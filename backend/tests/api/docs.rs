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

/// The code each error status carries (the contract's conventions, and the server's limits).
fn code_for(status: u16) -> &'static str {
    match status {
        400 => "invalid_json",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        416 => "range_not_satisfiable",
        422 => "validation_failed",
        426 => "upgrade_required",
        429 => "rate_limited",
        500 => "internal",
        503 => "unavailable",
        other => panic!("no code is known for status {other}"),
    }
}

async fn spec(app: &crate::helpers::TestApp) -> Value {
    let r = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    r.body
}

/// Every operation's error answers have examples, each with the code of its status, naming
/// what that operation takes: the resource of its path (404), its own fields (422).
#[tokio::test]
async fn every_error_answer_has_examples_with_the_code_of_its_status() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let params: Vec<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["name"].as_str())
                .collect();
            let body_schema = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .and_then(|r| r.rsplit('/').next())
                .map(|name| spec["components"]["schemas"][name].clone());
            for (status, response) in op["responses"].as_object().unwrap() {
                let status: u16 = status.parse().unwrap();
                if status < 400 {
                    continue;
                }
                let what = format!("{method} {path} {status}");
                let content = &response["content"]["application/json"];
                assert!(content.is_object(), "{what}: no JSON body documented");
                let examples = content["examples"].as_object().unwrap_or_else(|| {
                    panic!("{what}: no examples: {content}");
                });
                assert!(!examples.is_empty(), "{what}");
                for (name, example) in examples {
                    let error = &example["value"]["error"];
                    assert_eq!(error["code"], code_for(status), "{what} {name}: {example}");
                    let message = error["message"].as_str().unwrap_or_default();
                    assert!(!message.is_empty(), "{what} {name}");
                    assert!(
                        example["summary"].as_str().is_some_and(|s| !s.is_empty()),
                        "{what} {name}"
                    );
                    match status {
                        400 => assert!(
                            message.contains("JSON") || message.contains("multipart"),
                            "{what}: {message}"
                        ),
                        401 => assert!(
                            message.contains("token")
                                || message.contains("Authorization")
                                || message.contains("password"),
                            "{what}: {message}"
                        ),
                        404 => assert!(
                            message.ends_with("not found") || message.starts_with("no user"),
                            "{what}: {message}"
                        ),
                        422 => {
                            let fields = error["fields"]
                                .as_object()
                                .unwrap_or_else(|| panic!("{what} {name}: no fields: {example}"));
                            assert!(!fields.is_empty(), "{what}");
                            for field in fields.keys() {
                                let in_body = body_schema
                                    .as_ref()
                                    .is_some_and(|s| s["properties"].get(field.as_str()).is_some());
                                let multipart = op["requestBody"]["content"]
                                    .get("multipart/form-data")
                                    .is_some();
                                assert!(
                                    in_body
                                        || params.contains(&field.as_str())
                                        || (multipart && field == "file"),
                                    "{what}: `{field}` is not something {method} {path} takes"
                                );
                            }
                        }
                        _ => {}
                    }
                    checked += 1;
                }
                if matches!(status, 429 | 503) {
                    assert!(
                        response["headers"].get("Retry-After").is_some(),
                        "{what}: no Retry-After"
                    );
                }
            }
        }
    }
    assert!(checked > 300, "{checked}");

    // The resource of the path, and the operation's own words where they differ.
    let example = |path: &str, method: &str, status: &str| -> Vec<String> {
        spec["paths"][path][method]["responses"][status]["content"]["application/json"]["examples"]
            .as_object()
            .unwrap()
            .values()
            .map(|e| e["value"]["error"]["message"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        example("/api/sessions/{session_id}", "delete", "404"),
        ["session not found"]
    );
    assert_eq!(
        example("/api/contacts/{user_id}", "delete", "404"),
        ["contact not found"]
    );
    let message_404 = example("/api/rooms/{room_id}/messages/{message_id}", "patch", "404");
    assert!(
        message_404.contains(&"room not found".to_owned()),
        "{message_404:?}"
    );
    assert!(
        message_404.contains(&"message not found".to_owned()),
        "{message_404:?}"
    );
    assert!(example("/api/auth/register", "post", "409")[0].contains("is taken"));
    assert!(example("/api/auth/login", "post", "401")[0].contains("wrong username or password"));
    let malformed = example("/api/auth/register", "post", "400");
    assert!(
        malformed[0].starts_with("the body is not valid JSON"),
        "{malformed:?}"
    );
}

/// Walks every example in the document (schemas' `example`/`examples`, properties', request
/// and response bodies'), calling `check` on each JSON object inside them.
fn walk_examples(
    v: &Value,
    in_example: bool,
    check: &mut dyn FnMut(&serde_json::Map<String, Value>),
) {
    match v {
        Value::Object(map) => {
            if in_example {
                check(map);
            }
            for (key, child) in map {
                let example = in_example || key == "example" || key == "examples" || key == "value";
                walk_examples(child, example, check);
            }
        }
        Value::Array(items) => {
            for item in items {
                walk_examples(item, in_example, check);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn object_examples_look_like_real_objects() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let mut messages = 0;
    walk_examples(&spec, false, &mut |object| {
        if let Some(seq) = object.get("seq") {
            assert!(
                seq.as_i64().is_some_and(|s| s >= 1),
                "seq {seq} in {object:?}"
            );
        }
        if object.contains_key("seq") && object.contains_key("body") {
            messages += 1;
            let deleted = !object["deleted_at"].is_null();
            if deleted {
                // A tombstone: nothing of it is left.
                assert_eq!(object["body"], "", "{object:?}");
                assert_eq!(object["reactions"], serde_json::json!([]), "{object:?}");
                assert_eq!(object["attachments"], serde_json::json!([]), "{object:?}");
            } else {
                assert_ne!(object["body"], "", "{object:?}");
            }
        }
    });
    assert!(messages >= 5, "{messages}");
    // Every response object has an example of its own, with every field it requires.
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    for name in [
        "User",
        "Me",
        "Message",
        "Reaction",
        "Upload",
        "Room",
        "Contact",
        "Session",
        "AuthResponse",
        "Health",
        "MessagePage",
        "ChangesPage",
        "AdminUser",
        "AdminUserPage",
        "AdminRoom",
        "AdminRoomPage",
        "AdminStats",
        "AuditEntry",
        "AuditPage",
        "ErrorBody",
    ] {
        let schema = &schemas[name];
        let example = &schema["example"];
        assert!(example.is_object(), "{name} has no example");
        for field in schema["required"].as_array().into_iter().flatten() {
            let field = field.as_str().unwrap();
            assert!(
                example.get(field).is_some(),
                "{name}'s example lacks {field}"
            );
        }
    }
    let message = &schemas["Message"]["example"];
    assert!(message["seq"].as_i64().unwrap() > 0);
    assert!(message["deleted_at"].is_null());
    assert!(message["change_seq"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn swagger_ui_says_how_to_authorize_and_lists_tags_in_a_users_order() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let bearer = &spec["components"]["securitySchemes"]["bearer"];
    assert_eq!(bearer["scheme"], "bearer");
    let how = bearer["description"].as_str().unwrap();
    assert!(
        how.contains("raw") && how.contains("without the `Bearer `"),
        "{how}"
    );

    let tags: Vec<&str> = spec["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tags,
        [
            "auth", "account", "sessions", "contacts", "rooms", "messages", "uploads", "users",
            "admin", "health"
        ]
    );
    // Operations in the order Swagger UI shows them: by tag as listed, then as in the paths.
    let mut seen: Vec<&str> = Vec::new();
    let mut auth = Vec::new();
    for item in spec["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let tag = op["tags"][0].as_str().unwrap();
            assert!(tags.contains(&tag), "{tag}");
            if seen.last() != Some(&tag) {
                assert!(!seen.contains(&tag), "tag {tag} is split: {seen:?}");
                seen.push(tag);
            }
            if tag == "auth" {
                auth.push(op["operationId"].as_str().unwrap());
            }
        }
    }
    assert_eq!(seen, tags);
    assert_eq!(auth, ["register", "login", "logout"]);
}

/// The intro of Swagger UI points at the WebSocket reference, which is served here.
#[tokio::test]
async fn swagger_intro_links_to_the_websocket_reference() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let intro = spec["info"]["description"].as_str().unwrap();
    assert!(!intro.contains("docs/websocket.md"), "{intro}");
    for link in ["](/api/docs/websocket)", "](/api/asyncapi.json)"] {
        assert!(intro.contains(link), "{link} missing from {intro}");
        let path = link.trim_start_matches("](").trim_end_matches(')');
        let r = raw(&app, Method::GET, path, None, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn the_asyncapi_document_names_every_frame_the_server_sends_and_accepts() {
    use letschat::ws::protocol::{frame_types, ClientFrame, ServerFrame};
    let app = spawn_app().await;
    let r = raw(&app, Method::GET, "/api/asyncapi.json", None, None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.content_type().starts_with("application/json"),
        "{}",
        r.content_type()
    );
    let doc: Value = serde_json::from_str(&r.text).unwrap();
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["channels"]["chat"]["address"], "/api/ws");
    assert!(doc["info"]["description"]
        .as_str()
        .unwrap()
        .contains("Exactly once"));
    let connecting = doc["channels"]["chat"]["description"].as_str().unwrap();
    for needle in [
        "Authorization: Bearer <token>",
        "\"type\":\"auth\"",
        "| 1008 |",
        "| 1009 |",
        "| 1013 |",
    ] {
        assert!(
            connecting.contains(needle),
            "{needle} missing from {connecting}"
        );
    }

    for (prefix, action, types) in [
        ("client", "receive", frame_types::<ClientFrame>()),
        ("server", "send", frame_types::<ServerFrame>()),
    ] {
        assert!(types.len() >= 6, "{types:?}");
        for kind in types {
            let id = format!("{prefix}.{kind}");
            let message = &doc["components"]["messages"][&id];
            assert_eq!(message["name"], *kind, "{id} is not documented");
            assert!(
                message["description"]
                    .as_str()
                    .is_some_and(|d| d.len() > 40),
                "{id}"
            );
            // Its payload schema says its `type`.
            let payload = &doc["components"]["schemas"][&id];
            assert_eq!(
                payload["properties"]["type"]["enum"][0], *kind,
                "{id}: {payload}"
            );
            // Its examples are frames of that type.
            let examples = message["examples"].as_array().unwrap();
            assert!(!examples.is_empty(), "{id}");
            for e in examples {
                assert_eq!(e["payload"]["type"], *kind, "{id}");
                for field in payload["required"].as_array().unwrap() {
                    assert!(
                        e["payload"].get(field.as_str().unwrap()).is_some(),
                        "{id}: example lacks {field}"
                    );
                }
            }
            // The operation that sends or receives it.
            let op = &doc["operations"][&id];
            assert_eq!(op["action"], action, "{id}");
            assert_eq!(op["channel"]["$ref"], "#/channels/chat");
            assert_eq!(
                op["messages"][0]["$ref"],
                format!("#/channels/chat/messages/{id}")
            );
            assert_eq!(
                doc["channels"]["chat"]["messages"][&id]["$ref"],
                format!("#/components/messages/{id}")
            );
        }
        // Nothing documented that the server does not know.
        let documented = doc["operations"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with(&format!("{prefix}.")))
            .count();
        assert_eq!(documented, types.len(), "{prefix}");
    }
    // Sending is answered with `ack` (or an error).
    let replies: Vec<&str> = doc["operations"]["client.send"]["reply"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["$ref"].as_str().unwrap())
        .collect();
    assert_eq!(
        replies,
        [
            "#/channels/chat/messages/server.ack",
            "#/channels/chat/messages/server.error"
        ]
    );
    // Every `$ref` points at something in the document.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    out.push(r);
                }
                m.values().for_each(|c| refs(c, out));
            }
            Value::Array(a) => a.iter().for_each(|c| refs(c, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 50);
    for r in all {
        let pointer = r.strip_prefix('#').unwrap();
        assert!(doc.pointer(pointer).is_some(), "dangling {r}");
    }
    // The message example is a live message.
    let message = &doc["components"]["schemas"]["Message"]["examples"][0];
    assert!(message["seq"].as_i64().unwrap() > 0 && message["deleted_at"].is_null());
    // The document served is the one committed (`make openapi` refreshes both).
    assert_eq!(r.text, letschat::asyncapi::json());
}

/// The attribute values of every `name="…"` in an HTML page.
fn attributes<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let needle = format!(" {name}=\"");
    html.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

#[tokio::test]
async fn the_websocket_reference_page_is_served_offline_under_a_strict_policy() {
    use letschat::ws::protocol::{frame_types, ClientFrame, ServerFrame};
    let app = spawn_app().await;
    let page = raw(&app, Method::GET, "/api/docs/websocket", None, None, None).await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    assert!(
        page.content_type().starts_with("text/html"),
        "{}",
        page.content_type()
    );
    let policy = page
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .expect("a policy");
    assert!(!policy.contains("unsafe-"), "{policy}");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(policy.contains("style-src 'self'"), "{policy}");
    assert!(
        !policy.contains("script-src"),
        "no script is allowed: {policy}"
    );
    assert_eq!(
        page.headers
            .get("x-content-type-options")
            .and_then(|v| v.to_str().ok()),
        Some("nosniff")
    );
    let html = &page.text;
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("name=\"viewport\""));
    // Nothing the policy would refuse: no script, no inline style.
    let lower = html.to_lowercase();
    for banned in ["<script", "<style", " style=", "javascript:", " on"] {
        if banned == " on" {
            assert!(
                !lower.contains(" onclick=") && !lower.contains(" onload="),
                "an event handler attribute"
            );
        } else {
            assert!(!lower.contains(banned), "{banned} in the page");
        }
    }
    // Every frame has its section.
    for (prefix, types) in [
        ("client", frame_types::<ClientFrame>()),
        ("server", frame_types::<ServerFrame>()),
    ] {
        for kind in types {
            let id = format!("id=\"{prefix}-{}\"", kind.replace('_', "-"));
            assert!(html.contains(&id), "{id} missing");
        }
    }
    for needle in [
        "Close codes",
        "1008",
        "Delivery guarantees",
        "Reconnecting",
        "client_msg_id",
    ] {
        assert!(html.contains(needle), "{needle} missing");
    }
    // Every link works: anchors name an element of the page, paths answer 200.
    let ids = attributes(html, "id");
    let links = attributes(html, "href");
    assert!(links.len() > 30, "{links:?}");
    for link in links {
        if let Some(anchor) = link.strip_prefix('#') {
            assert!(ids.contains(&anchor), "#{anchor} names nothing");
        } else {
            assert!(link.starts_with('/'), "{link} leaves the server");
            let r = raw(&app, Method::GET, link, None, None, None).await;
            assert_eq!(r.status, StatusCode::OK, "{link}");
            if link.ends_with(".css") {
                assert!(r.content_type().starts_with("text/css"), "{link}");
            }
        }
    }
}
