//! Hash-list sync and signed filters:
//!
//! 1. at full size: the filter snapshot built from the digests in memory (what
//!    `list_import::build_filter` does after its table scan), its size, the manifest's
//!    signature, and a scanner's verification of a published filter (`TrustedKeys::verify`,
//!    `Manifest::check_snapshot`, `FilterSnapshot::from_bytes`) next to `sha256sum` of the
//!    same snapshot file;
//! 2. on the local stack: the snapshot published with `Publisher::publish`, then a scanner's
//!    reload (`FilterSource::fetch`) from a fresh source and again with nothing changed, next
//!    to a plain S3 GET of the same snapshot object;
//! 3. on the local stack: `list_import::stage_and_commit` of a file of plain MD5 lines, fresh
//!    and again (nothing changes), with every DynamoDB request the code path makes counted by
//!    an interceptor on the client, the table's items counted before and after, and one
//!    written item's size by DynamoDB's sizing rules; then `hashgate lists import` end to end.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, ensure, Context, Result};
use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemInput;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_sdk_dynamodb::types::{AttributeValue, Select};
use hashgate_aws::dynamo::{digest_key, DynamoHashes};
use hashgate_aws::filter_source::{FilterLocation, FilterSource};
use hashgate_aws::list_import::{self, APPLY_BATCH};
use hashgate_aws::publisher::Publisher;
use hashgate_core::filter::{FilterSnapshot, Refresh, DEFAULT_FP_RATE};
use hashgate_core::lists::{ListFormat, ParseOptions};
use hashgate_core::manifest::{self, Manifest, Publication, SigningKey, TrustedKeys};
use hashgate_core::store::Op;
use hashgate_core::time::Timestamp;
use hashgate_core::{Algorithm, Digest};
use hashgate_e2e::{bin, Stack};

use crate::data::{cached_file, generated_digest, mix64, SplitMix64, MEMBER_SEED};
use crate::stats::{size, thousands, Samples};
use crate::Sizes;

/// Seeds the MD5 digests of the imported list files.
const IMPORT_SEED: u64 = 0x7379_6e63_6d64_3521;
/// Seeds the CLI's list file: digests on no other list.
const CLI_SEED: u64 = 0x7379_6e63_636c_6921;
/// Keys the benchmark's filter and signs its manifest (fixed, so runs compare).
/// (Its two halves must differ: they are the filter's two hash keys.)
const FILTER_SEED: [u8; 32] = *b"hashgate bench: sync filter seed";
const SIGNING_SEED: [u8; 32] = [0x42; 32];
/// Signatures timed per run, for a resolution well below a microsecond.
const SIGNATURES: u32 = 1_000;
/// On-demand prices in us-east-1 as of this writing, dollars per million request units.
const WRU_DOLLARS: f64 = 1.25;
const RRU_DOLLARS: f64 = 0.25;
/// Largest DynamoDB item one write unit covers, and one read unit.
const WRITE_UNIT_BYTES: u64 = 1024;
const READ_UNIT_BYTES: u64 = 4096;
/// The heading of this part's subsection of the results.
pub const HEADING: &str = "### Hash-list sync and signed filters";
/// The list the imported entries belong to.
const LIST_NAME: &str = "bench-sync";

/// Everything measured; the stack parts are `Err` with the reason when they could not run.
pub struct SyncReport {
    entries: u64,
    build_secs: Samples,
    snapshot_bytes: u64,
    sign_us: Samples,
    verify_manifest_us: Samples,
    check_ms: Samples,
    parse_ms: Samples,
    verify_total_ms: Samples,
    sha256sum_ms: Samples,
    sha256sum_tool: String,
    stack: std::result::Result<StackFigures, String>,
}

struct StackFigures {
    publish_secs: f64,
    cold_fetch_ms: Samples,
    unchanged_fetch_ms: Samples,
    plain_get_ms: Samples,
    import: ImportFigures,
}

