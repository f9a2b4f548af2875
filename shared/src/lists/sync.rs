//! The rules of hash-list sync, without I/O: what a file in the lists bucket is (its list,
//! format and whether it adds or withdraws, from its key or metadata), the guards a file
//! must pass before anything of it is applied ([`check`], [`judge`]), and where a file goes
//! afterwards (`applied/`, or `rejected/` with its reason beside it).
//!
//! Layout of the lists bucket:
//!
//! ```text
//! incoming/<list>/<file>              a list that adds entries to <list>
//! incoming/<list>/add/<file>          the same, said explicitly
//! incoming/<list>/withdraw/<file>     a list whose entries are withdrawn from <list>
//! applied/<same path>                 a file once it is imported
//! rejected/<same path>                a refused file, with <same path>.reason.json
//! sources/<name>.json                 what a pulled source last fetched (its ETag)
//! ```
//!
//! Object metadata may say the same (`hashgate-list`, `hashgate-format` = plain | csv |
//! vics, `hashgate-op` = add | withdraw) and more: `hashgate-algorithm` says what a plain
//! list's lines are (md5 | sha1 | sha256 | pdq; a PDQ list must say so, since its 64 hex
//! digits would read as SHA-256), `hashgate-force: true` lets a withdrawal
//! remove more than the configured share of a list, and `hashgate-sha256` /
//! `hashgate-entries` declare what the complete file holds, so a truncated or half-written
//! file is refused even when it happens to end at a line boundary.

use std::collections::BTreeMap;
use std::io::Read;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::digest::Algorithm;
use crate::lists::{guard, ListError, ListFormat, ParseOptions};
use crate::store::Op;
use crate::time::Timestamp;

pub const INCOMING: &str = "incoming/";
pub const APPLIED: &str = "applied/";
pub const REJECTED: &str = "rejected/";
pub const SOURCES: &str = "sources/";
/// What is written beside a refused file.
pub const REASON_SUFFIX: &str = ".reason.json";

/// The limits a list file is held to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Largest file accepted, in bytes.
    pub max_bytes: u64,
    /// Most entries one file may hold.
    pub max_entries: u64,
    /// Largest share of a list one withdrawal may remove without being forced (0..=1).
    pub max_withdraw_share: f64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: 8 << 30,
            max_entries: 100_000_000,
            max_withdraw_share: 0.25,
        }
    }
}

/// One list file to import, as its key and metadata describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListFile {
    pub key: String,
    pub list: String,
    pub format: ListFormat,
    pub op: Op,
    /// A withdrawal larger than the configured share is applied anyway.
    pub force: bool,
    /// The SHA-256 (hex) the complete file has, when the sender declared it.
    pub declared_sha256: Option<String>,
    /// The entries the complete file holds, when the sender declared it.
    pub declared_entries: Option<u64>,
    /// What the list's digests are when the file cannot say (`--algorithm`,
    /// `hashgate-algorithm`): see [`ParseOptions::algorithm`].
    pub algorithm: Option<Algorithm>,
}

/// Why a file was refused. Nothing of a refused file is applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// Its key or metadata do not say what it is.
    Layout,
    /// Larger than the configured limit.
    TooLarge,
    /// Not a valid list of its format (a wrong format, a truncated record, a bad digest,
    /// the digest of the empty file...).
    Invalid,
    /// Parses to no entry at all.
    Empty,
    /// Differs from what its sender declared (SHA-256 or entry count): truncated or
    /// half-uploaded.
    Incomplete,
    /// More entries than the configured limit.
    TooManyEntries,
    /// A withdrawal that would remove more than the configured share of a list.
    MassWithdrawal,
}

impl RefusalKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            RefusalKind::Layout => "layout",
            RefusalKind::TooLarge => "too_large",
            RefusalKind::Invalid => "invalid",
            RefusalKind::Empty => "empty",
            RefusalKind::Incomplete => "incomplete",
            RefusalKind::TooManyEntries => "too_many_entries",
            RefusalKind::MassWithdrawal => "mass_withdrawal",
        }
    }
}

/// A refused file: what, where and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{key}: refused ({}): {reason}", kind.as_str())]
pub struct Refusal {
    pub key: String,
    pub kind: RefusalKind,
    pub reason: String,
}

impl Refusal {
    fn new(key: &str, kind: RefusalKind, reason: impl Into<String>) -> Refusal {
        Refusal {
            key: key.to_string(),
            kind,
            reason: reason.into(),
        }
    }

