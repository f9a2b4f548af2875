//! Protective previews of quarantined objects, rendered on the server.
//!
//! A reviewer confirms or refutes a match by looking at it, and every look at abuse material
//! harms the person looking. The preview is built to show as little as a decision needs:
//!
//! - **Server-side.** The reviewer's browser receives a new, small PNG made here, never the
//!   original bytes. Blurring in the browser (a CSS `filter: blur()` over the original, as some
//!   review tools do) still delivers the full image to the device: one click on "inspect", a
//!   disabled style sheet, a cached download or a slow connection showing the image before the
//!   style applies, and the reviewer sees it unprotected. Here the unblurred pixels never
//!   leave the function.
//! - **Small.** At most [`MAX_SIDE`] pixels on the longest side, never enlarged.
//! - **Grayscale.** Colour carries much of an image's emotional impact (skin, blood); a study
//!   of content moderators (Karunakaran and Ramakrishnan, "Testing Stylistic Interventions to
//!   Reduce Emotional Impact of Content Moderation Workers", HCOMP 2019) found that grayscale
//!   and blurring lessen the impact of viewing while moderators stay as accurate. The PNG is
//!   8-bit luma, so no colour can come back.
//! - **Blurred, always.** Every preview starts [`Level::Blurred`]: shapes and the layout of the
//!   scene are only vaguely recognisable. [`Level::Revealed`], which a reviewer asks for with a
//!   reason (the API records it in the audit log), is noticeably sharper but is still grayscale,
//!   still small and still softened.
//! - **Safe to decode.** The object is hostile input. Its format is read from its bytes (not
//!   the declared content type), only the formats a browser shows are decoded (JPEG, PNG, GIF's
//!   first frame, WebP), and its dimensions and the memory its decoding needs are checked
//!   against [`Limits`] before a pixel is decoded; the decoder is also given the same limits so
//!   that it refuses by itself. Any input gives a [`Preview`], never a panic: an object that
//!   cannot be previewed gets [`Preview::None`] with a reason a reviewer can read.
//!
//! [`render`] is a pure function of its arguments: no I/O, no clock, no randomness.

use std::fmt;
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use image::codecs::png::PngEncoder;
use image::imageops::{self, FilterType};
use image::metadata::Orientation;
use image::{
    DynamicImage, ExtendedColorType, GrayImage, ImageDecoder, ImageEncoder, ImageError,
    ImageFormat, ImageReader,
};

/// The longest side of a preview, in pixels.
pub const MAX_SIDE: u32 = 256;

/// How much of the image a preview shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    /// The default: downscaled hard and blurred, so that only the rough layout of light and
    /// dark areas shows.
    Blurred,
    /// After a reviewer gave a reason: less blurred, enough to recognise what is shown; still
    /// grayscale and small.
    Revealed,
}

/// What a preview may cost to decode. Checked from the image's header before decoding, and
/// handed to the decoder as well.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Widest image decoded, in pixels.
    pub max_width: u32,
    /// Tallest image decoded, in pixels.
    pub max_height: u32,
    /// Most memory the decoding may need, in bytes: the decoded pixels and the decoder's own
    /// working buffers (see [`decoding_memory`]).
    pub max_alloc: u64,
}

impl Default for Limits {
    /// 16,384 pixels a side and 512 MiB: a 12-megapixel photo (4000x3000 JPEG, about 108 MiB
    /// to decode) easily, JPEGs up to about 59 megapixels and PNGs up to 134 (8-bit RGBA);
    /// nothing a decompression bomb can declare beyond that.
    fn default() -> Limits {
        Limits {
            max_width: 16_384,
            max_height: 16_384,
            max_alloc: 512 << 20,
        }
    }
}

/// A rendered preview, or why there is none.
#[derive(Clone, PartialEq, Eq)]
pub enum Preview {
    /// An 8-bit grayscale PNG, at most [`MAX_SIDE`] pixels on its longest side.
    Image {
        png: Vec<u8>,
        width: u32,
        height: u32,
    },
    /// No preview; `reason` is for the reviewer (e.g. "not an image (application/pdf)").
    None { reason: String },
}

/// Shows the PNG's size, not its bytes: a preview is derived from object content, which never
/// goes into logs.
impl fmt::Debug for Preview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Preview::Image { png, width, height } => f
                .debug_struct("Image")
                .field("png", &format_args!("<{} bytes>", png.len()))
                .field("width", width)
                .field("height", height)
                .finish(),
            Preview::None { reason } => f.debug_struct("None").field("reason", reason).finish(),
        }
    }
}

