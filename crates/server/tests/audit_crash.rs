//! The audit log survives a crash: the real `custodia` binary serves audited
//! requests (`GET /v1/organisations/{org}/members`, one `list` event each) under
//! concurrent load and is killed with SIGKILL while requests are in flight. After a
//! restart on the same database, every request that was answered 200 has its event
//! (found by its `X-Request-Id`), and the whole log verifies intact.
//!
//! Runs on a temporary SQLite database and, when `CUSTODIA_TEST_POSTGRES_URL` is
//! set, on a freshly created PostgreSQL database too.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use audit::ports::EventFilter;
use chrono::DateTime;
use crypto::{Keyring, MasterKey};
use kernel::{Clock, SystemClock, UserId};
use serde_json::{Value, json};
use store::testing::TestDatabase;
use store::{Database, DatabaseOptions, OutboxNotifier, SeaOrmKeyStore};
use uuid::Uuid;

const PASSWORD: &str = "crash test horse battery staple";
/// Concurrent clients during the load.
const CLIENTS: usize = 32;
/// Acknowledged requests wanted before the kill.
const MIN_ACKS: usize = 300;

/// Kills the server (SIGKILL) if it is still running, however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// What every run of the binary on one database shares.
struct Setup<'a> {
    database_url: &'a str,
    data_dir: &'a Path,
    master_key: &'a str,
    audit_key: &'a str,
}

impl Setup<'_> {
    fn start(&self) -> (Server, String) {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut command = Command::new(env!("CARGO_BIN_EXE_custodia"));
        // Only the flags and keys below configure it: nothing from the shell.
        for (name, _) in std::env::vars_os() {
            let name_str = name.to_string_lossy();
            if name_str.starts_with("CUSTODIA_")
                || name_str == "DATABASE_URL"
                || name_str == "RUST_LOG"
            {
                command.env_remove(&name);
            }
        }
        command
            .args(["--listen", &addr.to_string()])
            .args(["--database-url", self.database_url])
            .args(["--migrate", "always"])
            .arg("--data-dir")
            .arg(self.data_dir)
            .args(["--password-iterations", "1000"])
            .arg("--insecure-fast-password-hashing")
            .args(["--log", "warn"])
            .env("CUSTODIA_MASTER_KEY", self.master_key)
            .env("CUSTODIA_AUDIT_SIGNING_KEY", self.audit_key)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let server = Server(command.spawn().expect("custodia starts"));
        (server, format!("http://{addr}"))
    }

    fn config(&self) -> server::Config {
        server::Config::try_from_args([
            "custodia",
            "--database-url",
            self.database_url,
            "--data-dir",
            &self.data_dir.display().to_string(),
            "--master-key",
            self.master_key,
            "--audit-signing-key",
            self.audit_key,
        ])
        .expect("the verification configuration parses")
    }
}

async fn wait_until_ready(server: &mut Server, base: &str) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = server.0.try_wait().expect("the child's status") {
            panic!("custodia exited before it was ready: {status}");
        }
        if let Ok(resp) = client.get(format!("{base}/readyz")).send().await
            && resp.status().is_success()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "custodia was not ready within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Signs up a provider, verifies the email from the outbox and signs in: the
