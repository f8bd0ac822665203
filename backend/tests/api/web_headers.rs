//! What browsers get besides the bytes: security headers for each kind of answer, caching of
//! the web client's files, compression (dynamic and the build's precompressed copies), source
//! maps, and what must stay as it is (file downloads and their ranges, the WebSocket).

use std::io::Read;
use std::path::Path;

use futures::StreamExt;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{spawn_app_with, TestApp};
use crate::uploads::{fetch_with, upload_as, Fetched};

const INDEX: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="UTF-8"><title>Let's Chat</title>
<script type="module" crossorigin src="/assets/app-abc123.js"></script></head>
<body><div id="root"></div></body></html>"#;

/// A built web client: `index.html`, a hashed script (large enough to be worth compressing)
/// with its source map, and a hashed script the build also left precompressed.
struct FakeSpa {
    dir: tempfile::TempDir,
    script: Vec<u8>,
    precompressed: Vec<u8>,
    precompressed_br: Vec<u8>,
}

fn fake_spa() -> FakeSpa {
    let dir = tempfile::tempdir().unwrap();
    let assets = dir.path().join("assets");
    std::fs::create_dir_all(&assets).unwrap();
    std::fs::write(dir.path().join("index.html"), INDEX).unwrap();
    std::fs::write(dir.path().join("favicon.svg"), "<svg/>").unwrap();
    let script: Vec<u8> = (0..800)
        .map(|i| format!("export const word{i} = \"message number {i} of the conversation\";\n"))
        .collect::<String>()
        .into_bytes();
    std::fs::write(assets.join("app-abc123.js"), &script).unwrap();
    std::fs::write(
        assets.join("app-abc123.js.map"),
        r#"{"version":3,"sources":["app.ts"],"mappings":""}"#,
    )
    .unwrap();
    let precompressed = script.repeat(2);
    let precompressed_br = brotli_bytes(&precompressed);
    std::fs::write(assets.join("pre-Xy9_Zw.js"), &precompressed).unwrap();
    std::fs::write(assets.join("pre-Xy9_Zw.js.br"), &precompressed_br).unwrap();
    FakeSpa {
        dir,
        script,
        precompressed,
        precompressed_br,
    }
}

async fn serve(spa: &FakeSpa, tweak: impl FnOnce(&mut letschat::config::Config)) -> TestApp {
    let static_dir = spa.dir.path().to_owned();
    spawn_app_with(move |c| {
        c.static_dir = static_dir;
        tweak(c);
    })
    .await
}

/// What these tests read of an answer, beyond `Fetched`'s own.
trait Answer {
    fn value(&self, name: &str) -> Option<&str>;
    /// Every value of `name`, joined as one list.
    fn values(&self, name: &str) -> String;
    /// The body with its `Content-Encoding` undone.
    fn decoded(&self) -> Vec<u8>;
}

impl Answer for Fetched {
    fn value(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn values(&self, name: &str) -> String {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn decoded(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self.value("content-encoding") {
            None => return self.bytes.clone(),
            Some("br") => brotli::Decompressor::new(&self.bytes[..], 4096)
                .read_to_end(&mut out)
                .unwrap(),
            Some("gzip") => flate2::read::GzDecoder::new(&self.bytes[..])
                .read_to_end(&mut out)
                .unwrap(),
            Some(other) => panic!("unexpected content-encoding {other}"),
        };
        out
    }
}

/// GET `path` with extra headers (reqwest here decodes nothing).
async fn get(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Fetched {
    fetch_with(app, path, headers).await
}

fn brotli_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        std::io::Write::write_all(&mut w, bytes).unwrap();
    }
    out
}

/// The web client's policy, directive by directive.
fn directives(policy: &str) -> Vec<(String, Vec<String>)> {
    policy
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            let mut words = d.split_whitespace().map(str::to_owned);
            let name = words.next().unwrap_or_default();
            (name, words.collect())
        })
        .collect()
}

fn directive(policy: &str, name: &str) -> Vec<String> {
    directives(policy)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in {policy}"))
        .1
}

