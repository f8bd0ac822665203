//! `idle`: opens many authenticated WebSockets (bounded concurrency, spread over several source
//! addresses and, with `--instances`, over several server instances), holds them, measures each
//! instance's memory and the machine's CPU meanwhile, then checks that every connection still
//! answers a `ping` and that one message reaches every connection of its two users exactly once,
//! whatever instance each is on.
//!
//! The connections are held by worker processes (`idle_worker`), each with at most
//! [`WORKER_MAX_CONNECTIONS`] and source addresses of its own: one process cannot hold more
//! sockets than its open-file limit.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::idle_worker::{self, mono_us, Counts, Event, Opened};
use crate::report::{mib, Report};
use crate::server::{loadavg, nofile_limit, read_mem, CpuWindow, Mem, Server};
use crate::setup::{register_many, Api};
use crate::stats::SharedHistogram;
use crate::ws;
use crate::{err, Common, Result};

/// File descriptors a server instance needs besides its connections (listener, database files
/// or connections, Redis, epoll, eventfds, log), and a bench process besides its sockets.
const SERVER_FD_RESERVE: u64 = 200;
const BENCH_FD_RESERVE: u64 = 100;
/// Connections one worker process holds at most (below the open-file limit of 20,000 that
/// some machines cannot raise).
const WORKER_MAX_CONNECTIONS: usize = 19_000;
/// Target: server RSS per idle connection, on every instance.
const TARGET_KIB_PER_CONN: f64 = 24.0;
/// Target: connections held, over all instances.
const TARGET_CONNECTIONS: usize = 100_000;
/// How long the final message may take to reach every connection of its two users, and how
/// long after that a second copy would still be counted.
const MESSAGE_WAIT: Duration = Duration::from_secs(10);
const DUPLICATE_WAIT: Duration = Duration::from_secs(1);