struct ImportFigures {
    entries: u64,
    fresh_secs: f64,
    fresh: Counts,
    fresh_items_written: u64,
    again_secs: f64,
    again: Counts,
    again_items_written: u64,
    item_bytes: u64,
    cli: std::result::Result<(u64, f64), String>,
}

/// DynamoDB requests a client made, by kind, and the items in them.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    batch_get_requests: u64,
    /// Keys asked for (strongly consistent: `batch_get` sets `consistent_read`).
    items_read: u64,
    batch_write_requests: u64,
    puts: u64,
    deletes: u64,
    update_items: u64,
    other: u64,
}

/// Counts each request's kind and items as the DynamoDB client sends it (one count per
/// call; the store's own retries of unprocessed items are calls of their own).
#[derive(Debug, Default)]
struct RequestCounter {
    batch_get_requests: AtomicU64,
    items_read: AtomicU64,
    batch_write_requests: AtomicU64,
    puts: AtomicU64,
    deletes: AtomicU64,
    update_items: AtomicU64,
    other: AtomicU64,
}

impl RequestCounter {
    fn take(&self) -> Counts {
        let t = |a: &AtomicU64| a.swap(0, Ordering::SeqCst);
        Counts {
            batch_get_requests: t(&self.batch_get_requests),
            items_read: t(&self.items_read),
            batch_write_requests: t(&self.batch_write_requests),
            puts: t(&self.puts),
            deletes: t(&self.deletes),
            update_items: t(&self.update_items),
            other: t(&self.other),
        }
    }
}

#[derive(Debug)]
struct Counting(Arc<RequestCounter>);

impl Intercept for Counting {
    fn name(&self) -> &'static str {
        "hashgate-bench request counter"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let c = &self.0;
        let add = |a: &AtomicU64, n: usize| a.fetch_add(n as u64, Ordering::SeqCst);
        let input = context.input();
        if let Some(get) = input.downcast_ref::<BatchGetItemInput>() {
            add(&c.batch_get_requests, 1);
            let keys = get
                .request_items()
                .map_or(0, |r| r.values().map(|k| k.keys().len()).sum());
            add(&c.items_read, keys);
        } else if let Some(write) = input.downcast_ref::<BatchWriteItemInput>() {
            add(&c.batch_write_requests, 1);
            for request in write.request_items().into_iter().flat_map(|r| r.values()) {
                for r in request {
                    if r.put_request().is_some() {
                        add(&c.puts, 1);
                    } else if r.delete_request().is_some() {
                        add(&c.deletes, 1);
                    }
                }
            }
        } else if input.downcast_ref::<UpdateItemInput>().is_some() {
            add(&c.update_items, 1);
        } else {
            add(&c.other, 1);
        }
        Ok(())
    }
}

