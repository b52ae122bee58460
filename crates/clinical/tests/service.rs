//! The clinical service's one path over the in-memory repository, a consent gate
//! that can be told to refuse and an audit sink that can be told to fail: who reads
//! and writes what, what is refused and how, and what every attempt leaves in the
//! audit log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use clinical::memory::MemoryRepository;
use clinical::model::{
    AmendmentStatus, AppointmentDetails, AppointmentStatus, ClientIdentity, ClientRef,
    ExerciseTemplate, Page, PageRequest, Record, RecordBody, RecordKind,
};
use clinical::ports::ClinicalRepository;
use clinical::service::NewAppointment;
use clinical::{ClinicalError, ClinicalPersonalData, ClinicalService, Text, TimeZone};
use kernel::personal_data::RestrictionScope;
use kernel::{
    Actor, AuditAction, AuditError, AuditEvent, AuditOutcome, AuditReceipt, AuditSink, ClientInfo,
    Clock, ConsentDecision, ConsentDenial, ConsentError, ConsentGate, ConsentQuery, DataCategory,
    LegalGround, ManualClock, OrganisationId, PersonalData, Purpose, Recipient, Regime,
    RequestContext, RequestId, Role, RoleSet, SubjectId, UserId,
};
use serde_json::{Value, json};
use uuid::Uuid;

/// A consent gate that allows, or refuses with the reason it is given.
#[derive(Default)]
struct Gate {
    refusal: Mutex<Option<ConsentDenial>>,
    queries: Mutex<Vec<ConsentQuery>>,
}

impl Gate {
    fn refuse(&self, reason: Option<ConsentDenial>) {
        *self.refusal.lock().expect("lock") = reason;
    }

    fn last_query(&self) -> ConsentQuery {
        self.queries
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .expect("a query")
    }
}

#[async_trait]
impl ConsentGate for Gate {
    async fn decide(&self, query: &ConsentQuery) -> Result<ConsentDecision, ConsentError> {
        self.queries.lock().expect("lock").push(query.clone());
        Ok(match *self.refusal.lock().expect("lock") {
            Some(reason) => ConsentDecision::Deny { reason },
            None => ConsentDecision::Allow {
                basis: LegalGround::new(Regime::Hipaa, "45 CFR 164.506(c)", "treatment"),
                evidence: Vec::new(),
            },
        })
    }
}

/// An audit sink that keeps every event, or fails when told to.
#[derive(Default)]
struct Audit {
    events: Mutex<Vec<AuditEvent>>,
    failing: AtomicBool,
}

#[async_trait]
impl AuditSink for Audit {
    async fn record(&self, event: AuditEvent) -> Result<AuditReceipt, AuditError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(AuditError::Unavailable(Box::new(std::io::Error::other(
                "the audit database is down",
            ))));
        }
        let mut events = self.events.lock().expect("lock");
        events.push(event);
        Ok(AuditReceipt {
            chain: Uuid::nil(),
            sequence: events.len() as u64,
        })
    }
}

struct World {
    repo: Arc<MemoryRepository>,
    gate: Arc<Gate>,
    audit: Arc<Audit>,
    service: ClinicalService,
    personal_data: ClinicalPersonalData,
    clock: ManualClock,
    org: OrganisationId,
    other_org: OrganisationId,
    /// A client whose care team is `provider`.
    client: ClientRef,
    /// Another client of the practice, with no care team.
    other_client: ClientRef,
    /// A provider on `client`'s care team.
    provider: UserId,
    /// A provider of the same practice, on no care team.
    outsider: UserId,
    /// A practice admin (not a provider).
    admin: UserId,
    /// A provider of another practice.
    foreigner: UserId,
    /// An exercise of the practice's library.
    exercise: Uuid,
}

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
        .expect("valid")
        .with_timezone(&Utc)
}

fn identity(name: &str) -> ClientIdentity {
    ClientIdentity {
        name: name.to_owned(),
        email: format!("{}@example.org", name.to_lowercase().replace(' ', ".")),
        phone: None,
        birth_date: NaiveDate::from_ymd_opt(1980, 5, 17),
    }
}

fn text<const N: usize>(s: &str) -> Text<N> {
    Text::parse(s).expect("valid text")
}

fn body(kind: RecordKind, value: Value) -> RecordBody {
    RecordBody::from_json(kind, value).expect("a valid body")
}

fn condition(words: &str) -> RecordBody {
    body(
        RecordKind::Condition,
        json!({"text": words, "code": {"system": "icd-10", "code": "M54.5"}, "status": "active"}),
    )
}

fn medication(dose: &str) -> RecordBody {
    body(
        RecordKind::Medication,
        json!({"name": "Ibuprofen", "dose": dose, "frequency": "daily", "status": "active"}),
    )
}

fn message(sender: UserId, words: &str) -> RecordBody {
    body(
        RecordKind::Message,
        json!({"sender": sender, "text": words}),
    )
}

fn first(limit: u32) -> PageRequest {
    PageRequest::first(limit)
}

