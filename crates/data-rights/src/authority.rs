//! Who may file a request about whom (D8, D11): the subject for themselves, and an
//! authorised agent only with a recorded proof of authority that names the
//! subject, covers the kind of request, has not expired, and that the subject
//! confirmed. Guardians and providers are checked by the contexts that hold those
//! relationships (identity's guardianships, clinical's care team); this module
//! decides the agent's case and the outcome of a check.
//!
//! A requester without any authority over the subject learns nothing about them:
//! [`AuthorityError::NoAuthority`] is answered as 404, like an unknown subject. An
//! expired proof is 403 and audited, because the agent did hold authority once.

use chrono::{DateTime, Utc};
use kernel::{SubjectId, UserId};
use serde::Serialize;

use crate::request::RequestKind;

/// The longest document reference kept (a reference, never the document).
pub const MAX_DOCUMENT_REF: usize = 200;

/// What a proof of authority covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "kinds", rename_all = "snake_case")]
pub enum Scope {
    /// Every kind of request.
    All,
    /// Only these kinds.
    Kinds(Vec<RequestKind>),
}

impl Scope {
    /// Whether the scope covers `kind`.
    #[must_use]
    pub fn covers(&self, kind: RequestKind) -> bool {
        match self {
            Self::All => true,
            Self::Kinds(kinds) => kinds.contains(&kind),
        }
    }
}

/// A recorded proof that `agent` may act for `subject` (CCPA 11 CCR 7063, GDPR
/// Art. 80 and national law on representation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProofOfAuthority {
    /// The agent.
    pub agent: UserId,
    /// The person they act for.
    pub subject: SubjectId,
    /// Where the signed permission or power of attorney is kept (a reference, 1 to
    /// [`MAX_DOCUMENT_REF`] characters).
    pub document_ref: String,
    /// What it covers.
    pub scope: Scope,
    /// When it stops being valid.
    pub expires_at: DateTime<Utc>,
    /// When the subject confirmed the agent, if they did.
    pub confirmed_at: Option<DateTime<Utc>>,
}

/// Why a proof was refused when recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The document reference is blank, too long or holds control characters.
    #[error("document_ref: must be 1 to 200 characters, without control characters")]
    BadDocumentRef,
    /// The scope names no kind.
    #[error("scope: must cover at least one kind of request")]
    EmptyScope,
    /// The proof has already expired.
    #[error("expires_at: must be in the future")]
    AlreadyExpired,
}

impl ProofOfAuthority {
    /// A proof recorded at `now`, awaiting the subject's confirmation.
    ///
    /// # Errors
    /// [`ProofError`] naming the field.
    pub fn record(
        agent: UserId,
        subject: SubjectId,
        document_ref: &str,
        scope: Scope,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Self, ProofError> {
        let document_ref = document_ref.trim();
        let length = document_ref.chars().count();
        if length == 0 || length > MAX_DOCUMENT_REF || document_ref.chars().any(char::is_control) {
            return Err(ProofError::BadDocumentRef);
        }
        if matches!(&scope, Scope::Kinds(kinds) if kinds.is_empty()) {
            return Err(ProofError::EmptyScope);
        }
        if expires_at <= now {
            return Err(ProofError::AlreadyExpired);
        }
        Ok(Self {
            agent,
            subject,
            document_ref: document_ref.to_owned(),
            scope,
            expires_at,
            confirmed_at: None,
        })
    }

    /// The subject confirms the agent at `at`.
    pub fn confirm(&mut self, at: DateTime<Utc>) {
        self.confirmed_at.get_or_insert(at);
    }
}

/// Why a requester may not file or follow a request about a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthorityError {
    /// No authority over this subject at all (answered 404: nothing is revealed).
    #[error("no such subject")]
    NoAuthority,
    /// The proof of authority has expired (403, audited).
    #[error("the proof of authority has expired")]
    Expired,
    /// The subject has not confirmed the agent yet (403).
    #[error("the person has not confirmed the agent yet")]
    NotConfirmed,
    /// The proof does not cover this kind of request (403).
    #[error("the proof of authority does not cover this kind of request")]
    OutOfScope,
}