pub fn run(data_dir: &Path, sizes: &Sizes) -> Result<SyncReport> {
    let work = data_dir.join("sync");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let entries = sizes.entries;
    crate::progress(format_args!(
        "sync: generating {} digests",
        thousands(entries as f64)
    ));
    let digests: Vec<Digest> = (0..entries)
        .map(|i| generated_digest(MEMBER_SEED, i))
        .collect();
    let mut built = None;
    let mut build = Vec::with_capacity(sizes.build_runs);
    for run in 1..=sizes.build_runs {
        crate::progress(format_args!(
            "sync: snapshot build, run {run} of {}",
            sizes.build_runs
        ));
        drop(built.take());
        let started = Instant::now();
        let mut builder = FilterSnapshot::builder(entries, DEFAULT_FP_RATE, FILTER_SEED)?;
        for d in &digests {
            builder.insert(d);
        }
        let snapshot = builder.finish(1, Timestamp::now())?;
        build.push(started.elapsed().as_secs_f64());
        built = Some(snapshot);
    }
    drop(digests);
    let snapshot = built.context("at least one build")?;
    let bytes = snapshot.to_bytes();
    let file = work.join("snapshot.bin");
    std::fs::write(&file, &bytes).with_context(|| format!("writing {}", file.display()))?;

    let key = SigningKey::from_seed(SIGNING_SEED);
    let trusted = TrustedKeys::new(vec![key.public()]).map_err(|e| anyhow!("{e}"))?;
    let manifest = Manifest {
        sequence: 1,
        snapshot: manifest::snapshot_key(1, &manifest::sha256_hex(&bytes)),
        size: bytes.len() as u64,
        sha256: manifest::sha256_hex(&bytes),
        store_version: snapshot.info().store_version,
        entries: snapshot.info().entries,
        published_at: Timestamp::now(),
        publication: Publication::Build,
        key_id: key.public().id(),
    };
    let mut sign_us = Vec::new();
    let mut signed = Vec::new();
    for _ in 0..sizes.load_runs {
        let started = Instant::now();
        for _ in 0..SIGNATURES {
            signed = std::hint::black_box(key.sign(std::hint::black_box(&manifest)));
        }
        sign_us.push(started.elapsed().as_secs_f64() * 1e6 / f64::from(SIGNATURES));
    }

    let tool = sha256_tool()?;
    let (mut verify_us, mut check_ms, mut parse_ms, mut total_ms, mut reference_ms) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 1..=sizes.load_runs {
        crate::progress(format_args!(
            "sync: verification and {}, run {run} of {}",
            tool.0, sizes.load_runs
        ));
        // The scanner's steps on bytes it has just fetched (read back from the file, as
        // the reference reads it).
        let fetched =
            std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let started = Instant::now();
        let m = trusted
            .verify(&signed, "bench manifest")
            .map_err(|e| anyhow!("{e}"))?;
        let verified = started.elapsed();
        m.check_snapshot(&fetched).map_err(|e| anyhow!("{e}"))?;
        let checked = started.elapsed();
        let parsed = FilterSnapshot::from_bytes(&fetched, "bench snapshot")?;
        let done = started.elapsed();
        ensure!(
            parsed.info().entries == entries,
            "the parsed snapshot's entries"
        );
        verify_us.push(verified.as_secs_f64() * 1e6);
        check_ms.push((checked - verified).as_secs_f64() * 1e3);
        parse_ms.push((done - checked).as_secs_f64() * 1e3);
        total_ms.push(done.as_secs_f64() * 1e3);
        drop(parsed);
        reference_ms.push(time_sha256_tool(&tool, &file, &manifest.sha256)? * 1e3);
    }

    let stack = run_stack(&work, &snapshot, sizes).map_err(|e| format!("{e:#}"));
    if let Err(e) = &stack {
        crate::progress(format_args!("sync: the stack parts did not run: {e}"));
    }
    Ok(SyncReport {
        entries,
        build_secs: Samples::new(build),
        snapshot_bytes: bytes.len() as u64,
        sign_us: Samples::new(sign_us),
        verify_manifest_us: Samples::new(verify_us),
        check_ms: Samples::new(check_ms),
        parse_ms: Samples::new(parse_ms),
        verify_total_ms: Samples::new(total_ms),
        sha256sum_ms: Samples::new(reference_ms),
        sha256sum_tool: tool.0,
        stack,
    })
}

/// `sha256sum`, else `openssl dgst -sha256`.
fn sha256_tool() -> Result<(String, Vec<String>)> {
    for (program, args) in [("sha256sum", vec![]), ("openssl", vec!["dgst", "-sha256"])] {
        let found = Command::new(program)
            .args(&args)
            .arg("/dev/null")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if found {
            let name = std::iter::once(program)
                .chain(args.iter().copied())
                .collect::<Vec<_>>()
                .join(" ");
            return Ok((name, args.into_iter().map(str::to_owned).collect()));
        }
    }
    Err(anyhow!("neither sha256sum nor openssl is installed"))
}

