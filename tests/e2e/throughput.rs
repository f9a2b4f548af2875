//! `make bench-workers`: how many uploads one scanner worker handles per second, on a real
//! Ceph RGW through RabbitMQ (the AMQP ingress) and on the local stack through SQS, outside
//! `make test`. For each, `HASHGATE_BENCH_UPLOADS` clean uploads of 16 KiB (2,000 by
//! default) are made while no worker runs, so their events wait in the queue; then one
//! worker starts, and its `/metrics` are read every 100 ms: the rate is the scans counted
//! between the first one and the last, over the time between them (start-up excluded). The
//! figures are printed and written to `target/throughput.json`. A second benchmark times
//! `hashgate backfill` over a full bucket.

use std::time::{Duration, Instant};

use hashgate_e2e::{bin, free_port, local_db, record, upload_many, Ceph, Rabbit, Stack, Worker};

const TOKEN: &str = "throughput-metrics-token-0123456789";
const EXCHANGE: &str = "ceph";
const TOPIC: &str = "hashgate-bench";

fn uploads() -> u64 {
    std::env::var("HASHGATE_BENCH_UPLOADS")
        .ok()
        .map(|v| v.parse().expect("HASHGATE_BENCH_UPLOADS: a number"))
        .unwrap_or(2_000)
}

fn body(i: u64) -> Vec<u8> {
    let mut b = format!("throughput {i}\n").into_bytes();
    b.resize(16 * 1024, b'.');
    b
}

fn key(i: u64) -> String {
    format!("bench/{:02}/{i}.bin", i % 64)
}