/// Whether `agent` may file a request of `kind` about `subject` at `now`, given
/// the proofs recorded for the agent. The best standing proof decides: a valid one
/// wins over an expired one for the same subject.
///
/// # Errors
/// [`AuthorityError`].
pub fn agent_may_act(
    proofs: &[ProofOfAuthority],
    agent: UserId,
    subject: SubjectId,
    kind: RequestKind,
    now: DateTime<Utc>,
) -> Result<(), AuthorityError> {
    let mut best = Err(AuthorityError::NoAuthority);
    for proof in proofs
        .iter()
        .filter(|p| p.agent == agent && p.subject == subject)
    {
        let verdict = if proof.expires_at <= now {
            Err(AuthorityError::Expired)
        } else if proof.confirmed_at.is_none() {
            Err(AuthorityError::NotConfirmed)
        } else if !proof.scope.covers(kind) {
            Err(AuthorityError::OutOfScope)
        } else {
            return Ok(());
        };
        // Prefer the most specific refusal: out of scope, then unconfirmed, then
        // expired, then none at all.
        if rank(verdict) > rank(best) {
            best = verdict;
        }
    }
    best
}

const fn rank(verdict: Result<(), AuthorityError>) -> u8 {
    match verdict {
        Ok(()) => 4,
        Err(AuthorityError::OutOfScope) => 3,
        Err(AuthorityError::NotConfirmed) => 2,
        Err(AuthorityError::Expired) => 1,
        Err(AuthorityError::NoAuthority) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid time")
            .with_timezone(&Utc)
    }

    #[test]
    fn proofs_are_checked_when_recorded() {
        let now = at("2026-11-24T10:00:00Z");
        let (agent, subject) = (UserId::new(), SubjectId::new());
        let later = at("2027-11-24T10:00:00Z");
        assert_eq!(
            ProofOfAuthority::record(agent, subject, "  ", Scope::All, later, now),
            Err(ProofError::BadDocumentRef)
        );
        assert_eq!(
            ProofOfAuthority::record(agent, subject, &"x".repeat(201), Scope::All, later, now),
            Err(ProofError::BadDocumentRef)
        );
        assert_eq!(
            ProofOfAuthority::record(agent, subject, "poa-1", Scope::Kinds(vec![]), later, now),
            Err(ProofError::EmptyScope)
        );
        assert_eq!(
            ProofOfAuthority::record(agent, subject, "poa-1", Scope::All, now, now),
            Err(ProofError::AlreadyExpired)
        );
    }

    #[test]
    fn an_agent_acts_only_with_a_confirmed_covering_unexpired_proof() {
        let now = at("2026-11-24T10:00:00Z");
        let (agent, subject, other) = (UserId::new(), SubjectId::new(), SubjectId::new());
        let mut proof = ProofOfAuthority::record(
            agent,
            subject,
            "vault://poa/2026/118",
            Scope::Kinds(vec![RequestKind::CcpaKnow, RequestKind::CcpaDelete]),
            at("2027-01-01T00:00:00Z"),
            now,
        )
        .expect("valid proof");
        let proofs = vec![proof.clone()];
        assert_eq!(
            agent_may_act(&proofs, agent, subject, RequestKind::CcpaKnow, now),
            Err(AuthorityError::NotConfirmed)
        );
        proof.confirm(now);
        let proofs = vec![proof.clone()];
        assert_eq!(
            agent_may_act(&proofs, agent, subject, RequestKind::CcpaKnow, now),
            Ok(())
        );
        assert_eq!(
            agent_may_act(&proofs, agent, subject, RequestKind::Erasure, now),
            Err(AuthorityError::OutOfScope)
        );
        // Another subject, through the same agent: nothing is revealed.
        assert_eq!(
            agent_may_act(&proofs, agent, other, RequestKind::CcpaKnow, now),
            Err(AuthorityError::NoAuthority)
        );
        assert_eq!(
            agent_may_act(&proofs, UserId::new(), subject, RequestKind::CcpaKnow, now),
            Err(AuthorityError::NoAuthority)
        );
        assert_eq!(
            agent_may_act(
                &proofs,
                agent,
                subject,
                RequestKind::CcpaKnow,
                at("2027-01-01T00:00:00Z")
            ),
            Err(AuthorityError::Expired)
        );
        // A renewed proof beside the expired one lets the agent act again.
        let mut renewed = proof.clone();
        renewed.expires_at = at("2028-01-01T00:00:00Z");
        let proofs = vec![proof, renewed];
        assert_eq!(
            agent_may_act(
                &proofs,
                agent,
                subject,
                RequestKind::CcpaKnow,
                at("2027-06-01T00:00:00Z")
            ),
            Ok(())
        );
    }
}
