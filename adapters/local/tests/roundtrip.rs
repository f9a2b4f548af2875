//! Every imported digest is found through filter and store; random non-members are not, and
//! the filter's measured false-positive rate stays within twice the configured one.

use std::fmt::Write as _;

use hashgate_core::digest::{Algorithm, Digest, DigestSet};
use hashgate_core::lists::{ListFormat, ParseOptions};
use hashgate_core::scan::{decide, Screen};
use hashgate_core::store::Op;
use hashgate_local::{import_list, LocalDb};

/// splitmix64: deterministic, well-mixed test data without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    fn digest(&mut self, alg: Algorithm) -> Digest {
        let mut raw = [0u8; 32];
        for chunk in raw.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        Digest::new(alg, &raw[..alg.byte_len()]).unwrap()
    }
}

const ALGS: [Algorithm; 3] = [Algorithm::Md5, Algorithm::Sha1, Algorithm::Sha256];

#[test]
fn members_found_non_members_not() {
    let dir = tempfile::tempdir().unwrap();
    let db = LocalDb::create(dir.path()).unwrap();
    let mut rng = Rng(1);
    let members: Vec<Digest> = (0..60_000).map(|i| rng.digest(ALGS[i % 3])).collect();
    let mut text = String::new();
    for d in &members {
        writeln!(text, "{d}").unwrap();
    }
    let options = ParseOptions {
        source_name: "members.txt".into(),
        default_list: "members".into(),
        algorithm: None,
    };
    let (summary, stats) = import_list(
        db.store(),
        text.as_bytes(),
        ListFormat::Plain,
        &options,
        Op::Add,
    )
    .unwrap();
    assert_eq!((summary.entries, stats.added), (60_000, 60_000));

    // A loose rate, so that a million queries measure it precisely.
    let p = 1e-3;
    let filter = db.rebuild_filter(p).unwrap();
    let screen = Screen::Filter(&filter);
    for d in &members {
        let digests: DigestSet = [*d].into_iter().collect();
        let decision = pollster::block_on(decide(db.store(), screen, &digests, None)).unwrap();
        let m = decision.verdict.matches();
        assert_eq!(m.len(), 1, "{d:?} not found");
        assert_eq!((m[0].digest, m[0].list.as_str()), (*d, "members"));
    }

    let mut rng = Rng(2);
    let queries = 1_000_000u32;
    let mut false_positives = 0u64;
    for i in 0..queries {
        let digests: DigestSet = [rng.digest(ALGS[i as usize % 3])].into_iter().collect();
        let decision = pollster::block_on(decide(db.store(), screen, &digests, None)).unwrap();
        assert!(!decision.verdict.is_match(), "a random digest matched");
        false_positives += u64::from(decision.filter_false_positives);
    }
    let measured = false_positives as f64 / f64::from(queries);
    assert!(measured <= 2.0 * p, "measured rate {measured} > 2 × {p}");
    assert!(
        false_positives > 0,
        "1e6 queries at 1e-3 must show false positives"
    );
}
