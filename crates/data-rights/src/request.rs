//! A rights request: its kind, subject, requester, regime, clock, status and
//! history, and the status changes the law allows.
//!
//! ```text
//! received -> awaiting_verification -> verified -> in_progress -> completed
//!    |               |                    |             |  \-> extended -> completed
//!    +---------------+--------------------+-------------+----> denied (reason + ground)
//! ```
//!
//! A request filed by the signed-in subject for themselves is verified on receipt
//! (D8); anyone else's waits for verification. Completed and denied are final.

use chrono::{DateTime, Utc};
use kernel::personal_data::ErasureOutcome;
use kernel::{DataCategory, LegalGround, OrganisationId, Purpose, Regime, SubjectId, UserId};
use serde::Serialize;

use crate::deadline::Deadlines;
use crate::ids::RightsRequestId;

/// What the person asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// A copy of their data (GDPR Art. 15, HIPAA 164.524).
    Access,
    /// A correction (GDPR Art. 16; HIPAA amendment, 164.526).
    Rectification,
    /// Erasure (GDPR Art. 17).
    Erasure,
    /// Restriction of processing (GDPR Art. 18; HIPAA 164.522).
    Restriction,
    /// Their data in a portable form (GDPR Art. 20).
    Portability,
    /// An objection to processing (GDPR Art. 21).
    Objection,
    /// Withdrawal of a consent (GDPR Art. 7(3)).
    Withdrawal,
    /// The CCPA right to know (Cal. Civ. Code 1798.110).
    CcpaKnow,
    /// The CCPA right to delete (Cal. Civ. Code 1798.105).
    CcpaDelete,
    /// A HIPAA accounting of disclosures (164.528).
    AccountingOfDisclosures,
}

impl RequestKind {
    /// Every kind.
    pub const ALL: [Self; 10] = [
        Self::Access,
        Self::Rectification,
        Self::Erasure,
        Self::Restriction,
        Self::Portability,
        Self::Objection,
        Self::Withdrawal,
        Self::CcpaKnow,
        Self::CcpaDelete,
        Self::AccountingOfDisclosures,
    ];

    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Rectification => "rectification",
            Self::Erasure => "erasure",
            Self::Restriction => "restriction",
            Self::Portability => "portability",
            Self::Objection => "objection",
            Self::Withdrawal => "withdrawal",
            Self::CcpaKnow => "ccpa_know",
            Self::CcpaDelete => "ccpa_delete",
            Self::AccountingOfDisclosures => "accounting_of_disclosures",
        }
    }

    /// Parses [`RequestKind::as_str`]'s output; anything else is `None` (422 at
    /// the edge).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the kind exists under `regime`: the CCPA kinds only under CCPA, the
    /// accounting of disclosures only under HIPAA.
    #[must_use]
    pub const fn exists_under(self, regime: Regime) -> bool {
        match self {
            Self::CcpaKnow | Self::CcpaDelete => matches!(regime, Regime::Ccpa),
            Self::AccountingOfDisclosures => matches!(regime, Regime::Hipaa),
            _ => true,
        }
    }
}

/// Who files the request for the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Requester {
    /// The subject themselves.
    Subject {
        /// Their account.
        user: UserId,
    },
    /// A guardian of a minor subject.
    Guardian {
        /// The guardian's account.
        user: UserId,
    },
    /// An authorised agent (D11), with a recorded proof of authority.
    AuthorisedAgent {
        /// The agent's account.
        user: UserId,
    },
    /// A provider filing on the client's behalf (the practice is the covered entity).
    Provider {
        /// The provider's account.
        user: UserId,
    },
}

impl Requester {
    /// The person filing.
    #[must_use]
    pub const fn user(&self) -> UserId {
        match self {
            Self::Subject { user }
            | Self::Guardian { user }
            | Self::AuthorisedAgent { user }
            | Self::Provider { user } => *user,
        }
    }
}

/// Where a request is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RequestStatus {
    /// Filed.
    Received,
    /// Waiting for the requester's identity or authority to be verified (D8).
    AwaitingVerification,
    /// Verified; not yet started.
    Verified,
    /// Being carried out.
    InProgress,
    /// Extended, with notice, to the extended due time.
    Extended,
    /// Done.
    Completed,
    /// Refused, with the reason and its legal ground.
    Denied {
        /// Why, in plain words, for the person.
        reason: String,
        /// The legal ground of the refusal.
        ground: LegalGround,
    },
}

