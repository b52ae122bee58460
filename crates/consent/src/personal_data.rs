//! The consent context's [`PersonalData`]: the data map, the full consent history
//! on export, and erasure that destroys the evidence and keeps the proof of consent
//! the law requires, pseudonymised.
//!
//! Erasure removes, for the subject: every event's evidence (client address, user
//! agent, document reference, and the salt of its digest), every authorisation
//! record, the projection, and the link from the subject to their chain. The events
//! stay under the chain's random id: what was agreed to, when, under which policy
//! version and on whose authority, with no way back to the person (GDPR Art. 7(1)
//! and 17(3)(b); 45 CFR 164.530(j) keeps authorisations' documentation six years).

use std::borrow::Cow;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kernel::personal_data::{
    DataMapEntry, ErasureOutcome, ExportedRecord, PersonalDataError, RecordFate, Rectification,
    RestrictionScope, Retention, Source,
};
use kernel::{
    DataCategory, LegalGround, PersonalData, Purpose, Regime, RequestContext, ResourceRef,
    SubjectId,
};
use serde_json::json;

use crate::decision::evidence_id;
use crate::ledger::{Channel, LedgerAction, hex};
use crate::service::{Change, ConsentService, ConsentServiceError};

/// How long the pseudonymised proof of consent is kept: six years (2,192 days).
pub const PROOF_RETENTION_DAYS: u32 = 2_192;

/// The ground on which the pseudonymised ledger outlives erasure.
pub const PROOF_GROUND: LegalGround = LegalGround::new(
    Regime::Gdpr,
    "GDPR Art. 7(1), 17(3)(b); 45 CFR 164.530(j)",
    "We must be able to show what you agreed to and when; the record is kept without anything that identifies you.",
);

/// The consent context as a holder of personal data.
#[derive(Debug, Clone)]
pub struct ConsentPersonalData {
    service: ConsentService,
}

impl ConsentPersonalData {
    /// The port over `service`.
    #[must_use]
    pub const fn new(service: ConsentService) -> Self {
        Self { service }
    }
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> PersonalDataError {
    PersonalDataError::Unavailable(Box::new(e))
}

fn time(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_micros(micros)
}

#[async_trait]
impl PersonalData for ConsentPersonalData {
    fn context(&self) -> &'static str {
        "consent"
    }

    fn describe(&self) -> Vec<DataMapEntry> {
        vec![DataMapEntry {
            category: DataCategory::Consent,
            description: Cow::Borrowed(
                "Your consents, withdrawals, objections and restrictions, each with the \
                 policy version, who acted, the channel and its evidence (address, user \
                 agent, document reference); HIPAA authorisations you signed; your \
                 provider's attestation that you authorised sharing with the service.",
            ),
            sources: vec![Source::Subject, Source::Provider, Source::Automatic],
            purposes: vec![Purpose::Legal, Purpose::SubjectRequest, Purpose::Oversight],
            recipients: vec![Cow::Borrowed("your practice"), Cow::Borrowed("auditors")],
            retention: Retention::Period {
                days: PROOF_RETENTION_DAYS,
                ground: PROOF_GROUND,
            },
        }]
    }

