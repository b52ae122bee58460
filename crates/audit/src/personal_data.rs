//! [`AuditPersonalData`]: the kernel's [`kernel::PersonalData`] port for the audit
//! log, and [`UserOfSubject`], the lookup it finds the person behind a subject by.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kernel::personal_data::{
    DataMapEntry, ErasureOutcome, ExportedRecord, PersonalDataError, RecordFate, Rectification,
    RestrictionScope, Retention, Source,
};
use kernel::{
    DataCategory, LegalGround, PersonalData, Purpose, Regime, RequestContext, ResourceRef,
    SubjectId, UserId,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Hash;
use crate::event::{ChainId, SealedEvent};
use crate::ports::{AuditStoreError, EventCursor, EventFilter};
use crate::service::{AuditService, access_entry, disclosure_entry};

/// Why the access log is kept, and kept through an erasure.
pub const ACCESS_LOG_GROUND: LegalGround = LegalGround::new(
    Regime::Hipaa,
    "45 CFR 164.312(b), 164.316(b)(2)(i), 164.528(a); GDPR Art. 17(3)(b) and (e)",
    "The record of who accessed your health information, when and why, and to whom it \
     was disclosed, is documentation HIPAA requires to be kept for at least six years. \
     On erasure your identifiers in it are replaced by a pseudonym; the entries stay \
     until that period ends.",
);

/// The resource kind of one event of the log in an export or erasure report.
pub const ACCESS_EVENT: &str = "access_event";
/// The resource kind of one disclosure's details.
pub const DISCLOSURE: &str = "disclosure";

/// Domain of [`event_ref`].
const EVENT_REF_DOMAIN: &[u8] = b"custodia.audit.event.ref";

/// Events read per page.
const PAGE: u32 = 500;

/// The stable id an event is reported under: the first 16 bytes of
/// `SHA-256("custodia.audit.event.ref" || chain (16 bytes) || sequence (8 bytes,
/// big-endian))` as a UUIDv8. Anyone holding the event's chain and sequence number
/// (both are exported beside it) can recompute it; a disclosure's details are
/// reported under the id of their `disclose` event.
#[must_use]
pub fn event_ref(chain: ChainId, sequence: u64) -> Uuid {
    let digest = Hash::of(&[EVENT_REF_DOMAIN, chain.as_bytes(), &sequence.to_be_bytes()]);
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&digest.as_bytes()[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Finds the person (the user account) behind a data subject, so the events they
/// performed themselves can be exported and pseudonymised too. Implemented in the
/// composition root from identity's accounts; an erased account is still found.
#[async_trait]
pub trait UserOfSubject: Send + Sync {
    /// The user who is `subject`, if there is one.
    async fn user_of(
        &self,
        subject: SubjectId,
    ) -> Result<Option<UserId>, Box<dyn std::error::Error + Send + Sync>>;
}

/// The audit context's part of the rights engine's [`PersonalData`] port.
///
/// A person's part of the log is every event still held (not yet blanked by
/// retention) that is *about* them (they are its subject) or *by* them (they are
/// its actor, e.g. reading their own record, or, for a practice member, the
/// accesses they made), and the details of every disclosure of their data. It is
/// read straight from the [`crate::AuditRepository`], page by page: the export and
/// the erasure report record no events of their own (the rights engine audits the
/// request).
///
/// # Export schema
///
/// - `access_event` (category `access_log`), one per event, with the id
///   [`event_ref`] derives from its chain and sequence number: `{"chain",
///   "sequence", "at", "about_you", "by_you", "actor" (the person's user id, or
///   null for an API key, the system or an erased person), "actor_kind",
///   "actor_erased", "roles", "organisation", "action", "resource_kind",
///   "purpose", "denied" (the reason, or null)}`, newest first. Neither the
///   subject nor the record id is exported: an event *by* the person may be about
///   someone else;
/// - `disclosure` (category `access_log`), one per disclosure in the accounting
///   (HIPAA §164.528), under its event's id: `{"chain", "sequence",
///   "organisation", "recipient", "description", "legal_basis", "disclosed_at",
///   "purpose"}`, oldest first. Details whose key was destroyed are gone and
///   not exported.
///
/// # Erasure
///
/// The person's subject id, and their user id where they acted, are replaced in
/// every event by their keyed pseudonym, and their client addresses dropped, in one
/// transaction that also appends the `erase` event announcing the pseudonym
/// ([`AuditService::erase_subject`]); the chains, Merkle roots and signed
/// checkpoints still verify. Each event is reported
/// [`RecordFate::Retained`] on [`ACCESS_LOG_GROUND`] until its time plus the
/// configured retention, not `Anonymised`: the entry is still personal data
/// (the pseudonym is the same in every event, the key holder can re-derive it, and
/// the record ids in it may lead to retained records), and the law requires the
/// entry itself to be kept. The disclosures' sealed details are deleted (their
/// key is destroyed with the person) and reported [`RecordFate::Deleted`]; the
/// `disclose` event stays, pseudonymised.
///
/// Erasure is idempotent: a second one finds nothing under the person's ids and
/// reports nothing, though it still announces the pseudonym again, so no row left
/// unreadable (a disclosure whose key is already destroyed) keeps the plain id.
/// An event committed while the erasure runs is pseudonymised too, but may be
/// missing from the report.
///
/// # Rectification
///
/// Refused: the log is append-only and tamper-evident. A corrected record is
/// corrected in its own context, and that correction is itself a new event.
///
/// # Restriction
///
/// Changes nothing: the log is kept on a legal obligation (HIPAA §164.312(b),
/// §164.316(b)(2)) and used only for oversight, the person's own access report and
/// accounting, and legal claims — the storage and uses GDPR Art. 18(2) still allows
/// under a restriction.
pub struct AuditPersonalData {
    service: AuditService,
    users: Arc<dyn UserOfSubject>,
}

impl std::fmt::Debug for AuditPersonalData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditPersonalData")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// One held event and how it concerns the person.
struct Held {
    event: SealedEvent,
    about: bool,
    by: bool,
}

fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> PersonalDataError {
    PersonalDataError::Unavailable(Box::new(err))
}

impl AuditPersonalData {
    /// The port over `service`'s log, finding people through `users`.
    #[must_use]
    pub fn new(service: AuditService, users: Arc<dyn UserOfSubject>) -> Self {
        Self { service, users }
    }

    async fn user(&self, subject: SubjectId) -> Result<Option<UserId>, PersonalDataError> {
        self.users
            .user_of(subject)
            .await
            .map_err(PersonalDataError::Unavailable)
    }

    /// Every held event matching `filter`, newest first.
    async fn all_events(&self, filter: EventFilter) -> Result<Vec<SealedEvent>, AuditStoreError> {
        let repository = self.service.repository();
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = repository
                .list_events(filter, DateTime::<Utc>::UNIX_EPOCH, cursor, PAGE)
                .await?;
            let full = page.len() == PAGE as usize;
            cursor = page.last().map(|e| EventCursor {
                at: e.at,
                chain: e.chain,
                sequence: e.sequence,
            });
            out.extend(page);
            if !full {
                return Ok(out);
            }
        }
    }

    /// The events about `subject` or by `user`, newest first, each once.
    async fn held(
        &self,
        subject: SubjectId,
        user: Option<UserId>,
    ) -> Result<Vec<Held>, AuditStoreError> {
        let mut held: BTreeMap<(DateTime<Utc>, ChainId, u64), Held> = BTreeMap::new();
        for event in self
            .all_events(EventFilter::Subject(subject.as_uuid()))
            .await?
        {
            let by = user.is_some_and(|u| event.actor.id == Some(u.as_uuid()));
            held.insert(
                (event.at, event.chain, event.sequence),
                Held {
                    event,
                    about: true,
                    by,
                },
            );
        }
        if let Some(user) = user {
            for event in self.all_events(EventFilter::Actor(user.as_uuid())).await? {
                held.entry((event.at, event.chain, event.sequence))
                    .or_insert(Held {
                        event,
                        about: false,
                        by: true,
                    });
            }
        }
        Ok(held.into_values().rev().collect())
    }

    fn until(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        at.checked_add_signed(self.service.retention())
    }
}

fn event_json(held: &Held) -> Value {
    let entry = access_entry(&held.event);
    json!({
        "chain": held.event.chain,
        "sequence": held.event.sequence,
        "at": entry.at,
        "about_you": held.about,
        "by_you": held.by,
        "actor": entry.actor,
        "actor_kind": entry.actor_kind,
        "actor_erased": entry.actor_erased,
        "roles": entry.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "organisation": entry.organisation,
        "action": entry.action,
        "resource_kind": entry.resource_kind,
        "purpose": entry.purpose,
        "denied": entry.denied,
    })
}

#[async_trait]
impl PersonalData for AuditPersonalData {
    fn context(&self) -> &'static str {
        "audit"
    }

    fn describe(&self) -> Vec<DataMapEntry> {
        vec![DataMapEntry {
            category: DataCategory::AccessLog,
            description: Cow::Borrowed(
                "The access log: who accessed your data (person, roles and practice), when, \
                 what they did, to which kind of record, for which purpose and whether it \
                 was refused; the accesses you made yourself; and the accounting of \
                 disclosures of your data (recipient, description, legal basis and date). \
                 It holds ids, never the health data itself; a disclosure's description is \
                 sealed with your key.",
            ),
            sources: vec![Source::System, Source::Provider],
            purposes: vec![Purpose::Oversight, Purpose::SubjectRequest, Purpose::Legal],
            recipients: vec![
                Cow::Borrowed("you"),
                Cow::Borrowed("your practice's privacy officer and auditors"),
                Cow::Borrowed("regulators, where the law requires"),
                Cow::Borrowed("hosting sub-processor"),
            ],
            retention: Retention::Period {
                days: u32::try_from(self.service.retention().num_days()).unwrap_or(u32::MAX),
                ground: ACCESS_LOG_GROUND,
            },
        }]
    }

    async fn export(
        &self,
        _ctx: &RequestContext,
        subject: SubjectId,
    ) -> Result<Vec<ExportedRecord>, PersonalDataError> {
        let user = self.user(subject).await?;
        let held = self.held(subject, user).await.map_err(unavailable)?;
        let mut out = Vec::with_capacity(held.len());
        for h in &held {
            out.push(ExportedRecord {
                category: DataCategory::AccessLog,
                resource: ResourceRef::new(
                    ACCESS_EVENT,
                    event_ref(h.event.chain, h.event.sequence),
                ),
                created_at: h.event.at,
                data: event_json(h),
            });
        }
        let repository = self.service.repository();
        let records = repository
            .disclosures(subject.as_uuid(), DateTime::<Utc>::UNIX_EPOCH)
            .await
            .map_err(unavailable)?;
        for record in records {
            let entry = disclosure_entry(repository.as_ref(), record)
                .await
                .map_err(unavailable)?;
            out.push(ExportedRecord {
                category: DataCategory::AccessLog,
                resource: ResourceRef::new(DISCLOSURE, event_ref(entry.chain, entry.sequence)),
                created_at: entry.detail.disclosed_at,
                data: json!({
                    "chain": entry.chain,
                    "sequence": entry.sequence,
                    "organisation": entry.organisation,
                    "recipient": entry.detail.recipient,
                    "description": entry.detail.description,
                    "legal_basis": entry.detail.legal_basis,
                    "disclosed_at": entry.detail.disclosed_at,
                    "purpose": entry.purpose,
                }),
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
            "the audit log is append-only; its entries record what happened and cannot be \
             corrected (a correction of the record itself is made, and logged, in its own \
             context)",
        )))
    }

    async fn erase(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
    ) -> Result<Vec<ErasureOutcome>, PersonalDataError> {
        let user = self.user(subject).await?;
        let held = self.held(subject, user).await.map_err(unavailable)?;
        let disclosures = self
            .service
            .repository()
            .disclosures(subject.as_uuid(), DateTime::<Utc>::UNIX_EPOCH)
            .await
            .map_err(unavailable)?;
        self.service
            .erase_subject(ctx, subject, user)
            .await
            .map_err(unavailable)?;
        let mut outcomes = Vec::with_capacity(held.len() + disclosures.len());
        for h in &held {
            outcomes.push(ErasureOutcome {
                category: DataCategory::AccessLog,
                resource: ResourceRef::new(
                    ACCESS_EVENT,
                    event_ref(h.event.chain, h.event.sequence),
                ),
                fate: RecordFate::Retained {
                    ground: ACCESS_LOG_GROUND,
                    until: self.until(h.event.at),
                },
            });
        }
        for d in &disclosures {
            outcomes.push(ErasureOutcome {
                category: DataCategory::AccessLog,
                resource: ResourceRef::new(DISCLOSURE, event_ref(d.chain, d.sequence)),
                fate: RecordFate::Deleted,
            });
        }
        Ok(outcomes)
    }

    async fn restrict(
        &self,
        _ctx: &RequestContext,
        _subject: SubjectId,
        _scope: RestrictionScope,
        _lift: bool,
    ) -> Result<(), PersonalDataError> {
        // See the type's documentation: the log is kept on a legal obligation and
        // used only as GDPR Art. 18(2) still allows, so there is nothing to stop.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::IpAddr;

    use chrono::{TimeDelta, TimeZone};
    use kernel::{
        Actor, AuditAction, AuditEvent, AuditOutcome, ClientInfo, Clock, Disclosure, ManualClock,
        OrganisationId, RequestId, Role, RoleSet,
    };

    use super::*;
    use crate::checkpoint::SigningKey;
    use crate::memory::MemoryRepository;
    use crate::service::{DEFAULT_RETENTION, Pseudonymiser};
    use crate::verify::verify_repository;
    use crate::{AuditLog, LogConfig};

    struct Keyed;

    impl Pseudonymiser for Keyed {
        fn pseudonym(&self, id: Uuid) -> Hash {
            Hash::of(&[b"test pseudonym key", id.as_bytes()])
        }
    }

    struct Users(HashMap<SubjectId, UserId>);

    #[async_trait]
    impl UserOfSubject for Users {
        async fn user_of(
            &self,
            subject: SubjectId,
        ) -> Result<Option<UserId>, Box<dyn std::error::Error + Send + Sync>> {
            Ok(self.0.get(&subject).copied())
        }
    }

    /// A person: the user account and the data subject it is.
    #[derive(Clone, Copy)]
    struct Person {
        user: UserId,
        subject: SubjectId,
    }

    impl Person {
        fn new() -> Self {
            Self {
                user: UserId::new(),
                subject: SubjectId::new(),
            }
        }
    }

    struct Fixture {
        repository: Arc<MemoryRepository>,
        service: AuditService,
        port: AuditPersonalData,
        clock: Arc<ManualClock>,
        organisation: OrganisationId,
        provider: Person,
        client: Person,
        other: Person,
    }

    async fn fixture() -> Fixture {
        let repository = Arc::new(MemoryRepository::new());
        let start = Utc
            .with_ymd_and_hms(2026, 3, 1, 9, 0, 0)
            .single()
            .unwrap_or_default();
        let clock = Arc::new(ManualClock::new(start));
        let key = SigningKey::from_seed(&[7; 32]).expect("seed");
        let log = AuditLog::start(repository.clone(), key, clock.clone(), LogConfig::default())
            .await
            .expect("the writer starts");
        let service = AuditService::new(
            repository.clone(),
            log,
            Vec::new(),
            Arc::new(Keyed),
            DEFAULT_RETENTION,
        );
        let (provider, client, other) = (Person::new(), Person::new(), Person::new());
        let users = Users(
            [provider, client, other]
                .into_iter()
                .map(|p| (p.subject, p.user))
                .collect(),
        );
        let port = AuditPersonalData::new(service.clone(), Arc::new(users));
        Fixture {
            repository,
            service,
            port,
            clock,
            organisation: OrganisationId::new(),
            provider,
            client,
            other,
        }
    }

    impl Fixture {
        fn ctx(&self, who: Person, role: Role) -> RequestContext {
            RequestContext::new(
                Actor::Member {
                    user: who.user,
                    roles: RoleSet::only(role),
                },
                Some(self.organisation),
                Purpose::Treatment,
                RequestId::new(),
                ClientInfo::default(),
                self.clock.now(),
            )
        }

        fn rights(&self) -> RequestContext {
            RequestContext::system("data-rights", Purpose::SubjectRequest, self.clock.now())
        }

        async fn record(&self, event: AuditEvent) {
            self.service.sink().record(event).await.expect("durable");
            self.clock.advance(TimeDelta::seconds(1));
        }

        async fn access(&self, who: Person, role: Role, about: Person, outcome: AuditOutcome) {
            let mut event = AuditEvent::new(
                &self.ctx(who, role),
                AuditAction::Read,
                ResourceRef::new("condition", Uuid::now_v7()),
                Some(about.subject),
                outcome,
            );
            event.client_address = Some(IpAddr::from([192, 0, 2, 7]));
            self.record(event).await;
        }

        /// The provider reads the client's record (once refused), the client reads
        /// their own, the provider reads another client's, and discloses the
        /// client's record to the health department.
        async fn populate(&self) {
            let (provider, client, other) = (self.provider, self.client, self.other);
            self.access(provider, Role::Provider, client, AuditOutcome::Allowed)
                .await;
            self.access(
                provider,
                Role::Provider,
                client,
                AuditOutcome::Denied {
                    reason: "not_on_care_team",
                },
            )
            .await;
            self.access(client, Role::Client, client, AuditOutcome::Allowed)
                .await;
            self.access(provider, Role::Provider, other, AuditOutcome::Allowed)
                .await;
            let disclosure = AuditEvent::new(
                &self.ctx(provider, Role::Provider),
                AuditAction::Read,
                ResourceRef::new("disclosure_accounting", Uuid::nil()),
                Some(client.subject),
                AuditOutcome::Allowed,
            )
            .with_disclosure(Disclosure {
                recipient: "County Health Department".to_owned(),
                description: "Notifiable condition report".to_owned(),
                legal_basis: "45 CFR 164.512(b)".to_owned(),
                disclosed_at: self.clock.now() - TimeDelta::days(2),
            });
            self.record(disclosure).await;
        }

        fn event_count(&self) -> usize {
            self.repository.memory().events.len()
        }

        async fn verifies(&self) -> crate::verify::Report {
            self.service.log().checkpoint().await.expect("checkpoint");
            verify_repository(self.repository.as_ref(), self.service.trusted_keys())
                .await
                .expect("the log reads")
        }
    }

    fn of_kind<'a>(records: &'a [ExportedRecord], kind: &str) -> Vec<&'a ExportedRecord> {
        records.iter().filter(|r| r.resource.kind == kind).collect()
    }

    #[tokio::test]
    async fn export_lists_the_subjects_events_and_disclosures_and_no_one_elses() {
        let f = fixture().await;
        f.populate().await;
        let before = f.event_count();
        let export = f
            .port
            .export(&f.rights(), f.client.subject)
            .await
            .expect("export");
        assert_eq!(f.event_count(), before, "export records no event itself");
        assert!(export.iter().all(|r| r.category == DataCategory::AccessLog));

        let events = of_kind(&export, ACCESS_EVENT);
        assert_eq!(events.len(), 4, "three reads and the disclosure");
        let actions: Vec<&Value> = events.iter().map(|r| &r.data["action"]).collect();
        assert_eq!(
            actions,
            ["disclose", "read", "read", "read"],
            "newest first"
        );
        let own = events
            .iter()
            .find(|r| r.data["by_you"] == true)
            .expect("the client's own read");
        assert_eq!(own.data["about_you"], true);
        assert_eq!(own.data["actor"], json!(f.client.user));
        assert_eq!(own.data["roles"], json!(["client"]));
        let denied = events
            .iter()
            .find(|r| !r.data["denied"].is_null())
            .expect("the refused read");
        assert_eq!(denied.data["denied"], "not_on_care_team");
        assert_eq!(denied.data["actor"], json!(f.provider.user));
        assert_eq!(denied.data["actor_kind"], "member");
        assert_eq!(denied.data["roles"], json!(["provider"]));
        assert_eq!(denied.data["organisation"], json!(f.organisation));
        assert_eq!(denied.data["resource_kind"], "condition");
        assert_eq!(denied.data["purpose"], "treatment");
        for r in &events {
            let chain: Uuid = serde_json::from_value(r.data["chain"].clone()).expect("chain");
            let sequence = r.data["sequence"].as_u64().expect("sequence");
            assert_eq!(r.resource.id, event_ref(chain, sequence), "a derivable id");
        }

        let disclosures = of_kind(&export, DISCLOSURE);
        assert_eq!(disclosures.len(), 1);
        let d = &disclosures[0].data;
        assert_eq!(d["recipient"], "County Health Department");
        assert_eq!(d["description"], "Notifiable condition report");
        assert_eq!(d["legal_basis"], "45 CFR 164.512(b)");
        assert_eq!(d["purpose"], "treatment");
        let disclose_event = events
            .iter()
            .find(|r| r.data["action"] == "disclose")
            .expect("its event");
        assert_eq!(
            disclosures[0].resource.id, disclose_event.resource.id,
            "the details sit under their event's id"
        );

        // Nothing about the other client, whose subject and person never appear.
        let text = serde_json::to_string(&export).expect("JSON");
        assert!(!text.contains(&f.other.subject.as_uuid().to_string()));
        assert!(!text.contains(&f.other.user.as_uuid().to_string()));
        let theirs = f
            .port
            .export(&f.rights(), f.other.subject)
            .await
            .expect("export");
        assert_eq!(theirs.len(), 1, "{theirs:?}");
        assert!(
            !serde_json::to_string(&theirs)
                .expect("JSON")
                .contains(&f.client.user.as_uuid().to_string())
        );
        let stranger = f
            .port
            .export(&f.rights(), SubjectId::new())
            .await
            .expect("export");
        assert!(stranger.is_empty());
    }

    #[tokio::test]
    async fn a_members_export_holds_the_accesses_they_made_but_not_whose_data_it_was() {
        let f = fixture().await;
        f.populate().await;
        let export = f
            .port
            .export(&f.rights(), f.provider.subject)
            .await
            .expect("export");
        let events = of_kind(&export, ACCESS_EVENT);
        assert_eq!(events.len(), 4, "their three reads and the disclosure");
        assert!(
            events
                .iter()
                .all(|r| r.data["by_you"] == true && r.data["about_you"] == false)
        );
        assert!(of_kind(&export, DISCLOSURE).is_empty(), "not about them");
        let text = serde_json::to_string(&export).expect("JSON");
        for patient in [f.client.subject, f.other.subject] {
            assert!(!text.contains(&patient.as_uuid().to_string()), "{text}");
        }
    }

    #[tokio::test]
    async fn export_pages_through_every_event() {
        let f = fixture().await;
        // More than a page, many in the same microsecond, so the cursor decides.
        for n in 0..(PAGE + 23) {
            let event = AuditEvent::new(
                &f.ctx(f.provider, Role::Provider),
                AuditAction::Read,
                ResourceRef::new("condition", Uuid::now_v7()),
                Some(f.client.subject),
                AuditOutcome::Allowed,
            );
            f.service.sink().record(event).await.expect("durable");
            if n % 100 == 0 {
                f.clock.advance(TimeDelta::seconds(1));
            }
        }
        let export = f
            .port
            .export(&f.rights(), f.client.subject)
            .await
            .expect("export");
        assert_eq!(export.len(), PAGE as usize + 23);
        let mut ids: Vec<Uuid> = export.iter().map(|r| r.resource.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), export.len(), "each event once");
    }

    #[tokio::test]
    async fn erasure_pseudonymises_every_event_keeps_them_on_their_ground_and_still_verifies() {
        let f = fixture().await;
        f.populate().await;
        let before = f
            .port
            .export(&f.rights(), f.client.subject)
            .await
            .expect("export");
        f.clock.advance(TimeDelta::days(3));
        let outcomes = f
            .port
            .erase(&f.rights(), f.client.subject)
            .await
            .expect("erased");
        assert_eq!(
            outcomes.len(),
            before.len(),
            "every exported record reported"
        );
        for (outcome, record) in outcomes.iter().zip(&before) {
            assert_eq!(outcome.resource, record.resource);
            match record.resource.kind {
                ACCESS_EVENT => assert_eq!(
                    outcome.fate,
                    RecordFate::Retained {
                        ground: ACCESS_LOG_GROUND,
                        until: Some(record.created_at + DEFAULT_RETENTION),
                    }
                ),
                _ => assert_eq!(outcome.fate, RecordFate::Deleted),
            }
        }

        // The ids are gone from every event, the addresses from those they made.
        {
            let memory = f.repository.memory();
            let (subject, user) = (f.client.subject.as_uuid(), f.client.user.as_uuid());
            assert!(memory.events.values().all(|e| {
                e.subject.as_ref().and_then(|s| s.id) != Some(subject) && e.actor.id != Some(user)
            }));
            let pseudonym = Keyed.pseudonym(subject);
            let erased: Vec<_> = memory
                .events
                .values()
                .filter(|e| e.subject.as_ref().and_then(|s| s.pseudonym) == Some(pseudonym))
                .collect();
            assert_eq!(erased.len(), 4);
            let own = memory
                .events
                .values()
                .find(|e| e.actor.pseudonym == Some(pseudonym))
                .expect("the client's own read");
            assert_eq!(own.actor.client_address, None);
            assert!(memory.disclosures.is_empty(), "the sealed details are gone");
            // The other client's events are untouched.
            assert_eq!(
                memory
                    .events
                    .values()
                    .filter(|e| e.subject.as_ref().and_then(|s| s.id)
                        == Some(f.other.subject.as_uuid()))
                    .count(),
                1
            );
        }
        let report = f.verifies().await;
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.pseudonymised, 4);

        assert!(
            f.port
                .export(&f.rights(), f.client.subject)
                .await
                .expect("export")
                .is_empty(),
            "nothing left under their ids"
        );
        let again = f
            .port
            .erase(&f.rights(), f.client.subject)
            .await
            .expect("again");
        assert!(again.is_empty(), "{again:?}");
        assert!(f.verifies().await.is_intact());
    }

    #[tokio::test]
    async fn a_members_erasure_pseudonymises_them_as_actor_and_spares_their_clients() {
        let f = fixture().await;
        f.populate().await;
        let outcomes = f
            .port
            .erase(&f.rights(), f.provider.subject)
            .await
            .expect("erased");
        assert_eq!(outcomes.len(), 4, "the events they made");
        {
            let memory = f.repository.memory();
            assert!(
                memory
                    .events
                    .values()
                    .all(|e| e.actor.id != Some(f.provider.user.as_uuid()))
            );
            assert_eq!(memory.disclosures.len(), 1, "the client's accounting stays");
        }
        let client = f
            .port
            .export(&f.rights(), f.client.subject)
            .await
            .expect("export");
        let erased: Vec<_> = of_kind(&client, ACCESS_EVENT)
            .into_iter()
            .filter(|r| r.data["by_you"] == false)
            .collect();
        assert_eq!(erased.len(), 3);
        assert!(
            erased
                .iter()
                .all(|r| r.data["actor"].is_null() && r.data["actor_erased"] == true)
        );
        assert!(f.verifies().await.is_intact());
    }

    #[tokio::test]
    async fn corrections_are_refused_and_restrictions_change_nothing() {
        let f = fixture().await;
        f.populate().await;
        let export = f
            .port
            .export(&f.rights(), f.client.subject)
            .await
            .expect("export");
        let refused = f
            .port
            .rectify(
                &f.rights(),
                f.client.subject,
                Rectification {
                    resource: export[0].resource,
                    field: "purpose".to_owned(),
                    value: json!("operations"),
                },
            )
            .await;
        assert!(
            matches!(&refused, Err(PersonalDataError::Invalid(m)) if m.contains("append-only")),
            "{refused:?}"
        );
        let events = f.event_count();
        f.port
            .restrict(&f.rights(), f.client.subject, RestrictionScope::All, false)
            .await
            .expect("restricted");
        assert_eq!(f.event_count(), events);
        assert_eq!(
            f.port
                .export(&f.rights(), f.client.subject)
                .await
                .expect("export"),
            export,
            "nothing changed"
        );
    }

    #[tokio::test]
    async fn the_data_map_names_the_access_log_and_its_retention() {
        let f = fixture().await;
        assert_eq!(f.port.context(), "audit");
        let map = f.port.describe();
        assert_eq!(map.len(), 1);
        assert_eq!(map[0].category, DataCategory::AccessLog);
        assert_eq!(
            map[0].retention,
            Retention::Period {
                days: 2_192,
                ground: ACCESS_LOG_GROUND
            }
        );
        assert!(map[0].sources.contains(&Source::System));
        assert!(map[0].purposes.contains(&Purpose::Oversight));
    }

    #[test]
    fn event_refs_are_stable_and_distinct() {
        let chain = Uuid::now_v7();
        assert_eq!(event_ref(chain, 1), event_ref(chain, 1));
        assert_ne!(event_ref(chain, 1), event_ref(chain, 2));
        assert_ne!(event_ref(chain, 1), event_ref(Uuid::now_v7(), 1));
        assert_eq!(event_ref(chain, 1).get_version_num(), 8);
    }
}
