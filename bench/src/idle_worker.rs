//! The client side of `idle`, in worker processes. One process can hold only as many sockets as
//! its open-file limit allows (20,000 on some machines, not raisable), so `idle` spreads its
//! connections over several workers: `letschat-bench idle-worker …`, spawned by the main process
//! with a share of the connections and source addresses of its own. The tokens come in a file.
//! The worker talks to the main process in lines: commands on stdin (`open`, `ping`, `report`,
//! `quit`), JSON events on stdout ([`Event`]).
//!
//! Connection `i` (counted over the whole run) is user `(i / N) % U`'s on instance `i % N`, for
//! N instances and U users: every block of N consecutive connections is one user's, one on each
//! instance, so that every user's connections cover every instance whatever U and N are.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::stream::{self, StreamExt};
use futures_util::SinkExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::stats::{Samples, SharedHistogram};
use crate::ws::{self, In, Socket};
use crate::{err, Result};

/// Commands, one line each on a worker's stdin.
pub const OPEN: &str = "open";
/// Every connection sends a `ping` and counts its `pong`; answered with [`Event::Counts`] once
/// every connection answered or was closed, or after [`PING_WAIT`].
pub const PING: &str = "ping";
/// Answered with [`Event::Counts`] at once.
pub const REPORT: &str = "report";
pub const QUIT: &str = "quit";

/// How long a ping round may take.
pub const PING_WAIT: Duration = Duration::from_secs(60);

/// The user of connection `i` among `users`, with `instances` instances.
pub fn user_of(i: usize, instances: usize, users: usize) -> usize {
    (i / instances.max(1)) % users.max(1)
}

/// The instance of connection `i`.
pub fn instance_of(i: usize, instances: usize) -> usize {
    i % instances.max(1)
}

/// Microseconds on the machine's monotonic clock, the same in every process.
pub fn mono_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes into the struct passed in.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

/// What one worker does: set by the main process.
#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// Tokens, one per line: user `u` is line `u`.
    #[arg(long)]
    pub tokens: PathBuf,
    /// Every instance's address, in order (connection `i` goes to instance `i % N`).
    #[arg(long, value_delimiter = ',', required = true)]
    pub servers: Vec<SocketAddr>,
    /// This worker's connections: `from..to` of the run's.
    #[arg(long)]
    pub from: usize,
    #[arg(long)]
    pub to: usize,
    /// Source addresses 127.0.0.`first_addr` and the next `addrs - 1`: this worker's alone.
    #[arg(long)]
    pub first_addr: u8,
    #[arg(long)]
    pub addrs: usize,
    /// Connections being opened at once.
    #[arg(long)]
    pub concurrency: usize,
    /// Seconds one connection may take to open.
    #[arg(long)]
    pub connect_timeout: u64,
    /// Stop opening after this many failures.
    #[arg(long)]
    pub max_failures: usize,
    /// Stop opening after this many seconds.
    #[arg(long)]
    pub open_timeout: u64,
    /// Users whose connections count their `message` frames one by one.
    #[arg(long, value_delimiter = ',')]
    pub watch: Vec<usize>,
    /// Runtime threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// A worker's events, one JSON object per line on its stdout.
#[derive(Serialize, Deserialize, Debug)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Tokens read; waiting for `open`.
    Ready,
    /// Opening, so far.
    Progress { opened: u64, failed: u64 },
    /// Opening is over.
    Opened(Opened),
    /// The answer to `ping` and `report`.
    Counts(Counts),
}

#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct Opened {
    pub opened: u64,
    pub failed: u64,
    /// A few distinct failure messages.
    pub failure_samples: Vec<String>,
    /// Connections opened, per instance.
    pub per_instance: Vec<u64>,
    /// Connect → `ready` times, µs: (value, count) per histogram bucket.
    pub connect_us: Vec<(u64, u64)>,
    /// When opening ended ([`mono_us`]).
    pub ended_us: u64,
}

#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct Counts {
    /// Connections the server closed (or that broke) since they opened, per instance.
    pub closed: Vec<u64>,
    /// `pong`s received after `ping`, per instance.
    pub pongs: Vec<u64>,
    /// Connections of the watched users (every one opened).
    pub watched: u64,
    /// Of those, the ones that got exactly one `message` frame, and more than one.
    pub watched_once: u64,
    pub watched_more: u64,
    /// When the first and the last of them got their first `message` ([`mono_us`]); 0 if none
    /// did.
    pub first_us: u64,
    pub last_first_us: u64,
    /// `message` frames on the other users' connections (none is expected).
    pub unexpected: u64,
}

