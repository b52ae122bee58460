//! Validated clinical values. Each type can only hold a valid value: parsing is
//! the one way in, and its error names the rule that was broken (never the input,
//! which may be health data).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a value was refused. The message names the rule, never the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// A code system other than ICD-10 and SNOMED CT.
    #[error("the code system must be `icd-10` or `snomed-ct`")]
    UnknownCodeSystem,
    /// An ICD-10 code not of the form `A00` or `A00.0` (up to four characters after the dot).
    #[error("an ICD-10 code is a letter, two characters and an optional extension, e.g. `M54.5`")]
    BadIcd10,
    /// A SNOMED CT identifier that is not 6 to 18 digits with a valid partition and
    /// Verhoeff check digit.
    #[error("a SNOMED CT identifier is 6 to 18 digits with a valid check digit")]
    BadSnomed,
    /// Text that is blank, too long, or holds control characters.
    #[error("text must be 1 to {0} characters, without control characters")]
    BadText(usize),
    /// A pain score outside 0 to 10.
    #[error("pain is scored from 0 to 10")]
    PainOutOfRange,
    /// An exercise prescription outside its limits.
    #[error("{0}")]
    BadPrescription(&'static str),
    /// A time zone that is not an IANA time zone name.
    #[error("the time zone must be an IANA name such as `Europe/Berlin`")]
    UnknownTimeZone,
    /// A link that is not an absolute `https` URL of at most 2,000 characters.
    #[error("a link must be an absolute https URL of at most 2000 characters")]
    BadUrl,
}

/// A clinical code system a condition may be coded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeSystem {
    /// ICD-10 (WHO, and its national modifications such as ICD-10-CM).
    Icd10,
    /// SNOMED CT.
    SnomedCt,
}

impl CodeSystem {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Icd10 => "icd-10",
            Self::SnomedCt => "snomed-ct",
        }
    }

    /// The FHIR `Coding.system` URI.
    #[must_use]
    pub const fn fhir_uri(self) -> &'static str {
        match self {
            Self::Icd10 => "http://hl7.org/fhir/sid/icd-10",
            Self::SnomedCt => "http://snomed.info/sct",
        }
    }

    /// Parses the machine name or the FHIR URI.
    ///
    /// # Errors
    /// [`ValueError::UnknownCodeSystem`].
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        [Self::Icd10, Self::SnomedCt]
            .into_iter()
            .find(|c| c.as_str() == s || c.fhir_uri() == s)
            .ok_or(ValueError::UnknownCodeSystem)
    }
}

/// A code in a code system, checked against the system's syntax. A diagnosis code
/// is health data: `Debug` shows the system only.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Code {
    system: CodeSystem,
    code: String,
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Code({}, [redacted])", self.system.as_str())
    }
}

impl Code {
    /// Parses `code` in `system` (ICD-10 letters are upper-cased).
    ///
    /// # Errors
    /// [`ValueError::BadIcd10`] or [`ValueError::BadSnomed`].
    pub fn parse(system: CodeSystem, code: &str) -> Result<Self, ValueError> {
        let code = code.trim();
        let code = match system {
            CodeSystem::Icd10 => {
                let upper = code.to_ascii_uppercase();
                if !valid_icd10(&upper) {
                    return Err(ValueError::BadIcd10);
                }
                upper
            }
            CodeSystem::SnomedCt => {
                if !valid_sctid(code) {
                    return Err(ValueError::BadSnomed);
                }
                code.to_owned()
            }
        };
        Ok(Self { system, code })
    }

    /// The system.
    #[must_use]
    pub const fn system(&self) -> CodeSystem {
        self.system
    }

    /// The code.
    #[must_use]
    pub fn code(&self) -> &str {
        &self.code
    }
}

/// `A00`, `A00.0` to `A00.0000`: a letter, a digit, a digit or letter (`M1A`,
/// `C4A` exist in ICD-10-CM), then an optional dot and one to four digits or
/// letters. The U chapter is allowed: WHO assigns emergency codes there (`U07.1`).
fn valid_icd10(s: &str) -> bool {
    let (category, extension) = match s.split_once('.') {
        Some((c, e)) => (c, Some(e)),
        None => (s, None),
    };
    let c = category.as_bytes();
    let category_ok = c.len() == 3
        && c[0].is_ascii_uppercase()
        && c[1].is_ascii_digit()
        && c[2].is_ascii_alphanumeric();
    let extension_ok = extension.is_none_or(|e| {
        (1..=4).contains(&e.len())
            && e.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    });
    category_ok && extension_ok
}

