//! Device tokens (OWASP "device cookies"): an opaque string given to a client at register and
//! at each successful login, which later logins present to show they come from a device that
//! signed in before. Stateless — `d1.` + base64url(user id ‖ random nonce ‖ HMAC-SHA256) with a
//! key derived from the JWT secret — so every instance sharing that secret accepts them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;
use crate::domain::UserId;

type HmacSha256 = Hmac<Sha256>;

const PREFIX: &str = "d1.";
const NONCE: usize = 16;
const MAC: usize = 32;

#[derive(Clone)]
pub struct DeviceTokens {
    key: [u8; 32],
}

impl DeviceTokens {
    /// Derives the device-token key from the JWT secret, so the two never share a key.
    pub fn new(secret: &Secret) -> Self {
        let mut key = [0u8; 32];
        if let Ok(mut mac) = HmacSha256::new_from_slice(secret.expose()) {
            mac.update(b"letschat device tokens v1");
            key.copy_from_slice(&mac.finalize().into_bytes());
        }
        DeviceTokens { key }
    }

    fn mac(&self) -> Option<HmacSha256> {
        HmacSha256::new_from_slice(&self.key).ok()
    }

    /// A new token for `user`.
    pub fn issue(&self, user: UserId) -> String {
        let nonce: [u8; NONCE] = rand::random();
        let mut bytes = Vec::with_capacity(8 + NONCE + MAC);
        bytes.extend_from_slice(&user.0.to_be_bytes());
        bytes.extend_from_slice(&nonce);
        if let Some(mut mac) = self.mac() {
            mac.update(&bytes);
            bytes.extend_from_slice(&mac.finalize().into_bytes());
        }
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The throttling key of `token` (its nonce, hex) when it is a genuine token of `user`.
    pub fn verify(&self, token: &str, user: UserId) -> Option<String> {
        let body = token.strip_prefix(PREFIX)?;
        if body.len() > 128 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
        if bytes.len() != 8 + NONCE + MAC {
            return None;
        }
        let (signed, tag) = bytes.split_at(8 + NONCE);
        let mut mac = self.mac()?;
        mac.update(signed);
        mac.verify_slice(tag).ok()?;
        let id = i64::from_be_bytes(signed[..8].try_into().ok()?);
        (id == user.0).then(|| hex::encode(&signed[8..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_their_user_and_key() {
        let d = DeviceTokens::new(&Secret::new(vec![7; 32]));
        let t = d.issue(UserId(42));
        let key = d.verify(&t, UserId(42)).expect("valid");
        assert_eq!(key.len(), 32);
        assert_ne!(d.verify(&d.issue(UserId(42)), UserId(42)), Some(key));
        assert_eq!(d.verify(&t, UserId(43)), None);
        let other = DeviceTokens::new(&Secret::new(vec![8; 32]));
        assert_eq!(other.verify(&t, UserId(42)), None);
        // Any change breaks it.
        let mut forged = t.clone().into_bytes();
        let last = forged.len() - 1;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            d.verify(&String::from_utf8(forged).unwrap(), UserId(42)),
            None
        );
        assert_eq!(d.verify("", UserId(42)), None);
        assert_eq!(d.verify("d1.", UserId(42)), None);
        assert_eq!(d.verify(&"d1.A".repeat(100), UserId(42)), None);
    }
}
