//! The engine over the in-memory repository and fake contexts: filing and
//! duplicates, authority, verification, the consent path, and an erasure that
//! crashes half-way and is resumed.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use kernel::personal_data::{
    DataMapEntry, ErasureOutcome, ExportedRecord, PersonalData, PersonalDataError, RecordFate,
    Rectification, RestrictionScope, Retention, Source,
};
use kernel::{
    Actor, AuditError, AuditEvent, AuditOutcome, AuditReceipt, AuditSink, ClientInfo, DataCategory,
    OrganisationId, Purpose, Regime, RequestContext, RequestId, ResourceRef, Role, RoleSet,
    SubjectId, UserId,
};
use serde_json::json;

use super::*;
use crate::memory::MemoryRightsRepository;
use crate::ports::{ArchivePart, Packed, Person};
use crate::statements::Controller;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("valid time")
        .with_timezone(&Utc)
}

struct FakeContext {
    name: &'static str,
    subject: SubjectId,
    fail_next_erase: AtomicBool,
    erase_calls: AtomicU32,
    restricted: Mutex<Vec<(RestrictionScope, bool)>>,
}

impl FakeContext {
    fn new(name: &'static str, subject: SubjectId) -> Arc<Self> {
        Arc::new(Self {
            name,
            subject,
            fail_next_erase: AtomicBool::new(false),
            erase_calls: AtomicU32::new(0),
            restricted: Mutex::new(Vec::new()),
        })
    }

    fn record(&self) -> ResourceRef {
        ResourceRef::new("condition", self.subject.as_uuid())
    }
}

#[async_trait]
impl PersonalData for FakeContext {
    fn context(&self) -> &'static str {
        self.name
    }

    fn describe(&self) -> Vec<DataMapEntry> {
        vec![DataMapEntry {
            category: DataCategory::HealthRecord,
            description: "records".into(),
            sources: vec![Source::Provider],
            purposes: vec![Purpose::Treatment],
            recipients: vec!["care team".into()],
            retention: Retention::WhileActive,
        }]
    }

    async fn export(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
    ) -> Result<Vec<ExportedRecord>, PersonalDataError> {
        if subject != self.subject || self.erase_calls.load(Ordering::SeqCst) > 0 {
            return Ok(Vec::new());
        }
        Ok(vec![ExportedRecord {
            category: DataCategory::HealthRecord,
            resource: self.record(),
            created_at: ctx.at() - Duration::days(30),
            data: json!({"context": self.name, "text": "Back pain"}),
        }])
    }

    async fn rectify(
        &self,
        _ctx: &RequestContext,
        _subject: SubjectId,
        change: Rectification,
    ) -> Result<(), PersonalDataError> {
        if change.resource == self.record() {
            Ok(())
        } else {
            Err(PersonalDataError::NotFound)
        }
    }

    async fn erase(
        &self,
        _ctx: &RequestContext,
        subject: SubjectId,
    ) -> Result<Vec<ErasureOutcome>, PersonalDataError> {
        if self.fail_next_erase.swap(false, Ordering::SeqCst) {
            return Err(PersonalDataError::Unavailable("the disk is full".into()));
        }
        let first = self.erase_calls.fetch_add(1, Ordering::SeqCst) == 0;
        Ok(if first && subject == self.subject {
            vec![ErasureOutcome {
                category: DataCategory::HealthRecord,
                resource: self.record(),
                fate: RecordFate::Deleted,
            }]
        } else {
            Vec::new()
        })
    }

    async fn restrict(
        &self,
        _ctx: &RequestContext,
        _subject: SubjectId,
        scope: RestrictionScope,
        lift: bool,
    ) -> Result<(), PersonalDataError> {
        self.restricted.lock().expect("lock").push((scope, lift));
        Ok(())
    }
}

#[derive(Default)]
struct FakePeople {
    people: Vec<Person>,
    guardians: Vec<(UserId, UserId)>,
    clients: Vec<(OrganisationId, UserId)>,
}

