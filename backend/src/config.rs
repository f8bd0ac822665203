//! Typed configuration, read once from the command line and the environment (each flag has an
//! environment variable of the same meaning) and passed in; tests build their own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

/// A secret that never shows up in logs or `Debug` output.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Limits on the authentication endpoints (see README, "Rate limits").
#[derive(Debug, Clone)]
pub struct AuthLimits {
    /// Register + login requests allowed per client IP per minute (burst of the same size).
    pub per_ip_per_minute: u32,
    /// Failed logins allowed per account per hour (those without a valid device token).
    pub failed_logins_per_hour: u32,
    /// Register + login requests allowed per /24 (IPv4) or /64 (IPv6) per minute.
    pub per_prefix_per_minute: u32,
    /// Failed logins allowed per device token per hour.
    pub failed_logins_per_device: u32,
}

/// WebSocket session limits (see docs/websocket.md).
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// Browser origins allowed besides the server's own (`LETSCHAT_ALLOWED_ORIGINS`, comma-separated).
    pub allowed_origins: Vec<String>,
    /// Frames a connection may send per second (sustained; bursts of twice that) before it is
    /// closed with 1008.
    pub max_frames_per_sec: u32,
    /// Events waiting for one connection before it counts as not keeping up and is dropped.
    pub queue_capacity: usize,
    pub ping_interval: Duration,
    /// A connection that sends nothing (not even a pong) for this long is closed.
    pub idle_timeout: Duration,
    /// Time allowed for the first `auth` frame.
    pub auth_timeout: Duration,
    /// A socket that cannot take a frame for this long belongs to a client that stopped reading.
    pub write_timeout: Duration,
    /// WebSockets one user may hold open on this instance (`LETSCHAT_MAX_CONNECTIONS_PER_USER`);
    /// the next one gets `rate_limited` and close 1008.
    pub max_connections_per_user: usize,
    /// Bytes a connection may have sent that its client has not yet confirmed reading (a pong to
    /// the server's ping after them), live events and `sync` replay alike
    /// (`LETSCHAT_WS_OUTGOING_BUDGET`). Over it, the session sends nothing more.
    pub outgoing_budget: usize,
    /// How long a connection may stay over its outgoing budget before it is closed with 1013
    /// (`LETSCHAT_WS_OVER_BUDGET_GRACE`).
    pub over_budget_grace: Duration,
    /// Rendered bytes of one `sync` page (`LETSCHAT_WS_SYNC_PAGE_BYTES`); the next page is read
    /// only when this one has been sent and the budget allows.
    pub sync_page_bytes: usize,
    /// `sync` requests one connection may have waiting (`LETSCHAT_WS_MAX_PENDING_SYNCS`); past
    /// that a `sync` gets `rate_limited`.
    pub max_pending_syncs: usize,
    /// Several instances: how often each connection compares its rooms with the database and
    /// checks its token again, to repair what was lost between instances.
    pub position_check: Duration,
    /// How often the sign-in sessions with a WebSocket open on this instance are marked seen
    /// (their `last_seen_at` moved on): a minute, as requests do at most. Not read from the
    /// environment; tests shorten it.
    pub session_seen_every: Duration,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            allowed_origins: Vec::new(),
            max_frames_per_sec: 1000,
            queue_capacity: 1024,
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            auth_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_connections_per_user: 32,
            outgoing_budget: 1024 * 1024,
            over_budget_grace: Duration::from_secs(10),
            sync_page_bytes: 256 * 1024,
            max_pending_syncs: 256,
            position_check: Duration::from_secs(45),
            session_seen_every: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    /// The folder of the server's own files (`LETSCHAT_DATA_DIR`), absolute: the defaults of the
    /// SQLite database, the upload folder and the generated secret are in it.
    pub data_dir: PathBuf,
    /// Reverse proxies whose forwarding headers are believed (`LETSCHAT_TRUSTED_PROXIES`).
    pub trusted_proxies: crate::client_addr::TrustedProxies,
    /// Where `GET /metrics` (Prometheus text format) is served (`LETSCHAT_METRICS_BIND`); off
    /// when `None`. Never the public address: keep it on loopback or a private network.
    pub metrics_bind: Option<SocketAddr>,
    pub database_url: String,
    /// Several instances: the Redis their events cross through (`REDIS_URL`); `None` for one
    /// instance with its in-process broker.
    pub redis: Option<RedisConfig>,
    pub jwt_secret: Secret,
    pub token_ttl: Duration,
    /// The web client's folder, absolute (it may not hold a build: see [`Config::log_paths`]).
    pub static_dir: PathBuf,
    pub bcrypt_cost: u32,
    pub auth_limits: AuthLimits,
    pub db_pool_size: u32,
    /// How many password hashes may run at once (each takes a core for ~0.3 s at cost 12).
    pub hash_concurrency: usize,
    /// Hash requests allowed to wait for a free hasher before new ones are turned away.
    pub hash_queue: usize,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    pub ws: WsConfig,
    /// Contacts one user may add (`LETSCHAT_MAX_CONTACTS`); adding one more is 409 `conflict`.
    pub max_contacts: usize,
    /// Per-user concurrency on the heavy list endpoints (see README, "Limits").
    pub heavy: HeavyLimits,
    /// Bounds on what one HTTP connection can hold (see README, "Limits").
    pub http: HttpLimits,
    /// Password hashes one /24 (IPv4) or /64 (IPv6) may have queued or running at once.
    pub hash_per_prefix: usize,
    /// Password hashes one client address may have queued or running at once.
    pub hash_per_address: usize,
    /// How long a password hash may wait for a free hasher before it is answered 429 instead
    /// (`LETSCHAT_HASH_MAX_WAIT`): a client that gave up is not hashed for.
    pub hash_max_wait: Duration,
    /// Percent of each hasher's time that registrations and logins without a device token may
    /// take over the long run (`LETSCHAT_HASH_PUBLIC_SHARE`; 100: no pacing).
    pub hash_public_share: u32,
    /// How long after sending a message its sender may edit it (`LETSCHAT_EDIT_WINDOW`); no
    /// limit when unset.
    pub edit_window: Option<Duration>,
    /// Message changes (edits, deletes, reactions) one user may make per second on one
    /// instance, with a burst of three seconds' worth (`LETSCHAT_MAX_CHANGES_PER_SEC`).
    pub max_changes_per_sec: u32,
    /// Uploads, their storage and the links they are served at (see README, "Uploads").
    pub uploads: UploadConfig,
    /// How the web client and the API reach browsers: the public address and source maps.
    pub web: WebConfig,
}

/// What the server needs to know about the browsers it serves (see README, "Configuration").
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// The address people open (`LETSCHAT_PUBLIC_URL`): the WebSocket origin the web client's
    /// Content-Security-Policy allows, and `Strict-Transport-Security` when it is `https://`.
    /// When unset, the policy allows the WebSocket of whatever host a request named.
    pub public_url: Option<PublicUrl>,
    /// Serve the web client's source maps (`LETSCHAT_SERVE_SOURCEMAPS`); 404 otherwise.
    pub serve_sourcemaps: bool,
}

/// `LETSCHAT_PUBLIC_URL`, checked: a scheme and a host (and port), nothing after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    https: bool,
    /// `host` or `host:port`, lowercase.
    authority: String,
}

impl PublicUrl {
    /// `https://chat.example.com` or `http://host:port`; a trailing `/` is allowed, a path, a
    /// query, user information or anything but a host name, an IPv4 or a bracketed IPv6 address
    /// with an optional port is not.
    pub fn parse(raw: &str) -> Result<PublicUrl, String> {
        let raw = raw.trim();
        let lower = raw.to_ascii_lowercase();
        let (https, rest) = if let Some(rest) = lower.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = lower.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!(
                "'{raw}' is not an address like https://chat.example.com"
            ));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if !is_authority(authority) {
            return Err(format!(
                "'{raw}' must be a scheme and a host only, like https://chat.example.com (the web client is served at the root)"
            ));
        }
        Ok(PublicUrl {
            https,
            authority: authority.to_owned(),
        })
    }

    pub fn is_https(&self) -> bool {
        self.https
    }

    /// `https://chat.example.com`: what browsers send as `Origin`.
    pub fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }

    /// `wss://chat.example.com`: where the web client opens its WebSocket.
    pub fn websocket_origin(&self) -> String {
        let scheme = if self.https { "wss" } else { "ws" };
        format!("{scheme}://{}", self.authority)
    }
}

