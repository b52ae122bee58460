//! `cargo xtask bench read`: what does a read of clinical records cost, against
//! the cheapest answer the same server gives?
//!
//! Unless `--in-process` is given it re-runs itself built in release mode, so the
//! load generator is optimised too. It builds the server's release binary and,
//! on a temporary SQLite file and then on a fresh PostgreSQL database created on
//! `--postgres-url` (skipped, with a message, when unreachable or with
//! `--no-postgres`), starts it as its own process with production settings: a
//! master key and an audit signing key of its own, the production 600,000
//! password iterations (only sign-up and sign-in hash, twice in all; reads never
//! do), every other setting at its default, logs at `warn` (so no access log).
//!
//! It seeds through the HTTP API, as an integrator would: one practice and its
//! provider (sign-up, email verification with the token read from the outbox,
//! sign-in), [`CLIENTS`] clients created by that provider (each with the S6
//! service attestation, so the consent gate allows treatment, and the provider on
//! their care team), and `--records` conditions per client. It checks once that
//! `GET .../records/condition?limit=20` answers with the seeded conditions,
//! decrypted, so the bench cannot be measuring an error path.
//!
//! Then, `--rounds` times, alternating so drift in the machine's load falls on
//! both, each for `--seconds` with `--concurrency` closed-loop workers (each its
//! own keep-alive client, sending its next request when the last is answered):
//!
//! (a) `GET /healthz`: the bare poem-openapi JSON operation (no authentication,
//!     no I/O: it answers the version from memory), the floor of the server's
//!     HTTP path;
//! (b) `GET /v1/organisations/{org}/clients/{client}/records/condition?limit=20`
//!     for a random client, with the provider's bearer session: authentication,
//!     the care-team check, the consent gate, fetching and decrypting with the
//!     client's key, and the audit event made durable before the answer.
//!
//! Every answer other than 200 is an error (goal: none). For each target it
//! reports requests/s, p50 and p99 latency and errors, and the ratio of (b)'s
//! requests/s to (a)'s per round and pooled over the rounds (goal ≥ 0.5). It
//! counts the rows of `audit_events` through the database before and after each
//! (b) phase and reports whether the log grew by exactly one event per (b)
//! request. The load generator shares the machine with the server, so absolute
//! figures depend on the cores; the ratio is the figure to compare.
//!
//! Prints a table and writes every figure to `target/bench/read.json`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use crypto::{Keyring, MasterKey};
use kernel::{Clock, SystemClock, UserId};
use sea_orm::{FromQueryResult, Statement};
use serde_json::{Value, json};
use store::{Database, DatabaseOptions, OutboxNotifier, SeaOrmKeyStore};

use crate::bench::{Server, build_server, wait_until_healthy};
use crate::bench_audit::{FreshPostgres, Phase, met, ms};

