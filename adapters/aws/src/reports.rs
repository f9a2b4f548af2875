//! The reports bucket (S3, versioned, Object Lock in compliance mode) behind the core's
//! [`ReportOutbox`], and what the sender and the CLI read and write there.
//!
//! One case's package is under `reports/<case_id>/`:
//!
//! - `report.xml`: the `<report>` document;
//! - `manifest.json`: the [`Manifest`], pretty JSON;
//! - `package.json`: the whole [`PackageFiles`], what the sender rebuilds its
//!   `sender::Package` from. Written last and only if absent (`If-None-Match: *`), so its
//!   presence means the package is whole, and the first package written is the one kept;
//! - `send-state.json`: the sender's [`SendState`], a new version at every step;
//! - `responses/<NNNN>-<step>.xml`: every answer NCMEC gave, numbered in order.
//!
//! "Report Ready" is published on the stack's event bus (source `hashgate`), its detail the
//! [`ReportReady`] JSON, as [`crate::notify`] publishes "Case Opened".

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectLockLegalHoldStatus};
use hashgate_core::case::QuarantineLocation;
use hashgate_core::digest::{digest_bytes, Algorithm, AlgorithmSet};
use hashgate_core::followup::{PackageFiles, PackageLocation, ReportOutbox, ReportReady};
use hashgate_core::pipeline::StorageError;
use hashgate_core::report::Manifest;
use hashgate_core::sender::SendState;
use serde::Serialize;

use crate::s3::storage_error as error;

/// Where the packages are in the reports bucket.
pub const PREFIX: &str = "reports/";
/// The files of a package, under its prefix.
pub const REPORT_XML: &str = "report.xml";
pub const MANIFEST_JSON: &str = "manifest.json";
pub const PACKAGE_JSON: &str = "package.json";
pub const SEND_STATE_JSON: &str = "send-state.json";
pub const RESPONSES: &str = "responses/";
/// EventBridge source and detail type of the package event.
pub const EVENT_SOURCE: &str = crate::notify::EVENT_SOURCE;
pub const EVENT_DETAIL_TYPE: &str = "Report Ready";
/// The most packages one listing request returns.
pub const MAX_PAGE: i32 = 1000;
/// The largest document of a package read back (package.json holds the report and the
/// file details' input: kilobytes).
const MAX_DOCUMENT_BYTES: i64 = 16 << 20;

/// The prefix of a case's package; refuses ids that would leave it (`/`, `..`, control
/// characters) or are empty.
pub fn case_prefix(case_id: &str) -> Result<String, String> {
    if case_id.is_empty()
        || case_id.len() > 200
        || case_id == "."
        || case_id == ".."
        || case_id
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
    {
        return Err(format!("{case_id:?} is not a case id"));
    }
    Ok(format!("{PREFIX}{case_id}/"))
}

/// `responses/<NNNN>-<step>.xml` of a case: the number zero-padded to four digits (more
/// once past 9999), the step reduced to letters, digits and `-`.
pub fn response_key(prefix: &str, number: u32, step: &str) -> String {
    let step: String = step
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let step = if step.is_empty() { "answer" } else { &step };
    format!("{prefix}{RESPONSES}{number:04}-{step}.xml")
}

/// The number of a response's key, if it is one.
pub fn response_number(key: &str) -> Option<u32> {
    let name = key.rsplit('/').next()?;
    let (number, rest) = name.split_once('-')?;
    if !rest.ends_with(".xml") || number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    number.parse().ok()
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    digest_bytes(bytes, AlgorithmSet::EMPTY.with(Algorithm::Sha256))
        .get(Algorithm::Sha256)
        .map(|d| d.to_hex())
        .unwrap_or_default()
}

/// Whether `files` holds together: its case, its manifest's case, and the manifest's
/// SHA-256 of the report it carries.
pub fn check_package(files: &PackageFiles) -> Result<(), String> {
    if files.manifest.case_id != files.case_id {
        return Err(format!(
            "the manifest is of case {}, the package of case {}",
            files.manifest.case_id, files.case_id
        ));
    }
    let sha = sha256_hex(files.report_xml.as_bytes());
    if !sha.eq_ignore_ascii_case(&files.manifest.report_sha256) {
        return Err(format!(
            "the report's SHA-256 is {sha}, the manifest says {}",
            files.manifest.report_sha256
        ));
    }
    Ok(())
}

