//! The consent ledger: append-only events, hash-chained per subject.
//!
//! Nothing is updated or deleted in place. A change of mind is a new event
//! (withdraw, object, restrict, lift a restriction); an expiry is recorded as an
//! event when it is noticed. Each event names the version of the policy it was
//! given under, who acted (the person, a guardian, an authorised agent, or a
//! provider attesting), through which channel, with what evidence, and from when
//! until when it takes effect.
//!
//! [`Ledger::append`] checks an event against the subject's history before it is
//! chained (withdrawing a consent never given is refused, an expiry must follow its
//! effective time) and links it to the subject's previous event by SHA-256 over
//! [`LedgerEvent::encoding`]; [`verify_chain`] recomputes the links.

use kernel::{DataCategory, Purpose, SubjectId, UserId};
use ring::digest;

/// What an event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LedgerAction {
    /// Consent given for a purpose (and recipient).
    Grant,
    /// Consent taken back: effective at once, for every later use.
    Withdraw,
    /// An objection to processing for a purpose (GDPR Art. 21).
    Object,
    /// A restriction of processing of a category (GDPR Art. 18).
    Restrict,
    /// The end of a restriction.
    LiftRestriction,
    /// A grant reached its expiry.
    Expire,
}

impl LedgerAction {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Withdraw => "withdraw",
            Self::Object => "object",
            Self::Restrict => "restrict",
            Self::LiftRestriction => "lift_restriction",
            Self::Expire => "expire",
        }
    }
}

/// On whose authority the event was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Authority {
    /// The person themselves.
    Person,
    /// A guardian of a minor (O1).
    Guardian(UserId),
    /// An authorised agent with a recorded proof of authority (D11).
    AuthorisedAgent(UserId),
    /// A provider attesting what the client authorised (S6).
    ProviderAttesting(UserId),
}

/// How the event reached Custodia.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The web application.
    Web,
    /// A mobile application.
    Mobile,
    /// A signed paper form, scanned.
    Paper,
    /// Said to a provider, who attests it.
    Verbal,
    /// An integration, through the API.
    Api,
    /// A `Sec-GPC: 1` request header (Global Privacy Control, O4).
    GlobalPrivacyControl,
}

/// What proves the event: never health data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evidence {
    /// The client address the event came from.
    pub client_address: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// A reference to a signed document (a form's storage key).
    pub document: Option<String>,
}

/// One event, as given to [`Ledger::append`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Whose consent.
    pub subject: SubjectId,
    /// What it does.
    pub action: LedgerAction,
    /// The purpose (grant, withdraw, object, expire).
    pub purpose: Option<Purpose>,
    /// The named recipient, for third-party sharing.
    pub recipient: Option<String>,
    /// The category (restrict, lift restriction).
    pub category: Option<DataCategory>,
    /// On whose authority.
    pub authority: Authority,
    /// Through which channel.
    pub channel: Channel,
    /// What proves it.
    pub evidence: Evidence,
    /// The policy version it was given under (O3).
    pub policy_version: String,
    /// When it was recorded, in microseconds since the epoch.
    pub recorded_at: i64,
    /// When it takes effect, in microseconds since the epoch.
    pub effective_at: i64,
    /// When it stops (a grant's expiry), in microseconds since the epoch.
    pub expires_at: Option<i64>,
}

/// A chained event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEvent {
    /// The event as given.
    pub event: NewEvent,
    /// Its position in the subject's chain, from 1.
    pub sequence: u64,
    /// The previous event's hash (zeros for the first).
    pub prev_hash: [u8; 32],
    /// SHA-256 over [`LedgerEvent::encoding`].
    pub hash: [u8; 32],
}

/// Why an event was refused. Nothing was appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// Withdrawing, or lifting, what was never in force (409).
    #[error("there is no {0} in force to end")]
    NothingToEnd(&'static str),
    /// The event lacks the purpose or category its action needs (422).
    #[error("a {0} event needs a {1}")]
    Missing(&'static str, &'static str),
    /// The expiry is not after the effective time (422).
    #[error("the expiry must be after the effective time")]
    ExpiryBeforeEffect,
    /// The event names another subject than the chain's.
    #[error("the event belongs to another subject's chain")]
    WrongSubject,
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_opt(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(v) => {
            out.push(1);
            put(out, v.as_bytes());
        }
        None => out.push(0),
    }
}

