//! Hash-list sync over the lists bucket: a file that lands under `incoming/` is checked whole
//! against the core's guards (`hashgate_core::lists::sync`), imported into the exact store
//! atomically, and moved to `applied/`; a refused one is moved to `rejected/` with its reason
//! beside it, logged and announced ("List Refused"), and nothing of it is applied. After
//! imports, a filter is built from the whole store and published, signed, when the store
//! moved past what the current manifest covers ("Filter Published").
//!
//! Every step can be repeated: an import of the same file again changes nothing, a file
//! already moved is gone (and skipped), a publication happens only when due. So a retry of
//! the same event, or the scheduled sweep of `incoming/`, finishes whatever a crash left.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use hashgate_core::event::ObjectRef;
use hashgate_core::lists::sync::{self, FileAction, FileSync, Finished, Limits, Refusal};
use hashgate_core::manifest::{Manifest, SigningKey};
use hashgate_core::store::ImportStats;
use hashgate_core::time::Timestamp;
use serde::Serialize;

use crate::dynamo::DynamoHashes;
use crate::filter_source::Alerts;
use crate::list_import;
use crate::publisher::Publisher;

/// Detail types of the events list sync publishes.
pub const REFUSED_DETAIL_TYPE: &str = "List Refused";
pub const PUBLISHED_DETAIL_TYPE: &str = "Filter Published";

/// What became of one file.
#[derive(Debug)]
pub enum FileOutcome {
    /// Imported (what changed, the store version the commit made) and moved to `applied/`.
    Applied {
        key: String,
        stats: ImportStats,
        version: u64,
    },
    /// Refused and moved to `rejected/`; nothing applied.
    Refused(Refusal),
    /// Not there any more (already handled).
    Gone { key: String },
}

/// Everything list sync works with.
pub struct ListSync {
    pub s3: Client,
    pub bucket: String,
    pub hashes: DynamoHashes,
    pub publisher: Publisher,
    pub signing: SigningKey,
    pub limits: Limits,
    pub fp_rate: f64,
    pub alerts: Option<Alerts>,
    /// Where files are downloaded to be read twice.
    pub work_dir: PathBuf,
}

#[derive(Serialize)]
struct RefusedNotice<'a> {
    bucket: &'a str,
    key: &'a str,
    rejected_key: String,
    kind: &'a str,
    reason: &'a str,
}

#[derive(Serialize)]
struct PublishedNotice<'a> {
    sequence: u64,
    store_version: u64,
    entries: u64,
    snapshot: &'a str,
    published_at: Timestamp,
}

fn sdk<E: std::fmt::Debug>(what: String, e: E) -> String {
    format!("{what}: {e:?}")
}

/// A downloaded file, removed when dropped.
struct Download(PathBuf);

