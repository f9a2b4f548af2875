//! Legal holds on the local stack: `hashgate cases hold` puts an Object Lock legal hold on a
//! quarantined case's copy and on every object version of its report package, the emulator
//! then refuses to delete them even to a principal that may bypass governance retention,
//! the case records the hold with its audit entry and the chain verifies; `hashgate cases
//! release` records the release and lifts the holds. A release recorded by a run that
//! stopped before lifting them is finished by running it again; a hold placed in storage
//! but never recorded is left on.

use std::process::Output;
use std::time::Duration;

use aws_sdk_s3::types::ObjectLockLegalHoldStatus;
use hashgate_aws::dynamo::DynamoCases;
use hashgate_aws::hold::{Hold, LegalHolds};
use hashgate_core::audit::AuditAction;
use hashgate_core::hold;
use hashgate_core::review::{ReviewStore, Updated};
use hashgate_core::time::Timestamp;
use hashgate_e2e::{bin, case_ids, eventually, import_list, put, Stack};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);

/// Bytes no other test uploads.
fn content() -> Vec<u8> {
    (0..4096u32)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8 ^ 0x5a)
        .collect()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `hashgate cases <command> <case> --by <by> --reason <reason> --json`: exit code and its
/// one JSON answer.
fn cases(
    stack: &Stack,
    reports: &str,
    command: &str,
    case: &str,
    by: &str,
    reason: &str,
) -> (i32, Value) {
    let out = stack
        .command(bin("hashgate"))
        .env("HASHGATE_REPORTS_BUCKET", reports)
        .args([
            "cases", command, case, "--by", by, "--reason", reason, "--json",
        ])
        .output()
        .expect("run hashgate");
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not one JSON answer ({e}): {}", text(&out)));
    (out.status.code().unwrap_or(-1), v)
}

fn audit_verify(stack: &Stack) {
    let out = stack
        .command(bin("hashgate"))
        .args(["audit", "verify"])
        .output()
        .expect("run hashgate");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("audit chain verified"),
        "{}",
        text(&out)
    );
}

/// (bucket, key, version id) of every object version the answer names.
fn versions(v: &Value) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = v["versions"]
        .as_array()
        .unwrap_or_else(|| panic!("no versions: {v}"))
        .iter()
        .map(|x| {
            let s = |k: &str| x[k].as_str().unwrap().to_string();
            (s("bucket"), s("key"), s("version_id"))
        })
        .collect();
    out.sort();
    out
}

async fn legal_hold(
    s3: &aws_sdk_s3::Client,
    (bucket, key, version): &(String, String, String),
) -> ObjectLockLegalHoldStatus {
    let out = s3
        .get_object_legal_hold()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObjectLegalHold {key} {version}: {e:?}"));
    out.legal_hold()
        .and_then(|h| h.status())
        .cloned()
        .unwrap_or(ObjectLockLegalHoldStatus::Off)
}

