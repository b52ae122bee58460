//! The billing part of `cargo xtask seed`: plans, tax rates, and for every seeded
//! practice a billing account, a card, a subscription and six months of invoice
//! history, written through the billing service as the API would write them.
//!
//! - Plans (created once, reused by later runs): `starter` (29.00 EUR a month, up to
//!   25 active clients, 14 trial days), `practice` (79.00 EUR a month, up to 500)
//!   and `clinic` (790.00 EUR a year, unlimited).
//! - Tax rates: DE 19 % VAT, FR 20 % VAT, GB 20 % VAT, NL 21 % BTW.
//! - Each practice is billed in one of US, DE, GB, FR, NL in turn, pays with
//!   `tok_visa` (every fifth with `tok_visa_declined`, so dunning shows), and
//!   subscribes six months ago to `practice` (`clinic` above 500 clients), which
//!   has no trial, so history starts at once. The billing job is then run once a
//!   day since, as the server's job would have: monthly renewals, and dunning for
//!   the declined cards.

use billing::model::{BillTo, Interval, PlanLimits, PlanTerms};
use billing::values::{BillingEmail, Country, Label, PlanCode, ProcessorToken, TaxRate};
use billing::{BillingError, Currency, Money};
use chrono::{DateTime, Months, Utc};
use kernel::{
    Actor, ClientInfo, Clock, OrganisationId, Purpose, RequestContext, RequestId, Role, RoleSet,
    SystemClock, UserId,
};
use rust_decimal::Decimal;
use server::state::AppState;
use uuid::Uuid;

/// Months of invoice history.
pub const HISTORY_MONTHS: u32 = 6;
/// Billing countries, in turn.
const COUNTRIES: [&str; 5] = ["US", "DE", "GB", "FR", "NL"];

fn context(
    actor: Actor,
    organisation: Option<OrganisationId>,
    at: DateTime<Utc>,
) -> RequestContext {
    RequestContext::new(
        actor,
        organisation,
        Purpose::Payment,
        RequestId::new(),
        ClientInfo::new(None, Some("cargo xtask seed")),
        at,
    )
}

fn operator(at: DateTime<Utc>) -> RequestContext {
    context(
        Actor::PlatformOperator {
            user: UserId::from_uuid(Uuid::nil()),
        },
        None,
        at,
    )
}

fn eur(amount: &str) -> Result<Money, String> {
    Money::parse(amount, Currency::EUR).map_err(|e| e.to_string())
}

fn label<const N: usize>(field: &'static str, text: &str) -> Result<Label<N>, String> {
    Label::parse(field, text).map_err(|e| e.to_string())
}

/// The plans and tax rates, created when missing.
pub async fn catalogue(state: &AppState) -> Result<(), String> {
    let billing = state.billing();
    let op = operator(SystemClock.now());
    let plans = [
        ("starter", "Starter", "29.00", Interval::Month, 14, Some(25)),
        (
            "practice",
            "Practice",
            "79.00",
            Interval::Month,
            0,
            Some(500),
        ),
        ("clinic", "Clinic", "790.00", Interval::Year, 0, None),
    ];
    for (code, name, price, interval, trial_days, clients) in plans {
        let code = PlanCode::parse(code).map_err(|e| e.to_string())?;
        let terms = PlanTerms {
            name: label("name", name)?,
            price: eur(price)?,
            interval,
            trial_days,
            limits: PlanLimits {
                active_clients: clients,
                providers: None,
            },
        };
        match billing.create_plan(&op, code, terms).await {
            Ok(_) | Err(BillingError::Conflict(_)) => {}
            Err(e) => return Err(format!("creating a plan: {e}")),
        }
    }
    for (country, rate, name) in [
        ("DE", 19, "VAT"),
        ("FR", 20, "VAT"),
        ("GB", 20, "VAT"),
        ("NL", 21, "BTW"),
    ] {
        billing
            .set_tax_rate(
                &op,
                Country::parse(country).map_err(|e| e.to_string())?,
                TaxRate::new(Decimal::from(rate)).map_err(|e| e.to_string())?,
                label("name", name)?,
            )
            .await
            .map_err(|e| format!("setting a tax rate: {e}"))?;
    }
    Ok(())
}

/// A practice's account, card and subscription, dated `HISTORY_MONTHS` ago.
pub async fn practice(
    state: &AppState,
    organisation: OrganisationId,
    owner: UserId,
    index: u64,
    name: &str,
    clients: u64,
) -> Result<(), String> {
    let billing = state.billing();
    let start = history_start();
    let roles = RoleSet::only(Role::OrgAdmin).with(Role::Provider);
    let admin = context(
        Actor::Member { user: owner, roles },
        Some(organisation),
        start,
    );
    let country = COUNTRIES[usize::try_from(index).unwrap_or(0) % COUNTRIES.len()];
    let bill_to = BillTo {
        legal_name: label("legal_name", name)?,
        contact_name: label("contact_name", "Accounts Payable")?,
        email: BillingEmail::parse(&format!("billing-{index}@example.com"))
            .map_err(|e| e.to_string())?,
        address_lines: vec![label(
            "address_lines",
            &format!("{} Harbour Street", 10 + index % 90),
        )?],
        city: label("city", "Springfield")?,
        postal_code: label("postal_code", &format!("{:05}", 10_000 + index % 89_999))?,
        country: Country::parse(country).map_err(|e| e.to_string())?,
        tax_id: None,
    };
    billing
        .save_account(&admin, organisation, bill_to, Some(owner))
        .await
        .map_err(|e| format!("saving a billing account: {e}"))?;
    let token = if index % 5 == 4 {
        "tok_visa_declined"
    } else {
        "tok_visa"
    };
    billing
        .add_payment_method(
            &admin,
            organisation,
            ProcessorToken::parse(token).map_err(|e| e.to_string())?,
        )
        .await
        .map_err(|e| format!("adding a card: {e}"))?;
    let plan = if clients <= 500 { "practice" } else { "clinic" };
    let code = PlanCode::parse(plan).map_err(|e| e.to_string())?;
    match billing.subscribe(&admin, organisation, &code).await {
        Ok(_) | Err(BillingError::PaymentFailed { .. }) => Ok(()),
        Err(e) => Err(format!("subscribing: {e}")),
    }
}

/// Runs the billing job once a day from the history's start to now, as the
/// server's job would have: renewals at each month's boundary, dunning between.
pub async fn history(state: &AppState) -> Result<u64, String> {
    let start = history_start();
    let days = (SystemClock.now() - start).num_days();
    let mut ran = 0;
    for day in 1..=days {
        let at = start + chrono::Duration::days(day);
        let report = state
            .billing()
            .run_due(&operator(at), 10_000)
            .await
            .map_err(|e| format!("running billing: {e}"))?;
        ran += u64::from(report.renewed + report.failed + report.canceled);
    }
    Ok(ran)
}

fn history_start() -> DateTime<Utc> {
    let now = SystemClock.now();
    now.checked_sub_months(Months::new(HISTORY_MONTHS))
        .unwrap_or(now)
}
