//! [`MemoryRepository`]: the clinical repository in memory, for tests, examples and
//! benchmarks. It keeps the port's contract as the SQL adapter does, so the service
//! behaves over it as it does over a database:
//!
//! - lists are ordered by (time, id) and start strictly after the cursor; a page
//!   reads one item more than its limit to know whether there is a next page, and
//!   the limit is clamped to 1 ..= [`MAX_PAGE`];
//! - an update keeps the version it replaces readable, and `update_records` checks
//!   every stored version before it changes any (all or nothing);
//! - a provider is double-booked when an appointment holding time (any status but
//!   cancelled) overlaps the new one: `a.start < b.end && a.end > b.start`;
//! - a care-team membership conflicts with the provider's membership of the same
//!   client that has not ended before the new one starts; ending a membership ends
//!   the provider's open one (no end day set);
//! - erasure deletes every clinical row of the subject and reports each, and a
//!   second erasure reports nothing.
//!
//! Clients and providers come from identity in production; here they are set up
//! with [`MemoryRepository::add_client`] and [`MemoryRepository::add_provider`].
//! Care-team memberships carry no id of their own: erasure reports each as
//! `care_team_member` with the provider's id, as the service's audit events name it.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use kernel::{DataCategory, OrganisationId, SubjectId, UserId};
use uuid::Uuid;

use crate::model::{
    Appointment, BreakGlassGrant, CareTeamMember, ClientIdentity, ClientRef, Cursor,
    ExerciseTemplate, MAX_PAGE, Page, PageRequest, Record, RecordKind, RecordVersion,
};
use crate::ports::{
    ClientAccess, ClientListing, ClinicalRepository, Erased, Holdings, RepositoryError, Restriction,
};

/// A record with the versions it replaced, oldest first.
#[derive(Debug, Clone)]
struct Stored {
    current: Record,
    earlier: Vec<RecordVersion>,
}

impl Stored {
    fn version_of(record: &Record) -> RecordVersion {
        RecordVersion {
            version: record.version,
            body: record.body.clone(),
            at: record.updated_at,
            by: record.updated_by,
        }
    }
}

/// A client of a practice, and since when.
#[derive(Debug, Clone)]
struct Enrolled {
    client: ClientRef,
    identity: ClientIdentity,
    since: DateTime<Utc>,
}

#[derive(Debug, Default, Clone)]
struct Inner {
    clients: HashMap<(OrganisationId, UserId), Enrolled>,
    providers: HashSet<(OrganisationId, UserId)>,
    restrictions: HashMap<SubjectId, Restriction>,
    care_team: Vec<CareTeamMember>,
    grants: Vec<BreakGlassGrant>,
    records: HashMap<Uuid, Stored>,
    appointments: HashMap<Uuid, Appointment>,
    templates: HashMap<Uuid, ExerciseTemplate>,
}

/// The clinical repository in memory (see the module documentation).
#[derive(Debug, Default)]
pub struct MemoryRepository {
    inner: Mutex<Inner>,
}

/// Whether `client` names the same client of the same practice as `other`.
fn same_client(client: &ClientRef, other: &ClientRef) -> bool {
    client.user == other.user && client.organisation == other.organisation
}

/// Whether a membership belongs to `client`.
fn member_of(member: &CareTeamMember, client: &ClientRef) -> bool {
    member.client == client.user && member.organisation == client.organisation
}

/// Whether two appointments overlap (half-open intervals).
fn overlaps(a: &Appointment, b: &Appointment) -> bool {
    a.starts_at < b.ends_at && a.ends_at > b.starts_at
}

/// The start of `day` in UTC.
fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// One page of `items` by `key`, strictly after the cursor.
fn page_of<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> (DateTime<Utc>, Uuid),
    request: PageRequest,
) -> Page<T> {
    items.sort_by_key(|item| key(item));
    let limit = request.limit.clamp(1, MAX_PAGE) as usize;
    let mut items: Vec<T> = items
        .into_iter()
        .filter(|item| {
            request
                .after
                .is_none_or(|after| key(item) > (after.at, after.id))
        })
        .take(limit + 1)
        .collect();
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| {
            let (at, id) = key(last);
            Cursor { at, id }
        })
    } else {
        None
    };
    Page { items, next }
}

