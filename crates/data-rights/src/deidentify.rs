//! HIPAA Safe Harbor de-identification (45 CFR 164.514(b)(2)) of one subject's
//! exported records: what research and analytics may use (U5), and what may be kept
//! after the person's data is erased (R3).
//!
//! # Input
//!
//! [`deidentify`] reads one subject's records as the contexts export them through
//! `kernel::PersonalData::export` (see `clinical::personal_data` for the schema), all
//! contexts' records together, and a [`ResearchConsent`]: the consent gate's answers
//! for the purpose the extract serves (`Purpose::Research`, or `Purpose::Analytics`),
//! one per category of [`RESEARCH_CATEGORIES`]. A record of a category the gate did
//! not allow is left out; a subject for whom it allowed none of them is left out
//! whole (`None`). Asking the gate, and auditing the extract, is the caller's work:
//! this module is pure.
//!
//! # Output
//!
//! A [`ResearchSubject`]:
//!
//! | Field | Shape | From |
//! |---|---|---|
//! | `research_id` | UUID | the caller: random for each extract, see [`deidentify`] |
//! | `age` | whole years `0`..=`89`, or the string `"90+"`; `null` if unknown | identity's `date_of_birth`, age at `as_of` |
//! | `sex` | `"male"`, `"female"`, `"other"`, `"unknown"` or `null` | clinical `demographics` |
//! | `zip3` | three digits, `"000"` for a restricted prefix, or `null` | clinical `demographics` address |
//! | `language` | a 2 or 3 letter language code, lower case, or `null` | clinical `demographics` |
//! | `records` | [`ResearchRecord`]s `{kind, year, data}` in input order | the records below |
//!
//! The birth year is never given: with the age at a known date it would place the
//! birthday before or after that day (an element of the date other than the year),
//! and for a person over 89 the year itself is an identifier. The age alone carries
//! what research needs.
//!
//! A record's `year` is the year it was recorded (`created_at`). Its `data` is built
//! from an allow-list: each kind keeps only the named coded or numeric fields below,
//! every key always present (`null` when absent or not of the expected shape), so a
//! kind has one schema. Anything else is dropped: every identifier (record, user,
//! organisation, program, exercise ids), every person (`created_by`, `provider`,
//! `sender`...), every typed text (condition text, notes, messages, reasons, titles,
//! goals, comments, reactions, locations, statements of disagreement: they can hold
//! names, numbers and addresses), links, time zones (an IANA zone such as
//! `America/North_Dakota/Center` names a county), earlier versions, and every date
//! but its year.
//!
//! | Kind | `data` |
//! |---|---|
//! | `condition` | `code_system` (`icd-10`, `snomed-ct`), `code`, `status`, `onset_year` |
//! | `medication` | `name` (a term, see below), `status` |
//! | `allergy` | `substance` (a term), `severity`, `status` |
//! | `history_entry` | `occurred_year` |
//! | `status_note`, `message` | nothing: the kind and year only, so they can be counted |
//! | `treatment_plan` | `status`, `goals` and `interventions` (how many) |
//! | `exercise_program` | `exercises` (how many), `items` (each `sets`, `repetitions`, `hold_seconds`, `per_week`), `starts_year`, `ends_year` |
//! | `adherence_log` | `performed_year`, `completed` (how many exercises), `pain` (0 to 10) |
//! | `appointment` | `status`, `starts_year`, `duration_minutes`, `telehealth` (whether it had a link) |
//! | `amendment` | `target_kind`, `status`, `decided_year` |
//!
//! Coded values are kept only when they are one of the schema's names (statuses,
//! severities, kinds) or have the syntax of their code system (ICD-10, a SNOMED CT
//! identifier); numbers only when they are small counts (at most
//! [`MAX_COUNT`]), since a long number may be a record or phone number. Medication
//! names and allergy substances are the only typed words kept, because research on
//! medications and allergies needs them; they are kept only when they look like a
//! term (at most 100 characters of letters, digits, spaces and `-/.,%()+'`, more
//! letters than digits, no run of more than 4 digits), which drops an email, a link,
//! a phone, an IP address or a record number typed there, but cannot tell a person's
//! name from a drug's.
//!
//! Not read at all: `demographics` and `date_of_birth` other than as above, care-team
//! memberships, break-glass grants, the `fhir_bundle` (the same holdings, with the
//! Patient's name, birth date and address), and every other context's records
//! (accounts, contact details, sessions with IP addresses and devices, consents,
//! billing).
//!
//! # Dates and ages
//!
//! Every date and instant becomes its year (an instant's year in UTC). A year at or
//! before `as_of`'s year minus 90 is withheld (`null`) wherever it appears: it
//! shows the person was alive then, so is "indicative of" an age over 89. Ages over
//! 89 are the one group `"90+"` (164.514(b)(2)(i)(C)).
//!
//! # ZIP codes
//!
//! Only a US ZIP code is cut to its first three digits (164.514(b)(2)(i)(B)), and
//! only when the address's `country` names the United States (`US`, `USA`, `United
//! States`, `United States of America`, with or without dots). The rule is written for
//! US ZIP codes and the population table behind it is the US Census: a five-digit
//! German, French, Italian or Mexican postcode cut to three digits has no such table,
//! and a postcode whose country is not given may be one of them, so every other postal
//! code is dropped entirely. A prefix of [`RESTRICTED_ZIP3`], where the 2000 Census
//! counted 20,000 people or fewer, becomes `"000"`.
//!
//! # What remains the caller's
//!
//! Safe Harbor also asks that the covered entity have no actual knowledge that what
//! is left could identify the person (164.514(b)(2)(ii)): small groups in an extract
//! (a rare code in a small ZIP3) are for the extract's reviewer. A mapping from
//! `research_id` to the person, if one is kept, is the re-identification code of
//! 164.514(c) and must never be disclosed.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use kernel::personal_data::ExportedRecord;
use kernel::{ConsentDecision, DataCategory};
use serde::{Serialize, Serializer};
use serde_json::{Value, json};
use uuid::Uuid;