#[async_trait]
impl People for FakePeople {
    async fn person(&self, user: UserId) -> Result<Option<Person>, PortError> {
        Ok(self.people.iter().find(|p| p.user == user).copied())
    }
    async fn person_of_subject(&self, subject: SubjectId) -> Result<Option<Person>, PortError> {
        Ok(self.people.iter().find(|p| p.subject == subject).copied())
    }
    async fn is_guardian(&self, guardian: UserId, minor: UserId) -> Result<bool, PortError> {
        Ok(self.guardians.contains(&(guardian, minor)))
    }
    async fn is_client(
        &self,
        organisation: OrganisationId,
        user: UserId,
    ) -> Result<bool, PortError> {
        Ok(self.clients.contains(&(organisation, user)))
    }
    async fn clients_of(
        &self,
        organisation: OrganisationId,
        after: Option<crate::ports::ClientsCursor>,
        limit: u32,
    ) -> Result<crate::ports::ClientsPage, PortError> {
        // One client per page, whatever the limit, so paging is exercised.
        let _ = limit;
        let mut clients: Vec<Person> = self
            .people
            .iter()
            .filter(|p| self.clients.contains(&(organisation, p.user)))
            .filter(|p| after.is_none_or(|a| p.user.as_uuid() > a.id))
            .copied()
            .collect();
        clients.sort_by_key(|p| p.user);
        clients.truncate(1);
        let next = clients.last().map(|p| crate::ports::ClientsCursor {
            at: DateTime::<Utc>::MIN_UTC,
            id: p.user.as_uuid(),
        });
        Ok(crate::ports::ClientsPage {
            people: clients,
            next,
        })
    }
}

/// Allows research on health records for the subjects listed, nothing else.
struct FakeGate {
    research: Vec<SubjectId>,
}

#[async_trait]
impl ConsentGate for FakeGate {
    async fn decide(
        &self,
        query: &ConsentQuery,
    ) -> Result<kernel::ConsentDecision, kernel::ConsentError> {
        Ok(
            if query.purpose == Purpose::Research
                && query.category == DataCategory::HealthRecord
                && self.research.contains(&query.subject)
            {
                kernel::ConsentDecision::Allow {
                    basis: LegalGround::new(Regime::Gdpr, "GDPR Art. 9(2)(a)", "consent"),
                    evidence: Vec::new(),
                }
            } else {
                kernel::ConsentDecision::Deny {
                    reason: kernel::ConsentDenial::NotGiven,
                }
            },
        )
    }
}

#[derive(Default)]
struct FakeConsent {
    applied: Mutex<Vec<(Requester, ConsentInstruction)>>,
}

#[async_trait]
impl ConsentLedger for FakeConsent {
    async fn apply(
        &self,
        _ctx: &RequestContext,
        _subject: SubjectId,
        requester: Requester,
        instruction: ConsentInstruction,
    ) -> Result<(), ConsentLedgerError> {
        if matches!(
            instruction,
            ConsentInstruction::Withdraw {
                purpose: Purpose::MarketingSms,
                ..
            }
        ) {
            return Err(ConsentLedgerError::Refused("nothing to withdraw".into()));
        }
        self.applied
            .lock()
            .expect("lock")
            .push((requester, instruction));
        Ok(())
    }
}

struct FakeKeys {
    repository: Arc<MemoryRightsRepository>,
    shredded: Mutex<Vec<(OrganisationId, SubjectId)>>,
}

#[async_trait]
impl SubjectKeys for FakeKeys {
    async fn shred(
        &self,
        organisation: OrganisationId,
        subject: SubjectId,
    ) -> Result<u64, PortError> {
        self.repository.forget_archives_of(subject);
        self.shredded
            .lock()
            .expect("lock")
            .push((organisation, subject));
        Ok(1)
    }
}

/// Names and lengths, and a made-up digest: the real packer is the server's.
struct FakePacker;

impl ArchivePacker for FakePacker {
    fn media_type(&self) -> &'static str {
        "application/x-test"
    }
    fn pack(&self, parts: &[ArchivePart]) -> Result<Packed, PortError> {
        let mut bytes = Vec::new();
        for part in parts {
            bytes.extend_from_slice(part.name.as_bytes());
            bytes.push(b'\n');
            bytes.extend_from_slice(&part.content);
            bytes.push(b'\n');
        }
        let sha256 = format!("{:064x}", bytes.len());
        Ok(Packed { bytes, sha256 })
    }
}

#[derive(Default)]
struct FakeAudit {
    events: Mutex<Vec<AuditEvent>>,
}

#[async_trait]
impl AuditSink for FakeAudit {
    async fn record(&self, event: AuditEvent) -> Result<AuditReceipt, AuditError> {
        let mut events = self.events.lock().expect("lock");
        events.push(event);
        Ok(AuditReceipt {
            chain: uuid::Uuid::nil(),
            sequence: events.len() as u64,
        })
    }
}

