//! `throughput` and `latency`: pairs of users, each with one WebSocket, in their shared room.
//! Senders put their send time (µs since the run's epoch) at the start of each body, so the
//! receiving connection measures send → `message` latency. Every connection keeps the seqs it got
//! (as acks or as messages); after sending stops and the outstanding acks are in, the run waits a
//! grace period for deliveries and then checks: every message acknowledged to one member was
//! delivered to the other member's connection, once, in increasing seq order, and the room's seqs
//! have no gaps.

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use futures_util::{FutureExt, SinkExt};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;

use crate::report::{mib, Report};
use crate::server::{loadavg, CpuWindow, Server};
use crate::setup::{make_pairs, Api, Pair};
use crate::stats::{Latency, Samples, SeqSet, SharedHistogram};
use crate::uploads::{UploadArgs, UploadLoad};
use crate::ws::{self, In, Socket};
use crate::{cluster, err, Common, Result};

const TARGET_MSGS_PER_SEC: f64 = 50_000.0;
const TARGET_P99_MS: f64 = 10.0;

#[derive(Args, Debug)]
pub struct ThroughputArgs {
    /// Pairs of users (one WebSocket per user).
    #[arg(long, short = 'p', default_value_t = 200)]
    pub pairs: usize,
    /// Outstanding (sent, not yet acknowledged) messages per sending connection.
    #[arg(long, short = 'w', default_value_t = 8)]
    pub window: usize,
    /// Seconds measured (after the warm-up).
    #[arg(long, short = 'd', default_value_t = 10)]
    pub duration: u64,
    #[command(flatten)]
    pub traffic: TrafficArgs,
}

#[derive(Args, Debug)]
pub struct LatencyArgs {
    /// Messages per second, in total over all senders.
    #[arg(long, short = 'r', default_value_t = 4_000.0)]
    pub rate: f64,
    /// Reactions per second added and taken back over REST meanwhile, by 200 other pairs of users
    /// on messages of their own rooms (each one a numbered change through the same writer as the
    /// messages); 0: none.
    #[arg(long, default_value_t = 0.0)]
    pub reaction_rate: f64,
    /// The same storm's REST load without the changes, for comparison: `GET` of one message's
    /// room (`/api/rooms/{id}`) per second, by the same 200 other pairs; 0: none. Not with
    /// `--reaction-rate`.
    #[arg(long, default_value_t = 0.0, conflicts_with = "reaction_rate")]
    pub read_rate: f64,
    #[command(flatten)]
    pub uploads: UploadArgs,
    /// Pairs of users (one WebSocket per user).
    #[arg(long, short = 'p', default_value_t = 2_000)]
    pub pairs: usize,
    /// Seconds measured (after the warm-up).
    #[arg(long, short = 'd', default_value_t = 10)]
    pub duration: u64,
    #[command(flatten)]
    pub traffic: TrafficArgs,
}

