//! The webhook ingress's durable queue: a directory of accepted notification bodies.
//!
//! A body is accepted only once it is on disk: written to `tmp/`, flushed, renamed into
//! `pending/` and the directory flushed, so a crash at any point leaves either nothing
//! (the sender was not answered `2xx` and sends again) or the whole body (it is processed
//! after the restart). A processed body is removed; a failed one is renamed with one more
//! attempt counted and retried after a back-off; after the last attempt it moves to `dead/`
//! with the reason beside it, for an operator to read and, once fixed, move back.
//!
//! Names are `<sequence>-<attempts>.json`: the sequence (arrival order, nanoseconds since
//! the epoch, strictly increasing) keeps retries in order across restarts, and the attempt
//! count survives them. A directory on local disk needs no server and loses nothing a
//! `2xx` promised; an embedded database would add a format to migrate for a queue that is
//! only ever scanned in order and deleted from.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One spooled body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub sequence: u64,
    /// Failed attempts so far.
    pub attempts: u32,
    pub path: PathBuf,
}

impl Entry {
    /// How long the entry has waited since it was accepted.
    pub fn age(&self, now: SystemTime) -> Duration {
        let accepted = UNIX_EPOCH + Duration::from_nanos(self.sequence);
        now.duration_since(accepted).unwrap_or_default()
    }
}

/// What became of a failed entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failed {
    /// Counted; it will be tried again.
    Retry(Entry),
    /// Out of attempts: moved to `dead/`.
    DeadLettered(PathBuf),
}

pub struct Spool {
    dir: PathBuf,
    last_sequence: AtomicU64,
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parse_name(name: &str) -> Option<(u64, u32)> {
    let stem = name.strip_suffix(".json")?;
    let (sequence, attempts) = stem.split_once('-')?;
    Some((sequence.parse().ok()?, attempts.parse().ok()?))
}

fn entry_name(sequence: u64, attempts: u32) -> String {
    format!("{sequence:020}-{attempts:03}.json")
}

impl Spool {
    /// Open (creating) the spool at `dir`. Bodies half-written when a previous process
    /// stopped were never acknowledged: they are removed.
    pub fn open(dir: &Path) -> io::Result<Spool> {
        for sub in ["pending", "tmp", "dead"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        for leftover in fs::read_dir(dir.join("tmp"))? {
            fs::remove_file(leftover?.path())?;
        }
        let spool = Spool {
            dir: dir.to_path_buf(),
            last_sequence: AtomicU64::new(0),
        };
        let newest = spool.pending()?.last().map_or(0, |e| e.sequence);
        spool.last_sequence.store(newest, Ordering::SeqCst);
        Ok(spool)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn next_sequence(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut last = self.last_sequence.load(Ordering::SeqCst);
        loop {
            let next = now.max(last + 1);
            match self.last_sequence.compare_exchange(
                last,
                next,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return next,
                Err(actual) => last = actual,
            }
        }
    }

    /// Store `body` durably; when this returns, it survives a crash.
    pub fn accept(&self, body: &[u8]) -> io::Result<Entry> {
        let sequence = self.next_sequence();
        let name = entry_name(sequence, 0);
        let tmp = self.dir.join("tmp").join(&name);
        let mut file = File::create(&tmp)?;
        file.write_all(body)?;
        file.sync_all()?;
        drop(file);
        let path = self.dir.join("pending").join(&name);
        fs::rename(&tmp, &path)?;
        sync_dir(&self.dir.join("pending"))?;
        Ok(Entry {
            sequence,
            attempts: 0,
            path,
        })
    }

    /// Every pending entry, oldest first.
    pub fn pending(&self) -> io::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        for item in fs::read_dir(self.dir.join("pending"))? {
            let item = item?;
            let name = item.file_name();
            // Anything else in the directory is not ours to touch.
            if let Some((sequence, attempts)) = name.to_str().and_then(parse_name) {
                entries.push(Entry {
                    sequence,
                    attempts,
                    path: item.path(),
                });
            }
        }
        entries.sort_by_key(|e| e.sequence);
        Ok(entries)
    }

    /// How many bodies wait in `dead/`.
    pub fn dead_count(&self) -> io::Result<usize> {
        Ok(fs::read_dir(self.dir.join("dead"))?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_str().and_then(parse_name).is_some())
            .count())
    }

    pub fn read(&self, entry: &Entry) -> io::Result<Vec<u8>> {
        fs::read(&entry.path)
    }

