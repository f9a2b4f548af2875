//! Every store's notification, as it sends it (`tests/fixtures/events/`), normalised to the
//! same upload — or ignored, with the reason — by `hashgate_core::event::parse_body`.

use std::path::Path;

use hashgate_core::event::{parse_body, Notice, ObjectRef, Trigger, UploadEvent};

fn fixture(name: &str) -> Vec<Notice> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/events")
        .join(name);
    let body = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    parse_body(&body).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn one_upload(name: &str) -> UploadEvent {
    let mut notices = fixture(name);
    assert_eq!(notices.len(), 1, "{name}: {notices:?}");
    match notices.remove(0) {
        Notice::Upload(u) => u,
        other => panic!("{name}: expected an upload, got {other:?}"),
    }
}

fn ignored(name: &str) -> String {
    let notices = fixture(name);
    assert_eq!(notices.len(), 1, "{name}: {notices:?}");
    match &notices[0] {
        Notice::Ignored { reason } => reason.clone(),
        other => panic!("{name}: expected it ignored, got {other:?}"),
    }
}

fn object(bucket: &str, key: &str, version: Option<&str>, etag: &str) -> ObjectRef {
    ObjectRef {
        bucket: bucket.into(),
        key: key.into(),
        version_id: version.map(str::to_string),
        etag: Some(etag.into()),
    }
}

const HOSTILE_KEY: &str = "holiday 2026/a+b 100%/ünï 🌞.jpg";

#[test]
fn ceph_keys_are_taken_as_they_are() {
    let u = one_upload("ceph/put-unversioned.json");
    assert_eq!(u.trigger, Trigger::Ceph);
    assert_eq!(
        u.object,
        object(
            "uploads",
            HOSTILE_KEY,
            None,
            "9b2cf535f27731c974343645a3985328"
        ),
        "not URL-decoded, and an empty versionId is no version"
    );
    assert_eq!(u.size, Some(24576), "a size sent as a string");
    assert_eq!(u.event_name, "ObjectCreated:Put");
    assert_eq!(u.upload_facts.bucket_owner.as_deref(), Some("tenant-owner"));
    assert_eq!(
        u.upload_facts.source_ip, None,
        "Ceph sends an empty address"
    );
    assert_eq!(
        u.uploaded_at.map(hashgate_core::time::rfc3339).as_deref(),
        Some("2026-11-30T09:12:44Z")
    );

    let u = one_upload("ceph/multipart-versioned.json");
    assert_eq!(
        u.object,
        object(
            "locked",
            "videos/2026/clip.mp4",
            Some("2vFq0Yk7mB3uXkR9hT1cZpLwS4eNdAo"),
            "e3b98d0c0a5f1a7c11d7d8f0b6a3c1f2-14"
        )
    );
    assert_eq!(u.size, Some(73_400_320));
    assert_eq!(
        u.upload_facts
            .source_ip
            .map(|ip| ip.address.to_string())
            .as_deref(),
        Some("192.0.2.44")
    );

    // Older releases prefix the event name with `s3:`; the `%2B` is part of the key.
    let u = one_upload("ceph/put-older-release.json");
    assert_eq!(u.event_name, "ObjectCreated:Post");
    assert_eq!(u.object.key, "my image%2B1.jpg");

    assert!(ignored("ceph/delete.json").contains("ObjectRemoved:Delete"));
}

#[test]
fn minio_keys_are_url_decoded_inside_its_wrapper() {
    let u = one_upload("minio/webhook-put.json");
    assert_eq!(u.trigger, Trigger::Minio);
    assert_eq!(
        u.object,
        object(
            "uploads",
            HOSTILE_KEY,
            None,
            "9b2cf535f27731c974343645a3985328"
        )
    );
    assert_eq!(u.event_name, "ObjectCreated:Put", "the s3: prefix dropped");
    assert_eq!(
        u.upload_facts
            .source_ip
            .map(|ip| ip.address.to_string())
            .as_deref(),
        Some("198.51.100.23")
    );

    let u = one_upload("minio/amqp-multipart-versioned.json");
    assert_eq!(
        u.object,
        object(
            "locked",
            "videos/2026/clip.mp4",
            Some("0c2f8a3e-6b1d-4e7a-9c5f-1d2e3f4a5b6c"),
            "e3b98d0c0a5f1a7c11d7d8f0b6a3c1f2-14"
        )
    );
    assert_eq!(u.event_name, "ObjectCreated:CompleteMultipartUpload");

    assert!(ignored("minio/webhook-delete.json").contains("s3:ObjectRemoved:Delete"));
}

#[test]
fn seaweedfs_uploads_are_found_among_its_filer_events() {
    let u = one_upload("seaweedfs/create-unicode-key.json");
    assert_eq!(u.trigger, Trigger::SeaweedFs);
    assert_eq!(
        u.object,
        object(
            "plain",
            "a b+c%d/ünï 🌞.jpg",
            None,
            "5eb63bbbe01eeed093cb22bb8f5acdc3"
        )
    );
    assert_eq!(u.size, Some(11));
    assert_eq!(
        u.uploaded_at.map(hashgate_core::time::rfc3339).as_deref(),
        Some("2026-12-01T20:32:43Z")
    );

    // An overwrite is an update with other content: a new upload, with its own ETag.
    let u = one_upload("seaweedfs/overwrite.json");
    assert_eq!(u.object.key, "a b+c%d/ünï 🌞.jpg");
    assert_ne!(
        u.object.etag.as_deref(),
        Some("5eb63bbbe01eeed093cb22bb8f5acdc3")
    );

    let u = one_upload("seaweedfs/copy.json");
    assert_eq!(u.object.key, "copied.jpg");

    // A completed multipart upload is created at its own path, with the multipart ETag.
    let u = one_upload("seaweedfs/multipart-complete.json");
    assert_eq!(
        u.object,
        object(
            "plain",
            "big/file.bin",
            None,
            "b80965183800174acbfed42ed19781c2-2"
        )
    );
    assert_eq!(u.size, Some(5 * 1024 * 1024 + 100));

    // In a versioned bucket the version file is the upload of its object.
    let u = one_upload("seaweedfs/version-create.json");
    assert_eq!(u.object.bucket, "versioned");
    assert_eq!(u.object.key, "photo.jpg");
    assert_eq!(
        u.object.version_id.as_deref(),
        Some("6712c49205572a482c5104c6a8e51a37")
    );
}

#[test]
fn seaweedfs_events_that_are_not_uploads_are_ignored_with_a_reason() {
    for (name, because) in [
        ("seaweedfs/tag-update.json", "metadata only"),
        ("seaweedfs/version-noncurrent.json", "metadata only"),
        ("seaweedfs/versions-directory-update.json", "directory"),
        ("seaweedfs/directory-marker.json", "directory"),
        ("seaweedfs/multipart-part.json", "multipart upload"),
        ("seaweedfs/delete.json", "creates nothing"),
        ("seaweedfs/system-file.json", "the filer's own"),
    ] {
        let reason = ignored(name);
        assert!(reason.contains(because), "{name}: {reason}");
    }
}

#[test]
fn the_same_upload_has_the_same_case_from_every_store() {
    // Ceph and MinIO describe the same object (same bucket, key and ETag) in their own
    // ways: one case id, whichever store or ingress delivered it.
    let ceph = one_upload("ceph/put-unversioned.json");
    let minio = one_upload("minio/webhook-put.json");
    assert_eq!(ceph.object.case_id(), minio.object.case_id());
}
