//! What an upload is, from its bytes (never from what the client claimed), and a safe name for it.

/// Bytes of the start of an upload kept for detection.
pub const SNIFF_BYTES: usize = 8192;

/// Content types the server decodes, makes thumbnails of and serves `inline` (when decoding
/// worked). SVG is never among them: it is a document that can run script.
pub const INLINE_IMAGES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// The content type of an upload that starts with `head` (its first [`SNIFF_BYTES`] bytes, or
/// all of it when shorter): a known magic number (`infer`: images, PDF, archives, audio, video,
/// office documents, HTML, XML, ...), else text (UTF-8 without control characters) as
/// `text/plain` or, for SVG, `image/svg+xml`, else `application/octet-stream`.
pub fn content_type(head: &[u8]) -> String {
    if let Some(kind) = infer::get(head) {
        let mime = kind.mime_type();
        if mime == "text/xml" && is_svg(head) {
            return "image/svg+xml".to_owned();
        }
        return mime.to_owned();
    }
    if is_text(head) {
        return if is_svg(head) {
            "image/svg+xml"
        } else {
            "text/plain"
        }
        .to_owned();
    }
    "application/octet-stream".to_owned()
}

/// Whether the server should try to decode an upload of this content type as an image.
pub fn is_decodable_image(content_type: &str) -> bool {
    INLINE_IMAGES.contains(&content_type)
}

fn is_svg(head: &[u8]) -> bool {
    let lower = head.to_ascii_lowercase();
    lower.windows(4).any(|w| w == b"<svg")
}

/// UTF-8 (a sequence cut at the end of `head` allowed) with no control characters but tab,
/// line breaks, form feed and escape.
fn is_text(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        // Cut in the middle of a character at the end of the sniffed bytes: fine.
        Err(e) if e.error_len().is_none() && head.len() - e.valid_up_to() < 4 => {
            match std::str::from_utf8(&head[..e.valid_up_to()]) {
                Ok(s) => s,
                Err(_) => return false,
            }
        }
        Err(_) => return false,
    };
    !valid.is_empty()
        && !valid
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c' | '\x1b'))
}

/// Longest name kept, in bytes (file systems commonly allow 255).
pub const MAX_NAME_BYTES: usize = 200;

/// A file name safe to store and to send back in `Content-Disposition`: the last path component
/// only (no `/` or `\`), without control, format (bidirectional overrides, zero-width) or
/// line-breaking characters, trimmed, at most [`MAX_NAME_BYTES`] bytes with the extension kept
/// when it can be; `file` (plus an extension for the detected type) when nothing is left.
pub fn safe_name(sent: Option<&str>, content_type: &str) -> String {
    let raw = sent.unwrap_or("");
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !is_invisible_format(*c))
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    if trimmed.is_empty() {
        return format!("file{}", default_extension(content_type));
    }
    shorten(trimmed, MAX_NAME_BYTES)
}

/// Format characters that reorder or hide text (Unicode `Cf`, the ones that matter here), and the
/// line and paragraph separators.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// `name` cut to at most `max` bytes on a character boundary, keeping a short extension.
fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let ext = name
        .rfind('.')
        .map(|i| &name[i..])
        .filter(|e| e.len() <= 16 && e.len() < max);
    let keep = max - ext.map_or(0, str::len);
    let mut end = keep;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let stem = name[..end].trim_end();
    format!("{stem}{}", ext.unwrap_or(""))
}

fn default_extension(content_type: &str) -> &'static str {
    match content_type {
        "image/png" => ".png",
        "image/jpeg" => ".jpg",
        "image/gif" => ".gif",
        "image/webp" => ".webp",
        "image/svg+xml" => ".svg",
        "application/pdf" => ".pdf",
        "text/plain" => ".txt",
        "text/html" => ".html",
        _ => "",
    }
}

/// `name` with everything but printable ASCII (and `"`, `\`, `%`) replaced, for the plain
/// `filename=` parameter that old clients read beside `filename*=`.
pub fn ascii_fallback(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '%') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_from_bytes() {
        assert_eq!(content_type(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), "image/png");
        assert_eq!(content_type(b"\xff\xd8\xff\xe0\0\x10JFIF\0"), "image/jpeg");
        assert_eq!(
            content_type(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"),
            "application/pdf"
        );
        assert_eq!(
            content_type(b"<!DOCTYPE html><html><script>alert(1)</script>"),
            "text/html"
        );
        assert_eq!(content_type(b"  <html><body>hi"), "text/html");
        assert_eq!(
            content_type(b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script/></svg>"),
            "image/svg+xml"
        );
        assert_eq!(
            content_type(b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            "image/svg+xml"
        );
        assert_eq!(content_type("héllo\nwörld\t!".as_bytes()), "text/plain");
        // Cut in the middle of a character at the end of the sniffed bytes.
        assert_eq!(
            content_type(&"é".as_bytes()[..1]),
            "application/octet-stream"
        );
        assert_eq!(content_type(&"aé".as_bytes()[..2]), "text/plain");
        assert_eq!(
            content_type(b"\0\x01\x02binary"),
            "application/octet-stream"
        );
        assert_eq!(content_type(b""), "application/octet-stream");
        assert!(is_decodable_image("image/webp"));
        assert!(!is_decodable_image("image/svg+xml"));
    }

    #[test]
    fn names_are_made_safe() {
        assert_eq!(safe_name(Some("photo.jpg"), "image/jpeg"), "photo.jpg");
        assert_eq!(safe_name(Some("../../etc/passwd"), "text/plain"), "passwd");
        assert_eq!(safe_name(Some("C:\\Users\\a\\b.pdf"), "x"), "b.pdf");
        assert_eq!(safe_name(Some("a\u{202E}gnp.exe"), "x"), "agnp.exe");
        assert_eq!(safe_name(Some("li\nne\r.txt\0"), "x"), "line.txt");
        assert_eq!(safe_name(Some("  ..  "), "image/png"), "file.png");
        assert_eq!(safe_name(None, "application/octet-stream"), "file");
        assert_eq!(safe_name(Some("dir/"), "application/pdf"), "file.pdf");
        assert_eq!(safe_name(Some(".bashrc"), "text/plain"), "bashrc");
        let long = format!("{}.tar.gz", "é".repeat(300));
        let short = safe_name(Some(&long), "x");
        assert!(short.len() <= MAX_NAME_BYTES, "{}", short.len());
        assert!(short.ends_with("é.gz"), "{short}");
        assert_eq!(ascii_fallback("naïve \"x\".pdf"), "na_ve _x_.pdf");
    }
}