/// The 18 identifiers of the Safe Harbor method (45 CFR 164.514(b)(2)(i)(A)–(R)),
/// in the rule's order. How each is handled here:
///
/// | | Identifier | Where Custodia's exports hold it | Here |
/// |---|---|---|---|
/// | A | Names | identity `account`; the FHIR Patient; typed text | identity and FHIR not read; typed text dropped |
/// | B | Geographic subdivisions smaller than a state | `demographics` address; appointment location and time zone | ZIP cut to 3 digits (US, population rule) or dropped; the rest dropped |
/// | C | Dates (except year); ages over 89 | birth date; every `*_at`, `*_on` and onset | years only; ages over 89 are `"90+"`, no birth year, early years withheld |
/// | D | Telephone numbers | identity contact; typed text | not read; typed text dropped |
/// | E | Fax numbers | typed text only | dropped |
/// | F | Email addresses | identity contact; typed text | not read; typed text dropped |
/// | G | Social security numbers | typed text only | dropped |
/// | H | Medical record numbers | record ids; typed text | dropped |
/// | I | Health plan beneficiary numbers | typed text only | dropped |
/// | J | Account numbers | user, organisation and billing ids | dropped |
/// | K | Certificate and license numbers | identity profile; typed text | not read; dropped |
/// | L | Vehicle identifiers and serial numbers | typed text only | dropped |
/// | M | Device identifiers and serial numbers | identity sessions (user agent) | not read |
/// | N | Web URLs | telehealth links; exercise media | dropped (`telehealth` says only whether there was one) |
/// | O | IP addresses | identity sessions and security events | not read |
/// | P | Biometric identifiers | none held | — |
/// | Q | Full-face photographs | identity profile picture reference | not read |
/// | R | Any other unique number, characteristic or code | every UUID (records, programs, exercises, providers) | dropped; `research_id` is random, not derived (164.514(c)) |
pub const IDENTIFIERS: [&str; 18] = [
    "names",
    "geographic subdivisions smaller than a state, including street address, city, county, precinct and ZIP code",
    "all elements of dates (except year) directly related to an individual, and all ages over 89",
    "telephone numbers",
    "fax numbers",
    "email addresses",
    "social security numbers",
    "medical record numbers",
    "health plan beneficiary numbers",
    "account numbers",
    "certificate and license numbers",
    "vehicle identifiers and serial numbers, including license plate numbers",
    "device identifiers and serial numbers",
    "web universal resource locators (URLs)",
    "internet protocol (IP) addresses",
    "biometric identifiers, including finger and voice prints",
    "full-face photographs and any comparable images",
    "any other unique identifying number, characteristic or code",
];

/// The three-digit ZIP prefixes whose areas held 20,000 people or fewer in the 2000
/// Census, reported as `"000"` (45 CFR 164.514(b)(2)(i)(B); HHS, "Guidance Regarding
/// Methods for De-identification of Protected Health Information", 2012).
pub const RESTRICTED_ZIP3: [&str; 17] = [
    "036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831", "878",
    "879", "884", "890", "893",
];

/// The oldest age given in years; older people are one group, `"90+"`.
pub const OLDEST_AGE: u8 = 89;

/// The largest number kept as a count (exercises, sets, minutes...): anything larger
/// is no count of the export schema and may be an identifying number.
pub const MAX_COUNT: u64 = 1_000;

/// The categories [`deidentify`] reads: the ones to ask the consent gate about.
pub const RESEARCH_CATEGORIES: [DataCategory; 8] = [
    DataCategory::Identity,
    DataCategory::Profile,
    DataCategory::HealthRecord,
    DataCategory::Medications,
    DataCategory::TreatmentPlans,
    DataCategory::ExercisePrograms,
    DataCategory::Appointments,
    DataCategory::Communications,
];

const SEXES: [&str; 4] = ["male", "female", "other", "unknown"];
const CONDITION_STATUSES: [&str; 6] = [
    "active",
    "recurrence",
    "relapse",
    "inactive",
    "remission",
    "resolved",
];
const MEDICATION_STATUSES: [&str; 6] = [
    "active",
    "completed",
    "stopped",
    "on_hold",
    "intended",
    "entered_in_error",
];
const ALLERGY_STATUSES: [&str; 3] = ["active", "inactive", "resolved"];
const SEVERITIES: [&str; 3] = ["mild", "moderate", "severe"];
const PLAN_STATUSES: [&str; 5] = ["draft", "active", "on_hold", "completed", "revoked"];
const APPOINTMENT_STATUSES: [&str; 5] = ["booked", "arrived", "fulfilled", "cancelled", "noshow"];
const AMENDMENT_STATUSES: [&str; 3] = ["proposed", "accepted", "denied"];
const AMENDABLE_KINDS: [&str; 7] = [
    "demographics",
    "condition",
    "medication",
    "allergy",
    "history_entry",
    "status_note",
    "treatment_plan",
];
const US: [&str; 4] = ["US", "USA", "UNITEDSTATES", "UNITEDSTATESOFAMERICA"];
const MAX_TERM: usize = 100;

/// An age as Safe Harbor allows it: whole years up to 89, then one group.
/// Serialised as the number of years, or the string `"90+"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    /// Whole years, 0 to [`OLDEST_AGE`].
    Years(u8),
    /// 90 or older.
    NinetyOrOlder,
}

