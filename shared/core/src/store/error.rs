//! Why the store refused or failed.

use crate::cause::Cause;
use crate::domain::{GrantId, RoleArn};

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