fn denial(event: &AuditEvent) -> Option<&'static str> {
    match event.outcome {
        AuditOutcome::Denied { reason } => Some(reason),
        AuditOutcome::Allowed => None,
    }
}

impl World {
    async fn new() -> Self {
        let repo = Arc::new(MemoryRepository::new());
        let gate = Arc::new(Gate::default());
        let audit = Arc::new(Audit::default());
        let service = ClinicalService::new(repo.clone(), gate.clone(), audit.clone());
        let personal_data = ClinicalPersonalData::new(repo.clone());
        let (org, other_org) = (OrganisationId::new(), OrganisationId::new());
        let client_of = |org| ClientRef {
            user: UserId::new(),
            subject: SubjectId::new(),
            organisation: org,
            home_organisation: org,
        };
        let (client, other_client) = (client_of(org), client_of(org));
        let then = start() - Duration::days(30);
        repo.add_client_since(client, identity("Ada Client"), then);
        repo.add_client_since(
            other_client,
            identity("Bo Client"),
            then + Duration::days(1),
        );
        let (provider, outsider, admin, foreigner) =
            (UserId::new(), UserId::new(), UserId::new(), UserId::new());
        repo.add_provider(org, provider);
        repo.add_provider(org, outsider);
        repo.add_provider(other_org, foreigner);
        repo.add_care_team_member(&clinical::model::CareTeamMember {
            client: client.user,
            provider,
            organisation: org,
            starts_on: then.date_naive(),
            ends_on: None,
            added_by: admin,
            added_at: then,
        })
        .await
        .expect("on the team");
        let exercise = Uuid::now_v7();
        repo.add_template(&ExerciseTemplate {
            id: exercise,
            organisation: Some(org),
            name: text("Bridge"),
            instructions: text("Lie on your back and lift your hips."),
            body_region: text("lumbar spine"),
            equipment: Vec::new(),
            media: None,
            created_at: then,
            created_by: provider,
        })
        .await
        .expect("in the library");
        Self {
            repo,
            gate,
            audit,
            service,
            personal_data,
            clock: ManualClock::new(start()),
            org,
            other_org,
            client,
            other_client,
            provider,
            outsider,
            admin,
            foreigner,
            exercise,
        }
    }

    fn ctx(&self, user: UserId, roles: RoleSet, org: OrganisationId) -> RequestContext {
        RequestContext::new(
            Actor::Member { user, roles },
            Some(org),
            Purpose::Treatment,
            RequestId::new(),
            ClientInfo::new(Some("203.0.113.9".parse().expect("ip")), Some("tests/1")),
            self.clock.now(),
        )
    }

    fn as_client(&self) -> RequestContext {
        self.ctx(self.client.user, RoleSet::only(Role::Client), self.org)
    }

    fn as_provider(&self) -> RequestContext {
        self.ctx(self.provider, RoleSet::only(Role::Provider), self.org)
    }

    fn as_outsider(&self) -> RequestContext {
        self.ctx(self.outsider, RoleSet::only(Role::Provider), self.org)
    }

    fn as_admin(&self) -> RequestContext {
        self.ctx(self.admin, RoleSet::only(Role::OrgAdmin), self.org)
    }

    fn as_foreigner(&self) -> RequestContext {
        self.ctx(
            self.foreigner,
            RoleSet::only(Role::Provider),
            self.other_org,
        )
    }

    fn today(&self) -> NaiveDate {
        self.clock.now().date_naive()
    }

    fn events(&self) -> Vec<AuditEvent> {
        self.audit.events.lock().expect("lock").clone()
    }

    fn last_event(&self) -> AuditEvent {
        self.events().last().cloned().expect("an event")
    }

    fn fail_audit(&self, failing: bool) {
        self.audit.failing.store(failing, Ordering::SeqCst);
    }

    fn program(&self, items: usize) -> RecordBody {
        let item = json!({
            "exercise": self.exercise,
            "name": "Bridge",
            "prescription": {"sets": 3, "repetitions": 10, "hold_seconds": 0, "per_week": 7},
            "notes": null,
        });
        body(
            RecordKind::Program,
            json!({"title": "Low back", "items": vec![item; items], "starts_on": self.today(), "ends_on": null}),
        )
    }

    fn adherence(&self, program: Uuid, version: u32, completed: &[u16]) -> RecordBody {
        body(
            RecordKind::Adherence,
            json!({"program": program, "program_version": version, "performed_on": self.today(),
                   "completed": completed, "pain": 3, "comment": "Easier today"}),
        )
    }

    fn amendment(&self, target: &Record, field: &str, proposed: Value) -> RecordBody {
        body(
            RecordKind::Amendment,
            json!({"target": target.id, "target_kind": target.kind(), "field": field,
                   "proposed": proposed, "reason": "The dose was lowered in March.",
                   "status": "proposed"}),
        )
    }

