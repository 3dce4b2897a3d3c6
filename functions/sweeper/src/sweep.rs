//! The scheduled sweep: expire grants past their end, time out requests past their deadline,
//! keep every revoked role's policy equal to what its ledger says (read back from IAM, so a
//! policy deleted or edited out of band is restored), and prune the ledger. Work is found
//! through the due index and the revoked-roles registry (never a scan), pages are settled with
//! bounded concurrency, and the sweep stops before its deadline, leaving the rest to the next
//! run.

use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;

use jit_core::cases::{Cases, CoverWhen};
use jit_core::clock::Timestamp;
use jit_core::domain::audit::{AuditAction, AuditRecord};
use jit_core::domain::{Actor, Command, Grant, GrantDuration, GrantId, GrantState, Service};
use jit_core::store::{ActivityStore, GrantStore, PageRequest, StoreError, every_page};
use std::collections::{BTreeMap, BTreeSet};

use jit_core::archive::{
    ArchivedPeriod, Subject, archived_digest, checkpoint_key, period_object, read_period_object,
    sha256_hex,
};
use jit_core::trust::Checkpoint;

use crate::Sweeper;
use crate::archive::{AuditBucket, Put};
use crate::revoke::NO_KEYS;

/// How far back from each of its marks (settled, rechecked, each checkpoint interval) a sweep
/// looks for the grants to cover.
pub const COVER_LOOKBACK_SECS: i64 = 600;

/// Whether `record` is one that may have made its grant active (an approval that was not the
/// last one needed made nothing active; covering such a grant writes nothing).
fn activates(record: &AuditRecord) -> bool {
    matches!(
        record.action,
        AuditAction::AutoApproved | AuditAction::BreakGlassActivated | AuditAction::Approved
    )
}

/// How long after each checkpoint mark a sweep still takes it: five minutes, or half the
/// interval if that is shorter. Within it, a sweep checks a grant that did nothing again (only
/// a written record is remembered), so it is kept short; a mark every sweep missed is made up
/// by the next one, and the record after the grant's end covers everything anyway.
fn checkpoint_slice(interval: i64) -> i64 {
    (interval / 2).min(300)
}

/// Whether a grant activated at `activated` reaches a checkpoint, one or more whole
/// `interval`s after it, within the slice before `now`.
fn at_checkpoint(now: Timestamp, activated: Timestamp, interval: i64) -> bool {
    let since = now.unix_seconds() - activated.unix_seconds();
    since >= interval
        && since <= i64::from(GrantDuration::MAX.as_secs()) + COVER_LOOKBACK_SECS
        && since.rem_euclid(interval) < checkpoint_slice(interval)
}

/// The audit-index windows holding the activations that reach a checkpoint now: the slice
/// before each whole interval back, up to the longest grant (disjoint, since a slice is at
/// most half an interval). An interval short enough to need more than twelve reads (the
/// local stack's two minutes) reads the whole span once instead; `at_checkpoint` picks.
fn checkpoint_windows(now: Timestamp, interval: i64) -> Vec<(Timestamp, Timestamp)> {
    let longest = i64::from(GrantDuration::MAX.as_secs());
    if longest / interval > 12 {
        let far = longest + checkpoint_slice(interval);
        return vec![(now.plus_secs(-far), now.plus_secs(1 - interval))];
    }
    let mut windows: Vec<(i64, i64)> = Vec::new();
    let mut back = interval;
    while back <= longest {
        let (from, to) = (back, back + checkpoint_slice(interval));
        match windows.last_mut() {
            Some(last) if from <= last.1 => last.1 = to,
            _ => windows.push((from, to)),
        }
        back += interval;
    }
    windows
        .into_iter()
        .map(|(near, far)| (now.plus_secs(-far), now.plus_secs(1 - near)))
        .collect()
}
use crate::iam::RolePolicies;
use crate::reconcile::ABSENT;

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
    /// Roles whose policy was found missing or changed in IAM and was put back.
    pub repaired: u32,
    /// Roles left unreconciled (a failure, or the deadline): their revocations may not be in
    /// force until a later sweep reconciles them.
    pub roles_pending: u32,
    /// Signed checkpoints written for closed periods.
    pub checkpoints: u32,
    /// Ended grants whose activity got a signed covering record.
    pub activity_covered: u32,
    /// What failed; each is retried by the next sweep.
    pub failures: Vec<String>,
    /// False when the deadline stopped it early.
    pub finished: bool,
}

