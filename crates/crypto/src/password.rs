//! Password hashing: PBKDF2-HMAC-SHA256 (`ring::pbkdf2`), stored PHC-style.
//!
//! Stored form: `$pbkdf2-sha256$i=<iterations>$<salt>$<hash>`, with salt (16 random
//! bytes) and hash (32 bytes) in standard base64 without padding. 600,000 iterations
//! by default (OWASP 2023 for PBKDF2-HMAC-SHA256); fewer are refused unless
//! [`PasswordConfig::allow_insecure_for_tests`] is set.
//!
//! Verification re-derives with the iteration count stored in the hash and compares
//! in constant time (`ring::pbkdf2::verify`); [`PasswordHasher::needs_rehash`] says
//! when a stored hash is weaker than the configuration. A malformed stored hash is an
//! error at [`PasswordHash::parse`], never a panic; hashes claiming more than
//! [`MAX_ITERATIONS`] are refused so a planted row cannot stall a login thread.
//!
//! The work is CPU-bound and synchronous: call it on a blocking pool. Passwords are
//! hashed as their UTF-8 bytes, with no Unicode normalisation.

use std::fmt;
use std::num::NonZeroU32;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use kernel::Sensitive;
use ring::pbkdf2::{self, PBKDF2_HMAC_SHA256};
use ring::rand::SystemRandom;

use crate::random::{self, RandomnessUnavailable};

/// The default, and the minimum outside tests.
pub const DEFAULT_ITERATIONS: u32 = 600_000;
/// The most iterations accepted, configured or stored.
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// Salt length for new hashes.
const SALT_LEN: usize = 16;
/// Accepted stored salt lengths.
const SALT_RANGE: std::ops::RangeInclusive<usize> = 8..=64;
/// Derived hash length.
const HASH_LEN: usize = 32;
/// The PHC algorithm identifier.
const ALGORITHM: &str = "pbkdf2-sha256";

/// How passwords are hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordConfig {
    /// PBKDF2 iterations for new hashes; at least [`DEFAULT_ITERATIONS`] unless
    /// `allow_insecure_for_tests`.
    pub iterations: u32,
    /// Accepts fewer iterations (at least 1). Only for test suites.
    pub allow_insecure_for_tests: bool,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            iterations: DEFAULT_ITERATIONS,
            allow_insecure_for_tests: false,
        }
    }
}

/// The [`PasswordConfig`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordConfigError {
    /// Fewer iterations than the minimum.
    #[error(
        "{configured} PBKDF2 iterations is below the minimum of {minimum} (set allow_insecure_for_tests only in tests)"
    )]
    TooFewIterations {
        /// What was configured.
        configured: u32,
        /// The least accepted.
        minimum: u32,
    },
    /// More iterations than [`MAX_ITERATIONS`].
    #[error("{configured} PBKDF2 iterations is above the maximum of {MAX_ITERATIONS}")]
    TooManyIterations {
        /// What was configured.
        configured: u32,
    },
}

/// A stored password hash could not be read. The message never contains the stored
/// value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordHashError {
    /// Not of the form `$pbkdf2-sha256$i=<n>$<salt>$<hash>`.
    #[error("the stored password hash is malformed")]
    Malformed,
    /// A PHC string for another algorithm.
    #[error("the stored password hash uses an unsupported algorithm")]
    UnsupportedAlgorithm,
    /// Zero, or more than [`MAX_ITERATIONS`].
    #[error("the stored password hash has an out-of-range iteration count")]
    IterationsOutOfRange,
}

/// A parsed PBKDF2-HMAC-SHA256 password hash. `Debug` shows only the iteration count.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    iterations: NonZeroU32,
    salt: Vec<u8>,
    hash: [u8; HASH_LEN],
}