    /// The care team writes a record of the client.
    async fn written(&self, body: RecordBody) -> Record {
        self.service
            .create_record(&self.as_provider(), self.org, self.client.user, body)
            .await
            .expect("written by the care team")
    }

    async fn read_condition(
        &self,
        ctx: &RequestContext,
        id: Uuid,
    ) -> Result<Record, ClinicalError> {
        self.service
            .record(ctx, self.org, self.client.user, RecordKind::Condition, id)
            .await
    }

    fn slot(&self, hour: i64, provider: UserId) -> NewAppointment {
        let day = self.clock.now() + Duration::days(1);
        let starts_at = day + Duration::hours(hour);
        NewAppointment {
            provider,
            starts_at,
            ends_at: starts_at + Duration::hours(1),
            details: AppointmentDetails {
                time_zone: TimeZone::parse("America/Chicago").expect("zone"),
                location: Some(text("Room 2")),
                telehealth_url: None,
                reason: Some(text("Review of the program")),
            },
        }
    }
}

#[tokio::test]
async fn the_care_team_writes_and_reads_conditions_audited_for_treatment_and_pages_them() {
    let w = World::new().await;
    let mut written = Vec::new();
    for i in 0..5 {
        w.clock.advance(Duration::minutes(1));
        written.push(w.written(condition(&format!("Condition {i}"))).await);
    }
    let created = w.last_event();
    assert_eq!(created.action, AuditAction::Create);
    assert_eq!(created.outcome, AuditOutcome::Allowed);
    assert_eq!(created.resource.id, written[4].id);

    let read = w
        .read_condition(&w.as_provider(), written[2].id)
        .await
        .expect("read");
    assert_eq!(read, written[2]);
    let event = w.last_event();
    assert_eq!(event.action, AuditAction::Read);
    assert_eq!(event.outcome, AuditOutcome::Allowed);
    assert_eq!(event.subject, Some(w.client.subject));
    assert_eq!(event.purpose, Purpose::Treatment);
    assert_eq!(
        (event.resource.kind, event.resource.id),
        ("condition", written[2].id)
    );
    let query = w.gate.last_query();
    assert_eq!(query.subject, w.client.subject);
    assert_eq!(query.purpose, Purpose::Treatment);
    assert_eq!(query.category, DataCategory::HealthRecord);
    assert_eq!(
        query.recipient,
        Recipient::CareTeamMember { user: w.provider }
    );

    let mut seen = Vec::new();
    let mut request = first(2);
    let mut pages = 0;
    loop {
        let page: Page<Record> = w
            .service
            .records(
                &w.as_provider(),
                w.org,
                w.client.user,
                RecordKind::Condition,
                request,
            )
            .await
            .expect("a page");
        pages += 1;
        seen.extend(page.items.iter().map(|r| r.id));
        let Some(next) = page.next else { break };
        request = PageRequest {
            after: Some(next),
            limit: 2,
        };
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, written.iter().map(|r| r.id).collect::<Vec<_>>());
    assert_eq!(w.last_event().action, AuditAction::List);
}

#[tokio::test]
async fn a_provider_outside_the_care_team_finds_nothing_as_for_an_unknown_client() {
    let w = World::new().await;
    let record = w.written(condition("Low back pain")).await;
    let rows = w.repo.row_count();

    let read = w.read_condition(&w.as_outsider(), record.id).await;
    assert!(matches!(read, Err(ClinicalError::NotFound)));
    let event = w.last_event();
    assert_eq!(denial(&event), Some("no_relationship"));
    assert_eq!(event.subject, Some(w.client.subject));
    assert_eq!(event.action, AuditAction::Read);

    let write = w
        .service
        .create_record(
            &w.as_outsider(),
            w.org,
            w.client.user,
            condition("Written by a stranger"),
        )
        .await;
    assert!(matches!(write, Err(ClinicalError::NotFound)));
    assert_eq!(denial(&w.last_event()), Some("no_relationship"));
    assert_eq!(w.last_event().action, AuditAction::Create);
    assert_eq!(w.repo.row_count(), rows, "nothing was written");

    // An unknown client looks exactly the same, even to their would-be provider.
    let unknown = w
        .service
        .record(
            &w.as_provider(),
            w.org,
            UserId::new(),
            RecordKind::Condition,
            record.id,
        )
        .await;
    assert!(matches!(unknown, Err(ClinicalError::NotFound)));
    assert_eq!(denial(&w.last_event()), Some("no_such_client"));
    assert_eq!(w.last_event().subject, None);
    let unknown_write = w
        .service
        .create_record(&w.as_provider(), w.org, UserId::new(), condition("x"))
        .await;
    assert!(matches!(unknown_write, Err(ClinicalError::NotFound)));
    assert_eq!(denial(&w.last_event()), Some("no_such_client"));

    // So does a provider of another practice.
    let foreign = w.read_condition(&w.as_foreigner(), record.id).await;
    assert!(matches!(foreign, Err(ClinicalError::NotFound)));
    assert_eq!(denial(&w.last_event()), Some("other_practice"));
    assert_eq!(w.repo.row_count(), rows, "nothing was written");
}

