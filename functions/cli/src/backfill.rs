//! `hashgate backfill s3://BUCKET[/PREFIX]`: the objects a bucket already holds, scanned by
//! the scanner's own pipeline (`hashgate_scanner::app`), listed and checkpointed by the
//! core's `backfill` module.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hashgate_aws::s3::S3Objects;
use hashgate_core::backfill::{Checkpoint, Listed, Lister};
use hashgate_core::pipeline::ScanStatus;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::args::BackfillArgs;

/// Attempts per object before the run stops (its page is scanned again next time).
const ATTEMPTS: u32 = 3;

/// `s3://bucket/prefix` → (bucket, prefix).
pub fn parse_target(target: &str) -> anyhow::Result<(String, String)> {
    let Some(rest) = target.strip_prefix("s3://") else {
        bail!("{target:?}: expected s3://BUCKET or s3://BUCKET/PREFIX");
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        bail!("{target:?}: no bucket name");
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

fn default_checkpoint(bucket: &str, prefix: &str) -> PathBuf {
    let name = if prefix.is_empty() {
        format!("{bucket}.json")
    } else {
        let digest = hashgate_core::digest::digest_bytes(
            prefix.as_bytes(),
            hashgate_core::digest::AlgorithmSet::EMPTY.with(hashgate_core::Algorithm::Sha256),
        );
        let hex = digest
            .get(hashgate_core::Algorithm::Sha256)
            .map(|d| d.to_hex())
            .unwrap_or_default();
        format!("{bucket}-{}.json", &hex[..12])
    };
    Path::new(".hashgate-backfill").join(name)
}

/// Write the checkpoint whole or not at all: a temporary file, flushed, renamed over.
fn save(path: &Path, checkpoint: &Checkpoint) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp).with_context(|| format!("{}", tmp.display()))?;
    file.write_all(checkpoint.to_json().as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}", path.display()))?;
    Ok(())
}

fn progress(quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} objects ({per_sec}) {msg}")
            .expect("static template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

pub fn run(args: &BackfillArgs) -> anyhow::Result<ExitCode> {
    let (bucket, prefix) = parse_target(&args.target)?;
    if !(args.rate >= 0.0 && args.rate.is_finite()) {
        bail!(
            "--rate {}: expected a number of objects per second, 0 for no limit",
            args.rate
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args, bucket, prefix))
}

async fn run_async(
    args: &BackfillArgs,
    bucket: String,
    prefix: String,
) -> anyhow::Result<ExitCode> {
    let sdk = hashgate_aws::sdk_config().await;
    let lister = S3Objects::new(hashgate_aws::s3_client(&sdk));
    if args.dry_run {
        return dry_run(&lister, args, &bucket, &prefix).await;
    }
    let path = args
        .checkpoint
        .clone()
        .unwrap_or_else(|| default_checkpoint(&bucket, &prefix));
    let mut checkpoint = match std::fs::read_to_string(&path) {
        Ok(text) => Checkpoint::resume(&text, &bucket, &prefix)
            .with_context(|| format!("checkpoint {}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Checkpoint::new(&bucket, &prefix),
        Err(e) => return Err(e).with_context(|| format!("checkpoint {}", path.display())),
    };
    if checkpoint.complete {
        eprintln!(
            "s3://{bucket}/{prefix}: already backfilled (checkpoint {}); delete it to scan again",
            path.display()
        );
        return report(&checkpoint, args.json, 0, Duration::ZERO);
    }
    if let Some(after) = checkpoint.start_after() {
        eprintln!(
            "resuming after {after:?} ({} objects done)",
            checkpoint.handled
        );
    }
    let config = hashgate_scanner::config::Config::from_env()
        .context("the scanner's configuration (HASHGATE_* variables)")?;
    let app = Arc::new(hashgate_scanner::app::connect(&config, None).await?);
    let bar = progress(args.json);
    let started = Instant::now();
    let mut this_run = 0u64;
    let interval = (args.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / args.rate));
    let mut next_slot = tokio::time::Instant::now();
    let mut failure = None;
    'pages: while !checkpoint.complete {
        let remaining = args.limit.map(|l| l.saturating_sub(this_run));
        if remaining == Some(0) {
            break;
        }
        let page = lister
            .list(&bucket, &prefix, checkpoint.start_after(), args.page_size)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut objects = page.objects;
        let mut more = page.truncated;
        if let Some(r) = remaining {
            if objects.len() as u64 > r {
                objects.truncate(r as usize);
                more = true;
            }
        }
        // Scan the page `concurrency` at a time, each start no sooner than the rate allows.
        let mut set = tokio::task::JoinSet::new();
        let mut results: Vec<(usize, anyhow::Result<ScanStatus>)> = Vec::new();
        for (i, object) in objects.iter().enumerate() {
            if let Some(step) = interval {
                tokio::time::sleep_until(next_slot).await;
                next_slot = next_slot.max(tokio::time::Instant::now()) + step;
            }
            while set.len() >= args.concurrency as usize {
                if let Some(done) = set.join_next().await {
                    results.push(done?);
                }
            }
            let (app, event) = (app.clone(), checkpoint.event(object));
            set.spawn(async move { (i, scan(&app, event).await) });
        }
        while let Some(done) = set.join_next().await {
            results.push(done?);
        }
        results.sort_by_key(|(i, _)| *i);
        for (i, result) in results {
            match result {
                Ok(status) => {
                    checkpoint.handled(&objects[i], status.tag_value());
                    this_run += 1;
                    bar.inc(1);
                }
                Err(e) => {
                    failure = Some(e.context(format!("s3://{bucket}/{}", objects[i].key)));
                    break 'pages;
                }
            }
        }
        checkpoint.page_done(objects.last().map(|o: &Listed| o.key.as_str()), more);
        save(&path, &checkpoint)?;
        bar.set_message(format!(
            "matched {}",
            checkpoint.outcomes.get("match").copied().unwrap_or(0)
        ));
    }
    bar.finish_and_clear();
    if let Some(e) = failure {
        // Nothing of the failed page is recorded: the next run scans it again.
        eprintln!(
            "hashgate: backfill stopped; run it again to resume after {:?} (checkpoint {})",
            checkpoint.start_after().unwrap_or(""),
            path.display()
        );
        return Err(e);
    }
    report(&checkpoint, args.json, this_run, started.elapsed())
}

/// One object, retried a few times on an error (the pipeline is idempotent).
async fn scan(
    app: &hashgate_scanner::app::DeployedApp,
    event: hashgate_core::event::UploadEvent,
) -> anyhow::Result<ScanStatus> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match app.scan_upload(event.clone()).await {
            Ok(report) => return Ok(report.status),
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(key = %event.object.key, error = %e, attempt, "scan failed; retrying");
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
            Err(e) => return Err(anyhow::anyhow!("{e}")),
        }
    }
}