impl RequestStatus {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::AwaitingVerification => "awaiting_verification",
            Self::Verified => "verified",
            Self::InProgress => "in_progress",
            Self::Extended => "extended",
            Self::Completed => "completed",
            Self::Denied { .. } => "denied",
        }
    }

    /// Whether the request is closed.
    #[must_use]
    pub const fn is_final(&self) -> bool {
        matches!(self, Self::Completed | Self::Denied { .. })
    }

    /// Whether the law lets a request move from `self` to `next`.
    #[must_use]
    pub const fn may_become(&self, next: &Self) -> bool {
        use RequestStatus as S;
        match (self, next) {
            (S::Completed | S::Denied { .. }, _) => false,
            (_, S::Denied { .. }) => true,
            (S::Received, S::AwaitingVerification | S::Verified)
            | (S::AwaitingVerification, S::Verified)
            | (S::Verified, S::InProgress)
            | (S::InProgress, S::Extended | S::Completed)
            | (S::Extended, S::Completed) => true,
            _ => false,
        }
    }
}

/// One step of a request's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// The status entered.
    pub status: RequestStatus,
    /// Who moved it (none for Custodia itself).
    pub by: Option<UserId>,
}

/// Why a status change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The change is not one the law allows from the current status.
    #[error("a request cannot go from {from} to {to}")]
    NotAllowed {
        /// The current status.
        from: &'static str,
        /// The status asked for.
        to: &'static str,
    },
    /// An extension announced after the original due time.
    #[error("an extension must be announced before the original due time")]
    ExtensionTooLate,
}

/// A rights request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RightsRequest {
    /// Its id.
    pub id: RightsRequestId,
    /// The practice whose privacy officer works it: the subject's home practice
    /// (the covered entity, or the controller).
    pub organisation: OrganisationId,
    /// What exactly is asked, for the kinds that need more than the kind.
    pub detail: RequestDetail,
    /// What is asked.
    pub kind: RequestKind,
    /// Whose data.
    pub subject: SubjectId,
    /// Who asked.
    pub requester: Requester,
    /// Under which law.
    pub regime: Regime,
    /// When it was received.
    pub received_at: DateTime<Utc>,
    /// Its deadlines, from the receipt.
    pub deadlines: Deadlines,
    /// Where it is.
    pub status: RequestStatus,
    /// Every status it went through, oldest first.
    pub history: Vec<HistoryEntry>,
    /// What was done, once it was.
    pub result: Option<RequestResult>,
    /// Bumped by every stored change; a write from a stale copy is refused.
    pub version: u32,
}

/// What a request asks beyond its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "detail", rename_all = "snake_case")]
pub enum RequestDetail {
    /// Nothing more (access, erasure, portability, the CCPA kinds, accounting).
    None,
    /// A correction of one field of one record, in the owning context (D2).
    Rectification {
        /// The context that holds the record (`identity`, `clinical`, ...).
        context: String,
        /// The record's kind, as the export names it.
        resource_kind: String,
        /// The record's id, as the export names it.
        resource_id: uuid::Uuid,
        /// The field, by its export-schema name.
        field: String,
        /// The corrected value, as JSON text (it may be health data: never logged).
        value: String,
    },
    /// Restriction of processing (D4): every category, or these; or its lifting.
    Restriction {
        /// The categories; empty means every category.
        categories: Vec<DataCategory>,
        /// Whether an earlier restriction is lifted instead.
        lift: bool,
    },
    /// An objection to processing for a purpose (D6).
    Objection {
        /// The purpose objected to.
        purpose: Purpose,
    },
    /// Withdrawal of a consent given for a purpose, to a recipient or all (D7).
    Withdrawal {
        /// The purpose.
        purpose: Purpose,
        /// The recipient the consent named, if it named one.
        recipient: Option<String>,
    },
}

impl RequestDetail {
    /// Whether this detail fits `kind`: each kind needing more than itself has
    /// exactly its own detail, and the others none.
    #[must_use]
    pub const fn fits(&self, kind: RequestKind) -> bool {
        matches!(
            (kind, self),
            (RequestKind::Rectification, Self::Rectification { .. })
                | (RequestKind::Restriction, Self::Restriction { .. })
                | (RequestKind::Objection, Self::Objection { .. })
                | (RequestKind::Withdrawal, Self::Withdrawal { .. })
                | (
                    RequestKind::Access
                        | RequestKind::Erasure
                        | RequestKind::Portability
                        | RequestKind::CcpaKnow
                        | RequestKind::CcpaDelete
                        | RequestKind::AccountingOfDisclosures,
                    Self::None
                )
        )
    }
}

