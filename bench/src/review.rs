//! The review queue with 10,000 cases in the local store: the release `review-api` binary on
//! a private local stack (the moto emulator serves DynamoDB, S3, KMS and the user pool),
//! read over HTTP as the page reads it, and the function's peak memory.
//!
//! 1. The cases go straight into the case table ([`case_item`]; BatchWriteItem, 25 items a
//!    batch, several batches at once): statuses, origin buckets, lists, categories and match
//!    kinds drawn from a fixed seed, created over 30 days. Their first audit entries
//!    (quarantined, held in place, content gone) are linked into one chain exactly as the
//!    scanner's appends link them ([`link`], [`audit_item`]) and batch-written too: through
//!    `ReviewStore::append` each would first read the chain's head from the emulator, one at
//!    a time, which costs more than the whole measurement. The chain is verified at the end.
//! 2. Timed, one request at a time on one keep-alive connection, with a reviewer's access
//!    token from the user pool, round by round after an untimed round (a different request
//!    first each round): the page's HTML shell (`GET /`), the queue's first page
//!    (`GET /api/cases?limit=50`, what the page asks for first), a page from the middle (the
//!    cursor after the 5,000th case) and a filtered first page (`status=escalated`, 3% of the
//!    cases).
//! 3. A 12-megapixel JPEG in the quarantine bucket at one case's quarantine location: its
//!    preview and its reveal over HTTP, a few times each.
//! 4. The review function's peak memory (`VmHWM` in `/proc/<pid>/status`) after start, after
//!    the queue requests and after the previews and reveals.
//!
//! How many index items a queue request examined is inferred by replaying the adapter's
//! paging (Query pages of 100 index items for a page of 50, at most 5,000 items a request)
//! over the written cases; the replayed page is checked against the one served. The emulator
//! answers every index Query by reading and sorting the whole table, so its latency follows
//! the table's size more than the page's: these are emulator numbers, and DynamoDB's own
//! latency is not represented.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_s3::primitives::ByteStream;
use hashgate_aws::dynamo::{audit_item, case_item};
use hashgate_core::audit::{link, AuditAction, AuditEntry, ChainedEntry};
use hashgate_core::case::{CaseRecord, CaseStatus, QuarantineLocation};
use hashgate_core::event::ObjectRef;
use hashgate_core::review::{created_key, CaseQuery, Classification, Decision, RestoredTo, Review};
use hashgate_core::scan::Match;
use hashgate_core::time::Timestamp;
use hashgate_core::{Algorithm, Digest};
use hashgate_e2e::Stack;
use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};
use serde_json::Value;

use crate::data::{mix64, SplitMix64};
use crate::progress;
use crate::stats::{size, thousands, Samples};
use crate::Sizes;

const CASE_SEED: u64 = 0x7265_7669_6577_2d71;
const PHOTO_SEED: u64 = 0x7068_6f74_6f2d_3132;
/// Cases are created over this many days before the run.
const DAYS: i64 = 30;
/// Statuses, per mille of the cases.
const STATUS_MIX: [(CaseStatus, u64); 8] = [
    (CaseStatus::PendingReview, 620),
    (CaseStatus::HeldInPlace, 60),
    (CaseStatus::ContentGone, 20),
    (CaseStatus::AwaitingSecondReview, 50),
    (CaseStatus::Escalated, 30),
    (CaseStatus::Confirmed, 150),
    (CaseStatus::Released, 60),
    (CaseStatus::Releasing, 10),
];
/// The filtered request's status.
const FILTERED: CaseStatus = CaseStatus::Escalated;
const LISTS: [&str; 3] = ["ncmec-hashes", "iwf-hash-list", "internal-confirmed"];
const CATEGORIES: [&str; 4] = ["A1", "A2", "B1", "B2"];
/// Origin buckets besides the stack's upload bucket (the queue only filters on the name).
const OTHER_BUCKETS: [&str; 2] = ["hashgate-bench-avatars", "hashgate-bench-attachments"];
/// The page size the web page asks for.
const PAGE: usize = 50;
/// The adapter's paging (hashgate_aws::dynamo::DynamoCases::cases): index items per Query
/// call at least, and per request at most.
const QUERY_ITEMS: usize = 100;
const SCAN_BUDGET: usize = 5_000;
const WRITE_BATCH: usize = 25;
const WRITES_IN_FLIGHT: usize = 8;
const PHOTO_WIDTH: u32 = 4000;
const PHOTO_HEIGHT: u32 = 3000;
const PHOTO_QUALITY: u8 = 90;
/// Timed previews and reveals of the photo (after one untimed of each); the reveals stay
/// below the default daily limit of 20.
const PREVIEW_RUNS: usize = 10;
const REVEAL_RUNS: usize = 10;

