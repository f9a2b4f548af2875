//! Signed checkpoints of the audit chain's head in S3, signed by KMS: the core's
//! [`Checkpoints`] port.
//!
//! A checkpoint is one JSON object, `checkpoints/<seq, 20 digits>.json` (so keys sort by
//! position in the chain), holding `seq`, `hash`, `at` ([`instant_text`]), `key_id`,
//! `algorithm` (`ECDSA_SHA_256`) and `signature` (base64 of KMS's DER signature over
//! [`Checkpoint::signed_bytes`]). The bucket keeps every object under a default Object Lock
//! retention, so nobody (an administrator who rewrites the audit table included) can change
//! or remove a checkpoint; writes are conditional (`If-None-Match: *`), so a checkpoint is
//! never replaced by a new version either. The private key never leaves KMS: checking a
//! signature is a KMS `Verify` with the configured key, and one that does not verify, or an
//! object that is not a checkpoint, is reported as an invalid signature under the object's
//! key.

use std::sync::{Arc, Mutex};

use aws_sdk_kms::operation::verify::VerifyError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;
use hashgate_core::audit::{instant_text, Checkpoint, ReadCheckpoint};
use hashgate_core::pipeline::StorageError;
use hashgate_core::review::Checkpoints;
use hashgate_core::time::Timestamp;
use serde::{Deserialize, Serialize};

use crate::s3::storage_error as error;

/// Where checkpoints are kept in their bucket ([`Checkpoint::object_key`]).
pub const PREFIX: &str = "checkpoints/";
/// The signing algorithm (the key is ECC_NIST_P256).
pub const ALGORITHM: &str = "ECDSA_SHA_256";
/// A checkpoint object is a few hundred bytes; anything much larger is not one.
const MAX_OBJECT_BYTES: usize = 64 * 1024;
/// Checkpoints read and verified at once by [`S3Checkpoints::all`].
const PARALLEL_READS: usize = 16;

/// A checkpoint as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCheckpoint {
    pub seq: u64,
    pub hash: String,
    /// [`instant_text`]: the instant exactly as it was signed.
    pub at: String,
    /// The key that signed (as KMS names it: its ARN).
    pub key_id: String,
    pub algorithm: String,
    /// Base64 of the signature.
    pub signature: String,
}

impl StoredCheckpoint {
    pub fn new(checkpoint: &Checkpoint, key_id: &str, signature: &[u8]) -> StoredCheckpoint {
        StoredCheckpoint {
            seq: checkpoint.seq,
            hash: checkpoint.hash.clone(),
            at: instant_text(checkpoint.at),
            key_id: key_id.to_string(),
            algorithm: ALGORITHM.to_string(),
            signature: aws_smithy_types::base64::encode(signature),
        }
    }

    /// The checkpoint it vouches for and the signature's bytes; what is not well formed is
    /// named.
    pub fn parts(&self) -> Result<(Checkpoint, Vec<u8>), String> {
        let at: Timestamp = self
            .at
            .parse()
            .map_err(|e| format!("at {:?} is not an instant: {e}", self.at))?;
        if self.algorithm != ALGORITHM {
            return Err(format!("signed with {:?}, not {ALGORITHM}", self.algorithm));
        }
        let signature = aws_smithy_types::base64::decode(&self.signature)
            .map_err(|e| format!("signature is not base64: {e}"))?;
        let checkpoint = Checkpoint {
            seq: self.seq,
            hash: self.hash.clone(),
            at,
        };
        // The instant must be written as it is signed, or two texts would pass for one.
        if instant_text(at) != self.at {
            return Err(format!("at {:?} is not in its canonical form", self.at));
        }
        Ok((checkpoint, signature))
    }
}

/// The position a checkpoint's key names, for reporting an object that is not one.
pub fn seq_of_key(key: &str) -> Option<u64> {
    key.strip_prefix(PREFIX)?
        .strip_suffix(".json")?
        .parse()
        .ok()
}

/// Checkpoints in an S3 bucket (with a default Object Lock retention), signed with a KMS
/// key (ECC_NIST_P256, SIGN_VERIFY). Clones share their clients and what they have seen.
#[derive(Clone, Debug)]
pub struct S3Checkpoints {
    client: aws_sdk_s3::Client,
    kms: aws_sdk_kms::Client,
    bucket: String,
    key_id: String,
    /// The newest checkpoint seen, so [`S3Checkpoints::latest`] lists only what came after.
    newest: Arc<Mutex<Option<Checkpoint>>>,
}

