//! The OpenAPI document: the metadata here plus every route's own description, collected as
//! routes are mounted (a route cannot be registered without its spec).

use actix_web::App;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::{scope, AppExt};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Let's Chat API",
        description = "REST API of Let's Chat, a self-hostable 1:1 chat service. Every error is \
`{\"error\": {\"code\", \"message\", \"fields\"?}}`. Authenticate with `Authorization: Bearer <token>` \
from `/api/auth/register` or `/api/auth/login`. Live messaging uses the WebSocket at `/api/ws` \
(see docs/websocket.md).",
        license(name = "MIT"),
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "users", description = "The caller, and finding people"),
        (name = "contacts", description = "The caller's contacts list"),
        (name = "rooms", description = "Private rooms, history, sending, read markers"),
        (name = "health", description = "Liveness"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The full document, as served at `/api/openapi.json` and committed as `openapi.yaml`.
pub fn build() -> utoipa::openapi::OpenApi {
    let (_, mut api) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .service(scope::scope("/api").configure(crate::api::routes))
        .split_for_parts();
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    api
}

/// The document as YAML.
pub fn yaml() -> Result<String, String> {
    build().to_yaml().map_err(|e| e.to_string())
}