impl Drop for Download {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl ListSync {
    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// Handle the file at `key`, driving the core's [`FileSync`]. `Err` is a failure worth
    /// retrying (the store or S3 could not be reached; the retry starts again from what the
    /// bucket holds); a bad file is `Ok(FileOutcome::Refused)`.
    pub async fn process(&self, key: &str) -> Result<FileOutcome, String> {
        let head = match self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(h) => h,
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                return Ok(FileOutcome::Gone { key: key.into() })
            }
            Err(e) => return Err(sdk(self.url(key), e)),
        };
        let metadata: BTreeMap<String, String> = head
            .metadata()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let size = head.content_length().unwrap_or(0).max(0) as u64;
        let mut protocol = FileSync::new(key, &metadata, size, self.limits);
        let mut download: Option<Download> = None;
        let mut imported: Option<(ImportStats, u64, u64)> = None;
        loop {
            match protocol.action() {
                FileAction::Check(file) => {
                    let d = self.download(key, head.e_tag()).await?;
                    let (path, limits) = (d.0.clone(), self.limits);
                    download = Some(d);
                    let checked = tokio::task::spawn_blocking(move || {
                        let reader = std::fs::File::open(&path)
                            .map(std::io::BufReader::new)
                            .map_err(|e| e.to_string())?;
                        Ok::<_, String>(sync::check(reader, &file, &limits))
                    })
                    .await
                    .map_err(|e| format!("{}: the check stopped: {e}", self.url(key)))??;
                    let sizes = self.hashes.list_sizes().await.map_err(|e| e.to_string())?;
                    if let Ok(c) = &checked {
                        imported = Some((ImportStats::default(), 0, c.entries));
                    }
                    protocol.checked(checked, &sizes);
                    continue;
                }
                FileAction::Import(file) => {
                    let path = download
                        .as_ref()
                        .map(|d| d.0.clone())
                        .ok_or("imported before it was checked")?;
                    let reopen: list_import::Reopen = Box::new(move || {
                        let f = std::fs::File::open(&path)?;
                        Ok(Box::new(std::io::BufReader::new(f)) as Box<dyn std::io::Read + Send>)
                    });
                    let (stats, version) = list_import::stage_and_commit(
                        &self.hashes,
                        reopen,
                        file.format,
                        &file.parse_options(),
                        file.op,
                    )
                    .await
                    .map_err(|e| format!("{}: importing: {e}", self.url(key)))?;
                    let entries = imported.map_or(0, |(_, _, n)| n);
                    tracing::info!(
                        key,
                        list = %file.list,
                        op = ?file.op,
                        entries,
                        added = stats.added,
                        updated = stats.updated,
                        removed = stats.removed,
                        store_version = version,
                        "list imported"
                    );
                    imported = Some((stats, version, entries));
                }
                FileAction::WriteReason { key: at, refusal } => {
                    tracing::error!(
                        key = %refusal.key,
                        kind = refusal.kind.as_str(),
                        reason = %refusal.reason,
                        moved_to = %sync::rejected_key(&refusal.key),
                        "list file REFUSED: nothing of it was applied"
                    );
                    self.put(&at, refusal.document(Timestamp::now()), "application/json")
                        .await?;
                }
                FileAction::Copy { to } => self.copy(key, &to).await?,
                FileAction::Announce(refusal) => self.announce_refusal(&refusal).await,
                FileAction::DeleteIncoming => {
                    self.s3
                        .delete_object()
                        .bucket(&self.bucket)
                        .key(key)
                        .send()
                        .await
                        .map_err(|e| sdk(format!("delete {}", self.url(key)), e))?;
                }
                FileAction::Done(Finished::Applied { .. }) => {
                    let (stats, version, _) = imported.unwrap_or_default();
                    return Ok(FileOutcome::Applied {
                        key: key.into(),
                        stats,
                        version,
                    });
                }
                FileAction::Done(Finished::Refused { refusal, .. }) => {
                    return Ok(FileOutcome::Refused(refusal))
                }
            }
            protocol.step_done();
        }
    }

    /// Download `key` (the version with `etag`, so a file replaced meanwhile is not mixed
    /// in) to a file of its own in the work directory.
    async fn download(&self, key: &str, etag: Option<&str>) -> Result<Download, String> {
        let mut request = self.s3.get_object().bucket(&self.bucket).key(key);
        if let Some(etag) = etag {
            request = request.if_match(etag);
        }
        let out = request.send().await.map_err(|e| sdk(self.url(key), e))?;
        std::fs::create_dir_all(&self.work_dir)
            .map_err(|e| format!("{}: {e}", self.work_dir.display()))?;
        let name = format!(
            "list-{}-{}",
            std::process::id(),
            Timestamp::now().as_nanosecond()
        );
        let path = self.work_dir.join(name);
        let download = Download(path.clone());
        let mut file =
            std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut body = out.body;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| format!("{}: body: {e}", self.url(key)))?
        {
            file.write_all(&chunk)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        file.sync_all()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(download)
    }

    /// Copy `from` to `to` within the lists bucket.
    async fn copy(&self, from: &str, to: &str) -> Result<(), String> {
        let source = crate::s3::copy_source(&ObjectRef {
            bucket: self.bucket.clone(),
            key: from.into(),
            version_id: None,
            etag: None,
        });
        self.s3
            .copy_object()
            .bucket(&self.bucket)
            .key(to)
            .copy_source(source)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk(format!("copy {} to {to}", self.url(from)), e))
    }

    /// Announce a refused file on the event bus ("List Refused"), when one is configured. A
    /// failure is logged: the refusal is in the log and beside the file already.
    async fn announce_refusal(&self, refusal: &Refusal) {
        let Some(alerts) = &self.alerts else {
            return;
        };
        let detail = serde_json::to_string(&RefusedNotice {
            bucket: &self.bucket,
            key: &refusal.key,
            rejected_key: sync::rejected_key(&refusal.key),
            kind: refusal.kind.as_str(),
            reason: &refusal.reason,
        })
        .unwrap_or_default();
        if let Err(e) =
            crate::notify::put_event(&alerts.events, &alerts.bus, REFUSED_DETAIL_TYPE, detail).await
        {
            tracing::error!(error = %e, "cannot announce the refused list");
        }
    }

    /// Write an object of the lists bucket (a pulled source's file or state, a reason).
    pub async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), String> {
        self.put_with_metadata(key, body, content_type, &BTreeMap::new())
            .await
    }

    pub async fn put_with_metadata(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let mut request = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .content_type(content_type);
        for (k, v) in metadata {
            request = request.metadata(k, v);
        }
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk(self.url(key), e))
    }

    /// An object of the lists bucket, `None` when absent.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        match self
            .s3
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
            Err(e) => Err(sdk(self.url(key), e)),
        }
    }

    /// Every file waiting under `incoming/`, oldest first.
    pub async fn incoming(&self) -> Result<Vec<String>, String> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .s3
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(sync::INCOMING)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| sdk(self.url(sync::INCOMING), e))?;
            for o in out.contents() {
                if let Some(k) = o.key().filter(|k| !k.ends_with('/')) {
                    let at = o.last_modified().map(|t| t.secs()).unwrap_or(0);
                    found.push((at, k.to_string()));
                }
            }
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        found.sort();
        Ok(found.into_iter().map(|(_, k)| k).collect())
    }

    /// Handle every waiting file, one after the other. A file that could not be handled is
    /// logged and left for the next run; the others go on.
    pub async fn sweep(&self) -> Result<Vec<FileOutcome>, String> {
        let mut outcomes = Vec::new();
        for key in self.incoming().await? {
            match self.process(&key).await {
                Ok(o) => outcomes.push(o),
                Err(e) => {
                    tracing::error!(key, error = %e, "list file not handled; retried on the next run")
                }
            }
        }
        Ok(outcomes)
    }

    /// Publish a filter built from the whole store when the store moved past what the
    /// current manifest covers. Returns the new manifest, if one was published.
    pub async fn publish_if_due(&self, seed: [u8; 32]) -> Result<Option<Manifest>, String> {
        let current = self.publisher.current().await?;
        let (state, _) = self.hashes.meta().await.map_err(|e| e.to_string())?;
        if !hashgate_core::manifest::build_due(current.manifest(), state.version) {
            return Ok(None);
        }
        let filter =
            list_import::build_filter(&self.hashes, self.fp_rate, seed, Timestamp::now()).await?;
        let m = self
            .publisher
            .publish(&self.signing, &filter, Timestamp::now())
            .await?;
        tracing::info!(
            sequence = m.sequence,
            store_version = m.store_version,
            entries = m.entries,
            snapshot = %m.snapshot,
            "filter published"
        );
        if let Some(alerts) = &self.alerts {
            let detail = serde_json::to_string(&PublishedNotice {
                sequence: m.sequence,
                store_version: m.store_version,
                entries: m.entries,
                snapshot: &m.snapshot,
                published_at: m.published_at,
            })
            .unwrap_or_default();
            if let Err(e) =
                crate::notify::put_event(&alerts.events, &alerts.bus, PUBLISHED_DETAIL_TYPE, detail)
                    .await
            {
                tracing::warn!(error = %e, "cannot announce the published filter");
            }
        }
        Ok(Some(m))
    }
}

/// The work directory for downloads: `$TMPDIR` (in Lambda, `/tmp`, sized by the function's
/// ephemeral storage).
pub fn default_work_dir() -> PathBuf {
    std::env::temp_dir().join("hashgate-lists")
}