/// The preview of an object's `bytes` at `level`. `content_type` is what the upload declared;
/// it only names the type in a reason, the bytes decide what is decoded.
pub fn render(bytes: &[u8], content_type: Option<&str>, level: Level, limits: &Limits) -> Preview {
    // The decoders return errors on bad input, but they parse hostile bytes: should one panic
    // anyway, that object gets no preview and the service keeps serving.
    let rendered = catch_unwind(AssertUnwindSafe(|| {
        try_render(bytes, content_type, level, limits)
    }));
    match rendered {
        Ok(Ok((png, width, height))) => Preview::Image { png, width, height },
        Ok(Err(reason)) => Preview::None { reason },
        Err(_) => Preview::None {
            reason: "unreadable image: the decoder failed on it".to_owned(),
        },
    }
}

/// [`render`] without the panic guard (the tests call this, so that a panic fails them): the
/// PNG and its dimensions, or the reason for no preview.
fn try_render(
    bytes: &[u8],
    content_type: Option<&str>,
    level: Level,
    limits: &Limits,
) -> Result<(Vec<u8>, u32, u32), String> {
    if bytes.is_empty() {
        return Err("not an image (empty object)".to_owned());
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| unreadable(&ImageError::IoError(e)))?;
    let format = match reader.format() {
        Some(
            format @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP),
        ) => format,
        Some(other) => {
            return Err(format!(
                "image format not previewed ({})",
                other.to_mime_type()
            ))
        }
        None => return Err(not_an_image(bytes, content_type)),
    };

    if format == ImageFormat::Jpeg && jpeg_is_truncated(bytes) {
        // The JPEG decoder is lenient and would fill what is missing with gray.
        return Err("unreadable image: the JPEG is truncated (it has no end)".to_owned());
    }

    // The header is parsed (dimensions, colour type) under the memory limit only, so that a
    // too large image is refused below naming its dimensions, before a pixel is decoded; the
    // decoder is then given the full limits and refuses by itself too.
    let mut header_limits = image::Limits::default();
    header_limits.max_alloc = Some(limits.max_alloc);
    reader.limits(header_limits);
    let mut decoder = reader.into_decoder().map_err(|e| match e {
        ImageError::Limits(_) => too_large(&e.to_string()),
        e => unreadable(&e),
    })?;

    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(format!("unreadable image: it declares {width}x{height} px"));
    }
    if width > limits.max_width || height > limits.max_height {
        return Err(too_large(&format!("{width}x{height} px")));
    }
    let needed = decoding_memory(format, width, height, decoder.total_bytes());
    if needed > limits.max_alloc {
        return Err(too_large(&format!(
            "{width}x{height} px, {} MiB to decode (at most {} MiB)",
            needed.div_ceil(1 << 20),
            limits.max_alloc >> 20
        )));
    }
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_width);
    decoder_limits.max_image_height = Some(limits.max_height);
    decoder_limits.max_alloc = Some(limits.max_alloc);
    decoder.set_limits(decoder_limits).map_err(|e| match e {
        ImageError::Limits(_) => too_large(&format!("{width}x{height} px")),
        e => unreadable(&e),
    })?;
    // Shown upright, as a browser would show it; a broken EXIF block only loses the rotation.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    // A GIF decoder decodes its first frame only.
    let image = DynamicImage::from_decoder(decoder).map_err(|e| unreadable(&e))?;

    // Downscale first, with the crate's integer box sampling: one pass over the decoded pixels
    // (the only costly step after decoding), and every later step works on at most 256x256.
    let (small_width, small_height) = fit(width, height, MAX_SIDE);
    let small = image.thumbnail_exact(small_width, small_height);
    drop(image);
    let mut gray = DynamicImage::ImageLuma8(flatten(&small));
    gray.apply_orientation(orientation);
    let shown = obscure(&gray.into_luma8(), level);

    let (width, height) = shown.dimensions();
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(shown.as_raw(), width, height, ExtendedColorType::L8)
        .map_err(|e| format!("preview could not be encoded: {e}"))?;
    Ok((png, width, height))
}