/// Seconds of one run of the tool over `file`, whose digest must be `expected`.
fn time_sha256_tool(tool: &(String, Vec<String>), file: &Path, expected: &str) -> Result<f64> {
    let program = tool.0.split_whitespace().next().unwrap_or("sha256sum");
    let started = Instant::now();
    let out = Command::new(program)
        .args(&tool.1)
        .arg(file)
        .stderr(Stdio::null())
        .output()
        .with_context(|| format!("running {}", tool.0))?;
    let secs = started.elapsed().as_secs_f64();
    ensure!(out.status.success(), "{} {} failed", tool.0, file.display());
    ensure!(
        String::from_utf8_lossy(&out.stdout).contains(expected),
        "{} disagrees with the manifest's SHA-256",
        tool.0
    );
    Ok(secs)
}

fn run_stack(work: &Path, snapshot: &FilterSnapshot, sizes: &Sizes) -> Result<StackFigures> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(stack_figures(work, snapshot, sizes))
        .context(
            "the sync benchmark's stack parts need the local stack: run `make venv` and build the \
         release CLI (make bench does both)",
        )
}

async fn stack_figures(
    work: &Path,
    snapshot: &FilterSnapshot,
    sizes: &Sizes,
) -> Result<StackFigures> {
    crate::progress("sync: starting the local stack");
    let stack = Stack::start();
    let sdk = stack.sdk().await;
    let s3 = hashgate_aws::s3_client(&sdk);
    let bucket = stack.var("HASHGATE_FILTER_BUCKET").to_string();
    let trusted =
        TrustedKeys::parse(stack.var("HASHGATE_FILTER_PUBLIC_KEYS")).map_err(|e| anyhow!("{e}"))?;
    let source = hashgate_aws::signing::source_from_vars(|n| stack.env().get(n).cloned())
        .map_err(|e| anyhow!(e))?;
    let key = hashgate_aws::signing::load(&sdk, &source)
        .await
        .map_err(|e| anyhow!(e))?;
    let publisher = Publisher::new(s3.clone(), bucket.clone(), trusted.clone(), 10);
    crate::progress("sync: publishing the snapshot");
    let started = Instant::now();
    let published = publisher
        .publish(&key, snapshot, Timestamp::now())
        .await
        .map_err(|e| anyhow!(e))?;
    let publish_secs = started.elapsed().as_secs_f64();

    let (mut cold, mut unchanged, mut plain) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=sizes.load_runs {
        crate::progress(format_args!(
            "sync: scanner reload, run {run} of {}",
            sizes.load_runs
        ));
        let mut source = FilterSource::new(
            s3.clone(),
            FilterLocation {
                bucket: bucket.clone(),
            },
            trusted.clone(),
        );
        let started = Instant::now();
        let first = source.fetch().await;
        cold.push(started.elapsed().as_secs_f64() * 1e3);
        match first {
            Refresh::Loaded(f) => ensure!(
                f.info().entries == snapshot.info().entries,
                "the reloaded filter's entries"
            ),
            other => return Err(anyhow!("the first fetch did not load: {other:?}")),
        }
        let started = Instant::now();
        let again = source.fetch().await;
        unchanged.push(started.elapsed().as_secs_f64() * 1e3);
        ensure!(
            matches!(again, Refresh::Unchanged),
            "the second fetch was not unchanged: {again:?}"
        );
        let started = Instant::now();
        let body = s3
            .get_object()
            .bucket(&bucket)
            .key(&published.snapshot)
            .send()
            .await
            .context("GET of the snapshot")?
            .body
            .collect()
            .await
            .context("the snapshot's body")?
            .into_bytes();
        plain.push(started.elapsed().as_secs_f64() * 1e3);
        ensure!(body.len() as u64 == published.size, "the plain GET's size");
    }

    let import = import_figures(&stack, &sdk, work, sizes).await?;
    Ok(StackFigures {
        publish_secs,
        cold_fetch_ms: Samples::new(cold),
        unchanged_fetch_ms: Samples::new(unchanged),
        plain_get_ms: Samples::new(plain),
        import,
    })
}

