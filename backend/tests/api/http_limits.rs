//! Bounded memory per HTTP connection: request bodies under a deadline (408, closed), a cap on
//! concurrent connections per client address (429, closed, before any body is read), history
//! pages cut by bytes, and the real binary's memory while 200 connections stall their bodies.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{fresh_database, spawn_app_with, ChildServer, TestApp};

/// Generous bound on any single wait, so a broken server fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(30);

async fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect")
}

/// Everything the server sends until it closes the connection (panics if it never does).
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(PATIENCE, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "the server kept the connection open; got so far: {}",
                String::from_utf8_lossy(&out)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of a raw HTTP/1.1 response.
fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next().unwrap_or("");
    head.lines().skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The JSON body of a raw response with a `Content-Length`.
fn json_body(response: &str) -> Value {
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response:?}"))
}

fn login_head(content_length: usize) -> String {
    format!(
        "POST /api/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {content_length}\r\n\r\n"
    )
}

fn assert_timed_out(response: &str) {
    assert_eq!(status_of(response), 408, "{response}");
    assert_eq!(
        header(response, "connection").map(str::to_ascii_lowercase),
        Some("close".into()),
        "{response}"
    );
    let body = json_body(response);
    assert_eq!(body["error"]["code"], "request_timeout", "{response}");
    assert!(body["error"]["message"].is_string(), "{response}");
}

async fn app_with_body_timeout() -> TestApp {
    spawn_app_with(|c| c.http.body_timeout = Duration::from_secs(1)).await
}

#[tokio::test]
async fn a_body_dribbled_slowly_gets_408_and_the_connection_closed() {
    let app = app_with_body_timeout().await;
    let mut stream = connect(app.port).await;
    let body = json!({"username": "mohammed_slow", "password": "x".repeat(400)}).to_string();
    stream
        .write_all(login_head(body.len()).as_bytes())
        .await
        .unwrap();
    let (mut rd, mut wr) = stream.into_split();
    // One byte every 100 ms: the whole body would take about 40 s.
    let dribble = tokio::spawn(async move {
        for b in body.bytes() {
            if wr.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        wr
    });
    let mut out = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, rd.read_to_end(&mut out)).await;
    assert!(closed.is_ok(), "the server kept a dribbling body open");
    let response = String::from_utf8_lossy(&out).into_owned();
    assert_timed_out(&response);
    dribble.abort();
}

