//! hashlist-sync: list files that land in the lists bucket, and lists pulled from configured
//! sources on a schedule, imported into the exact store atomically per file (after the
//! guards against bad lists, `hashgate_core::lists::sync`), then published as a signed
//! filter snapshot (`hashgate_aws::publisher`).

pub mod config;
pub mod connect;
pub mod deployment;
pub mod handler;
pub mod pull;
pub mod worker;
