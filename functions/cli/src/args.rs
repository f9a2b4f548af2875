//! Command-line arguments. Every option with an environment variable is listed in the
//! README's configuration table.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use hashgate_core::lists::ListFormat;
use hashgate_core::{Algorithm, AlgorithmSet};

/// hashgate: detect known child-sexual-abuse material by hash, before it spreads.
///
/// Imports clearinghouse hash lists into a local hash database (an exact store and its
/// bloom filter snapshot), and scans files and directories against it.
#[derive(Parser, Debug)]
#[command(name = "hashgate", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Import, withdraw and count hash-list entries.
    #[command(subcommand)]
    Lists(ListsCommand),
    /// Rebuild or inspect the bloom filter snapshot.
    #[command(subcommand)]
    Filter(FilterCommand),
    /// Print each file's digests and, for images, its PDQ hash and quality: what a list
    /// entry for it would hold (share hashes, never images).
    ///
    /// Exit status: 0 when every file was hashed, 2 when any could not be read.
    Hash(HashArgs),
    /// Scan files and directories (recursively) against the hash database.
    ///
    /// Exit status: 0 when every file is clean, 1 when any file matched, 2 when any file
    /// could not be scanned (this wins over 1: the run is incomplete) or on a usage error.
    Scan(ScanArgs),
    /// Connect buckets you already have to a deployed stack.
    #[command(subcommand)]
    Buckets(BucketsCommand),
    /// Scan the objects a bucket already holds, through the scanner's own pipeline.
    ///
    /// Lists the bucket (or the objects under a prefix) in key order, a page at a time, and
    /// scans each object exactly as an upload event would have it scanned: same verdicts,
    /// quarantine, tags and case ids, so an object scanned twice still has one case. Reads
    /// the scanner's configuration (HASHGATE_* variables, as for the worker) and any
    /// S3-compatible endpoint (AWS_ENDPOINT_URL). A checkpoint is saved after every page; run
    /// the same command again to resume after an interruption.
    ///
    /// Exit status: 0 when every object was handled, 1 when any matched, 2 on an error (the
    /// checkpoint then names the last page done).
    Backfill(BackfillArgs),
    /// Check the stack's audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Place or lift a legal hold on a case.
    #[command(subcommand)]
    Cases(CasesCommand),
    /// CyberTipline report packages: list, show, validate, send.
    #[command(subcommand)]
    Reports(crate::reports::ReportsCommand),
    /// Keys that sign filter manifests.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Make a new Ed25519 key pair for signing filter manifests: the private key into a
    /// file (mode 0600) and/or an AWS Secrets Manager secret, the public key printed for
    /// the scanners' HASHGATE_FILTER_PUBLIC_KEYS.
    Generate(KeysGenerateArgs),
}