/// A SNOMED CT identifier: 6 to 18 digits, no leading zero, a partition identifier
/// (the two digits before the check digit) of a concept, description or
/// relationship (short `00`-`02` or long `10`-`12` format), and a Verhoeff check digit.
fn valid_sctid(s: &str) -> bool {
    let b = s.as_bytes();
    if !(6..=18).contains(&b.len()) || b[0] == b'0' || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let partition = &s[s.len() - 3..s.len() - 1];
    matches!(partition, "00" | "01" | "02" | "10" | "11" | "12") && verhoeff_valid(b)
}

/// The Verhoeff checksum over ASCII digits (the last one the check digit).
fn verhoeff_valid(digits: &[u8]) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    let mut c = 0_u8;
    for (i, d) in digits.iter().rev().enumerate() {
        c = D[usize::from(c)][usize::from(P[i % 8][usize::from(d - b'0')])];
    }
    c == 0
}

/// Free text of a clinical record, 1 to `MAX` characters after trimming, with no
/// control characters but line breaks and tabs. Never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Text<const MAX: usize>(String);

impl<const MAX: usize> Text<MAX> {
    /// Parses `s`.
    ///
    /// # Errors
    /// [`ValueError::BadText`] with the limit.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let s = s.trim();
        let count = s.chars().count();
        let clean = s.chars().all(|c| !c.is_control() || c == '\n' || c == '\t');
        if count == 0 || count > MAX || !clean {
            return Err(ValueError::BadText(MAX));
        }
        Ok(Self(s.to_owned()))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> fmt::Debug for Text<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Text([{} chars, redacted])", self.0.chars().count())
    }
}

/// A pain score reported with an adherence log: 0 (none) to 10 (worst imaginable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PainScore(u8);

impl PainScore {
    /// Parses a reported score.
    ///
    /// # Errors
    /// [`ValueError::PainOutOfRange`].
    pub fn new(score: i64) -> Result<Self, ValueError> {
        u8::try_from(score)
            .ok()
            .filter(|s| *s <= 10)
            .map(Self)
            .ok_or(ValueError::PainOutOfRange)
    }

    /// The score.
    #[must_use]
    pub const fn get(self) -> u8 {
        self.0
    }
}

/// How one exercise of a program is to be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prescription {
    /// Sets, 1 to 20.
    pub sets: u8,
    /// Repetitions per set, 0 (a hold) to 200.
    pub repetitions: u16,
    /// Seconds each repetition is held, 0 to 600.
    pub hold_seconds: u16,
    /// Sessions per week, 1 to 21.
    pub per_week: u8,
}

impl Prescription {
    /// Checks each number against its limit (documented on the fields).
    ///
    /// # Errors
    /// [`ValueError::BadPrescription`] naming the first out of range.
    pub fn new(
        sets: i64,
        repetitions: i64,
        hold_seconds: i64,
        per_week: i64,
    ) -> Result<Self, ValueError> {
        let within = |v: i64, lo: i64, hi: i64, rule| {
            if (lo..=hi).contains(&v) {
                Ok(v)
            } else {
                Err(ValueError::BadPrescription(rule))
            }
        };
        let sets = within(sets, 1, 20, "`sets` must be 1 to 20")?;
        let repetitions = within(repetitions, 0, 200, "`repetitions` must be 0 to 200")?;
        let hold_seconds = within(hold_seconds, 0, 600, "`hold_seconds` must be 0 to 600")?;
        let per_week = within(per_week, 1, 21, "`per_week` must be 1 to 21")?;
        if repetitions == 0 && hold_seconds == 0 {
            return Err(ValueError::BadPrescription(
                "an exercise needs repetitions or a hold time",
            ));
        }
        // Each value was just checked to fit its type.
        let narrow = |v: i64| u16::try_from(v).unwrap_or(u16::MAX);
        Ok(Self {
            sets: u8::try_from(sets).unwrap_or(u8::MAX),
            repetitions: narrow(repetitions),
            hold_seconds: narrow(hold_seconds),
            per_week: u8::try_from(per_week).unwrap_or(u8::MAX),
        })
    }
}

/// A time zone, by its IANA name (`Europe/Berlin`, `America/New_York`, `UTC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(chrono_tz::Tz);

impl TimeZone {
    /// Parses an IANA name.
    ///
    /// # Errors
    /// [`ValueError::UnknownTimeZone`].
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        chrono_tz::Tz::from_str(s)
            .map(Self)
            .map_err(|_| ValueError::UnknownTimeZone)
    }

    /// The IANA name.
    #[must_use]
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The zone, for converting times.
    #[must_use]
    pub const fn tz(self) -> chrono_tz::Tz {
        self.0
    }
}

