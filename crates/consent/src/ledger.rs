//! The consent ledger: append-only events, hash-chained per subject.
//!
//! Nothing is updated or deleted in place. A change of mind is a new event
//! (withdraw, object, restrict, lift a restriction); an expiry is recorded as an
//! event when it is noticed. Each event names the version of the policy it was
//! given under, who acted (the person, a guardian, an authorised agent, or a
//! provider attesting), through which channel, with what evidence, and from when
//! until when it takes effect.
//!
//! ## What the chain covers, and why erasure does not break it
//!
//! A subject's events form one chain, named by a random [`ChainId`] that is not the
//! subject's id: the link from subject to chain is kept beside the ledger and is
//! deleted on erasure, so the chain left behind is pseudonymous.
//!
//! The evidence (client address, user agent, document reference) is personal data
//! that erasure must remove, while the event itself is the proof of consent that
//! GDPR Art. 7(1) asks the controller to keep. So the chain does not cover the
//! evidence; it covers [`EventBody::evidence_digest`], SHA-256 over a random
//! 16-byte salt and the evidence's encoding ([`SaltedEvidence`]). Erasure destroys
//! the salted evidence; the digest stays, proves that evidence existed and was not
//! changed while it did, and cannot be brute-forced back to an address because the
//! salt is gone.
//!
//! [`EventBody::chain`]/[`LedgerEvent::encoding`] is the exact byte string each hash
//! covers; [`verify_chain`] recomputes the links.

use kernel::{DataCategory, Purpose, SubjectId, UserId};
use ring::digest;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The pseudonymous name of one subject's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChainId(pub Uuid);

impl ChainId {
    /// A fresh random chain name (UUIDv4: nothing in it says when or whose).
    #[must_use]
    pub fn random() -> Self {
        let mut bytes = [0; 16];
        random_bytes(&mut bytes);
        Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }
}

/// What an event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerAction {
    /// Consent given for a purpose (and recipient).
    Grant,
    /// Consent taken back: effective at once, for every later use.
    Withdraw,
    /// An objection to processing for a purpose (GDPR Art. 21), or an opt-out.
    Object,
    /// A restriction of processing of a category (GDPR Art. 18).
    Restrict,
    /// The end of a restriction.
    LiftRestriction,
    /// A grant reached its expiry.
    Expire,
}

impl LedgerAction {
    /// Every action.
    pub const ALL: [Self; 6] = [
        Self::Grant,
        Self::Withdraw,
        Self::Object,
        Self::Restrict,
        Self::LiftRestriction,
        Self::Expire,
    ];

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

    /// Parses [`LedgerAction::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// On whose authority the event was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "user", rename_all = "snake_case")]
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

impl Authority {
    /// The stable machine name of the kind.
    #[must_use]
    pub const fn kind(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Guardian(_) => "guardian",
            Self::AuthorisedAgent(_) => "authorised_agent",
            Self::ProviderAttesting(_) => "provider_attesting",
        }
    }

    /// Who acted, when it was not the person.
    #[must_use]
    pub const fn user(self) -> Option<UserId> {
        match self {
            Self::Person => None,
            Self::Guardian(u) | Self::AuthorisedAgent(u) | Self::ProviderAttesting(u) => Some(u),
        }
    }

    /// Rebuilds an authority from [`Authority::kind`] and [`Authority::user`].
    #[must_use]
    pub fn from_parts(kind: &str, user: Option<UserId>) -> Option<Self> {
        match (kind, user) {
            ("person", None) => Some(Self::Person),
            ("guardian", Some(u)) => Some(Self::Guardian(u)),
            ("authorised_agent", Some(u)) => Some(Self::AuthorisedAgent(u)),
            ("provider_attesting", Some(u)) => Some(Self::ProviderAttesting(u)),
            _ => None,
        }
    }

    const fn code(self) -> u8 {
        match self {
            Self::Person => 0,
            Self::Guardian(_) => 1,
            Self::AuthorisedAgent(_) => 2,
            Self::ProviderAttesting(_) => 3,
        }
    }
}

/// How the event reached Custodia.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

impl Channel {
    /// Every channel.
    pub const ALL: [Self; 6] = [
        Self::Web,
        Self::Mobile,
        Self::Paper,
        Self::Verbal,
        Self::Api,
        Self::GlobalPrivacyControl,
    ];

    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Mobile => "mobile",
            Self::Paper => "paper",
            Self::Verbal => "verbal",
            Self::Api => "api",
            Self::GlobalPrivacyControl => "global_privacy_control",
        }
    }

    /// Parses [`Channel::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    const fn code(self) -> u8 {
        match self {
            Self::Web => 0,
            Self::Mobile => 1,
            Self::Paper => 2,
            Self::Verbal => 3,
            Self::Api => 4,
            Self::GlobalPrivacyControl => 5,
        }
    }
}

/// What proves the event: never health data. Personal data, so it is kept
/// encrypted with the subject's key and destroyed on erasure.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Evidence {
    /// The client address the event came from.
    pub client_address: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// A reference to a signed document (a form's storage key, or an authorisation's id).
    pub document: Option<String>,
}

