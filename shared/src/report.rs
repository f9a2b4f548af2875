//! The CyberTipline report of a confirmed case, sans-IO: the `<report>` document that opens
//! a report with NCMEC (`submit`), the `<fileDetails>` of the case's file (`fileinfo`), and
//! the [`Manifest`] that is kept with them. Nothing here sends, stores or reads the clock:
//! the case, its audit history, what the upload event said and the instant are handed in,
//! and strings come out.
//!
//! The documents follow NCMEC's public *CyberTipline Reporting API Technical Documentation*
//! (report.cybertip.org/ispws/documentation); `schemas/cybertipline.xsd`, written from it
//! ([`SCHEMA`]), says what is written and in which order, and the tests validate against it.
//!
//! The rules, each in one place:
//!
//! - **Only a confirmed case with a classification is reported** ([`ReportInput::new`]).
//! - **`fileViewedByEsp` comes from the audit log** ([`viewing`]): true exactly when the
//!   case's history holds a `revealed` entry of that case, whose own hash checks out. A
//!   blurred preview (`preview_served`) or opening the case (`viewed`) is not viewing the
//!   file; another case's reveal says nothing about this file. Since United States v.
//!   Wilson (9th Cir. 2021) it matters whether a person at the provider looked at the very
//!   file, so it is never assumed. The audit entries it rests on go into the manifest. The
//!   documentation defines the element as the company having "viewed the entire contents of
//!   the file"; what a reveal shows is a reduced rendering, so the file details say so
//!   ([`VIEWED_NOTE`]) whenever they say true.
//! - **`exifViewedByEsp` is always false**: the review service renders previews from the
//!   pixels and never shows a file's EXIF (or any other) metadata. (NCMEC requires
//!   `fileViewedByEsp` to be true whenever `exifViewedByEsp` is; false always satisfies it.)
//! - **Text is escaped by the XML writer**; `\r`, which a parser would turn into `\n`, is
//!   written as a character reference, so every string an XML 1.0 document can carry comes
//!   back identical. Characters XML 1.0 cannot carry at all (C0 controls other than tab,
//!   line feed and carriage return; U+FFFE, U+FFFF) cannot appear in a file name as
//!   written: they are replaced by U+FFFD rather than refused, because a report must not
//!   fail over how an uploader named a file. The exact key is not lost: `locationOfFile`
//!   percent-encodes it, byte for byte, and a note in the file details says so.
//! - **Length limits** are the documentation's ([`limit`]), counted in UTF-16 code units
//!   ([`length`]), never fewer than the Unicode characters an XSD counts, so a value fits
//!   however NCMEC counts. What the operator configures is refused when too long or
//!   malformed ([`ReportConfig::check`]): the operator can fix it. What comes from an
//!   upload is never refused: a file name over the limit is shortened in the middle (its
//!   start and its extension stay) and given whole in a note; an identifier or a URL is never
//!   cut, since a shortened one would name something else: it is left out of its element
//!   and given whole in a note. (An S3 key has at most 1,024 bytes, so an S3 file name is
//!   never shortened; its URL can still outgrow the limit when much of a long key has to be
//!   percent-encoded.)
//! - **Instants** are RFC 3339 in UTC (`2026-11-21T10:04:05Z`); one later than the instant
//!   the report is built at is refused ([`ReportError::NotInThePast`]): NCMEC refuses
//!   instants in the future, and one means a clock is wrong.

use core::net::IpAddr;
use std::collections::BTreeSet;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use serde::{Deserialize, Serialize};

use crate::audit::{entry_hash, AuditAction, ChainedEntry};
use crate::case::{CaseRecord, CaseStatus, QuarantineLocation};
use crate::digest::{digest_bytes, Algorithm, AlgorithmSet};
use crate::event::ObjectRef;
use crate::review::Classification;
use crate::time::{rfc3339, Timestamp};

/// `schemas/cybertipline.xsd`, the schema the documents are written to (see its README).
pub const SCHEMA: &str = include_str!("../../schemas/cybertipline.xsd");

/// The schema location NCMEC's own examples name.
pub const SCHEMA_LOCATION: &str = "https://report.cybertip.org/ispws/xsd";

/// The incident type of every hashgate report.
pub const INCIDENT_TYPE: &str = "Child Pornography (possession, manufacture, and distribution)";

/// The format version of [`Manifest`].
pub const MANIFEST_FORMAT: u32 = 1;

/// The maximum lengths the documentation gives, in [`length`] units.
pub mod limit {
    /// `firstName`, `lastName`.
    pub const NAME: usize = 100;
    /// An email address.
    pub const EMAIL: usize = 255;
    /// An email address's local part (before the `@`).
    pub const EMAIL_LOCAL_PART: usize = 64;
    /// A phone number.
    pub const PHONE: usize = 50;
    /// `incidentSummary/platform`.
    pub const PLATFORM: usize = 256;
    /// `personOrUserReported/espService`.
    pub const ESP_SERVICE: usize = 100;
    /// `personOrUserReported/espIdentifier`.
    pub const ESP_IDENTIFIER: usize = 255;
    /// `incidentSummary/incidentDateTimeDescription`.
    pub const INCIDENT_DATE_TIME_DESCRIPTION: usize = 3000;
    /// `fileDetails/originalFileName`.
    pub const ORIGINAL_FILE_NAME: usize = 2056;
    /// `locationOfFile`, `legalURL`.
    pub const URL: usize = 2083;
    /// The `hashType` attribute.
    pub const HASH_TYPE: usize = 64;
}

/// A value's length as the limits are counted here: UTF-16 code units (what a Java
/// `String` measures), never fewer than its Unicode characters. The documentation says
/// "characters" without saying which count; this one fits both.
pub fn length(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Why a report could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("case {case_id} is {status}: only a confirmed case is reported")]
    NotConfirmed { case_id: String, status: CaseStatus },
    #[error(
        "case {case_id} is confirmed but has no industry classification: the confirm \
         decision must record one (A1, A2, B1 or B2)"
    )]
    NoClassification { case_id: String },
    #[error(
        "audit entry {seq} of case {case_id} was altered (its content does not hash to the \
         hash it carries): what the report says about viewing cannot rest on it; run \
         `hashgate audit verify`"
    )]
    AlteredAuditEntry { case_id: String, seq: u64 },
    #[error("case {case_id}: its {algorithm} digest {value:?} {reason}")]
    BadDigest {
        case_id: String,
        algorithm: String,
        value: String,
        reason: String,
    },
    #[error(
        "{field} is {at}, later than the report's {built_at}: NCMEC refuses instants in the \
         future (is a clock wrong?)"
    )]
    NotInThePast {
        field: &'static str,
        at: Timestamp,
        built_at: Timestamp,
    },
    #[error("report configuration, {field}: {reason}")]
    Config { field: &'static str, reason: String },
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("writing the XML failed: {0}")]
    Xml(String),
}

/// The person who files the reports (`reporter/reportingPerson`; NCMEC requires the email).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportingPerson {
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    pub email: String,
    #[serde(default)]
    pub phone: Option<String>,
}

/// Someone else law enforcement should contact about the reports (`reporter/contactPerson`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactPerson {
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

/// How `locationOfFile`, "the URL where the file was originally located", is written. The
/// documentation asks for "a valid URL" without naming the schemes it accepts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "style", rename_all = "snake_case")]
pub enum FileLocation {
    /// `s3://bucket/key?versionId=…`: a syntactically valid URI (RFC 3986) that names the
    /// object exactly.
    #[default]
    S3,
    /// `{endpoint}/bucket/key?versionId=…`, a path-style HTTPS URL, for instance with
    /// `https://s3.eu-west-1.amazonaws.com`: for when NCMEC's test environment refuses the
    /// `s3` scheme.
    PathStyle { endpoint: String },
}

