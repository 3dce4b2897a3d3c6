//! The in-memory adapter, for unit tests. It refuses exactly what the DynamoDB adapter refuses
//! and pages in the same order; the contract tests hold both to that.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::Position;
use super::{
    ACTIVITY_CAP_PER_SHARD, ActivityCount, ActivityStore, AppliedPolicy, Created, Cursor,
    GrantStore, Idempotency, LedgerHead, Page, PageRequest, REFUSED_WINDOW_MINUTES, Recorded,
    RoleLedger, StoreError, activity_shard, activity_sort_key, audit_sort_key, due_shard,
    event_sort_key,
};
use crate::activity::{Activity, UnattributedEvent};
use crate::clock::Timestamp;
use crate::domain::audit::AuditRecord;
use crate::domain::{Change, Creation, Grant, GrantId, RevocationEntry, RoleArn, TargetId, UserId};
use crate::trust::{Checkpoint, GrantHead};

#[derive(Debug, Default)]
struct Tables {
    grants: BTreeMap<GrantId, Grant>,
    audit: BTreeMap<(GrantId, u64), AuditRecord>,
    idempotency: HashMap<(String, UserId), (GrantId, String, Timestamp)>,
    ledger: BTreeMap<(RoleArn, GrantId), RevocationEntry>,
    open: HashMap<(TargetId, UserId), GrantId>,
    roles: BTreeMap<RoleArn, LedgerHead>,
    checkpoints: BTreeMap<Timestamp, Checkpoint>,
    pseudonyms: HashMap<UserId, String>,
    activity: BTreeMap<(GrantId, String), Activity>,
    activity_counts: HashMap<(GrantId, u32), ActivityCount>,
    unattributed: BTreeMap<(String, String), UnattributedEvent>,
    refused: BTreeMap<(GrantId, i64), u32>,
}

impl Tables {
    /// The requester's slot for `grant`'s target, if `grant` is new and the slot free.
    fn free_slot(&self, grant: &Grant) -> Result<(TargetId, UserId), StoreError> {
        if self.grants.contains_key(&grant.id) {
            return Err(StoreError::AlreadyExists {
                id: grant.id.clone(),
            });
        }
        let slot = (grant.target.clone(), grant.requester.clone());
        if let Some(existing) = self.open.get(&slot) {
            return Err(StoreError::AlreadyOpen {
                existing: existing.clone(),
            });
        }
        Ok(slot)
    }
}

/// Grants, audit records and the revocation ledger held in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave a half-applied write: every write checks
        // first and then inserts, so the data is still consistent.
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Takes up to `limit` items after `after` from an iterator already in query order, with a
/// cursor whenever the page is full: the rule the DynamoDB adapter follows too, which may end a
/// listing with one empty page.
fn page_of<T, K: PartialOrd>(
    sorted: impl Iterator<Item = (K, T)>,
    after: Option<K>,
    limit: u32,
    cursor_of: impl Fn(&K) -> Position,
    descending: bool,
) -> Page<T> {
    let rest = sorted.skip_while(|(k, _)| match &after {
        None => false,
        Some(a) if descending => k >= a,
        Some(a) => k <= a,
    });
    let mut items = Vec::new();
    let mut last = None;
    for (k, item) in rest.take(limit as usize) {
        items.push(item);
        last = Some(k);
    }
    let full = items.len() == limit as usize;
    Page {
        items,
        next: last
            .filter(|_| full)
            .map(|k| Cursor::encode(&cursor_of(&k))),
    }
}

