//! The web client at `/`: the build's files from `LETSCHAT_STATIC_DIR`, with client-side routes
//! falling back to `index.html`. Hashed assets (`/assets/<name>-<hash>.<ext>`) are answered
//! from the build's precompressed copies (`.br`, `.gz`, made by `vite build` at the highest
//! levels) when the browser accepts them, so that the server spends no CPU on them; a missing
//! asset is a 404, never `index.html`. Source maps answer 404 unless `LETSCHAT_SERVE_SOURCEMAPS`
//! is set (the build does not name them in its files; when served, each script names its map in
//! a `SourceMap` header). Until the app is built, a short page says how to build it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_files::{Files, NamedFile};
use actix_web::dev::{fn_service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use super::encoding::{self, Coding};
use crate::error::ApiError;

/// Where hashed assets are served from; `vite.config.ts` names its output files to match.
pub const ASSETS_PREFIX: &str = "/assets/";

/// Whether `path` is one of the build's content-hashed files: `/assets/<name>-<hash>.<ext>`, the
/// hash at least six characters of Vite's base64url alphabet. Only these are cached for good.
pub fn is_hashed_asset(path: &str) -> bool {
    let Some(name) = path.strip_prefix(ASSETS_PREFIX) else {
        return false;
    };
    if !is_safe_file_name(name) || name.ends_with(".map") {
        return false;
    }
    // The hash is before the first dot after the last dash: `index-B30ussLm.js`,
    // `index-B30ussLm.js.br`; Vite's hashes may themselves contain `-` or `_`.
    let Some((stem, _ext)) = name.split_once('.') else {
        return false;
    };
    let Some(dash) = stem.find('-') else {
        return false;
    };
    let hash = &stem[dash + 1..];
    dash > 0 && hash.len() >= 6
}

/// One path segment of the build's own making: letters, digits, `.`, `-`, `_`; not hidden.
fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn is_source_map(path: &str) -> bool {
    path.ends_with(".map")
}

/// The folder and settings the web client is served with.
#[derive(Debug)]
struct Site {
    dir: PathBuf,
    serve_sourcemaps: bool,
}

/// Mounts the web client (or the placeholder page when `dir` holds no build).
pub fn configure(cfg: &mut web::ServiceConfig, dir: &Path, serve_sourcemaps: bool) {
    let index: PathBuf = dir.join("index.html");
    if !index.is_file() {
        // Said once at start (`Config::log_paths`); this runs once per worker.
        tracing::debug!(dir = %dir.display(), "no web app found; serving a placeholder page");
        cfg.default_service(web::to(placeholder));
        return;
    }
    let site = Arc::new(Site {
        dir: dir.to_owned(),
        serve_sourcemaps,
    });
    let assets = Arc::clone(&site);
    let fallback = Arc::clone(&site);
    cfg.route(
        &format!("{ASSETS_PREFIX}{{name:.*}}"),
        web::get().to(move |req: HttpRequest| asset(req, Arc::clone(&assets))),
    )
    .service(
        Files::new("/", dir)
            .index_file("index.html")
            .path_filter(move |path, _| serve_sourcemaps || !is_source_map(&path.to_string_lossy()))
            .default_handler(fn_service(move |req: ServiceRequest| {
                let site = Arc::clone(&fallback);
                async move {
                    let (req, _) = req.into_parts();
                    // A file that is not there (a map that is not served, a stale asset) is a
                    // 404; anything else is a client-side route.
                    if is_source_map(req.path()) || req.path().starts_with(ASSETS_PREFIX) {
                        let res = not_found(&req);
                        return Ok(ServiceResponse::new(req, res));
                    }
                    let index = site.dir.join("index.html");
                    let res =
                        match web::block(move || NamedFile::open(index)).await {
                            Ok(Ok(file)) => file.into_response(&req),
                            Ok(Err(e)) => ApiError::internal(format!("reading index.html: {e}"))
                                .error_response(),
                            Err(e) => ApiError::internal(format!("reading index.html: {e}"))
                                .error_response(),
                        };
                    Ok::<_, actix_web::Error>(ServiceResponse::new(req, res))
                }
            })),
    );
}

fn not_found(req: &HttpRequest) -> HttpResponse {
    ApiError::NotFound(format!("no file at {}", req.path())).error_response()
}

/// `GET /assets/{name}`: the file, or its precompressed copy in the best coding the browser
/// accepts (`Content-Encoding` set, so that it is not compressed again). Conditional and range
/// requests are answered by `NamedFile` (on the copy sent, whose ETag is its own).
async fn asset(req: HttpRequest, site: Arc<Site>) -> HttpResponse {
    let name = req.match_info().get("name").unwrap_or("").to_owned();
    if !is_safe_file_name(&name) || (is_source_map(&name) && !site.serve_sourcemaps) {
        return not_found(&req);
    }
    let plain = site.dir.join("assets").join(&name);
    let accepted = encoding::accepted(req.headers());
    let opened = web::block(move || open_best(&plain, &accepted)).await;
    let (file, coding, map) = match opened {
        Ok(Ok(found)) => found,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => return not_found(&req),
        Ok(Err(e)) => return ApiError::internal(format!("reading {name}: {e}")).error_response(),
        Err(e) => return ApiError::internal(format!("reading {name}: {e}")).error_response(),
    };
    let ext = name.rsplit_once('.').map_or("", |(_, ext)| ext);
    let mut file = file
        .set_content_type(actix_files::file_extension_to_mime(ext))
        .prefer_utf8(true)
        .disable_content_disposition();
    if let Some(coding) = coding {
        file = file.set_content_encoding(coding.content_encoding());
    }
    let mut res = file.into_response(&req);
    if map && site.serve_sourcemaps {
        if let Ok(link) = HeaderValue::from_str(&format!("{ASSETS_PREFIX}{name}.map")) {
            res.headers_mut()
                .insert(HeaderName::from_static("sourcemap"), link);
        }
    }
    res
}

/// The precompressed copy of `plain` in the first of `accepted` codings that has one, else
/// `plain` itself; and whether `plain` has a source map beside it.
fn open_best(
    plain: &Path,
    accepted: &[Coding],
) -> std::io::Result<(NamedFile, Option<Coding>, bool)> {
    let map = {
        let mut p = plain.as_os_str().to_owned();
        p.push(".map");
        Path::new(&p).is_file()
    };
    for &coding in accepted {
        let mut copy = plain.as_os_str().to_owned();
        copy.push(".");
        copy.push(coding.file_suffix());
        if let Ok(file) = NamedFile::open(Path::new(&copy)) {
            return Ok((file, Some(coding), map));
        }
    }
    Ok((NamedFile::open(plain)?, None, map))
}

async fn placeholder() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(PLACEHOLDER)
}

/// No inline style: the web client's Content-Security-Policy applies to this page too.
const PLACEHOLDER: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Let's Chat</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><h1>Let's Chat</h1>
<p>The server is running. The web app has not been built into this server's static folder
(<code>LETSCHAT_STATIC_DIR</code>); <code>make run</code> builds it.</p>
<p>The REST API is documented at <a href="/api/docs/">/api/docs</a>.</p></body></html>"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_assets() {
        for hashed in [
            "/assets/index-B30ussLm.js",
            "/assets/index-D77EKqW5.css",
            "/assets/app-abc123.js",
            "/assets/index-B3-u_sLm.js",
            "/assets/chat-view-Ab12Cd34.js",
        ] {
            assert!(is_hashed_asset(hashed), "{hashed}");
        }
        for not in [
            "/index.html",
            "/favicon.svg",
            "/assets/app.js",
            "/assets/app-abc.js",
            "/assets/app-abc123.js.map",
            "/assets/-abc123.js",
            "/assets/../app-abc123.js",
            "/assets/sub/app-abc123.js",
            "/assets/app-abc123",
            "/chat/42",
        ] {
            assert!(!is_hashed_asset(not), "{not}");
        }
    }
}
