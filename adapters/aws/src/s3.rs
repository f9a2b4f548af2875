//! S3 (and any S3-compatible store) behind the core's [`ObjectStore`] port.
//!
//! The body of an object is streamed once through the digests: no temporary file, no
//! whole-object buffer. Every operation names the exact version it means: by version id when
//! the bucket is versioned, with an ETag precondition otherwise, so an overwrite in between
//! is never mistaken for the object that was scanned.

use hashgate_core::quarantine::metadata as quarantine_metadata;
use hashgate_core::time::Timestamp;
use std::collections::HashMap;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart,
    MetadataDirective, ObjectLockMode, ServerSideEncryption, Tag, Tagging,
};
use aws_sdk_s3::Client;
use aws_smithy_types::error::display::DisplayErrorContext;
use hashgate_core::case::QuarantineLocation;
use hashgate_core::digest::{Algorithm, AlgorithmSet, Digest, DigestSet, StreamDigester};
use hashgate_core::event::ObjectRef;
use hashgate_core::pipeline::{ObjectHead, ObjectStore, ReadResult, StorageError, RESULT_TAG};
use hashgate_core::quarantine::{Action, Outcome};

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

fn storage_error<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
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
fn copy_source(object: &ObjectRef) -> String {
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
        let Some(source) = self.head(from).await? else {
            return Ok(Outcome::SourceGone);
        };
        if from.version_id.is_none() && source.etag != from.etag {
            return Ok(Outcome::SourceChanged);
        }
        let retain = DateTime::from_secs(retain_until.as_second());
        let metadata: HashMap<String, String> = metadata.iter().cloned().collect();
        if source.size > MAX_SINGLE_COPY {
            return self
                .multipart_copy(from, to, source.size, retain, metadata)
                .await;
        }
        let mut request = self
            .client
            .copy_object()
            .bucket(&to.bucket)
            .key(&to.key)
            .copy_source(copy_source(from))
            .metadata_directive(MetadataDirective::Replace)
            .set_metadata(Some(metadata))
            .object_lock_mode(ObjectLockMode::Governance)
            .object_lock_retain_until_date(retain)
            // S3 computes a full-object SHA-256 of the copy; writes into an Object Lock bucket
            // must carry an integrity checksum.
            .checksum_algorithm(ChecksumAlgorithm::Sha256);
        if from.version_id.is_none() {
            if let Some(etag) = &from.etag {
                request = request.copy_source_if_match(format!("\"{etag}\""));
            }
        }
        // Writes into an Object Lock bucket must carry an integrity checksum; some
        // S3-compatible stores look for it in this header even on a copy. AWS ignores it.
        let request = request.customize().mutate_request(|r| {
            r.headers_mut()
                .insert("x-amz-sdk-checksum-algorithm", "SHA256");
        });
        match request.send().await {
            Ok(_) => Ok(Outcome::Copied),
            Err(e) if is_precondition_failed(&e) => Ok(Outcome::SourceChanged),
            Err(e) if is_gone(&e) => Ok(Outcome::SourceGone),
            Err(e) => Err(storage_error("CopyObject", target(from), &e)),
        }
    }

    async fn multipart_copy(
        &self,
        from: &ObjectRef,
        to: &QuarantineLocation,
        size: u64,
        retain: DateTime,
        metadata: HashMap<String, String>,
    ) -> Result<Outcome, StorageError> {
        let dest = format!("s3://{}/{}", to.bucket, to.key);
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&to.bucket)
            .key(&to.key)
            .set_metadata(Some(metadata))
            .object_lock_mode(ObjectLockMode::Governance)
            .object_lock_retain_until_date(retain)
            .send()
            .await
            .map_err(|e| storage_error("CreateMultipartUpload", dest.clone(), &e))?;
        let upload_id = upload.upload_id().unwrap_or_default().to_string();
        let mut parts = Vec::new();
        let mut start = 0u64;
        let mut number = 1;
        let result: Result<Option<Outcome>, StorageError> = async {
            while start < size {
                let end = (start + COPY_PART).min(size) - 1;
                let mut part = self
                    .client
                    .upload_part_copy()
                    .bucket(&to.bucket)
                    .key(&to.key)
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
                    Err(e) if is_precondition_failed(&e) => {
                        return Ok(Some(Outcome::SourceChanged))
                    }
                    Err(e) if is_gone(&e) => return Ok(Some(Outcome::SourceGone)),
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
            Ok(None)
        }
        .await;
        match result {
            Ok(None) => {
                self.client
                    .complete_multipart_upload()
                    .bucket(&to.bucket)
                    .key(&to.key)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| storage_error("CompleteMultipartUpload", dest.clone(), &e))?;
                Ok(Outcome::Copied)
            }
            other => {
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&to.bucket)
                    .key(&to.key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                other.map(|o| o.expect("early return carries an outcome"))
            }
        }
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

    async fn head_version(&self, object: &ObjectRef) -> Result<Option<ObjectHead>, StorageError> {
        let mut request = self
            .client
            .head_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .checksum_mode(ChecksumMode::Enabled);
        if let Some(v) = &object.version_id {
            request = request.version_id(v);
        }
        let h = match request.send().await {
            Ok(h) => h,
            Err(e) if is_gone(&e) => return Ok(None),
            Err(e) => return Err(storage_error("HeadObject", target(object), &e)),
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
        Ok(Some(ObjectHead {
            size: h.content_length().unwrap_or(0).max(0) as u64,
            etag: unquote(h.e_tag()),
            version_id: h.version_id().map(str::to_string),
            customer_key_encryption: matches!(
                h.server_side_encryption(),
                Some(ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse)
            ) || h.sse_customer_algorithm().is_some(),
            checksums,
        }))
    }
}

impl ObjectStore for S3Objects {
    async fn head(&self, object: &ObjectRef) -> Result<Option<ObjectHead>, StorageError> {
        let current = self.head_version(object).await?;
        // An event without a version id, for a key overwritten since: in a versioned bucket
        // the scanned version still exists, and is found by its ETag.
        if let (None, Some(etag)) = (&object.version_id, &object.etag) {
            let overwritten = match &current {
                Some(h) => h.etag.as_deref() != Some(etag.as_str()),
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