impl Age {
    /// The age on `day` of someone born on `born`, in whole years (a birthday counts
    /// from its own month and day, so 29 February in a common year is passed on
    /// 1 March); `None` if `born` is after `day`.
    #[must_use]
    pub fn on(born: NaiveDate, day: NaiveDate) -> Option<Self> {
        if born > day {
            return None;
        }
        let before_birthday = (day.month(), day.day()) < (born.month(), born.day());
        let years = day.year() - born.year() - i32::from(before_birthday);
        match u8::try_from(years) {
            Ok(y) if y <= OLDEST_AGE => Some(Self::Years(y)),
            _ => Some(Self::NinetyOrOlder),
        }
    }
}

impl Serialize for Age {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Years(y) => serializer.serialize_u8(*y),
            Self::NinetyOrOlder => serializer.serialize_str("90+"),
        }
    }
}

/// The categories the consent gate allowed for the extract's purpose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResearchConsent {
    allowed: Vec<DataCategory>,
}

impl ResearchConsent {
    /// From the gate's answers, one per category, to queries for the extract's
    /// purpose (`Purpose::Research`, or `Purpose::Analytics`) at the extract's time.
    /// A category denied in any answer is not allowed.
    #[must_use]
    pub fn from_decisions<'a, I>(answers: I) -> Self
    where
        I: IntoIterator<Item = (DataCategory, &'a ConsentDecision)>,
    {
        let mut allowed = Vec::new();
        let mut denied = Vec::new();
        for (category, decision) in answers {
            let list = if decision.is_allowed() {
                &mut allowed
            } else {
                &mut denied
            };
            if !list.contains(&category) {
                list.push(category);
            }
        }
        allowed.retain(|c| !denied.contains(c));
        Self { allowed }
    }

    /// Whether `category` may be used.
    #[must_use]
    pub fn allows(&self, category: DataCategory) -> bool {
        self.allowed.contains(&category)
    }
}

/// One de-identified record. `Debug` shows the kind and year only.
#[derive(Clone, PartialEq, Serialize)]
pub struct ResearchRecord {
    /// The record's kind, e.g. `condition`.
    pub kind: String,
    /// The year it was recorded, unless withheld (see the module doc).
    pub year: Option<i32>,
    /// Its allow-listed fields (see the module doc's table).
    pub data: Value,
}

impl std::fmt::Debug for ResearchRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResearchRecord")
            .field("kind", &self.kind)
            .field("year", &self.year)
            .finish_non_exhaustive()
    }
}

/// One subject, de-identified. `Debug` shows the research id and the number of
/// records only.
#[derive(Clone, PartialEq, Serialize)]
pub struct ResearchSubject {
    /// A random id for this extract, never derived from any id of the person.
    pub research_id: Uuid,
    /// The age at the extract's `as_of`.
    pub age: Option<Age>,
    /// Administrative sex.
    pub sex: Option<String>,
    /// The first three digits of a US ZIP code, `"000"` for a restricted prefix.
    pub zip3: Option<String>,
    /// The preferred language's code (`es` for `es-MX`).
    pub language: Option<String>,
    /// The records.
    pub records: Vec<ResearchRecord>,
}

impl std::fmt::Debug for ResearchSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResearchSubject")
            .field("research_id", &self.research_id)
            .field("records", &self.records.len())
            .finish_non_exhaustive()
    }
}

/// One subject's `records` (every context's export), de-identified by Safe Harbor at
/// `as_of`, with only the categories `consent` allows; `None` when it allows none of
/// [`RESEARCH_CATEGORIES`].
///
/// `research_id` must be random for each extract (a version 4 UUID from a secure
/// random source, e.g. `uuid::Builder::from_random_bytes`), never derived from an id
/// of the person, and never a version 7 UUID, whose time order would follow the order
/// the subjects were read in.
#[must_use]
pub fn deidentify(
    records: &[ExportedRecord],
    as_of: DateTime<Utc>,
    research_id: Uuid,
    consent: &ResearchConsent,
) -> Option<ResearchSubject> {
    if !RESEARCH_CATEGORIES.iter().any(|c| consent.allows(*c)) {
        return None;
    }
    let years = Years::at(as_of);
    let mut subject = ResearchSubject {
        research_id,
        age: None,
        sex: None,
        zip3: None,
        language: None,
        records: Vec::new(),
    };
    let mut demographics_seen = false;
    for record in records.iter().filter(|r| consent.allows(r.category)) {
        match record.resource.kind {
            "date_of_birth" => {
                if subject.age.is_none() {
                    subject.age = day(&record.data["date_of_birth"])
                        .and_then(|born| Age::on(born, as_of.date_naive()));
                }
            }
            "demographics" if !demographics_seen => {
                demographics_seen = true;
                let body = &record.data["body"];
                subject.sex = one_of(&body["sex"], &SEXES).map(str::to_owned);
                subject.zip3 = zip3(&body["address"]);
                subject.language = language(&body["preferred_language"]);
            }
            kind => {
                if let Some(data) = research_data(kind, &record.data, years) {
                    subject.records.push(ResearchRecord {
                        kind: kind.to_owned(),
                        year: years.keep(record.created_at.year()),
                        data,
                    });
                }
            }
        }
    }
    Some(subject)
}

