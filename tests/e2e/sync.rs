//! Hash-list sync on the local stack: lists dropped into the lists bucket reach the running
//! scanner (and withdrawals stop matching), every guard against a bad list refuses it with
//! nothing applied and the file moved to `rejected/` with its reason, signed manifests are
//! refused when tampered with, replayed or signed by an untrusted key (the last good filter
//! kept), two keys work at once during a rotation, rollbacks are signed and audited, and a
//! pulled source whose ETag is unchanged imports nothing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use hashgate_aws::dynamo::DynamoHashes;
use hashgate_aws::filter_source::{FilterLocation, FilterSource};
use hashgate_aws::publisher::Publisher;
use hashgate_core::filter::{FilterSnapshot, Refresh};
use hashgate_core::manifest::{SigningKey, TrustedKeys, MANIFEST_KEY};
use hashgate_core::time::Timestamp;
use hashgate_e2e::{bin, eventually, md5_hex, put, tags, Stack};

const PATIENCE: Duration = Duration::from_secs(120);

fn s3(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    hashgate_aws::s3_client(sdk)
}

async fn put_meta(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: &[u8],
    metadata: &[(&str, &str)],
) {
    let mut request = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()));
    for (k, v) in metadata {
        request = request.metadata(*k, *v);
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
}

async fn exists(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> bool {
    s3.head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .is_ok()
}

async fn store_version(stack: &Stack) -> u64 {
    let sdk = stack.sdk().await;
    let hashes = DynamoHashes::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        stack.var("HASHGATE_HASH_TABLE"),
    );
    hashes.meta().await.expect("meta").0.version
}

async fn manifest_sequence(stack: &Stack) -> Option<u64> {
    let sdk = stack.sdk().await;
    let bytes =
        hashgate_e2e::get(&s3(&sdk), stack.var("HASHGATE_FILTER_BUCKET"), MANIFEST_KEY).await?;
    let trusted = TrustedKeys::parse(stack.var("HASHGATE_FILTER_PUBLIC_KEYS")).unwrap();
    Some(
        trusted
            .verify(&bytes, "manifest")
            .expect("a valid manifest")
            .sequence,
    )
}

/// The md5 lines of `contents`, as a plain list.
fn plain(contents: &[&[u8]]) -> String {
    contents
        .iter()
        .map(|c| format!("{}\n", md5_hex(c)))
        .collect()
}