/// The memory decoding an image of `format` may take, in bytes: its decoded pixels
/// (`decoded`, the decoder's `total_bytes`) and what the decoder holds besides. A progressive
/// JPEG keeps every coefficient as 16 bits until the last scan (two bytes per decoded
/// sample); a GIF frame is decoded to one palette index per pixel before the canvas; a WebP
/// decoder works on one 32-bit pixel (lossless) or on YUV planes (lossy) besides its output.
/// PNG decodes row by row into the output.
fn decoding_memory(format: ImageFormat, width: u32, height: u32, decoded: u64) -> u64 {
    let pixels = u64::from(width) * u64::from(height);
    let working = match format {
        ImageFormat::Jpeg => decoded.saturating_mul(2),
        ImageFormat::Gif => pixels,
        ImageFormat::WebP => pixels.saturating_mul(4),
        _ => 0,
    };
    decoded.saturating_add(working)
}

/// `width`x`height` scaled to fit `max` on the longest side, keeping the aspect ratio (to the
/// nearest pixel, at least one); never enlarged.
fn fit(width: u32, height: u32, max: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= max {
        return (width, height);
    }
    let scale = |side: u32| {
        let scaled = (u64::from(side) * u64::from(max) + u64::from(long) / 2) / u64::from(long);
        u32::try_from(scaled).map_or(max, |s| s.clamp(1, max))
    };
    (scale(width), scale(height))
}

/// The image as 8-bit luma. Transparent areas are composited over white, as a browser shows
/// them on a white page: pixels a transparent area hides stay hidden.
fn flatten(image: &DynamicImage) -> GrayImage {
    if !image.color().has_alpha() {
        return image.to_luma8();
    }
    let with_alpha = image.to_luma_alpha8();
    GrayImage::from_fn(image.width(), image.height(), |x, y| {
        let [luma, alpha] = with_alpha.get_pixel(x, y).0;
        let (luma, alpha) = (u16::from(luma), u16::from(alpha));
        let over_white = (luma * alpha + 255 * (255 - alpha) + 127) / 255;
        image::Luma([u8::try_from(over_white).unwrap_or(u8::MAX)])
    })
}

/// How far each level blurs, in fractions of the preview's longest side (so a small image is as
/// abstract as a large one, and the figures below are for a 256-pixel side).
///
/// [`Level::Blurred`]: the image is averaged down to 1/16 of the side (16 samples across a
/// 256-pixel preview: a face filling a quarter of the picture becomes four samples wide),
/// scaled back up with bilinear interpolation, which leaves no blocky grid for the eye to
/// read, and blurred with a gaussian of sigma 1/32 of the side (8 px), which rounds the
/// bilinear ridges off. What remains is where the light and dark masses are; no edges, no
/// features, no texture.
///
/// [`Level::Revealed`]: a gaussian of sigma 1/160 of the side (1.6 px) on the downscaled
/// preview: outlines and faces are recognisable, fine detail (skin texture, small text) is
/// softened.
const COARSE_FRACTION: u32 = 16;
const BLURRED_SIGMA_FRACTION: f32 = 32.0;
const REVEALED_SIGMA_FRACTION: f32 = 160.0;

/// `gray` blurred for `level`, at the same dimensions.
fn obscure(gray: &GrayImage, level: Level) -> GrayImage {
    let (width, height) = gray.dimensions();
    let long = width.max(height);
    match level {
        Level::Blurred => {
            let (coarse_width, coarse_height) =
                fit(width, height, long.div_ceil(COARSE_FRACTION).max(1));
            let coarse = imageops::thumbnail(gray, coarse_width, coarse_height);
            let smooth = imageops::resize(&coarse, width, height, FilterType::Triangle);
            imageops::blur(&smooth, (long as f32 / BLURRED_SIGMA_FRACTION).max(1.0))
        }
        Level::Revealed => imageops::blur(gray, (long as f32 / REVEALED_SIGMA_FRACTION).max(0.5)),
    }
}

