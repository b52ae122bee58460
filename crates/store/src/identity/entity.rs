//! sea-orm entities for the identity tables. Private to the adapters: rows are
//! turned into `identity`'s domain types before they leave this crate.

pub(super) mod organisation {
    //! `organisations`: one row per practice.
    use sea_orm::entity::prelude::*;

    /// One practice.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "organisations")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// Its name (not personal data).
        pub name: String,
        /// `DataRegion::as_str`.
        pub region: String,
        /// `MarketingMode::as_str`.
        pub marketing_mode: String,
        /// Whether MFA is required.
        pub require_mfa: bool,
        /// When created.
        pub created_at: DateTimeWithTimeZone,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod user {
    //! `users`: one row per person who can sign in; personal fields sealed.
    use sea_orm::entity::prelude::*;

    /// One account.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The person as a data subject.
        pub subject_id: Uuid,
        /// The practice whose key hierarchy holds their data key.
        pub home_organisation_id: Uuid,
        /// HMAC blind index of the normalised email (unique).
        pub email_index: Vec<u8>,
        /// Sealed name.
        pub name_enc: Vec<u8>,
        /// Sealed email.
        pub email_enc: Vec<u8>,
        /// Sealed phone.
        pub phone_enc: Option<Vec<u8>>,
        /// Profession, in clear.
        pub profession: Option<String>,
        /// `AccountStatus::as_str`.
        pub status: String,
        /// When the email was verified.
        pub email_verified_at: Option<DateTimeWithTimeZone>,
        /// When created.
        pub created_at: DateTimeWithTimeZone,
        /// PHC password hash.
        pub password_hash: Option<String>,
        /// Consecutive failed sign-ins.
        pub failed_attempts: i32,
        /// Locked until then.
        pub locked_until: Option<DateTimeWithTimeZone>,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod membership {
    //! `memberships`: a person's role in a practice.
    use sea_orm::entity::prelude::*;

    /// One role of one person in one practice.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "memberships")]
    pub struct Model {
        /// The person.
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        /// The practice.
        #[sea_orm(primary_key, auto_increment = false)]
        pub organisation_id: Uuid,
        /// `Role::as_str`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub role: String,
        /// Since when.
        pub created_at: DateTimeWithTimeZone,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod session {
    //! `sessions`: signed-in sessions, found by the hash of their token.
    use sea_orm::entity::prelude::*;

    /// One session.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sessions")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// Whose.
        pub user_id: Uuid,
        /// The practice it acts in.
        pub organisation_id: Uuid,
        /// SHA-256 of the bearer token (unique).
        pub token_hash: Vec<u8>,
        /// When started.
        pub created_at: DateTimeWithTimeZone,
        /// When last used.
        pub last_seen_at: DateTimeWithTimeZone,
        /// Absolute end.
        pub expires_at: DateTimeWithTimeZone,
        /// When revoked.
        pub revoked_at: Option<DateTimeWithTimeZone>,
        /// Client address, as text.
        pub client_address: Option<String>,
        /// User agent.
        pub user_agent: Option<String>,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod one_time_token {
    //! `one_time_tokens`: single-use tokens, keyed by their hash.
    use sea_orm::entity::prelude::*;

    /// One token.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "one_time_tokens")]
    pub struct Model {
        /// SHA-256 of the token.
        #[sea_orm(primary_key, auto_increment = false)]
        pub hash: Vec<u8>,
        /// `TokenPurpose::as_str`.
        pub purpose: String,
        /// Whose.
        pub user_id: Uuid,
        /// When it stops working.
        pub expires_at: DateTimeWithTimeZone,
        /// When it was redeemed.
        pub used_at: Option<DateTimeWithTimeZone>,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod security_event {
    //! `security_events`: the security-event log.
    use sea_orm::entity::prelude::*;

    /// One event.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "security_events")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// Whose account, when known.
        pub user_id: Option<Uuid>,
        /// `SecurityEventKind::as_str`.
        pub kind: String,
        /// When.
        pub at: DateTimeWithTimeZone,
        /// Client address, as text.
        pub client_address: Option<String>,
        /// User agent.
        pub user_agent: Option<String>,
        /// Country code.
        pub country: Option<String>,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod outbox {
    //! `outbox`: transactional notices waiting to be sent.
    use sea_orm::entity::prelude::*;

    /// One queued notice.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// To whom.
        pub user_id: Uuid,
        /// `NoticeKind::as_str`.
        pub kind: String,
        /// The notice's secret parts as JSON, sealed with the person's data key.
        pub payload_enc: Option<Vec<u8>>,
        /// When queued.
        pub created_at: DateTimeWithTimeZone,
        /// When sent.
        pub sent_at: Option<DateTimeWithTimeZone>,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod user_profile {
    //! `user_profiles`: one sealed profile document per person.
    use sea_orm::entity::prelude::*;

    /// One profile.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "user_profiles")]
    pub struct Model {
        /// Whose.
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        /// The profile as JSON, sealed with the person's data key.
        pub profile_enc: Vec<u8>,
        /// When last written.
        pub updated_at: DateTimeWithTimeZone,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod user_preference {
    //! `user_preferences`: one preferences document per person.
    use sea_orm::entity::prelude::*;

    /// One person's preferences.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "user_preferences")]
    pub struct Model {
        /// Whose.
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        /// The preferences as JSON.
        pub preferences: String,
        /// When last written.
        pub updated_at: DateTimeWithTimeZone,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod account_deletion_request {
    //! `account_deletion_requests`: self-service deletion requests.
    use sea_orm::entity::prelude::*;

    /// One request.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "account_deletion_requests")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// Whose account.
        pub user_id: Uuid,
        /// When received.
        pub requested_at: DateTimeWithTimeZone,
        /// `received` until the rights engine answers it.
        pub status: String,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
