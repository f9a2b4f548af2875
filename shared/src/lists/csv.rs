//! CSV hash lists: comma separated, a header row naming the columns.
//!
//! Digest columns are `md5`, `sha1`, `sha256`, `pdq` (a row may fill several: one entry per
//! filled cell), or `hash` with an optional `algorithm` column (when absent or empty: the
//! import's algorithm if it names one, else inferred from the length among MD5, SHA-1 and
//! SHA-256; never PDQ). Optional `quality` (a PDQ hash's, 0–100, checked), `category`,
//! `list` (overrides the default list for its row) and `id`.
//! Header names are matched case-insensitively, ignoring spaces, `-` and `_`, so `SHA-1`,
//! `sha1_hash` and `Media ID` work too. Every row must have as many fields as the header.
//!
//! # Why the `csv` crate
//!
//! Splitting records is the `csv` crate's job, not ours: quoted fields (`"a, b"`, `""` for a
//! quote), quoted fields spanning lines (which spreadsheets write for a cell with a line
//! break), CRLF and LF line endings. A hand-written splitter got the line-spanning case
//! wrong, and would keep getting cases wrong that a well-used crate already gets right.
//! What this module adds around it:
//!
//! - **Bounded memory.** The crate keeps a record in memory until its end, so a 2 GB "line"
//!   (a binary file, a list without line breaks, a quote never closed) would be read whole.
//!   The crate therefore reads through [`Bounded`], which knows where the current record
//!   began (from [`csv::Reader::position`] before each record) and hands out at most
//!   [`MAX_LINE_BYTES`] (plus a line ending) of it: past that it fails the read, and the parse
//!   stops with "line is longer than 65536 bytes", having read barely more than 64 KiB of it.
//!   Blank lines between records are skipped by the crate without being kept, and do not
//!   count towards the bound.
//! - **Line numbers.** Errors name the line where the record starts, also for a record that
//!   spans lines: [`csv::Position::line`] before the record, plus the blank lines skipped.
//! - **Unterminated quotes.** The crate takes a quote never closed as running to the end of
//!   the file, silently (rust-csv #252), which would swallow every later row into one cell.
//!   [`Bounded`] ends the input with [`END_MARKER`]: a line break and one more byte. Read as
//!   a record of its own, the marker shows that every quote was closed and is dropped; taken
//!   into a record that began in the file, it shows that the file ended inside a quoted
//!   field, and the parse fails naming the line where that record starts.
//! - **A UTF-8 byte order mark** at the start of the file is dropped before the crate sees
//!   it, so a quoted first header cell is still read as quoted.
//!
//! Two tolerances of the old parser are kept by cleaning each cell ([`cell`]): white space
//! around a cell is dropped, and so are spaces before an opening quote (` "x"`), which the
//! crate, following RFC 4180, reads as text. (Such a padded quoted cell cannot hold a comma or
//! a line break; unpadded ones can.) Text after a closing quote (`"a"b`) is joined to the
//! cell by the crate (`ab`), where the old parser refused the line.

use std::borrow::Cow;
use std::io::{self, Read};
use std::str::FromStr;

use super::lines::{error_at, MAX_LINE_BYTES};
use super::{ListEntry, ListError, Location, ParseOptions, ParseSummary, Provenance};
use crate::digest::{Algorithm, Digest};

/// What a header column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Digest(Algorithm),
    Hash,
    Algorithm,
    /// A PDQ hash's quality (0–100), checked.
    Quality,
    Category,
    List,
    Id,
}

impl Role {
    fn from_header(name: &str) -> Option<Role> {
        let key: String = name
            .chars()
            .filter(|c| !matches!(c, ' ' | '\t' | '-' | '_' | '.'))
            .flat_map(char::to_lowercase)
            .collect();
        Some(match key.as_str() {
            "md5" | "md5hash" | "md5sum" => Role::Digest(Algorithm::Md5),
            "sha1" | "sha1hash" | "sha1sum" => Role::Digest(Algorithm::Sha1),
            "sha256" | "sha256hash" | "sha256sum" => Role::Digest(Algorithm::Sha256),
            "pdq" | "pdqhash" | "hashpdq" => Role::Digest(Algorithm::Pdq),
            "quality" | "pdqquality" => Role::Quality,
            "hash" | "digest" | "hashvalue" => Role::Hash,
            "algorithm" | "algo" | "hashalgorithm" | "hashtype" | "digestalgorithm" => {
                Role::Algorithm
            }
            "category" => Role::Category,
            "list" => Role::List,
            "id" | "entryid" | "mediaid" => Role::Id,
            _ => return None,
        })
    }
}

/// The columns of the header that matter, by index.
struct Columns {
    count: usize,
    names: Vec<String>,
    digests: Vec<(usize, Algorithm)>,
    hash: Option<usize>,
    algorithm: Option<usize>,
    quality: Option<usize>,
    /// What a `hash` cell is when no `algorithm` column says (the import's `--algorithm`).
    default_algorithm: Option<Algorithm>,
    category: Option<usize>,
    list: Option<usize>,
    id: Option<usize>,
}

