//! A bounded line reader: lines one at a time, with their 1-based numbers, in memory that does
//! not grow with the input. A line longer than [`MAX_LINE_BYTES`] is refused as soon as that
//! is known, after reading at most one buffer beyond the limit, so a multi-gigabyte "line"
//! (a binary file, a list without newlines) never sits in memory.

use std::io::{self, BufRead, BufReader, Read};

use super::{ListError, Location};

/// The longest line accepted, in bytes, not counting its `\n` or `\r\n`.
pub(super) const MAX_LINE_BYTES: usize = 64 * 1024;

/// Read buffer size.
const BUFFER_BYTES: usize = 64 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A [`ListError`] for `source_name` at `location`.
pub(super) fn error_at(
    source_name: &str,
    location: Location,
    reason: impl Into<String>,
) -> ListError {
    ListError {
        source_name: source_name.to_string(),
        location,
        reason: reason.into(),
    }
}

/// Lines of a text file: `\n` and `\r\n` endings stripped, a UTF-8 byte order mark at the
/// start of the file dropped, every line checked to be UTF-8 and at most [`MAX_LINE_BYTES`].
pub(super) struct Lines<'s, R> {
    reader: BufReader<R>,
    source_name: &'s str,
    line: Vec<u8>,
    number: u64,
    done: bool,
}

impl<'s, R: Read> Lines<'s, R> {
    pub(super) fn new(reader: R, source_name: &'s str) -> Self {
        Lines {
            reader: BufReader::with_capacity(BUFFER_BYTES, reader),
            source_name,
            line: Vec::new(),
            number: 0,
            done: false,
        }
    }

    /// A [`ListError`] at line `number` of this source.
    pub(super) fn error(&self, number: u64, reason: impl Into<String>) -> ListError {
        error_at(self.source_name, Location::Line(number), reason)
    }

    /// The next line and its 1-based number, or `None` at the end of the input.
    pub(super) fn next_line(&mut self) -> Result<Option<(u64, &str)>, ListError> {
        if self.done {
            return Ok(None);
        }
        let number = self.number + 1;
        // Bytes a line may occupy before its `\n`: the content, a `\r`, and on the first
        // line a byte order mark.
        let limit = MAX_LINE_BYTES + 1 + if number == 1 { BOM.len() } else { 0 };
        self.line.clear();
        loop {
            let available = match self.reader.fill_buf() {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.error(number, format!("read error: {e}"))),
            };
            if available.is_empty() {
                self.done = true;
                if self.line.is_empty() {
                    return Ok(None);
                }
                break;
            }
            let newline = available.iter().position(|&b| b == b'\n');
            let take = newline.unwrap_or(available.len());
            if self.line.len() + take > limit {
                self.done = true;
                return Err(self.too_long(number));
            }
            self.line.extend_from_slice(&available[..take]);
            match newline {
                Some(at) => {
                    self.reader.consume(at + 1);
                    break;
                }
                None => self.reader.consume(take),
            }
        }
        self.number = number;

        let mut text: &[u8] = &self.line;
        if number == 1 {
            text = text.strip_prefix(BOM).unwrap_or(text);
        }
        text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.len() > MAX_LINE_BYTES {
            self.done = true;
            return Err(self.too_long(number));
        }
        match std::str::from_utf8(text) {
            Ok(text) => Ok(Some((number, text))),
            Err(e) => {
                self.done = true;
                Err(error_at(
                    self.source_name,
                    Location::Line(number),
                    format!(
                        "not valid UTF-8 (invalid byte at column {})",
                        e.valid_up_to() + 1
                    ),
                ))
            }
        }
    }

    fn too_long(&self, number: u64) -> ListError {
        self.error(
            number,
            format!("line is longer than {MAX_LINE_BYTES} bytes"),
        )
    }
}

#[cfg(test)]
pub(super) mod test_support {
    use std::io::{self, Read};

    use crate::lists::{ListEntry, ListError, ParseOptions, ParseSummary};

    pub(crate) const MD5: &str = "900150983cd24fb0d6963f7d28e17f72";
    pub(crate) const SHA1: &str = "a9993e364706816aba3e25717850c26c9cd0d89d";
    pub(crate) const SHA256: &str =
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    type Sink<'a> = &'a mut dyn FnMut(ListEntry) -> Result<(), String>;

    /// Run a parser over `input`, collecting what it hands to its sink.
    pub(crate) fn collect<R: Read>(
        parse: impl FnOnce(R, &ParseOptions, Sink<'_>) -> Result<ParseSummary, ListError>,
        input: R,
        options: &ParseOptions,
    ) -> Result<(ParseSummary, Vec<ListEntry>), ListError> {
        let mut entries = Vec::new();
        let summary = parse(input, options, &mut |e| {
            entries.push(e);
            Ok(())
        })?;
        Ok((summary, entries))
    }

    /// Yields `remaining` copies of `byte` without ever holding them, counting what was pulled.
    pub(crate) struct Endless {
        pub(crate) byte: u8,
        pub(crate) remaining: u64,
        pub(crate) pulled: u64,
    }

    impl Endless {
        /// 2 GiB of `a` without a newline.
        pub(crate) fn two_gib() -> Endless {
            Endless {
                byte: b'a',
                remaining: 2 << 30,
                pulled: 0,
            }
        }
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = (buf.len() as u64).min(self.remaining) as usize;
            buf[..n].fill(self.byte);
            self.remaining -= n as u64;
            self.pulled += n as u64;
            Ok(n)
        }
    }

