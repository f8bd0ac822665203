//! `cluster`: the storage and fan-out configurations side by side, in one run, each on a fresh
//! database: one instance on SQLite, one on PostgreSQL, one and two on PostgreSQL + Redis
//! (`throughput`); the send→receive p99 at a fixed rate on one PostgreSQL instance and across two
//! instances (`latency`); and each instance's Redis traffic with two and with three instances at
//! the same load per instance, which must not grow with the number of instances.
//!
//! Also the helpers every scenario uses to read the instances' broker counters from their
//! `GET /metrics`.

use std::process::Command;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use crate::report::Report;
use crate::server::{random_u64, Server};
use crate::setup::Api;
use crate::traffic::{self, LatencyArgs, ThroughputArgs, TrafficArgs};
use crate::uploads::UploadArgs;
use crate::{err, Common, Result};

/// PostgreSQL single instance: persisted + acked + delivered messages per second.
const TARGET_PG_MSGS_PER_SEC: f64 = 20_000.0;
/// Two instances on PostgreSQL + Redis against one on PostgreSQL.
const TARGET_TWO_INSTANCES_RATIO: f64 = 0.75;
/// Cross-instance p99 against the single instance's, at the same rate.
const TARGET_P99_RATIO: f64 = 2.0;
/// Per-instance Redis traffic with three instances against two, at the same load per instance:
/// "independent of the number of instances" within this margin.
const TARGET_TRAFFIC_GROWTH: f64 = 1.15;

#[derive(Args, Debug)]
pub struct ClusterArgs {
    /// A PostgreSQL URL whose user may create databases; every PostgreSQL configuration runs on
    /// a database of its own, created for it and dropped after it (`psql` must be installed).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub postgres: String,
    /// The Redis server; every configuration uses a key prefix of its own.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub redis: String,
    /// Pairs of the throughput runs.
    #[arg(long, default_value_t = 200)]
    pub pairs: usize,
    /// Outstanding messages per sender in the throughput runs.
    #[arg(long, short = 'w', default_value_t = 8)]
    pub window: usize,
    /// Seconds measured in each run.
    #[arg(long, short = 'd', default_value_t = 10)]
    pub duration: u64,
    /// Messages per second of the latency runs, and per instance of the Redis traffic runs.
    #[arg(long, short = 'r', default_value_t = 2_000.0)]
    pub rate: f64,
    /// Pairs of the latency runs, and per instance pair-ends of the Redis traffic runs.
    #[arg(long, default_value_t = 2_000)]
    pub latency_pairs: usize,
    #[command(flatten)]
    pub traffic: TrafficArgs,
}

/// One configuration's outcome.
struct Outcome {
    name: String,
    report: Report,
}

impl Outcome {
    fn num(&self, key: &str) -> f64 {
        self.report
            .value(key)
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
    }
}

#[derive(Clone, Copy)]
enum Storage {
    Sqlite,
    Postgres,
    PostgresRedis,
}

enum Load {
    Throughput,
    Latency { rate: f64, pairs: usize },
}

pub async fn run(common: &Common, args: &ClusterArgs) -> Result<Report> {
    check_tools(args)?;
    let mut runs: Vec<Outcome> = Vec::new();
    let plan: [(&str, Storage, usize, Load); 7] = [
        ("SQLite, 1 instance", Storage::Sqlite, 1, Load::Throughput),
        (
            "PostgreSQL, 1 instance",
            Storage::Postgres,
            1,
            Load::Throughput,
        ),
        (
            "PostgreSQL + Redis, 1 instance",
            Storage::PostgresRedis,
            1,
            Load::Throughput,
        ),
        (
            "PostgreSQL + Redis, 2 instances",
            Storage::PostgresRedis,
            2,
            Load::Throughput,
        ),
        (
            "latency: PostgreSQL, 1 instance",
            Storage::Postgres,
            1,
            Load::Latency {
                rate: args.rate,
                pairs: args.latency_pairs,
            },
        ),
        (
            "latency: PostgreSQL + Redis, 2 instances",
            Storage::PostgresRedis,
            2,
            Load::Latency {
                rate: args.rate,
                pairs: args.latency_pairs,
            },
        ),
        (
            "Redis traffic: 3 instances, same load per instance",
            Storage::PostgresRedis,
            3,
            Load::Latency {
                rate: args.rate * 1.5,
                pairs: args.latency_pairs * 3 / 2,
            },
        ),
    ];
    for (name, storage, instances, load) in plan {
        eprintln!("bench: == cluster: {name}");
        let report = one(common, args, storage, instances, &load).await?;
        runs.push(Outcome {
            name: name.to_owned(),
            report,
        });
    }
    Ok(summary(&runs))
}