/// A host (a name, an IPv4 address or a bracketed IPv6 address) with an optional port: safe to
/// put into a header such as a Content-Security-Policy source.
pub fn is_authority(s: &str) -> bool {
    let (host_ok, port) = match s.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, after)) => (
                !addr.is_empty()
                    && addr
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.'),
                after,
            ),
            None => return false,
        },
        None => {
            let (host, port) = s.split_at(s.find(':').unwrap_or(s.len()));
            let name_ok = !host.is_empty()
                && host.len() <= 253
                && !host.starts_with(['.', '-'])
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
            (name_ok, port)
        }
    };
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|p| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
        });
    host_ok && port_ok
}

/// Uploads: where their bytes are kept, how large they may be, how many one user may send, and
/// how long their links work (see README, "Uploads").
#[derive(Debug, Clone)]
pub struct UploadConfig {
    /// The blob store's folder (`LETSCHAT_UPLOAD_DIR`, absolute when read from the
    /// environment); several instances may share it.
    pub dir: PathBuf,
    /// Largest upload in bytes (`LETSCHAT_MAX_UPLOAD_BYTES`); larger is 413.
    pub max_bytes: u64,
    /// Bytes one user may upload in any 24 hours (`LETSCHAT_UPLOAD_QUOTA_BYTES_PER_DAY`); past
    /// it, 429 with `Retry-After`.
    pub quota_bytes_per_day: u64,
    /// Uploads one user may have in progress on this instance (`LETSCHAT_UPLOADS_PER_USER`); the
    /// next one gets 429.
    pub per_user: usize,
    /// Uploads in progress on this instance, all users together (`LETSCHAT_UPLOADS_CONCURRENT`);
    /// the next one gets 429.
    pub concurrent: usize,
    /// An upload's body must have arrived this long after its headers
    /// (`LETSCHAT_UPLOAD_BODY_TIMEOUT`); other requests have `http.body_timeout`.
    pub body_timeout: Duration,
    /// How long a signed file link works (`LETSCHAT_UPLOAD_LINK_TTL`).
    pub link_ttl: Duration,
    /// Images with more pixels than this are not decoded (no thumbnail, served as a download)
    /// (`LETSCHAT_MAX_IMAGE_PIXELS`).
    pub max_image_pixels: u64,
    /// Threads that decode images and make thumbnails (`LETSCHAT_IMAGE_THREADS`).
    pub image_threads: usize,
    /// Upload bytes a server takes in per second, all uploads together
    /// (`LETSCHAT_UPLOAD_BYTES_PER_SEC`; 0: no limit). Past it, uploads are read more slowly
    /// (TCP pushes back on their clients): receiving, hashing and writing them costs CPU that
    /// messaging shares.
    pub bytes_per_sec: u64,
    /// Threads that write, read and sweep the stored files.
    pub io_threads: usize,
    /// Uploads never sent in a message are deleted this long after they arrived
    /// (`LETSCHAT_UNSENT_UPLOAD_TTL`).
    pub unsent_ttl: Duration,
    /// How often the sweep runs (`LETSCHAT_UPLOAD_SWEEP_INTERVAL`).
    pub sweep_interval: Duration,
    /// Stored files written less than this long ago are never swept, whatever the database says:
    /// an upload renames its file into place before its row is committed.
    pub sweep_grace: Duration,
}

impl Default for UploadConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        UploadConfig {
            dir: PathBuf::from("data/uploads"),
            max_bytes: 25 * 1024 * 1024,
            quota_bytes_per_day: 1024 * 1024 * 1024,
            per_user: 4,
            concurrent: 64,
            body_timeout: Duration::from_secs(600),
            link_ttl: Duration::from_secs(3600),
            max_image_pixels: 40_000_000,
            // Leave at least one core to messaging when a burst of photos arrives.
            image_threads: cores.saturating_sub(1).clamp(1, 4),
            bytes_per_sec: 64 * 1024 * 1024,
            io_threads: 4,
            unsent_ttl: Duration::from_secs(24 * 3600),
            sweep_interval: Duration::from_secs(3600),
            sweep_grace: Duration::from_secs(600),
        }
    }
}

/// Bounds on the memory and time one HTTP connection can take (see README, "Limits").
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// A request body must have arrived this long after its headers, or the request is answered
    /// 408 and the connection closed (`LETSCHAT_BODY_TIMEOUT`).
    pub body_timeout: Duration,
    /// Request headers must arrive this long after a connection opens (actix's
    /// `client_request_timeout`; 408 and closed otherwise) (`LETSCHAT_HEADER_TIMEOUT`).
    pub header_timeout: Duration,
    /// An idle kept-alive connection is closed after this long (`LETSCHAT_KEEP_ALIVE`).
    pub keep_alive: Duration,
    /// Data the peer does not acknowledge for this long (a client that stopped reading, or is
    /// gone) drops the connection: the socket's `TCP_USER_TIMEOUT` (`LETSCHAT_WRITE_TIMEOUT`).
    pub write_timeout: Duration,
    /// Concurrent connections from one client address (an IPv6 client counts by its /64)
    /// (`LETSCHAT_MAX_CONNECTIONS_PER_IP`).
    pub max_connections_per_ip: u32,
    /// Largest history page, in bytes of message JSON (`LETSCHAT_HISTORY_PAGE_BYTES`).
    pub history_page_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            body_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(5),
            keep_alive: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
            max_connections_per_ip: 1000,
            history_page_bytes: 256 * 1024,
        }
    }
}

/// How many of one user's requests to the heavy list endpoints (`GET /api/rooms`,
/// `GET /api/contacts`, `GET /api/contacts/search`, `GET /api/users/search`) run and wait at
/// once; any more get 429 `rate_limited` with `Retry-After`, so one user's burst of list
/// requests holds at most `per_user` database connections and cannot slow anyone else down.
#[derive(Debug, Clone)]
pub struct HeavyLimits {
    /// Requests of one user running at once (`LETSCHAT_HEAVY_REQUESTS_PER_USER`).
    pub per_user: usize,
    /// Requests of one user waiting for a turn (`LETSCHAT_HEAVY_QUEUE_PER_USER`).
    pub queue_per_user: usize,
    /// How long a request waits for its turn before it gets 429 (`LETSCHAT_HEAVY_WAIT`).
    pub wait: Duration,
    /// Bytes of list responses per second one user's budget refills at
    /// (`LETSCHAT_HEAVY_BYTES_PER_SEC`).
    pub bytes_per_sec: u64,
    /// Bytes one user's budget holds when full (`LETSCHAT_HEAVY_BURST_BYTES`).
    pub burst_bytes: u64,
}

