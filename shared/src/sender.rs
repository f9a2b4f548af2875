//! The sending of one CyberTipline report package, as a sans-IO state machine.
//!
//! NCMEC's reporting API (*CyberTipline Reporting API Technical Documentation*, sections 3
//! and 6) takes a report in steps: `/submit` opens it with the `<report>` document and
//! answers with its report id; `/upload` adds the file and answers with a file id and the
//! MD5 of what it received; `/fileinfo` adds the `<fileDetails>` of that file; `/finish`
//! completes the report, after which nothing can be added or cancelled; `/retract` cancels
//! a report that is not finished. A report left unfinished is deleted by NCMEC 24 hours after
//! it was opened (or 1 hour after its last change, whichever is later).
//!
//! [`Sender::action`] says what to do next; the caller does it and reports the result with
//! [`Sender::advance`]. After every result the next action is [`SendAction::Persist`]: the
//! caller writes the [`SendState`] durably and says so ([`Outcome::Persisted`]) before the
//! next request is asked for. A caller that dies at any point starts again from the last
//! state it persisted. The rules, each in one place ([`Sender::advance`]):
//!
//! - **A report is submitted once**: a state with a report id resumes at the upload. (The
//!   API has no idempotency key, so the only gap is a crash between NCMEC's answer to
//!   `/submit` and the persisting of its report id: the retry opens a second report, and
//!   the first, never finished, is deleted by NCMEC after 24 hours. Nothing is ever
//!   finished twice.)
//! - **The file NCMEC received is the file**: an upload answered with an MD5 other than
//!   the evidence's is retracted, never finished.
//! - **A refusal** (any documented non-zero response code: validation failure, malformed
//!   XML, …) of an opened report retracts it, and the run stops with the reason. A refused
//!   submit has nothing to retract: it stops with the reason.
//! - **"Report already finished"** (5102) in answer to `/finish` is done: finishing is
//!   idempotent, so a finish whose answer was lost is not an error.
//! - **A failure to reach NCMEC** (transport, server error) changes nothing but the count
//!   of attempts and the last error: the same step is asked for again.

use serde::{Deserialize, Serialize};

use crate::case::QuarantineLocation;
use crate::report::{file_details_xml, ReportConfig, ReportError, ReportInput};
use crate::time::Timestamp;

/// The documented response code of success.
pub const CODE_SUCCESS: i32 = 0;
/// "Validation failed".
pub const CODE_VALIDATION_FAILED: i32 = 4100;
/// "Report already retracted".
pub const CODE_ALREADY_RETRACTED: i32 = 5101;
/// "Report already finished".
pub const CODE_ALREADY_FINISHED: i32 = 5102;

/// Where one report's sending stands: written by the caller after every step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendState {
    pub case_id: String,
    /// The id NCMEC gave the report (`/submit`).
    pub report_id: Option<u64>,
    /// The id NCMEC gave the uploaded file (`/upload`).
    pub file_id: Option<String>,
    /// The MD5 NCMEC said it received, lower-case hex.
    pub uploaded_md5: Option<String>,
    /// Whether [`uploaded_md5`](Self::uploaded_md5) is the evidence's.
    pub uploaded_md5_ok: bool,
    pub fileinfo_sent: bool,
    pub finished: bool,
    /// Why the report is to be retracted, once it is.
    pub retract_reason: Option<String>,
    pub retracted: bool,
    /// Why the sending stopped without finishing (a refusal, a mismatched file).
    pub stopped: Option<String>,
    /// Requests that did not get an answer (transport failures), over all runs.
    pub attempts: u32,
    /// `/submit` requests made (answered or not): more than one means an unfinished report
    /// may have been opened and left for NCMEC to delete.
    pub submissions: u32,
    pub last_error: Option<String>,
}

impl SendState {
    /// The state of a package never sent.
    pub fn new(case_id: &str) -> SendState {
        SendState {
            case_id: case_id.to_string(),
            ..SendState::default()
        }
    }

    /// Whether nothing more will be done.
    pub fn is_done(&self) -> bool {
        self.finished || self.retracted || (self.stopped.is_some() && self.must_retract().is_none())
    }

    /// The report to retract and why, while it is still to be retracted.
    fn must_retract(&self) -> Option<(u64, &str)> {
        match (self.report_id, &self.retract_reason) {
            (Some(id), Some(reason)) if !self.retracted && !self.finished => Some((id, reason)),
            _ => None,
        }
    }
}

