//! Taking a session on a grant: checked before STS is called, recorded after.

use super::{Cases, Noun, Refusal};
use crate::clock::Timestamp;
use crate::domain::{Actor, Command, Grant, SessionKind};
use crate::identity::Caller;
use crate::store::GrantStore;

/// The shortest session STS issues.
pub const MIN_SESSION_SECS: i64 = 900;
/// The longest session STS issues to a role assumed with another role's credentials (role
/// chaining), as the issuer's are.
pub const MAX_CHAINED_SESSION_SECS: i64 = 3600;

/// A session the grant may take now: the verified grant and how long to ask STS for.
#[derive(Debug, Clone)]
pub struct SessionPlan {
    /// The grant, checked against its signed records and its target as declared now.
    pub grant: Grant,
    /// Seconds to ask for: to the grant's end, within what STS issues and the target allows.
    pub duration_secs: i64,
}

impl<S: GrantStore> Cases<'_, S> {
    /// Checks that `caller` may take a session of `kind` on grant `id` now: the requester
    /// only, the grant's evidence verified, active and not past its end, and its target still
    /// what it was asked for and isolated from the broker. Nothing is recorded.
    pub async fn plan_session(
        &self,
        caller: &Caller,
        id: &str,
        kind: SessionKind,
        now: Timestamp,
    ) -> Result<SessionPlan, Refusal> {
        let noun = Noun::Grant;
        let (grant, _) = self
            .verified(id, noun, now, "no credentials were issued", |grant| {
                let why = "only the requester may use a grant";
                self.requester_only(caller, grant, noun, now, why)
            })
            .await?;
        let ends_at = grant.ends_at.unwrap_or(now);
        let max = i64::from(grant.max_session_secs).min(MAX_CHAINED_SESSION_SECS);
        // `now` is whole seconds, cut down: STS counts from its own, later instant, so one
        // second less keeps the session from outliving the grant by a fraction of one.
        let duration_secs =
            (ends_at.unix_seconds() - now.unix_seconds() - 1).clamp(MIN_SESSION_SECS, max);
        // Refuse before STS is called if the grant cannot take a session now.
        let actor = Actor::User(caller.user.clone());
        let expires_at = now.plus_secs(duration_secs);
        grant.apply(Command::IssueSession { kind, expires_at }, &actor, now)?;
        self.still_bound(&grant)?;
        Ok(SessionPlan {
            grant,
            duration_secs,
        })
    }

    /// Records the session STS issued, expiring at `expires_at`, re-checking the grant:
    /// revoked or expired meanwhile means the credentials are not handed out.
    pub async fn record_session(
        &self,
        caller: &Caller,
        plan: SessionPlan,
        kind: SessionKind,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Grant, Refusal> {
        let actor = Actor::User(caller.user.clone());
        let nothing_done = "no credentials were issued";
        let change = self
            .commit_verified(plan.grant, Noun::Grant, now, nothing_done, |current| {
                Ok(current.apply(Command::IssueSession { kind, expires_at }, &actor, now)?)
            })
            .await?;
        Ok(change.grant().clone())
    }

    /// Refuses a grant whose target changed since it was asked for: removed, pointed at
    /// another role, or given another session policy. The grant was approved for what it
    /// recorded; using it under changed rules needs a new request.
    fn still_bound(&self, grant: &Grant) -> Result<(), Refusal> {
        let changed = |why: String| {
            Refusal::TargetChanged(format!(
                "{why}; this grant can no longer be used, request access again"
            ))
        };
        let Some(target) = self.rules.target(&grant.target) else {
            return Err(changed(format!(
                "target `{}` is no longer declared",
                grant.target
            )));
        };
        if target.binding.role_arn != grant.role_arn {
            return Err(changed(format!(
                "target `{}` now names role `{}`, not `{}` as when this grant was requested",
                grant.target, target.binding.role_arn, grant.role_arn
            )));
        }
        if target.binding.session_policy != grant.session_policy {
            return Err(changed(format!(
                "target `{}`'s session policy changed since this grant was requested",
                grant.target
            )));
        }
        // What the grant recorded, judged as this deployment is placed now.
        let isolation = self.rules.isolation();
        if let Some(why) = isolation.problem(&grant.role_arn, grant.revoker_role_arn.as_ref()) {
            return Err(Refusal::NotIsolated(format!(
                "target `{}` ({}): {why}; no credentials were issued",
                grant.target, target.location
            )));
        }
        Ok(())
    }
}