/// The allow-listed fields of a record of `kind`; `None` for a kind not allow-listed.
fn research_data(kind: &str, data: &Value, years: Years) -> Option<Value> {
    let body = &data["body"];
    Some(match kind {
        "condition" => {
            let (system, code) = code(&body["code"]).unzip();
            json!({
                "code_system": system,
                "code": code,
                "status": one_of(&body["status"], &CONDITION_STATUSES),
                "onset_year": years.of(&body["onset"]),
            })
        }
        "medication" => json!({
            "name": term(&body["name"]),
            "status": one_of(&body["status"], &MEDICATION_STATUSES),
        }),
        "allergy" => json!({
            "substance": term(&body["substance"]),
            "severity": one_of(&body["severity"], &SEVERITIES),
            "status": one_of(&body["status"], &ALLERGY_STATUSES),
        }),
        "history_entry" => json!({ "occurred_year": years.of(&body["occurred_on"]) }),
        "status_note" | "message" => json!({}),
        "treatment_plan" => json!({
            "status": one_of(&body["status"], &PLAN_STATUSES),
            "goals": count(&body["goals"]),
            "interventions": count(&body["interventions"]),
        }),
        "exercise_program" => {
            let items: Option<Vec<Value>> = body["items"].as_array().map(|items| {
                items
                    .iter()
                    .map(|item| {
                        let p = &item["prescription"];
                        json!({
                            "sets": small(&p["sets"]),
                            "repetitions": small(&p["repetitions"]),
                            "hold_seconds": small(&p["hold_seconds"]),
                            "per_week": small(&p["per_week"]),
                        })
                    })
                    .collect()
            });
            json!({
                "exercises": count(&body["items"]),
                "items": items,
                "starts_year": years.of(&body["starts_on"]),
                "ends_year": years.of(&body["ends_on"]),
            })
        }
        "adherence_log" => json!({
            "performed_year": years.of(&body["performed_on"]),
            "completed": count(&body["completed"]),
            "pain": body["pain"].as_u64().filter(|p| *p <= 10),
        }),
        "appointment" => json!({
            "status": one_of(&data["status"], &APPOINTMENT_STATUSES),
            "starts_year": years.of(&data["starts_at"]),
            "duration_minutes": minutes_between(&data["starts_at"], &data["ends_at"]),
            "telehealth": data["details"].get("telehealth_url").map(|u| !u.is_null()),
        }),
        "amendment" => json!({
            "target_kind": one_of(&body["target_kind"], &AMENDABLE_KINDS),
            "status": one_of(&body["status"], &AMENDMENT_STATUSES),
            "decided_year": years.of(&body["decided_at"]),
        }),
        _ => return None,
    })
}

/// Which years may be given: none at or before `as_of`'s year minus 90.
#[derive(Debug, Clone, Copy)]
struct Years {
    earliest: i32,
}

impl Years {
    fn at(as_of: DateTime<Utc>) -> Self {
        Self {
            earliest: as_of.year() - i32::from(OLDEST_AGE),
        }
    }

    fn keep(self, year: i32) -> Option<i32> {
        (year >= self.earliest).then_some(year)
    }

    /// The year of an RFC 3339 instant (in UTC) or an ISO 8601 day.
    fn of(self, value: &Value) -> Option<i32> {
        instant(value)
            .map(|t| t.year())
            .or_else(|| day(value).map(|d| d.year()))
            .and_then(|y| self.keep(y))
    }
}

fn instant(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn day(value: &Value) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(value.as_str()?, "%Y-%m-%d").ok()
}

fn minutes_between(start: &Value, end: &Value) -> Option<u64> {
    let minutes = (instant(end)? - instant(start)?).num_minutes();
    u64::try_from(minutes)
        .ok()
        .filter(|m| (1..=MAX_COUNT).contains(m))
}

fn one_of<'a>(value: &'a Value, names: &[&str]) -> Option<&'a str> {
    value.as_str().filter(|s| names.contains(s))
}

fn count(value: &Value) -> Option<usize> {
    value.as_array().map(Vec::len)
}

fn small(value: &Value) -> Option<u64> {
    value.as_u64().filter(|n| *n <= MAX_COUNT)
}

/// A medication or substance name, if it looks like a term (see the module doc).
fn term(value: &Value) -> Option<&str> {
    let s = value.as_str()?.trim();
    let (mut letters, mut digits, mut run) = (0_usize, 0_usize, 0_usize);
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits += 1;
            run += 1;
            if run > 4 {
                return None;
            }
            continue;
        }
        run = 0;
        if c.is_alphabetic() {
            letters += 1;
        } else if !" -/.,%()+'".contains(c) {
            return None;
        }
    }
    (letters > digits && s.chars().count() <= MAX_TERM).then_some(s)
}

/// A condition's code system and code, if the code has its system's syntax: ICD-10
/// (`A00` to `A00.0000`) or a SNOMED CT identifier (6 to 18 digits, no leading zero,
/// a concept, description or relationship partition).
fn code(value: &Value) -> Option<(&str, &str)> {
    let system = value["system"].as_str()?;
    let code = value["code"].as_str()?;
    let valid = match system {
        "icd-10" => {
            let (category, extension) = code.split_once('.').unwrap_or((code, ""));
            let c = category.as_bytes();
            c.len() == 3
                && c[0].is_ascii_uppercase()
                && c[1].is_ascii_digit()
                && (c[2].is_ascii_digit() || c[2].is_ascii_uppercase())
                && (code.len() == 3 || (1..=4).contains(&extension.len()))
                && extension
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        }
        "snomed-ct" => {
            let b = code.as_bytes();
            (6..=18).contains(&b.len())
                && b[0] != b'0'
                && b.iter().all(u8::is_ascii_digit)
                && matches!(
                    &code[code.len() - 3..code.len() - 1],
                    "00" | "01" | "02" | "10" | "11" | "12"
                )
        }
        _ => false,
    };
    valid.then_some((system, code))
}

