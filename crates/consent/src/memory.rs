//! In-memory adapters of the consent ports: for tests, benchmarks and examples.
//! They keep the ports' contracts (one atomic append with a head check) so the
//! service behaves as it does on a database.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use kernel::{OrganisationId, SubjectId};

use crate::authorisation::StoredAuthorisation;
use crate::ledger::{ChainId, LedgerEvent, SaltedEvidence};
use crate::policy::PolicyVersion;
use crate::ports::{
    ConsentRepository, Erased, HistoryEntry, LedgerCursor, PolicyNotifier, PracticeSettings,
    RepositoryError, SubjectRecord,
};

#[derive(Debug, Default)]
struct Inner {
    subjects: HashMap<SubjectId, Arc<SubjectRecord>>,
    events: BTreeMap<LedgerCursor, LedgerEvent>,
    evidence: HashMap<LedgerCursor, SaltedEvidence>,
    authorisations: HashMap<SubjectId, Vec<StoredAuthorisation>>,
    settings: HashMap<OrganisationId, PracticeSettings>,
    policies: Vec<PolicyVersion>,
    erased: HashMap<ChainId, i64>,
}

/// The consent repository in memory.
#[derive(Debug, Default)]
pub struct MemoryRepository {
    inner: Mutex<Inner>,
}

impl MemoryRepository {
    /// An empty repository.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces one stored event, as an attacker with database access would: for
    /// tests of verification.
    pub fn tamper(&self, event: LedgerEvent) {
        self.lock()
            .events
            .insert((event.chain, event.sequence), event);
    }
}

#[async_trait]
impl ConsentRepository for MemoryRepository {
    async fn subject(&self, subject: SubjectId) -> Result<Option<SubjectRecord>, RepositoryError> {
        Ok(self.lock().subjects.get(&subject).map(|r| (**r).clone()))
    }

    async fn snapshot(
        &self,
        subject: SubjectId,
    ) -> Result<Option<Arc<SubjectRecord>>, RepositoryError> {
        Ok(self.lock().subjects.get(&subject).cloned())
    }

    async fn register(
        &self,
        subject: SubjectId,
        organisation: Option<OrganisationId>,
        minor: bool,
    ) -> Result<SubjectRecord, RepositoryError> {
        let mut inner = self.lock();
        let record = inner
            .subjects
            .entry(subject)
            .or_insert_with(|| Arc::new(SubjectRecord::new(subject, organisation, minor)));
        let record = Arc::make_mut(record);
        record.organisation = organisation.or(record.organisation);
        record.minor = minor;
        Ok(record.clone())
    }

    async fn append(
        &self,
        record: &SubjectRecord,
        expected_head: Option<u64>,
        event: &LedgerEvent,
        evidence: &SaltedEvidence,
        authorisation: Option<&StoredAuthorisation>,
    ) -> Result<(), RepositoryError> {
        let mut inner = self.lock();
        let stored_head = inner
            .subjects
            .get(&record.subject)
            .and_then(|r| r.state.head.map(|(s, _)| s));
        if stored_head != expected_head {
            return Err(RepositoryError::Conflict);
        }
        let at = (event.chain, event.sequence);
        inner.events.insert(at, event.clone());
        inner.evidence.insert(at, evidence.clone());
        if let Some(a) = authorisation {
            inner
                .authorisations
                .entry(record.subject)
                .or_default()
                .push(a.clone());
        }
        inner
            .subjects
            .insert(record.subject, Arc::new(record.clone()));
        Ok(())
    }

    async fn history(&self, subject: SubjectId) -> Result<Vec<HistoryEntry>, RepositoryError> {
        let inner = self.lock();
        let Some(chain) = inner.subjects.get(&subject).map(|r| r.state.chain) else {
            return Ok(Vec::new());
        };
        Ok(inner
            .events
            .range((chain, 0)..=(chain, u64::MAX))
            .map(|(at, e)| HistoryEntry {
                event: e.clone(),
                evidence: inner.evidence.get(at).cloned(),
            })
            .collect())
    }

    async fn authorisations(
        &self,
        subject: SubjectId,
    ) -> Result<Vec<StoredAuthorisation>, RepositoryError> {
        Ok(self
            .lock()
            .authorisations
            .get(&subject)
            .cloned()
            .unwrap_or_default())
    }

