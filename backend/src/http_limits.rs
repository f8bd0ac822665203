//! Bounds on what one HTTP connection can hold: a per-client-address cap on concurrent
//! connections, a write timeout for clients that stop reading (the socket's `TCP_USER_TIMEOUT`),
//! and a deadline for request bodies. See README, "Limits".
//!
//! Connections are counted when they are accepted, before any request (and so any forwarding
//! header) has arrived: by their TCP peer. A trusted reverse proxy (`LETSCHAT_TRUSTED_PROXIES`)
//! carries many clients' connections, so its own are not counted; the proxy is where
//! connections per client are bounded then (nginx: `limit_conn`).

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Extensions, Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage, HttpResponse};
use futures_util::Stream;

use crate::client_addr::TrustedProxies;
use crate::error::ApiError;
use crate::state::AppState;

/// The address a connection counts against: an IPv4 address, or the /64 of an IPv6 one (one
/// host usually holds a whole /64, so counting single IPv6 addresses would bound nothing).
/// IPv4-mapped IPv6 addresses (a dual-stack listener) count as the IPv4 address.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Open connections per client address, shared by every worker.
#[derive(Debug, Clone, Default)]
pub struct ConnectionCounter {
    open: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

impl ConnectionCounter {
    /// Counts a new connection from `ip`; the slot gives it back when dropped (with the
    /// connection). A connection past `cap` is still counted while it is open, so that a client
    /// cannot open more by having them refused.
    pub fn acquire(&self, ip: IpAddr, cap: u32) -> ConnectionSlot {
        let key = client_key(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        let over_cap = *n > cap;
        ConnectionSlot {
            counter: self.clone(),
            key,
            over_cap,
        }
    }

    /// Connections open from `ip`'s address (or /64).
    pub fn open(&self, ip: IpAddr) -> u32 {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&client_key(ip)).copied().unwrap_or(0)
    }
}

/// One counted connection, kept in the connection's extensions; released on drop.
#[derive(Debug)]
pub struct ConnectionSlot {
    counter: ConnectionCounter,
    key: IpAddr,
    over_cap: bool,
}

impl ConnectionSlot {
    /// Whether the client already held its maximum of connections when this one opened.
    pub fn over_cap(&self) -> bool {
        self.over_cap
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self
            .counter
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The `HttpServer::on_connect` callback: sets the socket's write timeout and counts the
/// connection against its client address, unless that is a trusted proxy.
pub fn on_connect(
    counter: ConnectionCounter,
    cap: u32,
    write_timeout: Duration,
    trusted: TrustedProxies,
) -> impl Fn(&dyn Any, &mut Extensions) + Send + Sync + 'static {
    move |io: &dyn Any, ext: &mut Extensions| {
        let Some(stream) = io.downcast_ref::<actix_web::rt::net::TcpStream>() else {
            return;
        };
        set_write_timeout(stream, write_timeout);
        match stream.peer_addr() {
            Ok(peer) if trusted.contains(peer.ip()) => {}
            Ok(peer) => {
                ext.insert(counter.acquire(peer.ip(), cap));
            }
            Err(e) => tracing::debug!(error = %e, "connection without a peer address"),
        }
    }
}

/// Sent data that the peer does not acknowledge for `timeout` drops the connection; on Linux
/// this includes a peer that keeps its receive window at zero (it stopped reading), so a
/// response to such a client is not held in memory past the timeout.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
fn set_write_timeout(stream: &actix_web::rt::net::TcpStream, timeout: Duration) {
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_user_timeout(Some(timeout)) {
        tracing::warn!(error = %e, "cannot set TCP_USER_TIMEOUT");
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "fuchsia")))]
fn set_write_timeout(_: &actix_web::rt::net::TcpStream, _: Duration) {}

/// The path of `POST /api/uploads`, whose body has `LETSCHAT_UPLOAD_BODY_TIMEOUT`.
pub const UPLOAD_PATH: &str = "/api/uploads";

/// A request answered without its body being read (a refusal, a failed sign-in check, a
/// missing token) has that body read and dropped after the handler when it is at most this
/// long …
const UNREAD_BODY_MAX: u64 = 4096;
/// … and complete within this: actix closes a connection whose request body was left unread,
/// so every early answer would otherwise cost the client (and the server) a new connection. A
/// body declared longer, sent in chunks of unknown total or not complete in time is left, and
/// the connection closes after the answer.
const UNREAD_BODY_WAIT: Duration = Duration::from_millis(200);

/// Whether a request's body, if left unread, may be read and dropped (see [`UNREAD_BODY_MAX`]).
fn small_body(headers: &actix_web::http::header::HeaderMap) -> bool {
    use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    !headers.contains_key(TRANSFER_ENCODING)
        && headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n <= UNREAD_BODY_MAX)
}

