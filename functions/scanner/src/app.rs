//! The scanner wired: AWS adapters plugged into the core's pipeline, the current filter, and
//! the handling of every invocation shape.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use hashgate_aws::dynamo::{DynamoCases, DynamoHashes};
use hashgate_aws::filter_source::{FilterSource, Refresh};
use hashgate_aws::notify::QueueAndBus;
use hashgate_aws::s3::S3Objects;
use hashgate_core::digest::{AlgorithmSet, Digest};
use hashgate_core::event::{parse_invocation, BatchResponse, Invocation, Notice};
use hashgate_core::filter::FilterSnapshot;
use hashgate_core::pipeline::{PipelineError, ScanReport, Scanner, ScannerConfig};
use hashgate_core::scan::Screen;
use hashgate_core::store::{EmbeddedStore, HashStore, StoreError, StoredDigest};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::config::{Config, HashBackend};
use crate::metrics::Tally;

/// The exact store, wherever it is.
pub enum Hashes {
    Dynamo(DynamoHashes),
    Embedded(EmbeddedStore),
}

impl HashStore for Hashes {
    async fn lookup(&self, digests: &[Digest]) -> Result<Vec<StoredDigest>, StoreError> {
        match self {
            Hashes::Dynamo(d) => d.lookup(digests).await,
            Hashes::Embedded(e) => e.lookup_now(digests),
        }
    }
}

impl Hashes {
    /// The store's version and the algorithms its lists use.
    async fn version(&self) -> Result<(u64, AlgorithmSet), StoreError> {
        match self {
            Hashes::Dynamo(d) => d.version().await,
            Hashes::Embedded(e) => Ok((e.version()?, e.algorithms()?)),
        }
    }
}

/// The filter in use and what the store looked like when it was last checked.
struct FilterState {
    source: Option<FilterSource>,
    embedded_dir: Option<std::path::PathBuf>,
    filter: Option<Arc<FilterSnapshot>>,
    store_version: u64,
    needed: AlgorithmSet,
    checked: Option<Instant>,
}

pub struct App {
    scanner: Scanner<S3Objects, Hashes, DynamoCases, QueueAndBus>,
    state: Mutex<FilterState>,
    refresh: std::time::Duration,
    /// The function name metrics are reported under; None: no metrics (worker mode).
    metrics: Option<String>,
    tally: std::sync::Mutex<Tally>,
}

impl App {
    pub async fn new(config: &Config, metrics: Option<String>) -> anyhow::Result<App> {
        let sdk = hashgate_aws::sdk_config().await;
        let s3 = hashgate_aws::s3_client(&sdk);
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let (hashes, source, embedded_dir) = match &config.hashes {
            HashBackend::Dynamo { table, filter } => (
                Hashes::Dynamo(DynamoHashes::new(dynamo.clone(), table)),
                Some(FilterSource::new(
                    s3.clone(),
                    filter.clone(),
                    config.filter_refresh,
                )),
                None,
            ),
            HashBackend::Embedded { dir } => (
                Hashes::Embedded(EmbeddedStore::open(dir)?),
                None,
                Some(dir.clone()),
            ),
        };
        let app = App {
            scanner: Scanner {
                objects: S3Objects::new(s3),
                hashes,
                cases: DynamoCases::new(dynamo, &config.case_table, &config.audit_table),
                notifier: QueueAndBus {
                    sqs: aws_sdk_sqs::Client::new(&sdk),
                    review_queue_url: config.review_queue_url.clone(),
                    events: aws_sdk_eventbridge::Client::new(&sdk),
                    event_bus: config.event_bus.clone(),
                },
                config: ScannerConfig {
                    quarantine_bucket: config.quarantine_bucket.clone(),
                    retention_days: config.retention_days,
                    mode: config.mode,
                    max_object_bytes: config.max_object_bytes,
                    tag_clean: config.tag_clean,
                },
            },
            state: Mutex::new(FilterState {
                source,
                embedded_dir,
                filter: None,
                store_version: 0,
                needed: AlgorithmSet::ALL,
                checked: None,
            }),
            refresh: config.filter_refresh,
            metrics,
            tally: std::sync::Mutex::default(),
        };
        app.refresh_filter(true).await;
        Ok(app)
    }

