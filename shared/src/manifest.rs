//! Signed filter manifests: how a scanner learns, from one small object, which filter
//! snapshot is current and that hashgate's list sync published it.
//!
//! A publication writes an immutable snapshot object (named by its sequence and digest),
//! then a manifest naming it: its sequence (strictly increasing with every publication,
//! rollbacks included), the snapshot's key, size and SHA-256, the store version it covers and
//! why it was published, signed with Ed25519. The manifest's signature covers the snapshot
//! through its SHA-256, so a scanner that checks the signature and then the snapshot's
//! digest trusts both. A scanner refuses a manifest that is unsigned, malformed or
//! truncated, signed by a key it does not trust, signed wrongly, or older than the last one
//! it accepted (a replay), and a snapshot whose size or digest differs from the manifest;
//! it keeps its last good snapshot (invariant 4).
//!
//! Keys are given, never drawn here: [`SigningKey::from_seed`] takes the caller's 32 random
//! bytes. Text forms: a private key is `ed25519-private:<base64 of the 32-byte seed>`, a
//! public key `ed25519:<base64 of the 32-byte key>`; its id is the first 8 bytes of the
//! SHA-256 of the key, in hex. Several public keys can be trusted at once, which is how a
//! key is rotated (README, "Rotating the filter signing key").

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, Verifier as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::time::Timestamp;

/// The manifest document's format name.
pub const FORMAT: &str = "hashgate-filter-manifest/1";
/// Everything a publication writes lives under this prefix of the filter bucket.
pub const FILTER_PREFIX: &str = "filters/";
/// Where the manifest lives in the filter bucket.
pub const MANIFEST_KEY: &str = "filters/manifest.json";
/// Where snapshots live in the filter bucket.
pub const SNAPSHOT_PREFIX: &str = "filters/snapshots/";
/// A manifest is a few hundred bytes; anything much larger is not one.
pub const MAX_MANIFEST_BYTES: usize = 16 * 1024;

const PRIVATE_PREFIX: &str = "ed25519-private:";
const PUBLIC_PREFIX: &str = "ed25519:";

/// Why a manifest was published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Publication {
    /// A filter built from the store.
    Build,
    /// An operator pointed the manifest back at an earlier snapshot.
    Rollback {
        /// The sequence that was current before.
        from_sequence: u64,
        /// The store version the filter rolled back from covered: the sync does not build
        /// again until the store moves past it (a rollback is not undone by the next
        /// scheduled run).
        from_store_version: u64,
        /// Who asked, and why.
        by: String,
        reason: String,
    },
}

/// What a manifest says. Its signature covers [`Manifest::canonical_bytes`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Increases with every publication; a scanner never goes back to a lower one.
    pub sequence: u64,
    /// The snapshot's key in the filter bucket.
    pub snapshot: String,
    /// The snapshot's size in bytes.
    pub size: u64,
    /// The SHA-256 of the snapshot's bytes, lowercase hex.
    pub sha256: String,
    /// The store version the snapshot covers.
    pub store_version: u64,
    /// Digests in the snapshot.
    pub entries: u64,
    pub published_at: Timestamp,
    pub publication: Publication,
    /// The id of the key that signed it ([`PublicKey::id`]).
    pub key_id: String,
}

impl Manifest {
    /// The bytes the signature covers: a fixed field order, each field as
    /// `name=<length>:<value>\n`, so no value can be mistaken for another field whatever
    /// it holds, and nothing depends on how a JSON serialiser orders or escapes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        let mut field = |name: &str, value: &str| {
            out.extend_from_slice(name.as_bytes());
            out.push(b'=');
            out.extend_from_slice(value.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(value.as_bytes());
            out.push(b'\n');
        };
        field("format", FORMAT);
        field("sequence", &self.sequence.to_string());
        field("snapshot", &self.snapshot);
        field("size", &self.size.to_string());
        field("sha256", &self.sha256);
        field("store_version", &self.store_version.to_string());
        field("entries", &self.entries.to_string());
        field("published_at", &self.published_at.to_string());
        match &self.publication {
            Publication::Build => field("publication", "build"),
            Publication::Rollback {
                from_sequence,
                from_store_version,
                by,
                reason,
            } => {
                field("publication", "rollback");
                field("from_sequence", &from_sequence.to_string());
                field("from_store_version", &from_store_version.to_string());
                field("by", by);
                field("reason", reason);
            }
        }
        field("key_id", &self.key_id);
        out
    }

    /// Whether `bytes` are the snapshot this manifest names: size first (a truncated
    /// download is named as such), then the SHA-256.
    pub fn check_snapshot(&self, bytes: &[u8]) -> Result<(), ManifestError> {
        if bytes.len() as u64 != self.size {
            return Err(ManifestError::SnapshotSize {
                snapshot: self.snapshot.clone(),
                expected: self.size,
                found: bytes.len() as u64,
            });
        }
        let found = hex(&Sha256::digest(bytes));
        if found != self.sha256 {
            return Err(ManifestError::SnapshotDigest {
                snapshot: self.snapshot.clone(),
            });
        }
        Ok(())
    }
}