impl GrantStore for MemoryStore {
    async fn create(
        &self,
        creation: &Creation,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created, StoreError> {
        let mut t = self.lock();
        let grant = creation.grant();
        if let Some(idem) = idempotency {
            let slot = (idem.key.as_str().to_owned(), idem.caller.clone());
            if let Some((first, fingerprint, expires_at)) = t.idempotency.get(&slot)
                && *expires_at > idem.now
            {
                if fingerprint != &idem.fingerprint {
                    return Err(StoreError::IdempotencyKeyReused {
                        key: idem.key.as_str().to_owned(),
                    });
                }
                return match t.grants.get(first) {
                    Some(g) => Ok(Created::Replayed(g.clone())),
                    None => Err(StoreError::Corrupt {
                        key: format!("IDEM#{}", idem.key.as_str()),
                        why: format!("it names request `{first}`, which does not exist"),
                    }),
                };
            }
        }
        let slot = t.free_slot(grant)?;
        t.open.insert(slot, grant.id.clone());
        if let Some(idem) = idempotency {
            t.idempotency.insert(
                (idem.key.as_str().to_owned(), idem.caller.clone()),
                (grant.id.clone(), idem.fingerprint.clone(), idem.expires_at),
            );
        }
        let audit = creation.audit();
        t.audit
            .insert((audit.grant_id.clone(), audit.seq), audit.clone());
        t.grants.insert(grant.id.clone(), grant.clone());
        Ok(Created::New(grant.clone()))
    }

    async fn create_bundle(&self, creations: &[Creation]) -> Result<Vec<Grant>, StoreError> {
        let mut t = self.lock();
        // Checked whole first: a refusal leaves nothing behind.
        for creation in creations {
            t.free_slot(creation.grant())?;
        }
        for creation in creations {
            let grant = creation.grant();
            t.open.insert(
                (grant.target.clone(), grant.requester.clone()),
                grant.id.clone(),
            );
            let audit = creation.audit();
            t.audit
                .insert((audit.grant_id.clone(), audit.seq), audit.clone());
            t.grants.insert(grant.id.clone(), grant.clone());
        }
        Ok(creations.iter().map(|c| c.grant().clone()).collect())
    }

    async fn get(&self, id: &GrantId) -> Result<Option<Grant>, StoreError> {
        Ok(self.lock().grants.get(id).cloned())
    }

    async fn commit(&self, change: &Change) -> Result<(), StoreError> {
        let mut t = self.lock();
        let grant = change.grant();
        let conflict = || StoreError::Conflict {
            id: grant.id.clone(),
        };
        match t.grants.get(&grant.id) {
            Some(stored) if stored.version == change.expected_version() => {}
            _ => return Err(conflict()),
        }
        let audit = change.audit();
        let audit_key = (audit.grant_id.clone(), audit.seq);
        if t.audit.contains_key(&audit_key) {
            return Err(conflict());
        }
        t.audit.insert(audit_key, audit.clone());
        if let Some(entry) = change.revocation() {
            t.ledger.insert(
                (entry.role_arn.clone(), entry.grant_id.clone()),
                entry.clone(),
            );
            let head = t
                .roles
                .entry(entry.role_arn.clone())
                .or_insert_with(|| LedgerHead {
                    role: entry.target_role(),
                    version: 0,
                    applied: None,
                });
            head.role = entry.target_role();
            head.version += 1;
        }
        if change.closes() {
            let slot = (grant.target.clone(), grant.requester.clone());
            if t.open.get(&slot) == Some(&grant.id) {
                t.open.remove(&slot);
            }
        }
        t.grants.insert(grant.id.clone(), grant.clone());
        Ok(())
    }

    async fn evidence(
        &self,
        id: &GrantId,
    ) -> Result<Option<(Grant, Vec<AuditRecord>)>, StoreError> {
        let t = self.lock();
        Ok(t.grants.get(id).map(|g| {
            let records = t
                .audit
                .range((id.clone(), 0)..=(id.clone(), u64::MAX))
                .map(|(_, r)| r.clone())
                .collect();
            (g.clone(), records)
        }))
    }

    async fn heads(&self, ids: &[GrantId]) -> Result<Vec<GrantHead>, StoreError> {
        let t = self.lock();
        Ok(ids
            .iter()
            .filter_map(|id| t.grants.get(id))
            .map(|g| GrantHead {
                grant_id: g.id.clone(),
                head: g.audit_head.clone(),
            })
            .collect())
    }

    async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        Ok(self.lock().checkpoints.values().next_back().cloned())
    }

