//! The grant store: the one port every function persists through, and its two adapters.
//!
//! Every write is a single atomic unit: a new request with its first audit record (and its
//! idempotency key), or a transition with its audit record (and any revocation entry). A
//! transition applies only if the stored grant still has the version it was computed from.

mod activity;
#[cfg(any(test, feature = "test-util", feature = "aws"))]
mod adapter;
mod cursor;
mod delegate;
mod due;
#[cfg(feature = "aws")]
mod dynamo;
mod error;
#[cfg(any(test, feature = "test-util"))]
mod failing;
mod idempotency;
mod ledger;
#[cfg(any(test, feature = "test-util"))]
mod memory;
mod page;
mod signed;

use std::future::Future;

use crate::clock::Timestamp;
use crate::domain::audit::AuditRecord;
use crate::domain::{Change, Creation, Grant, GrantId, RevocationEntry, RoleArn, TargetId, UserId};
use crate::trust::{Checkpoint, GrantHead};

#[cfg(any(test, feature = "test-util", feature = "aws"))]
pub use activity::cursor_after;
pub use activity::{
    ACTIVITY_CAP_PER_SHARD, ACTIVITY_SHARDS, ActivityCount, ActivityStore, EVENT_PREFIX,
    REFUSED_WINDOW_MINUTES, Recorded, activity_shard, activity_sort_key, event_sort_key,
};
#[cfg(any(test, feature = "test-util", feature = "aws"))]
pub(crate) use adapter::{Position, audit_sort_key, days_between};
pub use cursor::Cursor;
pub use due::{DUE_SHARDS, due_shard};
#[cfg(feature = "aws")]
pub use dynamo::{DynamoStore, PostedMessage, Signed, StreamImage, TableLayout};
pub use error::StoreError;
#[cfg(any(test, feature = "test-util"))]
pub use failing::FailingStore;
pub use idempotency::{Created, Idempotency, IdempotencyKey};
pub use ledger::{AppliedPolicy, LedgerHead, RoleLedger};
#[cfg(any(test, feature = "test-util"))]
pub use memory::MemoryStore;
pub use page::{Page, PageRequest, every_page};
pub use signed::SignedStore;

/// The store port: everything the functions persist or read.
pub trait GrantStore: Send + Sync {
    /// Stores a new request with its first audit record, in one atomic write. With an
    /// idempotency key already used by the same caller for the same request, returns that
    /// request instead and writes nothing. A person has at most one open (pending or active)
    /// request per target: another one is refused with [`StoreError::AlreadyOpen`].
    fn create(
        &self,
        creation: &Creation,
        idempotency: Option<&Idempotency>,
    ) -> impl Future<Output = Result<Created, StoreError>> + Send;

    /// Stores the items of one request of several targets, each with its first audit
    /// record, in one atomic write: all of them or none. An item for a target the requester
    /// already has open refuses the whole write with [`StoreError::AlreadyOpen`].
    fn create_bundle(
        &self,
        creations: &[Creation],
    ) -> impl Future<Output = Result<Vec<Grant>, StoreError>> + Send;

    /// One grant, if it exists.
    fn get(&self, id: &GrantId) -> impl Future<Output = Result<Option<Grant>, StoreError>> + Send;

    /// Applies a transition in one atomic write: the grant (if still at the expected version),
    /// its audit record, any revocation entry and, when the grant closes, the release of the
    /// requester's open slot for the target; or nothing at all.
    fn commit(&self, change: &Change) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A grant and its whole audit chain in order, read together (one query on the grant's
    /// partition, where the DynamoDB adapter keeps both): what is checked before acting.
    fn evidence(
        &self,
        id: &GrantId,
    ) -> impl Future<Output = Result<Option<(Grant, Vec<AuditRecord>)>, StoreError>> + Send;

    /// The chain heads of the grants `ids`, for exports; grants that do not exist are left out.
    fn heads(
        &self,
        ids: &[GrantId],
    ) -> impl Future<Output = Result<Vec<GrantHead>, StoreError>> + Send;

    /// The latest checkpoint, if one was written.
    fn latest_checkpoint(
        &self,
    ) -> impl Future<Output = Result<Option<Checkpoint>, StoreError>> + Send;

    /// The checkpoints of periods that overlap `[from, to)`, oldest first.
    fn checkpoints_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<Vec<Checkpoint>, StoreError>> + Send;

    /// Stores a checkpoint, unless its period has one already
    /// ([`StoreError::CheckpointTaken`]).
    fn put_checkpoint(
        &self,
        checkpoint: &Checkpoint,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The pseudonym `user` has in the audit bucket: a random id made on first use and kept
    /// (`PSEUDONYM#<user>`), the same every time after. Deleting that item answers an erasure
    /// request: the bucket's events can no longer be tied to the person.
    fn pseudonym(&self, user: &UserId) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// A person's requests, newest first.
    fn list_by_requester(
        &self,
        requester: &UserId,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Grant>, StoreError>> + Send;

    /// Pending requests for a target, oldest first (the order reviewers work in).
    fn list_pending_for_target(
        &self,
        target: &TargetId,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Grant>, StoreError>> + Send;

    /// Open grants due at or before `before` (pending past their decision deadline, active past
    /// their end), shard by shard, each shard by due time.
    fn list_due(
        &self,
        before: Timestamp,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Grant>, StoreError>> + Send;

    /// One grant's audit records, in chain order.
    fn audit_of_grant(
        &self,
        id: &GrantId,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<AuditRecord>, StoreError>> + Send;

    /// All audit records with `from <= at < to`, by time, then grant, then sequence.
    fn audit_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<AuditRecord>, StoreError>> + Send;

    /// Every role that ever had a revocation ledger entry, with its ledger version and what
    /// was last applied to it. The sweep walks these, whatever the targets file says now.
    fn revoked_roles(&self) -> impl Future<Output = Result<Vec<LedgerHead>, StoreError>> + Send;

    /// One role's revocation ledger: its version, then its entries, then what was last
    /// applied. A role never revoked reads as version 0 with nothing in it.
    fn role_ledger(
        &self,
        role: &RoleArn,
    ) -> impl Future<Output = Result<RoleLedger, StoreError>> + Send;

    /// Removes a ledger entry whose sessions have all expired (an entry changed since it was
    /// read stays). Pruning does not change the ledger's version: a lapsed entry never changes
    /// the policy.
    fn remove_revocation(
        &self,
        entry: &RevocationEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records that `role` now carries the policy `applied` describes, only if the ledger is
    /// still at `applied.ledger_version`; otherwise [`StoreError::LedgerMoved`], and the
    /// caller derives and applies again. This orders the reconciles of one role: one that
    /// read an older ledger can never record its document as the current one.
    fn record_applied(
        &self,
        role: &RoleArn,
        applied: &AppliedPolicy,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The check of a wrapper that checks nothing before passing a call on, for
/// [`delegate_grant_store_reads!`](crate::delegate_grant_store_reads) and its kin.
pub fn proceed<T: ?Sized>(_wrapper: &T, _write: bool) -> Result<(), StoreError> {
    Ok(())
}