#[tokio::test]
async fn a_declared_body_that_never_comes_gets_408_and_the_connection_closed() {
    let app = app_with_body_timeout().await;
    let mut stream = connect(app.port).await;
    stream
        .write_all(login_head(65_000).as_bytes())
        .await
        .unwrap();
    let response = read_until_closed(&mut stream).await;
    assert_timed_out(&response);

    // The same on an authenticated endpoint, with most of the body sent.
    let user = app.register("sara_bodyless").await;
    let mut stream = connect(app.port).await;
    let head = format!(
        "POST /api/rooms/1/messages HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{\"body\":\"",
        user.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[b'a'; 50_000]).await.unwrap();
    let response = read_until_closed(&mut stream).await;
    assert_timed_out(&response);

    // The server still answers new connections.
    let r = app.client.get(app.url("/api/health")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_chunked_body_nobody_reads_does_not_hold_the_connection() {
    let app = app_with_body_timeout().await;
    let mut stream = connect(app.port).await;
    // A chunked body that never ends, on an endpoint that reads no body.
    stream
        .write_all(
            b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\n",
        )
        .await
        .unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let dribble = tokio::spawn(async move {
        for _ in 0..400 {
            if wr.write_all(b"1\r\nx\r\n").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        wr
    });
    let mut out = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, rd.read_to_end(&mut out)).await;
    assert!(
        closed.is_ok(),
        "the server kept draining a never-ending body"
    );
    let response = String::from_utf8_lossy(&out).into_owned();
    assert_eq!(status_of(&response), 200, "{response}");
    dribble.abort();
}

#[tokio::test]
async fn connections_past_the_per_address_cap_get_429_before_their_body() {
    let app = spawn_app_with(|c| {
        c.http.max_connections_per_ip = 5;
        // Idle connections stay open through the test.
        c.http.keep_alive = Duration::from_secs(120);
    })
    .await;
    let health = b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut s = connect(app.port).await;
        s.write_all(health).await.unwrap();
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(PATIENCE, s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status_of(&String::from_utf8_lossy(&buf[..n])), 200);
        held.push(s);
    }

    // The sixth: refused at once, although its declared body never comes.
    let mut sixth = connect(app.port).await;
    sixth
        .write_all(login_head(65_000).as_bytes())
        .await
        .unwrap();
    let response = read_until_closed(&mut sixth).await;
    assert_eq!(status_of(&response), 429, "{response}");
    assert_eq!(json_body(&response)["error"]["code"], "rate_limited");
    let retry: u64 = header(&response, "retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert_eq!(
        header(&response, "connection").map(str::to_ascii_lowercase),
        Some("close".into())
    );
    // Refused ones are not counted once closed, and the held ones still work.
    let r = reqwest::Client::new()
        .get(app.url("/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let s = &mut held[0];
    s.write_all(health).await.unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert_eq!(status_of(&String::from_utf8_lossy(&buf[..n])), 200);

    // Closing two frees two places.
    held.truncate(3);
    let mut accepted = 0;
    for _ in 0..300 {
        let r = reqwest::Client::new()
            .get(app.url("/api/health"))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::OK {
            accepted += 1;
            break;
        }
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        accepted, 1,
        "a closed connection's place was never given back"
    );
}

/// Pages through the whole room backwards and forwards; every page stays within `cap` bytes.
async fn page_through(app: &TestApp, token: &str, room: i64, cap: usize) -> (Vec<i64>, Vec<i64>) {
    let mut pages = 0;
    let mut back: Vec<i64> = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let q = match before {
            None => "limit=200".to_owned(),
            Some(b) => format!("limit=200&before={b}"),
        };
        let r = app
            .client
            .get(app.url(&format!("/api/rooms/{room}/messages?{q}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let raw = r.bytes().await.unwrap();
        assert!(
            raw.len() <= cap,
            "a page of {} bytes (cap {cap})",
            raw.len()
        );
        let page: Value = serde_json::from_slice(&raw).unwrap();
        let seqs: Vec<i64> = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect();
        assert!(!seqs.is_empty(), "an empty page with more to come");
        back.splice(0..0, seqs.iter().copied());
        pages += 1;
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
        before = seqs.first().copied();
    }
    assert!(pages > 1, "the room fit in one page: nothing was cut");

    let mut forward: Vec<i64> = Vec::new();
    let mut after = 0;
    loop {
        let r = app
            .client
            .get(app.url(&format!(
                "/api/rooms/{room}/messages?limit=200&after={after}"
            )))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let raw = r.bytes().await.unwrap();
        assert!(
            raw.len() <= cap,
            "a page of {} bytes (cap {cap})",
            raw.len()
        );
        let page: Value = serde_json::from_slice(&raw).unwrap();
        let seqs: Vec<i64> = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect();
        forward.extend(&seqs);
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
        after = *seqs.last().unwrap();
    }
    (back, forward)
}

#[tokio::test]
async fn history_pages_are_cut_by_bytes_and_paging_returns_every_message_once() {
    const CAP: usize = 64 * 1024;
    let app = spawn_app_with(|c| c.http.history_page_bytes = CAP).await;
    let (alice, bob, room) = app.pair("alice_pages", "bob_pages").await;
    // 4,000 emoji are 16,000 bytes; between them, short right-to-left messages.
    let big = "😀".repeat(4000);
    let mut sent = Vec::new();
    for i in 0..24 {
        let (who, body) = if i % 3 == 2 {
            (&bob, format!("שלום {i} مرحبا"))
        } else {
            (&alice, format!("{i}{big}").chars().take(4000).collect())
        };
        let m = app.send(who, room, &format!("page-{i}"), &body).await;
        sent.push(m["seq"].as_i64().unwrap());
    }
    let (back, forward) = page_through(&app, &alice.token, room, CAP).await;
    assert_eq!(
        back, sent,
        "paging back lost, repeated or reordered messages"
    );
    assert_eq!(
        forward, sent,
        "paging forward lost, repeated or reordered messages"
    );

    // A single message larger than the cap still comes, alone.
    let app = spawn_app_with(|c| c.http.history_page_bytes = 1).await;
    let (alice, _bob, room) = app.pair("alice_tiny", "bob_tiny").await;
    for i in 0..3 {
        app.send(&alice, room, &format!("tiny-{i}"), &big).await;
    }
    let page = app
        .get(&format!("/api/rooms/{room}/messages"), &alice.token)
        .await;
    assert_eq!(page.body["messages"].as_array().unwrap().len(), 1);
    assert_eq!(page.body["messages"][0]["seq"], 3);
    assert_eq!(page.body["has_more"], true);
}

/// 200 connections that send nearly all of a 65,000-byte login body and stall: the server
/// holds at most a body (64 KiB) and its read buffer for each, and closes all of them at the
/// body deadline. See README, "Limits".
#[tokio::test]
async fn two_hundred_stalled_bodies_stay_bounded_and_are_all_closed() {
    const CONNECTIONS: usize = 200;
    /// README's bound per connection stalled in its body, with room for the allocator.
    const BOUND_PER_CONNECTION_KIB: u64 = 256;
    let dir = tempfile::tempdir().unwrap();
    let (url, _pg) = fresh_database(dir.path());
    let server = ChildServer::start(
        None,
        &url,
        &[
            ("LETSCHAT_BODY_TIMEOUT", "3s"),
            // The sign-in rate limits answer before a body is read; this test is about bodies.
            ("LETSCHAT_AUTH_RATE_PER_IP", "100000"),
            ("LETSCHAT_AUTH_RATE_PER_PREFIX", "100000"),
        ],
    )
    .await;
    let port = server.port;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (before, _) = server.memory_kib();

    let head = login_head(65_000);
    let mut body = format!(
        "{{\"username\":\"stalled\",\"password\":\"{}",
        "🔒".repeat(16_000)
    )
    .into_bytes();
    body.truncate(64_999);
    let mut conns = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut s = connect(port).await;
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&body).await.unwrap();
        conns.push(s);
    }
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut s| tokio::spawn(async move { read_until_closed(&mut s).await }))
        .collect();
    let mut timed_out = 0;
    for t in tasks {
        let response = t.await.unwrap();
        if status_of(&response) == 408 {
            timed_out += 1;
        }
    }
    let (after, peak) = server.memory_kib();
    drop(server);
    assert_eq!(timed_out, CONNECTIONS, "every stalled body gets its 408");
    let growth = peak.saturating_sub(before);
    eprintln!(
        "RSS {before} KiB before, peak {peak} KiB (+{growth} KiB for {CONNECTIONS} stalled bodies), {after} KiB after"
    );
    assert!(
        growth <= CONNECTIONS as u64 * BOUND_PER_CONNECTION_KIB,
        "peak RSS grew by {growth} KiB for {CONNECTIONS} stalled bodies (bound {} KiB)",
        CONNECTIONS as u64 * BOUND_PER_CONNECTION_KIB
    );
}