    async fn checkpoints_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        Ok(self
            .lock()
            .checkpoints
            .values()
            .filter(|c| c.period_start < to && c.period_end > from)
            .cloned()
            .collect())
    }

    async fn pseudonym(&self, user: &UserId) -> Result<String, StoreError> {
        let mut t = self.lock();
        if let Some(p) = t.pseudonyms.get(user) {
            return Ok(p.clone());
        }
        let made = crate::archive::new_pseudonym()
            .ok_or_else(|| StoreError::unavailable("no random source for a pseudonym"))?;
        t.pseudonyms.insert(user.clone(), made.clone());
        Ok(made)
    }

    async fn put_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        let mut t = self.lock();
        if t.checkpoints.contains_key(&checkpoint.period_start) {
            return Err(StoreError::CheckpointTaken {
                seq: checkpoint.seq,
            });
        }
        t.checkpoints
            .insert(checkpoint.period_start, checkpoint.clone());
        Ok(())
    }

    async fn list_by_requester(
        &self,
        requester: &UserId,
        page: &PageRequest,
    ) -> Result<Page<Grant>, StoreError> {
        let after = Position::created(page.cursor.as_ref())?;
        let t = self.lock();
        let mut mine: Vec<_> = t
            .grants
            .values()
            .filter(|g| &g.requester == requester)
            .map(|g| ((g.created_at, g.id.clone()), g.clone()))
            .collect();
        mine.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(page_of(
            mine.into_iter(),
            after,
            page.clamped_limit(),
            |(at, id)| Position::Created {
                at: *at,
                id: id.clone(),
            },
            true,
        ))
    }

    async fn list_pending_for_target(
        &self,
        target: &TargetId,
        page: &PageRequest,
    ) -> Result<Page<Grant>, StoreError> {
        let after = Position::created(page.cursor.as_ref())?;
        let t = self.lock();
        let mut pending: Vec<_> = t
            .grants
            .values()
            .filter(|g| &g.target == target && g.awaiting_review().is_some())
            .map(|g| ((g.created_at, g.id.clone()), g.clone()))
            .collect();
        pending.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(page_of(
            pending.into_iter(),
            after,
            page.clamped_limit(),
            |(at, id)| Position::Created {
                at: *at,
                id: id.clone(),
            },
            false,
        ))
    }

    async fn list_due(
        &self,
        before: Timestamp,
        page: &PageRequest,
    ) -> Result<Page<Grant>, StoreError> {
        let after = Position::due(page.cursor.as_ref())?;
        let t = self.lock();
        let mut due: Vec<_> = t
            .grants
            .values()
            .filter_map(|g| {
                let at = g.due_at().filter(|at| *at <= before)?;
                Some(((due_shard(&g.id), at, g.id.clone()), g.clone()))
            })
            .collect();
        due.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(page_of(
            due.into_iter(),
            after,
            page.clamped_limit(),
            |(shard, at, id)| Position::Due {
                shard: *shard,
                at: *at,
                id: id.clone(),
            },
            false,
        ))
    }

    async fn audit_of_grant(
        &self,
        id: &GrantId,
        page: &PageRequest,
    ) -> Result<Page<AuditRecord>, StoreError> {
        let after = Position::chain(page.cursor.as_ref())?;
        let t = self.lock();
        let chain = t
            .audit
            .range((id.clone(), 0)..=(id.clone(), u64::MAX))
            .map(|((_, seq), r)| (*seq, r.clone()));
        Ok(page_of(
            chain,
            after,
            page.clamped_limit(),
            |seq| Position::Chain { seq: *seq },
            false,
        ))
    }

    async fn audit_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        page: &PageRequest,
    ) -> Result<Page<AuditRecord>, StoreError> {
        let after = Position::audit(page.cursor.as_ref())?;
        let t = self.lock();
        let mut records: Vec<_> = t
            .audit
            .values()
            .filter(|r| from <= r.at && r.at < to)
            .map(|r| (audit_sort_key(r), r.clone()))
            .collect();
        records.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(page_of(
            records.into_iter(),
            after,
            page.clamped_limit(),
            |key| Position::Audit { key: key.clone() },
            false,
        ))
    }

    async fn revoked_roles(&self) -> Result<Vec<LedgerHead>, StoreError> {
        Ok(self.lock().roles.values().cloned().collect())
    }

    async fn role_ledger(&self, role: &RoleArn) -> Result<RoleLedger, StoreError> {
        let t = self.lock();
        let head = t.roles.get(role);
        Ok(RoleLedger {
            version: head.map_or(0, |h| h.version),
            applied: head.and_then(|h| h.applied.clone()),
            entries: t
                .ledger
                .values()
                .filter(|e| &e.role_arn == role)
                .cloned()
                .collect(),
        })
    }

    async fn remove_revocation(&self, entry: &RevocationEntry) -> Result<(), StoreError> {
        let mut t = self.lock();
        let key = (entry.role_arn.clone(), entry.grant_id.clone());
        // Like the conditional delete in DynamoDB: an entry changed since it was read stays.
        if t.ledger.get(&key).is_some_and(|e| e.until == entry.until) {
            t.ledger.remove(&key);
        }
        Ok(())
    }

    async fn record_applied(
        &self,
        role: &RoleArn,
        applied: &AppliedPolicy,
    ) -> Result<(), StoreError> {
        let mut t = self.lock();
        match t.roles.get_mut(role) {
            Some(head) if head.version == applied.ledger_version => {
                head.applied = Some(applied.clone());
                Ok(())
            }
            _ => Err(StoreError::LedgerMoved { role: role.clone() }),
        }
    }
}

