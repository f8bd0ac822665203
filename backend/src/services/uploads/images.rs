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
//! - **JPEG photos are shrunk while decoding** (DCT scaling at 1/8, 1/4 or 1/2, the smallest that
//!   still covers the thumbnail): a 12-megapixel photo is decoded to about 500 × 380 pixels, in a
//!   few milliseconds and a few hundred kilobytes, instead of whole (36 MB and ~100 ms of a
//!   core, which polluted the caches messaging runs in). A JPEG the scaled decoder cannot read
//!   (e.g. CMYK) is decoded whole as before.
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
    let scaled = if format == ImageFormat::Jpeg {
        drop(decoder);
        match jpeg_for_thumbnail(path, width, height) {
            Ok(image) => Some(image),
            Err(e) => {
                tracing::debug!(error = %e, "JPEG decoded whole: the scaled decoder could not");
                None
            }
        }
    } else {
        None
    };
    let image = match scaled {
        Some(image) => image,
        None => {
            let file = std::fs::File::open(path).map_err(|e| failed(&e))?;
            let mut reader = ImageReader::with_format(BufReader::new(file), format);
            reader.limits(limits.clone());
            let decoder = reader.into_decoder().map_err(|e| failed(&e))?;
            limits
                .reserve(decoder.total_bytes())
                .map_err(|e| failed(&e))?;
            DynamicImage::from_decoder(decoder).map_err(|e| failed(&e))?
        }
    };
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

/// A JPEG of `width` × `height` (as stored) decoded at the smallest DCT scale (1/8, 1/4, 1/2 or
/// 1) whose result still covers a thumbnail of it, as 8-bit RGB or grey.
fn jpeg_for_thumbnail(path: &Path, width: u32, height: u32) -> Result<DynamicImage, String> {
    use jpeg_decoder::{Decoder, PixelFormat};
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut decoder = Decoder::new(BufReader::new(file));
    decoder.set_max_decoding_buffer_size(usize::try_from(MAX_DECODE_BYTES).unwrap_or(usize::MAX));
    decoder.read_info().map_err(|e| e.to_string())?;
    // The thumbnail's size on each side, which the decoded image must cover.
    let long = u64::from(width.max(height).max(1));
    let covering = |side: u32| {
        let needed = (u64::from(side) * u64::from(THUMBNAIL_SIZE)).div_ceil(long);
        u16::try_from(needed.clamp(1, u64::from(side.max(1)))).unwrap_or(u16::MAX)
    };
    let (w, h) = decoder
        .scale(covering(width), covering(height))
        .map_err(|e| e.to_string())?;
    let pixels = decoder.decode().map_err(|e| e.to_string())?;
    let format = decoder
        .info()
        .map(|i| i.pixel_format)
        .ok_or("no image information")?;
    let (w, h) = (u32::from(w), u32::from(h));
    let image = match format {
        PixelFormat::RGB24 => image::RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8),
        PixelFormat::L8 => image::GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8),
        other => return Err(format!("pixel format {other:?}")),
    };
    image.ok_or_else(|| "decoded pixels do not fill the image".to_owned())
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
    fn jpeg_photos_are_shrunk_while_decoding() {
        let dir = tempfile::tempdir().unwrap();
        let photo = DynamicImage::ImageRgb8(image::RgbImage::from_fn(3200, 2400, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
        }));
        let path = write(dir.path(), "photo.jpg", &photo, ImageFormat::Jpeg);
        let scaled = jpeg_for_thumbnail(&path, 3200, 2400).unwrap();
        assert_eq!(
            (scaled.width(), scaled.height()),
            (400, 300),
            "decoded at 1/8"
        );
        let info = inspect(&path, "image/jpeg", 40_000_000).unwrap();
        assert_eq!((info.width, info.height), (3200, 2400));
        let thumb = image::load_from_memory(&info.thumbnail).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (400, 300));

        // A strip: the scale must still cover the long side.
        let strip =
            DynamicImage::ImageLuma8(image::GrayImage::from_pixel(1000, 50, image::Luma([90])));
        let path = write(dir.path(), "strip.jpg", &strip, ImageFormat::Jpeg);
        let scaled = jpeg_for_thumbnail(&path, 1000, 50).unwrap();
        assert_eq!(
            (scaled.width(), scaled.height()),
            (500, 25),
            "decoded at 1/2"
        );
        let info = inspect(&path, "image/jpeg", 40_000_000).unwrap();
        let thumb = image::load_from_memory(&info.thumbnail).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (400, 20));
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
