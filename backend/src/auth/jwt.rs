//! HS256 JSON Web Tokens, pinned to that algorithm, with `sub`, `iat`, `exp`, a unique `jti` and
//! `sid`, the session the token belongs to (see `db::sessions`).
//! A token whose `nbf` is in the future, or whose header has a `crit` member (no extension is
//! understood here, so RFC 7515 says to refuse it), is refused. The service also issues the
//! device tokens (`auth::device`), whose key is derived from the same secret.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::domain::UserId;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a string.
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    /// Unique per token: what logout revokes.
    pub jti: String,
    /// The user's session generation when the token was issued (see `users.session_generation`).
    #[serde(default)]
    pub gen: i64,
    /// The session this token belongs to (a `sessions` row). Tokens issued before sessions
    /// existed have none, and are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<i64>,
}

impl Claims {
    pub fn user_id(&self) -> Option<UserId> {
        self.sub.parse().ok().map(UserId)
    }
}

#[derive(Clone)]
pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    pub device: super::DeviceTokens,
}

impl TokenService {
    pub fn new(secret: &Secret, ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "jti"]);
        validation.leeway = 5;
        validation.validate_nbf = true;
        TokenService {
            encoding: EncodingKey::from_secret(secret.expose()),
            decoding: DecodingKey::from_secret(secret.expose()),
            validation,
            ttl,
            device: super::DeviceTokens::new(secret),
        }
    }

    /// A token of `user` in session generation `gen`, belonging to session `sid`.
    pub fn issue(
        &self,
        user: UserId,
        gen: i64,
        sid: i64,
    ) -> Result<(String, Claims), jsonwebtoken::errors::Error> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user.0.to_string(),
            iat: now,
            exp: now + i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2),
            jti: uuid::Uuid::new_v4().to_string(),
            gen,
            sid: Some(sid),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((token, claims))
    }

    /// Checks signature, algorithm and expiry. Revocation is checked by the caller.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        self.check(token).ok()
    }

    /// As [`verify`](Self::verify), saying why a token is refused. The signature is checked
    /// before the expiry, so only a token this server signed can be "expired".
    pub fn check(&self, token: &str) -> Result<Claims, TokenError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidToken
                | ErrorKind::Base64(_)
                | ErrorKind::Json(_)
                | ErrorKind::Utf8(_) => TokenError::Malformed,
                _ => TokenError::Invalid,
            })?;
        if data.header.crit.is_some() {
            return Err(TokenError::Invalid);
        }
        Ok(data.claims)
    }
}

/// Why a token is refused before any session is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a JSON Web Token at all (not three base64url parts of JSON).
    Malformed,
    /// A JSON Web Token this server does not accept: another key or algorithm, a required claim
    /// missing, `nbf` in the future, a `crit` header.
    Invalid,
    /// Signed here, but past its `exp`.
    Expired,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> TokenService {
        TokenService::new(&Secret::new(vec![7; 32]), Duration::from_secs(3600))
    }

    #[test]
    fn round_trip_and_unique_jti() {
        let s = service();
        let (t1, c1) = s.issue(UserId(42), 0, 1).expect("issue");
        let (_, c2) = s.issue(UserId(42), 0, 1).expect("issue");
        assert_ne!(c1.jti, c2.jti);
        assert_eq!(s.verify(&t1).and_then(|c| c.user_id()), Some(UserId(42)));
    }

    #[test]
    fn rejects_alg_none_and_other_keys() {
        let s = service();
        // {"alg":"none","typ":"JWT"} . {"sub":"1","iat":1,"exp":99999999999,"jti":"x"} .
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxIiwiaWF0IjoxLCJleHAiOjk5OTk5OTk5OTk5LCJqdGkiOiJ4In0.";
        assert!(s.verify(none).is_none());
        let other = TokenService::new(&Secret::new(vec![8; 32]), Duration::from_secs(3600));
        let (t, _) = other.issue(UserId(1), 0, 1).expect("issue");
        assert!(s.verify(&t).is_none());
    }

    #[test]
    fn says_why_a_token_is_refused() {
        let s = service();
        assert_eq!(s.check("garbage").unwrap_err(), TokenError::Malformed);
        assert_eq!(s.check("a.b.c").unwrap_err(), TokenError::Malformed);
        let key = EncodingKey::from_secret(&[7; 32]);
        let now = chrono::Utc::now().timestamp();
        let old = serde_json::json!({"sub": "1", "iat": now - 7200, "exp": now - 3600, "jti": "x"});
        let expired = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &old, &key).unwrap();
        assert_eq!(s.check(&expired).unwrap_err(), TokenError::Expired);
        // Expired and signed with another key: not ours, so not "expired".
        let other = EncodingKey::from_secret(&[8; 32]);
        let forged = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &old, &other).unwrap();
        assert_eq!(s.check(&forged).unwrap_err(), TokenError::Invalid);
        let (fresh, _) = s.issue(UserId(1), 0, 1).expect("issue");
        assert!(s.check(&fresh).is_ok());
    }

    #[test]
    fn rejects_future_nbf_and_crit_headers() {
        let s = service();
        let key = EncodingKey::from_secret(&[7; 32]);
        let now = chrono::Utc::now().timestamp();
        let claims = |nbf: i64| serde_json::json!({"sub": "1", "iat": now, "exp": now + 600, "jti": "x", "nbf": nbf});
        let plain = Header::new(Algorithm::HS256);
        let ok = jsonwebtoken::encode(&plain, &claims(now - 10), &key).unwrap();
        assert!(s.verify(&ok).is_some());
        let early = jsonwebtoken::encode(&plain, &claims(now + 600), &key).unwrap();
        assert!(s.verify(&early).is_none());
        let mut crit = Header::new(Algorithm::HS256);
        crit.crit = Some(vec!["exp".into()]);
        let t = jsonwebtoken::encode(&crit, &claims(now - 10), &key).unwrap();
        assert!(s.verify(&t).is_none());
    }
}
