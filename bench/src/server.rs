//! The server under test: spawned on a fresh temporary SQLite database with benchmark-friendly
//! limits (cheap bcrypt, no auth rate limits, no per-connection frame cap), watched through
//! /proc, and stopped at the end — SIGTERM, then SIGKILL; on drop and if this process dies, too.

use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::report::Report;
use crate::setup::Api;
use crate::{err, Common, Result};

/// How long the server gets to stop after SIGTERM (its own graceful shutdown allows 10 s).
const STOP_GRACE: Duration = Duration::from_secs(15);

/// The uploaded files' folder, in the run's temporary folder.
const UPLOAD_DIR: &str = "uploads";

/// What the kernel allows at most (`/proc/sys/fs/nr_open` is 1048576 by default).
const WANTED_NOFILE: u64 = 1_048_576;

/// A random number without a dependency: the std hasher is seeded from the OS.
pub fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

fn nr_open() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(WANTED_NOFILE)
        .min(WANTED_NOFILE)
}

/// Raises this process's open-file limit as far as allowed (root may raise the hard limit up to
/// `nr_open`; others only the soft one up to the hard one). Returns the new soft limit. The
/// spawned server inherits it, and sets it again itself before exec.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let want = nr_open();
        let raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: want.max(lim.rlim_max),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return Ok(raised.rlim_cur);
        }
        let soft = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &soft) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(soft.rlim_cur)
    }
}

/// A free TCP port below the ephemeral range (32768–60999), so that no outgoing connection of
/// this benchmark can take it between the check and the server's bind.
fn free_port() -> Result<u16> {
    let start = 20_000 + (random_u64() % 10_000) as u16;
    for i in 0..2_000u16 {
        let port = 20_000 + (start - 20_000 + i) % 12_000;
        if TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(err("no free TCP port in 20000–31999"))
}

/// The server's memory, from /proc/<pid>/status, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mem {
    /// Resident set size now (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set size (`VmHWM`).
    pub hwm_kib: u64,
    pub threads: u64,
}

pub fn read_mem(pid: u32) -> Result<Mem> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| err(format!("cannot read /proc/{pid}/status: {e}")))?;
    let mut mem = Mem::default();
    for line in status.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let value = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        match key {
            "VmRSS" => mem.rss_kib = value,
            "VmHWM" => mem.hwm_kib = value,
            "Threads" => mem.threads = value,
            _ => {}
        }
    }
    Ok(mem)
}

/// CPU time (user + system) a process has used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = if ticks > 0 { ticks as f64 } else { 100.0 };
    Some((utime + stime) / ticks)
}

pub struct Server {
    child: Option<Child>,
    pid: u32,
    port: u16,
    dir: PathBuf,
    log: PathBuf,
    keep: bool,
    perf: Option<PerfSettings>,
    binary: PathBuf,
    secret: String,
    common: Common,
    /// Further instances on the same database and Redis (`--instances`), stopped with this one.
    peers: Vec<Server>,
    /// Where this instance serves `GET /metrics`: on with Redis, for the broker's counters.
    metrics_port: Option<u16>,
}

struct PerfSettings {
    out: PathBuf,
    call_graph: String,
    freq: u32,
}

/// The limits the server runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limits {
    /// Benchmark-friendly: bcrypt cost 4, no auth rate limits, no per-connection frame cap.
    Bench,
    /// The server's own defaults (bcrypt cost 12, its default rate limits), except what the
    /// caller passes as extra environment.
    Defaults,
}

impl Server {
    pub fn start(common: &Common) -> Result<Server> {
        Self::start_with(common, Limits::Bench, &[])
    }

