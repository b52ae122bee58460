//! The CCPA right to know (D10, Cal. Civ. Code 1798.110): built from every
//! context's data map (`PersonalData::describe`) and the subject's records
//! (`PersonalData::export`), over the 12 months before the request was received.
//!
//! For each category of personal information collected about the person in that
//! period, the report states its sources, the purposes it is used for, the
//! recipients it is disclosed to (the care team, the practice, sub-processors such
//! as hosting, email and the payment processor, and named third parties), and the
//! specific pieces. A category described but with nothing collected in the period
//! is left out: the law asks what was collected about this person.

use chrono::{DateTime, Months, Utc};
use kernel::personal_data::{DataMapEntry, ExportedRecord, Source};
use kernel::{DataCategory, Purpose};
use serde::Serialize;

/// The period the right to know covers, in months before receipt.
pub const LOOKBACK_MONTHS: u32 = 12;

/// One context's contribution: its name, data map and the subject's records.
#[derive(Debug, Clone)]
pub struct ContextHoldings {
    /// The context, e.g. `clinical`.
    pub context: &'static str,
    /// Its data map.
    pub map: Vec<DataMapEntry>,
    /// The subject's records it holds.
    pub records: Vec<ExportedRecord>,
}

/// One category of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryReport {
    /// The category.
    pub category: DataCategory,
    /// What it is, per context that holds it.
    pub descriptions: Vec<String>,
    /// Where it came from.
    pub sources: Vec<Source>,
    /// What it is used for.
    pub purposes: Vec<Purpose>,
    /// Who receives it (including sub-processors).
    pub recipients: Vec<String>,
    /// The specific pieces collected in the period.
    pub pieces: Vec<ExportedRecord>,
}

/// The answer to a right-to-know request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KnowReport {
    /// The start of the period covered.
    pub period_start: DateTime<Utc>,
    /// The end of the period covered: the request's receipt.
    pub period_end: DateTime<Utc>,
    /// The categories collected in the period, in the kernel's category order.
    pub categories: Vec<CategoryReport>,
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// The report for a request received at `received_at`.
#[must_use]
pub fn report(holdings: &[ContextHoldings], received_at: DateTime<Utc>) -> KnowReport {
    let period_start = received_at
        .checked_sub_months(Months::new(LOOKBACK_MONTHS))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut categories = Vec::new();
    for category in DataCategory::ALL {
        let pieces: Vec<ExportedRecord> = holdings
            .iter()
            .flat_map(|h| h.records.iter())
            .filter(|r| {
                r.category == category
                    && r.created_at >= period_start
                    && r.created_at <= received_at
            })
            .cloned()
            .collect();
        if pieces.is_empty() {
            continue;
        }
        let mut entry = CategoryReport {
            category,
            descriptions: Vec::new(),
            sources: Vec::new(),
            purposes: Vec::new(),
            recipients: Vec::new(),
            pieces,
        };
        for holding in holdings {
            for line in holding.map.iter().filter(|l| l.category == category) {
                push_unique(
                    &mut entry.descriptions,
                    format!("{}: {}", holding.context, line.description),
                );
                for source in &line.sources {
                    push_unique(&mut entry.sources, *source);
                }
                for purpose in &line.purposes {
                    push_unique(&mut entry.purposes, *purpose);
                }
                for recipient in &line.recipients {
                    push_unique(&mut entry.recipients, recipient.to_string());
                }
            }
        }
        categories.push(entry);
    }
    KnowReport {
        period_start,
        period_end: received_at,
        categories,
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use kernel::ResourceRef;
    use kernel::personal_data::Retention;
    use uuid::Uuid;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid time")
            .with_timezone(&Utc)
    }

    fn line(
        category: DataCategory,
        source: Source,
        purpose: Purpose,
        to: &'static str,
    ) -> DataMapEntry {
        DataMapEntry {
            category,
            description: Cow::Borrowed("held"),
            sources: vec![source],
            purposes: vec![purpose],
            recipients: vec![Cow::Borrowed(to)],
            retention: Retention::WhileActive,
        }
    }

    fn record(category: DataCategory, created: &str) -> ExportedRecord {
        ExportedRecord {
            category,
            resource: ResourceRef::new("thing", Uuid::nil()),
            created_at: at(created),
            data: serde_json::Value::Null,
        }
    }

    #[test]
    fn the_report_covers_twelve_months_and_merges_the_contexts_maps() {
        let holdings = vec![
            ContextHoldings {
                context: "clinical",
                map: vec![line(
                    DataCategory::HealthRecord,
                    Source::Provider,
                    Purpose::Treatment,
                    "care team",
                )],
                records: vec![
                    record(DataCategory::HealthRecord, "2026-03-01T00:00:00Z"),
                    record(DataCategory::HealthRecord, "2025-11-23T23:59:59Z"),
                ],
            },
            ContextHoldings {
                context: "billing",
                map: vec![
                    line(
                        DataCategory::Billing,
                        Source::Subject,
                        Purpose::Payment,
                        "platform operator",
                    ),
                    line(
                        DataCategory::Payment,
                        Source::SubProcessor,
                        Purpose::Payment,
                        "payment processor",
                    ),
                ],
                records: vec![record(DataCategory::Payment, "2026-11-01T00:00:00Z")],
            },
            ContextHoldings {
                context: "identity",
                map: vec![line(
                    DataCategory::HealthRecord,
                    Source::Subject,
                    Purpose::Operations,
                    "care team",
                )],
                records: vec![],
            },
        ];
        let report = report(&holdings, at("2026-11-24T00:00:00Z"));
        assert_eq!(report.period_start, at("2025-11-24T00:00:00Z"));
        let categories: Vec<DataCategory> = report.categories.iter().map(|c| c.category).collect();
        // Billing contact data was described but nothing collected in the period.
        assert_eq!(
            categories,
            vec![DataCategory::HealthRecord, DataCategory::Payment]
        );
        let health = &report.categories[0];
        assert_eq!(
            health.pieces.len(),
            1,
            "the older record is outside the 12 months"
        );
        assert_eq!(health.sources, vec![Source::Provider, Source::Subject]);
        assert_eq!(
            health.purposes,
            vec![Purpose::Treatment, Purpose::Operations]
        );
        assert_eq!(health.recipients, vec!["care team".to_owned()]);
        assert_eq!(
            health.descriptions,
            vec!["clinical: held".to_owned(), "identity: held".to_owned()]
        );
        assert_eq!(
            report.categories[1].recipients,
            vec!["payment processor".to_owned()]
        );
    }
}
