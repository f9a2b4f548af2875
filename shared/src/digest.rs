//! Digests: the algorithms hash lists use, digest values, and streaming computation of exactly
//! the algorithms the active lists need.
//!
//! Computation is sans-IO at its heart ([`MultiHasher`]) with a streaming engine on top
//! ([`StreamDigester`]) that works over any [`Read`], any async byte stream, or plain `&[u8]`
//! pushes, in bounded memory: a small pool of fixed-size chunks is recycled, nothing is ever
//! buffered whole and nothing is written to disk. With two or more cores and more than one
//! chunk of input, each algorithm runs on its own thread, so the throughput approaches that
//! of the slowest algorithm (MD5) instead of the sum of all of them.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// A digest algorithm used by clearinghouse hash lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha256,
}

impl Algorithm {
    /// Every supported algorithm, in a fixed order (also the order of [`AlgorithmSet`] bits).
    pub const ALL: [Algorithm; 3] = [Algorithm::Md5, Algorithm::Sha1, Algorithm::Sha256];

    /// Length of a digest in bytes.
    pub const fn byte_len(self) -> usize {
        match self {
            Algorithm::Md5 => 16,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
        }
    }

    /// Lower-case name as used in the CLI, JSON output and CSV headers.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "md5",
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
        }
    }

    /// The algorithm whose hex digests have `hex_len` characters.
    pub const fn from_hex_len(hex_len: usize) -> Option<Algorithm> {
        match hex_len {
            32 => Some(Algorithm::Md5),
            40 => Some(Algorithm::Sha1),
            64 => Some(Algorithm::Sha256),
            _ => None,
        }
    }

    /// Stable one-byte tag used in storage keys and filter keys. Never renumber.
    pub const fn tag(self) -> u8 {
        match self {
            Algorithm::Md5 => 1,
            Algorithm::Sha1 => 2,
            Algorithm::Sha256 => 3,
        }
    }

    pub const fn from_tag(tag: u8) -> Option<Algorithm> {
        match tag {
            1 => Some(Algorithm::Md5),
            2 => Some(Algorithm::Sha1),
            3 => Some(Algorithm::Sha256),
            _ => None,
        }
    }

    const fn bit(self) -> u8 {
        1 << (self.tag() - 1)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "md5" => Ok(Algorithm::Md5),
            "sha1" | "sha-1" => Ok(Algorithm::Sha1),
            "sha256" | "sha-256" => Ok(Algorithm::Sha256),
            _ => Err(DigestError::UnknownAlgorithm(s.to_string())),
        }
    }
}

/// What was wrong with a digest or algorithm name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("unknown digest algorithm {0:?} (expected md5, sha1 or sha256)")]
    UnknownAlgorithm(String),
    #[error("not a hex digest: {0:?} ({1})")]
    NotHex(String, &'static str),
    #[error("not a {algorithm} digest: {value:?} ({len} hex characters, expected {expected})")]
    WrongLength {
        algorithm: Algorithm,
        value: String,
        len: usize,
        expected: usize,
    },
    #[error("not an MD5, SHA-1 or SHA-256 digest: {value:?} ({len} hex characters, expected 32, 40 or 64)")]
    UnknownLength { value: String, len: usize },
}

/// A set of algorithms, e.g. the ones the loaded lists need.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AlgorithmSet(u8);

impl AlgorithmSet {
    pub const EMPTY: AlgorithmSet = AlgorithmSet(0);
    pub const ALL: AlgorithmSet = AlgorithmSet(0b111);

    pub fn contains(self, alg: Algorithm) -> bool {
        self.0 & alg.bit() != 0
    }
    pub fn insert(&mut self, alg: Algorithm) {
        self.0 |= alg.bit();
    }
    pub fn with(mut self, alg: Algorithm) -> Self {
        self.insert(alg);
        self
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }
    /// True when every algorithm of `other` is in `self`.
    pub fn covers(self, other: AlgorithmSet) -> bool {
        other.0 & !self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(move |a| self.contains(*a))
    }
    /// Compact encoding for file headers.
    pub fn bits(self) -> u8 {
        self.0
    }
    pub fn from_bits(bits: u8) -> Option<AlgorithmSet> {
        (bits & !0b111 == 0).then_some(AlgorithmSet(bits))
    }
}

