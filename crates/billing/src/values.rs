//! Validated billing values. Parsing is the one way in; the error names the rule
//! broken, never the value (which may be a card number typed in by mistake).

use std::fmt;

use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

/// Why a value was refused. The message names the field's rule, never the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct InvalidInput {
    /// The field, by its API name.
    pub field: &'static str,
    /// The rule it broke.
    pub rule: &'static str,
}

impl InvalidInput {
    /// `field` broke `rule`.
    #[must_use]
    pub const fn new(field: &'static str, rule: &'static str) -> Self {
        Self { field, rule }
    }
}

/// The rule a card number breaks, wherever it is typed.
pub const NO_CARD_NUMBERS: &str = "card numbers are never accepted: tokenise the card with the payment processor and send its token";

/// Whether `text` holds something that looks like a payment card number: a run of
/// 13 to 19 digits, possibly separated by single spaces or dashes, that passes the
/// Luhn check.
/// Used to refuse a full card number typed into any billing field (C5).
#[must_use]
pub fn contains_card_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        if !bytes[start].is_ascii_digit() {
            start += 1;
            continue;
        }
        // Collect one run of digits with single separators between them.
        let mut digits: Vec<u8> = Vec::with_capacity(19);
        let mut i = start;
        while i < bytes.len() {
            let b = bytes[i];
            if b.is_ascii_digit() {
                digits.push(b - b'0');
                i += 1;
            } else if (b == b' ' || b == b'-')
                && i + 1 < bytes.len()
                && bytes[i + 1].is_ascii_digit()
                && i > start
            {
                i += 1;
            } else {
                break;
            }
        }
        // A run of 13 to 19 digits that passes the Luhn check is a card number.
        if (13..=19).contains(&digits.len()) && luhn_valid(&digits) {
            return true;
        }
        start = i.max(start + 1);
    }
    false
}

fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Free text of 1 to `MAX` characters: trimmed, without control characters, and
/// never a card number.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Label<const MAX: usize>(String);

impl<const MAX: usize> Label<MAX> {
    /// Parses `field`'s value.
    ///
    /// # Errors
    /// [`InvalidInput`] naming the length rule, or [`NO_CARD_NUMBERS`].
    pub fn parse(field: &'static str, value: &str) -> Result<Self, InvalidInput> {
        let value = value.trim();
        let count = value.chars().count();
        if count == 0 || count > MAX || value.chars().any(char::is_control) {
            return Err(InvalidInput::new(field, text_rule(MAX)));
        }
        if contains_card_number(value) {
            return Err(InvalidInput::new(field, NO_CARD_NUMBERS));
        }
        Ok(Self(value.to_owned()))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const fn text_rule(max: usize) -> &'static str {
    match max {
        40 => "must be 1 to 40 characters, without control characters",
        100 => "must be 1 to 100 characters, without control characters",
        200 => "must be 1 to 200 characters, without control characters",
        _ => "must be non-blank, within its length limit, without control characters",
    }
}

impl<const MAX: usize> fmt::Debug for Label<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Label({} chars)", self.0.chars().count())
    }
}

impl<const MAX: usize> Serialize for Label<MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A plan's code: 1 to 40 of lowercase ASCII letters, digits, `-` and `_`,
/// starting with a letter or digit. Stable: subscriptions and invoices name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PlanCode(String);

impl PlanCode {
    /// The rule a plan code follows.
    pub const RULE: &'static str =
        "must be 1 to 40 lowercase letters, digits, `-` or `_`, starting with a letter or digit";

    /// Parses a plan code.
    ///
    /// # Errors
    /// [`InvalidInput`] for `plan_code`.
    pub fn parse(value: &str) -> Result<Self, InvalidInput> {
        let ok = (1..=40).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && value
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidInput::new("plan_code", Self::RULE))
        }
    }

    /// The code.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PlanCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// ISO 3166-1 alpha-2 codes (officially assigned), sorted.
const COUNTRIES: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// A billing country: an officially assigned ISO 3166-1 alpha-2 code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

impl Country {
    /// Parses an ISO 3166-1 alpha-2 code (upper case).
    ///
    /// # Errors
    /// [`InvalidInput`] for `country`.
    pub fn parse(value: &str) -> Result<Self, InvalidInput> {
        match COUNTRIES.binary_search(&value) {
            Ok(_) => {
                let b = value.as_bytes();
                Ok(Self([b[0], b[1]]))
            }
            Err(_) => Err(InvalidInput::new(
                "country",
                "must be an ISO 3166-1 alpha-2 code in upper case, e.g. `DE`",
            )),
        }
    }

