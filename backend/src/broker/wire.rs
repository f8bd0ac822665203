//! Broker events on the wire: the versioned envelope in which an event crosses from one server
//! instance to the others. JSON (serde_json, which the server already uses everywhere): an
//! event is a few small fields and at most one message, so a binary format would save little,
//! and JSON can be read with any Redis client. docs/architecture.md shows an example.
//!
//! `v` comes first and is read before anything else: an instance refuses an envelope of a
//! version it does not know with [`WireError::UnknownVersion`] rather than misreading it.
//!
//! Within a version, fields may be added when they are optional: a reader ignores the fields it
//! does not know, and reads an envelope without a field it knows as one that lacks it. Both
//! versions of an instance can then read each other during a rolling upgrade, so an addition
//! like `sent_at_us` keeps the version.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Event, InstanceId, Origin, Recipients};

/// The envelope's format. Raise it with any change to the envelope or to an event that an
/// instance of the previous version could not read (not for an optional field added).
pub const WIRE_VERSION: u32 = 1;

/// One publication on its way between instances: `event` for every connection of every
/// recipient, except `exclude`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The instance that published it.
    pub origin: InstanceId,
    pub recipients: Recipients,
    /// The connection not to deliver to, on whichever instance holds it.
    pub exclude: Option<Origin>,
    pub event: Event,
    /// When the publishing instance handed it to Redis, by its wall clock: microseconds since
    /// the Unix epoch. Absent from envelopes of instances that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at_us: Option<u64>,
}

/// Microseconds since the Unix epoch by this machine's wall clock (0 for a clock set before it).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Seconds from `sent_at_us` to `now_us`; 0 when the sender's clock is ahead of this one.
pub fn lag_seconds(sent_at_us: u64, now_us: u64) -> f64 {
    now_us.saturating_sub(sent_at_us) as f64 / 1e6
}

/// Why bytes could not be read as an envelope, or an envelope not written.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("a broker envelope of version {found}; this server reads version {WIRE_VERSION}")]
    UnknownVersion { found: u64 },
    #[error("not a broker envelope: {0}")]
    Malformed(#[source] serde_json::Error),
    #[error("cannot encode a broker envelope: {0}")]
    Encode(#[source] serde_json::Error),
}

#[derive(Serialize)]
struct Versioned<'a> {
    v: u32,
    #[serde(flatten)]
    envelope: &'a Envelope,
}

/// Only the version: read first, so that a newer envelope is refused as such.
#[derive(Deserialize)]
struct Version {
    v: u64,
}

pub fn encode(envelope: &Envelope) -> Result<Vec<u8>, WireError> {
    serde_json::to_vec(&Versioned {
        v: WIRE_VERSION,
        envelope,
    })
    .map_err(WireError::Encode)
}

