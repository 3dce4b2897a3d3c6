//! Idempotency keys: a retried request returns what the first one created.

use crate::clock::Timestamp;
use crate::domain::{Grant, UserId, ValueError};

/// A caller-chosen key that makes retries of one request return its first result.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Checks a key from a client: 1 to 128 letters, digits, `-`, `_` or `.`.
    pub fn parse(value: impl Into<String>) -> Result<Self, ValueError> {
        let value = value.into();
        if value.is_empty() {
            return Err(ValueError::Empty {
                what: "idempotency key",
            });
        }
        if value.len() > 128 {
            return Err(ValueError::TooLong {
                what: "idempotency key",
                max: 128,
                len: value.chars().count(),
            });
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(ValueError::Malformed {
                what: "idempotency key",
                value,
                rule: "letters, digits, -, _ and . only",
            });
        }
        Ok(Self(value))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An idempotency key as stored: scoped to the caller, tied to what was asked, and kept for a
/// while.
#[derive(Debug, Clone)]
pub struct Idempotency {
    /// The client's key.
    pub key: IdempotencyKey,
    /// Whose key it is: the same key from another caller is a different key.
    pub caller: UserId,
    /// A digest of what was asked, so a reused key with a different request is caught.
    pub fingerprint: String,
    /// When the key may be forgotten.
    pub expires_at: Timestamp,
    /// When it is used; an expired key that DynamoDB's TTL has not removed yet is reusable.
    pub now: Timestamp,
}

/// What `create` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// A new request was stored.
    New(Grant),
    /// The idempotency key was used before: this is the request it created then, as it is now.
    Replayed(Grant),
}

impl Created {
    /// The request, new or replayed.
    pub fn grant(&self) -> &Grant {
        match self {
            Self::New(g) | Self::Replayed(g) => g,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_cannot_smuggle_separators() {
        assert!(IdempotencyKey::parse("retry-1.a_B").is_ok());
        assert!(IdempotencyKey::parse("a#b").is_err());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("k".repeat(129)).is_err());
    }
}
