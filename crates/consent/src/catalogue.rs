//! The purpose catalogue: for each [`Purpose`], its legal basis under each regime
//! and whether, and how, the person's consent is needed.
//!
//! | purpose | HIPAA | GDPR Art. 6 | GDPR Art. 9 (health data) | CCPA opt-out | consent |
//! |---|---|---|---|---|---|
//! | treatment | TPO, §164.506(c) | 6(1)(b) contract | 9(2)(h) health care | no | not needed |
//! | care-team sharing | TPO, §164.506(c) | 6(1)(b) contract | 9(2)(h) health care | no | not needed |
//! | break-glass | TPO, §164.506(c) | 6(1)(d) vital interests | 9(2)(c) vital interests | no | not needed |
//! | payment | TPO, §164.506(c) | 6(1)(b) contract | 9(2)(h) health care | no | not needed |
//! | operations | TPO, §164.506(c) | 6(1)(f) legitimate interests | 9(2)(h) health care | no | not needed |
//! | subject request | §164.524 right of access | 6(1)(c) legal obligation | 9(2)(f) legal claims | no | not needed |
//! | oversight | §164.512(d) oversight | 6(1)(c) legal obligation | 9(2)(i) public health | no | not needed |
//! | legal | §164.512(a)/(e)/(f) required by law | 6(1)(c) legal obligation | 9(2)(f) legal claims | no | not needed |
//! | marketing email | authorisation, §164.508(a)(3) | 6(1)(a) consent | 9(2)(a) explicit consent | yes | opt-in |
//! | marketing SMS | authorisation, §164.508(a)(3) | 6(1)(a) consent | 9(2)(a) explicit consent | yes | opt-in |
//! | analytics (de-identified) | de-identified, §164.514(a) | 6(1)(f) legitimate interests | none: no health data | yes | opt-out |
//! | research | authorisation, §164.508 | 6(1)(a) consent | 9(2)(a) explicit consent | yes | opt-in |
//! | third-party sharing | authorisation, §164.508 | 6(1)(a) consent | 9(2)(a) explicit consent | yes | opt-in |
//!
//! The table is [`rule`]; a test checks the two agree. A practice's settings
//! ([`PracticePolicy`]) may make any purpose stricter. They may relax only
//! marketing, from opt-in to opt-out, when the practice chooses that mode (U4).
//! Purposes with a consent-free basis stay consent-free: a practice cannot switch
//! off treatment.

use std::collections::BTreeSet;

use kernel::{LegalGround, Purpose, Regime};

/// The HIPAA basis for a use of protected health information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HipaaBasis {
    /// Treatment, payment or health-care operations: permitted without an
    /// authorisation (45 CFR 164.506(c)).
    TreatmentPaymentOperations,
    /// Permitted or required by another rule, cited.
    Permitted {
        /// The citation, e.g. `45 CFR 164.512(f)`.
        citation: &'static str,
    },
    /// The information is de-identified (45 CFR 164.514(a)): HIPAA no longer applies.
    DeIdentified,
    /// Needs the person's written authorisation (45 CFR 164.508).
    Authorisation {
        /// The citation, e.g. `45 CFR 164.508(a)(3)` for marketing.
        citation: &'static str,
    },
}

/// The GDPR Art. 6(1) lawful basis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GdprBasis {
    /// Art. 6(1)(a): the person's consent.
    Consent,
    /// Art. 6(1)(b): necessary for a contract with the person (the care they asked for).
    Contract,
    /// Art. 6(1)(c): a legal obligation.
    LegalObligation,
    /// Art. 6(1)(d): the vital interests of the person.
    VitalInterests,
    /// Art. 6(1)(f): legitimate interests, which the person may object to (Art. 21).
    LegitimateInterests,
}

impl GdprBasis {
    /// The article cited.
    #[must_use]
    pub const fn citation(self) -> &'static str {
        match self {
            Self::Consent => "GDPR Art. 6(1)(a)",
            Self::Contract => "GDPR Art. 6(1)(b)",
            Self::LegalObligation => "GDPR Art. 6(1)(c)",
            Self::VitalInterests => "GDPR Art. 6(1)(d)",
            Self::LegitimateInterests => "GDPR Art. 6(1)(f)",
        }
    }
}

