//! Pulled sources on the schedule: each configured source (`hashgate_sources`) is asked for
//! its list with what it returned last time (its ETag), so an unchanged list costs one
//! request and imports nothing. A changed list is written into the lists bucket's inbox,
//! named by the source and its digest, with metadata saying its list, format and operation
//! and its SHA-256 (so a file cut short on the way is refused), and imported from there like
//! any dropped file. The source's state is written after the file, so a crash in between
//! fetches the list again next time (and importing it twice changes nothing).

use std::collections::BTreeMap;

use hashgate_aws::list_sync::ListSync;
use hashgate_core::lists::sync::{INCOMING, SOURCES};
use hashgate_core::manifest::sha256_hex;
use hashgate_core::time::Timestamp;
use hashgate_sources::{ListSource, PullLimits, Pulled, SourceConfig, SourceState};

/// What one source's pull came to.
#[derive(Debug, PartialEq, Eq)]
pub enum PullOutcome {
    Unchanged,
    /// A new file in the inbox, at this key.
    Queued(String),
}

/// Where a source's state is kept.
pub fn state_key(name: &str) -> String {
    format!("{SOURCES}{name}.json")
}

/// Where a pulled list goes: `incoming/<list>/[withdraw/]<source>-<digest>.<format>`.
pub fn inbox_key(config: &SourceConfig, sha256: &str) -> String {
    let op = if config.op_or_default() == "withdraw" {
        "withdraw/"
    } else {
        ""
    };
    let ext = match config.format.as_str() {
        "csv" => "csv",
        "vics" => "json",
        _ => "txt",
    };
    format!(
        "{INCOMING}{}/{op}{}-{}.{ext}",
        config.list,
        config.name,
        &sha256[..16]
    )
}

/// Pull one source.
pub async fn pull_one(
    sync: &ListSync,
    config: &SourceConfig,
    limits: &PullLimits,
) -> Result<PullOutcome, String> {
    let key = state_key(&config.name);
    let last: SourceState = match sync.get(&key).await? {
        Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(source = %config.name, error = %e, "unreadable source state; fetching the list whole");
            SourceState::default()
        }),
        None => SourceState::default(),
    };
    let mut source = hashgate_sources::build(config, limits).map_err(|e| e.to_string())?;
    match source.pull(&last).await.map_err(|e| e.to_string())? {
        Pulled::Unchanged => {
            tracing::info!(source = %config.name, "pulled source unchanged");
            Ok(PullOutcome::Unchanged)
        }
        Pulled::Changed { body, mut state } => {
            let sha256 = sha256_hex(&body);
            let inbox = inbox_key(config, &sha256);
            let metadata = BTreeMap::from([
                ("hashgate-list".to_string(), config.list.clone()),
                ("hashgate-format".to_string(), config.format.clone()),
                (
                    "hashgate-op".to_string(),
                    config.op_or_default().to_string(),
                ),
                ("hashgate-sha256".to_string(), sha256.clone()),
                ("hashgate-source".to_string(), config.name.clone()),
            ]);
            let size = body.len();
            sync.put_with_metadata(&inbox, body.to_vec(), "application/octet-stream", &metadata)
                .await?;
            state.sha256 = Some(sha256);
            state
                .fetched_at
                .get_or_insert_with(|| Timestamp::now().to_string());
            let doc = serde_json::to_vec_pretty(&state).map_err(|e| e.to_string())?;
            sync.put(&key, doc, "application/json").await?;
            tracing::info!(source = %config.name, key = %inbox, bytes = size, "pulled source changed; queued for import");
            Ok(PullOutcome::Queued(inbox))
        }
    }
}

/// Pull every source; one that fails is logged and the others go on.
pub async fn pull_all(
    sync: &ListSync,
    sources: &[SourceConfig],
) -> Vec<(String, Result<PullOutcome, String>)> {
    let limits = PullLimits::default();
    let mut out = Vec::new();
    for config in sources {
        let result = pull_one(sync, config, &limits).await;
        if let Err(e) = &result {
            tracing::error!(source = %config.name, error = %e, "cannot pull the source");
        }
        out.push((config.name.clone(), result));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulled_files_land_where_the_sync_takes_them() {
        let json = r#"[{"name":"feed","kind":"http","url":"https://x.example/l","list":"ncmec","format":"csv"},
                      {"name":"wd","kind":"http","url":"https://x.example/w","list":"ncmec","format":"plain","op":"withdraw"}]"#;
        let sources = hashgate_sources::parse_sources(json).unwrap();
        let sha = "ab".repeat(32);
        let add = inbox_key(&sources[0], &sha);
        assert_eq!(add, "incoming/ncmec/feed-abababababababab.csv");
        let wd = inbox_key(&sources[1], &sha);
        assert_eq!(wd, "incoming/ncmec/withdraw/wd-abababababababab.txt");
        let no_meta = BTreeMap::new();
        let f = hashgate_core::lists::sync::ListFile::from_object(&wd, &no_meta).unwrap();
        assert_eq!(f.op, hashgate_core::store::Op::Remove);
        assert_eq!(state_key("feed"), "sources/feed.json");
    }
}
