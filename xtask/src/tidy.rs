//! `cargo xtask tidy`: invariants of the codebase that the compiler does not check.
//!
//! - Dependency rules (DESIGN.md): domain crates never reach sea-orm, sqlx, poem or
//!   the adapters, even transitively; `consent` depends on no other domain crate;
//!   `billing` reaches neither `consent` nor `data-rights` (D12: no price decision
//!   reads privacy-rights state);
//!   only `store` and `migration` know SQL; only `server` knows HTTP.
//! - Every internal crate is `publish = false`.
//! - Every Rust module opens with a `//!` doc saying what it is for.
//! - `docs/compliance.md` has one row per obligation ID, and every test it names exists.
//! - `.ci/run` runs the test command README.md gives.
//!
//! Runs as `cargo xtask tidy` and as a `#[test]`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The domain crates of DESIGN.md; those that exist are checked.
const DOMAIN_CRATES: [&str; 6] = [
    "identity",
    "clinical",
    "consent",
    "audit",
    "billing",
    "data-rights",
];

/// Crates that know SQL, HTTP or every adapter: no domain crate may reach them.
const INFRASTRUCTURE: [&str; 10] = [
    "sea-orm",
    "sea-orm-migration",
    "sea-query",
    "sqlx",
    "poem",
    "poem-openapi",
    "store",
    "migration",
    "server",
    "reqwest",
];

/// Only these workspace crates may depend on sea-orm or sqlx.
const SQL_CRATES: [&str; 5] = ["store", "migration", "server", "xtask", "tests"];
/// Only these workspace crates may depend on poem.
const HTTP_CRATES: [&str; 3] = ["server", "xtask", "tests"];

/// Every obligation ID in `shared/policies/OBLIGATIONS.md`, kept in step with it
/// by `obligation_ids_match_the_policy`.
pub const OBLIGATION_IDS: [&str; 43] = [
    "C1", "C2", "C3", "C4", "C5", "C6", "C7", "U1", "U2", "U3", "U4", "U5", "U6", "S1", "S2", "S3",
    "S4", "S5", "S6", "R1", "R2", "R3", "SEC1", "SEC2", "SEC3", "D1", "D2", "D3", "D4", "D5", "D6",
    "D7", "D8", "D9", "D10", "D11", "D12", "D13", "O1", "O2", "O3", "O4", "O5",
];

/// Runs every check; the error lists every violation found.
pub fn run(root: &Path) -> Result<(), String> {
    let mut problems = Vec::new();
    problems.extend(dependency_rules(root)?);
    problems.extend(module_docs(root));
    problems.extend(compliance_rows(root));
    problems.extend(ci_runs_readme_tests(root));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "tidy found {} problem(s):\n  - {}",
            problems.len(),
            problems.join("\n  - ")
        ))
    }
}

/// Package name -> names of its normal dependencies.
type Graph = BTreeMap<String, BTreeSet<String>>;

struct Package {
    name: String,
    publish_false: bool,
    normal_deps: BTreeSet<String>,
}

/// Reads `cargo metadata`: workspace packages with their resolved normal
/// (non-dev, non-build) dependencies, by package name.
fn metadata(root: &Path) -> Result<(Vec<Package>, Graph), String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let name_of: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    // Resolved graph: package name -> names of its normal dependencies.
    let mut graph = Graph::new();
    for node in meta["resolve"]["nodes"].as_array().into_iter().flatten() {
        let Some(name) = node["id"].as_str().and_then(|id| name_of.get(id)) else {
            continue;
        };
        let deps = node["deps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|k| k["kind"].is_null())
            })
            .filter_map(|d| {
                d["pkg"]
                    .as_str()
                    .and_then(|id| name_of.get(id))
                    .map(|n| (*n).to_owned())
            });
        graph.entry((*name).to_owned()).or_default().extend(deps);
    }
    let members: BTreeSet<&str> = meta["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let packages = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id)))
        .map(|p| {
            let name = p["name"].as_str().unwrap_or_default().to_owned();
            Package {
                publish_false: p["publish"].as_array().is_some_and(Vec::is_empty),
                normal_deps: graph.get(&name).cloned().unwrap_or_default(),
                name,
            }
        })
        .collect();
    Ok((packages, graph))
}

