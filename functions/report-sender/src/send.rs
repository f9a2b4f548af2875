//! The sending of one stored report package, for the function and for `hashgate reports
//! send` alike: the core's `sender::Package` rebuilt from `package.json` in the reports
//! bucket and the evidence its manifest names, resumed from `send-state.json`, driven by
//! `hashgate_cybertip::send_recording` with every state persisted there before the next
//! request and every answer NCMEC gives recorded under `responses/`.
//!
//! [`prepare`] reads the package and its state (nothing is asked of NCMEC); [`Prepared::send`]
//! sends it. Before a report is opened the evidence is read and its MD5 checked against the
//! manifest's, so no report is left unfinished for a missing or altered file; the bytes
//! checked are the ones uploaded.

use std::cell::{Cell, RefCell};

use hashgate_aws::reports::{send_status, S3Reports};
use hashgate_aws::secrets::{self, CredentialError, CredentialSource};
use hashgate_core::case::QuarantineLocation;
use hashgate_core::digest::{digest_bytes, Algorithm, AlgorithmSet};
use hashgate_core::followup::PackageFiles;
use hashgate_core::sender::{Package, SendState};
use hashgate_cybertip::{send_recording, Answer, Credentials, CyberTipline, ReportApi, Stopped};

/// The largest evidence a send reads into memory (the API takes the file whole).
pub const MAX_EVIDENCE_BYTES: u64 = 2 << 30;

/// Why a package was not sent to the end.
#[derive(Debug, thiserror::Error)]
pub enum SendFailure {
    /// Nothing was asked of NCMEC: no credentials, no (whole) package, a package that
    /// cannot be sent, evidence missing or altered, or the bucket could not be read.
    #[error("{0}; nothing was sent")]
    NothingSent(String),
    /// The run stopped part way (NCMEC or the bucket could not be reached, an answer not
    /// recorded): what was done is persisted, and a run from it goes on.
    #[error("the sending of case {case_id} stopped; what was done is in send-state.json")]
    Stopped {
        case_id: String,
        #[source]
        stopped: Stopped,
    },
}

/// The CyberTipline client for `endpoint` with the credentials of `source` (a Secrets
/// Manager secret is read with `sdk`).
pub async fn connect_api(
    sdk: &aws_config::SdkConfig,
    source: CredentialSource,
    endpoint: &str,
) -> Result<CyberTipline, SendFailure> {
    let credentials = secrets::load_from(sdk, source)
        .await
        .map_err(|e: CredentialError| SendFailure::NothingSent(e.to_string()))?;
    CyberTipline::new(
        endpoint,
        Credentials {
            username: credentials.username,
            password: credentials.password,
        },
    )
    .map_err(|e| SendFailure::NothingSent(e.to_string()))
}

/// The evidence's MD5 in a manifest.
fn manifest_md5(files: &PackageFiles) -> Result<String, String> {
    files
        .manifest
        .digests
        .iter()
        .find(|d| d.algorithm.eq_ignore_ascii_case("md5"))
        .map(|d| d.hex.to_ascii_lowercase())
        .ok_or_else(|| {
            format!(
                "the manifest of case {} has no MD5 of the evidence, which NCMEC's upload is \
                 checked against",
                files.case_id
            )
        })
}

/// The core's package, rebuilt from the stored one.
pub fn sender_package(files: &PackageFiles) -> Result<Package, String> {
    let evidence = files.manifest.evidence.clone().ok_or_else(|| {
        format!(
            "case {} is held in place, with no quarantined copy: sending its evidence from \
             the upload bucket is not supported",
            files.case_id
        )
    })?;
    Ok(Package {
        config: files.config.clone(),
        input: files.input.clone(),
        report_xml: files.report_xml.clone(),
        built_at: files.manifest.built_at,
        evidence,
        file_name: files.case_id.clone(),
        md5: manifest_md5(files)?,
    })
}

fn md5_hex(bytes: &[u8]) -> String {
    digest_bytes(bytes, AlgorithmSet::EMPTY.with(Algorithm::Md5))
        .get(Algorithm::Md5)
        .map(|d| d.to_hex())
        .unwrap_or_default()
}

