//! What an operator sees of one instance: every metric the server exports, defined here, and
//! rendered in the Prometheus text format by [`endpoint`] on its own address
//! (`LETSCHAT_METRICS_BIND`), never on the public one.
//!
//! Handles are registered once at start-up and handed to the parts that record them (the
//! writer, the broker, sessions, the HTTP middleware), so recording on a hot path is an atomic
//! add (counters) or a lock-free append of one sample (histograms) — no name look-up,
//! formatting or allocation per message. Histogram samples are folded into their buckets at
//! each scrape and every second in between ([`endpoint`]'s upkeep thread), which bounds what
//! they hold to about a second of samples. With the endpoint off, every handle is a no-op.
//!
//! Each [`Metrics`] has its own registry: several servers in one process (the tests) never mix
//! their figures.

pub mod endpoint;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web;
use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
    Gauge, Histogram, NoopRecorder, Recorder, Unit,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::db::PoolStats;
use crate::state::AppState;

/// Buckets (upper bounds, seconds) of every latency histogram: 100 µs to 10 s, so both a quiet
/// server's sub-millisecond fan-out and a struggling disk's commits land in a bucket of their own.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Buckets (upper bounds, requests) of the writer's batch sizes, up to its largest batch.
pub const BATCH_BUCKETS: [f64; 13] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

const WRITER_BATCH_REQUESTS: &str = "letschat_writer_batch_requests";

/// What the message writer records (`services/writer.rs`); one thread records them all.
#[derive(Clone)]
pub struct WriterMetrics {
    /// New messages stored (a resent `client_msg_id` is not counted again).
    pub messages_sent: Counter,
    /// From a send entering the writer's queue to its batch's commit.
    pub send_to_commit: Histogram,
    /// From the writer taking a batch to its commit (the transaction and its fsync).
    pub commit: Histogram,
    /// Requests (sends and read markers) per batch.
    pub batch_requests: Histogram,
    pub commits: Counter,
    /// Batches that did not commit (their requests were answered with an error).
    pub failed_batches: Counter,
}

/// What the broker records while it fans events out (`broker/`).
#[derive(Clone)]
pub struct BrokerMetrics {
    pub publishes: Counter,
    /// Events queued to a connection.
    pub deliveries: Counter,
    /// Events not queued because the connection's queue was full: that connection is dropped.
    pub dropped: Counter,
    /// Several instances: from another instance handing an event to Redis (by its clock) to the
    /// event's arrival here (by this one's), one sample per publication received.
    pub lag: Histogram,
}

impl BrokerMetrics {
    /// Handles that record nothing (a broker started without an endpoint).
    pub fn disabled() -> BrokerMetrics {
        metrics::with_local_recorder(&NoopRecorder, BrokerMetrics::register)
    }

    /// One published event, queued to `deliveries` connections.
    pub fn published(&self, deliveries: u64) {
        self.publishes.increment(1);
        self.deliveries.increment(deliveries);
    }

    fn register() -> BrokerMetrics {
        describe_counter!(
            "letschat_broker_publishes_total",
            "Events published to the broker (messages, read markers, typing, presence, \
             revocations, ...)."
        );
        describe_counter!(
            "letschat_broker_deliveries_total",
            "Events queued to a WebSocket connection on this instance."
        );
        describe_counter!(
            "letschat_broker_dropped_events_total",
            "Events not delivered because the connection's queue was full; each drops that \
             connection, whose client reconnects and syncs."
        );
        describe_histogram!(
            "letschat_broker_lag_seconds",
            Unit::Seconds,
            "Several instances: from another instance handing an event to Redis to its arrival \
             on this one, one sample per publication received (0 when the sender's clock is \
             ahead). Across machines it includes their clocks' difference."
        );
        BrokerMetrics {
            publishes: counter!("letschat_broker_publishes_total"),
            deliveries: counter!("letschat_broker_deliveries_total"),
            dropped: counter!("letschat_broker_dropped_events_total"),
            lag: histogram!("letschat_broker_lag_seconds"),
        }
    }
}

/// What WebSocket sessions record (`ws/session.rs`).
#[derive(Clone)]
pub struct SessionMetrics {
    /// From a message's publication right after its commit to a session taking it from its
    /// queue to send it.
    pub commit_to_delivery: Histogram,
    pub acks: Counter,
    /// Several instances: replays a connection started itself after noticing lost events.
    pub gap_repairs: Counter,
}

