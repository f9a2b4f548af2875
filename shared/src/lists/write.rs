//! Writing hash lists in the formats hashgate reads, so that what one provider confirmed
//! imports directly at another (`hashgate lists import`).
//!
//! A [`ListWriter`] streams entries to any [`Write`] the caller hands in (the core opens no
//! file). The shapes are exactly what the readers in this module accept:
//!
//! - **plain**: one lowercase hex digest per line, nothing else. Plain lists carry no
//!   provenance: the entry id and category are dropped, and the list name is the one given at
//!   import (`--list`, or the file name).
//! - **CSV**: the header `md5,sha1,sha256,pdq,category,id`, then one row per record: the record's
//!   digests in their columns (the others empty), its category and its id (empty when none).
//!   Fields are quoted only where needed (a comma, a quote, a line break), quotes doubled.
//!   There is no `list` column, so the list name is the one given at import — unless the
//!   writer was made [`with_lists`](ListWriter::with_lists): then the header is
//!   `md5,sha1,sha256,pdq,list,category,id` and each row names its list, which the reader takes
//!   row by row (an export of several lists with their provenance). PDQ hashes go in the
//!   `pdq` column; plain and VICS lists cannot carry them, so those writers leave them out
//!   and count them (`WriteSummary::pdq_left_out`).
//! - **VICS**: a Project VIC / VICS 2.0 JSON document,
//!   `{"@odata.context":"…/2.0.xml/US/$metadata#Media","value":[…]}`, one media record per
//!   line with `MediaID` (the entry id, a string), `Category` (a string) and `MD5`, `SHA1`,
//!   `SHA256` (those it has). VICS has no list name: it is the one given at import.
//!
//! A record is one id and category with up to one digest per algorithm: consecutive entries
//! with the same provenance and algorithms in the order MD5, SHA-1, SHA-256 share one CSV row
//! or media record (a case's digests, typically); anything else starts a new record. So a
//! list written here reads back as the same entries in the same order.
//!
//! Entries the readers could not give back unchanged are refused ([`WriteError::Entry`])
//! rather than written differently: an id or category that is empty or has white space at
//! either end (readers trim cells), and anything [`check_entry`] refuses (an over-long id or
//! category), since no store would import it.

use std::io::{self, Write};

use super::{ListEntry, ListFormat, Provenance};
use crate::digest::{Algorithm, Digest};
use crate::store::check_entry;

/// The `@odata.context` of the VICS documents written here (VICS 2.0, media records).
pub const VICS_CONTEXT: &str =
    "http://github.com/ICMEC/ProjectVic/DataModels/2.0.xml/US/$metadata#Media";

/// The CSV header written here.
pub const CSV_HEADER: &str = "md5,sha1,sha256,pdq,category,id";
/// The CSV header of a writer [`with_lists`](ListWriter::with_lists).
pub const CSV_HEADER_WITH_LISTS: &str = "md5,sha1,sha256,pdq,list,category,id";

/// Why a list could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The entry (1-based, in the order handed in) cannot be written so that it reads back.
    #[error("entry {index} ({digest}): {reason}")]
    Entry {
        index: u64,
        digest: String,
        reason: String,
    },
    #[error("{0} lists cannot name the list of each entry: write one list at a time, or CSV")]
    NoListColumn(&'static str),
    #[error("write error: {0}")]
    Io(#[from] io::Error),
}

/// What a finished write produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Entries written (each reads back as one entry).
    pub entries: u64,
    /// Lines of a plain list, rows of a CSV list, media records of a VICS list.
    pub records: u64,
    /// PDQ hashes not written: only CSV lists carry them.
    pub pdq_left_out: u64,
}

/// One record being gathered: a provenance and its digests by algorithm.
struct Record {
    provenance: Provenance,
    digests: [Option<Digest>; 4],
    /// The slot of the last digest added; a next one must come after it.
    last: usize,
}

fn slot(alg: Algorithm) -> usize {
    match alg {
        Algorithm::Md5 => 0,
        Algorithm::Sha1 => 1,
        Algorithm::Sha256 => 2,
        Algorithm::Pdq => 3,
    }
}

/// Streams list entries to `out` in one format. Call [`ListWriter::finish`] at the end: it
/// writes the last record and the format's closing, and flushes.
pub struct ListWriter<W: Write> {
    out: W,
    format: ListFormat,
    pending: Option<Record>,
    summary: WriteSummary,
    started: bool,
    lists: bool,
}

