//! More time on an active grant: asked by its requester, decided by the rules at once or sent
//! to the target's reviewers, never needing more approval than a fresh request would.

use super::{Cases, Noun, Refusal};
use crate::clock::Timestamp;
use crate::domain::{Actor, Command, Grant, GrantDuration, OnCall, Reason};
use crate::identity::Caller;
use crate::policy::{AccessContext, Action, Window};
use crate::store::GrantStore;

impl<S: GrantStore> Cases<'_, S> {
    /// Asks for `by` more time on grant `id` for `caller`, its requester, while it is active
    /// and before its end. The rules decide as `caller` asks now: they must still permit
    /// `Request` on the target; `Extend` (or `AutoApprove`, since a fresh request would be
    /// approved at once) moves the end at once; otherwise the extension waits for the
    /// target's number of approvals, as a fresh request would. The new end may not pass the
    /// target's longest total from activation. Checked against the signed records first.
    ///
    /// `on_call` answers what the on-call provider says of the grant's requester and target
    /// (the approver asks it; [`OnCall::not_asked`] elsewhere). Being on call counts only for
    /// an extension that stays within the shift, where the target ends grants with it.
    pub async fn extend(
        &self,
        caller: &Caller,
        id: &str,
        by: GrantDuration,
        reason: Reason,
        now: Timestamp,
        on_call: impl AsyncFnOnce(&Grant) -> OnCall,
    ) -> Result<Grant, Refusal> {
        let noun = Noun::Grant;
        let nothing_done = "the grant was not extended";
        let (grant, _) = self
            .verified(id, noun, now, nothing_done, |grant| {
                let why = "only the requester may extend their access";
                self.requester_only(caller, grant, noun, now, why)
            })
            .await?;
        let Some(target) = self.rules.target(&grant.target) else {
            return Err(Refusal::TargetChanged(format!(
                "target `{}` is no longer declared; this grant cannot be extended",
                grant.target
            )));
        };
        let mut on_call = on_call(&grant).await;
        let asked_end = grant
            .ends_at
            .unwrap_or(now)
            .plus_secs(i64::from(by.as_secs()));
        if let Some(shift_end) = on_call.shift_end()
            && asked_end > shift_end
        {
            on_call.level = None;
            on_call.said = format!(
                "{}; the extension would run past the shift's end, so not on call for it",
                on_call.said
            );
        }
        let mut context = AccessContext {
            duration_secs: by.as_secs(),
            reason: reason.as_str().to_owned(),
            ticket: grant.ticket.as_ref().map(ToString::to_string),
            break_glass: false,
            at: now,
            // The time the extension adds: from the grant's current end.
            window: Window::of(grant.ends_at, now, by.as_secs()),
            on_call: on_call.clone(),
        };
        context.window.scheduled = false;
        // The break-glass flag lifts `forbid`s written with `!context.break_glass`: it counts
        // for the extension of a break-glass grant only while the rules still let this
        // caller break the glass, as it does for a request.
        if grant.break_glass {
            let glass = AccessContext {
                break_glass: true,
                ..context.clone()
            };
            context.break_glass = self
                .rules
                .decide(caller, Action::BreakGlass, &grant.target, &glass)
                .allowed;
        }
        let decide = |action| self.rules.decide(caller, action, &grant.target, &context);
        let asking = decide(Action::Request);
        if !asking.allowed {
            return Err(Refusal::Forbidden {
                why: format!(
                    "{}; an extension is asked as a request is",
                    asking.explain_denial(Action::Request, grant.target.as_str())
                ),
                policies: Some(asking.policies),
            });
        }
        let at_once = [Action::Extend, Action::AutoApprove]
            .into_iter()
            .map(decide)
            .find(|d| d.allowed);
        let (approvals_required, policies) = match at_once {
            Some(decision) => (0, decision.policies),
            None => (target.approvals_required, Vec::new()),
        };
        // The longest total counts from when access opened (or opens, when scheduled).
        let opened = grant.opens_at().unwrap_or(now);
        let limit = opened.plus_secs(i64::from(target.max_total.as_secs()));
        let actor = Actor::User(caller.user.clone());
        let policy_hash = self.rules.hash().to_owned();
        let change = self
            .commit_verified(grant, noun, now, nothing_done, |current| {
                let command = Command::Extend {
                    by,
                    reason: reason.clone(),
                    limit,
                    approvals_required,
                    policies: policies.clone(),
                    policy_hash: policy_hash.clone(),
                    on_call: on_call.clone(),
                };
                Ok(current.apply(command, &actor, now)?)
            })
            .await?;
        Ok(change.grant().clone())
    }
}
