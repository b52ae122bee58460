//! Decisions: the projection of the ledger that answers "may this purpose touch
//! this category of this subject's data now?", without replaying the ledger.
//!
//! Each subject has one [`SubjectState`]: the head of their chain and what is in
//! force. [`SubjectState::append`] checks a new event against that state, chains
//! it after the head and folds it in; the repository stores the event and the new
//! state in one transaction, so the projection is never behind the ledger.
//! [`SubjectState::decide`] reads the state. The order of the checks is the order
//! of precedence:
//!
//! 1. a **restriction** of the category (D4, GDPR Art. 18) stops every purpose but
//!    the ones the law keeps open while restricted: the person's own requests, legal
//!    obligations, oversight and emergencies (Art. 18(2));
//! 2. an **objection** (D6, Art. 21) stops a purpose resting on legitimate
//!    interests, and any marketing;
//! 3. an **opt-out of sharing** (CCPA, or `Sec-GPC: 1`, O4) stops every purpose a
//!    Californian may opt out of;
//! 4. the provider's uses (treatment, care-team sharing, payment, operations) need
//!    the provider's **attestation** that the client authorised sharing their
//!    information with the service (S6);
//! 5. a purpose needing **no consent** is allowed on its basis;
//! 6. an **opt-out** purpose is allowed unless withdrawn;
//! 7. an **opt-in** purpose needs a grant in force at that instant: given, not
//!    withdrawn, effective and not expired, and for a minor given by a guardian (O1).
//!
//! Withdrawal takes effect for every decision after it is applied: one event, as
//! granting is (D7).

use std::collections::{BTreeMap, BTreeSet};

use kernel::{ConsentDecision, ConsentDenial, DataCategory, Purpose, Regime, SubjectId};
use serde::{Deserialize, Serialize};

use crate::catalogue::{ConsentMode, GdprBasis, PracticePolicy, rule};
use crate::ledger::{
    Authority, ChainId, EventBody, LedgerAction, LedgerError, LedgerEvent, NewEvent, SaltedEvidence,
};

/// The recipient named by the provider's attestation (S6): the service itself.
pub const SERVICE_RECIPIENT: &str = "custodia";

/// A grant as the projection keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The grant's position in the chain: its evidence.
    pub sequence: u64,
    /// From when it counts, µs.
    pub effective_at: i64,
    /// Until when, µs.
    pub expires_at: Option<i64>,
    /// Whether a guardian gave it (what counts for a minor, O1).
    pub by_guardian: bool,
    /// The policy version it was given under.
    pub policy_version: String,
}

/// The state of one purpose (and recipient).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PurposeState {
    /// A grant is recorded (it may not be in effect yet, or may have lapsed).
    Granted(Grant),
    /// The last word was a withdrawal.
    Withdrawn {
        /// When, µs.
        at: i64,
    },
    /// The grant's expiry was recorded.
    Expired {
        /// When, µs.
        at: i64,
    },
}

/// One purpose's entry in the projection: the purpose, the named recipient
/// (third-party sharing; the service for S6) and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurposeEntry {
    /// The purpose.
    pub purpose: Purpose,
    /// The named recipient, if any.
    pub recipient: Option<String>,
    /// What is in force.
    pub state: PurposeState,
}

/// One subject's state at the head of their chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectState {
    /// The subject's chain.
    pub chain: ChainId,
    /// The head: the last event's sequence and hash (`None` before the first).
    pub head: Option<(u64, [u8; 32])>,
    purposes: BTreeMap<String, PurposeEntry>,
    objections: BTreeSet<Purpose>,
    restrictions: BTreeSet<DataCategory>,
    opted_out_of_sharing: bool,
}

/// What the gate needs besides the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Circumstances<'a> {
    /// The practice's settings.
    pub policy: &'a PracticePolicy,
    /// The regime whose basis is cited.
    pub regime: Regime,
    /// Whether the subject is a minor, for whom only a guardian decides (O1).
    pub minor: bool,
}