/// A file of `n` plain MD5 lines from `seed` (kept for later runs).
fn md5_list(work: &Path, seed: u64, n: u64) -> Result<PathBuf> {
    cached_file(work, &format!("md5-{seed:016x}-{n}.txt"), |out| {
        for i in 0..n {
            writeln!(out, "{}", md5_digest(seed, i).to_hex())?;
        }
        Ok(())
    })
}

fn md5_digest(seed: u64, index: u64) -> Digest {
    let mut rng = SplitMix64::new(seed ^ mix64(index));
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
    raw[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
    Digest::new(Algorithm::Md5, &raw).expect("16 bytes")
}

async fn import_figures(
    stack: &Stack,
    sdk: &aws_config::SdkConfig,
    work: &Path,
    sizes: &Sizes,
) -> Result<ImportFigures> {
    let n = sizes.sync_import_entries;
    let list = md5_list(work, IMPORT_SEED, n)?;
    let counter = Arc::new(RequestCounter::default());
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .interceptor(Counting(counter.clone()))
        .build();
    let dynamo = aws_sdk_dynamodb::Client::from_conf(config);
    let table = stack.var("HASHGATE_HASH_TABLE").to_string();
    let plain = aws_sdk_dynamodb::Client::new(sdk);
    let hashes = DynamoHashes::new(dynamo, table.clone());
    let options = ParseOptions {
        source_name: list.display().to_string(),
        default_list: LIST_NAME.to_string(),
        algorithm: None,
    };

    let before = count_items(&plain, &table).await?;
    counter.take();
    crate::progress(format_args!(
        "sync: importing {} MD5 entries into the hash table",
        thousands(n as f64)
    ));
    let fresh_secs = import_once(&hashes, &list, &options).await?;
    let fresh = counter.take();
    let after = count_items(&plain, &table).await?;
    crate::progress("sync: importing the same file again");
    let again_secs = import_once(&hashes, &list, &options).await?;
    let again = counter.take();
    let after_again = count_items(&plain, &table).await?;

    let written = plain
        .get_item()
        .table_name(&table)
        .key(
            "digest",
            AttributeValue::S(digest_key(&md5_digest(IMPORT_SEED, 0))),
        )
        .consistent_read(true)
        .send()
        .await
        .context("reading back an imported item")?
        .item
        .context("the first imported digest is not in the table")?;
    let item_bytes = item_size(&written);

    let cli = cli_import(stack, work, n).await;
    if let Err(e) = &cli {
        crate::progress(format_args!("sync: hashgate lists import: {e}"));
    }
    Ok(ImportFigures {
        entries: n,
        fresh_secs,
        fresh,
        fresh_items_written: after.saturating_sub(before),
        again_secs,
        again,
        again_items_written: after_again.saturating_sub(after),
        item_bytes,
        cli: cli.map_err(|e| format!("{e:#}")),
    })
}

async fn import_once(hashes: &DynamoHashes, list: &Path, options: &ParseOptions) -> Result<f64> {
    let owned = list.to_path_buf();
    let reopen: list_import::Reopen = Box::new(move || {
        let file = std::fs::File::open(&owned)?;
        Ok(Box::new(std::io::BufReader::new(file)) as Box<dyn std::io::Read + Send>)
    });
    let started = Instant::now();
    list_import::stage_and_commit(hashes, reopen, ListFormat::Plain, options, Op::Add)
        .await
        .map_err(|e| anyhow!(e))?;
    Ok(started.elapsed().as_secs_f64())
}

/// `hashgate lists import` of `n` new MD5 digests: guards, staging, commit, the filter
/// rebuilt from the whole table and published signed. Returns the entries and seconds.
async fn cli_import(stack: &Stack, work: &Path, n: u64) -> Result<(u64, f64)> {
    let list = md5_list(work, CLI_SEED, n)?;
    crate::progress(format_args!(
        "sync: hashgate lists import of {} MD5 entries",
        thousands(n as f64)
    ));
    let mut command = stack.command(bin("hashgate"));
    command.args(["lists", "import"]).arg(&list);
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || command.output())
        .await?
        .context("running hashgate lists import against the local stack")?;
    let secs = started.elapsed().as_secs_f64();
    ensure!(
        out.status.success(),
        "hashgate lists import {} failed: {}",
        list.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((n, secs))
}

/// Items in the table, by a counting scan (strongly consistent).
async fn count_items(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<u64> {
    let mut total = 0u64;
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    // Bounded: a page holds up to 1 MB of items, so this covers far more than any run writes.
    for _ in 0..100_000 {
        let out = client
            .scan()
            .table_name(table)
            .select(Select::Count)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .with_context(|| format!("counting the items of {table}"))?;
        total += out.count() as u64;
        match out.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return Ok(total),
        }
    }
    Err(anyhow!("{table}: the counting scan did not finish"))
}

/// An item's size by DynamoDB's rules: each attribute's name plus its value; strings and
/// binaries their length; numbers one byte per two significant digits plus one; lists and
/// maps 3 bytes plus 1 per element plus their contents; sets the sum of their members.
fn item_size(item: &HashMap<String, AttributeValue>) -> u64 {
    item.iter()
        .map(|(name, value)| name.len() as u64 + value_size(value))
        .sum()
}

fn number_size(n: &str) -> u64 {
    let digits: String = n.chars().filter(char::is_ascii_digit).collect();
    let significant = digits
        .trim_start_matches('0')
        .trim_end_matches('0')
        .len()
        .max(1);
    significant.div_ceil(2) as u64 + 1
}

fn value_size(value: &AttributeValue) -> u64 {
    match value {
        AttributeValue::S(s) => s.len() as u64,
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len() as u64,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(|s| s.len() as u64).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len() as u64).sum(),
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<u64>(),
        AttributeValue::M(m) => 3 + m.values().count() as u64 + item_size(m),
        _ => 0,
    }
}