impl ActivityStore for MemoryStore {
    async fn record_activity(
        &self,
        grant: &GrantId,
        activity: &Activity,
    ) -> Result<Recorded, StoreError> {
        let mut t = self.lock();
        let key = (grant.clone(), activity_sort_key(activity));
        if t.activity.contains_key(&key) {
            return Ok(Recorded::AlreadyStored);
        }
        let count = t
            .activity_counts
            .entry((grant.clone(), activity_shard(&activity.event_id)))
            .or_default();
        if count.stored >= ACTIVITY_CAP_PER_SHARD {
            count.over_cap += 1;
            return Ok(Recorded::OverCap);
        }
        count.stored += 1;
        t.activity.insert(key, activity.clone());
        Ok(Recorded::Stored)
    }

    async fn record_unattributed(&self, event: &UnattributedEvent) -> Result<Recorded, StoreError> {
        let key = (
            event.activity.time.utc_day(),
            activity_sort_key(&event.activity),
        );
        let mut t = self.lock();
        if t.unattributed.contains_key(&key) {
            return Ok(Recorded::AlreadyStored);
        }
        t.unattributed.insert(key, event.clone());
        Ok(Recorded::Stored)
    }

    async fn activity_of_grant(
        &self,
        grant: &GrantId,
        page: &PageRequest,
    ) -> Result<Page<Activity>, StoreError> {
        events_page(&self.lock().activity, grant, page)
    }

    async fn activity_count(&self, grant: &GrantId) -> Result<ActivityCount, StoreError> {
        let t = self.lock();
        Ok(t.activity_counts
            .iter()
            .filter(|((g, _), _)| g == grant)
            .fold(ActivityCount::default(), |sum, (_, c)| ActivityCount {
                stored: sum.stored + c.stored,
                over_cap: sum.over_cap + c.over_cap,
            }))
    }

    async fn activity_event(
        &self,
        grant: &GrantId,
        time: Timestamp,
        event_id: &str,
    ) -> Result<Option<Activity>, StoreError> {
        let key = (grant.clone(), event_sort_key(time, event_id));
        Ok(self.lock().activity.get(&key).cloned())
    }

    async fn refused_recently(
        &self,
        grant: &GrantId,
        at: Timestamp,
        count_one: bool,
    ) -> Result<u32, StoreError> {
        let minute = at.unix_seconds().div_euclid(60);
        let mut t = self.lock();
        if count_one {
            *t.refused.entry((grant.clone(), minute)).or_default() += 1;
        }
        let from = (grant.clone(), minute - (REFUSED_WINDOW_MINUTES - 1));
        Ok(t.refused
            .range(from..=(grant.clone(), minute))
            .map(|(_, n)| *n)
            .sum())
    }

    async fn unattributed_on(
        &self,
        day: &str,
        page: &PageRequest,
    ) -> Result<Page<UnattributedEvent>, StoreError> {
        events_page(&self.lock().unattributed, &day.to_owned(), page)
    }
}

/// One page of the events kept under `part` (a grant, or a day), by sort key.
fn events_page<K: Ord + Clone, T: Clone>(
    events: &BTreeMap<(K, String), T>,
    part: &K,
    page: &PageRequest,
) -> Result<Page<T>, StoreError> {
    let after = Position::activity(page.cursor.as_ref())?;
    let items = events
        .range((part.clone(), String::new())..)
        .take_while(|((p, _), _)| p == part)
        .map(|((_, sk), e)| (sk.clone(), e.clone()));
    Ok(page_of(
        items,
        after,
        page.clamped_limit(),
        |key| Position::Activity { key: key.clone() },
        false,
    ))
}