    /// Starts the server with `limits` and `env` (applied before `--server-env`).
    pub fn start_with(common: &Common, limits: Limits, env: &[(String, String)]) -> Result<Server> {
        // Absolute: the server runs in the temporary folder.
        let binary = match std::fs::canonicalize(&common.server) {
            Ok(p) if p.is_file() => p,
            _ => {
                return Err(err(format!(
                    "no server binary at {} (build it with `cargo build --release -p letschat`, or pass --server)",
                    common.server.display()
                )))
            }
        };
        let dir = std::env::temp_dir().join(format!(
            "letschat-bench-{}-{:x}",
            std::process::id(),
            random_u64()
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
        let secret = format!(
            "{:016x}{:016x}{:016x}",
            random_u64(),
            random_u64(),
            random_u64()
        );
        let perf = common.perf.as_ref().map(|out| PerfSettings {
            out: out.clone(),
            call_graph: common.perf_call_graph.clone(),
            freq: common.perf_freq,
        });
        let mut server = Server {
            child: None,
            pid: 0,
            port: 0,
            log: dir.join("server.log"),
            dir,
            keep: common.keep,
            perf,
            binary,
            secret,
            common: common.clone(),
            peers: Vec::new(),
            metrics_port: None,
        };
        // On error, dropping `server` removes the folder.
        server.spawn(limits, env)?;
        Ok(server)
    }

    /// Stops the server (gracefully, as [`Server::stop`]) and starts it again on the same
    /// database with the same JWT secret (tokens stay valid), on a new port, with `limits` and
    /// `env`. Returns how long the stop took.
    pub async fn restart(&mut self, limits: Limits, env: &[(String, String)]) -> Result<Duration> {
        let took = self.stop().await?;
        self.spawn(limits, env)?;
        Ok(took)
    }

    fn spawn(&mut self, limits: Limits, env: &[(String, String)]) -> Result<()> {
        let common = &self.common;
        let dir = &self.dir;
        let port = free_port()?;
        let db = dir.join("bench.db");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| err(format!("cannot create {}: {e}", self.log.display())))?;
        let log_err = log_file
            .try_clone()
            .map_err(|e| err(format!("cannot open the server log: {e}")))?;

        let mut cmd = Command::new(&self.binary);
        // Only this run's settings: nothing inherited from the caller's LETSCHAT_* or DATABASE_URL.
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("LETSCHAT_") || k == "DATABASE_URL" || k == "RUST_LOG" {
                cmd.env_remove(&key);
            }
        }
        cmd.env("LETSCHAT_BIND", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", format!("sqlite://{}", db.display()))
            .env("LETSCHAT_JWT_SECRET", &self.secret)
            .env("LETSCHAT_STATIC_DIR", dir.join("no-spa"))
            .env("LETSCHAT_UPLOAD_DIR", dir.join(UPLOAD_DIR))
            .env("RUST_LOG", &common.server_log)
            .env("NO_COLOR", "1");
        if limits == Limits::Bench {
            cmd.env("LETSCHAT_BCRYPT_COST", "4")
                .env("LETSCHAT_AUTH_RATE_PER_IP", "1000000")
                .env("LETSCHAT_FAILED_LOGINS_PER_HOUR", "1000000")
                .env("LETSCHAT_WS_MAX_FRAMES_PER_SEC", "1000000")
                // The load generator is many clients on a few addresses: no per-address or
                // per-network share of sign-ins, hashing or connections may throttle it.
                .env("LETSCHAT_AUTH_RATE_PER_PREFIX", "1000000")
                .env("LETSCHAT_HASH_PER_ADDRESS", "10000")
                .env("LETSCHAT_HASH_PER_PREFIX", "10000")
                // Setting up thousands of users is a burst of registrations: not paced.
                .env("LETSCHAT_HASH_PUBLIC_SHARE", "100")
                .env("LETSCHAT_MAX_CONNECTIONS_PER_IP", "1000000")
                .env("LETSCHAT_MAX_CONNECTIONS_PER_USER", "100000")
                // Uploaders upload for the whole run: no daily quota may cut it short.
                .env(
                    "LETSCHAT_UPLOAD_QUOTA_BYTES_PER_DAY",
                    (1u64 << 50).to_string(),
                );
        }
        if let Some(w) = common.workers {
            cmd.env("LETSCHAT_WORKERS", w.to_string());
        }
        // With Redis, the broker's counters are read from `GET /metrics` on an address of its own.
        let with_redis = env
            .iter()
            .chain(&common.server_env)
            .any(|(k, v)| k == "REDIS_URL" && !v.is_empty());
        self.metrics_port = None;
        if with_redis {
            let metrics_port = free_port()?;
            cmd.env("LETSCHAT_METRICS_BIND", format!("127.0.0.1:{metrics_port}"));
            self.metrics_port = Some(metrics_port);
        }
        for (k, v) in env.iter().chain(&common.server_env) {
            cmd.env(k, v);
        }
        cmd.current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(log_err));
        let nofile = nr_open();
        // SAFETY: the closure runs between fork and exec and only makes two system calls, which
        // are async-signal-safe; it touches no locks and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                // The server dies with the thread that spawned it (this process's main thread),
                // even if this process is killed.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let lim = libc::rlimit {
                    rlim_cur: nofile,
                    rlim_max: nofile,
                };
                // Best effort: without privilege the inherited limit stays.
                let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| err(format!("cannot start {}: {e}", self.binary.display())))?;
        self.pid = child.id();
        self.child = Some(child);
        self.port = port;
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Starts `n` more instances of this server: the same binary, settings, JWT secret and
    /// `--server-env` (so the same `DATABASE_URL` and `REDIS_URL`), each on its own port. Only
    /// meaningful on PostgreSQL with Redis, which the caller checks.
    pub async fn add_peers(&mut self, n: usize, api_timeout: Duration) -> Result<()> {
        for _ in 0..n {
            let dir = self.dir.join(format!("peer-{}", self.peers.len() + 1));
            std::fs::create_dir_all(&dir)
                .map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
            let mut peer = Server {
                child: None,
                pid: 0,
                port: 0,
                log: dir.join("server.log"),
                dir,
                keep: self.keep,
                perf: None,
                binary: self.binary.clone(),
                secret: self.secret.clone(),
                common: self.common.clone(),
                peers: Vec::new(),
                metrics_port: None,
            };
            peer.spawn(Limits::Bench, &[])?;
            let api = crate::setup::Api::new(peer.base_url())?;
            peer.wait_healthy(&api, api_timeout).await?;
            self.peers.push(peer);
        }
        Ok(())
    }

    /// Every instance's address, this one's first.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        std::iter::once(self.addr())
            .chain(self.peers.iter().map(Server::addr))
            .collect()
    }

    /// Every instance's process id, this one's first.
    pub fn pids(&self) -> Vec<u32> {
        std::iter::once(self.pid)
            .chain(self.peers.iter().map(|p| p.pid))
            .collect()
    }

    /// Every instance's `GET /metrics` URL, this one's first; empty without Redis.
    pub fn metrics_urls(&self) -> Vec<String> {
        std::iter::once(self)
            .chain(&self.peers)
            .filter_map(|s| s.metrics_port)
            .map(|p| format!("http://127.0.0.1:{p}/metrics"))
            .collect()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where this instance keeps uploaded files (`LETSCHAT_UPLOAD_DIR`).
    pub fn upload_dir(&self) -> PathBuf {
        self.dir.join(UPLOAD_DIR)
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
    }

    pub fn mem(&self) -> Result<Mem> {
        read_mem(self.pid)
    }

    fn exited(&self) -> Option<String> {
        // A zombie is gone too: it no longer serves. `Child::try_wait` needs &mut, so look at /proc.
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            Err(_) => Some("the server process is gone".into()),
            Ok(s) => {
                let state = s
                    .rfind(')')
                    .and_then(|i| s[i + 1..].split_whitespace().next());
                (state == Some("Z")).then(|| "the server exited".into())
            }
        }
    }

    /// Polls `GET /api/health` until it answers 200.
    pub async fn wait_healthy(&self, api: &Api, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(why) = self.exited() {
                return Err(err(format!("{why} before it became healthy")));
            }
            if api.healthy().await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(err(format!(
                    "the server was not healthy within {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fails if the server, or one of its further instances, has died.
    pub fn check_alive(&self) -> Result<()> {
        match self.exited() {
            Some(why) if self.peers.is_empty() => Err(err(why)),
            Some(why) => Err(err(format!("instance 1 (port {}): {why}", self.port))),
            None => self.peers.iter().enumerate().try_for_each(|(i, p)| {
                p.check_alive()
                    .map_err(|e| err(format!("instance {} (port {}): {e}", i + 2, p.port)))
            }),
        }
    }

    /// Starts `perf record` on the server for `secs` seconds when `--perf` was given.
    pub fn start_perf(&self, secs: f64) -> Result<Option<Child>> {
        let Some(p) = &self.perf else { return Ok(None) };
        let mut cmd = Command::new("perf");
        cmd.arg("record")
            .arg("-F")
            .arg(p.freq.to_string())
            .arg("-p")
            .arg(self.pid.to_string());
        match p.call_graph.as_str() {
            "none" => {}
            "fp" => {
                cmd.arg("-g");
            }
            mode => {
                cmd.arg("--call-graph").arg(mode);
            }
        }
        cmd.arg("-o")
            .arg(&p.out)
            .arg("--")
            .arg("sleep")
            .arg(format!("{secs:.1}"));
        let log = p.out.with_extension("perf-record.log");
        let f =
            File::create(&log).map_err(|e| err(format!("cannot create {}: {e}", log.display())))?;
        let f2 = f.try_clone().map_err(|e| err(e.to_string()))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(f))
            .stderr(Stdio::from(f2));
        let child = cmd
            .spawn()
            .map_err(|e| err(format!("cannot start perf: {e}")))?;
        eprintln!("bench: perf record ({secs:.0} s) -> {}", p.out.display());
        Ok(Some(child))
    }

    /// SIGTERM, up to [`STOP_GRACE`] for a graceful stop, then SIGKILL. Returns how long the
    /// graceful stop took.
    pub async fn stop(&mut self) -> Result<Duration> {
        let Some(mut child) = self.child.take() else {
            return Ok(Duration::ZERO);
        };
        let started = Instant::now();
        // SAFETY: kill only sends a signal to our own child, which has not been reaped yet.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(started.elapsed()),
                Ok(None) if started.elapsed() < STOP_GRACE => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(err(format!(
                        "the server did not stop within {STOP_GRACE:?} of SIGTERM; killed it"
                    )));
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(err(format!("waiting for the server: {e}")));
                }
            }
        }
    }

    /// Stops the server once a scenario is over, and adds to its report how the stop went and
    /// what the server logged (on error, prints the log's tail instead).
    pub async fn conclude(&mut self, result: Result<Report>) -> Result<Report> {
        let stopped = self.stop().await;
        let mut report = match result {
            Ok(r) => r,
            Err(e) => {
                self.print_log_tail(20);
                return Err(e);
            }
        };
        report.server_log_warnings = self.log_warnings();
        match stopped {
            Ok(took) => report.row(
                "server stop after SIGTERM",
                format!("{:.2} s", took.as_secs_f64()),
                "server_stop_secs",
                took.as_secs_f64(),
            ),
            Err(e) => report.row(
                "server stop after SIGTERM",
                e.to_string(),
                "server_stop",
                e.to_string(),
            ),
        }
        Ok(report)
    }

    /// Counts the WARN and ERROR lines of the server's log, and of its further instances' logs,
    /// and keeps the first few distinct ones.
    pub fn log_warnings(&self) -> LogSummary {
        let mut summary = LogSummary::default();
        let logs = std::iter::once(&self.log).chain(self.peers.iter().map(|p| &p.log));
        let lines = logs
            .filter_map(|log| File::open(log).ok())
            .flat_map(|f| BufReader::new(f).lines().map_while(std::io::Result::ok));
        for line in lines {
            let is_warn = line.contains(" WARN ");
            let is_error = line.contains(" ERROR ");
            if !(is_warn || is_error) {
                continue;
            }
            if is_warn {
                summary.warnings += 1;
            } else {
                summary.errors += 1;
            }
            // Drop the timestamp so repeats of one message collapse.
            let text = line
                .split_once(' ')
                .map_or(line.as_str(), |(_, rest)| rest)
                .to_owned();
            // One sample per message: the values of its fields (paths, ids) may differ.
            let message = |t: &str| t.split('=').next().unwrap_or_default().to_owned();
            if summary.samples.len() < 5
                && !summary.samples.iter().any(|s| message(s) == message(&text))
            {
                summary.samples.push(text);
            }
        }
        summary
    }

    pub fn print_log_tail(&self, n: usize) {
        let Ok(f) = File::open(&self.log) else { return };
        let lines: Vec<String> = BufReader::new(f)
            .lines()
            .map_while(std::io::Result::ok)
            .collect();
        eprintln!(
            "bench: last lines of the server log ({}):",
            self.log.display()
        );
        for l in &lines[lines.len().saturating_sub(n)..] {
            eprintln!("  | {l}");
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct LogSummary {
    pub warnings: u64,
    pub errors: u64,
    pub samples: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.keep {
            eprintln!("bench: kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The open-file limit (soft) of a process, from /proc/<pid>/limits.
pub fn nofile_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Whole-machine CPU time so far, in seconds: (busy, all), from /proc/stat.
pub fn machine_cpu() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let all: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = if ticks > 0 { ticks as f64 } else { 100.0 };
    Some(((all - idle) as f64 / ticks, all as f64 / ticks))
}

/// `/proc/loadavg`'s first three fields.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// CPU use over a measured window: this server, this benchmark, and everything else.
#[derive(Debug, Clone, Copy)]
pub struct CpuWindow {
    server: Option<f64>,
    bench: Option<f64>,
    machine: Option<(f64, f64)>,
    started: Instant,
}

/// CPU seconds of all of `pids` together.
fn cpu_seconds_of(pids: &[u32]) -> Option<f64> {
    pids.iter().map(|p| cpu_seconds(*p)).sum()
}

impl CpuWindow {
    /// Starts counting; `server_pids` are the server's instances.
    pub fn start(server_pids: &[u32]) -> CpuWindow {
        Self::start_with(server_pids, &[std::process::id()])
    }

    /// Starts counting; `bench_pids` are the benchmark's processes (itself and its workers).
    pub fn start_with(server_pids: &[u32], bench_pids: &[u32]) -> CpuWindow {
        CpuWindow {
            server: cpu_seconds_of(server_pids),
            bench: cpu_seconds_of(bench_pids),
            machine: machine_cpu(),
            started: Instant::now(),
        }
    }

    /// Cores used since `start`: (server, bench, other processes).
    pub fn cores(&self, server_pids: &[u32]) -> (f64, f64, f64) {
        self.cores_with(server_pids, &[std::process::id()])
    }

    /// Cores used since `start_with`: (server, bench, other processes).
    pub fn cores_with(&self, server_pids: &[u32], bench_pids: &[u32]) -> (f64, f64, f64) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let diff = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (b - a) / secs,
            _ => f64::NAN,
        };
        let server = diff(self.server, cpu_seconds_of(server_pids));
        let bench = diff(self.bench, cpu_seconds_of(bench_pids));
        let machine = diff(self.machine.map(|m| m.0), machine_cpu().map(|m| m.0));
        (server, bench, (machine - server - bench).max(0.0))
    }
}
