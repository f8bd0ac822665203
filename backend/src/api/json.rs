//! Request extraction with the contract's errors: `ApiJson<T>` (content type, 64 KiB limit,
//! syntax → 400 `invalid_json`, wrong fields → 422 `validation_failed` naming the field), and the
//! error handlers for query strings and path segments.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldErrors};

/// Largest JSON body accepted.
pub const MAX_JSON_BODY: usize = 64 * 1024;

pub struct ApiJson<T>(pub T);

fn is_json(req: &HttpRequest) -> bool {
    let Some(ct) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !json {
                return Err(ApiError::UnsupportedMediaType(
                    "the body must be JSON, sent with 'Content-Type: application/json'".into(),
                ));
            }
            if declared.is_some_and(|n| n > MAX_JSON_BODY) {
                return Err(ApiError::PayloadTooLarge {
                    limit: MAX_JSON_BODY,
                });
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map_err(|e| ApiError::InvalidJson(format!("cannot read the body: {e}")))?;
                if body.len() + chunk.len() > MAX_JSON_BODY {
                    return Err(ApiError::PayloadTooLarge {
                        limit: MAX_JSON_BODY,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            parse(&body).map(ApiJson)
        })
    }
}

/// Parses a JSON document into `T`, with the contract's errors.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidJson(
            "the request body is empty; a JSON object is expected".into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => data_error(&path, &inner),
            _ => ApiError::InvalidJson(format!("the body is not valid JSON: {inner}")),
        }
    })?;
    de.end()
        .map_err(|e| ApiError::InvalidJson(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// A well-formed document with the wrong shape: name the field.
fn data_error(path: &str, inner: &serde_json::Error) -> ApiError {
    let msg = inner.to_string();
    // Drop serde_json's " at line L column C" suffix.
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
    let mut fields = FieldErrors::new();
    if let Some(missing) = msg
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        let field = if path == "." {
            missing.to_owned()
        } else {
            format!("{path}.{missing}")
        };
        fields.insert(field, "is required".into());
    } else {
        let field = if path == "." || path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        };
        fields.insert(field, msg);
    }
    ApiError::validation_fields(fields)
}

/// Bad query strings are 422 `validation_failed`.
pub fn query_error(err: actix_web::error::QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    let msg = err.to_string();
    let msg = msg
        .strip_prefix("Query deserialize error: ")
        .unwrap_or(&msg)
        .to_owned();
    let mut fields = FieldErrors::new();
    let field = msg
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
        .map(str::to_owned)
        .unwrap_or_else(|| "query".into());
    fields.insert(field, msg);
    ApiError::validation_fields(fields).into()
}

/// A path segment that cannot be an id names nothing that exists: 404.
pub fn path_error(_: actix_web::error::PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::NotFound("no such resource".into()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Req {
        username: String,
        n: i64,
    }

    fn fields(e: ApiError) -> Vec<String> {
        match e {
            ApiError::Validation { fields, .. } => fields.into_keys().collect(),
            other => panic!("expected validation, got {other:?}"),
        }
    }

    #[test]
    fn classifies_errors() {
        assert!(matches!(parse::<Req>(b"{"), Err(ApiError::InvalidJson(_))));
        assert!(matches!(parse::<Req>(b""), Err(ApiError::InvalidJson(_))));
        assert!(matches!(
            parse::<Req>(br#"{"username":"a","n":1} x"#),
            Err(ApiError::InvalidJson(_))
        ));
        assert_eq!(
            fields(parse::<Req>(br#"{"n":1}"#).unwrap_err()),
            vec!["username"]
        );
        assert_eq!(
            fields(parse::<Req>(br#"{"username":5,"n":1}"#).unwrap_err()),
            vec!["username"]
        );
        assert_eq!(fields(parse::<Req>(br#"[1]"#).unwrap_err()), vec!["body"]);
        assert!(parse::<Req>(br#"{"username":"a","n":1}"#).is_ok());
    }
}