/// Requests answered by the public server, by status class.
#[derive(Clone)]
pub struct HttpMetrics {
    /// 1xx (WebSocket upgrades), 2xx, 3xx, 4xx, 5xx.
    classes: [Counter; 5],
}

impl HttpMetrics {
    pub fn count(&self, status: StatusCode) {
        let class = usize::from(status.as_u16() / 100);
        if let Some(c) = class.checked_sub(1).and_then(|i| self.classes.get(i)) {
            c.increment(1);
        }
    }
}

/// Gauges set from the server's state when it is scraped.
#[derive(Clone)]
struct ScrapedGauges {
    ws_connections: Gauge,
    pool_in_use: Gauge,
    pool_idle: Gauge,
    pool_max: Gauge,
    redis_connected: Gauge,
    redis_published: Counter,
    redis_dropped: Counter,
    redis_received: Counter,
    redis_reconnects: Counter,
}

/// Every metric of one server.
#[derive(Clone)]
pub struct Metrics {
    exporter: Option<PrometheusHandle>,
    pub writer: WriterMetrics,
    pub broker: BrokerMetrics,
    pub sessions: SessionMetrics,
    pub http: HttpMetrics,
    scraped: ScrapedGauges,
}

impl Metrics {
    /// Metrics recorded for the Prometheus endpoint, every histogram with real buckets.
    pub fn prometheus() -> Result<Metrics, String> {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&LATENCY_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(WRITER_BATCH_REQUESTS.to_owned()),
                    &BATCH_BUCKETS,
                )
            })
            .map_err(|e| format!("metrics: {e}"))?
            .build_recorder();
        let exporter = recorder.handle();
        Ok(Metrics::register(&recorder, Some(exporter)))
    }

    /// Handles that record nothing: the endpoint is off.
    pub fn disabled() -> Metrics {
        Metrics::register(&NoopRecorder, None)
    }

    /// Whether anything is recorded (the endpoint is on).
    pub fn enabled(&self) -> bool {
        self.exporter.is_some()
    }

    fn register(recorder: &dyn Recorder, exporter: Option<PrometheusHandle>) -> Metrics {
        metrics::with_local_recorder(recorder, || {
            describe_all();
            Metrics {
                exporter,
                writer: WriterMetrics {
                    messages_sent: counter!("letschat_messages_sent_total"),
                    send_to_commit: histogram!("letschat_writer_send_to_commit_seconds"),
                    commit: histogram!("letschat_writer_commit_seconds"),
                    batch_requests: histogram!(WRITER_BATCH_REQUESTS),
                    commits: counter!("letschat_writer_commits_total"),
                    failed_batches: counter!("letschat_writer_failed_batches_total"),
                },
                broker: BrokerMetrics::register(),
                sessions: SessionMetrics {
                    commit_to_delivery: histogram!("letschat_commit_to_delivery_seconds"),
                    acks: counter!("letschat_acks_sent_total"),
                    gap_repairs: counter!("letschat_gap_repairs_total"),
                },
                http: HttpMetrics {
                    classes: ["1xx", "2xx", "3xx", "4xx", "5xx"]
                        .map(|class| counter!("letschat_http_requests_total", "class" => class)),
                },
                scraped: ScrapedGauges {
                    ws_connections: gauge!("letschat_websocket_connections"),
                    pool_in_use: gauge!("letschat_db_pool_connections", "state" => "in_use"),
                    pool_idle: gauge!("letschat_db_pool_connections", "state" => "idle"),
                    pool_max: gauge!("letschat_db_pool_max_connections"),
                    redis_connected: gauge!("letschat_redis_connected"),
                    redis_published: counter!("letschat_redis_published_total"),
                    redis_dropped: counter!("letschat_redis_dropped_total"),
                    redis_received: counter!("letschat_redis_received_total"),
                    redis_reconnects: counter!("letschat_redis_reconnects_total"),
                },
            }
        })
    }

    /// The exposition text, with the gauges read from the server's state just now. `None` when
    /// the endpoint is off.
    pub fn render(
        &self,
        pool: PoolStats,
        ws_connections: usize,
        cluster: Option<crate::broker::ClusterStats>,
    ) -> Option<String> {
        let exporter = self.exporter.as_ref()?;
        let g = &self.scraped;
        g.ws_connections.set(ws_connections as f64);
        g.pool_in_use.set(pool.open.saturating_sub(pool.idle));
        g.pool_idle.set(pool.idle);
        g.pool_max.set(pool.max);
        if let Some(c) = cluster {
            g.redis_connected.set(if c.connected { 1.0 } else { 0.0 });
            g.redis_published.absolute(c.published);
            g.redis_dropped.absolute(c.dropped);
            g.redis_received.absolute(c.received);
            g.redis_reconnects.absolute(c.reconnects);
        }
        Some(exporter.render())
    }

    /// Folds the histograms' samples into their buckets.
    pub fn upkeep(&self) {
        if let Some(exporter) = &self.exporter {
            exporter.run_upkeep();
        }
    }
}

