//! Decisions by people on someone else's access: reviews, reviews after break-glass, and
//! revocation.

use super::{Cases, Noun, Refusal, commit, judge};
use crate::clock::Timestamp;
use crate::domain::audit::{AuditAction, AuditRecord};
use crate::domain::{
    Actor, Change, Command, Grant, GrantId, GrantState, Reason, ReviewDecision, Service,
    SlackReviewer,
};
use crate::identity::Caller;
use crate::policy::{AccessContext, Action};
use crate::store::{ActivityStore, GrantStore};

/// The latest session expiry a grant's SESSION_ISSUED records state.
fn latest_session_expiry(records: &[AuditRecord]) -> Option<Timestamp> {
    records
        .iter()
        .filter(|r| r.action == AuditAction::SessionIssued)
        .filter_map(|r| r.detail.get("session_expires_at"))
        .filter_map(|t| Timestamp::parse_rfc3339(t))
        .max()
}

impl<S: GrantStore> Cases<'_, S> {
    /// Records `caller`'s decision on a pending request, deciding afresh whenever concurrent
    /// reviews race it. Approvals are counted against what the signed records say (approvals
    /// required, earlier reviews), never against an item someone edited.
    pub async fn review(
        &self,
        caller: &Caller,
        id: &str,
        decision: ReviewDecision,
        comment: Option<String>,
        now: Timestamp,
    ) -> Result<Grant, Refusal> {
        let command = Command::Review {
            decision,
            comment,
            fills: Vec::new(),
            slack: None,
        };
        self.reviewed(caller, id, command, now).await
    }

    /// The same review, made by a click in Slack: `caller` is the person the Slack user is
    /// linked to, with the groups last seen on an authenticated call of theirs; the record
    /// names the Slack user and workspace beside them.
    pub async fn review_from_slack(
        &self,
        caller: &Caller,
        id: &str,
        decision: ReviewDecision,
        slack: SlackReviewer,
        now: Timestamp,
    ) -> Result<Grant, Refusal> {
        let command = Command::Review {
            decision,
            comment: None,
            fills: Vec::new(),
            slack: Some(slack),
        };
        self.reviewed(caller, id, command, now).await
    }

    /// Records `caller`'s review of access that was opened by break-glass.
    pub async fn post_review(
        &self,
        caller: &Caller,
        id: &str,
        comment: Option<String>,
        now: Timestamp,
    ) -> Result<Grant, Refusal> {
        self.reviewed(caller, id, Command::PostReview { comment }, now)
            .await
    }

    async fn reviewed(
        &self,
        caller: &Caller,
        id: &str,
        command: Command,
        now: Timestamp,
    ) -> Result<Grant, Refusal> {
        let noun = Noun::Request;
        let (grant, _) = self
            .verified(id, noun, now, "no review was recorded", |grant| {
                if self.rules.may_see(grant, caller, now) {
                    Ok(())
                } else {
                    Err(Refusal::NotFound(noun))
                }
            })
            .await?;
        let actor = Actor::User(caller.user.clone());
        let nothing_done = "no review was recorded";
        let change = self
            .commit_verified(grant, noun, now, nothing_done, |grant| {
                if !self.rules.may_see(grant, caller, now) {
                    return Err(Refusal::NotFound(noun));
                }
                let permitted = self.rules.decide(
                    caller,
                    Action::Approve,
                    &grant.target,
                    &AccessContext::of_grant(grant, now),
                );
                if !permitted.allowed {
                    return Err(Refusal::forbidden(
                        permitted.explain_denial(Action::Approve, grant.target.as_str()),
                    ));
                }
                // What this reviewer may fill, as the rules say now for this request.
                let command = match command.clone() {
                    Command::Review {
                        decision,
                        comment,
                        slack,
                        ..
                    } => Command::Review {
                        decision,
                        comment,
                        fills: self.rules.fills(grant, &permitted),
                        slack,
                    },
                    other => other,
                };
                Ok(grant.apply(command, &actor, now)?)
            })
            .await?;
        Ok(change.grant().clone())
    }

    /// Revokes an active grant: its requester, or whoever the rules permit to revoke on its
    /// target. Its sessions are cut up to the latest expiry its SESSION_ISSUED records state,
    /// not only what the grant item says: an item edited to claim earlier expiries cannot
    /// shorten the revocation. The change carries the revocation entry the caller then applies
    /// to the role.
    pub async fn revoke(
        &self,
        caller: &Caller,
        id: &str,
        reason: Reason,
        now: Timestamp,
    ) -> Result<Change, Refusal> {
        let noun = Noun::Grant;
        let id = super::parse_id(id, noun)?;
        let actor = Actor::User(caller.user.clone());
        self.end_early(&id, &actor, reason, now, |grant| {
            if grant.requester != caller.user && !self.permits(caller, Action::Revoke, grant, now) {
                return Err(self.hidden_or_forbidden(
                    caller,
                    grant,
                    noun,
                    now,
                    format!(
                        "no policy permits you to Revoke on target `{}`",
                        grant.target
                    ),
                ));
            }
            Ok(())
        })
        .await
    }

    /// Revokes grant `id` as `actor` once `allowed` accepts it, cutting its sessions up to the
    /// latest expiry its SESSION_ISSUED records state.
    async fn end_early(
        &self,
        id: &GrantId,
        actor: &Actor,
        reason: Reason,
        now: Timestamp,
        allowed: impl Fn(&Grant) -> Result<(), Refusal>,
    ) -> Result<Change, Refusal> {
        let noun = Noun::Grant;
        let (grant, records) = self
            .store
            .evidence(id)
            .await?
            .ok_or(Refusal::NotFound(noun))?;
        let recorded = latest_session_expiry(&records);
        commit(self.store, grant, noun, |grant| {
            let mut grant = grant.clone();
            grant.sessions_valid_until = grant.sessions_valid_until.max(recorded);
            allowed(&grant)?;
            let reason = reason.clone();
            Ok(grant.apply(Command::Revoke { reason }, actor, now)?)
        })
        .await
    }
}

