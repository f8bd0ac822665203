//! `spawn_app()` and small HTTP helpers shared by every test file.
#![allow(dead_code)]

use std::time::Duration;

use diesel::{Connection, RunQueryDsl};
use letschat::config::{AuthLimits, Config, Secret};
use letschat::startup::Application;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    /// The server's `DATABASE_URL` (empty for `for_address`).
    pub database_url: String,
    /// The server's `LETSCHAT_UPLOAD_DIR`.
    pub upload_dir: std::path::PathBuf,
    _dir: tempfile::TempDir,
    pg: Option<PgDatabase>,
}

/// A throw-away PostgreSQL database, dropped with the test.
pub struct PgDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut c) = diesel::PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .execute(&mut c);
        }
    }
}

/// Which backend this run tests: SQLite unless `LETSCHAT_TEST_BACKEND=postgres`.
pub fn postgres_url() -> Option<String> {
    if std::env::var("LETSCHAT_TEST_BACKEND").as_deref() != Ok("postgres") {
        return None;
    }
    Some(
        std::env::var("LETSCHAT_TEST_POSTGRES_URL")
            .expect("LETSCHAT_TEST_BACKEND=postgres needs LETSCHAT_TEST_POSTGRES_URL"),
    )
}

/// A configuration for tests: a fast bcrypt cost and generous sign-in limits.
pub fn test_config(database_url: String) -> Config {
    Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        // `build_app` gives each server a data folder of its own.
        data_dir: std::env::temp_dir().join("letschat-test-data"),
        trusted_proxies: Default::default(),
        metrics_bind: None,
        database_url,
        redis: None,
        jwt_secret: Secret::new(b"test-secret-test-secret-test-secret!".to_vec()),
        token_ttl: Duration::from_secs(3600),
        static_dir: "/nonexistent".into(),
        bcrypt_cost: 4,
        auth_limits: AuthLimits {
            per_ip_per_minute: 10_000,
            failed_logins_per_hour: 10_000,
            per_prefix_per_minute: 10_000,
            failed_logins_per_device: 10_000,
        },
        db_pool_size: 8,
        hash_concurrency: 2,
        hash_queue: 1000,
        workers: 2,
        ws: letschat::config::WsConfig::default(),
        max_contacts: 5000,
        heavy: letschat::config::HeavyLimits::default(),
        // Tests open many connections from 127.0.0.1; `http_limits` lowers the cap.
        http: letschat::config::HttpLimits {
            max_connections_per_ip: 100_000,
            ..Default::default()
        },
        hash_per_prefix: 1000,
        hash_per_address: 1000,
        hash_max_wait: Duration::from_secs(10),
        hash_public_share: 25,
        edit_window: None,
        max_changes_per_sec: 1000,
        // `build_app` puts uploads in the test's own folder.
        uploads: letschat::config::UploadConfig {
            dir: std::env::temp_dir().join("letschat-test-uploads"),
            ..Default::default()
        },
        web: letschat::config::WebConfig::default(),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A new empty database for one test: a SQLite file in `dir`, or a PostgreSQL database that
/// is dropped with the returned guard.
pub fn fresh_database(dir: &std::path::Path) -> (String, Option<PgDatabase>) {
    match postgres_url() {
        Some(admin_url) => {
            let name = format!("letschat_test_{}", uuid_like());
            let mut c = diesel::PgConnection::establish(&admin_url).expect("connect to PostgreSQL");
            diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
                .execute(&mut c)
                .unwrap();
            let url = replace_db_name(&admin_url, &name);
            (url, Some(PgDatabase { admin_url, name }))
        }
        None => (format!("sqlite://{}", dir.join("test.db").display()), None),
    }
}

/// Starts the server with a test configuration adjusted by `tweak`.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let (app, server) = build_app(tweak).await;
    tokio::spawn(server.run_until_stopped());
    app
}

