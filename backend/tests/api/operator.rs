//! What an operator meets: one data folder holding the server's files (private to its user,
//! wherever the server is started from), start-up lines naming every path before "listening",
//! a log without colour codes when written to a file, `--help` listing every setting with its
//! default, and `letschat admin reset-password` for an account that is locked out.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::helpers::{spawn_app_with, TestApp, User};
use crate::support::{assert_error, login, PASSWORD};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every file and folder under `dir` (not `dir` itself).
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}

/// Runs `letschat args…` from `cwd` with `env` (and no database, data folder or admin password
/// of the test's environment); stdin is `stdin`. (success, stdout, stderr)
async fn letschat(
    cwd: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_letschat"));
    cmd.current_dir(cwd)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("LETSCHAT_DATA_DIR")
        .env_remove("LETSCHAT_ADMIN_PASSWORD")
        .env("LETSCHAT_BCRYPT_COST", "4")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the binary runs");
    if let Some(text) = stdin {
        let mut input = child.stdin.take().unwrap();
        input.write_all(text.as_bytes()).await.unwrap();
        drop(input);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("letschat {args:?} did not finish within a minute"))
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The server started from `cwd` with `LETSCHAT_DATA_DIR=state` (relative) and nothing else
/// about files: everything lands in `cwd/state`, private, and the log (a file) names the
/// absolute paths before "listening", without colour codes.
#[tokio::test]
async fn the_data_folder_holds_every_file_privately_wherever_the_server_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path().join("somewhere else");
    std::fs::create_dir_all(&cwd).unwrap();
    let data = cwd.join("state");
    let log_path = tmp.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let no_web = tmp.path().join("no-web-client");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_letschat"))
        .current_dir(&cwd)
        .env("LETSCHAT_BIND", format!("127.0.0.1:{port}"))
        .env("LETSCHAT_DATA_DIR", "state")
        .env("LETSCHAT_STATIC_DIR", &no_web)
        .env("LETSCHAT_TRUSTED_PROXIES", "127.0.0.1/32")
        .env("LETSCHAT_BCRYPT_COST", "4")
        .env("LETSCHAT_WORKERS", "1")
        .env("RUST_LOG", "info")
        .env_remove("DATABASE_URL")
        .env_remove("LETSCHAT_JWT_SECRET")
        .env_remove("LETSCHAT_UPLOAD_DIR")
        .env_remove("LETSCHAT_LOG_FORMAT")
        .env_remove("LETSCHAT_METRICS_BIND")
        .env_remove("REDIS_URL")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the server starts");
    let app = TestApp::for_address(port);
    let mut up = false;
    for _ in 0..200 {
        if let Ok(r) = app.client.get(app.url("/api/health")).send().await {
            up = r.status() == StatusCode::OK;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        up,
        "the server did not come up: {}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );

    // A registration forwarded by the trusted proxy (this test), and an upload.
    let r = app
        .client
        .post(app.url("/api/auth/register"))
        .header("X-Forwarded-For", "203.0.113.7")
        .json(&json!({"username": "operator.on-call", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    let user = User {
        id: body["user"]["id"].as_i64().unwrap(),
        username: "operator.on-call".into(),
        token: body["token"].as_str().unwrap().to_owned(),
    };
    let r = crate::uploads::upload_as(
        &app,
        &user,
        "notes 📝.txt",
        "text/plain",
        "שלום — hello ✨\n".repeat(100).into_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");

    // An administrator made from yet another folder finds the same database.
    let data_env = data.display().to_string();
    let (ok, out, err) = letschat(
        tmp.path(),
        &["admin", "create", "--username", "root_admin", "--generate"],
        &[("LETSCHAT_DATA_DIR", &data_env)],
        None,
    )
    .await;
    assert!(ok, "{out} {err}");
    let (ok, out, err) = letschat(
        tmp.path(),
        &["admin", "list"],
        &[("LETSCHAT_DATA_DIR", &data_env)],
        None,
    )
    .await;
    assert!(ok && out.contains("root_admin"), "{out} {err}");

    // The files, all in the data folder, private to the server's user (checked while it runs:
    // SQLite removes its WAL and shared-memory files when the last connection closes).
    assert_eq!(mode(&data), 0o700);
    for file in [
        "letschat.db",
        "letschat.db-wal",
        "letschat.db-shm",
        "jwt_secret",
    ] {
        let path = data.join(file);
        assert!(path.is_file(), "{} is missing", path.display());
        assert_eq!(mode(&path), 0o600, "{file}");
    }
    let uploads = data.join("uploads");
    assert_eq!(mode(&uploads), 0o700);
    let stored = walk(&uploads);
    assert!(stored.iter().any(|p| p.is_file()), "{stored:?}");
    for path in &stored {
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(path), expected, "{}", path.display());
    }
    let mut in_cwd: Vec<_> = std::fs::read_dir(&cwd)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    in_cwd.sort();
    assert_eq!(
        in_cwd,
        ["state"],
        "only the data folder in the working folder"
    );

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();

    // The log: plain text, every path absolute and named before "listening".
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log file:\n{log}"
    );
    let line_of = |needle: &str| {
        log.lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in\n{log}"))
    };
    let listening = line_of("Let's Chat is listening");
    let data_str = data.display().to_string();
    for (needle, path) in [
        ("data folder", data_str.clone()),
        ("database (SQLite)", format!("{data_str}/letschat.db")),
        ("upload folder", format!("{data_str}/uploads")),
        ("generated a secret", format!("{data_str}/jwt_secret")),
        ("web client not found", no_web.display().to_string()),
        ("trusted proxies", "127.0.0.1/32".to_owned()),
    ] {
        let at = line_of(needle);
        assert!(at < listening, "{needle:?} after listening:\n{log}");
        let line = log.lines().nth(at).unwrap();
        assert!(
            line.contains(&path),
            "{needle:?} does not name {path}: {line}"
        );
    }
    assert!(
        log.lines()
            .nth(line_of("web client not found"))
            .unwrap()
            .contains("WARN"),
        "{log}"
    );
    // The request log names the client the trusted proxy forwarded.
    let register_line = log
        .lines()
        .find(|l| l.contains("http.route=/api/auth/register"))
        .unwrap_or_else(|| panic!("no request line for the registration in\n{log}"));
    assert!(
        register_line.contains("http.client_ip=203.0.113.7"),
        "{register_line}"
    );
}

#[tokio::test]
async fn an_invalid_log_format_or_proxy_list_stops_the_start_with_its_name() {
    let tmp = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("LETSCHAT_LOG_FORMAT", "yaml"),
        ("LETSCHAT_TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal"),
    ] {
        let (ok, _, err) = letschat(
            tmp.path(),
            &[],
            &[
                (var, value),
                ("LETSCHAT_BIND", "127.0.0.1:0"),
                ("LETSCHAT_DATA_DIR", "data"),
            ],
            None,
        )
        .await;
        assert!(!ok, "{var}={value} started");
        assert!(err.contains(var), "{err}");
    }
}

/// The settings of `letschat --help`: each option's text (from its line to the next option's),
/// by the environment variable it names.
fn help_entries(help: &str) -> Vec<(String, String)> {
    let mut entries: Vec<String> = Vec::new();
    for line in help.lines() {
        // An option's line: `  -h, --help` or `      --bind <BIND>`; its text is indented more.
        if line.starts_with("  -") || (line.starts_with("      --")) {
            entries.push(String::new());
        }
        if let Some(e) = entries.last_mut() {
            e.push_str(line.trim());
            e.push(' ');
        }
    }
    entries
        .into_iter()
        .filter_map(|e| {
            let name = e
                .split("[env: ")
                .nth(1)?
                .split(['=', ']'])
                .next()?
                .to_owned();
            Some((name, e))
        })
        .collect()
}

#[tokio::test]
async fn help_lists_every_variable_with_its_default() {
    let tmp = tempfile::tempdir().unwrap();
    let (ok, help, err) = letschat(tmp.path(), &["--help"], &[], None).await;
    assert!(ok, "{err}");
    let entries = help_entries(&help);
    let listed: BTreeSet<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    for (name, text) in &entries {
        assert!(text.contains("[default: "), "{name} has no default: {text}");
    }
    // Every variable the server reads (each setting in config.rs) is there.
    let source = include_str!("../../src/config.rs");
    let mut read: BTreeSet<&str> = source
        .split("env = \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    read.extend(["RUST_LOG", "LETSCHAT_LOG_FORMAT", "LETSCHAT_DATA_DIR"]);
    read.extend(["LETSCHAT_TRUSTED_PROXIES", "DATABASE_URL"]);
    assert!(read.len() >= 55, "{read:?}");
    let missing: Vec<_> = read.difference(&listed).collect();
    assert!(missing.is_empty(), "not in --help: {missing:?}\n{help}");
    // ... and in the README's configuration table.
    let readme = include_str!("../../../README.md");
    let undocumented: Vec<_> = listed
        .iter()
        .filter(|name| !readme.contains(&format!("| `{name}` |")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in the README: {undocumented:?}"
    );

    let (ok, help, err) = letschat(tmp.path(), &["admin", "--help"], &[], None).await;
    assert!(ok, "{err}");
    for name in [
        "DATABASE_URL",
        "LETSCHAT_DATA_DIR",
        "LETSCHAT_BCRYPT_COST",
        "LETSCHAT_ADMIN_PASSWORD",
    ] {
        assert!(help.contains(name), "admin --help lacks {name}:\n{help}");
    }
    let (ok, help, err) = letschat(
        tmp.path(),
        &["admin", "reset-password", "--help"],
        &[],
        None,
    )
    .await;
    assert!(ok, "{err}");
    for flag in ["--username", "--generate", "--password-stdin"] {
        assert!(help.contains(flag), "{flag}:\n{help}");
    }
}

async fn login_status(app: &TestApp, username: &str, password: &str) -> StatusCode {
    login(app, username, password).await.status
}

/// The password line `--generate` prints.
fn generated(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no generated password in {out}"))
        .to_owned()
}

#[tokio::test]
async fn reset_password_by_name_generates_or_reads_stdin_and_unlocks_the_account() {
    let app = spawn_app_with(|c| c.auth_limits.failed_logins_per_hour = 3).await;
    let alice = app.register("Alice_Liddell").await;
    let db = [("DATABASE_URL", app.database_url.as_str())];
    let cwd = app.upload_dir.parent().unwrap().to_path_buf();
    for i in 0..3 {
        let status = login_status(&app, "alice_liddell", &format!("wrong guess {i}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login_status(&app, "alice_liddell", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );

    let reset = [
        "admin",
        "reset-password",
        "--username",
        "ALICE_LIDDELL",
        "--generate",
    ];
    let (ok, out, err) = letschat(&cwd, &reset, &db, None).await;
    assert!(ok, "{out} {err}");
    assert!(out.contains("login throttle cleared"), "{out}");
    let password = generated(&out);
    assert_eq!(password.chars().count(), 24, "{password}");
    assert_eq!(
        login_status(&app, "alice_liddell", &password).await,
        StatusCode::OK
    );
    assert_eq!(
        login_status(&app, "alice_liddell", PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    assert_error(
        &app.get("/api/me", &alice.token).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    let chosen = "שלום עולם ✨ 2026";
    let reset = [
        "admin",
        "reset-password",
        "--username",
        "alice_liddell",
        "--password-stdin",
    ];
    let (ok, out, err) = letschat(&cwd, &reset, &db, Some(&format!("{chosen}\n"))).await;
    assert!(ok, "{out} {err}");
    assert!(!out.contains(chosen), "the password is not printed: {out}");
    assert_eq!(
        login_status(&app, "alice_liddell", chosen).await,
        StatusCode::OK
    );
    assert_eq!(
        login_status(&app, "alice_liddell", &password).await,
        StatusCode::UNAUTHORIZED
    );

    // The rules still hold, and nothing changes when they refuse.
    let (ok, _, err) = letschat(&cwd, &reset, &db, Some("password1\n")).await;
    assert!(!ok && err.contains("common"), "{err}");
    let (ok, _, err) = letschat(&cwd, &reset, &db, Some("")).await;
    assert!(!ok, "{err}");
    let both = [
        "admin",
        "reset-password",
        "--username",
        "alice_liddell",
        "alice_liddell",
    ];
    let (ok, _, err) = letschat(&cwd, &both, &db, None).await;
    assert!(!ok && err.contains("--username"), "{err}");
    let (ok, _, err) = letschat(&cwd, &["admin", "reset-password"], &db, None).await;
    assert!(!ok, "{err}");
    assert_eq!(
        login_status(&app, "alice_liddell", chosen).await,
        StatusCode::OK
    );
}
