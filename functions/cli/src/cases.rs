//! `hashgate cases hold` and `hashgate cases release`: a legal hold on a case, placed on its
//! stored evidence (an Object Lock legal hold on the quarantined copy, and on the report
//! package when HASHGATE_REPORTS_BUCKET is set) and recorded on the case with its audit entry
//! (the core's `hold::place` / `hold::release`, written by `ReviewStore::update`, conditional
//! on the case's revision).
//!
//! The order never loses evidence and never lets the audit log say more than is true (see
//! `hashgate_core::hold`): a hold is placed in storage before the case says held; a release
//! is recorded before the storage holds are lifted. Either command stopped half-way is run
//! again: storage holds are idempotent, and a release the audit log already records is
//! finished by lifting what is still held. `hold` on a held case holds what was stored
//! since (a report package written after the hold).

use std::process::ExitCode;

use anyhow::Context;
use hashgate_aws::dynamo::DynamoCases;
use hashgate_aws::hold::{HeldVersion, Hold, LegalHolds};
use hashgate_core::case::CaseRecord;
use hashgate_core::hold::{self, HoldRefusal};
use hashgate_core::review::{ReviewStore, Updated};
use hashgate_core::time::Timestamp;
use serde_json::json;

use crate::args::HoldArgs;

/// A conditional write that loses to another writer is read and decided again this often.
const ATTEMPTS: usize = 5;

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .with_context(|| {
            format!("{name} is not set (for the local stack: set -a; . .local/stack.env; set +a)")
        })
}

struct Stack {
    cases: DynamoCases,
    holds: LegalHolds,
    /// The reports bucket, when the stack has one.
    reports: Option<String>,
}

async fn connect() -> anyhow::Result<Stack> {
    let case_table = env("HASHGATE_CASE_TABLE")?;
    let audit_table = env("HASHGATE_AUDIT_TABLE")?;
    let reports = env("HASHGATE_REPORTS_BUCKET").ok();
    let sdk = hashgate_aws::sdk_config().await;
    Ok(Stack {
        cases: DynamoCases::new(aws_sdk_dynamodb::Client::new(&sdk), case_table, audit_table),
        holds: LegalHolds::new(hashgate_aws::s3_client(&sdk)),
        reports,
    })
}

impl Stack {
    async fn case(&self, case_id: &str) -> anyhow::Result<CaseRecord> {
        self.cases
            .case(case_id)
            .await?
            .with_context(|| format!("no case {case_id:?}"))
    }

    /// Set `hold` on everything a hold of `case` covers: its quarantined copy, and its
    /// report package when the stack has a reports bucket.
    async fn set(&self, case: &CaseRecord, hold: Hold) -> anyhow::Result<Vec<HeldVersion>> {
        let mut set = Vec::new();
        if let Some(q) = hold::evidence(case) {
            set.extend(self.holds.set_key(&q.bucket, &q.key, hold).await?);
        }
        if let Some(bucket) = &self.reports {
            let prefix = hold::report_prefix(&case.case_id);
            set.extend(self.holds.set_prefix(bucket, &prefix, hold).await?);
        }
        Ok(set)
    }
}

