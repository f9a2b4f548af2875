//! Sharing back on the local stack: a file the scanner quarantined and two reviewers confirmed
//! is exported with `hashgate lists export --confirmed` in each format hashgate reads; each
//! export imports into a fresh local database, where `hashgate scan` matches the confirmed
//! file with the export's provenance (the case id as entry id, the reviewers' category), and
//! a file whose case is still open stays out of the export.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use hashgate_e2e::{bin, case_ids, eventually, import_list, md5_hex, put, Stack};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(90);

/// Bytes no other test uploads.
fn content(seed: u8) -> Vec<u8> {
    (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

fn run(cmd: &mut std::process::Command) -> Output {
    cmd.output().expect("run hashgate")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `hashgate scan --json --db <db> <file>`: its exit code and its one report.
fn scan(db: &Path, file: &Path) -> (i32, Value) {
    let out = run(std::process::Command::new(bin("hashgate"))
        .env_remove("HASHGATE_DB")
        .args(["scan", "--json", "--db"])
        .arg(db)
        .arg(file));
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("scan output is not one JSON report ({e}): {}", text(&out)));
    (out.status.code().unwrap_or(-1), report)
}

async fn decide(base: &str, token: &str, case_id: &str) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/cases/{case_id}/decision"))
        .bearer_auth(token)
        .json(&json!({"decision": "confirm", "reason": "matches the list", "classification": "A1"}))
        .send()
        .await
        .expect("decision request");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exported_list_imports_into_a_fresh_store_and_matches_the_confirmed_file() {
    let stack = Stack::start();
    let sdk = stack.sdk().await;
    let s3 = hashgate_aws::s3_client(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let (confirmed, open) = (content(1), content(2));
    import_list(&stack, &[&confirmed, &open], &[]);
    let worker = stack.worker(&[]);
    let bucket = stack.var("HASHGATE_UPLOAD_BUCKET").to_string();
    let cases = stack.var("HASHGATE_CASE_TABLE").to_string();
    let mut ids = Vec::new();
    for (key, body) in [
        ("share/confirmed.bin", &confirmed),
        ("share/open.bin", &open),
    ] {
        let id = put(&s3, &bucket, key, body).await.case_id();
        eventually("the case", WAIT, || {
            let (dynamo, cases, id) = (dynamo.clone(), cases.clone(), id.clone());
            async move { case_ids(&dynamo, &cases).await.contains(&id).then_some(()) }
        })
        .await;
        ids.push(id);
    }
    drop(worker);
    let api = stack.review_api(&[]);
    let (ra, rb) = (
        stack.sign_in("reviewer-a").await,
        stack.sign_in("reviewer-b").await,
    );
    let v = decide(&api.url, &ra, &ids[0]).await;
    assert_eq!(v["case"]["status"], "awaiting_second_review", "{v}");
    let v = decide(&api.url, &rb, &ids[0]).await;
    assert_eq!(v["case"]["status"], "confirmed", "{v}");
    drop(api);

    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    let (confirmed_file, open_file) = (files.join("confirmed.bin"), files.join("open.bin"));
    std::fs::write(&confirmed_file, &confirmed).unwrap();
    std::fs::write(&open_file, &open).unwrap();
    for format in ["plain", "csv", "vics"] {
        let export = dir.path().join(format!("own-{format}.list"));
        let out = run(stack
            .command(bin("hashgate"))
            .args([
                "lists",
                "export",
                "--confirmed",
                "--format",
                format,
                "--output",
            ])
            .arg(&export));
        assert_eq!(
            out.status.code(),
            Some(0),
            "export {format}: {}",
            text(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("of 1 confirmed cases"), "{stderr}");
        let written = std::fs::read_to_string(&export).unwrap();
        assert!(written.contains(&md5_hex(&confirmed)), "{written}");
        assert!(
            !written.contains(&md5_hex(&open)),
            "an open case was exported: {written}"
        );

        // The same export on standard output.
        let out = run(stack.command(bin("hashgate")).args([
            "lists",
            "export",
            "--confirmed",
            "--format",
            format,
        ]));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            written,
            "{format} on stdout"
        );

        // Another provider: a fresh database, the list named at import.
        let db = dir.path().join(format!("db-{format}"));
        let out = run(std::process::Command::new(bin("hashgate"))
            .env_remove("HASHGATE_DB")
            .args([
                "lists", "import", "--format", format, "--list", "partner", "--db",
            ])
            .arg(&db)
            .arg(&export));
        assert_eq!(
            out.status.code(),
            Some(0),
            "import {format}: {}",
            text(&out)
        );
        let (code, report) = scan(&db, &confirmed_file);
        assert_eq!(code, 1, "{format}: {report}");
        assert_eq!(report["verdict"], "match", "{report}");
        let m = &report["matches"][0];
        assert_eq!(m["digest"], md5_hex(&confirmed).as_str(), "{report}");
        assert_eq!(m["list"], "partner", "{report}");
        if format == "plain" {
            assert!(m["id"].is_null() && m["category"].is_null(), "{report}");
        } else {
            assert_eq!(m["id"], ids[0].as_str(), "{format}: {report}");
            assert_eq!(m["category"], "A1", "{format}: {report}");
        }
        let (code, report) = scan(&db, &open_file);
        assert_eq!(code, 0, "{format}: the open case's file matched: {report}");
    }

    // Errors: exit 2 with a reason, and no file left behind.
    let bad = dir.path().join("bad.csv");
    let out = run(stack
        .command(bin("hashgate"))
        .args(["lists", "export", "--confirmed", "--list", "", "--output"])
        .arg(&bad));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("list name"), "{}", text(&out));
    let out = run(stack
        .command(bin("hashgate"))
        .env_remove("HASHGATE_CASE_TABLE")
        .args(["lists", "export", "--confirmed", "--output"])
        .arg(&bad));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("HASHGATE_CASE_TABLE is not set"),
        "{}",
        text(&out)
    );
    assert!(!bad.exists());

    // The stack's own store exports too: every list, each row naming its list — the
    // imported one, and the own list the confirmation added to.
    let all = dir.path().join("all.csv");
    let out = run(stack
        .command(bin("hashgate"))
        .env_remove("HASHGATE_DB")
        .args(["lists", "export", "--all", "--output"])
        .arg(&all));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let csv = std::fs::read_to_string(&all).unwrap();
    assert!(
        csv.starts_with("md5,sha1,sha256,pdq,list,category,id\n"),
        "{csv}"
    );
    for (digest, list) in [
        (md5_hex(&confirmed), "e2e-list"),
        (md5_hex(&open), "e2e-list"),
        (md5_hex(&confirmed), "own-confirmed"),
    ] {
        assert!(
            csv.lines()
                .any(|l| l.starts_with(&format!("{digest},,,,{list},"))),
            "{digest} on {list}: {csv}"
        );
    }
    assert!(
        !csv.lines()
            .any(|l| l.starts_with(&format!("{},,,,own-confirmed,", md5_hex(&open)))),
        "the open case is on no own list: {csv}"
    );
}