#[derive(Args, Debug, Clone)]
pub struct TrafficArgs {
    /// Both users of each pair send (default: only the first; the second receives).
    #[arg(long)]
    pub bidirectional: bool,
    /// Message body length in bytes (the send timestamp, a space, padding).
    #[arg(long, default_value_t = 64)]
    pub body_size: usize,
    /// Seconds of sending before the measured window (not counted).
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// Seconds to wait after sending stops, for outstanding acks and then for deliveries.
    #[arg(long, default_value_t = 10)]
    pub grace: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Phase {
    /// Connected, waiting for the start.
    Ready,
    Run,
    /// Sending has stopped; acks and deliveries still come in.
    Drain,
    Finish,
}

#[derive(Clone, Copy, Debug)]
pub enum Sending {
    None,
    /// Keep this many messages outstanding.
    Window(usize),
    /// Open loop: one message every `period`, the first after `offset`.
    Every {
        period: Duration,
        offset: Duration,
    },
}

struct Shared {
    epoch: Instant,
    /// Sends from this time on (µs since `epoch`) count in the latency figures.
    window_start_us: AtomicU64,
    sent: AtomicU64,
    acked: AtomicU64,
    rejected: AtomicU64,
    delivered: AtomicU64,
    /// Connections that have seen the order to stop sending (every send they made before it is
    /// counted in `sent`).
    stopped_sending: AtomicU64,
    e2e: SharedHistogram,
    ack: SharedHistogram,
    body_pad: String,
    /// Keep (send time, latency) of every measured delivery in the connection's results.
    keep_timeline: bool,
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// What one connection saw.
#[derive(Default)]
pub struct ConnResult {
    room: i64,
    /// Seqs acknowledged to this connection (its own sends).
    acked: SeqSet,
    /// Seqs delivered to it as `message` frames.
    delivered: SeqSet,
    last_delivered: i64,
    duplicated: u64,
    out_of_order: u64,
    wrong_room: u64,
    error_frames: u64,
    error_samples: Vec<String>,
    sent: u64,
    outstanding: u64,
    /// The connection ended before the run did.
    closed_early: bool,
    bad_frames: u64,
    /// Acks that arrived before a lower-seq message of the other member.
    acks_overtaking: u64,
    /// (send time, send→message latency) of each measured delivery, in µs, when the run keeps a
    /// timeline.
    pub timeline: Vec<(u64, u64)>,
}

struct Plan {
    scenario: &'static str,
    pairs: usize,
    duration: Duration,
    traffic: TrafficArgs,
    /// Sending of the first user of pair `i` (and the second's when bidirectional).
    sending: Box<dyn Fn(usize) -> Sending + Send + Sync>,
    describe: String,
    /// Uploads meanwhile, from the start of the warm-up to the end of the measured window.
    uploads: Option<UploadLoad>,
}

pub async fn run_throughput(
    common: &Common,
    server: &Server,
    api: &Api,
    args: &ThroughputArgs,
) -> Result<Report> {
    let window = args.window.max(1);
    let senders = if args.traffic.bidirectional {
        2 * args.pairs
    } else {
        args.pairs
    };
    let plan = Plan {
        scenario: "throughput",
        pairs: args.pairs,
        duration: Duration::from_secs(args.duration.max(1)),
        traffic: args.traffic.clone(),
        sending: Box::new(move |_| Sending::Window(window)),
        describe: format!("{senders} senders × window {window}"),
        uploads: None,
    };
    let (mut report, rate, _) = run(common, server, api, plan).await?;
    report.target(
        format!("≥ {TARGET_MSGS_PER_SEC:.0} persisted+acked+delivered messages/s (200 pairs × 8 in flight)"),
        rate >= TARGET_MSGS_PER_SEC,
    );
    Ok(report)
}

pub async fn run_latency(
    common: &Common,
    server: &Server,
    api: &Api,
    args: &LatencyArgs,
) -> Result<Report> {
    if args.rate.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return Err(err("--rate must be positive"));
    }
    let senders = if args.traffic.bidirectional {
        2 * args.pairs
    } else {
        args.pairs
    };
    let per_sender = args.rate / senders.max(1) as f64;
    let period = Duration::from_secs_f64(1.0 / per_sender);
    let uploads = UploadLoad::prepare(common, api, server, &args.uploads).await?;
    let plan = Plan {
        scenario: "latency",
        pairs: args.pairs,
        duration: Duration::from_secs(args.duration.max(1)),
        traffic: args.traffic.clone(),
        // Spread the senders' phases evenly over one period.
        sending: Box::new(move |k| Sending::Every {
            period,
            offset: period.mul_f64(k as f64 / senders.max(1) as f64),
        }),
        describe: format!(
            "{} msg/s total: {senders} senders × {per_sender:.2} msg/s",
            args.rate
        ),
        uploads,
    };
    let storm = if args.reaction_rate > 0.0 {
        Some(ReactionStorm::start(common, api, args.reaction_rate, true).await?)
    } else if args.read_rate > 0.0 {
        Some(ReactionStorm::start(common, api, args.read_rate, false).await?)
    } else {
        None
    };
    let (mut report, _, p99_ms) = run(common, server, api, plan).await?;
    if let Some(storm) = storm {
        storm.stop(&mut report).await;
    }
    report.target(
        format!("p99 send→receive < {TARGET_P99_MS} ms"),
        p99_ms.is_some_and(|p| p < TARGET_P99_MS),
    );
    Ok(report)
}

/// Reactions added and taken back over REST at a fixed rate by pairs of users who hold no
/// WebSocket, on one message of each of their rooms: a storm of changes through the writer while
/// the measured pairs exchange messages. 200 pairs, so that at 2,000 changes a second each user
/// makes 5 a second, within the server's default per-user limit on changes (10 a second).
/// Without `changes`, the same users make the same number of requests, each a `GET` of their
/// room instead: the storm's HTTP cost without the changes, to compare with.
struct ReactionStorm {
    stop_tx: watch::Sender<bool>,
    task: tokio::task::JoinHandle<(u64, u64, f64)>,
    rate: f64,
    changes: bool,
}

impl ReactionStorm {
    const PAIRS: usize = 200;
    const EMOJI: [&'static str; 4] = [
        "%F0%9F%91%8D",
        "%F0%9F%8E%89",
        "%F0%9F%94%A5",
        "%E2%9D%A4%EF%B8%8F",
    ];
    const IN_FLIGHT: usize = 64;