impl Default for HeavyLimits {
    fn default() -> Self {
        HeavyLimits {
            per_user: 1,
            queue_per_user: 4,
            wait: Duration::from_secs(2),
            bytes_per_sec: 256 * 1024,
            burst_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Server settings as given on the command line or in the environment. Every setting's help
/// ends with its default in brackets, as `letschat --help` shows it.
#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    /// Address to listen on. [default: 127.0.0.1:8080]
    #[arg(long, env = "LETSCHAT_BIND")]
    pub bind: Option<String>,
    /// Address for `GET /metrics` in Prometheus text format, e.g. `127.0.0.1:9464`. Never the
    /// public address: keep it on loopback or a private network. [default: off]
    #[arg(long, env = "LETSCHAT_METRICS_BIND")]
    pub metrics_bind: Option<String>,
    /// Folder of the server's own files: the SQLite database, uploads and the generated token
    /// secret, unless DATABASE_URL, LETSCHAT_UPLOAD_DIR or LETSCHAT_JWT_SECRET say otherwise. A
    /// relative path is taken from the working directory at start. [default: ./data]
    #[arg(long, env = "LETSCHAT_DATA_DIR")]
    pub data_dir: Option<String>,
    /// `sqlite://path/to/file.db` (created on first start) or `postgres://user@host/db`.
    /// [default: sqlite://<LETSCHAT_DATA_DIR>/letschat.db]
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// `redis://host:port/db`: run as one of several instances, events crossing between them
    /// through this Redis. [default: none: one instance, with its in-process broker]
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Put before every Redis key and channel name, so that several deployments can share one
    /// Redis. [default: letschat:]
    #[arg(long, env = "LETSCHAT_REDIS_PREFIX")]
    pub redis_prefix: Option<String>,
    /// Secret for signing tokens (at least 32 characters).
    /// [default: generated once and kept in <LETSCHAT_DATA_DIR>/jwt_secret]
    #[arg(long, env = "LETSCHAT_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// How long a token is valid, e.g. `7d`, `12h`, `3600s`. [default: 7d]
    #[arg(long, env = "LETSCHAT_TOKEN_TTL")]
    pub token_ttl: Option<String>,
    /// Folder of the web client (the single-page app); a relative path is taken from the
    /// working directory. [default: <folder of the letschat binary>/../share/letschat/web when
    /// it holds the app, else the frontend/dist of the source tree the binary was built from]
    #[arg(long, env = "LETSCHAT_STATIC_DIR")]
    pub static_dir: Option<String>,
    /// Reverse proxies whose forwarding headers are believed, comma-separated networks, e.g.
    /// `127.0.0.1/32,::1/128,10.0.0.0/8`. A request from one of them is taken to come from the
    /// rightmost address in its `X-Forwarded-For` (or `Forwarded: for=`) that is not itself a
    /// trusted proxy; from anywhere else the headers are ignored. Connections from a trusted
    /// proxy are not counted by LETSCHAT_MAX_CONNECTIONS_PER_IP. [default: none]
    #[arg(long, env = "LETSCHAT_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// Log filter, e.g. `info`, `warn,letschat=debug`. [default: info]
    #[arg(long = "log", env = "RUST_LOG")]
    pub log_filter: Option<String>,
    /// Log lines as `text` (coloured only when written to a terminal) or `json` (one object a
    /// line). [default: text]
    #[arg(long, env = "LETSCHAT_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// bcrypt cost (4–31). [default: 12]
    #[arg(long, env = "LETSCHAT_BCRYPT_COST")]
    pub bcrypt_cost: Option<String>,
    /// Register and login requests per client IP per minute. [default: 30]
    #[arg(long, env = "LETSCHAT_AUTH_RATE_PER_IP")]
    pub auth_rate_per_ip: Option<String>,
    /// Failed logins per account per hour. [default: 100]
    #[arg(long, env = "LETSCHAT_FAILED_LOGINS_PER_HOUR")]
    pub failed_logins_per_hour: Option<String>,
    /// Database connections in the pool. [default: 16]
    #[arg(long, env = "LETSCHAT_DB_POOL_SIZE")]
    pub db_pool_size: Option<String>,
    /// HTTP worker threads; 0 is one per core. [default: 0]
    #[arg(long, env = "LETSCHAT_WORKERS")]
    pub workers: Option<String>,
    /// Browser origins allowed to open the WebSocket besides the server's own, comma-separated
    /// (e.g. `https://chat.example.com,http://localhost:5173`). [default: none]
    #[arg(long, env = "LETSCHAT_ALLOWED_ORIGINS")]
    pub allowed_origins: Option<String>,
    /// Frames per second one WebSocket connection may send before it is closed as a flood.
    /// [default: 1000]
    #[arg(long, env = "LETSCHAT_WS_MAX_FRAMES_PER_SEC")]
    pub ws_max_frames_per_sec: Option<String>,
    /// Contacts one user may add. [default: 5000]
    #[arg(long, env = "LETSCHAT_MAX_CONTACTS")]
    pub max_contacts: Option<String>,
    /// One user's requests to the heavy list endpoints running at once. [default: 1]
    #[arg(long, env = "LETSCHAT_HEAVY_REQUESTS_PER_USER")]
    pub heavy_requests_per_user: Option<String>,
    /// One user's requests to the heavy list endpoints waiting for a turn. [default: 4]
    #[arg(long, env = "LETSCHAT_HEAVY_QUEUE_PER_USER")]
    pub heavy_queue_per_user: Option<String>,
    /// How long such a request waits for its turn before it gets 429, e.g. `2s`, `500ms`.
    /// [default: 2s]
    #[arg(long, env = "LETSCHAT_HEAVY_WAIT")]
    pub heavy_wait: Option<String>,
    /// Bytes of list responses per second one user's budget refills at. [default: 262144]
    #[arg(long, env = "LETSCHAT_HEAVY_BYTES_PER_SEC")]
    pub heavy_bytes_per_sec: Option<String>,
    /// Bytes one user's list budget holds when full. [default: 4194304]
    #[arg(long, env = "LETSCHAT_HEAVY_BURST_BYTES")]
    pub heavy_burst_bytes: Option<String>,
    /// Time for a request body to arrive after its headers; later is 408. [default: 10s]
    #[arg(long, env = "LETSCHAT_BODY_TIMEOUT")]
    pub body_timeout: Option<String>,
    /// Time for request headers to arrive on a new connection; later is 408. [default: 5s]
    #[arg(long, env = "LETSCHAT_HEADER_TIMEOUT")]
    pub header_timeout: Option<String>,
    /// How long an idle kept-alive HTTP connection stays open. [default: 5s]
    #[arg(long, env = "LETSCHAT_KEEP_ALIVE")]
    pub keep_alive: Option<String>,
    /// How long sent data may stay unacknowledged (a client that stopped reading) before the
    /// connection is dropped. [default: 30s]
    #[arg(long, env = "LETSCHAT_WRITE_TIMEOUT")]
    pub write_timeout: Option<String>,
    /// Concurrent connections per client address (IPv6: per /64), counted by the TCP peer;
    /// a trusted proxy's connections are not counted. [default: 1000]
    #[arg(long, env = "LETSCHAT_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<String>,
    /// Largest history page in bytes of message JSON. [default: 262144]
    #[arg(long, env = "LETSCHAT_HISTORY_PAGE_BYTES")]
    pub history_page_bytes: Option<String>,
    /// WebSockets one user may hold open on this server. [default: 32]
    #[arg(long, env = "LETSCHAT_MAX_CONNECTIONS_PER_USER")]
    pub max_connections_per_user: Option<String>,
    /// Bytes a WebSocket may have sent and not yet seen confirmed by its client.
    /// [default: 1048576]
    #[arg(long, env = "LETSCHAT_WS_OUTGOING_BUDGET")]
    pub ws_outgoing_budget: Option<String>,
    /// How long a WebSocket may stay over its outgoing budget before it is closed (1013).
    /// [default: 10s]
    #[arg(long, env = "LETSCHAT_WS_OVER_BUDGET_GRACE")]
    pub ws_over_budget_grace: Option<String>,
    /// Bytes of rendered frames in one `sync` page. [default: 262144]
    #[arg(long, env = "LETSCHAT_WS_SYNC_PAGE_BYTES")]
    pub ws_sync_page_bytes: Option<String>,
    /// `sync` requests one WebSocket may have waiting. [default: 256]
    #[arg(long, env = "LETSCHAT_WS_MAX_PENDING_SYNCS")]
    pub ws_max_pending_syncs: Option<String>,
    /// Register and login requests per /24 (IPv4) or /64 (IPv6) per minute. [default: 300]
    #[arg(long, env = "LETSCHAT_AUTH_RATE_PER_PREFIX")]
    pub auth_rate_per_prefix: Option<String>,
    /// Failed logins per device token per hour. [default: 10]
    #[arg(long, env = "LETSCHAT_FAILED_LOGINS_PER_DEVICE")]
    pub failed_logins_per_device: Option<String>,
    /// Password hashes one /24 (IPv4) or /64 (IPv6) may have queued or running at once.
    /// [default: 4]
    #[arg(long, env = "LETSCHAT_HASH_PER_PREFIX")]
    pub hash_per_prefix: Option<String>,
    /// Password hashes one client address may have queued or running at once. [default: 2]
    #[arg(long, env = "LETSCHAT_HASH_PER_ADDRESS")]
    pub hash_per_address: Option<String>,
    /// How long a password hash may wait for a free hasher before it is answered 429.
    /// [default: 10s]
    #[arg(long, env = "LETSCHAT_HASH_MAX_WAIT")]
    pub hash_max_wait: Option<String>,
    /// Percent of each password hasher's time that registrations and logins without a device
    /// token may take over the long run, after a first second of hashing at full speed; a wrong
    /// password counts 2.5 times its time, so wrong passwords get 10 % at the default (100: no
    /// pacing). [default: 25]
    #[arg(long, env = "LETSCHAT_HASH_PUBLIC_SHARE")]
    pub hash_public_share: Option<String>,
    /// How long after sending a message its sender may still edit it, e.g. `15m` (empty or
    /// `none`: no limit). [default: none]
    #[arg(long, env = "LETSCHAT_EDIT_WINDOW")]
    pub edit_window: Option<String>,
    /// Message changes (edits, deletes, reactions) one user may make per second, with a burst
    /// of three seconds' worth; past it 429. [default: 10]
    #[arg(long, env = "LETSCHAT_MAX_CHANGES_PER_SEC")]
    pub max_changes_per_sec: Option<String>,
    /// Folder of uploaded files; several instances may share it. A relative path is taken from
    /// the working directory. [default: <LETSCHAT_DATA_DIR>/uploads]
    #[arg(long, env = "LETSCHAT_UPLOAD_DIR")]
    pub upload_dir: Option<String>,
    /// Largest upload in bytes (25 MiB). [default: 26214400]
    #[arg(long, env = "LETSCHAT_MAX_UPLOAD_BYTES")]
    pub max_upload_bytes: Option<String>,
    /// Bytes one user may upload in any 24 hours (1 GiB). [default: 1073741824]
    #[arg(long, env = "LETSCHAT_UPLOAD_QUOTA_BYTES_PER_DAY")]
    pub upload_quota_bytes_per_day: Option<String>,
    /// Uploads one user may have in progress at once. [default: 4]
    #[arg(long, env = "LETSCHAT_UPLOADS_PER_USER")]
    pub uploads_per_user: Option<String>,
    /// Uploads in progress at once, all users together. [default: 64]
    #[arg(long, env = "LETSCHAT_UPLOADS_CONCURRENT")]
    pub uploads_concurrent: Option<String>,
    /// Time for an upload's body to arrive after its headers. [default: 10m]
    #[arg(long, env = "LETSCHAT_UPLOAD_BODY_TIMEOUT")]
    pub upload_body_timeout: Option<String>,
    /// How long a signed file link works. [default: 1h]
    #[arg(long, env = "LETSCHAT_UPLOAD_LINK_TTL")]
    pub upload_link_ttl: Option<String>,
    /// Images with more pixels are not decoded: no thumbnail, served as a download.
    /// [default: 40000000]
    #[arg(long, env = "LETSCHAT_MAX_IMAGE_PIXELS")]
    pub max_image_pixels: Option<String>,
    /// Threads that decode images and make thumbnails. [default: cores - 1, from 1 to 4]
    #[arg(long, env = "LETSCHAT_IMAGE_THREADS")]
    pub image_threads: Option<String>,
    /// Upload bytes the server takes in per second, all uploads together (64 MiB/s); 0: no
    /// limit. [default: 67108864]
    #[arg(long, env = "LETSCHAT_UPLOAD_BYTES_PER_SEC")]
    pub upload_bytes_per_sec: Option<String>,
    /// Uploads never sent in a message are deleted this long after they arrived.
    /// [default: 24h]
    #[arg(long, env = "LETSCHAT_UNSENT_UPLOAD_TTL")]
    pub unsent_upload_ttl: Option<String>,
    /// How often unsent uploads and unused files are swept. [default: 1h]
    #[arg(long, env = "LETSCHAT_UPLOAD_SWEEP_INTERVAL")]
    pub upload_sweep_interval: Option<String>,
    /// The address people open, e.g. `https://chat.example.com` (scheme and host only). Sets the
    /// WebSocket origin in the web client's Content-Security-Policy, allows that origin to open
    /// the WebSocket, and with `https://` adds `Strict-Transport-Security`. [default: none]
    #[arg(long, env = "LETSCHAT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Serve the web client's source maps (`*.map`), `1` or `0` (`0`: they answer 404).
    /// [default: 0]
    #[arg(long, env = "LETSCHAT_SERVE_SOURCEMAPS")]
    pub serve_sourcemaps: Option<String>,
}

/// A configuration error: one line naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid {var}: {why}")]
pub struct ConfigError {
    pub var: &'static str,
    pub why: String,
}

fn bad(var: &'static str, why: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        why: why.into(),
    }
}

fn parse_num<T>(
    var: &'static str,
    raw: Option<&str>,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let value = match raw {
        None => default,
        Some(s) => s
            .trim()
            .parse::<T>()
            .map_err(|_| bad(var, format!("'{s}' is not a number")))?,
    };
    if !range.contains(&value) {
        return Err(bad(
            var,
            format!("{value} is outside {}..={}", range.start(), range.end()),
        ));
    }
    Ok(value)
}

/// `LETSCHAT_DATA_DIR` when unset, from the working directory.
pub const DEFAULT_DATA_DIR: &str = "./data";

/// `LETSCHAT_DATA_DIR` as an absolute path (relative ones are taken from the working
/// directory now, so that the server's files stay where they are whatever it does later).
pub fn data_dir(raw: Option<&str>) -> Result<PathBuf, ConfigError> {
    const VAR: &str = "LETSCHAT_DATA_DIR";
    let raw = raw.map(str::trim).filter(|s| !s.is_empty());
    absolute(Path::new(raw.unwrap_or(DEFAULT_DATA_DIR))).map_err(|why| bad(VAR, why))
}

/// `DATABASE_URL` when unset: the SQLite database `letschat.db` in the data folder.
pub fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("letschat.db").display())
}

