//! Each law's clock: when a rights request is due, how far it may be extended and by
//! when the extension must be announced, and (CCPA) by when receipt must be
//! acknowledged. Pure functions of the receipt time, so they are tested with fixed
//! times across month and year boundaries.
//!
//! | regime and kind | due | extension | notice of extension |
//! |---|---|---|---|
//! | GDPR, every kind (Art. 12(3)) | one calendar month | two more months | within the first month |
//! | CCPA, every kind (Cal. Civ. Code §1798.130(a)(2); 11 CCR §7021) | 45 days; acknowledged within 10 business days | 45 more days | within the first 45 days |
//! | HIPAA access and portability (45 CFR 164.524(b)(2)) | 30 days | 30 more days | within the first 30 days |
//! | HIPAA amendment (45 CFR 164.526(b)(2)) | 60 days | 30 more days | within the first 60 days |
//! | HIPAA accounting of disclosures (45 CFR 164.528(c)(1)) | 60 days | 30 more days | within the first 60 days |
//! | HIPAA, any other kind | 30 days (Custodia's policy: the Privacy Rule sets none) | 30 more days | within the first 30 days |
//!
//! **Month ends (GDPR).** A period of months ends on the same day of the month, at
//! the same time of day, as the receipt; when that month has no such day (a request
//! received on 31 January), it ends on the month's last day (28 or 29 February), as
//! Regulation (EEC, Euratom) No 1182/71 Art. 3(2)(c) reads for periods expressed in
//! months. An extension of two months is counted from the receipt (three months in
//! all), not from the clamped first due date, so 31 January runs to 30 April.
//!
//! **Business days (CCPA acknowledgement).** Monday to Friday, counted from the day
//! after receipt (in UTC); public holidays are not subtracted, which only ever makes
//! the acknowledgement earlier than the law requires.
//!
//! **Nearing.** A request is listed for the privacy officer from [`NEARING`] before
//! its due time (its extended due time, once extended) until it is closed.

use chrono::{DateTime, Datelike, Duration, Months, Utc, Weekday};
use kernel::Regime;
use serde::Serialize;

use crate::request::RequestKind;

/// How long before its due time a request is listed as nearing: 7 days.
pub const NEARING: Duration = Duration::days(7);

/// A length of time as the law counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "unit", content = "count", rename_all = "snake_case")]
pub enum Period {
    /// Calendar days.
    Days(u32),
    /// Calendar months, month ends clamped (see the module's documentation).
    Months(u32),
}

impl Period {
    /// `start` plus this period.
    #[must_use]
    pub fn after(self, start: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Days(days) => start + Duration::days(i64::from(days)),
            Self::Months(months) => start
                .checked_add_months(Months::new(months))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }
}

/// One law's clock for one kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// The time to answer.
    pub due: Period,
    /// The whole time to answer once extended, counted from receipt.
    pub extended: Period,
    /// The citation the deadline comes from.
    pub citation: &'static str,
    /// CCPA: business days to acknowledge receipt.
    pub acknowledge_business_days: Option<u32>,
}

/// The rule for `kind` under `regime`.
#[must_use]
pub const fn rule(regime: Regime, kind: RequestKind) -> Rule {
    match regime {
        Regime::Gdpr => Rule {
            due: Period::Months(1),
            extended: Period::Months(3),
            citation: "GDPR Art. 12(3)",
            acknowledge_business_days: None,
        },
        Regime::Ccpa => Rule {
            due: Period::Days(45),
            extended: Period::Days(90),
            citation: "Cal. Civ. Code 1798.130(a)(2); 11 CCR 7021",
            acknowledge_business_days: Some(10),
        },
        Regime::Hipaa => match kind {
            RequestKind::Access | RequestKind::Portability => Rule {
                due: Period::Days(30),
                extended: Period::Days(60),
                citation: "45 CFR 164.524(b)(2)",
                acknowledge_business_days: None,
            },
            RequestKind::Rectification => Rule {
                due: Period::Days(60),
                extended: Period::Days(90),
                citation: "45 CFR 164.526(b)(2)",
                acknowledge_business_days: None,
            },
            RequestKind::AccountingOfDisclosures => Rule {
                due: Period::Days(60),
                extended: Period::Days(90),
                citation: "45 CFR 164.528(c)(1)",
                acknowledge_business_days: None,
            },
            _ => Rule {
                due: Period::Days(30),
                extended: Period::Days(60),
                citation: "Custodia policy (the HIPAA Privacy Rule sets no deadline for this request)",
                acknowledge_business_days: None,
            },
        },
    }
}

/// The deadlines of one request, from its receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Deadlines {
    /// When the answer is due.
    pub due_at: DateTime<Utc>,
    /// When the answer is due once extended.
    pub extended_due_at: DateTime<Utc>,
    /// The last moment an extension can be announced (the original due time).
    pub extension_notice_by: DateTime<Utc>,
    /// CCPA: when receipt must have been acknowledged.
    pub acknowledge_by: Option<DateTime<Utc>>,
    /// Where the deadline comes from.
    pub citation: &'static str,
}

impl Deadlines {
    /// The deadlines of a request of `kind` under `regime` received at `received_at`.
    #[must_use]
    pub fn of(regime: Regime, kind: RequestKind, received_at: DateTime<Utc>) -> Self {
        let rule = rule(regime, kind);
        let due_at = rule.due.after(received_at);
        Self {
            due_at,
            extended_due_at: rule.extended.after(received_at),
            extension_notice_by: due_at,
            acknowledge_by: rule
                .acknowledge_business_days
                .map(|days| add_business_days(received_at, days)),
            citation: rule.citation,
        }
    }

