//! The consent service over the in-memory adapters: what it records, refuses,
//! decides, verifies, announces, exports and erases.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use consent::authorisation::{Expiry, HipaaAuthorisation, Signature};
use consent::ledger::{Authority, Channel, LedgerAction, LedgerError};
use consent::memory::{MemoryNotifier, MemoryRepository};
use consent::policy::{PRIVACY_NOTICE, PolicyVersion};
use consent::ports::{ConsentRepository, PracticeSettings};
use consent::service::{Change, ConsentServiceError};
use consent::{ConsentPersonalData, ConsentService, MarketingMode};
use kernel::personal_data::RecordFate;
use kernel::{
    Actor, AuditEvent, AuditReceipt, AuditSink, ClientInfo, ConsentDecision, ConsentDenial,
    ConsentGate, ConsentQuery, DataCategory, OrganisationId, PersonalData, Purpose, Recipient,
    RequestContext, RequestId, SubjectId, UserId,
};

#[derive(Default)]
struct Recorded(Mutex<Vec<AuditEvent>>);

#[async_trait]
impl AuditSink for Recorded {
    async fn record(&self, event: AuditEvent) -> Result<AuditReceipt, kernel::AuditError> {
        let mut events = self.0.lock().expect("lock");
        events.push(event);
        Ok(AuditReceipt {
            chain: uuid::Uuid::nil(),
            sequence: events.len() as u64,
        })
    }
}

struct World {
    repository: Arc<MemoryRepository>,
    notifier: Arc<MemoryNotifier>,
    audit: Arc<Recorded>,
    service: ConsentService,
    now: DateTime<Utc>,
}

fn ctx(at: DateTime<Utc>) -> RequestContext {
    RequestContext::new(
        Actor::Member {
            user: UserId::new(),
            roles: kernel::RoleSet::default(),
        },
        None,
        Purpose::SubjectRequest,
        RequestId::new(),
        ClientInfo::new(
            Some("198.51.100.4".parse().expect("ip")),
            Some("canary-agent/1"),
        ),
        at,
    )
}

impl World {
    async fn new() -> Self {
        let repository = Arc::new(MemoryRepository::new());
        let notifier = Arc::new(MemoryNotifier::default());
        let audit = Arc::new(Recorded::default());
        let service = ConsentService::new(repository.clone(), notifier.clone(), audit.clone());
        let now = Utc
            .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .single()
            .expect("time");
        let notice = PolicyVersion::new(PRIVACY_NOTICE, "1", 0, "v1", false, "", 0).expect("v");
        service
            .publish(&ctx(now), &notice)
            .await
            .expect("published");
        Self {
            repository,
            notifier,
            audit,
            service,
            now,
        }
    }

    fn ctx(&self) -> RequestContext {
        ctx(self.now)
    }

    async fn change(
        &self,
        subject: SubjectId,
        action: LedgerAction,
        purpose: Purpose,
    ) -> Result<consent::ledger::LedgerEvent, ConsentServiceError> {
        let change = Change {
            purpose: Some(purpose),
            ..Change::by_person(action, Channel::Web)
        };
        self.service.record(&self.ctx(), subject, &change).await
    }

    async fn decide(&self, subject: SubjectId, purpose: Purpose) -> ConsentDecision {
        self.service
            .decide(&ConsentQuery {
                subject,
                purpose,
                recipient: Recipient::Subject,
                category: DataCategory::HealthRecord,
                at: self.now,
            })
            .await
            .expect("decides")
    }
}

fn denial(d: &ConsentDecision) -> Option<ConsentDenial> {
    match d {
        ConsentDecision::Deny { reason } => Some(*reason),
        ConsentDecision::Allow { .. } => None,
    }
}

