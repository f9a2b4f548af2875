//! The AMQP ingress end to end: a real RabbitMQ broker, Ceph-shaped notifications published
//! to a topic exchange as Ceph RGW publishes them, and the real scanner worker with
//! `HASHGATE_INGRESS=amqp` on the local stack.
//!
//! A listed upload becomes a case and a clean one is tagged; a body that does not parse is
//! dead-lettered at once; a message taken by a worker that cannot finish it (its case store
//! unreachable) and killed with SIGKILL is redelivered to the next worker and becomes
//! exactly one case; a message that keeps failing is dead-lettered by the broker after
//! `HASHGATE_MAX_ATTEMPTS` deliveries; SIGTERM drains a worker. The worker serves `/readyz`
//! once consuming and `/metrics` with its token, and logs JSON lines when asked to.

use std::time::Duration;

use hashgate_core::event::ObjectRef;
use hashgate_e2e::{
    case_ids, ceph_notification, eventually, free_port, get, import_list, put, tags, Rabbit, Stack,
    Worker,
};
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

const WAIT: Duration = Duration::from_secs(90);
const EXCHANGE: &str = "ceph-notifications";
const OPS_TOKEN: &str = "amqp-e2e-metrics-token-0123456789";

fn ceph(object: &ObjectRef, size: usize) -> String {
    ceph_notification(object, size).to_string()
}

struct Broker {
    channel: lapin::Channel,
    _connection: Connection,
}

impl Broker {
    async fn connect(url: &str) -> Broker {
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .expect("connect to RabbitMQ");
        let channel = connection.create_channel().await.expect("a channel");
        Broker {
            channel,
            _connection: connection,
        }
    }

