//! What an auditor gets from `GET /audit`, and the offline check of it: every record's hash,
//! link and signature, each grant's head, the checkpoints' chain and signatures, and each
//! checkpointed period's count and digest against the records the export holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::domain::audit::{AuditRecord, ChainHead, GENESIS_HASH};
use crate::domain::{GrantId, Service};

use super::{
    Checkpoint, CheckpointPeriod, KeyRing, PublicKey, author_of, checkpoint_message, period_digest,
    record_message,
};

/// One grant's chain head, as the grant item holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantHead {
    /// The grant.
    pub grant_id: GrantId,
    /// Its chain's last record.
    pub head: ChainHead,
}

/// Everything needed to check a time range of the trail without the system.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditExport {
    /// The range's first second.
    pub from: Option<Timestamp>,
    /// The second after the range.
    pub to: Option<Timestamp>,
    /// The functions' public keys.
    pub keys: Vec<PublicKey>,
    /// The chain heads of the grants whose records are in the range.
    pub heads: Vec<GrantHead>,
    /// The checkpoints of periods that overlap the range.
    pub checkpoints: Vec<Checkpoint>,
    /// The records with `from <= at < to`.
    pub records: Vec<AuditRecord>,
    /// How the deployment cuts the trail into periods: which periods must have a checkpoint.
    /// An export without it (made before it was added) takes the length of the checkpoints it
    /// carries, or an hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_period: Option<CheckpointPeriod>,
    /// When it was made: every period that closed (and was due to be signed) by then must have
    /// its checkpoint in the export. Without it, or when it is later than the verifier's clock,
    /// the verifier's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_at: Option<Timestamp>,
    /// The kept activity of each grant that has an `ACTIVITY_COVERED` record in the range,
    /// checked against those records. A covered grant whose activity the export does not carry
    /// is counted as not checked, never passed as checked.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub activity: BTreeMap<GrantId, Vec<crate::activity::Activity>>,
}

/// What an export that verifies holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Grants with records in the range.
    pub grants: usize,
    /// Records checked.
    pub records: usize,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// Checkpointed periods inside the range whose records were counted and digested.
    pub periods: usize,
    /// The time the checkpoints carried cover, from the first one's start to the last one's
    /// end; none when the export carries none (nothing in its range was due yet).
    pub checkpointed: Option<(Timestamp, Timestamp)>,
    /// Activity events the covering records in the range cover, checked.
    pub activity_covered: u64,
    /// Events of those grants stored after their last covering record: not yet covered.
    pub activity_not_yet_covered: usize,
    /// Grants with a covering record whose activity the export does not carry: not checked.
    pub activity_unchecked: usize,
}

/// The first thing in an export that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportBreak {
    /// A record is altered, unlinked, out of place or not signed by its author.
    #[error("grant {grant_id}, audit record {seq}: {problem}")]
    Record {
        /// The grant.
        grant_id: GrantId,
        /// The record.
        seq: u64,
        /// What is wrong.
        problem: String,
    },
    /// A grant's activity is not what its covering records signed.
    #[error("grant {grant_id}'s activity: {broken}")]
    Activity {
        /// The grant.
        grant_id: GrantId,
        /// What does not hold.
        broken: super::CoverageBreak,
    },
    /// A grant's records disagree with its head.
    #[error("grant {grant_id}: {problem}")]
    Head {
        /// The grant.
        grant_id: GrantId,
        /// What is wrong.
        problem: String,
    },
    /// A checkpoint is altered, unlinked or not the sweeper's.
    #[error("checkpoint {seq}: {problem}")]
    Checkpoint {
        /// The checkpoint.
        seq: u64,
        /// What is wrong.
        problem: String,
    },
    /// A closed period's records are not the ones its checkpoint counted.
    #[error(
        "the period {start} to {end} held {signed} audit records when checkpoint {seq} was \
         signed, but the export has {found}{digest}: records or whole grants were removed or added"
    )]
    Period {
        /// The checkpoint.
        seq: u64,
        /// The period's first second.
        start: Timestamp,
        /// The second after it.
        end: Timestamp,
        /// What the checkpoint counted.
        signed: u64,
        /// What the export holds.
        found: u64,
        /// Set when the counts agree but the digests do not.
        digest: String,
    },
    /// A closed period of the range, due to be signed, has no checkpoint in the export.
    #[error(
        "the period {start} to {end} closed before the export was made, but the export has no \
         checkpoint for it: checkpoints were removed, or the sweeper has not signed it (it \
         signs each period within {lag} seconds of its close)"
    )]
    Uncovered {
        /// The period's first second.
        start: Timestamp,
        /// The second after it.
        end: Timestamp,
        /// How long after a period closes its checkpoint may be missing.
        lag: i64,
    },
    /// The export has no checkpoint at all, yet a period of its range was due to be signed.
    #[error(
        "the export has no checkpoint, yet the period {start} to {end} closed before it was \
         made: checkpoints were removed, or the range is before the trail's first checkpoint \
         (a new deployment's sweeper signs its first within minutes)"
    )]
    NoCheckpoints {
        /// The first such period's first second.
        start: Timestamp,
        /// The second after it.
        end: Timestamp,
    },
    /// The export's own description of its periods is not one a deployment could have.
    #[error("the export says the trail is cut into {length} s periods: {problem}")]
    Periods {
        /// The length it claims.
        length: i64,
        /// What is wrong.
        problem: String,
    },
}

