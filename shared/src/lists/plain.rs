//! Plain hash lists: one hex digest per line, the algorithm following from its length
//! (32 characters MD5, 40 SHA-1, 64 SHA-256) unless the import names it
//! ([`ParseOptions::algorithm`]). `#` starts a comment, either on a line of its own or after
//! the digest and some white space; blank lines are ignored.
//!
//! A PDQ list (named as such: its 64 hex digits would otherwise read as SHA-256) may give
//! each hash's quality after it, as ThreatExchange writes them: `<hash>,<quality>` or
//! `<hash> <quality>`, the quality an integer from 0 to 100. It is checked, not kept.

use std::io::Read;

use super::lines::{error_at, Lines};
use super::{ListEntry, ListError, Location, ParseOptions, ParseSummary, Provenance};
use crate::digest::{shorten, Algorithm, Digest};

pub(super) fn parse<R: Read>(
    reader: R,
    options: &ParseOptions,
    sink: &mut dyn FnMut(ListEntry) -> Result<(), String>,
) -> Result<ParseSummary, ListError> {
    let mut lines = Lines::new(reader, &options.source_name);
    let mut summary = ParseSummary::default();
    while let Some((number, text)) = lines.next_line()? {
        let pdq = options.algorithm == Some(Algorithm::Pdq);
        let token = match digest_token(text, pdq) {
            Ok(Some(token)) => token,
            Ok(None) => continue,
            Err(reason) => return Err(lines.error(number, reason)),
        };
        let digest = match options.algorithm {
            Some(alg) => Digest::parse_hex_as(alg, token),
            None => Digest::parse_hex(token),
        }
        .map_err(|e| lines.error(number, e.to_string()))?;
        sink(ListEntry {
            digest,
            provenance: Provenance {
                list: options.default_list.clone(),
                id: None,
                category: None,
            },
        })
        .map_err(|reason| lines.error(number, reason))?;
        summary.entries += 1;
    }
    if summary.entries == 0 {
        return Err(error_at(
            &options.source_name,
            Location::File,
            "no digests found (empty list)",
        ));
    }
    Ok(summary)
}

/// The digest text of a line, `None` for a blank or comment line. With `pdq`, a quality may
/// follow the hash.
fn digest_token(line: &str, pdq: bool) -> Result<Option<&str>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let value = match line.find('#') {
        Some(at) => {
            let before = &line[..at];
            if !before.ends_with(char::is_whitespace) {
                return Err(format!(
                    "unexpected \"#\" in {:?} (a comment after the digest needs white space before it)",
                    shorten(line)
                ));
            }
            before.trim_end()
        }
        None => line,
    };
    let mut words = value
        .split(|c: char| c.is_whitespace() || (pdq && c == ','))
        .filter(|w| !w.is_empty());
    let first = words.next().unwrap_or_default();
    if pdq {
        if let Some(quality) = words.next() {
            check_quality(quality)?;
        }
    }
    let others = words.count();
    if others > 0 {
        return Err(format!(
            "expected one digest per line, found {} values in {:?}",
            others + 1,
            shorten(value)
        ));
    }
    Ok(Some(first))
}

