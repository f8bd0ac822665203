//! `letschat-bench`: drives a real Let's Chat server over loopback the way real clients do
//! (REST to register and add contacts, then authenticated WebSockets) and reports what it
//! measured. Each run spawns its own server on a fresh temporary SQLite database and stops it at
//! the end, also on error or Ctrl-C.
//!
//! Scenarios:
//! - `idle`: many concurrent authenticated idle WebSockets, held by worker processes (the hidden
//!   `idle-worker` subcommand), on one or several instances; the server's RSS per connection,
//!   and one message that must reach every connection of its two users exactly once.
//! - `throughput`: pairs of users sending with a window of outstanding messages; messages per
//!   second, end-to-end latency and delivery checks.
//! - `latency`: a fixed total message rate spread over many pairs; end-to-end latency. Optionally
//!   under a storm of reactions or reads, or under concurrent uploads (`--uploads N`): MB/s,
//!   upload latency and the server's peak RSS beside the messaging figures.
//! - `cluster`: SQLite, PostgreSQL and PostgreSQL + Redis with one, two and three instances side by
//!   side in one run, each on a fresh database: throughput, cross-instance latency and each
//!   instance's Redis traffic.
//! - `abuse`: the attacks of issue 9 (sync amplification, slow readers, slow bodies, login flood,
//!   binary flood), one phase each, against the server's default limits while pairs exchange
//!   messages; peak RSS per phase and messaging p99 against quiet phases (first and last). Also exits with 1
//!   when the server's peak RSS exceeds `--max-rss-mib`.
//!
//! The process exits with 1 when a delivery check fails (a message acknowledged but never
//! delivered, delivered twice, or out of order; an error frame; a connection the server dropped)
//! and with 2 when the benchmark itself could not run.

mod abuse;
mod cluster;
mod idle;
mod idle_worker;
mod report;
mod server;
mod setup;
mod stats;
mod traffic;
mod uploads;
mod ws;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Errors that stop a run: a message for the operator.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

/// Turns anything printable into an [`Error`].
pub fn err(msg: impl Into<String>) -> Error {
    msg.into().into()
}

#[derive(Parser, Debug)]
#[command(
    name = "letschat-bench",
    version,
    about = "Load generator for the Let's Chat server (loopback only)",
    long_about = "Spawns the Let's Chat server on a fresh temporary SQLite database, drives it over \
                  127.0.0.x with real REST and WebSocket clients, prints the figures, and stops the \
                  server. Exit status: 0 all checks passed; 1 a check failed (lost, duplicated or \
                  out-of-order messages, seq gaps, unacknowledged sends, error frames, connections \
                  the server dropped, idle connections that failed to open or to answer a ping); \
                  2 the run itself failed. Targets are reported as MET / NOT MET and do not change \
                  the exit status."
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    scenario: Scenario,
}

/// Options every scenario takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// The server binary to spawn.
    #[arg(long, global = true, default_value = "target/release/letschat")]
    pub server: PathBuf,
    /// HTTP worker threads of the server (`LETSCHAT_WORKERS`); default: the server's own (one per core).
    #[arg(long, global = true)]
    pub workers: Option<u32>,
    /// Extra environment for the server, `KEY=VALUE` (repeatable; applied last).
    #[arg(long = "server-env", global = true, value_parser = parse_key_value)]
    pub server_env: Vec<(String, String)>,
    /// `RUST_LOG` for the server (its log goes to a file in the run's temporary folder).
    #[arg(long, global = true, default_value = "info")]
    pub server_log: String,
    /// Record the server with `perf record` during the measured window of `throughput` and
    /// `latency`, into this file.
    #[arg(long, global = true)]
    pub perf: Option<PathBuf>,
    /// Call-graph mode for `--perf` (`fp`, `dwarf`, `dwarf,16384`, or `none`).
    #[arg(long, global = true, default_value = "dwarf,32768")]
    pub perf_call_graph: String,
    /// Sampling frequency for `--perf`, in Hz.
    #[arg(long, global = true, default_value_t = 499)]
    pub perf_freq: u32,
    /// Keep the temporary folder (database and server log) instead of deleting it.
    #[arg(long, global = true)]
    pub keep: bool,
    /// Also print the figures as one JSON object on the last line.
    #[arg(long, global = true)]
    pub json: bool,
    /// WebSocket connections being opened at once.
    #[arg(long, global = true, default_value_t = 500)]
    pub connect_concurrency: usize,
    /// Server instances (`idle`, `throughput` and `latency`): the others share the first one's
    /// database and Redis, which `--server-env DATABASE_URL=postgres://…` and `--server-env
    /// REDIS_URL=…` must name; the two users of each pair connect to different instances, idle
    /// connections go round-robin over the instances.
    #[arg(long, global = true, default_value_t = 1)]
    pub instances: usize,
    /// REST requests (register, add contact) in flight at once during setup.
    #[arg(long, global = true, default_value_t = 32)]
    pub rest_concurrency: usize,
    /// Client source addresses 127.0.0.2, 127.0.0.3, ... to spread connections over (0: as many
    /// as needed for about 20,000 connections each). For `idle`, per worker process, each
    /// worker having addresses of its own.
    #[arg(long, global = true, default_value_t = 0)]
    pub source_addrs: u8,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Many concurrent authenticated idle WebSocket connections; server RSS per connection.
    Idle(idle::IdleArgs),
    /// Holds a share of `idle`'s connections; started by `idle` itself.
    #[command(hide = true)]
    IdleWorker(idle_worker::WorkerArgs),
    /// P pairs, a window of W outstanding messages per sender, for D seconds.
    Throughput(traffic::ThroughputArgs),
    /// A fixed total rate R spread over P pairs, for D seconds; end-to-end latency (optionally
    /// under a reaction or read storm, or under concurrent uploads).
    Latency(traffic::LatencyArgs),
    /// Attacks (sync amplification, slow readers, slow bodies, login flood from 200 addresses,
    /// binary flood), one phase each, while pairs exchange messages; server peak RSS and
    /// messaging p99 against quiet phases (first and last). Fails when peak RSS exceeds --max-rss-mib.
    Abuse(abuse::AbuseArgs),
    /// One run, side by side: throughput on SQLite, PostgreSQL, and PostgreSQL + Redis with one
    /// and two instances; send→receive p99 on one instance and across two; each instance's Redis
    /// traffic with two and three instances at the same load per instance. Every configuration
    /// gets a fresh PostgreSQL database (created and dropped with `psql`) and Redis key prefix.
    Cluster(cluster::ClusterArgs),
}

