//! [`SandboxProcessor`]: the default [`PaymentProcessor`], for development, tests
//! and demonstrations. It moves no money and holds no state: every answer follows
//! from the token and the idempotency key, so the same request always gets the
//! same answer, on any server process.
//!
//! | token | card | charges |
//! |---|---|---|
//! | `tok_visa` | visa 4242, 12/2030 | succeed |
//! | `tok_mastercard` | mastercard 4444, 06/2031 | succeed |
//! | `tok_visa_declined` | visa 0002, 12/2030 | decline, `card_declined` |
//! | `tok_visa_insufficient_funds` | visa 9995, 12/2030 | decline, `insufficient_funds` |
//! | `tok_visa_action_required` | visa 3155, 12/2030 | need the card holder (`requires_action`) |
//!
//! Any other token is refused, as a real processor refuses a token it never issued.
//! References: customers `cus_sandbox_<practice>`, cards `pm_sandbox_<token>`,
//! charges `ch_sandbox_<payment id>`, refunds `re_sandbox_<refund id>` (ids as
//! 32 hex digits).

use async_trait::async_trait;
use kernel::OrganisationId;
use uuid::Uuid;

use crate::model::CardBrand;
use crate::money::Money;
use crate::ports::{CardDetails, ChargeOutcome, ChargeRequest, PaymentProcessor, ProcessorError};
use crate::values::ProcessorToken;

/// How a sandbox card behaves when charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Succeed,
    Decline(&'static str),
    RequireAction,
}

/// One sandbox card.
struct SandboxCard {
    token: &'static str,
    brand: CardBrand,
    last4: &'static str,
    exp_month: u32,
    exp_year: i32,
    behaviour: Behaviour,
}

const CARDS: &[SandboxCard] = &[
    SandboxCard {
        token: "tok_visa",
        brand: CardBrand::Visa,
        last4: "4242",
        exp_month: 12,
        exp_year: 2030,
        behaviour: Behaviour::Succeed,
    },
    SandboxCard {
        token: "tok_mastercard",
        brand: CardBrand::Mastercard,
        last4: "4444",
        exp_month: 6,
        exp_year: 2031,
        behaviour: Behaviour::Succeed,
    },
    SandboxCard {
        token: "tok_visa_declined",
        brand: CardBrand::Visa,
        last4: "0002",
        exp_month: 12,
        exp_year: 2030,
        behaviour: Behaviour::Decline("card_declined"),
    },
    SandboxCard {
        token: "tok_visa_insufficient_funds",
        brand: CardBrand::Visa,
        last4: "9995",
        exp_month: 12,
        exp_year: 2030,
        behaviour: Behaviour::Decline("insufficient_funds"),
    },
    SandboxCard {
        token: "tok_visa_action_required",
        brand: CardBrand::Visa,
        last4: "3155",
        exp_month: 12,
        exp_year: 2030,
        behaviour: Behaviour::RequireAction,
    },
];

const CARD_PREFIX: &str = "pm_sandbox_";

fn card_by_token(token: &str) -> Option<&'static SandboxCard> {
    CARDS.iter().find(|c| c.token == token)
}

/// The sandbox payment processor.
#[derive(Debug, Clone, Copy, Default)]
pub struct SandboxProcessor;

impl SandboxProcessor {
    /// The charge reference the sandbox gives the payment `payment`.
    #[must_use]
    pub fn charge_ref(payment: Uuid) -> String {
        format!("ch_sandbox_{}", payment.simple())
    }
}

#[async_trait]
impl PaymentProcessor for SandboxProcessor {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn create_customer(
        &self,
        organisation: OrganisationId,
    ) -> Result<String, ProcessorError> {
        Ok(format!("cus_sandbox_{}", organisation.as_uuid().simple()))
    }

    async fn attach_payment_method(
        &self,
        customer: &str,
        token: &ProcessorToken,
    ) -> Result<CardDetails, ProcessorError> {
        if !customer.starts_with("cus_sandbox_") {
            return Err(ProcessorError::Rejected(
                "the payment processor does not know this customer",
            ));
        }
        let card = card_by_token(token.as_str()).ok_or(ProcessorError::Rejected(
            "the payment processor does not know this token",
        ))?;
        Ok(CardDetails {
            processor_ref: format!("{CARD_PREFIX}{}", card.token),
            brand: card.brand,
            last4: card.last4.to_owned(),
            exp_month: card.exp_month,
            exp_year: card.exp_year,
        })
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, ProcessorError> {
        if request.amount.is_negative() || request.amount.amount().is_zero() {
            return Err(ProcessorError::Rejected("a charge must be positive"));
        }
        let card = request
            .payment_method
            .strip_prefix(CARD_PREFIX)
            .and_then(card_by_token)
            .ok_or(ProcessorError::Rejected(
                "the payment processor does not know this payment method",
            ))?;
        let charge = SandboxProcessor::charge_ref(request.idempotency_key);
        Ok(match card.behaviour {
            Behaviour::Succeed => ChargeOutcome::Succeeded { charge },
            Behaviour::RequireAction => ChargeOutcome::RequiresAction { charge },
            Behaviour::Decline(code) => ChargeOutcome::Declined {
                charge: Some(charge),
                code: code.to_owned(),
            },
        })
    }

    async fn refund(
        &self,
        charge: &str,
        amount: Money,
        idempotency_key: Uuid,
    ) -> Result<String, ProcessorError> {
        if !charge.starts_with("ch_sandbox_") {
            return Err(ProcessorError::Rejected(
                "the payment processor does not know this charge",
            ));
        }
        if amount.is_negative() || amount.amount().is_zero() {
            return Err(ProcessorError::Rejected("a refund must be positive"));
        }
        Ok(format!("re_sandbox_{}", idempotency_key.simple()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    fn request(method: &str) -> ChargeRequest {
        ChargeRequest {
            customer: "cus_sandbox_1".into(),
            payment_method: method.into(),
            amount: Money::parse("10.00", Currency::EUR).expect("valid"),
            idempotency_key: Uuid::nil(),
            description: "test".into(),
        }
    }

    #[tokio::test]
    async fn every_token_behaves_as_documented_and_always_the_same() {
        let sandbox = SandboxProcessor;
        let org = OrganisationId::new();
        let customer = sandbox.create_customer(org).await.expect("customer");
        assert_eq!(
            customer,
            sandbox.create_customer(org).await.expect("again"),
            "idempotent by practice"
        );
        for (token, expected) in [
            ("tok_visa", "succeeded"),
            ("tok_mastercard", "succeeded"),
            ("tok_visa_declined", "card_declined"),
            ("tok_visa_insufficient_funds", "insufficient_funds"),
            ("tok_visa_action_required", "requires_action"),
        ] {
            let token = ProcessorToken::parse(token).expect("token");
            let card = sandbox
                .attach_payment_method(&customer, &token)
                .await
                .expect("known token");
            assert_eq!(card.last4.len(), 4);
            for _ in 0..2 {
                let outcome = sandbox
                    .charge(&request(&card.processor_ref))
                    .await
                    .expect("charge");
                let got = match outcome {
                    ChargeOutcome::Succeeded { .. } => "succeeded".to_owned(),
                    ChargeOutcome::RequiresAction { .. } => "requires_action".to_owned(),
                    ChargeOutcome::Declined { code, .. } => code,
                };
                assert_eq!(got, expected);
            }
        }
        let unknown = ProcessorToken::parse("tok_unknown").expect("shape");
        assert!(matches!(
            sandbox.attach_payment_method(&customer, &unknown).await,
            Err(ProcessorError::Rejected(_))
        ));
    }
}
