//! `AdminUser`: an authenticated caller with the admin role; anyone else gets 403 `forbidden`.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, FromRequest, HttpRequest};

use super::AuthUser;
use crate::error::ApiError;

#[derive(Debug, Clone)]
pub struct AdminUser(pub AuthUser);

impl FromRequest for AdminUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let auth = AuthUser::from_request(req, payload);
        Box::pin(async move {
            let user = auth.await?;
            if !user.is_admin {
                return Err(ApiError::Forbidden(
                    "this needs an administrator's account".into(),
                ));
            }
            Ok(AdminUser(user))
        })
    }
}
