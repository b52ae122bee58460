//! A person's profile (C2: picture reference, professional credentials, practice
//! information) and preferences (U1: language, time zone, units, theme, reminders),
//! as parsed values: once built, each is valid.
//!
//! Both are replaced whole by their owner. The profile identifies its owner (a
//! licence number, a photo) and is sealed at rest; preferences identify nobody.

use serde::{Deserialize, Serialize};

use crate::values::InvalidValue;

const fn invalid(field: &'static str, rule: &'static str) -> InvalidValue {
    InvalidValue { field, rule }
}

/// Trims `raw` and checks it is 1 to `max` characters without control characters.
fn text(
    field: &'static str,
    raw: &str,
    max: usize,
    rule: &'static str,
) -> Result<String, InvalidValue> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(invalid(field, rule));
    }
    if trimmed.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

/// A reference to a profile picture: an `https` URL of at most 2,048 characters,
/// with a host, no credentials and no spaces. Custodia stores the reference, never
/// the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PictureRef(String);

impl PictureRef {
    /// Parses a picture reference.
    ///
    /// # Errors
    /// [`InvalidValue`] naming the rule.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        const RULE: &str = "must be an https URL of at most 2048 characters, without credentials";
        let url = raw.trim();
        let rest = url
            .strip_prefix("https://")
            .ok_or(invalid("picture_url", RULE))?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host_ok = !authority.is_empty()
            && !authority.contains('@')
            && authority
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
        if url.len() > 2048 || !host_ok || url.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid("picture_url", RULE));
        }
        Ok(Self(url.to_owned()))
    }

    /// The URL.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One professional credential: a qualification or licence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfessionalCredential {
    /// E.g. "Doctor of Physical Therapy" (1 to 100 characters).
    pub title: String,
    /// Who issued it, e.g. a licensing board (at most 200 characters).
    pub issuer: Option<String>,
    /// The licence or registration number (at most 64 characters).
    pub licence_number: Option<String>,
}

impl ProfessionalCredential {
    /// Parses one credential.
    ///
    /// # Errors
    /// [`InvalidValue`] naming the field and rule.
    pub fn parse(
        title: &str,
        issuer: Option<&str>,
        licence_number: Option<&str>,
    ) -> Result<Self, InvalidValue> {
        Ok(Self {
            title: text(
                "credentials.title",
                title,
                100,
                "must be at most 100 characters",
            )?,
            issuer: issuer
                .map(|i| {
                    text(
                        "credentials.issuer",
                        i,
                        200,
                        "must be at most 200 characters",
                    )
                })
                .transpose()?,
            licence_number: licence_number
                .map(|n| {
                    text(
                        "credentials.licence_number",
                        n,
                        64,
                        "must be at most 64 characters",
                    )
                })
                .transpose()?,
        })
    }
}

/// A person's profile (C2). Every part is optional; an empty profile is the default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Profile {
    /// Their picture.
    pub picture: Option<PictureRef>,
    /// Their professional credentials, at most [`Profile::MAX_CREDENTIALS`].
    pub credentials: Vec<ProfessionalCredential>,
    /// About their practice: address, hours, specialties (at most 2,000 characters).
    pub practice_information: Option<String>,
}

impl Profile {
    /// The most credentials a profile lists.
    pub const MAX_CREDENTIALS: usize = 20;

    /// Builds a profile from parsed parts, checking the whole.
    ///
    /// # Errors
    /// [`InvalidValue`] naming the field and rule.
    pub fn new(
        picture: Option<PictureRef>,
        credentials: Vec<ProfessionalCredential>,
        practice_information: Option<&str>,
    ) -> Result<Self, InvalidValue> {
        if credentials.len() > Self::MAX_CREDENTIALS {
            return Err(invalid("credentials", "must list at most 20 credentials"));
        }
        Ok(Self {
            picture,
            credentials,
            practice_information: practice_information
                .map(|p| {
                    text(
                        "practice_information",
                        p,
                        2000,
                        "must be at most 2000 characters",
                    )
                })
                .transpose()?,
        })
    }
}

/// A BCP 47 language tag of the common form: a 2 or 3 letter language, optionally
/// a 2 letter region (`en`, `en-GB`, `pt-BR`). Stored as typed, normalised case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LanguageTag(String);

