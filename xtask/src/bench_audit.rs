//! `cargo xtask bench audit`: how fast is the audit log's group commit, and what
//! does it cost a request?
//!
//! Unless `--in-process` is given it re-runs itself built in release mode (`cargo
//! run --release -p xtask -- bench audit --in-process ...`), so the measured code
//! is optimised. Then, on a temporary SQLite file and on a fresh PostgreSQL
//! database created on `--postgres-url` (skipped, with a message, when the server
//! cannot be reached), each migrated as the server would:
//!
//! 1. baseline: the database's own durable commit rate, sequential transactions
//!    each inserting one small row into a scratch table (commits/s, p50/p99 of one
//!    commit);
//! 2. group commit: `audit::AuditLog` over `store::SeaOrmAuditRepository`, with
//!    each `--concurrency` level of tasks recording events back to back for
//!    `--seconds`: durable appends/s (goal ≥ 20,000 on SQLite, ≥ 10,000 on
//!    PostgreSQL), its ratio to the baseline commit rate, and `record()`'s p50/p99;
//! 3. what a request pays: `record()` at a steady open-loop `--rate` (latency from
//!    when each event was due), its p99 against the baseline commit's p99;
//! 4. verification: events/s of `audit::verify::verify_repository` over everything
//!    appended (reading included), and of the in-memory `Verifier` alone over the
//!    same events loaded beforehand (goal 1,000,000 events/s).
//!
//! Prints a table and writes every figure to `target/bench/audit.json`.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use audit::event::SealedEvent;
use audit::verify::{Verifier, verify_repository};
use audit::{AuditLog, AuditRepository, LogConfig, SigningKey, VerifyingKey};
use clap::Parser;
use crypto::{Keyring, MasterKey};
use kernel::{
    Actor, AuditAction, AuditEvent, AuditOutcome, AuditSink, ClientInfo, Clock, OrganisationId,
    Purpose, RequestContext, RequestId, ResourceRef, Role, RoleSet, SubjectId, SystemClock, UserId,
};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use store::{Database, DatabaseOptions, SeaOrmAuditRepository, SeaOrmKeyStore};

/// Options of `bench audit`.
#[derive(Debug, Parser)]
pub struct AuditArgs {
    /// Length of each measured phase, in seconds.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent recording tasks in the throughput phases (one phase each).
    #[arg(long, value_delimiter = ',', default_value = "64,512")]
    concurrency: Vec<usize>,
    /// Steady open-loop rate of events for the latency phase, per second.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// A PostgreSQL server on which to create (and afterwards drop) a fresh database.
    #[arg(
        long,
        env = "CUSTODIA_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
    /// Skip PostgreSQL.
    #[arg(long)]
    no_postgres: bool,
    /// Measure in this process instead of re-running the bench built in release mode.
    #[arg(long)]
    in_process: bool,
}

/// Durable appends per second the group commit should reach on SQLite...
const GOAL_SQLITE: f64 = 20_000.0;
/// ...and on PostgreSQL.
const GOAL_POSTGRES: f64 = 10_000.0;
/// Events per second the in-memory verifier should reach.
const GOAL_VERIFY: f64 = 1_000_000.0;

/// Runs the bench: in release mode in a child process unless `--in-process`.
pub async fn run(args: AuditArgs, root: &Path) -> Result<(), String> {
    if args.in_process {
        return measure(args, root).await;
    }
    crate::bench::rerun_in_release("audit", root)
}