#[tokio::test]
async fn the_client_reads_their_chart_and_writes_only_logs_messages_and_amendments() {
    let w = World::new().await;
    let record = w.written(condition("Low back pain")).await;
    let read = w
        .read_condition(&w.as_client(), record.id)
        .await
        .expect("their own record");
    assert_eq!(read, record);
    assert_eq!(w.last_event().purpose, Purpose::SubjectRequest);
    assert_eq!(w.gate.last_query().recipient, Recipient::Subject);

    let rows = w.repo.row_count();
    let refused = w
        .service
        .create_record(
            &w.as_client(),
            w.org,
            w.client.user,
            condition("Self-diagnosed"),
        )
        .await;
    assert!(matches!(refused, Err(ClinicalError::Forbidden(_))));
    assert_eq!(denial(&w.last_event()), Some("not_an_author"));
    assert_eq!(w.repo.row_count(), rows);

    // Pain is refused when the body is parsed, before the service sees it.
    for pain in [-1, 11] {
        let bad = RecordBody::from_json(
            RecordKind::Adherence,
            json!({"program": Uuid::now_v7(), "program_version": 1, "performed_on": w.today(),
                   "completed": [0], "pain": pain}),
        );
        assert!(bad.is_err(), "pain {pain}");
    }

    let program = w.written(w.program(2)).await;
    let log = w
        .service
        .create_record(
            &w.as_client(),
            w.org,
            w.client.user,
            w.adherence(program.id, 1, &[0, 1]),
        )
        .await
        .expect("logged");
    assert_eq!(log.created_by, w.client.user);
    let rows = w.repo.row_count();
    for (target, version, completed) in [
        (program.id, 1, vec![2]),     // no third item
        (program.id, 2, vec![0]),     // no such version
        (Uuid::now_v7(), 1, vec![0]), // no such program
        (record.id, 1, vec![0]),      // not a program
    ] {
        let refused = w
            .service
            .create_record(
                &w.as_client(),
                w.org,
                w.client.user,
                w.adherence(target, version, &completed),
            )
            .await;
        assert!(
            matches!(refused, Err(ClinicalError::Invalid(_))),
            "{completed:?}"
        );
        assert_eq!(denial(&w.last_event()), Some("invalid"));
    }
    assert_eq!(w.repo.row_count(), rows, "no refused log was stored");

    // The sender of a message is whoever sends it, whatever the body says.
    let sent = w
        .service
        .create_record(
            &w.as_client(),
            w.org,
            w.client.user,
            message(w.provider, "My back is better"),
        )
        .await
        .expect("sent");
    let RecordBody::Message(m) = &sent.body else {
        panic!("a message");
    };
    assert_eq!(m.sender, w.client.user);
    let reply = w.written(message(w.client.user, "Good to hear")).await;
    let RecordBody::Message(m) = &reply.body else {
        panic!("a message");
    };
    assert_eq!(m.sender, w.provider);
}

#[tokio::test]
async fn an_admin_reads_for_operations_but_writes_no_condition() {
    let w = World::new().await;
    let record = w.written(condition("Low back pain")).await;
    w.read_condition(&w.as_admin(), record.id)
        .await
        .expect("read");
    assert_eq!(w.last_event().purpose, Purpose::Operations);
    assert_eq!(
        w.gate.last_query().recipient,
        Recipient::Organisation {
            organisation: w.org
        }
    );
    let rows = w.repo.row_count();
    let refused = w
        .service
        .create_record(&w.as_admin(), w.org, w.client.user, condition("x"))
        .await;
    assert!(matches!(refused, Err(ClinicalError::Forbidden(_))));
    assert_eq!(denial(&w.last_event()), Some("not_an_author"));
    assert_eq!(w.repo.row_count(), rows);
}

#[tokio::test]
async fn a_consent_refusal_is_audited_with_its_reason_and_releases_nothing() {
    let w = World::new().await;
    let record = w.written(condition("Low back pain")).await;
    let rows = w.repo.row_count();
    w.gate.refuse(Some(ConsentDenial::Withdrawn));
    let read = w.read_condition(&w.as_provider(), record.id).await;
    assert!(matches!(
        read,
        Err(ClinicalError::Refused(ConsentDenial::Withdrawn))
    ));
    let event = w.last_event();
    assert_eq!(denial(&event), Some(ConsentDenial::Withdrawn.as_str()));
    assert_eq!(event.subject, Some(w.client.subject));
    let list = w
        .service
        .records(
            &w.as_provider(),
            w.org,
            w.client.user,
            RecordKind::Condition,
            first(10),
        )
        .await;
    assert!(matches!(
        list,
        Err(ClinicalError::Refused(ConsentDenial::Withdrawn))
    ));
    w.gate.refuse(Some(ConsentDenial::NotAttested));
    let write = w.written_result(condition("Refused")).await;
    assert!(matches!(
        write,
        Err(ClinicalError::Refused(ConsentDenial::NotAttested))
    ));
    assert_eq!(
        denial(&w.last_event()),
        Some("service_authorisation_missing")
    );
    assert_eq!(w.repo.row_count(), rows);
    w.gate.refuse(None);
    w.read_condition(&w.as_provider(), record.id)
        .await
        .expect("allowed again");
}

