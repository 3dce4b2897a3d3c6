//! The use cases: each acts for one caller on the store, under the rules and the deployment's
//! keys, at one moment, and answers with what it did or a typed [`Refusal`]. Nothing here knows
//! HTTP: the functions parse a request, call one of these, and map the outcome, and the mapping
//! to a problem response is written once (in `jit-http`).
//!
//! - [`Cases::open_request`]: a person asks for access.
//! - [`Cases::open_bundle`]: a person asks for several targets in one request; then
//!   [`Cases::bundle`], [`Cases::review_bundle`] and [`Cases::revoke_bundle`] take its items
//!   together, each through its own transition.
//! - [`Cases::cancel`]: the requester withdraws a pending request (or a scheduled grant
//!   before its start).
//! - [`Cases::review`] and [`Cases::post_review`]: another person decides, or reviews
//!   break-glass access afterwards.
//! - [`Cases::extend`]: the requester asks for more time on an active grant; the rules decide
//!   at once or send it to reviewers, whose [`Cases::review`] then decides it.
//! - [`Cases::revoke`]: the requester or a permitted person ends a grant early.
//! - [`Cases::plan_session`] then [`Cases::record_session`]: the requester takes a session;
//!   the issuer calls STS between the two, so nothing is recorded for a session STS refused.
//! - [`record_activity`]: one CloudTrail event made with a grant's session is kept as that
//!   grant's activity (judged by the guardrails), or as unattributed, or refused.
//! - [`Cases::revoke_for_guardrail`]: the sweeper ends a grant whose recorded event, judged
//!   again, fires a revoking guardrail.
//! - [`Cases::cover_activity`]: the sweeper signs the count and digest of a grant's activity.

mod activity;
mod bundle;
mod extend;
mod refusal;
mod request;
mod review;
mod session;

pub use activity::{ActivityOutcome, COVER_LAG_SECS, CoverWhen, judge, record_activity};
pub use bundle::ItemOutcome;
pub use refusal::{Noun, Refusal};
pub use request::{BundleRefusal, MAX_BUNDLE_TARGETS, OpenRequest};
pub use review::GuardrailRevocation;
pub use session::{MAX_CHAINED_SESSION_SECS, MIN_SESSION_SECS, SessionPlan};

/// The functions' public keys, read now if they were not yet, or the refusal saying they
/// could not be and that `nothing_done` was done.
pub async fn ring<'k>(
    keys: &'k PublicKeys,
    nothing_done: &'static str,
) -> Result<&'k crate::trust::KeyRing, Refusal> {
    keys.ring().await.map_err(|cause| Refusal::KeysUnreadable {
        cause,
        nothing_done,
    })
}

use crate::clock::Timestamp;
use crate::domain::{Change, Grant, GrantId};
use crate::identity::Caller;
use crate::policy::{AccessContext, Action, Rules};
use crate::store::GrantStore;
use crate::transition::{Retry, TransitionFailure, transition_from, transition_reloading};
use crate::trust::{PublicKeys, check_grant};

/// What every use case works with: the store, the rules and the deployment's public keys.
#[derive(Debug)]
pub struct Cases<'a, S> {
    /// Where grants and their records live.
    pub store: &'a S,
    /// The rules: targets, who may see, ask, approve and revoke.
    pub rules: &'a Rules,
    /// The functions' public keys, against which evidence is checked.
    pub keys: &'a PublicKeys,
}

impl<'a, S: GrantStore> Cases<'a, S> {
    /// The use cases over `store`, `rules` and `keys`.
    pub fn new(store: &'a S, rules: &'a Rules, keys: &'a PublicKeys) -> Self {
        Self { store, rules, keys }
    }

    /// The grant `id` names, as the caller may see it: an id that does not parse, an unknown
    /// grant and one the caller may not see are all [`Refusal::NotFound`], so ids cannot be
    /// probed.
    pub async fn visible(
        &self,
        caller: &Caller,
        id: &str,
        noun: Noun,
        now: Timestamp,
    ) -> Result<Grant, Refusal> {
        let id = parse_id(id, noun)?;
        let grant = self.store.get(&id).await?.ok_or(Refusal::NotFound(noun))?;
        if self.rules.may_see(&grant, caller, now) {
            Ok(grant)
        } else {
            Err(Refusal::NotFound(noun))
        }
    }