struct World {
    service: RightsService,
    repository: Arc<MemoryRightsRepository>,
    clinical: Arc<FakeContext>,
    identity: Arc<FakeContext>,
    consent: Arc<FakeConsent>,
    keys: Arc<FakeKeys>,
    audit: Arc<FakeAudit>,
    practice: OrganisationId,
    client: Person,
    guardian: Person,
    agent: Person,
    officer: UserId,
    provider: UserId,
    now: DateTime<Utc>,
}

fn world() -> World {
    let practice = OrganisationId::new();
    let person = || Person {
        user: UserId::new(),
        subject: SubjectId::new(),
        home_organisation: practice,
    };
    let (client, guardian, agent) = (person(), person(), person());
    let repository = Arc::new(MemoryRightsRepository::new());
    let clinical = FakeContext::new("clinical", client.subject);
    let identity = FakeContext::new("identity", client.subject);
    let consent = Arc::new(FakeConsent::default());
    let keys = Arc::new(FakeKeys {
        repository: repository.clone(),
        shredded: Mutex::new(Vec::new()),
    });
    let audit = Arc::new(FakeAudit::default());
    let people = FakePeople {
        people: vec![client, guardian, agent],
        guardians: vec![(guardian.user, client.user)],
        clients: vec![
            (practice, client.user),
            (practice, guardian.user),
            (practice, agent.user),
        ],
    };
    let service = RightsService::new(
        RightsPorts {
            repository: repository.clone(),
            contexts: vec![identity.clone(), clinical.clone()],
            people: Arc::new(people),
            consent: consent.clone(),
            keys: keys.clone(),
            packer: Arc::new(FakePacker),
            audit: audit.clone(),
            gate: Arc::new(FakeGate {
                research: vec![client.subject],
            }),
        },
        Statements::new(
            Controller {
                name: "Test Care Ltd".into(),
                address: "1 Test Street".into(),
                privacy_officer_email: "privacy@example.org".into(),
            },
            Vec::new(),
        ),
    );
    World {
        service,
        repository,
        clinical,
        identity,
        consent,
        keys,
        audit,
        practice,
        client,
        guardian,
        agent,
        officer: UserId::new(),
        provider: UserId::new(),
        now: at("2026-11-24T10:00:00Z"),
    }
}

impl World {
    fn ctx(&self, user: UserId, roles: RoleSet) -> RequestContext {
        RequestContext::new(
            Actor::Member { user, roles },
            Some(self.practice),
            Purpose::SubjectRequest,
            RequestId::new(),
            ClientInfo::default(),
            self.now,
        )
    }
    fn person(&self, who: Person) -> RequestContext {
        self.ctx(who.user, RoleSet::only(Role::Client))
    }
    fn officer(&self) -> RequestContext {
        self.ctx(self.officer, RoleSet::only(Role::PrivacyOfficer))
    }
    fn denials(&self) -> Vec<&'static str> {
        self.audit
            .events
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|e| match e.outcome {
                AuditOutcome::Denied { reason } => Some(reason),
                AuditOutcome::Allowed => None,
            })
            .collect()
    }
}

fn filing(kind: RequestKind, regime: Regime, on_behalf_of: OnBehalfOf) -> Filing {
    Filing {
        kind,
        regime,
        on_behalf_of,
        detail: RequestDetail::None,
    }
}

