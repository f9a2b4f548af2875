//! The CyberTipline credentials of the report sender: from AWS Secrets Manager in AWS (a
//! secret holding `{"username": .., "password": ..}`, named by `HASHGATE_CYBERTIP_SECRET`),
//! from the environment elsewhere (`HASHGATE_CYBERTIP_USERNAME`, `HASHGATE_CYBERTIP_PASSWORD`).
//! Without either, sending is not configured, and says so. The password never appears in
//! `Debug`, in an error or in a log; neither does the secret's text.

use std::fmt;

use serde::Deserialize;

/// Names the Secrets Manager secret (name or ARN) holding the credentials.
pub const SECRET_VAR: &str = "HASHGATE_CYBERTIP_SECRET";
/// The username, when the credentials come from the environment.
pub const USERNAME_VAR: &str = "HASHGATE_CYBERTIP_USERNAME";
/// The password, when the credentials come from the environment.
pub const PASSWORD_VAR: &str = "HASHGATE_CYBERTIP_PASSWORD";

/// A CyberTipline account's username and password.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct CybertipCredentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for CybertipCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CybertipCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Where the credentials are to come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// The Secrets Manager secret of this name or ARN.
    Secret(String),
    /// The environment's username and password.
    Environment(CybertipCredentials),
    /// None configured: sending is disabled.
    NotConfigured,
}

/// Why the credentials could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error(
        "sending reports to the CyberTipline is not configured: set {SECRET_VAR} (the name of a \
         Secrets Manager secret holding {{\"username\": .., \"password\": ..}}) or \
         {USERNAME_VAR} and {PASSWORD_VAR}"
    )]
    NotConfigured,
    #[error("{set} is set but {missing} is not: set both, or {SECRET_VAR} instead")]
    Incomplete {
        set: &'static str,
        missing: &'static str,
    },
    #[error("the secret {secret:?} could not be read: {message}")]
    Unreadable { secret: String, message: String },
    #[error(
        "the secret {secret:?} is not a JSON object with a non-empty \"username\" and \
         \"password\" ({reason})"
    )]
    Malformed { secret: String, reason: String },
}

/// Where the credentials come from, given the variables (`var` answers `None` for an unset
/// one; blank counts as unset). The secret wins over the environment's pair.
pub fn source_from_vars(
    var: impl Fn(&str) -> Option<String>,
) -> Result<CredentialSource, CredentialError> {
    let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    if let Some(secret) = get(SECRET_VAR) {
        return Ok(CredentialSource::Secret(secret.trim().to_string()));
    }
    match (
        get(USERNAME_VAR),
        var(PASSWORD_VAR).filter(|v| !v.is_empty()),
    ) {
        (Some(username), Some(password)) => {
            Ok(CredentialSource::Environment(CybertipCredentials {
                username: username.trim().to_string(),
                password,
            }))
        }
        (Some(_), None) => Err(CredentialError::Incomplete {
            set: USERNAME_VAR,
            missing: PASSWORD_VAR,
        }),
        (None, Some(_)) => Err(CredentialError::Incomplete {
            set: PASSWORD_VAR,
            missing: USERNAME_VAR,
        }),
        (None, None) => Ok(CredentialSource::NotConfigured),
    }
}

/// The credentials in a secret's text. The text itself never goes into the error.
pub fn parse_secret(secret: &str, text: &str) -> Result<CybertipCredentials, CredentialError> {
    let malformed = |reason: &str| CredentialError::Malformed {
        secret: secret.to_string(),
        reason: reason.to_string(),
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| malformed("not JSON"))?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| malformed(&format!("no string \"{name}\"")))
    };
    Ok(CybertipCredentials {
        username: field("username")?.trim().to_string(),
        password: field("password")?,
    })
}

