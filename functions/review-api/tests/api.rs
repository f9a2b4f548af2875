//! The API over the core's in-memory ports, with tokens signed by a test key: every route's
//! sign-in rules, the two-person rule, reveals and their limit, restores, one audit entry
//! per action, and the chain's verification. (The same router against the emulator, the
//! real user pool and a real browser is in tests/e2e.)

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use hashgate_core::audit::AuditAction;
use hashgate_core::case::{CaseRecord, CaseStatus, QuarantineLocation};
use hashgate_core::digest::{digest_bytes, Algorithm, AlgorithmSet};
use hashgate_core::event::ObjectRef;
use hashgate_core::followup::{Followups, Settings};
use hashgate_core::memory::{
    MemoryCases, MemoryCheckpoints, MemoryObjects, MemoryReports, MemoryStore,
};
use hashgate_core::review::ReviewPolicy;
use hashgate_core::scan::Match;
use hashgate_core::time::Timestamp;
use hashgate_review_api::auth::testing::{claims, sign, sign_with, FOREIGN_KEY, JWKS};
use hashgate_review_api::auth::{Authenticator, KeySet};
use hashgate_review_api::config::AuthConfig;
use hashgate_review_api::routes::{router, AppState};
use hashgate_review_api::service::Service;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const START: i64 = 1_795_255_445;

type TestFollowups = Followups<Arc<MemoryReports>, Arc<MemoryStore>, Arc<MemoryStore>>;
type TestState =
    AppState<Arc<MemoryCases>, Arc<MemoryObjects>, Arc<MemoryCheckpoints>, TestFollowups>;