    /// Yields `data`, then fails.
    pub(crate) struct FailAfter<'a> {
        pub(crate) data: &'a [u8],
    }

    impl Read for FailAfter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.data.is_empty() {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Yields `data` one byte per read, with an `Interrupted` error between bytes.
    pub(crate) struct Trickle<'a> {
        pub(crate) data: &'a [u8],
        pub(crate) interrupt: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::ErrorKind::Interrupted.into());
            }
            if self.data.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.data[0];
            self.data = &self.data[1..];
            Ok(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{Endless, FailAfter, Trickle};
    use super::*;

    fn all_lines(input: &[u8]) -> Result<Vec<(u64, String)>, ListError> {
        let mut lines = Lines::new(input, "t.txt");
        let mut out = Vec::new();
        while let Some((n, text)) = lines.next_line()? {
            out.push((n, text.to_string()));
        }
        Ok(out)
    }

    fn owned(lines: &[(u64, &str)]) -> Vec<(u64, String)> {
        lines.iter().map(|(n, t)| (*n, t.to_string())).collect()
    }

    #[test]
    fn splits_lf_and_crlf_and_numbers_lines() {
        let got = all_lines(b"one\r\ntwo\n\nfour\r\n").unwrap();
        assert_eq!(got, owned(&[(1, "one"), (2, "two"), (3, ""), (4, "four")]));
    }

    #[test]
    fn last_line_without_newline() {
        assert_eq!(all_lines(b"a\nb").unwrap(), owned(&[(1, "a"), (2, "b")]));
        assert_eq!(all_lines(b"a\r").unwrap(), owned(&[(1, "a")]));
    }

    #[test]
    fn empty_input_has_no_lines() {
        assert_eq!(all_lines(b"").unwrap(), vec![]);
        assert_eq!(all_lines(b"\n").unwrap(), owned(&[(1, "")]));
    }

    #[test]
    fn strips_bom_on_first_line_only() {
        let got = all_lines(b"\xEF\xBB\xBFfirst\n\xEF\xBB\xBFsecond\n").unwrap();
        assert_eq!(got[0], (1, "first".to_string()));
        assert_eq!(got[1], (2, "\u{feff}second".to_string()));
    }

    #[test]
    fn accepts_a_line_of_exactly_the_limit() {
        let mut input = vec![b'x'; MAX_LINE_BYTES];
        input.extend_from_slice(b"\r\n");
        input.extend(std::iter::repeat_n(b'y', MAX_LINE_BYTES));
        let got = all_lines(&input).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1.len(), MAX_LINE_BYTES);
        assert_eq!(got[1].1.len(), MAX_LINE_BYTES);
    }

    #[test]
    fn refuses_a_line_one_byte_over_the_limit() {
        let mut input = b"short\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 1));
        input.extend_from_slice(b"\n");
        let err = all_lines(&input).unwrap_err();
        assert_eq!(err.location, Location::Line(2));
        assert_eq!(err.to_string(), "t.txt:2: line is longer than 65536 bytes");
    }

    #[test]
    fn refuses_a_2_gib_line_after_reading_a_bounded_amount() {
        let mut source = Endless::two_gib();
        let err = {
            let mut lines = Lines::new(&mut source, "big.txt");
            lines.next_line().unwrap_err()
        };
        assert_eq!(err.location, Location::Line(1));
        assert_eq!(err.reason, "line is longer than 65536 bytes");
        assert!(
            source.pulled <= (MAX_LINE_BYTES + 2 * BUFFER_BYTES) as u64,
            "pulled {} bytes",
            source.pulled
        );
    }

    #[test]
    fn stops_after_an_error() {
        let mut input = vec![b'x'; MAX_LINE_BYTES + 10];
        input.extend_from_slice(b"\nnext\n");
        let mut lines = Lines::new(&input[..], "t.txt");
        assert!(lines.next_line().is_err());
        assert!(lines.next_line().unwrap().is_none());
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let err = all_lines(b"ok\nab\xFFcd\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.txt:2: not valid UTF-8 (invalid byte at column 3)"
        );
    }

    #[test]
    fn read_errors_name_the_line_being_read() {
        let mut lines = Lines::new(
            FailAfter {
                data: b"one\ntwo\nthr",
            },
            "t.txt",
        );
        assert_eq!(lines.next_line().unwrap(), Some((1, "one")));
        assert_eq!(lines.next_line().unwrap(), Some((2, "two")));
        let err = lines.next_line().unwrap_err();
        assert_eq!(err.to_string(), "t.txt:3: read error: disk on fire");
    }

    #[test]
    fn retries_interrupted_reads_and_joins_short_reads() {
        let mut lines = Lines::new(
            Trickle {
                data: b"\xEF\xBB\xBFabc\r\ndef",
                interrupt: false,
            },
            "t.txt",
        );
        assert_eq!(lines.next_line().unwrap(), Some((1, "abc")));
        assert_eq!(lines.next_line().unwrap(), Some((2, "def")));
        assert_eq!(lines.next_line().unwrap(), None);
    }
}
