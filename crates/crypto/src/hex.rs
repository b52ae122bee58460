//! Lower-case hexadecimal for the `Debug` output of non-secret digests.

use std::fmt;

/// Writes `bytes` as lower-case hex.
pub(crate) fn write(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for byte in bytes {
        write!(f, "{byte:02x}")?;
    }
    Ok(())
}