/// Whether a JPEG ends before its end-of-image marker: its segments are walked to the first
/// start of scan (skipping embedded thumbnails, which have markers of their own), and the end
/// marker must follow it (inside entropy-coded data a 0xFF byte is always followed by 0x00 or
/// a restart marker, so 0xFF 0xD9 there is the end). A JPEG that does not parse as far as the
/// scan is left to the decoder, which names what is wrong.
fn jpeg_is_truncated(bytes: &[u8]) -> bool {
    const EOI: [u8; 2] = [0xff, 0xd9];
    let mut at = 2; // after the start-of-image marker
    loop {
        let Some(&[marker_start, marker]) = bytes.get(at..at + 2) else {
            return true;
        };
        if marker_start != 0xff {
            return false;
        }
        match marker {
            // Fill bytes before a marker.
            0xff => at += 1,
            // Markers without a length.
            0x01 | 0xd0..=0xd7 => at += 2,
            // An end of image before any scan: nothing is missing that a decoder would fill.
            0xd9 => return false,
            _ => {
                let Some(&[high, low]) = bytes.get(at + 2..at + 4) else {
                    return true;
                };
                let next = at + 2 + usize::from(u16::from_be_bytes([high, low]));
                if marker == 0xda {
                    return match bytes.get(next..) {
                        Some(scan) => !scan.windows(2).any(|w| w == EOI),
                        None => true,
                    };
                }
                at = next;
            }
        }
    }
}

fn too_large(what: &str) -> String {
    format!("image too large to preview safely: {what}")
}

