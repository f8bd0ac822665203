//! How every HTTP response reaches a browser: the security headers its kind of response
//! carries, how long it may be cached, and its compression. One middleware, [`deliver`], wraps
//! the whole app, so no handler sets any of this itself; [`spa`] serves the web client's files.
//!
//! Kinds of response, by path:
//! - the web client (everything outside `/api`): a strict Content-Security-Policy, immutable
//!   caching for the build's hashed assets and `no-cache` for the rest (`index.html` and the
//!   client-side routes that answer it);
//! - Swagger UI (`/api/docs/`): a policy of its own, as strict as its vendored files allow;
//! - the JSON API: `default-src 'none'` (no JSON answer is ever a document to render);
//! - file downloads (`/api/files/`): their own sandbox policy, kept; never compressed, so that
//!   their strong ETags and byte ranges keep naming the stored bytes;
//! - the WebSocket (`/api/ws`): untouched.

pub mod encoding;
pub mod spa;

use actix_http::encoding::Encoder;
use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web;

use crate::config::{is_authority, WebConfig};
use encoding::Coding;

/// The web client's policy, before its `connect-src`: its own scripts and styles only (the build
/// emits no inline script or style, and React sets `style` properties through the CSSOM, which
/// a policy does not govern), pictures also from `blob:` (previews of files being sent) and
/// `data:`, nothing embedded, no `<base>`, never framed, forms posted only home.
const SPA_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: data:; media-src 'self' blob:; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

/// Swagger UI's policy: its vendored files are three scripts and two stylesheets from this
/// server, no inline script; its icons are `data:` SVGs and it fetches the spec and the requests
/// one tries from here. Nothing else. (The online validator is off: `validatorUrl: "none"`.)
/// The one inline style is the `<style>` inside its logo's SVG, allowed by its hash
/// ([`DOCS_STYLE_HASHES`]; a test checks it against the vendored files).
const DOCS_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
     base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The hashes of the inline styles Swagger UI renders, as in [`DOCS_POLICY`]:
/// `.logo_small_svg__cls-2{fill:#fff}.logo_small_svg__cls-3{fill:#85ea2d}`.
pub const DOCS_STYLE_HASHES: [&str; 1] = ["sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w="];

/// JSON is never a document to render.
const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Powerful features a chat does not use, denied to the page and anything it could embed.
/// Only features Chromium knows: an unknown one is a console error there.
const PERMISSIONS_POLICY: &str = "accelerometer=(), autoplay=(), camera=(), \
     display-capture=(), geolocation=(), gyroscope=(), hid=(), idle-detection=(), \
     magnetometer=(), microphone=(), midi=(), payment=(), publickey-credentials-get=(), \
     screen-wake-lock=(), serial=(), usb=(), xr-spatial-tracking=(), browsing-topics=()";

/// Two years, as the HSTS preload list asks; without `includeSubDomains`, which would bind
/// every other site of the domain too.
const HSTS: &str = "max-age=63072000";

/// The build's hashed files may be kept for good: a new build has new names.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Everything else of the web client is revalidated on every load (a cheap 304), so that a new
/// build is picked up at once.
const NO_CACHE: &str = "no-cache";

/// Bodies smaller than this are sent as they are: compressing them saves less than a packet.
pub const MIN_COMPRESS_BYTES: u64 = 1024;

/// The headers of each kind of response, worked out once from the configuration.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The whole web client policy when `LETSCHAT_PUBLIC_URL` names the WebSocket's origin;
    /// otherwise it is completed per request with the request's own host.
    spa_policy: Option<HeaderValue>,
    hsts: bool,
    serve_sourcemaps: bool,
}

impl Delivery {
    pub fn new(config: &WebConfig) -> Delivery {
        let spa_policy = config.public_url.as_ref().and_then(|url| {
            HeaderValue::from_str(&format!(
                "{SPA_POLICY}; connect-src 'self' {}",
                url.websocket_origin()
            ))
            .ok()
        });
        Delivery {
            spa_policy,
            hsts: config.public_url.as_ref().is_some_and(|u| u.is_https()),
            serve_sourcemaps: config.serve_sourcemaps,
        }
    }

    /// Whether the web client's source maps are served (`LETSCHAT_SERVE_SOURCEMAPS`).
    pub fn serve_sourcemaps(&self) -> bool {
        self.serve_sourcemaps
    }

    /// The web client's policy for a request that named `host`: `'self'` does not cover
    /// `ws:`/`wss:` in every browser, so the WebSocket of the same host is named. A host that
    /// is not a plain host name or address (it came from the request) adds nothing.
    fn spa_policy(&self, host: &str) -> HeaderValue {
        if let Some(policy) = &self.spa_policy {
            return policy.clone();
        }
        let host = host.to_ascii_lowercase();
        let policy = if is_authority(&host) {
            format!("{SPA_POLICY}; connect-src 'self' ws://{host} wss://{host}")
        } else {
            format!("{SPA_POLICY}; connect-src 'self'")
        };
        HeaderValue::from_str(&policy)
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"))
    }
}

