//! Builds the application from a `Config`: database, state, routes, and a bound server (port 0
//! picks a free port, for tests).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App, HttpResponse, HttpServer};
use tokio::sync::watch;
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::{scope, AppExt};
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use crate::api::{self, json, RouteTable};
use crate::asyncapi::page as asyncapi;
use crate::auth::{AuthRateLimits, PasswordHasher, TokenService};
use crate::broker::{InstanceId, MemoryBroker, SharedBroker};
use crate::cluster_presence::{ClusterPresence, PresenceConfig};
use crate::config::Config;
use crate::db::Db;
use crate::http_limits::{self, ConnectionCounter};
use crate::metrics::endpoint::Endpoint;
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::services::writer::Writer;
use crate::state::AppState;
use crate::telemetry::RequestSpan;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Db(#[from] crate::db::DbInitError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

pub struct Application {
    port: u16,
    server: Server,
    /// `GET /metrics` on `LETSCHAT_METRICS_BIND`, when set.
    metrics: Option<Endpoint>,
    state: AppState,
    shutdown: watch::Sender<bool>,
}

impl Application {
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let config = Arc::new(config);
        let (url, pool_size) = (config.database_url.clone(), config.db_pool_size);
        let db = tokio::task::spawn_blocking(move || Db::connect(&url, pool_size))
            .await
            .map_err(|e| StartupError::Other(e.to_string()))??;
        let hasher_config = crate::auth::password::HasherConfig {
            cost: config.bcrypt_cost,
            threads: config.hash_concurrency,
            fairness: crate::auth::password::Fairness {
                capacity: config.hash_queue,
                per_prefix: config.hash_per_prefix,
                per_address: config.hash_per_address,
            },
            max_wait: config.hash_max_wait,
            public_pace: {
                let share = f64::from(config.hash_public_share) / 100.0;
                crate::auth::password::PublicPace {
                    share,
                    burst: Duration::from_secs(1),
                    // After any spell, public hashing resumes within `LETSCHAT_HASH_MAX_WAIT`.
                    max_debt: config.hash_max_wait.mul_f64(share),
                }
            },
        };
        let hasher = tokio::task::spawn_blocking(move || PasswordHasher::new(hasher_config))
            .await
            .map_err(|e| StartupError::Other(e.to_string()))?
            .map_err(|e| StartupError::Other(format!("bcrypt: {e}")))?;
        let metrics = Arc::new(match config.metrics_bind {
            Some(_) => Metrics::prometheus().map_err(StartupError::Other)?,
            None => Metrics::disabled(),
        });
        let instance = InstanceId::random();
        tracing::info!(%instance, "server instance");
        let broker: SharedBroker = match &config.redis {
            None => Arc::new(MemoryBroker::start_with_metrics(
                instance,
                metrics.broker.clone(),
            )),
            Some(redis) => {
                tracing::info!(prefix = %redis.prefix, "events cross instances through Redis");
                Arc::new(
                    crate::broker::redis::RedisBroker::start(
                        instance,
                        redis,
                        metrics.broker.clone(),
                    )
                    .map_err(|e| StartupError::Other(e.to_string()))?,
                )
            }
        };
        let presence = Presence::default();
        let cluster_presence = match &config.redis {
            None => None,
            Some(redis) => Some(
                ClusterPresence::connect(
                    PresenceConfig {
                        url: redis.url.clone(),
                        prefix: redis.prefix.clone(),
                        instance: instance.0,
                        ttl: crate::cluster_presence::ENTRY_TTL,
                    },
                    presence.clone(),
                )
                .map_err(StartupError::Other)?,
            ),
        };
        let uploads = crate::services::uploads::Uploads::start(&config.uploads, &config.jwt_secret)
            .map_err(|e| StartupError::Other(format!("cannot start the upload threads: {e}")))?;
        let writer = Writer::start(
            db.clone(),
            Arc::clone(&broker),
            metrics.writer.clone(),
            uploads.links().clone(),
        )
        .map_err(|e| StartupError::Other(format!("cannot start the message writer: {e}")))?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let state = AppState {
            uploads,
            db,
            hasher,
            broker,
            writer,
            heavy: crate::services::heavy::HeavyLimiter::new(&config.heavy),
            changes: crate::services::change_limit::ChangeLimiter::new(config.max_changes_per_sec),
            shutdown: shutdown_rx,
            tokens: TokenService::new(&config.jwt_secret, config.token_ttl),
            limits: AuthRateLimits::new(&config.auth_limits),
            cluster_presence,
            presence,
            open_sessions: crate::presence::OpenSessions::default(),
            config: Arc::clone(&config),
            metrics,
        };

        let listener = listen(config.bind).map_err(|source| StartupError::Bind {
            addr: config.bind.to_string(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| StartupError::Other(e.to_string()))?
            .port();

        let spec = crate::openapi::build();
        let published = web::Data::new(asyncapi::Published::new());
        let table = web::Data::new(RouteTable::from_openapi(&spec));
        let data = web::Data::new(state.clone());
        let static_dir = config.static_dir.clone();
        let serve_sourcemaps = config.web.serve_sourcemaps;
        let delivery = web::Data::new(crate::web::Delivery::new(&config.web));
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(table.clone())
                .app_data(delivery.clone())
                .app_data(web::QueryConfig::default().error_handler(json::query_error))
                .app_data(web::PathConfig::default().error_handler(json::path_error))
                // Swagger UI and the spec before the `/api` scope, which would take their paths;
                // the WebSocket reference before Swagger UI, which takes all of `/api/docs/`.
                .route("/api/docs", web::get().to(docs_redirect))
                .app_data(published.clone())
                .route(
                    crate::openapi::ASYNCAPI_JSON,
                    web::get().to(asyncapi::document),
                )
                .route(
                    crate::openapi::WEBSOCKET_DOCS,
                    web::get().to(asyncapi::page),
                )
                .route(asyncapi::STYLESHEET, web::get().to(asyncapi::stylesheet))
                .route(crate::ws::PATH, web::get().to(crate::ws::upgrade))
                // Metrics are served on their own address only; a scraper pointed here gets a
                // 404 rather than the web app's page.
                .route("/metrics", web::to(api::fallback))
                .service(
                    SwaggerUi::new("/api/docs/{_:.*}")
                        .url("/api/openapi.json", spec.clone())
                        // No badge from validator.swagger.io: the docs load nothing from
                        // elsewhere (and their policy would refuse it).
                        .config(SwaggerConfig::from("/api/openapi.json").validator_url("none")),
                )
                .into_utoipa_app()
                .service(
                    scope::scope("/api")
                        .configure(api::routes)
                        .default_service(web::to(api::fallback)),
                )
                .into_app()
                .configure(|cfg| crate::web::spa::configure(cfg, &static_dir, serve_sourcemaps))
                .wrap(ErrorHandlers::new().default_handler(api::json_errors))
                .wrap(from_fn(api::head_as_get))
                // One line per request; the WebSocket upgrade's is logged when it is answered.
                .wrap(TracingLogger::<RequestSpan>::new())
                // Before the request is logged or routed and any extractor reads a body: the
                // connection cap, the sign-in limits per address, and the body deadline.
                .wrap(from_fn(http_limits::limit_requests))
                .wrap(from_fn(crate::metrics::count_requests))
                // Security headers, caching and compression of every answer above.
                .wrap(from_fn(crate::web::deliver))
        })
        // Before `listen`, which takes the callback as it is then.
        .on_connect(http_limits::on_connect(
            ConnectionCounter::default(),
            config.http.max_connections_per_ip,
            config.http.write_timeout,
            config.trusted_proxies.clone(),
        ))
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: config.bind.to_string(),
            source,
        })?
        // The first request's headers must arrive within this (408 and closed otherwise);
        // bodies have their own deadline (`limit_requests`).
        .client_request_timeout(config.http.header_timeout)
        .keep_alive(config.http.keep_alive)
        // After an early answer (a 408, or a body nobody read), keep reading and discarding for
        // a second before closing, so that the client gets the answer rather than a reset.
        .client_disconnect_timeout(Duration::from_secs(1))
        .shutdown_timeout(10)
        // actix accepts 25,000 connections per worker by default; the open-file limit is the
        // real bound for a chat server holding idle sockets.
        .max_connections(250_000)
        // Signals are handled in `run_until_stopped`, which closes WebSockets first.
        .disable_signals();
        if config.workers > 0 {
            server = server.workers(config.workers);
        }
        // Blocking tasks are database calls (which wait for one of `db_pool_size` connections)
        // and password hashes (at most `hash_concurrency` at once): more threads than that per
        // worker would only wait. actix's default, 512 / cores per worker, let a burst of
        // connections start hundreds of threads that each kept their own memory.
        server = server.worker_max_blocking_threads(
            (config.db_pool_size as usize).saturating_add(config.hash_concurrency),
        );
        let server = server.run();

        let metrics = config
            .metrics_bind
            .map(|addr| {
                Endpoint::bind(addr, state.clone()).map_err(|source| StartupError::Bind {
                    addr: addr.to_string(),
                    source,
                })
            })
            .transpose()?;

        spawn_housekeeping(state.clone());
        crate::services::uploads::sweep::spawn(state.clone());
        crate::services::sessions::spawn_presence_upkeep(Arc::new(state.clone()));
        crate::services::sessions::spawn_seen_upkeep(state.clone());
        Ok(Application {
            port,
            server,
            metrics,
            state,
            shutdown,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Where `GET /metrics` is served, when it is.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().map(Endpoint::addr)
    }

    /// Serves until SIGINT/SIGTERM: then closes every WebSocket with 1001, stops accepting and
    /// lets in-flight requests finish. The metrics endpoint serves until the server has stopped.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let metrics = self.metrics.map(Endpoint::spawn);
        let handle = self.server.handle();
        let shutdown = self.shutdown;
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            let _ = shutdown.send(true);
            // Give sessions a moment to send their close frames.
            tokio::time::sleep(Duration::from_millis(300)).await;
            handle.stop(true).await;
        });
        let stopped = self.server.await;
        if let Some(metrics) = metrics {
            metrics.stop().await;
        }
        stopped
    }
}

