//! Sign-in: every `/api` request carries a Cognito access token (`Authorization: Bearer`),
//! verified here against the user pool's keys (its JWKS), issuer, app client, expiry and
//! `token_use`; the role comes from `cognito:groups`.
//!
//! [`check`] is the whole rule as a pure function of the token, the keys, the expected
//! pool and the instant; [`Authenticator`] adds fetching the keys (and fetching them again,
//! at most once a minute, when a token names a key it has not seen: pools rotate keys).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use hashgate_core::review::{Identity, Role};
use hashgate_core::time::Timestamp;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::AuthConfig;

/// Why a request is refused: `Forbidden` is 403 (signed in, wrong role), `Unavailable`
/// 503, everything else 401.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("sign in first: no bearer token in the Authorization header")]
    Missing,
    #[error("the token is not a well-formed JWT: {0}")]
    Malformed(String),
    #[error("the token is signed with {0}, not RS256")]
    Algorithm(String),
    #[error("the token's key {0:?} is not one of the user pool's keys")]
    UnknownKey(String),
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token expired at {0}")]
    Expired(String),
    #[error("the token was issued by {0:?}, not this service's user pool")]
    Issuer(String),
    #[error("the token was issued to another app client ({0:?})")]
    Client(String),
    #[error("the token is an {0:?} token; an access token is required")]
    TokenUse(String),
    #[error("{user} is in none of the groups that may use the review queue")]
    NoRole { user: String },
    #[error("{user} is a {have}; this needs the {need} role")]
    Forbidden {
        user: String,
        have: &'static str,
        need: &'static str,
    },
    #[error("the user pool's keys cannot be fetched: {0}")]
    Unavailable(String),
}

impl AuthError {
    pub fn status(&self) -> u16 {
        match self {
            AuthError::NoRole { .. } | AuthError::Forbidden { .. } => 403,
            AuthError::Unavailable(_) => 503,
            _ => 401,
        }
    }
}

/// The user pool's public keys by key id.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, DecodingKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.keys.keys()).finish()
    }
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

impl KeySet {
    /// The RSA keys of a JWKS document (others are ignored: Cognito signs with RSA only).
    pub fn from_jwks(json: &[u8]) -> Result<KeySet, String> {
        let jwks: Jwks =
            serde_json::from_slice(json).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut keys = HashMap::new();
        for k in jwks.keys {
            if k.kty != "RSA" {
                continue;
            }
            let (Some(kid), Some(n), Some(e)) = (k.kid, k.n, k.e) else {
                continue;
            };
            let key = DecodingKey::from_rsa_components(&n, &e)
                .map_err(|err| format!("key {kid:?}: {err}"))?;
            keys.insert(kid, key);
        }
        if keys.is_empty() {
            return Err("the JWKS document holds no RSA key".into());
        }
        Ok(KeySet { keys })
    }

    pub fn has(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    exp: i64,
    token_use: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(rename = "cognito:groups", default)]
    groups: Vec<String>,
}

/// The key id a token names (to know whether the keys must be fetched again).
pub fn key_id(token: &str) -> Result<String, AuthError> {
    let header = decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
    if header.alg != Algorithm::RS256 {
        return Err(AuthError::Algorithm(format!("{:?}", header.alg)));
    }
    header
        .kid
        .ok_or_else(|| AuthError::Malformed("the token names no key (kid)".into()))
}

/// Verify `token` at `now` and say who it is. The role is not checked here: a person in no
/// group gets [`AuthError::NoRole`].
pub fn check(
    token: &str,
    keys: &KeySet,
    expected: &AuthConfig,
    now: Timestamp,
) -> Result<Identity, AuthError> {
    let kid = key_id(token)?;
    let key = keys.keys.get(&kid).ok_or(AuthError::UnknownKey(kid))?;
    let mut validation = Validation::new(Algorithm::RS256);
    // Expiry is checked below against the instant handed in; issuer and client too, so
    // that each refusal says exactly what was wrong.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = decode::<Claims>(token, key, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => AuthError::Signature,
            _ => AuthError::Malformed(e.to_string()),
        })?
        .claims;
    if claims.exp <= now.as_second() {
        let at = Timestamp::from_second(claims.exp)
            .map(hashgate_core::time::rfc3339)
            .unwrap_or_else(|_| claims.exp.to_string());
        return Err(AuthError::Expired(at));
    }
    if claims.iss != expected.issuer {
        return Err(AuthError::Issuer(claims.iss));
    }
    if claims.token_use != "access" {
        return Err(AuthError::TokenUse(claims.token_use));
    }
    if claims.client_id.as_deref() != Some(expected.client_id.as_str()) {
        return Err(AuthError::Client(claims.client_id.unwrap_or_default()));
    }
    let user = claims
        .username
        .or(claims.sub)
        .ok_or_else(|| AuthError::Malformed("the token names no user".into()))?;
    let role = Role::from_groups(&claims.groups).ok_or(AuthError::NoRole { user: user.clone() })?;
    Ok(Identity { user, role })
}

