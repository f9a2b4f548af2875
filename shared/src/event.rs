//! Upload events, normalised from every notification document the scanner accepts:
//!
//! - S3 event notifications (`{"Records":[{"eventSource":"aws:s3",…}]}`), delivered directly
//!   or as a queue message's body;
//! - EventBridge "Object Created" events from S3;
//! - the `s3:TestEvent` S3 sends when a notification is configured: acknowledged, ignored;
//! - Ceph RGW's records (`eventSource` `ceph:s3`, pushed over HTTP, AMQP or Kafka): the S3
//!   shape, but the key is **not** URL-encoded, `eventName` may carry an `s3:` prefix (older
//!   releases), `size` is a string, `versionId` is empty when unversioned, and `eventId`,
//!   `opaqueData`, `metadata` and `tags` are extra;
//! - MinIO's records (`eventSource` `minio:s3`, `eventName` `s3:ObjectCreated:Put`, the key
//!   URL-encoded), bare or in the `{EventName, Key, Records}` wrapper its webhook and AMQP
//!   targets send;
//! - SeaweedFS filer events (`{key, event_type, message: {old_entry, new_entry, …}}`, from
//!   its webhook notifier): see [`seaweedfs`].
//!
//! How documents arrive (an SQS batch handed to Lambda, a long-polled queue, an AMQP
//! delivery, a webhook `POST`) is the function's business, not the core's: see the scanner's
//! `envelope` and ingress modules.
//!
//! Parsing is lenient where S3-compatible stores and emulators differ (no `userIdentity`,
//! `requestParameters`, `responseElements`, `sequencer` or `versionId` is normal) and strict
//! where it matters: a record without a bucket or key, or with a key that does not decode,
//! is an error naming the record. AWS and MinIO notification keys arrive URL-encoded (`+` is
//! a space) and are decoded; Ceph, EventBridge and SeaweedFS keys arrive as they are.

pub mod seaweedfs;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::to_hex;
use crate::report::{IpCapture, UploadFacts};
use crate::time::Timestamp;

/// One version of one object: what was uploaded, and what is scanned and quarantined.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    /// Present when the bucket is versioned.
    pub version_id: Option<String>,
    /// The ETag from the event, without quotes.
    pub etag: Option<String>,
}

impl ObjectRef {
    /// The case id of a match on this object version: derived from (bucket, key, version id,
    /// or ETag when unversioned), so duplicate, replayed and reordered events of the same
    /// upload converge on one case, and an overwrite gets its own.
    pub fn case_id(&self) -> String {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        let (tag, identity) = match (&self.version_id, &self.etag) {
            (Some(v), _) => ("version", v.as_str()),
            (None, Some(e)) => ("etag", e.as_str()),
            (None, None) => ("none", ""),
        };
        for part in [self.bucket.as_str(), self.key.as_str(), tag, identity] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        format!("case-{}", &to_hex(&h.finalize())[..32])
    }
}

/// Which trigger delivered an event: the store's notification shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// An S3 event notification from AWS (or a record that names no source).
    S3,
    EventBridge,
    /// Ceph RGW's bucket notification (`ceph:s3`).
    Ceph,
    /// MinIO's bucket notification (`minio:s3`).
    Minio,
    /// A SeaweedFS filer event.
    SeaweedFs,
    /// Not an event: an object found by listing a bucket (`hashgate backfill`).
    Backfill,
}

/// An object was created (put, posted, copied, or a multipart upload completed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadEvent {
    pub object: ObjectRef,
    pub size: Option<u64>,
    /// e.g. `ObjectCreated:Put`, or EventBridge's reason `PutObject`.
    pub event_name: String,
    /// When the object was uploaded, as the event says (a case records it: reports need the
    /// upload time). An event without one, or with one that does not parse, is still
    /// scanned: the time is not worth losing the scan over.
    pub uploaded_at: Option<Timestamp>,
    pub trigger: Trigger,
    /// Who owns the bucket and where the upload came from, as the event says (a case
    /// records them for its report). Like the upload time, an absent or malformed value is
    /// left out and the object is scanned all the same.
    #[serde(default)]
    pub upload_facts: UploadFacts,
}