impl World {
    async fn written_result(&self, body: RecordBody) -> Result<Record, ClinicalError> {
        self.service
            .create_record(&self.as_provider(), self.org, self.client.user, body)
            .await
    }
}

#[tokio::test]
async fn a_restriction_stops_the_care_team_but_not_the_client_until_it_is_lifted() {
    let w = World::new().await;
    let record = w.written(condition("Low back pain")).await;
    let medication = w.written(medication("400 mg")).await;
    let rights = RequestContext::system("rights", Purpose::SubjectRequest, w.clock.now());
    let scope = RestrictionScope::Categories(vec![DataCategory::HealthRecord]);
    w.personal_data
        .restrict(&rights, w.client.subject, scope.clone(), false)
        .await
        .expect("restricted");

    let refused = w.read_condition(&w.as_provider(), record.id).await;
    assert!(matches!(
        refused,
        Err(ClinicalError::Refused(ConsentDenial::Restricted))
    ));
    assert_eq!(denial(&w.last_event()), Some("restricted"));
    // Other categories are not restricted.
    w.service
        .record(
            &w.as_provider(),
            w.org,
            w.client.user,
            RecordKind::Medication,
            medication.id,
        )
        .await
        .expect("medications are not restricted");
    // The client still sees their own record.
    w.read_condition(&w.as_client(), record.id)
        .await
        .expect("the client reads");

    w.personal_data
        .restrict(&rights, w.client.subject, scope, true)
        .await
        .expect("lifted");
    w.read_condition(&w.as_provider(), record.id)
        .await
        .expect("the care team reads again");
}

#[tokio::test]
async fn when_the_audit_log_fails_nothing_is_read_or_written() {
    let w = World::new().await;
    let record = w.written(condition("Low back pain")).await;
    let rows = w.repo.row_count();
    w.fail_audit(true);
    assert!(matches!(
        w.read_condition(&w.as_provider(), record.id).await,
        Err(ClinicalError::Unavailable(_))
    ));
    assert!(matches!(
        w.service
            .records(
                &w.as_provider(),
                w.org,
                w.client.user,
                RecordKind::Condition,
                first(10)
            )
            .await,
        Err(ClinicalError::Unavailable(_))
    ));
    assert!(matches!(
        w.written_result(condition("Unaudited")).await,
        Err(ClinicalError::Unavailable(_))
    ));
    // A denial that cannot be audited fails too.
    assert!(matches!(
        w.read_condition(&w.as_outsider(), record.id).await,
        Err(ClinicalError::Unavailable(_))
    ));
    assert_eq!(w.repo.row_count(), rows, "nothing was written");
    w.fail_audit(false);
    w.read_condition(&w.as_provider(), record.id)
        .await
        .expect("read again");
}

#[tokio::test]
async fn break_glass_is_time_boxed_audited_and_reviewed_by_admins() {
    let w = World::new().await;
    let record = w.written(condition("Low back pain")).await;
    let reason = || text::<1000>("Found unconscious in the waiting room");
    for minutes in [0, 721] {
        let refused = w
            .service
            .break_glass(&w.as_outsider(), w.org, w.client.user, reason(), minutes)
            .await;
        assert!(
            matches!(refused, Err(ClinicalError::Invalid(_))),
            "{minutes}"
        );
    }
    for ctx in [w.as_client(), w.as_admin()] {
        let refused = w
            .service
            .break_glass(&ctx, w.org, w.client.user, reason(), 30)
            .await;
        assert!(matches!(refused, Err(ClinicalError::Forbidden(_))));
    }
    let foreign = w
        .service
        .break_glass(&w.as_foreigner(), w.org, w.client.user, reason(), 30)
        .await;
    assert!(matches!(foreign, Err(ClinicalError::NotFound)));

    let grant = w
        .service
        .break_glass(&w.as_outsider(), w.org, w.client.user, reason(), 720)
        .await
        .expect("granted");
    assert_eq!(grant.expires_at - grant.granted_at, Duration::hours(12));
    let event = w.last_event();
    assert_eq!(
        (event.action, event.purpose, event.resource.kind),
        (
            AuditAction::Create,
            Purpose::BreakGlass,
            "break_glass_grant"
        )
    );
    assert_eq!(event.subject, Some(w.client.subject));

    w.clock.advance(Duration::hours(11));
    let read = w
        .read_condition(&w.as_outsider(), record.id)
        .await
        .expect("read under the grant");
    assert_eq!(read.id, record.id);
    assert_eq!(w.last_event().purpose, Purpose::BreakGlass);
    assert_eq!(w.gate.last_query().purpose, Purpose::BreakGlass);

    w.clock.advance(Duration::hours(1));
    assert!(matches!(
        w.read_condition(&w.as_outsider(), record.id).await,
        Err(ClinicalError::NotFound)
    ));
    assert_eq!(denial(&w.last_event()), Some("no_relationship"));

    let review = w
        .service
        .break_glass_grants(&w.as_admin(), w.org, first(10))
        .await
        .expect("reviewed");
    assert_eq!(review.items, vec![grant]);
    assert_eq!(w.last_event().purpose, Purpose::Oversight);
    let refused = w
        .service
        .break_glass_grants(&w.as_provider(), w.org, first(10))
        .await;
    assert!(matches!(refused, Err(ClinicalError::Forbidden(_))));
    assert_eq!(denial(&w.last_event()), Some("not_a_reviewer"));
}

