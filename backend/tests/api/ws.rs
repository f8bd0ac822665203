//! The WebSocket endpoint, with real clients.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use letschat::domain::{SessionId, UserId};
use letschat::services::sessions;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app, spawn_app_with_state};
use crate::ws_support::Closed;

#[tokio::test]
async fn header_auth_gets_ready_with_rooms() {
    let app = spawn_app().await;
    let (a, _b, room) = app.pair("alice", "bob").await;
    app.send(&a, room, "m1", "hello").await;
    let ws = app.ws(&a.token).await;
    assert_eq!(ws.ready["user"]["username"], "alice");
    assert_eq!(
        ws.ready["rooms"],
        json!([{"room_id": room, "last_seq": 1, "read_up_to": 1, "peer_read_up_to": 0, "last_change_seq": 0}])
    );
}

#[tokio::test]
async fn first_frame_auth_then_ready() {
    let app = spawn_app().await;
    let a = app.register("alice").await;
    let mut raw = app.ws_raw().await;
    raw.send(Message::text(
        json!({"type":"auth","token":a.token}).to_string(),
    ))
    .await
    .unwrap();
    let Some(Ok(Message::Text(t))) = raw.next().await else {
        panic!("no frame")
    };
    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
    assert_eq!(v["type"], "ready");
    assert_eq!(v["rooms"], json!([]));
}

#[tokio::test]
async fn send_acks_and_fans_out_without_echo() {
    let app = spawn_app().await;
    let (a, b, room) = app.pair("alice", "bob").await;
    let mut a1 = app.ws(&a.token).await;
    let mut a2 = app.ws(&a.token).await;
    let mut b1 = app.ws(&b.token).await;
    a1.send_msg(room, "c-1", " hi bob ").await;
    let ack = a1.next().await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["client_msg_id"], "c-1");
    assert_eq!(ack["message"]["seq"], 1);
    assert_eq!(ack["message"]["body"], "hi bob");
    for ws in [&mut a2, &mut b1] {
        let f = ws.next().await;
        assert_eq!(f["type"], "message");
        assert_eq!(f["message"], ack["message"]);
    }
    // No echo of the message to the sending connection.
    assert_eq!(a1.try_next(Duration::from_millis(300)).await, None);
    // Persisted before the ack.
    let h = app
        .get(&format!("/api/rooms/{room}/messages"), &b.token)
        .await;
    assert_eq!(h.body["messages"][0], ack["message"]);
}

#[tokio::test]
async fn bad_and_revoked_tokens_get_an_error_frame_and_1008() {
    let app = spawn_app().await;
    let a = app.register("alice").await;

    // Garbage token in the header.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        app.ws_url(),
    )
    .unwrap();
    req.headers_mut()
        .insert("Authorization", "Bearer not-a-token".parse().unwrap());
    let (inner, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut ws = crate::ws_support::Ws {
        inner,
        ready: serde_json::Value::Null,
    };
    let f = ws.next().await;
    assert_eq!(
        (f["type"].as_str(), f["code"].as_str()),
        (Some("error"), Some("unauthorized"))
    );
    assert_eq!(ws.closed(Duration::from_secs(5)).await, Closed::Code(1008));

    // A revoked token in the first frame.
    let login = app
        .call(
            reqwest::Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"username":"alice","password":"tortoise-42"})),
        )
        .await;
    let second = login.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.call(
            reqwest::Method::POST,
            "/api/auth/logout",
            Some(&second),
            None
        )
        .await
        .status,
        204
    );
    let inner = app.ws_raw().await;
    let mut ws = crate::ws_support::Ws {
        inner,
        ready: serde_json::Value::Null,
    };
    ws.send(json!({"type":"auth","token": second})).await;
    assert_eq!(ws.next().await["code"], "unauthorized");
    assert_eq!(ws.closed(Duration::from_secs(5)).await, Closed::Code(1008));

    // A first frame that is not auth.
    let inner = app.ws_raw().await;
    let mut ws = crate::ws_support::Ws {
        inner,
        ready: serde_json::Value::Null,
    };
    ws.send(json!({"type":"ping"})).await;
    assert_eq!(ws.next().await["code"], "unauthorized");
    assert_eq!(ws.closed(Duration::from_secs(5)).await, Closed::Code(1008));

    // The first token still works.
    let ok = app.ws(&a.token).await;
    assert_eq!(ok.ready["type"], "ready");
}