/// Why a manifest or the snapshot it names was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("{source_name}: not a filter manifest ({what})")]
    Malformed { source_name: String, what: String },
    #[error("{source_name}: the manifest is not signed")]
    Unsigned { source_name: String },
    #[error("{source_name}: signed by key {key_id}, which this scanner does not trust (trusted: {trusted})")]
    UntrustedKey {
        source_name: String,
        key_id: String,
        trusted: String,
    },
    #[error("{source_name}: the signature does not verify with key {key_id}: the manifest was altered or signed with another key")]
    BadSignature { source_name: String, key_id: String },
    #[error("{source_name}: sequence {found} is older than {accepted}, the last one accepted: a replayed manifest")]
    Replayed {
        source_name: String,
        found: u64,
        accepted: u64,
    },
    #[error("{source_name}: sequence {sequence} was accepted before with other content")]
    Conflicting { source_name: String, sequence: u64 },
    #[error("{snapshot}: {found} bytes, but the manifest says {expected}: truncated or replaced")]
    SnapshotSize {
        snapshot: String,
        expected: u64,
        found: u64,
    },
    #[error("{snapshot}: its SHA-256 differs from the signed manifest's: altered or replaced")]
    SnapshotDigest { snapshot: String },
}

/// A key that signs manifests. Never printed: its `Debug` shows only the public key's id.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// The key whose seed is the caller's 32 random bytes.
    pub fn from_seed(seed: [u8; 32]) -> SigningKey {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// Read the text form `ed25519-private:<base64>`. The error never contains the text.
    pub fn parse(text: &str) -> Result<SigningKey, KeyError> {
        let b64 = text
            .trim()
            .strip_prefix(PRIVATE_PREFIX)
            .ok_or(KeyError::Format {
                what: "a private key",
                expected: PRIVATE_PREFIX,
            })?;
        let raw = BASE64
            .decode(b64)
            .map_err(|_| KeyError::Encoding("a private key"))?;
        let seed: [u8; 32] = raw
            .try_into()
            .map_err(|_| KeyError::Length("a private key"))?;
        Ok(SigningKey::from_seed(seed))
    }

    /// The text form, for a secret store; handle it as a secret.
    pub fn to_text(&self) -> String {
        format!("{PRIVATE_PREFIX}{}", BASE64.encode(self.0.to_bytes()))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The signed manifest document: `manifest` with its `key_id` set to this key's.
    pub fn sign(&self, manifest: &Manifest) -> Vec<u8> {
        let mut manifest = manifest.clone();
        manifest.key_id = self.public().id();
        let signature = self.0.sign(&manifest.canonical_bytes());
        let doc = Document {
            format: FORMAT.to_string(),
            manifest: Some(manifest),
            signature: Some(BASE64.encode(signature.to_bytes())),
        };
        let mut out = serde_json::to_vec_pretty(&doc).expect("a manifest serialises");
        out.push(b'\n');
        out
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(public {})", self.public().id())
    }
}

/// A key that verifies manifests.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Read the text form `ed25519:<base64>`.
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let b64 = text
            .trim()
            .strip_prefix(PUBLIC_PREFIX)
            .ok_or(KeyError::Format {
                what: "a public key",
                expected: PUBLIC_PREFIX,
            })?;
        let raw = BASE64
            .decode(b64)
            .map_err(|_| KeyError::Encoding("a public key"))?;
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|_| KeyError::Length("a public key"))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| KeyError::Invalid)
    }

    pub fn to_text(&self) -> String {
        format!("{PUBLIC_PREFIX}{}", BASE64.encode(self.0.as_bytes()))
    }

    /// The first 8 bytes of the key's SHA-256, in hex: what a manifest names its signer by.
    pub fn id(&self) -> String {
        hex(&Sha256::digest(self.0.as_bytes())[..8])
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

/// A key in the wrong form. Never holds the key's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{what} must start with {expected:?}")]
    Format {
        what: &'static str,
        expected: &'static str,
    },
    #[error("{0} is not valid base64")]
    Encoding(&'static str),
    #[error("{0} must be 32 bytes")]
    Length(&'static str),
    #[error("not a valid Ed25519 public key")]
    Invalid,
    #[error("no trusted key given")]
    NoKeys,
    #[error("key {0} is given twice")]
    Duplicate(String),
}

/// The public keys a scanner accepts manifests from: one normally, two while a key is
/// rotated.
#[derive(Clone, Debug)]
pub struct TrustedKeys(Vec<PublicKey>);

impl TrustedKeys {
    pub fn new(keys: Vec<PublicKey>) -> Result<TrustedKeys, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::NoKeys);
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].contains(k) {
                return Err(KeyError::Duplicate(k.id()));
            }
        }
        Ok(TrustedKeys(keys))
    }

    /// Keys separated by commas or whitespace.
    pub fn parse(text: &str) -> Result<TrustedKeys, KeyError> {
        let keys = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(PublicKey::parse)
            .collect::<Result<Vec<_>, _>>()?;
        TrustedKeys::new(keys)
    }

    pub fn ids(&self) -> Vec<String> {
        self.0.iter().map(PublicKey::id).collect()
    }

    /// Check a manifest document: well formed, signed by a trusted key, and the signature
    /// valid. `source_name` names it in errors. Says nothing about replays: see [`accept`].
    pub fn verify(&self, bytes: &[u8], source_name: &str) -> Result<Manifest, ManifestError> {
        let malformed = |what: String| ManifestError::Malformed {
            source_name: source_name.to_string(),
            what,
        };
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(malformed(format!(
                "{} bytes, more than a manifest's {MAX_MANIFEST_BYTES}",
                bytes.len()
            )));
        }
        let doc: Document =
            serde_json::from_slice(bytes).map_err(|e| malformed(format!("JSON: {e}")))?;
        if doc.format != FORMAT {
            return Err(malformed(format!(
                "format {:?}, expected {FORMAT:?}",
                doc.format
            )));
        }
        let manifest = doc
            .manifest
            .ok_or_else(|| malformed("no manifest".into()))?;
        let Some(signature) = doc.signature.filter(|s| !s.is_empty()) else {
            return Err(ManifestError::Unsigned {
                source_name: source_name.to_string(),
            });
        };
        let key = self
            .0
            .iter()
            .find(|k| k.id() == manifest.key_id)
            .ok_or_else(|| ManifestError::UntrustedKey {
                source_name: source_name.to_string(),
                key_id: manifest.key_id.clone(),
                trusted: self.ids().join(", "),
            })?;
        let bad = || ManifestError::BadSignature {
            source_name: source_name.to_string(),
            key_id: manifest.key_id.clone(),
        };
        let raw: [u8; 64] = BASE64
            .decode(signature)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(bad)?;
        key.0
            .verify(&manifest.canonical_bytes(), &Signature::from_bytes(&raw))
            .map_err(|_| bad())?;
        Ok(manifest)
    }
}

