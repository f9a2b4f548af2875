//! The review function's configuration, a pure function of its variables
//! ([`Config::from_vars`]); [`Config::from_env`] hands it the process environment.

use std::net::SocketAddr;

use anyhow::{bail, Context};
use hashgate_core::report::ReportConfig;
use hashgate_core::review::ReviewPolicy;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthConfig {
    pub region: String,
    pub user_pool_id: String,
    pub client_id: String,
    /// The identity provider's endpoint: where the page signs in, and where the JWKS is.
    pub idp_endpoint: String,
    /// The `iss` every token must carry.
    pub issuer: String,
    pub jwks_url: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub case_table: String,
    pub audit_table: String,
    pub checkpoint_bucket: String,
    pub signing_key: String,
    pub checkpoint_seconds: u64,
    pub auth: AuthConfig,
    pub policy: ReviewPolicy,
    /// How long the page shows a revealed preview before blurring it again.
    pub reveal_seconds: u32,
    /// The largest object read for a preview.
    pub max_preview_bytes: u64,
    /// Outside Lambda: where the HTTP server listens.
    pub bind: SocketAddr,
    /// The exact hash store: confirmed digests join the provider's own list there, and false
    /// positives are recorded against the entries they matched.
    pub hash_table: String,
    /// Where report packages are written (Object Lock).
    pub reports_bucket: String,
    /// The EventBridge bus "Report Ready" is published on (`none`: not published).
    pub event_bus: Option<String>,
    /// Who files the reports, and what they give (`HASHGATE_REPORT_CONFIG`, JSON); none: a
    /// confirmed case's package waits on the case until it is configured.
    pub report: Option<ReportConfig>,
    /// The provider's own list's name.
    pub own_list: String,
    /// False positives after which a list entry is suppressed (0: never).
    pub suppress_after: u32,
}

pub const DEFAULT_BIND: &str = "127.0.0.1:8790";
pub const DEFAULT_CHECKPOINT_SECONDS: u64 = 300;
pub const DEFAULT_REVEAL_SECONDS: u32 = 10;
pub const DEFAULT_MAX_PREVIEW_BYTES: u64 = 64 * 1024 * 1024;
pub const DEFAULT_EVENT_BUS: &str = "default";
pub const DEFAULT_SUPPRESS_AFTER: u32 = 3;

impl Config {
    pub fn from_env() -> anyhow::Result<Config> {
        Config::from_vars(|name| std::env::var(name).ok())
    }

