//! Privacy questions and security concerns (O5, SEC3): anyone can send one, signed
//! in or not; each is a case with a status, a due time and a history, worked by the
//! platform's privacy and security office.
//!
//! Due times: a privacy question is answered within 30 days (the GDPR's one month,
//! taken as its shortest length); a security concern is assessed within 72 hours,
//! the clock GDPR Art. 33 gives for notifying a breach, so that a real one can
//! still be notified in time.

use chrono::{DateTime, Duration, Utc};
use kernel::UserId;
use serde::Serialize;

use crate::ids::CaseId;

/// Longest message, in characters.
pub const MAX_MESSAGE: usize = 4000;
/// Longest reply-to address, in characters.
pub const MAX_REPLY_TO: usize = 254;

/// What the person sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    /// A question or complaint about privacy (O5).
    PrivacyQuestion,
    /// A belief that their interaction is no longer secure (SEC3).
    SecurityConcern,
}

impl CaseKind {
    /// Every kind.
    pub const ALL: [Self; 2] = [Self::PrivacyQuestion, Self::SecurityConcern];

    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PrivacyQuestion => "privacy_question",
            Self::SecurityConcern => "security_concern",
        }
    }

    /// Parses [`CaseKind::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// How long the office has to answer.
    #[must_use]
    pub fn answer_within(self) -> Duration {
        match self {
            Self::PrivacyQuestion => Duration::days(30),
            Self::SecurityConcern => Duration::hours(72),
        }
    }
}

/// Where a case is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Received, not yet picked up.
    Open,
    /// Being worked.
    InProgress,
    /// Answered or dealt with; final.
    Resolved,
}

impl CaseStatus {
    /// Every status.
    pub const ALL: [Self; 3] = [Self::Open, Self::InProgress, Self::Resolved];

    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::InProgress => "in_progress",
            Self::Resolved => "resolved",
        }
    }

    /// Parses [`CaseStatus::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One step of a case's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// The status it went to.
    pub status: CaseStatus,
    /// Who moved it (`None`: the reporter, or anonymous).
    pub by: Option<UserId>,
    /// The office's note to the reporter, if any.
    pub note: Option<String>,
}

/// Why a case cannot be received or moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    /// The message is empty or too long.
    #[error("message: must be 1 to 4000 characters")]
    BadMessage,
    /// An anonymous case names no address to answer, or a bad one.
    #[error("reply_to: an email address to answer is needed when not signed in")]
    BadReplyTo,
    /// The note is too long.
    #[error("note: must be at most 4000 characters")]
    BadNote,
    /// A resolved case is final.
    #[error("a resolved case cannot change")]
    Final,
}

/// A privacy question or security concern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Case {
    /// Its id.
    pub id: CaseId,
    /// What it is.
    pub kind: CaseKind,
    /// Who sent it, when signed in.
    pub reporter: Option<UserId>,
    /// Where to answer when not signed in (sealed at rest).
    pub reply_to: Option<String>,
    /// What they wrote (sealed at rest; never logged).
    pub message: String,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// When it must be answered by.
    pub due_at: DateTime<Utc>,
    /// Where it is.
    pub status: CaseStatus,
    /// Every step, oldest first.
    pub history: Vec<CaseEntry>,
    /// Bumped by every stored change.
    pub version: u32,
}

fn valid_text(text: &str, max: usize) -> bool {
    let length = text.chars().count();
    length > 0 && length <= max
}

