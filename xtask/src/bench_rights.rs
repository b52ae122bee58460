//! `cargo xtask bench rights`: how long do a data subject's export and erasure
//! take, as their records and the database grow? (Issue #8.)
//!
//! Unless `--in-process` is given it re-runs itself built in release mode (`cargo
//! run --release -p xtask -- bench rights --in-process ...`), so the measured code
//! is optimised. What is measured is the real engine,
//! `data_rights::service::RightsService`, as the server composes it
//! (`server::state::AppState::rights()`: identity, clinical, consent, billing and
//! the audit log through their `PersonalData` ports, the SQL rights storage, the
//! keyring, stored ZIP archives, the audit sink), built in-process by [`server::App::build`] on a
//! SQLite file, as `cargo xtask seed` builds it. No HTTP: the HTTP layer (a
//! request's authentication and a JSON answer) is not what is measured, and costs
//! the same whatever the subject holds.
//!
//! # The databases
//! One SQLite file per `--clients` size (default 10,000 and 1,000,000, in one
//! run), under `target/bench/rights-<clients>/`, migrated, then filled with bulk
//! SQL (`INSERT ... SELECT` over a recursive CTE, in transactions of
//! [`FILL_BATCH`] clients): practices of [`CLIENTS_PER_PRACTICE`] clients, each
//! with its provider (`org_admin` and `provider`) and its organisation key; per
//! background client the rows identity and clinical keep for a client: the
//! account (`users`, `active`, a unique blind index), the `client` membership,
//! the sealed birth date, two security events (account created, activated), the
//! provider on the care team, the subject's data key, and [`RECORDS_PER_CLIENT`]
//! clinical records (a condition and a medication) with their first versions.
//! Sealed columns of background rows are random bytes of the lengths the real
//! envelopes have (they are never opened); ids are random. The consent, audit and
//! billing tables hold only what the services write during the run. The file is
//! rebuilt on every run unless `--reuse` is given and the population marker
//! beside it (`population.json`: the sizes, the layout's version and the
//! migrations applied) matches.
//!
//! In each database a practice is then created through the services (`sign_up`,
//! email verification, a privacy officer added and activated), in the `eu`
//! region: its requests are GDPR's.
//!
//! # One measurement
//! First, in each database, one subject with the smallest N goes through every
//! step below untimed (a warm-up: prepared statements, caches). Then for each
//! round (`--rounds`), each `--records` N and each database, in that order, so
//! drift in the machine's load falls on every figure alike:
//!
//! 1. a fresh subject, made as the API makes one: `createClient`'s steps by the
//!    provider (the sealed account, the consent registration and the provider's
//!    attestation, the care team), activation with the token from the outbox, and
//!    N records (conditions, medications and allergies in turn) through
//!    `ClinicalService::create_record` (sealed with the subject's key, audited),
//!    `--concurrency` at a time. Not timed;
//! 2. the floor: the provider reads every one of the N records once through
//!    `ClinicalService::records`, pages of 100 (each page checked, decrypted and
//!    audited), the way `listRecords` does;
//! 3. export: the subject files an access request for themselves; filing runs it
//!    at once (every context's export, `export.json` and the other files, the
//!    ZIP, its SHA-256, the archive sealed and stored). Timed end to end. The
//!    archive is then downloaded (not timed) and its digest checked;
//! 4. erasure: the subject files an erasure request (timed), then the practice's
//!    privacy officer carries it out with `execute` (timed): every context erases,
//!    each step journaled, then the subject's data key is destroyed.
//!
//! # Profile
//! Unless `--no-profile`: in the first round, after the timed export, each
//! context's `export` of the same subject is timed alone, then the archive's
//! files (`data_rights::archive::export_parts`), the ZIP with its digest
//! (`server::rights::ZipPacker`), and the archive sealed and stored
//! (`store::SeaOrmRightsRepository::put_archive`, the stored bytes again, so the
//! request's digest still holds); and per database one more subject with the
//! largest N is erased context by context (`PersonalData::erase` in the engine's
//! order, then the key), each step timed. These say which part dominates.
//!
//! # Goals and report
//! Export at most 50 ms + 50 µs × N, erasure (filing and execution) at most
//! 100 ms + 100 µs × N, and at the largest database at most 1.5 times the
//! figure at the smallest. Reported per (clients, N): the median and minimum of
//! the rounds for the floor, the export and the erasure, each against its goal
//! and the export as a multiple of the floor; per N, the largest database's
//! median over the smallest's for each, with the floor's ratio beside them (how
//! much of the growth any read of the subject pays). Prints a table and writes
//! every figure to `target/bench/rights.json`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Parser;
use clinical::model::{MAX_PAGE, PageRequest, RecordKind};
use consent::ledger::Channel;
use data_rights::RequestStatus;
use data_rights::request::{RequestDetail, RequestKind, RequestResult};
use data_rights::service::{Filing, OnBehalfOf};
use identity::service::SignUp;
use identity::service::members::{Enrolled, NewClient, NewPerson};
use kernel::personal_data::PersonalData;
use kernel::{
    Actor, ClientInfo, Clock, OrganisationId, Purpose, Regime, RequestContext, RequestId, Role,
    RoleSet, Sensitive, SubjectId, SystemClock, UserId,
};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, TransactionTrait};
use serde_json::{Value, json};
use server::state::AppState;
use server::{App, Config};
use store::{Database, DatabaseOptions, OutboxNotifier};
use tokio::task::JoinSet;

/// Options of `bench rights`.
#[derive(Debug, Parser)]
pub struct RightsArgs {
    /// Background clients in each database, each measured in the same run.
    #[arg(long, value_delimiter = ',', default_value = "10000,1000000")]
    clients: Vec<u64>,
    /// Records of each measured subject (N), each measured in every database.
    #[arg(long, value_delimiter = ',', default_value = "10,1000,10000")]
    records: Vec<u32>,
    /// Fresh subjects measured per (clients, N); the median and the minimum are
    /// reported.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Reuse a database under target/bench/ whose population marker matches,
    /// instead of building it again.
    #[arg(long)]
    reuse: bool,
    /// Records written at once while a subject is prepared (not timed).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Skip the per-context breakdown of export and erasure.
    #[arg(long)]
    no_profile: bool,
    /// Measure in this process instead of re-running the bench built in release mode.
    #[arg(long)]
    in_process: bool,
}

/// Export goal: this many milliseconds...
const EXPORT_BASE_MS: f64 = 50.0;
/// ...plus this many microseconds per record.
const EXPORT_PER_RECORD_US: f64 = 50.0;
/// Erasure goal: this many milliseconds...
const ERASURE_BASE_MS: f64 = 100.0;
/// ...plus this many microseconds per record.
const ERASURE_PER_RECORD_US: f64 = 100.0;
/// The largest database's figures at most this multiple of the smallest's.
const GOAL_SCALING: f64 = 1.5;
/// Background clients per practice.
pub const CLIENTS_PER_PRACTICE: u64 = 200;
/// Clinical records per background client (a condition and a medication).
pub const RECORDS_PER_CLIENT: u64 = 2;
/// Security events per background client (account created, activated).
const EVENTS_PER_CLIENT: u64 = 2;
/// Background clients inserted per transaction.
pub const FILL_BATCH: u64 = 50_000;
/// The layout of the background population; a marker of another layout is not
/// reused.
const POPULATION_LAYOUT: u32 = 1;
/// The password of the bench's accounts.
const PASSWORD: &str = "rights bench horse battery staple";
const USER_AGENT: &str = "cargo xtask bench rights";

