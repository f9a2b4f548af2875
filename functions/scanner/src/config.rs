//! The scanner's configuration, from environment variables (the README's table lists them).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use hashgate_aws::filter_source::FilterLocation;
use hashgate_core::quarantine::Mode;

/// Where the exact hash store is.
#[derive(Clone, Debug)]
pub enum HashBackend {
    /// `HASHGATE_HASH_TABLE`: DynamoDB, with the filter snapshot in S3.
    Dynamo {
        table: String,
        filter: FilterLocation,
    },
    /// `HASHGATE_DB`: a local hash database directory (self-hosted deployments).
    Embedded { dir: PathBuf },
}

#[derive(Clone, Debug)]
pub struct Config {
    pub hashes: HashBackend,
    pub quarantine_bucket: String,
    pub case_table: String,
    pub audit_table: String,
    pub review_queue_url: String,
    pub event_bus: Option<String>,
    pub filter_refresh: Duration,
    pub max_object_bytes: u64,
    pub retention_days: u32,
    pub mode: Mode,
    pub tag_clean: bool,
    /// Worker mode: the queue of S3 notifications to long-poll.
    pub scan_queue_url: Option<String>,
}

/// Default largest object scanned: 5 GiB, the largest single PUT.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 5 * 1024 * 1024 * 1024;
pub const DEFAULT_FILTER_KEY: &str = "filters/current.hgf";

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn required(name: &str) -> anyhow::Result<String> {
    var(name).with_context(|| format!("{name} is not set"))
}

fn parsed<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|e| anyhow::anyhow!("{name}={v:?}: {e}")),
    }
}

fn flag(name: &str, default: bool) -> anyhow::Result<bool> {
    match var(name).as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => bail!("{name}={other:?}: expected true or false"),
    }
}

impl Config {
    pub fn from_env() -> anyhow::Result<Config> {
        let hashes = match (var("HASHGATE_HASH_TABLE"), var("HASHGATE_DB")) {
            (Some(table), _) => HashBackend::Dynamo {
                table,
                filter: FilterLocation {
                    bucket: required("HASHGATE_FILTER_BUCKET")
                        .context("a DynamoDB hash store needs its filter bucket")?,
                    key: var("HASHGATE_FILTER_KEY").unwrap_or_else(|| DEFAULT_FILTER_KEY.into()),
                },
            },
            (None, Some(dir)) => HashBackend::Embedded { dir: dir.into() },
            (None, None) => bail!(
                "no hash store: set HASHGATE_HASH_TABLE (DynamoDB) or HASHGATE_DB (a local hash database)"
            ),
        };
        let mode = match var("HASHGATE_QUARANTINE_MODE").as_deref() {
            None | Some("move") => Mode::Move,
            Some("hold") => Mode::HoldInPlace,
            Some(other) => bail!("HASHGATE_QUARANTINE_MODE={other:?}: expected move or hold"),
        };
        let event_bus = match var("HASHGATE_EVENT_BUS").as_deref() {
            None => Some("default".to_string()),
            Some("none") => None,
            Some(bus) => Some(bus.to_string()),
        };
        let retention_days: u32 = parsed("HASHGATE_RETENTION_DAYS", 365)?;
        if retention_days == 0 {
            bail!("HASHGATE_RETENTION_DAYS must be at least 1");
        }
        Ok(Config {
            hashes,
            quarantine_bucket: required("HASHGATE_QUARANTINE_BUCKET")?,
            case_table: required("HASHGATE_CASE_TABLE")?,
            audit_table: required("HASHGATE_AUDIT_TABLE")?,
            review_queue_url: required("HASHGATE_REVIEW_QUEUE_URL")?,
            event_bus,
            filter_refresh: Duration::from_secs(parsed("HASHGATE_FILTER_REFRESH_SECONDS", 60)?),
            max_object_bytes: parsed("HASHGATE_MAX_OBJECT_BYTES", DEFAULT_MAX_OBJECT_BYTES)?,
            retention_days,
            mode,
            tag_clean: flag("HASHGATE_TAG_CLEAN", true)?,
            scan_queue_url: var("HASHGATE_SCAN_QUEUE_URL"),
        })
    }
}
