//! `cargo xtask seed`: fills a database with demo data at a chosen scale.
//!
//! Each context adds its own data here as it lands. Today the spine holds the key
//! hierarchy: one wrapped key per practice and one data key per client, created
//! through the real [`crypto::Keyring`] so the rows are exactly what the server
//! would write. A progress bar is shown from 1,000 clients up.

use std::sync::Arc;

use clap::Parser;
use crypto::{Keyring, MasterKey};
use indicatif::{ProgressBar, ProgressStyle};
use kernel::{Clock, OrganisationId, SubjectId, SystemClock};
use store::{Database, DatabaseOptions, SeaOrmKeyStore};

/// Seed options.
#[derive(Debug, Parser)]
pub struct Args {
    /// How many clients to create, spread over practices of `--clients-per-practice`.
    #[arg(long, default_value_t = 100)]
    size: u64,
    /// Clients per practice.
    #[arg(long, default_value_t = 200)]
    clients_per_practice: u64,
    /// The database (migrated first if needed).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://custodia.db")]
    database_url: String,
    /// The master key (base64); by default the development key in `custodia-data/`,
    /// so the server started with defaults can read what was seeded.
    #[arg(long, env = "CUSTODIA_MASTER_KEY", hide_env_values = true)]
    master_key: Option<String>,
}

const PROGRESS_FROM: u64 = 1_000;

/// Seeds the database.
pub async fn run(args: Args) -> Result<(), String> {
    let db = Database::connect(&args.database_url, &DatabaseOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    db.migrate_up(None).await.map_err(|e| e.to_string())?;
    let master = match &args.master_key {
        Some(encoded) => MasterKey::from_base64(encoded).map_err(|e| e.to_string())?,
        None => dev_master_key()?,
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let keyring = Keyring::new(master, Arc::new(SeaOrmKeyStore::new(db.clone())), clock);

    let per_practice = args.clients_per_practice.max(1);
    let practices = args.size.div_ceil(per_practice).max(1);
    let bar = if args.size >= PROGRESS_FROM {
        let bar = ProgressBar::new(args.size);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:40}] {pos}/{len} clients ({per_sec}, eta {eta})",
            )
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
        );
        bar.set_message("seeding");
        bar
    } else {
        ProgressBar::hidden()
    };

    let mut created = 0;
    for _ in 0..practices {
        let organisation = OrganisationId::new();
        keyring
            .organisation_key(organisation)
            .await
            .map_err(|e| e.to_string())?;
        let in_this = per_practice.min(args.size - created);
        for _ in 0..in_this {
            keyring
                .subject_key(organisation, SubjectId::new())
                .await
                .map_err(|e| e.to_string())?;
            bar.inc(1);
        }
        created += in_this;
    }
    bar.finish_and_clear();
    println!("seed: {practices} practices, {created} clients (key hierarchy)");
    db.close().await;
    Ok(())
}

fn dev_master_key() -> Result<MasterKey, String> {
    let path = crate::workspace_root().join("custodia-data/dev-master-key");
    let encoded = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e}; start the server once to create the development key, or pass --master-key",
            path.display()
        )
    })?;
    MasterKey::from_base64(encoded.trim()).map_err(|e| e.to_string())
}
