//! S3 (and any S3-compatible store) behind the core's [`ObjectStore`] port (the scanner)
//! and its [`Evidence`] port (the review service: previews and restores).
//!
//! The body of an object is streamed once through the digests: no temporary file, no
//! whole-object buffer. Every operation names the exact version it means: by version id when
//! the bucket is versioned, with an ETag precondition otherwise, so an overwrite in between
//! is never mistaken for the object that was scanned. Copies replace the metadata and keep
//! the object's content type; above 5 GiB they are multipart copies.

use hashgate_core::quarantine::metadata as quarantine_metadata;
use hashgate_core::time::Timestamp;
use std::collections::HashMap;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart,
    MetadataDirective, ObjectLockMode, ServerSideEncryption, Tag, Tagging,
};
use aws_sdk_s3::Client;
use aws_smithy_types::error::display::DisplayErrorContext;
use hashgate_core::case::{CaseRecord, QuarantineLocation};
use hashgate_core::digest::{Algorithm, AlgorithmSet, Digest, DigestSet, StreamDigester};
use hashgate_core::event::ObjectRef;
use hashgate_core::pipeline::{ObjectHead, ObjectStore, ReadResult, StorageError, RESULT_TAG};
use hashgate_core::quarantine::{Action, Outcome};
use hashgate_core::review::{
    Evidence, EvidenceRead, ObjectPlace, RestoreAction, RestoreOutcome, RestoredTo,
    RESTORED_CASE_METADATA,
};

/// S3 allows at most 10 tags on an object.
pub const MAX_TAGS: usize = 10;
/// CopyObject copies at most 5 GiB; above that, a multipart copy.
const MAX_SINGLE_COPY: u64 = 5 * 1024 * 1024 * 1024;
/// Part size of multipart copies.
const COPY_PART: u64 = 512 * 1024 * 1024;

/// The S3 adapter.
#[derive(Clone, Debug)]
pub struct S3Objects {
    client: Client,
}