async fn dry_run(
    lister: &S3Objects,
    args: &BackfillArgs,
    bucket: &str,
    prefix: &str,
) -> anyhow::Result<ExitCode> {
    let (mut count, mut bytes, mut after) = (0u64, 0u64, None::<String>);
    let mut out = std::io::stdout().lock();
    loop {
        let page = lister
            .list(bucket, prefix, after.as_deref(), args.page_size)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for o in &page.objects {
            if args.limit.is_some_and(|l| count >= l) {
                break;
            }
            count += 1;
            bytes += o.size.unwrap_or(0);
            if !args.json {
                writeln!(out, "s3://{bucket}/{}\t{}", o.key, o.size.unwrap_or(0))?;
            }
        }
        after = page.objects.last().map(|o| o.key.clone());
        if !page.truncated || args.limit.is_some_and(|l| count >= l) {
            break;
        }
    }
    if args.json {
        writeln!(
            out,
            "{}",
            json!({"dry_run": true, "bucket": bucket, "prefix": prefix, "objects": count, "bytes": bytes})
        )?;
    } else {
        eprintln!("would scan {count} objects ({bytes} bytes)");
    }
    Ok(ExitCode::SUCCESS)
}

fn report(
    checkpoint: &Checkpoint,
    as_json: bool,
    this_run: u64,
    took: Duration,
) -> anyhow::Result<ExitCode> {
    let per_second = if took.as_secs_f64() > 0.0 {
        this_run as f64 / took.as_secs_f64()
    } else {
        0.0
    };
    if as_json {
        println!(
            "{}",
            json!({
                "bucket": checkpoint.bucket, "prefix": checkpoint.prefix,
                "complete": checkpoint.complete, "objects": checkpoint.handled,
                "bytes": checkpoint.bytes, "outcomes": checkpoint.outcomes,
                "this_run": this_run, "objects_per_second": (per_second * 10.0).round() / 10.0,
            })
        );
    } else {
        let outcomes: Vec<String> = checkpoint
            .outcomes
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!(
            "s3://{}/{}: {} objects ({} bytes){}: {}; {this_run} this run ({per_second:.1}/s)",
            checkpoint.bucket,
            checkpoint.prefix,
            checkpoint.handled,
            checkpoint.bytes,
            if checkpoint.complete {
                ", complete"
            } else {
                ", not finished"
            },
            if outcomes.is_empty() {
                "nothing yet".to_string()
            } else {
                outcomes.join(", ")
            },
        );
    }
    let matched = checkpoint.outcomes.get("match").copied().unwrap_or(0);
    Ok(if matched > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("s3://photos").unwrap(),
            ("photos".into(), "".into())
        );
        assert_eq!(
            parse_target("s3://photos/2026/ä b").unwrap(),
            ("photos".into(), "2026/ä b".into())
        );
        for bad in ["photos", "s3://", "s3:///x", "https://photos"] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
        assert_ne!(
            default_checkpoint("b", "x/"),
            default_checkpoint("b", "y/"),
            "each prefix has its own"
        );
        assert_eq!(
            default_checkpoint("b", ""),
            Path::new(".hashgate-backfill/b.json")
        );
    }
}
