//! `idle`: opens many authenticated WebSockets (bounded concurrency, spread over several source
//! addresses), holds them, measures the server's memory, then checks every connection still
//! answers a `ping`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::stream::{self, StreamExt};
use futures_util::SinkExt;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::report::{mib, Report};
use crate::server::{loadavg, nofile_limit, read_mem, Server};
use crate::setup::{register_many, Api};
use crate::stats::{Samples, SharedHistogram};
use crate::ws::{self, In, Socket};
use crate::{Common, Result};

/// File descriptors the server needs besides its connections (listener, database files, epoll,
/// eventfds, log), and the benchmark besides its sockets.
const SERVER_FD_RESERVE: u64 = 200;
const BENCH_FD_RESERVE: u64 = 100;
/// Target: server RSS per idle connection.
const TARGET_KIB_PER_CONN: f64 = 24.0;
const TARGET_CONNECTIONS: usize = 100_000;

#[derive(Args, Debug)]
pub struct IdleArgs {
    /// Connections to open and hold.
    #[arg(long, short = 'n', default_value_t = 100_000)]
    pub connections: usize,
    /// Distinct users; connections are spread over them round-robin.
    #[arg(long, default_value_t = 1_000)]
    pub users: usize,
    /// Seconds to hold every connection open before measuring.
    #[arg(long, default_value_t = 5)]
    pub hold: u64,
    /// Seconds one connection may take to open (TCP, upgrade, `ready`).
    #[arg(long, default_value_t = 20)]
    pub connect_timeout: u64,
    /// Stop opening after this many failed connections.
    #[arg(long, default_value_t = 1_000)]
    pub max_failures: usize,
    /// Stop opening after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub open_timeout: u64,
}

#[derive(Default)]
struct Counters {
    /// Connections the server closed (or that broke) while held.
    closed: AtomicU64,
    /// Connections that answered the final ping.
    pongs: AtomicU64,
    /// Set once measuring is over: closes from then on are ours.
    done: AtomicBool,
}