/// Checks `export` at `now`. With `pinned`, signatures must verify under those keys (the ones
/// an auditor obtained separately); without, under the keys the export carries. Every period
/// of the range that had closed, and was due to be signed, when the export was made must be
/// covered by its checkpoints, except periods before the chain's first checkpoint.
pub fn verify_export(
    export: &AuditExport,
    pinned: Option<&KeyRing>,
    now: Timestamp,
) -> Result<ExportSummary, ExportBreak> {
    let carried = KeyRing::new(export.keys.iter().cloned());
    let ring = pinned.unwrap_or(&carried);
    let mut grants: BTreeMap<&GrantId, Vec<&AuditRecord>> = BTreeMap::new();
    for record in &export.records {
        grants.entry(&record.grant_id).or_default().push(record);
    }
    let heads: BTreeMap<&GrantId, &ChainHead> = export
        .heads
        .iter()
        .map(|h| (&h.grant_id, &h.head))
        .collect();
    let mut activity = (0, 0, 0);
    for (grant_id, records) in &mut grants {
        records.sort_by_key(|r| r.seq);
        check_chain(grant_id, records, ring)?;
        check_whole(export, grant_id, records)?;
        check_head(grant_id, records, heads.get(grant_id).copied())?;
        if !records
            .iter()
            .any(|r| r.action == crate::domain::audit::AuditAction::ActivityCovered)
        {
            continue;
        }
        let Some(events) = export.activity.get(*grant_id) else {
            activity.2 += 1;
            continue;
        };
        let owned: Vec<AuditRecord> = records.iter().map(|r| (*r).clone()).collect();
        let coverage =
            super::check_coverage(&owned, events).map_err(|broken| ExportBreak::Activity {
                grant_id: (*grant_id).clone(),
                broken,
            })?;
        activity.0 += coverage.covered;
        activity.1 += coverage.not_yet_covered.len();
    }
    let mut checkpoints: Vec<&Checkpoint> = export.checkpoints.iter().collect();
    checkpoints.sort_by_key(|c| c.seq);
    let mut prev: Option<&Checkpoint> = None;
    let mut periods = 0;
    for checkpoint in &checkpoints {
        check_checkpoint(checkpoint, prev, ring)?;
        prev = Some(checkpoint);
        if check_period(export, checkpoint)? {
            periods += 1;
        }
    }
    check_coverage(export, &checkpoints, now)?;
    Ok(ExportSummary {
        grants: grants.len(),
        records: export.records.len(),
        checkpoints: checkpoints.len(),
        periods,
        checkpointed: checkpoints
            .first()
            .zip(checkpoints.last())
            .map(|(first, last)| (first.period_start, last.period_end)),
        activity_covered: activity.0,
        activity_not_yet_covered: activity.1,
        activity_unchecked: activity.2,
    })
}

/// A chain may start before the range, but not one whose grant was created inside it (its
/// id, a UUIDv7 the records' hashes cover, says when).
fn check_whole(
    export: &AuditExport,
    grant_id: &GrantId,
    records: &[&AuditRecord],
) -> Result<(), ExportBreak> {
    let created = grant_id.created_at();
    let inside =
        |t: Timestamp| export.from.is_none_or(|f| f <= t) && export.to.is_none_or(|to| t < to);
    if records.first().is_some_and(|r| r.seq != 1) && created.is_some_and(inside) {
        return Err(ExportBreak::Record {
            grant_id: grant_id.clone(),
            seq: 1,
            problem: format!(
                "it is missing: the grant was created at {}, inside the exported range",
                created.map(|t| t.to_string()).unwrap_or_default()
            ),
        });
    }
    Ok(())
}

