//! Image bytes to RGB pixels for PDQ, safely: the format is taken from the content (magic
//! numbers), the input size is checked first, and the dimensions are read from the header and
//! checked before any pixel buffer is allocated, so a small hostile file declaring a huge
//! image ("decompression bomb") is refused cheaply. Every decoder failure is an error, never
//! a panic.
//!
//! Pixels come out as Pillow's `Image.open(…).convert("RGB")` gives them, since that is how
//! Meta's reference values are produced: alpha is dropped (not composited onto a
//! background), greyscale is replicated, 16-bit colour keeps the high byte, 16-bit greyscale
//! is clipped at 255 (Pillow's `I;16` to `RGB`). JPEG and lossy WebP decoders differ from
//! Pillow's in rounding, which moves a hash by a few bits at most.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader};

use super::hash::{PdqHasher, PdqOutput};
use super::PdqHash;

/// The image formats decoded, recognised by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    Jpeg,
    Png,
    Webp,
    Gif,
    Bmp,
    Tiff,
}

impl ImageKind {
    pub fn name(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "jpeg",
            ImageKind::Png => "png",
            ImageKind::Webp => "webp",
            ImageKind::Gif => "gif",
            ImageKind::Bmp => "bmp",
            ImageKind::Tiff => "tiff",
        }
    }

    fn format(self) -> ImageFormat {
        match self {
            ImageKind::Jpeg => ImageFormat::Jpeg,
            ImageKind::Png => ImageFormat::Png,
            ImageKind::Webp => ImageFormat::WebP,
            ImageKind::Gif => ImageFormat::Gif,
            ImageKind::Bmp => ImageFormat::Bmp,
            ImageKind::Tiff => ImageFormat::Tiff,
        }
    }
}

/// The image format of `bytes`, from its magic number; `None` if it is none of these.
pub fn sniff(bytes: &[u8]) -> Option<ImageKind> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageKind::Jpeg)
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Some(ImageKind::Png)
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some(ImageKind::Gif)
    } else if bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some(ImageKind::Webp)
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        Some(ImageKind::Tiff)
    } else if bytes.len() >= 14 && starts(b"BM") {
        Some(ImageKind::Bmp)
    } else {
        None
    }
}

/// Limits on what [`decode_rgb`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Width × height, checked from the header before decoding.
    pub max_pixels: u64,
    /// The size of the encoded input.
    pub max_input_bytes: u64,
    /// What the decoder may allocate (its own buffers and the decoded pixels).
    pub max_alloc_bytes: u64,
}

impl Default for DecodeLimits {
    /// 40 megapixels, 64 MiB of input, 512 MiB of decoder allocations. Decoding and hashing
    /// take about 14 bytes per pixel, so the largest image costs about 560 MiB: room for it
    /// and the PDQ index in a 1024 MB scanner. Larger images are undecodable, said so.
    fn default() -> Self {
        DecodeLimits {
            max_pixels: 40_000_000,
            max_input_bytes: 64 << 20,
            max_alloc_bytes: 512 << 20,
        }
    }
}

/// Why an image could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a recognised image (JPEG, PNG, WebP, GIF, BMP or TIFF)")]
    Unsupported,
    #[error("image too large: {width}x{height} pixels, at most {max_pixels} pixels allowed")]
    TooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    #[error("input too large: {bytes} bytes, at most {max} allowed")]
    InputTooLarge { bytes: u64, max: u64 },
    #[error("corrupt or truncated image: {0}")]
    Corrupt(String),
    #[error("image decoding limit exceeded: {0}")]
    LimitExceeded(String),
}

/// Decoded pixels: packed RGB8, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedImage {
    pub kind: ImageKind,
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// An image's PDQ hash, its quality and its eight dihedral variants (order:
/// [`super::hash::DIHEDRAL_NAMES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHash {
    pub kind: ImageKind,
    pub width: u32,
    pub height: u32,
    pub pdq: PdqOutput,
    pub variants: [PdqHash; 8],
}

