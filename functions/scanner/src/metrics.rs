//! What the scanner reports to CloudWatch after each invocation: uploads by result, how many
//! were decided without reading the body, and the age of the filter snapshot in use (the
//! template's dashboard and FilterAgeAlarm read these).

use hashgate_aws::metrics::{emf_line, Metric};
use hashgate_core::pipeline::{ScanReport, ScanStatus};
use hashgate_core::time::Timestamp;

/// The namespace of the template's alarms and dashboard.
pub const NAMESPACE: &str = "hashgate";

/// Counts over one invocation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    pub clean: u64,
    pub matched: u64,
    /// Too large, unreadable, or an image that could not be decoded: explicitly not scanned.
    pub unscanned: u64,
    /// Decided from S3-verified digests, without reading the body.
    pub fast_path: u64,
    pub bytes_read: u64,
    /// Scans that asked the exact store about every digest (no usable filter).
    pub filter_bypassed: u64,
    /// Filters refused (bad signature, replay, altered snapshot...) since the last report.
    pub filter_refused: u64,
}

impl Tally {
    pub fn add(&mut self, report: &ScanReport, filter_used: bool) {
        match report.status {
            ScanStatus::Clean => self.clean += 1,
            ScanStatus::Matched { .. } => self.matched += 1,
            ScanStatus::TooLarge { .. }
            | ScanStatus::Unreadable { .. }
            | ScanStatus::Undecodable { .. } => self.unscanned += 1,
            // Released content restored by reviewers is neither a new match nor clean.
            ScanStatus::Superseded
            | ScanStatus::Gone
            | ScanStatus::OwnQuarantine
            | ScanStatus::Released { .. } => {}
        }
        self.fast_path += u64::from(report.fast_path);
        self.bytes_read += report.bytes_read;
        self.filter_bypassed += u64::from(!filter_used);
    }

    pub fn is_empty(&self) -> bool {
        *self == Tally::default()
    }

    /// The EMF line for this tally; `filter` is the build time of the filter snapshot in use
    /// and the store version it covers, if there is one.
    pub fn emf(&self, function: &str, filter: Option<(Timestamp, u64)>, now: Timestamp) -> String {
        let count = |name, value: u64| Metric {
            name,
            unit: "Count",
            value: value as f64,
        };
        let mut metrics = vec![
            count("Clean", self.clean),
            count("Matched", self.matched),
            count("Unscanned", self.unscanned),
            count("FastPath", self.fast_path),
            count("FilterBypassed", self.filter_bypassed),
            count("FilterRefused", self.filter_refused),
            Metric {
                name: "BytesRead",
                unit: "Bytes",
                value: self.bytes_read as f64,
            },
        ];
        if let Some((built, version)) = filter {
            let age = now.as_second().saturating_sub(built.as_second()).max(0) as f64 / 3600.0;
            metrics.push(Metric {
                name: "FilterAgeHours",
                unit: "None",
                value: (age * 100.0).round() / 100.0,
            });
            metrics.push(Metric {
                name: "FilterStoreVersion",
                unit: "None",
                value: version as f64,
            });
        }
        emf_line(
            NAMESPACE,
            &[("FunctionName", function)],
            &metrics,
            u64::try_from(now.as_millisecond()).unwrap_or(0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(status: ScanStatus, fast_path: bool, bytes_read: u64) -> ScanReport {
        ScanReport {
            bucket: "b".into(),
            key: "k".into(),
            version_id: None,
            status,
            fast_path,
            bytes_read,
            size: Some(bytes_read),
            digests: vec![],
            matches: vec![],
            filter_false_positives: 0,
            image: None,
        }
    }

    #[test]
    fn counts_results_and_reports_the_filter_age() {
        let mut tally = Tally::default();
        assert!(tally.is_empty());
        tally.add(&report(ScanStatus::Clean, true, 0), true);
        tally.add(&report(ScanStatus::Clean, false, 100), false);
        tally.add(
            &report(ScanStatus::TooLarge { size: 10, max: 1 }, false, 0),
            true,
        );
        tally.add(&report(ScanStatus::Gone, false, 0), true);
        assert_eq!(
            tally,
            Tally {
                clean: 2,
                matched: 0,
                unscanned: 1,
                fast_path: 1,
                bytes_read: 100,
                filter_bypassed: 1,
                filter_refused: 0,
            }
        );
        let now = Timestamp::from_second(1_000_000 + 9_000).unwrap();
        let built = Timestamp::from_second(1_000_000).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&tally.emf("stack-scanner", Some((built, 42)), now)).unwrap();
        assert_eq!(v["FunctionName"], "stack-scanner");
        assert_eq!(v["Clean"], 2.0);
        assert_eq!(v["Unscanned"], 1.0);
        assert_eq!(v["FastPath"], 1.0);
        assert_eq!(v["FilterAgeHours"], 2.5);
        assert_eq!(v["FilterStoreVersion"], 42.0);
        assert_eq!(v["FilterRefused"], 0.0);
        let without: serde_json::Value = serde_json::from_str(&tally.emf("f", None, now)).unwrap();
        assert!(without.get("FilterAgeHours").is_none());
    }
}