impl FromIterator<Algorithm> for AlgorithmSet {
    fn from_iter<I: IntoIterator<Item = Algorithm>>(iter: I) -> Self {
        let mut set = AlgorithmSet::EMPTY;
        for alg in iter {
            set.insert(alg);
        }
        set
    }
}

impl Serialize for AlgorithmSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl fmt::Display for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.iter().map(Algorithm::name).collect();
        f.write_str(&names.join(","))
    }
}

/// One digest value of a known algorithm.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    bytes: [u8; 32],
}

impl Digest {
    /// A digest from raw bytes; the length must match the algorithm.
    pub fn new(algorithm: Algorithm, raw: &[u8]) -> Result<Digest, DigestError> {
        if raw.len() != algorithm.byte_len() {
            return Err(DigestError::WrongLength {
                algorithm,
                value: to_hex(raw),
                len: raw.len() * 2,
                expected: algorithm.byte_len() * 2,
            });
        }
        let mut bytes = [0u8; 32];
        bytes[..raw.len()].copy_from_slice(raw);
        Ok(Digest { algorithm, bytes })
    }

    /// Parse a hex digest (either case); the algorithm is inferred from the length.
    pub fn parse_hex(text: &str) -> Result<Digest, DigestError> {
        let text = text.trim();
        match Algorithm::from_hex_len(text.len()) {
            Some(alg) => Digest::parse_hex_as(alg, text),
            None => {
                check_hex_chars(text)?;
                Err(DigestError::UnknownLength {
                    value: shorten(text),
                    len: text.len(),
                })
            }
        }
    }

    /// Parse a hex digest that must be of `algorithm`.
    pub fn parse_hex_as(algorithm: Algorithm, text: &str) -> Result<Digest, DigestError> {
        let text = text.trim();
        check_hex_chars(text)?;
        if text.len() != algorithm.byte_len() * 2 {
            return Err(DigestError::WrongLength {
                algorithm,
                value: shorten(text),
                len: text.len(),
                expected: algorithm.byte_len() * 2,
            });
        }
        let mut bytes = [0u8; 32];
        for (i, pair) in text.as_bytes().chunks_exact(2).enumerate() {
            bytes[i] = (hex_val(pair[0]) << 4) | hex_val(pair[1]);
        }
        Ok(Digest { algorithm, bytes })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.algorithm.byte_len()]
    }

    pub fn to_hex(&self) -> String {
        to_hex(self.as_bytes())
    }

    /// The key under which this digest is stored and filtered: algorithm tag, then the bytes.
    /// Tagging keeps a SHA-256 from ever meeting an MD5 that happens to share a prefix.
    pub fn key(&self) -> DigestKey {
        let mut key = [0u8; 33];
        key[0] = self.algorithm.tag();
        key[1..1 + self.algorithm.byte_len()].copy_from_slice(self.as_bytes());
        DigestKey {
            len: 1 + self.algorithm.byte_len() as u8,
            bytes: key,
        }
    }

    /// Inverse of [`Digest::key`].
    pub fn from_key(key: &[u8]) -> Option<Digest> {
        let (&tag, raw) = key.split_first()?;
        Digest::new(Algorithm::from_tag(tag)?, raw).ok()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.to_hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::parse_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// A digest's storage/filter key (see [`Digest::key`]), kept on the stack.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DigestKey {
    len: u8,
    bytes: [u8; 33],
}

impl AsRef<[u8]> for DigestKey {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl std::ops::Deref for DigestKey {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_ref()
    }
}

fn check_hex_chars(text: &str) -> Result<(), DigestError> {
    if text.is_empty() {
        return Err(DigestError::NotHex(String::new(), "empty"));
    }
    if let Some(bad) = text.chars().find(|c| !c.is_ascii_hexdigit()) {
        let why = if bad.is_whitespace() {
            "contains white space"
        } else {
            "contains a character that is not 0-9 or a-f"
        };
        return Err(DigestError::NotHex(shorten(text), why));
    }
    Ok(())
}

/// Keep error messages readable when the offending value is enormous.
pub(crate) fn shorten(text: &str) -> String {
    const MAX: usize = 80;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => unreachable!("checked by check_hex_chars"),
    }
}

