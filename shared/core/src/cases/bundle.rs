//! A request of several targets, taken as a whole: its items as the caller may see them,
//! every item a reviewer may decide decided in one call, and every active item revoked in
//! one call. Each item still goes through its own transition, checks and record.

use super::{Cases, Noun, Refusal};
use crate::clock::Timestamp;
use crate::domain::{Change, Grant, GrantState, Reason, ReviewDecision};
use crate::identity::Caller;
use crate::policy::Action;
use crate::store::GrantStore;

/// What one call on a bundle did to one item.
#[derive(Debug)]
pub enum ItemOutcome<T> {
    /// It was acted on: the item as it became.
    Done(T),
    /// It was left as it was, and why.
    Skipped(Grant, String),
    /// Acting on it was refused; the other items were still acted on.
    Refused(Grant, Refusal),
}

impl<S: GrantStore> Cases<'_, S> {
    /// The items of bundle `id` (its first item's id) that `caller` may see, in the order
    /// asked: every one for its requester, the ones they may approve or audit for others.
    /// Not found when they may see none, or `id` is no bundle's.
    pub async fn bundle(
        &self,
        caller: &Caller,
        id: &str,
        now: Timestamp,
    ) -> Result<Vec<Grant>, Refusal> {
        let noun = Noun::Request;
        let id = super::parse_id(id, noun)?;
        let first = self.store.get(&id).await?.ok_or(Refusal::NotFound(noun))?;
        let Some(bundle) = first.bundle.clone().filter(|b| b.id() == Some(&first.id)) else {
            return Err(Refusal::NotFound(noun));
        };
        // The siblings are read side by side: up to 19 reads, one round trip's wait.
        let siblings = futures::future::join_all(
            bundle
                .items
                .iter()
                .filter(|item| **item != first.id)
                .map(|item| self.store.get(item)),
        )
        .await;
        let mut read = siblings.into_iter();
        let mut items = Vec::with_capacity(bundle.items.len());
        for item in &bundle.items {
            let grant = if item == &first.id {
                first.clone()
            } else {
                match read.next().transpose()? {
                    Some(Some(grant)) => grant,
                    _ => continue,
                }
            };
            if self.rules.may_see(&grant, caller, now) {
                items.push(grant);
            }
        }
        if items.is_empty() {
            return Err(Refusal::NotFound(noun));
        }
        Ok(items)
    }

    /// Reviews, as `caller`, every item of bundle `id` that waits for reviewers and that the
    /// rules let them approve (never their own, never twice); the others are reported as
    /// skipped. Forbidden when there is no such item.
    pub async fn review_bundle(
        &self,
        caller: &Caller,
        id: &str,
        decision: ReviewDecision,
        comment: Option<String>,
        now: Timestamp,
    ) -> Result<Vec<ItemOutcome<Grant>>, Refusal> {
        let items = self.bundle(caller, id, now).await?;
        let mut outcomes = Vec::with_capacity(items.len());
        let mut eligible = 0;
        for grant in items {
            let skip = if grant.requester == caller.user {
                Some("your own request".to_owned())
            } else if grant.awaiting_review().is_none() {
                Some(format!("it is {}, with nothing to review", grant.state))
            } else if grant
                .awaiting_review()
                .is_some_and(|reviews| reviews.iter().any(|r| r.reviewer == caller.user))
            {
                Some("you have reviewed it".to_owned())
            } else if !self.permits(caller, Action::Approve, &grant, now) {
                Some(format!(
                    "no policy permits you to Approve on target `{}`",
                    grant.target
                ))
            } else {
                None
            };
            if let Some(why) = skip {
                outcomes.push(ItemOutcome::Skipped(grant, why));
                continue;
            }
            eligible += 1;
            let result = self
                .review(caller, grant.id.as_str(), decision, comment.clone(), now)
                .await;
            outcomes.push(match result {
                Ok(after) => ItemOutcome::Done(after),
                Err(refusal) => ItemOutcome::Refused(grant, refusal),
            });
        }
        if eligible == 0 {
            let why = outcomes
                .iter()
                .filter_map(|o| match o {
                    ItemOutcome::Skipped(g, why) => Some(format!("`{}`: {why}", g.target)),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(Refusal::forbidden(format!(
                "you may review none of this request's items ({why})"
            )));
        }
        Ok(outcomes)
    }

    /// Revokes, as `caller`, every active item of bundle `id` they may revoke (its requester,
    /// or whom the rules permit `Revoke` on the item's target); the others are reported as
    /// skipped (a pending item: its requester cancels it). Forbidden when nothing was
    /// revocable.
    pub async fn revoke_bundle(
        &self,
        caller: &Caller,
        id: &str,
        reason: &Reason,
        now: Timestamp,
    ) -> Result<Vec<ItemOutcome<Change>>, Refusal> {
        let items = self.bundle(caller, id, now).await?;
        let mut outcomes = Vec::with_capacity(items.len());
        let mut eligible = 0;
        for grant in items {
            let skip = match grant.state {
                GrantState::Active => None,
                GrantState::Pending => Some(
                    "it is PENDING: its requester cancels it (POST /requests/{id}/cancel)"
                        .to_owned(),
                ),
                state => Some(format!("it is {state} already")),
            };
            if let Some(why) = skip {
                outcomes.push(ItemOutcome::Skipped(grant, why));
                continue;
            }
            if grant.requester != caller.user && !self.permits(caller, Action::Revoke, &grant, now)
            {
                let why = format!(
                    "no policy permits you to Revoke on target `{}`",
                    grant.target
                );
                outcomes.push(ItemOutcome::Skipped(grant, why));
                continue;
            }
            eligible += 1;
            let result = self
                .revoke(caller, grant.id.as_str(), reason.clone(), now)
                .await;
            outcomes.push(match result {
                Ok(change) => ItemOutcome::Done(change),
                Err(refusal) => ItemOutcome::Refused(grant, refusal),
            });
        }
        if eligible == 0 {
            return Err(Refusal::forbidden(
                "no item of this request is active and yours to revoke",
            ));
        }
        Ok(outcomes)
    }
}