async fn measure(args: AuditArgs, root: &Path) -> Result<(), String> {
    if cfg!(debug_assertions) {
        println!("bench: WARNING: measuring a debug build; figures are not representative");
    }
    let period = Duration::from_secs(args.seconds.max(1));
    let mut results = Vec::new();

    let dir = std::env::temp_dir().join(format!("custodia-bench-audit-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    println!("bench: SQLite ({})", dir.display());
    let sqlite = match Database::connect(&url, &DatabaseOptions::default()).await {
        Ok(db) => {
            let result = backend("sqlite", &db, &args, period, GOAL_SQLITE).await;
            db.close().await;
            result
        }
        Err(e) => Err(format!("SQLite: {e}")),
    };
    let _ = std::fs::remove_dir_all(&dir);
    results.push(sqlite?);

    if args.no_postgres {
        println!("bench: PostgreSQL skipped (--no-postgres)");
    } else {
        match FreshPostgres::create(&args.postgres_url).await {
            Ok(pg) => {
                println!("bench: PostgreSQL (database {})", pg.name);
                let result = backend("postgres", &pg.database, &args, period, GOAL_POSTGRES).await;
                pg.drop().await;
                results.push(result?);
            }
            Err(err) => println!("bench: PostgreSQL skipped: {err}"),
        }
    }

    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let report = json!({
        "release_build": !cfg!(debug_assertions),
        "cores": cores,
        "seconds_per_phase": period.as_secs(),
        "concurrency": args.concurrency,
        "open_loop_rate_per_second": args.rate,
        "goal_appends_per_second": { "sqlite": GOAL_SQLITE, "postgres": GOAL_POSTGRES },
        "goal_verify_events_per_second": GOAL_VERIFY,
        "backends": results.iter().map(Backend::to_json).collect::<Vec<_>>(),
    });
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let file = out.join("audit.json");
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&file, text + "\n").map_err(|e| e.to_string())?;

    println!();
    for r in &results {
        r.print();
        println!();
    }
    println!("wrote {}", file.display());
    Ok(())
}

/// A PostgreSQL database created for a bench, dropped afterwards.
#[derive(Debug)]
pub(crate) struct FreshPostgres {
    admin_url: String,
    /// The database's name.
    pub(crate) name: String,
    /// A pool on it.
    pub(crate) database: Database,
}

impl FreshPostgres {
    /// Creates a database on the server of `admin_url` and connects to it.
    pub(crate) async fn create(admin_url: &str) -> Result<Self, String> {
        let admin = Database::connect(
            admin_url,
            &DatabaseOptions {
                max_connections: 1,
                ..DatabaseOptions::default()
            },
        )
        .await
        .map_err(|e| format!("{admin_url} is unreachable ({e})"))?;
        let name = format!("custodia_bench_{}", uuid::Uuid::now_v7().simple());
        let created = admin
            .connection()
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await;
        admin.close().await;
        created.map_err(|e| format!("cannot create a database: {e}"))?;
        let url = with_database(admin_url, &name);
        match Database::connect(&url, &DatabaseOptions::default()).await {
            Ok(database) => Ok(Self {
                admin_url: admin_url.to_owned(),
                name,
                database,
            }),
            Err(err) => {
                drop_postgres(admin_url, &name).await;
                Err(format!("cannot open the fresh database: {err}"))
            }
        }
    }

    /// The database's URL.
    pub(crate) fn url(&self) -> String {
        with_database(&self.admin_url, &self.name)
    }

    /// Closes the pool and drops the database.
    pub(crate) async fn drop(self) {
        self.database.close().await;
        drop_postgres(&self.admin_url, &self.name).await;
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

async fn drop_postgres(admin_url: &str, name: &str) {
    if let Ok(admin) = Database::connect(
        admin_url,
        &DatabaseOptions {
            max_connections: 1,
            ..DatabaseOptions::default()
        },
    )
    .await
    {
        let _ = admin
            .connection()
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
        admin.close().await;
    }
}

/// Every figure of one database.
#[derive(Debug)]
struct Backend {
    name: &'static str,
    goal: f64,
    baseline: Phase,
    throughput: Vec<(usize, Phase)>,
    open_loop: Phase,
    verify_events: u64,
    verify_intact: bool,
    verify_seconds: f64,
    memory_events: u64,
    memory_seconds: f64,
}

impl Backend {
    fn verify_rate(&self) -> f64 {
        per_second(self.verify_events, self.verify_seconds)
    }

    fn memory_rate(&self) -> f64 {
        per_second(self.memory_events, self.memory_seconds)
    }

    fn best_throughput(&self) -> f64 {
        self.throughput
            .iter()
            .map(|(_, p)| p.per_second())
            .fold(0.0, f64::max)
    }

    fn to_json(&self) -> Value {
        let baseline = self.baseline.per_second();
        json!({
            "database": self.name,
            "baseline_single_row_commit": self.baseline.to_json(),
            "group_commit": self.throughput.iter().map(|(n, p)| {
                let mut v = p.to_json();
                v["concurrency"] = json!(n);
                v["ratio_to_baseline_commits"] = json!(p.per_second() / baseline);
                v
            }).collect::<Vec<_>>(),
            "goal_appends_per_second": self.goal,
            "goal_met": self.best_throughput() >= self.goal,
            "open_loop_record": self.open_loop.to_json(),
            "open_loop_p99_ratio_to_baseline_commit_p99":
                self.open_loop.p99_ms() / self.baseline.p99_ms(),
            "verify_repository": {
                "events": self.verify_events,
                "seconds": self.verify_seconds,
                "events_per_second": self.verify_rate(),
                "intact": self.verify_intact,
            },
            "verify_in_memory": {
                "events": self.memory_events,
                "seconds": self.memory_seconds,
                "events_per_second": self.memory_rate(),
                "goal_met": self.memory_rate() >= GOAL_VERIFY,
            },
        })
    }

    fn print(&self) {
        let b = &self.baseline;
        let baseline = b.per_second();
        println!("== {} ==", self.name);
        println!(
            "{:<34} {:>12} {:>10} {:>10} {:>10} {:>8}",
            "phase", "per second", "p50 ms", "p99 ms", "ratio", "failed"
        );
        println!(
            "{:<34} {:>12.0} {:>10.3} {:>10.3} {:>10} {:>8}",
            "baseline: 1-row commit",
            baseline,
            b.p50_ms(),
            b.p99_ms(),
            "1.00",
            b.failed
        );
        for (n, p) in &self.throughput {
            println!(
                "{:<34} {:>12.0} {:>10.3} {:>10.3} {:>9.1}x {:>8}",
                format!("group commit, {n} tasks"),
                p.per_second(),
                p.p50_ms(),
                p.p99_ms(),
                p.per_second() / baseline,
                p.failed
            );
        }
        let o = &self.open_loop;
        println!(
            "{:<34} {:>12.0} {:>10.3} {:>10.3} {:>9.2}x {:>8}",
            "record() open loop (p99 vs base)",
            o.per_second(),
            o.p50_ms(),
            o.p99_ms(),
            o.p99_ms() / b.p99_ms(),
            o.failed
        );
        println!(
            "{:<34} {:>12.0}   ({} events, {})",
            "verify_repository (events/s)",
            self.verify_rate(),
            self.verify_events,
            if self.verify_intact {
                "intact"
            } else {
                "NOT INTACT"
            }
        );
        println!(
            "{:<34} {:>12.0}   (goal ≥ {GOAL_VERIFY:.0}: {})",
            "in-memory Verifier (events/s)",
            self.memory_rate(),
            met(self.memory_rate() >= GOAL_VERIFY)
        );
        println!(
            "durable appends/s: best {:.0} (goal ≥ {:.0}: {})",
            self.best_throughput(),
            self.goal,
            met(self.best_throughput() >= self.goal)
        );
    }
}

pub(crate) const fn met(yes: bool) -> &'static str {
    if yes { "met" } else { "missed" }
}

pub(crate) fn per_second(n: u64, seconds: f64) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let n = n as f64;
    if seconds > 0.0 { n / seconds } else { 0.0 }
}

/// One phase: how many operations succeeded, how long it ran, and the latency
/// of each (ms).
#[derive(Debug, Default)]
pub(crate) struct Phase {
    /// The latency of each operation that succeeded, in ms.
    pub(crate) ms: Vec<f64>,
    /// How many failed.
    pub(crate) failed: u64,
    /// How long the phase ran.
    pub(crate) seconds: f64,
}

impl Phase {
    pub(crate) fn per_second(&self) -> f64 {
        per_second(self.ms.len() as u64, self.seconds)
    }

    fn quantile(&self, q: f64) -> f64 {
        if self.ms.is_empty() {
            return f64::NAN;
        }
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "an index into a list"
        )]
        let index = ((self.ms.len() as f64 - 1.0) * q).round() as usize;
        self.ms[index.min(self.ms.len() - 1)]
    }

    pub(crate) fn p50_ms(&self) -> f64 {
        self.quantile(0.50)
    }

    pub(crate) fn p99_ms(&self) -> f64 {
        self.quantile(0.99)
    }

    pub(crate) fn sort(mut self) -> Self {
        self.ms.sort_by(f64::total_cmp);
        self
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "succeeded": self.ms.len(),
            "failed": self.failed,
            "seconds": self.seconds,
            "per_second": self.per_second(),
            "p50_ms": self.p50_ms(),
            "p99_ms": self.p99_ms(),
            "max_ms": self.ms.last().copied().unwrap_or(f64::NAN),
        })
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn backend(
    name: &'static str,
    db: &Database,
    args: &AuditArgs,
    period: Duration,
    goal: f64,
) -> Result<Backend, String> {
    db.migrate_up(None)
        .await
        .map_err(|e| format!("{name}: migrations: {e}"))?;

    println!("bench: {name}: baseline single-row commits for {period:?}…");
    let baseline = baseline_commits(db, period).await?;

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let master = MasterKey::generate().map_err(|e| e.to_string())?;
    let keyring = Keyring::new(
        master,
        Arc::new(SeaOrmKeyStore::new(db.clone())),
        clock.clone(),
    );
    let repository: Arc<dyn AuditRepository> =
        Arc::new(SeaOrmAuditRepository::new(db.clone(), keyring));
    let key = SigningKey::from_seed(&[7; 32]).map_err(|e| e.to_string())?;
    let verifying_key = key.verifying_key();
    let log = AuditLog::start(repository.clone(), key, clock, LogConfig::default())
        .await
        .map_err(|e| format!("{name}: the audit log cannot start: {e}"))?;

    let mut throughput = Vec::new();
    for &n in &args.concurrency {
        println!("bench: {name}: group commit, {n} tasks for {period:?}…");
        throughput.push((n, closed_loop(&log, n.max(1), period).await?));
    }
    println!(
        "bench: {name}: record() at {}/s open loop for {period:?}…",
        args.rate
    );
    let open_loop = open_loop(&log, args.rate, period).await?;
    log.checkpoint()
        .await
        .map_err(|e| format!("{name}: final checkpoint: {e}"))?;
    drop(log);

    println!("bench: {name}: verification…");
    let keys = [verifying_key];
    let started = Instant::now();
    let report = verify_repository(repository.as_ref(), &keys)
        .await
        .map_err(|e| format!("{name}: verification read: {e}"))?;
    let verify_seconds = started.elapsed().as_secs_f64();
    let (memory_events, memory_seconds) = verify_in_memory(repository.as_ref(), &keys).await?;

    Ok(Backend {
        name,
        goal,
        baseline,
        throughput,
        open_loop,
        verify_events: report.events,
        verify_intact: report.is_intact(),
        verify_seconds,
        memory_events,
        memory_seconds,
    })
}

