//! [`KeyId`]: the typed identifier of a key in the hierarchy.
//!
//! Organisation and subject keys get a fresh UUIDv7. A master key is named by its
//! fingerprint ([`crate::MasterKey::fingerprint`]), which has the same 16-byte shape
//! but is derived rather than random, so it is not a version-7 UUID.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// Identifies one key: an organisation key, a subject data key, or (by fingerprint)
/// a master key. Every envelope and every wrapped key names its key by this id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(Uuid);

impl KeyId {
    /// A fresh, time-ordered (UUIDv7) id.
    #[must_use]
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps an id read back from storage.
    #[must_use]
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The raw UUID, for adapters at the storage edge.
    #[must_use]
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// The id's 16 bytes, as written into envelopes and associated data.
    #[must_use]
    pub const fn to_bytes(&self) -> [u8; 16] {
        *self.0.as_bytes()
    }

    /// The id whose bytes are `bytes` (as read from an envelope).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(Uuid::from_bytes(bytes))
    }
}

impl Default for KeyId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for KeyId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

impl From<KeyId> for Uuid {
    fn from(id: KeyId) -> Uuid {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_7_and_round_trip() {
        let id = KeyId::new();
        assert_eq!(id.as_uuid().get_version_num(), 7);
        assert_eq!(KeyId::from_bytes(id.to_bytes()), id);
        let parsed: KeyId = id.to_string().parse().expect("parses");
        assert_eq!(parsed, id);
        assert!(format!("{id:?}").starts_with("KeyId("));
    }
}
