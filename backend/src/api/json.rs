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

/// Parses a JSON document into `T`, with the contract's errors: bad syntax is 400
/// `invalid_json`; a document of the wrong shape is 422 `validation_failed` naming every field
/// that is missing or of the wrong type at once.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidJson(
            "the request body is empty; a JSON object is expected".into(),
        ));
    }
    // Syntax first: a broken document is 400 even where a field check would fail before the
    // break (`{"a":1} trailing` lacks `b` before serde sees the trailing text).
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        return Err(ApiError::InvalidJson(format!(
            "the body is not valid JSON: {e}"
        )));
    }
    // Every request body is an object; serde would also read a struct from an array.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(not_an_object(body));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let e = match serde_path_to_error::deserialize(&mut de) {
        Ok(value) => {
            de.end()
                .map_err(|e| ApiError::InvalidJson(format!("the body is not valid JSON: {e}")))?;
            return Ok(value);
        }
        Err(e) => e,
    };
    if e.inner().classify() != serde_json::error::Category::Data {
        return Err(ApiError::InvalidJson(format!(
            "the body is not valid JSON: {}",
            e.inner()
        )));
    }
    // serde stops at the first problem: find the others before answering.
    let object = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(object)) => object,
        _ => serde_json::Map::new(),
    };
    let mut fields = field_problems::<T>(object);
    if fields.is_empty() {
        // A problem the document's values do not show (a field given twice): serde's own.
        match culprit(&e) {
            Some((_, field, why)) => {
                fields.insert(field, why);
            }
            None => {
                return Err(ApiError::Validation {
                    message: message(e.inner()),
                    fields,
                })
            }
        }
    }
    Err(ApiError::validation_fields(fields))
}

/// A well-formed document that is not an object: said in the message. No field is at fault (and
/// none is made up to stand for the document), so `fields` is empty.
fn not_an_object(body: &[u8]) -> ApiError {
    use serde_json::Value;
    let kind = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(_)) => "an array",
        Ok(Value::String(_)) => "a string",
        Ok(Value::Number(_)) => "a number",
        Ok(Value::Bool(_)) => "a boolean",
        Ok(Value::Null) => "null",
        _ => "something else",
    };
    ApiError::Validation {
        message: format!("the request body must be a JSON object, not {kind}"),
        fields: FieldErrors::new(),
    }
}

/// serde_json's message without its " at line L column C" suffix.
fn message(e: &impl std::fmt::Display) -> String {
    let msg = e.to_string();
    msg.split(" at line ").next().unwrap_or(&msg).to_owned()
}

