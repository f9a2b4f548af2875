//! The scanner's application: the core's pipeline over any ports, the current filter and
//! its refresh policy, the handling of every invocation shape, and the metrics tally.
//!
//! [`App`] is generic over the ports, so its dispatch, refresh policy and metrics are
//! unit-tested against the core's in-memory ports; [`connect`] wires the real adapters
//! (S3, DynamoDB or a local hash database, SQS and EventBridge) from the configuration.

use std::sync::Arc;
use std::time::Duration;

use hashgate_aws::dynamo::{DynamoCases, DynamoHashes};
use hashgate_aws::filter_source::{Alerts, FilterSource};
use hashgate_aws::notify::QueueAndBus;
use hashgate_aws::s3::S3Objects;
use hashgate_core::digest::{AlgorithmSet, Digest};
use hashgate_core::event::Notice;
use hashgate_core::filter::{FilterFeed, FilterSnapshot, Refresh};
use hashgate_core::pipeline::{
    CaseStore, Notifier, ObjectStore, PipelineError, ScanReport, Scanner, ScannerConfig,
};
use hashgate_core::scan::Screen;
use hashgate_core::store::{HashStore, StoreError, StoreState, StoredDigest};
use hashgate_core::time::Timestamp;
use hashgate_local::{EmbeddedStore, FilterFile, FILTER_FILE};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::config::{Config, HashBackend};
use crate::envelope::{parse_invocation, BatchResponse, Invocation};
use crate::metrics::Tally;
use crate::prom::WorkerMetrics;

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

    async fn state(&self) -> Result<StoreState, StoreError> {
        match self {
            Hashes::Dynamo(d) => d.state().await,
            Hashes::Embedded(e) => e.state().await,
        }
    }
}

/// Where filter snapshots come from, with the store.
pub enum Filters {
    /// Boxed: it holds the SDK client, the trusted keys and the last manifest.
    S3(Box<FilterSource>),
    File(FilterFile),
}

impl FilterFeed for Filters {
    async fn refresh(&mut self) -> Refresh {
        match self {
            Filters::S3(s) => s.refresh().await,
            Filters::File(f) => f.refresh().await,
        }
    }
}

/// The scanner as deployed: the AWS adapters (or a local hash database).
pub type DeployedApp = App<S3Objects, Hashes, DynamoCases, QueueAndBus, Filters>;

/// What time it is: `Timestamp::now` in production, a hand-moved clock in tests.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The filter in use and what the store looked like when it was last checked.
struct FilterState<F> {
    feed: F,
    filter: Option<Arc<FilterSnapshot>>,
    store_version: u64,
    needed: AlgorithmSet,
    checked: Option<Timestamp>,
}

pub struct App<O, H, C, N, F> {
    scanner: Scanner<O, H, C, N>,
    state: Mutex<FilterState<F>>,
    refresh: Duration,
    /// The function name metrics are reported under; None: no metrics (worker mode).
    metrics: Option<String>,
    tally: std::sync::Mutex<Tally>,
    clock: Clock,
    /// Self-hosted workers' Prometheus metrics, once a worker asks for them.
    observer: std::sync::OnceLock<Arc<WorkerMetrics>>,
}

/// Wire the adapters the configuration names, and load the filter.
pub async fn connect(config: &Config, metrics: Option<String>) -> anyhow::Result<DeployedApp> {
    let sdk = hashgate_aws::sdk_config().await;
    let s3 = hashgate_aws::s3_client(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let (hashes, feed) = match &config.hashes {
        HashBackend::Dynamo {
            table,
            filter,
            trusted,
        } => (
            Hashes::Dynamo(DynamoHashes::new(dynamo.clone(), table)),
            Filters::S3(Box::new(
                FilterSource::new(s3.clone(), filter.clone(), trusted.clone()).with_alerts(
                    config.event_bus.as_ref().map(|bus| Alerts {
                        events: aws_sdk_eventbridge::Client::new(&sdk),
                        bus: bus.clone(),
                    }),
                ),
            )),
        ),
        HashBackend::Embedded { dir } => (
            Hashes::Embedded(EmbeddedStore::open(dir)?),
            Filters::File(FilterFile::new(dir.join(FILTER_FILE))),
        ),
    };
    let scanner = Scanner {
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
            perceptual: config.perceptual.clone(),
        },
    };
    let app = App::new(
        scanner,
        feed,
        config.filter_refresh,
        metrics,
        Arc::new(Timestamp::now),
    );
    app.refresh_filter(true).await;
    Ok(app)
}

