//! What every answer states (D13, O5): the legal basis of each processing
//! activity, the right to complain to a supervisory authority, and who the
//! controller and its privacy officer are.
//!
//! The server composes it once from configuration (controller, privacy officer)
//! and the consent catalogue (each purpose's ground under each regime), and every
//! request view and archive carries it.

use kernel::{LegalGround, Purpose};
use serde::Serialize;

/// Who answers for the processing, and how to reach their privacy officer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Controller {
    /// The controller's legal name.
    pub name: String,
    /// Its postal address.
    pub address: String,
    /// The privacy officer's email address.
    pub privacy_officer_email: String,
}

/// One processing activity and its recorded legal bases, one per regime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessingActivity {
    /// The purpose.
    pub purpose: Purpose,
    /// Its legal basis under each regime.
    pub grounds: Vec<LegalGround>,
}

/// The statements attached to every answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statements {
    /// The controller (O5).
    pub controller: Controller,
    /// Every processing activity with its legal basis (GDPR Art. 13(1)(c), 30).
    pub processing: Vec<ProcessingActivity>,
    /// The right to complain (GDPR Art. 77; HHS OCR under HIPAA; the California
    /// Privacy Protection Agency under the CCPA).
    pub right_to_complain: String,
}

/// The right-to-complain statement every answer carries.
pub const RIGHT_TO_COMPLAIN: &str = "You have the right to lodge a complaint with a \
supervisory authority: in the EU or UK, the data protection authority of your habitual \
residence, place of work or of the alleged infringement (GDPR Art. 77); in the United \
States, the Office for Civil Rights of the Department of Health and Human Services \
(45 CFR 160.306); in California, the California Privacy Protection Agency or the \
Attorney General (Cal. Civ. Code 1798.199.45). Complaining will not affect your care, \
your prices or your service.";

impl Statements {
    /// Statements for `controller` with the given activities.
    #[must_use]
    pub fn new(controller: Controller, processing: Vec<ProcessingActivity>) -> Self {
        Self {
            controller,
            processing,
            right_to_complain: RIGHT_TO_COMPLAIN.to_owned(),
        }
    }
}
