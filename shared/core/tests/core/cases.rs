//! The use cases on their own, with no HTTP in sight: a request opened, reviewed, used and
//! revoked through `jit_core::cases`, and each refusal a caller can meet, as the typed
//! refusal the functions then map to a response.

use std::sync::Arc;

use jit_core::cases::{Cases, Noun, OpenRequest, Refusal};
use jit_core::clock::Timestamp;
use jit_core::domain::{
    Actor, Command, Grant, GrantDuration, GrantState, GroupName, Reason, ReviewDecision, Service,
    SessionKind, TargetId, TransitionError, UserId,
};
use jit_core::identity::Caller;
use jit_core::policy::Rules;
use jit_core::store::{Created, GrantStore, MemoryStore, SignedStore, StoreError};
use jit_core::trust::{KeyRing, LocalKeys, PublicKeys, SignError};
use jit_test_support::{WEDNESDAY_10, actions, example_rules};

fn caller(user: &str, groups: &[&str]) -> Caller {
    Caller {
        user: UserId::parse(user).unwrap(),
        email: None,
        groups: groups
            .iter()
            .map(|g| GroupName::parse(*g).unwrap())
            .collect(),
    }
}

fn ask(target: &str, duration: &str) -> OpenRequest {
    OpenRequest {
        target: TargetId::parse(target).unwrap(),
        duration: GrantDuration::parse(duration).unwrap(),
        reason: Reason::parse("investigating INC-42 in production").unwrap(),
        ticket: None,
        break_glass: false,
        starts_at: None,
    }
}

struct World {
    store: SignedStore<MemoryStore>,
    keys: LocalKeys,
    rules: Rules,
}

impl World {
    fn new() -> Self {
        let keys = LocalKeys::generate();
        let store = SignedStore::new(MemoryStore::new(), Arc::new(keys.clone()));
        Self {
            store,
            keys,
            rules: example_rules(),
        }
    }

    /// A pending request by alice for `prod-deploy`, which the rules sent to one reviewer.
    async fn pending(&self, cases: &Cases<'_, SignedStore<MemoryStore>>) -> Grant {
        let alice = caller("alice", &["engineers"]);
        let created = cases
            .open_request(&alice, ask("prod-deploy", "1h"), None, 3600, WEDNESDAY_10)
            .await
            .unwrap();
        let Created::New(grant) = created else {
            panic!("a new request")
        };
        let change = grant
            .apply(
                Command::AwaitReview {
                    approvals_required: 1,
                    requirements: Vec::new(),
                    policy_hash: self.rules.hash().to_owned(),
                    rules_said: String::new(),
                    on_call: Default::default(),
                },
                &Actor::Service(Service::Approver),
                WEDNESDAY_10,
            )
            .unwrap();
        self.store.commit(&change).await.unwrap();
        change.grant().clone()
    }
}

#[tokio::test]
async fn a_request_is_opened_reviewed_used_and_revoked_through_the_use_cases() {
    let world = World::new();
    let ring: PublicKeys = world.keys.ring().into();
    let cases = Cases::new(&world.store, &world.rules, &ring);
    let (alice, bob) = (caller("alice", &["engineers"]), caller("bob", &["sre"]));
    let now = WEDNESDAY_10;
    let pending = world.pending(&cases).await;
    let id = pending.id.as_str();

    let seen = cases.visible(&bob, id, Noun::Request, now).await.unwrap();
    assert_eq!(seen.state, GrantState::Pending);
    let active = cases
        .review(&bob, id, ReviewDecision::Approve, Some("ok".into()), now)
        .await
        .unwrap();
    assert_eq!(active.state, GrantState::Active);

    let later = now.plus_secs(60);
    let plan = cases
        .plan_session(&alice, id, SessionKind::Cli, later)
        .await
        .unwrap();
    // To the grant's end (an hour from approval), within the hour a chained session allows,
    // less the second STS may count from later than `later`.
    assert_eq!(plan.duration_secs, 3600 - 60 - 1);
    let expires = later.plus_secs(plan.duration_secs);
    let used = cases
        .record_session(&alice, plan, SessionKind::Cli, expires, later)
        .await
        .unwrap();
    assert_eq!(used.sessions_issued, 1);

    let revoked = cases
        .revoke(
            &alice,
            id,
            Reason::parse("the work is done early").unwrap(),
            later,
        )
        .await
        .unwrap();
    assert_eq!(revoked.grant().state, GrantState::Revoked);
    let entry = revoked.revocation().expect("live sessions are cut");
    assert_eq!(entry.until, expires);
    assert_eq!(
        actions(&world.store, &pending.id)
            .await
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "REQUESTED",
            "AWAITING_REVIEW",
            "APPROVED",
            "SESSION_ISSUED",
            "REVOKED"
        ]
    );
}