fn key(purpose: Purpose, recipient: Option<&str>) -> String {
    match recipient {
        Some(r) => format!("{}\u{1f}{r}", purpose.as_str()),
        None => purpose.as_str().to_owned(),
    }
}

impl SubjectState {
    /// The state of a subject with an empty chain.
    #[must_use]
    pub fn new(chain: ChainId) -> Self {
        Self {
            chain,
            head: None,
            purposes: BTreeMap::new(),
            objections: BTreeSet::new(),
            restrictions: BTreeSet::new(),
            opted_out_of_sharing: false,
        }
    }

    /// Every purpose with a recorded state.
    pub fn purposes(&self) -> impl Iterator<Item = &PurposeEntry> {
        self.purposes.values()
    }

    /// The recorded state of `purpose` for `recipient`.
    #[must_use]
    pub fn purpose(&self, purpose: Purpose, recipient: Option<&str>) -> Option<&PurposeState> {
        self.purposes
            .get(&key(purpose, recipient))
            .map(|e| &e.state)
    }

    /// The purposes objected to.
    #[must_use]
    pub const fn objections(&self) -> &BTreeSet<Purpose> {
        &self.objections
    }

    /// The categories restricted.
    #[must_use]
    pub const fn restrictions(&self) -> &BTreeSet<DataCategory> {
        &self.restrictions
    }

    /// Whether the person opted out of sharing (CCPA, or GPC).
    #[must_use]
    pub const fn opted_out_of_sharing(&self) -> bool {
        self.opted_out_of_sharing
    }

    /// The provider's attestation (S6) in force, as its grant.
    #[must_use]
    pub fn service_authorisation(&self) -> Option<&Grant> {
        match self.purpose(Purpose::Treatment, Some(SERVICE_RECIPIENT)) {
            Some(PurposeState::Granted(g)) => Some(g),
            _ => None,
        }
    }

    /// Checks `event` against what is in force, chains it after the head and
    /// folds it in. On error nothing changed.
    ///
    /// # Errors
    /// [`LedgerError`]: the event contradicts the history or lacks what its
    /// action needs.
    pub fn append(
        &mut self,
        event: NewEvent,
        evidence: &SaltedEvidence,
    ) -> Result<LedgerEvent, LedgerError> {
        self.check(&event)?;
        let body = EventBody {
            action: event.action,
            purpose: event.purpose,
            recipient: event.recipient,
            category: event.category,
            authority: event.authority,
            channel: event.channel,
            evidence_digest: evidence.digest(),
            policy_version: event.policy_version,
            recorded_at: event.recorded_at,
            effective_at: event.effective_at,
            expires_at: event.expires_at,
        };
        let chained = LedgerEvent::chain_after(self.chain, self.head, body);
        self.apply(&chained);
        Ok(chained)
    }

    fn check(&self, e: &NewEvent) -> Result<(), LedgerError> {
        use LedgerAction as A;
        if e.expires_at.is_some_and(|t| t <= e.effective_at) {
            return Err(LedgerError::ExpiryBeforeEffect);
        }
        match (e.action, e.purpose, e.category) {
            (A::Grant | A::Withdraw | A::Object | A::Expire, None, _) => {
                return Err(LedgerError::Missing(e.action.as_str(), "purpose"));
            }
            (A::Restrict | A::LiftRestriction, _, None) => {
                return Err(LedgerError::Missing(e.action.as_str(), "category"));
            }
            _ => {}
        }
        let granted = |p: Option<Purpose>| {
            p.is_some_and(|p| {
                matches!(
                    self.purpose(p, e.recipient.as_deref()),
                    Some(PurposeState::Granted(_))
                )
            })
        };
        match e.action {
            A::Withdraw | A::Expire if !granted(e.purpose) => {
                Err(LedgerError::NothingToEnd("consent"))
            }
            A::LiftRestriction if !e.category.is_some_and(|c| self.restrictions.contains(&c)) => {
                Err(LedgerError::NothingToEnd("restriction"))
            }
            _ => Ok(()),
        }
    }