/// The GDPR Art. 9(2) condition for processing health data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GdprCondition {
    /// Art. 9(2)(a): explicit consent.
    ExplicitConsent,
    /// Art. 9(2)(c): vital interests, the person unable to consent.
    VitalInterests,
    /// Art. 9(2)(f): legal claims.
    LegalClaims,
    /// Art. 9(2)(h): health care, under professional secrecy.
    HealthCare,
    /// Art. 9(2)(i): public health, including oversight of care.
    PublicHealth,
    /// No health data is processed for this purpose (de-identified only).
    NoHealthData,
}

impl GdprCondition {
    /// The article cited, if any.
    #[must_use]
    pub const fn citation(self) -> Option<&'static str> {
        match self {
            Self::ExplicitConsent => Some("GDPR Art. 9(2)(a)"),
            Self::VitalInterests => Some("GDPR Art. 9(2)(c)"),
            Self::LegalClaims => Some("GDPR Art. 9(2)(f)"),
            Self::HealthCare => Some("GDPR Art. 9(2)(h)"),
            Self::PublicHealth => Some("GDPR Art. 9(2)(i)"),
            Self::NoHealthData => None,
        }
    }
}

/// Whether, and how, the person's consent is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConsentMode {
    /// A basis other than consent applies; the person may still restrict or object
    /// where the law gives them that right.
    NotNeeded,
    /// Allowed until the person opts out.
    OptOut,
    /// Allowed only once the person opts in.
    OptIn,
}

/// Everything the catalogue says about one purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurposeRule {
    /// The purpose.
    pub purpose: Purpose,
    /// Its HIPAA basis.
    pub hipaa: HipaaBasis,
    /// Its GDPR Art. 6 basis.
    pub gdpr: GdprBasis,
    /// Its GDPR Art. 9 condition for health data.
    pub gdpr_health: GdprCondition,
    /// Whether a California consumer may opt out (CCPA §1798.120, §1798.121).
    pub ccpa_opt_out: bool,
    /// Whether consent is needed, by default.
    pub consent: ConsentMode,
    /// Whether a practice may relax [`PurposeRule::consent`] to opt-out (marketing only, U4).
    pub practice_may_relax: bool,
}

impl PurposeRule {
    /// The legal ground relied on under `regime`, fit to cite in a decision.
    #[must_use]
    pub fn ground(&self, regime: Regime) -> LegalGround {
        match regime {
            Regime::Hipaa => match self.hipaa {
                HipaaBasis::TreatmentPaymentOperations => LegalGround::new(
                    Regime::Hipaa,
                    "45 CFR 164.506(c)",
                    "Treatment, payment and health-care operations need no authorisation.",
                ),
                HipaaBasis::Permitted { citation } => LegalGround::new(
                    Regime::Hipaa,
                    citation,
                    "Permitted or required by law without an authorisation.",
                ),
                HipaaBasis::DeIdentified => LegalGround::new(
                    Regime::Hipaa,
                    "45 CFR 164.514(a)",
                    "Only de-identified information is used.",
                ),
                HipaaBasis::Authorisation { citation } => {
                    LegalGround::new(Regime::Hipaa, citation, "Your written authorisation.")
                }
            },
            Regime::Gdpr => LegalGround::new(
                Regime::Gdpr,
                self.gdpr.citation(),
                match self.gdpr {
                    GdprBasis::Consent => "Your consent.",
                    GdprBasis::Contract => "Needed to provide the care you asked for.",
                    GdprBasis::LegalObligation => "A legal obligation.",
                    GdprBasis::VitalInterests => "To protect your vital interests.",
                    GdprBasis::LegitimateInterests => {
                        "Legitimate interests, to which you may object."
                    }
                },
            ),
            Regime::Ccpa => {
                if self.ccpa_opt_out {
                    LegalGround::new(
                        Regime::Ccpa,
                        "Cal. Civ. Code 1798.120",
                        "Allowed unless you opt out of sharing.",
                    )
                } else {
                    LegalGround::new(
                        Regime::Ccpa,
                        "Cal. Civ. Code 1798.145(c)",
                        "Medical information governed by HIPAA and the CMIA.",
                    )
                }
            }
        }
    }
}

const TPO: HipaaBasis = HipaaBasis::TreatmentPaymentOperations;

