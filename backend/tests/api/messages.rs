//! Sending (seq, trimming, limits, idempotency), history pages and read markers.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp, User};
use crate::support::*;

#[tokio::test]
async fn seq_starts_at_one_and_increments_per_room() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let carol = app.register("carol").await;
    let other_room = app.add_contact(&alice, &carol).await;

    let m1 = app.send(&alice, room, "c1", "hello").await;
    assert_message(&m1);
    assert_eq!(m1["seq"], 1);
    assert_eq!(m1["room_id"], json!(room));
    assert_eq!(m1["sender_id"], json!(alice.id));
    assert_eq!(m1["client_msg_id"], "c1");
    assert_eq!(m1["body"], "hello");

    let m2 = app.send(&bob, room, "c2", "hi").await;
    let m3 = app.send(&alice, room, "c3", "how are you").await;
    assert_eq!((m2["seq"].clone(), m3["seq"].clone()), (json!(2), json!(3)));
    assert_eq!(m2["sender_id"], json!(bob.id));
    // Message ids are unique.
    assert_ne!(m1["id"], m2["id"]);
    assert_ne!(m2["id"], m3["id"]);

    // Another room counts from 1 on its own.
    let o1 = app.send(&carol, other_room, "c1", "separate").await;
    assert_eq!(o1["seq"], 1);
    assert_eq!(app.send(&alice, room, "c4", "four").await["seq"], 4);
    assert_eq!(app.send(&alice, other_room, "c5", "two").await["seq"], 2);

    // The history returns exactly what the sends returned.
    let h = history(&app, &bob, room, "").await;
    assert_eq!(h.body["messages"][0], m1);
    assert_eq!(h.body["messages"][1], m2);
    assert_eq!(h.body["messages"][2], m3);
}

#[tokio::test]
async fn bodies_are_trimmed_and_limited_to_4000_characters() {
    let app = spawn_app().await;
    let (alice, _, room) = app.pair("alice", "bob").await;

    let m = app.send(&alice, room, "t1", "  \n\t hi  there \r\n ").await;
    assert_eq!(m["body"], "hi  there", "trimmed at the ends only");
    let m = app.send(&alice, room, "t2", "line one\nline two").await;
    assert_eq!(m["body"], "line one\nline two");

    let max = "x".repeat(4000);
    assert_eq!(app.send(&alice, room, "t3", &max).await["body"], json!(max));
    let padded = format!("   {}   ", "y".repeat(3994));
    assert_eq!(
        app.send(&alice, room, "t4", &padded).await["body"],
        json!("y".repeat(3994))
    );
    // Characters, not bytes.
    let wide = "é".repeat(4000);
    assert_eq!(
        app.send(&alice, room, "t5", &wide).await["body"],
        json!(wide)
    );
    let emoji = "🙂".repeat(4000);
    assert_eq!(
        app.send(&alice, room, "t6", &emoji).await["body"],
        json!(emoji)
    );

    for (i, body) in [
        "x".repeat(4001),
        "é".repeat(4001),
        String::new(),
        " ".into(),
        " \n\t\r ".into(),
    ]
    .into_iter()
    .enumerate()
    {
        let r = send_raw(
            &app,
            &alice,
            room,
            json!({"client_msg_id": format!("bad{i}"), "body": body}),
        )
        .await;
        assert_invalid(&r, &["body"]);
    }
    // Rejected messages took no seq.
    assert_eq!(app.send(&alice, room, "t7", "next").await["seq"], 7);
}

