//! [`SeaOrmConsentRepository`]: the consent context's `ConsentRepository` port on
//! `consent_subjects`, `consent_events`, `consent_evidence`,
//! `consent_authorisations`, `consent_settings`, `consent_policies` and
//! `consent_erasures`.
//!
//! An append is one transaction whose first statement moves the subject's head
//! with a conditional `UPDATE` (`... WHERE subject_id = ? AND chain_id = ? AND
//! head_sequence = expected`, or `IS NULL` for the first event), or inserts the
//! subject's row when they have none; a row with another head, or an insert that
//! meets an existing key, is [`RepositoryError::Conflict`] and the transaction is
//! rolled back. The event, its sealed evidence and the optional sealed
//! authorisation follow in the same transaction. Starting with a write matters on
//! SQLite: a transaction that read first could not upgrade to a write once another
//! writer committed, and would fail instead of waiting. The record handed in must
//! be headed by the event (else the append is refused as unavailable); an append
//! moves the head and the projection but leaves the practice and minority, which
//! are `register`'s, as they are stored.
//!
//! The evidence and authorisations are sealed with the subject's data key *before*
//! the transaction begins, so a key created on the way never waits on the
//! transaction's own write lock. The key belongs to the subject under their
//! practice; a subject known to no practice has their key under the nil
//! organisation. Evidence is bound to its row through a name-based id: the first 16
//! bytes of `SHA-256("custodia.consent.evidence.binding" || chain || sequence)` as
//! a UUIDv8 (see `evidence_binding`); an authorisation is bound to its id. So a
//! ciphertext only opens in the row it was written for. Evidence or an
//! authorisation whose key was destroyed reads as absent.
//!
//! Uuids are 16-byte blobs on SQLite and `uuid` on PostgreSQL; both compare them
//! byte by byte, which is `Uuid`'s order, so the keyset pages (`events_after`,
//! `heads_after`, `subjects_after`) come out in the order the port promises.
//! Times are the ledger's microseconds as integers, exactly what the hashes cover.

mod entity;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, Utc};
use consent::MarketingMode;
use consent::PracticePolicy;
use consent::authorisation::StoredAuthorisation;
use consent::decision::SubjectState;
use consent::ledger::{
    Authority, ChainId, Channel, EventBody, LedgerAction, LedgerEvent, SaltedEvidence,
};
use consent::policy::PolicyVersion;
use consent::ports::{
    ConsentRepository, Erased, HistoryEntry, LedgerCursor, PracticeSettings, RepositoryError,
    SubjectRecord,
};
use crypto::{FieldBinding, Keyring, KeyringError};
use kernel::{DataCategory, OrganisationId, Purpose, Regime, Sensitive, SubjectId, UserId};
use sea_orm::sea_query::{Expr, OnConflict, Query, SelectStatement};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, ExprTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr, TransactionTrait,
};
use uuid::Uuid;

use self::entity::{
    consent_authorisation, consent_erasure, consent_event, consent_evidence, consent_policy,
    consent_setting, consent_subject,
};
use crate::Database;
use crate::rows::{finish, row_binding, stored};

/// Field binding of an event's sealed evidence.
const EVIDENCE_FIELD: &str = "consent_evidence.sealed";

/// Field binding of a sealed authorisation.
const AUTHORISATION_FIELD: &str = "consent_authorisation.sealed";

/// Domain of [`evidence_binding`].
const BINDING_DOMAIN: &[u8] = b"custodia.consent.evidence.binding";

const SUBJECTS: &str = "consent_subjects";
const EVENTS: &str = "consent_events";
const EVIDENCE: &str = "consent_evidence";
const AUTHORISATIONS: &str = "consent_authorisations";
const SETTINGS: &str = "consent_settings";

/// The consent ledger, its projection, authorisations, settings and policies on
/// Custodia's database.
#[derive(Debug, Clone)]
pub struct SeaOrmConsentRepository {
    db: Database,
    keyring: Keyring,
}

