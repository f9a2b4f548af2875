//! SeaweedFS filer events, as its webhook notifier posts them:
//!
//! ```json
//! {"key": "/buckets/uploads/photos/a.jpg", "event_type": "create",
//!  "message": {"new_entry": {"name": "a.jpg", "chunks": […], "attributes": {…},
//!              "extended": {"Seaweed-X-Amz-ETag": "<base64>", …}},
//!              "new_parent_path": "/buckets/uploads/photos", "delete_chunks": true}}
//! ```
//!
//! The filer speaks of files, not objects, so most of its events are not uploads. Its S3
//! gateway keeps bucket `B`'s object `K` at `/buckets/B/K`, and:
//!
//! - directories (buckets, "folders", directory markers) are entries too: ignored;
//! - multipart parts are files under `/buckets/B/.uploads/<upload id>/`: ignored (the
//!   completed object is created at its own path, and that is the upload);
//! - in a versioned bucket, each version is a file `/buckets/B/K.versions/v_<id>` whose
//!   `Seaweed-X-Amz-Version-Id` attribute names the version, and nothing is written at
//!   `/buckets/B/K`: the version file **is** the upload of `K`, with that version id. Later
//!   updates of a version file (marked noncurrent) and of the `.versions` directory (the
//!   latest-version pointer) are ignored;
//! - an overwrite of an unversioned object is an `update` whose content differs from the old
//!   entry's: an upload. An `update` whose content is the same (tags, including the
//!   scanner's own, metadata, ACLs) is ignored;
//! - a rename into a bucket puts content at a new key: an upload of the new key;
//! - `/buckets/.system/…` and anything outside the buckets directory are not objects.
//!
//! The document is Go's `encoding/json` of the filer's protobuf messages: byte fields are
//! base64, numbers are JSON numbers.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::{err, EventError, Notice, ObjectRef, Trigger, UploadEvent};
use crate::time::Timestamp;

/// Where the filer keeps buckets unless configured otherwise (`weed filer -dirBuckets`).
pub const DEFAULT_BUCKETS_DIR: &str = "/buckets";

const ETAG: &str = "Seaweed-X-Amz-ETag";
const VERSION_ID: &str = "Seaweed-X-Amz-Version-Id";
const VERSIONS_SUFFIX: &str = ".versions";
const UPLOADS_DIR: &str = ".uploads";

/// Whether a document has the filer event's shape (and none of the S3 ones).
pub(crate) fn is_filer_event(object: &Map<String, Value>) -> bool {
    object.contains_key("event_type") && object.contains_key("message")
}

fn ignored(reason: String) -> Result<Notice, EventError> {
    Ok(Notice::Ignored { reason })
}