/// Lower-case hex of `raw`.
pub fn to_hex(raw: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(raw.len() * 2);
    for b in raw {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
    out
}

/// The digests computed for one object: one per algorithm asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DigestSet {
    md5: Option<Digest>,
    sha1: Option<Digest>,
    sha256: Option<Digest>,
}

impl DigestSet {
    pub fn get(&self, alg: Algorithm) -> Option<Digest> {
        match alg {
            Algorithm::Md5 => self.md5,
            Algorithm::Sha1 => self.sha1,
            Algorithm::Sha256 => self.sha256,
        }
    }

    pub fn insert(&mut self, digest: Digest) {
        let slot = match digest.algorithm() {
            Algorithm::Md5 => &mut self.md5,
            Algorithm::Sha1 => &mut self.sha1,
            Algorithm::Sha256 => &mut self.sha256,
        };
        *slot = Some(digest);
    }

    pub fn algorithms(&self) -> AlgorithmSet {
        self.iter().map(|d| d.algorithm()).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = Digest> + '_ {
        [self.md5, self.sha1, self.sha256].into_iter().flatten()
    }

    pub fn is_empty(&self) -> bool {
        self.md5.is_none() && self.sha1.is_none() && self.sha256.is_none()
    }
}

impl FromIterator<Digest> for DigestSet {
    fn from_iter<I: IntoIterator<Item = Digest>>(iter: I) -> Self {
        let mut set = DigestSet::default();
        for d in iter {
            set.insert(d);
        }
        set
    }
}