fn transitive(graph: &Graph, start: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = graph.get(start).into_iter().flatten().cloned().collect();
    while let Some(next) = stack.pop() {
        if seen.insert(next.clone()) {
            stack.extend(graph.get(&next).into_iter().flatten().cloned());
        }
    }
    seen
}

fn dependency_rules(root: &Path) -> Result<Vec<String>, String> {
    let (packages, graph) = metadata(root)?;
    Ok(check_dependencies(&packages, &graph))
}

fn check_dependencies(packages: &[Package], graph: &Graph) -> Vec<String> {
    let mut problems = Vec::new();
    for package in packages {
        if !package.publish_false {
            problems.push(format!(
                "{}: internal crates must set publish = false",
                package.name
            ));
        }
        let reach = transitive(graph, &package.name);
        let is_domain = DOMAIN_CRATES.contains(&package.name.as_str());
        if is_domain || package.name == "kernel" || package.name == "crypto" {
            for banned in INFRASTRUCTURE.iter().filter(|b| reach.contains(**b)) {
                problems.push(format!(
                    "{} must not depend on {banned} (even transitively)",
                    package.name
                ));
            }
        }
        if package.name == "consent" {
            for other in DOMAIN_CRATES
                .iter()
                .filter(|d| **d != "consent" && reach.contains(**d))
            {
                problems.push(format!(
                    "consent must depend on no other domain crate, but reaches {other}"
                ));
            }
        }
        if package.name == "billing" {
            // D12: no price or plan decision may read privacy-rights state.
            for other in ["consent", "data-rights"]
                .iter()
                .filter(|d| reach.contains(**d))
            {
                problems.push(format!(
                    "billing must not reach {other}: prices never read privacy-rights state (D12)"
                ));
            }
        }
        let direct = &package.normal_deps;
        if !SQL_CRATES.contains(&package.name.as_str())
            && ["sea-orm", "sea-orm-migration", "sqlx"]
                .iter()
                .any(|d| direct.contains(*d))
        {
            problems.push(format!(
                "{}: only store and migration may know SQL",
                package.name
            ));
        }
        if !HTTP_CRATES.contains(&package.name.as_str())
            && ["poem", "poem-openapi"].iter().any(|d| direct.contains(*d))
        {
            problems.push(format!("{}: only server may know HTTP", package.name));
        }
    }
    problems
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_docs(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "tests"] {
        rust_files(&root.join(dir), &mut files);
    }
    files
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            !text
                .lines()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.starts_with("//!"))
        })
        .map(|path| {
            format!(
                "{}: every module opens with a `//!` doc",
                path.strip_prefix(root).unwrap_or(path).display()
            )
        })
        .collect()
}

/// Every `fn name` defined in the workspace's Rust files.
fn defined_functions(root: &Path) -> BTreeSet<String> {
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "tests"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut names = BTreeSet::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for (i, _) in text.match_indices("fn ") {
            let rest = &text[i + 3..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

/// Checks `docs/compliance.md`: a table whose first column is an obligation ID and
/// whose `Test` column names tests in backticks (`path::to::test_name`), or says
/// "not yet". Every ID has exactly one row; every test named exists.
fn compliance_rows(root: &Path) -> Vec<String> {
    let path = root.join("docs/compliance.md");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return vec!["docs/compliance.md is missing".to_owned()];
    };
    let functions = defined_functions(root);
    let mut problems = Vec::new();
    let mut header: Option<Vec<String>> = None;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines().filter(|l| l.trim_start().starts_with('|')) {
        let cells: Vec<String> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_owned())
            .collect();
        if cells
            .iter()
            .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            continue;
        }
        let Some(columns) = &header else {
            header = Some(cells.iter().map(|c| c.to_ascii_lowercase()).collect());
            continue;
        };
        let Some(test_col) = columns.iter().position(|c| c == "test" || c == "tests") else {
            return vec!["docs/compliance.md: the table needs a `Test` column".to_owned()];
        };
        let id = cells
            .first()
            .map(|c| c.trim_matches('*').to_owned())
            .unwrap_or_default();
        *seen.entry(id.clone()).or_default() += 1;
        let tests = cells.get(test_col).cloned().unwrap_or_default();
        let named: Vec<&str> = tests.split('`').skip(1).step_by(2).collect();
        if named.is_empty() && !tests.to_ascii_lowercase().contains("not yet") {
            problems.push(format!(
                "compliance {id}: name a test in backticks, or say \"not yet\""
            ));
        }
        for test in named {
            let name = test.rsplit("::").next().unwrap_or(test);
            if !functions.contains(name) {
                problems.push(format!(
                    "compliance {id}: names test `{test}`, which does not exist"
                ));
            }
        }
    }
    for id in OBLIGATION_IDS {
        match seen.get(id) {
            None => problems.push(format!("compliance: no row for obligation {id}")),
            Some(n) if *n > 1 => problems.push(format!("compliance: {n} rows for obligation {id}")),
            Some(_) => {}
        }
    }
    for id in seen
        .keys()
        .filter(|id| !OBLIGATION_IDS.contains(&id.as_str()))
    {
        problems.push(format!("compliance: row for unknown obligation {id}"));
    }
    problems
}

