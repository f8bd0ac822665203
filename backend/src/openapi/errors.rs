//! The examples of every error answer in the OpenAPI document, generated for each operation
//! from what it takes (its path parameters, body fields and query parameters) and built, where
//! the API has one, from the same `ApiError` the server answers with. Each status has its code
//! ([`CODES`]); an example can only show the code of its status.

use serde_json::Value;
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::{OpenApi, RefOr};

use crate::domain::{
    ClientMsgId, DisplayName, Emoji, MessageBody, Password, SearchQuery, UploadIds, Username,
};
use crate::error::{ApiError, ErrorBody, ErrorDetail};

/// Every error status the API answers with, and the `code` its body carries: the contract's
/// conventions, and the codes of the server's own limits.
pub const CODES: [(u16, &str); 15] = [
    (400, "invalid_json"),
    (401, "unauthorized"),
    (403, "forbidden"),
    (404, "not_found"),
    (405, "method_not_allowed"),
    (408, "request_timeout"),
    (409, "conflict"),
    (413, "payload_too_large"),
    (415, "unsupported_media_type"),
    (416, "range_not_satisfiable"),
    (422, "validation_failed"),
    (426, "upgrade_required"),
    (429, "rate_limited"),
    (500, "internal"),
    (503, "unavailable"),
];

/// The code of an error status.
pub fn code_of(status: u16) -> Option<&'static str> {
    CODES.iter().find(|(s, _)| *s == status).map(|(_, c)| *c)
}

/// One example: its name in the document, a one-line summary, and the body.
#[derive(Debug)]
pub(super) struct Sample {
    pub name: &'static str,
    pub summary: String,
    pub body: ErrorBody,
}

impl Sample {
    fn of(name: &'static str, summary: impl Into<String>, error: ApiError) -> Sample {
        Sample {
            name,
            summary: summary.into(),
            body: error.body(),
        }
    }

    /// An answer that is not an `ApiError` (the file server's 416, the WebSocket's 426).
    fn raw(name: &'static str, summary: &str, code: &str, message: String) -> Sample {
        Sample {
            name,
            summary: summary.to_owned(),
            body: ErrorBody {
                error: ErrorDetail {
                    code: code.to_owned(),
                    message,
                    fields: None,
                },
            },
        }
    }
}

/// What an operation takes, as far as its errors tell.
#[derive(Debug, Default)]
pub(super) struct Operation {
    pub id: String,
    pub tag: String,
    pub path: String,
    pub path_params: Vec<String>,
    pub query: Vec<String>,
    /// The JSON body's properties, required ones first.
    pub body_fields: Vec<String>,
    pub multipart: bool,
    pub authenticated: bool,
}

impl Operation {
    /// Reads an operation of the document (as JSON, so that `$ref`s are plain to follow).
    fn read(doc: &Value, path: &str, op: &Value) -> Operation {
        let params = |place: &str| -> Vec<String> {
            op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == place)
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect()
        };
        let content = &op["requestBody"]["content"];
        let mut body_fields = Vec::new();
        if let Some(name) = content["application/json"]["schema"]["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
        {
            let schema = &doc["components"]["schemas"][name];
            let required = super::required(schema);
            body_fields.extend(required.iter().map(|s| (*s).to_owned()));
            for prop in schema["properties"].as_object().into_iter().flatten() {
                if !required.contains(&prop.0.as_str()) {
                    body_fields.push(prop.0.clone());
                }
            }
        }
        Operation {
            id: op["operationId"].as_str().unwrap_or_default().to_owned(),
            tag: op["tags"][0].as_str().unwrap_or_default().to_owned(),
            path: path.to_owned(),
            path_params: params("path"),
            query: params("query"),
            body_fields,
            multipart: content.get("multipart/form-data").is_some(),
            authenticated: op["security"].as_array().is_some_and(|s| !s.is_empty()),
        }
    }
}

