//! hashgate's core: everything that decides, with no cloud types in its API.
//!
//! - [`case`]: case records, quarantine locations, the append-only audit entry.
//! - [`digest`]: algorithms, digest values, streaming multi-algorithm hashing.
//! - [`event`]: upload events normalised from S3, SQS and EventBridge; case ids.
//! - [`lists`]: clearinghouse hash-list formats (plain text, CSV, Project VIC / VICS JSON).
//! - [`store`]: the exact hash store trait and its embedded, file-backed implementation.
//! - [`filter`]: bloom filter snapshots with a checked, versioned file format.
//! - [`local`]: a local hash database directory (store + filter), and list imports.
//! - [`pipeline`]: one upload end to end over the storage ports (`ObjectStore`, `CaseStore`,
//!   `Notifier`); the fast path from digests the object store vouches for.
//! - [`quarantine`]: the quarantine protocol as a sans-IO state machine.
//! - [`scan`]: the scan decision (digests → filter → exact store → verdict).
//! - [`time`]: RFC 3339 timestamps.

pub mod case;
pub mod digest;
pub mod event;
pub mod filter;
pub mod lists;
pub mod local;
pub mod pipeline;
pub mod quarantine;
pub mod scan;
pub mod store;
pub mod time;

pub use digest::{Algorithm, AlgorithmSet, Digest, DigestSet};