#[derive(Args, Debug)]
pub struct IdleArgs {
    /// Connections to open and hold (connection i on instance i mod N with `--instances N`).
    #[arg(long, short = 'n', default_value_t = 100_000)]
    pub connections: usize,
    /// Distinct users (at least 2); every user's connections are spread over every instance.
    #[arg(long, default_value_t = 1_000)]
    pub users: usize,
    /// Seconds to hold every connection open before measuring; the machine's CPU is measured
    /// over this hold. Default 5, or 60 with several instances, which covers one period of
    /// their position check (45 s: two database queries per connection).
    #[arg(long)]
    pub hold: Option<u64>,
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

/// One server instance's figures.
struct Instance {
    addr: SocketAddr,
    pid: u32,
    opened: u64,
    held: u64,
    before: Mem,
    after: Mem,
    peak: Mem,
}

impl Instance {
    fn kib_per_conn(&self) -> f64 {
        if self.opened == 0 {
            return 0.0;
        }
        self.after.rss_kib.saturating_sub(self.before.rss_kib) as f64 / self.opened as f64
    }
}

pub async fn run(common: &Common, server: &Server, api: &Api, args: &IdleArgs) -> Result<Report> {
    let mut report = Report::new("idle");
    let addrs = server.addrs();
    let pids = server.pids();
    let n = addrs.len();
    let hold = args.hold.unwrap_or(if n > 1 { 60 } else { 5 });
    let users_n = args.users.clamp(2, args.connections.max(2));
    let t = Instant::now();
    let users = register_many(api, "idle", users_n, common.rest_concurrency).await?;
    // The final message goes from the first user to the second: contacts, with a room.
    let room = api.add_contact(&users[0], &users[1]).await?;
    let setup_secs = t.elapsed().as_secs_f64();
    eprintln!(
        "bench: registered {} users in {setup_secs:.1} s",
        users.len()
    );

    // Each connection takes a file descriptor on both sides: stay within every instance's limit
    // (round-robin gives each the same share), and give every worker at most its own limit.
    let server_nofile = pids
        .iter()
        .map(|p| nofile_limit(*p).unwrap_or(u64::MAX))
        .min()
        .unwrap_or(u64::MAX);
    let per_instance =
        usize::try_from(server_nofile.saturating_sub(SERVER_FD_RESERVE)).unwrap_or(usize::MAX);
    let wanted = args.connections.min(per_instance.saturating_mul(n));
    let fd_limited = wanted < args.connections;
    if fd_limited {
        eprintln!(
            "bench: WARNING: the open-file limit of the server ({server_nofile} per instance) allows \
             only {wanted} of the {} connections asked on {n} instance(s); opening {wanted}. Raising \
             the hard limit needs CAP_SYS_RESOURCE (`ulimit -Hn`); more `--instances` hold more.",
            args.connections
        );
    }
    let bench_nofile = nofile_limit(std::process::id()).unwrap_or(u64::MAX);
    let per_worker = usize::try_from(bench_nofile.saturating_sub(BENCH_FD_RESERVE))
        .unwrap_or(usize::MAX)
        .clamp(1, WORKER_MAX_CONNECTIONS);
    let workers_n = wanted.div_ceil(per_worker).max(1);
    let addrs_per_worker = ws::Sources::needed(wanted.div_ceil(workers_n), common.source_addrs);
    let source_addrs = workers_n * addrs_per_worker;
    if 1 + source_addrs > 254 {
        return Err(err(format!(
            "{workers_n} workers × {addrs_per_worker} source addresses do not fit in 127.0.0.2–127.0.0.254"
        )));
    }

    let tokens = server.dir().join("idle-tokens.txt");
    let lines: String = users.iter().map(|u| format!("{}\n", u.token)).collect();
    std::fs::write(&tokens, lines)
        .map_err(|e| err(format!("cannot write {}: {e}", tokens.display())))?;
    let threads = std::thread::available_parallelism()
        .map_or(1, |p| p.get() / workers_n)
        .max(1);
    let plans: Vec<Vec<OsString>> = (0..workers_n)
        .map(|w| {
            let first = 2 + w * addrs_per_worker;
            let mut a: Vec<OsString> = vec!["--tokens".into(), tokens.clone().into()];
            let instances: Vec<String> = addrs.iter().map(ToString::to_string).collect();
            for (k, v) in [
                ("--servers", instances.join(",")),
                ("--from", (w * wanted / workers_n).to_string()),
                ("--to", ((w + 1) * wanted / workers_n).to_string()),
                ("--first-addr", first.to_string()),
                ("--addrs", addrs_per_worker.to_string()),
                (
                    "--concurrency",
                    common.connect_concurrency.div_ceil(workers_n).to_string(),
                ),
                ("--connect-timeout", args.connect_timeout.to_string()),
                (
                    "--max-failures",
                    args.max_failures.div_ceil(workers_n).max(1).to_string(),
                ),
                ("--open-timeout", args.open_timeout.to_string()),
                ("--watch", "0,1".to_owned()),
                ("--threads", threads.to_string()),
            ] {
                a.push(k.into());
                a.push(v.into());
            }
            a
        })
        .collect();
    let mut workers = Workers::spawn(plans)?;
    eprintln!(
        "bench: {workers_n} worker process(es) (pids {:?}), {} connections each at most",
        workers.pids,
        wanted.div_ceil(workers_n)
    );
    for _ in 0..workers_n {
        match workers.next(Duration::from_secs(30)).await? {
            Some((_, Event::Ready)) => {}
            other => return Err(err(format!("bench worker: expected ready, got {other:?}"))),
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mems = |pids: &[u32]| {
        pids.iter()
            .map(|p| read_mem(*p))
            .collect::<Result<Vec<_>>>()
    };
    let before = mems(&pids)?;
    let bench_before = mems(&workers.pids)?;

    // Opening.
    let started = Instant::now();
    let started_us = mono_us();
    workers.send_all(idle_worker::OPEN).await?;
    let open_deadline =
        started + Duration::from_secs(args.open_timeout + args.connect_timeout + 60);
    let mut progress = vec![(0u64, 0u64); workers_n];
    let mut done: Vec<Option<Opened>> = vec![None; workers_n];
    let mut last_print = Instant::now();
    while done.iter().any(Option::is_none) {
        match workers.next(Duration::from_millis(500)).await? {
            Some((w, Event::Progress { opened, failed })) => progress[w] = (opened, failed),
            Some((w, Event::Opened(o))) => {
                progress[w] = (o.opened, o.failed);
                done[w] = Some(o);
            }
            Some((w, other)) => {
                return Err(err(format!("bench worker {}: unexpected {other:?}", w + 1)))
            }
            None => {}
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            last_print = Instant::now();
            let opened: u64 = progress.iter().map(|p| p.0).sum();
            let failed: u64 = progress.iter().map(|p| p.1).sum();
            let rss: u64 = pids
                .iter()
                .map(|p| read_mem(*p).map_or(0, |m| m.rss_kib))
                .sum();
            eprintln!(
                "bench: {opened} open, {failed} failed, {:.0}/s, server RSS {}",
                opened as f64 / started.elapsed().as_secs_f64(),
                mib(rss)
            );
            server.check_alive()?;
        }
        if Instant::now() >= open_deadline {
            return Err(err("the bench workers did not finish opening in time"));
        }
    }
    let opened_by: Vec<Opened> = done.into_iter().flatten().collect();
    let opened: u64 = opened_by.iter().map(|o| o.opened).sum();
    let failures: u64 = opened_by.iter().map(|o| o.failed).sum();
    let mut failure_samples: Vec<String> = Vec::new();
    for s in opened_by.iter().flat_map(|o| &o.failure_samples) {
        if failure_samples.len() < 5 && !failure_samples.contains(s) {
            failure_samples.push(s.clone());
        }
    }
    let opened_on: Vec<u64> = (0..n)
        .map(|i| {
            opened_by
                .iter()
                .map(|o| o.per_instance.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let connect_times = SharedHistogram::new()?;
    for o in &opened_by {
        connect_times.record_counts(&o.connect_us);
    }
    let ended_us = opened_by
        .iter()
        .map(|o| o.ended_us)
        .max()
        .unwrap_or(started_us);
    let open_secs = ended_us.saturating_sub(started_us) as f64 / 1e6;
    eprintln!("bench: {opened} connections open in {open_secs:.1} s; holding {hold} s");

    // Holding: the machine's CPU meanwhile.
    let mut bench_pids = workers.pids.clone();
    bench_pids.push(std::process::id());
    let cpu = CpuWindow::start_with(&pids, &bench_pids);
    let hold_started = Instant::now();
    while hold_started.elapsed() < Duration::from_secs(hold) {
        let left = Duration::from_secs(hold).saturating_sub(hold_started.elapsed());
        if let Some((w, e)) = workers.next(left.min(Duration::from_secs(5))).await? {
            return Err(err(format!("bench worker {}: unexpected {e:?}", w + 1)));
        }
        server.check_alive()?;
    }
    let (server_cores, bench_cores, other_cores) = cpu.cores_with(&pids, &bench_pids);
    let load = loadavg();
    let after = mems(&pids)?;
    let bench_after = mems(&workers.pids)?;
    let held = sum_counts(
        &workers
            .counts(idle_worker::REPORT, Duration::from_secs(10))
            .await?,
    );
    let closed_while_held: u64 = held.closed.iter().sum();

    // Every connection still open answers a ping.
    let ping_started = Instant::now();
    let pinged = sum_counts(
        &workers
            .counts(
                idle_worker::PING,
                idle_worker::PING_WAIT + Duration::from_secs(10),
            )
            .await?,
    );
    let ping_secs = ping_started.elapsed().as_secs_f64();
    let alive: u64 = pinged.pongs.iter().sum();
    let peak = mems(&pids)?;

    // One message from the first user to the second, through the first instance: every
    // connection of both, on every instance, gets it once.
    let sent_us = mono_us();
    api.post_message(&users[0], room, "idle-final-message", "across instances")
        .await?;
    let post_ms = mono_us().saturating_sub(sent_us) as f64 / 1e3;
    let wait_started = Instant::now();
    let mut message = sum_counts(&workers.counts(idle_worker::REPORT, MESSAGE_WAIT).await?);
    while message.watched_once + message.watched_more < message.watched
        && wait_started.elapsed() < MESSAGE_WAIT
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        message = sum_counts(&workers.counts(idle_worker::REPORT, MESSAGE_WAIT).await?);
    }
    tokio::time::sleep(DUPLICATE_WAIT).await;
    message = sum_counts(&workers.counts(idle_worker::REPORT, MESSAGE_WAIT).await?);
    let since_sent = |us: u64| (us > 0).then(|| us.saturating_sub(sent_us) as f64 / 1e3);
    let (first_ms, message_ms) = (
        since_sent(message.first_us),
        since_sent(message.last_first_us),
    );
    workers.quit().await;

    let instances: Vec<Instance> = (0..n)
        .map(|i| Instance {
            addr: addrs[i],
            pid: pids[i],
            opened: opened_on[i],
            held: pinged.pongs.get(i).copied().unwrap_or(0),
            before: before[i],
            after: after[i],
            peak: peak[i],
        })
        .collect();
    let total = |f: fn(&Mem) -> u64, of: &[Mem]| of.iter().map(f).sum::<u64>();
    let grown = total(|m| m.rss_kib, &after).saturating_sub(total(|m| m.rss_kib, &before));
    let per_conn = if opened > 0 {
        grown as f64 / opened as f64
    } else {
        0.0
    };
    let max_per_conn = instances
        .iter()
        .map(Instance::kib_per_conn)
        .fold(0.0, f64::max);
    let min_per_conn = instances
        .iter()
        .map(Instance::kib_per_conn)
        .fold(f64::INFINITY, f64::min);
    let bench_rss = total(|m| m.rss_kib, &bench_after);
    let bench_per_conn = if opened > 0 {
        bench_rss.saturating_sub(total(|m| m.rss_kib, &bench_before)) as f64 / opened as f64
    } else {
        0.0
    };
    let lat = connect_times.summary();
    let expected = opened.saturating_sub(closed_while_held);
    let delivered = message.watched_once + message.watched_more;

    report.row(
        "connections asked",
        args.connections.to_string(),
        "connections_asked",
        args.connections,
    );
    report.row(
        "server instances",
        if n > 1 {
            format!("{n} (connection i on instance i mod {n}; the open-file limit allows {per_instance} each)")
        } else {
            "1".to_owned()
        },
        "instances",
        n,
    );
    report.row(
        "users / source addresses",
        if source_addrs > 1 {
            format!(
                "{} / {source_addrs} (127.0.0.2–127.0.0.{}, each worker its own)",
                users.len(),
                1 + source_addrs
            )
        } else {
            format!("{} / 1 (127.0.0.2)", users.len())
        },
        "users",
        users.len(),
    );
    report.field("source_addrs", source_addrs);
    report.row(
        "bench worker processes",
        format!(
            "{workers_n} (≤ {per_worker} connections each: open-file limit {bench_nofile} per process)"
        ),
        "bench_workers",
        workers_n,
    );
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
        format!("{alive} (held {hold} s; ping round {ping_secs:.1} s)"),
        "connections_held",
        alive,
    );
    report.field("hold_secs", hold);
    if n > 1 {
        for (i, inst) in instances.iter().enumerate() {
            report.row(
                &format!("instance {} ({})", i + 1, inst.addr),
                format!(
                    "{} held · RSS {} → {} · {:.1} KiB/conn · peak {} · {} threads",
                    inst.held,
                    mib(inst.before.rss_kib),
                    mib(inst.after.rss_kib),
                    inst.kib_per_conn(),
                    mib(inst.peak.hwm_kib),
                    inst.after.threads
                ),
                &format!("instance_{}", i + 1),
                inst.held,
            );
        }
    }
    report.field(
        "per_instance",
        instances
            .iter()
            .map(|i| {
                json!({
                    "addr": i.addr.to_string(),
                    "pid": i.pid,
                    "connections_opened": i.opened,
                    "connections_held": i.held,
                    "rss_before_kib": i.before.rss_kib,
                    "rss_after_kib": i.after.rss_kib,
                    "kib_per_conn": i.kib_per_conn(),
                    "hwm_kib": i.peak.hwm_kib,
                    "threads": i.after.threads,
                })
            })
            .collect::<Vec<_>>(),
    );
    let all = if n > 1 { " (all instances)" } else { "" };
    report.row(
        &format!("server RSS before / after{all}"),
        format!(
            "{} / {}",
            mib(total(|m| m.rss_kib, &before)),
            mib(total(|m| m.rss_kib, &after))
        ),
        "server_rss_after_kib",
        total(|m| m.rss_kib, &after),
    );
    report.field("server_rss_before_kib", total(|m| m.rss_kib, &before));
    report.row(
        "server RSS per connection",
        if n > 1 {
            format!("{per_conn:.1} KiB (instances {min_per_conn:.1}–{max_per_conn:.1} KiB)")
        } else {
            format!("{per_conn:.1} KiB")
        },
        "server_kib_per_conn",
        per_conn,
    );
    report.field("server_kib_per_conn_max", max_per_conn);
    report.row(
        &format!("server peak RSS (VmHWM){all}"),
        mib(total(|m| m.hwm_kib, &peak)),
        "server_hwm_kib",
        total(|m| m.hwm_kib, &peak),
    );
    report.row(
        &format!("server threads{all}"),
        total(|m| m.threads, &after).to_string(),
        "server_threads",
        total(|m| m.threads, &after),
    );
    let machine_cores = server_cores + bench_cores + other_cores;
    report.row(
        &format!("CPU while held ({hold} s)"),
        format!(
            "{machine_cores:.2} cores busy: server{} {server_cores:.2}, bench {bench_cores:.2}, \
             others {other_cores:.2} (database, Redis, the rest)",
            if n > 1 { "s" } else { "" }
        ),
        "cpu_machine_cores",
        machine_cores,
    );
    report.field("cpu_server_cores", server_cores);
    report.field("cpu_bench_cores", bench_cores);
    report.field("cpu_other_cores", other_cores);
    report.row("load average", load.clone(), "loadavg", load);
    report.row(
        "bench RSS per connection",
        format!("{bench_per_conn:.1} KiB (workers' RSS {})", mib(bench_rss)),
        "bench_kib_per_conn",
        bench_per_conn,
    );
    report.row(
        if n > 1 {
            "cross-instance message"
        } else {
            "final message"
        },
        format!(
            "delivered to {delivered} of {} connections of its two users{}, the first {} and the last {} after the POST (which took {post_ms:.1} ms)",
            message.watched,
            if n > 1 { format!(" on {n} instances") } else { String::new() },
            first_ms.map_or("never".to_owned(), |ms| format!("{ms:.1} ms")),
            message_ms.map_or("never".to_owned(), |ms| format!("{ms:.1} ms")),
        ),
        "message_delivered",
        delivered,
    );
    report.field("message_connections", message.watched);
    report.field("message_latency_ms", message_ms);
    report.field("message_first_ms", first_ms);
    report.field("message_post_ms", post_ms);
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
    report.check(
        "message not delivered",
        message.watched.saturating_sub(delivered),
        "message_missed",
    );
    report.check(
        "message delivered more than once",
        message.watched_more,
        "message_duplicated",
    );
    report.check(
        "message frames on other users' connections",
        message.unexpected,
        "unexpected_messages",
    );
    if (alive as usize) < wanted {
        report.fail(format!("held {alive} of {wanted} connections"));
    }
    report.target(
        format!("{TARGET_CONNECTIONS} connections held"),
        alive as usize >= TARGET_CONNECTIONS,
    );
    report.target(
        if n > 1 {
            format!("≤ {TARGET_KIB_PER_CONN} KiB server RSS per connection on every instance")
        } else {
            format!("≤ {TARGET_KIB_PER_CONN} KiB server RSS per connection")
        },
        opened > 0 && max_per_conn <= TARGET_KIB_PER_CONN,
    );
    Ok(report)
}

/// Every worker's counts added up, per instance where they are per instance.
fn sum_counts(all: &[Counts]) -> Counts {
    let add = |a: &mut Vec<u64>, b: &[u64]| {
        if a.len() < b.len() {
            a.resize(b.len(), 0);
        }
        for (x, y) in a.iter_mut().zip(b) {
            *x += y;
        }
    };
    let mut sum = Counts::default();
    for c in all {
        add(&mut sum.closed, &c.closed);
        add(&mut sum.pongs, &c.pongs);
        sum.watched += c.watched;
        sum.watched_once += c.watched_once;
        sum.watched_more += c.watched_more;
        if c.first_us > 0 {
            sum.first_us = match sum.first_us {
                0 => c.first_us,
                earliest => earliest.min(c.first_us),
            };
        }
        sum.last_first_us = sum.last_first_us.max(c.last_first_us);
        sum.unexpected += c.unexpected;
    }
    sum
}

/// The worker processes: their stdin, and one channel of their events (`None`: that worker's
/// stdout closed, it exited).
struct Workers {
    children: Vec<tokio::process::Child>,
    stdins: Vec<tokio::process::ChildStdin>,
    pids: Vec<u32>,
    events: mpsc::UnboundedReceiver<(usize, Option<Event>)>,
}

impl Workers {
    /// Starts `letschat-bench idle-worker <args>` for each of `plans`. Must run on the main
    /// thread: the workers die with the thread that spawned them.
    fn spawn(plans: Vec<Vec<OsString>>) -> Result<Workers> {
        let exe = std::env::current_exe()
            .map_err(|e| err(format!("cannot find this program's path: {e}")))?;
        let (tx, events) = mpsc::unbounded_channel();
        let mut workers = Workers {
            children: Vec::new(),
            stdins: Vec::new(),
            pids: Vec::new(),
            events,
        };
        for (w, args) in plans.into_iter().enumerate() {
            let mut cmd = std::process::Command::new(&exe);
            cmd.arg("idle-worker")
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            // SAFETY: the closure runs between fork and exec and makes one system call, which is
            // async-signal-safe; it touches no locks and allocates nothing.
            unsafe {
                cmd.pre_exec(|| {
                    // The worker dies with this process, even if it is killed.
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let mut cmd = tokio::process::Command::from(cmd);
            cmd.kill_on_drop(true);
            let mut child = cmd
                .spawn()
                .map_err(|e| err(format!("cannot start {}: {e}", exe.display())))?;
            let (Some(stdin), Some(stdout), Some(pid)) =
                (child.stdin.take(), child.stdout.take(), child.id())
            else {
                return Err(err("a bench worker started without its pipes"));
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    match serde_json::from_str::<Event>(&line) {
                        Ok(e) => {
                            if tx.send((w, Some(e))).is_err() {
                                return;
                            }
                        }
                        Err(_) => eprintln!("bench worker {}: {line}", w + 1),
                    }
                }
                let _ = tx.send((w, None));
            });
            workers.children.push(child);
            workers.stdins.push(stdin);
            workers.pids.push(pid);
        }
        Ok(workers)
    }

    async fn send_all(&mut self, command: &str) -> Result<()> {
        for (w, stdin) in self.stdins.iter_mut().enumerate() {
            stdin
                .write_all(format!("{command}\n").as_bytes())
                .await
                .map_err(|e| err(format!("bench worker {}: {e}", w + 1)))?;
            stdin
                .flush()
                .await
                .map_err(|e| err(format!("bench worker {}: {e}", w + 1)))?;
        }
        Ok(())
    }

    /// The next event within `wait`, or `None`; an error if a worker exited.
    async fn next(&mut self, wait: Duration) -> Result<Option<(usize, Event)>> {
        match tokio::time::timeout(wait, self.events.recv()).await {
            Err(_) => Ok(None),
            Ok(None) => Err(err("the bench workers are gone")),
            Ok(Some((w, None))) => Err(err(format!("bench worker {} exited", w + 1))),
            Ok(Some((w, Some(e)))) => Ok(Some((w, e))),
        }
    }

    /// Sends `command` to every worker and gathers their counts.
    async fn counts(&mut self, command: &str, wait: Duration) -> Result<Vec<Counts>> {
        self.send_all(command).await?;
        let deadline = Instant::now() + wait;
        let mut got: Vec<Option<Counts>> = vec![None; self.stdins.len()];
        while got.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await? {
                Some((w, Event::Counts(c))) => got[w] = Some(c),
                Some((w, other)) => {
                    return Err(err(format!("bench worker {}: unexpected {other:?}", w + 1)))
                }
                None => {
                    return Err(err(format!(
                        "the bench workers did not answer {command:?} within {wait:?}"
                    )))
                }
            }
        }
        Ok(got.into_iter().flatten().collect())
    }

    /// Asks every worker to quit and waits for it (its sockets close as it exits).
    async fn quit(mut self) {
        let _ = self.send_all(idle_worker::QUIT).await;
        for child in &mut self.children {
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }
}