/// What the operator configures once for every report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportConfig {
    pub reporter: ReportingPerson,
    #[serde(default)]
    pub contact: Option<ContactPerson>,
    /// The storage service's name as its users know it: `incidentSummary/platform` ("the
    /// full application name where the reported content occurred") and
    /// `personOrUserReported/espService`. At most 100 characters (the stricter limit).
    #[serde(default)]
    pub service_name: Option<String>,
    /// `reporter/companyTemplate`: the company's name and standing information (how to
    /// serve legal process, data retention, a 24-hour number). The reporting API names no
    /// separate company element: the company is the account the report is filed under.
    #[serde(default)]
    pub company_template: Option<String>,
    /// `reporter/termsOfService`: the terms relevant to the incident, as text.
    #[serde(default)]
    pub terms_of_service: Option<String>,
    /// `reporter/legalURL`: a page with further information (the terms, for instance).
    #[serde(default)]
    pub legal_url: Option<String>,
    /// Name the bucket owner's identifier as the reported user's `espIdentifier`.
    #[serde(default)]
    pub include_bucket_owner: bool,
    /// Give the upload's source IP address as the reported user's and the file's
    /// `ipCaptureEvent`.
    #[serde(default)]
    pub include_source_ip: bool,
    #[serde(default)]
    pub file_location: FileLocation,
}

impl ReportConfig {
    /// Every configured value against the documentation's limits and forms; the first
    /// problem, named.
    pub fn check(&self) -> Result<(), ReportError> {
        let r = &self.reporter;
        config_text("reporter.first_name", r.first_name.as_deref(), limit::NAME)?;
        config_text("reporter.last_name", r.last_name.as_deref(), limit::NAME)?;
        config_email("reporter.email", &r.email)?;
        config_text("reporter.phone", r.phone.as_deref(), limit::PHONE)?;
        if let Some(c) = &self.contact {
            config_text("contact.first_name", c.first_name.as_deref(), limit::NAME)?;
            config_text("contact.last_name", c.last_name.as_deref(), limit::NAME)?;
            if let Some(email) = &c.email {
                config_email("contact.email", email)?;
            }
            config_text("contact.phone", c.phone.as_deref(), limit::PHONE)?;
        }
        config_text(
            "service_name",
            self.service_name.as_deref(),
            limit::ESP_SERVICE,
        )?;
        config_text(
            "company_template",
            self.company_template.as_deref(),
            usize::MAX,
        )?;
        config_text(
            "terms_of_service",
            self.terms_of_service.as_deref(),
            usize::MAX,
        )?;
        if let Some(url) = &self.legal_url {
            config_text("legal_url", Some(url), limit::URL)?;
            if !is_url(url) {
                return Err(config_error(
                    "legal_url",
                    format!("{url:?} is not a URL (scheme://…, no spaces)"),
                ));
            }
        }
        if let FileLocation::PathStyle { endpoint } = &self.file_location {
            config_text("file_location.endpoint", Some(endpoint), limit::URL)?;
            let rest = endpoint
                .strip_prefix("https://")
                .or_else(|| endpoint.strip_prefix("http://"));
            let fine = rest.is_some_and(|r| {
                !r.is_empty() && !r.contains(|c: char| c.is_whitespace() || "?#".contains(c))
            });
            if !fine {
                return Err(config_error(
                    "file_location.endpoint",
                    format!("{endpoint:?} is not an http(s) endpoint without query or fragment"),
                ));
            }
        }
        Ok(())
    }
}

fn config_error(field: &'static str, reason: String) -> ReportError {
    ReportError::Config { field, reason }
}

/// A configured text: not blank when given, only characters XML 1.0 can carry, within
/// `max` units.
fn config_text(field: &'static str, value: Option<&str>, max: usize) -> Result<(), ReportError> {
    let Some(value) = value else { return Ok(()) };
    if value.trim().is_empty() {
        return Err(config_error(
            field,
            "is blank (leave it out instead)".into(),
        ));
    }
    if let Some(c) = value.chars().find(|c| !is_xml_char(*c)) {
        return Err(config_error(
            field,
            format!("holds {c:?}, which an XML 1.0 document cannot carry"),
        ));
    }
    let n = length(value);
    if n > max {
        return Err(config_error(
            field,
            format!("is {n} characters long; the CyberTipline allows {max}"),
        ));
    }
    Ok(())
}

/// "A well-formed email address", at most 255 characters with a local part of at most 64:
/// here one `@`, nothing blank on either side, a dot in the domain (the schema's pattern).
fn config_email(field: &'static str, email: &str) -> Result<(), ReportError> {
    config_text(field, Some(email), limit::EMAIL)?;
    let bad = |why: &str| config_error(field, format!("{email:?} {why}"));
    if email.chars().any(char::is_whitespace) {
        return Err(bad("holds white space"));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(bad("has no @"));
    };
    if local.is_empty() || domain.contains('@') || !domain.contains('.') {
        return Err(bad("is not of the form local@domain.tld"));
    }
    if domain.starts_with('.') || domain.ends_with('.') {
        return Err(bad("is not of the form local@domain.tld"));
    }
    if length(local) > limit::EMAIL_LOCAL_PART {
        return Err(bad(&format!(
            "has a local part over the {} characters allowed",
            limit::EMAIL_LOCAL_PART
        )));
    }
    Ok(())
}

/// Any scheme, `://`, then something without white space: the schema's `url` pattern.
fn is_url(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        && !rest.is_empty()
        && !rest.chars().any(char::is_whitespace)
}

/// Where an upload came from and when, as its event said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpCapture {
    pub address: IpAddr,
    /// When the address was seen; the upload time when not given.
    #[serde(default)]
    pub at: Option<Timestamp>,
}

/// What the caller knows about the upload beyond the case record, each written only when
/// [`ReportConfig`] says so.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadFacts {
    /// The bucket owner's identifier in the provider's system (an account id, a canonical
    /// user id).
    #[serde(default)]
    pub bucket_owner: Option<String>,
    #[serde(default)]
    pub source_ip: Option<IpCapture>,
}

/// What the audit log says about people viewing the case's file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewing {
    /// `fileViewedByEsp`.
    pub file_viewed: bool,
    /// The `seq` of each `revealed` entry of the case, in order: what `file_viewed` rests on.
    pub reveals: Vec<u64>,
}

impl Viewing {
    /// `exifViewedByEsp`: hashgate never shows a file's metadata to anyone.
    pub const EXIF_VIEWED: bool = false;
}

/// The one rule for `fileViewedByEsp`: the case's file was viewed exactly when its history
/// holds a `revealed` entry of this case. Entries of other cases are ignored (a caller may
/// hand a whole page of the chain); every entry of this case must carry the hash its content
/// gives, or the history is refused. (Whether entries were removed is a question for the
/// whole chain: `audit::Verifier`, `hashgate audit verify`.)
pub fn viewing(case_id: &str, history: &[ChainedEntry]) -> Result<Viewing, ReportError> {
    let mut reveals = Vec::new();
    for e in history.iter().filter(|e| e.entry.case_id == case_id) {
        if entry_hash(e.seq, &e.prev, &e.entry) != e.hash {
            return Err(ReportError::AlteredAuditEntry {
                case_id: case_id.to_string(),
                seq: e.seq,
            });
        }
        if e.entry.action == AuditAction::Revealed {
            reveals.push(e.seq);
        }
    }
    reveals.sort_unstable();
    reveals.dedup();
    Ok(Viewing {
        file_viewed: !reveals.is_empty(),
        reveals,
    })
}

/// One digest as the report gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHash {
    /// The algorithm's name as the case records it (`md5`).
    pub algorithm: String,
    /// The `hashType` attribute (`MD5`, `SHA1`, `SHA256`; other names upper-cased).
    pub hash_type: String,
    /// Lower-case hexadecimal.
    pub hex: String,
}

