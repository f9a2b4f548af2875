//! hashgate's core: everything that decides, with no cloud types in its API.
//!
//! - [`audit`]: the hash-chained, append-only audit log, its verification and checkpoints.
//! - [`backfill`]: scanning what a bucket held before hashgate was attached, resumable from a
//!   checkpoint.
//! - [`case`]: case records, statuses, quarantine locations.
//! - [`digest`]: algorithms, digest values, streaming multi-algorithm hashing.
//! - [`event`]: upload events normalised from S3, SQS and EventBridge; case ids.
//! - [`lists`]: clearinghouse hash-list formats (plain text, CSV, Project VIC / VICS JSON).
//! - [`store`]: the exact hash store port, and the one rule for applying list entries.
//! - [`feedback`]: list-entry quality: false positives against list entries, suppression.
//! - [`followup`]: what a decision leaves to do (report package, sharing, list feedback),
//!   kept on the case until done.
//! - [`hold`]: legal holds on cases (place, release, what they cover), audited.
//! - [`filter`]: bloom filter snapshots with a checked, versioned byte format.
//! - [`generations`]: atomic list imports for stores without big transactions (DynamoDB).
//! - [`memory`]: in-memory implementations of every port, for tests.
//! - [`pdq`]: PDQ perceptual image hashes: the algorithm, safe decoding, the index.
//! - [`pipeline`]: one upload end to end over the storage ports (`ObjectStore`, `CaseStore`,
//!   `Notifier`); the fast path from digests the object store vouches for.
//! - [`quarantine`]: the quarantine protocol as a sans-IO state machine.
//! - [`report`]: the CyberTipline report of a confirmed case (the `<report>` and
//!   `<fileDetails>` XML, its manifest); `fileViewedByEsp` from the audit log.
//! - [`review`]: the review queue's rules: roles, decisions and the two-person rule, the
//!   restore of a false positive (sans-IO), the queue's order and filters, its ports.
//! - [`scan`]: the scan decision (digests → filter → exact store → verdict).
//! - [`sender`]: the sending of one report package to NCMEC's CyberTipline (submit, upload,
//!   file details, finish; retract on a refusal or a mismatched file), sans-IO.
//! - [`share`]: sharing back: the digests of confirmed cases as entries of the provider's
//!   own list.
//! - [`time`]: instants (`jiff::Timestamp`) and their RFC 3339 form.
//!
//! The core does no I/O of its own: no files, no network, no clock, no randomness. Bytes,
//! time and seeds are handed to it; adapters (`hashgate-local`, `hashgate-aws`) and the
//! functions do the rest.

pub mod audit;
pub mod backfill;
pub mod case;
pub mod digest;
pub mod event;
pub mod feedback;
pub mod filter;
pub mod followup;
pub mod generations;
pub mod hold;
pub mod lists;
pub mod manifest;
pub mod memory;
pub mod pdq;
pub mod pipeline;
pub mod quarantine;
pub mod report;
pub mod review;
pub mod scan;
pub mod sender;
pub mod share;
pub mod store;
pub mod time;

pub use digest::{Algorithm, AlgorithmSet, Digest, DigestSet};