#[tokio::test]
async fn every_refusal_is_typed_and_changes_nothing() {
    let world = World::new();
    let ring: PublicKeys = world.keys.ring().into();
    let cases = Cases::new(&world.store, &world.rules, &ring);
    let (alice, bob, carol) = (
        caller("alice", &["engineers"]),
        caller("bob", &["sre"]),
        caller("carol", &[]),
    );
    let now = WEDNESDAY_10;
    let pending = world.pending(&cases).await;
    let id = pending.id.as_str();

    // Asking: the target, the duration and the rules.
    let refused = |r: Result<Created, Refusal>| r.map(|_| ()).unwrap_err();
    let unknown = refused(
        cases
            .open_request(&alice, ask("prod-nowhere", "1h"), None, 3600, now)
            .await,
    );
    assert!(
        matches!(&unknown, Refusal::Invalid(why) if why.contains("unknown target `prod-nowhere`") && why.contains("prod-deploy")),
        "{unknown:?}"
    );
    let long = refused(
        cases
            .open_request(&alice, ask("prod-deploy", "3h"), None, 3600, now)
            .await,
    );
    assert!(
        matches!(&long, Refusal::Invalid(why) if why.contains("longer than target `prod-deploy` allows")),
        "{long:?}"
    );
    let mut glass = ask("break-glass-admin", "1h");
    glass.break_glass = true;
    let glass = refused(cases.open_request(&alice, glass, None, 3600, now).await);
    assert!(
        matches!(&glass, Refusal::Forbidden { why, policies: Some(_) } if why.starts_with("break-glass is not permitted here")),
        "{glass:?}"
    );
    let not_theirs = refused(
        cases
            .open_request(&carol, ask("prod-deploy", "1h"), None, 3600, now)
            .await,
    );
    assert!(
        matches!(
            &not_theirs,
            Refusal::Forbidden {
                policies: Some(_),
                ..
            }
        ),
        "{not_theirs:?}"
    );

    // Acting on alice's pending request.
    let cancel_by_bob = cases.cancel(&bob, id, now).await.unwrap_err();
    assert!(
        matches!(&cancel_by_bob, Refusal::Forbidden { why, policies: None } if why == "only the requester may cancel a request"),
        "{cancel_by_bob:?}"
    );
    for (who, outcome) in [
        (
            "carol cancels",
            cases.cancel(&carol, id, now).await.map(|_| ()),
        ),
        (
            "carol reads",
            cases
                .visible(&carol, id, Noun::Request, now)
                .await
                .map(|_| ()),
        ),
        (
            "a malformed id",
            cases.cancel(&alice, "not-an-id", now).await.map(|_| ()),
        ),
        (
            "carol reviews",
            cases
                .review(&carol, id, ReviewDecision::Approve, None, now)
                .await
                .map(|_| ()),
        ),
    ] {
        assert!(
            matches!(outcome, Err(Refusal::NotFound(Noun::Request))),
            "{who}: {outcome:?}"
        );
    }
    let own = cases
        .review(&alice, id, ReviewDecision::Approve, None, now)
        .await
        .unwrap_err();
    assert!(
        matches!(&own, Refusal::Forbidden { why, .. } if why == "no policy permits you to Approve on target `prod-deploy`"),
        "{own:?}"
    );
    let session = cases
        .plan_session(&alice, id, SessionKind::Cli, now)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &session,
            Refusal::Transition(TransitionError::WrongState { .. })
        ),
        "{session:?}"
    );
    let by_bob = cases
        .plan_session(&bob, id, SessionKind::Cli, now)
        .await
        .unwrap_err();
    assert!(
        matches!(&by_bob, Refusal::Forbidden { why, .. } if why == "only the requester may use a grant"),
        "{by_bob:?}"
    );
    let by_carol = cases
        .revoke(
            &carol,
            id,
            Reason::parse("cutting access for the audit").unwrap(),
            now,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&by_carol, Refusal::NotFound(Noun::Grant)),
        "{by_carol:?}"
    );

    // Evidence signed by keys this deployment does not hold does not count.
    let strangers: PublicKeys = LocalKeys::generate().ring().into();
    let forged = Cases::new(&world.store, &world.rules, &strangers);
    let unverified = forged
        .review(&bob, id, ReviewDecision::Approve, None, now)
        .await
        .unwrap_err();
    assert!(
        matches!(&unverified, Refusal::Unverified { nothing_done, .. } if *nothing_done == "no review was recorded"),
        "{unverified:?}"
    );

    // After all that, the request is as the rules left it.
    let after = world.store.get(&pending.id).await.unwrap().unwrap();
    assert_eq!(after, pending);
}

