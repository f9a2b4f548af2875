//! Imports into a stack are atomic per file: an import killed half way leaves nothing of its
//! file visible to scanners, and running it again applies the file whole.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use hashgate_aws::dynamo::{digest_key, DynamoHashes};
use hashgate_core::digest::Digest;
use hashgate_core::store::HashStore;
use hashgate_e2e::{bin, md5_hex, Stack};

/// Enough entries that staging them takes several batches, so the kill lands mid-way.
const ENTRIES: usize = 30_000;

fn md5_of(i: usize) -> Digest {
    Digest::parse_hex(&md5_hex(format!("listed entry {i}").as_bytes())).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_killed_mid_way_shows_nothing_and_its_rerun_applies_whole() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("big-list.txt");
    let text: String = (0..ENTRIES).map(|i| format!("{}\n", md5_of(i))).collect();
    std::fs::write(&list, text).unwrap();

    let sdk = stack.sdk().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let table = stack.var("HASHGATE_HASH_TABLE").to_string();
    let hashes = DynamoHashes::new(dynamo.clone(), &table);
    let probe = [md5_of(0), md5_of(ENTRIES / 2), md5_of(ENTRIES - 1)];

    let mut child = stack
        .command(bin("hashgate"))
        .args(["lists", "import"])
        .arg(&list)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run hashgate");
    // Kill it as soon as the first entries are in the table.
    let started = Instant::now();
    loop {
        let item = dynamo
            .get_item()
            .table_name(&table)
            .key("digest", AttributeValue::S(digest_key(&probe[0])))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        if item.item().is_some() {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before any entry was seen"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no entry written in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let (_, generations) = hashes.meta().await.unwrap();
    assert!(
        generations.pending.is_some(),
        "the import had already committed when it was killed: the test proves nothing"
    );
    // Entries of the killed file are in the table, yet none is visible to a scanner.
    assert!(
        hashes.lookup(&probe).await.unwrap().is_empty(),
        "nothing of a half-imported file may match"
    );
    assert_eq!(hashes.state().await.unwrap().version, 0);

    // Run again: the whole file applies.
    let out = stack
        .command(bin("hashgate"))
        .args(["lists", "import", "--json"])
        .arg(&list)
        .output()
        .expect("run hashgate");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["added"], ENTRIES as u64, "{summary}");
    assert_eq!(summary["rejected"], 0);
    let found = hashes.lookup(&probe).await.unwrap();
    assert_eq!(found.len(), probe.len(), "every entry of the file matches");
    assert!(found.iter().all(|f| f.provenance[0].list == "big-list"));
    let (state, generations) = hashes.meta().await.unwrap();
    assert_eq!(state.version, 1);
    assert_eq!(generations.pending, None);
    assert_eq!(
        generations.abandoned.len(),
        1,
        "the killed import's generation"
    );
}
