//! `cargo xtask bench identity`: does a flood of sign-ins starve other requests?
//! (`bench audit` is in [`crate::bench_audit`], `bench consent` in
//! [`crate::bench_consent`], `bench read` in [`crate::bench_read`], `bench rights`
//! in [`crate::bench_rights`].)
//!
//! Builds the real server in release mode, starts it on a temporary SQLite
//! database with the production password iterations (600,000; never the insecure
//! flag) and a master key of its own, seeds verified accounts through the HTTP API
//! (reading the verification tokens from the outbox, as the email would), then, in
//! one run:
//!
//! 1. sign-in throughput: sign-ins per second at `--concurrency` for `--seconds`;
//! 2. `--rounds` times: baseline `GET /v1/me` at a steady `--rate` with nothing
//!    else running (p50, p99), then the same steady reads while a sign-in flood
//!    runs (p50, p99);
//!
//! and prints the p99 ratio per round, its median (goal: at most 1.2) and the ratio
//! of the pooled samples, and writes every figure to `target/bench/identity.json`.
//! Ratios are against baselines of the same run, alternating with the floods,
//! because the machine is noisy. Reads are sent open-loop (on schedule, whether or
//! not earlier ones have answered), and their latency is counted from the time they
//! were due, so a stalled server cannot hide its stall.
//!
//! The server throttles sign-ins per client address, so the flood is spread over
//! many loopback source addresses (127.1.0.0/16 is all loopback on Linux), each
//! used below the throttle's limit.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use crypto::{Keyring, MasterKey};
use kernel::{Clock, SystemClock, UserId};
use serde_json::{Value, json};
use store::{Database, DatabaseOptions, OutboxNotifier, SeaOrmKeyStore};

/// What to measure.
#[derive(Debug, Subcommand)]
pub enum Target {
    /// Sign-in throughput, and authenticated-read latency with and without a
    /// sign-in flood.
    Identity(IdentityArgs),
    /// The audit log: group-commit throughput against the database's own commit
    /// rate, the latency a request pays for its event, and verification speed.
    Audit(crate::bench_audit::AuditArgs),
    /// The consent gate: `decide` latency (p50, p99) with 10,000 and 1,000,000
    /// subjects, against a `HashMap` lookup through the same harness.
    Consent(crate::bench_consent::ConsentArgs),
    /// Reads of clinical records (authenticated, care-team and consent checks,
    /// decryption, a durable audit event) against the server's bare JSON
    /// endpoint, on SQLite and PostgreSQL.
    Read(crate::bench_read::ReadArgs),
    /// A data subject's export and erasure through the rights engine, with
    /// 10, 1,000 and 10,000 records, in databases of 10,000 and 1,000,000
    /// clients.
    Rights(crate::bench_rights::RightsArgs),
}

/// Options of `bench identity`.
#[derive(Debug, Parser)]
pub struct IdentityArgs {
    /// Concurrent sign-ins in the flood.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Length of each phase, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Steady rate of `GET /v1/me`, per second.
    #[arg(long, default_value_t = 40)]
    rate: u32,
    /// Passed to the server as `--hashing-concurrency` (by default its own default).
    #[arg(long)]
    hashing_concurrency: Option<usize>,
    /// How many times to alternate a baseline phase and a flood phase.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Use the release binary already built instead of building it.
    #[arg(long)]
    no_build: bool,
}

/// The goal: p99 under a sign-in flood at most this multiple of the baseline p99.
const GOAL_RATIO: f64 = 1.2;
/// Sign-ins per client address per throttle window allowed by the server (20 per
/// 5 minutes); the bench stays below it.
const PER_ADDRESS: u64 = 18;
/// Seeded accounts.
const ACCOUNTS: usize = 8;
const PASSWORD: &str = "bench horse battery staple";

/// Runs `cargo xtask bench <name> --in-process` and the arguments given after
/// `<name>`, built in release mode, so the measured code is optimised.
pub(crate) fn rerun_in_release(name: &str, root: &Path) -> Result<(), String> {
    println!("bench: re-running in release mode (cargo run --release -p xtask)…");
    let forwarded: Vec<String> = std::env::args().skip_while(|a| a != name).skip(1).collect();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "run",
            "--release",
            "--locked",
            "--quiet",
            "-p",
            "xtask",
            "--",
        ])
        .args(["bench", name, "--in-process"])
        .args(forwarded)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the release bench failed ({status})"))
    }
}