#[tokio::test]
async fn a_program_update_is_a_new_version_and_logs_may_follow_the_old_one() {
    let w = World::new().await;
    let program = w.written(w.program(1)).await;
    let updated = w
        .service
        .update_record(
            &w.as_provider(),
            w.org,
            w.client.user,
            program.id,
            w.program(2),
            1,
        )
        .await
        .expect("updated");
    assert_eq!(updated.version, 2);
    let versions = w
        .service
        .record_versions(
            &w.as_client(),
            w.org,
            w.client.user,
            RecordKind::Program,
            program.id,
        )
        .await
        .expect("versions");
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(versions[0].body, program.body);
    assert_eq!(versions[1].body, updated.body);

    let stale = w
        .service
        .update_record(
            &w.as_provider(),
            w.org,
            w.client.user,
            program.id,
            w.program(3),
            1,
        )
        .await;
    assert!(matches!(stale, Err(ClinicalError::Conflict(_))));
    let current = w
        .service
        .record(
            &w.as_provider(),
            w.org,
            w.client.user,
            RecordKind::Program,
            program.id,
        )
        .await
        .expect("read");
    assert_eq!(current, updated);

    let log = async |version, completed: &'static [u16]| {
        w.service
            .create_record(
                &w.as_client(),
                w.org,
                w.client.user,
                w.adherence(program.id, version, completed),
            )
            .await
    };
    log(1, &[0]).await.expect("version 1 is still followed");
    assert!(matches!(log(1, &[1]).await, Err(ClinicalError::Invalid(_))));
    log(2, &[0, 1]).await.expect("version 2");

    let mut unknown = w.program(1).to_json();
    unknown["items"][0]["exercise"] = json!(Uuid::now_v7());
    let refused = w
        .service
        .update_record(
            &w.as_provider(),
            w.org,
            w.client.user,
            program.id,
            body(RecordKind::Program, unknown),
            2,
        )
        .await;
    assert!(matches!(refused, Err(ClinicalError::Invalid(_))));
}

#[tokio::test]
async fn an_amendment_is_decided_once_and_a_denial_may_be_disputed_once() {
    let w = World::new().await;
    let target = w.written(medication("400 mg")).await;
    let propose = async |body| {
        w.service
            .create_record(&w.as_client(), w.org, w.client.user, body)
            .await
    };
    for (field, value) in [("colour", json!("red")), ("status", json!("sometimes"))] {
        assert!(
            matches!(
                propose(w.amendment(&target, field, value)).await,
                Err(ClinicalError::Invalid(_))
            ),
            "{field}"
        );
        assert_eq!(denial(&w.last_event()), Some("invalid"));
    }
    let provider_proposes = w
        .written_result(w.amendment(&target, "dose", json!("200 mg")))
        .await;
    assert!(matches!(
        provider_proposes,
        Err(ClinicalError::Forbidden(_))
    ));

    let proposed = propose(w.amendment(&target, "dose", json!("200 mg")))
        .await
        .expect("proposed");
    let refused = w
        .service
        .accept_amendment(&w.as_client(), w.org, w.client.user, proposed.id)
        .await;
    assert!(matches!(refused, Err(ClinicalError::Forbidden(_))));

    let (decided, corrected) = w
        .service
        .accept_amendment(&w.as_provider(), w.org, w.client.user, proposed.id)
        .await
        .expect("accepted");
    assert_eq!(corrected.version, 2);
    assert_eq!(corrected.body.to_json()["dose"], "200 mg");
    let RecordBody::Amendment(a) = &decided.body else {
        panic!("an amendment");
    };
    assert_eq!(a.status, AmendmentStatus::Accepted);
    assert_eq!(a.applied_version, Some(2));
    assert_eq!(a.decided_by, Some(w.provider));
    let history = w
        .service
        .record_versions(
            &w.as_client(),
            w.org,
            w.client.user,
            RecordKind::Medication,
            target.id,
        )
        .await
        .expect("history");
    assert_eq!(history[0].body, target.body);
    assert_eq!(history[1].body, corrected.body);
    for again in [
        w.service
            .accept_amendment(&w.as_provider(), w.org, w.client.user, proposed.id)
            .await,
        w.service
            .deny_amendment(
                &w.as_provider(),
                w.org,
                w.client.user,
                proposed.id,
                text("No"),
            )
            .await
            .map(|r| (r.clone(), r)),
    ] {
        assert!(matches!(again, Err(ClinicalError::Conflict(_))));
    }

    let second = propose(w.amendment(&corrected, "frequency", json!("weekly")))
        .await
        .expect("proposed");
    let early = w
        .service
        .disagree(
            &w.as_client(),
            w.org,
            w.client.user,
            second.id,
            text("I disagree"),
        )
        .await;
    assert!(matches!(early, Err(ClinicalError::Conflict(_))));
    w.service
        .deny_amendment(
            &w.as_provider(),
            w.org,
            w.client.user,
            second.id,
            text("The chart shows daily dosing."),
        )
        .await
        .expect("denied");
    let seen = w
        .service
        .record(
            &w.as_client(),
            w.org,
            w.client.user,
            RecordKind::Amendment,
            second.id,
        )
        .await
        .expect("the client reads the decision");
    let RecordBody::Amendment(a) = &seen.body else {
        panic!("an amendment");
    };
    assert_eq!(a.status, AmendmentStatus::Denied);
    assert_eq!(
        a.denial_reason.as_ref().map(Text::as_str),
        Some("The chart shows daily dosing.")
    );
    let disputed = w
        .service
        .disagree(
            &w.as_client(),
            w.org,
            w.client.user,
            second.id,
            text("I take it weekly."),
        )
        .await
        .expect("disputed");
    let RecordBody::Amendment(a) = &disputed.body else {
        panic!("an amendment");
    };
    assert_eq!(
        a.disagreement.as_ref().map(Text::as_str),
        Some("I take it weekly.")
    );
    let twice = w
        .service
        .disagree(
            &w.as_client(),
            w.org,
            w.client.user,
            second.id,
            text("Again"),
        )
        .await;
    assert!(matches!(twice, Err(ClinicalError::Conflict(_))));
}