#[tokio::test]
async fn a_grant_and_its_withdrawal_are_one_event_each_and_each_is_audited() {
    let w = World::new().await;
    let subject = SubjectId::new();
    assert_eq!(
        denial(&w.decide(subject, Purpose::Research).await),
        Some(ConsentDenial::NotGiven)
    );
    let grant = w
        .change(subject, LedgerAction::Grant, Purpose::Research)
        .await
        .expect("grant");
    assert_eq!(grant.body.policy_version, "privacy-notice@1");
    assert!(w.decide(subject, Purpose::Research).await.is_allowed());
    w.change(subject, LedgerAction::Withdraw, Purpose::Research)
        .await
        .expect("withdraw");
    assert_eq!(
        denial(&w.decide(subject, Purpose::Research).await),
        Some(ConsentDenial::Withdrawn)
    );
    let audited = w.audit.0.lock().expect("lock").len();
    assert_eq!(audited, 3, "the notice, the grant and the withdrawal");
}

#[tokio::test]
async fn withdrawing_what_was_never_given_is_refused_and_writes_nothing() {
    let w = World::new().await;
    let subject = SubjectId::new();
    let refused = w
        .change(subject, LedgerAction::Withdraw, Purpose::Research)
        .await;
    assert!(matches!(
        refused,
        Err(ConsentServiceError::Ledger(LedgerError::NothingToEnd(
            "consent"
        )))
    ));
    assert!(
        w.repository
            .history(subject)
            .await
            .expect("history")
            .is_empty()
    );
    let backwards = Change {
        purpose: Some(Purpose::Research),
        effective_at: Some(w.now),
        expires_at: Some(w.now - Duration::days(1)),
        ..Change::by_person(LedgerAction::Grant, Channel::Web)
    };
    assert!(matches!(
        w.service.record(&w.ctx(), subject, &backwards).await,
        Err(ConsentServiceError::Ledger(LedgerError::ExpiryBeforeEffect))
    ));
    assert!(
        w.repository
            .history(subject)
            .await
            .expect("history")
            .is_empty()
    );
}

#[tokio::test]
async fn the_attestation_opens_the_providers_uses_and_gpc_is_recorded_once() {
    let w = World::new().await;
    let subject = SubjectId::new();
    assert_eq!(
        denial(&w.decide(subject, Purpose::Treatment).await),
        Some(ConsentDenial::NotAttested)
    );
    w.service
        .attest(
            &w.ctx(),
            subject,
            UserId::new(),
            Channel::Paper,
            Some("form-17".into()),
            w.now,
        )
        .await
        .expect("attested");
    assert!(w.decide(subject, Purpose::Treatment).await.is_allowed());

    assert!(
        w.service
            .global_privacy_control(&w.ctx(), subject)
            .await
            .expect("gpc")
            .is_some()
    );
    assert!(
        w.service
            .global_privacy_control(&w.ctx(), subject)
            .await
            .expect("gpc")
            .is_none()
    );
    assert_eq!(
        denial(&w.decide(subject, Purpose::Analytics).await),
        Some(ConsentDenial::OptedOut)
    );
}

#[tokio::test]
async fn marketing_preferences_follow_the_practice_mode_and_change_in_one_event() {
    let w = World::new().await;
    let org = OrganisationId::new();
    let subject = SubjectId::new();
    w.service
        .register(subject, Some(org), false)
        .await
        .expect("registered");
    let prefs = w.service.preferences(subject, w.now).await.expect("prefs");
    assert!(
        !prefs.marketing_email && !prefs.marketing_sms,
        "opt-in by default (U4)"
    );

    let mut settings = PracticeSettings::default();
    settings.policy.marketing = MarketingMode::OptOut;
    w.service
        .set_settings(&w.ctx(), org, &settings)
        .await
        .expect("settings");
    let prefs = w.service.preferences(subject, w.now).await.expect("prefs");
    assert!(
        prefs.marketing_email && prefs.marketing_sms,
        "opt-out practice"
    );

    let off = w
        .service
        .set_preference(
            &w.ctx(),
            subject,
            Purpose::MarketingSms,
            false,
            Authority::Person,
            Channel::Web,
        )
        .await
        .expect("off");
    assert_eq!(off.map(|e| e.body.action), Some(LedgerAction::Object));
    let unchanged = w
        .service
        .set_preference(
            &w.ctx(),
            subject,
            Purpose::MarketingSms,
            false,
            Authority::Person,
            Channel::Web,
        )
        .await
        .expect("off again");
    assert!(unchanged.is_none(), "nothing to change, nothing recorded");
    let prefs = w.service.preferences(subject, w.now).await.expect("prefs");
    assert!(prefs.marketing_email && !prefs.marketing_sms);
}

