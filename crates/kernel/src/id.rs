//! Typed identifiers: one type per entity, all UUIDv7, none with persistence derives.
//!
//! A `UserId` cannot be passed where an `OrganisationId` is expected. The adapters in
//! `store` convert to and from the raw [`Uuid`] at the database edge; the server does
//! the same at the HTTP edge. Version 7 keeps ids roughly time-ordered, which keeps
//! B-tree inserts local and makes ids usable as pagination cursors.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Declares a typed id. Each gets `new` (a fresh UUIDv7), `from_uuid`, `as_uuid`,
/// `Display`/`FromStr` as the hyphenated UUID, and transparent serde.
macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered (UUIDv7) id.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an id read back from storage or parsed at an edge.
            #[must_use]
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The raw UUID, for adapters at the storage and HTTP edges.
            #[must_use]
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

typed_id! {
    /// A practice: the covered entity whose members and clients Custodia serves.
    OrganisationId
}

typed_id! {
    /// A person who can sign in (provider, staff, client, auditor, operator...).
    UserId
}

typed_id! {
    /// A natural person whose personal data Custodia holds: the data subject of
    /// HIPAA, GDPR and CCPA. Keys, consent, audit and rights requests hang off it.
    SubjectId
}

typed_id! {
    /// One HTTP request (or one background job step); echoed as `X-Request-Id`.
    RequestId
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_7_and_round_trip_through_text() {
        let id = SubjectId::new();
        assert_eq!(id.as_uuid().get_version_num(), 7);
        let parsed: SubjectId = id.to_string().parse().expect("parses");
        assert_eq!(parsed, id);
        assert!(format!("{id:?}").starts_with("SubjectId("));
    }

    #[test]
    fn ids_are_time_ordered() {
        let first = UserId::new();
        let second = UserId::new();
        assert!(first < second);
    }

    #[test]
    fn serde_is_transparent() {
        let id = OrganisationId::new();
        let json = serde_json::to_string(&id).expect("serialises");
        assert_eq!(json, format!("\"{id}\""));
    }
}