    async fn start(common: &Common, api: &Api, rate: f64, changes: bool) -> Result<ReactionStorm> {
        let pairs = make_pairs(api, "storm", Self::PAIRS, common.rest_concurrency).await?;
        let mut targets = Vec::with_capacity(pairs.len());
        for (i, p) in pairs.iter().enumerate() {
            let id = api
                .post_message_id(&p.a, p.room, &format!("storm-{i}"), "react to me")
                .await?;
            targets.push((p.clone(), id));
        }
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let api = api.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
            let mut in_flight = futures_util::stream::FuturesUnordered::new();
            // Per (target, user, emoji): whether the reaction is there now.
            let mut present = vec![[[false; 4]; 2]; targets.len()];
            let (mut ok, mut failed, mut k) = (0u64, 0u64, 0usize);
            loop {
                tokio::select! {
                    _ = stop_rx.changed() => break,
                    Some(r) = in_flight.next(), if !in_flight.is_empty() => {
                        match r {
                            Ok(status) if status == reqwest::StatusCode::OK => ok += 1,
                            _ => failed += 1,
                        }
                    }
                    _ = ticker.tick(), if in_flight.len() < Self::IN_FLIGHT => {
                        let t = k % targets.len();
                        let u = (k / targets.len()) % 2;
                        let e = (k / (2 * targets.len())) % Self::EMOJI.len();
                        k += 1;
                        let add = !present[t][u][e];
                        present[t][u][e] = add;
                        let (pair, id) = &targets[t];
                        let user = if u == 0 { pair.a.clone() } else { pair.b.clone() };
                        let (api, room, id) = (api.clone(), pair.room, *id);
                        in_flight.push(async move {
                            if changes {
                                api.react(&user, room, id, Self::EMOJI[e], add).await
                            } else {
                                api.get_status(&format!("/api/rooms/{room}"), &user.token)
                                    .await
                                    .map_err(|e| err(format!("GET room: {e}")))
                            }
                        });
                    }
                }
            }
            while let Some(r) = in_flight.next().await {
                match r {
                    Ok(status) if status == reqwest::StatusCode::OK => ok += 1,
                    _ => failed += 1,
                }
            }
            (ok, failed, started.elapsed().as_secs_f64())
        });
        Ok(ReactionStorm {
            stop_tx,
            task,
            rate,
            changes,
        })
    }

    async fn stop(self, report: &mut Report) {
        let _ = self.stop_tx.send(true);
        let (ok, failed, secs) = self.task.await.unwrap_or((0, 0, 0.0));
        let achieved = ok as f64 / secs.max(1e-9);
        if !self.changes {
            report.row(
                "read storm (GET room/s asked / done)",
                format!(
                    "{:.0} / {achieved:.0} over the whole run ({ok} requests, {failed} failed)",
                    self.rate
                ),
                "reads_per_sec",
                achieved,
            );
            report.check("reads refused or failed", failed, "reads_failed");
            return;
        }
        report.row(
            "reaction storm (changes/s asked / done)",
            format!(
                "{:.0} / {achieved:.0} over the whole run ({ok} changes, {failed} failed)",
                self.rate
            ),
            "reactions_per_sec",
            achieved,
        );
        report.check("reactions refused or failed", failed, "reactions_failed");
    }
}