pub async fn run(common: &Common, server: &Server, api: &Api, args: &IdleArgs) -> Result<Report> {
    let mut report = Report::new("idle");
    let users_n = args.users.clamp(1, args.connections.max(1));
    let t = Instant::now();
    let users = register_many(api, "idle", users_n, common.rest_concurrency).await?;
    let setup_secs = t.elapsed().as_secs_f64();
    eprintln!(
        "bench: registered {} users in {setup_secs:.1} s",
        users.len()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.mem()?;
    let bench_before = read_mem(std::process::id())?;

    // Each connection takes a file descriptor on both sides: stay within both processes' limits.
    let server_nofile = server.nofile_limit().unwrap_or(u64::MAX);
    let bench_nofile = nofile_limit(std::process::id()).unwrap_or(u64::MAX);
    let budget = usize::try_from(
        server_nofile
            .saturating_sub(SERVER_FD_RESERVE)
            .min(bench_nofile.saturating_sub(BENCH_FD_RESERVE)),
    )
    .unwrap_or(usize::MAX);
    let wanted = args.connections.min(budget);
    let fd_limited = wanted < args.connections;
    if fd_limited {
        eprintln!(
            "bench: WARNING: the open-file limit (server {server_nofile}, bench {bench_nofile}) allows only \
             {wanted} of the {} connections asked; opening {wanted}. Raising the hard limit needs \
             CAP_SYS_RESOURCE (`ulimit -Hn`).",
            args.connections
        );
    }

    let sources = ws::Sources::new(wanted, common.source_addrs);
    let addr = server.addr();
    let counters = Arc::new(Counters::default());
    let (check_tx, check_rx) = watch::channel(0u32);
    let connect_times = SharedHistogram::new()?;
    let timeout = Duration::from_secs(args.connect_timeout);
    let open_deadline = Instant::now() + Duration::from_secs(args.open_timeout);

    let started = Instant::now();
    let mut opened = 0usize;
    let mut failures = 0usize;
    let mut failure_samples: Vec<String> = Vec::new();
    let mut last_progress = Instant::now();
    let mut samples = Samples::new(connect_times.clone());
    {
        let mut attempts = stream::iter(0..wanted)
            .map(|i| {
                let token = users[i % users.len()].token.clone();
                let source = sources.for_conn(i);
                async move {
                    let t = Instant::now();
                    let r = ws::connect(addr, source, &token, timeout).await;
                    (r, t.elapsed())
                }
            })
            .buffer_unordered(common.connect_concurrency.max(1));
        while let Some((result, took)) = attempts.next().await {
            match result {
                Ok(socket) => {
                    opened += 1;
                    samples.record(took.as_micros() as u64);
                    tokio::spawn(hold(socket, check_rx.clone(), Arc::clone(&counters)));
                }
                Err(e) => {
                    failures += 1;
                    let e = e.to_string();
                    if failure_samples.len() < 5 && !failure_samples.contains(&e) {
                        failure_samples.push(e);
                    }
                    if failures >= args.max_failures {
                        eprintln!(
                            "bench: {failures} connections failed; stopping the opening phase"
                        );
                        break;
                    }
                }
            }
            if last_progress.elapsed() >= Duration::from_secs(5) {
                last_progress = Instant::now();
                let mem = server.mem().unwrap_or_default();
                eprintln!(
                    "bench: {opened} open, {failures} failed, {:.0}/s, server RSS {}",
                    opened as f64 / started.elapsed().as_secs_f64(),
                    mib(mem.rss_kib)
                );
                server.check_alive()?;
            }
            if Instant::now() >= open_deadline {
                eprintln!(
                    "bench: opening took over {} s; stopping it",
                    args.open_timeout
                );
                break;
            }
        }
    }
    samples.flush();
    let open_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "bench: {opened} connections open in {open_secs:.1} s; holding {} s",
        args.hold
    );

    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    server.check_alive()?;
    let after = server.mem()?;
    let bench_after = read_mem(std::process::id())?;
    let closed_while_held = counters.closed.load(Ordering::Relaxed);

    // Every connection still open answers a ping.
    let expected = (opened as u64).saturating_sub(closed_while_held);
    let _ = check_tx.send(1);
    let ping_started = Instant::now();
    while counters.pongs.load(Ordering::Relaxed) + counters.closed.load(Ordering::Relaxed)
        < opened as u64
        && ping_started.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alive = counters.pongs.load(Ordering::Relaxed);
    let ping_secs = ping_started.elapsed().as_secs_f64();
    counters.done.store(true, Ordering::Relaxed);
    let peak = server.mem()?;

    let grown = after.rss_kib.saturating_sub(before.rss_kib);
    let per_conn = if opened > 0 {
        grown as f64 / opened as f64
    } else {
        0.0
    };
    let bench_per_conn = if opened > 0 {
        bench_after.rss_kib.saturating_sub(bench_before.rss_kib) as f64 / opened as f64
    } else {
        0.0
    };
    let lat = connect_times.summary();

    report.row(
        "connections asked",
        args.connections.to_string(),
        "connections_asked",
        args.connections,
    );
    report.row(
        "users / source addresses",
        format!(
            "{} / {} (127.0.0.2–127.0.0.{})",
            users.len(),
            sources.len(),
            1 + sources.len()
        ),
        "users",
        users.len(),
    );
    report.field("source_addrs", sources.len());
    report.row(
        "connections opened",
        opened.to_string(),
        "connections_opened",
        opened,
    );
    report.row(
        "failed to open",
        failures.to_string(),
        "connect_failures",
        failures,
    );
    for s in &failure_samples {
        report.row("  e.g.", s.clone(), "connect_failure_sample", s.clone());
    }
    report.row(
        "open time / rate",
        format!(
            "{open_secs:.1} s / {:.0} connections/s",
            opened as f64 / open_secs.max(1e-9)
        ),
        "open_secs",
        open_secs,
    );
    report.row(
        "connect→ready latency",
        lat.describe(),
        "connect_p99_us",
        lat.p99_us,
    );
    report.row(
        "held and answering ping",
        format!("{alive} (ping round {ping_secs:.1} s)"),
        "connections_held",
        alive,
    );
    report.row(
        "server RSS before / after",
        format!("{} / {}", mib(before.rss_kib), mib(after.rss_kib)),
        "server_rss_after_kib",
        after.rss_kib,
    );
    report.field("server_rss_before_kib", before.rss_kib);
    report.row(
        "server RSS per connection",
        format!("{per_conn:.1} KiB"),
        "server_kib_per_conn",
        per_conn,
    );
    report.row(
        "server peak RSS (VmHWM)",
        mib(peak.hwm_kib),
        "server_hwm_kib",
        peak.hwm_kib,
    );
    report.row(
        "server threads",
        after.threads.to_string(),
        "server_threads",
        after.threads,
    );
    report.row("load average", loadavg(), "loadavg", loadavg());
    report.row(
        "bench RSS per connection",
        format!(
            "{bench_per_conn:.1} KiB (bench RSS {})",
            mib(bench_after.rss_kib)
        ),
        "bench_kib_per_conn",
        bench_per_conn,
    );
    report.check(
        "closed by the server while held",
        closed_while_held,
        "closed_while_held",
    );
    report.check(
        "no pong within 60 s",
        expected.saturating_sub(alive),
        "no_pong",
    );
    if (alive as usize) < wanted {
        report.fail(format!("held {alive} of {wanted} connections"));
    }
    report.target(
        format!("{TARGET_CONNECTIONS} connections held"),
        alive as usize >= TARGET_CONNECTIONS,
    );
    report.target(
        format!("≤ {TARGET_KIB_PER_CONN} KiB server RSS per connection"),
        opened > 0 && per_conn <= TARGET_KIB_PER_CONN,
    );
    Ok(report)
}

/// Holds one connection: reads (so that pings from the server are answered), and on the check
/// signal sends one `ping` frame and counts its `pong`.
async fn hold(mut socket: Socket, mut check: watch::Receiver<u32>, counters: Arc<Counters>) {
    let mut waiting_pong = false;
    loop {
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if waiting_pong && matches!(ws::parse(text.as_str()), Ok(In::Pong)) {
                        waiting_pong = false;
                        counters.pongs.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    if !counters.done.load(Ordering::Relaxed) {
                        counters.closed.fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
                Some(Ok(_)) => {}
            },
            changed = check.changed() => {
                if changed.is_err() {
                    return;
                }
                if socket.send(Message::text(r#"{"type":"ping"}"#)).await.is_err() {
                    if !counters.done.load(Ordering::Relaxed) {
                        counters.closed.fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
                waiting_pong = true;
            }
        }
    }
}