/// The catalogue's rule for `purpose`.
#[must_use]
pub fn rule(purpose: Purpose) -> PurposeRule {
    let base = PurposeRule {
        purpose,
        hipaa: TPO,
        gdpr: GdprBasis::Contract,
        gdpr_health: GdprCondition::HealthCare,
        ccpa_opt_out: false,
        consent: ConsentMode::NotNeeded,
        practice_may_relax: false,
    };
    let authorised = |citation| PurposeRule {
        hipaa: HipaaBasis::Authorisation { citation },
        gdpr: GdprBasis::Consent,
        gdpr_health: GdprCondition::ExplicitConsent,
        ccpa_opt_out: true,
        consent: ConsentMode::OptIn,
        ..base
    };
    match purpose {
        Purpose::Treatment | Purpose::CareTeamSharing | Purpose::Payment => base,
        Purpose::BreakGlass => PurposeRule {
            gdpr: GdprBasis::VitalInterests,
            gdpr_health: GdprCondition::VitalInterests,
            ..base
        },
        Purpose::Operations => PurposeRule {
            gdpr: GdprBasis::LegitimateInterests,
            ..base
        },
        Purpose::SubjectRequest => PurposeRule {
            hipaa: HipaaBasis::Permitted {
                citation: "45 CFR 164.524",
            },
            gdpr: GdprBasis::LegalObligation,
            gdpr_health: GdprCondition::LegalClaims,
            ..base
        },
        Purpose::Oversight => PurposeRule {
            hipaa: HipaaBasis::Permitted {
                citation: "45 CFR 164.512(d)",
            },
            gdpr: GdprBasis::LegalObligation,
            gdpr_health: GdprCondition::PublicHealth,
            ..base
        },
        Purpose::Legal => PurposeRule {
            hipaa: HipaaBasis::Permitted {
                citation: "45 CFR 164.512(a)",
            },
            gdpr: GdprBasis::LegalObligation,
            gdpr_health: GdprCondition::LegalClaims,
            ..base
        },
        Purpose::MarketingEmail | Purpose::MarketingSms => PurposeRule {
            practice_may_relax: true,
            ..authorised("45 CFR 164.508(a)(3)")
        },
        Purpose::Analytics => PurposeRule {
            hipaa: HipaaBasis::DeIdentified,
            gdpr: GdprBasis::LegitimateInterests,
            gdpr_health: GdprCondition::NoHealthData,
            ccpa_opt_out: true,
            consent: ConsentMode::OptOut,
            ..base
        },
        Purpose::Research | Purpose::ThirdPartySharing => authorised("45 CFR 164.508"),
        // A purpose added to the kernel before this catalogue knows it gets the
        // strictest treatment: the person's opt-in, and an authorisation.
        _ => authorised("45 CFR 164.508"),
    }
}

/// How a practice runs marketing (U4): opt-in, the default, or opt-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MarketingMode {
    /// Nobody gets marketing until they agree. The default.
    #[default]
    OptIn,
    /// Clients get marketing until they say no, where the practice chose so.
    OptOut,
}

/// A practice's consent settings. The default is the strictest behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PracticePolicy {
    /// The marketing mode the practice chose.
    pub marketing: MarketingMode,
    /// Purposes the practice holds to opt-in though the catalogue says less.
    pub opt_in_required: BTreeSet<Purpose>,
}