impl S3Objects {
    pub fn new(client: Client) -> S3Objects {
        S3Objects { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn target(object: &ObjectRef) -> String {
    match &object.version_id {
        Some(v) => format!("s3://{}/{} (version {v})", object.bucket, object.key),
        None => format!("s3://{}/{}", object.bucket, object.key),
    }
}

/// A failed SDK call as the core's error: the operation, what it was on, and the service's
/// error code and message (or the transport's error).
pub(crate) fn storage_error<
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
>(
    operation: &'static str,
    target: String,
    e: &SdkError<E, R>,
) -> StorageError {
    let message = match e {
        SdkError::ServiceError(s) => format!(
            "{}: {}",
            s.err().code().unwrap_or("error"),
            s.err().message().unwrap_or("(no message)")
        ),
        other => DisplayErrorContext(other).to_string(),
    };
    StorageError {
        operation,
        target,
        message,
    }
}

/// The HTTP status of a service error, if the request got that far.
fn status<E, R: HttpStatus>(e: &SdkError<E, R>) -> Option<u16> {
    e.raw_response().map(HttpStatus::status_code)
}

/// Access to the status of the SDK's raw response type.
pub trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

/// 404 (no such key or version) and 405 (the version is a delete marker) mean "gone".
fn is_gone<E: ProvideErrorMetadata, R: HttpStatus>(e: &SdkError<E, R>) -> bool {
    matches!(status(e), Some(404 | 405))
        || matches!(code(e), Some("NoSuchKey" | "NoSuchVersion" | "NotFound"))
}

fn is_precondition_failed<E: ProvideErrorMetadata, R: HttpStatus>(e: &SdkError<E, R>) -> bool {
    status(e) == Some(412) || code(e) == Some("PreconditionFailed")
}

/// 409 ConditionalRequestConflict: a conditional write raced another write to the key.
fn is_write_conflict<E: ProvideErrorMetadata, R: HttpStatus>(e: &SdkError<E, R>) -> bool {
    code(e) == Some("ConditionalRequestConflict")
}

/// A full-object checksum S3 returned (base64), as a digest; composite ones are refused.
fn full_object_checksum(
    algorithm: Algorithm,
    value: Option<&str>,
    kind: Option<&ChecksumType>,
) -> Option<Digest> {
    let value = value?;
    let full = match kind {
        Some(ChecksumType::FullObject) => true,
        Some(_) => false,
        // Older stores send no type: a composite checksum carries a "-parts" suffix.
        None => !value.contains('-'),
    };
    if !full {
        return None;
    }
    let raw = aws_smithy_types::base64::decode(value).ok()?;
    Digest::new(algorithm, &raw).ok()
}

fn unquote(etag: Option<&str>) -> Option<String> {
    etag.map(|e| e.trim_matches('"').to_string())
        .filter(|e| !e.is_empty())
}

/// `bucket/key[?versionId=…]`, URL-encoded as CopyObject wants it.
pub(crate) fn copy_source(object: &ObjectRef) -> String {
    let mut s = format!("{}/{}", object.bucket, encode_key(&object.key));
    if let Some(v) = &object.version_id {
        s.push_str("?versionId=");
        s.push_str(&encode_key(v));
    }
    s
}

/// Percent-encode everything but unreserved characters and `/`.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl S3Objects {
    async fn head_location(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<aws_sdk_s3::operation::head_object::HeadObjectOutput>, StorageError> {
        match self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(h) => Ok(Some(h)),
            Err(e) if is_gone(&e) => Ok(None),
            Err(e) => Err(storage_error(
                "HeadObject",
                format!("s3://{bucket}/{key}"),
                &e,
            )),
        }
    }

    async fn copy(
        &self,
        from: &ObjectRef,
        to: &QuarantineLocation,
        retain_until: &Timestamp,
        metadata: &[(String, String)],
    ) -> Result<Outcome, StorageError> {
        let case_id = metadata
            .iter()
            .find(|(k, _)| k == quarantine_metadata::CASE_ID)
            .map(|(_, v)| v.as_str());
        // A retry after a crash: the copy of this case is already there (verified next).
        if let Some(existing) = self.head_location(&to.bucket, &to.key).await? {
            let existing_case = existing
                .metadata()
                .and_then(|m| m.get(quarantine_metadata::CASE_ID))
                .map(String::as_str);
            if existing_case.is_some() && existing_case == case_id {
                return Ok(Outcome::Copied);
            }
        }
        let Some(source) = self.head_detailed(from).await? else {
            return Ok(Outcome::SourceGone);
        };
        if from.version_id.is_none() && source.head.etag != from.etag {
            return Ok(Outcome::SourceChanged);
        }
        let destination = CopyTarget {
            bucket: &to.bucket,
            key: &to.key,
            metadata: metadata.iter().cloned().collect(),
            // Replacing the metadata would reset the content type: keep the upload's.
            content_type: source.content_type,
            retain_until: Some(DateTime::from_secs(retain_until.as_second())),
            only_if_absent: false,
        };
        match self
            .copy_object(from, source.head.size, destination)
            .await?
        {
            Copied::Done { .. } => Ok(Outcome::Copied),
            Copied::SourceChanged => Ok(Outcome::SourceChanged),
            Copied::SourceGone => Ok(Outcome::SourceGone),
            Copied::Taken => Err(StorageError {
                operation: "CopyObject",
                target: format!("s3://{}/{}", to.bucket, to.key),
                message: "an unconditional copy was refused as if conditional".into(),
            }),
        }
    }

    /// Copy `from` (an exact version, or the current one under its ETag) to `to`, replacing
    /// the metadata; a multipart copy above 5 GiB.
    async fn copy_object(
        &self,
        from: &ObjectRef,
        size: u64,
        to: CopyTarget<'_>,
    ) -> Result<Copied, StorageError> {
        if size > MAX_SINGLE_COPY {
            return self.multipart_copy(from, size, to).await;
        }
        let mut request = self
            .client
            .copy_object()
            .bucket(to.bucket)
            .key(to.key)
            .copy_source(copy_source(from))
            .metadata_directive(MetadataDirective::Replace)
            .set_metadata(Some(to.metadata))
            .set_content_type(to.content_type);
        if let Some(retain) = to.retain_until {
            request = request
                .object_lock_mode(ObjectLockMode::Governance)
                .object_lock_retain_until_date(retain)
                // S3 computes a full-object SHA-256 of the copy; writes into an Object Lock
                // bucket must carry an integrity checksum.
                .checksum_algorithm(ChecksumAlgorithm::Sha256);
        }
        if to.only_if_absent {
            request = request.if_none_match("*");
        }
        if from.version_id.is_none() {
            if let Some(etag) = &from.etag {
                request = request.copy_source_if_match(format!("\"{etag}\""));
            }
        }
        let locked = to.retain_until.is_some();
        // Writes into an Object Lock bucket must carry an integrity checksum; some
        // S3-compatible stores look for it in this header even on a copy. AWS ignores it.
        let request = request.customize().mutate_request(move |r| {
            if locked {
                r.headers_mut()
                    .insert("x-amz-sdk-checksum-algorithm", "SHA256");
            }
        });
        match request.send().await {
            Ok(out) => Ok(Copied::Done {
                version_id: out.version_id().map(str::to_string),
            }),
            // The destination's condition (if any) or the source's ETag.
            Err(e) if is_precondition_failed(&e) && to.only_if_absent => Ok(Copied::Taken),
            Err(e) if is_precondition_failed(&e) => Ok(Copied::SourceChanged),
            Err(e) if to.only_if_absent && is_write_conflict(&e) => Ok(Copied::Taken),
            Err(e) if is_gone(&e) => Ok(Copied::SourceGone),
            Err(e) => Err(storage_error("CopyObject", target(from), &e)),
        }
    }

    async fn multipart_copy(
        &self,
        from: &ObjectRef,
        size: u64,
        to: CopyTarget<'_>,
    ) -> Result<Copied, StorageError> {
        let dest = format!("s3://{}/{}", to.bucket, to.key);
        let mut create = self
            .client
            .create_multipart_upload()
            .bucket(to.bucket)
            .key(to.key)
            .set_metadata(Some(to.metadata))
            .set_content_type(to.content_type);
        if let Some(retain) = to.retain_until {
            create = create
                .object_lock_mode(ObjectLockMode::Governance)
                .object_lock_retain_until_date(retain);
        }
        let upload = create
            .send()
            .await
            .map_err(|e| storage_error("CreateMultipartUpload", dest.clone(), &e))?;
        let upload_id = upload.upload_id().unwrap_or_default().to_string();
        let mut parts = Vec::new();
        let mut start = 0u64;
        let mut number = 1;
        let result: Result<Copied, StorageError> = async {
            while start < size {
                let end = (start + COPY_PART).min(size) - 1;
                let mut part = self
                    .client
                    .upload_part_copy()
                    .bucket(to.bucket)
                    .key(to.key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .copy_source(copy_source(from))
                    .copy_source_range(format!("bytes={start}-{end}"));
                if from.version_id.is_none() {
                    if let Some(etag) = &from.etag {
                        part = part.copy_source_if_match(format!("\"{etag}\""));
                    }
                }
                let out = match part.send().await {
                    Ok(o) => o,
                    Err(e) if is_precondition_failed(&e) => return Ok(Copied::SourceChanged),
                    Err(e) if is_gone(&e) => return Ok(Copied::SourceGone),
                    Err(e) => return Err(storage_error("UploadPartCopy", dest.clone(), &e)),
                };
                let etag = out
                    .copy_part_result()
                    .and_then(|r| r.e_tag())
                    .unwrap_or_default()
                    .to_string();
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .e_tag(etag)
                        .build(),
                );
                start = end + 1;
                number += 1;
            }
            let mut complete = self
                .client
                .complete_multipart_upload()
                .bucket(to.bucket)
                .key(to.key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                );
            if to.only_if_absent {
                complete = complete.if_none_match("*");
            }
            match complete.send().await {
                Ok(out) => Ok(Copied::Done {
                    version_id: out.version_id().map(str::to_string),
                }),
                Err(e)
                    if to.only_if_absent
                        && (is_precondition_failed(&e) || is_write_conflict(&e)) =>
                {
                    Ok(Copied::Taken)
                }
                Err(e) => Err(storage_error("CompleteMultipartUpload", dest.clone(), &e)),
            }
        }
        .await;
        if !matches!(result, Ok(Copied::Done { .. })) {
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(to.bucket)
                .key(to.key)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        result
    }

    async fn verify(
        &self,
        at: &QuarantineLocation,
        expected: &DigestSet,
        size: u64,
    ) -> Result<Outcome, StorageError> {
        let copy = ObjectRef {
            bucket: at.bucket.clone(),
            key: at.key.clone(),
            version_id: None,
            etag: None,
        };
        match self
            .read_digests(&copy, expected.algorithms(), u64::MAX)
            .await?
        {
            ReadResult::Digested(d) if d.bytes != size => Ok(Outcome::VerifyFailed(format!(
                "copy has {} bytes, the scanned object {size}",
                d.bytes
            ))),
            ReadResult::Digested(d) if d.digests != *expected => Ok(Outcome::VerifyFailed(
                "copy's digests differ from the scanned object's".into(),
            )),
            ReadResult::Digested(_) => Ok(Outcome::Verified),
            other => Ok(Outcome::VerifyFailed(format!(
                "copy not readable: {other:?}"
            ))),
        }
    }

    async fn get_tags(&self, object: &ObjectRef) -> Result<Option<Vec<Tag>>, StorageError> {
        let mut request = self
            .client
            .get_object_tagging()
            .bucket(&object.bucket)
            .key(&object.key);
        if let Some(v) = &object.version_id {
            request = request.version_id(v);
        }
        match request.send().await {
            Ok(out) => Ok(Some(out.tag_set().to_vec())),
            Err(e) if is_gone(&e) => Ok(None),
            Err(e) => Err(storage_error("GetObjectTagging", target(object), &e)),
        }
    }

    /// Set our tags on an object, merged with the owner's: ours are replaced, theirs never.
    /// `Ok(false)` when the object is gone or there is no room for them.
    async fn merge_tags(
        &self,
        object: &ObjectRef,
        ours: &[(&str, &str)],
    ) -> Result<bool, StorageError> {
        let Some(mut tags) = self.get_tags(object).await? else {
            return Ok(false);
        };
        tags.retain(|t| !ours.iter().any(|(k, _)| t.key() == *k));
        if tags.len() + ours.len() > MAX_TAGS {
            tracing::warn!(
                object = %target(object),
                existing = tags.len(),
                "no room for the scan result tag: S3 allows {MAX_TAGS} tags"
            );
            return Ok(false);
        }
        for (k, v) in ours {
            tags.push(
                Tag::builder()
                    .key(*k)
                    .value(*v)
                    .build()
                    .map_err(|e| StorageError {
                        operation: "PutObjectTagging",
                        target: target(object),
                        message: e.to_string(),
                    })?,
            );
        }
        let tagging = Tagging::builder()
            .set_tag_set(Some(tags))
            .build()
            .map_err(|e| StorageError {
                operation: "PutObjectTagging",
                target: target(object),
                message: e.to_string(),
            })?;
        let mut request = self
            .client
            .put_object_tagging()
            .bucket(&object.bucket)
            .key(&object.key)
            .tagging(tagging);
        if let Some(v) = &object.version_id {
            request = request.version_id(v);
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_gone(&e) => Ok(false),
            Err(e) => Err(storage_error("PutObjectTagging", target(object), &e)),
        }
    }

    async fn delete_original(&self, object: &ObjectRef) -> Result<Outcome, StorageError> {
        if let Some(version) = &object.version_id {
            // Deleting a version that no longer exists succeeds: a retry is harmless.
            return match self
                .client
                .delete_object()
                .bucket(&object.bucket)
                .key(&object.key)
                .version_id(version)
                .send()
                .await
            {
                Ok(_) => Ok(Outcome::Deleted),
                Err(e) if is_gone(&e) => Ok(Outcome::AlreadyDeleted),
                Err(e) => Err(storage_error("DeleteObject", target(object), &e)),
            };
        }
        // Unversioned: delete only if the key still holds the scanned content.
        let Some(head) = self.head_location(&object.bucket, &object.key).await? else {
            return Ok(Outcome::AlreadyDeleted);
        };
        if unquote(head.e_tag()) != object.etag {
            return Ok(Outcome::ChangedBeforeDelete);
        }
        let mut request = self
            .client
            .delete_object()
            .bucket(&object.bucket)
            .key(&object.key);
        if let Some(etag) = &object.etag {
            request = request.if_match(format!("\"{etag}\""));
        }
        match request.send().await {
            Ok(_) => Ok(Outcome::Deleted),
            Err(e) if is_precondition_failed(&e) => Ok(Outcome::ChangedBeforeDelete),
            Err(e) if is_gone(&e) => Ok(Outcome::AlreadyDeleted),
            Err(e) => Err(storage_error("DeleteObject", target(object), &e)),
        }
    }
}

impl S3Objects {
    /// The version of `key` whose ETag is `etag`, for events that name no version (moto,
    /// some S3-compatible stores) when the key has been overwritten since.
    async fn find_version(
        &self,
        object: &ObjectRef,
        etag: &str,
    ) -> Result<Option<String>, StorageError> {
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&object.bucket)
                .prefix(&object.key)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| storage_error("ListObjectVersions", target(object), &e))?;
            let found = page.versions().iter().find(|v| {
                v.key() == Some(object.key.as_str()) && unquote(v.e_tag()).as_deref() == Some(etag)
            });
            if let Some(v) = found.and_then(|v| v.version_id()) {
                return Ok((v != "null").then(|| v.to_string()));
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
        }
        Ok(None)
    }

    /// HEAD of an exact version (or the current one), with S3's checksums asked for.
    async fn head_output(
        &self,
        object: &ObjectRef,
    ) -> Result<Option<HeadObjectOutput>, StorageError> {
        let mut request = self
            .client
            .head_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .checksum_mode(ChecksumMode::Enabled);
        if let Some(v) = &object.version_id {
            request = request.version_id(v);
        }
        match request.send().await {
            Ok(h) => Ok(Some(h)),
            Err(e) if is_gone(&e) => Ok(None),
            Err(e) => Err(storage_error("HeadObject", target(object), &e)),
        }
    }

    async fn head_version(&self, object: &ObjectRef) -> Result<Option<Headed>, StorageError> {
        let Some(h) = self.head_output(object).await? else {
            return Ok(None);
        };
        let mut checksums = DigestSet::default();
        let kind = h.checksum_type();
        for d in [
            full_object_checksum(Algorithm::Sha256, h.checksum_sha256(), kind),
            full_object_checksum(Algorithm::Sha1, h.checksum_sha1(), kind),
        ]
        .into_iter()
        .flatten()
        {
            checksums.insert(d);
        }
        Ok(Some(Headed {
            head: ObjectHead {
                size: h.content_length().unwrap_or(0).max(0) as u64,
                etag: unquote(h.e_tag()),
                version_id: h.version_id().map(str::to_string),
                customer_key_encryption: matches!(
                    h.server_side_encryption(),
                    Some(ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse)
                ) || h.sse_customer_algorithm().is_some(),
                checksums,
                restored_case: h
                    .metadata()
                    .and_then(|m| m.get(hashgate_core::review::RESTORED_CASE_METADATA))
                    .cloned(),
            },
            content_type: h.content_type().map(str::to_string),
        }))
    }

    /// HEAD of the version an event names: by version id, or, for an event without one
    /// whose key was overwritten since, the version found by its ETag.
    async fn head_detailed(&self, object: &ObjectRef) -> Result<Option<Headed>, StorageError> {
        let current = self.head_version(object).await?;
        // An event without a version id, for a key overwritten since: in a versioned bucket
        // the scanned version still exists, and is found by its ETag.
        if let (None, Some(etag)) = (&object.version_id, &object.etag) {
            let overwritten = match &current {
                Some(h) => h.head.etag.as_deref() != Some(etag.as_str()),
                None => true,
            };
            if overwritten {
                if let Some(version) = self.find_version(object, etag).await? {
                    let pinned = ObjectRef {
                        version_id: Some(version),
                        ..object.clone()
                    };
                    return self.head_version(&pinned).await;
                }
            }
        }
        Ok(current)
    }
}

/// Where a copy goes and what it carries.
struct CopyTarget<'a> {
    bucket: &'a str,
    key: &'a str,
    metadata: HashMap<String, String>,
    content_type: Option<String>,
    /// Written under an Object Lock (governance) retention until then.
    retain_until: Option<DateTime>,
    /// Refuse to replace an object already at the key (a conditional write).
    only_if_absent: bool,
}