impl Columns {
    fn from_header(
        fields: &[Cow<'_, str>],
        default_algorithm: Option<Algorithm>,
    ) -> Result<Columns, String> {
        let names: Vec<String> = fields.iter().map(|f| f.trim().to_string()).collect();
        let mut columns = Columns {
            count: names.len(),
            names: names.clone(),
            digests: Vec::new(),
            hash: None,
            algorithm: None,
            quality: None,
            default_algorithm,
            category: None,
            list: None,
            id: None,
        };
        let mut seen: Vec<(Role, usize)> = Vec::new();
        for (index, name) in names.iter().enumerate() {
            let Some(role) = Role::from_header(name) else {
                continue;
            };
            if let Some((_, first)) = seen.iter().find(|(r, _)| *r == role) {
                return Err(format!(
                    "columns {:?} and {:?} of the header mean the same thing",
                    names[*first], name
                ));
            }
            seen.push((role, index));
            match role {
                Role::Digest(alg) => columns.digests.push((index, alg)),
                Role::Hash => columns.hash = Some(index),
                Role::Algorithm => columns.algorithm = Some(index),
                Role::Quality => columns.quality = Some(index),
                Role::Category => columns.category = Some(index),
                Role::List => columns.list = Some(index),
                Role::Id => columns.id = Some(index),
            }
        }
        if columns.digests.is_empty() && columns.hash.is_none() {
            let found: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
            return Err(format!(
                "no digest column in the header (found {}; expected md5, sha1, sha256, pdq, or hash with an optional algorithm)",
                found.join(", ")
            ));
        }
        Ok(columns)
    }

    /// The names of the digest columns, for messages.
    fn digest_names(&self) -> String {
        let mut indexes: Vec<usize> = self.digests.iter().map(|(i, _)| *i).collect();
        indexes.extend(self.hash);
        indexes.sort_unstable();
        let names: Vec<String> = indexes
            .iter()
            .map(|&i| format!("{:?}", self.names[i]))
            .collect();
        names.join(", ")
    }

    /// The digests of one row, checked in full before any is handed on.
    fn row_digests(&self, cells: &[Cow<'_, str>]) -> Result<Vec<Digest>, String> {
        let mut digests = Vec::with_capacity(self.digests.len() + 1);
        for &(index, alg) in &self.digests {
            let cell = cells[index].trim();
            if cell.is_empty() {
                continue;
            }
            let digest = Digest::parse_hex_as(alg, cell)
                .map_err(|e| format!("column {:?}: {e}", self.names[index]))?;
            digests.push(digest);
        }
        if let Some(index) = self.hash {
            let cell = cells[index].trim();
            if !cell.is_empty() {
                let alg = match self.algorithm.map(|a| (a, cells[a].trim())) {
                    Some((a, name)) if !name.is_empty() => Some(
                        Algorithm::from_str(name)
                            .map_err(|e| format!("column {:?}: {e}", self.names[a]))?,
                    ),
                    _ => None,
                };
                let digest = match alg.or(self.default_algorithm) {
                    Some(alg) => Digest::parse_hex_as(alg, cell),
                    None => Digest::parse_hex(cell),
                }
                .map_err(|e| format!("column {:?}: {e}", self.names[index]))?;
                digests.push(digest);
            }
        }
        if let Some(index) = self.quality {
            let cell = cells[index].trim();
            if !cell.is_empty() {
                super::plain::check_quality(cell)
                    .map_err(|e| format!("column {:?}: {e}", self.names[index]))?;
            }
        }
        if digests.is_empty() {
            return Err(format!(
                "no digest in this row (digest columns {} are empty)",
                self.digest_names()
            ));
        }
        Ok(digests)
    }
}

pub(super) fn parse<R: Read>(
    reader: R,
    options: &ParseOptions,
    sink: &mut dyn FnMut(ListEntry) -> Result<(), String>,
) -> Result<ParseSummary, ListError> {
    let source = options.source_name.as_str();
    let at = |number: u64, reason: String| error_at(source, Location::Line(number), reason);
    let mut records = Records::new(reader, source);
    let mut columns: Option<Columns> = None;
    let mut summary = ParseSummary::default();
    while let Some(number) = records.next_record()? {
        let cells = records.cells();
        let Some(columns) = &columns else {
            columns = Some(
                Columns::from_header(&cells, options.algorithm)
                    .map_err(|reason| at(number, reason))?,
            );
            continue;
        };
        if cells.len() != columns.count {
            return Err(at(
                number,
                format!(
                    "expected {} fields as in the header, found {}",
                    columns.count,
                    cells.len()
                ),
            ));
        }
        let digests = columns
            .row_digests(&cells)
            .map_err(|reason| at(number, reason))?;
        let optional = |index: Option<usize>| {
            index
                .map(|i| cells[i].trim())
                .filter(|cell| !cell.is_empty())
                .map(str::to_string)
        };
        let provenance = Provenance {
            list: optional(columns.list).unwrap_or_else(|| options.default_list.clone()),
            id: optional(columns.id),
            category: optional(columns.category),
        };
        for digest in digests {
            sink(ListEntry {
                digest,
                provenance: provenance.clone(),
            })
            .map_err(|reason| at(number, reason))?;
            summary.entries += 1;
        }
    }
    if summary.entries == 0 {
        return Err(error_at(
            source,
            Location::File,
            "no digests found (empty list)",
        ));
    }
    Ok(summary)
}

/// A cell as the list means it: white space around it dropped, and a quoted value that had
/// spaces before its opening quote (which the `csv` crate keeps as text) unquoted.
fn cell(field: &str) -> Cow<'_, str> {
    let trimmed = field.trim();
    let padded_quote = field.starts_with([' ', '\t'])
        && trimmed.len() >= 2
        && trimmed.starts_with('"')
        && trimmed.ends_with('"');
    if padded_quote {
        Cow::Owned(trimmed[1..trimmed.len() - 1].replace("\"\"", "\""))
    } else {
        Cow::Borrowed(trimmed)
    }
}

/// Read buffer size of the `csv` reader.
const BUFFER_BYTES: usize = 64 * 1024;

/// The most bytes [`Bounded`] hands out of one record: [`MAX_LINE_BYTES`] and a `\r\n`.
const MAX_RECORD_BYTES: u64 = MAX_LINE_BYTES as u64 + 2;

/// What [`Bounded`] appends after the file: a line break, then a byte that is neither a
/// quote nor a line break, so that it is a record of its own unless a quote is left open.
const END_MARKER: &[u8] = b"\n-";

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The reader the `csv` crate reads the file through: it drops a leading byte order mark,
/// refuses to hand out more than [`MAX_RECORD_BYTES`] of the record being read, and appends
/// [`END_MARKER`] after the file. Offsets are of the bytes handed out (without the mark).
///
/// The `csv` reader reads through a buffer that it refills only once it has consumed all of
/// it. So when asked for more, every byte handed out has been parsed; and the bytes between
/// a record boundary and the last byte handed out are the tail of the last chunk, which is
/// kept to see where the next record really starts (after any blank lines).
struct Bounded<R> {
    inner: R,
    /// Whether the start of the file was checked for a byte order mark.
    head_checked: bool,
    /// The first bytes of the file (no byte order mark), read but not handed out yet.
    head: Vec<u8>,
    /// Bytes handed out so far.
    delivered: u64,
    /// How many bytes the file has (without a byte order mark), once its end was reached.
    file_len: Option<u64>,
    /// How much of [`END_MARKER`] was handed out.
    marker_sent: usize,
    /// The last chunk handed out.
    last_chunk: Vec<u8>,
    /// Where the record being read starts: its first byte that is not a blank line's `\n`.
    /// `None` while only blank lines were read since the record boundary.
    record_start: Option<u64>,
    /// Blank lines (`\n`) between the record boundary and [`Self::record_start`].
    skipped_lines: u64,
    /// Set when a read was refused because the record is too long.
    refused: bool,
}

impl<R: Read> Bounded<R> {
    fn new(inner: R) -> Self {
        Bounded {
            inner,
            head_checked: false,
            head: Vec::new(),
            delivered: 0,
            file_len: None,
            marker_sent: 0,
            last_chunk: Vec::with_capacity(BUFFER_BYTES),
            record_start: None,
            skipped_lines: 0,
            refused: false,
        }
    }