    /// Parse the variables; blank counts as absent; every refusal names the variable and
    /// the value.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Config> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let required = |name: &str| get(name).with_context(|| format!("{name} is not set"));
        fn number<T: std::str::FromStr>(
            name: &str,
            value: Option<String>,
            default: T,
            valid: impl Fn(&T) -> bool,
            expected: &str,
        ) -> anyhow::Result<T> {
            let Some(v) = value else { return Ok(default) };
            match v.trim().parse::<T>() {
                Ok(n) if valid(&n) => Ok(n),
                _ => bail!("{name}={v:?} is not valid: expected {expected}"),
            }
        }
        let region = get("AWS_REGION")
            .or_else(|| get("AWS_DEFAULT_REGION"))
            .context("AWS_REGION is not set")?;
        let user_pool_id = required("HASHGATE_USER_POOL_ID")?;
        let client_id = required("HASHGATE_USER_POOL_CLIENT_ID")?;
        let idp_endpoint = get("HASHGATE_IDP_ENDPOINT")
            .unwrap_or_else(|| format!("https://cognito-idp.{region}.amazonaws.com"))
            .trim_end_matches('/')
            .to_string();
        if !(idp_endpoint.starts_with("https://") || idp_endpoint.starts_with("http://")) {
            bail!("HASHGATE_IDP_ENDPOINT={idp_endpoint:?} is not valid: expected an http(s) URL");
        }
        // Cognito names its issuer by the region and pool wherever it is reached from (the
        // emulator does the same), while the keys are served by the endpoint itself.
        let issuer = format!("https://cognito-idp.{region}.amazonaws.com/{user_pool_id}");
        let jwks_url = format!("{idp_endpoint}/{user_pool_id}/.well-known/jwks.json");
        let two_person_rule = match get("HASHGATE_TWO_PERSON_RULE").as_deref().map(str::trim) {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                bail!("HASHGATE_TWO_PERSON_RULE={other:?} is not valid: expected true or false")
            }
        };
        let restore_prefix =
            get("HASHGATE_RESTORE_PREFIX").unwrap_or_else(|| "hashgate-restored/".into());
        if restore_prefix.starts_with('/') || !restore_prefix.ends_with('/') {
            bail!(
                "HASHGATE_RESTORE_PREFIX={restore_prefix:?} is not valid: expected a key prefix \
                 ending in / and not starting with one"
            );
        }
        let bind = get("HASHGATE_REVIEW_BIND").unwrap_or_else(|| DEFAULT_BIND.into());
        let bind: SocketAddr = bind.trim().parse().map_err(|_| {
            anyhow::anyhow!("HASHGATE_REVIEW_BIND={bind:?} is not valid: expected address:port")
        })?;
        let report = match get("HASHGATE_REPORT_CONFIG") {
            None => None,
            Some(json) => {
                let config: ReportConfig = serde_json::from_str(&json).map_err(|e| {
                    anyhow::anyhow!("HASHGATE_REPORT_CONFIG is not valid: {e} (expected JSON like {{\"reporter\":{{\"email\":\"tips@example.org\"}}}})")
                })?;
                config
                    .check()
                    .map_err(|e| anyhow::anyhow!("HASHGATE_REPORT_CONFIG is not valid: {e}"))?;
                Some(config)
            }
        };
        let own_list = get("HASHGATE_OWN_LIST")
            .unwrap_or_else(|| hashgate_core::share::DEFAULT_LIST.into())
            .trim()
            .to_string();
        hashgate_core::share::Confirmed::new(&own_list)
            .map_err(|e| anyhow::anyhow!("HASHGATE_OWN_LIST={own_list:?} is not valid: {e}"))?;
        Ok(Config {
            hash_table: required("HASHGATE_HASH_TABLE")?,
            reports_bucket: required("HASHGATE_REPORTS_BUCKET")?,
            event_bus: match get("HASHGATE_EVENT_BUS").map(|b| b.trim().to_string()) {
                None => Some(DEFAULT_EVENT_BUS.into()),
                Some(b) if b == "none" => None,
                Some(b) => Some(b),
            },
            report,
            own_list,
            suppress_after: number(
                "HASHGATE_SUPPRESS_AFTER",
                get("HASHGATE_SUPPRESS_AFTER"),
                DEFAULT_SUPPRESS_AFTER,
                |_| true,
                "a whole number of false positives (0 never suppresses)",
            )?,
            case_table: required("HASHGATE_CASE_TABLE")?,
            audit_table: required("HASHGATE_AUDIT_TABLE")?,
            checkpoint_bucket: required("HASHGATE_AUDIT_CHECKPOINT_BUCKET")?,
            signing_key: required("HASHGATE_AUDIT_SIGNING_KEY")?,
            checkpoint_seconds: number(
                "HASHGATE_AUDIT_CHECKPOINT_SECONDS",
                get("HASHGATE_AUDIT_CHECKPOINT_SECONDS"),
                DEFAULT_CHECKPOINT_SECONDS,
                |n| *n > 0,
                "a number of seconds above 0",
            )?,
            auth: AuthConfig {
                region,
                user_pool_id,
                client_id,
                idp_endpoint,
                issuer,
                jwks_url,
            },
            policy: ReviewPolicy {
                two_person_rule,
                restore_prefix,
                reveal_daily_limit: number(
                    "HASHGATE_REVEAL_DAILY_LIMIT",
                    get("HASHGATE_REVEAL_DAILY_LIMIT"),
                    20,
                    |_| true,
                    "a whole number (0 turns reveals off)",
                )?,
            },
            reveal_seconds: number(
                "HASHGATE_REVEAL_SECONDS",
                get("HASHGATE_REVEAL_SECONDS"),
                DEFAULT_REVEAL_SECONDS,
                |n| (1..=300).contains(n),
                "a number of seconds from 1 to 300",
            )?,
            max_preview_bytes: number(
                "HASHGATE_MAX_PREVIEW_BYTES",
                get("HASHGATE_MAX_PREVIEW_BYTES"),
                DEFAULT_MAX_PREVIEW_BYTES,
                |n| *n > 0,
                "a number of bytes above 0",
            )?,
            bind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("AWS_REGION", "eu-west-1"),
            ("HASHGATE_USER_POOL_ID", "eu-west-1_abc"),
            ("HASHGATE_USER_POOL_CLIENT_ID", "client"),
            ("HASHGATE_CASE_TABLE", "cases"),
            ("HASHGATE_AUDIT_TABLE", "audit"),
            ("HASHGATE_AUDIT_CHECKPOINT_BUCKET", "checkpoints"),
            ("HASHGATE_AUDIT_SIGNING_KEY", "alias/audit"),
            ("HASHGATE_HASH_TABLE", "hashes"),
            ("HASHGATE_REPORTS_BUCKET", "reports"),
        ])
    }

    fn parse(vars: &HashMap<&str, &str>) -> anyhow::Result<Config> {
        Config::from_vars(|n| vars.get(n).map(|v| v.to_string()))
    }

    #[test]
    fn defaults_and_the_issuer_of_the_pool() {
        let c = parse(&base()).unwrap();
        assert_eq!(
            c.auth.issuer,
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"
        );
        assert_eq!(
            c.auth.jwks_url,
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/.well-known/jwks.json"
        );
        assert!(c.policy.two_person_rule);
        assert_eq!(c.policy.reveal_daily_limit, 20);
        assert_eq!(c.policy.restore_prefix, "hashgate-restored/");
        assert_eq!(c.reveal_seconds, 10);
        assert_eq!(c.checkpoint_seconds, 300);
        assert_eq!(c.bind.to_string(), DEFAULT_BIND);
        assert_eq!(
            c.report, None,
            "reports are not configured until the reporter is"
        );
        assert_eq!(c.own_list, "own-confirmed");
        assert_eq!(c.suppress_after, DEFAULT_SUPPRESS_AFTER);
        assert_eq!(c.event_bus.as_deref(), Some("default"));
    }

    #[test]
    fn the_reporter_and_the_lists() {
        let mut v = base();
        v.insert(
            "HASHGATE_REPORT_CONFIG",
            r#"{"reporter":{"email":"tips@example.org"},"include_source_ip":true}"#,
        );
        v.insert("HASHGATE_OWN_LIST", "acme-confirmed");
        v.insert("HASHGATE_SUPPRESS_AFTER", "0");
        v.insert("HASHGATE_EVENT_BUS", "hashgate");
        let c = parse(&v).unwrap();
        let report = c.report.unwrap();
        assert_eq!(report.reporter.email, "tips@example.org");
        assert!(report.include_source_ip);
        assert_eq!(c.own_list, "acme-confirmed");
        assert_eq!(c.suppress_after, 0);
        assert_eq!(c.event_bus.as_deref(), Some("hashgate"));
        v.insert("HASHGATE_EVENT_BUS", "none");
        assert_eq!(parse(&v).unwrap().event_bus, None);
        for (bad, names) in [
            ("{", "HASHGATE_REPORT_CONFIG"),
            (r#"{"reporter":{}}"#, "email"),
            (
                r#"{"reporter":{"email":"not an address"}}"#,
                "reporter.email",
            ),
        ] {
            let mut v = base();
            v.insert("HASHGATE_REPORT_CONFIG", bad);
            let err = parse(&v).unwrap_err().to_string();
            assert!(
                err.contains("HASHGATE_REPORT_CONFIG") && err.contains(names),
                "{err}"
            );
        }
        let mut v = base();
        v.insert("HASHGATE_SUPPRESS_AFTER", "many");
        let err = parse(&v).unwrap_err().to_string();
        assert!(
            err.contains("HASHGATE_SUPPRESS_AFTER") && err.contains("many"),
            "{err}"
        );
    }

    #[test]
    fn a_local_identity_provider_serves_the_keys_but_names_the_same_issuer() {
        let mut v = base();
        v.insert("HASHGATE_IDP_ENDPOINT", "http://127.0.0.1:5000/");
        let c = parse(&v).unwrap();
        assert_eq!(c.auth.idp_endpoint, "http://127.0.0.1:5000");
        assert_eq!(
            c.auth.jwks_url,
            "http://127.0.0.1:5000/eu-west-1_abc/.well-known/jwks.json"
        );
        assert!(c.auth.issuer.starts_with("https://cognito-idp.eu-west-1"));
    }

    #[test]
    fn every_variable_is_parsed_and_bad_values_are_named() {
        let mut v = base();
        v.insert("HASHGATE_TWO_PERSON_RULE", "false");
        v.insert("HASHGATE_REVEAL_DAILY_LIMIT", "3");
        v.insert("HASHGATE_REVEAL_SECONDS", "2");
        v.insert("HASHGATE_RESTORE_PREFIX", "restored/");
        v.insert("HASHGATE_REVIEW_BIND", "127.0.0.1:0");
        v.insert("HASHGATE_AUDIT_CHECKPOINT_SECONDS", "60");
        v.insert("HASHGATE_MAX_PREVIEW_BYTES", "1000");
        let c = parse(&v).unwrap();
        assert!(!c.policy.two_person_rule);
        assert_eq!(c.policy.reveal_daily_limit, 3);
        assert_eq!(c.reveal_seconds, 2);
        assert_eq!(c.policy.restore_prefix, "restored/");
        assert_eq!(c.checkpoint_seconds, 60);
        assert_eq!(c.max_preview_bytes, 1000);
        for (name, bad) in [
            ("HASHGATE_TWO_PERSON_RULE", "yes"),
            ("HASHGATE_REVEAL_DAILY_LIMIT", "-1"),
            ("HASHGATE_REVEAL_SECONDS", "0"),
            ("HASHGATE_RESTORE_PREFIX", "/abs/"),
            ("HASHGATE_RESTORE_PREFIX", "noslash"),
            ("HASHGATE_REVIEW_BIND", "localhost"),
            ("HASHGATE_IDP_ENDPOINT", "cognito"),
            ("HASHGATE_AUDIT_CHECKPOINT_SECONDS", "0"),
        ] {
            let mut v = base();
            v.insert(name, bad);
            let err = parse(&v).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(bad), "{err}");
        }
        for name in [
            "AWS_REGION",
            "HASHGATE_USER_POOL_ID",
            "HASHGATE_USER_POOL_CLIENT_ID",
            "HASHGATE_CASE_TABLE",
            "HASHGATE_AUDIT_TABLE",
            "HASHGATE_AUDIT_CHECKPOINT_BUCKET",
            "HASHGATE_AUDIT_SIGNING_KEY",
            "HASHGATE_HASH_TABLE",
            "HASHGATE_REPORTS_BUCKET",
        ] {
            let mut v = base();
            v.insert(name, " ");
            let err = parse(&v).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
    }
}