impl<W: Write> ListWriter<W> {
    pub fn new(out: W, format: ListFormat) -> Self {
        ListWriter {
            out,
            format,
            pending: None,
            summary: WriteSummary::default(),
            started: false,
            lists: false,
        }
    }

    /// Name each record's list: a CSV writer gets a `list` column. Plain and VICS lists
    /// cannot carry a list name; for them this is refused.
    pub fn with_lists(mut self) -> Result<Self, WriteError> {
        if self.format != ListFormat::Csv {
            return Err(WriteError::NoListColumn(self.format.name()));
        }
        self.lists = true;
        Ok(self)
    }

    /// Add one entry. An entry that could not be read back unchanged is refused and nothing
    /// of it is written; the writer can go on.
    pub fn entry(&mut self, entry: &ListEntry) -> Result<(), WriteError> {
        let index = self.summary.entries + 1;
        // A plain list's 64 hex digits read back as SHA-256, and VICS has no PDQ field: PDQ
        // hashes go to CSV lists only, and other formats leave them out (counted).
        if entry.digest.algorithm() == Algorithm::Pdq && self.format != ListFormat::Csv {
            self.summary.pdq_left_out += 1;
            return Ok(());
        }
        writable(&entry.provenance)
            .and_then(|()| {
                match self.lists && entry.provenance.list.trim() != entry.provenance.list {
                    true => Err(format!(
                        "list name {:?} has white space at either end (readers drop it)",
                        entry.provenance.list
                    )),
                    false => Ok(()),
                }
            })
            .map_err(|reason| WriteError::Entry {
                index,
                digest: format!("{} {}", entry.digest.algorithm(), entry.digest.to_hex()),
                reason,
            })?;
        self.start()?;
        let at = slot(entry.digest.algorithm());
        let joins = self.format != ListFormat::Plain
            && self
                .pending
                .as_ref()
                .is_some_and(|r| r.provenance == entry.provenance && at > r.last);
        if joins {
            if let Some(r) = self.pending.as_mut() {
                r.digests[at] = Some(entry.digest);
                r.last = at;
            }
        } else {
            self.flush_record()?;
            let mut digests = [None; 4];
            digests[at] = Some(entry.digest);
            self.pending = Some(Record {
                provenance: entry.provenance.clone(),
                digests,
                last: at,
            });
        }
        self.summary.entries += 1;
        Ok(())
    }

    /// Write what is left and the format's closing; flush; hand back the writer.
    pub fn finish(mut self) -> Result<(W, WriteSummary), WriteError> {
        self.start()?;
        self.flush_record()?;
        if self.format == ListFormat::Vics {
            let close: &[u8] = if self.summary.records == 0 {
                b"]}\n"
            } else {
                b"\n]}\n"
            };
            self.out.write_all(close)?;
        }
        self.out.flush()?;
        Ok((self.out, self.summary))
    }

    /// The format's opening, once.
    fn start(&mut self) -> io::Result<()> {
        if std::mem::replace(&mut self.started, true) {
            return Ok(());
        }
        match self.format {
            ListFormat::Plain => Ok(()),
            ListFormat::Csv if self.lists => writeln!(self.out, "{CSV_HEADER_WITH_LISTS}"),
            ListFormat::Csv => writeln!(self.out, "{CSV_HEADER}"),
            ListFormat::Vics => {
                self.out.write_all(b"{\"@odata.context\":")?;
                serde_json::to_writer(&mut self.out, VICS_CONTEXT)?;
                self.out.write_all(b",\"value\":[")
            }
        }
    }