/// Runs the bench: in release mode in a child process unless `--in-process`.
pub async fn run(args: RightsArgs, root: &Path) -> Result<(), String> {
    if !args.in_process {
        return crate::bench::rerun_in_release("rights", root);
    }
    if cfg!(debug_assertions) {
        println!("bench: WARNING: measuring a debug build; figures are not representative");
    }
    let mut clients = args.clients.clone();
    clients.sort_unstable();
    clients.dedup();
    let mut records = args.records.clone();
    records.sort_unstable();
    records.dedup();
    if clients.is_empty() || clients.contains(&0) || records.is_empty() {
        return Err("--clients needs sizes above zero, and --records one N or more".to_owned());
    }
    let plan = Plan {
        out: root.join("target/bench"),
        clients,
        records,
        rounds: args.rounds.max(1),
        reuse: args.reuse,
        concurrency: args.concurrency.max(1),
        profile: !args.no_profile,
        progress: true,
        fast_hashing: false,
    };
    let report = measure(&plan).await?;
    std::fs::create_dir_all(&plan.out).map_err(|e| e.to_string())?;
    let file = plan.out.join("rights.json");
    let text = serde_json::to_string_pretty(&report.to_json()).map_err(|e| e.to_string())?;
    std::fs::write(&file, text + "\n").map_err(|e| e.to_string())?;
    println!();
    report.print();
    println!("wrote {}", file.display());
    Ok(())
}

/// What to measure, and where.
#[derive(Debug, Clone)]
struct Plan {
    /// The folder of the databases (`rights-<clients>/`).
    out: PathBuf,
    clients: Vec<u64>,
    records: Vec<u32>,
    rounds: u32,
    reuse: bool,
    concurrency: usize,
    profile: bool,
    progress: bool,
    /// Cheap password hashing (the unit test); the bench hashes as production.
    fast_hashing: bool,
}

impl Plan {
    fn say(&self, line: impl AsRef<str>) {
        if self.progress {
            println!("bench: {}", line.as_ref());
        }
    }
}

/// Opens every database, measures every (round, N, clients), and profiles.
async fn measure(plan: &Plan) -> Result<Report, String> {
    let mut populations = Vec::new();
    for &clients in &plan.clients {
        populations.push(Population::open(plan, clients).await?);
    }
    let smallest = plan.records.iter().copied().min().unwrap_or(1);
    for p in &mut populations {
        plan.say(format!(
            "{} clients: warming up with an untimed subject of {smallest} records…",
            p.clients
        ));
        p.measure_once(plan, smallest, false).await?;
    }
    let mut cells: Vec<Cell> = Vec::new();
    for &n in &plan.records {
        for p in &populations {
            cells.push(Cell::new(p.clients, n));
        }
    }
    for round in 1..=plan.rounds {
        for &n in &plan.records {
            for p in &mut populations {
                plan.say(format!(
                    "round {round}/{}: {} clients, N = {n}: preparing a subject…",
                    plan.rounds, p.clients
                ));
                let profile = plan.profile && round == 1;
                let sample = p.measure_once(plan, n, profile).await?;
                let t = &sample.timings;
                plan.say(format!(
                    "  floor {:.1} ms, export {:.1} ms, erasure {:.1} ms (prepared in {:.1} s)",
                    t.floor_ms,
                    t.access_ms,
                    t.erasure_ms(),
                    t.prepare_seconds
                ));
                let cell = cells
                    .iter_mut()
                    .find(|c| c.clients == p.clients && c.records == n)
                    .ok_or("a cell went missing")?;
                cell.samples.push(sample.timings);
                if let Some(export) = sample.export_profile {
                    cell.export_profile = Some(export);
                }
            }
        }
    }
    let largest = plan.records.iter().copied().max().unwrap_or(0);
    let mut erase_profiles = Vec::new();
    if plan.profile {
        for p in &mut populations {
            plan.say(format!(
                "profile: {} clients: erasing a subject with {largest} records context by \
                 context…",
                p.clients
            ));
            erase_profiles.push((p.clients, largest, p.erase_profile(plan, largest).await?));
        }
    }
    let mut built = Vec::new();
    for p in populations {
        built.push(p.close().await?);
    }
    Ok(Report {
        rounds: plan.rounds,
        populations: built,
        cells,
        erase_profiles,
    })
}

// ------------------------------------------------------------------ population

/// How a database was built, and what it holds.
#[derive(Debug, Clone)]
struct Built {
    clients: u64,
    practices: u64,
    reused: bool,
    fill_seconds: f64,
    client_memberships: u64,
    clinical_records: u64,
    file_bytes: u64,
}

impl Built {
    fn to_json(&self) -> Value {
        json!({
            "background_clients": self.clients,
            "background_practices": self.practices,
            "clients_per_practice": CLIENTS_PER_PRACTICE,
            "records_per_background_client": RECORDS_PER_CLIENT,
            "security_events_per_background_client": EVENTS_PER_CLIENT,
            "reused": self.reused,
            "fill_seconds": if self.reused { Value::Null } else { json!(self.fill_seconds) },
            "client_memberships_at_end": self.client_memberships,
            "clinical_records_at_end": self.clinical_records,
            "file_bytes_at_end": self.file_bytes,
        })
    }
}

/// One database, its application and the bench's practice in it.
struct Population {
    clients: u64,
    practices: u64,
    state: AppState,
    outbox: OutboxNotifier,
    db_path: PathBuf,
    practice: OrganisationId,
    owner: UserId,
    officer: UserId,
    tag: String,
    made: u64,
    reused: bool,
    fill_seconds: f64,
}

impl std::fmt::Debug for Population {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Population")
            .field("clients", &self.clients)
            .finish_non_exhaustive()
    }
}

/// The marker beside a filled database.
fn marker(clients: u64, practices: u64, migrations: &[String]) -> Value {
    json!({
        "layout": POPULATION_LAYOUT,
        "background_clients": clients,
        "background_practices": practices,
        "clients_per_practice": CLIENTS_PER_PRACTICE,
        "records_per_background_client": RECORDS_PER_CLIENT,
        "security_events_per_background_client": EVENTS_PER_CLIENT,
        "migrations": migrations,
    })
}