/// One kind of request, timed `runs` times.
struct Scenario {
    name: String,
    /// For progress lines.
    label: &'static str,
    path: String,
    runs: usize,
    /// For queue requests: the page the adapter's paging gives (checked once).
    replay: Option<Replayed>,
    millis: Vec<f64>,
}

/// What the adapter's paging makes of a query over the written cases.
#[derive(Clone, Debug)]
struct Replayed {
    case_ids: Vec<String>,
    next: Option<String>,
    /// Index items the request's Query calls read, and how many calls.
    examined: usize,
    calls: usize,
    /// Cases that match the query's filters, in the whole queue.
    matching: usize,
}

/// `VmHWM` and `VmRSS` of the review function, in KiB.
#[derive(Clone, Copy, Debug)]
struct Memory {
    hwm_kib: u64,
    rss_kib: u64,
}

pub struct ReviewReport {
    cases: usize,
    escalated: usize,
    item_bytes: usize,
    write_secs: f64,
    audit_write_secs: f64,
    scenarios: Vec<Scenario>,
    /// Per round, the HTML shell and the first page one after the other.
    page_sums: Vec<f64>,
    jpeg_bytes: usize,
    preview_millis: Vec<f64>,
    reveal_millis: Vec<f64>,
    preview_png_bytes: usize,
    memory: Vec<(String, Memory)>,
    chain_entries: u64,
}

pub fn run(sizes: &Sizes) -> Result<ReviewReport> {
    let exe = std::env::current_exe().context("locating this program")?;
    let review_api = exe
        .parent()
        .context("this program's directory")?
        .join("review-api");
    ensure!(
        review_api.is_file(),
        "{} is missing: build it in this profile first (cargo build --release -p \
         hashgate-review-api)",
        review_api.display()
    );
    progress("review: starting a local stack");
    let stack = Stack::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(measure(&stack, sizes))
}

/// Context for errors: which part of the bench failed.
pub fn run_or_explain(sizes: &Sizes) -> Result<ReviewReport> {
    run(sizes).context(
        "the review queue benchmark needs the local stack (make venv) and the release \
         review-api binary (cargo build --release -p hashgate-review-api)",
    )
}