/// Decodes `bytes` (the first frame of a GIF) to RGB8 as Pillow's `convert("RGB")` would.
pub fn decode_rgb(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedImage, DecodeError> {
    let len = bytes.len() as u64;
    if len > limits.max_input_bytes {
        return Err(DecodeError::InputTooLarge {
            bytes: len,
            max: limits.max_input_bytes,
        });
    }
    let kind = sniff(bytes).ok_or(DecodeError::Unsupported)?;
    // The JPEG decoder fills a truncated image with grey rather than failing.
    if kind == ImageKind::Jpeg && !jpeg_has_end(bytes) {
        return Err(DecodeError::Corrupt(
            "truncated JPEG (no end-of-image marker after the image data)".to_string(),
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), kind.format());
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_alloc_bytes);
    reader.limits(image_limits);
    let decoder = reader.into_decoder().map_err(from_image_error)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(DecodeError::TooLarge {
            width,
            height,
            max_pixels: limits.max_pixels,
        });
    }
    // `from_decoder` allocates the whole pixel buffer without consulting the limits.
    let buffer = decoder.total_bytes();
    if buffer > limits.max_alloc_bytes {
        return Err(DecodeError::LimitExceeded(format!(
            "{width}x{height} pixels need {buffer} bytes decoded, at most {} allowed",
            limits.max_alloc_bytes
        )));
    }
    let image = DynamicImage::from_decoder(decoder).map_err(from_image_error)?;
    let rgb = to_rgb_like_pillow(image);
    Ok(DecodedImage {
        kind,
        width,
        height,
        rgb,
    })
}

/// Decodes `bytes` and hashes the pixels.
pub fn hash_image(bytes: &[u8], limits: &DecodeLimits) -> Result<ImageHash, DecodeError> {
    let image = decode_rgb(bytes, limits)?;
    let (pdq, variants) = PdqHasher::new().hash_rgb(image.width, image.height, &image.rgb);
    Ok(ImageHash {
        kind: image.kind,
        width: image.width,
        height: image.height,
        pdq,
        variants,
    })
}

/// Whether a JPEG's segments, walked from the start, reach the end-of-image marker: a
/// truncated file runs out inside a segment or inside the entropy-coded data of a scan.
/// (A file whose data is complete but lacks only that marker is refused too.)
fn jpeg_has_end(b: &[u8]) -> bool {
    let mut i = 2; // after SOI
    loop {
        // Tolerate stray bytes between segments, as decoders do.
        while i < b.len() && b[i] != 0xFF {
            i += 1;
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = b.get(i) else {
            return false;
        };
        i += 1;
        match marker {
            0xD9 => return true,
            0x01 | 0xD0..=0xD8 => continue,
            _ => {}
        }
        let Some(len) = b.get(i..i + 2) else {
            return false;
        };
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if len < 2 || i + len > b.len() {
            return false;
        }
        i += len;
        if marker == 0xDA {
            // Entropy-coded data runs to the next marker other than a stuffed 0xFF00 or a
            // restart marker.
            loop {
                match (b.get(i), b.get(i + 1)) {
                    (None, _) | (Some(_), None) => return false,
                    (Some(0xFF), Some(&n)) if n == 0x00 || (0xD0..=0xD7).contains(&n) => i += 2,
                    (Some(0xFF), Some(0xFF)) => i += 1,
                    (Some(0xFF), Some(_)) => break,
                    _ => i += 1,
                }
            }
        }
    }
}

fn from_image_error(e: ImageError) -> DecodeError {
    match e {
        ImageError::Limits(l) => DecodeError::LimitExceeded(l.to_string()),
        ImageError::Unsupported(u) => DecodeError::Corrupt(format!("unsupported variant: {u}")),
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            DecodeError::Corrupt("truncated".to_string())
        }
        other => DecodeError::Corrupt(other.to_string()),
    }
}

