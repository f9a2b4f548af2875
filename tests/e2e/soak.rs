//! `make soak`: the self-hosted pipeline under sustained load and faults, outside
//! `make test` (it runs for minutes). A real Ceph RGW publishes the object-created events of
//! `HASHGATE_SOAK_UPLOADS` uploads (10,000 by default, one in 50 listed) to a real RabbitMQ,
//! where two AMQP scanner workers consume them, while:
//!
//! - a worker is killed with SIGKILL every `HASHGATE_SOAK_KILL_SECONDS` (3) and restarted;
//! - the store (RGW) is paused with SIGSTOP for 2 s every 10 s;
//! - the case store (the emulator) is paused for 2 s every 15 s.
//!
//! When the uploads are done the faults stop, and the run must converge: every listed upload
//! quarantined with exactly one case and gone from its bucket, every clean upload tagged
//! clean and byte for byte what was uploaded, nothing dead-lettered. The figures (uploads
//! per second, time to converge, kills, pauses) are printed and written to
//! `target/soak.json`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hashgate_e2e::{case_ids, local_db, record, tags, upload_many, Ceph, Rabbit, Stack, Worker};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};

const EXCHANGE: &str = "ceph";
const TOPIC: &str = "hashgate-soak";
const CONVERGE: Duration = Duration::from_secs(900);

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?}: a number"))
        })
        .unwrap_or(default)
}

fn body(i: u64, listed: bool) -> Vec<u8> {
    let head = format!("soak {} {i}\n", if listed { "listed" } else { "clean" });
    // 1 KiB to 33 KiB.
    let mut b = head.into_bytes();
    b.resize(1024 + (i as usize * 7919) % (32 * 1024), b'.');
    b
}

fn key(i: u64) -> String {
    format!("soak/{:02}/upload {i}+ü.bin", i % 97)
}

fn signal(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status();
}