async fn measure(stack: &Stack, sizes: &Sizes) -> Result<ReviewReport> {
    let sdk = stack.sdk().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let s3 = hashgate_aws::s3_client(&sdk);
    let quarantine_bucket = stack.var("HASHGATE_QUARANTINE_BUCKET").to_string();
    let cases = generate(
        sizes.review_cases,
        stack.var("HASHGATE_UPLOAD_BUCKET"),
        &quarantine_bucket,
        Timestamp::now(),
    );
    let keys: Vec<String> = cases.iter().map(created_key).collect();
    let items = cases
        .iter()
        .map(case_item)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("a case item: {e}"))?;
    let item_bytes = items.iter().map(item_size).sum::<usize>() / items.len();
    progress(format_args!(
        "review: writing {} cases (about {item_bytes} bytes an item) into the case table",
        cases.len()
    ));
    let started = Instant::now();
    batch_write(&dynamo, stack.var("HASHGATE_CASE_TABLE"), items).await?;
    let write_secs = started.elapsed().as_secs_f64();
    let chain = first_entries(&cases);
    let started = Instant::now();
    batch_write(
        &dynamo,
        stack.var("HASHGATE_AUDIT_TABLE"),
        chain.iter().map(audit_item).collect(),
    )
    .await?;
    let audit_write_secs = started.elapsed().as_secs_f64();
    progress(format_args!(
        "review: cases written in {write_secs:.1} s, their {} audit entries in \
         {audit_write_secs:.1} s",
        chain.len()
    ));

    let api = stack.review_api(&[]);
    let pid = api.pid();
    let mut memory = vec![("after start".to_string(), memory_of(pid)?)];
    let http = Http {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()?,
        base: api.url.clone(),
        token: stack.sign_in("reviewer-a").await,
    };

    // The queue.
    let query = |statuses: Vec<CaseStatus>, after: Option<String>| CaseQuery {
        statuses,
        after,
        limit: PAGE,
        ..CaseQuery::default()
    };
    let middle = cases.len() / 2;
    let mut scenarios = vec![
        Scenario {
            name: "`GET /` (the page's HTML shell)".into(),
            label: "shell",
            path: "/".into(),
            runs: sizes.review_runs,
            replay: None,
            millis: Vec::new(),
        },
        Scenario {
            name: format!("`GET /api/cases?limit={PAGE}`: the first page"),
            label: "first page",
            path: format!("/api/cases?limit={PAGE}"),
            runs: sizes.review_runs,
            replay: Some(replay(&cases, &keys, &query(vec![], None))),
            millis: Vec::new(),
        },
        Scenario {
            name: format!(
                "`GET /api/cases?limit={PAGE}&cursor=…`: the page after the {}th case",
                thousands(middle as f64)
            ),
            label: "middle page",
            path: format!(
                "/api/cases?limit={PAGE}&cursor={}",
                query_escape(&keys[middle - 1])
            ),
            runs: sizes.review_runs,
            replay: Some(replay(
                &cases,
                &keys,
                &query(vec![], Some(keys[middle - 1].clone())),
            )),
            millis: Vec::new(),
        },
        Scenario {
            name: format!("`GET /api/cases?status={FILTERED}&limit={PAGE}`: a filtered first page"),
            label: "filtered page",
            path: format!("/api/cases?status={FILTERED}&limit={PAGE}"),
            runs: sizes.review_filtered_runs,
            replay: Some(replay(&cases, &keys, &query(vec![FILTERED], None))),
            millis: Vec::new(),
        },
    ];
    // Each request once, untimed; then round by round, a different request first each
    // round, each request in as many rounds as it has runs, spread evenly over them.
    let rounds = scenarios.iter().map(|s| s.runs).max().unwrap_or(0);
    progress(format_args!(
        "review: {rounds} rounds of the requests ({}), after one untimed round",
        scenarios
            .iter()
            .map(|s| format!("{} × {}", s.runs, s.label))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut page_sums = Vec::with_capacity(rounds);
    let round_started = Instant::now();
    for round in 0..=rounds {
        let mut this_round = vec![None; scenarios.len()];
        for offset in 0..scenarios.len() {
            let index = (round + offset) % scenarios.len();
            let scenario = &mut scenarios[index];
            let due =
                round == 0 || round * scenario.runs / rounds > (round - 1) * scenario.runs / rounds;
            if !due {
                continue;
            }
            let response = http.get(&scenario.path).await?;
            ensure!(
                response.status == 200,
                "{}: {} {}",
                scenario.path,
                response.status,
                String::from_utf8_lossy(&response.body)
            );
            if round == 0 {
                if let Some(expected) = &scenario.replay {
                    check_page(&scenario.path, &response.body, expected)?;
                }
            } else {
                scenario.millis.push(response.millis);
            }
            this_round[index] = Some(response.millis);
        }
        if round == 0 {
            progress(format_args!(
                "review: untimed round: {}",
                scenarios
                    .iter()
                    .zip(&this_round)
                    .map(|(s, ms)| format!("{} {:.0} ms", s.label, ms.unwrap_or(0.0)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        } else if let (Some(shell), Some(first)) = (this_round[0], this_round[1]) {
            page_sums.push(shell + first);
        }
        if round > 0 && (round == 1 || round % 10 == 0) {
            progress(format_args!(
                "review: round {round} of {rounds} ({:.0} s so far)",
                round_started.elapsed().as_secs_f64()
            ));
        }
    }
    memory.push((
        format!(
            "after {} queue requests",
            scenarios.iter().map(|s| s.runs + 1).sum::<usize>()
        ),
        memory_of(pid)?,
    ));

    // The previews of a 12-megapixel photo.
    progress(format_args!(
        "review: a {PHOTO_WIDTH}x{PHOTO_HEIGHT} JPEG into the quarantine bucket; \
         {PREVIEW_RUNS} previews and {REVEAL_RUNS} reveals"
    ));
    let jpeg = photo_jpeg()?;
    let case = cases
        .iter()
        .find(|c| c.status == CaseStatus::PendingReview)
        .context("no pending case")?;
    let location = case
        .quarantine
        .as_ref()
        .context("a pending case's quarantine")?;
    s3.put_object()
        .bucket(&location.bucket)
        .key(&location.key)
        .content_type("image/jpeg")
        .body(ByteStream::from(jpeg.clone()))
        .send()
        .await
        .with_context(|| format!("putting s3://{}/{}", location.bucket, location.key))?;
    let preview_path = format!("/api/cases/{}/preview", case.case_id);
    let reveal_path = format!("/api/cases/{}/reveal", case.case_id);
    let reveal_body = r#"{"reason":"benchmark: the preview's cost"}"#;
    let mut preview_millis = Vec::new();
    let mut reveal_millis = Vec::new();
    let mut preview_png_bytes = 0;
    for run in 0..=PREVIEW_RUNS.max(REVEAL_RUNS) {
        if run <= PREVIEW_RUNS {
            let response = http.get(&preview_path).await?;
            expect_png(&preview_path, &response)?;
            preview_png_bytes = response.body.len();
            if run > 0 {
                preview_millis.push(response.millis);
            }
        }
        if run <= REVEAL_RUNS {
            let response = http.post(&reveal_path, reveal_body).await?;
            expect_png(&reveal_path, &response)?;
            if run > 0 {
                reveal_millis.push(response.millis);
            }
        }
    }
    memory.push((
        format!(
            "after {} previews and {} reveals of the photo",
            PREVIEW_RUNS + 1,
            REVEAL_RUNS + 1
        ),
        memory_of(pid)?,
    ));

    // The chain the batch writes and the appends made together is whole.
    let admin = Http {
        token: stack.sign_in("admin-a").await,
        ..http
    };
    let response = admin.get("/api/audit/verify").await?;
    let verification: Value = serde_json::from_slice(&response.body)?;
    ensure!(
        response.status == 200 && verification["ok"] == Value::Bool(true),
        "the audit chain does not verify: {} {verification}",
        response.status
    );
    let chain_entries = verification["entries"].as_u64().unwrap_or(0);
    drop(api);

    Ok(ReviewReport {
        cases: cases.len(),
        escalated: cases.iter().filter(|c| c.status == FILTERED).count(),
        item_bytes,
        write_secs,
        audit_write_secs,
        scenarios,
        page_sums,
        jpeg_bytes: jpeg.len(),
        preview_millis,
        reveal_millis,
        preview_png_bytes,
        memory,
        chain_entries,
    })
}

/// The cases, in queue order (oldest first).
fn generate(
    count: usize,
    upload_bucket: &str,
    quarantine_bucket: &str,
    now: Timestamp,
) -> Vec<CaseRecord> {
    let first_second = now.as_second() - DAYS * 86_400;
    let mut cases: Vec<CaseRecord> = (0..count as u64)
        .map(|i| {
            let mut rng = SplitMix64::new(CASE_SEED ^ mix64(i));
            let mut pick = rng.below(1000);
            let status = STATUS_MIX
                .iter()
                .find(|(_, share)| {
                    let hit = pick < *share;
                    pick = pick.saturating_sub(*share);
                    hit
                })
                .map_or(CaseStatus::PendingReview, |(s, _)| *s);
            let bucket = match rng.below(10) {
                0..=6 => upload_bucket,
                7 | 8 => OTHER_BUCKETS[0],
                _ => OTHER_BUCKETS[1],
            };
            let digest = |rng: &mut SplitMix64, algorithm: Algorithm| {
                let raw: Vec<u8> = (0..algorithm.byte_len())
                    .map(|_| rng.below(256) as u8)
                    .collect();
                Digest::new(algorithm, &raw).expect("the algorithm's length")
            };
            let md5 = digest(&mut rng, Algorithm::Md5);
            // Most lists need MD5 only; the rest need all three.
            let digests: Vec<Digest> = if rng.below(10) < 6 {
                vec![md5]
            } else {
                vec![
                    md5,
                    digest(&mut rng, Algorithm::Sha1),
                    digest(&mut rng, Algorithm::Sha256),
                ]
            };
            let object = ObjectRef {
                bucket: bucket.to_string(),
                key: format!("users/{:05}/{:016x}.jpg", rng.below(50_000), rng.next_u64()),
                version_id: Some(format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64())),
                etag: Some(md5.to_hex()),
            };
            let case_id = object.case_id();
            let matches = (0..if rng.below(100) < 12 { 2 } else { 1 })
                .map(|_| {
                    let digest = digests[rng.below(digests.len() as u64) as usize];
                    let list = LISTS[match rng.below(10) {
                        0..=5 => 0,
                        6..=8 => 1,
                        _ => 2,
                    }];
                    Match {
                        distance: None,
                        algorithm: digest.algorithm(),
                        digest,
                        list: list.to_string(),
                        category: (rng.below(5) > 0)
                            .then(|| CATEGORIES[rng.below(4) as usize].to_string()),
                        id: Some(format!("{list}-{}", rng.below(10_000_000))),
                    }
                })
                .collect();
            let created_at = Timestamp::new(
                first_second + rng.below(DAYS as u64 * 86_400) as i64,
                rng.below(1_000_000_000) as i32,
            )
            .expect("an instant in range");
            let at = |seconds: u64| {
                Timestamp::from_second(created_at.as_second() + seconds as i64)
                    .expect("an instant in range")
            };
            let review = |reviewer: &str, decision: Decision, seconds: u64| Review {
                reviewer: reviewer.to_string(),
                decision,
                classification: (decision == Decision::Confirm).then_some(Classification::A2),
                reason: format!("{} after review", decision.as_str()),
                at: at(seconds),
            };
            let reviews = match status {
                CaseStatus::AwaitingSecondReview => {
                    vec![review("reviewer-a", Decision::Confirm, 3_600)]
                }
                CaseStatus::Escalated => vec![review("reviewer-a", Decision::Escalate, 3_600)],
                CaseStatus::Confirmed => vec![
                    review("reviewer-a", Decision::Confirm, 3_600),
                    review("reviewer-b", Decision::Confirm, 7_200),
                ],
                CaseStatus::Released | CaseStatus::Releasing => {
                    vec![review("reviewer-b", Decision::FalsePositive, 3_600)]
                }
                _ => vec![],
            };
            let held = matches!(status, CaseStatus::HeldInPlace | CaseStatus::ContentGone);
            CaseRecord {
                quarantine: (!held)
                    .then(|| QuarantineLocation::for_case(quarantine_bucket, &case_id)),
                restored_to: (status == CaseStatus::Released).then(|| RestoredTo {
                    bucket: object.bucket.clone(),
                    key: object.key.clone(),
                    version_id: Some(format!("{:016x}", rng.next_u64())),
                }),
                classification: (status == CaseStatus::Confirmed).then_some(Classification::A2),
                revision: reviews.len() as u64,
                upload_facts: Default::default(),
                followups: Vec::new(),
                legal_hold: None,
                case_id,
                size: 10_240 + rng.below(8 << 20),
                digests: digests
                    .iter()
                    .map(|d| (d.algorithm().name().to_string(), d.to_hex()))
                    .collect(),
                matches,
                status,
                created_at,
                uploaded_at: Some(
                    Timestamp::from_second(created_at.as_second() - 2)
                        .expect("an instant in range"),
                ),
                reviews,
                object,
            }
        })
        .collect();
    cases.sort_by_cached_key(created_key);
    cases
}

/// Each case's first audit entry, as the scanner appended them (in creation order).
fn first_entries(cases: &[CaseRecord]) -> Vec<ChainedEntry> {
    let mut chain: Vec<ChainedEntry> = Vec::with_capacity(cases.len());
    for case in cases {
        let (action, detail) = match (&case.quarantine, case.status) {
            (Some(q), _) => (
                AuditAction::Quarantined,
                format!("copied to s3://{}/{}", q.bucket, q.key),
            ),
            (None, CaseStatus::HeldInPlace) => {
                (AuditAction::HeldInPlace, "tagged in place".to_string())
            }
            (None, _) => (
                AuditAction::ContentGone,
                "the scanned version was gone or replaced before it could be copied".to_string(),
            ),
        };
        let entry = AuditEntry::new(&case.case_id, case.created_at, "scanner", action, detail);
        let linked = link(chain.last(), entry);
        chain.push(linked);
    }
    chain
}

/// The page the adapter serves for `query`, and what its Query calls read (see the module's
/// documentation).
fn replay(cases: &[CaseRecord], keys: &[String], query: &CaseQuery) -> Replayed {
    let start = query
        .after
        .as_ref()
        .map_or(0, |after| keys.partition_point(|k| k <= after));
    let rest = &cases[start..];
    let mut taken: Vec<&CaseRecord> = Vec::new();
    let (mut examined, mut calls, mut read) = (0, 0, 0);
    let next = 'paging: loop {
        let page = (query.limit + 1)
            .max(QUERY_ITEMS)
            .min(SCAN_BUDGET - examined);
        let chunk = &rest[read..(read + page).min(rest.len())];
        read += chunk.len();
        calls += 1;
        examined += chunk.len().max(1);
        for case in chunk {
            if !query.matches(case) {
                continue;
            }
            if taken.len() == query.limit {
                break 'paging taken.last().map(|c| created_key(c));
            }
            taken.push(case);
        }
        if read == rest.len() {
            break None;
        }
        if taken.len() == query.limit {
            break taken.last().map(|c| created_key(c));
        }
        if examined >= SCAN_BUDGET {
            break Some(created_key(&rest[read - 1]));
        }
    };
    Replayed {
        case_ids: taken.iter().map(|c| c.case_id.clone()).collect(),
        next,
        examined,
        calls,
        matching: cases.iter().filter(|c| query.matches(c)).count(),
    }
}

/// The served page is the replayed one.
fn check_page(path: &str, body: &[u8], expected: &Replayed) -> Result<()> {
    let page: Value = serde_json::from_slice(body).with_context(|| format!("{path}: JSON"))?;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .with_context(|| format!("{path}: no items"))?
        .iter()
        .filter_map(|c| c["case_id"].as_str())
        .collect();
    let next = page["next_cursor"].as_str();
    if ids != expected.case_ids || next != expected.next.as_deref() {
        bail!(
            "{path}: the served page ({} cases, next {next:?}) is not the replayed one ({} \
             cases, next {:?}): the adapter's paging changed, update bench/src/review.rs",
            ids.len(),
            expected.case_ids.len(),
            expected.next
        );
    }
    Ok(())
}

fn expect_png(path: &str, response: &Response) -> Result<()> {
    ensure!(
        response.status == 200 && response.content_type == "image/png",
        "{path}: {} {} {}",
        response.status,
        response.content_type,
        String::from_utf8_lossy(&response.body[..response.body.len().min(300)])
    );
    Ok(())
}

/// Percent-encoding for a query value (a cursor has `:` and `#`).
fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An item's size as DynamoDB counts it (names and values).
fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
                    _ => 0,
                }
        })
        .sum()
}

