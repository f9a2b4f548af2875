//! The report sender's configuration, a pure function of its variables
//! ([`Config::from_vars`]); [`Config::from_env`] hands it the process environment.

use anyhow::{bail, Context};
use hashgate_aws::secrets::{self, CredentialSource, SECRET_VAR};
use hashgate_cybertip::TEST_ENDPOINT;

/// The reports bucket.
pub const BUCKET_VAR: &str = "HASHGATE_REPORTS_BUCKET";
/// NCMEC's reporting API's base URI.
pub const ENDPOINT_VAR: &str = "HASHGATE_CYBERTIP_ENDPOINT";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The reports bucket: the packages, their send states and NCMEC's answers. Events
    /// naming another bucket are ignored.
    pub reports_bucket: String,
    /// Where the CyberTipline credentials come from: the Secrets Manager secret
    /// `HASHGATE_CYBERTIP_SECRET` names (in Lambda), or `HASHGATE_CYBERTIP_USERNAME` and
    /// `HASHGATE_CYBERTIP_PASSWORD` (local runs). Never `NotConfigured`.
    pub credentials: CredentialSource,
    /// NCMEC's reporting API's base URI, no trailing `/`.
    pub endpoint: String,
}

/// The endpoint `HASHGATE_CYBERTIP_ENDPOINT` names (blank: NCMEC's test environment),
/// without a trailing `/`; anything but an http(s) URL is refused, naming the variable.
pub fn endpoint_from_vars(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<String> {
    let endpoint = get(ENDPOINT_VAR)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| TEST_ENDPOINT.to_string());
    let rest = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"));
    if !rest
        .is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
    {
        bail!(
            "{ENDPOINT_VAR}={endpoint:?} is not valid: expected the reporting API's http(s) base \
             URI, such as {TEST_ENDPOINT} (NCMEC's test environment, the default)"
        );
    }
    Ok(endpoint.trim_end_matches('/').to_string())
}

impl Config {
    pub fn from_env() -> anyhow::Result<Config> {
        Config::from_vars(|name| std::env::var(name).ok())
    }

    /// Parse the variables; blank counts as absent; every refusal names the variable (and
    /// the value, never a password).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Config> {
        let reports_bucket = get(BUCKET_VAR)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .with_context(|| format!("{BUCKET_VAR} is not set"))?;
        if reports_bucket.contains(['/', ':']) || reports_bucket.contains(char::is_whitespace) {
            bail!("{BUCKET_VAR}={reports_bucket:?} is not valid: expected a bucket name");
        }
        let credentials = secrets::source_from_vars(&get).map_err(anyhow::Error::new)?;
        if credentials == CredentialSource::NotConfigured {
            bail!(
                "{SECRET_VAR} is not set: the report sender needs the CyberTipline credentials \
                 (the name or ARN of a Secrets Manager secret holding {{\"username\": .., \
                 \"password\": ..}}; locally {} and {} instead)",
                secrets::USERNAME_VAR,
                secrets::PASSWORD_VAR
            );
        }
        Ok(Config {
            reports_bucket,
            credentials,
            endpoint: endpoint_from_vars(&get)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashgate_aws::secrets::{CybertipCredentials, PASSWORD_VAR, USERNAME_VAR};
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> anyhow::Result<Config> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(|n| vars.get(n).cloned())
    }

    const BASE: [(&str, &str); 2] = [
        (BUCKET_VAR, "stack-reports-123-eu-west-1"),
        (
            SECRET_VAR,
            "arn:aws:secretsmanager:eu-west-1:123:secret:cybertip-AbCdEf",
        ),
    ];

    #[test]
    fn defaults_to_the_test_environment_with_the_secret() {
        let c = parse(&BASE).unwrap();
        assert_eq!(
            c,
            Config {
                reports_bucket: "stack-reports-123-eu-west-1".into(),
                credentials: CredentialSource::Secret(
                    "arn:aws:secretsmanager:eu-west-1:123:secret:cybertip-AbCdEf".into()
                ),
                endpoint: "https://exttest.cybertip.org/ispws".into(),
            }
        );
        // Blank is the default too.
        let c = parse(&[BASE[0], BASE[1], (ENDPOINT_VAR, "  ")]).unwrap();
        assert_eq!(c.endpoint, TEST_ENDPOINT);
    }

    #[test]
    fn the_endpoint_is_configurable_and_checked() {
        let c = parse(&[
            BASE[0],
            BASE[1],
            (ENDPOINT_VAR, " https://report.cybertip.org/ispws/ "),
        ])
        .unwrap();
        assert_eq!(c.endpoint, hashgate_cybertip::PRODUCTION_ENDPOINT);
        let c = parse(&[BASE[0], BASE[1], (ENDPOINT_VAR, "http://127.0.0.1:9999")]).unwrap();
        assert_eq!(c.endpoint, "http://127.0.0.1:9999");
        for bad in [
            "exttest.cybertip.org/ispws",
            "ftp://exttest.cybertip.org",
            "https://",
            "https:///ispws",
            "https://a b",
        ] {
            let e = parse(&[BASE[0], BASE[1], (ENDPOINT_VAR, bad)])
                .unwrap_err()
                .to_string();
            assert!(e.contains(ENDPOINT_VAR) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn the_bucket_is_required_and_a_name() {
        let e = parse(&BASE[1..]).unwrap_err().to_string();
        assert!(e.contains("HASHGATE_REPORTS_BUCKET is not set"), "{e}");
        let e = parse(&[(BUCKET_VAR, " "), BASE[1]])
            .unwrap_err()
            .to_string();
        assert!(e.contains("HASHGATE_REPORTS_BUCKET is not set"), "{e}");
        for bad in ["s3://reports", "reports/x", "arn:aws:s3:::reports"] {
            let e = parse(&[(BUCKET_VAR, bad), BASE[1]])
                .unwrap_err()
                .to_string();
            assert!(e.contains(BUCKET_VAR) && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn credentials_are_required_from_the_secret_or_locally_the_environment() {
        let e = parse(&BASE[..1]).unwrap_err().to_string();
        assert!(
            e.contains(SECRET_VAR) && e.contains("not set") && e.contains(USERNAME_VAR),
            "{e}"
        );
        let e = parse(&[BASE[0], (SECRET_VAR, "   ")])
            .unwrap_err()
            .to_string();
        assert!(e.contains(SECRET_VAR), "{e}");
        let c = parse(&[BASE[0], (USERNAME_VAR, "usr123"), (PASSWORD_VAR, "pswd123")]).unwrap();
        assert_eq!(
            c.credentials,
            CredentialSource::Environment(CybertipCredentials {
                username: "usr123".into(),
                password: "pswd123".into()
            })
        );
        assert!(!format!("{c:?}").contains("pswd123"), "never shown");
        // Half a pair is named; the password never appears.
        let e = parse(&[BASE[0], (USERNAME_VAR, "usr123")])
            .unwrap_err()
            .to_string();
        assert!(e.contains(PASSWORD_VAR), "{e}");
        let e = parse(&[BASE[0], (PASSWORD_VAR, "pswd123")])
            .unwrap_err()
            .to_string();
        assert!(e.contains(USERNAME_VAR) && !e.contains("pswd123"), "{e}");
        // The secret wins over the pair.
        let c = parse(&[BASE[0], BASE[1], (USERNAME_VAR, "u"), (PASSWORD_VAR, "p")]).unwrap();
        assert!(matches!(c.credentials, CredentialSource::Secret(_)));
    }
}
