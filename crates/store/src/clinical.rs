//! [`SeaOrmClinicalRepository`]: the clinical context's `ClinicalRepository` port
//! on `clinical_records`, `clinical_record_versions`, `clinical_appointments`,
//! `clinical_provider_schedules`, `clinical_care_team`, `clinical_break_glass`,
//! `clinical_exercise_templates` and `clinical_restrictions`, reading identity's
//! `users` and `memberships`.
//!
//! Every record body (`RecordBody` as JSON) is sealed with the subject's data key
//! (the subject under their home practice), bound to a name-based id of the record
//! and the version: the first 16 bytes of `SHA-256("clinical_record" || id ||
//! version)` as a UUIDv8, so a ciphertext only opens as the version it was written
//! for. Appointment details are bound likewise to (id, version), a break-glass
//! reason to the grant's id. Sealing happens *before* a transaction begins (it may
//! create the subject's key, which writes, and SQLite has one writer); a sealed
//! value that does not open, or does not parse back through the domain's
//! validating types, is [`RepositoryError::Unavailable`].
//!
//! Writes that must be atomic start with a write, so SQLite holds its write lock
//! from the first statement (a transaction that read first could not upgrade once
//! another writer committed): an update of records starts with its conditional
//! `UPDATE ... WHERE version = expected`; a booking, an appointment change and a
//! new care-team membership start by bumping the provider's row in
//! `clinical_provider_schedules` (inserting it if missing), which on PostgreSQL
//! also takes that row's lock, so two bookings of one provider take turns and the
//! second's overlap check sees the first. An erasure starts with its first
//! `DELETE` and reports what each `DELETE ... RETURNING` removed.
//!
//! A record, appointment, care-team membership or break-glass grant is read only
//! through the practice and subject it was written for: the same person's rows at
//! another practice are not theirs to see there. Lists are keyset pages in (time,
//! id) order, starting strictly after the cursor; one more row than asked is read
//! to know whether a next page exists. Times are stored through
//! [`crate::rows::stored`] (UTC, microseconds), so a cursor read back compares
//! exactly.

mod entity;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};
use clinical::model::{
    Appointment, AppointmentDetails, AppointmentStatus, BreakGlassGrant, CareTeamMember,
    ClientIdentity, ClientRef, Cursor, ExerciseTemplate, MAX_APPOINTMENT_HOURS, MAX_PAGE, Page,
    PageRequest, Record, RecordBody, RecordKind, RecordVersion, check_time_range,
};
use clinical::ports::{
    ClientAccess, ClientListing, ClinicalRepository, Erased, Holdings, RepositoryError, Restriction,
};
use clinical::values::{HttpsUrl, Text};
use crypto::{FieldBinding, Keyring, SubjectCipher};
use kernel::{DataCategory, OrganisationId, Role, Sensitive, SubjectId, UserId};
use sea_orm::sea_query::{
    Alias, Condition, DeleteStatement, Expr, ExprTrait, OnConflict, Order, Query, SelectStatement,
};
use sea_orm::{
    ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    DbErr, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, Select, SqlErr, TransactionTrait,
};
use uuid::Uuid;

use self::entity::{
    clinical_appointment, clinical_break_glass, clinical_care_team, clinical_exercise_template,
    clinical_provider_schedule, clinical_record, clinical_record_version, clinical_restriction,
};
use crate::Database;
use crate::identity::{membership, personal_details, user};
use crate::rows::{finish, row_binding, stored, utc};

/// Field binding of a sealed record body.
const RECORD_FIELD: &str = "clinical_record.body";
/// Field binding of sealed appointment details.
const APPOINTMENT_FIELD: &str = "clinical_appointment.details";
/// Field binding of a sealed break-glass reason.
const BREAK_GLASS_FIELD: &str = "clinical_break_glass.reason";
/// Domain of a record version's binding.
const RECORD_DOMAIN: &[u8] = b"clinical_record";
/// Domain of an appointment version's binding.
const APPOINTMENT_DOMAIN: &[u8] = b"clinical_appointment";

const RECORDS: &str = "clinical_records";
const VERSIONS: &str = "clinical_record_versions";
const APPOINTMENTS: &str = "clinical_appointments";
const BREAK_GLASS: &str = "clinical_break_glass";
const TEMPLATES: &str = "clinical_exercise_templates";
const RESTRICTIONS: &str = "clinical_restrictions";

/// A restriction of every category, as stored.
const ALL_CATEGORIES: &str = "all";

const DOUBLE_BOOKED: &str = "the provider is already booked at that time";
const RECORD_CHANGED: &str = "the record changed since it was read";
const APPOINTMENT_CHANGED: &str = "the appointment changed since it was read";
const ON_THE_TEAM: &str = "the provider is on the care team already";
const RECORD_EXISTS: &str = "a record with that id exists already";
const APPOINTMENT_EXISTS: &str = "an appointment with that id exists already";
const GRANT_EXISTS: &str = "a break-glass grant with that id exists already";
const TEMPLATE_EXISTS: &str = "an exercise template with that id exists already";

/// Clinical records, appointments, care teams, break-glass grants, the exercise
/// library and restrictions on Custodia's database, with every body, detail and
/// reason sealed by the [`Keyring`].
#[derive(Debug, Clone)]
pub struct SeaOrmClinicalRepository {
    db: Database,
    keyring: Keyring,
}

impl SeaOrmClinicalRepository {
    /// The repository on `db`, sealing with `keyring`.
    #[must_use]
    pub const fn new(db: Database, keyring: Keyring) -> Self {
        Self { db, keyring }
    }
}

/// Why a write was refused, or a row could not be read. Never names a value.
#[derive(Debug, thiserror::Error)]
enum Fault {
    /// A version number does not fit the database's integers.
    #[error("a clinical version number is out of range")]
    OutOfRange,
    /// A value could not be encoded.
    #[error("a clinical value could not be encoded")]
    Encoding,
    /// What was handed in breaks the port's contract (a first version other than
    /// 1, a new version that is not the expected one's successor, a time range the
    /// model refuses).
    #[error("a clinical write does not follow the repository's contract")]
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

fn inconsistent() -> RepositoryError {
    unavailable(Fault::Inconsistent)
}

/// A write's error: a unique-key violation is the port's conflict with `rule`.
fn conflict_or_unavailable(err: DbErr, rule: &'static str) -> RepositoryError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => RepositoryError::Conflict(rule),
        _ => unavailable(err),
    }
}

fn signed(version: u32) -> Result<i32, RepositoryError> {
    i32::try_from(version).map_err(|_| unavailable(Fault::OutOfRange))
}

/// A stored version: from 1.
fn version_of(raw: i32, table: &'static str) -> Result<u32, RepositoryError> {
    u32::try_from(raw)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| corrupt(table))
}

/// The binding of version `version` of record `id`'s body.
fn record_binding(id: Uuid, version: u32) -> FieldBinding {
    FieldBinding::new(
        row_binding(RECORD_DOMAIN, id, u64::from(version)),
        RECORD_FIELD,
    )
}

/// The binding of version `version` of appointment `id`'s details.
fn appointment_binding(id: Uuid, version: u32) -> FieldBinding {
    FieldBinding::new(
        row_binding(APPOINTMENT_DOMAIN, id, u64::from(version)),
        APPOINTMENT_FIELD,
    )
}

/// How many items a page holds: the request's limit, within 1 ..= [`MAX_PAGE`].
fn page_size(page: PageRequest) -> usize {
    page.limit.clamp(1, MAX_PAGE) as usize
}

