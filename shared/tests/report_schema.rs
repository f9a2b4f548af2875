//! The report documents against the schema kept in the repository (`schemas/cybertipline.xsd`,
//! written from NCMEC's public documentation), with `xmllint` from Debian's libxml2-utils:
//! both documents, for a case with and without a reveal and for a key full of characters
//! that need escaping; and documents broken on purpose, which the schema must refuse, so that
//! it is known to bite.

use std::path::{Path, PathBuf};
use std::process::Command;

use hashgate_core::audit::{link, AuditAction, AuditEntry, ChainedEntry};
use hashgate_core::case::{CaseRecord, CaseStatus, QuarantineLocation};
use hashgate_core::digest::{digest_bytes, AlgorithmSet};
use hashgate_core::event::ObjectRef;
use hashgate_core::report::{
    file_details_xml, incident_xml, ContactPerson, FileLocation, IpCapture, Manifest, ReportConfig,
    ReportInput, ReportingPerson, UploadFacts, SCHEMA,
};
use hashgate_core::review::Classification;
use hashgate_core::time::Timestamp;

const XMLLINT: &str = "/usr/bin/xmllint";

fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/cybertipline.xsd")
}

fn xmllint() -> &'static str {
    assert!(
        Path::new(XMLLINT).exists(),
        "{XMLLINT} is missing: the report schema test needs xmllint. `make test` installs it \
         (Debian package libxml2-utils: apt-get install libxml2-utils)"
    );
    XMLLINT
}

/// xmllint's verdict on `xml`: Ok, or its complaint.
fn validate(name: &str, xml: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, xml).unwrap();
    let out = Command::new(xmllint())
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(schema())
        .arg(&file)
        .output()
        .expect("xmllint runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn assert_valid(name: &str, xml: &str) {
    if let Err(why) = validate(name, xml) {
        panic!("{name} does not validate:\n{why}\n{xml}");
    }
}