    /// A record begins at `boundary` (an offset handed out before, the `csv` reader's
    /// position between records).
    fn start_record(&mut self, boundary: u64) {
        self.record_start = None;
        self.skipped_lines = 0;
        let unread = self.delivered.saturating_sub(boundary) as usize;
        match self.last_chunk.len().checked_sub(unread) {
            Some(from) => {
                let tail = std::mem::take(&mut self.last_chunk);
                self.note(boundary, &tail[from..]);
                self.last_chunk = tail;
            }
            // Not expected; counting from the boundary only makes the bound stricter.
            None => self.record_start = Some(boundary),
        }
    }

    /// Look at `bytes`, handed out at offset `at`, for where the record starts.
    fn note(&mut self, at: u64, bytes: &[u8]) {
        if self.record_start.is_some() {
            return;
        }
        let blank = bytes.iter().take_while(|&&b| b == b'\n').count();
        self.skipped_lines += blank as u64;
        if blank < bytes.len() {
            self.record_start = Some(at + blank as u64);
        }
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => return result,
            }
        }
    }

    /// Bytes of the file, without a leading byte order mark; 0 at its end.
    fn read_file(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.head_checked {
            self.head_checked = true;
            let mut head = [0u8; 3];
            let mut n = 0;
            while n < head.len() {
                match self.read_inner(&mut head[n..])? {
                    0 => break,
                    k => n += k,
                }
            }
            if head[..n] != *BOM {
                self.head = head[..n].to_vec();
            }
        }
        if !self.head.is_empty() {
            let n = buf.len().min(self.head.len());
            buf[..n].copy_from_slice(&self.head[..n]);
            self.head.drain(..n);
            return Ok(n);
        }
        self.read_inner(buf)
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut room = buf.len();
        if let Some(start) = self.record_start {
            let left = (start + MAX_RECORD_BYTES).saturating_sub(self.delivered);
            if left == 0 {
                self.refused = true;
                return Err(io::Error::other("record too long"));
            }
            room = room.min(usize::try_from(left).unwrap_or(usize::MAX));
        }
        let buf = &mut buf[..room];
        let mut n = 0;
        if self.file_len.is_none() {
            n = self.read_file(buf)?;
            if n == 0 {
                self.file_len = Some(self.delivered);
            }
        }
        if self.file_len.is_some() {
            let marker = &END_MARKER[self.marker_sent..];
            n = buf.len().min(marker.len());
            buf[..n].copy_from_slice(&marker[..n]);
            self.marker_sent += n;
        }
        let at = self.delivered;
        self.delivered += n as u64;
        self.last_chunk.clear();
        self.last_chunk.extend_from_slice(&buf[..n]);
        self.note(at, &buf[..n]);
        Ok(n)
    }
}