/// What one notification record means for the scanner.
// One per record and short-lived: a boxed upload would only add an allocation per scan.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Scan this object version.
    Upload(UploadEvent),
    /// S3's `s3:TestEvent`: acknowledge and ignore.
    Test { bucket: Option<String> },
    /// Not an object creation (a delete, a restore…): ignore, with the reason for the log.
    Ignored { reason: String },
}

/// A record that could not be understood, and where it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: {reason}")]
pub struct EventError {
    /// e.g. `Records[2].s3.object.key`, or `message 5f0c…: body`.
    pub place: String,
    pub reason: String,
}

impl EventError {
    pub fn new(place: impl Into<String>, reason: impl Into<String>) -> EventError {
        EventError {
            place: place.into(),
            reason: reason.into(),
        }
    }
}

fn err(place: impl Into<String>, reason: impl Into<String>) -> EventError {
    EventError::new(place, reason)
}

/// Parse one notification body (an SQS message body, or a payload read elsewhere).
pub fn parse_body(body: &str) -> Result<Vec<Notice>, EventError> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| err("body", format!("not JSON: {e}")))?;
    parse_notification(&value)
}

/// Parse one notification document: S3 `Records`, an `s3:TestEvent`, or an EventBridge event.
pub fn parse_notification(value: &Value) -> Result<Vec<Notice>, EventError> {
    let Some(object) = value.as_object() else {
        return Err(err("$", "expected a JSON object"));
    };
    if object.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(vec![Notice::Test {
            bucket: object
                .get("Bucket")
                .and_then(Value::as_str)
                .map(str::to_string),
        }]);
    }
    if let Some(records) = object.get("Records") {
        let records = records
            .as_array()
            .ok_or_else(|| err("Records", "expected an array"))?;
        return records
            .iter()
            .enumerate()
            .map(|(i, r)| s3_record(r, &format!("Records[{i}]")))
            .collect();
    }
    if object.contains_key("detail-type") {
        return eventbridge(value).map(|n| vec![n]);
    }
    if seaweedfs::is_filer_event(object) {
        return seaweedfs::parse(value, seaweedfs::DEFAULT_BUCKETS_DIR).map(|n| vec![n]);
    }
    Err(err(
        "$",
        "not an S3 notification (no \"Records\"), S3 test event, EventBridge event or \
         SeaweedFS filer event",
    ))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
}

fn required<'a>(v: &'a Value, path: &[&str], place: &str) -> Result<&'a str, EventError> {
    let at = format!("{place}.{}", path.join("."));
    match path.iter().try_fold(v, |v, k| v.get(k)) {
        None | Some(Value::Null) => Err(err(at, "missing")),
        Some(Value::String(s)) if s.is_empty() => Err(err(at, "empty")),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(err(at, format!("expected a string, found {other}"))),
    }
}

fn optional_string(v: &Value, path: &[&str]) -> Option<String> {
    str_at(v, path)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn size_at(v: &Value, path: &[&str], place: &str) -> Result<Option<u64>, EventError> {
    match path.iter().try_fold(v, |v, k| v.get(k)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
            err(
                format!("{place}.{}", path.join(".")),
                format!("not a size: {n}"),
            )
        }),
        // Some S3-compatible stores send numbers as strings.
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| {
            err(
                format!("{place}.{}", path.join(".")),
                format!("not a size: {s:?}"),
            )
        }),
        Some(other) => Err(err(
            format!("{place}.{}", path.join(".")),
            format!("not a size: {other}"),
        )),
    }
}

fn time_at(v: &Value, path: &[&str]) -> Option<Timestamp> {
    str_at(v, path).and_then(|t| crate::time::parse(t).ok())
}

