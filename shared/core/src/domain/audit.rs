//! The audit trail: one hash chain per grant, so a record cannot be changed, dropped or
//! reordered without `verify` noticing.
//!
//! Each record's hash is SHA-256 over a canonical encoding of its fields, which includes the
//! previous record's hash. The encoding is deliberately not JSON: every field is written as a
//! 4-byte big-endian length followed by its UTF-8 bytes, in a fixed order, after a version tag,
//! so any language can recompute it without agreeing on JSON key order or number formats.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::domain::{Actor, GrantId, GrantState, Service};

/// The hash a chain starts from: the "previous hash" of a grant's first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const ENCODING_TAG: &[u8] = b"jit-audit-v1";

/// What happened, as recorded in the trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditAction {
    /// A person asked for access.
    Requested,
    /// The rules did not approve at once; the request waits for reviewers.
    AwaitingReview,
    /// The rules approved the request at once.
    AutoApproved,
    /// Access was opened through break-glass, with a review owed afterwards.
    BreakGlassActivated,
    /// A reviewer approved (and, when enough had, access was opened).
    Approved,
    /// A reviewer denied the request.
    Denied,
    /// The requester withdrew the request.
    Cancelled,
    /// Nobody decided in time.
    TimedOut,
    /// Access reached its end time.
    Expired,
    /// Access was ended early.
    Revoked,
    /// Short-lived credentials were handed out.
    SessionIssued,
    /// A reviewer looked at a break-glass activation after the fact.
    PostReviewed,
    /// The role's revocation policy fell back to cutting every older session of the role.
    RevocationFallback,
    /// The role's revocation policy was found missing or changed and was put back.
    RevocationRepaired,
    /// The activity CloudTrail delivered for the grant's sessions so far is covered: its count
    /// and digest, signed.
    ActivityCovered,
    /// The requester asked for more time; the rules sent it to reviewers.
    ExtensionRequested,
    /// A reviewer approved an extension that needs more approvals.
    ExtensionApproved,
    /// A reviewer denied an extension; the grant keeps its end.
    ExtensionDenied,
    /// The grant's end moved later: the rules permitted the extension, or its last approval
    /// came. The record's `ends_at` is the new end, the only source of it.
    Extended,
}

impl AuditAction {
    /// Every action, in the order of the enum.
    pub const ALL: [Self; 19] = [
        Self::Requested,
        Self::AwaitingReview,
        Self::AutoApproved,
        Self::BreakGlassActivated,
        Self::Approved,
        Self::Denied,
        Self::Cancelled,
        Self::TimedOut,
        Self::Expired,
        Self::Revoked,
        Self::SessionIssued,
        Self::PostReviewed,
        Self::RevocationFallback,
        Self::RevocationRepaired,
        Self::ActivityCovered,
        Self::ExtensionRequested,
        Self::ExtensionApproved,
        Self::ExtensionDenied,
        Self::Extended,
    ];

    /// The name used in the trail and in the hash.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "REQUESTED",
            Self::AwaitingReview => "AWAITING_REVIEW",
            Self::AutoApproved => "AUTO_APPROVED",
            Self::BreakGlassActivated => "BREAK_GLASS_ACTIVATED",
            Self::Approved => "APPROVED",
            Self::Denied => "DENIED",
            Self::Cancelled => "CANCELLED",
            Self::TimedOut => "TIMED_OUT",
            Self::Expired => "EXPIRED",
            Self::Revoked => "REVOKED",
            Self::SessionIssued => "SESSION_ISSUED",
            Self::PostReviewed => "POST_REVIEWED",
            Self::RevocationFallback => "REVOCATION_FALLBACK",
            Self::RevocationRepaired => "REVOCATION_REPAIRED",
            Self::ActivityCovered => "ACTIVITY_COVERED",
            Self::ExtensionRequested => "EXTENSION_REQUESTED",
            Self::ExtensionApproved => "EXTENSION_APPROVED",
            Self::ExtensionDenied => "EXTENSION_DENIED",
            Self::Extended => "EXTENDED",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a grant's chain stands: the last record's sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// The last record's sequence number; 0 before the first record.
    pub seq: u64,
    /// The last record's hash; [`GENESIS_HASH`] before the first record.
    pub hash: String,
}

impl ChainHead {
    /// The head of a chain with no records yet.
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }
}

/// One entry in a grant's audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The grant this record belongs to.
    pub grant_id: GrantId,
    /// Position in the grant's chain, from 1, without gaps.
    pub seq: u64,
    /// When it happened.
    pub at: Timestamp,
    /// Who or what caused it.
    pub actor: Actor,
    /// What happened.
    pub action: AuditAction,
    /// The state before, absent for the record that creates the request.
    pub from: Option<GrantState>,
    /// The state after.
    pub to: GrantState,
    /// Details of the decision: policies, comments, session expiry and so on.
    pub detail: BTreeMap<String, String>,
    /// The hash of the policy set that made the decision, when rules decided.
    pub policy_hash: Option<String>,
    /// The previous record's hash.
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
    /// The writing function's signature over the hash; not part of the hash, so the chain
    /// reads the same with or without it. See [`crate::trust`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<RecordSignature>,
}

