//! Request extraction with the contract's errors: `ApiJson<T>` (content type, 64 KiB limit, a
//! body late past its deadline → 408 `request_timeout`,
//! syntax → 400 `invalid_json`, wrong fields → 422 `validation_failed` naming the field),
//! `ApiQuery<T>` (a bad or missing query parameter → 422 naming it), and the error handlers for
//! `web::Query` and path segments.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

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
        let timeout = req
            .app_data::<web::Data<crate::state::AppState>>()
            .map_or(Duration::ZERO, |s| s.config.http.body_timeout);
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
            // Grows with what arrived, never past the limit: a declared length reserves nothing.
            let mut body: Vec<u8> = Vec::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    if crate::http_limits::is_body_timeout(&e) {
                        ApiError::RequestTimeout {
                            timeout_secs: timeout.as_secs(),
                        }
                    } else {
                        ApiError::InvalidJson(format!("cannot read the body: {e}"))
                    }
                })?;
                let len = body.len() + chunk.len();
                if len > MAX_JSON_BODY {
                    return Err(ApiError::PayloadTooLarge {
                        limit: MAX_JSON_BODY,
                    });
                }
                if len > body.capacity() {
                    let target = len.max(body.capacity() * 2).min(MAX_JSON_BODY);
                    body.reserve_exact(target - body.len());
                }
                body.extend_from_slice(&chunk);
            }
            parse(&body).map(ApiJson)
        })
    }
}

/// Parses a JSON document into `T`, with the contract's errors.
/// A JSON body rendered ahead (on a background thread, by [`render`]), answered as 200.
pub struct Rendered(pub Vec<u8>);

impl Rendered {
    /// The body's size in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Renders `items`, converted to their wire form, as a JSON array: the list endpoints call it on
/// the background thread that read them, so a long list costs the async executor nothing.
pub fn render<I, D>(items: I) -> Result<Rendered, ApiError>
where
    I: IntoIterator,
    D: From<I::Item> + serde::Serialize,
{
    let wire: Vec<D> = items.into_iter().map(D::from).collect();
    serde_json::to_vec(&wire)
        .map(Rendered)
        .map_err(|e| ApiError::internal(format!("cannot render JSON: {e}")))
}

impl actix_web::Responder for Rendered {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _: &HttpRequest) -> actix_web::HttpResponse {
        actix_web::HttpResponse::Ok()
            .content_type("application/json")
            .body(self.0)
    }
}

pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidJson(
            "the request body is empty; a JSON object is expected".into(),
        ));
    }
    // Every request body is an object; serde would also read a struct from an array.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Err(e) => ApiError::InvalidJson(format!("the body is not valid JSON: {e}")),
                Ok(_) => ApiError::validation("body", "must be a JSON object"),
            },
        );
    }
    // Syntax first: a broken document is 400 even where a field check would fail before the
    // break (`{"a":1} trailing` lacks `b` before serde sees the trailing text).
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        return Err(ApiError::InvalidJson(format!(
            "the body is not valid JSON: {e}"
        )));
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

/// A path segment that cannot be an id names nothing that exists: 404. (Or the path is a
/// documented one that does not take this method, e.g. `DELETE /api/contacts/search`: 405.)
pub fn path_error(_: actix_web::error::PathError, req: &HttpRequest) -> actix_web::Error {
    match super::method_not_allowed(req) {
        Some(res) => {
            actix_web::error::InternalError::from_response("method not allowed", res).into()
        }
        None => ApiError::NotFound("no such resource".into()).into(),
    }
}

/// Query-string extraction with the contract's errors: a missing or malformed parameter is 422
/// `validation_failed` with the parameter's name in `fields`. Unknown parameters are ignored.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiQuery<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_query(req.query_string()).map(ApiQuery))
    }
}

/// Parses a query string (`a=1&b=x`) into `T`, naming the offending parameter on error.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
        .map_err(|e| ApiError::validation("query", e.to_string()))?
        .into_inner();
    let de = serde::de::value::MapDeserializer::<_, serde::de::value::Error>::new(
        pairs.into_iter().map(|(k, v)| (k, QueryValue(v))),
    );
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        let named = |prefix: &str| {
            msg.strip_prefix(prefix)
                .and_then(|rest| rest.split('`').next())
                .map(str::to_owned)
        };
        let (field, why) = if let Some(f) = named("missing field `") {
            (f, "is required".to_owned())
        } else if let Some(f) = named("duplicate field `") {
            (f, "must be given once".to_owned())
        } else if path.is_empty() || path == "." {
            ("query".to_owned(), msg)
        } else {
            (path, msg)
        };
        ApiError::validation(&field, why)
    })
}

/// One query-string value: a string that parses into what the target type asks for.
struct QueryValue(String);

