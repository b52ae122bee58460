//! Sign-in throttling per client address: a fixed window of attempts per address,
//! in memory. Per-account lockout is durable and lives with the account; this
//! guards against one address spraying many accounts. With several server
//! processes each keeps its own window, so the effective limit is per process.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};

/// Attempts allowed per address per window.
#[derive(Debug)]
pub struct AddressThrottle {
    limit: u32,
    window: TimeDelta,
    windows: Mutex<HashMap<IpAddr, (DateTime<Utc>, u32)>>,
}

/// The most addresses remembered before expired windows are pruned.
const PRUNE_AT: usize = 10_000;

impl AddressThrottle {
    /// Allows `limit` attempts per `window` per address.
    #[must_use]
    pub fn new(limit: u32, window: TimeDelta) -> Self {
        Self {
            limit,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one attempt from `address` at `now`; `Err(retry_after)` when the
    /// address has used up its window.
    ///
    /// # Errors
    /// The time to wait before the window resets.
    pub fn attempt(&self, address: IpAddr, now: DateTime<Utc>) -> Result<(), TimeDelta> {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() >= PRUNE_AT {
            let window = self.window;
            windows.retain(|_, (start, _)| now - *start < window);
        }
        let entry = windows.entry(address).or_insert((now, 0));
        if now - entry.0 >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            return Err(self.window - (now - entry.0));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_held_to_its_window_and_others_are_not() {
        let throttle = AddressThrottle::new(3, TimeDelta::minutes(5));
        let now = Utc::now();
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        for _ in 0..3 {
            throttle.attempt(a, now).expect("within the limit");
        }
        let wait = throttle
            .attempt(a, now + TimeDelta::minutes(1))
            .expect_err("throttled");
        assert_eq!(wait, TimeDelta::minutes(4));
        throttle
            .attempt(b, now)
            .expect("another address is unaffected");
        throttle
            .attempt(a, now + TimeDelta::minutes(5))
            .expect("a new window");
    }
}