#[tokio::test]
async fn a_persons_access_request_runs_at_once_and_an_identical_open_one_is_the_first() {
    let w = world();
    let me = w.person(w.client);
    let access = w
        .service
        .file(
            &me,
            filing(RequestKind::Access, Regime::Gdpr, OnBehalfOf::Myself),
        )
        .await
        .expect("files");
    assert!(access.created);
    assert_eq!(access.request.status, RequestStatus::Completed);
    let Some(RequestResult::Archive { bytes, .. }) = access.request.result else {
        panic!("an archive");
    };
    let download = w
        .service
        .download(&me, access.request.id)
        .await
        .expect("downloads");
    assert_eq!(download.bytes.len() as u64, bytes);
    let text = String::from_utf8_lossy(&download.bytes);
    for part in [
        "export.json",
        "fhir-bundle.json",
        "statements.json",
        "Back pain",
        "Test Care Ltd",
    ] {
        assert!(text.contains(part), "{part}");
    }
    // Someone else: not found, and the refusal is audited.
    let stranger = w.person(w.agent);
    assert!(matches!(
        w.service.download(&stranger, access.request.id).await,
        Err(RightsError::NotFound)
    ));
    assert!(w.denials().contains(&"not_a_party"));

    let erasure = filing(RequestKind::Erasure, Regime::Gdpr, OnBehalfOf::Myself);
    let first = w.service.file(&me, erasure.clone()).await.expect("files");
    assert!(first.created);
    assert_eq!(
        first.request.status,
        RequestStatus::Verified,
        "waits for the officer"
    );
    let again = w.service.file(&me, erasure).await.expect("files");
    assert!(!again.created);
    assert_eq!(again.request.id, first.request.id);
    assert!(matches!(
        w.service
            .file(
                &me,
                filing(RequestKind::CcpaKnow, Regime::Gdpr, OnBehalfOf::Myself)
            )
            .await,
        Err(RightsError::Invalid { field: "kind", .. })
    ));
}

#[tokio::test]
async fn an_erasure_that_fails_half_way_is_resumed_and_still_reports_every_fate() {
    let w = world();
    let filed = w
        .service
        .file(
            &w.person(w.client),
            filing(RequestKind::Erasure, Regime::Gdpr, OnBehalfOf::Myself),
        )
        .await
        .expect("files");
    // clinical erases first; identity then fails.
    w.identity.fail_next_erase.store(true, Ordering::SeqCst);
    let id = filed.request.id;
    assert!(matches!(
        w.service.execute(&w.officer(), w.practice, id).await,
        Err(RightsError::Unavailable(_))
    ));
    let stuck = w
        .repository
        .request(id)
        .await
        .expect("reads")
        .expect("kept");
    assert_eq!(
        stuck.status,
        RequestStatus::InProgress,
        "acknowledged, resumable"
    );
    let journal = w.repository.erasure_steps(id).await.expect("reads");
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].context, "clinical");
    assert!(
        w.keys.shredded.lock().expect("lock").is_empty(),
        "the key goes last"
    );

    let done = w
        .service
        .execute(&w.officer(), w.practice, id)
        .await
        .expect("resumes");
    assert_eq!(done.status, RequestStatus::Completed);
    assert_eq!(
        w.clinical.erase_calls.load(Ordering::SeqCst),
        1,
        "not erased twice"
    );
    let Some(RequestResult::Erasure { outcomes }) = done.result else {
        panic!("outcomes");
    };
    let kinds: Vec<&str> = outcomes.iter().map(|o| o.resource.kind).collect();
    assert_eq!(
        kinds,
        ["condition", "condition", "subject_data_key"],
        "clinical's (journaled), identity's, the key"
    );
    assert_eq!(
        *w.keys.shredded.lock().expect("lock"),
        [(w.practice, w.client.subject)]
    );
    assert!(matches!(
        w.service.execute(&w.officer(), w.practice, id).await,
        Err(RightsError::Conflict(_))
    ));
}

#[tokio::test]
async fn agents_act_within_a_confirmed_unexpired_proof_and_refusals_are_audited() {
    let w = world();
    let authority = w
        .service
        .appoint_agent(
            &w.person(w.client),
            w.agent.user,
            "POA-1",
            Scope::Kinds(vec![RequestKind::Access]),
            w.now + Duration::days(90),
        )
        .await
        .expect("appoints");
    let agent = w.person(w.agent);
    let on = OnBehalfOf::Authority { id: authority.id };
    let filed = w
        .service
        .file(&agent, filing(RequestKind::Access, Regime::Ccpa, on))
        .await
        .expect("files");
    assert_eq!(filed.request.status, RequestStatus::AwaitingVerification);
    assert_eq!(filed.request.subject, w.client.subject);
    assert!(matches!(
        w.service.download(&agent, filed.request.id).await,
        Err(RightsError::NotFound)
    ));
    // Out of scope, and someone else using the proof: not found.
    assert!(matches!(
        w.service
            .file(&agent, filing(RequestKind::Erasure, Regime::Ccpa, on))
            .await,
        Err(RightsError::NotFound)
    ));
    assert!(matches!(
        w.service
            .file(
                &w.person(w.guardian),
                filing(RequestKind::Access, Regime::Ccpa, on)
            )
            .await,
        Err(RightsError::NotFound)
    ));
    w.service
        .revoke_agent(&w.person(w.client), authority.id)
        .await
        .expect("revokes");
    assert!(matches!(
        w.service
            .file(&agent, filing(RequestKind::Access, Regime::Gdpr, on))
            .await,
        Err(RightsError::AuthorityExpired)
    ));
    let denials = w.denials();
    for reason in [
        "authority_out_of_scope",
        "no_authority",
        "authority_expired",
    ] {
        assert!(denials.contains(&reason), "{reason} in {denials:?}");
    }
}