impl Counts {
    /// Write units of the batch writes: one per put of an item up to 1 KB.
    fn write_units(&self, item_bytes: u64) -> u64 {
        (self.puts + self.deletes) * item_bytes.div_ceil(WRITE_UNIT_BYTES).max(1)
    }

    /// Read units: strongly consistent reads, one per item up to 4 KB (a key that is not
    /// there still costs the minimum).
    fn read_units(&self, item_bytes: u64) -> u64 {
        self.items_read * item_bytes.div_ceil(READ_UNIT_BYTES).max(1)
    }
}

impl SyncReport {
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let entries = self.entries as f64;
        let _ = writeln!(md, "{HEADING}\n");
        let _ = writeln!(
            md,
            "A filter snapshot at {} entries (p = {DEFAULT_FP_RATE:e}) built from the digests \
             in memory, as `list_import::build_filter` does after its table scan; its manifest \
             signed (Ed25519) and verified as a scanner does on every new filter. The \
             reference is `{}` of the same snapshot file, in the same runs (a process start \
             included, the file in the page cache).\n",
            thousands(entries),
            self.sha256sum_tool
        );
        let _ = writeln!(md, "| measure | R | result | reference |");
        let _ = writeln!(md, "|---|---:|---|---|");
        let _ = writeln!(
            md,
            "| snapshot build (`FilterSnapshot::builder`, insert, finish), s | {} | {} | |",
            self.build_secs.runs(),
            self.build_secs.show(2)
        );
        let _ = writeln!(
            md,
            "| snapshot size (`to_bytes`) | | {}, {:.2} bytes/entry | |",
            size(self.snapshot_bytes),
            self.snapshot_bytes as f64 / entries
        );
        let _ = writeln!(
            md,
            "| manifest signature (`SigningKey::sign`: canonical bytes, Ed25519, JSON), µs | {} | {} | |",
            self.sign_us.runs(),
            self.sign_us.show(1)
        );
        let _ = writeln!(
            md,
            "| `TrustedKeys::verify` of the manifest, µs | {} | {} | |",
            self.verify_manifest_us.runs(),
            self.verify_manifest_us.show(1)
        );
        let _ = writeln!(
            md,
            "| `Manifest::check_snapshot` (SHA-256 of the snapshot), ms | {} | {} | `{}`: {} ms |",
            self.check_ms.runs(),
            self.check_ms.show(1),
            self.sha256sum_tool,
            self.sha256sum_ms.show(1)
        );
        let _ = writeln!(
            md,
            "| `FilterSnapshot::from_bytes`, ms | {} | {} | |",
            self.parse_ms.runs(),
            self.parse_ms.show(1)
        );
        let _ = writeln!(
            md,
            "| verification in all (the three above), ms | {} | {} | `{}`: {} ms |",
            self.verify_total_ms.runs(),
            self.verify_total_ms.show(1),
            self.sha256sum_tool,
            self.sha256sum_ms.show(1)
        );
        md.push('\n');
        match &self.stack {
            Err(e) => {
                let _ = writeln!(
                    md,
                    "The local-stack parts (scanner reload, import into DynamoDB) did not run: \
                     {e}\n"
                );
            }
            Ok(s) => s.markdown(&mut md, self.snapshot_bytes),
        }
        md
    }
}

