//! Signed, expiring file links: `/api/files/{upload_id}?e=<expiry>&s=<signature>` for the bytes,
//! `/api/files/{upload_id}/thumbnail?e=…&s=…` for the thumbnail. `e` is the expiry in seconds
//! since the Unix epoch; `s` is HMAC-SHA256 over the upload id, the variant and `e`, in unpadded
//! base64url, keyed with a key derived from the server secret (so every instance sharing the
//! secret accepts every instance's links). A tampered or expired link is refused before any
//! database query.
//!
//! Links work without an `Authorization` header (`<img src>`, downloads): whoever holds one may
//! use it until it expires. Expiries are rounded up to the next multiple of a few minutes, so a
//! link signed twice in a short while is the same URL and the browser's cache can serve it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;
use crate::db::uploads::UploadRow;

type HmacSha256 = Hmac<Sha256>;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Which bytes of an upload a link serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The bytes as uploaded.
    File,
    /// The JPEG thumbnail made at upload (images the server decoded).
    Thumbnail,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::File => "file",
            Variant::Thumbnail => "thumbnail",
        }
    }

    fn path_suffix(self) -> &'static str {
        match self {
            Variant::File => "",
            Variant::Thumbnail => "/thumbnail",
        }
    }
}

/// An upload's links, signed for one reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUrls {
    pub url: String,
    /// Only for uploads with a thumbnail.
    pub thumbnail_url: Option<String>,
}

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    BadSignature,
    Expired,
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinkError::BadSignature => "this link is not valid",
            LinkError::Expired => "this link has expired; ask for a fresh one",
        })
    }
}

/// Signs and checks file links (cheap to clone).
#[derive(Clone)]
pub struct Links {
    key: Arc<[u8; 32]>,
    ttl: Duration,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links").field("ttl", &self.ttl).finish()
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Links {
    /// Links valid for `ttl`, signed with a key derived from `secret` (the token secret: a key
    /// of its own, so a link's signature can never be taken for anything else's).
    pub fn new(secret: &Secret, ttl: Duration) -> Links {
        let mut derive = <HmacSha256 as Mac>::new_from_slice(secret.expose())
            .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()));
        derive.update(b"letschat/file-links/v1");
        let key: [u8; 32] = derive.finalize().into_bytes().into();
        Links {
            key: Arc::new(key),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn mac(&self, upload_id: &str, variant: Variant, expires: u64) -> HmacSha256 {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(self.key.as_slice())
            .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()));
        mac.update(upload_id.as_bytes());
        mac.update(b"\n");
        mac.update(variant.label().as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// The expiry of a link signed at `now`: `ttl` later, rounded up to a multiple of
    /// `ttl / 12` (at most five minutes).
    pub fn expiry(&self, now: SystemTime) -> u64 {
        let step = (self.ttl.as_secs() / 12).clamp(1, 300);
        let at = unix_secs(now).saturating_add(self.ttl.as_secs());
        at.div_ceil(step).saturating_mul(step)
    }

    /// The link to `variant` of `upload_id` that expires at `expires` (seconds since the epoch).
    pub fn url_until(&self, upload_id: &str, variant: Variant, expires: u64) -> String {
        let signature = B64.encode(
            self.mac(upload_id, variant, expires)
                .finalize()
                .into_bytes(),
        );
        format!(
            "/api/files/{upload_id}{}?e={expires}&s={signature}",
            variant.path_suffix()
        )
    }

    /// The links to `upload` for a reader, signed at `now`. What every response that shows an
    /// upload or attachment calls, for each reader.
    pub fn sign(&self, upload: &UploadRow, now: SystemTime) -> SignedUrls {
        let expires = self.expiry(now);
        SignedUrls {
            url: self.url_until(&upload.id, Variant::File, expires),
            thumbnail_url: upload
                .has_thumbnail
                .then(|| self.url_until(&upload.id, Variant::Thumbnail, expires)),
        }
    }

    /// Checks a link's signature (in constant time), then its expiry.
    pub fn verify(
        &self,
        upload_id: &str,
        variant: Variant,
        expires: u64,
        signature: &str,
        now: SystemTime,
    ) -> Result<(), LinkError> {
        let given = B64
            .decode(signature.as_bytes())
            .map_err(|_| LinkError::BadSignature)?;
        self.mac(upload_id, variant, expires)
            .verify_slice(&given)
            .map_err(|_| LinkError::BadSignature)?;
        if expires <= unix_secs(now) {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> Links {
        Links::new(
            &Secret::new(b"0123456789abcdef0123456789abcdef".to_vec()),
            Duration::from_secs(3600),
        )
    }

    fn parts(url: &str) -> (u64, String) {
        let query = url.split_once('?').unwrap().1;
        let (e, s) = query.split_once('&').unwrap();
        (
            e.strip_prefix("e=").unwrap().parse().unwrap(),
            s.strip_prefix("s=").unwrap().to_owned(),
        )
    }

    #[test]
    fn signed_links_verify_until_they_expire() {
        let l = links();
        let id = "0123456789abcdef0123456789abcdef";
        let now = SystemTime::now();
        let expires = l.expiry(now);
        let lifetime = expires - unix_secs(now);
        assert!((3600..=3900).contains(&lifetime), "{lifetime}");
        let url = l.url_until(id, Variant::File, expires);
        assert!(
            url.starts_with(&format!("/api/files/{id}?e={expires}&s=")),
            "{url}"
        );
        let (e, s) = parts(&url);
        assert_eq!(l.verify(id, Variant::File, e, &s, now), Ok(()));
        // Another variant, another id, another expiry, another secret: refused.
        assert_eq!(
            l.verify(id, Variant::Thumbnail, e, &s, now),
            Err(LinkError::BadSignature)
        );
        let other = "1123456789abcdef0123456789abcdef";
        assert_eq!(
            l.verify(other, Variant::File, e, &s, now),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            l.verify(id, Variant::File, e + 1, &s, now),
            Err(LinkError::BadSignature)
        );
        let stranger = Links::new(&Secret::new(vec![7; 32]), Duration::from_secs(3600));
        assert_eq!(
            stranger.verify(id, Variant::File, e, &s, now),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            l.verify(id, Variant::File, e, "not base64!", now),
            Err(LinkError::BadSignature)
        );
        // Past the expiry: refused even with a good signature.
        let later = UNIX_EPOCH + Duration::from_secs(e);
        assert_eq!(
            l.verify(id, Variant::File, e, &s, later),
            Err(LinkError::Expired)
        );
        // Signed twice within a few minutes: the same URL.
        let soon = now + Duration::from_secs(1);
        let again = l.url_until(id, Variant::File, l.expiry(soon));
        assert!(again == url || l.expiry(soon) > expires);
    }
}
