//! `GET /metrics`: served on its own address (`LETSCHAT_METRICS_BIND`) in the Prometheus text
//! format, with figures that match what the clients did; never on the public address; and
//! nothing listens for it when the variable is unset.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{build_app, fresh_database, ChildServer};

/// Samples by metric name and labels (as written, `le` included).
type Samples = BTreeMap<(String, String), f64>;

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_value(s: &str) -> f64 {
    match s {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s
            .parse()
            .unwrap_or_else(|_| panic!("{s:?} is not a sample value")),
    }
}

/// `name{k="v",...} value`: the name, the labels (checked one by one) and the value.
fn parse_sample(line: &str) -> (String, String, f64) {
    let name_end = line.find(['{', ' ']).expect("a sample has a value");
    let name = &line[..name_end];
    assert!(valid_name(name), "bad metric name in {line:?}");
    let (labels, rest) = match line[name_end..].strip_prefix('{') {
        Some(after) => {
            let close = after.find('}').expect("labels end with }");
            let labels = &after[..close];
            for pair in labels.split(',') {
                let (k, v) = pair.split_once('=').expect("label=value");
                assert!(valid_name(k), "bad label name in {line:?}");
                assert!(
                    v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                    "unquoted label value in {line:?}"
                );
            }
            (labels.to_owned(), &after[close + 1..])
        }
        None => (String::new(), &line[name_end..]),
    };
    let mut fields = rest.split_whitespace();
    let value = parse_value(fields.next().expect("a value"));
    if let Some(ts) = fields.next() {
        ts.parse::<i64>().expect("a timestamp");
    }
    assert!(fields.next().is_none(), "trailing text in {line:?}");
    (name.to_owned(), labels, value)
}

/// The labels of a histogram sample without its `le`, and the `le`.
fn split_le(labels: &str) -> (String, Option<f64>) {
    let mut rest = Vec::new();
    let mut le = None;
    for pair in labels.split(',').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("le=") {
            Some(v) => le = Some(parse_value(v.trim_matches('"'))),
            None => rest.push(pair),
        }
    }
    (rest.join(","), le)
}

/// Parses the text exposition format, checking what Prometheus would reject: names, labels,
/// values, one `TYPE` per family before its samples (no summaries: histograms have buckets),
/// and every histogram's buckets cumulative up to `+Inf` = `_count`, with a `_sum`.
fn parse_exposition(text: &str) -> Samples {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = Samples::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let kind = parts.next().unwrap();
            let name = parts.next().expect("a metric name");
            assert!(valid_name(name), "bad metric name in {line:?}");
            let text = parts.next().unwrap_or("");
            match kind {
                "HELP" => assert!(!text.is_empty(), "empty HELP: {line:?}"),
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram"].contains(&text),
                        "unexpected type: {line:?}"
                    );
                    let first = types.insert(name.to_owned(), text.to_owned());
                    assert!(first.is_none(), "two TYPE lines for {name}");
                }
                _ => panic!("unknown comment {line:?}"),
            }
            continue;
        }
        let (name, labels, value) = parse_sample(line);
        let typed = types.contains_key(&name)
            || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
                name.strip_suffix(suffix)
                    .is_some_and(|family| types.get(family).is_some_and(|t| t == "histogram"))
            });
        assert!(typed, "{name} has no TYPE line before it");
        let fresh = samples.insert((name, labels), value);
        assert!(fresh.is_none(), "duplicate sample {line:?}");
    }
    for (family, _) in types.iter().filter(|(_, t)| *t == "histogram") {
        let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for ((name, labels), value) in &samples {
            if *name == format!("{family}_bucket") {
                let (rest, le) = split_le(labels);
                let le = le.unwrap_or_else(|| panic!("{family} bucket without le"));
                series.entry(rest).or_default().push((le, *value));
            }
        }
        assert!(!series.is_empty(), "{family} has no buckets");
        for (labels, mut buckets) in series {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{family}{{{labels}}}: buckets not cumulative: {buckets:?}"
            );
            let (le, inf) = *buckets.last().unwrap();
            assert_eq!(le, f64::INFINITY, "{family}: no +Inf bucket");
            let count = samples[&(format!("{family}_count"), labels.clone())];
            assert_eq!(inf, count, "{family}: +Inf bucket is not the count");
            assert!(samples.contains_key(&(format!("{family}_sum"), labels)));
        }
    }
    samples
}

fn value(samples: &Samples, name: &str, labels: &str) -> f64 {
    *samples
        .get(&(name.to_owned(), labels.to_owned()))
        .unwrap_or_else(|| panic!("no {name}{{{labels}}} in {samples:#?}"))
}

async fn scrape(addr: SocketAddr) -> Samples {
    let res = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    parse_exposition(&res.text().await.unwrap())
}

