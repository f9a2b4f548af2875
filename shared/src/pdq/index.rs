//! Multi-index hashing over a set of PDQ hashes: every hash within `t` bits of a query,
//! without comparing the query with each of them.
//!
//! A hash is cut into its 16 slots of 16 bits ([`PdqHash::slot`]). If two hashes differ in
//! at most `t` bits, the pigeonhole principle says that at least one of the 16 slots differs
//! in at most `r = t / 16` bits (rounded down). So the index keeps, per slot, the hashes
//! grouped by that slot's value, and a query looks up, in every slot, the query's own value
//! and every value within `r` bits of it: 1 value per slot up to `t = 15`, 17 up to `t = 31`
//! (Meta's recommended threshold, [`super::DEFAULT_THRESHOLD`]), 137 up to `t = 47`. Each
//! hash found is a candidate only; its full distance decides. Above `t = 47` the number of
//! values to enumerate grows quickly (697 per slot at `r = 3`) while the candidates approach
//! the whole set, so the index scans all its hashes instead ([`MAX_INDEXED_THRESHOLD`]).
//!
//! Layout, for `n` distinct hashes: the hashes themselves, sorted (32 bytes each); and per
//! slot a table in compressed-sparse-row form: 65,537 offsets, and `n` ids (positions in the
//! sorted hashes) grouped by the slot's value. Sorting the hashes orders them by slot 0
//! first (its bytes lead), so slot 0's groups are runs of the hashes themselves and need no
//! ids. In all `32 n + 15 × 4 n` bytes plus 4 MiB of offsets: 92 bytes a hash, about 924 MB
//! for ten million hashes. The index is rebuilt from the hash list when one is loaded (by
//! counting sorts, no hashing): it has no byte form of its own.
//!
//! The cost of a query is the number of candidates: with uniformly spread hashes, about
//! `n / 65,536` per value looked up, so `16 × 17 × n / 65,536` (about 41,500 at ten million
//! hashes, `t = 31`, per variant hash) against `n` for a scan. Each is a random read of 32
//! bytes, so a query gathers the candidates first (8 bytes each: about 2.6 MB for an
//! upload's 8 variants at ten million hashes, twice while ordering them) and checks them in
//! order of position. Hash lists with many near-identical entries crowd some slot values and
//! cost more.

use super::PdqHash;

/// The largest threshold answered through the slot tables; above it a query scans every
/// hash (still exact, only slower).
pub const MAX_INDEXED_THRESHOLD: u32 = 47;

/// The number of values looked up per slot when slots may differ in up to 0, 1 or 2 bits.
const PROBES_BY_RADIUS: [usize; 3] = [1, 17, 137];

/// The masks that turn a slot value into every value within 2 bits of it: no bit, then each
/// single bit, then each pair, so a prefix of the list serves each radius.
const PROBE_MASKS: [u16; 137] = probe_masks();

const fn probe_masks() -> [u16; 137] {
    let mut masks = [0u16; 137];
    let mut k = 1;
    let mut a = 0;
    while a < 16 {
        masks[k] = 1 << a;
        k += 1;
        a += 1;
    }
    let mut a = 0;
    while a < 16 {
        let mut b = a + 1;
        while b < 16 {
            masks[k] = (1 << a) | (1 << b);
            k += 1;
            b += 1;
        }
        a += 1;
    }
    masks
}

const SLOTS: usize = 16;
const SLOT_VALUES: usize = 1 << 16;

/// One slot's groups: the ids of the hashes whose slot has value `v` are
/// `ids[offsets[v]..offsets[v + 1]]` (for slot 0, the hashes `offsets[v]..offsets[v + 1]`
/// themselves, and `ids` is empty).
#[derive(Clone, Default)]
struct SlotTable {
    offsets: Vec<u32>,
    ids: Vec<u32>,
}

/// A set of PDQ hashes, indexed for "every hash within `t` bits of this one".
#[derive(Clone, Default)]
pub struct PdqIndex {
    /// Distinct, sorted.
    hashes: Vec<PdqHash>,
    /// One per slot; all empty when `hashes` is.
    tables: Vec<SlotTable>,
}