impl S3Checkpoints {
    /// `key_id`: the signing key's id, ARN or alias.
    pub fn new(
        client: aws_sdk_s3::Client,
        kms: aws_sdk_kms::Client,
        bucket: impl Into<String>,
        key_id: impl Into<String>,
    ) -> S3Checkpoints {
        S3Checkpoints {
            client,
            kms,
            bucket: bucket.into(),
            key_id: key_id.into(),
            newest: Arc::new(Mutex::new(None)),
        }
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn remember(&self, checkpoint: &Checkpoint) {
        let mut newest = self.newest.lock().unwrap_or_else(|e| e.into_inner());
        if newest.as_ref().is_none_or(|n| n.seq < checkpoint.seq) {
            *newest = Some(checkpoint.clone());
        }
    }

    fn newest(&self) -> Option<Checkpoint> {
        self.newest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The keys of the checkpoints after `start_after` (all of them without), in order.
    async fn keys(&self, start_after: Option<String>) -> Result<Vec<String>, StorageError> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(PREFIX)
                .set_start_after(start_after.clone())
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| error("ListObjectsV2", self.url(PREFIX), &e))?;
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .filter(|k| k.ends_with(".json"))
                    .map(str::to_string),
            );
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => return Ok(keys),
            }
        }
    }

    /// The object at `key`, parsed; `Ok(Err(reason))` when it is not a checkpoint.
    async fn fetch(&self, key: &str) -> Result<Result<StoredCheckpoint, String>, StorageError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| error("GetObject", self.url(key), &e))?;
        if out.content_length().unwrap_or(0) > MAX_OBJECT_BYTES as i64 {
            return Ok(Err(format!(
                "{} bytes: too large for a checkpoint",
                out.content_length().unwrap_or(0)
            )));
        }
        let bytes = out.body.collect().await.map_err(|e| StorageError {
            operation: "GetObject",
            target: self.url(key),
            message: format!("body read failed: {e}"),
        })?;
        Ok(serde_json::from_slice(&bytes.into_bytes())
            .map_err(|e| format!("not a checkpoint: {e}")))
    }

    /// Does `signature` verify over `checkpoint` with the configured key?
    async fn verify(
        &self,
        checkpoint: &Checkpoint,
        signature: Vec<u8>,
    ) -> Result<bool, StorageError> {
        let result = self
            .kms
            .verify()
            .key_id(&self.key_id)
            .message(Blob::new(checkpoint.signed_bytes()))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .signature(Blob::new(signature))
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.signature_valid()),
            // KMS answers a signature that does not verify with this error, not `false`.
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(VerifyError::KmsInvalidSignatureException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(error("Verify", self.key_id.clone(), &e)),
        }
    }

    /// One checkpoint, read and its signature checked.
    async fn read_one(&self, key: String) -> Result<ReadCheckpoint, StorageError> {
        let unreadable = |key: String, reason: String| {
            tracing::warn!(checkpoint = %key, %reason, "not a valid checkpoint");
            ReadCheckpoint {
                checkpoint: Checkpoint {
                    seq: seq_of_key(&key).unwrap_or(0),
                    hash: String::new(),
                    at: Timestamp::UNIX_EPOCH,
                },
                name: key,
                signature_valid: false,
            }
        };
        let stored = match self.fetch(&key).await? {
            Ok(s) => s,
            Err(reason) => return Ok(unreadable(key, reason)),
        };
        let (checkpoint, signature) = match stored.parts() {
            Ok(p) => p,
            Err(reason) => return Ok(unreadable(key, reason)),
        };
        if checkpoint.object_key() != key {
            let reason = format!("it vouches for entry {}", checkpoint.seq);
            return Ok(unreadable(key, reason));
        }
        let signature_valid = self.verify(&checkpoint, signature).await?;
        Ok(ReadCheckpoint {
            name: key,
            checkpoint,
            signature_valid,
        })
    }
}

impl Checkpoints for S3Checkpoints {
    async fn latest(&self) -> Result<Option<Checkpoint>, StorageError> {
        let known = self.newest();
        let keys = self
            .keys(known.as_ref().map(Checkpoint::object_key))
            .await?;
        let Some(key) = keys.last() else {
            return Ok(known);
        };
        let stored = self.fetch(key).await?.map_err(|reason| StorageError {
            operation: "GetObject",
            target: self.url(key),
            message: reason,
        })?;
        let (checkpoint, _) = stored.parts().map_err(|reason| StorageError {
            operation: "GetObject",
            target: self.url(key),
            message: reason,
        })?;
        self.remember(&checkpoint);
        Ok(Some(checkpoint))
    }