/// What a verified manifest means to a scanner that last accepted `last`.
#[derive(Debug, PartialEq, Eq)]
pub enum Accepted {
    /// The one in use: nothing to download.
    Same,
    /// Newer: load its snapshot.
    Newer(Manifest),
}

/// The replay rule, in one place: a manifest is taken only if its sequence is above the last
/// accepted one; the same sequence must be the same manifest.
pub fn accept(
    manifest: Manifest,
    last: Option<&Manifest>,
    source_name: &str,
) -> Result<Accepted, ManifestError> {
    match last {
        None => Ok(Accepted::Newer(manifest)),
        Some(l) if manifest.sequence > l.sequence => Ok(Accepted::Newer(manifest)),
        Some(l) if manifest.sequence == l.sequence && manifest == *l => Ok(Accepted::Same),
        Some(l) if manifest.sequence == l.sequence => Err(ManifestError::Conflicting {
            source_name: source_name.to_string(),
            sequence: l.sequence,
        }),
        Some(l) => Err(ManifestError::Replayed {
            source_name: source_name.to_string(),
            found: manifest.sequence,
            accepted: l.sequence,
        }),
    }
}

/// The key of the snapshot published as `sequence` with digest `sha256` (hex): immutable,
/// since a republication of the same sequence after a crash has another seed and digest.
pub fn snapshot_key(sequence: u64, sha256: &str) -> String {
    let short = &sha256[..sha256.len().min(16)];
    format!("{SNAPSHOT_PREFIX}{sequence:012}-{short}.hgf")
}

