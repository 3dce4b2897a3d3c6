//! The scheduled sweep: expire grants past their end, time out requests past their deadline,
//! keep every target role's revocation policy equal to what its ledger says, and prune the
//! ledger. Work is found through the due index (never a scan), pages are settled with bounded
//! concurrency, and the sweep stops before its deadline, leaving the rest to the next run.

use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use jit_core::clock::Timestamp;
use jit_core::domain::{Actor, Command, Grant, GrantState, Service};
use jit_core::policy::Target;
use jit_core::revocation::{POLICY_NAME, RevocationPolicy, derive, live};
use jit_core::store::{GrantStore, PageRequest, StoreError};

use crate::Sweeper;
use crate::iam::RolePolicies;

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Requests moved to TIMED_OUT.
    pub timed_out: u32,
    /// Grants moved to EXPIRED.
    pub expired: u32,
    /// Due items another writer had already settled.
    pub already_settled: u32,
    /// Revocation policies put or deleted.
    pub policies_changed: u32,
    /// Ledger entries pruned.
    pub pruned: u32,
    /// Roles whose policy fell back to the issue-time cut-off.
    pub fallbacks: u32,
    /// What failed; each is retried by the next sweep.
    pub failures: Vec<String>,
    /// False when the deadline stopped it early.
    pub finished: bool,
}

/// What reconciling one role did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleOutcome {
    /// Whether the policy was put or deleted.
    pub changed: bool,
    /// Whether the fallback was (newly) applied.
    pub fallback: bool,
    /// Ledger entries pruned.
    pub pruned: u32,
}

fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The marker recorded for an applied policy: the document's digest, or for a fallback its
/// cut-off and the digest of the grants it covers (so the cut-off is kept while they stay).
fn marker(policy: &RevocationPolicy) -> String {
    match policy {
        RevocationPolicy::Absent => "absent".to_owned(),
        RevocationPolicy::Precise { document, .. } => digest(document),
        RevocationPolicy::Fallback {
            issued_before,
            grants,
            ..
        } => {
            let ids: Vec<&str> = grants.iter().map(|g| g.as_str()).collect();
            format!(
                "fallback:{}:{}",
                issued_before.unix_seconds(),
                digest(&ids.join(","))
            )
        }
    }
}

/// The cut-off of an applied fallback, if `applied` is one covering the same grants.
fn kept_cutoff(applied: Option<&str>, policy: &RevocationPolicy) -> Option<Timestamp> {
    let RevocationPolicy::Fallback { grants, .. } = policy else {
        return None;
    };
    let mut parts = applied?.strip_prefix("fallback:")?.splitn(2, ':');
    let cutoff = parts.next()?.parse().ok()?;
    let ids: Vec<&str> = grants.iter().map(|g| g.as_str()).collect();
    (parts.next()? == digest(&ids.join(","))).then_some(Timestamp::from_unix_seconds(cutoff))
}

