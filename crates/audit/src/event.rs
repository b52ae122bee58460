//! [`SealedEvent`]: one event as the log keeps it, and its canonical encoding.
//!
//! # The encoding
//! An event's hash is `SHA-256(0x00 || encoding)`, which is at once its link in the
//! chain (the encoding holds the predecessor's hash) and its RFC 6962 leaf hash.
//! The encoding is a fixed sequence of fields, each of fixed width or prefixed with
//! its length, under a version byte: no separator ambiguity, no JSON key order, no
//! floating point. See [`SealedEvent::encode`].
//!
//! # Commitments instead of identifiers
//! The person acting (with their client address) and the subject whose data it is
//! enter the encoding only as *commitments*:
//! `SHA-256(domain || chain || sequence || id ...)`. The plain identifiers sit in
//! their own columns beside it, and the verifier checks each against its
//! commitment. When a person is erased, their identifiers are replaced by a keyed
//! pseudonym and the address is dropped; the commitment, and so every hash, link,
//! Merkle root and signed checkpoint, stays as it was, and verification still passes.
//! The erasure itself is an event in the log naming the pseudonym, so a pseudonym
//! the log never announced is reported as tampering.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use crate::Hash;
use crate::merkle::leaf_hash;

/// The encoding's version byte.
pub const ENCODING_VERSION: u8 = 1;

const ACTOR_DOMAIN: &[u8] = b"custodia.audit.actor.v1";
const SUBJECT_DOMAIN: &[u8] = b"custodia.audit.subject.v1";
const DISCLOSURE_DOMAIN: &[u8] = b"custodia.audit.disclosure.v1";

/// One writer's chain of events. Each server process appends to its own chain, so
/// several processes share one database without contending for a head.
pub type ChainId = Uuid;

/// The kind of actor, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorKind {
    /// Nobody signed in.
    Anonymous = 0,
    /// A member of a practice (or an API key acting for it).
    Member = 1,
    /// The platform operator.
    Operator = 2,
    /// Custodia itself.
    System = 3,
    /// A practice's API key (an integration), acting with its role.
    ApiKey = 4,
}

impl ActorKind {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::Member => "member",
            Self::Operator => "operator",
            Self::System => "system",
            Self::ApiKey => "api_key",
        }
    }

    /// Parses [`ActorKind::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Anonymous,
            Self::Member,
            Self::Operator,
            Self::System,
            Self::ApiKey,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Who acted, as stored: plain identifiers beside the commitment that binds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredActor {
    /// The kind.
    pub kind: ActorKind,
    /// The person (for [`ActorKind::ApiKey`], the key), until erased.
    pub id: Option<Uuid>,
    /// The client address, until the person is erased.
    pub client_address: Option<String>,
    /// Replaces `id` (and `client_address`) once the person is erased.
    pub pseudonym: Option<Hash>,
    /// The role bits ([`kernel::RoleSet`] order) acted with.
    pub roles: u8,
    /// For [`ActorKind::System`]: the component.
    pub component: Option<String>,
    /// `SHA-256(actor domain || chain || sequence || id || address)`, when there is an
    /// id or an address.
    pub commitment: Option<Hash>,
}

/// Whose data it was, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubject {
    /// The subject, until erased.
    pub id: Option<Uuid>,
    /// Replaces `id` once the subject is erased.
    pub pseudonym: Option<Hash>,
    /// `SHA-256(subject domain || chain || sequence || id)`.
    pub commitment: Hash,
}