/// Runs a plan; returns the report, the persisted+acked+delivered rate (msg/s) and the p99
/// send→message latency in ms.
async fn run(
    common: &Common,
    server: &Server,
    api: &Api,
    plan: Plan,
) -> Result<(Report, f64, Option<f64>)> {
    let mut report = Report::new(plan.scenario);
    let t = Instant::now();
    let pairs = make_pairs(api, plan.scenario, plan.pairs, common.rest_concurrency).await?;
    eprintln!(
        "bench: {} users and {} rooms set up in {:.1} s",
        2 * pairs.len(),
        pairs.len(),
        t.elapsed().as_secs_f64()
    );

    // Two connections per pair: 2i is the first user's, 2i+1 the second's.
    let sources = ws::Sources::new(2 * pairs.len(), common.source_addrs);
    let running = Running::start(
        common,
        server,
        &pairs,
        &|i| sources.for_conn(i),
        &plan.traffic,
        &*plan.sending,
        false,
    )
    .await?;
    let shared = Arc::clone(&running.shared);
    running.go();
    if let Some(u) = &plan.uploads {
        u.begin();
    }
    tokio::time::sleep(Duration::from_secs(plan.traffic.warmup)).await;
    let mem_start = server.mem()?;
    let redis_start = cluster::redis_counters(&server.metrics_urls()).await?;
    let cpu = CpuWindow::start(&server.pids());
    let load_start = loadavg();
    let (acked0, delivered0) = (
        shared.acked.load(Ordering::Relaxed),
        shared.delivered.load(Ordering::Relaxed),
    );
    shared
        .window_start_us
        .store(shared.now_us(), Ordering::Relaxed);
    let window_started = Instant::now();
    let perf = server.start_perf(plan.duration.as_secs_f64())?;
    let mut last_print = Instant::now();
    let mut last_acked = acked0;
    // The server's RSS, sampled every 100 ms of the measured window.
    let mut rss_peak_kib = mem_start.rss_kib;
    while window_started.elapsed() < plan.duration {
        tokio::time::sleep(
            Duration::from_millis(100).min(plan.duration.saturating_sub(window_started.elapsed())),
        )
        .await;
        let rss_kib = server.mem().map(|m| m.rss_kib).unwrap_or(0);
        rss_peak_kib = rss_peak_kib.max(rss_kib);
        if last_print.elapsed() >= Duration::from_secs(2) {
            let a = shared.acked.load(Ordering::Relaxed);
            let uploads = plan
                .uploads
                .as_ref()
                .map(|u| format!(", {} uploads stored", u.stored()))
                .unwrap_or_default();
            eprintln!(
                "bench: {:.0} acks/s, server RSS {}{uploads}",
                (a - last_acked) as f64 / last_print.elapsed().as_secs_f64(),
                mib(rss_kib)
            );
            last_acked = a;
            last_print = Instant::now();
            server.check_alive()?;
        }
    }
    let window_ended = Instant::now();
    if let Some(u) = &plan.uploads {
        u.end();
    }
    let window_secs = window_started.elapsed().as_secs_f64();
    let (acked1, delivered1) = (
        shared.acked.load(Ordering::Relaxed),
        shared.delivered.load(Ordering::Relaxed),
    );
    let (server_cores, bench_cores, other_cores) = cpu.cores(&server.pids());
    let redis_end = cluster::redis_counters(&server.metrics_urls()).await?;
    let load_end = loadavg();
    let mem_end = server.mem()?;

    // Stop sending; let the outstanding sends be acknowledged, then the deliveries arrive.
    let (results, settle_secs) = running
        .finish(Duration::from_secs(plan.traffic.grace))
        .await?;
    if let Some(mut p) = perf {
        let status = tokio::task::spawn_blocking(move || p.wait()).await;
        if !matches!(status, Ok(Ok(s)) if s.success()) {
            eprintln!("bench: perf record did not finish cleanly: {status:?}");
        }
    }
    let uploads = match plan.uploads {
        Some(u) => Some(u.finish((window_started, window_ended)).await),
        None => None,
    };
    let peak = server.mem()?;

    let sum = |f: fn(&ConnResult) -> u64| results.iter().map(f).sum::<u64>();
    let total_acked = sum(|r| r.acked.len());
    let total_delivered = sum(|r| r.delivered.len());
    let total_sent = sum(|r| r.sent);
    let acks_overtaking = sum(|r| r.acks_overtaking);

    let acks_per_sec = (acked1 - acked0) as f64 / window_secs;
    let deliveries_per_sec = (delivered1 - delivered0) as f64 / window_secs;
    let e2e = shared.e2e.summary();
    let ack = shared.ack.summary();

    let senders = results.iter().filter(|r| r.sent > 0).count();
    report.row(
        "pairs / connections",
        format!("{} / {}", pairs.len(), results.len()),
        "connections",
        results.len(),
    );
    report.field("pairs", pairs.len());
    let instances = server.addrs().len();
    report.row(
        "server instances",
        if instances > 1 {
            format!("{instances} (each pair's two users on different instances; CPU \"server\" is all of them)")
        } else {
            "1".to_owned()
        },
        "instances",
        instances,
    );
    if !redis_end.is_empty() {
        cluster::redis_rows(&mut report, &redis_start, &redis_end, window_secs);
    }
    report.row(
        "senders",
        format!("{senders} ({})", plan.describe),
        "senders",
        senders,
    );
    report.row(
        "body / warm-up / measured",
        format!(
            "{} B / {} s / {window_secs:.1} s",
            plan.traffic.body_size, plan.traffic.warmup
        ),
        "window_secs",
        window_secs,
    );
    report.row(
        "acks/s (measured window)",
        format!("{acks_per_sec:.0}"),
        "acks_per_sec",
        acks_per_sec,
    );
    report.row(
        "deliveries/s (measured window)",
        format!("{deliveries_per_sec:.0}"),
        "deliveries_per_sec",
        deliveries_per_sec,
    );
    report.row(
        "messages sent / acked / delivered (whole run)",
        format!("{total_sent} / {total_acked} / {total_delivered}"),
        "messages_acked",
        total_acked,
    );
    report.field("messages_sent", total_sent);
    report.field("messages_delivered", total_delivered);
    report.row(
        "send→message latency",
        e2e.describe(),
        "e2e_p99_us",
        e2e.p99_us,
    );
    latency_fields(&mut report, "e2e", &e2e);
    report.row("send→ack latency", ack.describe(), "ack_p99_us", ack.p99_us);
    latency_fields(&mut report, "ack", &ack);
    report.row(
        "CPU: server / bench / others (cores)",
        format!(
            "{server_cores:.2} / {bench_cores:.2} / {other_cores:.2} of {}",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
        "server_cores",
        server_cores,
    );
    report.field("bench_cores", bench_cores);
    report.field("other_cores", other_cores);
    report.row(
        "load average start / end",
        format!("{load_start} / {load_end}"),
        "loadavg_end",
        load_end.clone(),
    );
    report.row(
        "server RSS start / end / peak",
        format!(
            "{} / {} / {}",
            mib(mem_start.rss_kib),
            mib(mem_end.rss_kib),
            mib(peak.hwm_kib)
        ),
        "server_hwm_kib",
        peak.hwm_kib,
    );
    report.row(
        "server RSS peak, measured window (sampled every 100 ms)",
        mib(rss_peak_kib),
        "server_window_peak_rss_kib",
        rss_peak_kib,
    );
    if let Some(u) = &uploads {
        u.rows(&mut report);
    }
    report.row(
        "acks ahead of a lower-seq peer message",
        acks_overtaking.to_string(),
        "acks_overtaking",
        acks_overtaking,
    );
    report.row(
        "drain + delivery wait",
        format!("{settle_secs:.2} s"),
        "settle_secs",
        settle_secs,
    );
    delivery_checks(&mut report, &results);
    let rate = acks_per_sec.min(deliveries_per_sec);
    let p99_ms = (e2e.count > 0).then(|| e2e.p99_us as f64 / 1000.0);
    Ok((report, rate, p99_ms))
}

/// Connections of pairs exchanging messages per their plan, each driven by its own task: the
/// traffic of `throughput` and `latency`, also run in the background of `abuse`.
pub struct Running {
    shared: Arc<Shared>,
    phase_tx: watch::Sender<Phase>,
    tasks: Vec<tokio::task::JoinHandle<ConnResult>>,
}

/// Writes the machine's dirty pages out before anything is measured. On ext4 (ordered data) a
/// commit's fsync also waits for other files' dirty data to reach the disk, so what a build or
/// the set-up wrote shortly before would otherwise stall the server's commits for the first
/// seconds of the run.
async fn flush_dirty_pages() {
    let t = Instant::now();
    // SAFETY: sync(2) takes no arguments and cannot fail.
    let _ = tokio::task::spawn_blocking(|| unsafe { libc::sync() }).await;
    eprintln!(
        "bench: dirty pages written out in {:.1} s",
        t.elapsed().as_secs_f64()
    );
}

impl Running {
    /// Opens two connections per pair (2i is the first user's, from `source(2i)`; 2i+1 the
    /// second's) and starts their tasks, which wait for [`Running::go`]. With `keep_timeline`,
    /// every measured delivery is also kept with its send time, for [`Running::finish`]'s caller
    /// to split into phases.
    pub async fn start(
        common: &Common,
        server: &Server,
        pairs: &[Pair],
        source: &(dyn Fn(usize) -> SocketAddrV4 + Sync),
        traffic: &TrafficArgs,
        plan_sending: &(dyn Fn(usize) -> Sending + Send + Sync),
        keep_timeline: bool,
    ) -> Result<Running> {
        // With N instances, pair p's first user goes to instance p mod N and its second to the
        // next one: the two sit on different instances, and the senders (first users) are
        // spread evenly over all of them.
        let addrs: Vec<SocketAddr> = server.addrs();
        let t = Instant::now();
        let sockets: Vec<Socket> = stream::iter(0..2 * pairs.len())
            .map(|i| {
                let pair = &pairs[i / 2];
                let token = if i % 2 == 0 {
                    pair.a.token.clone()
                } else {
                    pair.b.token.clone()
                };
                let source = source(i);
                let addr = addrs[(i / 2 + i % 2) % addrs.len()];
                async move { ws::connect(addr, source, &token, Duration::from_secs(30)).await }
            })
            .buffered(common.connect_concurrency.max(1))
            .try_collect()
            .await?;
        eprintln!(
            "bench: {} WebSockets open in {:.1} s",
            sockets.len(),
            t.elapsed().as_secs_f64()
        );
        flush_dirty_pages().await;

        let pad_len = traffic.body_size.saturating_sub(21);
        let shared = Arc::new(Shared {
            epoch: Instant::now(),
            window_start_us: AtomicU64::new(u64::MAX),
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            stopped_sending: AtomicU64::new(0),
            e2e: SharedHistogram::new()?,
            ack: SharedHistogram::new()?,
            body_pad: "x".repeat(pad_len),
            keep_timeline,
        });
        let (phase_tx, phase_rx) = watch::channel(Phase::Ready);
        let mut tasks = Vec::with_capacity(sockets.len());
        let mut sender_no = 0usize;
        for (i, socket) in sockets.into_iter().enumerate() {
            let sends = i % 2 == 0 || traffic.bidirectional;
            let sending = if sends {
                sender_no += 1;
                plan_sending(sender_no - 1)
            } else {
                Sending::None
            };
            let room = pairs[i / 2].room;
            tasks.push(tokio::spawn(drive(
                i,
                socket,
                room,
                sending,
                Arc::clone(&shared),
                phase_rx.clone(),
            )));
        }
        // Presence frames settle.
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.check_alive()?;
        Ok(Running {
            shared,
            phase_tx,
            tasks,
        })
    }

    /// Starts sending.
    pub fn go(&self) {
        let _ = self.phase_tx.send(Phase::Run);
    }

    /// From now on, deliveries count in the latency figures. Returns the time (µs since the run's
    /// epoch), the unit of the timeline.
    pub fn start_measuring(&self) -> u64 {
        let now = self.shared.now_us();
        self.shared.window_start_us.store(now, Ordering::Relaxed);
        now
    }

    /// Now, in µs since the run's epoch.
    pub fn now_us(&self) -> u64 {
        self.shared.now_us()
    }

    /// Stops sending, waits up to `grace` for the outstanding acks and then for the deliveries,
    /// and collects every connection's results. Returns them and the seconds this took.
    pub async fn finish(self, grace: Duration) -> Result<(Vec<ConnResult>, f64)> {
        let Running {
            shared,
            phase_tx,
            tasks,
        } = self;
        let _ = phase_tx.send(Phase::Drain);
        let drain_started = Instant::now();
        // First every connection stops sending: a send already due when the order came is still
        // made, and its ack must be waited for too (else the connection could be told to finish
        // before its ack is read, and the send would count as never acknowledged).
        while (shared.stopped_sending.load(Ordering::Relaxed) as usize) < tasks.len()
            && drain_started.elapsed() < grace
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        while shared.sent.load(Ordering::Relaxed)
            > shared.acked.load(Ordering::Relaxed) + shared.rejected.load(Ordering::Relaxed)
            && drain_started.elapsed() < grace
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let delivery_started = Instant::now();
        // One receiving connection per message: the other member's.
        while shared.delivered.load(Ordering::Relaxed) < shared.acked.load(Ordering::Relaxed)
            && delivery_started.elapsed() < grace
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let settle_secs = drain_started.elapsed().as_secs_f64();
        let _ = phase_tx.send(Phase::Finish);
        let mut results = Vec::with_capacity(tasks.len());
        for t in tasks {
            results.push(
                t.await
                    .map_err(|e| err(format!("a connection task failed: {e}")))?,
            );
        }
        Ok((results, settle_secs))
    }
}

/// The delivery checks over every connection's results, as failing rows of `report`: every
/// message acknowledged to one member was delivered to the other member's connection, once, in
/// order; no seq gaps; no error frames or dropped connections.
pub fn delivery_checks(report: &mut Report, results: &[ConnResult]) {
    let mut rooms: HashMap<i64, Vec<&ConnResult>> = HashMap::new();
    for r in results {
        rooms.entry(r.room).or_default().push(r);
    }
    let mut lost = 0u64;
    let mut ack_dups = 0u64;
    let mut gaps = 0u64;
    for conns in rooms.values() {
        for (i, c) in conns.iter().enumerate() {
            for (j, o) in conns.iter().enumerate() {
                if i == j {
                    continue;
                }
                for s in o.acked.iter() {
                    if c.acked.contains(s) {
                        if i < j {
                            ack_dups += 1;
                        }
                    } else if !c.delivered.contains(s) {
                        lost += 1;
                    }
                }
            }
        }
        // Every seq up to the newest one seen is accounted for.
        let newest = conns
            .iter()
            .map(|c| c.acked.max().max(c.delivered.max()))
            .max()
            .unwrap_or(0);
        for s in 1..=newest {
            if !conns
                .iter()
                .any(|c| c.acked.contains(s) || c.delivered.contains(s))
            {
                gaps += 1;
            }
        }
    }
    let sum = |f: fn(&ConnResult) -> u64| results.iter().map(f).sum::<u64>();
    let duplicated = sum(|r| r.duplicated) + ack_dups;
    let out_of_order = sum(|r| r.out_of_order);
    let never_acked = sum(|r| r.outstanding);
    let closed = sum(|r| u64::from(r.closed_early));
    let error_frames = sum(|r| r.error_frames);
    let wrong_room = sum(|r| r.wrong_room);
    let bad_frames = sum(|r| r.bad_frames);
    report.check("lost (acked, never delivered)", lost, "lost");
    report.check("duplicated", duplicated, "duplicated");
    report.check("out of order", out_of_order, "out_of_order");
    report.check("seq gaps", gaps, "seq_gaps");
    report.check("sends never acknowledged", never_acked, "never_acked");
    report.check("error frames", error_frames, "error_frames");
    report.check("connections closed early", closed, "closed_early");
    report.check("frames for another room", wrong_room, "wrong_room");
    report.check("unreadable frames", bad_frames, "bad_frames");
    for s in results.iter().flat_map(|r| r.error_samples.iter()).take(3) {
        report.row("  e.g.", s.clone(), "error_sample", s.clone());
    }
}

fn latency_fields(report: &mut Report, prefix: &str, l: &Latency) {
    report.field(&format!("{prefix}_p50_us"), l.p50_us);
    report.field(&format!("{prefix}_p90_us"), l.p90_us);
    report.field(&format!("{prefix}_p999_us"), l.p999_us);
    report.field(&format!("{prefix}_max_us"), l.max_us);
    report.field(&format!("{prefix}_count"), l.count);
    report.field(&format!("{prefix}_mean_us"), l.mean_us);
}

/// The send time at the start of a body.
fn sent_at(body: &str) -> Option<u64> {
    body.split(' ').next()?.parse().ok()
}

/// One connection: sends per its plan, reads acks and messages, records what it saw.
async fn drive(
    idx: usize,
    mut socket: Socket,
    room: i64,
    sending: Sending,
    shared: Arc<Shared>,
    mut phase: watch::Receiver<Phase>,
) -> ConnResult {
    let mut res = ConnResult {
        room,
        ..ConnResult::default()
    };
    let mut e2e = Samples::new(shared.e2e.clone());
    let mut ack_lat = Samples::new(shared.ack.clone());
    // Counts this connection in `stopped_sending` once, when it sees the order to stop, or when
    // it ends early.
    let mut stopped = StoppedSending {
        shared: Arc::clone(&shared),
        marked: false,
    };
    if phase.wait_for(|p| *p >= Phase::Run).await.is_err() {
        return res;
    }
    let mut ticker = match sending {
        Sending::Every { period, offset } => {
            let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
            t.set_missed_tick_behavior(MissedTickBehavior::Burst);
            Some(t)
        }
        _ => None,
    };
    let mut next_id = 0u64;
    // Sends to make now, and their intended times (µs since the epoch).
    let mut due: Vec<u64> = Vec::new();
    if let Sending::Window(w) = sending {
        let now = shared.now_us();
        due.extend(std::iter::repeat_n(now, w));
    }
    let mut sending_on = !matches!(sending, Sending::None);
    let mut finished = false;
    loop {
        // Send what is due, in one flush.
        if !due.is_empty() {
            for t in due.drain(..) {
                let text = format!(
                    r#"{{"type":"send","room_id":{room},"client_msg_id":"c{idx}-{next_id}","body":"{t} {}"}}"#,
                    shared.body_pad
                );
                next_id += 1;
                if socket.feed(Message::text(text)).await.is_err() {
                    res.closed_early = true;
                    return res;
                }
                res.sent += 1;
                res.outstanding += 1;
                shared.sent.fetch_add(1, Ordering::Relaxed);
            }
            if socket.flush().await.is_err() {
                res.closed_early = true;
                return res;
            }
        }
        if finished {
            break;
        }
        let frame = tokio::select! {
            frame = socket.next() => frame,
            tick = async {
                match ticker.as_mut() {
                    Some(t) => t.tick().await,
                    None => std::future::pending().await,
                }
            }, if sending_on && ticker.is_some() => {
                due.push(tick.into_std().saturating_duration_since(shared.epoch).as_micros() as u64);
                continue;
            }
            changed = phase.changed() => {
                let p = if changed.is_ok() { *phase.borrow_and_update() } else { Phase::Finish };
                if p >= Phase::Drain {
                    sending_on = false;
                    // Nothing is left in `due` here: every send made so far is counted.
                    stopped.mark();
                }
                if p == Phase::Finish {
                    finished = true;
                }
                continue;
            }
        };
        // This frame, and any others already here.
        let mut next = Some(frame);
        while let Some(frame) = next {
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let more = on_text(text.as_str(), &mut res, &shared, &mut e2e, &mut ack_lat);
                    if sending_on && matches!(sending, Sending::Window(_)) {
                        let now = shared.now_us();
                        due.extend(std::iter::repeat_n(now, more));
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    res.closed_early = *phase.borrow() != Phase::Finish;
                    return res;
                }
                Some(Ok(_)) => {}
            }
            next = socket.next().now_or_never();
        }
    }
    res
}

