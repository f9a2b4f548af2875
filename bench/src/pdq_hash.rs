//! PDQ hashing (`hashgate_core::pdq::hash` and `decode`) against Meta's C++ through PyPI's
//! `pdqhash`, run from the `.venv-pdq` virtual environment with an inline script.
//!
//! - Hashing alone, on the same pixels: the generated photo at three sizes, decoded by
//!   hashgate from a quality-90 JPEG, written raw to a file that the script loads into an
//!   array; `hash_rgb` against `pdqhash.compute`, each timed in its own process's loop.
//! - Decode and hash of a 12-megapixel JPEG (the preview benchmark's photo): `hash_image`
//!   (decode under limits, hash, the eight variants) against Pillow's decode to RGB then
//!   `pdqhash.compute_dihedral` (hash and the eight variants), and `pdqhash.compute`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use hashgate_core::pdq::decode::{decode_rgb, hash_image, DecodeLimits};
use hashgate_core::pdq::hash::hash_rgb;
use hashgate_core::pdq::PdqHash;
use image::codecs::jpeg::JpegEncoder;

use crate::preview::{photo, photo_jpeg};
use crate::progress;
use crate::stats::{size, Samples};

/// The sizes hashed from pixels.
const SIZES: [(u32, u32); 3] = [(256, 256), (1024, 768), (4000, 3000)];

/// The reference's side: times in milliseconds, as JSON on standard output.
const SCRIPT: &str = r#"
import io, json, sys, time
import numpy as np
import pdqhash
from PIL import Image

mode, path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(path, "rb").read()

def timed(f):
    f()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        out.append((time.perf_counter() - t) * 1e3)
    return out

def decode():
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

if mode == "rgb":
    width, height = int(sys.argv[4]), int(sys.argv[5])
    pixels = np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3).copy()
    bits, quality = pdqhash.compute(pixels)
    # The bit vector is in the canonical text form's order, most significant bit first.
    result = {
        "compute": timed(lambda: pdqhash.compute(pixels)),
        "quality": int(quality),
        "hash": np.packbits(bits.astype(np.uint8)).tobytes().hex(),
    }
else:
    result = {
        "decode": timed(decode),
        "compute": timed(lambda: pdqhash.compute(decode())),
        "dihedral": timed(lambda: pdqhash.compute_dihedral(decode())),
    }
print(json.dumps(result))
"#;

/// Hashing the same pixels, one size.
struct PixelRow {
    width: u32,
    height: u32,
    ours_ms: Samples,
    ours_quality: String,
    reference_ms: Samples,
    reference_quality: String,
    /// Bits between hashgate's hash and pdqhash's.
    distance: u32,
}

pub struct HashReport {
    runs: usize,
    pixels: Vec<PixelRow>,
    jpeg_bytes: usize,
    decode_ms: Samples,
    hash_image_ms: Samples,
    reference_decode_ms: Samples,
    reference_compute_ms: Samples,
    reference_dihedral_ms: Samples,
}

/// The virtual environment's Python, at the workspace's root.
fn python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-pdq/bin/python")
}

pub fn run(runs: usize) -> Result<HashReport> {
    let python = python();
    ensure!(
        python.is_file(),
        "{} is missing: the PDQ reference needs the .venv-pdq virtual environment \
         (python3 -m venv .venv-pdq && .venv-pdq/bin/pip install -r scripts/requirements-pdq.txt)",
        python.display()
    );
    let dir = tempfile::tempdir().context("a temporary directory")?;
    let limits = DecodeLimits::default();

    let mut pixels = Vec::new();
    for (width, height) in SIZES {
        progress(format_args!(
            "pdq: hashing {width}x{height} pixels, {runs} runs each side"
        ));
        // The pixels as an upload's would arrive: a JPEG decoded by hashgate.
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&photo(width, height))
            .context("encoding the JPEG")?;
        let decoded = decode_rgb(&jpeg, &limits)
            .map_err(|e| anyhow::anyhow!("decoding the {width}x{height} JPEG: {e}"))?;
        ensure!((decoded.width, decoded.height) == (width, height));
        let raw = dir.path().join(format!("{width}x{height}.rgb"));
        std::fs::write(&raw, &decoded.rgb).with_context(|| format!("writing {}", raw.display()))?;

        let output = hash_rgb(width, height, &decoded.rgb);
        let ours_ms = timed(runs, || {
            black_box(hash_rgb(width, height, black_box(&decoded.rgb)));
        });
        let reference = reference(
            &python,
            &raw,
            runs,
            &["rgb", &width.to_string(), &height.to_string()],
        )?;
        let theirs = reference["hash"]
            .as_str()
            .context("no hash in the reference's output")
            .and_then(|hex| PdqHash::from_hex(hex).context("the reference's hash"))?;
        pixels.push(PixelRow {
            width,
            height,
            ours_ms,
            ours_quality: output.quality.to_string(),
            reference_ms: samples(&reference, "compute")?,
            reference_quality: reference["quality"].to_string(),
            distance: output.hash.distance(&theirs),
        });
    }

    progress("pdq: decode and hash of the 12-megapixel JPEG");
    let jpeg = photo_jpeg()?;
    let path = dir.path().join("photo.jpg");
    std::fs::write(&path, &jpeg).with_context(|| format!("writing {}", path.display()))?;
    let decode_ms = timed(runs, || {
        black_box(decode_rgb(black_box(&jpeg), &limits).ok());
    });
    let hash_image_ms = timed(runs, || {
        black_box(hash_image(black_box(&jpeg), &limits).ok());
    });
    ensure!(
        hash_image(&jpeg, &limits).is_ok(),
        "hash_image refused the 12-megapixel JPEG"
    );
    let reference = reference(&python, &path, runs, &["jpeg"])?;
    Ok(HashReport {
        runs,
        pixels,
        jpeg_bytes: jpeg.len(),
        decode_ms,
        hash_image_ms,
        reference_decode_ms: samples(&reference, "decode")?,
        reference_compute_ms: samples(&reference, "compute")?,
        reference_dihedral_ms: samples(&reference, "dihedral")?,
    })
}

