//! A store that fails on purpose: wraps a real one and makes chosen calls fail with a chosen
//! error, as a failing or racing database would. Reliability tests are written against it.

use std::sync::{Mutex, PoisonError};

use super::{GrantStore, StoreError};

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
    crate::delegate_grant_store_reads!(inner, before = Self::check);
    crate::delegate_grant_store_writes!(inner, before = Self::check);
}
