//! [`MemoryRightsRepository`]: the rights repository in memory, for the domain's
//! own tests. It refuses duplicate open requests and stale versions exactly as the
//! database adapter does, and forgets a subject's archives when told their key is
//! gone ([`MemoryRightsRepository::forget_archives_of`]).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use kernel::{OrganisationId, SubjectId, UserId};

use crate::case::{Case, CaseStatus};
use crate::ids::{AuthorityId, CaseId, RightsRequestId};
use crate::ports::{ErasureStep, RepositoryError, RightsRepository, StoredAuthority};
use crate::request::RightsRequest;

#[derive(Default)]
struct State {
    requests: BTreeMap<RightsRequestId, RightsRequest>,
    archives: BTreeMap<RightsRequestId, (SubjectId, Vec<u8>)>,
    steps: BTreeMap<RightsRequestId, Vec<ErasureStep>>,
    authorities: BTreeMap<AuthorityId, StoredAuthority>,
    cases: BTreeMap<CaseId, Case>,
}

/// The rights repository in memory.
#[derive(Default)]
pub struct MemoryRightsRepository {
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoryRightsRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRightsRepository")
            .finish_non_exhaustive()
    }
}

impl MemoryRightsRepository {
    /// An empty repository.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Drops the subject's archives, as destroying their data key makes them
    /// unreadable in the database adapter.
    pub fn forget_archives_of(&self, subject: SubjectId) {
        self.state().archives.retain(|_, (s, _)| *s != subject);
    }
}

fn newest_first(mut list: Vec<RightsRequest>) -> Vec<RightsRequest> {
    list.sort_by(|a, b| b.received_at.cmp(&a.received_at).then(b.id.cmp(&a.id)));
    list
}

#[async_trait]
impl RightsRepository for MemoryRightsRepository {
    async fn insert_request(&self, request: &RightsRequest) -> Result<(), RepositoryError> {
        let mut state = self.state();
        let duplicate = state.requests.values().any(|r| {
            r.duplicates(
                request.kind,
                request.subject,
                request.regime,
                &request.requester,
                &request.detail,
            )
        });
        if duplicate || state.requests.contains_key(&request.id) {
            return Err(RepositoryError::Conflict);
        }
        state.requests.insert(request.id, request.clone());
        Ok(())
    }

    async fn update_request(&self, request: &RightsRequest) -> Result<(), RepositoryError> {
        let mut state = self.state();
        match state.requests.get_mut(&request.id) {
            Some(stored) if stored.version + 1 == request.version => {
                *stored = request.clone();
                Ok(())
            }
            _ => Err(RepositoryError::Conflict),
        }
    }

    async fn request(&self, id: RightsRequestId) -> Result<Option<RightsRequest>, RepositoryError> {
        Ok(self.state().requests.get(&id).cloned())
    }

    async fn open_requests_about(
        &self,
        subject: SubjectId,
    ) -> Result<Vec<RightsRequest>, RepositoryError> {
        let mut open: Vec<RightsRequest> = self
            .state()
            .requests
            .values()
            .filter(|r| r.subject == subject && !r.status.is_final())
            .cloned()
            .collect();
        open.sort_by_key(|r| r.received_at);
        Ok(open)
    }

    async fn requests_of(
        &self,
        user: UserId,
        subject: Option<SubjectId>,
    ) -> Result<Vec<RightsRequest>, RepositoryError> {
        Ok(newest_first(
            self.state()
                .requests
                .values()
                .filter(|r| r.requester.user() == user || Some(r.subject) == subject)
                .cloned()
                .collect(),
        ))
    }

    async fn open_requests_of(
        &self,
        organisation: OrganisationId,
        limit: u32,
    ) -> Result<Vec<RightsRequest>, RepositoryError> {
        let mut open: Vec<RightsRequest> = self
            .state()
            .requests
            .values()
            .filter(|r| r.organisation == organisation && !r.status.is_final())
            .cloned()
            .collect();
        open.sort_by_key(RightsRequest::due_at);
        open.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(open)
    }