    /// The due time in force: the extended one once the request was extended.
    #[must_use]
    pub const fn in_force(&self, extended: bool) -> DateTime<Utc> {
        if extended {
            self.extended_due_at
        } else {
            self.due_at
        }
    }

    /// Whether an open request is to be listed for the privacy officer at `now`:
    /// from [`NEARING`] before its due time in force, and after it (overdue).
    #[must_use]
    pub fn is_nearing(&self, extended: bool, now: DateTime<Utc>) -> bool {
        now >= self.in_force(extended) - NEARING
    }

    /// Whether an extension announced at `now` is in time.
    #[must_use]
    pub fn may_extend(&self, now: DateTime<Utc>) -> bool {
        now <= self.extension_notice_by
    }
}

/// `start` plus `days` business days (Monday to Friday), counted from the next day;
/// the time of day is kept.
#[must_use]
pub fn add_business_days(start: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    let mut at = start;
    let mut left = days;
    while left > 0 {
        at += Duration::days(1);
        if !matches!(at.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid time")
            .with_timezone(&Utc)
    }

    #[test]
    fn gdpr_months_clamp_to_the_month_end_and_extensions_count_from_receipt() {
        for (received, due, extended) in [
            (
                "2026-01-15T09:30:00Z",
                "2026-02-15T09:30:00Z",
                "2026-04-15T09:30:00Z",
            ),
            (
                "2026-01-31T12:00:00Z",
                "2026-02-28T12:00:00Z",
                "2026-04-30T12:00:00Z",
            ),
            (
                "2028-01-31T12:00:00Z",
                "2028-02-29T12:00:00Z",
                "2028-04-30T12:00:00Z",
            ),
            (
                "2026-03-31T00:00:00Z",
                "2026-04-30T00:00:00Z",
                "2026-06-30T00:00:00Z",
            ),
            (
                "2026-12-31T23:59:59Z",
                "2027-01-31T23:59:59Z",
                "2027-03-31T23:59:59Z",
            ),
            (
                "2026-11-30T08:00:00Z",
                "2026-12-30T08:00:00Z",
                "2027-02-28T08:00:00Z",
            ),
        ] {
            let d = Deadlines::of(Regime::Gdpr, RequestKind::Erasure, at(received));
            assert_eq!(d.due_at, at(due), "{received}");
            assert_eq!(d.extended_due_at, at(extended), "{received}");
            assert_eq!(d.extension_notice_by, d.due_at);
            assert_eq!(d.acknowledge_by, None);
        }
    }

    #[test]
    fn ccpa_counts_45_days_and_acknowledges_within_10_business_days() {
        // Friday 18 December 2026: 45 days is 1 February 2027, 90 days 18 March.
        let d = Deadlines::of(
            Regime::Ccpa,
            RequestKind::CcpaKnow,
            at("2026-12-18T17:00:00Z"),
        );
        assert_eq!(d.due_at, at("2027-02-01T17:00:00Z"));
        assert_eq!(d.extended_due_at, at("2027-03-18T17:00:00Z"));
        // Ten weekdays after Friday 18 December: Friday 1 January 2027.
        assert_eq!(d.acknowledge_by, Some(at("2027-01-01T17:00:00Z")));
        // Received on a Saturday: the count starts on Monday.
        assert_eq!(
            add_business_days(at("2026-11-28T10:00:00Z"), 10),
            at("2026-12-11T10:00:00Z")
        );
        assert_eq!(
            add_business_days(at("2026-11-28T10:00:00Z"), 0),
            at("2026-11-28T10:00:00Z")
        );
    }

    #[test]
    fn hipaa_distinguishes_access_amendment_and_accounting() {
        let received = at("2026-12-15T10:00:00Z");
        let access = Deadlines::of(Regime::Hipaa, RequestKind::Access, received);
        assert_eq!(access.due_at, at("2027-01-14T10:00:00Z"));
        assert_eq!(access.extended_due_at, at("2027-02-13T10:00:00Z"));
        assert_eq!(access.citation, "45 CFR 164.524(b)(2)");
        let accounting = Deadlines::of(
            Regime::Hipaa,
            RequestKind::AccountingOfDisclosures,
            received,
        );
        assert_eq!(accounting.due_at, at("2027-02-13T10:00:00Z"));
        assert_eq!(accounting.extended_due_at, at("2027-03-15T10:00:00Z"));
        let amendment = Deadlines::of(Regime::Hipaa, RequestKind::Rectification, received);
        assert_eq!(amendment.due_at, accounting.due_at);
        assert_eq!(amendment.citation, "45 CFR 164.526(b)(2)");
        // Across a leap day.
        let leap = Deadlines::of(
            Regime::Hipaa,
            RequestKind::Access,
            at("2028-02-15T00:00:00Z"),
        );
        assert_eq!(leap.due_at, at("2028-03-16T00:00:00Z"));
    }

    #[test]
    fn requests_are_listed_seven_days_before_their_due_time_in_force() {
        let d = Deadlines::of(
            Regime::Hipaa,
            RequestKind::Access,
            at("2026-01-01T00:00:00Z"),
        );
        // Due 31 January; listed from 24 January.
        assert!(!d.is_nearing(false, at("2026-01-23T23:59:59Z")));
        assert!(d.is_nearing(false, at("2026-01-24T00:00:00Z")));
        assert!(
            d.is_nearing(false, at("2026-02-05T00:00:00Z")),
            "overdue stays listed"
        );
        // Extended: due 2 March; not listed again until 23 February.
        assert!(!d.is_nearing(true, at("2026-01-24T00:00:00Z")));
        assert!(d.is_nearing(true, at("2026-02-23T00:00:00Z")));
        assert!(d.may_extend(at("2026-01-31T00:00:00Z")));
        assert!(!d.may_extend(at("2026-01-31T00:00:01Z")));
    }
}