    /// The grant `id` names with its whole chain, in one query, checked against the signed
    /// records: what is about to be acted on is never taken on the word of whoever wrote the
    /// item. `hide` decides, before the check, whether the caller is told it exists.
    async fn verified(
        &self,
        id: &str,
        noun: Noun,
        now: Timestamp,
        nothing_done: &'static str,
        hide: impl FnOnce(&Grant) -> Result<(), Refusal>,
    ) -> Result<(Grant, Vec<crate::domain::audit::AuditRecord>), Refusal> {
        let id = parse_id(id, noun)?;
        let (grant, records) = self
            .store
            .evidence(&id)
            .await?
            .ok_or(Refusal::NotFound(noun))?;
        hide(&grant)?;
        self.check(&grant, &records, now, nothing_done).await?;
        Ok((grant, records))
    }

    /// Refuses `grant` unless it agrees with its signed `records`, or when the keys to check
    /// them against cannot be read.
    async fn check(
        &self,
        grant: &Grant,
        records: &[crate::domain::audit::AuditRecord],
        now: Timestamp,
        nothing_done: &'static str,
    ) -> Result<(), Refusal> {
        let keys = ring(self.keys, nothing_done).await?;
        check_grant(grant, records, keys).map_err(|broken| Refusal::Unverified {
            grant: Box::new(grant.clone()),
            broken,
            at: now,
            nothing_done,
        })
    }

    /// Commits the change `decide` makes of `grant`, which was checked against its records;
    /// after a lost race the grant is read again with its chain and checked again, so no
    /// decision is ever made on an item someone edited meanwhile.
    async fn commit_verified(
        &self,
        grant: Grant,
        noun: Noun,
        now: Timestamp,
        nothing_done: &'static str,
        decide: impl FnMut(&Grant) -> Result<Change, Refusal>,
    ) -> Result<Change, Refusal> {
        let reload = |id: GrantId| async move {
            let (grant, records) = self
                .store
                .evidence(&id)
                .await
                .map_err(TransitionFailure::Store)?
                .ok_or(TransitionFailure::NotFound)?;
            self.check(&grant, &records, now, nothing_done)
                .await
                .map_err(TransitionFailure::Refused)?;
            Ok(grant)
        };
        transition_reloading(self.store, grant, &Retry::STANDARD, reload, decide)
            .await
            .map_err(|failure| refusal_of(failure, noun))
    }

    /// Whether the rules permit `caller` to take `action` on `grant` now.
    fn permits(&self, caller: &Caller, action: Action, grant: &Grant, now: Timestamp) -> bool {
        self.rules
            .decide(
                caller,
                action,
                &grant.target,
                &AccessContext::of_grant(grant, now),
            )
            .allowed
    }

    /// Nothing unless `caller` is `grant`'s requester: otherwise forbidden (saying `why`) when
    /// they may see it, not found when they may not.
    fn requester_only(
        &self,
        caller: &Caller,
        grant: &Grant,
        noun: Noun,
        now: Timestamp,
        why: &'static str,
    ) -> Result<(), Refusal> {
        if grant.requester == caller.user {
            Ok(())
        } else {
            Err(self.hidden_or_forbidden(caller, grant, noun, now, why))
        }
    }

    /// The refusal for a caller who may not act on `grant`: forbidden when they may see it,
    /// otherwise not found, as if it did not exist.
    fn hidden_or_forbidden(
        &self,
        caller: &Caller,
        grant: &Grant,
        noun: Noun,
        now: Timestamp,
        why: impl Into<String>,
    ) -> Refusal {
        if self.rules.may_see(grant, caller, now) {
            Refusal::forbidden(why)
        } else {
            Refusal::NotFound(noun)
        }
    }
}

fn parse_id(id: &str, noun: Noun) -> Result<GrantId, Refusal> {
    GrantId::parse(id).map_err(|_| Refusal::NotFound(noun))
}

/// Commits the change `decide` makes of `grant`, deciding afresh whenever another change won
/// the race.
async fn commit<S: GrantStore>(
    store: &S,
    grant: Grant,
    noun: Noun,
    decide: impl FnMut(&Grant) -> Result<Change, Refusal>,
) -> Result<Change, Refusal> {
    transition_from(store, grant, &Retry::STANDARD, decide)
        .await
        .map_err(|failure| refusal_of(failure, noun))
}

fn refusal_of(failure: TransitionFailure<Refusal>, noun: Noun) -> Refusal {
    match failure {
        TransitionFailure::NotFound => Refusal::NotFound(noun),
        TransitionFailure::Refused(refusal) => refusal,
        TransitionFailure::KeptChanging => Refusal::KeptChanging(noun),
        TransitionFailure::Store(e) => Refusal::Store(e),
    }
}