impl MemoryRepository {
    /// An empty repository.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock still guards consistent maps: every change below is made
        // only after every check has passed.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes `client` a client of its practice from now, with `identity` as
    /// identity holds it.
    pub fn add_client(&self, client: ClientRef, identity: ClientIdentity) {
        self.add_client_since(client, identity, Utc::now());
    }

    /// Makes `client` a client of its practice since `since` (the time a practice
    /// admin's list of clients is ordered by).
    pub fn add_client_since(
        &self,
        client: ClientRef,
        identity: ClientIdentity,
        since: DateTime<Utc>,
    ) {
        self.lock().clients.insert(
            (client.organisation, client.user),
            Enrolled {
                client,
                identity,
                since,
            },
        );
    }

    /// Gives `user` the `provider` role in `organisation`.
    pub fn add_provider(&self, organisation: OrganisationId, user: UserId) {
        self.lock().providers.insert((organisation, user));
    }

    /// How many records, earlier versions, appointments, memberships and grants of
    /// any subject are stored: for tests that check nothing was written.
    #[must_use]
    pub fn row_count(&self) -> usize {
        let inner = self.lock();
        inner.records.len()
            + inner
                .records
                .values()
                .map(|s| s.earlier.len())
                .sum::<usize>()
            + inner.appointments.len()
            + inner.care_team.len()
            + inner.grants.len()
    }
}

#[async_trait]
impl ClinicalRepository for MemoryRepository {
    async fn client(
        &self,
        organisation: OrganisationId,
        user: UserId,
    ) -> Result<Option<ClientAccess>, RepositoryError> {
        let inner = self.lock();
        Ok(inner
            .clients
            .get(&(organisation, user))
            .map(|e| ClientAccess {
                client: e.client,
                restricted: inner
                    .restrictions
                    .get(&e.client.subject)
                    .cloned()
                    .unwrap_or_default(),
            }))
    }

    async fn client_identity(
        &self,
        client: &ClientRef,
    ) -> Result<Option<ClientIdentity>, RepositoryError> {
        Ok(self
            .lock()
            .clients
            .get(&(client.organisation, client.user))
            .map(|e| e.identity.clone()))
    }

    async fn is_provider(
        &self,
        organisation: OrganisationId,
        user: UserId,
    ) -> Result<bool, RepositoryError> {
        Ok(self.lock().providers.contains(&(organisation, user)))
    }

    async fn clients(
        &self,
        organisation: OrganisationId,
        provider: Option<UserId>,
        day: NaiveDate,
        page: PageRequest,
    ) -> Result<Page<ClientListing>, RepositoryError> {
        let inner = self.lock();
        let listings: Vec<ClientListing> = match provider {
            None => inner
                .clients
                .values()
                .filter(|e| e.client.organisation == organisation)
                .map(|e| ClientListing {
                    client: e.client,
                    since: e.since,
                })
                .collect(),
            Some(provider) => inner
                .care_team
                .iter()
                .filter(|m| {
                    m.organisation == organisation && m.provider == provider && m.covers(day)
                })
                .filter_map(|m| {
                    inner
                        .clients
                        .get(&(organisation, m.client))
                        .map(|e| ClientListing {
                            client: e.client,
                            since: midnight(m.starts_on),
                        })
                })
                .collect(),
        };
        Ok(page_of(
            listings,
            |l| (l.since, l.client.user.as_uuid()),
            page,
        ))
    }

    async fn care_team(&self, client: &ClientRef) -> Result<Vec<CareTeamMember>, RepositoryError> {
        let mut team: Vec<CareTeamMember> = self
            .lock()
            .care_team
            .iter()
            .filter(|m| member_of(m, client))
            .copied()
            .collect();
        team.sort_by_key(|m| (m.starts_on, m.added_at, m.provider));
        Ok(team)
    }

    async fn on_care_team(
        &self,
        client: &ClientRef,
        provider: UserId,
        day: NaiveDate,
    ) -> Result<bool, RepositoryError> {
        Ok(self
            .lock()
            .care_team
            .iter()
            .any(|m| member_of(m, client) && m.provider == provider && m.covers(day)))
    }