#[tokio::test]
async fn guardians_and_providers_wait_for_verification_and_a_failure_denies_on_the_ground() {
    let w = world();
    let minor = OnBehalfOf::Minor {
        user: w.client.user,
    };
    let guardian = w
        .service
        .file(
            &w.person(w.guardian),
            filing(RequestKind::Erasure, Regime::Gdpr, minor),
        )
        .await
        .expect("files");
    assert_eq!(
        guardian.request.requester,
        Requester::Guardian {
            user: w.guardian.user
        }
    );
    assert!(matches!(
        w.service
            .file(
                &w.person(w.agent),
                filing(RequestKind::Access, Regime::Gdpr, minor)
            )
            .await,
        Err(RightsError::NotFound)
    ));
    assert!(w.denials().contains(&"not_guardian"));

    let provider = w.ctx(w.provider, RoleSet::only(Role::Provider));
    let client = OnBehalfOf::Client {
        user: w.client.user,
    };
    let filed = w
        .service
        .file(
            &provider,
            filing(RequestKind::Access, Regime::Hipaa, client),
        )
        .await
        .expect("files");
    assert_eq!(filed.request.status, RequestStatus::AwaitingVerification);
    assert!(matches!(
        w.service
            .file(
                &provider,
                filing(
                    RequestKind::Access,
                    Regime::Hipaa,
                    OnBehalfOf::Client {
                        user: UserId::new()
                    }
                )
            )
            .await,
        Err(RightsError::NotFound)
    ));
    // Only the practice's privacy officer verifies.
    assert!(matches!(
        w.service
            .verify(
                &provider,
                w.practice,
                filed.request.id,
                Verification::Verified
            )
            .await,
        Err(RightsError::Forbidden(_))
    ));
    let denied = w
        .service
        .verify(
            &w.officer(),
            w.practice,
            filed.request.id,
            Verification::Failed,
        )
        .await
        .expect("records");
    let RequestStatus::Denied { ground, .. } = &denied.status else {
        panic!("denied");
    };
    assert_eq!(ground.citation, "45 CFR 164.514(h)");
    assert!(w.denials().contains(&"verification_failed"));

    let verified = w
        .service
        .verify(
            &w.officer(),
            w.practice,
            guardian.request.id,
            Verification::Verified,
        )
        .await
        .expect("verifies");
    assert_eq!(
        verified.status,
        RequestStatus::Verified,
        "erasure waits to be carried out"
    );
    let queue = w
        .service
        .queue(&w.officer(), w.practice, false)
        .await
        .expect("lists");
    assert_eq!(queue.len(), 1);
}

#[tokio::test]
async fn restriction_objection_and_withdrawal_go_through_consent_on_the_requesters_authority() {
    let w = world();
    let me = w.person(w.client);
    let restriction = Filing {
        detail: RequestDetail::Restriction {
            categories: vec![DataCategory::HealthRecord],
            lift: false,
        },
        ..filing(RequestKind::Restriction, Regime::Gdpr, OnBehalfOf::Myself)
    };
    let done = w.service.file(&me, restriction).await.expect("files");
    assert_eq!(done.request.status, RequestStatus::Completed);
    assert_eq!(
        *w.clinical.restricted.lock().expect("lock"),
        [(
            RestrictionScope::Categories(vec![DataCategory::HealthRecord]),
            false
        )]
    );
    let objection = Filing {
        detail: RequestDetail::Objection {
            purpose: Purpose::MarketingEmail,
        },
        ..filing(RequestKind::Objection, Regime::Gdpr, OnBehalfOf::Myself)
    };
    w.service.file(&me, objection).await.expect("files");
    let applied = w.consent.applied.lock().expect("lock").clone();
    assert_eq!(
        applied,
        [
            (
                Requester::Subject {
                    user: w.client.user
                },
                ConsentInstruction::Restrict {
                    category: Some(DataCategory::HealthRecord)
                }
            ),
            (
                Requester::Subject {
                    user: w.client.user
                },
                ConsentInstruction::Object {
                    purpose: Purpose::MarketingEmail
                }
            ),
        ]
    );
    // A refusal of the ledger leaves the request acknowledged, in progress.
    let nothing = Filing {
        detail: RequestDetail::Withdrawal {
            purpose: Purpose::MarketingSms,
            recipient: None,
        },
        ..filing(RequestKind::Withdrawal, Regime::Gdpr, OnBehalfOf::Myself)
    };
    let kept = w.service.file(&me, nothing).await.expect("files");
    assert_eq!(kept.request.status, RequestStatus::InProgress);
    // A detail that does not fit the kind is refused.
    let wrong = Filing {
        detail: RequestDetail::Objection {
            purpose: Purpose::Analytics,
        },
        ..filing(RequestKind::Access, Regime::Gdpr, OnBehalfOf::Myself)
    };
    assert!(matches!(
        w.service.file(&me, wrong).await,
        Err(RightsError::Invalid {
            field: "detail",
            ..
        })
    ));
}

