//! List-entry quality on the stack: `hashgate lists stats` without `--db` (the store's
//! version and algorithms, and every entry with false positives, the suppressed ones
//! marked), `hashgate lists enable` (an admin re-enables a suppressed entry, audited in the
//! chain) and `hashgate lists feedback` (one list's feedback as CSV for its source). The
//! rules are the core's (`hashgate_core::feedback`); this reads the environment, calls
//! `DynamoHashes` and formats.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use hashgate_aws::dynamo::{DynamoCases, DynamoHashes};
use hashgate_core::audit::{AuditAction, AuditEntry};
use hashgate_core::feedback::{parse_digest, write_export, EntryFeedback, EntryKey};
use hashgate_core::review::ReviewStore;
use hashgate_core::store::check_entry;
use hashgate_core::time::{rfc3339, Timestamp};
use serde::Serialize;

use crate::args::{EnableArgs, FeedbackArgs};

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .with_context(|| {
            format!("{name} is not set (for the local stack: set -a; . .local/stack.env; set +a)")
        })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

async fn hashes() -> anyhow::Result<(DynamoHashes, String)> {
    let table = env("HASHGATE_HASH_TABLE")
        .context("no --db DIR, and no stack to read (HASHGATE_HASH_TABLE)")?;
    let sdk = hashgate_aws::sdk_config().await;
    Ok((
        DynamoHashes::new(aws_sdk_dynamodb::Client::new(&sdk), table.clone()),
        table,
    ))
}

/// How an entry stands, in words.
fn status(f: &EntryFeedback) -> String {
    match (&f.suppressed, &f.enabled) {
        (Some(s), _) => format!(
            "SUPPRESSED since {} (after {} false positives)",
            rfc3339(s.at),
            s.after
        ),
        (None, Some(e)) => format!(
            "re-enabled by {} at {} ({} since)",
            e.by,
            rfc3339(e.at),
            f.counting()
        ),
        (None, None) => "matching".to_string(),
    }
}

#[derive(Serialize)]
struct StackStats<'a> {
    store: String,
    version: u64,
    algorithms: Vec<&'static str>,
    entries_with_false_positives: usize,
    suppressed: usize,
    feedback: &'a [EntryFeedback],
}