/// An absolute `https` link (a telehealth room, an exercise video), at most 2,000
/// characters. Plain `http` is refused: a link may carry a meeting secret.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpsUrl(String);

impl HttpsUrl {
    /// The longest link accepted.
    pub const MAX: usize = 2000;

    /// Parses `s`.
    ///
    /// # Errors
    /// [`ValueError::BadUrl`].
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let s = s.trim();
        if s.len() > Self::MAX {
            return Err(ValueError::BadUrl);
        }
        let url = url::Url::parse(s).map_err(|_| ValueError::BadUrl)?;
        if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
            return Err(ValueError::BadUrl);
        }
        Ok(Self(url.into()))
    }

    /// The link.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for HttpsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HttpsUrl([redacted])")
    }
}

// Serde: the stored form of every value is its plain form, and reading it back goes
// through the same parser as the API, so a stored record is always a valid one.

fn parsed<'de, D, T, R>(
    deserializer: D,
    parse: impl FnOnce(R) -> Result<T, ValueError>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    R: Deserialize<'de>,
{
    let raw = R::deserialize(deserializer)?;
    parse(raw).map_err(serde::de::Error::custom)
}

impl<const MAX: usize> Serialize for Text<MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Text<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parsed(deserializer, |s: String| Self::parse(&s))
    }
}

impl Serialize for CodeSystem {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CodeSystem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parsed(deserializer, |s: String| Self::parse(&s))
    }
}

#[derive(Serialize, Deserialize)]
struct CodeForm {
    system: CodeSystem,
    code: String,
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        CodeForm {
            system: self.system(),
            code: self.code().to_owned(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parsed(deserializer, |f: CodeForm| Self::parse(f.system, &f.code))
    }
}

impl Serialize for PainScore {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.0)
    }
}

impl<'de> Deserialize<'de> for PainScore {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parsed(deserializer, Self::new)
    }
}

#[derive(Serialize, Deserialize)]
struct PrescriptionForm {
    sets: i64,
    repetitions: i64,
    hold_seconds: i64,
    per_week: i64,
}

