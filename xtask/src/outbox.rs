//! `cargo xtask outbox-secret`: prints the secret (a one-time token) of the newest
//! notice of one kind queued for one person, reading the outbox the way the mail
//! sender would. A development aid, and how CI plays the email recipient to sign
//! in before fuzzing authenticated operations. It needs the same database and
//! master key (or development-key folder) as the server.

use clap::Args as ClapArgs;
use kernel::UserId;

/// Which notice to read.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The recipient's user id.
    #[arg(long)]
    user: uuid::Uuid,
    /// The notice kind, e.g. `verify_email`.
    #[arg(long, default_value = "verify_email")]
    kind: String,
    /// The server's database.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://custodia.db")]
    database_url: String,
    /// The server's data folder (where the development master key lives).
    #[arg(long, env = "CUSTODIA_DATA_DIR", default_value = "custodia-data")]
    data_dir: String,
}

/// Prints the secret, or fails when there is none.
pub async fn run(args: Args) -> Result<(), String> {
    let config = server::Config::try_from_args([
        "custodia",
        "--database-url",
        &args.database_url,
        "--data-dir",
        &args.data_dir,
        "--migrate",
        "never",
    ])
    .map_err(|e| e.to_string())?;
    let app = server::App::build(config)
        .await
        .map_err(|e| e.to_string())?;
    let state = app.state();
    let secret = store::OutboxNotifier::new(state.database().clone(), state.keyring().clone())
        .latest_secret(UserId::from_uuid(args.user), &args.kind)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no `{}` notice is queued for that user", args.kind))?;
    println!("{}", secret.expose());
    Ok(())
}