    /// The document written beside the refused file.
    pub fn document(&self, at: Timestamp) -> Vec<u8> {
        #[derive(Serialize)]
        struct Doc<'a> {
            key: &'a str,
            kind: &'a RefusalKind,
            reason: &'a str,
            refused_at: Timestamp,
            applied: bool,
        }
        let mut out = serde_json::to_vec_pretty(&Doc {
            key: &self.key,
            kind: &self.kind,
            reason: &self.reason,
            refused_at: at,
            applied: false,
        })
        .expect("a refusal serialises");
        out.push(b'\n');
        out
    }
}

fn meta<'a>(metadata: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    metadata
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn list_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl ListFile {
    /// What the object at `key` with `metadata` (user metadata, without `x-amz-meta-`) is.
    pub fn from_object(
        key: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<ListFile, Refusal> {
        let layout = |why: String| Refusal::new(key, RefusalKind::Layout, why);
        let rest = key
            .strip_prefix(INCOMING)
            .ok_or_else(|| layout(format!("list files are taken from {INCOMING}<list>/<file>")))?;
        let parts: Vec<&str> = rest.split('/').collect();
        let (path_list, path_op, file) = match parts.as_slice() {
            [list, file] => (*list, None, *file),
            [list, "add", file] => (*list, Some(Op::Add), *file),
            [list, "withdraw", file] => (*list, Some(Op::Remove), *file),
            _ => {
                return Err(layout(format!(
                    "expected {INCOMING}<list>/<file>, {INCOMING}<list>/add/<file> or \
                     {INCOMING}<list>/withdraw/<file>"
                )))
            }
        };
        if file.is_empty() {
            return Err(layout("no file name".into()));
        }
        let list = meta(metadata, "hashgate-list")
            .unwrap_or(path_list)
            .to_string();
        if !list_name_ok(&list) {
            return Err(layout(format!(
                "list name {list:?}: use 1-128 letters, digits, '-', '_' or '.'"
            )));
        }
        let op = match meta(metadata, "hashgate-op") {
            None => path_op.unwrap_or(Op::Add),
            Some(v) if v.eq_ignore_ascii_case("add") => Op::Add,
            Some(v) if v.eq_ignore_ascii_case("withdraw") => Op::Remove,
            Some(v) => {
                return Err(layout(format!(
                    "metadata hashgate-op {v:?}: expected add or withdraw"
                )))
            }
        };
        if path_op.is_some_and(|p| p != op) {
            return Err(layout(
                "the key and the metadata hashgate-op disagree on adding or withdrawing".into(),
            ));
        }
        let format = match meta(metadata, "hashgate-format") {
            Some(v) => parse_format(v).ok_or_else(|| {
                layout(format!(
                    "metadata hashgate-format {v:?}: expected plain, csv or vics"
                ))
            })?,
            None => ListFormat::from_path(std::path::Path::new(file)),
        };
        let force = match meta(metadata, "hashgate-force") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(layout(format!(
                    "metadata hashgate-force {v:?}: expected true or false"
                )))
            }
        };
        let declared_sha256 = match meta(metadata, "hashgate-sha256") {
            None => None,
            Some(v) if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(v.to_ascii_lowercase())
            }
            Some(v) => {
                return Err(layout(format!(
                    "metadata hashgate-sha256 {v:?}: expected 64 hex digits"
                )))
            }
        };
        let declared_entries = match meta(metadata, "hashgate-entries") {
            None => None,
            Some(v) => Some(v.parse::<u64>().map_err(|_| {
                layout(format!("metadata hashgate-entries {v:?}: expected a count"))
            })?),
        };
        let algorithm = match meta(metadata, "hashgate-algorithm") {
            None => None,
            Some(v) => Some(
                v.parse::<Algorithm>()
                    .map_err(|e| layout(format!("metadata hashgate-algorithm {v:?}: {e}")))?,
            ),
        };
        Ok(ListFile {
            key: key.to_string(),
            list,
            format,
            op,
            force,
            declared_sha256,
            declared_entries,
            algorithm,
        })
    }

    /// Refuse a file larger than the limit before reading it.
    pub fn check_size(&self, size: u64, limits: &Limits) -> Result<(), Refusal> {
        if size > limits.max_bytes {
            return Err(Refusal::new(
                &self.key,
                RefusalKind::TooLarge,
                format!(
                    "{size} bytes, more than the limit of {} (HASHGATE_LIST_MAX_BYTES)",
                    limits.max_bytes
                ),
            ));
        }
        Ok(())
    }

    /// How the parsers name this file and which list its entries default to.
    pub fn parse_options(&self) -> ParseOptions {
        ParseOptions {
            source_name: self.key.clone(),
            default_list: self.list.clone(),
            algorithm: self.algorithm,
        }
    }
}

