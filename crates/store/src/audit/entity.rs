//! sea-orm entities for the audit tables. Private to the adapter: rows are turned
//! into `audit`'s types before they leave this crate.

pub(super) mod audit_chain {
    //! `audit_chains`: one row per writer's chain.
    use sea_orm::entity::prelude::*;

    /// One chain.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_chains")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub chain_id: Uuid,
        /// What the writer calls itself (host and process), for operators.
        pub label: String,
        /// When it was opened.
        pub created_at: DateTimeWithTimeZone,
        /// Its number of events.
        pub size: i64,
        /// The last event's hash (zero when empty).
        pub head_hash: Vec<u8>,
        /// The Merkle frontier's nodes, concatenated.
        pub frontier: Vec<u8>,
        /// Events `1..=pruned_through` were blanked.
        pub pruned_through: i64,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod audit_event {
    //! `audit_events`: one row per event.
    use sea_orm::entity::prelude::*;

    /// One event.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_events")]
    pub struct Model {
        /// Its chain.
        #[sea_orm(primary_key, auto_increment = false)]
        pub chain_id: Uuid,
        /// Its position in the chain, from 1.
        #[sea_orm(primary_key, auto_increment = false)]
        pub sequence: i64,
        /// When it happened.
        pub at: DateTimeWithTimeZone,
        /// `ActorKind::as_str` (empty once pruned).
        pub actor_kind: String,
        /// The person acting, until erased.
        pub actor_id: Option<Uuid>,
        /// Their client address, until erased.
        pub actor_client_address: Option<String>,
        /// Their pseudonym, once erased.
        pub actor_pseudonym: Option<Vec<u8>>,
        /// Role bits.
        pub actor_roles: i16,
        /// A system actor's component.
        pub actor_component: Option<String>,
        /// The actor commitment.
        pub actor_commitment: Option<Vec<u8>>,
        /// The practice.
        pub organisation_id: Option<Uuid>,
        /// The action's name.
        pub action: String,
        /// The record's kind.
        pub resource_kind: String,
        /// The record's id.
        pub resource_id: Uuid,
        /// The subject, until erased.
        pub subject_id: Option<Uuid>,
        /// The subject's pseudonym, once erased.
        pub subject_pseudonym: Option<Vec<u8>>,
        /// The subject commitment (null iff there is no subject).
        pub subject_commitment: Option<Vec<u8>>,
        /// The purpose's name.
        pub purpose: String,
        /// Why it was denied.
        pub denied_reason: Option<String>,
        /// The request.
        pub request_id: Uuid,
        /// A disclosure's digest.
        pub disclosure_digest: Option<Vec<u8>>,
        /// An erasure's pseudonym.
        pub erased_pseudonym: Option<Vec<u8>>,
        /// The predecessor's hash.
        pub prev_hash: Vec<u8>,
        /// This event's hash.
        pub hash: Vec<u8>,
        /// Blanked by retention.
        pub pruned: bool,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod audit_checkpoint {
    //! `audit_checkpoints`: signed statements of every chain's head.
    use sea_orm::entity::prelude::*;

    /// One checkpoint.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_checkpoints")]
    pub struct Model {
        /// Its id (UUIDv7).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// When it was signed.
        pub at: DateTimeWithTimeZone,
        /// The signing writer's chain.
        pub writer: Uuid,
        /// The signing key's id (8 bytes).
        pub key_id: Vec<u8>,
        /// The heads, 96 bytes each.
        pub heads: Vec<u8>,
        /// The Ed25519 signature.
        pub signature: Vec<u8>,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod audit_disclosure {
    //! `audit_disclosures`: a disclosure's details, sealed, beside its event.
    use sea_orm::entity::prelude::*;

    /// One disclosure.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_disclosures")]
    pub struct Model {
        /// The event's chain.
        #[sea_orm(primary_key, auto_increment = false)]
        pub chain_id: Uuid,
        /// The event's sequence number.
        #[sea_orm(primary_key, auto_increment = false)]
        pub sequence: i64,
        /// The practice that disclosed.
        pub organisation_id: Uuid,
        /// Whose data it was.
        pub subject_id: Uuid,
        /// When it was disclosed.
        pub disclosed_at: DateTimeWithTimeZone,
        /// Recipient, description and legal basis as JSON, sealed.
        pub detail_enc: Vec<u8>,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