/// One watched connection's `message` frames.
#[derive(Default)]
struct Watched {
    messages: AtomicU32,
    first_us: AtomicU64,
}

struct Shared {
    closed: Vec<AtomicU64>,
    pongs: Vec<AtomicU64>,
    unexpected: AtomicU64,
    watched: Mutex<Vec<Arc<Watched>>>,
}

impl Shared {
    fn new(instances: usize) -> Shared {
        Shared {
            closed: (0..instances).map(|_| AtomicU64::new(0)).collect(),
            pongs: (0..instances).map(|_| AtomicU64::new(0)).collect(),
            unexpected: AtomicU64::new(0),
            watched: Mutex::new(Vec::new()),
        }
    }

    fn counts(&self) -> Counts {
        let load = |v: &[AtomicU64]| v.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let mut counts = Counts {
            closed: load(&self.closed),
            pongs: load(&self.pongs),
            unexpected: self.unexpected.load(Ordering::Relaxed),
            ..Counts::default()
        };
        if let Ok(watched) = self.watched.lock() {
            for w in watched.iter() {
                counts.watched += 1;
                match w.messages.load(Ordering::Relaxed) {
                    0 => continue,
                    1 => counts.watched_once += 1,
                    _ => counts.watched_more += 1,
                }
                let first = w.first_us.load(Ordering::Relaxed);
                counts.first_us = match counts.first_us {
                    0 => first,
                    earliest => earliest.min(first),
                };
                counts.last_first_us = counts.last_first_us.max(first);
            }
        }
        counts
    }
}

fn emit(event: &Event) -> Result<()> {
    let line = serde_json::to_string(event).map_err(|e| err(format!("event: {e}")))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| err(format!("stdout: {e}")))
}