/// What carrying a request out produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RequestResult {
    /// A downloadable archive (access, portability, CCPA know, accounting of
    /// disclosures): its SHA-256 and size. The archive itself is stored sealed
    /// under the subject's data key.
    Archive {
        /// The archive's SHA-256, lowercase hex.
        sha256: String,
        /// Its size in bytes.
        bytes: u64,
    },
    /// Every record's fate on erasure, with the ground of whatever was retained.
    Erasure {
        /// One outcome per record, per context.
        outcomes: Vec<ErasureOutcome>,
    },
    /// The change was made (rectification, restriction, objection, withdrawal).
    Applied,
}

impl RightsRequest {
    /// A request received at `received_at`. The subject asking for themselves is
    /// verified at once (they are signed in); anyone else's waits for verification.
    #[must_use]
    pub fn receive(
        organisation: OrganisationId,
        kind: RequestKind,
        subject: SubjectId,
        requester: Requester,
        regime: Regime,
        detail: RequestDetail,
        received_at: DateTime<Utc>,
    ) -> Self {
        let mut request = Self {
            id: RightsRequestId::new(),
            organisation,
            detail,
            kind,
            subject,
            requester,
            regime,
            received_at,
            deadlines: Deadlines::of(regime, kind, received_at),
            status: RequestStatus::Received,
            history: vec![HistoryEntry {
                at: received_at,
                status: RequestStatus::Received,
                by: Some(requester.user()),
            }],
            result: None,
            version: 0,
        };
        let next = match requester {
            Requester::Subject { .. } => RequestStatus::Verified,
            _ => RequestStatus::AwaitingVerification,
        };
        request.status = next.clone();
        request.history.push(HistoryEntry {
            at: received_at,
            status: next,
            by: None,
        });
        request
    }

    /// The due time in force.
    #[must_use]
    pub const fn due_at(&self) -> DateTime<Utc> {
        self.deadlines
            .in_force(matches!(self.status, RequestStatus::Extended))
    }

    /// Whether the privacy officer's queue lists it at `now` (open, and within
    /// [`crate::deadline::NEARING`] of its due time or past it).
    #[must_use]
    pub fn is_nearing(&self, now: DateTime<Utc>) -> bool {
        !self.status.is_final()
            && self
                .deadlines
                .is_nearing(matches!(self.status, RequestStatus::Extended), now)
    }

    /// Whether `self` is an open request identical to one asking for `kind` about
    /// `subject` under `regime` by the same person: filing it again returns this
    /// one instead of opening a second.
    #[must_use]
    pub fn duplicates(
        &self,
        kind: RequestKind,
        subject: SubjectId,
        regime: Regime,
        requester: &Requester,
        detail: &RequestDetail,
    ) -> bool {
        !self.status.is_final()
            && self.detail == *detail
            && self.kind == kind
            && self.subject == subject
            && self.regime == regime
            && self.requester == *requester
    }

