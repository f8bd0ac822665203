//! `GET /api/ws`: the origin check and the upgrade; the session itself is in `session.rs`.

pub mod protocol;
pub mod session;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::auth::extractor::bearer_token;
use crate::error::ApiError;
use crate::services::accounts;
use crate::state::AppState;

/// Where clients open the WebSocket.
pub const PATH: &str = "/api/ws";

/// Largest frame a client may send; a bigger one closes the connection with 1009.
pub const MAX_FRAME: usize = 64 * 1024;

/// Browsers send `Origin`; it must be this server's own origin or an allowed one. Native
/// clients send none and are allowed.
fn origin_allowed(req: &HttpRequest, allowed: &[String]) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    let info = req.connection_info();
    let own = format!("{}://{}", info.scheme(), info.host()).to_ascii_lowercase();
    origin == own || allowed.iter().any(|a| a.trim_end_matches('/') == origin)
}

pub async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !origin_allowed(&req, &state.config.ws.allowed_origins) {
        return Err(ApiError::Forbidden(
            "this origin may not open the WebSocket".into(),
        ));
    }
    let (response, session, stream) = actix_ws::handle(&req, body).map_err(not_an_upgrade)?;
    // A token in the header is checked now; its verdict (even a refusal) is given as a frame.
    let header_auth = match bearer_token(&req) {
        Some(token) => Some(accounts::authenticate(&state, token).await),
        None => None,
    };
    let stream = stream
        .max_frame_size(MAX_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME);
    actix_web::rt::spawn(session::run(
        state.into_inner(),
        session,
        stream,
        header_auth,
    ));
    Ok(response)
}

/// Why a request to the WebSocket path is not an upgrade it can take: 426 `upgrade_required`
/// (with `Upgrade: websocket`) for a plain request and for an upgrade this server cannot
/// complete (no key, another protocol version).
fn not_an_upgrade(e: actix_web::Error) -> ApiError {
    use actix_http::ws::HandshakeError;
    let why = match e.as_error::<HandshakeError>() {
        Some(HandshakeError::NoWebsocketUpgrade | HandshakeError::NoConnectionUpgrade) | None => {
            "this endpoint only serves WebSocket connections: send the upgrade request \
             ('Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13' and a \
             'Sec-WebSocket-Key'); see docs/websocket.md"
        }
        Some(HandshakeError::NoVersionHeader | HandshakeError::UnsupportedVersion) => {
            "a WebSocket upgrade needs 'Sec-WebSocket-Version: 13'"
        }
        Some(HandshakeError::BadWebsocketKey) => {
            "a WebSocket upgrade needs a valid 'Sec-WebSocket-Key' (16 random bytes, base64)"
        }
        Some(HandshakeError::GetMethodRequired) => "a WebSocket upgrade is a GET request",
    };
    ApiError::UpgradeRequired(why.to_owned())
}