impl Case {
    /// A case received at `at`.
    ///
    /// # Errors
    /// [`CaseError::BadMessage`], [`CaseError::BadReplyTo`].
    pub fn receive(
        kind: CaseKind,
        reporter: Option<UserId>,
        reply_to: Option<String>,
        message: String,
        at: DateTime<Utc>,
    ) -> Result<Self, CaseError> {
        let message = message.trim().to_owned();
        if !valid_text(&message, MAX_MESSAGE) {
            return Err(CaseError::BadMessage);
        }
        let reply_to = reply_to.map(|r| r.trim().to_owned());
        match (&reporter, &reply_to) {
            (_, Some(address))
                if !valid_text(address, MAX_REPLY_TO)
                    || address.chars().any(char::is_whitespace)
                    || !address.contains('@') =>
            {
                return Err(CaseError::BadReplyTo);
            }
            (None, None) => return Err(CaseError::BadReplyTo),
            _ => {}
        }
        Ok(Self {
            id: CaseId::new(),
            kind,
            reporter,
            reply_to,
            message,
            received_at: at,
            due_at: at + kind.answer_within(),
            status: CaseStatus::Open,
            history: vec![CaseEntry {
                at,
                status: CaseStatus::Open,
                by: reporter,
                note: None,
            }],
            version: 0,
        })
    }

    /// Moves the case to `status` with an optional note to the reporter.
    ///
    /// # Errors
    /// [`CaseError::Final`], [`CaseError::BadNote`].
    pub fn advance(
        &mut self,
        status: CaseStatus,
        note: Option<String>,
        by: UserId,
        at: DateTime<Utc>,
    ) -> Result<(), CaseError> {
        if self.status == CaseStatus::Resolved {
            return Err(CaseError::Final);
        }
        let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
        if note
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_MESSAGE)
        {
            return Err(CaseError::BadNote);
        }
        self.status = status;
        self.history.push(CaseEntry {
            at,
            status,
            by: Some(by),
            note,
        });
        Ok(())
    }

    /// Whether it is past its due time and still not resolved.
    #[must_use]
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.status != CaseStatus::Resolved && now > self.due_at
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
    fn a_case_is_due_by_its_kind_and_ends_when_resolved() {
        let now = at("2026-12-30T12:00:00Z");
        let mut question = Case::receive(
            CaseKind::PrivacyQuestion,
            Some(UserId::new()),
            None,
            "  Who sees my notes?  ".to_owned(),
            now,
        )
        .expect("valid");
        assert_eq!(question.message, "Who sees my notes?");
        assert_eq!(question.due_at, at("2027-01-29T12:00:00Z"));
        let concern = Case::receive(
            CaseKind::SecurityConcern,
            None,
            Some("me@example.org".to_owned()),
            "Someone signed in as me".to_owned(),
            now,
        )
        .expect("valid");
        assert_eq!(concern.due_at, at("2027-01-02T12:00:00Z"));
        assert!(concern.is_overdue(at("2027-01-02T12:00:01Z")));
        let officer = UserId::new();
        question
            .advance(CaseStatus::InProgress, None, officer, now)
            .expect("moves");
        question
            .advance(
                CaseStatus::Resolved,
                Some("Answered by email".into()),
                officer,
                now,
            )
            .expect("moves");
        assert_eq!(question.history.len(), 3);
        assert!(!question.is_overdue(at("2030-01-01T00:00:00Z")));
        assert_eq!(
            question.advance(CaseStatus::Open, None, officer, now),
            Err(CaseError::Final)
        );
    }

    #[test]
    fn bad_cases_are_refused() {
        let now = at("2026-12-30T12:00:00Z");
        let kind = CaseKind::SecurityConcern;
        assert_eq!(
            Case::receive(kind, Some(UserId::new()), None, "   ".into(), now),
            Err(CaseError::BadMessage)
        );
        assert_eq!(
            Case::receive(kind, None, None, "help".into(), now),
            Err(CaseError::BadReplyTo)
        );
        assert_eq!(
            Case::receive(
                kind,
                None,
                Some("not an address".into()),
                "help".into(),
                now
            ),
            Err(CaseError::BadReplyTo)
        );
        assert_eq!(
            Case::receive(kind, None, Some("a@b".into()), "x".repeat(4001), now),
            Err(CaseError::BadMessage)
        );
        assert_eq!(CaseKind::parse("complaint"), None);
    }
}