/// A format's name as metadata and configuration spell it.
pub fn parse_format(name: &str) -> Option<ListFormat> {
    name.parse().ok()
}

/// What the validation pass learned of a whole file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checked {
    pub bytes: u64,
    pub sha256: String,
    pub entries: u64,
    /// Entries per list (a CSV row may name its own list).
    pub per_list: BTreeMap<String, u64>,
}

/// Read the whole file once through the import guard (every entry parsed and checked, the
/// digest of the empty file refused when adding), counting bytes, entries per list and the
/// file's SHA-256. Nothing is applied here.
pub fn check<R: Read>(reader: R, file: &ListFile, limits: &Limits) -> Result<Checked, Refusal> {
    let mut tee = Tee {
        inner: reader,
        sha: Sha256::new(),
        bytes: 0,
    };
    let mut per_list: BTreeMap<String, u64> = BTreeMap::new();
    let mut entries = 0u64;
    let result = guard::import(
        &mut tee,
        file.format,
        &file.parse_options(),
        file.op,
        &mut |entry| {
            entries += 1;
            if entries > limits.max_entries {
                return Err(format!(
                    "more than {} entries (HASHGATE_LIST_MAX_ENTRIES)",
                    limits.max_entries
                ));
            }
            // The store's own check of the list name, id and category, so a file the store
            // would refuse halfway is refused before anything is written.
            crate::store::check_entry(&entry.provenance).map_err(|e| e.to_string())?;
            *per_list.entry(entry.provenance.list).or_default() += 1;
            Ok(())
        },
    );
    if let Err(e) = result {
        let kind = if entries > limits.max_entries {
            RefusalKind::TooManyEntries
        } else if is_empty_error(&e) {
            RefusalKind::Empty
        } else {
            RefusalKind::Invalid
        };
        return Err(Refusal::new(&file.key, kind, e.to_string()));
    }
    // Read to the end: what follows the last record counts for the declared digest.
    let _ = std::io::copy(&mut tee, &mut std::io::sink());
    Ok(Checked {
        bytes: tee.bytes,
        sha256: crate::digest::to_hex(&tee.sha.finalize()),
        entries,
        per_list,
    })
}

/// The parsers' whole-file refusal of a list without entries ("empty list", "empty file").
fn is_empty_error(e: &ListError) -> bool {
    e.location == crate::lists::Location::File && e.reason.contains("empty")
}

/// The guards that need the whole file's facts, and the lists' current sizes (entries per
/// list in the store, for the lists this file names): a file with no entries, one that
/// differs from what its sender declared, one over the entry limit, a withdrawal of more
/// than the configured share of a list unless forced.
pub fn judge(
    file: &ListFile,
    checked: &Checked,
    list_sizes: &BTreeMap<String, u64>,
    limits: &Limits,
) -> Result<(), Refusal> {
    let refuse = |kind, reason: String| Err(Refusal::new(&file.key, kind, reason));
    if checked.entries == 0 {
        return refuse(RefusalKind::Empty, "the file holds no entries".into());
    }
    if let Some(want) = &file.declared_sha256 {
        if *want != checked.sha256 {
            return refuse(
                RefusalKind::Incomplete,
                format!(
                    "its SHA-256 is {}, but hashgate-sha256 declares {want}: truncated, \
                     half-uploaded or replaced",
                    checked.sha256
                ),
            );
        }
    }
    if let Some(want) = file.declared_entries {
        if want != checked.entries {
            return refuse(
                RefusalKind::Incomplete,
                format!(
                    "{} entries, but hashgate-entries declares {want}: truncated or \
                     half-uploaded",
                    checked.entries
                ),
            );
        }
    }
    if checked.entries > limits.max_entries {
        return refuse(
            RefusalKind::TooManyEntries,
            format!(
                "{} entries, more than the limit of {} (HASHGATE_LIST_MAX_ENTRIES)",
                checked.entries, limits.max_entries
            ),
        );
    }
    if file.op == Op::Remove && !file.force {
        for (list, &n) in &checked.per_list {
            let size = list_sizes.get(list).copied().unwrap_or(0);
            if size == 0 {
                continue; // nothing to lose
            }
            let share = n as f64 / size as f64;
            if share > limits.max_withdraw_share {
                return refuse(
                    RefusalKind::MassWithdrawal,
                    format!(
                        "withdraws {n} {} of list {list:?}, which holds {size}: {:.0}% of \
                         it, more than the {:.0}% allowed (HASHGATE_WITHDRAW_MAX_SHARE); to \
                         apply it anyway, upload it again with metadata hashgate-force: true \
                         (hashgate lists import --remove --force)",
                        if n == 1 { "entry" } else { "entries" },
                        share * 100.0,
                        limits.max_withdraw_share * 100.0
                    ),
                );
            }
        }
    }
    Ok(())
}