/// session token and the practice's id.
async fn provider(base: &str, database_url: &str, master_key: &str) -> (String, Uuid) {
    let client = reqwest::Client::new();
    let email = "crash@example.com";
    let resp = client
        .post(format!("{base}/v1/practices"))
        .json(&json!({
            "name": "Crash Test Provider",
            "email": email,
            "profession": "Physiotherapist",
            "organisation_name": "Crash Test Practice",
            "phone": "+15555550100",
            "password": PASSWORD,
            "region": "us",
        }))
        .send()
        .await
        .expect("sign-up answers");
    assert_eq!(resp.status(), 201, "sign-up");
    let created: Value = resp.json().await.expect("a sign-up body");
    let user = created["user"]["id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .expect("sign-up returns the user's id");

    let db = Database::connect(database_url, &DatabaseOptions::default())
        .await
        .expect("the test opens the database");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let master = MasterKey::from_base64(master_key).expect("the master key");
    let keyring = Keyring::new(master, Arc::new(SeaOrmKeyStore::new(db.clone())), clock);
    let token = OutboxNotifier::new(db.clone(), keyring)
        .latest_secret(UserId::from_uuid(user), "verify_email")
        .await
        .expect("the outbox reads")
        .expect("a verification notice in the outbox");
    db.close().await;
    let resp = client
        .post(format!("{base}/v1/email-verifications"))
        .json(&json!({ "token": token.expose() }))
        .send()
        .await
        .expect("verification answers");
    assert_eq!(resp.status(), 204, "email verification");

    let resp = client
        .post(format!("{base}/v1/sessions"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("sign-in answers");
    assert_eq!(resp.status(), 201, "sign-in");
    let body: Value = resp.json().await.expect("a session body");
    let session = body["token"].as_str().expect("a session token").to_owned();

    let me: Value = client
        .get(format!("{base}/v1/me"))
        .bearer_auth(&session)
        .send()
        .await
        .expect("/v1/me answers")
        .json()
        .await
        .expect("a /v1/me body");
    let organisation = me["memberships"][0]["organisation_id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .expect("the provider's practice");
    (session, organisation)
}

/// Clients listing members, and the request ids of the 200 answers so far.
struct Load {
    acked: Arc<Mutex<Vec<Uuid>>>,
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

/// `CLIENTS` tasks listing members back to back until the server stops answering;
/// the request ids of the 200 answers, shared as they arrive.
fn load(base: &str, session: &str, organisation: Uuid) -> Load {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let url = format!("{base}/v1/organisations/{organisation}/members");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("a client");
    let workers = (0..CLIENTS)
        .map(|_| {
            let (client, url, session) = (client.clone(), url.clone(), session.to_owned());
            let (acked, stop) = (acked.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(resp) = client.get(&url).bearer_auth(&session).send().await else {
                        // The server is gone (or going): nothing more is acknowledged.
                        break;
                    };
                    if resp.status() != 200 {
                        // Refused before the kill would be a failure of its own.
                        assert!(
                            stop.load(Ordering::Relaxed),
                            "listing members answered {} during the load",
                            resp.status()
                        );
                        break;
                    }
                    let id = resp
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| Uuid::parse_str(v).ok())
                        .expect("a 200 names its request id");
                    acked.lock().expect("the ack list").push(id);
                }
            })
        })
        .collect();
    Load {
        acked,
        stop,
        workers,
    }
}

async fn crash_and_verify(database_url: &str) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let data_dir = dir.path().join("data");
    let master_key = MasterKey::generate()
        .expect("randomness")
        .to_base64()
        .expose()
        .clone();
    // Any 32 random bytes in base64 will do as a signing seed.
    let audit_key = MasterKey::generate()
        .expect("randomness")
        .to_base64()
        .expose()
        .clone();
    let setup = Setup {
        database_url,
        data_dir: &data_dir,
        master_key: &master_key,
        audit_key: &audit_key,
    };

    let (mut server, base) = setup.start();
    wait_until_ready(&mut server, &base).await;
    let (session, organisation) = provider(&base, database_url, &master_key).await;

    let Load {
        acked,
        stop,
        workers,
    } = load(&base, &session, organisation);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(120);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let n = acked.lock().expect("the ack list").len();
        if n >= MIN_ACKS && started.elapsed() >= Duration::from_millis(1500) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {n} requests acknowledged in 120 s"
        );
        assert!(
            !workers.iter().all(tokio::task::JoinHandle::is_finished),
            "every client stopped before the kill ({n} acknowledged)"
        );
    }
    // SIGKILL, with requests in flight.
    server.0.kill().expect("SIGKILL");
    server.0.wait().expect("the child is reaped");
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("a client task");
    }
    let acked: Vec<Uuid> = std::mem::take(&mut *acked.lock().expect("the ack list"));
    assert!(acked.len() >= MIN_ACKS);
    assert_eq!(
        acked.iter().collect::<HashSet<_>>().len(),
        acked.len(),
        "request ids are unique"
    );

    // The restart recovers: the server opens the same database again.
    let (mut restarted, base) = setup.start();
    wait_until_ready(&mut restarted, &base).await;
    let status = Command::new("kill")
        .args(["-TERM", &restarted.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "SIGTERM sent");
    let deadline = Instant::now() + Duration::from_secs(60);
    while restarted
        .0
        .try_wait()
        .expect("the child's status")
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the restarted server did not stop within 60 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(restarted);

    let (repository, keys) = server::audit_for_verification(&setup.config())
        .await
        .expect("the audit log opens for verification");
    let mut missing = Vec::new();
    for id in &acked {
        let events = repository
            .list_events(EventFilter::Request(*id), DateTime::UNIX_EPOCH, None, 10)
            .await
            .expect("events list");
        if events.is_empty() {
            missing.push(*id);
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged requests have no audit event, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    let report = audit::verify::verify_repository(repository.as_ref(), &keys)
        .await
        .expect("the log reads");
    assert!(report.is_intact(), "the log verifies: {report:?}");
    assert!(
        report.events >= acked.len() as u64,
        "{} events for {} acknowledged requests",
        report.events,
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill_on_sqlite() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
    crash_and_verify(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill_on_postgres() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let url = database.url().to_owned();
    // The server and the verification open their own connections.
    database.database().clone().close().await;
    crash_and_verify(&url).await;
    database.drop().await;
}
