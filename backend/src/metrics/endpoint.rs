//! `GET /metrics` on its own address (`LETSCHAT_METRICS_BIND`): a one-worker actix server
//! beside the public one, started and stopped with the application. Nothing else is served
//! there, and the public server answers `/metrics` with 404: the figures never reach the
//! public address.

use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpResponse, HttpServer};

use crate::state::AppState;

/// The content type of the Prometheus text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// How often histogram samples are folded into their buckets between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(1);

/// The endpoint, bound and not yet serving.
pub struct Endpoint {
    server: Server,
    addr: SocketAddr,
    upkeep: mpsc::Sender<()>,
}

/// The endpoint while it serves.
pub struct Running {
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Dropped with the endpoint: the upkeep thread then ends.
    _upkeep: mpsc::Sender<()>,
}

impl Endpoint {
    /// Binds `addr` and starts the upkeep thread; serving starts with [`Endpoint::spawn`].
    pub fn bind(addr: SocketAddr, state: AppState) -> std::io::Result<Endpoint> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let (upkeep, stop) = mpsc::channel::<()>();
        let metrics = state.metrics.clone();
        std::thread::Builder::new()
            .name("letschat-metrics".into())
            // Off the async executors: folding a busy second's samples takes a few ms.
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(UPKEEP_EVERY) {
                    metrics.upkeep();
                }
            })?;
        let data = web::Data::new(state);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .service(web::resource("/metrics").route(web::get().to(scrape)))
                .default_service(web::to(not_found))
        })
        .workers(1)
        .backlog(64)
        .max_connections(64)
        .shutdown_timeout(1)
        .disable_signals()
        .listen(listener)?
        .run();
        Ok(Endpoint {
            server,
            addr,
            upkeep,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves on the current runtime until [`Running::stop`].
    pub fn spawn(self) -> Running {
        let handle = self.server.handle();
        Running {
            handle,
            task: tokio::spawn(self.server),
            _upkeep: self.upkeep,
        }
    }
}

impl Running {
    /// Stops serving (a scrape in progress finishes) and ends the upkeep thread.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        if let Ok(Err(e)) = self.task.await {
            tracing::warn!(error = %e, "the metrics endpoint stopped with an error");
        }
    }
}

async fn scrape(state: web::Data<AppState>) -> HttpResponse {
    let text = state.metrics.render(
        state.db.pool_stats(),
        state.broker.connections(),
        state.broker.cluster_stats(),
    );
    match text {
        Some(text) => HttpResponse::Ok().content_type(CONTENT_TYPE).body(text),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().finish()
}
