//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`); JSON lines when
//! `LETSCHAT_LOG_FORMAT=json`, else text, coloured only when stderr is a terminal (and
//! `NO_COLOR` is unset), so that a log written to a file or a journal holds no escape codes.
//! One line per HTTP request (`RequestSpan`), naming the client address the rate limits use
//! ([`crate::client_addr::client_ip`]).

use std::io::IsTerminal;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::HttpMessage;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};
use tracing_subscriber::EnvFilter;

/// Starts logging with `filter` (`RUST_LOG`; `info` when unset or empty) in `format`
/// (`LETSCHAT_LOG_FORMAT`: `text`, the default, or `json`). An invalid value is an error naming
/// its variable.
pub fn init(filter: Option<&str>, format: Option<&str>) -> Result<(), String> {
    let filter = match filter.map(str::trim).filter(|f| !f.is_empty()) {
        None => EnvFilter::new("info"),
        Some(f) => EnvFilter::try_new(f).map_err(|e| format!("invalid RUST_LOG: '{f}': {e}"))?,
    };
    let json = match format.map(|f| f.trim().to_ascii_lowercase()).as_deref() {
        None | Some("" | "text") => false,
        Some("json") => true,
        Some(other) => {
            return Err(format!(
                "invalid LETSCHAT_LOG_FORMAT: '{other}' is not text or json"
            ))
        }
    };
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let result = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // Already initialised (tests start several servers in one process): keep the first.
    drop(result);
    Ok(())
}

/// Refused requests (429, 408, 503) logged one by one, per second and in a burst; past this
/// they are counted, and the count is logged with the next refusal that is (`not_logged`) or by
/// [`log_refusals_not_logged`]. A flood of refused requests then adds a few lines a second to
/// the log, not one per request: it cannot fill the disk.
const REFUSALS_PER_SEC: u32 = 10;
const REFUSALS_BURST: u32 = 50;

struct RefusalLog {
    limiter: DefaultDirectRateLimiter,
    not_logged: AtomicU64,
}

static REFUSALS: LazyLock<RefusalLog> = LazyLock::new(|| RefusalLog {
    limiter: RateLimiter::direct(
        Quota::per_second(NonZeroU32::new(REFUSALS_PER_SEC).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(REFUSALS_BURST).unwrap_or(NonZeroU32::MIN)),
    ),
    not_logged: AtomicU64::new(0),
});

fn is_refusal(status: u16) -> bool {
    matches!(status, 408 | 429 | 503)
}

/// Logs how many refused requests went unlogged since the last line about them, if any (the
/// housekeeping task calls this every minute, so a flood's count is logged after it ends).
pub fn log_refusals_not_logged() {
    let n = REFUSALS.not_logged.swap(0, Ordering::Relaxed);
    if n > 0 {
        tracing::info!(
            not_logged = n,
            "refused requests (408, 429, 503) not logged one by one"
        );
    }
}

/// The request log: one line per HTTP request, written when its answer is ready (the root span
/// of `tracing_actix_web::TracingLogger` gives the request's own log lines their context; it is
/// not itself logged). The WebSocket upgrade gets no span: that response's body is the socket's
/// whole outgoing stream, and the logger enters the root span around every poll of the body, so
/// the span would live as long as the connection and every frame sent would pay for entering
/// and leaving it.
pub struct RequestSpan;

/// When a request came in (a request extension), for its log line.
struct Started {
    at: Instant,
    upgrade: bool,
}

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let upgrade = request.path() == crate::ws::PATH;
        request.extensions_mut().insert(Started {
            at: Instant::now(),
            upgrade,
        });
        if upgrade {
            return Span::none();
        }
        root_span(request)
    }

    /// Nothing is recorded on the span (`DefaultRootSpanBuilder` would format the status and
    /// each error's `Display` and `Debug` into it, for every refusal of a flood too): the
    /// request's log line carries them.
    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        match outcome {
            Ok(response) => log_request(response),
            // A middleware's failure: no response yet, so the request's fields come from its
            // span.
            Err(e) => log_failed(&span, e),
        }
    }
}

