//! sea-orm entities for the clinical tables. Private to the adapter: rows are
//! turned into `clinical`'s types before they leave this crate.

pub(super) mod clinical_record {
    //! `clinical_records`: the current version of each record.
    use sea_orm::entity::prelude::*;

    /// One record.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "clinical_records")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The practice.
        pub organisation_id: Uuid,
        /// The client's account.
        pub client_id: Uuid,
        /// The client as a data subject.
        pub subject_id: Uuid,
        /// `RecordKind::as_str`.
        pub kind: String,
        /// The current version, from 1.
        pub version: i32,
        /// `RecordBody` as JSON, sealed with the subject's data key.
        pub body_enc: Vec<u8>,
        /// When the record was first written.
        pub created_at: DateTimeWithTimeZone,
        /// Who first wrote it.
        pub created_by: Uuid,
        /// When the current version was written.
        pub updated_at: DateTimeWithTimeZone,
        /// Who wrote it.
        pub updated_by: Uuid,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod clinical_record_version {
    //! `clinical_record_versions`: every version of every record.
    use sea_orm::entity::prelude::*;

    /// One version.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "clinical_record_versions")]
    pub struct Model {
        /// The record.
        #[sea_orm(primary_key, auto_increment = false)]
        pub record_id: Uuid,
        /// The version.
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i32,
        /// Whose (export and erasure go by subject).
        pub subject_id: Uuid,
        /// `RecordBody` as JSON, sealed with the subject's data key.
        pub body_enc: Vec<u8>,
        /// When it was written.
        pub written_at: DateTimeWithTimeZone,
        /// Who wrote it.
        pub written_by: Uuid,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod clinical_appointment {
    //! `clinical_appointments`: appointments, their details sealed.
    use sea_orm::entity::prelude::*;

    /// One appointment.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "clinical_appointments")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The practice.
        pub organisation_id: Uuid,
        /// The client's account.
        pub client_id: Uuid,
        /// The client as a data subject.
        pub subject_id: Uuid,
        /// The provider.
        pub provider_id: Uuid,
        /// Start.
        pub starts_at: DateTimeWithTimeZone,
        /// End.
        pub ends_at: DateTimeWithTimeZone,
        /// `AppointmentStatus::as_str`.
        pub status: String,
        /// `AppointmentDetails` as JSON, sealed with the subject's data key.
        pub details_enc: Vec<u8>,
        /// The version, from 1.
        pub version: i32,
        /// When it was booked.
        pub created_at: DateTimeWithTimeZone,
        /// Who booked it.
        pub created_by: Uuid,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod clinical_provider_schedule {
    //! `clinical_provider_schedules`: the row a provider's bookings take turns on.
    use sea_orm::entity::prelude::*;

    /// One provider.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "clinical_provider_schedules")]
    pub struct Model {
        /// The provider.
        #[sea_orm(primary_key, auto_increment = false)]
        pub provider_id: Uuid,
        /// Bumped first by every booking, appointment change and new care-team
        /// membership of theirs.
        pub version: i64,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod clinical_care_team {
    //! `clinical_care_team`: providers' memberships of clients' care teams.
    use sea_orm::entity::prelude::*;

    /// One membership.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "clinical_care_team")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The practice.
        pub organisation_id: Uuid,
        /// The client's account.
        pub client_id: Uuid,
        /// The provider.
        pub provider_id: Uuid,
        /// First day.
        pub starts_on: Date,
        /// Last day (inclusive), if set.
        pub ends_on: Option<Date>,
        /// Who added the provider.
        pub added_by: Uuid,
        /// When.
        pub added_at: DateTimeWithTimeZone,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod clinical_break_glass {
    //! `clinical_break_glass`: emergency grants, the reason sealed.
    use sea_orm::entity::prelude::*;

    /// One grant.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "clinical_break_glass")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The practice.
        pub organisation_id: Uuid,
        /// The client's account.
        pub client_id: Uuid,
        /// The client as a data subject.
        pub subject_id: Uuid,
        /// Who holds it.
        pub holder_id: Uuid,
        /// The reason, sealed with the subject's data key.
        pub reason_enc: Vec<u8>,
        /// When it was taken.
        pub granted_at: DateTimeWithTimeZone,
        /// When it ends.
        pub expires_at: DateTimeWithTimeZone,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod clinical_exercise_template {
    //! `clinical_exercise_templates`: the exercise library, in the clear.
    use sea_orm::entity::prelude::*;

    /// One template.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "clinical_exercise_templates")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The practice it belongs to; NULL for the shared library.
        pub organisation_id: Option<Uuid>,
        /// Name.
        pub name: String,
        /// Instructions.
        pub instructions: String,
        /// Body region.
        pub body_region: String,
        /// Equipment, a JSON array of strings.
        pub equipment: String,
        /// A link to a video or image.
        pub media_url: Option<String>,
        /// When it was created.
        pub created_at: DateTimeWithTimeZone,
        /// Who created it.
        pub created_by: Uuid,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod clinical_restriction {
    //! `clinical_restrictions`: a subject's restricted categories.
    use sea_orm::entity::prelude::*;

    /// One subject's restriction.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "clinical_restrictions")]
    pub struct Model {
        /// The subject.
        #[sea_orm(primary_key, auto_increment = false)]
        pub subject_id: Uuid,
        /// `all`, or a JSON array of `DataCategory::as_str` names.
        pub scope: String,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