fn authorisation(now: DateTime<Utc>) -> HipaaAuthorisation {
    HipaaAuthorisation {
        information: "Exercise adherence logs".into(),
        disclosers: "Sunrise Physio".into(),
        recipients: "Acme Research".into(),
        purpose: Purpose::ThirdPartySharing,
        purpose_statement: "Outcome study".into(),
        recipient_name: Some("Acme Research".into()),
        expiry: Expiry::Date((now + Duration::days(365)).timestamp_micros()),
        signature: Signature {
            signer: "Canary Signer".into(),
            signed_at: now.timestamp_micros(),
            representative_authority: None,
        },
        revocation_statement: "You may revoke this at any time in writing.".into(),
        conditioning_statement: "Care does not depend on it.".into(),
        redisclosure_statement: "The recipient may redisclose it.".into(),
    }
}

#[tokio::test]
async fn an_authorisation_grants_sharing_with_its_named_recipient_until_revoked() {
    let w = World::new().await;
    let subject = SubjectId::new();
    let (id, grant) = w
        .service
        .authorise(
            &w.ctx(),
            subject,
            &authorisation(w.now),
            Authority::Person,
            Channel::Web,
        )
        .await
        .expect("authorised");
    assert_eq!(grant.body.recipient.as_deref(), Some("Acme Research"));
    let query = |name: &str| ConsentQuery {
        subject,
        purpose: Purpose::ThirdPartySharing,
        recipient: Recipient::ThirdParty { name: name.into() },
        category: DataCategory::ExercisePrograms,
        at: w.now,
    };
    assert!(
        w.service
            .decide(&query("Acme Research"))
            .await
            .expect("d")
            .is_allowed()
    );
    assert!(
        !w.service
            .decide(&query("Someone Else"))
            .await
            .expect("d")
            .is_allowed()
    );
    w.service
        .revoke(&w.ctx(), subject, id, Authority::Person, Channel::Web)
        .await
        .expect("revoked");
    assert!(
        !w.service
            .decide(&query("Acme Research"))
            .await
            .expect("d")
            .is_allowed()
    );
    assert!(matches!(
        w.service
            .revoke(&w.ctx(), subject, id, Authority::Person, Channel::Web)
            .await,
        Err(ConsentServiceError::Ledger(LedgerError::NothingToEnd(_)))
    ));
}

#[tokio::test]
async fn a_material_policy_change_tells_everyone_with_a_record() {
    let w = World::new().await;
    let subjects = [SubjectId::new(), SubjectId::new(), SubjectId::new()];
    for s in subjects {
        w.change(s, LedgerAction::Grant, Purpose::Research)
            .await
            .expect("grant");
    }
    let later = w.now.timestamp_micros();
    let minor =
        PolicyVersion::new(PRIVACY_NOTICE, "2", later, "v2", false, "typo", later).expect("v");
    assert_eq!(
        w.service
            .publish(&w.ctx(), &minor)
            .await
            .expect("published"),
        0
    );
    let material = PolicyVersion::new(PRIVACY_NOTICE, "3", later + 1, "v3", true, "new use", later)
        .expect("v");
    assert_eq!(
        w.service
            .publish(&w.ctx(), &material)
            .await
            .expect("published"),
        3
    );
    let told: Vec<_> = w.notifier.sent().into_iter().map(|(s, _)| s).collect();
    for s in subjects {
        assert!(told.contains(&s));
    }
    assert!(matches!(
        w.service.publish(&w.ctx(), &material).await,
        Err(ConsentServiceError::PolicyExists)
    ));
    let backdated =
        PolicyVersion::new(PRIVACY_NOTICE, "4", 1, "v4", false, "", later + 2).expect("v");
    assert!(matches!(
        w.service.publish(&w.ctx(), &backdated).await,
        Err(ConsentServiceError::Policy(_))
    ));
}

