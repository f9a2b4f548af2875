//! One invocation: a "Report Ready" event from EventBridge, and the sending of the package
//! it names.
//!
//! - An event that is not one (another source or detail type, a detail that does not
//!   parse) or names a package outside the configured reports bucket is logged and left
//!   alone: [`Handled::Ignored`], `Ok` (a retry would not make it one).
//! - A package whose sending is done (finished, retracted, or stopped with NCMEC's reason)
//!   is left as it is: [`Handled::AlreadyDone`]; one sent to its end now:
//!   [`Handled::Sent`], whatever the end. Nothing is left to retry, so both are `Ok`.
//! - Anything else (NCMEC or the bucket could not be reached, no credentials, the package
//!   or its evidence not readable) is an `Err`, so Lambda retries the event; the persisted
//!   state makes the retry resume where this run stopped, and never submit twice.

use hashgate_aws::reports::{case_prefix, send_status, S3Reports, EVENT_DETAIL_TYPE, EVENT_SOURCE};
use hashgate_core::followup::ReportReady;
use hashgate_core::sender::SendState;
use hashgate_cybertip::CyberTipline;
use serde::Deserialize;
use serde_json::Value;

use crate::config::Config;
use crate::send::{self, SendFailure};

/// What an invocation did.
#[derive(Debug)]
pub enum Handled {
    /// Not a Report Ready event of this deployment's reports bucket: why.
    Ignored(String),
    /// The package's sending was done already; nothing was asked of NCMEC.
    AlreadyDone(SendState),
    /// The package was sent (or went on being sent) to its end: finished, or retracted or
    /// stopped with NCMEC's reason.
    Sent(SendState),
}

/// The EventBridge envelope, as much of it as is read.
#[derive(Deserialize)]
struct Envelope {
    source: Option<String>,
    #[serde(rename = "detail-type")]
    detail_type: Option<String>,
    detail: Option<Value>,
}

/// The case whose package `event` announces, or why the event is not for this sender.
pub fn parse_event(event: &Value, reports_bucket: &str) -> Result<ReportReady, String> {
    let envelope: Envelope = serde_json::from_value(event.clone())
        .map_err(|e| format!("not an EventBridge event: {e}"))?;
    if envelope.source.as_deref() != Some(EVENT_SOURCE)
        || envelope.detail_type.as_deref() != Some(EVENT_DETAIL_TYPE)
    {
        return Err(format!(
            "source {:?} and detail-type {:?}, not {EVENT_SOURCE:?} and {EVENT_DETAIL_TYPE:?}",
            envelope.source.as_deref().unwrap_or("(none)"),
            envelope.detail_type.as_deref().unwrap_or("(none)"),
        ));
    }
    let ready: ReportReady = serde_json::from_value(envelope.detail.unwrap_or(Value::Null))
        .map_err(|e| format!("its detail is not a Report Ready: {e}"))?;
    if ready.bucket != reports_bucket {
        return Err(format!(
            "it names the bucket {:?}, not the reports bucket {reports_bucket:?}",
            ready.bucket
        ));
    }
    let prefix = case_prefix(&ready.case_id)?;
    if ready.prefix != prefix {
        return Err(format!(
            "it names the prefix {:?}, not {prefix:?} of case {}",
            ready.prefix, ready.case_id
        ));
    }
    Ok(ready)
}

/// The sender: the reports bucket and how to reach NCMEC.
pub struct Handler {
    config: Config,
    sdk: aws_config::SdkConfig,
    reports: S3Reports,
}

impl Handler {
    /// The sender of `config`, with clients of `sdk`.
    pub fn new(config: Config, sdk: aws_config::SdkConfig) -> Handler {
        // Reads and writes packages only: announces nothing.
        let reports = S3Reports::connect(&sdk, config.reports_bucket.clone(), None);
        Handler {
            config,
            sdk,
            reports,
        }
    }

