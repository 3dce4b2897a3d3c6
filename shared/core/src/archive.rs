//! The audit bucket's layout and formats: each closed period's records as one object of OCSF
//! JSON Lines (gzip, the same bytes for the same records), under a date-partitioned key, and
//! the signed checkpoints beside them. No S3 code lives here: the sweeper writes these objects
//! and `jit audit verify --bucket` reads them.
//!
//! Keys, all under the bucket's root:
//!
//! - `audit/v1/dt=YYYY-MM-DD/hour=HH/<period start>-<length>s.ocsf.jsonl.gz`: a period's
//!   records (Hive-style partitions, so Athena's partition projection finds them);
//! - `checkpoints/v1/<seq, 20 digits>.json`: checkpoint `seq`, as the table holds it.

// Reads JSON by key (serde_json's Index returns Null for what is missing; it cannot panic).
#![allow(clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::domain::audit::AuditRecord;
use crate::domain::{GrantId, RoleArn, TargetId, UserId};
use crate::ocsf::{GrantSubject, record_event};
pub use crate::trust::ArchivedPeriod;

/// The largest period object a reader inflates: far beyond any hour's records.
pub const MOST_INFLATED_BYTES: u64 = 512 * 1024 * 1024;

#[cfg(feature = "s3")]
mod s3;
mod verify;

#[cfg(feature = "s3")]
pub use s3::S3Bucket;
pub use verify::{BucketReader, BucketSummary, ListedVersion, compare_with_table, verify_bucket};

/// The prefix of every period object's key.
pub const PERIOD_PREFIX: &str = "audit/v1/";

/// Where a period's object goes.
pub fn period_key(start: Timestamp, length_secs: i64) -> String {
    let iso = start.to_rfc3339();
    let day = start.utc_day();
    let hour = iso.get(11..13).unwrap_or("00");
    format!(
        "{PERIOD_PREFIX}dt={day}/hour={hour}/{}-{length_secs}s.ocsf.jsonl.gz",
        iso.replace(':', "")
    )
}

/// Where checkpoint `seq` goes.
pub fn checkpoint_key(seq: u64) -> String {
    format!("checkpoints/v1/{seq:020}.json")
}

/// The prefix of every checkpoint key.
pub const CHECKPOINT_PREFIX: &str = "checkpoints/v1/";

/// What a grant's events say of it beyond each record, as looked up by the sweeper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The requester.
    pub requester: UserId,
    /// The target.
    pub target: TargetId,
    /// The target's role.
    pub role_arn: RoleArn,
}

/// A period's object, ready to put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodObject {
    /// Its key.
    pub key: String,
    /// gzip of the JSON Lines.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`, lower-case hex.
    pub sha256: String,
    /// How many records it holds.
    pub count: u64,
}

/// Why an archive object could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    /// A record's grant was not looked up.
    #[error("no subject for grant `{0}`: its record cannot be archived")]
    NoSubject(GrantId),
    /// A person was not given a pseudonym.
    #[error("no pseudonym for a person of grant `{0}`: its record cannot be archived")]
    NoPseudonym(GrantId),
    /// The bytes are not gzip, or not JSON Lines of the broker's events.
    #[error("the object is not a period object: {0}")]
    Unreadable(String),
}

/// gzip with fixed metadata (no name, no time, OS "unknown", default level), so the same
/// input always gives the same bytes.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// Inflates `bytes`, refusing more than [`MOST_INFLATED_BYTES`].
pub fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, ArchiveError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(MOST_INFLATED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| ArchiveError::Unreadable(format!("not gzip: {e}")))?;
    if out.len() as u64 > MOST_INFLATED_BYTES {
        return Err(ArchiveError::Unreadable("it inflates past 512 MiB".into()));
    }
    Ok(out)
}

/// A new pseudonym: `p-` and 128 random bits in hex, unrelated to who it stands for; `None`
/// if the system's random source failed.
pub fn new_pseudonym() -> Option<String> {
    let mut bytes = [0_u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).ok()?;
    Some(format!("p-{}", hex::encode(bytes)))
}