/// The descriptions (`# HELP`) of every metric; README's "Monitoring" lists the same.
fn describe_all() {
    describe_gauge!(
        "letschat_websocket_connections",
        "Authenticated WebSocket connections open on this instance."
    );
    describe_counter!(
        "letschat_http_requests_total",
        "HTTP requests answered on the public address, by status class (1xx are WebSocket \
         upgrades)."
    );
    describe_counter!(
        "letschat_messages_sent_total",
        "Messages stored (a resent client_msg_id is not counted again)."
    );
    describe_counter!(
        "letschat_acks_sent_total",
        "ack frames sent to the WebSocket connection a message came from."
    );
    describe_histogram!(
        "letschat_writer_send_to_commit_seconds",
        Unit::Seconds,
        "From a send entering the message writer's queue to the commit of its batch \
         (queueing behind the batch being written included)."
    );
    describe_histogram!(
        "letschat_writer_commit_seconds",
        Unit::Seconds,
        "From the writer taking a batch to its commit: the transaction and its fsync."
    );
    describe_histogram!(
        WRITER_BATCH_REQUESTS,
        "Requests (sends and read markers) the writer committed in one transaction."
    );
    describe_counter!(
        "letschat_writer_commits_total",
        "Batches the message writer committed."
    );
    describe_counter!(
        "letschat_writer_failed_batches_total",
        "Batches that did not commit; every request in them was answered with an error."
    );
    describe_histogram!(
        "letschat_commit_to_delivery_seconds",
        Unit::Seconds,
        "From a message's publication right after its batch's commit to a WebSocket session \
         of this instance taking it to send (one sample per connection it reaches, acks \
         included)."
    );
    describe_gauge!(
        "letschat_db_pool_connections",
        "Database connections of the pool, by state (in_use, idle), read at each scrape. The \
         message writer holds one from its first write on."
    );
    describe_gauge!(
        "letschat_db_pool_max_connections",
        "The pool's size (LETSCHAT_DB_POOL_SIZE)."
    );
    describe_counter!(
        "letschat_gap_repairs_total",
        "Several instances: replays connections started themselves from the database after \
         noticing that events were lost between instances (a message whose seq was not the \
         next one, a resubscription, a periodic check that found something missing)."
    );
    describe_gauge!(
        "letschat_redis_connected",
        "Several instances: 1 while both the Redis subscriber and publisher are connected, \
         else 0 (read at each scrape; absent with one instance)."
    );
    describe_counter!(
        "letschat_redis_published_total",
        "Several instances: event publications Redis took (one per recipient user)."
    );
    describe_counter!(
        "letschat_redis_dropped_total",
        "Several instances: event publications dropped because Redis was unreachable or the \
         queue to it was full (connections repair from the database)."
    );
    describe_counter!(
        "letschat_redis_received_total",
        "Several instances: event publications received for this instance's users (its own \
         included, which it skips)."
    );
    describe_counter!(
        "letschat_redis_reconnects_total",
        "Several instances: Redis subscriber reconnections after the first connection (each \
         followed by a recheck of every connection's rooms)."
    );
}

/// Counts each request of the public server by its status class (the outermost middleware,
/// so refusals by the connection cap and the body deadline count too).
pub async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let result = next.call(req).await;
    if let Some(state) = state {
        let status = match &result {
            Ok(res) => res.status(),
            Err(e) => e.as_response_error().status_code(),
        };
        state.metrics.http.count(status);
    }
    result
}
