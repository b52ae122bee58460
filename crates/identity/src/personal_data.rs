//! [`IdentityPersonalData`]: the kernel's [`PersonalData`] port for the identity
//! context, which the rights engine calls to describe, export, rectify, erase and
//! restrict one person's account data.
//!
//! Erasure keeps the `users` row (other records point at it) but overwrites its
//! name, email and phone and marks it erased; credentials, sessions, one-time
//! tokens, memberships, profile, preferences and queued notices are deleted.
//! Security events are kept for their retention period with the person replaced
//! by a keyed pseudonym: still useful to see an attack, no longer about anyone
//! named. Deletion requests are kept as the record of what was asked and done.
//! The subject's data key is destroyed by the rights engine once every context
//! has erased, so sealed copies in backups become noise.

use std::borrow::Cow;

use async_trait::async_trait;
use chrono::TimeDelta;
use kernel::personal_data::{
    DataMapEntry, ErasureOutcome, ExportedRecord, PersonalDataError, RecordFate, Rectification,
    RestrictionScope, Retention, Source,
};
use kernel::{
    DataCategory, LegalGround, PersonalData, Purpose, Regime, RequestContext, ResourceRef,
    SubjectId,
};
use serde_json::{Value, json};

use crate::model::User;
use crate::ports::RepositoryError;
use crate::service::IdentityPorts;
use crate::values::{PersonName, Phone, Profession};

/// Why security events outlive the account, pseudonymised.
pub const SECURITY_EVENT_GROUND: LegalGround = LegalGround::new(
    Regime::Gdpr,
    "GDPR Art. 6(1)(f) and Recital 49; HIPAA 45 CFR 164.308(a)(1)(ii)(D)",
    "Records of sign-ins and security changes are kept, without your name, for a limited \
     period to detect and investigate attacks on accounts.",
);

/// Why a deletion request outlives the account it deleted.
pub const DELETION_REQUEST_GROUND: LegalGround = LegalGround::new(
    Regime::Gdpr,
    "GDPR Art. 5(2) and Art. 12",
    "The record that you asked for deletion, and when, is kept to show the request was honoured.",
);

/// The identity context's [`PersonalData`].
#[derive(Clone)]
pub struct IdentityPersonalData {
    ports: IdentityPorts,
    security_event_retention: TimeDelta,
}

impl std::fmt::Debug for IdentityPersonalData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityPersonalData")
            .finish_non_exhaustive()
    }
}

impl IdentityPersonalData {
    /// The port over `ports`, keeping security events `security_event_retention`.
    #[must_use]
    pub const fn new(ports: IdentityPorts, security_event_retention: TimeDelta) -> Self {
        Self {
            ports,
            security_event_retention,
        }
    }

    /// The live (not erased) account of `subject`.
    async fn account(&self, subject: SubjectId) -> Result<Option<User>, PersonalDataError> {
        match self
            .ports
            .accounts
            .account_of_subject(subject)
            .await
            .map_err(failed)?
        {
            Some((id, false)) => self.ports.repository.user(id).await.map_err(failed),
            Some((_, true)) | None => Ok(None),
        }
    }
}

fn failed(err: RepositoryError) -> PersonalDataError {
    PersonalDataError::Unavailable(Box::new(err))
}