impl<S: GrantStore + ActivityStore, P: RolePolicies> Sweeper<S, P> {
    /// Sweeps until done or until `deadline` draws near: settles due items first (keeping
    /// `role_reserve` for the roles), then reconciles every revoked role.
    pub async fn sweep(&self, deadline: Instant) -> SweepReport {
        let now = self.clock.now();
        let mut report = SweepReport::default();
        let out_of_time =
            |reserve| Instant::now() + self.config.deadline_margin + reserve >= deadline;
        self.settle_due(now, &mut report, || out_of_time(self.config.role_reserve))
            .await;
        if !out_of_time(self.config.role_reserve) {
            self.checkpoint(now, &mut report).await;
        }
        if !out_of_time(self.config.role_reserve) {
            self.cover_activity(now, &mut report).await;
        }
        self.reconcile_roles(now, &mut report, || out_of_time(std::time::Duration::ZERO))
            .await;
        report
    }

    /// Signs what covers the activity of grants: those that ended (EXPIRED or REVOKED) a
    /// settling window ago, again a recheck later for events CloudTrail delivered since, and,
    /// while a grant is active, every checkpoint interval after its activation.
    ///
    /// Each sweep reads the audit index for the [`COVER_LOOKBACK_SECS`] before the settling
    /// mark (the ends), for the windows one, two, ... checkpoint intervals before now (the
    /// activations, up to the longest grant), and, when it found any, for the last lookback
    /// (the covering records written since): a grant is covered once per mark, and a missed
    /// sweep is made up by the next one in the window. The ends around the recheck mark are
    /// looked at by each sweep in its window; a grant whose last covering record already says
    /// the same gets nothing new.
    async fn cover_activity(&self, now: Timestamp, report: &mut SweepReport) {
        let ends =
            |r: &AuditRecord| matches!(r.action, AuditAction::Expired | AuditAction::Revoked);
        let read = |from: Timestamp, to: Timestamp| async move {
            every_page(|page| async move { self.store.audit_between(from, to, &page).await }).await
        };
        let settled = now.plus_secs(-self.config.activity_settle_secs);
        let rechecked = now.plus_secs(-self.config.activity_recheck_secs);
        // What each found grant is due for: a checkpoint while active, or cover after its end
        // (which wins when a grant is found for both).
        let mut candidates = std::collections::BTreeMap::new();
        // A grant that ended in the window before the settling mark was covered, if at all,
        // by a sweep at least a settling window after its end: within the last lookback.
        // The grants that ended in the lookback before `mark`, each to be covered whatever
        // its state now.
        let ended = |mark: Timestamp| async move {
            read(mark.plus_secs(-COVER_LOOKBACK_SECS), mark)
                .await
                .map(|records| {
                    records
                        .into_iter()
                        .filter(ends)
                        .map(|r| (r.grant_id, CoverWhen::Always))
                        .collect::<Vec<_>>()
                })
        };
        match ended(settled).await {
            Ok(found) => candidates.extend(found),
            Err(e) => report
                .failures
                .push(format!("finding ended grants to cover: {e}")),
        }
        let interval = self.config.activity_checkpoint_secs;
        for (from, to) in checkpoint_windows(now, interval) {
            match read(from, to).await {
                Ok(records) => {
                    for r in records
                        .iter()
                        .filter(|r| activates(r) && at_checkpoint(now, r.at, interval))
                    {
                        candidates
                            .entry(r.grant_id.clone())
                            .or_insert(CoverWhen::Active);
                    }
                }
                Err(e) => report
                    .failures
                    .push(format!("finding active grants to checkpoint: {e}")),
            }
        }
        let mut due = std::collections::BTreeMap::new();
        if !candidates.is_empty() {
            match read(now.plus_secs(-COVER_LOOKBACK_SECS), now.plus_secs(1)).await {
                Ok(recent) => {
                    let covered: std::collections::BTreeSet<&GrantId> = recent
                        .iter()
                        .filter(|r| r.action == AuditAction::ActivityCovered)
                        .map(|r| &r.grant_id)
                        .collect();
                    due.extend(
                        candidates
                            .into_iter()
                            .filter(|(id, _)| !covered.contains(id)),
                    );
                }
                Err(e) => report
                    .failures
                    .push(format!("finding grants covered since: {e}")),
            }
        }
        match ended(rechecked).await {
            Ok(found) => due.extend(found),
            Err(e) => report
                .failures
                .push(format!("finding ended grants to cover again: {e}")),
        }
        let cases = Cases::new(&self.store, &self.rules, &NO_KEYS);
        let lag = self.config.activity_lag_secs;
        let covered: Vec<_> = futures::stream::iter(due)
            .map(|(id, when)| {
                let cases = &cases;
                async move { (cases.cover_activity(&id, now, lag, when).await, id) }
            })
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await;
        for (result, id) in covered {
            match result {
                Ok(Some(_)) => report.activity_covered += 1,
                Ok(None) => {}
                Err(e) => report
                    .failures
                    .push(format!("covering the activity of {id}: {e}")),
            }
        }
    }