/// A hash of the index near one of an upload's variants (its eight rotations and flips).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PdqMatch {
    pub hash: PdqHash,
    /// The smallest distance between `hash` and any of the variants.
    pub distance: u32,
    /// The variant at that distance (the first such, by position in the slice given).
    pub variant: usize,
}

impl PdqIndex {
    /// Indexes `hashes`; duplicates are kept once.
    ///
    /// # Panics
    /// With `u32::MAX` or more distinct hashes (ids are 32-bit).
    pub fn build(hashes: impl IntoIterator<Item = PdqHash>) -> PdqIndex {
        let mut hashes: Vec<PdqHash> = hashes.into_iter().collect();
        hashes.sort_unstable();
        hashes.dedup();
        hashes.shrink_to_fit();
        assert!(
            hashes.len() < u32::MAX as usize,
            "a PDQ index holds fewer than 2^32 hashes"
        );
        if hashes.is_empty() {
            return PdqIndex::default();
        }
        let mut tables = Vec::with_capacity(SLOTS);
        for slot in 0..SLOTS {
            tables.push(SlotTable::build(&hashes, slot));
        }
        PdqIndex { hashes, tables }
    }

    /// The number of distinct hashes.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The distinct hashes, sorted.
    pub fn hashes(&self) -> &[PdqHash] {
        &self.hashes
    }

    /// Whether `hash` itself is in the set.
    pub fn contains(&self, hash: &PdqHash) -> bool {
        self.hashes.binary_search(hash).is_ok()
    }