impl LedgerEvent {
    /// The canonical encoding the hash covers: a version byte, then every field in
    /// declaration order, integers big-endian, strings length-prefixed (8 bytes),
    /// optional values flag-prefixed.
    #[must_use]
    pub fn encoding(&self) -> Vec<u8> {
        let e = &self.event;
        let mut out = Vec::with_capacity(256);
        out.push(1);
        out.extend_from_slice(e.subject.as_uuid().as_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.prev_hash);
        put(&mut out, e.action.as_str().as_bytes());
        put_opt(&mut out, e.purpose.map(Purpose::as_str));
        put_opt(&mut out, e.recipient.as_deref());
        put_opt(&mut out, e.category.map(DataCategory::as_str));
        let (kind, who) = match e.authority {
            Authority::Person => (0, None),
            Authority::Guardian(u) => (1, Some(u)),
            Authority::AuthorisedAgent(u) => (2, Some(u)),
            Authority::ProviderAttesting(u) => (3, Some(u)),
        };
        out.push(kind);
        out.extend_from_slice(
            who.map_or(uuid_nil(), |u| *u.as_uuid().as_bytes())
                .as_slice(),
        );
        out.push(e.channel as u8);
        put_opt(&mut out, e.evidence.client_address.as_deref());
        put_opt(&mut out, e.evidence.user_agent.as_deref());
        put_opt(&mut out, e.evidence.document.as_deref());
        put(&mut out, e.policy_version.as_bytes());
        out.extend_from_slice(&e.recorded_at.to_be_bytes());
        out.extend_from_slice(&e.effective_at.to_be_bytes());
        match e.expires_at {
            Some(t) => {
                out.push(1);
                out.extend_from_slice(&t.to_be_bytes());
            }
            None => out.push(0),
        }
        out
    }

    /// SHA-256 over the encoding, computed afresh.
    #[must_use]
    pub fn compute_hash(&self) -> [u8; 32] {
        let d = digest::digest(&digest::SHA256, &self.encoding());
        let mut out = [0; 32];
        out.copy_from_slice(d.as_ref());
        out
    }
}

const fn uuid_nil() -> [u8; 16] {
    [0; 16]
}

/// One subject's chain, and what is in force at its head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    subject: SubjectId,
    events: Vec<LedgerEvent>,
}

impl Ledger {
    /// An empty chain for `subject`.
    #[must_use]
    pub const fn new(subject: SubjectId) -> Self {
        Self {
            subject,
            events: Vec::new(),
        }
    }

    /// The events, oldest first.
    #[must_use]
    pub fn events(&self) -> &[LedgerEvent] {
        &self.events
    }

    /// Checks `event` against the history and chains it.
    ///
    /// # Errors
    /// [`LedgerError`]: nothing was appended.
    pub fn append(&mut self, event: NewEvent) -> Result<&LedgerEvent, LedgerError> {
        self.check(&event)?;
        let prev_hash = self.events.last().map_or([0; 32], |e| e.hash);
        let mut chained = LedgerEvent {
            event,
            sequence: self.events.len() as u64 + 1,
            prev_hash,
            hash: [0; 32],
        };
        chained.hash = chained.compute_hash();
        self.events.push(chained);
        Ok(self
            .events
            .last()
            .unwrap_or_else(|| unreachable!("just pushed")))
    }

    fn check(&self, e: &NewEvent) -> Result<(), LedgerError> {
        use LedgerAction as A;
        if e.subject != self.subject {
            return Err(LedgerError::WrongSubject);
        }
        if e.expires_at.is_some_and(|t| t <= e.effective_at) {
            return Err(LedgerError::ExpiryBeforeEffect);
        }
        match e.action {
            A::Grant | A::Withdraw | A::Object | A::Expire if e.purpose.is_none() => {
                return Err(LedgerError::Missing(e.action.as_str(), "purpose"));
            }
            A::Restrict | A::LiftRestriction if e.category.is_none() => {
                return Err(LedgerError::Missing(e.action.as_str(), "category"));
            }
            _ => {}
        }
        match e.action {
            A::Withdraw | A::Expire if !self.granted(e.purpose, e.recipient.as_deref()) => {
                Err(LedgerError::NothingToEnd("consent"))
            }
            A::LiftRestriction if !self.restricted(e.category) => {
                Err(LedgerError::NothingToEnd("restriction"))
            }
            _ => Ok(()),
        }
    }

