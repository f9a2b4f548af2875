//! `hashgate reports`: the CyberTipline report packages in the reports bucket
//! (`HASHGATE_REPORTS_BUCKET`): list them with how their sending stands, show one (its
//! manifest and send state, never the evidence), validate its report against the schema
//! kept in the repository (`xmllint`), and send it, or go on sending it, to NCMEC.
//!
//! A send is `hashgate_report_sender::send`, as the report sender function does it: it
//! rebuilds the core's `sender::Package` from `package.json` and the evidence named in its
//! manifest, resumes from `send-state.json`, persists every state there before the next
//! request, and records every answer NCMEC gives under `responses/`. It refuses to start
//! without CyberTipline credentials (`HASHGATE_CYBERTIP_SECRET`, or
//! `HASHGATE_CYBERTIP_USERNAME` and `HASHGATE_CYBERTIP_PASSWORD`); the endpoint is
//! `HASHGATE_CYBERTIP_ENDPOINT`, NCMEC's test environment by default.

use std::io::Write;
use std::process::{Command, ExitCode};

use anyhow::{bail, Context};
use hashgate_aws::reports::{send_status, PackageSummary, S3Reports, MAX_PAGE};
use hashgate_aws::secrets;
use hashgate_core::followup::PackageFiles;
use hashgate_core::report::SCHEMA;
use hashgate_core::time::rfc3339;
use hashgate_report_sender::config;
use hashgate_report_sender::send::{self, SendFailure};
use serde_json::json;

use clap::{Args, Subcommand};

/// The reports bucket.
pub const BUCKET_VAR: &str = config::BUCKET_VAR;

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .with_context(|| {
            format!("{name} is not set (for the local stack: set -a; . .local/stack.env; set +a)")
        })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

async fn connect() -> anyhow::Result<(aws_config::SdkConfig, S3Reports)> {
    let bucket = env(BUCKET_VAR)?;
    let sdk = hashgate_aws::sdk_config().await;
    let reports = S3Reports::connect(&sdk, bucket, None);
    Ok((sdk, reports))
}

async fn package(reports: &S3Reports, case_id: &str) -> anyhow::Result<PackageFiles> {
    reports
        .read_package(case_id)
        .await
        .with_context(|| format!("reading the report package of {case_id}"))?
        .with_context(|| {
            format!(
                "no report package for case {case_id} in s3://{}/ (none written yet, or not \
                 whole: run the case's followups again)",
                reports.bucket()
            )
        })
}

#[derive(Subcommand, Debug)]
pub enum ReportsCommand {
    /// The report packages in the reports bucket (HASHGATE_REPORTS_BUCKET): case, when
    /// built, classification, fileViewedByEsp, and how the sending stands (not sent, in
    /// progress, finished with NCMEC's report id, retracted or stopped, and why).
    List(ReportsListArgs),
    /// One package: its manifest, its send state and NCMEC's recorded answers (never the
    /// evidence).
    Show(ReportCaseArgs),
    /// Check the package's report.xml against the CyberTipline schema kept in the
    /// repository, with xmllint (Debian package libxml2-utils). Exit status 0 when valid, 1
    /// when not, 2 on an error.
    Validate(ReportCaseArgs),
    /// Send the package to NCMEC's CyberTipline, or go on sending it from where it stopped
    /// (send-state.json): submit once, upload the quarantined evidence (its MD5 checked
    /// before and after), file details, finish; a refusal or a mismatched file is retracted.
    /// Every state is written before the next request, every answer under responses/.
    ///
    /// Needs CyberTipline credentials: HASHGATE_CYBERTIP_SECRET (a Secrets Manager secret
    /// holding {"username": .., "password": ..}), or HASHGATE_CYBERTIP_USERNAME and
    /// HASHGATE_CYBERTIP_PASSWORD; without them sending is disabled and nothing is sent.
    /// HASHGATE_CYBERTIP_ENDPOINT is the API's base URI (default: NCMEC's test environment).
    /// Exit status 0 when the report is finished, 1 when it was retracted or stopped, 2 on
    /// an error (run it again to go on).
    Send(ReportCaseArgs),
}

#[derive(Args, Debug)]
pub struct ReportsListArgs {
    /// At most this many packages.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub limit: u32,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ReportCaseArgs {
    /// The case id.
    pub case_id: String,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(command: &ReportsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ReportsCommand::List(a) => list(a),
        ReportsCommand::Show(a) => show(a),
        ReportsCommand::Validate(a) => validate(a),
        ReportsCommand::Send(a) => send(a),
    }
}

// ---- list ------------------------------------------------------------------------------

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

