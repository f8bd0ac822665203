//! HTTP handlers, one file per resource. Handlers parse requests into domain types, call a
//! service and shape the response; they never run SQL.

pub mod admin;
pub mod auth;
pub mod contacts;
pub mod dto;
pub mod files;
pub mod health;
pub mod json;
pub mod rooms;
pub mod sessions;
pub mod uploads;
pub mod users;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::ApiError;

/// Mounts every REST handler (under the `/api` scope); each brings its OpenAPI description.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(auth::register)
        .service(auth::login)
        .service(auth::logout)
        .service(auth::me)
        .service(auth::update_me)
        .service(auth::change_password)
        .service(auth::delete_me)
        // `/sessions/revoke-others` is a POST, `/sessions/{session_id}` only a DELETE.
        .service(sessions::list)
        .service(sessions::revoke_others)
        .service(sessions::end)
        .service(users::search)
        .service(contacts::list)
        .service(contacts::add)
        // `/contacts/search` before `/contacts/{user_id}`-style routes.
        .service(contacts::search)
        .service(contacts::remove)
        .service(rooms::list)
        .service(rooms::get)
        .service(rooms::history)
        .service(rooms::send)
        .service(rooms::edit)
        .service(rooms::delete_message)
        .service(rooms::react)
        .service(rooms::unreact)
        .service(rooms::changes)
        .service(rooms::read)
        .service(uploads::upload)
        .service(files::file)
        .service(files::thumbnail)
        .service(health::health)
        .service(admin::list_users)
        .service(admin::create_user)
        .service(admin::get_user)
        .service(admin::deactivate)
        .service(admin::reactivate)
        .service(admin::reset_password)
        .service(admin::set_role)
        .service(admin::list_rooms)
        .service(admin::get_room)
        .service(admin::room_messages)
        .service(admin::delete_message)
        .service(admin::message_edits)
        .service(admin::stats)
        .service(admin::audit);
}

/// The methods each documented path answers, to tell a wrong method (405) from a wrong path
/// (404), and its integer path parameters, to name the one a request got wrong (422).
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<(Vec<String>, Vec<Method>)>,
    integers: Vec<(Vec<String>, Vec<String>)>,
}

/// The name of a parameter declared in the path with an integer schema.
pub fn integer_path_parameter(
    p: &utoipa::openapi::RefOr<utoipa::openapi::path::Parameter>,
) -> Option<&str> {
    use utoipa::openapi::{path::ParameterIn, schema::SchemaType, schema::Type, RefOr, Schema};
    let RefOr::T(p) = p else { return None };
    let integer = matches!(
        &p.schema,
        Some(RefOr::T(Schema::Object(o))) if o.schema_type == SchemaType::Type(Type::Integer)
    );
    (p.parameter_in == ParameterIn::Path && integer).then_some(p.name.as_str())
}

impl RouteTable {
    pub fn from_openapi(api: &utoipa::openapi::OpenApi) -> Self {
        let mut table = RouteTable::default();
        for (path, item) in &api.paths.paths {
            let segments: Vec<String> = path
                .trim_matches('/')
                .split('/')
                .map(str::to_owned)
                .collect();
            let mut methods = Vec::new();
            let mut integers: Vec<String> = Vec::new();
            let mut declared: Vec<&utoipa::openapi::RefOr<_>> =
                item.parameters.iter().flatten().collect();
            for (op, m) in [
                (&item.get, Method::GET),
                (&item.post, Method::POST),
                (&item.put, Method::PUT),
                (&item.delete, Method::DELETE),
                (&item.patch, Method::PATCH),
            ] {
                if let Some(op) = op {
                    methods.push(m);
                    declared.extend(op.parameters.iter().flatten());
                }
            }
            for name in declared.into_iter().filter_map(integer_path_parameter) {
                if !integers.iter().any(|n| n == name) {
                    integers.push(name.to_owned());
                }
            }
            table.integers.push((segments.clone(), integers));
            table.routes.push((segments, methods));
        }
        table
    }

    /// The names of the integer path parameters of the documented path `path` matches.
    pub fn integer_parameters(&self, path: &str) -> &[String] {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.best_match(&segs)
            .and_then(|pattern| self.integers.iter().find(|(p, _)| p == pattern))
            .map_or(&[], |(_, names)| names.as_slice())
    }

    /// The documented path `segs` matches; a literal segment wins over a `{parameter}`.
    fn best_match(&self, segs: &[&str]) -> Option<&Vec<String>> {
        self.routes
            .iter()
            .filter(|(pattern, _)| matches_pattern(pattern, segs))
            .max_by_key(|(pattern, _)| pattern.iter().filter(|p| !p.starts_with('{')).count())
            .map(|(pattern, _)| pattern)
    }