async fn scanned(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<String> {
    tags(s3, bucket, key, None)
        .await
        .get("hashgate-scan")
        .cloned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_list_reaches_the_running_scanner_and_a_withdrawal_stops_it() {
    let stack = Stack::start();
    let _sync = stack.sync_worker(&[]);
    let _scanner = stack.worker(&[]);
    let sdk = stack.sdk().await;
    let s3 = s3(&sdk);
    let (lists, uploads) = (
        stack.var("HASHGATE_LISTS_BUCKET"),
        stack.var("HASHGATE_UPLOAD_BUCKET"),
    );
    let bad: &[u8] = b"newly listed content";
    let others: [&[u8]; 3] = [b"other 1", b"other 2", b"other 3"];
    let before = store_version(&stack).await;

    // A list lands in the lists bucket; nobody at a keyboard.
    let mut entries: Vec<&[u8]> = vec![bad];
    entries.extend(others);
    put(
        &s3,
        lists,
        "incoming/e2e-feed/2026-12-01.txt",
        plain(&entries).as_bytes(),
    )
    .await;
    // Applied in full: copied to applied/ and gone from incoming/.
    eventually("the list to be applied", PATIENCE, || async {
        (exists(&s3, lists, "applied/e2e-feed/2026-12-01.txt").await
            && !exists(&s3, lists, "incoming/e2e-feed/2026-12-01.txt").await)
            .then_some(())
    })
    .await;
    assert!(store_version(&stack).await > before);
    eventually("a signed manifest to be published", PATIENCE, || async {
        manifest_sequence(&stack).await
    })
    .await;

    // An upload of newly listed content is quarantined by the running scanner.
    put(&s3, uploads, "users/1/a.bin", bad).await;
    eventually("the listed upload to be quarantined", PATIENCE, || async {
        (!exists(&s3, uploads, "users/1/a.bin").await).then_some(())
    })
    .await;

    // A withdrawal (one of four entries: within the allowed share) stops it matching.
    put(
        &s3,
        lists,
        "incoming/e2e-feed/withdraw/wrong.txt",
        plain(&[bad]).as_bytes(),
    )
    .await;
    eventually("the withdrawal to be applied", PATIENCE, || async {
        exists(&s3, lists, "applied/e2e-feed/withdraw/wrong.txt")
            .await
            .then_some(())
    })
    .await;
    put(&s3, uploads, "users/1/b.bin", bad).await;
    let verdict = eventually("the upload to be scanned", PATIENCE, || async {
        scanned(&s3, uploads, "users/1/b.bin").await
    })
    .await;
    assert_eq!(verdict, "clean");
}

/// A stack with a sync worker whose limits are small, to reach every guard.
#[tokio::test(flavor = "multi_thread")]
async fn bad_lists_are_refused_moved_aside_with_their_reason_and_nothing_applied() {
    let stack = Stack::start();
    let _sync = stack.sync_worker(&[
        ("HASHGATE_LIST_MAX_ENTRIES", "6"),
        ("HASHGATE_LIST_MAX_BYTES", "4096"),
    ]);
    let sdk = stack.sdk().await;
    let s3 = s3(&sdk);
    let lists = stack.var("HASHGATE_LISTS_BUCKET");

    // A good list first, so there is something a withdrawal could remove.
    let good: Vec<Vec<u8>> = (0..4).map(|i| format!("good {i}").into_bytes()).collect();
    let good_refs: Vec<&[u8]> = good.iter().map(Vec::as_slice).collect();
    put(
        &s3,
        lists,
        "incoming/guarded/base.txt",
        plain(&good_refs).as_bytes(),
    )
    .await;
    eventually("the good list to be applied", PATIENCE, || async {
        exists(&s3, lists, "applied/guarded/base.txt")
            .await
            .then_some(())
    })
    .await;
    let sequence = eventually("a manifest", PATIENCE, || async {
        manifest_sequence(&stack).await
    })
    .await;
    let version = store_version(&stack).await;

    let whole = plain(&[b"x1", b"x2", b"x3"]);
    let cut = plain(&[b"x1", b"x2"]);
    let sha_of_whole = hashgate_core::manifest::sha256_hex(whole.as_bytes());
    let too_many = plain(&[b"1", b"2", b"3", b"4", b"5", b"6", b"7"]);
    let too_big = plain(&(0..200).map(|_| b"y".as_slice()).collect::<Vec<_>>());
    // (key, body, metadata, the kind of refusal expected)
    type Case<'a> = (&'a str, Vec<u8>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        // Cut short at a line boundary: only the declared digest can tell.
        (
            "incoming/guarded/truncated.txt",
            cut.into_bytes(),
            vec![("hashgate-sha256", &sha_of_whole)],
            "incomplete",
        ),
        // Cut in the middle of a digest.
        (
            "incoming/guarded/half.txt",
            whole.as_bytes()[..40].to_vec(),
            vec![],
            "invalid",
        ),
        (
            "incoming/guarded/wrong-format.csv",
            b"{\"value\": []}".to_vec(),
            vec![],
            "invalid",
        ),
        (
            "incoming/guarded/nothing.txt",
            b"# no entries today\n".to_vec(),
            vec![],
            "empty",
        ),
        (
            "incoming/guarded/withdraw/most.txt",
            plain(&good_refs[..3]).into_bytes(),
            vec![],
            "mass_withdrawal",
        ),
        (
            "incoming/guarded/many.txt",
            too_many.into_bytes(),
            vec![],
            "too_many_entries",
        ),
        (
            "incoming/guarded/big.txt",
            too_big.into_bytes(),
            vec![],
            "too_large",
        ),
        (
            "incoming/guarded/empty-file.txt",
            b"d41d8cd98f00b204e9800998ecf8427e\n".to_vec(),
            vec![],
            "invalid",
        ),
        (
            "incoming/nested/too/deep/x.txt",
            plain(&[b"z"]).into_bytes(),
            vec![],
            "layout",
        ),
    ];
    for (key, body, meta, _) in &cases {
        put_meta(&s3, lists, key, body, meta).await;
    }
    for (key, _, _, kind) in &cases {
        let rejected = format!("rejected/{}", key.strip_prefix("incoming/").unwrap());
        // Refused in full: the reason written, the file copied aside and gone from incoming/.
        let reason = eventually(&format!("{key} to be refused"), PATIENCE, || async {
            let reason = hashgate_e2e::get(&s3, lists, &format!("{rejected}.reason.json")).await?;
            (!exists(&s3, lists, key).await).then_some(reason)
        })
        .await;
        let reason: serde_json::Value = serde_json::from_slice(&reason).unwrap();
        assert_eq!(reason["kind"], *kind, "{key}: {reason}");
        assert_eq!(reason["applied"], false);
        assert!(exists(&s3, lists, &rejected).await, "{rejected}");
    }
    // Nothing of any of them was applied, and the filter in use is the same.
    assert_eq!(store_version(&stack).await, version);
    assert_eq!(manifest_sequence(&stack).await, Some(sequence));

    // Forced, the large withdrawal goes through.
    put_meta(
        &s3,
        lists,
        "incoming/guarded/withdraw/most-forced.txt",
        plain(&good_refs[..3]).as_bytes(),
        &[("hashgate-force", "true")],
    )
    .await;
    eventually("the forced withdrawal to be applied", PATIENCE, || async {
        exists(&s3, lists, "applied/guarded/withdraw/most-forced.txt")
            .await
            .then_some(())
    })
    .await;
    assert!(store_version(&stack).await > version);
}

fn filter_of(digests: &[&[u8]], store_version: u64) -> FilterSnapshot {
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        *b = i as u8;
    }
    let mut b = FilterSnapshot::builder(digests.len() as u64 + 1, 1e-6, seed).unwrap();
    for d in digests {
        let digest = hashgate_core::digest::Digest::parse_hex_as(
            hashgate_core::digest::Algorithm::Md5,
            &md5_hex(d),
        )
        .unwrap();
        b.insert(&digest);
    }
    b.finish(store_version, Timestamp::now()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_replayed_and_foreign_manifests_are_refused_and_the_last_good_filter_kept() {
    let stack = Stack::start();
    let sdk = stack.sdk().await;
    let s3 = s3(&sdk);
    let bucket = stack.var("HASHGATE_FILTER_BUCKET").to_string();
    let (old, new) = (
        SigningKey::from_seed([11; 32]),
        SigningKey::from_seed([12; 32]),
    );
    let both = TrustedKeys::new(vec![old.public(), new.public()]).unwrap();
    let publisher = Publisher::new(s3.clone(), &bucket, both.clone(), 10);
    let mut source = FilterSource::new(
        s3.clone(),
        FilterLocation {
            bucket: bucket.clone(),
        },
        both.clone(),
    );
    let loaded = |r: Refresh| match r {
        Refresh::Loaded(f) => f.info().store_version,
        other => panic!("expected a loaded filter, got {other:?}"),
    };
    let refused = |r: Refresh, what: &str| match r {
        Refresh::Refused(e) => assert!(e.to_string().contains(what), "{e}"),
        other => panic!("expected a refusal naming {what:?}, got {other:?}"),
    };
    let put_manifest = |bytes: Vec<u8>| {
        let (s3, bucket) = (s3.clone(), bucket.clone());
        async move {
            s3.put_object()
                .bucket(&bucket)
                .key(MANIFEST_KEY)
                .body(ByteStream::from(bytes))
                .send()
                .await
                .unwrap();
        }
    };

    let m1 = publisher
        .publish(&old, &filter_of(&[b"a"], 1), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(loaded(source.fetch().await), 1);
    assert!(matches!(source.fetch().await, Refresh::Unchanged));
    let first = hashgate_e2e::get(&s3, &bucket, MANIFEST_KEY).await.unwrap();

    // Rotation: the new key signs while both are trusted.
    publisher
        .publish(&new, &filter_of(&[b"a", b"b"], 2), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(loaded(source.fetch().await), 2);
    let good = hashgate_e2e::get(&s3, &bucket, MANIFEST_KEY).await.unwrap();

    // An older manifest put back: a replay.
    put_manifest(first.clone()).await;
    refused(source.fetch().await, "replayed");
    // One flipped byte in what is signed.
    let text = String::from_utf8(good.clone())
        .unwrap()
        .replace("\"store_version\": 2", "\"store_version\": 3");
    put_manifest(text.into_bytes()).await;
    refused(source.fetch().await, "signature");
    // Truncated.
    put_manifest(good[..good.len() / 2].to_vec()).await;
    refused(source.fetch().await, "not a filter manifest");
    // Signed by a key nobody trusts.
    let stranger = SigningKey::from_seed([13; 32]);
    let mut forged = m1.clone();
    forged.sequence = 40;
    put_manifest(stranger.sign(&forged)).await;
    refused(source.fetch().await, "does not trust");
    // Unsigned.
    let mut unsigned: serde_json::Value = serde_json::from_slice(&good).unwrap();
    unsigned["manifest"]["sequence"] = 41.into();
    unsigned.as_object_mut().unwrap().remove("signature");
    put_manifest(serde_json::to_vec(&unsigned).unwrap()).await;
    refused(source.fetch().await, "not signed");
    // A snapshot altered under a correctly signed manifest.
    let m3 = publisher
        .publish(&new, &filter_of(&[b"c"], 3), Timestamp::now())
        .await
        .unwrap();
    let mut snapshot = hashgate_e2e::get(&s3, &bucket, &m3.snapshot).await.unwrap();
    let at = snapshot.len() - 10;
    snapshot[at] ^= 1;
    s3.put_object()
        .bucket(&bucket)
        .key(&m3.snapshot)
        .body(ByteStream::from(snapshot))
        .send()
        .await
        .unwrap();
    refused(source.fetch().await, "SHA-256");
    // Through all of it the last good filter stays: the source still stands on sequence 2.
    assert_eq!(source.manifest().map(|m| m.store_version), Some(2));
    assert!(source.refusals() >= 6);

    // After the rotation the old key is no longer trusted: what it signs is refused.
    let only_new = TrustedKeys::new(vec![new.public()]).unwrap();
    let mut after = FilterSource::new(
        s3.clone(),
        FilterLocation {
            bucket: bucket.clone(),
        },
        only_new.clone(),
    );
    let m4 = Publisher::new(s3.clone(), &bucket, only_new.clone(), 10)
        .publish(&new, &filter_of(&[b"d"], 4), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(loaded(after.fetch().await), 4);
    let mut stale = m4.clone();
    stale.sequence += 1;
    put_manifest(old.sign(&stale)).await;
    refused(after.fetch().await, "does not trust");
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_is_signed_audited_and_not_undone_by_the_next_sync() {
    let stack = Stack::start();
    let sdk = stack.sdk().await;
    let s3 = s3(&sdk);
    let dir = tempfile::tempdir().unwrap();
    for (i, body) in [b"first".as_slice(), b"second"].iter().enumerate() {
        let path = dir.path().join(format!("l{i}.txt"));
        std::fs::write(&path, plain(&[body])).unwrap();
        let out = stack
            .command(bin("hashgate"))
            .args(["lists", "import"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(manifest_sequence(&stack).await, Some(2));
    let out = stack
        .command(bin("hashgate"))
        .args([
            "filter",
            "rollback",
            "--by",
            "ops-1",
            "--reason",
            "the last build is bad",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["manifest"]["sequence"], 3);
    assert!(result["manifest"]["snapshot"]
        .as_str()
        .unwrap()
        .contains("000000000001-"));
    assert_eq!(result["manifest"]["publication"]["by"], "ops-1");
    // The audit log has it.
    let audit = aws_sdk_dynamodb::Client::new(&sdk)
        .scan()
        .table_name(stack.var("HASHGATE_AUDIT_TABLE"))
        .send()
        .await
        .unwrap();
    assert!(audit.items().iter().any(|i| {
        i.get("action")
            .and_then(|a| a.as_s().ok())
            .map(String::as_str)
            == Some("filter_rolled_back")
    }));
    // The sync leaves it while the store is where it was.
    let sync = stack.sync_worker(&[]);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(manifest_sequence(&stack).await, Some(3), "{}", sync.log());
    let status = stack
        .command(bin("hashgate"))
        .args(["filter", "status", "--json"])
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["manifest"]["sequence"], 3);
    assert_eq!(status["snapshots"].as_array().unwrap().len(), 2);
    // Nothing older than the first is kept: a second rollback back from it is refused.
    let out = stack
        .command(bin("hashgate"))
        .args(["filter", "rollback", "--by", "ops-1", "--reason", "again"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no snapshot older"));
    let _ = s3;
}

/// A list server with an ETag that honours If-None-Match, counting what it serves.
async fn list_server(body: String) -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    use axum::http::{HeaderMap, StatusCode};
    let (full, not_modified) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (f, n) = (full.clone(), not_modified.clone());
    let etag = format!(
        "\"{}\"",
        &hashgate_core::manifest::sha256_hex(body.as_bytes())[..16]
    );
    let app = axum::Router::new().route(
        "/feed.txt",
        axum::routing::get(move |headers: HeaderMap| {
            let (body, etag, f, n) = (body.clone(), etag.clone(), f.clone(), n.clone());
            async move {
                if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str())
                {
                    n.fetch_add(1, Ordering::SeqCst);
                    return (StatusCode::NOT_MODIFIED, [("etag", etag)], String::new());
                }
                f.fetch_add(1, Ordering::SeqCst);
                (StatusCode::OK, [("etag", etag)], body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, full, not_modified)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pulled_source_imports_a_changed_list_once_and_an_unchanged_etag_costs_one_request() {
    let stack = Stack::start();
    let (addr, full, not_modified) = list_server(plain(&[b"pulled 1", b"pulled 2"])).await;
    let sources = format!(
        r#"[{{"name":"feed","kind":"http","url":"http://{addr}/feed.txt","list":"pulled","format":"plain"}}]"#
    );
    let vars: BTreeMap<String, String> = stack
        .env()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain([("HASHGATE_LIST_SOURCES".to_string(), sources)])
        .collect();
    let config =
        hashgate_hashlist_sync::config::Config::from_vars(|n| vars.get(n).cloned()).unwrap();
    let sdk = stack.sdk().await;
    let handler = hashgate_hashlist_sync::connect::handler(&config, &sdk)
        .await
        .unwrap();
    let scheduled =
        serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});

    let first = handler.handle(&scheduled).await.unwrap();
    assert_eq!(first.pulled.len(), 1, "{first:?}");
    assert_eq!(first.applied.len(), 1, "{first:?}");
    assert!(first.published_sequence.is_some());
    let version = store_version(&stack).await;

    let second = handler.handle(&scheduled).await.unwrap();
    assert!(
        second.pulled.is_empty() && second.applied.is_empty(),
        "{second:?}"
    );
    assert_eq!(second.published_sequence, None);
    assert_eq!(store_version(&stack).await, version);
    assert_eq!(full.load(Ordering::SeqCst), 1);
    assert_eq!(not_modified.load(Ordering::SeqCst), 1);

    // The pulled entries match.
    let hashes = DynamoHashes::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        stack.var("HASHGATE_HASH_TABLE"),
    );
    let mut found = 0;
    hashes
        .for_each_entry(|_, provenance| {
            found += provenance.iter().filter(|p| p.list == "pulled").count();
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(found, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_generate_writes_a_private_file_or_a_secret_and_prints_the_public_key() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing.key");
    let out = stack
        .command(bin("hashgate"))
        .args(["keys", "generate", "--json", "--out"])
        .arg(&path)
        .args(["--secret-name", "e2e/filter-signing"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    // The private key never reaches the terminal.
    assert!(!String::from_utf8_lossy(&out.stdout).contains(text.trim()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let key = SigningKey::parse(&text).unwrap();
    assert_eq!(printed["public_key"], key.public().to_text());
    assert_eq!(printed["key_id"], key.public().id());
    // The secret holds the same key, and the loader reads it.
    let sdk = stack.sdk().await;
    let source = hashgate_aws::signing::KeySource::Secret(
        printed["secret_arn"].as_str().unwrap().to_string(),
    );
    let loaded = hashgate_aws::signing::load(&sdk, &source).await.unwrap();
    assert_eq!(loaded.public(), key.public());
    // An existing file is never overwritten.
    let again = stack
        .command(bin("hashgate"))
        .args(["keys", "generate", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}