/// How a package's sending stands, in a few words.
pub fn send_status(state: Option<&SendState>) -> String {
    let Some(s) = state else {
        return "not sent".into();
    };
    let report = s
        .report_id
        .map(|id| format!("report {id}"))
        .unwrap_or_else(|| "no report id".into());
    if s.finished && s.stopped.is_none() {
        return format!("finished ({report})");
    }
    if s.retracted {
        return format!(
            "retracted ({report}): {}",
            s.stopped.as_deref().unwrap_or("no reason recorded")
        );
    }
    if let Some(why) = &s.stopped {
        if s.retract_reason.is_some() {
            return format!("to retract ({report}): {why}");
        }
        return format!("stopped ({report}): {why}");
    }
    if let Some(why) = &s.retract_reason {
        return format!("to retract ({report}): {why}");
    }
    let step = if s.report_id.is_none() {
        "submit"
    } else if s.file_id.is_none() {
        "upload"
    } else if !s.fileinfo_sent {
        "fileinfo"
    } else {
        "finish"
    };
    let last = s
        .last_error
        .as_deref()
        .map(|e| format!(", last error: {e}"))
        .unwrap_or_default();
    if s.report_id.is_none() && s.attempts == 0 {
        return "not sent".into();
    }
    format!(
        "in progress ({report}, next {step}, {} failed attempt(s){last})",
        s.attempts
    )
}

/// One package as a listing shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackageSummary {
    pub case_id: String,
    /// None while the package is incomplete (no `package.json` yet).
    pub manifest: Option<Manifest>,
    pub state: Option<SendState>,
    /// [`send_status`] of the state.
    pub status: String,
}

/// A page of case ids with packages, and where the next page starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackagePage {
    pub case_ids: Vec<String>,
    pub next: Option<String>,
}

/// The reports bucket and the event bus.
#[derive(Clone, Debug)]
pub struct S3Reports {
    client: aws_sdk_s3::Client,
    events: aws_sdk_eventbridge::Client,
    bucket: String,
    /// `None` disables the event (for stores without an event bus).
    event_bus: Option<String>,
}

fn status_of<E, R: HttpStatus>(e: &SdkError<E, R>) -> Option<u16> {
    e.raw_response().map(HttpStatus::status_code)
}

/// The HTTP status of a raw response, whatever the SDK's response type.
trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

fn is_missing<E: ProvideErrorMetadata, R: HttpStatus>(e: &SdkError<E, R>) -> bool {
    status_of(e) == Some(404)
        || matches!(
            e.as_service_error().and_then(|s| s.code()),
            Some("NoSuchKey" | "NotFound")
        )
}

fn is_precondition_failed<E: ProvideErrorMetadata, R: HttpStatus>(e: &SdkError<E, R>) -> bool {
    status_of(e) == Some(412)
        || matches!(
            e.as_service_error().and_then(|s| s.code()),
            Some("PreconditionFailed" | "ConditionalRequestConflict")
        )
}

impl S3Reports {
    pub fn new(
        client: aws_sdk_s3::Client,
        events: aws_sdk_eventbridge::Client,
        bucket: impl Into<String>,
        event_bus: Option<String>,
    ) -> S3Reports {
        S3Reports {
            client,
            events,
            bucket: bucket.into(),
            event_bus,
        }
    }

    /// The reports bucket `bucket` (and the event bus `event_bus`) with clients of `sdk`.
    pub fn connect(
        sdk: &aws_config::SdkConfig,
        bucket: impl Into<String>,
        event_bus: Option<String>,
    ) -> S3Reports {
        S3Reports::new(
            crate::s3_client(sdk),
            aws_sdk_eventbridge::Client::new(sdk),
            bucket,
            event_bus,
        )
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn prefix(&self, case_id: &str) -> Result<String, StorageError> {
        case_prefix(case_id).map_err(|message| StorageError {
            operation: "reports",
            target: self.url(PREFIX),
            message,
        })
    }

    /// Where a case's package is.
    pub fn location(&self, case_id: &str) -> Result<PackageLocation, StorageError> {
        Ok(PackageLocation {
            bucket: self.bucket.clone(),
            prefix: self.prefix(case_id)?,
        })
    }

    /// PUT `body` at `key` (a new version; writes into an Object Lock bucket carry an
    /// integrity checksum); with `only_if_absent`, `Ok(false)` when an object is there.
    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        only_if_absent: bool,
    ) -> Result<bool, StorageError> {
        self.put_held(key, body, content_type, only_if_absent, false)
            .await
    }