    async fn add_care_team_member(&self, member: &CareTeamMember) -> Result<(), RepositoryError> {
        let mut inner = self.lock();
        let taken = inner.care_team.iter().any(|m| {
            m.client == member.client
                && m.organisation == member.organisation
                && m.provider == member.provider
                && m.ends_on.is_none_or(|end| end >= member.starts_on)
        });
        if taken {
            return Err(RepositoryError::Conflict(
                "the provider is on the care team already",
            ));
        }
        inner.care_team.push(*member);
        Ok(())
    }

    async fn end_care_team_membership(
        &self,
        client: &ClientRef,
        provider: UserId,
        ends_on: NaiveDate,
    ) -> Result<bool, RepositoryError> {
        let mut inner = self.lock();
        let open = inner
            .care_team
            .iter_mut()
            .find(|m| member_of(m, client) && m.provider == provider && m.ends_on.is_none());
        Ok(open.is_some_and(|m| {
            m.ends_on = Some(ends_on);
            true
        }))
    }

    async fn grant_break_glass(&self, grant: &BreakGlassGrant) -> Result<(), RepositoryError> {
        let mut inner = self.lock();
        if inner.grants.iter().any(|g| g.id == grant.id) {
            return Err(RepositoryError::Conflict("the grant exists already"));
        }
        inner.grants.push(grant.clone());
        Ok(())
    }

    async fn break_glass_in_force(
        &self,
        client: &ClientRef,
        holder: UserId,
        at: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        Ok(self.lock().grants.iter().any(|g| {
            same_client(&g.client, client)
                && g.holder == holder
                && g.granted_at <= at
                && at < g.expires_at
        }))
    }

    async fn break_glass_grants(
        &self,
        organisation: OrganisationId,
        page: PageRequest,
    ) -> Result<Page<BreakGlassGrant>, RepositoryError> {
        let grants = self
            .lock()
            .grants
            .iter()
            .filter(|g| g.client.organisation == organisation)
            .cloned()
            .collect();
        Ok(page_of(grants, |g| (g.granted_at, g.id), page))
    }

    async fn insert_record(&self, record: &Record) -> Result<(), RepositoryError> {
        let mut inner = self.lock();
        if inner.records.contains_key(&record.id) {
            return Err(RepositoryError::Conflict("the record exists already"));
        }
        inner.records.insert(
            record.id,
            Stored {
                current: record.clone(),
                earlier: Vec::new(),
            },
        );
        Ok(())
    }

    async fn update_records(&self, changes: &[(&Record, u32)]) -> Result<(), RepositoryError> {
        let mut inner = self.lock();
        // Applied to copies first, in order, so that a later change sees an earlier
        // one (as in one transaction) and a failure leaves nothing changed.
        let mut staged: HashMap<Uuid, Stored> = HashMap::new();
        for (record, expected) in changes {
            let stored = match staged.remove(&record.id) {
                Some(s) => Some(s),
                None => inner.records.get(&record.id).cloned(),
            };
            let Some(mut stored) = stored.filter(|s| {
                same_client(&s.current.client, &record.client) && s.current.version == *expected
            }) else {
                return Err(RepositoryError::Conflict(
                    "the record changed since it was read",
                ));
            };
            let replaced = Stored::version_of(&stored.current);
            stored.earlier.push(replaced);
            stored.current = (*record).clone();
            staged.insert(record.id, stored);
        }
        inner.records.extend(staged);
        Ok(())
    }

    async fn record(
        &self,
        client: &ClientRef,
        id: Uuid,
    ) -> Result<Option<Record>, RepositoryError> {
        Ok(self
            .lock()
            .records
            .get(&id)
            .filter(|s| same_client(&s.current.client, client))
            .map(|s| s.current.clone()))
    }

    async fn records(
        &self,
        client: &ClientRef,
        kind: RecordKind,
        page: PageRequest,
    ) -> Result<Page<Record>, RepositoryError> {
        let records = self
            .lock()
            .records
            .values()
            .filter(|s| same_client(&s.current.client, client) && s.current.kind() == kind)
            .map(|s| s.current.clone())
            .collect();
        Ok(page_of(records, |r| (r.created_at, r.id), page))
    }

