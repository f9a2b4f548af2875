//! Project VIC / VICS JSON (OData) media lists, versions 1.3 (`"odata.metadata"`) and 2.0
//! (`"@odata.context"`).
//!
//! The document is a JSON object whose `"value"` array holds media records; of each record we
//! use `MD5`, `SHA1`, `SHA256` (hex strings; empty or null means absent), `Category` and
//! `MediaID` (numbers or strings). Every other field, of any type, is skipped unread.
//!
//! The array is streamed: serde visitors hand each record to the sink as soon as it is read,
//! so memory does not grow with the number of records. Errors name a JSON path such as
//! `$.value[1832].MD5` with serde_json's line and column.

use std::fmt::{self, Write as _};
use std::io::{self, BufReader, Read};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::error::Category;

use super::lines::error_at;
use super::{ListEntry, ListError, Location, ParseOptions, ParseSummary, Provenance};
use crate::digest::{Algorithm, Digest, DigestError};

/// Read buffer size; serde_json reads its input a byte at a time, so it needs one.
const BUFFER_BYTES: usize = 64 * 1024;

pub(super) fn parse<R: Read>(
    reader: R,
    options: &ParseOptions,
    sink: &mut dyn FnMut(ListEntry) -> Result<(), String>,
) -> Result<ParseSummary, ListError> {
    let mut input = Sniff::new(reader);
    let mut ctx = Ctx {
        options,
        sink,
        summary: ParseSummary::default(),
        top_key: None,
        record: None,
        field: String::new(),
        in_field: false,
        failure: None,
    };
    let result = {
        let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(
            BUFFER_BYTES,
            &mut input,
        ));
        match Document(&mut ctx).deserialize(&mut de) {
            Ok(()) => de.end().map_err(|e| (e, true)),
            Err(e) => Err((e, false)),
        }
    };
    if let Err((e, after_document)) = result {
        return Err(ctx.error(e, after_document, input.content));
    }
    let summary = ctx.summary;
    if summary.entries == 0 {
        let reason = if summary.skipped == 0 {
            "no digests found (empty list)".to_string()
        } else {
            format!(
                "no digests found ({} media records, none with an MD5, SHA1 or SHA256)",
                summary.skipped
            )
        };
        return Err(error_at(&options.source_name, Location::File, reason));
    }
    Ok(summary)
}

/// What went wrong, found by our own checks rather than by serde_json.
struct Failure {
    path: String,
    reason: String,
}

/// Parse state shared by the visitors: the sink, the counts, and where in the document we are.
struct Ctx<'a> {
    options: &'a ParseOptions,
    sink: &'a mut dyn FnMut(ListEntry) -> Result<(), String>,
    summary: ParseSummary,
    /// The top-level key whose value is being read.
    top_key: Option<String>,
    /// The index in `value` of the record being read.
    record: Option<u64>,
    /// The key of the record field being read (valid while `in_field`).
    field: String,
    in_field: bool,
    failure: Option<Failure>,
}

impl Ctx<'_> {
    /// The JSON path of the innermost place being read.
    fn path(&self) -> String {
        let mut path = String::from("$");
        if let Some(key) = &self.top_key {
            push_key(&mut path, key);
            if let Some(index) = self.record {
                let _ = write!(path, "[{index}]");
                if self.in_field {
                    push_key(&mut path, &self.field);
                }
            }
        }
        path
    }

    /// Remember `reason` at the current path and return an error that aborts serde.
    fn fail<E: de::Error>(&mut self, reason: String) -> E {
        let error = E::custom(&reason);
        self.failure = Some(Failure {
            path: self.path(),
            reason,
        });
        error
    }

    /// The [`ListError`] for a parse that stopped with `e`.
    fn error(&mut self, e: serde_json::Error, after_document: bool, content: bool) -> ListError {
        let source = self.options.source_name.as_str();
        let (line, column) = (e.line(), e.column());
        if let Some(failure) = self.failure.take() {
            return json_error(source, failure.path, line, column, failure.reason);
        }
        let message = e.to_string();
        let message = message
            .strip_suffix(&format!(" at line {line} column {column}"))
            .unwrap_or(&message);
        let reason = match e.classify() {
            Category::Eof if !content => {
                return error_at(source, Location::File, "empty file");
            }
            Category::Eof => "truncated JSON (unexpected end of file)".to_string(),
            Category::Io => format!("read error: {message}"),
            Category::Syntax if after_document => {
                format!("unexpected data after the end of the JSON document ({message})")
            }
            Category::Syntax | Category::Data => message.to_string(),
        };
        json_error(source, self.path(), line, column, reason)
    }
}