/// What is sent: the documents and where the evidence is. Rebuilt by the caller on every
/// run from the stored package; only [`SendState`] changes.
#[derive(Clone, Debug)]
pub struct Package {
    pub config: ReportConfig,
    pub input: ReportInput,
    /// The `<report>` document ([`crate::report::incident_xml`]).
    pub report_xml: String,
    /// The instant the documents are built at (the package's, so every run writes the same).
    pub built_at: Timestamp,
    /// The quarantined copy to upload.
    pub evidence: QuarantineLocation,
    /// The name the upload gives the file (the report's `originalFileName` is in the file
    /// details; this one only names the multipart part).
    pub file_name: String,
    /// The evidence's MD5, lower-case hex.
    pub md5: String,
}

/// Why a package cannot be sent at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the package of case {package} cannot continue the sending of case {state}")]
    WrongCase { package: String, state: String },
    #[error("the evidence MD5 {0:?} is not 32 hex digits")]
    BadMd5(String),
    #[error("the file details cannot be built: {0}")]
    Report(#[from] ReportError),
}

/// The next thing to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendAction {
    /// Write this state durably, then report [`Outcome::Persisted`].
    Persist(SendState),
    /// POST the `<report>` to `/submit`.
    Submit { report_xml: String },
    /// POST the evidence to `/upload` (multipart `id`, `file`).
    Upload {
        report_id: u64,
        evidence: QuarantineLocation,
        file_name: String,
        expected_md5: String,
    },
    /// POST the `<fileDetails>` to `/fileinfo`.
    FileInfo { report_id: u64, xml: String },
    /// POST `id` to `/finish`.
    Finish { report_id: u64 },
    /// POST `id` to `/retract`.
    Retract { report_id: u64, reason: String },
    /// Nothing more: see [`SendState`] for how it ended.
    Done,
}

/// What came of the last action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The state of the last [`SendAction::Persist`] is written.
    Persisted,
    /// `/submit` answered 0 with this report id.
    Submitted { report_id: u64 },
    /// `/upload` answered 0 with this file id and MD5.
    Uploaded { file_id: String, md5: String },
    /// `/fileinfo` answered 0.
    FileInfoAccepted,
    /// `/finish` answered 0.
    Finished,
    /// `/retract` answered 0.
    Retracted,
    /// NCMEC answered with a non-zero response code.
    Refused { code: i32, description: String },
    /// No answer: the request failed in transport, or NCMEC had a server error.
    Failed { error: String },
}

/// The machine: a package and where its sending stands.
#[derive(Clone, Debug)]
pub struct Sender {
    package: Package,
    state: SendState,
    unpersisted: bool,
}