/// The `hashType` of an algorithm name: the documentation's examples spell them "MD5,
/// SHA1"; SHA-256 follows the same pattern, and any other name is upper-cased.
pub fn hash_type(algorithm: &str) -> String {
    match algorithm.to_ascii_lowercase().as_str() {
        "md5" => "MD5".into(),
        "sha1" | "sha-1" => "SHA1".into(),
        "sha256" | "sha-256" => "SHA256".into(),
        other => other.to_ascii_uppercase(),
    }
}

/// A confirmed case, ready to be reported: built only by [`ReportInput::new`], which
/// applies the rules above.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportInput {
    case_id: String,
    object: ObjectRef,
    quarantine: Option<QuarantineLocation>,
    hashes: Vec<FileHash>,
    classification: Classification,
    uploaded_at: Option<Timestamp>,
    created_at: Timestamp,
    viewing: Viewing,
    facts: UploadFacts,
}

impl ReportInput {
    /// The report input of `case`, given its audit history (entries of other cases are
    /// ignored) and what the upload event said. Refuses a case that is not confirmed, a
    /// confirmed one without a classification, a malformed digest, and an altered audit entry.
    pub fn new(
        case: &CaseRecord,
        history: &[ChainedEntry],
        facts: UploadFacts,
    ) -> Result<ReportInput, ReportError> {
        if case.status != CaseStatus::Confirmed {
            return Err(ReportError::NotConfirmed {
                case_id: case.case_id.clone(),
                status: case.status,
            });
        }
        let classification = case
            .classification
            .ok_or_else(|| ReportError::NoClassification {
                case_id: case.case_id.clone(),
            })?;
        Ok(ReportInput {
            case_id: case.case_id.clone(),
            object: case.object.clone(),
            quarantine: case.quarantine.clone(),
            hashes: file_hashes(case)?,
            classification,
            uploaded_at: case.uploaded_at,
            created_at: case.created_at,
            viewing: viewing(&case.case_id, history)?,
            facts,
        })
    }

    pub fn case_id(&self) -> &str {
        &self.case_id
    }

    pub fn viewing(&self) -> &Viewing {
        &self.viewing
    }

    pub fn classification(&self) -> Classification {
        self.classification
    }

    /// Every digest of the case: MD5 and SHA-1 first, then the others in the case's order.
    pub fn hashes(&self) -> &[FileHash] {
        &self.hashes
    }

    /// `incidentDateTime`: the upload, or, when the event gave no time, the match (the
    /// latest the upload can have been).
    fn incident_at(&self) -> Timestamp {
        self.uploaded_at.unwrap_or(self.created_at)
    }
}

/// The case's digests, checked (hexadecimal, the right length for the algorithms hashgate
/// knows, a usable name, one value per algorithm) and ordered.
fn file_hashes(case: &CaseRecord) -> Result<Vec<FileHash>, ReportError> {
    let bad = |algorithm: &str, value: &str, reason: String| ReportError::BadDigest {
        case_id: case.case_id.clone(),
        algorithm: algorithm.to_string(),
        value: value.to_string(),
        reason,
    };
    let mut hashes: Vec<FileHash> = Vec::new();
    for (algorithm, value) in &case.digests {
        let hash_type = hash_type(algorithm);
        if hash_type.is_empty()
            || length(&hash_type) > limit::HASH_TYPE
            || !hash_type
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        {
            return Err(bad(
                algorithm,
                value,
                format!(
                    "has an algorithm name that cannot be a hashType (letters, digits, - and _, \
                     at most {})",
                    limit::HASH_TYPE
                ),
            ));
        }
        if value.is_empty() || !value.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad(algorithm, value, "is not hexadecimal".into()));
        }
        let known = Algorithm::ALL
            .into_iter()
            .find(|a| hash_type == self::hash_type(a.name()));
        if let Some(a) = known {
            if value.len() != a.byte_len() * 2 {
                return Err(bad(
                    algorithm,
                    value,
                    format!("has {} hex digits, not {}", value.len(), a.byte_len() * 2),
                ));
            }
        }
        let hex = value.to_ascii_lowercase();
        match hashes.iter().find(|h| h.hash_type == hash_type) {
            Some(h) if h.hex == hex => continue,
            Some(h) => {
                return Err(bad(
                    algorithm,
                    value,
                    format!(
                        "contradicts the case's other {} digest {}",
                        h.hash_type, h.hex
                    ),
                ))
            }
            None => hashes.push(FileHash {
                algorithm: algorithm.clone(),
                hash_type,
                hex,
            }),
        }
    }
    let rank = |h: &FileHash| match h.hash_type.as_str() {
        "MD5" => 0,
        "SHA1" => 1,
        _ => 2,
    };
    hashes.sort_by_key(rank);
    Ok(hashes)
}

/// `true` for the characters an XML 1.0 document can carry (its `Char` production).
pub fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// `s` with every character XML 1.0 cannot carry replaced by U+FFFD, and how many were.
fn xml_safe(s: &str) -> (String, usize) {
    let mut replaced = 0;
    let safe = s
        .chars()
        .map(|c| {
            if is_xml_char(c) {
                c
            } else {
                replaced += 1;
                char::REPLACEMENT_CHARACTER
            }
        })
        .collect();
    (safe, replaced)
}

/// `s` shortened to at most `max` units by taking out its middle (for "…"), so that its
/// start and its end (a file name's extension) stay.
fn shorten_middle(s: &str, max: usize) -> String {
    if length(s) <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(1);
    let tail_budget = keep / 3;
    let head_budget = keep - tail_budget;
    let mut head = String::new();
    let mut used = 0;
    for c in s.chars() {
        if used + c.len_utf16() > head_budget {
            break;
        }
        used += c.len_utf16();
        head.push(c);
    }
    let mut tail: Vec<char> = Vec::new();
    let mut used = 0;
    for c in s.chars().rev() {
        if used + c.len_utf16() > tail_budget {
            break;
        }
        used += c.len_utf16();
        tail.push(c);
    }
    head.push('…');
    head.extend(tail.into_iter().rev());
    head
}

/// Percent-encode every byte but RFC 3986's unreserved characters (and `/` when `keep_slash`).
fn percent_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/');
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The object's original location as a URL, exactly (every byte of the key, the version).
pub fn location_url(object: &ObjectRef, style: &FileLocation) -> String {
    let base = match style {
        FileLocation::S3 => "s3:/".to_string(),
        FileLocation::PathStyle { endpoint } => endpoint.trim_end_matches('/').to_string(),
    };
    let mut url = format!(
        "{base}/{}/{}",
        percent_encode(&object.bucket, false),
        percent_encode(&object.key, true)
    );
    if let Some(v) = &object.version_id {
        url.push_str("?versionId=");
        url.push_str(&percent_encode(v, false));
    }
    url
}

/// What the file details say about the file beyond the case's facts: its name, its
/// location and the notes on what had to be changed or left out.
struct FileFacts {
    original_file_name: Option<String>,
    location_of_file: Option<String>,
    notes: Vec<String>,
}

/// Said in the file details when a reviewer revealed the file: what "viewed" means here.
pub const VIEWED_NOTE: &str = "fileViewedByEsp: a reviewer at the reporting company viewed this \
file as a preview rendered by its review tool (downscaled, grayscale and softened), not the \
original file; the audit log records each such view.";