    /// Settles the due index page by page, concurrently within a page, until it is done
    /// (`finished`) or `out_of_time`.
    async fn settle_due(
        &self,
        now: Timestamp,
        report: &mut SweepReport,
        out_of_time: impl Fn() -> bool,
    ) {
        let mut cursor = None;
        while !out_of_time() {
            let request = PageRequest {
                limit: self.config.page_size,
                cursor: cursor.take(),
            };
            let page = match self.store.list_due(now, &request).await {
                Ok(page) => page,
                Err(e) => {
                    report.failures.push(format!("listing due work: {e}"));
                    return;
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
                None => {
                    report.finished = true;
                    return;
                }
            }
        }
    }

    /// Reconciles every revoked role that may need it, until done or `out_of_time` (the rest
    /// are counted as pending and the sweep as unfinished).
    async fn reconcile_roles(
        &self,
        now: Timestamp,
        report: &mut SweepReport,
        out_of_time: impl Fn() -> bool,
    ) {
        let heads = match self.store.revoked_roles().await {
            Ok(heads) => heads,
            Err(e) => {
                report
                    .failures
                    .push(format!("listing the revoked roles: {e}"));
                report.roles_pending += 1;
                report.finished = false;
                return;
            }
        };
        let mut left = heads.len();
        for head in heads {
            if out_of_time() {
                report.roles_pending += u32::try_from(left).unwrap_or(u32::MAX);
                report.finished = false;
                return;
            }
            left -= 1;
            // Idle: nothing was live when its policy was last applied, nothing added since.
            let idle = head
                .applied
                .as_ref()
                .is_some_and(|a| a.marker == ABSENT && a.ledger_version == head.version);
            if idle {
                continue;
            }
            match self.reconcile(&head.role, now).await {
                Ok(outcome) => {
                    report.policies_changed += u32::from(outcome.changed);
                    report.fallbacks += u32::from(outcome.fallback);
                    report.repaired += u32::from(outcome.repaired);
                    report.pruned += outcome.pruned;
                }
                Err(e) => {
                    report.failures.push(e.to_string());
                    report.roles_pending += 1;
                }
            }
        }
    }

    /// Times out or expires one due grant. `None` when it was no longer due (settled by
    /// another sweep or changed meanwhile).
    /// Writes the signed checkpoint of each closed period since the latest one (at most a
    /// day's worth per sweep). With no checkpoint yet, the chain starts with the latest closed
    /// period, so a new deployment's first sweep starts it. Each checkpoint's sequence number
    /// and hash also go to the log: an anchor outside the table, for comparing against an
    /// export.
    async fn checkpoint(&self, now: Timestamp, report: &mut SweepReport) {
        const MOST_PER_SWEEP: usize = 24;
        let period = self.config.checkpoint_period;
        let mut prev = match self.store.latest_checkpoint().await {
            Ok(latest) => latest,
            Err(e) => {
                report
                    .failures
                    .push(format!("reading the latest checkpoint: {e}"));
                return;
            }
        };
        let mut start = match &prev {
            Some(p) => p.period_end,
            None => period
                .containing(now.plus_secs(-period.grace_secs))
                .0
                .plus_secs(-period.length_secs),
        };
        for _ in 0..MOST_PER_SWEEP {
            let end = start.plus_secs(period.length_secs);
            if !period.closed(end, now) {
                return;
            }
            let records = match self.period_records(start, end).await {
                Ok(records) => records,
                Err(e) => {
                    report.failures.push(format!(
                        "reading the audit records from {start} for its checkpoint: {e}"
                    ));
                    return;
                }
            };
            let mut checkpoint = Checkpoint::next(prev.as_ref(), start, end, &records);
            if let Some(bucket) = &self.archive {
                // The period's object first, then the checkpoint naming it: a failure leaves
                // the period open for the next sweep (and fails this one, so the errors alarm
                // fires). The previous checkpoint is put again (create-only: a no-op when it
                // is there) in case the sweep that wrote it failed before its bucket copy.
                let archived = async {
                    if let Some(p) = prev.as_ref().filter(|p| p.object.is_some()) {
                        self.put_checkpoint_copy(bucket, p, now).await?;
                    }
                    self.archive_period(bucket, &checkpoint, &records, now)
                        .await
                }
                .await;
                match archived {
                    Ok(object) => checkpoint = checkpoint.with_object(object),
                    Err(e) => {
                        tracing::error!(period_start = %start, error = %e, "audit period not archived");
                        println!(
                            "{}",
                            jit_http::metric::count("ArchiveFailed", 1, now, &[], &[])
                        );
                        report.failures.push(format!(
                            "archiving the period from {start} to the audit bucket: {e}"
                        ));
                        return;
                    }
                }
            }
            match self.store.put_checkpoint(&checkpoint).await {
                Ok(()) => {
                    report.checkpoints += 1;
                    if let Some(bucket) = &self.archive {
                        // The copy carries the signature the store added: read it back.
                        let copied = match self.store.latest_checkpoint().await {
                            Ok(Some(signed)) if signed.hash == checkpoint.hash => {
                                self.put_checkpoint_copy(bucket, &signed, now).await
                            }
                            Ok(_) => Err("the checkpoint just written is not the latest".into()),
                            Err(e) => Err(e.to_string()),
                        };
                        if let Err(e) = copied {
                            // The next sweep starts from the table's signed checkpoint and
                            // puts its copy again before the next period.
                            report.failures.push(format!(
                                "copying checkpoint {} to the audit bucket (the next sweep puts it again): {e}",
                                checkpoint.seq
                            ));
                            return;
                        }
                    }
                    tracing::info!(
                        checkpoint = checkpoint.seq,
                        hash = %checkpoint.hash,
                        period_start = %start,
                        period_end = %end,
                        records = checkpoint.count,
                        "audit checkpoint signed"
                    );
                }
                // Another sweep wrote it first; it carries on from there next time.
                Err(StoreError::CheckpointTaken { .. }) => return,
                Err(e) => {
                    report
                        .failures
                        .push(format!("writing checkpoint {}: {e}", checkpoint.seq));
                    return;
                }
            }
            prev = Some(checkpoint);
            start = end;
        }
    }

    /// Puts the period's object (or finds the one a sweep put before, if it holds the same
    /// records): what the checkpoint will name.
    async fn archive_period(
        &self,
        bucket: &AuditBucket,
        checkpoint: &Checkpoint,
        records: &[AuditRecord],
        now: Timestamp,
    ) -> Result<ArchivedPeriod, String> {
        let mut subjects = BTreeMap::new();
        let mut people = BTreeSet::new();
        for record in records {
            if let Actor::User(user) = &record.actor {
                people.insert(user.clone());
            }
            if subjects.contains_key(&record.grant_id) {
                continue;
            }
            let grant = self
                .store
                .get(&record.grant_id)
                .await
                .map_err(|e| format!("reading grant `{}`: {e}", record.grant_id))?
                .ok_or_else(|| {
                    format!(
                        "grant `{}` has records in the period but is not in the table",
                        record.grant_id
                    )
                })?;
            people.insert(grant.requester.clone());
            subjects.insert(
                grant.id.clone(),
                Subject {
                    requester: grant.requester,
                    target: grant.target,
                    role_arn: grant.role_arn,
                },
            );
        }
        let mut pseudonyms = BTreeMap::new();
        for person in people {
            let p = self
                .store
                .pseudonym(&person)
                .await
                .map_err(|e| format!("a person's pseudonym: {e}"))?;
            pseudonyms.insert(person, p);
        }
        let length = checkpoint.period_end.unix_seconds() - checkpoint.period_start.unix_seconds();
        let object = period_object(
            checkpoint.period_start,
            length,
            records,
            &subjects,
            &pseudonyms,
        )
        .map_err(|e| e.to_string())?;
        match bucket
            .put_new(&object.key, object.bytes.clone(), "application/gzip", now)
            .await?
        {
            Put::Written { version_id } => Ok(ArchivedPeriod {
                key: object.key,
                version_id,
                sha256: object.sha256,
            }),
            Put::Taken => {
                // A sweep put it and lost its checkpoint: reuse it if it holds these records.
                let stored = bucket
                    .current(&object.key)
                    .await?
                    .ok_or_else(|| format!("`{}` was taken, then gone", object.key))?;
                let held = read_period_object(&stored.bytes).map_err(|e| e.to_string())?;
                if archived_digest(&held) != (checkpoint.count, checkpoint.digest.clone()) {
                    return Err(format!(
                        "the bucket holds other records at `{}` than the table holds for its period: the trail or the bucket was changed",
                        object.key
                    ));
                }
                tracing::info!(key = %object.key, "period object found from an earlier sweep, reused");
                Ok(ArchivedPeriod {
                    key: object.key,
                    version_id: stored.version_id,
                    sha256: sha256_hex(&stored.bytes),
                })
            }
        }
    }

    /// Puts `checkpoint`'s copy in the bucket, create-only; one already there must be the same
    /// checkpoint (its hash), or the chain in the table was rewritten.
    async fn put_checkpoint_copy(
        &self,
        bucket: &AuditBucket,
        checkpoint: &Checkpoint,
        now: Timestamp,
    ) -> Result<(), String> {
        let key = checkpoint_key(checkpoint.seq);
        let body = serde_json::to_vec(checkpoint).map_err(|e| e.to_string())?;
        if bucket.put_new(&key, body, "application/json", now).await? == Put::Taken {
            let stored = bucket
                .current(&key)
                .await?
                .ok_or_else(|| format!("`{key}` was taken, then gone"))?;
            let there: Checkpoint = serde_json::from_slice(&stored.bytes)
                .map_err(|e| format!("`{key}` is not a checkpoint: {e}"))?;
            if there.hash != checkpoint.hash {
                return Err(format!(
                    "the bucket's checkpoint {} differs from the table's: the table's chain was rewritten",
                    checkpoint.seq
                ));
            }
        }
        Ok(())
    }

    async fn period_records(
        &self,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<jit_core::domain::audit::AuditRecord>, StoreError> {
        let store = &self.store;
        every_page(|page| async move { store.audit_between(start, end, &page).await }).await
    }

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
}
