//! Exact money: an amount in a currency, never a float.
//!
//! - [`Currency`] is an ISO 4217 code Custodia bills in, with the number of minor
//!   units the standard gives it (JPY 0, EUR 2, KWD 3). A code outside the table is
//!   refused ([`MoneyError::UnknownCurrency`]), so an unknown currency is 422 at
//!   the edge.
//! - [`Money`] holds a `Decimal` amount with exactly the currency's minor units.
//!   Arithmetic that can produce more digits (a tax rate, a proration) rounds once,
//!   at the end, by the one rule [`ROUNDING`]: half away from zero ("commercial
//!   rounding", what tax authorities such as HMRC and the EU VAT directive's
//!   member-state rules expect for an amount of tax).
//! - The stored form is the amount in minor units as an `i64` beside the code:
//!   SQLite keeps a `Decimal` column as a REAL and loses digits beyond about 15
//!   significant ones; an integer is exact on both databases up to 18 digits.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};

/// The rounding rule for every amount that needs rounding: half away from zero.
pub const ROUNDING: RoundingStrategy = RoundingStrategy::MidpointAwayFromZero;

/// Why an amount or a currency was refused. Never quotes the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a currency Custodia bills in.
    #[error("the currency must be an ISO 4217 code Custodia bills in, e.g. `USD`")]
    UnknownCurrency,
    /// More decimal places than the currency has minor units.
    #[error("the amount has more decimal places than the currency's minor units")]
    TooPrecise,
    /// A negative amount where none may be.
    #[error("the amount cannot be negative")]
    Negative,
    /// Beyond what the stored form holds (18 digits of minor units).
    #[error("the amount is too large")]
    TooLarge,
    /// Two amounts in different currencies.
    #[error("the amounts are in different currencies")]
    CurrencyMismatch,
    /// Not a decimal number.
    #[error("the amount must be a decimal number such as `12.50`")]
    NotANumber,
}

impl MoneyError {
    /// The rule broken, as the error's message.
    #[must_use]
    pub const fn rule(self) -> &'static str {
        match self {
            Self::UnknownCurrency => {
                "the currency must be an ISO 4217 code Custodia bills in, e.g. `USD`"
            }
            Self::TooPrecise => {
                "the amount has more decimal places than the currency's minor units"
            }
            Self::Negative => "the amount cannot be negative",
            Self::TooLarge => "the amount is too large",
            Self::CurrencyMismatch => "the amounts are in different currencies",
            Self::NotANumber => "the amount must be a decimal number such as `12.50`",
        }
    }
}

macro_rules! currencies {
    ($($code:ident => $minor:literal, $name:literal;)*) => {
        /// An ISO 4217 currency Custodia bills in.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Currency {
            $(
                #[doc = $name]
                $code,
            )*
        }

        impl Currency {
            /// Every supported currency, by code.
            pub const ALL: &'static [Self] = &[$(Self::$code),*];

            /// The ISO 4217 alphabetic code.
            #[must_use]
            pub const fn code(self) -> &'static str {
                match self {
                    $(Self::$code => stringify!($code),)*
                }
            }

            /// The ISO 4217 minor units: digits after the decimal point.
            #[must_use]
            pub const fn minor_units(self) -> u32 {
                match self {
                    $(Self::$code => $minor,)*
                }
            }
        }
    };
}

currencies! {
    AED => 2, "UAE dirham";
    AUD => 2, "Australian dollar";
    BHD => 3, "Bahraini dinar";
    BRL => 2, "Brazilian real";
    CAD => 2, "Canadian dollar";
    CHF => 2, "Swiss franc";
    CLP => 0, "Chilean peso";
    CNY => 2, "Chinese yuan";
    CZK => 2, "Czech koruna";
    DKK => 2, "Danish krone";
    EUR => 2, "Euro";
    GBP => 2, "Pound sterling";
    HKD => 2, "Hong Kong dollar";
    HUF => 2, "Hungarian forint";
    ILS => 2, "Israeli new shekel";
    INR => 2, "Indian rupee";
    ISK => 0, "Icelandic króna";
    JOD => 3, "Jordanian dinar";
    JPY => 0, "Japanese yen";
    KRW => 0, "South Korean won";
    KWD => 3, "Kuwaiti dinar";
    MXN => 2, "Mexican peso";
    NOK => 2, "Norwegian krone";
    NZD => 2, "New Zealand dollar";
    OMR => 3, "Omani rial";
    PLN => 2, "Polish złoty";
    SAR => 2, "Saudi riyal";
    SEK => 2, "Swedish krona";
    SGD => 2, "Singapore dollar";
    TND => 3, "Tunisian dinar";
    TRY => 2, "Turkish lira";
    USD => 2, "US dollar";
    VND => 0, "Vietnamese đồng";
    ZAR => 2, "South African rand";
}