    /// Reload the filter and the store's version when due (or now, with `force`). A filter
    /// is used only while it covers the store's current version; otherwise every digest
    /// goes to the exact store. A refused snapshot never replaces the last good one.
    pub async fn refresh_filter(&self, force: bool) {
        let mut state = self.state.lock().await;
        if !force && state.checked.is_some_and(|t| t.elapsed() < self.refresh) {
            return;
        }
        state.checked = Some(Instant::now());
        match self.scanner.hashes.version().await {
            Ok((version, algorithms)) => {
                state.store_version = version;
                // An empty store means nothing can match yet; still compute every digest
                // so reports carry them, at the cost of one read.
                state.needed = if algorithms.is_empty() {
                    AlgorithmSet::ALL
                } else {
                    algorithms
                };
            }
            Err(e) => tracing::error!(error = %e, "cannot read the hash store's version"),
        }
        if let Some(source) = state.source.as_mut() {
            match source.refresh().await {
                Refresh::Loaded => {
                    let f = source.current().expect("loaded");
                    tracing::info!(
                        entries = f.info().entries,
                        store_version = f.info().store_version,
                        "filter snapshot loaded"
                    );
                    state.filter = Some(f);
                }
                Refresh::Unchanged => {}
                Refresh::Missing => tracing::warn!(
                    "no filter snapshot published: every digest goes to the exact store"
                ),
                Refresh::Refused(e) => {
                    tracing::error!(error = %e, "filter snapshot REFUSED; keeping the last good one")
                }
                Refresh::Unavailable(e) => {
                    tracing::error!(error = %e, "cannot check for a newer filter snapshot")
                }
            }
        } else if let Some(dir) = &state.embedded_dir {
            let path = dir.join(hashgate_core::local::FILTER_FILE);
            let stale = state
                .filter
                .as_ref()
                .is_none_or(|f| f.info().store_version != state.store_version);
            if stale && path.exists() {
                match FilterSnapshot::load(&path) {
                    Ok(f) => state.filter = Some(Arc::new(f)),
                    Err(e) => {
                        tracing::error!(error = %e, "filter snapshot REFUSED; keeping the last good one")
                    }
                }
            }
        }
    }

    /// How often the filter and the store version are checked.
    pub fn refresh_interval(&self) -> std::time::Duration {
        self.refresh
    }

    /// Handle one Lambda payload of any supported shape, then report its metrics.
    pub async fn handle(&self, payload: Value) -> Result<Value, PipelineError> {
        let result = self.handle_payload(payload).await;
        self.flush_metrics().await;
        result
    }

    /// Print the tally since the last flush as an embedded-metric line (Lambda only).
    pub async fn flush_metrics(&self) {
        let Some(function) = &self.metrics else {
            return;
        };
        let tally = std::mem::take(&mut *self.tally.lock().expect("tally lock"));
        let built_at = self
            .state
            .lock()
            .await
            .filter
            .as_ref()
            .map(|f| f.info().built_at);
        if tally.is_empty() && built_at.is_none() {
            return;
        }
        println!("{}", tally.emf(function, built_at, SystemTime::now()));
    }

    async fn handle_payload(&self, payload: Value) -> Result<Value, PipelineError> {
        self.refresh_filter(false).await;
        match parse_invocation(&payload) {
            Err(e) => {
                // Nothing in it can be scanned, and a retry cannot help: log and drop.
                tracing::error!(error = %e, "unrecognised invocation payload");
                Ok(Value::Null)
            }
            Ok(Invocation::Direct(notices)) => {
                for notice in notices {
                    self.process(notice).await?;
                }
                Ok(Value::Null)
            }
            Ok(Invocation::Sqs(messages)) => {
                let mut response = BatchResponse::default();
                for m in messages {
                    let ok = match m.notices {
                        Err(e) => {
                            tracing::error!(message_id = %m.message_id, error = %e, "malformed message");
                            false
                        }
                        Ok(notices) => self.process_all(notices).await,
                    };
                    if !ok {
                        response.fail(m.message_id);
                    }
                }
                Ok(serde_json::to_value(response).expect("serialisable"))
            }
        }
    }

    /// Process every notice of one message; false if any failed (the message comes back).
    pub async fn process_all(&self, notices: Vec<Notice>) -> bool {
        self.refresh_filter(false).await;
        let mut ok = true;
        for notice in notices {
            if let Err(e) = self.process(notice).await {
                tracing::error!(error = %e, "scan failed; the event will be retried");
                ok = false;
            }
        }
        ok
    }

    async fn process(&self, notice: Notice) -> Result<Option<ScanReport>, PipelineError> {
        let event = match notice {
            Notice::Upload(e) => e,
            Notice::Test { bucket } => {
                tracing::info!(bucket = ?bucket, "s3:TestEvent acknowledged");
                return Ok(None);
            }
            Notice::Ignored { reason } => {
                tracing::info!(%reason, "event ignored");
                return Ok(None);
            }
        };
        let (filter, needed, store_version) = {
            let state = self.state.lock().await;
            (state.filter.clone(), state.needed, state.store_version)
        };
        let screen = match &filter {
            Some(f) if f.info().store_version == store_version => Screen::Filter(f),
            _ => Screen::StoreOnly,
        };
        let filter_used = matches!(screen, Screen::Filter(_));
        let report = self
            .scanner
            .scan(&event, screen, needed, SystemTime::now())
            .await?;
        if self.metrics.is_some() {
            self.tally
                .lock()
                .expect("tally lock")
                .add(&report, filter_used);
        }
        tracing::info!(
            target: "hashgate::scan",
            report = %serde_json::to_string(&report).unwrap_or_default(),
            "scanned"
        );
        Ok(Some(report))
    }
}
