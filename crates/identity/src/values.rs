//! Parsed values of the identity context: once built, each is valid, so the rest
//! of the code never re-checks it (parse, don't validate). Every `parse` names the
//! rule that was broken, in words fit to show the person who typed the value, and
//! never echoes the value itself.

use std::fmt;

use kernel::Sensitive;

mod birth;

pub use birth::DateOfBirth;

/// Why a value was refused: the field and the rule, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {rule}")]
pub struct InvalidValue {
    /// The field, as named in the API.
    pub field: &'static str,
    /// The rule broken, e.g. "must be at least 12 characters".
    pub rule: &'static str,
}

const fn invalid(field: &'static str, rule: &'static str) -> InvalidValue {
    InvalidValue { field, rule }
}

fn clean_text(field: &'static str, raw: &str, max_chars: usize) -> Result<String, InvalidValue> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if trimmed.chars().count() > max_chars {
        return Err(match max_chars {
            100 => invalid(field, "must be at most 100 characters"),
            _ => invalid(field, "must be at most 200 characters"),
        });
    }
    if trimmed.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

/// An email address, trimmed and lower-cased (the form used for uniqueness and
/// for the blind index).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// The longest address accepted (RFC 5321's path limit).
    pub const MAX_LEN: usize = 254;

    /// Parses an address: one `@`, a non-empty local part of at most 64 bytes, a
    /// domain with a dot and no empty labels, no spaces or control characters.
    ///
    /// # Errors
    /// [`InvalidValue`] naming the rule.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let email = raw.trim().to_lowercase();
        if email.len() > Self::MAX_LEN {
            return Err(invalid("email", "must be at most 254 characters"));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(invalid("email", "must be an email address"));
        };
        let labels_ok = domain.split('.').count() >= 2
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        if labels_ok && local_ok {
            Ok(Self(email))
        } else {
            Err(invalid("email", "must be an email address"))
        }
    }

    /// The normalised address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email([redacted])")
    }
}

/// A phone number in E.164 form: `+` and 8 to 15 digits. Spaces, dots, dashes and
/// parentheses are accepted on input and removed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    /// Parses a phone number.
    ///
    /// # Errors
    /// [`InvalidValue`] naming the rule.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        const RULE: &str = "must be an international number: + and 8 to 15 digits";
        let compact: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let digits = compact.strip_prefix('+').ok_or(invalid("phone", RULE))?;
        if (8..=15).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
            && !digits.starts_with('0')
        {
            Ok(Self(compact))
        } else {
            Err(invalid("phone", RULE))
        }
    }

    /// The E.164 form.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Phone([redacted])")
    }
}

/// A person's name as they write it: 1 to 200 characters, no control characters.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    /// Parses a name.
    ///
    /// # Errors
    /// [`InvalidValue`] naming the rule.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        clean_text("name", raw, 200).map(Self)
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonName([redacted])")
    }
}

/// A practice's name: 1 to 200 characters. Not personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganisationName(String);

impl OrganisationName {
    /// Parses a practice name.
    ///
    /// # Errors
    /// [`InvalidValue`] naming the rule.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        clean_text("organisation_name", raw, 200).map(Self)
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A provider's profession, e.g. "Physiotherapist": 1 to 100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profession(String);

impl Profession {
    /// Parses a profession.
    ///
    /// # Errors
    /// [`InvalidValue`] naming the rule.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        clean_text("profession", raw, 100).map(Self)
    }

    /// The profession.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password that meets the policy: 12 to 128 characters and not in the list
/// of common passwords. Held as [`Sensitive`]: it never prints.
#[derive(Clone)]
pub struct NewPassword(Sensitive<String>);

/// Common passwords of 12 characters or more, refused outright (lower-cased).
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

impl NewPassword {
    /// The shortest password accepted.
    pub const MIN_CHARS: usize = 12;
    /// The longest password accepted (bounds hashing cost).
    pub const MAX_CHARS: usize = 128;

