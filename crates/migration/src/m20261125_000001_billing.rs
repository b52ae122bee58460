//! The billing context (issue 7): plans and their versions, tax rates, practices'
//! billing accounts and cards, subscriptions, invoices with their gapless numbers,
//! payments, refunds, processor events, and the idempotency keys of the HTTP
//! operations that may be retried.
//!
//! Every amount is a `BIGINT` of minor units beside a `TEXT` ISO 4217 code (an
//! invoice's amounts share its one currency column): never a `DECIMAL`, which
//! SQLite keeps as a REAL and rounds beyond about 15 significant digits. A tax rate
//! is a decimal string.
//!
//! - `billing_plans`: one row per plan, its code unique, and its latest version;
//! - `billing_plan_versions`: the terms of each version, keyed by plan and version;
//! - `billing_tax_rates`: one rate per billing country;
//! - `billing_accounts`: one per practice; the bill-to address sealed with the
//!   practice's own billing key, the contact user indexed (export and erasure);
//! - `billing_payment_methods`: cards on file (processor reference, brand, last
//!   four, expiry, never a card number), by practice and by who added them;
//! - `billing_subscriptions`: every field of a subscription. At most one *live*
//!   subscription (trialing, active or past due) per practice is the database's
//!   rule: `live_organisation_id` holds the practice only while the subscription is
//!   live, under a unique index (NULLs never collide). Due work is found through two
//!   partial indexes over live rows: by period end, and by the next dunning attempt;
//! - `billing_invoice_counters`: each practice's last invoice number, bumped in the
//!   transaction that writes the invoice, so numbers have no gaps;
//! - `billing_invoices`: unique per practice and number, lines as JSON text, the
//!   bill-to sealed, the contact user indexed;
//! - `billing_payments` (the processor's charge reference unique when present) and
//!   `billing_refunds` (the processor's refund reference unique), by invoice;
//! - `billing_webhook_events`: each processor event recorded once by its id;
//! - `idempotency_keys`: one row per (scope, key): the request's fingerprint, the
//!   answer once there is one (NULL status: still running), by creation time for
//!   the purge.
//!
//! There are no foreign keys to the identity tables, as in the clinical migration:
//! invoices outlive the accounts they were addressed to (tax law keeps them), and
//! erasure anonymises billing rows in its own transaction.

use sea_orm_migration::{prelude::*, schema::*};

use crate::create_index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum BillingPlans {
    Table,
    Id,
    Code,
    LatestVersion,
    CreatedAt,
}

#[derive(DeriveIden)]
enum BillingPlanVersions {
    Table,
    PlanId,
    Version,
    Name,
    PriceMinor,
    Currency,
    Interval,
    TrialDays,
    LimitActiveClients,
    LimitProviders,
    Available,
    CreatedAt,
}