    async fn record_versions(
        &self,
        client: &ClientRef,
        id: Uuid,
    ) -> Result<Vec<RecordVersion>, RepositoryError> {
        Ok(self
            .lock()
            .records
            .get(&id)
            .filter(|s| same_client(&s.current.client, client))
            .map(|s| {
                let mut all = s.earlier.clone();
                all.push(Stored::version_of(&s.current));
                all
            })
            .unwrap_or_default())
    }

    async fn book(&self, appointment: &Appointment) -> Result<(), RepositoryError> {
        let mut inner = self.lock();
        if inner.appointments.contains_key(&appointment.id) {
            return Err(RepositoryError::Conflict("the appointment exists already"));
        }
        check_free(&inner, appointment)?;
        inner
            .appointments
            .insert(appointment.id, appointment.clone());
        Ok(())
    }

    async fn update_appointment(
        &self,
        appointment: &Appointment,
        expected: u32,
    ) -> Result<(), RepositoryError> {
        let mut inner = self.lock();
        let current = inner
            .appointments
            .get(&appointment.id)
            .filter(|a| same_client(&a.client, &appointment.client) && a.version == expected);
        if current.is_none() {
            return Err(RepositoryError::Conflict(
                "the appointment changed since it was read",
            ));
        }
        check_free(&inner, appointment)?;
        inner
            .appointments
            .insert(appointment.id, appointment.clone());
        Ok(())
    }

    async fn appointment(
        &self,
        client: &ClientRef,
        id: Uuid,
    ) -> Result<Option<Appointment>, RepositoryError> {
        Ok(self
            .lock()
            .appointments
            .get(&id)
            .filter(|a| same_client(&a.client, client))
            .cloned())
    }

    async fn appointments(
        &self,
        client: &ClientRef,
        page: PageRequest,
    ) -> Result<Page<Appointment>, RepositoryError> {
        let appointments = self
            .lock()
            .appointments
            .values()
            .filter(|a| same_client(&a.client, client))
            .cloned()
            .collect();
        Ok(page_of(appointments, |a| (a.starts_at, a.id), page))
    }

    async fn add_template(&self, template: &ExerciseTemplate) -> Result<(), RepositoryError> {
        let mut inner = self.lock();
        if inner.templates.contains_key(&template.id) {
            return Err(RepositoryError::Conflict("the exercise exists already"));
        }
        inner.templates.insert(template.id, template.clone());
        Ok(())
    }

    async fn template(
        &self,
        organisation: OrganisationId,
        id: Uuid,
    ) -> Result<Option<ExerciseTemplate>, RepositoryError> {
        Ok(self
            .lock()
            .templates
            .get(&id)
            .filter(|t| t.organisation.is_none_or(|o| o == organisation))
            .cloned())
    }

    async fn templates(
        &self,
        organisation: OrganisationId,
        page: PageRequest,
    ) -> Result<Page<ExerciseTemplate>, RepositoryError> {
        let templates = self
            .lock()
            .templates
            .values()
            .filter(|t| t.organisation.is_none_or(|o| o == organisation))
            .cloned()
            .collect();
        Ok(page_of(templates, |t| (t.created_at, t.id), page))
    }

    async fn subject_holdings(&self, subject: SubjectId) -> Result<Holdings, RepositoryError> {
        let inner = self.lock();
        let mut enrolments: Vec<&Enrolled> = inner
            .clients
            .values()
            .filter(|e| e.client.subject == subject)
            .collect();
        // The home practice's account first, then by practice, for a stable answer.
        enrolments.sort_by_key(|e| {
            (
                e.client.organisation != e.client.home_organisation,
                e.client.organisation,
            )
        });
        let client = enrolments.first().map(|e| e.client);
        let identity = enrolments.first().map(|e| e.identity.clone());

        let mut stored: Vec<&Stored> = inner
            .records
            .values()
            .filter(|s| s.current.client.subject == subject)
            .collect();
        stored.sort_by_key(|s| (s.current.created_at, s.current.id));
        let records = stored.iter().map(|s| s.current.clone()).collect();
        let versions = stored
            .iter()
            .flat_map(|s| s.earlier.iter().map(|v| (s.current.id, v.clone())))
            .collect();

        let mut appointments: Vec<Appointment> = inner
            .appointments
            .values()
            .filter(|a| a.client.subject == subject)
            .cloned()
            .collect();
        appointments.sort_by_key(|a| (a.starts_at, a.id));

        let accounts = subject_accounts(&inner, subject);
        let care_team = inner
            .care_team
            .iter()
            .filter(|m| accounts.contains(&(m.organisation, m.client)))
            .copied()
            .collect();

        let mut break_glass: Vec<BreakGlassGrant> = inner
            .grants
            .iter()
            .filter(|g| g.client.subject == subject)
            .cloned()
            .collect();
        break_glass.sort_by_key(|g| (g.granted_at, g.id));

        Ok(Holdings {
            client,
            identity,
            records,
            versions,
            appointments,
            care_team,
            break_glass,
        })
    }

