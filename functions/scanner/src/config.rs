//! The scanner's configuration (the README's table lists its variables).
//!
//! [`Config::from_vars`] is the parser: a pure function of a lookup from variable names to
//! values, so that every variable's default, valid values and refusals are unit-tested with
//! a literal map. [`Config::from_env`] only hands it the process environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context};
use hashgate_aws::filter_source::FilterLocation;
use hashgate_core::manifest::TrustedKeys;
use hashgate_core::pipeline::PerceptualConfig;
use hashgate_core::quarantine::Mode;

use crate::amqp::AmqpConfig;
use crate::ops::OpsConfig;
use crate::webhook::WebhookConfig;

/// Where the exact hash store is.
#[derive(Clone, Debug)]
pub enum HashBackend {
    /// `HASHGATE_HASH_TABLE`: DynamoDB, with the filter snapshot in S3.
    Dynamo {
        table: String,
        filter: FilterLocation,
        /// `HASHGATE_FILTER_PUBLIC_KEYS`: who may publish filters.
        trusted: TrustedKeys,
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
    /// `HASHGATE_PDQ_THRESHOLD`, `HASHGATE_PDQ_MIN_QUALITY`, `HASHGATE_PERCEPTUAL_MODE`.
    pub perceptual: PerceptualConfig,
    /// Worker mode: where events come from (`HASHGATE_INGRESS`); None in Lambda.
    pub ingress: Option<Ingress>,
    /// The SQS and AMQP workers' health and metrics endpoints, when `HASHGATE_HTTP_LISTEN`
    /// is set (the webhook always serves them, beside its events).
    pub ops: Option<OpsConfig>,
}

/// How a worker outside Lambda receives events.
#[derive(Clone, Debug)]
pub enum Ingress {
    /// `HASHGATE_INGRESS=sqs`: long-poll `HASHGATE_SCAN_QUEUE_URL`.
    Sqs { queue_url: String },
    /// `HASHGATE_INGRESS=http`: the webhook stores push to, spooled on local disk.
    Http(WebhookConfig),
    /// `HASHGATE_INGRESS=amqp`: a RabbitMQ queue bound to the exchange stores publish to.
    Amqp(AmqpConfig),
}

/// Default largest object scanned: 5 GiB, the largest single PUT.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 5 * 1024 * 1024 * 1024;
pub const DEFAULT_FILTER_REFRESH_SECONDS: u64 = 60;
pub const DEFAULT_RETENTION_DAYS: u32 = 365;
pub const DEFAULT_EVENT_BUS: &str = "default";

/// The one way the parser reads a variable. A value that is empty or only whitespace counts
/// as absent, so a template or env file can leave a variable blank to mean "the default".
struct Vars<F>(F);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    fn required(&self, name: &str) -> anyhow::Result<String> {
        self.get(name).with_context(|| format!("{name} is not set"))
    }

    /// The value, trimmed and parsed, or `default` when absent. A value that does not parse,
    /// or that `valid` refuses, is an error naming the variable, the value and what was
    /// `expected`.
    fn parsed<T>(
        &self,
        name: &str,
        default: T,
        expected: &str,
        valid: impl Fn(&T) -> bool,
    ) -> anyhow::Result<T>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        match v.trim().parse() {
            Ok(parsed) if valid(&parsed) => Ok(parsed),
            Ok(_) => bail!("{name}={v:?}: expected {expected}"),
            Err(e) => bail!("{name}={v:?}: expected {expected} ({e})"),
        }
    }

    /// A yes/no variable, in any letter case: `1`, `true`, `yes`, `on` or `0`, `false`,
    /// `no`, `off`.
    fn flag(&self, name: &str, default: bool) -> anyhow::Result<bool> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        match v.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => bail!("{name}={v:?}: expected true or false (or 1/0, yes/no, on/off)"),
        }
    }
}

fn any<T>(_: &T) -> bool {
    true
}

impl Config {
    /// The configuration from the process environment (a variable whose value is not
    /// Unicode counts as absent).
    pub fn from_env() -> anyhow::Result<Config> {
        Config::from_vars(|name| std::env::var(name).ok())
    }