/// The evidence at `location`, refused unless its MD5 is `expected_md5`.
async fn evidence_checked(
    reports: &S3Reports,
    location: &QuarantineLocation,
    expected_md5: &str,
) -> Result<Vec<u8>, String> {
    let bytes = reports
        .read_evidence(location, MAX_EVIDENCE_BYTES)
        .await
        .map_err(|e| e.to_string())?;
    let md5 = md5_hex(&bytes);
    if md5 != expected_md5 {
        return Err(format!(
            "its MD5 is {md5}, not the {expected_md5} the package names: not uploaded"
        ));
    }
    Ok(bytes)
}

/// A stored package and how its sending stands, read and ready to send.
#[derive(Debug)]
pub struct Prepared {
    package: Package,
    state: SendState,
}

/// Reads the package of `case_id` and its last persisted send state (a new one if it was
/// never sent). Asks nothing of NCMEC.
pub async fn prepare(reports: &S3Reports, case_id: &str) -> Result<Prepared, SendFailure> {
    let nothing = SendFailure::NothingSent;
    let files = reports
        .read_package(case_id)
        .await
        .map_err(|e| nothing(format!("reading the report package of {case_id}: {e}")))?
        .ok_or_else(|| {
            nothing(format!(
                "no report package for case {case_id} in s3://{}/ (none written yet, or not \
                 whole: run the case's followups again)",
                reports.bucket()
            ))
        })?;
    let package = sender_package(&files).map_err(nothing)?;
    let state = reports
        .read_state(case_id)
        .await
        .map_err(|e| nothing(format!("reading the send state of {case_id}: {e}")))?
        .unwrap_or_else(|| SendState::new(case_id));
    Ok(Prepared { package, state })
}

impl Prepared {
    /// The last persisted state.
    pub fn state(&self) -> &SendState {
        &self.state
    }

    /// Whether there is nothing left to do: finished, retracted, or stopped with a reason.
    pub fn is_done(&self) -> bool {
        self.state.is_done()
    }

    /// How the sending stands, in a few words.
    pub fn status(&self) -> String {
        send_status(Some(&self.state))
    }

    /// Sends the package, or goes on sending it, until it is done; returns the last
    /// persisted state (finished, retracted, or stopped with NCMEC's reason). A package
    /// that is done already is returned as it is, with nothing asked of NCMEC.
    pub async fn send<A: ReportApi>(
        self,
        reports: &S3Reports,
        api: &A,
    ) -> Result<SendState, SendFailure> {
        let Prepared { package, state } = self;
        if state.is_done() {
            return Ok(state);
        }
        let case_id = state.case_id.clone();
        let expected_md5 = package.md5.clone();
        // Before a report is opened, the evidence is read and checked: a report that could
        // not be completed is never opened. The bytes read are the ones uploaded.
        let prefetched = match state.report_id {
            None => Some(
                evidence_checked(reports, &package.evidence, &expected_md5)
                    .await
                    .map_err(|e| {
                        SendFailure::NothingSent(format!(
                            "the evidence of case {case_id} at s3://{}/{}: {e}",
                            package.evidence.bucket, package.evidence.key
                        ))
                    })?,
            ),
            Some(_) => None,
        };
        let prefetched = RefCell::new(prefetched);
        let next = Cell::new(reports.next_response_number(&case_id).await.map_err(|e| {
            SendFailure::NothingSent(format!("listing the answers recorded for {case_id}: {e}"))
        })?);
        let case = case_id.as_str();
        let outcome = send_recording(
            package,
            state,
            api,
            |location| {
                let expected_md5 = expected_md5.clone();
                let ready = prefetched.borrow_mut().take();
                async move {
                    match ready {
                        Some(bytes) => Ok(bytes),
                        None => evidence_checked(reports, &location, &expected_md5).await,
                    }
                }
            },
            |state: SendState| async move {
                reports.write_state(&state).await.map_err(|e| e.to_string())
            },
            |answer: Answer| {
                let number = next.get();
                next.set(number + 1);
                async move {
                    reports
                        .write_response(case, number, &answer.step, &answer.body)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
            },
        )
        .await;
        outcome.map_err(|stopped| SendFailure::Stopped {
            case_id: case_id.clone(),
            stopped,
        })
    }
}
