//! Background jobs the server runs beside the API. The billing job renews
//! subscriptions, ends trials and cancelled ones, retries failed payments on the
//! dunning schedule and forgets `Idempotency-Key`s after 24 hours. The retention sweep
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

/// How many subscriptions one pass of the billing job steps at most; the next
/// pass continues.
pub const BILLING_BATCH: u32 = 500;

/// Starts the billing job on `state`, every `every`: [`billing_pass`]. Abort the
/// handle to stop it.
#[must_use]
pub fn spawn_billing(state: AppState, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            billing_pass(&state).await;
        }
    })
}

/// One pass of the billing job, as the system: the work due now (renewals, trial
/// ends, cancellations at period end, dunning retries), then the purge of
/// `Idempotency-Key`s past their 24 hours. Failures are logged and retried next
/// pass; with several server processes each runs it, and every step is one
/// optimistic transaction, so a subscription is stepped once.
pub async fn billing_pass(state: &AppState) {
    let now = state.clock().now();
    let ctx = kernel::RequestContext::system("billing", kernel::Purpose::Payment, now);
    match state.billing().run_due(&ctx, BILLING_BATCH).await {
        Ok(report) if report == billing::service::RunReport::default() => {}
        Ok(report) => tracing::info!(
            renewed = report.renewed,
            converted = report.converted,
            failed = report.failed,
            canceled = report.canceled,
            expired = report.expired,
            "billing: due work done"
        ),
        Err(err) => tracing::warn!(error = %err, "billing: due work not done; will retry"),
    }
    match state.idempotency().purge(now).await {
        Ok(0) => {}
        Ok(purged) => tracing::info!(purged, "billing: expired idempotency keys deleted"),
        Err(err) => {
            tracing::warn!(error = %err, "billing: idempotency keys not purged; will retry");
        }
    }
}
