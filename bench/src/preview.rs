//! The reviewers' previews (`hashgate_review_api::preview::render`) on a 12-megapixel photo:
//! a 4000x3000 JPEG at quality 90, generated from a fixed seed with what a photo has (smooth
//! gradients, shaded shapes, texture, sensor noise), so that it compresses like one.
//!
//! Per level (Blurred, Revealed): the whole render, bytes in to PNG out, against decoding the
//! JPEG alone (`ImageReader::decode`), which is the part no preview can avoid. The three are
//! timed in turn, round by round, after one untimed round.

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Cursor;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use hashgate_review_api::preview::{self, Level, Limits, Preview, MAX_SIDE};
use image::codecs::jpeg::JpegEncoder;
use image::{ImageReader, Rgb, RgbImage};

use crate::data::SplitMix64;
use crate::progress;
use crate::stats::{size, Samples};
use crate::Sizes;

const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;
const QUALITY: u8 = 90;
const PHOTO_SEED: u64 = 0x7072_6576_6965_7721;

/// What is timed, in the order of the report's rows.
#[derive(Clone, Copy)]
enum Task {
    Decode,
    Render(Level),
}

const TASKS: [Task; 3] = [
    Task::Decode,
    Task::Render(Level::Blurred),
    Task::Render(Level::Revealed),
];

pub struct PreviewReport {
    jpeg_bytes: usize,
    /// Milliseconds per run, per task (in the order of `TASKS`).
    millis: Vec<Vec<f64>>,
    /// The preview's PNG size and dimensions, per level.
    outputs: Vec<(usize, u32, u32)>,
}

pub fn run(sizes: &Sizes) -> Result<PreviewReport> {
    progress(format_args!(
        "preview: generating a {WIDTH}x{HEIGHT} JPEG (quality {QUALITY})"
    ));
    let jpeg = photo_jpeg()?;
    progress(format_args!(
        "preview: {} JPEG; {} rounds of decode, Blurred and Revealed",
        size(jpeg.len() as u64),
        sizes.preview_runs
    ));
    let limits = Limits::default();
    let mut outputs = Vec::new();
    for level in [Level::Blurred, Level::Revealed] {
        match preview::render(&jpeg, Some("image/jpeg"), level, &limits) {
            Preview::Image { png, width, height } if width.max(height) == MAX_SIDE => {
                outputs.push((png.len(), width, height));
            }
            other => bail!("preview of the 12 MP JPEG at {level:?}: {other:?}"),
        }
    }
    let mut millis = vec![Vec::with_capacity(sizes.preview_runs); TASKS.len()];
    for round in 0..=sizes.preview_runs {
        // A different task first each round, so drift in the machine's load spreads evenly.
        for offset in 0..TASKS.len() {
            let index = (round + offset) % TASKS.len();
            let started = Instant::now();
            match TASKS[index] {
                Task::Decode => {
                    let image = ImageReader::new(Cursor::new(&jpeg))
                        .with_guessed_format()?
                        .decode()
                        .context("decoding the JPEG")?;
                    black_box(image);
                }
                Task::Render(level) => {
                    black_box(preview::render(&jpeg, Some("image/jpeg"), level, &limits));
                }
            }
            let elapsed = started.elapsed().as_secs_f64() * 1e3;
            // Round 0 warms up.
            if round > 0 {
                millis[index].push(elapsed);
            }
        }
    }
    Ok(PreviewReport {
        jpeg_bytes: jpeg.len(),
        millis,
        outputs,
    })
}

/// The photo: a sky-to-ground gradient, a few shaded discs and a band of texture, with
/// per-pixel noise on everything, encoded at quality 90.
pub fn photo_jpeg() -> Result<Vec<u8>> {
    let image = photo(WIDTH, HEIGHT);
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, QUALITY)
        .encode_image(&image)
        .context("encoding the JPEG")?;
    Ok(jpeg)
}

