//! The rights engine's adapters that live in the composition root: who people
//! are and who may act for them (identity's accounts and guardianships,
//! clinical's clients), the consent ledger (consent), the subjects' data keys
//! (the keyring), the archive packer (a stored ZIP with its SHA-256), and the
//! statements every answer carries (configuration and the consent catalogue).

use std::io::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use consent::ConsentService;
use consent::ConsentServiceError;
use consent::ledger::{Authority, Channel, LedgerAction};
use consent::service::Change;
use crypto::Keyring;
use data_rights::ports::{
    ArchivePacker, ArchivePart, ClientsCursor, ClientsPage, ConsentInstruction, ConsentLedger,
    ConsentLedgerError, Packed, People, Person, PortError, SubjectKeys,
};
use data_rights::request::Requester;
use data_rights::statements::{Controller, ProcessingActivity, Statements};
use kernel::{DataCategory, OrganisationId, Purpose, Regime, RequestContext, SubjectId, UserId};

/// Who people are, from identity's accounts and guardianships and clinical's
/// clients.
pub struct IdentityPeople {
    users: Arc<dyn identity::ports::IdentityRepository>,
    accounts: Arc<dyn identity::ports::AccountRepository>,
    clinical: Arc<dyn clinical::ports::ClinicalRepository>,
}

impl IdentityPeople {
    /// The lookup over identity's repositories and clinical's.
    #[must_use]
    pub fn new(
        users: Arc<dyn identity::ports::IdentityRepository>,
        accounts: Arc<dyn identity::ports::AccountRepository>,
        clinical: Arc<dyn clinical::ports::ClinicalRepository>,
    ) -> Self {
        Self {
            users,
            accounts,
            clinical,
        }
    }
}

impl std::fmt::Debug for IdentityPeople {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityPeople").finish_non_exhaustive()
    }
}

fn port_error(err: impl std::error::Error + Send + Sync + 'static) -> PortError {
    Box::new(err)
}

#[async_trait]
impl People for IdentityPeople {
    async fn person(&self, user: UserId) -> Result<Option<Person>, PortError> {
        // Identity's reads never return an erased account.
        Ok(self
            .users
            .user(user)
            .await
            .map_err(port_error)?
            .map(|found| Person {
                user: found.id,
                subject: found.subject,
                home_organisation: found.home_organisation,
            }))
    }

    /// The live account of `subject`. An erased account's practice is not read
    /// back by identity's ports (its row is kept only for references), so an
    /// erased subject is answered `None`: nobody files anything more about them.
    async fn person_of_subject(&self, subject: SubjectId) -> Result<Option<Person>, PortError> {
        match self
            .accounts
            .account_of_subject(subject)
            .await
            .map_err(port_error)?
        {
            Some((user, false)) => self.person(user).await,
            Some((_, true)) | None => Ok(None),
        }
    }

    /// Only a guardianship linked by the minor's home practice counts, as for
    /// identity's own age gate.
    async fn is_guardian(&self, guardian: UserId, minor: UserId) -> Result<bool, PortError> {
        let Some(minor_person) = self.person(minor).await? else {
            return Ok(false);
        };
        Ok(self
            .accounts
            .guardianships(minor)
            .await
            .map_err(port_error)?
            .iter()
            .any(|g| {
                g.minor == minor
                    && g.guardian == guardian
                    && g.organisation == minor_person.home_organisation
            }))
    }

    /// Every client of the practice (as an admin lists them), by when they became
    /// one; the person's keys and requests belong to their home practice.
    async fn clients_of(
        &self,
        organisation: OrganisationId,
        after: Option<ClientsCursor>,
        limit: u32,
    ) -> Result<ClientsPage, PortError> {
        let page = self
            .clinical
            .clients(
                organisation,
                None,
                chrono::Utc::now().date_naive(),
                clinical::model::PageRequest {
                    after: after.map(|c| clinical::model::Cursor { at: c.at, id: c.id }),
                    limit: limit.clamp(1, clinical::model::MAX_PAGE),
                },
            )
            .await
            .map_err(port_error)?;
        Ok(ClientsPage {
            people: page
                .items
                .into_iter()
                .map(|listing| Person {
                    user: listing.client.user,
                    subject: listing.client.subject,
                    home_organisation: listing.client.home_organisation,
                })
                .collect(),
            next: page.next.map(|c| ClientsCursor { at: c.at, id: c.id }),
        })
    }

    async fn is_client(
        &self,
        organisation: OrganisationId,
        user: UserId,
    ) -> Result<bool, PortError> {
        Ok(self
            .clinical
            .client(organisation, user)
            .await
            .map_err(port_error)?
            .is_some())
    }
}