/// How a copy ended.
enum Copied {
    Done {
        version_id: Option<String>,
    },
    SourceChanged,
    SourceGone,
    /// `only_if_absent`, and the key holds an object.
    Taken,
}

/// What a HEAD tells: the core's view of the object, and its content type.
struct Headed {
    head: ObjectHead,
    content_type: Option<String>,
}

impl ObjectStore for S3Objects {
    async fn head(&self, object: &ObjectRef) -> Result<Option<ObjectHead>, StorageError> {
        Ok(self.head_detailed(object).await?.map(|h| h.head))
    }

    async fn read_digests(
        &self,
        object: &ObjectRef,
        algorithms: AlgorithmSet,
        max_bytes: u64,
    ) -> Result<ReadResult, StorageError> {
        let mut request = self
            .client
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key);
        match (&object.version_id, &object.etag) {
            (Some(v), _) => request = request.version_id(v),
            (None, Some(etag)) => request = request.if_match(format!("\"{etag}\"")),
            (None, None) => {}
        }
        let mut out = match request.send().await {
            Ok(o) => o,
            Err(e) if is_precondition_failed(&e) => return Ok(ReadResult::Changed),
            Err(e) if is_gone(&e) => return Ok(ReadResult::Gone),
            Err(e) if status(&e) == Some(403) => {
                return Ok(ReadResult::Unreadable {
                    reason: storage_error("GetObject", target(object), &e).message,
                })
            }
            Err(e) => return Err(storage_error("GetObject", target(object), &e)),
        };
        let size = out.content_length().unwrap_or(0).max(0) as u64;
        if size > max_bytes {
            return Ok(ReadResult::TooLarge { size });
        }
        // The async API: while the hashing threads are behind, this task waits (Pending)
        // instead of blocking the runtime's worker thread.
        let mut digester = StreamDigester::new(algorithms);
        loop {
            match out.body.try_next().await {
                Ok(Some(chunk)) => {
                    digester.update_async(&chunk).await;
                    if digester.bytes() > max_bytes {
                        return Ok(ReadResult::TooLarge {
                            size: digester.bytes(),
                        });
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(StorageError {
                        operation: "GetObject",
                        target: target(object),
                        message: format!("body read failed after {} bytes: {e}", digester.bytes()),
                    })
                }
            }
        }
        let digested = digester.finish_async().await;
        if digested.bytes != size {
            return Err(StorageError {
                operation: "GetObject",
                target: target(object),
                message: format!("read {} bytes, expected {size}", digested.bytes),
            });
        }
        Ok(ReadResult::Digested(digested))
    }

