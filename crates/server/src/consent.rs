//! The consent context's adapters that live in the composition root: policy
//! notices sent through identity's outbox, and the built-in privacy notice that
//! every consent cites until a deployment publishes its own.

use async_trait::async_trait;
use consent::policy::{PRIVACY_NOTICE, PolicyVersion};
use consent::ports::{PolicyNotifier, RepositoryError};
use identity::IdentityService;
use kernel::{Clock, SubjectId};
use std::sync::Arc;

/// The text of the built-in privacy notice.
pub const BUILTIN_NOTICE: &str = include_str!("privacy-notice.md");

/// Tells people of a material policy change through identity's outbox (U3: a
/// transactional notice, always sent).
pub struct IdentityNotices {
    identity: IdentityService,
    clock: Arc<dyn Clock>,
}

impl IdentityNotices {
    /// The adapter over `identity`.
    #[must_use]
    pub fn new(identity: IdentityService, clock: Arc<dyn Clock>) -> Self {
        Self { identity, clock }
    }
}

impl std::fmt::Debug for IdentityNotices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityNotices").finish_non_exhaustive()
    }
}

#[async_trait]
impl PolicyNotifier for IdentityNotices {
    async fn policy_changed(
        &self,
        subject: SubjectId,
        version: &PolicyVersion,
    ) -> Result<bool, RepositoryError> {
        self.identity
            .notify_policy_change(subject, &version.citation(), self.clock.now())
            .await
            .map_err(|e| RepositoryError::Unavailable(Box::new(e)))
    }
}

/// The built-in notice as a policy version: its version is `builtin-` and the
/// first 12 hex digits of its hash, so a changed text is a new version.
///
/// # Panics
/// Never: the text and names are fixed and valid (a test checks).
#[must_use]
pub fn builtin_notice(now_micros: i64) -> PolicyVersion {
    let mut notice = PolicyVersion::new(
        PRIVACY_NOTICE,
        "builtin",
        now_micros,
        BUILTIN_NOTICE,
        false,
        "The notice Custodia ships with.",
        now_micros,
    )
    .unwrap_or_else(|e| unreachable!("the built-in notice is valid: {e}"));
    notice.version = format!("builtin-{}", &notice.content_sha256[..12]);
    notice
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_builtin_notice_is_a_valid_version_named_by_its_hash() {
        let v = super::builtin_notice(5);
        assert!(v.version.starts_with("builtin-"));
        assert_eq!(v.version.len(), "builtin-".len() + 12);
        assert!(v.content_sha256.starts_with(&v.version["builtin-".len()..]));
    }
}