fn parse_key_value(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("'{s}' is not KEY=VALUE")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Scenario::IdleWorker(args) = &cli.scenario {
        // Its parent has already said what the open-file limit is.
        let _ = server::raise_nofile_limit();
        return idle_worker::main(args);
    }
    match server::raise_nofile_limit() {
        Ok(n) => {
            if n < 1_048_576 {
                eprintln!("bench: open-file limit is {n} (could not raise it to 1048576)");
            }
        }
        Err(e) => eprintln!("bench: cannot raise the open-file limit: {e}"),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(run(cli));
    // Tasks may still be parked (the readers of idle's worker pipes): do not wait for them.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match outcome {
        Ok(report) => {
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                eprintln!("bench: FAILED: {}", report.failures().join("; "));
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("bench: error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<report::Report> {
    if let Scenario::Cluster(args) = &cli.scenario {
        // Starts and stops its own servers, one configuration after the other.
        let mut report = tokio::select! {
            r = cluster::run(&cli.common, args) => r?,
            _ = tokio::signal::ctrl_c() => return Err(err("interrupted")),
        };
        report.print(cli.common.json);
        return Ok(report);
    }
    // Spawned from the main thread (block_on runs here), which lives until the end: the
    // server's parent-death signal is tied to it.
    let mut server = server::Server::start(&cli.common)?;
    eprintln!(
        "bench: server pid {} on 127.0.0.1:{} (data and log in {})",
        server.pid(),
        server.port(),
        server.dir().display()
    );
    let result = tokio::select! {
        r = scenario(&cli, &mut server) => r,
        _ = tokio::signal::ctrl_c() => Err(err("interrupted")),
    };
    let mut report = server.conclude(result).await?;
    report.print(cli.common.json);
    Ok(report)
}

async fn scenario(cli: &Cli, server: &mut server::Server) -> Result<report::Report> {
    let api = setup::Api::new(server.base_url())?;
    server.wait_healthy(&api, Duration::from_secs(30)).await?;
    if cli.common.instances > 1 {
        let env = &cli.common.server_env;
        let has =
            |key: &str, prefix: &str| env.iter().any(|(k, v)| k == key && v.starts_with(prefix));
        if !matches!(
            cli.scenario,
            Scenario::Idle(_) | Scenario::Throughput(_) | Scenario::Latency(_)
        ) {
            return Err(err(
                "--instances is for the idle, throughput and latency scenarios",
            ));
        }
        if !has("DATABASE_URL", "postgres") || !has("REDIS_URL", "redis") {
            return Err(err(
                "--instances needs --server-env DATABASE_URL=postgres://… and --server-env REDIS_URL=redis://… (shared by every instance)",
            ));
        }
        server
            .add_peers(cli.common.instances - 1, Duration::from_secs(30))
            .await?;
        eprintln!(
            "bench: {} instances on {:?}",
            cli.common.instances,
            server.addrs()
        );
    }
    match &cli.scenario {
        Scenario::Idle(args) => idle::run(&cli.common, server, &api, args).await,
        Scenario::IdleWorker(_) => Err(err("idle-worker is started by idle")),
        Scenario::Throughput(args) => {
            traffic::run_throughput(&cli.common, server, &api, args).await
        }
        Scenario::Latency(args) => traffic::run_latency(&cli.common, server, &api, args).await,
        Scenario::Abuse(args) => abuse::run(&cli.common, server, &api, args).await,
        Scenario::Cluster(_) => Err(err("cluster runs its own servers")),
    }
}