/// What becomes of one file: the protocol as a sans-IO state machine, like the quarantine's.
/// The caller asks [`FileSync::action`], does it, and reports; a crash between any two
/// steps is finished by starting again from what the bucket holds (a file still in
/// `incoming/` is checked and imported again, which changes nothing; a file already moved
/// is gone). The file is never deleted from `incoming/` before its copy in `applied/` or
/// `rejected/` exists, and nothing of a refused file is imported.
#[derive(Clone, Debug, PartialEq)]
pub struct FileSync {
    file: Option<ListFile>,
    key: String,
    limits: Limits,
    state: State,
}

#[derive(Clone, Debug, PartialEq)]
enum State {
    Start,
    Passed,
    Imported,
    Refused(Refusal),
    ReasonWritten(Refusal),
    CopiedRejected(Refusal),
    Announced(Refusal),
    CopiedApplied,
    Finished(Finished),
}

/// The next thing to do for a file.
#[derive(Clone, Debug, PartialEq)]
pub enum FileAction {
    /// Read the whole file through [`check`] and the lists' sizes; report with
    /// [`FileSync::checked`].
    Check(ListFile),
    /// Import it atomically; report with [`FileSync::step_done`].
    Import(ListFile),
    /// Write the refusal's document at `key` (`refused_at` is the caller's clock).
    WriteReason { key: String, refusal: Refusal },
    /// Copy the file from `incoming/` to `to`.
    Copy { to: String },
    /// Log and announce the refusal (at least once).
    Announce(Refusal),
    /// Delete the file from `incoming/` (its copy exists).
    DeleteIncoming,
    /// Nothing more.
    Done(Finished),
}

/// How a file ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finished {
    Applied { applied: String },
    Refused { rejected: String, refusal: Refusal },
}

impl FileSync {
    /// The protocol for the object at `key` with `metadata` and `size`: a key or metadata
    /// that does not say what it is, or a size over the limit, is refused from the start.
    pub fn new(
        key: &str,
        metadata: &BTreeMap<String, String>,
        size: u64,
        limits: Limits,
    ) -> FileSync {
        let parsed = ListFile::from_object(key, metadata)
            .and_then(|f| f.check_size(size, &limits).map(|()| f));
        let (file, state) = match parsed {
            Ok(f) => (Some(f), State::Start),
            Err(refusal) => (None, State::Refused(refusal)),
        };
        FileSync {
            file,
            key: key.to_string(),
            limits,
            state,
        }
    }

    pub fn action(&self) -> FileAction {
        let file = || self.file.clone().expect("a file that passed its layout");
        match &self.state {
            State::Start => FileAction::Check(file()),
            State::Passed => FileAction::Import(file()),
            State::Imported => FileAction::Copy {
                to: applied_key(&self.key),
            },
            State::CopiedApplied => FileAction::DeleteIncoming,
            State::Refused(r) => FileAction::WriteReason {
                key: reason_key(&rejected_key(&self.key)),
                refusal: r.clone(),
            },
            State::ReasonWritten(_) => FileAction::Copy {
                to: rejected_key(&self.key),
            },
            State::CopiedRejected(r) => FileAction::Announce(r.clone()),
            State::Announced(_) => FileAction::DeleteIncoming,
            State::Finished(f) => FileAction::Done(f.clone()),
        }
    }

