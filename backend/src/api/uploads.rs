//! `POST /api/uploads`: a file, as `multipart/form-data` with one part `file`.

use actix_multipart::{Multipart, MultipartError};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::{post, web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa::ToSchema;

use super::dto::UploadDto;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http_limits::is_body_timeout;
use crate::services::uploads;
use crate::state::AppState;

/// The form of `POST /api/uploads`: exactly one part, `file`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file. Its name is kept (made safe); the content type the client gives it is ignored:
    /// the server detects it from the bytes.
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
}

/// Upload a file, to attach to a message. The body is `multipart/form-data` with exactly one
/// part, `file` (any other part is 422). The file is private to the caller until sent in a message,
/// and deleted if not sent within 24 hours.
///
/// Limits (see README, Uploads): at most `LETSCHAT_MAX_UPLOAD_BYTES` bytes (default 25 MiB,
/// else 413); `LETSCHAT_UPLOAD_QUOTA_BYTES_PER_DAY` bytes per user in any 24 hours (default
/// 1 GiB, else 429 with `Retry-After`); `LETSCHAT_UPLOADS_PER_USER` uploads of one user in
/// progress at once (default 4, else 429); the body must arrive within
/// `LETSCHAT_UPLOAD_BODY_TIMEOUT` (default 10 minutes, else 408). Images (PNG, JPEG, GIF, WebP)
/// of at most `LETSCHAT_MAX_IMAGE_PIXELS` (default 40 million) get `width`, `height` and a
/// thumbnail; larger ones, and images that do not decode, are kept as plain files.
#[utoipa::path(
    tag = "uploads",
    operation_id = "create_upload",
    security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored", body = UploadDto),
        (status = 400, description = "A malformed or incomplete multipart body (`invalid_json`)", body = ErrorBody),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 408, description = "The body did not arrive within `LETSCHAT_UPLOAD_BODY_TIMEOUT` (`request_timeout`); the connection is closed", body = ErrorBody),
        (status = 413, description = "The file is over `LETSCHAT_MAX_UPLOAD_BYTES` (`payload_too_large`)", body = ErrorBody),
        (status = 415, description = "The body is not `multipart/form-data` with a boundary (`unsupported_media_type`)", body = ErrorBody),
        (status = 422, description = "No `file` part, or an empty one (`validation_failed`, `fields.file`)", body = ErrorBody),
        (status = 429, description = "The caller's uploads of the last 24 hours reached `LETSCHAT_UPLOAD_QUOTA_BYTES_PER_DAY`, or the caller (or the server) already has as many uploads in progress as allowed (`rate_limited`, with `Retry-After`)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[post("/uploads")]
pub async fn upload(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut admitted = Some(uploads::admit(&state, user.id, declared).await?);
    let timeout_secs = state.config.uploads.body_timeout.as_secs();
    let bad = |e: MultipartError| multipart_error(e, timeout_secs);
    let mut multipart = Multipart::new(req.headers(), payload);
    let mut received = None;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(bad)?;
        let part = field.name().unwrap_or_default().to_owned();
        if part != "file" {
            return Err(ApiError::validation(
                &part,
                "unknown part: the form has exactly one part, `file`",
            ));
        }
        let admitted = admitted
            .take()
            .ok_or_else(|| ApiError::validation("file", "only one `file` part is allowed"))?;
        let name = field.content_disposition().and_then(|cd| {
            cd.get_filename_ext()
                .and_then(|ext| String::from_utf8(ext.value.clone()).ok())
                .or_else(|| cd.get_filename().map(str::to_owned))
        });
        let body = (&mut field).map(|chunk| chunk.map_err(bad));
        received = Some(uploads::receive(&state, admitted, name, body).await?);
    }
    let received = received.ok_or_else(|| {
        ApiError::validation(
            "file",
            "a multipart part named `file` with the file is required",
        )
    })?;
    let row = uploads::store(&state, received).await?;
    Ok(HttpResponse::Created().json(UploadDto::signed(
        row,
        state.uploads.links(),
        std::time::SystemTime::now(),
    )))
}

fn multipart_error(e: MultipartError, timeout_secs: u64) -> ApiError {
    match e {
        MultipartError::ContentTypeMissing
        | MultipartError::ContentTypeParse
        | MultipartError::ContentTypeIncompatible
        | MultipartError::BoundaryMissing => ApiError::UnsupportedMediaType(
            "the body must be multipart/form-data with a boundary".into(),
        ),
        MultipartError::Payload(p) if is_body_timeout(&p) => {
            ApiError::RequestTimeout { timeout_secs }
        }
        MultipartError::Payload(PayloadError::Overflow) => {
            ApiError::PayloadTooLarge { limit: usize::MAX }
        }
        MultipartError::Payload(p) => {
            ApiError::InvalidJson(format!("the multipart body did not arrive whole: {p}"))
        }
        other => ApiError::InvalidJson(format!("malformed multipart body: {other}")),
    }
}