#[tokio::test]
async fn keys_that_cannot_be_read_refuse_with_nothing_done_and_are_read_again_next_time() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let world = World::new();
    let ring = world.keys.ring();
    // KMS fails the first read (an outage), then the deployment's refusal, then answers.
    let reads = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&reads);
    let keys = PublicKeys::read_with(move || {
        let (n, ring) = (counted.fetch_add(1, Ordering::SeqCst), ring.clone());
        Box::pin(async move {
            match n {
                0 => Err(SignError::Unavailable(jit_core::cause::Cause::message(
                    "KMS is down",
                ))),
                1 => Err(SignError::Refused(jit_core::cause::Cause::message(
                    "AccessDenied",
                ))),
                _ => Ok::<KeyRing, _>(ring),
            }
        })
    });
    assert!(!keys.is_read());
    let cases = Cases::new(&world.store, &world.rules, &keys);
    let bob = caller("bob", &["sre"]);
    let pending = world.pending(&cases).await;
    let id = pending.id.as_str();
    let now = WEDNESDAY_10;

    for why in ["KMS is down", "AccessDenied"] {
        let refused = cases
            .review(&bob, id, ReviewDecision::Approve, None, now)
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, Refusal::KeysUnreadable { nothing_done, .. } if *nothing_done == "no review was recorded"),
            "{refused:?}"
        );
        assert!(refused.to_string().contains(why), "{refused}");
        assert_eq!(
            world.store.get(&pending.id).await.unwrap().unwrap(),
            pending
        );
    }
    // A failed read is not kept: the third review reads them again and is recorded.
    let active = cases
        .review(&bob, id, ReviewDecision::Approve, None, now)
        .await
        .unwrap();
    assert_eq!(active.state, GrantState::Active);
    assert!(keys.is_read());
    // Once read they are kept: a review after it verifies (and is refused for the state)
    // without reading them again.
    let late = cases
        .review(&bob, id, ReviewDecision::Approve, None, now)
        .await
        .unwrap_err();
    assert!(matches!(&late, Refusal::Transition(_)), "{late:?}");
    assert_eq!(reads.load(Ordering::SeqCst), 3);
}

/// The store of someone with write access to the table but not the functions' keys, who
/// slips an unsigned approval in while a review is being recorded: that review's first commit
/// loses the race to it.
struct ForgerRacing {
    signed: SignedStore<MemoryStore>,
    raced: std::sync::atomic::AtomicBool,
}

impl GrantStore for ForgerRacing {
    async fn create(
        &self,
        creation: &jit_core::domain::Creation,
        idempotency: Option<&jit_core::store::Idempotency>,
    ) -> Result<Created, jit_core::store::StoreError> {
        self.signed.create(creation, idempotency).await
    }

    async fn create_bundle(
        &self,
        creations: &[jit_core::domain::Creation],
    ) -> Result<Vec<Grant>, StoreError> {
        self.signed.create_bundle(creations).await
    }

    async fn commit(&self, change: &jit_core::domain::Change) -> Result<(), StoreError> {
        if self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return self.signed.commit(change).await;
        }
        let id = &change.grant().id;
        let current = self.signed.get(id).await?.unwrap();
        let mallory = Actor::User(UserId::parse("mallory").unwrap());
        let forged = current
            .apply(
                Command::Review {
                    decision: ReviewDecision::Approve,
                    comment: None,
                    fills: Vec::new(),
                    slack: None,
                },
                &mallory,
                WEDNESDAY_10,
            )
            .unwrap();
        // Written straight to the table: no signature.
        self.signed.inner().commit(&forged).await?;
        Err(StoreError::Conflict { id: id.clone() })
    }

    async fn put_checkpoint(
        &self,
        checkpoint: &jit_core::trust::Checkpoint,
    ) -> Result<(), StoreError> {
        self.signed.put_checkpoint(checkpoint).await
    }

    async fn record_applied(
        &self,
        role: &jit_core::domain::RoleArn,
        applied: &jit_core::store::AppliedPolicy,
    ) -> Result<(), StoreError> {
        self.signed.record_applied(role, applied).await
    }

    jit_core::delegate_grant_store_reads!(signed);
}