    /// The configuration from `vars`, which gives a variable's value by name (`None` when it
    /// is not set). An error names the variable at fault and, when it is set, its value.
    pub fn from_vars(vars: impl Fn(&str) -> Option<String>) -> anyhow::Result<Config> {
        let vars = Vars(vars);
        // HASHGATE_HASH_TABLE wins over HASHGATE_DB when both are set.
        let hashes = match (vars.get("HASHGATE_HASH_TABLE"), vars.get("HASHGATE_DB")) {
            (Some(table), _) => HashBackend::Dynamo {
                table,
                filter: FilterLocation {
                    bucket: vars.get("HASHGATE_FILTER_BUCKET").context(
                        "HASHGATE_FILTER_BUCKET is not set: \
                         a DynamoDB hash store (HASHGATE_HASH_TABLE) needs its filter bucket",
                    )?,
                },
                trusted: {
                    let keys = vars.get("HASHGATE_FILTER_PUBLIC_KEYS").context(
                        "HASHGATE_FILTER_PUBLIC_KEYS is not set: a scanner takes only filters \
                         signed by a key it trusts (the public key `hashgate keys generate` \
                         printed)",
                    )?;
                    TrustedKeys::parse(&keys).map_err(|e| {
                        anyhow::anyhow!("HASHGATE_FILTER_PUBLIC_KEYS={keys:?}: {e}")
                    })?
                },
            },
            (None, Some(dir)) => HashBackend::Embedded { dir: dir.into() },
            (None, None) => bail!(
                "no hash store: set HASHGATE_HASH_TABLE (DynamoDB) or HASHGATE_DB (a local hash database)"
            ),
        };
        let mode = match vars.get("HASHGATE_QUARANTINE_MODE").as_deref() {
            None | Some("move") => Mode::Move,
            Some("hold") => Mode::HoldInPlace,
            Some(other) => bail!("HASHGATE_QUARANTINE_MODE={other:?}: expected move or hold"),
        };
        let perceptual = PerceptualConfig {
            threshold: vars.parsed(
                "HASHGATE_PDQ_THRESHOLD",
                hashgate_core::pdq::DEFAULT_THRESHOLD,
                "a Hamming distance from 0 to 47 bits (of 256; the PDQ index's range)",
                |&d| d <= hashgate_core::pdq::index::MAX_INDEXED_THRESHOLD,
            )?,
            min_quality: vars.parsed(
                "HASHGATE_PDQ_MIN_QUALITY",
                hashgate_core::pdq::DEFAULT_MIN_QUALITY,
                "a PDQ quality from 0 to 100",
                |&q| q <= 100,
            )?,
            mode: match vars.get("HASHGATE_PERCEPTUAL_MODE").as_deref() {
                None | Some("move") => Mode::Move,
                Some("hold") => Mode::HoldInPlace,
                Some("review") => Mode::ReviewOnly,
                Some(other) => {
                    bail!("HASHGATE_PERCEPTUAL_MODE={other:?}: expected move, hold or review")
                }
            },
        };
        let event_bus = match vars.get("HASHGATE_EVENT_BUS").as_deref() {
            None => Some(DEFAULT_EVENT_BUS.to_string()),
            Some("none") => None,
            Some(bus) => Some(bus.to_string()),
        };
        let retention_days = vars.parsed(
            "HASHGATE_RETENTION_DAYS",
            DEFAULT_RETENTION_DAYS,
            "a whole number of days, at least 365 (18 U.S.C. 2258A(h): reported content is kept a year)",
            |&days| days >= 365,
        )?;
        Ok(Config {
            hashes,
            quarantine_bucket: vars.required("HASHGATE_QUARANTINE_BUCKET")?,
            case_table: vars.required("HASHGATE_CASE_TABLE")?,
            audit_table: vars.required("HASHGATE_AUDIT_TABLE")?,
            review_queue_url: vars.required("HASHGATE_REVIEW_QUEUE_URL")?,
            event_bus,
            filter_refresh: Duration::from_secs(vars.parsed(
                "HASHGATE_FILTER_REFRESH_SECONDS",
                DEFAULT_FILTER_REFRESH_SECONDS,
                "a whole number of seconds",
                any,
            )?),
            max_object_bytes: vars.parsed(
                "HASHGATE_MAX_OBJECT_BYTES",
                DEFAULT_MAX_OBJECT_BYTES,
                "a whole number of bytes",
                any,
            )?,
            retention_days,
            mode,
            tag_clean: vars.flag("HASHGATE_TAG_CLEAN", true)?,
            perceptual,
            ingress: ingress(&vars)?,
            ops: ops(&vars)?,
        })
    }
}