/// Runs a benchmark.
pub async fn run(target: Target, root: &Path) -> Result<(), String> {
    match target {
        Target::Identity(args) => identity(args, root).await,
        Target::Audit(args) => crate::bench_audit::run(args, root).await,
        Target::Consent(args) => crate::bench_consent::run(args, root).await,
        Target::Read(args) => crate::bench_read::run(args, root).await,
        Target::Rights(args) => crate::bench_rights::run(args, root).await,
    }
}

/// Kills the server when the bench ends, however it ends, and removes its folder.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn identity(args: IdentityArgs, root: &Path) -> Result<(), String> {
    let binary = if args.no_build {
        root.join("target/release/custodia")
    } else {
        build_server(root)?
    };
    let dir = std::env::temp_dir().join(format!("custodia-bench-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let database_url = format!("sqlite://{}/bench.db?mode=rwc", dir.display());
    let master = MasterKey::generate().map_err(|e| e.to_string())?;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut command = Command::new(&binary);
    command
        .args(["--listen", &addr.to_string()])
        .args(["--database-url", &database_url])
        .args(["--migrate", "always"])
        .args(["--data-dir", &dir.display().to_string()])
        .args(["--password-iterations", "600000"])
        .args(["--log", "warn"])
        .env("CUSTODIA_MASTER_KEY", master.to_base64().expose())
        .stdout(Stdio::null());
    if let Some(n) = args.hashing_concurrency {
        command.args(["--hashing-concurrency", &n.to_string()]);
    }
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let server = Server { child, dir };
    let base = format!("http://{addr}");
    wait_until_healthy(&base).await?;

    let db = Database::connect(&database_url, &DatabaseOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let keyring = Keyring::new(master, Arc::new(SeaOrmKeyStore::new(db.clone())), clock);
    let outbox = OutboxNotifier::new(db, keyring);
    let addresses = Addresses::new();
    println!("bench: seeding {ACCOUNTS} verified accounts…");
    let mut emails = Vec::new();
    for n in 0..ACCOUNTS {
        emails.push(seed_account(&base, &outbox, &addresses, n).await?);
    }
    let emails = Arc::new(emails);
    let reader = addresses.client()?;
    let token = sign_in(&reader, &base, &emails[0])
        .await?
        .ok_or("the reader could not sign in")?;

    let period = Duration::from_secs(args.seconds);
    println!(
        "bench: sign-in throughput at concurrency {} for {}s…",
        args.concurrency, args.seconds
    );
    let alone = flood(&base, &emails, &addresses, args.concurrency, period).await?;
    // Baseline and flood alternate, so that drift in the machine's other load
    // falls on both sides of each ratio.
    let mut rounds = Vec::new();
    let (mut all_baseline, mut all_loaded) = (Samples::default(), Samples::default());
    for round in 1..=args.rounds.max(1) {
        println!(
            "bench: round {round}/{}: GET /v1/me at {}/s alone, then during a sign-in flood…",
            args.rounds.max(1),
            args.rate
        );
        let baseline = steady_reads(&reader, &base, &token, args.rate, period).await?;
        let flooding = tokio::spawn({
            let base = base.clone();
            let emails = emails.clone();
            let addresses = addresses.clone();
            async move { flood(&base, &emails, &addresses, args.concurrency, period).await }
        });
        let loaded = steady_reads(&reader, &base, &token, args.rate, period).await?;
        let during = flooding.await.map_err(|e| e.to_string())??;
        let (b, l) = (baseline.latency()?, loaded.latency()?);
        rounds.push((b, l, during, l.p99_ms / b.p99_ms));
        all_baseline.extend(baseline);
        all_loaded.extend(loaded);
    }
    drop(server);

    let mut ratios: Vec<f64> = rounds.iter().map(|r| r.3).collect();
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[ratios.len() / 2];
    let (baseline, loaded) = (all_baseline.latency()?, all_loaded.latency()?);
    let pooled_ratio = loaded.p99_ms / baseline.p99_ms;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let report = json!({
        "password_iterations": 600_000,
        "cores": cores,
        "hashing_concurrency": args.hashing_concurrency.map_or_else(
            || Value::String(format!("server default ({})", cores.saturating_sub(1).max(1))),
            |n| json!(n),
        ),
        "concurrency": args.concurrency,
        "seconds_per_phase": args.seconds,
        "read_rate_per_second": args.rate,
        "sign_in": alone.to_json(),
        "rounds": rounds.iter().map(|(b, l, d, r)| json!({
            "baseline_read": b.to_json(),
            "read_during_sign_in_flood": l.to_json(),
            "sign_in_during_reads": d.to_json(),
            "p99_ratio": r,
        })).collect::<Vec<_>>(),
        "baseline_read_pooled": baseline.to_json(),
        "read_during_sign_in_flood_pooled": loaded.to_json(),
        "p99_ratio_pooled": pooled_ratio,
        "p99_ratio": ratio,
        "goal_p99_ratio": GOAL_RATIO,
        "goal_met": ratio <= GOAL_RATIO,
    });
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let file = out.join("identity.json");
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&file, text + "\n").map_err(|e| e.to_string())?;

    println!();
    println!(
        "sign-in throughput:          {:.1}/s ({} in {}s at concurrency {}, {} failed)",
        alone.per_second(),
        alone.ok,
        args.seconds,
        args.concurrency,
        alone.failed
    );
    for (n, (b, l, d, r)) in rounds.iter().enumerate() {
        println!(
            "round {}: GET /v1/me p50/p99 alone {:.1}/{:.1} ms, during the flood {:.1}/{:.1} ms \
             ({:.1} sign-ins/s); p99 ratio {r:.2}",
            n + 1,
            b.p50_ms,
            b.p99_ms,
            l.p50_ms,
            l.p99_ms,
            d.per_second()
        );
    }
    println!(
        "GET /v1/me pooled:           alone p50 {:.1} ms, p99 {:.1} ms ({} reads, {} failed); \
         during the flood p50 {:.1} ms, p99 {:.1} ms ({} reads, {} failed)",
        baseline.p50_ms,
        baseline.p99_ms,
        baseline.count,
        baseline.failed,
        loaded.p50_ms,
        loaded.p99_ms,
        loaded.count,
        loaded.failed
    );
    println!(
        "p99 ratio: median of rounds {ratio:.2}, pooled {pooled_ratio:.2} (goal ≤ {GOAL_RATIO}: {})",
        if ratio <= GOAL_RATIO { "met" } else { "missed" }
    );
    println!("wrote {}", file.display());
    Ok(())
}

/// Builds the server's binary in release mode; returns its path.
pub(crate) fn build_server(root: &Path) -> Result<PathBuf, String> {
    println!("bench: building the server (release)…");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "server",
            "--bin",
            "custodia",
        ])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(root.join("target/release/custodia"))
    } else {
        Err("the release build failed".to_owned())
    }
}