fn json_error(source: &str, path: String, line: usize, column: usize, reason: String) -> ListError {
    error_at(source, Location::Json { path, line, column }, reason)
}

/// Append `.key`, or `["key"]` when the key is not a plain identifier.
fn push_key(path: &mut String, key: &str) {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        path.push('.');
        path.push_str(key);
    } else {
        let quoted = serde_json::to_string(key).unwrap_or_else(|_| format!("{key:?}"));
        let _ = write!(path, "[{quoted}]");
    }
}

/// The whole document: an object with a `value` array; other keys are skipped.
struct Document<'c, 'a>(&'c mut Ctx<'a>);

impl<'de> DeserializeSeed<'de> for Document<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Document<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with a \"value\" array (a VICS / OData media list)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ctx = self.0;
        let mut seen_value = false;
        while let Some(key) = map.next_key::<String>()? {
            let is_value = key.eq_ignore_ascii_case("value");
            ctx.top_key = Some(key);
            if is_value {
                if seen_value {
                    return Err(ctx.fail("a second \"value\" array".to_string()));
                }
                seen_value = true;
                map.next_value_seed(MediaArray(&mut *ctx))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
            ctx.top_key = None;
        }
        if !seen_value {
            return Err(ctx.fail("no \"value\" array (not a VICS / OData media list)".to_string()));
        }
        Ok(())
    }
}

/// The `value` array, read one record at a time.
struct MediaArray<'c, 'a>(&'c mut Ctx<'a>);

impl<'de> DeserializeSeed<'de> for MediaArray<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for MediaArray<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of media records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let ctx = self.0;
        let mut index = 0u64;
        loop {
            ctx.record = Some(index);
            if seq.next_element_seed(Media(&mut *ctx))?.is_none() {
                break;
            }
            index += 1;
        }
        ctx.record = None;
        Ok(())
    }
}

/// One media record.
struct Media<'c, 'a>(&'c mut Ctx<'a>);

impl<'de> DeserializeSeed<'de> for Media<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Media<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a media record (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ctx = self.0;
        let mut digests: [Option<Digest>; 3] = [None; 3];
        let mut category: Option<String> = None;
        let mut id: Option<String> = None;
        let mut seen = [false; 5];
        while let Some(field) = map.next_key_seed(FieldName(&mut ctx.field))? {
            ctx.in_field = true;
            if let Some(slot) = field.slot() {
                if std::mem::replace(&mut seen[slot], true) {
                    let reason = format!("duplicate field {:?}", ctx.field);
                    return Err(ctx.fail(reason));
                }
            }
            match field {
                Field::Digest(alg) => match map.next_value_seed(DigestText(alg))? {
                    Ok(digest) => digests[digest_index(alg)] = digest,
                    Err(e) => return Err(ctx.fail(e.to_string())),
                },
                Field::Category => category = map.next_value_seed(ScalarText)?,
                Field::MediaId => id = map.next_value_seed(ScalarText)?,
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            ctx.in_field = false;
        }
        if digests.iter().all(Option::is_none) {
            ctx.summary.skipped += 1;
            return Ok(());
        }
        let provenance = Provenance {
            list: ctx.options.default_list.clone(),
            id,
            category,
        };
        for digest in digests.into_iter().flatten() {
            let entry = ListEntry {
                digest,
                provenance: provenance.clone(),
            };
            if let Err(reason) = (ctx.sink)(entry) {
                return Err(ctx.fail(reason));
            }
            ctx.summary.entries += 1;
        }
        Ok(())
    }
}

