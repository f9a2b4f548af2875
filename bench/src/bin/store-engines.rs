//! Chooses the embedded storage engine for the exact hash store by measurement.
//!
//! For each engine, a child process (this program re-executed as `engine <name> <N> <dir>`)
//! imports N random entries in one write transaction (fjall: in batches of 1M), reopens the
//! database and times 1M member and 1M non-member point lookups one by one, then prints one line
//! of JSON; the parent prints a markdown table.
//!
//! Usage: `store-engines [N] [ENGINE...]` (N defaults to `10_000_000`, ENGINE to all of them).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use redb::ReadableDatabase as _;
use serde::{Deserialize, Serialize};

const ENGINES: &[&str] = &["redb", "lmdb", "sqlite", "fjall"];
const DEFAULT_N: u64 = 10_000_000;
/// Member lookups, and as many non-member lookups.
const LOOKUPS: u64 = 1_000_000;
/// Lookups done in one read transaction before it is dropped and a new one begun.
const LOOKUPS_PER_TXN: usize = 1_000;
/// Page cache given to the engines that manage their own (redb's default).
const CACHE_BYTES: usize = 1 << 30;

const MEMBER_SEED: u64 = 0x6861_7368_6761_7465;
const NON_MEMBER_SEED: u64 = 0x6e6f_6e2d_6d65_6d62;
const LOOKUP_SEED: u64 = 0x6c6f_6f6b_7570_7321;

const TAG_MD5: u8 = 1;
const TAG_SHA1: u8 = 2;
const TAG_SHA256: u8 = 3;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("engine") {
        let [_, name, n, dir] = args.as_slice() else {
            bail!("usage: store-engines engine <name> <N> <dir>");
        };
        let report = run_engine(name, parse_count(n)?, Path::new(dir))?;
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }

    let n = match args.first() {
        Some(arg) => parse_count(arg)?,
        None => DEFAULT_N,
    };
    let engines: Vec<&str> = if args.len() > 1 {
        args[1..].iter().map(String::as_str).collect()
    } else {
        ENGINES.to_vec()
    };
    for engine in &engines {
        ensure!(
            ENGINES.contains(engine),
            "unknown engine {engine:?} (known: {ENGINES:?})"
        );
    }

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-engines");
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let exe = std::env::current_exe()?;

    let mut reports = Vec::new();
    for engine in engines {
        let dir = root.join(format!("{engine}-{n}"));
        remove_dir_if_exists(&dir)?;
        eprintln!("{engine}: N = {n} in {}", dir.display());
        let output = Command::new(&exe)
            .args(["engine", engine, &n.to_string()])
            .arg(&dir)
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running the {engine} child"))?;
        remove_dir_if_exists(&dir)?;
        ensure!(
            output.status.success(),
            "{engine} child failed: {}",
            output.status
        );
        let line = String::from_utf8(output.stdout)?;
        let report: EngineReport = serde_json::from_str(line.trim())
            .with_context(|| format!("parsing the {engine} child's report {line:?}"))?;
        reports.push(report);
    }
    print_table(n, &reports);
    Ok(())
}

fn parse_count(arg: &str) -> Result<u64> {
    arg.replace('_', "")
        .parse()
        .with_context(|| format!("not a count: {arg:?}"))
}

fn remove_dir_if_exists(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", dir.display()))
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Data: keys and values regenerated from (seed, index), so nothing is kept in memory.

/// splitmix64's output function.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }

    /// Uniform in `0..bound` (Lemire's multiply-shift; the bias is negligible here).
    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(bound)) >> 64) as u64
    }
}

/// A store key: an algorithm tag byte followed by the raw digest.
struct Key {
    bytes: [u8; 33],
    len: usize,
}

