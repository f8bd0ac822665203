//! Uploads and their signed links, through the real server: `POST /api/uploads` and
//! `GET /api/files/{id}[/thumbnail]`, the sweep, and what a client that misbehaves leaves behind.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use image::{DynamicImage, ImageFormat, RgbImage};
use reqwest::header::HeaderMap;
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    spawn_app, spawn_app_with, spawn_app_with_state, ChildServer, Resp, TestApp, User,
};
use crate::support::{assert_error, assert_invalid, keys, set};

// ---- helpers ----------------------------------------------------------------------------------

/// `POST /api/uploads` with one part `file` of `bytes`, sent as `name` with the claimed `mime`.
pub(crate) async fn upload_as(
    app: &TestApp,
    user: &User,
    name: &str,
    mime: &str,
    bytes: Vec<u8>,
) -> Resp {
    let part = Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(mime)
        .unwrap();
    send_form(app, &user.token, Form::new().part("file", part)).await
}

async fn upload(app: &TestApp, user: &User, name: &str, bytes: Vec<u8>) -> Value {
    let r = upload_as(app, user, name, "application/octet-stream", bytes).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_upload(&r.body);
    r.body
}

async fn send_form(app: &TestApp, token: &str, form: Form) -> Resp {
    let res = app
        .client
        .post(app.url("/api/uploads"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("request sent");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.unwrap_or_default();
    Resp {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// The contract's `upload` (and `attachment`) fields: what describes the file, then its links.
const UPLOAD_FIELDS: [&str; 9] = [
    "id",
    "name",
    "content_type",
    "size",
    "sha256",
    "width",
    "height",
    "url",
    "thumbnail_url",
];

/// An `upload` object: exactly the contract's fields.
fn assert_upload(v: &Value) {
    assert_eq!(keys(v), set(&UPLOAD_FIELDS), "upload object: {v}");
    let id = v["id"].as_str().expect("id is a string");
    assert!(id.len() >= 16, "{v}");
    let sha = v["sha256"].as_str().expect("sha256");
    assert!(
        sha.len() == 64
            && sha
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{v}"
    );
    assert!(v["size"].as_i64().is_some_and(|n| n > 0), "{v}");
    assert!(
        v["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("/api/files/")),
        "{v}"
    );
    assert_eq!(v["width"].is_null(), v["height"].is_null(), "{v}");
    assert!(
        v["thumbnail_url"].is_null() || v["thumbnail_url"].is_string(),
        "{v}"
    );
}

/// Opens a connection and sends an upload's headers and its part's head, announcing a file of
/// `size` bytes; the caller sends (some of) the bytes.
async fn start_raw_upload(
    port: u16,
    token: &str,
    name: &str,
    size: usize,
) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let boundary = "----letschat-test-boundary";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let length = head.len() + size + tail.len();
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!(
        "POST /api/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\r\n{head}"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    socket
}

/// A fetched file: status, headers and the raw bytes.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) bytes: Vec<u8>,
}

impl Fetched {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn json(&self) -> Resp {
        Resp {
            status: self.status,
            headers: self.headers.clone(),
            body: serde_json::from_slice(&self.bytes).unwrap_or(Value::Null),
        }
    }
}

/// GETs a (relative) link without any `Authorization`, with extra headers.
pub(crate) async fn fetch_with(app: &TestApp, url: &str, headers: &[(&str, &str)]) -> Fetched {
    let mut req = app.client.get(app.url(url));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.expect("request sent");
    Fetched {
        status: res.status(),
        headers: res.headers().clone(),
        bytes: res.bytes().await.expect("body").to_vec(),
    }
}

async fn fetch(app: &TestApp, url: &str) -> Fetched {
    fetch_with(app, url, &[]).await
}

/// The headers every served file carries.
fn assert_safe_headers(f: &Fetched, content_type: &str, inline: bool) {
    assert_eq!(f.header("content-type"), content_type, "{f:?}");
    assert_eq!(f.header("x-content-type-options"), "nosniff");
    let disposition = f.header("content-disposition");
    let expected = if inline { "inline;" } else { "attachment;" };
    assert!(disposition.starts_with(expected), "{disposition}");
    assert!(disposition.contains("filename*=UTF-8''"), "{disposition}");
    assert!(
        f.header("content-security-policy").contains("sandbox"),
        "{f:?}"
    );
    assert_eq!(f.header("cache-control"), "private");
    assert_eq!(f.header("accept-ranges"), "bytes");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    // xorshift: deterministic, incompressible enough, never detected as anything.
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A gradient, so that the thumbnail is not a flat colour.
fn gradient(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    }))
}

/// Uploads a `w` × `h` PNG gradient.
async fn upload_png(app: &TestApp, user: &User, name: &str, w: u32, h: u32) -> Value {
    upload(app, user, name, encode(&gradient(w, h), ImageFormat::Png)).await
}

/// Polls `done` every 20 ms for up to `secs` seconds.
async fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(secs), "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `jpeg` with an EXIF APP1 segment right after SOI holding only `Orientation = orientation`.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\0\x2A"); // big endian, magic 42
    tiff.extend_from_slice(&8u32.to_be_bytes()); // IFD0 at offset 8
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padded to 4 bytes
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir` but the temporary ones (`tmp/`).
fn stored_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(list) = std::fs::read_dir(dir) else {
            return;
        };
        for e in list.flatten() {
            let path = e.path();
            if path.is_dir() {
                if e.file_name() != "tmp" {
                    walk(&path, out);
                }
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir.join("tmp"))
        .map(|l| l.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// `url` with its query parameter `key` replaced by `value`.
fn with_param(url: &str, key: &str, value: &str) -> String {
    let (path, query) = url.split_once('?').unwrap();
    let query: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k == key => format!("{k}={value}"),
            _ => kv.to_owned(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A PNG whose header claims `w` × `h` pixels, with a few bytes of (truncated) image data: a
/// decompression bomb as the server first sees it.
fn huge_png(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale
    png_chunk(&mut out, b"IHDR", &ihdr);
    // A zlib stream of zeros, cut short.
    png_chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9C, 0xED, 0xC1, 0x01, 0x0D, 0x00, 0x00],
    );
    png_chunk(&mut out, b"IEND", &[]);
    out
}

// ---- tests ------------------------------------------------------------------------------------

#[tokio::test]
async fn a_png_round_trips_with_a_thumbnail() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let png = encode(&gradient(640, 480), ImageFormat::Png);
    let up = upload(&app, &alice, "Ferien am See ☀.png", png.clone()).await;
    assert_eq!(up["content_type"], "image/png");
    assert_eq!(up["name"], "Ferien am See ☀.png");
    assert_eq!(up["size"], json!(png.len()));
    assert_eq!(up["sha256"], json!(sha256_hex(&png)));
    assert_eq!(
        (up["width"].clone(), up["height"].clone()),
        (json!(640), json!(480))
    );

    let file = fetch(&app, up["url"].as_str().unwrap()).await;
    assert_eq!(file.status, StatusCode::OK, "{file:?}");
    assert_eq!(file.bytes, png, "byte for byte");
    assert_safe_headers(&file, "image/png", true);
    assert_eq!(file.header("etag"), format!("\"{}\"", sha256_hex(&png)));
    assert!(
        file.header("content-disposition")
            .contains("filename*=UTF-8''Ferien%20am%20See%20%E2%98%80.png"),
        "{}",
        file.header("content-disposition")
    );

    let thumb = fetch(&app, up["thumbnail_url"].as_str().unwrap()).await;
    assert_eq!(thumb.status, StatusCode::OK, "{thumb:?}");
    assert_safe_headers(&thumb, "image/jpeg", true);
    let decoded = image::load_from_memory_with_format(&thumb.bytes, ImageFormat::Jpeg).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (400, 300));
    assert!(
        !contains(&thumb.bytes, b"Exif"),
        "a thumbnail carries no EXIF"
    );
}

#[tokio::test]
async fn a_jpeg_with_exif_orientation_gets_an_upright_thumbnail_and_keeps_its_bytes() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    // Stored 800 × 400, to be shown turned a quarter clockwise (orientation 6): 400 × 800.
    let jpeg = with_exif_orientation(&encode(&gradient(800, 400), ImageFormat::Jpeg), 6);
    let up = upload(&app, &alice, "portrait.jpg", jpeg.clone()).await;
    assert_eq!(up["content_type"], "image/jpeg");
    assert_eq!(
        (up["width"].clone(), up["height"].clone()),
        (json!(400), json!(800))
    );

    let file = fetch(&app, up["url"].as_str().unwrap()).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(
        file.bytes, jpeg,
        "the original is served as uploaded, EXIF included"
    );
    assert_safe_headers(&file, "image/jpeg", true);

    let thumb = fetch(&app, up["thumbnail_url"].as_str().unwrap()).await;
    assert_eq!(thumb.status, StatusCode::OK);
    let decoded = image::load_from_memory_with_format(&thumb.bytes, ImageFormat::Jpeg).unwrap();
    assert_eq!(
        (decoded.width(), decoded.height()),
        (200, 400),
        "the thumbnail is turned upright"
    );
    assert!(!contains(&thumb.bytes, b"Exif"), "no EXIF in the thumbnail");
}

#[tokio::test]
async fn a_pdf_and_random_bytes_round_trip_as_downloads() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;

    let mut pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n".to_vec();
    pdf.extend_from_slice(b"trailer << /Root 1 0 R >>\n%%EOF\n");
    let up = upload(&app, &alice, "invoice.pdf", pdf.clone()).await;
    assert_eq!(up["content_type"], "application/pdf");
    assert!(
        up["width"].is_null() && up["thumbnail_url"].is_null(),
        "{up}"
    );
    let file = fetch(&app, up["url"].as_str().unwrap()).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.bytes, pdf);
    assert_safe_headers(&file, "application/pdf", false);

    // Several write and read blocks long.
    let blob = random_bytes(700 * 1024 + 3, 7);
    let up = upload(&app, &alice, "data.bin", blob.clone()).await;
    assert_eq!(up["content_type"], "application/octet-stream");
    assert_eq!(up["sha256"], json!(sha256_hex(&blob)));
    let file = fetch(&app, up["url"].as_str().unwrap()).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.bytes.len(), blob.len());
    assert!(file.bytes == blob, "byte for byte");
    assert_safe_headers(&file, "application/octet-stream", false);
    assert_eq!(file.header("content-length"), blob.len().to_string());
}

#[tokio::test]
async fn html_claiming_to_be_png_is_served_as_an_html_download() {
    let app = spawn_app().await;
    let mallory = app.register("mallory").await;
    let html = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>";
    let r = upload_as(&app, &mallory, "cat.png", "image/png", html.to_vec()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_upload(&r.body);
    assert_eq!(r.body["content_type"], "text/html");
    assert!(r.body["width"].is_null() && r.body["thumbnail_url"].is_null());
    let file = fetch(&app, r.body["url"].as_str().unwrap()).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.bytes, html);
    assert_safe_headers(&file, "text/html", false);

    // SVG can carry script: never inline either.
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
    let r = upload_as(&app, &mallory, "logo.svg", "image/svg+xml", svg.to_vec()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(r.body["content_type"], "image/svg+xml");
    let file = fetch(&app, r.body["url"].as_str().unwrap()).await;
    assert_safe_headers(&file, "image/svg+xml", false);

    // A name with folders and control characters is made safe.
    let r = upload_as(
        &app,
        &mallory,
        "../../x\u{202e}gpj.exe",
        "text/plain",
        b"hi".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(r.body["name"], "xgpj.exe");
    assert_eq!(r.body["content_type"], "text/plain");
}

/// The real binary as a child process, so that its memory can be read from /proc.
#[tokio::test]
async fn twenty_five_mib_and_one_byte_is_refused_without_holding_the_file_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _pg) = crate::helpers::fresh_database(dir.path());
    let uploads = dir.path().join("uploads");
    let server = ChildServer::start(
        None,
        &url,
        &[("LETSCHAT_UPLOAD_DIR", uploads.to_str().unwrap())],
    )
    .await;
    let app = TestApp::for_address(server.port);
    let alice = app.register("alice").await;
    // Warm up: one upload through the whole path.
    upload(&app, &alice, "warm.bin", random_bytes(512 * 1024, 3)).await;
    let (_, peak_before) = server.memory_kib();

    let size = 25 * 1024 * 1024 + 1;
    let chunks = futures::stream::iter((0..size).step_by(64 * 1024).map(move |start| {
        let n = (size - start).min(64 * 1024);
        Ok::<_, std::io::Error>(vec![0x5a_u8; n])
    }));
    let part = Part::stream(reqwest::Body::wrap_stream(chunks)).file_name("big.bin");
    let r = send_form(&app, &alice.token, Form::new().part("file", part)).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    let (_, peak_after) = server.memory_kib();
    let grown = peak_after.saturating_sub(peak_before);
    assert!(
        grown < 12 * 1024,
        "the server's peak memory grew by {grown} KiB for a 25 MiB upload"
    );
    // Nothing was kept.
    assert_eq!(stored_files(&uploads).len(), 1, "only the warm-up upload");
    assert!(
        temp_files(&uploads).is_empty(),
        "{:?}",
        temp_files(&uploads)
    );
}

#[tokio::test]
async fn a_smaller_size_limit_is_enforced_while_streaming() {
    let app = spawn_app_with(|c| c.uploads.max_bytes = 100 * 1024).await;
    let alice = app.register("alice").await;
    upload(&app, &alice, "fits.bin", random_bytes(100 * 1024, 1)).await;
    for (n, declared) in [
        (100 * 1024 + 1, true),
        (150 * 1024, false),
        (2 * 1024 * 1024, true),
    ] {
        let bytes = random_bytes(n, 2);
        let r = if declared {
            upload_as(&app, &alice, "big.bin", "application/octet-stream", bytes).await
        } else {
            // Chunked: no declared length, found out while streaming.
            let stream = futures::stream::iter(
                bytes
                    .chunks(8192)
                    .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
                    .collect::<Vec<_>>(),
            );
            let part = Part::stream(reqwest::Body::wrap_stream(stream)).file_name("big.bin");
            send_form(&app, &alice.token, Form::new().part("file", part)).await
        };
        assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    }
    assert_eq!(stored_files(&app.upload_dir).len(), 1);
    assert!(temp_files(&app.upload_dir).is_empty());
}

#[tokio::test]
async fn the_same_bytes_are_stored_once() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let bytes = random_bytes(40_000, 11);
    let a = upload(&app, &alice, "a.bin", bytes.clone()).await;
    let b = upload(&app, &bob, "b.bin", bytes.clone()).await;
    assert_ne!(a["id"], b["id"]);
    assert_eq!(a["sha256"], b["sha256"]);
    let files = stored_files(&app.upload_dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let sha = sha256_hex(&bytes);
    assert!(
        files[0].ends_with(format!("{}/{}/{sha}", &sha[..2], &sha[2..4])),
        "{files:?}"
    );
    for up in [&a, &b] {
        let f = fetch(&app, up["url"].as_str().unwrap()).await;
        assert_eq!(f.status, StatusCode::OK);
        assert_eq!(f.bytes, bytes);
        assert_eq!(
            f.header("content-disposition"),
            format!(
                "attachment; filename=\"{0}\"; filename*=UTF-8''{0}",
                up["name"].as_str().unwrap()
            )
        );
    }

    // The administrators' statistics count both uploads.
    let root = crate::support::admin(&app, "root").await;
    let stats = app.get("/api/admin/stats", &root.token).await;
    assert_eq!(stats.status, StatusCode::OK, "{stats:?}");
    assert_eq!(stats.body["uploads"], 2);
    assert_eq!(stats.body["upload_bytes"], json!(2 * bytes.len()));
}

#[tokio::test]
async fn tampered_and_expired_links_are_forbidden() {
    let (app, state) = spawn_app_with_state(|_| {}).await;
    let alice = app.register("alice").await;
    let png = encode(&gradient(50, 40), ImageFormat::Png);
    let up = upload(&app, &alice, "p.png", png).await;
    let url = up["url"].as_str().unwrap();
    let thumb = up["thumbnail_url"].as_str().unwrap();
    let id = up["id"].as_str().unwrap();
    let sig = url.split("s=").nth(1).unwrap();
    let flipped = format!(
        "{}{}",
        if sig.starts_with('A') { 'B' } else { 'A' },
        &sig[1..]
    );
    let expiry: u64 = url
        .split("e=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let other_id = format!(
        "{}{}",
        if id.starts_with('0') { '1' } else { '0' },
        &id[1..]
    );
    let bad = [
        with_param(url, "s", &flipped),
        with_param(url, "e", &(expiry + 3600).to_string()),
        url.replacen(id, &other_id, 1),
        // A file link's signature does not open the thumbnail, nor the other way round.
        format!(
            "/api/files/{id}/thumbnail?{}",
            url.split_once('?').unwrap().1
        ),
        format!("/api/files/{id}?{}", thumb.split_once('?').unwrap().1),
        url.split('?').next().unwrap().to_owned(),
        with_param(url, "e", "soon"),
    ];
    for link in &bad {
        let f = fetch(&app, link).await;
        assert_error(&f.json(), StatusCode::FORBIDDEN, "forbidden");
    }
    // Signed in the past: expired.
    let past = state.uploads.links().url_until(
        id,
        letschat::services::uploads::Variant::File,
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 1,
    );
    let f = fetch(&app, &past).await;
    assert_error(&f.json(), StatusCode::FORBIDDEN, "forbidden");
    assert!(f.json().body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
    // The genuine links still work.
    assert_eq!(fetch(&app, url).await.status, StatusCode::OK);
    assert_eq!(fetch(&app, thumb).await.status, StatusCode::OK);
}

#[tokio::test]
async fn ranges_and_etags() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bytes = random_bytes(300 * 1024, 5);
    let up = upload(&app, &alice, "video.bin", bytes.clone()).await;
    let url = up["url"].as_str().unwrap();
    let size = bytes.len();

    let f = fetch_with(&app, url, &[("Range", "bytes=10-19")]).await;
    assert_eq!(f.status, StatusCode::PARTIAL_CONTENT, "{f:?}");
    assert_eq!(f.header("content-range"), format!("bytes 10-19/{size}"));
    assert_eq!(f.bytes, &bytes[10..20]);
    assert_safe_headers(&f, "application/octet-stream", false);

    // Open-ended, across read blocks, and a suffix.
    let f = fetch_with(&app, url, &[("Range", "bytes=1000-")]).await;
    assert_eq!(f.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        f.header("content-range"),
        format!("bytes 1000-{}/{size}", size - 1)
    );
    assert!(f.bytes == bytes[1000..]);
    let f = fetch_with(&app, url, &[("Range", "bytes=-5")]).await;
    assert_eq!(f.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(f.bytes, &bytes[size - 5..]);

    // Outside the file.
    let f = fetch_with(&app, url, &[("Range", &format!("bytes={size}-"))]).await;
    assert_eq!(f.status, StatusCode::RANGE_NOT_SATISFIABLE, "{f:?}");
    assert_eq!(f.header("content-range"), format!("bytes */{size}"));
    assert_error(
        &f.json(),
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range_not_satisfiable",
    );

    // The ETag is the hash; If-None-Match with it: 304 without a body.
    let etag = format!("\"{}\"", sha256_hex(&bytes));
    let f = fetch(&app, url).await;
    assert_eq!(f.header("etag"), etag);
    let f = fetch_with(&app, url, &[("If-None-Match", &etag)]).await;
    assert_eq!(f.status, StatusCode::NOT_MODIFIED, "{f:?}");
    assert!(f.bytes.is_empty());
    assert_eq!(f.header("etag"), etag);
    let f = fetch_with(&app, url, &[("If-None-Match", "\"something-else\"")]).await;
    assert_eq!(f.status, StatusCode::OK);

    // If-Range: the range only while the file is still the one the client has.
    let f = fetch_with(&app, url, &[("Range", "bytes=0-1"), ("If-Range", &etag)]).await;
    assert_eq!(f.status, StatusCode::PARTIAL_CONTENT);
    let f = fetch_with(
        &app,
        url,
        &[("Range", "bytes=0-1"), ("If-Range", "\"old\"")],
    )
    .await;
    assert_eq!(f.status, StatusCode::OK);
    assert_eq!(f.bytes.len(), size);

    // HEAD: the headers only.
    let res = app.client.head(app.url(url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()
            .get("content-length")
            .unwrap()
            .to_str()
            .unwrap(),
        size.to_string()
    );
    assert!(res.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_hundred_megapixel_png_is_kept_as_a_plain_file_without_decoding() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bomb = huge_png(10_000, 10_000);
    assert!(bomb.len() < 1024);
    let started = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        upload_as(&app, &alice, "bomb.png", "image/png", bomb.clone()),
    )
    .await
    .expect("the server answers without decoding 100 megapixels");
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(r.body["content_type"], "image/png");
    assert!(
        r.body["width"].is_null() && r.body["height"].is_null(),
        "{}",
        r.body
    );
    assert!(r.body["thumbnail_url"].is_null());
    let f = fetch(&app, r.body["url"].as_str().unwrap()).await;
    assert_eq!(f.status, StatusCode::OK);
    assert_eq!(f.bytes, bomb);
    assert_safe_headers(&f, "image/png", false);
    // And the server still decodes ordinary images.
    let up = upload_png(&app, &alice, "ok.png", 10, 10).await;
    assert_eq!(up["width"], 10);
}

#[tokio::test]
async fn the_daily_quota_answers_429_with_retry_after() {
    let app = spawn_app_with(|c| c.uploads.quota_bytes_per_day = 100_000).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    upload(&app, &alice, "1.bin", random_bytes(60_000, 1)).await;
    // Over the quota while streaming.
    let r = upload_as(
        &app,
        &alice,
        "2.bin",
        "application/octet-stream",
        random_bytes(60_000, 2),
    )
    .await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=24 * 3600).contains(&retry), "{retry}");
    // What is left still fits.
    upload(&app, &alice, "3.bin", random_bytes(40_000, 3)).await;
    // Used up: refused before the body is read.
    let r = upload_as(&app, &alice, "4.bin", "application/octet-stream", vec![1]).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(r.headers.contains_key("retry-after"));
    // Each user has their own.
    upload(&app, &bob, "5.bin", random_bytes(60_000, 5)).await;
}

#[tokio::test]
async fn uploads_in_progress_are_bounded_per_user() {
    let app = spawn_app_with(|c| c.uploads.per_user = 1).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    // Alice's first upload stalls half way.
    let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Vec<u8>, std::io::Error>>();
    tx.unbounded_send(Ok(vec![1; 10_000])).unwrap();
    let part = Part::stream(reqwest::Body::wrap_stream(rx)).file_name("slow.bin");
    let slow = tokio::spawn({
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/uploads"),
            alice.token.clone(),
        );
        async move {
            client
                .post(url)
                .bearer_auth(token)
                .multipart(Form::new().part("file", part))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    // Wait until the server has it.
    wait_until("the upload never started", 10, || {
        !temp_files(&app.upload_dir).is_empty()
    })
    .await;
    let r = upload_as(
        &app,
        &alice,
        "second.bin",
        "application/octet-stream",
        vec![2; 10],
    )
    .await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    upload(&app, &bob, "bob.bin", vec![3; 10]).await;
    tx.unbounded_send(Ok(vec![4; 10_000])).unwrap();
    drop(tx);
    assert_eq!(slow.await.unwrap(), StatusCode::CREATED);
    upload(&app, &alice, "third.bin", vec![5; 10]).await;
}

#[tokio::test]
async fn a_missing_or_empty_file_part_is_422() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let r = send_form(
        &app,
        &alice.token,
        Form::new().text("comment", "no file here"),
    )
    .await;
    assert_invalid(&r, &["comment"]);
    let two = Form::new()
        .part("file", Part::bytes(vec![1]).file_name("a"))
        .part("file", Part::bytes(vec![2]).file_name("b"));
    assert_invalid(&send_form(&app, &alice.token, two).await, &["file"]);
    let boundary = "----letschat-no-parts";
    let r = crate::support::raw(
        &app,
        reqwest::Method::POST,
        "/api/uploads",
        Some(&alice.token),
        Some(&format!("multipart/form-data; boundary={boundary}")),
        Some(format!("--{boundary}--\r\n").into_bytes()),
    )
    .await;
    assert_invalid(&r.json(), &["file"]);
    let r = upload_as(&app, &alice, "empty.txt", "text/plain", Vec::new()).await;
    assert_invalid(&r, &["file"]);
    // Not multipart at all.
    let r = app
        .post("/api/uploads", &alice.token, json!({"file": "x"}))
        .await;
    assert_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    // Without a token.
    let res = app
        .client
        .post(app.url("/api/uploads"))
        .multipart(Form::new().part("file", Part::bytes(vec![1, 2, 3]).file_name("x")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(stored_files(&app.upload_dir).is_empty());
}

#[tokio::test]
async fn the_sweep_deletes_old_unsent_uploads_and_unused_files() {
    let (app, state) = spawn_app_with_state(|_| {}).await;
    let alice = app.register("alice").await;
    let old_bytes = random_bytes(10_000, 21);
    let old = upload(&app, &alice, "old.bin", old_bytes.clone()).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cut = letschat::db::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let fresh = upload_png(&app, &alice, "fresh.png", 30, 30).await;
    assert_eq!(
        stored_files(&app.upload_dir).len(),
        3,
        "two files and a thumbnail"
    );
    // A file nothing names (an upload whose row never came).
    let orphan = "ab".repeat(32);
    let orphan_path = app.upload_dir.join("ab/ab").join(&orphan);
    std::fs::create_dir_all(orphan_path.parent().unwrap()).unwrap();
    std::fs::write(&orphan_path, b"orphan").unwrap();

    use letschat::services::uploads::sweep::{sweep, Cutoffs};
    // Files written after the cut-off are kept whatever the database says.
    let now = SystemTime::now();
    let early = Cutoffs {
        unsent_before: cut,
        files_before: now - Duration::from_secs(3600),
        leftovers_before: now - Duration::from_secs(3600),
    };
    let swept = sweep(&state, early).await.unwrap();
    assert_eq!(swept.rows.unsent, 1);
    assert_eq!(swept.files, 0);
    assert!(orphan_path.exists());
    assert_error(
        &fetch(&app, old["url"].as_str().unwrap()).await.json(),
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    let later = SystemTime::now() + Duration::from_secs(1);
    let swept = sweep(
        &state,
        Cutoffs {
            unsent_before: cut,
            files_before: later,
            leftovers_before: later,
        },
    )
    .await
    .unwrap();
    assert_eq!(swept.files, 2, "the old upload's file and the orphan");
    assert!(!orphan_path.exists());
    let old_sha = old["sha256"].as_str().unwrap();
    let files = stored_files(&app.upload_dir);
    assert_eq!(
        files.len(),
        2,
        "the fresh upload and its thumbnail: {files:?}"
    );
    assert!(files.iter().all(|f| !f.to_string_lossy().contains(old_sha)));
    let f = fetch(&app, fresh["url"].as_str().unwrap()).await;
    assert_eq!(f.status, StatusCode::OK);
    assert_eq!(
        fetch(&app, fresh["thumbnail_url"].as_str().unwrap())
            .await
            .status,
        StatusCode::OK
    );
    let (count, _) = state.db.run(letschat::db::uploads::totals).await.unwrap();
    assert_eq!(count, 1);

    // Uploading the old bytes again stores them again.
    let again = upload(&app, &alice, "old.bin", old_bytes.clone()).await;
    assert_eq!(
        fetch(&app, again["url"].as_str().unwrap()).await.bytes,
        old_bytes
    );
}

#[tokio::test]
async fn a_client_that_drops_mid_upload_leaves_no_file_and_no_row() {
    use tokio::io::AsyncWriteExt;
    let (app, state) = spawn_app_with_state(|_| {}).await;
    let alice = app.register("alice").await;
    let total = 2 * 1024 * 1024;
    let mut socket = start_raw_upload(app.port, &alice.token, "half.bin", total).await;
    let half = random_bytes(total / 2, 9);
    socket.write_all(&half).await.unwrap();
    socket.flush().await.unwrap();
    // Wait until the server is writing it, then go away.
    wait_until("the upload never started", 10, || {
        !temp_files(&app.upload_dir).is_empty()
    })
    .await;
    drop(socket);
    wait_until("the temporary file stayed", 15, || {
        temp_files(&app.upload_dir).is_empty()
    })
    .await;
    assert!(
        stored_files(&app.upload_dir).is_empty(),
        "{:?}",
        stored_files(&app.upload_dir)
    );
    let (count, bytes) = state.db.run(letschat::db::uploads::totals).await.unwrap();
    assert_eq!((count, bytes), (0, 0));
    // The user's upload slot was given back.
    upload(&app, &alice, "next.bin", random_bytes(1000, 4)).await;
}

/// The server killed (SIGKILL) while an upload streams in: nothing under a final name, no row;
/// the restarted server on the same folder and database takes the same upload whole.
#[tokio::test]
async fn a_crash_mid_upload_leaves_no_file_under_a_final_name() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let (url, _pg) = crate::helpers::fresh_database(dir.path());
    let uploads = dir.path().join("uploads");
    let env = [("LETSCHAT_UPLOAD_DIR", uploads.to_str().unwrap())];
    let mut server = ChildServer::start(None, &url, &env).await;
    let app = TestApp::for_address(server.port);
    let alice = app.register("alice").await;
    let bytes = random_bytes(2 * 1024 * 1024, 77);
    let mut socket = start_raw_upload(app.port, &alice.token, "crash.bin", bytes.len()).await;
    socket
        .write_all(&bytes[..bytes.len() - 1000])
        .await
        .unwrap();
    socket.flush().await.unwrap();
    wait_until("the upload never started", 10, || {
        !temp_files(&uploads).is_empty()
    })
    .await;
    server.kill();
    drop(socket);
    assert!(
        stored_files(&uploads).is_empty(),
        "a file under a final name: {:?}",
        stored_files(&uploads)
    );

    let server = ChildServer::start(None, &url, &env).await;
    let app = TestApp::for_address(server.port);
    // The same secret: Alice's token still works.
    let stored = upload(&app, &alice, "crash.bin", bytes.clone()).await;
    assert_eq!(stored["sha256"], sha256_hex(&bytes));
    assert_eq!(
        fetch(&app, stored["url"].as_str().unwrap()).await.bytes,
        bytes
    );
    let files = stored_files(&uploads);
    assert_eq!(files.len(), 1, "{files:?}");
}

/// The server's intake of upload bytes is limited (`LETSCHAT_UPLOAD_BYTES_PER_SEC`): past its
/// burst, an upload arrives no faster than the limit, and whole.
#[tokio::test]
async fn the_upload_intake_is_limited() {
    let app = spawn_app_with(|c| c.uploads.bytes_per_sec = 512 * 1024).await;
    let alice = app.register("alice").await;
    let bytes = random_bytes(2 * 1024 * 1024, 5);
    let started = Instant::now();
    let stored = upload(&app, &alice, "slow.bin", bytes.clone()).await;
    let took = started.elapsed();
    // 1 MiB of burst, then 1 MiB at 512 KiB/s: two seconds at the very least.
    assert!(took >= Duration::from_millis(1900), "took {took:?}");
    assert_eq!(
        fetch(&app, stored["url"].as_str().unwrap()).await.bytes,
        bytes
    );
}

#[tokio::test]
async fn the_spec_documents_the_multipart_upload() {
    let app = spawn_app().await;
    let r = app
        .call(reqwest::Method::GET, "/api/openapi.json", None, None)
        .await;
    let body = &r.body["paths"]["/api/uploads"]["post"]["requestBody"]["content"]
        ["multipart/form-data"]["schema"];
    let schema = if let Some(reference) = body["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        r.body["components"]["schemas"][name].clone()
    } else {
        body.clone()
    };
    assert_eq!(schema["properties"]["file"]["type"], "string", "{schema}");
    assert_eq!(schema["properties"]["file"]["format"], "binary", "{schema}");
    assert_eq!(schema["required"], json!(["file"]), "{schema}");
    for path in ["/api/files/{upload_id}", "/api/files/{upload_id}/thumbnail"] {
        assert!(r.body["paths"][path]["get"].is_object(), "{path}");
    }
}

// ---- attachments on messages ------------------------------------------------------------

/// `POST /api/rooms/{room}/messages` with `attachments`.
async fn send_with(
    app: &TestApp,
    user: &User,
    room: i64,
    client_msg_id: &str,
    body: &str,
    attachments: &[&Value],
) -> Resp {
    let ids: Vec<&str> = attachments
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    app.post(
        &format!("/api/rooms/{room}/messages"),
        &user.token,
        json!({"client_msg_id": client_msg_id, "body": body, "attachments": ids}),
    )
    .await
}

/// An attachment as a message carries it: the upload's fields, with links that work.
async fn assert_attachment_of(app: &TestApp, got: &Value, upload: &Value, bytes: &[u8]) {
    assert_upload(got);
    // The same file; its links are signed afresh.
    for k in &UPLOAD_FIELDS[..7] {
        assert_eq!(got[k], upload[k], "{k} of {got}");
    }
    assert_eq!(
        got["thumbnail_url"].is_null(),
        upload["thumbnail_url"].is_null()
    );
    let f = fetch(app, got["url"].as_str().unwrap()).await;
    assert_eq!(f.status, StatusCode::OK, "{got}");
    assert_eq!(f.bytes, bytes, "{got}");
    if let Some(thumb) = got["thumbnail_url"].as_str() {
        let t = fetch(app, thumb).await;
        assert_eq!(t.status, StatusCode::OK);
        assert_eq!(t.header("content-type"), "image/jpeg");
    }
}

fn ids_of(message: &Value) -> Vec<String> {
    message["attachments"]
        .as_array()
        .unwrap_or_else(|| panic!("no attachments in {message}"))
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

fn id_of(upload: &Value) -> String {
    upload["id"].as_str().unwrap().to_owned()
}

/// Alice sends a photo and a PDF with no text, over REST; Bob's connection gets them live, and
/// they are in history, sync, changes, `message_updated`, contacts' `last_message` and the
/// administrators' view of the room — in the order sent, with working links everywhere.
#[tokio::test]
async fn attachments_travel_with_their_message_everywhere() {
    let app = spawn_app().await;
    let root = crate::support::admin(&app, "root").await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let photo_bytes = encode(&gradient(640, 480), ImageFormat::Png);
    let photo = upload(&app, &alice, "Ünïcødé 🌅 שקיעה.png", photo_bytes.clone()).await;
    let pdf_bytes = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n".to_vec();
    let pdf = upload(
        &app,
        &alice,
        "quarterly-report-final-v2.pdf",
        pdf_bytes.clone(),
    )
    .await;
    assert_eq!(pdf["content_type"], "application/pdf");
    let mut bob_ws = app.ws(&bob.token).await;

    let r = send_with(&app, &alice, room, "with-files", "", &[&photo, &pdf]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    crate::support::assert_message(&r.body);
    assert_eq!(r.body["body"], "");
    assert_eq!(ids_of(&r.body), [id_of(&photo), id_of(&pdf)]);
    assert_attachment_of(&app, &r.body["attachments"][0], &photo, &photo_bytes).await;
    assert_attachment_of(&app, &r.body["attachments"][1], &pdf, &pdf_bytes).await;
    assert_eq!(r.body["attachments"][0]["width"], 640);
    let seq = r.body["seq"].as_i64().unwrap();

    // Live.
    let frame = bob_ws.next_of("message").await;
    crate::support::assert_message(&frame["message"]);
    assert_eq!(ids_of(&frame["message"]), [id_of(&photo), id_of(&pdf)]);
    assert_attachment_of(&app, &frame["message"]["attachments"][1], &pdf, &pdf_bytes).await;

    // A text message after it, then history (both pages' forms).
    app.send(&bob, room, "thanks", "Thanks! 🙏").await;
    let history = app.full_history(&bob.token, room).await;
    assert_eq!(history.len(), 2);
    assert_eq!(ids_of(&history[0]), [id_of(&photo), id_of(&pdf)]);
    assert_eq!(history[1]["attachments"], json!([]));
    assert_attachment_of(&app, &history[0]["attachments"][0], &photo, &photo_bytes).await;
    let r = app
        .get(
            &format!("/api/rooms/{room}/messages?before={}", seq + 1),
            &bob.token,
        )
        .await;
    assert_eq!(ids_of(&r.body["messages"][0]), [id_of(&photo), id_of(&pdf)]);

    // Sync from the start on a new connection.
    let mut again = app.ws(&bob.token).await;
    again
        .send(json!({"type": "sync", "room_id": room, "after": 0, "changes_after": 0}))
        .await;
    let synced = again.next_of("message").await;
    assert_eq!(synced["message"]["seq"], seq);
    assert_eq!(ids_of(&synced["message"]), [id_of(&photo), id_of(&pdf)]);

    // A reaction: `message_updated` and the changes feed show the message with its files.
    let id = history[0]["id"].as_i64().unwrap();
    let r = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/rooms/{room}/messages/{id}/reactions/%F0%9F%91%8D"),
            Some(&bob.token),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{r:?}");
    assert_eq!(ids_of(&r.body), [id_of(&photo), id_of(&pdf)]);
    let updated = bob_ws.next_of("message_updated").await;
    assert_eq!(ids_of(&updated["message"]), [id_of(&photo), id_of(&pdf)]);
    let r = app
        .get(&format!("/api/rooms/{room}/changes?after=0"), &alice.token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(ids_of(&r.body["messages"][0]), [id_of(&photo), id_of(&pdf)]);

    // Contacts' last message (Alice's own photo message is not Bob's last: send one more).
    let r = send_with(&app, &alice, room, "only-photo", "", &[&photo]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let r = app.get("/api/contacts", &bob.token).await;
    let last = &r.body[0]["last_message"];
    assert_eq!(ids_of(last), [id_of(&photo)]);
    assert_attachment_of(&app, &last["attachments"][0], &photo, &photo_bytes).await;

    // The administrators' view.
    let r = app
        .get(&format!("/api/admin/rooms/{room}/messages"), &root.token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(ids_of(&r.body["messages"][0]), [id_of(&photo), id_of(&pdf)]);
}

/// Over the WebSocket: the ack and the other member's frame carry the files; a send naming
/// someone else's upload is an `error` frame and stores nothing.
#[tokio::test]
async fn websocket_sends_carry_attachments_and_refuse_others_uploads() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let file = upload(&app, &alice, "notes.txt", b"plain notes\n".to_vec()).await;
    let bobs = upload(&app, &bob, "bob.bin", random_bytes(300, 3)).await;
    let mut alice_ws = app.ws(&alice.token).await;
    let mut bob_ws = app.ws(&bob.token).await;

    alice_ws
        .send(
            json!({"type": "send", "room_id": room, "client_msg_id": "theirs",
                     "body": "look", "attachments": [id_of(&bobs)]}),
        )
        .await;
    let err = alice_ws.next_of("error").await;
    assert_eq!(err["code"], "validation_failed", "{err}");
    assert_eq!(err["client_msg_id"], "theirs");

    alice_ws
        .send(
            json!({"type": "send", "room_id": room, "client_msg_id": "mine",
                     "body": "  ", "attachments": [id_of(&file)]}),
        )
        .await;
    let ack = alice_ws.next_of("ack").await;
    assert_eq!(ack["message"]["body"], "");
    assert_eq!(ack["message"]["seq"], 1, "the refused send took no seq");
    assert_eq!(ids_of(&ack["message"]), [id_of(&file)]);
    let got = bob_ws.next_of("message").await;
    assert_eq!(got["message"]["attachments"], ack["message"]["attachments"]);
    assert_attachment_of(
        &app,
        &got["message"]["attachments"][0],
        &file,
        b"plain notes\n",
    )
    .await;
    assert_eq!(app.full_history(&alice.token, room).await.len(), 1);
}

/// Every way to name attachments wrongly is 422 `validation_failed` on `attachments` (with the
/// body's own error at once when it is wrong too), and nothing is stored.
#[tokio::test]
async fn invalid_attachments_are_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let mine = upload(&app, &alice, "a.bin", random_bytes(100, 1)).await;
    let bobs = upload(&app, &bob, "b.bin", random_bytes(100, 2)).await;
    let post = |body: Value| {
        let app = &app;
        let token = alice.token.clone();
        async move {
            app.post(&format!("/api/rooms/{room}/messages"), &token, body)
                .await
        }
    };
    let mut eleven = Vec::new();
    for i in 0..11 {
        eleven.push(id_of(
            &upload(&app, &alice, &format!("{i}.bin"), random_bytes(50, 100 + i)).await,
        ));
    }
    for (attachments, why) in [
        (json!([id_of(&bobs)]), "someone else's upload"),
        (json!([id_of(&mine), id_of(&mine)]), "the same upload twice"),
        (json!(["../../etc/passwd"]), "not an upload id"),
        (
            json!(["0123456789abcdef0123456789abcdef"]),
            "no such upload",
        ),
        (json!(eleven), "eleven"),
    ] {
        let r = post(json!({"client_msg_id": "x", "body": "hi", "attachments": attachments})).await;
        assert_invalid(&r, &["attachments"]);
        assert!(
            !r.body["error"]["fields"]["attachments"]
                .as_str()
                .unwrap()
                .is_empty(),
            "{why}"
        );
    }
    // Ten are fine.
    let ten: Vec<String> = eleven[..10].to_vec();
    let r = post(json!({"client_msg_id": "ten", "body": "", "attachments": ten})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(ids_of(&r.body), ten);
    // An empty body needs attachments; both errors are reported together.
    assert_invalid(
        &post(json!({"client_msg_id": "e", "body": ""})).await,
        &["body"],
    );
    assert_invalid(
        &post(json!({"client_msg_id": "e", "body": "", "attachments": []})).await,
        &["body"],
    );
    assert_invalid(
        &post(json!({"client_msg_id": "", "body": "bad \u{7}", "attachments": [id_of(&bobs)]}))
            .await,
        &["client_msg_id", "body"],
    );
    assert_invalid(
        &post(json!({"client_msg_id": "", "body": "ok", "attachments": ["nope"]})).await,
        &["client_msg_id", "attachments"],
    );
    let history = app.full_history(&alice.token, room).await;
    assert_eq!(history.len(), 1, "only the message with ten files");
}

/// A resend of a `client_msg_id` answers with the message stored the first time, files
/// included, and stores nothing more.
#[tokio::test]
async fn a_resend_answers_with_the_stored_attachments() {
    let app = spawn_app().await;
    let (alice, _bob, room) = app.pair("alice", "bob").await;
    let photo = upload_png(&app, &alice, "p.png", 30, 20).await;
    let first = send_with(&app, &alice, room, "once", "caption", &[&photo]).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = send_with(&app, &alice, room, "once", "caption", &[&photo]).await;
    assert_eq!(again.status, StatusCode::OK, "{again:?}");
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(ids_of(&again.body), [id_of(&photo)]);
    // Even when the resend names nothing (the attachments are the stored message's).
    let bare = send_with(&app, &alice, room, "once", "caption", &[]).await;
    assert_eq!(bare.status, StatusCode::OK, "{bare:?}");
    assert_eq!(ids_of(&bare.body), [id_of(&photo)]);
    assert_eq!(app.full_history(&alice.token, room).await.len(), 1);
}

/// Links live exactly as long as a message that is not deleted carries the same bytes: deleting
/// a message (by its sender or an administrator) removes its attachments at once, and the sweep
/// takes the bytes no message carries any more.
#[tokio::test]
async fn links_live_while_a_live_message_carries_the_bytes() {
    use letschat::services::uploads::sweep::{sweep, Cutoffs};

    let (app, state) = spawn_app_with_state(|_| {}).await;
    let root = crate::support::admin(&app, "root").await;
    let (alice, bob, room) = app.pair("alice", "bob").await;
    let bytes = random_bytes(5000, 31);
    let first = upload(&app, &alice, "a.bin", bytes.clone()).await;
    let second = upload(&app, &alice, "b.bin", bytes.clone()).await;
    let photo = upload_png(&app, &alice, "photo.png", 20, 10).await;
    let kept = upload(&app, &alice, "kept.bin", random_bytes(100, 32)).await;
    let _bobs = upload(&app, &bob, "bob.bin", random_bytes(100, 33)).await;
    let sent = |r: Resp| {
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
        r.body["id"].as_i64().unwrap()
    };
    let m1 = sent(send_with(&app, &alice, room, "m1", "one", &[&photo, &first]).await);
    let m2 = sent(send_with(&app, &alice, room, "m2", "two", &[&second]).await);
    let _m3 = sent(send_with(&app, &alice, room, "m3", "three", &[&kept]).await);

    let link = |v: &Value, key: &str| v[key].as_str().unwrap().to_owned();
    for url in [link(&first, "url"), link(&photo, "thumbnail_url")] {
        assert_eq!(fetch(&app, &url).await.status, StatusCode::OK);
    }
    let gone = |f: Fetched| assert_error(&f.json(), StatusCode::FORBIDDEN, "forbidden");
    // m1 deleted by its sender: the tombstone has no files and the photo's links stop working;
    // a.bin's bytes live on in m2.
    let mut bob_ws = app.ws(&bob.token).await;
    let r = app
        .delete(&format!("/api/rooms/{room}/messages/{m1}"), &alice.token)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    let tomb = bob_ws.next_of("message_updated").await;
    assert_eq!(tomb["message"]["attachments"], json!([]));
    gone(fetch(&app, &link(&photo, "url")).await);
    gone(fetch(&app, &link(&photo, "thumbnail_url")).await);
    assert_eq!(
        fetch(&app, &link(&first, "url")).await.bytes,
        bytes,
        "the same bytes are still on a live message"
    );
    let history = app.full_history(&bob.token, room).await;
    assert_eq!(history[0]["attachments"], json!([]));
    assert_eq!(ids_of(&history[1]), [id_of(&second)]);
    // m2 deleted by an administrator: gone too.
    let r = app
        .delete(&format!("/api/admin/messages/{m2}"), &root.token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["attachments"], json!([]));
    gone(fetch(&app, &link(&first, "url")).await);
    gone(fetch(&app, &link(&second, "url")).await);

    // The sweep removes what no message carries (and Bob's upload, never sent, once old enough),
    // and keeps m3's.
    let later = SystemTime::now() + Duration::from_secs(1);
    let swept = sweep(
        &state,
        Cutoffs {
            unsent_before: letschat::db::now(),
            files_before: later,
            leftovers_before: later,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        swept.rows.detached, 0,
        "deletes detached their files already"
    );
    assert_eq!((swept.rows.unattached, swept.rows.unsent), (3, 1));
    let (count, _) = state.db.run(letschat::db::uploads::totals).await.unwrap();
    assert_eq!(count, 1);
    let kept_sha = kept["sha256"].as_str().unwrap();
    let files = stored_files(&app.upload_dir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with(kept_sha));
    assert_eq!(
        fetch(&app, &link(&kept, "url")).await.status,
        StatusCode::OK
    );
    // A swept upload can no longer be sent.
    let r = send_with(&app, &alice, room, "late", "again", &[&photo]).await;
    assert_invalid(&r, &["attachments"]);
}
