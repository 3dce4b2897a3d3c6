//! Page cursors: opaque to callers, and holding only a position within one query.
//!
//! A cursor never carries a partition key: the store rebuilds the key from the query's own
//! arguments, so an edited cursor can at most skip results of the caller's own query, never
//! reach into another person's partition.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::clock::Timestamp;
use crate::domain::GrantId;

/// Where a page left off, as an opaque string for clients to hand back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    /// Wraps a cursor string a client sent back.
    pub fn from_client(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The cursor as text for the client.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn encode(position: &Position) -> Self {
        // Serialising this plain enum cannot fail; an empty cursor would only restart paging.
        let json = serde_json::to_vec(position).unwrap_or_default();
        Self(URL_SAFE_NO_PAD.encode(json))
    }

    pub(crate) fn decode(&self) -> Result<Position, StoreError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(&self.0)
            .map_err(|_| StoreError::BadCursor)?;
        serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)
    }
}

/// The last item a page returned, per kind of query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "q", rename_all = "snake_case")]
pub(crate) enum Position {
    /// A grant listing ordered by creation.
    Created { at: Timestamp, id: GrantId },
    /// The due index: shard, then due time.
    Due {
        shard: u32,
        at: Timestamp,
        id: GrantId,
    },
    /// One grant's audit chain.
    Chain { seq: u64 },
    /// The audit index by time.
    Audit { key: String },
}

impl Position {
    pub(crate) fn created(
        cursor: Option<&Cursor>,
    ) -> Result<Option<(Timestamp, GrantId)>, StoreError> {
        match cursor.map(Cursor::decode).transpose()? {
            None => Ok(None),
            Some(Self::Created { at, id }) => Ok(Some((at, id))),
            Some(_) => Err(StoreError::BadCursor),
        }
    }

    pub(crate) fn due(
        cursor: Option<&Cursor>,
    ) -> Result<Option<(u32, Timestamp, GrantId)>, StoreError> {
        match cursor.map(Cursor::decode).transpose()? {
            None => Ok(None),
            Some(Self::Due { shard, at, id }) if shard < super::DUE_SHARDS => {
                Ok(Some((shard, at, id)))
            }
            Some(_) => Err(StoreError::BadCursor),
        }
    }

    pub(crate) fn chain(cursor: Option<&Cursor>) -> Result<Option<u64>, StoreError> {
        match cursor.map(Cursor::decode).transpose()? {
            None => Ok(None),
            Some(Self::Chain { seq }) => Ok(Some(seq)),
            Some(_) => Err(StoreError::BadCursor),
        }
    }

    pub(crate) fn audit(cursor: Option<&Cursor>) -> Result<Option<String>, StoreError> {
        match cursor.map(Cursor::decode).transpose()? {
            None => Ok(None),
            Some(Self::Audit { key }) => Ok(Some(key)),
            Some(_) => Err(StoreError::BadCursor),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_queries_and_garbage() {
        let c = Cursor::encode(&Position::Chain { seq: 7 });
        assert_eq!(Position::chain(Some(&c)).unwrap(), Some(7));
        assert_eq!(Position::created(Some(&c)), Err(StoreError::BadCursor));
        assert_eq!(
            Position::chain(Some(&Cursor::from_client("!!not base64!!"))),
            Err(StoreError::BadCursor)
        );
        let forged = Cursor::encode(&Position::Due {
            shard: 99,
            at: Timestamp::from_unix_seconds(0),
            id: GrantId::parse("0190c0de-0000-7000-8000-000000000001").unwrap(),
        });
        assert_eq!(Position::due(Some(&forged)), Err(StoreError::BadCursor));
    }
}
