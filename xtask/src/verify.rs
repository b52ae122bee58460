//! `cargo xtask verify audit`: verifies every chain and signed checkpoint of the
//! audit log, as the server is configured (database, master key and audit keys from
//! the same flags and environment), and prints the first broken link.
//! `cargo xtask verify consent`: verifies every chain of the consent ledger and that
//! every subject's decision projection is at its chain's last event, and prints each
//! break. Both exit non-zero when anything is broken, and only read.

use std::time::Instant;

use clap::{Args as ClapArgs, Subcommand};

/// What to verify.
#[derive(Debug, Subcommand)]
pub enum Target {
    /// The audit log: every hash, link, commitment, pseudonym and checkpoint.
    Audit(AuditArgs),
    /// The consent ledger: every chain's hashes and links, and every projection's head.
    Consent(AuditArgs),
}

/// Where the log is.
#[derive(Debug, ClapArgs)]
pub struct AuditArgs {
    /// The server's database.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://custodia.db")]
    database_url: String,
    /// The server's data folder (development master and audit keys).
    #[arg(long, env = "CUSTODIA_DATA_DIR", default_value = "custodia-data")]
    data_dir: String,
}

/// The server's configuration for `args`; the rest (keys) comes from the
/// environment, as for the server itself.
fn config_of(args: &AuditArgs) -> Result<server::Config, String> {
    server::Config::try_from_args([
        "custodia",
        "--database-url",
        &args.database_url,
        "--data-dir",
        &args.data_dir,
    ])
    .map_err(|e| e.to_string())
}

/// Runs a verification.
pub async fn run(target: Target) -> Result<(), String> {
    let args = match target {
        Target::Audit(args) => args,
        Target::Consent(args) => return consent(&args).await,
    };
    let config = config_of(&args)?;
    let (repository, keys) = server::audit_for_verification(&config)
        .await
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let report = audit::verify::verify_repository(repository.as_ref(), &keys)
        .await
        .map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "audit: {} chains, {} events ({} pruned, {} pseudonymised), {} signed checkpoints, in {seconds:.2} s",
        report.chains, report.events, report.pruned, report.pseudonymised, report.checkpoints
    );
    match report.first_break {
        None => {
            println!("audit: intact");
            Ok(())
        }
        Some(b) => Err(format!(
            "audit: BROKEN: {} at chain {} sequence {} (checkpoint {})",
            b.problem.as_str(),
            b.chain.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            b.sequence.map_or_else(|| "-".to_owned(), |s| s.to_string()),
            b.checkpoint
                .map_or_else(|| "-".to_owned(), |c| c.to_string()),
        )),
    }
}

/// `verify consent`.
async fn consent(args: &AuditArgs) -> Result<(), String> {
    let config = config_of(args)?;
    let repository = server::consent_for_verification(&config)
        .await
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let report = consent::service::verify_repository(repository.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "consent: {} chains, {} events, in {seconds:.2} s",
        report.chains, report.events
    );
    if report.is_intact() {
        println!("consent: intact");
        return Ok(());
    }
    for (chain, b) in &report.breaks {
        println!(
            "consent: BROKEN: chain {} at sequence {}: {}",
            chain.0,
            b.sequence,
            b.problem.as_str()
        );
    }
    for chain in &report.projection_mismatches {
        println!(
            "consent: projection of chain {} is not at its last event",
            chain.0
        );
    }
    Err(format!(
        "consent: {} broken chains, {} projections out of step",
        report.breaks.len(),
        report.projection_mismatches.len()
    ))
}