impl<S: GrantStore, P: RolePolicies> Sweeper<S, P> {
    /// Sweeps until done or until `deadline` draws near.
    pub async fn sweep(&self, deadline: Instant) -> SweepReport {
        let now = self.clock.now();
        let mut report = SweepReport::default();
        let out_of_time = || Instant::now() + self.config.deadline_margin >= deadline;
        let mut cursor = None;
        loop {
            if out_of_time() {
                return report;
            }
            let request = PageRequest {
                limit: self.config.page_size,
                cursor: cursor.take(),
            };
            let page = match self.store.list_due(now, &request).await {
                Ok(page) => page,
                Err(e) => {
                    report.failures.push(format!("listing due work: {e}"));
                    return report;
                }
            };
            let settled: Vec<_> = futures::stream::iter(page.items)
                .map(|grant| self.settle(grant, now))
                .buffer_unordered(self.config.concurrency)
                .collect()
                .await;
            for result in settled {
                match result {
                    Ok(Some(GrantState::TimedOut)) => report.timed_out += 1,
                    Ok(Some(_)) => report.expired += 1,
                    Ok(None) => report.already_settled += 1,
                    Err(e) => report.failures.push(e),
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let targets: Vec<&Target> = self.rules.targets().collect();
        for target in targets {
            if out_of_time() {
                return report;
            }
            match self.reconcile(target, now).await {
                Ok(outcome) => {
                    report.policies_changed += u32::from(outcome.changed);
                    report.fallbacks += u32::from(outcome.fallback);
                    report.pruned += outcome.pruned;
                }
                Err(e) => report.failures.push(e),
            }
        }
        report.finished = true;
        report
    }

    /// Times out or expires one due grant. `None` when it was no longer due (settled by
    /// another sweep or changed meanwhile).
    async fn settle(&self, grant: Grant, now: Timestamp) -> Result<Option<GrantState>, String> {
        let command = match grant.state {
            GrantState::Pending => Command::TimeOut,
            GrantState::Active => Command::Expire,
            _ => return Ok(None),
        };
        let Ok(change) = grant.apply(command, &Actor::Service(Service::Sweeper), now) else {
            return Ok(None);
        };
        match self.store.commit(&change).await {
            Ok(()) => {
                tracing::info!(grant = %grant.id, state = %change.grant().state, "grant settled");
                Ok(Some(change.grant().state))
            }
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(e) => Err(format!("settling `{}`: {e}", grant.id)),
        }
    }

    /// Makes `target`'s role carry exactly the policy its ledger calls for, then prunes the
    /// ledger. Cheap when nothing changed: one query and one read, no IAM call.
    pub async fn reconcile(&self, target: &Target, now: Timestamp) -> Result<RoleOutcome, String> {
        let role = &target.role_arn;
        let fail = |what: &str, e: &dyn std::fmt::Display| format!("{what} `{role}`: {e}");
        let entries = self
            .store
            .revocations(role)
            .await
            .map_err(|e| fail("reading the ledger of", &e))?;
        let applied = self
            .store
            .applied_policy(role)
            .await
            .map_err(|e| fail("reading the applied policy of", &e))?;
        let mut policy = derive(&entries, now, self.config.policy_budget);
        if let Some(cutoff) = kept_cutoff(applied.as_deref(), &policy) {
            policy = derive(&entries, cutoff, self.config.policy_budget);
            // Deriving at the cut-off keeps the document; the live set is still today's.
            if let RevocationPolicy::Fallback { grants, .. } = &mut policy {
                *grants = live(&entries, now)
                    .0
                    .iter()
                    .map(|e| e.grant_id.clone())
                    .collect();
                grants.sort();
                grants.dedup();
            }
        }
        let mut outcome = RoleOutcome::default();
        let wanted = marker(&policy);
        if applied.as_deref() != Some(wanted.as_str()) {
            match policy.document() {
                Some(document) => self.policies.put(target, POLICY_NAME, document).await,
                None => self.policies.delete(target, POLICY_NAME).await,
            }
            .map_err(|e| e.to_string())?;
            outcome.changed = true;
            if let RevocationPolicy::Fallback {
                issued_before,
                grants,
                precise_chars,
                ..
            } = &policy
            {
                outcome.fallback = true;
                tracing::error!(
                    role = %role,
                    grants = grants.len(),
                    precise_chars,
                    budget = self.config.policy_budget,
                    cutoff = %issued_before,
                    "REVOCATION FALLBACK: every session of this role issued before the cut-off is denied"
                );
                for id in grants {
                    self.note_fallback(id, *issued_before, now).await?;
                }
            }
            self.store
                .record_applied(role, &wanted)
                .await
                .map_err(|e| fail("recording the applied policy of", &e))?;
        }
        for entry in live(&entries, now).1 {
            self.store
                .remove_revocation(entry)
                .await
                .map_err(|e| fail("pruning the ledger of", &e))?;
            outcome.pruned += 1;
        }
        Ok(outcome)
    }

    /// Appends the fallback to one grant's audit trail, retrying over concurrent changes.
    async fn note_fallback(
        &self,
        id: &jit_core::domain::GrantId,
        issued_before: Timestamp,
        now: Timestamp,
    ) -> Result<(), String> {
        for _ in 0..5 {
            let grant = match self.store.get(id).await {
                Ok(Some(grant)) => grant,
                Ok(None) => return Ok(()),
                Err(e) => return Err(format!("auditing the fallback on `{id}`: {e}")),
            };
            let change = grant
                .apply(
                    Command::NoteRevocationFallback { issued_before },
                    &Actor::Service(Service::Sweeper),
                    now,
                )
                .map_err(|e| e.to_string())?;
            match self.store.commit(&change).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(format!("auditing the fallback on `{id}`: {e}")),
            }
        }
        Err(format!("auditing the fallback on `{id}`: it kept changing"))
    }
}
