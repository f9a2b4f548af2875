//! `hashgate filter status` and `hashgate filter rollback` on a stack: the signed manifest
//! in the filter bucket and the snapshots kept for rollbacks. A rollback writes a new
//! manifest (a higher sequence, so scanners take it) naming an earlier snapshot, signed,
//! and records who did it and why in the manifest and in the audit log.

use std::process::ExitCode;

use anyhow::{bail, Context};
use hashgate_aws::dynamo::DynamoCases;
use hashgate_aws::publisher::Current;
use hashgate_core::audit::{AuditAction, AuditEntry, FILTER_SUBJECT};
use hashgate_core::manifest::{self, Publication};
use hashgate_core::review::ReviewStore as _;
use hashgate_core::time::Timestamp;

use crate::args::{FilterRollbackArgs, FilterStatusArgs};
use crate::remote::StackFilters;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub fn status(args: &FilterStatusArgs) -> anyhow::Result<ExitCode> {
    let filters = StackFilters::from_env()?;
    let (current, mut snapshots) = filters.runtime.block_on(async {
        anyhow::Ok((
            filters
                .publisher
                .current()
                .await
                .map_err(anyhow::Error::msg)?,
            filters
                .publisher
                .snapshots()
                .await
                .map_err(anyhow::Error::msg)?,
        ))
    })?;
    snapshots.sort();
    let kept: Vec<(u64, &String)> = snapshots
        .iter()
        .filter_map(|k| manifest::snapshot_sequence(k).map(|s| (s, k)))
        .collect();
    let (manifest, refused) = match &current {
        Current::Valid(m) => (Some(m), None),
        Current::Missing => (None, None),
        Current::Refused(e) => (None, Some(e.to_string())),
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "bucket": filters.bucket,
                "manifest": manifest,
                "refused": refused,
                "snapshots": kept.iter().map(|(s, k)| serde_json::json!({"sequence": s, "key": k})).collect::<Vec<_>>(),
            })
        );
    } else {
        match (manifest, &refused) {
            (Some(m), _) => {
                println!(
                    "manifest: sequence {}, store version {}, {} entries, published {} ({}), key {}",
                    m.sequence,
                    m.store_version,
                    m.entries,
                    m.published_at,
                    match &m.publication {
                        Publication::Build => "build".to_string(),
                        Publication::Rollback { from_sequence, by, reason, .. } =>
                            format!("rollback from {from_sequence} by {by}: {reason}"),
                    },
                    m.key_id
                );
                println!("snapshot: {}", filters.publisher.url(&m.snapshot));
            }
            (None, Some(e)) => println!("manifest: REFUSED: {e}"),
            (None, None) => println!("manifest: none published"),
        }
        println!(
            "kept snapshots: {}",
            kept.iter()
                .map(|(s, _)| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(if refused.is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn rollback(args: &FilterRollbackArgs) -> anyhow::Result<ExitCode> {
    if args.reason.trim().is_empty() {
        bail!("--reason must say why the filter is rolled back");
    }
    // The audit table is named before anything changes: no rollback without its audit.
    let audit_table = env("HASHGATE_AUDIT_TABLE").context(
        "HASHGATE_AUDIT_TABLE is not set: a rollback is recorded in the audit log (for the local stack: set -a; . .local/stack.env)",
    )?;
    let filters = StackFilters::from_env()?;
    let key = filters.signing_key(&StackFilters::trusted()?)?;
    let now = Timestamp::now();
    let m = filters
        .runtime
        .block_on(
            filters
                .publisher
                .rollback(&key, args.to, &args.by, &args.reason, now),
        )
        .map_err(anyhow::Error::msg)?;
    let audit = DynamoCases::new(
        aws_sdk_dynamodb::Client::new(&filters.sdk),
        env("HASHGATE_CASE_TABLE").unwrap_or_default(),
        audit_table,
    );
    let from = match &m.publication {
        Publication::Rollback { from_sequence, .. } => *from_sequence,
        Publication::Build => m.sequence,
    };
    let mut entry = AuditEntry::new(
        FILTER_SUBJECT.to_string(),
        now,
        args.by.clone(),
        AuditAction::FilterRolledBack,
        format!(
            "manifest {} names {} (store version {}) instead of the snapshot of manifest {from}",
            m.sequence, m.snapshot, m.store_version
        ),
    );
    entry.reason = Some(args.reason.clone());
    let appended = filters.runtime.block_on(audit.append(entry)).with_context(|| {
        format!(
            "the filter IS rolled back (manifest {}), but its audit entry could not be written; record it by hand",
            m.sequence
        )
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({"manifest": m, "audit_seq": appended.seq, "audit_hash": appended.hash})
        );
    } else {
        println!(
            "rolled back: manifest {} names {} (store version {}, {} entries); audit entry {}",
            m.sequence,
            filters.publisher.url(&m.snapshot),
            m.store_version,
            m.entries,
            appended.seq
        );
        println!(
            "scanners ask the exact store for every digest this filter does not cover; the sync \
             builds a new filter once the store changes again"
        );
    }
    Ok(ExitCode::SUCCESS)
}