/// One event as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEvent {
    /// The chain.
    pub chain: ChainId,
    /// Position in the chain, from 1, without gaps.
    pub sequence: u64,
    /// When it happened (microsecond precision).
    pub at: DateTime<Utc>,
    /// Who acted.
    pub actor: StoredActor,
    /// The practice acted in.
    pub organisation: Option<Uuid>,
    /// What was done ([`kernel::AuditAction`] name).
    pub action: String,
    /// The record's kind.
    pub resource_kind: String,
    /// The record's id.
    pub resource_id: Uuid,
    /// Whose data it was.
    pub subject: Option<StoredSubject>,
    /// Why ([`kernel::Purpose`] name).
    pub purpose: String,
    /// `None` when allowed; the reason when denied.
    pub denied: Option<String>,
    /// The request.
    pub request_id: Uuid,
    /// For a disclosure: the digest of its details, which are kept sealed elsewhere.
    pub disclosure_digest: Option<Hash>,
    /// For an erasure: the pseudonym the erasure introduced.
    pub erased_pseudonym: Option<Hash>,
    /// The predecessor's hash ([`Hash::ZERO`] for the first event).
    pub prev_hash: Hash,
    /// `SHA-256(0x00 || encoding)`.
    pub hash: Hash,
    /// Past retention: every field but the position, time and hashes was blanked.
    pub pruned: bool,
}

/// Appends a length-prefixed byte string.
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&bytes[..len as usize]);
}

fn put_opt_hash(out: &mut Vec<u8>, hash: Option<&Hash>) {
    match hash {
        Some(h) => {
            out.push(1);
            out.extend_from_slice(h.as_bytes());
        }
        None => out.push(0),
    }
}

fn put_opt_uuid(out: &mut Vec<u8>, id: Option<Uuid>) {
    match id {
        Some(id) => {
            out.push(1);
            out.extend_from_slice(id.as_bytes());
        }
        None => out.push(0),
    }
}

/// Microseconds since the epoch: the precision every database keeps.
#[must_use]
pub fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// `at` truncated to microseconds.
#[must_use]
pub fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_micros(at.timestamp_micros())
        .single()
        .unwrap_or(at)
}

/// The actor commitment.
#[must_use]
pub fn actor_commitment(
    chain: ChainId,
    sequence: u64,
    id: Option<Uuid>,
    client_address: Option<&str>,
) -> Hash {
    let mut buf = Vec::with_capacity(96);
    put_opt_uuid(&mut buf, id);
    put_bytes(&mut buf, client_address.unwrap_or("").as_bytes());
    Hash::of(&[
        ACTOR_DOMAIN,
        chain.as_bytes(),
        &sequence.to_be_bytes(),
        &buf,
    ])
}

/// The subject commitment.
#[must_use]
pub fn subject_commitment(chain: ChainId, sequence: u64, id: Uuid) -> Hash {
    Hash::of(&[
        SUBJECT_DOMAIN,
        chain.as_bytes(),
        &sequence.to_be_bytes(),
        id.as_bytes(),
    ])
}

/// The digest binding a disclosure's details into its event.
#[must_use]
pub fn disclosure_digest(d: &kernel::Disclosure) -> Hash {
    let mut buf = Vec::new();
    put_bytes(&mut buf, d.recipient.as_bytes());
    put_bytes(&mut buf, d.description.as_bytes());
    put_bytes(&mut buf, d.legal_basis.as_bytes());
    buf.extend_from_slice(&micros(d.disclosed_at).to_be_bytes());
    Hash::of(&[DISCLOSURE_DOMAIN, &buf])
}