    async fn export(
        &self,
        _ctx: &RequestContext,
        subject: SubjectId,
    ) -> Result<Vec<ExportedRecord>, PersonalDataError> {
        let repository = self.service.repository();
        let mut out = Vec::new();
        for entry in repository.history(subject).await.map_err(unavailable)? {
            let e = &entry.event;
            let b = &e.body;
            out.push(ExportedRecord {
                category: DataCategory::Consent,
                resource: ResourceRef::new("consent_event", evidence_id(subject, e.sequence)),
                created_at: time(b.recorded_at).unwrap_or_default(),
                data: json!({
                    "sequence": e.sequence,
                    "action": b.action.as_str(),
                    "purpose": b.purpose.map(Purpose::as_str),
                    "recipient": b.recipient,
                    "category": b.category.map(DataCategory::as_str),
                    "authority": b.authority.kind(),
                    "acted_by": b.authority.user().map(|u| u.to_string()),
                    "channel": b.channel.as_str(),
                    "policy_version": b.policy_version,
                    "recorded_at": time(b.recorded_at),
                    "effective_at": time(b.effective_at),
                    "expires_at": b.expires_at.and_then(time),
                    "evidence": entry.evidence.as_ref().map(|s| json!({
                        "client_address": s.evidence.client_address,
                        "user_agent": s.evidence.user_agent,
                        "document": s.evidence.document,
                    })),
                    "hash": hex(&e.hash),
                }),
            });
        }
        for a in repository
            .authorisations(subject)
            .await
            .map_err(unavailable)?
        {
            out.push(ExportedRecord {
                category: DataCategory::Consent,
                resource: ResourceRef::new("hipaa_authorisation", a.id),
                created_at: time(a.recorded_at).unwrap_or_default(),
                data: serde_json::to_value(&a).map_err(unavailable)?,
            });
        }
        Ok(out)
    }

    async fn rectify(
        &self,
        _ctx: &RequestContext,
        _subject: SubjectId,
        _change: Rectification,
    ) -> Result<(), PersonalDataError> {
        Err(PersonalDataError::Invalid(Cow::Borrowed(
            "the consent history is append-only: record a new consent, withdrawal or \
             objection instead of correcting an old one",
        )))
    }

    async fn erase(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
    ) -> Result<Vec<ErasureOutcome>, PersonalDataError> {
        let repository = self.service.repository();
        let history = repository.history(subject).await.map_err(unavailable)?;
        let authorisations = repository
            .authorisations(subject)
            .await
            .map_err(unavailable)?;
        repository
            .erase(subject, ctx.at().timestamp_micros())
            .await
            .map_err(unavailable)?;
        let until = time(
            ctx.at().timestamp_micros() + i64::from(PROOF_RETENTION_DAYS) * 86_400 * 1_000_000,
        );
        let mut out = Vec::new();
        for entry in history {
            let resource =
                ResourceRef::new("consent_event", evidence_id(subject, entry.event.sequence));
            out.push(ErasureOutcome {
                category: DataCategory::Consent,
                resource,
                fate: RecordFate::Retained {
                    ground: PROOF_GROUND,
                    until,
                },
            });
            if entry.evidence.is_some() {
                out.push(ErasureOutcome {
                    category: DataCategory::Consent,
                    resource: ResourceRef::new("consent_evidence", resource.id),
                    fate: RecordFate::Deleted,
                });
            }
        }
        for a in authorisations {
            out.push(ErasureOutcome {
                category: DataCategory::Consent,
                resource: ResourceRef::new("hipaa_authorisation", a.id),
                fate: RecordFate::Deleted,
            });
        }
        Ok(out)
    }

    async fn restrict(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        scope: RestrictionScope,
        lift: bool,
    ) -> Result<(), PersonalDataError> {
        let categories = match scope {
            RestrictionScope::All => DataCategory::ALL.to_vec(),
            RestrictionScope::Categories(c) => c,
        };
        let restricted = self
            .service
            .repository()
            .subject(subject)
            .await
            .map_err(unavailable)?
            .map(|r| r.state.restrictions().clone())
            .unwrap_or_default();
        for category in categories {
            if restricted.contains(&category) != lift {
                continue;
            }
            let action = if lift {
                LedgerAction::LiftRestriction
            } else {
                LedgerAction::Restrict
            };
            let change = Change {
                category: Some(category),
                ..Change::by_person(action, Channel::Api)
            };
            self.service
                .record(ctx, subject, &change)
                .await
                .map_err(|e| match e {
                    ConsentServiceError::Ledger(l) => {
                        PersonalDataError::Invalid(Cow::Owned(l.to_string()))
                    }
                    other => unavailable(other),
                })?;
        }
        Ok(())
    }
}