/// The sequence a snapshot was first published as, from its key.
pub fn snapshot_sequence(key: &str) -> Option<u64> {
    let name = key.strip_prefix(SNAPSHOT_PREFIX)?;
    let (seq, rest) = name.split_once('-')?;
    rest.ends_with(".hgf").then_some(())?;
    seq.parse().ok()
}

/// Which snapshots to delete so that the `keep` most recent stay (rollback targets), and
/// never the one `current` names.
pub fn prune(keys: &[String], current: Option<&Manifest>, keep: usize) -> Vec<String> {
    let mut known: Vec<(u64, &String)> = keys
        .iter()
        .filter_map(|k| snapshot_sequence(k).map(|s| (s, k)))
        .collect();
    known.sort_by(|a, b| b.cmp(a));
    known
        .into_iter()
        .skip(keep)
        .map(|(_, k)| k)
        .filter(|k| current.is_none_or(|c| c.snapshot != **k))
        .cloned()
        .collect()
}

/// Whether a build must be published: nothing is, or the store moved past what the current
/// manifest covers. After a rollback, only once the store moved past what the filter rolled
/// back from covered (until then scanners ask the store for every digest the older filter
/// does not cover: nothing is missed).
pub fn build_due(current: Option<&Manifest>, store_version: u64) -> bool {
    match current {
        None => true,
        Some(m) => match &m.publication {
            Publication::Build => m.store_version != store_version,
            Publication::Rollback {
                from_store_version, ..
            } => m.store_version != store_version && *from_store_version != store_version,
        },
    }
}

/// The store version a new rollback records as rolled back from: the current filter's, or,
/// when it is itself a rollback, what that one rolled back from.
pub fn rolled_back_from(current: &Manifest) -> u64 {
    match &current.publication {
        Publication::Build => current.store_version,
        Publication::Rollback {
            from_store_version, ..
        } => *from_store_version,
    }
}

/// The sequence of a new publication: above the current manifest's and above every
/// snapshot's, so it stays above whatever any scanner accepted even when the manifest in
/// the bucket was lost or replaced by an older one.
pub fn next_sequence(current: Option<&Manifest>, snapshot_keys: &[String]) -> u64 {
    let snapshots = snapshot_keys.iter().filter_map(|k| snapshot_sequence(k));
    current
        .map(|m| m.sequence)
        .into_iter()
        .chain(snapshots)
        .max()
        .map_or(1, |s| s + 1)
}

