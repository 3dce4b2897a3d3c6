//! What an auditor gets from `GET /audit`, and the offline check of it: every record's hash,
//! link and signature, each grant's head, the checkpoints' chain and signatures, and each
//! checkpointed period's count and digest against the records the export holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::audit::{AuditRecord, ChainHead, GENESIS_HASH};
use crate::clock::Timestamp;
use crate::domain::{GrantId, Service};

use super::{
    Checkpoint, KeyRing, PublicKey, author_of, checkpoint_message, period_digest, record_message,
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
}

/// Checks `export`. With `pinned`, signatures must verify under those keys (the ones an
/// auditor obtained separately); without, under the keys the export carries.
pub fn verify_export(
    export: &AuditExport,
    pinned: Option<&KeyRing>,
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
    for (grant_id, records) in &mut grants {
        records.sort_by_key(|r| r.seq);
        check_chain(grant_id, records, ring)?;
        // A chain may start before the range, but not one whose grant was created inside it
        // (its id, a UUIDv7 the records' hashes cover, says when).
        let created = grant_id.created_at();
        let inside =
            |t: Timestamp| export.from.is_none_or(|f| f <= t) && export.to.is_none_or(|to| t < to);
        if records.first().is_some_and(|r| r.seq != 1) && created.is_some_and(inside) {
            return Err(ExportBreak::Record {
                grant_id: (*grant_id).clone(),
                seq: 1,
                problem: format!(
                    "it is missing: the grant was created at {}, inside the exported range",
                    created.map(|t| t.to_string()).unwrap_or_default()
                ),
            });
        }
        let last = records.last().map(|r| (r.seq, r.hash.as_str()));
        let head = heads.get(grant_id).ok_or_else(|| ExportBreak::Head {
            grant_id: (*grant_id).clone(),
            problem: "the export carries no head for it".to_owned(),
        })?;
        if let Some((seq, hash)) = last {
            if head.seq < seq {
                return Err(ExportBreak::Head {
                    grant_id: (*grant_id).clone(),
                    problem: format!(
                        "its head is record {} but the export holds record {seq}: records were added after the head",
                        head.seq
                    ),
                });
            }
            if head.seq == seq && head.hash != hash {
                return Err(ExportBreak::Head {
                    grant_id: (*grant_id).clone(),
                    problem: format!(
                        "record {seq} has hash {hash} but the grant's head names {}",
                        head.hash
                    ),
                });
            }
        }
    }

    let mut checkpoints: Vec<&Checkpoint> = export.checkpoints.iter().collect();
    checkpoints.sort_by_key(|c| c.seq);
    let mut prev: Option<&Checkpoint> = None;
    let mut periods = 0;
    for checkpoint in &checkpoints {
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
        prev = Some(checkpoint);
        let inside = export.from.is_none_or(|f| f <= checkpoint.period_start)
            && export.to.is_none_or(|t| checkpoint.period_end <= t);
        if !inside {
            continue;
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
        periods += 1;
    }
    Ok(ExportSummary {
        grants: grants.len(),
        records: export.records.len(),
        checkpoints: checkpoints.len(),
        periods,
    })
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
