//! Decisions: the projection of the ledger that answers "may this purpose touch
//! this category of this subject's data now?", without replaying the ledger.
//!
//! [`Projection::apply`] folds each event into the subject's current state as it is
//! appended; [`Projection::decide`] reads that state. The order of the checks is
//! the order of precedence:
//!
//! 1. a **restriction** of the category (D4, GDPR Art. 18) stops every purpose but
//!    the ones the law keeps open while restricted: the person's own requests, legal
//!    duties, oversight, and break-glass to protect life (Art. 18(2));
//! 2. an **objection** (D6, Art. 21) stops a purpose resting on legitimate interests,
//!    and any marketing;
//! 3. an **opt-out of sharing** (CCPA, or `Sec-GPC: 1`, O4) stops every purpose a
//!    Californian may opt out of;
//! 4. a purpose needing **no consent** is allowed on its basis;
//! 5. an **opt-out** purpose is allowed unless withdrawn;
//! 6. an **opt-in** purpose needs a grant in force at that instant: given, not
//!    withdrawn, effective and not expired, and for a minor given by a guardian (O1).
//!
//! Withdrawal takes effect for every decision after it is applied: one event, as
//! granting is (D7).

use std::collections::{BTreeMap, BTreeSet};

use kernel::{ConsentDecision, ConsentDenial, DataCategory, Purpose, Regime};

use crate::catalogue::{ConsentMode, GdprBasis, PracticePolicy, rule};
use crate::ledger::{Authority, LedgerAction, LedgerEvent};

/// A grant as the projection keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    /// The grant's position in the subject's chain: its evidence.
    sequence: u64,
    effective_at: i64,
    expires_at: Option<i64>,
    by_guardian: bool,
}

/// The state of one purpose (and recipient).
#[derive(Debug, Clone, PartialEq, Eq)]
enum PurposeState {
    Granted(Grant),
    Withdrawn,
    Expired,
}

/// One subject's state at the head of their chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectState {
    purposes: BTreeMap<(Purpose, Option<String>), PurposeState>,
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

/// The decision state of every subject, kept in step with the ledger.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    subjects: BTreeMap<kernel::SubjectId, SubjectState>,
}

impl Projection {
    /// An empty projection.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one appended event into its subject's state.
    pub fn apply(&mut self, chained: &LedgerEvent) {
        let e = &chained.event;
        let state = self.subjects.entry(e.subject).or_default();
        let key = e.purpose.map(|p| (p, e.recipient.clone()));
        match (e.action, key) {
            (LedgerAction::Grant, Some(key)) => {
                state.purposes.insert(
                    key,
                    PurposeState::Granted(Grant {
                        sequence: chained.sequence,
                        effective_at: e.effective_at,
                        expires_at: e.expires_at,
                        by_guardian: matches!(e.authority, Authority::Guardian(_)),
                    }),
                );
            }
            (LedgerAction::Withdraw, Some(key)) => {
                if e.channel_is_gpc() {
                    state.opted_out_of_sharing = true;
                }
                state.purposes.insert(key, PurposeState::Withdrawn);
            }
            (LedgerAction::Expire, Some(key)) => {
                state.purposes.insert(key, PurposeState::Expired);
            }
            (LedgerAction::Object, Some((purpose, _))) => {
                if e.channel_is_gpc() {
                    // `Sec-GPC: 1`: an opt-out of sharing and selling (O4).
                    state.opted_out_of_sharing = true;
                }
                state.objections.insert(purpose);
            }
            (LedgerAction::Restrict, _) => {
                state.restrictions.extend(e.category);
            }
            (LedgerAction::LiftRestriction, _) => {
                if let Some(category) = e.category {
                    state.restrictions.remove(&category);
                }
            }
            _ => {}
        }
    }

