//! A store that fails on purpose: wraps a real one and makes the next N writes or reads fail
//! as an unavailable database would. Reliability tests are written against it.

use std::sync::atomic::{AtomicU32, Ordering};

use super::{
    AppliedPolicy, Created, GrantStore, Idempotency, LedgerHead, Page, PageRequest, RoleLedger,
    StoreError,
};
use crate::audit::AuditRecord;
use crate::clock::Timestamp;
use crate::domain::{Change, Creation, Grant, GrantId, RevocationEntry, RoleArn, TargetId, UserId};

/// Wraps `S`; `fail_writes(n)` and `fail_reads(n)` make the next `n` calls of that kind fail.
#[derive(Debug, Default)]
pub struct FailingStore<S> {
    inner: S,
    writes: AtomicU32,
    reads: AtomicU32,
}

impl<S> FailingStore<S> {
    /// Wraps `inner`, failing nothing yet.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            writes: AtomicU32::new(0),
            reads: AtomicU32::new(0),
        }
    }

    /// The next `n` writes (create, commit, remove) fail.
    pub fn fail_writes(&self, n: u32) {
        self.writes.store(n, Ordering::SeqCst);
    }

    /// The next `n` reads fail.
    pub fn fail_reads(&self, n: u32) {
        self.reads.store(n, Ordering::SeqCst);
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn check(counter: &AtomicU32) -> Result<(), StoreError> {
        let failing = counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            Err(StoreError::unavailable("injected failure"))
        } else {
            Ok(())
        }
    }
}

impl<S: GrantStore> GrantStore for FailingStore<S> {
    async fn create(
        &self,
        creation: &Creation,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created, StoreError> {
        Self::check(&self.writes)?;
        self.inner.create(creation, idempotency).await
    }

    async fn get(&self, id: &GrantId) -> Result<Option<Grant>, StoreError> {
        Self::check(&self.reads)?;
        self.inner.get(id).await
    }

    async fn commit(&self, change: &Change) -> Result<(), StoreError> {
        Self::check(&self.writes)?;
        self.inner.commit(change).await
    }

    async fn list_by_requester(
        &self,
        requester: &UserId,
        page: &PageRequest,
    ) -> Result<Page<Grant>, StoreError> {
        Self::check(&self.reads)?;
        self.inner.list_by_requester(requester, page).await
    }

    async fn list_pending_for_target(
        &self,
        target: &TargetId,
        page: &PageRequest,
    ) -> Result<Page<Grant>, StoreError> {
        Self::check(&self.reads)?;
        self.inner.list_pending_for_target(target, page).await
    }

    async fn list_due(
        &self,
        before: Timestamp,
        page: &PageRequest,
    ) -> Result<Page<Grant>, StoreError> {
        Self::check(&self.reads)?;
        self.inner.list_due(before, page).await
    }

    async fn audit_of_grant(
        &self,
        id: &GrantId,
        page: &PageRequest,
    ) -> Result<Page<AuditRecord>, StoreError> {
        Self::check(&self.reads)?;
        self.inner.audit_of_grant(id, page).await
    }

    async fn audit_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        page: &PageRequest,
    ) -> Result<Page<AuditRecord>, StoreError> {
        Self::check(&self.reads)?;
        self.inner.audit_between(from, to, page).await
    }

    async fn revoked_roles(&self) -> Result<Vec<LedgerHead>, StoreError> {
        Self::check(&self.reads)?;
        self.inner.revoked_roles().await
    }

    async fn role_ledger(&self, role: &RoleArn) -> Result<RoleLedger, StoreError> {
        Self::check(&self.reads)?;
        self.inner.role_ledger(role).await
    }

    async fn remove_revocation(&self, entry: &RevocationEntry) -> Result<(), StoreError> {
        Self::check(&self.writes)?;
        self.inner.remove_revocation(entry).await
    }

    async fn record_applied(
        &self,
        role: &RoleArn,
        applied: &AppliedPolicy,
    ) -> Result<(), StoreError> {
        Self::check(&self.writes)?;
        self.inner.record_applied(role, applied).await
    }
}