/// Options of `bench read`.
#[derive(Debug, Parser)]
pub struct ReadArgs {
    /// Length of each measured phase, in seconds.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Closed-loop workers in each phase.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How many times to alternate the bare phase and the records phase.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Conditions seeded per client.
    #[arg(long, default_value_t = 20)]
    records: u32,
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

/// Clients seeded in the practice; the reads pick among them at random.
const CLIENTS: usize = 24;
/// The page size of the measured read.
const PAGE: u32 = 20;
/// The goal: record reads per second at least this fraction of bare requests.
const GOAL_RATIO: f64 = 0.5;
const PASSWORD: &str = "bench read horse battery staple";
const PROVIDER_EMAIL: &str = "bench-provider@example.com";
/// ICD-10 codes the seeded conditions cycle through, with their words.
const CONDITIONS: [(&str, &str); 5] = [
    ("M54.5", "Low back pain"),
    ("M75.1", "Rotator cuff syndrome"),
    ("M17.1", "Primary osteoarthritis of the knee"),
    ("S93.4", "Sprain of the ankle"),
    ("M79.1", "Myalgia"),
];

/// Runs the bench: in release mode in a child process unless `--in-process`.
pub async fn run(args: ReadArgs, root: &Path) -> Result<(), String> {
    if args.in_process {
        return measure(args, root).await;
    }
    crate::bench::rerun_in_release("read", root)
}

async fn measure(args: ReadArgs, root: &Path) -> Result<(), String> {
    if cfg!(debug_assertions) {
        println!("bench: WARNING: measuring a debug build; figures are not representative");
    }
    let binary = build_server(root)?;
    let mut results = Vec::new();

    let dir = std::env::temp_dir().join(format!("custodia-bench-read-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    println!("bench: SQLite ({})", dir.display());
    results.push(backend("sqlite", &binary, dir, &url, &args).await?);

    if args.no_postgres {
        println!("bench: PostgreSQL skipped (--no-postgres)");
    } else {
        match FreshPostgres::create(&args.postgres_url).await {
            Ok(pg) => {
                println!("bench: PostgreSQL (database {})", pg.name);
                let dir = std::env::temp_dir()
                    .join(format!("custodia-bench-read-{}", uuid::Uuid::now_v7()));
                let result = match std::fs::create_dir_all(&dir) {
                    Ok(()) => backend("postgres", &binary, dir, &pg.url(), &args).await,
                    Err(e) => Err(e.to_string()),
                };
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
        "seconds_per_phase": args.seconds.max(1),
        "concurrency": args.concurrency.max(1),
        "rounds": args.rounds.max(1),
        "clients": CLIENTS,
        "conditions_per_client": args.records,
        "page_size": PAGE,
        "bare_endpoint": "GET /healthz",
        "read_endpoint": "GET /v1/organisations/{org}/clients/{client}/records/condition?limit=20",
        "password_iterations": 600_000,
        "goal_ratio": GOAL_RATIO,
        "backends": results.iter().map(Backend::to_json).collect::<Vec<_>>(),
    });
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let file = out.join("read.json");
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&file, text + "\n").map_err(|e| e.to_string())?;

    println!();
    for r in &results {
        r.print(&args);
        println!();
    }
    println!("wrote {}", file.display());
    Ok(())
}

/// One round: the bare phase, the records phase, and how much the audit log grew
/// during the records phase.
#[derive(Debug)]
struct Round {
    bare: Phase,
    read: Phase,
    audit_growth: u64,
}

impl Round {
    fn ratio(&self) -> f64 {
        self.read.per_second() / self.bare.per_second()
    }

    /// Requests the records phase sent that were answered or failed.
    fn reads(&self) -> u64 {
        self.read.ms.len() as u64 + self.read.failed
    }
}

/// Every figure of one database.
#[derive(Debug)]
struct Backend {
    name: &'static str,
    rounds: Vec<Round>,
    bare: Phase,
    read: Phase,
}

impl Backend {
    fn new(name: &'static str, rounds: Vec<Round>) -> Self {
        let pool = |pick: fn(&Round) -> &Phase| {
            let mut all = Phase::default();
            for r in &rounds {
                let p = pick(r);
                all.ms.extend_from_slice(&p.ms);
                all.failed += p.failed;
                all.seconds += p.seconds;
            }
            all.sort()
        };
        let bare = pool(|r| &r.bare);
        let read = pool(|r| &r.read);
        Self {
            name,
            rounds,
            bare,
            read,
        }
    }

    fn ratio(&self) -> f64 {
        self.read.per_second() / self.bare.per_second()
    }

    fn audit_growth(&self) -> u64 {
        self.rounds.iter().map(|r| r.audit_growth).sum()
    }

    fn reads(&self) -> u64 {
        self.rounds.iter().map(Round::reads).sum()
    }

    fn one_event_per_read(&self) -> bool {
        self.rounds.iter().all(|r| r.audit_growth == r.reads())
    }

    fn errors(&self) -> u64 {
        self.bare.failed + self.read.failed
    }

    fn to_json(&self) -> Value {
        json!({
            "database": self.name,
            "rounds": self.rounds.iter().map(|r| json!({
                "bare": r.bare.to_json(),
                "read": r.read.to_json(),
                "ratio_read_to_bare": r.ratio(),
                "audit_events_added": r.audit_growth,
                "read_requests": r.reads(),
            })).collect::<Vec<_>>(),
            "bare_pooled": self.bare.to_json(),
            "read_pooled": self.read.to_json(),
            "ratio_read_to_bare_pooled": self.ratio(),
            "goal_ratio_met": self.ratio() >= GOAL_RATIO,
            "errors": self.errors(),
            "audit_events_added": self.audit_growth(),
            "read_requests": self.reads(),
            "one_audit_event_per_read": self.one_event_per_read(),
        })
    }

    fn print(&self, args: &ReadArgs) {
        println!(
            "== {} == ({CLIENTS} clients × {} conditions; {} closed-loop workers, {} s phases)",
            self.name,
            args.records,
            args.concurrency.max(1),
            args.seconds.max(1)
        );
        println!(
            "{:<8} {:<28} {:>10} {:>9} {:>9} {:>8} {:>7}",
            "round", "target", "req/s", "p50 ms", "p99 ms", "errors", "(b)/(a)"
        );
        let line = |round: &str, target: &str, p: &Phase, ratio: Option<f64>| {
            println!(
                "{round:<8} {target:<28} {:>10.0} {:>9.3} {:>9.3} {:>8} {:>7}",
                p.per_second(),
                p.p50_ms(),
                p.p99_ms(),
                p.failed,
                ratio.map_or_else(String::new, |r| format!("{r:.3}"))
            );
        };
        for (n, r) in self.rounds.iter().enumerate() {
            let n = (n + 1).to_string();
            line(&n, "(a) GET /healthz", &r.bare, None);
            line(&n, "(b) GET records?limit=20", &r.read, Some(r.ratio()));
        }
        line("pooled", "(a) GET /healthz", &self.bare, None);
        line(
            "pooled",
            "(b) GET records?limit=20",
            &self.read,
            Some(self.ratio()),
        );
        println!(
            "audit_events: +{} for {} record reads ({})",
            self.audit_growth(),
            self.reads(),
            if self.one_event_per_read() {
                "one per read in every round"
            } else {
                "NOT one per read"
            }
        );
        println!(
            "errors: {} (goal 0: {}); (b)/(a) pooled {:.3} (goal ≥ {GOAL_RATIO}: {})",
            self.errors(),
            met(self.errors() == 0),
            self.ratio(),
            met(self.ratio() >= GOAL_RATIO)
        );
    }
}

/// Starts the release server on `database_url` with `dir` as its data folder,
/// and waits until it is ready. The server is killed and `dir` removed when the
/// returned [`Server`] is dropped.
async fn start_server(
    binary: &Path,
    dir: PathBuf,
    database_url: &str,
    master: &MasterKey,
) -> Result<(Server, String), String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    // The audit signing key is any 32 random bytes in base64: a fresh master key
    // is exactly that, and keeps the server from writing a development key.
    let signing = MasterKey::generate().map_err(|e| e.to_string())?;
    let child = Command::new(binary)
        .args(["--listen", &addr.to_string()])
        .args(["--database-url", database_url])
        .args(["--migrate", "always"])
        .args(["--data-dir", &dir.display().to_string()])
        .args(["--password-iterations", "600000"])
        .args(["--log", "warn"])
        .env("CUSTODIA_MASTER_KEY", master.to_base64().expose())
        .env("CUSTODIA_AUDIT_SIGNING_KEY", signing.to_base64().expose())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let server = Server { child, dir };
    let base = format!("http://{addr}");
    wait_until_healthy(&base).await?;
    Ok((server, base))
}

async fn backend(
    name: &'static str,
    binary: &Path,
    dir: PathBuf,
    database_url: &str,
    args: &ReadArgs,
) -> Result<Backend, String> {
    let master = MasterKey::generate().map_err(|e| e.to_string())?;
    let (server, base) = start_server(binary, dir, database_url, &master).await?;
    // The bench's own connection: the outbox (the verification email's token)
    // and the audit log's row count.
    let db = Database::connect(
        database_url,
        &DatabaseOptions {
            max_connections: 2,
            ..DatabaseOptions::default()
        },
    )
    .await
    .map_err(|e| format!("{name}: {e}"))?;
    let result = measure_backend(name, &base, &db, master, args).await;
    drop(server);
    db.close().await;
    result
}

async fn measure_backend(
    name: &'static str,
    base: &str,
    db: &Database,
    master: MasterKey,
    args: &ReadArgs,
) -> Result<Backend, String> {
    println!(
        "bench: {name}: seeding one practice, {CLIENTS} clients, {} conditions each…",
        args.records
    );
    let seeded = seed(base, db, master, args.records).await?;
    check_read(base, &seeded).await?;

    let period = Duration::from_secs(args.seconds.max(1));
    let concurrency = args.concurrency.max(1);
    let bare = Arc::new(vec![format!("{base}/healthz")]);
    let reads = Arc::new(
        seeded
            .clients
            .iter()
            .map(|c| read_url(base, &seeded.organisation, c))
            .collect::<Vec<_>>(),
    );
    let token = Arc::new(seeded.token);
    let mut rounds = Vec::new();
    for round in 1..=args.rounds.max(1) {
        println!(
            "bench: {name}: round {round}/{}: (a) GET /healthz, then (b) GET records, \
             {concurrency} workers for {period:?} each…",
            args.rounds.max(1)
        );
        let bare = closed_loop(&bare, None, concurrency, period).await?;
        let before = audit_events(db).await?;
        let read = closed_loop(&reads, Some(&token), concurrency, period).await?;
        let after = audit_events(db).await?;
        rounds.push(Round {
            bare,
            read,
            audit_growth: after.saturating_sub(before),
        });
    }
    Ok(Backend::new(name, rounds))
}

fn read_url(base: &str, organisation: &str, client: &str) -> String {
    format!(
        "{base}/v1/organisations/{organisation}/clients/{client}/records/condition?limit={PAGE}"
    )
}

/// The number of rows of `audit_events`.
async fn audit_events(db: &Database) -> Result<u64, String> {
    #[derive(FromQueryResult)]
    struct Count {
        n: i64,
    }
    let backend = db.connection().get_database_backend();
    let row = Count::find_by_statement(Statement::from_string(
        backend,
        "SELECT COUNT(*) AS n FROM audit_events".to_owned(),
    ))
    .one(db.connection())
    .await
    .map_err(|e| format!("counting audit events: {e}"))?
    .ok_or("counting audit events: no row")?;
    u64::try_from(row.n).map_err(|e| e.to_string())
}

/// What the seeding made.
#[derive(Debug)]
struct Seeded {
    /// The provider's bearer session.
    token: String,
    organisation: String,
    /// The clients' account ids.
    clients: Vec<String>,
    /// The conditions' texts per client, in the order written.
    texts: HashMap<String, Vec<String>>,
}

/// Sends `req` and returns the JSON answer if the status is `expected`.
async fn expect(req: reqwest::RequestBuilder, expected: u16, what: &str) -> Result<Value, String> {
    let resp = req.send().await.map_err(|e| format!("{what}: {e}"))?;
    let status = resp.status().as_u16();
    if status != expected {
        let body = resp.text().await.unwrap_or_default();
        return Err(format!(
            "{what} answered {status} (expected {expected}): {body}"
        ));
    }
    if status == 204 {
        return Ok(Value::Null);
    }
    resp.json().await.map_err(|e| format!("{what}: {e}"))
}

async fn seed(
    base: &str,
    db: &Database,
    master: MasterKey,
    records: u32,
) -> Result<Seeded, String> {
    let client = reqwest::Client::new();
    let created = expect(
        client.post(format!("{base}/v1/practices")).json(&json!({
            "name": "Bench Provider",
            "email": PROVIDER_EMAIL,
            "profession": "Physiotherapist",
            "organisation_name": "Bench Read Practice",
            "phone": "+15555550100",
            "password": PASSWORD,
            "region": "us",
        })),
        201,
        "sign-up",
    )
    .await?;
    let organisation = created["organisation"]["id"]
        .as_str()
        .ok_or("sign-up returned no organisation id")?
        .to_owned();
    let user = created["user"]["id"]
        .as_str()
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .ok_or("sign-up returned no user id")?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let keyring = Keyring::new(master, Arc::new(SeaOrmKeyStore::new(db.clone())), clock);
    let verification = OutboxNotifier::new(db.clone(), keyring)
        .latest_secret(UserId::from_uuid(user), "verify_email")
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no verification notice in the outbox")?;
    expect(
        client
            .post(format!("{base}/v1/email-verifications"))
            .json(&json!({ "token": verification.expose() })),
        204,
        "email verification",
    )
    .await?;
    let session = expect(
        client
            .post(format!("{base}/v1/sessions"))
            .json(&json!({ "email": PROVIDER_EMAIL, "password": PASSWORD })),
        201,
        "sign-in",
    )
    .await?;
    let token = session["token"]
        .as_str()
        .ok_or("sign-in returned no token")?
        .to_owned();

    let yesterday = (SystemClock.now() - chrono::Duration::days(1)).to_rfc3339();
    for n in 0..CLIENTS {
        expect(
            client
                .post(format!("{base}/v1/organisations/{organisation}/clients"))
                .bearer_auth(&token)
                .json(&json!({
                    "name": format!("Bench Client {n}"),
                    "email": client_email(n),
                    "date_of_birth": "1980-05-17",
                    "service_authorisation": { "obtained_at": yesterday, "channel": "paper" },
                })),
            202,
            "createClient",
        )
        .await?;
    }
    let clients = client_ids(&client, base, &organisation, &token).await?;

    let mut writers = Vec::new();
    for id in &clients {
        let (client, token) = (client.clone(), token.clone());
        let url = format!("{base}/v1/organisations/{organisation}/clients/{id}/records");
        writers.push(tokio::spawn(async move {
            let mut texts = Vec::new();
            for n in 0..records {
                let (code, words) = CONDITIONS[n as usize % CONDITIONS.len()];
                let text = format!("{words} (bench condition {n})");
                let written = expect(
                    client.post(&url).bearer_auth(&token).json(&json!({
                        "kind": "condition",
                        "text": text,
                        "code": { "system": "icd-10", "code": code },
                        "status": "active",
                    })),
                    201,
                    "createRecord",
                )
                .await?;
                if written["content"]["text"] != text.as_str() {
                    return Err("createRecord answered another text".to_owned());
                }
                texts.push(text);
            }
            Ok::<_, String>(texts)
        }));
    }
    let mut texts = HashMap::new();
    for (id, writer) in clients.iter().zip(writers) {
        texts.insert(id.clone(), writer.await.map_err(|e| e.to_string())??);
    }
    Ok(Seeded {
        token,
        organisation,
        clients,
        texts,
    })
}

fn client_email(n: usize) -> String {
    format!("bench-client-{n}@example.com")
}

/// The account ids of the seeded clients, read from `listMembers` as a practice
/// learns them.
async fn client_ids(
    client: &reqwest::Client,
    base: &str,
    organisation: &str,
    token: &str,
) -> Result<Vec<String>, String> {
    let mut by_email = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        // A cursor is letters and hex digits: nothing to escape.
        let after = cursor
            .as_ref()
            .map_or_else(String::new, |c| format!("&cursor={c}"));
        let req = client
            .get(format!(
                "{base}/v1/organisations/{organisation}/members?limit=200{after}"
            ))
            .bearer_auth(token);
        let page = expect(req, 200, "listMembers").await?;
        for m in page["items"].as_array().ok_or("listMembers: no items")? {
            if let (Some(email), Some(id)) = (m["user"]["email"].as_str(), m["user"]["id"].as_str())
            {
                by_email.insert(email.to_owned(), id.to_owned());
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    (0..CLIENTS)
        .map(|n| {
            by_email
                .remove(&client_email(n))
                .ok_or_else(|| format!("client {n} is not among the practice's members"))
        })
        .collect()
}

/// Checks that the measured read answers with the seeded conditions, decrypted.
async fn check_read(base: &str, seeded: &Seeded) -> Result<(), String> {
    let client = reqwest::Client::new();
    for id in &seeded.clients {
        let page = expect(
            client
                .get(read_url(base, &seeded.organisation, id))
                .bearer_auth(&seeded.token),
            200,
            "listRecords",
        )
        .await?;
        let items = page["items"].as_array().ok_or("listRecords: no items")?;
        let seeded_texts = &seeded.texts[id];
        let expected = seeded_texts.len().min(PAGE as usize);
        if items.len() != expected {
            return Err(format!(
                "listRecords answered {} conditions, not the {expected} seeded",
                items.len()
            ));
        }
        for item in items {
            let text = item["content"]["text"].as_str().unwrap_or_default();
            if item["content"]["kind"] != "condition"
                || item["client_id"] != id.as_str()
                || !seeded_texts.iter().any(|t| t == text)
            {
                return Err("listRecords answered a record that was not seeded".to_owned());
            }
        }
    }
    println!("bench: checked: every client's first page holds its seeded conditions, decrypted");
    Ok(())
}

/// `concurrency` workers, each with its own keep-alive client, sending GETs to a
/// random one of `urls` back to back for `period`; latency of each 200 answer.
async fn closed_loop(
    urls: &Arc<Vec<String>>,
    token: Option<&Arc<String>>,
    concurrency: usize,
    period: Duration,
) -> Result<Phase, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut workers = Vec::new();
    for n in 0..concurrency {
        let (urls, token, stop) = (urls.clone(), token.cloned(), stop.clone());
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| e.to_string())?;
        workers.push(tokio::spawn(async move {
            let mut random = Random::new(n as u64);
            let mut phase = Phase::default();
            while !stop.load(Ordering::Relaxed) {
                let url = &urls[random.below(urls.len())];
                let mut req = client.get(url);
                if let Some(token) = &token {
                    req = req.bearer_auth(token.as_str());
                }
                let at = Instant::now();
                let ok = match req.send().await {
                    // The whole body is read, so the connection is reused.
                    Ok(resp) => resp.status() == 200 && resp.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    phase.ms.push(ms(at.elapsed()));
                } else {
                    phase.failed += 1;
                }
            }
            phase
        }));
    }
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

/// xorshift64*: enough to spread reads over the clients.
struct Random(u64);

impl Random {
    fn new(worker: u64) -> Self {
        let nanos = SystemClock.now().timestamp_subsec_nanos();
        Self((u64::from(nanos) ^ worker.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        usize::try_from(x % n.max(1) as u64).unwrap_or(0)
    }
}