/// `Authorization: Bearer <token>` → the token.
pub fn bearer(header: Option<&str>) -> Result<&str, AuthError> {
    let value = header.ok_or(AuthError::Missing)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(AuthError::Missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Missing);
    }
    Ok(token.trim())
}

/// Where the keys come from.
pub enum KeySource {
    /// Fetched from the pool's JWKS URL.
    Remote {
        url: String,
        client: reqwest::Client,
    },
    /// Fixed (tests).
    Fixed,
}

/// Verifies tokens, fetching the pool's keys when needed.
pub struct Authenticator {
    config: AuthConfig,
    source: KeySource,
    keys: RwLock<(KeySet, Option<Instant>)>,
}

/// A token naming an unknown key makes the keys be fetched again, but not more often.
const REFETCH_AFTER: Duration = Duration::from_secs(60);

impl Authenticator {
    pub fn remote(config: AuthConfig) -> Authenticator {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client with default settings");
        Authenticator {
            source: KeySource::Remote {
                url: config.jwks_url.clone(),
                client,
            },
            config,
            keys: RwLock::new((KeySet::default(), None)),
        }
    }

    pub fn fixed(config: AuthConfig, keys: KeySet) -> Authenticator {
        Authenticator {
            config,
            source: KeySource::Fixed,
            keys: RwLock::new((keys, Some(Instant::now()))),
        }
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    async fn refresh(&self) -> Result<(), AuthError> {
        let KeySource::Remote { url, client } = &self.source else {
            return Ok(());
        };
        let fetched_recently = self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .is_some_and(|at| at.elapsed() < REFETCH_AFTER);
        if fetched_recently {
            return Ok(());
        }
        let unavailable = |e: String| AuthError::Unavailable(format!("{url}: {e}"));
        let response = client
            .get(url)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("HTTP {}", response.status())));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let keys = KeySet::from_jwks(&body).map_err(unavailable)?;
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = (keys, Some(Instant::now()));
        Ok(())
    }

    /// The person behind an `Authorization` header value, at `now`.
    pub async fn authenticate(
        &self,
        header: Option<&str>,
        now: Timestamp,
    ) -> Result<Identity, AuthError> {
        let token = bearer(header)?;
        let kid = key_id(token)?;
        let known = self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .has(&kid);
        if !known {
            self.refresh().await?;
        }
        let keys = self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone();
        check(token, &keys, &self.config, now)
    }
}

/// Signing test tokens (tests only; the service never signs).
#[cfg(any(test, feature = "test-tokens"))]
pub mod testing {
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::{json, Value};

    pub const KEY: &str = include_str!("../tests/fixtures/test-signing-key.pem");
    pub const FOREIGN_KEY: &str = include_str!("../tests/fixtures/foreign-signing-key.pem");
    pub const JWKS: &str = include_str!("../tests/fixtures/test-jwks.json");
    pub const ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_test";
    pub const CLIENT: &str = "test-client";

    /// Claims of a valid access token for `user` in `groups`, expiring at `exp`.
    pub fn claims(user: &str, groups: &[&str], exp: i64) -> Value {
        json!({
            "iss": ISSUER, "sub": format!("sub-{user}"), "client_id": CLIENT,
            "token_use": "access", "username": user, "exp": exp, "iat": exp - 3600,
            "cognito:groups": groups,
        })
    }

    pub fn sign_with(pem: &str, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(kid.into());
        encode(
            &header,
            claims,
            &EncodingKey::from_rsa_pem(pem.as_bytes()).expect("test key"),
        )
        .expect("sign")
    }