/// Sequential one-row inserts, each its own (durable) transaction.
async fn baseline_commits(db: &Database, period: Duration) -> Result<Phase, String> {
    let conn = db.connection();
    conn.execute_unprepared(
        "CREATE TABLE bench_commit (id BIGINT PRIMARY KEY, payload VARCHAR(64) NOT NULL)",
    )
    .await
    .map_err(|e| format!("scratch table: {e}"))?;
    let mut phase = Phase::default();
    let started = Instant::now();
    let mut n: u64 = 0;
    while started.elapsed() < period {
        n += 1;
        let sql =
            format!("INSERT INTO bench_commit (id, payload) VALUES ({n}, 'audit bench row {n}')");
        let at = Instant::now();
        match conn.execute_unprepared(&sql).await {
            Ok(_) => phase.ms.push(ms(at.elapsed())),
            Err(_) => phase.failed += 1,
        }
    }
    phase.seconds = started.elapsed().as_secs_f64();
    conn.execute_unprepared("DROP TABLE bench_commit")
        .await
        .map_err(|e| format!("scratch table: {e}"))?;
    Ok(phase.sort())
}

/// A realistic event: a provider reading a client's record in a practice.
fn event(n: u64) -> AuditEvent {
    let ctx = RequestContext::new(
        Actor::Member {
            user: UserId::new(),
            roles: RoleSet::only(Role::Provider),
        },
        Some(OrganisationId::new()),
        Purpose::Treatment,
        RequestId::new(),
        ClientInfo::new(
            Some(IpAddr::from([
                192,
                0,
                2,
                u8::try_from(n % 200).unwrap_or(1),
            ])),
            Some("Mozilla/5.0 (audit bench)"),
        ),
        SystemClock.now(),
    );
    let outcome = if n.is_multiple_of(7) {
        AuditOutcome::Denied {
            reason: "not_on_care_team",
        }
    } else {
        AuditOutcome::Allowed
    };
    AuditEvent::new(
        &ctx,
        AuditAction::Read,
        ResourceRef::new("condition", uuid::Uuid::now_v7()),
        Some(SubjectId::new()),
        outcome,
    )
}