impl PasswordHash {
    /// Parses a stored hash.
    ///
    /// # Errors
    /// [`PasswordHashError`] for anything but a well-formed `pbkdf2-sha256` PHC
    /// string with 1..=[`MAX_ITERATIONS`] iterations, an 8..=64-byte salt and a
    /// 32-byte hash.
    pub fn parse(stored: &str) -> Result<Self, PasswordHashError> {
        let mut parts = stored.split('$');
        let (Some(""), Some(algorithm)) = (parts.next(), parts.next()) else {
            return Err(PasswordHashError::Malformed);
        };
        if algorithm.is_empty() {
            return Err(PasswordHashError::Malformed);
        }
        if algorithm != ALGORITHM {
            return Err(PasswordHashError::UnsupportedAlgorithm);
        }
        let (Some(params), Some(salt), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(PasswordHashError::Malformed);
        };
        let digits = params
            .strip_prefix("i=")
            .ok_or(PasswordHashError::Malformed)?;
        if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PasswordHashError::Malformed);
        }
        let iterations = digits
            .parse::<u64>()
            .ok()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n <= MAX_ITERATIONS)
            .and_then(NonZeroU32::new)
            .ok_or(PasswordHashError::IterationsOutOfRange)?;
        let salt = STANDARD_NO_PAD
            .decode(salt)
            .map_err(|_| PasswordHashError::Malformed)?;
        if !SALT_RANGE.contains(&salt.len()) {
            return Err(PasswordHashError::Malformed);
        }
        let hash: [u8; HASH_LEN] = STANDARD_NO_PAD
            .decode(hash)
            .map_err(|_| PasswordHashError::Malformed)?
            .try_into()
            .map_err(|_| PasswordHashError::Malformed)?;
        Ok(Self {
            iterations,
            salt,
            hash,
        })
    }

    /// The PHC string to store.
    #[must_use]
    pub fn to_phc_string(&self) -> String {
        format!(
            "${ALGORITHM}$i={}${}${}",
            self.iterations,
            STANDARD_NO_PAD.encode(&self.salt),
            STANDARD_NO_PAD.encode(self.hash)
        )
    }

    /// The iteration count the hash was made with.
    #[must_use]
    pub const fn iterations(&self) -> u32 {
        self.iterations.get()
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHash")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Hashes and verifies passwords. Cheap to clone; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    iterations: NonZeroU32,
    rng: SystemRandom,
}

impl PasswordHasher {
    /// A hasher for `config`.
    ///
    /// # Errors
    /// [`PasswordConfigError`] for too few (without the test flag) or too many
    /// iterations.
    pub fn new(config: PasswordConfig) -> Result<Self, PasswordConfigError> {
        let minimum = if config.allow_insecure_for_tests {
            1
        } else {
            DEFAULT_ITERATIONS
        };
        if config.iterations > MAX_ITERATIONS {
            return Err(PasswordConfigError::TooManyIterations {
                configured: config.iterations,
            });
        }
        let iterations = NonZeroU32::new(config.iterations)
            .filter(|n| n.get() >= minimum)
            .ok_or(PasswordConfigError::TooFewIterations {
                configured: config.iterations,
                minimum,
            })?;
        Ok(Self {
            iterations,
            rng: SystemRandom::new(),
        })
    }

    /// The iteration count for new hashes.
    #[must_use]
    pub const fn iterations(&self) -> u32 {
        self.iterations.get()
    }

    /// Hashes a password with a fresh random salt.
    ///
    /// # Errors
    /// [`RandomnessUnavailable`] if no salt could be drawn.
    pub fn hash(
        &self,
        password: &Sensitive<String>,
    ) -> Result<PasswordHash, RandomnessUnavailable> {
        let salt: [u8; SALT_LEN] = random::bytes(&self.rng)?;
        Ok(self.hash_with_salt(password, &salt))
    }

    fn hash_with_salt(&self, password: &Sensitive<String>, salt: &[u8]) -> PasswordHash {
        let mut hash = [0_u8; HASH_LEN];
        derive(
            self.iterations,
            salt,
            password.expose().as_bytes(),
            &mut hash,
        );
        PasswordHash {
            iterations: self.iterations,
            salt: salt.to_vec(),
            hash,
        }
    }