    /// Publish as a store does: to the exchange, with the topic as the routing key.
    async fn publish(&self, routing_key: &str, body: &str) {
        self.channel
            .basic_publish(
                EXCHANGE.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("publish")
            .await
            .expect("confirmed");
    }

    /// Messages ready in `queue`.
    async fn count(&self, queue: &str) -> u32 {
        self.channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map(|q| q.message_count())
            .unwrap_or(0)
    }
}

fn worker(stack: &Stack, rabbit: &Rabbit, extra: &[(&str, &str)]) -> Worker {
    let mut vars = vec![
        ("HASHGATE_INGRESS", "amqp"),
        ("HASHGATE_AMQP_URL", rabbit.url.as_str()),
        ("HASHGATE_AMQP_EXCHANGE", EXCHANGE),
        ("HASHGATE_AMQP_ROUTING_KEY", "uploads"),
        ("HASHGATE_MAX_ATTEMPTS", "50"),
    ];
    vars.extend_from_slice(extra);
    stack.worker(&vars)
}

async fn consuming(worker: &Worker) {
    eventually("the worker to consume", WAIT, || {
        let log = worker.log();
        async move { log.contains("AMQP ingress consuming").then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ceph_notifications_through_rabbitmq_are_scanned_once_and_never_lost() {
    let stack = Stack::start();
    let rabbit = Rabbit::start();
    let sdk = stack.sdk().await;
    let s3 = hashgate_aws::s3_client(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let case_table = stack.var("HASHGATE_CASE_TABLE").to_string();
    let uploads = stack.var("HASHGATE_UPLOAD_BUCKET").to_string();
    let listed: [&[u8]; 3] = [
        b"amqp e2e: listed one",
        b"amqp e2e: listed two",
        b"amqp e2e: listed three",
    ];
    import_list(&stack, &listed, &[]);

    // The first worker serves its health and metrics, and logs JSON lines, as it would in
    // Kubernetes.
    let ops = format!("127.0.0.1:{}", free_port());
    let mut first = worker(
        &stack,
        &rabbit,
        &[
            ("HASHGATE_HTTP_LISTEN", ops.as_str()),
            ("HASHGATE_HTTP_TOKEN", OPS_TOKEN),
            ("HASHGATE_LOG_FORMAT", "json"),
        ],
    );
    consuming(&first).await;
    let http = reqwest::Client::new();
    let ready = http
        .get(format!("http://{ops}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200, "ready once consuming");
    let broker = Broker::connect(&rabbit.url).await;
    let one = put(&s3, &uploads, "amqp/listed one ünï+%.bin", listed[0]).await;
    let clean = put(&s3, &uploads, "amqp/clean.txt", b"amqp e2e: clean").await;
    broker
        .publish("uploads", &ceph(&one, listed[0].len()))
        .await;
    broker.publish("uploads", &ceph(&clean, 15)).await;
    broker.publish("uploads", "{not json").await;
    broker.publish("other-topic", &ceph(&clean, 15)).await; // not bound: never delivered
    let case = one.case_id();
    eventually("a case for the listed upload", WAIT, || {
        let (dynamo, table, case) = (&dynamo, &case_table, case.clone());
        async move { (case_ids(dynamo, table).await == [case]).then_some(()) }
    })
    .await;
    assert_eq!(get(&s3, &uploads, &one.key).await, None, "quarantined");
    eventually("the clean upload tagged", WAIT, || {
        let (s3, clean) = (&s3, &clean);
        async move {
            let t = tags(s3, &clean.bucket, &clean.key, clean.version_id.as_deref()).await;
            (t.get("hashgate-scan").map(String::as_str) == Some("clean")).then_some(())
        }
    })
    .await;
    eventually("the malformed body dead-lettered", WAIT, || {
        let broker = &broker;
        async move { (broker.count("hashgate-scan.dead").await == 1).then_some(()) }
    })
    .await;
    assert_eq!(
        broker.count("hashgate-scan").await,
        0,
        "everything acknowledged"
    );
    let healthz = http.get(format!("http://{ops}/healthz")).send().await;
    assert_eq!(healthz.expect("healthz").status(), 200);
    let anonymous = http.get(format!("http://{ops}/metrics")).send().await;
    assert_eq!(
        anonymous.expect("metrics").status(),
        401,
        "metrics need the token"
    );
    let metrics = http
        .get(format!("http://{ops}/metrics"))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), 200);
    let metrics = metrics.text().await.unwrap();
    for line in [
        "hashgate_scans_total{status=\"clean\"} 1",
        "hashgate_scans_total{status=\"match\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    for line in first.log().lines().filter(|l| !l.trim().is_empty()) {
        let entry: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
        assert!(
            entry["timestamp"].is_string() && entry["level"].is_string(),
            "{line}"
        );
    }

    // SIGTERM drains the worker.
    first.signal("TERM");
    let status = first
        .wait_exit(WAIT)
        .expect("the worker to exit on SIGTERM");
    assert!(status.success(), "{status:?}\n{}", first.log());

    // A worker that cannot record cases takes a listed upload's message, fails, and dies.
    let mut broken = worker(
        &stack,
        &rabbit,
        &[("HASHGATE_CASE_TABLE", "no-such-case-table")],
    );
    consuming(&broken).await;
    let two = put(&s3, &uploads, "amqp/listed two", listed[1]).await;
    broker
        .publish("uploads", &ceph(&two, listed[1].len()))
        .await;
    eventually("the failure", WAIT, || {
        let log = broken.log();
        async move { log.contains("will retry").then_some(()) }
    })
    .await;
    broken.signal("KILL");
    broken.wait_exit(WAIT).expect("killed");
    // The next worker gets the message again: exactly one case more.
    let _second = worker(&stack, &rabbit, &[]);
    let mut want = vec![one.case_id(), two.case_id()];
    want.sort();
    eventually("the redelivered message's case", WAIT, || {
        let (dynamo, table, want) = (&dynamo, &case_table, want.clone());
        async move { (case_ids(dynamo, table).await == want).then_some(()) }
    })
    .await;
    assert_eq!(
        broker.count("hashgate-scan.dead").await,
        1,
        "nothing more dead"
    );

    // On a queue limited to two attempts, a message that keeps failing is dead-lettered by
    // the broker itself.
    let _limited = worker(
        &stack,
        &rabbit,
        &[
            ("HASHGATE_AMQP_QUEUE", "limited"),
            ("HASHGATE_AMQP_ROUTING_KEY", "limited"),
            ("HASHGATE_MAX_ATTEMPTS", "2"),
            ("HASHGATE_CASE_TABLE", "no-such-case-table"),
        ],
    );
    eventually("the limited queue", WAIT, || {
        let log = _limited.log();
        async move { log.contains("AMQP ingress consuming").then_some(()) }
    })
    .await;
    let three = put(&s3, &uploads, "amqp/listed three", listed[2]).await;
    broker
        .publish("limited", &ceph(&three, listed[2].len()))
        .await;
    eventually("the message dead-lettered after two attempts", WAIT, || {
        let broker = &broker;
        async move { (broker.count("limited.dead").await == 1).then_some(()) }
    })
    .await;
    assert_eq!(case_ids(&dynamo, &case_table).await, want);
    assert!(get(&s3, &uploads, "amqp/listed three").await.is_some());
}
