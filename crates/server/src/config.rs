//! Configuration: every setting from a flag or an environment variable (clap), so
//! `custodia --help` lists them all. Secrets are never echoed by `--help` or logs.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use kernel::Sensitive;

/// When to apply pending migrations at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MigrateMode {
    /// Apply them on the embedded SQLite default; on PostgreSQL, refuse to start
    /// while any is pending (run `cargo xtask db up` as a deliberate step).
    Auto,
    /// Always apply them.
    Always,
    /// Never apply them; refuse to start while any is pending.
    Never,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Custodia's settings.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "custodia",
    version,
    about = "Custodia: a privacy-first backend for care platforms."
)]
pub struct Config {
    /// Address to listen on. Port 0 picks a free port.
    #[arg(long, env = "CUSTODIA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Database URL: `sqlite://<file>` (embedded, the default) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://custodia.db")]
    pub database_url: String,

    /// Most database connections in the pool.
    #[arg(long, env = "CUSTODIA_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,

    /// When to apply pending migrations at start.
    #[arg(long, env = "CUSTODIA_MIGRATE", value_enum, default_value_t = MigrateMode::Auto)]
    pub migrate: MigrateMode,

    /// Folder for local state: the development master key when none is configured.
    #[arg(long, env = "CUSTODIA_DATA_DIR", default_value = "custodia-data")]
    pub data_dir: PathBuf,

    /// Master key (base64 of 32 bytes) wrapping every organisation key. When absent,
    /// a development key is generated into the data folder, with a loud warning.
    #[arg(long, env = "CUSTODIA_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<Sensitive<String>>,

    /// Ed25519 key (base64 of its 32-byte seed) signing the audit log's checkpoints.
    /// Every process of one deployment uses the same key. When absent, a development
    /// key is generated into the data folder, with a loud warning.
    #[arg(long, env = "CUSTODIA_AUDIT_SIGNING_KEY", hide_env_values = true)]
    pub audit_signing_key: Option<Sensitive<String>>,

    /// Retired audit signing keys whose checkpoints still verify: base64 of each
    /// 32-byte Ed25519 public key, comma-separated.
    #[arg(long, env = "CUSTODIA_AUDIT_TRUSTED_KEYS", value_delimiter = ',')]
    pub audit_trusted_keys: Vec<String>,

    /// A signed checkpoint of the audit log after this many events...
    #[arg(long, env = "CUSTODIA_AUDIT_CHECKPOINT_EVENTS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_checkpoint_events: u64,

    /// ...or this many seconds after the last one, whichever comes first.
    #[arg(long, env = "CUSTODIA_AUDIT_CHECKPOINT_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_checkpoint_seconds: u64,

    /// Most audit events one group commit carries.
    #[arg(long, env = "CUSTODIA_AUDIT_MAX_BATCH", default_value_t = 2048,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub audit_max_batch: u64,

    /// Microseconds a group commit may wait for more events once it has one. 0
    /// commits at once (batches still form while a commit is in flight).
    #[arg(long, env = "CUSTODIA_AUDIT_LINGER_MICROS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub audit_linger_micros: u64,