impl Sender {
    /// Starts, or resumes from a persisted `state`. Refuses a state of another case, a
    /// malformed MD5, and a package whose file details cannot be built.
    pub fn new(package: Package, state: SendState) -> Result<Sender, SendError> {
        if package.input.case_id() != state.case_id {
            return Err(SendError::WrongCase {
                package: package.input.case_id().to_string(),
                state: state.case_id,
            });
        }
        if package.md5.len() != 32 || !package.md5.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(SendError::BadMd5(package.md5));
        }
        // Everything in the file details but the two ids is known now: check it builds.
        file_details_xml(
            &package.config,
            &package.input,
            1,
            "probe",
            package.built_at,
        )?;
        Ok(Sender {
            package,
            state,
            unpersisted: false,
        })
    }

    pub fn state(&self) -> &SendState {
        &self.state
    }

    /// What to do next.
    pub fn action(&self) -> SendAction {
        let s = &self.state;
        if self.unpersisted {
            return SendAction::Persist(s.clone());
        }
        if let Some((report_id, reason)) = s.must_retract() {
            return SendAction::Retract {
                report_id,
                reason: reason.to_string(),
            };
        }
        if s.is_done() {
            return SendAction::Done;
        }
        let Some(report_id) = s.report_id else {
            return SendAction::Submit {
                report_xml: self.package.report_xml.clone(),
            };
        };
        let Some(file_id) = &s.file_id else {
            return SendAction::Upload {
                report_id,
                evidence: self.package.evidence.clone(),
                file_name: self.package.file_name.clone(),
                expected_md5: self.package.md5.to_ascii_lowercase(),
            };
        };
        if !s.fileinfo_sent {
            let p = &self.package;
            return match file_details_xml(&p.config, &p.input, report_id, file_id, p.built_at) {
                Ok(xml) => SendAction::FileInfo { report_id, xml },
                // Checked in `new` and at the upload; kept total all the same.
                Err(e) => SendAction::Retract {
                    report_id,
                    reason: format!("the file details cannot be built: {e}"),
                },
            };
        }
        SendAction::Finish { report_id }
    }

    /// Takes the result of the last action. An outcome that does not answer it (a reply to
    /// a request that was not asked for) changes nothing.
    pub fn advance(&mut self, outcome: Outcome) {
        let action = self.action();
        let s = &mut self.state;
        match (action, outcome) {
            (SendAction::Persist(_), Outcome::Persisted) => {
                self.unpersisted = false;
                return;
            }
            (SendAction::Persist(_) | SendAction::Done, _) => return,
            (SendAction::Submit { .. }, Outcome::Failed { error }) => {
                s.submissions += 1;
                s.attempts += 1;
                s.last_error = Some(error);
            }
            (_, Outcome::Failed { error }) => {
                s.attempts += 1;
                s.last_error = Some(error);
            }
            (SendAction::Submit { .. }, Outcome::Submitted { report_id }) => {
                s.submissions += 1;
                s.last_error = None;
                if report_id == 0 || i64::try_from(report_id).is_err() {
                    s.stopped = Some(format!("NCMEC answered with report id {report_id}"));
                } else {
                    s.report_id = Some(report_id);
                }
            }
            (SendAction::Submit { .. }, Outcome::Refused { code, description }) => {
                s.submissions += 1;
                s.last_error = None;
                s.stopped = Some(refusal("submit", code, &description));
            }
            (
                SendAction::Upload {
                    report_id,
                    expected_md5,
                    ..
                },
                Outcome::Uploaded { file_id, md5 },
            ) => {
                s.last_error = None;
                let md5 = md5.trim().to_ascii_lowercase();
                s.uploaded_md5_ok = md5 == expected_md5;
                s.uploaded_md5 = Some(md5.clone());
                let p = &self.package;
                let usable =
                    file_details_xml(&p.config, &p.input, report_id, &file_id, p.built_at).is_ok();
                s.file_id = Some(file_id);
                if !s.uploaded_md5_ok {
                    s.retract_reason = Some(format!(
                        "NCMEC received a file with MD5 {md5}, not the evidence's {expected_md5}"
                    ));
                } else if !usable {
                    s.retract_reason = Some("NCMEC answered with an unusable file id".into());
                }
            }
            (SendAction::FileInfo { .. }, Outcome::FileInfoAccepted) => {
                s.last_error = None;
                s.fileinfo_sent = true;
            }
            (SendAction::Finish { .. }, Outcome::Finished) => {
                s.last_error = None;
                s.finished = true;
            }
            (SendAction::Finish { .. }, Outcome::Refused { code, .. })
                if code == CODE_ALREADY_FINISHED =>
            {
                s.last_error = None;
                s.finished = true;
            }
            (SendAction::Retract { .. }, Outcome::Retracted) => {
                s.last_error = None;
                s.retracted = true;
                s.stopped = s.retract_reason.clone();
            }
            (SendAction::Retract { .. }, Outcome::Refused { code, description }) => {
                s.last_error = None;
                if code == CODE_ALREADY_RETRACTED {
                    s.retracted = true;
                    s.stopped = s.retract_reason.clone();
                } else if code == CODE_ALREADY_FINISHED {
                    // Finished before the retraction was decided (a finish whose answer
                    // was lost): it cannot be cancelled; say so.
                    s.finished = true;
                    s.stopped = Some(format!(
                        "{}; but the report was already finished",
                        s.retract_reason.clone().unwrap_or_default()
                    ));
                } else {
                    // Left to NCMEC, which deletes an unfinished report after 24 hours.
                    s.stopped = Some(format!(
                        "{}; {}",
                        s.retract_reason.clone().unwrap_or_default(),
                        refusal("retract", code, &description)
                    ));
                    s.retract_reason = None;
                }
            }
            (
                SendAction::Upload { .. } | SendAction::FileInfo { .. } | SendAction::Finish { .. },
                Outcome::Refused { code, description },
            ) => {
                s.last_error = None;
                let step = match self.state.file_id {
                    None => "upload",
                    Some(_) if !self.state.fileinfo_sent => "fileinfo",
                    Some(_) => "finish",
                };
                self.state.retract_reason = Some(refusal(step, code, &description));
            }
            // A reply that does not answer the action asked for.
            _ => return,
        }
        self.unpersisted = true;
    }
}