/// The consent ledger as the rights engine drives it: each instruction recorded
/// through [`ConsentService::record`] on the requester's authority, through the
/// API channel.
#[derive(Clone)]
pub struct ConsentServiceLedger {
    consent: ConsentService,
}

impl std::fmt::Debug for ConsentServiceLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentServiceLedger")
            .finish_non_exhaustive()
    }
}

impl ConsentServiceLedger {
    /// The ledger over `consent`.
    #[must_use]
    pub const fn new(consent: ConsentService) -> Self {
        Self { consent }
    }

    async fn record(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        change: &Change,
    ) -> Result<(), ConsentLedgerError> {
        self.consent
            .record(ctx, subject, change)
            .await
            .map(drop)
            .map_err(ledger_error)
    }
}

/// The consent ledger's authority for a rights requester.
#[must_use]
pub const fn authority(requester: Requester) -> Authority {
    match requester {
        Requester::Subject { .. } => Authority::Person,
        Requester::Guardian { user } => Authority::Guardian(user),
        Requester::AuthorisedAgent { user } => Authority::AuthorisedAgent(user),
        Requester::Provider { user } => Authority::ProviderAttesting(user),
    }
}

/// A ledger refusal in plain words (the ledger's own messages name an action or
/// a rule, never personal data); a failure stays a failure.
fn ledger_error(err: ConsentServiceError) -> ConsentLedgerError {
    match err {
        ConsentServiceError::Ledger(e) => ConsentLedgerError::Refused(e.to_string()),
        ConsentServiceError::Unavailable(e) => ConsentLedgerError::Unavailable(e),
        ConsentServiceError::NoAuthority => ConsentLedgerError::Refused(
            "the consent ledger does not accept this authority".to_owned(),
        ),
        other @ (ConsentServiceError::Authorisation(_)
        | ConsentServiceError::Policy(_)
        | ConsentServiceError::PolicyExists
        | ConsentServiceError::NotFound) => ConsentLedgerError::Refused(other.to_string()),
    }
}

fn change(
    action: LedgerAction,
    authority: Authority,
    purpose: Option<Purpose>,
    recipient: Option<String>,
    category: Option<DataCategory>,
) -> Change {
    Change {
        purpose,
        recipient,
        category,
        authority,
        ..Change::by_person(action, Channel::Api)
    }
}

#[async_trait]
impl ConsentLedger for ConsentServiceLedger {
    /// A restriction of (or lifting for) every category is recorded category by
    /// category, as the ledger keeps them; lifting everything lifts the
    /// categories under restriction and is refused only when none is.
    async fn apply(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        requester: Requester,
        instruction: ConsentInstruction,
    ) -> Result<(), ConsentLedgerError> {
        let by = authority(requester);
        match instruction {
            ConsentInstruction::Withdraw { purpose, recipient } => {
                let change = change(LedgerAction::Withdraw, by, Some(purpose), recipient, None);
                self.record(ctx, subject, &change).await
            }
            ConsentInstruction::Object { purpose } => {
                let change = change(LedgerAction::Object, by, Some(purpose), None, None);
                self.record(ctx, subject, &change).await
            }
            ConsentInstruction::Restrict { category } => {
                for category in category.map_or_else(|| DataCategory::ALL.to_vec(), |c| vec![c]) {
                    let change = change(LedgerAction::Restrict, by, None, None, Some(category));
                    self.record(ctx, subject, &change).await?;
                }
                Ok(())
            }
            ConsentInstruction::LiftRestriction {
                category: Some(category),
            } => {
                let change = change(
                    LedgerAction::LiftRestriction,
                    by,
                    None,
                    None,
                    Some(category),
                );
                self.record(ctx, subject, &change).await
            }
            ConsentInstruction::LiftRestriction { category: None } => {
                let mut refused = None;
                let mut lifted = false;
                for category in DataCategory::ALL {
                    let change = change(
                        LedgerAction::LiftRestriction,
                        by,
                        None,
                        None,
                        Some(category),
                    );
                    match self.record(ctx, subject, &change).await {
                        Ok(()) => lifted = true,
                        Err(ConsentLedgerError::Refused(message)) => refused = Some(message),
                        Err(e) => return Err(e),
                    }
                }
                match (lifted, refused) {
                    (false, Some(message)) => Err(ConsentLedgerError::Refused(message)),
                    _ => Ok(()),
                }
            }
        }
    }
}