/// Sets the examples of every error response of every operation (replacing any).
pub(super) fn add_examples(api: &mut OpenApi) {
    let doc = serde_json::to_value(&*api).unwrap_or_default();
    for (path, item) in api.paths.paths.iter_mut() {
        for (method, op) in [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ] {
            let Some(op) = op else { continue };
            let context = Operation::read(&doc, path, &doc["paths"][path][method]);
            for (status, response) in op.responses.responses.iter_mut() {
                let Ok(status) = status.parse::<u16>() else {
                    continue;
                };
                let RefOr::T(response) = response else {
                    continue;
                };
                let Some(RefOr::T(content)) = response.content.get_mut("application/json") else {
                    continue;
                };
                if status < 400 {
                    continue;
                }
                if matches!(status, 429 | 503) {
                    response
                        .headers
                        .entry("Retry-After".to_owned())
                        .or_insert_with(|| RefOr::T(retry_after()));
                }
                content.example = None;
                content.examples = samples(&context, status)
                    .into_iter()
                    .map(|s| {
                        let example = ExampleBuilder::new()
                            .summary(s.summary)
                            .value(serde_json::to_value(&s.body).ok())
                            .build();
                        (s.name.to_owned(), RefOr::T(example))
                    })
                    .collect();
            }
        }
    }
}

/// The `Retry-After` header of every 429 and 503.
pub(super) fn retry_after() -> utoipa::openapi::header::Header {
    use utoipa::PartialSchema;
    utoipa::openapi::header::HeaderBuilder::new()
        .schema(Some(u64::schema()))
        .description(Some("Seconds to wait"))
        .build()
}

/// The examples of one error status of one operation.
pub(super) fn samples(op: &Operation, status: u16) -> Vec<Sample> {
    let specific = specific(op, status);
    if !specific.is_empty() {
        return specific;
    }
    match status {
        400 if op.multipart => vec![Sample::of(
            "malformed",
            "The multipart body is cut short or malformed",
            ApiError::InvalidJson(
                "malformed multipart body: Multipart stream is incomplete".into(),
            ),
        )],
        400 => vec![Sample::of(
            "malformed",
            "The body is not valid JSON",
            broken_json(op.body_fields.first().map_or("body", String::as_str)),
        )],
        401 if op.authenticated => vec![
            Sample::of(
                "missing",
                "No Authorization header",
                ApiError::Unauthorized(
                    "missing Authorization header: send 'Authorization: Bearer <token>'".into(),
                ),
            ),
            Sample::of(
                "expired",
                "The token has expired: log in again",
                ApiError::Unauthorized("token expired".into()),
            ),
            Sample::of(
                "revoked",
                "The token's session has ended (logout, or ended from another device)",
                ApiError::Unauthorized("token revoked".into()),
            ),
        ],
        403 if op.tag == "admin" => vec![Sample::of(
            "not_admin",
            "The caller is not an administrator",
            ApiError::Forbidden("this needs an administrator's account".into()),
        )],
        404 => not_found(op),
        408 => {
            let timeout = if op.multipart {
                crate::config::UploadConfig::default().body_timeout
            } else {
                crate::config::HttpLimits::default().body_timeout
            };
            vec![Sample::of(
                "timeout",
                "The body did not arrive in time; the connection is closed",
                ApiError::RequestTimeout {
                    timeout_secs: timeout.as_secs(),
                },
            )]
        }
        413 => {
            let limit = if op.multipart {
                usize::try_from(crate::config::UploadConfig::default().max_bytes)
                    .unwrap_or(usize::MAX)
            } else {
                crate::api::json::MAX_JSON_BODY
            };
            vec![Sample::of(
                "too_large",
                "The body is too large",
                ApiError::PayloadTooLarge { limit },
            )]
        }
        415 => vec![Sample::of(
            "not_json",
            if op.multipart {
                "The body is not multipart/form-data"
            } else {
                "The body is not JSON"
            },
            ApiError::UnsupportedMediaType(if op.multipart {
                "the body must be multipart/form-data with a boundary".into()
            } else {
                "the body must be JSON, sent with 'Content-Type: application/json'".into()
            }),
        )],
        416 => vec![Sample::raw(
            "outside",
            "The range starts past the end of the file",
            "range_not_satisfiable",
            "the range is outside the file (2097152 bytes)".into(),
        )],
        422 => invalid(op),
        426 => vec![Sample::raw(
            "not_upgrade",
            "A plain HTTP request to the WebSocket endpoint",
            "upgrade_required",
            "this endpoint only answers WebSocket upgrades (Upgrade: websocket)".into(),
        )],
        429 => vec![Sample::of(
            "rate_limited",
            "Too many requests: wait for Retry-After seconds",
            ApiError::RateLimited {
                retry_after_secs: 30,
            },
        )],
        500 => vec![Sample::of(
            "internal",
            "An unexpected failure (only logged on the server)",
            ApiError::internal("never shown"),
        )],
        503 => vec![Sample::of(
            "unavailable",
            "The database cannot be reached at the moment",
            ApiError::Unavailable,
        )],
        _ => Vec::new(),
    }
}

