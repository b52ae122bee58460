//! `cargo xtask db up|down|status`: migrations on the configured database.

use clap::Subcommand;
use store::{Database, DatabaseOptions};

/// What to do with migrations.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// Apply pending migrations (all, or `--steps N`).
    Up {
        /// Apply only this many.
        #[arg(long)]
        steps: Option<u32>,
    },
    /// Roll back applied migrations (the last one, or `--steps N`, or `--all`).
    Down {
        /// Roll back this many.
        #[arg(long, conflicts_with = "all")]
        steps: Option<u32>,
        /// Roll back every migration.
        #[arg(long)]
        all: bool,
    },
    /// List migrations and whether each is applied.
    Status,
}

/// Runs `action` on `url`.
pub async fn run(action: Action, url: &str) -> Result<(), String> {
    let db = Database::connect(url, &DatabaseOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    match action {
        Action::Up { steps } => db.migrate_up(steps).await.map_err(|e| e.to_string())?,
        Action::Down { steps, all } => {
            let steps = if all { None } else { Some(steps.unwrap_or(1)) };
            db.migrate_down(steps).await.map_err(|e| e.to_string())?;
        }
        Action::Status => {}
    }
    for state in db.migration_status().await.map_err(|e| e.to_string())? {
        let mark = if state.applied { "applied" } else { "pending" };
        println!("{mark:8} {}", state.name);
    }
    db.close().await;
    Ok(())
}
