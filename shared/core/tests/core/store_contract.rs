//! One contract, two adapters: every test here runs against the in-memory store and against
//! DynamoDB on the local emulator, so the in-memory store cannot accept what DynamoDB refuses.

use std::collections::BTreeSet;

use crate::support::*;
use jit_core::activity::{Activity, UnattributedEvent};
use jit_core::clock::Timestamp;
use jit_core::domain::TargetRole;
use jit_core::domain::audit::{AuditRecord, verify_against_head};
use jit_core::domain::{Command, Grant, GrantId, GrantState, ReviewDecision};
use jit_core::store::{
    ACTIVITY_CAP_PER_SHARD, ActivityCount, ActivityStore, AppliedPolicy, Created, Cursor,
    DynamoStore, GrantStore, Idempotency, IdempotencyKey, LedgerHead, MemoryStore, Page,
    PageRequest, Recorded, RoleLedger, StoreError, activity_shard,
};
use jit_local::{CallCounter, TestTable};

/// What each contract test gets: a store, and for DynamoDB the counter of its AWS calls.
struct Fixture<S> {
    store: S,
    calls: Option<CallCounter>,
}

impl<S: GrantStore> Fixture<S> {
    /// Asserts the calls made since the last check, when this adapter counts them.
    fn expect_calls(&self, expected: &[(&str, u64)]) {
        if let Some(calls) = &self.calls {
            let taken = calls.take();
            let expected: std::collections::BTreeMap<String, u64> = expected
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect();
            assert_eq!(taken, expected, "AWS calls");
        }
    }

    fn reset_calls(&self) {
        if let Some(calls) = &self.calls {
            calls.take();
        }
    }

    async fn create(&self, creation: &jit_core::domain::Creation) -> Grant {
        match self.store.create(creation, None).await.unwrap() {
            Created::New(g) => g,
            other => panic!("expected a new grant, got {other:?}"),
        }
    }

    /// Applies and commits `command`, checks what was stored, returns the new grant.
    async fn step(
        &self,
        grant: &Grant,
        command: Command,
        actor: &jit_core::domain::Actor,
        at: Timestamp,
    ) -> Grant {
        let change = grant.apply(command, actor, at).unwrap();
        self.reset_calls();
        self.store.commit(&change).await.unwrap();
        // Cost: a transition is exactly one transaction, nothing else.
        self.expect_calls(&[("DynamoDB.TransactWriteItems", 1)]);
        let stored = self.store.get(&grant.id).await.unwrap().unwrap();
        assert_eq!(&stored, change.grant());
        self.chain_holds(&stored).await;
        stored
    }

    async fn audit(&self, id: &GrantId) -> Vec<AuditRecord> {
        let store = &self.store;
        all_pages(|p| async move { store.audit_of_grant(id, &p).await }, 2).await
    }

    async fn chain_holds(&self, grant: &Grant) {
        let records = self.audit(&grant.id).await;
        verify_against_head(&grant.id, &records, &grant.audit_head).unwrap();
    }
}

/// Follows cursors from the first page to the last, checking no page exceeds `limit`.
async fn all_pages<T, F, Fut>(mut fetch: F, limit: u32) -> Vec<T>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>, StoreError>>,
{
    let mut items = Vec::new();
    let mut request = PageRequest::first(limit);
    for _ in 0..10_000 {
        let page = fetch(request.clone()).await.unwrap();
        assert!(
            page.items.len() <= limit as usize,
            "page larger than its limit"
        );
        items.extend(page.items);
        match page.next {
            Some(cursor) => request = PageRequest::after(limit, cursor),
            None => return items,
        }
    }
    panic!("paging did not end");
}

async fn create_then_get<S: GrantStore>(f: Fixture<S>) {
    let creation = open("alice", "prod-logs", T0);
    f.reset_calls();
    let grant = f.create(&creation).await;
    f.expect_calls(&[("DynamoDB.TransactWriteItems", 1)]);
    assert_eq!(&grant, creation.grant());
    assert_eq!(f.store.get(&grant.id).await.unwrap().as_ref(), Some(&grant));
    let audit = f.audit(&grant.id).await;
    assert_eq!(audit, [creation.audit().clone()]);
    f.chain_holds(&grant).await;
    let missing = GrantId::generate(T0);
    assert_eq!(f.store.get(&missing).await.unwrap(), None);
}

async fn a_duplicate_id_is_refused<S: GrantStore>(f: Fixture<S>) {
    let creation = open("alice", "prod-logs", T0);
    f.create(&creation).await;
    let again = f.store.create(&creation, None).await;
    assert_eq!(
        again,
        Err(StoreError::AlreadyExists {
            id: creation.grant().id.clone()
        })
    );
    assert_eq!(f.audit(&creation.grant().id).await.len(), 1);
}