/// `DATABASE_URL`, or its default in `data_dir`, with a SQLite file's path made absolute.
pub fn database_url(raw: Option<&str>, data_dir: &Path) -> Result<String, ConfigError> {
    let Some(url) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(default_database_url(data_dir));
    };
    match crate::db::DbUrl::parse(url).map_err(|why| bad("DATABASE_URL", why))? {
        // `:memory:` and `file:` URIs are SQLite's own; they are passed on as given.
        crate::db::DbUrl::Sqlite(path) if path != ":memory:" && !path.starts_with("file:") => {
            let path = absolute(Path::new(&path)).map_err(|why| bad("DATABASE_URL", why))?;
            Ok(format!("sqlite://{}", path.display()))
        }
        _ => Ok(url.to_owned()),
    }
}

/// `path` from the working directory when relative (nothing is read from the disk).
fn absolute(path: &Path) -> Result<PathBuf, String> {
    std::path::absolute(path).map_err(|e| format!("cannot resolve '{}': {e}", path.display()))
}

/// Where the web client is looked for when `LETSCHAT_STATIC_DIR` is unset, in order: the
/// installed layout (`<prefix>/bin/letschat` and `<prefix>/share/letschat/web`), then the
/// `frontend/dist` of the source tree the binary was built from (so `make run` serves the
/// build it just made).
pub fn web_client_candidates() -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Some(bin_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        if let Some(prefix) = bin_dir.parent() {
            found.push(prefix.join("share").join("letschat").join("web"));
        }
    }
    let source_tree = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(root) = source_tree.parent() {
        found.push(root.join("frontend").join("dist"));
    }
    found
}

/// Whether `dir` holds a build of the web client.
pub fn has_web_client(dir: &Path) -> bool {
    dir.join("index.html").is_file()
}

/// `LETSCHAT_STATIC_DIR`, or the first of [`web_client_candidates`] that holds the web client
/// (the first of them when none does).
fn static_dir(raw: Option<&str>) -> Result<PathBuf, ConfigError> {
    if let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) {
        return absolute(Path::new(raw)).map_err(|why| bad("LETSCHAT_STATIC_DIR", why));
    }
    let candidates = web_client_candidates();
    Ok(candidates
        .iter()
        .find(|dir| has_web_client(dir))
        .or(candidates.first())
        .cloned()
        .unwrap_or_else(|| PathBuf::from("frontend/dist")))
}
pub const DEFAULT_REDIS_PREFIX: &str = "letschat:";

