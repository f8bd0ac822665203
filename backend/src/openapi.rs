//! The OpenAPI document: the metadata here plus every route's own description, collected as
//! routes are mounted (a route cannot be registered without its spec); then the examples of
//! every error answer ([`errors`]) and of every response object ([`samples`]).

pub mod errors;
pub mod samples;

use actix_web::App;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::{scope, AppExt};

/// Where the WebSocket protocol is described for people (`asyncapi::page`) and for tools.
pub const WEBSOCKET_DOCS: &str = "/api/docs/websocket";
pub const ASYNCAPI_JSON: &str = "/api/asyncapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Let's Chat API",
        description = "REST API of Let's Chat, a self-hostable 1:1 chat service.

**Signing in.** `POST /api/auth/register` or `POST /api/auth/login` answers a `token`: send it as \
`Authorization: Bearer <token>`. Here, press **Authorize** and paste the token alone.

**Errors** are `{\"error\": {\"code\", \"message\", \"fields\"?}}`, with one stable `code` per \
status (`validation_failed` names each refused field in `fields`; `rate_limited` comes with \
`Retry-After`). Every operation lists its own, with examples.

**Live messaging** uses the WebSocket at `/api/ws`: see the \
[WebSocket protocol reference](/api/docs/websocket) (connecting, every frame with examples, \
delivery guarantees, close codes), also as an [AsyncAPI 3.0 document](/api/asyncapi.json).",
        license(name = "MIT"),
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Create an account, log in and out"),
        (name = "account", description = "The caller's own account: read it, change the display name or the password, delete it"),
        (name = "sessions", description = "The caller's sign-in sessions (one per token): list them, end one or every other one"),
        (name = "contacts", description = "The caller's contacts list"),
        (name = "rooms", description = "Private rooms of two members, and the caller's read marker in each"),
        (name = "messages", description = "A room's history; sending, editing, deleting and reacting to messages; the changes since a point"),
        (name = "uploads", description = "Files and images: uploading them, and the signed links they are served at"),
        (name = "users", description = "Finding people to talk to"),
        (name = "admin", description = "Administration (administrators only; 403 for everyone else)"),
        (name = "health", description = "Liveness"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "Paste the raw token from the answer of login or register (it starts \
                         with eyJ), without the `Bearer ` prefix: it is added for you, and a \
                         pasted \"Bearer eyJ…\" would be sent as \"Bearer Bearer eyJ…\" and get \
                         401. A request without a token is 401 `unauthorized`, and so is one whose \
                         token is refused; the message says why, so that a client knows to sign \
                         in again: `missing Authorization header: ...`, `the Authorization header \
                         uses the 'Basic' scheme, not Bearer: ...`, `token malformed: ...`, \
                         `token invalid: ...`, `token expired` (past its lifetime, \
                         `LETSCHAT_TOKEN_TTL`) or `token revoked` (its session ended: logout, \
                         revocation, a password change).",
                    ))
                    .build(),
            ),
        );
    }
}

/// The full document, as served at `/api/openapi.json` and committed as `openapi.yaml`.
pub fn build() -> utoipa::openapi::OpenApi {
    let (_, mut api) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .service(scope::scope("/api").configure(crate::api::routes))
        .split_for_parts();
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    add_common_responses(&mut api);
    set_text_patterns(&mut api);
    errors::add_examples(&mut api);
    set_schema_examples(&mut api);
    order_paths(&mut api);
    api
}

/// Each response object's example ([`samples`]), in place of one pieced together from its
/// fields' types (which showed a message with `seq: 0` and a `deleted_at`).
fn set_schema_examples(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{RefOr, Schema};
    let Some(components) = api.components.as_mut() else {
        return;
    };
    for (name, example) in samples::schema_examples() {
        match components.schemas.get_mut(name) {
            Some(RefOr::T(Schema::Object(object))) => object.example = Some(example),
            Some(RefOr::T(Schema::AllOf(all))) => all.example = Some(example),
            _ => {}
        }
    }
}

