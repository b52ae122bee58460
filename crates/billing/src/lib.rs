//! The billing context (issue #7): plans, subscriptions, invoices and payments,
//! with exact money.
//!
//! So far, [`money`]: amounts as `rust_decimal::Decimal` in a [`money::Currency`]
//! whose minor units follow ISO 4217, the one rounding rule named in the code, and
//! the stored form (integer minor units, exact on SQLite and PostgreSQL alike). The
//! plans, subscriptions, invoices, the payment-processor port and their storage and
//! API arrive with the rest of the issue.

pub mod money;

pub use money::{Currency, Money, MoneyError};