/// The migrations the code knows, all of which must be applied.
async fn applied_migrations(db: &Database) -> Result<Option<Vec<String>>, String> {
    let status = db.migration_status().await.map_err(|e| e.to_string())?;
    if status.iter().any(|m| !m.applied) {
        return Ok(None);
    }
    Ok(Some(status.into_iter().map(|m| m.name).collect()))
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

impl Population {
    /// The database of `clients` background clients (reused or built), the
    /// application over it, and a practice made through the services.
    async fn open(plan: &Plan, clients: u64) -> Result<Self, String> {
        let dir = plan.out.join(format!("rights-{clients}"));
        let db_path = dir.join("bench.db");
        let marker_path = dir.join("population.json");
        let practices = clients.div_ceil(CLIENTS_PER_PRACTICE);
        let mut reused = false;
        if plan.reuse && db_path.exists() {
            let found: Option<Value> = std::fs::read_to_string(&marker_path)
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok());
            let db = Database::connect(&sqlite_url(&db_path), &DatabaseOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            let migrations = applied_migrations(&db).await;
            db.close().await;
            if let (Some(found), Ok(Some(migrations))) = (found, migrations) {
                reused = found == marker(clients, practices, &migrations);
            }
            if !reused {
                plan.say(format!(
                    "{clients} clients: the database in {} does not match its marker; \
                     building it again",
                    dir.display()
                ));
            }
        }
        let mut fill_seconds = 0.0;
        if reused {
            plan.say(format!(
                "{clients} clients: reusing {} (marker matches)",
                db_path.display()
            ));
        } else {
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            plan.say(format!(
                "{clients} clients: building {} with bulk SQL…",
                db_path.display()
            ));
            let started = Instant::now();
            // One connection: the fill's temporary tables and settings are its own.
            let db = Database::connect(
                &sqlite_url(&db_path),
                &DatabaseOptions {
                    max_connections: 1,
                    ..DatabaseOptions::default()
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            db.migrate_up(None).await.map_err(|e| e.to_string())?;
            fill(&db, clients, plan).await?;
            let migrations = applied_migrations(&db)
                .await?
                .ok_or("migrations are pending after migrating")?;
            db.close().await;
            fill_seconds = started.elapsed().as_secs_f64();
            let text = serde_json::to_string_pretty(&marker(clients, practices, &migrations))
                .map_err(|e| e.to_string())?;
            std::fs::write(&marker_path, text + "\n").map_err(|e| e.to_string())?;
            plan.say(format!("{clients} clients: filled in {fill_seconds:.1} s"));
        }

        let mut argv = vec![
            "custodia".to_owned(),
            "--database-url".to_owned(),
            sqlite_url(&db_path),
            "--data-dir".to_owned(),
            dir.display().to_string(),
            "--migrate".to_owned(),
            "always".to_owned(),
            "--log".to_owned(),
            "warn".to_owned(),
        ];
        if plan.fast_hashing {
            argv.extend([
                "--password-iterations".to_owned(),
                "1000".to_owned(),
                "--insecure-fast-password-hashing".to_owned(),
            ]);
        }
        let config = Config::try_from_args(argv).map_err(|e| e.to_string())?;
        let app = App::build(config).await.map_err(|e| e.to_string())?;
        let state = app.state().clone();
        let outbox = OutboxNotifier::new(state.database().clone(), state.keyring().clone());
        let tag = uuid::Uuid::now_v7().simple().to_string()[20..].to_owned();
        let (practice, owner, officer) = bench_practice(&state, &outbox, &tag).await?;
        plan.say(format!(
            "{clients} clients: practice, owner and privacy officer made through the services"
        ));
        Ok(Self {
            clients,
            practices,
            state,
            outbox,
            db_path,
            practice,
            owner,
            officer,
            tag,
            made: 0,
            reused,
            fill_seconds,
        })
    }

    fn provider(&self, purpose: Purpose) -> RequestContext {
        member(
            self.owner,
            RoleSet::only(Role::OrgAdmin).with(Role::Provider),
            self.practice,
            purpose,
        )
    }

    fn officer(&self) -> RequestContext {
        member(
            self.officer,
            RoleSet::only(Role::PrivacyOfficer),
            self.practice,
            Purpose::SubjectRequest,
        )
    }

    fn person(&self, subject: &Subject) -> RequestContext {
        member(
            subject.user,
            RoleSet::only(Role::Client),
            self.practice,
            Purpose::SubjectRequest,
        )
    }

    /// A fresh client with `n` records, made as the API makes them.
    async fn subject(&mut self, n: u32, concurrency: usize) -> Result<Subject, String> {
        self.made += 1;
        let seq = self.made;
        let state = &self.state;
        let organisation = self.practice;
        let enrolled = state
            .identity()
            .create_client(
                &self.provider(Purpose::Operations),
                organisation,
                NewClient {
                    name: crate::seed::person_name(seq),
                    email: format!("rights-bench-client-{seq}-{}@example.com", self.tag),
                    phone: Some(crate::seed::phone(seq + 2_000_000)),
                    date_of_birth: crate::seed::birth_date(seq)?,
                },
            )
            .await
            .map_err(|e| format!("creating a client: {e}"))?;
        let Enrolled::Created(client) = enrolled else {
            return Err("a bench client's email was taken".to_owned());
        };
        // createClient's other steps: the attestation, then the care team.
        let ctx = self.provider(Purpose::Treatment);
        let child = state
            .identity()
            .is_child(client.id, ctx.at().date_naive())
            .await
            .map_err(|e| e.to_string())?;
        state
            .consent()
            .register(client.subject, Some(organisation), child)
            .await
            .map_err(|e| e.to_string())?;
        state
            .consent()
            .attest(
                &ctx,
                client.subject,
                self.owner,
                Channel::Paper,
                Some(format!("intake form {seq}")),
                ctx.at() - chrono::Duration::days(1),
            )
            .await
            .map_err(|e| format!("recording the attestation: {e}"))?;
        state
            .clinical()
            .enrol(&ctx, organisation, client.id)
            .await
            .map_err(|e| format!("joining the care team: {e}"))?;
        activate(state, &self.outbox, client.id).await?;

        let today = Utc::now().date_naive();
        let mut writers = JoinSet::new();
        for r in 0..n {
            while writers.len() >= concurrency {
                join_writer(&mut writers).await?;
            }
            let pick = (seq as usize).wrapping_mul(7).wrapping_add(r as usize);
            let (kind, content) = match r % 3 {
                0 => (RecordKind::Condition, crate::seed::condition(pick, today)),
                1 => (RecordKind::Medication, crate::seed::medication(pick)),
                _ => (RecordKind::Allergy, crate::seed::allergy(pick)),
            };
            let body = crate::seed::body(kind, content)?;
            let (state, ctx, user) = (
                self.state.clone(),
                self.provider(Purpose::Treatment),
                client.id,
            );
            writers.spawn(async move {
                state
                    .clinical()
                    .create_record(&ctx, organisation, user, body)
                    .await
                    .map(drop)
                    .map_err(|e| format!("writing a record: {e}"))
            });
        }
        while !writers.is_empty() {
            join_writer(&mut writers).await?;
        }
        Ok(Subject {
            user: client.id,
            subject: client.subject,
            records: n,
        })
    }

    /// The floor: every record of the subject read once through the clinical
    /// service by their provider, pages of [`MAX_PAGE`]. Returns how many.
    async fn read_every_record(&self, subject: &Subject) -> Result<usize, String> {
        let mut count = 0;
        for kind in [
            RecordKind::Condition,
            RecordKind::Medication,
            RecordKind::Allergy,
        ] {
            let mut page = PageRequest::first(MAX_PAGE);
            loop {
                let found = self
                    .state
                    .clinical()
                    .records(
                        &self.provider(Purpose::Treatment),
                        self.practice,
                        subject.user,
                        kind,
                        page,
                    )
                    .await
                    .map_err(|e| format!("reading records: {e}"))?;
                count += found.items.len();
                match found.next {
                    Some(next) => {
                        page = PageRequest {
                            after: Some(next),
                            limit: MAX_PAGE,
                        };
                    }
                    None => break,
                }
            }
        }
        Ok(count)
    }

    /// One fresh subject with `n` records: the floor, the export, the erasure.
    async fn measure_once(&mut self, plan: &Plan, n: u32, profile: bool) -> Result<Once, String> {
        let prepared = Instant::now();
        let subject = self.subject(n, plan.concurrency).await?;
        let prepare_seconds = prepared.elapsed().as_secs_f64();
        let rights = self.state.rights().clone();

        let started = Instant::now();
        let read = self.read_every_record(&subject).await?;
        let floor = started.elapsed();
        if read != n as usize {
            return Err(format!(
                "the floor read {read} records, not the {n} written"
            ));
        }

        let ctx = self.person(&subject);
        let started = Instant::now();
        let filed = rights
            .file(&ctx, filing(RequestKind::Access))
            .await
            .map_err(|e| format!("filing the access request: {e}"))?;
        let access = started.elapsed();
        let request = filed.request;
        let Some(RequestResult::Archive { sha256, bytes }) = request.result.clone() else {
            return Err(format!(
                "the access request is {} without an archive",
                request.status.as_str()
            ));
        };
        if !filed.created || request.status != RequestStatus::Completed {
            return Err("the access request was not completed at once".to_owned());
        }
        let download = rights
            .download(&ctx, request.id)
            .await
            .map_err(|e| format!("downloading the archive: {e}"))?;
        if download.sha256 != sha256
            || server::rights::sha256_hex(&download.bytes) != sha256
            || download.bytes.len() as u64 != bytes
        {
            return Err("the stored archive does not match its digest".to_owned());
        }

        let export_profile = if profile {
            Some(
                self.export_profile(&subject, &request, &download.bytes)
                    .await?,
            )
        } else {
            None
        };

        let started = Instant::now();
        let filed = rights
            .file(&ctx, filing(RequestKind::Erasure))
            .await
            .map_err(|e| format!("filing the erasure request: {e}"))?;
        let erasure_file = started.elapsed();
        if filed.request.status != RequestStatus::Verified {
            return Err(format!(
                "the erasure request is {}, not verified",
                filed.request.status.as_str()
            ));
        }
        let started = Instant::now();
        let done = rights
            .execute(&self.officer(), self.practice, filed.request.id)
            .await
            .map_err(|e| format!("carrying out the erasure: {e}"))?;
        let erasure_execute = started.elapsed();
        let Some(RequestResult::Erasure { outcomes }) = &done.result else {
            return Err("the erasure request has no outcomes".to_owned());
        };
        if done.status != RequestStatus::Completed || outcomes.len() < n as usize {
            return Err(format!(
                "the erasure is {} with {} outcomes for {n} records",
                done.status.as_str(),
                outcomes.len()
            ));
        }
        Ok(Once {
            timings: Timings {
                floor_ms: ms(floor),
                access_ms: ms(access),
                archive_bytes: bytes,
                erasure_file_ms: ms(erasure_file),
                erasure_execute_ms: ms(erasure_execute),
                erasure_outcomes: outcomes.len(),
                prepare_seconds,
            },
            export_profile,
        })
    }

    /// The contexts as the server composes them for the engine, in its order.
    fn contexts(&self) -> Vec<Arc<dyn PersonalData>> {
        let state = &self.state;
        vec![
            Arc::new(state.identity().personal_data()),
            Arc::new(clinical::ClinicalPersonalData::new(
                state.clinical().repository().clone(),
            )),
            Arc::new(consent::ConsentPersonalData::new(state.consent().clone())),
            state.billing_personal_data().clone(),
            state.audit_personal_data().clone(),
        ]
    }

    /// Each part of an export, timed alone on `subject` (still holding their
    /// data); last, `stored` (the request's archive as downloaded) sealed and
    /// stored again for the request, as the engine stores it.
    async fn export_profile(
        &self,
        subject: &Subject,
        request: &data_rights::RightsRequest,
        stored: &[u8],
    ) -> Result<Vec<Part>, String> {
        let ctx = self.person(subject);
        let mut parts = Vec::new();
        let mut holdings = Vec::new();
        for context in self.contexts() {
            let started = Instant::now();
            let records = context
                .export(&ctx, subject.subject)
                .await
                .map_err(|e| format!("{} export: {e}", context.context()))?;
            parts.push(Part::new(
                format!("{} export", context.context()),
                started.elapsed(),
                records.len(),
            ));
            holdings.push(data_rights::know::ContextHoldings {
                context: context.context(),
                map: context.describe(),
                records,
            });
        }
        let clinical = holdings
            .iter()
            .find(|h| h.context == "clinical")
            .map_or(0, |h| h.records.len());
        if clinical < subject.records as usize {
            return Err(format!(
                "clinical exported {clinical} records of the {} written",
                subject.records
            ));
        }
        let started = Instant::now();
        let files = data_rights::archive::export_parts(
            request,
            &holdings,
            self.state.rights().statements(),
            ctx.at(),
        )
        .map_err(|e| e.to_string())?;
        let size: usize = files.iter().map(|f| f.content.len()).sum();
        parts.push(Part::new("archive files (JSON)", started.elapsed(), size));
        let started = Instant::now();
        let packed = data_rights::ports::ArchivePacker::pack(&server::rights::ZipPacker, &files)
            .map_err(|e| e.to_string())?;
        parts.push(Part::new(
            "ZIP and SHA-256",
            started.elapsed(),
            packed.bytes.len(),
        ));
        // The same bytes as stored, so the request's digest still holds.
        let repository = store::SeaOrmRightsRepository::new(
            self.state.database().clone(),
            self.state.keyring().clone(),
        );
        let started = Instant::now();
        data_rights::ports::RightsRepository::put_archive(
            &repository,
            request.id,
            request.organisation,
            request.subject,
            stored,
        )
        .await
        .map_err(|e| format!("storing the archive: {e}"))?;
        parts.push(Part::new(
            "archive sealed and stored",
            started.elapsed(),
            stored.len(),
        ));
        Ok(parts)
    }

    /// A subject with `n` records erased context by context, in the engine's
    /// order, then their key destroyed; each step timed.
    async fn erase_profile(&mut self, plan: &Plan, n: u32) -> Result<Vec<Part>, String> {
        let subject = self.subject(n, plan.concurrency).await?;
        let ctx = self.officer();
        let contexts = self.contexts();
        let mut parts = Vec::new();
        for name in ["clinical", "consent", "billing", "identity", "audit"] {
            let Some(context) = contexts.iter().find(|c| c.context() == name) else {
                continue;
            };
            let started = Instant::now();
            let outcomes = context
                .erase(&ctx, subject.subject)
                .await
                .map_err(|e| format!("{name} erase: {e}"))?;
            parts.push(Part::new(
                format!("{name} erase"),
                started.elapsed(),
                outcomes.len(),
            ));
        }
        let started = Instant::now();
        let shredded = self
            .state
            .keyring()
            .shred_subject(self.practice, subject.subject)
            .await
            .map_err(|e| e.to_string())?;
        parts.push(Part::new(
            "data key destroyed",
            started.elapsed(),
            usize::try_from(shredded).unwrap_or(usize::MAX),
        ));
        Ok(parts)
    }

    /// Signs what the run appended to the audit log, counts what the database
    /// holds, and closes it.
    async fn close(self) -> Result<Built, String> {
        self.state
            .audit()
            .log()
            .checkpoint()
            .await
            .map_err(|e| format!("audit checkpoint: {e}"))?;
        let client_memberships = count(
            &self.state,
            "SELECT COUNT(*) AS n FROM memberships WHERE role = 'client'",
        )
        .await?;
        let clinical_records =
            count(&self.state, "SELECT COUNT(*) AS n FROM clinical_records").await?;
        self.state.database().clone().close().await;
        let file_bytes = std::fs::metadata(&self.db_path).map_or(0, |m| m.len());
        Ok(Built {
            clients: self.clients,
            practices: self.practices,
            reused: self.reused,
            fill_seconds: self.fill_seconds,
            client_memberships,
            clinical_records,
            file_bytes,
        })
    }
}

async fn count(state: &AppState, sql: &str) -> Result<u64, String> {
    #[derive(FromQueryResult)]
    struct Count {
        n: i64,
    }
    let conn = state.database().connection();
    let row = Count::find_by_statement(Statement::from_string(
        conn.get_database_backend(),
        sql.to_owned(),
    ))
    .one(conn)
    .await
    .map_err(|e| format!("counting: {e}"))?
    .ok_or("counting: no row")?;
    u64::try_from(row.n).map_err(|e| e.to_string())
}

async fn join_writer(writers: &mut JoinSet<Result<(), String>>) -> Result<(), String> {
    if let Some(done) = writers.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// A measured subject.
#[derive(Debug, Clone, Copy)]
struct Subject {
    user: UserId,
    subject: SubjectId,
    records: u32,
}

fn filing(kind: RequestKind) -> Filing {
    Filing {
        kind,
        regime: Regime::Gdpr,
        on_behalf_of: OnBehalfOf::Myself,
        detail: RequestDetail::None,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn member(
    user: UserId,
    roles: RoleSet,
    organisation: OrganisationId,
    purpose: Purpose,
) -> RequestContext {
    RequestContext::new(
        Actor::Member { user, roles },
        Some(organisation),
        purpose,
        RequestId::new(),
        ClientInfo::new(None, Some(USER_AGENT)),
        SystemClock.now(),
    )
}

fn anonymous() -> RequestContext {
    RequestContext::new(
        Actor::Anonymous,
        None,
        Purpose::Operations,
        RequestId::new(),
        ClientInfo::new(None, Some(USER_AGENT)),
        SystemClock.now(),
    )
}

/// Activates an account created for its owner with the token from its email.
async fn activate(state: &AppState, outbox: &OutboxNotifier, user: UserId) -> Result<(), String> {
    let token = outbox
        .latest_secret(user, "activate_account")
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no activation notice in the outbox")?;
    state
        .identity()
        .activate_account(&anonymous(), &token, Sensitive::new(PASSWORD.to_owned()))
        .await
        .map_err(|e| format!("activating an account: {e}"))
}

/// The bench's practice, made through the services: the owner's sign-up (in the
/// `eu` region) and email verification, and a privacy officer added by the owner
/// and activated. Returns the practice, its owner and its officer.
async fn bench_practice(
    state: &AppState,
    outbox: &OutboxNotifier,
    tag: &str,
) -> Result<(OrganisationId, UserId, UserId), String> {
    let (organisation, owner) = state
        .identity()
        .sign_up(
            &anonymous(),
            SignUp {
                name: "Rights Bench Owner".to_owned(),
                email: format!("rights-bench-owner-{tag}@example.com"),
                profession: "Physiotherapist".to_owned(),
                organisation_name: format!("Rights Bench Practice {tag}"),
                phone: "+15555550100".to_owned(),
                password: Sensitive::new(PASSWORD.to_owned()),
                region: "eu".to_owned(),
            },
        )
        .await
        .map_err(|e| format!("signing up: {e}"))?;
    let token = outbox
        .latest_secret(owner.id, "verify_email")
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no verification notice in the outbox")?;
    state
        .identity()
        .verify_email(&anonymous(), &token)
        .await
        .map_err(|e| format!("verifying the owner's email: {e}"))?;
    let enrolled = state
        .identity()
        .add_member(
            &member(
                owner.id,
                RoleSet::only(Role::OrgAdmin).with(Role::Provider),
                organisation.id,
                Purpose::Operations,
            ),
            organisation.id,
            NewPerson {
                name: "Rights Bench Officer".to_owned(),
                email: format!("rights-bench-officer-{tag}@example.com"),
                phone: None,
            },
            Role::PrivacyOfficer,
        )
        .await
        .map_err(|e| format!("adding the privacy officer: {e}"))?;
    let Enrolled::Created(officer) = enrolled else {
        return Err("the privacy officer's email was taken".to_owned());
    };
    activate(state, outbox, officer.id).await?;
    Ok((organisation.id, owner.id, officer.id))
}

// ------------------------------------------------------------------------ fill

/// The background population, in bulk SQL on `db` (one connection): practices
/// with their provider and organisation key, then clients in transactions of
/// [`FILL_BATCH`].
async fn fill(db: &Database, clients: u64, plan: &Plan) -> Result<(), String> {
    let conn = db.connection();
    let fail = |e: sea_orm::DbErr| format!("filling the database: {e}");
    // The fill is rebuilt from scratch if interrupted (the marker is written
    // last), so it need not be durable as it goes.
    for pragma in ["PRAGMA synchronous = OFF", "PRAGMA cache_size = -262144"] {
        conn.execute_unprepared(pragma).await.map_err(fail)?;
    }
    let practices = clients.div_ceil(CLIENTS_PER_PRACTICE);
    let now = Utc::now().timestamp();
    // Accounts spread over the three years before the run; practices before them.
    let span = 3 * 365 * 86_400;
    let base = now - span;
    let step = span as f64 / clients as f64;
    let started = Instant::now();

    let txn = conn.begin().await.map_err(fail)?;
    for sql in practice_sql(practices, base) {
        txn.execute_unprepared(&sql).await.map_err(fail)?;
    }
    txn.commit().await.map_err(fail)?;

    let mut lo = 0;
    while lo < clients {
        let hi = (lo + FILL_BATCH).min(clients);
        let txn = conn.begin().await.map_err(fail)?;
        for sql in client_sql(lo, hi, base, step) {
            txn.execute_unprepared(&sql).await.map_err(fail)?;
        }
        txn.commit().await.map_err(fail)?;
        lo = hi;
        if lo % 200_000 == 0 || lo == clients {
            plan.say(format!(
                "  {lo} of {clients} clients, {:.1} s",
                started.elapsed().as_secs_f64()
            ));
        }
    }
    conn.execute_unprepared("DROP TABLE bench_fill_practices")
        .await
        .map_err(fail)?;
    conn.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
        .await
        .map_err(fail)?;
    Ok(())
}

/// A timestamp as the adapters write one, `seconds` after the Unix epoch.
fn at_sql(seconds: &str) -> String {
    format!("strftime('%Y-%m-%dT%H:%M:%f+00:00', {seconds}, 'unixepoch')")
}

/// A PBKDF2 PHC string of the production iterations, with a random salt and hash.
const PHC_SQL: &str =
    "'$pbkdf2-sha256$i=600000$' || hex(randomblob(16)) || '$' || hex(randomblob(32))";

/// The practices: each with its organisation key and its provider (`org_admin`
/// and `provider`, with a data key), kept in `bench_fill_practices` for the
/// clients' batches.
fn practice_sql(practices: u64, base: i64) -> Vec<String> {
    let at = at_sql(&format!("{base} - 86400 + n"));
    vec![
        "CREATE TABLE bench_fill_practices (n INTEGER PRIMARY KEY, organisation BLOB NOT NULL, \
         organisation_key BLOB NOT NULL, provider BLOB NOT NULL, provider_subject BLOB NOT \
         NULL, provider_key BLOB NOT NULL, at TEXT NOT NULL)"
            .to_owned(),
        format!(
            "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < \
             {practices}) INSERT INTO bench_fill_practices SELECT n, randomblob(16), \
             randomblob(16), randomblob(16), randomblob(16), randomblob(16), {at} FROM seq"
        ),
        "INSERT INTO organisations (id, name, region, marketing_mode, require_mfa, created_at) \
         SELECT organisation, 'Background Physiotherapy ' || (n + 1), 'us', 'opt_in', 0, at \
         FROM bench_fill_practices"
            .to_owned(),
        "INSERT INTO crypto_keys (id, owner_kind, owner_id, organisation_id, version, \
         wrapped_by, material, created_at, destroyed_at) SELECT organisation_key, \
         'organisation', organisation, organisation, 1, randomblob(16), randomblob(61), at, \
         NULL FROM bench_fill_practices"
            .to_owned(),
        format!(
            "INSERT INTO users (id, subject_id, home_organisation_id, email_index, name_enc, \
             email_enc, phone_enc, profession, status, email_verified_at, created_at, \
             password_hash, failed_attempts, locked_until) SELECT provider, provider_subject, \
             organisation, randomblob(32), randomblob(55 + n % 6), randomblob(72 + n % 6), \
             randomblob(57), 'Physiotherapist', 'active', at, at, {PHC_SQL}, 0, NULL FROM \
             bench_fill_practices"
        ),
        "INSERT INTO memberships (user_id, organisation_id, role, created_at) SELECT provider, \
         organisation, role.name, at FROM bench_fill_practices, (SELECT 'org_admin' AS name \
         UNION ALL SELECT 'provider') AS role"
            .to_owned(),
        "INSERT INTO crypto_keys (id, owner_kind, owner_id, organisation_id, version, \
         wrapped_by, material, created_at, destroyed_at) SELECT provider_key, 'subject', \
         provider_subject, organisation, 1, organisation_key, randomblob(61), at, NULL FROM \
         bench_fill_practices"
            .to_owned(),
    ]
}

/// Background clients `lo..hi`: the rows identity and clinical keep for each.
fn client_sql(lo: u64, hi: u64, base: i64, step: f64) -> Vec<String> {
    let at = at_sql(&format!("{base} + seq.n * {step:.6}"));
    let mut sql = vec![
        "DROP TABLE IF EXISTS temp.bench_batch".to_owned(),
        format!(
            "CREATE TEMP TABLE bench_batch AS WITH RECURSIVE seq(n) AS (SELECT {lo} UNION ALL \
             SELECT n + 1 FROM seq WHERE n + 1 < {hi}) SELECT seq.n AS n, randomblob(16) AS \
             user_id, randomblob(16) AS subject_id, randomblob(16) AS key_id, randomblob(16) AS \
             care_id, randomblob(16) AS condition_id, randomblob(16) AS medication_id, \
             randomblob(16) AS created_id, randomblob(16) AS activated_id, p.organisation AS \
             organisation, p.organisation_key AS organisation_key, p.provider AS provider, {at} \
             AS at FROM seq JOIN bench_fill_practices AS p ON p.n = seq.n / \
             {CLIENTS_PER_PRACTICE}"
        ),
        format!(
            "INSERT INTO users (id, subject_id, home_organisation_id, email_index, name_enc, \
             email_enc, phone_enc, profession, status, email_verified_at, created_at, \
             password_hash, failed_attempts, locked_until) SELECT user_id, subject_id, \
             organisation, randomblob(32), randomblob(55 + n % 6), randomblob(72 + n % 6), \
             randomblob(57), NULL, 'active', at, at, {PHC_SQL}, 0, NULL FROM temp.bench_batch"
        ),
        "INSERT INTO memberships (user_id, organisation_id, role, created_at) SELECT user_id, \
         organisation, 'client', at FROM temp.bench_batch"
            .to_owned(),
        "INSERT INTO birth_dates (user_id, date_of_birth_enc, recorded_at) SELECT user_id, \
         randomblob(55), at FROM temp.bench_batch"
            .to_owned(),
        "INSERT INTO crypto_keys (id, owner_kind, owner_id, organisation_id, version, \
         wrapped_by, material, created_at, destroyed_at) SELECT key_id, 'subject', subject_id, \
         organisation, 1, organisation_key, randomblob(61), at, NULL FROM temp.bench_batch"
            .to_owned(),
        "INSERT INTO clinical_care_team (id, organisation_id, client_id, provider_id, starts_on, \
         ends_on, added_by, added_at) SELECT care_id, organisation, user_id, provider, \
         substr(at, 1, 10), NULL, provider, at FROM temp.bench_batch"
            .to_owned(),
    ];
    for (id, kind) in [
        ("created_id", "account_created"),
        ("activated_id", "account_activated"),
    ] {
        sql.push(format!(
            "INSERT INTO security_events (id, user_id, kind, at, client_address, user_agent, \
             country) SELECT {id}, user_id, '{kind}', at, NULL, 'Mozilla/5.0', NULL FROM \
             temp.bench_batch"
        ));
    }
    // The sealed body's length varies by record as real envelopes do; the
    // version row holds the same length.
    for (id, kind, length) in [
        ("condition_id", "condition", "170 + n % 60"),
        ("medication_id", "medication", "130 + n % 30"),
    ] {
        sql.push(format!(
            "INSERT INTO clinical_records (id, organisation_id, client_id, subject_id, kind, \
             version, body_enc, created_at, created_by, updated_at, updated_by) SELECT {id}, \
             organisation, user_id, subject_id, '{kind}', 1, randomblob({length}), at, provider, \
             at, provider FROM temp.bench_batch"
        ));
        sql.push(format!(
            "INSERT INTO clinical_record_versions (record_id, version, subject_id, body_enc, \
             written_at, written_by) SELECT {id}, 1, subject_id, randomblob({length}), at, \
             provider FROM temp.bench_batch"
        ));
    }
    sql.push("DROP TABLE temp.bench_batch".to_owned());
    sql
}

// ---------------------------------------------------------------------- report

/// The timed figures of one subject.
#[derive(Debug, Clone, Copy)]
struct Timings {
    floor_ms: f64,
    access_ms: f64,
    archive_bytes: u64,
    erasure_file_ms: f64,
    erasure_execute_ms: f64,
    erasure_outcomes: usize,
    prepare_seconds: f64,
}

impl Timings {
    fn erasure_ms(&self) -> f64 {
        self.erasure_file_ms + self.erasure_execute_ms
    }

    fn to_json(self) -> Value {
        json!({
            "floor_ms": self.floor_ms,
            "export_ms": self.access_ms,
            "archive_bytes": self.archive_bytes,
            "erasure_file_ms": self.erasure_file_ms,
            "erasure_execute_ms": self.erasure_execute_ms,
            "erasure_ms": self.erasure_ms(),
            "erasure_outcomes": self.erasure_outcomes,
            "subject_prepared_in_seconds": self.prepare_seconds,
        })
    }
}

/// What one measurement returns.
#[derive(Debug)]
struct Once {
    timings: Timings,
    export_profile: Option<Vec<Part>>,
}

/// One step of a profile: its time and how much it handled (records, outcomes
/// or bytes).
#[derive(Debug, Clone)]
struct Part {
    name: String,
    ms: f64,
    size: usize,
}

impl Part {
    fn new(name: impl Into<String>, took: Duration, size: usize) -> Self {
        Self {
            name: name.into(),
            ms: ms(took),
            size,
        }
    }

    fn to_json(&self) -> Value {
        json!({ "step": self.name, "ms": self.ms, "handled": self.size })
    }
}

/// The median and minimum of some figures.
#[derive(Debug, Clone, Copy)]
struct Stat {
    median: f64,
    min: f64,
}

impl Stat {
    fn of(values: impl Iterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.collect();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return Self {
                median: f64::NAN,
                min: f64::NAN,
            };
        }
        let mid = v.len() / 2;
        let median = if v.len().is_multiple_of(2) {
            f64::midpoint(v[mid - 1], v[mid])
        } else {
            v[mid]
        };
        Self { median, min: v[0] }
    }

    fn to_json(self) -> Value {
        json!({ "median_ms": self.median, "min_ms": self.min })
    }
}

/// Every subject measured for one (clients, N).
#[derive(Debug)]
struct Cell {
    clients: u64,
    records: u32,
    samples: Vec<Timings>,
    export_profile: Option<Vec<Part>>,
}

impl Cell {
    const fn new(clients: u64, records: u32) -> Self {
        Self {
            clients,
            records,
            samples: Vec::new(),
            export_profile: None,
        }
    }

    fn floor(&self) -> Stat {
        Stat::of(self.samples.iter().map(|s| s.floor_ms))
    }

    fn export(&self) -> Stat {
        Stat::of(self.samples.iter().map(|s| s.access_ms))
    }

    fn erasure(&self) -> Stat {
        Stat::of(self.samples.iter().map(Timings::erasure_ms))
    }

    fn export_goal(&self) -> f64 {
        EXPORT_BASE_MS + EXPORT_PER_RECORD_US * f64::from(self.records) / 1000.0
    }

    fn erasure_goal(&self) -> f64 {
        ERASURE_BASE_MS + ERASURE_PER_RECORD_US * f64::from(self.records) / 1000.0
    }

    fn to_json(&self) -> Value {
        let (export, erasure, floor) = (self.export(), self.erasure(), self.floor());
        json!({
            "clients": self.clients,
            "records": self.records,
            "subjects": self.samples.iter().map(|s| s.to_json()).collect::<Vec<_>>(),
            "floor": floor.to_json(),
            "export": export.to_json(),
            "erasure": erasure.to_json(),
            "erasure_file": Stat::of(self.samples.iter().map(|s| s.erasure_file_ms)).to_json(),
            "erasure_execute": Stat::of(self.samples.iter().map(|s| s.erasure_execute_ms)).to_json(),
            "export_over_floor_median": export.median / floor.median,
            "goal_export_ms": self.export_goal(),
            "goal_export_met": export.median <= self.export_goal(),
            "goal_erasure_ms": self.erasure_goal(),
            "goal_erasure_met": erasure.median <= self.erasure_goal(),
            "export_profile": self.export_profile.as_ref().map(|p| p.iter().map(Part::to_json).collect::<Vec<_>>()),
        })
    }
}

/// The largest database's median over the smallest's, for one N.
#[derive(Debug, Clone, Copy)]
struct Scaling {
    records: u32,
    small: u64,
    large: u64,
    export: f64,
    erasure: f64,
    floor: f64,
}

/// Every figure of the run.
#[derive(Debug)]
struct Report {
    rounds: u32,
    populations: Vec<Built>,
    cells: Vec<Cell>,
    erase_profiles: Vec<(u64, u32, Vec<Part>)>,
}

impl Report {
    fn scaling(&self) -> Vec<Scaling> {
        let small = self.populations.iter().map(|p| p.clients).min();
        let large = self.populations.iter().map(|p| p.clients).max();
        let (Some(small), Some(large)) = (small, large) else {
            return Vec::new();
        };
        if small == large {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut records: Vec<u32> = self.cells.iter().map(|c| c.records).collect();
        records.dedup();
        for n in records {
            let cell = |clients| {
                self.cells
                    .iter()
                    .find(|c| c.clients == clients && c.records == n)
            };
            if let (Some(s), Some(l)) = (cell(small), cell(large)) {
                out.push(Scaling {
                    records: n,
                    small,
                    large,
                    export: l.export().median / s.export().median,
                    erasure: l.erasure().median / s.erasure().median,
                    floor: l.floor().median / s.floor().median,
                });
            }
        }
        out
    }

    fn goals_met(&self) -> bool {
        self.cells
            .iter()
            .all(|c| c.export().median <= c.export_goal() && c.erasure().median <= c.erasure_goal())
            && self
                .scaling()
                .iter()
                .all(|s| s.export <= GOAL_SCALING && s.erasure <= GOAL_SCALING)
    }

    fn to_json(&self) -> Value {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        json!({
            "release_build": !cfg!(debug_assertions),
            "cores": cores,
            "database": "SQLite (WAL, synchronous=FULL), one file per size",
            "measured": "data_rights::service::RightsService as server::state::AppState::rights() composes it, in-process (no HTTP)",
            "regime": "gdpr",
            "rounds": self.rounds,
            "populations": self.populations.iter().map(Built::to_json).collect::<Vec<_>>(),
            "cells": self.cells.iter().map(Cell::to_json).collect::<Vec<_>>(),
            "scaling": self.scaling().iter().map(|s| json!({
                "records": s.records,
                "smaller_clients": s.small,
                "larger_clients": s.large,
                "export_median_ratio": s.export,
                "erasure_median_ratio": s.erasure,
                "floor_median_ratio": s.floor,
                "goal_ratio": GOAL_SCALING,
                "goal_met": s.export <= GOAL_SCALING && s.erasure <= GOAL_SCALING,
            })).collect::<Vec<_>>(),
            "erase_profiles": self.erase_profiles.iter().map(|(clients, n, parts)| json!({
                "clients": clients,
                "records": n,
                "steps": parts.iter().map(Part::to_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "goals": {
                "export_ms": format!("{EXPORT_BASE_MS} + {EXPORT_PER_RECORD_US} µs × N"),
                "erasure_ms": format!("{ERASURE_BASE_MS} + {ERASURE_PER_RECORD_US} µs × N"),
                "scaling": GOAL_SCALING,
                "all_met": self.goals_met(),
            },
        })
    }

    fn print(&self) {
        for p in &self.populations {
            println!(
                "{} background clients in {} practices ({}); at the end {} client \
                 memberships, {} clinical records, {:.0} MB",
                p.clients,
                p.practices,
                if p.reused {
                    "reused".to_owned()
                } else {
                    format!("filled in {:.1} s", p.fill_seconds)
                },
                p.client_memberships,
                p.clinical_records,
                p.file_bytes as f64 / 1e6
            );
        }
        println!();
        println!(
            "{:>9} {:>6} | {:>17} | {:>17} {:>8} {:>6} {:>7} | {:>17} {:>8} {:>6}",
            "clients",
            "N",
            "floor ms med/min",
            "export ms med/min",
            "goal",
            "met",
            "×floor",
            "erasure ms med/min",
            "goal",
            "met"
        );
        for c in &self.cells {
            let (floor, export, erasure) = (c.floor(), c.export(), c.erasure());
            println!(
                "{:>9} {:>6} | {:>8.1}/{:<8.1} | {:>8.1}/{:<8.1} {:>8.1} {:>6} {:>7.2} | {:>8.1}/{:<8.1} {:>8.1} {:>6}",
                c.clients,
                c.records,
                floor.median,
                floor.min,
                export.median,
                export.min,
                c.export_goal(),
                met(export.median <= c.export_goal()),
                export.median / floor.median,
                erasure.median,
                erasure.min,
                c.erasure_goal(),
                met(erasure.median <= c.erasure_goal()),
            );
        }
        println!();
        for s in self.scaling() {
            println!(
                "N = {}: median at {} / at {} clients: export {:.2}, erasure {:.2} (goal ≤ \
                 {GOAL_SCALING}: {}); the floor's {:.2}",
                s.records,
                s.large,
                s.small,
                s.export,
                s.erasure,
                met(s.export <= GOAL_SCALING && s.erasure <= GOAL_SCALING),
                s.floor
            );
        }
        for c in &self.cells {
            if let Some(parts) = &c.export_profile {
                let steps: Vec<String> = parts
                    .iter()
                    .map(|p| format!("{} {:.1}", p.name, p.ms))
                    .collect();
                let parts_ms: f64 = parts.iter().map(|p| p.ms).sum();
                let timed = c.samples.first().map_or(f64::NAN, |s| s.access_ms);
                println!(
                    "export profile, {} clients, N = {} (ms): {}; sum {parts_ms:.1} of this \
                     subject's timed export {timed:.1}",
                    c.clients,
                    c.records,
                    steps.join(", ")
                );
            }
        }
        for (clients, n, parts) in &self.erase_profiles {
            let steps: Vec<String> = parts
                .iter()
                .map(|p| format!("{} {:.1}", p.name, p.ms))
                .collect();
            println!(
                "erasure profile, {clients} clients, N = {n} (ms): {}",
                steps.join(", ")
            );
        }
        println!(
            "({} fresh subjects per cell; erasure = filing + the officer's execute; the \
             floor reads every record once through ClinicalService; all goals: {})",
            self.rounds,
            met(self.goals_met())
        );
    }
}

const fn met(yes: bool) -> &'static str {
    if yes { "met" } else { "missed" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tiny_run_measures_every_cell_and_reuses_a_matching_database() {
        let out =
            std::env::temp_dir().join(format!("custodia-bench-rights-{}", uuid::Uuid::now_v7()));
        let plan = Plan {
            out: out.clone(),
            clients: vec![30, 450],
            records: vec![1, 7],
            rounds: 2,
            reuse: false,
            concurrency: 4,
            profile: true,
            progress: false,
            fast_hashing: true,
        };
        let report = measure(&plan).await.expect("the bench runs");
        assert_eq!(report.cells.len(), 4);
        for c in &report.cells {
            assert_eq!(c.samples.len(), 2, "one subject per round");
            for s in &c.samples {
                assert!(s.floor_ms > 0.0 && s.access_ms > 0.0 && s.erasure_ms() > 0.0);
                assert!(s.archive_bytes > 0);
                assert!(s.erasure_outcomes >= c.records as usize);
            }
            let profile = c.export_profile.as_ref().expect("profiled in round 1");
            let clinical = profile
                .iter()
                .find(|p| p.name == "clinical export")
                .expect("clinical exported");
            assert!(clinical.size >= c.records as usize, "{profile:?}");
            let stored = profile.last().expect("steps");
            assert_eq!(stored.name, "archive sealed and stored");
            assert_eq!(stored.size as u64, c.samples[0].archive_bytes);
        }
        // Background clients, the bench's subjects (2 rounds × 2 N, and one
        // profiled); erased subjects lose their membership.
        let (small, large) = (&report.populations[0], &report.populations[1]);
        assert_eq!((small.clients, large.clients), (30, 450));
        assert_eq!((small.practices, large.practices), (1, 3));
        assert!(!small.reused && !large.reused);
        assert_eq!(
            large.client_memberships, 450,
            "every measured subject was erased"
        );
        assert!(large.clinical_records >= 900, "{large:?}");
        assert_eq!(report.erase_profiles.len(), 2);
        assert_eq!(report.scaling().len(), 2);
        let json = report.to_json();
        assert_eq!(json["cells"].as_array().map(Vec::len), Some(4));
        assert_eq!(
            json["cells"][3]["subjects"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(json["scaling"][1]["larger_clients"], 450);

        let again = Plan {
            reuse: true,
            rounds: 1,
            records: vec![2],
            profile: false,
            ..plan
        };
        let report = measure(&again)
            .await
            .expect("the bench runs on reused databases");
        assert!(report.populations.iter().all(|p| p.reused));
        assert_eq!(report.cells.len(), 2);
        let _ = std::fs::remove_dir_all(&out);
    }
}