    async fn write(&self, checkpoint: &Checkpoint) -> Result<(), StorageError> {
        let signed = self
            .kms
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(checkpoint.signed_bytes()))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| error("Sign", self.key_id.clone(), &e))?;
        let signature = signed.signature().ok_or_else(|| StorageError {
            operation: "Sign",
            target: self.key_id.clone(),
            message: "KMS returned no signature".into(),
        })?;
        let stored = StoredCheckpoint::new(
            checkpoint,
            signed.key_id().unwrap_or(&self.key_id),
            signature.as_ref(),
        );
        let body = serde_json::to_vec(&stored).map_err(|e| StorageError {
            operation: "PutObject",
            target: self.url(&checkpoint.object_key()),
            message: e.to_string(),
        })?;
        let key = checkpoint.object_key();
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(ByteStream::from(body))
            .content_type("application/json")
            // Never a second version of a checkpoint.
            .if_none_match("*")
            // Writes into an Object Lock bucket must carry an integrity checksum.
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await;
        match result {
            Ok(_) => {}
            // Another writer checkpointed this entry first: it is checkpointed.
            Err(e)
                if e.raw_response().map(|r| r.status().as_u16()) == Some(412)
                    || matches!(
                        e.as_service_error().and_then(|s| s.code()),
                        Some("PreconditionFailed" | "ConditionalRequestConflict")
                    ) =>
            {
                tracing::info!(checkpoint = %key, "already checkpointed by another writer");
            }
            Err(e) => return Err(error("PutObject", self.url(&key), &e)),
        }
        self.remember(checkpoint);
        Ok(())
    }

    async fn all(&self) -> Result<Vec<ReadCheckpoint>, StorageError> {
        let keys = self.keys(None).await?;
        let mut read = Vec::with_capacity(keys.len());
        for batch in keys.chunks(PARALLEL_READS) {
            let mut tasks = tokio::task::JoinSet::new();
            for (i, key) in batch.iter().enumerate() {
                let this = self.clone();
                let key = key.clone();
                tasks.spawn(async move { (i, this.read_one(key).await) });
            }
            let mut results: Vec<Option<ReadCheckpoint>> = vec![None; batch.len()];
            while let Some(joined) = tasks.join_next().await {
                let (i, result) = joined.map_err(|e| StorageError {
                    operation: "GetObject",
                    target: self.url(PREFIX),
                    message: format!("a checkpoint read failed: {e}"),
                })?;
                results[i] = Some(result?);
            }
            read.extend(results.into_iter().flatten());
        }
        if let Some(newest) = read.iter().rfind(|r| r.signature_valid) {
            self.remember(&newest.checkpoint);
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            seq: 42,
            hash: "ab".repeat(32),
            at: Timestamp::new(1_795_255_445, 123_456_789).unwrap(),
        }
    }

    #[test]
    fn stored_checkpoints_round_trip_exactly() {
        let cp = checkpoint();
        let stored = StoredCheckpoint::new(&cp, "arn:aws:kms:k", &[0x30, 0x45, 0, 255]);
        assert_eq!(stored.at, "2026-11-21T10:04:05.123456789Z");
        let json = serde_json::to_string(&stored).unwrap();
        for field in ["seq", "hash", "at", "key_id", "algorithm", "signature"] {
            assert!(json.contains(&format!("\"{field}\"")), "{json}");
        }
        let back: StoredCheckpoint = serde_json::from_str(&json).unwrap();
        let (read, signature) = back.parts().unwrap();
        assert_eq!(read, cp);
        assert_eq!(signature, vec![0x30, 0x45, 0, 255]);
        assert_eq!(seq_of_key(&cp.object_key()), Some(42));
        assert_eq!(seq_of_key("checkpoints/x.json"), None);
    }

    #[test]
    fn malformed_checkpoints_are_named() {
        let good = StoredCheckpoint::new(&checkpoint(), "k", b"sig");
        let mut bad = good.clone();
        bad.at = "yesterday".into();
        assert!(bad.parts().unwrap_err().contains("at"));
        let mut bad = good.clone();
        bad.at = "2026-11-21T10:04:05.123456789+00:00".into();
        assert!(bad.parts().unwrap_err().contains("canonical"));
        let mut bad = good.clone();
        bad.algorithm = "RSASSA_PSS_SHA_256".into();
        assert!(bad.parts().unwrap_err().contains("RSASSA"));
        let mut bad = good;
        bad.signature = "not base64!".into();
        assert!(bad.parts().unwrap_err().contains("base64"));
    }
}
