//! The filter signing key of whoever publishes filters (hashlist-sync; `hashgate lists
//! import`, `hashgate filter rollback` on a stack): from the AWS Secrets Manager secret
//! named by `HASHGATE_FILTER_SIGNING_SECRET` (its text is the key,
//! `ed25519-private:<base64>`, as `hashgate keys generate` writes it), or, for local runs
//! only, from `HASHGATE_FILTER_SIGNING_KEY`. The key's text never appears in an error or a
//! log.

use hashgate_core::manifest::SigningKey;

/// Names the Secrets Manager secret (name or ARN) holding the signing key.
pub const SECRET_VAR: &str = "HASHGATE_FILTER_SIGNING_SECRET";
/// The key itself, for local runs.
pub const KEY_VAR: &str = "HASHGATE_FILTER_SIGNING_KEY";
/// The public keys scanners (and publishers, to read the current manifest) trust.
pub const PUBLIC_KEYS_VAR: &str = "HASHGATE_FILTER_PUBLIC_KEYS";

/// Where the signing key comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    Secret(String),
    /// The key's text from the environment (never printed: `Debug` shows only the variable).
    Environment(Redacted),
}

/// Text that is never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The key's source as the variables give it (`get` reads one; blank counts as unset).
pub fn source_from_vars(get: impl Fn(&str) -> Option<String>) -> Result<KeySource, String> {
    let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
    match (get(SECRET_VAR), get(KEY_VAR)) {
        (Some(secret), _) => Ok(KeySource::Secret(secret)),
        (None, Some(text)) => Ok(KeySource::Environment(Redacted(text))),
        (None, None) => Err(format!(
            "no filter signing key: set {SECRET_VAR} (a Secrets Manager secret holding the \
             key `hashgate keys generate` made) or, for local runs, {KEY_VAR}"
        )),
    }
}

/// The signing key from `source` (a secret is read with the SDK configuration `sdk`).
pub async fn load(sdk: &aws_config::SdkConfig, source: &KeySource) -> Result<SigningKey, String> {
    match source {
        KeySource::Secret(secret) => {
            let client = aws_sdk_secretsmanager::Client::new(sdk);
            let text = crate::secrets::secret_string(&client, secret)
                .await
                .map_err(|e| format!("the filter signing secret {secret:?}: {e}"))?;
            SigningKey::parse(&text)
                .map_err(|e| format!("the filter signing secret {secret:?} holds no key: {e}"))
        }
        KeySource::Environment(Redacted(text)) => {
            SigningKey::parse(text).map_err(|e| format!("{KEY_VAR}: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_wins_and_nothing_is_an_error() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            source_from_vars(vars(&[(SECRET_VAR, "arn:s"), (KEY_VAR, "k")])),
            Ok(KeySource::Secret("arn:s".into()))
        );
        let env = source_from_vars(vars(&[(KEY_VAR, "ed25519-private:x")])).unwrap();
        assert!(!format!("{env:?}").contains("ed25519-private"));
        assert!(source_from_vars(vars(&[(SECRET_VAR, " ")])).is_err());
    }
}