async fn every_transition_is_stored_with_its_audit_record<S: GrantStore>(f: Fixture<S>) {
    let t = |s| T0.plus_secs(s);
    // Auto-approval, two sessions, revocation (with a ledger entry for the live session).
    let g = f.create(&open("alice", "prod-logs", T0)).await;
    let g = f.step(&g, auto_approve(), &approver(), t(1)).await;
    assert_eq!(g.state, GrantState::Active);
    let g = f.step(&g, issue(t(901)), &as_user("alice"), t(2)).await;
    let g = f.step(&g, issue(t(1000)), &as_user("alice"), t(3)).await;
    assert_eq!(
        (g.sessions_issued, g.sessions_valid_until),
        (2, Some(t(1000)))
    );
    let g = f.step(&g, revoke(), &as_user("sam"), t(4)).await;
    assert_eq!(g.state, GrantState::Revoked);
    let ledger = f.store.role_ledger(&g.role_arn).await.unwrap().entries;
    assert_eq!(ledger.len(), 1);
    assert_eq!(
        (ledger[0].grant_id.clone(), ledger[0].until),
        (g.id.clone(), t(1000))
    );

    // Two approvals, then expiry.
    let g = f.create(&open("alice", "prod-deploy", T0)).await;
    let g = f.step(&g, await_review(2), &approver(), t(1)).await;
    let g = f
        .step(&g, review(ReviewDecision::Approve), &as_user("rob"), t(2))
        .await;
    assert_eq!(g.state, GrantState::Pending);
    let g = f
        .step(&g, review(ReviewDecision::Approve), &as_user("ria"), t(3))
        .await;
    assert_eq!(g.state, GrantState::Active);
    let g = f.step(&g, Command::Expire, &sweeper(), t(3 + 3600)).await;
    assert_eq!(g.state, GrantState::Expired);

    // Denial, cancellation, time-out.
    let g = f.create(&open("alice", "prod-db", T0)).await;
    let g = f.step(&g, await_review(1), &approver(), t(1)).await;
    let g = f
        .step(&g, review(ReviewDecision::Deny), &as_user("rob"), t(2))
        .await;
    assert_eq!(g.state, GrantState::Denied);
    let g = f.create(&open("bob", "prod-db", T0)).await;
    let g = f.step(&g, Command::Cancel, &as_user("bob"), t(5)).await;
    assert_eq!(g.state, GrantState::Cancelled);
    let g = f.create(&open("carol", "prod-db", T0)).await;
    let g = f.step(&g, Command::TimeOut, &sweeper(), t(WINDOW)).await;
    assert_eq!(g.state, GrantState::TimedOut);
    assert_eq!(f.audit(&g.id).await.len(), 2);
}

async fn a_stale_version_is_rejected_and_writes_nothing<S: GrantStore>(f: Fixture<S>) {
    let g = f.create(&open("alice", "prod-logs", T0)).await;
    let g = f
        .step(&g, await_review(1), &approver(), T0.plus_secs(1))
        .await;
    // Computed from the grant as it was before `await_review`: version 1, not 2.
    let stale = open_again_as_read(&f, &g).await;
    let late = stale
        .apply(Command::Cancel, &as_user("alice"), T0.plus_secs(2))
        .unwrap();
    f.reset_calls();
    assert_eq!(
        f.store.commit(&late).await,
        Err(StoreError::Conflict { id: g.id.clone() })
    );
    // The refused write, then one read of the record's position: was it this very write,
    // carried out but its answer lost? (It was not.)
    f.expect_calls(&[("DynamoDB.TransactWriteItems", 1), ("DynamoDB.GetItem", 1)]);
    assert_eq!(f.store.get(&g.id).await.unwrap().as_ref(), Some(&g));
    assert_eq!(f.audit(&g.id).await.len(), 2);
    // The same change committed twice: the second is refused too.
    let cancel = g
        .apply(Command::Cancel, &as_user("alice"), T0.plus_secs(3))
        .unwrap();
    f.store.commit(&cancel).await.unwrap();
    assert_eq!(
        f.store.commit(&cancel).await,
        Err(StoreError::Conflict { id: g.id.clone() })
    );
    assert_eq!(f.audit(&g.id).await.len(), 3);
}

/// The grant at version 1, as a reader that loaded it before the last change would hold it.
async fn open_again_as_read<S: GrantStore>(f: &Fixture<S>, current: &Grant) -> Grant {
    let first = f.audit(&current.id).await.remove(0);
    let mut stale = current.clone();
    stale.version = 1;
    stale.approvals_required = None;
    stale.audit_head = first.head();
    stale
}

