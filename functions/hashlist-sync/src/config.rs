//! hashlist-sync's configuration: a pure function of the variables (`from_vars`), every one
//! checked and a bad value named; `from_env` reads the process environment.

use std::time::Duration;

use anyhow::{bail, Context};
use hashgate_aws::signing::{self, KeySource};
use hashgate_core::lists::sync::Limits;
use hashgate_core::manifest::TrustedKeys;
use hashgate_sources::SourceConfig;

/// Default false-positive rate of the filters it builds (the CLI's too).
pub const DEFAULT_FP_RATE: f64 = hashgate_core::filter::DEFAULT_FP_RATE;
/// Snapshots kept for rollbacks by default.
pub const DEFAULT_SNAPSHOTS_KEPT: usize = 10;
/// How often the worker (outside Lambda) runs the scheduled work by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

#[derive(Clone, Debug)]
pub struct Config {
    pub lists_bucket: String,
    pub hash_table: String,
    pub filter_bucket: String,
    pub signing: KeySource,
    pub trusted: TrustedKeys,
    pub fp_rate: f64,
    pub snapshots_kept: usize,
    pub limits: Limits,
    pub sources: Vec<SourceConfig>,
    pub event_bus: Option<String>,
    /// Worker mode: the queue of the lists bucket's events.
    pub queue_url: Option<String>,
    /// Worker mode: how often the scheduled work runs.
    pub interval: Duration,
}

fn name_ok(v: &str) -> bool {
    !v.is_empty() && !v.contains(['/', ':']) && !v.contains(char::is_whitespace)
}