    /// Checks a new password against the policy.
    ///
    /// # Errors
    /// [`InvalidValue`] naming the rule.
    pub fn parse(raw: Sensitive<String>) -> Result<Self, InvalidValue> {
        let chars = raw.expose().chars().count();
        if chars < Self::MIN_CHARS {
            return Err(invalid("password", "must be at least 12 characters"));
        }
        if chars > Self::MAX_CHARS {
            return Err(invalid("password", "must be at most 128 characters"));
        }
        let lowered = raw.expose().to_lowercase();
        if COMMON_PASSWORDS
            .lines()
            .any(|common| common.trim() == lowered)
        {
            return Err(invalid("password", "is too common; choose another"));
        }
        Ok(Self(raw))
    }

    /// The password, for hashing.
    #[must_use]
    pub const fn as_sensitive(&self) -> &Sensitive<String> {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword([redacted])")
    }
}

/// Where a practice's data is stored (O2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataRegion {
    /// United States.
    Us,
    /// European Union.
    Eu,
    /// United Kingdom.
    Uk,
    /// Canada.
    Ca,
    /// Australia.
    Au,
}

impl DataRegion {
    /// Every region.
    pub const ALL: [Self; 5] = [Self::Us, Self::Eu, Self::Uk, Self::Ca, Self::Au];

    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Us => "us",
            Self::Eu => "eu",
            Self::Uk => "uk",
            Self::Ca => "ca",
            Self::Au => "au",
        }
    }

    /// Parses [`DataRegion::as_str`]'s output.
    ///
    /// # Errors
    /// [`InvalidValue`] for another value.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == raw)
            .ok_or(invalid("region", "must be one of us, eu, uk, ca, au"))
    }
}

/// How a practice asks for marketing consent (U4): opt-in (the stricter, default)
/// or opt-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MarketingMode {
    /// Nobody receives marketing until they agree.
    #[default]
    OptIn,
    /// Marketing is sent until the person objects.
    OptOut,
}

impl MarketingMode {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OptIn => "opt_in",
            Self::OptOut => "opt_out",
        }
    }

    /// Parses [`MarketingMode::as_str`]'s output.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "opt_in" => Some(Self::OptIn),
            "opt_out" => Some(Self::OptOut),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").expect("valid").as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@ex..com",
            "ada@-x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
        assert_eq!(
            format!("{:?}", Email::parse("ada@example.com").expect("valid")),
            "Email([redacted])"
        );
    }

    #[test]
    fn phones_are_e164() {
        assert_eq!(
            Phone::parse("+44 (20) 7946-0958").expect("valid").as_str(),
            "+442079460958"
        );
        for bad in [
            "",
            "07946 0958",
            "+12",
            "+1234567890123456",
            "+44abc79460958",
            "+0123456789",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn passwords_follow_the_policy_and_name_the_rule() {
        let p = |s: &str| NewPassword::parse(Sensitive::new(s.to_owned()));
        assert_eq!(
            p("short").expect_err("short").rule,
            "must be at least 12 characters"
        );
        assert_eq!(
            p(&"x".repeat(129)).expect_err("long").rule,
            "must be at most 128 characters"
        );
        assert_eq!(
            p("Password1234").expect_err("common").rule,
            "is too common; choose another"
        );
        assert!(p("correct horse battery staple").is_ok());
        let err = p("short").expect_err("short");
        assert!(
            !err.to_string().contains("short"),
            "the value is never echoed"
        );
    }

    #[test]
    fn names_are_bounded_and_clean() {
        assert!(PersonName::parse("  Ada Lovelace ").is_ok());
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse(&"a".repeat(201)).is_err());
        assert!(PersonName::parse("Ada\u{0}").is_err());
        assert_eq!(
            Profession::parse(&"a".repeat(101)).expect_err("long").rule,
            "must be at most 100 characters"
        );
    }

    #[test]
    fn regions_and_modes_parse() {
        assert_eq!(DataRegion::parse("eu"), Ok(DataRegion::Eu));
        assert!(DataRegion::parse("mars").is_err());
        assert_eq!(MarketingMode::default(), MarketingMode::OptIn);
    }
}
