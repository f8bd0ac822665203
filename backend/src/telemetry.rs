//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`); JSON lines when
//! `LETSCHAT_LOG_FORMAT=json`. One line per HTTP request (`RequestSpan`).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::HttpMessage;
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LETSCHAT_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // One line per request when its span closes, with the time it took.
        .with_span_events(FmtSpan::CLOSE);
    let result = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // Already initialised (tests start several servers in one process): keep the first.
    drop(result);
}

/// The request log's root span (for `tracing_actix_web::TracingLogger`): the default one, logged
/// when it closes, except for the WebSocket upgrade. That response's body is the socket's whole
/// outgoing stream, and the logger enters the root span around every poll of the body: the span
/// would live as long as the connection, and every frame sent would pay for entering and
/// leaving it. So the upgrade gets no span, and one line is logged when the handler answers.
pub struct RequestSpan;

/// When an upgrade request came in (a request extension), for its log line.
struct UpgradeStarted(Instant);

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        if request.path() == crate::ws::PATH {
            request
                .extensions_mut()
                .insert(UpgradeStarted(Instant::now()));
            return Span::none();
        }
        DefaultRootSpanBuilder::on_request_start(request)
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        if let Ok(response) = outcome {
            let started = response
                .request()
                .extensions()
                .get::<UpgradeStarted>()
                .map(|s| s.0);
            if let Some(started) = started {
                log_upgrade(response, started);
                return;
            }
        }
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

fn log_upgrade<B>(response: &ServiceResponse<B>, started: Instant) {
    let req = response.request();
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(ToString::to_string)
        .unwrap_or_default();
    let info = req.connection_info();
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let error = response.response().error().map(ToString::to_string);
    tracing::info!(
        http.method = %req.method(),
        http.target = %req.uri().path_and_query().map(|p| p.as_str()).unwrap_or(""),
        http.client_ip = %info.realip_remote_addr().unwrap_or(""),
        http.user_agent = %user_agent,
        http.status_code = response.status().as_u16(),
        exception.message = error,
        request_id = %request_id,
        elapsed = ?started.elapsed(),
        "WebSocket upgrade"
    );
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

    #[actix_web::test]
    async fn the_websocket_upgrade_is_logged_once_without_a_request_span() {
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_span_events(FmtSpan::CLOSE)
            .with_ansi(false)
            .finish();
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
        assert_eq!(text.matches("WebSocket upgrade").count(), 1, "{text}");
        assert!(text.contains("http.status_code=200"), "{text}");
        assert_eq!(text.matches("HTTP request").count(), 1, "{text}");
        assert!(text.contains("http.route=/api/health"), "{text}");
    }
}