impl SealedEvent {
    /// The canonical encoding: every field the hash covers, in this order.
    ///
    /// | field | bytes |
    /// |---|---|
    /// | version | 1 |
    /// | chain | 16 |
    /// | sequence | 8, big-endian |
    /// | predecessor's hash | 32 |
    /// | time | 8, big-endian microseconds since the epoch |
    /// | actor kind, role bits | 1, 1 |
    /// | actor component | length-prefixed UTF-8 |
    /// | actor commitment | flag byte, then 32 |
    /// | organisation | flag byte, then 16 |
    /// | action, resource kind | length-prefixed UTF-8 each |
    /// | resource id | 16 |
    /// | subject commitment | flag byte, then 32 |
    /// | purpose | length-prefixed UTF-8 |
    /// | outcome | flag byte (1 = denied), then the length-prefixed reason |
    /// | request id | 16 |
    /// | disclosure digest, erased pseudonym | flag byte, then 32, each |
    ///
    /// Length prefixes are 4 bytes, big-endian.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(ENCODING_VERSION);
        out.extend_from_slice(self.chain.as_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(self.prev_hash.as_bytes());
        out.extend_from_slice(&micros(self.at).to_be_bytes());
        out.push(self.actor.kind as u8);
        out.push(self.actor.roles);
        put_bytes(
            out,
            self.actor.component.as_deref().unwrap_or("").as_bytes(),
        );
        put_opt_hash(out, self.actor.commitment.as_ref());
        put_opt_uuid(out, self.organisation);
        put_bytes(out, self.action.as_bytes());
        put_bytes(out, self.resource_kind.as_bytes());
        out.extend_from_slice(self.resource_id.as_bytes());
        put_opt_hash(out, self.subject.as_ref().map(|s| &s.commitment));
        put_bytes(out, self.purpose.as_bytes());
        match &self.denied {
            Some(reason) => {
                out.push(1);
                put_bytes(out, reason.as_bytes());
            }
            None => out.push(0),
        }
        out.extend_from_slice(self.request_id.as_bytes());
        put_opt_hash(out, self.disclosure_digest.as_ref());
        put_opt_hash(out, self.erased_pseudonym.as_ref());
    }

    /// The canonical encoding, as a fresh buffer.
    #[must_use]
    pub fn encoding(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.encode(&mut out);
        out
    }

    /// `SHA-256(0x00 || encoding)`, computed afresh.
    #[must_use]
    pub fn compute_hash(&self) -> Hash {
        leaf_hash(&self.encoding())
    }

    /// Seals `event` as number `sequence` of `chain` after `prev_hash`.
    #[must_use]
    pub fn seal(
        event: &kernel::AuditEvent,
        chain: ChainId,
        sequence: u64,
        prev_hash: Hash,
        erased_pseudonym: Option<Hash>,
    ) -> Self {
        let (kind, id, roles, component) = match (&event.actor, event.api_key) {
            (kernel::Actor::Member { roles, .. }, Some(key)) => {
                (ActorKind::ApiKey, Some(key), role_bits(*roles), None)
            }
            (actor, _) => Self::actor_parts(actor),
        };
        let client_address = event.client_address.map(|a| a.to_string());
        let commitment = (id.is_some() || client_address.is_some())
            .then(|| actor_commitment(chain, sequence, id, client_address.as_deref()));
        let subject = event.subject.map(|s| StoredSubject {
            id: Some(s.as_uuid()),
            pseudonym: None,
            commitment: subject_commitment(chain, sequence, s.as_uuid()),
        });
        let mut sealed = Self {
            chain,
            sequence,
            at: truncate(event.at),
            actor: StoredActor {
                kind,
                id,
                client_address,
                pseudonym: None,
                roles,
                component,
                commitment,
            },
            organisation: event.organisation.map(|o| o.as_uuid()),
            action: event.action.as_str().to_owned(),
            resource_kind: event.resource.kind.to_owned(),
            resource_id: event.resource.id,
            subject,
            purpose: event.purpose.as_str().to_owned(),
            denied: match &event.outcome {
                kernel::AuditOutcome::Allowed => None,
                kernel::AuditOutcome::Denied { reason } => Some((*reason).to_owned()),
            },
            request_id: event.request_id.as_uuid(),
            disclosure_digest: event.disclosure.as_ref().map(disclosure_digest),
            erased_pseudonym,
            prev_hash,
            hash: Hash::ZERO,
            pruned: false,
        };
        sealed.hash = sealed.compute_hash();
        sealed
    }

    /// Kind, id, role bits and component of an actor acting in person.
    fn actor_parts(actor: &kernel::Actor) -> (ActorKind, Option<Uuid>, u8, Option<String>) {
        match actor {
            kernel::Actor::Anonymous => (ActorKind::Anonymous, None, 0, None),
            kernel::Actor::Member { user, roles } => (
                ActorKind::Member,
                Some(user.as_uuid()),
                role_bits(*roles),
                None,
            ),
            kernel::Actor::PlatformOperator { user } => {
                (ActorKind::Operator, Some(user.as_uuid()), 0, None)
            }
            kernel::Actor::System { component } => {
                (ActorKind::System, None, 0, Some((*component).to_owned()))
            }
        }
    }