fn file_facts(config: &ReportConfig, input: &ReportInput) -> FileFacts {
    let mut notes = Vec::new();
    let last_segment = input.object.key.rsplit('/').next().unwrap_or_default();
    let original_file_name = (!last_segment.is_empty()).then(|| {
        let (safe, replaced) = xml_safe(last_segment);
        if replaced > 0 {
            notes.push(format!(
                "originalFileName: {replaced} character(s) that an XML document cannot carry \
                 (control characters) are shown as U+FFFD; the exact name is the last segment \
                 of the percent-encoded key in locationOfFile."
            ));
        }
        if length(&safe) > limit::ORIGINAL_FILE_NAME {
            notes.push(format!(
                "originalFileName was shortened to the {} characters the CyberTipline accepts; \
                 the whole name: {safe}",
                limit::ORIGINAL_FILE_NAME
            ));
            shorten_middle(&safe, limit::ORIGINAL_FILE_NAME)
        } else {
            safe
        }
    });
    let url = location_url(&input.object, &config.file_location);
    let location_of_file = if length(&url) > limit::URL {
        notes.push(format!(
            "locationOfFile was left out: the file's URL has {} characters, over the {} the \
             CyberTipline accepts; the whole URL: {url}",
            length(&url),
            limit::URL
        ));
        None
    } else {
        Some(url)
    };
    if input.viewing.file_viewed {
        notes.push(VIEWED_NOTE.to_string());
    }
    FileFacts {
        original_file_name,
        location_of_file,
        notes,
    }
}

/// What the report says about the reported user, and the notes on what was left out.
struct PersonFacts {
    esp_identifier: Option<String>,
    ip: Option<(IpAddr, Option<Timestamp>)>,
    notes: Vec<String>,
}

fn person_facts(config: &ReportConfig, input: &ReportInput) -> PersonFacts {
    let mut notes = Vec::new();
    let esp_identifier = config
        .include_bucket_owner
        .then_some(input.facts.bucket_owner.as_deref())
        .flatten()
        .filter(|id| !id.trim().is_empty())
        .and_then(|id| {
            let (safe, replaced) = xml_safe(id);
            if replaced == 0 && length(id) <= limit::ESP_IDENTIFIER {
                Some(id.to_string())
            } else {
                notes.push(format!(
                    "espIdentifier was left out: the bucket owner's identifier has {} \
                     characters{}, and the CyberTipline accepts {} at most; in full \
                     (U+FFFD for characters an XML document cannot carry): {safe}",
                    length(id),
                    if replaced > 0 {
                        " and characters an XML document cannot carry"
                    } else {
                        ""
                    },
                    limit::ESP_IDENTIFIER
                ));
                None
            }
        });
    let ip = config
        .include_source_ip
        .then_some(input.facts.source_ip.as_ref())
        .flatten()
        .map(|ip| (ip.address, ip.at.or(input.uploaded_at)));
    PersonFacts {
        esp_identifier,
        ip,
        notes,
    }
}

fn not_future(
    field: &'static str,
    at: Timestamp,
    built_at: Timestamp,
) -> Result<Timestamp, ReportError> {
    if at > built_at {
        Err(ReportError::NotInThePast {
            field,
            at,
            built_at,
        })
    } else {
        Ok(at)
    }
}

/// The `<report>` document that opens the case's report (`POST /submit`).
pub fn incident_xml(
    config: &ReportConfig,
    input: &ReportInput,
    built_at: Timestamp,
) -> Result<String, ReportError> {
    config.check()?;
    let incident_at = not_future("incidentDateTime", input.incident_at(), built_at)?;
    let person = person_facts(config, input);
    let ip_at = match person.ip {
        Some((_, Some(at))) => Some(not_future("ipCaptureEvent/dateTime", at, built_at)?),
        _ => None,
    };

    let mut x = Xml::new("report")?;
    x.open("incidentSummary")?;
    x.leaf("incidentType", INCIDENT_TYPE)?;
    x.leaf_opt("platform", config.service_name.as_deref())?;
    x.leaf("incidentDateTime", &rfc3339(incident_at))?;
    let description = if input.uploaded_at.is_some() {
        "The time the file was uploaded to the reporting company's storage service, as the \
         service's upload event recorded it."
    } else {
        "The upload time was not recorded: this is when the reporting company matched the file \
         against a hash list, the latest the upload can have been."
    };
    x.leaf("incidentDateTimeDescription", description)?;
    x.close("incidentSummary")?;

    x.open("reporter")?;
    let r = &config.reporter;
    x.open("reportingPerson")?;
    x.leaf_opt("firstName", r.first_name.as_deref())?;
    x.leaf_opt("lastName", r.last_name.as_deref())?;
    x.leaf_opt("phone", r.phone.as_deref())?;
    x.leaf("email", &r.email)?;
    x.close("reportingPerson")?;
    if let Some(c) = &config.contact {
        x.open("contactPerson")?;
        x.leaf_opt("firstName", c.first_name.as_deref())?;
        x.leaf_opt("lastName", c.last_name.as_deref())?;
        x.leaf_opt("phone", c.phone.as_deref())?;
        x.leaf_opt("email", c.email.as_deref())?;
        x.close("contactPerson")?;
    }
    x.leaf_opt("companyTemplate", config.company_template.as_deref())?;
    x.leaf_opt("termsOfService", config.terms_of_service.as_deref())?;
    x.leaf_opt("legalURL", config.legal_url.as_deref())?;
    x.close("reporter")?;

    // A reported user is described only by what identifies them: an identifier or an
    // address. The service's name alone would describe nobody.
    if person.esp_identifier.is_some() || person.ip.is_some() {
        x.open("personOrUserReported")?;
        x.leaf_opt("espIdentifier", person.esp_identifier.as_deref())?;
        x.leaf_opt("espService", config.service_name.as_deref())?;
        if let Some((address, _)) = person.ip {
            x.ip_capture(address, ip_at)?;
        }
        x.close("personOrUserReported")?;
    }
    if !person.notes.is_empty() {
        x.leaf("additionalInfo", &person.notes.join("\n"))?;
    }
    x.finish("report")
}

/// The `<fileDetails>` of the case's file (`POST /fileinfo`), once NCMEC has given the
/// report id (from `submit`) and the file id (from `upload`).
pub fn file_details_xml(
    config: &ReportConfig,
    input: &ReportInput,
    report_id: u64,
    file_id: &str,
    built_at: Timestamp,
) -> Result<String, ReportError> {
    config.check()?;
    if report_id == 0 || i64::try_from(report_id).is_err() {
        return Err(ReportError::Invalid {
            field: "reportId",
            reason: format!("{report_id} is not a CyberTipline report id (1 to 2^63-1)"),
        });
    }
    let file_id_ok = !file_id.is_empty()
        && file_id
            .chars()
            .all(|c| is_xml_char(c) && !c.is_whitespace() && !c.is_control());
    if !file_id_ok {
        return Err(ReportError::Invalid {
            field: "fileId",
            reason: format!("{file_id:?} is blank or holds white space or control characters"),
        });
    }
    let uploaded_at = input
        .uploaded_at
        .map(|t| not_future("uploadedToEspTimestamp", t, built_at))
        .transpose()?;
    let person = person_facts(config, input);
    let ip_at = match person.ip {
        Some((_, Some(at))) => Some(not_future("ipCaptureEvent/dateTime", at, built_at)?),
        _ => None,
    };
    let file = file_facts(config, input);

    let mut x = Xml::new("fileDetails")?;
    x.leaf("reportId", &report_id.to_string())?;
    x.leaf("fileId", file_id)?;
    x.leaf_opt("originalFileName", file.original_file_name.as_deref())?;
    if let Some(t) = uploaded_at {
        x.leaf("uploadedToEspTimestamp", &rfc3339(t))?;
    }
    x.leaf_opt("locationOfFile", file.location_of_file.as_deref())?;
    x.leaf("fileViewedByEsp", bool_text(input.viewing.file_viewed))?;
    x.leaf("exifViewedByEsp", bool_text(Viewing::EXIF_VIEWED))?;
    // publiclyAvailable is left out: whether a bucket's object was public is not known here.
    x.leaf("fileRelevance", "Reported")?;
    x.leaf("industryClassification", input.classification.as_str())?;
    for h in &input.hashes {
        x.leaf_attr("originalFileHash", ("hashType", &h.hash_type), &h.hex)?;
    }
    if let Some((address, _)) = person.ip {
        x.ip_capture(address, ip_at)?;
    }
    for note in &file.notes {
        x.leaf("additionalInfo", note)?;
    }
    x.finish("fileDetails")
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// One digest in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestDigest {
    pub algorithm: String,
    pub hex: String,
}