async fn batch_write(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    items: Vec<HashMap<String, AttributeValue>>,
) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in items.chunks(WRITE_BATCH) {
        let requests = chunk
            .iter()
            .map(|item| {
                Ok(WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item.clone())).build()?)
                    .build())
            })
            .collect::<Result<Vec<_>>>()?;
        let (client, table) = (client.clone(), table.to_string());
        tasks.spawn(async move { write_batch(&client, &table, requests).await });
        while tasks.len() >= WRITES_IN_FLIGHT {
            tasks.join_next().await.expect("a task")??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// One BatchWriteItem, sending what comes back unprocessed again.
async fn write_batch(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    mut requests: Vec<WriteRequest>,
) -> Result<()> {
    for attempt in 0..10 {
        let out = client
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .with_context(|| format!("BatchWriteItem into {table}"))?;
        match out.unprocessed_items().and_then(|u| u.get(table)) {
            Some(rest) if !rest.is_empty() => requests = rest.clone(),
            _ => return Ok(()),
        }
        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
    }
    bail!("BatchWriteItem into {table}: items still unprocessed after 10 attempts")
}

/// A photo-like 12-megapixel JPEG: gradients, shaded discs, a band of fine texture and
/// per-pixel noise, at quality 90.
fn photo_jpeg() -> Result<Vec<u8>> {
    let mut rng = SplitMix64::new(PHOTO_SEED);
    let discs: Vec<(f32, f32, f32, f32)> = (0..10)
        .map(|_| {
            (
                rng.below(u64::from(PHOTO_WIDTH)) as f32,
                rng.below(u64::from(PHOTO_HEIGHT)) as f32,
                150.0 + rng.below(450) as f32,
                0.4 + rng.below(50) as f32 / 100.0,
            )
        })
        .collect();
    let image = RgbImage::from_fn(PHOTO_WIDTH, PHOTO_HEIGHT, |x, y| {
        let (xf, yf) = (x as f32, y as f32);
        let t = yf / PHOTO_HEIGHT as f32;
        let mut pixel = [100.0 + 110.0 * t, 150.0 + 50.0 * t, 235.0 - 140.0 * t];
        for &(cx, cy, r, shade) in &discs {
            if (xf - cx).powi(2) + (yf - cy).powi(2) < r * r {
                pixel = pixel.map(|c| c * shade);
            }
        }
        if (2000..2500).contains(&y) && (x / 4 + y / 5) % 2 == 0 {
            pixel = pixel.map(|c| c + 30.0);
        }
        let noise = rng.below(17) as f32 - 8.0;
        Rgb(pixel.map(|c| (c + noise).clamp(0.0, 255.0) as u8))
    });
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, PHOTO_QUALITY)
        .encode_image(&image)
        .context("encoding the JPEG")?;
    Ok(jpeg)
}