/// `HASHGATE_HTTP_TOKEN`, required by `what`, and long enough.
fn http_token<F: Fn(&str) -> Option<String>>(vars: &Vars<F>, what: &str) -> anyhow::Result<String> {
    let token = vars
        .get("HASHGATE_HTTP_TOKEN")
        .with_context(|| format!("{what} needs HASHGATE_HTTP_TOKEN"))?;
    if token.trim().chars().count() < WebhookConfig::MIN_TOKEN_CHARS {
        bail!(
            "HASHGATE_HTTP_TOKEN: expected at least {} characters (e.g. `openssl rand -hex 32`)",
            WebhookConfig::MIN_TOKEN_CHARS
        );
    }
    Ok(token.trim().to_string())
}

fn listen<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> anyhow::Result<SocketAddr> {
    vars.parsed(
        "HASHGATE_HTTP_LISTEN",
        WebhookConfig::DEFAULT_LISTEN
            .parse()
            .expect("default address"),
        "an address and port such as 127.0.0.1:8087 or 0.0.0.0:8087",
        any,
    )
}

/// The SQS and AMQP workers serve `/healthz`, `/readyz` and `/metrics` only when asked to
/// listen: several workers on one machine would otherwise fight over the default port.
fn ops<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> anyhow::Result<Option<OpsConfig>> {
    let ingress = vars.get("HASHGATE_INGRESS");
    if ingress.as_deref().map(str::trim) == Some("http")
        || vars.get("HASHGATE_HTTP_LISTEN").is_none()
    {
        return Ok(None);
    }
    Ok(Some(OpsConfig {
        listen: listen(vars)?,
        token: http_token(vars, "HASHGATE_HTTP_LISTEN (the token /metrics takes)")?,
    }))
}

