//! The PDQ algorithm on decoded pixels, bit for bit as Meta's reference computes it
//! (facebook/ThreatExchange `pdq/cpp`, as wrapped by the PyPI package `pdqhash`):
//!
//! 1. Luminance `0.299 R + 0.587 G + 0.114 B`. The wrapper computes it in double precision
//!    (numpy) and hands the C++ code `float`s, so it is computed here in `f64` and rounded
//!    once to `f32`; every later step is `f32` arithmetic, as in the C++ code.
//! 2. Blur: two rounds of a box filter along the rows then along the columns ("Jarosz
//!    filter", a tent approximation), window `ceil(dimension / 128)`, with the reference's
//!    shrinking windows at the edges and its running sums (add, then subtract).
//! 3. Decimation to 64×64 by sampling the pixel nearest each output cell's centre.
//!    A 64×64 input skips steps 2–3, as the reference does.
//! 4. The quality metric: summed quantised gradients of the 64×64 image, `/ 90`, capped at 100.
//! 5. A partial 2-D DCT: `B = (D·A)·Dᵀ` with `D` the 16×64 DCT-II rows 1–16, every sum taken
//!    in the reference's order so the `f32` rounding is the same.
//! 6. Each of the 256 coefficients above the median (Torben's algorithm) sets a bit:
//!    coefficient (i, j) is bit `j` of 16-bit word `i`; the text form prints word 15 first.
//!
//! Images smaller than 5 pixels on a side hash to all zeros with quality 0 (the reference's
//! minimum hashable size); they are handled, not rejected.
//!
//! The eight dihedral variants (the hashes the image would have if rotated or flipped) come
//! from the one 16×16 DCT output by sign changes and transposition, as the reference's
//! `pdqDihedralHash256esFromFloatLuma` does. Their order, index 0 first, is
//! [`DIHEDRAL_NAMES`]: the image itself; rotated 90° counter-clockwise; rotated 180°;
//! rotated 90° clockwise; flipped top to bottom; flipped left to right; transposed (mirrored
//! about the main diagonal); mirrored about the anti-diagonal.

use std::sync::OnceLock;

use super::PdqHash;

/// The result of hashing an image: the hash and its quality (0–100; below
/// [`super::DEFAULT_MIN_QUALITY`] it should not be matched on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PdqOutput {
    pub hash: PdqHash,
    pub quality: u8,
}

/// The eight dihedral variants in the order [`hash_rgb_with_variants`] returns them, named as
/// the reference names them, with what each does to the image.
pub const DIHEDRAL_NAMES: [&str; 8] = [
    "original",
    "rotate90 (counter-clockwise)",
    "rotate180",
    "rotate270 (90° clockwise)",
    "flipx (top to bottom)",
    "flipy (left to right)",
    "flip-plus-1 (transpose)",
    "flip-minus-1 (anti-transpose)",
];

/// The reference's minimum hashable side.
const MIN_HASHABLE_DIM: usize = 5;
/// Lanes processed together by the box filter along rows.
const LANES: usize = 8;

/// Hashes packed 8-bit RGB pixels (`rgb.len() == 3 * width * height`, row-major).
///
/// # Panics
/// If `rgb` is shorter than `3 * width * height`.
pub fn hash_rgb(width: u32, height: u32, rgb: &[u8]) -> PdqOutput {
    PdqHasher::new().hash_rgb(width, height, rgb).0
}

/// Hashes packed 8-bit RGB pixels and returns also the eight dihedral variants (index 0 is
/// the hash itself; see [`DIHEDRAL_NAMES`] for the order).
pub fn hash_rgb_with_variants(width: u32, height: u32, rgb: &[u8]) -> (PdqOutput, [PdqHash; 8]) {
    PdqHasher::new().hash_rgb(width, height, rgb)
}

/// Hashes a luminance plane (row-major, `width * height` values, 0–255 scale), as the
/// reference's `pdqHash256FromFloatLuma`.
pub fn hash_luma(width: u32, height: u32, luma: &[f32]) -> (PdqOutput, [PdqHash; 8]) {
    PdqHasher::new().hash_luma(width, height, luma)
}

/// The reference's luminance of one pixel, as its Python wrapper computes it: in double
/// precision, rounded once to `f32`.
#[inline]
pub fn luma(r: u8, g: u8, b: u8) -> f32 {
    (f64::from(r) * 0.299 + f64::from(g) * 0.587 + f64::from(b) * 0.114) as f32
}

