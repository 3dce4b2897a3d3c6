//! The one way a stored grant changes: read it, decide (authorize, then apply a command),
//! commit, and when another change won the race, read again and decide afresh, a bounded number
//! of times with a jittered, growing back-off. Handlers only say what to decide.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::domain::{Change, Grant, GrantId};
use crate::store::{GrantStore, StoreError};

/// How often, and how patiently, a transition is retried over conflicting changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all.
    pub attempts: u32,
    /// The first back-off; each later one doubles, up to `max`, with jitter.
    pub base: Duration,
    /// The longest back-off.
    pub max: Duration,
}

impl Retry {
    /// The policy every transition uses: enough for twenty reviewers racing on one request.
    pub const STANDARD: Self = Self {
        attempts: 12,
        base: Duration::from_millis(4),
        max: Duration::from_millis(200),
    };

    /// The pause before attempt `attempt + 1`: the doubled base, capped, times a random factor
    /// in [0.5, 1.5) so racing writers spread out.
    pub fn delay(&self, attempt: u32) -> Duration {
        let grown = self
            .base
            .saturating_mul(1_u32 << attempt.min(16))
            .min(self.max);
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let factor = 0.5 + (random % 1000) as f64 / 1000.0;
        grown.mul_f64(factor)
    }
}

/// Why a transition did not happen.
#[derive(Debug, Clone, PartialEq)]
pub enum TransitionFailure<E> {
    /// No grant has that id.
    NotFound,
    /// The decision refused it (not permitted, wrong state, ...).
    Refused(E),
    /// Other changes kept winning the race until the attempts ran out.
    KeptChanging,
    /// The store failed.
    Store(StoreError),
}

impl<E: std::fmt::Display> std::fmt::Display for TransitionFailure<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound => f.write_str("no such grant"),
            Self::Refused(e) => write!(f, "{e}"),
            Self::KeptChanging => f.write_str("it kept changing; the attempts ran out"),
            Self::Store(e) => write!(f, "{e}"),
        }
    }
}

/// Reads grant `id`, lets `decide` turn it into a change (or refuse), commits it, and over a
/// conflicting change reads again and decides afresh, as `retry` allows.
pub async fn transition<S, E>(
    store: &S,
    id: &GrantId,
    retry: &Retry,
    decide: impl FnMut(&Grant) -> Result<Change, E>,
) -> Result<Change, TransitionFailure<E>>
where
    S: GrantStore,
{
    let grant = store
        .get(id)
        .await
        .map_err(TransitionFailure::Store)?
        .ok_or(TransitionFailure::NotFound)?;
    transition_from(store, grant, retry, decide).await
}

/// As [`transition`], starting from `grant` already in hand (read before a slow call, such as
/// STS), so the first attempt costs no read.
pub async fn transition_from<S, E>(
    store: &S,
    grant: Grant,
    retry: &Retry,
    decide: impl FnMut(&Grant) -> Result<Change, E>,
) -> Result<Change, TransitionFailure<E>>
where
    S: GrantStore,
{
    let reload = |id: GrantId| async move {
        store
            .get(&id)
            .await
            .map_err(TransitionFailure::Store)?
            .ok_or(TransitionFailure::NotFound)
    };
    transition_reloading(store, grant, retry, reload, decide).await
}

