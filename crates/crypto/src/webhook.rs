//! Signatures of payment-processor webhooks: HMAC-SHA256 over `"<t>.<raw body>"`
//! under a shared secret, sent as the header value `t=<unix seconds>,v1=<hex>`.
//!
//! [`WebhookSigner::verify`] reads the header, recomputes the MAC over the raw
//! body exactly as received, compares it in constant time (`ring::hmac::verify`),
//! and then refuses a timestamp further than the tolerance from the caller's
//! clock, either way, so a captured delivery cannot be replayed later. Several
//! `v1` entries may be present (a sender rotating its secret); one must match.
//! Nothing here prints the secret or a signature.

use std::fmt;

use ring::hmac;

/// The signature scheme's name in the header.
pub const SCHEME: &str = "v1";

/// Why a webhook signature was refused. Never quotes the header or the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The header is missing its timestamp or signature, or they do not parse.
    #[error("the signature header must be `t=<unix seconds>,v1=<hex HMAC-SHA256>`")]
    Malformed,
    /// No signature matches the body under the secret.
    #[error("the signature does not match the body")]
    BadSignature,
    /// The signature matches, but its timestamp is outside the tolerance.
    #[error("the signature's timestamp is outside the accepted window")]
    Stale,
}

/// Signs and verifies webhook deliveries with one shared secret.
#[derive(Clone)]
pub struct WebhookSigner {
    key: hmac::Key,
}

impl fmt::Debug for WebhookSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSigner(..)")
    }
}

impl WebhookSigner {
    /// A signer with `secret`.
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    fn message(timestamp: i64, body: &[u8]) -> Vec<u8> {
        let prefix = timestamp.to_string();
        let mut message = Vec::with_capacity(prefix.len() + 1 + body.len());
        message.extend_from_slice(prefix.as_bytes());
        message.push(b'.');
        message.extend_from_slice(body);
        message
    }