    /// The roles acted with.
    #[must_use]
    pub fn roles(&self) -> Vec<kernel::Role> {
        kernel::Role::ALL
            .into_iter()
            .enumerate()
            .filter(|(i, _)| self.actor.roles & (1 << i) != 0)
            .map(|(_, r)| r)
            .collect()
    }
}

/// A role set as bits, in [`kernel::Role::ALL`] order.
#[must_use]
pub fn role_bits(roles: kernel::RoleSet) -> u8 {
    kernel::Role::ALL
        .into_iter()
        .enumerate()
        .filter(|(_, r)| roles.contains(*r))
        .fold(0, |bits, (i, _)| bits | (1 << i))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kernel::{
        Actor, AuditAction, AuditEvent, AuditOutcome, ClientInfo, OrganisationId, Purpose,
        RequestContext, RequestId, ResourceRef, Role, RoleSet, SubjectId, UserId,
    };

    pub(crate) fn sample_event(n: u64) -> AuditEvent {
        let ctx = RequestContext::new(
            Actor::Member {
                user: UserId::new(),
                roles: RoleSet::only(Role::Provider).with(Role::OrgAdmin),
            },
            Some(OrganisationId::new()),
            Purpose::Treatment,
            RequestId::new(),
            ClientInfo::default(),
            Utc.timestamp_opt(1_790_000_000 + i64::try_from(n).unwrap_or(0), 123_456_789)
                .single()
                .unwrap_or_default(),
        );
        let outcome = if n.is_multiple_of(5) {
            AuditOutcome::Denied {
                reason: "not_on_care_team",
            }
        } else {
            AuditOutcome::Allowed
        };
        let mut event = AuditEvent::new(
            &ctx,
            AuditAction::Read,
            ResourceRef::new("condition", Uuid::now_v7()),
            Some(SubjectId::new()),
            outcome,
        );
        event.client_address = Some(std::net::IpAddr::from([10, 0, 0, (n % 250) as u8]));
        event
    }

    #[test]
    fn sealing_binds_every_field_into_the_hash() {
        let chain = Uuid::now_v7();
        let sealed = SealedEvent::seal(&sample_event(1), chain, 1, Hash::ZERO, None);
        assert_eq!(sealed.hash, sealed.compute_hash());
        assert_eq!(sealed.at.timestamp_subsec_nanos() % 1000, 0, "microseconds");
        let mut changed = sealed.clone();
        changed.purpose = "research".into();
        assert_ne!(changed.compute_hash(), sealed.hash);
        let mut changed = sealed.clone();
        changed.denied = Some(String::new());
        assert_ne!(changed.compute_hash(), sealed.hash);
        assert_eq!(sealed.roles(), vec![Role::OrgAdmin, Role::Provider]);
    }

    #[test]
    fn pseudonymising_leaves_the_hash_alone() {
        let chain = Uuid::now_v7();
        let sealed = SealedEvent::seal(&sample_event(1), chain, 1, Hash::ZERO, None);
        let mut erased = sealed.clone();
        erased.actor.id = None;
        erased.actor.client_address = None;
        erased.actor.pseudonym = Some(Hash::of(&[b"p"]));
        if let Some(subject) = erased.subject.as_mut() {
            subject.id = None;
            subject.pseudonym = Some(Hash::of(&[b"p"]));
        }
        assert_eq!(erased.compute_hash(), sealed.hash);
    }

    #[test]
    fn length_prefixes_keep_adjacent_strings_apart() {
        let chain = Uuid::now_v7();
        let mut a = SealedEvent::seal(&sample_event(1), chain, 1, Hash::ZERO, None);
        a.action = "read".into();
        a.resource_kind = "condition".into();
        let mut b = a.clone();
        b.action = "readc".into();
        b.resource_kind = "ondition".into();
        assert_ne!(a.encoding(), b.encoding());
    }
}