/// The headers every answer carries.
fn assert_common(got: &Fetched) {
    assert_eq!(
        got.value("x-content-type-options"),
        Some("nosniff"),
        "{got:?}"
    );
    assert_eq!(got.value("referrer-policy"), Some("no-referrer"), "{got:?}");
    assert_eq!(got.value("x-frame-options"), Some("DENY"), "{got:?}");
}

/// The headers of the web client's files: its documents' and its assets'.
fn assert_spa_headers(got: &Fetched, port: u16) {
    assert_common(got);
    let policy = got.value("content-security-policy").expect("a policy");
    assert!(!policy.contains("unsafe-"), "{policy}");
    assert_eq!(directive(policy, "default-src"), ["'self'"]);
    assert_eq!(directive(policy, "script-src"), ["'self'"]);
    assert_eq!(directive(policy, "style-src"), ["'self'"]);
    assert_eq!(directive(policy, "img-src"), ["'self'", "blob:", "data:"]);
    assert_eq!(directive(policy, "object-src"), ["'none'"]);
    assert_eq!(directive(policy, "base-uri"), ["'none'"]);
    assert_eq!(directive(policy, "frame-ancestors"), ["'none'"]);
    assert_eq!(directive(policy, "form-action"), ["'self'"]);
    // `'self'` does not cover the WebSocket in every browser: the request's own host is named.
    assert_eq!(
        directive(policy, "connect-src"),
        [
            "'self'".to_owned(),
            format!("ws://127.0.0.1:{port}"),
            format!("wss://127.0.0.1:{port}")
        ]
    );
    assert_eq!(got.value("strict-transport-security"), None);
    // What only matters to a document.
    let html = got
        .value("content-type")
        .is_some_and(|t| t.starts_with("text/html"));
    if !html {
        assert_eq!(got.value("permissions-policy"), None);
        assert_eq!(got.value("cross-origin-opener-policy"), None);
        return;
    }
    let permissions = got.value("permissions-policy").expect("permissions");
    for denied in [
        "camera=()",
        "microphone=()",
        "geolocation=()",
        "payment=()",
        "usb=()",
    ] {
        assert!(permissions.contains(denied), "{permissions}");
    }
    assert_eq!(got.value("cross-origin-opener-policy"), Some("same-origin"));
}

#[tokio::test]
async fn the_web_client_is_served_under_a_strict_policy_and_revalidated() {
    let spa = fake_spa();
    let app = serve(&spa, |_| {}).await;
    for path in ["/", "/index.html", "/login", "/chat/42", "/some/deep/link"] {
        let got = get(&app, path, &[]).await;
        assert_eq!(got.status, StatusCode::OK, "{path}");
        assert_eq!(String::from_utf8_lossy(&got.bytes), INDEX, "{path}");
        assert_spa_headers(&got, app.port);
        assert_eq!(got.value("cache-control"), Some("no-cache"), "{path}");
    }
    // A file of the build's root that is not hashed: revalidated too.
    let got = get(&app, "/favicon.svg", &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.value("cache-control"), Some("no-cache"));
}

