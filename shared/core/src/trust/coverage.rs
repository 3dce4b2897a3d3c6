//! What covers a grant's activity. Each `ACTIVITY_COVERED` record (the sweeper's, signed) states
//! the count and digest of the grant's events stored up to its `activity_through` time.
//! Checked against the events a reader holds, a deleted, edited or slipped-in event breaks
//! the record that covered it. An event stored after the last record (CloudTrail delivers
//! late) is reported as not yet covered, never as a break; the next record covers it.
//!
//! The records themselves must be verified first (hashes, links, signatures by their author:
//! [`check_grant`](super::check_grant)); this checks only what they say of the activity.

use crate::activity::{Activity, activity_digest};
use crate::clock::Timestamp;
use crate::domain::audit::{AuditAction, AuditRecord};

/// What the covering records say of a grant's activity, and that it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// How many covering records the grant has.
    pub records: usize,
    /// Events the last of them covers.
    pub covered: u64,
    /// Events stored after the last covering record (all of them when there is none), by
    /// event id: delivered late, or not covered yet.
    pub not_yet_covered: Vec<String>,
}

/// Why a grant's activity does not match what covers it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoverageBreak {
    /// A covering record lacks a field or holds one that does not parse.
    #[error("covering record {seq} is malformed: {why}")]
    Malformed {
        /// The record's position in the chain.
        seq: u64,
        /// What is wrong.
        why: &'static str,
    },
    /// The events stored up to a record's time are not the ones it signed.
    #[error(
        "covering record {seq} signed {signed_count} events stored up to {through} (digest \
         {signed_digest}), but the activity holds {found_count} (digest {found_digest}): an \
         event was deleted, edited or added"
    )]
    Mismatch {
        /// The record's position in the chain.
        seq: u64,
        /// Its time bound.
        through: String,
        /// The count it signed.
        signed_count: u64,
        /// The count found.
        found_count: u64,
        /// The digest it signed.
        signed_digest: String,
        /// The digest found.
        found_digest: String,
    },
}

/// Whether `event` was stored by `through` (an event kept before arrival times were recorded
/// counts as stored at the start).
fn stored_by(event: &Activity, through: Timestamp) -> bool {
    event.stored_at.is_none_or(|at| at <= through)
}

/// Checks every covering record among `records` against `events` (all the grant's kept
/// activity, in any order).
pub fn check_coverage(
    records: &[AuditRecord],
    events: &[Activity],
) -> Result<Coverage, CoverageBreak> {
    let mut coverage = Coverage {
        records: 0,
        covered: 0,
        not_yet_covered: Vec::new(),
    };
    let mut last_through = None;
    for record in records
        .iter()
        .filter(|r| r.action == AuditAction::ActivityCovered)
    {
        let seq = record.seq;
        let field = |name: &str| record.detail.get(name).map(String::as_str);
        let signed_count: u64 = field("activity_count").and_then(|c| c.parse().ok()).ok_or(
            CoverageBreak::Malformed {
                seq,
                why: "no activity_count",
            },
        )?;
        let signed_digest = field("activity_digest").ok_or(CoverageBreak::Malformed {
            seq,
            why: "no activity_digest",
        })?;
        let through_text = field("activity_through").unwrap_or_default();
        let through = Timestamp::parse_rfc3339(through_text).ok_or(CoverageBreak::Malformed {
            seq,
            why: "no activity_through time",
        })?;
        let (found_count, found_digest) =
            activity_digest(events.iter().filter(|e| stored_by(e, through)));
        if found_count != signed_count || found_digest != signed_digest {
            return Err(CoverageBreak::Mismatch {
                seq,
                through: through_text.to_owned(),
                signed_count,
                found_count,
                signed_digest: signed_digest.to_owned(),
                found_digest,
            });
        }
        coverage.records += 1;
        coverage.covered = found_count;
        last_through = Some(through);
    }
    coverage.not_yet_covered = events
        .iter()
        .filter(|e| last_through.is_none_or(|through| !stored_by(e, through)))
        .map(|e| e.event_id.clone())
        .collect();
    Ok(coverage)
}