    /// Moves the request to `next` at `at`, by `by`, recording it in the history.
    ///
    /// # Errors
    /// [`TransitionError`]: a change the law does not allow, or an extension
    /// announced after the original due time.
    pub fn advance(
        &mut self,
        next: RequestStatus,
        at: DateTime<Utc>,
        by: Option<UserId>,
    ) -> Result<(), TransitionError> {
        if !self.status.may_become(&next) {
            return Err(TransitionError::NotAllowed {
                from: self.status.as_str(),
                to: next.as_str(),
            });
        }
        if next == RequestStatus::Extended && !self.deadlines.may_extend(at) {
            return Err(TransitionError::ExtensionTooLate);
        }
        self.history.push(HistoryEntry {
            at,
            status: next.clone(),
            by,
        });
        self.status = next;
        Ok(())
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
    fn kinds_round_trip_and_belong_to_their_regimes() {
        for kind in RequestKind::ALL {
            assert_eq!(RequestKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(RequestKind::parse("forget_me"), None);
        assert!(RequestKind::CcpaKnow.exists_under(Regime::Ccpa));
        assert!(!RequestKind::CcpaKnow.exists_under(Regime::Gdpr));
        assert!(RequestKind::AccountingOfDisclosures.exists_under(Regime::Hipaa));
        assert!(!RequestKind::AccountingOfDisclosures.exists_under(Regime::Ccpa));
        assert!(RequestKind::Erasure.exists_under(Regime::Hipaa));
    }

    #[test]
    fn an_identical_open_request_is_a_duplicate_until_it_closes() {
        let user = UserId::new();
        let subject = SubjectId::new();
        let me = Requester::Subject { user };
        let mut request = RightsRequest::receive(
            OrganisationId::new(),
            RequestKind::Erasure,
            subject,
            me,
            Regime::Gdpr,
            RequestDetail::None,
            at("2026-11-24T10:00:00Z"),
        );
        assert!(request.duplicates(
            RequestKind::Erasure,
            subject,
            Regime::Gdpr,
            &me,
            &RequestDetail::None
        ));
        assert!(!request.duplicates(
            RequestKind::Access,
            subject,
            Regime::Gdpr,
            &me,
            &RequestDetail::None
        ));
        assert!(!request.duplicates(
            RequestKind::Erasure,
            subject,
            Regime::Ccpa,
            &me,
            &RequestDetail::None
        ));
        assert!(!request.duplicates(
            RequestKind::Erasure,
            subject,
            Regime::Gdpr,
            &Requester::Guardian { user },
            &RequestDetail::None
        ));
        assert!(!request.duplicates(
            RequestKind::Erasure,
            subject,
            Regime::Gdpr,
            &me,
            &RequestDetail::Objection {
                purpose: Purpose::MarketingEmail
            }
        ));
        request
            .advance(RequestStatus::InProgress, at("2026-11-25T10:00:00Z"), None)
            .expect("start");
        request
            .advance(RequestStatus::Completed, at("2026-11-26T10:00:00Z"), None)
            .expect("done");
        assert!(!request.duplicates(
            RequestKind::Erasure,
            subject,
            Regime::Gdpr,
            &me,
            &RequestDetail::None
        ));
    }

    #[test]
    fn the_subject_is_verified_at_once_and_others_wait() {
        let own = RightsRequest::receive(
            OrganisationId::new(),
            RequestKind::Access,
            SubjectId::new(),
            Requester::Subject {
                user: UserId::new(),
            },
            Regime::Gdpr,
            RequestDetail::None,
            at("2026-11-24T10:00:00Z"),
        );
        assert_eq!(own.status, RequestStatus::Verified);
        assert_eq!(own.history.len(), 2);
        let agent = RightsRequest::receive(
            OrganisationId::new(),
            RequestKind::CcpaDelete,
            SubjectId::new(),
            Requester::AuthorisedAgent {
                user: UserId::new(),
            },
            Regime::Ccpa,
            RequestDetail::None,
            at("2026-11-24T10:00:00Z"),
        );
        assert_eq!(agent.status, RequestStatus::AwaitingVerification);
    }

    #[test]
    fn statuses_follow_the_law_and_extensions_must_be_announced_in_time() {
        let mut request = RightsRequest::receive(
            OrganisationId::new(),
            RequestKind::Access,
            SubjectId::new(),
            Requester::Subject {
                user: UserId::new(),
            },
            Regime::Hipaa,
            RequestDetail::None,
            at("2026-01-01T00:00:00Z"),
        );
        assert_eq!(
            request.advance(RequestStatus::Completed, at("2026-01-02T00:00:00Z"), None),
            Err(TransitionError::NotAllowed {
                from: "verified",
                to: "completed"
            })
        );
        request
            .advance(RequestStatus::InProgress, at("2026-01-02T00:00:00Z"), None)
            .expect("start");
        let mut late = request.clone();
        assert_eq!(
            late.advance(RequestStatus::Extended, at("2026-02-01T00:00:00Z"), None),
            Err(TransitionError::ExtensionTooLate)
        );
        request
            .advance(RequestStatus::Extended, at("2026-01-20T00:00:00Z"), None)
            .expect("extended in time");
        assert_eq!(request.due_at(), at("2026-03-02T00:00:00Z"));
        assert!(!request.is_nearing(at("2026-02-01T00:00:00Z")));
        assert!(request.is_nearing(at("2026-02-23T00:00:00Z")));
        request
            .advance(RequestStatus::Completed, at("2026-02-25T00:00:00Z"), None)
            .expect("done");
        assert!(!request.is_nearing(at("2026-03-05T00:00:00Z")), "closed");
        let denied = RequestStatus::Denied {
            reason: "already answered".into(),
            ground: LegalGround::new(Regime::Hipaa, "45 CFR 164.524(a)", "test"),
        };
        assert!(matches!(
            request.advance(denied, at("2026-02-26T00:00:00Z"), None),
            Err(TransitionError::NotAllowed { .. })
        ));
        let statuses: Vec<&str> = request.history.iter().map(|h| h.status.as_str()).collect();
        assert_eq!(
            statuses,
            vec![
                "received",
                "verified",
                "in_progress",
                "extended",
                "completed"
            ]
        );
    }
}
