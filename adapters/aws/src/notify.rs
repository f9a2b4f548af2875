//! The review queue (SQS) and the case event (EventBridge) behind the core's [`Notifier`].

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use hashgate_core::case::CaseRecord;
use hashgate_core::case::CaseStatus;
use hashgate_core::pipeline::{Notifier, StorageError};
use hashgate_core::time::Timestamp;
use serde::Serialize;

/// What the review queue and the event bus carry: enough to find the case, never content.
#[derive(Serialize)]
struct CaseNotice<'a> {
    case_id: &'a str,
    status: CaseStatus,
    bucket: &'a str,
    key: &'a str,
    version_id: Option<&'a str>,
    quarantine: Option<String>,
    lists: Vec<&'a str>,
    created_at: Timestamp,
}

fn notice(record: &CaseRecord) -> CaseNotice<'_> {
    let mut lists: Vec<&str> = record.matches.iter().map(|m| m.list.as_str()).collect();
    lists.dedup();
    CaseNotice {
        case_id: &record.case_id,
        status: record.status,
        bucket: &record.object.bucket,
        key: &record.object.key,
        version_id: record.object.version_id.as_deref(),
        quarantine: record
            .quarantine
            .as_ref()
            .map(|q| format!("s3://{}/{}", q.bucket, q.key)),
        lists,
        created_at: record.created_at,
    }
}

/// EventBridge source and detail type of case events.
pub const EVENT_SOURCE: &str = "hashgate";
pub const EVENT_DETAIL_TYPE: &str = "Case Opened";

/// Sends each case to the review queue and publishes it on an event bus.
#[derive(Clone, Debug)]
pub struct QueueAndBus {
    pub sqs: aws_sdk_sqs::Client,
    pub review_queue_url: String,
    pub events: aws_sdk_eventbridge::Client,
    /// `None` disables the event (for stores without an event bus).
    pub event_bus: Option<String>,
}

impl Notifier for QueueAndBus {
    async fn announce(&self, record: &CaseRecord) -> Result<(), StorageError> {
        let body = serde_json::to_string(&notice(record)).map_err(|e| StorageError {
            operation: "SendMessage",
            target: record.case_id.clone(),
            message: e.to_string(),
        })?;
        self.sqs
            .send_message()
            .queue_url(&self.review_queue_url)
            .message_body(&body)
            .send()
            .await
            .map_err(|e| StorageError {
                operation: "SendMessage",
                target: self.review_queue_url.clone(),
                message: format!("{e:?}"),
            })?;
        match &self.event_bus {
            Some(bus) => put_event(&self.events, bus, EVENT_DETAIL_TYPE, body).await,
            None => Ok(()),
        }
    }
}

/// Publish one event of hashgate's (source [`EVENT_SOURCE`]) on `bus`: "Case Opened" here,
/// "Report Ready" for report packages. An entry the bus rejects is an error, with its
/// reason.
pub(crate) async fn put_event(
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    detail_type: &str,
    detail: String,
) -> Result<(), StorageError> {
    let out = events
        .put_events()
        .entries(
            PutEventsRequestEntry::builder()
                .event_bus_name(bus)
                .source(EVENT_SOURCE)
                .detail_type(detail_type)
                .detail(detail)
                .build(),
        )
        .send()
        .await
        .map_err(|e| StorageError {
            operation: "PutEvents",
            target: bus.to_string(),
            message: format!("{e:?}"),
        })?;
    if out.failed_entry_count() > 0 {
        let why = out
            .entries()
            .iter()
            .filter_map(|e| e.error_message())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(StorageError {
            operation: "PutEvents",
            target: bus.to_string(),
            message: format!("event rejected: {why}"),
        });
    }
    Ok(())
}
