//! The billing context (issue #7): plans, subscriptions, invoices and payments,
//! with exact money.
//!
//! - [`money`]: amounts as `rust_decimal::Decimal` in a [`money::Currency`] whose
//!   minor units follow ISO 4217, the one rounding rule named in the code, and the
//!   stored form (integer minor units, exact on SQLite and PostgreSQL alike).
//! - [`values`]: plan codes, countries, tax rates, processor tokens and labels, each
//!   refusing a card number typed in by mistake (C5).
//! - [`model`]: plans and versions, billing accounts, cards, subscriptions,
//!   invoices, payments, refunds and processor events.
//! - [`ports`]: the repository (one [`ports::Changes`] batch per operation, one
//!   transaction), the [`ports::PaymentProcessor`], the notifier and usage counts.
//! - [`service`]: the operations, their authorisation and audit.
//! - [`sandbox`]: the deterministic sandbox processor, the default adapter.
//! - [`memory`]: an in-memory repository for tests.
//! - [`personal_data`]: export and erasure of a billing contact, and invoice
//!   retention (R2).
//! - [`retention`]: the retention sweep that anonymises invoices past their
//!   period (R1).

pub mod memory;
pub mod model;
pub mod money;
pub mod personal_data;
pub mod ports;
pub mod retention;
pub mod sandbox;
pub mod service;
pub mod values;

pub use money::{Currency, Money, MoneyError};
pub use service::{BillingError, BillingService};
