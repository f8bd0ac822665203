//! The one error type of the API: every failure becomes a status and the contract's JSON body
//! `{"error": {"code", "message", "fields"?}}`. Internal causes are logged, never sent.

use std::collections::BTreeMap;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// Field name → why it was rejected, for `validation_failed`.
pub type FieldErrors = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidJson(String),
    #[error("{message}")]
    Validation {
        message: String,
        fields: FieldErrors,
    },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("the server is temporarily unable to handle the request")]
    Unavailable,
    /// Anything unexpected. The cause is logged; the client only learns that it happened.
    #[error("internal error: {0}")]
    Internal(String),
    /// The request body did not arrive in time; the connection is closed after the answer.
    #[error("the request body did not arrive within {timeout_secs} s")]
    RequestTimeout { timeout_secs: u64 },
    /// A plain request where only a WebSocket upgrade is served (`GET /api/ws`).
    #[error("{0}")]
    UpgradeRequired(String),
}

impl ApiError {
    pub fn validation(field: &str, why: impl Into<String>) -> Self {
        let why = why.into();
        let mut fields = FieldErrors::new();
        fields.insert(field.to_owned(), why.clone());
        ApiError::Validation {
            message: format!("{field}: {why}"),
            fields,
        }
    }

    pub fn validation_fields(fields: FieldErrors) -> Self {
        let message = fields
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; ");
        ApiError::Validation { message, fields }
    }

    /// The same error, a validation failure of field `from` reported as one of `to` (a value
    /// validated as registration's `password` that a request calls `new_password`).
    pub fn rename_field(self, from: &str, to: &str) -> Self {
        match self {
            ApiError::Validation { mut fields, .. } => {
                if let Some(why) = fields.remove(from) {
                    fields.insert(to.to_owned(), why);
                }
                ApiError::validation_fields(fields)
            }
            other => other,
        }
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(format!("{what} not found"))
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::Validation { .. } => "validation_failed",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal(_) => "internal",
            ApiError::RequestTimeout { .. } => "request_timeout",
            ApiError::UpgradeRequired(_) => "upgrade_required",
        }
    }

    /// The sentence sent to the client; internal details never leave the server.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_) => "an internal error occurred".to_owned(),
            other => other.to_string(),
        }
    }

    pub fn body(&self) -> ErrorBody {
        let fields = match self {
            ApiError::Validation { fields, .. } => Some(fields.clone()),
            _ => None,
        };
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.public_message(),
                fields,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidJson(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::UpgradeRequired(_) => StatusCode::UPGRADE_REQUIRED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(%cause, "request failed");
        }
        let mut res = HttpResponse::build(self.status_code());
        match self {
            ApiError::RateLimited { retry_after_secs } => {
                res.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            ApiError::Unauthorized(_) => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::Unavailable => {
                res.insert_header((header::RETRY_AFTER, "1"));
            }
            // The rest of the body may still be on its way: nothing more is read from this
            // connection.
            ApiError::RequestTimeout { .. } => {
                res.force_close();
            }
            // RFC 9110 says which protocol to upgrade to; RFC 6455 which WebSocket version.
            ApiError::UpgradeRequired(_) => {
                res.insert_header((header::UPGRADE, "websocket"));
                res.insert_header((header::CONNECTION, "Upgrade"));
                res.insert_header((header::SEC_WEBSOCKET_VERSION, "13"));
            }
            _ => {}
        }
        res.json(self.body())
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::NotFound => ApiError::not_found("resource"),
            other => ApiError::Internal(format!("database: {other}")),
        }
    }
}

impl From<crate::db::PoolError> for ApiError {
    fn from(e: crate::db::PoolError) -> Self {
        tracing::error!(cause = %e, "database pool unavailable");
        ApiError::Unavailable
    }
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_failed`.
    pub code: String,
    /// Human-readable sentence.
    pub message: String,
    /// For `validation_failed`: field name → why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
}

pub type ApiResult<T> = Result<T, ApiError>;
