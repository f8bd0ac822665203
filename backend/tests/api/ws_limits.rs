//! What one WebSocket client can hold on the server: connections per user, frames that count
//! towards the flood limit, the outgoing byte budget and byte-sized `sync` pages — with real
//! clients, and the real binary's memory measured from `/proc`.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{fresh_database, spawn_app, spawn_app_with, ChildServer, TestApp};
use crate::ws_support::{Closed, Ws};

/// A WebSocket over a TCP socket with a 4 KiB receive buffer: a client that can stop reading
/// with almost nothing buffered on its side.
async fn small_buffer_ws(
    port: u16,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket
        .connect(format!("127.0.0.1:{port}").parse().unwrap())
        .await
        .unwrap();
    let mut req = format!("ws://127.0.0.1:{port}/api/ws")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::client_async(req, tokio_tungstenite::MaybeTlsStream::Plain(stream))
        .await
        .expect("ws connects")
        .0
}

/// Connects with a header token and returns the first frame (ready or an error) and the socket.
async fn connect_first_frame(app: &TestApp, token: &str) -> (Value, Ws) {
    let mut req = app.ws_url().into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    let (inner, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("ws connects");
    let mut ws = Ws {
        inner,
        ready: Value::Null,
    };
    let first = ws
        .try_next(Duration::from_secs(5))
        .await
        .expect("a first frame");
    (first, ws)
}

/// A body of `n` characters mixing emoji, Arabic and Latin text (4-, 2- and 1-byte UTF-8).
fn mixed_body(i: usize, n: usize) -> String {
    let parts = ["😀", "مرحبا ", "héllo ", "🚀🌍", "שלום "];
    let mut s = format!("#{i} ");
    let mut k = i;
    while s.chars().count() < n {
        s.push_str(parts[k % parts.len()]);
        k += 1;
    }
    s.chars().take(n).collect()
}

/// Sends `bodies` from `ws` pipelined and waits for every ack; returns the acked seqs.
async fn send_all(ws: Ws, room: i64, prefix: &str, bodies: Vec<String>) -> (Ws, Vec<i64>) {
    let Ws { inner, ready } = ws;
    let (mut sink, mut stream) = inner.split();
    let n = bodies.len();
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while seqs.len() < n {
            match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    assert_ne!(v["type"], "error", "{v}");
                    if v["type"] == "ack" {
                        seqs.push(v["message"]["seq"].as_i64().unwrap());
                    }
                }
                Ok(Some(Ok(_))) => {}
                other => panic!("the sender's connection ended: {other:?}"),
            }
        }
        (stream, seqs)
    });
    for (i, body) in bodies.into_iter().enumerate() {
        let f = json!({"type":"send","room_id":room,"client_msg_id":format!("{prefix}-{i}"),"body":body});
        sink.send(Message::text(f.to_string())).await.unwrap();
    }
    let (stream, seqs) = reader.await.unwrap();
    let inner = sink.reunite(stream).unwrap();
    (Ws { inner, ready }, seqs)
}

