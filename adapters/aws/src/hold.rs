//! Object Lock legal holds on a case's stored evidence: the quarantined copy (every stored
//! version of the case's quarantine key) and its report package (every object version under
//! `reports/<case_id>/`), placed or lifted with `PutObjectLegalHold` where
//! `GetObjectLegalHold` says it is not so already.
//!
//! A legal hold keeps an object version from deletion and overwrite whatever its retention,
//! until it is lifted; unlike a retention it has no end date, and needs no
//! `s3:BypassGovernanceRetention` to place or lift. Both operations are idempotent, so a
//! command that stopped half-way is simply run again. Which order they take with the case
//! update is the core's rule (`hashgate_core::hold`).

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{ObjectLockLegalHold, ObjectLockLegalHoldStatus};
use aws_sdk_s3::Client;
use hashgate_core::pipeline::StorageError;
use serde::Serialize;

use crate::s3::storage_error;

/// Whether a hold is placed or lifted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    On,
    Off,
}

impl Hold {
    fn status(self) -> ObjectLockLegalHoldStatus {
        match self {
            Hold::On => ObjectLockLegalHoldStatus::On,
            Hold::Off => ObjectLockLegalHoldStatus::Off,
        }
    }
}

/// One object version a hold covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeldVersion {
    pub bucket: String,
    pub key: String,
    /// `null` for an object written before the bucket was versioned.
    pub version_id: String,
    /// Whether its legal hold was changed (false: it already was as asked).
    pub changed: bool,
}

impl std::fmt::Display for HeldVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "s3://{}/{} (version {})",
            self.bucket, self.key, self.version_id
        )
    }
}

/// Legal holds on objects of Object Lock buckets.
#[derive(Clone, Debug)]
pub struct LegalHolds {
    client: Client,
}

impl LegalHolds {
    pub fn new(client: Client) -> LegalHolds {
        LegalHolds { client }
    }

    /// Set `hold` on every stored version of exactly `key` (delete markers have none).
    pub async fn set_key(
        &self,
        bucket: &str,
        key: &str,
        hold: Hold,
    ) -> Result<Vec<HeldVersion>, StorageError> {
        let versions = self.versions(bucket, key, |k| k == key).await?;
        self.set_all(versions, hold).await
    }

    /// Set `hold` on every stored version of every key under `prefix`.
    pub async fn set_prefix(
        &self,
        bucket: &str,
        prefix: &str,
        hold: Hold,
    ) -> Result<Vec<HeldVersion>, StorageError> {
        let versions = self.versions(bucket, prefix, |_| true).await?;
        self.set_all(versions, hold).await
    }

    async fn set_all(
        &self,
        versions: Vec<HeldVersion>,
        hold: Hold,
    ) -> Result<Vec<HeldVersion>, StorageError> {
        let mut versions = versions;
        for v in &mut versions {
            if self.status(v).await? == hold {
                continue;
            }
            v.changed = true;
            let request = self
                .client
                .put_object_legal_hold()
                .bucket(&v.bucket)
                .key(&v.key)
                .legal_hold(ObjectLockLegalHold::builder().status(hold.status()).build());
            let request = if v.version_id == "null" {
                request
            } else {
                request.version_id(&v.version_id)
            };
            request
                .send()
                .await
                .map_err(|e| storage_error("PutObjectLegalHold", v.to_string(), &e))?;
        }
        Ok(versions)
    }

    /// The legal hold of one version (none set is off).
    async fn status(&self, v: &HeldVersion) -> Result<Hold, StorageError> {
        let request = self
            .client
            .get_object_legal_hold()
            .bucket(&v.bucket)
            .key(&v.key);
        let request = if v.version_id == "null" {
            request
        } else {
            request.version_id(&v.version_id)
        };
        match request.send().await {
            Ok(out) => Ok(match out.legal_hold().and_then(|h| h.status()) {
                Some(ObjectLockLegalHoldStatus::On) => Hold::On,
                _ => Hold::Off,
            }),
            // S3's answer for a version that never had a hold (or retention) set.
            Err(e) if e.code() == Some("NoSuchObjectLockConfiguration") => Ok(Hold::Off),
            Err(e) => Err(storage_error("GetObjectLegalHold", v.to_string(), &e)),
        }
    }

    /// The object versions (not delete markers) under `prefix` whose key passes `wanted`.
    async fn versions(
        &self,
        bucket: &str,
        prefix: &str,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Vec<HeldVersion>, StorageError> {
        let mut out = Vec::new();
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| {
                    storage_error("ListObjectVersions", format!("s3://{bucket}/{prefix}"), &e)
                })?;
            for v in page.versions() {
                let (Some(key), Some(version_id)) = (v.key(), v.version_id()) else {
                    continue;
                };
                if wanted(key) {
                    out.push(HeldVersion {
                        bucket: bucket.to_string(),
                        key: key.to_string(),
                        version_id: version_id.to_string(),
                        changed: false,
                    });
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
        }
        Ok(out)
    }
}
