//! The revocation ledger as the store hands it out: per role, what was revoked and what was
//! last applied.

use crate::domain::{RevocationEntry, TargetRole};

/// What a role's revocation policy was last made: a marker of the document (its digest, or
/// its absence), and the ledger version it was derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedPolicy {
    /// The document's marker, as the sweeper computes it.
    pub marker: String,
    /// The ledger version the document was derived from.
    pub ledger_version: u64,
}

/// A role with a revocation ledger, as the registry of such roles knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerHead {
    /// The role, and how to reach it.
    pub role: TargetRole,
    /// Bumped by every transaction that adds to the role's ledger.
    pub version: u64,
    /// What was last applied to the role, if anything.
    pub applied: Option<AppliedPolicy>,
}

/// One role's revocation ledger, read version first, so every entry the version counts is in
/// `entries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleLedger {
    /// The ledger's version; 0 for a role that never had an entry.
    pub version: u64,
    /// What was last applied to the role, if anything.
    pub applied: Option<AppliedPolicy>,
    /// The entries, pruned ones excluded.
    pub entries: Vec<RevocationEntry>,
}