/// `query` in (`at`, `id`) order, strictly after the page's cursor, one row more
/// than the page holds.
fn keyset<E: EntityTrait>(
    query: Select<E>,
    at: E::Column,
    id: E::Column,
    page: PageRequest,
) -> Select<E> {
    let query = match page.after {
        Some(cursor) => {
            query.filter(Expr::tuple([Expr::col(at), Expr::col(id)]).gt(Expr::tuple([
                Expr::value(stored(cursor.at)),
                Expr::value(cursor.id),
            ])))
        }
        None => query,
    };
    query
        .order_by_asc(at)
        .order_by_asc(id)
        .limit(page_size(page) as u64 + 1)
}

/// The rows of a page (at most its size) and the cursor of the next, if the query
/// found more.
fn split_page<T>(
    mut rows: Vec<T>,
    page: PageRequest,
    cursor: impl Fn(&T) -> Cursor,
) -> (Vec<T>, Option<Cursor>) {
    let size = page_size(page);
    if rows.len() > size {
        rows.truncate(size);
        let next = rows.last().map(cursor);
        (rows, next)
    } else {
        (rows, None)
    }
}

/// The rows `stmt` selects, as `T`.
async fn select_rows<T: FromQueryResult>(
    conn: &impl ConnectionTrait,
    stmt: &SelectStatement,
) -> Result<Vec<T>, RepositoryError> {
    let backend = conn.get_database_backend();
    T::find_by_statement(backend.build(stmt))
        .all(conn)
        .await
        .map_err(unavailable)
}

/// Runs `stmt` (a `DELETE`) returning the `id` of each row it deleted, with `kind`
/// when `with_kind`.
async fn delete_returning(
    txn: &DatabaseTransaction,
    mut stmt: DeleteStatement,
    with_kind: bool,
) -> Result<Vec<(Uuid, Option<String>)>, RepositoryError> {
    let mut columns = vec![Alias::new("id")];
    if with_kind {
        columns.push(Alias::new("kind"));
    }
    stmt.returning(Query::returning().columns(columns));
    let rows = txn.query_all(&stmt).await.map_err(unavailable)?;
    rows.into_iter()
        .map(|row| {
            let id: Uuid = row.try_get("", "id").map_err(unavailable)?;
            let kind = if with_kind {
                Some(row.try_get::<String>("", "kind").map_err(unavailable)?)
            } else {
                None
            };
            Ok((id, kind))
        })
        .collect()
}

