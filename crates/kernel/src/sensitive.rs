//! [`Sensitive<T>`]: a wrapper for secrets and health data that never prints them.
//!
//! `Debug` and `Display` print `[redacted]`, so a value cannot reach a log line, a
//! panic message or an error body by accident. Reading the value is explicit
//! ([`Sensitive::expose`]), which makes every place that does so easy to find.
//! There is deliberately no `Serialize`: a DTO must expose the value on purpose.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A value that must not appear in logs, errors or URLs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    /// Wraps a value.
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// Borrows the value. Each call site is a place where the secret is used.
    pub const fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }

    /// Transforms the value without exposing it.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Sensitive<U> {
        Sensitive(f(self.0))
    }
}

impl<T> From<T> for Sensitive<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sensitive<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Sensitive::new(String::from("hunter2-diagnosis-F32.1"));
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some([redacted])");
        assert_eq!(secret.expose(), "hunter2-diagnosis-F32.1");
    }

    #[test]
    fn deserialises_transparently() {
        let value: Sensitive<String> = serde_json::from_str("\"x\"").expect("parses");
        assert_eq!(value.into_inner(), "x");
    }
}