fn refusal(step: &str, code: i32, description: &str) -> String {
    let name = match code {
        1000 => "server error",
        1100 => "save failed",
        1110 => "upload failed",
        1111 => "file upload failed",
        1210 => "resource not found",
        1300 => "update failed",
        2000 => "authentication required",
        3000 => "user is not authorized to perform this action",
        3100 => "user does not have authorization to make submissions",
        3300 => "user does not have authorization to make updates",
        4000 => "invalid request",
        CODE_VALIDATION_FAILED => "validation failed",
        4110 => "malformed XML submittal",
        4200 => "malformed file submittal",
        5001 => "report does not exist",
        5002 => "file does not exist",
        CODE_ALREADY_RETRACTED => "report already retracted",
        CODE_ALREADY_FINISHED => "report already finished",
        _ => "undocumented code",
    };
    format!("{step} refused with {code} ({name}): {description}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{CaseRecord, CaseStatus};
    use crate::digest::{digest_bytes, Algorithm, AlgorithmSet};
    use crate::event::ObjectRef;
    use crate::report::{incident_xml, FileLocation, ReportingPerson, UploadFacts};
    use crate::review::{Classification, Decision, Review};
    use crate::scan::Match;
    use std::collections::BTreeMap;

    const CONTENT: &[u8] = b"quarantined bytes";

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
                key: "photos/a <&> b.jpg".into(),
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
            md5: digests.get(Algorithm::Md5).unwrap().to_hex(),
        }
    }

    /// NCMEC in memory: reports by id, with what each received.
    #[derive(Default)]
    struct World {
        next_id: u64,
        submissions: u32,
        reports: BTreeMap<u64, Report>,
        /// Answer uploads with this MD5 instead of the real one.
        wrong_md5: bool,
        /// Refuse this step with "validation failed".
        refuse: Option<&'static str>,
        /// Lose the answer of this many finish requests after doing them.
        lose_finish_answers: u32,
        /// The state the caller last persisted.
        persisted: Option<SendState>,
        persists: usize,
    }

    #[derive(Default, Debug)]
    struct Report {
        files: Vec<String>,
        fileinfo: Vec<String>,
        finished: bool,
        retracted: bool,
    }

    fn md5_hex(bytes: &[u8]) -> String {
        digest_bytes(bytes, AlgorithmSet::ALL)
            .get(Algorithm::Md5)
            .unwrap()
            .to_hex()
    }

    fn refused(code: i32) -> Outcome {
        Outcome::Refused {
            code,
            description: "no".into(),
        }
    }

    impl World {
        fn open(&mut self, id: u64) -> Result<&mut Report, Outcome> {
            match self.reports.get_mut(&id) {
                None => Err(refused(5001)),
                Some(r) if r.finished => Err(refused(CODE_ALREADY_FINISHED)),
                Some(r) if r.retracted => Err(refused(CODE_ALREADY_RETRACTED)),
                Some(r) => Ok(r),
            }
        }

        fn perform(&mut self, action: SendAction) -> Outcome {
            match action {
                SendAction::Persist(state) => {
                    self.persisted = Some(state);
                    self.persists += 1;
                    Outcome::Persisted
                }
                SendAction::Submit { report_xml } => {
                    assert!(report_xml.contains("<report"));
                    self.submissions += 1;
                    if self.refuse == Some("submit") {
                        return refused(CODE_VALIDATION_FAILED);
                    }
                    self.next_id += 1;
                    self.reports.insert(self.next_id, Report::default());
                    Outcome::Submitted {
                        report_id: self.next_id,
                    }
                }
                SendAction::Upload {
                    report_id,
                    evidence,
                    ..
                } => {
                    assert_eq!(evidence.key, "cases/case-1/object");
                    let wrong = self.wrong_md5;
                    let refuse = self.refuse == Some("upload");
                    match self.open(report_id) {
                        Err(o) => o,
                        Ok(_) if refuse => refused(CODE_VALIDATION_FAILED),
                        Ok(r) => {
                            let file_id = format!("f{}", r.files.len() + 1);
                            r.files.push(file_id.clone());
                            let md5 = if wrong {
                                md5_hex(b"something else")
                            } else {
                                md5_hex(CONTENT).to_uppercase()
                            };
                            Outcome::Uploaded { file_id, md5 }
                        }
                    }
                }
                SendAction::FileInfo { report_id, xml } => {
                    let refuse = self.refuse == Some("fileinfo");
                    match self.open(report_id) {
                        Err(o) => o,
                        Ok(_) if refuse => refused(CODE_VALIDATION_FAILED),
                        Ok(r) => {
                            assert!(xml.contains(&format!("<reportId>{report_id}</reportId>")));
                            assert!(xml.contains(&format!("<fileId>{}</fileId>", r.files[0])));
                            r.fileinfo.push(xml);
                            Outcome::FileInfoAccepted
                        }
                    }
                }
                SendAction::Finish { report_id } => {
                    let refuse = self.refuse == Some("finish");
                    let lose = self.lose_finish_answers > 0;
                    match self.open(report_id) {
                        Err(o) => o,
                        Ok(_) if refuse => refused(CODE_VALIDATION_FAILED),
                        Ok(r) => {
                            r.finished = true;
                            if lose {
                                self.lose_finish_answers -= 1;
                                Outcome::Failed {
                                    error: "connection reset".into(),
                                }
                            } else {
                                Outcome::Finished
                            }
                        }
                    }
                }
                SendAction::Retract { report_id, .. } => match self.open(report_id) {
                    Err(o) => o,
                    Ok(r) => {
                        r.retracted = true;
                        Outcome::Retracted
                    }
                },
                SendAction::Done => unreachable!(),
            }
        }

        fn finished(&self) -> usize {
            self.reports.values().filter(|r| r.finished).count()
        }
    }

    /// Runs until done, or until `crash_after` persists, when the machine is dropped.
    fn run(world: &mut World, state: SendState, crash_after: Option<usize>) -> Option<SendState> {
        let mut sender = Sender::new(package(), state).unwrap();
        let mut persists = 0;
        for _ in 0..100 {
            let action = sender.action();
            if action == SendAction::Done {
                return Some(sender.state().clone());
            }
            let is_persist = matches!(action, SendAction::Persist(_));
            let outcome = world.perform(action);
            sender.advance(outcome);
            if is_persist {
                persists += 1;
                if Some(persists) == crash_after {
                    return None;
                }
            }
        }
        panic!("the sender did not finish");
    }

    #[test]
    fn the_whole_flow_submits_once_and_finishes() {
        let mut world = World::default();
        let state = run(&mut world, SendState::new("case-1"), None).unwrap();
        assert!(state.finished && state.fileinfo_sent && state.uploaded_md5_ok);
        assert_eq!(state.report_id, Some(1));
        assert_eq!(state.file_id.as_deref(), Some("f1"));
        assert_eq!((world.submissions, world.finished()), (1, 1));
        assert_eq!(world.reports[&1].fileinfo.len(), 1);
        // submit, upload, fileinfo, finish: each persisted.
        assert_eq!(world.persists, 4);
        assert_eq!(world.persisted.as_ref(), Some(&state));
    }

    #[test]
    fn a_crash_after_every_step_resumes_without_a_second_submission() {
        for crash_at in 1..=4 {
            let mut world = World::default();
            let first = run(&mut world, SendState::new("case-1"), Some(crash_at));
            assert!(first.is_none(), "crash at {crash_at}");
            let persisted = world.persisted.clone().unwrap();
            // Every step's result is written before the next request is made.
            assert_eq!(world.persists, crash_at);
            let state = run(&mut world, persisted, None).unwrap();
            assert!(state.finished, "crash at {crash_at}");
            assert_eq!(
                (world.submissions, world.finished(), world.reports.len()),
                (1, 1, 1),
                "crash at {crash_at}"
            );
            let report = &world.reports[&1];
            assert_eq!((report.files.len(), report.fileinfo.len()), (1, 1));
            // A done state stays done.
            let again = run(&mut world, state.clone(), None).unwrap();
            assert_eq!(again, state);
            assert_eq!(world.submissions, 1);
        }
    }

    #[test]
    fn repeated_crashes_at_every_step_still_finish_one_report() {
        let mut world = World::default();
        let mut state = SendState::new("case-1");
        loop {
            match run(&mut world, state.clone(), Some(1)) {
                Some(done) => {
                    state = done;
                    break;
                }
                None => state = world.persisted.clone().unwrap(),
            }
        }
        assert!(state.finished);
        assert_eq!((world.submissions, world.finished()), (1, 1));
    }

    #[test]
    fn a_crash_before_the_report_id_is_persisted_never_finishes_two_reports() {
        // The one gap the API leaves: NCMEC opened a report, its id was never written.
        let mut world = World::default();
        let mut sender = Sender::new(package(), SendState::new("case-1")).unwrap();
        let outcome = world.perform(sender.action());
        sender.advance(outcome);
        drop(sender);
        let state = run(&mut world, SendState::new("case-1"), None).unwrap();
        assert!(state.finished);
        assert_eq!((world.submissions, world.finished()), (2, 1));
        // The orphan is open, unfinished: NCMEC deletes it after 24 hours.
        assert!(!world.reports[&1].finished && !world.reports[&1].retracted);
    }

    #[test]
    fn an_md5_mismatch_is_retracted_never_finished() {
        let mut world = World {
            wrong_md5: true,
            ..World::default()
        };
        let state = run(&mut world, SendState::new("case-1"), None).unwrap();
        assert!(state.retracted && !state.finished && !state.fileinfo_sent);
        assert!(!state.uploaded_md5_ok);
        assert!(state.stopped.as_deref().unwrap().contains("MD5"));
        assert!(world.reports[&1].retracted);
        assert_eq!(world.finished(), 0);
        // A crash after the mismatch was persisted still retracts.
        let mut world = World {
            wrong_md5: true,
            ..World::default()
        };
        assert!(run(&mut world, SendState::new("case-1"), Some(2)).is_none());
        let persisted = world.persisted.clone().unwrap();
        let state = run(&mut world, persisted, None).unwrap();
        assert!(state.retracted && world.reports[&1].retracted);
        assert_eq!(world.finished(), 0);
    }

    #[test]
    fn a_validation_failure_retracts_and_stops_with_the_reason() {
        for step in ["upload", "fileinfo", "finish"] {
            let mut world = World {
                refuse: Some(step),
                ..World::default()
            };
            let state = run(&mut world, SendState::new("case-1"), None).unwrap();
            assert!(state.retracted && !state.finished, "{step}");
            let reason = state.stopped.unwrap();
            assert!(
                reason.contains(step) && reason.contains("4100 (validation failed)"),
                "{reason}"
            );
            assert!(world.reports[&1].retracted);
            assert_eq!((world.submissions, world.finished()), (1, 0));
        }
        // A refused submit opened nothing: nothing to retract.
        let mut world = World {
            refuse: Some("submit"),
            ..World::default()
        };
        let state = run(&mut world, SendState::new("case-1"), None).unwrap();
        assert!(!state.retracted && state.report_id.is_none());
        assert!(state.stopped.unwrap().contains("submit refused with 4100"));
        assert_eq!(world.submissions, 1);
    }

    #[test]
    fn already_finished_at_finish_is_done() {
        // The finish is done but its answer is lost: the retry hears 5102.
        let mut world = World {
            lose_finish_answers: 1,
            ..World::default()
        };
        let state = run(&mut world, SendState::new("case-1"), None).unwrap();
        assert!(state.finished && state.stopped.is_none());
        assert_eq!(state.attempts, 1);
        assert_eq!(state.last_error, None);
        assert_eq!((world.submissions, world.finished()), (1, 1));
    }

    #[test]
    fn transport_failures_repeat_the_step_and_count() {
        let mut sender = Sender::new(package(), SendState::new("case-1")).unwrap();
        sender.advance(Outcome::Failed {
            error: "timeout".into(),
        });
        assert!(matches!(sender.action(), SendAction::Persist(_)));
        sender.advance(Outcome::Persisted);
        assert!(matches!(sender.action(), SendAction::Submit { .. }));
        let s = sender.state();
        assert_eq!((s.attempts, s.submissions), (1, 1));
        assert_eq!(s.last_error.as_deref(), Some("timeout"));
        // An answer to a request not asked for changes nothing.
        sender.advance(Outcome::Finished);
        assert!(matches!(sender.action(), SendAction::Submit { .. }));
        assert!(!sender.state().finished);
    }

    #[test]
    fn the_state_round_trips_and_must_be_of_the_same_case() {
        let mut world = World::default();
        run(&mut world, SendState::new("case-1"), Some(2));
        let state = world.persisted.unwrap();
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<SendState>(&json).unwrap(), state);
        assert!(matches!(
            Sender::new(package(), SendState::new("case-2")),
            Err(SendError::WrongCase { .. })
        ));
        let mut bad = package();
        bad.md5 = "xyz".into();
        assert!(matches!(
            Sender::new(bad, SendState::new("case-1")),
            Err(SendError::BadMd5(_))
        ));
    }
}
