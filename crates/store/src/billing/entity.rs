//! sea-orm entities for the billing tables and `idempotency_keys`. Private to the
//! adapters: rows are turned into `billing`'s types before they leave this crate.

pub(super) mod billing_plan {
    //! `billing_plans`: one row per plan.
    use sea_orm::entity::prelude::*;

    /// One plan.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_plans")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// `PlanCode` (unique).
        pub code: String,
        /// The latest version, from 1.
        pub latest_version: i32,
        /// When its first version was written.
        pub created_at: DateTimeWithTimeZone,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod billing_plan_version {
    //! `billing_plan_versions`: the terms of each version of a plan.
    use sea_orm::entity::prelude::*;

    /// One version.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_plan_versions")]
    pub struct Model {
        /// The plan.
        #[sea_orm(primary_key, auto_increment = false)]
        pub plan_id: Uuid,
        /// The version.
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i32,
        /// The name shown to practices.
        pub name: String,
        /// The price in minor units.
        pub price_minor: i64,
        /// The price's ISO 4217 code.
        pub currency: String,
        /// `Interval::as_str`.
        pub interval: String,
        /// Trial days.
        pub trial_days: i32,
        /// The most active clients, if limited.
        pub limit_active_clients: Option<i64>,
        /// The most providers, if limited.
        pub limit_providers: Option<i64>,
        /// Whether new subscriptions may choose it.
        pub available: bool,
        /// When it was written.
        pub created_at: DateTimeWithTimeZone,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod billing_tax_rate {
    //! `billing_tax_rates`: one rate per billing country.
    use sea_orm::entity::prelude::*;

    /// One country's rate.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_tax_rates")]
    pub struct Model {
        /// ISO 3166-1 alpha-2.
        #[sea_orm(primary_key, auto_increment = false)]
        pub country: String,
        /// The percentage, as a decimal string.
        pub rate: String,
        /// The tax's name.
        pub name: String,
        /// When it was set.
        pub updated_at: DateTimeWithTimeZone,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod billing_account {
    //! `billing_accounts`: a practice's billing contact, sealed.
    use sea_orm::entity::prelude::*;

    /// One practice's account.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_accounts")]
    pub struct Model {
        /// The practice.
        #[sea_orm(primary_key, auto_increment = false)]
        pub organisation_id: Uuid,
        /// `BillTo` as JSON, sealed with the practice's billing key.
        pub bill_to_enc: Vec<u8>,
        /// The member who is the contact.
        pub contact_user_id: Option<Uuid>,
        /// The processor's customer id.
        pub processor_customer: Option<String>,
        /// Whether the contact was anonymised by an erasure.
        pub anonymised: bool,
        /// When it was last changed.
        pub updated_at: DateTimeWithTimeZone,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod billing_payment_method {
    //! `billing_payment_methods`: cards on file, as the processor describes them.
    use sea_orm::entity::prelude::*;

    /// One card.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_payment_methods")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The practice.
        pub organisation_id: Uuid,
        /// The processor's reference.
        pub processor_ref: String,
        /// `CardBrand::as_str`.
        pub brand: String,
        /// The last four digits.
        pub last4: String,
        /// Expiry month.
        pub exp_month: i32,
        /// Expiry year.
        pub exp_year: i32,
        /// Whether charges use it.
        pub is_default: bool,
        /// Who added it.
        pub added_by: Option<Uuid>,
        /// When.
        pub created_at: DateTimeWithTimeZone,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod billing_subscription {
    //! `billing_subscriptions`: practices' subscriptions, live and ended.
    use sea_orm::entity::prelude::*;

    /// One subscription.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_subscriptions")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The practice.
        pub organisation_id: Uuid,
        /// The plan.
        pub plan_id: Uuid,
        /// The plan's code.
        pub plan_code: String,
        /// The plan version in force.
        pub plan_version: i32,
        /// The price locked in, in minor units.
        pub price_minor: i64,
        /// The price's ISO 4217 code.
        pub currency: String,
        /// `Interval::as_str`.
        pub interval: String,
        /// The most active clients, if limited.
        pub limit_active_clients: Option<i64>,
        /// The most providers, if limited.
        pub limit_providers: Option<i64>,
        /// `SubscriptionStatus::as_str`.
        pub status: String,
        /// The current period's start.
        pub current_period_start: DateTimeWithTimeZone,
        /// The current period's end.
        pub current_period_end: DateTimeWithTimeZone,
        /// The trial's end.
        pub trial_end: Option<DateTimeWithTimeZone>,
        /// Whether it ends at the period's end.
        pub cancel_at_period_end: bool,
        /// When it ended.
        pub ended_at: Option<DateTimeWithTimeZone>,
        /// Credit, in minor units.
        pub credit_minor: i64,
        /// The credit's ISO 4217 code.
        pub credit_currency: String,
        /// The invoice dunning retries.
        pub dunning_invoice_id: Option<Uuid>,
        /// Failed attempts so far.
        pub dunning_failed_attempts: Option<i32>,
        /// The next attempt.
        pub dunning_next_attempt_at: Option<DateTimeWithTimeZone>,
        /// When it was created.
        pub created_at: DateTimeWithTimeZone,
        /// The optimistic-concurrency version.
        pub version: i32,
        /// The practice while the subscription is live, else NULL (unique).
        pub live_organisation_id: Option<Uuid>,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod billing_invoice_counter {
    //! `billing_invoice_counters`: each practice's last invoice number.
    use sea_orm::entity::prelude::*;

    /// One practice's counter.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_invoice_counters")]
    pub struct Model {
        /// The practice.
        #[sea_orm(primary_key, auto_increment = false)]
        pub organisation_id: Uuid,
        /// The last number given.
        pub last_number: i64,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod billing_invoice {
    //! `billing_invoices`: invoices, the bill-to sealed.
    use sea_orm::entity::prelude::*;

    /// One invoice.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_invoices")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The practice.
        pub organisation_id: Uuid,
        /// Its number in the practice (unique with it).
        pub number: i64,
        /// The subscription it bills.
        pub subscription_id: Option<Uuid>,
        /// `InvoiceStatus::as_str`.
        pub status: String,
        /// The ISO 4217 code of every amount on it.
        pub currency: String,
        /// The lines, as JSON.
        pub lines: String,
        /// Subtotal, in minor units.
        pub subtotal_minor: i64,
        /// The tax's country.
        pub tax_country: String,
        /// The tax's name.
        pub tax_name: String,
        /// The tax rate, as a decimal string.
        pub tax_rate: String,
        /// The tax, in minor units.
        pub tax_minor: i64,
        /// Total, in minor units.
        pub total_minor: i64,
        /// Paid so far, in minor units.
        pub amount_paid_minor: i64,
        /// Refunded so far, in minor units.
        pub amount_refunded_minor: i64,
        /// `BillTo` as JSON, sealed with the practice's billing key.
        pub bill_to_enc: Option<Vec<u8>>,
        /// The contact it was addressed to.
        pub contact_user_id: Option<Uuid>,
        /// When it was created.
        pub created_at: DateTimeWithTimeZone,
        /// When payment is due.
        pub due_at: DateTimeWithTimeZone,
        /// When it was paid.
        pub paid_at: Option<DateTimeWithTimeZone>,
        /// When it was voided or written off.
        pub closed_at: Option<DateTimeWithTimeZone>,
        /// The optimistic-concurrency version.
        pub version: i32,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod billing_payment {
    //! `billing_payments`: attempts to collect invoices.
    use sea_orm::entity::prelude::*;

    /// One payment.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_payments")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The practice.
        pub organisation_id: Uuid,
        /// The invoice.
        pub invoice_id: Uuid,
        /// The card charged.
        pub payment_method_id: Option<Uuid>,
        /// The amount, in minor units.
        pub amount_minor: i64,
        /// The ISO 4217 code of the amount and the refunded amount.
        pub currency: String,
        /// `PaymentStatus::as_str`.
        pub status: String,
        /// The processor's charge reference (unique).
        pub processor_charge: Option<String>,
        /// The decline code.
        pub failure_code: Option<String>,
        /// Refunded so far, in minor units.
        pub refunded_minor: i64,
        /// When it was created.
        pub created_at: DateTimeWithTimeZone,
        /// The processor time of the last event applied.
        pub last_event_at: Option<DateTimeWithTimeZone>,
        /// The optimistic-concurrency version.
        pub version: i32,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod billing_refund {
    //! `billing_refunds`: refunds of payments.
    use sea_orm::entity::prelude::*;

    /// One refund.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_refunds")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The practice.
        pub organisation_id: Uuid,
        /// The payment refunded.
        pub payment_id: Uuid,
        /// The invoice.
        pub invoice_id: Uuid,
        /// The amount, in minor units.
        pub amount_minor: i64,
        /// Its ISO 4217 code.
        pub currency: String,
        /// The processor's refund reference (unique).
        pub processor_refund: String,
        /// Why.
        pub reason: Option<String>,
        /// When.
        pub created_at: DateTimeWithTimeZone,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod billing_webhook_event {
    //! `billing_webhook_events`: processor events, once by id.
    use sea_orm::entity::prelude::*;

    /// One event.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_webhook_events")]
    pub struct Model {
        /// The processor's event id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Its type.
        pub kind: String,
        /// The object it names.
        pub object: Option<String>,
        /// When the processor created it.
        pub created: DateTimeWithTimeZone,
        /// The signed timestamp of its delivery.
        pub signed_at: i64,
        /// When it was received.
        pub received_at: DateTimeWithTimeZone,
        /// `WebhookOutcome::as_str`.
        pub outcome: String,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod idempotency_key {
    //! `idempotency_keys`: requests that may be retried, and their answers.
    use sea_orm::entity::prelude::*;

    /// One key.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_keys")]
    pub struct Model {
        /// Who and what the key was used for.
        #[sea_orm(primary_key, auto_increment = false)]
        pub scope: String,
        /// The key the caller sent.
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        /// SHA-256 of the request.
        pub fingerprint: Vec<u8>,
        /// The answer's status; NULL while the request runs.
        pub status: Option<i32>,
        /// The answer's body, sealed when `organisation_id` is set.
        pub body: Option<Vec<u8>>,
        /// The practice whose billing key seals the body.
        pub organisation_id: Option<Uuid>,
        /// When the key was first used.
        pub created_at: DateTimeWithTimeZone,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
