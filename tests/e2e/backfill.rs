//! `hashgate backfill` on the local stack: objects stored before anything scanned them are
//! listed, scanned by the scanner's own pipeline and checkpointed page by page; a run
//! stopped part-way resumes where it stopped; `--dry-run` touches nothing; and the upload
//! events of the same objects, handled afterwards by the worker, open no second case.

use std::process::Output;
use std::time::Duration;

use hashgate_e2e::{bin, case_ids, eventually, get, import_list, put, tags, Stack};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(120);

fn backfill(stack: &Stack, args: &[&str]) -> Output {
    stack
        .command(bin("hashgate"))
        .arg("backfill")
        .args(args)
        .output()
        .expect("run hashgate backfill")
}

fn summary(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("{e}: {text}\n{}", String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_already_full_is_scanned_resumably_and_converges_with_its_events() {
    let stack = Stack::start();
    let sdk = stack.sdk().await;
    let s3 = hashgate_aws::s3_client(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let case_table = stack.var("HASHGATE_CASE_TABLE").to_string();
    let uploads = stack.var("HASHGATE_UPLOAD_BUCKET").to_string();
    let listed: [&[u8]; 2] = [b"backfill e2e: listed one", b"backfill e2e: listed two"];
    import_list(&stack, &listed, &[]);

    // 130 objects under old/ (two of them listed, late in key order), 5 elsewhere.
    let mut clean = Vec::new();
    for i in 0..128 {
        let key = format!(
            "old/{i:03} ünï+ %{}.txt",
            if i % 2 == 0 { " x" } else { "" }
        );
        put(
            &s3,
            &uploads,
            &key,
            format!("old clean object {i}").as_bytes(),
        )
        .await;
        clean.push(key);
    }
    let a = put(&s3, &uploads, "old/zz listed one", listed[0]).await;
    let b = put(&s3, &uploads, "old/zz listed two", listed[1]).await;
    for i in 0..5 {
        put(&s3, &uploads, &format!("new/{i}"), b"elsewhere").await;
    }
    let target = format!("s3://{uploads}/old/");
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("checkpoint.json");
    let checkpoint = checkpoint.to_str().unwrap();

    // --dry-run: counts, scans nothing, saves nothing.
    let out = backfill(
        &stack,
        &[&target, "--dry-run", "--json", "--page-size", "40"],
    );
    assert!(out.status.success(), "{out:?}");
    let s = summary(&out);
    assert_eq!(s["objects"], 130, "{s}");
    assert!(tags(&s3, &uploads, &clean[0], None).await.is_empty());
    assert!(!std::path::Path::new(checkpoint).exists());

    // A run stopped after 50 objects, in pages of 20.
    let common = [
        "--checkpoint",
        checkpoint,
        "--rate",
        "0",
        "--json",
        "--page-size",
        "20",
    ];
    let mut args = vec![target.as_str()];
    args.extend(common);
    args.extend(["--limit", "50"]);
    let out = backfill(&stack, &args);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let s = summary(&out);
    assert_eq!(
        (s["this_run"].as_u64(), s["complete"].as_bool()),
        (Some(50), Some(false)),
        "{s}"
    );
    assert_eq!(s["outcomes"]["clean"], 50, "{s}");
    let done = |key: &str| {
        let (s3, uploads, key) = (&s3, &uploads, key.to_string());
        async move {
            tags(s3, uploads, &key, None)
                .await
                .get("hashgate-scan")
                .cloned()
        }
    };
    assert_eq!(done(&clean[49]).await.as_deref(), Some("clean"));
    assert_eq!(done(&clean[50]).await, None, "not reached yet");

    // Run again: it resumes after the 50th key and finishes; the two matches exit 1.
    let mut args = vec![target.as_str()];
    args.extend(common);
    let out = backfill(&stack, &args);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let s = summary(&out);
    assert_eq!(s["this_run"], 80, "{s}");
    assert_eq!(s["objects"], 130, "{s}");
    assert_eq!(s["complete"], true, "{s}");
    assert_eq!(s["outcomes"]["clean"], 128, "{s}");
    assert_eq!(s["outcomes"]["match"], 2, "{s}");
    let mut want = vec![a.case_id(), b.case_id()];
    want.sort();
    assert_eq!(case_ids(&dynamo, &case_table).await, want);
    assert_eq!(
        get(&s3, &uploads, "old/zz listed one").await,
        None,
        "quarantined"
    );
    for key in &clean {
        assert_eq!(done(key).await.as_deref(), Some("clean"), "{key}");
    }
    assert_eq!(done("new/0").await, None, "outside the prefix");

    // A finished backfill is not repeated; a checkpoint of another prefix is refused.
    let out = backfill(&stack, &args);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already backfilled"),
        "{out:?}"
    );
    let other = format!("s3://{uploads}/new/");
    let out = backfill(&stack, &[&other, "--checkpoint", checkpoint]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("use another checkpoint file"),
        "{out:?}"
    );

    // The same objects' upload events, handled now by the worker, open no second case.
    let worker = stack.worker(&[]);
    eventually("the worker to handle every queued event", WAIT, || {
        let log = worker.log();
        async move { (log.matches("\"key\":\"").count() >= 135).then_some(()) }
    })
    .await;
    assert_eq!(case_ids(&dynamo, &case_table).await, want);
    assert_eq!(done("new/0").await.as_deref(), Some("clean"));
}