    /// The code.
    #[must_use]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Country {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A tax rate in percent: 0 to 100, with at most four decimal places (e.g. `19`,
/// `8.875`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct TaxRate(Decimal);

impl TaxRate {
    /// No tax.
    pub const ZERO: Self = Self(Decimal::ZERO);

    /// Parses a percentage.
    ///
    /// # Errors
    /// [`InvalidInput`] for `rate`.
    pub fn new(percent: Decimal) -> Result<Self, InvalidInput> {
        if percent.is_sign_negative() && !percent.is_zero()
            || percent > Decimal::ONE_HUNDRED
            || percent.normalize().scale() > 4
        {
            return Err(InvalidInput::new(
                "rate",
                "must be a percentage from 0 to 100 with at most 4 decimal places",
            ));
        }
        Ok(Self(percent.normalize()))
    }

    /// The percentage.
    #[must_use]
    pub const fn percent(self) -> Decimal {
        self.0
    }
}

/// An email address for billing notices: one `@`, a dotted domain, at most 254
/// characters. Deliverability is the notifier's business.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
pub struct BillingEmail(String);

impl BillingEmail {
    /// Parses an address.
    ///
    /// # Errors
    /// [`InvalidInput`] for `email`.
    pub fn parse(value: &str) -> Result<Self, InvalidInput> {
        let value = value.trim();
        let ok = value.len() <= 254
            && value.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !value.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidInput::new(
                "email",
                "must be an email address of at most 254 characters",
            ))
        }
    }

    /// The address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BillingEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BillingEmail(..)")
    }
}

/// A payment-processor token for a card tokenised on the processor's side:
/// 3 to 100 of ASCII letters, digits and `_`. A card number is refused with
/// [`NO_CARD_NUMBERS`] (C5).
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ProcessorToken(String);

impl ProcessorToken {
    /// Parses a token.
    ///
    /// # Errors
    /// [`InvalidInput`] for `token`.
    pub fn parse(value: &str) -> Result<Self, InvalidInput> {
        if contains_card_number(value) {
            return Err(InvalidInput::new("token", NO_CARD_NUMBERS));
        }
        let ok = (3..=100).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidInput::new(
                "token",
                "must be the processor's token: 3 to 100 letters, digits or `_`",
            ))
        }
    }

    /// The token.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ProcessorToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProcessorToken(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_are_found_with_or_without_separators() {
        for pan in [
            "4242424242424242",
            "4242 4242 4242 4242",
            "4242-4242-4242-4242",
            "my card is 5555555555554444 thanks",
            "378282246310005",
        ] {
            assert!(contains_card_number(pan), "{pan} should be seen");
        }
        for not in [
            "4242424242424241",
            "invoice 2026-11-24",
            "tok_visa",
            "123456789012",
            "Suite 4242, 10115 Berlin",
        ] {
            assert!(!contains_card_number(not), "{not} is not a card number");
        }
    }

    #[test]
    fn labels_refuse_card_numbers_and_blank_text() {
        assert_eq!(
            Label::<100>::parse("name", "4111 1111 1111 1111"),
            Err(InvalidInput::new("name", NO_CARD_NUMBERS))
        );
        assert!(Label::<100>::parse("name", "   ").is_err());
        assert!(Label::<40>::parse("name", &"x".repeat(41)).is_err());
        assert_eq!(
            Label::<100>::parse("name", " Physio Ltd ")
                .expect("valid")
                .as_str(),
            "Physio Ltd"
        );
    }

    #[test]
    fn plan_codes_countries_rates_tokens_and_emails() {
        assert!(PlanCode::parse("pro-2026").is_ok());
        assert!(PlanCode::parse("Pro").is_err());
        assert!(PlanCode::parse("-pro").is_err());
        assert!(PlanCode::parse("").is_err());
        assert_eq!(Country::parse("DE").expect("valid").as_str(), "DE");
        assert!(Country::parse("de").is_err());
        assert!(Country::parse("XX").is_err());
        assert!(TaxRate::new(Decimal::new(8875, 3)).is_ok());
        assert!(TaxRate::new(Decimal::new(-1, 0)).is_err());
        assert!(TaxRate::new(Decimal::new(10001, 2)).is_err());
        assert!(TaxRate::new(Decimal::new(123_456, 5)).is_err());
        assert!(ProcessorToken::parse("tok_visa").is_ok());
        assert_eq!(
            ProcessorToken::parse("4242424242424242").map_err(|e| e.rule),
            Err(NO_CARD_NUMBERS)
        );
        assert!(ProcessorToken::parse("tok visa").is_err());
        assert!(BillingEmail::parse("billing@physio.example").is_ok());
        assert!(BillingEmail::parse("billing@localhost").is_err());
    }
}