fn memory_of(pid: u32) -> Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kib = |field: &str| -> Result<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("{path}: no {field}"))
    };
    Ok(Memory {
        hwm_kib: kib("VmHWM:")?,
        rss_kib: kib("VmRSS:")?,
    })
}

/// The review function's HTTP API with a reviewer's token.
struct Http {
    client: reqwest::Client,
    base: String,
    token: String,
}

struct Response {
    /// From sending the request to the whole body received.
    millis: f64,
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Http {
    async fn get(&self, path: &str) -> Result<Response> {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post(&self, path: &str, json: &str) -> Result<Response> {
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(json.to_string()),
        )
        .await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Response> {
        let request = request.bearer_auth(&self.token).build()?;
        let path = request.url().path().to_string();
        let started = Instant::now();
        let response = self
            .client
            .execute(request)
            .await
            .with_context(|| format!("requesting {path}"))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = response.bytes().await?.to_vec();
        Ok(Response {
            millis: started.elapsed().as_secs_f64() * 1e3,
            status,
            content_type,
            body,
        })
    }
}

/// The nearest-rank `q` quantile of `values`.
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl ReviewReport {
    /// The filtered page's median over its Query calls, if it made more than one.
    fn per_query_call(&self) -> Option<f64> {
        let filtered = self.scenarios.iter().find(|s| s.label == "filtered page")?;
        let calls = filtered.replay.as_ref()?.calls;
        (calls > 1).then(|| Samples::new(filtered.millis.clone()).median() / calls as f64)
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "### The review queue with {} cases on the local stack\n\n\
             The release `review-api` binary on a private local stack: DynamoDB, S3, KMS and \
             the Cognito user pool are the **moto** emulator (Python), so these are emulator \
             numbers; DynamoDB's own latency is not represented. {} cases (about {} bytes an \
             item: statuses {}, three origin buckets, three lists, four categories, MD5 or \
             all three digests, created over {DAYS} days) written straight into the case \
             table in {:.1} s, their first audit entries linked into one chain and written in \
             {:.1} s. One request at a time on one keep-alive connection with a reviewer's \
             access token, after one untimed request of each; then round by round, a \
             different request first each round, the filtered page in fewer rounds spread \
             evenly (it costs many Query calls). Quantiles by nearest rank: with 100 runs or \
             fewer, the p99 is the largest. Index items examined are the adapter's paging replayed over the \
             written cases (Query pages of {QUERY_ITEMS} items, at most {} a request), and \
             the replayed pages equal the served ones. moto answers every index Query by \
             reading and sorting the whole table, whatever the page.\n",
            thousands(self.cases as f64),
            thousands(self.cases as f64),
            self.item_bytes,
            STATUS_MIX
                .iter()
                .map(|(s, share)| format!("{s} {:.0}%", *share as f64 / 10.0))
                .collect::<Vec<_>>()
                .join(", "),
            self.write_secs,
            self.audit_write_secs,
            thousands(SCAN_BUDGET as f64),
        );
        let _ = writeln!(
            md,
            "| request | answer | index items examined (Query calls) | runs | median ms | p90 ms | p99 ms |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|");
        for s in &self.scenarios {
            let (answer, examined) = match &s.replay {
                None => ("HTML, no data".to_string(), "–".to_string()),
                Some(r) => (
                    format!(
                        "{} of {} matching cases{}",
                        r.case_ids.len(),
                        thousands(r.matching as f64),
                        if r.next.is_some() {
                            ", and a cursor"
                        } else {
                            ""
                        }
                    ),
                    format!("{} ({})", thousands(r.examined as f64), r.calls),
                ),
            };
            let _ = writeln!(
                md,
                "| {} | {answer} | {examined} | {} | {:.1} | {:.1} | {:.1} |",
                s.name,
                s.millis.len(),
                Samples::new(s.millis.clone()).median(),
                quantile(&s.millis, 0.9),
                quantile(&s.millis, 0.99),
            );
        }
        let _ = writeln!(
            md,
            "| **the queue page**: `GET /` and the first page, summed per round | | | {} | {:.1} | {:.1} | {:.1} |",
            self.page_sums.len(),
            Samples::new(self.page_sums.clone()).median(),
            quantile(&self.page_sums, 0.9),
            quantile(&self.page_sums, 0.99),
        );
        let _ = writeln!(
            md,
            "\nThe page's static script and style and `/api/me` are not counted. The \
             {} escalated cases ({:.0}%) are spread over the queue, so a filtered page reads \
             on, {QUERY_ITEMS} index items a Query call, until it has {PAGE} cases or reaches \
             the end{}.\n",
            thousands(self.escalated as f64),
            100.0 * self.escalated as f64 / self.cases as f64,
            self.per_query_call()
                .map(|ms| format!(
                    ": at the median, {ms:.0} ms per Query call, the emulator's price of \
                     one Query over this table"
                ))
                .unwrap_or_default(),
        );
        let _ = writeln!(
            md,
            "Previews over HTTP of a generated {PHOTO_WIDTH}x{PHOTO_HEIGHT} photo-like JPEG \
             ({}, quality {PHOTO_QUALITY}) at a case's quarantine location: each request \
             reads the case, reads the object from the emulator's S3, renders (decode, \
             downscale, grayscale, blur, PNG) and appends an audit entry (a reveal also \
             counts against the reviewer's daily limit). After one untimed request of each.\n",
            size(self.jpeg_bytes as u64)
        );
        let _ = writeln!(md, "| request | runs | median ms | max ms | answer |");
        let _ = writeln!(md, "|---|---:|---:|---:|---|");
        for (name, values, answer) in [
            (
                "`GET /api/cases/{id}/preview` (blurred)",
                &self.preview_millis,
                format!("PNG, {} bytes", self.preview_png_bytes),
            ),
            (
                "`POST /api/cases/{id}/reveal` (less blurred)",
                &self.reveal_millis,
                "PNG".to_string(),
            ),
        ] {
            let _ = writeln!(
                md,
                "| {name} | {} | {:.1} | {:.1} | {answer} |",
                values.len(),
                Samples::new(values.clone()).median(),
                quantile(values, 1.0),
            );
        }
        let _ = writeln!(
            md,
            "\nPeak memory of the review function (the `review-api` process; the emulator \
             is another process): `VmHWM` and `VmRSS` of `/proc/<pid>/status`.\n"
        );
        let _ = writeln!(md, "| when | peak (VmHWM) MiB | resident (VmRSS) MiB |");
        let _ = writeln!(md, "|---|---:|---:|");
        for (when, m) in &self.memory {
            let _ = writeln!(
                md,
                "| {when} | {:.1} | {:.1} |",
                mib(m.hwm_kib),
                mib(m.rss_kib)
            );
        }
        let _ = writeln!(
            md,
            "\nAfterwards the audit chain verifies (`GET /api/audit/verify`): {} entries, \
             the batch-written ones and those the previews and reveals appended.",
            thousands(self.chain_entries as f64)
        );
        md
    }
}