/// The fields of a media record we use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Digest(Algorithm),
    Category,
    MediaId,
    Other,
}

impl Field {
    /// Index for duplicate detection.
    fn slot(self) -> Option<usize> {
        match self {
            Field::Digest(alg) => Some(digest_index(alg)),
            Field::Category => Some(3),
            Field::MediaId => Some(4),
            Field::Other => None,
        }
    }
}

/// Where a record keeps its digest of `alg` (also the order entries are handed on).
fn digest_index(alg: Algorithm) -> usize {
    match alg {
        Algorithm::Md5 => 0,
        Algorithm::Sha1 => 1,
        Algorithm::Sha256 => 2,
        Algorithm::Pdq => unreachable!("VICS records carry no PDQ field"),
    }
}

/// A record key: classified, and kept (in a reused buffer) for error paths.
struct FieldName<'b>(&'b mut String);

impl<'de> DeserializeSeed<'de> for FieldName<'_> {
    type Value = Field;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Field, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FieldName<'_> {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Field, E> {
        self.0.clear();
        self.0.push_str(key);
        let field = if key.eq_ignore_ascii_case("MD5") {
            Field::Digest(Algorithm::Md5)
        } else if key.eq_ignore_ascii_case("SHA1") {
            Field::Digest(Algorithm::Sha1)
        } else if key.eq_ignore_ascii_case("SHA256") {
            Field::Digest(Algorithm::Sha256)
        } else if key.eq_ignore_ascii_case("Category") {
            Field::Category
        } else if key.eq_ignore_ascii_case("MediaID") {
            Field::MediaId
        } else {
            Field::Other
        };
        Ok(field)
    }
}

/// A digest field: a hex string of the given algorithm, or empty / null for none. A bad
/// digest is returned as a value, so the caller can report it with its path.
struct DigestText(Algorithm);

impl<'de> DeserializeSeed<'de> for DigestText {
    type Value = Result<Option<Digest>, DigestError>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DigestText {
    type Value = Result<Option<Digest>, DigestError>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a hex {} digest string or null", self.0)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        if text.trim().is_empty() {
            return Ok(Ok(None));
        }
        Ok(Digest::parse_hex_as(self.0, text).map(Some))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ok(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ok(None))
    }
}

/// A scalar kept as text (`Category`, `MediaID`): string, number or boolean; empty or null
/// for none.
struct ScalarText;