    /// Folds one chained event in and moves the head to it. Used by
    /// [`SubjectState::append`], and to rebuild a state from a chain (a check, never
    /// the path of a decision).
    pub fn apply(&mut self, chained: &LedgerEvent) {
        let e = &chained.body;
        self.head = Some((chained.sequence, chained.hash));
        let gpc = e.channel == crate::ledger::Channel::GlobalPrivacyControl;
        let Some(purpose) = e.purpose else {
            match (e.action, e.category) {
                (LedgerAction::Restrict, Some(c)) => {
                    self.restrictions.insert(c);
                }
                (LedgerAction::LiftRestriction, Some(c)) => {
                    self.restrictions.remove(&c);
                }
                _ => {}
            }
            return;
        };
        let state = match e.action {
            LedgerAction::Grant => {
                // The person's latest word wins: a new grant ends an earlier
                // objection to the same purpose.
                self.objections.remove(&purpose);
                PurposeState::Granted(Grant {
                    sequence: chained.sequence,
                    effective_at: e.effective_at,
                    expires_at: e.expires_at,
                    by_guardian: matches!(e.authority, Authority::Guardian(_)),
                    policy_version: e.policy_version.clone(),
                })
            }
            LedgerAction::Withdraw => {
                self.opted_out_of_sharing |= gpc;
                PurposeState::Withdrawn { at: e.effective_at }
            }
            LedgerAction::Expire => PurposeState::Expired { at: e.effective_at },
            LedgerAction::Object => {
                // `Sec-GPC: 1`: an opt-out of sharing and selling (O4).
                self.opted_out_of_sharing |= gpc;
                self.objections.insert(purpose);
                return;
            }
            LedgerAction::Restrict | LedgerAction::LiftRestriction => return,
        };
        self.purposes.insert(
            key(purpose, e.recipient.as_deref()),
            PurposeEntry {
                purpose,
                recipient: e.recipient.clone(),
                state,
            },
        );
    }

    /// Decides `purpose` on this subject's `category` for `recipient` (a named
    /// third party, or `None`) at `at` (µs since the epoch).
    #[must_use]
    pub fn decide(
        &self,
        subject: SubjectId,
        purpose: Purpose,
        recipient: Option<&str>,
        category: DataCategory,
        at: i64,
        circumstances: Circumstances<'_>,
    ) -> ConsentDecision {
        let deny = |reason| ConsentDecision::Deny { reason };
        let rule = rule(purpose);
        let basis = rule.ground(circumstances.regime);
        if self.restrictions.contains(&category) && !open_while_restricted(purpose) {
            return deny(ConsentDenial::Restricted);
        }
        let objectable = rule.gdpr == GdprBasis::LegitimateInterests
            || matches!(purpose, Purpose::MarketingEmail | Purpose::MarketingSms);
        if objectable && self.objections.contains(&purpose) {
            return deny(ConsentDenial::Objected);
        }
        if rule.ccpa_opt_out && self.opted_out_of_sharing {
            return deny(ConsentDenial::OptedOut);
        }
        if needs_attestation(purpose) {
            match self.service_authorisation() {
                Some(g) if g.effective_at <= at && g.expires_at.is_none_or(|t| at < t) => {}
                _ => return deny(ConsentDenial::NotAttested),
            }
        }
        let recorded = self.purpose(purpose, recipient);
        match circumstances.policy.consent_mode(purpose) {
            ConsentMode::NotNeeded => ConsentDecision::Allow {
                basis,
                evidence: self
                    .service_authorisation()
                    .filter(|_| needs_attestation(purpose))
                    .map(|g| evidence_id(subject, g.sequence))
                    .into_iter()
                    .collect(),
            },
            ConsentMode::OptOut => match recorded {
                Some(PurposeState::Withdrawn { .. }) => deny(ConsentDenial::OptedOut),
                _ => ConsentDecision::Allow {
                    basis,
                    evidence: Vec::new(),
                },
            },
            ConsentMode::OptIn => match recorded {
                None => deny(ConsentDenial::NotGiven),
                Some(PurposeState::Withdrawn { .. }) => deny(ConsentDenial::Withdrawn),
                Some(PurposeState::Expired { .. }) => deny(ConsentDenial::Expired),
                Some(PurposeState::Granted(grant)) => {
                    if at < grant.effective_at {
                        deny(ConsentDenial::NotGiven)
                    } else if grant.expires_at.is_some_and(|t| at >= t) {
                        deny(ConsentDenial::Expired)
                    } else if circumstances.minor && !grant.by_guardian {
                        deny(ConsentDenial::GuardianRequired)
                    } else {
                        ConsentDecision::Allow {
                            basis,
                            evidence: vec![evidence_id(subject, grant.sequence)],
                        }
                    }
                }
            },
        }
    }
}