/// The chain ends where the grant's head says, or before it (later records fall after the
/// range); a head that names a shorter chain or another hash means records were dropped or
/// changed.
fn check_head(
    grant_id: &GrantId,
    records: &[&AuditRecord],
    head: Option<&ChainHead>,
) -> Result<(), ExportBreak> {
    let broken = |problem: String| ExportBreak::Head {
        grant_id: grant_id.clone(),
        problem,
    };
    let head = head.ok_or_else(|| broken("the export carries no head for it".to_owned()))?;
    let Some((seq, hash)) = records.last().map(|r| (r.seq, r.hash.as_str())) else {
        return Ok(());
    };
    if head.seq < seq {
        return Err(broken(format!(
            "its head is record {} but the export holds record {seq}: records were added after the head",
            head.seq
        )));
    }
    if head.seq == seq && head.hash != hash {
        return Err(broken(format!(
            "record {seq} has hash {hash} but the grant's head names {}",
            head.hash
        )));
    }
    Ok(())
}

/// A checkpoint hashes to its hash, is signed by the sweeper, and follows `prev` (the one
/// before it in the export) with no gap.
pub fn check_checkpoint(
    checkpoint: &Checkpoint,
    prev: Option<&Checkpoint>,
    ring: &KeyRing,
) -> Result<(), ExportBreak> {
    let broken = |problem: String| ExportBreak::Checkpoint {
        seq: checkpoint.seq,
        problem,
    };
    if checkpoint.compute_hash() != checkpoint.hash {
        return Err(broken(
            "its contents do not hash to its hash: it was altered".into(),
        ));
    }
    ring.verify(
        checkpoint.signature.as_ref(),
        Service::Sweeper,
        &checkpoint_message(&checkpoint.hash),
    )
    .map_err(|p| broken(format!("it does not count: {p}")))?;
    if let Some(p) = prev {
        if checkpoint.seq != p.seq.saturating_add(1) {
            return Err(broken(format!(
                "checkpoint {} should come next: checkpoints were removed",
                p.seq.saturating_add(1)
            )));
        }
        if checkpoint.prev_hash != p.hash || checkpoint.period_start != p.period_end {
            return Err(broken(format!(
                "it does not follow checkpoint {}: the chain of checkpoints was rewritten",
                p.seq
            )));
        }
    } else if checkpoint.seq == 1 && checkpoint.prev_hash != GENESIS_HASH {
        return Err(broken("the first checkpoint names a predecessor".into()));
    }
    Ok(())
}

/// For a checkpoint whose period lies inside the range, the export's records of that period
/// are exactly the ones it counted and digested. Whether it was inside (and so checked).
fn check_period(export: &AuditExport, checkpoint: &Checkpoint) -> Result<bool, ExportBreak> {
    let inside = export.from.is_none_or(|f| f <= checkpoint.period_start)
        && export.to.is_none_or(|t| checkpoint.period_end <= t);
    if !inside {
        return Ok(false);
    }
    let held = export
        .records
        .iter()
        .filter(|r| checkpoint.period_start <= r.at && r.at < checkpoint.period_end);
    let (found, digest) = period_digest(held);
    if found != checkpoint.count || digest != checkpoint.digest {
        return Err(ExportBreak::Period {
            seq: checkpoint.seq,
            start: checkpoint.period_start,
            end: checkpoint.period_end,
            signed: checkpoint.count,
            found,
            digest: if found == checkpoint.count {
                " with other contents".to_owned()
            } else {
                String::new()
            },
        });
    }
    Ok(true)
}

