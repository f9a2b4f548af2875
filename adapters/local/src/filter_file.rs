//! Filter snapshots as files, and the randomness their seeds need: the I/O the core leaves to
//! its callers.

use std::io::Write;
use std::path::Path;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use hashgate_core::filter::{FilterError, FilterFeed, FilterSnapshot, Refresh};

/// Read and check a snapshot file.
pub fn load(path: &Path) -> Result<FilterSnapshot, FilterError> {
    let bytes = std::fs::read(path).map_err(|error| FilterError::Io {
        source_name: path.display().to_string(),
        error,
    })?;
    FilterSnapshot::from_bytes(&bytes, &path.display().to_string())
}

/// Write the snapshot to `path` atomically: a reader sees the old file or the new one,
/// never half of one.
pub fn save(filter: &FilterSnapshot, path: &Path) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("filter"),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&filter.to_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A fresh random filter seed from the operating system, whose halves differ (the core
/// refuses equal halves: every probe would land on the same bit).
pub fn random_seed() -> Result<[u8; 32], FilterError> {
    loop {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| FilterError::Build(format!("no randomness for the seed: {e}")))?;
        if seed[..16] != seed[16..] {
            return Ok(seed);
        }
    }
}

/// A filter feed from a snapshot file (a local hash database's `filter.hgf`): a refresh
/// loads the file again when its modification time or size changed.
#[derive(Debug)]
pub struct FilterFile {
    path: PathBuf,
    seen: Option<(SystemTime, u64)>,
}

impl FilterFile {
    pub fn new(path: PathBuf) -> FilterFile {
        FilterFile { path, seen: None }
    }

    /// Check the file now (synchronously).
    pub fn check(&mut self) -> Refresh {
        let stamp = match std::fs::metadata(&self.path) {
            Ok(m) => (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Refresh::Missing,
            Err(e) => return Refresh::Unavailable(format!("{}: {e}", self.path.display())),
        };
        if self.seen == Some(stamp) {
            return Refresh::Unchanged;
        }
        // Remember a refused file too, so it is not read again until it changes.
        self.seen = Some(stamp);
        match load(&self.path) {
            Ok(f) => Refresh::Loaded(Arc::new(f)),
            Err(e) => Refresh::Refused(e),
        }
    }
}

impl FilterFeed for FilterFile {
    fn refresh(&mut self) -> impl std::future::Future<Output = Refresh> + Send {
        std::future::ready(self.check())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashgate_core::digest::{Algorithm, Digest};
    use hashgate_core::time::Timestamp;

    fn build(n: u64) -> FilterSnapshot {
        let mut b = FilterSnapshot::builder(n, 1e-6, random_seed().unwrap()).unwrap();
        for i in 0..n {
            let mut raw = [0u8; 16];
            raw[..8].copy_from_slice(&i.to_le_bytes());
            b.insert(&Digest::new(Algorithm::Md5, &raw).unwrap());
        }
        b.finish(0, Timestamp::UNIX_EPOCH).unwrap()
    }

    #[test]
    fn save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("filter.hgf");
        let f = build(100);
        save(&f, &path).unwrap();
        let g = load(&path).unwrap();
        assert_eq!(g.info(), f.info());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn a_missing_or_damaged_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("filter.hgf");
        let err = load(&path).unwrap_err();
        assert!(matches!(err, FilterError::Io { .. }), "{err}");
        assert!(err.to_string().contains("filter.hgf: cannot read"), "{err}");
        std::fs::write(
            &path,
            b"not a filter at all, but long enough to have a header",
        )
        .unwrap();
        assert!(matches!(
            load(&path).unwrap_err(),
            FilterError::BadMagic { .. }
        ));
    }

    #[test]
    fn seeds_are_random_and_never_degenerate() {
        let a = build(10);
        let b = build(10);
        assert_ne!(a.seed(), b.seed(), "each build draws a new seed");
        for f in [&a, &b] {
            assert_ne!(f.seed()[..16], f.seed()[16..]);
        }
    }

    #[test]
    fn a_file_feed_loads_changes_once_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("filter.hgf");
        let mut feed = FilterFile::new(path.clone());
        assert!(matches!(feed.check(), Refresh::Missing));
        save(&build(10), &path).unwrap();
        assert!(matches!(feed.check(), Refresh::Loaded(_)));
        assert!(matches!(feed.check(), Refresh::Unchanged));
        std::fs::write(&path, b"HGFILTER but truncated").unwrap();
        assert!(matches!(feed.check(), Refresh::Refused(_)));
        assert!(
            matches!(feed.check(), Refresh::Unchanged),
            "not re-read until it changes"
        );
    }
}
