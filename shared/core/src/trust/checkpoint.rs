//! Signed checkpoints: the count and a digest of every audit record of a closed period, chained
//! to the previous checkpoint and signed by the sweeper, so a grant deleted with its whole
//! chain, or a record dropped from the middle of one, shows in an export of that period.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::domain::audit::{AuditRecord, GENESIS_HASH};

use super::RecordSignature;

const PERIOD_TAG: &[u8] = b"jit-audit-period-v1";
const CHECKPOINT_HASH_TAG: &[u8] = b"jit-checkpoint-v1";
/// The tag of a checkpoint that names its period's object in the audit bucket: the hash covers
/// the object too. Checkpoints without one keep the first format, so they verify as before.
const ARCHIVED_CHECKPOINT_HASH_TAG: &[u8] = b"jit-checkpoint-v2";

/// How the trail is cut into periods, and how long after a period ends its checkpoint waits
/// for records still being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointPeriod {
    /// A period's length, in seconds; divides a day.
    pub length_secs: i64,
    /// How long after its end a period counts as closed.
    pub grace_secs: i64,
}

impl CheckpointPeriod {
    /// Hourly, closed five minutes after the hour: longer than any function may run, so no
    /// record stamped inside a closed period can still be on its way.
    pub const HOURLY: Self = Self {
        length_secs: 3600,
        grace_secs: 300,
    };

    /// The period holding `at`: its start and end.
    pub fn containing(self, at: Timestamp) -> (Timestamp, Timestamp) {
        let length = self.length_secs.max(1);
        let start = at.unix_seconds().div_euclid(length) * length;
        (
            Timestamp::from_unix_seconds(start),
            Timestamp::from_unix_seconds(start + length),
        )
    }

    /// How long after a period closes its checkpoint may still be unsigned: two runs of the
    /// sweeper at the template's one-minute schedule.
    pub const SIGNING_LAG_SECS: i64 = 120;

    /// Whether the period ending at `end` is closed at `now`.
    pub fn closed(self, end: Timestamp, now: Timestamp) -> bool {
        now >= end.plus_secs(self.grace_secs)
    }

    /// Whether the sweeper could use it: a length from a minute to a day that divides a day,
    /// and a grace of at least a second.
    pub fn is_valid(self) -> bool {
        Self::valid_length(self.length_secs) && self.grace_secs >= 1
    }

    /// Whether a period may be `secs` long: a minute to a day, dividing a day.
    pub fn valid_length(secs: i64) -> bool {
        (60..=86_400).contains(&secs) && 86_400 % secs == 0
    }

    /// The end of the last period whose checkpoint must exist at `at`: every period ending at
    /// or before it closed, and the sweeper had time to sign it.
    pub fn signed_until(self, at: Timestamp) -> Timestamp {
        let due = at.plus_secs(-(self.grace_secs.max(0) + Self::SIGNING_LAG_SECS));
        self.containing(due).0
    }
}

/// A digest of a period's records: SHA-256 over each record's grant, sequence number and hash,
/// length-prefixed, in (time, grant, sequence) order.
pub fn period_digest<'a>(records: impl IntoIterator<Item = &'a AuditRecord>) -> (u64, String) {
    digest_of(
        records
            .into_iter()
            .map(|r| (r.at, r.grant_id.as_str(), r.seq, r.hash.as_str())),
    )
}

/// [`period_digest`] of records given as (time, grant, sequence, hash): how the audit bucket's
/// period objects, which carry those of each record, are checked against a checkpoint.
pub fn digest_of<'a>(
    records: impl IntoIterator<Item = (Timestamp, &'a str, u64, &'a str)>,
) -> (u64, String) {
    let mut sorted: Vec<(Timestamp, &str, u64, &str)> = records.into_iter().collect();
    sorted.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
    let mut h = Sha256::new();
    h.update(PERIOD_TAG);
    for (_, grant, seq, hash) in &sorted {
        for field in [*grant, &seq.to_string(), *hash] {
            let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
            h.update(len.to_be_bytes());
            h.update(field.as_bytes());
        }
    }
    (sorted.len() as u64, hex::encode(h.finalize()))
}

