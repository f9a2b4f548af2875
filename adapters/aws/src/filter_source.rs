//! Filter snapshots in S3 as scanners read them: the signed manifest
//! (`hashgate_core::manifest`) first, with a conditional GET, so an unchanged filter costs
//! one small request; then, only for a newer manifest, the snapshot it names.
//!
//! A manifest that is unsigned, malformed, signed by an untrusted key or wrongly, or older
//! than the last one accepted, and a snapshot that differs from its manifest or fails its
//! own checks, are refused: logged, announced ("Filter Refused" on the event bus when one is
//! configured), and the last good snapshot stays in use (invariant 4).

use std::sync::Arc;

use aws_sdk_s3::Client;
use hashgate_core::filter::{FilterError, FilterFeed, FilterSnapshot, Refresh};
use hashgate_core::manifest::{self, Accepted, Manifest, TrustedKeys, MANIFEST_KEY};
use hashgate_core::time::Timestamp;
use serde::Serialize;

/// The filter bucket a scanner reads.
#[derive(Clone, Debug)]
pub struct FilterLocation {
    pub bucket: String,
}

impl FilterLocation {
    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

/// Where refusals are announced.
#[derive(Clone, Debug)]
pub struct Alerts {
    pub events: aws_sdk_eventbridge::Client,
    pub bus: String,
}

/// The detail type of a refused filter's event.
pub const REFUSED_DETAIL_TYPE: &str = "Filter Refused";

#[derive(Serialize)]
struct RefusedNotice {
    manifest: String,
    reason: String,
    kept_sequence: Option<u64>,
    refused_at: Timestamp,
}

/// The scanner's feed of signed filter snapshots from S3.
pub struct FilterSource {
    client: Client,
    at: FilterLocation,
    trusted: TrustedKeys,
    alerts: Option<Alerts>,
    etag: Option<String>,
    last: Option<Manifest>,
    refusals: u64,
}

impl FilterSource {
    pub fn new(client: Client, at: FilterLocation, trusted: TrustedKeys) -> FilterSource {
        FilterSource {
            client,
            at,
            trusted,
            alerts: None,
            etag: None,
            last: None,
            refusals: 0,
        }
    }

    /// Announce refusals on an event bus too.
    pub fn with_alerts(mut self, alerts: Option<Alerts>) -> FilterSource {
        self.alerts = alerts;
        self
    }

    /// The manifest of the snapshot in use.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.last.as_ref()
    }

    /// Refusals since this source started.
    pub fn refusals(&self) -> u64 {
        self.refusals
    }

    async fn get(
        &self,
        key: &str,
        if_none_match: Option<&str>,
    ) -> Result<Option<(Vec<u8>, Option<String>)>, Refresh> {
        let mut request = self.client.get_object().bucket(&self.at.bucket).key(key);
        if let Some(etag) = if_none_match {
            request = request.if_none_match(etag);
        }
        let out = match request.send().await {
            Ok(o) => o,
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                return match status {
                    Some(304) => Err(Refresh::Unchanged),
                    Some(404) => Ok(None),
                    _ => Err(Refresh::Unavailable(format!("{}: {e:?}", self.at.url(key)))),
                };
            }
        };
        let etag = out.e_tag().map(str::to_string);
        match out.body.collect().await {
            Ok(b) => Ok(Some((b.into_bytes().to_vec(), etag))),
            Err(e) => Err(Refresh::Unavailable(format!(
                "{}: body: {e}",
                self.at.url(key)
            ))),
        }
    }

    /// Look for a newer filter now.
    pub async fn fetch(&mut self) -> Refresh {
        let manifest_url = self.at.url(MANIFEST_KEY);
        let (bytes, etag) = match self.get(MANIFEST_KEY, self.etag.as_deref()).await {
            Ok(Some(found)) => found,
            Ok(None) => return Refresh::Missing,
            Err(r) => return r,
        };
        let verified = self
            .trusted
            .verify(&bytes, &manifest_url)
            .and_then(|m| manifest::accept(m, self.last.as_ref(), &manifest_url));
        let m = match verified {
            Ok(Accepted::Same) => {
                self.etag = etag;
                return Refresh::Unchanged;
            }
            Ok(Accepted::Newer(m)) => m,
            Err(e) => {
                // Remembered, so the same refused object is not fetched every interval.
                self.etag = etag;
                return self.refuse(manifest_url, e.to_string()).await;
            }
        };
        let snapshot_url = self.at.url(&m.snapshot);
        let snapshot = match self.get(&m.snapshot, None).await {
            Ok(Some((b, _))) => b,
            Ok(None) => {
                self.etag = etag;
                return self
                    .refuse(
                        manifest_url,
                        format!("{snapshot_url}: named by the manifest, but not there"),
                    )
                    .await;
            }
            // Not remembered: a transient failure is retried next interval.
            Err(r) => return r,
        };
        self.etag = etag;
        if let Err(e) = m.check_snapshot(&snapshot) {
            return self.refuse(manifest_url, e.to_string()).await;
        }
        let filter = match FilterSnapshot::from_bytes(&snapshot, &snapshot_url) {
            Ok(f) => f,
            Err(e) => return self.refuse(manifest_url, e.to_string()).await,
        };
        if filter.info().store_version != m.store_version || filter.info().entries != m.entries {
            return self
                .refuse(
                    manifest_url,
                    format!(
                        "{snapshot_url}: covers store version {} with {} entries, but the \
                         manifest says {} with {}",
                        filter.info().store_version,
                        filter.info().entries,
                        m.store_version,
                        m.entries
                    ),
                )
                .await;
        }
        tracing::info!(
            sequence = m.sequence,
            store_version = m.store_version,
            entries = m.entries,
            published_at = %m.published_at,
            key_id = %m.key_id,
            snapshot = %m.snapshot,
            rollback = matches!(m.publication, manifest::Publication::Rollback { .. }),
            "filter manifest accepted"
        );
        self.last = Some(m);
        Refresh::Loaded(Arc::new(filter))
    }

    async fn refuse(&mut self, manifest_url: String, reason: String) -> Refresh {
        self.refusals += 1;
        let kept = self.last.as_ref().map(|m| m.sequence);
        tracing::error!(
            manifest = %manifest_url,
            reason = %reason,
            kept_sequence = ?kept,
            "filter REFUSED: keeping the last good one"
        );
        if let Some(alerts) = &self.alerts {
            let notice = RefusedNotice {
                manifest: manifest_url.clone(),
                reason: reason.clone(),
                kept_sequence: kept,
                refused_at: Timestamp::now(),
            };
            let detail = serde_json::to_string(&notice).unwrap_or_default();
            if let Err(e) =
                crate::notify::put_event(&alerts.events, &alerts.bus, REFUSED_DETAIL_TYPE, detail)
                    .await
            {
                tracing::error!(error = %e, "cannot announce the refused filter");
            }
        }
        Refresh::Refused(FilterError::Untrusted {
            source_name: manifest_url,
            what: reason,
        })
    }
}

impl FilterFeed for FilterSource {
    async fn refresh(&mut self) -> Refresh {
        self.fetch().await
    }
}