impl Key {
    /// Entry `index` of the key set `seed`: 50% MD5, 30% SHA-1, 20% SHA-256.
    fn generate(seed: u64, index: u64) -> Key {
        let mut rng = SplitMix64(seed ^ mix64(index));
        let (tag, digest_len) = match rng.below(10) {
            0..=4 => (TAG_MD5, 16),
            5..=7 => (TAG_SHA1, 20),
            _ => (TAG_SHA256, 32),
        };
        let mut bytes = [0; 33];
        bytes[0] = tag;
        for chunk in bytes[1..=digest_len].chunks_mut(8) {
            chunk.copy_from_slice(&rng.next().to_le_bytes()[..chunk.len()]);
        }
        Key {
            bytes,
            len: 1 + digest_len,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The provenance list stored for member `index` (about 47 bytes).
fn write_value(index: u64, out: &mut Vec<u8>) {
    let r = mix64(index ^ MEMBER_SEED);
    out.clear();
    write!(
        out,
        r#"[{{"list":"ncmec","id":"{}","category":"{}"}}]"#,
        1_000_000 + r % 9_000_000,
        1 + (r >> 32) % 3
    )
    .expect("writing to a Vec cannot fail");
}

// ---------------------------------------------------------------------------------------------
// The child: one engine, one process.

#[derive(Serialize, Deserialize)]
struct EngineReport {
    engine: String,
    n: u64,
    /// How the import was committed.
    import_mode: String,
    import_secs: f64,
    disk_bytes: u64,
    member_median_us: f64,
    member_p99_us: f64,
    non_member_median_us: f64,
    non_member_p99_us: f64,
    lookups_per_sec: f64,
    import_peak_rss_kib: u64,
    lookup_peak_rss_kib: u64,
}

/// What each engine implements: a bulk import, and a reopen plus the timed lookups.
trait Engine {
    /// A short description of how `import` commits.
    const IMPORT_MODE: &'static str;

    /// Creates the database in `dir`, inserts `entries` and commits durably, then closes it.
    fn import(dir: &Path, entries: &mut dyn Iterator<Item = (Key, u64)>) -> Result<()>;

    /// Opens the database in `dir` and runs `lookups` through it.
    fn lookups(dir: &Path, lookups: &mut Lookups) -> Result<()>;
}

fn run_engine(name: &str, n: u64, dir: &Path) -> Result<EngineReport> {
    match name {
        "redb" => run::<Redb>(name, n, dir),
        "lmdb" => run::<Lmdb>(name, n, dir),
        "sqlite" => run::<Sqlite>(name, n, dir),
        "fjall" => run::<Fjall>(name, n, dir),
        _ => bail!("unknown engine {name:?}"),
    }
}

fn run<E: Engine>(name: &str, n: u64, dir: &Path) -> Result<EngineReport> {
    std::fs::create_dir_all(dir)?;

    let started = Instant::now();
    let mut entries = (0..n).map(|i| (Key::generate(MEMBER_SEED, i), i));
    E::import(dir, &mut entries)?;
    let import_secs = started.elapsed().as_secs_f64();
    let import_peak_rss_kib = peak_rss_kib()?;
    eprintln!("{name}: imported {n} in {import_secs:.1} s");
    let disk_bytes = disk_usage(dir)?;

    reset_peak_rss();
    let mut lookups = Lookups::new(n);
    E::lookups(dir, &mut lookups)?;
    let lookup_peak_rss_kib = peak_rss_kib()?;
    let report = lookups.finish(name, n)?;
    std::fs::remove_dir_all(dir)?;

    Ok(EngineReport {
        import_mode: E::IMPORT_MODE.to_owned(),
        import_secs,
        disk_bytes,
        import_peak_rss_kib,
        lookup_peak_rss_kib,
        ..report
    })
}

/// The lookup workload: batches of alternating member and non-member keys, each batch done
/// in one read transaction, each lookup timed on its own.
struct Lookups {
    n: u64,
    rng: SplitMix64,
    done: u64,
    /// `(key, Some(member index))` or `(key, None)` for a non-member.
    batch: Vec<(Key, Option<u64>)>,
    value: Vec<u8>,
    expected: Vec<u8>,
    member_ns: Vec<u32>,
    non_member_ns: Vec<u32>,
    busy: Duration,
    wrong: u64,
}

impl Lookups {
    fn new(n: u64) -> Lookups {
        Lookups {
            n,
            rng: SplitMix64(LOOKUP_SEED),
            done: 0,
            batch: Vec::with_capacity(LOOKUPS_PER_TXN),
            value: Vec::with_capacity(256),
            expected: Vec::with_capacity(256),
            member_ns: Vec::with_capacity(LOOKUPS as usize),
            non_member_ns: Vec::with_capacity(LOOKUPS as usize),
            busy: Duration::ZERO,
            wrong: 0,
        }
    }

    /// Runs every lookup: `begin` opens a read transaction, `get` looks up one key in it
    /// and copies the value into the buffer it is given, returning whether the key was found.
    fn run<T>(
        &mut self,
        mut begin: impl FnMut() -> Result<T>,
        mut get: impl FnMut(&mut T, &[u8], &mut Vec<u8>) -> Result<bool>,
    ) -> Result<()> {
        while self.done < 2 * LOOKUPS {
            self.batch.clear();
            while self.batch.len() < LOOKUPS_PER_TXN && self.done < 2 * LOOKUPS {
                let entry = if self.done % 2 == 0 {
                    let index = self.rng.below(self.n);
                    (Key::generate(MEMBER_SEED, index), Some(index))
                } else {
                    (Key::generate(NON_MEMBER_SEED, self.rng.next()), None)
                };
                self.batch.push(entry);
                self.done += 1;
            }

            let batch_started = Instant::now();
            let mut txn = begin()?;
            for (key, member) in &self.batch {
                let started = Instant::now();
                let found = get(&mut txn, key.as_bytes(), &mut self.value)?;
                let ns = u32::try_from(started.elapsed().as_nanos()).unwrap_or(u32::MAX);
                match member {
                    Some(index) => {
                        self.member_ns.push(ns);
                        write_value(*index, &mut self.expected);
                        if !found || self.value != self.expected {
                            self.wrong += 1;
                        }
                    }
                    None => {
                        self.non_member_ns.push(ns);
                        if found {
                            self.wrong += 1;
                        }
                    }
                }
            }
            drop(txn);
            self.busy += batch_started.elapsed();
        }
        Ok(())
    }

    fn finish(mut self, name: &str, n: u64) -> Result<EngineReport> {
        ensure!(self.done == 2 * LOOKUPS, "{name}: lookups were not run");
        ensure!(
            self.wrong == 0,
            "{name}: {} lookups gave a wrong answer",
            self.wrong
        );
        Ok(EngineReport {
            engine: name.to_owned(),
            n,
            import_mode: String::new(),
            import_secs: 0.0,
            disk_bytes: 0,
            member_median_us: percentile_us(&mut self.member_ns, 0.50),
            member_p99_us: percentile_us(&mut self.member_ns, 0.99),
            non_member_median_us: percentile_us(&mut self.non_member_ns, 0.50),
            non_member_p99_us: percentile_us(&mut self.non_member_ns, 0.99),
            lookups_per_sec: self.done as f64 / self.busy.as_secs_f64(),
            import_peak_rss_kib: 0,
            lookup_peak_rss_kib: 0,
        })
    }
}

fn percentile_us(ns: &mut [u32], q: f64) -> f64 {
    let rank = ((ns.len() as f64 * q) as usize).min(ns.len() - 1);
    f64::from(*ns.select_nth_unstable(rank).1) / 1000.0
}

/// Peak resident set size of this process (`VmHWM`).
fn peak_rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    Ok(line.trim().trim_end_matches("kB").trim().parse()?)
}

/// Resets `VmHWM` to the current RSS, so the lookup phase gets its own peak.
fn reset_peak_rss() {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        eprintln!("could not reset the peak RSS ({e}); the lookup peak includes the import");
    }
}

/// Bytes allocated on disk for the files under `dir`.
fn disk_usage(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt as _;
    let mut total = 0;
    let mut pending: Vec<PathBuf> = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                total += meta.blocks() * 512;
            }
        }
    }
    Ok(total)
}

