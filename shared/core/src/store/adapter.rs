//! What the two adapters share: where a page left off within each kind of query, the audit
//! index's sort key and the days a time range touches. Built only with an adapter.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::{Cursor, StoreError};
use crate::clock::Timestamp;
use crate::domain::GrantId;
use crate::domain::audit::AuditRecord;

impl Cursor {
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
    /// One grant's activity, by time across its shards: the last item's sort key.
    Activity { key: String },
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

impl Position {
    pub(crate) fn activity(cursor: Option<&Cursor>) -> Result<Option<String>, StoreError> {
        match cursor.map(Cursor::decode).transpose()? {
            None => Ok(None),
            Some(Self::Activity { key }) if key.starts_with(super::activity::EVENT_PREFIX) => {
                Ok(Some(key))
            }
            Some(_) => Err(StoreError::BadCursor),
        }
    }
}

/// The audit-index key of a record: time, then grant, then sequence, as one sortable string.
pub(crate) fn audit_sort_key(record: &AuditRecord) -> String {
    format!(
        "{:012}#{}#{:010}",
        record.at.unix_seconds().max(0),
        record.grant_id,
        record.seq
    )
}

/// The first second of each UTC day that `[from, to)` touches.
pub(crate) fn days_between(from: Timestamp, to: Timestamp) -> impl Iterator<Item = Timestamp> {
    const DAY: i64 = 86_400;
    let first = from.unix_seconds().div_euclid(DAY);
    let last = to.unix_seconds().saturating_sub(1).div_euclid(DAY);
    let last = if to > from { last } else { first - 1 };
    (first..=last).map(|d| Timestamp::from_unix_seconds(d * DAY))
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
        // An activity cursor holds an event's sort key, never another kind of key.
        assert_eq!(Position::activity(Some(&c)), Err(StoreError::BadCursor));
        let key = "EVENT#001800000000#ev-1".to_owned();
        let own = Cursor::encode(&Position::Activity { key: key.clone() });
        assert_eq!(Position::activity(Some(&own)).unwrap(), Some(key));
        let other = Cursor::encode(&Position::Activity {
            key: "COUNT".to_owned(),
        });
        assert_eq!(Position::activity(Some(&other)), Err(StoreError::BadCursor));
    }

    #[test]
    fn days_cover_exactly_the_half_open_range() {
        let t = |s| Timestamp::from_unix_seconds(s);
        let days: Vec<_> = days_between(t(86_400 - 1), t(2 * 86_400)).collect();
        assert_eq!(days, [t(0), t(86_400)]);
        let days: Vec<_> = days_between(t(86_400), t(86_401)).collect();
        assert_eq!(days, [t(86_400)]);
        assert_eq!(days_between(t(10), t(10)).count(), 0);
    }
}
