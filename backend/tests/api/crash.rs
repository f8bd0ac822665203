//! The real binary as a child process: killed with SIGKILL under steady load and restarted on
//! the same database, and stopped with SIGTERM (WebSockets close with 1001).

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{fresh_database, TestApp};

/// A `letschat` process on a fixed port and database.
struct Server {
    child: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(url: &str, port: u16) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_letschat"))
        .env("LETSCHAT_BIND", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", url)
        .env(
            "LETSCHAT_JWT_SECRET",
            "crash-test-secret-crash-test-secret!",
        )
        .env("LETSCHAT_BCRYPT_COST", "4")
        .env("LETSCHAT_AUTH_RATE_PER_IP", "100000")
        .env("LETSCHAT_STATIC_DIR", "/nonexistent")
        .env("LETSCHAT_WORKERS", "2")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/api/health"))
            .send()
            .await
        {
            if r.status() == 200 {
                return Server { child };
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not come up");
}

impl Server {
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that behaves as the SPA does: it resends unacknowledged messages with the same
/// client_msg_id after every reconnect and syncs its room from the last seq it has.
struct Client {
    name: String,
    token: String,
    room: i64,
    /// client_msg_id → body, sent but not acknowledged.
    pending: BTreeMap<String, String>,
    /// client_msg_id → seq, acknowledged.
    acked: HashMap<String, i64>,
    /// seq → (client_msg_id, body), everything this client has seen in its room.
    history: BTreeMap<i64, (String, String)>,
    sent: usize,
}

struct Phase {
    stop_sending: AtomicBool,
    drained: AtomicUsize,
    final_sync: AtomicBool,
}

impl Client {
    fn record(&mut self, m: &Value) {
        let seq = m["seq"].as_i64().unwrap();
        let entry = (
            m["client_msg_id"].as_str().unwrap().to_owned(),
            m["body"].as_str().unwrap().to_owned(),
        );
        if let Some(old) = self.history.insert(seq, entry.clone()) {
            assert_eq!(old, entry, "{}: seq {seq} changed", self.name);
        }
    }

    /// The newest seq up to which this client has every message: what it syncs after (a client
    /// that synced after its newest seq would never fill a hole below it, e.g. a peer's message
    /// the server committed with this client's own but had no time to deliver before it died,
    /// when the resend's ack arrives first).
    fn contiguous(&self) -> i64 {
        let mut seq = 0;
        while self.history.contains_key(&(seq + 1)) {
            seq += 1;
        }
        seq
    }

    async fn run(mut self, port: u16, phase: Arc<Phase>) -> Client {
        let mut drained_reported = false;
        loop {
            let mut req = format!("ws://127.0.0.1:{port}/api/ws")
                .into_client_request()
                .unwrap();
            req.headers_mut().insert(
                "Authorization",
                format!("Bearer {}", self.token).parse().unwrap(),
            );
            let Ok((ws, _)) = tokio_tungstenite::connect_async(req).await else {
                tokio::time::sleep(Duration::from_millis(30)).await;
                continue;
            };
            let (mut tx, mut rx) = ws.split();
            let mut ready = false;
            let mut synced_after_final = false;
            let mut asked_final = false;
            // Syncs are answered in order: the final one is done at its own `synced`, not at the
            // answer to a sync asked before it on this connection.
            let (mut syncs_asked, mut syncs_answered, mut final_sync) = (0usize, 0usize, None);
            'conn: loop {
                if ready {
                    let sending = !phase.stop_sending.load(Ordering::SeqCst);
                    while sending && self.pending.len() < 4 {
                        self.sent += 1;
                        let cmid = format!("{}-{}", self.name, self.sent);
                        let body = format!("{} says {}", self.name, self.sent);
                        let f = json!({"type":"send","room_id":self.room,"client_msg_id":cmid,"body":body});
                        self.pending.insert(cmid, body);
                        if tx.send(Message::text(f.to_string())).await.is_err() {
                            break 'conn;
                        }
                    }
                    if !sending && self.pending.is_empty() && !drained_reported {
                        drained_reported = true;
                        phase.drained.fetch_add(1, Ordering::SeqCst);
                    }
                    if phase.final_sync.load(Ordering::SeqCst) && !asked_final {
                        asked_final = true;
                        syncs_asked += 1;
                        final_sync = Some(syncs_asked);
                        let after = self.contiguous();
                        let f = json!({"type":"sync","room_id":self.room,"after":after});
                        if tx.send(Message::text(f.to_string())).await.is_err() {
                            break 'conn;
                        }
                    }
                    if synced_after_final {
                        return self;
                    }
                }
                let frame = match tokio::time::timeout(Duration::from_millis(100), rx.next()).await
                {
                    Err(_) => continue,
                    Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str::<Value>(&t).unwrap(),
                    Ok(Some(Ok(_))) => continue,
                    Ok(_) => break 'conn,
                };
                match frame["type"].as_str().unwrap() {
                    "ready" => {
                        ready = true;
                        syncs_asked += 1;
                        let after = self.contiguous();
                        let mut frames =
                            vec![json!({"type":"sync","room_id":self.room,"after":after})];
                        for (cmid, body) in &self.pending {
                            frames.push(json!({"type":"send","room_id":self.room,"client_msg_id":cmid,"body":body}));
                        }
                        for f in frames {
                            if tx.send(Message::text(f.to_string())).await.is_err() {
                                break 'conn;
                            }
                        }
                    }
                    "ack" => {
                        let cmid = frame["client_msg_id"].as_str().unwrap().to_owned();
                        let seq = frame["message"]["seq"].as_i64().unwrap();
                        assert_eq!(frame["message"]["client_msg_id"], cmid.as_str());
                        self.pending.remove(&cmid);
                        if let Some(old) = self.acked.insert(cmid.clone(), seq) {
                            assert_eq!(old, seq, "{cmid} acked with two seqs");
                        }
                        self.record(&frame["message"]);
                    }
                    "message" => self.record(&frame["message"]),
                    "synced" => {
                        syncs_answered += 1;
                        if final_sync.is_some_and(|f| syncs_answered >= f) {
                            synced_after_final = true;
                        }
                    }
                    // A send the server could not commit (it is going down): resent after reconnect.
                    "error" => {}
                    _ => {}
                }
            }
            // Disconnected: the final sync must be asked again on the next connection.
            let _ = asked_final;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_messages_survive_sigkill_exactly_once_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _pg) = fresh_database(dir.path());
    let port = free_port();
    let mut server = start(&url, port).await;
    let app = TestApp::for_address(port);

    let mut clients = Vec::new();
    let mut rooms = Vec::new();
    for p in 0..4 {
        let (a, b, room) = app.pair(&format!("ua{p}"), &format!("ub{p}")).await;
        rooms.push((room, a.token.clone()));
        for u in [a, b] {
            clients.push(Client {
                name: u.username.clone(),
                token: u.token.clone(),
                room,
                pending: BTreeMap::new(),
                acked: HashMap::new(),
                history: BTreeMap::new(),
                sent: 0,
            });
        }
    }
    let n = clients.len();
    let phase = Arc::new(Phase {
        stop_sending: AtomicBool::new(false),
        drained: AtomicUsize::new(0),
        final_sync: AtomicBool::new(false),
    });
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| tokio::spawn(c.run(port, Arc::clone(&phase))))
        .collect();

    for round in 0..4u64 {
        tokio::time::sleep(Duration::from_millis(500 + 150 * round)).await;
        server.kill();
        server = start(&url, port).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    phase.stop_sending.store(true, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while phase.drained.load(Ordering::SeqCst) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "clients did not get every message acked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    phase.final_sync.store(true, Ordering::SeqCst);
    let mut done = Vec::new();
    for t in tasks {
        done.push(
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("client finished")
                .unwrap(),
        );
    }

    let mut total = 0;
    for (room, token) in &rooms {
        let history = app.full_history(token, *room).await;
        // Gap-free seqs from 1.
        for (i, m) in history.iter().enumerate() {
            assert_eq!(m["seq"].as_i64().unwrap(), i as i64 + 1, "room {room}");
        }
        // Each (sender, client_msg_id) once.
        let mut seen = std::collections::HashSet::new();
        for m in &history {
            let key = (
                m["sender_id"].as_i64().unwrap(),
                m["client_msg_id"].as_str().unwrap().to_owned(),
            );
            assert!(seen.insert(key), "duplicate in room {room}: {m}");
        }
        let server_view: BTreeMap<i64, (String, String)> = history
            .iter()
            .map(|m| {
                (
                    m["seq"].as_i64().unwrap(),
                    (
                        m["client_msg_id"].as_str().unwrap().to_owned(),
                        m["body"].as_str().unwrap().to_owned(),
                    ),
                )
            })
            .collect();
        for c in done.iter().filter(|c| c.room == *room) {
            // Every acked message is stored, at the seq it was acked with.
            for (cmid, seq) in &c.acked {
                assert_eq!(
                    server_view.get(seq).map(|e| e.0.as_str()),
                    Some(cmid.as_str()),
                    "{}: acked {cmid}",
                    c.name
                );
            }
            assert!(c.pending.is_empty());
            // Both members end with the server's history.
            let missing: Vec<_> = server_view
                .keys()
                .filter(|k| !c.history.contains_key(k))
                .collect();
            let extra: Vec<_> = c
                .history
                .keys()
                .filter(|k| !server_view.contains_key(k))
                .collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{}: missing seqs {missing:?}, unknown seqs {extra:?}",
                c.name
            );
            assert!(
                c.history == server_view,
                "{}: a message differs from the server's",
                c.name
            );
            total += c.acked.len();
        }
    }
    assert!(total > 0);
    eprintln!(
        "crash test: {total} acknowledged messages over 4 SIGKILLs, all stored once and in order"
    );
    server.kill();
}

#[tokio::test]
async fn sigterm_closes_websockets_with_1001() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _pg) = fresh_database(dir.path());
    let port = free_port();
    let server = start(&url, port).await;
    let app = TestApp::for_address(port);
    let a = app.register("alice").await;
    let mut ws = app.ws(&a.token).await;
    let pid = server.child.id();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        ws.closed(Duration::from_secs(10)).await,
        crate::ws_support::Closed::Code(1001)
    );
    let mut server = server;
    let exit = tokio::task::spawn_blocking(move || {
        let s = server.child.wait().unwrap();
        std::mem::forget(server);
        s
    })
    .await
    .unwrap();
    assert!(exit.success(), "exit status {exit:?}");
}
