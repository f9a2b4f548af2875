//! What can go wrong configuring, building or pulling a list source.

use crate::{BUILT_IN_KINDS, PLANNED_KINDS};

/// A list source's configuration was refused, or a pull failed.
///
/// Every variant names the source (by its position in the configuration and its name when
/// known, or by name once built), so one log line tells an operator which entry of
/// `HASHGATE_LIST_SOURCES` to look at. URLs in messages have their query string, fragment
/// and any user information removed: a clearinghouse key passed as a query parameter never
/// reaches a log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The configuration as a whole is not a JSON array of objects.
    #[error("list sources: the configuration is not a JSON array of source objects: {reason}")]
    Document {
        /// The JSON parser's complaint.
        reason: String,
    },
    /// One field of one source is missing, malformed or refused.
    #[error("{}: field `{field}`: {reason}", at(*.index, .name.as_deref()))]
    Config {
        /// Position in the configured array (0-based), when the source came from one.
        index: Option<usize>,
        /// The source's name, when it has a readable one.
        name: Option<String>,
        /// The field at fault (the offending key for an unknown field; `(entry)` when the
        /// entry as a whole is wrong).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two sources share a name; names key each source's stored state and objects.
    #[error("list sources #{first} and #{second} are both named {name:?}; names must be unique")]
    DuplicateName {
        /// The shared name.
        name: String,
        /// Position of the first source with it.
        first: usize,
        /// Position of the second.
        second: usize,
    },
    /// The kind is not one hashgate knows of.
    #[error(
        "list source {name:?}: unknown kind {kind:?} (supported: {}; known but not built in yet: {})",
        BUILT_IN_KINDS.join(", "),
        PLANNED_KINDS.join(", ")
    )]
    UnknownKind {
        /// The source's name.
        name: String,
        /// The kind it asked for.
        kind: String,
    },
    /// The kind names a clearinghouse API that has no implementation in this build.
    #[error(
        "list source {name:?}: kind {kind:?} is a known clearinghouse API but is not built in yet (built in: {})",
        BUILT_IN_KINDS.join(", ")
    )]
    NotBuiltIn {
        /// The source's name.
        name: String,
        /// The kind it asked for.
        kind: String,
    },
    /// The limits a source was to be built with are unusable (zero size or timeout).
    #[error("list source {name:?}: pull limits: {reason}")]
    Limits {
        /// The source's name.
        name: String,
        /// Which limit, and why.
        reason: String,
    },
    /// An extra request header (from the source's headers secret) was refused.
    #[error("list source {name:?}: request header {header:?}: {reason}")]
    Header {
        /// The source's name.
        name: String,
        /// The header's name as given.
        header: String,
        /// Why it was refused.
        reason: String,
    },
    /// The HTTP client could not be set up (e.g. the TLS roots could not be loaded).
    #[error("list source {name:?}: cannot set up the HTTP client: {reason}")]
    Client {
        /// The source's name.
        name: String,
        /// The client's complaint.
        reason: String,
    },
    /// The request failed before a status arrived, or the body could not be read:
    /// connection refused, TLS failure, timeout, connection lost.
    #[error("list source {name:?}: GET {url}: {reason}")]
    Transport {
        /// The source's name.
        name: String,
        /// The source's URL, without query string or credentials.
        url: String,
        /// What failed, with its causes.
        reason: String,
    },
    /// A redirect was not followed: a downgrade from https to http, a target that the
    /// configuration would refuse, another origin while credentials are attached, or too
    /// many redirects.
    #[error("list source {name:?}: GET {url}: redirect refused: {reason}")]
    Redirect {
        /// The source's name.
        name: String,
        /// The source's URL, without query string or credentials.
        url: String,
        /// Why the redirect was refused.
        reason: String,
    },
    /// The server answered with a status other than 200, 203 or (to a conditional
    /// request) 304.
    #[error("list source {name:?}: GET {url}: HTTP status {status}")]
    Status {
        /// The source's name.
        name: String,
        /// The source's URL, without query string or credentials.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The list is larger than the configured maximum, by its declared length or by the
    /// bytes that arrived; reading stopped at the limit.
    #[error(
        "list source {name:?}: GET {url}: the list is larger than the limit of {limit} bytes{}",
        declared.map(|n| format!(" (Content-Length {n})")).unwrap_or_default()
    )]
    TooLarge {
        /// The source's name.
        name: String,
        /// The source's URL, without query string or credentials.
        url: String,
        /// The limit, in bytes.
        limit: u64,
        /// The Content-Length the server declared, when it declared one.
        declared: Option<u64>,
    },
}

/// "list source #3 (\"name\")", or the parts of it that are known.
fn at(index: Option<usize>, name: Option<&str>) -> String {
    match (index, name) {
        (Some(i), Some(n)) => format!("list source #{i} ({n:?})"),
        (Some(i), None) => format!("list source #{i}"),
        (None, Some(n)) => format!("list source {n:?}"),
        (None, None) => "list source".to_string(),
    }
}