/// A PDQ quality as lists give it: an integer from 0 to 100.
pub(super) fn check_quality(text: &str) -> Result<u8, String> {
    match text.trim().parse::<u8>() {
        Ok(q) if q <= 100 => Ok(q),
        _ => Err(format!(
            "PDQ quality {:?} is not an integer from 0 to 100",
            shorten(text)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::lines::test_support::{collect, Endless, FailAfter, MD5, SHA1, SHA256};
    use super::*;

    fn options() -> ParseOptions {
        ParseOptions {
            source_name: "lists/own.txt".into(),
            default_list: "own".into(),
            algorithm: None,
        }
    }

    fn run<R: Read>(input: R) -> Result<(ParseSummary, Vec<ListEntry>), ListError> {
        collect(parse, input, &options())
    }

    fn err(input: &str) -> String {
        run(input.as_bytes()).unwrap_err().to_string()
    }

    fn hexes(entries: &[ListEntry]) -> Vec<(Algorithm, String)> {
        entries
            .iter()
            .map(|e| (e.digest.algorithm(), e.digest.to_hex()))
            .collect()
    }

    #[test]
    fn all_three_algorithms_with_provenance() {
        let input = format!("{MD5}\n{SHA1}\n{SHA256}\n");
        let (summary, entries) = run(input.as_bytes()).unwrap();
        assert_eq!(
            summary,
            ParseSummary {
                entries: 3,
                skipped: 0
            }
        );
        assert_eq!(
            hexes(&entries),
            vec![
                (Algorithm::Md5, MD5.to_string()),
                (Algorithm::Sha1, SHA1.to_string()),
                (Algorithm::Sha256, SHA256.to_string()),
            ]
        );
        for e in &entries {
            assert_eq!(
                e.provenance,
                Provenance {
                    list: "own".into(),
                    id: None,
                    category: None
                }
            );
        }
    }

    #[test]
    fn comments_blanks_whitespace_crlf_bom_uppercase() {
        let input = format!(
            "\u{feff}# exported 2024-05-01\r\n\r\n   \t\r\n  {}  \r\n{SHA1}  # reviewed\r\n\t# indented comment\n{SHA256}\t#tab comment",
            MD5.to_uppercase()
        );
        let (summary, entries) = run(input.as_bytes()).unwrap();
        assert_eq!(summary.entries, 3);
        assert_eq!(
            hexes(&entries),
            vec![
                (Algorithm::Md5, MD5.to_string()),
                (Algorithm::Sha1, SHA1.to_string()),
                (Algorithm::Sha256, SHA256.to_string()),
            ]
        );
    }

    #[test]
    fn bad_hex_names_file_line_and_reason() {
        let input = format!("# header\n{MD5}\nxyz\n");
        assert_eq!(
            err(&input),
            "lists/own.txt:3: not a hex digest: \"xyz\" (contains a character that is not 0-9 or a-f)"
        );
    }

    #[test]
    fn wrong_length_is_an_error() {
        let input = format!("{MD5}\n{}\n", &SHA1[..39]);
        assert_eq!(
            err(&input),
            format!(
                "lists/own.txt:2: not an MD5, SHA-1 or SHA-256 digest: \"{}\" (39 hex characters, expected 32, 40 or 64)",
                &SHA1[..39]
            )
        );
    }

    #[test]
    fn two_values_on_a_line_is_an_error() {
        let input = format!("{MD5} {SHA1}\n");
        let e = run(input.as_bytes()).unwrap_err();
        assert_eq!(e.location, Location::Line(1));
        assert!(
            e.reason
                .starts_with("expected one digest per line, found 2 values"),
            "{e}"
        );
    }

    #[test]
    fn hash_glued_to_the_digest_is_an_error() {
        let e = run(format!("{MD5}#note\n").as_bytes()).unwrap_err();
        assert_eq!(e.location, Location::Line(1));
        assert!(e.reason.starts_with("unexpected \"#\""), "{e}");
    }

    #[test]
    fn empty_file_and_comment_only_file_are_errors() {
        assert_eq!(err(""), "lists/own.txt: no digests found (empty list)");
        let e = run(&b"# nothing here\n\n  \n"[..]).unwrap_err();
        assert_eq!(e.location, Location::File);
        assert_eq!(e.reason, "no digests found (empty list)");
    }

    #[test]
    fn sink_error_stops_at_the_current_line() {
        let input = format!("{MD5}\n\n{SHA1}\n{SHA256}\n");
        let mut seen = 0;
        let e = parse(input.as_bytes(), &options(), &mut |_| {
            seen += 1;
            if seen == 2 {
                Err("store is full".into())
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "lists/own.txt:3: store is full");
        assert_eq!(seen, 2);
    }

    #[test]
    fn a_2_gib_line_is_refused_after_a_bounded_read() {
        let mut source = Endless::two_gib();
        let e = run(&mut source).unwrap_err();
        assert_eq!(
            e.to_string(),
            "lists/own.txt:1: line is longer than 65536 bytes"
        );
        assert!(source.pulled < 256 * 1024, "pulled {} bytes", source.pulled);
    }

    #[test]
    fn read_error_is_reported() {
        let input = format!("{MD5}\n{SHA1}");
        let e = run(FailAfter {
            data: input.as_bytes(),
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "lists/own.txt:2: read error: disk on fire");
    }

    /// A PDQ hash from a real photo (Meta's test vector bridge-1-original.jpg).
    const PDQ: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

    #[test]
    fn a_pdq_list_must_say_so_and_may_give_qualities() {
        // Unnamed, 64 hex digits are SHA-256: PDQ is never guessed.
        let (_, entries) = run(format!("{PDQ}\n").as_bytes()).unwrap();
        assert_eq!(entries[0].digest.algorithm(), Algorithm::Sha256);

        let pdq = ParseOptions {
            algorithm: Some(Algorithm::Pdq),
            ..options()
        };
        let input = format!("{PDQ},100\n{PDQ} 87 # comment\n{PDQ}\n");
        let (summary, entries) = collect(parse, input.as_bytes(), &pdq).unwrap();
        assert_eq!(summary.entries, 3);
        assert!(entries
            .iter()
            .all(|e| e.digest.algorithm() == Algorithm::Pdq && e.digest.to_hex() == PDQ));

        for (line, reason) in [
            (
                format!("{PDQ},101"),
                "PDQ quality \"101\" is not an integer from 0 to 100",
            ),
            (
                format!("{PDQ},high"),
                "PDQ quality \"high\" is not an integer from 0 to 100",
            ),
            (format!("{PDQ},90,7"), "expected one digest per line"),
            (MD5.to_string(), "not a pdq digest"),
        ] {
            let e = collect(parse, format!("{line}\n").as_bytes(), &pdq)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("lists/own.txt:1: ") && e.contains(reason),
                "{e}"
            );
        }
    }
}