impl<O, H, C, N, F> App<O, H, C, N, F>
where
    O: ObjectStore,
    H: HashStore,
    C: CaseStore,
    N: Notifier,
    F: FilterFeed,
{
    pub fn new(
        scanner: Scanner<O, H, C, N>,
        feed: F,
        refresh: Duration,
        metrics: Option<String>,
        clock: Clock,
    ) -> Self {
        App {
            scanner,
            state: Mutex::new(FilterState {
                feed,
                filter: None,
                store_version: 0,
                needed: AlgorithmSet::EXACT,
                checked: None,
            }),
            refresh,
            metrics,
            tally: std::sync::Mutex::default(),
            clock,
            observer: std::sync::OnceLock::new(),
        }
    }

    /// Report every scan to `metrics` from now on.
    pub fn observe(&self, metrics: Arc<WorkerMetrics>) {
        let _ = self.observer.set(metrics);
    }

    /// The filter in use: when it was built, and the store version it covers.
    pub async fn filter_in_use(&self) -> Option<(Timestamp, u64)> {
        let state = self.state.lock().await;
        state
            .filter
            .as_ref()
            .map(|f| (f.info().built_at(), f.info().store_version))
    }

    /// Now, by the app's clock.
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Reload the filter and the store's version when due (or now, with `force`). A filter
    /// is used only while it covers the store's current version (`Screen::for_store`);
    /// otherwise every digest goes to the exact store. A refused snapshot never replaces the
    /// last good one.
    pub async fn refresh_filter(&self, force: bool) {
        let now = (self.clock)();
        let mut state = self.state.lock().await;
        let due = state
            .checked
            .is_none_or(|t| now.duration_since(t).unsigned_abs().ge(&self.refresh));
        if !force && !due {
            return;
        }
        state.checked = Some(now);
        match self.scanner.hashes.state().await {
            Ok(store) => {
                state.store_version = store.version;
                // An empty store means nothing can match yet; still compute every exact
                // digest so reports carry them, at the cost of one read. Images are
                // decoded for PDQ only while the lists hold PDQ entries.
                state.needed = if store.algorithms.is_empty() {
                    AlgorithmSet::EXACT
                } else {
                    store.algorithms
                };
            }
            Err(e) => tracing::error!(error = %e, "cannot read the hash store's version"),
        }
        match state.feed.refresh().await {
            Refresh::Loaded(f) => {
                let age_hours = now
                    .as_second()
                    .saturating_sub(f.info().built_at().as_second())
                    .max(0) as f64
                    / 3600.0;
                tracing::info!(
                    entries = f.info().entries,
                    store_version = f.info().store_version,
                    age_hours = (age_hours * 100.0).round() / 100.0,
                    "filter snapshot loaded"
                );
                state.filter = Some(f);
            }
            Refresh::Unchanged => {}
            Refresh::Missing => {
                tracing::warn!("no filter snapshot published: every digest goes to the exact store")
            }
            Refresh::Refused(e) => {
                self.tally.lock().expect("tally lock").filter_refused += 1;
                tracing::error!(error = %e, "filter snapshot REFUSED; keeping the last good one")
            }
            Refresh::Unavailable(e) => {
                tracing::error!(error = %e, "cannot check for a newer filter snapshot")
            }
        }
    }

    /// How often the filter and the store version are checked.
    pub fn refresh_interval(&self) -> Duration {
        self.refresh
    }

    /// Handle one Lambda payload of any supported shape, then report its metrics.
    pub async fn handle(&self, payload: Value) -> Result<Value, PipelineError> {
        let result = self.handle_payload(payload).await;
        if let Some(line) = self.take_metrics().await {
            println!("{line}");
        }
        result
    }

    /// The tally since the last call as an embedded-metric line (Lambda only), reset.
    pub async fn take_metrics(&self) -> Option<String> {
        let function = self.metrics.as_ref()?;
        let tally = std::mem::take(&mut *self.tally.lock().expect("tally lock"));
        let built_at = self
            .state
            .lock()
            .await
            .filter
            .as_ref()
            .map(|f| (f.info().built_at(), f.info().store_version));
        if tally.is_empty() && built_at.is_none() {
            return None;
        }
        Some(tally.emf(function, built_at, (self.clock)()))
    }

    /// Handle one payload without reporting metrics.
    pub async fn handle_payload(&self, payload: Value) -> Result<Value, PipelineError> {
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

    /// Scan one upload (an event's, or an object found by `hashgate backfill`) with the
    /// filter due now; its report.
    pub async fn scan_upload(
        &self,
        event: hashgate_core::event::UploadEvent,
    ) -> Result<ScanReport, PipelineError> {
        self.refresh_filter(false).await;
        Ok(self
            .process(Notice::Upload(event))
            .await?
            .expect("an upload has a report"))
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
        let screen = Screen::for_store(filter.as_deref(), store_version);
        let filter_used = screen.uses_filter();
        let started = std::time::Instant::now();
        let report = self
            .scanner
            .scan(
                &event,
                screen,
                filter.as_deref().map(|f| f.pdq()),
                needed,
                (self.clock)(),
            )
            .await?;
        if let Some(observer) = self.observer.get() {
            observer.scanned(&report, started.elapsed());
        }
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

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicI64, Ordering};

    use hashgate_core::digest::{digest_bytes, Algorithm};
    use hashgate_core::lists::{ListEntry, Provenance};
    use hashgate_core::memory::{etag_of, MemoryCases, MemoryNotifier, MemoryObjects, MemoryStore};
    use hashgate_core::quarantine::Mode;
    use hashgate_core::store::Op;
    use serde_json::json;

    use super::*;

    const BAD: &[u8] = b"content on a list";
    const SEED: [u8; 32] = *b"0123456789abcdefFEDCBA9876543210";

    /// A feed that answers from a script, and counts how often it was asked.
    #[derive(Default)]
    struct ScriptedFeed {
        answers: VecDeque<Refresh>,
        asked: Arc<AtomicI64>,
    }

    impl FilterFeed for ScriptedFeed {
        async fn refresh(&mut self) -> Refresh {
            self.asked.fetch_add(1, Ordering::SeqCst);
            self.answers.pop_front().unwrap_or(Refresh::Unchanged)
        }
    }

    type TestApp = App<MemoryObjects, MemoryStore, MemoryCases, MemoryNotifier, ScriptedFeed>;

    struct Rig {
        app: TestApp,
        now: Arc<AtomicI64>,
        asked: Arc<AtomicI64>,
    }

    fn md5(content: &[u8]) -> Digest {
        digest_bytes(content, AlgorithmSet::ALL)
            .get(Algorithm::Md5)
            .unwrap()
    }

    fn filter(digests: &[Digest], store_version: u64) -> Arc<FilterSnapshot> {
        let mut b = FilterSnapshot::builder(digests.len() as u64, 1e-6, SEED).unwrap();
        for d in digests {
            b.insert(d);
        }
        Arc::new(b.finish(store_version, Timestamp::UNIX_EPOCH).unwrap())
    }

    fn rig(answers: Vec<Refresh>, metrics: Option<&str>) -> Rig {
        let store = MemoryStore::default();
        store
            .apply(
                &[ListEntry {
                    digest: md5(BAD),
                    provenance: Provenance {
                        list: "ncmec".into(),
                        id: None,
                        category: None,
                    },
                }],
                Op::Add,
            )
            .unwrap();
        let now = Arc::new(AtomicI64::new(1_800_000_000));
        let asked = Arc::new(AtomicI64::new(0));
        let clock_now = now.clone();
        let app = App::new(
            Scanner {
                objects: MemoryObjects::default(),
                hashes: store,
                cases: MemoryCases::default(),
                notifier: MemoryNotifier::default(),
                config: ScannerConfig {
                    quarantine_bucket: "quarantine".into(),
                    retention_days: 30,
                    mode: Mode::Move,
                    max_object_bytes: 1 << 20,
                    tag_clean: true,
                    perceptual: Default::default(),
                },
            },
            ScriptedFeed {
                answers: answers.into(),
                asked: asked.clone(),
            },
            Duration::from_secs(60),
            metrics.map(str::to_string),
            Arc::new(move || Timestamp::from_second(clock_now.load(Ordering::SeqCst)).unwrap()),
        );
        Rig { app, now, asked }
    }

    fn s3_event(key: &str, content: &[u8]) -> Value {
        json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "uploads"},
                "object": {"key": key, "size": content.len(), "eTag": etag_of(content)}}}]})
    }

    fn sqs(bodies: &[(&str, String)]) -> Value {
        json!({"Records": bodies.iter().map(|(id, body)| json!({
            "messageId": id, "body": body, "eventSource": "aws:sqs"})).collect::<Vec<_>>()})
    }

    #[tokio::test]
    async fn every_invocation_shape_is_dispatched() {
        let r = rig(vec![], None);
        r.app.scanner.objects.put("uploads", "ok.jpg", b"holiday");
        r.app.scanner.objects.put("uploads", "bad.jpg", BAD);
        // Direct S3 notification.
        let out = r
            .app
            .handle_payload(s3_event("ok.jpg", b"holiday"))
            .await
            .unwrap();
        assert_eq!(out, Value::Null);
        assert_eq!(
            r.app.scanner.objects.get("uploads", "ok.jpg").unwrap().2,
            ["clean"]
        );
        // An SQS batch: the good message is processed, only the malformed one comes back.
        let out = r
            .app
            .handle_payload(sqs(&[
                ("m1", s3_event("bad.jpg", BAD).to_string()),
                ("m2", "{not json".into()),
            ]))
            .await
            .unwrap();
        assert_eq!(
            out,
            json!({"batchItemFailures": [{"itemIdentifier": "m2"}]})
        );
        assert_eq!(
            r.app.scanner.cases.records().len(),
            1,
            "the match became a case"
        );
        assert!(r.app.scanner.objects.get("uploads", "bad.jpg").is_none());
        // Test events and unknown payloads are acknowledged and dropped.
        let test = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "uploads"});
        assert_eq!(r.app.handle_payload(test).await.unwrap(), Value::Null);
        assert_eq!(
            r.app.handle_payload(json!({"hello": 1})).await.unwrap(),
            Value::Null
        );
    }

    #[tokio::test]
    async fn a_failing_message_comes_back_and_its_retry_converges() {
        let r = rig(vec![], None);
        r.app.scanner.objects.put("uploads", "bad.jpg", BAD);
        r.app.scanner.cases.fail_next();
        let batch = sqs(&[("m1", s3_event("bad.jpg", BAD).to_string())]);
        let out = r.app.handle_payload(batch.clone()).await.unwrap();
        assert_eq!(
            out,
            json!({"batchItemFailures": [{"itemIdentifier": "m1"}]})
        );
        assert_eq!(
            r.app.scanner.objects.get("uploads", "bad.jpg").unwrap().1,
            BAD
        );
        let out = r.app.handle_payload(batch).await.unwrap();
        assert_eq!(out, json!({"batchItemFailures": []}));
        assert_eq!(r.app.scanner.cases.records().len(), 1);
    }

    #[tokio::test]
    async fn the_filter_is_refreshed_only_when_due_and_a_refused_one_never_replaces_it() {
        let good = filter(&[md5(BAD)], 1);
        let r = rig(
            vec![
                Refresh::Loaded(good.clone()),
                Refresh::Refused(hashgate_core::filter::FilterError::Build("damaged".into())),
            ],
            None,
        );
        r.app.refresh_filter(true).await;
        assert_eq!(r.asked.load(Ordering::SeqCst), 1);
        r.app.refresh_filter(false).await;
        assert_eq!(r.asked.load(Ordering::SeqCst), 1, "not due yet");
        r.now.fetch_add(59, Ordering::SeqCst);
        r.app.refresh_filter(false).await;
        assert_eq!(
            r.asked.load(Ordering::SeqCst),
            1,
            "59 s later: still not due"
        );
        r.now.fetch_add(1, Ordering::SeqCst);
        r.app.refresh_filter(false).await;
        assert_eq!(
            r.asked.load(Ordering::SeqCst),
            2,
            "60 s: due; the feed refused one"
        );
        let state = r.app.state.lock().await;
        assert!(
            Arc::ptr_eq(state.filter.as_ref().unwrap(), &good),
            "the last good one stays"
        );
        assert_eq!(state.store_version, 1);
        assert_eq!(state.needed, AlgorithmSet::EMPTY.with(Algorithm::Md5));
    }

    #[tokio::test]
    async fn a_stale_filter_is_bypassed_and_a_current_one_screens() {
        // A filter of an older store version that lacks the listed digest: using it would
        // hide the match, so every digest must go to the store.
        let stale = filter(&[], 0);
        let r = rig(vec![Refresh::Loaded(stale)], Some("scanner"));
        r.app.refresh_filter(true).await;
        r.app.scanner.objects.put("uploads", "bad.jpg", BAD);
        r.app
            .handle_payload(s3_event("bad.jpg", BAD))
            .await
            .unwrap();
        assert_eq!(
            r.app.scanner.cases.records().len(),
            1,
            "found through the store"
        );
        let line: Value = serde_json::from_str(&r.app.take_metrics().await.unwrap()).unwrap();
        assert_eq!(line["FilterBypassed"], 1.0);
        assert_eq!(line["Matched"], 1.0);

        let r = rig(
            vec![Refresh::Loaded(filter(&[md5(BAD)], 1))],
            Some("scanner"),
        );
        r.app.refresh_filter(true).await;
        r.app.scanner.objects.put("uploads", "ok.jpg", b"holiday");
        r.app
            .handle_payload(s3_event("ok.jpg", b"holiday"))
            .await
            .unwrap();
        let line: Value = serde_json::from_str(&r.app.take_metrics().await.unwrap()).unwrap();
        assert_eq!(
            (line["FilterBypassed"].clone(), line["Clean"].clone()),
            (json!(0.0), json!(1.0))
        );
    }

    #[tokio::test]
    async fn metrics_are_reported_once_per_invocation_and_only_in_lambda() {
        let r = rig(
            vec![Refresh::Loaded(filter(&[md5(BAD)], 1))],
            Some("stack-scanner"),
        );
        r.app.refresh_filter(true).await;
        r.app.scanner.objects.put("uploads", "ok.jpg", b"holiday");
        r.app
            .handle_payload(s3_event("ok.jpg", b"holiday"))
            .await
            .unwrap();
        let line: Value = serde_json::from_str(&r.app.take_metrics().await.unwrap()).unwrap();
        assert_eq!(line["FunctionName"], "stack-scanner");
        assert_eq!(line["Clean"], 1.0);
        assert!(line["FilterAgeHours"].as_f64().unwrap() > 0.0);
        let again: Value = serde_json::from_str(&r.app.take_metrics().await.unwrap()).unwrap();
        assert_eq!(again["Clean"], 0.0, "the tally was reset");

        let worker = rig(vec![], None);
        worker
            .app
            .scanner
            .objects
            .put("uploads", "ok.jpg", b"holiday");
        worker
            .app
            .handle_payload(s3_event("ok.jpg", b"holiday"))
            .await
            .unwrap();
        assert!(
            worker.app.take_metrics().await.is_none(),
            "no metrics outside Lambda"
        );
    }
}