impl SeaOrmConsentRepository {
    /// Events in (chain, sequence) order after `after`, of every chain or only of
    /// `organisation`'s subjects' chains.
    async fn events_page(
        &self,
        organisation: Option<OrganisationId>,
        after: Option<LedgerCursor>,
        limit: u32,
    ) -> Result<Vec<LedgerEvent>, RepositoryError> {
        use consent_event::Column as C;
        let mut query = consent_event::Entity::find();
        if let Some(organisation) = organisation {
            let chains = Query::select()
                .column(consent_subject::Column::ChainId)
                .from(consent_subject::Entity)
                .and_where(consent_subject::Column::OrganisationId.eq(organisation.as_uuid()))
                .to_owned();
            query = query.filter(C::ChainId.in_subquery(chains));
        }
        if let Some((chain, sequence)) = after {
            query = match i64::try_from(sequence) {
                // A row-value comparison, so both engines seek in the primary key.
                Ok(sequence) => query.filter(
                    Expr::tuple([Expr::col(C::ChainId), Expr::col(C::Sequence)])
                        .gt(Expr::tuple([Expr::value(chain.0), Expr::value(sequence)])),
                ),
                // No stored sequence is that large: the next chain follows.
                Err(_) => query.filter(C::ChainId.gt(chain.0)),
            };
        }
        query
            .order_by_asc(C::ChainId)
            .order_by_asc(C::Sequence)
            .limit(u64::from(limit))
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(event_of)
            .collect()
    }

    /// The repository on `db`, sealing evidence and authorisations with `keyring`.
    #[must_use]
    pub const fn new(db: Database, keyring: Keyring) -> Self {
        Self { db, keyring }
    }
}

/// Why a write was refused, or a row could not be read. Never names a value.
#[derive(Debug, thiserror::Error)]
enum Fault {
    /// A sequence number does not fit the database's signed 64-bit integers.
    #[error("a consent sequence number is out of range")]
    OutOfRange,
    /// A record could not be encoded.
    #[error("a consent record could not be encoded")]
    Encoding,
    /// The record handed to `append` does not have the event as its head.
    #[error("the projection handed to append is not headed by the event")]
    Inconsistent,
    /// A stored row does not decode.
    #[error("a row of {0} is malformed")]
    Corrupt(&'static str),
}

fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> RepositoryError {
    RepositoryError::Unavailable(Box::new(err))
}

fn corrupt(table: &'static str) -> RepositoryError {
    unavailable(Fault::Corrupt(table))
}

/// A write's error: a unique-key violation is the port's conflict.
fn conflict_or_unavailable(err: DbErr) -> RepositoryError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => RepositoryError::Conflict,
        _ => unavailable(err),
    }
}

fn signed(n: u64) -> Result<i64, RepositoryError> {
    i64::try_from(n).map_err(|_| unavailable(Fault::OutOfRange))
}

fn unsigned(n: i64, table: &'static str) -> Result<u64, RepositoryError> {
    u64::try_from(n).map_err(|_| corrupt(table))
}

fn bytes32(raw: &[u8], table: &'static str) -> Result<[u8; 32], RepositoryError> {
    <[u8; 32]>::try_from(raw).map_err(|_| corrupt(table))
}

/// The organisation the subject's data key is kept under: their practice, or the
/// nil organisation for a subject known to no practice.
fn key_organisation(organisation: Option<OrganisationId>) -> OrganisationId {
    organisation.unwrap_or_else(|| OrganisationId::from_uuid(Uuid::nil()))
}

/// The name-based id an event's sealed evidence is bound to.
fn evidence_binding(chain: ChainId, sequence: u64) -> Uuid {
    row_binding(BINDING_DOMAIN, chain.0, sequence)
}

fn head_of(
    sequence: Option<i64>,
    hash: Option<&[u8]>,
) -> Result<Option<(u64, [u8; 32])>, RepositoryError> {
    match (sequence, hash) {
        (None, None) => Ok(None),
        (Some(s), Some(h)) => Ok(Some((unsigned(s, SUBJECTS)?, bytes32(h, SUBJECTS)?))),
        _ => Err(corrupt(SUBJECTS)),
    }
}

