//! Publishing filter snapshots to the filter bucket: an immutable snapshot object first,
//! then the signed manifest naming it (`hashgate_core::manifest`), then the snapshots beyond
//! the number kept are deleted. A crash after the snapshot leaves an unnamed object that a
//! later publication prunes; scanners only ever follow the manifest, so they never see a
//! half-published filter. Rollbacks write a new manifest (a higher sequence) naming an
//! earlier snapshot.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use hashgate_core::filter::FilterSnapshot;
use hashgate_core::manifest::{
    self, Manifest, ManifestError, Publication, SigningKey, TrustedKeys, MANIFEST_KEY,
    SNAPSHOT_PREFIX,
};
use hashgate_core::time::Timestamp;

/// The current manifest as the bucket holds it.
#[derive(Debug)]
pub enum Current {
    /// None published yet.
    Missing,
    Valid(Manifest),
    /// One is there but does not verify with the trusted keys (altered, or signed with a
    /// key no longer trusted): a publication replaces it.
    Refused(ManifestError),
}

impl Current {
    pub fn manifest(&self) -> Option<&Manifest> {
        match self {
            Current::Valid(m) => Some(m),
            _ => None,
        }
    }
}

/// Publishes to one filter bucket.
#[derive(Clone, Debug)]
pub struct Publisher {
    client: Client,
    bucket: String,
    trusted: TrustedKeys,
    keep: usize,
}

fn sdk_error<E: std::fmt::Debug>(what: &str, e: E) -> String {
    format!("{what}: {e:?}")
}

impl Publisher {
    /// `trusted` verifies the manifest already there; `keep` snapshots stay for rollbacks.
    pub fn new(
        client: Client,
        bucket: impl Into<String>,
        trusted: TrustedKeys,
        keep: usize,
    ) -> Publisher {
        Publisher {
            client,
            bucket: bucket.into(),
            trusted,
            keep: keep.max(1),
        }
    }

    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The manifest now in the bucket, verified.
    pub async fn current(&self) -> Result<Current, String> {
        let bytes = match self.get(MANIFEST_KEY).await? {
            None => return Ok(Current::Missing),
            Some(b) => b,
        };
        Ok(match self.trusted.verify(&bytes, &self.url(MANIFEST_KEY)) {
            Ok(m) => Current::Valid(m),
            Err(e) => Current::Refused(e),
        })
    }

    /// Every snapshot key in the bucket.
    pub async fn snapshots(&self) -> Result<Vec<String>, String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(SNAPSHOT_PREFIX)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_error(&self.url(SNAPSHOT_PREFIX), e))?;
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => return Ok(keys),
            }
        }
    }

    /// An object's bytes, `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out
                .body
                .collect()
                .await
                .map(|b| Some(b.into_bytes().to_vec()))
                .map_err(|e| format!("{}: body: {e}", self.url(key))),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(e) => Err(sdk_error(&self.url(key), e)),
        }
    }

    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), String> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .content_type(content_type)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error(&self.url(key), e))
    }

    /// Publish `filter`: its snapshot, then the manifest naming it, signed with `key`; then
    /// prune. Returns the new manifest.
    pub async fn publish(
        &self,
        key: &SigningKey,
        filter: &FilterSnapshot,
        now: Timestamp,
    ) -> Result<Manifest, String> {
        let current = self.current().await?;
        if let Current::Refused(e) = &current {
            tracing::error!(error = %e, "the manifest in the bucket does not verify; replacing it");
        }
        let snapshots = self.snapshots().await?;
        let sequence = manifest::next_sequence(current.manifest(), &snapshots);
        let bytes = filter.to_bytes();
        let sha256 = manifest::sha256_hex(&bytes);
        let snapshot = manifest::snapshot_key(sequence, &sha256);
        let m = Manifest {
            sequence,
            snapshot: snapshot.clone(),
            size: bytes.len() as u64,
            sha256,
            store_version: filter.info().store_version,
            entries: filter.info().entries,
            published_at: now,
            publication: Publication::Build,
            key_id: key.public().id(),
        };
        self.put(&snapshot, bytes, "application/octet-stream")
            .await?;
        self.put(MANIFEST_KEY, key.sign(&m), "application/json")
            .await?;
        let mut all = snapshots;
        all.push(snapshot);
        self.prune(&all, &m).await;
        Ok(m)
    }

    /// Point the manifest back at an earlier snapshot (`to`: the sequence it was first
    /// published as; else the one before the current), checked before it is named. Returns
    /// the new manifest.
    pub async fn rollback(
        &self,
        key: &SigningKey,
        to: Option<u64>,
        by: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<Manifest, String> {
        let current = match self.current().await? {
            Current::Valid(m) => m,
            Current::Missing => return Err("no filter is published: nothing to roll back".into()),
            Current::Refused(e) => {
                return Err(format!(
                    "the current manifest does not verify ({e}); publish a new filter instead"
                ))
            }
        };
        let snapshots = self.snapshots().await?;
        let target = manifest::rollback_target(&current, &snapshots, to)?.clone();
        let bytes = self
            .get(&target)
            .await?
            .ok_or_else(|| format!("{}: gone", self.url(&target)))?;
        let filter = FilterSnapshot::from_bytes(&bytes, &self.url(&target))
            .map_err(|e| format!("{}: cannot roll back to it: {e}", self.url(&target)))?;
        let m = Manifest {
            sequence: manifest::next_sequence(Some(&current), &snapshots),
            snapshot: target,
            size: bytes.len() as u64,
            sha256: manifest::sha256_hex(&bytes),
            store_version: filter.info().store_version,
            entries: filter.info().entries,
            published_at: now,
            publication: Publication::Rollback {
                from_sequence: current.sequence,
                from_store_version: manifest::rolled_back_from(&current),
                by: by.to_string(),
                reason: reason.to_string(),
            },
            key_id: key.public().id(),
        };
        self.put(MANIFEST_KEY, key.sign(&m), "application/json")
            .await?;
        Ok(m)
    }

    /// Delete the snapshots beyond the number kept (never the current one). A failure is
    /// logged: it leaves an extra object, nothing wrong.
    async fn prune(&self, snapshots: &[String], current: &Manifest) {
        for key in manifest::prune(snapshots, Some(current), self.keep) {
            if let Err(e) = self
                .client
                .delete_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
            {
                tracing::warn!(snapshot = %key, error = ?e, "cannot delete an old filter snapshot");
            }
        }
    }
}