struct World {
    state: Arc<TestState>,
    reports: Arc<MemoryReports>,
    lists: Arc<MemoryStore>,
    cases: Arc<MemoryCases>,
    objects: Arc<MemoryObjects>,
    checkpoints: Arc<MemoryCheckpoints>,
    now: Arc<Mutex<i64>>,
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        let v = if (x / 2 + y / 2) % 2 == 0 { 255 } else { 0 };
        image::Rgb([v, (x * 7 % 256) as u8, (y * 13 % 256) as u8])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn world_with(policy: ReviewPolicy) -> World {
    let cases = Arc::new(MemoryCases::default());
    let objects = Arc::new(MemoryObjects::default());
    let checkpoints = Arc::new(MemoryCheckpoints::default());
    let reports = Arc::new(MemoryReports::default());
    let lists = Arc::new(MemoryStore::default());
    let now = Arc::new(Mutex::new(START));
    let clock_now = now.clone();
    let auth = AuthConfig {
        region: "eu-west-1".into(),
        user_pool_id: "eu-west-1_test".into(),
        client_id: "test-client".into(),
        idp_endpoint: "http://127.0.0.1:1".into(),
        issuer: hashgate_review_api::auth::testing::ISSUER.into(),
        jwks_url: "http://127.0.0.1:1/jwks".into(),
    };
    let state = Arc::new(AppState {
        service: Service {
            store: cases.clone(),
            evidence: objects.clone(),
            checkpoints: checkpoints.clone(),
            policy,
            max_preview_bytes: 10 << 20,
            checkpoint_seconds: 300,
            known_checkpoint: Default::default(),
            clock: Arc::new(move || Timestamp::from_second(*clock_now.lock().unwrap()).unwrap()),
            followups: Followups {
                outbox: reports.clone(),
                own_list: lists.clone(),
                feedback: lists.clone(),
                settings: Settings {
                    report: Some(
                        serde_json::from_str(r#"{"reporter":{"email":"tips@example.org"}}"#)
                            .unwrap(),
                    ),
                    own_list: "own-confirmed".into(),
                    suppress_after: 2,
                },
            },
        },
        auth: Authenticator::fixed(auth, KeySet::from_jwks(JWKS.as_bytes()).unwrap()),
        reveal_seconds: 10,
    });
    World {
        state,
        reports,
        lists,
        cases,
        objects,
        checkpoints,
        now,
    }
}

fn world() -> World {
    world_with(ReviewPolicy::default())
}

impl World {
    fn app(&self) -> Router {
        router(self.state.clone())
    }

    /// A quarantined case whose content is `content`.
    async fn case(&self, id: &str, content: &[u8]) -> CaseRecord {
        use hashgate_core::pipeline::CaseStore;
        let digests = digest_bytes(content, AlgorithmSet::ALL);
        let quarantine = QuarantineLocation::for_case("quarantine", id);
        self.objects
            .put(&quarantine.bucket, &quarantine.key, content);
        self.objects
            .set_content_type(&quarantine.bucket, &quarantine.key, "image/png");
        let record = CaseRecord {
            case_id: id.into(),
            object: ObjectRef {
                bucket: "uploads".into(),
                key: format!("users/{id}.png"),
                version_id: None,
                etag: None,
            },
            size: content.len() as u64,
            digests: CaseRecord::digest_pairs(&digests),
            matches: vec![Match {
                distance: None,
                algorithm: Algorithm::Md5,
                digest: digests.get(Algorithm::Md5).unwrap(),
                list: "clearinghouse".into(),
                category: Some("A1".into()),
                id: Some("7".into()),
            }],
            quarantine: Some(quarantine),
            status: CaseStatus::PendingReview,
            created_at: Timestamp::from_second(START).unwrap(),
            uploaded_at: None,
            reviews: vec![],
            classification: None,
            restored_to: None,
            revision: 0,
            upload_facts: Default::default(),
            followups: Vec::new(),
            legal_hold: None,
        };
        let audit = hashgate_core::audit::AuditEntry::new(
            id,
            record.created_at,
            "scanner",
            AuditAction::Quarantined,
            "copied",
        );
        assert!(self.cases.create(&record, &audit).await.unwrap());
        record
    }

    fn token(&self, user: &str, groups: &[&str]) -> String {
        let now = *self.now.lock().unwrap();
        sign(&claims(user, groups, now + 600))
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let response = self.app().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, bytes.to_vec())
    }

    async fn json(
        &self,
        method: &str,
        uri: &str,
        user: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let groups: &[&str] = if user.starts_with("admin") {
            &["admin"]
        } else {
            &["reviewer"]
        };
        let token = self.token(user, groups);
        let (status, _, bytes) = self.call(method, uri, Some(&token), body).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn audit_count(&self) -> usize {
        self.cases.audit().len()
    }
}

const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/me"),
    ("GET", "/api/cases"),
    ("GET", "/api/cases/case-1"),
    ("GET", "/api/cases/case-1/preview"),
    ("POST", "/api/cases/case-1/reveal"),
    ("POST", "/api/cases/case-1/decision"),
    ("GET", "/api/audit/verify"),
    ("POST", "/api/cases/case-1/followups"),
];

#[tokio::test]
async fn every_route_refuses_missing_expired_foreign_and_forged_tokens() {
    let w = world();
    w.case("case-1", &png(64, 48)).await;
    let now = START;
    let mut foreign_pool = claims("reviewer-a", &["reviewer"], now + 600);
    foreign_pool["iss"] = json!("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_other");
    let mut other_client = claims("reviewer-a", &["reviewer"], now + 600);
    other_client["client_id"] = json!("another-app");
    let mut id_token = claims("reviewer-a", &["reviewer"], now + 600);
    id_token["token_use"] = json!("id");
    let bad_tokens = [
        ("none", None),
        ("garbage", Some("not.a.token".to_string())),
        (
            "expired",
            Some(sign(&claims("reviewer-a", &["reviewer"], now - 1))),
        ),
        ("foreign pool", Some(sign(&foreign_pool))),
        ("other client", Some(sign(&other_client))),
        ("id token", Some(sign(&id_token))),
        (
            "forged",
            Some(sign_with(
                FOREIGN_KEY,
                "test-key",
                &claims("reviewer-a", &["admin"], now + 600),
            )),
        ),
    ];
    let before = w.audit_count();
    for (method, uri) in ROUTES {
        for (what, token) in &bad_tokens {
            let body = (*method == "POST").then(|| json!({"reason": "r", "decision": "escalate"}));
            let (status, headers, bytes) = w.call(method, uri, token.as_deref(), body).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} with {what} token"
            );
            assert!(headers.contains_key("www-authenticate"), "{method} {uri}");
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()));
        }
        // Signed in, but in no group that may review.
        let token = w.token("someone", &["other"]);
        let body = (*method == "POST").then(|| json!({"reason": "r", "decision": "escalate"}));
        let (status, _, _) = w.call(method, uri, Some(&token), body).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{method} {uri} without a group"
        );
    }
    // Verifying the audit chain is for administrators.
    let (status, v) = w.json("GET", "/api/audit/verify", "reviewer-a", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let (status, v) = w.json("GET", "/api/audit/verify", "admin-a", None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // Nothing was refused into the audit log.
    assert_eq!(w.audit_count(), before);
    // Health and the page's static files carry no data and need no token.
    for uri in ["/healthz", "/", "/app.js", "/app.css"] {
        let (status, headers, _) = w.call("GET", uri, None, None).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(headers["cache-control"], "no-store");
    }
    let (_, headers, page) = w.call("GET", "/", None, None).await;
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(String::from_utf8(page).unwrap().contains("test-client"));
}

#[tokio::test]
async fn the_preview_is_small_gray_blurred_and_never_the_original() {
    let w = world();
    let original = png(800, 600);
    w.case("case-1", &original).await;
    let token = w.token("reviewer-a", &["reviewer"]);
    let (status, headers, body) = w
        .call("GET", "/api/cases/case-1/preview", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["cache-control"], "no-store");
    assert_ne!(body, original);
    let img = image::load_from_memory(&body).unwrap();
    assert!(img.width() <= 256 && img.height() <= 256);
    assert_eq!(img.color(), image::ColorType::L8);
    // Not an image: a placeholder with the reason, and nothing audited as served.
    w.case("case-2", b"%PDF-1.7 not an image").await;
    let before = w.audit_count();
    let (status, v) = w
        .json("GET", "/api/cases/case-2/preview", "reviewer-a", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["preview"], "none");
    assert!(
        v["reason"].as_str().unwrap().contains("not an image"),
        "{v}"
    );
    assert_eq!(w.audit_count(), before);
    let (status, _) = w
        .json("GET", "/api/cases/nope/preview", "reviewer-a", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_action_leaves_exactly_one_audit_entry() {
    let w = world();
    w.case("case-1", &png(300, 200)).await;
    let mut expected = vec![AuditAction::Quarantined];
    let check = |w: &World, expected: &[AuditAction]| {
        let actions: Vec<AuditAction> = w.cases.audit().iter().map(|e| e.action).collect();
        assert_eq!(actions, expected);
    };
    // Listing is not an action on a case.
    let (status, v) = w.json("GET", "/api/cases", "reviewer-a", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["items"][0]["case_id"], "case-1");
    assert_eq!(v["items"][0]["matches"][0]["list"], "clearinghouse");
    check(&w, &expected);
    let (status, v) = w.json("GET", "/api/cases/case-1", "reviewer-a", None).await;
    assert_eq!(status, StatusCode::OK);
    expected.push(AuditAction::Viewed);
    check(&w, &expected);
    assert_eq!(v["case"]["content_type"], "image/png");
    assert_eq!(v["case"]["quarantine"]["key"], "cases/case-1/object");
    assert_eq!(v["audit"].as_array().unwrap().len(), 2);
    assert_eq!(v["audit"][1]["action"], "viewed");
    w.json("GET", "/api/cases/case-1/preview", "reviewer-a", None)
        .await;
    expected.push(AuditAction::PreviewServed);
    check(&w, &expected);
    // A reveal needs a reason; refused ones leave nothing.
    let (status, _) = w
        .json(
            "POST",
            "/api/cases/case-1/reveal",
            "reviewer-a",
            Some(json!({"reason": " "})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    check(&w, &expected);
    let token = w.token("reviewer-a", &["reviewer"]);
    let (status, headers, body) = w
        .call(
            "POST",
            "/api/cases/case-1/reveal",
            Some(&token),
            Some(json!({"reason": "category unclear at this blur"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-reveal-seconds"], "10");
    assert_eq!(headers["x-reveals-remaining"], "19");
    assert!(image::load_from_memory(&body).unwrap().width() <= 256);
    expected.push(AuditAction::Revealed);
    check(&w, &expected);
    let entry = w.cases.audit().last().unwrap().clone();
    assert_eq!(
        entry.reason.as_deref(),
        Some("category unclear at this blur")
    );
    assert_eq!(entry.actor, "reviewer-a");
    let (_, me) = w.json("GET", "/api/me", "reviewer-a", None).await;
    assert_eq!(me["reveals_today"].as_array().unwrap().len(), 1);
    assert_eq!(me["reveal_limit"], 20);
    let (status, v) = w
        .json(
            "POST",
            "/api/cases/case-1/decision",
            "reviewer-a",
            Some(json!({"decision": "escalate", "reason": "needs a second look"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["case"]["status"], "escalated");
    expected.push(AuditAction::Decided);
    check(&w, &expected);
    // The chain verifies, and a checkpoint of it was written.
    let (_, v) = w.json("GET", "/api/audit/verify", "admin-a", None).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["entries"], expected.len());
    assert!(v["checkpoints"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn two_person_rule_over_http() {
    let w = world();
    w.case("case-1", &png(64, 64)).await;
    let confirm =
        |c: &str| json!({"decision": "confirm", "reason": "matches", "classification": c});
    let url = "/api/cases/case-1/decision";
    let (status, v) = w
        .json(
            "POST",
            url,
            "reviewer-a",
            Some(json!({"decision": "confirm", "reason": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no classification: {v}");
    let (status, v) = w
        .json(
            "POST",
            url,
            "reviewer-a",
            Some(json!({"decision": "maybe", "reason": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, v) = w.json("POST", url, "reviewer-a", Some(confirm("A1"))).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["case"]["status"], "awaiting_second_review");
    let (status, v) = w.json("POST", url, "reviewer-a", Some(confirm("A1"))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert!(v["error"].as_str().unwrap().contains("reviewer-a"), "{v}");
    let (status, v) = w.json("POST", url, "reviewer-b", Some(confirm("A1"))).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["case"]["status"], "confirmed");
    assert_eq!(v["case"]["classification"], "A1");
    let (status, _) = w
        .json(
            "POST",
            url,
            "admin-a",
            Some(json!({"decision": "false_positive", "reason": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "closed");
    let decided = w
        .cases
        .audit()
        .iter()
        .filter(|e| e.action == AuditAction::Decided)
        .count();
    assert_eq!(decided, 2);
}

#[tokio::test]
async fn a_false_positive_restores_the_exact_bytes_even_when_the_key_was_reused() {
    let w = world();
    let content = png(120, 90);
    let case = w.case("case-1", &content).await;
    let fp = json!({"decision": "false_positive", "reason": "a holiday photo"});
    let (status, v) = w
        .json(
            "POST",
            "/api/cases/case-1/decision",
            "reviewer-a",
            Some(fp.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["case"]["status"], "released");
    let back = w.objects.get("uploads", &case.object.key).unwrap();
    assert_eq!(back.1, content, "byte-identical");
    assert_eq!(v["case"]["restored_to"]["key"], case.object.key.as_str());
    // The quarantined copy stays under its retention.
    assert!(w.objects.get("quarantine", "cases/case-1/object").is_some());
    let actions: Vec<AuditAction> = w.cases.audit().iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::Quarantined,
            AuditAction::Decided,
            AuditAction::Restored,
            AuditAction::FalsePositiveRecorded
        ]
    );

    // The owner uploaded something else under the same key meanwhile: it is left alone.
    let case = w.case("case-2", &content).await;
    w.objects
        .put("uploads", &case.object.key, b"the owner's new file");
    let (status, v) = w
        .json("POST", "/api/cases/case-2/decision", "reviewer-a", Some(fp))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let to = v["case"]["restored_to"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(to, format!("hashgate-restored/case-2/{}", case.object.key));
    assert_eq!(
        w.objects.get("uploads", &case.object.key).unwrap().1,
        b"the owner's new file"
    );
    assert_eq!(w.objects.get("uploads", &to).unwrap().1, content);
}

#[tokio::test]
async fn an_interrupted_restore_resumes_where_it_stopped() {
    for failing_step in 1..=2 {
        let w = world();
        let content = png(50, 50);
        let case = w.case("case-1", &content).await;
        w.objects.fail_step(failing_step);
        let fp = json!({"decision": "false_positive", "reason": "not a match"});
        let (status, v) = w
            .json(
                "POST",
                "/api/cases/case-1/decision",
                "reviewer-a",
                Some(fp.clone()),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "step {failing_step}: {v}"
        );
        let (_, v) = w.json("GET", "/api/cases/case-1", "reviewer-a", None).await;
        assert_eq!(v["case"]["status"], "releasing");
        let (status, v) = w
            .json("POST", "/api/cases/case-1/decision", "reviewer-b", Some(fp))
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["case"]["status"], "released");
        assert_eq!(
            w.objects.get("uploads", &case.object.key).unwrap().1,
            content
        );
        let counts = |a: AuditAction| w.cases.audit().iter().filter(|e| e.action == a).count();
        assert_eq!(
            counts(AuditAction::Decided),
            1,
            "the decision was recorded once"
        );
        assert_eq!(counts(AuditAction::Restored), 1);
    }
}

#[tokio::test]
async fn the_daily_reveal_limit_is_enforced_by_the_server() {
    let w = world_with(ReviewPolicy {
        reveal_daily_limit: 2,
        ..ReviewPolicy::default()
    });
    w.case("case-1", &png(40, 40)).await;
    let reveal = json!({"reason": "checking"});
    for _ in 0..2 {
        let (status, _) = w
            .json(
                "POST",
                "/api/cases/case-1/reveal",
                "reviewer-a",
                Some(reveal.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let before = w.audit_count();
    let (status, v) = w
        .json(
            "POST",
            "/api/cases/case-1/reveal",
            "reviewer-a",
            Some(reveal.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert!(v["error"].as_str().unwrap().contains("limit"));
    assert_eq!(
        w.audit_count(),
        before,
        "a refused reveal is not audited as one"
    );
    // Another reviewer has a limit of their own; the next day starts again.
    let (status, _) = w
        .json(
            "POST",
            "/api/cases/case-1/reveal",
            "reviewer-b",
            Some(reveal.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    *w.now.lock().unwrap() += 86_400;
    let (status, _) = w
        .json(
            "POST",
            "/api/cases/case-1/reveal",
            "reviewer-a",
            Some(reveal),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_queue_filters_and_pages() {
    let w = world();
    for i in 0..5 {
        *w.now.lock().unwrap() = START + i;
        w.case(&format!("case-{i}"), &png(8, 8)).await;
    }
    let (status, v) = w
        .json("GET", "/api/cases?limit=2", "reviewer-a", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    let cursor = v["next_cursor"].as_str().unwrap().to_string();
    let uri = format!("/api/cases?limit=2&cursor={}", urlencode(&cursor));
    let (_, v2) = w.json("GET", &uri, "reviewer-a", None).await;
    assert_ne!(v2["items"][0]["case_id"], v["items"][0]["case_id"]);
    let (_, v) = w
        .json("GET", "/api/cases?status=confirmed", "reviewer-a", None)
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 0);
    let (_, v) = w
        .json(
            "GET",
            "/api/cases?list=clearinghouse&kind=md5&bucket=uploads&category=A1",
            "reviewer-a",
            None,
        )
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 5);
    for bad in ["status=maybe", "kind=crc32", "limit=0", "limit=100000"] {
        let (status, v) = w
            .json("GET", &format!("/api/cases?{bad}"), "reviewer-a", None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn verification_names_a_tampered_entry() {
    let w = world();
    w.case("case-1", &png(8, 8)).await;
    for _ in 0..4 {
        w.json("GET", "/api/cases/case-1", "reviewer-a", None).await;
    }
    let (_, v) = w.json("GET", "/api/audit/verify", "admin-a", None).await;
    assert_eq!(v["ok"], true, "{v}");
    w.cases.chain_entries()[2].entry.actor = "someone-else".into();
    let (_, v) = w.json("GET", "/api/audit/verify", "admin-a", None).await;
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_broken"]["seq"], 3, "{v}");
    // A corrupted checkpoint signature is reported as well.
    w.checkpoints.corrupt_signature(0);
    let (_, v) = w.json("GET", "/api/audit/verify", "admin-a", None).await;
    assert_eq!(v["ok"], false);
}

#[tokio::test]
async fn admins_export_the_confirmed_digests_as_an_importable_list() {
    let w = world();
    let content = png(30, 30);
    w.case("case-1", &content).await;
    w.case("case-2", &png(31, 30)).await;
    let confirm = json!({"decision": "confirm", "reason": "matches", "classification": "B1"});
    for user in ["reviewer-a", "reviewer-b"] {
        let (status, v) = w
            .json(
                "POST",
                "/api/cases/case-1/decision",
                user,
                Some(confirm.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let reviewer = w.token("reviewer-a", &["reviewer"]);
    let (status, _, _) = w
        .call("GET", "/api/lists/confirmed", Some(&reviewer), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let admin = w.token("admin-a", &["admin"]);
    let (status, headers, body) = w
        .call(
            "GET",
            "/api/lists/confirmed?format=csv&list=partner",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("partner.csv"));
    // What another provider's import reads: the confirmed case only, with its provenance.
    let mut entries = Vec::new();
    hashgate_core::lists::parse(
        std::io::Cursor::new(body),
        hashgate_core::lists::ListFormat::Csv,
        &hashgate_core::lists::ParseOptions {
            source_name: "export.csv".into(),
            default_list: "partner".into(),
            algorithm: None,
        },
        &mut |e| {
            entries.push(e);
            Ok(())
        },
    )
    .unwrap();
    let md5 = digest_bytes(&content, AlgorithmSet::ALL)
        .get(Algorithm::Md5)
        .unwrap();
    assert_eq!(
        entries.len(),
        3,
        "md5, sha1 and sha256 of the one confirmed case"
    );
    let first = entries.iter().find(|e| e.digest == md5).unwrap();
    assert_eq!(first.provenance.id.as_deref(), Some("case-1"));
    assert_eq!(first.provenance.category.as_deref(), Some("B1"));
    let (status, _, _) = w
        .call("GET", "/api/lists/confirmed?format=xml", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn checkpoints_are_written_by_interval_without_asking_storage_on_every_append() {
    let w = world();
    w.case("case-1", &png(8, 8)).await;
    w.json("GET", "/api/cases/case-1", "reviewer-a", None).await;
    assert_eq!(
        w.checkpoints.written(),
        1,
        "the first append finds none and writes one"
    );
    let reads = w.checkpoints.reads();
    for _ in 0..5 {
        w.json("GET", "/api/cases/case-1", "reviewer-a", None).await;
    }
    assert_eq!(
        w.checkpoints.reads(),
        reads,
        "within the interval storage is not asked"
    );
    assert_eq!(w.checkpoints.written(), 1);
    // Once the interval has passed, the next append writes a checkpoint of the new head.
    *w.now.lock().unwrap() += 300;
    w.json("GET", "/api/cases/case-1", "reviewer-a", None).await;
    assert_eq!(w.checkpoints.written(), 2);
    let (_, v) = w.json("GET", "/api/audit/verify", "admin-a", None).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["checkpoints"], 2);
}

#[tokio::test]
async fn a_confirmation_writes_its_report_package_and_joins_the_own_list() {
    use hashgate_core::store::HashStore;
    let w = world_with(ReviewPolicy {
        two_person_rule: false,
        ..ReviewPolicy::default()
    });
    let content = png(80, 60);
    let case = w.case("case-1", &content).await;
    let url = "/api/cases/case-1/decision";
    let confirm = json!({"decision": "confirm", "reason": "matches", "classification": "A1"});
    // The package's write fails once: the decision stands and the followups wait on the case.
    w.reports.fail_next_write();
    let (status, v) = w.json("POST", url, "reviewer-a", Some(confirm)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["case"]["status"], "confirmed");
    assert_eq!(
        v["case"]["followups"],
        json!(["report_package", "share_confirmed"])
    );
    assert!(w.reports.package("case-1").is_none());
    // Only an admin finishes them.
    let retry = "/api/cases/case-1/followups";
    let (status, _) = w.json("POST", retry, "reviewer-a", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, v) = w.json("POST", retry, "admin-a", None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["case"]["followups"], json!([]));
    assert_eq!(v["done"][0]["followup"], "report_package");
    let package = w.reports.package("case-1").expect("the package");
    assert!(!package.manifest.file_viewed_by_esp, "nobody revealed it");
    assert!(package
        .report_xml
        .contains("<email>tips@example.org</email>"));
    assert_eq!(w.reports.ready().len(), 1);
    assert_eq!(w.reports.ready()[0].classification, "A1");
    // Every digest of the case is on the own list, with the case as the entry's id.
    let digests: Vec<_> = case
        .digests
        .iter()
        .map(|(a, h)| hashgate_core::Digest::parse_hex_as(a.parse().unwrap(), h).unwrap())
        .collect();
    let found = w.lists.lookup(&digests).await.unwrap();
    assert_eq!(found.len(), 3);
    for d in &found {
        assert_eq!(d.provenance[0].list, "own-confirmed");
        assert_eq!(d.provenance[0].id.as_deref(), Some("case-1"));
        assert_eq!(d.provenance[0].category.as_deref(), Some("A1"));
    }
    let actions: Vec<AuditAction> = w.cases.audit().iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::Quarantined,
            AuditAction::Decided,
            AuditAction::Packaged,
            AuditAction::Shared
        ]
    );
    assert_eq!(w.cases.audit()[2].actor, "admin-a");
}

#[tokio::test]
async fn a_revealed_case_is_reported_as_viewed() {
    let w = world_with(ReviewPolicy {
        two_person_rule: false,
        ..ReviewPolicy::default()
    });
    w.case("case-1", &png(80, 60)).await;
    let (status, _) = w
        .json(
            "POST",
            "/api/cases/case-1/reveal",
            "reviewer-a",
            Some(json!({"reason": "blur hides the category"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let confirm = json!({"decision": "confirm", "reason": "matches", "classification": "B1"});
    let (status, v) = w
        .json(
            "POST",
            "/api/cases/case-1/decision",
            "reviewer-a",
            Some(confirm),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["case"]["followups"], json!([]));
    let package = w.reports.package("case-1").unwrap();
    assert!(package.manifest.file_viewed_by_esp);
    assert_eq!(package.manifest.viewed_in_audit_entries.len(), 1);
    assert_eq!(package.manifest.classification.as_str(), "B1");
}

#[tokio::test]
async fn repeated_false_positives_suppress_the_list_entry() {
    use hashgate_core::lists::{ListEntry, Provenance};
    use hashgate_core::store::{HashStore, Op};
    let w = world();
    let content = png(70, 50);
    let md5 = digest_bytes(&content, AlgorithmSet::ALL)
        .get(Algorithm::Md5)
        .unwrap();
    w.lists
        .apply(
            &[ListEntry {
                digest: md5,
                provenance: Provenance {
                    list: "clearinghouse".into(),
                    id: Some("7".into()),
                    category: Some("A1".into()),
                },
            }],
            Op::Add,
        )
        .unwrap();
    let fp = json!({"decision": "false_positive", "reason": "a holiday photo"});
    for (i, id) in ["case-1", "case-2"].into_iter().enumerate() {
        w.case(id, &content).await;
        let (status, v) = w
            .json(
                "POST",
                &format!("/api/cases/{id}/decision"),
                "reviewer-a",
                Some(fp.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["case"]["status"], "released");
        assert_eq!(v["case"]["followups"], json!([]));
        let last = w.cases.audit().last().unwrap().clone();
        if i == 0 {
            assert_eq!(
                last.action,
                AuditAction::FalsePositiveRecorded,
                "{}",
                last.detail
            );
            assert_eq!(
                w.lists.lookup(&[md5]).await.unwrap().len(),
                1,
                "still matching"
            );
        } else {
            // The second false positive reaches the limit (2): the entry stops matching.
            assert_eq!(last.action, AuditAction::EntrySuppressed, "{}", last.detail);
            assert!(last.detail.contains("clearinghouse"), "{}", last.detail);
            assert!(
                w.lists.lookup(&[md5]).await.unwrap().is_empty(),
                "suppressed"
            );
        }
    }
    assert!(
        w.reports.ready().is_empty(),
        "false positives are never reported"
    );
}
