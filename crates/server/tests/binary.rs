//! The `custodia` binary as an operator runs it: JSON log lines only, nothing a
//! client sent in them, a private development key when none is configured, and a
//! clean exit on SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Things clients send that must never reach a log line.
const SECRETS: [&str; 4] = [
    "tok_SECRET_12345",
    "F32.1-secret",
    "Jane-Doe-secret",
    "123-45-6789",
];

/// Kills the server if the test fails before stopping it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Running {
    fn wait_timeout(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().expect("the child's status") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "custodia did not exit within {limit:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn field<'a>(line: &'a Value, name: &str) -> Option<&'a str> {
    line.get(name).and_then(Value::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_logs_only_json_without_client_data_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let data_dir = dir.path().join("data");
    let database_url = format!("sqlite://{}", dir.path().join("c.db").display());

    let mut command = Command::new(env!("CARGO_BIN_EXE_custodia"));
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &database_url,
            "--data-dir",
        ])
        .arg(&data_dir)
        .args(["--log-format", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Only the flags above configure it: nothing from the developer's shell.
    for (name, _) in std::env::vars_os() {
        let name_str = name.to_string_lossy();
        if name_str.starts_with("CUSTODIA_") || name_str == "DATABASE_URL" || name_str == "RUST_LOG"
        {
            command.env_remove(&name);
        }
    }
    let mut child = Running(command.spawn().expect("custodia starts"));

    let stderr = child.0.stderr.take().expect("piped stderr");
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stderr_reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stdout = child.0.stdout.take().expect("piped stdout");
    let stdout_reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });

    let mut log: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match lines.recv_timeout(left) {
            Ok(line) => line,
            Err(err) => panic!(
                "no `serving` line ({err}); stderr so far:\n{}",
                log.join("\n")
            ),
        };
        log.push(line.clone());
        let Ok(json) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if field(&json, "message") == Some("serving") {
            break field(&json, "addr")
                .expect("the serving line names its address")
                .to_owned();
        }
    };
    let base = format!("http://{addr}");

    let client = reqwest::Client::new();
    let auth = "Bearer tok_SECRET_12345";
    let health = client
        .get(format!("{base}/healthz?diagnosis=F32.1-secret"))
        .header("authorization", auth)
        .send()
        .await
        .expect("/healthz answers");
    assert_eq!(health.status(), 200);
    let unknown = client
        .get(format!("{base}/v1/patients/Jane-Doe-secret"))
        .header("authorization", auth)
        .send()
        .await
        .expect("an unknown path answers");
    assert_eq!(unknown.status(), 404);
    let wrong_method = client
        .post(format!("{base}/healthz"))
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body(r#"{"ssn":"123-45-6789"}"#)
        .send()
        .await
        .expect("a wrong method answers");
    assert_eq!(wrong_method.status(), 405);
    drop(client);

    let pid = child.0.id().to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(kill.success(), "kill -TERM {pid} failed");
    let status = child.wait_timeout(Duration::from_secs(30));
    stderr_reader.join().expect("the stderr reader");
    log.extend(lines.try_iter());
    let out = stdout_reader.join().expect("the stdout reader");
    let all = log.join("\n");
    assert!(
        status.success(),
        "custodia exited with {status}; stderr:\n{all}"
    );

    let parsed: Vec<Value> = log
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("not a JSON line ({err}): {line}"))
        })
        .collect();
    assert!(
        out.trim().is_empty(),
        "stdout is for nothing; it had:\n{out}"
    );
    for secret in SECRETS {
        assert!(!all.contains(secret), "`{secret}` reached the log:\n{all}");
    }
    assert!(
        parsed
            .iter()
            .any(|line| field(line, "message") == Some("request")
                && field(line, "operation") == Some("getHealth")),
        "no access-log line for getHealth:\n{all}"
    );
    assert!(
        parsed
            .iter()
            .any(|line| field(line, "level") == Some("WARN")
                && field(line, "message").is_some_and(|m| m.contains("NO MASTER KEY CONFIGURED"))),
        "no development-key warning:\n{all}"
    );

    let key = data_dir.join("dev-master-key");
    let mode = std::fs::metadata(&key)
        .expect("the development key was written")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "{} has mode {:o}",
        key.display(),
        mode & 0o777
    );
}