async fn concurrent_transitions_on_one_grant_let_exactly_one_win<S: GrantStore>(f: Fixture<S>) {
    for round in 0..5 {
        let g = f
            .create(&open("alice", &format!("target-{round}"), T0))
            .await;
        let g = f
            .step(&g, await_review(1), &approver(), T0.plus_secs(1))
            .await;
        let at = T0.plus_secs(2);
        let changes = [
            g.apply(Command::Cancel, &as_user("alice"), at).unwrap(),
            g.apply(review(ReviewDecision::Approve), &as_user("rob"), at)
                .unwrap(),
            g.apply(review(ReviewDecision::Deny), &as_user("ria"), at)
                .unwrap(),
            g.apply(review(ReviewDecision::Approve), &as_user("ray"), at)
                .unwrap(),
        ];
        let results = futures_join_all(changes.iter().map(|c| f.store.commit(c))).await;
        let winners: Vec<_> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_ok())
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for r in results.iter().filter(|r| r.is_err()) {
            assert_eq!(r, &Err(StoreError::Conflict { id: g.id.clone() }));
        }
        let stored = f.store.get(&g.id).await.unwrap().unwrap();
        assert_eq!(&stored, changes[winners[0].0].grant());
        let audit = f.audit(&g.id).await;
        assert_eq!(audit.len(), 3, "one record per accepted change");
        f.chain_holds(&stored).await;
    }
}

