//! `CyberTipline` and `send` against a local server, started here, that implements the
//! documented endpoints (`/submit`, `/upload`, `/fileinfo`, `/finish`, `/retract`,
//! `/status`) with basic authentication and the documented response codes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
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
use hashgate_cybertip::{send, ApiError, Credentials, CyberTipline, Reply, ReportApi, Stopped};

const CONTENT: &[u8] = b"quarantined bytes, \x00\xff and more";
const USER: &str = "usr123";
const PASSWORD: &str = "pswd123";

fn md5(bytes: &[u8]) -> String {
    digest_bytes(bytes, AlgorithmSet::ALL)
        .get(Algorithm::Md5)
        .unwrap()
        .to_hex()
}

// ---- the server ------------------------------------------------------------------------

#[derive(Default)]
struct Ncmec {
    next_id: u64,
    submissions: u32,
    reports: BTreeMap<u64, Report>,
    /// Answer uploads with the MD5 of other bytes.
    wrong_md5: bool,
    /// Refuse this endpoint with 4100 "Validation failed" (HTTP 400).
    refuse: Option<&'static str>,
    /// Finish, then answer HTTP 502 with no document (the answer is lost), this many times.
    lose_finish_answers: u32,
}

#[derive(Default, Debug)]
struct Report {
    files: Vec<(String, Vec<u8>, String)>,
    fileinfo: Vec<String>,
    finished: bool,
    retracted: bool,
}

type Shared = Arc<Mutex<Ncmec>>;

fn document(root: &str, code: i32, description: &str, fields: &[(&str, String)]) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<{root}>\n    \
         <responseCode>{code}</responseCode>\n"
    );
    if root == "reportResponse" {
        xml.push_str(&format!(
            "    <responseDescription>{description}</responseDescription>\n"
        ));
    }
    for (name, value) in fields {
        xml.push_str(&format!("    <{name}>{value}</{name}>\n"));
    }
    xml.push_str(&format!("</{root}>\n"));
    xml
}

fn reply(status: StatusCode, xml: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/xml")], xml).into_response()
}

fn code(code: i32, description: &str, report_id: u64) -> Response {
    let status = match code {
        0 => StatusCode::OK,
        1000..=1999 => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let id = [("reportId", report_id.to_string())];
    reply(status, document("reportResponse", code, description, &id))
}

fn authorized(headers: &HeaderMap) -> bool {
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Basic {expected}"))
}

/// The fields of a multipart/form-data body.
fn form(headers: &HeaderMap, body: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let ct = headers[header::CONTENT_TYPE].to_str().unwrap();
    assert!(ct.starts_with("multipart/form-data"), "{ct}");
    let boundary = format!("--{}", ct.split("boundary=").nth(1).unwrap());
    let mut out = BTreeMap::new();
    let mut rest = body;
    while let Some(start) = find(rest, boundary.as_bytes()) {
        rest = &rest[start + boundary.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let head_end = find(rest, b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        let content = &rest[head_end + 4..];
        let end = find(content, boundary.as_bytes()).unwrap();
        let value = content[..end - 2].to_vec(); // the CRLF before the boundary
        let name = head
            .split("name=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        out.insert(name.to_string(), value);
        rest = &content[end..];
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn element(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].to_string())
}

/// Finds the report `id`, or answers as the documentation does.
fn open(ncmec: &mut Ncmec, id: u64) -> Result<&mut Report, Box<Response>> {
    match ncmec.reports.get_mut(&id) {
        None => Err(Box::new(code(5001, "Report does not exist", id))),
        Some(r) if r.retracted => Err(Box::new(code(5101, "Report already retracted", id))),
        Some(r) if r.finished => Err(Box::new(code(5102, "Report already finished", id))),
        Some(r) => Ok(r),
    }
}

async fn handle(
    State(ncmec): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"ispws\"")],
            "<html><body>401 Unauthorized</body></html>",
        )
            .into_response();
    }
    let mut n = ncmec.lock().unwrap();
    let n = &mut *n;
    match uri.path() {
        "/ispws/status" => code(
            0,
            &format!("Remote User : {USER}, Remote Ip : 127.0.0.1"),
            0,
        ),
        "/ispws/submit" => {
            assert!(headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/xml"));
            n.submissions += 1;
            let xml = String::from_utf8(body.to_vec()).unwrap();
            if !xml.contains("<report") || n.refuse == Some("submit") {
                return code(4100, "Validation failed", 0);
            }
            n.next_id += 1;
            let id = n.next_id;
            n.reports.insert(id, Report::default());
            code(0, "Success", id)
        }
        "/ispws/upload" => {
            let f = form(&headers, &body);
            let id: u64 = String::from_utf8_lossy(&f["id"]).parse().unwrap();
            let wrong = n.wrong_md5;
            let refuse = n.refuse == Some("upload");
            let r = match open(n, id) {
                Ok(r) => r,
                Err(e) => return *e,
            };
            if refuse {
                return code(4200, "Malformed file submittal", id);
            }
            let content = f["file"].clone();
            let file_id = format!("{:032x}", r.files.len() + 1);
            let hash = if wrong {
                md5(b"other bytes")
            } else {
                md5(&content)
            };
            r.files.push((file_id.clone(), content, hash.clone()));
            let fields = [
                ("reportId", id.to_string()),
                ("fileId", file_id),
                ("hash", hash),
            ];
            reply(
                StatusCode::OK,
                document("reportResponse", 0, "Success", &fields),
            )
        }
        "/ispws/fileinfo" => {
            let xml = String::from_utf8(body.to_vec()).unwrap();
            let id: u64 = element(&xml, "reportId").unwrap().parse().unwrap();
            let file_id = element(&xml, "fileId").unwrap();
            let refuse = n.refuse == Some("fileinfo");
            let r = match open(n, id) {
                Ok(r) => r,
                Err(e) => return *e,
            };
            if !r.files.iter().any(|f| f.0 == file_id) {
                return code(5002, "File does not exist", id);
            }
            if refuse {
                return code(4100, "Validation failed: fileDetails/originalFileHash", id);
            }
            r.fileinfo.push(xml);
            code(0, "Success", id)
        }
        "/ispws/finish" => {
            let id: u64 = String::from_utf8_lossy(&form(&headers, &body)["id"])
                .parse()
                .unwrap();
            let refuse = n.refuse == Some("finish");
            let lose = n.lose_finish_answers > 0;
            let r = match open(n, id) {
                Ok(r) => r,
                Err(e) => return *e,
            };
            if refuse {
                return code(4100, "Validation failed", id);
            }
            r.finished = true;
            let files: String = r
                .files
                .iter()
                .map(|f| format!("<fileId>{}</fileId>", f.0))
                .collect();
            if lose {
                n.lose_finish_answers -= 1;
                return (StatusCode::BAD_GATEWAY, "upstream went away").into_response();
            }
            let fields = [("reportId", id.to_string()), ("files", files)];
            reply(
                StatusCode::OK,
                document("reportDoneResponse", 0, "", &fields),
            )
        }
        "/ispws/retract" => {
            let id: u64 = String::from_utf8_lossy(&form(&headers, &body)["id"])
                .parse()
                .unwrap();
            match open(n, id) {
                Ok(r) => {
                    r.retracted = true;
                    code(0, "Success", id)
                }
                Err(e) => *e,
            }
        }
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

async fn server(ncmec: Ncmec) -> (String, Shared) {
    let shared = Arc::new(Mutex::new(ncmec));
    let app = Router::new().fallback(handle).with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/ispws"), shared)
}

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
