//! Clearinghouse hash lists: their formats, their entries and where each entry came from.
//!
//! Parsing is streaming: entries are handed to a callback as they are read, so a list of
//! tens of millions of digests never sits in memory. A malformed input stops the parse with
//! a [`ListError`] naming the file, the place (line, or JSON path) and the reason; callers
//! apply a file's entries atomically, so nothing of a refused file is applied.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::digest::{Algorithm, Digest};

mod csv;
pub mod guard;
mod lines;
mod plain;
pub mod sync;
mod vics;
pub mod write;

/// Where a list entry came from: the list, the entry's id on that list, its category.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Provenance {
    pub list: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// One digest on one list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    pub digest: Digest,
    pub provenance: Provenance,
}

/// The formats hash lists arrive in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListFormat {
    /// One hex digest per line; the algorithm follows from the length.
    Plain,
    /// CSV with a header row naming the digest column(s).
    Csv,
    /// Project VIC / VICS JSON (OData), versions 1.3 and 2.0.
    Vics,
}

impl ListFormat {
    /// Guess the format from a file name: `.csv` is CSV, `.json` is VICS, anything else plain.
    pub fn from_path(path: &Path) -> ListFormat {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => ListFormat::Csv,
            Some("json") => ListFormat::Vics,
            _ => ListFormat::Plain,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ListFormat::Plain => "plain",
            ListFormat::Csv => "csv",
            ListFormat::Vics => "vics",
        }
    }
}

impl fmt::Display for ListFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ListFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "plain" | "text" | "txt" => Ok(ListFormat::Plain),
            "csv" => Ok(ListFormat::Csv),
            "vics" | "json" | "projectvic" => Ok(ListFormat::Vics),
            other => Err(format!(
                "unknown list format {other:?} (expected plain, csv or vics)"
            )),
        }
    }
}

/// Where in a list file something was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// The file as a whole (e.g. empty, unreadable).
    File,
    /// A 1-based line number.
    Line(u64),
    /// A JSON path such as `$.value[1832].MD5`, with the line and column where known.
    Json {
        path: String,
        line: usize,
        column: usize,
    },
}

/// A list that could not be read, naming what was wrong and where:
/// `lists/iwf.csv:1832: not a SHA-1 digest: "xyz"`.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}{location}: {reason}")]
pub struct ListError {
    /// The file (or other source) as the operator named it.
    pub source_name: String,
    pub location: Location,
    pub reason: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File => Ok(()),
            Location::Line(n) => write!(f, ":{n}"),
            Location::Json { path, line, column } if *line > 0 => {
                write!(f, ":{line}:{column}: {path}")
            }
            Location::Json { path, .. } => write!(f, ": {path}"),
        }
    }
}

/// How the entries of a parse are attributed.
#[derive(Clone, Debug)]
pub struct ParseOptions {
    /// Name of the source for error messages (usually the path as given).
    pub source_name: String,
    /// The list entries belong to unless a row names its own (CSV `list` column).
    pub default_list: String,
    /// What the list's digests are, when the file cannot say: a plain list's lines, a CSV
    /// `hash` column without an `algorithm` column. Without it the length decides among
    /// MD5, SHA-1 and SHA-256; PDQ is never inferred (64 hex digits are a SHA-256 or a PDQ
    /// hash, and nothing in the digits tells which), so a PDQ list must say so.
    pub algorithm: Option<Algorithm>,
}

/// Counts of one successful parse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseSummary {
    /// Entries handed to the callback.
    pub entries: u64,
    /// Records (lines, rows, media records) that carried no digest we use and were skipped
    /// on purpose (e.g. comments and blank lines are not counted; a VICS record with
    /// neither MD5 nor SHA1 is).
    pub skipped: u64,
}

/// Parse `reader` as `format`, handing each entry to `sink` in file order.
///
/// Stops at the first malformed record with a [`ListError`]; an error returned by `sink`
/// is passed through as the reason at the current location.
pub fn parse<R: Read>(
    reader: R,
    format: ListFormat,
    options: &ParseOptions,
    sink: &mut dyn FnMut(ListEntry) -> Result<(), String>,
) -> Result<ParseSummary, ListError> {
    match format {
        ListFormat::Plain => plain::parse(reader, options, sink),
        ListFormat::Csv => csv::parse(reader, options, sink),
        ListFormat::Vics => vics::parse(reader, options, sink),
    }
}