/// The upload facts of an event: the bucket owner's identifier and the source address, seen
/// at the upload time. An address that does not parse is left out, never an error.
fn facts(owner: Option<String>, address: Option<&str>, at: Option<Timestamp>) -> UploadFacts {
    UploadFacts {
        bucket_owner: owner,
        source_ip: address
            .and_then(|a| a.trim().parse().ok())
            .map(|address| IpCapture { address, at }),
    }
}

fn clean_etag(etag: Option<String>) -> Option<String> {
    etag.map(|e| e.trim_matches('"').to_string())
        .filter(|e| !e.is_empty())
}

fn s3_record(r: &Value, place: &str) -> Result<Notice, EventError> {
    // MinIO and older Ceph releases name events `s3:ObjectCreated:Put`; AWS and current Ceph
    // `ObjectCreated:Put`.
    let raw_name = required(r, &["eventName"], place)?;
    let event_name = raw_name.strip_prefix("s3:").unwrap_or(raw_name);
    if !event_name.starts_with("ObjectCreated:") {
        return Ok(Notice::Ignored {
            reason: format!("{place}: {raw_name} is not an object creation"),
        });
    }
    let (trigger, encoded) = match str_at(r, &["eventSource"]) {
        Some("ceph:s3") => (Trigger::Ceph, false),
        Some("minio:s3") => (Trigger::Minio, true),
        // AWS, and stores that name no source: the AWS form, keys URL-encoded.
        _ => (Trigger::S3, true),
    };
    let bucket = required(r, &["s3", "bucket", "name"], place)?;
    let raw_key = required(r, &["s3", "object", "key"], place)?;
    let key = if encoded {
        url_decode_key(raw_key).map_err(|reason| err(format!("{place}.s3.object.key"), reason))?
    } else {
        raw_key.to_string()
    };
    let uploaded_at = time_at(r, &["eventTime"]);
    Ok(Notice::Upload(UploadEvent {
        object: ObjectRef {
            bucket: bucket.to_string(),
            key,
            version_id: optional_string(r, &["s3", "object", "versionId"]),
            etag: clean_etag(optional_string(r, &["s3", "object", "eTag"])),
        },
        size: size_at(r, &["s3", "object", "size"], place)?,
        event_name: event_name.to_string(),
        uploaded_at,
        trigger,
        // The bucket owner is `s3.bucket.ownerIdentity`; `userIdentity` is the uploader.
        upload_facts: facts(
            optional_string(r, &["s3", "bucket", "ownerIdentity", "principalId"]),
            str_at(r, &["requestParameters", "sourceIPAddress"]),
            uploaded_at,
        ),
    }))
}

fn eventbridge(v: &Value) -> Result<Notice, EventError> {
    let place = "$";
    let detail_type = required(v, &["detail-type"], place)?;
    if detail_type != "Object Created" {
        return Ok(Notice::Ignored {
            reason: format!("EventBridge {detail_type:?} is not an object creation"),
        });
    }
    let source = str_at(v, &["source"]).unwrap_or_default();
    if source != "aws.s3" {
        return Err(err(
            "$.source",
            format!("expected \"aws.s3\", found {source:?}"),
        ));
    }
    let bucket = required(v, &["detail", "bucket", "name"], place)?;
    let key = required(v, &["detail", "object", "key"], place)?;
    let uploaded_at = time_at(v, &["time"]);
    Ok(Notice::Upload(UploadEvent {
        object: ObjectRef {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: optional_string(v, &["detail", "object", "version-id"]),
            etag: clean_etag(optional_string(v, &["detail", "object", "etag"])),
        },
        size: size_at(v, &["detail", "object", "size"], place)?,
        event_name: optional_string(v, &["detail", "reason"])
            .unwrap_or_else(|| detail_type.to_string()),
        uploaded_at,
        trigger: Trigger::EventBridge,
        // `account` is the bucket owner's account id; `detail.requester` is the uploader's.
        upload_facts: facts(
            optional_string(v, &["account"]),
            str_at(v, &["detail", "source-ip-address"]),
            uploaded_at,
        ),
    }))
}