/// One running hash of one algorithm.
enum AnyHasher {
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl AnyHasher {
    fn new(alg: Algorithm) -> AnyHasher {
        use sha2::Digest as _;
        match alg {
            Algorithm::Md5 => AnyHasher::Md5(md5::Md5::new()),
            Algorithm::Sha1 => AnyHasher::Sha1(sha1::Sha1::new()),
            Algorithm::Sha256 => AnyHasher::Sha256(sha2::Sha256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        use sha2::Digest as _;
        match self {
            AnyHasher::Md5(h) => h.update(data),
            AnyHasher::Sha1(h) => h.update(data),
            AnyHasher::Sha256(h) => h.update(data),
        }
    }

    fn finish(self) -> Digest {
        use sha2::Digest as _;
        let (alg, raw): (Algorithm, Vec<u8>) = match self {
            AnyHasher::Md5(h) => (Algorithm::Md5, h.finalize().to_vec()),
            AnyHasher::Sha1(h) => (Algorithm::Sha1, h.finalize().to_vec()),
            AnyHasher::Sha256(h) => (Algorithm::Sha256, h.finalize().to_vec()),
        };
        Digest::new(alg, &raw).expect("hash output has the algorithm's length")
    }
}

/// Sans-IO hashing of several algorithms at once, on the caller's thread.
pub struct MultiHasher {
    hashers: Vec<AnyHasher>,
}

impl MultiHasher {
    pub fn new(algorithms: AlgorithmSet) -> MultiHasher {
        MultiHasher {
            hashers: algorithms.iter().map(AnyHasher::new).collect(),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        for h in &mut self.hashers {
            h.update(data);
        }
    }

    pub fn finish(self) -> DigestSet {
        self.hashers.into_iter().map(AnyHasher::finish).collect()
    }
}

/// The result of digesting a stream: its digests and its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digested {
    pub digests: DigestSet,
    pub bytes: u64,
}

/// Size of the chunks handed to the hashers: small enough to stay in cache between the reader
/// and the hashing threads, large enough that per-chunk overhead vanishes.
pub const CHUNK_SIZE: usize = 256 * 1024;
/// Chunks that may wait for each hashing thread; bounds memory to about
/// `(QUEUE_DEPTH + 2) * CHUNK_SIZE` however large the object is.
const QUEUE_DEPTH: usize = 6;

/// Where the chunks go: nowhere yet (first chunk held back, so small objects never pay for
/// threads), the caller's thread, or one thread per algorithm.
enum Sink {
    Pending(Option<Bytes>),
    Inline(MultiHasher),
    Threads(Vec<(SyncSender<Bytes>, JoinHandle<Digest>)>),
}

/// Streaming digests of exactly the requested algorithms, in bounded memory.
///
/// Feed it with [`StreamDigester::update`] (any byte slices, e.g. an async body's frames),
/// [`StreamDigester::read_from`] (reads straight into its chunk buffers, no extra copy) or
/// [`std::io::Write`]; then [`StreamDigester::finish`].
pub struct StreamDigester {
    algorithms: AlgorithmSet,
    parallel: bool,
    sink: Sink,
    /// The chunk being filled: always `CHUNK_SIZE` long (initialised once, then recycled),
    /// of which `filled` bytes are data.
    current: BytesMut,
    filled: usize,
    /// Chunks handed out, oldest first; reclaimed for reuse once every hasher is done with them.
    in_flight: std::collections::VecDeque<Bytes>,
    bytes: u64,
}

impl StreamDigester {
    /// Hash on worker threads when it can pay off (several cores, more than one chunk).
    pub fn new(algorithms: AlgorithmSet) -> StreamDigester {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_parallelism(algorithms, cores > 1)
    }

    /// As [`StreamDigester::new`], choosing explicitly whether worker threads may be used.
    pub fn with_parallelism(algorithms: AlgorithmSet, parallel: bool) -> StreamDigester {
        StreamDigester {
            algorithms,
            parallel,
            sink: Sink::Pending(None),
            current: BytesMut::new(),
            filled: 0,
            in_flight: Default::default(),
            bytes: 0,
        }
    }

    /// Bytes consumed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Add `data` to the stream.
    pub fn update(&mut self, mut data: &[u8]) {
        self.bytes += data.len() as u64;
        while !data.is_empty() {
            self.ensure_buffer();
            let take = (CHUNK_SIZE - self.filled).min(data.len());
            self.current[self.filled..self.filled + take].copy_from_slice(&data[..take]);
            self.filled += take;
            data = &data[take..];
            if self.filled == CHUNK_SIZE {
                self.flush_chunk();
            }
        }
    }

    /// Read `reader` to its end into the stream. Returns the bytes read.
    pub fn read_from<R: Read + ?Sized>(&mut self, reader: &mut R) -> io::Result<u64> {
        let start = self.bytes;
        loop {
            self.ensure_buffer();
            let n = match reader.read(&mut self.current[self.filled..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.filled += n;
            self.bytes += n as u64;
            if n == 0 {
                return Ok(self.bytes - start);
            }
            if self.filled == CHUNK_SIZE {
                self.flush_chunk();
            }
        }
    }

    /// Finish the stream and return its digests.
    pub fn finish(mut self) -> Digested {
        if self.filled > 0 {
            self.flush_chunk();
        }
        let digests = match std::mem::replace(&mut self.sink, Sink::Pending(None)) {
            Sink::Pending(first) => {
                let mut h = MultiHasher::new(self.algorithms);
                if let Some(chunk) = first {
                    h.update(&chunk);
                }
                h.finish()
            }
            Sink::Inline(h) => h.finish(),
            Sink::Threads(workers) => workers
                .into_iter()
                .map(|(tx, handle)| {
                    drop(tx);
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect(),
        };
        Digested {
            digests,
            bytes: self.bytes,
        }
    }

    fn ensure_buffer(&mut self) {
        if self.current.len() == CHUNK_SIZE {
            return;
        }
        self.filled = 0;
        // Reuse the oldest chunk if every hasher has let go of it; otherwise allocate. A
        // recycled chunk was full, so growing it back to CHUNK_SIZE writes nothing.
        if self.in_flight.front().is_some_and(Bytes::is_unique) {
            let oldest = self.in_flight.pop_front().expect("front exists");
            if let Ok(mut buf) = oldest.try_into_mut() {
                buf.resize(CHUNK_SIZE, 0);
                self.current = buf;
                return;
            }
        }
        self.current = BytesMut::zeroed(CHUNK_SIZE);
    }

    fn flush_chunk(&mut self) {
        let mut buf = std::mem::take(&mut self.current);
        buf.truncate(self.filled);
        self.filled = 0;
        let chunk = buf.freeze();
        match &mut self.sink {
            Sink::Pending(first @ None) => {
                *first = Some(chunk);
            }
            Sink::Pending(Some(_)) => {
                let Sink::Pending(Some(first)) =
                    std::mem::replace(&mut self.sink, Sink::Pending(None))
                else {
                    unreachable!()
                };
                self.sink = if self.parallel && !self.algorithms.is_empty() {
                    Sink::Threads(self.algorithms.iter().map(spawn_hasher).collect())
                } else {
                    Sink::Inline(MultiHasher::new(self.algorithms))
                };
                self.dispatch(first);
                self.dispatch(chunk);
            }
            _ => self.dispatch(chunk),
        }
    }

    fn dispatch(&mut self, chunk: Bytes) {
        match &mut self.sink {
            Sink::Inline(h) => {
                h.update(&chunk);
                self.in_flight.push_back(chunk);
            }
            Sink::Threads(workers) => {
                for (tx, _) in workers.iter() {
                    // A send fails only if the worker died; finish() then re-raises its panic.
                    let _ = tx.send(chunk.clone());
                }
                self.in_flight.push_back(chunk);
            }
            Sink::Pending(_) => unreachable!("dispatch happens after the sink is chosen"),
        }
        // Never keep more chunks than the queues can hold, or memory would grow with the object.
        while self.in_flight.len() > QUEUE_DEPTH + 2 {
            self.in_flight.pop_front();
        }
    }
}

impl io::Write for StreamDigester {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn spawn_hasher(alg: Algorithm) -> (SyncSender<Bytes>, JoinHandle<Digest>) {
    let (tx, rx) = sync_channel::<Bytes>(QUEUE_DEPTH);
    let handle = std::thread::Builder::new()
        .name(format!("hash-{alg}"))
        .spawn(move || {
            let mut h = AnyHasher::new(alg);
            for chunk in rx {
                h.update(&chunk);
            }
            h.finish()
        })
        .expect("spawning a hashing thread");
    (tx, handle)
}

/// Digest everything `reader` yields.
pub fn digest_reader<R: Read>(mut reader: R, algorithms: AlgorithmSet) -> io::Result<Digested> {
    let mut d = StreamDigester::new(algorithms);
    d.read_from(&mut reader)?;
    Ok(d.finish())
}

/// Digest everything an async byte stream yields (e.g. an S3 GetObject body), stopping at its
/// first error.
pub async fn digest_stream<S, B, E>(stream: S, algorithms: AlgorithmSet) -> Result<Digested, E>
where
    S: futures_core::Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    let mut stream = std::pin::pin!(stream);
    let mut d = StreamDigester::new(algorithms);
    while let Some(item) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        d.update(item?.as_ref());
    }
    Ok(d.finish())
}

/// Digest a byte slice already in memory, on the caller's thread.
pub fn digest_bytes(data: &[u8], algorithms: AlgorithmSet) -> DigestSet {
    let mut h = MultiHasher::new(algorithms);
    h.update(data);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC_MD5: &str = "900150983cd24fb0d6963f7d28e17f72";
    const ABC_SHA1: &str = "a9993e364706816aba3e25717850c26c9cd0d89d";
    const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn known_vectors() {
        let d = digest_bytes(b"abc", AlgorithmSet::ALL);
        assert_eq!(d.get(Algorithm::Md5).unwrap().to_hex(), ABC_MD5);
        assert_eq!(d.get(Algorithm::Sha1).unwrap().to_hex(), ABC_SHA1);
        assert_eq!(d.get(Algorithm::Sha256).unwrap().to_hex(), ABC_SHA256);
    }

    #[test]
    fn computes_only_what_is_asked() {
        let algs = AlgorithmSet::EMPTY.with(Algorithm::Sha1);
        let d = digest_reader(&b"abc"[..], algs).unwrap();
        assert_eq!(d.digests.algorithms(), algs);
        assert_eq!(d.digests.get(Algorithm::Md5), None);
        assert_eq!(d.bytes, 3);
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn streaming_matches_one_shot_at_every_boundary() {
        for len in [
            0,
            1,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            2 * CHUNK_SIZE,
            5 * CHUNK_SIZE + 17,
            (QUEUE_DEPTH + 5) * CHUNK_SIZE + 3,
        ] {
            let data = pattern(len);
            let expected = digest_bytes(&data, AlgorithmSet::ALL);
            for parallel in [false, true] {
                // through read_from, in odd-sized reads
                let mut d = StreamDigester::with_parallelism(AlgorithmSet::ALL, parallel);
                let mut reader = OddReader {
                    data: &data,
                    step: 0,
                };
                assert_eq!(d.read_from(&mut reader).unwrap(), len as u64);
                let got = d.finish();
                assert_eq!(
                    got.digests, expected,
                    "read_from len={len} parallel={parallel}"
                );
                assert_eq!(got.bytes, len as u64);
                // through update, in odd-sized pieces
                let mut d = StreamDigester::with_parallelism(AlgorithmSet::ALL, parallel);
                for piece in data.chunks(CHUNK_SIZE / 3 + 5) {
                    d.update(piece);
                }
                assert_eq!(d.finish().digests, expected, "update len={len}");
            }
        }
    }

    /// Returns short, varying reads and an interrupted error now and then, as real readers do.
    struct OddReader<'a> {
        data: &'a [u8],
        step: usize,
    }
    impl Read for OddReader<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.step += 1;
            if self.step % 7 == 0 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf
                .len()
                .min(self.data.len())
                .min(1 + (self.step * 40_503) % 300_000);
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn read_errors_are_returned() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let mut d = StreamDigester::new(AlgorithmSet::ALL);
        let err = d.read_from(&mut Failing).unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
    }

    #[test]
    fn async_stream() {
        let data = pattern(3 * CHUNK_SIZE + 11);
        let pieces: Vec<Result<Vec<u8>, io::Error>> =
            data.chunks(8 * 1024).map(|c| Ok(c.to_vec())).collect();
        let got = block_on(digest_stream(
            IterStream(pieces.into_iter()),
            AlgorithmSet::ALL,
        ))
        .unwrap();
        assert_eq!(got.digests, digest_bytes(&data, AlgorithmSet::ALL));

        let failing: Vec<Result<Vec<u8>, io::Error>> =
            vec![Ok(vec![1, 2, 3]), Err(io::Error::other("connection reset"))];
        let err = block_on(digest_stream(
            IterStream(failing.into_iter()),
            AlgorithmSet::ALL,
        ))
        .unwrap_err();
        assert_eq!(err.to_string(), "connection reset");
    }

    struct IterStream<I>(I);
    impl<I: Iterator + Unpin> futures_core::Stream for IterStream<I> {
        type Item = I::Item;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<I::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn hex_parsing() {
        let d = Digest::parse_hex(&ABC_MD5.to_uppercase()).unwrap();
        assert_eq!(d.algorithm(), Algorithm::Md5);
        assert_eq!(d.to_hex(), ABC_MD5);
        assert_eq!(Digest::from_key(&d.key()), Some(d));
        assert!(matches!(
            Digest::parse_hex("xyz"),
            Err(DigestError::NotHex(v, _)) if v == "xyz"
        ));
        assert!(matches!(
            Digest::parse_hex("abcd"),
            Err(DigestError::UnknownLength { len: 4, .. })
        ));
        assert!(matches!(
            Digest::parse_hex_as(Algorithm::Sha1, ABC_MD5),
            Err(DigestError::WrongLength {
                len: 32,
                expected: 40,
                ..
            })
        ));
        let msg = Digest::parse_hex(&"g".repeat(10_000))
            .unwrap_err()
            .to_string();
        assert!(msg.len() < 200, "error messages stay short: {msg}");
    }

    #[test]
    fn algorithm_sets() {
        let s: AlgorithmSet = [Algorithm::Sha256, Algorithm::Md5].into_iter().collect();
        assert_eq!(s.to_string(), "md5,sha256");
        assert!(AlgorithmSet::ALL.covers(s));
        assert!(!s.covers(AlgorithmSet::ALL));
        assert_eq!(AlgorithmSet::from_bits(s.bits()), Some(s));
        assert_eq!(AlgorithmSet::from_bits(0b1000), None);
        assert_eq!("SHA-256".parse::<Algorithm>(), Ok(Algorithm::Sha256));
    }
}