fn record_of(row: consent_subject::Model) -> Result<SubjectRecord, RepositoryError> {
    // A serde error may quote the document; it is not passed on.
    let state: SubjectState = serde_json::from_str(&row.state).map_err(|_| corrupt(SUBJECTS))?;
    let head = head_of(row.head_sequence, row.head_hash.as_deref())?;
    if state.chain.0 != row.chain_id || state.head != head {
        return Err(corrupt(SUBJECTS));
    }
    Ok(SubjectRecord {
        subject: SubjectId::from_uuid(row.subject_id),
        organisation: row.organisation_id.map(OrganisationId::from_uuid),
        minor: row.minor,
        state,
    })
}

fn event_row(e: &LedgerEvent) -> Result<consent_event::ActiveModel, RepositoryError> {
    let b = &e.body;
    Ok(consent_event::ActiveModel {
        chain_id: Set(e.chain.0),
        sequence: Set(signed(e.sequence)?),
        action: Set(b.action.as_str().to_owned()),
        purpose: Set(b.purpose.map(|p| p.as_str().to_owned())),
        recipient: Set(b.recipient.clone()),
        category: Set(b.category.map(|c| c.as_str().to_owned())),
        authority_kind: Set(b.authority.kind().to_owned()),
        authority_user: Set(b.authority.user().map(|u| u.as_uuid())),
        channel: Set(b.channel.as_str().to_owned()),
        evidence_digest: Set(b.evidence_digest.to_vec()),
        policy_version: Set(b.policy_version.clone()),
        recorded_at: Set(b.recorded_at),
        effective_at: Set(b.effective_at),
        expires_at: Set(b.expires_at),
        prev_hash: Set(e.prev_hash.to_vec()),
        hash: Set(e.hash.to_vec()),
    })
}

fn parsed<T>(
    raw: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, RepositoryError> {
    raw.map(|s| parse(s).ok_or_else(|| corrupt(EVENTS)))
        .transpose()
}

fn event_of(row: consent_event::Model) -> Result<LedgerEvent, RepositoryError> {
    let authority = Authority::from_parts(
        &row.authority_kind,
        row.authority_user.map(UserId::from_uuid),
    )
    .ok_or_else(|| corrupt(EVENTS))?;
    Ok(LedgerEvent {
        chain: ChainId(row.chain_id),
        sequence: unsigned(row.sequence, EVENTS)?,
        prev_hash: bytes32(&row.prev_hash, EVENTS)?,
        hash: bytes32(&row.hash, EVENTS)?,
        body: EventBody {
            action: LedgerAction::parse(&row.action).ok_or_else(|| corrupt(EVENTS))?,
            purpose: parsed(row.purpose.as_deref(), Purpose::parse)?,
            recipient: row.recipient,
            category: parsed(row.category.as_deref(), DataCategory::parse)?,
            authority,
            channel: Channel::parse(&row.channel).ok_or_else(|| corrupt(EVENTS))?,
            evidence_digest: bytes32(&row.evidence_digest, EVENTS)?,
            policy_version: row.policy_version,
            recorded_at: row.recorded_at,
            effective_at: row.effective_at,
            expires_at: row.expires_at,
        },
    })
}

fn marketing_name(mode: MarketingMode) -> &'static str {
    match mode {
        MarketingMode::OptIn => "opt_in",
        MarketingMode::OptOut => "opt_out",
    }
}

fn marketing_of(name: &str) -> Option<MarketingMode> {
    match name {
        "opt_in" => Some(MarketingMode::OptIn),
        "opt_out" => Some(MarketingMode::OptOut),
        _ => None,
    }
}

fn settings_of(row: &consent_setting::Model) -> Result<PracticeSettings, RepositoryError> {
    let names: Vec<String> =
        serde_json::from_str(&row.opt_in_required).map_err(|_| corrupt(SETTINGS))?;
    let opt_in_required = names
        .iter()
        .map(|n| Purpose::parse(n))
        .collect::<Option<BTreeSet<_>>>()
        .ok_or_else(|| corrupt(SETTINGS))?;
    Ok(PracticeSettings {
        policy: PracticePolicy {
            marketing: marketing_of(&row.marketing).ok_or_else(|| corrupt(SETTINGS))?,
            opt_in_required,
        },
        regime: Regime::parse(&row.regime).ok_or_else(|| corrupt(SETTINGS))?,
    })
}