/// A hasher that keeps its working buffers between images, so hashing many images of
/// similar sizes allocates once.
#[derive(Default)]
pub struct PdqHasher {
    buf1: Vec<f32>,
    buf2: Vec<f32>,
    lanes_in: Vec<[f32; LANES]>,
    lanes_out: Vec<[f32; LANES]>,
    sums: Vec<f32>,
    narrow: Vec<f32>,
}

impl PdqHasher {
    pub fn new() -> PdqHasher {
        PdqHasher::default()
    }

    /// [`hash_rgb_with_variants`], reusing this hasher's buffers.
    pub fn hash_rgb(&mut self, width: u32, height: u32, rgb: &[u8]) -> (PdqOutput, [PdqHash; 8]) {
        let (w, h) = (width as usize, height as usize);
        let n = w * h;
        assert!(
            rgb.len() >= 3 * n,
            "{width}x{height} RGB needs {} bytes",
            3 * n
        );
        let mut buf1 = std::mem::take(&mut self.buf1);
        buf1.clear();
        buf1.extend(rgb[..3 * n].chunks_exact(3).map(|p| luma(p[0], p[1], p[2])));
        let out = self.hash_own_luma(w, h, &mut buf1);
        self.buf1 = buf1;
        out
    }

    /// [`hash_luma`], reusing this hasher's buffers.
    pub fn hash_luma(
        &mut self,
        width: u32,
        height: u32,
        luma: &[f32],
    ) -> (PdqOutput, [PdqHash; 8]) {
        let (w, h) = (width as usize, height as usize);
        let n = w * h;
        assert!(luma.len() >= n, "{width}x{height} luma needs {n} values");
        let mut buf1 = std::mem::take(&mut self.buf1);
        buf1.clear();
        buf1.extend_from_slice(&luma[..n]);
        let out = self.hash_own_luma(w, h, &mut buf1);
        self.buf1 = buf1;
        out
    }

    /// Hashes the luma in `buf1` (which the blur overwrites).
    fn hash_own_luma(&mut self, w: usize, h: usize, buf1: &mut [f32]) -> (PdqOutput, [PdqHash; 8]) {
        if w < MIN_HASHABLE_DIM || h < MIN_HASHABLE_DIM {
            let zero = PdqHash([0; 32]);
            return (
                PdqOutput {
                    hash: zero,
                    quality: 0,
                },
                [zero; 8],
            );
        }
        let mut a = [[0f32; 64]; 64];
        if w == 64 && h == 64 {
            for (row, src) in a.iter_mut().zip(buf1.chunks_exact(64)) {
                row.copy_from_slice(src);
            }
        } else {
            self.blur_and_decimate(w, h, buf1, &mut a);
        }
        let quality = quality_metric(&a);
        let b = dct64_to_16(&a);
        let variants = dihedral(&b).map(|m| bits(&m));
        (
            PdqOutput {
                hash: variants[0],
                quality,
            },
            variants,
        )
    }

    /// The reference's `jaroszFilterFloat` (two rounds of rows then columns) followed by
    /// `decimateFloat`, computing only what the 64×64 samples depend on: the last pass along
    /// the columns runs on the 64 sampled columns alone (each column's sums are independent,
    /// so the values are the same).
    fn blur_and_decimate(&mut self, w: usize, h: usize, buf1: &mut [f32], a: &mut [[f32; 64]; 64]) {
        let win_rows = jarosz_window(w); // along each row
        let win_cols = jarosz_window(h); // along each column
        let n = w * h;
        self.buf2.clear();
        self.buf2.resize(n, 0.0);
        let mut buf2 = std::mem::take(&mut self.buf2);
        let cols: [usize; 64] = std::array::from_fn(|j| sample_index(j, w));
        let rows: [usize; 64] = std::array::from_fn(|i| sample_index(i, h));

        // Round 1: rows (1 -> 2), columns (2 -> 1).
        self.box_rows(buf1, &mut buf2, h, w, win_rows);
        box_cols(&buf2, buf1, h, w, win_cols, &mut self.sums);
        // Round 2: rows (1 -> 2), then columns on the sampled columns only.
        self.box_rows(buf1, &mut buf2, h, w, win_rows);
        // The sampled columns, then room for their filtered values.
        let mut narrow = std::mem::take(&mut self.narrow);
        narrow.clear();
        narrow.resize(2 * h * 64, 0.0);
        let (sampled, out) = narrow.split_at_mut(h * 64);
        for (dst, src) in sampled.chunks_exact_mut(64).zip(buf2.chunks_exact(w)) {
            for (d, &c) in dst.iter_mut().zip(cols.iter()) {
                *d = src[c];
            }
        }
        box_cols(sampled, out, h, 64, win_cols, &mut self.sums);
        for (arow, &r) in a.iter_mut().zip(rows.iter()) {
            arow.copy_from_slice(&out[r * 64..r * 64 + 64]);
        }
        self.narrow = narrow;
        self.buf2 = buf2;
    }