async fn dead_letters(url: &str) -> u32 {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect to RabbitMQ");
    let channel = connection.create_channel().await.expect("a channel");
    channel
        .queue_declare(
            "hashgate-scan.dead".into(),
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

#[tokio::test(flavor = "multi_thread")]
#[ignore = "minutes long: make soak"]
async fn soak() {
    let uploads = setting("HASHGATE_SOAK_UPLOADS", 10_000);
    let kill_every = Duration::from_secs(setting("HASHGATE_SOAK_KILL_SECONDS", 3));
    let listed: Vec<u64> = (0..uploads).filter(|i| i % 50 == 7).collect();

    let stack = Stack::start();
    let rabbit = Rabbit::start();
    let ceph = Ceph::start();
    let sdk = stack.sdk().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let case_table = stack.var("HASHGATE_CASE_TABLE").to_string();

    let dir = tempfile::tempdir().unwrap();
    let bodies: Vec<Vec<u8>> = listed.iter().map(|&i| body(i, true)).collect();
    let bodies: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
    let dbs = [0, 1].map(|n| {
        let db = local_db(&stack, &dir.path().join(format!("db-{n}")), &bodies);
        db.to_str().unwrap().to_string()
    });

    let s3 = ceph.s3().await;
    ceph.buckets(&s3, &["uploads", "quarantine"]).await;

    let start_worker = |n: usize| -> Worker {
        let mut vars = ceph.worker_env(&dbs[n]);
        vars.extend_from_slice(&[
            ("HASHGATE_INGRESS", "amqp"),
            ("HASHGATE_AMQP_URL", rabbit.url.as_str()),
            ("HASHGATE_AMQP_EXCHANGE", EXCHANGE),
            ("HASHGATE_AMQP_ROUTING_KEY", TOPIC),
            // Kills every few seconds may catch the same message more than once.
            ("HASHGATE_MAX_ATTEMPTS", "50"),
            ("HASHGATE_LOG", "warn"),
        ]);
        stack.worker(&vars)
    };
    let mut workers = vec![start_worker(0), start_worker(1)];
    // The exchange exists once a worker has declared it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    ceph.notify_amqp("uploads", TOPIC, &rabbit, EXCHANGE);

    // Faults: the store and the case store paused now and then, until the uploads are done.
    let faulting = Arc::new(AtomicBool::new(true));
    let (rgw_pauses, emulator_pauses) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let pauser = |pid: u32, every: u64, count: Arc<AtomicU32>| {
        let faulting = faulting.clone();
        tokio::spawn(async move {
            while faulting.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(every)).await;
                if !faulting.load(Ordering::SeqCst) {
                    break;
                }
                signal(pid, "STOP");
                tokio::time::sleep(Duration::from_secs(2)).await;
                signal(pid, "CONT");
                count.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let rgw_faults = pauser(ceph.rgw_pid(), 10, rgw_pauses.clone());
    let emulator_faults = pauser(stack.emulator_pid(), 15, emulator_pauses.clone());

    // The uploads, 16 at a time, while a worker is killed every few seconds.
    let started = Instant::now();
    let uploader = {
        let s3 = s3.clone();
        let listed: BTreeSet<u64> = listed.iter().copied().collect();
        tokio::spawn(async move {
            upload_many(&s3, "uploads", uploads, 16, key, |i| {
                body(i, listed.contains(&i))
            })
            .await
        })
    };
    let mut kills = 0u32;
    let mut victim = 0;
    while !uploader.is_finished() {
        tokio::time::sleep(kill_every).await;
        workers[victim].signal("KILL");
        let _ = workers[victim].wait_exit(Duration::from_secs(10));
        workers[victim] = start_worker(victim);
        kills += 1;
        victim = 1 - victim;
    }
    uploader.await.expect("uploads");
    let upload_seconds = started.elapsed().as_secs_f64();
    faulting.store(false, Ordering::SeqCst);
    let _ = tokio::join!(rgw_faults, emulator_faults);
    // Nothing left paused.
    signal(ceph.rgw_pid(), "CONT");
    signal(stack.emulator_pid(), "CONT");

    // Convergence: every listed upload a case, every clean one tagged.
    let deadline = Instant::now() + CONVERGE;
    let mut cases;
    loop {
        cases = case_ids(&dynamo, &case_table).await.len();
        if cases >= listed.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let mut untagged: BTreeSet<u64> = (0..uploads).filter(|i| i % 50 != 7).collect();
    while !untagged.is_empty() && Instant::now() < deadline {
        let mut still = BTreeSet::new();
        for &i in &untagged {
            let t = tags(&s3, "uploads", &key(i), None).await;
            if t.get("hashgate-scan").map(String::as_str) != Some("clean") {
                still.insert(i);
            }
        }
        untagged = still;
        if !untagged.is_empty() {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let converged_seconds = started.elapsed().as_secs_f64();
    assert!(
        untagged.is_empty(),
        "{} clean uploads not tagged clean, e.g. {:?}",
        untagged.len(),
        untagged.iter().take(5).map(|&i| key(i)).collect::<Vec<_>>()
    );

    // Exactly one case per listed upload, the listed uploads gone, the clean ones intact.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let ids = case_ids(&dynamo, &case_table).await;
    assert_eq!(ids.len(), listed.len(), "one case per listed upload");
    for &i in &listed {
        let got = s3.get_object().bucket("uploads").key(key(i)).send().await;
        assert!(got.is_err(), "{} still in the uploads", key(i));
    }
    for i in (0..uploads).filter(|i| i % 50 != 7).step_by(37) {
        let got = s3
            .get_object()
            .bucket("uploads")
            .key(key(i))
            .send()
            .await
            .expect("a clean upload");
        let bytes = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(bytes.as_ref(), body(i, false).as_slice(), "{}", key(i));
    }
    let dead = dead_letters(&rabbit.url).await;
    assert_eq!(dead, 0, "dead-lettered messages");

    record(
        "soak",
        serde_json::json!({
            "uploads": uploads,
            "listed": listed.len(),
            "cases": ids.len(),
            "workers": 2,
            "worker_kills": kills,
            "store_pauses": rgw_pauses.load(Ordering::SeqCst),
            "case_store_pauses": emulator_pauses.load(Ordering::SeqCst),
            "upload_seconds": (upload_seconds * 10.0).round() / 10.0,
            "converged_seconds": (converged_seconds * 10.0).round() / 10.0,
            "objects_per_second": ((uploads as f64 / converged_seconds) * 10.0).round() / 10.0,
            "dead_letters": dead,
        }),
    );
    drop(workers);
}
