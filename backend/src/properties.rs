//! Property tests (proptest) over what clients send: the WebSocket frame parser and the request
//! validators, fed arbitrary text and arbitrary JSON-shaped frames. Each property runs 256 cases
//! in `make test`; `make fuzz` runs them with many more (`PROPTEST_CASES`).
//!
//! What must hold for any input: no panic; an answer that is an error frame or field error the
//! client can read; and whatever a validator accepts is within its documented bounds and is
//! accepted unchanged when sent again (the stored form is a fixed point).

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::domain::{
    ClientMsgId, DisplayName, Emoji, MessageBody, Password, SearchQuery, UploadIds, Username,
};
use crate::error::ApiError;
use crate::services::messages::NewMessage;
use crate::ws::protocol::{parse, ClientFrame, CLIENT_TYPES};

/// Text the way clients send it: any Unicode, weighted towards the characters that validators
/// care about (controls, spaces, zero-width and bidirectional controls, emoji, quotes).
fn text() -> impl Strategy<Value = String> {
    let tricky = prop_oneof![
        Just('\u{0}'),
        Just('\t'),
        Just('\n'),
        Just('\r'),
        Just(' '),
        Just('\u{a0}'),
        Just('\u{200b}'),
        Just('\u{200d}'),
        Just('\u{202e}'),
        Just('\u{2066}'),
        Just('\u{feff}'),
        Just('\u{2800}'),
        Just('"'),
        Just('\\'),
        Just('~'),
        Just('é'),
        Just('😀'),
        Just('\u{1f3fd}'),
        Just('\u{fe0f}'),
        Just('ا'),
    ];
    prop::collection::vec(
        prop_oneof![3 => any::<char>(), 2 => tricky, 3 => prop::char::range('a', 'z')],
        0..80,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A frame with a known or unknown `type` and fields named like the real ones, holding any
/// values.
fn frame() -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        prop::sample::select(CLIENT_TYPES.to_vec()).prop_map(str::to_owned),
        text(),
    ];
    let field = prop::sample::select(vec![
        "room_id",
        "client_msg_id",
        "body",
        "reply_to",
        "attachments",
        "after",
        "changes_after",
        "up_to",
        "token",
        "extra",
    ]);
    (kind, prop::collection::vec((field, json_value()), 0..6)).prop_map(|(kind, fields)| {
        let mut object = serde_json::Map::new();
        object.insert("type".into(), Value::from(kind));
        for (k, v) in fields {
            object.insert(k.to_owned(), v);
        }
        Value::Object(object).to_string()
    })
}

fn is_validation(e: &ApiError) -> bool {
    matches!(e, ApiError::Validation { .. })
}

fn is_field_error(e: &ApiError, field: &str) -> bool {
    matches!(e, ApiError::Validation { fields, .. } if fields.contains_key(field))
}

proptest! {
    #[test]
    fn any_text_frame_parses_or_is_explained(raw in text()) {
        if let Err(e) = parse(&raw) {
            prop_assert!(e.code == "invalid_json" || e.code == "validation_failed");
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn any_json_frame_parses_or_is_explained(raw in frame()) {
        match parse(&raw) {
            Ok(ClientFrame::Send { client_msg_id, body, attachments, .. }) => {
                // A well-typed send: its fields are then judged like a REST send's.
                if let Err(e) = NewMessage::parse(&client_msg_id, &body, None, &attachments) {
                    prop_assert!(is_validation(&e));
                }
            }
            Ok(_) => {}
            Err(e) => {
                prop_assert_eq!(e.code, "validation_failed");
                prop_assert!(!e.message.is_empty());
                // An error about a send names its client_msg_id when the frame had one.
                let value: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
                prop_assert_eq!(
                    e.client_msg_id.as_deref(),
                    value.get("client_msg_id").and_then(Value::as_str)
                );
            }
        }
    }

    #[test]
    fn accepted_message_bodies_are_bounded_and_stable(raw in text(), files in 0usize..3) {
        let ids: Vec<String> = (0..files).map(|i| format!("{i:032x}")).collect();
        let attachments = UploadIds::parse(&ids).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        match MessageBody::parse_with(&raw, &attachments) {
            Ok(body) => {
                let s = body.as_str();
                prop_assert!(s.chars().count() <= MessageBody::MAX);
                prop_assert_eq!(s, s.trim());
                prop_assert!(!s.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')));
                if s.is_empty() {
                    prop_assert!(!attachments.is_empty(), "an empty body needs attachments");
                } else {
                    let again = MessageBody::parse(s).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                    prop_assert_eq!(again.as_str(), s);
                }
            }
            Err(e) => prop_assert!(is_field_error(&e, "body")),
        }
    }

    #[test]
    fn accepted_names_are_stable(raw in text()) {
        match Username::parse(&raw) {
            Ok(u) => {
                prop_assert!(!u.as_str().starts_with('~'), "`~` names are the deleted accounts'");
                let again = Username::parse(u.as_str()).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                prop_assert_eq!(again.as_str(), u.as_str());
            }
            Err(e) => prop_assert!(is_field_error(&e, "username")),
        }
        match DisplayName::parse(&raw) {
            Ok(d) => {
                prop_assert!(!d.as_str().chars().any(crate::domain::values::is_bidi_override));
                let again = DisplayName::parse(d.as_str()).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                prop_assert_eq!(again.as_str(), d.as_str());
            }
            Err(e) => prop_assert!(is_field_error(&e, "display_name")),
        }
    }

    #[test]
    fn other_validators_answer_with_their_field(raw in text(), list in prop::collection::vec(text(), 0..12)) {
        if let Err(e) = Password::parse(&raw) {
            prop_assert!(is_field_error(&e, "password"));
        }
        match Emoji::parse(&raw) {
            Ok(emoji) => prop_assert!(emoji.as_str().len() <= 64),
            Err(e) => prop_assert!(is_validation(&e)),
        }
        match ClientMsgId::parse(&raw) {
            Ok(id) => prop_assert!((1..=64).contains(&id.as_str().len())),
            Err(e) => prop_assert!(is_field_error(&e, "client_msg_id")),
        }
        if let Err(e) = SearchQuery::parse(&raw) {
            prop_assert!(is_field_error(&e, "q"));
        }
        match UploadIds::parse(&list) {
            Ok(ids) => prop_assert!(ids.len() <= UploadIds::MAX),
            Err(e) => prop_assert!(is_field_error(&e, "attachments")),
        }
    }
}