/// The purposes GDPR Art. 18(2) keeps open while processing is restricted.
const fn open_while_restricted(purpose: Purpose) -> bool {
    matches!(
        purpose,
        Purpose::SubjectRequest | Purpose::Legal | Purpose::Oversight | Purpose::BreakGlass
    )
}

/// The provider's uses of a client's data, which need the S6 attestation.
const fn needs_attestation(purpose: Purpose) -> bool {
    matches!(
        purpose,
        Purpose::Treatment | Purpose::CareTeamSharing | Purpose::Payment | Purpose::Operations
    )
}

/// A stable id for event `sequence` of `subject`'s chain, cited as evidence: the
/// subject's id with the sequence number in its last eight bytes.
#[must_use]
pub fn evidence_id(subject: SubjectId, sequence: u64) -> uuid::Uuid {
    let mut bytes = *subject.as_uuid().as_bytes();
    bytes[8..].copy_from_slice(&sequence.to_be_bytes());
    uuid::Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Channel, Evidence, verify_chain};

    struct World {
        state: SubjectState,
        events: Vec<LedgerEvent>,
        subject: SubjectId,
        policy: PracticePolicy,
    }

    impl World {
        fn new() -> Self {
            Self {
                state: SubjectState::new(ChainId::random()),
                events: Vec::new(),
                subject: SubjectId::new(),
                policy: PracticePolicy::default(),
            }
        }

        fn event(&self, action: LedgerAction, purpose: Purpose, at: i64) -> NewEvent {
            NewEvent {
                subject: self.subject,
                action,
                purpose: Some(purpose),
                recipient: None,
                category: None,
                authority: Authority::Person,
                channel: Channel::Web,
                evidence: Evidence::default(),
                policy_version: "privacy-notice@1".into(),
                recorded_at: at,
                effective_at: at,
                expires_at: None,
            }
        }

        fn grant(&self, purpose: Purpose, at: i64) -> NewEvent {
            self.event(LedgerAction::Grant, purpose, at)
        }

        fn try_record(&mut self, event: NewEvent) -> Result<(), LedgerError> {
            let evidence = SaltedEvidence::new(event.evidence.clone());
            let chained = self.state.append(event, &evidence)?;
            self.events.push(chained);
            Ok(())
        }

        fn record(&mut self, event: NewEvent) {
            self.try_record(event).expect("a valid event");
        }

        fn attest(&mut self) {
            let mut e = self.grant(Purpose::Treatment, 0);
            e.recipient = Some(SERVICE_RECIPIENT.into());
            e.authority = Authority::ProviderAttesting(kernel::UserId::new());
            self.record(e);
        }

        fn decide(
            &self,
            purpose: Purpose,
            category: DataCategory,
            at: i64,
            minor: bool,
        ) -> ConsentDecision {
            let circumstances = Circumstances {
                policy: &self.policy,
                regime: Regime::Gdpr,
                minor,
            };
            self.state
                .decide(self.subject, purpose, None, category, at, circumstances)
        }
    }

    fn reason(d: &ConsentDecision) -> Option<ConsentDenial> {
        match d {
            ConsentDecision::Deny { reason } => Some(*reason),
            ConsentDecision::Allow { .. } => None,
        }
    }

    const HEALTH: DataCategory = DataCategory::HealthRecord;

    #[test]
    fn the_projection_is_the_fold_of_the_chain_it_wrote() {
        let mut w = World::new();
        w.attest();
        w.record(w.grant(Purpose::Research, 1));
        w.record(w.event(LedgerAction::Withdraw, Purpose::Research, 2));
        w.record(w.event(LedgerAction::Object, Purpose::Operations, 3));
        assert_eq!(verify_chain(w.state.chain, &w.events), None);
        let mut rebuilt = SubjectState::new(w.state.chain);
        for e in &w.events {
            rebuilt.apply(e);
        }
        assert_eq!(rebuilt, w.state);
    }

    #[test]
    fn bad_events_are_refused_and_change_nothing() {
        let mut w = World::new();
        let before = w.state.clone();
        assert_eq!(
            w.try_record(w.event(LedgerAction::Withdraw, Purpose::Research, 1)),
            Err(LedgerError::NothingToEnd("consent"))
        );
        let mut backwards = w.grant(Purpose::Research, 10);
        backwards.expires_at = Some(5);
        assert_eq!(
            w.try_record(backwards),
            Err(LedgerError::ExpiryBeforeEffect)
        );
        let mut lift = w.event(LedgerAction::LiftRestriction, Purpose::Research, 1);
        lift.purpose = None;
        lift.category = Some(HEALTH);
        assert_eq!(
            w.try_record(lift),
            Err(LedgerError::NothingToEnd("restriction"))
        );
        let mut no_category = w.event(LedgerAction::Restrict, Purpose::Research, 1);
        no_category.category = None;
        assert_eq!(
            w.try_record(no_category),
            Err(LedgerError::Missing("restrict", "category"))
        );
        assert_eq!(w.state, before);
        assert!(w.events.is_empty());
        w.record(w.grant(Purpose::Research, 2));
        w.record(w.event(LedgerAction::Withdraw, Purpose::Research, 3));
    }

    #[test]
    fn the_providers_uses_need_the_attestation_and_research_needs_a_grant_in_force() {
        let mut w = World::new();
        assert_eq!(
            reason(&w.decide(Purpose::Treatment, HEALTH, 10, false)),
            Some(ConsentDenial::NotAttested),
            "S6: nothing of the client's is entered before the attestation"
        );
        w.attest();
        match w.decide(Purpose::Treatment, HEALTH, 10, false) {
            ConsentDecision::Allow { evidence, .. } => {
                assert_eq!(evidence, vec![evidence_id(w.subject, 1)]);
            }
            d @ ConsentDecision::Deny { .. } => panic!("{d:?}"),
        }
        assert_eq!(
            reason(&w.decide(Purpose::Research, HEALTH, 10, false)),
            Some(ConsentDenial::NotGiven)
        );
        let mut g = w.grant(Purpose::Research, 20);
        g.expires_at = Some(100);
        w.record(g);
        assert_eq!(
            reason(&w.decide(Purpose::Research, HEALTH, 10, false)),
            Some(ConsentDenial::NotGiven),
            "not yet in effect"
        );
        match w.decide(Purpose::Research, HEALTH, 50, false) {
            ConsentDecision::Allow { basis, evidence } => {
                assert_eq!(basis.citation, "GDPR Art. 6(1)(a)");
                assert_eq!(evidence, vec![evidence_id(w.subject, 2)]);
            }
            d @ ConsentDecision::Deny { .. } => panic!("{d:?}"),
        }
        assert_eq!(
            reason(&w.decide(Purpose::Research, HEALTH, 100, false)),
            Some(ConsentDenial::Expired)
        );
    }

    #[test]
    fn withdrawal_takes_one_event_and_applies_at_once() {
        let mut w = World::new();
        w.record(w.grant(Purpose::Research, 1));
        assert!(w.decide(Purpose::Research, HEALTH, 2, false).is_allowed());
        w.record(w.event(LedgerAction::Withdraw, Purpose::Research, 3));
        assert_eq!(
            reason(&w.decide(Purpose::Research, HEALTH, 3, false)),
            Some(ConsentDenial::Withdrawn)
        );
    }

    #[test]
    fn restriction_and_objection_win_over_any_grant() {
        let mut w = World::new();
        w.attest();
        w.record(w.grant(Purpose::Research, 1));
        let mut restrict = w.event(LedgerAction::Restrict, Purpose::Research, 2);
        restrict.purpose = None;
        restrict.category = Some(HEALTH);
        w.record(restrict);
        assert_eq!(
            reason(&w.decide(Purpose::Research, HEALTH, 3, false)),
            Some(ConsentDenial::Restricted)
        );
        assert_eq!(
            reason(&w.decide(Purpose::Treatment, HEALTH, 3, false)),
            Some(ConsentDenial::Restricted)
        );
        assert!(
            w.decide(Purpose::Legal, HEALTH, 3, false).is_allowed(),
            "Art. 18(2)"
        );
        assert!(
            w.decide(Purpose::Research, DataCategory::Medications, 3, false)
                .is_allowed()
        );
        let mut lift = w.event(LedgerAction::LiftRestriction, Purpose::Research, 4);
        lift.purpose = None;
        lift.category = Some(HEALTH);
        w.record(lift);
        assert!(w.decide(Purpose::Research, HEALTH, 5, false).is_allowed());

        w.record(w.event(LedgerAction::Object, Purpose::Operations, 6));
        assert_eq!(
            reason(&w.decide(Purpose::Operations, HEALTH, 7, false)),
            Some(ConsentDenial::Objected)
        );
        assert!(
            w.decide(Purpose::Treatment, HEALTH, 7, false).is_allowed(),
            "no objection to care itself"
        );
    }

    #[test]
    fn global_privacy_control_opts_out_of_sharing() {
        let mut w = World::new();
        assert!(
            w.decide(Purpose::Analytics, DataCategory::UsageLogs, 1, false)
                .is_allowed(),
            "opt-out by default"
        );
        w.record(w.grant(Purpose::ThirdPartySharing, 1));
        // A request carrying `Sec-GPC: 1` is recorded as an objection through the
        // GPC channel: an opt-out of every sharing a Californian may refuse.
        let mut gpc = w.event(LedgerAction::Object, Purpose::ThirdPartySharing, 2);
        gpc.channel = Channel::GlobalPrivacyControl;
        w.record(gpc);
        assert_eq!(
            reason(&w.decide(Purpose::Analytics, DataCategory::UsageLogs, 3, false)),
            Some(ConsentDenial::OptedOut)
        );
        assert_eq!(
            reason(&w.decide(Purpose::ThirdPartySharing, HEALTH, 3, false)),
            Some(ConsentDenial::OptedOut)
        );
    }

    #[test]
    fn for_a_minor_only_a_guardians_grant_counts() {
        let mut w = World::new();
        w.record(w.grant(Purpose::Research, 1));
        assert_eq!(
            reason(&w.decide(Purpose::Research, HEALTH, 2, true)),
            Some(ConsentDenial::GuardianRequired)
        );
        let mut by_guardian = w.grant(Purpose::Research, 3);
        by_guardian.authority = Authority::Guardian(kernel::UserId::new());
        w.record(by_guardian);
        assert!(w.decide(Purpose::Research, HEALTH, 4, true).is_allowed());
    }

    #[test]
    fn an_opt_out_practice_markets_until_the_person_objects_and_a_new_grant_wins() {
        let mut w = World::new();
        w.policy.marketing = crate::catalogue::MarketingMode::OptOut;
        assert!(
            w.decide(Purpose::MarketingEmail, DataCategory::Contact, 1, false)
                .is_allowed()
        );
        w.record(w.event(LedgerAction::Object, Purpose::MarketingEmail, 2));
        assert_eq!(
            reason(&w.decide(Purpose::MarketingEmail, DataCategory::Contact, 3, false)),
            Some(ConsentDenial::Objected)
        );
        w.record(w.grant(Purpose::MarketingEmail, 4));
        assert!(
            w.decide(Purpose::MarketingEmail, DataCategory::Contact, 5, false)
                .is_allowed()
        );
    }

    #[test]
    fn the_state_survives_serialisation() {
        let mut w = World::new();
        w.attest();
        w.record(w.grant(Purpose::Research, 1));
        let json = serde_json::to_string(&w.state).expect("serialises");
        let back: SubjectState = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, w.state);
    }
}