/// The snapshot a rollback goes back to: the one first published as `to`, or else the
/// newest one published before the snapshot `current` names.
pub fn rollback_target<'a>(
    current: &Manifest,
    snapshot_keys: &'a [String],
    to: Option<u64>,
) -> Result<&'a String, String> {
    let mut known: Vec<(u64, &String)> = snapshot_keys
        .iter()
        .filter_map(|k| snapshot_sequence(k).map(|s| (s, k)))
        .collect();
    known.sort();
    let kept = || {
        known
            .iter()
            .map(|(s, _)| s.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match to {
        Some(seq) => known
            .iter()
            .find(|(s, _)| *s == seq)
            .map(|(_, k)| *k)
            .ok_or_else(|| format!("no snapshot {seq} is kept (kept: {})", kept())),
        None => {
            let now = snapshot_sequence(&current.snapshot).unwrap_or(current.sequence);
            known
                .iter()
                .rev()
                .find(|(s, _)| *s < now)
                .map(|(_, k)| *k)
                .ok_or_else(|| {
                    format!(
                        "no snapshot older than the current one ({now}) is kept (kept: {})",
                        kept()
                    )
                })
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Document {
    format: String,
    #[serde(default)]
    manifest: Option<Manifest>,
    #[serde(default)]
    signature: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    crate::digest::to_hex(bytes)
}

/// The SHA-256 of `bytes`, lowercase hex (what a manifest records of its snapshot).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_seed([n; 32])
    }

    fn manifest(sequence: u64, snapshot: &[u8]) -> Manifest {
        Manifest {
            sequence,
            snapshot: snapshot_key(sequence, &sha256_hex(snapshot)),
            size: snapshot.len() as u64,
            sha256: sha256_hex(snapshot),
            store_version: 7,
            entries: 3,
            published_at: "2026-12-01T10:00:00Z".parse().unwrap(),
            publication: Publication::Build,
            key_id: String::new(),
        }
    }

    fn trusted(keys: &[&SigningKey]) -> TrustedKeys {
        TrustedKeys::new(keys.iter().map(|k| k.public()).collect()).unwrap()
    }

    #[test]
    fn a_signed_manifest_verifies_and_names_its_key() {
        let k = key(1);
        let doc = k.sign(&manifest(1, b"snap"));
        let m = trusted(&[&k]).verify(&doc, "m").unwrap();
        assert_eq!(m.key_id, k.public().id());
        assert_eq!(m.sequence, 1);
        m.check_snapshot(b"snap").unwrap();
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let k = key(1);
        let doc = k.sign(&manifest(1, b"snap"));
        let keys = trusted(&[&k]);
        for i in 0..doc.len() {
            let mut bad = doc.clone();
            bad[i] ^= 0x01;
            match keys.verify(&bad, "m") {
                Err(_) => {}
                // A flip in insignificant JSON whitespace or a key's letter case is not a
                // change of what is signed; everything signed must survive byte for byte.
                Ok(m) => assert_eq!(m, keys.verify(&doc, "m").unwrap(), "byte {i}"),
            }
        }
    }

    #[test]
    fn a_changed_field_fails_the_signature() {
        let k = key(1);
        let doc = k.sign(&manifest(1, b"snap"));
        let text = String::from_utf8(doc).unwrap();
        let forged = text.replace("\"store_version\": 7", "\"store_version\": 8");
        assert_ne!(forged, text);
        assert!(matches!(
            trusted(&[&k]).verify(forged.as_bytes(), "m"),
            Err(ManifestError::BadSignature { .. })
        ));
    }

    #[test]
    fn unsigned_truncated_and_foreign_manifests_are_refused() {
        let (a, b) = (key(1), key(2));
        let doc = a.sign(&manifest(1, b"snap"));
        let keys = trusted(&[&a]);
        let mut v: serde_json::Value = serde_json::from_slice(&doc).unwrap();
        v["signature"] = serde_json::Value::Null;
        let unsigned = serde_json::to_vec(&v).unwrap();
        assert!(matches!(
            keys.verify(&unsigned, "m"),
            Err(ManifestError::Unsigned { .. })
        ));
        for cut in [0, 1, doc.len() / 2, doc.len() - 3] {
            assert!(matches!(
                keys.verify(&doc[..cut], "m"),
                Err(ManifestError::Malformed { .. })
            ));
        }
        let err = keys
            .verify(&b.sign(&manifest(1, b"snap")), "m")
            .unwrap_err();
        assert!(matches!(err, ManifestError::UntrustedKey { .. }), "{err}");
        assert!(err.to_string().contains(&a.public().id()), "{err}");
        // A signature by another key under a trusted key's id.
        let mut v: serde_json::Value =
            serde_json::from_slice(&b.sign(&manifest(1, b"snap"))).unwrap();
        v["manifest"]["key_id"] = a.public().id().into();
        let relabelled = serde_json::to_vec(&v).unwrap();
        assert!(matches!(
            keys.verify(&relabelled, "m"),
            Err(ManifestError::BadSignature { .. })
        ));
    }

    #[test]
    fn two_trusted_keys_accept_either_during_rotation() {
        let (old, new) = (key(1), key(2));
        let both = trusted(&[&old, &new]);
        both.verify(&old.sign(&manifest(1, b"s")), "m").unwrap();
        both.verify(&new.sign(&manifest(2, b"s")), "m").unwrap();
        let after = trusted(&[&new]);
        assert!(after.verify(&old.sign(&manifest(3, b"s")), "m").is_err());
    }

    #[test]
    fn replays_and_conflicts_are_refused() {
        let m1 = manifest(1, b"a");
        let m2 = manifest(2, b"b");
        assert_eq!(
            accept(m1.clone(), None, "m"),
            Ok(Accepted::Newer(m1.clone()))
        );
        assert_eq!(
            accept(m2.clone(), Some(&m1), "m"),
            Ok(Accepted::Newer(m2.clone()))
        );
        assert_eq!(accept(m2.clone(), Some(&m2), "m"), Ok(Accepted::Same));
        assert!(matches!(
            accept(m1.clone(), Some(&m2), "m"),
            Err(ManifestError::Replayed {
                found: 1,
                accepted: 2,
                ..
            })
        ));
        let other = manifest(2, b"c");
        assert!(matches!(
            accept(other, Some(&m2), "m"),
            Err(ManifestError::Conflicting { sequence: 2, .. })
        ));
    }

    #[test]
    fn a_snapshot_must_match_size_and_digest() {
        let m = manifest(1, b"snapshot");
        assert!(matches!(
            m.check_snapshot(b"snap"),
            Err(ManifestError::SnapshotSize {
                expected: 8,
                found: 4,
                ..
            })
        ));
        assert!(matches!(
            m.check_snapshot(b"snapshoT"),
            Err(ManifestError::SnapshotDigest { .. })
        ));
    }

    #[test]
    fn keys_round_trip_and_bad_text_is_named_without_echo() {
        let k = key(9);
        let text = k.to_text();
        assert_eq!(SigningKey::parse(&text).unwrap().public(), k.public());
        let p = PublicKey::parse(&k.public().to_text()).unwrap();
        assert_eq!(p.id().len(), 16);
        let err = SigningKey::parse("ed25519-private:AAAA").unwrap_err();
        assert_eq!(err, KeyError::Length("a private key"));
        assert!(!format!("{k:?}").contains(&text[16..]));
        assert!(matches!(TrustedKeys::parse(""), Err(KeyError::NoKeys)));
        let pk = k.public().to_text();
        assert!(matches!(
            TrustedKeys::parse(&format!("{pk}, {pk}")),
            Err(KeyError::Duplicate(_))
        ));
        assert_eq!(
            TrustedKeys::parse(&format!("{pk} {}", key(8).public().to_text()))
                .unwrap()
                .ids()
                .len(),
            2
        );
    }

    #[test]
    fn canonical_bytes_separate_fields_whatever_they_hold() {
        let mut a = manifest(1, b"s");
        a.publication = Publication::Rollback {
            from_sequence: 4,
            from_store_version: 9,
            by: "ops\nreason=6:x".into(),
            reason: String::new(),
        };
        let mut b = a.clone();
        b.publication = Publication::Rollback {
            from_sequence: 4,
            from_store_version: 9,
            by: "ops".into(),
            reason: "x".into(),
        };
        assert_ne!(a.canonical_bytes(), b.canonical_bytes());
    }

    #[test]
    fn pruning_keeps_the_newest_and_the_current() {
        let keys: Vec<String> = (1..=6).map(|s| snapshot_key(s, "abcdef")).collect();
        let mut current = manifest(7, b"x");
        current.snapshot = keys[0].clone(); // rolled back to the first
        let gone = prune(&keys, Some(&current), 3);
        assert_eq!(gone, vec![keys[2].clone(), keys[1].clone()]);
        assert_eq!(snapshot_sequence(&keys[4]), Some(5));
        assert_eq!(snapshot_sequence("filters/other"), None);
        assert!(build_due(None, 0));
        let mut rolled = current.clone();
        rolled.publication = Publication::Rollback {
            from_sequence: 6,
            from_store_version: 9,
            by: "ops".into(),
            reason: "bad build".into(),
        };
        // Not rebuilt while the store stays where it was when rolled back; then it is.
        assert!(!build_due(Some(&rolled), 9));
        assert!(!build_due(Some(&rolled), 7));
        assert!(build_due(Some(&rolled), 10));
        assert_eq!(rolled_back_from(&rolled), 9);
        assert_eq!(rolled_back_from(&current), 7);
        assert!(build_due(Some(&current), 8));
        assert!(!build_due(Some(&current), 7));
        assert_eq!(next_sequence(Some(&current), &keys), 8);
        assert_eq!(next_sequence(None, &keys), 7);
        assert_eq!(next_sequence(None, &[]), 1);
        // Back from the first snapshot there is nothing; to a named one, that one.
        assert!(rollback_target(&current, &keys, None).is_err());
        assert_eq!(rollback_target(&current, &keys, Some(4)).unwrap(), &keys[3]);
        assert!(rollback_target(&current, &keys, Some(40)).is_err());
        current.snapshot = keys[5].clone();
        assert_eq!(rollback_target(&current, &keys, None).unwrap(), &keys[4]);
    }
}