/// What the server says about a body cut off after its first field's name.
fn broken_json(field: &str) -> ApiError {
    let body = format!("{{\"{field}\": ");
    crate::api::json::parse::<Value>(body.as_bytes())
        .err()
        .unwrap_or_else(|| ApiError::InvalidJson("the body is not valid JSON".into()))
}

/// The answers only some operations give, in their own words.
fn specific(op: &Operation, status: u16) -> Vec<Sample> {
    let one = |name, summary: &str, error| vec![Sample::of(name, summary, error)];
    match (op.id.as_str(), status) {
        ("login", 401) => one(
            "wrong_password",
            "Wrong username or password (the same answer for both)",
            ApiError::Unauthorized("wrong username or password".into()),
        ),
        ("register" | "create_user", 409) => one(
            "taken",
            "The username is taken",
            ApiError::Conflict("the username 'alice' is taken".into()),
        ),
        ("add", 409) => one(
            "full",
            "The contacts list is full",
            ApiError::Conflict(
                "your contacts list is full (5000 contacts); remove one to add another".into(),
            ),
        ),
        ("change_password", 409) => one(
            "changed_meanwhile",
            "Another request changed the password meanwhile",
            ApiError::Conflict("the password was changed meanwhile; sign in again".into()),
        ),
        ("deactivate", 409) => vec![
            Sample::of(
                "self",
                "Administrators cannot deactivate themselves",
                ApiError::Conflict("administrators cannot deactivate their own account".into()),
            ),
            deleted_by_owner(),
        ],
        ("set_role", 409) => vec![
            Sample::of(
                "self",
                "Administrators cannot remove their own role",
                ApiError::Conflict("administrators cannot remove their own admin role".into()),
            ),
            deleted_by_owner(),
        ],
        ("reactivate" | "reset_password", 409) => vec![deleted_by_owner()],
        ("edit" | "react", 409) => one(
            "deleted",
            "The message was deleted",
            ApiError::Conflict("this message was deleted".into()),
        ),
        ("send", 403) => one(
            "deactivated",
            "The other member's account is deactivated; nothing is stored",
            ApiError::Forbidden("messages cannot be sent to a deactivated account".into()),
        ),
        ("edit", 403) => vec![
            Sample::of(
                "not_sender",
                "Only its sender can edit a message",
                ApiError::Forbidden("only its sender can edit a message".into()),
            ),
            Sample::of(
                "too_many_edits",
                "The message was edited as often as allowed",
                ApiError::Forbidden("a message can be edited at most 100 times".into()),
            ),
        ],
        ("delete_own_message", 403) => one(
            "not_sender",
            "Only its sender can delete a message",
            ApiError::Forbidden("only its sender can delete a message".into()),
        ),
        ("get_file" | "get_thumbnail", 403) => vec![
            Sample::of(
                "bad_link",
                "A bad or expired signature",
                ApiError::Forbidden("this link is not valid".into()),
            ),
            Sample::of(
                "gone",
                "The message that carried it was deleted",
                ApiError::Forbidden("this file is no longer available".into()),
            ),
        ],
        ("add", 404) => one(
            "no_such_user",
            "No user has this username (or that account is deactivated)",
            ApiError::NotFound("no user is called 'zoë'".into()),
        ),
        ("add", 422) => one(
            "yourself",
            "The caller's own username",
            ApiError::validation("username", "you cannot add yourself as a contact"),
        ),
        ("change_password", 422) => vec![
            Sample::of(
                "wrong_current",
                "current_password is not the account's password",
                ApiError::validation("current_password", "is not the account's password"),
            ),
            validator_sample("new_password"),
        ],
        ("delete_me", 422) => one(
            "wrong_password",
            "password is not the account's password",
            ApiError::validation("password", "is not the account's password"),
        ),
        _ => Vec::new(),
    }
}