    /// Box filter along each row of a `rows × cols` matrix: rows are taken `LANES` at a time,
    /// transposed so that the running sums of several rows advance together.
    fn box_rows(
        &mut self,
        input: &[f32],
        out: &mut [f32],
        rows: usize,
        cols: usize,
        window: usize,
    ) {
        self.lanes_in.clear();
        self.lanes_in.resize(cols, [0.0; LANES]);
        self.lanes_out.clear();
        self.lanes_out.resize(cols, [0.0; LANES]);
        let mut r0 = 0;
        while r0 < rows {
            let k = LANES.min(rows - r0);
            for l in 0..k {
                let src = &input[(r0 + l) * cols..(r0 + l + 1) * cols];
                for (lane, &v) in self.lanes_in.iter_mut().zip(src) {
                    lane[l] = v;
                }
            }
            box_lanes(&self.lanes_in, &mut self.lanes_out, window);
            for l in 0..k {
                let dst = &mut out[(r0 + l) * cols..(r0 + l + 1) * cols];
                for (d, lane) in dst.iter_mut().zip(self.lanes_out.iter()) {
                    *d = lane[l];
                }
            }
            r0 += k;
        }
    }
}

/// The reference's `computeJaroszFilterWindowSize(dimension, 64)`: half a 64th, rounded up.
fn jarosz_window(dimension: usize) -> usize {
    (dimension + 2 * 64 - 1) / (2 * 64)
}

/// The reference's decimation: the input index nearest output cell `out`'s centre.
fn sample_index(out: usize, in_len: usize) -> usize {
    (((out as f64 + 0.5) * in_len as f64) / 64.0) as usize
}

/// The reference's phases of a box filter of `window` over `n` values: (values summed before
/// the first write, writes while the window grows, writes at full window, writes while it
/// shrinks).
fn phases(n: usize, window: usize) -> (usize, usize, usize, usize) {
    let half = (window + 2) / 2;
    (half - 1, window - half + 1, n - window, half - 1)
}

/// Box filter along `input` (one running sum per lane), as the reference's `box1DFloat`.
fn box_lanes(input: &[[f32; LANES]], out: &mut [[f32; LANES]], window: usize) {
    let (p1, p2, p3, p4) = phases(input.len(), window);
    let mut sum = [0f32; LANES];
    let mut size = 0usize;
    let (mut li, mut ri, mut oi) = (0, 0, 0);
    for _ in 0..p1 {
        add(&mut sum, &input[ri]);
        size += 1;
        ri += 1;
    }
    for _ in 0..p2 {
        add(&mut sum, &input[ri]);
        size += 1;
        out[oi] = div(&sum, size as f32);
        ri += 1;
        oi += 1;
    }
    let s = size as f32;
    for _ in 0..p3 {
        add(&mut sum, &input[ri]);
        sub(&mut sum, &input[li]);
        out[oi] = div(&sum, s);
        li += 1;
        ri += 1;
        oi += 1;
    }
    for _ in 0..p4 {
        sub(&mut sum, &input[li]);
        size -= 1;
        out[oi] = div(&sum, size as f32);
        li += 1;
        oi += 1;
    }
}

#[inline(always)]
fn add(sum: &mut [f32; LANES], v: &[f32; LANES]) {
    for (s, x) in sum.iter_mut().zip(v) {
        *s += *x;
    }
}

#[inline(always)]
fn sub(sum: &mut [f32; LANES], v: &[f32; LANES]) {
    for (s, x) in sum.iter_mut().zip(v) {
        *s -= *x;
    }
}