/// Where events cross between instances.
#[derive(Clone)]
pub struct RedisConfig {
    pub url: String,
    /// Before every key and channel name (`LETSCHAT_REDIS_PREFIX`, default `letschat:`).
    pub prefix: String,
    /// Fault injection for tests (never set from the environment): while above zero, each
    /// publication to Redis is dropped instead, and the count goes down by one.
    #[doc(hidden)]
    pub drop_publishes: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

impl std::fmt::Debug for RedisConfig {
    /// Without the URL, which may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &"***")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Config {
    /// Builds the configuration; the JWT secret is generated and stored when not given.
    pub fn from_args(args: &ServeArgs) -> Result<Config, ConfigError> {
        let bind_raw = args.bind.as_deref().unwrap_or("127.0.0.1:8080");
        let bind: SocketAddr = bind_raw.parse().map_err(|_| {
            bad(
                "LETSCHAT_BIND",
                format!("'{bind_raw}' is not an address like 127.0.0.1:8080"),
            )
        })?;

        let metrics_bind = metrics_bind(args.metrics_bind.as_deref(), bind)?;

        let data_dir = data_dir(args.data_dir.as_deref())?;
        let database_url = database_url(args.database_url.as_deref(), &data_dir)?;
        let backend =
            crate::db::DbUrl::parse(&database_url).map_err(|why| bad("DATABASE_URL", why))?;
        let trusted_proxies = match args.trusted_proxies.as_deref() {
            None => crate::client_addr::TrustedProxies::default(),
            Some(raw) => crate::client_addr::TrustedProxies::parse(raw)
                .map_err(|why| bad("LETSCHAT_TRUSTED_PROXIES", why))?,
        };

        let redis = match args.redis_url.as_deref().filter(|u| !u.is_empty()) {
            None => None,
            Some(url) => {
                redis::Client::open(url).map_err(|e| bad("REDIS_URL", e.to_string()))?;
                let prefix = args
                    .redis_prefix
                    .clone()
                    .unwrap_or_else(|| DEFAULT_REDIS_PREFIX.to_owned());
                if prefix.len() > 64 || prefix.chars().any(|c| c.is_whitespace()) {
                    return Err(bad(
                        "LETSCHAT_REDIS_PREFIX",
                        "must be at most 64 characters, without spaces",
                    ));
                }
                Some(RedisConfig {
                    url: url.to_owned(),
                    prefix,
                    drop_publishes: None,
                })
            }
        };

        let token_ttl = match args.token_ttl.as_deref() {
            None => Duration::from_secs(7 * 24 * 3600),
            Some(s) => parse_duration(s).map_err(|why| bad("LETSCHAT_TOKEN_TTL", why))?,
        };
        if token_ttl < Duration::from_secs(60) {
            return Err(bad("LETSCHAT_TOKEN_TTL", "must be at least one minute"));
        }

        let bcrypt_cost = parse_num(
            "LETSCHAT_BCRYPT_COST",
            args.bcrypt_cost.as_deref(),
            12u32,
            4..=31,
        )?;
        let per_ip = parse_num(
            "LETSCHAT_AUTH_RATE_PER_IP",
            args.auth_rate_per_ip.as_deref(),
            30u32,
            1..=1_000_000,
        )?;
        let failed = parse_num(
            "LETSCHAT_FAILED_LOGINS_PER_HOUR",
            args.failed_logins_per_hour.as_deref(),
            100u32,
            2..=1_000_000,
        )?;
        let db_pool_size = parse_num(
            "LETSCHAT_DB_POOL_SIZE",
            args.db_pool_size.as_deref(),
            16u32,
            1..=512,
        )?;
        let workers = parse_num("LETSCHAT_WORKERS", args.workers.as_deref(), 0usize, 0..=256)?;

        let static_dir = static_dir(args.static_dir.as_deref())?;

        let jwt_secret = match args.jwt_secret.as_deref() {
            Some(s) if s.len() >= 32 => Secret::new(s.as_bytes().to_vec()),
            Some(_) => return Err(bad("LETSCHAT_JWT_SECRET", "must be at least 32 characters")),
            None => load_or_create_secret(&data_dir, &backend.data_dir())
                .map_err(|why| bad("LETSCHAT_JWT_SECRET", why))?,
        };

        let mut ws = WsConfig::default();
        if let Some(list) = args.allowed_origins.as_deref() {
            for origin in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                let ok = (origin.starts_with("http://") || origin.starts_with("https://"))
                    && !origin.trim_end_matches('/').contains(['?', '#'])
                    && origin.matches('/').count() == 2;
                if !ok {
                    return Err(bad(
                        "LETSCHAT_ALLOWED_ORIGINS",
                        format!("'{origin}' is not an origin like https://chat.example.com"),
                    ));
                }
                ws.allowed_origins.push(origin.to_ascii_lowercase());
            }
        }
        ws.max_frames_per_sec = parse_num(
            "LETSCHAT_WS_MAX_FRAMES_PER_SEC",
            args.ws_max_frames_per_sec.as_deref(),
            ws.max_frames_per_sec,
            1..=1_000_000,
        )?;
        ws.max_connections_per_user = parse_num(
            "LETSCHAT_MAX_CONNECTIONS_PER_USER",
            args.max_connections_per_user.as_deref(),
            ws.max_connections_per_user,
            1..=100_000,
        )?;
        ws.outgoing_budget = parse_num(
            "LETSCHAT_WS_OUTGOING_BUDGET",
            args.ws_outgoing_budget.as_deref(),
            ws.outgoing_budget,
            4096..=1 << 30,
        )?;
        if let Some(s) = args.ws_over_budget_grace.as_deref() {
            ws.over_budget_grace =
                parse_duration(s).map_err(|why| bad("LETSCHAT_WS_OVER_BUDGET_GRACE", why))?;
            if ws.over_budget_grace.is_zero() {
                return Err(bad("LETSCHAT_WS_OVER_BUDGET_GRACE", "must be above zero"));
            }
        }
        ws.sync_page_bytes = parse_num(
            "LETSCHAT_WS_SYNC_PAGE_BYTES",
            args.ws_sync_page_bytes.as_deref(),
            ws.sync_page_bytes,
            1024..=64 << 20,
        )?;
        ws.max_pending_syncs = parse_num(
            "LETSCHAT_WS_MAX_PENDING_SYNCS",
            args.ws_max_pending_syncs.as_deref(),
            ws.max_pending_syncs,
            1..=100_000,
        )?;

        let web = web_config(args)?;
        if let Some(public) = &web.public_url {
            // The public address is, by definition, where browsers open the web client from.
            let origin = public.origin();
            if !ws.allowed_origins.contains(&origin) {
                ws.allowed_origins.push(origin);
            }
        }

        let max_contacts = parse_num(
            "LETSCHAT_MAX_CONTACTS",
            args.max_contacts.as_deref(),
            5000usize,
            1..=1_000_000,
        )?;
        let mut heavy = HeavyLimits::default();
        heavy.per_user = parse_num(
            "LETSCHAT_HEAVY_REQUESTS_PER_USER",
            args.heavy_requests_per_user.as_deref(),
            heavy.per_user,
            1..=1024,
        )?;
        heavy.queue_per_user = parse_num(
            "LETSCHAT_HEAVY_QUEUE_PER_USER",
            args.heavy_queue_per_user.as_deref(),
            heavy.queue_per_user,
            0..=1024,
        )?;
        if let Some(s) = args.heavy_wait.as_deref() {
            heavy.wait = parse_duration(s).map_err(|why| bad("LETSCHAT_HEAVY_WAIT", why))?;
        }
        if heavy.wait > Duration::from_secs(60) {
            return Err(bad("LETSCHAT_HEAVY_WAIT", "must be at most a minute"));
        }
        heavy.bytes_per_sec = parse_num(
            "LETSCHAT_HEAVY_BYTES_PER_SEC",
            args.heavy_bytes_per_sec.as_deref(),
            heavy.bytes_per_sec,
            1..=u64::MAX,
        )?;
        heavy.burst_bytes = parse_num(
            "LETSCHAT_HEAVY_BURST_BYTES",
            args.heavy_burst_bytes.as_deref(),
            heavy.burst_bytes,
            1..=u64::MAX,
        )?;
        let http = http_limits(args)?;