#[tokio::test]
async fn a_review_that_lost_a_race_to_a_forged_change_is_refused_not_decided_on_it() {
    let world = World::new();
    let ring: PublicKeys = world.keys.ring().into();
    let pending = world
        .pending(&Cases::new(&world.store, &world.rules, &ring))
        .await;
    let racing = ForgerRacing {
        signed: world.store,
        raced: std::sync::atomic::AtomicBool::new(false),
    };
    let cases = Cases::new(&racing, &world.rules, &ring);
    let bob = caller("bob", &["sre"]);
    let refused = cases
        .review(
            &bob,
            pending.id.as_str(),
            ReviewDecision::Approve,
            None,
            WEDNESDAY_10,
        )
        .await
        .unwrap_err();
    // Read again with its chain after the lost race, the request's unsigned approval is
    // found: nothing is decided on it (a bare read would have taken it as approved).
    assert!(
        matches!(&refused, Refusal::Unverified { nothing_done, .. } if *nothing_done == "no review was recorded"),
        "{refused:?}"
    );
    let after = racing.signed.get(&pending.id).await.unwrap().unwrap();
    assert_eq!(after.reviews.len(), 1, "only the forged review is there");
    assert_eq!(after.reviews[0].reviewer.as_str(), "mallory");
}

#[tokio::test]
async fn a_scheduled_request_is_judged_by_its_window_unusable_before_it_and_cancellable() {
    let world = World::new();
    let ring: PublicKeys = world.keys.ring().into();
    let cases = Cases::new(&world.store, &world.rules, &ring);
    let (alice, bob) = (caller("alice", &["engineers"]), caller("bob", &["sre"]));
    let friday_evening = WEDNESDAY_10.plus_secs(2 * 86_400 + 8 * 3600); // Fri 18:00 UTC
    let sunday_night = WEDNESDAY_10.plus_secs(4 * 86_400 + 12 * 3600); // Sun 22:00
    let monday_morning = WEDNESDAY_10.plus_secs(5 * 86_400 - 3600); // Mon 09:00
    let at = |start: Timestamp| OpenRequest {
        starts_at: Some(start),
        ..ask("prod-deploy", "1h")
    };
    let refused = |r: Result<Created, Refusal>| r.map(|_| ()).unwrap_err();

    // Asked in business hours for Sunday night: the rules judge Sunday night.
    let sunday = refused(
        cases
            .open_request(&alice, at(sunday_night), None, 3600, friday_evening)
            .await,
    );
    assert!(
        matches!(&sunday, Refusal::Forbidden { policies: Some(p), .. } if p == &["write-access-in-business-hours"]),
        "{sunday:?}"
    );
    // The start must be a whole minute, ahead, at most seven days, and never break-glass.
    for (start, says) in [
        (monday_morning.plus_secs(30), "must be a whole minute"),
        (friday_evening.plus_secs(-60), "is not in the future"),
        (
            friday_evening.plus_secs(7 * 86_400 + 60),
            "more than 7 days ahead",
        ),
    ] {
        let why = refused(
            cases
                .open_request(&alice, at(start), None, 3600, friday_evening)
                .await,
        );
        assert!(
            matches!(&why, Refusal::Invalid(w) if w.contains(says)),
            "{why:?}"
        );
    }
    let mut glass = at(monday_morning);
    glass.break_glass = true;
    let glass = refused(
        cases
            .open_request(&alice, glass, None, 3600, friday_evening)
            .await,
    );
    assert!(
        matches!(&glass, Refusal::Invalid(w) if w.contains("cannot be scheduled")),
        "{glass:?}"
    );

    // Friday 20:00 is out of hours, but a Monday-morning window is not.
    let asked_at = friday_evening.plus_secs(2 * 3600);
    let Created::New(grant) = cases
        .open_request(&alice, at(monday_morning), None, 3600, asked_at)
        .await
        .unwrap()
    else {
        panic!("a new request")
    };
    assert_eq!(grant.starts_at, Some(monday_morning));
    let change = grant
        .apply(
            Command::AwaitReview {
                approvals_required: 1,
                requirements: Vec::new(),
                policy_hash: world.rules.hash().to_owned(),
                rules_said: String::new(),
                on_call: Default::default(),
            },
            &Actor::Service(Service::Approver),
            asked_at,
        )
        .unwrap();
    world.store.commit(&change).await.unwrap();
    let id = grant.id.as_str();
    let active = cases
        .review(
            &bob,
            id,
            ReviewDecision::Approve,
            None,
            asked_at.plus_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(active.ends_at, Some(monday_morning.plus_secs(3600)));

    // Approved, and still unusable until Monday 09:00: refused before STS, nothing recorded.
    let early = cases
        .plan_session(&alice, id, SessionKind::Cli, monday_morning.plus_secs(-1))
        .await
        .unwrap_err();
    assert!(
        matches!(&early, Refusal::Transition(TransitionError::NotYetOpen { opens_at, .. }) if *opens_at == monday_morning),
        "{early:?}"
    );
    let plan = cases
        .plan_session(&alice, id, SessionKind::Cli, monday_morning)
        .await
        .unwrap();
    assert_eq!(plan.duration_secs, 3600 - 1);

    // Cancelled before the start by its requester: no one else, and then it is over.
    let not_bob = cases.cancel(&bob, id, asked_at.plus_secs(120)).await;
    assert!(
        matches!(not_bob, Err(Refusal::Forbidden { .. })),
        "{not_bob:?}"
    );
    let cancelled = cases
        .cancel(&alice, id, asked_at.plus_secs(120))
        .await
        .unwrap();
    assert_eq!(cancelled.state, GrantState::Cancelled);
    assert_eq!(
        actions(&world.store, &grant.id)
            .await
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["REQUESTED", "AWAITING_REVIEW", "APPROVED", "CANCELLED"]
    );
}

#[tokio::test]
async fn a_request_of_several_targets_is_made_whole_or_not_at_all_and_each_item_decided_alone() {
    let world = World::new();
    let ring: PublicKeys = world.keys.ring().into();
    let cases = Cases::new(&world.store, &world.rules, &ring);
    let now = WEDNESDAY_10;
    // An engineer who is also a DBA: write access through an SRE, database admin through a
    // dba-lead and security.
    let erin = caller("erin", &["engineers", "dba"]);
    let bob = caller("bob", &["sre"]);
    let targets = |names: &[&str]| -> Vec<TargetId> {
        names.iter().map(|n| TargetId::parse(*n).unwrap()).collect()
    };
    let mut input = ask("prod-deploy", "1h");
    input.ticket = Some(jit_core::domain::Ticket::parse("CHG-7").unwrap());
    async fn mine(store: &SignedStore<MemoryStore>, user: &UserId) -> Vec<Grant> {
        store
            .list_by_requester(user, &jit_core::store::PageRequest::first(50))
            .await
            .unwrap()
            .items
    }

    // Refused whole: a target the rules forbid (named), too few, too many, twice, break-glass.
    let forbidden = cases
        .open_bundle(
            &erin,
            targets(&["prod-deploy", "break-glass-admin"]),
            input.clone(),
            now,
        )
        .await
        .unwrap_err();
    assert_eq!(
        forbidden.target,
        Some(TargetId::parse("break-glass-admin").unwrap())
    );
    assert!(
        matches!(&forbidden.refusal, Refusal::Forbidden { why, .. } if why.starts_with("target `break-glass-admin`: ") && why.ends_with("the whole request was refused; nothing was made")),
        "{forbidden:?}"
    );
    let many: Vec<&str> = ["prod-deploy"; 21].to_vec();
    for (names, says) in [
        (vec!["prod-deploy"], "2 to 20 targets"),
        (many, "2 to 20 targets"),
        (
            vec!["prod-deploy", "prod-deploy"],
            "names `prod-deploy` twice",
        ),
    ] {
        let why = cases
            .open_bundle(&erin, targets(&names), input.clone(), now)
            .await
            .unwrap_err();
        assert!(
            why.target.is_none() && matches!(&why.refusal, Refusal::Invalid(w) if w.contains(says)),
            "{why:?}"
        );
    }
    let mut glass = input.clone();
    glass.break_glass = true;
    let why = cases
        .open_bundle(
            &erin,
            targets(&["prod-deploy", "prod-db-admin"]),
            glass,
            now,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&why.refusal, Refusal::Invalid(w) if w.contains("break-glass")),
        "{why:?}"
    );
    assert!(
        mine(&world.store, &erin.user).await.is_empty(),
        "nothing was made"
    );

    // Made whole: two grants, one write, each recording the bundle.
    let items = cases
        .open_bundle(
            &erin,
            targets(&["prod-deploy", "prod-db-admin"]),
            input.clone(),
            now,
        )
        .await
        .unwrap();
    assert_eq!(items.len(), 2);
    let bundle = items[0].id.clone();
    for item in &items {
        assert_eq!(
            item.bundle.as_ref().unwrap().items,
            [items[0].id.clone(), items[1].id.clone()]
        );
        assert_eq!(item.state, GrantState::Pending);
    }
    // A target already open refuses the whole of the next one.
    let again = cases
        .open_bundle(
            &erin,
            targets(&["prod-logs-ro", "prod-deploy"]),
            input.clone(),
            now,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            again.refusal,
            Refusal::Store(StoreError::AlreadyOpen { .. })
        ),
        "{again:?}"
    );
    assert_eq!(
        mine(&world.store, &erin.user).await.len(),
        2,
        "prod-logs-ro was not made either"
    );

    // The rules send each to its own reviewers.
    for (item, required) in items.iter().zip([1, 2]) {
        let change = item
            .apply(
                Command::AwaitReview {
                    approvals_required: required,
                    requirements: Vec::new(),
                    policy_hash: world.rules.hash().to_owned(),
                    rules_said: String::new(),
                    on_call: Default::default(),
                },
                &Actor::Service(Service::Approver),
                now,
            )
            .unwrap();
        world.store.commit(&change).await.unwrap();
    }
    // Bob (an SRE) sees and approves, in one call, only the item he may: prod-deploy.
    let seen = cases.bundle(&bob, bundle.as_str(), now).await.unwrap();
    assert_eq!(seen.len(), 1, "bob may see prod-deploy only");
    let done = cases
        .review_bundle(&bob, bundle.as_str(), ReviewDecision::Approve, None, now)
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    assert!(
        matches!(&done[0], jit_core::cases::ItemOutcome::Done(g) if g.state == GrantState::Active)
    );
    // The requester sees both; she cannot review her own; a stranger sees nothing.
    assert_eq!(
        cases
            .bundle(&erin, bundle.as_str(), now)
            .await
            .unwrap()
            .len(),
        2
    );
    let own = cases
        .review_bundle(&erin, bundle.as_str(), ReviewDecision::Approve, None, now)
        .await
        .unwrap_err();
    assert!(matches!(own, Refusal::Forbidden { .. }), "{own:?}");
    let stranger = caller("carol", &[]);
    let hidden = cases
        .bundle(&stranger, bundle.as_str(), now)
        .await
        .unwrap_err();
    assert!(matches!(hidden, Refusal::NotFound(_)), "{hidden:?}");
    // An item's own id is not a bundle's.
    let second = cases
        .bundle(&erin, items[1].id.as_str(), now)
        .await
        .unwrap_err();
    assert!(matches!(second, Refusal::NotFound(_)), "{second:?}");

    // Revoking the request revokes the active item and leaves the pending one to be cancelled.
    let revoked = cases
        .revoke_bundle(
            &erin,
            bundle.as_str(),
            &Reason::parse("the release is done").unwrap(),
            now,
        )
        .await
        .unwrap();
    let outcomes: Vec<String> = revoked
        .iter()
        .map(|o| match o {
            jit_core::cases::ItemOutcome::Done(change) => {
                format!("revoked {}", change.grant().target)
            }
            jit_core::cases::ItemOutcome::Skipped(g, why) => format!("skipped {}: {why}", g.target),
            jit_core::cases::ItemOutcome::Refused(g, why) => format!("refused {}: {why}", g.target),
        })
        .collect();
    assert_eq!(outcomes[0], "revoked prod-deploy");
    assert!(
        outcomes[1].starts_with("skipped prod-db-admin: it is PENDING"),
        "{outcomes:?}"
    );
    // Nothing left to revoke is a refusal; a stranger is told there is no such request.
    let again = cases
        .revoke_bundle(
            &erin,
            bundle.as_str(),
            &Reason::parse("the release is done").unwrap(),
            now,
        )
        .await
        .unwrap_err();
    assert!(matches!(again, Refusal::Forbidden { .. }), "{again:?}");
    let hidden = cases
        .revoke_bundle(
            &stranger,
            bundle.as_str(),
            &Reason::parse("not mine at all").unwrap(),
            now,
        )
        .await
        .unwrap_err();
    assert!(matches!(hidden, Refusal::NotFound(_)), "{hidden:?}");
}