/// The object holding a period in the audit bucket (`crate::archive`), as a checkpoint names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedPeriod {
    /// Its key.
    pub key: String,
    /// The S3 version id the put returned: the object the checkpoint vouches for, whatever is
    /// put at the key later.
    pub version_id: String,
    /// SHA-256 of the object's bytes, lower-case hex.
    pub sha256: String,
}

/// One closed period's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Position in the chain of checkpoints, from 1.
    pub seq: u64,
    /// The period's first second.
    pub period_start: Timestamp,
    /// The second after the period.
    pub period_end: Timestamp,
    /// How many audit records the period holds.
    pub count: u64,
    /// [`period_digest`] of them.
    pub digest: String,
    /// The previous checkpoint's hash; [`GENESIS_HASH`] for the first.
    pub prev_hash: String,
    /// The period's object in the audit bucket, when the deployment has one: covered by the
    /// hash (format 2), so the table's checkpoint vouches for exactly that version's bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ArchivedPeriod>,
    /// This checkpoint's hash, over every field above.
    pub hash: String,
    /// The sweeper's signature over the hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<RecordSignature>,
}

impl Checkpoint {
    /// The checkpoint after `prev` (none: the first) for the period `[start, end)` holding
    /// `records`; unsigned.
    pub fn next<'a>(
        prev: Option<&Checkpoint>,
        start: Timestamp,
        end: Timestamp,
        records: impl IntoIterator<Item = &'a AuditRecord>,
    ) -> Self {
        let (count, digest) = period_digest(records);
        let mut checkpoint = Self {
            seq: prev.map_or(1, |p| p.seq.saturating_add(1)),
            period_start: start,
            period_end: end,
            count,
            digest,
            prev_hash: prev.map_or_else(|| GENESIS_HASH.to_owned(), |p| p.hash.clone()),
            object: None,
            hash: String::new(),
            signature: None,
        };
        checkpoint.hash = checkpoint.compute_hash();
        checkpoint
    }

    /// The same checkpoint, naming its period's object (and hashed again to cover it).
    pub fn with_object(mut self, object: ArchivedPeriod) -> Self {
        self.object = Some(object);
        self.hash = self.compute_hash();
        self
    }

    /// SHA-256 over the length-prefixed fields, as lower-case hex.
    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        let object = self.object.as_ref().map_or_else(Vec::new, |o| {
            vec![o.key.clone(), o.version_id.clone(), o.sha256.clone()]
        });
        h.update(if self.object.is_some() {
            ARCHIVED_CHECKPOINT_HASH_TAG
        } else {
            CHECKPOINT_HASH_TAG
        });
        for field in [
            self.seq.to_string(),
            self.period_start.unix_seconds().to_string(),
            self.period_end.unix_seconds().to_string(),
            self.count.to_string(),
            self.digest.clone(),
            self.prev_hash.clone(),
        ]
        .into_iter()
        .chain(object)
        {
            let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
            h.update(len.to_be_bytes());
            h.update(field.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_aligned_and_close_after_the_grace() {
        let p = CheckpointPeriod::HOURLY;
        let t = Timestamp::from_unix_seconds;
        assert_eq!(p.containing(t(7_199)), (t(3_600), t(7_200)));
        assert_eq!(p.containing(t(7_200)), (t(7_200), t(10_800)));
        assert!(!p.closed(t(7_200), t(7_499)));
        assert!(p.closed(t(7_200), t(7_500)));
    }

    #[test]
    fn a_period_must_be_signed_two_minutes_after_it_closes() {
        let p = CheckpointPeriod::HOURLY;
        let t = Timestamp::from_unix_seconds;
        // The period [3600, 7200) closes at 7500 and must be signed by 7620.
        assert_eq!(p.signed_until(t(7_619)), t(3_600));
        assert_eq!(p.signed_until(t(7_620)), t(7_200));
        assert!(p.is_valid());
        for bad in [(59, 1), (7, 1), (86_401, 1), (3_600, 0), (3_599, 300)] {
            let period = CheckpointPeriod {
                length_secs: bad.0,
                grace_secs: bad.1,
            };
            assert!(!period.is_valid(), "{bad:?}");
        }
    }

    #[test]
    fn an_empty_period_has_a_digest_too() {
        let (n, empty) = period_digest(std::iter::empty());
        assert_eq!(n, 0);
        assert_eq!(empty.len(), 64);
    }
}
