//! sea-orm entities for the `rights_*` tables. Private to the adapter: rows are
//! turned into `data-rights`' types before they leave this crate.

pub(super) mod rights_request {
    //! `rights_requests`: one row per rights request.
    use sea_orm::entity::prelude::*;

    /// One request.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rights_requests")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The practice that works it (the subject's home practice).
        pub organisation_id: Uuid,
        /// Whose data.
        pub subject_id: Uuid,
        /// `subject`, `guardian`, `authorised_agent` or `provider`.
        pub requester_kind: String,
        /// Who filed it.
        pub requester_user_id: Uuid,
        /// `RequestKind::as_str`.
        pub kind: String,
        /// `Regime::as_str`.
        pub regime: String,
        /// The detail as JSON, without a rectification's value.
        pub detail: String,
        /// A rectification's value, sealed under the subject's data key.
        pub detail_value_enc: Option<Vec<u8>>,
        /// When it was received.
        pub received_at: DateTimeWithTimeZone,
        /// The due time in force.
        pub due_at: DateTimeWithTimeZone,
        /// `RequestStatus::as_str`.
        pub status: String,
        /// A denial's reason and ground, as JSON.
        pub denial: Option<String>,
        /// The history, as JSON.
        pub history: String,
        /// The result, as JSON.
        pub result: Option<String>,
        /// From 0, bumped by every change.
        pub version: i64,
        /// Whether the status is not final.
        pub is_open: bool,
        /// The identity digest while open; NULL once final (unique).
        pub open_key: Option<String>,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod rights_archive {
    //! `rights_archives`: one sealed export archive per request.
    use sea_orm::entity::prelude::*;

    /// One archive.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rights_archives")]
    pub struct Model {
        /// The request it answers.
        #[sea_orm(primary_key, auto_increment = false)]
        pub request_id: Uuid,
        /// The practice keeping the subject's data key.
        pub organisation_id: Uuid,
        /// Whose data.
        pub subject_id: Uuid,
        /// The archive, sealed under the subject's data key.
        pub archive_enc: Vec<u8>,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod rights_erasure_step {
    //! `rights_erasure_steps`: one journaled erasure step per request and context.
    use sea_orm::entity::prelude::*;

    /// One step.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rights_erasure_steps")]
    pub struct Model {
        /// The erasure request.
        #[sea_orm(primary_key, auto_increment = false)]
        pub request_id: Uuid,
        /// The context.
        #[sea_orm(primary_key, auto_increment = false)]
        pub context: String,
        /// 1, then one more per step of the request, in the order written.
        pub position: i64,
        /// The outcomes, as JSON.
        pub outcomes: String,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod rights_authority {
    //! `rights_authorities`: authorised agents' proofs of authority.
    use sea_orm::entity::prelude::*;

    /// One proof.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rights_authorities")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The agent.
        pub agent_user_id: Uuid,
        /// The person they act for.
        pub subject_id: Uuid,
        /// Where the signed document is kept (a reference).
        pub document_ref: String,
        /// The scope, as JSON.
        pub scope: String,
        /// When it stops being valid.
        pub expires_at: DateTimeWithTimeZone,
        /// When the subject confirmed the agent.
        pub confirmed_at: Option<DateTimeWithTimeZone>,
        /// When it was recorded.
        pub recorded_at: DateTimeWithTimeZone,
        /// From 0, bumped by every change.
        pub version: i64,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod rights_case {
    //! `rights_cases`: privacy questions and security concerns.
    use sea_orm::entity::prelude::*;

    /// One case.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rights_cases")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// `CaseKind::as_str`.
        pub kind: String,
        /// Who sent it, when signed in.
        pub reporter_user_id: Option<Uuid>,
        /// Where to answer, sealed under the case's key.
        pub reply_to_enc: Option<Vec<u8>>,
        /// The message, sealed under the case's key.
        pub message_enc: Vec<u8>,
        /// The history as JSON, sealed under the case's key.
        pub history_enc: Vec<u8>,
        /// When it arrived.
        pub received_at: DateTimeWithTimeZone,
        /// When it must be answered by.
        pub due_at: DateTimeWithTimeZone,
        /// `CaseStatus::as_str`.
        pub status: String,
        /// Whether it is not resolved.
        pub is_open: bool,
        /// From 0, bumped by every change.
        pub version: i64,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