    async fn quarantine_step(&self, action: &Action) -> Result<Outcome, StorageError> {
        match action {
            Action::Copy {
                from,
                to,
                retain_until,
                metadata,
            } => self.copy(from, to, retain_until, metadata).await,
            Action::Verify { at, expected, size } => self.verify(at, expected, *size).await,
            Action::Tag { object, case_id } => {
                let tags = [(RESULT_TAG, "held"), ("hashgate-case", case_id.as_str())];
                if self.merge_tags(object, &tags).await? {
                    Ok(Outcome::Tagged)
                } else if self.head(object).await?.is_none() {
                    Ok(Outcome::SourceGone)
                } else {
                    Err(StorageError {
                        operation: "PutObjectTagging",
                        target: target(object),
                        message: format!(
                            "cannot hold in place: the object already has {MAX_TAGS} tags"
                        ),
                    })
                }
            }
            Action::DeleteOriginal { object } => self.delete_original(object).await,
            other => Err(StorageError {
                operation: "quarantine",
                target: format!("{other:?}"),
                message: "not an object storage step".into(),
            }),
        }
    }

    async fn tag_result(&self, object: &ObjectRef, status: &str) -> Result<bool, StorageError> {
        self.merge_tags(object, &[(RESULT_TAG, status)]).await
    }
}