struct StoppedSending {
    shared: Arc<Shared>,
    marked: bool,
}

impl StoppedSending {
    fn mark(&mut self) {
        if !self.marked {
            self.marked = true;
            self.shared.stopped_sending.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for StoppedSending {
    fn drop(&mut self) {
        self.mark();
    }
}

/// Handles one text frame; returns how many sends it finished (acks and refused sends).
fn on_text(
    text: &str,
    res: &mut ConnResult,
    shared: &Shared,
    e2e: &mut Samples,
    ack_lat: &mut Samples,
) -> usize {
    let frame = match ws::parse(text) {
        Ok(f) => f,
        Err(e) => {
            res.bad_frames += 1;
            if res.error_samples.len() < 2 {
                res.error_samples.push(e.to_string());
            }
            return 0;
        }
    };
    let window_start = shared.window_start_us.load(Ordering::Relaxed);
    match frame {
        In::Ack(m) => {
            if m.room_id != res.room {
                res.wrong_room += 1;
            }
            if !res.acked.insert(m.seq) || res.delivered.contains(m.seq) {
                res.duplicated += 1;
            }
            // A lower seq this connection has neither sent nor received yet: the ack overtook
            // the other member's message (allowed; the message must still arrive).
            let from = res.last_delivered.max(m.seq.saturating_sub(64)) + 1;
            if (from..m.seq).any(|s| !res.acked.contains(s) && !res.delivered.contains(s)) {
                res.acks_overtaking += 1;
            }
            res.outstanding = res.outstanding.saturating_sub(1);
            shared.acked.fetch_add(1, Ordering::Relaxed);
            if let Some(t) = sent_at(&m.body) {
                if t >= window_start {
                    ack_lat.record(shared.now_us().saturating_sub(t));
                }
            }
            1
        }
        In::Message(m) => {
            if m.room_id != res.room {
                res.wrong_room += 1;
                return 0;
            }
            if res.delivered.contains(m.seq) || res.acked.contains(m.seq) {
                res.duplicated += 1;
            } else {
                if m.seq <= res.last_delivered {
                    res.out_of_order += 1;
                }
                res.delivered.insert(m.seq);
                res.last_delivered = res.last_delivered.max(m.seq);
            }
            shared.delivered.fetch_add(1, Ordering::Relaxed);
            if let Some(t) = sent_at(&m.body) {
                if t >= window_start {
                    let latency = shared.now_us().saturating_sub(t);
                    e2e.record(latency);
                    if shared.keep_timeline {
                        res.timeline.push((t, latency));
                    }
                }
            }
            0
        }
        In::Error {
            code,
            message,
            client_msg_id,
        } => {
            res.error_frames += 1;
            if res.error_samples.len() < 2 {
                res.error_samples
                    .push(format!("error frame {code}: {message}"));
            }
            if client_msg_id.is_some() {
                res.outstanding = res.outstanding.saturating_sub(1);
                shared.rejected.fetch_add(1, Ordering::Relaxed);
                1
            } else {
                0
            }
        }
        In::Ready | In::Pong | In::Other => 0,
    }
}