/// What one run did.
enum Done {
    /// Recorded (the audit entry's seq) with these versions held or lifted.
    Recorded {
        seq: u64,
        versions: Vec<HeldVersion>,
    },
    /// A hold or release recorded earlier, completed in storage now.
    Finished {
        versions: Vec<HeldVersion>,
    },
    Refused(HoldRefusal),
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

async fn place(stack: &Stack, args: &HoldArgs) -> anyhow::Result<Done> {
    for _ in 0..ATTEMPTS {
        let case = stack.case(&args.case).await?;
        let change = match hold::place(&case, &args.by, &args.reason, Timestamp::now()) {
            Ok(c) => c,
            Err(refusal @ HoldRefusal::AlreadyHeld { .. }) => {
                // Held already: what was stored since (a report package written after the
                // hold) is held now too; the audit log already says the case is held.
                let versions = stack.set(&case, Hold::On).await?;
                if versions.iter().any(|v| v.changed) {
                    return Ok(Done::Finished { versions });
                }
                return Ok(Done::Refused(refusal));
            }
            Err(refusal) => return Ok(Done::Refused(refusal)),
        };
        // Storage first: the audit log never says held before it is.
        let versions = stack.set(&case, Hold::On).await?;
        match stack.cases.update(&change.case, change.audit).await? {
            Updated::Written(entry) => {
                return Ok(Done::Recorded {
                    seq: entry.seq,
                    versions,
                })
            }
            Updated::Conflict => continue,
        }
    }
    anyhow::bail!(
        "case {} kept changing under {ATTEMPTS} attempts; its storage holds are on, run again",
        args.case
    )
}

async fn release(stack: &Stack, args: &HoldArgs) -> anyhow::Result<Done> {
    for _ in 0..ATTEMPTS {
        let case = stack.case(&args.case).await?;
        let change = match hold::release(&case, &args.by, &args.reason, Timestamp::now()) {
            Ok(c) => c,
            Err(HoldRefusal::NotHeld) => {
                // A release recorded by a run that stopped before lifting the storage holds.
                let history = stack.cases.history(&case.case_id).await?;
                if hold::release_unfinished(&case, &history) {
                    let versions = stack.set(&case, Hold::Off).await?;
                    if versions.iter().any(|v| v.changed) {
                        return Ok(Done::Finished { versions });
                    }
                }
                return Ok(Done::Refused(HoldRefusal::NotHeld));
            }
            Err(refusal) => return Ok(Done::Refused(refusal)),
        };
        // Recorded first: a stop before the storage holds are lifted keeps more, never less.
        match stack.cases.update(&change.case, change.audit).await? {
            Updated::Written(entry) => {
                let versions = stack.set(&case, Hold::Off).await?;
                return Ok(Done::Recorded {
                    seq: entry.seq,
                    versions,
                });
            }
            Updated::Conflict => continue,
        }
    }
    anyhow::bail!(
        "case {} kept changing under {ATTEMPTS} attempts; nothing was released",
        args.case
    )
}

/// `hashgate cases hold`.
pub fn hold(args: &HoldArgs) -> anyhow::Result<ExitCode> {
    let done = runtime()?.block_on(async { place(&connect().await?, args).await })?;
    report(args, "hold", "placed", done)
}

/// `hashgate cases release`.
pub fn release_hold(args: &HoldArgs) -> anyhow::Result<ExitCode> {
    let done = runtime()?.block_on(async { release(&connect().await?, args).await })?;
    report(args, "release", "lifted", done)
}

fn report(args: &HoldArgs, command: &str, verb: &str, done: Done) -> anyhow::Result<ExitCode> {
    let (code, value, text) = match done {
        Done::Recorded { seq, versions } => (
            ExitCode::SUCCESS,
            json!({"case_id": args.case, "command": command, "audit_seq": seq,
                   "versions": versions}),
            format!(
                "legal hold {verb} on {} (audit entry {seq}): {}",
                args.case,
                describe(&versions)
            ),
        ),
        Done::Finished { versions } => (
            ExitCode::SUCCESS,
            json!({"case_id": args.case, "command": command, "finished": true,
                   "versions": versions}),
            format!(
                "the {command} of {} was already recorded; storage holds {verb} now: {}",
                args.case,
                describe(&versions)
            ),
        ),
        Done::Refused(refusal) => (
            ExitCode::from(1),
            json!({"case_id": args.case, "command": command, "refused": refusal.to_string()}),
            format!("refused: {refusal}"),
        ),
    };
    if args.json {
        println!("{value}");
    } else {
        println!("{text}");
    }
    Ok(code)
}

fn describe(versions: &[HeldVersion]) -> String {
    if versions.is_empty() {
        return "no stored object version (nothing quarantined or packaged yet)".into();
    }
    versions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
