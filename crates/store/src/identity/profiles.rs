//! [`SeaOrmProfileRepository`]: the `ProfileRepository` port on `user_profiles`
//! (one JSON document sealed with the person's data key, bound to its row) and
//! `user_preferences` (JSON in clear: settings identify nobody).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crypto::{FieldBinding, Keyring};
use identity::model::User;
use identity::ports::{ProfileRepository, RepositoryError};
use identity::profile::{Preferences, Profile};
use kernel::{Sensitive, UserId};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait};

use super::entity::{user_preference, user_profile};
use super::{corrupt, stored, unavailable};
use crate::Database;

/// Field binding of the sealed profile.
const PROFILE_FIELD: &str = "user_profiles.profile";

/// Profiles and preferences on Custodia's database.
#[derive(Debug, Clone)]
pub struct SeaOrmProfileRepository {
    db: Database,
    keyring: Keyring,
}

impl SeaOrmProfileRepository {
    /// The repository on `db`, sealing profiles with `keyring`.
    #[must_use]
    pub const fn new(db: Database, keyring: Keyring) -> Self {
        Self { db, keyring }
    }
}

#[async_trait]
impl ProfileRepository for SeaOrmProfileRepository {
    async fn profile(&self, user: UserId) -> Result<Option<Profile>, RepositoryError> {
        let Some(row) = user_profile::Entity::find_by_id(user.as_uuid())
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let json = self
            .keyring
            .decrypt_string(
                FieldBinding::new(row.user_id, PROFILE_FIELD),
                &row.profile_enc,
            )
            .await
            .map_err(unavailable)?;
        serde_json::from_str(json.expose())
            .map(Some)
            .map_err(|_| corrupt("user_profiles"))
    }

    async fn save_profile(
        &self,
        person: &User,
        profile: &Profile,
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let json = Sensitive::new(serde_json::to_vec(profile).map_err(unavailable)?);
        let sealed = self
            .keyring
            .encrypt(
                person.home_organisation,
                person.subject,
                FieldBinding::new(person.id.as_uuid(), PROFILE_FIELD),
                json.expose(),
            )
            .await
            .map_err(unavailable)?;
        let row = user_profile::ActiveModel {
            user_id: Set(person.id.as_uuid()),
            profile_enc: Set(sealed),
            updated_at: Set(stored(at)),
        };
        user_profile::Entity::insert(row)
            .on_conflict(
                OnConflict::column(user_profile::Column::UserId)
                    .update_columns([
                        user_profile::Column::ProfileEnc,
                        user_profile::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(self.db.connection())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn preferences(&self, user: UserId) -> Result<Option<Preferences>, RepositoryError> {
        user_preference::Entity::find_by_id(user.as_uuid())
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .map(|row| {
                serde_json::from_str(&row.preferences).map_err(|_| corrupt("user_preferences"))
            })
            .transpose()
    }

    async fn save_preferences(
        &self,
        user: UserId,
        preferences: &Preferences,
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let row = user_preference::ActiveModel {
            user_id: Set(user.as_uuid()),
            preferences: Set(serde_json::to_string(preferences).map_err(unavailable)?),
            updated_at: Set(stored(at)),
        };
        user_preference::Entity::insert(row)
            .on_conflict(
                OnConflict::column(user_preference::Column::UserId)
                    .update_columns([
                        user_preference::Column::Preferences,
                        user_preference::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(self.db.connection())
            .await
            .map(drop)
            .map_err(unavailable)
    }
}