/// Paths grouped by their first operation's tag, in the order of the document's tags (the order
/// Swagger UI shows them in); within a tag, in the order the routes are mounted.
fn order_paths(api: &mut utoipa::openapi::OpenApi) {
    let tags: Vec<String> = api.tags.iter().flatten().map(|t| t.name.clone()).collect();
    let rank = |item: &utoipa::openapi::PathItem| {
        let tag = [&item.get, &item.post, &item.put, &item.patch, &item.delete]
            .into_iter()
            .flatten()
            .find_map(|op| op.tags.as_ref().and_then(|t| t.first()));
        tag.and_then(|t| tags.iter().position(|x| x == t))
            .unwrap_or(tags.len())
    };
    api.paths.paths.sort_by(|_, a, _, b| rank(a).cmp(&rank(b)));
}

/// The visible-text patterns, set here from `domain::values::patterns` (the one copy that tests
/// check against the validators) on every request schema that carries such text: each
/// `display_name` property and the message `body`.
fn set_text_patterns(api: &mut utoipa::openapi::OpenApi) {
    use crate::domain::values::patterns;
    use utoipa::openapi::{RefOr, Schema};
    let Some(components) = api.components.as_mut() else {
        return;
    };
    for (name, schema) in components.schemas.iter_mut() {
        let RefOr::T(Schema::Object(object)) = schema else {
            continue;
        };
        for (prop, value) in object.properties.iter_mut() {
            let pattern = match (name.as_str(), prop.as_str()) {
                (_, "display_name") if name.ends_with("Request") => patterns::DISPLAY_NAME,
                ("SendMessageRequest" | "EditMessageRequest", "body") => patterns::MESSAGE_TEXT,
                _ => continue,
            };
            if let RefOr::T(Schema::Object(field)) = value {
                field.pattern = Some(pattern.to_owned());
            }
        }
    }
}

/// The answers that come from the shared machinery rather than from a handler, added here to
/// every operation that can give them (unless the route documents them itself), so that no
/// route can forget one:
/// - every operation: 500 `internal` (never with details), 503 `unavailable` with
///   `Retry-After` when the database cannot be reached, and 429 `rate_limited` with
///   `Retry-After` on a connection over its address's cap (`http_limits`);
/// - with a JSON body (`ApiJson`): 400 `invalid_json`, 413 `payload_too_large`, 415
///   `unsupported_media_type`, 422 `validation_failed`, and 408 `request_timeout` when the body
///   does not arrive within the body deadline;
/// - with query parameters (`ApiQuery`), or integer path parameters (`json::path_error`): 422
///   `validation_failed`;
/// - with a security requirement (`AuthUser`): 401 `unauthorized`.
fn add_common_responses(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

    let error = |description: &str| {
        ResponseBuilder::new().description(description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
    };
    let retry_after = errors::retry_after;
    let always = [
        (
            "500",
            error("Unexpected server error (`internal`); the cause is only logged").build(),
        ),
        (
            "503",
            error("The database cannot be reached at the moment (`unavailable`)")
                .header("Retry-After", retry_after())
                .build(),
        ),
        (
            "429",
            error(
                "Too many requests (`rate_limited`), or too many open connections from the \
                 client's address (the connection is then closed)",
            )
            .header("Retry-After", retry_after())
            .build(),
        ),
    ];
    let with_body = [
        (
            "408",
            error(
                "The body did not arrive within the body deadline (`request_timeout`); the \
                 connection is closed",
            )
            .build(),
        ),
        ("400", error("Malformed JSON (`invalid_json`)").build()),
        (
            "413",
            error("Body over 64 KiB (`payload_too_large`)").build(),
        ),
        (
            "415",
            error("Body is not JSON (`unsupported_media_type`)").build(),
        ),
        (
            "422",
            error(
                "Fields missing, of the wrong type or invalid (`validation_failed`, naming every \
                 one at once in `fields`); a body that is not a JSON object says so in the \
                 message, with `fields` empty",
            )
            .build(),
        ),
    ];
    let with_query = [(
        "422",
        error(
            "A query parameter is missing or invalid (`validation_failed`, naming it in `fields`)",
        )
        .build(),
    )];
    let with_path = [(
        "422",
        error("A path parameter is not an integer (`validation_failed`, naming it in `fields`)")
            .build(),
    )];
    let with_auth = [(
        "401",
        error(
            "Missing or non-Bearer `Authorization`, or a malformed, invalid, expired (`token \
             expired`) or revoked (`token revoked`) token (`unauthorized`; the message says which)",
        )
        .build(),
    )];
    for item in api.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            let has_body = op.request_body.is_some();
            let has_query =
                op.parameters.iter().flatten().any(
                    |p| matches!(p, RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Query)),
                );
            let has_path_integer = op
                .parameters
                .iter()
                .flatten()
                .any(|p| crate::api::integer_path_parameter(p).is_some());
            let has_auth = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let responses = &mut op.responses.responses;
            let mut add = |set: &[(&str, utoipa::openapi::Response)]| {
                for (status, response) in set {
                    responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| response.clone().into());
                }
            };
            add(&always);
            if has_body {
                add(&with_body);
            }
            if has_query {
                add(&with_query);
            }
            if has_path_integer {
                add(&with_path);
            }
            if has_auth {
                add(&with_auth);
            }
            // A route that documents its own 422 names the path parameters' too.
            if has_path_integer {
                if let Some(RefOr::T(r)) = op.responses.responses.get_mut("422") {
                    if !r.description.contains("path parameter") {
                        r.description = format!(
                            "{}; or a path parameter is not an integer (naming it in `fields`)",
                            r.description.trim_end_matches('.')
                        );
                    }
                }
            }
        }
    }
}