impl StackFigures {
    fn markdown(&self, md: &mut String, snapshot_bytes: u64) {
        let _ = writeln!(
            md,
            "On the local stack (moto, on 127.0.0.1): the snapshot above published with \
             `Publisher::publish` ({:.1} s: the current manifest read, the snapshot and the \
             signed manifest written); then a scanner's reload, `FilterSource::fetch`, from a \
             fresh source (manifest GET, verification, snapshot GET, digest check, parse) and \
             again with nothing changed (a conditional GET of the manifest answered 304), next \
             to a plain S3 GET of the same {} snapshot object.\n",
            self.publish_secs,
            size(snapshot_bytes)
        );
        let _ = writeln!(md, "| measure | R | result | reference |");
        let _ = writeln!(md, "|---|---:|---|---|");
        let _ = writeln!(
            md,
            "| reload, fresh source (`FilterSource::fetch`), ms | {} | {} | plain GET of the snapshot: {} ms |",
            self.cold_fetch_ms.runs(),
            self.cold_fetch_ms.show(0),
            self.plain_get_ms.show(0)
        );
        let _ = writeln!(
            md,
            "| reload, nothing changed (conditional GET, 304), ms | {} | {} | |",
            self.unchanged_fetch_ms.runs(),
            self.unchanged_fetch_ms.show(1)
        );
        md.push('\n');
        self.import.markdown(md);
    }
}

