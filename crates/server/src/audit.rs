//! The audit context's adapter that lives in the composition root: the
//! subject-to-person lookup audit's `PersonalData` port finds the events a person
//! performed by (their user id as actor).

use async_trait::async_trait;
use audit::personal_data::UserOfSubject;
use kernel::{SubjectId, UserId};

use crate::billing::IdentitySubjects;

#[async_trait]
impl UserOfSubject for IdentitySubjects {
    async fn user_of(
        &self,
        subject: SubjectId,
    ) -> Result<Option<UserId>, Box<dyn std::error::Error + Send + Sync>> {
        self.account_of_subject(subject)
            .await
            .map(|found| found.map(|(user, _erased)| user))
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
    }
}