/// `HASHGATE_INGRESS` and what it needs. Without it, a set `HASHGATE_SCAN_QUEUE_URL` means
/// SQS (as before there was a choice), and nothing means none (Lambda).
fn ingress<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> anyhow::Result<Option<Ingress>> {
    let queue = vars.get("HASHGATE_SCAN_QUEUE_URL");
    match vars.get("HASHGATE_INGRESS").as_deref().map(str::trim) {
        None => Ok(queue.map(|queue_url| Ingress::Sqs { queue_url })),
        Some("sqs") => Ok(Some(Ingress::Sqs {
            queue_url: queue.context(
                "HASHGATE_INGRESS=sqs needs HASHGATE_SCAN_QUEUE_URL, the queue to long-poll",
            )?,
        })),
        Some("http") => {
            let token = http_token(vars, "HASHGATE_INGRESS=http (the token stores must send)")?;
            Ok(Some(Ingress::Http(WebhookConfig {
                listen: listen(vars)?,
                token,
                spool_dir: vars
                    .get("HASHGATE_SPOOL_DIR")
                    .context(
                        "HASHGATE_INGRESS=http needs HASHGATE_SPOOL_DIR, a directory on local \
                         disk where accepted events wait",
                    )?
                    .into(),
                max_pending: vars.parsed(
                    "HASHGATE_SPOOL_MAX",
                    WebhookConfig::DEFAULT_MAX_PENDING,
                    "a whole number of events, at least 1",
                    |&n| n >= 1,
                )?,
                max_attempts: vars.parsed(
                    "HASHGATE_MAX_ATTEMPTS",
                    WebhookConfig::DEFAULT_MAX_ATTEMPTS,
                    "a whole number of attempts, at least 1",
                    |&n| n >= 1,
                )?,
                concurrency: vars.parsed(
                    "HASHGATE_CONCURRENCY",
                    WebhookConfig::DEFAULT_CONCURRENCY,
                    "a whole number of uploads scanned at once, from 1 to 64",
                    |&n| (1..=64).contains(&n),
                )?,
            })))
        }
        Some("amqp") => Ok(Some(Ingress::Amqp(AmqpConfig {
            url: vars.get("HASHGATE_AMQP_URL").context(
                "HASHGATE_INGRESS=amqp needs HASHGATE_AMQP_URL (amqp://user:password@host:5672/vhost)",
            )?,
            exchange: vars
                .get("HASHGATE_AMQP_EXCHANGE")
                .unwrap_or_else(|| AmqpConfig::DEFAULT_EXCHANGE.into()),
            queue: vars
                .get("HASHGATE_AMQP_QUEUE")
                .unwrap_or_else(|| AmqpConfig::DEFAULT_QUEUE.into()),
            routing_key: vars
                .get("HASHGATE_AMQP_ROUTING_KEY")
                .unwrap_or_else(|| AmqpConfig::DEFAULT_ROUTING_KEY.into()),
            prefetch: vars.parsed(
                "HASHGATE_AMQP_PREFETCH",
                AmqpConfig::DEFAULT_PREFETCH,
                "a whole number of deliveries in hand at once, from 1 to 256",
                |&n| (1..=256).contains(&n),
            )?,
            max_attempts: vars.parsed(
                "HASHGATE_MAX_ATTEMPTS",
                WebhookConfig::DEFAULT_MAX_ATTEMPTS,
                "a whole number of attempts, at least 1",
                |&n| n >= 1,
            )?,
        }))),
        Some(other) => bail!("HASHGATE_INGRESS={other:?}: expected sqs, http or amqp"),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::deployment;

    type Map = BTreeMap<&'static str, String>;

    /// The least a DynamoDB deployment sets: the hash store, its filter bucket and the four
    /// required variables.
    /// `SigningKey::from_seed([1; 32])`'s public key.
    const PUBLIC_KEY: &str = "ed25519:iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=";

    #[test]
    fn public_keys_are_required_and_checked() {
        assert_eq!(
            hashgate_core::manifest::SigningKey::from_seed([1; 32])
                .public()
                .to_text(),
            PUBLIC_KEY
        );
        assert!(err(without("HASHGATE_FILTER_PUBLIC_KEYS")).contains("HASHGATE_FILTER_PUBLIC_KEYS"));
        let message = err(with("HASHGATE_FILTER_PUBLIC_KEYS", "ed25519:short"));
        assert!(message.contains("HASHGATE_FILTER_PUBLIC_KEYS"), "{message}");
        let two = format!(
            "{PUBLIC_KEY},{}",
            hashgate_core::manifest::SigningKey::from_seed([2; 32])
                .public()
                .to_text()
        );
        let config = ok(with("HASHGATE_FILTER_PUBLIC_KEYS", &two));
        let HashBackend::Dynamo { trusted, .. } = &config.hashes else {
            panic!("not DynamoDB")
        };
        assert_eq!(trusted.ids().len(), 2);
    }

    fn dynamo() -> Map {
        [
            ("HASHGATE_HASH_TABLE", "hashes"),
            ("HASHGATE_FILTER_BUCKET", "filters"),
            ("HASHGATE_FILTER_PUBLIC_KEYS", PUBLIC_KEY),
            ("HASHGATE_QUARANTINE_BUCKET", "quarantine"),
            ("HASHGATE_CASE_TABLE", "cases"),
            ("HASHGATE_AUDIT_TABLE", "audit"),
            ("HASHGATE_REVIEW_QUEUE_URL", "https://sqs.example/review"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect()
    }

    /// The least a self-hosted deployment sets: a local hash database instead of DynamoDB.
    fn embedded() -> Map {
        let mut vars = dynamo();
        vars.remove("HASHGATE_HASH_TABLE");
        vars.remove("HASHGATE_FILTER_BUCKET");
        vars.insert("HASHGATE_DB", "/var/lib/hashgate".into());
        vars
    }

    fn parse(vars: &Map) -> anyhow::Result<Config> {
        Config::from_vars(|name| vars.get(name).cloned())
    }

    /// [`dynamo`] with `name` set to `value`.
    fn with(name: &'static str, value: &str) -> anyhow::Result<Config> {
        let mut vars = dynamo();
        vars.insert(name, value.into());
        parse(&vars)
    }

    /// [`dynamo`] without `name`.
    fn without(name: &str) -> anyhow::Result<Config> {
        let mut vars = dynamo();
        vars.remove(name);
        parse(&vars)
    }

    fn ok(config: anyhow::Result<Config>) -> Config {
        config.unwrap_or_else(|e| panic!("refused: {e:#}"))
    }

    fn err(config: anyhow::Result<Config>) -> String {
        match config {
            Ok(config) => panic!("accepted: {config:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// `name=value` is refused, and the message (its first line, as logged) names both.
    fn assert_refused(name: &'static str, value: &str) {
        let message = err(with(name, value));
        let named = format!("{name}={value:?}");
        assert!(
            message.contains(&named),
            "{name}={value:?}: the error {message:?} does not name {named}"
        );
    }

    /// Setting `name` empty or to whitespace is the same as leaving it out.
    fn assert_blank_is_absent(base: Map, name: &'static str) {
        let mut absent = base.clone();
        absent.remove(name);
        let absent = parse(&absent)
            .map(|c| format!("{c:?}"))
            .map_err(|e| e.to_string());
        for blank in ["", " ", "\t \n"] {
            let mut vars = base.clone();
            vars.insert(name, blank.into());
            let blank_result = parse(&vars)
                .map(|c| format!("{c:?}"))
                .map_err(|e| e.to_string());
            assert_eq!(blank_result, absent, "{name}={blank:?}");
        }
    }

    #[test]
    fn defaults_of_every_optional_variable() {
        let config = ok(parse(&dynamo()));
        assert_eq!(config.filter_refresh, Duration::from_secs(60));
        assert_eq!(config.max_object_bytes, 5_368_709_120);
        assert_eq!(config.retention_days, 365);
        assert_eq!(config.mode, Mode::Move);
        assert!(config.tag_clean);
        assert_eq!(config.event_bus.as_deref(), Some("default"));
        assert!(config.ingress.is_none());
    }

    #[test]
    fn every_variable_set_empty_or_to_whitespace_counts_as_absent() {
        for v in deployment::VARIABLES {
            assert_blank_is_absent(dynamo(), v.name);
            assert_blank_is_absent(embedded(), v.name);
        }
    }

    #[test]
    fn required_variables_are_named_when_missing_or_blank() {
        for name in [
            "HASHGATE_QUARANTINE_BUCKET",
            "HASHGATE_CASE_TABLE",
            "HASHGATE_AUDIT_TABLE",
            "HASHGATE_REVIEW_QUEUE_URL",
        ] {
            assert_eq!(err(without(name)), format!("{name} is not set"));
            assert_eq!(err(with(name, " ")), format!("{name} is not set"));
        }
    }

    #[test]
    fn required_variables_are_taken_as_given() {
        let config = ok(parse(&dynamo()));
        assert_eq!(config.quarantine_bucket, "quarantine");
        assert_eq!(config.case_table, "cases");
        assert_eq!(config.audit_table, "audit");
        assert_eq!(config.review_queue_url, "https://sqs.example/review");
    }

    #[test]
    fn hash_table_is_a_dynamodb_store_with_its_filter_bucket() {
        let config = ok(parse(&dynamo()));
        let HashBackend::Dynamo { table, filter, .. } = &config.hashes else {
            panic!("not DynamoDB: {config:?}");
        };
        assert_eq!(table, "hashes");
        assert_eq!(filter.bucket, "filters");
    }

    #[test]
    fn hash_table_without_filter_bucket_is_refused_naming_both() {
        for config in [
            without("HASHGATE_FILTER_BUCKET"),
            with("HASHGATE_FILTER_BUCKET", "  "),
        ] {
            let message = err(config);
            assert!(
                message.contains("HASHGATE_FILTER_BUCKET is not set")
                    && message.contains("HASHGATE_HASH_TABLE"),
                "{message}"
            );
        }
    }

    #[test]
    fn hash_table_takes_precedence_over_db() {
        let config = ok(with("HASHGATE_DB", "/var/lib/hashgate"));
        assert!(
            matches!(config.hashes, HashBackend::Dynamo { ref table, .. } if table == "hashes")
        );
    }

    #[test]
    fn db_without_hash_table_is_an_embedded_store_needing_no_filter_bucket() {
        let config = ok(parse(&embedded()));
        let HashBackend::Embedded { dir } = &config.hashes else {
            panic!("not embedded: {config:?}");
        };
        assert_eq!(dir, &PathBuf::from("/var/lib/hashgate"));
        // A blank table name is no table: the database is used.
        let mut vars = embedded();
        vars.insert("HASHGATE_HASH_TABLE", " ".into());
        assert!(matches!(
            ok(parse(&vars)).hashes,
            HashBackend::Embedded { .. }
        ));
    }

    #[test]
    fn neither_hash_table_nor_db_is_refused_naming_both() {
        let mut vars = dynamo();
        vars.remove("HASHGATE_HASH_TABLE");
        let message = err(parse(&vars));
        assert!(
            message.contains("HASHGATE_HASH_TABLE") && message.contains("HASHGATE_DB"),
            "{message}"
        );
        vars.insert("HASHGATE_HASH_TABLE", "".into());
        vars.insert("HASHGATE_DB", " ".into());
        assert_eq!(err(parse(&vars)), message);
    }

    #[test]
    fn filter_refresh_seconds() {
        let refresh = |v| ok(with("HASHGATE_FILTER_REFRESH_SECONDS", v)).filter_refresh;
        assert_eq!(refresh("300"), Duration::from_secs(300));
        assert_eq!(refresh(" 300 "), Duration::from_secs(300));
        assert_eq!(refresh("0"), Duration::ZERO);
        for bad in ["-1", "1.5", "60s", "sixty", "18446744073709551616"] {
            assert_refused("HASHGATE_FILTER_REFRESH_SECONDS", bad);
        }
    }

    #[test]
    fn retention_days() {
        let days = |v| ok(with("HASHGATE_RETENTION_DAYS", v)).retention_days;
        assert_eq!(days("365"), 365);
        assert_eq!(days(" 730 "), 730);
        assert_eq!(days("4294967295"), u32::MAX);
        for bad in ["0", "00", "-1", "30", "364", "1y", "2.5", "4294967296"] {
            assert_refused("HASHGATE_RETENTION_DAYS", bad);
        }
        assert!(err(with("HASHGATE_RETENTION_DAYS", "30")).contains("at least 365"));
    }

    #[test]
    fn max_object_bytes() {
        let max = |v| ok(with("HASHGATE_MAX_OBJECT_BYTES", v)).max_object_bytes;
        assert_eq!(max("1048576"), 1_048_576);
        assert_eq!(max("0"), 0);
        assert_eq!(max("18446744073709551615"), u64::MAX);
        for bad in [
            "12x",
            "-5",
            "5GiB",
            "1e9",
            "5 368 709 120",
            "18446744073709551616",
        ] {
            assert_refused("HASHGATE_MAX_OBJECT_BYTES", bad);
        }
    }

    #[test]
    fn quarantine_mode() {
        let mode = |v| ok(with("HASHGATE_QUARANTINE_MODE", v)).mode;
        assert_eq!(mode("move"), Mode::Move);
        assert_eq!(mode("hold"), Mode::HoldInPlace);
        for bad in ["shred", "delete", "HOLD", "hold-in-place"] {
            assert_refused("HASHGATE_QUARANTINE_MODE", bad);
        }
    }

    #[test]
    fn tag_clean() {
        let tag = |v| ok(with("HASHGATE_TAG_CLEAN", v)).tag_clean;
        for yes in ["1", "true", "yes", "on", "TRUE", "Yes", "On"] {
            assert!(tag(yes), "{yes}");
        }
        for no in ["0", "false", "no", "off", "FALSE", "No", "OFF"] {
            assert!(!tag(no), "{no}");
        }
        for bad in ["maybe", "2", "enabled", "Maybe", "y"] {
            assert_refused("HASHGATE_TAG_CLEAN", bad);
        }
    }

    #[test]
    fn event_bus() {
        let bus = |v| ok(with("HASHGATE_EVENT_BUS", v)).event_bus;
        assert_eq!(bus("none"), None);
        assert_eq!(bus("hashgate").as_deref(), Some("hashgate"));
        let arn = "arn:aws:events:eu-west-1:123456789012:event-bus/hashgate";
        assert_eq!(bus(arn).as_deref(), Some(arn));
        assert_eq!(bus("default").as_deref(), Some("default"));
    }

    #[test]
    fn scan_queue_url() {
        let url = "https://sqs.example/scan";
        let config = ok(with("HASHGATE_SCAN_QUEUE_URL", url));
        assert!(matches!(config.ingress, Some(Ingress::Sqs { queue_url }) if queue_url == url));
        assert!(ok(parse(&dynamo())).ingress.is_none(), "Lambda");
        let mut vars = dynamo();
        vars.insert("HASHGATE_INGRESS", "sqs".into());
        assert!(err(parse(&vars)).contains("HASHGATE_SCAN_QUEUE_URL"));
    }

    fn http() -> Map {
        let mut vars = dynamo();
        vars.insert("HASHGATE_INGRESS", "http".into());
        vars.insert("HASHGATE_HTTP_TOKEN", "0123456789abcdef0123".into());
        vars.insert("HASHGATE_SPOOL_DIR", "/var/spool/hashgate".into());
        vars
    }

    #[test]
    fn http_ingress_needs_a_token_and_a_spool() {
        let Some(Ingress::Http(web)) = ok(parse(&http())).ingress else {
            panic!("http")
        };
        assert_eq!(web.listen.to_string(), "127.0.0.1:8087");
        assert_eq!(web.spool_dir, PathBuf::from("/var/spool/hashgate"));
        assert_eq!(
            (web.max_pending, web.max_attempts, web.concurrency),
            (100_000, 8, 4)
        );
        for missing in ["HASHGATE_HTTP_TOKEN", "HASHGATE_SPOOL_DIR"] {
            let mut vars = http();
            vars.remove(missing);
            assert!(err(parse(&vars)).contains(missing), "{missing}");
        }
        let mut vars = http();
        vars.insert("HASHGATE_HTTP_TOKEN", "short".into());
        assert!(err(parse(&vars)).contains("at least 16"));
        for (name, bad) in [
            ("HASHGATE_HTTP_LISTEN", "localhost"),
            ("HASHGATE_SPOOL_MAX", "0"),
            ("HASHGATE_MAX_ATTEMPTS", "0"),
            ("HASHGATE_CONCURRENCY", "65"),
            ("HASHGATE_INGRESS", "kafka"),
        ] {
            let mut vars = http();
            vars.insert(name, bad.into());
            let message = err(parse(&vars));
            assert!(message.contains(name) && message.contains(bad), "{message}");
        }
        let mut vars = http();
        vars.insert("HASHGATE_HTTP_LISTEN", "0.0.0.0:9000".into());
        vars.insert("HASHGATE_CONCURRENCY", "16".into());
        let Some(Ingress::Http(web)) = ok(parse(&vars)).ingress else {
            panic!("http")
        };
        assert_eq!((web.listen.port(), web.concurrency), (9000, 16));
    }

    #[test]
    fn queue_workers_serve_health_and_metrics_only_when_asked() {
        assert!(ok(parse(&amqp())).ops.is_none());
        let mut vars = amqp();
        vars.insert("HASHGATE_HTTP_LISTEN", "0.0.0.0:8087".into());
        assert!(err(parse(&vars)).contains("HASHGATE_HTTP_TOKEN"));
        vars.insert("HASHGATE_HTTP_TOKEN", "short".into());
        assert!(err(parse(&vars)).contains("at least 16"));
        vars.insert("HASHGATE_HTTP_TOKEN", "0123456789abcdef0123".into());
        let ops = ok(parse(&vars)).ops.expect("ops");
        assert_eq!(ops.listen.to_string(), "0.0.0.0:8087");
        assert!(!format!("{ops:?}").contains("0123456789abcdef"));
        let mut sqs = dynamo();
        sqs.insert("HASHGATE_SCAN_QUEUE_URL", "https://sqs.example/scan".into());
        sqs.insert("HASHGATE_HTTP_LISTEN", "127.0.0.1:9100".into());
        sqs.insert("HASHGATE_HTTP_TOKEN", "0123456789abcdef0123".into());
        assert_eq!(ok(parse(&sqs)).ops.expect("ops").listen.port(), 9100);
        // The webhook serves them itself.
        let mut web = http();
        web.insert("HASHGATE_HTTP_LISTEN", "127.0.0.1:9100".into());
        assert!(ok(parse(&web)).ops.is_none());
    }

    fn amqp() -> Map {
        let mut vars = dynamo();
        vars.insert("HASHGATE_INGRESS", "amqp".into());
        vars.insert("HASHGATE_AMQP_URL", "amqp://u:p@rabbit:5672/%2f".into());
        vars
    }

    #[test]
    fn amqp_ingress_needs_a_url_and_defaults_the_rest() {
        let Some(Ingress::Amqp(a)) = ok(parse(&amqp())).ingress else {
            panic!("amqp")
        };
        assert_eq!(
            (
                a.exchange.as_str(),
                a.queue.as_str(),
                a.routing_key.as_str()
            ),
            ("hashgate", "hashgate-scan", "#")
        );
        assert_eq!((a.prefetch, a.max_attempts), (8, 8));
        let mut vars = amqp();
        vars.remove("HASHGATE_AMQP_URL");
        assert!(err(parse(&vars)).contains("HASHGATE_AMQP_URL"));
        let mut vars = amqp();
        vars.insert("HASHGATE_AMQP_PREFETCH", "0".into());
        assert!(err(parse(&vars)).contains("HASHGATE_AMQP_PREFETCH=\"0\""));
        let mut vars = amqp();
        vars.insert("HASHGATE_AMQP_EXCHANGE", "ceph".into());
        vars.insert("HASHGATE_AMQP_QUEUE", "scan".into());
        vars.insert("HASHGATE_AMQP_ROUTING_KEY", "uploads".into());
        vars.insert("HASHGATE_AMQP_PREFETCH", "32".into());
        vars.insert("HASHGATE_MAX_ATTEMPTS", "3".into());
        let Some(Ingress::Amqp(a)) = ok(parse(&vars)).ingress else {
            panic!("amqp")
        };
        assert_eq!(
            (
                a.exchange.as_str(),
                a.queue.as_str(),
                a.routing_key.as_str()
            ),
            ("ceph", "scan", "uploads")
        );
        assert_eq!((a.prefetch, a.max_attempts), (32, 3));
    }

    #[test]
    fn variables_outside_the_scanners_are_ignored() {
        let mut vars = dynamo();
        vars.insert("AWS_REGION", "eu-west-1".into());
        vars.insert("PATH", "/usr/bin".into());
        assert_eq!(
            format!("{:?}", ok(parse(&vars))),
            format!("{:?}", ok(parse(&dynamo())))
        );
    }

    /// Every name the parser asks for, over both kinds of hash store with every optional
    /// variable set.
    fn names_read() -> BTreeSet<String> {
        let read = RefCell::new(BTreeSet::new());
        let mut full = dynamo();
        full.extend([
            ("HASHGATE_DB", "/var/lib/hashgate".to_string()),
            ("HASHGATE_FILTER_REFRESH_SECONDS", "1".into()),
            ("HASHGATE_RETENTION_DAYS", "400".into()),
            ("HASHGATE_QUARANTINE_MODE", "hold".into()),
            ("HASHGATE_MAX_OBJECT_BYTES", "1".into()),
            ("HASHGATE_TAG_CLEAN", "no".into()),
            ("HASHGATE_EVENT_BUS", "none".into()),
            ("HASHGATE_SCAN_QUEUE_URL", "q".into()),
        ]);
        let mut web = http();
        web.extend([
            ("HASHGATE_HTTP_LISTEN", "127.0.0.1:1".to_string()),
            ("HASHGATE_SPOOL_MAX", "1".into()),
            ("HASHGATE_MAX_ATTEMPTS", "1".into()),
            ("HASHGATE_CONCURRENCY", "1".into()),
        ]);
        let mut queue = amqp();
        queue.extend([
            ("HASHGATE_AMQP_EXCHANGE", "x".to_string()),
            ("HASHGATE_AMQP_QUEUE", "q".into()),
            ("HASHGATE_AMQP_ROUTING_KEY", "k".into()),
            ("HASHGATE_AMQP_PREFETCH", "1".into()),
        ]);
        for vars in [dynamo(), embedded(), full, web, queue] {
            ok(Config::from_vars(|name| {
                read.borrow_mut().insert(name.to_string());
                vars.get(name).cloned()
            }));
        }
        read.into_inner()
    }

    #[test]
    fn every_variable_read_is_in_the_deployment_list() {
        let declared: BTreeSet<&str> = deployment::VARIABLES.iter().map(|v| v.name).collect();
        let read = names_read();
        for name in &read {
            assert!(
                declared.contains(name.as_str()),
                "the parser reads {name}, which deployment::VARIABLES does not declare"
            );
        }
        // And the parser reads every declared variable but the log filter and format, which
        // main.rs reads before there is a configuration.
        let unread: Vec<&str> = declared
            .into_iter()
            .filter(|name| !read.contains(*name))
            .collect();
        assert_eq!(unread, ["HASHGATE_LOG", "HASHGATE_LOG_FORMAT"]);
    }
}
