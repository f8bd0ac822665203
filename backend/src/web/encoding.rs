//! Content codings: which one a request accepts best, which responses are worth compressing,
//! and the headers that go with a compressed representation.

use actix_web::http::header::{self, ContentEncoding, HeaderMap, HeaderValue};

/// The codings the server sends: brotli (smaller) and gzip (everywhere). zstd is left out:
/// a third variant of every asset for a few per cent at best on text this size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Brotli,
    Gzip,
}

impl Coding {
    pub fn content_encoding(self) -> ContentEncoding {
        match self {
            Coding::Brotli => ContentEncoding::Brotli,
            Coding::Gzip => ContentEncoding::Gzip,
        }
    }

    /// The suffix of the build's precompressed copy of a file (`app.js.br`, `app.js.gz`).
    pub fn file_suffix(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gz",
        }
    }
}

/// The codings `Accept-Encoding` allows, best first: by the client's q-values, and brotli before
/// gzip when they are equal (browsers list `gzip, deflate, br, zstd`, all at q=1). Empty when the
/// header is missing or allows neither.
pub fn accepted(headers: &HeaderMap) -> Vec<Coding> {
    let (mut br, mut gzip, mut any) = (None::<f32>, None::<f32>, None::<f32>);
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match name.as_str() {
                "br" => br = Some(q),
                "gzip" | "x-gzip" => gzip = Some(q),
                "*" => any = Some(q),
                _ => {}
            }
        }
    }
    let br = br.or(any).unwrap_or(0.0);
    let gzip = gzip.or(any).unwrap_or(0.0);
    let mut out = Vec::with_capacity(2);
    let ranked = if gzip > br {
        [(Coding::Gzip, gzip), (Coding::Brotli, br)]
    } else {
        [(Coding::Brotli, br), (Coding::Gzip, gzip)]
    };
    for (coding, q) in ranked {
        if q > 0.0 {
            out.push(coding);
        }
    }
    out
}

/// The best coding the request accepts, if any.
pub fn preferred(headers: &HeaderMap) -> Option<Coding> {
    accepted(headers).first().copied()
}

/// Text worth compressing: HTML, CSS, JavaScript, JSON, SVG, XML, YAML, plain text and source
/// maps. Pictures, video, archives and PDFs are compressed already.
pub fn is_compressible_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/javascript"
                | "application/xml"
                | "application/yaml"
                | "application/wasm"
                | "image/svg+xml"
        )
}

/// Adds `Accept-Encoding` to `Vary` unless it is there.
pub fn vary_on_accept_encoding(headers: &mut HeaderMap) {
    let present = headers
        .get_all(header::VARY)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            let v = v.trim();
            v == "*" || v.eq_ignore_ascii_case("accept-encoding")
        });
    if !present {
        headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

/// Turns a strong `ETag` into a weak one (a compressed copy is not byte-for-byte the file).
pub fn weaken_etag(headers: &mut HeaderMap) {
    let weak = headers
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with('"'))
        .and_then(|v| HeaderValue::from_str(&format!("W/{v}")).ok());
    if let Some(weak) = weak {
        headers.insert(header::ETAG, weak);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(accept).unwrap(),
        );
        h
    }

    #[test]
    fn brotli_first_unless_the_client_prefers_gzip() {
        use Coding::*;
        assert_eq!(accepted(&HeaderMap::new()), vec![]);
        assert_eq!(
            accepted(&with("gzip, deflate, br, zstd")),
            vec![Brotli, Gzip]
        );
        assert_eq!(accepted(&with("gzip")), vec![Gzip]);
        assert_eq!(accepted(&with("br")), vec![Brotli]);
        assert_eq!(accepted(&with("br;q=0.5, gzip")), vec![Gzip, Brotli]);
        assert_eq!(accepted(&with("br;q=0, gzip;q=0.1")), vec![Gzip]);
        assert_eq!(accepted(&with("*")), vec![Brotli, Gzip]);
        assert_eq!(accepted(&with("*;q=0, identity")), vec![]);
        assert_eq!(accepted(&with("gzip;q=1, *;q=0")), vec![Gzip]);
        assert_eq!(accepted(&with("identity")), vec![]);
        assert_eq!(accepted(&with("deflate, zstd")), vec![]);
        assert_eq!(
            accepted(&with("  GZIP ; q=0.8 , BR;q=0.9")),
            vec![Brotli, Gzip]
        );
    }

    #[test]
    fn text_is_compressible_and_media_is_not() {
        for t in [
            "text/html; charset=utf-8",
            "text/css",
            "text/javascript",
            "application/javascript",
            "application/json",
            "application/problem+json",
            "image/svg+xml",
        ] {
            assert!(is_compressible_type(t), "{t}");
        }
        for t in [
            "image/png",
            "image/jpeg",
            "application/pdf",
            "application/zip",
            "video/mp4",
            "application/octet-stream",
            "",
        ] {
            assert!(!is_compressible_type(t), "{t}");
        }
    }

    #[test]
    fn vary_and_etag() {
        let mut h = HeaderMap::new();
        vary_on_accept_encoding(&mut h);
        vary_on_accept_encoding(&mut h);
        assert_eq!(h.get_all(header::VARY).count(), 1);
        let mut h = HeaderMap::new();
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        vary_on_accept_encoding(&mut h);
        assert_eq!(h.get_all(header::VARY).count(), 2);

        h.insert(header::ETAG, HeaderValue::from_static("\"abc\""));
        weaken_etag(&mut h);
        assert_eq!(h.get(header::ETAG).unwrap(), "W/\"abc\"");
        weaken_etag(&mut h);
        assert_eq!(h.get(header::ETAG).unwrap(), "W/\"abc\"");
    }
}