/// What is kept with a report: which case, where its evidence is, what was said and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    pub case_id: String,
    /// The object that was reported, where it was uploaded.
    pub object: ObjectRef,
    /// The quarantined copy (none for a case held in place, whose evidence is the object).
    pub evidence: Option<QuarantineLocation>,
    /// The digests of the evidence.
    pub digests: Vec<ManifestDigest>,
    pub classification: Classification,
    /// Hex SHA-256 of the `<report>` document.
    pub report_sha256: String,
    pub built_at: Timestamp,
    /// What `fileViewedByEsp` says, and the audit entries (`seq`) of the reveals it rests on.
    pub file_viewed_by_esp: bool,
    pub viewed_in_audit_entries: Vec<u64>,
    pub exif_viewed_by_esp: bool,
    /// What the documents had to shorten, replace or leave out, as they say it.
    pub notes: Vec<String>,
}

impl Manifest {
    /// The manifest of `report_xml`, the document [`incident_xml`] wrote for `input`.
    pub fn new(
        config: &ReportConfig,
        input: &ReportInput,
        report_xml: &str,
        built_at: Timestamp,
    ) -> Result<Manifest, ReportError> {
        config.check()?;
        let sha = digest_bytes(
            report_xml.as_bytes(),
            AlgorithmSet::EMPTY.with(Algorithm::Sha256),
        )
        .get(Algorithm::Sha256)
        .map(|d| d.to_hex())
        .ok_or_else(|| ReportError::Xml("SHA-256 of the report was not computed".into()))?;
        let mut notes = person_facts(config, input).notes;
        notes.extend(file_facts(config, input).notes);
        let mut seen = BTreeSet::new();
        notes.retain(|n| seen.insert(n.clone()));
        Ok(Manifest {
            format: MANIFEST_FORMAT,
            case_id: input.case_id.clone(),
            object: input.object.clone(),
            evidence: input.quarantine.clone(),
            digests: input
                .hashes
                .iter()
                .map(|h| ManifestDigest {
                    algorithm: h.algorithm.clone(),
                    hex: h.hex.clone(),
                })
                .collect(),
            classification: input.classification,
            report_sha256: sha,
            built_at,
            file_viewed_by_esp: input.viewing.file_viewed,
            viewed_in_audit_entries: input.viewing.reveals.clone(),
            exif_viewed_by_esp: Viewing::EXIF_VIEWED,
            notes,
        })
    }
}

/// An XML document being written: the declaration, a root with NCMEC's schema location,
/// elements indented by two spaces. Every text goes through [`text`].
struct Xml {
    w: Writer<Vec<u8>>,
}

fn xml_error(e: impl std::fmt::Display) -> ReportError {
    ReportError::Xml(e.to_string())
}

/// A text node: refused if it holds a character XML 1.0 cannot carry (callers replace or
/// refuse those first), escaped by the writer's escaping, and `\r` as a character
/// reference, since a parser turns a literal one into `\n`.
fn text(name: &str, s: &str) -> Result<BytesText<'static>, ReportError> {
    if let Some(c) = s.chars().find(|c| !is_xml_char(*c)) {
        return Err(ReportError::Invalid {
            field: "text",
            reason: format!("<{name}> would hold {c:?}, which XML 1.0 cannot carry"),
        });
    }
    let escaped = quick_xml::escape::escape(s);
    let escaped = if escaped.contains('\r') {
        escaped.replace('\r', "&#13;")
    } else {
        escaped.into_owned()
    };
    Ok(BytesText::from_escaped(escaped))
}

impl Xml {
    fn new(root: &str) -> Result<Xml, ReportError> {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
            .map_err(xml_error)?;
        let mut start = BytesStart::new(root);
        start.push_attribute(("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"));
        start.push_attribute(("xsi:noNamespaceSchemaLocation", SCHEMA_LOCATION));
        w.write_event(Event::Start(start)).map_err(xml_error)?;
        Ok(Xml { w })
    }

    fn open(&mut self, name: &str) -> Result<(), ReportError> {
        self.w
            .write_event(Event::Start(BytesStart::new(name)))
            .map_err(xml_error)
    }

    fn close(&mut self, name: &str) -> Result<(), ReportError> {
        self.w
            .write_event(Event::End(BytesEnd::new(name)))
            .map_err(xml_error)
    }

    fn leaf(&mut self, name: &str, value: &str) -> Result<(), ReportError> {
        let t = text(name, value)?;
        self.w
            .create_element(name)
            .write_text_content(t)
            .map(|_| ())
            .map_err(xml_error)
    }

    fn leaf_opt(&mut self, name: &str, value: Option<&str>) -> Result<(), ReportError> {
        match value {
            Some(v) => self.leaf(name, v),
            None => Ok(()),
        }
    }

    fn leaf_attr(
        &mut self,
        name: &str,
        (attr, attr_value): (&str, &str),
        value: &str,
    ) -> Result<(), ReportError> {
        if attr_value.chars().any(|c| !is_xml_char(c)) {
            return Err(ReportError::Invalid {
                field: "attribute",
                reason: format!("{attr}={attr_value:?} holds a character XML 1.0 cannot carry"),
            });
        }
        let t = text(name, value)?;
        self.w
            .create_element(name)
            .with_attribute((attr, attr_value))
            .write_text_content(t)
            .map(|_| ())
            .map_err(xml_error)
    }

    fn ip_capture(&mut self, address: IpAddr, at: Option<Timestamp>) -> Result<(), ReportError> {
        self.open("ipCaptureEvent")?;
        self.leaf("ipAddress", &address.to_string())?;
        self.leaf("eventName", "Upload")?;
        if let Some(at) = at {
            self.leaf("dateTime", &rfc3339(at))?;
        }
        self.close("ipCaptureEvent")
    }

