//! `CyberTipline` and `send` against a local server (`support`, started here) that
//! implements the documented endpoints (`/submit`, `/upload`, `/fileinfo`, `/finish`,
//! `/retract`, `/status`) with basic authentication and the documented response codes.

use std::sync::{Arc, Mutex};

use hashgate_core::case::{CaseRecord, CaseStatus, QuarantineLocation};
use hashgate_core::digest::{digest_bytes, Algorithm, AlgorithmSet};
use hashgate_core::event::ObjectRef;
use hashgate_core::report::{
    incident_xml, FileLocation, ReportConfig, ReportInput, ReportingPerson, UploadFacts,
};
use hashgate_core::review::{Classification, Decision, Review};
use hashgate_core::scan::Match;
use hashgate_core::sender::{Package, SendState};
use hashgate_core::time::Timestamp;
use hashgate_cybertip::{
    parse_response, send, send_recording, Answer, ApiError, Credentials, CyberTipline, Reply,
    ReportApi, Stopped,
};

mod support;

use support::{element, md5, server, Ncmec, PASSWORD, USER};

const CONTENT: &[u8] = b"quarantined bytes, \x00\xff and more";

fn api(endpoint: &str) -> CyberTipline {
    CyberTipline::new(
        endpoint,
        Credentials {
            username: USER.into(),
            password: PASSWORD.into(),
        },
    )
    .unwrap()
}

// ---- the package -----------------------------------------------------------------------

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

fn package() -> Package {
    let digests = digest_bytes(CONTENT, AlgorithmSet::ALL);
    let created = 1_795_255_445;
    let case = CaseRecord {
        case_id: "case-1".into(),
        object: ObjectRef {
            bucket: "uploads".into(),
            key: "photos/ä <&> \"b\".jpg".into(),
            version_id: Some("v1".into()),
            etag: None,
        },
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
        quarantine: Some(QuarantineLocation::for_case("quarantine", "case-1")),
        status: CaseStatus::Confirmed,
        created_at: at(created),
        uploaded_at: Some(at(created - 60)),
        reviews: vec![Review {
            reviewer: "alice".into(),
            decision: Decision::Confirm,
            classification: Some(Classification::A1),
            reason: "matches".into(),
            at: at(created + 100),
        }],
        classification: Some(Classification::A1),
        restored_to: None,
        revision: 1,
        upload_facts: Default::default(),
        followups: Vec::new(),
        legal_hold: None,
    };
    let config = ReportConfig {
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
    };
    let input = ReportInput::new(&case, &[], UploadFacts::default()).unwrap();
    let built_at = at(created + 200);
    Package {
        report_xml: incident_xml(&config, &input, built_at).unwrap(),
        config,
        input,
        built_at,
        evidence: QuarantineLocation::for_case("quarantine", "case-1"),
        file_name: "case-1".into(),
        md5: md5(CONTENT),
    }
}

/// The caller's store of states; `crash_after` makes the persist after that many writes
/// fail once the state is written (the process dies right after its write).
#[derive(Clone, Default)]
struct Store {
    states: Arc<Mutex<Vec<SendState>>>,
}

impl Store {
    fn last(&self) -> SendState {
        self.states.lock().unwrap().last().cloned().unwrap()
    }

    fn len(&self) -> usize {
        self.states.lock().unwrap().len()
    }
}

async fn run(
    api: &CyberTipline,
    state: SendState,
    store: &Store,
    crash_after: Option<usize>,
) -> Result<SendState, Stopped> {
    let written = Arc::new(Mutex::new(0usize));
    send(
        package(),
        state,
        api,
        |location: QuarantineLocation| async move {
            assert_eq!(
                location,
                QuarantineLocation::for_case("quarantine", "case-1")
            );
            Ok(CONTENT.to_vec())
        },
        |state: SendState| {
            let store = store.clone();
            let written = written.clone();
            async move {
                store.states.lock().unwrap().push(state);
                let mut w = written.lock().unwrap();
                *w += 1;
                if Some(*w) == crash_after {
                    return Err("crashed".to_string());
                }
                Ok(())
            }
        },
    )
    .await
}

// ---- the tests -------------------------------------------------------------------------