    /// The CyberTipline client, with the credentials read now (a rotated secret is used
    /// from the next invocation on).
    async fn api(&self) -> Result<CyberTipline, SendFailure> {
        send::connect_api(
            &self.sdk,
            self.config.credentials.clone(),
            &self.config.endpoint,
        )
        .await
    }

    /// Handles one event (see the module's documentation).
    pub async fn handle(&self, event: Value) -> Result<Handled, SendFailure> {
        let ready = match parse_event(&event, &self.config.reports_bucket) {
            Ok(ready) => ready,
            Err(why) => {
                tracing::warn!(reason = %why, "event ignored");
                return Ok(Handled::Ignored(why));
            }
        };
        let case_id = ready.case_id.as_str();
        let prepared = send::prepare(&self.reports, case_id).await?;
        if prepared.is_done() {
            let status = prepared.status();
            tracing::info!(case_id, %status, "nothing to send");
            return Ok(Handled::AlreadyDone(prepared.state().clone()));
        }
        let api = self.api().await?;
        tracing::info!(
            case_id,
            endpoint = api.endpoint(),
            status = %prepared.status(),
            "sending the report"
        );
        match prepared.send(&self.reports, &api).await {
            Ok(state) => {
                let status = send_status(Some(&state));
                if state.finished && state.stopped.is_none() {
                    tracing::info!(case_id, %status, "report sent");
                } else {
                    tracing::error!(case_id, %status, "report not sent: NCMEC's reason is in send-state.json");
                }
                Ok(Handled::Sent(state))
            }
            Err(e) => {
                tracing::error!(case_id, error = %DisplayChain(&e), "the sending stopped; a retry resumes it");
                Err(e)
            }
        }
    }
}

/// An error and its sources, `: `-separated.
pub struct DisplayChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(source: &str, detail_type: &str, bucket: &str, prefix: &str) -> Value {
        json!({
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": detail_type,
            "source": source,
            "account": "111122223333",
            "time": "2026-12-01T12:00:00Z",
            "region": "eu-west-1",
            "resources": [],
            "detail": {
                "case_id": "case-0123abcd",
                "bucket": bucket,
                "prefix": prefix,
                "classification": "A1",
                "file_viewed_by_esp": false,
                "built_at": "2026-12-01T11:59:00Z"
            }
        })
    }

    #[test]
    fn a_report_ready_event_of_the_bucket_names_its_case() {
        let e = event(
            "hashgate",
            "Report Ready",
            "reports",
            "reports/case-0123abcd/",
        );
        let ready = parse_event(&e, "reports").unwrap();
        assert_eq!(ready.case_id, "case-0123abcd");
    }

    #[test]
    fn other_events_and_other_buckets_are_refused_with_the_reason() {
        let ok = (
            "hashgate",
            "Report Ready",
            "reports",
            "reports/case-0123abcd/",
        );
        for (e, want) in [
            (
                event("aws.s3", ok.1, ok.2, ok.3),
                "source \"aws.s3\" and detail-type \"Report Ready\"",
            ),
            (event(ok.0, "Case Opened", ok.2, ok.3), "\"Case Opened\""),
            (event(ok.0, ok.1, "elsewhere", ok.3), "\"elsewhere\""),
            (
                event(ok.0, ok.1, ok.2, "reports/case-other/"),
                "\"reports/case-other/\"",
            ),
            (
                json!({"source": "hashgate", "detail-type": "Report Ready"}),
                "not a Report Ready",
            ),
            (json!([1, 2]), "not an EventBridge event"),
            (json!({"Records": []}), "(none)"),
        ] {
            let why = parse_event(&e, "reports").unwrap_err();
            assert!(why.contains(want), "{e}: {why}");
        }
        let mut bad_case = event(ok.0, ok.1, ok.2, ok.3);
        bad_case["detail"]["case_id"] = json!("../x");
        assert!(parse_event(&bad_case, "reports")
            .unwrap_err()
            .contains("not a case id"));
    }
}
