//! Keeping every revoked role's policy equal to what its ledger says: derived from the
//! ledger, read back from IAM (so a policy deleted or edited out of band is restored and
//! audited), ordered by the ledger's version, falling back to an issue-time cut-off when the
//! precise policy no longer fits, and the ledger pruned.

use sha2::{Digest, Sha256};

use jit_core::clock::Timestamp;
use jit_core::domain::{Actor, Command, GrantId, GrantState, Service, TargetRole};
use jit_core::revocation::{POLICY_NAME, RevocationPolicy, derive, live};
use jit_core::store::{AppliedPolicy, GrantStore, RoleLedger, StoreError, every_page};
use jit_core::transition::{Retry, TransitionFailure, transition};

use crate::Sweeper;
use crate::iam::{PolicyError, RolePolicies};

/// What reconciling one role did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleOutcome {
    /// Whether the policy was put or deleted.
    pub changed: bool,
    /// Whether the fallback was (newly) applied.
    pub fallback: bool,
    /// Whether IAM held something else than what the ledger calls for, and it was put back.
    pub repaired: bool,
    /// Ledger entries pruned.
    pub pruned: u32,
    /// The grants whose sessions the policy now in place denies.
    pub covered: Vec<GrantId>,
}

/// Why a role could not be reconciled; the next sweep tries again.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReconcileError {
    /// The store failed at a step.
    #[error("{what} `{role}`: {source}")]
    Store {
        /// The step.
        what: &'static str,
        /// The role.
        role: jit_core::domain::RoleArn,
        /// What the store said.
        #[source]
        source: StoreError,
    },
    /// IAM refused or failed.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Revocations kept landing while the role was reconciled.
    #[error(
        "the ledger of `{role}` kept changing while it was reconciled; the next sweep tries again"
    )]
    KeptChanging {
        /// The role.
        role: jit_core::domain::RoleArn,
    },
    /// An audit note could not be appended.
    #[error("auditing `{action}` on `{grant}`: {why}")]
    Audit {
        /// The note.
        action: &'static str,
        /// The grant.
        grant: GrantId,
        /// Why not.
        why: String,
    },
}

/// How often a reconcile derives and applies again when the ledger moved under it.
const RECONCILE_ATTEMPTS: usize = 5;

/// The marker of a role that should carry no revocation policy.
pub(crate) const ABSENT: &str = "absent";

/// Whether IAM's copy of a document says the same as `wanted` (IAM may reorder or reformat).
fn same_document(actual: &str, wanted: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(actual),
        serde_json::from_str::<serde_json::Value>(wanted),
    ) {
        (Ok(a), Ok(w)) => a == w,
        _ => false,
    }
}

fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The marker recorded for an applied policy: the document's digest, or for a fallback its
/// cut-off and the digest of the grants it covers (so the cut-off is kept while they stay).
fn marker(policy: &RevocationPolicy) -> String {
    match policy {
        RevocationPolicy::Absent => ABSENT.to_owned(),
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
    /// The policy `ledger` calls for at `now`, keeping an applied fallback's cut-off while it
    /// covers the same grants.
    fn wanted(&self, ledger: &RoleLedger, now: Timestamp) -> RevocationPolicy {
        let budget = self.config.policy_budget;
        let mut policy = derive(&ledger.entries, now, budget);
        let applied = ledger.applied.as_ref().map(|a| a.marker.as_str());
        if let Some(cutoff) = kept_cutoff(applied, &policy) {
            policy = derive(&ledger.entries, cutoff, budget);
            // Deriving at the cut-off keeps the document; the live set is still today's.
            if let RevocationPolicy::Fallback { grants, .. } = &mut policy {
                *grants = live(&ledger.entries, now)
                    .0
                    .iter()
                    .map(|e| e.grant_id.clone())
                    .collect();
                grants.sort();
                grants.dedup();
            }
        }
        policy
    }

    /// Makes `role` carry exactly the policy its ledger calls for, then prunes the ledger.
    ///
    /// Reconciles of one role are ordered by the ledger's version: the policy is recorded as
    /// applied only if the ledger did not move since it was read, and a reconcile that lost
    /// derives and applies again, so one that read an older ledger never has the last word.
    /// When a document is wanted, IAM's copy is read back and put right if it differs, so a
    /// policy deleted or edited out of band is restored (and audited). Cheap when nothing
    /// changed: two reads and one `GetRolePolicy`, no write.
    pub async fn reconcile(
        &self,
        role: &TargetRole,
        now: Timestamp,
    ) -> Result<RoleOutcome, ReconcileError> {
        let arn = &role.role_arn;
        let fail = |what: &'static str, source: StoreError| ReconcileError::Store {
            what,
            role: arn.clone(),
            source,
        };
        let mut lost_race = false;
        let mut noted_fallback: Option<String> = None;
        for _ in 0..RECONCILE_ATTEMPTS {
            let ledger = self
                .store
                .role_ledger(arn)
                .await
                .map_err(|e| fail("reading the ledger of", e))?;
            if ledger.version == 0 {
                return Ok(RoleOutcome::default());
            }
            let policy = self.wanted(&ledger, now);
            let applied = AppliedPolicy {
                marker: marker(&policy),
                ledger_version: ledger.version,
            };
            let recorded = ledger.applied.as_ref() == Some(&applied);
            let mut outcome = RoleOutcome::default();
            let found = self
                .put_in_place(role, &policy, recorded, lost_race, &mut outcome)
                .await?;
            if let Some(found) = found {
                outcome.repaired = true;
                tracing::error!(role = %arn, found = %found, "REVOCATION POLICY DRIFT: put back what the ledger calls for");
                for entry in live(&ledger.entries, now).0 {
                    let repaired = Command::NoteRevocationRepaired {
                        found: found.clone(),
                    };
                    self.note(&entry.grant_id, repaired, now).await?;
                }
            }
            let newly =
                ledger.applied.as_ref().map(|a| a.marker.as_str()) != Some(applied.marker.as_str());
            if newly
                && noted_fallback.as_deref() != Some(applied.marker.as_str())
                && self.note_fallback(arn, &policy, now).await?
            {
                outcome.fallback = true;
                noted_fallback = Some(applied.marker.clone());
            }
            if !recorded {
                match self.store.record_applied(arn, &applied).await {
                    Ok(()) => {}
                    Err(StoreError::LedgerMoved { .. }) => {
                        // Another revocation landed meanwhile; what was just put may be older
                        // than what another reconcile put. Derive and apply again.
                        lost_race = true;
                        continue;
                    }
                    Err(e) => return Err(fail("recording the applied policy of", e)),
                }
            }
            outcome.covered = match &policy {
                RevocationPolicy::Absent => Vec::new(),
                RevocationPolicy::Precise { grants, .. }
                | RevocationPolicy::Fallback { grants, .. } => grants.clone(),
            };
            for entry in live(&ledger.entries, now).1 {
                self.store
                    .remove_revocation(entry)
                    .await
                    .map_err(|e| fail("pruning the ledger of", e))?;
                outcome.pruned += 1;
            }
            return Ok(outcome);
        }
        Err(ReconcileError::KeptChanging { role: arn.clone() })
    }

    /// Puts or deletes the role's policy unless IAM already holds what `policy` calls for
    /// (a document read back; no document: as `recorded`). What IAM held instead, when it
    /// should have held the recorded document (drift), unless this reconcile lost a race.
    async fn put_in_place(
        &self,
        role: &TargetRole,
        policy: &RevocationPolicy,
        recorded: bool,
        lost_race: bool,
        outcome: &mut RoleOutcome,
    ) -> Result<Option<String>, ReconcileError> {
        let mut found = None;
        let in_place = match policy.document() {
            Some(document) => {
                let actual = self.policies.get(role, POLICY_NAME).await?;
                let same = actual
                    .as_deref()
                    .is_some_and(|a| same_document(a, document));
                if !same && recorded && !lost_race {
                    found = Some(match actual {
                        None => "no revocation policy on the role".to_owned(),
                        Some(_) => "a different revocation policy on the role".to_owned(),
                    });
                }
                same
            }
            None => recorded,
        };
        if !in_place {
            match policy.document() {
                Some(document) => self.policies.put(role, POLICY_NAME, document).await,
                None => self.policies.delete(role, POLICY_NAME).await,
            }?;
            outcome.changed = true;
        }
        Ok(found)
    }

    /// When `policy` is a fallback, says so loudly and notes it on every grant whose sessions
    /// it cuts: the revoked ones and the bystanders. Whether it was one.
    async fn note_fallback(
        &self,
        arn: &jit_core::domain::RoleArn,
        policy: &RevocationPolicy,
        now: Timestamp,
    ) -> Result<bool, ReconcileError> {
        let RevocationPolicy::Fallback {
            issued_before,
            grants,
            precise_chars,
            ..
        } = policy
        else {
            return Ok(false);
        };
        tracing::error!(
            role = %arn,
            grants = grants.len(),
            precise_chars,
            budget = self.config.policy_budget,
            cutoff = %issued_before,
            "REVOCATION FALLBACK: every session of this role issued before the cut-off is denied"
        );
        let fallback = Command::NoteRevocationFallback {
            issued_before: *issued_before,
        };
        let bystanders = self.cut_bystanders(arn, grants, now).await?;
        for id in grants.iter().chain(&bystanders) {
            self.note(id, fallback.clone(), now).await?;
        }
        Ok(true)
    }

    /// The active grants of others on `role` whose live sessions a fallback cut-off at `now`
    /// denies too. Walks the open grants (the due index): a fallback is rare, and every such
    /// person must be told.
    async fn cut_bystanders(
        &self,
        role: &jit_core::domain::RoleArn,
        revoked: &[GrantId],
        now: Timestamp,
    ) -> Result<Vec<GrantId>, ReconcileError> {
        // Every open grant is due within its longest possible life; a year covers them all.
        let horizon = now.plus_secs(366 * 86_400);
        let store = &self.store;
        let open = every_page(|page| async move { store.list_due(horizon, &page).await })
            .await
            .map_err(|source| ReconcileError::Store {
                what: "finding the sessions a fallback cuts on",
                role: role.clone(),
                source,
            })?;
        Ok(open
            .into_iter()
            .filter(|g| {
                g.state == GrantState::Active
                    && &g.role_arn == role
                    && g.sessions_valid_until.is_some_and(|until| until > now)
                    && !revoked.contains(&g.id)
            })
            .map(|g| g.id)
            .collect())
    }

    /// Appends a state-preserving note to one grant's audit trail, retrying over concurrent
    /// changes. A grant that no longer exists needs no note.
    async fn note(
        &self,
        id: &GrantId,
        command: Command,
        now: Timestamp,
    ) -> Result<(), ReconcileError> {
        let name = command.name();
        let sweeper = Actor::Service(Service::Sweeper);
        match transition(&self.store, id, &Retry::STANDARD, |grant| {
            grant.apply(command.clone(), &sweeper, now)
        })
        .await
        {
            Ok(_) | Err(TransitionFailure::NotFound) => Ok(()),
            Err(failure) => Err(ReconcileError::Audit {
                action: name,
                grant: id.clone(),
                why: failure.to_string(),
            }),
        }
    }
}