/// Middleware, run before the request is logged, routed or any extractor runs: refuses
/// requests on a connection over its address's cap (429, closed, before any body is read) and
/// sign-ins over their address's or network's limit (429; see
/// [`crate::api::auth::sign_in_refused`]), and puts the request body under the body deadline.
/// Its refusals are logged here, a few a second like every refusal
/// ([`crate::telemetry::log_request`]): a flood of them costs no more than it must.
pub async fn limit_requests<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    if req
        .conn_data::<ConnectionSlot>()
        .is_some_and(ConnectionSlot::over_cap)
    {
        let mut res = HttpResponse::from_error(ApiError::RateLimited {
            retry_after_secs: 1,
        });
        res.head_mut().set_connection_type(ConnectionType::Close);
        let res = req.into_response(res);
        crate::telemetry::log_request(&res);
        return Ok(res.map_into_right_body());
    }
    if let Some(refused) = crate::api::auth::sign_in_refused(&req) {
        // The body is not wanted.
        let drainable = small_body(req.headers());
        let unread = UnreadBody(Rc::new(RefCell::new(req.take_payload())));
        let res = req.into_response(HttpResponse::from_error(refused));
        crate::telemetry::log_request(&res);
        let res = after_unread_body(res, unread, drainable).await;
        return Ok(res.map_into_boxed_body().map_into_right_body());
    }
    // Uploads are large: they have a deadline of their own.
    let upload = req.path() == UPLOAD_PATH;
    let timeout = req.app_data::<web::Data<AppState>>().map(|s| {
        if upload {
            s.config.uploads.body_timeout
        } else {
            s.config.http.body_timeout
        }
    });
    // A WebSocket's frames arrive as its upgrade request's body: they are not a request body.
    let websocket = req.path() == crate::ws::PATH && req.head().upgrade();
    let unread = match (timeout, req.take_payload()) {
        (_, Payload::None) => None,
        (Some(timeout), payload) if !websocket => {
            let shared = Rc::new(RefCell::new(payload));
            req.set_payload(Payload::Stream {
                payload: Box::pin(DeadlineBody {
                    inner: Rc::clone(&shared),
                    deadline: Box::pin(tokio::time::sleep(timeout)),
                    timeout,
                    done: false,
                }),
            });
            Some(UnreadBody(shared))
        }
        (_, payload) => {
            req.set_payload(payload);
            None
        }
    };
    let Some(unread) = unread else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let drainable = small_body(req.headers());
    // Whatever the handler left of a small body is read and dropped (nothing, when it read it
    // all), so the connection can carry the client's next request.
    let res = match next.call(req).await {
        Ok(res) => res,
        Err(e) => {
            if drainable {
                unread.drain(UNREAD_BODY_WAIT).await;
            }
            return Err(e);
        }
    };
    Ok(after_unread_body(res, unread, drainable).await)
}

/// `res`, once what is left of its request's body is read and dropped when `drainable` (small),
/// so that the connection carries the client's next request. Otherwise the body is held with
/// the response until it is sent, so that actix sees a request body nobody read as unfinished
/// (rather than dropped, which it would drain for as long as the client sends chunks) and
/// closes the connection after the response.
async fn after_unread_body<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
    unread: UnreadBody,
    drainable: bool,
) -> ServiceResponse<EitherBody<B>> {
    if drainable && unread.drain(UNREAD_BODY_WAIT).await {
        return res.map_into_left_body();
    }
    res.map_body(|_, body| {
        BoxBody::new(HoldingBody {
            body: BoxBody::new(body),
            _unread: unread,
        })
    })
    .map_into_right_body()
}

/// A response body that keeps its request's unread body alive until it is sent.
struct HoldingBody {
    body: BoxBody,
    _unread: UnreadBody,
}

impl MessageBody for HoldingBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

/// The original body stream of a request, kept alive with its response.
struct UnreadBody(Rc<RefCell<Payload>>);

impl UnreadBody {
    /// Reads the rest of the body (its length was checked by [`small_body`]) and drops it;
    /// whether it was read to its end within `wait`.
    async fn drain(&self, wait: Duration) -> bool {
        let payload = Rc::clone(&self.0);
        let read_all = futures_util::future::poll_fn(move |cx| loop {
            let mut p = payload.borrow_mut();
            match Pin::new(&mut *p).poll_next(cx) {
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(Some(Err(_))) => return Poll::Ready(false),
                Poll::Ready(None) => return Poll::Ready(true),
                Poll::Pending => return Poll::Pending,
            }
        });
        // Most often the handler read it all (or it had all arrived): no timer for that.
        let mut read_all = std::pin::pin!(read_all);
        if let Some(done) = futures_util::FutureExt::now_or_never(read_all.as_mut()) {
            return done;
        }
        tokio::time::timeout(wait, read_all).await.unwrap_or(false)
    }
}

/// A request body that fails with `TimedOut` once its deadline has passed.
struct DeadlineBody {
    inner: Rc<RefCell<Payload>>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    done: bool,
}

/// Whether a body read failed because the body deadline passed.
pub fn is_body_timeout(e: &PayloadError) -> bool {
    matches!(e, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

impl Stream for DeadlineBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let next = {
            let mut inner = self.inner.borrow_mut();
            Pin::new(&mut *inner).poll_next(cx)
        };
        match next {
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.done = true;
                    Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "the request body did not arrive within {} s",
                            self.timeout.as_secs()
                        ),
                    )))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_address_and_ipv6_prefix() {
        let counter = ConnectionCounter::default();
        let a: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let first = counter.acquire(a, 2);
        let second = counter.acquire(b, 2);
        let third = counter.acquire(a, 2);
        assert!(!first.over_cap() && !second.over_cap() && third.over_cap());
        assert!(!counter.acquire(other, 2).over_cap());
        assert_eq!(counter.open(a), 3);
        drop(third);
        drop(first);
        assert_eq!(counter.open(b), 1);
        assert!(!counter.acquire(a, 2).over_cap());
        drop(second);
        assert_eq!(counter.open(a), 0);
        assert!(counter.open.lock().unwrap().is_empty());
    }

    #[test]
    fn mapped_ipv4_counts_as_ipv4() {
        let counter = ConnectionCounter::default();
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let _a = counter.acquire(v4, 1);
        assert!(counter.acquire(mapped, 1).over_cap());
        assert_eq!(client_key(mapped), v4);
    }
}