    /// The entry's outcome is durable: forget it.
    pub fn done(&self, entry: &Entry) -> io::Result<()> {
        fs::remove_file(&entry.path)?;
        sync_dir(&self.dir.join("pending"))
    }

    /// Count a failed attempt; after `max_attempts` the entry moves to `dead/`, with
    /// `reason` in a `.reason` file beside it.
    pub fn failed(&self, entry: &Entry, max_attempts: u32, reason: &str) -> io::Result<Failed> {
        let attempts = entry.attempts + 1;
        if attempts >= max_attempts {
            let dead = self
                .dir
                .join("dead")
                .join(entry_name(entry.sequence, attempts));
            let mut why = File::create(dead.with_extension("reason"))?;
            why.write_all(reason.as_bytes())?;
            why.sync_all()?;
            fs::rename(&entry.path, &dead)?;
            sync_dir(&self.dir.join("dead"))?;
            sync_dir(&self.dir.join("pending"))?;
            return Ok(Failed::DeadLettered(dead));
        }
        let path = self
            .dir
            .join("pending")
            .join(entry_name(entry.sequence, attempts));
        fs::rename(&entry.path, &path)?;
        sync_dir(&self.dir.join("pending"))?;
        Ok(Failed::Retry(Entry {
            sequence: entry.sequence,
            attempts,
            path,
        }))
    }
}

/// How long to wait before trying an entry again after `attempts` failures: 1 s, doubling,
/// at most a minute.
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(6)).min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_bodies_survive_a_reopen_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let a = spool.accept(b"first").unwrap();
        let b = spool.accept(b"second").unwrap();
        let c = spool.accept(b"third").unwrap();
        assert!(a.sequence < b.sequence && b.sequence < c.sequence);
        drop(spool);
        let spool = Spool::open(dir.path()).unwrap();
        let pending = spool.pending().unwrap();
        let bodies: Vec<Vec<u8>> = pending.iter().map(|e| spool.read(e).unwrap()).collect();
        assert_eq!(
            bodies,
            [b"first".to_vec(), b"second".to_vec(), b"third".to_vec()]
        );
        // New bodies after a reopen still sort after the old ones.
        let d = spool.accept(b"fourth").unwrap();
        assert!(d.sequence > c.sequence);
    }

    #[test]
    fn a_body_half_written_by_a_crash_was_never_accepted_and_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        spool.accept(b"kept").unwrap();
        // A crash between the write and the rename leaves the body in tmp/.
        fs::write(dir.path().join("tmp").join(entry_name(1, 0)), b"half").unwrap();
        // Strangers in pending/ are left alone and not read.
        fs::write(dir.path().join("pending").join("README"), b"x").unwrap();
        drop(spool);
        let spool = Spool::open(dir.path()).unwrap();
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        let pending = spool.pending().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(spool.read(&pending[0]).unwrap(), b"kept");
        assert!(dir.path().join("pending/README").exists());
    }

    #[test]
    fn done_forgets_and_failures_are_counted_across_reopens_then_dead_lettered() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let ok = spool.accept(b"ok").unwrap();
        let bad = spool.accept(b"bad").unwrap();
        spool.done(&ok).unwrap();
        let Failed::Retry(bad) = spool.failed(&bad, 3, "store down").unwrap() else {
            panic!("first failure retries")
        };
        assert_eq!(bad.attempts, 1);
        drop(spool);
        let spool = Spool::open(dir.path()).unwrap();
        let pending = spool.pending().unwrap();
        assert_eq!(
            pending,
            std::slice::from_ref(&bad),
            "the count survives a restart"
        );
        let Failed::Retry(bad) = spool.failed(&pending[0], 3, "store down").unwrap() else {
            panic!("second failure retries")
        };
        let Failed::DeadLettered(dead) = spool.failed(&bad, 3, "store still down").unwrap() else {
            panic!("third failure dead-letters")
        };
        assert!(spool.pending().unwrap().is_empty());
        assert_eq!(fs::read(&dead).unwrap(), b"bad", "kept whole");
        assert_eq!(
            fs::read_to_string(dead.with_extension("reason")).unwrap(),
            "store still down"
        );
        assert_eq!(spool.dead_count().unwrap(), 1);
    }

    #[test]
    fn backoff_doubles_to_a_minute() {
        let secs: Vec<u64> = (0..9).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
