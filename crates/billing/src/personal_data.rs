//! [`BillingPersonalData`]: the kernel's [`kernel::PersonalData`] port for billing,
//! and how long invoices are kept ([`InvoiceRetention`]).

use kernel::{LegalGround, Regime};

/// How long invoices are kept after they are issued, and the legal ground.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceRetention {
    /// The period, in days.
    pub days: u32,
    /// Why: the law that requires it.
    pub ground: LegalGround,
}

/// Seven years, in days (7 × 365 + 2 leap days).
pub const SEVEN_YEARS_DAYS: u32 = 2_557;

impl Default for InvoiceRetention {
    fn default() -> Self {
        Self {
            days: SEVEN_YEARS_DAYS,
            ground: LegalGround::new(
                Regime::Gdpr,
                "GDPR Art. 17(3)(b) and Art. 6(1)(c); 26 CFR 1.6001-1(e); Council Directive 2006/112/EC Art. 247",
                "Tax and accounting law requires invoices to be kept, as issued, for seven years.",
            ),
        }
    }
}