/// Runs one configuration on a fresh database, prints its report and returns it.
async fn one(
    common: &Common,
    args: &ClusterArgs,
    storage: Storage,
    instances: usize,
    load: &Load,
) -> Result<Report> {
    let tag = format!("letschat_bench_{:x}", random_u64() & 0xffff_ffff_ffff);
    let mut common = common.clone();
    common.instances = instances;
    let database = match storage {
        Storage::Sqlite => None,
        Storage::Postgres | Storage::PostgresRedis => {
            let url = create_database(&args.postgres, &tag)?;
            common.server_env.push(("DATABASE_URL".into(), url));
            Some(tag.clone())
        }
    };
    if matches!(storage, Storage::PostgresRedis) {
        common
            .server_env
            .push(("REDIS_URL".into(), args.redis.clone()));
        common
            .server_env
            .push(("LETSCHAT_REDIS_PREFIX".into(), format!("{tag}:")));
    }
    let outcome = run_on(&common, args, load).await;
    if let Some(db) = database {
        if let Err(e) = drop_database(&args.postgres, &db) {
            eprintln!("bench: {e}");
        }
    }
    outcome
}

async fn run_on(common: &Common, args: &ClusterArgs, load: &Load) -> Result<Report> {
    let mut server = Server::start(common)?;
    let api = Api::new(server.base_url())?;
    let result = async {
        server.wait_healthy(&api, Duration::from_secs(60)).await?;
        if common.instances > 1 {
            server
                .add_peers(common.instances - 1, Duration::from_secs(60))
                .await?;
        }
        match load {
            Load::Throughput => {
                traffic::run_throughput(
                    common,
                    &server,
                    &api,
                    &ThroughputArgs {
                        pairs: args.pairs,
                        window: args.window,
                        duration: args.duration,
                        traffic: args.traffic.clone(),
                    },
                )
                .await
            }
            Load::Latency { rate, pairs } => {
                traffic::run_latency(
                    common,
                    &server,
                    &api,
                    &LatencyArgs {
                        rate: *rate,
                        reaction_rate: 0.0,
                        read_rate: 0.0,
                        uploads: UploadArgs::none(),
                        pairs: *pairs,
                        duration: args.duration,
                        traffic: args.traffic.clone(),
                    },
                )
                .await
            }
        }
    }
    .await;
    let mut report = server.conclude(result).await?;
    report.print(false);
    Ok(report)
}

/// The side-by-side table and the targets.
fn summary(runs: &[Outcome]) -> Report {
    let mut report = Report::new("cluster");
    let by = |prefix: &str| runs.iter().find(|r| r.name == prefix);
    for r in runs {
        for f in r.report.failures() {
            report.fail(format!("{}: {f}", r.name));
        }
        if r.report.server_log_warnings.errors > 0 {
            report.fail(format!(
                "{}: {} errors in the server log",
                r.name, r.report.server_log_warnings.errors
            ));
        }
    }
    for r in runs.iter().take(4) {
        let rate = r.num("acks_per_sec").min(r.num("deliveries_per_sec"));
        report.row(
            &format!("throughput, {}", r.name),
            format!(
                "{rate:.0} msg/s, p99 {:.1} ms, server CPU {:.2} cores",
                r.num("e2e_p99_us") / 1000.0,
                r.num("server_cores")
            ),
            &format!("throughput_{}", key(&r.name)),
            rate,
        );
    }
    let rate_of = |name: &str| {
        by(name).map_or(0.0, |r| {
            r.num("acks_per_sec").min(r.num("deliveries_per_sec"))
        })
    };
    let pg = rate_of("PostgreSQL, 1 instance");
    let two = rate_of("PostgreSQL + Redis, 2 instances");
    let two_ratio = if pg > 0.0 { two / pg } else { 0.0 };
    report.row(
        "2 instances / 1 on PostgreSQL",
        format!("×{two_ratio:.2}"),
        "two_instances_ratio",
        two_ratio,
    );
    let p99 = |name: &str| by(name).map_or(0.0, |r| r.num("e2e_p99_us") / 1000.0);
    let single_p99 = p99("latency: PostgreSQL, 1 instance");
    let cross_p99 = p99("latency: PostgreSQL + Redis, 2 instances");
    let p99_ratio = if single_p99 > 0.0 {
        cross_p99 / single_p99
    } else {
        f64::INFINITY
    };
    report.row(
        "p99 send→receive, 1 instance / across 2",
        format!("{single_p99:.1} ms / {cross_p99:.1} ms (×{p99_ratio:.2})"),
        "cross_instance_p99_ratio",
        p99_ratio,
    );
    let traffic = |name: &str| {
        by(name).map_or((0.0, 0.0), |r| {
            (
                r.num("redis_out_per_instance_per_sec"),
                r.num("redis_in_per_instance_per_sec"),
            )
        })
    };
    let (out2, in2) = traffic("latency: PostgreSQL + Redis, 2 instances");
    let (out3, in3) = traffic("Redis traffic: 3 instances, same load per instance");
    let growth = if out2 + in2 > 0.0 {
        (out3 + in3) / (out2 + in2)
    } else {
        f64::INFINITY
    };
    report.row(
        "Redis publications per instance, out / in per s",
        format!(
            "2 instances {out2:.0} / {in2:.0}; 3 instances {out3:.0} / {in3:.0} (×{growth:.2})"
        ),
        "redis_traffic_growth",
        growth,
    );
    report.target(
        format!("PostgreSQL, 1 instance ≥ {TARGET_PG_MSGS_PER_SEC:.0} msg/s"),
        pg >= TARGET_PG_MSGS_PER_SEC,
    );
    report.target(
        format!("2 instances ≥ {TARGET_TWO_INSTANCES_RATIO}× 1 instance on PostgreSQL"),
        two_ratio >= TARGET_TWO_INSTANCES_RATIO,
    );
    report.target(
        format!("cross-instance p99 ≤ {TARGET_P99_RATIO}× one instance's"),
        p99_ratio <= TARGET_P99_RATIO,
    );
    report.target(
        format!(
            "per-instance Redis traffic with 3 instances ≤ {TARGET_TRAFFIC_GROWTH}× with 2 (same load per instance)"
        ),
        growth <= TARGET_TRAFFIC_GROWTH,
    );
    report
}

