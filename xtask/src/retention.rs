//! `cargo xtask retention run [--dry-run]`: runs the retention engine (R1) by hand,
//! exactly as the server's retention job does ([`server::jobs::run_retention`]):
//! the same sweeps of every context, the same audit event for the run, the same
//! log lines. It builds the application in-process from the server's
//! configuration (the same database, data folder and environment, so the same
//! retention periods), shows a progress bar per context, then the report as a
//! table: context, category, action, records. With `--dry-run` nothing changes and
//! the table says what a run now would do.
//!
//! Exits with an error when a context failed (the others still ran) or the run
//! could not be audited (then nothing ran).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args as ClapArgs, Subcommand};
use data_rights::retention::{Progress, ProgressState, RetentionReport};
use indicatif::{ProgressBar, ProgressStyle};
use server::{App, Config};

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// Delete or anonymise what has outlived its retention period.
    Run(Args),
}

/// Where, and whether to change anything.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Report what would be deleted or anonymised, and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// The server's database.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://custodia.db")]
    database_url: String,
    /// The server's data folder (development master and audit keys).
    #[arg(long, env = "CUSTODIA_DATA_DIR", default_value = "custodia-data")]
    data_dir: PathBuf,
}

/// Runs `action`.
pub async fn run(action: Action) -> Result<(), String> {
    let Action::Run(args) = action;
    let config = Config::try_from_args([
        "custodia".to_owned(),
        "--database-url".to_owned(),
        args.database_url.clone(),
        "--data-dir".to_owned(),
        args.data_dir.display().to_string(),
    ])
    .map_err(|e| e.to_string())?;
    let app = App::build(config).await.map_err(|e| e.to_string())?;
    let state = app.state().clone();
    let style =
        ProgressStyle::with_template("{spinner} [{prefix}] {msg}").map_err(|e| e.to_string())?;
    let mut bar: Option<ProgressBar> = None;
    let mut show = |step: Progress| {
        let what = if args.dry_run { "counting" } else { "sweeping" };
        match step.state {
            ProgressState::Started => {
                let started = ProgressBar::new_spinner().with_style(style.clone());
                started.set_prefix(format!("{}/{}", step.index + 1, step.total));
                started.set_message(format!("{}: {what}", step.context));
                started.enable_steady_tick(Duration::from_millis(100));
                bar = Some(started);
            }
            ProgressState::Done { records } => {
                if let Some(done) = bar.take() {
                    done.finish_with_message(format!("{}: {records} records", step.context));
                }
            }
            ProgressState::Failed => {
                if let Some(done) = bar.take() {
                    done.finish_with_message(format!("{}: FAILED", step.context));
                }
            }
        }
    };
    let result = server::jobs::run_retention(&state, args.dry_run, &mut show).await;
    // Sign what this run appended to the audit log, as the server does on stop.
    if let Err(err) = state.audit().log().checkpoint().await {
        eprintln!("retention: no final audit checkpoint: {err}");
    }
    let report = result.map_err(|e| format!("retention: not run: {e}"))?;
    print!("{}", table(&report));
    state.database().clone().close().await;
    if report.failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "retention: {} context(s) not swept",
            report.failures.len()
        ))
    }
}

/// The report as a plain-text table, then the failures.
fn table(report: &RetentionReport) -> String {
    let mut out = String::new();
    let when = report.at.to_rfc3339();
    let _ = if report.dry_run {
        writeln!(out, "retention at {when} (dry run: nothing changed)")
    } else {
        writeln!(out, "retention at {when}")
    };
    let _ = writeln!(
        out,
        "{:<10} {:<18} {:<11} {:>9}",
        "context", "category", "action", "records"
    );
    for (context, expired) in report.lines() {
        let _ = writeln!(
            out,
            "{:<10} {:<18} {:<11} {:>9}",
            context,
            expired.category.as_str(),
            expired.action.as_str(),
            expired.records
        );
    }
    for (context, error) in &report.failures {
        let _ = writeln!(out, "{context:<10} FAILED: {error}");
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use kernel::DataCategory;
    use kernel::personal_data::{Expired, ExpiryAction};

    use super::*;

    #[test]
    fn the_table_lists_every_line_then_the_failures() {
        let report = RetentionReport {
            at: Utc
                .with_ymd_and_hms(2033, 3, 1, 4, 0, 0)
                .single()
                .expect("a time"),
            dry_run: true,
            results: vec![(
                "billing",
                vec![Expired {
                    category: DataCategory::Billing,
                    action: ExpiryAction::Anonymised,
                    records: 12,
                }],
            )],
            failures: vec![("consent", "personal data is unavailable".to_owned())],
        };
        assert_eq!(
            table(&report),
            "retention at 2033-03-01T04:00:00+00:00 (dry run: nothing changed)\n\
             context    category           action        records\n\
             billing    billing            anonymised         12\n\
             consent    FAILED: personal data is unavailable\n"
        );
    }
}
