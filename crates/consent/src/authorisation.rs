//! HIPAA authorisations (45 CFR 164.508) as structured records, and the provider's
//! attestation that a client authorised sharing with the service (S6).
//!
//! An authorisation is valid only with every core element and required statement
//! of §164.508(c); [`HipaaAuthorisation::validate`] names the first one missing.
//! Recording one appends a grant to the subject's ledger for its purpose (and
//! recipient), citing the authorisation's id as its document; revoking it appends a
//! withdrawal. The record itself is kept encrypted with the subject's key.
//!
//! | element | §164.508 | field |
//! |---|---|---|
//! | a description of the information | (c)(1)(i) | `information` |
//! | who may disclose it | (c)(1)(ii) | `disclosers` |
//! | to whom | (c)(1)(iii) | `recipients` |
//! | the purpose | (c)(1)(iv) | `purpose`, `purpose_statement` |
//! | an expiry date or event | (c)(1)(v) | `expiry` |
//! | signature and date | (c)(1)(vi) | `signature` |
//! | a representative's authority | (c)(1)(vi) | `signature.representative_authority` |
//! | the right to revoke | (c)(2)(i) | `revocation_statement` |
//! | whether care may be conditioned on it | (c)(2)(ii) | `conditioning_statement` |
//! | the potential for redisclosure | (c)(2)(iii) | `redisclosure_statement` |

use kernel::Purpose;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalogue::{HipaaBasis, rule};
use crate::ledger::Authority;

/// The longest free-text element accepted, in characters.
pub const MAX_ELEMENT_CHARS: usize = 4000;

/// When an authorisation ends (§164.508(c)(1)(v)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Expiry {
    /// On a date, µs since the epoch.
    Date(i64),
    /// On an event, described (e.g. "the end of the research study").
    Event(String),
}

/// Who signed, and when (§164.508(c)(1)(vi)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The signer's name as signed.
    pub signer: String,
    /// When it was signed, µs since the epoch.
    pub signed_at: i64,
    /// For a personal representative (a guardian or an agent): the description of
    /// their authority to act for the person.
    pub representative_authority: Option<String>,
}

/// A HIPAA authorisation with every element §164.508(c) requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HipaaAuthorisation {
    /// A specific and meaningful description of the information.
    pub information: String,
    /// The persons or class of persons authorised to disclose it.
    pub disclosers: String,
    /// The persons or class of persons to whom it may be disclosed.
    pub recipients: String,
    /// The catalogue purpose it authorises (one needing an authorisation).
    pub purpose: Purpose,
    /// The purpose, described as the person read it.
    pub purpose_statement: String,
    /// For sharing with a named third party: the name the ledger records.
    pub recipient_name: Option<String>,
    /// When it ends.
    pub expiry: Expiry,
    /// The signature and date.
    pub signature: Signature,
    /// The statement of the right to revoke, and how.
    pub revocation_statement: String,
    /// Whether treatment, payment or eligibility may be conditioned on signing.
    pub conditioning_statement: String,
    /// The potential for the information to be redisclosed and lose protection.
    pub redisclosure_statement: String,
}

