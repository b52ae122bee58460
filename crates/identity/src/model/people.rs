//! The records of a practice's people: its members with their roles, a minor's
//! guardianship, and the deletion flag of an account found to be under 13 (O1).

use chrono::{DateTime, Utc};
use kernel::{OrganisationId, Role, UserId};

use super::User;

/// One person of a practice with every role they hold in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PracticeMember {
    /// The account (personal fields opened).
    pub user: User,
    /// Their roles in the practice, in [`Role::ALL`] order.
    pub roles: Vec<Role>,
}

/// A guardian linked to a minor client (O1). Guardian consent itself is recorded
/// by the consent context; this record only says who the guardian is, who linked
/// them and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guardianship {
    /// The minor.
    pub minor: UserId,
    /// The guardian.
    pub guardian: UserId,
    /// The practice in which they were linked.
    pub organisation: OrganisationId,
    /// Who linked them (a provider or org admin).
    pub linked_by: UserId,
    /// When.
    pub linked_at: DateTime<Utc>,
}

/// An account flagged for deletion after it was found to belong to a child under
/// 13 (O1). The data-rights context erases it; until then it stays frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletionFlag {
    /// The account.
    pub user: UserId,
    /// The practice that reported it.
    pub organisation: OrganisationId,
    /// Who reported it.
    pub reported_by: UserId,
    /// When it was flagged.
    pub flagged_at: DateTime<Utc>,
}

/// What removing a role did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleRemoval {
    /// The role was removed.
    Removed,
    /// The person did not hold it.
    NotHeld,
    /// Refused: it is the practice's last `org_admin`.
    LastOrgAdmin,
}

/// A practice's invitation to an existing account: a role in the practice and,
/// with `guardian_of`, the guardianship of a minor client. Nothing changes on the
/// account until its owner accepts; then the membership (and guardianship) is
/// created with the acceptance, atomically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invitation {
    /// The invitation's id.
    pub id: uuid::Uuid,
    /// The person invited.
    pub user: UserId,
    /// The practice inviting.
    pub organisation: OrganisationId,
    /// The role offered.
    pub role: Role,
    /// The minor whose guardian the person is asked to be, if any.
    pub guardian_of: Option<UserId>,
    /// Who invited them.
    pub invited_by: UserId,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When accepted, if so.
    pub accepted_at: Option<DateTime<Utc>>,
    /// When declined, if so.
    pub declined_at: Option<DateTime<Utc>>,
}