impl<'de> serde::de::IntoDeserializer<'de, serde::de::value::Error> for QueryValue {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl QueryValue {
    fn integer(&self) -> Result<i64, serde::de::value::Error> {
        let s = self.0.as_str();
        // `5.0` is the integer 5, as in JSON Schema; anything with a real fraction is not.
        let whole = match s.split_once('.') {
            Some((int, frac)) if !frac.is_empty() && frac.bytes().all(|b| b == b'0') => int,
            _ => s,
        };
        whole
            .parse::<i64>()
            .map_err(|_| serde::de::Error::custom(format!("must be an integer, not '{s}'")))
    }
}

macro_rules! query_integers {
    ($($method:ident => $visit:ident as $ty:ty),* $(,)?) => {
        $(
            fn $method<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                let n = self.integer()?;
                let n = <$ty>::try_from(n).map_err(|_| {
                    <Self::Error as serde::de::Error>::custom(format!("{n} is out of range"))
                })?;
                visitor.$visit(n)
            }
        )*
    };
}

impl<'de> serde::Deserializer<'de> for QueryValue {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_string(self.0)
    }

    fn deserialize_option<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    fn deserialize_bool<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0.as_str() {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            other => Err(serde::de::Error::custom(format!(
                "must be true or false, not '{other}'"
            ))),
        }
    }

    fn deserialize_ignored_any<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    query_integers!(
        deserialize_i8 => visit_i8 as i8,
        deserialize_i16 => visit_i16 as i16,
        deserialize_i32 => visit_i32 as i32,
        deserialize_i64 => visit_i64 as i64,
        deserialize_u8 => visit_u8 as u8,
        deserialize_u16 => visit_u16 as u16,
        deserialize_u32 => visit_u32 as u32,
        deserialize_u64 => visit_u64 as u64,
    );

    serde::forward_to_deserialize_any! {
        i128 u128 f32 f64 char str string bytes byte_buf unit unit_struct newtype_struct seq
        tuple tuple_struct map struct enum identifier
    }
}

/// `deserialize_with` for integer fields of JSON bodies: JSON Schema counts `42.0` as the
/// integer 42, so a whole number written with a fraction is accepted; `42.5` is not.
pub fn integer<'de, D: serde::Deserializer<'de>>(de: D) -> Result<i64, D::Error> {
    struct Integer;

    impl serde::de::Visitor<'_> for Integer {
        type Value = i64;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an integer")
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
        }

        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
            // The largest f64 below 2^63 is the bound; 2^63 itself does not fit.
            if v.fract() == 0.0
                && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&v)
            {
                Ok(v as i64)
            } else {
                Err(E::custom(format!("must be an integer, not {v}")))
            }
        }
    }

    de.deserialize_any(Integer)
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
        assert_eq!(
            fields(parse::<Req>(br#"["a", 1]"#).unwrap_err()),
            vec!["body"]
        );
        assert!(matches!(parse::<Req>(b"[1"), Err(ApiError::InvalidJson(_))));
        assert!(parse::<Req>(br#"{"username":"a","n":1}"#).is_ok());
    }

    #[derive(serde::Deserialize, Debug)]
    struct Query {
        q: String,
        limit: Option<i64>,
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let ok: Query = parse_query("q=%20al%26ice&limit=5&other=x").unwrap();
        assert_eq!((ok.q.as_str(), ok.limit), (" al&ice", Some(5)));
        let ok: Query = parse_query("limit=7.00&q=").unwrap();
        assert_eq!((ok.q.as_str(), ok.limit), ("", Some(7)));
        assert_eq!(
            fields(parse_query::<Query>("limit=5").unwrap_err()),
            vec!["q"]
        );
        for bad in [
            "q=a&limit=x",
            "q=a&limit=",
            "q=a&limit=1.5",
            "q=a&limit=99999999999999999999",
        ] {
            assert_eq!(
                fields(parse_query::<Query>(bad).unwrap_err()),
                vec!["limit"],
                "{bad}"
            );
        }
        assert_eq!(
            fields(parse_query::<Query>("q=a&q=b").unwrap_err()),
            vec!["q"]
        );
    }

    #[derive(serde::Deserialize, Debug)]
    struct Marker {
        #[serde(deserialize_with = "integer")]
        up_to: i64,
    }

    #[test]
    fn whole_floats_are_integers() {
        let up_to = |s: &str| parse::<Marker>(s.as_bytes()).map(|m| m.up_to);
        assert_eq!(up_to(r#"{"up_to": 42}"#).unwrap(), 42);
        assert_eq!(up_to(r#"{"up_to": 42.0}"#).unwrap(), 42);
        assert_eq!(up_to(r#"{"up_to": 1e3}"#).unwrap(), 1000);
        assert_eq!(up_to(r#"{"up_to": -3}"#).unwrap(), -3);
        for bad in [
            r#"{"up_to": 4.5}"#,
            r#"{"up_to": 9223372036854775808}"#,
            r#"{"up_to": 1e19}"#,
            r#"{"up_to": "1"}"#,
        ] {
            assert_eq!(fields(up_to(bad).unwrap_err()), vec!["up_to"], "{bad}");
        }
    }
}