#[inline(always)]
fn div(sum: &[f32; LANES], d: f32) -> [f32; LANES] {
    sum.map(|s| s / d)
}

/// Box filter along each column of a `rows × cols` matrix, as the reference's
/// `boxAlongColsFloat`, advancing every column's running sum a row at a time.
fn box_cols(
    input: &[f32],
    out: &mut [f32],
    rows: usize,
    cols: usize,
    window: usize,
    sums: &mut Vec<f32>,
) {
    let (p1, p2, p3, p4) = phases(rows, window);
    sums.clear();
    sums.resize(cols, 0.0);
    let row = |r: usize| &input[r * cols..(r + 1) * cols];
    let mut size = 0usize;
    let (mut li, mut ri, mut oi) = (0, 0, 0);
    for _ in 0..p1 {
        for (s, x) in sums.iter_mut().zip(row(ri)) {
            *s += *x;
        }
        size += 1;
        ri += 1;
    }
    for _ in 0..p2 {
        size += 1;
        let d = size as f32;
        let dst = &mut out[oi * cols..(oi + 1) * cols];
        for ((s, x), o) in sums.iter_mut().zip(row(ri)).zip(dst) {
            *s += *x;
            *o = *s / d;
        }
        ri += 1;
        oi += 1;
    }
    let d = size as f32;
    for _ in 0..p3 {
        let dst = &mut out[oi * cols..(oi + 1) * cols];
        for (((s, x), y), o) in sums.iter_mut().zip(row(ri)).zip(row(li)).zip(dst) {
            *s += *x;
            *s -= *y;
            *o = *s / d;
        }
        li += 1;
        ri += 1;
        oi += 1;
    }
    for _ in 0..p4 {
        size -= 1;
        let d = size as f32;
        let dst = &mut out[oi * cols..(oi + 1) * cols];
        for ((s, y), o) in sums.iter_mut().zip(row(li)).zip(dst) {
            *s -= *y;
            *o = *s / d;
        }
        li += 1;
        oi += 1;
    }
}

/// The reference's `pdqImageDomainQualityMetric`.
fn quality_metric(a: &[[f32; 64]; 64]) -> u8 {
    let step = |u: f32, v: f32| -> i32 { (((u - v) * 100.0) / 255.0) as i32 };
    let mut sum: i32 = 0;
    for i in 0..63 {
        for j in 0..64 {
            sum += step(a[i][j], a[i + 1][j]).abs();
        }
    }
    for row in a.iter() {
        for j in 0..63 {
            sum += step(row[j], row[j + 1]).abs();
        }
    }
    (sum / 90).min(100) as u8
}

/// The 16×64 DCT matrix, as the reference builds it: the scale factor rounded to `f32`,
/// each entry computed in double precision and rounded to `f32`.
fn dct_matrix() -> &'static [[f32; 64]; 16] {
    static MATRIX: OnceLock<[[f32; 64]; 16]> = OnceLock::new();
    MATRIX.get_or_init(|| {
        let scale = (2.0f64 / 64.0).sqrt() as f32;
        std::array::from_fn(|i| {
            std::array::from_fn(|j| {
                let angle =
                    (std::f64::consts::PI / 2.0 / 64.0) * (i + 1) as f64 * (2 * j + 1) as f64;
                (f64::from(scale) * angle.cos()) as f32
            })
        })
    })
}

/// `B = (D·A)·Dᵀ` with every dot product summed from k = 0 to 63 in `f32`, as the
/// reference's `dct64To16` (its sums are vectorised here across the output column, which
/// leaves each sum's own order unchanged).
fn dct64_to_16(a: &[[f32; 64]; 64]) -> [[f32; 16]; 16] {
    let d = dct_matrix();
    let mut t = [[0f32; 64]; 16];
    for (trow, drow) in t.iter_mut().zip(d.iter()) {
        for (&dk, arow) in drow.iter().zip(a.iter()) {
            for (tj, &ak) in trow.iter_mut().zip(arow.iter()) {
                *tj += dk * ak;
            }
        }
    }
    // Dᵀ, so that the second product also runs along contiguous rows.
    let mut dt = [[0f32; 16]; 64];
    for (j, drow) in d.iter().enumerate() {
        for (k, &v) in drow.iter().enumerate() {
            dt[k][j] = v;
        }
    }
    let mut b = [[0f32; 16]; 16];
    for (brow, trow) in b.iter_mut().zip(t.iter()) {
        for (&tk, dtrow) in trow.iter().zip(dt.iter()) {
            for (bj, &dk) in brow.iter_mut().zip(dtrow.iter()) {
                *bj += tk * dk;
            }
        }
    }
    b
}