/// Builds the server on a fresh database with a test configuration adjusted by `tweak`; the
/// caller runs it (`run_until_stopped`).
pub async fn build_app(tweak: impl FnOnce(&mut Config)) -> (TestApp, Application) {
    let dir = tempfile::tempdir().unwrap();
    let (url, pg) = fresh_database(dir.path());
    let mut config = test_config(url);
    config.data_dir = dir.path().to_path_buf();
    config.uploads.dir = dir.path().join("uploads");
    tweak(&mut config);
    build_on(config, dir, pg).await
}

/// The server of `config`, built (not yet running), and its client side, which owns `dir` and
/// `pg` (the database, when it is the owner).
async fn build_on(
    config: Config,
    dir: tempfile::TempDir,
    pg: Option<PgDatabase>,
) -> (TestApp, Application) {
    let database_url = config.database_url.clone();
    let upload_dir = config.uploads.dir.clone();
    let server = Application::build(config).await.expect("the app starts");
    let port = server.port();
    let app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        database_url,
        upload_dir,
        _dir: dir,
        pg,
    };
    (app, server)
}

/// Another instance of `first`'s server: the same database, a configuration adjusted by
/// `tweak` (the database stays `first`'s, which owns it).
pub async fn spawn_instance_of(first: &TestApp, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = test_config(first.database_url.clone());
    config.uploads.dir = first.upload_dir.clone();
    tweak(&mut config);
    config.database_url = first.database_url.clone();
    let (app, server) = build_on(config, tempfile::tempdir().unwrap(), None).await;
    tokio::spawn(server.run_until_stopped());
    app
}

fn uuid_like() -> String {
    let n: u128 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}_{:x}", n, std::process::id()) + &format!("_{:x}", rand_u32())
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish() as u32
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].rfind('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A response: status, headers and JSON body (Null when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    /// The error code of a contract error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// A registered user with a token.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub token: String,
}