/// Parse one filer event, with buckets kept under `buckets_dir`.
pub fn parse(value: &Value, buckets_dir: &str) -> Result<Notice, EventError> {
    let event_type = match value.get("event_type") {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        _ => return Err(err("event_type", "missing or not a string")),
    };
    let key = value.get("key").and_then(Value::as_str).unwrap_or_default();
    let message = value
        .get("message")
        .and_then(Value::as_object)
        .ok_or_else(|| err("message", "missing or not an object"))?;
    let Some(new_entry) = message.get("new_entry").filter(|v| !v.is_null()) else {
        return ignored(format!("SeaweedFS {event_type} of {key:?} creates nothing"));
    };
    if !new_entry.is_object() {
        return Err(err("message.new_entry", "expected an object"));
    }
    let name = match new_entry.get("name") {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        _ => return Err(err("message.new_entry.name", "missing or empty")),
    };
    if new_entry.get("is_directory").and_then(Value::as_bool) == Some(true) {
        return ignored(format!("SeaweedFS {event_type} of directory {key:?}"));
    }
    // The entry's directory: `new_parent_path` when the filer sends it (always, for creates
    // and renames), else the event key's.
    let parent = match message.get("new_parent_path").and_then(Value::as_str) {
        Some(p) if !p.is_empty() => p,
        _ => match key.rsplit_once('/') {
            Some((dir, _)) if key.starts_with('/') => dir,
            _ => return Err(err("key", format!("not an absolute filer path: {key:?}"))),
        },
    };
    let path = if parent.ends_with('/') {
        format!("{parent}{name}")
    } else {
        format!("{parent}/{name}")
    };
    let Some(within) = path
        .strip_prefix(buckets_dir.trim_end_matches('/'))
        .and_then(|rest| rest.strip_prefix('/'))
    else {
        return ignored(format!(
            "{path:?} is outside the buckets directory {buckets_dir:?}"
        ));
    };
    let Some((bucket, object_key)) = within
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
    else {
        return ignored(format!("{path:?} is not an object in a bucket"));
    };
    if bucket.starts_with('.') {
        return ignored(format!("{path:?} is the filer's own ({bucket})"));
    }
    if object_key == UPLOADS_DIR || object_key.starts_with(&format!("{UPLOADS_DIR}/")) {
        return ignored(format!("{path:?} is a part of a multipart upload"));
    }

    let extended = |name: &str| extended_text(new_entry, name);
    // A version file of a versioned bucket: the upload of the object it is a version of.
    let version = extended(VERSION_ID)?.filter(|v| !v.is_empty() && v != "null");
    let version_of = object_key
        .rsplit_once('/')
        .and_then(|(dir, _)| dir.strip_suffix(VERSIONS_SUFFIX))
        .filter(|k| !k.is_empty());
    let object_key = match (&version, version_of) {
        (Some(_), Some(of)) => of,
        _ => object_key,
    };

    if let Some(old) = message.get("old_entry").filter(|v| !v.is_null()) {
        let renamed = old.get("name").and_then(Value::as_str) != Some(name) || key != path;
        if !renamed && content_identity(old) == content_identity(new_entry) {
            return ignored(format!(
                "SeaweedFS {event_type} of {path:?} changes metadata only"
            ));
        }
    }

    let attributes = new_entry.get("attributes");
    let number = |field: &str| attributes.and_then(|a| a.get(field));
    let size = match number("file_size") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            err(
                "message.new_entry.attributes.file_size",
                format!("not a size: {v}"),
            )
        })?),
    };
    let uploaded_at = number("mtime")
        .and_then(Value::as_i64)
        .and_then(|s| Timestamp::from_second(s).ok());
    let etag = match extended(ETAG)? {
        Some(e) if !e.is_empty() => Some(e.trim_matches('"').to_string()),
        _ => md5_hex(new_entry)?,
    };
    Ok(Notice::Upload(UploadEvent {
        object: ObjectRef {
            bucket: bucket.to_string(),
            key: object_key.to_string(),
            version_id: version,
            etag,
        },
        size,
        event_name: format!("SeaweedFS:{event_type}"),
        uploaded_at,
        trigger: Trigger::SeaweedFs,
        upload_facts: Default::default(),
    }))
}

fn base64_field(value: &Value, place: &str) -> Result<Vec<u8>, EventError> {
    let text = value
        .as_str()
        .ok_or_else(|| err(place, format!("expected base64 text, found {value}")))?;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| err(place, format!("not base64: {e}")))
}

/// An `extended` attribute of an entry as text (the filer stores bytes; the S3 gateway's are
/// UTF-8).
fn extended_text(entry: &Value, name: &str) -> Result<Option<String>, EventError> {
    let Some(value) = entry.get("extended").and_then(|x| x.get(name)) else {
        return Ok(None);
    };
    let place = format!("message.new_entry.extended.{name}");
    let bytes = base64_field(value, &place)?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| err(place, "not UTF-8"))
}

/// The entry's MD5 as hex: the ETag of a single-part object when the gateway stored none.
fn md5_hex(entry: &Value) -> Result<Option<String>, EventError> {
    match entry.get("attributes").and_then(|a| a.get("md5")) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let bytes = base64_field(v, "message.new_entry.attributes.md5")?;
            Ok((!bytes.is_empty()).then(|| crate::digest::to_hex(&bytes)))
        }
    }
}

