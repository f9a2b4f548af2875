//! Uploads through the whole pipeline on the local stack, with the real SDK, the real
//! `hashgate` CLI and the real `scanner` worker: S3 notification → SQS → scanner →
//! quarantine → case. Afterwards every matching object is in quarantine under retention and
//! gone from its bucket, every other object is untouched byte for byte, and there is exactly
//! one case per match.

use hashgate_core::quarantine::metadata;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use hashgate_core::event::ObjectRef;
use hashgate_e2e::{
    case_ids, eventually, get, import_list, put, put_multipart, stored_versions, tags, Stack,
};

const WAIT: Duration = Duration::from_secs(90);
const NOT_VISIBLE: aws_sdk_sqs::types::QueueAttributeName =
    aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible;

/// Content on the lists (harmless bytes standing in for known material).
const BAD_ONE: &[u8] = b"known item one";
const BAD_TWO: &[u8] = b"known item two, listed by SHA-256";

/// Multipart content: two parts, so its ETag is not an MD5 and the body must be read.
fn multipart_content() -> Vec<u8> {
    (0..(5 * 1024 * 1024 + 4096))
        .map(|i| (i % 251) as u8)
        .collect()
}

/// Assert `object` was quarantined: the copy under its case, under retention, with the same
/// bytes and its origin in the metadata; and no version of the content left in the bucket.
async fn assert_quarantined(
    stack: &Stack,
    s3: &aws_sdk_s3::Client,
    object: &ObjectRef,
    content: &[u8],
) {
    let quarantine = stack.var("HASHGATE_QUARANTINE_BUCKET");
    let case_id = object.case_id();
    let key = format!("cases/{case_id}/object");
    let head = s3
        .head_object()
        .bucket(quarantine)
        .key(&key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{} not in quarantine at {key}: {e:?}", object.key));
    assert_eq!(
        head.object_lock_mode().map(|m| m.as_str()),
        Some("GOVERNANCE"),
        "{}",
        object.key
    );
    let until = head
        .object_lock_retain_until_date()
        .expect("retention date");
    let days = (until.secs()
        - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64)
        / 86_400;
    assert!((363..=365).contains(&days), "retained for {days} days");
    let meta = head.metadata().expect("metadata");
    assert_eq!(
        meta.get(metadata::ORIGIN_KEY).map(String::as_str),
        Some(object.key.as_str())
    );
    assert_eq!(
        meta.get(metadata::CASE_ID).map(String::as_str),
        Some(case_id.as_str())
    );
    assert_eq!(get(s3, quarantine, &key).await.as_deref(), Some(content));
    let left = stored_versions(s3, &object.bucket, &object.key).await;
    assert!(
        !left.iter().any(|v| v == content),
        "{}: the matching content is still in the bucket",
        object.key
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_of_every_kind_are_scanned_and_matches_quarantined() {
    let stack = Stack::start();
    let sdk = stack.sdk().await;
    let s3 = hashgate_aws::s3_client(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let uploads = stack.var("HASHGATE_UPLOAD_BUCKET").to_string();
    let mp = multipart_content();
    import_list(&stack, &[BAD_ONE, &mp], &[BAD_TWO]);
    let worker = stack.worker(&[]);

    let clean: Vec<(&str, Vec<u8>)> = vec![
        ("plain.txt", b"hello".to_vec()),
        ("dir/sub/a b+c%.txt", b"spaces, plus and percent".to_vec()),
        ("unicode/ünïcødé 🌞.txt", b"unicode key".to_vec()),
        ("zero-byte", Vec::new()),
    ];
    for (key, body) in &clean {
        put(&s3, &uploads, key, body).await;
    }
    let mut bad = vec![
        (
            put(&s3, &uploads, "bad/one.jpg", BAD_ONE).await,
            BAD_ONE.to_vec(),
        ),
        (
            put(&s3, &uploads, "bad/two with space+plus%.jpg", BAD_TWO).await,
            BAD_TWO.to_vec(),
        ),
    ];

    // A multipart upload of listed content.
    let done = put_multipart(
        &s3,
        &uploads,
        "bad/multipart.bin",
        &[&mp[..5 * 1024 * 1024], &mp[5 * 1024 * 1024..]],
    )
    .await;
    assert!(
        done.etag.as_deref().unwrap().contains('-'),
        "a multipart ETag"
    );
    bad.push((ObjectRef { etag: None, ..done }, mp.clone()));

    // CopyObject: listed content copied in from another bucket, and a clean copy.
    let staging = stack.var("HASHGATE_LISTS_BUCKET");
    put(&s3, staging, "staging/copy-source.jpg", BAD_ONE).await;
    let copied = s3
        .copy_object()
        .bucket(&uploads)
        .key("copied/bad.jpg")
        .copy_source(format!("{staging}/staging/copy-source.jpg"))
        .send()
        .await
        .unwrap();
    bad.push((
        ObjectRef {
            bucket: uploads.clone(),
            key: "copied/bad.jpg".into(),
            version_id: copied.version_id().map(str::to_string),
            etag: None,
        },
        BAD_ONE.to_vec(),
    ));

    let cases = stack.var("HASHGATE_CASE_TABLE");
    let ids = eventually("one case per match", WAIT, || async {
        let ids = case_ids(&dynamo, cases).await;
        (ids.len() >= bad.len()).then_some(ids)
    })
    .await;
    for (key, _) in &clean {
        eventually(&format!("{key} tagged clean"), WAIT, || async {
            (tags(&s3, &uploads, key, None)
                .await
                .get("hashgate-scan")
                .map(String::as_str)
                == Some("clean"))
            .then_some(())
        })
        .await;
    }

    let expected: Vec<String> = {
        let mut v: Vec<String> = bad.iter().map(|(o, _)| o.case_id()).collect();
        v.sort();
        v
    };
    assert_eq!(
        ids,
        expected,
        "exactly one case per match\n{}",
        worker.log()
    );
    for (object, content) in &bad {
        assert_quarantined(&stack, &s3, object, content).await;
    }
    for (key, body) in &clean {
        assert_eq!(
            get(&s3, &uploads, key).await.as_deref(),
            Some(body.as_slice()),
            "{key} untouched"
        );
    }
    // The clean copy's source, and the staging object outside the scanned bucket, untouched.
    assert_eq!(
        get(&s3, staging, "staging/copy-source.jpg")
            .await
            .as_deref(),
        Some(BAD_ONE)
    );
}

/// Wait until the case of `object` exists.
async fn wait_for_case(
    dynamo: &aws_sdk_dynamodb::Client,
    table: &str,
    object: &ObjectRef,
    what: &str,
) {
    let case_id = object.case_id();
    eventually(what, WAIT, || async {
        case_ids(dynamo, table)
            .await
            .contains(&case_id)
            .then_some(())
    })
    .await;
}

async fn send(stack: &Stack, sqs: &aws_sdk_sqs::Client, body: &str) {
    sqs.send_message()
        .queue_url(stack.var("HASHGATE_SCAN_QUEUE_URL"))
        .message_body(body)
        .send()
        .await
        .unwrap();
}

fn s3_notification(bucket: &str, key_encoded: &str, etag: &str) -> String {
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-21T10:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key_encoded, "size": 1, "eTag": etag}}
    }]})
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn races_duplicates_test_events_and_malformed_messages() {
    let stack = Stack::start();
    let sdk = stack.sdk().await;
    let s3 = hashgate_aws::s3_client(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let uploads = stack.var("HASHGATE_UPLOAD_BUCKET").to_string();
    import_list(&stack, &[BAD_ONE], &[]);

    // Before any scanner runs: an object deleted before its scan, an overwrite between the
    // event and the scan, malformed messages and a test event in the queue.
    let deleted = put(&s3, &uploads, "race/deleted.jpg", BAD_ONE).await;
    s3.delete_object()
        .bucket(&uploads)
        .key("race/deleted.jpg")
        .send()
        .await
        .unwrap();
    let first = put(&s3, &uploads, "race/overwritten.jpg", BAD_ONE).await;
    put(
        &s3,
        &uploads,
        "race/overwritten.jpg",
        b"the owner's new, clean version",
    )
    .await;
    send(&stack, &sqs, "{not json").await;
    send(&stack, &sqs, r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{}}}]}"#).await;
    send(&stack, &sqs, r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-21T10:00:00Z","Bucket":"x","RequestId":"r","HostId":"h"}"#).await;

    let worker = stack.worker(&[]);
    let cases = stack.var("HASHGATE_CASE_TABLE");
    eventually(
        "cases for the deleted and the overwritten uploads",
        WAIT,
        || async { (case_ids(&dynamo, cases).await.len() >= 2).then_some(()) },
    )
    .await;
    eventually("the new version tagged clean", WAIT, || async {
        (tags(&s3, &uploads, "race/overwritten.jpg", None)
            .await
            .get("hashgate-scan")
            .map(String::as_str)
            == Some("clean"))
        .then_some(())
    })
    .await;
    // The scanned version was quarantined, by its version; the owner's new one is untouched.
    assert_quarantined(&stack, &s3, &first, BAD_ONE).await;
    assert_eq!(
        get(&s3, &uploads, "race/overwritten.jpg").await.as_deref(),
        Some(&b"the owner's new, clean version"[..])
    );
    // Deleted by its owner before the scan, yet still stored as a noncurrent version: the
    // content is quarantined all the same.
    assert_quarantined(&stack, &s3, &deleted, BAD_ONE).await;

    // Duplicates and replays of a handled event converge on the one case.
    let dup = put(&s3, &uploads, "dup/item.jpg", BAD_ONE).await;
    wait_for_case(&dynamo, cases, &dup, "a case for dup/item.jpg").await;
    let replay = s3_notification(&uploads, "dup/item.jpg", dup.etag.as_deref().unwrap());
    send(&stack, &sqs, &replay).await;
    send(&stack, &sqs, &replay).await;
    let marker = put(&s3, &uploads, "dup/after-the-replays.txt", b"fine").await;
    eventually("the marker scanned after the replays", WAIT, || async {
        tags(&s3, &uploads, &marker.key, None)
            .await
            .contains_key("hashgate-scan")
            .then_some(())
    })
    .await;
    assert_eq!(case_ids(&dynamo, cases).await.len(), 3, "{}", worker.log());

    // The malformed messages failed alone: held for redelivery, never deleted. (Handled
    // messages leave the in-flight count once the worker deletes them.)
    eventually(
        "only the two malformed messages in flight",
        WAIT,
        || async {
            let attrs = sqs
                .get_queue_attributes()
                .queue_url(stack.var("HASHGATE_SCAN_QUEUE_URL"))
                .attribute_names(NOT_VISIBLE)
                .send()
                .await
                .unwrap();
            let in_flight: Option<u32> = attrs
                .attributes()
                .and_then(|a| a.get(&NOT_VISIBLE))
                .and_then(|v| v.parse().ok());
            (in_flight == Some(2)).then_some(())
        },
    )
    .await;
    let log = worker.log();
    assert!(log.contains("malformed message"), "{log}");
    assert!(log.contains("s3:TestEvent acknowledged"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn warm_scanners_take_new_lists_refuse_bad_filters_and_respect_owner_tags() {
    let stack = Stack::start();
    let sdk = stack.sdk().await;
    let s3 = hashgate_aws::s3_client(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let uploads = stack.var("HASHGATE_UPLOAD_BUCKET").to_string();
    let cases = stack.var("HASHGATE_CASE_TABLE");
    import_list(&stack, &[BAD_ONE], &[]);
    let worker = stack.worker(&[]);

    let first = put(&s3, &uploads, "warm/one.jpg", BAD_ONE).await;
    wait_for_case(&dynamo, cases, &first, "the first match").await;
    // A list imported while the scanner runs: picked up within the refresh interval (one
    // second here), after which it is in force.
    import_list(&stack, &[BAD_TWO], &[]);
    eventually(
        "the new filter loaded by the running scanner",
        WAIT,
        || async {
            worker
                .log()
                .contains("filter snapshot loaded entries=2 store_version=2")
                .then_some(())
        },
    )
    .await;
    let second = put(&s3, &uploads, "warm/two.jpg", BAD_TWO).await;
    wait_for_case(
        &dynamo,
        cases,
        &second,
        "a match on the newly imported list",
    )
    .await;

    // A damaged manifest is refused loudly; matching goes on with the last good filter.
    s3.put_object()
        .bucket(stack.var("HASHGATE_FILTER_BUCKET"))
        .key(hashgate_core::manifest::MANIFEST_KEY)
        .body(ByteStream::from_static(
            b"{\"format\": \"hashgate-filter-manifest/1\", \"manif",
        ))
        .send()
        .await
        .unwrap();
    eventually("the damaged manifest refused", WAIT, || async {
        worker.log().contains("filter REFUSED").then_some(())
    })
    .await;
    let third = put(&s3, &uploads, "warm/three.jpg", BAD_ONE).await;
    wait_for_case(&dynamo, cases, &third, "a match after the refusal").await;

    // The result tag joins the owner's tags and never replaces them; with no room left
    // (S3 allows ten), the object is left as it is.
    let tagged = s3
        .put_object()
        .bucket(&uploads)
        .key("warm/owner-tags.txt")
        .body(ByteStream::from_static(b"owner's file"))
        .tagging("project=alpha&team=blue")
        .send()
        .await
        .unwrap();
    let full: String = (0..10)
        .map(|i| format!("k{i}=v{i}"))
        .collect::<Vec<_>>()
        .join("&");
    s3.put_object()
        .bucket(&uploads)
        .key("warm/ten-tags.txt")
        .body(ByteStream::from_static(b"owner's other file"))
        .tagging(full)
        .send()
        .await
        .unwrap();
    eventually("the object with ten tags scanned", WAIT, || async {
        worker
            .log()
            .contains(r#""key":"warm/ten-tags.txt""#)
            .then_some(())
    })
    .await;
    eventually("owner tags kept, result added", WAIT, || async {
        let t = tags(&s3, &uploads, "warm/owner-tags.txt", None).await;
        (t.len() == 3).then_some(t)
    })
    .await
    .iter()
    .zip([
        ("hashgate-scan", "clean"),
        ("project", "alpha"),
        ("team", "blue"),
    ])
    .for_each(|((k, v), (ek, ev))| assert_eq!((k.as_str(), v.as_str()), (ek, ev)));
    assert!(tagged.version_id().is_some());
    let ten = tags(&s3, &uploads, "warm/ten-tags.txt", None).await;
    assert_eq!(
        ten.len(),
        10,
        "no room: the owner's ten tags stay as they were"
    );
    assert!(!ten.contains_key("hashgate-scan"));

    // Every case reached the review queue, without the object's content.
    let mut announced = Vec::new();
    for _ in 0..5 {
        let out = sqs
            .receive_message()
            .queue_url(stack.var("HASHGATE_REVIEW_QUEUE_URL"))
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            let body: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
            announced.push(body["case_id"].as_str().unwrap().to_string());
        }
    }
    for object in [&first, &second, &third] {
        assert!(
            announced.contains(&object.case_id()),
            "{} not announced: {announced:?}",
            object.key
        );
    }
}