    /// [`S3Reports::put`], under an Object Lock legal hold when `legal_hold`.
    async fn put_held(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        only_if_absent: bool,
        legal_hold: bool,
    ) -> Result<bool, StorageError> {
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .content_type(content_type)
            .checksum_algorithm(ChecksumAlgorithm::Sha256);
        if only_if_absent {
            request = request.if_none_match("*");
        }
        if legal_hold {
            request = request.object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On);
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if only_if_absent && is_precondition_failed(&e) => Ok(false),
            Err(e) => Err(error("PutObject", self.url(key), &e)),
        }
    }

    /// GET `key` (bounded); `None` when there is no such object.
    async fn get(&self, key: &str, max_bytes: i64) -> Result<Option<Vec<u8>>, StorageError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(error("GetObject", self.url(key), &e)),
        };
        let length = out.content_length().unwrap_or(0);
        if length > max_bytes {
            return Err(StorageError {
                operation: "GetObject",
                target: self.url(key),
                message: format!("{length} bytes, more than the {max_bytes} expected"),
            });
        }
        let bytes = out.body.collect().await.map_err(|e| StorageError {
            operation: "GetObject",
            target: self.url(key),
            message: format!("body read failed: {e}"),
        })?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StorageError> {
        let Some(bytes) = self.get(key, MAX_DOCUMENT_BYTES).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StorageError {
                operation: "GetObject",
                target: self.url(key),
                message: format!("not readable: {e}"),
            })
    }

    fn json(&self, key: &str, value: &impl Serialize) -> Result<Vec<u8>, StorageError> {
        serde_json::to_vec_pretty(value).map_err(|e| StorageError {
            operation: "PutObject",
            target: self.url(key),
            message: e.to_string(),
        })
    }

    /// `package.json` of a case as written, unchecked; `None` when there is none.
    async fn fetch_package(&self, case_id: &str) -> Result<Option<PackageFiles>, StorageError> {
        let prefix = self.prefix(case_id)?;
        self.get_json(&format!("{prefix}{PACKAGE_JSON}")).await
    }

    /// Makes `report.xml` and `manifest.json` those of the package kept (a writer that lost
    /// the race for `package.json` may have written its own before).
    async fn settle(&self, kept: &PackageFiles) -> Result<(), StorageError> {
        let prefix = self.prefix(&kept.case_id)?;
        let report_key = format!("{prefix}{REPORT_XML}");
        let report = self.get(&report_key, MAX_DOCUMENT_BYTES).await?;
        if report.as_deref() != Some(kept.report_xml.as_bytes()) {
            self.put(
                &report_key,
                kept.report_xml.as_bytes().to_vec(),
                "application/xml",
                false,
            )
            .await?;
        }
        let manifest_key = format!("{prefix}{MANIFEST_JSON}");
        let manifest: Option<Manifest> = self.get_json(&manifest_key).await.ok().flatten();
        if manifest.as_ref() != Some(&kept.manifest) {
            let body = self.json(&manifest_key, &kept.manifest)?;
            self.put(&manifest_key, body, "application/json", false)
                .await?;
        }
        Ok(())
    }

    /// A case's package, checked: `package.json` holds together ([`check_package`]) and
    /// `report.xml` is the report its manifest's SHA-256 names. `None` when there is no
    /// package (or not a whole one yet).
    pub async fn read_package(&self, case_id: &str) -> Result<Option<PackageFiles>, StorageError> {
        let prefix = self.prefix(case_id)?;
        let Some(files) = self.fetch_package(case_id).await? else {
            return Ok(None);
        };
        let broken = |message: String| StorageError {
            operation: "GetObject",
            target: self.url(&prefix),
            message,
        };
        if files.case_id != case_id {
            return Err(broken(format!(
                "{PACKAGE_JSON} is of case {}, not {case_id}",
                files.case_id
            )));
        }
        check_package(&files).map_err(|e| broken(format!("{PACKAGE_JSON}: {e}")))?;
        let report_key = format!("{prefix}{REPORT_XML}");
        let report = self
            .get(&report_key, MAX_DOCUMENT_BYTES)
            .await?
            .ok_or_else(|| broken(format!("{REPORT_XML} is missing")))?;
        let sha = sha256_hex(&report);
        if !sha.eq_ignore_ascii_case(&files.manifest.report_sha256) {
            return Err(broken(format!(
                "{REPORT_XML} has SHA-256 {sha}, the manifest says {}",
                files.manifest.report_sha256
            )));
        }
        Ok(Some(files))
    }

    /// One page (at most `limit`, bounded by [`MAX_PAGE`]) of the case ids with packages,
    /// in key order, from `token` (a previous page's `next`).
    pub async fn list(
        &self,
        token: Option<String>,
        limit: i32,
    ) -> Result<PackagePage, StorageError> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(PREFIX)
            .delimiter("/")
            .max_keys(limit.clamp(1, MAX_PAGE))
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| error("ListObjectsV2", self.url(PREFIX), &e))?;
        let case_ids = out
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix())
            .filter_map(|p| p.strip_prefix(PREFIX)?.strip_suffix('/'))
            .filter(|id| case_prefix(id).is_ok())
            .map(str::to_string)
            .collect();
        let next = match out.next_continuation_token() {
            Some(t) if out.is_truncated() == Some(true) => Some(t.to_string()),
            _ => None,
        };
        Ok(PackagePage { case_ids, next })
    }

    /// A case's package as a listing shows it (its manifest and send state).
    pub async fn summary(&self, case_id: &str) -> Result<PackageSummary, StorageError> {
        let files = self.fetch_package(case_id).await?;
        let state = self.read_state(case_id).await?;
        Ok(PackageSummary {
            case_id: case_id.to_string(),
            manifest: files.map(|f| f.manifest),
            status: send_status(state.as_ref()),
            state,
        })
    }

    /// The case's last persisted send state; `None` if it was never sent.
    pub async fn read_state(&self, case_id: &str) -> Result<Option<SendState>, StorageError> {
        let prefix = self.prefix(case_id)?;
        self.get_json(&format!("{prefix}{SEND_STATE_JSON}")).await
    }

    /// Persists a send state (a new version of `send-state.json`).
    pub async fn write_state(&self, state: &SendState) -> Result<(), StorageError> {
        let prefix = self.prefix(&state.case_id)?;
        let key = format!("{prefix}{SEND_STATE_JSON}");
        let body = self.json(&key, state)?;
        self.put(&key, body, "application/json", false).await?;
        Ok(())
    }

    /// The keys of a case's recorded responses, in order.
    pub async fn responses(&self, case_id: &str) -> Result<Vec<String>, StorageError> {
        let prefix = format!("{}{RESPONSES}", self.prefix(case_id)?);
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| error("ListObjectsV2", self.url(&prefix), &e))?;
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .filter(|k| response_number(k).is_some())
                    .map(str::to_string),
            );
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        keys.sort_by_key(|k| (response_number(k), k.clone()));
        Ok(keys)
    }

    /// The number the next recorded response of a case gets.
    pub async fn next_response_number(&self, case_id: &str) -> Result<u32, StorageError> {
        Ok(self
            .responses(case_id)
            .await?
            .iter()
            .filter_map(|k| response_number(k))
            .max()
            .map_or(1, |n| n + 1))
    }

    /// Records one of NCMEC's answers as `responses/<NNNN>-<step>.xml`; returns its key.
    pub async fn write_response(
        &self,
        case_id: &str,
        number: u32,
        step: &str,
        body: &str,
    ) -> Result<String, StorageError> {
        let key = response_key(&self.prefix(case_id)?, number, step);
        self.put(&key, body.as_bytes().to_vec(), "application/xml", false)
            .await?;
        Ok(key)
    }

    /// The evidence to upload (the quarantined copy), at most `max_bytes`.
    pub async fn read_evidence(
        &self,
        location: &QuarantineLocation,
        max_bytes: u64,
    ) -> Result<Vec<u8>, StorageError> {
        let target = format!("s3://{}/{}", location.bucket, location.key);
        let out = self
            .client
            .get_object()
            .bucket(&location.bucket)
            .key(&location.key)
            .send()
            .await
            .map_err(|e| error("GetObject", target.clone(), &e))?;
        let length = out.content_length().unwrap_or(0).max(0) as u64;
        if length > max_bytes {
            return Err(StorageError {
                operation: "GetObject",
                target,
                message: format!("{length} bytes: more than the {max_bytes} a send reads"),
            });
        }
        let bytes = out.body.collect().await.map_err(|e| StorageError {
            operation: "GetObject",
            target,
            message: format!("body read failed: {e}"),
        })?;
        Ok(bytes.into_bytes().to_vec())
    }
}