/// Bumps the provider's schedule row (inserting it when missing): the first
/// statement of every write that must take turns with the provider's others.
async fn bump_schedule(txn: &DatabaseTransaction, provider: UserId) -> Result<(), RepositoryError> {
    use clinical_provider_schedule::{Column as C, Entity};
    Entity::insert(clinical_provider_schedule::ActiveModel {
        provider_id: Set(provider.as_uuid()),
        version: Set(1),
    })
    .on_conflict(
        OnConflict::column(C::ProviderId)
            .value(C::Version, Expr::col((Entity, C::Version)).add(1))
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await
    .map(drop)
    .map_err(unavailable)
}

/// Whether another appointment of the provider holding time overlaps `a`.
async fn overlaps(txn: &DatabaseTransaction, a: &Appointment) -> Result<bool, RepositoryError> {
    use clinical_appointment::Column as C;
    // No stored appointment is longer than the model allows, so one that overlaps
    // starts after `a.starts_at - MAX_APPOINTMENT_HOURS`: the index is read from
    // there, not from the provider's first appointment.
    let earliest = a.starts_at - Duration::hours(MAX_APPOINTMENT_HOURS);
    Ok(clinical_appointment::Entity::find()
        .select_only()
        .column(C::Id)
        .filter(C::ProviderId.eq(a.provider.as_uuid()))
        .filter(C::StartsAt.gte(stored(earliest)))
        .filter(C::StartsAt.lt(stored(a.ends_at)))
        .filter(C::EndsAt.gt(stored(a.starts_at)))
        .filter(C::Status.ne(AppointmentStatus::Cancelled.as_str()))
        .filter(C::Id.ne(a.id))
        .limit(1)
        .into_tuple::<Uuid>()
        .one(txn)
        .await
        .map_err(unavailable)?
        .is_some())
}

/// The checks every stored appointment passes: the model's time range.
fn check_appointment(a: &Appointment) -> Result<(), RepositoryError> {
    check_time_range(a.starts_at, a.ends_at).map_err(|_| inconsistent())
}

fn restriction_of(scope: Option<&str>) -> Result<Restriction, RepositoryError> {
    match scope {
        None => Ok(Restriction::None),
        Some(ALL_CATEGORIES) => Ok(Restriction::All),
        Some(json) => {
            let names: Vec<String> =
                serde_json::from_str(json).map_err(|_| corrupt(RESTRICTIONS))?;
            names
                .iter()
                .map(|name| DataCategory::parse(name).ok_or_else(|| corrupt(RESTRICTIONS)))
                .collect::<Result<_, _>>()
                .map(Restriction::Categories)
        }
    }
}

fn member_of(row: clinical_care_team::Model) -> CareTeamMember {
    CareTeamMember {
        client: UserId::from_uuid(row.client_id),
        provider: UserId::from_uuid(row.provider_id),
        organisation: OrganisationId::from_uuid(row.organisation_id),
        starts_on: row.starts_on,
        ends_on: row.ends_on,
        added_by: UserId::from_uuid(row.added_by),
        added_at: utc(row.added_at),
    }
}

fn template_row(
    t: &ExerciseTemplate,
) -> Result<clinical_exercise_template::ActiveModel, RepositoryError> {
    Ok(clinical_exercise_template::ActiveModel {
        id: Set(t.id),
        organisation_id: Set(t.organisation.map(|o| o.as_uuid())),
        name: Set(t.name.as_str().to_owned()),
        instructions: Set(t.instructions.as_str().to_owned()),
        body_region: Set(t.body_region.as_str().to_owned()),
        equipment: Set(
            serde_json::to_string(&t.equipment).map_err(|_| unavailable(Fault::Encoding))?
        ),
        media_url: Set(t.media.as_ref().map(|m| m.as_str().to_owned())),
        created_at: Set(stored(t.created_at)),
        created_by: Set(t.created_by.as_uuid()),
    })
}

fn template_of(
    row: clinical_exercise_template::Model,
) -> Result<ExerciseTemplate, RepositoryError> {
    let bad = |_| corrupt(TEMPLATES);
    Ok(ExerciseTemplate {
        id: row.id,
        organisation: row.organisation_id.map(OrganisationId::from_uuid),
        name: Text::parse(&row.name).map_err(bad)?,
        instructions: Text::parse(&row.instructions).map_err(bad)?,
        body_region: Text::parse(&row.body_region).map_err(bad)?,
        equipment: serde_json::from_str(&row.equipment).map_err(|_| corrupt(TEMPLATES))?,
        media: row
            .media_url
            .as_deref()
            .map(HttpsUrl::parse)
            .transpose()
            .map_err(bad)?,
        created_at: utc(row.created_at),
        created_by: UserId::from_uuid(row.created_by),
    })
}

/// A client on a list, as the listing query reads them.
#[derive(Debug, FromQueryResult)]
struct ListingRow {
    user_id: Uuid,
    since: DateTime<FixedOffset>,
    subject_id: Uuid,
    home_organisation_id: Uuid,
}

/// A client's account and restriction, as `client` reads them.
#[derive(Debug, FromQueryResult)]
struct ClientRow {
    subject_id: Uuid,
    home_organisation_id: Uuid,
    scope: Option<String>,
}

/// A record's new version, sealed: its row in `clinical_record_versions` and its
/// `clinical_records` row as it becomes.
struct SealedVersion {
    id: Uuid,
    subject: Uuid,
    organisation: Uuid,
    kind: RecordKind,
    version: clinical_record_version::ActiveModel,
    current: clinical_record::ActiveModel,
}

impl SeaOrmClinicalRepository {
    /// The subject's cipher, under their home practice.
    async fn cipher(&self, client: &ClientRef) -> Result<SubjectCipher, RepositoryError> {
        self.keyring
            .subject_cipher(client.home_organisation, client.subject)
            .await
            .map_err(unavailable)
    }

    /// Opens a sealed value.
    async fn open(
        &self,
        binding: FieldBinding,
        envelope: &[u8],
    ) -> Result<Sensitive<Vec<u8>>, RepositoryError> {
        self.keyring
            .decrypt(binding, envelope)
            .await
            .map_err(unavailable)
    }

    /// Opens version `version` of record `id`'s body.
    async fn open_body(
        &self,
        id: Uuid,
        version: u32,
        envelope: &[u8],
        table: &'static str,
    ) -> Result<RecordBody, RepositoryError> {
        let json = self.open(record_binding(id, version), envelope).await?;
        // A serde error may quote the body; it is not passed on.
        serde_json::from_slice(json.expose()).map_err(|_| corrupt(table))
    }

    /// The rows that store `record` as its version `record.version`, sealed.
    async fn seal_record(&self, record: &Record) -> Result<SealedVersion, RepositoryError> {
        let json = Sensitive::new(
            serde_json::to_vec(&record.body).map_err(|_| unavailable(Fault::Encoding))?,
        );
        let sealed = self
            .cipher(&record.client)
            .await?
            .seal(record_binding(record.id, record.version), json.expose())
            .map_err(unavailable)?;
        let version = signed(record.version)?;
        Ok(SealedVersion {
            id: record.id,
            subject: record.client.subject.as_uuid(),
            organisation: record.client.organisation.as_uuid(),
            kind: record.kind(),
            version: clinical_record_version::ActiveModel {
                record_id: Set(record.id),
                version: Set(version),
                subject_id: Set(record.client.subject.as_uuid()),
                body_enc: Set(sealed.clone()),
                written_at: Set(stored(record.updated_at)),
                written_by: Set(record.updated_by.as_uuid()),
            },
            current: clinical_record::ActiveModel {
                id: Set(record.id),
                organisation_id: Set(record.client.organisation.as_uuid()),
                client_id: Set(record.client.user.as_uuid()),
                subject_id: Set(record.client.subject.as_uuid()),
                kind: Set(record.kind().as_str().to_owned()),
                version: Set(version),
                body_enc: Set(sealed),
                created_at: Set(stored(record.created_at)),
                created_by: Set(record.created_by.as_uuid()),
                updated_at: Set(stored(record.updated_at)),
                updated_by: Set(record.updated_by.as_uuid()),
            },
        })
    }

    /// A stored record of `client`, opened.
    async fn record_of(
        &self,
        row: clinical_record::Model,
        client: ClientRef,
    ) -> Result<Record, RepositoryError> {
        let version = version_of(row.version, RECORDS)?;
        let body = self
            .open_body(row.id, version, &row.body_enc, RECORDS)
            .await?;
        if body.kind().as_str() != row.kind {
            return Err(corrupt(RECORDS));
        }
        Ok(Record {
            id: row.id,
            client,
            version,
            body,
            created_at: utc(row.created_at),
            created_by: UserId::from_uuid(row.created_by),
            updated_at: utc(row.updated_at),
            updated_by: UserId::from_uuid(row.updated_by),
        })
    }

    /// A stored version of a record, opened.
    async fn version_of(
        &self,
        row: &clinical_record_version::Model,
    ) -> Result<RecordVersion, RepositoryError> {
        let version = version_of(row.version, VERSIONS)?;
        Ok(RecordVersion {
            version,
            body: self
                .open_body(row.record_id, version, &row.body_enc, VERSIONS)
                .await?,
            at: utc(row.written_at),
            by: UserId::from_uuid(row.written_by),
        })
    }

    /// The row that stores `a`, its details sealed.
    async fn appointment_row(
        &self,
        a: &Appointment,
    ) -> Result<clinical_appointment::ActiveModel, RepositoryError> {
        let json = Sensitive::new(
            serde_json::to_vec(&a.details).map_err(|_| unavailable(Fault::Encoding))?,
        );
        let sealed = self
            .cipher(&a.client)
            .await?
            .seal(appointment_binding(a.id, a.version), json.expose())
            .map_err(unavailable)?;
        Ok(clinical_appointment::ActiveModel {
            id: Set(a.id),
            organisation_id: Set(a.client.organisation.as_uuid()),
            client_id: Set(a.client.user.as_uuid()),
            subject_id: Set(a.client.subject.as_uuid()),
            provider_id: Set(a.provider.as_uuid()),
            starts_at: Set(stored(a.starts_at)),
            ends_at: Set(stored(a.ends_at)),
            status: Set(a.status.as_str().to_owned()),
            details_enc: Set(sealed),
            version: Set(signed(a.version)?),
            created_at: Set(stored(a.created_at)),
            created_by: Set(a.created_by.as_uuid()),
        })
    }

    /// A stored appointment of `client`, opened.
    async fn appointment_of(
        &self,
        row: clinical_appointment::Model,
        client: ClientRef,
    ) -> Result<Appointment, RepositoryError> {
        let version = version_of(row.version, APPOINTMENTS)?;
        let json = self
            .open(appointment_binding(row.id, version), &row.details_enc)
            .await?;
        let details: AppointmentDetails =
            serde_json::from_slice(json.expose()).map_err(|_| corrupt(APPOINTMENTS))?;
        Ok(Appointment {
            id: row.id,
            client,
            provider: UserId::from_uuid(row.provider_id),
            starts_at: utc(row.starts_at),
            ends_at: utc(row.ends_at),
            status: AppointmentStatus::parse(&row.status).ok_or_else(|| corrupt(APPOINTMENTS))?,
            details,
            version,
            created_at: utc(row.created_at),
            created_by: UserId::from_uuid(row.created_by),
        })
    }

    /// A stored break-glass grant on `client`, opened.
    async fn grant_of(
        &self,
        row: clinical_break_glass::Model,
        client: ClientRef,
    ) -> Result<BreakGlassGrant, RepositoryError> {
        let reason = self
            .open(
                FieldBinding::new(row.id, BREAK_GLASS_FIELD),
                &row.reason_enc,
            )
            .await?;
        let reason = std::str::from_utf8(reason.expose())
            .ok()
            .and_then(|text| Text::parse(text).ok())
            .ok_or_else(|| corrupt(BREAK_GLASS))?;
        Ok(BreakGlassGrant {
            id: row.id,
            client,
            holder: UserId::from_uuid(row.holder_id),
            reason,
            granted_at: utc(row.granted_at),
            expires_at: utc(row.expires_at),
        })
    }

    /// The name, contact details and birth date of account `user` of `subject`,
    /// read and opened by identity's own code.
    async fn identity(
        &self,
        user: UserId,
        subject: SubjectId,
    ) -> Result<Option<ClientIdentity>, RepositoryError> {
        let Some(details) = personal_details(&self.db, &self.keyring, user, subject)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        Ok(Some(ClientIdentity {
            name: details.name.expose().clone(),
            email: details.email.expose().clone(),
            phone: details.phone.map(|p| p.expose().clone()),
            birth_date: details.birth_date.map(|born| born.date()),
        }))
    }

    /// The home practice of each of `users` that has an account.
    async fn home_organisations(
        &self,
        users: impl IntoIterator<Item = Uuid>,
    ) -> Result<HashMap<Uuid, Uuid>, RepositoryError> {
        let mut ids: Vec<Uuid> = users.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(Uuid, Uuid)> = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .column(user::Column::HomeOrganisationId)
            .filter(user::Column::Id.is_in(ids))
            .into_tuple()
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        Ok(rows.into_iter().collect())
    }

    /// The clients a provider's care-team memberships cover on `day`.
    async fn clients_of_provider(
        &self,
        organisation: OrganisationId,
        provider: UserId,
        day: NaiveDate,
        page: PageRequest,
    ) -> Result<Vec<ListingRow>, RepositoryError> {
        use clinical_care_team::{Column as T, Entity as Team};
        let mut stmt = Query::select();
        stmt.expr_as(Expr::col((Team, T::ClientId)), Alias::new("user_id"))
            .expr_as(Expr::col((Team, T::AddedAt)), Alias::new("since"))
            .column((user::Entity, user::Column::SubjectId))
            .column((user::Entity, user::Column::HomeOrganisationId))
            .from(Team)
            .inner_join(
                user::Entity,
                Expr::col((user::Entity, user::Column::Id)).equals((Team, T::ClientId)),
            )
            .inner_join(
                membership::Entity,
                Condition::all()
                    .add(
                        Expr::col((membership::Entity, membership::Column::UserId))
                            .equals((Team, T::ClientId)),
                    )
                    .add(
                        Expr::col((membership::Entity, membership::Column::OrganisationId))
                            .equals((Team, T::OrganisationId)),
                    )
                    .add(
                        Expr::col((membership::Entity, membership::Column::Role))
                            .eq(Role::Client.as_str()),
                    ),
            )
            .and_where(Expr::col((Team, T::OrganisationId)).eq(organisation.as_uuid()))
            .and_where(Expr::col((Team, T::ProviderId)).eq(provider.as_uuid()))
            .and_where(Expr::col((Team, T::StartsOn)).lte(day))
            .cond_where(
                Condition::any()
                    .add(Expr::col((Team, T::EndsOn)).is_null())
                    .add(Expr::col((Team, T::EndsOn)).gte(day)),
            );
        if let Some(cursor) = page.after {
            stmt.and_where(
                Expr::tuple([
                    Expr::col((Team, T::AddedAt)),
                    Expr::col((Team, T::ClientId)),
                ])
                .gt(Expr::tuple([
                    Expr::value(stored(cursor.at)),
                    Expr::value(cursor.id),
                ])),
            );
        }
        stmt.order_by((Team, T::AddedAt), Order::Asc)
            .order_by((Team, T::ClientId), Order::Asc)
            .limit(page_size(page) as u64 + 1);
        select_rows(self.db.connection(), &stmt).await
    }

    /// Every client of the practice, by when they became one.
    async fn clients_of_practice(
        &self,
        organisation: OrganisationId,
        page: PageRequest,
    ) -> Result<Vec<ListingRow>, RepositoryError> {
        use membership::{Column as M, Entity as Members};
        let mut stmt = Query::select();
        stmt.expr_as(Expr::col((Members, M::UserId)), Alias::new("user_id"))
            .expr_as(Expr::col((Members, M::CreatedAt)), Alias::new("since"))
            .column((user::Entity, user::Column::SubjectId))
            .column((user::Entity, user::Column::HomeOrganisationId))
            .from(Members)
            .inner_join(
                user::Entity,
                Expr::col((user::Entity, user::Column::Id)).equals((Members, M::UserId)),
            )
            .and_where(Expr::col((Members, M::OrganisationId)).eq(organisation.as_uuid()))
            .and_where(Expr::col((Members, M::Role)).eq(Role::Client.as_str()));
        if let Some(cursor) = page.after {
            stmt.and_where(
                Expr::tuple([
                    Expr::col((Members, M::CreatedAt)),
                    Expr::col((Members, M::UserId)),
                ])
                .gt(Expr::tuple([
                    Expr::value(stored(cursor.at)),
                    Expr::value(cursor.id),
                ])),
            );
        }
        stmt.order_by((Members, M::CreatedAt), Order::Asc)
            .order_by((Members, M::UserId), Order::Asc)
            .limit(page_size(page) as u64 + 1);
        select_rows(self.db.connection(), &stmt).await
    }
}

/// The statements of one erasure, inside its transaction; the first is a
/// `DELETE`, so on SQLite the transaction holds the write lock throughout.
async fn write_erase(
    txn: &DatabaseTransaction,
    subject: Uuid,
) -> Result<Vec<Erased>, RepositoryError> {
    let restricted = clinical_restriction::Entity::delete_by_id(subject)
        .exec(txn)
        .await
        .map_err(unavailable)?
        .rows_affected;
    let records = clinical_record::Entity::delete_many()
        .filter(clinical_record::Column::SubjectId.eq(subject))
        .into_query();
    let mut erased = erased_records(delete_returning(txn, records, true).await?)?;
    write_erase_rest(txn, subject, true, &mut erased).await?;
    if restricted > 0 {
        erased.push(Erased {
            kind: "restriction",
            id: subject,
            category: DataCategory::Consent,
        });
    }
    Ok(erased)
}

/// Deleted records as the port reports them.
fn erased_records(rows: Vec<(Uuid, Option<String>)>) -> Result<Vec<Erased>, RepositoryError> {
    rows.into_iter()
        .map(|(id, kind)| {
            let kind = kind
                .as_deref()
                .and_then(RecordKind::parse)
                .ok_or_else(|| corrupt(RECORDS))?;
            Ok(Erased {
                kind: kind.as_str(),
                id,
                category: kind.category(),
            })
        })
        .collect()
}

/// An erasure's statements after the records: versions, appointments, care-team
/// memberships and (`with_grants`) break-glass grants, each reported into `erased`.
async fn write_erase_rest(
    txn: &DatabaseTransaction,
    subject: Uuid,
    with_grants: bool,
    erased: &mut Vec<Erased>,
) -> Result<(), RepositoryError> {
    clinical_record_version::Entity::delete_many()
        .filter(clinical_record_version::Column::SubjectId.eq(subject))
        .exec(txn)
        .await
        .map_err(unavailable)?;
    let appointments = clinical_appointment::Entity::delete_many()
        .filter(clinical_appointment::Column::SubjectId.eq(subject))
        .into_query();
    for (id, _) in delete_returning(txn, appointments, false).await? {
        erased.push(Erased {
            kind: "appointment",
            id,
            category: DataCategory::Appointments,
        });
    }
    let memberships = clinical_care_team::Entity::delete_many()
        .filter(clinical_care_team::Column::ClientId.in_subquery(accounts_of(Expr::value(subject))))
        .into_query();
    for (id, _) in delete_returning(txn, memberships, false).await? {
        erased.push(Erased {
            kind: "care_team_member",
            id,
            category: DataCategory::Profile,
        });
    }
    if with_grants {
        let grants = clinical_break_glass::Entity::delete_many()
            .filter(clinical_break_glass::Column::SubjectId.eq(subject))
            .into_query();
        for (id, _) in delete_returning(txn, grants, false).await? {
            erased.push(Erased {
                kind: "break_glass_grant",
                id,
                category: DataCategory::AccessLog,
            });
        }
    }
    Ok(())
}

/// The client accounts (user ids) of the subject `subject` names.
fn accounts_of(subject: Expr) -> SelectStatement {
    Query::select()
        .column((user::Entity, user::Column::Id))
        .from(user::Entity)
        .and_where(Expr::col((user::Entity, user::Column::SubjectId)).eq(subject))
        .to_owned()
}

/// The port's dormancy at `cutoff` of the subject `subject` names (a value, or a
/// column of an outer query under another alias than the tables named here):
/// no record written, appointment ended or break-glass grant expired at or after
/// the cutoff, and no care-team membership open, ending on or after its day, or
/// added at or after it.
fn dormant(subject: &Expr, cutoff: DateTime<Utc>) -> Condition {
    use clinical_appointment::Column as A;
    use clinical_break_glass::Column as G;
    use clinical_care_team::Column as T;
    use clinical_record::Column as R;
    let at = stored(cutoff);
    let day = cutoff.date_naive();
    let one = || Expr::value(1);
    let record = Query::select()
        .expr(one())
        .from(clinical_record::Entity)
        .and_where(Expr::col((clinical_record::Entity, R::SubjectId)).eq(subject.clone()))
        .and_where(Expr::col((clinical_record::Entity, R::UpdatedAt)).gte(at))
        .to_owned();
    let appointment = Query::select()
        .expr(one())
        .from(clinical_appointment::Entity)
        .and_where(Expr::col((clinical_appointment::Entity, A::SubjectId)).eq(subject.clone()))
        .and_where(Expr::col((clinical_appointment::Entity, A::EndsAt)).gte(at))
        .to_owned();
    let grant = Query::select()
        .expr(one())
        .from(clinical_break_glass::Entity)
        .and_where(Expr::col((clinical_break_glass::Entity, G::SubjectId)).eq(subject.clone()))
        .and_where(Expr::col((clinical_break_glass::Entity, G::ExpiresAt)).gte(at))
        .to_owned();
    let membership = Query::select()
        .expr(one())
        .from(clinical_care_team::Entity)
        .and_where(
            Expr::col((clinical_care_team::Entity, T::ClientId))
                .in_subquery(accounts_of(subject.clone())),
        )
        .cond_where(
            Condition::any()
                .add(Expr::col((clinical_care_team::Entity, T::EndsOn)).is_null())
                .add(Expr::col((clinical_care_team::Entity, T::EndsOn)).gte(day))
                .add(Expr::col((clinical_care_team::Entity, T::AddedAt)).gte(at)),
        )
        .to_owned();
    Condition::all()
        .add(Expr::not_exists(record))
        .add(Expr::not_exists(appointment))
        .add(Expr::not_exists(grant))
        .add(Expr::not_exists(membership))
}

/// A dormant chart's deletion, inside its transaction: the records first, only
/// where the chart is dormant (a `DELETE`, so on SQLite the transaction holds the
/// write lock from the start), then the check that it still is (else `None`, and
/// the caller rolls back), then the rest of the chart but its break-glass grants.
async fn write_delete_dormant(
    txn: &DatabaseTransaction,
    subject: Uuid,
    cutoff: DateTime<Utc>,
) -> Result<Option<Vec<Erased>>, RepositoryError> {
    let records = clinical_record::Entity::delete_many()
        .filter(clinical_record::Column::SubjectId.eq(subject))
        .filter(dormant(&Expr::value(subject), cutoff))
        .into_query();
    let mut erased = erased_records(delete_returning(txn, records, true).await?)?;
    let still = Query::select()
        .expr(Expr::value(1))
        .cond_where(dormant(&Expr::value(subject), cutoff))
        .to_owned();
    if txn.query_one(&still).await.map_err(unavailable)?.is_none() {
        return Ok(None);
    }
    write_erase_rest(txn, subject, false, &mut erased).await?;
    let restricted = clinical_restriction::Entity::delete_by_id(subject)
        .exec(txn)
        .await
        .map_err(unavailable)?
        .rows_affected;
    if restricted > 0 {
        erased.push(Erased {
            kind: "restriction",
            id: subject,
            category: DataCategory::Consent,
        });
    }
    Ok(Some(erased))
}

/// The statements of an update of records, inside its transaction: each
/// conditional `UPDATE` first (a record of another kind, subject or practice does
/// not match), then the version it wrote.
async fn write_updates(
    txn: &DatabaseTransaction,
    changes: Vec<(SealedVersion, i32)>,
) -> Result<(), RepositoryError> {
    use clinical_record::Column as C;
    for (sealed, expected) in changes {
        let mut current = sealed.current;
        // What the first version fixed stays as it is.
        current.id = NotSet;
        current.organisation_id = NotSet;
        current.client_id = NotSet;
        current.subject_id = NotSet;
        current.kind = NotSet;
        current.created_at = NotSet;
        current.created_by = NotSet;
        let changed = clinical_record::Entity::update_many()
            .set(current)
            .filter(C::Id.eq(sealed.id))
            .filter(C::Version.eq(expected))
            .filter(C::SubjectId.eq(sealed.subject))
            .filter(C::OrganisationId.eq(sealed.organisation))
            .filter(C::Kind.eq(sealed.kind.as_str()))
            .exec(txn)
            .await
            .map_err(unavailable)?
            .rows_affected;
        if changed != 1 {
            return Err(RepositoryError::Conflict(RECORD_CHANGED));
        }
        clinical_record_version::Entity::insert(sealed.version)
            .exec_without_returning(txn)
            .await
            .map_err(|e| conflict_or_unavailable(e, RECORD_CHANGED))?;
    }
    Ok(())
}

#[async_trait]
impl ClinicalRepository for SeaOrmClinicalRepository {
    async fn client(
        &self,
        organisation: OrganisationId,
        user: UserId,
    ) -> Result<Option<ClientAccess>, RepositoryError> {
        use clinical_restriction::{Column as R, Entity as Restrictions};
        let stmt = Query::select()
            .column((user::Entity, user::Column::SubjectId))
            .column((user::Entity, user::Column::HomeOrganisationId))
            .column((Restrictions, R::Scope))
            .from(membership::Entity)
            .inner_join(
                user::Entity,
                Expr::col((user::Entity, user::Column::Id))
                    .equals((membership::Entity, membership::Column::UserId)),
            )
            .left_join(
                Restrictions,
                Expr::col((Restrictions, R::SubjectId))
                    .equals((user::Entity, user::Column::SubjectId)),
            )
            .and_where(
                Expr::col((membership::Entity, membership::Column::UserId)).eq(user.as_uuid()),
            )
            .and_where(
                Expr::col((membership::Entity, membership::Column::OrganisationId))
                    .eq(organisation.as_uuid()),
            )
            .and_where(
                Expr::col((membership::Entity, membership::Column::Role)).eq(Role::Client.as_str()),
            )
            .limit(1)
            .to_owned();
        let Some(row) = select_rows::<ClientRow>(self.db.connection(), &stmt)
            .await?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        Ok(Some(ClientAccess {
            client: ClientRef {
                user,
                subject: SubjectId::from_uuid(row.subject_id),
                organisation,
                home_organisation: OrganisationId::from_uuid(row.home_organisation_id),
            },
            restricted: restriction_of(row.scope.as_deref())?,
        }))
    }

    async fn client_identity(
        &self,
        client: &ClientRef,
    ) -> Result<Option<ClientIdentity>, RepositoryError> {
        self.identity(client.user, client.subject).await
    }

    async fn is_provider(
        &self,
        organisation: OrganisationId,
        user: UserId,
    ) -> Result<bool, RepositoryError> {
        Ok(membership::Entity::find_by_id((
            user.as_uuid(),
            organisation.as_uuid(),
            Role::Provider.as_str().to_owned(),
        ))
        .one(self.db.connection())
        .await
        .map_err(unavailable)?
        .is_some())
    }

    async fn clients(
        &self,
        organisation: OrganisationId,
        provider: Option<UserId>,
        day: NaiveDate,
        page: PageRequest,
    ) -> Result<Page<ClientListing>, RepositoryError> {
        let rows = match provider {
            Some(provider) => {
                self.clients_of_provider(organisation, provider, day, page)
                    .await?
            }
            None => self.clients_of_practice(organisation, page).await?,
        };
        let (rows, next) = split_page(rows, page, |row| Cursor {
            at: utc(row.since),
            id: row.user_id,
        });
        Ok(Page {
            items: rows
                .into_iter()
                .map(|row| ClientListing {
                    client: ClientRef {
                        user: UserId::from_uuid(row.user_id),
                        subject: SubjectId::from_uuid(row.subject_id),
                        organisation,
                        home_organisation: OrganisationId::from_uuid(row.home_organisation_id),
                    },
                    since: utc(row.since),
                })
                .collect(),
            next,
        })
    }

    async fn care_team(&self, client: &ClientRef) -> Result<Vec<CareTeamMember>, RepositoryError> {
        use clinical_care_team::Column as C;
        Ok(clinical_care_team::Entity::find()
            .filter(C::ClientId.eq(client.user.as_uuid()))
            .filter(C::OrganisationId.eq(client.organisation.as_uuid()))
            .order_by_asc(C::StartsOn)
            .order_by_asc(C::AddedAt)
            .order_by_asc(C::Id)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(member_of)
            .collect())
    }

    async fn on_care_team(
        &self,
        client: &ClientRef,
        provider: UserId,
        day: NaiveDate,
    ) -> Result<bool, RepositoryError> {
        use clinical_care_team::Column as C;
        Ok(clinical_care_team::Entity::find()
            .select_only()
            .column(C::Id)
            .filter(C::ClientId.eq(client.user.as_uuid()))
            .filter(C::ProviderId.eq(provider.as_uuid()))
            .filter(C::OrganisationId.eq(client.organisation.as_uuid()))
            .filter(C::StartsOn.lte(day))
            .filter(
                Condition::any()
                    .add(C::EndsOn.is_null())
                    .add(C::EndsOn.gte(day)),
            )
            .limit(1)
            .into_tuple::<Uuid>()
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .is_some())
    }

    async fn add_care_team_member(&self, member: &CareTeamMember) -> Result<(), RepositoryError> {
        use clinical_care_team::Column as C;
        let row = clinical_care_team::ActiveModel {
            id: Set(Uuid::now_v7()),
            organisation_id: Set(member.organisation.as_uuid()),
            client_id: Set(member.client.as_uuid()),
            provider_id: Set(member.provider.as_uuid()),
            starts_on: Set(member.starts_on),
            ends_on: Set(member.ends_on),
            added_by: Set(member.added_by.as_uuid()),
            added_at: Set(stored(member.added_at)),
        };
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let work = async {
            bump_schedule(&txn, member.provider).await?;
            let open = clinical_care_team::Entity::find()
                .select_only()
                .column(C::Id)
                .filter(C::ClientId.eq(member.client.as_uuid()))
                .filter(C::ProviderId.eq(member.provider.as_uuid()))
                .filter(C::OrganisationId.eq(member.organisation.as_uuid()))
                .filter(
                    Condition::any()
                        .add(C::EndsOn.is_null())
                        .add(C::EndsOn.gte(member.starts_on)),
                )
                .limit(1)
                .into_tuple::<Uuid>()
                .one(&txn)
                .await
                .map_err(unavailable)?;
            if open.is_some() {
                return Err(RepositoryError::Conflict(ON_THE_TEAM));
            }
            clinical_care_team::Entity::insert(row)
                .exec_without_returning(&txn)
                .await
                .map(drop)
                .map_err(|e| conflict_or_unavailable(e, ON_THE_TEAM))
        }
        .await;
        finish(txn, work, unavailable).await
    }

    async fn end_care_team_membership(
        &self,
        client: &ClientRef,
        provider: UserId,
        ends_on: NaiveDate,
    ) -> Result<bool, RepositoryError> {
        use clinical_care_team::Column as C;
        Ok(clinical_care_team::Entity::update_many()
            .col_expr(C::EndsOn, Expr::value(ends_on))
            .filter(C::ClientId.eq(client.user.as_uuid()))
            .filter(C::ProviderId.eq(provider.as_uuid()))
            .filter(C::OrganisationId.eq(client.organisation.as_uuid()))
            .filter(C::EndsOn.is_null())
            .exec(self.db.connection())
            .await
            .map_err(unavailable)?
            .rows_affected
            > 0)
    }

    async fn grant_break_glass(&self, grant: &BreakGlassGrant) -> Result<(), RepositoryError> {
        let sealed = self
            .cipher(&grant.client)
            .await?
            .seal(
                FieldBinding::new(grant.id, BREAK_GLASS_FIELD),
                grant.reason.as_str().as_bytes(),
            )
            .map_err(unavailable)?;
        clinical_break_glass::Entity::insert(clinical_break_glass::ActiveModel {
            id: Set(grant.id),
            organisation_id: Set(grant.client.organisation.as_uuid()),
            client_id: Set(grant.client.user.as_uuid()),
            subject_id: Set(grant.client.subject.as_uuid()),
            holder_id: Set(grant.holder.as_uuid()),
            reason_enc: Set(sealed),
            granted_at: Set(stored(grant.granted_at)),
            expires_at: Set(stored(grant.expires_at)),
        })
        .exec_without_returning(self.db.connection())
        .await
        .map(drop)
        .map_err(|e| conflict_or_unavailable(e, GRANT_EXISTS))
    }

    async fn break_glass_in_force(
        &self,
        client: &ClientRef,
        holder: UserId,
        at: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        use clinical_break_glass::Column as C;
        let at = stored(at);
        Ok(clinical_break_glass::Entity::find()
            .select_only()
            .column(C::Id)
            .filter(C::ClientId.eq(client.user.as_uuid()))
            .filter(C::HolderId.eq(holder.as_uuid()))
            .filter(C::ExpiresAt.gt(at))
            .filter(C::GrantedAt.lte(at))
            .filter(C::OrganisationId.eq(client.organisation.as_uuid()))
            .limit(1)
            .into_tuple::<Uuid>()
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .is_some())
    }

    async fn break_glass_grants(
        &self,
        organisation: OrganisationId,
        page: PageRequest,
    ) -> Result<Page<BreakGlassGrant>, RepositoryError> {
        use clinical_break_glass::Column as C;
        let query = clinical_break_glass::Entity::find()
            .filter(C::OrganisationId.eq(organisation.as_uuid()));
        let rows = keyset(query, C::GrantedAt, C::Id, page)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        let (rows, next) = split_page(rows, page, |row| Cursor {
            at: utc(row.granted_at),
            id: row.id,
        });
        let homes = self
            .home_organisations(rows.iter().map(|r| r.client_id))
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            let home = homes
                .get(&row.client_id)
                .copied()
                .ok_or_else(|| corrupt(BREAK_GLASS))?;
            let client = ClientRef {
                user: UserId::from_uuid(row.client_id),
                subject: SubjectId::from_uuid(row.subject_id),
                organisation,
                home_organisation: OrganisationId::from_uuid(home),
            };
            items.push(self.grant_of(row, client).await?);
        }
        Ok(Page { items, next })
    }

    async fn insert_record(&self, record: &Record) -> Result<(), RepositoryError> {
        if record.version != 1 {
            return Err(inconsistent());
        }
        let sealed = self.seal_record(record).await?;
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let work = async {
            clinical_record::Entity::insert(sealed.current)
                .exec_without_returning(&txn)
                .await
                .map_err(|e| conflict_or_unavailable(e, RECORD_EXISTS))?;
            clinical_record_version::Entity::insert(sealed.version)
                .exec_without_returning(&txn)
                .await
                .map(drop)
                .map_err(|e| conflict_or_unavailable(e, RECORD_EXISTS))
        }
        .await;
        finish(txn, work, unavailable).await
    }

    async fn update_records(&self, changes: &[(&Record, u32)]) -> Result<(), RepositoryError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut versions = Vec::with_capacity(changes.len());
        for (record, expected) in changes {
            if expected.checked_add(1) != Some(record.version) {
                return Err(inconsistent());
            }
            versions.push((self.seal_record(record).await?, signed(*expected)?));
        }
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let work = write_updates(&txn, versions).await;
        finish(txn, work, unavailable).await
    }

    async fn record(
        &self,
        client: &ClientRef,
        id: Uuid,
    ) -> Result<Option<Record>, RepositoryError> {
        use clinical_record::Column as C;
        let row = clinical_record::Entity::find_by_id(id)
            .filter(C::SubjectId.eq(client.subject.as_uuid()))
            .filter(C::OrganisationId.eq(client.organisation.as_uuid()))
            .one(self.db.connection())
            .await
            .map_err(unavailable)?;
        match row {
            Some(row) => self.record_of(row, *client).await.map(Some),
            None => Ok(None),
        }
    }

    async fn records(
        &self,
        client: &ClientRef,
        kind: RecordKind,
        page: PageRequest,
    ) -> Result<Page<Record>, RepositoryError> {
        use clinical_record::Column as C;
        let query = clinical_record::Entity::find()
            .filter(C::SubjectId.eq(client.subject.as_uuid()))
            .filter(C::Kind.eq(kind.as_str()))
            .filter(C::OrganisationId.eq(client.organisation.as_uuid()));
        let rows = keyset(query, C::CreatedAt, C::Id, page)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        let (rows, next) = split_page(rows, page, |row| Cursor {
            at: utc(row.created_at),
            id: row.id,
        });
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            items.push(self.record_of(row, *client).await?);
        }
        Ok(Page { items, next })
    }

    async fn record_versions(
        &self,
        client: &ClientRef,
        id: Uuid,
    ) -> Result<Vec<RecordVersion>, RepositoryError> {
        use clinical_record_version::Column as V;
        let of_practice = Query::select()
            .column(clinical_record::Column::Id)
            .from(clinical_record::Entity)
            .and_where(Expr::col(clinical_record::Column::Id).eq(id))
            .and_where(
                Expr::col(clinical_record::Column::OrganisationId)
                    .eq(client.organisation.as_uuid()),
            )
            .to_owned();
        let rows = clinical_record_version::Entity::find()
            .filter(V::RecordId.eq(id))
            .filter(V::SubjectId.eq(client.subject.as_uuid()))
            .filter(V::RecordId.in_subquery(of_practice))
            .order_by_asc(V::Version)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(self.version_of(row).await?);
        }
        Ok(out)
    }

    async fn book(&self, appointment: &Appointment) -> Result<(), RepositoryError> {
        if appointment.version != 1 {
            return Err(inconsistent());
        }
        check_appointment(appointment)?;
        let row = self.appointment_row(appointment).await?;
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let work = async {
            bump_schedule(&txn, appointment.provider).await?;
            if appointment.status.holds_time() && overlaps(&txn, appointment).await? {
                return Err(RepositoryError::Conflict(DOUBLE_BOOKED));
            }
            clinical_appointment::Entity::insert(row)
                .exec_without_returning(&txn)
                .await
                .map(drop)
                .map_err(|e| conflict_or_unavailable(e, APPOINTMENT_EXISTS))
        }
        .await;
        finish(txn, work, unavailable).await
    }

    async fn update_appointment(
        &self,
        appointment: &Appointment,
        expected: u32,
    ) -> Result<(), RepositoryError> {
        use clinical_appointment::Column as C;
        if expected.checked_add(1) != Some(appointment.version) {
            return Err(inconsistent());
        }
        check_appointment(appointment)?;
        let mut row = self.appointment_row(appointment).await?;
        // What the booking fixed stays as it is.
        row.id = NotSet;
        row.organisation_id = NotSet;
        row.client_id = NotSet;
        row.subject_id = NotSet;
        row.created_at = NotSet;
        row.created_by = NotSet;
        let expected = signed(expected)?;
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let work = async {
            bump_schedule(&txn, appointment.provider).await?;
            let changed = clinical_appointment::Entity::update_many()
                .set(row)
                .filter(C::Id.eq(appointment.id))
                .filter(C::Version.eq(expected))
                .filter(C::SubjectId.eq(appointment.client.subject.as_uuid()))
                .filter(C::OrganisationId.eq(appointment.client.organisation.as_uuid()))
                .exec(&txn)
                .await
                .map_err(unavailable)?
                .rows_affected;
            if changed != 1 {
                return Err(RepositoryError::Conflict(APPOINTMENT_CHANGED));
            }
            if appointment.status.holds_time() && overlaps(&txn, appointment).await? {
                return Err(RepositoryError::Conflict(DOUBLE_BOOKED));
            }
            Ok(())
        }
        .await;
        finish(txn, work, unavailable).await
    }

    async fn appointment(
        &self,
        client: &ClientRef,
        id: Uuid,
    ) -> Result<Option<Appointment>, RepositoryError> {
        use clinical_appointment::Column as C;
        let row = clinical_appointment::Entity::find_by_id(id)
            .filter(C::SubjectId.eq(client.subject.as_uuid()))
            .filter(C::OrganisationId.eq(client.organisation.as_uuid()))
            .one(self.db.connection())
            .await
            .map_err(unavailable)?;
        match row {
            Some(row) => self.appointment_of(row, *client).await.map(Some),
            None => Ok(None),
        }
    }

    async fn appointments(
        &self,
        client: &ClientRef,
        page: PageRequest,
    ) -> Result<Page<Appointment>, RepositoryError> {
        use clinical_appointment::Column as C;
        let query = clinical_appointment::Entity::find()
            .filter(C::SubjectId.eq(client.subject.as_uuid()))
            .filter(C::OrganisationId.eq(client.organisation.as_uuid()));
        let rows = keyset(query, C::StartsAt, C::Id, page)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        let (rows, next) = split_page(rows, page, |row| Cursor {
            at: utc(row.starts_at),
            id: row.id,
        });
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            items.push(self.appointment_of(row, *client).await?);
        }
        Ok(Page { items, next })
    }

    async fn add_template(&self, template: &ExerciseTemplate) -> Result<(), RepositoryError> {
        clinical_exercise_template::Entity::insert(template_row(template)?)
            .exec_without_returning(self.db.connection())
            .await
            .map(drop)
            .map_err(|e| conflict_or_unavailable(e, TEMPLATE_EXISTS))
    }

    async fn template(
        &self,
        organisation: OrganisationId,
        id: Uuid,
    ) -> Result<Option<ExerciseTemplate>, RepositoryError> {
        use clinical_exercise_template::Column as C;
        clinical_exercise_template::Entity::find_by_id(id)
            .filter(
                Condition::any()
                    .add(C::OrganisationId.eq(organisation.as_uuid()))
                    .add(C::OrganisationId.is_null()),
            )
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .map(template_of)
            .transpose()
    }

    async fn templates(
        &self,
        organisation: OrganisationId,
        page: PageRequest,
    ) -> Result<Page<ExerciseTemplate>, RepositoryError> {
        use clinical_exercise_template::Column as C;
        let query = clinical_exercise_template::Entity::find().filter(
            Condition::any()
                .add(C::OrganisationId.eq(organisation.as_uuid()))
                .add(C::OrganisationId.is_null()),
        );
        let rows = keyset(query, C::CreatedAt, C::Id, page)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        let (rows, next) = split_page(rows, page, |row| Cursor {
            at: utc(row.created_at),
            id: row.id,
        });
        Ok(Page {
            items: rows
                .into_iter()
                .map(template_of)
                .collect::<Result<_, _>>()?,
            next,
        })
    }

    async fn subject_holdings(&self, subject: SubjectId) -> Result<Holdings, RepositoryError> {
        let conn = self.db.connection();
        let account: Option<(Uuid, Uuid)> = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .column(user::Column::HomeOrganisationId)
            .filter(user::Column::SubjectId.eq(subject.as_uuid()))
            .into_tuple()
            .one(conn)
            .await
            .map_err(unavailable)?;
        let mut holdings = Holdings::default();
        if let Some((id, home)) = account {
            let practices: Vec<Uuid> = membership::Entity::find()
                .select_only()
                .column(membership::Column::OrganisationId)
                .filter(membership::Column::UserId.eq(id))
                .filter(membership::Column::Role.eq(Role::Client.as_str()))
                .order_by_asc(membership::Column::CreatedAt)
                .order_by_asc(membership::Column::OrganisationId)
                .into_tuple()
                .all(conn)
                .await
                .map_err(unavailable)?;
            let practice = practices
                .iter()
                .find(|p| **p == home)
                .or_else(|| practices.first());
            holdings.client = practice.map(|organisation| ClientRef {
                user: UserId::from_uuid(id),
                subject,
                organisation: OrganisationId::from_uuid(*organisation),
                home_organisation: OrganisationId::from_uuid(home),
            });
            holdings.identity = self.identity(UserId::from_uuid(id), subject).await?;
        }
        // A row's client: the row's practice, and the account's home practice (or,
        // with no account row at all, the row's practice: identity keeps the row
        // of an erased account, so that only happens to rows written without one).
        let client_of = |user: Uuid, organisation: Uuid| ClientRef {
            user: UserId::from_uuid(user),
            subject,
            organisation: OrganisationId::from_uuid(organisation),
            home_organisation: OrganisationId::from_uuid(
                account.map_or(organisation, |(_, home)| home),
            ),
        };

        let records = clinical_record::Entity::find()
            .filter(clinical_record::Column::SubjectId.eq(subject.as_uuid()))
            .order_by_asc(clinical_record::Column::CreatedAt)
            .order_by_asc(clinical_record::Column::Id)
            .all(conn)
            .await
            .map_err(unavailable)?;
        for row in records {
            let client = client_of(row.client_id, row.organisation_id);
            holdings.records.push(self.record_of(row, client).await?);
        }
        let versions = clinical_record_version::Entity::find()
            .filter(clinical_record_version::Column::SubjectId.eq(subject.as_uuid()))
            .order_by_asc(clinical_record_version::Column::RecordId)
            .order_by_asc(clinical_record_version::Column::Version)
            .all(conn)
            .await
            .map_err(unavailable)?;
        // The port's holdings carry the versions each record replaced; the
        // current one is the record itself.
        for row in &versions {
            let current = holdings
                .records
                .iter()
                .any(|r| r.id == row.record_id && i64::from(r.version) == i64::from(row.version));
            if !current {
                holdings
                    .versions
                    .push((row.record_id, self.version_of(row).await?));
            }
        }
        let appointments = clinical_appointment::Entity::find()
            .filter(clinical_appointment::Column::SubjectId.eq(subject.as_uuid()))
            .order_by_asc(clinical_appointment::Column::StartsAt)
            .order_by_asc(clinical_appointment::Column::Id)
            .all(conn)
            .await
            .map_err(unavailable)?;
        for row in appointments {
            let client = client_of(row.client_id, row.organisation_id);
            holdings
                .appointments
                .push(self.appointment_of(row, client).await?);
        }
        if let Some((id, _)) = account {
            holdings.care_team = clinical_care_team::Entity::find()
                .filter(clinical_care_team::Column::ClientId.eq(id))
                .order_by_asc(clinical_care_team::Column::StartsOn)
                .order_by_asc(clinical_care_team::Column::AddedAt)
                .order_by_asc(clinical_care_team::Column::Id)
                .all(conn)
                .await
                .map_err(unavailable)?
                .into_iter()
                .map(member_of)
                .collect();
        }
        let grants = clinical_break_glass::Entity::find()
            .filter(clinical_break_glass::Column::SubjectId.eq(subject.as_uuid()))
            .order_by_asc(clinical_break_glass::Column::GrantedAt)
            .order_by_asc(clinical_break_glass::Column::Id)
            .all(conn)
            .await
            .map_err(unavailable)?;
        for row in grants {
            let client = client_of(row.client_id, row.organisation_id);
            holdings.break_glass.push(self.grant_of(row, client).await?);
        }
        Ok(holdings)
    }

    async fn erase_subject(&self, subject: SubjectId) -> Result<Vec<Erased>, RepositoryError> {
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let work = write_erase(&txn, subject.as_uuid()).await;
        finish(txn, work, unavailable).await
    }

    async fn dormant_charts(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SubjectId>, RepositoryError> {
        #[derive(FromQueryResult)]
        struct Row {
            subject_id: Uuid,
        }
        let outer = Alias::new("dormant_chart");
        let subject = || Expr::col((outer.clone(), Alias::new("subject_id")));
        let from = |table: SelectStatement| {
            let mut stmt = table;
            stmt.distinct()
                .cond_where(dormant(&subject(), cutoff))
                .order_by((outer.clone(), Alias::new("subject_id")), Order::Asc)
                .limit(u64::from(limit));
            stmt
        };
        let mut sources = Vec::new();
        for table in [
            Alias::new("clinical_records"),
            Alias::new("clinical_appointments"),
        ] {
            sources.push(from(
                Query::select()
                    .expr_as(subject(), Alias::new("subject_id"))
                    .from_as(table, outer.clone())
                    .to_owned(),
            ));
        }
        // Care-team memberships are by client account: the accounts' subjects.
        let on_a_team = Query::select()
            .column((
                clinical_care_team::Entity,
                clinical_care_team::Column::ClientId,
            ))
            .from(clinical_care_team::Entity)
            .to_owned();
        sources.push(from(
            Query::select()
                .expr_as(subject(), Alias::new("subject_id"))
                .from_as(user::Entity, outer.clone())
                .and_where(Expr::col((outer.clone(), Alias::new("id"))).in_subquery(on_a_team))
                .to_owned(),
        ));
        let mut subjects = std::collections::BTreeSet::new();
        for stmt in &sources {
            let rows: Vec<Row> = select_rows(self.db.connection(), stmt).await?;
            subjects.extend(rows.into_iter().map(|r| r.subject_id));
        }
        Ok(subjects
            .into_iter()
            .take(limit as usize)
            .map(SubjectId::from_uuid)
            .collect())
    }

    async fn delete_dormant_chart(
        &self,
        subject: SubjectId,
        cutoff: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Option<Vec<Erased>>, RepositoryError> {
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        match write_delete_dormant(&txn, subject.as_uuid(), cutoff).await {
            Ok(Some(erased)) if !dry_run => finish(txn, Ok(Some(erased)), unavailable).await,
            // A dry run, or a chart no longer dormant: nothing stays deleted.
            Ok(answer) => {
                txn.rollback().await.map_err(unavailable)?;
                Ok(answer)
            }
            Err(err) => finish(txn, Err(err), unavailable).await,
        }
    }

    async fn delete_break_glass_ended_before(
        &self,
        cutoff: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<u64, RepositoryError> {
        let ended = clinical_break_glass::Column::ExpiresAt.lt(stored(cutoff));
        if dry_run {
            return clinical_break_glass::Entity::find()
                .filter(ended)
                .count(self.db.connection())
                .await
                .map_err(unavailable);
        }
        clinical_break_glass::Entity::delete_many()
            .filter(ended)
            .exec(self.db.connection())
            .await
            .map(|done| done.rows_affected)
            .map_err(unavailable)
    }

    async fn set_restriction(
        &self,
        subject: SubjectId,
        restriction: &Restriction,
    ) -> Result<(), RepositoryError> {
        use clinical_restriction::Column as C;
        let scope = match restriction {
            Restriction::None => {
                return clinical_restriction::Entity::delete_by_id(subject.as_uuid())
                    .exec(self.db.connection())
                    .await
                    .map(drop)
                    .map_err(unavailable);
            }
            Restriction::All => ALL_CATEGORIES.to_owned(),
            Restriction::Categories(categories) => {
                let names: Vec<&str> = categories.iter().map(|c| c.as_str()).collect();
                serde_json::to_string(&names).map_err(|_| unavailable(Fault::Encoding))?
            }
        };
        clinical_restriction::Entity::insert(clinical_restriction::ActiveModel {
            subject_id: Set(subject.as_uuid()),
            scope: Set(scope),
        })
        .on_conflict(
            OnConflict::column(C::SubjectId)
                .update_column(C::Scope)
                .to_owned(),
        )
        .exec_without_returning(self.db.connection())
        .await
        .map(drop)
        .map_err(unavailable)
    }
}
