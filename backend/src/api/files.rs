//! `GET /api/files/{upload_id}` and `GET /api/files/{upload_id}/thumbnail`: the bytes behind the
//! signed links of uploads and attachments. No `Authorization` header: the link's signature is
//! the permission (see `services::uploads::links`).
//!
//! Every answer with bytes carries the detected `Content-Type`, `X-Content-Type-Options:
//! nosniff`, `Content-Disposition` (`inline` only for images the server decoded and for
//! thumbnails, `attachment` for everything else, with the file name as `filename*`), a
//! `Content-Security-Policy` that sandboxes the document, `Cache-Control: private`, an `ETag`
//! that is the content's hash, and `Accept-Ranges: bytes`: `Range` requests get 206 (one range;
//! `If-Range` with the ETag), `If-None-Match` gets 304.

use std::sync::Arc;

use actix_files::HttpRange;
use actix_web::body::SizedStream;
use actix_web::http::header::{
    self, Charset, ContentDisposition, DispositionParam, DispositionType, ExtendedValue,
};
use actix_web::http::{Method, StatusCode};
use actix_web::{get, web, HttpRequest, HttpResponse, HttpResponseBuilder};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorBody, ErrorDetail};
use crate::services::uploads::{self, detect, Servable, Variant, READ_BLOCK};
use crate::state::AppState;

/// The sandbox every served file is opened in: no script, no plugins, no forms, no same-origin
/// access, nothing loaded from elsewhere (an image or a video may still show itself).
pub const CONTENT_SECURITY_POLICY: &str =
    "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'";

/// An uploaded file's bytes, as uploaded. The URL comes signed in the `url` of an `upload` or
/// `attachment`; a tampered or expired link is 403 `forbidden`, and so is the link of an upload
/// that is no longer available (never sent and swept, or its message deleted while no other live
/// message carries the same bytes). Answers as the module documentation says.
#[utoipa::path(
    tag = "uploads",
    operation_id = "get_file",
    params(
        ("upload_id" = String, Path, description = "The upload's id", pattern = "^[0-9a-f]{32}$"),
        LinkQuery
    ),
    responses(
        (status = 200, description = "The bytes, with `Content-Type` as detected, `X-Content-Type-Options: nosniff`, `Content-Disposition` (`inline` for images the server decoded, else `attachment`; the name in `filename*`), `Content-Security-Policy` (`sandbox`), `Cache-Control: private`, `ETag` (the SHA-256) and `Accept-Ranges: bytes`",
            content_type = "*/*", body = FileBytes),
        (status = 206, description = "The requested range (one), with `Content-Range`", content_type = "*/*", body = FileBytes),
        (status = 304, description = "`If-None-Match` names the ETag: not modified"),
        (status = 403, description = "A bad or expired signature, or an upload that is no longer available (`forbidden`)", body = ErrorBody),
        (status = 404, description = "The stored file is missing (`not_found`)", body = ErrorBody),
        (status = 416, description = "The range is outside the file (`range_not_satisfiable`); `Content-Range: bytes */<size>`", body = ErrorBody),
    )
)]
#[get("/files/{upload_id}")]
pub async fn file(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    serve(&state, &req, path.into_inner(), Variant::File).await
}

/// The thumbnail of an uploaded image: a JPEG of at most 400 pixels on its long side, EXIF
/// orientation applied, without any metadata. The URL comes signed in `thumbnail_url`; the
/// rules and headers are those of `GET /api/files/{upload_id}` (always `inline`).
#[utoipa::path(
    tag = "uploads",
    operation_id = "get_thumbnail",
    params(
        ("upload_id" = String, Path, description = "The upload's id", pattern = "^[0-9a-f]{32}$"),
        LinkQuery
    ),
    responses(
        (status = 200, description = "The thumbnail (`image/jpeg`), with the headers of `GET /api/files/{upload_id}`", content_type = "image/jpeg", body = inline(FileBytes)),
        (status = 206, description = "The requested range (one), with `Content-Range`", content_type = "image/jpeg", body = inline(FileBytes)),
        (status = 304, description = "`If-None-Match` names the ETag: not modified"),
        (status = 403, description = "A bad or expired signature, or an upload that is no longer available (`forbidden`)", body = ErrorBody),
        (status = 404, description = "The upload has no thumbnail, or its stored file is missing (`not_found`)", body = ErrorBody),
        (status = 416, description = "The range is outside the file (`range_not_satisfiable`); `Content-Range: bytes */<size>`", body = ErrorBody),
    )
)]
#[get("/files/{upload_id}/thumbnail")]
pub async fn thumbnail(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    serve(&state, &req, path.into_inner(), Variant::Thumbnail).await
}