    /// Methods allowed on a concrete path, if any documented path matches it. As in routing, a
    /// literal segment wins over a `{parameter}`: `/contacts/search` is not a `/contacts/{user_id}`.
    pub fn allowed(&self, path: &str) -> Option<Vec<Method>> {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let mut best: Option<(usize, Vec<Method>)> = None;
        for (pattern, methods) in &self.routes {
            if !matches_pattern(pattern, &segs) {
                continue;
            }
            let literals = pattern.iter().filter(|p| !p.starts_with('{')).count();
            match &mut best {
                Some((n, allowed)) if *n == literals => allowed.extend(methods.iter().cloned()),
                Some((n, _)) if *n > literals => {}
                _ => best = Some((literals, methods.clone())),
            }
        }
        best.map(|(_, allowed)| allowed)
            .filter(|allowed| !allowed.is_empty())
    }
}

fn matches_pattern(pattern: &[String], segs: &[&str]) -> bool {
    pattern.len() == segs.len()
        && pattern
            .iter()
            .zip(segs)
            .all(|(p, s)| (p.starts_with('{') && !s.is_empty()) || p == s)
}

/// HEAD is GET without the body (RFC 9110, 9.3.2): the request is routed as a GET, and the HTTP
/// layer, which knows the request was a HEAD, sends the response's headers only.
pub async fn head_as_get(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

/// Anything under `/api` that no handler took: 405 if the path exists with other methods, else 404.
pub async fn fallback(req: HttpRequest) -> HttpResponse {
    method_not_allowed(&req).unwrap_or_else(|| {
        ApiError::NotFound(format!("no API endpoint at {}", req.path())).error_response()
    })
}

/// 405 with `Allow` when the path is documented but not with this method.
pub fn method_not_allowed(req: &HttpRequest) -> Option<HttpResponse> {
    let methods = req
        .app_data::<web::Data<RouteTable>>()?
        .allowed(req.path())?;
    if methods.contains(req.method()) {
        return None;
    }
    let allow = methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let mut res = ApiError::MethodNotAllowed(format!(
        "{} is not allowed on {}; use {allow}",
        req.method(),
        req.path()
    ))
    .error_response();
    if let Ok(v) = header::HeaderValue::from_str(&allow) {
        res.headers_mut().insert(header::ALLOW, v);
    }
    Some(res)
}

/// Turns any error response under `/api` that is not already JSON (actix's own 404s, 405s,
/// 413s, ...) into the contract's error body.
pub fn json_errors<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json || !res.request().path().starts_with("/api") {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let err = match status {
        StatusCode::NOT_FOUND => {
            ApiError::NotFound(format!("no API endpoint at {}", res.request().path()))
        }
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed("method not allowed".into()),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge {
            limit: json::MAX_JSON_BODY,
        },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::UnsupportedMediaType("unsupported content type".into())
        }
        StatusCode::UNAUTHORIZED => ApiError::Unauthorized("authentication required".into()),
        StatusCode::FORBIDDEN => ApiError::Forbidden("forbidden".into()),
        s if s.is_client_error() => ApiError::InvalidJson(format!("bad request ({s})")),
        _ => ApiError::internal(format!("unhandled error status {status}")),
    };
    let (req, mut original) = res.into_parts();
    let mut new = HttpResponse::build(status).json(err.body());
    // Keep headers such as Allow and Retry-After.
    for (name, value) in original.headers_mut().drain() {
        if let Some(name) = name {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                new.headers_mut().insert(name, value);
            }
        }
    }
    let res: ServiceResponse<EitherBody<B, BoxBody>> =
        ServiceResponse::new(req, new).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_table_tells_405_from_404() {
        let table = RouteTable::from_openapi(&crate::openapi::build());
        assert_eq!(
            table.allowed("/api/rooms/12/messages"),
            Some(vec![Method::GET, Method::POST])
        );
        assert_eq!(
            table.allowed("/api/contacts/search"),
            Some(vec![Method::GET])
        );
        assert_eq!(table.allowed("/api/contacts/7"), Some(vec![Method::DELETE]));
        assert_eq!(table.allowed("/api/nothing"), None);
        assert_eq!(table.allowed("/api/rooms//messages"), None);
    }

    #[test]
    fn route_table_knows_the_integer_path_parameters() {
        let table = RouteTable::from_openapi(&crate::openapi::build());
        assert_eq!(
            table.integer_parameters("/api/rooms/x/messages/y/reactions/z"),
            ["room_id", "message_id"]
        );
        assert_eq!(table.integer_parameters("/api/contacts/bob"), ["user_id"]);
        // A literal segment is no parameter; string parameters are not integers.
        assert!(table.integer_parameters("/api/contacts/search").is_empty());
        assert!(table.integer_parameters("/api/files/abc").is_empty());
        assert!(table.integer_parameters("/api/nothing/1").is_empty());
    }
}