/// Evidence with the salt its digest was computed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaltedEvidence {
    /// 16 random bytes, hex.
    pub salt: String,
    /// The evidence.
    pub evidence: Evidence,
}

impl SaltedEvidence {
    /// Salts `evidence` with 16 fresh random bytes.
    #[must_use]
    pub fn new(evidence: Evidence) -> Self {
        let mut salt = [0; 16];
        random_bytes(&mut salt);
        Self {
            salt: hex(&salt),
            evidence,
        }
    }

    /// SHA-256 over the salt's text, then each field flag- and length-prefixed:
    /// the commitment the chain covers.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        let mut out = Vec::with_capacity(128);
        put(&mut out, self.salt.as_bytes());
        put_opt(&mut out, self.evidence.client_address.as_deref());
        put_opt(&mut out, self.evidence.user_agent.as_deref());
        put_opt(&mut out, self.evidence.document.as_deref());
        sha256(&out)
    }
}

/// One event, as asked for: what the caller states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Whose consent.
    pub subject: SubjectId,
    /// What it does.
    pub action: LedgerAction,
    /// The purpose (grant, withdraw, object, expire).
    pub purpose: Option<Purpose>,
    /// The named recipient: a third party, or the service itself (S6).
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

/// What the chain covers of one event: everything but the evidence itself, which
/// is represented by its salted digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBody {
    /// What it does.
    pub action: LedgerAction,
    /// The purpose (grant, withdraw, object, expire).
    pub purpose: Option<Purpose>,
    /// The named recipient.
    pub recipient: Option<String>,
    /// The category (restrict, lift restriction).
    pub category: Option<DataCategory>,
    /// On whose authority.
    pub authority: Authority,
    /// Through which channel.
    pub channel: Channel,
    /// SHA-256 over the salted evidence ([`SaltedEvidence::digest`]).
    pub evidence_digest: [u8; 32],
    /// The policy version it was given under (O3).
    pub policy_version: String,
    /// When it was recorded, µs since the epoch.
    pub recorded_at: i64,
    /// When it takes effect, µs since the epoch.
    pub effective_at: i64,
    /// When it stops, µs since the epoch.
    pub expires_at: Option<i64>,
}

/// A chained event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEvent {
    /// The chain it belongs to.
    pub chain: ChainId,
    /// Its position in the chain, from 1.
    pub sequence: u64,
    /// The previous event's hash (zeros for the first).
    pub prev_hash: [u8; 32],
    /// SHA-256 over [`LedgerEvent::encoding`].
    pub hash: [u8; 32],
    /// What it records.
    pub body: EventBody,
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
}

/// Version of [`LedgerEvent::encoding`].
pub const ENCODING_VERSION: u8 = 1;

impl LedgerEvent {
    /// Chains `body` after `prev` (the chain's head: its sequence and hash, or
    /// `None` for the first event).
    #[must_use]
    pub fn chain_after(chain: ChainId, prev: Option<(u64, [u8; 32])>, body: EventBody) -> Self {
        let (sequence, prev_hash) = prev.map_or((1, [0; 32]), |(s, h)| (s + 1, h));
        let mut event = Self {
            chain,
            sequence,
            prev_hash,
            hash: [0; 32],
            body,
        };
        event.hash = event.compute_hash();
        event
    }

    /// The canonical encoding the hash covers: the version byte
    /// ([`ENCODING_VERSION`]), the chain id (16 bytes), the sequence (8 bytes,
    /// big-endian), the previous hash (32 bytes), then each body field in
    /// declaration order. Strings are length-prefixed (8 bytes, big-endian);
    /// optional values are prefixed by 1 (present) or 0 (absent); the authority is a
    /// kind byte (0 person, 1 guardian, 2 agent, 3 provider) and a user id (16
    /// bytes, zeros for the person); the channel is one byte (0 web, 1 mobile,
    /// 2 paper, 3 verbal, 4 api, 5 GPC); times are signed 8-byte big-endian µs.
    #[must_use]
    pub fn encoding(&self) -> Vec<u8> {
        let b = &self.body;
        let mut out = Vec::with_capacity(256);
        out.push(ENCODING_VERSION);
        out.extend_from_slice(self.chain.0.as_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.prev_hash);
        put(&mut out, b.action.as_str().as_bytes());
        put_opt(&mut out, b.purpose.map(Purpose::as_str));
        put_opt(&mut out, b.recipient.as_deref());
        put_opt(&mut out, b.category.map(DataCategory::as_str));
        out.push(b.authority.code());
        let who = b
            .authority
            .user()
            .map_or([0; 16], |u| *u.as_uuid().as_bytes());
        out.extend_from_slice(&who);
        out.push(b.channel.code());
        out.extend_from_slice(&b.evidence_digest);
        put(&mut out, b.policy_version.as_bytes());
        out.extend_from_slice(&b.recorded_at.to_be_bytes());
        out.extend_from_slice(&b.effective_at.to_be_bytes());
        match b.expires_at {
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
        sha256(&self.encoding())
    }
}

/// Where a chain breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainProblem {
    /// The sequence numbers skip or repeat (an event was deleted or inserted).
    SequenceGap,
    /// The event does not name its predecessor's hash (reordered or replaced).
    BrokenLink,
    /// The stored hash is not the hash of the stored event (edited in place).
    HashMismatch,
    /// The event belongs to another chain.
    WrongChain,
}