/// The request's span: what a line logged while handling a request needs to say which request
/// it was (method, route, the client's address as the server goes by it, and the request id,
/// which finds the request's own line with the rest: path and query, user agent, status, time).
/// Every request pays for formatting these fields, a flood of refused ones included, so there
/// are no more than that.
fn root_span(request: &ServiceRequest) -> Span {
    let route = request.match_pattern();
    let route = route.as_deref().unwrap_or("default");
    let request_id = request.extensions().get::<RequestId>().copied();
    let client_ip = crate::client_addr::client_ip(request.request());
    tracing::info_span!(
        "HTTP request",
        http.method = %request.method(),
        http.route = %route,
        http.client_ip = %client_ip,
        request_id = request_id.map(tracing::field::display),
    )
}

/// Whether a refused request's line may be written; if so, how many went unlogged before it.
fn refusal_turn(status: u16) -> Option<u64> {
    if !is_refusal(status) {
        return Some(0);
    }
    if REFUSALS.limiter.check().is_err() {
        REFUSALS.not_logged.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    Some(REFUSALS.not_logged.swap(0, Ordering::Relaxed))
}

fn log_failed(span: &Span, e: &actix_web::Error) {
    let status = e.as_response_error().status_code();
    let Some(not_logged) = refusal_turn(status.as_u16()) else {
        return;
    };
    macro_rules! line {
        ($level:expr) => {
            tracing::event!(
                parent: span,
                $level,
                http.status_code = status.as_u16(),
                exception.message = %e,
                not_logged = (not_logged > 0).then_some(not_logged),
                "HTTP request"
            )
        };
    }
    if status.is_server_error() {
        line!(tracing::Level::ERROR);
    } else {
        line!(tracing::Level::INFO);
    }
}

/// The request's log line (refusals: a few a second, the rest counted). The request logger
/// writes it when the answer is ready; `http_limits::limit_requests` for the requests it refuses
/// before the logger sees them (no request id then).
pub fn log_request<B>(response: &ServiceResponse<B>) {
    let req = response.request();
    let (elapsed, upgrade) = req
        .extensions()
        .get::<Started>()
        .map(|s| (s.at.elapsed(), s.upgrade))
        .unwrap_or_default();
    let status = response.status().as_u16();
    let Some(not_logged) = refusal_turn(status) else {
        return;
    };
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(ToString::to_string)
        .unwrap_or_default();
    let client_ip = crate::client_addr::client_ip(req);
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let error = response.response().error().map(ToString::to_string);
    let route = req.match_pattern();
    let what = if upgrade {
        "WebSocket upgrade"
    } else {
        "HTTP request"
    };
    macro_rules! line {
        ($level:expr) => {
            tracing::event!(
                parent: None,
                $level,
                http.method = %req.method(),
                http.route = %route.as_deref().unwrap_or(""),
                http.target = %req.uri().path_and_query().map(|p| p.as_str()).unwrap_or(""),
                http.client_ip = %client_ip,
                http.user_agent = %user_agent,
                http.status_code = status,
                exception.message = error,
                not_logged = (not_logged > 0).then_some(not_logged),
                request_id = %request_id,
                elapsed = ?elapsed,
                "{what}"
            )
        };
    }
    if response.status().is_server_error() {
        line!(tracing::Level::ERROR);
    } else {
        line!(tracing::Level::INFO);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use actix_web::{test, web, App, HttpResponse};
    use tracing_actix_web::TracingLogger;

    use super::*;

    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);

    impl Write for Log {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    async fn in_span() -> HttpResponse {
        HttpResponse::Ok().body(if Span::current().is_none() {
            "none"
        } else {
            "span"
        })
    }

    async fn refused() -> HttpResponse {
        HttpResponse::TooManyRequests().finish()
    }

    fn capture() -> (Log, impl tracing::Subscriber) {
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        (log, subscriber)
    }

    #[actix_web::test]
    async fn one_line_per_request_and_one_for_the_websocket_upgrade_without_a_span() {
        let (log, subscriber) = capture();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new()
                .route(crate::ws::PATH, web::get().to(in_span))
                .route("/api/health", web::get().to(in_span))
                .wrap(TracingLogger::<RequestSpan>::new()),
        )
        .await;
        for (path, expected) in [(crate::ws::PATH, "none"), ("/api/health", "span")] {
            let req = test::TestRequest::with_uri(path).to_request();
            let body = test::call_and_read_body(&app, req).await;
            assert_eq!(body, expected, "{path}");
        }
        let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert_eq!(text.matches("WebSocket upgrade").count(), 1, "{text}");
        assert_eq!(text.matches("HTTP request").count(), 1, "{text}");
        assert_eq!(text.matches("http.status_code=200").count(), 2, "{text}");
        assert!(text.contains("http.route=/api/health"), "{text}");
        assert!(text.contains("elapsed="), "{text}");
    }

    #[actix_web::test]
    async fn a_flood_of_refused_requests_is_logged_as_a_few_lines_and_a_count() {
        let (log, subscriber) = capture();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new()
                .route("/api/auth/login", web::post().to(refused))
                .route("/api/rooms", web::get().to(in_span))
                // Refusals by a middleware reach the logger as errors, not responses.
                .wrap(actix_web::middleware::from_fn(
                    |req: ServiceRequest, next: actix_web::middleware::Next<_>| async move {
                        if req.path() == "/api/rooms" {
                            return Err(actix_web::error::ErrorTooManyRequests("slow down"));
                        }
                        next.call(req).await
                    },
                ))
                .wrap(TracingLogger::<RequestSpan>::new())
                // Refusals before the logger (as `http_limits::limit_requests` gives them) are
                // logged with `log_request`, on the same terms.
                .wrap(actix_web::middleware::from_fn(
                    |req: ServiceRequest, next: actix_web::middleware::Next<_>| async move {
                        if req.path() == "/api/auth/register" {
                            let res = req.into_response(HttpResponse::from_error(
                                crate::error::ApiError::RateLimited {
                                    retry_after_secs: 1,
                                },
                            ));
                            log_request(&res);
                            return Ok(res.map_into_right_body());
                        }
                        Ok(next.call(req).await?.map_into_left_body())
                    },
                )),
        )
        .await;
        const SENT: u64 = 3_000;
        for i in 0..SENT {
            let req = match i % 3 {
                0 => test::TestRequest::post().uri("/api/auth/login"),
                1 => test::TestRequest::get().uri("/api/rooms"),
                _ => test::TestRequest::post().uri("/api/auth/register"),
            };
            let status = match test::try_call_service(&app, req.to_request()).await {
                Ok(res) => res.status(),
                Err(e) => e.as_response_error().status_code(),
            };
            assert_eq!(status.as_u16(), 429);
        }
        log_refusals_not_logged();
        let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        let lines = text.lines().filter(|l| l.contains("=429")).count() as u64;
        assert!(text.contains("exception.message=slow down"), "{text}");
        assert!(text.contains("http.target=/api/auth/register"), "{text}");
        // The burst, plus what the rate refilled while the test ran (well under a second).
        assert!(
            lines >= u64::from(REFUSALS_BURST) && lines < u64::from(REFUSALS_BURST) * 2,
            "{lines} lines"
        );
        // Every request is accounted for: logged, or counted in a `not_logged` field.
        let counted: u64 = text
            .split("not_logged=")
            .skip(1)
            .map(|rest| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0)
            })
            .sum();
        assert_eq!(lines + counted, SENT, "{text}");
        assert!(
            text.contains("refused requests (408, 429, 503) not logged one by one"),
            "{text}"
        );
    }
}
