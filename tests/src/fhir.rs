//! The FHIR R4 validator for tests: [`validate`] checks FHIR JSON with
//! `tools/fhir/validate.py` (fhir.resources 6.1.0 on FHIR R4 4.0.1, plus the checks
//! `docs/fhir.md` lists), installing its Python environment on first use with
//! `tools/fhir/ensure-venv`. Without Python the tests that use it fail; they never skip.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// `tools/fhir/` of this checkout.
fn tools() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/fhir")
}

/// The validator environment's interpreter, installed once per test process.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(install)
}

fn install() -> PathBuf {
    let script = tools().join("ensure-venv");
    let output = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "the FHIR validator cannot be installed: bash cannot run {}: {error}",
                script.display()
            )
        });
    assert!(
        output.status.success(),
        "the FHIR validator cannot be installed: {} {}:\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let path = String::from_utf8(output.stdout).expect("ensure-venv prints a UTF-8 path");
    let path = path.trim();
    assert!(
        !path.is_empty(),
        "the FHIR validator cannot be installed: ensure-venv printed no python path"
    );
    PathBuf::from(path)
}

/// Validates each of `resources` as FHIR R4 4.0.1 JSON: against the R4 model its
/// `resourceType` names (a Bundle's entries too), strictly typed JSON, the required
/// bindings and invariants `docs/fhir.md` lists, and its references (inside a
/// Bundle, `urn:uuid:` references must resolve to an entry's `fullUrl`).
///
/// Blocks while the validator runs (a fraction of a second; the first call of a
/// test process may install the validator, a few seconds on a fresh checkout).
///
/// # Errors
/// The validator's report when any resource is invalid: one line per problem,
/// `resource INDEX (TYPE) at PATH: MESSAGE`, then a summary. It names paths and
/// rules, never field values.
///
/// # Panics
/// When the validator cannot be installed or run, or `resources` is empty: a test
/// must fail, not pass, without it.
pub fn validate(resources: &[serde_json::Value]) -> Result<(), String> {
    assert!(
        !resources.is_empty(),
        "fhir::validate needs at least one resource"
    );
    let input = serde_json::to_vec(resources).expect("JSON values serialise");
    let script = tools().join("validate.py");
    let mut child = Command::new(python())
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "the FHIR validator cannot start ({}): {error}",
                script.display()
            )
        });
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // Written from another thread, so a large report cannot block the input.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child
        .wait_with_output()
        .expect("the FHIR validator runs to its end");
    let written = writer.join().expect("the input writer does not panic");
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    match output.status.code() {
        Some(0 | 1) if written.is_err() => {
            panic!("the FHIR validator answered without reading all its input: {written:?}")
        }
        Some(0) => Ok(()),
        Some(1) => Err(report),
        _ => panic!(
            "the FHIR validator failed to run ({}):\n{report}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}