    async fn erase_subject(&self, subject: SubjectId) -> Result<Vec<Erased>, RepositoryError> {
        Ok(erase_in(&mut self.lock(), subject, true))
    }

    async fn dormant_charts(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SubjectId>, RepositoryError> {
        let inner = self.lock();
        let client_subject = |organisation, user| {
            inner
                .clients
                .get(&(organisation, user))
                .map(|e| e.client.subject)
        };
        let mut subjects: Vec<SubjectId> = inner
            .records
            .values()
            .map(|s| s.current.client.subject)
            .chain(inner.appointments.values().map(|a| a.client.subject))
            .chain(
                inner
                    .care_team
                    .iter()
                    .filter_map(|m| client_subject(m.organisation, m.client)),
            )
            .collect::<HashSet<_>>()
            .into_iter()
            .filter(|s| dormant(&inner, *s, cutoff))
            .collect();
        subjects.sort_by_key(|s| s.as_uuid());
        subjects.truncate(limit as usize);
        Ok(subjects)
    }

    async fn delete_dormant_chart(
        &self,
        subject: SubjectId,
        cutoff: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Option<Vec<Erased>>, RepositoryError> {
        let mut inner = self.lock();
        if !dormant(&inner, subject, cutoff) {
            return Ok(None);
        }
        Ok(Some(if dry_run {
            erase_in(&mut inner.clone(), subject, false)
        } else {
            erase_in(&mut inner, subject, false)
        }))
    }

    async fn delete_break_glass_ended_before(
        &self,
        cutoff: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<u64, RepositoryError> {
        let mut inner = self.lock();
        let before = inner.grants.len();
        if dry_run {
            return Ok(inner
                .grants
                .iter()
                .filter(|g| g.expires_at < cutoff)
                .count() as u64);
        }
        inner.grants.retain(|g| g.expires_at >= cutoff);
        Ok((before - inner.grants.len()) as u64)
    }

    async fn set_restriction(
        &self,
        subject: SubjectId,
        restriction: &Restriction,
    ) -> Result<(), RepositoryError> {
        let mut inner = self.lock();
        if *restriction == Restriction::None {
            inner.restrictions.remove(&subject);
        } else {
            inner.restrictions.insert(subject, restriction.clone());
        }
        Ok(())
    }
}

/// Deletes every clinical row of `subject` from `inner` (break-glass grants only
/// `with_grants`), reporting each.
fn erase_in(inner: &mut Inner, subject: SubjectId, with_grants: bool) -> Vec<Erased> {
    let accounts = subject_accounts(inner, subject);
    let mut erased = Vec::new();

    let mut records: Vec<Record> = inner
        .records
        .values()
        .filter(|s| s.current.client.subject == subject)
        .map(|s| s.current.clone())
        .collect();
    records.sort_by_key(|r| (r.created_at, r.id));
    for r in records {
        inner.records.remove(&r.id);
        erased.push(Erased {
            kind: r.kind().as_str(),
            id: r.id,
            category: r.kind().category(),
        });
    }

    let mut appointments: Vec<(DateTime<Utc>, Uuid)> = inner
        .appointments
        .values()
        .filter(|a| a.client.subject == subject)
        .map(|a| (a.starts_at, a.id))
        .collect();
    appointments.sort_unstable();
    for (_, id) in appointments {
        inner.appointments.remove(&id);
        erased.push(Erased {
            kind: "appointment",
            id,
            category: DataCategory::Appointments,
        });
    }

    let (gone, kept): (Vec<CareTeamMember>, Vec<CareTeamMember>) = inner
        .care_team
        .iter()
        .partition(|m| accounts.contains(&(m.organisation, m.client)));
    inner.care_team = kept;
    erased.extend(gone.into_iter().map(|m| Erased {
        kind: "care_team_member",
        id: m.provider.as_uuid(),
        category: DataCategory::Profile,
    }));

    let (gone, kept): (Vec<BreakGlassGrant>, Vec<BreakGlassGrant>) = inner
        .grants
        .drain(..)
        .partition(|g| with_grants && g.client.subject == subject);
    inner.grants = kept;
    erased.extend(gone.into_iter().map(|g| Erased {
        kind: "break_glass_grant",
        id: g.id,
        category: DataCategory::AccessLog,
    }));

    if inner.restrictions.remove(&subject).is_some() {
        erased.push(Erased {
            kind: "restriction",
            id: subject.as_uuid(),
            category: DataCategory::Profile,
        });
    }
    erased
}

/// Whether `subject`'s chart is dormant at `cutoff` (the port's contract).
fn dormant(inner: &Inner, subject: SubjectId, cutoff: DateTime<Utc>) -> bool {
    let accounts = subject_accounts(inner, subject);
    inner
        .records
        .values()
        .filter(|s| s.current.client.subject == subject)
        .all(|s| s.current.updated_at < cutoff)
        && inner
            .appointments
            .values()
            .filter(|a| a.client.subject == subject)
            .all(|a| a.ends_at < cutoff)
        && inner
            .grants
            .iter()
            .filter(|g| g.client.subject == subject)
            .all(|g| g.expires_at < cutoff)
        && inner
            .care_team
            .iter()
            .filter(|m| accounts.contains(&(m.organisation, m.client)))
            .all(|m| m.ends_on.is_some_and(|day| day < cutoff.date_naive()) && m.added_at < cutoff)
}

/// The practice accounts (practice, user) through which `subject` is or was a
/// client: the registered ones and those named by their records.
fn subject_accounts(inner: &Inner, subject: SubjectId) -> HashSet<(OrganisationId, UserId)> {
    let of = |c: &ClientRef| (c.subject == subject).then_some((c.organisation, c.user));
    inner
        .clients
        .values()
        .filter_map(|e| of(&e.client))
        .chain(inner.records.values().filter_map(|s| of(&s.current.client)))
        .chain(inner.appointments.values().filter_map(|a| of(&a.client)))
        .chain(inner.grants.iter().filter_map(|g| of(&g.client)))
        .collect()
}

/// [`RepositoryError::Conflict`] if `appointment` holds time its provider has given
/// to another appointment.
fn check_free(inner: &Inner, appointment: &Appointment) -> Result<(), RepositoryError> {
    if !appointment.status.holds_time() {
        return Ok(());
    }
    let clash = inner.appointments.values().any(|other| {
        other.id != appointment.id
            && other.provider == appointment.provider
            && other.status.holds_time()
            && overlaps(other, appointment)
    });
    if clash {
        Err(RepositoryError::Conflict(
            "the provider has another appointment at that time",
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AppointmentDetails, AppointmentStatus, RecordBody};
    use crate::values::{Text, TimeZone};
    use serde_json::json;

    fn at(hour: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000 + hour * 3600, 0).expect("valid")
    }

    fn client() -> ClientRef {
        let organisation = OrganisationId::new();
        ClientRef {
            user: UserId::new(),
            subject: SubjectId::new(),
            organisation,
            home_organisation: organisation,
        }
    }

    fn note(client: ClientRef, created: DateTime<Utc>, text: &str) -> Record {
        let body =
            RecordBody::from_json(RecordKind::StatusNote, json!({ "text": text })).expect("valid");
        Record {
            id: Uuid::now_v7(),
            client,
            version: 1,
            body,
            created_at: created,
            created_by: UserId::new(),
            updated_at: created,
            updated_by: UserId::new(),
        }
    }

    fn appointment(client: ClientRef, provider: UserId, from: i64, to: i64) -> Appointment {
        Appointment {
            id: Uuid::now_v7(),
            client,
            provider,
            starts_at: at(from),
            ends_at: at(to),
            status: AppointmentStatus::Booked,
            details: AppointmentDetails {
                time_zone: TimeZone::parse("UTC").expect("valid"),
                location: None,
                telehealth_url: None,
                reason: Some(Text::parse("check-up").expect("valid")),
            },
            version: 1,
            created_at: at(0),
            created_by: provider,
        }
    }

    #[tokio::test]
    async fn pages_start_strictly_after_the_cursor_and_know_when_they_end() {
        let repo = MemoryRepository::new();
        let c = client();
        // Two records share a time: the id breaks the tie.
        let mut written = vec![
            note(c, at(1), "a"),
            note(c, at(2), "b"),
            note(c, at(2), "c"),
            note(c, at(3), "d"),
            note(c, at(4), "e"),
        ];
        for r in &written {
            repo.insert_record(r).await.expect("inserted");
        }
        repo.insert_record(&note(client(), at(1), "someone else's"))
            .await
            .expect("inserted");
        written.sort_by_key(|r| (r.created_at, r.id));
        let mut seen = Vec::new();
        let mut request = PageRequest::first(2);
        let mut pages = 0;
        loop {
            let page = repo
                .records(&c, RecordKind::StatusNote, request)
                .await
                .expect("page");
            pages += 1;
            seen.extend(page.items.iter().map(|r| r.id));
            let Some(next) = page.next else { break };
            request = PageRequest {
                after: Some(next),
                limit: 2,
            };
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, written.iter().map(|r| r.id).collect::<Vec<_>>());
        let none = repo
            .records(&c, RecordKind::Condition, PageRequest::first(10))
            .await
            .expect("page");
        assert!(none.items.is_empty() && none.next.is_none());
    }

    #[tokio::test]
    async fn updates_are_all_or_nothing_and_keep_every_version() {
        let repo = MemoryRepository::new();
        let c = client();
        let a = note(c, at(1), "a");
        let b = note(c, at(1), "b");
        repo.insert_record(&a).await.expect("inserted");
        repo.insert_record(&b).await.expect("inserted");
        let a2 = Record {
            version: 2,
            body: RecordBody::from_json(RecordKind::StatusNote, json!({"text": "a2"}))
                .expect("valid"),
            ..a.clone()
        };
        let b2 = Record {
            version: 2,
            ..b.clone()
        };
        // b's stored version is 1, not 5: neither change is made.
        let stale = repo.update_records(&[(&a2, 1), (&b2, 5)]).await;
        assert!(matches!(stale, Err(RepositoryError::Conflict(_))));
        assert_eq!(repo.record(&c, a.id).await.expect("read"), Some(a.clone()));
        // The same record twice in one call: the second sees the first.
        let twice = repo.update_records(&[(&a2, 1), (&a2, 1)]).await;
        assert!(matches!(twice, Err(RepositoryError::Conflict(_))));
        assert_eq!(repo.record(&c, a.id).await.expect("read"), Some(a.clone()));

        repo.update_records(&[(&a2, 1), (&b2, 1)])
            .await
            .expect("updated");
        let versions = repo.record_versions(&c, a.id).await.expect("versions");
        assert_eq!(
            versions.iter().map(|v| v.version).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(versions[0].body, a.body);
        assert_eq!(versions[1].body, a2.body);
        // Another client's reference sees nothing.
        assert!(
            repo.record_versions(&client(), a.id)
                .await
                .expect("versions")
                .is_empty()
        );
        assert_eq!(repo.record(&client(), a.id).await.expect("read"), None);
    }

    #[tokio::test]
    async fn a_provider_is_never_in_two_appointments_at_once() {
        let repo = MemoryRepository::new();
        let (c, provider) = (client(), UserId::new());
        let first = appointment(c, provider, 10, 12);
        repo.book(&first).await.expect("booked");
        // Overlapping at either end, or inside, is a conflict; touching is not.
        for (from, to) in [(11, 13), (9, 11), (10, 12), (10, 11)] {
            let clash = repo.book(&appointment(client(), provider, from, to)).await;
            assert!(
                matches!(clash, Err(RepositoryError::Conflict(_))),
                "{from}-{to}"
            );
        }
        repo.book(&appointment(c, provider, 12, 13))
            .await
            .expect("adjacent");
        repo.book(&appointment(c, UserId::new(), 10, 12))
            .await
            .expect("another provider");
        let cancelled = Appointment {
            status: AppointmentStatus::Cancelled,
            version: 2,
            ..first.clone()
        };
        assert!(matches!(
            repo.update_appointment(&cancelled, 2).await,
            Err(RepositoryError::Conflict(_))
        ));
        repo.update_appointment(&cancelled, 1)
            .await
            .expect("cancelled");
        repo.book(&appointment(c, provider, 10, 12))
            .await
            .expect("the slot is free again");
        // Reinstating the cancelled one would now double-book.
        let again = Appointment {
            status: AppointmentStatus::Booked,
            version: 3,
            ..first
        };
        assert!(matches!(
            repo.update_appointment(&again, 2).await,
            Err(RepositoryError::Conflict(_))
        ));
    }

    #[tokio::test]
    async fn a_membership_conflicts_until_the_earlier_one_has_ended() {
        let repo = MemoryRepository::new();
        let (c, provider) = (client(), UserId::new());
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).expect("valid");
        let member = CareTeamMember {
            client: c.user,
            provider,
            organisation: c.organisation,
            starts_on: day(1),
            ends_on: None,
            added_by: provider,
            added_at: at(0),
        };
        repo.add_care_team_member(&member).await.expect("added");
        assert!(matches!(
            repo.add_care_team_member(&member).await,
            Err(RepositoryError::Conflict(_))
        ));
        assert!(
            repo.end_care_team_membership(&c, provider, day(10))
                .await
                .expect("ended")
        );
        assert!(
            !repo
                .end_care_team_membership(&c, provider, day(11))
                .await
                .expect("none open")
        );
        assert!(repo.on_care_team(&c, provider, day(10)).await.expect("on"));
        assert!(!repo.on_care_team(&c, provider, day(11)).await.expect("off"));
        let on_the_last_day = CareTeamMember {
            starts_on: day(10),
            ..member
        };
        assert!(matches!(
            repo.add_care_team_member(&on_the_last_day).await,
            Err(RepositoryError::Conflict(_))
        ));
        let after = CareTeamMember {
            starts_on: day(11),
            ..member
        };
        repo.add_care_team_member(&after).await.expect("rejoined");
        assert_eq!(repo.care_team(&c).await.expect("team").len(), 2);
    }

    #[tokio::test]
    async fn erasure_removes_every_row_of_the_subject_once() {
        let repo = MemoryRepository::new();
        let (c, other, provider) = (client(), client(), UserId::new());
        let r = note(c, at(1), "mine");
        repo.insert_record(&r).await.expect("inserted");
        let r2 = Record {
            version: 2,
            ..r.clone()
        };
        repo.update_records(&[(&r2, 1)]).await.expect("updated");
        repo.insert_record(&note(other, at(1), "theirs"))
            .await
            .expect("inserted");
        repo.book(&appointment(c, provider, 1, 2))
            .await
            .expect("booked");
        repo.add_care_team_member(&CareTeamMember {
            client: c.user,
            provider,
            organisation: c.organisation,
            starts_on: at(0).date_naive(),
            ends_on: None,
            added_by: provider,
            added_at: at(0),
        })
        .await
        .expect("added");
        repo.grant_break_glass(&BreakGlassGrant {
            id: Uuid::now_v7(),
            client: c,
            holder: UserId::new(),
            reason: Text::parse("fell").expect("valid"),
            granted_at: at(0),
            expires_at: at(1),
        })
        .await
        .expect("granted");
        repo.set_restriction(c.subject, &Restriction::All)
            .await
            .expect("restricted");
        let held = repo.subject_holdings(c.subject).await.expect("holdings");
        assert_eq!(
            (
                held.records.len(),
                held.versions.len(),
                held.appointments.len(),
                held.care_team.len(),
                held.break_glass.len()
            ),
            (1, 1, 1, 1, 1)
        );
        let erased = repo.erase_subject(c.subject).await.expect("erased");
        let kinds: Vec<&str> = erased.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                "status_note",
                "appointment",
                "care_team_member",
                "break_glass_grant",
                "restriction"
            ]
        );
        assert_eq!(
            repo.subject_holdings(c.subject).await.expect("holdings"),
            Holdings::default()
        );
        assert!(
            repo.erase_subject(c.subject)
                .await
                .expect("again")
                .is_empty()
        );
        assert_eq!(repo.row_count(), 1, "the other client's record stays");
    }
}