/// That the checkpoints (already checked to be one unbroken chain, in order) cover every
/// period of the range due to be signed when the export was made. A range that starts before
/// the chain's first checkpoint is covered from there.
fn check_coverage(
    export: &AuditExport,
    checkpoints: &[&Checkpoint],
    now: Timestamp,
) -> Result<(), ExportBreak> {
    let period = export
        .checkpoint_period
        .or_else(|| {
            checkpoints.first().map(|c| CheckpointPeriod {
                length_secs: c.period_end.unix_seconds() - c.period_start.unix_seconds(),
                grace_secs: CheckpointPeriod::HOURLY.grace_secs,
            })
        })
        .unwrap_or(CheckpointPeriod::HOURLY);
    let length = period.length_secs;
    if !period.is_valid() {
        return Err(ExportBreak::Periods {
            length,
            problem: format!(
                "no deployment uses that (a length from 60 to 86400 seconds dividing a day, a \
                 grace of at least a second; this says {} s)",
                period.grace_secs
            ),
        });
    }
    for c in checkpoints {
        if c.period_start != period.containing(c.period_start).0
            || c.period_end.unix_seconds() - c.period_start.unix_seconds() != length
        {
            return Err(ExportBreak::Checkpoint {
                seq: c.seq,
                problem: format!(
                    "it covers {} to {}, which is not one of the export's {length} s periods",
                    c.period_start, c.period_end
                ),
            });
        }
    }
    let as_of = export.exported_at.map_or(now, |at| at.min(now));
    let due_end = period.signed_until(as_of);
    let first = checkpoints.first();
    let Some(from) = export.from.or_else(|| first.map(|c| c.period_start)) else {
        return Ok(());
    };
    let mut start = period.containing(from).0;
    if let Some(genesis) = first.filter(|c| c.seq == 1) {
        start = start.max(genesis.period_start);
    }
    // The end of the last period the range touches, but none not yet due.
    let end = export.to.map_or(due_end, |to| {
        period.containing(to.plus_secs(-1)).1.min(due_end)
    });
    if start >= end {
        return Ok(());
    }
    let missing = |start: Timestamp| ExportBreak::Uncovered {
        start,
        end: start.plus_secs(length),
        lag: period.grace_secs + CheckpointPeriod::SIGNING_LAG_SECS,
    };
    match (first, checkpoints.last()) {
        (Some(first), _) if first.period_start > start => Err(missing(start)),
        (Some(_), Some(last)) if last.period_end < end => Err(missing(last.period_end)),
        (None, _) => Err(ExportBreak::NoCheckpoints {
            start,
            end: start.plus_secs(length),
        }),
        _ => Ok(()),
    }
}