    /// Write the pending record, if any.
    fn flush_record(&mut self) -> io::Result<()> {
        let Some(r) = self.pending.take() else {
            return Ok(());
        };
        let first = self.summary.records == 0;
        self.summary.records += 1;
        match self.format {
            ListFormat::Plain => {
                for d in r.digests.iter().flatten() {
                    writeln!(self.out, "{}", d.to_hex())?;
                }
                Ok(())
            }
            ListFormat::Csv => {
                let hex = |i: usize| r.digests[i].map(|d| d.to_hex()).unwrap_or_default();
                let mut fields = vec![hex(0), hex(1), hex(2), hex(3)];
                if self.lists {
                    fields.push(csv_field(&r.provenance.list));
                }
                fields.push(csv_field(r.provenance.category.as_deref().unwrap_or("")));
                fields.push(csv_field(r.provenance.id.as_deref().unwrap_or("")));
                writeln!(self.out, "{}", fields.join(","))
            }
            ListFormat::Vics => {
                self.out.write_all(if first { b"\n{" } else { b",\n{" })?;
                let mut fields: Vec<(&str, &str)> = Vec::new();
                if let Some(id) = &r.provenance.id {
                    fields.push(("MediaID", id));
                }
                if let Some(category) = &r.provenance.category {
                    fields.push(("Category", category));
                }
                let hexes: Vec<(&str, String)> = [("MD5", 0), ("SHA1", 1), ("SHA256", 2)]
                    .into_iter()
                    .filter_map(|(name, i)| r.digests[i].map(|d| (name, d.to_hex())))
                    .collect();
                fields.extend(hexes.iter().map(|(name, hex)| (*name, hex.as_str())));
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        self.out.write_all(b",")?;
                    }
                    serde_json::to_writer(&mut self.out, name)?;
                    self.out.write_all(b":")?;
                    serde_json::to_writer(&mut self.out, value)?;
                }
                self.out.write_all(b"}")
            }
        }
    }
}

/// Write `entries` as a whole list in `format` to `out`.
pub fn write_list<'a, W: Write>(
    out: W,
    format: ListFormat,
    entries: impl IntoIterator<Item = &'a ListEntry>,
) -> Result<WriteSummary, WriteError> {
    let mut writer = ListWriter::new(out, format);
    for entry in entries {
        writer.entry(entry)?;
    }
    Ok(writer.finish()?.1)
}

