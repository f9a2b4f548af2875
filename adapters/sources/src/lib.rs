//! Pulled hash-list sources: where the hashlist-sync function gets the lists it imports.
//!
//! A *source* fetches one hash list from somewhere, on the function's schedule, and says
//! whether it changed since the last pull. This crate is the one place where sources are
//! defined:
//!
//! - [`SourceConfig`] is what an operator configures (the function reads a JSON array of
//!   them from `HASHGATE_LIST_SOURCES`); [`parse_sources`] reads and checks that array.
//! - [`ListSource`] is what every source implements: a name, and [`pull`](ListSource::pull),
//!   which is given the [`SourceState`] the last successful pull left and answers
//!   [`Pulled::Unchanged`] or [`Pulled::Changed`] with the new body and state. The caller
//!   persists the state between runs; a source keeps nothing that must survive one.
//! - [`build`] is the registry: it maps a configuration's `kind` to an implementation and
//!   returns it as a [`Source`].
//!
//! Built in: `http` ([`HttpSource`]), a list at an HTTP(S) URL, pulled with a conditional
//! GET, bounded in size and time.
//!
//! Known but not built in yet ([`PLANNED_KINDS`]): `ncmec` (NCMEC's hash-sharing API),
//! `threatexchange` (Meta's ThreatExchange), `stopncii` (StopNCII) and `projectvic`
//! (Project VIC). Configuring one is valid, so the configuration can be written ahead of
//! the code, but [`build`] refuses it with [`SourceError::NotBuiltIn`]; a kind hashgate
//! does not know at all is [`SourceError::UnknownKind`].
//!
//! # Adding a clearinghouse source
//!
//! 1. Write a type that implements [`ListSource`] in a module of this crate: `pull` does
//!    whatever the clearinghouse's API needs (authenticate with the headers the caller
//!    resolved from `headers_secret`, page through deltas, …) and reports the result
//!    through [`Pulled`], keeping its cursor in [`SourceState`] (`etag` is free for an
//!    API's own cursor or version when it has no HTTP validators). It must respect the
//!    [`PullLimits`] it was built with: never buffer more than `max_body_bytes`.
//! 2. Add a variant for it to [`Source`] and to `Source`'s [`ListSource`] implementation.
//! 3. In [`build`], map its kind to its constructor, and move the kind from
//!    [`PLANNED_KINDS`] to [`BUILT_IN_KINDS`].
//!
//! Nothing else changes: the function only sees [`Source`] and the trait.

#![warn(missing_docs)]

mod config;
mod error;
mod http;

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use config::{
    parse_sources, SourceConfig, FORMATS, MAX_LIST_NAME_BYTES, MAX_NAME_BYTES,
    MAX_SECRET_NAME_BYTES, OPS,
};
pub use error::SourceError;
pub use http::HttpSource;

/// The kinds [`build`] can make a source of.
pub const BUILT_IN_KINDS: &[&str] = &["http"];

/// Kinds that name a known clearinghouse API without an implementation yet: NCMEC's
/// hash-sharing API, Meta's ThreatExchange, StopNCII and Project VIC. They are valid in a
/// configuration; [`build`] refuses them with [`SourceError::NotBuiltIn`].
pub const PLANNED_KINDS: &[&str] = &["ncmec", "threatexchange", "stopncii", "projectvic"];

/// What the last successful pull of a source left; the caller persists it between runs
/// (as JSON) and hands it to the next [`pull`](ListSource::pull). A never-pulled source
/// has the default, empty state.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceState {
    /// The list's entity tag, as the server sent it (quotes and `W/` included).
    pub etag: Option<String>,
    /// The list's `Last-Modified` date, as the server sent it.
    pub last_modified: Option<String>,
    /// SHA-256 of the last body, lower-case hex.
    pub sha256: Option<String>,
    /// When that body was fetched, RFC 3339 UTC.
    pub fetched_at: Option<String>,
}

