//! Passing a store's calls through a wrapper: every call the wrapper does not change goes to
//! the wrapped store, after an optional check of the wrapper's own.

/// Implements every read of [`GrantStore`] (and the ledger upkeep the sweeper does) by passing
/// it to `self.$inner`, for wrappers that only change how writes are made: inside an
/// `impl GrantStore for ...` block, next to the wrapper's own `create`, `commit`,
/// `put_checkpoint` and `record_applied`.
///
/// With `before = path`, each call first runs `path(self, write)?`, `write` saying whether the
/// call changes the table (`remove_revocation` does, and `pseudonym` may).
///
/// [`GrantStore`]: crate::store::GrantStore
#[macro_export]
macro_rules! delegate_grant_store_reads {
    ($inner:ident) => {
        $crate::delegate_grant_store_reads!($inner, before = $crate::store::proceed);
    };
    ($inner:ident, before = $before:path) => {
        $crate::delegate_grant_store_calls! { $inner, $before;
            false get(id: &$crate::domain::GrantId) -> Option<$crate::domain::Grant>;
            false evidence(id: &$crate::domain::GrantId)
                -> Option<($crate::domain::Grant, Vec<$crate::domain::audit::AuditRecord>)>;
            false heads(ids: &[$crate::domain::GrantId]) -> Vec<$crate::trust::GrantHead>;
            false latest_checkpoint() -> Option<$crate::trust::Checkpoint>;
            false checkpoints_between(from: $crate::clock::Timestamp, to: $crate::clock::Timestamp)
                -> Vec<$crate::trust::Checkpoint>;
            false list_by_requester(requester: &$crate::domain::UserId, page: &$crate::store::PageRequest)
                -> $crate::store::Page<$crate::domain::Grant>;
            false list_pending_for_target(target: &$crate::domain::TargetId, page: &$crate::store::PageRequest)
                -> $crate::store::Page<$crate::domain::Grant>;
            false list_due(before: $crate::clock::Timestamp, page: &$crate::store::PageRequest)
                -> $crate::store::Page<$crate::domain::Grant>;
            false audit_of_grant(id: &$crate::domain::GrantId, page: &$crate::store::PageRequest)
                -> $crate::store::Page<$crate::domain::audit::AuditRecord>;
            false audit_between(
                from: $crate::clock::Timestamp,
                to: $crate::clock::Timestamp,
                page: &$crate::store::PageRequest
            ) -> $crate::store::Page<$crate::domain::audit::AuditRecord>;
            false revoked_roles() -> Vec<$crate::store::LedgerHead>;
            false role_ledger(role: &$crate::domain::RoleArn) -> $crate::store::RoleLedger;
            true remove_revocation(entry: &$crate::domain::RevocationEntry) -> ();
            true pseudonym(user: &$crate::domain::UserId) -> String;
        }
    };
}

/// Implements [`GrantStore`]'s writes that a wrapper does not change, by passing them to
/// `self.$inner` after `before(self, true)?`: with [`delegate_grant_store_reads!`], a wrapper
/// that only watches calls.
///
/// [`GrantStore`]: crate::store::GrantStore
#[macro_export]
macro_rules! delegate_grant_store_writes {
    ($inner:ident, before = $before:path) => {
        $crate::delegate_grant_store_calls! { $inner, $before;
            true create(
                creation: &$crate::domain::Creation,
                idempotency: Option<&$crate::store::Idempotency>
            ) -> $crate::store::Created;
            true create_bundle(creations: &[$crate::domain::Creation]) -> Vec<$crate::domain::Grant>;
            true commit(change: &$crate::domain::Change) -> ();
            true put_checkpoint(checkpoint: &$crate::trust::Checkpoint) -> ();
            true record_applied(role: &$crate::domain::RoleArn, applied: &$crate::store::AppliedPolicy)
                -> ();
        }
    };
}

/// Passes the listed calls of [`GrantStore`] to `self.$inner`, one per line of
/// `write name(arguments) -> output;`, each after `before(self, write)?`: for a wrapper that
/// passes on only some of the calls the two macros above cover (pass
/// [`proceed`](crate::store::proceed) to check nothing).
///
/// [`GrantStore`]: crate::store::GrantStore
#[macro_export]
macro_rules! delegate_grant_store_calls {
    ($inner:ident, $before:path; $($write:literal $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $out:ty;)*) => {
        $(
            async fn $name(&self, $($arg: $ty),*) -> Result<$out, $crate::store::StoreError> {
                $before(self, $write)?;
                self.$inner.$name($($arg),*).await
            }
        )*
    };
}

/// Implements every call of [`ActivityStore`] by passing it to `self.$inner`, inside an
/// `impl ActivityStore for ...` block: for wrappers that change nothing of activity (it is
/// CloudTrail's, as delivered, and not signed).
///
/// [`ActivityStore`]: crate::store::ActivityStore
#[macro_export]
macro_rules! delegate_activity_store {
    ($inner:ident) => {
        $crate::delegate_grant_store_calls! { $inner, $crate::store::proceed;
            true record_activity(grant: &$crate::domain::GrantId, activity: &$crate::activity::Activity)
                -> $crate::store::Recorded;
            true record_unattributed(event: &$crate::activity::UnattributedEvent)
                -> $crate::store::Recorded;
            false activity_of_grant(grant: &$crate::domain::GrantId, page: &$crate::store::PageRequest)
                -> $crate::store::Page<$crate::activity::Activity>;
            false activity_count(grant: &$crate::domain::GrantId) -> $crate::store::ActivityCount;
            false activity_event(
                grant: &$crate::domain::GrantId,
                time: $crate::clock::Timestamp,
                event_id: &str
            ) -> Option<$crate::activity::Activity>;
            true refused_recently(grant: &$crate::domain::GrantId, at: $crate::clock::Timestamp, count_one: bool)
                -> u32;
            false unattributed_on(day: &str, page: &$crate::store::PageRequest)
                -> $crate::store::Page<$crate::activity::UnattributedEvent>;
        }
    };
}