    /// Whether the last grant-or-end event for this purpose and recipient is a grant.
    fn granted(&self, purpose: Option<Purpose>, recipient: Option<&str>) -> bool {
        self.events
            .iter()
            .rev()
            .map(|e| &e.event)
            .find(|e| {
                e.purpose == purpose
                    && e.recipient.as_deref() == recipient
                    && matches!(
                        e.action,
                        LedgerAction::Grant | LedgerAction::Withdraw | LedgerAction::Expire
                    )
            })
            .is_some_and(|e| e.action == LedgerAction::Grant)
    }

    fn restricted(&self, category: Option<DataCategory>) -> bool {
        self.events
            .iter()
            .rev()
            .map(|e| &e.event)
            .find(|e| {
                e.category == category
                    && matches!(
                        e.action,
                        LedgerAction::Restrict | LedgerAction::LiftRestriction
                    )
            })
            .is_some_and(|e| e.action == LedgerAction::Restrict)
    }
}

/// Where a subject's chain breaks: the first event whose sequence, link or hash is
/// wrong, as its position from 1.
#[must_use]
pub fn verify_chain(events: &[LedgerEvent]) -> Option<u64> {
    let mut prev = [0; 32];
    for (i, e) in events.iter().enumerate() {
        let position = i as u64 + 1;
        if e.sequence != position || e.prev_hash != prev || e.compute_hash() != e.hash {
            return Some(position);
        }
        prev = e.hash;
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn grant(subject: SubjectId, purpose: Purpose, at: i64) -> NewEvent {
        NewEvent {
            subject,
            action: LedgerAction::Grant,
            purpose: Some(purpose),
            recipient: None,
            category: None,
            authority: Authority::Person,
            channel: Channel::Web,
            evidence: Evidence {
                client_address: Some("192.0.2.7".into()),
                user_agent: Some("test".into()),
                document: None,
            },
            policy_version: "privacy-2026-11".into(),
            recorded_at: at,
            effective_at: at,
            expires_at: None,
        }
    }

    #[test]
    fn events_chain_and_any_edit_breaks_the_chain() {
        let subject = SubjectId::new();
        let mut ledger = Ledger::new(subject);
        ledger
            .append(grant(subject, Purpose::Research, 1))
            .expect("grant");
        let mut withdraw = grant(subject, Purpose::Research, 2);
        withdraw.action = LedgerAction::Withdraw;
        ledger.append(withdraw).expect("withdraw");
        ledger
            .append(grant(subject, Purpose::MarketingEmail, 3))
            .expect("grant");
        assert_eq!(verify_chain(ledger.events()), None);
        let mut edited = ledger.events().to_vec();
        edited[1].event.channel = Channel::Api;
        assert_eq!(verify_chain(&edited), Some(2));
        let mut dropped = ledger.events().to_vec();
        dropped.remove(0);
        assert_eq!(verify_chain(&dropped), Some(1));
    }

    #[test]
    fn bad_events_are_refused_and_change_nothing() {
        let subject = SubjectId::new();
        let mut ledger = Ledger::new(subject);
        let mut withdraw = grant(subject, Purpose::Research, 1);
        withdraw.action = LedgerAction::Withdraw;
        assert_eq!(
            ledger.append(withdraw.clone()).err(),
            Some(LedgerError::NothingToEnd("consent"))
        );
        let mut backwards = grant(subject, Purpose::Research, 10);
        backwards.expires_at = Some(5);
        assert_eq!(
            ledger.append(backwards).err(),
            Some(LedgerError::ExpiryBeforeEffect)
        );
        let mut lift = grant(subject, Purpose::Research, 1);
        lift.action = LedgerAction::LiftRestriction;
        lift.category = Some(DataCategory::HealthRecord);
        assert_eq!(
            ledger.append(lift).err(),
            Some(LedgerError::NothingToEnd("restriction"))
        );
        assert_eq!(
            ledger
                .append(grant(SubjectId::new(), Purpose::Research, 1))
                .err(),
            Some(LedgerError::WrongSubject)
        );
        assert!(ledger.events().is_empty());
        ledger
            .append(grant(subject, Purpose::Research, 2))
            .expect("grant");
        ledger
            .append(withdraw)
            .expect("now there is one to withdraw");
    }
}
