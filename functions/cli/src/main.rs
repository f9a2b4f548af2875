//! `hashgate`: the operator's command line. Thin: argument parsing and output here, every
//! decision in `hashgate-core`.

use std::process::ExitCode;

use clap::Parser;

mod args;
mod audit;
mod backfill;
mod buckets;
mod cases;
mod export;
mod feedback;
mod filters;
mod hash;
mod import;
mod keys;
mod output;
mod remote;
mod reports;
mod scan;
mod stats;

use args::{
    AuditCommand, BucketsCommand, CasesCommand, Cli, Command, FilterCommand, KeysCommand,
    ListsCommand,
};

/// `lists import` into a local hash database (`--db`) or the stack the environment names.
fn lists_import(args: args::ImportArgs) -> anyhow::Result<ExitCode> {
    let mut target: Box<dyn import::Target> = match &args.db {
        Some(dir) => Box::new(import::LocalTarget::open(dir)?),
        None => Box::new(remote::StackTarget::from_env()?),
    };
    import::run(args, target.as_mut())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HASHGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Lists(ListsCommand::Import(a)) => lists_import(a),
        Command::Lists(ListsCommand::Stats(a)) => stats::run(a),
        Command::Lists(ListsCommand::Export(a)) => export::run(&a),
        Command::Lists(ListsCommand::Enable(a)) => feedback::enable(&a),
        Command::Lists(ListsCommand::Feedback(a)) => feedback::export(&a),
        Command::Filter(FilterCommand::Rebuild(a)) => stats::rebuild(a),
        Command::Filter(FilterCommand::Inspect(a)) => stats::inspect(a),
        Command::Filter(FilterCommand::Status(a)) => filters::status(&a),
        Command::Filter(FilterCommand::Rollback(a)) => filters::rollback(&a),
        Command::Keys(KeysCommand::Generate(a)) => keys::generate(&a),
        Command::Scan(a) => scan::run(a),
        Command::Hash(a) => hash::run(&a),
        Command::Buckets(BucketsCommand::Attach(a)) => buckets::attach(&a),
        Command::Backfill(a) => backfill::run(&a),
        Command::Audit(AuditCommand::Verify(a)) => audit::verify(&a),
        Command::Audit(AuditCommand::Checkpoint(a)) => audit::checkpoint(&a),
        Command::Cases(CasesCommand::Hold(a)) => cases::hold(&a),
        Command::Cases(CasesCommand::Release(a)) => cases::release_hold(&a),
        Command::Reports(c) => reports::run(&c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hashgate: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
