//! `hashgate lists stats` (of a local database; a stack's in `feedback`), `hashgate filter
//! rebuild`, `hashgate filter inspect`.

use std::process::ExitCode;

use hashgate_core::filter::FilterInfo;
use hashgate_core::store::StoreStats;
use hashgate_local::LocalDb;
use serde::Serialize;

use crate::args::{InspectArgs, RebuildArgs, StatsArgs};
use crate::output::{describe_filter, thousands};

#[derive(Serialize)]
struct Stats {
    store: String,
    #[serde(flatten)]
    stats: StoreStats,
    filter: Option<FilterInfo>,
    filter_current: bool,
    filter_error: Option<String>,
}

pub fn run(args: StatsArgs) -> anyhow::Result<ExitCode> {
    let Some(dir) = &args.db else {
        return crate::feedback::stack_stats(args.json);
    };
    let db = LocalDb::open(dir)?;
    let stats = db.store().stats()?;
    let (filter, filter_error) = match db.load_filter() {
        Ok(f) => (f.map(|f| *f.info()), None),
        Err(e) => (None, Some(e.to_string())),
    };
    if args.json {
        let out = Stats {
            store: db.store().path().display().to_string(),
            filter_current: filter.is_some_and(|f| f.covers(stats.version)),
            stats,
            filter,
            filter_error,
        };
        println!("{}", serde_json::to_string(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "store: {} (version {})",
        db.store().path().display(),
        stats.version
    );
    let per_alg: Vec<String> = stats
        .digests
        .iter()
        .map(|(a, n)| format!("{a} {}", thousands(*n)))
        .collect();
    println!(
        "digests: {} ({})",
        thousands(stats.total_digests()),
        per_alg.join(", ")
    );
    if stats.entries.is_empty() {
        println!("lists: none");
    } else {
        let width = stats
            .entries
            .iter()
            .map(|c| c.list.len())
            .max()
            .unwrap_or(4)
            .max(4);
        println!("{:<width$}  {:<9}  {:>12}", "list", "algorithm", "entries");
        for c in &stats.entries {
            println!(
                "{:<width$}  {:<9}  {:>12}",
                c.list,
                c.algorithm.name(),
                thousands(c.entries)
            );
        }
    }
    match (filter, filter_error) {
        (Some(f), _) => println!(
            "filter: {}: {}",
            db.filter_path().display(),
            describe_filter(&f, stats.version)
        ),
        (None, Some(e)) => println!("filter: REFUSED: {e}"),
        (None, None) => println!("filter: none (run: hashgate filter rebuild)"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn rebuild(args: RebuildArgs) -> anyhow::Result<ExitCode> {
    let db = LocalDb::open(&args.db.db)?;
    let filter = db.rebuild_filter(args.fp_rate)?;
    println!(
        "filter: {}: {}",
        db.filter_path().display(),
        describe_filter(filter.info(), filter.info().store_version)
    );
    Ok(ExitCode::SUCCESS)
}

pub fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let filter = hashgate_local::filter_file::load(&args.file)?;
    println!("{}", serde_json::to_string_pretty(filter.info())?);
    Ok(ExitCode::SUCCESS)
}
