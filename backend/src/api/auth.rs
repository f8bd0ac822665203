//! `/api/auth/*` and `/api/me` (the caller's account: read it, rename it, change its password,
//! delete it).

use actix_web::dev::ServiceRequest;
use actix_web::http::Method;
use actix_web::{delete, get, patch, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::dto::UserDto;
use super::json::ApiJson;
use crate::auth::AuthUser;
use crate::domain::{DisplayName, Password, Username};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::services::accounts;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// 3–32 characters of letters, digits, `_`, `.` and `-`; unique case-insensitively.
    #[schema(
        min_length = 3,
        max_length = 32,
        pattern = "^[A-Za-z0-9_.-]+$",
        example = "alice"
    )]
    pub username: String,
    /// 8–128 characters; every byte counts (no truncation at bcrypt's 72 bytes). Refused (422)
    /// when it equals the username (in any case) or is one of the 10,000 most common passwords.
    #[schema(min_length = 8, max_length = 128, example = "correct horse battery")]
    pub password: String,
    /// 1–64 characters, at least one of them not whitespace, no control characters; stored
    /// trimmed. Defaults to the username.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$",
        example = "Alice Liddell"
    )]
    pub display_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Any string: one that is no account's username gets the same 401 as a wrong password.
    #[schema(example = "alice")]
    pub username: String,
    #[schema(example = "correct horse battery")]
    pub password: String,
    /// A `device_token` this account received at an earlier register or login on this device.
    /// When the account is throttled for failed logins, a login with a valid device token of
    /// the account is judged on that token's own failures only. An invalid one is ignored.
    #[serde(default)]
    #[schema(example = json!(null))]
    pub device_token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuthResponse {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub user: UserDto,
    /// Opaque; keep it on this device and send it with later logins (`LoginRequest.device_token`).
    pub device_token: String,
}

/// The client's address: the peer, or the client a trusted proxy forwarded (see
/// [`crate::client_addr`]).
pub(super) fn client_ip(req: &HttpRequest) -> std::net::IpAddr {
    crate::client_addr::client_ip(req)
}

/// The address and `User-Agent` a sign-in comes from (for its session).
fn client(req: &HttpRequest) -> accounts::Client {
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    accounts::Client::new(client_ip(req), user_agent)
}

/// The requests counted against their address's and network's sign-in limits
/// (`LETSCHAT_AUTH_RATE_PER_IP`, `LETSCHAT_AUTH_RATE_PER_PREFIX`) before anything else is done
/// for them: registration, login, and a signed-in user's password change and account deletion
/// (which check the password).
pub const SIGN_IN_ROUTES: [(Method, &str); 4] = [
    (Method::POST, "/api/auth/register"),
    (Method::POST, "/api/auth/login"),
    (Method::POST, "/api/me/password"),
    (Method::DELETE, "/api/me"),
];

/// Counts a sign-in request ([`SIGN_IN_ROUTES`]) against its address's and network's limits;
/// the refusal, if over. `http_limits::limit_requests` asks this before the request is logged
/// or routed, so that each refusal of a login flood costs little: its body is never parsed
/// (and is dropped when small, so the client's connection carries its next request).
pub fn sign_in_refused(req: &ServiceRequest) -> Option<ApiError> {
    let sign_in = SIGN_IN_ROUTES
        .iter()
        .any(|(method, path)| req.method() == method && req.path() == *path);
    if !sign_in {
        return None;
    }
    req.app_data::<web::Data<AppState>>()
        .and_then(|state| state.limits.check_ip(client_ip(req.request())).err())
}

/// Create an account and get a token.
#[utoipa::path(
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created", body = AuthResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 409, description = "Username taken", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid username, password or display name", body = ErrorBody),
        (status = 429, description = "Too many requests from this address or its /24 (IPv4) or /64 (IPv6) network, counted before the body is read; or the password hashers are busy with this network's share", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[post("/auth/register")]
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<RegisterRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let mut errors = crate::error::FieldErrors::new();
    let username = Username::parse(&body.username)
        .map_err(|e| collect(&mut errors, e))
        .ok();
    let password = Password::parse(&body.password)
        .map_err(|e| collect(&mut errors, e))
        .ok();
    let display_name = match body.display_name.as_deref() {
        None => None,
        Some(d) => DisplayName::parse(d)
            .map_err(|e| collect(&mut errors, e))
            .ok(),
    };
    if let (Some(u), Some(p)) = (&username, &password) {
        let _ = p
            .refuse_username(u.as_str())
            .map_err(|e| collect(&mut errors, e));
    }
    let (Some(username), Some(password), true) = (username, password, errors.is_empty()) else {
        return Err(ApiError::validation_fields(errors));
    };
    let (token, user, device_token) =
        accounts::register(&state, client(&req), username, password, display_name).await?;
    Ok(HttpResponse::Created().json(AuthResponse {
        token,
        user: user.into(),
        device_token,
    }))
}

/// Gathers the fields of a validation error, so all bad fields are reported at once.
fn collect(into: &mut crate::error::FieldErrors, e: ApiError) {
    if let ApiError::Validation { fields, .. } = e {
        into.extend(fields);
    }
}