/// Raises the soft open-file limit as far as the hard limit allows (every WebSocket is a file
/// descriptor, and the usual soft default of 1024 caps a server far below what it can hold),
/// then logs the limit in force. Never fails: a limit that cannot be raised is kept.
pub fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        // Linux refuses a limit above fs.nr_open even when the hard limit is unlimited.
        let ceiling = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        match rlimit::increase_nofile_limit(ceiling) {
            Ok(limit) => tracing::info!(limit, "open-file limit"),
            Err(e) => {
                let limit = rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft);
                tracing::warn!(limit, error = %e, "cannot raise the open-file limit");
            }
        }
    }
}

/// A listening socket with a deep accept queue (std's default of 128 overflows when thousands of
/// clients reconnect at once, e.g. after a restart).
fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)?.into_std()
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/api/docs/"))
        .finish()
}

/// Periodic clean-up: forget idle rate-limit state every minute and, hourly, the sessions (and
/// old-style revocations) of expired tokens; log the count of refused requests the request log
/// skipped.
fn spawn_housekeeping(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        let mut minutes: u64 = 0;
        loop {
            tick.tick().await;
            state.limits.purge();
            state.changes.purge();
            crate::telemetry::log_refusals_not_logged();
            if minutes.is_multiple_of(60) {
                match state.db.run(crate::db::tokens::purge_expired).await {
                    Ok(n) if n > 0 => {
                        tracing::info!(purged = n, "purged expired sessions and token revocations")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "purging expired sessions and token revocations failed")
                    }
                }
            }
            minutes += 1;
        }
    });
}