    fn finish(mut self, root: &str) -> Result<String, ReportError> {
        self.close(root)?;
        let mut bytes = self.w.into_inner();
        bytes.push(b'\n');
        String::from_utf8(bytes).map_err(xml_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{link, AuditEntry};
    use crate::review::Review;
    use crate::scan::Match;
    use quick_xml::Reader;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    const CREATED: i64 = 1_795_255_445;

    fn confirmed(key: &str) -> CaseRecord {
        let content = b"quarantined bytes";
        let digests = digest_bytes(content, AlgorithmSet::ALL);
        CaseRecord {
            case_id: "case-1".into(),
            object: ObjectRef {
                bucket: "uploads".into(),
                key: key.into(),
                version_id: Some("v1".into()),
                etag: Some("e".into()),
            },
            size: content.len() as u64,
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
            created_at: at(CREATED),
            uploaded_at: Some(at(CREATED - 60)),
            reviews: vec![Review {
                reviewer: "alice".into(),
                decision: crate::review::Decision::Confirm,
                classification: Some(Classification::B1),
                reason: "matches".into(),
                at: at(CREATED + 100),
            }],
            classification: Some(Classification::B1),
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
                first_name: Some("Dana".into()),
                last_name: Some("Reyes".into()),
                email: "trust@example.com".into(),
                phone: None,
            },
            contact: None,
            service_name: Some("Example Storage".into()),
            company_template: None,
            terms_of_service: None,
            legal_url: Some("https://example.com/terms".into()),
            include_bucket_owner: true,
            include_source_ip: true,
            file_location: FileLocation::S3,
        }
    }

    /// A chain of `(case, action)` entries, linked as the stores link them.
    fn chain(actions: &[(&str, AuditAction)]) -> Vec<ChainedEntry> {
        let mut out: Vec<ChainedEntry> = Vec::new();
        for (i, (case, action)) in actions.iter().enumerate() {
            let e = AuditEntry::new(*case, at(CREATED + i as i64), "alice", *action, "");
            let linked = link(out.last(), e);
            out.push(linked);
        }
        out
    }

    const BUILT: i64 = CREATED + 3_600;

    /// Every leaf element's text, by name, read back with the crate's reader (text and
    /// character or entity references joined, line ends normalised as XML 1.0 says).
    fn leaves(xml: &str) -> Vec<(String, String)> {
        let mut reader = Reader::from_str(xml);
        let mut out = Vec::new();
        let mut current: Option<(String, String)> = None;
        loop {
            match reader.read_event().unwrap() {
                Event::Start(s) => {
                    current = Some((
                        String::from_utf8(s.name().as_ref().to_vec()).unwrap(),
                        String::new(),
                    ));
                }
                Event::Text(t) => {
                    if let Some((_, text)) = current.as_mut() {
                        text.push_str(&t.xml10_content().unwrap());
                    }
                }
                Event::GeneralRef(r) => {
                    let (_, text) = current.as_mut().expect("a reference inside an element");
                    match r.resolve_char_ref().unwrap() {
                        Some(c) => text.push(c),
                        None => text.push_str(match r.decode().unwrap().as_ref() {
                            "lt" => "<",
                            "gt" => ">",
                            "amp" => "&",
                            "apos" => "'",
                            "quot" => "\"",
                            other => panic!("unknown entity {other}"),
                        }),
                    }
                }
                Event::End(_) => {
                    if let Some(leaf) = current.take() {
                        out.push(leaf);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        out
    }

    fn leaf<'a>(leaves: &'a [(String, String)], name: &str) -> Option<&'a str> {
        leaves
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.as_str())
    }

    fn percent_decode(s: &str) -> Vec<u8> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        out
    }

    fn details(case: &CaseRecord, history: &[ChainedEntry]) -> Vec<(String, String)> {
        let input = ReportInput::new(case, history, UploadFacts::default()).unwrap();
        leaves(&file_details_xml(&config(), &input, 4_564_654, "f1", at(BUILT)).unwrap())
    }

    #[test]
    fn viewed_only_when_a_reviewer_revealed_that_case() {
        let case = confirmed("a/b.jpg");
        // Opened, previewed (blurred), decided: nobody looked at the file itself.
        let looked_around = chain(&[
            ("case-1", AuditAction::Quarantined),
            ("case-1", AuditAction::Viewed),
            ("case-1", AuditAction::PreviewServed),
            ("case-1", AuditAction::PreviewServed),
            ("case-1", AuditAction::Decided),
        ]);
        let v = viewing("case-1", &looked_around).unwrap();
        assert_eq!(
            v,
            Viewing {
                file_viewed: false,
                reveals: vec![]
            }
        );
        assert_eq!(
            leaf(&details(&case, &looked_around), "fileViewedByEsp"),
            Some("false")
        );

        // Another case's reveal says nothing about this file.
        let other = chain(&[
            ("case-1", AuditAction::Quarantined),
            ("case-2", AuditAction::Revealed),
            ("case-1", AuditAction::PreviewServed),
        ]);
        assert!(!viewing("case-1", &other).unwrap().file_viewed);
        assert_eq!(
            leaf(&details(&case, &other), "fileViewedByEsp"),
            Some("false")
        );

        // A reveal of this case does, and the manifest names the entry.
        let revealed = chain(&[
            ("case-1", AuditAction::Quarantined),
            ("case-2", AuditAction::Revealed),
            ("case-1", AuditAction::PreviewServed),
            ("case-1", AuditAction::Revealed),
            ("case-1", AuditAction::Decided),
        ]);
        let v = viewing("case-1", &revealed).unwrap();
        assert_eq!(
            v,
            Viewing {
                file_viewed: true,
                reveals: vec![4]
            }
        );
        let d = details(&case, &revealed);
        assert_eq!(leaf(&d, "fileViewedByEsp"), Some("true"));
        assert!(d
            .iter()
            .any(|(n, t)| n == "additionalInfo" && t == VIEWED_NOTE));
        let input = ReportInput::new(&case, &revealed, UploadFacts::default()).unwrap();
        let xml = incident_xml(&config(), &input, at(BUILT)).unwrap();
        let m = Manifest::new(&config(), &input, &xml, at(BUILT)).unwrap();
        assert!(m.file_viewed_by_esp);
        assert_eq!(m.viewed_in_audit_entries, vec![4]);
    }

    #[test]
    fn exif_is_never_said_to_be_viewed() {
        let case = confirmed("a/b.jpg");
        for history in [
            chain(&[("case-1", AuditAction::Quarantined)]),
            chain(&[
                ("case-1", AuditAction::Revealed),
                ("case-1", AuditAction::Revealed),
            ]),
        ] {
            assert_eq!(
                leaf(&details(&case, &history), "exifViewedByEsp"),
                Some("false")
            );
        }
    }

    #[test]
    fn an_altered_entry_of_the_case_is_refused_and_others_are_not_read() {
        let mut history = chain(&[
            ("case-1", AuditAction::Quarantined),
            ("case-2", AuditAction::PreviewServed),
            ("case-1", AuditAction::PreviewServed),
        ]);
        // Someone rewrites this case's preview into a reveal: the hash no longer fits.
        history[2].entry.action = AuditAction::Revealed;
        assert_eq!(
            viewing("case-1", &history),
            Err(ReportError::AlteredAuditEntry {
                case_id: "case-1".into(),
                seq: 3
            })
        );
        // Another case's damaged entry is that case's business.
        let mut history = chain(&[
            ("case-1", AuditAction::Quarantined),
            ("case-2", AuditAction::Viewed),
        ]);
        history[1].entry.detail = "edited".into();
        assert!(!viewing("case-1", &history).unwrap().file_viewed);
    }

    #[test]
    fn only_a_confirmed_case_with_a_classification_is_reported() {
        for status in CaseStatus::ALL {
            let mut case = confirmed("a/b.jpg");
            case.status = status;
            let result = ReportInput::new(&case, &[], UploadFacts::default());
            if status == CaseStatus::Confirmed {
                assert!(result.is_ok());
            } else {
                let err = result.unwrap_err();
                assert_eq!(
                    err,
                    ReportError::NotConfirmed {
                        case_id: "case-1".into(),
                        status
                    }
                );
                assert!(err.to_string().contains(status.as_str()), "{err}");
            }
        }
        let mut case = confirmed("a/b.jpg");
        case.classification = None;
        let err = ReportInput::new(&case, &[], UploadFacts::default()).unwrap_err();
        assert_eq!(
            err,
            ReportError::NoClassification {
                case_id: "case-1".into()
            }
        );
        assert!(err.to_string().contains("classification"), "{err}");
    }

    #[test]
    fn every_digest_is_given_with_its_hash_type_and_the_classification_is_carried() {
        for classification in [
            Classification::A1,
            Classification::A2,
            Classification::B1,
            Classification::B2,
        ] {
            let mut case = confirmed("a/b.jpg");
            case.classification = Some(classification);
            case.digests.push(("sha512".into(), "AB".repeat(64)));
            let input = ReportInput::new(&case, &[], UploadFacts::default()).unwrap();
            let xml = file_details_xml(&config(), &input, 7, "f1", at(BUILT)).unwrap();
            let d = leaves(&xml);
            assert_eq!(
                leaf(&d, "industryClassification"),
                Some(classification.as_str())
            );
            let hashes: Vec<&str> = d
                .iter()
                .filter(|(n, _)| n == "originalFileHash")
                .map(|(_, t)| t.as_str())
                .collect();
            let want: Vec<String> = ["md5", "sha1", "sha256"]
                .iter()
                .map(|a| case.digests.iter().find(|(n, _)| n == a).unwrap().1.clone())
                .chain(["ab".repeat(64)])
                .collect();
            assert_eq!(hashes, want);
            for (t, v) in [
                ("MD5", &want[0]),
                ("SHA1", &want[1]),
                ("SHA256", &want[2]),
                ("SHA512", &want[3]),
            ] {
                assert!(
                    xml.contains(&format!(
                        "<originalFileHash hashType=\"{t}\">{v}</originalFileHash>"
                    )),
                    "{t} in {xml}"
                );
            }
            assert_eq!(leaf(&d, "fileRelevance"), Some("Reported"));
        }
    }

    #[test]
    fn malformed_digests_are_refused() {
        for (alg, value, why) in [
            ("md5", "xyz", "not hexadecimal"),
            ("md5", "abcd", "hex digits"),
            ("sha1", "", "not hexadecimal"),
            ("we ird", "abcd", "hashType"),
        ] {
            let mut case = confirmed("a/b.jpg");
            case.digests.push((alg.into(), value.into()));
            let err = ReportInput::new(&case, &[], UploadFacts::default()).unwrap_err();
            assert!(err.to_string().contains(why), "{alg}: {err}");
        }
        // The same digest twice is one; two different values for one algorithm are not.
        let mut case = confirmed("a/b.jpg");
        let md5 = case.digests[0].clone();
        case.digests.push((md5.0.clone(), md5.1.to_uppercase()));
        let input = ReportInput::new(&case, &[], UploadFacts::default()).unwrap();
        assert_eq!(input.hashes().len(), 3);
        case.digests.push((md5.0, "0".repeat(32)));
        let err = ReportInput::new(&case, &[], UploadFacts::default()).unwrap_err();
        assert!(err.to_string().contains("contradicts"), "{err}");
    }

    #[test]
    fn names_and_locations_round_trip_through_the_xml() {
        for name in [
            "plain.jpg",
            "<script>&amp;\"quoted\" 'single'.png",
            "]]>cdata-end]]>.gif",
            "tab\there\nnew line\r\ncarriage\rreturn.jpg",
            "émoji 🎈🦀 and 汉字 テスト 한국어.jpeg",
            "  spaces around  ",
            "\u{7F}\u{85}\u{200B}\u{FEFF}zero-width.jpg",
        ] {
            let key = format!("users/42/{name}");
            let case = confirmed(&key);
            let input = ReportInput::new(&case, &[], UploadFacts::default()).unwrap();
            let xml = file_details_xml(&config(), &input, 1, "f1", at(BUILT)).unwrap();
            let d = leaves(&xml);
            assert_eq!(leaf(&d, "originalFileName"), Some(name), "{xml}");
            let location = leaf(&d, "locationOfFile").unwrap();
            let rest = location.strip_prefix("s3://uploads/").unwrap();
            let (key_part, version) = rest.split_once("?versionId=").unwrap();
            assert_eq!(percent_decode(key_part), key.as_bytes());
            assert_eq!(version, "v1");
            assert!(!d.iter().any(|(n, _)| n == "additionalInfo"), "{xml}");
        }
    }

    #[test]
    fn characters_xml_cannot_carry_are_replaced_and_the_exact_key_stays_in_the_location() {
        let name = "nul\u{0}bell\u{7}esc\u{1B}\u{FFFE}.jpg";
        let key = format!("in/{name}");
        let case = confirmed(&key);
        let input = ReportInput::new(&case, &[], UploadFacts::default()).unwrap();
        let xml = file_details_xml(&config(), &input, 1, "f1", at(BUILT)).unwrap();
        let d = leaves(&xml);
        assert_eq!(
            leaf(&d, "originalFileName"),
            Some("nul\u{FFFD}bell\u{FFFD}esc\u{FFFD}\u{FFFD}.jpg")
        );
        let location = leaf(&d, "locationOfFile").unwrap();
        assert!(
            location.contains("nul%00bell%07esc%1B%EF%BF%BE.jpg"),
            "{location}"
        );
        let key_part = location
            .strip_prefix("s3://uploads/")
            .and_then(|r| r.split_once('?'))
            .unwrap()
            .0;
        assert_eq!(percent_decode(key_part), key.as_bytes());
        let note = leaf(&d, "additionalInfo").unwrap();
        assert!(
            note.contains("4 character(s)") && note.contains("locationOfFile"),
            "{note}"
        );
        // The writer itself never lets such a character through.
        assert!(text("x", "a\u{1}b").is_err());
    }

    #[test]
    fn a_name_over_the_limit_is_shortened_in_the_middle_and_given_whole_in_a_note() {
        let name = format!("{}{}.jpg", "a".repeat(1500), "🦀".repeat(600));
        let case = confirmed(&format!("dir/{name}"));
        let input = ReportInput::new(&case, &[], UploadFacts::default()).unwrap();
        let xml = file_details_xml(&config(), &input, 1, "f1", at(BUILT)).unwrap();
        let d = leaves(&xml);
        let short = leaf(&d, "originalFileName").unwrap();
        assert!(
            length(short) <= limit::ORIGINAL_FILE_NAME,
            "{}",
            length(short)
        );
        assert!(short.starts_with("aaaa") && short.ends_with("🦀.jpg") && short.contains('…'));
        let notes: Vec<&str> = d
            .iter()
            .filter(|(n, _)| n == "additionalInfo")
            .map(|(_, t)| t.as_str())
            .collect();
        assert!(
            notes
                .iter()
                .any(|n| n.contains("shortened") && n.ends_with(&name)),
            "{notes:?}"
        );
        // The location is exact, or, when it would be too long, left out and given whole.
        let location = leaf(&d, "locationOfFile");
        assert!(location.is_none());
        assert!(notes
            .iter()
            .any(|n| n.contains("locationOfFile was left out")));
        let m = Manifest::new(&config(), &input, "x", at(BUILT)).unwrap();
        assert_eq!(m.notes.len(), 2, "{:?}", m.notes);
        // A short name with a long key keeps its location when it fits.
        assert_eq!(shorten_middle("abc", 3), "abc");
        assert_eq!(shorten_middle("abcdefgh.jpg", 8), "abcde…pg");
    }

    #[test]
    fn the_report_says_what_is_configured_about_the_uploader_and_no_more() {
        let case = confirmed("a/b.jpg");
        let facts = UploadFacts {
            bucket_owner: Some("123456789012".into()),
            source_ip: Some(IpCapture {
                address: "2001:db8::1".parse().unwrap(),
                at: None,
            }),
        };
        let input = ReportInput::new(&case, &[], facts.clone()).unwrap();
        let r = leaves(&incident_xml(&config(), &input, at(BUILT)).unwrap());
        assert_eq!(leaf(&r, "incidentType"), Some(INCIDENT_TYPE));
        assert_eq!(leaf(&r, "incidentDateTime"), Some("2026-11-21T10:03:05Z"));
        assert_eq!(leaf(&r, "email"), Some("trust@example.com"));
        assert_eq!(leaf(&r, "espIdentifier"), Some("123456789012"));
        assert_eq!(leaf(&r, "espService"), Some("Example Storage"));
        assert_eq!(leaf(&r, "ipAddress"), Some("2001:db8::1"));
        assert_eq!(leaf(&r, "eventName"), Some("Upload"));
        assert_eq!(leaf(&r, "dateTime"), Some("2026-11-21T10:03:05Z"));

        let mut quiet = config();
        quiet.include_bucket_owner = false;
        quiet.include_source_ip = false;
        let xml = incident_xml(&quiet, &input, at(BUILT)).unwrap();
        assert!(!xml.contains("personOrUserReported"), "{xml}");
        assert!(
            !xml.contains("123456789012") && !xml.contains("2001:db8"),
            "{xml}"
        );
        let d = file_details_xml(&quiet, &input, 1, "f1", at(BUILT)).unwrap();
        assert!(!d.contains("ipCaptureEvent"), "{d}");

        // An identifier too long for espIdentifier is never cut: it moves to a note.
        let long = UploadFacts {
            bucket_owner: Some("x".repeat(300)),
            source_ip: None,
        };
        let input = ReportInput::new(&case, &[], long).unwrap();
        let r = leaves(&incident_xml(&config(), &input, at(BUILT)).unwrap());
        assert_eq!(leaf(&r, "espIdentifier"), None);
        assert!(leaf(&r, "additionalInfo")
            .unwrap()
            .ends_with(&"x".repeat(300)));
    }

    #[test]
    fn without_an_upload_time_the_match_time_is_the_incident_and_says_so() {
        let mut case = confirmed("a/b.jpg");
        case.uploaded_at = None;
        let input = ReportInput::new(&case, &[], UploadFacts::default()).unwrap();
        let r = leaves(&incident_xml(&config(), &input, at(BUILT)).unwrap());
        assert_eq!(leaf(&r, "incidentDateTime"), Some("2026-11-21T10:04:05Z"));
        assert!(leaf(&r, "incidentDateTimeDescription")
            .unwrap()
            .contains("not recorded"));
        let d = file_details_xml(&config(), &input, 1, "f1", at(BUILT)).unwrap();
        assert!(!d.contains("uploadedToEspTimestamp"), "{d}");
    }

    #[test]
    fn instants_after_the_build_are_refused() {
        let case = confirmed("a/b.jpg");
        let input = ReportInput::new(&case, &[], UploadFacts::default()).unwrap();
        let early = at(CREATED - 61);
        let err = incident_xml(&config(), &input, early).unwrap_err();
        assert!(
            matches!(
                err,
                ReportError::NotInThePast {
                    field: "incidentDateTime",
                    ..
                }
            ),
            "{err}"
        );
        let err = file_details_xml(&config(), &input, 1, "f", early).unwrap_err();
        assert!(matches!(
            err,
            ReportError::NotInThePast {
                field: "uploadedToEspTimestamp",
                ..
            }
        ));
        assert!(incident_xml(&config(), &input, at(CREATED - 60)).is_ok());
    }

    #[test]
    fn configuration_and_ids_are_checked() {
        let input = ReportInput::new(&confirmed("a/b.jpg"), &[], UploadFacts::default()).unwrap();
        type Change = Box<dyn Fn(&mut ReportConfig)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|c| c.reporter.email = "nobody".into()),
                "reporter.email",
            ),
            (
                Box::new(|c| c.reporter.email = "a b@example.com".into()),
                "reporter.email",
            ),
            (
                Box::new(|c| c.reporter.email = format!("{}@example.com", "l".repeat(65))),
                "local part",
            ),
            (
                Box::new(|c| c.reporter.first_name = Some("n".repeat(101))),
                "reporter.first_name",
            ),
            (
                Box::new(|c| c.reporter.last_name = Some("  ".into())),
                "blank",
            ),
            (
                Box::new(|c| c.service_name = Some("s".repeat(101))),
                "service_name",
            ),
            (
                Box::new(|c| c.company_template = Some("bell\u{7}".into())),
                "XML 1.0",
            ),
            (
                Box::new(|c| c.legal_url = Some("example.com/terms".into())),
                "legal_url",
            ),
            (
                Box::new(|c| {
                    c.file_location = FileLocation::PathStyle {
                        endpoint: "s3.amazonaws.com".into(),
                    }
                }),
                "endpoint",
            ),
        ];
        for (change, what) in cases {
            let mut c = config();
            change(&mut c);
            let err = incident_xml(&c, &input, at(BUILT)).unwrap_err();
            assert!(matches!(err, ReportError::Config { .. }), "{err}");
            assert!(err.to_string().contains(what), "{what}: {err}");
        }
        // Two-unit characters count twice: 50 crabs are 100 units, 51 are too many.
        let mut c = config();
        c.reporter.first_name = Some("🦀".repeat(50));
        assert!(c.check().is_ok());
        c.reporter.first_name = Some("🦀".repeat(51));
        assert!(c.check().is_err());

        for (report_id, file_id) in [
            (0, "f"),
            (u64::MAX, "f"),
            (1, ""),
            (1, "a b"),
            (1, "a\u{0}"),
        ] {
            assert!(
                file_details_xml(&config(), &input, report_id, file_id, at(BUILT)).is_err(),
                "{report_id} {file_id:?}"
            );
        }
    }

    #[test]
    fn path_style_locations_and_versionless_objects() {
        let mut case = confirmed("dir/a b+c.jpg");
        case.object.version_id = None;
        let input = ReportInput::new(&case, &[], UploadFacts::default()).unwrap();
        let mut c = config();
        c.file_location = FileLocation::PathStyle {
            endpoint: "https://s3.eu-west-1.amazonaws.com/".into(),
        };
        let d = leaves(&file_details_xml(&c, &input, 1, "f", at(BUILT)).unwrap());
        assert_eq!(
            leaf(&d, "locationOfFile"),
            Some("https://s3.eu-west-1.amazonaws.com/uploads/dir/a%20b%2Bc.jpg")
        );
        // A key ending in "/" has no last segment: no name, the location still names it.
        let case = confirmed("dir/");
        let input = ReportInput::new(&case, &[], UploadFacts::default()).unwrap();
        let d = leaves(&file_details_xml(&config(), &input, 1, "f", at(BUILT)).unwrap());
        assert_eq!(leaf(&d, "originalFileName"), None);
        assert_eq!(
            leaf(&d, "locationOfFile"),
            Some("s3://uploads/dir/?versionId=v1")
        );
    }

    #[test]
    fn the_manifest_names_the_evidence_the_digests_and_the_report() {
        let case = confirmed("a/b.jpg");
        let history = chain(&[
            ("case-1", AuditAction::Quarantined),
            ("case-1", AuditAction::Revealed),
        ]);
        let input = ReportInput::new(&case, &history, UploadFacts::default()).unwrap();
        let xml = incident_xml(&config(), &input, at(BUILT)).unwrap();
        let m = Manifest::new(&config(), &input, &xml, at(BUILT)).unwrap();
        assert_eq!(m.format, MANIFEST_FORMAT);
        assert_eq!(m.case_id, "case-1");
        assert_eq!(m.evidence, case.quarantine);
        assert_eq!(m.object, case.object);
        assert_eq!(
            m.digests
                .iter()
                .map(|d| (d.algorithm.clone(), d.hex.clone()))
                .collect::<Vec<_>>(),
            case.digests
        );
        assert_eq!(m.classification, Classification::B1);
        let sha = digest_bytes(xml.as_bytes(), AlgorithmSet::EMPTY.with(Algorithm::Sha256));
        assert_eq!(
            m.report_sha256,
            sha.get(Algorithm::Sha256).unwrap().to_hex()
        );
        assert_eq!(m.built_at, at(BUILT));
        assert!(m.file_viewed_by_esp && !m.exif_viewed_by_esp);
        assert_eq!(m.viewed_in_audit_entries, vec![2]);
        let json = serde_json::to_string(&m).unwrap();
        assert!(
            json.contains("\"built_at\":\"2026-11-21T11:04:05Z\""),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), m);
    }

    #[test]
    fn the_configuration_reads_from_json_with_its_defaults() {
        let c: ReportConfig = serde_json::from_str(
            r#"{"reporter":{"email":"trust@example.com"},
                "file_location":{"style":"path_style","endpoint":"https://s3.amazonaws.com"}}"#,
        )
        .unwrap();
        assert!(!c.include_bucket_owner && !c.include_source_ip);
        assert_eq!(
            c.file_location,
            FileLocation::PathStyle {
                endpoint: "https://s3.amazonaws.com".into()
            }
        );
        assert!(c.check().is_ok());
        let d: ReportConfig =
            serde_json::from_str(r#"{"reporter":{"email":"trust@example.com"}}"#).unwrap();
        assert_eq!(d.file_location, FileLocation::S3);
    }

    #[test]
    fn the_embedded_schema_is_the_one_in_the_repository() {
        assert!(SCHEMA.contains("<xs:element name=\"fileDetails\">"));
        assert!(SCHEMA.contains("<xs:element name=\"report\">"));
    }
}