    /// Decides `purpose` on `subject`'s `category` for `recipient` (a named third
    /// party, or `None`) at `at` (microseconds since the epoch).
    #[must_use]
    pub fn decide(
        &self,
        subject: kernel::SubjectId,
        purpose: Purpose,
        recipient: Option<&str>,
        category: DataCategory,
        at: i64,
        circumstances: Circumstances<'_>,
    ) -> ConsentDecision {
        let deny = |reason| ConsentDecision::Deny { reason };
        let empty = SubjectState::default();
        let state = self.subjects.get(&subject).unwrap_or(&empty);
        let rule = rule(purpose);
        let basis = rule.ground(circumstances.regime);
        if state.restrictions.contains(&category) && !open_while_restricted(purpose) {
            return deny(ConsentDenial::Restricted);
        }
        let objectable = rule.gdpr == GdprBasis::LegitimateInterests
            || matches!(purpose, Purpose::MarketingEmail | Purpose::MarketingSms);
        if objectable && state.objections.contains(&purpose) {
            return deny(ConsentDenial::Objected);
        }
        if rule.ccpa_opt_out && state.opted_out_of_sharing {
            return deny(ConsentDenial::OptedOut);
        }
        let recorded = state.purposes.get(&(purpose, recipient.map(str::to_owned)));
        match circumstances.policy.consent_mode(purpose) {
            ConsentMode::NotNeeded => ConsentDecision::Allow {
                basis,
                evidence: Vec::new(),
            },
            ConsentMode::OptOut => match recorded {
                Some(PurposeState::Withdrawn) => deny(ConsentDenial::OptedOut),
                _ => ConsentDecision::Allow {
                    basis,
                    evidence: Vec::new(),
                },
            },
            ConsentMode::OptIn => match recorded {
                None => deny(ConsentDenial::NotGiven),
                Some(PurposeState::Withdrawn) => deny(ConsentDenial::Withdrawn),
                Some(PurposeState::Expired) => deny(ConsentDenial::Expired),
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

/// A stable id for the ledger event `sequence` of `subject`, cited as evidence: the
/// subject's id with the sequence number in its last eight bytes.
#[must_use]
pub fn evidence_id(subject: kernel::SubjectId, sequence: u64) -> uuid::Uuid {
    let mut bytes = *subject.as_uuid().as_bytes();
    bytes[8..].copy_from_slice(&sequence.to_be_bytes());
    uuid::Uuid::from_bytes(bytes)
}

impl crate::ledger::NewEvent {
    /// Whether the event came from a Global Privacy Control signal.
    fn channel_is_gpc(&self) -> bool {
        self.channel == crate::ledger::Channel::GlobalPrivacyControl
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::grant;
    use crate::ledger::{Channel, Ledger, NewEvent};
    use kernel::SubjectId;

    struct World {
        ledger: Ledger,
        projection: Projection,
        subject: SubjectId,
        policy: PracticePolicy,
    }

    impl World {
        fn new() -> Self {
            let subject = SubjectId::new();
            Self {
                ledger: Ledger::new(subject),
                projection: Projection::new(),
                subject,
                policy: PracticePolicy::default(),
            }
        }

        fn record(&mut self, event: NewEvent) {
            let chained = self.ledger.append(event).expect("a valid event").clone();
            self.projection.apply(&chained);
        }

        fn event(&self, action: LedgerAction, purpose: Purpose, at: i64) -> NewEvent {
            NewEvent {
                action,
                ..grant(self.subject, purpose, at)
            }
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
            self.projection
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
    fn treatment_needs_no_consent_and_research_needs_a_grant_in_force() {
        let mut w = World::new();
        assert!(w.decide(Purpose::Treatment, HEALTH, 10, false).is_allowed());
        assert_eq!(
            reason(&w.decide(Purpose::Research, HEALTH, 10, false)),
            Some(ConsentDenial::NotGiven)
        );
        let mut g = grant(w.subject, Purpose::Research, 20);
        g.expires_at = Some(100);
        w.record(g);
        assert_eq!(
            reason(&w.decide(Purpose::Research, HEALTH, 10, false)),
            Some(ConsentDenial::NotGiven),
            "not yet in effect"
        );
        let allowed = w.decide(Purpose::Research, HEALTH, 50, false);
        match &allowed {
            ConsentDecision::Allow { basis, evidence } => {
                assert_eq!(basis.citation, "GDPR Art. 6(1)(a)");
                assert_eq!(evidence, &vec![evidence_id(w.subject, 1)]);
            }
            ConsentDecision::Deny { .. } => panic!("{allowed:?}"),
        }
        assert_eq!(
            reason(&w.decide(Purpose::Research, HEALTH, 100, false)),
            Some(ConsentDenial::Expired)
        );
    }

    #[test]
    fn withdrawal_takes_one_event_and_applies_at_once() {
        let mut w = World::new();
        w.record(grant(w.subject, Purpose::Research, 1));
        assert!(w.decide(Purpose::Research, HEALTH, 2, false).is_allowed());
        let withdraw = w.event(LedgerAction::Withdraw, Purpose::Research, 3);
        w.record(withdraw);
        assert_eq!(
            reason(&w.decide(Purpose::Research, HEALTH, 3, false)),
            Some(ConsentDenial::Withdrawn)
        );
    }

    #[test]
    fn restriction_and_objection_win_over_any_grant() {
        let mut w = World::new();
        w.record(grant(w.subject, Purpose::Research, 1));
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

        let object = w.event(LedgerAction::Object, Purpose::Operations, 6);
        w.record(object);
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
        w.record(grant(w.subject, Purpose::ThirdPartySharing, 1));
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
        assert!(w.decide(Purpose::Treatment, HEALTH, 3, false).is_allowed());
    }

    #[test]
    fn for_a_minor_only_a_guardians_grant_counts() {
        let mut w = World::new();
        w.record(grant(w.subject, Purpose::Research, 1));
        assert_eq!(
            reason(&w.decide(Purpose::Research, HEALTH, 2, true)),
            Some(ConsentDenial::GuardianRequired)
        );
        let mut by_guardian = grant(w.subject, Purpose::Research, 3);
        by_guardian.authority = Authority::Guardian(kernel::UserId::new());
        w.record(by_guardian);
        assert!(w.decide(Purpose::Research, HEALTH, 4, true).is_allowed());
    }

    #[test]
    fn an_opt_out_practice_markets_until_the_person_says_no() {
        let mut w = World::new();
        w.policy.marketing = crate::catalogue::MarketingMode::OptOut;
        assert!(
            w.decide(Purpose::MarketingEmail, DataCategory::Contact, 1, false)
                .is_allowed()
        );
        w.record(grant(w.subject, Purpose::MarketingEmail, 1));
        let withdraw = w.event(LedgerAction::Withdraw, Purpose::MarketingEmail, 2);
        w.record(withdraw);
        assert_eq!(
            reason(&w.decide(Purpose::MarketingEmail, DataCategory::Contact, 3, false)),
            Some(ConsentDenial::OptedOut)
        );
    }
}