impl Config {
    pub fn from_env() -> anyhow::Result<Config> {
        Config::from_vars(|name| std::env::var(name).ok())
    }

    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Config> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &str| get(name).with_context(|| format!("{name} is not set"));
        let named = |name: &str| -> anyhow::Result<String> {
            let v = required(name)?;
            if !name_ok(&v) {
                bail!("{name}={v:?} is not valid: expected a bucket or table name");
            }
            Ok(v)
        };
        let number = |name: &str, default: u64| -> anyhow::Result<u64> {
            match get(name) {
                None => Ok(default),
                Some(v) => v.parse::<u64>().ok().filter(|n| *n > 0).with_context(|| {
                    format!("{name}={v:?} is not valid: expected a whole number above 0")
                }),
            }
        };
        let fraction = |name: &str, default: f64, open_top: bool| -> anyhow::Result<f64> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|x| *x > 0.0 && (*x < 1.0 || (!open_top && *x <= 1.0)))
                    .with_context(|| {
                        format!(
                            "{name}={v:?} is not valid: expected a number above 0 and {}",
                            if open_top { "below 1" } else { "at most 1" }
                        )
                    }),
            }
        };
        let trusted = TrustedKeys::parse(&required(signing::PUBLIC_KEYS_VAR)?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", signing::PUBLIC_KEYS_VAR))?;
        let signing = signing::source_from_vars(|n| get(n)).map_err(anyhow::Error::msg)?;
        let kept = number("HASHGATE_SNAPSHOTS_KEPT", DEFAULT_SNAPSHOTS_KEPT as u64)?;
        if kept < 2 {
            bail!("HASHGATE_SNAPSHOTS_KEPT={kept} is not valid: keep at least 2, so there is something to roll back to");
        }
        let defaults = Limits::default();
        let limits = Limits {
            max_bytes: number("HASHGATE_LIST_MAX_BYTES", defaults.max_bytes)?,
            max_entries: number("HASHGATE_LIST_MAX_ENTRIES", defaults.max_entries)?,
            max_withdraw_share: fraction(
                "HASHGATE_WITHDRAW_MAX_SHARE",
                defaults.max_withdraw_share,
                false,
            )?,
        };
        let sources = match get("HASHGATE_LIST_SOURCES") {
            None => Vec::new(),
            Some(json) => hashgate_sources::parse_sources(&json)
                .map_err(|e| anyhow::anyhow!("HASHGATE_LIST_SOURCES: {e}"))?,
        };
        // The function's role may read only the signing secret; a source's header secret
        // would need its own grant, which the template does not give.
        if let Some(s) = sources.iter().find(|s| s.headers_secret.is_some()) {
            bail!(
                "HASHGATE_LIST_SOURCES: source {:?} names a headers_secret; hashlist-sync does not \
                 read header secrets (its role may read only the filter signing secret): use a \
                 source whose URL needs no credentials",
                s.name
            );
        }
        let interval = Duration::from_secs(number(
            "HASHGATE_SYNC_INTERVAL_SECONDS",
            DEFAULT_INTERVAL.as_secs(),
        )?);
        Ok(Config {
            lists_bucket: named("HASHGATE_LISTS_BUCKET")?,
            hash_table: named("HASHGATE_HASH_TABLE")?,
            filter_bucket: named("HASHGATE_FILTER_BUCKET")?,
            signing,
            trusted,
            fp_rate: fraction("HASHGATE_FILTER_FP_RATE", DEFAULT_FP_RATE, true)?,
            snapshots_kept: kept as usize,
            limits,
            sources,
            event_bus: get("HASHGATE_EVENT_BUS").filter(|b| b != "none"),
            queue_url: get("HASHGATE_LISTS_QUEUE_URL"),
            interval,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashgate_core::manifest::SigningKey;
    use std::collections::HashMap;

    fn public() -> String {
        SigningKey::from_seed([3; 32]).public().to_text()
    }

    fn parse(extra: &[(&str, &str)]) -> anyhow::Result<Config> {
        let mut vars: HashMap<String, String> = [
            ("HASHGATE_LISTS_BUCKET", "lists"),
            ("HASHGATE_HASH_TABLE", "hashes"),
            ("HASHGATE_FILTER_BUCKET", "filters"),
            (
                "HASHGATE_FILTER_SIGNING_SECRET",
                "arn:aws:secretsmanager:eu-west-1:1:secret:k",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        vars.insert("HASHGATE_FILTER_PUBLIC_KEYS".into(), public());
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        Config::from_vars(|n| vars.get(n).cloned())
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.snapshots_kept, 10);
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.fp_rate, DEFAULT_FP_RATE);
        assert!(c.sources.is_empty() && c.event_bus.is_none() && c.queue_url.is_none());
        assert_eq!(c.interval, DEFAULT_INTERVAL);
        assert!(matches!(c.signing, KeySource::Secret(_)));
    }

    #[test]
    fn every_bad_value_is_named() {
        for (name, value) in [
            ("HASHGATE_LISTS_BUCKET", ""),
            ("HASHGATE_LISTS_BUCKET", "a/b"),
            ("HASHGATE_FILTER_PUBLIC_KEYS", "ed25519:nope"),
            ("HASHGATE_FILTER_PUBLIC_KEYS", " "),
            ("HASHGATE_SNAPSHOTS_KEPT", "1"),
            ("HASHGATE_SNAPSHOTS_KEPT", "ten"),
            ("HASHGATE_LIST_MAX_BYTES", "0"),
            ("HASHGATE_LIST_MAX_ENTRIES", "-3"),
            ("HASHGATE_WITHDRAW_MAX_SHARE", "1.5"),
            ("HASHGATE_WITHDRAW_MAX_SHARE", "0"),
            ("HASHGATE_FILTER_FP_RATE", "1"),
            ("HASHGATE_LIST_SOURCES", "{}"),
            (
                "HASHGATE_LIST_SOURCES",
                r#"[{"name":"f","kind":"http","url":"https://x.example/l","list":"f","format":"csv","headers_secret":"s"}]"#,
            ),
            ("HASHGATE_SYNC_INTERVAL_SECONDS", "0"),
        ] {
            let err = parse(&[(name, value)]).unwrap_err();
            assert!(
                format!("{err:#}").contains(name),
                "{name}={value:?}: {err:#}"
            );
        }
        // No signing key at all.
        let err = parse(&[("HASHGATE_FILTER_SIGNING_SECRET", "")]).unwrap_err();
        assert!(format!("{err:#}").contains("HASHGATE_FILTER_SIGNING_SECRET"));
    }

    #[test]
    fn set_values_are_taken() {
        let c = parse(&[
            ("HASHGATE_WITHDRAW_MAX_SHARE", "1"),
            ("HASHGATE_EVENT_BUS", "bus"),
            ("HASHGATE_LISTS_QUEUE_URL", "http://q"),
            ("HASHGATE_SYNC_INTERVAL_SECONDS", "7"),
            (
                "HASHGATE_LIST_SOURCES",
                r#"[{"name":"feed","kind":"http","url":"https://lists.example/feed.csv","list":"feed","format":"csv"}]"#,
            ),
        ])
        .unwrap();
        assert_eq!(c.limits.max_withdraw_share, 1.0);
        assert_eq!(c.event_bus.as_deref(), Some("bus"));
        assert_eq!(c.interval, Duration::from_secs(7));
        assert_eq!(c.sources.len(), 1);
        assert_eq!(
            parse(&[("HASHGATE_EVENT_BUS", "none")]).unwrap().event_bus,
            None
        );
    }
}