fn policy_of(row: consent_policy::Model) -> PolicyVersion {
    PolicyVersion {
        document: row.document,
        version: row.version,
        effective_at: row.effective_at,
        content_sha256: row.content_sha256,
        material: row.material,
        summary: row.summary,
        published_at: row.published_at,
    }
}

/// What one append writes, prepared (and sealed) before its transaction.
struct AppendRows {
    subject: Uuid,
    chain: Uuid,
    organisation: Option<Uuid>,
    minor: bool,
    expected: Option<i64>,
    head_sequence: i64,
    head_hash: Vec<u8>,
    state: String,
    updated_at: DateTime<FixedOffset>,
    event: consent_event::ActiveModel,
    evidence: consent_evidence::ActiveModel,
    authorisation: Option<consent_authorisation::ActiveModel>,
}

/// The statements of one append, inside its transaction.
async fn write_append(txn: &DatabaseTransaction, rows: AppendRows) -> Result<(), RepositoryError> {
    use consent_subject::Column as C;
    let stored_head = match rows.expected {
        Some(sequence) => C::HeadSequence.eq(sequence),
        None => C::HeadSequence.is_null(),
    };
    // The practice and minority are `register`'s to change, not an append's.
    let moved = consent_subject::Entity::update_many()
        .col_expr(C::HeadSequence, Expr::value(rows.head_sequence))
        .col_expr(C::HeadHash, Expr::value(rows.head_hash.clone()))
        .col_expr(C::State, Expr::value(rows.state.clone()))
        .col_expr(C::UpdatedAt, Expr::value(rows.updated_at))
        .filter(C::SubjectId.eq(rows.subject))
        .filter(C::ChainId.eq(rows.chain))
        .filter(stored_head)
        .exec(txn)
        .await
        .map_err(unavailable)?
        .rows_affected;
    match (moved, rows.expected) {
        (1, _) => {}
        // The subject's first event: their row is created with it, unless another
        // writer created it first (a key violation).
        (0, None) => {
            let insert = consent_subject::ActiveModel {
                subject_id: Set(rows.subject),
                chain_id: Set(rows.chain),
                organisation_id: Set(rows.organisation),
                minor: Set(rows.minor),
                head_sequence: Set(Some(rows.head_sequence)),
                head_hash: Set(Some(rows.head_hash)),
                state: Set(rows.state),
                updated_at: Set(rows.updated_at),
            };
            consent_subject::Entity::insert(insert)
                .exec_without_returning(txn)
                .await
                .map_err(conflict_or_unavailable)?;
        }
        (0, Some(_)) => return Err(RepositoryError::Conflict),
        _ => return Err(corrupt(SUBJECTS)),
    }
    consent_event::Entity::insert(rows.event)
        .exec_without_returning(txn)
        .await
        .map_err(conflict_or_unavailable)?;
    consent_evidence::Entity::insert(rows.evidence)
        .exec_without_returning(txn)
        .await
        .map_err(conflict_or_unavailable)?;
    if let Some(row) = rows.authorisation {
        consent_authorisation::Entity::insert(row)
            .exec_without_returning(txn)
            .await
            .map_err(conflict_or_unavailable)?;
    }
    Ok(())
}

