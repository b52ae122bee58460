//! `cargo xtask`: the project's automation, in Rust.
//!
//! - `openapi [--check]`: write `docs/openapi.json` from the code, or fail when the
//!   committed file differs;
//! - `tidy`: the dependency rules of DESIGN.md, `//!` module docs, compliance rows;
//! - `db up|down|status`: migrations on `DATABASE_URL`;
//! - `seed --size N`: realistic demo data;
//! - `outbox-secret --user ID [--kind K]`: the token of a person's newest queued notice.
//! - `bench identity`: sign-in throughput and read latency under a sign-in flood;
//! - `bench audit`: the audit log's group-commit throughput and latency against the
//!   database's own commit rate, and verification speed, on SQLite and PostgreSQL;
//! - `bench consent`: the consent gate's `decide` latency (p50, p99) with 10,000
//!   and 1,000,000 subjects in one run, against a `HashMap` lookup floor;
//! - `bench read`: reads of clinical records (authenticated, checked, decrypted,
//!   audited) against the server's bare JSON endpoint, on SQLite and PostgreSQL;
//! - `bench rights`: a data subject's export and erasure with 10, 1,000 and 10,000
//!   records, in databases of 10,000 and 1,000,000 clients in one run;
//! - `verify audit`: every chain and signed checkpoint of the audit log.
//! - `verify consent`: every chain of the consent ledger, and every projection's head.
//! - `retention run [--dry-run]`: delete or anonymise what has outlived its
//!   retention period, as the server's retention job does, and report it.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool"
)]

mod bench;
mod bench_audit;
mod bench_consent;
mod bench_read;
mod bench_rights;
mod db;
mod openapi;
mod outbox;
mod retention;
mod seed;
mod seed_billing;
mod tidy;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Custodia's project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write docs/openapi.json from the code.
    Openapi {
        /// Fail if the committed document differs from the code instead of writing it.
        #[arg(long)]
        check: bool,
    },
    /// Check the dependency rules, module docs and compliance rows.
    Tidy,
    /// Apply, roll back or list migrations.
    Db {
        #[command(subcommand)]
        action: db::Action,
        /// The database.
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "sqlite://custodia.db",
            global = true
        )]
        database_url: String,
    },
    /// Fill a database with realistic demo data.
    Seed(seed::Args),
    /// Print the token of a person's newest queued notice (development and CI).
    OutboxSecret(outbox::Args),
    /// Verify a log's integrity.
    Verify {
        #[command(subcommand)]
        target: verify::Target,
    },
    /// Run the retention engine (R1) by hand.
    Retention {
        #[command(subcommand)]
        action: retention::Action,
    },
    /// Measure the server and its parts, built in release mode.
    Bench {
        #[command(subcommand)]
        target: bench::Target,
    },
}

/// The workspace root (the folder above `xtask/`).
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map_or(manifest.clone(), std::path::Path::to_path_buf)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("xtask: cannot start a runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Openapi { check } => runtime.block_on(openapi::run(check)),
        Command::Tidy => tidy::run(&workspace_root()).map(|()| println!("tidy: all checks pass")),
        Command::Db {
            action,
            database_url,
        } => runtime.block_on(db::run(action, &database_url)),
        Command::Seed(args) => runtime.block_on(seed::run(args)),
        Command::OutboxSecret(args) => runtime.block_on(outbox::run(args)),
        Command::Verify { target } => runtime.block_on(verify::run(target)),
        Command::Retention { action } => runtime.block_on(retention::run(action)),
        Command::Bench { target } => runtime.block_on(bench::run(target, &workspace_root())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err}");
            ExitCode::FAILURE
        }
    }
}
