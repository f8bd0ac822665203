//! Authentication: password hashing on a bounded pool, JWTs, the `AuthUser` extractor, and the
//! rate limits on the sign-in endpoints.

pub mod admin;
pub mod device;
pub mod extractor;
pub mod jwt;
pub mod password;
pub mod ratelimit;

pub use admin::AdminUser;
pub use device::DeviceTokens;
pub use extractor::{AuthUser, ListCaller};
pub use jwt::{Claims, TokenError, TokenService};
pub use password::PasswordHasher;
pub use ratelimit::AuthRateLimits;
