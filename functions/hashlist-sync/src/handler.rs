//! One invocation: the lists bucket's "object created" events (an SQS batch, or S3's own
//! notification handed over directly), or the schedule (pulled sources, then a sweep of
//! everything still waiting in `incoming/`). Either way, a filter is published at the end
//! when the store moved.

use hashgate_aws::list_sync::{FileOutcome, ListSync};
use hashgate_core::event::{parse_body, parse_notification, Notice};
use hashgate_sources::SourceConfig;
use serde::Serialize;
use serde_json::{json, Value};

/// What an invocation did, for the log and the caller.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub applied: Vec<String>,
    pub refused: Vec<String>,
    pub gone: Vec<String>,
    pub pulled: Vec<String>,
    pub published_sequence: Option<u64>,
    /// SQS messages to be delivered again (`batchItemFailures`).
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<Value>,
}

impl Summary {
    /// The invocation as an embedded-metric line (`ListsApplied`, `ListsRefused`,
    /// `FiltersPublished`), for CloudWatch in Lambda.
    pub fn emf(&self, function: &str, now_ms: u64) -> String {
        use hashgate_aws::metrics::{emf_line, Metric};
        let count = |name, n: usize| Metric {
            name,
            unit: "Count",
            value: n as f64,
        };
        emf_line(
            "hashgate",
            &[("FunctionName", function)],
            &[
                count("ListsApplied", self.applied.len()),
                count("ListsRefused", self.refused.len()),
                count("ListsPulled", self.pulled.len()),
                count(
                    "FiltersPublished",
                    usize::from(self.published_sequence.is_some()),
                ),
            ],
            now_ms,
        )
    }

    fn record(&mut self, outcome: FileOutcome) {
        match outcome {
            FileOutcome::Applied { key, .. } => self.applied.push(key),
            FileOutcome::Refused(r) => self.refused.push(r.key),
            FileOutcome::Gone { key } => self.gone.push(key),
        }
    }
}

/// The keys one message names (or why it names none), with its SQS message id, if any.
pub type MessageKeys = (Option<String>, Result<Vec<String>, String>);

/// What a payload asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Files named by events, message by message.
    Files(Vec<MessageKeys>),
    /// The schedule.
    Scheduled,
}

/// Read a payload: an SQS batch of S3 notifications, an S3 notification, or a scheduled
/// EventBridge event. Keys of other buckets than `lists_bucket` are left out, logged.
pub fn parse_invocation(payload: &Value, lists_bucket: &str) -> Result<Invocation, String> {
    if payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
        return Ok(Invocation::Scheduled);
    }
    let keys = |notices: Vec<Notice>| -> Vec<String> {
        notices
            .into_iter()
            .filter_map(|n| match n {
                Notice::Upload(u) if u.object.bucket == lists_bucket => Some(u.object.key),
                Notice::Upload(u) => {
                    tracing::warn!(bucket = %u.object.bucket, key = %u.object.key, "an event of another bucket than the lists bucket; ignored");
                    None
                }
                Notice::Test { .. } => None,
                Notice::Ignored { reason } => {
                    tracing::info!(%reason, "event ignored");
                    None
                }
            })
            .collect()
    };
    let records = payload.get("Records").and_then(Value::as_array);
    let from_sqs = records.is_some_and(|r| {
        r.iter()
            .any(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"))
    });
    if from_sqs {
        let files = records
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, r)| {
                let id = r
                    .get("messageId")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let parsed = match r.get("body").and_then(Value::as_str) {
                    Some(body) => parse_body(body).map(keys).map_err(|e| e.to_string()),
                    None => Err(format!("Records[{i}]: no body")),
                };
                (id, parsed)
            })
            .collect();
        return Ok(Invocation::Files(files));
    }
    parse_notification(payload)
        .map(|n| Invocation::Files(vec![(None, Ok(keys(n)))]))
        .map_err(|e| format!("not a lists bucket event, an SQS batch or the schedule: {e}"))
}

/// Runs invocations.
pub struct Handler {
    pub sync: ListSync,
    pub sources: Vec<SourceConfig>,
}