    /// The header value signing `body` at `timestamp`: `t=<timestamp>,v1=<hex>`.
    #[must_use]
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        let tag = hmac::sign(&self.key, &Self::message(timestamp, body));
        let mut hex = String::with_capacity(64);
        for byte in tag.as_ref() {
            hex.push_str(&format!("{byte:02x}"));
        }
        format!("t={timestamp},{SCHEME}={hex}")
    }

    /// Verifies `header` for `body` at the time `now` (unix seconds), accepting a
    /// timestamp at most `tolerance_secs` away either way. Returns the signed
    /// timestamp.
    ///
    /// # Errors
    /// [`WebhookError::Malformed`], [`WebhookError::BadSignature`] (checked before
    /// the time, so a forgery is never told it is merely stale), [`WebhookError::Stale`].
    pub fn verify(
        &self,
        header: &str,
        body: &[u8],
        now: i64,
        tolerance_secs: i64,
    ) -> Result<i64, WebhookError> {
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for part in header.split(',') {
            let (name, value) = part.trim().split_once('=').ok_or(WebhookError::Malformed)?;
            match name {
                "t" => {
                    if timestamp.is_some() {
                        return Err(WebhookError::Malformed);
                    }
                    let t = (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| value.parse::<i64>().ok())
                        .flatten()
                        .ok_or(WebhookError::Malformed)?;
                    timestamp = Some(t);
                }
                SCHEME => signatures.push(decode_hex(value).ok_or(WebhookError::Malformed)?),
                // Other schemes are the sender's business; they are not ours to check.
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(WebhookError::Malformed)?;
        if signatures.is_empty() {
            return Err(WebhookError::Malformed);
        }
        let message = Self::message(timestamp, body);
        let matched = signatures
            .iter()
            .any(|tag| hmac::verify(&self.key, &message, tag).is_ok());
        if !matched {
            return Err(WebhookError::BadSignature);
        }
        let skew = now.checked_sub(timestamp).map(i64::unsigned_abs);
        match skew {
            Some(skew) if skew <= tolerance_secs.unsigned_abs() => Ok(timestamp),
            _ => Err(WebhookError::Stale),
        }
    }
}

/// The 32 bytes of a 64-digit hex SHA-256 tag (either case), or `None`.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |b: u8| char::from(b).to_digit(16);
            u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_secret";
    const T: i64 = 1_767_225_600;
    const BODY: &[u8] = br#"{"id":"evt_1"}"#;

    /// Computed independently:
    /// `python3 -c "import hmac,hashlib; print(hmac.new(b'whsec_test_secret',
    ///  b'1767225600.{\"id\":\"evt_1\"}', hashlib.sha256).hexdigest())"`
    const KNOWN: &str = "f6ef300ec2c3f1ea8e4bc6d2a62975f58477d6fcd4bd03529a148873f625b1ca";
    /// The same for an empty body: `b'1767225600.'`.
    const KNOWN_EMPTY: &str = "2101ed4de13a3847b9130080a81eb77b7a3727702e4665f5d4fc9fb89133b2e2";

    #[test]
    fn signs_as_an_independent_hmac_does() {
        let signer = WebhookSigner::new(SECRET);
        assert_eq!(signer.sign(T, BODY), format!("t={T},v1={KNOWN}"));
        assert_eq!(signer.sign(T, b""), format!("t={T},v1={KNOWN_EMPTY}"));
    }

    #[test]
    fn verifies_its_own_signature_within_the_tolerance_either_way() {
        let signer = WebhookSigner::new(SECRET);
        let header = signer.sign(T, BODY);
        assert_eq!(signer.verify(&header, BODY, T, 300), Ok(T));
        assert_eq!(signer.verify(&header, BODY, T + 300, 300), Ok(T));
        assert_eq!(signer.verify(&header, BODY, T - 300, 300), Ok(T));
        assert_eq!(
            signer.verify(&header, BODY, T + 301, 300),
            Err(WebhookError::Stale)
        );
        assert_eq!(
            signer.verify(&header, BODY, T - 301, 300),
            Err(WebhookError::Stale)
        );
        // Upper-case hex and spaces after commas are accepted.
        let upper = format!("t={T}, v1={}", KNOWN.to_ascii_uppercase());
        assert_eq!(signer.verify(&upper, BODY, T, 300), Ok(T));
    }

    #[test]
    fn refuses_another_body_secret_or_timestamp() {
        let signer = WebhookSigner::new(SECRET);
        let header = signer.sign(T, BODY);
        assert_eq!(
            signer.verify(&header, br#"{"id":"evt_2"}"#, T, 300),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            WebhookSigner::new(b"another secret").verify(&header, BODY, T, 300),
            Err(WebhookError::BadSignature)
        );
        // The timestamp is signed: moving it breaks the signature, not the window.
        let moved = header.replace(&format!("t={T}"), &format!("t={}", T + 1));
        assert_eq!(
            signer.verify(&moved, BODY, T, 300),
            Err(WebhookError::BadSignature)
        );
        // A forgery far in the past is told it is bad, not stale.
        let forged = format!("t=1,v1={KNOWN}");
        assert_eq!(
            signer.verify(&forged, BODY, T, 300),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn accepts_any_matching_v1_and_ignores_other_schemes() {
        let signer = WebhookSigner::new(SECRET);
        let header = format!("t={T},v0=abc,v1={},v1={KNOWN}", "0".repeat(64));
        assert_eq!(signer.verify(&header, BODY, T, 300), Ok(T));
    }

    #[test]
    fn malformed_headers_are_refused_as_such() {
        let signer = WebhookSigner::new(SECRET);
        for header in [
            "",
            "garbage",
            &format!("v1={KNOWN}"),
            &format!("t={T}"),
            &format!("t=abc,v1={KNOWN}"),
            &format!("t=-5,v1={KNOWN}"),
            &format!("t={T},t={T},v1={KNOWN}"),
            &format!("t={T},v1={}", &KNOWN[..63]),
            &format!("t={T},v1={}zz", &KNOWN[..62]),
            &format!("t=99999999999999999999,v1={KNOWN}"),
        ] {
            assert_eq!(
                signer.verify(header, BODY, T, 300),
                Err(WebhookError::Malformed),
                "{header}"
            );
        }
    }

    #[test]
    fn nothing_secret_is_printed() {
        let signer = WebhookSigner::new(SECRET);
        assert_eq!(format!("{signer:?}"), "WebhookSigner(..)");
        assert!(!WebhookError::BadSignature.to_string().contains(KNOWN));
    }
}