#[derive(Args, Debug)]
pub struct KeysGenerateArgs {
    /// Write the private key to this new file (refused if it exists).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Create an AWS Secrets Manager secret of this name holding the private key (the
    /// template's FilterSigningSecretArn).
    #[arg(long, value_name = "NAME")]
    pub secret_name: Option<String>,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct FilterStatusArgs {
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct FilterRollbackArgs {
    /// The snapshot to go back to, by the sequence it was first published as (see `filter
    /// status`); by default the one before the current.
    #[arg(value_name = "SEQUENCE")]
    pub to: Option<u64>,
    /// Who rolls back (recorded in the signed manifest and the audit log).
    #[arg(long, env = "USER")]
    pub by: String,
    /// Why (recorded in the signed manifest and the audit log).
    #[arg(long)]
    pub reason: String,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum CasesCommand {
    /// Place a legal hold on a case: its quarantined copy and its report package are kept,
    /// whatever their retention, until the hold is lifted.
    ///
    /// An Object Lock legal hold goes on every stored version of the case's quarantined
    /// copy, and (when HASHGATE_REPORTS_BUCKET is set) on every object version under
    /// `reports/<case>/` there; then the case records the hold with a `hold_placed` audit
    /// entry. Reads HASHGATE_CASE_TABLE and HASHGATE_AUDIT_TABLE (for the local stack: set
    /// -a; . .local/stack.env), with credentials the quarantine bucket lets in
    /// (ReviewerRole). Exit status 0 when held, 1 when refused (already held, with nothing
    /// new to hold), 2 on an error; run again after an error: placing is idempotent. On a
    /// held case it holds what was stored since (a report package written after the hold).
    Hold(HoldArgs),
    /// Lift a case's legal hold: the case records the release with a `hold_released` audit
    /// entry, then the storage holds are lifted (retention still applies).
    ///
    /// Same variables as `cases hold`. Exit status 0 when lifted, 1 when refused (not held),
    /// 2 on an error; a release that stopped after it was recorded is finished by running
    /// it again.
    Release(HoldArgs),
}

#[derive(Args, Debug)]
pub struct HoldArgs {
    /// The case id (`case-…`).
    #[arg(value_name = "CASE")]
    pub case: String,
    /// Who places or lifts the hold (the audit entry's actor).
    #[arg(long, value_name = "WHO")]
    pub by: String,
    /// Why: the preservation request, the matter (kept in the audit entry).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Verify the whole audit chain: every entry's hash, every link, no gaps, and every
    /// signed checkpoint (its signature, and that the chain still holds the entry it
    /// vouches for).
    ///
    /// Reads HASHGATE_AUDIT_TABLE, HASHGATE_AUDIT_CHECKPOINT_BUCKET and
    /// HASHGATE_AUDIT_SIGNING_KEY (for the local stack: set -a; . .local/stack.env). Exit
    /// status 0 when the chain verifies, 1 naming the first broken entry, 2 on an error.
    Verify(AuditArgs),
    /// Sign and write a checkpoint of the chain's head now (the review function writes them
    /// as it goes; this is for schedules and before maintenance).
    Checkpoint(AuditArgs),
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum BucketsCommand {
    /// Send a bucket's upload events to the stack, keeping its existing notifications.
    ///
    /// Reads the bucket's notification configuration and writes it back with hashgate's
    /// part added: a queue configuration for the scan queue (--queue-arn, the stack's
    /// ScanQueueArn output), or EventBridge delivery (--eventbridge, for stacks deployed with
    /// TriggerMode=EventBridge). Deploy the stack with the bucket's ARN in
    /// ExistingBucketArns first, so the queue accepts its events and the scanner may read
    /// it. Running it again changes nothing. Exit status 0 on success, 2 on any error
    /// (nothing is written then).
    Attach(AttachArgs),
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("delivery").required(true)))]
pub struct AttachArgs {
    /// The existing bucket's name.
    pub bucket: String,
    /// The stack's scan queue ARN (output ScanQueueArn).
    #[arg(long, value_name = "ARN", group = "delivery")]
    pub queue_arn: Option<String>,
    /// Turn on EventBridge delivery instead (the stack's rule forwards the events).
    #[arg(long, group = "delivery")]
    pub eventbridge: bool,
}

#[derive(clap::Args, Debug)]
pub struct BackfillArgs {
    /// What to scan: s3://BUCKET or s3://BUCKET/PREFIX.
    #[arg(value_name = "S3_URL")]
    pub target: String,
    /// Where the progress is saved [default: .hashgate-backfill/<bucket>[-<prefix hash>].json].
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<std::path::PathBuf>,
    /// At most this many objects per second (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 50.0)]
    pub rate: f64,
    /// Objects scanned at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrency: u32,
    /// Objects listed per page (and between checkpoints).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub page_size: u32,
    /// Stop after this many objects in this run (the checkpoint lets the next run go on).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// List what would be scanned, and how much, without scanning or saving anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum ListsCommand {
    /// Import hash lists (or withdraw entries with --remove), then rebuild the filter.
    ///
    /// Each file is applied atomically: a file with one malformed record is refused whole,
    /// with an error naming file, line (or JSON path) and reason, and the others still apply.
    /// Re-importing a list is idempotent. Exit status 0 when every file applied, 2 otherwise.
    Import(ImportArgs),
    /// Entries per algorithm and list, and the filter snapshot's version and size; without
    /// --db, the stack's store (HASHGATE_HASH_TABLE): its version, algorithms, and every
    /// list entry with false positives on record, the suppressed ones marked.
    Stats(StatsArgs),
    /// Re-enable a list entry that was suppressed after repeated false positives: it
    /// matches again, and is suppressed again only after as many more. Audited
    /// (`entry_enabled`, under the entry's last false-positive case) in the stack's audit
    /// chain.
    ///
    /// Reads HASHGATE_HASH_TABLE and HASHGATE_AUDIT_TABLE (for the local stack: set -a; .
    /// .local/stack.env). Exit status 0 when re-enabled, 2 on an error (an unknown digest,
    /// list or id, or an entry that is not suppressed, is named).
    Enable(EnableArgs),
    /// Write the false positives on record against one list's entries as CSV (list, id,
    /// algorithm, digest, category, false_positives, last_case, last_at, suppressed,
    /// suppressed_at, enabled_by, enabled_at, cases), for the list's source.
    ///
    /// Reads HASHGATE_HASH_TABLE. A file is replaced only once written whole. Exit status 0
    /// on success, 2 on an error (a list with no false positives on record is one).
    Feedback(FeedbackArgs),
    /// Write the digests of the stack's confirmed cases as a hash list other providers can
    /// import (`hashgate lists import`), in a format hashgate reads.
    ///
    /// Every digest of every confirmed case, once (a digest several cases share carries the
    /// first case's id), with the case id as entry id and the reviewers' classification as
    /// category (csv and vics; plain carries digests only). No format carries the list name:
    /// the importer names the list. Reads HASHGATE_CASE_TABLE and the usual AWS settings
    /// (for the local stack: set -a; . .local/stack.env). A file is replaced only once
    /// written whole. Counts go to standard error. Exit status 0 on success, 2 on an error.
    Export(ExportArgs),
}

#[derive(Subcommand, Debug)]
pub enum FilterCommand {
    /// Build a new filter snapshot from the store's current contents.
    Rebuild(RebuildArgs),
    /// Check a filter snapshot file and print its header.
    Inspect(InspectArgs),
    /// The stack's signed filter manifest and the snapshots kept for rollbacks (reads
    /// HASHGATE_FILTER_BUCKET and HASHGATE_FILTER_PUBLIC_KEYS).
    Status(FilterStatusArgs),
    /// Point the stack's filter manifest back at an earlier snapshot: signed, audited.
    /// Needs the signing key (HASHGATE_FILTER_SIGNING_SECRET) and HASHGATE_AUDIT_TABLE.
    Rollback(FilterRollbackArgs),
}

#[derive(Args, Debug)]
pub struct DbArg {
    /// Hash database directory (exact store and filter snapshot).
    #[arg(long, env = "HASHGATE_DB", value_name = "DIR")]
    pub db: PathBuf,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Hash database directory. Without it, the lists go to the deployed (or local) stack
    /// named by HASHGATE_HASH_TABLE and HASHGATE_FILTER_BUCKET (e.g. `.local/stack.env`):
    /// its DynamoDB exact store, and a new filter snapshot the scanners pick up.
    #[arg(long, env = "HASHGATE_DB", value_name = "DIR")]
    pub db: Option<PathBuf>,
    /// List format; by default from the file name: .csv is csv, .json is vics, else plain.
    #[arg(long, value_parser = parse_format)]
    pub format: Option<ListFormat>,
    /// What a plain list's lines (or a CSV `hash` column) are: md5, sha1, sha256 or pdq.
    /// Without it the length decides among md5, sha1 and sha256; PDQ hashes are 64 hex
    /// digits like SHA-256, so a PDQ list needs `--algorithm pdq`.
    #[arg(long, value_name = "ALGORITHM")]
    pub algorithm: Option<hashgate_core::Algorithm>,
    /// List the entries belong to; by default the file name without its extension. A CSV
    /// `list` column overrides it row by row.
    #[arg(long, value_name = "NAME")]
    pub list: Option<String>,
    /// Withdraw the files' entries from the list instead of adding them.
    #[arg(long)]
    pub remove: bool,
    /// Apply a withdrawal even when it removes more than --max-withdraw-share of a list.
    #[arg(long)]
    pub force: bool,
    /// Largest share of a list one withdrawal may remove without --force (0 to 1).
    #[arg(long, env = "HASHGATE_WITHDRAW_MAX_SHARE", default_value_t = hashgate_core::lists::sync::Limits::default().max_withdraw_share, value_parser = parse_share)]
    pub max_withdraw_share: f64,
    /// False-positive rate of the rebuilt filter.
    #[arg(long, env = "HASHGATE_FILTER_FP_RATE", default_value_t = hashgate_core::filter::DEFAULT_FP_RATE, value_parser = parse_fp_rate)]
    pub fp_rate: f64,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Hash-list files; `-` reads standard input (then --list is required).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["confirmed", "from", "all"])))]
