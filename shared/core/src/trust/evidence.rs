//! Checking a grant against its evidence before acting on it: the chain up to the grant's
//! head, every record's signature by the function allowed to write it, and the grant's fields
//! that matter (who, which role, which scope, how long, since when) against what the signed
//! records say.

use crate::clock::Timestamp;
use crate::domain::audit::{AuditAction, AuditRecord, ChainBreak, verify_against_head};
use crate::domain::{Actor, Grant, GrantState};

use super::{KeyRing, SignatureProblem, author_of, record_message};

/// Why a grant's evidence does not hold; the first problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceBreak {
    /// The chain itself is broken.
    #[error("its audit chain is broken: {0}")]
    Chain(#[from] ChainBreak),
    /// A record's signature does not count.
    #[error("audit record {seq} ({action}) does not count: {problem}")]
    Signature {
        /// The record.
        seq: u64,
        /// What it records.
        action: AuditAction,
        /// What is wrong with its signature.
        problem: SignatureProblem,
    },
    /// The grant says something its signed records do not.
    #[error("the grant's {field} is `{stored}` but its signed audit record {seq} says `{signed}`")]
    Mismatch {
        /// The field.
        field: &'static str,
        /// What the grant item holds.
        stored: String,
        /// What the signed record says.
        signed: String,
        /// The record.
        seq: u64,
    },
    /// The chain does not start with a request.
    #[error("its audit chain does not start with the request")]
    NoRequest,
}

/// Checks `grant` against `records` (its whole chain, in order) and the functions' keys.
pub fn check_grant(
    grant: &Grant,
    records: &[AuditRecord],
    ring: &KeyRing,
) -> Result<(), EvidenceBreak> {
    verify_against_head(&grant.id, records, &grant.audit_head)?;
    check_signatures(records, ring)?;
    let first = records
        .first()
        .filter(|r| r.action == AuditAction::Requested)
        .ok_or(EvidenceBreak::NoRequest)?;
    check_request(grant, first)?;
    let last = records.last().unwrap_or(first);
    mismatch(
        "state",
        grant.state.to_string(),
        last.to.to_string(),
        last.seq,
    )?;
    check_decisions(grant, records)
}

/// A field of the item against what record `seq` signed.
fn mismatch(
    field: &'static str,
    stored: String,
    signed: String,
    seq: u64,
) -> Result<(), EvidenceBreak> {
    if stored == signed {
        Ok(())
    } else {
        Err(EvidenceBreak::Mismatch {
            field,
            stored,
            signed,
            seq,
        })
    }
}

/// What record `r` says of `key`.
fn said(r: &AuditRecord, key: &str) -> String {
    r.detail.get(key).cloned().unwrap_or_default()
}

/// Every record is signed by the function that authors its action, with a key of `ring`.
/// A grant's chain as a reader holds it, without the grant item: every hash and link from the
/// first record, and each record's signature by the one function that may write it.
pub fn check_chain(
    grant_id: &crate::domain::GrantId,
    records: &[AuditRecord],
    ring: &KeyRing,
) -> Result<(), EvidenceBreak> {
    crate::domain::audit::verify(grant_id, records)?;
    check_signatures(records, ring)
}

fn check_signatures(records: &[AuditRecord], ring: &KeyRing) -> Result<(), EvidenceBreak> {
    for record in records {
        ring.verify(
            record.signature.as_ref(),
            author_of(record.action),
            &record_message(&record.hash),
        )
        .map_err(|problem| EvidenceBreak::Signature {
            seq: record.seq,
            action: record.action,
            problem,
        })?;
    }
    Ok(())
}

/// What the request asked for, as its first record signed it: requester, target, role,
/// revoker, session policy, longest session, duration, break-glass, scheduled start, bundle.
fn check_request(grant: &Grant, first: &AuditRecord) -> Result<(), EvidenceBreak> {
    mismatch(
        "requester",
        Actor::User(grant.requester.clone()).to_string(),
        first.actor.to_string(),
        1,
    )?;
    mismatch("target", grant.target.to_string(), said(first, "target"), 1)?;
    mismatch(
        "role",
        grant.role_arn.to_string(),
        said(first, "role_arn"),
        1,
    )?;
    mismatch(
        "revoker role",
        grant
            .revoker_role_arn
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        said(first, "revoker_role_arn"),
        1,
    )?;
    mismatch(
        "session policy digest",
        grant.binding().session_policy_digest().unwrap_or_default(),
        said(first, "session_policy_sha256"),
        1,
    )?;
    mismatch(
        "longest session",
        grant.max_session_secs.to_string(),
        said(first, "max_session_secs"),
        1,
    )?;
    mismatch(
        "duration",
        grant.duration.as_secs().to_string(),
        said(first, "duration_secs"),
        1,
    )?;
    mismatch(
        "break-glass flag",
        grant.break_glass.to_string(),
        first.detail.contains_key("break_glass").to_string(),
        1,
    )?;
    mismatch(
        "scheduled start",
        grant.starts_at.map(|t| t.to_string()).unwrap_or_default(),
        said(first, "starts_at"),
        1,
    )?;
    mismatch(
        "bundle",
        grant.bundle.as_ref().map(|b| b.text()).unwrap_or_default(),
        said(first, "bundle"),
        1,
    )
}