    /// The heap memory the index holds, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.hashes.capacity() * std::mem::size_of::<PdqHash>()
            + self.tables.capacity() * std::mem::size_of::<SlotTable>()
            + self
                .tables
                .iter()
                .map(|t| (t.offsets.capacity() + t.ids.capacity()) * std::mem::size_of::<u32>())
                .sum::<usize>()
    }

    /// Every hash within `threshold` bits of `query`, with its distance, nearest first (ties
    /// in hash order).
    pub fn query(&self, query: &PdqHash, threshold: u32) -> Vec<(PdqHash, u32)> {
        self.query_variants(std::slice::from_ref(query), threshold)
            .into_iter()
            .map(|m| (m.hash, m.distance))
            .collect()
    }

    /// Every hash within `threshold` bits of any of `variants` (an upload's hash and its
    /// rotations and flips), once, with its smallest distance and the variant at it; nearest
    /// first, ties in hash order.
    pub fn query_variants(&self, variants: &[PdqHash], threshold: u32) -> Vec<PdqMatch> {
        // (id, distance, variant): sorted, the first of each id is its best.
        let mut found: Vec<(u32, u32, u32)> = Vec::new();
        if threshold > MAX_INDEXED_THRESHOLD {
            // One pass over the hashes for all the variants.
            for (id, hash) in self.hashes.iter().enumerate() {
                let best = variants
                    .iter()
                    .enumerate()
                    .map(|(v, q)| (hash.distance(q), v))
                    .min();
                if let Some((distance, v)) = best {
                    if distance <= threshold {
                        found.push((id as u32, distance, v as u32));
                    }
                }
            }
        } else {
            found = self.gather(variants, threshold);
            found.sort_unstable();
            found.dedup_by_key(|&mut (id, _, _)| id);
        }
        found.sort_unstable_by_key(|&(id, distance, _)| (distance, id));
        found
            .into_iter()
            .map(|(id, distance, v)| PdqMatch {
                hash: self.hashes[id as usize],
                distance,
                variant: v as usize,
            })
            .collect()
    }

    /// `(id, distance, variant)` for each hash within `threshold` (at most
    /// [`MAX_INDEXED_THRESHOLD`]) of each variant, through the slot tables; a hash near
    /// several variants comes once per variant.
    ///
    /// The hashes the tables point to are checked in order of their position, not in the
    /// order found: at ten million hashes an upload's 8 variants point to some 330,000
    /// hashes scattered over 320 MB, and visiting them region by region (64 Ki hashes, 2 MiB)
    /// keeps the address translations cached, where the order found misses the TLB on
    /// almost every one.
    fn gather(&self, variants: &[PdqHash], threshold: u32) -> Vec<(u32, u32, u32)> {
        let mut found = Vec::new();
        if self.hashes.is_empty() || variants.is_empty() {
            return found;
        }
        assert!(variants.len() < 1 << 28, "fewer than 2^28 variants");
        let radius = threshold / SLOTS as u32;
        let masks = &PROBE_MASKS[..PROBES_BY_RADIUS[radius as usize]];
        let slots: Vec<[u16; SLOTS]> = variants
            .iter()
            .map(|q| std::array::from_fn(|i| q.slot(i)))
            .collect();
        // Slot 0's groups are runs of the sorted hashes: checked as found. The others' ids
        // are gathered as id << 32 | variant << 4 | slot.
        let mut pending: Vec<u64> = Vec::new();
        for (v, (q, q_slots)) in variants.iter().zip(&slots).enumerate() {
            let table = &self.tables[0];
            for &mask in masks {
                let value = usize::from(q_slots[0] ^ mask);
                let range = table.offsets[value] as usize..table.offsets[value + 1] as usize;
                for (hash, id) in self.hashes[range.clone()].iter().zip(range) {
                    let distance = hash.distance(q);
                    if distance <= threshold {
                        found.push((id as u32, distance, v as u32));
                    }
                }
            }
            for (slot, table) in self.tables.iter().enumerate().skip(1) {
                let tag = (v as u64) << 4 | slot as u64;
                for &mask in masks {
                    let value = usize::from(q_slots[slot] ^ mask);
                    let range = table.offsets[value] as usize..table.offsets[value + 1] as usize;
                    pending.extend(table.ids[range].iter().map(|&id| u64::from(id) << 32 | tag));
                }
            }
        }
        // Counting sort by region (id >> 16).
        let regions = (self.hashes.len() >> 16) + 1;
        let mut starts = vec![0u32; regions + 1];
        for &c in &pending {
            starts[(c >> 48) as usize + 1] += 1;
        }
        let mut sum = 0;
        for start in &mut starts {
            sum += *start;
            *start = sum;
        }
        let mut ordered = vec![0u64; pending.len()];
        for &c in &pending {
            let at = &mut starts[(c >> 48) as usize];
            ordered[*at as usize] = c;
            *at += 1;
        }
        drop(pending);
        for c in ordered {
            let id = (c >> 32) as u32;
            let v = ((c >> 4) & 0x0fff_ffff) as usize;
            let slot = (c & 15) as usize;
            let hash = &self.hashes[id as usize];
            let distance = hash.distance(&variants[v]);
            // Found in every slot within `radius` of the variant's: kept from the first.
            if distance <= threshold
                && (0..slot).all(|j| (hash.slot(j) ^ slots[v][j]).count_ones() > radius)
            {
                found.push((id, distance, v as u32));
            }
        }
        found
    }
}

impl SlotTable {
    /// Slot `slot`'s table over the sorted `hashes`, by counting sort.
    fn build(hashes: &[PdqHash], slot: usize) -> SlotTable {
        let mut offsets = vec![0u32; SLOT_VALUES + 1];
        for hash in hashes {
            offsets[usize::from(hash.slot(slot)) + 1] += 1;
        }
        // Counts at `v + 1` summed up: the start of each value's group at `v`.
        let mut sum = 0;
        for offset in &mut offsets {
            sum += *offset;
            *offset = sum;
        }
        if slot == 0 {
            // The hashes are sorted, so slot 0's groups are already contiguous.
            return SlotTable {
                offsets,
                ids: Vec::new(),
            };
        }
        let mut next = offsets[..SLOT_VALUES].to_vec();
        let mut ids = vec![0u32; hashes.len()];
        for (id, hash) in hashes.iter().enumerate() {
            let at = &mut next[usize::from(hash.slot(slot))];
            ids[*at as usize] = id as u32;
            *at += 1;
        }
        SlotTable { offsets, ids }
    }
}

impl std::fmt::Debug for PdqIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdqIndex")
            .field("len", &self.len())
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