/// Waits until `base`'s `/readyz` answers 200 (database reachable, schema current).
pub(crate) async fn wait_until_healthy(base: &str) -> Result<(), String> {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(resp) = client.get(format!("{base}/readyz")).send().await
            && resp.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the server did not become ready within 30 s".to_owned())
}

/// Loopback source addresses, each used for fewer sign-ins than the per-address
/// throttle allows.
#[derive(Clone)]
struct Addresses {
    next: Arc<AtomicU64>,
}

impl Addresses {
    fn new() -> Self {
        Self {
            next: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A client bound to a fresh loopback address, for at most [`PER_ADDRESS`]
    /// sign-ins.
    fn client(&self) -> Result<reqwest::Client, String> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        if n >= 254 * 256 {
            return Err("ran out of loopback source addresses".to_owned());
        }
        let hi = u8::try_from(n / 254).map_err(|e| e.to_string())?;
        let lo = u8::try_from(n % 254 + 1).map_err(|e| e.to_string())?;
        let local = IpAddr::V4(Ipv4Addr::new(127, 1, hi, lo));
        reqwest::Client::builder()
            .local_address(local)
            .build()
            .map_err(|e| e.to_string())
    }
}

async fn seed_account(
    base: &str,
    outbox: &OutboxNotifier,
    addresses: &Addresses,
    n: usize,
) -> Result<String, String> {
    let client = addresses.client()?;
    let email = format!("bench{n}@example.com");
    let resp = client
        .post(format!("{base}/v1/practices"))
        .json(&json!({
            "name": "Bench Provider",
            "email": email,
            "profession": "Physiotherapist",
            "organisation_name": format!("Bench Practice {n}"),
            "phone": "+15555550100",
            "password": PASSWORD,
            "region": "us",
        }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status() != 201 {
        return Err(format!("sign-up answered {}", resp.status()));
    }
    let created: Value = resp.json().await.map_err(|e| e.to_string())?;
    let user = created["user"]["id"]
        .as_str()
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .ok_or("sign-up returned no user id")?;
    let token = outbox
        .latest_secret(UserId::from_uuid(user), "verify_email")
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no verification notice in the outbox")?;
    let resp = client
        .post(format!("{base}/v1/email-verifications"))
        .json(&json!({ "token": token.expose() }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status() != 204 {
        return Err(format!("verification answered {}", resp.status()));
    }
    Ok(email)
}

/// One sign-in: the token, or `None` when it was refused.
async fn sign_in(
    client: &reqwest::Client,
    base: &str,
    email: &str,
) -> Result<Option<String>, String> {
    let resp = client
        .post(format!("{base}/v1/sessions"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status() != 201 {
        return Ok(None);
    }
    let body: Value = resp.json().await.map_err(|e| e.to_string())?;
    Ok(body["token"].as_str().map(str::to_owned))
}

/// What a sign-in flood achieved.
#[derive(Debug, Clone, Copy)]
struct Flood {
    ok: u64,
    failed: u64,
    elapsed: Duration,
}

impl Flood {
    fn per_second(&self) -> f64 {
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let ok = self.ok as f64;
        ok / self.elapsed.as_secs_f64()
    }

    fn to_json(self) -> Value {
        json!({
            "succeeded": self.ok,
            "failed": self.failed,
            "seconds": self.elapsed.as_secs_f64(),
            "per_second": self.per_second(),
        })
    }
}

/// `concurrency` workers signing in back to back for `period`.
async fn flood(
    base: &str,
    emails: &Arc<Vec<String>>,
    addresses: &Addresses,
    concurrency: usize,
    period: Duration,
) -> Result<Flood, String> {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let turn = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (base, emails, addresses) = (base.to_owned(), emails.clone(), addresses.clone());
        let (ok, failed, stop, turn) = (ok.clone(), failed.clone(), stop.clone(), turn.clone());
        workers.push(tokio::spawn(async move {
            let mut client = addresses.client()?;
            let mut used = 0;
            while !stop.load(Ordering::Relaxed) {
                if used == PER_ADDRESS {
                    client = addresses.client()?;
                    used = 0;
                }
                used += 1;
                let email = &emails[turn.fetch_add(1, Ordering::Relaxed) % emails.len()];
                match sign_in(&client, &base, email).await {
                    Ok(Some(_)) => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
            Ok::<(), String>(())
        }));
    }
    tokio::time::sleep(period).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.map_err(|e| e.to_string())??;
    }
    Ok(Flood {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    })
}

/// The latencies (ms) of steady reads, and how many failed.
#[derive(Debug, Default)]
struct Samples {
    ms: Vec<f64>,
    failed: usize,
}

impl Samples {
    fn extend(&mut self, other: Self) {
        self.ms.extend(other.ms);
        self.failed += other.failed;
    }

    fn latency(&self) -> Result<Latency, String> {
        let mut sorted = self.ms.clone();
        if sorted.is_empty() {
            return Err("every read failed".to_owned());
        }
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| {
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "an index into a short list"
            )]
            let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
            sorted[index.min(sorted.len() - 1)]
        };
        Ok(Latency {
            count: sorted.len(),
            failed: self.failed,
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: sorted[sorted.len() - 1],
        })
    }
}

/// Latency figures of steady reads.
#[derive(Debug, Clone, Copy)]
struct Latency {
    count: usize,
    failed: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Latency {
    fn to_json(self) -> Value {
        json!({
            "reads": self.count,
            "failed": self.failed,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
        })
    }
}

/// `GET /v1/me` every `1/rate` s for `period`, open-loop; latency from when due.
async fn steady_reads(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    rate: u32,
    period: Duration,
) -> Result<Samples, String> {
    let interval = Duration::from_secs(1) / rate.max(1);
    let total = u32::try_from(period.as_millis() / interval.as_millis().max(1)).unwrap_or(u32::MAX);
    let start = tokio::time::Instant::now();
    let mut reads = Vec::new();
    for n in 0..total {
        let due = start + interval * n;
        tokio::time::sleep_until(due).await;
        let (client, url, token) = (client.clone(), format!("{base}/v1/me"), token.to_owned());
        reads.push(tokio::spawn(async move {
            let ok = client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            (ok, due.elapsed())
        }));
    }
    let mut samples = Samples::default();
    for read in reads {
        let (ok, took) = read.await.map_err(|e| e.to_string())?;
        if ok {
            samples.ms.push(took.as_secs_f64() * 1000.0);
        } else {
            samples.failed += 1;
        }
    }
    Ok(samples)
}