/// The README's test command, from the line after "Run the tests".
fn readme_test_command(root: &Path) -> Option<String> {
    let readme = std::fs::read_to_string(root.join("README.md")).ok()?;
    let start = readme.find("<!-- test-command -->")?;
    let block = &readme[start..];
    let code = block.split("```").nth(1)?;
    code.lines()
        .skip(1)
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
}

fn ci_runs_readme_tests(root: &Path) -> Vec<String> {
    let Some(command) = readme_test_command(root) else {
        return vec![
            "README.md: mark the test command with <!-- test-command --> before its code block"
                .to_owned(),
        ];
    };
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap_or_default();
    if ci.contains(&command) {
        Vec::new()
    } else {
        vec![format!(
            ".ci/run must run the README's test command: {command}"
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy() {
        if let Err(problems) = run(&crate::workspace_root()) {
            panic!("{problems}");
        }
    }

    #[test]
    fn dependency_rules_catch_transitive_and_cross_domain_dependencies() {
        let graph: Graph = [
            ("clinical", vec!["kernel", "helper"]),
            ("helper", vec!["sea-orm"]),
            ("consent", vec!["kernel", "audit"]),
            ("audit", vec!["kernel"]),
            ("billing", vec!["kernel", "consent"]),
            ("kernel", vec![]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
        .collect();
        let packages: Vec<Package> = ["clinical", "consent", "audit", "billing", "kernel"]
            .into_iter()
            .map(|name| Package {
                name: name.to_owned(),
                publish_false: name != "audit",
                normal_deps: graph[name].clone(),
            })
            .collect();
        let problems = check_dependencies(&packages, &graph);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("clinical must not depend on sea-orm")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p
                    .contains("consent must depend on no other domain crate, but reaches audit")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("audit: internal crates must set publish = false")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains(
                "billing must not reach consent: prices never read privacy-rights state (D12)"
            )),
            "{problems:?}"
        );
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    #[test]
    fn obligation_ids_match_the_policy() {
        // The policy file lives beside the checkout when it is available; CI clones
        // may not have it, and then the embedded list stands.
        let policy = crate::workspace_root().join("../shared/policies/OBLIGATIONS.md");
        let Ok(text) = std::fs::read_to_string(policy) else {
            return;
        };
        let from_policy: BTreeSet<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("- **"))
            .filter_map(|l| l.split("**").next())
            .map(str::to_owned)
            .collect();
        let embedded: BTreeSet<String> = OBLIGATION_IDS.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(from_policy, embedded);
    }

    #[test]
    fn a_compliance_row_naming_a_missing_test_fails() {
        let dir = tempfile_dir();
        std::fs::create_dir_all(dir.join("docs")).expect("docs");
        std::fs::create_dir_all(dir.join("crates/x/src")).expect("src");
        std::fs::write(
            dir.join("crates/x/src/lib.rs"),
            "//! x\nfn real_test() {}\n",
        )
        .expect("write");
        std::fs::write(
            dir.join("docs/compliance.md"),
            "| ID | Obligation | Code | Test |\n|---|---|---|---|\n| C1 | a | b | `x::real_test` |\n| C2 | a | b | `x::imaginary_test` |\n",
        )
        .expect("write");
        let problems = compliance_rows(&dir);
        assert!(
            problems.iter().any(|p| p.contains("imaginary_test")),
            "{problems:?}"
        );
        assert!(
            !problems.iter().any(|p| p.contains("real_test")),
            "{problems:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        std::env::temp_dir().join(format!("custodia-tidy-{}", std::process::id()))
    }
}