    /// The outcome of [`FileAction::Check`]: the whole file's facts (or its refusal) and the
    /// sizes of the lists it names.
    pub fn checked(
        &mut self,
        result: Result<Checked, Refusal>,
        list_sizes: &BTreeMap<String, u64>,
    ) {
        assert_eq!(self.state, State::Start, "checked out of turn");
        let file = self.file.as_ref().expect("checked a file");
        self.state = match result.and_then(|c| judge(file, &c, list_sizes, &self.limits)) {
            Ok(()) => State::Passed,
            Err(r) => State::Refused(r),
        };
    }

    /// The step [`FileSync::action`] asked for is done (any but `Check` and `Done`).
    pub fn step_done(&mut self) {
        self.state = match std::mem::replace(&mut self.state, State::Start) {
            State::Passed => State::Imported,
            State::Imported => State::CopiedApplied,
            State::CopiedApplied => State::Finished(Finished::Applied {
                applied: applied_key(&self.key),
            }),
            State::Refused(r) => State::ReasonWritten(r),
            State::ReasonWritten(r) => State::CopiedRejected(r),
            State::CopiedRejected(r) => State::Announced(r),
            State::Announced(r) => State::Finished(Finished::Refused {
                rejected: rejected_key(&self.key),
                refusal: r,
            }),
            other => panic!("step_done in {other:?}"),
        };
    }
}

/// Where an imported file is moved.
pub fn applied_key(key: &str) -> String {
    format!("{APPLIED}{}", key.strip_prefix(INCOMING).unwrap_or(key))
}

/// Where a refused file is moved.
pub fn rejected_key(key: &str) -> String {
    format!("{REJECTED}{}", key.strip_prefix(INCOMING).unwrap_or(key))
}

/// The reason written beside a refused file.
pub fn reason_key(rejected: &str) -> String {
    format!("{rejected}{REASON_SUFFIX}")
}

struct Tee<R> {
    inner: R,
    sha: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(key: &str) -> ListFile {
        ListFile::from_object(key, &md(&[])).unwrap()
    }

    const MD5_A: &str = "0123456789abcdef0123456789abcdef";
    const MD5_B: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn keys_and_metadata_say_what_a_file_is() {
        let f = file("incoming/ncmec/2026-12-01.csv");
        assert_eq!(
            (f.list.as_str(), f.format, f.op),
            ("ncmec", ListFormat::Csv, Op::Add)
        );
        let f = file("incoming/ncmec/withdraw/w.txt");
        assert_eq!((f.format, f.op), (ListFormat::Plain, Op::Remove));
        let f = ListFile::from_object(
            "incoming/x/feed.bin",
            &md(&[
                ("Hashgate-List", "vic"),
                ("hashgate-format", "vics"),
                ("hashgate-op", "withdraw"),
                ("hashgate-force", "true"),
                ("hashgate-entries", "12"),
            ]),
        )
        .unwrap();
        assert_eq!(f.list, "vic");
        assert_eq!(f.format, ListFormat::Vics);
        assert!(f.force && f.op == Op::Remove);
        assert_eq!(f.declared_entries, Some(12));
        for (key, meta) in [
            ("other/x/y.txt", vec![]),
            ("incoming/y.txt", vec![]),
            ("incoming/a/b/c/d.txt", vec![]),
            ("incoming/bad name/y.txt", vec![]),
            ("incoming/x/y.txt", vec![("hashgate-format", "xml")]),
            ("incoming/x/withdraw/y.txt", vec![("hashgate-op", "add")]),
            ("incoming/x/y.txt", vec![("hashgate-sha256", "abc")]),
            ("incoming/x/y.txt", vec![("hashgate-force", "yes")]),
        ] {
            let err = ListFile::from_object(key, &md(&meta)).unwrap_err();
            assert_eq!(err.kind, RefusalKind::Layout, "{key} {meta:?}");
            assert_eq!(err.key, key);
        }
    }

    #[test]
    fn check_counts_per_list_and_hashes_the_whole_file() {
        let text = format!("md5,list\n{MD5_A},a\n{MD5_B},b\n");
        let f = file("incoming/a/x.csv");
        let c = check(text.as_bytes(), &f, &Limits::default()).unwrap();
        assert_eq!(c.entries, 2);
        let want: BTreeMap<String, u64> = [("a".to_string(), 1), ("b".to_string(), 1)].into();
        assert_eq!(c.per_list, want);
        assert_eq!(c.bytes, text.len() as u64);
        assert_eq!(c.sha256, crate::manifest::sha256_hex(text.as_bytes()));
    }