/// Whether the readers would give this provenance back unchanged (the list name is not
/// written, but must still be one a store accepts).
fn writable(p: &Provenance) -> Result<(), String> {
    check_entry(p).map_err(|e| e.to_string())?;
    for (what, value) in [("entry id", &p.id), ("category", &p.category)] {
        let Some(value) = value else { continue };
        if value.is_empty() {
            return Err(format!("empty {what} (readers take it for none)"));
        }
        if value.trim() != value {
            return Err(format!(
                "{what} {value:?} has white space at either end (readers drop it)"
            ));
        }
    }
    Ok(())
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::super::lines::test_support::{MD5, SHA1, SHA256};

    #[test]
    fn a_csv_with_lists_keeps_each_entrys_list() {
        let mut a = entry(Algorithm::Md5, MD5, Some("7"), Some("A1"));
        a.provenance.list = "ncmec, hashes".into();
        let mut b = entry(Algorithm::Sha1, SHA1, None, None);
        b.provenance.list = "iwf".into();
        let mut out = Vec::new();
        let mut w = ListWriter::new(&mut out, ListFormat::Csv)
            .with_lists()
            .unwrap();
        w.entry(&a).unwrap();
        w.entry(&b).unwrap();
        w.finish().unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(CSV_HEADER_WITH_LISTS), "{text}");
        let options = ParseOptions {
            source_name: "export".into(),
            default_list: "from-partner".into(),
            algorithm: None,
        };
        let mut read = Vec::new();
        parse(text.as_bytes(), ListFormat::Csv, &options, &mut |e| {
            read.push(e);
            Ok(())
        })
        .unwrap();
        assert_eq!(read, [a, b]);
        for format in [ListFormat::Plain, ListFormat::Vics] {
            let err = ListWriter::new(Vec::new(), format)
                .with_lists()
                .err()
                .unwrap();
            assert!(err.to_string().contains("one list at a time"), "{err}");
        }
    }
    use super::super::{parse, ParseOptions};
    use super::*;

    fn entry(alg: Algorithm, hex: &str, id: Option<&str>, category: Option<&str>) -> ListEntry {
        ListEntry {
            digest: Digest::parse_hex_as(alg, hex).unwrap(),
            provenance: Provenance {
                list: "own-confirmed".into(),
                id: id.map(Into::into),
                category: category.map(Into::into),
            },
        }
    }

    fn write(format: ListFormat, entries: &[ListEntry]) -> (String, WriteSummary) {
        let mut out = Vec::new();
        let summary = write_list(&mut out, format, entries).unwrap();
        (String::from_utf8(out).unwrap(), summary)
    }

    /// Write, then read back with the list name an importer gives.
    fn round_trip(format: ListFormat, entries: &[ListEntry]) -> Vec<ListEntry> {
        let (text, summary) = write(format, entries);
        assert_eq!(summary.entries, entries.len() as u64);
        let options = ParseOptions {
            source_name: "export".into(),
            default_list: "from-partner".into(),
            algorithm: None,
        };
        let mut read = Vec::new();
        let parsed = parse(text.as_bytes(), format, &options, &mut |e| {
            read.push(e);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{format} did not read back: {e}\n{text}"));
        assert_eq!(parsed.entries, entries.len() as u64);
        read
    }

    /// `entries` as they read back: the importer's list name, no provenance for plain.
    fn expected(format: ListFormat, entries: &[ListEntry]) -> Vec<ListEntry> {
        entries
            .iter()
            .map(|e| ListEntry {
                digest: e.digest,
                provenance: match format {
                    ListFormat::Plain => Provenance {
                        list: "from-partner".into(),
                        id: None,
                        category: None,
                    },
                    _ => Provenance {
                        list: "from-partner".into(),
                        ..e.provenance.clone()
                    },
                },
            })
            .collect()
    }

    fn awkward() -> Vec<ListEntry> {
        vec![
            entry(Algorithm::Md5, MD5, Some("case-1"), Some("A1")),
            entry(Algorithm::Sha1, SHA1, Some("case-1"), Some("A1")),
            entry(Algorithm::Sha256, SHA256, Some("case-1"), Some("A1")),
            // Same id, algorithms out of order: a record of its own.
            entry(
                Algorithm::Md5,
                SHA256.get(..32).unwrap(),
                Some("case-1"),
                Some("A1"),
            ),
            entry(
                Algorithm::Sha256,
                &SHA256.replace('a', "b"),
                Some("a,b"),
                Some("\"B2\""),
            ),
            entry(
                Algorithm::Sha1,
                &SHA1.replace('a', "c"),
                Some("line\nbreak\r\nand cr"),
                Some("x, \"y\""),
            ),
            entry(
                Algorithm::Md5,
                &MD5.replace('9', "0"),
                Some("ünïcødé ✓ 事例"),
                Some("B1"),
            ),
            entry(Algorithm::Md5, &MD5.replace('0', "1"), None, None),
            entry(
                Algorithm::Sha1,
                &SHA1.replace('9', "8"),
                Some("only-id"),
                None,
            ),
            entry(
                Algorithm::Sha1,
                &SHA1.replace('3', "4"),
                None,
                Some("only-category"),
            ),
            entry(
                Algorithm::Md5,
                &MD5.replace('f', "e"),
                Some("#not a comment"),
                Some("'single' \\ back"),
            ),
            entry(
                Algorithm::Md5,
                &MD5.replace('d', "a"),
                Some(" inner  spaces\tok".trim()),
                Some("{\"json\": [1]}"),
            ),
        ]
    }

    #[test]
    fn every_format_reads_back_the_same_entries() {
        let entries = awkward();
        for format in [ListFormat::Plain, ListFormat::Csv, ListFormat::Vics] {
            assert_eq!(
                round_trip(format, &entries),
                expected(format, &entries),
                "{format}"
            );
        }
    }

    #[test]
    fn the_exact_shapes() {
        let entries = [
            entry(Algorithm::Md5, MD5, Some("case-1"), Some("A1")),
            entry(Algorithm::Sha256, SHA256, Some("case-1"), Some("A1")),
            entry(Algorithm::Sha1, SHA1, Some("a,\"b\""), None),
        ];
        let (plain, summary) = write(ListFormat::Plain, &entries);
        assert_eq!(plain, format!("{MD5}\n{SHA256}\n{SHA1}\n"));
        assert_eq!(
            summary,
            WriteSummary {
                entries: 3,
                records: 3,
                pdq_left_out: 0,
            }
        );
        let (csv, summary) = write(ListFormat::Csv, &entries);
        assert_eq!(
            csv,
            format!("md5,sha1,sha256,pdq,category,id\n{MD5},,{SHA256},,A1,case-1\n,{SHA1},,,,\"a,\"\"b\"\"\"\n")
        );
        assert_eq!(
            summary,
            WriteSummary {
                entries: 3,
                records: 2,
                pdq_left_out: 0,
            }
        );
        let (vics, _) = write(ListFormat::Vics, &entries);
        assert_eq!(
            vics,
            format!(
                "{{\"@odata.context\":\"{VICS_CONTEXT}\",\"value\":[\n\
                 {{\"MediaID\":\"case-1\",\"Category\":\"A1\",\"MD5\":\"{MD5}\",\"SHA256\":\"{SHA256}\"}},\n\
                 {{\"MediaID\":\"a,\\\"b\\\"\",\"SHA1\":\"{SHA1}\"}}\n]}}\n"
            )
        );
        let value: serde_json::Value = serde_json::from_str(&vics).unwrap();
        assert_eq!(value["value"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn empty_lists_are_well_formed() {
        assert_eq!(write(ListFormat::Plain, &[]).0, "");
        assert_eq!(
            write(ListFormat::Csv, &[]).0,
            "md5,sha1,sha256,pdq,category,id\n"
        );
        let (vics, summary) = write(ListFormat::Vics, &[]);
        assert_eq!(summary, WriteSummary::default());
        let value: serde_json::Value = serde_json::from_str(&vics).unwrap();
        assert_eq!(value["value"], serde_json::json!([]));
    }

    #[test]
    fn values_that_would_not_read_back_are_refused_and_nothing_of_them_written() {
        for (id, category, want) in [
            (Some(" padded"), None, "white space"),
            (None, Some("A1\n"), "white space"),
            (Some(""), None, "empty entry id"),
            (None, Some(""), "empty category"),
        ] {
            let mut out = Vec::new();
            let mut writer = ListWriter::new(&mut out, ListFormat::Csv);
            writer
                .entry(&entry(Algorithm::Md5, MD5, Some("ok"), None))
                .unwrap();
            let err = writer
                .entry(&entry(Algorithm::Sha1, SHA1, id, category))
                .unwrap_err();
            assert!(err.to_string().contains(want), "{err}");
            assert!(
                err.to_string()
                    .starts_with(&format!("entry 2 (sha1 {SHA1})")),
                "{err}"
            );
            let (_, summary) = writer.finish().unwrap();
            assert_eq!(
                summary,
                WriteSummary {
                    entries: 1,
                    records: 1,
                    pdq_left_out: 0,
                }
            );
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("{CSV_HEADER}\n{MD5},,,,,ok\n")
            );
        }
        let long = "x".repeat(crate::store::MAX_FIELD_BYTES + 1);
        let err = write_list(
            io::sink(),
            ListFormat::Vics,
            &[entry(Algorithm::Md5, MD5, Some(&long), None)],
        )
        .unwrap_err();
        assert!(matches!(err, WriteError::Entry { index: 1, .. }), "{err}");
        let mut nameless = entry(Algorithm::Md5, MD5, None, None);
        nameless.provenance.list.clear();
        assert!(write_list(io::sink(), ListFormat::Plain, &[nameless]).is_err());
    }

    #[test]
    fn write_errors_are_returned() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let err = write_list(Broken, ListFormat::Csv, &awkward()).unwrap_err();
        assert_eq!(err.to_string(), "write error: disk on fire");
    }

    #[test]
    fn pdq_hashes_are_written_to_csv_and_left_out_of_the_others() {
        let pdq = Digest::parse_hex_as(
            Algorithm::Pdq,
            "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22",
        )
        .unwrap();
        let p = Provenance {
            list: "own".into(),
            id: Some("case-9".into()),
            category: Some("A1".into()),
        };
        let md5 = Digest::parse_hex(MD5).unwrap();
        let entries = [
            ListEntry {
                digest: md5,
                provenance: p.clone(),
            },
            ListEntry {
                digest: pdq,
                provenance: p,
            },
        ];
        let (csv, summary) = write(ListFormat::Csv, &entries);
        assert_eq!(
            csv,
            format!("{CSV_HEADER}\n{MD5},,,{},A1,case-9\n", pdq.to_hex())
        );
        assert_eq!((summary.entries, summary.pdq_left_out), (2, 0));
        // Read back: the same two entries, the PDQ one as PDQ.
        let options = ParseOptions {
            source_name: "own.csv".into(),
            default_list: "own".into(),
            algorithm: None,
        };
        let mut back = Vec::new();
        crate::lists::parse(csv.as_bytes(), ListFormat::Csv, &options, &mut |e| {
            back.push(e);
            Ok(())
        })
        .unwrap();
        assert_eq!(back, entries);
        for format in [ListFormat::Plain, ListFormat::Vics] {
            let (text, summary) = write(format, &entries);
            assert_eq!((summary.entries, summary.pdq_left_out), (1, 1), "{format}");
            assert!(!text.contains(&pdq.to_hex()), "{format}: {text}");
        }
    }
}