    /// Whether `password` matches `stored`, using the stored iteration count and a
    /// constant-time comparison.
    #[must_use]
    pub fn verify(&self, stored: &PasswordHash, password: &Sensitive<String>) -> bool {
        pbkdf2::verify(
            PBKDF2_HMAC_SHA256,
            stored.iterations,
            &stored.salt,
            password.expose().as_bytes(),
            &stored.hash,
        )
        .is_ok()
    }

    /// Spends the time of one [`Self::verify`] at the configured count, for a login
    /// with an unknown account, so response time does not reveal which accounts
    /// exist. Always `false`.
    #[must_use]
    pub fn verify_dummy(&self, password: &Sensitive<String>) -> bool {
        let dummy = PasswordHash {
            iterations: self.iterations,
            salt: vec![0; SALT_LEN],
            hash: [0; HASH_LEN],
        };
        // The result is ignored: a dummy never authenticates.
        let _ = self.verify(&dummy, password);
        false
    }

    /// Whether `stored` was made with fewer iterations than configured and should be
    /// replaced after the next successful login.
    #[must_use]
    pub fn needs_rehash(&self, stored: &PasswordHash) -> bool {
        stored.iterations < self.iterations
    }
}

fn derive(iterations: NonZeroU32, salt: &[u8], secret: &[u8], out: &mut [u8]) {
    pbkdf2::derive(PBKDF2_HMAC_SHA256, iterations, salt, secret, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::hex;

    fn fast() -> PasswordHasher {
        PasswordHasher::new(PasswordConfig {
            iterations: 1_000,
            allow_insecure_for_tests: true,
        })
        .expect("allowed with the flag")
    }

    fn pw(s: &str) -> Sensitive<String> {
        Sensitive::new(s.to_owned())
    }

    #[test]
    fn rfc_7914_pbkdf2_hmac_sha256_vector() {
        // RFC 7914 §11: P = "passwd", S = "salt", c = 1, dkLen = 64.
        let mut out = [0_u8; 64];
        derive(NonZeroU32::MIN, b"salt", b"passwd", &mut out);
        assert_eq!(
            hex(&out),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc\
             49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
        );
    }

    /// Regenerate with `python3 crates/crypto/tests/kat.py` (section "password").
    #[test]
    fn known_answer_phc_string() {
        let salt: Vec<u8> = (0..16).collect();
        let hash = fast().hash_with_salt(&pw("correct horse battery staple"), &salt);
        assert_eq!(hash.to_phc_string(), KAT_PHC);
        assert_eq!(PasswordHash::parse(KAT_PHC), Ok(hash));
    }

    const KAT_PHC: &str =
        "$pbkdf2-sha256$i=1000$AAECAwQFBgcICQoLDA0ODw$ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4";

    #[test]
    fn low_iteration_counts_need_the_test_flag() {
        let low = PasswordConfig {
            iterations: 100_000,
            allow_insecure_for_tests: false,
        };
        let err = PasswordHasher::new(low).expect_err("refused");
        assert_eq!(
            err,
            PasswordConfigError::TooFewIterations {
                configured: 100_000,
                minimum: DEFAULT_ITERATIONS
            }
        );
        assert!(err.to_string().contains("below the minimum"));
        let allowed = PasswordHasher::new(PasswordConfig {
            allow_insecure_for_tests: true,
            ..low
        })
        .expect("accepted with the flag");
        assert_eq!(allowed.iterations(), 100_000);
        assert!(
            PasswordHasher::new(PasswordConfig {
                iterations: 0,
                allow_insecure_for_tests: true
            })
            .is_err()
        );
        assert!(
            PasswordHasher::new(PasswordConfig {
                iterations: MAX_ITERATIONS + 1,
                allow_insecure_for_tests: false
            })
            .is_err()
        );
        assert_eq!(
            PasswordHasher::new(PasswordConfig::default())
                .expect("default is valid")
                .iterations(),
            600_000
        );
    }

    #[test]
    fn verify_accepts_the_password_and_rejects_others() {
        let hasher = fast();
        let hash = hasher.hash(&pw("s3cret pass")).expect("rng");
        assert!(hasher.verify(&hash, &pw("s3cret pass")));
        assert!(!hasher.verify(&hash, &pw("s3cret pasS")));
        assert!(!hasher.verify(&hash, &pw("")));
        assert!(!hasher.verify_dummy(&pw("s3cret pass")));
        let stored = hash.to_phc_string();
        assert!(stored.starts_with("$pbkdf2-sha256$i=1000$"));
        let parsed = PasswordHash::parse(&stored).expect("round-trips");
        assert!(hasher.verify(&parsed, &pw("s3cret pass")));
        assert_ne!(
            hasher.hash(&pw("s3cret pass")).expect("rng"),
            hash,
            "salted"
        );
        assert_eq!(format!("{hash:?}"), "PasswordHash { iterations: 1000, .. }");
    }

    #[test]
    fn verify_uses_the_stored_count_and_flags_weak_hashes() {
        let weak = fast().hash(&pw("pw")).expect("rng");
        let stronger = PasswordHasher::new(PasswordConfig {
            iterations: 2_000,
            allow_insecure_for_tests: true,
        })
        .expect("valid");
        assert!(stronger.verify(&weak, &pw("pw")));
        assert!(stronger.needs_rehash(&weak));
        assert!(!fast().needs_rehash(&weak));
    }

    #[test]
    fn malformed_stored_hashes_are_errors_not_panics() {
        let good = fast().hash(&pw("pw")).expect("rng").to_phc_string();
        let salt_and_hash = good.splitn(4, '$').nth(3).expect("has salt and hash");
        let cases = [
            ("", PasswordHashError::Malformed),
            ("$", PasswordHashError::Malformed),
            (
                "pbkdf2-sha256$i=1000$AAAAAAAAAAAAAAAAAAAAAA$x",
                PasswordHashError::Malformed,
            ),
            (
                "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
                PasswordHashError::UnsupportedAlgorithm,
            ),
            (
                &format!("$pbkdf2-sha256$i=0${salt_and_hash}"),
                PasswordHashError::IterationsOutOfRange,
            ),
            (
                &format!("$pbkdf2-sha256$i=10000001${salt_and_hash}"),
                PasswordHashError::IterationsOutOfRange,
            ),
            (
                &format!("$pbkdf2-sha256$i=99999999999${salt_and_hash}"),
                PasswordHashError::Malformed,
            ),
            (
                &format!("$pbkdf2-sha256$i=+1000${salt_and_hash}"),
                PasswordHashError::Malformed,
            ),
            (
                &format!("$pbkdf2-sha256$i=${salt_and_hash}"),
                PasswordHashError::Malformed,
            ),
            (
                &format!("$pbkdf2-sha256$c=1000${salt_and_hash}"),
                PasswordHashError::Malformed,
            ),
            (&format!("{good}$"), PasswordHashError::Malformed),
            (&format!("{good}="), PasswordHashError::Malformed),
            (
                "$pbkdf2-sha256$i=1000$AAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                PasswordHashError::Malformed,
            ),
            (
                "$pbkdf2-sha256$i=1000$AAAAAAAAAAAAAAAAAAAAAA$AAAA",
                PasswordHashError::Malformed,
            ),
            (
                "$pbkdf2-sha256$i=1000$!!!!$AAAA",
                PasswordHashError::Malformed,
            ),
        ];
        for (stored, expected) in cases {
            let err = PasswordHash::parse(stored).expect_err(stored);
            assert_eq!(err, expected, "{stored}");
            assert!(!err.to_string().contains(salt_and_hash));
        }
        assert!(PasswordHash::parse(&good).is_ok());
    }

    #[test]
    fn hasher_is_clone_send_sync() {
        fn assert_traits<T: Clone + Send + Sync + 'static>() {}
        assert_traits::<PasswordHasher>();
        assert_traits::<PasswordHash>();
    }
}
