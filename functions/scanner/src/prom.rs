//! A self-hosted worker's Prometheus metrics, served at `GET /metrics` beside the webhook
//! (with its token). In Lambda the same facts go to CloudWatch instead (`metrics`).
//!
//! - `hashgate_events_received_total{result}`: webhook bodies by answer (`accepted`,
//!   `ignored`: nothing to scan, `refused`: unparsable, `unauthorized`, `unavailable`,
//!   `error`);
//! - `hashgate_scans_total{status}`: outcomes by the result tag's value (`clean`, `match`,
//!   `unscanned-…`, `gone`, `superseded`, …);
//! - `hashgate_scan_seconds`: how long each scan took, reading and acting included;
//! - `hashgate_bytes_read_total`;
//! - `hashgate_queue_pending`, `hashgate_queue_oldest_seconds`, `hashgate_dead_letters`:
//!   the spool's depth, its lag, and what was given up on;
//! - `hashgate_filter_store_version`, `hashgate_filter_age_seconds`: the filter in use.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use hashgate_core::pipeline::ScanReport;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

pub struct WorkerMetrics {
    registry: Registry,
    received: Family<ResultLabel, Counter>,
    scans: Family<StatusLabel, Counter>,
    scan_seconds: Histogram,
    bytes_read: Counter,
    pending: Gauge,
    oldest_seconds: Gauge<f64, AtomicU64>,
    dead_letters: Gauge,
    filter_store_version: Gauge,
    filter_age_seconds: Gauge<f64, AtomicU64>,
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkerMetrics {
    pub fn new() -> WorkerMetrics {
        let m = WorkerMetrics {
            registry: Registry::with_prefix("hashgate"),
            received: Family::default(),
            scans: Family::default(),
            // 1 ms to about 65 s.
            scan_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            bytes_read: Counter::default(),
            pending: Gauge::default(),
            oldest_seconds: Gauge::default(),
            dead_letters: Gauge::default(),
            filter_store_version: Gauge::default(),
            filter_age_seconds: Gauge::default(),
        };
        let mut registry = Registry::with_prefix("hashgate");
        registry.register(
            "events_received",
            "Notification bodies received, by answer",
            m.received.clone(),
        );
        registry.register("scans", "Uploads handled, by outcome", m.scans.clone());
        registry.register(
            "scan_seconds",
            "Time to scan and act on one upload",
            m.scan_seconds.clone(),
        );
        registry.register(
            "bytes_read",
            "Object bytes read to compute digests",
            m.bytes_read.clone(),
        );
        registry.register(
            "queue_pending",
            "Accepted events waiting in the spool",
            m.pending.clone(),
        );
        registry.register(
            "queue_oldest_seconds",
            "Age of the oldest event waiting in the spool",
            m.oldest_seconds.clone(),
        );
        registry.register(
            "dead_letters",
            "Events given up on after their last attempt (in the spool's dead/)",
            m.dead_letters.clone(),
        );
        registry.register(
            "filter_store_version",
            "Store version the filter in use was built from (0: none)",
            m.filter_store_version.clone(),
        );
        registry.register(
            "filter_age_seconds",
            "Age of the filter in use",
            m.filter_age_seconds.clone(),
        );
        // The metrics share their values with their registered clones.
        WorkerMetrics { registry, ..m }
    }

    pub fn received(&self, result: &str) {
        self.received
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
    }

    pub fn scanned(&self, report: &ScanReport, took: Duration) {
        self.scans
            .get_or_create(&StatusLabel {
                status: report.status.tag_value().to_string(),
            })
            .inc();
        self.scan_seconds.observe(took.as_secs_f64());
        self.bytes_read.inc_by(report.bytes_read);
    }

    pub fn queue(&self, pending: usize, oldest: Duration, dead: usize) {
        self.pending.set(pending as i64);
        self.oldest_seconds.set(oldest.as_secs_f64());
        self.dead_letters.set(dead as i64);
    }

    pub fn filter(&self, store_version: u64, age: Duration) {
        self.filter_store_version.set(store_version as i64);
        self.filter_age_seconds.set(age.as_secs_f64());
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashgate_core::pipeline::ScanStatus;

    fn report(status: ScanStatus, bytes_read: u64) -> ScanReport {
        ScanReport {
            bucket: "b".into(),
            key: "k".into(),
            version_id: None,
            status,
            fast_path: false,
            bytes_read,
            size: None,
            digests: Vec::new(),
            matches: Vec::new(),
            filter_false_positives: 0,
            image: None,
        }
    }

    #[test]
    fn what_is_observed_is_rendered() {
        let m = WorkerMetrics::new();
        m.received("accepted");
        m.received("accepted");
        m.received("unauthorized");
        m.scanned(&report(ScanStatus::Clean, 1000), Duration::from_millis(3));
        m.scanned(&report(ScanStatus::Clean, 24), Duration::from_millis(5));
        m.scanned(
            &report(ScanStatus::TooLarge { size: 9, max: 1 }, 0),
            Duration::from_millis(1),
        );
        m.queue(7, Duration::from_secs(12), 1);
        m.filter(42, Duration::from_secs(90));
        let text = m.render();
        for line in [
            "hashgate_events_received_total{result=\"accepted\"} 2",
            "hashgate_events_received_total{result=\"unauthorized\"} 1",
            "hashgate_scans_total{status=\"clean\"} 2",
            "hashgate_scans_total{status=\"unscanned-too-large\"} 1",
            "hashgate_scan_seconds_count 3",
            "hashgate_bytes_read_total 1024",
            "hashgate_queue_pending 7",
            "hashgate_queue_oldest_seconds 12.0",
            "hashgate_dead_letters 1",
            "hashgate_filter_store_version 42",
            "hashgate_filter_age_seconds 90.0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