// ---------------------------------------------------------------------------------------------
// The engines.

struct Redb;

const REDB_TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("hashes");

impl Engine for Redb {
    const IMPORT_MODE: &'static str = "1 txn";

    fn import(dir: &Path, entries: &mut dyn Iterator<Item = (Key, u64)>) -> Result<()> {
        let db = redb::Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(dir.join("hashes.redb"))?;
        let txn = db.begin_write()?;
        {
            let mut table = txn.open_table(REDB_TABLE)?;
            let mut value = Vec::new();
            for (key, index) in entries {
                write_value(index, &mut value);
                table.insert(key.as_bytes(), value.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn lookups(dir: &Path, lookups: &mut Lookups) -> Result<()> {
        let db = redb::Database::builder()
            .set_cache_size(CACHE_BYTES)
            .open(dir.join("hashes.redb"))?;
        lookups.run(
            || Ok(db.begin_read()?.open_table(REDB_TABLE)?),
            |table, key, out| {
                let Some(value) = table.get(key)? else {
                    return Ok(false);
                };
                out.clear();
                out.extend_from_slice(value.value());
                Ok(true)
            },
        )
    }
}

struct Lmdb;

type LmdbTable<'e> = heed::Database<'e, heed::types::Bytes, heed::types::Bytes>;

impl Lmdb {
    fn open(dir: &Path) -> Result<heed::Env> {
        let mut options = heed::EnvOpenOptions::new();
        options.map_size(64 << 30).max_dbs(1);
        // SAFETY: LMDB's contract is that an environment is opened at most once per process
        // and its files are not modified by anything else. This process opens `dir` once at
        // a time (the import closes it before the lookups reopen it), and `dir` is private to
        // this benchmark run.
        #[allow(unsafe_code)]
        let env = unsafe { options.open(dir) }?;
        Ok(env)
    }

    fn close(env: heed::Env) {
        env.prepare_for_closing().wait();
    }
}

impl Engine for Lmdb {
    const IMPORT_MODE: &'static str = "1 txn";

    fn import(dir: &Path, entries: &mut dyn Iterator<Item = (Key, u64)>) -> Result<()> {
        let env = Lmdb::open(dir)?;
        let db = env
            .create_databases_and_commit(env.write_txn()?, |opener, txn| {
                let db: LmdbTable = opener.create_database(txn, Some("hashes"))?;
                Ok::<_, heed::Error>(heed::CommitOrAbort::<_, ()>::Commit(db))
            })?
            .unwrap_commit();
        let mut txn = env.write_txn()?;
        let mut value = Vec::new();
        for (key, index) in entries {
            write_value(index, &mut value);
            db.put(&mut txn, key.as_bytes(), &value)?;
        }
        txn.commit()?;
        Lmdb::close(env);
        Ok(())
    }

    fn lookups(dir: &Path, lookups: &mut Lookups) -> Result<()> {
        let env = Lmdb::open(dir)?;
        let db = env
            .open_databases_and_commit(env.read_txn()?, |opener, txn| {
                let db: Option<LmdbTable> = opener.open_database(txn, Some("hashes"))?;
                Ok::<_, heed::Error>(heed::CommitOrAbort::<_, ()>::Commit(db))
            })?
            .unwrap_commit()
            .context("no hashes database")?;
        lookups.run(
            || Ok(env.read_txn()?),
            |txn, key, out| {
                let Some(value) = db.get(txn, key)? else {
                    return Ok(false);
                };
                out.clear();
                out.extend_from_slice(value);
                Ok(true)
            },
        )?;
        Lmdb::close(env);
        Ok(())
    }
}

struct Sqlite;

impl Sqlite {
    fn open(dir: &Path) -> Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open(dir.join("hashes.sqlite"))?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        ensure!(mode.eq_ignore_ascii_case("wal"), "journal_mode is {mode}");
        conn.execute_batch(&format!(
            "PRAGMA synchronous = FULL; PRAGMA cache_size = -{};",
            CACHE_BYTES / 1024
        ))?;
        Ok(conn)
    }
}

impl Engine for Sqlite {
    const IMPORT_MODE: &'static str = "1 txn + checkpoint";

    fn import(dir: &Path, entries: &mut dyn Iterator<Item = (Key, u64)>) -> Result<()> {
        let mut conn = Sqlite::open(dir)?;
        conn.execute_batch(
            "CREATE TABLE hashes (k BLOB NOT NULL PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID",
        )?;
        let txn = conn.transaction()?;
        {
            let mut insert = txn.prepare("INSERT INTO hashes (k, v) VALUES (?1, ?2)")?;
            let mut value = Vec::new();
            for (key, index) in entries {
                write_value(index, &mut value);
                insert.execute((key.as_bytes(), value.as_slice()))?;
            }
        }
        txn.commit()?;
        // Moves the committed pages from the WAL into the database file (and fsyncs it), so
        // that the lookups and the size on disk see the database as it will stay.
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
        ensure!(busy == 0, "the WAL checkpoint did not complete");
        conn.close().map_err(|(_, e)| e)?;
        Ok(())
    }

    fn lookups(dir: &Path, lookups: &mut Lookups) -> Result<()> {
        let conn = Sqlite::open(dir)?;
        let mut select = conn.prepare("SELECT v FROM hashes WHERE k = ?1")?;
        lookups.run(
            || Ok(conn.unchecked_transaction()?),
            |_txn, key, out| {
                let mut rows = select.query([key])?;
                let Some(row) = rows.next()? else {
                    return Ok(false);
                };
                out.clear();
                out.extend_from_slice(row.get_ref(0)?.as_blob()?);
                Ok(true)
            },
        )?;
        drop(select);
        conn.close().map_err(|(_, e)| e)?;
        Ok(())
    }
}

struct Fjall;

/// fjall buffers a write batch in memory, so the import commits in batches of this many.
const FJALL_BATCH: usize = 1_000_000;

impl Fjall {
    fn open(dir: &Path) -> Result<(fjall::Database, fjall::Keyspace)> {
        let db = fjall::Database::builder(dir)
            .cache_size(CACHE_BYTES as u64)
            .open()?;
        let keyspace = db.keyspace("hashes", fjall::KeyspaceCreateOptions::default)?;
        Ok((db, keyspace))
    }
}

impl Engine for Fjall {
    const IMPORT_MODE: &'static str = "1M-entry batches + compaction";

    fn import(dir: &Path, entries: &mut dyn Iterator<Item = (Key, u64)>) -> Result<()> {
        let (db, keyspace) = Fjall::open(dir)?;
        let mut entries = entries.peekable();
        let mut value = Vec::new();
        while entries.peek().is_some() {
            let mut batch = db.batch().durability(Some(fjall::PersistMode::SyncAll));
            for (key, index) in entries.by_ref().take(FJALL_BATCH) {
                write_value(index, &mut value);
                batch.insert(&keyspace, key.as_bytes(), value.as_slice());
            }
            batch.commit()?;
        }
        db.persist(fjall::PersistMode::SyncAll)?;
        // Lets the background flushes and compactions settle, so that the lookups see the
        // tree as it would stay.
        keyspace.rotate_memtable_and_wait()?;
        while db.outstanding_flushes() > 0 || db.active_compactions() > 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn lookups(dir: &Path, lookups: &mut Lookups) -> Result<()> {
        use fjall::Readable as _;
        let (db, keyspace) = Fjall::open(dir)?;
        lookups.run(
            || Ok(db.snapshot()),
            |snapshot, key, out| {
                let Some(value) = snapshot.get(&keyspace, key)? else {
                    return Ok(false);
                };
                out.clear();
                out.extend_from_slice(&value);
                Ok(true)
            },
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The table.

fn print_table(n: u64, reports: &[EngineReport]) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);

    println!("## Exact hash store engines, N = {n}");
    println!();
    println!("machine: nproc {cores}, {cpu}");
    println!(
        "keys: 1 tag byte + digest (50% MD5 17 B, 30% SHA-1 21 B, 20% SHA-256 33 B), \
         values ~47 B provenance JSON; import in random key order, committed durably (fsync); \
         lookups after a reopen, {LOOKUPS} members + {LOOKUPS} non-members interleaved, \
         {LOOKUPS_PER_TXN} lookups per read transaction, each timed on its own \
         (OS page cache warm); 1 GiB block cache for redb, SQLite and fjall, LMDB reads through the OS page cache (mmap)"
    );
    println!();
    println!(
        "| engine | import | import entries/s | member median µs | member p99 µs \
         | non-member median µs | non-member p99 µs | lookups/s | bytes/entry on disk \
         | peak RSS MiB (import) | peak RSS MiB (lookups) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in reports {
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {:.0} | {:.0} |",
            r.engine,
            r.import_mode,
            thousands(r.n as f64 / r.import_secs),
            r.member_median_us,
            r.member_p99_us,
            r.non_member_median_us,
            r.non_member_p99_us,
            thousands(r.lookups_per_sec),
            r.disk_bytes as f64 / r.n as f64,
            r.import_peak_rss_kib as f64 / 1024.0,
            r.lookup_peak_rss_kib as f64 / 1024.0,
        );
    }
}

/// `1234567.8` as `1_234_568`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('_');
        }
        out.push(digit);
    }
    out
}