fn key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect::<String>()
        .split('_')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

fn check_tools(args: &ClusterArgs) -> Result<()> {
    let out = Command::new("psql")
        .arg(&args.postgres)
        .args(["-XtAqc", "SELECT 1"])
        .output()
        .map_err(|e| err(format!("cluster needs psql to create its databases: {e}")))?;
    if !out.status.success() {
        return Err(err(format!(
            "cannot reach PostgreSQL at {}: {}",
            args.postgres,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn psql(admin_url: &str, sql: &str) -> Result<()> {
    let out = Command::new("psql")
        .arg(admin_url)
        .args(["-XqAt", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .map_err(|e| err(format!("psql: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(err(format!(
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Creates database `name` and returns its URL (the admin URL with the database replaced).
fn create_database(admin_url: &str, name: &str) -> Result<String> {
    let mut url =
        reqwest::Url::parse(admin_url).map_err(|e| err(format!("--postgres {admin_url}: {e}")))?;
    psql(admin_url, &format!("CREATE DATABASE {name}"))?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

fn drop_database(admin_url: &str, name: &str) -> Result<()> {
    psql(
        admin_url,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )
}

/// One instance's broker counters, from its `GET /metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedisCounters {
    pub published: f64,
    pub received: f64,
}

/// Reads every instance's Redis counters (none without Redis).
pub async fn redis_counters(urls: &[String]) -> Result<Vec<RedisCounters>> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| err(format!("cannot build the HTTP client: {e}")))?;
    let mut all = Vec::with_capacity(urls.len());
    for url in urls {
        let text = client
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| err(format!("GET {url}: {e}")))?
            .text()
            .await
            .map_err(|e| err(format!("GET {url}: {e}")))?;
        all.push(RedisCounters {
            published: metric(&text, "letschat_redis_published_total")
                .ok_or_else(|| err(format!("{url} has no letschat_redis_published_total")))?,
            received: metric(&text, "letschat_redis_received_total")
                .ok_or_else(|| err(format!("{url} has no letschat_redis_received_total")))?,
        });
    }
    Ok(all)
}

/// The value of an unlabelled metric in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Rows for each instance's Redis publications per second over a window, and their mean.
pub fn redis_rows(report: &mut Report, start: &[RedisCounters], end: &[RedisCounters], secs: f64) {
    let per: Vec<(f64, f64)> = start
        .iter()
        .zip(end)
        .map(|(a, b)| {
            (
                (b.published - a.published) / secs.max(1e-9),
                (b.received - a.received) / secs.max(1e-9),
            )
        })
        .collect();
    let n = per.len().max(1) as f64;
    let out = per.iter().map(|p| p.0).sum::<f64>() / n;
    let inn = per.iter().map(|p| p.1).sum::<f64>() / n;
    report.row(
        "Redis publications per instance, out / in per s",
        per.iter()
            .map(|(o, i)| format!("{o:.0} / {i:.0}"))
            .collect::<Vec<_>>()
            .join("; "),
        "redis_out_per_instance_per_sec",
        out,
    );
    report.field("redis_in_per_instance_per_sec", inn);
    report.field(
        "redis_per_instance",
        per.iter()
            .map(|(o, i)| serde_json::json!({"out_per_sec": o, "in_per_sec": i}))
            .collect::<Vec<_>>(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_unlabelled_metrics() {
        let text = "# HELP letschat_redis_published_total x\n\
                    # TYPE letschat_redis_published_total counter\n\
                    letschat_redis_published_total 1234\n\
                    letschat_redis_published_total_other 9\n\
                    letschat_redis_received_total 5.5\n";
        assert_eq!(metric(text, "letschat_redis_published_total"), Some(1234.0));
        assert_eq!(metric(text, "letschat_redis_received_total"), Some(5.5));
        assert_eq!(metric(text, "letschat_redis_dropped_total"), None);
    }

    #[test]
    fn keys_are_snake_case() {
        assert_eq!(
            key("PostgreSQL + Redis, 2 instances"),
            "postgresql_redis_2_instances"
        );
    }
}