/// The eight dihedral transforms of a 16×16 DCT output, in [`DIHEDRAL_NAMES`] order, as the
/// reference's `dct16OriginalTo*`: a DCT coefficient of odd frequency changes sign when the
/// image flips along that axis, and a transposed image has the transposed coefficients.
fn dihedral(a: &[[f32; 16]; 16]) -> [[[f32; 16]; 16]; 8] {
    let neg = |x: f32, yes: bool| if yes { -x } else { x };
    let mut out = [[[0f32; 16]; 16]; 8];
    for i in 0..16 {
        for j in 0..16 {
            let v = a[i][j];
            let (ei, ej, eij) = (i & 1 == 0, j & 1 == 0, (i + j) & 1 == 1);
            out[0][i][j] = v;
            out[1][j][i] = neg(v, ej);
            out[2][i][j] = neg(v, eij);
            out[3][j][i] = neg(v, ei);
            out[4][i][j] = neg(v, ei);
            out[5][i][j] = neg(v, ej);
            out[6][j][i] = v;
            out[7][j][i] = neg(v, eij);
        }
    }
    out
}

/// The reference's `pdqBuffer16x16ToBits`: coefficient (i, j) above the median sets bit j of
/// word i; the words are stored from 15 down to 0, each big-end first (the text form).
fn bits(m: &[[f32; 16]; 16]) -> PdqHash {
    let flat: [f32; 256] = std::array::from_fn(|k| m[k / 16][k % 16]);
    let median = torben(&flat);
    let mut out = [0u8; 32];
    for (i, row) in m.iter().enumerate() {
        let mut word: u16 = 0;
        for (j, &v) in row.iter().enumerate() {
            if v > median {
                word |= 1 << j;
            }
        }
        let [hi, lo] = word.to_be_bytes();
        out[2 * (15 - i)] = hi;
        out[2 * (15 - i) + 1] = lo;
    }
    PdqHash(out)
}