/// The subjects' data keys, destroyed through the keyring.
#[derive(Debug, Clone)]
pub struct KeyringSubjectKeys {
    keyring: Keyring,
}

impl KeyringSubjectKeys {
    /// The adapter over `keyring`.
    #[must_use]
    pub const fn new(keyring: Keyring) -> Self {
        Self { keyring }
    }
}

#[async_trait]
impl SubjectKeys for KeyringSubjectKeys {
    async fn shred(
        &self,
        organisation: OrganisationId,
        subject: SubjectId,
    ) -> Result<u64, PortError> {
        self.keyring
            .shred_subject(organisation, subject)
            .await
            .map_err(port_error)
    }
}

/// The media type of the archives.
pub const ZIP: &str = "application/zip";

/// Packs an answer's files into one ZIP archive, each entry stored as it is
/// (no compression), and digests it with SHA-256.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZipPacker;

#[derive(Debug, thiserror::Error)]
#[error("the archive could not be written: {0}")]
struct PackError(String);

impl ArchivePacker for ZipPacker {
    fn media_type(&self) -> &'static str {
        ZIP
    }

    fn pack(&self, parts: &[ArchivePart]) -> Result<Packed, PortError> {
        let fail = |e: &dyn std::fmt::Display| -> PortError { Box::new(PackError(e.to_string())) };
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(parts.iter().any(|p| p.content.len() >= 0xFFFF_FFFF));
        for part in parts {
            writer
                .start_file(part.name, options)
                .map_err(|e| fail(&e))?;
            writer.write_all(&part.content).map_err(|e| fail(&e))?;
        }
        let bytes = writer.finish().map_err(|e| fail(&e))?.into_inner();
        let sha256 = sha256_hex(&bytes);
        Ok(Packed { bytes, sha256 })
    }
}

/// SHA-256 of `bytes`, lowercase hex.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest
        .as_ref()
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// What every answer states (D13): the controller and its privacy officer as
/// configured, and each purpose's legal basis under each regime from the
/// consent catalogue.
#[must_use]
pub fn statements(controller: Controller) -> Statements {
    let processing = Purpose::ALL
        .into_iter()
        .map(|purpose| {
            let rule = consent::catalogue::rule(purpose);
            ProcessingActivity {
                purpose,
                grounds: Regime::ALL.into_iter().map(|r| rule.ground(r)).collect(),
            }
        })
        .collect();
    Statements::new(controller, processing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_is_a_stored_zip_whose_digest_is_its_sha256() {
        let parts = [
            ArchivePart {
                name: "export.json",
                content: br#"{"a":1}"#.to_vec(),
            },
            ArchivePart {
                name: "statements.json",
                content: b"{}".to_vec(),
            },
        ];
        let packed = ZipPacker.pack(&parts).expect("packs");
        assert_eq!(packed.sha256, sha256_hex(&packed.bytes));
        assert_eq!(packed.sha256.len(), 64);
        let mut archive =
            zip::ZipArchive::new(std::io::Cursor::new(packed.bytes.clone())).expect("a ZIP");
        assert_eq!(archive.len(), 2);
        let mut first = archive.by_name("export.json").expect("the entry");
        assert_eq!(first.compression(), zip::CompressionMethod::Stored);
        let mut content = String::new();
        std::io::Read::read_to_string(&mut first, &mut content).expect("reads");
        assert_eq!(content, r#"{"a":1}"#);
        // The same parts pack to the same bytes (no clock inside).
        assert_eq!(ZipPacker.pack(&parts).expect("packs").bytes, packed.bytes);
    }

    #[test]
    fn sha256_is_lowercase_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn statements_give_every_purpose_a_ground_under_every_regime() {
        let s = statements(Controller {
            name: "C".into(),
            address: "A".into(),
            privacy_officer_email: "p@example.org".into(),
        });
        assert_eq!(s.processing.len(), Purpose::ALL.len());
        for activity in &s.processing {
            let regimes: Vec<Regime> = activity.grounds.iter().map(|g| g.regime).collect();
            assert_eq!(regimes, Regime::ALL.to_vec());
        }
    }

    #[test]
    fn each_requester_acts_on_its_own_authority() {
        let user = UserId::new();
        assert_eq!(authority(Requester::Subject { user }), Authority::Person);
        assert_eq!(
            authority(Requester::Guardian { user }),
            Authority::Guardian(user)
        );
        assert_eq!(
            authority(Requester::AuthorisedAgent { user }),
            Authority::AuthorisedAgent(user)
        );
        assert_eq!(
            authority(Requester::Provider { user }),
            Authority::ProviderAttesting(user)
        );
    }
}
