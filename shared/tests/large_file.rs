//! Digests of a multi-GiB file: bounded memory, correct past every 32-bit boundary, checked
//! against an independent implementation (coreutils), through the blocking API and the async
//! one.

use std::io::Read;
use std::pin::Pin;
use std::process::Command;
use std::task::{Context, Poll};

use hashgate_core::digest::{digest_reader, digest_stream, Algorithm, AlgorithmSet, Digested};

fn coreutils(tool: &str, path: &std::path::Path) -> String {
    let out = Command::new(tool)
        .arg(path)
        .output()
        .expect("coreutils present");
    assert!(out.status.success(), "{tool} failed");
    String::from_utf8(out.stdout).unwrap()[..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

#[test]
fn five_gib_sparse_file_matches_coreutils_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse.bin");
    let file = std::fs::File::create(&path).unwrap();
    // 5 GiB + 3 bytes: past 2^32, and not a multiple of any block size; a marker at the end
    // so a reader that stops early cannot pass.
    let len = (5u64 << 30) + 3;
    file.set_len(len).unwrap();
    use std::os::unix::fs::FileExt;
    file.write_all_at(b"end", len - 3).unwrap();
    drop(file);

    let expected = std::thread::scope(|s| {
        let md5 = s.spawn(|| coreutils("md5sum", &path));
        let sha1 = s.spawn(|| coreutils("sha1sum", &path));
        let sha256 = s.spawn(|| coreutils("sha256sum", &path));
        [
            md5.join().unwrap(),
            sha1.join().unwrap(),
            sha256.join().unwrap(),
        ]
    });

    let before = peak_rss_kib();
    let got = digest_reader(std::fs::File::open(&path).unwrap(), AlgorithmSet::ALL).unwrap();
    let grown = peak_rss_kib().saturating_sub(before);
    check(&got, len, &expected, grown, "digest_reader");

    // The async API, as the S3 adapter drives it: a body stream of small frames. The peak is
    // reset first (Linux 4.0 and later), so this measures the second pass on its own.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = peak_rss_kib();
    let frames = Frames(std::fs::File::open(&path).unwrap());
    let got = pollster::block_on(digest_stream(frames, AlgorithmSet::ALL)).unwrap();
    let grown = peak_rss_kib().saturating_sub(before);
    check(&got, len, &expected, grown, "digest_stream");
}

fn check(got: &Digested, len: u64, expected: &[String; 3], grown: u64, how: &str) {
    assert_eq!(got.bytes, len, "{how}");
    let hex = |a| got.digests.get(a).unwrap().to_hex();
    assert_eq!(
        [
            hex(Algorithm::Md5),
            hex(Algorithm::Sha1),
            hex(Algorithm::Sha256)
        ],
        *expected,
        "{how}"
    );
    assert!(
        grown < 64 * 1024,
        "{how}: peak resident memory grew by {grown} KiB while digesting 5 GiB"
    );
}

/// A file as an async stream of 64 KiB frames, the size an HTTP body typically yields.
struct Frames(std::fs::File);

impl futures_core::Stream for Frames {
    type Item = std::io::Result<Vec<u8>>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut frame = vec![0; 64 * 1024];
        Poll::Ready(match self.0.read(&mut frame) {
            Ok(0) => None,
            Ok(n) => {
                frame.truncate(n);
                Some(Ok(frame))
            }
            Err(e) => Some(Err(e)),
        })
    }
}