/// The photo's pixels at any size (the shapes scale with the shorter side; at 4000x3000 they
/// are the preview benchmark's).
pub fn photo(width: u32, height: u32) -> RgbImage {
    let mut rng = SplitMix64::new(PHOTO_SEED);
    let scale = width.min(height) as f32 / 3000.0;
    let discs: Vec<(f32, f32, f32, [f32; 3])> = (0..12)
        .map(|_| {
            let x = rng.below(u64::from(width)) as f32;
            let y = rng.below(u64::from(height)) as f32;
            let r = (100.0 + rng.below(500) as f32) * scale;
            let colour = [0, 1, 2].map(|_| 40.0 + rng.below(200) as f32);
            (x, y, r, colour)
        })
        .collect();
    let band = height * 22 / 30..height * 26 / 30;
    RgbImage::from_fn(width, height, |x, y| {
        let (xf, yf) = (x as f32, y as f32);
        let t = yf / height as f32;
        let u = xf / width as f32;
        let mut pixel = [
            90.0 + 120.0 * t + 20.0 * u,
            140.0 + 60.0 * t - 30.0 * u,
            230.0 - 150.0 * t,
        ];
        for &(cx, cy, r, colour) in &discs {
            let d2 = (xf - cx).powi(2) + (yf - cy).powi(2);
            if d2 < r * r {
                // Lit from the top left.
                let shade =
                    0.6 + 0.4 * (1.0 - ((xf - cx + yf - cy) / (2.0 * r) + 0.5).clamp(0.0, 1.0));
                pixel = colour.map(|c| c * shade);
            }
        }
        // Texture: a band of fine stripes, like fabric or grass.
        if band.contains(&y) {
            let stripe = if (x / 3 + y / 7) % 2 == 0 {
                25.0
            } else {
                -25.0
            };
            pixel = pixel.map(|c| c + stripe);
        }
        let noise = rng.below(17) as f32 - 8.0;
        Rgb(pixel.map(|c| (c + noise).clamp(0.0, 255.0) as u8))
    })
}

/// The nearest-rank `q` quantile of `values`.
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl PreviewReport {
    pub fn markdown(&self) -> String {
        let runs = self.millis[0].len();
        let median = |task: usize| Samples::new(self.millis[task].clone()).median();
        let mut md = String::new();
        let _ = writeln!(
            md,
            "### Reviewers' previews of a 12-megapixel JPEG\n\n\
             `preview::render` on a generated {WIDTH}x{HEIGHT} photo (gradients, shaded \
             shapes, texture, noise), JPEG quality {QUALITY}, {}: bytes in, a grayscale \
             PNG of at most {MAX_SIDE} px out (decode, downscale, grayscale, blur, encode), \
             against decoding the JPEG alone. One thread; the three alternate, R = {runs} \
             after one untimed round; p99 by nearest rank.\n",
            size(self.jpeg_bytes as u64)
        );
        let _ = writeln!(
            md,
            "| task | median ms | p99 ms | max ms | decode share of the median | output |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---|");
        let decode = median(0);
        for (index, task) in TASKS.iter().enumerate() {
            let values = &self.millis[index];
            let (name, share, output) = match task {
                Task::Decode => (
                    "decode only (`ImageReader::decode`, RGB)".to_owned(),
                    "100%".to_owned(),
                    format!("{WIDTH}x{HEIGHT} RGB, {} MiB", (WIDTH * HEIGHT * 3) >> 20),
                ),
                Task::Render(level) => {
                    let (png, width, height) = self.outputs[index - 1];
                    (
                        format!("`render`, `Level::{level:?}`"),
                        format!("{:.0}%", 100.0 * decode / median(index)),
                        format!("{width}x{height} L8 PNG, {png} bytes"),
                    )
                }
            };
            let _ = writeln!(
                md,
                "| {name} | {:.1} | {:.1} | {:.1} | {share} | {output} |",
                median(index),
                quantile(values, 0.99),
                quantile(values, 1.0),
            );
        }
        let _ = writeln!(
            md,
            "\nBeyond decoding, a preview costs {:.1} ms (Blurred) and {:.1} ms (Revealed) at \
             the median: the one downscaling pass over the decoded pixels, then work on at \
             most {MAX_SIDE}x{MAX_SIDE}.",
            median(1) - decode,
            median(2) - decode
        );
        md
    }
}