impl ImportFigures {
    fn markdown(&self, md: &mut String) {
        let n = self.entries as f64;
        let fresh_rate = n / self.fresh_secs;
        let again_rate = n / self.again_secs;
        let _ = writeln!(
            md,
            "Import into the hash table on the local stack: `list_import::stage_and_commit` of \
             a file of {} plain MD5 lines (batches of {}), into the table, then the same file \
             again, which changes nothing. One run each. Every DynamoDB request of the code \
             path is counted by an interceptor on its client; the table's items are counted \
             before and after. The emulator (moto, Python) is the limit here, not DynamoDB: \
             the 10,000,000-entry times are **extrapolated** linearly from these runs, not \
             measured.\n",
            thousands(n),
            thousands(APPLY_BATCH as f64)
        );
        let _ = writeln!(
            md,
            "| import | entries/s | time | 10,000,000 entries (extrapolated) |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|");
        for (what, secs, rate) in [
            ("fresh", self.fresh_secs, fresh_rate),
            ("again, nothing changes", self.again_secs, again_rate),
        ] {
            let _ = writeln!(
                md,
                "| {what}, {} entries | {} | {secs:.1} s | {:.0} min |",
                thousands(n),
                thousands(rate),
                1e7 / rate / 60.0
            );
        }
        match &self.cli {
            Ok((entries, secs)) => {
                let _ = writeln!(
                    md,
                    "| `hashgate lists import`, {} new entries, end to end (guards' pass, \
                     staging, commit, the filter rebuilt from a scan of the whole table of {} \
                     items and published) | {} | {secs:.1} s | |",
                    thousands(*entries as f64),
                    thousands(2.0 * n),
                    thousands(*entries as f64 / secs)
                );
            }
            Err(e) => {
                let _ = writeln!(md, "| `hashgate lists import` | | failed: {e} | |");
            }
        }
        md.push('\n');

        let per_million = |x: u64| x as f64 * 1e6 / n;
        let _ = writeln!(
            md,
            "Request units per million entries, counted in these runs (derived from the code \
             under \"Reading the results\"). A written MD5 entry's item is {} bytes by DynamoDB's sizing \
             rules (read back from the table), so each put is 1 write unit and each read 1 \
             read unit (`batch_get` reads strongly consistent). Begin and commit add 1 read \
             and 2 writes per import, whatever its size.\n",
            self.item_bytes
        );
        let _ = writeln!(
            md,
            "| per million entries | BatchGetItem requests | items read (RRU) | BatchWriteItem requests | puts (WRU) | items written (table count) | UpdateItem | cost on demand, us-east-1 |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for (what, c, written) in [
            ("fresh import", self.fresh, self.fresh_items_written),
            (
                "re-import, nothing changes",
                self.again,
                self.again_items_written,
            ),
        ] {
            let wru = per_million(c.write_units(self.item_bytes));
            let rru = per_million(c.read_units(self.item_bytes));
            let _ = writeln!(
                md,
                "| {what} | {} | {} | {} | {} | {} | {} per import | ${:.2} |",
                thousands(per_million(c.batch_get_requests)),
                thousands(rru),
                thousands(per_million(c.batch_write_requests)),
                thousands(wru),
                thousands(per_million(written)),
                c.update_items,
                wru * WRU_DOLLARS / 1e6 + rru * RRU_DOLLARS / 1e6
            );
            if c.deletes > 0 || c.other > 0 {
                let _ = writeln!(
                    md,
                    "| ({what}: also {} deletes, {} other requests) | | | | | | | |",
                    c.deletes, c.other
                );
            }
        }
        md.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_dynamodb_rules() {
        assert_eq!(number_size("1"), 2);
        assert_eq!(number_size("12"), 2);
        assert_eq!(number_size("123"), 3);
        assert_eq!(number_size("1000"), 2);
        let entry = AttributeValue::M(HashMap::from([
            ("list".to_string(), AttributeValue::S("ab".into())),
            ("added".to_string(), AttributeValue::N("1".into())),
        ]));
        // map: 3 + 2 elements + "list" 4 + "ab" 2 + "added" 5 + 2.
        assert_eq!(value_size(&entry), 18);
        let item = HashMap::from([
            ("digest".to_string(), AttributeValue::S("md5:x".into())),
            ("entries".to_string(), AttributeValue::L(vec![entry])),
        ]);
        // 6 + 5 + 7 + (3 + 1 + 18).
        assert_eq!(item_size(&item), 40);
    }

    #[test]
    fn md5_digests_are_fixed_by_seed() {
        assert_eq!(md5_digest(1, 7), md5_digest(1, 7));
        assert_ne!(md5_digest(1, 7), md5_digest(1, 8));
        assert_eq!(md5_digest(1, 7).algorithm(), Algorithm::Md5);
    }
}
