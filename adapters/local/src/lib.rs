//! hashgate's local adapters: what the core needs from a machine's disk and operating system.
//!
//! - [`store`]: the embedded exact hash store (redb), behind the core's `HashStore` port;
//! - [`db`]: a hash database directory (the store and its filter snapshot side by side), list
//!   imports into it (one transaction per file) and filter rebuilds;
//! - [`filter_file`]: filter snapshots as files (atomic writes), and fresh random seeds.
//!
//! The CLI, local runs and self-hosted deployments use these; the cloud deployment keeps the
//! same two things in DynamoDB and S3 (`hashgate-aws`).

pub mod db;
pub mod filter_file;
pub mod store;

pub use db::{build_filter, import_list, ImportError, LocalDb, LocalDbError, FILTER_FILE};
pub use filter_file::FilterFile;
pub use store::{EmbeddedStore, Importer, StoreSnapshot};
