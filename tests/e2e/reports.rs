//! Report packages on the local stack: a confirmed case's package written to the reports
//! bucket (Object Lock, versioned) with `S3Reports`, written again (the first kept, nothing
//! duplicated), announced; `hashgate reports list/show/validate` on it; `hashgate reports
//! send` refused without credentials, then sent with credentials from a Secrets Manager
//! secret to a local CyberTipline (the test server of `adapters/cybertip/tests/support`)
//! until finished, every state and answer in the bucket; a second send does nothing more.
//! The report sender function's handler on Report Ready events: ignores what is not one of
//! its bucket, sends the package (an answer lost part way is an error, and the retry
//! resumes without submitting again), then leaves the finished package alone; a refused
//! one is retracted and not retried.

use std::process::Output;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, ChecksumAlgorithm, ObjectLockConfiguration, ObjectLockEnabled,
};
use hashgate_aws::reports::S3Reports;
use hashgate_aws::secrets::{fetch_secret, CredentialError};
use hashgate_core::case::{CaseRecord, CaseStatus, QuarantineLocation};
use hashgate_core::digest::{digest_bytes, Algorithm, AlgorithmSet};
use hashgate_core::event::ObjectRef;
use hashgate_core::followup::{PackageFiles, ReportOutbox, ReportReady};
use hashgate_core::report::{FileLocation, ReportConfig, ReportingPerson};
use hashgate_core::review::{Classification, Decision, Review};
use hashgate_core::scan::Match;
use hashgate_core::time::Timestamp;
use hashgate_e2e::{bin, md5_hex, stored_versions, Stack};
use serde_json::Value;

#[path = "../../adapters/cybertip/tests/support/mod.rs"]
mod ncmec;