impl PracticePolicy {
    /// Whether, and how, consent is needed for `purpose` in this practice: the
    /// catalogue's mode, made stricter by [`PracticePolicy::opt_in_required`], and
    /// relaxed only for marketing in an opt-out practice.
    #[must_use]
    pub fn consent_mode(&self, purpose: Purpose) -> ConsentMode {
        let rule = rule(purpose);
        if rule.consent == ConsentMode::NotNeeded {
            // A consent-free basis (treatment, law) is not the practice's to remove.
            return ConsentMode::NotNeeded;
        }
        if self.opt_in_required.contains(&purpose) {
            return ConsentMode::OptIn;
        }
        if rule.practice_may_relax && self.marketing == MarketingMode::OptOut {
            return ConsentMode::OptOut;
        }
        rule.consent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The module's table, row by row, against [`rule`].
    #[test]
    fn the_documented_table_is_the_catalogue() {
        let doc = include_str!("catalogue.rs");
        let rows: Vec<&str> = doc
            .lines()
            .filter(|l| l.starts_with("//! | ") && !l.starts_with("//! | purpose"))
            .collect();
        assert_eq!(rows.len(), Purpose::ALL.len(), "one row per purpose");
        for (row, purpose) in rows.iter().zip(Purpose::ALL) {
            let cells: Vec<&str> = row
                .trim_start_matches("//! ")
                .split('|')
                .map(str::trim)
                .collect();
            let r = rule(purpose);
            let consent = match r.consent {
                ConsentMode::NotNeeded => "not needed",
                ConsentMode::OptOut => "opt-out",
                ConsentMode::OptIn => "opt-in",
            };
            assert_eq!(cells[6], consent, "{purpose}");
            assert_eq!(
                cells[5],
                if r.ccpa_opt_out { "yes" } else { "no" },
                "{purpose}"
            );
            let art6 = r.gdpr.citation().trim_start_matches("GDPR Art. ");
            assert!(
                cells[3].starts_with(art6),
                "{purpose}: {} vs {art6}",
                cells[3]
            );
            let art9 = r
                .gdpr_health
                .citation()
                .map_or("none", |c| c.trim_start_matches("GDPR Art. "));
            assert!(
                cells[4].starts_with(art9),
                "{purpose}: {} vs {art9}",
                cells[4]
            );
        }
    }

    #[test]
    fn every_purpose_that_needs_consent_relies_on_it_in_every_regime_that_asks() {
        for purpose in Purpose::ALL {
            let r = rule(purpose);
            match r.consent {
                ConsentMode::OptIn => {
                    assert!(
                        matches!(r.hipaa, HipaaBasis::Authorisation { .. }),
                        "{purpose}"
                    );
                    assert_eq!(r.gdpr, GdprBasis::Consent, "{purpose}");
                    assert_eq!(r.gdpr_health, GdprCondition::ExplicitConsent, "{purpose}");
                }
                ConsentMode::NotNeeded => {
                    assert!(
                        !matches!(r.hipaa, HipaaBasis::Authorisation { .. }),
                        "{purpose}"
                    );
                    assert_ne!(r.gdpr, GdprBasis::Consent, "{purpose}");
                }
                ConsentMode::OptOut => assert!(r.ccpa_opt_out, "{purpose}"),
            }
            for regime in [Regime::Hipaa, Regime::Gdpr, Regime::Ccpa] {
                assert_eq!(r.ground(regime).regime, regime);
            }
        }
    }

    #[test]
    fn the_default_practice_is_the_strictest() {
        let default = PracticePolicy::default();
        for purpose in Purpose::ALL {
            assert_eq!(
                default.consent_mode(purpose),
                rule(purpose).consent,
                "{purpose}"
            );
        }
        assert_eq!(
            default.consent_mode(Purpose::MarketingEmail),
            ConsentMode::OptIn
        );
    }

    #[test]
    fn a_practice_relaxes_only_marketing_and_tightens_anything_but_consent_free_uses() {
        let relaxed = PracticePolicy {
            marketing: MarketingMode::OptOut,
            ..PracticePolicy::default()
        };
        assert_eq!(
            relaxed.consent_mode(Purpose::MarketingEmail),
            ConsentMode::OptOut
        );
        assert_eq!(
            relaxed.consent_mode(Purpose::MarketingSms),
            ConsentMode::OptOut
        );
        assert_eq!(relaxed.consent_mode(Purpose::Research), ConsentMode::OptIn);
        assert_eq!(
            relaxed.consent_mode(Purpose::ThirdPartySharing),
            ConsentMode::OptIn
        );

        let strict = PracticePolicy {
            marketing: MarketingMode::OptOut,
            opt_in_required: [
                Purpose::Analytics,
                Purpose::MarketingSms,
                Purpose::Treatment,
            ]
            .into_iter()
            .collect(),
        };
        assert_eq!(strict.consent_mode(Purpose::Analytics), ConsentMode::OptIn);
        assert_eq!(
            strict.consent_mode(Purpose::MarketingSms),
            ConsentMode::OptIn
        );
        assert_eq!(
            strict.consent_mode(Purpose::MarketingEmail),
            ConsentMode::OptOut
        );
        assert_eq!(
            strict.consent_mode(Purpose::Treatment),
            ConsentMode::NotNeeded
        );
    }
}
