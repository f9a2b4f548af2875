//! Perceptual matching end to end: a PDQ list imported with the real CLI (`--algorithm pdq`
//! on a plain list, a `pdq` column in CSV), image uploads through the real scanner worker on
//! the local stack, and the local `hashgate hash` / `hashgate scan` on files.
//!
//! A re-encoded, half-size, mirrored or grayscale copy of a listed photo becomes a case whose
//! match is a `pdq` match with its distance; an unrelated photo is clean; a truncated image is
//! tagged `unscanned-undecodable`, never clean.

use std::io::Cursor;
use std::process::Output;
use std::time::Duration;

use hashgate_aws::dynamo::DynamoCases;
use hashgate_core::case::CaseStatus;
use hashgate_core::pdq::PdqHash;
use hashgate_core::Algorithm;
use hashgate_e2e::{bin, eventually, put, tags, Stack};
use image::{imageops, DynamicImage, ImageFormat, Rgb, RgbImage};

const WAIT: Duration = Duration::from_secs(90);

/// A photo-like image: smooth gradients, overlapping discs and fine texture, different for
/// each seed (a hash with plenty of detail: quality 100).
fn photo(seed: u32, width: u32, height: u32) -> RgbImage {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let discs: Vec<(f32, f32, f32, [f32; 3])> = (0..12)
        .map(|_| {
            let x = (next() % width) as f32;
            let y = (next() % height) as f32;
            let r = (next() % (width / 4) + width / 16) as f32;
            let c = [
                (next() % 256) as f32,
                (next() % 256) as f32,
                (next() % 256) as f32,
            ];
            (x, y, r, c)
        })
        .collect();
    let fx = 1.0 + (next() % 7) as f32;
    let fy = 1.0 + (next() % 5) as f32;
    RgbImage::from_fn(width, height, |x, y| {
        let (u, v) = (x as f32 / width as f32, y as f32 / height as f32);
        let mut p = [
            128.0 + 90.0 * (u * fx * 3.1).sin(),
            128.0 + 90.0 * (v * fy * 2.7).cos(),
            128.0 + 60.0 * ((u + v) * 4.0).sin(),
        ];
        for (cx, cy, r, c) in &discs {
            let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
            if d < *r {
                for i in 0..3 {
                    p[i] = 0.4 * p[i] + 0.6 * c[i];
                }
            }
        }
        Rgb(p.map(|c| c.clamp(0.0, 255.0) as u8))
    })
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

fn jpeg(img: &DynamicImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .expect("encode JPEG");
    out
}

/// PNG's chunk checksum (CRC-32, ISO 3309), so the forged header is a valid one.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `hashgate hash --json` of one file: its PDQ hash and quality.
fn pdq_of(stack: &Stack, path: &std::path::Path) -> (String, u64) {
    let out = stack
        .command(bin("hashgate"))
        .args(["hash", "--json"])
        .arg(path)
        .output()
        .expect("run hashgate hash");
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    (
        v["pdq"].as_str().expect("a PDQ hash").to_string(),
        v["pdq_quality"].as_u64().expect("a quality"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn copies_of_a_listed_image_become_cases_with_their_distance() {
    let stack = Stack::start();
    let sdk = stack.sdk().await;
    let s3 = hashgate_aws::s3_client(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let cases = DynamoCases::new(
        dynamo,
        stack.var("HASHGATE_CASE_TABLE"),
        stack.var("HASHGATE_AUDIT_TABLE"),
    );
    let dir = tempfile::tempdir().unwrap();
    let listed = DynamicImage::ImageRgb8(photo(1, 800, 600));
    let second = DynamicImage::ImageRgb8(photo(2, 640, 640));
    let unrelated = DynamicImage::ImageRgb8(photo(3, 800, 600));
    let listed_png = dir.path().join("listed.png");
    std::fs::write(&listed_png, encode(&listed, ImageFormat::Png)).unwrap();
    let second_png = dir.path().join("second.png");
    std::fs::write(&second_png, encode(&second, ImageFormat::Png)).unwrap();
    let (pdq, quality) = pdq_of(&stack, &listed_png);
    assert!(quality >= 80, "the listed photo has quality {quality}");
    let (pdq2, _) = pdq_of(&stack, &second_png);

    // A plain PDQ list must say what it holds; a CSV list says it in its header.
    let plain = dir.path().join("perceptual.txt");
    std::fs::write(&plain, format!("{pdq},{quality}\n")).unwrap();
    let out = stack
        .command(bin("hashgate"))
        .args(["lists", "import", "--algorithm", "pdq"])
        .arg(&plain)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let csv = dir.path().join("perceptual-csv.csv");
    std::fs::write(
        &csv,
        format!("pdq,quality,category,id\n{pdq2},100,A1,img-2\n"),
    )
    .unwrap();
    let out = stack
        .command(bin("hashgate"))
        .args(["lists", "import"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // A degenerate hash is refused with its line, and nothing of the file applied.
    let bad = dir.path().join("degenerate.txt");
    std::fs::write(&bad, format!("{pdq}\n{}\n", "0".repeat(64))).unwrap();
    let out = stack
        .command(bin("hashgate"))
        .args(["lists", "import", "--algorithm", "pdq"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("degenerate.txt:2: PDQ hash") && text(&out).contains("degenerate"),
        "{}",
        text(&out)
    );

    let worker = stack.worker(&[]);
    let uploads = stack.var("HASHGATE_UPLOAD_BUCKET").to_string();
    let half = listed.resize_exact(400, 300, imageops::FilterType::Triangle);
    let copies = [
        ("copies/reencoded.jpg", jpeg(&listed, 70)),
        ("copies/half.png", encode(&half, ImageFormat::Png)),
        ("copies/mirrored.jpg", jpeg(&listed.fliph(), 90)),
        (
            "copies/gray.png",
            encode(
                &DynamicImage::ImageLuma8(listed.to_luma8()),
                ImageFormat::Png,
            ),
        ),
        // No extension and a misleading name: the bytes say it is an image.
        ("copies/second-copy.txt", jpeg(&second, 80)),
    ];
    let mut refs = Vec::new();
    for (key, body) in &copies {
        refs.push((key, put(&s3, &uploads, key, body).await));
    }
    put(&s3, &uploads, "clean/unrelated.jpg", &jpeg(&unrelated, 85)).await;
    let mut truncated = jpeg(&unrelated, 85);
    truncated.truncate(truncated.len() / 3);
    put(&s3, &uploads, "broken/truncated.jpg", &truncated).await;

    for (key, object) in &refs {
        let id = object.case_id();
        let case = eventually(&format!("a case for {key}"), WAIT, || {
            let (cases, id) = (&cases, id.clone());
            async move { cases.get(&id).await.ok().flatten() }
        })
        .await;
        assert_eq!(case.status, CaseStatus::PendingReview, "{key}");
        let m = case
            .matches
            .iter()
            .find(|m| m.algorithm == Algorithm::Pdq)
            .unwrap_or_else(|| panic!("{key}: no PDQ match in {:?}", case.matches));
        let distance = m.distance.expect("a perceptual match carries its distance");
        assert!(distance <= 31, "{key}: distance {distance}");
        let expected_list = if key.contains("second") {
            "perceptual-csv"
        } else {
            "perceptual"
        };
        assert_eq!(m.list, expected_list, "{key}");
        // The case holds the upload's own PDQ beside its exact digests.
        let own = case
            .digests
            .iter()
            .find(|(a, _)| a == "pdq")
            .unwrap_or_else(|| panic!("{key}: no PDQ among {:?}", case.digests));
        assert!(PdqHash::from_hex(&own.1).is_ok(), "{key}: {own:?}");
        assert!(case.digests.iter().any(|(a, _)| a == "sha256"), "{key}");
    }
    for (key, want) in [
        ("clean/unrelated.jpg", "clean"),
        ("broken/truncated.jpg", "unscanned-undecodable"),
    ] {
        eventually(&format!("{key} tagged {want}"), WAIT, || async {
            (tags(&s3, &uploads, key, None)
                .await
                .get("hashgate-scan")
                .map(String::as_str)
                == Some(want))
            .then_some(())
        })
        .await;
    }
    let log = worker.log();
    assert!(log.contains("\"perceptual\":\"undecodable\""), "{log}");
}

#[test]
fn hash_and_scan_on_files_carry_pdq_and_distance() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let listed = DynamicImage::ImageRgb8(photo(7, 1024, 768));
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    std::fs::write(files.join("listed.png"), encode(&listed, ImageFormat::Png)).unwrap();
    std::fs::write(files.join("copy.jpg"), jpeg(&listed.rotate90(), 75)).unwrap();
    std::fs::write(
        files.join("other.jpg"),
        jpeg(&DynamicImage::ImageRgb8(photo(8, 1024, 768)), 75),
    )
    .unwrap();
    std::fs::write(files.join("notes.txt"), b"not an image").unwrap();
    // A decompression bomb: a valid PNG header declaring 100000 x 100000 pixels.
    let mut bomb = encode(
        &DynamicImage::ImageRgb8(RgbImage::new(1, 1)),
        ImageFormat::Png,
    );
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(files.join("bomb.png"), &bomb).unwrap();

    let hashgate = |args: &[&str]| {
        std::process::Command::new(bin("hashgate"))
            .args(args)
            .output()
            .expect("run hashgate")
    };
    let listed_path = files.join("listed.png");
    let out = hashgate(&["hash", "--json", listed_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pdq = v["pdq"].as_str().unwrap().to_string();
    assert_eq!(v["image"], "png");
    assert_eq!(v["width"], 1024);
    assert!(v["sha256"].as_str().is_some_and(|s| s.len() == 64));

    let bomb_path = files.join("bomb.png");
    let out = hashgate(&["hash", "--json", bomb_path.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["pdq"].is_null(), "{v}");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("no PDQ hash")),
        "{v}"
    );

    let list = dir.path().join("photos.txt");
    std::fs::write(&list, format!("{pdq}\n")).unwrap();
    let out = hashgate(&[
        "lists",
        "import",
        "--db",
        db.to_str().unwrap(),
        "--algorithm",
        "pdq",
        list.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = hashgate(&[
        "scan",
        "--db",
        db.to_str().unwrap(),
        "--json",
        files.to_str().unwrap(),
    ]);
    // The bomb is unscanned: exit status 2 wins over the match's 1.
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let reports: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_name = |name: &str| {
        reports
            .iter()
            .find(|r| r["path"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("no report for {name}"))
            .clone()
    };
    for name in ["listed.png", "copy.jpg"] {
        let r = by_name(name);
        assert_eq!(r["verdict"], "match", "{r}");
        assert_eq!(r["matches"][0]["algorithm"], "pdq", "{r}");
        assert!(r["matches"][0]["distance"].as_u64().unwrap() <= 31, "{r}");
        assert!(
            r["digests"]["pdq"].is_string() && r["digests"]["pdq_quality"].is_u64(),
            "{r}"
        );
    }
    assert_eq!(by_name("listed.png")["matches"][0]["distance"], 0);
    assert_eq!(by_name("other.jpg")["verdict"], "clean");
    assert_eq!(by_name("notes.txt")["verdict"], "clean");
    assert!(by_name("notes.txt")["digests"]["pdq"].is_null());
    let bomb = by_name("bomb.png");
    assert_eq!(bomb["verdict"], "undecodable", "{bomb}");
    assert_eq!(bomb["perceptual"], "undecodable", "{bomb}");
}
