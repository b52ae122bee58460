//! Background jobs the server runs beside the API: the retention sweep, which
//! deletes security events older than their retention period (C7) and blanks
//! audit events older than theirs (six years at least; their hashes stay, so the
//! chains still verify, and a signed checkpoint records how far). It runs at
//! start and then every interval; with several server processes each runs it, and
//! the delete is idempotent, so that is harmless.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::state::AppState;

/// Starts the retention sweep on `state`, every `every`. Abort the handle to stop it.
#[must_use]
pub fn spawn_retention(state: AppState, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            sweep(&state).await;
        }
    })
}

/// One pass of every retention rule. Failures are logged and retried next pass.
pub async fn sweep(state: &AppState) {
    let now = state.clock().now();
    match state.identity().purge_expired_security_events(now).await {
        Ok(0) => {}
        Ok(deleted) => tracing::info!(deleted, "retention: expired security events deleted"),
        Err(err) => {
            tracing::warn!(error = %err, "retention: security events not swept; will retry");
        }
    }
    match state.audit().apply_retention(now).await {
        Ok(0) => {}
        Ok(chains) => tracing::info!(chains, "retention: audit events past retention blanked"),
        Err(err) => {
            tracing::warn!(error = %err, "retention: audit events not swept; will retry");
        }
    }
}
