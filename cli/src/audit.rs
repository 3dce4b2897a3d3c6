//! `jit audit export` and `jit audit verify`: the trail as JSON Lines, one item per line
//! (`range`, `key`, `checkpoint`, `head`, `record`, and the `activity` of each grant with a
//! record covering it), and its fully offline check.

use jit_core::activity::Activity;
use jit_core::clock::Timestamp;
use jit_core::domain::GrantId;
use jit_core::domain::audit::{AuditAction, AuditRecord};
use jit_core::trust::{
    AuditExport, Checkpoint, CheckpointPeriod, GrantHead, KeyRing, PublicKey, verify_export,
};
use serde::{Deserialize, Serialize};

use crate::api::{Api, Failure};

/// One line of an export file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    /// What the export covers, and by which rule checkpoints are due.
    Range {
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        checkpoint_period: Option<CheckpointPeriod>,
        exported_at: Option<Timestamp>,
    },
    /// A function's public key.
    Key(PublicKey),
    /// A checkpoint of a period the range overlaps.
    Checkpoint(Checkpoint),
    /// A grant's chain head.
    Head(GrantHead),
    /// A record, as stored.
    Record(AuditRecord),
    /// The kept activity of a grant with an `ACTIVITY_COVERED` record in the range.
    Activity {
        grant: GrantId,
        events: Vec<Activity>,
    },
}

/// Every page of `GET /audit` for `[from, to)`, as JSON Lines.
pub async fn export(api: &Api, from: &str, to: &str) -> Result<String, Failure> {
    let export = api.call(|api| api.audit_export(from, to)).await?;
    // Each grant whose activity a record in the range covers: its activity, every page.
    let covered: std::collections::BTreeSet<GrantId> = export
        .records
        .iter()
        .filter(|r| r.action == AuditAction::ActivityCovered)
        .map(|r| r.grant_id.clone())
        .collect();
    let mut activity = Vec::new();
    for grant in covered {
        let mut events = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = api
                .call(|api| api.request_activity(grant.as_str(), 100, next.as_deref()))
                .await?;
            if page.items.is_empty() {
                break;
            }
            events.extend(page.items.into_iter().map(|a| a.activity));
            next = page.next;
        }
        activity.push(Line::Activity { grant, events });
    }
    let range = Line::Range {
        from: export.from,
        to: export.to,
        checkpoint_period: export.checkpoint_period,
        exported_at: export.exported_at,
    };
    let lines = std::iter::once(range)
        .chain(export.keys.into_iter().map(Line::Key))
        .chain(export.checkpoints.into_iter().map(Line::Checkpoint))
        .chain(export.heads.into_iter().map(Line::Head))
        .chain(export.records.into_iter().map(Line::Record))
        .chain(activity);
    let mut out = String::new();
    for line in lines {
        let text = serde_json::to_string(&line)
            .map_err(|e| Failure::Other(format!("cannot write the export: {e}")))?;
        out.push_str(&text);
        out.push('\n');
    }
    Ok(out)
}

/// Reads an export written by [`export`]: line `n` that is not one of its items is refused.
pub fn read(text: &str) -> Result<AuditExport, Failure> {
    let mut export = AuditExport::default();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(line)
            .map_err(|e| Failure::Tampered(format!("line {} is not an export item: {e}", n + 1)))?;
        match line {
            Line::Range {
                from,
                to,
                checkpoint_period,
                exported_at,
            } => {
                export.from = from;
                export.to = to;
                export.checkpoint_period = checkpoint_period;
                export.exported_at = exported_at;
            }
            Line::Key(key) => export.keys.push(key),
            Line::Checkpoint(checkpoint) => export.checkpoints.push(checkpoint),
            Line::Head(head) => export.heads.push(head),
            Line::Record(record) => export.records.push(record),
            Line::Activity { grant, events } => {
                export.activity.insert(grant, events);
            }
        }
    }
    Ok(export)
}

/// What a verified export holds.
#[derive(Debug, Serialize)]
pub struct Verified {
    /// Always true: an export that does not verify is a failure instead.
    pub verified: bool,
    /// Grants with records in the range.
    pub grants: usize,
    /// Records checked.
    pub records: usize,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// Closed periods whose checkpoints were counted.
    pub periods_checked: usize,
    /// The first second the checkpoints cover.
    pub checkpointed_from: Option<Timestamp>,
    /// The second after the last they cover.
    pub checkpointed_until: Option<Timestamp>,
    /// Activity events checked against the records that cover them.
    pub activity_covered: u64,
    /// Activity events stored after their grant's last covering record.
    pub activity_not_yet_covered: usize,
    /// Grants with a covering record whose activity the export does not carry.
    pub activity_unchecked: usize,
}

/// The keys signatures must verify under: `pinned` (a JSON list the auditor holds), or else
/// the ones the API serves with the trail.
pub async fn key_ring(api: &Api, pinned: Option<&str>) -> Result<KeyRing, Failure> {
    if let Some(keys) = pinned {
        return pinned_ring(keys);
    }
    let now = time::OffsetDateTime::now_utc();
    let at = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| Failure::Other(format!("the time: {e}")))
    };
    let (from, to) = (at(now)?, at(now + time::Duration::seconds(1))?);
    let export = api.call(|api| api.audit_export(&from, &to)).await?;
    if export.keys.is_empty() {
        return Err(Failure::Tampered(
            "the API serves no public keys: nothing can be verified".to_owned(),
        ));
    }
    Ok(KeyRing::new(export.keys))
}

pub fn pinned_ring(keys: &str) -> Result<KeyRing, Failure> {
    let keys: Vec<PublicKey> = serde_json::from_str(keys)
        .map_err(|e| Failure::Usage(format!("the pinned keys are not a JSON list of keys: {e}")))?;
    Ok(KeyRing::new(keys))
}

/// Checks an export offline; with `pinned`, against keys the auditor holds.
pub fn verify(text: &str, pinned: Option<&str>) -> Result<Verified, Failure> {
    let export = read(text)?;
    let ring = pinned.map(pinned_ring).transpose()?;
    if export.keys.is_empty() && ring.is_none() {
        return Err(Failure::Tampered(
            "the export carries no public keys: nothing can be verified".to_owned(),
        ));
    }
    let now = Timestamp::from_unix_seconds(time::OffsetDateTime::now_utc().unix_timestamp());
    let summary = verify_export(&export, ring.as_ref(), now)
        .map_err(|broken| Failure::Tampered(format!("the export does not verify: {broken}")))?;
    Ok(Verified {
        verified: true,
        grants: summary.grants,
        records: summary.records,
        checkpoints: summary.checkpoints,
        periods_checked: summary.periods,
        checkpointed_from: summary.checkpointed.map(|(from, _)| from),
        checkpointed_until: summary.checkpointed.map(|(_, until)| until),
        activity_covered: summary.activity_covered,
        activity_not_yet_covered: summary.activity_not_yet_covered,
        activity_unchecked: summary.activity_unchecked,
    })
}