/// Every hash of `hashes` within `threshold` bits of `query`, by comparing each: the
/// reference the index is tested and measured against. Same order as [`PdqIndex::query`]
/// (nearest first, ties in hash order); duplicates in `hashes` are repeated.
pub fn brute_force(hashes: &[PdqHash], query: &PdqHash, threshold: u32) -> Vec<(PdqHash, u32)> {
    let mut found: Vec<(PdqHash, u32)> = hashes
        .iter()
        .filter_map(|h| {
            let distance = h.distance(query);
            (distance <= threshold).then_some((*h, distance))
        })
        .collect();
    found.sort_unstable_by_key(|&(h, distance)| (distance, h));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64: fixed seeds, reproducible hashes.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, bound: u64) -> u64 {
            ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
        }

        fn hash(&mut self) -> PdqHash {
            let mut bytes = [0u8; 32];
            for chunk in bytes.chunks_exact_mut(8) {
                chunk.copy_from_slice(&self.next_u64().to_le_bytes());
            }
            PdqHash(bytes)
        }
    }

    fn flip(hash: &PdqHash, bit: usize) -> PdqHash {
        let mut out = *hash;
        out.0[bit / 8] ^= 1 << (bit % 8);
        out
    }

    /// `hash` with `d` distinct random bits flipped.
    fn random_neighbour(rng: &mut Rng, hash: &PdqHash, d: usize) -> PdqHash {
        let mut bits: Vec<usize> = (0..256).collect();
        let mut out = *hash;
        for i in 0..d {
            let j = i + rng.below((256 - i) as u64) as usize;
            bits.swap(i, j);
            out = flip(&out, bits[i]);
        }
        out
    }

    /// `hash` with `d` bits flipped spread as evenly as possible over the 16 slots (random
    /// bits within each): the case the pigeonhole bound is tight for, where no slot is
    /// closer than `d / 16` bits.
    fn spread_neighbour(rng: &mut Rng, hash: &PdqHash, d: usize) -> PdqHash {
        let mut out = *hash;
        let first = rng.below(16) as usize;
        for slot in 0..16 {
            let here = d / 16 + usize::from((slot + 16 - first) % 16 < d % 16);
            let mut bits: Vec<usize> = (0..16).collect();
            for i in 0..here {
                let j = i + rng.below((16 - i) as u64) as usize;
                bits.swap(i, j);
                out = flip(&out, slot * 16 + bits[i]);
            }
        }
        out
    }

    const THRESHOLDS: [u32; 8] = [0, 15, 16, 31, 32, 47, 48, 64];

    #[test]
    fn probe_masks_cover_each_radius_once() {
        for (radius, &count) in PROBES_BY_RADIUS.iter().enumerate() {
            let masks = &PROBE_MASKS[..count];
            assert!(masks.iter().all(|m| m.count_ones() <= radius as u32));
            let mut sorted = masks.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), count);
        }
    }

    #[test]
    fn index_returns_exactly_what_brute_force_returns() {
        let mut rng = Rng(0x7064_715f_696e_6478);
        let mut hashes: Vec<PdqHash> = (0..1_000_000).map(|_| rng.hash()).collect();
        let queries: Vec<PdqHash> = (0..300).map(|_| rng.hash()).collect();
        for q in &queries {
            for d in 0..=40 {
                hashes.push(random_neighbour(&mut rng, q, d));
                hashes.push(spread_neighbour(&mut rng, q, d));
            }
        }
        // Duplicates: some hashes twice, one many times.
        let repeated: Vec<PdqHash> = hashes.iter().step_by(997).copied().collect();
        hashes.extend(repeated);
        hashes.extend(std::iter::repeat_n(queries[0], 5));

        let index = PdqIndex::build(hashes.iter().copied());
        let mut distinct = hashes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(index.hashes(), &distinct[..]);
        assert_eq!(index.len(), distinct.len());
        assert!(index.contains(&queries[0]) && index.contains(&hashes[12_345]));
        assert!(!index.contains(&rng.hash()));
        // 32 bytes a hash, 4 an id in 15 slots, 16 offset tables.
        let expected = distinct.len() * (32 + 15 * 4) + 16 * 65_537 * 4;
        assert!(index.memory_bytes() >= expected && index.memory_bytes() < expected + 4096);

        // Planted queries, and a few with only random hashes around them.
        let mut probes = queries.clone();
        probes.extend((0..20).map(|_| rng.hash()));
        let mut checked = 0;
        for q in &probes {
            let reference = brute_force(&distinct, q, 64);
            for t in THRESHOLDS {
                let expected: Vec<_> = reference.iter().filter(|m| m.1 <= t).copied().collect();
                assert_eq!(index.query(q, t), expected, "threshold {t}, query {q}");
                checked += expected.len();
            }
        }
        // The planted neighbours were all found (2 per distance, the query itself among
        // them), so the comparison was not vacuous.
        assert!(checked > 300 * 2 * 41);
    }

    #[test]
    fn variants_report_their_smallest_distance() {
        let mut rng = Rng(42);
        let mut hashes: Vec<PdqHash> = (0..100_000).map(|_| rng.hash()).collect();
        let mut variants: Vec<PdqHash> = (0..8).map(|_| rng.hash()).collect();
        // Variant 6 is 20 bits from variant 1, and `tie` halfway: 10 bits from each.
        variants[6] = random_neighbour(&mut rng, &variants[1], 20);
        let mut tie = variants[1];
        let mut moved = 0;
        for i in 0..256 {
            if bit(&variants[1], i) != bit(&variants[6], i) && moved < 10 {
                tie = flip(&tie, i);
                moved += 1;
            }
        }
        assert_eq!(
            (tie.distance(&variants[1]), tie.distance(&variants[6])),
            (10, 10)
        );
        hashes.push(tie);
        // 3 bits from variant 5, far from the others.
        let near5 = random_neighbour(&mut rng, &variants[5], 3);
        hashes.push(near5);
        for (v, q) in variants.iter().enumerate() {
            for d in [0, 9, 17, 30, 31, 32, 45] {
                hashes.push(spread_neighbour(&mut rng, q, d + v % 2));
            }
        }
        let index = PdqIndex::build(hashes);
        for t in [0, 15, 31, 47, 60] {
            let got = index.query_variants(&variants, t);
            let mut expected: Vec<PdqMatch> = index
                .hashes()
                .iter()
                .filter_map(|h| {
                    let (distance, variant) = variants
                        .iter()
                        .enumerate()
                        .map(|(v, q)| (h.distance(q), v))
                        .min()?;
                    (distance <= t).then_some(PdqMatch {
                        hash: *h,
                        distance,
                        variant,
                    })
                })
                .collect();
            expected.sort_unstable_by_key(|m| (m.distance, m.hash));
            assert_eq!(got, expected, "threshold {t}");
            if t >= 3 {
                assert!(got.contains(&PdqMatch {
                    hash: near5,
                    distance: 3,
                    variant: 5
                }));
            }
        }
        let got = index.query_variants(&variants, 15);
        let m = got
            .iter()
            .find(|m| m.hash == tie)
            .expect("the tie is found");
        assert_eq!((m.distance, m.variant), (10, 1));
        assert!(index.query_variants(&[], 31).is_empty());
    }

    fn bit(hash: &PdqHash, i: usize) -> bool {
        hash.0[i / 8] >> (i % 8) & 1 == 1
    }

    #[test]
    fn empty_index_finds_nothing() {
        let index = PdqIndex::build(Vec::new());
        assert!(index.is_empty());
        assert_eq!(index.len(), 0);
        assert_eq!(index.memory_bytes(), 0);
        let q = PdqHash([0x5a; 32]);
        for t in [0, 31, 47, 256] {
            assert!(index.query(&q, t).is_empty());
            assert!(index.query_variants(&[q, q], t).is_empty());
        }
        assert!(!index.contains(&q));
    }

    #[test]
    fn duplicates_are_kept_once() {
        let h = PdqHash([0xa5; 32]);
        let index = PdqIndex::build([h, h, h, flip(&h, 3), flip(&h, 3)]);
        assert_eq!(index.len(), 2);
        assert_eq!(index.query(&h, 31), vec![(h, 0), (flip(&h, 3), 1)]);
        assert_eq!(index.query(&h, 256), vec![(h, 0), (flip(&h, 3), 1)]);
    }
}