/// Where a case's content is: its quarantined copy (the current version of its key), or
/// the object held in place, by the version (or ETag) that was scanned.
fn evidence_of(case: &CaseRecord) -> ObjectRef {
    match &case.quarantine {
        Some(q) => ObjectRef {
            bucket: q.bucket.clone(),
            key: q.key.clone(),
            version_id: None,
            etag: None,
        },
        None => case.object.clone(),
    }
}

/// The review service's side: the evidence for previews, and the restore of a false
/// positive ([`RestoreAction`]), every step safe to repeat.
///
/// A restore copies the quarantined version back with its content type and a metadata
/// entry [`RESTORED_CASE_METADATA`] naming the case, and only into a key that is free at
/// that moment (`If-None-Match: *`): an object someone uploaded since is never replaced,
/// and a retry recognises its own copy by that metadata. The copy keeps the tags the
/// upload had when it was quarantined (S3 copies them with the object, below 5 GiB).
impl Evidence for S3Objects {
    async fn content_type(&self, case: &CaseRecord) -> Result<Option<String>, StorageError> {
        Ok(self
            .head_output(&evidence_of(case))
            .await?
            .and_then(|h| h.content_type().map(str::to_string)))
    }

    async fn read(&self, case: &CaseRecord, max_bytes: u64) -> Result<EvidenceRead, StorageError> {
        let object = evidence_of(case);
        let Some(head) = self.head_output(&object).await? else {
            return Ok(EvidenceRead::Missing);
        };
        let size = head.content_length().unwrap_or(0).max(0) as u64;
        if size > max_bytes {
            return Ok(EvidenceRead::TooLarge { size });
        }
        // The version the HEAD saw, so the bytes are those of the size just checked.
        let mut request = self
            .client
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key);
        match (
            head.version_id().or(object.version_id.as_deref()),
            &object.etag,
        ) {
            (Some(v), _) if v != "null" => request = request.version_id(v),
            (_, Some(etag)) => request = request.if_match(format!("\"{etag}\"")),
            _ => {}
        }
        let mut out = match request.send().await {
            Ok(o) => o,
            Err(e) if is_gone(&e) || is_precondition_failed(&e) => {
                return Ok(EvidenceRead::Missing)
            }
            Err(e) => return Err(storage_error("GetObject", target(&object), &e)),
        };
        let content_type = out.content_type().map(str::to_string);
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        loop {
            match out.body.try_next().await {
                Ok(Some(chunk)) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() as u64 > max_bytes {
                        return Ok(EvidenceRead::TooLarge {
                            size: bytes.len() as u64,
                        });
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(StorageError {
                        operation: "GetObject",
                        target: target(&object),
                        message: format!("body read failed after {} bytes: {e}", bytes.len()),
                    })
                }
            }
        }
        Ok(EvidenceRead::Bytes {
            bytes,
            content_type,
        })
    }

    async fn restore_step(&self, action: &RestoreAction) -> Result<RestoreOutcome, StorageError> {
        match action {
            RestoreAction::Place {
                case_id,
                from,
                candidates,
            } => self.place(case_id, from, candidates).await,
            RestoreAction::Verify { placed, algorithms } => {
                let object = ObjectRef {
                    bucket: placed.bucket.clone(),
                    key: placed.key.clone(),
                    version_id: placed.version_id.clone().filter(|v| v != "null"),
                    etag: None,
                };
                let algorithms: AlgorithmSet = algorithms.iter().copied().collect();
                match self.read_digests(&object, algorithms, u64::MAX).await? {
                    ReadResult::Digested(d) => Ok(RestoreOutcome::Verified(d.digests)),
                    other => Err(StorageError {
                        operation: "GetObject",
                        target: target(&object),
                        message: format!("the restored copy cannot be read back: {other:?}"),
                    }),
                }
            }
            RestoreAction::Unhold { object } => {
                let Some(tags) = self.get_tags(object).await? else {
                    // Deleted by its owner meanwhile: nothing is held any more.
                    return Ok(RestoreOutcome::Unheld);
                };
                let held = tags
                    .iter()
                    .any(|t| t.key() == RESULT_TAG && t.value() == HELD);
                let released = tags
                    .iter()
                    .any(|t| t.key() == RESULT_TAG && t.value() == RELEASED);
                if released || !held && tags.iter().all(|t| t.key() != RESULT_TAG) {
                    return Ok(RestoreOutcome::Unheld);
                }
                if self.merge_tags(object, &[(RESULT_TAG, RELEASED)]).await?
                    || self.head(object).await?.is_none()
                {
                    Ok(RestoreOutcome::Unheld)
                } else {
                    Err(StorageError {
                        operation: "PutObjectTagging",
                        target: target(object),
                        message: "the hold tag could not be replaced".into(),
                    })
                }
            }
            RestoreAction::Finish => Err(StorageError {
                operation: "restore",
                target: "finish".into(),
                message: "finishing is the case store's write, not an object step".into(),
            }),
        }
    }
}

