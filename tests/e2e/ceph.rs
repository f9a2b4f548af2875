//! A real Ceph RGW end to end: a single-node cluster (`scripts/ceph.sh`) whose bucket
//! notifications, configured through RGW's own SNS API as an operator would, reach the
//! scanner workers both ways Ceph sends them — published to a real RabbitMQ for the AMQP
//! worker, and pushed over HTTP to the webhook worker (the token in the path: this Ceph
//! release takes no password in a plain-HTTP endpoint). The workers read, quarantine and tag
//! through RGW's S3 API, with a local hash database, and record cases in the local stack.
//!
//! Listed uploads (one under a hostile key) are quarantined into an Object Lock bucket of
//! the same cluster with exactly one case each; clean uploads are tagged and untouched.

use std::path::Path;
use std::time::Duration;

use hashgate_e2e::{
    case_ids, eventually, free_port, get, local_db, put, tags, Ceph, Rabbit, Stack, Worker,
};

const WAIT: Duration = Duration::from_secs(120);
const TOKEN: &str = "ceph-e2e-webhook-token-0123456789abcdef";
const EXCHANGE: &str = "ceph";
const AMQP_TOPIC: &str = "hashgate-amqp";

async fn tagged_clean(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) {
    eventually(
        &format!("{bucket}/{key} tagged clean"),
        WAIT,
        || async move {
            let t = tags(s3, bucket, key, None).await;
            (t.get("hashgate-scan").map(String::as_str) == Some("clean")).then_some(())
        },
    )
    .await;
}

fn worker(stack: &Stack, ceph: &Ceph, db: &Path, ingress: &[(&str, &str)]) -> Worker {
    let db = db.to_str().unwrap();
    let mut vars = ceph.worker_env(db);
    vars.extend_from_slice(ingress);
    stack.worker(&vars)
}

#[tokio::test(flavor = "multi_thread")]
async fn ceph_rgw_notifications_over_amqp_and_http_are_scanned_and_quarantined() {
    let stack = Stack::start();
    let rabbit = Rabbit::start();
    let ceph = Ceph::start();
    let sdk = stack.sdk().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let case_table = stack.var("HASHGATE_CASE_TABLE").to_string();

    let listed_amqp = b"ceph e2e: listed, published to RabbitMQ".as_slice();
    let listed_http = b"ceph e2e: listed, pushed to the webhook".as_slice();
    // A hash database for each worker: the embedded store is one process's at a time.
    let dir = tempfile::tempdir().unwrap();
    let listed = [listed_amqp, listed_http];
    let amqp_db = local_db(&stack, &dir.path().join("db-amqp"), &listed);
    let http_db = local_db(&stack, &dir.path().join("db-http"), &listed);

    let s3 = ceph.s3().await;
    ceph.buckets(&s3, &["published", "pushed", "quarantine"])
        .await;

    // The workers first: the AMQP worker declares the exchange RGW publishes to.
    let amqp = worker(
        &stack,
        &ceph,
        &amqp_db,
        &[
            ("HASHGATE_INGRESS", "amqp"),
            ("HASHGATE_AMQP_URL", rabbit.url.as_str()),
            ("HASHGATE_AMQP_EXCHANGE", EXCHANGE),
            // RGW publishes with the topic's name as the routing key.
            ("HASHGATE_AMQP_ROUTING_KEY", AMQP_TOPIC),
        ],
    );
    let listen = format!("127.0.0.1:{}", free_port());
    let spool = tempfile::tempdir().unwrap();
    let webhook = worker(
        &stack,
        &ceph,
        &http_db,
        &[
            ("HASHGATE_INGRESS", "http"),
            ("HASHGATE_HTTP_LISTEN", listen.as_str()),
            ("HASHGATE_HTTP_TOKEN", TOKEN),
            ("HASHGATE_SPOOL_DIR", spool.path().to_str().unwrap()),
        ],
    );
    eventually("the AMQP worker to consume", WAIT, || {
        let log = amqp.log();
        async move { log.contains("AMQP ingress consuming").then_some(()) }
    })
    .await;
    let health = format!("http://{listen}/readyz");
    eventually("the webhook to listen", WAIT, || {
        let health = health.clone();
        async move {
            let r = reqwest::get(&health).await.ok()?;
            r.status().is_success().then_some(())
        }
    })
    .await;

    // Topics and notifications through RGW's SNS API.
    ceph.notify_amqp("published", AMQP_TOPIC, &rabbit, EXCHANGE);
    ceph.notify(
        "pushed",
        "hashgate-http",
        &format!("http://{listen}/events/{TOKEN}"),
        &[],
    );

    let hostile = "in box/a b+c 100%/ünï 🌞.bin";
    let one = put(&s3, "published", hostile, listed_amqp).await;
    let two = put(&s3, "pushed", "photos/listed.bin", listed_http).await;
    let clean = b"ceph e2e: clean".as_slice();
    put(&s3, "published", "in box/clean.txt", clean).await;
    put(&s3, "pushed", "photos/clean.txt", clean).await;

    let want = {
        let mut ids = vec![one.case_id(), two.case_id()];
        ids.sort();
        ids
    };
    eventually("a case for each listed upload", WAIT, || {
        let (dynamo, table, want) = (&dynamo, &case_table, want.clone());
        async move { (case_ids(dynamo, table).await == want).then_some(()) }
    })
    .await;
    for (bucket, key) in [("published", hostile), ("pushed", "photos/listed.bin")] {
        eventually(&format!("{bucket}/{key} to leave the bucket"), WAIT, || {
            let s3 = &s3;
            async move { get(s3, bucket, key).await.is_none().then_some(()) }
        })
        .await;
    }
    let quarantined = s3
        .list_objects_v2()
        .bucket("quarantine")
        .send()
        .await
        .expect("list the quarantine");
    assert_eq!(quarantined.contents().len(), 2, "{quarantined:?}");
    for bucket in ["published", "pushed"] {
        let key = if bucket == "published" {
            "in box/clean.txt"
        } else {
            "photos/clean.txt"
        };
        tagged_clean(&s3, bucket, key).await;
        assert_eq!(get(&s3, bucket, key).await.as_deref(), Some(clean));
    }

    // The tag writes RGW announces (none for ObjectCreated) open nothing more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(case_ids(&dynamo, &case_table).await, want);
    drop((amqp, webhook));
}