/// What a response is, by its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The web client: `index.html`, its assets and the client-side routes.
    Spa,
    /// Swagger UI under `/api/docs/`.
    Docs,
    /// The JSON API (and its errors).
    Api,
    /// Uploaded files' bytes under `/api/files/`.
    Files,
    /// `/api/ws`.
    WebSocket,
}

impl Kind {
    pub fn of(path: &str) -> Kind {
        if path == crate::ws::PATH {
            Kind::WebSocket
        } else if path.starts_with("/api/docs/") {
            Kind::Docs
        } else if path.starts_with("/api/files/") {
            Kind::Files
        } else if path == "/api" || path.starts_with("/api/") {
            Kind::Api
        } else {
            Kind::Spa
        }
    }
}

/// The middleware: security headers, caching and compression for every response but the
/// WebSocket's. Outermost, so that it also sees the answers of the other middleware (429s,
/// 408s, JSON errors).
pub async fn deliver(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<Delivered>, actix_web::Error> {
    let kind = Kind::of(req.path());
    let delivery = match req.app_data::<web::Data<Delivery>>() {
        Some(delivery) if kind != Kind::WebSocket => delivery.clone(),
        _ => {
            let res = next.call(req).await?;
            return Ok(res.map_into_boxed_body().map_into_left_body());
        }
    };
    let policy = match kind {
        Kind::Spa => delivery.spa_policy(request_host(&req)),
        Kind::Docs => HeaderValue::from_static(DOCS_POLICY),
        Kind::Api | Kind::Files | Kind::WebSocket => HeaderValue::from_static(API_POLICY),
    };
    let coding = match (kind, req.method()) {
        (Kind::Files, _) | (_, &Method::HEAD) => None,
        _ => encoding::preferred(req.headers()),
    };
    let hashed_asset = kind == Kind::Spa && spa::is_hashed_asset(req.path());
    // Handlers' errors arrive as responses; an `Err` here would be a middleware's own failure,
    // which actix answers without any of these headers (no handler of this app produces one).
    let mut res = next.call(req).await?.map_into_boxed_body();

    let status = res.status();
    let headers = res.headers_mut();
    set_common(headers, delivery.hsts);
    // Files keep their sandbox; an answer that brought a policy of its own keeps it.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    if matches!(kind, Kind::Spa | Kind::Docs) {
        // What only a document uses (scripts and styles would carry them for nothing: a few
        // hundred bytes each).
        let document = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/html"));
        if document {
            headers.insert(
                HeaderName::from_static("permissions-policy"),
                HeaderValue::from_static(PERMISSIONS_POLICY),
            );
            headers.insert(
                HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            );
        }
        let fresh = status.is_success() || status == StatusCode::NOT_MODIFIED;
        let cache = if hashed_asset && fresh {
            IMMUTABLE
        } else {
            NO_CACHE
        };
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    }
    if kind == Kind::Files {
        return Ok(res.map_into_left_body());
    }
    Ok(compress(res, coding))
}

/// The host the browser asked for: `Host` (HTTP/1.1), or the URI's authority (HTTP/2). Not
/// `X-Forwarded-Host` or `Forwarded`, which anyone can send and a shared cache may not key on.
fn request_host(req: &ServiceRequest) -> &str {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("")
}

/// The headers every answer carries.
fn set_common(headers: &mut HeaderMap, hsts: bool) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
}

/// A response as sent: its own body, or that body compressed.
type Delivered = EitherBody<BoxBody, Encoder<BoxBody>>;

/// Compresses `res` with `coding` when it is worth it: a text type, a body of at least
/// [`MIN_COMPRESS_BYTES`] (or of a size not known in advance), not already encoded (the
/// build's precompressed assets) and not a range. Whatever could be compressed says
/// `Vary: Accept-Encoding`, compressed this time or not.
fn compress(
    mut res: ServiceResponse<BoxBody>,
    coding: Option<Coding>,
) -> ServiceResponse<Delivered> {
    let compressible = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(encoding::is_compressible_type);
    let large = match res.response().body().size() {
        BodySize::Sized(n) => n >= MIN_COMPRESS_BYTES,
        BodySize::Stream => true,
        BodySize::None => false,
    };
    let coding = coding.filter(|_| {
        compressible
            && large
            && res.status() != StatusCode::PARTIAL_CONTENT
            && !res.headers().contains_key(header::CONTENT_ENCODING)
    });
    let Some(coding) = coding else {
        if compressible {
            encoding::vary_on_accept_encoding(res.headers_mut());
        }
        return res.map_into_left_body();
    };
    // The compressed bytes are another representation of the same content: a strong ETag
    // becomes weak, which still revalidates (`If-None-Match` compares weakly), and its byte
    // ranges are not offered (a range is answered from the file as it is). The encoder adds
    // `Vary: accept-encoding`.
    encoding::weaken_etag(res.headers_mut());
    res.headers_mut().remove(header::ACCEPT_RANGES);
    res.map_body(move |head, body| {
        EitherBody::right(Encoder::response(coding.content_encoding(), head, body))
    })
}