/// `tasks` tasks recording back to back for `period`.
async fn closed_loop(log: &AuditLog, tasks: usize, period: Duration) -> Result<Phase, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let (log, stop, counter) = (log.clone(), stop.clone(), counter.clone());
            tokio::spawn(async move {
                let mut phase = Phase::default();
                while !stop.load(Ordering::Relaxed) {
                    let e = event(counter.fetch_add(1, Ordering::Relaxed));
                    let at = Instant::now();
                    match log.record(e).await {
                        Ok(_) => phase.ms.push(ms(at.elapsed())),
                        Err(_) => phase.failed += 1,
                    }
                }
                phase
            })
        })
        .collect();
    tokio::time::sleep(period).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Phase::default();
    for worker in workers {
        let phase = worker.await.map_err(|e| e.to_string())?;
        total.ms.extend(phase.ms);
        total.failed += phase.failed;
    }
    total.seconds = started.elapsed().as_secs_f64();
    Ok(total.sort())
}

/// One event every `1/rate` s for `period`, each from its own task, whether or
/// not earlier ones are done; latency counted from when each was due.
async fn open_loop(log: &AuditLog, rate: u32, period: Duration) -> Result<Phase, String> {
    let interval = Duration::from_secs(1) / rate.max(1);
    let total = u64::try_from(period.as_nanos() / interval.as_nanos().max(1)).unwrap_or(u64::MAX);
    let start = tokio::time::Instant::now();
    let mut pending = Vec::new();
    for n in 0..total {
        let due = start + interval * u32::try_from(n).map_err(|e| e.to_string())?;
        tokio::time::sleep_until(due).await;
        let log = log.clone();
        pending.push(tokio::spawn(async move {
            let ok = log.record(event(n)).await.is_ok();
            (ok, due.elapsed())
        }));
    }
    let mut phase = Phase::default();
    for p in pending {
        let (ok, took) = p.await.map_err(|e| e.to_string())?;
        if ok {
            phase.ms.push(ms(took));
        } else {
            phase.failed += 1;
        }
    }
    phase.seconds = start.elapsed().as_secs_f64();
    Ok(phase.sort())
}

