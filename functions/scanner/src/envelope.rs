//! The Lambda envelopes the scanner is invoked with, and its answer to an SQS batch: the
//! function's business, not the core's, which only reads the notification documents inside
//! (`hashgate_core::event`).
//!
//! - S3 notifications or an EventBridge event handed to the function directly;
//! - an SQS batch (`{"Records":[{"eventSource":"aws:sqs","messageId":…,"body":"<notification
//!   JSON>"}]}`), each message parsed on its own, so one malformed message fails alone and
//!   only it comes back (`ReportBatchItemFailures`).

use hashgate_core::event::{parse_body, parse_notification, EventError, Notice};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One SQS message of a batch, and what its body meant.
#[derive(Debug)]
pub struct SqsMessage {
    pub message_id: String,
    pub notices: Result<Vec<Notice>, EventError>,
}

/// A scanner invocation, by shape.
#[derive(Debug)]
pub enum Invocation {
    /// S3 notifications or an EventBridge event handed to the function directly.
    Direct(Vec<Notice>),
    /// An SQS batch: answer with [`BatchResponse`] so only failed messages come back.
    Sqs(Vec<SqsMessage>),
}

/// The SQS partial-batch response (`ReportBatchItemFailures`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<BatchItemFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

impl BatchResponse {
    pub fn fail(&mut self, message_id: impl Into<String>) {
        self.batch_item_failures.push(BatchItemFailure {
            item_identifier: message_id.into(),
        });
    }
}

/// Classify a Lambda payload by shape and parse it. An SQS batch never fails as a whole:
/// each message carries its own result.
pub fn parse_invocation(payload: &Value) -> Result<Invocation, EventError> {
    let records = payload.get("Records").and_then(Value::as_array);
    let is_sqs = records.is_some_and(|r| {
        r.first()
            .and_then(|r| r.get("eventSource"))
            .and_then(Value::as_str)
            == Some("aws:sqs")
    });
    let Some(records) = records.filter(|_| is_sqs) else {
        return parse_notification(payload).map(Invocation::Direct);
    };
    let messages = records
        .iter()
        .enumerate()
        .map(|(i, record)| {
            let message_id = record
                .get("messageId")
                .and_then(Value::as_str)
                .map(str::to_string);
            let Some(message_id) = message_id else {
                // Without an id the message cannot be reported as failed on its own; the
                // caller fails the batch, and SQS redelivers it.
                return SqsMessage {
                    message_id: String::new(),
                    notices: Err(EventError::new(
                        format!("Records[{i}]"),
                        "SQS record without messageId",
                    )),
                };
            };
            let notices = match record.get("body").and_then(Value::as_str) {
                None => Err(EventError::new(
                    format!("message {message_id}"),
                    "SQS record without a string body",
                )),
                Some(body) => parse_body(body).map_err(|e| EventError {
                    place: format!("message {message_id}: {}", e.place),
                    reason: e.reason,
                }),
            };
            SqsMessage {
                message_id,
                notices,
            }
        })
        .collect();
    Ok(Invocation::Sqs(messages))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashgate_core::event::{Trigger, UploadEvent};
    use serde_json::json;

    fn s3_put(key: &str) -> Value {
        json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-11-21T10:00:00.000Z", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "uploads"},
                "object": {"key": key, "size": 1024, "eTag": "0123456789abcdef0123456789abcdef",
                    "versionId": "v1"}}
        }]})
    }

    fn upload(n: &Notice) -> &UploadEvent {
        match n {
            Notice::Upload(u) => u,
            other => panic!("expected an upload, got {other:?}"),
        }
    }

    #[test]
    fn direct_notifications_and_eventbridge_events_are_one_invocation() {
        let Invocation::Direct(n) = parse_invocation(&s3_put("a%20b")).unwrap() else {
            panic!("direct")
        };
        assert_eq!(upload(&n[0]).object.key, "a b");
        let eb = json!({"detail-type": "Object Created", "source": "aws.s3",
            "detail": {"bucket": {"name": "b"}, "object": {"key": "k"}}});
        let Invocation::Direct(n) = parse_invocation(&eb).unwrap() else {
            panic!("direct")
        };
        assert_eq!(upload(&n[0]).trigger, Trigger::EventBridge);
        assert!(parse_invocation(&json!({"hello": 1})).is_err());
    }

    #[test]
    fn a_record_without_message_id_fails_alone() {
        let v = json!({"Records": [
            {"messageId": "m1", "body": s3_put("k").to_string(), "eventSource": "aws:sqs"},
            {"body": "{}", "eventSource": "aws:sqs"},
            {"messageId": "m3", "eventSource": "aws:sqs"}
        ]});
        let Invocation::Sqs(messages) = parse_invocation(&v).unwrap() else {
            panic!("sqs")
        };
        assert!(messages[0].notices.is_ok());
        let e = messages[1].notices.as_ref().unwrap_err();
        assert_eq!(e.to_string(), "Records[1]: SQS record without messageId");
        let e = messages[2].notices.as_ref().unwrap_err();
        assert_eq!(
            e.to_string(),
            "message m3: SQS record without a string body"
        );
    }

    #[test]
    fn sqs_batch_isolates_malformed_messages() {
        let good = s3_put("ok.jpg").to_string();
        let eb = json!({"detail-type": "Object Created", "source": "aws.s3",
            "detail": {"bucket": {"name": "b"}, "object": {"key": "k"}}})
        .to_string();
        let v = json!({"Records": [
            {"messageId": "m1", "receiptHandle": "h", "body": good, "eventSource": "aws:sqs"},
            {"messageId": "m2", "body": "{not json", "eventSource": "aws:sqs"},
            {"messageId": "m3", "body": "{\"Records\":[{\"eventName\":\"ObjectCreated:Put\",\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{}}}]}", "eventSource": "aws:sqs"},
            {"messageId": "m4", "body": eb, "eventSource": "aws:sqs"},
            {"messageId": "m5", "body": "{\"Records\":[{\"eventName\":\"ObjectCreated:Put\",\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"bad%zz\"}}}]}", "eventSource": "aws:sqs"}
        ]});
        let Invocation::Sqs(messages) = parse_invocation(&v).unwrap() else {
            panic!("sqs")
        };
        assert_eq!(messages.len(), 5);
        assert_eq!(
            upload(&messages[0].notices.as_ref().unwrap()[0]).object.key,
            "ok.jpg"
        );
        let e2 = messages[1].notices.as_ref().unwrap_err();
        assert!(
            e2.to_string().starts_with("message m2: body: not JSON"),
            "{e2}"
        );
        let e3 = messages[2].notices.as_ref().unwrap_err();
        assert_eq!(
            e3.to_string(),
            "message m3: Records[0].s3.object.key: missing"
        );
        assert_eq!(
            upload(&messages[3].notices.as_ref().unwrap()[0]).trigger,
            Trigger::EventBridge
        );
        let e5 = messages[4].notices.as_ref().unwrap_err();
        assert!(e5.reason.contains("bad percent-escape"), "{e5}");

        let mut response = BatchResponse::default();
        for m in &messages {
            if m.notices.is_err() {
                response.fail(&m.message_id);
            }
        }
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}, {"itemIdentifier": "m5"}]})
        );
    }
}