    async fn put_archive(
        &self,
        request: RightsRequestId,
        _organisation: OrganisationId,
        subject: SubjectId,
        archive: &[u8],
    ) -> Result<(), RepositoryError> {
        self.state()
            .archives
            .insert(request, (subject, archive.to_vec()));
        Ok(())
    }

    async fn archive(&self, request: RightsRequestId) -> Result<Option<Vec<u8>>, RepositoryError> {
        Ok(self.state().archives.get(&request).map(|(_, a)| a.clone()))
    }

    async fn put_erasure_step(
        &self,
        request: RightsRequestId,
        step: &ErasureStep,
    ) -> Result<(), RepositoryError> {
        let mut state = self.state();
        let steps = state.steps.entry(request).or_default();
        if !steps.iter().any(|s| s.context == step.context) {
            steps.push(step.clone());
        }
        Ok(())
    }

    async fn erasure_steps(
        &self,
        request: RightsRequestId,
    ) -> Result<Vec<ErasureStep>, RepositoryError> {
        Ok(self
            .state()
            .steps
            .get(&request)
            .cloned()
            .unwrap_or_default())
    }

    async fn insert_authority(&self, authority: &StoredAuthority) -> Result<(), RepositoryError> {
        let mut state = self.state();
        if state.authorities.contains_key(&authority.id) {
            return Err(RepositoryError::Conflict);
        }
        state.authorities.insert(authority.id, authority.clone());
        Ok(())
    }

    async fn update_authority(&self, authority: &StoredAuthority) -> Result<(), RepositoryError> {
        let mut state = self.state();
        match state.authorities.get_mut(&authority.id) {
            Some(stored) if stored.version + 1 == authority.version => {
                *stored = authority.clone();
                Ok(())
            }
            _ => Err(RepositoryError::Conflict),
        }
    }

    async fn authority(&self, id: AuthorityId) -> Result<Option<StoredAuthority>, RepositoryError> {
        Ok(self.state().authorities.get(&id).cloned())
    }

    async fn authorities_for(
        &self,
        subject: SubjectId,
    ) -> Result<Vec<StoredAuthority>, RepositoryError> {
        Ok(self
            .state()
            .authorities
            .values()
            .filter(|a| a.proof.subject == subject)
            .cloned()
            .collect())
    }

    async fn authorities_of_agent(
        &self,
        agent: UserId,
    ) -> Result<Vec<StoredAuthority>, RepositoryError> {
        Ok(self
            .state()
            .authorities
            .values()
            .filter(|a| a.proof.agent == agent)
            .cloned()
            .collect())
    }

    async fn insert_case(&self, case: &Case) -> Result<(), RepositoryError> {
        let mut state = self.state();
        if state.cases.contains_key(&case.id) {
            return Err(RepositoryError::Conflict);
        }
        state.cases.insert(case.id, case.clone());
        Ok(())
    }

    async fn update_case(&self, case: &Case) -> Result<(), RepositoryError> {
        let mut state = self.state();
        match state.cases.get_mut(&case.id) {
            Some(stored) if stored.version + 1 == case.version => {
                *stored = case.clone();
                Ok(())
            }
            _ => Err(RepositoryError::Conflict),
        }
    }

    async fn case(&self, id: CaseId) -> Result<Option<Case>, RepositoryError> {
        Ok(self.state().cases.get(&id).cloned())
    }

    async fn cases_of(&self, user: UserId) -> Result<Vec<Case>, RepositoryError> {
        let mut cases: Vec<Case> = self
            .state()
            .cases
            .values()
            .filter(|c| c.reporter == Some(user))
            .cloned()
            .collect();
        cases.sort_by_key(|c| std::cmp::Reverse(c.received_at));
        Ok(cases)
    }

    async fn open_cases(&self, limit: u32) -> Result<Vec<Case>, RepositoryError> {
        let mut cases: Vec<Case> = self
            .state()
            .cases
            .values()
            .filter(|c| c.status != CaseStatus::Resolved)
            .cloned()
            .collect();
        cases.sort_by_key(|c| c.due_at);
        cases.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(cases)
    }
}
