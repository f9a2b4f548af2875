//! A local hash database: the embedded exact store and its filter snapshot side by side in
//! one directory (`hashes.redb`, `filter.hgf`). Used by the CLI, local runs and self-hosted
//! deployments; the cloud deployment keeps the same two things in DynamoDB and S3.

use std::io::Read;
use std::path::{Path, PathBuf};

use hashgate_core::filter::{FilterError, FilterSnapshot};
use hashgate_core::lists::{self, ListError, ListFormat, ParseOptions, ParseSummary};
use hashgate_core::store::{ImportStats, Op, StoreError};
use hashgate_core::time::Timestamp;

use crate::filter_file;
use crate::store::{EmbeddedStore, StoreSnapshot};

/// The filter snapshot's file name inside a local database directory.
pub const FILTER_FILE: &str = "filter.hgf";

/// Why a list import was refused. Nothing of the list was applied.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    List(#[from] ListError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Add (or, with `remove`, withdraw) every entry of one list, atomically: a list with a
/// single malformed record changes nothing.
pub fn import_list<R: Read>(
    store: &EmbeddedStore,
    reader: R,
    format: ListFormat,
    options: &ParseOptions,
    op: Op,
) -> Result<(ParseSummary, ImportStats), ImportError> {
    let mut summary = ParseSummary::default();
    let stats = store.import(|imp| -> Result<(), ImportError> {
        summary = lists::guard::import(reader, format, options, op, &mut |entry| {
            imp.apply(&entry, op).map_err(|e| e.to_string())
        })?;
        Ok(())
    })?;
    Ok((summary, stats))
}

/// Build a filter over every digest in one consistent snapshot of a store, with a fresh
/// random seed, stamped `now`.
pub fn build_filter(
    snapshot: &StoreSnapshot,
    fp_rate: f64,
    now: Timestamp,
) -> Result<FilterSnapshot, LocalDbError> {
    let count = snapshot.digest_count()?;
    let mut builder = FilterSnapshot::builder(count, fp_rate, filter_file::random_seed()?)?;
    let seen = snapshot.for_each_key(|key| builder.insert_key(key))?;
    if seen != count {
        return Err(LocalDbError::Store(StoreError::Corrupt {
            location: "digest counts".into(),
            key: "meta".into(),
            reason: format!("counts say {count} digests, the table holds {seen}"),
        }));
    }
    Ok(builder.finish(snapshot.version()?, now)?)
}

#[derive(Debug, thiserror::Error)]
pub enum LocalDbError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error("{path}: cannot write the filter snapshot: {error}")]
    Write { path: String, error: std::io::Error },
}

/// The store and filter in one directory.
#[derive(Debug)]
pub struct LocalDb {
    dir: PathBuf,
    store: EmbeddedStore,
}

impl LocalDb {
    /// Open the database in `dir`, creating it if missing.
    pub fn create(dir: &Path) -> Result<LocalDb, LocalDbError> {
        Ok(LocalDb {
            dir: dir.to_path_buf(),
            store: EmbeddedStore::create(dir)?,
        })
    }

    /// Open an existing database.
    pub fn open(dir: &Path) -> Result<LocalDb, LocalDbError> {
        Ok(LocalDb {
            dir: dir.to_path_buf(),
            store: EmbeddedStore::open(dir)?,
        })
    }

    pub fn store(&self) -> &EmbeddedStore {
        &self.store
    }

    pub fn filter_path(&self) -> PathBuf {
        self.dir.join(FILTER_FILE)
    }

    /// Build a new filter from the store's current contents and save it atomically.
    pub fn rebuild_filter(&self, fp_rate: f64) -> Result<FilterSnapshot, LocalDbError> {
        let filter = build_filter(&self.store.snapshot()?, fp_rate, Timestamp::now())?;
        let path = self.filter_path();
        filter_file::save(&filter, &path).map_err(|error| LocalDbError::Write {
            path: path.display().to_string(),
            error,
        })?;
        Ok(filter)
    }

    /// The saved filter snapshot, if there is one. A damaged one is an error, never ignored.
    pub fn load_filter(&self) -> Result<Option<FilterSnapshot>, FilterError> {
        let path = self.filter_path();
        if !path.exists() {
            return Ok(None);
        }
        filter_file::load(&path).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashgate_core::digest::{Algorithm, AlgorithmSet, Digest};

    const LIST: &str = "900150983cd24fb0d6963f7d28e17f72\n\
                        a9993e364706816aba3e25717850c26c9cd0d89d\n";

    fn opts(list: &str) -> ParseOptions {
        ParseOptions {
            source_name: format!("{list}.txt"),
            default_list: list.into(),
            algorithm: None,
        }
    }

    #[test]
    fn import_then_filter_covers_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let db = LocalDb::create(dir.path()).unwrap();
        let (summary, stats) = import_list(
            db.store(),
            LIST.as_bytes(),
            ListFormat::Plain,
            &opts("l"),
            Op::Add,
        )
        .unwrap();
        assert_eq!((summary.entries, stats.added), (2, 2));
        assert!(db.load_filter().unwrap().is_none());
        let f = db.rebuild_filter(1e-6).unwrap();
        assert_eq!(f.info().entries, 2);
        assert_eq!(f.info().store_version, db.store().version().unwrap());
        let loaded = db.load_filter().unwrap().unwrap();
        for line in LIST.lines() {
            assert!(loaded.may_contain(&Digest::parse_hex(line).unwrap()));
        }
        assert_eq!(
            loaded.algorithms(),
            AlgorithmSet::EMPTY
                .with(Algorithm::Md5)
                .with(Algorithm::Sha1)
        );
    }

    #[test]
    fn a_bad_line_applies_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = LocalDb::create(dir.path()).unwrap();
        import_list(
            db.store(),
            LIST.as_bytes(),
            ListFormat::Plain,
            &opts("a"),
            Op::Add,
        )
        .unwrap();
        let before = db.store().stats().unwrap();
        let bad = format!(
            "{}\nba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\nxyz\n",
            "0123456789abcdef0123456789abcdef"
        );
        let err = import_list(
            db.store(),
            bad.as_bytes(),
            ListFormat::Plain,
            &opts("b"),
            Op::Add,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("b.txt:3: "), "{err}");
        assert_eq!(
            db.store().stats().unwrap(),
            before,
            "nothing of b.txt applied"
        );
        let removal = import_list(
            db.store(),
            bad.as_bytes(),
            ListFormat::Plain,
            &opts("a"),
            Op::Remove,
        );
        assert!(removal.is_err());
        assert_eq!(
            db.store().stats().unwrap(),
            before,
            "a bad removal list removes nothing"
        );
    }
}