impl<'de> DeserializeSeed<'de> for ScalarText {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarText {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, a number or null")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        let text = text.trim();
        Ok((!text.is_empty()).then(|| text.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // Whole numbers written as `3.0` are kept as `3`.
        if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
            Ok(Some((v as i64).to_string()))
        } else {
            Ok(Some(v.to_string()))
        }
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Passes the input through, dropping a UTF-8 byte order mark at its start and noting whether
/// anything but white space went by (to tell an empty file from a truncated one).
struct Sniff<R> {
    inner: R,
    head: [u8; 3],
    head_len: usize,
    head_pos: usize,
    head_done: bool,
    content: bool,
}

impl<R: Read> Sniff<R> {
    fn new(inner: R) -> Self {
        Sniff {
            inner,
            head: [0; 3],
            head_len: 0,
            head_pos: 0,
            head_done: false,
            content: false,
        }
    }
}

impl<R: Read> Read for Sniff<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.head_done {
            while self.head_len < self.head.len() {
                match self.inner.read(&mut self.head[self.head_len..]) {
                    Ok(0) => break,
                    Ok(n) => self.head_len += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            self.head_done = true;
            if self.head[..self.head_len] == *b"\xEF\xBB\xBF" {
                self.head_len = 0;
            }
        }
        let n = if self.head_pos < self.head_len {
            let n = buf.len().min(self.head_len - self.head_pos);
            buf[..n].copy_from_slice(&self.head[self.head_pos..self.head_pos + n]);
            self.head_pos += n;
            n
        } else {
            self.inner.read(buf)?
        };
        if !self.content {
            self.content = buf[..n]
                .iter()
                .any(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::super::lines::test_support::{collect, FailAfter, MD5, SHA1, SHA256};
    use super::*;

    fn options() -> ParseOptions {
        ParseOptions {
            source_name: "lists/vic.json".into(),
            default_list: "projectvic".into(),
            algorithm: None,
        }
    }

    fn run<R: Read>(input: R) -> Result<(ParseSummary, Vec<ListEntry>), ListError> {
        collect(parse, input, &options())
    }

    fn err(input: &str) -> ListError {
        run(input.as_bytes()).unwrap_err()
    }

    fn json_path(e: &ListError) -> &str {
        match &e.location {
            Location::Json { path, .. } => path,
            other => panic!("expected a JSON location, got {other:?} ({e})"),
        }
    }

    fn entry(alg: Algorithm, hex: &str, id: Option<&str>, cat: Option<&str>) -> ListEntry {
        ListEntry {
            digest: Digest::parse_hex_as(alg, hex).unwrap(),
            provenance: Provenance {
                list: "projectvic".into(),
                id: id.map(Into::into),
                category: cat.map(Into::into),
            },
        }
    }

    fn vics_13() -> String {
        format!(
            r#"{{
  "odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Cases",
  "value": [
    {{
      "MediaID": 1,
      "Category": 1,
      "MD5": "{md5}",
      "SHA1": "{SHA1}",
      "IsPrecategorized": "true",
      "VictimIdentified": false,
      "IsDistributed": "false",
      "MediaFiles": [{{"FileName": "a.jpg", "MD5": "not even hex", "Exifs": [{{"x": 1}}]}}],
      "Comments": null
    }},
    {{ "MediaID": "m-2", "Category": "2", "MD5": "", "SHA1": null, "SHA256": "{SHA256}" }}
  ]
}}"#,
            md5 = MD5.to_uppercase()
        )
    }

    #[test]
    fn vics_1_3_document() {
        let (summary, entries) = run(vics_13().as_bytes()).unwrap();
        assert_eq!(
            summary,
            ParseSummary {
                entries: 3,
                skipped: 0
            }
        );
        assert_eq!(
            entries,
            vec![
                entry(Algorithm::Md5, MD5, Some("1"), Some("1")),
                entry(Algorithm::Sha1, SHA1, Some("1"), Some("1")),
                entry(Algorithm::Sha256, SHA256, Some("m-2"), Some("2")),
            ]
        );
    }

    #[test]
    fn vics_2_0_document_with_bom_and_records_without_digests() {
        let input = format!(
            "\u{feff}{{\"@odata.context\": \"http://github.com/ICMEC/ProjectVic/DataModels/2.0.xml/US/$metadata#Media\",\
              \"@odata.count\": 3,\
              \"value\": [\
                {{\"MediaID\": 10, \"Category\": 0, \"MD5\": \"{MD5}\", \"IsDistributed\": true, \"Tags\": [\"a\", {{\"b\": [1, 2]}}]}},\
                {{\"MediaID\": 11, \"Category\": 3, \"MD5\": null, \"SHA1\": \"\"}},\
                {{\"MediaID\": 12.0, \"Category\": null, \"SHA1\": \"{SHA1}\"}}\
              ]}}"
        );
        let (summary, entries) = run(input.as_bytes()).unwrap();
        assert_eq!(
            summary,
            ParseSummary {
                entries: 2,
                skipped: 1
            }
        );
        assert_eq!(
            entries,
            vec![
                entry(Algorithm::Md5, MD5, Some("10"), Some("0")),
                entry(Algorithm::Sha1, SHA1, Some("12"), None),
            ]
        );
    }

    #[test]
    fn document_without_header_and_key_order() {
        // `value` before any header, lower-case field names, unknown top-level keys after.
        let input = format!(
            r#"{{"value": [{{"sha1": "{SHA1}", "mediaid": 5}}], "extra": {{"nested": [1, {{"a": null}}]}}}}"#
        );
        let (_, entries) = run(input.as_bytes()).unwrap();
        assert_eq!(entries, vec![entry(Algorithm::Sha1, SHA1, Some("5"), None)]);
    }

    #[test]
    fn bad_digest_has_path_line_and_column() {
        let input = format!(
            "{{\"value\": [\n{{\"MD5\": \"{MD5}\"}},\n{{\"MediaID\": 2, \"MD5\": \"xyz\"}}\n]}}"
        );
        let e = err(&input);
        assert_eq!(
            e.location,
            Location::Json {
                path: "$.value[1].MD5".into(),
                line: 3,
                column: 28
            }
        );
        assert_eq!(
            e.to_string(),
            "lists/vic.json:3:28: $.value[1].MD5: not a hex digest: \"xyz\" (contains a character that is not 0-9 or a-f)"
        );
    }

    #[test]
    fn digest_of_the_wrong_length_for_its_field() {
        let input = format!(r#"{{"value": [{{"SHA1": "{MD5}"}}]}}"#);
        let e = err(&input);
        assert_eq!(json_path(&e), "$.value[0].SHA1");
        assert_eq!(
            e.reason,
            format!("not a sha1 digest: \"{MD5}\" (32 hex characters, expected 40)")
        );
    }

    #[test]
    fn digest_of_the_wrong_type() {
        let e = err(r#"{"value": [{"MD5": 12345}]}"#);
        assert_eq!(json_path(&e), "$.value[0].MD5");
        assert!(e.reason.starts_with("invalid type: integer `12345`"), "{e}");
    }

    #[test]
    fn truncated_document() {
        let doc = vics_13();
        for cut in [doc.len() / 2, doc.len() - 1, 1] {
            let e = err(&doc[..cut]);
            assert_eq!(
                e.reason, "truncated JSON (unexpected end of file)",
                "cut at {cut}"
            );
            assert!(json_path(&e).starts_with('$'), "{e}");
        }
        let e = err(&doc[..doc.len() / 2]);
        assert!(json_path(&e).starts_with("$.value[0]"), "{e}");
        let e = err(&format!(r#"{{"value": [{{"MD5": "{MD5}"}}, "#));
        assert_eq!(json_path(&e), "$.value[1]");
        let e = err(r#"{"value": [{"MediaID": 1, "SHA1": "a99"#);
        assert_eq!(json_path(&e), "$.value[0].SHA1");
        match e.location {
            Location::Json { line, column, .. } => assert_eq!((line, column), (1, 38)),
            _ => unreachable!(),
        }
    }

    #[test]
    fn trailing_garbage_after_the_document() {
        let e = err(&format!("{} x", vics_13()));
        assert_eq!(json_path(&e), "$");
        assert_eq!(
            e.reason,
            "unexpected data after the end of the JSON document (trailing characters)"
        );
        let e = err(&format!("{}\n{}", vics_13(), vics_13()));
        assert!(e.reason.starts_with("unexpected data after the end"), "{e}");
    }

    #[test]
    fn syntax_error_names_the_record() {
        let e = err(&format!(
            r#"{{"value": [{{"MD5": "{MD5}"}}, {{"MD5" "{MD5}"}}]}}"#
        ));
        assert_eq!(json_path(&e), "$.value[1].MD5");
        assert_eq!(e.reason, "expected `:`");
        let e = err(&format!(
            r#"{{"value": [{{"MD5": "{MD5}"}} {{"MD5": "{MD5}"}}]}}"#
        ));
        assert_eq!(json_path(&e), "$.value[1]");
        assert_eq!(e.reason, "expected `,` or `]`");
    }

    #[test]
    fn empty_file() {
        for input in ["", "  \r\n\t", "\u{feff}"] {
            let e = err(input);
            assert_eq!(e.location, Location::File, "{input:?}");
            assert_eq!(e.to_string(), "lists/vic.json: empty file");
        }
    }

    #[test]
    fn missing_or_malformed_value_array() {
        let e = err(r#"{"odata.metadata": "x", "values": []}"#);
        assert_eq!(json_path(&e), "$");
        assert_eq!(
            e.reason,
            "no \"value\" array (not a VICS / OData media list)"
        );

        let e = err(r#"{"odata.metadata": "x", "value": {"MD5": "x"}}"#);
        assert_eq!(json_path(&e), "$.value");
        assert_eq!(
            e.reason,
            "invalid type: map, expected an array of media records"
        );

        let e = err(r#"{"value": [1]}"#);
        assert_eq!(json_path(&e), "$.value[0]");
        assert_eq!(
            e.reason,
            "invalid type: integer `1`, expected a media record (a JSON object)"
        );

        let e = err(&format!(r#"[{{"MD5": "{MD5}"}}]"#));
        assert_eq!(json_path(&e), "$");
        assert!(e.reason.starts_with("invalid type: sequence"), "{e}");

        let e = err(r#"{"value": [], "value": []}"#);
        assert_eq!(json_path(&e), "$.value");
        assert_eq!(e.reason, "a second \"value\" array");
    }

    #[test]
    fn unknown_top_level_key_path_is_quoted() {
        let e = err(r#"{"odata.metadata": [1, 2"#);
        assert_eq!(json_path(&e), "$[\"odata.metadata\"]");
        assert_eq!(e.reason, "truncated JSON (unexpected end of file)");
    }

    #[test]
    fn duplicate_digest_field_is_an_error() {
        let e = err(&format!(
            r#"{{"value": [{{"MD5": "{MD5}", "md5": "{MD5}"}}]}}"#
        ));
        assert_eq!(json_path(&e), "$.value[0].md5");
        assert_eq!(e.reason, "duplicate field \"md5\"");
    }

    #[test]
    fn empty_lists_are_errors() {
        let e = err(r#"{"@odata.context": "x", "value": []}"#);
        assert_eq!(
            e.to_string(),
            "lists/vic.json: no digests found (empty list)"
        );
        let e = err(r#"{"value": [{"MediaID": 1}, {"MD5": ""}]}"#);
        assert_eq!(e.location, Location::File);
        assert_eq!(
            e.reason,
            "no digests found (2 media records, none with an MD5, SHA1 or SHA256)"
        );
    }

    #[test]
    fn sink_error_names_the_record() {
        let input =
            format!(r#"{{"value": [{{"MD5": "{MD5}"}}, {{"MD5": "{MD5}", "SHA1": "{SHA1}"}}]}}"#);
        let mut calls = 0;
        let e = parse(input.as_bytes(), &options(), &mut |_| {
            calls += 1;
            if calls == 3 {
                Err("store is read-only".into())
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(json_path(&e), "$.value[1]");
        assert_eq!(e.reason, "store is read-only");
        assert_eq!(calls, 3);
    }

    #[test]
    fn read_error_is_reported() {
        let doc = vics_13();
        let e = run(FailAfter {
            data: &doc.as_bytes()[..doc.len() / 2],
        })
        .unwrap_err();
        assert_eq!(e.reason, "read error: disk on fire");
        assert!(json_path(&e).starts_with("$.value[0]"), "{e}");
    }

    #[test]
    fn records_are_streamed_to_the_sink_as_they_are_read() {
        // The sink sees the first record before the reader has produced the second: a
        // reader that fails after the first record proves nothing is buffered.
        let first = format!(r#"{{"value": [{{"MD5": "{MD5}"}}, "#);
        let mut got = Vec::new();
        let e = parse(
            FailAfter {
                data: first.as_bytes(),
            },
            &options(),
            &mut |entry| {
                got.push(entry);
                Ok(())
            },
        )
        .unwrap_err();
        assert_eq!(e.reason, "read error: disk on fire");
        assert_eq!(got, vec![entry(Algorithm::Md5, MD5, None, None)]);
    }
}