    pub fn sign(claims: &Value) -> String {
        sign_with(KEY, "test-key", claims)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use serde_json::json;

    fn config() -> AuthConfig {
        AuthConfig {
            region: "eu-west-1".into(),
            user_pool_id: "eu-west-1_test".into(),
            client_id: CLIENT.into(),
            idp_endpoint: "http://127.0.0.1:1".into(),
            issuer: ISSUER.into(),
            jwks_url: "http://127.0.0.1:1/x".into(),
        }
    }

    const NOW: i64 = 1_795_255_445;

    fn at() -> Timestamp {
        Timestamp::from_second(NOW).unwrap()
    }

    fn keys() -> KeySet {
        KeySet::from_jwks(JWKS.as_bytes()).unwrap()
    }

    fn verdict(token: &str) -> Result<Identity, AuthError> {
        check(token, &keys(), &config(), at())
    }

    #[test]
    fn a_valid_access_token_names_the_person_and_role() {
        let id = verdict(&sign(&claims("reviewer-a", &["reviewer"], NOW + 60))).unwrap();
        assert_eq!(id.user, "reviewer-a");
        assert_eq!(id.role, Role::Reviewer);
        let id = verdict(&sign(&claims("admin-a", &["admin"], NOW + 60))).unwrap();
        assert_eq!(id.role, Role::Admin);
    }

    #[test]
    fn every_flaw_is_refused_for_what_it_is() {
        let good = claims("reviewer-a", &["reviewer"], NOW + 60);
        let with = |k: &str, v: serde_json::Value| {
            let mut c = good.clone();
            c[k] = v;
            sign(&c)
        };
        assert!(matches!(
            verdict(&sign(&claims("a", &["reviewer"], NOW))),
            Err(AuthError::Expired(_))
        ));
        assert!(matches!(
            verdict(&with(
                "iss",
                json!("https://cognito-idp.eu-west-1.amazonaws.com/other")
            )),
            Err(AuthError::Issuer(_))
        ));
        assert!(matches!(
            verdict(&with("client_id", json!("other-client"))),
            Err(AuthError::Client(_))
        ));
        assert!(matches!(
            verdict(&with("token_use", json!("id"))),
            Err(AuthError::TokenUse(_))
        ));
        let nobody = verdict(&sign(&claims("x", &["other"], NOW + 60))).unwrap_err();
        assert_eq!(nobody.status(), 403);
        // Signed by a key that is not the pool's, under the pool's key id.
        let forged = sign_with(FOREIGN_KEY, "test-key", &good);
        assert_eq!(verdict(&forged).unwrap_err(), AuthError::Signature);
        let unknown = sign_with(FOREIGN_KEY, "other-key", &good);
        assert!(matches!(verdict(&unknown), Err(AuthError::UnknownKey(_))));
        // A flipped byte in the payload.
        let token = sign(&good);
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        parts[1] = parts[1].replacen('e', "f", 1);
        assert!(verdict(&parts.join(".")).is_err());
        // Not RS256: an unsigned token ("alg": "none") or HMAC.
        let none = format!(
            "eyJhbGciOiJub25lIiwia2lkIjoidGVzdC1rZXkifQ.{}.",
            token.split('.').nth(1).unwrap()
        );
        assert!(verdict(&none).is_err());
        assert!(matches!(verdict("garbage"), Err(AuthError::Malformed(_))));
        for e in [
            AuthError::Missing,
            AuthError::Signature,
            AuthError::Expired("x".into()),
        ] {
            assert_eq!(e.status(), 401);
        }
    }

    #[test]
    fn the_bearer_scheme_is_required() {
        assert_eq!(bearer(Some("Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer(Some("bearer  abc ")).unwrap(), "abc");
        for bad in [
            None,
            Some(""),
            Some("abc"),
            Some("Basic abc"),
            Some("Bearer "),
        ] {
            assert_eq!(bearer(bad).unwrap_err(), AuthError::Missing, "{bad:?}");
        }
    }

    #[test]
    fn a_jwks_without_rsa_keys_is_refused() {
        assert!(KeySet::from_jwks(br#"{"keys":[]}"#).is_err());
        assert!(KeySet::from_jwks(b"not json").is_err());
        assert!(keys().has("test-key"));
    }
}
