//! `hashgate audit verify` and `hashgate audit checkpoint`: the stack's audit chain and its
//! signed checkpoints, checked (or extended) by the core's own functions.

use std::process::ExitCode;

use anyhow::Context;
use hashgate_aws::checkpoint::S3Checkpoints;
use hashgate_aws::dynamo::DynamoCases;
use hashgate_core::review::{checkpoint_now, verify_chain};
use hashgate_core::time::{rfc3339, Timestamp};

use crate::args::AuditArgs;

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .with_context(|| {
            format!("{name} is not set (for the local stack: set -a; . .local/stack.env; set +a)")
        })
}

struct Stack {
    store: DynamoCases,
    checkpoints: S3Checkpoints,
}

async fn connect() -> anyhow::Result<Stack> {
    let audit_table = env("HASHGATE_AUDIT_TABLE")?;
    let bucket = env("HASHGATE_AUDIT_CHECKPOINT_BUCKET")?;
    let key = env("HASHGATE_AUDIT_SIGNING_KEY")?;
    // The case table is not read by either command.
    let case_table = std::env::var("HASHGATE_CASE_TABLE").unwrap_or_default();
    let sdk = hashgate_aws::sdk_config().await;
    let s3 = hashgate_aws::s3_client(&sdk);
    Ok(Stack {
        store: DynamoCases::new(aws_sdk_dynamodb::Client::new(&sdk), case_table, audit_table),
        checkpoints: S3Checkpoints::new(s3, hashgate_aws::kms_client(&sdk), bucket, key),
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub fn verify(args: &AuditArgs) -> anyhow::Result<ExitCode> {
    let v = runtime()?.block_on(async {
        let stack = connect().await?;
        anyhow::Ok(verify_chain(&stack.store, &stack.checkpoints).await?)
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&v)?);
    } else {
        let head = v
            .head
            .as_ref()
            .map(|h| format!(", head {} {}", h.seq, h.hash))
            .unwrap_or_default();
        match &v.first_broken {
            None => println!(
                "audit chain verified: {} entries{head}, {} signed checkpoints",
                v.entries, v.checkpoints
            ),
            Some(b) => println!("audit chain BROKEN at entry {}: {}", b.seq, b.reason),
        }
    }
    Ok(if v.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn checkpoint(args: &AuditArgs) -> anyhow::Result<ExitCode> {
    let cp = runtime()?.block_on(async {
        let stack = connect().await?;
        anyhow::Ok(checkpoint_now(&stack.store, &stack.checkpoints, Timestamp::now()).await?)
    })?;
    match (&cp, args.json) {
        (_, true) => println!("{}", serde_json::to_string(&cp)?),
        (None, false) => println!("the audit chain is empty: nothing to checkpoint"),
        (Some(c), false) => println!(
            "checkpoint of entry {} ({}) signed at {}",
            c.seq,
            c.hash,
            rfc3339(c.at)
        ),
    }
    Ok(ExitCode::SUCCESS)
}