#[tokio::test]
async fn a_provider_is_never_double_booked_and_a_cancellation_frees_the_slot() {
    let w = World::new().await;
    let booked = w
        .service
        .book(
            &w.as_provider(),
            w.org,
            w.client.user,
            w.slot(9, w.provider),
        )
        .await
        .expect("booked");
    assert_eq!(booked.status, AppointmentStatus::Booked);

    let mut overlapping = w.slot(9, w.provider);
    overlapping.starts_at += Duration::minutes(30);
    overlapping.ends_at += Duration::minutes(30);
    let clash = w
        .service
        .book(
            &w.as_admin(),
            w.org,
            w.other_client.user,
            overlapping.clone(),
        )
        .await;
    assert!(matches!(clash, Err(ClinicalError::Conflict(_))));
    let event = w.last_event();
    assert_eq!(denial(&event), Some("conflict"));
    assert_eq!(event.subject, Some(w.other_client.subject));

    let rows = w.repo.row_count();
    let events = w.events().len();
    let mut backwards = w.slot(12, w.provider);
    backwards.ends_at = backwards.starts_at - Duration::minutes(1);
    assert!(matches!(
        w.service
            .book(&w.as_provider(), w.org, w.client.user, backwards)
            .await,
        Err(ClinicalError::Invalid(_))
    ));
    assert_eq!(w.events().len(), events, "refused before any access");
    let not_a_provider = w
        .service
        .book(&w.as_provider(), w.org, w.client.user, w.slot(12, w.admin))
        .await;
    assert!(matches!(not_a_provider, Err(ClinicalError::Invalid(_))));
    assert_eq!(denial(&w.last_event()), Some("invalid"));
    assert_eq!(w.repo.row_count(), rows, "nothing was stored");

    // The client cancels; the slot is free for someone else; a cancelled
    // appointment stays cancelled, and a stale version is refused.
    let stale = w
        .service
        .set_appointment_status(
            &w.as_client(),
            w.org,
            w.client.user,
            booked.id,
            AppointmentStatus::Cancelled,
            2,
        )
        .await;
    assert!(matches!(stale, Err(ClinicalError::Conflict(_))));
    let cancelled = w
        .service
        .set_appointment_status(
            &w.as_client(),
            w.org,
            w.client.user,
            booked.id,
            AppointmentStatus::Cancelled,
            1,
        )
        .await
        .expect("cancelled");
    assert_eq!(cancelled.version, 2);
    w.service
        .book(&w.as_admin(), w.org, w.other_client.user, overlapping)
        .await
        .expect("the slot is free");
    let revived = w
        .service
        .set_appointment_status(
            &w.as_provider(),
            w.org,
            w.client.user,
            booked.id,
            AppointmentStatus::Booked,
            2,
        )
        .await;
    assert!(matches!(revived, Err(ClinicalError::Conflict(_))));
    let listed = w
        .service
        .appointments(&w.as_client(), w.org, w.client.user, first(10))
        .await
        .expect("listed");
    assert_eq!(listed.items, vec![cancelled]);
}

