//! A store that fails on purpose: wraps a real one and makes chosen calls fail with a chosen
//! error, as a failing or racing database would. Reliability tests are written against it.

use std::sync::{Mutex, PoisonError};

use super::{
    AppliedPolicy, Created, GrantStore, Idempotency, LedgerHead, Page, PageRequest, RoleLedger,
    StoreError,
};
use crate::clock::Timestamp;
use crate::domain::audit::AuditRecord;
use crate::domain::{Change, Creation, Grant, GrantId, RevocationEntry, RoleArn, TargetId, UserId};
use crate::trust::{Checkpoint, GrantHead};

/// One planned failure: which calls it applies to, how many of those pass first, how many
/// then fail, and with what.
#[derive(Debug, Clone)]
struct Plan {
    writes_only: bool,
    pass_first: u32,
    failures: u32,
    error: StoreError,
}

/// Wraps `S` and fails calls as planned: `fail_nth(k, e)` fails the k-th call from now,
/// `fail_writes_with(n, e)` the next `n` writes, `fail_writes(n)` the next `n` writes as an
/// unavailable database would.
#[derive(Debug, Default)]
pub struct FailingStore<S> {
    inner: S,
    plans: Mutex<Vec<Plan>>,
}

impl<S> FailingStore<S> {
    /// Wraps `inner`, failing nothing yet.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            plans: Mutex::new(Vec::new()),
        }
    }

    /// The next `n` writes (create, commit, ledger and marker writes) fail as an unavailable
    /// database would.
    pub fn fail_writes(&self, n: u32) {
        self.fail_writes_with(n, StoreError::unavailable("injected failure"));
    }

    /// The next `n` writes fail with `error` (a `Conflict` makes every commit lose its race).
    pub fn fail_writes_with(&self, n: u32, error: StoreError) {
        self.plan(Plan {
            writes_only: true,
            pass_first: 0,
            failures: n,
            error,
        });
    }

    /// The `k`-th call from now (1 is the next), read or write, fails with `error`.
    pub fn fail_nth(&self, k: u32, error: StoreError) {
        self.plan(Plan {
            writes_only: false,
            pass_first: k.saturating_sub(1),
            failures: 1,
            error,
        });
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn plan(&self, plan: Plan) {
        self.plans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(plan);
    }

    /// Counts one call against the plans; the planned error if this call is to fail.
    fn check(&self, write: bool) -> Result<(), StoreError> {
        let mut plans = self.plans.lock().unwrap_or_else(PoisonError::into_inner);
        let mut outcome = Ok(());
        for plan in plans.iter_mut().filter(|p| write || !p.writes_only) {
            if plan.pass_first > 0 {
                plan.pass_first -= 1;
            } else if plan.failures > 0 && outcome.is_ok() {
                plan.failures -= 1;
                outcome = Err(plan.error.clone());
            }
        }
        plans.retain(|p| p.failures > 0);
        outcome
    }
}

impl<S: GrantStore> GrantStore for FailingStore<S> {
    async fn create(
        &self,
        creation: &Creation,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created, StoreError> {
        self.check(true)?;
        self.inner.create(creation, idempotency).await
    }

    async fn get(&self, id: &GrantId) -> Result<Option<Grant>, StoreError> {
        self.check(false)?;
        self.inner.get(id).await
    }

    async fn commit(&self, change: &Change) -> Result<(), StoreError> {
        self.check(true)?;
        self.inner.commit(change).await
    }

    async fn list_by_requester(
        &self,
        requester: &UserId,
        page: &PageRequest,
    ) -> Result<Page<Grant>, StoreError> {
        self.check(false)?;
        self.inner.list_by_requester(requester, page).await
    }

    async fn evidence(
        &self,
        id: &GrantId,
    ) -> Result<Option<(Grant, Vec<AuditRecord>)>, StoreError> {
        self.check(false)?;
        self.inner.evidence(id).await
    }

    async fn heads(&self, ids: &[GrantId]) -> Result<Vec<GrantHead>, StoreError> {
        self.check(false)?;
        self.inner.heads(ids).await
    }

    async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        self.check(false)?;
        self.inner.latest_checkpoint().await
    }

    async fn checkpoints_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        self.check(false)?;
        self.inner.checkpoints_between(from, to).await
    }

    async fn put_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        self.check(true)?;
        self.inner.put_checkpoint(checkpoint).await
    }

    async fn list_pending_for_target(
        &self,
        target: &TargetId,
        page: &PageRequest,
    ) -> Result<Page<Grant>, StoreError> {
        self.check(false)?;
        self.inner.list_pending_for_target(target, page).await
    }

    async fn list_due(
        &self,
        before: Timestamp,
        page: &PageRequest,
    ) -> Result<Page<Grant>, StoreError> {
        self.check(false)?;
        self.inner.list_due(before, page).await
    }

    async fn audit_of_grant(
        &self,
        id: &GrantId,
        page: &PageRequest,
    ) -> Result<Page<AuditRecord>, StoreError> {
        self.check(false)?;
        self.inner.audit_of_grant(id, page).await
    }

    async fn audit_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        page: &PageRequest,
    ) -> Result<Page<AuditRecord>, StoreError> {
        self.check(false)?;
        self.inner.audit_between(from, to, page).await
    }

    async fn revoked_roles(&self) -> Result<Vec<LedgerHead>, StoreError> {
        self.check(false)?;
        self.inner.revoked_roles().await
    }

    async fn role_ledger(&self, role: &RoleArn) -> Result<RoleLedger, StoreError> {
        self.check(false)?;
        self.inner.role_ledger(role).await
    }

    async fn remove_revocation(&self, entry: &RevocationEntry) -> Result<(), StoreError> {
        self.check(true)?;
        self.inner.remove_revocation(entry).await
    }

    async fn record_applied(
        &self,
        role: &RoleArn,
        applied: &AppliedPolicy,
    ) -> Result<(), StoreError> {
        self.check(true)?;
        self.inner.record_applied(role, applied).await
    }
}