/// The records of a CSV file, one at a time, with the line each starts on; blank lines (and
/// lines of only white space) skipped.
struct Records<'s, R> {
    csv: csv::Reader<Bounded<R>>,
    record: csv::StringRecord,
    source_name: &'s str,
    done: bool,
}

impl<'s, R: Read> Records<'s, R> {
    fn new(reader: R, source_name: &'s str) -> Self {
        let csv = csv::ReaderBuilder::new()
            // The header is found and checked here, after any blank lines.
            .has_headers(false)
            // A row with the wrong number of fields gets our message, naming the header.
            .flexible(true)
            // Only `\n` ends a record, as for the other list formats; a `\r` before it
            // stays in the last cell, and goes with the white space around every cell.
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(BUFFER_BYTES)
            .from_reader(Bounded::new(reader));
        Records {
            csv,
            record: csv::StringRecord::new(),
            source_name,
            done: false,
        }
    }

    fn error(&mut self, number: u64, reason: impl Into<String>) -> ListError {
        self.done = true;
        error_at(self.source_name, Location::Line(number), reason)
    }

    /// The line the next record starts on, or `None` at the end of the file. Its cells are
    /// then [`Self::cells`].
    fn next_record(&mut self) -> Result<Option<u64>, ListError> {
        while !self.done {
            let before = self.csv.position().clone();
            self.csv.get_mut().start_record(before.byte());
            let read = self.csv.read_record(&mut self.record);
            let bounded = self.csv.get_ref();
            let number = before.line() + bounded.skipped_lines;
            // The line the reader is on now: past the record's end, or where it stopped.
            let line_now = self.csv.position().line();
            match read {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let reason = match e.kind() {
                        csv::ErrorKind::Io(_) if bounded.refused => too_long(number, line_now),
                        csv::ErrorKind::Io(e) => format!("read error: {e}"),
                        csv::ErrorKind::Utf8 { err, .. } => format!(
                            "not valid UTF-8 (invalid byte in field {} at byte {} of the field)",
                            err.field() + 1,
                            err.valid_up_to() + 1
                        ),
                        _ => e.to_string(),
                    };
                    return Err(self.error(number, reason));
                }
            }
            let start = bounded.record_start.unwrap_or(before.byte());
            let end = self.csv.position().byte();
            if let Some(file_len) = bounded.file_len {
                if start >= file_len {
                    // The end marker as a record of its own: every quote was closed.
                    self.done = true;
                    break;
                }
                if end > file_len + 1 {
                    return Err(self.error(
                        number,
                        "unterminated quote (a quoted field of the record starting here runs to the end of the file)",
                    ));
                }
            }
            // Every record now ends with the `\n` after it (the end marker ends the last).
            let mut size = end.saturating_sub(start + 1);
            if self
                .record
                .iter()
                .next_back()
                .is_some_and(|f| f.ends_with('\r'))
            {
                size -= 1;
            }
            if size > MAX_LINE_BYTES as u64 {
                return Err(self.error(number, too_long(number, line_now.saturating_sub(1))));
            }
            if self.record.len() == 1 && self.record[0].trim().is_empty() {
                continue;
            }
            return Ok(Some(number));
        }
        Ok(None)
    }

    /// The cells of the record [`Self::next_record`] returned, cleaned by [`cell`].
    fn cells(&self) -> Vec<Cow<'_, str>> {
        self.record.iter().map(cell).collect()
    }
}