/// Delete exactly this version, bypassing governance retention (the quarantined copy's
/// retention is GOVERNANCE): only a legal hold stands in the way then.
async fn delete_bypassing(
    s3: &aws_sdk_s3::Client,
    (bucket, key, version): &(String, String, String),
) -> Result<(), String> {
    s3.delete_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .bypass_governance_retention(true)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

async fn actions(store: &DynamoCases, case_id: &str) -> Vec<AuditAction> {
    store
        .history(case_id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.entry.action)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_legal_hold_keeps_the_evidence_and_report_until_released_and_is_audited() {
    let stack = Stack::start();
    let sdk = stack.sdk().await;
    let s3 = hashgate_aws::s3_client(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let store = DynamoCases::new(
        dynamo.clone(),
        stack.var("HASHGATE_CASE_TABLE"),
        stack.var("HASHGATE_AUDIT_TABLE"),
    );
    let bad = content();
    import_list(&stack, &[&bad], &[]);
    let worker = stack.worker(&[]);
    let bucket = stack.var("HASHGATE_UPLOAD_BUCKET").to_string();
    let cases_table = stack.var("HASHGATE_CASE_TABLE").to_string();
    let id = put(&s3, &bucket, "hold/evidence.bin", &bad).await.case_id();
    let id2 = put(&s3, &bucket, "hold/second.bin", &bad).await.case_id();
    for id in [&id, &id2] {
        eventually("the case", WAIT, || {
            let (dynamo, table, id) = (dynamo.clone(), cases_table.clone(), id.clone());
            async move { case_ids(&dynamo, &table).await.contains(&id).then_some(()) }
        })
        .await;
    }
    drop(worker);
    let case = store.case(&id).await.unwrap().expect("the case");
    let unrecorded = store.case(&id2).await.unwrap().expect("the second case");
    let quarantine = case.quarantine.clone().expect("a quarantined copy");

    // A reports bucket under Object Lock with a package of two files, one written twice.
    let reports = format!("hold-reports-{}", &id[5..17]);
    s3.create_bucket()
        .bucket(&reports)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("create the reports bucket");
    let prefix = hold::report_prefix(&id);
    for (name, body) in [
        ("report.xml", &b"<report/>"[..]),
        ("package.json", b"{}"),
        ("package.json", b"{\"v\":2}"),
    ] {
        put(&s3, &reports, &format!("{prefix}{name}"), body).await;
    }
    // Another case's package is not held.
    let other = put(&s3, &reports, "reports/case-other/package.json", b"{}").await;

    // Hold.
    let (code, v) = cases(
        &stack,
        &reports,
        "hold",
        &id,
        "counsel",
        "preservation request 24-117",
    );
    assert_eq!(code, 0, "{v}");
    let held = versions(&v);
    assert_eq!(held.len(), 4, "the copy and three report versions: {v}");
    assert_eq!(
        held.iter()
            .filter(|(b, k, _)| *b == quarantine.bucket && *k == quarantine.key)
            .count(),
        1,
        "{v}"
    );
    assert_eq!(
        held.iter()
            .filter(|(b, k, _)| *b == reports && k.starts_with(&prefix))
            .count(),
        3,
        "{v}"
    );
    for version in &held {
        assert_eq!(
            legal_hold(&s3, version).await,
            ObjectLockLegalHoldStatus::On,
            "{version:?}"
        );
        let refused = delete_bypassing(&s3, version).await;
        assert!(
            refused.is_err(),
            "{version:?} was deleted under a legal hold"
        );
    }
    let other = (
        reports.clone(),
        other.key,
        other.version_id.expect("versioned"),
    );
    assert_eq!(
        legal_hold(&s3, &other).await,
        ObjectLockLegalHoldStatus::Off
    );
    let case = store.case(&id).await.unwrap().unwrap();
    let h = case.legal_hold.as_ref().expect("the case records the hold");
    assert_eq!(
        (h.by.as_str(), h.reason.as_str()),
        ("counsel", "preservation request 24-117")
    );
    assert_eq!(
        actions(&store, &id).await,
        [AuditAction::Quarantined, AuditAction::HoldPlaced]
    );
    let entry = store.history(&id).await.unwrap().pop().unwrap().entry;
    assert_eq!(entry.reason.as_deref(), Some("preservation request 24-117"));
    assert_eq!(entry.actor, "counsel");
    audit_verify(&stack);

    // A file added to the package after the hold: holding again holds it (and says the hold
    // was recorded already); the audit log is unchanged.
    let late = put(&s3, &reports, &format!("{prefix}send-state.json"), b"{}").await;
    let late = (
        reports.clone(),
        late.key,
        late.version_id.expect("versioned"),
    );
    assert_eq!(legal_hold(&s3, &late).await, ObjectLockLegalHoldStatus::Off);
    let (code, v) = cases(&stack, &reports, "hold", &id, "counsel", "late file");
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["finished"], true, "{v}");
    let changed: Vec<&Value> = v["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["changed"] == true)
        .collect();
    assert_eq!(changed.len(), 1, "only the late file: {v}");
    assert_eq!(legal_hold(&s3, &late).await, ObjectLockLegalHoldStatus::On);
    assert_eq!(actions(&store, &id).await.len(), 2);
    let mut held = held;
    held.push(late);
    held.sort();

    // Refusals change nothing: a held case is not held again, a reason is required.
    let (code, v) = cases(&stack, &reports, "hold", &id, "counsel", "again");
    assert_eq!(code, 1, "{v}");
    assert!(
        v["refused"]
            .as_str()
            .unwrap()
            .contains("already on legal hold"),
        "{v}"
    );
    let (code, v) = cases(&stack, &reports, "release", &id, "counsel", " ");
    assert_eq!(code, 1, "{v}");
    assert!(v["refused"].as_str().unwrap().contains("reason"), "{v}");
    assert_eq!(actions(&store, &id).await.len(), 2);

    // Release: recorded, then lifted.
    let (code, v) = cases(&stack, &reports, "release", &id, "counsel", "matter closed");
    assert_eq!(code, 0, "{v}");
    assert_eq!(versions(&v), held);
    for version in &held {
        assert_eq!(
            legal_hold(&s3, version).await,
            ObjectLockLegalHoldStatus::Off,
            "{version:?}"
        );
    }
    assert_eq!(store.case(&id).await.unwrap().unwrap().legal_hold, None);
    assert_eq!(
        actions(&store, &id).await,
        [
            AuditAction::Quarantined,
            AuditAction::HoldPlaced,
            AuditAction::HoldReleased
        ]
    );
    audit_verify(&stack);
    let (code, v) = cases(&stack, &reports, "release", &id, "counsel", "again");
    assert_eq!(code, 1, "{v}");
    assert!(
        v["refused"].as_str().unwrap().contains("not on legal hold"),
        "{v}"
    );

    // A release recorded by a run that stopped before lifting the holds: run again, it
    // finishes.
    let (code, v) = cases(&stack, &reports, "hold", &id, "counsel", "new request");
    assert_eq!(code, 0, "{v}");
    let case = store.case(&id).await.unwrap().unwrap();
    let change = hold::release(&case, "counsel", "closed again", Timestamp::now()).unwrap();
    assert!(matches!(
        store.update(&change.case, change.audit).await.unwrap(),
        Updated::Written(_)
    ));
    for version in &held {
        assert_eq!(
            legal_hold(&s3, version).await,
            ObjectLockLegalHoldStatus::On
        );
    }
    let (code, v) = cases(&stack, &reports, "release", &id, "counsel", "closed again");
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["finished"], true, "{v}");
    for version in &held {
        assert_eq!(
            legal_hold(&s3, version).await,
            ObjectLockLegalHoldStatus::Off
        );
    }
    assert_eq!(
        actions(&store, &id).await.len(),
        5,
        "finishing adds no entry"
    );
    let (code, v) = cases(&stack, &reports, "release", &id, "counsel", "closed again");
    assert_eq!(code, 1, "nothing left to finish: {v}");

    // A hold placed in storage but never recorded (a hold that stopped before the case
    // update): a release does not lift it, only a recorded release lifts a hold; the hold
    // run again completes it.
    let copy2 = unrecorded.quarantine.clone().expect("a quarantined copy");
    let holds = LegalHolds::new(s3.clone());
    let stray = holds
        .set_key(&copy2.bucket, &copy2.key, Hold::On)
        .await
        .unwrap();
    assert_eq!(stray.len(), 1);
    let stray = (
        stray[0].bucket.clone(),
        stray[0].key.clone(),
        stray[0].version_id.clone(),
    );
    let id2 = unrecorded.case_id.clone();
    let (code, v) = cases(&stack, &reports, "release", &id2, "counsel", "stray");
    assert_eq!(code, 1, "{v}");
    assert_eq!(legal_hold(&s3, &stray).await, ObjectLockLegalHoldStatus::On);
    let (code, v) = cases(&stack, &reports, "hold", &id2, "counsel", "request 2");
    assert_eq!(code, 0, "{v}");
    assert_eq!(legal_hold(&s3, &stray).await, ObjectLockLegalHoldStatus::On);
    assert_eq!(
        actions(&store, &id2).await,
        [AuditAction::Quarantined, AuditAction::HoldPlaced]
    );
    audit_verify(&stack);

    // Lifted for good: retention alone is left, which governance bypass may override.
    let copy = held
        .iter()
        .find(|(b, _, _)| *b == quarantine.bucket)
        .unwrap();
    delete_bypassing(&s3, copy)
        .await
        .expect("no legal hold in the way any more");
}