#[tokio::test]
async fn hashed_assets_are_immutable_and_compressed_as_asked() {
    let spa = fake_spa();
    let app = serve(&spa, |_| {}).await;
    let path = "/assets/app-abc123.js";

    let plain = get(&app, path, &[]).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert_spa_headers(&plain, app.port);
    assert_eq!(
        plain.value("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(plain.value("content-encoding"), None);
    assert!(
        plain
            .value("content-type")
            .is_some_and(|t| t.starts_with("text/javascript")),
        "{plain:?}"
    );
    assert_eq!(plain.bytes, spa.script);
    assert!(plain
        .values("vary")
        .to_ascii_lowercase()
        .contains("accept-encoding"));
    assert_eq!(plain.value("accept-ranges"), Some("bytes"));
    let etag = plain.value("etag").expect("an etag").to_owned();
    assert!(etag.starts_with('"'), "{etag}");

    for (accept, coding) in [
        ("gzip", "gzip"),
        ("br", "br"),
        // What browsers send: brotli is preferred.
        ("gzip, deflate, br, zstd", "br"),
        ("br;q=0.5, gzip", "gzip"),
    ] {
        let got = get(&app, path, &[("Accept-Encoding", accept)]).await;
        assert_eq!(got.status, StatusCode::OK, "{accept}");
        assert_eq!(got.value("content-encoding"), Some(coding), "{accept}");
        assert!(
            got.bytes.len() < spa.script.len() / 4,
            "{accept}: {} bytes",
            got.bytes.len()
        );
        assert_eq!(got.decoded(), spa.script, "{accept}");
        assert_eq!(
            got.value("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(
            got.values("vary").to_ascii_lowercase(),
            "accept-encoding",
            "{accept}"
        );
        assert_eq!(got.value("accept-ranges"), None, "{accept}");
        // Another representation of the same content: the ETag is weak, and still revalidates.
        assert_eq!(got.value("etag"), Some(format!("W/{etag}").as_str()));
        let again = get(
            &app,
            path,
            &[("Accept-Encoding", accept), ("If-None-Match", &etag)],
        )
        .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{accept}");
    }
    // Nothing the client takes: as it is.
    let got = get(&app, path, &[("Accept-Encoding", "identity")]).await;
    assert_eq!(got.value("content-encoding"), None);
    assert_eq!(got.bytes, spa.script);

    // A range is of the file as it is, never compressed.
    let got = get(
        &app,
        path,
        &[("Accept-Encoding", "br"), ("Range", "bytes=7-26")],
    )
    .await;
    assert_eq!(got.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(got.value("content-encoding"), None);
    assert_eq!(got.bytes, &spa.script[7..27]);

    // A missing asset is a 404, not the app's page, and is not cached for good.
    let got = get(&app, "/assets/gone-abc123.js", &[]).await;
    assert_eq!(got.status, StatusCode::NOT_FOUND);
    assert_ne!(
        got.value("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert!(!String::from_utf8_lossy(&got.bytes).contains("<div id=\"root\">"));
}

#[tokio::test]
async fn the_builds_precompressed_copies_are_sent_as_they_are() {
    let spa = fake_spa();
    let app = serve(&spa, |_| {}).await;
    let path = "/assets/pre-Xy9_Zw.js";

    let br = get(
        &app,
        path,
        &[("Accept-Encoding", "gzip, deflate, br, zstd")],
    )
    .await;
    assert_eq!(br.status, StatusCode::OK);
    assert_eq!(br.value("content-encoding"), Some("br"));
    // Byte for byte the build's copy: not compressed again, not recompressed at another level.
    assert_eq!(br.bytes, spa.precompressed_br);
    assert_eq!(br.decoded(), spa.precompressed);
    assert!(br
        .value("content-type")
        .is_some_and(|t| t.starts_with("text/javascript")));
    assert_eq!(br.value("content-disposition"), None);
    assert_eq!(
        br.value("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert!(br
        .values("vary")
        .to_ascii_lowercase()
        .contains("accept-encoding"));
    let br_etag = br.value("etag").expect("etag").to_owned();

    // No gzip copy: gzip is made on the fly.
    let gz = get(&app, path, &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(gz.value("content-encoding"), Some("gzip"));
    assert_eq!(gz.decoded(), spa.precompressed);
    let plain = get(&app, path, &[]).await;
    assert_eq!(plain.bytes, spa.precompressed);
    // Each copy has its own validator.
    assert_ne!(plain.value("etag"), Some(br_etag.as_str()));
    let again = get(
        &app,
        path,
        &[("Accept-Encoding", "br"), ("If-None-Match", &br_etag)],
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn source_maps_are_not_served_unless_asked_for() {
    let spa = fake_spa();
    let app = serve(&spa, |_| {}).await;
    for path in ["/assets/app-abc123.js.map", "/app.js.map"] {
        let got = get(&app, path, &[]).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!String::from_utf8_lossy(&got.bytes).contains("mappings"));
    }
    let script = get(&app, "/assets/app-abc123.js", &[]).await;
    assert_eq!(script.value("sourcemap"), None);

    let app = serve(&spa, |c| c.web.serve_sourcemaps = true).await;
    let got = get(&app, "/assets/app-abc123.js.map", &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&got.bytes).contains("mappings"));
    let script = get(&app, "/assets/app-abc123.js", &[("Accept-Encoding", "br")]).await;
    assert_eq!(script.value("sourcemap"), Some("/assets/app-abc123.js.map"));
    // A script without a map names none.
    let other = get(&app, "/assets/pre-Xy9_Zw.js", &[]).await;
    assert_eq!(other.value("sourcemap"), None);
}

#[tokio::test]
async fn api_answers_are_never_documents_and_large_ones_are_compressed() {
    let spa = fake_spa();
    let app = serve(&spa, |_| {}).await;
    let api_policy = "default-src 'none'; frame-ancestors 'none'";

    // Small: as it is, even when compression is asked for.
    let health = get(&app, "/api/health", &[("Accept-Encoding", "br, gzip")]).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_common(&health);
    assert_eq!(health.value("content-security-policy"), Some(api_policy));
    assert_eq!(health.value("content-encoding"), None);
    assert_eq!(health.value("cache-control"), None);

    // An error too.
    let missing = get(&app, "/api/nothing-here", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_common(&missing);
    assert_eq!(missing.value("content-security-policy"), Some(api_policy));

    // Large: compressed when asked, the same JSON once decoded.
    let plain = get(&app, "/api/openapi.json", &[]).await;
    assert_eq!(plain.value("content-encoding"), None);
    let spec: serde_json::Value = serde_json::from_slice(&plain.bytes).unwrap();
    for coding in ["br", "gzip"] {
        let got = get(&app, "/api/openapi.json", &[("Accept-Encoding", coding)]).await;
        assert_eq!(got.status, StatusCode::OK);
        assert_common(&got);
        assert_eq!(got.value("content-security-policy"), Some(api_policy));
        assert_eq!(got.value("content-encoding"), Some(coding));
        assert!(
            got.bytes.len() * 4 < plain.bytes.len(),
            "{coding}: {}",
            got.bytes.len()
        );
        let decoded: serde_json::Value = serde_json::from_slice(&got.decoded()).unwrap();
        assert_eq!(decoded, spec, "{coding}");
    }

    // A signed-in answer carries the same headers.
    let alice = app.register("alice").await;
    let mut req = app.client.get(app.url("/api/me")).bearer_auth(&alice.token);
    req = req.header("Accept-Encoding", "gzip");
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers().get("x-content-type-options").unwrap(),
        "nosniff"
    );
}

/// The hashes of the `<style>` elements Swagger UI's scripts create (React's
/// `createElement("style",null,"…")`), as CSP sources.
fn inline_style_hashes(script: &str) -> Vec<String> {
    const MARK: &str = "createElement(\"style\",null,\"";
    let mut out = Vec::new();
    let mut rest = script;
    while let Some(at) = rest.find(MARK) {
        rest = &rest[at + MARK.len()..];
        let Some(end) = rest.find('"') else { break };
        let css = &rest[..end];
        use base64::Engine;
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(css.as_bytes()));
        out.push(format!("'sha256-{hash}'"));
        rest = &rest[end..];
    }
    out
}

#[tokio::test]
async fn swagger_ui_has_a_policy_of_its_own_that_lets_it_load() {
    let spa = fake_spa();
    let app = serve(&spa, |_| {}).await;
    let page = get(
        &app,
        "/api/docs/",
        &[("Accept-Encoding", "gzip, deflate, br, zstd")],
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_common(&page);
    let html = String::from_utf8(page.decoded()).unwrap();
    assert!(html.to_lowercase().contains("swagger"), "{html}");
    assert!(page
        .value("permissions-policy")
        .is_some_and(|p| p.contains("camera=()")));
    assert_eq!(
        page.value("cross-origin-opener-policy"),
        Some("same-origin")
    );
    let policy = page.value("content-security-policy").expect("a policy");
    assert!(!policy.contains("unsafe-"), "{policy}");
    assert_eq!(directive(policy, "default-src"), ["'none'"]);
    assert_eq!(directive(policy, "script-src"), ["'self'"]);
    assert_eq!(directive(policy, "connect-src"), ["'self'"]);
    assert_eq!(directive(policy, "frame-ancestors"), ["'none'"]);
    assert_eq!(directive(policy, "object-src"), ["'none'"]);
    // No inline script in the page: every script it names is a file from here.
    assert!(!html.contains("<script>"), "{html}");
    let styles = directive(policy, "style-src");
    let mut inline = Vec::new();
    for file in [
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-initializer.js",
        "swagger-ui.css",
    ] {
        let got = get(
            &app,
            &format!("/api/docs/{file}"),
            &[("Accept-Encoding", "br")],
        )
        .await;
        assert_eq!(got.status, StatusCode::OK, "{file}");
        let text = String::from_utf8(got.decoded()).unwrap();
        assert!(!text.is_empty(), "{file}");
        inline.extend(inline_style_hashes(&text));
        if file == "swagger-initializer.js" {
            // No badge from validator.swagger.io.
            assert!(text.contains("\"validatorUrl\": \"none\""), "{text}");
        }
    }
    // Swagger UI's one inline style (its logo's) is allowed by its hash, and nothing else is:
    // an update of the vendored files that changes it fails here, not silently in a browser.
    assert!(!inline.is_empty(), "the logo's <style> was not found");
    let mut allowed: Vec<String> = styles.into_iter().filter(|s| s != "'self'").collect();
    allowed.sort();
    inline.sort();
    inline.dedup();
    assert_eq!(allowed, inline);
    assert_eq!(
        letschat::web::DOCS_STYLE_HASHES
            .iter()
            .map(|h| format!("'{h}'"))
            .collect::<Vec<_>>(),
        inline
    );
}

#[tokio::test]
async fn file_downloads_keep_their_sandbox_and_their_ranges() {
    let spa = fake_spa();
    let app = serve(&spa, |_| {}).await;
    let alice = app.register("alice").await;
    // Text that would compress well: it is still sent as stored.
    let bytes: Vec<u8> = "id,name,city\n1,Alice,Lisbon\n".repeat(2000).into_bytes();
    let up = upload_as(&app, &alice, "contacts.csv", "text/csv", bytes.clone()).await;
    assert_eq!(up.status, StatusCode::CREATED, "{up:?}");
    let url = up.body["url"].as_str().unwrap();

    let accept = ("Accept-Encoding", "gzip, deflate, br, zstd");
    let f = fetch_with(&app, url, &[accept]).await;
    assert_eq!(f.status, StatusCode::OK, "{f:?}");
    assert_eq!(f.bytes, bytes);
    assert_eq!(f.value("content-encoding"), None);
    assert_eq!(
        f.value("content-security-policy"),
        Some(letschat::api::files::CONTENT_SECURITY_POLICY)
    );
    assert_eq!(f.value("x-content-type-options"), Some("nosniff"));
    assert_eq!(f.value("referrer-policy"), Some("no-referrer"));
    assert_eq!(f.value("cache-control"), Some("private"));
    let etag = f.value("etag").expect("etag").to_owned();
    assert!(etag.starts_with('"'), "a strong ETag: {etag}");

    let f = fetch_with(
        &app,
        url,
        &[accept, ("Range", "bytes=100-199"), ("If-Range", &etag)],
    )
    .await;
    assert_eq!(f.status, StatusCode::PARTIAL_CONTENT, "{f:?}");
    assert_eq!(f.bytes, &bytes[100..200]);
    assert_eq!(
        f.value("content-range"),
        Some(format!("bytes 100-199/{}", bytes.len()).as_str())
    );
    assert_eq!(f.value("content-encoding"), None);
}

#[tokio::test]
async fn the_websocket_upgrade_is_left_alone() {
    let spa = fake_spa();
    let app = serve(&spa, |_| {}).await;
    let alice = app.register("alice").await;
    let mut req = app.ws_url().into_client_request().unwrap();
    let headers = req.headers_mut();
    headers.insert(
        "Authorization",
        format!("Bearer {}", alice.token).parse().unwrap(),
    );
    headers.insert(
        "Accept-Encoding",
        "gzip, deflate, br, zstd".parse().unwrap(),
    );
    let (mut ws, res) = tokio_tungstenite::connect_async(req)
        .await
        .expect("ws connects");
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    for name in [
        "content-encoding",
        "content-security-policy",
        "vary",
        "cache-control",
    ] {
        assert!(
            res.headers().get(name).is_none(),
            "{name}: {:?}",
            res.headers()
        );
    }
    // The session works as ever: its `ready` frame arrives.
    let ready = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Some(frame) = ws.next().await {
            let frame = frame.expect("a frame");
            let v: serde_json::Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
            if v["type"] == "ready" {
                return v;
            }
        }
        panic!("closed before ready");
    })
    .await
    .expect("ready within 5 s");
    assert_eq!(ready["type"], "ready");
}

#[tokio::test]
async fn strict_transport_security_only_with_an_https_public_url() {
    let spa = fake_spa();
    let public = |url: &str| letschat::config::PublicUrl::parse(url).unwrap();

    let app = serve(&spa, |c| {
        c.web.public_url = Some(public("https://chat.example.com"))
    })
    .await;
    for path in ["/", "/assets/app-abc123.js", "/api/health", "/api/docs/"] {
        let got = get(&app, path, &[]).await;
        assert_eq!(got.status, StatusCode::OK, "{path}");
        assert_eq!(
            got.value("strict-transport-security"),
            Some("max-age=63072000"),
            "{path}"
        );
    }
    // The WebSocket's origin is the public one, whatever host the request named.
    let got = get(&app, "/", &[]).await;
    let policy = got.value("content-security-policy").unwrap();
    assert_eq!(
        directive(policy, "connect-src"),
        ["'self'", "wss://chat.example.com"]
    );

    let app = serve(&spa, |c| {
        c.web.public_url = Some(public("http://chat.example.com:8080"))
    })
    .await;
    let got = get(&app, "/", &[]).await;
    assert_eq!(got.value("strict-transport-security"), None);
    let policy = got.value("content-security-policy").unwrap();
    assert_eq!(
        directive(policy, "connect-src"),
        ["'self'", "ws://chat.example.com:8080"]
    );
    let got = get(&app, "/api/health", &[]).await;
    assert_eq!(got.value("strict-transport-security"), None);
}

#[tokio::test]
async fn a_host_header_cannot_write_into_the_policy() {
    let spa = fake_spa();
    let app = serve(&spa, |_| {}).await;
    let got = get(&app, "/", &[("Host", "evil.example; script-src *")]).await;
    let policy = got.value("content-security-policy").expect("a policy");
    assert_eq!(directive(policy, "script-src"), ["'self'"], "{policy}");
    assert_eq!(directive(policy, "connect-src"), ["'self'"], "{policy}");
    // Forwarding headers are not the browser's host: the policy follows `Host` alone.
    let got = get(
        &app,
        "/",
        &[
            ("X-Forwarded-Host", "evil.example"),
            ("Forwarded", "host=evil.example"),
        ],
    )
    .await;
    let policy = got.value("content-security-policy").expect("a policy");
    assert!(!policy.contains("evil"), "{policy}");
    assert_eq!(
        directive(policy, "connect-src"),
        [
            "'self'".to_owned(),
            format!("ws://127.0.0.1:{}", app.port),
            format!("wss://127.0.0.1:{}", app.port)
        ]
    );
}

#[tokio::test]
async fn the_placeholder_page_obeys_the_same_policy() {
    let app = spawn_app_with(|c| c.static_dir = Path::new("/nonexistent").to_owned()).await;
    let got = get(&app, "/", &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_spa_headers(&got, app.port);
    let html = String::from_utf8_lossy(&got.bytes);
    assert!(html.contains("make run"), "{html}");
    assert!(
        !html.contains("<style") && !html.contains("style="),
        "{html}"
    );
}