#[tokio::test]
async fn the_whole_flow_end_to_end() {
    let (endpoint, ncmec) = server(Ncmec::default()).await;
    let api = api(&endpoint);
    assert!(api.status().await.unwrap().contains("Remote User : usr123"));
    let store = Store::default();
    let state = run(&api, SendState::new("case-1"), &store, None)
        .await
        .unwrap();
    assert!(state.finished && state.fileinfo_sent && state.uploaded_md5_ok);
    assert_eq!(state.report_id, Some(1));
    assert_eq!(state.uploaded_md5.as_deref(), Some(md5(CONTENT).as_str()));
    assert_eq!(store.len(), 4);
    assert_eq!(store.last(), state);
    let n = ncmec.lock().unwrap();
    assert_eq!(n.submissions, 1);
    let report = &n.reports[&1];
    assert!(report.finished && !report.retracted);
    assert_eq!(report.files.len(), 1);
    assert_eq!(report.files[0].1, CONTENT, "the bytes arrive exactly");
    assert_eq!(report.fileinfo.len(), 1);
    let details = &report.fileinfo[0];
    assert_eq!(element(details, "reportId").as_deref(), Some("1"));
    assert_eq!(element(details, "fileId"), Some(report.files[0].0.clone()));
    assert!(details.contains("&lt;&amp;&gt;"), "{details}");
}

#[tokio::test]
async fn a_crash_after_each_step_resumes_without_a_second_submission() {
    for crash_after in 1..=4 {
        let (endpoint, ncmec) = server(Ncmec::default()).await;
        let api = api(&endpoint);
        let store = Store::default();
        let stopped = run(&api, SendState::new("case-1"), &store, Some(crash_after)).await;
        assert!(
            matches!(stopped, Err(Stopped::Persist { .. })),
            "{crash_after}"
        );
        assert_eq!(store.len(), crash_after);
        let state = run(&api, store.last(), &store, None).await.unwrap();
        assert!(state.finished, "crash after {crash_after}");
        let n = ncmec.lock().unwrap();
        assert_eq!(n.submissions, 1, "crash after {crash_after}");
        assert_eq!(n.reports.len(), 1);
        let report = &n.reports[&1];
        assert!(report.finished);
        assert_eq!((report.files.len(), report.fileinfo.len()), (1, 1));
    }
}

#[tokio::test]
async fn wrong_credentials_are_a_clear_error_and_nothing_is_submitted() {
    let (endpoint, ncmec) = server(Ncmec::default()).await;
    let api = CyberTipline::new(
        &endpoint,
        Credentials {
            username: USER.into(),
            password: "wrong".into(),
        },
    )
    .unwrap();
    assert!(matches!(api.status().await, Err(ApiError::Unauthorized(_))));
    let store = Store::default();
    let err = run(&api, SendState::new("case-1"), &store, None)
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("credentials") && message.contains("401"),
        "{message}"
    );
    assert!(!message.contains("wrong"), "the password is never shown");
    let Stopped::Api { state, error } = err else {
        panic!("{err:?}")
    };
    assert!(matches!(error, ApiError::Unauthorized(_)));
    assert_eq!((state.attempts, state.report_id), (1, None));
    assert_eq!(store.last(), *state, "the attempt is persisted");
    assert_eq!(ncmec.lock().unwrap().submissions, 0);
}

#[tokio::test]
async fn a_validation_failure_is_retracted() {
    for step in ["upload", "fileinfo", "finish"] {
        let (endpoint, ncmec) = server(Ncmec {
            refuse: Some(step),
            ..Ncmec::default()
        })
        .await;
        let store = Store::default();
        let state = run(&api(&endpoint), SendState::new("case-1"), &store, None)
            .await
            .unwrap();
        assert!(state.retracted && !state.finished, "{step}");
        let reason = state.stopped.unwrap();
        assert!(reason.contains(step), "{reason}");
        let n = ncmec.lock().unwrap();
        assert!(n.reports[&1].retracted && !n.reports[&1].finished, "{step}");
    }
    // A refused submit opened nothing: nothing to retract.
    let (endpoint, ncmec) = server(Ncmec {
        refuse: Some("submit"),
        ..Ncmec::default()
    })
    .await;
    let state = run(
        &api(&endpoint),
        SendState::new("case-1"),
        &Store::default(),
        None,
    )
    .await
    .unwrap();
    assert!(!state.retracted && state.report_id.is_none());
    assert!(state.stopped.unwrap().contains("4100 (validation failed)"));
    assert_eq!(ncmec.lock().unwrap().reports.len(), 0);
}