/// Runs the futures at once on this task, like `join_all`, without another dependency.
async fn futures_join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = handles.iter().map(|_| None).collect();
    let mut handles: Vec<_> = handles.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, out) in handles.iter_mut().zip(outputs.iter_mut()) {
            if let Some(fut) = slot {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

async fn the_due_index_returns_only_due_items_across_shards<S: GrantStore>(f: Fixture<S>) {
    let mut expected = BTreeSet::new();
    let mut not_due = BTreeSet::new();
    for i in 0..24_i64 {
        let created = T0.plus_secs(i);
        let g = f
            .create(&open(&format!("user{i}"), "prod-logs", created))
            .await;
        // decide_by = created + WINDOW; some are decided, some not.
        let g = match i % 4 {
            0 => g,
            1 => {
                f.step(&g, auto_approve(), &approver(), created.plus_secs(1))
                    .await
            }
            2 => {
                f.step(
                    &g,
                    Command::Cancel,
                    &as_user(&format!("user{i}")),
                    created.plus_secs(1),
                )
                .await
            }
            _ => {
                f.step(&g, await_review(1), &approver(), created.plus_secs(1))
                    .await
            }
        };
        match g.due_at() {
            Some(due) if due <= T0.plus_secs(WINDOW + 11) => expected.insert(g.id.clone()),
            _ => not_due.insert(g.id.clone()),
        };
    }
    assert!(expected.len() >= 6 && !not_due.is_empty());
    let before = T0.plus_secs(WINDOW + 11);
    for limit in [1, 5, 100] {
        let store = &f.store;
        let due = all_pages(|p| async move { store.list_due(before, &p).await }, limit).await;
        let ids: Vec<GrantId> = due.iter().map(|g| g.id.clone()).collect();
        let unique: BTreeSet<_> = ids.iter().cloned().collect();
        assert_eq!(
            ids.len(),
            unique.len(),
            "an item came twice (limit {limit})"
        );
        assert_eq!(unique, expected, "limit {limit}");
        assert!(due.iter().all(|g| g.due_at().is_some_and(|d| d <= before)));
    }
    // Nothing due before the first deadline.
    let none = f.store.list_due(T0, &PageRequest::first(10)).await.unwrap();
    assert!(none.items.is_empty() && none.next.is_none());
}

async fn listings_page_through_only_their_own_partition<S: GrantStore>(f: Fixture<S>) {
    let mut alice = Vec::new();
    for i in 0..7 {
        let target = format!("prod-{i}");
        alice.push(
            f.create(&open("alice", &target, T0.plus_secs(i * 10)))
                .await,
        );
    }
    for i in 0..3 {
        let target = format!("prod-{i}");
        f.create(&open("bob", &target, T0.plus_secs(i * 10 + 5)))
            .await;
    }
    let store = &f.store;
    let (alice_id, nobody) = (&user("alice"), &user("nobody"));
    let mine = all_pages(
        |p| async move { store.list_by_requester(alice_id, &p).await },
        3,
    )
    .await;
    let newest_first: Vec<_> = alice.iter().rev().cloned().collect();
    assert_eq!(mine, newest_first);
    let none = all_pages(
        |p| async move { store.list_by_requester(nobody, &p).await },
        3,
    )
    .await;
    assert!(none.is_empty());

    // Pending by target, oldest first; decided requests drop out of the sparse index.
    let mut waiting = Vec::new();
    for (i, who) in ["carol", "dave", "erin", "frank", "gina"]
        .iter()
        .enumerate()
    {
        waiting.push(
            f.create(&open(who, "shared", T0.plus_secs(200 + i as i64)))
                .await,
        );
    }
    let at = T0.plus_secs(300);
    let cancelled = f
        .step(&waiting[1], Command::Cancel, &as_user("dave"), at)
        .await;
    let activated = f.step(&waiting[2], auto_approve(), &approver(), at).await;
    let shared = &waiting[0].target;
    let pending = all_pages(
        |p| async move { store.list_pending_for_target(shared, &p).await },
        2,
    )
    .await;
    let ids: Vec<_> = pending.iter().map(|g| g.id.clone()).collect();
    assert_eq!(
        ids,
        [
            waiting[0].id.clone(),
            waiting[3].id.clone(),
            waiting[4].id.clone()
        ]
    );
    assert!(!ids.contains(&cancelled.id) && !ids.contains(&activated.id));
}

async fn cursors_from_another_query_are_refused<S: GrantStore>(f: Fixture<S>) {
    for i in 0..3 {
        f.create(&open("alice", &format!("prod-{i}"), T0.plus_secs(i)))
            .await;
    }
    let page = f
        .store
        .list_by_requester(&user("alice"), &PageRequest::first(1))
        .await
        .unwrap();
    let cursor = page.next.unwrap();
    let wrong = PageRequest::after(1, cursor);
    assert_eq!(
        f.store.list_due(T0, &wrong).await.err(),
        Some(StoreError::BadCursor)
    );
    let garbage = PageRequest::after(1, Cursor::from_client("eyJxIjoiY2hhaW4ifQ"));
    assert_eq!(
        f.store
            .audit_of_grant(&GrantId::generate(T0), &garbage)
            .await
            .err(),
        Some(StoreError::BadCursor)
    );
}

fn idem(key: &str, caller: &str, fingerprint: &str, now: Timestamp) -> Idempotency {
    Idempotency {
        key: IdempotencyKey::parse(key).unwrap(),
        caller: user(caller),
        fingerprint: fingerprint.to_owned(),
        expires_at: T0.plus_secs(86_400),
        now,
    }
}

async fn a_reused_idempotency_key_returns_the_first_result<S: GrantStore>(f: Fixture<S>) {
    let first = open("alice", "prod-logs", T0);
    let created = f
        .store
        .create(&first, Some(&idem("k-1", "alice", "fp-a", T0)))
        .await
        .unwrap();
    assert_eq!(created, Created::New(first.grant().clone()));
    let g = f
        .step(first.grant(), await_review(1), &approver(), T0.plus_secs(1))
        .await;

    // A retry (a new id, the same key and request) gets the first request as it is now.
    let retry = open("alice", "prod-logs", T0.plus_secs(2));
    f.reset_calls();
    let replayed = f
        .store
        .create(&retry, Some(&idem("k-1", "alice", "fp-a", T0.plus_secs(2))))
        .await
        .unwrap();
    assert_eq!(replayed, Created::Replayed(g.clone()));
    assert_eq!(f.store.get(&retry.grant().id).await.unwrap(), None);
    assert!(f.audit(&retry.grant().id).await.is_empty());

    // The same key for a different request is refused, and nothing is written.
    let other = open("alice", "prod-db", T0.plus_secs(3));
    assert_eq!(
        f.store
            .create(&other, Some(&idem("k-1", "alice", "fp-b", T0.plus_secs(3))))
            .await,
        Err(StoreError::IdempotencyKeyReused {
            key: "k-1".to_owned()
        })
    );
    assert_eq!(f.store.get(&other.grant().id).await.unwrap(), None);

    // Keys belong to their caller: bob's `k-1` is his own.
    let bobs = open("bob", "prod-logs", T0.plus_secs(4));
    assert!(matches!(
        f.store
            .create(&bobs, Some(&idem("k-1", "bob", "fp-a", T0.plus_secs(4))))
            .await,
        Ok(Created::New(_))
    ));

    // Once expired (even if not yet removed by TTL), the key is free again.
    let later = open("alice", "prod-other", T0.plus_secs(86_400));
    assert!(matches!(
        f.store
            .create(
                &later,
                Some(&idem("k-1", "alice", "fp-a", T0.plus_secs(86_400)))
            )
            .await,
        Ok(Created::New(_))
    ));
}

async fn audit_records_are_found_by_time_range<S: GrantStore>(f: Fixture<S>) {
    const DAY: i64 = 86_400;
    let day_start = Timestamp::from_unix_seconds(T0.unix_seconds() / DAY * DAY);
    let late = day_start.plus_secs(DAY - 2); // two seconds before midnight
    let a = f.create(&open("alice", "prod-logs", late)).await;
    let a = f
        .step(&a, await_review(1), &approver(), late.plus_secs(1))
        .await;
    let a = f
        .step(
            &a,
            review(ReviewDecision::Approve),
            &as_user("rob"),
            late.plus_secs(2),
        )
        .await;
    let b = f.create(&open("bob", "prod-logs", late.plus_secs(3))).await;
    let _ = (a, b);
    // Seconds: late (a#1), late+1 (a#2), late+2 = midnight (a#3), late+3 (b#1).
    let store = &f.store;
    let every = all_pages(
        |p| async move { store.audit_between(late, late.plus_secs(4), &p).await },
        1,
    )
    .await;
    let seen: Vec<_> = every.iter().map(|r| (r.at, r.seq)).collect();
    assert_eq!(
        seen,
        [
            (late, 1),
            (late.plus_secs(1), 2),
            (late.plus_secs(2), 3),
            (late.plus_secs(3), 1)
        ]
    );
    // Half-open: `to` is excluded, `from` included, across the day boundary.
    let middle = all_pages(
        |p| async move {
            store
                .audit_between(late.plus_secs(1), late.plus_secs(3), &p)
                .await
        },
        10,
    )
    .await;
    assert_eq!(middle.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
    let empty = all_pages(
        |p| async move { store.audit_between(late, late, &p).await },
        10,
    )
    .await;
    assert!(empty.is_empty());
}

async fn the_revocation_ledger_is_kept_per_role<S: GrantStore>(f: Fixture<S>) {
    let t = |s| T0.plus_secs(s);
    let g = f.create(&open("alice", "prod-logs", T0)).await;
    let g = f.step(&g, auto_approve(), &approver(), t(1)).await;
    let g = f.step(&g, issue(t(3900)), &as_user("alice"), t(3000)).await;
    // Expiry while a session lives on: the ledger must cut it.
    let g = f.step(&g, Command::Expire, &sweeper(), t(1 + 3600)).await;
    let ledger = f.store.role_ledger(&g.role_arn).await.unwrap();
    assert_eq!(ledger.version, 1, "the entry moved the ledger's version");
    let entries = ledger.entries;
    assert_eq!(entries.len(), 1);
    let entry = entries[0].clone();
    assert_eq!(entry.until, t(3900));
    // An entry that changed since it was read is not removed.
    let mut stale = entry.clone();
    stale.until = t(3899);
    f.store.remove_revocation(&stale).await.unwrap();
    assert_eq!(
        f.store.role_ledger(&g.role_arn).await.unwrap().entries,
        std::slice::from_ref(&entry)
    );
    f.store.remove_revocation(&entry).await.unwrap();
    let ledger = f.store.role_ledger(&g.role_arn).await.unwrap();
    assert!(ledger.entries.is_empty());
    // A lapsed entry never changes the policy, so pruning leaves the version.
    assert_eq!(ledger.version, 1);
}

async fn one_open_request_per_person_and_target<S: GrantStore>(f: Fixture<S>) {
    let first = f.create(&open("alice", "prod-logs", T0)).await;
    let second = open("alice", "prod-logs", T0.plus_secs(1));
    f.reset_calls();
    assert_eq!(
        f.store.create(&second, None).await,
        Err(StoreError::AlreadyOpen {
            existing: first.id.clone()
        })
    );
    assert_eq!(f.store.get(&second.grant().id).await.unwrap(), None);
    assert!(f.audit(&second.grant().id).await.is_empty());
    // Others, and other targets, are not affected.
    f.create(&open("bob", "prod-logs", T0.plus_secs(2))).await;
    f.create(&open("alice", "prod-db", T0.plus_secs(3))).await;
    // Still refused once active; free again once the grant closes.
    let active = f
        .step(&first, auto_approve(), &approver(), T0.plus_secs(4))
        .await;
    let third = open("alice", "prod-logs", T0.plus_secs(5));
    assert!(matches!(
        f.store.create(&third, None).await,
        Err(StoreError::AlreadyOpen { .. })
    ));
    f.step(&active, revoke(), &as_user("alice"), T0.plus_secs(6))
        .await;
    f.create(&third).await;
}

/// Items of one request of several targets, opened at `at` for `requester`.
fn bundle_of(requester: &str, targets: &[&str], at: Timestamp) -> Vec<jit_core::domain::Creation> {
    let ids: Vec<GrantId> = targets.iter().map(|_| GrantId::generate(at)).collect();
    let bundle = jit_core::domain::Bundle { items: ids.clone() };
    targets
        .iter()
        .zip(ids)
        .map(|(target, id)| {
            let mut ask = request(requester, target, 3600);
            ask.bundle = Some(bundle.clone());
            Grant::open(id, ask, at)
        })
        .collect()
}

async fn a_bundle_is_stored_whole_in_one_write_or_not_at_all<S: GrantStore>(f: Fixture<S>) {
    // Alice has prod-db open: a bundle with it is refused whole, nothing of it stored.
    let open_db = f.create(&open("alice", "prod-db", T0)).await;
    let refused = bundle_of("alice", &["prod-logs", "prod-db"], T0.plus_secs(1));
    f.reset_calls();
    assert_eq!(
        f.store.create_bundle(&refused).await,
        Err(StoreError::AlreadyOpen {
            existing: open_db.id.clone()
        })
    );
    f.expect_calls(&[("DynamoDB.TransactWriteItems", 1), ("DynamoDB.GetItem", 1)]);
    for c in &refused {
        assert_eq!(f.store.get(&c.grant().id).await.unwrap(), None);
        assert!(f.audit(&c.grant().id).await.is_empty());
    }
    // Without it: every item with its first record, in one write, each holding its slot.
    let made = bundle_of("alice", &["prod-logs", "prod-web"], T0.plus_secs(2));
    f.reset_calls();
    let stored = f.store.create_bundle(&made).await.unwrap();
    f.expect_calls(&[("DynamoDB.TransactWriteItems", 1)]);
    assert_eq!(stored.len(), 2);
    for c in &made {
        let g = f.store.get(&c.grant().id).await.unwrap().unwrap();
        assert_eq!(g.bundle, c.grant().bundle);
        assert_eq!(f.audit(&g.id).await.len(), 1);
    }
    let again = open("alice", "prod-web", T0.plus_secs(3));
    assert!(matches!(
        f.store.create(&again, None).await,
        Err(StoreError::AlreadyOpen { .. })
    ));
}

async fn reconciles_of_a_role_are_ordered_by_its_ledger_version<S: GrantStore>(f: Fixture<S>) {
    let t = |s| T0.plus_secs(s);
    let applied = |marker: &str, ledger_version| AppliedPolicy {
        marker: marker.to_owned(),
        ledger_version,
    };
    let a = f.create(&open("alice", "prod-logs", T0)).await;
    let role = a.role_arn.clone();
    // A role never revoked: nothing to record against, nothing in the registry.
    assert_eq!(
        f.store.role_ledger(&role).await.unwrap(),
        RoleLedger {
            version: 0,
            applied: None,
            entries: vec![]
        }
    );
    assert!(f.store.revoked_roles().await.unwrap().is_empty());
    assert_eq!(
        f.store.record_applied(&role, &applied("m0", 0)).await,
        Err(StoreError::LedgerMoved { role: role.clone() })
    );
    // A revocation with a live session puts the role in the registry at version 1.
    let a = f.step(&a, auto_approve(), &approver(), t(1)).await;
    let a = f.step(&a, issue(t(900)), &as_user("alice"), t(2)).await;
    f.step(&a, revoke(), &as_user("alice"), t(3)).await;
    let heads = f.store.revoked_roles().await.unwrap();
    assert_eq!(
        heads,
        [LedgerHead {
            role: TargetRole {
                role_arn: role.clone(),
                revoker_role_arn: None
            },
            version: 1,
            applied: None,
        }]
    );
    f.reset_calls();
    f.store
        .record_applied(&role, &applied("m1", 1))
        .await
        .unwrap();
    f.expect_calls(&[("DynamoDB.UpdateItem", 1)]);
    // Another revocation moves the ledger: a reconcile that read version 1 cannot record.
    let b = f.create(&open("bob", "prod-logs", T0)).await;
    let b = f.step(&b, auto_approve(), &approver(), t(4)).await;
    let b = f.step(&b, issue(t(950)), &as_user("bob"), t(5)).await;
    f.step(&b, revoke(), &as_user("bob"), t(6)).await;
    assert_eq!(
        f.store.record_applied(&role, &applied("m1-stale", 1)).await,
        Err(StoreError::LedgerMoved { role: role.clone() })
    );
    let ledger = f.store.role_ledger(&role).await.unwrap();
    assert_eq!(
        (ledger.version, ledger.applied, ledger.entries.len()),
        (2, Some(applied("m1", 1)), 2)
    );
    f.store
        .record_applied(&role, &applied("m2", 2))
        .await
        .unwrap();
    assert_eq!(
        f.store.revoked_roles().await.unwrap()[0].applied,
        Some(applied("m2", 2))
    );
    // The registry and the applied marker are not ledger entries, and other roles are apart.
    let other = f.create(&open("carol", "prod-db", T0)).await;
    assert_eq!(
        f.store.role_ledger(&other.role_arn).await.unwrap().version,
        0
    );
}

async fn activity_is_stored_once_per_event_and_read_by_time<S: GrantStore + ActivityStore>(
    f: Fixture<S>,
) {
    let (a, b) = (GrantId::generate(T0), GrantId::generate(T0.plus_secs(1)));
    // 30 events, several in the same second, written out of order.
    let mut events: Vec<Activity> = (0..30)
        .map(|i| {
            call(
                &format!("ev-{:03}", (i * 7) % 30),
                T0.plus_secs((i % 6) * 60),
            )
        })
        .collect();
    for e in &events {
        assert_eq!(
            f.store.record_activity(&a, e).await.unwrap(),
            Recorded::Stored
        );
    }
    for e in events.iter().take(3) {
        assert_eq!(
            f.store.record_activity(&a, e).await.unwrap(),
            Recorded::AlreadyStored,
            "a redelivered event is stored once"
        );
    }
    let other = call("ev-b", T0.plus_secs(30));
    f.store.record_activity(&b, &other).await.unwrap();

    events.sort_by(|x, y| (x.time, &x.event_id).cmp(&(y.time, &y.event_id)));
    let (store, ga, gb) = (&f.store, &a, &b);
    let read = all_pages(|p| async move { store.activity_of_grant(ga, &p).await }, 4).await;
    assert_eq!(
        read, events,
        "by time, then event id, across shards, each once"
    );
    let read_b = all_pages(|p| async move { store.activity_of_grant(gb, &p).await }, 4).await;
    assert_eq!(read_b, [other]);
    assert_eq!(
        f.store.activity_count(&a).await.unwrap(),
        ActivityCount {
            stored: 30,
            over_cap: 0
        }
    );
    let none = GrantId::generate(T0.plus_secs(2));
    assert!(
        f.store
            .activity_of_grant(&none, &PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // A cursor for another grant only moves through that grant's own activity.
    let first = f
        .store
        .activity_of_grant(&a, &PageRequest::first(2))
        .await
        .unwrap();
    let cursor = first.next.unwrap();
    let moved = f
        .store
        .activity_of_grant(&b, &PageRequest::after(10, cursor))
        .await
        .unwrap();
    assert_eq!(moved.items.len(), 1);
    assert_eq!(
        f.store
            .activity_of_grant(&a, &PageRequest::after(2, Cursor::from_client("garbage")))
            .await
            .unwrap_err(),
        StoreError::BadCursor
    );
}

async fn one_event_is_found_by_time_and_id_and_refusals_counted_by_minute<
    S: GrantStore + ActivityStore,
>(
    f: Fixture<S>,
) {
    let (g, other) = (GrantId::generate(T0), GrantId::generate(T0.plus_secs(1)));
    let event = call("ev-found", T0.plus_secs(61));
    f.store.record_activity(&g, &event).await.unwrap();
    let found = f
        .store
        .activity_event(&g, event.time, "ev-found")
        .await
        .unwrap();
    assert_eq!(found, Some(event.clone()));
    for (grant, time, id) in [
        (&other, event.time, "ev-found"),
        (&g, event.time.plus_secs(1), "ev-found"),
        (&g, event.time, "ev-other"),
    ] {
        assert_eq!(f.store.activity_event(grant, time, id).await.unwrap(), None);
    }

    let minute = |m: i64| T0.plus_secs(m * 60 + 7);
    for m in [0, 1, 2, 3, 4, 5, 5] {
        f.store.refused_recently(&g, minute(m), true).await.unwrap();
    }
    f.store
        .refused_recently(&other, minute(5), true)
        .await
        .unwrap();
    // At minute 5: minutes 1 to 5 count (two in minute 5), minute 0 no longer; the other
    // grant's never.
    let recent = |m: i64| {
        let store = &f.store;
        let g = &g;
        async move { store.refused_recently(g, minute(m), false).await.unwrap() }
    };
    assert_eq!(recent(5).await, 6);
    assert_eq!(recent(9).await, 2);
    assert_eq!(recent(10).await, 0);
    // The counters are not activity.
    let page = f
        .store
        .activity_of_grant(&g, &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(page.items, [event]);
    assert_eq!(f.store.activity_count(&g).await.unwrap().stored, 1);
}

async fn activity_past_the_cap_is_counted_not_stored<S: GrantStore + ActivityStore>(f: Fixture<S>) {
    let grant = GrantId::generate(T0);
    // Event ids that all land in one shard, one more than it stores.
    let ids: Vec<String> = (0..)
        .map(|i| format!("flood-{i:06}"))
        .filter(|id| activity_shard(id) == 3)
        .take(ACTIVITY_CAP_PER_SHARD as usize + 1)
        .collect();
    let store = &f.store;
    let grant = &grant;
    let mut outcomes = Vec::new();
    for chunk in ids.chunks(16) {
        outcomes.extend(
            futures_join_all(chunk.iter().map(|id| async move {
                store.record_activity(grant, &call(id, T0)).await.unwrap()
            }))
            .await,
        );
    }
    let stored = outcomes.iter().filter(|o| **o == Recorded::Stored).count();
    assert_eq!(
        stored as u64, ACTIVITY_CAP_PER_SHARD,
        "concurrent writes never pass the cap"
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == Recorded::OverCap).count(),
        1
    );
    assert_eq!(
        f.store.activity_count(grant).await.unwrap(),
        ActivityCount {
            stored: ACTIVITY_CAP_PER_SHARD,
            over_cap: 1
        }
    );
    // Other shards of the same grant still store.
    let elsewhere = (0..)
        .map(|i| format!("other-{i}"))
        .find(|id| activity_shard(id) != 3)
        .unwrap();
    assert_eq!(
        f.store
            .record_activity(grant, &call(&elsewhere, T0))
            .await
            .unwrap(),
        Recorded::Stored
    );
}

async fn unattributed_events_are_kept_once_by_day<S: GrantStore + ActivityStore>(f: Fixture<S>) {
    let event = |id: &str, at: Timestamp| UnattributedEvent {
        activity: call(id, at),
        role_arn: jit_core::domain::RoleArn::parse(
            "arn:aws:iam::222222222222:role/jit/prod-logs-ro",
        )
        .unwrap(),
        session_name: "mallory-by-hand".to_owned(),
        source_identity: None,
        why: "the session name `mallory-by-hand` names no grant".to_owned(),
    };
    let day = 86_400;
    let first = event("u-1", T0);
    assert_eq!(
        f.store.record_unattributed(&first).await.unwrap(),
        Recorded::Stored
    );
    assert_eq!(
        f.store.record_unattributed(&first).await.unwrap(),
        Recorded::AlreadyStored
    );
    let second = event("u-2", T0.plus_secs(60));
    let next_day = event("u-3", T0.plus_secs(day));
    f.store.record_unattributed(&second).await.unwrap();
    f.store.record_unattributed(&next_day).await.unwrap();
    let store = &f.store;
    let today = T0.utc_day();
    let listed = all_pages(
        |p| {
            let today = today.clone();
            async move { store.unattributed_on(&today, &p).await }
        },
        1,
    )
    .await;
    assert_eq!(listed, [first, second]);
    let tomorrow = T0.plus_secs(day).utc_day();
    let listed = store
        .unattributed_on(&tomorrow, &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(listed.items, [next_day]);
}

macro_rules! contract {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::Fixture { store: super::MemoryStore::new(), calls: None }).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let table = super::TestTable::create(stringify!($test)).await.unwrap();
                    let store = super::DynamoStore::new(table.client.clone(), &table.name);
                    super::$test(super::Fixture { store, calls: Some(table.calls.clone()) }).await;
                }
            )*
        }
    };
}

contract!(
    create_then_get,
    a_duplicate_id_is_refused,
    every_transition_is_stored_with_its_audit_record,
    a_stale_version_is_rejected_and_writes_nothing,
    concurrent_transitions_on_one_grant_let_exactly_one_win,
    the_due_index_returns_only_due_items_across_shards,
    listings_page_through_only_their_own_partition,
    cursors_from_another_query_are_refused,
    a_reused_idempotency_key_returns_the_first_result,
    audit_records_are_found_by_time_range,
    the_revocation_ledger_is_kept_per_role,
    one_open_request_per_person_and_target,
    a_bundle_is_stored_whole_in_one_write_or_not_at_all,
    reconciles_of_a_role_are_ordered_by_its_ledger_version,
    activity_is_stored_once_per_event_and_read_by_time,
    activity_past_the_cap_is_counted_not_stored,
    one_event_is_found_by_time_and_id_and_refusals_counted_by_minute,
    unattributed_events_are_kept_once_by_day,
);