    #[test]
    fn bad_files_are_refused_with_their_kind() {
        let limits = Limits {
            max_entries: 2,
            ..Limits::default()
        };
        let plain = file("incoming/a/x.txt");
        let refuse =
            |text: &str, f: &ListFile| check(text.as_bytes(), f, &limits).unwrap_err().kind;
        // A truncated last digest, a wrong format, nothing but comments.
        assert_eq!(
            refuse(&format!("{MD5_A}\n{}", &MD5_B[..20]), &plain),
            RefusalKind::Invalid
        );
        assert_eq!(refuse("{\"value\": []}", &plain), RefusalKind::Invalid);
        assert_eq!(refuse("# nothing\n", &plain), RefusalKind::Empty);
        assert_eq!(
            refuse("d41d8cd98f00b204e9800998ecf8427e\n", &plain),
            RefusalKind::Invalid
        );
        let many = format!("{MD5_A}\n{MD5_B}\n{}\n", "11".repeat(16));
        assert_eq!(refuse(&many, &plain), RefusalKind::TooManyEntries);
        let vics = file("incoming/a/x.json");
        assert_eq!(refuse("{\"value\": [", &vics), RefusalKind::Invalid);
        assert_eq!(
            plain
                .check_size(9 << 30, &Limits::default())
                .unwrap_err()
                .kind,
            RefusalKind::TooLarge
        );
    }

    #[test]
    fn declared_facts_catch_a_file_cut_at_a_line() {
        let whole = format!("{MD5_A}\n{MD5_B}\n");
        let cut = format!("{MD5_A}\n");
        let f = ListFile::from_object(
            "incoming/a/x.txt",
            &md(&[(
                "hashgate-sha256",
                &crate::manifest::sha256_hex(whole.as_bytes()),
            )]),
        )
        .unwrap();
        let limits = Limits::default();
        let c = check(cut.as_bytes(), &f, &limits).unwrap();
        let err = judge(&f, &c, &BTreeMap::new(), &limits).unwrap_err();
        assert_eq!(err.kind, RefusalKind::Incomplete);
        let c = check(whole.as_bytes(), &f, &limits).unwrap();
        judge(&f, &c, &BTreeMap::new(), &limits).unwrap();
        let f =
            ListFile::from_object("incoming/a/x.txt", &md(&[("hashgate-entries", "2")])).unwrap();
        let c = check(cut.as_bytes(), &f, &limits).unwrap();
        assert_eq!(
            judge(&f, &c, &BTreeMap::new(), &limits).unwrap_err().kind,
            RefusalKind::Incomplete
        );
    }

    #[test]
    fn a_large_withdrawal_needs_force() {
        let text = format!("{MD5_A}\n{MD5_B}\n");
        let limits = Limits::default();
        let sizes: BTreeMap<String, u64> = [("a".to_string(), 4u64)].into();
        let f = file("incoming/a/withdraw/w.txt");
        let c = check(text.as_bytes(), &f, &limits).unwrap();
        let err = judge(&f, &c, &sizes, &limits).unwrap_err();
        assert_eq!(err.kind, RefusalKind::MassWithdrawal);
        assert!(err.reason.contains("50%"), "{err}");
        let forced = ListFile {
            force: true,
            ..f.clone()
        };
        judge(&forced, &c, &sizes, &limits).unwrap();
        let big: BTreeMap<String, u64> = [("a".to_string(), 100u64)].into();
        judge(&f, &c, &big, &limits).unwrap();
        // Adding is never limited by share.
        let add = file("incoming/a/w.txt");
        judge(
            &add,
            &check(text.as_bytes(), &add, &limits).unwrap(),
            &sizes,
            &limits,
        )
        .unwrap();
    }

    /// A lists bucket and a store in memory, failing at the `crash_at`-th step.
    #[derive(Default)]
    struct World {
        objects: BTreeMap<String, String>,
        store: std::collections::BTreeSet<String>,
        imports: usize,
        announced: usize,
        steps: usize,
        crash_at: Option<usize>,
    }

    impl World {
        fn step(&mut self) -> Result<(), ()> {
            self.steps += 1;
            if self.crash_at == Some(self.steps) {
                return Err(());
            }
            Ok(())
        }