impl Serialize for Prescription {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        PrescriptionForm {
            sets: self.sets.into(),
            repetitions: self.repetitions.into(),
            hold_seconds: self.hold_seconds.into(),
            per_week: self.per_week.into(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Prescription {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parsed(deserializer, |f: PrescriptionForm| {
            Self::new(f.sets, f.repetitions, f.hold_seconds, f.per_week)
        })
    }
}

impl Serialize for TimeZone {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parsed(deserializer, |s: String| Self::parse(&s))
    }
}

impl Serialize for HttpsUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for HttpsUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parsed(deserializer, |s: String| Self::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_systems_are_named_or_given_by_their_fhir_uri_and_nothing_else() {
        assert_eq!(CodeSystem::parse("icd-10"), Ok(CodeSystem::Icd10));
        assert_eq!(
            CodeSystem::parse("http://snomed.info/sct"),
            Ok(CodeSystem::SnomedCt)
        );
        for unknown in ["loinc", "ICD-10", "", "http://loinc.org"] {
            assert_eq!(
                CodeSystem::parse(unknown),
                Err(ValueError::UnknownCodeSystem),
                "{unknown}"
            );
        }
    }

    #[test]
    fn icd10_codes_follow_the_category_and_extension_shape() {
        for ok in [
            "M54.5", "m54.5", "S72.001A", "J45", "C50.911", "E11.9", "M1A.0", "U07.1",
        ] {
            assert!(Code::parse(CodeSystem::Icd10, ok).is_ok(), "{ok}");
        }
        assert_eq!(
            Code::parse(CodeSystem::Icd10, "m54.5").map(|c| c.code().to_owned()),
            Ok("M54.5".to_owned())
        );
        for bad in [
            "",
            "M5",
            "545",
            "1M54",
            "M54.",
            "M54.12345",
            "M54-5",
            "M54.1.2",
            "MA4",
        ] {
            assert_eq!(
                Code::parse(CodeSystem::Icd10, bad),
                Err(ValueError::BadIcd10),
                "{bad}"
            );
        }
    }

    #[test]
    fn snomed_identifiers_need_a_valid_partition_and_verhoeff_check_digit() {
        // Real concept ids: low back pain, asthma, diabetes mellitus type 2, the root.
        for ok in ["279039007", "195967001", "44054006", "138875005"] {
            assert!(Code::parse(CodeSystem::SnomedCt, ok).is_ok(), "{ok}");
        }
        for bad in [
            "279039008",           // wrong check digit
            "279039070",           // digits swapped: Verhoeff catches transpositions
            "12345",               // too short
            "0279039007",          // leading zero
            "27903900A",           // not digits
            "1234567890123456789", // too long
        ] {
            assert_eq!(
                Code::parse(CodeSystem::SnomedCt, bad),
                Err(ValueError::BadSnomed),
                "{bad}"
            );
        }
    }

    #[test]
    fn text_is_trimmed_bounded_and_never_printed() {
        type Note = Text<10>;
        assert_eq!(
            Note::parse("  ok  ").map(|t| t.as_str().to_owned()),
            Ok("ok".to_owned())
        );
        assert!(Note::parse("line\nline").is_ok());
        assert_eq!(Note::parse("   "), Err(ValueError::BadText(10)));
        assert_eq!(Note::parse("eleven char"), Err(ValueError::BadText(10)));
        assert_eq!(Note::parse("bell\u{7}"), Err(ValueError::BadText(10)));
        let secret = Note::parse("HIV+").expect("valid");
        assert!(!format!("{secret:?}").contains("HIV"));
    }

    #[test]
    fn pain_is_scored_from_zero_to_ten() {
        assert_eq!(PainScore::new(0).map(PainScore::get), Ok(0));
        assert_eq!(PainScore::new(10).map(PainScore::get), Ok(10));
        for bad in [-1, 11, 255, 256, i64::MIN] {
            assert_eq!(
                PainScore::new(bad),
                Err(ValueError::PainOutOfRange),
                "{bad}"
            );
        }
    }

    #[test]
    fn prescriptions_refuse_negative_and_empty_exercises() {
        let p = Prescription::new(3, 10, 5, 7).expect("valid");
        assert_eq!(
            (p.sets, p.repetitions, p.hold_seconds, p.per_week),
            (3, 10, 5, 7)
        );
        assert!(
            Prescription::new(1, 0, 30, 1).is_ok(),
            "a hold with no repetitions"
        );
        assert_eq!(
            Prescription::new(3, -1, 0, 7),
            Err(ValueError::BadPrescription(
                "`repetitions` must be 0 to 200"
            ))
        );
        assert!(Prescription::new(0, 10, 0, 7).is_err());
        assert!(Prescription::new(3, 10, 0, 22).is_err());
        assert!(Prescription::new(3, 0, 0, 7).is_err());
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert_eq!(
            TimeZone::parse("Europe/Berlin").map(TimeZone::name),
            Ok("Europe/Berlin")
        );
        for bad in ["", "Mars/Olympus", "+02:00", "europe/berlin "] {
            assert_eq!(
                TimeZone::parse(bad),
                Err(ValueError::UnknownTimeZone),
                "{bad}"
            );
        }
    }

    #[test]
    fn links_are_absolute_https_only() {
        assert!(HttpsUrl::parse("https://meet.example.org/room/42?k=s").is_ok());
        let long = format!("https://example.org/{}", "a".repeat(HttpsUrl::MAX));
        for bad in [
            "http://example.org",
            "example.org/x",
            "https://",
            "javascript:alert(1)",
            "",
            &long,
        ] {
            assert_eq!(HttpsUrl::parse(bad), Err(ValueError::BadUrl), "{bad}");
        }
    }

    #[test]
    fn stored_values_are_parsed_again_when_read() {
        let code: Code =
            serde_json::from_str(r#"{"system":"icd-10","code":"M54.5"}"#).expect("valid");
        assert_eq!(
            serde_json::to_string(&code).expect("valid"),
            r#"{"system":"icd-10","code":"M54.5"}"#
        );
        assert!(serde_json::from_str::<Code>(r#"{"system":"loinc","code":"1"}"#).is_err());
        assert!(serde_json::from_str::<PainScore>("11").is_err());
        assert!(serde_json::from_str::<Text<3>>(r#""abcd""#).is_err());
        let p: Prescription =
            serde_json::from_str(r#"{"sets":3,"repetitions":10,"hold_seconds":0,"per_week":7}"#)
                .expect("valid");
        assert_eq!(p.repetitions, 10);
        assert!(
            serde_json::from_str::<Prescription>(
                r#"{"sets":3,"repetitions":-1,"hold_seconds":0,"per_week":7}"#
            )
            .is_err()
        );
    }
}