/// Pillow's `convert("RGB")` on the mode Pillow would have opened the image in.
fn to_rgb_like_pillow(image: DynamicImage) -> Vec<u8> {
    let high = |v: u16| (v >> 8) as u8;
    match image {
        DynamicImage::ImageRgb8(b) => b.into_raw(),
        DynamicImage::ImageRgba8(b) => b
            .into_raw()
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        DynamicImage::ImageLuma8(b) => b.into_raw().into_iter().flat_map(|v| [v; 3]).collect(),
        DynamicImage::ImageLumaA8(b) => b
            .into_raw()
            .chunks_exact(2)
            .flat_map(|p| [p[0]; 3])
            .collect(),
        // Pillow reads 16-bit colour as 8-bit by its high bytes.
        DynamicImage::ImageRgb16(b) => b.into_raw().into_iter().map(high).collect(),
        DynamicImage::ImageRgba16(b) => b
            .into_raw()
            .chunks_exact(4)
            .flat_map(|p| [high(p[0]), high(p[1]), high(p[2])])
            .collect(),
        DynamicImage::ImageLumaA16(b) => b
            .into_raw()
            .chunks_exact(2)
            .flat_map(|p| [high(p[0]); 3])
            .collect(),
        // 16-bit greyscale opens as `I;16`, which Pillow converts to RGB by clipping.
        DynamicImage::ImageLuma16(b) => b
            .into_raw()
            .into_iter()
            .flat_map(|v| [v.min(255) as u8; 3])
            .collect(),
        other => other.into_rgb8().into_raw(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        image::RgbImage::from_raw(width, height, rgb.to_vec())
            .unwrap()
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(data);
        c.extend_from_slice(&crc32(&crc_input).to_be_bytes());
        c
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        // A valid PNG header declaring 100000 x 100000 RGB (30 GB decoded) and a tiny IDAT.
        let mut ihdr = 100_000u32.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut bomb = b"\x89PNG\r\n\x1a\n".to_vec();
        bomb.extend(chunk(b"IHDR", &ihdr));
        bomb.extend(chunk(
            b"IDAT",
            &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
        ));
        bomb.extend(chunk(b"IEND", &[]));
        assert!(bomb.len() < 100);
        let err = decode_rgb(&bomb, &DecodeLimits::default()).unwrap_err();
        assert_eq!(
            err,
            DecodeError::TooLarge {
                width: 100_000,
                height: 100_000,
                max_pixels: 40_000_000
            }
        );
        assert!(err.to_string().contains("100000x100000"), "{err}");
        // Within the pixel limit but over the allocation limit: refused by the decoder.
        let limits = DecodeLimits {
            max_pixels: u64::MAX,
            max_alloc_bytes: 1 << 20,
            ..DecodeLimits::default()
        };
        assert!(matches!(
            decode_rgb(&bomb, &limits),
            Err(DecodeError::LimitExceeded(_))
        ));
    }

    #[test]
    fn truncated_random_and_oversized_inputs_are_errors() {
        let rgb: Vec<u8> = (0..64 * 48 * 3).map(|i| (i * 7 % 251) as u8).collect();
        let mut jpeg = Vec::new();
        image::RgbImage::from_raw(64, 48, rgb.clone())
            .unwrap()
            .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
            .unwrap();
        assert_eq!(sniff(&jpeg), Some(ImageKind::Jpeg));
        let limits = DecodeLimits::default();
        assert!(decode_rgb(&jpeg, &limits).is_ok());
        for cut in [3, 20, jpeg.len() / 3, jpeg.len() / 2, jpeg.len() - 2] {
            let err = decode_rgb(&jpeg[..cut], &limits).unwrap_err();
            assert!(matches!(err, DecodeError::Corrupt(_)), "{cut}: {err:?}");
        }
        let mut state = 99u64;
        for len in [0usize, 1, 7, 100, 5000] {
            let noise: Vec<u8> = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    (state >> 56) as u8
                })
                .collect();
            assert_eq!(decode_rgb(&noise, &limits), Err(DecodeError::Unsupported));
        }
        let small = DecodeLimits {
            max_input_bytes: 10,
            ..limits
        };
        assert!(matches!(
            decode_rgb(&jpeg, &small),
            Err(DecodeError::InputTooLarge { max: 10, .. })
        ));
        // Magic numbers followed by garbage: errors, not panics.
        for magic in [
            &b"\xFF\xD8\xFF\xE0garbage"[..],
            b"\x89PNG\r\n\x1a\ngarbage",
            b"GIF89agarbage",
            b"RIFF\0\0\0\0WEBPgarbage",
            b"II*\0garbage",
            b"MM\0*garbage",
            b"BMgarbage-garbage",
        ] {
            assert!(decode_rgb(magic, &limits).is_err());
        }
    }

    #[test]
    fn small_images_decode_and_hash() {
        let one = png(1, 1, &[10, 20, 30]);
        let h = hash_image(&one, &DecodeLimits::default()).unwrap();
        assert_eq!((h.kind, h.width, h.height), (ImageKind::Png, 1, 1));
        assert_eq!(h.pdq.quality, 0);
        let rgb: Vec<u8> = (0..40 * 30 * 3).map(|i| (i * 13 % 256) as u8).collect();
        let d = decode_rgb(&png(40, 30, &rgb), &DecodeLimits::default()).unwrap();
        assert_eq!(d.rgb, rgb);
        assert_eq!(ImageKind::Webp.name(), "webp");
    }

    #[test]
    fn alpha_is_dropped_as_pillow_does() {
        let mut out = Vec::new();
        image::RgbaImage::from_raw(2, 1, vec![200, 100, 50, 0, 1, 2, 3, 128])
            .unwrap()
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        let d = decode_rgb(&out, &DecodeLimits::default()).unwrap();
        assert_eq!(d.rgb, vec![200, 100, 50, 1, 2, 3]);
    }
}