/// Bytes no other test uploads.
const CONTENT: &[u8] = b"reports e2e: quarantined bytes \x00\x01\x02\xff";

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The stack's reports bucket, or (while the local stack does not create one yet) a bucket
/// made here as the template makes it: versioned, Object Lock in compliance mode.
async fn reports_bucket(stack: &Stack, s3: &aws_sdk_s3::Client) -> String {
    if let Some(b) = stack.env().get("HASHGATE_REPORTS_BUCKET") {
        return b.clone();
    }
    let bucket = "hashgate-e2e-reports".to_string();
    s3.create_bucket()
        .bucket(&bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("create the reports bucket");
    s3.put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("versioning");
    s3.put_object_lock_configuration()
        .bucket(&bucket)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    aws_sdk_s3::types::ObjectLockRule::builder()
                        .default_retention(
                            aws_sdk_s3::types::DefaultRetention::builder()
                                .mode(aws_sdk_s3::types::ObjectLockRetentionMode::Compliance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("object lock");
    bucket
}

/// A confirmed case whose evidence is at `evidence`.
fn confirmed_case(object: ObjectRef, evidence: QuarantineLocation) -> CaseRecord {
    let digests = digest_bytes(CONTENT, AlgorithmSet::ALL);
    let created = 1_795_255_445;
    CaseRecord {
        case_id: object.case_id(),
        object,
        size: CONTENT.len() as u64,
        digests: CaseRecord::digest_pairs(&digests),
        matches: vec![Match {
            distance: None,
            algorithm: Algorithm::Md5,
            digest: digests.get(Algorithm::Md5).unwrap(),
            list: "ncmec".into(),
            category: Some("A1".into()),
            id: Some("42".into()),
        }],
        quarantine: Some(evidence),
        status: CaseStatus::Confirmed,
        created_at: at(created),
        uploaded_at: Some(at(created - 60)),
        reviews: vec![Review {
            reviewer: "reviewer-a".into(),
            decision: Decision::Confirm,
            classification: Some(Classification::A1),
            reason: "matches the list".into(),
            at: at(created + 100),
        }],
        classification: Some(Classification::A1),
        restored_to: None,
        revision: 1,
        upload_facts: Default::default(),
        followups: Vec::new(),
        legal_hold: None,
    }
}

fn config() -> ReportConfig {
    ReportConfig {
        reporter: ReportingPerson {
            first_name: None,
            last_name: None,
            email: "trust@example.com".into(),
            phone: None,
        },
        contact: None,
        service_name: None,
        company_template: None,
        terms_of_service: None,
        legal_url: None,
        include_bucket_owner: false,
        include_source_ip: false,
        file_location: FileLocation::S3,
    }
}

/// The keys under `prefix`.
async fn keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let out = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    out.contents()
        .iter()
        .filter_map(|o| o.key())
        .map(str::to_string)
        .collect()
}

async fn secrets_client(stack: &Stack) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&stack.sdk().await)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_package_is_kept_once_listed_validated_and_sent_once() {
    let stack = Stack::start();
    let sdk = stack.sdk().await;
    let s3 = hashgate_aws::s3_client(&sdk);
    let bucket = reports_bucket(&stack, &s3).await;

    // The evidence, quarantined.
    let quarantine = stack.var("HASHGATE_QUARANTINE_BUCKET").to_string();
    let object = ObjectRef {
        bucket: stack.var("HASHGATE_UPLOAD_BUCKET").to_string(),
        key: "reports/upload.bin".into(),
        version_id: Some("v1".into()),
        etag: None,
    };
    let case_id = object.case_id();
    let evidence = QuarantineLocation::for_case(&quarantine, &case_id);
    s3.put_object()
        .bucket(&quarantine)
        .key(&evidence.key)
        .body(ByteStream::from(CONTENT.to_vec()))
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .send()
        .await
        .expect("put the evidence");
    let case = confirmed_case(object, evidence);

    // Written, then written again from a later build: the first is kept, nothing doubles.
    let event_bus = stack
        .env()
        .get("HASHGATE_EVENT_BUS")
        .cloned()
        .unwrap_or_else(|| "default".into());
    let reports = S3Reports::connect(&sdk, &bucket, Some(event_bus));
    let first = PackageFiles::build(&case, &[], &config(), at(1_795_256_000)).unwrap();
    let mut other = config();
    other.reporter.email = "other@example.com".into();
    let second = PackageFiles::build(&case, &[], &other, at(1_795_259_999)).unwrap();
    assert_ne!(first.report_xml, second.report_xml);
    assert_ne!(first.manifest, second.manifest);
    let location = reports.write_package(&first, false).await.unwrap();
    assert_eq!(location.bucket, bucket);
    assert_eq!(location.prefix, format!("reports/{case_id}/"));
    assert_eq!(
        reports.write_package(&second, false).await.unwrap(),
        location
    );
    assert_eq!(
        reports.read_package(&case_id).await.unwrap(),
        Some(first.clone())
    );
    for file in ["report.xml", "manifest.json", "package.json"] {
        let key = format!("{}{file}", location.prefix);
        assert_eq!(
            stored_versions(&s3, &bucket, &key).await.len(),
            1,
            "{key}: one version"
        );
    }
    reports
        .announce(&ReportReady {
            case_id: case_id.clone(),
            bucket: location.bucket.clone(),
            prefix: location.prefix.clone(),
            classification: "A1".into(),
            file_viewed_by_esp: false,
            built_at: first.manifest.built_at,
        })
        .await
        .expect("Report Ready published");

    let hashgate = |args: &[&str], extra: &[(&str, &str)]| {
        let mut cmd = stack.command(bin("hashgate"));
        cmd.env("HASHGATE_REPORTS_BUCKET", &bucket).args(args);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().expect("run hashgate")
    };

    // list, show, validate.
    let out = hashgate(&["reports", "list", "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = listed["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 1, "{listed}");
    assert_eq!(packages[0]["case_id"], case_id.as_str());
    assert_eq!(packages[0]["status"], "not sent");
    assert_eq!(packages[0]["manifest"]["classification"], "A1");
    assert_eq!(packages[0]["manifest"]["file_viewed_by_esp"], false);
    let out = hashgate(&["reports", "list"], &[]);
    let listing = text(&out);
    assert!(
        listing.contains(&case_id) && listing.contains("not sent"),
        "{listing}"
    );

    let out = hashgate(&["reports", "show", &case_id, "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        shown["manifest"]["report_sha256"],
        first.manifest.report_sha256
    );
    assert_eq!(shown["status"], "not sent");
    let out = hashgate(&["reports", "show", &case_id], &[]);
    let shown = text(&out);
    assert!(shown.contains("fileViewedByEsp:  false"), "{shown}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("quarantined bytes"),
        "never the evidence"
    );

    let out = hashgate(&["reports", "validate", &case_id], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("is valid"), "{}", text(&out));

    // No credentials: refused, nothing written.
    let (endpoint, server) = ncmec::server(ncmec::Ncmec::default()).await;
    let out = hashgate(
        &["reports", "send", &case_id],
        &[("HASHGATE_CYBERTIP_ENDPOINT", &endpoint)],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("not configured") && text(&out).contains("nothing was sent"),
        "{}",
        text(&out)
    );
    assert_eq!(server.lock().unwrap().submissions, 0);
    assert_eq!(reports.read_state(&case_id).await.unwrap(), None);

    // With credentials from a Secrets Manager secret: sent to the end.
    let secrets = secrets_client(&stack).await;
    secrets
        .create_secret()
        .name("hashgate/cybertip")
        .secret_string(format!(
            r#"{{"username": "{}", "password": "{}"}}"#,
            ncmec::USER,
            ncmec::PASSWORD
        ))
        .send()
        .await
        .expect("create the secret");
    let with_secret = [
        ("HASHGATE_CYBERTIP_ENDPOINT", endpoint.as_str()),
        ("HASHGATE_CYBERTIP_SECRET", "hashgate/cybertip"),
    ];
    let out = tokio::task::block_in_place(|| {
        hashgate(&["reports", "send", &case_id, "--json"], &with_secret)
    });
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        !text(&out).contains(ncmec::PASSWORD),
        "the password is never shown"
    );
    let sent: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sent["status"], "finished (report 1)", "{sent}");
    {
        let n = server.lock().unwrap();
        assert_eq!(n.submissions, 1);
        let report = &n.reports[&1];
        assert!(report.finished && !report.retracted);
        assert_eq!(report.files.len(), 1);
        assert_eq!(report.files[0].1, CONTENT, "the evidence arrives exactly");
        assert_eq!(report.files[0].2, md5_hex(CONTENT));
        assert_eq!(report.fileinfo.len(), 1);
    }
    let state = reports.read_state(&case_id).await.unwrap().unwrap();
    assert!(state.finished && state.uploaded_md5_ok && state.fileinfo_sent);
    assert_eq!((state.report_id, state.submissions), (Some(1), 1));
    let state_key = format!("{}send-state.json", location.prefix);
    assert_eq!(
        stored_versions(&s3, &bucket, &state_key).await.len(),
        4,
        "a version per step: submitted, uploaded, file details, finished"
    );
    let responses = keys(&s3, &bucket, &format!("{}responses/", location.prefix)).await;
    let names: Vec<&str> = responses
        .iter()
        .map(|k| k.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "0001-submit.xml",
            "0002-upload.xml",
            "0003-fileinfo.xml",
            "0004-finish.xml"
        ]
    );
    let finish = hashgate_e2e::get(&s3, &bucket, &responses[3])
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&finish).contains("<reportDoneResponse>"));

    // Again: nothing more is sent.
    let out =
        tokio::task::block_in_place(|| hashgate(&["reports", "send", &case_id], &with_secret));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("nothing to send"), "{}", text(&out));
    assert_eq!(server.lock().unwrap().submissions, 1);
    assert_eq!(
        keys(&s3, &bucket, &format!("{}responses/", location.prefix))
            .await
            .len(),
        4
    );
    assert_eq!(stored_versions(&s3, &bucket, &state_key).await.len(), 4);

    let out = hashgate(&["reports", "list"], &[]);
    assert!(text(&out).contains("finished (report 1)"), "{}", text(&out));
    let out = hashgate(&["reports", "show", &case_id], &[]);
    assert!(text(&out).contains("0004-finish.xml"), "{}", text(&out));

    // A package whose writer died before package.json: not a package yet (listed as
    // incomplete, not readable, not sendable); written again, it is whole.
    let object = ObjectRef {
        key: "reports/other.bin".into(),
        ..case.object.clone()
    };
    let other_case = confirmed_case(
        object.clone(),
        QuarantineLocation::for_case(&quarantine, &object.case_id()),
    );
    let other_id = other_case.case_id.clone();
    let files = PackageFiles::build(&other_case, &[], &config(), at(1_795_256_000)).unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key(format!("reports/{other_id}/report.xml"))
        .body(ByteStream::from(b"<report>half</report>".to_vec()))
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .send()
        .await
        .unwrap();
    assert_eq!(reports.read_package(&other_id).await.unwrap(), None);
    let out = hashgate(&["reports", "list"], &[]);
    assert!(
        text(&out).contains(&other_id) && text(&out).contains("incomplete"),
        "{}",
        text(&out)
    );
    let out = hashgate(&["reports", "send", &other_id], &with_secret);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no report package"), "{}", text(&out));
    reports.write_package(&files, false).await.unwrap();
    assert_eq!(reports.read_package(&other_id).await.unwrap(), Some(files));
    // Its evidence was never quarantined: no report is opened for it.
    let out = hashgate(&["reports", "send", &other_id], &with_secret);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("nothing was sent"), "{}", text(&out));
    assert_eq!(reports.read_state(&other_id).await.unwrap(), None);
    assert_eq!(server.lock().unwrap().submissions, 1);

    // A held case's package is written under the hold; another's is not.
    let mut held_case = case.clone();
    held_case.case_id = format!("{case_id}-held");
    let held = PackageFiles::build(&held_case, &[], &config(), at(1_795_256_000)).unwrap();
    let held_at = reports.write_package(&held, true).await.unwrap();
    for (prefix, want) in [(&held_at.prefix, true), (&location.prefix, false)] {
        for file in ["report.xml", "manifest.json", "package.json"] {
            let key = format!("{prefix}{file}");
            let status = s3
                .get_object_legal_hold()
                .bucket(&bucket)
                .key(&key)
                .send()
                .await
                .ok()
                .and_then(|o| o.legal_hold().and_then(|h| h.status().cloned()));
            let on = status == Some(aws_sdk_s3::types::ObjectLockLegalHoldStatus::On);
            assert_eq!(on, want, "{key}: legal hold {status:?}");
        }
    }
}