        /// One run of the protocol for `key`, as the adapter drives it.
        fn run(&mut self, key: &str, limits: Limits) -> Result<Option<Finished>, ()> {
            let Some(body) = self.objects.get(key).cloned() else {
                return Ok(None); // gone: handled before
            };
            let mut p = FileSync::new(key, &BTreeMap::new(), body.len() as u64, limits);
            loop {
                match p.action() {
                    FileAction::Check(f) => {
                        self.step()?;
                        let sizes = [(f.list.clone(), self.store.len() as u64)].into();
                        p.checked(check(body.as_bytes(), &f, &limits), &sizes);
                        continue;
                    }
                    FileAction::Import(_) => {
                        self.step()?;
                        self.imports += 1;
                        self.store.extend(body.lines().map(str::to_string));
                    }
                    FileAction::WriteReason { key, refusal } => {
                        self.step()?;
                        let doc = refusal.document("2026-12-01T00:00:00Z".parse().unwrap());
                        self.objects.insert(key, String::from_utf8(doc).unwrap());
                    }
                    FileAction::Copy { to } => {
                        self.step()?;
                        self.objects.insert(to, body.clone());
                    }
                    FileAction::Announce(_) => {
                        self.step()?;
                        self.announced += 1;
                    }
                    FileAction::DeleteIncoming => {
                        self.step()?;
                        self.objects.remove(key);
                    }
                    FileAction::Done(f) => return Ok(Some(f)),
                }
                p.step_done();
            }
        }

        /// The file's content is somewhere: waiting, applied or rejected.
        fn kept(&self, key: &str, body: &str) -> bool {
            [key.to_string(), applied_key(key), rejected_key(key)]
                .iter()
                .any(|k| self.objects.get(k).map(String::as_str) == Some(body))
        }
    }

    #[test]
    fn a_crash_after_any_step_is_finished_by_running_again_and_the_file_is_never_lost() {
        let good = format!("{MD5_A}\n{MD5_B}\n");
        let bad = format!("{MD5_A}\n{}\n", &MD5_B[..7]);
        for (key, body, applied) in [
            ("incoming/a/good.txt", good.as_str(), true),
            ("incoming/a/bad.txt", bad.as_str(), false),
            ("incoming/too/deep/x/y.txt", good.as_str(), false),
        ] {
            for crash_at in 1..=6 {
                let mut w = World {
                    crash_at: Some(crash_at),
                    ..World::default()
                };
                w.objects.insert(key.to_string(), body.to_string());
                let first = w.run(key, Limits::default());
                assert!(
                    w.kept(key, body),
                    "{key}: lost after a crash at step {crash_at}"
                );
                if first.is_ok() {
                    assert!(!w.objects.contains_key(key));
                }
                w.crash_at = None;
                let finished = match w.run(key, Limits::default()).unwrap() {
                    Some(f) => f,
                    None => first.unwrap().expect("finished before"),
                };
                assert!(!w.objects.contains_key(key), "{key} still waiting");
                assert!(w.kept(key, body));
                match finished {
                    Finished::Applied { applied: at } => {
                        assert!(applied, "{key}");
                        assert_eq!(w.objects[&at], body);
                        assert_eq!(w.store.len(), 2);
                        assert!(w.imports >= 1);
                    }
                    Finished::Refused { rejected, refusal } => {
                        assert!(!applied, "{key}");
                        assert_eq!(w.objects[&rejected], body);
                        assert!(w.objects.contains_key(&reason_key(&rejected)));
                        assert!(w.store.is_empty(), "nothing of a refused file is imported");
                        assert_eq!(w.imports, 0);
                        assert!(w.announced >= 1, "{refusal}");
                    }
                }
            }
        }
    }

    #[test]
    fn files_move_to_applied_or_rejected_with_a_reason() {
        assert_eq!(applied_key("incoming/a/x.txt"), "applied/a/x.txt");
        let r = rejected_key("incoming/a/withdraw/x.txt");
        assert_eq!(r, "rejected/a/withdraw/x.txt");
        assert_eq!(reason_key(&r), "rejected/a/withdraw/x.txt.reason.json");
        let refusal = Refusal::new("incoming/a/x.txt", RefusalKind::Empty, "nothing");
        let doc: serde_json::Value =
            serde_json::from_slice(&refusal.document("2026-12-01T00:00:00Z".parse().unwrap()))
                .unwrap();
        assert_eq!(doc["kind"], "empty");
        assert_eq!(doc["applied"], false);
    }
}