impl ReportOutbox for S3Reports {
    async fn write_package(
        &self,
        files: &PackageFiles,
        legal_hold: bool,
    ) -> Result<PackageLocation, StorageError> {
        let location = self.location(&files.case_id)?;
        let prefix = &location.prefix;
        check_package(files).map_err(|message| StorageError {
            operation: "PutObject",
            target: self.url(prefix),
            message: format!("the package does not hold together: {message}"),
        })?;
        if let Some(kept) = self.fetch_package(&files.case_id).await? {
            self.settle(&kept).await?;
            return Ok(location);
        }
        let report_key = format!("{prefix}{REPORT_XML}");
        self.put_held(
            &report_key,
            files.report_xml.as_bytes().to_vec(),
            "application/xml",
            false,
            legal_hold,
        )
        .await?;
        let manifest_key = format!("{prefix}{MANIFEST_JSON}");
        let manifest = self.json(&manifest_key, &files.manifest)?;
        self.put_held(
            &manifest_key,
            manifest,
            "application/json",
            false,
            legal_hold,
        )
        .await?;
        let package_key = format!("{prefix}{PACKAGE_JSON}");
        let package = self.json(&package_key, files)?;
        if !self
            .put_held(&package_key, package, "application/json", true, legal_hold)
            .await?
        {
            // Another writer's package came first: it is the one kept.
            tracing::info!(case_id = %files.case_id, "report package already written");
            if let Some(kept) = self.fetch_package(&files.case_id).await? {
                self.settle(&kept).await?;
            }
        }
        Ok(location)
    }