/// Why a record starting on line `first` and reaching line `last` is refused for its size.
fn too_long(first: u64, last: u64) -> String {
    if last <= first {
        format!("line is longer than {MAX_LINE_BYTES} bytes")
    } else {
        format!(
            "record is longer than {MAX_LINE_BYTES} bytes (a quoted field runs from this line to at least line {last}: is a closing quote missing?)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::lines::test_support::{
        collect, Endless, FailAfter, Trickle, MD5, SHA1, SHA256,
    };
    use super::*;

    fn options() -> ParseOptions {
        ParseOptions {
            source_name: "lists/x.csv".into(),
            default_list: "iwf".into(),
            algorithm: None,
        }
    }

    fn run<R: Read>(input: R) -> Result<(ParseSummary, Vec<ListEntry>), ListError> {
        collect(parse, input, &options())
    }

    fn ok(input: &str) -> Vec<ListEntry> {
        let (summary, entries) = run(input.as_bytes()).unwrap();
        assert_eq!(summary.entries, entries.len() as u64);
        assert_eq!(summary.skipped, 0);
        entries
    }

    fn err(input: &str) -> ListError {
        run(input.as_bytes()).unwrap_err()
    }

    fn entry(
        alg: Algorithm,
        hex: &str,
        list: &str,
        id: Option<&str>,
        cat: Option<&str>,
    ) -> ListEntry {
        ListEntry {
            digest: Digest::parse_hex_as(alg, hex).unwrap(),
            provenance: Provenance {
                list: list.into(),
                id: id.map(Into::into),
                category: cat.map(Into::into),
            },
        }
    }

    #[test]
    fn one_entry_per_filled_digest_column() {
        let input = format!(
            "id,md5,sha1,sha256,category\n\
             7,{MD5},{SHA1},{SHA256},A1\n\
             8,,{SHA1},,\n"
        );
        assert_eq!(
            ok(&input),
            vec![
                entry(Algorithm::Md5, MD5, "iwf", Some("7"), Some("A1")),
                entry(Algorithm::Sha1, SHA1, "iwf", Some("7"), Some("A1")),
                entry(Algorithm::Sha256, SHA256, "iwf", Some("7"), Some("A1")),
                entry(Algorithm::Sha1, SHA1, "iwf", Some("8"), None),
            ]
        );
    }

    #[test]
    fn header_aliases_case_and_bom_crlf_blank_lines() {
        let input = format!(
            "\u{feff} SHA-1 ,MD5Hash,Media_ID,Sha256_Hash,notes\r\n\r\n{},,m-1,,\"hello, world\"\r\n",
            SHA1.to_uppercase()
        );
        assert_eq!(
            ok(&input),
            vec![entry(Algorithm::Sha1, SHA1, "iwf", Some("m-1"), None)]
        );
    }

    #[test]
    fn hash_and_algorithm_columns() {
        let input = format!(
            "hash,algorithm\n\
             {MD5},md5\n\
             {SHA1},SHA-1\n\
             {SHA256},\n"
        );
        assert_eq!(
            ok(&input),
            vec![
                entry(Algorithm::Md5, MD5, "iwf", None, None),
                entry(Algorithm::Sha1, SHA1, "iwf", None, None),
                entry(Algorithm::Sha256, SHA256, "iwf", None, None),
            ]
        );
    }

    #[test]
    fn hash_without_algorithm_column_infers_from_length() {
        let input = format!("Hash\n{SHA256}\n{MD5}\n");
        let entries = ok(&input);
        assert_eq!(entries[0].digest.algorithm(), Algorithm::Sha256);
        assert_eq!(entries[1].digest.algorithm(), Algorithm::Md5);
    }

    #[test]
    fn algorithm_column_is_enforced() {
        let e = err(&format!("hash,algorithm\n{MD5},sha1\n"));
        assert_eq!(
            e.to_string(),
            format!("lists/x.csv:2: column \"hash\": not a sha1 digest: \"{MD5}\" (32 hex characters, expected 40)")
        );
        let e = err(&format!("hash,algorithm\n{MD5},crc32\n"));
        assert_eq!(
            e.to_string(),
            "lists/x.csv:2: column \"algorithm\": unknown digest algorithm \"crc32\" (expected md5, sha1, sha256 or pdq)"
        );
    }

    #[test]
    fn list_column_overrides_the_default() {
        let input = format!("sha1,list\n{SHA1},ncmec\n{SHA1},\n");
        assert_eq!(
            ok(&input),
            vec![
                entry(Algorithm::Sha1, SHA1, "ncmec", None, None),
                entry(Algorithm::Sha1, SHA1, "iwf", None, None),
            ]
        );
    }

    #[test]
    fn quoted_fields() {
        let input = format!(
            "\"md5\",\"category\",id\n\
             \"{MD5}\",\"A, \"\"B\"\"\" , \"\"\n"
        );
        assert_eq!(
            ok(&input),
            vec![entry(Algorithm::Md5, MD5, "iwf", None, Some("A, \"B\""))]
        );
    }

    /// Every record of `input` as the parser sees it: its first line and its cells.
    fn records(input: &str) -> Result<Vec<(u64, Vec<String>)>, ListError> {
        let mut records = Records::new(input.as_bytes(), "t.csv");
        let mut out = Vec::new();
        while let Some(line) = records.next_record()? {
            let cells = records.cells().iter().map(|c| c.to_string()).collect();
            out.push((line, cells));
        }
        Ok(out)
    }

    /// The cells of `line`, the only record of its input.
    fn cells(line: &str) -> Result<Vec<String>, String> {
        match records(line) {
            Ok(mut all) if all.len() == 1 => Ok(all.remove(0).1),
            Ok(all) => panic!("{line:?} is {} records", all.len()),
            Err(e) => Err(e.reason),
        }
    }

    #[test]
    fn record_cases() {
        assert_eq!(cells("a,b,,c").unwrap(), vec!["a", "b", "", "c"]);
        // A blank line is no record (a header row of one empty name was never useful).
        assert_eq!(records("").unwrap(), vec![]);
        assert_eq!(cells("a,").unwrap(), vec!["a", ""]);
        assert_eq!(cells(r#""x,y" ,"",z"#).unwrap(), vec!["x,y", "", "z"]);
        assert_eq!(cells("\"\"\"\"").unwrap(), vec!["\""]);
        assert_eq!(cells("\"\"\"\"\"\"").unwrap(), vec!["\"\""]);
        // The csv crate joins text after a closing quote to the field (the old parser refused
        // the line); a digest cell written so is still refused as not hex.
        assert_eq!(cells(r#"a,"b"c"#).unwrap(), vec!["a", "bc"]);
        assert_eq!(
            cells(r#"a,"b"#).unwrap_err(),
            "unterminated quote (a quoted field of the record starting here runs to the end of the file)"
        );
    }

    #[test]
    fn bad_digest_names_line_and_column() {
        let input = format!("md5,sha1\n{MD5},{SHA1}\n,xyz\n");
        assert_eq!(
            err(&input).to_string(),
            "lists/x.csv:3: column \"sha1\": not a hex digest: \"xyz\" (contains a character that is not 0-9 or a-f)"
        );
    }

    #[test]
    fn wrong_length_in_a_column() {
        let input = format!("sha1\n{MD5}\n");
        assert_eq!(
            err(&input).to_string(),
            format!("lists/x.csv:2: column \"sha1\": not a sha1 digest: \"{MD5}\" (32 hex characters, expected 40)")
        );
    }

    #[test]
    fn a_bad_cell_stops_the_row_before_any_entry() {
        let input = format!("md5,sha1\n{MD5},nothex\n");
        let mut entries = 0;
        let e = parse(input.as_bytes(), &options(), &mut |_| {
            entries += 1;
            Ok(())
        })
        .unwrap_err();
        assert_eq!(e.location, Location::Line(2));
        assert_eq!(entries, 0);
    }

    #[test]
    fn header_without_digest_column() {
        let e = err("\n\nname,size\nfoo,12\n");
        assert_eq!(
            e.to_string(),
            "lists/x.csv:3: no digest column in the header (found \"name\", \"size\"; expected md5, sha1, sha256, pdq, or hash with an optional algorithm)"
        );
        // An algorithm column alone names no digest.
        assert_eq!(err("algorithm,id\nmd5,1\n").location, Location::Line(1));
    }

    #[test]
    fn duplicate_header_column() {
        let e = err(&format!("sha1,SHA-1\n{SHA1},{SHA1}\n"));
        assert_eq!(e.location, Location::Line(1));
        assert_eq!(
            e.reason,
            "columns \"sha1\" and \"SHA-1\" of the header mean the same thing"
        );
    }

    #[test]
    fn wrong_field_count() {
        let e = err(&format!("md5,id\n{MD5},1\n{MD5},2,extra\n"));
        assert_eq!(
            e.to_string(),
            "lists/x.csv:3: expected 2 fields as in the header, found 3"
        );
        let e = err(&format!("md5,id\n{MD5}\n"));
        assert_eq!(
            e.to_string(),
            "lists/x.csv:2: expected 2 fields as in the header, found 1"
        );
    }

    #[test]
    fn row_with_all_digests_empty() {
        let e = err(&format!("md5,id,sha1\n{MD5},1,\n,2,\n"));
        assert_eq!(
            e.to_string(),
            "lists/x.csv:3: no digest in this row (digest columns \"md5\", \"sha1\" are empty)"
        );
    }

    #[test]
    fn unterminated_quote_is_refused_naming_the_line_its_record_starts() {
        // Once refused as spanning lines, now a field running to the end of the file.
        let e = err(&format!("md5,category\n{MD5},\"spans\nlines\n"));
        assert_eq!(
            e.to_string(),
            "lists/x.csv:2: unterminated quote (a quoted field of the record starting here runs to the end of the file)"
        );
        let e = err("\"md5,id\n");
        assert_eq!(e.location, Location::Line(1));
        // Rows after the open quote are not swallowed into its cell.
        let e = err(&format!(
            "md5,category\n{MD5},ok\n\n{MD5},\"never closed\n{MD5},x\r\n{MD5},y\n"
        ));
        assert_eq!(e.location, Location::Line(4));
        // Without a line break at the end, and in a CRLF file.
        assert_eq!(err(&format!("md5\r\n\"{MD5}")).location, Location::Line(2));
        assert_eq!(
            err(&format!("md5\r\n{MD5}\r\n\"{MD5}\r\n")).location,
            Location::Line(3)
        );
        // An escaped quote is not a closing one.
        assert_eq!(
            err(&format!("md5,id\n{MD5},\"a\"\"")).location,
            Location::Line(2)
        );
    }

    #[test]
    fn header_only_and_empty_files() {
        for input in ["md5,sha1\n", "md5\n\n\n", "", "\n  \n"] {
            let e = err(input);
            assert_eq!(e.location, Location::File, "{input:?}");
            assert_eq!(e.to_string(), "lists/x.csv: no digests found (empty list)");
        }
    }

    #[test]
    fn sink_error_is_reported_at_the_row() {
        let input = format!("md5,sha1\n{MD5},\n{MD5},{SHA1}\n");
        let mut calls = 0;
        let e = parse(input.as_bytes(), &options(), &mut |_| {
            calls += 1;
            if calls == 3 {
                Err("conflicting category".into())
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "lists/x.csv:3: conflicting category");
    }

    #[test]
    fn a_2_gib_line_is_refused_after_a_bounded_read() {
        // As a header and as a data row.
        let mut source = Endless::two_gib();
        let e = run(&mut source).unwrap_err();
        assert_eq!(
            e.to_string(),
            "lists/x.csv:1: line is longer than 65536 bytes"
        );
        assert!(source.pulled < 256 * 1024, "pulled {} bytes", source.pulled);

        let mut source = Endless::two_gib();
        let e = run(std::io::Read::chain(&b"md5\n"[..], &mut source)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "lists/x.csv:2: line is longer than 65536 bytes"
        );
        assert!(source.pulled < 256 * 1024, "pulled {} bytes", source.pulled);
    }

    /// `prefix`, then `unit` over and over up to `total` bytes, never held whole; counts what
    /// was pulled.
    struct Repeat {
        prefix: Vec<u8>,
        unit: Vec<u8>,
        total: u64,
        pulled: u64,
    }

    impl Read for Repeat {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let mut n = 0;
            while n < buf.len() && self.pulled < self.total {
                let at = self.pulled as usize;
                buf[n] = match self.prefix.get(at) {
                    Some(&b) => b,
                    None => self.unit[(at - self.prefix.len()) % self.unit.len()],
                };
                n += 1;
                self.pulled += 1;
            }
            Ok(n)
        }
    }

    #[test]
    fn quoted_fields_spanning_lines() {
        // As a spreadsheet writes a cell with a line break: the row runs over three lines.
        let input = format!(
            "id,md5,category\n\
             \"m-1\nsecond line\",{MD5},\"A\nB\"\n\
             8,{MD5},\"C, \"\"D\"\"\"\n"
        );
        assert_eq!(
            ok(&input),
            vec![
                entry(
                    Algorithm::Md5,
                    MD5,
                    "iwf",
                    Some("m-1\nsecond line"),
                    Some("A\nB")
                ),
                entry(Algorithm::Md5, MD5, "iwf", Some("8"), Some("C, \"D\"")),
            ]
        );
        // Lines after it keep their numbers.
        let e = err(&format!("{input}9,xyz,\n"));
        assert_eq!(
            e.to_string(),
            "lists/x.csv:6: column \"md5\": not a hex digest: \"xyz\" (contains a character that is not 0-9 or a-f)"
        );
        // So does a header spanning lines.
        let e = err(&format!("\"md5\nhash\",id\n{MD5},1\n"));
        assert_eq!(e.location, Location::Line(1));
    }

    #[test]
    fn an_error_in_a_record_spanning_lines_names_the_line_it_starts_on() {
        let e = err(&format!(
            "md5,category\n{MD5},ok\n\n\"bad\",\"multi\nline\ncategory\"\n"
        ));
        assert_eq!(
            e.to_string(),
            "lists/x.csv:4: column \"md5\": not a md5 digest: \"bad\" (3 hex characters, expected 32)"
        );

        let e = err(&format!("md5,category\n{MD5},\"a\nb\",extra\n"));
        assert_eq!(
            e.to_string(),
            "lists/x.csv:2: expected 2 fields as in the header, found 3"
        );

        let input = format!("md5,category\n{MD5},\"a\nb\"\n{MD5},\"c\nd\"\n");
        let mut calls = 0;
        let e = parse(input.as_bytes(), &options(), &mut |_| {
            calls += 1;
            if calls == 2 {
                Err("conflicting category".into())
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "lists/x.csv:4: conflicting category");
    }

    #[test]
    fn crlf_files() {
        let input =
            format!("md5,id,category\r\n\r\n{MD5},1,\"A\r\nB\"\r\n\r\n{MD5},\"2\",\"\"\r\n");
        assert_eq!(
            ok(&input),
            vec![
                entry(Algorithm::Md5, MD5, "iwf", Some("1"), Some("A\r\nB")),
                entry(Algorithm::Md5, MD5, "iwf", Some("2"), None),
            ]
        );
        // A last line without its CRLF, and a blank line of only `\r`.
        assert_eq!(ok(&format!("md5\r\n\r\n{MD5}")).len(), 1);
        let e = err(&format!("{input}{MD5},3,\"x\"\r\n,4,\r\n"));
        assert_eq!(
            e.to_string(),
            "lists/x.csv:8: no digest in this row (digest columns \"md5\" are empty)"
        );
    }

    #[test]
    fn quotes_with_commas_and_quoted_digests() {
        let input = format!(
            "\"sha1\",\"md5\",\"id\",\"category\"\n\
             \"{}\",\"{MD5}\",\"1,2\",\"A, B\"\n\
             \x20\"{SHA1}\" ,\" {MD5} \",\"\",\n",
            SHA1.to_uppercase()
        );
        assert_eq!(
            ok(&input),
            vec![
                entry(Algorithm::Sha1, SHA1, "iwf", Some("1,2"), Some("A, B")),
                entry(Algorithm::Md5, MD5, "iwf", Some("1,2"), Some("A, B")),
                entry(Algorithm::Sha1, SHA1, "iwf", None, None),
                entry(Algorithm::Md5, MD5, "iwf", None, None),
            ]
        );
        // A quoted digest is still checked.
        let e = err(&format!("md5\n\"{SHA1}\"\n"));
        assert_eq!(e.location, Location::Line(2));
        assert!(e.reason.contains("not a md5 digest"), "{e}");
    }

    #[test]
    fn ragged_rows_are_refused() {
        // Fewer or more fields than the header: refused naming the row, as ever. A quoted
        // comma is no separator; a trailing comma is an extra (empty) field.
        assert_eq!(ok(&format!("md5,category\n{MD5},\"a,b\"\n")).len(), 1);
        for (row, found) in [
            (MD5.to_string(), 1),
            (format!("{MD5},a,"), 3),
            (format!("{MD5},\"a\",\"b\""), 3),
            (",,".to_string(), 3),
        ] {
            let e = err(&format!("md5,category\n{MD5},ok\n{row}\n"));
            assert_eq!(
                e.to_string(),
                format!("lists/x.csv:3: expected 2 fields as in the header, found {found}"),
                "{row:?}"
            );
        }
    }

    #[test]
    fn bom_before_a_quoted_header_and_interrupted_short_reads() {
        let input = format!("\u{feff}\"md5\",\"id\"\r\n{MD5},\"1\"\r\n");
        assert_eq!(
            ok(&input),
            vec![entry(Algorithm::Md5, MD5, "iwf", Some("1"), None)]
        );
        let (_, entries) = run(Trickle {
            data: input.as_bytes(),
            interrupt: false,
        })
        .unwrap();
        assert_eq!(entries, ok(&input));
        // A byte order mark anywhere else is text.
        let e = err(&format!("md5\n\u{feff}{MD5}\n"));
        assert_eq!(e.location, Location::Line(2));
    }

    #[test]
    fn read_errors_and_invalid_utf8_name_the_line() {
        let data = format!("md5\n{MD5}\n");
        let e = run(FailAfter {
            data: data.as_bytes(),
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "lists/x.csv:3: read error: disk on fire");

        let mut input = format!("md5,id\n{MD5},\"a\nb").into_bytes();
        input.extend_from_slice(b"\xFFc\"\n");
        let e = run(&input[..]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "lists/x.csv:2: not valid UTF-8 (invalid byte in field 2 at byte 4 of the field)"
        );
    }

    #[test]
    fn a_record_of_the_limit_is_accepted_and_one_byte_more_is_not() {
        // `MD5,` and a category filling the line to exactly the limit.
        let row = |len: usize, ending: &str| {
            let category = "c".repeat(len - MD5.len() - 1);
            format!("md5,category\n{MD5},{category}{ending}")
        };
        for ending in ["\n", "\r\n", ""] {
            assert_eq!(ok(&row(MAX_LINE_BYTES, ending)).len(), 1, "{ending:?}");
            assert_eq!(
                err(&row(MAX_LINE_BYTES + 1, ending)).to_string(),
                "lists/x.csv:2: line is longer than 65536 bytes",
                "{ending:?}"
            );
        }
        // A record spanning lines is bounded as a whole: `MD5,"`, a body, `"`.
        let spanning = |len: usize| {
            let body = "c\n".repeat(len / 2) + &"c".repeat(len % 2);
            format!("md5,category\n{MD5},\"{body}\"\n")
        };
        let body = MAX_LINE_BYTES - MD5.len() - 3;
        assert_eq!(ok(&spanning(body)).len(), 1);
        let over = body + 1;
        assert_eq!(
            err(&spanning(over)).to_string(),
            format!(
                "lists/x.csv:2: record is longer than 65536 bytes (a quoted field runs from this line to at least line {}: is a closing quote missing?)",
                2 + over / 2
            )
        );
        let e = err(&spanning(10 * MAX_LINE_BYTES));
        assert_eq!(e.location, Location::Line(2));
        assert!(
            e.reason.starts_with("record is longer than 65536 bytes"),
            "{e}"
        );
    }

    #[test]
    fn a_2_gib_line_after_the_header_is_refused_having_read_barely_past_the_limit() {
        let mut source = Endless::two_gib();
        let e = run(std::io::Read::chain(&b"\n\nmd5,id\n"[..], &mut source)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "lists/x.csv:4: line is longer than 65536 bytes"
        );
        assert!(
            source.pulled <= MAX_LINE_BYTES as u64 + 16,
            "pulled {} bytes",
            source.pulled
        );

        // The same for a quote never closed in a 2 GiB list: refused at the line it opens.
        let mut source = Repeat {
            prefix: format!("md5,category\n{MD5},ok\n{MD5},\"open\n").into_bytes(),
            unit: format!("{MD5},more\n").into_bytes(),
            total: 2 << 30,
            pulled: 0,
        };
        let e = run(&mut source).unwrap_err();
        assert_eq!(e.location, Location::Line(3));
        assert!(
            e.reason.starts_with("record is longer than 65536 bytes (a quoted field runs from this line to at least line "),
            "{e}"
        );
        assert!(
            source.pulled <= 2 * MAX_LINE_BYTES as u64,
            "pulled {} bytes",
            source.pulled
        );
    }

    #[test]
    fn blank_lines_between_records_do_not_count_towards_the_bound() {
        let blank = "\n".repeat(3 * MAX_LINE_BYTES);
        let input = format!("md5\n{blank}{MD5}\n{blank}\n\r\n{MD5}\n");
        assert_eq!(ok(&input).len(), 2);
        let e = err(&format!("{input}{blank}xyz\n"));
        assert_eq!(e.location, Location::Line(9 * MAX_LINE_BYTES as u64 + 6));
    }

    #[test]
    fn pdq_column_with_quality_and_hash_column_with_the_imports_algorithm() {
        let pdq = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
        let entries = ok(&format!(
            "id,md5,pdq,quality\n7,{MD5},{pdq},100\n8,,{pdq},\n"
        ));
        let got: Vec<_> = entries
            .iter()
            .map(|e| (e.digest.algorithm(), e.provenance.id.clone().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                (Algorithm::Md5, "7".to_string()),
                (Algorithm::Pdq, "7".to_string()),
                (Algorithm::Pdq, "8".to_string())
            ]
        );
        let e = err(&format!("pdq,quality\n{pdq},-3\n"));
        assert_eq!(
            e.to_string(),
            "lists/x.csv:2: column \"quality\": PDQ quality \"-3\" is not an integer from 0 to 100"
        );
        // A `hash` column is PDQ only when the import (or an algorithm column) says so.
        assert_eq!(
            ok(&format!("hash\n{pdq}\n"))[0].digest.algorithm(),
            Algorithm::Sha256
        );
        let as_pdq = ParseOptions {
            algorithm: Some(Algorithm::Pdq),
            ..options()
        };
        let (_, entries) = collect(parse, format!("hash\n{pdq}\n").as_bytes(), &as_pdq).unwrap();
        assert_eq!(entries[0].digest.algorithm(), Algorithm::Pdq);
        let named = ok(&format!("hash,algorithm\n{pdq},PDQ\n"));
        assert_eq!(named[0].digest.algorithm(), Algorithm::Pdq);
    }
}
