//! The whole pipeline on the local stack: uploads through S3 notifications, the scan queue and
//! the scanner worker (release build), twice:
//!
//! - lists that need only MD5: single-part uploads are decided from the ETag (fast path);
//! - lists that need MD5, SHA-1 and SHA-256: every upload is read once.
//!
//! Reported: objects per second end to end (first upload to last result), the share of
//! uploads decided without reading the body, and bytes read per object. The emulator (moto,
//! single-threaded Python) is the bottleneck of the end-to-end rate; the fast-path share and
//! the bytes read are properties of hashgate and carry over to S3.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_sdk_s3::primitives::ByteStream;
use hashgate_core::digest::{digest_bytes, AlgorithmSet};
use hashgate_e2e::{bin, Stack};

use crate::progress;

pub struct Scenario {
    name: &'static str,
    objects: usize,
    object_bytes: usize,
    seconds: f64,
    fast_path: usize,
    bytes_read: u64,
    matched: usize,
}

pub struct PipelineResult {
    scenarios: Vec<Scenario>,
}

/// splitmix64, for incompressible upload bodies without a dependency.
fn fill(seed: u64, buf: &mut [u8]) {
    let mut s = seed;
    for chunk in buf.chunks_mut(8) {
        s = s.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        let v = (z ^ (z >> 31)).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

pub fn run(objects: usize, object_bytes: usize) -> Result<PipelineResult> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut scenarios = Vec::new();
    for (name, algorithms) in [
        (
            "lists need MD5 only",
            AlgorithmSet::EMPTY.with(hashgate_core::Algorithm::Md5),
        ),
        ("lists need MD5, SHA-1, SHA-256", AlgorithmSet::ALL),
    ] {
        progress(format_args!(
            "pipeline: {name}: {objects} uploads of {object_bytes} bytes"
        ));
        scenarios.push(runtime.block_on(scenario(name, algorithms, objects, object_bytes))?);
    }
    Ok(PipelineResult { scenarios })
}

async fn scenario(
    name: &'static str,
    algorithms: AlgorithmSet,
    objects: usize,
    object_bytes: usize,
) -> Result<Scenario> {
    let stack = Stack::start();
    let listed = vec![0x5au8; object_bytes];
    let list_dir = tempfile::tempdir()?;
    let list = list_dir.path().join("bench-list.txt");
    let lines: String = digest_bytes(&listed, algorithms)
        .iter()
        .map(|d| format!("{d}\n"))
        .collect();
    std::fs::write(&list, lines)?;
    let out = stack
        .command(bin("hashgate"))
        .args(["lists", "import"])
        .arg(&list)
        .output()?;
    if !out.status.success() {
        bail!("import failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let worker = stack.worker(&[]);
    let s3 = hashgate_aws::s3_client(&stack.sdk().await);
    let bucket = stack.var("HASHGATE_UPLOAD_BUCKET").to_string();

    let started = Instant::now();
    let mut uploads = tokio::task::JoinSet::new();
    for i in 0..objects {
        // One upload in fifty is listed.
        let body = if i % 50 == 0 {
            listed.clone()
        } else {
            let mut b = vec![0u8; object_bytes];
            fill(i as u64, &mut b);
            b
        };
        let (s3, bucket) = (s3.clone(), bucket.clone());
        uploads.spawn(async move {
            s3.put_object()
                .bucket(bucket)
                .key(format!("bench/{i:06}.bin"))
                .body(ByteStream::from(body))
                .send()
                .await
        });
        while uploads.len() >= 8 {
            uploads.join_next().await.expect("a task")??;
        }
    }
    while let Some(r) = uploads.join_next().await {
        r??;
    }
    let reports = loop {
        let reports = reports(&worker.log());
        if reports.len() >= objects {
            break reports;
        }
        if started.elapsed() > Duration::from_secs(900) {
            bail!(
                "only {} of {objects} uploads scanned after 15 minutes",
                reports.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    let fast_path = reports
        .iter()
        .filter(|r| r["fast_path"].as_bool() == Some(true))
        .count();
    let bytes_read = reports
        .iter()
        .filter_map(|r| r["bytes_read"].as_u64())
        .sum();
    let matched = reports
        .iter()
        .filter(|r| r["status"].as_str() == Some("matched"))
        .count();
    Ok(Scenario {
        name,
        objects,
        object_bytes,
        seconds,
        fast_path,
        bytes_read,
        matched,
    })
}

/// The scan reports in a worker's log (one JSON object after `report=` per scanned upload).
fn reports(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|l| l.split_once("report=").map(|(_, json)| json))
        .filter_map(|json| serde_json::from_str(json.trim()).ok())
        .collect()
}

impl PipelineResult {
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "### The pipeline on the local stack\n");
        let _ = writeln!(
            md,
            "Uploads (PutObject, single part, one in fifty on the list) to the local stack's \
             upload bucket; S3 notifications through the scan queue to the scanner worker \
             (release build), which tags or quarantines each. Timed from the first upload to \
             the last result. The emulator (moto, single-threaded Python) bounds the \
             end-to-end rate; fast-path share and bytes read carry over to S3.\n"
        );
        let _ = writeln!(
            md,
            "| scenario | uploads | objects/s end to end | decided without reading the body | bytes read per object | matched |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
        for s in &self.scenarios {
            let _ = writeln!(
                md,
                "| {} | {} × {} KiB | {:.1} | {:.0}% | {} | {} |",
                s.name,
                s.objects,
                s.object_bytes / 1024,
                s.objects as f64 / s.seconds,
                100.0 * s.fast_path as f64 / s.objects as f64,
                s.bytes_read / s.objects as u64,
                s.matched,
            );
        }
        md
    }
}

/// Context for errors: which part of the bench failed.
pub fn run_or_explain(objects: usize, object_bytes: usize) -> Result<PipelineResult> {
    run(objects, object_bytes).context(
        "the pipeline benchmark needs the local stack: run `make venv` and build the release \
         scanner (make bench does both)",
    )
}