/// The statements of one erasure, inside its transaction. Each deletion comes
/// before any read, so on SQLite the transaction holds the write lock from its
/// first statement.
async fn write_erase(
    txn: &DatabaseTransaction,
    subject: Uuid,
    erased_at: i64,
) -> Result<Option<Erased>, RepositoryError> {
    let evidence = consent_evidence::Entity::delete_many()
        .filter(consent_evidence::Column::SubjectId.eq(subject))
        .exec(txn)
        .await
        .map_err(unavailable)?
        .rows_affected;
    let authorisations = consent_authorisation::Entity::delete_many()
        .filter(consent_authorisation::Column::SubjectId.eq(subject))
        .exec(txn)
        .await
        .map_err(unavailable)?
        .rows_affected;
    let Some(row) = consent_subject::Entity::find_by_id(subject)
        .one(txn)
        .await
        .map_err(unavailable)?
    else {
        return Ok(None);
    };
    consent_subject::Entity::delete_by_id(subject)
        .exec(txn)
        .await
        .map_err(unavailable)?;
    consent_erasure::Entity::insert(consent_erasure::ActiveModel {
        chain_id: Set(row.chain_id),
        erased_at: Set(erased_at),
    })
    .exec_without_returning(txn)
    .await
    .map_err(unavailable)?;
    let events_kept = consent_event::Entity::find()
        .filter(consent_event::Column::ChainId.eq(row.chain_id))
        .count(txn)
        .await
        .map_err(unavailable)?;
    Ok(Some(Erased {
        chain: Some(ChainId(row.chain_id)),
        evidence,
        authorisations,
        events_kept,
    }))
}

impl SeaOrmConsentRepository {
    /// Seals `plaintext` with the subject's data key, bound to `binding`.
    async fn seal(
        &self,
        record: &SubjectRecord,
        binding: FieldBinding,
        plaintext: &Sensitive<Vec<u8>>,
    ) -> Result<Vec<u8>, RepositoryError> {
        self.keyring
            .encrypt(
                key_organisation(record.organisation),
                record.subject,
                binding,
                plaintext.expose(),
            )
            .await
            .map_err(unavailable)
    }

    /// Opens a sealed value; `None` once its key was destroyed.
    async fn open(
        &self,
        binding: FieldBinding,
        sealed: &[u8],
    ) -> Result<Option<Sensitive<Vec<u8>>>, RepositoryError> {
        match self.keyring.decrypt(binding, sealed).await {
            Ok(plain) => Ok(Some(plain)),
            Err(KeyringError::KeyDestroyed(_) | KeyringError::SubjectErased) => Ok(None),
            Err(err) => Err(unavailable(err)),
        }
    }

    /// Everything one append writes, with the evidence and authorisation sealed.
    async fn append_rows(
        &self,
        record: &SubjectRecord,
        expected_head: Option<u64>,
        event: &LedgerEvent,
        evidence: &SaltedEvidence,
        authorisation: Option<&StoredAuthorisation>,
    ) -> Result<AppendRows, RepositoryError> {
        if event.chain != record.state.chain
            || record.state.head != Some((event.sequence, event.hash))
        {
            return Err(unavailable(Fault::Inconsistent));
        }
        let sequence = signed(event.sequence)?;
        let state =
            serde_json::to_string(&record.state).map_err(|_| unavailable(Fault::Encoding))?;
        let evidence_json =
            Sensitive::new(serde_json::to_vec(evidence).map_err(|_| unavailable(Fault::Encoding))?);
        let sealed_evidence = self
            .seal(
                record,
                FieldBinding::new(
                    evidence_binding(event.chain, event.sequence),
                    EVIDENCE_FIELD,
                ),
                &evidence_json,
            )
            .await?;
        let authorisation = match authorisation {
            Some(a) => {
                let json = Sensitive::new(
                    serde_json::to_vec(a).map_err(|_| unavailable(Fault::Encoding))?,
                );
                let sealed = self
                    .seal(record, FieldBinding::new(a.id, AUTHORISATION_FIELD), &json)
                    .await?;
                Some(consent_authorisation::ActiveModel {
                    id: Set(a.id),
                    subject_id: Set(record.subject.as_uuid()),
                    recorded_at: Set(a.recorded_at),
                    sealed: Set(sealed),
                })
            }
            None => None,
        };
        Ok(AppendRows {
            subject: record.subject.as_uuid(),
            chain: record.state.chain.0,
            organisation: record.organisation.map(|o| o.as_uuid()),
            minor: record.minor,
            expected: expected_head.map(signed).transpose()?,
            head_sequence: sequence,
            head_hash: event.hash.to_vec(),
            state,
            updated_at: stored(Utc::now()),
            event: event_row(event)?,
            evidence: consent_evidence::ActiveModel {
                chain_id: Set(event.chain.0),
                sequence: Set(sequence),
                subject_id: Set(record.subject.as_uuid()),
                sealed: Set(sealed_evidence),
            },
            authorisation,
        })
    }
}

