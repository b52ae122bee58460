//! Custodia's cryptography, all on `ring`: what protects health data at rest and the
//! credentials that reach it.
//!
//! - [`master_key`]: the [`MasterKey`] from configuration, root of the hierarchy;
//! - [`keyring`]: the [`Keyring`] — organisation keys wrapped by the master key,
//!   subject data keys wrapped by their organisation's key, field encryption
//!   (layout in [`envelope`]), rotation and crypto-shredding;
//! - [`key_store`]: the [`KeyStore`] port where wrapped keys live;
//! - [`password`]: PBKDF2-HMAC-SHA256 password hashes;
//! - [`token`]: random bearer tokens stored as SHA-256;
//! - [`totp`]: RFC 6238 one-time passwords for authenticator apps;
//! - [`blind_index`]: HMAC blind indexes for exact-match lookup of encrypted values;
//! - [`webhook`]: HMAC-SHA256 signatures of payment-processor webhooks, checked in
//!   constant time within a time window;
//! - `testing` (feature `testing`): an in-memory [`KeyStore`] and the contract suite
//!   every adapter runs.
//!
//! This crate knows nothing of HTTP or SQL: keys reach storage only through the
//! [`KeyStore`] port. No `Debug`, `Display` or error message in it contains key
//! material, plaintext, passwords or tokens.

pub mod blind_index;
pub mod envelope;
mod hex;
pub mod key_id;
pub mod key_store;
pub mod keyring;
pub mod master_key;
pub mod password;
pub mod random;
#[cfg(test)]
mod test_support;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod token;
pub mod totp;
pub mod webhook;
mod wrap;

pub use blind_index::{BlindIndex, BlindIndexer};
pub use envelope::{EnvelopeError, FieldBinding};
pub use key_id::KeyId;
pub use key_store::{KeyOwner, KeyOwnerKind, KeyStore, KeyStoreError, WrappedKey};
pub use keyring::{Keyring, KeyringConfig, KeyringError, SubjectCipher};
pub use master_key::{MasterKey, MasterKeyError};
pub use password::{
    PasswordConfig, PasswordConfigError, PasswordHash, PasswordHashError, PasswordHasher,
};
pub use random::RandomnessUnavailable;
pub use token::{IssuedToken, TokenHash};
pub use totp::TotpSecret;
pub use webhook::{WebhookError, WebhookSigner};