impl TestApp {
    /// A client for a server that something else started on `port`.
    pub fn for_address(port: u16) -> TestApp {
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            database_url: String::new(),
            upload_dir: std::path::PathBuf::new(),
            _dir: tempfile::tempdir().unwrap(),
            pg: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    pub async fn register(&self, username: &str) -> User {
        let r = self
            .call(
                Method::POST,
                "/api/auth/register",
                None,
                Some(json!({"username": username, "password": "tortoise-42"})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "register {username}: {:?}",
            r.body
        );
        User {
            id: r.body["user"]["id"].as_i64().unwrap(),
            username: username.to_owned(),
            token: r.body["token"].as_str().unwrap().to_owned(),
        }
    }

    /// `a` adds `b` as a contact; returns the shared room's id.
    pub async fn add_contact(&self, a: &User, b: &User) -> i64 {
        let r = self
            .post("/api/contacts", &a.token, json!({"username": b.username}))
            .await;
        assert!(
            r.status == StatusCode::CREATED || r.status == StatusCode::OK,
            "{:?}",
            r.body
        );
        r.body["room_id"].as_i64().unwrap()
    }

    /// Two registered users who share a room: (a, b, room_id).
    pub async fn pair(&self, a: &str, b: &str) -> (User, User, i64) {
        let ua = self.register(a).await;
        let ub = self.register(b).await;
        let room = self.add_contact(&ua, &ub).await;
        (ua, ub, room)
    }

    /// Sends a message over REST and returns it.
    pub async fn send(&self, user: &User, room: i64, client_msg_id: &str, body: &str) -> Value {
        let r = self
            .post(
                &format!("/api/rooms/{room}/messages"),
                &user.token,
                json!({"client_msg_id": client_msg_id, "body": body}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body
    }
}

impl TestApp {
    /// A room's whole history, paged forward from the start.
    pub async fn full_history(&self, token: &str, room: i64) -> Vec<Value> {
        self.page_through(token, &format!("/api/rooms/{room}/messages"), "seq")
            .await
    }

    /// Every change of a room (`GET .../changes`), paged forward from the start.
    pub async fn full_changes(&self, token: &str, room: i64) -> Vec<Value> {
        self.page_through(token, &format!("/api/rooms/{room}/changes"), "change_seq")
            .await
    }

    /// Every message of a forward-paged list at `path` (`?after=&limit=`), the cursor being
    /// each page's last message's `cursor` field.
    async fn page_through(&self, token: &str, path: &str, cursor: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let r = self
                .get(&format!("{path}?after={after}&limit=200"), token)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            let page = r.body["messages"].as_array().unwrap().clone();
            if let Some(last) = page.last() {
                after = last[cursor].as_i64().unwrap();
            }
            out.extend(page);
            if !r.body["has_more"].as_bool().unwrap() {
                return out;
            }
        }
    }
}

/// As `spawn_app_with`, and also returns the server's state (for tests that must hold a
/// limiter's turn or read figures the API does not show).
pub async fn spawn_app_with_state(
    tweak: impl FnOnce(&mut Config),
) -> (TestApp, letschat::state::AppState) {
    let (app, server) = build_app(tweak).await;
    let state = server.state().clone();
    tokio::spawn(server.run_until_stopped());
    (app, state)
}

/// The real `letschat` binary as a child process on a free port (for tests that measure the
/// server process itself, e.g. its memory); killed when dropped.
pub struct ChildServer {
    child: std::process::Child,
    pub port: u16,
}

impl ChildServer {
    /// Starts `bin` (the built `letschat` when `None`) on `database_url` with a fast bcrypt cost
    /// and two workers, plus `env` (applied last), and waits until it answers its health check.
    pub async fn start(
        bin: Option<String>,
        database_url: &str,
        env: &[(&str, &str)],
    ) -> ChildServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = std::process::Command::new(
            bin.unwrap_or_else(|| env!("CARGO_BIN_EXE_letschat").to_owned()),
        );
        cmd.env("LETSCHAT_BIND", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", database_url)
            .env(
                "LETSCHAT_JWT_SECRET",
                "child-test-secret-child-test-secret!",
            )
            .env("LETSCHAT_BCRYPT_COST", "4")
            .env("LETSCHAT_STATIC_DIR", "/nonexistent")
            .env("LETSCHAT_WORKERS", "2")
            .env("RUST_LOG", "error")
            .env_remove("LETSCHAT_METRICS_BIND")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let server = ChildServer {
            child: cmd.spawn().expect("the server starts"),
            port,
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = client
                .get(format!("http://127.0.0.1:{port}/api/health"))
                .send()
                .await
            {
                if r.status() == 200 {
                    return server;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not come up");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server at once (SIGKILL), as a crash would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server with SIGTERM and waits (10 s at most) for it to exit.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.pid().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not stop within 10 s of SIGTERM");
    }

    /// Resident and peak resident memory (`VmRSS`, `VmHWM`), in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no {name} in {status}"))
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestApp {
    /// Runs `sql` on the server's database from outside the server (to set up what the API
    /// cannot, such as time having passed).
    pub fn execute_sql(&self, sql: &str) {
        use diesel::connection::SimpleConnection;
        if let Some(path) = self.database_url.strip_prefix("sqlite://") {
            let mut c = diesel::SqliteConnection::establish(path).unwrap();
            c.batch_execute("PRAGMA busy_timeout = 10000;").unwrap();
            c.batch_execute(sql).unwrap();
        } else {
            let mut c = diesel::PgConnection::establish(&self.database_url).unwrap();
            c.batch_execute(sql).unwrap();
        }
    }

    /// Logs `username` in (password `tortoise-42`, as `register` sets) with `User-Agent:
    /// user_agent`: a new session, and its user.
    pub async fn login_as(&self, username: &str, user_agent: &str) -> User {
        let res = self
            .client
            .post(self.url("/api/auth/login"))
            .header(reqwest::header::USER_AGENT, user_agent)
            .json(&json!({"username": username, "password": "tortoise-42"}))
            .send()
            .await
            .expect("request sent");
        assert_eq!(res.status(), StatusCode::OK, "login {username}");
        let body: Value = res.json().await.unwrap();
        User {
            id: body["user"]["id"].as_i64().unwrap(),
            username: username.to_owned(),
            token: body["token"].as_str().unwrap().to_owned(),
        }
    }
}