        let per_prefix = parse_num(
            "LETSCHAT_AUTH_RATE_PER_PREFIX",
            args.auth_rate_per_prefix.as_deref(),
            300u32,
            1..=1_000_000,
        )?;
        let failed_per_device = parse_num(
            "LETSCHAT_FAILED_LOGINS_PER_DEVICE",
            args.failed_logins_per_device.as_deref(),
            10u32,
            1..=1_000_000,
        )?;
        let hash_per_prefix = parse_num(
            "LETSCHAT_HASH_PER_PREFIX",
            args.hash_per_prefix.as_deref(),
            4usize,
            1..=10_000,
        )?;
        let hash_per_address = parse_num(
            "LETSCHAT_HASH_PER_ADDRESS",
            args.hash_per_address.as_deref(),
            2usize,
            1..=10_000,
        )?;

        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Config {
            bind,
            trusted_proxies,
            metrics_bind,
            database_url,
            redis,
            jwt_secret,
            token_ttl,
            static_dir,
            bcrypt_cost,
            auth_limits: AuthLimits {
                per_ip_per_minute: per_ip,
                failed_logins_per_hour: failed,
                per_prefix_per_minute: per_prefix,
                failed_logins_per_device: failed_per_device,
            },
            db_pool_size,
            // Leave at least one core to messaging when hashing floods in.
            hash_concurrency: cores.saturating_sub(1).max(1),
            hash_queue: 64,
            workers,
            ws,
            max_contacts,
            heavy,
            http,
            hash_per_prefix,
            hash_per_address,
            hash_max_wait: parse_bounded_duration(
                "LETSCHAT_HASH_MAX_WAIT",
                args.hash_max_wait.as_deref(),
                Duration::from_secs(10),
                Duration::from_secs(1),
                Duration::from_secs(300),
            )?,
            hash_public_share: parse_num(
                "LETSCHAT_HASH_PUBLIC_SHARE",
                args.hash_public_share.as_deref(),
                25u32,
                1..=100,
            )?,
            edit_window: edit_window(args.edit_window.as_deref())?,
            max_changes_per_sec: parse_num(
                "LETSCHAT_MAX_CHANGES_PER_SEC",
                args.max_changes_per_sec.as_deref(),
                10,
                1..=1_000_000,
            )?,
            uploads: upload_config(args, &data_dir)?,
            web,
            data_dir,
        })
    }
}

impl Config {
    /// Logs where the server keeps its files and finds the web client (called at start, before
    /// it listens): every path absolute, so an operator sees at once which folder is used.
    pub fn log_paths(&self) {
        tracing::info!(path = %self.data_dir.display(), "data folder");
        match crate::db::DbUrl::parse(&self.database_url) {
            Ok(crate::db::DbUrl::Sqlite(path)) => tracing::info!(path = %path, "database (SQLite)"),
            _ => tracing::info!(
                url = %crate::db::redact(&self.database_url),
                "database (PostgreSQL)"
            ),
        }
        tracing::info!(path = %self.uploads.dir.display(), "upload folder");
        if has_web_client(&self.static_dir) {
            tracing::info!(path = %self.static_dir.display(), "web client");
        } else {
            // When it was not given, say every place it was looked for.
            let candidates = web_client_candidates();
            let looked_in = if candidates.contains(&self.static_dir) {
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                self.static_dir.display().to_string()
            };
            tracing::warn!(
                path = %self.static_dir.display(),
                looked_in = %looked_in,
                "web client not found (no index.html): / serves a page saying how to build it; set LETSCHAT_STATIC_DIR to the folder of the build"
            );
        }
        if self.trusted_proxies.is_empty() {
            tracing::info!("no trusted proxies: X-Forwarded-For and Forwarded are ignored");
        } else {
            tracing::info!(networks = %self.trusted_proxies, "trusted proxies");
        }
    }
}

fn web_config(args: &ServeArgs) -> Result<WebConfig, ConfigError> {
    let public_url = match args.public_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(PublicUrl::parse(raw).map_err(|why| bad("LETSCHAT_PUBLIC_URL", why))?),
    };
    Ok(WebConfig {
        public_url,
        serve_sourcemaps: parse_bool(
            "LETSCHAT_SERVE_SOURCEMAPS",
            args.serve_sourcemaps.as_deref(),
            false,
        )?,
    })
}

/// `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off` (any case); unset or empty is `default`.
fn parse_bool(var: &'static str, raw: Option<&str>, default: bool) -> Result<bool, ConfigError> {
    match raw.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => Err(bad(var, format!("'{other}' is not 1 or 0"))),
    }
}

fn upload_config(args: &ServeArgs, data_dir: &Path) -> Result<UploadConfig, ConfigError> {
    let d = UploadConfig::default();
    let (second, minute, day) = (
        Duration::from_secs(1),
        Duration::from_secs(60),
        Duration::from_secs(86_400),
    );
    Ok(UploadConfig {
        dir: match args.upload_dir.as_deref().map(str::trim) {
            None | Some("") => data_dir.join("uploads"),
            Some(raw) => absolute(Path::new(raw)).map_err(|why| bad("LETSCHAT_UPLOAD_DIR", why))?,
        },
        max_bytes: parse_num(
            "LETSCHAT_MAX_UPLOAD_BYTES",
            args.max_upload_bytes.as_deref(),
            d.max_bytes,
            1..=1 << 40,
        )?,
        quota_bytes_per_day: parse_num(
            "LETSCHAT_UPLOAD_QUOTA_BYTES_PER_DAY",
            args.upload_quota_bytes_per_day.as_deref(),
            d.quota_bytes_per_day,
            1..=1 << 50,
        )?,
        per_user: parse_num(
            "LETSCHAT_UPLOADS_PER_USER",
            args.uploads_per_user.as_deref(),
            d.per_user,
            1..=1024,
        )?,
        concurrent: parse_num(
            "LETSCHAT_UPLOADS_CONCURRENT",
            args.uploads_concurrent.as_deref(),
            d.concurrent,
            1..=100_000,
        )?,
        body_timeout: parse_bounded_duration(
            "LETSCHAT_UPLOAD_BODY_TIMEOUT",
            args.upload_body_timeout.as_deref(),
            d.body_timeout,
            second,
            day,
        )?,
        link_ttl: parse_bounded_duration(
            "LETSCHAT_UPLOAD_LINK_TTL",
            args.upload_link_ttl.as_deref(),
            d.link_ttl,
            minute,
            7 * day,
        )?,
        max_image_pixels: parse_num(
            "LETSCHAT_MAX_IMAGE_PIXELS",
            args.max_image_pixels.as_deref(),
            d.max_image_pixels,
            1..=1 << 32,
        )?,
        image_threads: parse_num(
            "LETSCHAT_IMAGE_THREADS",
            args.image_threads.as_deref(),
            d.image_threads,
            1..=256,
        )?,
        bytes_per_sec: parse_num(
            "LETSCHAT_UPLOAD_BYTES_PER_SEC",
            args.upload_bytes_per_sec.as_deref(),
            d.bytes_per_sec,
            0..=1 << 40,
        )?,
        io_threads: d.io_threads,
        unsent_ttl: parse_bounded_duration(
            "LETSCHAT_UNSENT_UPLOAD_TTL",
            args.unsent_upload_ttl.as_deref(),
            d.unsent_ttl,
            minute,
            365 * day,
        )?,
        sweep_interval: parse_bounded_duration(
            "LETSCHAT_UPLOAD_SWEEP_INTERVAL",
            args.upload_sweep_interval.as_deref(),
            d.sweep_interval,
            minute,
            day,
        )?,
        sweep_grace: d.sweep_grace,
    })
}

/// `LETSCHAT_EDIT_WINDOW`: a duration of at least a second, or no limit (unset, empty, `none`).
fn edit_window(raw: Option<&str>) -> Result<Option<Duration>, ConfigError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.eq_ignore_ascii_case("none") => Ok(None),
        Some(s) => parse_bounded_duration(
            "LETSCHAT_EDIT_WINDOW",
            Some(s),
            Duration::ZERO,
            Duration::from_secs(1),
            Duration::from_secs(100 * 365 * 86_400),
        )
        .map(Some),
    }
}

/// `LETSCHAT_METRICS_BIND`: an address other than the public one, or off (unset or empty).
fn metrics_bind(raw: Option<&str>, public: SocketAddr) -> Result<Option<SocketAddr>, ConfigError> {
    const VAR: &str = "LETSCHAT_METRICS_BIND";
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let addr: SocketAddr = raw.parse().map_err(|_| {
        bad(
            VAR,
            format!("'{raw}' is not an address like 127.0.0.1:9464"),
        )
    })?;
    if addr.port() != 0 && addr.port() == public.port() {
        return Err(bad(
            VAR,
            format!(
                "port {} is LETSCHAT_BIND's; metrics need a port of their own",
                addr.port()
            ),
        ));
    }
    Ok(Some(addr))
}