/// What was decided, as the records signed it: the approvals required, each review (no more
/// and no fewer), the activation time and the window it signed, the end (from activation, or
/// the scheduled start it signed, plus the duration, then each
/// `EXTENDED` record's `ends_at`: the only source of a later end) and any extension still
/// waiting for reviewers.
fn check_decisions(grant: &Grant, records: &[AuditRecord]) -> Result<(), EvidenceBreak> {
    let mut reviews = grant.reviews.iter();
    // The end the records give, and the record that gave it.
    let mut end: Option<(String, u64)> = None;
    // The extension waiting, as the records describe it, and the record that last changed it.
    let mut waiting: (String, u64) = (String::new(), 0);
    for record in records {
        match record.action {
            AuditAction::AwaitingReview => {
                mismatch(
                    "approvals required",
                    grant
                        .approvals_required
                        .map(|n| n.to_string())
                        .unwrap_or_default(),
                    said(record, "approvals_required"),
                    record.seq,
                )?;
                mismatch(
                    "requirements",
                    grant.requirements_text(),
                    said(record, "requirements"),
                    record.seq,
                )?;
                mismatch(
                    "what the rules said",
                    grant.rules_said.clone().unwrap_or_default(),
                    said(record, "rules_said"),
                    record.seq,
                )?;
            }
            AuditAction::Approved | AuditAction::Denied => {
                let stored = reviews
                    .next()
                    .map(|r| {
                        let who = Actor::User(r.reviewer.clone());
                        format!("{who} at {} filling [{}]", r.at, r.fills.join(","))
                    })
                    .unwrap_or_default();
                mismatch(
                    "review",
                    stored,
                    format!(
                        "{} at {} filling [{}]",
                        record.actor,
                        record.at,
                        said(record, "fills")
                    ),
                    record.seq,
                )?;
            }
            AuditAction::ExtensionRequested => {
                waiting = (
                    format!(
                        "{}s to {}, {} approvals",
                        said(record, "extension_secs"),
                        said(record, "requested_ends_at"),
                        said(record, "approvals_required")
                    ),
                    record.seq,
                );
            }
            AuditAction::ExtensionApproved => {
                waiting.0 = format!("{}; {} at {}", waiting.0, record.actor, record.at);
                waiting.1 = record.seq;
            }
            AuditAction::Extended => {
                end = Some((said(record, "ends_at"), record.seq));
                waiting = (String::new(), record.seq);
            }
            AuditAction::ExtensionDenied => waiting = (String::new(), record.seq),
            _ => {}
        }
        if record.to.is_terminal() {
            waiting = (String::new(), record.seq);
        }
        if record.to == GrantState::Active && record.from == Some(GrantState::Pending) {
            // A scheduled grant's activation signs its window; the end runs from its start.
            mismatch(
                "scheduled start",
                grant.starts_at.map(|t| t.to_string()).unwrap_or_default(),
                said(record, "starts_at"),
                record.seq,
            )?;
            let opens = grant.starts_at.unwrap_or(record.at);
            let mut ends = opens.plus_secs(i64::from(grant.duration.as_secs()));
            // Opened at once because the requester was on call: no later than the shift.
            if let Some(shift_end) = Timestamp::parse_rfc3339(&said(record, "shift_ends_at")) {
                ends = ends.min(shift_end);
            }
            mismatch(
                "activation time",
                grant
                    .activated_at
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                record.at.to_string(),
                record.seq,
            )?;
            end = Some((ends.to_string(), record.seq));
        }
    }
    if let Some(extra) = reviews.next() {
        return Err(EvidenceBreak::Mismatch {
            field: "review",
            stored: format!("{} at {}", Actor::User(extra.reviewer.clone()), extra.at),
            signed: String::new(),
            seq: grant.audit_head.seq,
        });
    }
    let (signed_end, seq) = end.unwrap_or((String::new(), grant.audit_head.seq));
    mismatch(
        "end time",
        grant.ends_at.map(|t| t.to_string()).unwrap_or_default(),
        signed_end,
        seq,
    )?;
    let stored_waiting = grant.extension.as_ref().map_or_else(String::new, |x| {
        x.reviews.iter().fold(
            format!(
                "{}s to {}, {} approvals",
                x.secs, x.ends_at, x.approvals_required
            ),
            |text, r| format!("{text}; {} at {}", Actor::User(r.reviewer.clone()), r.at),
        )
    });
    mismatch("extension waiting", stored_waiting, waiting.0, waiting.1)
}