pub fn list(args: &ReportsListArgs) -> anyhow::Result<ExitCode> {
    let limit = args.limit.max(1) as usize;
    let (summaries, more) = runtime()?.block_on(async {
        let (_, reports) = connect().await?;
        let mut ids = Vec::new();
        let mut token = None;
        let more = loop {
            let want = (limit - ids.len()).min(MAX_PAGE as usize);
            let page = reports.list(token.take(), want as i32).await?;
            ids.extend(page.case_ids);
            match page.next {
                Some(next) if ids.len() < limit => token = Some(next),
                Some(_) => break true,
                None => break false,
            }
        };
        let mut summaries = Vec::with_capacity(ids.len());
        for id in ids.into_iter().take(limit) {
            summaries.push(reports.summary(&id).await?);
        }
        anyhow::Ok((summaries, more))
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&json!({"packages": summaries, "more": more}))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<40}  {:<20}  {:<14}  {:<15}  send status",
        "case", "built at", "classification", "fileViewedByEsp"
    )?;
    for s in &summaries {
        writeln!(out, "{}", list_line(s))?;
    }
    if summaries.is_empty() {
        writeln!(out, "(no report packages)")?;
    }
    if more {
        writeln!(
            out,
            "(more packages than --limit {limit}: raise it to see them)"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn list_line(s: &PackageSummary) -> String {
    match &s.manifest {
        Some(m) => format!(
            "{:<40}  {:<20}  {:<14}  {:<15}  {}",
            s.case_id,
            rfc3339(m.built_at),
            m.classification.as_str(),
            yes_no(m.file_viewed_by_esp),
            s.status
        ),
        None => format!(
            "{:<40}  {:<20}  {:<14}  {:<15}  incomplete package (no package.json)",
            s.case_id, "-", "-", "-"
        ),
    }
}

// ---- show ------------------------------------------------------------------------------

pub fn show(args: &ReportCaseArgs) -> anyhow::Result<ExitCode> {
    let (files, state, responses, location) = runtime()?.block_on(async {
        let (_, reports) = connect().await?;
        let files = package(&reports, &args.case_id).await?;
        let state = reports.read_state(&args.case_id).await?;
        let responses = reports.responses(&args.case_id).await?;
        let location = reports.location(&args.case_id)?;
        anyhow::Ok((files, state, responses, location))
    })?;
    let status = send_status(state.as_ref());
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&json!({
                "case_id": files.case_id,
                "location": location.to_string(),
                "manifest": files.manifest,
                "state": state,
                "status": status,
                "responses": responses,
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let m = &files.manifest;
    let mut out = std::io::stdout().lock();
    writeln!(out, "case:             {}", files.case_id)?;
    writeln!(out, "package:          {location}")?;
    writeln!(out, "built at:         {}", rfc3339(m.built_at))?;
    writeln!(out, "classification:   {}", m.classification.as_str())?;
    writeln!(
        out,
        "fileViewedByEsp:  {}{}",
        m.file_viewed_by_esp,
        if m.viewed_in_audit_entries.is_empty() {
            String::new()
        } else {
            format!(
                " (reveals in audit entries {})",
                m.viewed_in_audit_entries
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    )?;
    writeln!(
        out,
        "object:           s3://{}/{}{}",
        m.object.bucket,
        m.object.key,
        m.object
            .version_id
            .as_deref()
            .map(|v| format!(" (version {v})"))
            .unwrap_or_default()
    )?;
    match &m.evidence {
        Some(e) => writeln!(out, "evidence:         s3://{}/{}", e.bucket, e.key)?,
        None => writeln!(out, "evidence:         held in place (the object itself)")?,
    }
    for d in &m.digests {
        writeln!(out, "{:<18}{}", format!("{}:", d.algorithm), d.hex)?;
    }
    writeln!(out, "report SHA-256:   {}", m.report_sha256)?;
    for note in &m.notes {
        writeln!(out, "note:             {note}")?;
    }
    writeln!(out, "send status:      {status}")?;
    if let Some(s) = &state {
        if let Some(file_id) = &s.file_id {
            writeln!(
                out,
                "uploaded file:    {file_id}, MD5 {} ({})",
                s.uploaded_md5.as_deref().unwrap_or("-"),
                if s.uploaded_md5_ok {
                    "the evidence's"
                } else {
                    "NOT the evidence's"
                }
            )?;
        }
        if s.submissions > 1 {
            writeln!(
                out,
                "submissions:      {} (an unfinished report may have been left for NCMEC to delete)",
                s.submissions
            )?;
        }
    }
    for r in &responses {
        writeln!(out, "response:         s3://{}/{r}", location.bucket)?;
    }
    Ok(ExitCode::SUCCESS)
}

// ---- validate --------------------------------------------------------------------------

/// xmllint's verdict on `xml` against the repository's schema: Ok, or its complaint.
/// `Err` when xmllint cannot be run.
pub fn xmllint(xml: &str) -> anyhow::Result<Result<(), String>> {
    run_xmllint(&xmllint_program(), xml)
}

fn run_xmllint(program: &str, xml: &str) -> anyhow::Result<Result<(), String>> {
    let dir = tempfile::tempdir()?;
    let schema = dir.path().join("cybertipline.xsd");
    let report = dir.path().join("report.xml");
    std::fs::write(&schema, SCHEMA)?;
    std::fs::write(&report, xml)?;
    let out = match Command::new(program)
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(&schema)
        .arg(&report)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "xmllint is not installed: validating needs it (Debian and Ubuntu: apt-get install \
             libxml2-utils; or set HASHGATE_XMLLINT to its path)"
        ),
        Err(e) => return Err(e).context("running xmllint"),
    };
    if out.status.success() {
        Ok(Ok(()))
    } else {
        let complaint = String::from_utf8_lossy(&out.stderr)
            .replace(&*report.to_string_lossy(), "report.xml")
            .replace(&*schema.to_string_lossy(), "cybertipline.xsd");
        Ok(Err(complaint.trim().to_string()))
    }
}

fn xmllint_program() -> String {
    std::env::var("HASHGATE_XMLLINT")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "xmllint".into())
}

pub fn validate(args: &ReportCaseArgs) -> anyhow::Result<ExitCode> {
    let files = runtime()?.block_on(async {
        let (_, reports) = connect().await?;
        package(&reports, &args.case_id).await
    })?;
    let verdict = xmllint(&files.report_xml)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&json!({
                "case_id": files.case_id,
                "valid": verdict.is_ok(),
                "errors": verdict.as_ref().err(),
            }))?
        );
    } else {
        match &verdict {
            Ok(()) => println!(
                "report.xml of case {} is valid against the CyberTipline schema (and matches its manifest's SHA-256)",
                files.case_id
            ),
            Err(why) => println!(
                "report.xml of case {} is NOT valid against the CyberTipline schema:\n{why}",
                files.case_id
            ),
        }
    }
    Ok(if verdict.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

// ---- send ------------------------------------------------------------------------------

pub fn send(args: &ReportCaseArgs) -> anyhow::Result<ExitCode> {
    let endpoint = config::endpoint_from_vars(|name| std::env::var(name).ok())?;
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let (sdk, reports) = connect().await?;
        let source = secrets::source_from_vars(|name| std::env::var(name).ok())
            .map_err(|e| anyhow::anyhow!("{e}; nothing was sent"))?;
        let api = send::connect_api(&sdk, source, &endpoint).await?;
        let prepared = send::prepare(&reports, &args.case_id).await?;
        if prepared.is_done() {
            return anyhow::Ok((prepared.state().clone(), true));
        }
        eprintln!(
            "sending the report of case {} to {} ({})",
            args.case_id,
            api.endpoint(),
            prepared.status()
        );
        match prepared.send(&reports, &api).await {
            Ok(state) => Ok((state, false)),
            Err(stopped @ SendFailure::Stopped { .. }) => {
                Err(anyhow::Error::new(stopped).context(format!(
                    "run `hashgate reports send {}` again to go on",
                    args.case_id
                )))
            }
            Err(other) => Err(other.into()),
        }
    });
    let (state, already) = result?;
    let status = send_status(Some(&state));
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&json!({
                "case_id": state.case_id,
                "status": status,
                "already_done": already,
                "state": state,
            }))?
        );
    } else if already {
        println!("case {}: nothing to send: {status}", state.case_id);
    } else {
        println!("case {}: {status}", state.case_id);
    }
    Ok(if state.finished && state.stopped.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xmllint_refuses_what_is_not_a_report() {
        // Only where xmllint is installed (make test installs it).
        if Command::new("xmllint").arg("--version").output().is_err() {
            return;
        }
        let verdict = run_xmllint("xmllint", "<report><nonsense/></report>").unwrap();
        let why = verdict.unwrap_err();
        assert!(why.contains("report.xml"), "{why}");
        assert!(!why.contains("/tmp"), "{why}");
    }

    #[test]
    fn a_missing_xmllint_is_named() {
        let e = run_xmllint("/nonexistent/xmllint", "<report/>")
            .unwrap_err()
            .to_string();
        assert!(e.contains("xmllint is not installed"), "{e}");
    }
}