    async fn announce(&self, ready: &ReportReady) -> Result<(), StorageError> {
        let Some(bus) = &self.event_bus else {
            return Ok(());
        };
        let detail = serde_json::to_string(ready).map_err(|e| StorageError {
            operation: "PutEvents",
            target: bus.clone(),
            message: e.to_string(),
        })?;
        crate::notify::put_event(&self.events, bus, EVENT_DETAIL_TYPE, detail).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_prefixes_stay_under_reports() {
        assert_eq!(
            case_prefix("case-0123abcd").unwrap(),
            "reports/case-0123abcd/"
        );
        for bad in ["", ".", "..", "a/b", "../x", "a\\b", "a\nb"] {
            assert!(case_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn responses_are_numbered_in_order() {
        let p = "reports/case-1/";
        assert_eq!(
            response_key(p, 1, "submit"),
            "reports/case-1/responses/0001-submit.xml"
        );
        assert_eq!(
            response_key(p, 12345, "a/b"),
            "reports/case-1/responses/12345-a-b.xml"
        );
        assert_eq!(
            response_key(p, 2, ""),
            "reports/case-1/responses/0002-answer.xml"
        );
        assert_eq!(
            response_number("reports/case-1/responses/0007-finish.xml"),
            Some(7)
        );
        assert_eq!(
            response_number("reports/case-1/responses/12345-a-b.xml"),
            Some(12345)
        );
        for bad in [
            "reports/case-1/responses/x-submit.xml",
            "reports/case-1/responses/0001-submit.txt",
            "reports/case-1/responses/-submit.xml",
        ] {
            assert_eq!(response_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_send_state_reads_as_a_status() {
        assert_eq!(send_status(None), "not sent");
        let mut s = SendState::new("case-1");
        assert_eq!(send_status(Some(&s)), "not sent");
        s.attempts = 1;
        s.last_error = Some("timeout".into());
        assert_eq!(
            send_status(Some(&s)),
            "in progress (no report id, next submit, 1 failed attempt(s), last error: timeout)"
        );
        s.report_id = Some(42);
        s.last_error = None;
        assert_eq!(
            send_status(Some(&s)),
            "in progress (report 42, next upload, 1 failed attempt(s))"
        );
        s.finished = true;
        assert_eq!(send_status(Some(&s)), "finished (report 42)");
        let mut r = SendState::new("case-1");
        r.report_id = Some(7);
        r.retract_reason = Some("MD5 mismatch".into());
        assert_eq!(send_status(Some(&r)), "to retract (report 7): MD5 mismatch");
        r.retracted = true;
        r.stopped = r.retract_reason.clone();
        assert_eq!(send_status(Some(&r)), "retracted (report 7): MD5 mismatch");
        let mut x = SendState::new("case-1");
        x.stopped = Some("submit refused with 4100".into());
        assert_eq!(
            send_status(Some(&x)),
            "stopped (no report id): submit refused with 4100"
        );
    }

    #[test]
    fn sha256_is_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
