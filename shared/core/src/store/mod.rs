//! The grant store: the one port every function persists through, and its two adapters.
//!
//! Every write is a single atomic unit: a new request with its first audit record (and its
//! idempotency key), or a transition with its audit record (and any revocation entry). A
//! transition applies only if the stored grant still has the version it was computed from.

mod cursor;
#[cfg(feature = "aws")]
mod dynamo;
#[cfg(any(test, feature = "test-util"))]
mod failing;
#[cfg(any(test, feature = "test-util"))]
mod memory;
mod signed;

use std::future::Future;

use crate::audit::AuditRecord;
use crate::clock::Timestamp;
use crate::domain::{
    Change, Creation, Grant, GrantId, RevocationEntry, RoleArn, TargetId, TargetRole, UserId,
    ValueError,
};
use crate::trust::{Checkpoint, GrantHead};

pub use cursor::Cursor;
#[cfg(feature = "aws")]
pub use dynamo::{DynamoStore, StreamImage, TableLayout};
#[cfg(any(test, feature = "test-util"))]
pub use failing::FailingStore;
#[cfg(any(test, feature = "test-util"))]
pub use memory::MemoryStore;
pub use signed::SignedStore;

/// How many shards the due-time index spreads its writes over. Sweeps query each shard.
pub const DUE_SHARDS: u32 = 8;

/// The due-index shard of a grant: stable, and spread evenly by the id's hash.
pub fn due_shard(id: &GrantId) -> u32 {
    // FNV-1a: tiny, stable across releases and platforms, and plenty for spreading load.
    let hash = id.as_str().bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    u32::try_from(hash % u64::from(DUE_SHARDS)).unwrap_or(0)
}

/// A caller-chosen key that makes retries of one request return its first result.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Checks a key from a client: 1 to 128 letters, digits, `-`, `_` or `.`.
    pub fn parse(value: impl Into<String>) -> Result<Self, ValueError> {
        let value = value.into();
        if value.is_empty() {
            return Err(ValueError::Empty {
                what: "idempotency key",
            });
        }
        if value.len() > 128 {
            return Err(ValueError::TooLong {
                what: "idempotency key",
                max: 128,
                len: value.chars().count(),
            });
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(ValueError::Malformed {
                what: "idempotency key",
                value,
                rule: "letters, digits, -, _ and . only",
            });
        }
        Ok(Self(value))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An idempotency key as stored: scoped to the caller, tied to what was asked, and kept for a
/// while.
#[derive(Debug, Clone)]
pub struct Idempotency {
    /// The client's key.
    pub key: IdempotencyKey,
    /// Whose key it is: the same key from another caller is a different key.
    pub caller: UserId,
    /// A digest of what was asked, so a reused key with a different request is caught.
    pub fingerprint: String,
    /// When the key may be forgotten.
    pub expires_at: Timestamp,
    /// When it is used; an expired key that DynamoDB's TTL has not removed yet is reusable.
    pub now: Timestamp,
}

/// What `create` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// A new request was stored.
    New(Grant),
    /// The idempotency key was used before: this is the request it created then, as it is now.
    Replayed(Grant),
}

impl Created {
    /// The request, new or replayed.
    pub fn grant(&self) -> &Grant {
        match self {
            Self::New(g) | Self::Replayed(g) => g,
        }
    }
}

/// How many results a page holds, and where it starts.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// At most this many items (clamped to 1..=[`PageRequest::MAX_LIMIT`]).
    pub limit: u32,
    /// Where the previous page left off.
    pub cursor: Option<Cursor>,
}

impl PageRequest {
    /// The largest page a caller may ask for.
    pub const MAX_LIMIT: u32 = 100;

    /// The first page, of at most `limit` items.
    pub fn first(limit: u32) -> Self {
        Self {
            limit,
            cursor: None,
        }
    }

    /// The page after `cursor`.
    pub fn after(limit: u32, cursor: Cursor) -> Self {
        Self {
            limit,
            cursor: Some(cursor),
        }
    }

    fn clamped_limit(&self) -> u32 {
        self.limit.clamp(1, Self::MAX_LIMIT)
    }
}

/// One page of results.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items, in the query's order.
    pub items: Vec<T>,
    /// Where to continue, if there may be more.
    pub next: Option<Cursor>,
}

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