/// The parts of a record a transition supplies; the chain supplies the rest.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// When it happened.
    pub at: Timestamp,
    /// Who or what caused it.
    pub actor: Actor,
    /// What happened.
    pub action: AuditAction,
    /// The state before.
    pub from: Option<GrantState>,
    /// The state after.
    pub to: GrantState,
    /// Details of the decision.
    pub detail: BTreeMap<String, String>,
    /// The policy set's hash, when rules decided.
    pub policy_hash: Option<String>,
}

impl AuditRecord {
    /// The record that follows `head` in `grant_id`'s chain.
    pub fn chained(grant_id: &GrantId, head: &ChainHead, entry: AuditEntry) -> Self {
        let mut record = Self {
            grant_id: grant_id.clone(),
            seq: head.seq.saturating_add(1),
            at: entry.at,
            actor: entry.actor,
            action: entry.action,
            from: entry.from,
            to: entry.to,
            detail: entry.detail,
            policy_hash: entry.policy_hash,
            prev_hash: head.hash.clone(),
            hash: String::new(),
            signature: None,
        };
        record.hash = record.compute_hash();
        record
    }

    /// The chain head once this record is appended.
    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }

    /// SHA-256 over the canonical encoding of every field but `hash`, as lower-case hex.
    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(ENCODING_TAG);
        let mut field = |bytes: &[u8]| {
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            h.update(len.to_be_bytes());
            h.update(bytes);
        };
        field(self.grant_id.as_str().as_bytes());
        field(self.seq.to_string().as_bytes());
        field(self.at.unix_seconds().to_string().as_bytes());
        field(self.actor.to_string().as_bytes());
        field(self.action.as_str().as_bytes());
        field(self.from.map(GrantState::as_str).unwrap_or("").as_bytes());
        field(self.to.as_str().as_bytes());
        field(self.detail.len().to_string().as_bytes());
        for (k, v) in &self.detail {
            field(k.as_bytes());
            field(v.as_bytes());
        }
        field(self.policy_hash.as_deref().unwrap_or("").as_bytes());
        field(self.prev_hash.as_bytes());
        hex::encode(h.finalize())
    }
}

/// The first place a chain does not hold together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// A record belongs to another grant.
    #[error("record {seq} belongs to grant `{found}`, not `{expected}`")]
    ForeignRecord {
        /// The record's position.
        seq: u64,
        /// The grant being verified.
        expected: GrantId,
        /// The grant the record names.
        found: GrantId,
    },
    /// A record is missing or out of order.
    #[error("expected record {expected} but found record {found}")]
    Gap {
        /// The sequence number that should come next.
        expected: u64,
        /// The one that came.
        found: u64,
    },
    /// A record's stored hash does not match its contents: it was altered.
    #[error("record {seq} was altered: its contents hash to {computed}, not {stored}")]
    Altered {
        /// The record's position.
        seq: u64,
        /// The hash it carries.
        stored: String,
        /// The hash its contents give.
        computed: String,
    },
    /// A record does not point at its predecessor's hash.
    #[error("record {seq} does not follow record {}: it names {found} as previous, not {expected}", seq - 1)]
    Unlinked {
        /// The record's position.
        seq: u64,
        /// The predecessor's hash.
        expected: String,
        /// The previous hash the record names.
        found: String,
    },
    /// The chain ends before the grant's head: records were dropped from the end.
    #[error("the chain ends at record {found} but the grant's head is record {expected}")]
    Truncated {
        /// The head's sequence number.
        expected: u64,
        /// The last record found.
        found: u64,
    },
    /// The chain's last record is not the grant's head.
    #[error("the last record's hash {found} is not the grant's head {expected}")]
    HeadMismatch {
        /// The head's hash.
        expected: String,
        /// The last record's hash.
        found: String,
    },
}

/// Checks one grant's records, in sequence order, and reports the first broken link.
pub fn verify(grant_id: &GrantId, records: &[AuditRecord]) -> Result<ChainHead, ChainBreak> {
    let mut head = ChainHead::genesis();
    for record in records {
        if &record.grant_id != grant_id {
            return Err(ChainBreak::ForeignRecord {
                seq: record.seq,
                expected: grant_id.clone(),
                found: record.grant_id.clone(),
            });
        }
        let expected = head.seq.saturating_add(1);
        if record.seq != expected {
            return Err(ChainBreak::Gap {
                expected,
                found: record.seq,
            });
        }
        let computed = record.compute_hash();
        if computed != record.hash {
            return Err(ChainBreak::Altered {
                seq: record.seq,
                stored: record.hash.clone(),
                computed,
            });
        }
        if record.prev_hash != head.hash {
            return Err(ChainBreak::Unlinked {
                seq: record.seq,
                expected: head.hash,
                found: record.prev_hash.clone(),
            });
        }
        head = record.head();
    }
    Ok(head)
}

