//! `cargo xtask openapi [--check]`: the OpenAPI document is generated from the code
//! and committed, so integrators read JSON, not Rust, and CI notices drift.

use crate::workspace_root;

/// Writes `docs/openapi.json`, or with `check` fails when it differs from the code.
pub async fn run(check: bool) -> Result<(), String> {
    let spec = server::openapi_document()
        .await
        .map_err(|e| e.to_string())?;
    let value: serde_json::Value =
        serde_json::from_str(&spec).map_err(|e| format!("the generated spec is not JSON: {e}"))?;
    let mut rendered = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
    rendered.push('\n');
    let path = workspace_root().join("docs/openapi.json");
    if check {
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != rendered {
            return Err(format!(
                "{} differs from the code: run `cargo xtask openapi` and commit it",
                path.display()
            ));
        }
        println!("openapi: {} is up to date", path.display());
    } else {
        std::fs::write(&path, rendered).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("openapi: wrote {}", path.display());
    }
    Ok(())
}