/// A duration setting between `min` and `max`.
fn parse_bounded_duration(
    var: &'static str,
    raw: Option<&str>,
    default: Duration,
    min: Duration,
    max: Duration,
) -> Result<Duration, ConfigError> {
    let value = match raw {
        None => default,
        Some(s) => parse_duration(s).map_err(|why| bad(var, why))?,
    };
    if value < min || value > max {
        return Err(bad(
            var,
            format!(
                "must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(value)
}

fn http_limits(args: &ServeArgs) -> Result<HttpLimits, ConfigError> {
    let d = HttpLimits::default();
    let (second, hour) = (Duration::from_secs(1), Duration::from_secs(3600));
    Ok(HttpLimits {
        body_timeout: parse_bounded_duration(
            "LETSCHAT_BODY_TIMEOUT",
            args.body_timeout.as_deref(),
            d.body_timeout,
            second,
            hour,
        )?,
        header_timeout: parse_bounded_duration(
            "LETSCHAT_HEADER_TIMEOUT",
            args.header_timeout.as_deref(),
            d.header_timeout,
            second,
            hour,
        )?,
        keep_alive: parse_bounded_duration(
            "LETSCHAT_KEEP_ALIVE",
            args.keep_alive.as_deref(),
            d.keep_alive,
            second,
            hour,
        )?,
        write_timeout: parse_bounded_duration(
            "LETSCHAT_WRITE_TIMEOUT",
            args.write_timeout.as_deref(),
            d.write_timeout,
            second,
            hour,
        )?,
        max_connections_per_ip: parse_num(
            "LETSCHAT_MAX_CONNECTIONS_PER_IP",
            args.max_connections_per_ip.as_deref(),
            d.max_connections_per_ip,
            1..=10_000_000,
        )?,
        history_page_bytes: parse_num(
            "LETSCHAT_HISTORY_PAGE_BYTES",
            args.history_page_bytes.as_deref(),
            d.history_page_bytes,
            16 * 1024..=64 * 1024 * 1024,
        )?,
    })
}

/// `7d`, `12h`, `90m`, `3600s`, `3600` (seconds), or anything humantime understands.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("'{s}' is not a duration like 7d or 12h ({e})"))
}

/// The secret kept in `dir/jwt_secret`, generated there when there is none. `earlier` is where
/// earlier versions kept it (beside the SQLite database); one found there is used (and the log
/// says to move it), so that a server upgraded without `LETSCHAT_DATA_DIR` keeps its tokens.
fn load_or_create_secret(dir: &Path, earlier: &Path) -> Result<Secret, String> {
    let path = dir.join("jwt_secret");
    let earlier = absolute(&earlier.join("jwt_secret"))?;
    if !path.exists() && earlier != path && earlier.is_file() {
        let secret = read_secret(&earlier)?;
        tracing::warn!(
            path = %earlier.display(),
            data_dir_path = %path.display(),
            "LETSCHAT_JWT_SECRET is unset; using the secret kept beside the database (move it into the data folder)"
        );
        return Ok(secret);
    }
    if path.exists() {
        let secret = read_secret(&path)?;
        tracing::warn!(path = %path.display(), "LETSCHAT_JWT_SECRET is unset; using the secret kept in the data folder");
        return Ok(secret);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let bytes: [u8; 64] = rand::random();
    write_private(&path, &hex::encode(bytes))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tracing::warn!(path = %path.display(), "LETSCHAT_JWT_SECRET is unset; generated a secret and kept it in the data folder (set it explicitly in production)");
    Ok(Secret::new(bytes.to_vec()))
}

fn read_secret(path: &Path) -> Result<Secret, String> {
    let hexed = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let bytes = hex::decode(hexed.trim())
        .map_err(|_| format!("{} is not a hex-encoded secret", path.display()))?;
    if bytes.len() < 32 {
        return Err(format!(
            "{} holds a secret shorter than 32 bytes",
            path.display()
        ));
    }
    Ok(Secret::new(bytes))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ServeArgs {
        ServeArgs {
            jwt_secret: Some("x".repeat(32)),
            ..Default::default()
        }
    }

    #[test]
    fn defaults() {
        let c = Config::from_args(&args()).expect("defaults are valid");
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.token_ttl.as_secs(), 7 * 24 * 3600);
        assert_eq!(c.bcrypt_cost, 12);
        let data = std::env::current_dir().unwrap().join("data");
        assert_eq!(c.data_dir, data);
        assert_eq!(
            c.database_url,
            format!("sqlite://{}", data.join("letschat.db").display())
        );
        assert_eq!(c.metrics_bind, None);
        assert!(c.trusted_proxies.is_empty());
        assert!(c.static_dir.is_absolute(), "{}", c.static_dir.display());
        let u = &c.uploads;
        assert_eq!(u.dir, data.join("uploads"));
        assert_eq!(u.max_bytes, 25 * 1024 * 1024);
        assert_eq!(u.quota_bytes_per_day, 1024 * 1024 * 1024);
        assert_eq!(u.link_ttl, Duration::from_secs(3600));
        assert_eq!(u.unsent_ttl, Duration::from_secs(24 * 3600));
        assert_eq!(u.max_image_pixels, 40_000_000);
        assert_eq!(u.bytes_per_sec, 64 * 1024 * 1024);
    }

    #[test]
    fn upload_settings() {
        let mut a = args();
        a.upload_dir = Some("/srv/chat/files".into());
        a.max_upload_bytes = Some("1048576".into());
        a.upload_link_ttl = Some("15m".into());
        a.upload_bytes_per_sec = Some("0".into());
        let c = Config::from_args(&a).expect("valid");
        assert_eq!(c.uploads.bytes_per_sec, 0, "no limit");
        assert_eq!(c.uploads.dir, PathBuf::from("/srv/chat/files"));
        assert_eq!(c.uploads.max_bytes, 1 << 20);
        assert_eq!(c.uploads.link_ttl, Duration::from_secs(900));
        for (set, var) in [
            (
                (|a: &mut ServeArgs| a.max_upload_bytes = Some("0".into())) as fn(&mut ServeArgs),
                "LETSCHAT_MAX_UPLOAD_BYTES",
            ),
            (
                |a| a.upload_link_ttl = Some("1s".into()),
                "LETSCHAT_UPLOAD_LINK_TTL",
            ),
            (
                |a| a.uploads_per_user = Some("none".into()),
                "LETSCHAT_UPLOADS_PER_USER",
            ),
        ] {
            let mut a = args();
            set(&mut a);
            let e = Config::from_args(&a).expect_err(var).to_string();
            assert!(e.contains(var), "{e}");
        }
    }

    #[test]
    fn files_resolve_from_the_data_folder_as_absolute_paths() {
        let cwd = std::env::current_dir().unwrap();
        let mut a = args();
        a.data_dir = Some("state/chat".into());
        let c = Config::from_args(&a).expect("valid");
        assert_eq!(c.data_dir, cwd.join("state/chat"));
        assert_eq!(
            c.database_url,
            format!("sqlite://{}", cwd.join("state/chat/letschat.db").display())
        );
        assert_eq!(c.uploads.dir, cwd.join("state/chat/uploads"));

        // Given explicitly, they are not in the data folder; relative ones are made absolute.
        a.database_url = Some("sqlite://db/chat.db".into());
        a.upload_dir = Some("files".into());
        a.static_dir = Some("web".into());
        let c = Config::from_args(&a).expect("valid");
        assert_eq!(
            c.database_url,
            format!("sqlite://{}", cwd.join("db/chat.db").display())
        );
        assert_eq!(c.uploads.dir, cwd.join("files"));
        assert_eq!(c.static_dir, cwd.join("web"));
        for url in [
            "sqlite:///var/lib/letschat/chat.db",
            "sqlite://:memory:",
            "postgres://chat:pw@db.internal/chat",
        ] {
            a.database_url = Some(url.into());
            assert_eq!(Config::from_args(&a).expect(url).database_url, url);
        }
        a.data_dir = Some("/srv/letschat".into());
        a.database_url = None;
        a.upload_dir = Some(" ".into());
        let c = Config::from_args(&a).expect("valid");
        assert_eq!(c.database_url, "sqlite:///srv/letschat/letschat.db");
        assert_eq!(c.uploads.dir, PathBuf::from("/srv/letschat/uploads"));
    }

    #[test]
    fn the_generated_secret_is_kept_in_the_data_folder_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut a = args();
        a.jwt_secret = None;
        a.data_dir = Some(data.display().to_string());
        a.database_url = Some("postgres://chat@db.internal/chat".into());
        let first = Config::from_args(&a).expect("valid").jwt_secret;
        let path = data.join("jwt_secret");
        assert!(path.is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        let again = Config::from_args(&a).expect("valid").jwt_secret;
        assert_eq!(first.expose(), again.expose());
        assert_eq!(first.expose().len(), 64);
    }

    #[test]
    fn a_secret_kept_beside_the_database_by_earlier_versions_is_still_used() {
        let dir = tempfile::tempdir().unwrap();
        let db_dir = dir.path().join("db");
        std::fs::create_dir_all(&db_dir).unwrap();
        std::fs::write(db_dir.join("jwt_secret"), hex::encode([7u8; 40])).unwrap();
        let mut a = args();
        a.jwt_secret = None;
        a.data_dir = Some(dir.path().join("data").display().to_string());
        a.database_url = Some(format!("sqlite://{}", db_dir.join("chat.db").display()));
        let c = Config::from_args(&a).expect("valid");
        assert_eq!(c.jwt_secret.expose(), &[7u8; 40]);
        assert!(
            !dir.path().join("data/jwt_secret").exists(),
            "none generated"
        );
    }

    #[test]
    fn trusted_proxies() {
        let mut a = args();
        a.trusted_proxies = Some("127.0.0.1/32, ::1/128,10.0.0.0/8".into());
        let c = Config::from_args(&a).expect("valid");
        assert_eq!(
            c.trusted_proxies.to_string(),
            "127.0.0.1/32,::1/128,10.0.0.0/8"
        );
        a.trusted_proxies = Some("  ".into());
        assert!(Config::from_args(&a)
            .expect("empty")
            .trusted_proxies
            .is_empty());
        a.trusted_proxies = Some("10.0.0.0/8,proxy.internal".into());
        let e = Config::from_args(&a).expect_err("a name").to_string();
        assert!(
            e.contains("LETSCHAT_TRUSTED_PROXIES") && e.contains("proxy.internal"),
            "{e}"
        );
    }

    /// Every setting's help ends with `[default: …]`; where that is a value, giving it
    /// explicitly configures the same server as leaving the setting unset.
    #[test]
    fn the_documented_defaults_are_the_real_ones() {
        use clap::{CommandFactory, FromArgMatches, Parser};
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let mut command = Cli::command();
        command.build();
        let mut argv = vec!["letschat".to_owned()];
        let mut checked = 0;
        for arg in command.get_arguments() {
            let Some(env) = arg.get_env() else { continue };
            let env = env.to_string_lossy().into_owned();
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(ToString::to_string);
            let help = help.unwrap_or_default();
            let default = help
                .rsplit_once("[default: ")
                .and_then(|(_, rest)| rest.strip_suffix(']'))
                .unwrap_or_else(|| panic!("{env}: no [default: …] at the end of {help:?}"));
            let literal = !default.contains(['<', ' ']) && !["none", "off"].contains(&default);
            if literal
                && !["LETSCHAT_JWT_SECRET", "RUST_LOG", "LETSCHAT_LOG_FORMAT"]
                    .contains(&env.as_str())
            {
                argv.push(format!("--{}", arg.get_long().unwrap_or_default()));
                argv.push(default.to_owned());
                checked += 1;
            }
        }
        assert!(checked >= 40, "{checked}: {argv:?}");
        let matches = command
            .try_get_matches_from(&argv)
            .expect("the defaults parse");
        let mut explicit = Cli::from_arg_matches(&matches).expect("args").serve;
        explicit.jwt_secret = args().jwt_secret;
        let explicit = Config::from_args(&explicit).expect("the defaults are valid");
        let implicit = Config::from_args(&args()).expect("valid");
        assert_eq!(format!("{explicit:?}"), format!("{implicit:?}"), "{argv:?}");
    }

    #[test]
    fn web_settings() {
        let c = Config::from_args(&args()).expect("defaults are valid");
        assert_eq!(c.web.public_url, None);
        assert!(!c.web.serve_sourcemaps);

        let mut a = args();
        a.public_url = Some(" HTTPS://Chat.Example.com/ ".into());
        a.serve_sourcemaps = Some("1".into());
        let c = Config::from_args(&a).expect("valid");
        let public = c.web.public_url.expect("set");
        assert!(public.is_https());
        assert_eq!(public.origin(), "https://chat.example.com");
        assert_eq!(public.websocket_origin(), "wss://chat.example.com");
        assert!(c.web.serve_sourcemaps);
        // Browsers on the public address may open the WebSocket.
        assert!(c
            .ws
            .allowed_origins
            .contains(&"https://chat.example.com".to_owned()));

        for (raw, ws) in [
            ("http://127.0.0.1:8080", "ws://127.0.0.1:8080"),
            ("http://[::1]:8080", "ws://[::1]:8080"),
            ("https://[2001:db8::1]", "wss://[2001:db8::1]"),
            (
                "https://chat.example.com:8443",
                "wss://chat.example.com:8443",
            ),
        ] {
            let url = PublicUrl::parse(raw).expect(raw);
            assert_eq!(url.websocket_origin(), ws, "{raw}");
            assert_eq!(url.is_https(), raw.starts_with("https"), "{raw}");
        }

        for empty in ["", "  "] {
            let mut a = args();
            a.public_url = Some(empty.into());
            a.serve_sourcemaps = Some(empty.into());
            let c = Config::from_args(&a).expect("empty is unset");
            assert_eq!(c.web.public_url, None);
            assert!(!c.web.serve_sourcemaps);
        }
        for off in ["0", "false", "No", "OFF"] {
            let mut a = args();
            a.serve_sourcemaps = Some(off.into());
            assert!(!Config::from_args(&a).expect(off).web.serve_sourcemaps);
        }

        for bad_url in [
            "chat.example.com",
            "ftp://chat.example.com",
            "https://",
            "https://chat.example.com/app",
            "https://chat.example.com?x=1",
            "https://user@chat.example.com",
            "https://chat.example.com:99999",
            "https://chat example.com",
            "https://chat.example.com;script-src *",
            "https://[::1",
        ] {
            let mut a = args();
            a.public_url = Some(bad_url.into());
            let e = Config::from_args(&a).expect_err(bad_url).to_string();
            assert!(e.contains("LETSCHAT_PUBLIC_URL"), "{bad_url}: {e}");
        }
        let mut a = args();
        a.serve_sourcemaps = Some("sometimes".into());
        let e = Config::from_args(&a).expect_err("not a bool").to_string();
        assert!(e.contains("LETSCHAT_SERVE_SOURCEMAPS"), "{e}");
    }

    #[test]
    fn metrics_bind_is_off_unless_set() {
        let mut a = args();
        a.metrics_bind = Some(" ".into());
        assert_eq!(Config::from_args(&a).expect("valid").metrics_bind, None);
        a.metrics_bind = Some("127.0.0.1:9464".into());
        let c = Config::from_args(&a).expect("valid");
        assert_eq!(
            c.metrics_bind,
            Some("127.0.0.1:9464".parse().expect("address"))
        );
        a.metrics_bind = Some("[::1]:9464".into());
        assert!(Config::from_args(&a).expect("valid").metrics_bind.is_some());
    }

    #[test]
    fn bad_values_name_their_variable() {
        let mut a = args();
        a.bind = Some("nowhere".into());
        assert!(Config::from_args(&a)
            .expect_err("must fail")
            .to_string()
            .contains("LETSCHAT_BIND"));
        let mut a = args();
        a.token_ttl = Some("soon".into());
        assert!(Config::from_args(&a)
            .expect_err("must fail")
            .to_string()
            .contains("LETSCHAT_TOKEN_TTL"));
        let mut a = args();
        a.database_url = Some("mysql://x".into());
        assert!(Config::from_args(&a)
            .expect_err("must fail")
            .to_string()
            .contains("DATABASE_URL"));
        let mut a = args();
        a.bcrypt_cost = Some("3".into());
        assert!(Config::from_args(&a)
            .expect_err("must fail")
            .to_string()
            .contains("LETSCHAT_BCRYPT_COST"));
        for bad_bind in ["9464", "localhost:9464", "127.0.0.1", "127.0.0.1:8080"] {
            let mut a = args();
            a.metrics_bind = Some(bad_bind.into());
            let e = Config::from_args(&a).expect_err(bad_bind).to_string();
            assert!(e.contains("LETSCHAT_METRICS_BIND"), "{bad_bind}: {e}");
        }
        let mut a = args();
        a.jwt_secret = Some("short".into());
        assert!(Config::from_args(&a)
            .expect_err("must fail")
            .to_string()
            .contains("LETSCHAT_JWT_SECRET"));
    }
}