/// Torben Mogensen's median (the reference's `torben`): bisects between the minimum and the
/// maximum without sorting, returning the lower median the reference returns.
fn torben(m: &[f32]) -> f32 {
    let n = m.len();
    let mut min = m[0];
    let mut max = m[0];
    for &v in &m[1..] {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    let half = n.div_ceil(2);
    loop {
        let guess = (min + max) / 2.0;
        let (mut less, mut greater, mut equal) = (0usize, 0usize, 0usize);
        let mut max_lt_guess = min;
        let mut min_gt_guess = max;
        for &v in m {
            if v < guess {
                less += 1;
                if v > max_lt_guess {
                    max_lt_guess = v;
                }
            } else if v > guess {
                greater += 1;
                if v < min_gt_guess {
                    min_gt_guess = v;
                }
            } else {
                equal += 1;
            }
        }
        if less <= half && greater <= half {
            return if less >= half {
                max_lt_guess
            } else if less + equal >= half {
                guess
            } else {
                min_gt_guess
            };
        } else if less > greater {
            max = max_lt_guess;
        } else {
            min = min_gt_guess;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic, asymmetric test image: a few smooth waves per channel and a disc.
    fn test_image(w: u32, h: u32) -> Vec<u8> {
        let mut state: u32 = 12345;
        let mut next = || {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            f64::from(state >> 8) / f64::from(1u32 << 24)
        };
        let waves: Vec<[f64; 5]> = (0..12)
            .map(|_| {
                [
                    next() * 8.0,
                    next() * 8.0,
                    next() * 6.28,
                    20.0 + next() * 30.0,
                    next() * 3.0,
                ]
            })
            .collect();
        let mut out = Vec::with_capacity((3 * w * h) as usize);
        for y in 0..h {
            for x in 0..w {
                let (u, v) = (f64::from(x) / f64::from(w), f64::from(y) / f64::from(h));
                let disc = if (u - 0.3).powi(2) + (v - 0.2).powi(2) < 0.02 {
                    60.0
                } else {
                    0.0
                };
                for c in 0..3 {
                    let mut value = 128.0 + disc;
                    for wave in waves.iter().filter(|p| p[4] as usize == c) {
                        value += wave[3] * (6.28 * (wave[0] * u + wave[1] * v) + wave[2]).sin();
                    }
                    out.push(value.clamp(0.0, 255.0) as u8);
                }
            }
        }
        out
    }

    /// Transforms an RGB image: `map(x, y)` gives, for each output pixel, the source pixel.
    fn transform(w: u32, h: u32, rgb: &[u8], kind: usize) -> (u32, u32, Vec<u8>) {
        let (ow, oh) = if matches!(kind, 1 | 3 | 6 | 7) {
            (h, w)
        } else {
            (w, h)
        };
        let mut out = Vec::with_capacity(rgb.len());
        for y in 0..oh {
            for x in 0..ow {
                let (sx, sy) = match kind {
                    0 => (x, y),
                    1 => (w - 1 - y, x),         // counter-clockwise 90°
                    2 => (w - 1 - x, h - 1 - y), // 180°
                    3 => (y, h - 1 - x),         // clockwise 90°
                    4 => (x, h - 1 - y),         // top to bottom
                    5 => (w - 1 - x, y),         // left to right
                    6 => (y, x),                 // transpose
                    _ => (w - 1 - y, h - 1 - x), // anti-transpose
                };
                let i = 3 * (sy * w + sx) as usize;
                out.extend_from_slice(&rgb[i..i + 3]);
            }
        }
        (ow, oh, out)
    }

    /// The variants are the hashes of the rotated and flipped pixels, exactly, where the
    /// reference's blur and sampling are mirror-symmetric: sides of 64 × an odd number whose
    /// blur window (side / 128, rounded up) is odd, like 320 and 576. Elsewhere the reference's
    /// sampling grid and its even-width box filter sit a pixel or so off-centre, so a flipped
    /// image is sampled at slightly different places and the variants are approximations
    /// (as in the reference itself), still well within the matching threshold.
    #[test]
    fn variants_equal_the_hashes_of_the_rotated_and_flipped_images() {
        for (w, h, max) in [(320, 576, 0), (576, 320, 0), (320, 320, 0), (640, 480, 31)] {
            let rgb = test_image(w, h);
            let (out, variants) = hash_rgb_with_variants(w, h, &rgb);
            assert_eq!(out.hash, variants[0]);
            assert!(out.quality > 50, "{}", out.quality);
            for (k, v) in variants.iter().enumerate() {
                let (tw, th, t) = transform(w, h, &rgb, k);
                let d = v.distance(&hash_rgb(tw, th, &t).hash);
                assert!(
                    d <= max,
                    "{w}x{h} variant {k} ({}): {d} bits",
                    DIHEDRAL_NAMES[k]
                );
                // And far from the other transforms' hashes.
                let (ow, oh, o) = transform(w, h, &rgb, (k + 2) % 8);
                assert!(v.distance(&hash_rgb(ow, oh, &o).hash) > 31);
            }
        }
    }

    #[test]
    fn tiny_images_hash_to_zero_quality_zero() {
        for (w, h) in [(1, 1), (4, 100), (100, 4), (0, 0)] {
            let rgb = vec![77u8; (3 * w * h) as usize];
            let out = hash_rgb(w, h, &rgb);
            assert_eq!(out.hash, PdqHash([0; 32]));
            assert_eq!(out.quality, 0);
        }
        // The smallest hashable size works and a flat image has quality 0.
        let out = hash_rgb(5, 5, &[128u8; 75]);
        assert_eq!(out.quality, 0);
    }

    #[test]
    fn torben_is_the_lower_median() {
        let v: Vec<f32> = (0..256).map(|i| ((i * 37) % 256) as f32).collect();
        assert_eq!(torben(&v), 127.0);
        assert_eq!(torben(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(torben(&[5.0; 10]), 5.0);
    }

    #[test]
    fn a_reused_hasher_gives_the_same_hashes() {
        let mut hasher = PdqHasher::new();
        let a = test_image(300, 200);
        let b = test_image(64, 64);
        let first = hasher.hash_rgb(300, 200, &a);
        let _ = hasher.hash_rgb(64, 64, &b);
        assert_eq!(hasher.hash_rgb(300, 200, &a), first);
        assert_eq!(hash_rgb(64, 64, &b), hasher.hash_rgb(64, 64, &b).0);
    }
}