impl HashReport {
    /// Median decode + hash + variants of the 12-megapixel JPEG, ms.
    pub fn hash_image_median_ms(&self) -> f64 {
        self.hash_image_ms.median()
    }
}

/// Milliseconds of `runs` calls of `f`, after one untimed call.
fn timed(runs: usize, mut f: impl FnMut()) -> Samples {
    f();
    Samples::new(
        (0..runs)
            .map(|_| {
                let started = Instant::now();
                f();
                started.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

/// Runs the reference script on `file` and returns its JSON.
fn reference(python: &Path, file: &Path, runs: usize, args: &[&str]) -> Result<serde_json::Value> {
    let (mode, rest) = args.split_first().context("a mode")?;
    let output = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(mode)
        .arg(file)
        .arg(runs.to_string())
        .args(rest)
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    ensure!(
        output.status.success(),
        "the pdqhash reference failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).context("the reference's output")
}

fn samples(json: &serde_json::Value, key: &str) -> Result<Samples> {
    let values = json[key]
        .as_array()
        .with_context(|| format!("no {key} in the reference's output"))?
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect::<Vec<_>>();
    ensure!(!values.is_empty(), "no {key} times from the reference");
    Ok(Samples::new(values))
}

impl HashReport {
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "### PDQ hashing against Meta's C++ (`pdqhash`)\n\n\
             The same pixels (the generated photo, JPEG quality 90, decoded by hashgate), \
             hashed by `hash::hash_rgb` and by PyPI `pdqhash` (Meta's C++ behind a Python \
             wrapper; timed inside Python, around the call only). R = {} after one untimed \
             run; hashes/s from the median; bits apart: the distance between the two hashes \
             of the same pixels.\n",
            self.runs
        );
        let _ = writeln!(
            md,
            "| pixels | hashgate ms | hashgate hashes/s | pdqhash ms | pdqhash hashes/s | \
             hashgate / pdqhash time | quality (hashgate, pdqhash) | bits apart |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---|---:|");
        for row in &self.pixels {
            let (ours, theirs) = (row.ours_ms.median(), row.reference_ms.median());
            let _ = writeln!(
                md,
                "| {}x{} | {} | {:.0} | {} | {:.0} | {:.2} | {}, {} | {} |",
                row.width,
                row.height,
                row.ours_ms.show(2),
                1e3 / ours,
                row.reference_ms.show(2),
                1e3 / theirs,
                ours / theirs,
                row.ours_quality,
                row.reference_quality,
                row.distance,
            );
        }
        let _ = writeln!(
            md,
            "\nDecode and hash of a 12-megapixel JPEG ({}, the preview benchmark's photo):\n",
            size(self.jpeg_bytes as u64)
        );
        let _ = writeln!(md, "| task | median ms (min–max) |");
        let _ = writeln!(md, "|---|---:|");
        for (name, samples) in [
            ("hashgate `decode_rgb` (decode only)", &self.decode_ms),
            (
                "hashgate `hash_image` (decode, hash, 8 variants)",
                &self.hash_image_ms,
            ),
            (
                "Pillow `Image.open(...).convert(\"RGB\")` (decode only)",
                &self.reference_decode_ms,
            ),
            (
                "Pillow decode + `pdqhash.compute`",
                &self.reference_compute_ms,
            ),
            (
                "Pillow decode + `pdqhash.compute_dihedral` (8 variants)",
                &self.reference_dihedral_ms,
            ),
        ] {
            let _ = writeln!(md, "| {name} | {} |", samples.show(1));
        }
        md
    }
}