#[tokio::test]
async fn no_auth_frame_in_time_closes_1008() {
    let app =
        crate::helpers::spawn_app_with(|c| c.ws.auth_timeout = Duration::from_millis(300)).await;
    let inner = app.ws_raw().await;
    let mut ws = crate::ws_support::Ws {
        inner,
        ready: serde_json::Value::Null,
    };
    assert_eq!(ws.next().await["code"], "unauthorized");
    assert_eq!(ws.closed(Duration::from_secs(5)).await, Closed::Code(1008));
}

#[tokio::test]
async fn logout_closes_that_tokens_sockets_only() {
    let app = spawn_app().await;
    let a = app.register("alice").await;
    let login = app
        .call(
            reqwest::Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"username":"alice","password":"tortoise-42"})),
        )
        .await;
    let other_token = login.body["token"].as_str().unwrap().to_owned();
    let mut doomed = app.ws(&a.token).await;
    let mut kept = app.ws(&other_token).await;
    assert_eq!(
        app.call(
            reqwest::Method::POST,
            "/api/auth/logout",
            Some(&a.token),
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(doomed.next().await["code"], "unauthorized");
    assert_eq!(
        doomed.closed(Duration::from_secs(5)).await,
        Closed::Code(1008)
    );
    kept.send(json!({"type":"ping"})).await;
    assert_eq!(kept.next().await, json!({"type":"pong"}));
}

#[tokio::test]
async fn a_burst_of_500_arrives_complete_and_in_order() {
    let app = spawn_app().await;
    let (a, b, room) = app.pair("alice", "bob").await;
    let mut a1 = app.ws(&a.token).await;
    let mut b1 = app.ws(&b.token).await;
    for i in 0..500 {
        a1.send_msg(room, &format!("burst-{i}"), &format!("message {i}"))
            .await;
    }
    for i in 0..500i64 {
        let ack = a1.next_of("ack").await;
        assert_eq!(ack["client_msg_id"], format!("burst-{i}"));
        assert_eq!(ack["message"]["seq"], i + 1);
    }
    for i in 0..500i64 {
        let m = b1.next_of("message").await;
        assert_eq!(m["message"]["seq"], i + 1);
        assert_eq!(m["message"]["body"], format!("message {i}"));
    }
    assert_eq!(b1.try_next(Duration::from_millis(200)).await, None);
}

#[tokio::test]
async fn a_resent_client_msg_id_gets_the_same_ack_and_is_not_redelivered() {
    let app = spawn_app().await;
    let (a, b, room) = app.pair("alice", "bob").await;
    let mut a1 = app.ws(&a.token).await;
    let mut b1 = app.ws(&b.token).await;
    a1.send_msg(room, "same", "once").await;
    let first = a1.next_of("ack").await;
    a1.send_msg(room, "same", "once").await;
    let second = a1.next_of("ack").await;
    assert_eq!(first, second);
    assert_eq!(b1.next_of("message").await["message"], first["message"]);
    assert_eq!(b1.try_next(Duration::from_millis(300)).await, None);
    let h = app
        .get(&format!("/api/rooms/{room}/messages"), &b.token)
        .await;
    assert_eq!(h.body["messages"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn reconnect_and_sync_gets_exactly_the_missed_messages() {
    let app = spawn_app().await;
    let (a, b, room) = app.pair("alice", "bob").await;
    let mut b1 = app.ws(&b.token).await;
    app.send(&a, room, "m1", "one").await;
    let seen = b1.next_of("message").await["message"]["seq"]
        .as_i64()
        .unwrap();
    assert_eq!(seen, 1);
    drop(b1);
    for i in 2..=120 {
        app.send(&a, room, &format!("m{i}"), &format!("n{i}")).await;
    }
    let mut b2 = app.ws(&b.token).await;
    assert_eq!(b2.ready["rooms"][0]["last_seq"], 120);
    b2.send(json!({"type":"sync","room_id":room,"after":seen}))
        .await;
    for seq in 2..=120i64 {
        let m = b2.next().await;
        assert_eq!(m["type"], "message");
        assert_eq!(m["message"]["seq"], seq);
        assert_eq!(m["message"]["body"], format!("n{seq}"));
    }
    assert_eq!(
        b2.next().await,
        json!({"type":"synced","room_id":room,"last_seq":120})
    );
    // A live message after the sync arrives once.
    app.send(&a, room, "m121", "live").await;
    assert_eq!(b2.next().await["message"]["seq"], 121);
    assert_eq!(b2.try_next(Duration::from_millis(200)).await, None);
}

#[tokio::test]
async fn rest_sent_messages_arrive_live_to_every_connection() {
    let app = spawn_app().await;
    let (a, b, room) = app.pair("alice", "bob").await;
    let mut a1 = app.ws(&a.token).await;
    let mut b1 = app.ws(&b.token).await;
    let sent = app.send(&a, room, "rest-1", "over REST").await;
    assert_eq!(a1.next().await, json!({"type":"message","message":sent}));
    assert_eq!(b1.next().await, json!({"type":"message","message":sent}));
}

#[tokio::test]
async fn typing_is_relayed_to_the_other_member_and_rate_limited() {
    let app = spawn_app().await;
    let (a, b, room) = app.pair("alice", "bob").await;
    let mut a1 = app.ws(&a.token).await;
    let mut b1 = app.ws(&b.token).await;
    a1.send(json!({"type":"typing","room_id":room})).await;
    a1.send(json!({"type":"typing","room_id":room})).await;
    assert_eq!(
        b1.next().await,
        json!({"type":"typing","room_id":room,"user_id":a.id})
    );
    // The second notice within a second is not relayed, and nothing echoes to the typist.
    assert_eq!(b1.try_next(Duration::from_millis(300)).await, None);
    assert_eq!(a1.try_next(Duration::from_millis(100)).await, None);
}

#[tokio::test]
async fn read_is_stored_relayed_and_updates_unread_counts() {
    let app = spawn_app().await;
    let (a, b, room) = app.pair("alice", "bob").await;
    for i in 1..=3 {
        app.send(&a, room, &format!("m{i}"), "hi").await;
    }
    let unread = |r: &crate::helpers::Resp| r.body[0]["unread_count"].as_i64().unwrap();
    assert_eq!(unread(&app.get("/api/contacts", &b.token).await), 3);
    let mut a1 = app.ws(&a.token).await;
    let mut b1 = app.ws(&b.token).await;
    let mut b2 = app.ws(&b.token).await;
    b1.send(json!({"type":"read","room_id":room,"up_to":2}))
        .await;
    let expected = json!({"type":"read","room_id":room,"user_id":b.id,"up_to":2});
    assert_eq!(a1.next().await, expected);
    assert_eq!(b2.next().await, expected);
    assert_eq!(unread(&app.get("/api/contacts", &b.token).await), 1);
    assert_eq!(b2.ready["rooms"][0]["read_up_to"], 0);
    let b3 = app.ws(&b.token).await;
    assert_eq!(b3.ready["rooms"][0]["read_up_to"], 2);
    // A new connection of the sender learns how far the peer has read (read receipts survive
    // a reload or a new device); alice herself has read everything she sent.
    let a2 = app.ws(&a.token).await;
    assert_eq!(
        a2.ready["rooms"],
        json!([{"room_id": room, "last_seq": 3, "read_up_to": 3, "peer_read_up_to": 2, "last_change_seq": 0}])
    );
    assert_eq!(b3.ready["rooms"][0]["peer_read_up_to"], 3);
}

#[tokio::test]
async fn presence_follows_the_first_and_last_connection() {
    let app = spawn_app().await;
    let (a, b, _room) = app.pair("alice", "bob").await;
    app.add_contact(&b, &a).await;
    let mut b1 = app.ws(&b.token).await;
    let a1 = app.ws(&a.token).await;
    assert_eq!(
        b1.next_of("presence").await,
        json!({"type":"presence","user_id":a.id,"online":true})
    );
    let contacts = app.get("/api/contacts", &b.token).await;
    assert_eq!(contacts.body[0]["online"], true);
    let a2 = app.ws(&a.token).await;
    drop(a1);
    // Still one connection open: no offline yet.
    assert_eq!(b1.try_next_any(Duration::from_millis(300)).await, None);
    drop(a2);
    assert_eq!(
        b1.next_of("presence").await,
        json!({"type":"presence","user_id":a.id,"online":false})
    );
    let contacts = app.get("/api/contacts", &b.token).await;
    assert_eq!(contacts.body[0]["online"], false);
}

#[tokio::test]
async fn a_session_that_panics_while_registered_still_shows_its_user_offline() {
    let (app, state) = spawn_app_with_state(|_| {}).await;
    let state = Arc::new(state);
    let (a, b, _room) = app.pair("alice", "bob").await;
    app.add_contact(&b, &a).await;
    let mut b1 = app.ws(&b.token).await;
    let sid = SessionId(crate::support::session_of(&a.token));
    let (registration, _events) = sessions::register(&state, UserId(a.id), sid).await.unwrap();
    assert_eq!(
        b1.next_of("presence").await,
        json!({"type":"presence","user_id":a.id,"online":true})
    );
    assert_eq!(state.broker.connections(), 2);
    assert!(state.open_sessions.ids().contains(&sid));
    let session = tokio::spawn(async move {
        let _registration = registration;
        panic!("a session failed");
    });
    assert!(session.await.unwrap_err().is_panic());
    assert_eq!(
        b1.next_of("presence").await,
        json!({"type":"presence","user_id":a.id,"online":false})
    );
    let contacts = app.get("/api/contacts", &b.token).await;
    assert_eq!(contacts.body[0]["online"], false);
    assert_eq!(state.broker.connections(), 1);
    // Nor is its sign-in session kept seen any longer.
    assert!(!state.open_sessions.ids().contains(&sid));
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_connection_stays() {
    let app = spawn_app().await;
    let (a, _b, room) = app.pair("alice", "bob").await;
    let (_c, d, other_room) = app.pair("carol", "dave").await;
    let _ = d;
    let mut a1 = app.ws(&a.token).await;
    a1.inner.send(Message::text("{not json")).await.unwrap();
    assert_eq!(a1.next().await["code"], "invalid_json");
    a1.send(json!({"type":"shout"})).await;
    let f = a1.next().await;
    assert_eq!(f["code"], "validation_failed");
    assert!(f["message"]
        .as_str()
        .unwrap()
        .contains("unknown frame type"));
    a1.send(json!({"type":"send","room_id":room,"client_msg_id":"c1","body":"   "}))
        .await;
    let f = a1.next().await;
    assert_eq!(
        (f["code"].as_str(), f["client_msg_id"].as_str()),
        (Some("validation_failed"), Some("c1"))
    );
    a1.send(json!({"type":"send","room_id":"x","client_msg_id":"c2","body":"hi"}))
        .await;
    let f = a1.next().await;
    assert_eq!(
        (f["code"].as_str(), f["client_msg_id"].as_str()),
        (Some("validation_failed"), Some("c2"))
    );
    a1.send(json!({"type":"send","room_id":other_room,"client_msg_id":"c3","body":"hi"}))
        .await;
    let f = a1.next().await;
    assert_eq!(
        (f["code"].as_str(), f["client_msg_id"].as_str()),
        (Some("not_found"), Some("c3"))
    );
    a1.send(json!({"type":"sync","room_id":other_room,"after":0}))
        .await;
    assert_eq!(a1.next().await["code"], "not_found");
    a1.send(json!({"type":"typing","room_id":999})).await;
    assert_eq!(a1.next().await["code"], "not_found");
    a1.send(json!({"type":"read","room_id":other_room,"up_to":1}))
        .await;
    assert_eq!(a1.next().await["code"], "not_found");
    a1.send(json!({"type":"ping"})).await;
    assert_eq!(a1.next().await, json!({"type":"pong"}));
    // Nothing was stored in the room of others.
    let h = app
        .get(&format!("/api/rooms/{other_room}/messages"), &_c.token)
        .await;
    assert_eq!(h.body["messages"], json!([]));
}

#[tokio::test]
async fn an_oversized_frame_closes_1009() {
    let app = spawn_app().await;
    let a = app.register("alice").await;
    let mut a1 = app.ws(&a.token).await;
    let big = "x".repeat(70 * 1024);
    let _ = a1
        .inner
        .send(Message::text(json!({"type":"ping","pad":big}).to_string()))
        .await;
    assert_eq!(a1.closed(Duration::from_secs(5)).await, Closed::Code(1009));
}

#[tokio::test]
async fn a_flood_closes_1008() {
    let app = crate::helpers::spawn_app_with(|c| c.ws.max_frames_per_sec = 5).await;
    let a = app.register("alice").await;
    let mut a1 = app.ws(&a.token).await;
    for _ in 0..50 {
        if a1
            .inner
            .send(Message::text(r#"{"type":"ping"}"#))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(a1.closed(Duration::from_secs(5)).await, Closed::Code(1008));
}

#[tokio::test]
async fn cross_origin_upgrades_are_refused() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.ws.allowed_origins = vec!["https://chat.example.com".into()]
    })
    .await;
    let a = app.register("alice").await;
    let upgrade = |origin: Option<String>| {
        let mut req =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                app.ws_url(),
            )
            .unwrap();
        req.headers_mut().insert(
            "Authorization",
            format!("Bearer {}", a.token).parse().unwrap(),
        );
        if let Some(o) = origin {
            req.headers_mut().insert("Origin", o.parse().unwrap());
        }
        tokio_tungstenite::connect_async(req)
    };
    match upgrade(Some("https://evil.example".into())).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    assert!(upgrade(Some(format!("http://127.0.0.1:{}", app.port)))
        .await
        .is_ok());
    assert!(upgrade(Some("https://chat.example.com".into()))
        .await
        .is_ok());
    assert!(upgrade(None).await.is_ok());
}

#[tokio::test]
async fn a_silent_connection_is_closed() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.ws.ping_interval = Duration::from_millis(100);
        c.ws.idle_timeout = Duration::from_millis(400);
    })
    .await;
    let a = app.register("alice").await;
    let mut a1 = app.ws(&a.token).await;
    // Not reading means not answering pings either.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(a1.closed(Duration::from_secs(5)).await, Closed::Code(1000));
}

#[tokio::test]
async fn a_slow_consumer_is_dropped_while_others_get_everything() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.ws.queue_capacity = 1024;
        // The sender pipelines thousands of frames: keep the flood limit out of the way.
        c.ws.max_frames_per_sec = 1_000_000;
        c.ws.write_timeout = Duration::from_millis(500);
    })
    .await;
    let (a, b, room) = app.pair("alice", "bob").await;
    // A client with a tiny receive buffer that never reads.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket
        .connect(format!("127.0.0.1:{}", app.port).parse().unwrap())
        .await
        .unwrap();
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        app.ws_url(),
    )
    .unwrap();
    req.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", b.token).parse().unwrap(),
    );
    let (slow, _) =
        tokio_tungstenite::client_async(req, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
    let mut slow = crate::ws_support::Ws {
        inner: slow,
        ready: serde_json::Value::Null,
    };
    slow.ready = slow.next_of("ready").await;

    let mut fast = app.ws(&b.token).await;
    let a1 = app.ws(&a.token).await;
    // Far more than the socket buffers between the server and the slow reader can hold.
    let body = "y".repeat(4000);
    const N: i64 = 4000;
    let (mut sink, mut acks) = a1.inner.split();
    let acker = tokio::spawn(async move {
        let mut n = 0;
        while n < N {
            match acks.next().await {
                Some(Ok(Message::Text(t))) if t.contains(r#""type":"ack""#) => n += 1,
                Some(Ok(_)) => {}
                other => panic!("sender connection ended: {other:?}"),
            }
        }
    });
    let sender = tokio::spawn(async move {
        for i in 0..N {
            let frame =
                json!({"type":"send","room_id":room,"client_msg_id":format!("s{i}"),"body":body});
            sink.send(Message::text(frame.to_string())).await.unwrap();
        }
        acker.await.unwrap();
    });
    for i in 1..=N {
        assert_eq!(fast.next_of("message").await["message"]["seq"], i);
    }
    sender.await.unwrap();
    // The slow reader now reads: it got a prefix, then the connection was closed.
    let mut got = 0;
    let mut last = 0;
    while let Some(f) = slow.try_next(Duration::from_secs(10)).await {
        if f["type"] == "message" {
            let seq = f["message"]["seq"].as_i64().unwrap();
            assert_eq!(seq, last + 1, "what arrives is in order, without gaps");
            last = seq;
            got += 1;
        }
    }
    assert!(
        got < N,
        "the slow consumer should have been dropped, got all {got}"
    );
}

#[tokio::test]
async fn messages_of_many_rooms_keep_per_room_order_on_every_connection() {
    let app = spawn_app().await;
    let hub = app.register("hub").await;
    let mut peers = Vec::new();
    for i in 0..4 {
        let p = app.register(&format!("peer{i}")).await;
        let room = app.add_contact(&hub, &p).await;
        peers.push((p, room));
    }
    let mut hub_ws = app.ws(&hub.token).await;
    let mut sockets = Vec::new();
    for (p, _) in &peers {
        sockets.push(app.ws(&p.token).await);
    }
    for round in 0..50 {
        for (k, (_, room)) in peers.iter().enumerate() {
            sockets[k].send_msg(*room, &format!("r{round}"), "x").await;
        }
    }
    let mut last: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
    for _ in 0..200 {
        let m = hub_ws.next_of("message").await;
        let room = m["message"]["room_id"].as_i64().unwrap();
        let seq = m["message"]["seq"].as_i64().unwrap();
        let prev = last.insert(room, seq).unwrap_or(0);
        assert_eq!(seq, prev + 1);
    }
    assert!(last.values().all(|&s| s == 50));
}

#[tokio::test]
async fn a_plain_request_to_the_websocket_is_426_upgrade_required() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let expected = |r: &crate::helpers::Resp| {
        assert_eq!(r.status, reqwest::StatusCode::UPGRADE_REQUIRED, "{r:?}");
        assert_eq!(
            r.headers.get("upgrade").and_then(|v| v.to_str().ok()),
            Some("websocket")
        );
        assert_eq!(
            r.headers
                .get("sec-websocket-version")
                .and_then(|v| v.to_str().ok()),
            Some("13")
        );
        crate::support::assert_error(r, reqwest::StatusCode::UPGRADE_REQUIRED, "upgrade_required");
    };
    // No upgrade at all, with or without a token (never `invalid_json`, never 401).
    let plain = app.call(reqwest::Method::GET, "/api/ws", None, None).await;
    expected(&plain);
    assert!(
        plain.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("this endpoint only serves WebSocket connections"),
        "{:?}",
        plain.body
    );
    let with_token = app.get("/api/ws", &alice.token).await;
    expected(&with_token);
    assert_eq!(with_token.body, plain.body);
    // An upgrade this server cannot complete: no key, another version.
    let upgrade = |version: &'static str, key: Option<&'static str>| {
        let mut req = app
            .client
            .get(app.url("/api/ws"))
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", version);
        if let Some(k) = key {
            req = req.header("Sec-WebSocket-Key", k);
        }
        req
    };
    for (req, says) in [
        (upgrade("13", None), "Sec-WebSocket-Key"),
        (
            upgrade("8", Some("dGhlIHNhbXBsZSBub25jZQ==")),
            "Sec-WebSocket-Version: 13",
        ),
    ] {
        let res = req.send().await.unwrap();
        let r = crate::helpers::Resp {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.json().await.unwrap(),
        };
        expected(&r);
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    // A real upgrade still works.
    assert_eq!(app.ws(&alice.token).await.ready["type"], "ready");
}
