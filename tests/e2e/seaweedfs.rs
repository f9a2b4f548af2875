//! A self-hosted store end to end: a real SeaweedFS server (`weed mini`) whose filer pushes
//! its events to the scanner worker's webhook; the worker reads, quarantines and tags
//! through SeaweedFS's own S3 gateway, with a local hash database (`HASHGATE_DB`), and
//! records cases in the local stack's DynamoDB.
//!
//! Listed uploads — in a plain bucket under a hostile key, and in a versioned bucket with
//! Object Lock — are quarantined into the same store with exactly one case each; clean
//! uploads, including a multipart one, are tagged and otherwise untouched byte for byte; the
//! filer's other events (directories, parts, the scanner's own tag updates) change nothing.

use std::time::Duration;

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use hashgate_e2e::{
    bin, case_ids, eventually, free_port, get, md5_hex, put, put_multipart, tags, Seaweed, Stack,
};

const WAIT: Duration = Duration::from_secs(120);
const TOKEN: &str = "seaweedfs-e2e-token-0123456789abcdef";

#[tokio::test(flavor = "multi_thread")]
async fn seaweedfs_pushes_uploads_to_the_webhook_and_matches_are_quarantined_in_place() {
    let stack = Stack::start();
    let sdk = stack.sdk().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let case_table = stack.var("HASHGATE_CASE_TABLE").to_string();

    // The hash list, in a local hash database as a self-hosted deployment keeps it.
    let listed_plain = b"seaweedfs e2e: listed, plain bucket".as_slice();
    let listed_locked = b"seaweedfs e2e: listed, versioned bucket".as_slice();
    let db = tempfile::tempdir().unwrap();
    let list = db.path().join("list.txt");
    std::fs::write(
        &list,
        format!("{}\n{}\n", md5_hex(listed_plain), md5_hex(listed_locked)),
    )
    .unwrap();
    let hash_db = db.path().join("db");
    let out = stack
        .command(bin("hashgate"))
        .args(["lists", "import", "--db"])
        .arg(&hash_db)
        .arg(&list)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let port = free_port();
    let seaweed = Seaweed::start(&format!("http://127.0.0.1:{port}/events"), TOKEN);
    let s3 = seaweed.s3().await;
    eventually("SeaweedFS's S3 gateway", WAIT, || {
        let s3 = s3.clone();
        async move { s3.list_buckets().send().await.ok().map(|_| ()) }
    })
    .await;
    for bucket in ["uploads", "locked", "quarantine"] {
        let mut create = s3.create_bucket().bucket(bucket);
        if bucket != "uploads" {
            create = create.object_lock_enabled_for_bucket(true);
        }
        create
            .send()
            .await
            .unwrap_or_else(|e| panic!("create {bucket}: {e:?}"));
    }
    s3.put_bucket_versioning()
        .bucket("locked")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("versioning");

    let spool = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let _worker = stack.worker(&[
        ("HASHGATE_INGRESS", "http"),
        ("HASHGATE_HTTP_LISTEN", listen.as_str()),
        ("HASHGATE_HTTP_TOKEN", TOKEN),
        ("HASHGATE_SPOOL_DIR", spool.path().to_str().unwrap()),
        ("AWS_ENDPOINT_URL_S3", seaweed.s3_endpoint.as_str()),
        // The self-hosted hash store: a local database instead of DynamoDB and its filter.
        ("HASHGATE_HASH_TABLE", ""),
        ("HASHGATE_DB", hash_db.to_str().unwrap()),
        ("HASHGATE_QUARANTINE_BUCKET", "quarantine"),
        ("HASHGATE_LOG", "info,hashgate_scanner=debug"),
    ]);
    // SeaweedFS drops what it cannot deliver (a refused connection is dead-lettered at
    // once): upload only once the webhook listens.
    let health = format!("http://{listen}/healthz");
    eventually("the webhook to listen", WAIT, || {
        let health = health.clone();
        async move {
            let r = reqwest::get(&health).await.ok()?;
            r.status().is_success().then_some(())
        }
    })
    .await;

    let plain_key = "inbox/a b+c 100%/ünï 🌞.bin";
    let listed_a = put(&s3, "uploads", plain_key, listed_plain).await;
    let listed_b = put(&s3, "locked", "photos/listed.bin", listed_locked).await;
    assert!(listed_b.version_id.is_some(), "a versioned bucket");
    let clean_small = b"seaweedfs e2e: clean".as_slice();
    put(&s3, "uploads", "inbox/clean.txt", clean_small).await;
    put(&s3, "locked", "photos/clean.txt", clean_small).await;
    // A directory marker, and a clean multipart upload (its parts live under .uploads/).
    put(&s3, "uploads", "inbox/folder/", b"").await;
    let part_one = vec![b'a'; 5 * 1024 * 1024];
    let part_two = b"the last part".to_vec();
    put_multipart(&s3, "uploads", "inbox/big.bin", &[&part_one, &part_two]).await;

    // Both matches become cases, and their objects leave the uploads.
    let want = {
        let mut ids = vec![listed_a.case_id(), listed_b.case_id()];
        ids.sort();
        ids
    };
    eventually("a case for each listed upload", WAIT, || {
        let (dynamo, table, want) = (&dynamo, &case_table, want.clone());
        async move { (case_ids(dynamo, table).await == want).then_some(()) }
    })
    .await;
    eventually("the listed upload to leave the plain bucket", WAIT, || {
        let s3 = &s3;
        async move { get(s3, "uploads", plain_key).await.is_none().then_some(()) }
    })
    .await;
    let quarantined = s3
        .list_objects_v2()
        .bucket("quarantine")
        .send()
        .await
        .expect("list the quarantine");
    assert_eq!(quarantined.contents().len(), 2, "{quarantined:?}");

    // Clean uploads are tagged and byte for byte what was uploaded.
    let big: Vec<u8> = [part_one.as_slice(), part_two.as_slice()].concat();
    for (bucket, key, body) in [
        ("uploads", "inbox/clean.txt", clean_small.to_vec()),
        ("locked", "photos/clean.txt", clean_small.to_vec()),
        ("uploads", "inbox/big.bin", big),
    ] {
        eventually(&format!("{bucket}/{key} tagged clean"), WAIT, || {
            let s3 = &s3;
            async move {
                let t = tags(s3, bucket, key, None).await;
                (t.get("hashgate-scan").map(String::as_str) == Some("clean")).then_some(())
            }
        })
        .await;
        assert_eq!(
            get(&s3, bucket, key).await.as_deref(),
            Some(body.as_slice())
        );
    }

    // The tag updates, directories and parts the filer announced opened nothing more, and
    // nothing waits in the spool.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(case_ids(&dynamo, &case_table).await, want);
    let pending = std::fs::read_dir(spool.path().join("pending"))
        .unwrap()
        .count();
    assert_eq!(pending, 0);
}