/// What a guardrail's hand-over to the sweeper came to.
#[derive(Debug, Clone)]
pub enum GuardrailRevocation {
    /// The grant is revoked; the change carries the entry to apply to the role.
    Revoked {
        /// The revocation.
        change: Box<Change>,
        /// The `@id` of the guardrail that ended it.
        guardrail: String,
    },
    /// Judged again, the event fires no revoking guardrail (the rules changed since).
    NotFired,
    /// The grant is not active (revoked, expired or never activated): nothing to end.
    NotActive(GrantState),
    /// The grant holds no such event: the hand-over named something never recorded.
    NoSuchEvent,
}

impl<S: GrantStore + ActivityStore> Cases<'_, S> {
    /// Ends grant `id` because a revoking guardrail fires on its event `event_id` made at
    /// `time`. The hand-over only names the event: it is read back from the activity the
    /// store holds and judged again by these rules, so whoever hands over decides nothing.
    /// The revocation is the sweeper's, as every revocation is, with a reason naming the
    /// guardrail and the CloudTrail event.
    pub async fn revoke_for_guardrail(
        &self,
        id: &str,
        time: Timestamp,
        event_id: &str,
        now: Timestamp,
    ) -> Result<GuardrailRevocation, Refusal> {
        let id = super::parse_id(id, Noun::Grant)?;
        let grant = self
            .store
            .get(&id)
            .await?
            .ok_or(Refusal::NotFound(Noun::Grant))?;
        if grant.state != GrantState::Active {
            return Ok(GuardrailRevocation::NotActive(grant.state));
        }
        let Some(activity) = self.store.activity_event(&id, time, event_id).await? else {
            return Ok(GuardrailRevocation::NoSuchEvent);
        };
        let fired = judge(self.store, self.rules, &grant, &activity, false).await?;
        let Some(guardrail) = fired.revokes.first().cloned() else {
            return Ok(GuardrailRevocation::NotFired);
        };
        let why: String = format!(
            "guardrail `{guardrail}` fired on {} {} in {} (CloudTrail event {})",
            activity.service, activity.action, activity.region, activity.event_id
        )
        .chars()
        .take(Reason::MAX_CHARS)
        .collect();
        let reason = Reason::parse(why).map_err(|e| Refusal::Invalid(e.to_string()))?;
        let actor = Actor::Service(Service::Sweeper);
        match self.end_early(&id, &actor, reason, now, |_| Ok(())).await {
            Ok(change) => Ok(GuardrailRevocation::Revoked {
                change: Box::new(change),
                guardrail,
            }),
            // It changed state between the read and the write (ended, or revoked by someone).
            Err(Refusal::Transition(_)) => {
                let state = self.store.get(&id).await?.map_or(grant.state, |g| g.state);
                Ok(GuardrailRevocation::NotActive(state))
            }
            Err(refusal) => Err(refusal),
        }
    }
}