#[async_trait]
impl ConsentRepository for SeaOrmConsentRepository {
    async fn subject(&self, subject: SubjectId) -> Result<Option<SubjectRecord>, RepositoryError> {
        consent_subject::Entity::find_by_id(subject.as_uuid())
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .map(record_of)
            .transpose()
    }

    async fn register(
        &self,
        subject: SubjectId,
        organisation: Option<OrganisationId>,
        minor: bool,
    ) -> Result<SubjectRecord, RepositoryError> {
        use consent_subject::Column as C;
        let fresh = SubjectRecord::new(subject, organisation, minor);
        let state =
            serde_json::to_string(&fresh.state).map_err(|_| unavailable(Fault::Encoding))?;
        let row = consent_subject::ActiveModel {
            subject_id: Set(subject.as_uuid()),
            chain_id: Set(fresh.state.chain.0),
            organisation_id: Set(organisation.map(|o| o.as_uuid())),
            minor: Set(minor),
            head_sequence: Set(None),
            head_hash: Set(None),
            state: Set(state),
            updated_at: Set(stored(Utc::now())),
        };
        // An existing record keeps its chain and head, and its practice unless a
        // new one is given.
        let upsert = OnConflict::column(C::SubjectId)
            .value(
                C::OrganisationId,
                Expr::cust("COALESCE(excluded.organisation_id, consent_subjects.organisation_id)"),
            )
            .update_columns([C::Minor, C::UpdatedAt])
            .to_owned();
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let work = async {
            consent_subject::Entity::insert(row)
                .on_conflict(upsert)
                .exec_without_returning(&txn)
                .await
                .map_err(unavailable)?;
            consent_subject::Entity::find_by_id(subject.as_uuid())
                .one(&txn)
                .await
                .map_err(unavailable)?
                .ok_or_else(|| corrupt(SUBJECTS))
                .and_then(record_of)
        }
        .await;
        finish(txn, work, conflict_or_unavailable).await
    }

    async fn append(
        &self,
        record: &SubjectRecord,
        expected_head: Option<u64>,
        event: &LedgerEvent,
        evidence: &SaltedEvidence,
        authorisation: Option<&StoredAuthorisation>,
    ) -> Result<(), RepositoryError> {
        let rows = self
            .append_rows(record, expected_head, event, evidence, authorisation)
            .await?;
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let work = write_append(&txn, rows).await;
        finish(txn, work, conflict_or_unavailable).await
    }

