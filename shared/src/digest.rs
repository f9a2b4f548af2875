//! Digests: the algorithms hash lists use, digest values, and streaming computation of exactly
//! the algorithms the active lists need.
//!
//! Computation is sans-IO at its heart ([`MultiHasher`]) with a streaming engine on top
//! ([`StreamDigester`]) that works over any [`Read`], any async byte stream, or plain `&[u8]`
//! pushes, in bounded memory: a small pool of fixed-size chunks is recycled, nothing is ever
//! buffered whole and nothing is written to disk. With two or more cores and more than one
//! chunk of input, the algorithms run in parallel on hashing threads (one per core, at most
//! one per algorithm), so the throughput approaches what the CPU allows: the slowest
//! algorithm alone, or all of them spread over the cores, whichever is slower. Async callers feed it through
//! [`StreamDigester::update_async`] and [`StreamDigester::finish_async`], which wait for the
//! hashing threads by returning `Pending`, never by blocking the runtime's thread.
//!
//! The hashing itself is OpenSSL's (libcrypto, built from source with the crate): the
//! fastest MD5, SHA-1 and SHA-256 measured on CPUs with and without SHA instructions (see
//! BENCHMARKS.md, "Digest implementations").

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::pdq::decode::DecodeLimits;
use crate::pdq::tap::{ImageOutcome, ImageTap};
use crate::pdq::PdqHash;

/// A digest algorithm used by clearinghouse hash lists: the exact digests (MD5, SHA-1,
/// SHA-256) and PDQ, the perceptual image hash (see [`crate::pdq`]), whose entries match
/// within a Hamming distance rather than by equality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    Pdq,
}

impl Algorithm {
    /// Every supported algorithm, in a fixed order (also the order of [`AlgorithmSet`] bits).
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Md5,
        Algorithm::Sha1,
        Algorithm::Sha256,
        Algorithm::Pdq,
    ];

    /// The algorithms that match by equality, computed over an object's bytes as they stream.
    pub const EXACT: [Algorithm; 3] = [Algorithm::Md5, Algorithm::Sha1, Algorithm::Sha256];

    /// PDQ: matched by distance, computed from decoded pixels.
    pub const fn is_perceptual(self) -> bool {
        matches!(self, Algorithm::Pdq)
    }

    /// Length of a digest in bytes.
    pub const fn byte_len(self) -> usize {
        match self {
            Algorithm::Md5 => 16,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 | Algorithm::Pdq => 32,
        }
    }

    /// Lower-case name as used in the CLI, JSON output and CSV headers.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "md5",
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Pdq => "pdq",
        }
    }

    /// The exact algorithm whose hex digests have `hex_len` characters. Never PDQ: a PDQ
    /// hash and a SHA-256 are both 64 hex digits, so a PDQ list must say what it holds.
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
            Algorithm::Pdq => 4,
        }
    }

    pub const fn from_tag(tag: u8) -> Option<Algorithm> {
        match tag {
            1 => Some(Algorithm::Md5),
            2 => Some(Algorithm::Sha1),
            3 => Some(Algorithm::Sha256),
            4 => Some(Algorithm::Pdq),
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
            "pdq" => Ok(Algorithm::Pdq),
            _ => Err(DigestError::UnknownAlgorithm(s.to_string())),
        }
    }
}