/// Why the store refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A checkpoint for this period exists already (another sweep wrote it first).
    #[error("checkpoint {seq} exists already")]
    CheckpointTaken {
        /// The checkpoint's position.
        seq: u64,
    },
    /// The grant changed since it was read (or the change raced another): read it again.
    #[error("request `{id}` was changed by someone else at the same time; read it again and retry")]
    Conflict {
        /// The grant.
        id: GrantId,
    },
    /// The requester already has an open request or active grant for this target.
    #[error("you already have an open request or active grant for this target: `{existing}`")]
    AlreadyOpen {
        /// The open one.
        existing: GrantId,
    },
    /// A grant with this id exists already.
    #[error("request `{id}` already exists")]
    AlreadyExists {
        /// The grant.
        id: GrantId,
    },
    /// The idempotency key was used before for a different request.
    #[error("idempotency key `{key}` was already used for a different request")]
    IdempotencyKeyReused {
        /// The key.
        key: String,
    },
    /// A role's revocation ledger changed since it was read: derive its policy again.
    #[error(
        "the revocation ledger of `{role}` changed while its policy was applied; derive it again"
    )]
    LedgerMoved {
        /// The role.
        role: RoleArn,
    },
    /// A cursor that this query did not hand out.
    #[error("the page cursor is not valid for this query; start from the first page")]
    BadCursor,
    /// A stored item that cannot be read back; data was written outside this code.
    #[error("stored item `{key}` cannot be read: {why}")]
    Corrupt {
        /// The item's key.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// The database could not be reached, timed out, throttled, or a race a retry resolves:
    /// nothing was changed, and retrying helps.
    #[error("the database is unavailable ({cause}); nothing was changed, try again")]
    Unavailable {
        /// What went wrong.
        #[source]
        cause: Cause,
    },
    /// The database refused the call in a way retrying cannot fix: the function's role lacks a
    /// permission, the table or an index does not exist, the request is malformed. The
    /// deployment needs fixing.
    #[error(
        "the database refused the call ({cause}); retrying will not help, the deployment needs fixing"
    )]
    Refused {
        /// What the database said.
        #[source]
        cause: Cause,
    },
}

impl StoreError {
    /// A passing failure with `message`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable {
            cause: Cause::message(message),
        }
    }

    /// Whether a retry can help: a passing failure or a conflicting change.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. } | Self::Conflict { .. } | Self::LedgerMoved { .. }
        )
    }
}

/// Why a call to the database failed, kept whole: the service's error code when it gave one,
/// a readable description, and the underlying error as the source.
#[derive(Clone)]
pub struct Cause {
    code: Option<String>,
    text: String,
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

impl Cause {
    /// A cause that is only a message.
    pub fn message(text: impl Into<String>) -> Self {
        Self {
            code: None,
            text: text.into(),
            source: None,
        }
    }

    /// A cause from an error, with the service's error code if it gave one.
    pub fn new(
        code: Option<&str>,
        text: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            code: code.map(str::to_owned),
            text: text.into(),
            source: Some(std::sync::Arc::new(source)),
        }
    }

    /// The service's error code, such as `AccessDeniedException`.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// An AWS SDK error (of any service), kept whole, and whether a retry can help: the
    /// service unreachable, timed out, a 5xx, or one of its `transient_codes`. A request that
    /// could not even be built never is.
    #[cfg(feature = "aws")]
    pub(crate) fn of_sdk_error<E>(
        e: aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
        transient_codes: &[&str],
    ) -> (Self, bool)
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
    {
        use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
        let text = DisplayErrorContext(&e).to_string();
        let (code, transient) = match &e {
            SdkError::ServiceError(service) => {
                let code = service.err().code().map(str::to_owned);
                let transient = service.raw().status().as_u16() >= 500
                    || code
                        .as_deref()
                        .is_some_and(|c| transient_codes.contains(&c));
                (code, transient)
            }
            SdkError::ConstructionFailure(_) => (None, false),
            _ => (None, true),
        };
        (Self::new(code.as_deref(), text, e), transient)
    }
}

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cause")
            .field("code", &self.code)
            .field("text", &self.text)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Causes are equal when they say the same: the source is kept for logs, not compared.
impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code && self.text == other.text
    }
}

impl Eq for Cause {}

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