#[derive(DeriveIden)]
enum BillingTaxRates {
    Table,
    Country,
    Rate,
    Name,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BillingAccounts {
    Table,
    OrganisationId,
    BillToEnc,
    ContactUserId,
    ProcessorCustomer,
    Anonymised,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BillingPaymentMethods {
    Table,
    Id,
    OrganisationId,
    ProcessorRef,
    Brand,
    Last4,
    ExpMonth,
    ExpYear,
    IsDefault,
    AddedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum BillingSubscriptions {
    Table,
    Id,
    OrganisationId,
    PlanId,
    PlanCode,
    PlanVersion,
    PriceMinor,
    Currency,
    Interval,
    LimitActiveClients,
    LimitProviders,
    Status,
    CurrentPeriodStart,
    CurrentPeriodEnd,
    TrialEnd,
    CancelAtPeriodEnd,
    EndedAt,
    CreditMinor,
    CreditCurrency,
    DunningInvoiceId,
    DunningFailedAttempts,
    DunningNextAttemptAt,
    CreatedAt,
    Version,
    LiveOrganisationId,
}

#[derive(DeriveIden)]
enum BillingInvoiceCounters {
    Table,
    OrganisationId,
    LastNumber,
}

#[derive(DeriveIden)]
enum BillingInvoices {
    Table,
    Id,
    OrganisationId,
    Number,
    SubscriptionId,
    Status,
    Currency,
    Lines,
    SubtotalMinor,
    TaxCountry,
    TaxName,
    TaxRate,
    TaxMinor,
    TotalMinor,
    AmountPaidMinor,
    AmountRefundedMinor,
    BillToEnc,
    ContactUserId,
    CreatedAt,
    DueAt,
    PaidAt,
    ClosedAt,
    Version,
}

#[derive(DeriveIden)]
enum BillingPayments {
    Table,
    Id,
    OrganisationId,
    InvoiceId,
    PaymentMethodId,
    AmountMinor,
    Currency,
    Status,
    ProcessorCharge,
    FailureCode,
    RefundedMinor,
    CreatedAt,
    LastEventAt,
    Version,
}

#[derive(DeriveIden)]
enum BillingRefunds {
    Table,
    Id,
    OrganisationId,
    PaymentId,
    InvoiceId,
    AmountMinor,
    Currency,
    ProcessorRefund,
    Reason,
    CreatedAt,
}

#[derive(DeriveIden)]
enum BillingWebhookEvents {
    Table,
    Id,
    Kind,
    Object,
    Created,
    SignedAt,
    ReceivedAt,
    Outcome,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Scope,
    Key,
    Fingerprint,
    Status,
    Body,
    OrganisationId,
    CreatedAt,
}

/// The unique index that allows one live subscription per practice. The store
/// recognises its violation by this column name, which both databases' messages
/// carry.
const LIVE_SUBSCRIPTION: &str = "billing_subscriptions_live_organisation_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        plans(manager).await?;
        accounts(manager).await?;
        subscriptions(manager).await?;
        invoices(manager).await?;
        payments(manager).await?;
        events_and_keys(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IdempotencyKeys::Table.into_iden(),
            BillingWebhookEvents::Table.into_iden(),
            BillingRefunds::Table.into_iden(),
            BillingPayments::Table.into_iden(),
            BillingInvoices::Table.into_iden(),
            BillingInvoiceCounters::Table.into_iden(),
            BillingSubscriptions::Table.into_iden(),
            BillingPaymentMethods::Table.into_iden(),
            BillingAccounts::Table.into_iden(),
            BillingTaxRates::Table.into_iden(),
            BillingPlanVersions::Table.into_iden(),
            BillingPlans::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn plans(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(BillingPlans::Table)
                .col(uuid(BillingPlans::Id).primary_key())
                .col(text(BillingPlans::Code))
                .col(integer(BillingPlans::LatestVersion))
                .col(timestamp_with_time_zone(BillingPlans::CreatedAt))
                .to_owned(),
        )
        .await?;
    create_index(
        manager,
        "billing_plans_code",
        BillingPlans::Table,
        &[BillingPlans::Code.into_iden()],
        true,
    )
    .await?;

    manager
        .create_table(
            Table::create()
                .table(BillingPlanVersions::Table)
                .col(uuid(BillingPlanVersions::PlanId))
                .col(integer(BillingPlanVersions::Version))
                .col(text(BillingPlanVersions::Name))
                .col(big_integer(BillingPlanVersions::PriceMinor))
                .col(text(BillingPlanVersions::Currency))
                .col(text(BillingPlanVersions::Interval))
                .col(integer(BillingPlanVersions::TrialDays))
                .col(big_integer_null(BillingPlanVersions::LimitActiveClients))
                .col(big_integer_null(BillingPlanVersions::LimitProviders))
                .col(boolean(BillingPlanVersions::Available))
                .col(timestamp_with_time_zone(BillingPlanVersions::CreatedAt))
                .primary_key(
                    Index::create()
                        .name("billing_plan_versions_pk")
                        .col(BillingPlanVersions::PlanId)
                        .col(BillingPlanVersions::Version),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("billing_plan_versions_plan_fk")
                        .from(BillingPlanVersions::Table, BillingPlanVersions::PlanId)
                        .to(BillingPlans::Table, BillingPlans::Id),
                )
                .to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(BillingTaxRates::Table)
                .col(text(BillingTaxRates::Country).primary_key())
                .col(text(BillingTaxRates::Rate))
                .col(text(BillingTaxRates::Name))
                .col(timestamp_with_time_zone(BillingTaxRates::UpdatedAt))
                .to_owned(),
        )
        .await
}

async fn accounts(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(BillingAccounts::Table)
                .col(uuid(BillingAccounts::OrganisationId).primary_key())
                .col(blob(BillingAccounts::BillToEnc))
                .col(uuid_null(BillingAccounts::ContactUserId))
                .col(text_null(BillingAccounts::ProcessorCustomer))
                .col(boolean(BillingAccounts::Anonymised))
                .col(timestamp_with_time_zone(BillingAccounts::UpdatedAt))
                .to_owned(),
        )
        .await?;
    create_index(
        manager,
        "billing_accounts_by_contact",
        BillingAccounts::Table,
        &[BillingAccounts::ContactUserId.into_iden()],
        false,
    )
    .await?;

    manager
        .create_table(
            Table::create()
                .table(BillingPaymentMethods::Table)
                .col(uuid(BillingPaymentMethods::Id).primary_key())
                .col(uuid(BillingPaymentMethods::OrganisationId))
                .col(text(BillingPaymentMethods::ProcessorRef))
                .col(text(BillingPaymentMethods::Brand))
                .col(text(BillingPaymentMethods::Last4))
                .col(integer(BillingPaymentMethods::ExpMonth))
                .col(integer(BillingPaymentMethods::ExpYear))
                .col(boolean(BillingPaymentMethods::IsDefault))
                .col(uuid_null(BillingPaymentMethods::AddedBy))
                .col(timestamp_with_time_zone(BillingPaymentMethods::CreatedAt))
                .to_owned(),
        )
        .await?;
    create_index(
        manager,
        "billing_payment_methods_by_organisation",
        BillingPaymentMethods::Table,
        &[
            BillingPaymentMethods::OrganisationId.into_iden(),
            BillingPaymentMethods::CreatedAt.into_iden(),
        ],
        false,
    )
    .await?;
    create_index(
        manager,
        "billing_payment_methods_by_added_by",
        BillingPaymentMethods::Table,
        &[BillingPaymentMethods::AddedBy.into_iden()],
        false,
    )
    .await
}

async fn subscriptions(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    use BillingSubscriptions as S;
    manager
        .create_table(
            Table::create()
                .table(S::Table)
                .col(uuid(S::Id).primary_key())
                .col(uuid(S::OrganisationId))
                .col(uuid(S::PlanId))
                .col(text(S::PlanCode))
                .col(integer(S::PlanVersion))
                .col(big_integer(S::PriceMinor))
                .col(text(S::Currency))
                .col(text(S::Interval))
                .col(big_integer_null(S::LimitActiveClients))
                .col(big_integer_null(S::LimitProviders))
                .col(text(S::Status))
                .col(timestamp_with_time_zone(S::CurrentPeriodStart))
                .col(timestamp_with_time_zone(S::CurrentPeriodEnd))
                .col(timestamp_with_time_zone_null(S::TrialEnd))
                .col(boolean(S::CancelAtPeriodEnd))
                .col(timestamp_with_time_zone_null(S::EndedAt))
                .col(big_integer(S::CreditMinor))
                .col(text(S::CreditCurrency))
                .col(uuid_null(S::DunningInvoiceId))
                .col(integer_null(S::DunningFailedAttempts))
                .col(timestamp_with_time_zone_null(S::DunningNextAttemptAt))
                .col(timestamp_with_time_zone(S::CreatedAt))
                .col(integer(S::Version))
                .col(uuid_null(S::LiveOrganisationId))
                .to_owned(),
        )
        .await?;
    create_index(
        manager,
        "billing_subscriptions_by_organisation",
        S::Table,
        &[
            S::OrganisationId.into_iden(),
            S::CreatedAt.into_iden(),
            S::Id.into_iden(),
        ],
        false,
    )
    .await?;
    create_index(
        manager,
        LIVE_SUBSCRIPTION,
        S::Table,
        &[S::LiveOrganisationId.into_iden()],
        true,
    )
    .await?;
    // Due work reads live rows only; ended subscriptions, which accumulate, are not
    // in these indexes at all.
    manager
        .create_index(
            Index::create()
                .name("billing_subscriptions_due_period_end")
                .table(S::Table)
                .col(S::CurrentPeriodEnd)
                .col(S::Id)
                .and_where(Expr::col(S::LiveOrganisationId).is_not_null())
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("billing_subscriptions_due_dunning")
                .table(S::Table)
                .col(S::DunningNextAttemptAt)
                .col(S::Id)
                .and_where(Expr::col(S::LiveOrganisationId).is_not_null())
                .and_where(Expr::col(S::DunningNextAttemptAt).is_not_null())
                .to_owned(),
        )
        .await
}

async fn invoices(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    use BillingInvoices as I;
    manager
        .create_table(
            Table::create()
                .table(BillingInvoiceCounters::Table)
                .col(uuid(BillingInvoiceCounters::OrganisationId).primary_key())
                .col(big_integer(BillingInvoiceCounters::LastNumber))
                .to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(I::Table)
                .col(uuid(I::Id).primary_key())
                .col(uuid(I::OrganisationId))
                .col(big_integer(I::Number))
                .col(uuid_null(I::SubscriptionId))
                .col(text(I::Status))
                .col(text(I::Currency))
                .col(text(I::Lines))
                .col(big_integer(I::SubtotalMinor))
                .col(text(I::TaxCountry))
                .col(text(I::TaxName))
                .col(text(I::TaxRate))
                .col(big_integer(I::TaxMinor))
                .col(big_integer(I::TotalMinor))
                .col(big_integer(I::AmountPaidMinor))
                .col(big_integer(I::AmountRefundedMinor))
                .col(blob_null(I::BillToEnc))
                .col(uuid_null(I::ContactUserId))
                .col(timestamp_with_time_zone(I::CreatedAt))
                .col(timestamp_with_time_zone(I::DueAt))
                .col(timestamp_with_time_zone_null(I::PaidAt))
                .col(timestamp_with_time_zone_null(I::ClosedAt))
                .col(integer(I::Version))
                .to_owned(),
        )
        .await?;
    create_index(
        manager,
        "billing_invoices_number",
        I::Table,
        &[I::OrganisationId.into_iden(), I::Number.into_iden()],
        true,
    )
    .await?;
    create_index(
        manager,
        "billing_invoices_by_contact",
        I::Table,
        &[I::ContactUserId.into_iden()],
        false,
    )
    .await
}

async fn payments(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    use BillingPayments as P;
    use BillingRefunds as R;
    manager
        .create_table(
            Table::create()
                .table(P::Table)
                .col(uuid(P::Id).primary_key())
                .col(uuid(P::OrganisationId))
                .col(uuid(P::InvoiceId))
                .col(uuid_null(P::PaymentMethodId))
                .col(big_integer(P::AmountMinor))
                .col(text(P::Currency))
                .col(text(P::Status))
                .col(text_null(P::ProcessorCharge))
                .col(text_null(P::FailureCode))
                .col(big_integer(P::RefundedMinor))
                .col(timestamp_with_time_zone(P::CreatedAt))
                .col(timestamp_with_time_zone_null(P::LastEventAt))
                .col(integer(P::Version))
                .foreign_key(
                    ForeignKey::create()
                        .name("billing_payments_invoice_fk")
                        .from(P::Table, P::InvoiceId)
                        .to(BillingInvoices::Table, BillingInvoices::Id),
                )
                .to_owned(),
        )
        .await?;
    create_index(
        manager,
        "billing_payments_processor_charge",
        P::Table,
        &[P::ProcessorCharge.into_iden()],
        true,
    )
    .await?;
    create_index(
        manager,
        "billing_payments_by_invoice",
        P::Table,
        &[
            P::InvoiceId.into_iden(),
            P::CreatedAt.into_iden(),
            P::Id.into_iden(),
        ],
        false,
    )
    .await?;

    manager
        .create_table(
            Table::create()
                .table(R::Table)
                .col(uuid(R::Id).primary_key())
                .col(uuid(R::OrganisationId))
                .col(uuid(R::PaymentId))
                .col(uuid(R::InvoiceId))
                .col(big_integer(R::AmountMinor))
                .col(text(R::Currency))
                .col(text(R::ProcessorRefund))
                .col(text_null(R::Reason))
                .col(timestamp_with_time_zone(R::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("billing_refunds_payment_fk")
                        .from(R::Table, R::PaymentId)
                        .to(P::Table, P::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("billing_refunds_invoice_fk")
                        .from(R::Table, R::InvoiceId)
                        .to(BillingInvoices::Table, BillingInvoices::Id),
                )
                .to_owned(),
        )
        .await?;
    create_index(
        manager,
        "billing_refunds_processor_refund",
        R::Table,
        &[R::ProcessorRefund.into_iden()],
        true,
    )
    .await?;
    create_index(
        manager,
        "billing_refunds_by_invoice",
        R::Table,
        &[
            R::InvoiceId.into_iden(),
            R::CreatedAt.into_iden(),
            R::Id.into_iden(),
        ],
        false,
    )
    .await
}

async fn events_and_keys(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(BillingWebhookEvents::Table)
                .col(text(BillingWebhookEvents::Id).primary_key())
                .col(text(BillingWebhookEvents::Kind))
                .col(text_null(BillingWebhookEvents::Object))
                .col(timestamp_with_time_zone(BillingWebhookEvents::Created))
                .col(big_integer(BillingWebhookEvents::SignedAt))
                .col(timestamp_with_time_zone(BillingWebhookEvents::ReceivedAt))
                .col(text(BillingWebhookEvents::Outcome))
                .to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(IdempotencyKeys::Table)
                .col(text(IdempotencyKeys::Scope))
                .col(text(IdempotencyKeys::Key))
                .col(blob(IdempotencyKeys::Fingerprint))
                .col(integer_null(IdempotencyKeys::Status))
                .col(blob_null(IdempotencyKeys::Body))
                .col(uuid_null(IdempotencyKeys::OrganisationId))
                .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                .primary_key(
                    Index::create()
                        .name("idempotency_keys_pk")
                        .col(IdempotencyKeys::Scope)
                        .col(IdempotencyKeys::Key),
                )
                .to_owned(),
        )
        .await?;
    create_index(
        manager,
        "idempotency_keys_by_time",
        IdempotencyKeys::Table,
        &[IdempotencyKeys::CreatedAt.into_iden()],
        false,
    )
    .await
}
