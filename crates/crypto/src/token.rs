//! Bearer tokens (sessions, password resets, invitations, API keys): 256 random bits
//! shown once, stored only as their SHA-256.
//!
//! The token handed out is the base64url (no padding) text of 32 bytes from
//! `SystemRandom`, wrapped in [`Sensitive`]. The store keeps [`TokenHash`]: the
//! SHA-256 of that text's UTF-8 bytes, so a database leak yields no usable token. A
//! presented token is looked up by [`TokenHash::of_presented`]; since the lookup key is
//! a hash of 256 random bits, an index lookup leaks nothing useful through timing.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kernel::Sensitive;
use ring::digest::{SHA256, digest};
use ring::rand::SystemRandom;

use crate::random::{self, RandomnessUnavailable};

/// How many random bytes a token carries.
pub const TOKEN_BYTES: usize = 32;

/// The SHA-256 of a token: what is stored and looked up. Not a secret, so `Debug`
/// prints it in hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The hash of a token as presented by a client (no decoding or trimming: any
    /// altered text hashes differently and simply finds nothing).
    #[must_use]
    pub fn of_presented(token: &str) -> Self {
        let mut out = [0_u8; 32];
        out.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
        Self(out)
    }

    /// A hash read back from storage.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The bytes to store.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(")?;
        crate::hex::write(f, &self.0)?;
        f.write_str(")")
    }
}

/// A freshly issued token: the text to show once, and the hash to store.
#[derive(Debug)]
pub struct IssuedToken {
    token: Sensitive<String>,
    hash: TokenHash,
}

impl IssuedToken {
    /// Draws a new 256-bit token.
    ///
    /// # Errors
    /// [`RandomnessUnavailable`] if the system RNG fails.
    pub fn generate() -> Result<Self, RandomnessUnavailable> {
        let bytes: [u8; TOKEN_BYTES] = random::bytes(&SystemRandom::new())?;
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let hash = TokenHash::of_presented(&token);
        Ok(Self {
            token: Sensitive::new(token),
            hash,
        })
    }

    /// The token text, to hand to the client once.
    #[must_use]
    pub const fn token(&self) -> &Sensitive<String> {
        &self.token
    }

    /// The hash to store.
    #[must_use]
    pub const fn hash(&self) -> TokenHash {
        self.hash
    }

    /// Both parts.
    #[must_use]
    pub fn into_parts(self) -> (Sensitive<String>, TokenHash) {
        (self.token, self.hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::hex;

    #[test]
    fn tokens_are_random_url_safe_and_hash_as_presented() {
        let a = IssuedToken::generate().expect("rng");
        let b = IssuedToken::generate().expect("rng");
        assert_ne!(a.token(), b.token());
        assert_ne!(a.hash(), b.hash());
        let text = a.token().expose();
        assert_eq!(text.len(), 43);
        assert!(
            text.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(TokenHash::of_presented(text), a.hash());
        assert_ne!(TokenHash::of_presented(&format!("{text} ")), a.hash());
        assert_eq!(TokenHash::from_bytes(*a.hash().as_bytes()), a.hash());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let issued = IssuedToken::generate().expect("rng");
        let debug = format!("{issued:?}");
        assert!(!debug.contains(issued.token().expose().as_str()));
        assert!(debug.contains("[redacted]"));
    }

    #[test]
    fn hash_is_sha256_of_the_text() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            hex(TokenHash::of_presented("abc").as_bytes()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            format!("{:?}", TokenHash::from_bytes([0xab; 32])),
            format!("TokenHash({})", "ab".repeat(32))
        );
    }
}