/// Why an authorisation was refused (422). Nothing was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthorisationError {
    /// A required element is missing or blank.
    #[error("the authorisation lacks its {0} (45 CFR 164.508(c))")]
    Missing(&'static str),
    /// An element is longer than [`MAX_ELEMENT_CHARS`].
    #[error("the authorisation's {0} is longer than 4000 characters")]
    TooLong(&'static str),
    /// The purpose needs no authorisation (treatment, payment, operations, law).
    #[error("this purpose needs no HIPAA authorisation")]
    NotNeeded,
    /// The expiry date is not after the signature.
    #[error("the authorisation must expire after it is signed")]
    ExpiresBeforeSigned,
}

impl HipaaAuthorisation {
    /// Checks every element, for a signature given on `authority`.
    ///
    /// # Errors
    /// The first [`AuthorisationError`] found.
    pub fn validate(&self, authority: Authority) -> Result<(), AuthorisationError> {
        use AuthorisationError as E;
        if !matches!(rule(self.purpose).hipaa, HipaaBasis::Authorisation { .. }) {
            return Err(E::NotNeeded);
        }
        let mut texts: Vec<(&'static str, Option<&str>)> = vec![
            ("description of the information", Some(&self.information)),
            ("persons who may disclose", Some(&self.disclosers)),
            ("recipients", Some(&self.recipients)),
            ("purpose statement", Some(&self.purpose_statement)),
            ("signer", Some(&self.signature.signer)),
            (
                "statement of the right to revoke",
                Some(&self.revocation_statement),
            ),
            (
                "statement on conditioning",
                Some(&self.conditioning_statement),
            ),
            (
                "statement on redisclosure",
                Some(&self.redisclosure_statement),
            ),
        ];
        if self.purpose == Purpose::ThirdPartySharing {
            texts.push(("recipient name", self.recipient_name.as_deref()));
        }
        if let Expiry::Event(event) = &self.expiry {
            texts.push(("expiry event", Some(event)));
        }
        if !matches!(authority, Authority::Person) {
            texts.push((
                "representative's authority",
                self.signature.representative_authority.as_deref(),
            ));
        }
        for (name, text) in texts {
            let text = text.map(str::trim).unwrap_or_default();
            if text.is_empty() {
                return Err(E::Missing(name));
            }
            if text.chars().count() > MAX_ELEMENT_CHARS {
                return Err(E::TooLong(name));
            }
        }
        if let Expiry::Date(until) = self.expiry
            && until <= self.signature.signed_at
        {
            return Err(E::ExpiresBeforeSigned);
        }
        Ok(())
    }

    /// The recipient the ledger grant names.
    #[must_use]
    pub fn ledger_recipient(&self) -> Option<&str> {
        (self.purpose == Purpose::ThirdPartySharing)
            .then_some(self.recipient_name.as_deref())
            .flatten()
    }

    /// The expiry the ledger grant carries (an expiry event is recorded when it happens).
    #[must_use]
    pub const fn ledger_expiry(&self) -> Option<i64> {
        match self.expiry {
            Expiry::Date(t) => Some(t),
            Expiry::Event(_) => None,
        }
    }
}

/// A recorded authorisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAuthorisation {
    /// Its id: the document reference of its ledger grant.
    pub id: Uuid,
    /// The record.
    pub authorisation: HipaaAuthorisation,
    /// On whose authority it was signed.
    pub authority: Authority,
    /// The sequence of the grant it produced.
    pub grant_sequence: u64,
    /// When it was recorded, µs since the epoch.
    pub recorded_at: i64,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn complete(purpose: Purpose) -> HipaaAuthorisation {
        HipaaAuthorisation {
            information: "Exercise adherence logs, 2026".into(),
            disclosers: "Sunrise Physio".into(),
            recipients: "University research group".into(),
            purpose,
            purpose_statement: "A study of home-exercise adherence".into(),
            recipient_name: Some("University research group".into()),
            expiry: Expiry::Date(2_000),
            signature: Signature {
                signer: "Ada Client".into(),
                signed_at: 1_000,
                representative_authority: None,
            },
            revocation_statement: "You may revoke this in writing at any time.".into(),
            conditioning_statement: "Your care does not depend on signing.".into(),
            redisclosure_statement: "The recipient may redisclose it.".into(),
        }
    }

    #[test]
    fn every_element_is_required() {
        let ok = complete(Purpose::Research);
        assert_eq!(ok.validate(Authority::Person), Ok(()));
        let mut missing = ok.clone();
        missing.revocation_statement = "  ".into();
        assert_eq!(
            missing.validate(Authority::Person),
            Err(AuthorisationError::Missing(
                "statement of the right to revoke"
            ))
        );
        let mut third = complete(Purpose::ThirdPartySharing);
        third.recipient_name = None;
        assert_eq!(
            third.validate(Authority::Person),
            Err(AuthorisationError::Missing("recipient name"))
        );
        assert_eq!(
            ok.validate(Authority::Guardian(kernel::UserId::new())),
            Err(AuthorisationError::Missing("representative's authority"))
        );
        let mut backwards = ok.clone();
        backwards.expiry = Expiry::Date(500);
        assert_eq!(
            backwards.validate(Authority::Person),
            Err(AuthorisationError::ExpiresBeforeSigned)
        );
        let mut event = ok.clone();
        event.expiry = Expiry::Event(String::new());
        assert_eq!(
            event.validate(Authority::Person),
            Err(AuthorisationError::Missing("expiry event"))
        );
        assert_eq!(
            complete(Purpose::Treatment).validate(Authority::Person),
            Err(AuthorisationError::NotNeeded)
        );
    }
}