    /// Days audit events and disclosures are kept; at least six years (2192 days,
    /// HIPAA §164.316(b)(2) and §164.528). Older events are blanked, keeping only
    /// their hashes, so the chains still verify.
    #[arg(long, env = "CUSTODIA_AUDIT_RETENTION_DAYS", default_value_t = 2192,
          value_parser = clap::value_parser!(u32).range(2192..=36500))]
    pub audit_retention_days: u32,

    /// How long an unwrapped data key stays cached, in seconds. Bounds how long a
    /// key destroyed by another process stays usable here.
    #[arg(long, env = "CUSTODIA_KEY_CACHE_TTL_SECONDS", default_value_t = 60)]
    pub key_cache_ttl_seconds: u64,

    /// PBKDF2-HMAC-SHA256 iterations for new password hashes. Below 600,000 is
    /// refused unless `--insecure-fast-password-hashing` is set.
    #[arg(long, env = "CUSTODIA_PASSWORD_ITERATIONS", default_value = "600000")]
    pub password_iterations: NonZeroU32,

    /// Allow password iteration counts below 600,000. For tests only: never in
    /// production.
    #[arg(long, env = "CUSTODIA_INSECURE_FAST_PASSWORD_HASHING")]
    pub insecure_fast_password_hashing: bool,

    /// Minutes a session may go unused before it ends.
    #[arg(long, env = "CUSTODIA_SESSION_IDLE_MINUTES", default_value_t = 30)]
    pub session_idle_minutes: u32,

    /// Hours a session lasts after sign-in, used or not.
    #[arg(long, env = "CUSTODIA_SESSION_LIFETIME_HOURS", default_value_t = 12)]
    pub session_lifetime_hours: u32,

    /// Days security events (sign-ins, failures, account changes) are kept before
    /// the retention job deletes them.
    #[arg(long, env = "CUSTODIA_SECURITY_EVENT_RETENTION_DAYS", default_value_t = 365,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub security_event_retention_days: u32,

    /// Minutes between runs of the retention job (which also runs at start).
    #[arg(long, env = "CUSTODIA_RETENTION_INTERVAL_MINUTES", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub retention_interval_minutes: u32,

    /// A request header set by a trusted proxy carrying the client's ISO country
    /// code (e.g. `CF-IPCountry`). Only a two-letter code is ever kept. Unset: no
    /// location is recorded.
    #[arg(long, env = "CUSTODIA_COUNTRY_HEADER")]
    pub country_header: Option<String>,

    /// Largest request body accepted, in bytes; larger bodies get 413.
    #[arg(long, env = "CUSTODIA_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Seconds to let in-flight requests finish after SIGTERM or Ctrl-C.
    #[arg(long, env = "CUSTODIA_SHUTDOWN_GRACE_SECONDS", default_value_t = 30)]
    pub shutdown_grace_seconds: u64,

    /// Log line format.
    #[arg(long, env = "CUSTODIA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter, in `tracing` `EnvFilter` syntax (e.g. `info,server=debug`).
    #[arg(long, env = "CUSTODIA_LOG", default_value = "info")]
    pub log: String,

    /// At start, make the existing, verified account with this email a platform
    /// operator (idempotent); the server refuses to start if there is none.
    #[arg(long, env = "CUSTODIA_GRANT_OPERATOR")]
    pub grant_operator: Option<String>,

    /// The shared secret the payment processor signs its webhooks with
    /// (`Custodia-Processor-Signature`, HMAC-SHA256). When absent, a development
    /// secret is generated into the data folder, with a warning.
    #[arg(long, env = "CUSTODIA_BILLING_WEBHOOK_SECRET", hide_env_values = true)]
    pub billing_webhook_secret: Option<Sensitive<String>>,

    /// Days invoices are kept after they are issued (tax and accounting law). Set
    /// together with `--invoice-retention-ground`; by default seven years under
    /// the built-in ground.
    #[arg(long, env = "CUSTODIA_INVOICE_RETENTION_DAYS",
          requires = "invoice_retention_ground",
          value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub invoice_retention_days: Option<u32>,

    /// The legal citation stated on retained invoices as the ground for keeping
    /// them, e.g. `HGB § 257; AO § 147`. Set together with
    /// `--invoice-retention-days`.
    #[arg(
        long,
        env = "CUSTODIA_INVOICE_RETENTION_GROUND",
        requires = "invoice_retention_days"
    )]
    pub invoice_retention_ground: Option<String>,

    /// Seconds between runs of the billing job (renewals, trial ends,
    /// cancellations at period end, dunning retries, expired idempotency keys).
    /// 0 disables the job.
    #[arg(
        long,
        env = "CUSTODIA_BILLING_RUN_INTERVAL_SECS",
        default_value_t = 3600
    )]
    pub billing_run_interval_secs: u64,

    /// How many password hashes may run at once (sign-in, sign-up). By default
    /// one fewer than the cores (at least 1), so a flood of sign-ins always
    /// leaves a core for everything else.
    #[arg(long, env = "CUSTODIA_HASHING_CONCURRENCY")]
    pub hashing_concurrency: Option<std::num::NonZeroUsize>,

    /// The controller's legal name, stated in every rights answer and in the
    /// privacy statements (D13, O5). Set it in production.
    #[arg(
        long,
        env = "CUSTODIA_CONTROLLER_NAME",
        default_value = DEV_CONTROLLER_NAME
    )]
    pub controller_name: String,

    /// The controller's postal address, stated with its name.
    #[arg(
        long,
        env = "CUSTODIA_CONTROLLER_ADDRESS",
        default_value = DEV_CONTROLLER_ADDRESS
    )]
    pub controller_address: String,

    /// The privacy officer's email address, stated with the controller.
    #[arg(
        long,
        env = "CUSTODIA_PRIVACY_OFFICER_EMAIL",
        default_value = DEV_PRIVACY_OFFICER_EMAIL
    )]
    pub privacy_officer_email: String,
}

/// The controller named when none is configured: plainly a development one.
pub const DEV_CONTROLLER_NAME: &str =
    "Custodia development controller (set CUSTODIA_CONTROLLER_NAME)";