#[tokio::test]
async fn credentials_are_read_from_a_secrets_manager_secret() {
    let stack = Stack::start();
    let secrets = secrets_client(&stack).await;
    secrets
        .create_secret()
        .name("cybertip-good")
        .secret_string(r#"{"username": "usr123", "password": "pswd123"}"#)
        .send()
        .await
        .unwrap();
    secrets
        .create_secret()
        .name("cybertip-bad")
        .secret_string("pswd123")
        .send()
        .await
        .unwrap();
    let c = fetch_secret(&secrets, "cybertip-good").await.unwrap();
    assert_eq!(
        (c.username.as_str(), c.password.as_str()),
        ("usr123", "pswd123")
    );
    let e = fetch_secret(&secrets, "cybertip-bad").await.unwrap_err();
    assert!(matches!(e, CredentialError::Malformed { .. }), "{e:?}");
    assert!(!e.to_string().contains("pswd123"), "{e}");
    let e = fetch_secret(&secrets, "cybertip-missing")
        .await
        .unwrap_err();
    assert!(matches!(e, CredentialError::Unreadable { .. }), "{e:?}");
    assert!(e.to_string().contains("cybertip-missing"), "{e}");
}

/// A Report Ready event as EventBridge delivers it to the function.
fn report_ready(detail_type: &str, ready: &ReportReady) -> Value {
    serde_json::json!({
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": detail_type,
        "source": "hashgate",
        "account": "123456789012",
        "time": "2026-12-01T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": ready,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_sender_sends_each_announced_package_once() {
    use hashgate_report_sender::config::Config;
    use hashgate_report_sender::handler::{Handled, Handler};
    use hashgate_report_sender::send::SendFailure;

    let stack = Stack::start();
    let sdk = stack.sdk().await;
    let s3 = hashgate_aws::s3_client(&sdk);
    let bucket = reports_bucket(&stack, &s3).await;
    let quarantine = stack.var("HASHGATE_QUARANTINE_BUCKET").to_string();
    let reports = S3Reports::connect(&sdk, &bucket, None);

    // Two confirmed cases, their evidence quarantined and their packages written.
    let mut announced = vec![];
    for key in ["sender/one.bin", "sender/two.bin"] {
        let object = ObjectRef {
            bucket: stack.var("HASHGATE_UPLOAD_BUCKET").to_string(),
            key: key.into(),
            version_id: Some("v1".into()),
            etag: None,
        };
        let evidence = QuarantineLocation::for_case(&quarantine, &object.case_id());
        s3.put_object()
            .bucket(&quarantine)
            .key(&evidence.key)
            .body(ByteStream::from(CONTENT.to_vec()))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await
            .expect("put the evidence");
        let files = PackageFiles::build(
            &confirmed_case(object, evidence),
            &[],
            &config(),
            at(1_795_256_000),
        )
        .unwrap();
        let location = reports.write_package(&files, false).await.unwrap();
        announced.push(ReportReady {
            case_id: files.case_id.clone(),
            bucket: location.bucket,
            prefix: location.prefix,
            classification: "A1".into(),
            file_viewed_by_esp: false,
            built_at: files.manifest.built_at,
        });
    }
    let (one, two) = (&announced[0], &announced[1]);

    // The credentials in a Secrets Manager secret, as the template deploys them.
    secrets_client(&stack)
        .await
        .create_secret()
        .name("hashgate/cybertip-sender")
        .secret_string(format!(
            r#"{{"username": "{}", "password": "{}"}}"#,
            ncmec::USER,
            ncmec::PASSWORD
        ))
        .send()
        .await
        .expect("create the secret");
    // NCMEC finishes the first report but its answer is lost once.
    let (endpoint, server) = ncmec::server(ncmec::Ncmec {
        lose_finish_answers: 1,
        ..Default::default()
    })
    .await;
    let vars = [
        ("HASHGATE_REPORTS_BUCKET", bucket.as_str()),
        ("HASHGATE_CYBERTIP_SECRET", "hashgate/cybertip-sender"),
        ("HASHGATE_CYBERTIP_ENDPOINT", endpoint.as_str()),
    ];
    let config = Config::from_vars(|name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let handler = Handler::new(config, sdk.clone());

    // Not a Report Ready event, or another bucket's: ignored, nothing read or sent.
    let mut elsewhere = one.clone();
    elsewhere.bucket = "someone-elses-reports".into();
    for event in [
        report_ready("Case Opened", one),
        report_ready("Report Ready", &elsewhere),
        serde_json::json!({"source": "aws.s3", "detail-type": "Object Created", "detail": {}}),
    ] {
        let handled = handler.handle(event.clone()).await.unwrap();
        assert!(
            matches!(handled, Handled::Ignored(_)),
            "{event}: {handled:?}"
        );
    }
    assert_eq!(server.lock().unwrap().submissions, 0);
    assert_eq!(reports.read_state(&one.case_id).await.unwrap(), None);

    // The first delivery stops at the lost answer: an error, so Lambda retries it; what was
    // done is persisted.
    let e = handler
        .handle(report_ready("Report Ready", one))
        .await
        .unwrap_err();
    assert!(matches!(e, SendFailure::Stopped { .. }), "{e:?}");
    let state = reports.read_state(&one.case_id).await.unwrap().unwrap();
    assert!(state.fileinfo_sent && !state.finished, "{state:?}");
    assert_eq!((state.report_id, state.submissions), (Some(1), 1));
    // The retry resumes at the finish, which NCMEC says is done already: finished, one
    // report submitted.
    match handler
        .handle(report_ready("Report Ready", one))
        .await
        .unwrap()
    {
        Handled::Sent(state) => {
            assert!(state.finished && state.stopped.is_none(), "{state:?}");
            assert_eq!(state.submissions, 1);
        }
        other => panic!("{other:?}"),
    }
    {
        let n = server.lock().unwrap();
        assert_eq!(n.submissions, 1);
        assert!(n.reports[&1].finished);
        assert_eq!(
            n.reports[&1].files[0].1, CONTENT,
            "the evidence arrives exactly"
        );
    }
    let prefix = &one.prefix;
    let answers = keys(&s3, &bucket, &format!("{prefix}responses/")).await;
    assert_eq!(answers.len(), 5, "{answers:?}");
    let versions = stored_versions(&s3, &bucket, &format!("{prefix}send-state.json"))
        .await
        .len();

    // Delivered again (EventBridge delivers at least once): nothing more is sent or written.
    let handled = handler
        .handle(report_ready("Report Ready", one))
        .await
        .unwrap();
    assert!(
        matches!(handled, Handled::AlreadyDone(ref s) if s.finished),
        "{handled:?}"
    );
    assert_eq!(server.lock().unwrap().submissions, 1);
    assert_eq!(
        keys(&s3, &bucket, &format!("{prefix}responses/"))
            .await
            .len(),
        5
    );
    assert_eq!(
        stored_versions(&s3, &bucket, &format!("{prefix}send-state.json"))
            .await
            .len(),
        versions
    );

    // A report NCMEC refuses is retracted: done, with the reason, and not retried.
    server.lock().unwrap().refuse = Some("fileinfo");
    match handler
        .handle(report_ready("Report Ready", two))
        .await
        .unwrap()
    {
        Handled::Sent(state) => {
            assert!(state.retracted && !state.finished, "{state:?}");
            assert!(state.stopped.is_some(), "{state:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(server.lock().unwrap().reports[&2].retracted);
    let handled = handler
        .handle(report_ready("Report Ready", two))
        .await
        .unwrap();
    assert!(matches!(handled, Handled::AlreadyDone(_)), "{handled:?}");
    assert_eq!(server.lock().unwrap().submissions, 2);
}