/// The ZIP3 of an address in the United States (see the module doc).
fn zip3(address: &Value) -> Option<String> {
    let country: String = address["country"]
        .as_str()?
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '.')
        .collect::<String>()
        .to_ascii_uppercase();
    if !US.contains(&country.as_str()) {
        return None;
    }
    let code = address["postal_code"].as_str()?.trim();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let zip = code.get(..5).filter(|z| digits(z, 5))?;
    let rest = &code[5..];
    let plus4 = rest.is_empty()
        || digits(rest, 4)
        || rest.strip_prefix(['-', ' ']).is_some_and(|r| digits(r, 4));
    if !plus4 {
        return None;
    }
    let prefix = &zip[..3];
    Some(if RESTRICTED_ZIP3.contains(&prefix) {
        "000".to_owned()
    } else {
        prefix.to_owned()
    })
}

/// The primary language subtag (2 or 3 letters) of a language tag, lower case.
fn language(value: &Value) -> Option<String> {
    let primary = value.as_str()?.trim().split(['-', '_']).next()?;
    ((2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| primary.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use kernel::{LegalGround, Regime, ResourceRef};

    use super::*;

    const AS_OF: &str = "2026-11-24T10:00:00Z";
    const CREATED: &str = "2026-03-14T15:09:26Z";
    const UPDATED: &str = "2026-04-02T08:30:00Z";

    // The seeded identifiers.
    const NAME: &str = "Ada Lovelace";
    const EMAIL: &str = "ada.lovelace@example.org";
    const PHONE: &str = "+1 617 555 0143";
    const STREET: &str = "12 Elm Street";
    const CITY: &str = "Cambridge";
    const ZIP: &str = "02139";
    const BIRTH_DATE: &str = "1933-05-17";
    const ONSET_DAY: &str = "1990-06-01";
    const CHILDHOOD_DAY: &str = "1936-07-01";
    const IP: &str = "203.0.113.42";
    const URL: &str = "https://telehealth.example.com/room/ada-lovelace";
    const MRN: &str = "MRN-00482913";
    const TIME_ZONE: &str = "America/North_Dakota/Center";

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid time")
            .with_timezone(&Utc)
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(0x0193_5a7e_1c2d_7b3f_8a4e_0000_0000_0000 + n)
    }

    fn organisation() -> Uuid {
        id(1)
    }
    fn provider() -> Uuid {
        id(2)
    }
    fn client_user() -> Uuid {
        id(3)
    }
    fn research_id() -> Uuid {
        uuid::Builder::from_random_bytes([7; 16]).into_uuid()
    }

    fn category_of(kind: &str) -> DataCategory {
        match kind {
            "demographics" => DataCategory::Profile,
            "medication" => DataCategory::Medications,
            "treatment_plan" => DataCategory::TreatmentPlans,
            "exercise_program" | "adherence_log" => DataCategory::ExercisePrograms,
            "message" => DataCategory::Communications,
            _ => DataCategory::HealthRecord,
        }
    }

    /// A clinical record in the export schema of `clinical::personal_data`, with one
    /// earlier version.
    fn clinical(kind: &'static str, n: u128, body: Value) -> ExportedRecord {
        ExportedRecord {
            category: category_of(kind),
            resource: ResourceRef::new(kind, id(n)),
            created_at: at(CREATED),
            data: json!({
                "kind": kind,
                "organisation": organisation(),
                "version": 2,
                "created_at": CREATED,
                "created_by": provider(),
                "updated_at": UPDATED,
                "updated_by": provider(),
                "body": body,
                "versions": [{
                    "version": 1,
                    "updated_at": CREATED,
                    "updated_by": provider(),
                    "body": body,
                }],
            }),
        }
    }

    fn other(category: DataCategory, kind: &'static str, n: u128, data: Value) -> ExportedRecord {
        ExportedRecord {
            category,
            resource: ResourceRef::new(kind, id(n)),
            created_at: at(CREATED),
            data,
        }
    }

    fn demographics(country: Option<&str>, postal_code: &str) -> ExportedRecord {
        clinical(
            "demographics",
            10,
            json!({
                "sex": "female",
                "gender_identity": format!("woman, says {NAME}"),
                "preferred_language": "en-US",
                "address": {
                    "lines": [STREET, "Apt 4"],
                    "city": CITY,
                    "region": "MA",
                    "postal_code": postal_code,
                    "country": country,
                },
            }),
        )
    }

    fn birth(date: &str) -> ExportedRecord {
        other(
            DataCategory::Identity,
            "date_of_birth",
            3,
            json!({ "date_of_birth": date }),
        )
    }

    /// Everything the contexts export about a 93-year-old client, seeded with
    /// identifiers wherever the schema lets them be.
    fn export() -> Vec<ExportedRecord> {
        vec![
            // Identity's records: name, contact, a session from an IP, the birth date.
            other(
                DataCategory::Identity,
                "account",
                3,
                json!({"name": NAME, "profession": null, "status": "active",
                       "email_verified_at": CREATED}),
            ),
            other(
                DataCategory::Contact,
                "account",
                3,
                json!({"email": EMAIL, "phone": PHONE}),
            ),
            other(
                DataCategory::Credentials,
                "session",
                4,
                json!({"organisation_id": organisation(), "last_seen_at": UPDATED,
                       "expires_at": UPDATED, "revoked_at": null, "client_address": IP,
                       "user_agent": "Mozilla/5.0 (device SN-88231)"}),
            ),
            birth(BIRTH_DATE),
            // Clinical records, one of each kind.
            demographics(Some("US"), ZIP),
            clinical(
                "condition",
                11,
                json!({"text": format!("Low back pain, {NAME} ({MRN})"),
                       "code": {"system": "icd-10", "code": "M54.5"},
                       "status": "active", "onset": ONSET_DAY}),
            ),
            clinical(
                "medication",
                12,
                json!({"name": "Ibuprofen", "dose": "400 mg",
                       "frequency": format!("daily; pharmacy {PHONE}"), "status": "active"}),
            ),
            clinical(
                "allergy",
                13,
                json!({"substance": "Penicillin", "reaction": format!("Rash; reported by {EMAIL}"),
                       "severity": "moderate", "status": "active"}),
            ),
            clinical(
                "history_entry",
                14,
                json!({"text": format!("Polio as a child; seen at {STREET}, {CITY} {ZIP}"),
                       "occurred_on": CHILDHOOD_DAY}),
            ),
            clinical(
                "history_entry",
                15,
                json!({"text": format!("Hip replacement, chart {MRN}"), "occurred_on": "2019-09-12"}),
            ),
            clinical(
                "status_note",
                16,
                json!({"text": format!("{NAME} called from {PHONE}, record {}", id(11))}),
            ),
            clinical(
                "treatment_plan",
                17,
                json!({"title": format!("{NAME}'s back plan"),
                       "goals": ["Walk to the shop on Elm Street", "Sleep through the night"],
                       "interventions": ["Core strengthening"], "status": "active"}),
            ),
            clinical(
                "exercise_program",
                18,
                json!({"title": format!("Home program for {NAME}"),
                       "items": [
                           {"exercise": id(30), "name": "Bird dog",
                            "prescription": {"sets": 3, "repetitions": 10, "hold_seconds": 5, "per_week": 7},
                            "notes": format!("Video at {URL}")},
                           {"exercise": id(31), "name": "Plank",
                            "prescription": {"sets": 2, "repetitions": 0, "hold_seconds": 30, "per_week": 5},
                            "notes": null}],
                       "starts_on": "2026-03-15", "ends_on": "2026-06-15"}),
            ),
            clinical(
                "adherence_log",
                19,
                json!({"program": id(18), "program_version": 1, "performed_on": "2026-03-20",
                       "completed": [0, 1], "pain": 4,
                       "comment": format!("Did it at {STREET} with my daughter; call {PHONE}")}),
            ),
            clinical(
                "message",
                20,
                json!({"sender": client_user(),
                       "text": format!("This is {NAME}, my IP is {IP}, email {EMAIL}")}),
            ),
            clinical(
                "amendment",
                21,
                json!({"target": id(11), "target_kind": "condition", "field": "text",
                       "proposed": format!("Back pain — {NAME}"),
                       "reason": format!("My name is {NAME}"), "status": "denied",
                       "decided_by": provider(), "decided_at": "2026-04-01T12:00:00Z",
                       "applied_version": null,
                       "denial_reason": "The chart is correct",
                       "disagreement": format!("Write to me at {EMAIL}")}),
            ),
            other(
                DataCategory::Appointments,
                "appointment",
                22,
                json!({"organisation": organisation(), "provider": provider(),
                       "starts_at": "2026-03-20T14:00:00Z", "ends_at": "2026-03-20T14:45:00Z",
                       "status": "fulfilled",
                       "details": {"time_zone": TIME_ZONE, "location": format!("{STREET}, {CITY}"),
                                   "telehealth_url": URL, "reason": format!("{NAME} follow-up")},
                       "version": 1, "created_at": CREATED, "created_by": provider()}),
            ),
            other(
                DataCategory::Profile,
                "care_team_member",
                2,
                json!({"organisation": organisation(), "provider": provider(),
                       "starts_on": "2026-03-14", "ends_on": null, "added_by": provider(),
                       "added_at": CREATED}),
            ),
            other(
                DataCategory::AccessLog,
                "break_glass_grant",
                23,
                json!({"organisation": organisation(), "holder": id(5),
                       "reason": format!("{NAME} unconscious"), "granted_at": CREATED,
                       "expires_at": UPDATED}),
            ),
            other(
                DataCategory::HealthRecord,
                "fhir_bundle",
                24,
                json!({"resourceType": "Bundle", "type": "collection", "entry": [{
                    "fullUrl": format!("urn:uuid:{}", client_user()),
                    "resource": {"resourceType": "Patient", "name": [{"text": NAME}],
                                 "birthDate": BIRTH_DATE,
                                 "telecom": [{"system": "email", "value": EMAIL},
                                             {"system": "phone", "value": PHONE}],
                                 "address": [{"line": [STREET], "city": CITY,
                                              "postalCode": ZIP, "country": "US"}]}}]}),
            ),
        ]
    }

    fn allow() -> ConsentDecision {
        ConsentDecision::Allow {
            basis: LegalGround::new(Regime::Hipaa, "45 CFR 164.508", "authorised"),
            evidence: vec![id(40)],
        }
    }

    fn deny() -> ConsentDecision {
        ConsentDecision::Deny {
            reason: kernel::ConsentDenial::NotGiven,
        }
    }

    fn consent_to_all() -> ResearchConsent {
        let yes = allow();
        ResearchConsent::from_decisions(RESEARCH_CATEGORIES.iter().map(|c| (*c, &yes)))
    }

    fn run(records: &[ExportedRecord]) -> ResearchSubject {
        deidentify(records, at(AS_OF), research_id(), &consent_to_all()).expect("consented")
    }

    /// Whether `s` holds a day (`dddd-dd`) or a time of day (`dd:dd`).
    fn has_date_or_time(s: &str) -> bool {
        let b = s.as_bytes();
        let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
        (0..b.len()).any(|i| {
            (b[i] == b'-'
                && i >= 4
                && (1..=4).all(|k| digit(i - k))
                && digit(i + 1)
                && digit(i + 2))
                || (b[i] == b':'
                    && i >= 2
                    && digit(i - 1)
                    && digit(i - 2)
                    && digit(i + 1)
                    && digit(i + 2))
        })
    }

    fn data<'a>(subject: &'a ResearchSubject, kind: &str) -> Vec<&'a Value> {
        subject
            .records
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| &r.data)
            .collect()
    }

    #[test]
    fn no_seeded_identifier_survives() {
        let subject = run(&export());
        let full = serde_json::to_string(&subject).expect("serialised");
        assert!(full.contains(&research_id().to_string()));
        // The only id left is the random research id (whose digits look like a day).
        let out = full.replace(&research_id().to_string(), "");
        let mut seeds: Vec<String> = [
            NAME,
            "Lovelace",
            EMAIL,
            "example",
            PHONE,
            "0143",
            STREET,
            "Elm",
            CITY,
            ZIP,
            BIRTH_DATE,
            "1933",
            ONSET_DAY,
            CHILDHOOD_DAY,
            "1936",
            IP,
            URL,
            "https",
            MRN,
            "00482913",
            "North_Dakota",
            "Mozilla",
            "Bird dog",
            "daughter",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for n in 0..=50 {
            seeds.push(id(n).to_string());
            seeds.push(id(n).simple().to_string());
        }
        for seed in &seeds {
            assert!(!out.contains(seed.as_str()), "{seed} survived in {out}");
        }
        assert!(!has_date_or_time(&out), "a date or time survived in {out}");
        // The seeds were really there.
        let input = serde_json::to_string(&export()).expect("serialised");
        for seed in &seeds[..seeds.len() - 2 * 51] {
            assert!(input.contains(seed.as_str()), "{seed} was not seeded");
        }
        assert!(has_date_or_time(&input));
        assert_eq!(subject.research_id, research_id());
    }

    #[test]
    fn each_kind_keeps_only_its_allow_listed_fields_with_dates_as_years() {
        let subject = run(&export());
        let kinds: Vec<&str> = subject.records.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "condition",
                "medication",
                "allergy",
                "history_entry",
                "history_entry",
                "status_note",
                "treatment_plan",
                "exercise_program",
                "adherence_log",
                "message",
                "amendment",
                "appointment",
            ],
            "identity's records, care team, grants and the FHIR bundle are left out"
        );
        assert!(subject.records.iter().all(|r| r.year == Some(2026)));
        let expected = [
            (
                "condition",
                json!({"code_system": "icd-10", "code": "M54.5", "status": "active",
                       "onset_year": 1990}),
            ),
            (
                "medication",
                json!({"name": "Ibuprofen", "status": "active"}),
            ),
            (
                "allergy",
                json!({"substance": "Penicillin", "severity": "moderate", "status": "active"}),
            ),
            ("status_note", json!({})),
            (
                "treatment_plan",
                json!({"status": "active", "goals": 2, "interventions": 1}),
            ),
            (
                "exercise_program",
                json!({"exercises": 2, "starts_year": 2026, "ends_year": 2026, "items": [
                    {"sets": 3, "repetitions": 10, "hold_seconds": 5, "per_week": 7},
                    {"sets": 2, "repetitions": 0, "hold_seconds": 30, "per_week": 5}]}),
            ),
            (
                "adherence_log",
                json!({"performed_year": 2026, "completed": 2, "pain": 4}),
            ),
            ("message", json!({})),
            (
                "amendment",
                json!({"target_kind": "condition", "status": "denied", "decided_year": 2026}),
            ),
            (
                "appointment",
                json!({"status": "fulfilled", "starts_year": 2026, "duration_minutes": 45,
                       "telehealth": true}),
            ),
        ];
        for (kind, want) in expected {
            assert_eq!(data(&subject, kind), [&want], "{kind}");
        }
        // A childhood year of a 93-year-old would show their age: withheld.
        assert_eq!(
            data(&subject, "history_entry"),
            [
                &json!({"occurred_year": null}),
                &json!({"occurred_year": 2019})
            ]
        );
    }

    #[test]
    fn ages_over_89_are_one_group_without_a_birth_year() {
        let subject = run(&export());
        assert_eq!(subject.age, Some(Age::NinetyOrOlder));
        let out = serde_json::to_value(&subject).expect("serialised");
        assert_eq!(out["age"], "90+");
        assert!(out.get("birth_year").is_none());

        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("valid day");
        let on = day("2026-11-24");
        for (born, age) in [
            ("1980-05-17", Some(Age::Years(46))),
            ("1980-11-25", Some(Age::Years(45))),
            ("1936-11-25", Some(Age::Years(89))),
            ("1936-11-24", Some(Age::NinetyOrOlder)),
            ("1850-01-01", Some(Age::NinetyOrOlder)),
            ("2026-11-24", Some(Age::Years(0))),
            ("2026-11-25", None),
        ] {
            assert_eq!(Age::on(day(born), on), age, "{born}");
        }
        // Born on 29 February: a year older on 1 March of a common year.
        assert_eq!(
            Age::on(day("2000-02-29"), day("2026-02-28")),
            Some(Age::Years(25))
        );
        assert_eq!(
            Age::on(day("2000-02-29"), day("2026-03-01")),
            Some(Age::Years(26))
        );
        let young = run(&[birth("1980-05-17")]);
        assert_eq!(serde_json::to_value(&young).expect("serialised")["age"], 46);
        assert_eq!(run(&[birth("not a day")]).age, None);
    }

    #[test]
    fn zip_codes_keep_three_digits_only_in_the_us_and_where_the_population_allows() {
        let zip = |country: Option<&str>, code: &str| run(&[demographics(country, code)]).zip3;
        assert_eq!(zip(Some("US"), ZIP).as_deref(), Some("021"));
        assert_eq!(zip(Some("U.S.A."), "02139-4307").as_deref(), Some("021"));
        assert_eq!(
            zip(Some("United States of America"), "021394307").as_deref(),
            Some("021")
        );
        assert_eq!(zip(Some("usa"), "03601").as_deref(), Some("000"));
        for prefix in RESTRICTED_ZIP3 {
            assert_eq!(
                zip(Some("US"), &format!("{prefix}42")).as_deref(),
                Some("000"),
                "{prefix}"
            );
        }
        // Not known to be a US ZIP code: dropped whole.
        for (country, code) in [
            (Some("Canada"), "K1A 0B1"),
            (Some("DE"), "10115"),
            (Some("Italy"), "20121"),
            (None, "02139"),
            (Some("US"), "2139"),
            (Some("US"), "02139-43"),
            (Some("US"), "O2139"),
        ] {
            assert_eq!(zip(country, code), None, "{country:?} {code}");
        }
        let subject = run(&[demographics(Some("US"), ZIP)]);
        assert_eq!(subject.sex.as_deref(), Some("female"));
        assert_eq!(subject.language.as_deref(), Some("en"));
        assert!(subject.records.is_empty());
    }

    #[test]
    fn only_what_consent_allows_is_included() {
        let records = export();
        let (yes, no) = (allow(), deny());
        assert!(
            deidentify(
                &records,
                at(AS_OF),
                research_id(),
                &ResearchConsent::default()
            )
            .is_none()
        );
        let all_denied =
            ResearchConsent::from_decisions(RESEARCH_CATEGORIES.iter().map(|c| (*c, &no)));
        assert!(deidentify(&records, at(AS_OF), research_id(), &all_denied).is_none());
        // Allowing only a category this module never reads is no consent to research.
        let billing_only = ResearchConsent::from_decisions([(DataCategory::Billing, &yes)]);
        assert!(deidentify(&records, at(AS_OF), research_id(), &billing_only).is_none());

        // Health records allowed, but not communications, identity or profile; a
        // category both allowed and denied is denied.
        let some = ResearchConsent::from_decisions([
            (DataCategory::HealthRecord, &yes),
            (DataCategory::Medications, &yes),
            (DataCategory::Communications, &no),
            (DataCategory::Identity, &no),
            (DataCategory::Medications, &no),
        ]);
        assert!(some.allows(DataCategory::HealthRecord));
        assert!(!some.allows(DataCategory::Medications));
        let subject = deidentify(&records, at(AS_OF), research_id(), &some).expect("some");
        let mut kinds: Vec<&str> = subject.records.iter().map(|r| r.kind.as_str()).collect();
        kinds.dedup();
        assert_eq!(
            kinds,
            [
                "condition",
                "allergy",
                "history_entry",
                "status_note",
                "amendment"
            ]
        );
        assert_eq!((subject.age, subject.sex, subject.zip3), (None, None, None));
    }

    #[test]
    fn values_off_the_schema_are_dropped() {
        let odd = [
            clinical(
                "medication",
                50,
                json!({"name": format!("see {URL}"), "status": "taking it, says Ada"}),
            ),
            clinical(
                "medication",
                51,
                json!({"name": "Call 6175550143", "status": "active"}),
            ),
            clinical("allergy", 52, json!({"substance": IP, "status": "active"})),
            clinical(
                "allergy",
                53,
                json!({"substance": EMAIL, "severity": "deadly", "status": "active"}),
            ),
            clinical(
                "medication",
                54,
                json!({"name": "Vitamin D3 1000 IU", "status": "on_hold"}),
            ),
            clinical(
                "condition",
                55,
                json!({"text": "x", "code": {"system": "snomed-ct", "code": "078051120"},
                       "status": "active", "onset": "17 May 1990"}),
            ),
            clinical(
                "condition",
                56,
                json!({"text": "x", "code": {"system": "snomed-ct", "code": "22298006"},
                       "status": "resolved", "onset": null}),
            ),
            clinical(
                "condition",
                57,
                json!({"text": "x", "code": {"system": "icd-10", "code": MRN},
                       "status": "active"}),
            ),
            clinical(
                "adherence_log",
                58,
                json!({"performed_on": "2026-03-20", "completed": [0], "pain": 6_175_550_143_u64}),
            ),
            other(
                DataCategory::Appointments,
                "appointment",
                59,
                json!({"status": "booked", "starts_at": "2026-03-20T14:00:00Z",
                       "ends_at": "2026-03-20T13:00:00Z",
                       "details": {"telehealth_url": null}}),
            ),
        ];
        let subject = run(&odd);
        let datas: Vec<&Value> = subject.records.iter().map(|r| &r.data).collect();
        assert_eq!(
            datas,
            [
                &json!({"name": null, "status": null}),
                &json!({"name": null, "status": "active"}),
                &json!({"substance": null, "severity": null, "status": "active"}),
                &json!({"substance": null, "severity": null, "status": "active"}),
                &json!({"name": "Vitamin D3 1000 IU", "status": "on_hold"}),
                &json!({"code_system": null, "code": null, "status": "active", "onset_year": null}),
                &json!({"code_system": "snomed-ct", "code": "22298006", "status": "resolved",
                        "onset_year": null}),
                &json!({"code_system": null, "code": null, "status": "active", "onset_year": null}),
                &json!({"performed_year": 2026, "completed": 1, "pain": null}),
                &json!({"status": "booked", "starts_year": 2026, "duration_minutes": null,
                        "telehealth": false}),
            ]
        );
    }

    #[test]
    fn debug_shows_no_content() {
        let subject = run(&export());
        let shown = format!("{subject:?} {:?}", subject.records[0]);
        assert!(
            !shown.contains("M54.5") && !shown.contains("90+"),
            "{shown}"
        );
        assert!(shown.contains("condition"));
    }
}