/// The result tag's values a hold in place and its release write.
const HELD: &str = "held";
const RELEASED: &str = "released";

impl S3Objects {
    /// The first free candidate (or the one already holding this case's copy) receives the
    /// quarantined bytes.
    async fn place(
        &self,
        case_id: &str,
        from: &QuarantineLocation,
        candidates: &[ObjectPlace],
    ) -> Result<RestoreOutcome, StorageError> {
        let quarantined = ObjectRef {
            bucket: from.bucket.clone(),
            key: from.key.clone(),
            version_id: None,
            etag: None,
        };
        let Some(source) = self.head_output(&quarantined).await? else {
            return Err(StorageError {
                operation: "HeadObject",
                target: target(&quarantined),
                message: "the quarantined copy is missing".into(),
            });
        };
        // Copy the version just seen, whatever is written to the key later.
        let pinned = ObjectRef {
            version_id: source
                .version_id()
                .filter(|v| *v != "null")
                .map(str::to_string),
            ..quarantined
        };
        let size = source.content_length().unwrap_or(0).max(0) as u64;
        for place in candidates {
            // Twice at most: a key taken between the HEAD and the copy is looked at again,
            // since the object there may be this case's own copy from a concurrent retry.
            for _ in 0..2 {
                if let Some(existing) = self.head_location(&place.bucket, &place.key).await? {
                    let ours = existing
                        .metadata()
                        .and_then(|m| m.get(RESTORED_CASE_METADATA))
                        .is_some_and(|c| c == case_id);
                    if ours {
                        return Ok(RestoreOutcome::Placed(RestoredTo {
                            bucket: place.bucket.clone(),
                            key: place.key.clone(),
                            version_id: existing.version_id().map(str::to_string),
                        }));
                    }
                    break;
                }
                let destination = CopyTarget {
                    bucket: &place.bucket,
                    key: &place.key,
                    metadata: HashMap::from([(
                        RESTORED_CASE_METADATA.to_string(),
                        case_id.to_string(),
                    )]),
                    content_type: source.content_type().map(str::to_string),
                    retain_until: None,
                    only_if_absent: true,
                };
                match self.copy_object(&pinned, size, destination).await? {
                    Copied::Done { version_id } => {
                        return Ok(RestoreOutcome::Placed(RestoredTo {
                            bucket: place.bucket.clone(),
                            key: place.key.clone(),
                            version_id,
                        }))
                    }
                    Copied::Taken => continue,
                    Copied::SourceGone | Copied::SourceChanged => {
                        return Err(StorageError {
                            operation: "CopyObject",
                            target: target(&pinned),
                            message: "the quarantined copy vanished during the restore".into(),
                        })
                    }
                }
            }
        }
        Ok(RestoreOutcome::NoFreePlace)
    }
}