/// A stored file's bytes (the detected `Content-Type` says what they are).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct FileBytes(Vec<u8>);

/// The signed part of a file link (as `links::Links::url_until` writes it).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkQuery {
    /// Expiry of the link, seconds since the Unix epoch.
    e: u64,
    /// Signature of the link (unpadded base64url).
    s: String,
}

async fn serve(
    state: &AppState,
    req: &HttpRequest,
    upload_id: String,
    variant: Variant,
) -> ApiResult<HttpResponse> {
    // A link that lost its signature or expiry is as bad as a tampered one: 403, not 422.
    let LinkQuery { e, s } = web::Query::<LinkQuery>::from_query(req.query_string())
        .map_err(|_| ApiError::Forbidden("this link is not valid".into()))?
        .into_inner();
    let servable = uploads::open_link(state, upload_id, variant, e, &s).await?;
    let etag = format!("\"{}\"", servable.etag());
    let mut res = HttpResponse::Ok();
    headers(&mut res, &servable, &etag);

    if none_match(req, &etag) {
        return Ok(res.status(StatusCode::NOT_MODIFIED).finish());
    }

    let size = servable.len;
    let (mut offset, mut length) = (0, size);
    if let Some(range) = wanted_range(req, &etag) {
        match HttpRange::parse(range, size)
            .ok()
            .and_then(|r| r.first().copied())
        {
            Some(r) => {
                (offset, length) = (r.start, r.length);
                res.status(StatusCode::PARTIAL_CONTENT).insert_header((
                    header::CONTENT_RANGE,
                    format!("bytes {}-{}/{size}", r.start, r.start + r.length - 1),
                ));
            }
            None => {
                return Ok(HttpResponse::RangeNotSatisfiable()
                    .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
                    .json(ErrorBody {
                        error: ErrorDetail {
                            code: "range_not_satisfiable".to_owned(),
                            message: format!("the range is outside the file ({size} bytes)"),
                            fields: None,
                        },
                    }));
            }
        }
    }
    Ok(res.body(SizedStream::new(
        length,
        Box::pin(read_stream(state.clone(), servable.file, offset, length)),
    )))
}

fn headers(res: &mut HttpResponseBuilder, servable: &Servable, etag: &str) {
    let name = servable.file_name();
    let disposition = ContentDisposition {
        disposition: if servable.inline() {
            DispositionType::Inline
        } else {
            DispositionType::Attachment
        },
        parameters: vec![
            DispositionParam::Filename(detect::ascii_fallback(&name)),
            DispositionParam::FilenameExt(ExtendedValue {
                charset: Charset::Ext("UTF-8".to_owned()),
                language_tag: None,
                value: name.into_bytes(),
            }),
        ],
    };
    res.insert_header((header::CONTENT_TYPE, servable.content_type().to_owned()))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header(disposition)
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::CACHE_CONTROL, "private"))
        .insert_header((header::ETAG, etag.to_owned()))
        .insert_header((header::ACCEPT_RANGES, "bytes"));
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks for it) or is `*`.
fn none_match(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// The `Range` of a GET to honour: in bytes, and only when `If-Range` (if any) is the ETag
/// itself (a strong match; a date never matches, since no `Last-Modified` is sent).
fn wanted_range<'a>(req: &'a HttpRequest, etag: &str) -> Option<&'a str> {
    if req.method() != Method::GET {
        return None;
    }
    if let Some(if_range) = req.headers().get(header::IF_RANGE) {
        if if_range.to_str().ok().map(str::trim) != Some(etag) {
            return None;
        }
    }
    let range = req.headers().get(header::RANGE)?.to_str().ok()?;
    let (unit, _) = range.split_once('=')?;
    unit.trim().eq_ignore_ascii_case("bytes").then_some(range)
}

/// `length` bytes of `file` from `offset`, read a block at a time on the upload I/O threads.
fn read_stream(
    state: AppState,
    blob: Arc<std::fs::File>,
    offset: u64,
    length: u64,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, ApiError>> {
    futures_util::stream::unfold((offset, length), move |(at, left)| {
        let (state, blob) = (state.clone(), Arc::clone(&blob));
        async move {
            if left == 0 {
                return None;
            }
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(READ_BLOCK);
            match state.uploads.read_at(blob, at, want).await {
                Ok(block) if !block.is_empty() => {
                    let n = block.len() as u64;
                    Some((Ok(block), (at + n, left.saturating_sub(n))))
                }
                Ok(_) => Some((
                    Err(ApiError::internal("a stored file is shorter than it was")),
                    (at, 0),
                )),
                Err(e) => Some((Err(e), (at, 0))),
            }
        }
    })
}