#[tokio::test]
async fn cases_are_received_listed_by_due_time_and_worked_by_the_office() {
    let w = world();
    let anonymous = RequestContext::new(
        Actor::Anonymous,
        None,
        Purpose::SubjectRequest,
        RequestId::new(),
        ClientInfo::default(),
        w.now,
    );
    let question = w
        .service
        .report(
            &w.person(w.client),
            CaseKind::PrivacyQuestion,
            None,
            "Who sees my notes?".into(),
        )
        .await
        .expect("reports");
    let concern = w
        .service
        .report(
            &anonymous,
            CaseKind::SecurityConcern,
            Some("me@example.org".into()),
            "Strange sign-in".into(),
        )
        .await
        .expect("reports");
    let office_user = UserId::new();
    let office = RequestContext::new(
        Actor::PlatformOperator { user: office_user },
        None,
        Purpose::Operations,
        RequestId::new(),
        ClientInfo::default(),
        w.now,
    );
    let open = w.service.open_cases(&office).await.expect("lists");
    assert_eq!(
        open.iter().map(|c| c.id).collect::<Vec<_>>(),
        [concern.id, question.id],
        "the 72-hour concern first"
    );
    assert!(matches!(
        w.service.open_cases(&w.person(w.client)).await,
        Err(RightsError::Forbidden(_))
    ));
    w.service
        .advance_case(
            &office,
            question.id,
            CaseStatus::Resolved,
            Some("Your care team.".into()),
        )
        .await
        .expect("moves");
    let mine = w
        .service
        .my_cases(&w.person(w.client))
        .await
        .expect("lists");
    assert_eq!(mine[0].status, CaseStatus::Resolved);
    assert!(matches!(
        w.service.case(&w.person(w.agent), question.id).await,
        Err(RightsError::NotFound)
    ));
}

#[tokio::test]
async fn a_research_extract_holds_only_consenting_clients_de_identified() {
    let w = world();
    let extract = w
        .service
        .research_extract(&w.officer(), w.practice, Purpose::Research)
        .await
        .expect("extracts");
    assert_eq!(extract.considered, 3);
    assert_eq!(extract.subjects.len(), 1, "only the client who consented");
    let text = serde_json::to_string(&extract).expect("serialises");
    for identifier in [
        w.client.subject.to_string(),
        w.client.user.to_string(),
        "Back pain".to_owned(),
    ] {
        assert!(!text.contains(&identifier), "{identifier} in {text}");
    }
    let reads: Vec<Option<SubjectId>> = w
        .audit
        .events
        .lock()
        .expect("lock")
        .iter()
        .filter(|e| e.resource.kind == resource::RESEARCH_EXTRACT)
        .map(|e| e.subject)
        .collect();
    assert_eq!(
        reads,
        [Some(w.client.subject), None],
        "the client read, then the extract"
    );
    assert!(matches!(
        w.service
            .research_extract(&w.person(w.client), w.practice, Purpose::Research)
            .await,
        Err(RightsError::Forbidden(_))
    ));
    assert!(matches!(
        w.service
            .research_extract(&w.officer(), w.practice, Purpose::Treatment)
            .await,
        Err(RightsError::Invalid {
            field: "purpose",
            ..
        })
    ));
}
