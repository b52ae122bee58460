//! Policy documents: versioned, each with an effective date and a content hash (O3).
//!
//! A version is published once and never changed; its SHA-256 lets anyone holding
//! the text check it is the text that was in force. Every ledger event cites the
//! version of the privacy notice in force when it was recorded
//! ([`PolicyVersion::citation`]). Publishing a **material** version notifies every
//! person with a consent record, through the [`crate::ports::PolicyNotifier`].

use ring::digest;
use serde::{Deserialize, Serialize};

use crate::ledger::hex;

/// The document every consent is given under.
pub const PRIVACY_NOTICE: &str = "privacy-notice";

/// The longest policy text accepted, in bytes.
pub const MAX_CONTENT_BYTES: usize = 512 * 1024;

/// One published version of one policy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// The document, e.g. `privacy-notice`.
    pub document: String,
    /// The version, e.g. `2026-11-01`.
    pub version: String,
    /// From when it is in force, µs since the epoch.
    pub effective_at: i64,
    /// SHA-256 of the text, hex.
    pub content_sha256: String,
    /// Whether the change is material: the people it affects are told.
    pub material: bool,
    /// What changed, in plain words.
    pub summary: String,
    /// When it was published, µs since the epoch.
    pub published_at: i64,
}

/// Why a version was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A document or version name outside `[a-z0-9._-]{1,64}`.
    #[error("the {0} must be 1 to 64 characters of a-z, 0-9, '.', '_' or '-'")]
    BadName(&'static str),
    /// An empty text, or one over [`MAX_CONTENT_BYTES`].
    #[error("the policy text must be between 1 byte and 512 KiB")]
    BadContent,
    /// A summary over 2,000 characters.
    #[error("the summary must be at most 2000 characters")]
    SummaryTooLong,
    /// Taking effect before the version now in force did.
    #[error("a new version cannot take effect before the version it replaces")]
    EffectiveBeforePrevious,
}

fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

impl PolicyVersion {
    /// A version of `document` with `content`, checked and hashed.
    ///
    /// # Errors
    /// [`PolicyError`] for a bad name, text or summary.
    pub fn new(
        document: &str,
        version: &str,
        effective_at: i64,
        content: &str,
        material: bool,
        summary: &str,
        published_at: i64,
    ) -> Result<Self, PolicyError> {
        if !valid_name(document) {
            return Err(PolicyError::BadName("document"));
        }
        if !valid_name(version) {
            return Err(PolicyError::BadName("version"));
        }
        if content.is_empty() || content.len() > MAX_CONTENT_BYTES {
            return Err(PolicyError::BadContent);
        }
        if summary.chars().count() > 2000 {
            return Err(PolicyError::SummaryTooLong);
        }
        Ok(Self {
            document: document.to_owned(),
            version: version.to_owned(),
            effective_at,
            content_sha256: hex(digest::digest(&digest::SHA256, content.as_bytes()).as_ref()),
            material,
            summary: summary.to_owned(),
            published_at,
        })
    }

    /// How ledger events cite it: `document@version`.
    #[must_use]
    pub fn citation(&self) -> String {
        format!("{}@{}", self.document, self.version)
    }
}

/// The version of `document` in force at `at`: the latest effective by then.
#[must_use]
pub fn in_force<'a>(
    versions: &'a [PolicyVersion],
    document: &str,
    at: i64,
) -> Option<&'a PolicyVersion> {
    versions
        .iter()
        .filter(|v| v.document == document && v.effective_at <= at)
        .max_by_key(|v| (v.effective_at, v.published_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_is_hashed_and_checked() {
        let v = PolicyVersion::new(PRIVACY_NOTICE, "2026-11-01", 10, "text", true, "", 5)
            .expect("valid");
        assert_eq!(
            v.content_sha256,
            "982d9e3eb996f559e633f4d194def3761d909f5a3b647d1a851fead67c32c9d1"
        );
        assert_eq!(v.citation(), "privacy-notice@2026-11-01");
        assert_eq!(
            PolicyVersion::new("Privacy", "1", 0, "t", false, "", 0),
            Err(PolicyError::BadName("document"))
        );
        assert_eq!(
            PolicyVersion::new(PRIVACY_NOTICE, "", 0, "t", false, "", 0),
            Err(PolicyError::BadName("version"))
        );
        assert_eq!(
            PolicyVersion::new(PRIVACY_NOTICE, "1", 0, "", false, "", 0),
            Err(PolicyError::BadContent)
        );
    }

    #[test]
    fn the_version_in_force_is_the_latest_effective() {
        let v1 = PolicyVersion::new(PRIVACY_NOTICE, "1", 10, "a", false, "", 0).expect("valid");
        let v2 = PolicyVersion::new(PRIVACY_NOTICE, "2", 20, "b", true, "", 15).expect("valid");
        let terms = PolicyVersion::new("terms", "9", 0, "c", false, "", 0).expect("valid");
        let all = [v1.clone(), v2.clone(), terms];
        assert_eq!(in_force(&all, PRIVACY_NOTICE, 5), None);
        assert_eq!(in_force(&all, PRIVACY_NOTICE, 10), Some(&v1));
        assert_eq!(in_force(&all, PRIVACY_NOTICE, 19), Some(&v1));
        assert_eq!(in_force(&all, PRIVACY_NOTICE, 20), Some(&v2));
    }
}
