//! The one source of randomness: the operating system's CSPRNG through
//! [`ring::rand::SystemRandom`], and the error for the (practically impossible) case
//! that it fails.

use ring::rand::{SecureRandom, SystemRandom};

/// The operating system's random number generator failed. Nothing secret was
/// produced; the operation should be retried or reported as an internal error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomnessUnavailable;

/// Fills `out` from `rng`.
pub(crate) fn fill(rng: &SystemRandom, out: &mut [u8]) -> Result<(), RandomnessUnavailable> {
    rng.fill(out).map_err(|_| RandomnessUnavailable)
}

/// `N` fresh random bytes.
pub(crate) fn bytes<const N: usize>(rng: &SystemRandom) -> Result<[u8; N], RandomnessUnavailable> {
    let mut out = [0_u8; N];
    fill(rng, &mut out)?;
    Ok(out)
}