    async fn history(&self, subject: SubjectId) -> Result<Vec<HistoryEntry>, RepositoryError> {
        let Some(chain) = consent_subject::Entity::find_by_id(subject.as_uuid())
            .select_only()
            .column(consent_subject::Column::ChainId)
            .into_tuple::<Uuid>()
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
        else {
            return Ok(Vec::new());
        };
        // Events first: the evidence of every event read was committed with it.
        let events = consent_event::Entity::find()
            .filter(consent_event::Column::ChainId.eq(chain))
            .order_by_asc(consent_event::Column::Sequence)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        let mut sealed: HashMap<i64, Vec<u8>> = consent_evidence::Entity::find()
            .filter(consent_evidence::Column::ChainId.eq(chain))
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|row| (row.sequence, row.sealed))
            .collect();
        let mut out = Vec::with_capacity(events.len());
        for row in events {
            let envelope = sealed.remove(&row.sequence);
            let event = event_of(row)?;
            let evidence = match envelope {
                Some(envelope) => {
                    let binding = FieldBinding::new(
                        evidence_binding(event.chain, event.sequence),
                        EVIDENCE_FIELD,
                    );
                    match self.open(binding, &envelope).await? {
                        Some(json) => Some(
                            serde_json::from_slice::<SaltedEvidence>(json.expose())
                                .map_err(|_| corrupt(EVIDENCE))?,
                        ),
                        None => None,
                    }
                }
                None => None,
            };
            out.push(HistoryEntry { event, evidence });
        }
        Ok(out)
    }

    async fn authorisations(
        &self,
        subject: SubjectId,
    ) -> Result<Vec<StoredAuthorisation>, RepositoryError> {
        use consent_authorisation::Column as C;
        let rows = consent_authorisation::Entity::find()
            .filter(C::SubjectId.eq(subject.as_uuid()))
            .order_by_asc(C::RecordedAt)
            .order_by_asc(C::Id)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let binding = FieldBinding::new(row.id, AUTHORISATION_FIELD);
            // An authorisation whose key was destroyed is gone, as its evidence is.
            let Some(json) = self.open(binding, &row.sealed).await? else {
                continue;
            };
            let stored: StoredAuthorisation =
                serde_json::from_slice(json.expose()).map_err(|_| corrupt(AUTHORISATIONS))?;
            if stored.id != row.id {
                return Err(corrupt(AUTHORISATIONS));
            }
            out.push(stored);
        }
        Ok(out)
    }

    async fn events_after(
        &self,
        after: Option<LedgerCursor>,
        limit: u32,
    ) -> Result<Vec<LedgerEvent>, RepositoryError> {
        self.events_page(None, after, limit).await
    }

    async fn events_of_organisation(
        &self,
        organisation: OrganisationId,
        after: Option<LedgerCursor>,
        limit: u32,
    ) -> Result<Vec<LedgerEvent>, RepositoryError> {
        self.events_page(Some(organisation), after, limit).await
    }

    async fn heads_after(
        &self,
        after: Option<ChainId>,
        limit: u32,
    ) -> Result<Vec<(ChainId, Option<(u64, [u8; 32])>)>, RepositoryError> {
        use consent_subject::Column as C;
        let mut query = consent_subject::Entity::find()
            .select_only()
            .column(C::ChainId)
            .column(C::HeadSequence)
            .column(C::HeadHash);
        if let Some(after) = after {
            query = query.filter(C::ChainId.gt(after.0));
        }
        let rows: Vec<(Uuid, Option<i64>, Option<Vec<u8>>)> = query
            .order_by_asc(C::ChainId)
            .limit(u64::from(limit))
            .into_tuple()
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        rows.into_iter()
            .map(|(chain, sequence, hash)| {
                Ok((ChainId(chain), head_of(sequence, hash.as_deref())?))
            })
            .collect()
    }

    async fn subjects_after(
        &self,
        after: Option<SubjectId>,
        limit: u32,
    ) -> Result<Vec<SubjectId>, RepositoryError> {
        use consent_subject::Column as C;
        let mut query = consent_subject::Entity::find()
            .select_only()
            .column(C::SubjectId);
        if let Some(after) = after {
            query = query.filter(C::SubjectId.gt(after.as_uuid()));
        }
        let rows: Vec<Uuid> = query
            .order_by_asc(C::SubjectId)
            .limit(u64::from(limit))
            .into_tuple()
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        Ok(rows.into_iter().map(SubjectId::from_uuid).collect())
    }

    async fn settings(
        &self,
        organisation: OrganisationId,
    ) -> Result<PracticeSettings, RepositoryError> {
        consent_setting::Entity::find_by_id(organisation.as_uuid())
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .map_or_else(|| Ok(PracticeSettings::default()), |row| settings_of(&row))
    }

    async fn set_settings(
        &self,
        organisation: OrganisationId,
        settings: &PracticeSettings,
    ) -> Result<(), RepositoryError> {
        use consent_setting::Column as C;
        let purposes: Vec<&str> = settings
            .policy
            .opt_in_required
            .iter()
            .map(|p| p.as_str())
            .collect();
        let row = consent_setting::ActiveModel {
            organisation_id: Set(organisation.as_uuid()),
            marketing: Set(marketing_name(settings.policy.marketing).to_owned()),
            opt_in_required: Set(
                serde_json::to_string(&purposes).map_err(|_| unavailable(Fault::Encoding))?
            ),
            regime: Set(settings.regime.as_str().to_owned()),
        };
        consent_setting::Entity::insert(row)
            .on_conflict(
                OnConflict::column(C::OrganisationId)
                    .update_columns([C::Marketing, C::OptInRequired, C::Regime])
                    .to_owned(),
            )
            .exec_without_returning(self.db.connection())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn policies(&self) -> Result<Vec<PolicyVersion>, RepositoryError> {
        use consent_policy::Column as C;
        Ok(consent_policy::Entity::find()
            .order_by_asc(C::PublishedAt)
            .order_by_asc(C::EffectiveAt)
            .order_by_asc(C::Document)
            .order_by_asc(C::Version)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(policy_of)
            .collect())
    }

    async fn publish(&self, version: &PolicyVersion) -> Result<(), RepositoryError> {
        let row = consent_policy::ActiveModel {
            document: Set(version.document.clone()),
            version: Set(version.version.clone()),
            effective_at: Set(version.effective_at),
            content_sha256: Set(version.content_sha256.clone()),
            material: Set(version.material),
            summary: Set(version.summary.clone()),
            published_at: Set(version.published_at),
        };
        consent_policy::Entity::insert(row)
            .exec_without_returning(self.db.connection())
            .await
            .map(drop)
            .map_err(conflict_or_unavailable)
    }

    async fn erase(&self, subject: SubjectId, erased_at: i64) -> Result<Erased, RepositoryError> {
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        match write_erase(&txn, subject.as_uuid(), erased_at).await {
            Ok(Some(erased)) => finish(txn, Ok(erased), conflict_or_unavailable).await,
            // No record: nothing to erase (and nothing was deleted to keep).
            Ok(None) => {
                // A failed rollback means the connection is gone, which rolls back too.
                let _ = txn.rollback().await;
                Ok(Erased::default())
            }
            Err(err) => finish(txn, Err(err), conflict_or_unavailable).await,
        }
    }

    async fn erased_events_before(&self, cutoff: i64) -> Result<u64, RepositoryError> {
        consent_event::Entity::find()
            .filter(consent_event::Column::ChainId.in_subquery(erased_before(cutoff)))
            .count(self.db.connection())
            .await
            .map_err(unavailable)
    }

    async fn delete_erased_before(&self, cutoff: i64) -> Result<u64, RepositoryError> {
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let work = write_delete_erased(&txn, cutoff).await;
        finish(txn, work, unavailable).await
    }
}