#[tokio::test]
async fn an_md5_mismatch_is_retracted() {
    let (endpoint, ncmec) = server(Ncmec {
        wrong_md5: true,
        ..Ncmec::default()
    })
    .await;
    let state = run(
        &api(&endpoint),
        SendState::new("case-1"),
        &Store::default(),
        None,
    )
    .await
    .unwrap();
    assert!(state.retracted && !state.finished && !state.uploaded_md5_ok);
    assert!(state.stopped.unwrap().contains("MD5"));
    let n = ncmec.lock().unwrap();
    assert!(n.reports[&1].retracted && !n.reports[&1].finished);
    assert!(n.reports[&1].fileinfo.is_empty());
}

#[tokio::test]
async fn a_lost_finish_answer_is_done_on_the_retry_as_already_finished() {
    let (endpoint, ncmec) = server(Ncmec {
        lose_finish_answers: 1,
        ..Ncmec::default()
    })
    .await;
    let api = api(&endpoint);
    let store = Store::default();
    let err = run(&api, SendState::new("case-1"), &store, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Stopped::Api {
                error: ApiError::Server { .. },
                ..
            }
        ),
        "{err:?}"
    );
    let state = store.last();
    assert_eq!(state.attempts, 1);
    assert!(!state.finished);
    // The retry hears 5102 "Report already finished": done.
    assert_eq!(
        api.finish(1).await.unwrap(),
        Reply::Refused {
            code: 5102,
            description: "Report already finished".into()
        }
    );
    let state = run(&api, state, &store, None).await.unwrap();
    assert!(state.finished && state.stopped.is_none());
    let n = ncmec.lock().unwrap();
    assert_eq!((n.submissions, n.reports.len()), (1, 1));
}

#[tokio::test]
async fn every_answer_is_handed_to_the_recorder_before_its_state_is_persisted() {
    let (endpoint, _ncmec) = server(Ncmec::default()).await;
    let api = api(&endpoint);
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let recorded = |fail: bool| {
        let log = log.clone();
        move |answer: Answer| {
            let log = log.clone();
            async move {
                assert!(parse_response(&answer.body).is_some(), "{answer:?}");
                log.lock()
                    .unwrap()
                    .push(format!("{} {}", answer.step, answer.status));
                if fail {
                    return Err("disk full".to_string());
                }
                Ok(())
            }
        }
    };
    let persisted = |state: SendState| {
        let log = log.clone();
        async move {
            log.lock()
                .unwrap()
                .push(format!("persist finished={}", state.finished));
            Ok(())
        }
    };
    let evidence = |_: QuarantineLocation| async { Ok(CONTENT.to_vec()) };
    let state = send_recording(
        package(),
        SendState::new("case-1"),
        &api,
        evidence,
        persisted,
        recorded(false),
    )
    .await
    .unwrap();
    assert!(state.finished);
    assert_eq!(
        *log.lock().unwrap(),
        [
            "submit 200",
            "persist finished=false",
            "upload 200",
            "persist finished=false",
            "fileinfo 200",
            "persist finished=false",
            "finish 200",
            "persist finished=true",
        ]
    );
    // A recorder that fails: the state the answer led to is still persisted, then the run
    // stops, and a rerun goes on from that state without a second submission.
    log.lock().unwrap().clear();
    let (endpoint, ncmec) = server(Ncmec::default()).await;
    let api = self::api(&endpoint);
    let err = send_recording(
        package(),
        SendState::new("case-1"),
        &api,
        evidence,
        persisted,
        recorded(true),
    )
    .await
    .unwrap_err();
    let Stopped::Record { state, step, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!((step.as_str(), state.report_id), ("submit", Some(1)));
    assert_eq!(
        *log.lock().unwrap(),
        ["submit 200", "persist finished=false"]
    );
    let state = send(package(), *state, &api, evidence, persisted)
        .await
        .unwrap();
    assert!(state.finished);
    assert_eq!(ncmec.lock().unwrap().submissions, 1);
}