#[tokio::test]
async fn verification_finds_an_edited_event_and_a_projection_out_of_step() {
    let w = World::new().await;
    let subject = SubjectId::new();
    w.change(subject, LedgerAction::Grant, Purpose::Research)
        .await
        .expect("grant");
    let second = w
        .change(subject, LedgerAction::Withdraw, Purpose::Research)
        .await
        .expect("w");
    w.change(SubjectId::new(), LedgerAction::Grant, Purpose::Research)
        .await
        .expect("grant");
    let report = w.service.verify(None).await.expect("verified");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.chains, report.events), (2, 3));

    let mut edited = second.clone();
    edited.body.action = LedgerAction::Grant;
    w.repository.tamper(edited);
    let report = w.service.verify(None).await.expect("verified");
    assert_eq!(report.breaks.len(), 1);
    assert_eq!(report.breaks[0].0, second.chain);
    assert_eq!(report.breaks[0].1.sequence, 2);
}

#[tokio::test]
async fn export_gives_the_full_history_and_erasure_keeps_only_the_pseudonymous_proof() {
    let w = World::new().await;
    let subject = SubjectId::new();
    w.change(subject, LedgerAction::Grant, Purpose::Research)
        .await
        .expect("grant");
    w.change(subject, LedgerAction::Withdraw, Purpose::Research)
        .await
        .expect("withdraw");
    let (id, _) = w
        .service
        .authorise(
            &w.ctx(),
            subject,
            &authorisation(w.now),
            Authority::Person,
            Channel::Web,
        )
        .await
        .expect("authorised");
    let port = ConsentPersonalData::new(w.service.clone());
    let exported = port.export(&w.ctx(), subject).await.expect("export");
    assert_eq!(exported.len(), 4, "three events and one authorisation");
    let text =
        serde_json::to_string(&exported.iter().map(|r| &r.data).collect::<Vec<_>>()).expect("json");
    assert!(
        text.contains("canary-agent/1"),
        "the evidence is the person's to see"
    );
    assert!(text.contains("Canary Signer"));
    assert!(text.contains(&id.to_string()));

    let chain = w
        .repository
        .subject(subject)
        .await
        .expect("read")
        .expect("known")
        .state
        .chain;
    let outcomes = port.erase(&w.ctx(), subject).await.expect("erase");
    let retained = outcomes
        .iter()
        .filter(|o| matches!(o.fate, RecordFate::Retained { .. }))
        .count();
    let deleted = outcomes
        .iter()
        .filter(|o| o.fate == RecordFate::Deleted)
        .count();
    assert_eq!(
        (retained, deleted),
        (3, 4),
        "events kept; evidence and authorisation gone"
    );
    assert!(w.repository.subject(subject).await.expect("read").is_none());
    assert!(
        port.export(&w.ctx(), subject)
            .await
            .expect("export")
            .is_empty()
    );
    let left = w.repository.events_after(None, 100).await.expect("events");
    assert_eq!(left.iter().filter(|e| e.chain == chain).count(), 3);
    let report = w.service.verify(None).await.expect("verified");
    assert!(
        report.breaks.is_empty(),
        "the pseudonymous chain still verifies"
    );
    assert!(
        port.erase(&w.ctx(), subject)
            .await
            .expect("again")
            .is_empty(),
        "idempotent"
    );
}