/// SHA-256 as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The object of the period `[start, start + length)` holding `records`, each as its OCSF
/// event (`crate::ocsf::record_event`), in (time, grant, sequence) order; grants described by
/// `subjects`, people by `pseudonyms` (a person without one refuses the whole object: an
/// identifier never falls through to the bucket).
pub fn period_object(
    start: Timestamp,
    length_secs: i64,
    records: &[AuditRecord],
    subjects: &BTreeMap<GrantId, Subject>,
    pseudonyms: &BTreeMap<UserId, String>,
) -> Result<PeriodObject, ArchiveError> {
    let mut sorted: Vec<&AuditRecord> = records.iter().collect();
    sorted.sort_by(|a, b| (a.at, &a.grant_id, a.seq).cmp(&(b.at, &b.grant_id, b.seq)));
    let mut lines = Vec::new();
    for record in &sorted {
        let subject = subjects
            .get(&record.grant_id)
            .ok_or_else(|| ArchiveError::NoSubject(record.grant_id.clone()))?;
        let requester = pseudonyms
            .get(&subject.requester)
            .ok_or_else(|| ArchiveError::NoPseudonym(record.grant_id.clone()))?;
        if let crate::domain::Actor::User(user) = &record.actor
            && !pseudonyms.contains_key(user)
        {
            return Err(ArchiveError::NoPseudonym(record.grant_id.clone()));
        }
        let pseudonym = |user: &UserId| pseudonyms.get(user).cloned().unwrap_or_default();
        let event = record_event(
            record,
            GrantSubject {
                grant_id: &record.grant_id,
                requester,
                target: &subject.target,
                role_arn: &subject.role_arn,
            },
            &pseudonym,
        );
        lines.extend_from_slice(event.to_string().as_bytes());
        lines.push(b'\n');
    }
    let bytes = gzip(&lines);
    Ok(PeriodObject {
        key: period_key(start, length_secs),
        sha256: sha256_hex(&bytes),
        bytes,
        count: sorted.len() as u64,
    })
}

/// One record as a period object carries it: enough to recompute the period's digest and to
/// check the record's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedRecord {
    /// Its grant.
    pub grant_id: GrantId,
    /// Its place in the grant's chain.
    pub seq: u64,
    /// When it happened.
    pub at: Timestamp,
    /// Its hash.
    pub hash: String,
    /// The whole event.
    pub event: Value,
}

/// The records of a period object's bytes.
pub fn read_period_object(bytes: &[u8]) -> Result<Vec<ArchivedRecord>, ArchiveError> {
    let text = gunzip(bytes)?;
    let text = std::str::from_utf8(&text)
        .map_err(|e| ArchiveError::Unreadable(format!("not UTF-8: {e}")))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let event: Value = serde_json::from_str(line)
            .map_err(|e| ArchiveError::Unreadable(format!("line {} is not JSON: {e}", n + 1)))?;
        let jit = &event["unmapped"]["jit"];
        let field = |name: &str| {
            jit[name].as_str().map(str::to_owned).ok_or_else(|| {
                ArchiveError::Unreadable(format!("line {} has no `unmapped.jit.{name}`", n + 1))
            })
        };
        let grant_id = GrantId::parse(field("grant_id")?).map_err(|e| {
            ArchiveError::Unreadable(format!("line {}: `unmapped.jit.grant_id`: {e}", n + 1))
        })?;
        let hash = field("hash")?;
        let seq = jit["seq"].as_u64().ok_or_else(|| {
            ArchiveError::Unreadable(format!("line {} has no `unmapped.jit.seq`", n + 1))
        })?;
        let at = event["time"]
            .as_i64()
            .map(|ms| Timestamp::from_unix_seconds(ms.div_euclid(1000)))
            .ok_or_else(|| ArchiveError::Unreadable(format!("line {} has no `time`", n + 1)))?;
        out.push(ArchivedRecord {
            grant_id,
            seq,
            at,
            hash,
            event,
        });
    }
    Ok(out)
}

/// The digest of a period object's records, as [`crate::trust::period_digest`] computes it of
/// the table's: a checkpoint's count and digest hold for both.
pub fn archived_digest(records: &[ArchivedRecord]) -> (u64, String) {
    crate::trust::digest_of(
        records
            .iter()
            .map(|r| (r.at, r.grant_id.as_str(), r.seq, r.hash.as_str())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_partitioned_by_utc_day_and_hour() {
        let at = Timestamp::parse_rfc3339("2026-12-06T14:00:00Z").unwrap();
        assert_eq!(
            period_key(at, 3600),
            "audit/v1/dt=2026-12-06/hour=14/2026-12-06T140000Z-3600s.ocsf.jsonl.gz"
        );
        assert_eq!(
            checkpoint_key(42),
            "checkpoints/v1/00000000000000000042.json"
        );
    }

    #[test]
    fn gzip_gives_the_same_bytes_for_the_same_input_and_reads_back() {
        let text = b"{\"a\":1}\n{\"b\":2}\n";
        let (one, two) = (gzip(text), gzip(text));
        assert_eq!(one, two);
        // No name, no time: bytes 4..8 (MTIME) are zero.
        assert_eq!(one.get(4..8), Some(&[0_u8, 0, 0, 0][..]));
        assert_eq!(gunzip(&one).ok().as_deref(), Some(&text[..]));
        assert!(gunzip(b"not gzip").is_err());
    }
}
