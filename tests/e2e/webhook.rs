//! The webhook ingress end to end: the real scanner worker with `HASHGATE_INGRESS=http` on
//! the local stack, taking notifications in the shapes Ceph RGW, MinIO and SeaweedFS push.
//!
//! A listed upload announced while the case store is unreachable is accepted (`202`), kept
//! in the spool through a SIGKILL, and becomes exactly one case once a worker with a working
//! store starts on the same spool. Clean uploads announced by each store's shape are tagged
//! clean. The token is required in each store's form, bad bodies are refused with their
//! reason, and SIGTERM drains the worker.

use std::time::Duration;

use base64::Engine as _;
use hashgate_aws::dynamo::DynamoCases;
use hashgate_core::case::CaseStatus;
use hashgate_core::event::ObjectRef;
use hashgate_e2e::{
    case_ids, ceph_notification, eventually, free_port, get, import_list, put, query_escape, tags,
    Stack, Worker,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(90);
const TOKEN: &str = "webhook-e2e-token-0123456789abcdef";

fn ceph(object: &ObjectRef, size: usize) -> Value {
    ceph_notification(object, size)
}

fn minio(object: &ObjectRef, size: usize) -> Value {
    let mut record = json!({
        "eventVersion": "2.0", "eventSource": "minio:s3", "awsRegion": "",
        "eventTime": "2026-12-01T10:00:00.000Z", "eventName": "s3:ObjectCreated:Put",
        "userIdentity": {"principalId": "uploader"},
        "requestParameters": {"principalId": "uploader", "region": "", "sourceIPAddress": "192.0.2.7"},
        "responseElements": {"x-amz-request-id": "187CB7A6A7E0C0A1"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "Config",
            "bucket": {"name": object.bucket, "ownerIdentity": {"principalId": "uploader"},
                "arn": format!("arn:aws:s3:::{}", object.bucket)},
            "object": {"key": query_escape(&object.key), "size": size,
                "eTag": object.etag.clone().unwrap_or_default(),
                "contentType": "application/octet-stream", "sequencer": "187CB7A6A8F2D5E4"}},
        "source": {"host": "192.0.2.7", "port": "", "userAgent": "MinIO"}});
    if let Some(v) = &object.version_id {
        record["s3"]["object"]["versionId"] = json!(v);
    }
    json!({"EventName": "s3:ObjectCreated:Put",
        "Key": format!("{}/{}", object.bucket, object.key), "Records": [record]})
}

fn seaweedfs(object: &ObjectRef, size: usize) -> Value {
    let path = format!("/buckets/{}/{}", object.bucket, object.key);
    let (parent, name) = path.rsplit_once('/').expect("a path");
    let etag =
        base64::engine::general_purpose::STANDARD.encode(object.etag.clone().unwrap_or_default());
    json!({"key": path, "event_type": "create", "message": {
        "new_entry": {"name": name,
            "attributes": {"file_size": size, "mtime": 1_796_157_163, "file_mode": 432},
            "extended": {"Seaweed-X-Amz-ETag": etag}},
        "delete_chunks": true, "new_parent_path": parent}})
}

struct Hook {
    url: String,
    http: reqwest::Client,
}

impl Hook {
    async fn post(&self, auth: Option<String>, body: String) -> (u16, Value) {
        let mut request = self.http.post(format!("{}/events", self.url)).body(body);
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        let response = request.send().await.expect("POST the webhook");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> u16 {
        match self.http.get(format!("{}{path}", self.url)).send().await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    async fn metrics(&self, auth: Option<String>) -> (u16, String) {
        let mut request = self.http.get(format!("{}/metrics", self.url));
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        let response = request.send().await.expect("GET /metrics");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    async fn wait_up(&self) {
        let hook = self;
        eventually("the webhook to listen", WAIT, || async move {
            (hook.get("/healthz").await == 200).then_some(())
        })
        .await;
    }
}

fn bearer() -> Option<String> {
    Some(format!("Bearer {TOKEN}"))
}

fn pending(spool: &std::path::Path) -> usize {
    std::fs::read_dir(spool.join("pending"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn start(stack: &Stack, port: u16, spool: &std::path::Path, extra: &[(&str, &str)]) -> Worker {
    let listen = format!("127.0.0.1:{port}");
    let spool = spool.to_str().expect("a UTF-8 path").to_string();
    let mut vars = vec![
        ("HASHGATE_INGRESS", "http"),
        ("HASHGATE_HTTP_LISTEN", listen.as_str()),
        ("HASHGATE_HTTP_TOKEN", TOKEN),
        ("HASHGATE_SPOOL_DIR", spool.as_str()),
        ("HASHGATE_MAX_ATTEMPTS", "50"),
    ];
    vars.extend_from_slice(extra);
    stack.worker(&vars)
}

#[tokio::test(flavor = "multi_thread")]
async fn stores_push_to_the_webhook_and_nothing_accepted_is_lost() {
    let stack = Stack::start();
    let sdk = stack.sdk().await;
    let s3 = hashgate_aws::s3_client(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let case_table = stack.var("HASHGATE_CASE_TABLE").to_string();
    let cases = DynamoCases::new(
        dynamo.clone(),
        &case_table,
        stack.var("HASHGATE_AUDIT_TABLE"),
    );
    let uploads = stack.var("HASHGATE_UPLOAD_BUCKET").to_string();
    let listed = b"webhook e2e: listed content".as_slice();
    import_list(&stack, &[listed], &[]);

    let spool_dir = tempfile::tempdir().unwrap();
    let spool = spool_dir.path();
    let port = free_port();
    let hook = Hook {
        url: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::new(),
    };

    // A worker whose case store is unreachable: it accepts, fails, and keeps the event.
    let mut broken = start(
        &stack,
        port,
        spool,
        &[("HASHGATE_CASE_TABLE", "no-such-case-table")],
    );
    hook.wait_up().await;
    let key = "webhook/listed ünï+100%.bin";
    let object = put(&s3, &uploads, key, listed).await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("minio:{TOKEN}"))
    );
    let (status, body) = hook
        .post(Some(basic), minio(&object, listed.len()).to_string())
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 1, "{body}");
    eventually("the failed scan to be counted", WAIT, || {
        let log = broken.log();
        async move { log.contains("will retry").then_some(()) }
    })
    .await;
    broken.signal("KILL");
    broken.wait_exit(WAIT).expect("killed");
    assert_eq!(pending(spool), 1, "the accepted event is still spooled");
    assert!(case_ids(&dynamo, &case_table).await.is_empty());

    // A worker on the same spool, with its store: the event becomes exactly one case.
    let mut worker = start(&stack, port, spool, &[]);
    hook.wait_up().await;
    let id = object.case_id();
    let case = eventually("the spooled event's case", WAIT, || {
        let (cases, id) = (&cases, id.clone());
        async move { cases.get(&id).await.ok().flatten() }
    })
    .await;
    assert_eq!(case.status, CaseStatus::PendingReview);
    eventually("the spool to empty", WAIT, || async move {
        (pending(spool) == 0).then_some(())
    })
    .await;
    assert_eq!(
        case_ids(&dynamo, &case_table).await,
        std::slice::from_ref(&id)
    );
    assert_eq!(get(&s3, &uploads, key).await, None, "quarantined");

    // Clean uploads, announced the Ceph way (raw key) and the SeaweedFS way.
    let clean_a = b"webhook e2e: clean, via Ceph".as_slice();
    let clean_b = b"webhook e2e: clean, via SeaweedFS".as_slice();
    let a = put(&s3, &uploads, "webhook/ceph dir/a+b %20.txt", clean_a).await;
    let b = put(&s3, &uploads, "webhook/seaweed/ünï 🌞.txt", clean_b).await;
    let (status, body) = hook
        .post(bearer(), ceph(&a, clean_a.len()).to_string())
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = hook
        .post(
            Some(TOKEN.to_string()),
            seaweedfs(&b, clean_b.len()).to_string(),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    for object in [&a, &b] {
        eventually(&format!("{} tagged clean", object.key), WAIT, || {
            let (s3, object) = (&s3, object.clone());
            async move {
                let t = tags(
                    s3,
                    &object.bucket,
                    &object.key,
                    object.version_id.as_deref(),
                )
                .await;
                (t.get("hashgate-scan").map(String::as_str) == Some("clean")).then_some(())
            }
        })
        .await;
        assert!(get(&s3, &uploads, &object.key).await.is_some(), "untouched");
    }

    // Replaying the listed event converges on the same case.
    let (status, _) = hook
        .post(bearer(), minio(&object, listed.len()).to_string())
        .await;
    assert_eq!(status, 202);
    eventually("the replay to be handled", WAIT, || async move {
        (pending(spool) == 0).then_some(())
    })
    .await;
    assert_eq!(case_ids(&dynamo, &case_table).await, [id]);

    // What is refused, and how.
    let event = ceph(&a, clean_a.len()).to_string();
    for auth in [
        None,
        Some("Bearer wrong-token-wrong-token-wrong".to_string()),
        Some(format!("Bearer {TOKEN}x")),
    ] {
        let (status, _) = hook.post(auth.clone(), event.clone()).await;
        assert_eq!(status, 401, "{auth:?}");
    }
    let (status, body) = hook.post(bearer(), "{not json".into()).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("not JSON"),
        "{body}"
    );
    let (status, body) = hook.post(bearer(), r#"{"hello": 1}"#.into()).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not an S3 notification"),
        "{body}"
    );
    let (status, body) = hook
        .post(
            bearer(),
            json!({"Records": [{"eventName": "ObjectCreated:Put", "eventSource": "ceph:s3",
                "s3": {"bucket": {"name": "b"}, "object": {}}}]})
            .to_string(),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "Records[0].s3.object.key: missing");
    let mut deletion = ceph(&a, 0);
    deletion["Records"][0]["eventName"] = json!("ObjectRemoved:Delete");
    let (status, body) = hook.post(bearer(), deletion.to_string()).await;
    assert_eq!((status, body["accepted"].as_u64()), (200, Some(0)));
    assert_eq!(hook.get("/readyz").await, 200);
    assert_eq!(pending(spool), 0, "nothing refused was spooled");

    // Prometheus metrics, with the token only: what this worker received and decided.
    assert_eq!(hook.metrics(None).await.0, 401);
    let (status, text) = hook.metrics(bearer()).await;
    assert_eq!(status, 200, "{text}");
    for line in [
        "hashgate_events_received_total{result=\"accepted\"} 3",
        "hashgate_events_received_total{result=\"unauthorized\"} 3",
        "hashgate_events_received_total{result=\"refused\"} 3",
        "hashgate_events_received_total{result=\"ignored\"} 1",
        "hashgate_scans_total{status=\"match\"} 1",
        "hashgate_scans_total{status=\"clean\"} 2",
        "hashgate_queue_pending 0",
        "hashgate_dead_letters 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from\n{text}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("hashgate_filter_store_version ") && !l.ends_with(" 0")),
        "a filter in use:\n{text}"
    );

    // SIGTERM drains: the worker stops taking events and exits cleanly.
    worker.signal("TERM");
    let status = worker
        .wait_exit(WAIT)
        .expect("the worker to exit on SIGTERM");
    assert!(status.success(), "{status:?}\n{}", worker.log());
    assert!(worker.log().contains("draining"), "{}", worker.log());
}
