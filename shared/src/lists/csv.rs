//! CSV hash lists: comma separated, a header row naming the columns.
//!
//! Digest columns are `md5`, `sha1`, `sha256` (a row may fill several: one entry per filled
//! cell), or `hash` with an optional `algorithm` column (inferred from the length when absent
//! or empty). Optional `category`, `list` (overrides the default list for its row) and `id`.
//! Header names are matched case-insensitively, ignoring spaces, `-` and `_`, so `SHA-1`,
//! `sha1_hash` and `Media ID` work too. Quoted fields (`"a, b"`, `""` for a quote) are
//! supported within a line; a quoted field spanning lines is not.

use std::borrow::Cow;
use std::io::Read;
use std::str::FromStr;

use super::lines::{error_at, Lines};
use super::{ListEntry, ListError, Location, ParseOptions, ParseSummary, Provenance};
use crate::digest::{Algorithm, Digest};

/// What a header column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Digest(Algorithm),
    Hash,
    Algorithm,
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
    category: Option<usize>,
    list: Option<usize>,
    id: Option<usize>,
}

impl Columns {
    fn from_header(fields: &[Cow<'_, str>]) -> Result<Columns, String> {
        let names: Vec<String> = fields.iter().map(|f| f.trim().to_string()).collect();
        let mut columns = Columns {
            count: names.len(),
            names: names.clone(),
            digests: Vec::new(),
            hash: None,
            algorithm: None,
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
                Role::Category => columns.category = Some(index),
                Role::List => columns.list = Some(index),
                Role::Id => columns.id = Some(index),
            }
        }
        if columns.digests.is_empty() && columns.hash.is_none() {
            let found: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
            return Err(format!(
                "no digest column in the header (found {}; expected md5, sha1, sha256, or hash with an optional algorithm)",
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
                let digest = match alg {
                    Some(alg) => Digest::parse_hex_as(alg, cell),
                    None => Digest::parse_hex(cell),
                }
                .map_err(|e| format!("column {:?}: {e}", self.names[index]))?;
                digests.push(digest);
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
    let mut lines = Lines::new(reader, source);
    let mut columns: Option<Columns> = None;
    let mut summary = ParseSummary::default();
    while let Some((number, text)) = lines.next_line()? {
        if text.trim().is_empty() {
            continue;
        }
        let cells = split_record(text).map_err(|reason| at(number, reason))?;
        let Some(columns) = &columns else {
            columns = Some(Columns::from_header(&cells).map_err(|reason| at(number, reason))?);
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

/// The fields of one CSV record. Unquoted fields are taken as they are; a quoted field may
/// contain commas and `""` for a quote, and may have spaces around its quotes.
fn split_record(line: &str) -> Result<Vec<Cow<'_, str>>, String> {
    let mut fields = Vec::new();
    let mut pos = 0;
    loop {
        let field = fields.len() + 1;
        let rest = &line[pos..];
        let unpadded = rest.trim_start_matches([' ', '\t']);
        if let Some(quoted) = unpadded.strip_prefix('"') {
            let start = line.len() - quoted.len();
            let mut value = String::new();
            let mut i = start;
            loop {
                let Some(quote) = line[i..].find('"') else {
                    return Err(format!(
                        "unterminated quote in field {field} (quoted fields cannot span lines)"
                    ));
                };
                value.push_str(&line[i..i + quote]);
                i += quote + 1;
                if line[i..].starts_with('"') {
                    value.push('"');
                    i += 1;
                } else {
                    break;
                }
            }
            fields.push(Cow::Owned(value));
            let after = line[i..].trim_start_matches([' ', '\t']);
            if after.is_empty() {
                return Ok(fields);
            }
            match after.strip_prefix(',') {
                Some(next) => pos = line.len() - next.len(),
                None => {
                    return Err(format!(
                        "unexpected text after the closing quote of field {field}"
                    ))
                }
            }
        } else {
            match rest.find(',') {
                Some(comma) => {
                    fields.push(Cow::Borrowed(&rest[..comma]));
                    pos += comma + 1;
                }
                None => {
                    fields.push(Cow::Borrowed(rest));
                    return Ok(fields);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lines::test_support::{collect, Endless, MD5, SHA1, SHA256};
    use super::*;

    fn options() -> ParseOptions {
        ParseOptions {
            source_name: "lists/x.csv".into(),
            default_list: "iwf".into(),
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
            "lists/x.csv:2: column \"algorithm\": unknown digest algorithm \"crc32\" (expected md5, sha1 or sha256)"
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

    #[test]
    fn split_record_cases() {
        assert_eq!(split_record("a,b,,c").unwrap(), vec!["a", "b", "", "c"]);
        assert_eq!(split_record("").unwrap(), vec![""]);
        assert_eq!(split_record("a,").unwrap(), vec!["a", ""]);
        assert_eq!(
            split_record(r#""x,y" ,"",z"#).unwrap(),
            vec!["x,y", "", "z"]
        );
        assert_eq!(split_record("\"\"\"\"").unwrap(), vec!["\""]);
        assert_eq!(split_record("\"\"\"\"\"\"").unwrap(), vec!["\"\""]);
        assert_eq!(
            split_record(r#"a,"b"c"#).unwrap_err(),
            "unexpected text after the closing quote of field 2"
        );
        assert_eq!(
            split_record(r#"a,"b"#).unwrap_err(),
            "unterminated quote in field 2 (quoted fields cannot span lines)"
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
            "lists/x.csv:3: no digest column in the header (found \"name\", \"size\"; expected md5, sha1, sha256, or hash with an optional algorithm)"
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
    fn unterminated_quote_and_multiline_fields_are_refused() {
        let e = err(&format!("md5,category\n{MD5},\"spans\nlines\"\n"));
        assert_eq!(
            e.to_string(),
            "lists/x.csv:2: unterminated quote in field 2 (quoted fields cannot span lines)"
        );
        let e = err("\"md5,id\n");
        assert_eq!(e.location, Location::Line(1));
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
}