/// Implements every read of [`GrantStore`] (and the ledger upkeep the sweeper does) by passing
/// it to `self.$inner`, for wrappers that only change how writes are made: inside an
/// `impl GrantStore for ...` block, next to the wrapper's own `create`, `commit` and
/// `put_checkpoint`.
#[macro_export]
macro_rules! delegate_grant_store_reads {
    ($inner:ident) => {
        async fn get(
            &self,
            id: &$crate::domain::GrantId,
        ) -> Result<Option<$crate::domain::Grant>, $crate::store::StoreError> {
            self.$inner.get(id).await
        }
        async fn evidence(
            &self,
            id: &$crate::domain::GrantId,
        ) -> Result<
            Option<($crate::domain::Grant, Vec<$crate::audit::AuditRecord>)>,
            $crate::store::StoreError,
        > {
            self.$inner.evidence(id).await
        }
        async fn heads(
            &self,
            ids: &[$crate::domain::GrantId],
        ) -> Result<Vec<$crate::trust::GrantHead>, $crate::store::StoreError> {
            self.$inner.heads(ids).await
        }
        async fn latest_checkpoint(
            &self,
        ) -> Result<Option<$crate::trust::Checkpoint>, $crate::store::StoreError> {
            self.$inner.latest_checkpoint().await
        }
        async fn checkpoints_between(
            &self,
            from: $crate::clock::Timestamp,
            to: $crate::clock::Timestamp,
        ) -> Result<Vec<$crate::trust::Checkpoint>, $crate::store::StoreError> {
            self.$inner.checkpoints_between(from, to).await
        }
        async fn list_by_requester(
            &self,
            requester: &$crate::domain::UserId,
            page: &$crate::store::PageRequest,
        ) -> Result<$crate::store::Page<$crate::domain::Grant>, $crate::store::StoreError> {
            self.$inner.list_by_requester(requester, page).await
        }
        async fn list_pending_for_target(
            &self,
            target: &$crate::domain::TargetId,
            page: &$crate::store::PageRequest,
        ) -> Result<$crate::store::Page<$crate::domain::Grant>, $crate::store::StoreError> {
            self.$inner.list_pending_for_target(target, page).await
        }
        async fn list_due(
            &self,
            before: $crate::clock::Timestamp,
            page: &$crate::store::PageRequest,
        ) -> Result<$crate::store::Page<$crate::domain::Grant>, $crate::store::StoreError> {
            self.$inner.list_due(before, page).await
        }
        async fn audit_of_grant(
            &self,
            id: &$crate::domain::GrantId,
            page: &$crate::store::PageRequest,
        ) -> Result<$crate::store::Page<$crate::audit::AuditRecord>, $crate::store::StoreError> {
            self.$inner.audit_of_grant(id, page).await
        }
        async fn audit_between(
            &self,
            from: $crate::clock::Timestamp,
            to: $crate::clock::Timestamp,
            page: &$crate::store::PageRequest,
        ) -> Result<$crate::store::Page<$crate::audit::AuditRecord>, $crate::store::StoreError> {
            self.$inner.audit_between(from, to, page).await
        }
        async fn revoked_roles(
            &self,
        ) -> Result<Vec<$crate::store::LedgerHead>, $crate::store::StoreError> {
            self.$inner.revoked_roles().await
        }
        async fn role_ledger(
            &self,
            role: &$crate::domain::RoleArn,
        ) -> Result<$crate::store::RoleLedger, $crate::store::StoreError> {
            self.$inner.role_ledger(role).await
        }
        async fn remove_revocation(
            &self,
            entry: &$crate::domain::RevocationEntry,
        ) -> Result<(), $crate::store::StoreError> {
            self.$inner.remove_revocation(entry).await
        }
    };
}

/// The audit-index key of a record: time, then grant, then sequence, as one sortable string.
fn audit_sort_key(record: &AuditRecord) -> String {
    format!(
        "{:012}#{}#{:010}",
        record.at.unix_seconds().max(0),
        record.grant_id,
        record.seq
    )
}

/// The first second of each UTC day that `[from, to)` touches.
fn days_between(from: Timestamp, to: Timestamp) -> impl Iterator<Item = Timestamp> {
    const DAY: i64 = 86_400;
    let first = from.unix_seconds().div_euclid(DAY);
    let last = to.unix_seconds().saturating_sub(1).div_euclid(DAY);
    let last = if to > from { last } else { first - 1 };
    (first..=last).map(|d| Timestamp::from_unix_seconds(d * DAY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_shards_spread_and_stay_put() {
        let mut counts = [0_u32; DUE_SHARDS as usize];
        for i in 0..800 {
            let id = GrantId::generate(Timestamp::from_unix_seconds(1_800_000_000 + i));
            counts[due_shard(&id) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 50), "uneven spread: {counts:?}");
        let id = GrantId::parse("0190c0de-0000-7000-8000-000000000001").unwrap();
        assert_eq!(due_shard(&id), due_shard(&id.clone()));
    }

    #[test]
    fn days_cover_exactly_the_half_open_range() {
        let t = |s| Timestamp::from_unix_seconds(s);
        let days: Vec<_> = days_between(t(86_400 - 1), t(2 * 86_400)).collect();
        assert_eq!(days, [t(0), t(86_400)]);
        let days: Vec<_> = days_between(t(86_400), t(86_401)).collect();
        assert_eq!(days, [t(86_400)]);
        assert_eq!(days_between(t(10), t(10)).count(), 0);
    }

    #[test]
    fn idempotency_keys_cannot_smuggle_separators() {
        assert!(IdempotencyKey::parse("retry-1.a_B").is_ok());
        assert!(IdempotencyKey::parse("a#b").is_err());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("k".repeat(129)).is_err());
    }
}