/// The decoder's error, shortened: it names the format and what is wrong, never content.
fn unreadable(error: &ImageError) -> String {
    let mut reason = format!("unreadable image: {error}");
    if reason.len() > 200 {
        let mut end = 200;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    reason
}

/// The reason for bytes that are no image format the decoders know: the type their first
/// bytes show, else the declared one.
fn not_an_image(bytes: &[u8], content_type: Option<&str>) -> String {
    let declared = content_type.and_then(media_type);
    match (sniff(bytes), declared) {
        (Some(Sniffed::Image(found)), _) => format!("image format not previewed ({found})"),
        (Some(Sniffed::Other(found)), Some(declared)) if declared != found => {
            format!("not an image ({found}; declared {declared})")
        }
        (Some(Sniffed::Other(found)), _) => format!("not an image ({found})"),
        (None, Some(declared)) => {
            format!("not an image (unrecognised content; declared {declared})")
        }
        (None, None) => "not an image (unrecognised content)".to_owned(),
    }
}

enum Sniffed {
    /// An image format the previews do not decode.
    Image(&'static str),
    Other(&'static str),
}

/// Common types by their first bytes, to name them in a reason.
fn sniff(bytes: &[u8]) -> Option<Sniffed> {
    const SIGNATURES: &[(&[u8], &str)] = &[
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x1f\x8b", "application/gzip"),
        (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
        (b"Rar!\x1a\x07", "application/vnd.rar"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            "application/x-ole-storage",
        ),
        (b"\x7fELF", "application/x-elf"),
        (b"\x1a\x45\xdf\xa3", "video/webm"),
        (b"OggS", "application/ogg"),
        (b"ID3", "audio/mpeg"),
        (b"fLaC", "audio/flac"),
        (b"{\\rtf", "application/rtf"),
    ];
    if let Some(&(_, found)) = SIGNATURES.iter().find(|(sig, _)| bytes.starts_with(sig)) {
        return Some(Sniffed::Other(found));
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        return Some(match &bytes[8..12] {
            b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"mif1" | b"msf1" => {
                Sniffed::Image("image/heic")
            }
            b"qt  " => Sniffed::Other("video/quicktime"),
            _ => Sniffed::Other("video/mp4"),
        });
    }
    if bytes.len() >= 12 && bytes.starts_with(b"RIFF") {
        match &bytes[8..12] {
            b"AVI " => return Some(Sniffed::Other("video/x-msvideo")),
            b"WAVE" => return Some(Sniffed::Other("audio/wav")),
            _ => {}
        }
    }
    let head = &bytes[..bytes.len().min(512)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    if text.contains("<svg") {
        return Some(Sniffed::Image("image/svg+xml"));
    }
    if text.trim_start().starts_with("<!doctype html") || text.contains("<html") {
        return Some(Sniffed::Other("text/html"));
    }
    None
}

/// The declared media type without parameters, lowercased, if it is one (RFC 6838 names):
/// what an uploader declares is shown to reviewers, so nothing else gets through.
fn media_type(content_type: &str) -> Option<String> {
    let essence = content_type.split(';').next()?.trim();
    let (kind, subtype) = essence.split_once('/')?;
    let name = |part: &str| {
        (1..=127).contains(&part.len())
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    (name(kind) && name(subtype)).then(|| essence.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::gif::GifEncoder;
    use image::codecs::jpeg::JpegEncoder;
    use image::codecs::webp::WebPEncoder;
    use image::{Frame, Rgb, RgbImage, Rgba, RgbaImage};

    /// A reproducible stream of pseudo-random numbers (SplitMix64).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// A picture with detail at every scale: a high-contrast checkerboard of 8-pixel cells,
    /// noise, a disc and a bar in colours of different luminance.
    fn picture(width: u32, height: u32) -> RgbImage {
        let mut rng = Rng(7);
        let (cx, cy, r) = (
            width as i64 / 3,
            height as i64 / 2,
            width.min(height) as i64 / 4,
        );
        RgbImage::from_fn(width, height, |x, y| {
            let (xi, yi) = (i64::from(x), i64::from(y));
            let noise = (rng.next() % 61) as i64 - 30;
            let base: [i64; 3] = if (xi - cx).pow(2) + (yi - cy).pow(2) < r * r {
                [230, 60, 40]
            } else if xi > i64::from(width) * 2 / 3 && yi > i64::from(height) / 5 {
                [30, 90, 200]
            } else if (x / 8 + y / 8) % 2 == 0 {
                [235, 235, 235]
            } else {
                [20, 20, 20]
            };
            Rgb(base.map(|c| (c + noise).clamp(0, 255) as u8))
        })
    }

    fn jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, quality)
            .encode_image(image)
            .expect("encode JPEG");
        out
    }

    fn png(image: &DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .expect("encode PNG");
        out
    }

    fn webp(image: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        WebPEncoder::new_lossless(&mut out)
            .encode(
                image.as_raw(),
                image.width(),
                image.height(),
                ExtendedColorType::Rgb8,
            )
            .expect("encode WebP");
        out
    }

    fn gif(frames: Vec<RgbaImage>) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut encoder = GifEncoder::new_with_speed(&mut out, 30);
            encoder
                .encode_frames(frames.into_iter().map(Frame::new))
                .expect("encode GIF");
        }
        out
    }

    fn render_ok(bytes: &[u8], level: Level) -> (Vec<u8>, GrayImage) {
        match try_render(bytes, Some("image/jpeg"), level, &Limits::default()) {
            Ok((png, width, height)) => {
                let decoded = image::load_from_memory_with_format(&png, ImageFormat::Png)
                    .expect("the preview is a PNG");
                assert!(
                    matches!(decoded, DynamicImage::ImageLuma8(_)),
                    "the preview is 8-bit grayscale, not {:?}",
                    decoded.color()
                );
                let gray = decoded.into_luma8();
                assert_eq!(gray.dimensions(), (width, height));
                (png, gray)
            }
            Err(reason) => panic!("expected a preview, got none: {reason}"),
        }
    }

    fn reason(bytes: &[u8], content_type: Option<&str>, limits: &Limits) -> String {
        match try_render(bytes, content_type, Level::Blurred, limits) {
            Ok((_, w, h)) => panic!("expected no preview, got a {w}x{h} one"),
            Err(reason) => {
                // And the public function agrees.
                assert_eq!(
                    render(bytes, content_type, Level::Blurred, limits),
                    Preview::None {
                        reason: reason.clone()
                    }
                );
                reason
            }
        }
    }

    /// Mean squared discrete Laplacian over the interior: high-frequency energy.
    fn laplacian_energy(image: &GrayImage) -> f64 {
        let (w, h) = image.dimensions();
        let p = |x: u32, y: u32| f64::from(image.get_pixel(x, y).0[0]);
        let mut sum = 0.0;
        let mut n = 0.0;
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                let l = 4.0 * p(x, y) - p(x - 1, y) - p(x + 1, y) - p(x, y - 1) - p(x, y + 1);
                sum += l * l;
                n += 1.0;
            }
        }
        sum / n
    }

    /// The original in grayscale, downscaled to `size` with a plain (triangle) filter: what an
    /// unprotected preview of the same size would show.
    fn reference(original: &RgbImage, size: (u32, u32)) -> GrayImage {
        let gray = DynamicImage::ImageRgb8(original.clone()).to_luma8();
        imageops::resize(&gray, size.0, size.1, FilterType::Triangle)
    }

    #[test]
    fn a_preview_is_small_grayscale_new_bytes_and_blurred() {
        let original = picture(640, 480);
        let inputs = [
            ("JPEG", jpeg(&original, 90)),
            ("PNG", png(&DynamicImage::ImageRgb8(original.clone()))),
            ("WebP", webp(&original)),
        ];
        for (format, bytes) in inputs {
            let (blurred_png, blurred) = render_ok(&bytes, Level::Blurred);
            let (revealed_png, revealed) = render_ok(&bytes, Level::Revealed);
            assert_ne!(blurred_png, bytes, "{format}");
            assert_ne!(revealed_png, bytes, "{format}");
            assert_ne!(blurred_png, revealed_png, "{format}");
            assert_eq!(blurred.dimensions(), (256, 192), "{format}");
            assert_eq!(revealed.dimensions(), (256, 192), "{format}");

            let unprotected = laplacian_energy(&reference(&original, (256, 192)));
            let blurred_energy = laplacian_energy(&blurred);
            let revealed_energy = laplacian_energy(&revealed);
            assert!(
                blurred_energy < unprotected * 0.10,
                "{format}: blurred energy {blurred_energy:.1}, unprotected {unprotected:.1}"
            );
            assert!(
                revealed_energy > blurred_energy * 2.0 && revealed_energy < unprotected,
                "{format}: revealed energy {revealed_energy:.1}, blurred {blurred_energy:.1}, \
                 unprotected {unprotected:.1}"
            );
            // Still the same picture: the disc (left, red, mid-dark in luma) against the
            // bright-and-dark checkerboard averages, at the same place.
            let mean = |img: &GrayImage, x0: u32, x1: u32| {
                let mut sum = 0u64;
                for y in 0..img.height() {
                    for x in x0..x1 {
                        sum += u64::from(img.get_pixel(x, y).0[0]);
                    }
                }
                sum as f64 / f64::from((x1 - x0) * img.height())
            };
            let bar = mean(&blurred, 200, 256);
            let board = mean(&blurred, 0, 30);
            assert!(
                bar < board - 20.0,
                "{format}: bar {bar:.0}, board {board:.0}"
            );
        }
    }

    #[test]
    fn blurred_energy_is_a_small_fraction_of_the_unprotected_preview() {
        // Measured against the figures, so a weaker blur fails here before the eye notices.
        let original = picture(512, 512);
        let (_, blurred) = render_ok(
            &png(&DynamicImage::ImageRgb8(original.clone())),
            Level::Blurred,
        );
        let unprotected = laplacian_energy(&reference(&original, (256, 256)));
        let ratio = laplacian_energy(&blurred) / unprotected;
        assert!(
            ratio < 0.01,
            "blurred keeps {:.3}% of the energy",
            ratio * 100.0
        );
    }

    #[test]
    fn small_images_are_not_enlarged_and_tall_ones_keep_their_shape() {
        let (_, small) = render_ok(&jpeg(&picture(100, 50), 90), Level::Revealed);
        assert_eq!(small.dimensions(), (100, 50));
        let (_, tall) = render_ok(
            &png(&DynamicImage::ImageRgb8(picture(40, 1000))),
            Level::Blurred,
        );
        assert_eq!(tall.dimensions(), (10, 256));
        let (_, line) = render_ok(
            &png(&DynamicImage::ImageRgb8(picture(3000, 2))),
            Level::Blurred,
        );
        assert_eq!(line.dimensions(), (256, 1));
        let (_, dot) = render_ok(
            &png(&DynamicImage::ImageRgb8(picture(1, 1))),
            Level::Blurred,
        );
        assert_eq!(dot.dimensions(), (1, 1));
    }

    #[test]
    fn a_gif_shows_its_first_frame() {
        let half = |bright_left: bool| {
            RgbaImage::from_fn(120, 90, |x, _| {
                let v = if (x < 60) == bright_left { 250 } else { 5 };
                Rgba([v, v, v, 255])
            })
        };
        let bytes = gif(vec![half(true), half(false)]);
        for level in [Level::Blurred, Level::Revealed] {
            let (_, preview) = render_ok(&bytes, level);
            assert_eq!(preview.dimensions(), (120, 90));
            let left = preview.get_pixel(10, 45).0[0];
            let right = preview.get_pixel(110, 45).0[0];
            assert!(
                left > 200 && right < 50,
                "{level:?}: left {left}, right {right}"
            );
        }
    }

    #[test]
    fn transparent_areas_show_as_white_not_as_what_they_hide() {
        // Black pixels, fully transparent on the left half.
        let image =
            RgbaImage::from_fn(64, 64, |x, _| Rgba([0, 0, 0, if x < 32 { 0 } else { 255 }]));
        let (_, preview) = render_ok(&png(&DynamicImage::ImageRgba8(image)), Level::Revealed);
        assert!(preview.get_pixel(2, 32).0[0] > 240);
        assert!(preview.get_pixel(61, 32).0[0] < 15);
    }

    /// `bytes` (a PNG) with its IHDR's dimensions replaced and its CRC recomputed.
    fn png_declaring(
        mut bytes: Vec<u8>,
        width: u32,
        height: u32,
        bit_depth: u8,
        color: u8,
    ) -> Vec<u8> {
        assert_eq!(&bytes[12..16], b"IHDR");
        bytes[16..20].copy_from_slice(&width.to_be_bytes());
        bytes[20..24].copy_from_slice(&height.to_be_bytes());
        bytes[24] = bit_depth;
        bytes[25] = color;
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn decompression_bombs_get_no_preview() {
        let tiny = png(&DynamicImage::ImageRgb8(RgbImage::new(1, 1)));
        assert_eq!(
            crc32(&tiny[12..29]).to_be_bytes(),
            tiny[29..33],
            "the CRC helper"
        );

        // 100,000 x 100,000 RGB: 30 GB of pixels declared by 70 bytes.
        let bomb = png_declaring(tiny.clone(), 100_000, 100_000, 8, 2);
        assert!(bomb.len() < 100);
        assert_eq!(
            reason(&bomb, Some("image/png"), &Limits::default()),
            "image too large to preview safely: 100000x100000 px"
        );
        // Within the side limits, but 16-bit RGBA: 2 GiB to decode.
        let wide = png_declaring(tiny.clone(), 16_000, 16_000, 16, 6);
        let why = reason(&wide, None, &Limits::default());
        assert!(
            why.starts_with("image too large to preview safely: 16000x16000 px, 1954 MiB"),
            "{why}"
        );

        // A JPEG declaring the largest dimensions its header can hold.
        let mut huge = jpeg(&picture(16, 16), 90);
        let sof = huge
            .windows(2)
            .position(|w| w == [0xff, 0xc0])
            .expect("SOF0");
        huge[sof + 5..sof + 7].copy_from_slice(&65_000u16.to_be_bytes());
        huge[sof + 7..sof + 9].copy_from_slice(&65_000u16.to_be_bytes());
        assert_eq!(
            reason(&huge, None, &Limits::default()),
            "image too large to preview safely: 65000x65000 px"
        );

        // A GIF whose logical screen is 65535 x 65535.
        let mut screen = gif(vec![RgbaImage::new(4, 4)]);
        screen[6..10].copy_from_slice(&[0xff; 4]);
        let why = reason(&screen, None, &Limits::default());
        assert!(
            why.starts_with("image too large to preview safely"),
            "{why}"
        );

        // The caller's limits are the ones applied.
        let ordinary = png(&DynamicImage::ImageRgb8(picture(300, 200)));
        let tight = Limits {
            max_width: 10_000,
            max_height: 10_000,
            max_alloc: 100_000,
        };
        let why = reason(&ordinary, None, &tight);
        assert!(
            why.starts_with("image too large to preview safely: 300x200 px"),
            "{why}"
        );
        let narrow = Limits {
            max_width: 299,
            ..Limits::default()
        };
        assert_eq!(
            reason(&ordinary, None, &narrow),
            "image too large to preview safely: 300x200 px"
        );
    }

    #[test]
    fn the_default_limits_admit_photos_and_refuse_bombs() {
        let limits = Limits::default();
        let admits = |format, w: u32, h: u32, channels: u64| {
            let decoded = u64::from(w) * u64::from(h) * channels;
            w <= limits.max_width
                && h <= limits.max_height
                && decoding_memory(format, w, h, decoded) <= limits.max_alloc
        };
        assert!(admits(ImageFormat::Jpeg, 4000, 3000, 3), "12 MP photo");
        assert!(admits(ImageFormat::Jpeg, 3000, 4000, 3), "12 MP portrait");
        assert!(admits(ImageFormat::Jpeg, 8660, 5773, 3), "50 MP photo");
        assert!(admits(ImageFormat::Png, 8660, 5773, 4), "50 MP RGBA PNG");
        assert!(admits(ImageFormat::WebP, 8660, 5773, 4), "50 MP WebP");
        assert!(!admits(ImageFormat::Jpeg, 10_000, 10_000, 3), "100 MP JPEG");
        assert!(!admits(ImageFormat::Png, 20_000, 20_000, 1), "20k-side PNG");
    }

    #[test]
    fn objects_that_are_not_previewable_images_say_why() {
        let limits = Limits::default();
        let pdf = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n";
        assert_eq!(
            reason(pdf, Some("application/pdf"), &limits),
            "not an image (application/pdf)"
        );
        assert_eq!(
            reason(pdf, Some("image/jpeg; charset=x"), &limits),
            "not an image (application/pdf; declared image/jpeg)"
        );
        assert_eq!(reason(b"", None, &limits), "not an image (empty object)");
        assert_eq!(
            reason(
                b"hello\nworld\n",
                Some("text/plain; charset=utf-8"),
                &limits
            ),
            "not an image (unrecognised content; declared text/plain)"
        );
        // A declared type that is not a media type is not repeated to the reviewer.
        assert_eq!(
            reason(b"hello", Some("<b>click</b>/x"), &limits),
            "not an image (unrecognised content)"
        );
        let mut rng = Rng(1);
        let noise: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
        assert!(reason(&noise, None, &limits).starts_with("not an image"));
        // Image formats the previews do not decode, named by their type.
        assert_eq!(
            reason(
                b"II*\0\x08\0\0\0rest of a tiff",
                Some("image/tiff"),
                &limits
            ),
            "image format not previewed (image/tiff)"
        );
        assert_eq!(
            reason(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", None, &limits),
            "image format not previewed (image/heic)"
        );
        assert_eq!(
            reason(b"<?xml version=\"1.0\"?><svg xmlns=\"x\"/>", None, &limits),
            "image format not previewed (image/svg+xml)"
        );
    }

    #[test]
    fn truncated_and_corrupt_images_get_no_preview() {
        let bytes = jpeg(&picture(320, 240), 90);
        for keep in [3, 10, 100, bytes.len() / 2, bytes.len() - 10] {
            let why = reason(&bytes[..keep], Some("image/jpeg"), &Limits::default());
            assert!(why.starts_with("unreadable image"), "{keep} bytes: {why}");
        }
        let bytes = png(&DynamicImage::ImageRgb8(picture(64, 48)));
        let why = reason(&bytes[..bytes.len() / 2], None, &Limits::default());
        assert!(why.starts_with("unreadable image"), "{why}");
    }

    #[test]
    fn no_input_makes_it_panic() {
        // Valid images of each format with random bytes overwritten, inserted and cut off:
        // whatever the decoders make of them, the answer is a preview or a reason.
        let small = picture(48, 32);
        let rgba = DynamicImage::ImageRgb8(small.clone()).to_rgba8();
        let seeds = [
            jpeg(&small, 80),
            png(&DynamicImage::ImageRgb8(small.clone())),
            gif(vec![rgba.clone(), rgba]),
            webp(&small),
        ];
        let mut rng = Rng(42);
        for seed in &seeds {
            for _ in 0..150 {
                let mut bytes = seed.clone();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(bytes.len());
                    match rng.below(3) {
                        0 => bytes[at] = rng.next() as u8,
                        1 => bytes.insert(at, rng.next() as u8),
                        _ => bytes.truncate(at.max(1)),
                    }
                }
                for level in [Level::Blurred, Level::Revealed] {
                    if let Ok((png, w, h)) = try_render(&bytes, None, level, &Limits::default()) {
                        assert!(w.max(h) <= MAX_SIDE && !png.is_empty());
                    }
                }
            }
        }
    }

    #[test]
    fn debug_output_shows_no_content() {
        let preview = Preview::Image {
            png: vec![1, 2, 3],
            width: 1,
            height: 1,
        };
        assert_eq!(
            format!("{preview:?}"),
            "Image { png: <3 bytes>, width: 1, height: 1 }"
        );
    }

    #[test]
    fn fit_keeps_the_aspect_ratio() {
        assert_eq!(fit(4000, 3000, 256), (256, 192));
        assert_eq!(fit(3000, 4000, 256), (192, 256));
        assert_eq!(fit(100_000, 1, 256), (256, 1));
        assert_eq!(fit(200, 100, 256), (200, 100));
        assert_eq!(fit(u32::MAX, u32::MAX - 1, 256), (256, 256));
    }
}