/// The names a JSON schema (as JSON) lists as `required`, in its order.
pub(crate) fn required(schema: &serde_json::Value) -> Vec<&str> {
    schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
        .collect()
}

/// The document as YAML.
pub fn yaml() -> Result<String, String> {
    build().to_yaml().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use crate::domain::values::patterns;

    fn schema_property(api: &serde_json::Value, schema: &str, prop: &str) -> serde_json::Value {
        api["components"]["schemas"][schema]["properties"][prop].clone()
    }

    fn query_param(api: &serde_json::Value, path: &str, name: &str) -> serde_json::Value {
        api["paths"][path]["get"]["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == name)
            .map(|p| p["schema"].clone())
            .unwrap_or_default()
    }

    /// The patterns in the document are the ones the validators in `domain::values` implement.
    #[test]
    fn patterns_match_the_validators() {
        let api = serde_json::to_value(super::build()).unwrap();
        let text = serde_json::json!(patterns::SINGLE_LINE_TEXT);
        for schema in ["RegisterRequest", "AdminCreateUserRequest"] {
            assert_eq!(
                schema_property(&api, schema, "display_name")["pattern"],
                serde_json::json!(patterns::DISPLAY_NAME),
                "{schema}"
            );
        }
        // Every `q` is a `SearchQuery`.
        let mut searches = 0;
        for path in api["paths"].as_object().unwrap().keys() {
            let q = query_param(&api, path, "q");
            if !q.is_null() {
                assert_eq!(q["pattern"], text, "q of GET {path}");
                searches += 1;
            }
        }
        assert!(searches >= 2);
        assert_eq!(
            schema_property(&api, "SendMessageRequest", "body")["pattern"],
            serde_json::json!(patterns::MESSAGE_TEXT)
        );
        assert_eq!(
            schema_property(&api, "SendMessageRequest", "client_msg_id")["pattern"],
            serde_json::json!(patterns::CLIENT_MSG_ID)
        );
        assert_eq!(
            schema_property(&api, "RegisterRequest", "username")["pattern"],
            serde_json::json!(patterns::USERNAME)
        );
    }

    #[test]
    fn every_operation_documents_the_shared_answers() {
        let api = serde_json::to_value(super::build()).unwrap();
        for (path, item) in api["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let mut expected = vec!["500", "503", "429"];
                if op.get("requestBody").is_some() {
                    expected.extend(["400", "408", "413", "415", "422"]);
                }
                let query = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| p["in"] == "query");
                let path_integer = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| p["in"] == "path" && p["schema"]["type"] == "integer");
                if query || path_integer {
                    expected.push("422");
                }
                if op.get("security").is_some() {
                    expected.push("401");
                }
                for status in expected {
                    assert!(
                        op["responses"].get(status).is_some(),
                        "{method} {path} lacks {status}"
                    );
                }
            }
        }
    }
}