/// Loads every event first, then times the verifier alone over them.
async fn verify_in_memory(
    repository: &dyn AuditRepository,
    keys: &[VerifyingKey],
) -> Result<(u64, f64), String> {
    let read = |e: audit::AuditStoreError| format!("reading the log: {e}");
    let checkpoints = repository.checkpoints().await.map_err(read)?;
    let heads = repository.heads().await.map_err(read)?;
    let mut chains: Vec<(audit::event::ChainId, u64, Vec<SealedEvent>)> = Vec::new();
    for chain in repository.chains().await.map_err(read)? {
        let recorded = heads
            .iter()
            .find(|h| h.chain == chain)
            .map_or(0, |h| h.size);
        let mut events = Vec::new();
        loop {
            let after = events.last().map_or(0, |e: &SealedEvent| e.sequence);
            let page = repository
                .events(chain, after, 10_000)
                .await
                .map_err(read)?;
            if page.is_empty() {
                break;
            }
            events.extend(page);
        }
        chains.push((chain, recorded, events));
    }
    let started = Instant::now();
    let mut verifier = Verifier::new(keys, &checkpoints);
    for (chain, recorded, events) in &chains {
        let mut chain_verifier = verifier.chain(*chain, *recorded);
        chain_verifier.feed(events);
        chain_verifier.end();
    }
    let report = verifier.finish();
    let seconds = started.elapsed().as_secs_f64();
    if !report.is_intact() {
        return Err(format!("the in-memory verifier found a break: {report:?}"));
    }
    Ok((report.events, seconds))
}
