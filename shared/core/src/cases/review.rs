//! Decisions by people on someone else's access: reviews, reviews after break-glass, and
//! revocation.

use super::{Cases, Noun, Refusal, commit};
use crate::clock::Timestamp;
use crate::domain::audit::{AuditAction, AuditRecord};
use crate::domain::{Actor, Change, Command, Grant, Reason, ReviewDecision};
use crate::identity::Caller;
use crate::policy::{AccessContext, Action};
use crate::store::GrantStore;

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
        self.reviewed(caller, id, Command::Review { decision, comment }, now)
            .await
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
                Ok(grant.apply(command.clone(), &actor, now)?)
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
        let (grant, records) = self
            .store
            .evidence(&id)
            .await?
            .ok_or(Refusal::NotFound(noun))?;
        let recorded = latest_session_expiry(&records);
        let actor = Actor::User(caller.user.clone());
        commit(self.store, grant, noun, |grant| {
            let mut grant = grant.clone();
            grant.sessions_valid_until = grant.sessions_valid_until.max(recorded);
            let grant = &grant;
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
            let reason = reason.clone();
            Ok(grant.apply(Command::Revoke { reason }, &actor, now)?)
        })
        .await
    }
}