/// What a pull found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pulled {
    /// The list is the one the given state describes; keep the state as it is.
    Unchanged,
    /// The list changed (or was pulled for the first time).
    Changed {
        /// The whole list, at most [`PullLimits::max_body_bytes`] long.
        body: Bytes,
        /// The state to persist once the body has been imported.
        state: SourceState,
    },
}

/// How far a pull may go. The body is held in memory, so `max_body_bytes` also bounds the
/// memory a pull takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullLimits {
    /// Largest list accepted, in bytes. Default 256 MiB (about eight million MD5 lines).
    pub max_body_bytes: u64,
    /// Longest wait for a connection. Default 10 s.
    pub connect_timeout: Duration,
    /// Longest a whole pull may take, the body's transfer included. Default 5 min.
    pub total_timeout: Duration,
    /// Most redirects followed in one pull. Default 5.
    pub max_redirects: usize,
}

impl Default for PullLimits {
    fn default() -> Self {
        PullLimits {
            max_body_bytes: 256 * 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(300),
            max_redirects: 5,
        }
    }
}

impl PullLimits {
    /// Why these limits are unusable, if they are: no size or time may be zero.
    fn check(&self) -> Result<(), String> {
        if self.max_body_bytes == 0 {
            return Err("max_body_bytes is 0".to_string());
        }
        if self.connect_timeout.is_zero() {
            return Err("connect_timeout is 0".to_string());
        }
        if self.total_timeout.is_zero() {
            return Err("total_timeout is 0".to_string());
        }
        Ok(())
    }
}

/// A hash-list source: something a list can be pulled from.
///
/// Implementations keep no state that must outlive a run: what a pull needs to know about
/// the previous one comes in as `last`, and what the next needs goes out in
/// [`Pulled::Changed`]. A failed pull returns an error and leaves the caller's state as it
/// was, so the next run tries again from the same point.
pub trait ListSource: Send {
    /// The source's configured name.
    fn name(&self) -> &str;

    /// Fetch the list if it changed since the pull that left `last`.
    fn pull(
        &mut self,
        last: &SourceState,
    ) -> impl Future<Output = Result<Pulled, SourceError>> + Send;
}

/// A built source, whichever its kind: what [`build`] returns.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Source {
    /// A list at an HTTP(S) URL.
    Http(HttpSource),
}

impl Source {
    /// The same source, sending these extra request headers (the caller resolves them
    /// from the configuration's `headers_secret`). See [`HttpSource::with_headers`].
    pub fn with_headers<I, K, V>(self, headers: I) -> Result<Source, SourceError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        match self {
            Source::Http(s) => s.with_headers(headers).map(Source::Http),
        }
    }
}

impl ListSource for Source {
    fn name(&self) -> &str {
        match self {
            Source::Http(s) => s.name(),
        }
    }

    async fn pull(&mut self, last: &SourceState) -> Result<Pulled, SourceError> {
        match self {
            Source::Http(s) => s.pull(last).await,
        }
    }
}

/// The registry: the source a configuration describes, by its `kind`.
///
/// Refused: a kind in [`PLANNED_KINDS`] ([`SourceError::NotBuiltIn`]), any other kind not
/// in [`BUILT_IN_KINDS`] ([`SourceError::UnknownKind`], listing the supported ones), an
/// invalid configuration ([`SourceError::Config`], naming the field) and unusable limits.
pub fn build(config: &SourceConfig, limits: &PullLimits) -> Result<Source, SourceError> {
    match config.kind.as_str() {
        "http" => HttpSource::new(config, limits).map(Source::Http),
        kind if PLANNED_KINDS.contains(&kind) => Err(SourceError::NotBuiltIn {
            name: config.name.clone(),
            kind: kind.to_string(),
        }),
        kind => Err(SourceError::UnknownKind {
            name: config.name.clone(),
            kind: kind.to_string(),
        }),
    }
}