/// Listing for `hashgate backfill`: ListObjectsV2 in key order, resumed with `StartAfter` (a
/// key, which a checkpoint can hold, unlike a continuation token that expires).
impl hashgate_core::backfill::Lister for S3Objects {
    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        max: u32,
    ) -> Result<hashgate_core::backfill::Page, StorageError> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_start_after(start_after.map(str::to_string))
            .max_keys(max.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(|e| storage_error("ListObjectsV2", format!("s3://{bucket}/{prefix}"), &e))?;
        let objects = out
            .contents()
            .iter()
            .filter_map(|o| {
                Some(hashgate_core::backfill::Listed {
                    key: o.key()?.to_string(),
                    etag: o
                        .e_tag()
                        .map(|e| e.trim_matches('"').to_string())
                        .filter(|e| !e.is_empty()),
                    size: o.size().and_then(|s| u64::try_from(s).ok()),
                })
            })
            .collect();
        Ok(hashgate_core::backfill::Page {
            objects,
            truncated: out.is_truncated().unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_is_encoded() {
        let o = ObjectRef {
            bucket: "b".into(),
            key: "dir/a b+c%.jpg".into(),
            version_id: Some("v/1".into()),
            etag: None,
        };
        assert_eq!(copy_source(&o), "b/dir/a%20b%2Bc%25.jpg?versionId=v/1");
    }

    #[test]
    fn only_full_object_checksums_count() {
        let sha = aws_smithy_types::base64::encode([7u8; 32]);
        let d = full_object_checksum(
            Algorithm::Sha256,
            Some(&sha),
            Some(&ChecksumType::FullObject),
        );
        assert_eq!(d.unwrap().as_bytes(), &[7u8; 32]);
        assert!(full_object_checksum(
            Algorithm::Sha256,
            Some(&sha),
            Some(&ChecksumType::Composite)
        )
        .is_none());
        assert!(full_object_checksum(Algorithm::Sha256, Some(&format!("{sha}-3")), None).is_none());
        assert!(full_object_checksum(Algorithm::Sha256, Some(&sha), None).is_some());
        assert!(
            full_object_checksum(Algorithm::Sha1, Some(&sha), None).is_none(),
            "wrong length"
        );
    }
}
