//! What a list file must not add, whatever its format: the rule every import applies
//! before anything of the file is written ([`import`]).
//!
//! **The digest of the empty file.** A list carrying MD5 `d41d8cd9…` (or the SHA-1 or
//! SHA-256 of zero bytes) would quarantine every zero-byte upload: no clearinghouse means
//! that, so a file that adds it is refused at that entry. Withdrawing it stays possible (a
//! store that took it before this rule is mended by withdrawing it). A file without a
//! single entry is refused by the parsers themselves, in every format.

use std::io::Read;

use crate::digest::{Algorithm, Digest};
use crate::lists::{parse, ListEntry, ListError, ListFormat, ParseOptions, ParseSummary};
use crate::store::Op;

/// The digest of zero bytes under an exact `algorithm` (PDQ has none: it hashes pixels).
pub fn empty_content(algorithm: Algorithm) -> Option<Digest> {
    let hex = match algorithm {
        Algorithm::Md5 => "d41d8cd98f00b204e9800998ecf8427e",
        Algorithm::Sha1 => "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        Algorithm::Sha256 => "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        Algorithm::Pdq => return None,
    };
    Some(Digest::parse_hex_as(algorithm, hex).expect("a constant of the right length"))
}

/// Whether `digest` is the digest of the empty file.
pub fn is_empty_content(digest: &Digest) -> bool {
    Some(*digest) == empty_content(digest.algorithm())
}

/// The rule for one entry: the reason it is refused, if it is.
pub fn check(entry: &ListEntry) -> Result<(), String> {
    if is_empty_content(&entry.digest) {
        return Err(format!(
            "{} is the digest of the empty file: every zero-byte upload would match it; \
             remove it from the list (nothing of the file was applied)",
            entry.digest
        ));
    }
    if let Some(pdq) = entry.digest.as_pdq() {
        if pdq.is_degenerate() {
            return Err(format!(
                "PDQ hash {pdq} is degenerate ({} of 256 bits set; a real image's hash has about \
                 half): it would match swathes of unrelated images; remove it from the list \
                 (nothing of the file was applied)",
                pdq.count_ones()
            ));
        }
    }
    Ok(())
}

/// Parse a list for an import: when it adds (`op`), every entry is checked ([`check`])
/// before `sink` sees it. Errors name the file and the place.
pub fn import<R: Read>(
    reader: R,
    format: ListFormat,
    options: &ParseOptions,
    op: Op,
    sink: &mut dyn FnMut(ListEntry) -> Result<(), String>,
) -> Result<ParseSummary, ListError> {
    parse(reader, format, options, &mut |entry| {
        if op == Op::Add {
            check(&entry)?;
        }
        sink(entry)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{digest_bytes, AlgorithmSet};
    use crate::lists::Location;

    fn options() -> ParseOptions {
        ParseOptions {
            source_name: "feed.txt".into(),
            default_list: "ncmec".into(),
            algorithm: None,
        }
    }

    fn run(text: &str, format: ListFormat) -> Result<Vec<ListEntry>, ListError> {
        run_op(text, format, Op::Add)
    }

    fn run_op(text: &str, format: ListFormat, op: Op) -> Result<Vec<ListEntry>, ListError> {
        let mut got = Vec::new();
        import(text.as_bytes(), format, &options(), op, &mut |e| {
            got.push(e);
            Ok(())
        })
        .map(|_| got)
    }

    #[test]
    fn the_empty_files_digests_are_the_computed_ones() {
        let computed = digest_bytes(b"", AlgorithmSet::ALL);
        for a in [Algorithm::Md5, Algorithm::Sha1, Algorithm::Sha256] {
            assert_eq!(empty_content(a), computed.get(a), "{a:?}");
            assert!(is_empty_content(&empty_content(a).unwrap()));
        }
        let other = digest_bytes(b"x", AlgorithmSet::ALL);
        assert!(!is_empty_content(&other.get(Algorithm::Md5).unwrap()));
    }

    #[test]
    fn a_list_carrying_the_empty_files_digest_is_refused_at_that_entry() {
        let text = "0123456789abcdef0123456789abcdef\nd41d8cd98f00b204e9800998ecf8427e\n";
        let err = run(text, ListFormat::Plain).unwrap_err();
        assert_eq!(err.source_name, "feed.txt");
        assert_eq!(err.location, Location::Line(2));
        assert!(err.reason.contains("empty file"), "{err}");
        let csv = "sha256,id\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855,7\n";
        let err = run(csv, ListFormat::Csv).unwrap_err();
        assert!(err.reason.contains("empty file"), "{err}");
    }

    #[test]
    fn the_empty_files_digest_can_still_be_withdrawn() {
        let text = "d41d8cd98f00b204e9800998ecf8427e\n";
        assert_eq!(
            run_op(text, ListFormat::Plain, Op::Remove).unwrap().len(),
            1
        );
        assert!(run(text, ListFormat::Plain).is_err());
        assert_eq!(
            run("0123456789abcdef0123456789abcdef\n", ListFormat::Plain)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn degenerate_pdq_hashes_are_refused_and_may_be_withdrawn() {
        let pdq_options = ParseOptions {
            algorithm: Some(Algorithm::Pdq),
            ..options()
        };
        let real = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
        for bad in [
            "0".repeat(64),
            "f".repeat(64),
            format!("{}{}", "0".repeat(60), "ffff"),
        ] {
            let text = format!("{real}\n{bad}\n");
            let e = import(
                text.as_bytes(),
                ListFormat::Plain,
                &pdq_options,
                Op::Add,
                &mut |_| Ok(()),
            )
            .unwrap_err()
            .to_string();
            assert!(e.starts_with("feed.txt:2: PDQ hash"), "{e}");
            assert!(e.contains("is degenerate"), "{e}");
            let withdrawn = import(
                text.as_bytes(),
                ListFormat::Plain,
                &pdq_options,
                Op::Remove,
                &mut |_| Ok(()),
            );
            assert_eq!(withdrawn.unwrap().entries, 2);
        }
    }
}