/// The address stated when none is configured.
pub const DEV_CONTROLLER_ADDRESS: &str = "No address configured (set CUSTODIA_CONTROLLER_ADDRESS)";
/// The privacy officer's address when none is configured (a reserved domain).
pub const DEV_PRIVACY_OFFICER_EMAIL: &str = "privacy-officer@custodia.invalid";

impl Config {
    /// Parses settings from `args` (the first is the program name) and the
    /// environment. Tests use it to build the real configuration the real way.
    ///
    /// # Errors
    /// A clap error describing the bad setting.
    pub fn try_from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Self::try_parse_from(args)
    }

    /// The controller and privacy officer as configured, for the statements.
    #[must_use]
    pub fn controller(&self) -> data_rights::statements::Controller {
        data_rights::statements::Controller {
            name: self.controller_name.trim().to_owned(),
            address: self.controller_address.trim().to_owned(),
            privacy_officer_email: self.privacy_officer_email.trim().to_owned(),
        }
    }

    /// Whether the database is the embedded SQLite.
    #[must_use]
    pub fn is_embedded_database(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_defaults_need_nothing() {
        let config = Config::try_from_args(["custodia"]).expect("defaults parse");
        assert!(config.is_embedded_database());
        assert_eq!(config.password_iterations.get(), 600_000);
        assert!(config.master_key.is_none());
    }

    #[test]
    fn help_lists_every_setting() {
        let help = Config::command().render_long_help().to_string();
        for flag in [
            "--listen",
            "--database-url",
            "--db-max-connections",
            "--migrate",
            "--data-dir",
            "--master-key",
            "--audit-signing-key",
            "--key-cache-ttl-seconds",
            "--password-iterations",
            "--insecure-fast-password-hashing",
            "--max-body-bytes",
            "--session-idle-minutes",
            "--session-lifetime-hours",
            "--country-header",
            "--shutdown-grace-seconds",
            "--log-format",
            "--log",
            "--billing-webhook-secret",
            "--invoice-retention-days",
            "--invoice-retention-ground",
            "--billing-run-interval-secs",
            "--controller-name",
            "--controller-address",
            "--privacy-officer-email",
        ] {
            assert!(help.contains(flag), "--help is missing {flag}");
        }
    }

    #[test]
    fn invoice_retention_is_set_as_days_and_ground_together() {
        let config = Config::try_from_args([
            "custodia",
            "--invoice-retention-days",
            "3650",
            "--invoice-retention-ground",
            "HGB § 257",
        ])
        .expect("both given");
        assert_eq!(config.invoice_retention_days, Some(3650));
        assert!(Config::try_from_args(["custodia", "--invoice-retention-days", "3650"]).is_err());
        assert!(
            Config::try_from_args(["custodia", "--invoice-retention-ground", "HGB § 257"]).is_err()
        );
        assert!(
            Config::try_from_args([
                "custodia",
                "--invoice-retention-days",
                "0",
                "--invoice-retention-ground",
                "x"
            ])
            .is_err()
        );
        let defaults = Config::try_from_args(["custodia"]).expect("defaults parse");
        assert_eq!(defaults.billing_run_interval_secs, 3600);
        assert!(defaults.invoice_retention_days.is_none());
    }

    #[test]
    fn the_controller_has_development_defaults_and_is_configurable() {
        let defaults = Config::try_from_args(["custodia"]).expect("defaults parse");
        assert_eq!(defaults.controller().name, DEV_CONTROLLER_NAME);
        assert_eq!(
            defaults.controller().privacy_officer_email,
            DEV_PRIVACY_OFFICER_EMAIL
        );
        let set = Config::try_from_args([
            "custodia",
            "--controller-name",
            "Harbour Health Ltd",
            "--controller-address",
            "1 Quay Street, Dublin",
            "--privacy-officer-email",
            "dpo@harbour.example",
        ])
        .expect("parses");
        assert_eq!(set.controller().name, "Harbour Health Ltd");
        assert_eq!(set.controller().address, "1 Quay Street, Dublin");
        assert_eq!(
            set.controller().privacy_officer_email,
            "dpo@harbour.example"
        );
    }

    #[test]
    fn the_webhook_secret_never_prints() {
        let config = Config::try_from_args(["custodia", "--billing-webhook-secret", "whsec-42"])
            .expect("parses");
        assert!(!format!("{config:?}").contains("whsec-42"));
    }

    #[test]
    fn the_master_key_never_prints() {
        let config =
            Config::try_from_args(["custodia", "--master-key", "c2VjcmV0"]).expect("parses");
        assert!(!format!("{config:?}").contains("c2VjcmV0"));
    }
}