/// `hashgate lists stats` on the stack.
pub fn stack_stats(json: bool) -> anyhow::Result<ExitCode> {
    let (state, feedback, table) = runtime()?.block_on(async {
        let (hashes, table) = hashes().await?;
        let (state, _) = hashes
            .meta()
            .await
            .with_context(|| format!("reading the store version of {table}"))?;
        let feedback = hashes
            .feedback()
            .await
            .with_context(|| format!("reading the list feedback of {table}"))?;
        anyhow::Ok((state, feedback, table))
    })?;
    let suppressed = feedback.iter().filter(|f| f.is_suppressed()).count();
    if json {
        let out = StackStats {
            store: format!("dynamodb table {table}"),
            version: state.version,
            algorithms: state.algorithms.iter().map(|a| a.name()).collect(),
            entries_with_false_positives: feedback.len(),
            suppressed,
            feedback: &feedback,
        };
        println!("{}", serde_json::to_string(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "store: dynamodb table {table} (version {}, algorithms {})",
        state.version, state.algorithms
    );
    if feedback.is_empty() {
        println!("false positives: none on record");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "false positives: {} entries, {suppressed} suppressed (not matching)",
        feedback.len()
    );
    let width = feedback
        .iter()
        .map(|f| f.key.list.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<width$}  {:<71}  {:<16}  {:>6}  {:<24}  status",
        "list", "digest", "id", "fp", "last case"
    );
    for f in &feedback {
        println!(
            "{:<width$}  {:<71}  {:<16}  {:>6}  {:<24}  {}",
            f.key.list,
            format!("{}:{}", f.key.digest.algorithm(), f.key.digest.to_hex()),
            f.key.id.as_deref().unwrap_or("-"),
            f.false_positives,
            f.last_case,
            status(f)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The entry the arguments name, checked before anything is read.
fn entry_key(list: &str, digest: &str, id: Option<&str>) -> anyhow::Result<EntryKey> {
    let digest = parse_digest(digest).context("--digest")?;
    check_entry(&hashgate_core::lists::Provenance {
        list: list.to_string(),
        id: id.map(str::to_string),
        category: None,
    })
    .context("--list/--id")?;
    Ok(EntryKey {
        digest,
        list: list.to_string(),
        id: id.map(str::to_string),
    })
}

/// `hashgate lists enable`.
pub fn enable(args: &EnableArgs) -> anyhow::Result<ExitCode> {
    let key = entry_key(&args.list, &args.digest, args.id.as_deref())?;
    // Both tables are named before anything changes: no re-enabling without its audit.
    let audit_table = env("HASHGATE_AUDIT_TABLE")?;
    let (enabled, appended) = runtime()?.block_on(async {
        let (hashes, table) = hashes().await?;
        let sdk = hashgate_aws::sdk_config().await;
        let case_table = std::env::var("HASHGATE_CASE_TABLE").unwrap_or_default();
        let audit = DynamoCases::new(aws_sdk_dynamodb::Client::new(&sdk), case_table, audit_table);
        let now = Timestamp::now();
        let enabled = hashes
            .enable(&key, &args.by, &args.reason, now)
            .await
            .with_context(|| format!("re-enabling in {table}"))?;
        let mut entry = AuditEntry::new(
            enabled.last_case.clone(),
            now,
            args.by.clone(),
            AuditAction::EntryEnabled,
            format!(
                "re-enabled {key} after {} false positives; it matches again",
                enabled.false_positives
            ),
        );
        entry.reason = Some(args.reason.clone());
        let appended = audit.append(entry).await.with_context(|| {
            format!(
                "{key} IS re-enabled, but its audit entry could not be written; \
                 record it by hand (by {:?}, reason {:?})",
                args.by, args.reason
            )
        })?;
        anyhow::Ok((enabled, appended))
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({"entry": enabled, "audit_seq": appended.seq, "audit_hash": appended.hash})
        );
    } else {
        println!(
            "re-enabled {key}: matches again ({} false positives on record); audit entry {}",
            enabled.false_positives, appended.seq
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Write `bytes` to `path` whole or not at all (a temporary file beside it, renamed).
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?
        .to_string_lossy()
        .into_owned();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file =
            std::fs::File::create(&temp).with_context(|| format!("creating {}", temp.display()))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", temp.display()))?;
        std::fs::rename(&temp, path)
            .with_context(|| format!("renaming {} to {}", temp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// `hashgate lists feedback`.
pub fn export(args: &FeedbackArgs) -> anyhow::Result<ExitCode> {
    check_entry(&hashgate_core::lists::Provenance {
        list: args.list.clone(),
        id: None,
        category: None,
    })
    .context("--list")?;
    let (feedback, table) = runtime()?.block_on(async {
        let (hashes, table) = hashes().await?;
        let feedback = hashes
            .feedback()
            .await
            .with_context(|| format!("reading the list feedback of {table}"))?;
        anyhow::Ok((feedback, table))
    })?;
    if !feedback.iter().any(|f| f.key.list == args.list) {
        let lists: Vec<&str> = feedback
            .iter()
            .map(|f| f.key.list.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        anyhow::bail!(
            "no false positives on record for list {:?} in {table} (lists with some: {}); nothing written",
            args.list,
            if lists.is_empty() {
                "none".to_string()
            } else {
                lists.join(", ")
            }
        );
    }
    let mut csv = Vec::new();
    let n = write_export(&mut csv, &args.list, &feedback)?;
    let target = match args.output.as_deref() {
        Some(p) if p != Path::new("-") => {
            write_atomically(p, &csv)?;
            p.display().to_string()
        }
        _ => {
            let mut out = std::io::stdout().lock();
            out.write_all(&csv)?;
            out.flush()?;
            "standard output".to_string()
        }
    };
    let suppressed = feedback
        .iter()
        .filter(|f| f.key.list == args.list && f.is_suppressed())
        .count();
    eprintln!(
        "feedback on {n} entries of list {:?} ({suppressed} suppressed) written to {target}",
        args.list
    );
    Ok(ExitCode::SUCCESS)
}