fn assert_refused(name: &str, xml: &str, because: &str) {
    match validate(name, xml) {
        Ok(()) => panic!("{name} validates, but the schema must refuse it ({because}):\n{xml}"),
        Err(why) => assert!(
            why.contains(because),
            "{name}: expected {because:?} in:\n{why}"
        ),
    }
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

const CREATED: i64 = 1_795_255_445;
const BUILT: i64 = CREATED + 86_400;

fn case(key: &str) -> CaseRecord {
    let digests = digest_bytes(b"evidence", AlgorithmSet::ALL);
    CaseRecord {
        case_id: "case-7".into(),
        object: ObjectRef {
            bucket: "customer-uploads".into(),
            key: key.into(),
            version_id: Some("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY".into()),
            etag: Some("e".into()),
        },
        size: 8,
        digests: CaseRecord::digest_pairs(&digests),
        matches: vec![],
        quarantine: Some(QuarantineLocation::for_case(
            "hashgate-quarantine",
            "case-7",
        )),
        status: CaseStatus::Confirmed,
        created_at: at(CREATED),
        uploaded_at: Some(at(CREATED - 30)),
        reviews: vec![],
        classification: Some(Classification::A2),
        restored_to: None,
        revision: 2,
        upload_facts: Default::default(),
        followups: Vec::new(),
        legal_hold: None,
    }
}

fn history(reveal: bool) -> Vec<ChainedEntry> {
    let mut actions = vec![
        AuditAction::Quarantined,
        AuditAction::Viewed,
        AuditAction::PreviewServed,
    ];
    if reveal {
        actions.push(AuditAction::Revealed);
    }
    actions.push(AuditAction::Decided);
    let mut chain: Vec<ChainedEntry> = Vec::new();
    for (i, action) in actions.into_iter().enumerate() {
        let e = AuditEntry::new("case-7", at(CREATED + i as i64), "alice", action, "");
        let linked = link(chain.last(), e);
        chain.push(linked);
    }
    chain
}

/// Everything the configuration can say.
fn full_config() -> ReportConfig {
    ReportConfig {
        reporter: ReportingPerson {
            first_name: Some("Dana".into()),
            last_name: Some("Reyes".into()),
            email: "trust-and-safety@example.com".into(),
            phone: Some("+1 555 0100".into()),
        },
        contact: Some(ContactPerson {
            first_name: Some("Legal".into()),
            last_name: Some("Desk".into()),
            email: Some("legal@example.com".into()),
            phone: Some("+1 555 0199".into()),
        }),
        service_name: Some("Example Cloud Storage".into()),
        company_template: Some("Example Inc. Legal process: legal@example.com.".into()),
        terms_of_service: Some("Uploading child sexual abuse material is prohibited.".into()),
        legal_url: Some("https://example.com/legal".into()),
        include_bucket_owner: true,
        include_source_ip: true,
        file_location: FileLocation::S3,
    }
}

/// Only what the documentation requires of a reporter.
fn minimal_config() -> ReportConfig {
    ReportConfig {
        reporter: ReportingPerson {
            first_name: None,
            last_name: None,
            email: "reports@example.com".into(),
            phone: None,
        },
        contact: None,
        service_name: None,
        company_template: None,
        terms_of_service: None,
        legal_url: None,
        include_bucket_owner: false,
        include_source_ip: false,
        file_location: FileLocation::PathStyle {
            endpoint: "https://s3.us-east-1.amazonaws.com".into(),
        },
    }
}

fn facts() -> UploadFacts {
    UploadFacts {
        bucket_owner: Some(
            "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be".into(),
        ),
        source_ip: Some(IpCapture {
            address: "203.0.113.9".parse().unwrap(),
            at: Some(at(CREATED - 31)),
        }),
    }
}

/// Both documents of one case.
fn documents(config: &ReportConfig, case: &CaseRecord, reveal: bool) -> (String, String) {
    let input = ReportInput::new(case, &history(reveal), facts()).unwrap();
    assert_eq!(input.viewing().file_viewed, reveal);
    let report = incident_xml(config, &input, at(BUILT)).unwrap();
    let details = file_details_xml(
        config,
        &input,
        4_564_654,
        "b0754af766b426f2928a02c651ed4b99",
        at(BUILT),
    )
    .unwrap();
    let manifest = Manifest::new(config, &input, &report, at(BUILT)).unwrap();
    assert_eq!(manifest.file_viewed_by_esp, reveal);
    (report, details)
}

#[test]
fn both_documents_validate_with_and_without_a_reveal() {
    for (config, label) in [(full_config(), "full"), (minimal_config(), "minimal")] {
        for reveal in [false, true] {
            let (report, details) = documents(&config, &case("users/42/photo.jpg"), reveal);
            assert_valid(&format!("report-{label}-{reveal}.xml"), &report);
            assert_valid(&format!("details-{label}-{reveal}.xml"), &details);
            let viewed = format!("<fileViewedByEsp>{reveal}</fileViewedByEsp>");
            assert!(details.contains(&viewed), "{details}");
        }
    }
}

#[test]
fn a_nasty_key_validates() {
    for key in [
        "in/<script>alert(\"x\")</script> & 'friends' ]]> .jpg",
        "in/émoji 🎈🦀 汉字 テスト\ttab\r\nline.png",
        "in/control\u{0}\u{1}\u{1B}\u{FFFF}chars.gif",
        // Longer than originalFileName and locationOfFile allow: shortened, and left out.
        &format!("in/{}{}.jpg", "long name ".repeat(150), "🦀".repeat(500)),
    ] {
        let (report, details) = documents(&full_config(), &case(key), true);
        assert_valid("report-nasty.xml", &report);
        assert_valid("details-nasty.xml", &details);
    }
}

#[test]
fn the_embedded_schema_is_the_file() {
    assert_eq!(std::fs::read_to_string(schema()).unwrap(), SCHEMA);
}

#[test]
fn the_schema_refuses_broken_documents() {
    let (report, details) = documents(&full_config(), &case("users/42/photo.jpg"), true);
    assert_valid("report.xml", &report);
    assert_valid("details.xml", &details);

    // A required element missing: the incident's time, the reporter's email, the file id.
    let without = |xml: &str, element: &str| {
        let start = xml.find(&format!("<{element}>")).unwrap();
        let end = xml.find(&format!("</{element}>")).unwrap() + element.len() + 3;
        format!("{}{}", &xml[..start], &xml[end..])
    };
    assert_refused(
        "no-time.xml",
        &without(&report, "incidentDateTime"),
        "incidentDateTime",
    );
    assert_refused("no-email.xml", &without(&report, "email"), "email");
    assert_refused("no-file-id.xml", &without(&details, "fileId"), "fileId");

    // An element the schema does not know, and elements out of the documented order.
    let renamed = report
        .replace("<reporter>", "<reporterX>")
        .replace("</reporter>", "</reporterX>");
    assert_refused("unknown.xml", &renamed, "reporterX");
    let summary_start = report.find("  <incidentSummary>").unwrap();
    let summary_end = report.find("</incidentSummary>\n").unwrap() + "</incidentSummary>\n".len();
    let summary = &report[summary_start..summary_end];
    let reordered = report.replacen(summary, "", 1).replacen(
        "</reporter>\n",
        &format!("</reporter>\n{summary}"),
        1,
    );
    assert_refused("reordered.xml", &reordered, "incidentSummary");

    // The documented limits and forms.
    let long_name = details.replace(
        "<originalFileName>photo.jpg</originalFileName>",
        &format!("<originalFileName>{}</originalFileName>", "n".repeat(2057)),
    );
    assert_ne!(long_name, details);
    assert_refused("long-name.xml", &long_name, "originalFileName");
    let no_zone = report.replacen("Z</incidentDateTime>", "</incidentDateTime>", 1);
    assert_refused("no-zone.xml", &no_zone, "incidentDateTime");
    let bad_class = details.replace(">A2<", ">C3<");
    assert_refused("class.xml", &bad_class, "industryClassification");
    let no_hash_type = details.replacen(" hashType=\"MD5\"", "", 1);
    assert_refused("hash-type.xml", &no_hash_type, "hashType");
    let bad_email = report.replace("trust-and-safety@example.com", "trust-and-safety");
    assert_refused("bad-email.xml", &bad_email, "email");
}
