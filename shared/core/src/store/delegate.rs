//! Passing a store's reads through a wrapper that only changes how writes are made.

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
            Option<(
                $crate::domain::Grant,
                Vec<$crate::domain::audit::AuditRecord>,
            )>,
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
        ) -> Result<
            $crate::store::Page<$crate::domain::audit::AuditRecord>,
            $crate::store::StoreError,
        > {
            self.$inner.audit_of_grant(id, page).await
        }
        async fn audit_between(
            &self,
            from: $crate::clock::Timestamp,
            to: $crate::clock::Timestamp,
            page: &$crate::store::PageRequest,
        ) -> Result<
            $crate::store::Page<$crate::domain::audit::AuditRecord>,
            $crate::store::StoreError,
        > {
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