impl Currency {
    /// Parses an upper-case ISO 4217 code.
    ///
    /// # Errors
    /// [`MoneyError::UnknownCurrency`].
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.code() == code)
            .ok_or(MoneyError::UnknownCurrency)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The largest stored amount, in minor units: 18 digits.
const MAX_MINOR: i64 = 999_999_999_999_999_999;

/// An exact amount of money in a currency, with exactly its minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// An amount given exactly (a price typed by a person): more decimal places
    /// than the currency has is refused, not rounded away.
    ///
    /// # Errors
    /// [`MoneyError::TooPrecise`], [`MoneyError::TooLarge`].
    pub fn exact(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let normal = amount.normalize();
        if normal.scale() > currency.minor_units() {
            return Err(MoneyError::TooPrecise);
        }
        Self::checked(normal, currency)
    }

    /// Parses a decimal string (`"12.50"`) exactly.
    ///
    /// # Errors
    /// [`MoneyError::NotANumber`], and as [`Money::exact`].
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, MoneyError> {
        let amount = Decimal::from_str(amount.trim()).map_err(|_| MoneyError::NotANumber)?;
        Self::exact(amount, currency)
    }

    /// The result of arithmetic (a tax, a proration), rounded once by [`ROUNDING`]
    /// to the currency's minor units.
    ///
    /// # Errors
    /// [`MoneyError::TooLarge`].
    pub fn rounded(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let rounded = amount.round_dp_with_strategy(currency.minor_units(), ROUNDING);
        Self::checked(rounded, currency)
    }

    /// Zero in `currency`.
    #[must_use]
    pub fn zero(currency: Currency) -> Self {
        let mut amount = Decimal::ZERO;
        amount.rescale(currency.minor_units());
        Self { amount, currency }
    }

    /// An amount read from its stored form.
    ///
    /// # Errors
    /// [`MoneyError::TooLarge`] beyond 18 digits.
    pub fn from_minor(minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if !(-MAX_MINOR..=MAX_MINOR).contains(&minor) {
            return Err(MoneyError::TooLarge);
        }
        Ok(Self {
            amount: Decimal::new(minor, currency.minor_units()),
            currency,
        })
    }

    fn checked(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let mut amount = amount;
        amount.rescale(currency.minor_units());
        let money = Self { amount, currency };
        money.minor().map(|_| money)
    }

    /// The stored form: the amount in minor units.
    ///
    /// # Errors
    /// [`MoneyError::TooLarge`] beyond 18 digits.
    pub fn minor(&self) -> Result<i64, MoneyError> {
        let mantissa = self.amount.mantissa();
        i64::try_from(mantissa)
            .ok()
            .filter(|m| (-MAX_MINOR..=MAX_MINOR).contains(m))
            .ok_or(MoneyError::TooLarge)
    }

    /// The amount.
    #[must_use]
    pub const fn amount(&self) -> Decimal {
        self.amount
    }

    /// The currency.
    #[must_use]
    pub const fn currency(&self) -> Currency {
        self.currency
    }

    /// Whether the amount is below zero.
    #[must_use]
    pub fn is_negative(&self) -> bool {
        self.amount.is_sign_negative() && !self.amount.is_zero()
    }

    /// This amount, refused if negative (prices, charges, refunds).
    ///
    /// # Errors
    /// [`MoneyError::Negative`].
    pub fn non_negative(self) -> Result<Self, MoneyError> {
        if self.is_negative() {
            Err(MoneyError::Negative)
        } else {
            Ok(self)
        }
    }

    /// The sum, in the same currency.
    ///
    /// # Errors
    /// [`MoneyError::CurrencyMismatch`], [`MoneyError::TooLarge`].
    pub fn plus(self, other: Self) -> Result<Self, MoneyError> {
        self.same_currency(other)?;
        let sum = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::TooLarge)?;
        Self::checked(sum, self.currency)
    }

    /// The difference, in the same currency.
    ///
    /// # Errors
    /// [`MoneyError::CurrencyMismatch`], [`MoneyError::TooLarge`].
    pub fn minus(self, other: Self) -> Result<Self, MoneyError> {
        self.same_currency(other)?;
        let difference = self
            .amount
            .checked_sub(other.amount)
            .ok_or(MoneyError::TooLarge)?;
        Self::checked(difference, self.currency)
    }

    /// This amount times `factor` (a tax rate, a quantity), rounded once.
    ///
    /// # Errors
    /// [`MoneyError::TooLarge`].
    pub fn times(self, factor: Decimal) -> Result<Self, MoneyError> {
        let product = self
            .amount
            .checked_mul(factor)
            .ok_or(MoneyError::TooLarge)?;
        Self::rounded(product, self.currency)
    }

    /// The share `part / whole` of this amount (a proration by days), rounded once.
    ///
    /// # Errors
    /// [`MoneyError::TooLarge`]; a zero `whole` is [`MoneyError::NotANumber`].
    pub fn share(self, part: u32, whole: u32) -> Result<Self, MoneyError> {
        if whole == 0 {
            return Err(MoneyError::NotANumber);
        }
        let product = self
            .amount
            .checked_mul(Decimal::from(part))
            .and_then(|p| p.checked_div(Decimal::from(whole)))
            .ok_or(MoneyError::TooLarge)?;
        Self::rounded(product, self.currency)
    }

    fn same_currency(self, other: Self) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch)
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(s: &str, c: Currency) -> Money {
        Money::parse(s, c).expect("valid")
    }

    #[test]
    fn minor_units_follow_iso_4217() {
        assert_eq!(Currency::JPY.minor_units(), 0);
        assert_eq!(Currency::EUR.minor_units(), 2);
        assert_eq!(Currency::KWD.minor_units(), 3);
        assert_eq!(Currency::parse("USD"), Ok(Currency::USD));
        for unknown in ["usd", "XYZ", "", "EURO"] {
            assert_eq!(Currency::parse(unknown), Err(MoneyError::UnknownCurrency));
        }
        let codes: Vec<&str> = Currency::ALL.iter().map(|c| c.code()).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(codes, sorted, "one entry per code, in order");
    }

    #[test]
    fn exact_amounts_refuse_digits_the_currency_does_not_have() {
        assert_eq!(money("12.5", Currency::EUR).amount().to_string(), "12.50");
        assert_eq!(money("1200", Currency::JPY).amount().to_string(), "1200");
        assert_eq!(
            Money::parse("12.345", Currency::EUR),
            Err(MoneyError::TooPrecise)
        );
        assert_eq!(
            Money::parse("1.5", Currency::JPY),
            Err(MoneyError::TooPrecise)
        );
        assert_eq!(money("1.234", Currency::KWD).minor(), Ok(1234));
        assert_eq!(money("12.50", Currency::EUR).minor(), Ok(1250));
        assert_eq!(
            Money::parse("twelve", Currency::EUR),
            Err(MoneyError::NotANumber)
        );
        assert_eq!(
            money("-1", Currency::USD).non_negative(),
            Err(MoneyError::Negative)
        );
    }

    #[test]
    fn seventeen_significant_digits_survive_the_stored_form() {
        let amount = money("123456789012345.67", Currency::USD);
        let minor = amount.minor().expect("fits");
        assert_eq!(minor, 12_345_678_901_234_567);
        let back = Money::from_minor(minor, Currency::USD).expect("fits");
        assert_eq!(back, amount);
        assert_eq!(back.amount().to_string(), "123456789012345.67");
        assert_eq!(
            Money::parse("12345678901234567890", Currency::JPY),
            Err(MoneyError::TooLarge)
        );
    }

    #[test]
    fn arithmetic_rounds_once_half_away_from_zero() {
        // 19% VAT on 0.50 EUR is 0.095: half away from zero gives 0.10.
        let tax = money("0.50", Currency::EUR)
            .times(Decimal::new(19, 2))
            .expect("fits");
        assert_eq!(tax.amount().to_string(), "0.10");
        let refund = money("-0.50", Currency::EUR)
            .times(Decimal::new(19, 2))
            .expect("fits");
        assert_eq!(refund.amount().to_string(), "-0.10");
        // A 31-day month prorated for 10 days of 100.00: 32.258… → 32.26.
        let prorated = money("100.00", Currency::USD).share(10, 31).expect("fits");
        assert_eq!(prorated.amount().to_string(), "32.26");
        assert_eq!(
            money("1", Currency::USD).plus(money("1", Currency::EUR)),
            Err(MoneyError::CurrencyMismatch)
        );
        assert_eq!(
            money("10.00", Currency::GBP)
                .minus(money("2.55", Currency::GBP))
                .map(|m| m.amount().to_string()),
            Ok("7.45".to_owned())
        );
        assert_eq!(
            money("1", Currency::USD).share(1, 0),
            Err(MoneyError::NotANumber)
        );
    }
}