#[tokio::test]
async fn metrics_count_what_the_clients_did_on_their_own_address() {
    let (app, server) = build_app(|c| c.metrics_bind = Some("127.0.0.1:0".parse().unwrap())).await;
    let addr = server.metrics_addr().expect("metrics are on");
    assert!(addr.ip().is_loopback() && addr.port() != app.port);
    tokio::spawn(server.run_until_stopped());

    let (a, b, room) = app.pair("alice", "bob").await;
    let mut alice = app.ws(&a.token).await;
    let mut bob = app.ws(&b.token).await;
    const SENT: usize = 5;
    for i in 0..SENT {
        alice.send_msg(room, &format!("m{i}"), "hello").await;
    }
    for _ in 0..SENT {
        assert_eq!(alice.next_of("ack").await["type"], "ack");
        assert_eq!(bob.next_of("message").await["type"], "message");
    }

    let m = scrape(addr).await;
    let sent = SENT as f64;
    assert_eq!(value(&m, "letschat_messages_sent_total", ""), sent);
    assert_eq!(value(&m, "letschat_acks_sent_total", ""), sent);
    assert_eq!(value(&m, "letschat_websocket_connections", ""), 2.0);
    assert_eq!(
        value(&m, "letschat_writer_send_to_commit_seconds_count", ""),
        sent
    );
    // Each message reached two connections: the sender's (as its ack) and bob's.
    assert_eq!(
        value(&m, "letschat_commit_to_delivery_seconds_count", ""),
        2.0 * sent
    );
    let batches = value(&m, "letschat_writer_batch_requests_count", "");
    assert!(batches > 0.0);
    assert_eq!(value(&m, "letschat_writer_commits_total", ""), batches);
    assert_eq!(value(&m, "letschat_writer_batch_requests_sum", ""), sent);
    assert_eq!(
        value(&m, "letschat_writer_commit_seconds_count", ""),
        batches
    );
    assert_eq!(value(&m, "letschat_writer_failed_batches_total", ""), 0.0);
    assert!(value(&m, "letschat_broker_publishes_total", "") >= sent);
    assert!(value(&m, "letschat_broker_deliveries_total", "") >= 2.0 * sent);
    assert_eq!(value(&m, "letschat_broker_dropped_events_total", ""), 0.0);
    // One instance: nothing comes from another, nothing is timed (the buckets are there).
    assert_eq!(value(&m, "letschat_broker_lag_seconds_count", ""), 0.0);
    // Two registrations and a contact, and the two WebSocket upgrades.
    assert!(value(&m, "letschat_http_requests_total", r#"class="2xx""#) >= 3.0);
    assert_eq!(
        value(&m, "letschat_http_requests_total", r#"class="1xx""#),
        2.0
    );
    assert_eq!(
        value(&m, "letschat_http_requests_total", r#"class="5xx""#),
        0.0
    );
    // The message writer holds one connection from its first write on; the tests' pool has 8.
    assert!(value(&m, "letschat_db_pool_connections", r#"state="in_use""#) >= 1.0);
    value(&m, "letschat_db_pool_connections", r#"state="idle""#);
    assert_eq!(value(&m, "letschat_db_pool_max_connections", ""), 8.0);

    // The gauge follows the sockets.
    drop(bob);
    let mut open = 2.0;
    for _ in 0..100 {
        open = value(&scrape(addr).await, "letschat_websocket_connections", "");
        if open == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(open, 1.0);

    // Nothing else is served there, and the public address does not serve the figures.
    let other = reqwest::get(format!("http://{addr}/api/health"))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    let public = app.call(reqwest::Method::GET, "/metrics", None, None).await;
    assert_eq!(public.status, StatusCode::NOT_FOUND);
    assert_eq!(public.code(), "not_found");
}

/// TCP ports `pid` listens on (its sockets' inodes, looked up in /proc/net/tcp and tcp6).
fn listening_ports(pid: u32) -> BTreeSet<u16> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    let mut ports = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for row in text.lines().skip(1) {
            let f: Vec<&str> = row.split_whitespace().collect();
            // local_address is f[1] (HEXIP:HEXPORT), st f[3] (0A = LISTEN), inode f[9].
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                let port = f[1].rsplit(':').next().unwrap();
                ports.insert(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports
}

#[tokio::test]
async fn the_real_server_listens_for_metrics_only_when_told_and_stops_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _pg) = fresh_database(dir.path());

    let off = ChildServer::start(None, &url, &[]).await;
    assert_eq!(listening_ports(off.pid()), BTreeSet::from([off.port]));
    assert!(off.terminate().await.success());

    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{metrics_port}");
    let on = ChildServer::start(None, &url, &[("LETSCHAT_METRICS_BIND", &bind)]).await;
    assert_eq!(
        listening_ports(on.pid()),
        BTreeSet::from([on.port, metrics_port])
    );
    let samples = scrape(bind.parse().unwrap()).await;
    assert_eq!(value(&samples, "letschat_websocket_connections", ""), 0.0);
    assert!(on.terminate().await.success());
    assert!(
        std::net::TcpStream::connect(&bind).is_err(),
        "the metrics endpoint outlived the server"
    );
}