fn entry(
    category: DataCategory,
    description: &'static str,
    sources: Vec<Source>,
    purposes: Vec<Purpose>,
    recipients: &[&'static str],
    retention: Retention,
) -> DataMapEntry {
    DataMapEntry {
        category,
        description: Cow::Borrowed(description),
        sources,
        purposes,
        recipients: recipients.iter().map(|r| Cow::Borrowed(*r)).collect(),
        retention,
    }
}

fn record(
    category: DataCategory,
    kind: &'static str,
    id: uuid::Uuid,
    created_at: chrono::DateTime<chrono::Utc>,
    data: Value,
) -> ExportedRecord {
    ExportedRecord {
        category,
        resource: ResourceRef::new(kind, id),
        created_at,
        data,
    }
}

#[async_trait]
impl PersonalData for IdentityPersonalData {
    fn context(&self) -> &'static str {
        "identity"
    }

    fn describe(&self) -> Vec<DataMapEntry> {
        let days = u32::try_from(self.security_event_retention.num_days()).unwrap_or(u32::MAX);
        vec![
            entry(
                DataCategory::Identity,
                "Your name, profession, date of birth (clients), account status, roles in \
                 practices, invitations, guardianships and deletion requests or flags.",
                vec![Source::Subject, Source::Provider],
                vec![Purpose::Operations, Purpose::Treatment],
                &["the practices you belong to", "hosting sub-processor"],
                Retention::WhileActive,
            ),
            entry(
                DataCategory::Contact,
                "Your email address and phone number.",
                vec![Source::Subject, Source::Provider],
                vec![Purpose::Operations],
                &[
                    "the practices you belong to",
                    "email sub-processor",
                    "hosting sub-processor",
                ],
                Retention::WhileActive,
            ),
            entry(
                DataCategory::Credentials,
                "Your password (only as a slow salted hash), MFA enrolment, recovery codes (as \
                 hashes), failed sign-in count and sessions \
                 (times, address, browser).",
                vec![Source::Subject, Source::Automatic],
                vec![Purpose::Operations],
                &["hosting sub-processor"],
                Retention::WhileActive,
            ),
            entry(
                DataCategory::Profile,
                "Your picture reference, professional credentials and practice information.",
                vec![Source::Subject],
                vec![Purpose::Operations, Purpose::Treatment],
                &["the practices you belong to", "hosting sub-processor"],
                Retention::WhileActive,
            ),
            entry(
                DataCategory::Preferences,
                "Your language, time zone, units, theme and reminder settings.",
                vec![Source::Subject],
                vec![Purpose::Operations],
                &["hosting sub-processor"],
                Retention::WhileActive,
            ),
            entry(
                DataCategory::SecurityEvents,
                "Sign-ins, failures, lockouts, session and account changes, with time, address, \
                 browser and country.",
                vec![Source::Automatic],
                vec![Purpose::Operations],
                &["hosting sub-processor"],
                Retention::Period {
                    days,
                    ground: SECURITY_EVENT_GROUND,
                },
            ),
            entry(
                DataCategory::Communications,
                "Transactional notices sent to you (verification, security alerts, account notices).",
                vec![Source::System],
                vec![Purpose::Operations],
                &["email sub-processor", "hosting sub-processor"],
                Retention::WhileActive,
            ),
        ]
    }

    async fn export(
        &self,
        _ctx: &RequestContext,
        subject: SubjectId,
    ) -> Result<Vec<ExportedRecord>, PersonalDataError> {
        let Some(person) = self.account(subject).await? else {
            return Ok(Vec::new());
        };
        let id = person.id;
        let mut out = vec![
            record(
                DataCategory::Identity,
                "account",
                id.as_uuid(),
                person.created_at,
                json!({
                    "name": person.name.as_str(),
                    "profession": person.profession.as_ref().map(Profession::as_str),
                    "status": person.status.as_str(),
                    "email_verified_at": person.email_verified_at,
                }),
            ),
            record(
                DataCategory::Contact,
                "account",
                id.as_uuid(),
                person.created_at,
                json!({
                    "email": person.email.as_str(),
                    "phone": person.phone.as_ref().map(Phone::as_str),
                }),
            ),
        ];
        let repository = &self.ports.repository;
        for m in repository.memberships(id).await.map_err(failed)? {
            out.push(record(
                DataCategory::Identity,
                "membership",
                m.organisation.as_uuid(),
                m.created_at,
                json!({ "organisation_id": m.organisation.as_uuid(), "role": m.role.as_str() }),
            ));
        }
        if let Some((_, credentials)) =
            repository.user_with_credentials(id).await.map_err(failed)?
        {
            out.push(record(
                DataCategory::Credentials,
                "credentials",
                id.as_uuid(),
                person.created_at,
                json!({
                    "password_set": credentials.password_hash.is_some(),
                    "failed_attempts": credentials.failed_attempts,
                    "locked_until": credentials.locked_until,
                }),
            ));
        }
        if let Some(mfa) = self.ports.credentials.mfa(id).await.map_err(failed)? {
            out.push(record(
                DataCategory::Credentials,
                "mfa_credential",
                id.as_uuid(),
                person.created_at,
                json!({ "enabled": mfa.is_on(), "confirmed_at": mfa.confirmed_at }),
            ));
        }
        for s in self.ports.accounts.all_sessions(id).await.map_err(failed)? {
            out.push(record(
                DataCategory::Credentials,
                "session",
                s.id.as_uuid(),
                s.created_at,
                json!({
                    "organisation_id": s.organisation.as_uuid(),
                    "last_seen_at": s.last_seen_at,
                    "expires_at": s.expires_at,
                    "revoked_at": s.revoked_at,
                    "client_address": s.client_address.map(|a| a.to_string()),
                    "user_agent": s.user_agent,
                }),
            ));
        }
        for e in self
            .ports
            .events
            .events_of(id, u32::MAX)
            .await
            .map_err(failed)?
        {
            out.push(record(
                DataCategory::SecurityEvents,
                "security_event",
                e.id,
                e.at,
                json!({
                    "kind": e.kind.as_str(),
                    "client_address": e.client_address.map(|a| a.to_string()),
                    "user_agent": e.user_agent,
                    "country": e.country,
                }),
            ));
        }
        if let Some(profile) = self.ports.profiles.profile(id).await.map_err(failed)? {
            out.push(record(
                DataCategory::Profile,
                "profile",
                id.as_uuid(),
                person.created_at,
                serde_json::to_value(&profile)
                    .map_err(|e| PersonalDataError::Unavailable(Box::new(e)))?,
            ));
        }
        if let Some(preferences) = self.ports.profiles.preferences(id).await.map_err(failed)? {
            out.push(record(
                DataCategory::Preferences,
                "preferences",
                id.as_uuid(),
                person.created_at,
                serde_json::to_value(&preferences)
                    .map_err(|e| PersonalDataError::Unavailable(Box::new(e)))?,
            ));
        }
        for n in self.ports.accounts.notices(id).await.map_err(failed)? {
            out.push(record(
                DataCategory::Communications,
                "notice",
                n.id,
                n.queued_at,
                json!({ "kind": n.kind, "sent_at": n.sent_at }),
            ));
        }
        if let Some(born) = self.ports.people.date_of_birth(id).await.map_err(failed)? {
            out.push(record(
                DataCategory::Identity,
                "date_of_birth",
                id.as_uuid(),
                person.created_at,
                json!({ "date_of_birth": born.to_stored() }),
            ));
        }
        for g in self
            .ports
            .accounts
            .guardianships(id)
            .await
            .map_err(failed)?
        {
            let (other, they_are) = if g.minor == id {
                (g.guardian, "guardian")
            } else {
                (g.minor, "minor")
            };
            out.push(record(
                DataCategory::Identity,
                "guardianship",
                other.as_uuid(),
                g.linked_at,
                json!({
                    "other_person_id": other.as_uuid(),
                    "they_are": they_are,
                    "organisation_id": g.organisation.as_uuid(),
                }),
            ));
        }
        for i in self.ports.people.invitations(id).await.map_err(failed)? {
            out.push(record(
                DataCategory::Identity,
                "invitation",
                i.id,
                i.created_at,
                json!({
                    "organisation_id": i.organisation.as_uuid(),
                    "role": i.role.as_str(),
                    "guardian_of": i.guardian_of.map(|minor| minor.as_uuid()),
                    "accepted_at": i.accepted_at,
                    "declined_at": i.declined_at,
                }),
            ));
        }
        if let Some(flag) = self.ports.people.deletion_flag(id).await.map_err(failed)? {
            out.push(record(
                DataCategory::Identity,
                "deletion_flag",
                id.as_uuid(),
                flag.flagged_at,
                json!({
                    "organisation_id": flag.organisation.as_uuid(),
                    "reason": "reported to be under 13",
                }),
            ));
        }
        for r in self
            .ports
            .accounts
            .deletion_requests(id)
            .await
            .map_err(failed)?
        {
            out.push(record(
                DataCategory::Identity,
                "deletion_request",
                r.id,
                r.requested_at,
                json!({ "status": "received" }),
            ));
        }
        Ok(out)
    }

    async fn rectify(
        &self,
        _ctx: &RequestContext,
        subject: SubjectId,
        change: Rectification,
    ) -> Result<(), PersonalDataError> {
        let Some(mut person) = self.account(subject).await? else {
            return Err(PersonalDataError::NotFound);
        };
        if change.resource != ResourceRef::new("account", person.id.as_uuid()) {
            return Err(PersonalDataError::NotFound);
        }
        let invalid =
            |e: crate::values::InvalidValue| PersonalDataError::Invalid(Cow::Owned(e.to_string()));
        let text = change.value.as_str();
        match (change.field.as_str(), text) {
            ("name", Some(raw)) => person.name = PersonName::parse(raw).map_err(invalid)?,
            ("profession", Some(raw)) => {
                person.profession = Some(Profession::parse(raw).map_err(invalid)?);
            }
            ("phone", Some(raw)) => person.phone = Some(Phone::parse(raw).map_err(invalid)?),
            ("phone", None) if change.value.is_null() => person.phone = None,
            ("email", _) => {
                return Err(PersonalDataError::Invalid(Cow::Borrowed(
                    "an email is corrected through the email-change flow, which proves the new address",
                )));
            }
            ("name" | "profession" | "phone", _) => {
                return Err(PersonalDataError::Invalid(Cow::Borrowed(
                    "the value must be a string",
                )));
            }
            _ => {
                return Err(PersonalDataError::Invalid(Cow::Borrowed(
                    "only name, phone and profession can be corrected here",
                )));
            }
        }
        self.ports
            .accounts
            .update_details(&person)
            .await
            .map_err(failed)
    }

    async fn erase(
        &self,
        _ctx: &RequestContext,
        subject: SubjectId,
    ) -> Result<Vec<ErasureOutcome>, PersonalDataError> {
        let Some((id, _)) = self
            .ports
            .accounts
            .account_of_subject(subject)
            .await
            .map_err(failed)?
        else {
            return Ok(Vec::new());
        };
        let erased = self.ports.accounts.erase(id).await.map_err(failed)?;
        let mut outcomes = vec![ErasureOutcome {
            category: DataCategory::Identity,
            resource: ResourceRef::new("account", id.as_uuid()),
            fate: RecordFate::Anonymised,
        }];
        outcomes.extend(erased.deleted.iter().map(|(kind, record)| ErasureOutcome {
            category: category_of(kind),
            resource: ResourceRef::new(kind, *record),
            fate: RecordFate::Deleted,
        }));
        outcomes.extend(
            erased
                .pseudonymised_events
                .iter()
                .map(|(event, at)| ErasureOutcome {
                    category: DataCategory::SecurityEvents,
                    resource: ResourceRef::new("security_event", *event),
                    fate: RecordFate::Retained {
                        ground: SECURITY_EVENT_GROUND,
                        until: Some(*at + self.security_event_retention),
                    },
                }),
        );
        outcomes.extend(erased.kept_requests.iter().map(|request| ErasureOutcome {
            category: DataCategory::Identity,
            resource: ResourceRef::new("deletion_request", *request),
            fate: RecordFate::Retained {
                ground: DELETION_REQUEST_GROUND,
                until: None,
            },
        }));
        Ok(outcomes)
    }

    async fn restrict(
        &self,
        _ctx: &RequestContext,
        _subject: SubjectId,
        _scope: RestrictionScope,
        _lift: bool,
    ) -> Result<(), PersonalDataError> {
        // Account data is what lets the person sign in and be told of security
        // events; processing it further than storage is the account itself. A person
        // restricts it by deactivating the account (a deletion request), and
        // restricts every other use through the contexts that make one.
        Err(PersonalDataError::Invalid(Cow::Borrowed(
            "identity data only runs the account itself; deactivate the account to stop it",
        )))
    }
}

/// The category of a deleted record, by its kind.
fn category_of(kind: &str) -> DataCategory {
    match kind {
        "profile" => DataCategory::Profile,
        "preferences" => DataCategory::Preferences,
        "notice" => DataCategory::Communications,
        "membership" | "date_of_birth" | "guardianship" | "deletion_flag" | "invitation" => {
            DataCategory::Identity
        }
        _ => DataCategory::Credentials,
    }
}
