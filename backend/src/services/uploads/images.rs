//! Decoding uploaded images and making their thumbnails. Blocking and CPU-heavy: runs on the
//! image threads only (see `Uploads`).
//!
//! - **Bombs.** The dimensions are read from the header first; an image of more than
//!   `max_pixels` pixels (e.g. a 100-megapixel PNG of a few kilobytes) is not decoded at all, and
//!   decoding may allocate at most [`MAX_DECODE_BYTES`]. Such an image, like one that fails to
//!   decode, is kept and served as a plain file: a download, without dimensions or thumbnail.
//! - **Thumbnail.** One JPEG of at most [`THUMBNAIL_SIZE`] pixels on its long side (smaller
//!   images keep their size), with the EXIF orientation applied, transparency flattened onto
//!   white, and no metadata at all (no EXIF, so no GPS position).
//! - **Dimensions** are reported as the image is displayed: for an orientation that turns it by
//!   a quarter, width and height are swapped.

use std::io::{BufReader, Cursor};
use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, Rgba, RgbaImage};

/// The long side of a thumbnail, in pixels.
pub const THUMBNAIL_SIZE: u32 = 400;

/// Memory one decode may take (a 40-megapixel RGBA image is 160 MB).
pub const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

const JPEG_QUALITY: u8 = 80;

/// What decoding an image found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// As displayed (orientation applied).
    pub width: u32,
    pub height: u32,
    /// The JPEG thumbnail's bytes.
    pub thumbnail: Vec<u8>,
}

/// Why an image was not decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotDecoded {
    /// More pixels than allowed, read from the header.
    TooLarge { width: u32, height: u32 },
    /// Unreadable, truncated, unsupported or over the memory limit.
    Failed(String),
}

fn format_of(content_type: &str) -> Option<ImageFormat> {
    match content_type {
        "image/png" => Some(ImageFormat::Png),
        "image/jpeg" => Some(ImageFormat::Jpeg),
        "image/gif" => Some(ImageFormat::Gif),
        "image/webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

/// Decodes the image in `path` (of the detected `content_type`) and makes its thumbnail.
pub fn inspect(path: &Path, content_type: &str, max_pixels: u64) -> Result<ImageInfo, NotDecoded> {
    let failed = |e: &dyn std::fmt::Display| NotDecoded::Failed(e.to_string());
    let format = format_of(content_type).ok_or_else(|| failed(&"not a decodable image type"))?;
    let file = std::fs::File::open(path).map_err(|e| failed(&e))?;
    let mut reader = ImageReader::with_format(BufReader::new(file), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits.clone());
    // Reads the header only.
    let mut decoder = reader.into_decoder().map_err(|e| failed(&e))?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 || u64::from(width) * u64::from(height) > max_pixels {
        return Err(NotDecoded::TooLarge { width, height });
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    limits
        .reserve(decoder.total_bytes())
        .map_err(|e| failed(&e))?;
    let image = DynamicImage::from_decoder(decoder).map_err(|e| failed(&e))?;
    let thumbnail = thumbnail(&image, orientation).map_err(|e| failed(&e))?;
    let (width, height) = if turns_quarter(orientation) {
        (height, width)
    } else {
        (width, height)
    };
    Ok(ImageInfo {
        width,
        height,
        thumbnail,
    })
}

fn turns_quarter(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// The JPEG thumbnail of `image`, oriented, on white, without metadata.
fn thumbnail(image: &DynamicImage, orientation: Orientation) -> image::ImageResult<Vec<u8>> {
    let mut small = if image.width().max(image.height()) > THUMBNAIL_SIZE {
        image.thumbnail(THUMBNAIL_SIZE, THUMBNAIL_SIZE)
    } else {
        image.clone()
    };
    small.apply_orientation(orientation);
    let rgb = if small.color().has_alpha() {
        let mut canvas = RgbaImage::from_pixel(small.width(), small.height(), Rgba([255; 4]));
        image::imageops::overlay(&mut canvas, &small.to_rgba8(), 0, 0);
        DynamicImage::ImageRgba8(canvas).to_rgb8()
    } else {
        small.to_rgb8()
    };
    let mut out = Cursor::new(Vec::new());
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY).encode_image(&rgb)?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(
        dir: &Path,
        name: &str,
        image: &DynamicImage,
        format: ImageFormat,
    ) -> std::path::PathBuf {
        let path = dir.join(name);
        image.save_with_format(&path, format).unwrap();
        path
    }

    #[test]
    fn thumbnails_fit_and_keep_small_images_small() {
        let dir = tempfile::tempdir().unwrap();
        let big = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            1200,
            600,
            image::Rgb([9, 99, 199]),
        ));
        let path = write(dir.path(), "big.png", &big, ImageFormat::Png);
        let info = inspect(&path, "image/png", 40_000_000).unwrap();
        assert_eq!((info.width, info.height), (1200, 600));
        let thumb = image::load_from_memory(&info.thumbnail).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (400, 200));
        assert_eq!(
            image::guess_format(&info.thumbnail).unwrap(),
            ImageFormat::Jpeg
        );

        let small = DynamicImage::ImageRgba8(RgbaImage::from_pixel(30, 20, Rgba([0, 0, 0, 0])));
        let path = write(dir.path(), "small.png", &small, ImageFormat::Png);
        let info = inspect(&path, "image/png", 40_000_000).unwrap();
        let thumb = image::load_from_memory(&info.thumbnail).unwrap().to_rgb8();
        assert_eq!(thumb.dimensions(), (30, 20));
        // Transparent became white.
        assert!(thumb.get_pixel(5, 5).0.iter().all(|&c| c > 240));
    }

    #[test]
    fn too_many_pixels_or_garbage_are_not_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let img = DynamicImage::ImageLuma8(image::GrayImage::new(300, 200));
        let path = write(dir.path(), "a.png", &img, ImageFormat::Png);
        assert_eq!(
            inspect(&path, "image/png", 300 * 200 - 1),
            Err(NotDecoded::TooLarge {
                width: 300,
                height: 200
            })
        );
        let garbage = dir.path().join("g.png");
        std::fs::write(&garbage, b"\x89PNG\r\n\x1a\nnot really").unwrap();
        assert!(matches!(
            inspect(&garbage, "image/png", 40_000_000),
            Err(NotDecoded::Failed(_))
        ));
    }
}