/// What was wrong with a digest or algorithm name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("unknown digest algorithm {0:?} (expected md5, sha1, sha256 or pdq)")]
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
    pub const ALL: AlgorithmSet = AlgorithmSet(0b1111);
    /// The exact algorithms: what a stream of bytes is digested with.
    pub const EXACT: AlgorithmSet = AlgorithmSet(0b0111);

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
        (bits & !0b1111 == 0).then_some(AlgorithmSet(bits))
    }
    /// The exact algorithms of this set (PDQ removed).
    pub fn exact(self) -> AlgorithmSet {
        AlgorithmSet(self.0 & Self::EXACT.0)
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

    /// A PDQ hash as a digest (the form list entries and the store hold it in).
    pub fn pdq(hash: PdqHash) -> Digest {
        Digest::new(Algorithm::Pdq, &hash.0).expect("a PDQ hash has 32 bytes")
    }

    /// The PDQ hash of a PDQ digest.
    pub fn as_pdq(&self) -> Option<PdqHash> {
        (self.algorithm() == Algorithm::Pdq)
            .then(|| PdqHash(self.as_bytes().try_into().expect("32 bytes")))
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
    /// The PDQ hash of the image as it is (not a rotated or flipped variant).
    pdq: Option<Digest>,
}

impl DigestSet {
    pub fn get(&self, alg: Algorithm) -> Option<Digest> {
        match alg {
            Algorithm::Md5 => self.md5,
            Algorithm::Sha1 => self.sha1,
            Algorithm::Sha256 => self.sha256,
            Algorithm::Pdq => self.pdq,
        }
    }

    pub fn insert(&mut self, digest: Digest) {
        let slot = match digest.algorithm() {
            Algorithm::Md5 => &mut self.md5,
            Algorithm::Sha1 => &mut self.sha1,
            Algorithm::Sha256 => &mut self.sha256,
            Algorithm::Pdq => &mut self.pdq,
        };
        *slot = Some(digest);
    }

    pub fn algorithms(&self) -> AlgorithmSet {
        self.iter().map(|d| d.algorithm()).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = Digest> + '_ {
        [self.md5, self.sha1, self.sha256, self.pdq]
            .into_iter()
            .flatten()
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The exact digests only (what a copy's bytes can be checked against).
    pub fn exact(&self) -> DigestSet {
        DigestSet { pdq: None, ..*self }
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

/// One running hash of one algorithm, computed by OpenSSL's libcrypto: its assembly uses the
/// CPU's SHA instructions where there are any and vector code (AVX2, AVX, SSSE3; NEON)
/// elsewhere, and its MD5 is the fastest there is. BENCHMARKS.md ("Digest implementations")
/// has the measurements behind this choice.
enum AnyHasher {
    Md5(openssl::hash::Hasher),
    Sha1(openssl::sha::Sha1),
    Sha256(openssl::sha::Sha256),
}

impl AnyHasher {
    fn new(alg: Algorithm) -> AnyHasher {
        match alg {
            Algorithm::Md5 => AnyHasher::Md5(
                openssl::hash::Hasher::new(openssl::hash::MessageDigest::md5())
                    .unwrap_or_else(|e| panic!("OpenSSL refused to start an MD5 digest: {e}")),
            ),
            Algorithm::Sha1 => AnyHasher::Sha1(openssl::sha::Sha1::new()),
            Algorithm::Sha256 => AnyHasher::Sha256(openssl::sha::Sha256::new()),
            Algorithm::Pdq => unreachable!("PDQ is computed from pixels, not streamed"),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            AnyHasher::Md5(h) => h
                .update(data)
                .unwrap_or_else(|e| panic!("OpenSSL failed an MD5 update: {e}")),
            AnyHasher::Sha1(h) => h.update(data),
            AnyHasher::Sha256(h) => h.update(data),
        }
    }

    fn finish(self) -> Digest {
        let (alg, raw): (Algorithm, Vec<u8>) = match self {
            AnyHasher::Md5(mut h) => (
                Algorithm::Md5,
                h.finish()
                    .unwrap_or_else(|e| panic!("OpenSSL failed to finish an MD5 digest: {e}"))
                    .to_vec(),
            ),
            AnyHasher::Sha1(h) => (Algorithm::Sha1, h.finish().to_vec()),
            AnyHasher::Sha256(h) => (Algorithm::Sha256, h.finish().to_vec()),
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
            hashers: algorithms.exact().iter().map(AnyHasher::new).collect(),
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

/// The result of digesting a stream: its digests and its length, and when PDQ was asked
/// for, what became of its image (its PDQ hash is then in `digests` too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digested {
    pub digests: DigestSet,
    pub bytes: u64,
    pub image: Option<ImageOutcome>,
}

/// Size of the chunks handed to the hashers: small enough to stay in cache between the reader
/// and the hashing threads, large enough that per-chunk overhead vanishes.
pub const CHUNK_SIZE: usize = 256 * 1024;
/// Chunks that may wait for the hashing threads (not yet hashed by every algorithm); bounds
/// memory to about `(QUEUE_DEPTH + 2) * CHUNK_SIZE` however large the object is.
const QUEUE_DEPTH: usize = 8;

/// Where the chunks go: nowhere yet (first chunk held back, so small objects never pay for
/// threads), the caller's thread, or hashing threads.
enum Sink {
    Pending(Option<Bytes>),
    Inline(MultiHasher),
    Threads(Pool),
}

/// Hashing threads sharing the work of every algorithm.
///
/// Each algorithm is a lane: its running hash and the next chunk it needs. A thread takes
/// the free lane that is furthest behind, hashes one chunk with it and puts it back, so no
/// two threads ever hold the same lane and every lane sees the chunks in order. With as many
/// threads as cores (at most one per algorithm), the cores stay busy while any lane has
/// work, and the whole takes as long as the larger of the slowest algorithm alone and the
/// sum of all of them over the cores, which is what the CPU allows. (A thread per algorithm
/// with a queue each would leave a core idle whenever the slowest algorithm fell a queue
/// behind: on 2 cores without SHA instructions, 0.89 of that limit instead of 0.99.)
///
/// Built on std primitives only, so the core needs no async runtime: threads wait on a
/// condition variable; a producer either waits on one too (the blocking API) or leaves a
/// [`Waker`] and returns [`Poll::Pending`] (the async API), woken as soon as there is room
/// again or the digests are in.
struct Pool {
    shared: Arc<PoolShared>,
    threads: Vec<JoinHandle<()>>,
}

#[derive(Default)]
struct PoolShared {
    state: Mutex<PoolState>,
    /// Signalled when there may be work for a thread: a new chunk, a lane put back, the end.
    work: Condvar,
    /// Signalled when a chunk was hashed by every lane, or the digests are in (a blocking
    /// producer waits on it).
    progress: Condvar,
}

#[derive(Default)]
struct PoolState {
    /// Chunks not yet hashed by every lane, oldest first; the first is chunk number `base`.
    chunks: VecDeque<Bytes>,
    base: u64,
    lanes: Vec<Lane>,
    /// No more chunks will come.
    closed: bool,
    /// The digest was abandoned: the threads stop without finishing.
    abandoned: bool,
    /// The async producer waiting for room or for the digests.
    waker: Option<Waker>,
    digests: Option<DigestSet>,
    /// A hashing thread died (panicked): nothing hashes any more.
    dead: bool,
}

struct Lane {
    /// `None` while a thread is hashing with it.
    hasher: Option<AnyHasher>,
    /// The number of the next chunk this lane needs.
    next: u64,
}

impl PoolState {
    fn pushed(&self) -> u64 {
        self.base + self.chunks.len() as u64
    }

    fn has_room(&self) -> bool {
        self.dead || self.chunks.len() < QUEUE_DEPTH
    }

    /// The free lane furthest behind that has a chunk to hash.
    fn pick(&self) -> Option<usize> {
        let pushed = self.pushed();
        (0..self.lanes.len())
            .filter(|&i| self.lanes[i].hasher.is_some() && self.lanes[i].next < pushed)
            .min_by_key(|&i| self.lanes[i].next)
    }

    fn all_caught_up(&self) -> bool {
        let pushed = self.pushed();
        self.lanes
            .iter()
            .all(|l| l.hasher.is_some() && l.next == pushed)
    }

    fn stopped(&self) -> bool {
        self.dead || self.abandoned || self.digests.is_some()
    }
}

impl PoolShared {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // Nothing panics while holding the lock; a poisoned lock is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wake whoever waits for room or for the digests.
    fn progressed(&self, state: &mut PoolState) {
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
        self.progress.notify_all();
    }

    /// One hashing thread's loop.
    fn run(&self, #[cfg(test)] gate: Option<&tests::Gate>) {
        let mut state = self.lock();
        loop {
            if state.stopped() {
                return;
            }
            if let Some(i) = state.pick() {
                let lane = &mut state.lanes[i];
                let mut hasher = lane.hasher.take().expect("picked lanes are free");
                let index = lane.next;
                let chunk = state.chunks[(index - state.base) as usize].clone();
                drop(state);
                #[cfg(test)]
                if let Some(gate) = gate {
                    gate.pass();
                }
                hasher.update(&chunk);
                drop(chunk);
                state = self.lock();
                let lane = &mut state.lanes[i];
                lane.hasher = Some(hasher);
                lane.next += 1;
                // The lane is free again: another thread may want it.
                self.work.notify_one();
                let mut freed = false;
                while !state.chunks.is_empty() && state.lanes.iter().all(|l| l.next > state.base) {
                    state.chunks.pop_front();
                    state.base += 1;
                    freed = true;
                }
                if freed {
                    self.progressed(&mut state);
                }
                continue;
            }
            if state.closed && state.all_caught_up() {
                let digests = state
                    .lanes
                    .iter_mut()
                    .map(|l| l.hasher.take().expect("caught up").finish())
                    .collect();
                state.digests = Some(digests);
                self.work.notify_all();
                self.progressed(&mut state);
                return;
            }
            state = self
                .work
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    fn died(&self) {
        let mut state = self.lock();
        state.dead = true;
        state.chunks.clear();
        self.work.notify_all();
        self.progressed(&mut state);
    }
}

impl Pool {
    fn spawn(
        algorithms: AlgorithmSet,
        threads: usize,
        #[cfg(test)] gate: Option<Arc<tests::Gate>>,
    ) -> Pool {
        let shared = Arc::new(PoolShared::default());
        shared.lock().lanes = algorithms
            .iter()
            .map(|alg| Lane {
                hasher: Some(AnyHasher::new(alg)),
                next: 0,
            })
            .collect();
        let threads = (0..threads.max(1))
            .map(|n| {
                let shared = Arc::clone(&shared);
                #[cfg(test)]
                let gate = gate.clone();
                std::thread::Builder::new()
                    .name(format!("hash-{n}"))
                    .spawn(move || {
                        /// Tells everyone if this thread unwinds, so that nobody waits for it.
                        struct OnPanic<'a>(&'a PoolShared);
                        impl Drop for OnPanic<'_> {
                            fn drop(&mut self) {
                                if std::thread::panicking() {
                                    self.0.died();
                                }
                            }
                        }
                        let guard = OnPanic(&shared);
                        guard.0.run(
                            #[cfg(test)]
                            gate.as_deref(),
                        );
                    })
                    .expect("spawning a hashing thread")
            })
            .collect();
        Pool { shared, threads }
    }

    /// Whether there is room for one more chunk; if not, `cx` is woken when there is.
    fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.shared.lock();
        if state.has_room() {
            Poll::Ready(())
        } else {
            state.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// Queue `chunk`, waiting for room if the window is full (never, after
    /// [`Pool::poll_room`] said there was room: the digester is the only producer).
    fn push(&self, chunk: Bytes) {
        let mut state = self.shared.lock();
        while !state.has_room() {
            state = self
                .shared
                .progress
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        // If a thread died the chunk is dropped; finishing re-raises its panic.
        if !state.dead {
            state.chunks.push_back(chunk);
            self.shared.work.notify_all();
        }
    }

    fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.work.notify_all();
    }

    /// Wait for the digests (re-raising a hashing thread's panic).
    fn join(mut self) -> DigestSet {
        self.close();
        for thread in std::mem::take(&mut self.threads) {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        self.shared
            .lock()
            .digests
            .take()
            .expect("hashing threads that returned left the digests")
    }

    /// The digests once they are in, without blocking (call [`Pool::close`] first).
    fn poll_join(&mut self, cx: &mut Context<'_>) -> Poll<DigestSet> {
        let mut state = self.shared.lock();
        if let Some(digests) = state.digests.take() {
            // The threads are done but for returning; they are left to end on their own.
            return Poll::Ready(digests);
        }
        if !state.dead {
            state.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        drop(state);
        // A thread is unwinding: joining takes no longer than the unwinding itself.
        for thread in std::mem::take(&mut self.threads) {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        panic!("a hashing thread died")
    }
}

impl Drop for Pool {
    /// An abandoned digest (an error, an object found too large) stops its threads soon.
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.abandoned = true;
        state.chunks.clear();
        self.shared.work.notify_all();
    }
}

/// Streaming digests of exactly the requested algorithms, in bounded memory.
///
/// Feed it with [`StreamDigester::update`] (any byte slices), [`StreamDigester::read_from`]
/// (reads straight into its chunk buffers, no extra copy) or [`std::io::Write`], then
/// [`StreamDigester::finish`]. These block while the hashing threads catch up, which is what
/// a thread reading a file wants.
///
/// From async code use [`StreamDigester::update_async`] and
/// [`StreamDigester::finish_async`] (or [`StreamDigester::poll_ready`] directly) instead:
/// they never block, but return [`Poll::Pending`] while the hashing threads are behind and
/// are woken when they catch up, so a runtime's worker thread goes on with other tasks. They
/// need no particular runtime. Beyond the first chunk, the async API hands every chunk to a
/// hashing thread even on one core, so the caller's thread only ever copies bytes; at most
/// one chunk (a small object) is hashed on the caller's thread, in `finish_async`.
pub struct StreamDigester {
    algorithms: AlgorithmSet,
    /// PDQ's view of the same bytes, when PDQ was asked for.
    tap: Option<ImageTap>,
    parallel: bool,
    sink: Sink,
    /// The chunk being filled: always `CHUNK_SIZE` long (initialised once, then recycled),
    /// of which `filled` bytes are data.
    current: BytesMut,
    filled: usize,
    /// Chunks handed out, oldest first; reclaimed for reuse once every hasher is done with them.
    in_flight: VecDeque<Bytes>,
    bytes: u64,
    #[cfg(test)]
    gate: Option<Arc<tests::Gate>>,
}

impl StreamDigester {
    /// Hash on worker threads when it can pay off (several cores, more than one chunk).
    pub fn new(algorithms: AlgorithmSet) -> StreamDigester {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_parallelism(algorithms, cores > 1)
    }

    /// As [`StreamDigester::new`], choosing explicitly whether worker threads may be used
    /// (one per core, at most one per algorithm, at least two). Without, the blocking API
    /// hashes on the caller's thread and the async API on one thread for all algorithms.
    pub fn with_parallelism(algorithms: AlgorithmSet, parallel: bool) -> StreamDigester {
        StreamDigester {
            tap: algorithms
                .contains(Algorithm::Pdq)
                .then(|| ImageTap::new(DecodeLimits::default())),
            algorithms: algorithms.exact(),
            parallel,
            sink: Sink::Pending(None),
            current: BytesMut::new(),
            filled: 0,
            in_flight: Default::default(),
            bytes: 0,
            #[cfg(test)]
            gate: None,
        }
    }

    /// Bytes consumed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Decode images for PDQ within `limits` instead of the defaults.
    pub fn with_image_limits(mut self, limits: DecodeLimits) -> StreamDigester {
        if self.tap.is_some() {
            self.tap = Some(ImageTap::new(limits));
        }
        self
    }

    /// Add `data` to the stream, waiting for the hashing threads when they are behind.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = self.fill(data);
            data = &data[take..];
            if self.filled == CHUNK_SIZE {
                self.flush_chunk(false);
            }
        }
    }

    /// Add `data` to the stream without ever blocking: while the hashing threads are behind,
    /// this future is pending (and woken when they catch up). Not cancel-safe: if it is
    /// dropped before it completes, drop the digester too.
    pub async fn update_async(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = self.fill(data);
            data = &data[take..];
            if self.filled == CHUNK_SIZE {
                std::future::poll_fn(|cx| self.poll_ready(cx)).await;
                self.flush_chunk(true);
            }
        }
    }

    /// Whether the digester can take a full chunk without blocking: [`Poll::Ready`] once
    /// the hashing threads have room for it, [`Poll::Pending`] (with `cx` woken when they
    /// have) before. Never blocks.
    pub fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &self.sink {
            Sink::Threads(pool) => pool.poll_room(cx),
            _ => Poll::Ready(()),
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
            if let Some(tap) = &mut self.tap {
                tap.update(&self.current[self.filled..self.filled + n]);
            }
            self.filled += n;
            self.bytes += n as u64;
            if n == 0 {
                return Ok(self.bytes - start);
            }
            if self.filled == CHUNK_SIZE {
                self.flush_chunk(false);
            }
        }
    }

    /// Finish the stream and return its digests, waiting for the hashing threads.
    pub fn finish(mut self) -> Digested {
        if self.filled > 0 {
            self.flush_chunk(false);
        }
        let digests = match std::mem::replace(&mut self.sink, Sink::Pending(None)) {
            Sink::Pending(first) => self.hash_inline(first),
            Sink::Inline(h) => h.finish(),
            Sink::Threads(pool) => pool.join(),
        };
        self.digested(digests)
    }

    /// As [`StreamDigester::finish`], without ever blocking: pending until the hashing
    /// threads are done.
    pub async fn finish_async(mut self) -> Digested {
        if self.filled > 0 {
            std::future::poll_fn(|cx| self.poll_ready(cx)).await;
            self.flush_chunk(true);
        }
        let digests = match std::mem::replace(&mut self.sink, Sink::Pending(None)) {
            Sink::Pending(first) => self.hash_inline(first),
            Sink::Inline(h) => h.finish(),
            Sink::Threads(mut pool) => {
                pool.close();
                std::future::poll_fn(|cx| pool.poll_join(cx)).await
            }
        };
        self.digested(digests)
    }

    /// Copy as much of `data` as fits into the current chunk; returns how much that was.
    /// The result: the digests, and the image's PDQ when asked for (decoded here, after the
    /// last byte, within the tap's limits).
    fn digested(&mut self, mut digests: DigestSet) -> Digested {
        let image = self.tap.take().map(ImageTap::finish);
        if let Some(ImageOutcome::Hashed(summary)) = &image {
            digests.insert(Digest::pdq(summary.pdq));
        }
        Digested {
            digests,
            bytes: self.bytes,
            image,
        }
    }

    fn fill(&mut self, data: &[u8]) -> usize {
        self.ensure_buffer();
        let take = (CHUNK_SIZE - self.filled).min(data.len());
        self.current[self.filled..self.filled + take].copy_from_slice(&data[..take]);
        if let Some(tap) = &mut self.tap {
            tap.update(&data[..take]);
        }
        self.filled += take;
        self.bytes += take as u64;
        take
    }

    /// The digests of an object of at most one chunk.
    fn hash_inline(&self, only: Option<Bytes>) -> DigestSet {
        let mut h = MultiHasher::new(self.algorithms);
        if let Some(chunk) = only {
            h.update(&chunk);
        }
        h.finish()
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

    /// Hand the current chunk on. `offload`: the caller must not hash (async code), so
    /// without parallelism one thread hashes every algorithm.
    fn flush_chunk(&mut self, offload: bool) {
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
                self.sink = if self.algorithms.is_empty() || !(self.parallel || offload) {
                    Sink::Inline(MultiHasher::new(self.algorithms))
                } else {
                    // As many threads as cores, at most one per algorithm; at least two when
                    // parallel, so that a parallel digest is one even on one core.
                    let threads = if self.parallel {
                        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                        self.algorithms.len().min(cores.max(2))
                    } else {
                        1
                    };
                    Sink::Threads(Pool::spawn(
                        self.algorithms,
                        threads,
                        #[cfg(test)]
                        self.gate.clone(),
                    ))
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
            Sink::Threads(pool) => {
                pool.push(chunk.clone());
                self.in_flight.push_back(chunk);
            }
            Sink::Pending(_) => unreachable!("dispatch happens after the sink is chosen"),
        }
        // Never keep more chunks than the window holds, or memory would grow with the object.
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

/// Digest everything `reader` yields.
pub fn digest_reader<R: Read>(mut reader: R, algorithms: AlgorithmSet) -> io::Result<Digested> {
    let mut d = StreamDigester::new(algorithms);
    d.read_from(&mut reader)?;
    Ok(d.finish())
}

/// Digest everything an async byte stream yields (e.g. an S3 GetObject body), stopping at its
/// first error. Never blocks the thread polling it (see [`StreamDigester::update_async`]).
pub async fn digest_stream<S, B, E>(stream: S, algorithms: AlgorithmSet) -> Result<Digested, E>
where
    S: futures_core::Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    let mut stream = std::pin::pin!(stream);
    let mut d = StreamDigester::new(algorithms);
    while let Some(item) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        d.update_async(item?.as_ref()).await;
    }
    Ok(d.finish_async().await)
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

    /// A minimal executor: polls `f` on this thread, sleeping until its waker is called.
    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        let mut f = std::pin::pin!(f);
        loop {
            let seen = wakes.count();
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            wakes.wait_past(seen);
        }
    }

    /// A waker that counts its calls, and lets a thread sleep until the next one.
    #[derive(Default)]
    struct Wakes {
        count: Mutex<usize>,
        woken: Condvar,
    }
    impl std::task::Wake for Wakes {
        fn wake(self: Arc<Self>) {
            *self.count.lock().unwrap() += 1;
            self.woken.notify_all();
        }
    }
    impl Wakes {
        fn count(&self) -> usize {
            *self.count.lock().unwrap()
        }
        fn wait_past(&self, seen: usize) {
            let count = self.count.lock().unwrap();
            drop(self.woken.wait_while(count, |c| *c == seen).unwrap());
        }
    }

    /// Holds the hashing threads before each chunk until opened (or makes them panic): a
    /// consumer exactly as slow as a test needs, with no timing involved.
    #[derive(Default)]
    pub(super) struct Gate {
        state: Mutex<(bool, bool)>,
        changed: Condvar,
    }
    impl Gate {
        pub(super) fn pass(&self) {
            let state = self.state.lock().unwrap();
            let (_, panic) = *self.changed.wait_while(state, |s| !s.0 && !s.1).unwrap();
            assert!(!panic, "hashing thread told to fail");
        }
        fn set(&self, open: bool, panic: bool) {
            *self.state.lock().unwrap() = (open, panic);
            self.changed.notify_all();
        }
    }

    /// Polls `f` once on another thread and returns whether it was pending; fails instead of
    /// hanging if the poll blocks (a minute is beyond any scheduling delay).
    fn polls_pending<F: std::future::Future + Send>(f: std::pin::Pin<&mut F>) -> bool {
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::channel();
            s.spawn(move || {
                let mut cx = Context::from_waker(Waker::noop());
                let _ = tx.send(f.poll(&mut cx).is_pending());
            });
            rx.recv_timeout(std::time::Duration::from_secs(60))
                .expect("a poll blocked its thread instead of returning Pending")
        })
    }

    #[test]
    fn async_api_returns_pending_instead_of_blocking_while_hashers_are_behind() {
        let data = pattern(40 * CHUNK_SIZE + 5);
        let expected = digest_bytes(&data, AlgorithmSet::ALL);
        for parallel in [true, false] {
            let gate = Arc::new(Gate::default());
            let mut d = StreamDigester::with_parallelism(AlgorithmSet::ALL, parallel);
            d.gate = Some(Arc::clone(&gate));

            // The hashing threads are held: the update cannot complete, and must say so.
            {
                let mut update = std::pin::pin!(d.update_async(&data));
                assert!(polls_pending(update.as_mut()), "parallel={parallel}");
                // ...and it resumes once they move again.
                gate.set(true, false);
                block_on(update);
            }
            assert_eq!(d.bytes(), data.len() as u64);

            // Finishing waits for the threads the same way.
            gate.set(false, false);
            let mut finish = std::pin::pin!(d.finish_async());
            assert!(polls_pending(finish.as_mut()), "parallel={parallel}");
            gate.set(true, false);
            assert_eq!(block_on(finish).digests, expected, "parallel={parallel}");
        }
    }

    #[test]
    fn async_updates_take_in_bounded_memory_while_hashers_are_behind() {
        let data = pattern(40 * CHUNK_SIZE);
        let gate = Arc::new(Gate::default());
        let mut d = StreamDigester::with_parallelism(AlgorithmSet::ALL, true);
        d.gate = Some(Arc::clone(&gate));
        {
            let mut update = std::pin::pin!(d.update_async(&data));
            assert!(polls_pending(update.as_mut()));
        }
        // The window is full (its chunks held by the threads at the gate or waiting for
        // them) and one more chunk is filled and waits for room: nothing beyond that was
        // taken in.
        let taken = d.bytes();
        assert!(
            taken <= ((QUEUE_DEPTH + 2) * CHUNK_SIZE) as u64,
            "took {taken} bytes while the hashers were stalled"
        );
        assert!(d.in_flight.len() <= QUEUE_DEPTH + 2);
        // An abandoned digest lets its threads go.
        gate.set(true, false);
        drop(d);
    }

    #[test]
    fn a_hashing_thread_panic_is_raised_not_waited_for() {
        let data = pattern(20 * CHUNK_SIZE);
        for use_async in [true, false] {
            let gate = Arc::new(Gate::default());
            gate.set(false, true);
            let mut d = StreamDigester::with_parallelism(AlgorithmSet::ALL, true);
            d.gate = Some(gate);
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if use_async {
                    block_on(async {
                        d.update_async(&data).await;
                        d.finish_async().await
                    })
                } else {
                    d.update(&data);
                    d.finish()
                }
            }));
            assert!(outcome.is_err(), "async={use_async}");
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
        assert_eq!(AlgorithmSet::from_bits(0b1_0000), None);
        assert_eq!(AlgorithmSet::ALL.exact(), AlgorithmSet::EXACT);
        assert_eq!("PDQ".parse::<Algorithm>(), Ok(Algorithm::Pdq));
        assert_eq!("SHA-256".parse::<Algorithm>(), Ok(Algorithm::Sha256));
    }
}