/// The chains whose subject was erased before `cutoff` (µs).
fn erased_before(cutoff: i64) -> SelectStatement {
    Query::select()
        .column(consent_erasure::Column::ChainId)
        .from(consent_erasure::Entity)
        .and_where(consent_erasure::Column::ErasedAt.lt(cutoff))
        .to_owned()
}

/// The retention sweep's deletion, inside its transaction: the events of every
/// chain erased before `cutoff` first (a write, so SQLite holds its lock from the
/// start), any evidence left beside them, then the records of those erasures.
async fn write_delete_erased(
    txn: &DatabaseTransaction,
    cutoff: i64,
) -> Result<u64, RepositoryError> {
    let events = consent_event::Entity::delete_many()
        .filter(consent_event::Column::ChainId.in_subquery(erased_before(cutoff)))
        .exec(txn)
        .await
        .map_err(unavailable)?
        .rows_affected;
    consent_evidence::Entity::delete_many()
        .filter(consent_evidence::Column::ChainId.in_subquery(erased_before(cutoff)))
        .exec(txn)
        .await
        .map_err(unavailable)?;
    consent_erasure::Entity::delete_many()
        .filter(consent_erasure::Column::ErasedAt.lt(cutoff))
        .exec(txn)
        .await
        .map_err(unavailable)?;
    Ok(events)
}