#[tokio::test]
async fn client_msg_id_is_1_to_64_characters() {
    let app = spawn_app().await;
    let (alice, _, room) = app.pair("alice", "bob").await;
    let id64 = "k".repeat(64);
    assert_eq!(
        app.send(&alice, room, &id64, "ok").await["client_msg_id"],
        json!(id64)
    );
    assert_eq!(
        app.send(&alice, room, "a", "ok").await["client_msg_id"],
        "a"
    );
    let uuid = "7d0f1c9e-1b9a-4c57-9f3e-2b8c0d1e4a6f";
    assert_eq!(
        app.send(&alice, room, uuid, "ok").await["client_msg_id"],
        uuid
    );

    for bad in ["k".repeat(65), String::new()] {
        let r = send_raw(
            &app,
            &alice,
            room,
            json!({"client_msg_id": bad, "body": "hi"}),
        )
        .await;
        assert_invalid(&r, &["client_msg_id"]);
    }
    // Missing or mistyped fields are named.
    let r = send_raw(&app, &alice, room, json!({"body": "hi"})).await;
    assert_invalid(&r, &["client_msg_id"]);
    let r = send_raw(&app, &alice, room, json!({"client_msg_id": "z"})).await;
    assert_invalid(&r, &["body"]);
    let r = send_raw(
        &app,
        &alice,
        room,
        json!({"client_msg_id": 5, "body": "hi"}),
    )
    .await;
    assert_invalid(&r, &["client_msg_id"]);
    // Both bad: both named.
    let r = send_raw(
        &app,
        &alice,
        room,
        json!({"client_msg_id": "k".repeat(65), "body": "   "}),
    )
    .await;
    assert_invalid(&r, &["client_msg_id", "body"]);
    let h = history(&app, &alice, room, "").await;
    assert_eq!(h.body["messages"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn resending_a_client_msg_id_returns_the_same_message() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let first = app.send(&alice, room, "dup-1", "hello").await;

    for body in ["hello", "a different body this time"] {
        let again = send_raw(
            &app,
            &alice,
            room,
            json!({"client_msg_id": "dup-1", "body": body}),
        )
        .await;
        assert_eq!(again.status, StatusCode::OK, "{again:?}");
        assert_eq!(again.body, first, "the identical stored message");
    }
    // Still one message, and the room did not advance.
    let (seqs, _) = page(&app, &alice, room, "").await;
    assert_eq!(seqs, [1]);
    let r = app.get(&format!("/api/rooms/{room}"), &alice.token).await;
    assert_eq!(r.body["last_seq"], 1);
    // The resend did not bump bob's unread count either.
    assert_eq!(unread(&app, &bob, &alice).await, 1);

    // The same client_msg_id from the other member is a different message.
    let bobs = app.send(&bob, room, "dup-1", "hello").await;
    assert_ne!(bobs["id"], first["id"]);
    assert_eq!(bobs["seq"], 2);
    assert_eq!(bobs["sender_id"], json!(bob.id));
    // And from the same sender in another room too.
    let carol = app.register("carol").await;
    let room_ac = app.add_contact(&alice, &carol).await;
    let elsewhere = app.send(&alice, room_ac, "dup-1", "hello").await;
    assert_eq!(elsewhere["seq"], 1);
    assert_ne!(elsewhere["id"], first["id"]);

    // After other messages, the old id still resolves to the old message.
    app.send(&alice, room, "dup-2", "later").await;
    let again = send_raw(
        &app,
        &alice,
        room,
        json!({"client_msg_id": "dup-1", "body": "x"}),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body, first);
    let (seqs, _) = page(&app, &alice, room, "").await;
    assert_eq!(seqs, [1, 2, 3]);
}

/// A room holding `n` messages alternating between the two members; returns the messages.
async fn filled_room(app: &TestApp, n: usize) -> (User, User, i64, Vec<Value>) {
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let mut sent = Vec::with_capacity(n);
    for i in 1..=n {
        let who = if i % 2 == 0 { &bob } else { &alice };
        sent.push(
            app.send(who, room, &format!("m{i}"), &format!("message {i}"))
                .await,
        );
    }
    (alice, bob, room, sent)
}

fn range(a: i64, b: i64) -> Vec<i64> {
    (a..=b).collect()
}

#[tokio::test]
async fn history_pages_by_cursor() {
    let app = spawn_app().await;
    let (alice, bob, room, sent) = filled_room(&app, 120).await;
    for (i, m) in sent.iter().enumerate() {
        assert_eq!(m["seq"], json!(i + 1));
    }

    // Default: the newest 50, ascending, with more before them.
    assert_eq!(page(&app, &alice, room, "").await, (range(71, 120), true));
    let r = history(&app, &bob, room, "").await;
    assert_eq!(
        r.body["messages"],
        json!(sent[70..120]),
        "full messages, as sent"
    );

    // before
    assert_eq!(
        page(&app, &alice, room, "before=71").await,
        (range(21, 70), true)
    );
    assert_eq!(
        page(&app, &alice, room, "before=21").await,
        (range(1, 20), false)
    );
    assert_eq!(
        page(&app, &alice, room, "before=51").await,
        (range(1, 50), false)
    );
    assert_eq!(
        page(&app, &alice, room, "before=52").await,
        (range(2, 51), true)
    );
    assert_eq!(page(&app, &alice, room, "before=1").await, (vec![], false));
    assert_eq!(page(&app, &alice, room, "before=0").await, (vec![], false));
    assert_eq!(
        page(&app, &alice, room, "before=1000").await,
        (range(71, 120), true)
    );
    assert_eq!(
        page(&app, &alice, room, "before=121").await,
        (range(71, 120), true)
    );

    // after
    assert_eq!(
        page(&app, &alice, room, "after=0").await,
        (range(1, 50), true)
    );
    assert_eq!(
        page(&app, &alice, room, "after=100").await,
        (range(101, 120), false)
    );
    assert_eq!(
        page(&app, &alice, room, "after=70").await,
        (range(71, 120), false)
    );
    assert_eq!(
        page(&app, &alice, room, "after=69").await,
        (range(70, 119), true)
    );
    assert_eq!(page(&app, &alice, room, "after=120").await, (vec![], false));
    assert_eq!(
        page(&app, &alice, room, "after=5000").await,
        (vec![], false)
    );

    // both: the oldest messages strictly between them
    assert_eq!(
        page(&app, &alice, room, "after=10&before=20").await,
        (range(11, 19), false)
    );
    assert_eq!(
        page(&app, &alice, room, "after=10&before=100&limit=5").await,
        (range(11, 15), true)
    );
    assert_eq!(
        page(&app, &alice, room, "after=10&before=16&limit=5").await,
        (range(11, 15), false)
    );
    assert_eq!(
        page(&app, &alice, room, "after=10&before=11").await,
        (vec![], false)
    );
    assert_eq!(
        page(&app, &alice, room, "after=20&before=10").await,
        (vec![], false)
    );
    assert_eq!(
        page(&app, &alice, room, "before=100&after=10").await,
        page(&app, &alice, room, "after=10&before=100").await
    );

    // limit
    assert_eq!(page(&app, &alice, room, "limit=1").await, (vec![120], true));
    assert_eq!(
        page(&app, &alice, room, "limit=200").await,
        (range(1, 120), false)
    );
    assert_eq!(
        page(&app, &alice, room, "limit=120").await,
        (range(1, 120), false)
    );
    assert_eq!(
        page(&app, &alice, room, "limit=119").await,
        (range(2, 120), true)
    );
    assert_eq!(
        page(&app, &alice, room, "before=2&limit=1").await,
        (vec![1], false)
    );
    assert_eq!(
        page(&app, &alice, room, "after=118&limit=1").await,
        (vec![119], true)
    );
    assert_eq!(
        page(&app, &alice, room, "after=119&limit=1").await,
        (vec![120], false)
    );
}

#[tokio::test]
async fn history_rejects_bad_limits_and_cursors() {
    let app = spawn_app().await;
    let (alice, _, room) = app.pair("alice", "bob").await;
    app.send(&alice, room, "1", "one").await;
    for q in ["limit=0", "limit=201", "limit=-1", "limit=1000000"] {
        assert_invalid(&history(&app, &alice, room, q).await, &["limit"]);
    }
    assert_invalid(&history(&app, &alice, room, "before=-1").await, &["before"]);
    assert_invalid(&history(&app, &alice, room, "after=-5").await, &["after"]);
    for q in ["limit=abc", "before=x", "after=1.5", "limit="] {
        let r = history(&app, &alice, room, q).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
}

#[tokio::test]
async fn paging_back_and_forward_visits_every_message_once() {
    let app = spawn_app().await;
    let (alice, _, room, sent) = filled_room(&app, 120).await;

    for limit in [7, 50, 119] {
        // Back in time with `before`.
        let mut seen: Vec<i64> = Vec::new();
        let (mut seqs, mut more) = page(&app, &alice, room, &format!("limit={limit}")).await;
        let mut pages = 1;
        loop {
            assert!(!seqs.is_empty());
            assert!(seqs.len() <= limit);
            let mut all = seqs.clone();
            all.extend(&seen);
            seen = all;
            if !more {
                break;
            }
            let before = seqs[0];
            (seqs, more) = page(
                &app,
                &alice,
                room,
                &format!("before={before}&limit={limit}"),
            )
            .await;
            pages += 1;
            assert!(pages <= 200, "paging does not end");
        }
        assert_eq!(seen, range(1, 120), "limit={limit}");
        assert_eq!(pages, 120usize.div_ceil(limit), "limit={limit}");

        // Forward with `after`.
        let mut seen: Vec<i64> = Vec::new();
        let mut after = 0;
        loop {
            let (seqs, more) =
                page(&app, &alice, room, &format!("after={after}&limit={limit}")).await;
            seen.extend(&seqs);
            if !more {
                break;
            }
            after = *seqs.last().unwrap();
        }
        assert_eq!(seen, range(1, 120), "limit={limit}");
    }

    // The bodies survive paging intact.
    let r = history(&app, &alice, room, "after=0&limit=200").await;
    assert_eq!(r.body["messages"], json!(sent));
}

#[tokio::test]
async fn an_empty_room_has_an_empty_page() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    for q in ["", "before=10", "after=0", "limit=1", "after=0&before=5"] {
        let r = history(&app, &alice, room, q).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, json!({"messages": [], "has_more": false}), "?{q}");
    }
    let r = history(&app, &bob, room, "").await;
    assert_eq!(r.body, json!({"messages": [], "has_more": false}));
}

#[tokio::test]
async fn read_markers_lower_the_unread_count_and_never_move_back() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    for i in 1..=5 {
        app.send(&alice, room, &format!("a{i}"), "hi").await;
    }
    assert_eq!(unread(&app, &bob, &alice).await, 5);
    assert_eq!(unread(&app, &alice, &bob).await, 0, "own messages are read");

    let r = mark_read(&app, &bob, room, json!(3)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    assert_eq!(r.body, Value::Null, "204 has no body");
    assert_eq!(unread(&app, &bob, &alice).await, 2);

    // Markers never move backwards.
    assert_eq!(
        mark_read(&app, &bob, room, json!(1)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(unread(&app, &bob, &alice).await, 2);
    assert_eq!(
        mark_read(&app, &bob, room, json!(0)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(unread(&app, &bob, &alice).await, 2);
    // The same marker again is fine.
    assert_eq!(
        mark_read(&app, &bob, room, json!(3)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(unread(&app, &bob, &alice).await, 2);

    // Beyond the newest message: clamped to it.
    assert_eq!(
        mark_read(&app, &bob, room, json!(1000)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(unread(&app, &bob, &alice).await, 0);
    // Clamped, not stored as 1000: the next message is unread.
    app.send(&alice, room, "a6", "one more").await;
    assert_eq!(unread(&app, &bob, &alice).await, 1);
    app.send(&alice, room, "a7", "and another").await;
    assert_eq!(unread(&app, &bob, &alice).await, 2);

    // Alice's own marker is independent of bob's.
    assert_eq!(unread(&app, &alice, &bob).await, 0);
}

#[tokio::test]
async fn read_rejects_bad_markers() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    app.send(&alice, room, "1", "one").await;
    assert_invalid(&mark_read(&app, &bob, room, json!(-1)).await, &["up_to"]);
    assert_invalid(&mark_read(&app, &bob, room, json!("3")).await, &["up_to"]);
    assert_invalid(&mark_read(&app, &bob, room, json!(1.5)).await, &["up_to"]);
    assert_invalid(&mark_read(&app, &bob, room, Value::Null).await, &["up_to"]);
    let r = app
        .post(&format!("/api/rooms/{room}/read"), &bob.token, json!({}))
        .await;
    assert_invalid(&r, &["up_to"]);
    // None of that moved the marker.
    assert_eq!(unread(&app, &bob, &alice).await, 1);
    // An empty room accepts any marker, clamped to 0.
    let carol = app.register("carol").await;
    let empty = app.add_contact(&alice, &carol).await;
    assert_eq!(
        mark_read(&app, &carol, empty, json!(5)).await.status,
        StatusCode::NO_CONTENT
    );
    app.send(&alice, empty, "e1", "first").await;
    assert_eq!(unread(&app, &carol, &alice).await, 1);
}

#[tokio::test]
async fn sending_marks_the_room_read_for_the_sender() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    for i in 1..=3 {
        app.send(&alice, room, &format!("a{i}"), "hi").await;
    }
    app.add_contact(&bob, &alice).await;
    assert_eq!(unread(&app, &bob, &alice).await, 3);
    let reply = app.send(&bob, room, "b1", "hello back").await;
    assert_eq!(reply["seq"], 4);
    assert_eq!(
        unread(&app, &bob, &alice).await,
        0,
        "bob read up to his own message"
    );
    assert_eq!(unread(&app, &alice, &bob).await, 1);
    // A resend does not change markers.
    let again = send_raw(
        &app,
        &bob,
        room,
        json!({"client_msg_id": "b1", "body": "x"}),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(unread(&app, &alice, &bob).await, 1);
}