/// Decode an S3 notification key: `+` is a space, `%XX` a byte; the result must be UTF-8.
pub fn url_decode_key(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent-escape at byte {i} of {raw:?}"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("{raw:?} does not decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s3_put(key: &str) -> Value {
        json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-11-21T10:00:00.000Z", "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:EXAMPLE"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "R", "x-amz-id-2": "I"},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "scan",
                "bucket": {"name": "uploads", "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                    "arn": "arn:aws:s3:::uploads"},
                "object": {"key": key, "size": 1024, "eTag": "0123456789abcdef0123456789abcdef",
                    "versionId": "v1", "sequencer": "0A1B2C3D4E5F678901"}}
        }]})
    }

    fn upload(n: &Notice) -> &UploadEvent {
        match n {
            Notice::Upload(u) => u,
            other => panic!("expected an upload, got {other:?}"),
        }
    }

    #[test]
    fn direct_s3_notification_with_encoded_key() {
        let notices =
            parse_notification(&s3_put("photos/my+summer%2Bfun%20%F0%9F%8C%9E%25.jpg")).unwrap();
        let u = upload(&notices[0]);
        assert_eq!(u.object.bucket, "uploads");
        assert_eq!(u.object.key, "photos/my summer+fun 🌞%.jpg");
        assert_eq!(u.object.version_id.as_deref(), Some("v1"));
        assert_eq!(u.size, Some(1024));
        assert_eq!(u.trigger, Trigger::S3);
        assert_eq!(
            u.uploaded_at,
            Some(crate::time::parse("2026-11-21T10:00:00Z").unwrap())
        );
        let mut odd = s3_put("k");
        odd["Records"][0]["eventTime"] = json!("yesterday");
        let n = parse_notification(&odd).unwrap();
        assert_eq!(upload(&n[0]).uploaded_at, None, "scanned all the same");
    }

    #[test]
    fn minimal_records_from_s3_compatible_stores_are_fine() {
        let v = json!({"Records": [{"eventName": "ObjectCreated:CompleteMultipartUpload",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "k", "eTag": "\"abc-2\""}}}]});
        let n = parse_notification(&v).unwrap();
        let u = upload(&n[0]);
        assert_eq!(u.object.etag.as_deref(), Some("abc-2"), "quotes stripped");
        assert_eq!(
            (u.size, u.uploaded_at, &u.object.version_id),
            (None, None, &None)
        );
    }

    #[test]
    fn other_events_are_ignored_and_test_events_acknowledged() {
        let v = json!({"Records": [{"eventName": "ObjectRemoved:Delete",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]});
        assert!(
            matches!(&parse_notification(&v).unwrap()[0], Notice::Ignored { reason } if reason.contains("ObjectRemoved:Delete"))
        );
        let t = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-21T10:00:00Z",
            "Bucket": "uploads", "RequestId": "R", "HostId": "H"});
        assert_eq!(
            parse_notification(&t).unwrap(),
            vec![Notice::Test {
                bucket: Some("uploads".into())
            }]
        );
    }

    #[test]
    fn eventbridge_object_created_keys_are_not_decoded() {
        let v = json!({"version": "0", "id": "x", "detail-type": "Object Created", "source": "aws.s3",
            "account": "1", "time": "2026-11-21T10:00:00Z", "region": "eu-west-1",
            "resources": ["arn:aws:s3:::uploads"],
            "detail": {"version": "0", "bucket": {"name": "uploads"},
                "object": {"key": "a+b%20c.zip", "size": 198524144, "etag": "4af9-12",
                    "version-id": "uh", "sequencer": "0064"},
                "request-id": "R", "requester": "1", "reason": "CompleteMultipartUpload"}});
        let n = parse_notification(&v).unwrap();
        let u = upload(&n[0]);
        assert_eq!(u.object.key, "a+b%20c.zip");
        assert_eq!(u.trigger, Trigger::EventBridge);
        assert_eq!(u.event_name, "CompleteMultipartUpload");
        let deleted = json!({"detail-type": "Object Deleted", "source": "aws.s3", "detail": {}});
        assert!(matches!(
            parse_notification(&deleted).unwrap()[0],
            Notice::Ignored { .. }
        ));
    }

    #[test]
    fn upload_facts_come_from_the_event_and_a_malformed_address_is_left_out() {
        use std::net::IpAddr;
        let at = Some(crate::time::parse("2026-11-21T10:00:00Z").unwrap());
        // S3: the bucket owner from `s3.bucket.ownerIdentity` (not the uploader's
        // `userIdentity`), the address from `requestParameters`.
        let mut v = s3_put("k");
        v["Records"][0]["requestParameters"]["sourceIPAddress"] = json!("203.0.113.7");
        let n = parse_notification(&v).unwrap();
        let facts = &upload(&n[0]).upload_facts;
        assert_eq!(facts.bucket_owner.as_deref(), Some("A3NL1KOZZKExample"));
        let ip = facts.source_ip.as_ref().expect("an address");
        assert_eq!(ip.address, "203.0.113.7".parse::<IpAddr>().unwrap());
        assert_eq!(ip.at, at, "seen at the upload time");
        v["Records"][0]["requestParameters"]["sourceIPAddress"] = json!("2001:db8::1");
        let n = parse_notification(&v).unwrap();
        assert_eq!(
            upload(&n[0])
                .upload_facts
                .source_ip
                .as_ref()
                .unwrap()
                .address,
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        for bad in [
            json!("999.1.1.1"),
            json!("not an address"),
            json!(""),
            json!(7),
        ] {
            v["Records"][0]["requestParameters"]["sourceIPAddress"] = bad.clone();
            let n = parse_notification(&v).expect("scanned all the same");
            let u = upload(&n[0]);
            assert_eq!(u.upload_facts.source_ip, None, "{bad}");
            assert_eq!(
                u.upload_facts.bucket_owner.as_deref(),
                Some("A3NL1KOZZKExample")
            );
            assert_eq!(u.object.key, "k");
        }
        // A record without either (S3-compatible stores) has none.
        let v = json!({"Records": [{"eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]});
        let n = parse_notification(&v).unwrap();
        assert_eq!(upload(&n[0]).upload_facts, UploadFacts::default());

        // EventBridge: `account` is the bucket owner's account (the documented envelope);
        // `detail.requester` is the uploader, not the owner.
        let mut v = json!({"version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": "Object Created", "source": "aws.s3", "account": "111122223333",
            "time": "2026-11-21T10:00:00Z", "region": "ca-central-1",
            "resources": ["arn:aws:s3:::uploads"],
            "detail": {"version": "0", "bucket": {"name": "uploads"},
                "object": {"key": "example-key", "size": 5,
                    "etag": "b1946ac92492d2347c6235b4d2611184",
                    "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e", "sequencer": "617f08299329d189"},
                "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012",
                "source-ip-address": "198.51.100.23", "reason": "PutObject"}});
        let n = parse_notification(&v).unwrap();
        let facts = &upload(&n[0]).upload_facts;
        assert_eq!(facts.bucket_owner.as_deref(), Some("111122223333"));
        let ip = facts.source_ip.as_ref().expect("an address");
        assert_eq!(ip.address, "198.51.100.23".parse::<IpAddr>().unwrap());
        assert_eq!(ip.at, at);
        v["detail"]["source-ip-address"] = json!("198.51.100");
        let n = parse_notification(&v).expect("scanned all the same");
        assert_eq!(upload(&n[0]).upload_facts.source_ip, None);
        assert_eq!(upload(&n[0]).object.key, "example-key");
    }

    #[test]
    fn unrecognised_payloads_say_so() {
        let e = parse_notification(&json!({"hello": 1})).unwrap_err();
        assert!(e.reason.contains("not an S3 notification"), "{e}");
        let e = parse_notification(&json!({"Records": [{"eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": ""}, "object": {"key": "k"}}}]}))
        .unwrap_err();
        assert_eq!(e.to_string(), "Records[0].s3.bucket.name: empty");
        let e = parse_notification(&json!({"Records": [{"eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "k", "size": -1}}}]}))
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Records[0].s3.object.size: not a size"),
            "{e}"
        );
    }

    /// Go's `url.QueryEscape`, as MinIO applies it to record keys.
    fn query_escape(key: &str) -> String {
        key.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    #[test]
    fn ceph_and_minio_keys_with_every_awkward_character() {
        for key in [
            "plain.jpg",
            "with space/and+plus.jpg",
            "100%/%20literal.png",
            "ünïcødé/🌞 photo.jpeg",
            "deep/ly/nested//dirs/file",
        ] {
            let mut ceph = s3_put(key);
            ceph["Records"][0]["eventSource"] = json!("ceph:s3");
            ceph["Records"][0]["s3"]["object"]["versionId"] = json!("");
            let n = parse_notification(&ceph).unwrap();
            let u = upload(&n[0]);
            assert_eq!((u.object.key.as_str(), u.trigger), (key, Trigger::Ceph));
            assert_eq!(u.object.version_id, None);

            let mut minio = s3_put(&query_escape(key));
            minio["Records"][0]["eventSource"] = json!("minio:s3");
            minio["Records"][0]["eventName"] = json!("s3:ObjectCreated:Copy");
            let minio = json!({"EventName": "s3:ObjectCreated:Copy",
                "Key": format!("uploads/{key}"), "Records": minio["Records"].clone()});
            let n = parse_notification(&minio).unwrap();
            let u = upload(&n[0]);
            assert_eq!((u.object.key.as_str(), u.trigger), (key, Trigger::Minio));
            assert_eq!(u.event_name, "ObjectCreated:Copy");
        }
        let mut lifecycle = s3_put("k");
        lifecycle["Records"][0]["eventSource"] = json!("ceph:s3");
        lifecycle["Records"][0]["eventName"] = json!("ObjectLifecycle:Expiration:Current");
        assert!(matches!(
            &parse_notification(&lifecycle).unwrap()[0],
            Notice::Ignored { .. }
        ));
    }

    #[test]
    fn url_decoding() {
        assert_eq!(url_decode_key("a+b%2Bc%25d").unwrap(), "a b+c%d");
        assert_eq!(url_decode_key("dir%2Fsub/x").unwrap(), "dir/sub/x");
        assert!(url_decode_key("trailing%2").is_err());
        assert!(url_decode_key("%ff%fe").is_err(), "not UTF-8");
    }

    #[test]
    fn case_ids_converge_per_version_and_differ_across_versions() {
        let base = ObjectRef {
            bucket: "b".into(),
            key: "k".into(),
            version_id: Some("v1".into()),
            etag: Some("e1".into()),
        };
        let replay = ObjectRef {
            etag: Some("other etag, same version".into()),
            ..base.clone()
        };
        assert_eq!(base.case_id(), replay.case_id());
        let overwrite = ObjectRef {
            version_id: Some("v2".into()),
            ..base.clone()
        };
        assert_ne!(base.case_id(), overwrite.case_id());
        let unversioned = ObjectRef {
            version_id: None,
            ..base.clone()
        };
        let unversioned_overwrite = ObjectRef {
            etag: Some("e2".into()),
            ..unversioned.clone()
        };
        assert_ne!(unversioned.case_id(), unversioned_overwrite.case_id());
        // Field boundaries are unambiguous.
        let shifted = ObjectRef {
            bucket: "bk".into(),
            key: "".into(),
            ..base.clone()
        };
        let unshifted = ObjectRef {
            bucket: "b".into(),
            key: "k".into(),
            ..base.clone()
        };
        assert_ne!(shifted.case_id(), unshifted.case_id());
        assert!(base.case_id().starts_with("case-") && base.case_id().len() == 37);
    }
}