fn deleted_by_owner() -> Sample {
    Sample::of(
        "deleted",
        "The account was deleted by its owner",
        ApiError::Conflict("this account was deleted by its owner".into()),
    )
}

/// 404 for each object the path names: a room the caller is not in, a message not in that
/// room, and so on.
fn not_found(op: &Operation) -> Vec<Sample> {
    let mut samples = Vec::new();
    for param in &op.path_params {
        let (name, what) = match (param.as_str(), op.path.as_str()) {
            ("room_id", _) => ("room", "room"),
            ("message_id", _) => ("message", "message"),
            ("user_id", p) if p.starts_with("/api/contacts/") => ("contact", "contact"),
            ("user_id", _) => ("user", "user"),
            ("session_id", _) => ("session", "session"),
            ("upload_id", p) if p.ends_with("/thumbnail") => ("thumbnail", "thumbnail"),
            ("upload_id", _) => ("file", "file"),
            _ => continue,
        };
        let summary = match name {
            "room" => "No such room, or the caller is not in it",
            "message" => "No such message in this room",
            "contact" => "Not one of the caller's contacts",
            "user" => "No such user",
            "session" => "No such session of the caller's",
            "thumbnail" => "The upload has no thumbnail",
            _ => "The stored file is missing",
        };
        samples.push(Sample::of(name, summary, ApiError::not_found(what)));
    }
    samples
}

/// 422: a required field missing, and the first field (or query parameter) with a rule
/// refused by its own validator.
fn invalid(op: &Operation) -> Vec<Sample> {
    let mut samples = Vec::new();
    if let Some(first) = op.body_fields.first().filter(|_| !op.multipart) {
        samples.push(Sample::of(
            "missing_field",
            format!("{first} is missing"),
            ApiError::validation(first, "is required"),
        ));
    }
    if op.multipart {
        samples.push(Sample::of(
            "no_file",
            "No file part, or an empty one",
            ApiError::validation(
                "file",
                "a multipart part named `file` with the file is required",
            ),
        ));
    }
    let rules = op
        .body_fields
        .iter()
        .chain(&op.path_params)
        .chain(&op.query)
        .find(|f| rule(f).is_some());
    if let Some(field) = rules {
        samples.push(validator_sample(field));
    }
    // Integer ids in the path (`json::path_error`).
    if let Some(param) = op.path_params.iter().find(|p| {
        matches!(
            p.as_str(),
            "room_id" | "message_id" | "user_id" | "session_id"
        )
    }) {
        samples.push(Sample::of(
            "not_an_integer",
            format!("{param} in the path is not an integer"),
            ApiError::validation(param, "must be an integer, not 'abc'"),
        ));
    }
    samples
}

fn validator_sample(field: &str) -> Sample {
    let error = rule(field).unwrap_or_else(|| ApiError::validation(field, "is invalid"));
    Sample::of("invalid_field", format!("{field} is invalid"), error)
}