/// What an entry's bytes are: size, MD5, inline content and where each chunk lives. Equal
/// for an update that only touched tags or metadata; different for an overwrite.
fn content_identity(entry: &Value) -> Value {
    let attr = |f: &str| {
        entry
            .get("attributes")
            .and_then(|a| a.get(f))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let chunks: Vec<Value> = entry
        .get("chunks")
        .and_then(Value::as_array)
        .map(|chunks| {
            chunks
                .iter()
                .map(|c| {
                    let field = |f: &str| c.get(f).cloned().unwrap_or(Value::Null);
                    // The filer sends a chunk's location as `fid`, and sometimes also as the
                    // older `file_id` text: compare the one both sides have.
                    let location = c.get("fid").cloned().unwrap_or_else(|| field("file_id"));
                    Value::Array(vec![
                        field("offset"),
                        field("size"),
                        field("modified_ts_ns"),
                        field("e_tag"),
                        location,
                    ])
                })
                .collect()
        })
        .unwrap_or_default();
    Value::Array(vec![
        attr("file_size"),
        attr("md5"),
        entry.get("content").cloned().unwrap_or(Value::Null),
        Value::Array(chunks),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn create(path: &str) -> Value {
        let (parent, name) = path.rsplit_once('/').unwrap();
        json!({"key": path, "event_type": "create", "message": {
            "new_entry": {"name": name,
                "chunks": [{"size": 5, "modified_ts_ns": 1, "e_tag": "x",
                    "fid": {"volume_id": 1, "file_key": 2, "cookie": 3}}],
                "attributes": {"file_size": 5, "mtime": 1796157163, "md5": "XrY7u+Ae7tCTyyK7j1rNww=="},
                "extended": {"Seaweed-X-Amz-ETag": b64("5eb63bbbe01eeed093cb22bb8f5acdc3")}},
            "delete_chunks": true, "new_parent_path": parent}})
    }

    fn upload(n: Notice) -> UploadEvent {
        match n {
            Notice::Upload(u) => u,
            other => panic!("expected an upload, got {other:?}"),
        }
    }

    fn ignored_because(n: Notice) -> String {
        match n {
            Notice::Ignored { reason } => reason,
            other => panic!("expected it ignored, got {other:?}"),
        }
    }

    #[test]
    fn keys_arrive_as_they_are() {
        for key in [
            "plain.jpg",
            "with space/and+plus.jpg",
            "100%/%20literal.png",
            "ünïcødé/🌞 photo.jpeg",
            "deep/ly/nested/dirs/file",
        ] {
            let u = upload(parse(&create(&format!("/buckets/b/{key}")), "/buckets").unwrap());
            assert_eq!(u.object.bucket, "b");
            assert_eq!(u.object.key, key);
            assert_eq!(u.trigger, Trigger::SeaweedFs);
            assert_eq!(u.size, Some(5));
            assert_eq!(
                u.object.etag.as_deref(),
                Some("5eb63bbbe01eeed093cb22bb8f5acdc3")
            );
        }
    }

    #[test]
    fn another_buckets_directory() {
        let u = upload(parse(&create("/s3/b/k"), "/s3/").unwrap());
        assert_eq!(
            (u.object.bucket.as_str(), u.object.key.as_str()),
            ("b", "k")
        );
        ignored_because(parse(&create("/buckets/b/k"), "/s3").unwrap());
        ignored_because(parse(&create("/s3x/b/k"), "/s3").unwrap());
    }

    #[test]
    fn etag_falls_back_to_the_md5() {
        let mut v = create("/buckets/b/k");
        v["message"]["new_entry"]["extended"] = json!({});
        let u = upload(parse(&v, "/buckets").unwrap());
        assert_eq!(
            u.object.etag.as_deref(),
            Some("5eb63bbbe01eeed093cb22bb8f5acdc3"),
            "hex of the base64 MD5"
        );
    }

    #[test]
    fn an_object_named_like_a_version_file_without_a_version_is_itself() {
        let u = upload(parse(&create("/buckets/b/x.versions/v_1"), "/buckets").unwrap());
        assert_eq!(u.object.key, "x.versions/v_1");
        assert_eq!(u.object.version_id, None);
    }

    #[test]
    fn bad_documents_name_the_field() {
        let mut v = create("/buckets/b/k");
        v["message"]["new_entry"]["extended"]["Seaweed-X-Amz-Version-Id"] = json!("***");
        let e = parse(&v, "/buckets").unwrap_err();
        assert_eq!(
            e.place,
            "message.new_entry.extended.Seaweed-X-Amz-Version-Id"
        );
        let mut v = create("/buckets/b/k");
        v["message"]["new_entry"]["attributes"]["file_size"] = json!(-4);
        let e = parse(&v, "/buckets").unwrap_err();
        assert_eq!(e.place, "message.new_entry.attributes.file_size");
        let mut v = create("/buckets/b/k");
        v["message"]["new_entry"]["name"] = json!("");
        assert_eq!(
            parse(&v, "/buckets").unwrap_err().place,
            "message.new_entry.name"
        );
        let v = json!({"key": "/buckets/b/k", "event_type": "create", "message": 3});
        assert_eq!(parse(&v, "/buckets").unwrap_err().place, "message");
        let v = json!({"key": "relative", "event_type": "create",
            "message": {"new_entry": {"name": "k"}}});
        assert_eq!(parse(&v, "/buckets").unwrap_err().place, "key");
    }
}