    async fn events_after(
        &self,
        after: Option<LedgerCursor>,
        limit: u32,
    ) -> Result<Vec<LedgerEvent>, RepositoryError> {
        let inner = self.lock();
        let start = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        Ok(inner
            .events
            .range((start, std::ops::Bound::Unbounded))
            .take(limit as usize)
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn events_of_organisation(
        &self,
        organisation: OrganisationId,
        after: Option<LedgerCursor>,
        limit: u32,
    ) -> Result<Vec<LedgerEvent>, RepositoryError> {
        let inner = self.lock();
        let chains: std::collections::BTreeSet<ChainId> = inner
            .subjects
            .values()
            .filter(|r| r.organisation == Some(organisation))
            .map(|r| r.state.chain)
            .collect();
        let start = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        Ok(inner
            .events
            .range((start, std::ops::Bound::Unbounded))
            .filter(|((chain, _), _)| chains.contains(chain))
            .take(limit as usize)
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn heads_after(
        &self,
        after: Option<ChainId>,
        limit: u32,
    ) -> Result<Vec<(ChainId, Option<(u64, [u8; 32])>)>, RepositoryError> {
        let inner = self.lock();
        let mut heads: Vec<_> = inner
            .subjects
            .values()
            .map(|r| (r.state.chain, r.state.head))
            .filter(|(c, _)| after.is_none_or(|a| *c > a))
            .collect();
        heads.sort_by_key(|(c, _)| *c);
        heads.truncate(limit as usize);
        Ok(heads)
    }

    async fn subjects_after(
        &self,
        after: Option<SubjectId>,
        limit: u32,
    ) -> Result<Vec<SubjectId>, RepositoryError> {
        let inner = self.lock();
        let mut subjects: Vec<SubjectId> = inner
            .subjects
            .keys()
            .filter(|s| after.is_none_or(|a| **s > a))
            .copied()
            .collect();
        subjects.sort_unstable();
        subjects.truncate(limit as usize);
        Ok(subjects)
    }

    async fn settings(
        &self,
        organisation: OrganisationId,
    ) -> Result<PracticeSettings, RepositoryError> {
        Ok(self
            .lock()
            .settings
            .get(&organisation)
            .cloned()
            .unwrap_or_default())
    }

    async fn set_settings(
        &self,
        organisation: OrganisationId,
        settings: &PracticeSettings,
    ) -> Result<(), RepositoryError> {
        self.lock().settings.insert(organisation, settings.clone());
        Ok(())
    }

    async fn policies(&self) -> Result<Vec<PolicyVersion>, RepositoryError> {
        Ok(self.lock().policies.clone())
    }

    async fn publish(&self, version: &PolicyVersion) -> Result<(), RepositoryError> {
        let mut inner = self.lock();
        if inner
            .policies
            .iter()
            .any(|v| v.document == version.document && v.version == version.version)
        {
            return Err(RepositoryError::Conflict);
        }
        inner.policies.push(version.clone());
        Ok(())
    }

    async fn erase(&self, subject: SubjectId, erased_at: i64) -> Result<Erased, RepositoryError> {
        let mut inner = self.lock();
        let Some(record) = inner.subjects.remove(&subject) else {
            return Ok(Erased::default());
        };
        let chain = record.state.chain;
        inner.erased.insert(chain, erased_at);
        let keys: Vec<LedgerCursor> = inner
            .events
            .range((chain, 0)..=(chain, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        let evidence = keys
            .iter()
            .filter(|k| inner.evidence.remove(k).is_some())
            .count() as u64;
        let authorisations = inner
            .authorisations
            .remove(&subject)
            .map_or(0, |a| a.len() as u64);
        Ok(Erased {
            chain: Some(chain),
            evidence,
            authorisations,
            events_kept: keys.len() as u64,
        })
    }

    async fn erased_events_before(&self, cutoff: i64) -> Result<u64, RepositoryError> {
        let inner = self.lock();
        Ok(inner
            .events
            .keys()
            .filter(|(chain, _)| inner.erased.get(chain).is_some_and(|at| *at < cutoff))
            .count() as u64)
    }

    async fn delete_erased_before(&self, cutoff: i64) -> Result<u64, RepositoryError> {
        let mut inner = self.lock();
        let expired: Vec<ChainId> = inner
            .erased
            .iter()
            .filter(|(_, at)| **at < cutoff)
            .map(|(chain, _)| *chain)
            .collect();
        let before = inner.events.len();
        inner
            .events
            .retain(|(chain, _), _| !expired.contains(chain));
        for chain in &expired {
            inner.erased.remove(chain);
        }
        Ok((before - inner.events.len()) as u64)
    }
}

/// A notifier that remembers whom it told.
#[derive(Debug, Default)]
pub struct MemoryNotifier {
    sent: Mutex<Vec<(SubjectId, String)>>,
}

impl MemoryNotifier {
    /// Who was told of which version (`document@version`), in order.
    #[must_use]
    pub fn sent(&self) -> Vec<(SubjectId, String)> {
        self.sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl PolicyNotifier for MemoryNotifier {
    async fn policy_changed(
        &self,
        subject: SubjectId,
        version: &PolicyVersion,
    ) -> Result<bool, RepositoryError> {
        self.sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((subject, version.citation()));
        Ok(true)
    }
}