/// A secret's text, read with `GetSecretValue`; the error names the secret and the
/// service's answer, never the text.
pub async fn secret_string(
    client: &aws_sdk_secretsmanager::Client,
    secret: &str,
) -> Result<String, String> {
    let out = client
        .get_secret_value()
        .secret_id(secret)
        .send()
        .await
        .map_err(|e| {
            use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
            match e.as_service_error() {
                Some(s) => format!(
                    "{}: {}",
                    s.code().unwrap_or("error"),
                    s.message().unwrap_or("(no message)")
                ),
                None => aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
            }
        })?;
    out.secret_string()
        .map(str::to_string)
        .ok_or_else(|| "a binary secret, not a string".to_string())
}

/// The secret's credentials, read with `GetSecretValue`.
pub async fn fetch_secret(
    client: &aws_sdk_secretsmanager::Client,
    secret: &str,
) -> Result<CybertipCredentials, CredentialError> {
    let text =
        secret_string(client, secret)
            .await
            .map_err(|message| CredentialError::Unreadable {
                secret: secret.to_string(),
                message,
            })?;
    parse_secret(secret, &text)
}

/// The credentials as configured by the process environment: the secret's (read with the
/// SDK configuration `sdk`), or the environment's pair, or [`CredentialError::NotConfigured`].
pub async fn load(sdk: &aws_config::SdkConfig) -> Result<CybertipCredentials, CredentialError> {
    load_from(sdk, source_from_vars(|name| std::env::var(name).ok())?).await
}

/// The credentials from `source`: the secret's (read with the SDK configuration `sdk`), the
/// environment's pair, or [`CredentialError::NotConfigured`].
pub async fn load_from(
    sdk: &aws_config::SdkConfig,
    source: CredentialSource,
) -> Result<CybertipCredentials, CredentialError> {
    match source {
        CredentialSource::Secret(secret) => {
            fetch_secret(&aws_sdk_secretsmanager::Client::new(sdk), &secret).await
        }
        CredentialSource::Environment(credentials) => Ok(credentials),
        CredentialSource::NotConfigured => Err(CredentialError::NotConfigured),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn the_secret_wins_then_the_environment_then_nothing() {
        let both = [
            (SECRET_VAR, "hashgate/cybertip"),
            (USERNAME_VAR, "u"),
            (PASSWORD_VAR, "p"),
        ];
        assert_eq!(
            source_from_vars(vars(&both)),
            Ok(CredentialSource::Secret("hashgate/cybertip".into()))
        );
        assert_eq!(
            source_from_vars(vars(&both[1..])),
            Ok(CredentialSource::Environment(CybertipCredentials {
                username: "u".into(),
                password: "p".into()
            }))
        );
        assert_eq!(
            source_from_vars(vars(&[(SECRET_VAR, "  ")])),
            Ok(CredentialSource::NotConfigured)
        );
        assert_eq!(
            source_from_vars(vars(&[])),
            Ok(CredentialSource::NotConfigured)
        );
        let half = source_from_vars(vars(&[(USERNAME_VAR, "u")])).unwrap_err();
        assert!(half.to_string().contains(PASSWORD_VAR), "{half}");
        let half = source_from_vars(vars(&[(PASSWORD_VAR, "p")])).unwrap_err();
        assert!(half.to_string().contains(USERNAME_VAR), "{half}");
        let message = CredentialError::NotConfigured.to_string();
        assert!(
            message.contains("not configured") && message.contains(SECRET_VAR),
            "{message}"
        );
    }

    #[test]
    fn secrets_are_read_and_never_shown() {
        let c = parse_secret("s", r#"{"username": "usr123", "password": "pswd123"}"#).unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("usr123", "pswd123")
        );
        assert!(!format!("{c:?}").contains("pswd123"));
        for bad in [
            "pswd123",
            r#"{"username": "usr123"}"#,
            r#"{"username": "usr123", "password": ""}"#,
            r#"{"username": "usr123", "password": 5}"#,
            r#"["usr123", "pswd123"]"#,
        ] {
            let e = parse_secret("s", bad).unwrap_err();
            assert!(!e.to_string().contains("pswd123"), "{e}");
        }
    }
}
