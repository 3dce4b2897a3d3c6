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
    let mut sorted: Vec<&AuditRecord> = records.into_iter().collect();
    sorted.sort_by(|a, b| (a.at, &a.grant_id, a.seq).cmp(&(b.at, &b.grant_id, b.seq)));
    let mut h = Sha256::new();
    h.update(PERIOD_TAG);
    for r in &sorted {
        for field in [r.grant_id.as_str(), &r.seq.to_string(), &r.hash] {
            let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
            h.update(len.to_be_bytes());
            h.update(field.as_bytes());
        }
    }
    (sorted.len() as u64, hex::encode(h.finalize()))
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
            hash: String::new(),
            signature: None,
        };
        checkpoint.hash = checkpoint.compute_hash();
        checkpoint
    }

    /// SHA-256 over the length-prefixed fields, as lower-case hex.
    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(CHECKPOINT_HASH_TAG);
        for field in [
            self.seq.to_string(),
            self.period_start.unix_seconds().to_string(),
            self.period_end.unix_seconds().to_string(),
            self.count.to_string(),
            self.digest.clone(),
            self.prev_hash.clone(),
        ] {
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