/// Checks the records as [`verify`] does, and also that they end at the grant's own head, so
/// records dropped from the end are noticed too.
pub fn verify_against_head(
    grant_id: &GrantId,
    records: &[AuditRecord],
    grant_head: &ChainHead,
) -> Result<(), ChainBreak> {
    let end = verify(grant_id, records)?;
    if end.seq != grant_head.seq {
        return Err(ChainBreak::Truncated {
            expected: grant_head.seq,
            found: end.seq,
        });
    }
    if end.hash != grant_head.hash {
        return Err(ChainBreak::HeadMismatch {
            expected: grant_head.hash.clone(),
            found: end.hash,
        });
    }
    Ok(())
}

/// A function's signature on an audit record or a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSignature {
    /// Which function signed.
    pub signer: Service,
    /// The key it signed with (the KMS key's ARN).
    pub key_id: String,
    /// The DER-encoded ECDSA P-256 signature, base64.
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Service, UserId};

    fn chain(n: usize) -> (GrantId, Vec<AuditRecord>) {
        let id = GrantId::generate(Timestamp::from_unix_seconds(1_800_000_000));
        let mut head = ChainHead::genesis();
        let mut records = Vec::new();
        for i in 0..n {
            let actor = if i % 2 == 0 {
                Actor::User(UserId::parse("alice").unwrap())
            } else {
                Actor::Service(Service::Approver)
            };
            let record = AuditRecord::chained(
                &id,
                &head,
                AuditEntry {
                    at: Timestamp::from_unix_seconds(1_800_000_000 + i as i64),
                    actor,
                    action: AuditAction::Requested,
                    from: None,
                    to: GrantState::Pending,
                    detail: BTreeMap::from([("n".to_owned(), i.to_string())]),
                    policy_hash: None,
                },
            );
            head = record.head();
            records.push(record);
        }
        (id, records)
    }

    #[test]
    fn an_intact_chain_verifies_to_its_head() {
        let (id, records) = chain(5);
        let head = verify(&id, &records).unwrap();
        assert_eq!(head.seq, 5);
        assert_eq!(head, records[4].head());
        verify_against_head(&id, &records, &head).unwrap();
    }

    #[test]
    fn the_hash_is_stable_across_releases() {
        // Pinned so a change to the encoding cannot slip in unnoticed: exported trails must
        // keep verifying.
        let id = GrantId::parse("0190c0de-0000-7000-8000-000000000001").unwrap();
        let record = AuditRecord::chained(
            &id,
            &ChainHead::genesis(),
            AuditEntry {
                at: Timestamp::from_unix_seconds(1_800_000_000),
                actor: Actor::User(UserId::parse("alice").unwrap()),
                action: AuditAction::Requested,
                from: None,
                to: GrantState::Pending,
                detail: BTreeMap::from([("reason".to_owned(), "debugging INC-1".to_owned())]),
                policy_hash: None,
            },
        );
        assert_eq!(
            record.hash,
            "2a6c037e633e96f9b4589b0902d809e0fd48bce7d95197c33c923831878fd572"
        );
    }

    #[test]
    fn an_altered_field_is_reported_at_its_record() {
        let (id, mut records) = chain(4);
        records[2]
            .detail
            .insert("n".to_owned(), "forged".to_owned());
        assert!(matches!(
            verify(&id, &records),
            Err(ChainBreak::Altered { seq: 3, .. })
        ));
    }

    #[test]
    fn a_recomputed_forgery_breaks_the_next_link() {
        let (id, mut records) = chain(4);
        records[1].actor = Actor::User(UserId::parse("mallory").unwrap());
        records[1].hash = records[1].compute_hash();
        assert!(matches!(
            verify(&id, &records),
            Err(ChainBreak::Unlinked { seq: 3, .. })
        ));
    }

    #[test]
    fn dropped_reordered_and_foreign_records_are_reported() {
        let (id, records) = chain(4);
        let mut dropped = records.clone();
        dropped.remove(1);
        assert_eq!(
            verify(&id, &dropped),
            Err(ChainBreak::Gap {
                expected: 2,
                found: 3
            })
        );
        let mut swapped = records.clone();
        swapped.swap(1, 2);
        assert!(matches!(
            verify(&id, &swapped),
            Err(ChainBreak::Gap {
                expected: 2,
                found: 3
            })
        ));
        let (other, _) = chain(1);
        assert!(matches!(
            verify(&other, &records),
            Err(ChainBreak::ForeignRecord { seq: 1, .. })
        ));
    }

    #[test]
    fn records_dropped_from_the_end_are_caught_by_the_head() {
        let (id, records) = chain(4);
        let head = records[3].head();
        assert_eq!(
            verify_against_head(&id, &records[..3], &head),
            Err(ChainBreak::Truncated {
                expected: 4,
                found: 3
            })
        );
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        let (id, records) = chain(1);
        let mut a = records[0].clone();
        let mut b = records[0].clone();
        a.detail = BTreeMap::from([("ab".to_owned(), "c".to_owned())]);
        b.detail = BTreeMap::from([("a".to_owned(), "bc".to_owned())]);
        assert_ne!(a.compute_hash(), b.compute_hash());
        let _ = id;
    }
}
