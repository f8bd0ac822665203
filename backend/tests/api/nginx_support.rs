//! A real nginx (Debian's package) of a test's own, in front of test servers.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The nginx binary: Debian's `/usr/sbin/nginx`, else one on `PATH`; `None` when there is none.
pub fn nginx_binary() -> Option<PathBuf> {
    let debian = PathBuf::from("/usr/sbin/nginx");
    if debian.is_file() {
        return Some(debian);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("nginx"))
            .find(|p| p.is_file())
    })
}

/// nginx on a free port of 127.0.0.1, round-robining `upstreams` (ports of 127.0.0.1), with the
/// WebSocket upgrade headers the deployment guide gives; killed when dropped.
pub struct TestNginx {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl TestNginx {
    pub fn start(upstreams: &[u16]) -> TestNginx {
        TestNginx::start_with(upstreams, "")
    }

    /// As [`TestNginx::start`], with `directives` added to every `location` (e.g. the
    /// forwarding headers, or `proxy_bind` to connect upstream from another address).
    pub fn start_with(upstreams: &[u16], directives: &str) -> TestNginx {
        let nginx = nginx_binary().expect("nginx is installed (Debian package nginx)");
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        let servers: String = upstreams
            .iter()
            .map(|p| format!("server 127.0.0.1:{p};\n"))
            .collect();
        let conf = format!(
            r#"daemon off;
user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream letschat {{
        {servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location /api/ws {{
            proxy_pass http://letschat;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $http_host;
            proxy_read_timeout 120s;
            proxy_send_timeout 120s;
            {directives}
        }}
        location / {{
            proxy_pass http://letschat;
            proxy_set_header Host $http_host;
            {directives}
        }}
    }}
}}
"#
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx runs (Debian package nginx)");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        TestNginx {
            port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for TestNginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