/// One grant's records in the export, in sequence: hashes, links and signatures. The first
/// record present may follow records before the range; from there on nothing may be missing.
fn check_chain(
    grant_id: &GrantId,
    records: &[&AuditRecord],
    ring: &KeyRing,
) -> Result<(), ExportBreak> {
    let broken = |seq, problem: String| ExportBreak::Record {
        grant_id: grant_id.clone(),
        seq,
        problem,
    };
    let mut prev: Option<&AuditRecord> = None;
    for record in records {
        let computed = record.compute_hash();
        if computed != record.hash {
            return Err(broken(
                record.seq,
                format!(
                    "its contents hash to {computed}, not {}: it was altered",
                    record.hash
                ),
            ));
        }
        match prev {
            Some(p) if record.seq != p.seq.saturating_add(1) => {
                return Err(broken(
                    record.seq,
                    format!("record {} is missing before it", p.seq.saturating_add(1)),
                ));
            }
            Some(p) if record.prev_hash != p.hash => {
                return Err(broken(
                    record.seq,
                    format!(
                        "it does not follow record {}: the chain was rewritten",
                        p.seq
                    ),
                ));
            }
            None if record.seq == 1 && record.prev_hash != GENESIS_HASH => {
                return Err(broken(1, "the first record names a predecessor".into()));
            }
            _ => {}
        }
        ring.verify(
            record.signature.as_ref(),
            author_of(record.action),
            &record_message(&record.hash),
        )
        .map_err(|p| broken(record.seq, format!("{} does not count: {p}", record.action)))?;
        prev = Some(record);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::LocalKey;

    const HOUR: i64 = 3600;
    /// A whole hour: 2027-01-15T08:00:00Z.
    const T0: i64 = 1_800_000_000;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_seconds(T0 + secs)
    }

    /// Signed, chained, empty hourly checkpoints for `hours` hours from `T0`.
    fn chain(key: &LocalKey, hours: i64) -> Vec<Checkpoint> {
        let mut out: Vec<Checkpoint> = Vec::new();
        for h in 0..hours {
            let mut c = Checkpoint::next(out.last(), at(h * HOUR), at((h + 1) * HOUR), []);
            c.signature = Some(key.sign_as(&checkpoint_message(&c.hash)));
            out.push(c);
        }
        out
    }

    fn export(key: &LocalKey, checkpoints: Vec<Checkpoint>, from: i64, to: i64) -> AuditExport {
        AuditExport {
            from: Some(at(from)),
            to: Some(at(to)),
            keys: vec![key.public_key()],
            checkpoints,
            checkpoint_period: Some(CheckpointPeriod::HOURLY),
            ..AuditExport::default()
        }
    }

    #[test]
    fn every_period_due_when_exported_needs_its_checkpoint() {
        assert_eq!(T0 % HOUR, 0);
        let key = LocalKey::generate(Service::Sweeper);
        let all = chain(&key, 3);
        // The third hour [2h, 3h) is due five minutes' grace and two minutes after its end.
        let due = 3 * HOUR + 300 + 120;
        let uncovered = |hour: i64| ExportBreak::Uncovered {
            start: at(hour * HOUR),
            end: at((hour + 1) * HOUR),
            lag: 420,
        };
        let cases: Vec<(&str, AuditExport, i64, Result<(), ExportBreak>)> = vec![
            (
                "all three",
                export(&key, all.clone(), 0, 3 * HOUR),
                due,
                Ok(()),
            ),
            (
                "the last one removed",
                export(&key, all[..2].to_vec(), 0, 3 * HOUR),
                due,
                Err(uncovered(2)),
            ),
            (
                "the last one removed, a second before it was due",
                export(&key, all[..2].to_vec(), 0, 3 * HOUR),
                due - 1,
                Ok(()),
            ),
            (
                "the first one removed",
                export(&key, all[1..].to_vec(), 0, 3 * HOUR),
                due,
                Err(uncovered(0)),
            ),
            (
                "all removed",
                export(&key, Vec::new(), 0, 3 * HOUR),
                due,
                Err(ExportBreak::NoCheckpoints {
                    start: at(0),
                    end: at(HOUR),
                }),
            ),
            (
                "a range from mid-hour needs the hour it starts in",
                export(&key, all[1..].to_vec(), HOUR / 2, 3 * HOUR),
                due,
                Err(uncovered(0)),
            ),
            (
                "a range starting before the chain's first checkpoint",
                export(&key, all.clone(), -5 * HOUR, 3 * HOUR),
                due,
                Ok(()),
            ),
            (
                "a range ending in the future needs only what is due",
                export(&key, all.clone(), 0, 30 * HOUR),
                due,
                Ok(()),
            ),
            (
                "the same, with the last one removed",
                export(&key, all[..2].to_vec(), 0, 30 * HOUR),
                due,
                Err(uncovered(2)),
            ),
        ];
        for (name, export, now, expected) in cases {
            let got = verify_export(&export, None, at(now)).map(drop);
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn the_export_time_decides_what_was_due_but_never_past_the_verifiers_clock() {
        let key = LocalKey::generate(Service::Sweeper);
        let all = chain(&key, 3);
        let due = 3 * HOUR + 420;
        let mut early = export(&key, all[..2].to_vec(), 0, 3 * HOUR);
        early.exported_at = Some(at(due - 1));
        // Made before the third hour was due: verified a day later, it still holds.
        verify_export(&early, None, at(due + 86_400)).unwrap();
        // An export claiming to come from the future is taken at the verifier's clock.
        let mut future = export(&key, all.clone(), 0, 3 * HOUR);
        future.exported_at = Some(at(due + 86_400));
        let summary = verify_export(&future, None, at(due)).unwrap();
        assert_eq!(summary.checkpointed, Some((at(0), at(3 * HOUR))));
        assert_eq!(summary.periods, 3);
    }

    #[test]
    fn an_export_cannot_claim_periods_its_checkpoints_do_not_have() {
        let key = LocalKey::generate(Service::Sweeper);
        let mut minutes = export(&key, chain(&key, 2), 0, 2 * HOUR);
        minutes.checkpoint_period = Some(CheckpointPeriod {
            length_secs: 60,
            grace_secs: 10,
        });
        let broken = verify_export(&minutes, None, at(2 * HOUR + 420)).unwrap_err();
        assert!(
            matches!(&broken, ExportBreak::Checkpoint { seq: 1, problem } if problem.contains("not one of the export's 60 s periods")),
            "{broken}"
        );
        let mut odd = export(&key, Vec::new(), 0, 2 * HOUR);
        odd.checkpoint_period = Some(CheckpointPeriod {
            length_secs: 7,
            grace_secs: 300,
        });
        let broken = verify_export(&odd, None, at(2 * HOUR + 420)).unwrap_err();
        assert!(
            matches!(broken, ExportBreak::Periods { length: 7, .. }),
            "{broken}"
        );
        // Without a stated period (an older export), the checkpoints' own length is used.
        let mut older = export(&key, chain(&key, 2), 0, 2 * HOUR);
        older.checkpoint_period = None;
        verify_export(&older, None, at(2 * HOUR + 420)).unwrap();
    }
}