/// What an error is about: the top-level key, the field to name in the answer (a path for
/// nested values) and why; `None` when it names no field.
fn culprit(e: &serde_path_to_error::Error<serde_json::Error>) -> Option<(String, String, String)> {
    let path = e.path();
    let msg = message(e.inner());
    let top = match path.iter().next() {
        Some(serde_path_to_error::Segment::Map { key }) => Some(key.clone()),
        _ => None,
    };
    let named = |prefix: &str| {
        msg.strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    if let Some(twice) = named("duplicate field `") {
        let field = match &top {
            None => twice.clone(),
            Some(_) => format!("{path}.{twice}"),
        };
        return Some((top.unwrap_or(twice), field, "must be given once".into()));
    }
    match (top, named("missing field `")) {
        (None, Some(missing)) => Some((missing.clone(), missing, "is required".into())),
        (Some(top), Some(missing)) => {
            Some((top, format!("{path}.{missing}"), "is required".into()))
        }
        (Some(top), None) => Some((top, path.to_string(), msg)),
        (None, None) => None,
    }
}

/// Values that stand in for a missing or refused field while the rest of a body is checked:
/// one of them fits every field type the request bodies have.
fn stand_ins() -> [serde_json::Value; 6] {
    use serde_json::Value;
    [
        Value::String(String::new()),
        Value::from(0),
        Value::Bool(false),
        Value::Array(Vec::new()),
        Value::Object(serde_json::Map::new()),
        Value::Null,
    ]
}

/// Every field of `object` that `T` refuses and every one it needs that is missing, each with
/// its reason. serde stops at the first problem, so after each one the field is given a
/// stand-in that `T` accepts and the object is read again, until it reads (or nothing fits).
fn field_problems<T: DeserializeOwned>(
    object: serde_json::Map<String, serde_json::Value>,
) -> FieldErrors {
    let attempt =
        |value: &serde_json::Value| serde_path_to_error::deserialize::<_, T>(value).map(|_| ());
    let mut value = serde_json::Value::Object(object);
    let mut problems = FieldErrors::new();
    let mut next = attempt(&value);
    // Each round settles one top-level key for good; the bound is only a backstop.
    for _ in 0..64 {
        let Err(e) = next else { break };
        let Some((key, field, why)) = culprit(&e) else {
            break;
        };
        problems.entry(field).or_insert(why);
        let mut settled = None;
        for stand_in in stand_ins() {
            if let Some(object) = value.as_object_mut() {
                object.insert(key.clone(), stand_in);
            }
            match attempt(&value) {
                Err(e) if culprit(&e).is_some_and(|(k, _, _)| k == key) => continue,
                other => {
                    settled = Some(other);
                    break;
                }
            }
        }
        match settled {
            Some(result) => next = result,
            None => break,
        }
    }
    problems
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

/// A path parameter that cannot be what it stands for (`/api/rooms/abc/messages`) is 422
/// `validation_failed` naming it, like a query parameter. (Or the path is a documented one that
/// does not take this method, e.g. `DELETE /api/contacts/search`: 405.)
pub fn path_error(err: actix_web::error::PathError, req: &HttpRequest) -> actix_web::Error {
    if let Some(res) = super::method_not_allowed(req) {
        return actix_web::error::InternalError::from_response("method not allowed", res).into();
    }
    let integers = req
        .app_data::<web::Data<super::RouteTable>>()
        .map(|table| table.integer_parameters(req.path()))
        .unwrap_or_default();
    let mut fields = FieldErrors::new();
    for (name, raw) in req.match_info().iter() {
        let value = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
        if integers.iter().any(|n| n == name) && value.parse::<i64>().is_err() {
            fields.insert(name.to_owned(), not_an_integer(&value));
        }
    }
    if fields.is_empty() {
        // None of the documented integers: what the extractor said.
        let message = match &err {
            actix_web::error::PathError::Deserialize(e) => format!("bad path parameter: {e}"),
            other => other.to_string(),
        };
        return ApiError::Validation { message, fields }.into();
    }
    ApiError::validation_fields(fields).into()
}

/// Why a path or query value is not an integer, quoting at most 40 characters of it.
fn not_an_integer(value: &str) -> String {
    let shown: String = value.chars().take(40).collect();
    let more = if shown.len() < value.len() { "…" } else { "" };
    let digits = value.strip_prefix('-').unwrap_or(value);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        format!("must be an integer between -9223372036854775808 and 9223372036854775807, not '{shown}{more}'")
    } else {
        format!("must be an integer, not '{shown}{more}'")
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
        assert!(matches!(parse::<Req>(b"[1"), Err(ApiError::InvalidJson(_))));
        assert!(parse::<Req>(br#"{"username":"a","n":1}"#).is_ok());
    }

    fn problems(e: ApiError) -> (String, Vec<(String, String)>) {
        match e {
            ApiError::Validation { message, fields } => (message, fields.into_iter().collect()),
            other => panic!("expected validation, got {other:?}"),
        }
    }

    #[test]
    fn every_field_problem_is_reported_at_once() {
        let required = vec![
            ("n".to_owned(), "is required".to_owned()),
            ("username".to_owned(), "is required".to_owned()),
        ];
        assert_eq!(problems(parse::<Req>(b"{}").unwrap_err()).1, required);
        // A wrong type and a missing field, both named, the type error with its reason.
        let (_, got) = problems(parse::<Req>(br#"{"username": 5}"#).unwrap_err());
        assert_eq!(got[0], ("n".to_owned(), "is required".to_owned()));
        assert_eq!(got[1].0, "username");
        assert!(got[1].1.contains("expected a string"), "{got:?}");
        assert_eq!(got.len(), 2);
        assert_eq!(
            fields(parse::<Req>(br#"{"n": "1", "username": null, "other": []}"#).unwrap_err()),
            vec!["n", "username"]
        );
        // A field given twice is named on its own.
        assert_eq!(
            problems(parse::<Req>(br#"{"username": "a", "n": 1, "n": 2}"#).unwrap_err()).1,
            vec![("n".to_owned(), "must be given once".to_owned())]
        );
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Send {
        client_msg_id: String,
        body: String,
        reply_to: Option<i64>,
        #[serde(default)]
        attachments: Vec<String>,
        #[serde(default)]
        urgent: bool,
        #[serde(deserialize_with = "integer")]
        up_to: i64,
    }

    #[test]
    fn optional_fields_are_not_required_and_nested_errors_keep_their_path() {
        assert_eq!(
            fields(parse::<Send>(b"{}").unwrap_err()),
            vec!["body", "client_msg_id", "up_to"]
        );
        assert_eq!(
            fields(
                parse::<Send>(
                    br#"{"body": 1, "reply_to": "x", "attachments": ["a", 2], "urgent": 1, "up_to": 1.5}"#
                )
                .unwrap_err()
            ),
            vec!["attachments[1]", "body", "client_msg_id", "reply_to", "up_to", "urgent"]
        );
    }

    #[test]
    fn a_body_that_is_not_an_object_says_so_without_a_made_up_field() {
        for (body, kind) in [
            (&b"[]"[..], "an array"),
            (b"[1, 2]", "an array"),
            (br#""x""#, "a string"),
            (b"42", "a number"),
            (b"true", "a boolean"),
            (b"null", "null"),
        ] {
            let (message, fields) = problems(parse::<Req>(body).unwrap_err());
            assert_eq!(
                message,
                format!("the request body must be a JSON object, not {kind}")
            );
            assert!(fields.is_empty(), "{fields:?}");
        }
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