/// As [`transition_from`], reading the grant again after a lost race with `reload` (which
/// may check what it reads, and refuse), not with a plain `get`.
pub async fn transition_reloading<S, E, R, F>(
    store: &S,
    grant: Grant,
    retry: &Retry,
    mut reload: R,
    mut decide: impl FnMut(&Grant) -> Result<Change, E>,
) -> Result<Change, TransitionFailure<E>>
where
    S: GrantStore,
    R: FnMut(GrantId) -> F,
    F: Future<Output = Result<Grant, TransitionFailure<E>>>,
{
    let mut current = grant;
    for attempt in 0..retry.attempts {
        let change = decide(&current).map_err(TransitionFailure::Refused)?;
        match store.commit(&change).await {
            Ok(()) => return Ok(change),
            Err(StoreError::Conflict { .. }) => {
                tokio::time::sleep(retry.delay(attempt)).await;
                current = reload(current.id.clone()).await?;
            }
            Err(e) => return Err(TransitionFailure::Store(e)),
        }
    }
    Err(TransitionFailure::KeptChanging)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_offs_grow_are_capped_and_jittered() {
        let r = Retry::STANDARD;
        for attempt in 0..20 {
            let d = r.delay(attempt);
            let grown = (r.base * (1 << attempt.min(16))).min(r.max);
            assert!(d >= grown / 2 && d < grown * 3 / 2, "{attempt}: {d:?}");
        }
        let spread: std::collections::BTreeSet<Duration> = (0..50).map(|_| r.delay(3)).collect();
        assert!(spread.len() > 10, "jittered: {spread:?}");
    }

    use crate::domain::{Actor, Command, NewRequest, Service};
    use crate::store::{FailingStore, MemoryStore};

    async fn pending(store: &FailingStore<MemoryStore>) -> Grant {
        let rules = crate::policy::Rules::load_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/policies"),
        )
        .unwrap();
        let now = crate::clock::Timestamp::from_unix_seconds(1_800_000_000);
        let t = rules
            .target(&crate::domain::TargetId::parse("prod-logs-ro").unwrap())
            .unwrap();
        let request = NewRequest {
            requester: crate::domain::UserId::parse("alice").unwrap(),
            requester_groups: vec![],
            target: t.id.clone(),
            binding: t.binding(),
            duration: crate::domain::GrantDuration::parse("1h").unwrap(),
            reason: crate::domain::Reason::parse("investigating an incident").unwrap(),
            ticket: None,
            break_glass: false,
            decision_window_secs: 600,
            starts_at: None,
            bundle: None,
            policy_hash: "h".into(),
        };
        let creation = Grant::open(GrantId::generate(now), request, now);
        store.create(&creation, None).await.unwrap();
        creation.grant().clone()
    }

    fn await_review(grant: &Grant) -> Result<Change, crate::domain::TransitionError> {
        grant.apply(
            Command::AwaitReview {
                approvals_required: 1,
                requirements: Vec::new(),
                policy_hash: "h".into(),
                rules_said: String::new(),
                on_call: Default::default(),
            },
            &Actor::Service(Service::Approver),
            grant.created_at,
        )
    }

    #[tokio::test]
    async fn a_lost_race_is_decided_afresh_and_recorded_once() {
        let store = FailingStore::new(MemoryStore::new());
        let g = pending(&store).await;
        // The read passes, the first commit loses its race, the second wins.
        store.fail_nth(2, StoreError::Conflict { id: g.id.clone() });
        let mut decisions = 0;
        let change = transition(&store, &g.id, &Retry::STANDARD, |grant| {
            decisions += 1;
            await_review(grant)
        })
        .await
        .unwrap();
        assert_eq!(decisions, 2);
        assert_eq!(change.grant().version, 2);
        let records = store
            .audit_of_grant(&g.id, &crate::store::PageRequest::first(10))
            .await
            .unwrap()
            .items;
        assert_eq!(records.len(), 2, "requested, then one AWAITING_REVIEW");
    }

    #[tokio::test]
    async fn a_grant_that_keeps_changing_gives_up_after_the_attempts_and_changes_nothing() {
        let store = FailingStore::new(MemoryStore::new());
        let g = pending(&store).await;
        let retry = Retry {
            attempts: 4,
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        store.fail_writes_with(100, StoreError::Conflict { id: g.id.clone() });
        let mut decisions = 0;
        let outcome = transition(&store, &g.id, &retry, |grant| {
            decisions += 1;
            await_review(grant)
        })
        .await;
        assert_eq!(outcome.map(|_| ()), Err(TransitionFailure::KeptChanging));
        assert_eq!(decisions, 4);
        assert_eq!(store.inner().get(&g.id).await.unwrap().unwrap(), g);
        // Refusals and failures end it at once.
        let unknown = GrantId::generate(g.created_at);
        assert_eq!(
            transition(&store, &unknown, &retry, await_review)
                .await
                .map(|_| ()),
            Err(TransitionFailure::NotFound)
        );
        store.fail_nth(1, StoreError::unavailable("down"));
        assert_eq!(
            transition(&store, &g.id, &retry, await_review)
                .await
                .map(|_| ()),
            Err(TransitionFailure::Store(StoreError::unavailable("down")))
        );
    }
}