#[tokio::test]
async fn the_33rd_connection_is_refused_and_a_closed_one_frees_its_slot() {
    let app = spawn_app().await;
    let a = app.register("alice_the_thirty_second").await;
    let mut open = Vec::new();
    for _ in 0..32 {
        open.push(app.ws(&a.token).await);
    }
    let (first, mut refused) = connect_first_frame(&app, &a.token).await;
    assert_eq!(first["type"], "error", "{first}");
    assert_eq!(first["code"], "rate_limited", "{first}");
    assert_eq!(
        refused.closed(Duration::from_secs(5)).await,
        Closed::Code(1008)
    );
    // The 32 stay open and answer.
    for ws in &mut open {
        ws.send(json!({"type":"ping"})).await;
        assert_eq!(ws.next().await["type"], "pong");
    }
    // Closing one frees its slot for the next connection.
    let mut one = open.pop().unwrap();
    one.inner.close(None).await.unwrap();
    let _ = one.closed(Duration::from_secs(5)).await;
    let mut again = None;
    for _ in 0..50 {
        let (first, ws) = connect_first_frame(&app, &a.token).await;
        if first["type"] == "ready" {
            again = Some(ws);
            break;
        }
        // The server may still be finishing the closed session.
        assert_eq!(first["code"], "rate_limited", "{first}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut again = again.expect("a slot freed by the closed connection");
    again.send(json!({"type":"ping"})).await;
    assert_eq!(again.next().await["type"], "pong");
    // Another user is not affected.
    let b = app.register("bob").await;
    let bob = app.ws(&b.token).await;
    assert_eq!(bob.ready["user"]["username"], "bob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_upgrades_never_exceed_the_cap() {
    let app = spawn_app_with(|c| c.ws.max_connections_per_user = 5).await;
    let a = app.register("alice").await;
    let attempts = (0..24).map(|_| connect_first_frame(&app, &a.token));
    let results = futures::future::join_all(attempts).await;
    let ready = results
        .iter()
        .filter(|(first, _)| first["type"] == "ready")
        .count();
    let refused = results
        .iter()
        .filter(|(first, _)| first["code"] == "rate_limited")
        .count();
    assert_eq!((ready, refused), (5, 19));
}

#[tokio::test]
async fn a_binary_frame_closes_1003() {
    let app = spawn_app().await;
    let a = app.register("alice").await;
    let mut a1 = app.ws(&a.token).await;
    a1.inner
        .send(Message::binary(vec![0x7b, 0x7d]))
        .await
        .unwrap();
    assert_eq!(a1.closed(Duration::from_secs(5)).await, Closed::Code(1003));

    // Before authenticating too.
    let mut raw = app.ws_raw().await;
    raw.send(Message::binary(b"{\"type\":\"auth\"}".to_vec()))
        .await
        .unwrap();
    let mut raw = Ws {
        inner: raw,
        ready: Value::Null,
    };
    assert_eq!(raw.closed(Duration::from_secs(5)).await, Closed::Code(1003));
}

#[tokio::test]
async fn a_ping_flood_closes_1008() {
    let app = spawn_app_with(|c| c.ws.max_frames_per_sec = 5).await;
    let a = app.register("alice").await;
    let mut a1 = app.ws(&a.token).await;
    for i in 0..50u8 {
        if a1.inner.send(Message::Ping(vec![i].into())).await.is_err() {
            break;
        }
    }
    assert_eq!(a1.closed(Duration::from_secs(5)).await, Closed::Code(1008));

    // A few pings are fine: they are answered and the connection stays.
    let mut a2 = app.ws(&a.token).await;
    a2.inner
        .send(Message::Ping(b"hi".to_vec().into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match a2.inner.next().await {
                Some(Ok(Message::Pong(p))) => return p,
                Some(Ok(_)) => continue,
                other => panic!("connection ended: {other:?}"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(&pong[..], b"hi");
}

#[tokio::test]
async fn a_reader_over_budget_is_closed_while_the_users_other_connection_gets_everything() {
    let app = spawn_app_with(|c| {
        c.ws.outgoing_budget = 64 * 1024;
        c.ws.over_budget_grace = Duration::from_millis(300);
        // Keep the broker's queue out of the way: the budget alone must close the slow reader.
        c.ws.queue_capacity = 100_000;
        c.ws.max_frames_per_sec = 100_000;
    })
    .await;
    let (a, b, room) = app.pair("alice", "bob").await;
    let mut slow = Ws {
        inner: small_buffer_ws(app.port, &b.token).await,
        ready: Value::Null,
    };
    slow.ready = slow.next_of("ready").await;
    let mut fast = app.ws(&b.token).await;
    let a1 = app.ws(&a.token).await;

    // ~1.6 MB: 25 times the budget.
    const N: usize = 100;
    let bodies: Vec<String> = (0..N).map(|i| mixed_body(i, 4000)).collect();
    let expected = bodies.clone();
    let sender = tokio::spawn(send_all(a1, room, "big", bodies));
    for (i, body) in expected.iter().enumerate() {
        let m = fast.next_of("message").await;
        assert_eq!(m["message"]["seq"], i as i64 + 1);
        assert_eq!(m["message"]["body"].as_str().unwrap(), body.trim());
    }
    let (mut a1, _) = sender.await.unwrap();

    // Bob's fast connection leaves; when the slow one is closed too, Bob goes offline.
    fast.inner.close(None).await.unwrap();
    loop {
        let f = a1.next_of("presence").await;
        if f["user_id"] == b.id && f["online"] == false {
            break;
        }
    }
    // What the slow reader finds: a prefix in order, about one budget's worth, then 1013.
    let mut got = 0;
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(5), slow.inner.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "message" {
                    got += 1;
                    assert_eq!(v["message"]["seq"], got);
                }
            }
            Ok(Some(Ok(Message::Close(f)))) => break f.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(code, Some(1013));
    assert!(
        got * 4000 < 4 * 64 * 1024 && got < N as i64,
        "the slow reader got {got} messages"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_of_a_large_room_replays_every_message_once_in_order_with_live_ones() {
    let app = spawn_app_with(|c| {
        // Pages of a few messages and a budget of a few pages: many pages, many pauses.
        c.ws.sync_page_bytes = 24 * 1024;
        c.ws.outgoing_budget = 64 * 1024;
        c.ws.max_frames_per_sec = 100_000;
    })
    .await;
    let (a, b, room) = app.pair("alice", "bob").await;
    const OLD: usize = 300;
    let bodies: Vec<String> = (0..OLD)
        .map(|i| mixed_body(i, [4000, 17, 1500, 3999, 1][i % 5]))
        .collect();
    let mut want: BTreeMap<i64, String> = BTreeMap::new();
    for (i, b) in bodies.iter().enumerate() {
        // Stored trimmed.
        want.insert(i as i64 + 1, b.trim().to_owned());
    }
    let (a1, seqs) = send_all(app.ws(&a.token).await, room, "old", bodies).await;
    assert_eq!(seqs, (1..=OLD as i64).collect::<Vec<_>>());

    let mut b1 = app.ws(&b.token).await;
    b1.send(json!({"type":"sync","room_id":room,"after":0}))
        .await;
    // While the replay runs, Alice keeps writing and Bob sends from the syncing connection.
    const LIVE: usize = 40;
    let live: Vec<String> = (0..LIVE).map(|i| mixed_body(1000 + i, 3000)).collect();
    let alice = tokio::spawn(send_all(a1, room, "live", live.clone()));
    const OWN: usize = 5;
    for i in 0..OWN {
        b1.send_msg(room, &format!("own-{i}"), &format!("bob's reply {i} 👋"))
            .await;
    }
    let total = OLD + LIVE + OWN;
    let mut seen: BTreeMap<i64, Value> = BTreeMap::new();
    let mut last = 0;
    let mut acks = 0;
    let mut synced = None;
    while seen.len() < total || synced.is_none() {
        let f = b1.next().await;
        match f["type"].as_str().unwrap() {
            "message" | "ack" => {
                let seq = f["message"]["seq"].as_i64().unwrap();
                assert!(seq > last, "seq {seq} after {last}: in order, once");
                last = seq;
                if f["type"] == "ack" {
                    acks += 1;
                    assert_eq!(f["message"]["sender_id"], b.id);
                }
                seen.insert(seq, f["message"].clone());
            }
            "synced" => {
                assert!(synced.is_none(), "one synced");
                assert_eq!(f["room_id"], room);
                let at = f["last_seq"].as_i64().unwrap();
                assert_eq!(at, last, "synced right after the replay");
                assert!(at >= OLD as i64);
                synced = Some(at);
            }
            other => panic!("unexpected {other}: {f}"),
        }
    }
    assert_eq!(
        acks, OWN,
        "every send of the syncing connection is acknowledged"
    );
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        (1..=total as i64).collect::<Vec<_>>()
    );
    for (seq, body) in &want {
        assert_eq!(seen[seq]["body"].as_str().unwrap(), body);
    }
    alice.await.unwrap();
    assert_eq!(b1.try_next(Duration::from_millis(300)).await, None);
}

#[tokio::test]
async fn sync_requests_waiting_are_bounded() {
    let app = spawn_app_with(|c| c.ws.max_pending_syncs = 2).await;
    let (a, b, room) = app.pair("alice", "bob").await;
    app.send(&a, room, "m1", "hello").await;
    let mut b1 = app.ws(&b.token).await;
    // Three requests in one go: the third finds two waiting.
    for _ in 0..3 {
        b1.send(json!({"type":"sync","room_id":room,"after":0}))
            .await;
    }
    let mut synced = 0;
    let mut limited = 0;
    while synced + limited < 3 {
        let f = b1.next().await;
        match f["type"].as_str().unwrap() {
            "synced" => synced += 1,
            "error" => {
                assert_eq!(f["code"], "rate_limited", "{f}");
                limited += 1;
            }
            "message" => assert_eq!(f["message"]["seq"], 1),
            other => panic!("unexpected {other}"),
        }
    }
    assert!(synced >= 2, "{synced} synced, {limited} refused");
    b1.send(json!({"type":"ping"})).await;
    assert_eq!(b1.next().await["type"], "pong");
}

// ---- memory of the real binary ----------------------------------------------------------

/// The documented bound on what one connection holds (README, "Limits"): the outgoing budget,
/// one `sync` page being sent plus one being read, and the connection's buffers.
const PER_CONNECTION_BOUND_KIB: u64 = 1024 + 2 * 256 + 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_syncing_a_large_room_without_reading_hold_at_most_their_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _pg) = fresh_database(dir.path());
    // Another build can be measured the same way (e.g. one from before the budget).
    let server = ChildServer::start(
        std::env::var("LETSCHAT_RSS_TEST_BIN").ok(),
        &url,
        &[
            ("LETSCHAT_AUTH_RATE_PER_IP", "100000"),
            // 100 sockets of one user: the per-connection bound is what is measured here.
            ("LETSCHAT_MAX_CONNECTIONS_PER_USER", "128"),
        ],
    )
    .await;
    let port = server.port;
    let app = TestApp::for_address(port);

    // 600 messages of 4,000 emoji: 16 KB each, 9.6 MB in the room.
    let (a, b, room) = app.pair("alice", "bob").await;
    let body = "😀".repeat(4000);
    let (_a1, seqs) = send_all(app.ws(&a.token).await, room, "e", vec![body; 600]).await;
    assert_eq!(seqs.len(), 600);

    let mut sockets = Vec::new();
    let before = server.memory_kib().0;
    const SOCKETS: u64 = 100;
    for _ in 0..SOCKETS {
        let mut ws = small_buffer_ws(port, &b.token).await;
        // Read `ready`, then never read again.
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains(r#""type":"ready""#) => break,
                Some(Ok(_)) => {}
                other => panic!("no ready: {other:?}"),
            }
        }
        ws.send(Message::text(
            json!({"type":"sync","room_id":room,"after":0}).to_string(),
        ))
        .await
        .unwrap();
        sockets.push(ws);
    }
    // Every session fills its budget within moments; watch for a few seconds (less than the
    // grace, so all of them are still held) and keep the peak.
    let mut peak = before;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(server.memory_kib().0);
    }
    let growth = peak.saturating_sub(before);
    let bound = SOCKETS * PER_CONNECTION_BOUND_KIB;
    eprintln!(
        "RSS before {before} KiB, peak {peak} KiB: +{growth} KiB for {SOCKETS} sockets (bound {bound} KiB)"
    );
    assert!(
        growth < bound,
        "RSS grew by {growth} KiB for {SOCKETS} sockets; the documented bound is {bound} KiB"
    );
    drop(sockets);
}
