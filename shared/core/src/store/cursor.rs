//! Page cursors: opaque to callers, and holding only a position within one query.
//!
//! A cursor never carries a partition key: the store rebuilds the key from the query's own
//! arguments, so an edited cursor can at most skip results of the caller's own query, never
//! reach into another person's partition.

/// Where a page left off, as an opaque string for clients to hand back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub(super) String);

impl Cursor {
    /// Wraps a cursor string a client sent back.
    pub fn from_client(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The cursor as text for the client.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