/// Exchange a username and password for a token.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = AuthResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Wrong username or password (the same answer for both)", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "A field is missing or not a string", body = ErrorBody),
        (status = 429, description = "Too many requests from this address or its /24 (IPv4) or /64 (IPv6) network (counted before the body is read); too many failed logins on this account without a valid device token — or, with one, on that device token; or the password hashers are busy with this network's share", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[post("/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<LoginRequest>,
) -> ApiResult<HttpResponse> {
    let LoginRequest {
        username,
        password,
        device_token,
    } = body.0;
    // A name that cannot be a username matches no account; it is not sent to the database
    // (PostgreSQL refuses text with NUL characters) but still costs a password check.
    let username = match Username::parse(&username) {
        Ok(_) => username,
        Err(_) => String::new(),
    };
    let (token, user, device_token) =
        accounts::login(&state, client(&req), username, password, device_token).await?;
    Ok(HttpResponse::Ok().json(AuthResponse {
        token,
        user: user.into(),
        device_token,
    }))
}

/// End the session of this request's token, at once, on every instance: the token stops
/// working and its WebSockets close (1008). The user's other sessions keep working.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out: the session ended"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
    )
)]
#[post("/auth/logout")]
pub async fn logout(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    accounts::logout(&state, &user).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller's own account.
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller (with `is_admin: true` for administrators)", body = super::dto::MeDto),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
    )
)]
#[get("/me")]
pub async fn me(
    state: web::Data<AppState>,
    user: AuthUser,
) -> ApiResult<web::Json<super::dto::MeDto>> {
    let row = accounts::me(&state, user.id).await?;
    let is_admin = row.is_admin;
    Ok(web::Json(super::dto::MeDto {
        user: row.into(),
        is_admin,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateMeRequest {
    /// 1–64 characters, at least one of them visible, no control characters and no
    /// bidirectional overrides or isolates; stored trimmed (as at registration).
    #[schema(min_length = 1, max_length = 64, example = "Alice L.")]
    pub display_name: String,
}

/// Change the caller's display name. Their contacts' and their own open WebSockets get a
/// `user_updated` frame with the new `user` (see docs/websocket.md); the contacts list and
/// rooms show it from now on.
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    request_body = UpdateMeRequest,
    responses(
        (status = 200, description = "The caller's account as it is now", body = UserDto),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 422, description = "Invalid display name (`fields.display_name`)", body = ErrorBody),
    )
)]
#[patch("/me")]
pub async fn update_me(
    state: web::Data<AppState>,
    user: AuthUser,
    body: ApiJson<UpdateMeRequest>,
) -> ApiResult<web::Json<UserDto>> {
    let name = DisplayName::parse(&body.0.display_name)?;
    let row = accounts::set_display_name(&state, user.id, name).await?;
    Ok(web::Json(row.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    /// The account's password now.
    #[schema(example = "correct horse battery")]
    pub current_password: String,
    /// As at registration: 8–128 characters, every byte counts; refused (422) when it equals
    /// the username or is one of the 10,000 most common passwords.
    #[schema(
        min_length = 8,
        max_length = 128,
        example = "staple battery horse correct"
    )]
    pub new_password: String,
}

/// Change the caller's password. Every other session of the account ends — its token stops
/// working and its WebSockets close (1008), on every instance — and the caller's stays.
/// Password checks are rate-limited like logins.
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Password changed; every other session ended"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 409, description = "The password was changed by another request meanwhile", body = ErrorBody),
        (status = 422, description = "`fields.current_password`: not the account's password; `fields.new_password`: too short or long, the username, or a common password", body = ErrorBody),
        (status = 429, description = "Too many requests from this address or its network (counted before the body is read), too many wrong passwords for this account in the last hour, or the password hashers are busy with this network's share", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[post("/me/password")]
pub async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
    body: ApiJson<ChangePasswordRequest>,
) -> ApiResult<HttpResponse> {
    let ChangePasswordRequest {
        current_password,
        new_password,
    } = body.0;
    let new =
        Password::parse(&new_password).map_err(|e| e.rename_field("password", "new_password"))?;
    accounts::change_password(&state, &user, client_ip(&req), current_password, new).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteMeRequest {
    /// The account's password.
    #[schema(example = "correct horse battery")]
    pub password: String,
}

/// Delete the caller's account, for good. Every session ends (tokens refused, WebSockets closed
/// with 1008 on every instance); the account leaves search and every contacts list; its
/// username can be registered again; every message it sent becomes a tombstone (body and
/// attachments erased, `deleted_at` set, `id` and `seq` kept; the other member's connections
/// get `message_updated`); every reaction it left on others' messages is taken back, each a
/// change of its room like a reaction its author takes back (`message_updated` to the room's
/// members); and its uploads' links stop working. Where a `user` object still
/// shows it (room members), it reads `{"username": "~deleted-<id>", "display_name": "Deleted
/// user"}`. Answers once all of that is done. Password checks are rate-limited like logins.
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    request_body = DeleteMeRequest,
    responses(
        (status = 204, description = "The account is deleted"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 422, description = "`fields.password`: not the account's password", body = ErrorBody),
        (status = 429, description = "Too many requests from this address or its network (counted before the body is read), too many wrong passwords for this account in the last hour, or the password hashers are busy with this network's share", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[delete("/me")]
pub async fn delete_me(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
    body: ApiJson<DeleteMeRequest>,
) -> ApiResult<HttpResponse> {
    crate::services::account_deletion::delete_account(
        &state,
        &user,
        client_ip(&req),
        body.0.password,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
