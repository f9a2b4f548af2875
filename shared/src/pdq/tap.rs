//! PDQ in the same single read as the digests: an [`ImageTap`] sees every byte that the
//! digests see, keeps an upload's bytes only if its first bytes say it is an image (and only
//! up to a limit), and hashes it at the end. An upload that says it is an image and cannot be
//! decoded is [`ImageOutcome::Undecodable`]: never a crash, never "clean" by omission.

use serde::Serialize;

use super::decode::{hash_image, sniff, DecodeError, DecodeLimits, ImageKind};
use super::PdqHash;

/// How many leading bytes decide whether an upload is an image.
const SNIFF_BYTES: usize = 32;

/// What became of an upload's image, for an upload read with PDQ lists active.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageOutcome {
    /// Its content is not an image (by its bytes, whatever its name or content type).
    NotImage,
    /// Decoded and hashed.
    Hashed(Box<ImageSummary>),
    /// An image (or a format that only images use) that could not be hashed: truncated,
    /// hostile, too large, or a format not decoded here. `kind` is what its bytes claimed.
    Undecodable { kind: String, reason: String },
}

/// An image's PDQ hash with what it was computed from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageSummary {
    pub kind: &'static str,
    pub width: u32,
    pub height: u32,
    pub pdq: PdqHash,
    /// 0–100: how much the hash says about the image (flat images score low).
    pub quality: u8,
    /// The hashes of the image's eight rotations and flips (index 0: as it is), all from one
    /// transform; querying all eight finds mirrored and rotated copies.
    #[serde(skip)]
    pub variants: [PdqHash; 8],
}

impl serde::Serialize for PdqHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

/// Formats only images use that this build does not decode: an upload in one of them is
/// undecodable, not "not an image", so it is never reported clean by its PDQ.
fn unsupported_image_kind(head: &[u8]) -> Option<&'static str> {
    let ftyp = head.len() >= 12 && &head[4..8] == b"ftyp";
    if ftyp {
        let brand = &head[8..12];
        let heif: [&[u8]; 7] = [
            b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1",
        ];
        if heif.contains(&brand) {
            return Some("heif");
        }
        if brand == b"avif" || brand == b"avis" {
            return Some("avif");
        }
    }
    if head.starts_with(&[0xff, 0x0a]) || head.starts_with(b"\0\0\0\x0cJXL \r\n\x87\n") {
        return Some("jpeg-xl");
    }
    if head.starts_with(&[0, 0, 1, 0]) {
        return Some("ico");
    }
    if head.starts_with(b"8BPS") {
        return Some("psd");
    }
    None
}

/// Collects an upload's bytes for PDQ as they stream past the digests.
pub struct ImageTap {
    limits: DecodeLimits,
    state: TapState,
}

enum TapState {
    /// Still reading the first bytes.
    Sniffing(Vec<u8>),
    /// An image: its bytes so far.
    Image(ImageKind, Vec<u8>),
    /// An image larger than the limit: its bytes are no longer kept.
    Oversized(ImageKind, u64),
    Unsupported(&'static str),
    NotImage,
}

impl ImageTap {
    pub fn new(limits: DecodeLimits) -> ImageTap {
        ImageTap {
            limits,
            state: TapState::Sniffing(Vec::with_capacity(SNIFF_BYTES)),
        }
    }

    /// The next bytes of the upload.
    pub fn update(&mut self, data: &[u8]) {
        let max = self.limits.max_input_bytes;
        match &mut self.state {
            TapState::Sniffing(head) => {
                let take = (SNIFF_BYTES - head.len()).min(data.len());
                head.extend_from_slice(&data[..take]);
                if head.len() == SNIFF_BYTES {
                    let head = std::mem::take(head);
                    self.state = Self::classify(head);
                    self.update(&data[take..]);
                }
            }
            TapState::Image(kind, bytes) => {
                if bytes.len() as u64 + data.len() as u64 > max {
                    let total = bytes.len() as u64 + data.len() as u64;
                    self.state = TapState::Oversized(*kind, total);
                } else {
                    bytes.extend_from_slice(data);
                }
            }
            TapState::Oversized(_, total) => *total += data.len() as u64,
            TapState::Unsupported(_) | TapState::NotImage => {}
        }
    }

    fn classify(head: Vec<u8>) -> TapState {
        match sniff(&head) {
            Some(kind) => TapState::Image(kind, head),
            None => match unsupported_image_kind(&head) {
                Some(name) => TapState::Unsupported(name),
                None => TapState::NotImage,
            },
        }
    }

    /// Whether the bytes so far are an image's (kept for hashing).
    pub fn is_image(&self) -> bool {
        matches!(self.state, TapState::Image(..) | TapState::Oversized(..))
    }

    /// Decode and hash, within the limits.
    pub fn finish(self) -> ImageOutcome {
        let state = match self.state {
            TapState::Sniffing(head) => Self::classify(head),
            other => other,
        };
        match state {
            TapState::NotImage => ImageOutcome::NotImage,
            TapState::Unsupported(name) => ImageOutcome::Undecodable {
                kind: name.to_string(),
                reason: format!("{name} images are not decoded"),
            },
            TapState::Oversized(kind, total) => ImageOutcome::Undecodable {
                kind: kind.name().to_string(),
                reason: DecodeError::InputTooLarge {
                    bytes: total,
                    max: self.limits.max_input_bytes,
                }
                .to_string(),
            },
            TapState::Image(kind, bytes) => match hash_image(&bytes, &self.limits) {
                Ok(h) => ImageOutcome::Hashed(Box::new(ImageSummary {
                    kind: h.kind.name(),
                    width: h.width,
                    height: h.height,
                    pdq: h.pdq.hash,
                    quality: h.pdq.quality,
                    variants: h.variants,
                })),
                Err(e) => ImageOutcome::Undecodable {
                    kind: kind.name().to_string(),
                    reason: e.to_string(),
                },
            },
            TapState::Sniffing(_) => unreachable!("classified above"),
        }
    }
}
