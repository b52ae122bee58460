//! Time-based one-time passwords (RFC 6238) for authenticator apps: HMAC-SHA-1
//! (what the apps use), 6 digits, 30-second steps, a 160-bit random secret shown
//! once as base32 (RFC 4648, no padding) inside an `otpauth://totp/...` URI.
//!
//! [`TotpSecret::verify`] accepts the current step and one step either side (clock
//! drift) and compares codes in constant time. It returns the step that matched so
//! the caller can refuse a step already accepted for the account (replay).

use std::fmt;

use kernel::Sensitive;
use ring::hmac;
use ring::rand::SystemRandom;

use crate::random::{self, RandomnessUnavailable};
use crate::token::TokenHash;

/// Bytes in a secret: 160 bits, RFC 4226's recommendation.
pub const SECRET_BYTES: usize = 20;
/// Seconds in a time step.
pub const STEP_SECONDS: i64 = 30;
/// Digits in a code.
pub const DIGITS: u32 = 6;
/// The issuer shown by authenticator apps.
pub const ISSUER: &str = "Custodia";

/// A TOTP shared secret. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    /// Draws a new 160-bit secret.
    ///
    /// # Errors
    /// [`RandomnessUnavailable`] if the system RNG fails.
    pub fn generate() -> Result<Self, RandomnessUnavailable> {
        let bytes: [u8; SECRET_BYTES] = random::bytes(&SystemRandom::new())?;
        Ok(Self(bytes.to_vec()))
    }

    /// A secret read back from storage.
    #[must_use]
    pub const fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// A secret as typed into an authenticator app (base32, case and spaces
    /// ignored, padding optional); `None` when it is not base32.
    #[must_use]
    pub fn from_base32(text: &str) -> Option<Self> {
        let mut bytes = Vec::with_capacity(text.len() * 5 / 8);
        let mut buffer: u32 = 0;
        let mut bits = 0_u32;
        for c in text.chars().filter(|c| !c.is_whitespace() && *c != '=') {
            let value = match c.to_ascii_uppercase() {
                upper @ 'A'..='Z' => u32::from(upper) - u32::from('A'),
                digit @ '2'..='7' => u32::from(digit) - u32::from('2') + 26,
                _ => return None,
            };
            buffer = (buffer << 5) | value;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                bytes.push(((buffer >> bits) & 0xff) as u8);
            }
        }
        Some(Self(bytes))
    }

    /// The raw secret, to seal for storage.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret as base32 without padding, as typed into an authenticator app.
    #[must_use]
    pub fn to_base32(&self) -> Sensitive<String> {
        Sensitive::new(base32(&self.0))
    }

    /// The `otpauth://totp/...` URI an authenticator app reads (usually as a QR
    /// code), labelled with `account` (e.g. the person's email).
    #[must_use]
    pub fn otpauth_uri(&self, account: &str) -> Sensitive<String> {
        Sensitive::new(format!(
            "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            issuer = percent_encode(ISSUER),
            account = percent_encode(account),
            secret = base32(&self.0),
        ))
    }

    /// The 6-digit code for time step `step`.
    #[must_use]
    pub fn code_at_step(&self, step: u64) -> String {
        hotp(&self.0, step, DIGITS)
    }

    /// Checks `code` at Unix time `unix_seconds`, accepting the current step and one
    /// either side. Returns the step that matched, or `None`. Every candidate is
    /// compared, in constant time, whatever the outcome.
    #[must_use]
    pub fn verify(&self, code: &str, unix_seconds: i64) -> Option<u64> {
        let presented = code.trim().as_bytes();
        let current = step_of(unix_seconds);
        let mut matched = None;
        for step in [
            current.checked_sub(1),
            Some(current),
            current.checked_add(1),
        ]
        .into_iter()
        .flatten()
        {
            if constant_time_eq(self.code_at_step(step).as_bytes(), presented) {
                matched = Some(step);
            }
        }
        matched
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

/// How many recovery codes a person holds.
pub const RECOVERY_CODES: usize = 10;

/// A fresh recovery code: 80 random bits as 16 base32 characters in groups of four
/// (`ABCD-EFGH-IJKL-MNOP`), and the hash to store (of its normalised form).
///
/// # Errors
/// [`RandomnessUnavailable`] if the system RNG fails.
pub fn recovery_code() -> Result<(Sensitive<String>, TokenHash), RandomnessUnavailable> {
    let bytes: [u8; 10] = random::bytes(&SystemRandom::new())?;
    let plain = base32(&bytes);
    let grouped = plain
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join("-");
    Ok((Sensitive::new(grouped), TokenHash::of_presented(&plain)))
}

/// The hash of a recovery code as typed: dashes and spaces dropped, upper-cased,
/// so `abcd efgh-ijkl-mnop` finds `ABCD-EFGH-IJKL-MNOP`.
#[must_use]
pub fn recovery_code_hash(presented: &str) -> TokenHash {
    let normalised: String = presented
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    TokenHash::of_presented(&normalised)
}

/// The time step of Unix time `unix_seconds` (0 before 1970).
#[must_use]
pub fn step_of(unix_seconds: i64) -> u64 {
    u64::try_from(unix_seconds.div_euclid(STEP_SECONDS)).unwrap_or(0)
}

/// HOTP (RFC 4226) with HMAC-SHA-1: the `digits`-digit code for `counter`.
#[must_use]
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    let modulus = 10_u64.pow(digits);
    format!(
        "{:0width$}",
        u64::from(binary) % modulus,
        width = digits as usize
    )
}