/// The `idle-worker` subcommand.
pub fn main(args: &WorkerArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench worker: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(work(args));
    // Thousands of holder tasks are parked: exit without dropping them one by one (the kernel
    // closes the sockets).
    let code = match outcome {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("bench worker {}..{}: {e}", args.from, args.to);
            2
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

async fn work(args: &WorkerArgs) -> Result<()> {
    let tokens: Vec<Arc<str>> = std::fs::read_to_string(&args.tokens)
        .map_err(|e| err(format!("cannot read {}: {e}", args.tokens.display())))?
        .lines()
        .filter(|l| !l.is_empty())
        .map(Arc::from)
        .collect();
    if tokens.is_empty() {
        return Err(err("no tokens"));
    }
    let n = args.servers.len();
    let shared = Arc::new(Shared::new(n));
    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    emit(&Event::Ready)?;
    match commands.next_line().await {
        Ok(Some(c)) if c == OPEN => {}
        Ok(None) => return Ok(()),
        other => return Err(err(format!("expected {OPEN}, got {other:?}"))),
    }

    let (check_tx, check_rx) = watch::channel(0u32);
    let opened = open(args, &tokens, &shared, &check_rx).await?;
    let total = opened.opened;
    emit(&Event::Opened(opened))?;

    loop {
        let command = match commands.next_line().await {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(()),
            Err(e) => return Err(err(format!("stdin: {e}"))),
        };
        match command.as_str() {
            PING => {
                let _ = check_tx.send(1);
                let started = Instant::now();
                loop {
                    let c = shared.counts();
                    let answered: u64 = c.pongs.iter().chain(&c.closed).sum();
                    if answered >= total || started.elapsed() >= PING_WAIT {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                emit(&Event::Counts(shared.counts()))?;
            }
            REPORT => emit(&Event::Counts(shared.counts()))?,
            QUIT => return Ok(()),
            other => return Err(err(format!("unknown command {other:?}"))),
        }
    }
}

/// Opens this worker's connections, a bounded number at once, and leaves a holder task on each.
async fn open(
    args: &WorkerArgs,
    tokens: &[Arc<str>],
    shared: &Arc<Shared>,
    check: &watch::Receiver<u32>,
) -> Result<Opened> {
    let n = args.servers.len();
    let sources = ws::Sources::starting_at(args.first_addr, args.addrs);
    let timeout = Duration::from_secs(args.connect_timeout);
    let deadline = Instant::now() + Duration::from_secs(args.open_timeout);
    let connect_times = SharedHistogram::new()?;
    let mut samples = Samples::new(connect_times.clone());
    let mut result = Opened {
        per_instance: vec![0; n],
        ..Opened::default()
    };
    let mut last_progress = Instant::now();
    let mut attempts = stream::iter(args.from..args.to)
        .map(|i| {
            let token = Arc::clone(&tokens[user_of(i, n, tokens.len())]);
            let instance = instance_of(i, n);
            let server = args.servers[instance];
            let source = sources.for_conn(i - args.from);
            async move {
                let t = Instant::now();
                let r = ws::connect(server, source, &token, timeout).await;
                (i, r, t.elapsed())
            }
        })
        .buffer_unordered(args.concurrency.max(1));
    while let Some((i, r, took)) = attempts.next().await {
        match r {
            Ok(socket) => {
                let instance = instance_of(i, n);
                result.opened += 1;
                result.per_instance[instance] += 1;
                samples.record(took.as_micros() as u64);
                let watched = args.watch.contains(&user_of(i, n, tokens.len())).then(|| {
                    let w = Arc::new(Watched::default());
                    if let Ok(mut all) = shared.watched.lock() {
                        all.push(Arc::clone(&w));
                    }
                    w
                });
                tokio::spawn(hold(
                    socket,
                    instance,
                    watched,
                    check.clone(),
                    Arc::clone(shared),
                ));
            }
            Err(e) => {
                result.failed += 1;
                let e = e.to_string();
                if result.failure_samples.len() < 5 && !result.failure_samples.contains(&e) {
                    result.failure_samples.push(e);
                }
                if result.failed >= args.max_failures as u64 {
                    break;
                }
            }
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            emit(&Event::Progress {
                opened: result.opened,
                failed: result.failed,
            })?;
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    samples.flush();
    result.connect_us = connect_times.counts();
    result.ended_us = mono_us();
    Ok(result)
}

/// Holds one connection: reads (so that the server's pings are answered), counts `message`
/// frames, and on the check signal sends one `ping` frame and counts its `pong`.
async fn hold(
    mut socket: Socket,
    instance: usize,
    watched: Option<Arc<Watched>>,
    mut check: watch::Receiver<u32>,
    shared: Arc<Shared>,
) {
    let mut waiting_pong = false;
    loop {
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => match ws::parse(text.as_str()) {
                    Ok(In::Pong) if waiting_pong => {
                        waiting_pong = false;
                        shared.pongs[instance].fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(In::Message(_)) => match &watched {
                        Some(w) => {
                            let now = mono_us();
                            if w.messages.fetch_add(1, Ordering::Relaxed) == 0 {
                                w.first_us.store(now, Ordering::Relaxed);
                            }
                        }
                        None => {
                            shared.unexpected.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    shared.closed[instance].fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Some(Ok(_)) => {}
            },
            changed = check.changed() => {
                if changed.is_err() {
                    return;
                }
                if socket.send(Message::text(r#"{"type":"ping"}"#)).await.is_err() {
                    shared.closed[instance].fetch_add(1, Ordering::Relaxed);
                    return;
                }
                waiting_pong = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_user_covers_every_instance() {
        // 6 instances, 1,000 users: i % U would put user 0 on instances 0, 2 and 4 only.
        let (n, users) = (6, 1_000);
        let mut seen = vec![false; n];
        for i in (0..100_000).filter(|&i| user_of(i, n, users) == 0) {
            seen[instance_of(i, n)] = true;
        }
        assert!(seen.iter().all(|&s| s));
        // One instance: as before, connection i is user i % U's.
        assert_eq!(user_of(1_234, 1, users), 234);
    }

    #[test]
    fn events_round_trip() {
        let line = serde_json::to_string(&Event::Progress {
            opened: 3,
            failed: 1,
        })
        .unwrap();
        assert_eq!(line, r#"{"event":"progress","opened":3,"failed":1}"#);
        let back: Event = serde_json::from_str(&line).unwrap();
        assert!(matches!(
            back,
            Event::Progress {
                opened: 3,
                failed: 1
            }
        ));
        let counts = Event::Counts(Counts {
            closed: vec![0, 1],
            ..Counts::default()
        });
        let back: Event = serde_json::from_str(&serde_json::to_string(&counts).unwrap()).unwrap();
        assert!(matches!(back, Event::Counts(c) if c.closed == vec![0, 1]));
    }
}