pub fn decode(bytes: &[u8]) -> Result<Envelope, WireError> {
    let Version { v } = serde_json::from_slice(bytes).map_err(WireError::Malformed)?;
    if v != u64::from(WIRE_VERSION) {
        return Err(WireError::UnknownVersion { found: v });
    }
    serde_json::from_slice(bytes).map_err(WireError::Malformed)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytestring::ByteString;
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::broker::{ConnId, MessageData, SharedMessage};
    use crate::domain::{MessageId, RoomId, Seq, SessionId, UserId};

    const HERE: InstanceId = InstanceId(0x0123_4567_89ab_cdef);
    /// 2026-11-25T12:01:02.345678Z.
    const SENT_AT_US: u64 = 1_795_608_062_345_678;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn message(deleted: bool) -> Arc<SharedMessage> {
        Arc::new(SharedMessage::new(MessageData {
            id: MessageId(311),
            room_id: RoomId(7),
            seq: Seq(43),
            sender_id: UserId(1),
            client_msg_id: "0b6f6a0e \"é\" 😀".into(),
            body: if deleted {
                ""
            } else {
                "Hello!\n\u{0}</script>"
            }
            .into(),
            created_at: at("2026-11-25T12:01:02.345678912Z"),
            edited_at: (!deleted).then(|| at("2026-11-25T12:10:00.5Z")),
            deleted_at: deleted.then(|| at("2026-11-25T12:30:00Z")),
            reply_to: (!deleted).then_some(MessageId(300)),
            reactions: if deleted {
                Vec::new()
            } else {
                vec![crate::broker::ReactionData {
                    emoji: "🏳️‍🌈".into(),
                    user_ids: vec![UserId(2), UserId(1)],
                }]
            },
            change_seq: if deleted { 12 } else { 11 },
            attachments: if deleted {
                Vec::new()
            } else {
                vec![crate::broker::AttachmentData {
                    id: "3f2a9c0e5b7d41e8a6c4b2d0f9e8a7c6".into(),
                    name: "פסח 🌸 photo.jpg".into(),
                    content_type: "image/jpeg".into(),
                    size: 2_097_152,
                    sha256: "ab".repeat(32),
                    width: Some(4032),
                    height: Some(3024),
                    url: "/api/files/3f2a9c0e5b7d41e8a6c4b2d0f9e8a7c6?e=1&s=x".into(),
                    thumbnail_url: Some(
                        "/api/files/3f2a9c0e5b7d41e8a6c4b2d0f9e8a7c6/thumbnail?e=1&s=y".into(),
                    ),
                }]
            },
        }))
    }

    /// One event of every kind. The match has no wildcard: a new kind of event does not compile
    /// until it is added here, and so tested.
    fn every_event() -> Vec<Event> {
        let events = vec![
            Event::Message {
                message: message(false),
                origin: Some(Origin {
                    instance: HERE,
                    conn: ConnId(17),
                }),
            },
            Event::Message {
                message: message(false),
                origin: None,
            },
            Event::Typing {
                room_id: RoomId(7),
                user_id: UserId(2),
            },
            Event::Read {
                room_id: RoomId(7),
                user_id: UserId(2),
                up_to: Seq(43),
            },
            Event::Presence {
                user_id: UserId(2),
                online: true,
            },
            Event::Revoked {
                jti: "c2f7-41".into(),
            },
            Event::Deactivated,
            Event::SessionsEnded,
            Event::SessionsRevoked {
                ids: vec![SessionId(1), SessionId((1 << 53) - 1)].into(),
            },
            Event::UserUpdated {
                user: crate::broker::UserData {
                    id: UserId(2),
                    username: "~deleted-2".into(),
                    display_name: "Deleted user 🌸".into(),
                    created_at: at("2026-11-25T12:00:00Z"),
                },
            },
            Event::MessageDeleted {
                message: message(true),
            },
            Event::MessageUpdated {
                message: message(false),
            },
            Event::Recheck,
        ];
        for e in &events {
            match e {
                Event::Message { .. }
                | Event::Typing { .. }
                | Event::Read { .. }
                | Event::Presence { .. }
                | Event::Revoked { .. }
                | Event::Deactivated
                | Event::SessionsEnded
                | Event::SessionsRevoked { .. }
                | Event::UserUpdated { .. }
                | Event::MessageDeleted { .. }
                | Event::MessageUpdated { .. }
                | Event::Recheck => {}
            }
        }
        events
    }

    #[test]
    fn every_event_round_trips() {
        let recipients = [
            Recipients::Pair(UserId(1), UserId(2)),
            Recipients::One(UserId(3)),
            Recipients::Many(vec![UserId(4), UserId(5), UserId(6)].into()),
        ];
        let excludes = [
            None,
            Some(Origin {
                instance: InstanceId(u64::MAX),
                conn: ConnId(u64::MAX),
            }),
        ];
        for event in every_event() {
            for recipients in &recipients {
                for exclude in excludes {
                    for sent_at_us in [None, Some(SENT_AT_US)] {
                        let envelope = Envelope {
                            origin: HERE,
                            recipients: recipients.clone(),
                            exclude,
                            event: event.clone(),
                            sent_at_us,
                        };
                        let bytes = encode(&envelope).unwrap();
                        assert_eq!(decode(&bytes).unwrap(), envelope);
                    }
                }
            }
        }
    }

    #[test]
    fn the_format_is_stable_and_the_render_cache_stays_home() {
        let message = message(false);
        // Rendered on this instance: the cache must not travel.
        message.rendered(|_| ByteString::from_static("{\"type\":\"message\"}"));
        let envelope = Envelope {
            origin: HERE,
            recipients: Recipients::Pair(UserId(1), UserId(2)),
            exclude: None,
            event: Event::Message {
                message,
                origin: Some(Origin {
                    instance: HERE,
                    conn: ConnId(17),
                }),
            },
            sent_at_us: Some(SENT_AT_US),
        };
        let json: serde_json::Value = serde_json::from_slice(&encode(&envelope).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "v": 1,
                "origin": "0123456789abcdef",
                "recipients": {"pair": [1, 2]},
                "exclude": null,
                "event": {
                    "type": "message",
                    "message": {
                        "id": 311, "room_id": 7, "seq": 43, "sender_id": 1,
                        "client_msg_id": "0b6f6a0e \"é\" 😀",
                        "body": "Hello!\n\u{0}</script>",
                        "created_at": "2026-11-25T12:01:02.345678912Z",
                        "edited_at": "2026-11-25T12:10:00.500Z",
                        "deleted_at": null,
                        "reply_to": 300,
                        "reactions": [{"emoji": "🏳️‍🌈", "user_ids": [2, 1]}],
                        "change_seq": 11,
                        "attachments": [{
                            "id": "3f2a9c0e5b7d41e8a6c4b2d0f9e8a7c6",
                            "name": "פסח 🌸 photo.jpg",
                            "content_type": "image/jpeg",
                            "size": 2_097_152,
                            "sha256": "ab".repeat(32),
                            "width": 4032,
                            "height": 3024,
                            "url": "/api/files/3f2a9c0e5b7d41e8a6c4b2d0f9e8a7c6?e=1&s=x",
                            "thumbnail_url":
                                "/api/files/3f2a9c0e5b7d41e8a6c4b2d0f9e8a7c6/thumbnail?e=1&s=y"
                        }]
                    },
                    "origin": {"instance": "0123456789abcdef", "conn": 17}
                },
                "sent_at_us": 1_795_608_062_345_678u64
            })
        );
        let Event::Message { message, .. } = decode(&encode(&envelope).unwrap()).unwrap().event
        else {
            panic!("not a message");
        };
        let rendered = message.rendered(|m| ByteString::from(m.body.clone()));
        assert_eq!(&**rendered, "Hello!\n\u{0}</script>");
    }

    #[test]
    fn session_and_user_events_read_as_documented() {
        let revoked = Envelope {
            origin: HERE,
            recipients: Recipients::One(UserId(1)),
            exclude: None,
            event: Event::SessionsRevoked {
                ids: vec![SessionId(12), SessionId(9_007_199_254_740_991)].into(),
            },
            sent_at_us: None,
        };
        let json: serde_json::Value = serde_json::from_slice(&encode(&revoked).unwrap()).unwrap();
        assert_eq!(
            json["event"],
            serde_json::json!({"type": "sessions_revoked", "ids": [12, 9_007_199_254_740_991u64]})
        );
        let updated = Envelope {
            event: Event::UserUpdated {
                user: crate::broker::UserData {
                    id: UserId(2),
                    username: "alice".into(),
                    display_name: "Alice L.".into(),
                    created_at: at("2026-11-25T12:00:00Z"),
                },
            },
            recipients: Recipients::Many(vec![UserId(2), UserId(3)].into()),
            ..revoked
        };
        let json: serde_json::Value = serde_json::from_slice(&encode(&updated).unwrap()).unwrap();
        assert_eq!(
            json["event"],
            serde_json::json!({"type": "user_updated", "user": {
                "id": 2, "username": "alice", "display_name": "Alice L.",
                "created_at": "2026-11-25T12:00:00Z"}})
        );
    }

    #[test]
    fn unknown_versions_and_garbage_are_errors() {
        let envelope = Envelope {
            origin: HERE,
            recipients: Recipients::One(UserId(1)),
            exclude: None,
            event: Event::Deactivated,
            sent_at_us: None,
        };
        let mut json: serde_json::Value =
            serde_json::from_slice(&encode(&envelope).unwrap()).unwrap();
        json["v"] = 2.into();
        // A later version may change anything but `v`: it is refused as a version, not misread.
        json["event"] = serde_json::json!({"type": "something_new"});
        let bytes = serde_json::to_vec(&json).unwrap();
        assert!(matches!(
            decode(&bytes),
            Err(WireError::UnknownVersion { found: 2 })
        ));
        for garbage in [
            &b""[..],
            b"\xff\xfe",
            b"[1,2]",
            b"{\"event\":{\"type\":\"deactivated\"}}",
            b"{\"v\":\"1\"}",
            b"{\"v\":1}",
            b"{\"v\":1,\"origin\":\"0123456789abcdef\",\"recipients\":{\"one\":1},\"exclude\":null,\"event\":{\"type\":\"shout\"}}",
            b"{\"v\":1,\"origin\":\"12\",\"recipients\":{\"one\":1},\"exclude\":null,\"event\":{\"type\":\"deactivated\"}}",
            b"{\"v\":1,\"origin\":\"0123456789abcdef\",\"recipients\":{\"one\":1},\"exclude\":null,\"event\":{\"type\":\"deactivated\"}",
        ] {
            assert!(
                matches!(decode(garbage), Err(WireError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(garbage)
            );
        }
        let ok = b"{\"v\":1,\"origin\":\"0123456789abcdef\",\"recipients\":{\"one\":1},\"exclude\":null,\"event\":{\"type\":\"deactivated\"}}";
        assert_eq!(decode(ok).unwrap(), envelope);
    }

    #[test]
    fn the_send_time_is_optional_and_fields_of_later_instances_are_ignored() {
        let without = b"{\"v\":1,\"origin\":\"0123456789abcdef\",\"recipients\":{\"one\":1},\"exclude\":null,\"event\":{\"type\":\"deactivated\"}}";
        let mut envelope = Envelope {
            origin: HERE,
            recipients: Recipients::One(UserId(1)),
            exclude: None,
            event: Event::Deactivated,
            sent_at_us: None,
        };
        // An envelope of an instance that does not send the time is read, without one; and one
        // without a time is written without the field, as such an instance writes it.
        assert_eq!(decode(without).unwrap(), envelope);
        assert_eq!(encode(&envelope).unwrap(), without);
        // With the time.
        let with = b"{\"v\":1,\"origin\":\"0123456789abcdef\",\"recipients\":{\"one\":1},\"exclude\":null,\"event\":{\"type\":\"deactivated\"},\"sent_at_us\":1795608062345678}";
        envelope.sent_at_us = Some(SENT_AT_US);
        assert_eq!(decode(with).unwrap(), envelope);
        assert_eq!(encode(&envelope).unwrap(), with);
        // A field this version does not know (an optional one a later instance adds) is skipped,
        // as instances of this version skip `sent_at_us` when they do not know it: why adding
        // it kept the version.
        let later = b"{\"v\":1,\"origin\":\"0123456789abcdef\",\"recipients\":{\"one\":1},\"exclude\":null,\"event\":{\"type\":\"deactivated\"},\"sent_at_us\":1795608062345678,\"trace\":{\"id\":\"ab\"}}";
        assert_eq!(decode(later).unwrap(), envelope);
        // Not a number of microseconds: not an envelope.
        let bad = b"{\"v\":1,\"origin\":\"0123456789abcdef\",\"recipients\":{\"one\":1},\"exclude\":null,\"event\":{\"type\":\"deactivated\"},\"sent_at_us\":-5}";
        assert!(matches!(decode(bad), Err(WireError::Malformed(_))));
    }

    #[test]
    fn lag_is_measured_in_seconds_and_never_below_zero() {
        assert_eq!(lag_seconds(SENT_AT_US, SENT_AT_US + 2_500), 0.0025);
        assert_eq!(lag_seconds(SENT_AT_US, SENT_AT_US), 0.0);
        // The sender's clock is ahead of this one.
        assert_eq!(lag_seconds(SENT_AT_US + 1_000, SENT_AT_US), 0.0);
        // After 2020-09-13, in microseconds.
        assert!(now_us() > 1_600_000_000_000_000);
    }
}