pub struct ExportArgs {
    /// Export the digests of the stack's confirmed cases, as the provider's own list.
    #[arg(long)]
    pub confirmed: bool,
    /// Export this list of the hash store (again for more lists), with its entry ids and
    /// categories.
    #[arg(long, value_name = "NAME")]
    pub from: Vec<String>,
    /// Export every list of the hash store (CSV names each entry's list).
    #[arg(long)]
    pub all: bool,
    /// For --from and --all: the hash database directory; without it, the stack named by
    /// HASHGATE_HASH_TABLE.
    #[arg(long, env = "HASHGATE_DB", value_name = "DIR")]
    pub db: Option<PathBuf>,
    /// List format: plain, csv or vics; by default from the output file's name as `lists
    /// import` reads it (.csv is csv, .json is vics, else plain), csv on standard output.
    #[arg(long, value_parser = parse_format)]
    pub format: Option<ListFormat>,
    /// With --confirmed: the provider's own list the entries belong to (in the counts;
    /// importers name the list themselves).
    #[arg(long, value_name = "NAME", default_value = hashgate_core::share::DEFAULT_LIST)]
    pub list: String,
    /// Output file, or `-` for standard output (the default).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

impl ExportArgs {
    /// The format to write: as given, else from the output file's name, else csv.
    pub fn format(&self) -> ListFormat {
        match (&self.format, &self.output) {
            (Some(f), _) => *f,
            (None, Some(p)) if p.as_os_str() != "-" => ListFormat::from_path(p),
            (None, _) => ListFormat::Csv,
        }
    }
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Hash database directory. Without it, the stack named by HASHGATE_HASH_TABLE.
    #[arg(long, env = "HASHGATE_DB", value_name = "DIR")]
    pub db: Option<PathBuf>,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct EnableArgs {
    /// The list the entry is on.
    #[arg(long, value_name = "NAME")]
    pub list: String,
    /// The entry's digest, as ALG:HEX (md5:…, sha1:…, sha256:…).
    #[arg(long, value_name = "ALG:HEX")]
    pub digest: String,
    /// The entry's id on the list, when it has one.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Who re-enables it (the audit entry's actor).
    #[arg(long, value_name = "WHO")]
    pub by: String,
    /// Why (kept in the audit entry).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct FeedbackArgs {
    /// The list whose entries' feedback to write.
    #[arg(long, value_name = "NAME")]
    pub list: String,
    /// Output file, or `-` for standard output (the default).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// False-positive rate of the new filter.
    #[arg(long, env = "HASHGATE_FILTER_FP_RATE", default_value_t = hashgate_core::filter::DEFAULT_FP_RATE, value_parser = parse_fp_rate)]
    pub fp_rate: f64,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Filter snapshot file.
    pub file: PathBuf,
}

#[derive(Args, Debug)]
pub struct HashArgs {
    /// Print one JSON object per file (JSON Lines) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Files to hash.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// Print one JSON object per file (JSON Lines) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also compute these digests (comma-separated: md5,sha1,sha256), beyond the ones the
    /// imported lists need.
    #[arg(long, value_parser = parse_algorithms, value_name = "ALGORITHMS")]
    pub digests: Option<AlgorithmSet>,
    /// Files scanned at once (default: one per core).
    #[arg(long, env = "HASHGATE_SCAN_JOBS", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Files and directories to scan; directories are walked recursively.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

fn parse_format(s: &str) -> Result<ListFormat, String> {
    s.parse()
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x <= 1.0 => Ok(x),
        _ => Err(format!("{s:?}: expected a share above 0 and at most 1")),
    }
}

fn parse_fp_rate(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|_| format!("not a number: {s:?}"))?;
    if p > 0.0 && p < 0.5 {
        Ok(p)
    } else {
        Err(format!("{p} is not a false-positive rate in (0, 0.5)"))
    }
}

fn parse_algorithms(s: &str) -> Result<AlgorithmSet, String> {
    s.split(',')
        .filter(|a| !a.trim().is_empty())
        .map(|a| a.parse::<Algorithm>().map_err(|e| e.to_string()))
        .collect()
}