/// A value of `field` its validator refuses, and the validator's answer.
fn rule(field: &str) -> Option<ApiError> {
    let refused = |r: Result<(), ApiError>| r.err();
    match field {
        "username" => refused(Username::parse("alice liddell").map(drop)),
        "password" | "new_password" => {
            refused(Password::parse("hunter2").map(drop)).map(|e| e.rename_field("password", field))
        }
        "display_name" => refused(DisplayName::parse("\u{200B}\u{200B}").map(drop)),
        "body" => refused(MessageBody::parse(" \u{200B} ").map(drop)),
        "client_msg_id" => refused(ClientMsgId::parse("not a uuid").map(drop)),
        "emoji" => refused(Emoji::parse("ok").map(drop)),
        "q" => refused(SearchQuery::parse("   ").map(drop)),
        "attachments" => {
            let ids: Vec<String> = (0..11).map(|i| format!("{i:032x}")).collect();
            refused(UploadIds::parse(&ids).map(drop))
        }
        "limit" => Some(ApiError::validation("limit", "must be between 1 and 200")),
        "before" | "after" => Some(ApiError::validation(field, "must not be negative")),
        "up_to" => Some(ApiError::validation("up_to", "must not be negative")),
        "is_admin" => Some(ApiError::validation(
            "is_admin",
            "invalid type: string \"yes\", expected a boolean",
        )),
        "e" | "s" => Some(ApiError::validation(
            field,
            format!("missing field `{field}`"),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;

    /// One of each kind of error the server answers with.
    fn every_error() -> Vec<ApiError> {
        let all = vec![
            ApiError::InvalidJson(String::new()),
            ApiError::validation("f", "why"),
            ApiError::Unauthorized(String::new()),
            ApiError::Forbidden(String::new()),
            ApiError::NotFound(String::new()),
            ApiError::MethodNotAllowed(String::new()),
            ApiError::Conflict(String::new()),
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::UnsupportedMediaType(String::new()),
            ApiError::RateLimited {
                retry_after_secs: 1,
            },
            ApiError::Unavailable,
            ApiError::internal(""),
            ApiError::RequestTimeout { timeout_secs: 1 },
            ApiError::UpgradeRequired(String::new()),
        ];
        // A new kind of error fails to compile here until it is listed above.
        for e in &all {
            match e {
                ApiError::InvalidJson(_)
                | ApiError::Validation { .. }
                | ApiError::Unauthorized(_)
                | ApiError::Forbidden(_)
                | ApiError::NotFound(_)
                | ApiError::MethodNotAllowed(_)
                | ApiError::Conflict(_)
                | ApiError::PayloadTooLarge { .. }
                | ApiError::UnsupportedMediaType(_)
                | ApiError::RateLimited { .. }
                | ApiError::Unavailable
                | ApiError::Internal(_)
                | ApiError::RequestTimeout { .. }
                | ApiError::UpgradeRequired(_) => {}
            }
        }
        all
    }

    #[test]
    fn the_table_has_every_error_of_the_server() {
        for e in every_error() {
            let status = e.status_code().as_u16();
            assert_eq!(code_of(status), Some(e.code()), "{e:?}");
        }
    }

    #[test]
    fn every_example_carries_the_code_of_its_status() {
        let api = serde_json::to_value(crate::openapi::build()).unwrap();
        let mut seen = 0;
        for (path, item) in api["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let context = Operation::read(&api, path, op);
                for (status, response) in op["responses"].as_object().unwrap() {
                    let status: u16 = status.parse().unwrap();
                    if status < 400 || response["content"]["application/json"].is_null() {
                        continue;
                    }
                    let samples = samples(&context, status);
                    assert!(!samples.is_empty(), "{method} {path} {status}");
                    for s in samples {
                        assert_eq!(
                            Some(s.body.error.code.as_str()),
                            code_of(status),
                            "{method} {path} {status} {s:?}"
                        );
                        assert!(!s.body.error.message.is_empty());
                        seen += 1;
                    }
                }
            }
        }
        assert!(seen > 300, "{seen}");
    }

    /// Conflicts and refusals differ from one operation to the next: each has its own words.
    #[test]
    fn conflicts_and_refusals_are_specific() {
        let api = serde_json::to_value(crate::openapi::build()).unwrap();
        for (path, item) in api["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let context = Operation::read(&api, path, op);
                for status in [403, 409] {
                    if op["responses"].get(status.to_string()).is_none() {
                        continue;
                    }
                    let general = context.tag == "admin" && status == 403;
                    assert!(
                        general || !specific(&context, status).is_empty(),
                        "{method} {path} {status} has no example of its own"
                    );
                }
                if op["responses"].get("401").is_some() && !context.authenticated {
                    assert!(!specific(&context, 401).is_empty(), "{method} {path}");
                }
            }
        }
    }

    #[test]
    fn validation_examples_come_from_the_validators() {
        for field in [
            "username",
            "password",
            "new_password",
            "display_name",
            "body",
            "client_msg_id",
            "emoji",
            "q",
            "attachments",
        ] {
            let e = rule(field).unwrap_or_else(|| panic!("{field} passed its validator"));
            let body = e.body();
            assert_eq!(body.error.code, "validation_failed");
            assert!(
                body.error.fields.unwrap().contains_key(field),
                "{field}: {}",
                body.error.message
            );
        }
        let e = broken_json("username").body();
        assert_eq!(e.error.code, "invalid_json");
        assert!(e.error.message.contains("EOF"), "{}", e.error.message);
    }
}