#[tokio::test]
async fn an_admin_cancels_an_appointment_without_a_denial_in_the_log() {
    let w = World::new().await;
    let booked = w
        .service
        .book(
            &w.as_provider(),
            w.org,
            w.client.user,
            w.slot(9, w.provider),
        )
        .await
        .expect("booked");
    let events = w.events().len();
    w.service
        .set_appointment_status(
            &w.as_admin(),
            w.org,
            w.client.user,
            booked.id,
            AppointmentStatus::Cancelled,
            1,
        )
        .await
        .expect("cancelled by the practice");
    let logged = &w.events()[events..];
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0].outcome, AuditOutcome::Allowed);
    assert_eq!(logged[0].purpose, Purpose::Operations);
    // An outsider still cannot.
    let refused = w
        .service
        .set_appointment_status(
            &w.as_outsider(),
            w.org,
            w.client.user,
            booked.id,
            AppointmentStatus::Cancelled,
            2,
        )
        .await;
    assert!(matches!(refused, Err(ClinicalError::NotFound)));
}

#[tokio::test]
async fn clients_are_listed_to_their_providers_and_to_admins_only() {
    let w = World::new().await;
    let users = |page: Page<clinical::ports::ClientListing>| {
        page.items.iter().map(|l| l.client.user).collect::<Vec<_>>()
    };
    let mine = w
        .service
        .clients(&w.as_provider(), w.org, first(10))
        .await
        .expect("listed");
    assert_eq!(users(mine), vec![w.client.user]);
    let all = w
        .service
        .clients(&w.as_admin(), w.org, first(10))
        .await
        .expect("listed");
    assert_eq!(users(all), vec![w.client.user, w.other_client.user]);
    let paged = w
        .service
        .clients(&w.as_admin(), w.org, first(1))
        .await
        .expect("listed");
    let rest = w
        .service
        .clients(
            &w.as_admin(),
            w.org,
            PageRequest {
                after: paged.next,
                limit: 1,
            },
        )
        .await
        .expect("listed");
    assert_eq!(users(rest), vec![w.other_client.user]);
    let none = w
        .service
        .clients(&w.as_outsider(), w.org, first(10))
        .await
        .expect("listed");
    assert!(none.items.is_empty());
    assert!(matches!(
        w.service.clients(&w.as_client(), w.org, first(10)).await,
        Err(ClinicalError::Forbidden(_))
    ));
    assert!(matches!(
        w.service.clients(&w.as_foreigner(), w.org, first(10)).await,
        Err(ClinicalError::NotFound)
    ));
}

#[tokio::test]
async fn an_admin_adds_a_provider_to_the_team_once_and_ending_it_closes_access_the_next_day() {
    let w = World::new().await;
    let record = w.written(condition("Low back pain")).await;
    let add = async |provider| {
        w.service
            .add_care_team_member(
                &w.as_admin(),
                w.org,
                w.client.user,
                provider,
                (w.today(), None),
            )
            .await
    };
    for not_a_provider in [w.admin, w.other_client.user, w.foreigner] {
        assert!(matches!(
            add(not_a_provider).await,
            Err(ClinicalError::Invalid(_))
        ));
        assert_eq!(denial(&w.last_event()), Some("invalid"));
    }
    let member = add(w.outsider).await.expect("added");
    assert_eq!(member.added_by, w.admin);
    assert!(matches!(
        add(w.outsider).await,
        Err(ClinicalError::Conflict(_))
    ));
    assert_eq!(denial(&w.last_event()), Some("conflict"));
    w.read_condition(&w.as_outsider(), record.id)
        .await
        .expect("now on the team");
    assert_eq!(w.last_event().purpose, Purpose::Treatment);

    w.service
        .end_care_team_membership(&w.as_admin(), w.org, w.client.user, w.outsider, w.today())
        .await
        .expect("ended");
    w.read_condition(&w.as_outsider(), record.id)
        .await
        .expect("the last day is still on the team");
    let team = w
        .service
        .care_team(&w.as_client(), w.org, w.client.user)
        .await
        .expect("the team");
    let ended = team
        .iter()
        .find(|m| m.provider == w.outsider)
        .expect("listed");
    assert_eq!(ended.ends_on, Some(w.today()));

    w.clock.advance(Duration::days(1));
    assert!(matches!(
        w.read_condition(&w.as_outsider(), record.id).await,
        Err(ClinicalError::NotFound)
    ));
    assert_eq!(denial(&w.last_event()), Some("no_relationship"));
    assert!(matches!(
        w.service
            .end_care_team_membership(&w.as_admin(), w.org, w.client.user, w.outsider, w.today())
            .await,
        Err(ClinicalError::NotFound)
    ));
    // The repository agrees with what the service saw.
    assert!(
        !w.repo
            .on_care_team(&w.client, w.outsider, w.today())
            .await
            .expect("read")
    );
}