impl Handler {
    /// Handle one payload. `Err` only for a payload that is none of the known shapes, or a
    /// direct (non-SQS) event whose file could not be handled (so the caller retries it).
    pub async fn handle(&self, payload: &Value) -> Result<Summary, String> {
        let mut summary = Summary::default();
        match parse_invocation(payload, &self.sync.bucket)? {
            Invocation::Scheduled => {
                for (name, result) in crate::pull::pull_all(&self.sync, &self.sources).await {
                    if let Ok(crate::pull::PullOutcome::Queued(key)) = result {
                        summary.pulled.push(format!("{name}: {key}"));
                    }
                }
                for outcome in self.sync.sweep().await? {
                    summary.record(outcome);
                }
            }
            Invocation::Files(files) => {
                for (message, parsed) in files {
                    let mut ok = true;
                    match parsed {
                        Ok(keys) => {
                            for key in keys {
                                match self.sync.process(&key).await {
                                    Ok(o) => summary.record(o),
                                    Err(e) => {
                                        tracing::error!(key, error = %e, "list file not handled; it will be retried");
                                        ok = false;
                                    }
                                }
                            }
                        }
                        Err(e) => {
                            // A message that is not an event will never become one: drop it.
                            tracing::error!(message = ?message, error = %e, "malformed message");
                        }
                    }
                    if !ok {
                        match message {
                            Some(id) => summary
                                .batch_item_failures
                                .push(json!({ "itemIdentifier": id })),
                            None => return Err("a list file could not be handled".into()),
                        }
                    }
                }
            }
        }
        match self
            .sync
            .publish_if_due(hashgate_local::filter_file::random_seed().map_err(|e| e.to_string())?)
            .await
        {
            Ok(m) => summary.published_sequence = m.map(|m| m.sequence),
            // The imports stand (the store is the authority); the next run publishes.
            Err(e) => tracing::error!(error = %e, "cannot publish the filter; the next run will"),
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3_event(bucket: &str, key: &str) -> Value {
        json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "eventTime": "2026-12-01T10:00:00.000Z",
            "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 10, "eTag": "e"}}
        }]})
    }

    #[test]
    fn payload_shapes() {
        let scheduled =
            json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        assert_eq!(
            parse_invocation(&scheduled, "lists"),
            Ok(Invocation::Scheduled)
        );
        let direct = parse_invocation(&s3_event("lists", "incoming/a/x+y.txt"), "lists").unwrap();
        assert_eq!(
            direct,
            Invocation::Files(vec![(None, Ok(vec!["incoming/a/x y.txt".to_string()]))])
        );
        let batch = json!({"Records": [
            {"eventSource": "aws:sqs", "messageId": "m1", "body": s3_event("lists", "incoming/a/1.txt").to_string()},
            {"eventSource": "aws:sqs", "messageId": "m2", "body": s3_event("other", "incoming/a/2.txt").to_string()},
            {"eventSource": "aws:sqs", "messageId": "m3", "body": "not json"},
        ]});
        let Invocation::Files(files) = parse_invocation(&batch, "lists").unwrap() else {
            panic!("files")
        };
        assert_eq!(
            files[0],
            (Some("m1".into()), Ok(vec!["incoming/a/1.txt".into()]))
        );
        assert_eq!(files[1], (Some("m2".into()), Ok(vec![])));
        assert!(files[2].1.is_err());
        assert!(parse_invocation(&json!({"hello": 1}), "lists").is_err());
    }

    #[test]
    fn the_metric_line_counts_what_happened() {
        let summary = Summary {
            applied: vec!["a".into(), "b".into()],
            refused: vec!["c".into()],
            published_sequence: Some(4),
            ..Summary::default()
        };
        let v: Value = serde_json::from_str(&summary.emf("stack-sync", 1)).unwrap();
        assert_eq!(v["ListsApplied"], 2.0);
        assert_eq!(v["ListsRefused"], 1.0);
        assert_eq!(v["FiltersPublished"], 1.0);
        assert_eq!(v["FunctionName"], "stack-sync");
    }
}