impl LanguageTag {
    /// Parses a tag.
    ///
    /// # Errors
    /// [`InvalidValue`] naming the rule.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        const RULE: &str = "must be a language tag such as en or en-GB";
        let (language, region) = match raw.split_once('-') {
            Some((l, r)) => (l, Some(r)),
            None => (raw, None),
        };
        let language_ok =
            (2..=3).contains(&language.len()) && language.chars().all(|c| c.is_ascii_alphabetic());
        let region_ok =
            region.is_none_or(|r| r.len() == 2 && r.chars().all(|c| c.is_ascii_alphabetic()));
        if !(language_ok && region_ok) {
            return Err(invalid("language", RULE));
        }
        let mut tag = language.to_ascii_lowercase();
        if let Some(region) = region {
            tag.push('-');
            tag.push_str(&region.to_ascii_uppercase());
        }
        Ok(Self(tag))
    }

    /// The tag.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An IANA time-zone name (`UTC`, `Europe/London`, `America/Argentina/Buenos_Aires`).
/// The syntax is checked here; the name is resolved by whoever formats times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TimeZoneName(String);

impl TimeZoneName {
    /// The top-level areas of the IANA database.
    const AREAS: [&'static str; 11] = [
        "Africa",
        "America",
        "Antarctica",
        "Arctic",
        "Asia",
        "Atlantic",
        "Australia",
        "Etc",
        "Europe",
        "Indian",
        "Pacific",
    ];

    /// Parses a time-zone name.
    ///
    /// # Errors
    /// [`InvalidValue`] naming the rule.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        const RULE: &str = "must be an IANA time zone such as UTC or Europe/London";
        if raw == "UTC" {
            return Ok(Self(raw.to_owned()));
        }
        let mut parts = raw.split('/');
        let area_ok = parts.next().is_some_and(|area| Self::AREAS.contains(&area));
        let places: Vec<&str> = parts.collect();
        let places_ok = (1..=2).contains(&places.len())
            && places.iter().all(|p| {
                (1..=30).contains(&p.len())
                    && p.starts_with(|c: char| c.is_ascii_uppercase())
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-+".contains(c))
            });
        if area_ok && places_ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(invalid("time_zone", RULE))
        }
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Units for measurements shown to the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Units {
    /// Kilograms, centimetres.
    #[default]
    Metric,
    /// Pounds, inches.
    Imperial,
}

/// The interface theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    /// Follow the device.
    #[default]
    System,
    /// Light.
    Light,
    /// Dark.
    Dark,
}

/// A person's preferences (U1). Marketing choices are not here: they are consents,
/// kept by the consent context; transactional notices cannot be turned off (U3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    /// Interface language.
    pub language: LanguageTag,
    /// Time zone for showing times.
    pub time_zone: TimeZoneName,
    /// Measurement units.
    pub units: Units,
    /// Interface theme.
    pub theme: Theme,
    /// Whether to be reminded of assigned exercises.
    pub exercise_reminders: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            language: LanguageTag("en".to_owned()),
            time_zone: TimeZoneName("UTC".to_owned()),
            units: Units::default(),
            theme: Theme::default(),
            exercise_reminders: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picture_refs_must_be_https_without_credentials() {
        assert!(PictureRef::parse("https://cdn.example.com/p/1.jpg").is_ok());
        for bad in [
            "http://cdn.example.com/p.jpg",
            "https://user:pw@example.com/p.jpg",
            "https:///p.jpg",
            "https://exa mple.com/p.jpg",
            "javascript:alert(1)",
        ] {
            assert_eq!(
                PictureRef::parse(bad).map_err(|e| e.field),
                Err("picture_url"),
                "{bad}"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert!(PictureRef::parse(&long).is_err());
    }

    #[test]
    fn language_tags_are_normalised() {
        assert_eq!(
            LanguageTag::parse("EN-gb").map(|t| t.0),
            Ok("en-GB".to_owned())
        );
        assert_eq!(LanguageTag::parse("fil").map(|t| t.0), Ok("fil".to_owned()));
        for bad in ["", "e", "english", "en-", "en-GBR", "en_GB", "e1"] {
            assert!(LanguageTag::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_zones_follow_the_iana_shape() {
        for good in [
            "UTC",
            "Europe/London",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
        ] {
            assert!(TimeZoneName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "utc",
            "Europe",
            "Mars/Olympus",
            "Europe/london",
            "Europe/London/A/B",
            "../etc",
        ] {
            assert!(TimeZoneName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_profile_holds_at_most_twenty_credentials_and_bounded_text() {
        let one =
            ProfessionalCredential::parse("DPT", Some("Board"), Some("PT-123")).expect("valid");
        assert!(Profile::new(None, vec![one.clone(); 20], Some("Mon-Fri")).is_ok());
        assert_eq!(
            Profile::new(None, vec![one; 21], None).map_err(|e| e.field),
            Err("credentials")
        );
        assert_eq!(
            Profile::new(None, vec![], Some(&"x".repeat(2001))).map_err(|e| e.field),
            Err("practice_information")
        );
        assert_eq!(
            ProfessionalCredential::parse(" ", None, None).map_err(|e| e.field),
            Err("credentials.title")
        );
    }
}