impl ChainProblem {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SequenceGap => "sequence_gap",
            Self::BrokenLink => "broken_link",
            Self::HashMismatch => "hash_mismatch",
            Self::WrongChain => "wrong_chain",
        }
    }
}

/// The first break in one chain: the position and what is wrong there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainBreak {
    /// The sequence number where the chain breaks (its expected position).
    pub sequence: u64,
    /// What is wrong.
    pub problem: ChainProblem,
}

/// Checks one chain's events, oldest first: the first break, or `None`.
#[must_use]
pub fn verify_chain(chain: ChainId, events: &[LedgerEvent]) -> Option<ChainBreak> {
    let mut prev = [0; 32];
    for (i, e) in events.iter().enumerate() {
        let sequence = i as u64 + 1;
        let problem = if e.chain != chain {
            Some(ChainProblem::WrongChain)
        } else if e.sequence != sequence {
            Some(ChainProblem::SequenceGap)
        } else if e.prev_hash != prev {
            Some(ChainProblem::BrokenLink)
        } else if e.compute_hash() != e.hash {
            Some(ChainProblem::HashMismatch)
        } else {
            None
        };
        if let Some(problem) = problem {
            return Some(ChainBreak { sequence, problem });
        }
        prev = e.hash;
    }
    None
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

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, bytes);
    let mut out = [0; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Lower-case hex of `bytes`.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn random_bytes(out: &mut [u8]) {
    use ring::rand::SecureRandom as _;
    // The system's random source failing is not recoverable: nothing random can
    // be made without it.
    if ring::rand::SystemRandom::new().fill(out).is_err() {
        panic!("the system random source failed");
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn body(action: LedgerAction, purpose: Purpose, at: i64) -> EventBody {
        EventBody {
            action,
            purpose: Some(purpose),
            recipient: None,
            category: None,
            authority: Authority::Person,
            channel: Channel::Web,
            evidence_digest: SaltedEvidence::new(Evidence::default()).digest(),
            policy_version: "privacy-notice@2026-11-01".into(),
            recorded_at: at,
            effective_at: at,
            expires_at: None,
        }
    }

    fn chain_of(n: u64) -> (ChainId, Vec<LedgerEvent>) {
        let chain = ChainId::random();
        let mut events: Vec<LedgerEvent> = Vec::new();
        for i in 0..n {
            let prev = events.last().map(|e| (e.sequence, e.hash));
            events.push(LedgerEvent::chain_after(
                chain,
                prev,
                body(LedgerAction::Grant, Purpose::Research, i as i64),
            ));
        }
        (chain, events)
    }

    #[test]
    fn an_untouched_chain_verifies_and_every_kind_of_edit_is_named() {
        let (chain, events) = chain_of(4);
        assert_eq!(verify_chain(chain, &events), None);

        let mut edited = events.clone();
        edited[2].body.channel = Channel::Api;
        assert_eq!(
            verify_chain(chain, &edited),
            Some(ChainBreak {
                sequence: 3,
                problem: ChainProblem::HashMismatch
            })
        );
        let mut dropped = events.clone();
        dropped.remove(1);
        assert_eq!(
            verify_chain(chain, &dropped),
            Some(ChainBreak {
                sequence: 2,
                problem: ChainProblem::SequenceGap
            })
        );
        let mut swapped = events.clone();
        swapped.swap(1, 2);
        swapped[1].sequence = 2;
        swapped[2].sequence = 3;
        assert_eq!(
            verify_chain(chain, &swapped).map(|b| b.sequence),
            Some(2),
            "reordering is caught at the first moved event"
        );
        assert_eq!(
            verify_chain(ChainId::random(), &events).map(|b| b.problem),
            Some(ChainProblem::WrongChain)
        );
    }

    #[test]
    fn the_digest_depends_on_the_salt_so_erased_evidence_cannot_be_guessed_back() {
        let evidence = Evidence {
            client_address: Some("192.0.2.7".into()),
            user_agent: Some("ua".into()),
            document: None,
        };
        let a = SaltedEvidence::new(evidence.clone());
        let b = SaltedEvidence::new(evidence);
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.digest(), b.digest());
        let mut changed = a.clone();
        changed.evidence.client_address = Some("192.0.2.8".into());
        assert_ne!(a.digest(), changed.digest());
    }

    #[test]
    fn names_round_trip() {
        for a in LedgerAction::ALL {
            assert_eq!(LedgerAction::parse(a.as_str()), Some(a));
        }
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
        let u = UserId::new();
        for a in [
            Authority::Person,
            Authority::Guardian(u),
            Authority::AuthorisedAgent(u),
            Authority::ProviderAttesting(u),
        ] {
            assert_eq!(Authority::from_parts(a.kind(), a.user()), Some(a));
        }
    }
}
