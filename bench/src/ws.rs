//! The WebSocket client side: connecting from a chosen loopback source address with the token in
//! the `Authorization` header, waiting for `ready`, and reading server frames cheaply.

use std::borrow::Cow;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::{err, Result};

pub type Socket = WebSocketStream<TcpStream>;

/// Connections one source address carries at most (the ephemeral range 32768–60999 has ~28,000
/// ports per source address; leave room for TIME_WAIT leftovers).
pub const PER_SOURCE_ADDR: usize = 20_000;

/// Small buffers: the client must hold 100,000 connections beside the server. Frames queued with
/// `feed` go out together at the next flush (`send` flushes at once).
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(16 * 1024)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

/// First source port assigned explicitly (below it: the server's port range, 20000–31999).
const FIRST_PORT: usize = 32_000;
const LAST_PORT: usize = 65_000;

/// Client source endpoints: addresses 127.0.0.2, 127.0.0.3, ... and, on each, ports assigned in
/// turn. Binding an explicit port is O(1); letting the kernel pick one (bind or connect with
/// port 0) searches the ephemeral range, which grows slower with every connection held.
#[derive(Debug, Clone)]
pub struct Sources {
    addrs: Vec<Ipv4Addr>,
}

impl Sources {
    /// Enough addresses for `connections` at [`PER_SOURCE_ADDR`] each, or `asked` of them.
    pub fn new(connections: usize, asked: u8) -> Sources {
        Self::starting_at(2, Self::needed(connections, asked))
    }

    /// How many addresses `connections` need at [`PER_SOURCE_ADDR`] each, or `asked` if not 0.
    pub fn needed(connections: usize, asked: u8) -> usize {
        if asked > 0 {
            usize::from(asked)
        } else {
            connections.div_ceil(PER_SOURCE_ADDR).max(1)
        }
    }

    /// `n` addresses from 127.0.0.`first` on (at most up to 127.0.0.254).
    pub fn starting_at(first: u8, n: usize) -> Sources {
        let first = first.max(2);
        Sources {
            addrs: (first..=254)
                .take(n.max(1))
                .map(|last| Ipv4Addr::new(127, 0, 0, last))
                .collect(),
        }
    }

    /// The source of connection `i`; port 0 (kernel's choice) once explicit ports run out.
    pub fn for_conn(&self, i: usize) -> SocketAddrV4 {
        let n = self.addrs.len().max(1);
        let ip = self
            .addrs
            .get(i % n)
            .copied()
            .unwrap_or(Ipv4Addr::new(127, 0, 0, 2));
        let port = FIRST_PORT + i / n;
        SocketAddrV4::new(ip, if port <= LAST_PORT { port as u16 } else { 0 })
    }
}

/// Opens `GET /api/ws` from `source` with the bearer token, and waits for `ready`.
pub async fn connect(
    server: SocketAddr,
    source: SocketAddrV4,
    token: &str,
    timeout: Duration,
) -> Result<Socket> {
    match tokio::time::timeout(timeout, connect_inner(server, source, token)).await {
        Ok(r) => r,
        Err(_) => Err(err(format!("no ready frame within {timeout:?}"))),
    }
}

pub fn bound_socket(source: SocketAddrV4) -> Result<TcpSocket> {
    let socket = TcpSocket::new_v4().map_err(|e| err(format!("socket: {e}")))?;
    // Lets this run reuse source ports still in TIME_WAIT from an earlier run (towards another
    // server port, so the 4-tuple differs).
    socket
        .set_reuseaddr(true)
        .map_err(|e| err(format!("SO_REUSEADDR: {e}")))?;
    if source.port() == 0 {
        // Let connect() pick the port by 4-tuple rather than bind() by port alone.
        bind_address_no_port(&socket)?;
    }
    socket
        .bind(SocketAddr::V4(source))
        .map_err(|e| err(format!("bind {source}: {e}")))?;
    Ok(socket)
}

async fn connect_inner(server: SocketAddr, source: SocketAddrV4, token: &str) -> Result<Socket> {
    let socket = match bound_socket(source) {
        Ok(s) => s,
        // Port taken by someone else: let the kernel choose one.
        Err(_) if source.port() != 0 => bound_socket(SocketAddrV4::new(*source.ip(), 0))?,
        Err(e) => return Err(e),
    };
    let stream = socket
        .connect(server)
        .await
        .map_err(|e| err(format!("connect from {source}: {e}")))?;
    stream
        .set_nodelay(true)
        .map_err(|e| err(format!("TCP_NODELAY: {e}")))?;
    let mut request = format!("ws://{server}/api/ws")
        .into_client_request()
        .map_err(|e| err(format!("request: {e}")))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|e| err(format!("token: {e}")))?;
    request.headers_mut().insert("Authorization", bearer);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config()))
        .await
        .map_err(|e| err(format!("upgrade: {e}")))?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => match parse(text.as_str()) {
                Ok(In::Ready) => return Ok(ws),
                Ok(In::Error { code, message, .. }) => {
                    return Err(err(format!("error frame: {code}: {message}")))
                }
                Ok(_) => continue,
                Err(e) => return Err(e),
            },
            Some(Ok(Message::Close(frame))) => {
                return Err(err(format!("closed before ready: {frame:?}")))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(err(format!("before ready: {e}"))),
            None => return Err(err("closed before ready")),
        }
    }
}

fn bind_address_no_port(socket: &TcpSocket) -> Result<()> {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and a pointer to an int that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(err(format!(
            "IP_BIND_ADDRESS_NO_PORT: {}",
            std::io::Error::last_os_error()
        )))
    }
}

/// The fields of a server frame this client looks at. `message` is an object in `ack` and
/// `message` frames but a sentence in `error` frames, so it is kept raw and parsed by type.
#[derive(Deserialize)]
struct RawFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    client_msg_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    message: Option<&'a RawValue>,
    #[serde(default, borrow)]
    code: Option<Cow<'a, str>>,
}

/// A stored message, as far as the benchmark needs it.
#[derive(Deserialize, Debug)]
pub struct Msg<'a> {
    pub room_id: i64,
    pub seq: i64,
    #[serde(borrow)]
    pub body: Cow<'a, str>,
}

/// A server frame.
#[derive(Debug)]
pub enum In<'a> {
    Ready,
    Ack(Msg<'a>),
    Message(Msg<'a>),
    Pong,
    Error {
        code: String,
        message: String,
        client_msg_id: Option<String>,
    },
    /// presence, typing, read, synced.
    Other,
}

pub fn parse(text: &str) -> Result<In<'_>> {
    let f: RawFrame<'_> =
        serde_json::from_str(text).map_err(|e| err(format!("bad frame {text}: {e}")))?;
    fn msg<'a>(raw: Option<&'a RawValue>, text: &str) -> Result<Msg<'a>> {
        let raw = raw.ok_or_else(|| err(format!("frame without a message: {text}")))?;
        serde_json::from_str(raw.get()).map_err(|e| err(format!("bad message in {text}: {e}")))
    }
    Ok(match f.kind.as_ref() {
        "ready" => In::Ready,
        "ack" => In::Ack(msg(f.message, text)?),
        "message" => In::Message(msg(f.message, text)?),
        "pong" => In::Pong,
        "error" => In::Error {
            code: f.code.map(Cow::into_owned).unwrap_or_default(),
            message: f.message.map(|m| m.get().to_owned()).unwrap_or_default(),
            client_msg_id: f.client_msg_id.map(Cow::into_owned),
        },
        _ => In::Other,
    })
}