/// Scans the worker has counted (any outcome), or None while it does not answer.
async fn scanned(http: &reqwest::Client, listen: &str) -> Option<u64> {
    let text = http
        .get(format!("http://{listen}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some(
        text.lines()
            .filter(|l| l.starts_with("hashgate_scans_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum(),
    )
}

/// Start the worker with `start`, then time its scans from the first to the `n`th.
async fn measure(n: u64, listen: &str, start: impl FnOnce() -> Worker) -> (f64, Worker) {
    let http = reqwest::Client::new();
    let worker = start();
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut first: Option<(Instant, u64)> = None;
    loop {
        let now = Instant::now();
        assert!(
            now < deadline,
            "the worker did not finish:\n{}",
            worker.log()
        );
        if let Some(count) = scanned(&http, listen).await {
            if count > 0 && first.is_none() {
                first = Some((now, count));
            }
            if count >= n {
                let (t0, c0) = first.expect("a first count");
                let seconds = now.duration_since(t0).as_secs_f64().max(0.001);
                return ((count - c0) as f64 / seconds, worker);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "minutes long: make bench-workers"]
async fn one_workers_throughput_on_ceph_through_rabbitmq_and_on_the_local_stack() {
    let n = uploads();
    let stack = Stack::start();

    // Ceph RGW through RabbitMQ.
    let rabbit = Rabbit::start();
    let ceph = Ceph::start();
    let dir = tempfile::tempdir().unwrap();
    let db = local_db(
        &stack,
        &dir.path().join("db"),
        &[b"nothing uploaded is listed"],
    );
    let db = db.to_str().unwrap();
    let s3 = ceph.s3().await;
    ceph.buckets(&s3, &["uploads", "quarantine"]).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let ceph_worker = || {
        let mut vars = ceph.worker_env(db);
        vars.extend_from_slice(&[
            ("HASHGATE_INGRESS", "amqp"),
            ("HASHGATE_AMQP_URL", rabbit.url.as_str()),
            ("HASHGATE_AMQP_EXCHANGE", EXCHANGE),
            ("HASHGATE_AMQP_ROUTING_KEY", TOPIC),
            ("HASHGATE_HTTP_LISTEN", listen.as_str()),
            ("HASHGATE_HTTP_TOKEN", TOKEN),
            ("HASHGATE_LOG", "warn"),
        ]);
        stack.worker(&vars)
    };
    // A first worker declares the exchange and the queue, then drains and stops, so the
    // events wait in the queue.
    let mut declare = ceph_worker();
    let ready = format!("http://{listen}/readyz");
    let started = Instant::now();
    while !reqwest::get(&ready)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{}",
            declare.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    declare.signal("TERM");
    declare.wait_exit(Duration::from_secs(30)).expect("drained");
    ceph.notify_amqp("uploads", TOPIC, &rabbit, EXCHANGE);
    let ceph_puts = upload_many(&s3, "uploads", 0..n, 16, key, body).await;
    let (ceph_rate, worker) = measure(n, &listen, ceph_worker).await;
    drop(worker);

    // The local stack through SQS.
    let sdk = stack.sdk().await;
    let local_s3 = hashgate_aws::s3_client(&sdk);
    let bucket = stack.var("HASHGATE_UPLOAD_BUCKET").to_string();
    let local_puts = upload_many(&local_s3, &bucket, 0..n, 16, key, body).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let (local_rate, worker) = measure(n, &listen, || {
        stack.worker(&[
            ("HASHGATE_HTTP_LISTEN", listen.as_str()),
            ("HASHGATE_HTTP_TOKEN", TOKEN),
            ("HASHGATE_LOG", "warn"),
        ])
    })
    .await;
    drop(worker);

    let round = |x: f64| (x * 10.0).round() / 10.0;
    record(
        "throughput",
        serde_json::json!({
            "uploads": n,
            "object_bytes": 16 * 1024,
            "ceph_amqp_objects_per_second": round(ceph_rate),
            "ceph_puts_per_second": round(ceph_puts),
            "local_stack_sqs_objects_per_second": round(local_rate),
            "local_stack_puts_per_second": round(local_puts),
        }),
    );
}

/// `hashgate backfill` over a bucket of `HASHGATE_BENCH_BACKFILL_OBJECTS` objects of 1 KiB
/// (100,000 by default) on a real Ceph RGW: objects scanned per second, unthrottled
/// (`--rate 0`), 16 at a time, and the listing alone (`--dry-run`) for comparison. Written to
/// `target/backfill.json`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "minutes long: make bench-workers"]
async fn backfill_rate_on_a_full_ceph_bucket() {
    let n: u64 = std::env::var("HASHGATE_BENCH_BACKFILL_OBJECTS")
        .ok()
        .map(|v| {
            v.parse()
                .expect("HASHGATE_BENCH_BACKFILL_OBJECTS: a number")
        })
        .unwrap_or(100_000);
    let stack = Stack::start();
    let ceph = Ceph::start();
    let dir = tempfile::tempdir().unwrap();
    let db = local_db(
        &stack,
        &dir.path().join("db"),
        &[b"nothing uploaded is listed"],
    );
    let s3 = ceph.s3().await;
    ceph.buckets(&s3, &["full", "quarantine"]).await;
    let fill_rate = upload_many(
        &s3,
        "full",
        0..n,
        32,
        |i| format!("old/{:03}/{i}.bin", i % 500),
        |i| {
            let mut b = format!("backfill {i}\n").into_bytes();
            b.resize(1024, b'.');
            b
        },
    )
    .await;

    let run = |extra: &[&str]| {
        let checkpoint = dir.path().join(format!("checkpoint-{}.json", extra.len()));
        let started = Instant::now();
        let out = stack
            .command(bin("hashgate"))
            .envs(ceph.worker_env(db.to_str().unwrap()))
            .args(["backfill", "s3://full", "--json", "--rate", "0"])
            .args(["--concurrency", "16", "--checkpoint"])
            .arg(&checkpoint)
            .args(extra)
            .output()
            .expect("run hashgate backfill");
        let seconds = started.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("the JSON summary");
        (seconds, summary)
    };
    let (list_seconds, listed) = run(&["--dry-run"]);
    assert_eq!(listed["objects"].as_u64(), Some(n), "{listed}");
    let (scan_seconds, scanned) = run(&[]);
    assert_eq!(scanned["outcomes"]["clean"].as_u64(), Some(n), "{scanned}");

    let round = |x: f64| (x * 10.0).round() / 10.0;
    record(
        "backfill",
        serde_json::json!({
            "objects": n,
            "object_bytes": 1024,
            "fill_puts_per_second": round(fill_rate),
            "dry_run_seconds": round(list_seconds),
            "dry_run_objects_per_second": round(n as f64 / list_seconds),
            "backfill_seconds": round(scan_seconds),
            "backfill_objects_per_second": round(n as f64 / scan_seconds),
            "concurrency": 16,
        }),
    );
}