/// Equal-length byte strings compared without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// RFC 4648 base32 (upper case), without padding.
#[must_use]
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0_u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 0x1f) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(
            ALPHABET[((buffer << (5 - bits)) & 0x1f) as usize],
        ));
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the SHA-1 seed is the ASCII "12345678901234567890".
    const SEED: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        for (time, expected) in [
            (59_i64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(hotp(SEED, step_of(time), 8), expected, "T = {time}");
            // Six digits are the last six of the eight (the same value mod 10^6).
            let secret = TotpSecret::from_bytes(SEED.to_vec());
            assert_eq!(
                secret.code_at_step(step_of(time)),
                expected[2..],
                "T = {time}"
            );
            assert_eq!(secret.verify(&expected[2..], time), Some(step_of(time)));
        }
    }

    #[test]
    fn one_step_of_drift_either_way_is_accepted_and_no_more() {
        let secret = TotpSecret::from_bytes(SEED.to_vec());
        let now = 1_234_567_890;
        let step = step_of(now);
        assert_eq!(
            secret.verify(&secret.code_at_step(step - 1), now),
            Some(step - 1)
        );
        assert_eq!(
            secret.verify(&secret.code_at_step(step + 1), now),
            Some(step + 1)
        );
        assert_eq!(secret.verify(&secret.code_at_step(step - 2), now), None);
        assert_eq!(secret.verify(&secret.code_at_step(step + 2), now), None);
        assert_eq!(secret.verify("", now), None);
        assert_eq!(secret.verify("12345", now), None);
        let other = TotpSecret::generate().expect("rng");
        assert_eq!(other.verify(&secret.code_at_step(step), now), None);
    }

    #[test]
    fn base32_matches_rfc4648_without_padding() {
        for (input, expected) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input.as_bytes()), expected);
        }
        assert_eq!(base32(SEED), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let secret = TotpSecret::generate().expect("rng");
        assert_eq!(
            TotpSecret::from_base32(&secret.to_base32().expose().to_lowercase()),
            Some(secret)
        );
        assert_eq!(
            TotpSecret::from_base32("MZXW6YTBOI======").map(|s| s.as_bytes().to_vec()),
            Some(b"foobar".to_vec())
        );
        assert_eq!(TotpSecret::from_base32("MZ1W"), None);
    }

    #[test]
    fn secrets_are_160_bits_random_and_never_printed() {
        let a = TotpSecret::generate().expect("rng");
        let b = TotpSecret::generate().expect("rng");
        assert_eq!(a.as_bytes().len(), 20);
        assert_ne!(a, b);
        assert_eq!(a.to_base32().expose().len(), 32);
        assert_eq!(format!("{a:?}"), "TotpSecret([redacted])");
    }

    #[test]
    fn recovery_codes_are_random_grouped_and_found_however_typed() {
        let (code, hash) = recovery_code().expect("rng");
        let (other, other_hash) = recovery_code().expect("rng");
        assert_ne!(code, other);
        assert_ne!(hash, other_hash);
        let text = code.expose();
        assert_eq!(text.len(), 19);
        assert_eq!(text.matches('-').count(), 3);
        assert_eq!(recovery_code_hash(text), hash);
        assert_eq!(
            recovery_code_hash(&text.to_lowercase().replace('-', " ")),
            hash
        );
        assert_ne!(recovery_code_hash(other.expose()), hash);
    }

    #[test]
    fn the_uri_names_issuer_account_and_parameters() {
        let secret = TotpSecret::from_bytes(SEED.to_vec());
        assert_eq!(
            secret.otpauth_uri("ada+x@example.com").expose(),
            "otpauth://totp/Custodia:ada%2Bx%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Custodia&algorithm=SHA1&digits=6&period=30"
        );
    }
}
