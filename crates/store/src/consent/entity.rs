//! sea-orm entities for the consent tables. Private to the adapter: rows are turned
//! into `consent`'s types before they leave this crate.

pub(super) mod consent_subject {
    //! `consent_subjects`: one subject's link to their chain, and the projection.
    use sea_orm::entity::prelude::*;

    /// One subject.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "consent_subjects")]
    pub struct Model {
        /// Who.
        #[sea_orm(primary_key, auto_increment = false)]
        pub subject_id: Uuid,
        /// Their pseudonymous chain (unique).
        pub chain_id: Uuid,
        /// Their practice, if known.
        pub organisation_id: Option<Uuid>,
        /// Whether only a guardian decides for them.
        pub minor: bool,
        /// The head's sequence (NULL before the first event).
        pub head_sequence: Option<i64>,
        /// The head's hash (NULL before the first event).
        pub head_hash: Option<Vec<u8>>,
        /// `SubjectState` as JSON.
        pub state: String,
        /// When the row last changed.
        pub updated_at: DateTimeWithTimeZone,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod consent_event {
    //! `consent_events`: the chained events, append-only until the retention sweep
    //! deletes the chains of subjects erased long enough ago.
    use sea_orm::entity::prelude::*;

    /// One event.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "consent_events")]
    pub struct Model {
        /// Its chain.
        #[sea_orm(primary_key, auto_increment = false)]
        pub chain_id: Uuid,
        /// Its position in the chain, from 1.
        #[sea_orm(primary_key, auto_increment = false)]
        pub sequence: i64,
        /// `LedgerAction::as_str`.
        pub action: String,
        /// `Purpose::as_str`.
        pub purpose: Option<String>,
        /// The named recipient.
        pub recipient: Option<String>,
        /// `DataCategory::as_str`.
        pub category: Option<String>,
        /// `Authority::kind`.
        pub authority_kind: String,
        /// `Authority::user`.
        pub authority_user: Option<Uuid>,
        /// `Channel::as_str`.
        pub channel: String,
        /// SHA-256 of the salted evidence.
        pub evidence_digest: Vec<u8>,
        /// `document@version`.
        pub policy_version: String,
        /// µs since the epoch.
        pub recorded_at: i64,
        /// µs since the epoch.
        pub effective_at: i64,
        /// µs since the epoch.
        pub expires_at: Option<i64>,
        /// The predecessor's hash.
        pub prev_hash: Vec<u8>,
        /// This event's hash.
        pub hash: Vec<u8>,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod consent_evidence {
    //! `consent_evidence`: an event's salted evidence, sealed.
    use sea_orm::entity::prelude::*;

    /// One event's evidence.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "consent_evidence")]
    pub struct Model {
        /// The event's chain.
        #[sea_orm(primary_key, auto_increment = false)]
        pub chain_id: Uuid,
        /// The event's sequence.
        #[sea_orm(primary_key, auto_increment = false)]
        pub sequence: i64,
        /// Whose (erasure deletes by subject).
        pub subject_id: Uuid,
        /// `SaltedEvidence` as JSON, sealed with the subject's data key.
        pub sealed: Vec<u8>,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod consent_authorisation {
    //! `consent_authorisations`: HIPAA authorisations, sealed.
    use sea_orm::entity::prelude::*;

    /// One authorisation.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "consent_authorisations")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// Whose.
        pub subject_id: Uuid,
        /// When it was recorded, µs since the epoch.
        pub recorded_at: i64,
        /// `StoredAuthorisation` as JSON, sealed with the subject's data key.
        pub sealed: Vec<u8>,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod consent_setting {
    //! `consent_settings`: a practice's consent settings.
    use sea_orm::entity::prelude::*;

    /// One practice's settings.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "consent_settings")]
    pub struct Model {
        /// The practice.
        #[sea_orm(primary_key, auto_increment = false)]
        pub organisation_id: Uuid,
        /// `opt_in` or `opt_out`.
        pub marketing: String,
        /// A JSON array of purpose names.
        pub opt_in_required: String,
        /// `hipaa`, `gdpr` or `ccpa`.
        pub regime: String,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod consent_policy {
    //! `consent_policies`: published policy versions.
    use sea_orm::entity::prelude::*;

    /// One version of one document.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "consent_policies")]
    pub struct Model {
        /// The document.
        #[sea_orm(primary_key, auto_increment = false)]
        pub document: String,
        /// The version.
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: String,
        /// From when it is in force, µs.
        pub effective_at: i64,
        /// SHA-256 of the text, hex.
        pub content_sha256: String,
        /// Whether the change is material.
        pub material: bool,
        /// What changed.
        pub summary: String,
        /// When it was published, µs.
        pub published_at: i64,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod consent_erasure {
    //! `consent_erasures`: when a chain was unlinked from its erased subject.
    use sea_orm::entity::prelude::*;

    /// One erased chain.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "consent_erasures")]
    pub struct Model {
        /// The chain.
        #[sea_orm(primary_key, auto_increment = false)]
        pub chain_id: Uuid,
        /// When its subject was erased, µs.
        pub erased_at: i64,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
