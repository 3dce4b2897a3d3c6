//! The rules of each command, one method each: who may cause it, in which states and at which
//! times, and what it changes and records. [`super::Grant::apply`] dispatches to these.

use std::collections::BTreeMap;

use super::lifecycle::{Change, RevocationEntry, SessionKind, SlackReviewer, TransitionError};
use super::{
    Actor, Grant, GrantDuration, GrantState, OnCall, PendingExtension, Reason, Requirement, Review,
    ReviewDecision, Service, UserId,
};
use crate::clock::Timestamp;
use crate::domain::audit::{AuditAction, AuditEntry, AuditRecord};

/// One transition being worked out: the grant as it was, who acts and when, and what the
/// change has made so far (the grant as it becomes, the audit detail, the policy hash and any
/// revocation entry).
pub(super) struct Step<'a> {
    grant: &'a Grant,
    actor: &'a Actor,
    now: Timestamp,
    command: &'static str,
    next: Grant,
    detail: BTreeMap<String, String>,
    policy_hash: Option<String>,
    revocation: Option<RevocationEntry>,
}

impl<'a> Step<'a> {
    pub(super) fn new(
        grant: &'a Grant,
        actor: &'a Actor,
        now: Timestamp,
        command: &'static str,
    ) -> Self {
        Self {
            grant,
            actor,
            now,
            command,
            next: grant.clone(),
            detail: BTreeMap::new(),
            policy_hash: None,
            revocation: None,
        }
    }

    /// The change: the grant with its version and chain head moved on, and the audit record.
    pub(super) fn finish(self, action: AuditAction) -> Change {
        let Self {
            grant,
            actor,
            now,
            mut next,
            mut detail,
            policy_hash,
            revocation,
            ..
        } = self;
        if let Some(entry) = &revocation {
            detail.insert("revoke_sessions_until".to_owned(), entry.until.to_string());
        }
        let audit = AuditRecord::chained(
            &grant.id,
            &grant.audit_head,
            AuditEntry {
                at: now,
                actor: actor.clone(),
                action,
                from: Some(grant.state),
                to: next.state,
                detail,
                policy_hash,
            },
        );
        next.version = grant.version.saturating_add(1);
        next.audit_head = audit.head();
        Change {
            grant: next,
            expected_version: grant.version,
            audit,
            revocation,
        }
    }

    pub(super) fn wrong_state(&self) -> TransitionError {
        TransitionError::WrongState {
            id: self.grant.id.clone(),
            command: self.command,
            state: self.grant.state,
        }
    }

    pub(super) fn not_permitted(&self, why: &'static str) -> TransitionError {
        TransitionError::NotPermitted {
            id: self.grant.id.clone(),
            actor: self.actor.clone(),
            command: self.command,
            why,
        }
    }

    pub(super) fn require_service(&self, service: Service) -> Result<(), TransitionError> {
        if self.actor == &Actor::Service(service) {
            Ok(())
        } else {
            Err(self.not_permitted("only the system may do this"))
        }
    }

    pub(super) fn require_pending(&self) -> Result<(), TransitionError> {
        if self.grant.state == GrantState::Pending {
            Ok(())
        } else {
            Err(self.wrong_state())
        }
    }

    /// The end of an active grant, or why it is not active.
    pub(super) fn require_active(&self) -> Result<Timestamp, TransitionError> {
        match (self.grant.state, self.grant.ends_at) {
            (GrantState::Active, Some(ends_at)) => Ok(ends_at),
            _ => Err(self.wrong_state()),
        }
    }

    pub(super) fn time_ran_out(&self, at: Timestamp) -> TransitionError {
        TransitionError::TimeRanOut {
            id: self.grant.id.clone(),
            command: self.command,
            at,
        }
    }

    pub(super) fn not_due(&self, due: Timestamp) -> TransitionError {
        TransitionError::NotDue {
            id: self.grant.id.clone(),
            command: self.command,
            due,
        }
    }

    /// The person acting, or why a service may not.
    pub(super) fn person(&self, why: &'static str) -> Result<&'a UserId, TransitionError> {
        match self.actor {
            Actor::User(user) => Ok(user),
            Actor::Service(_) => Err(self.not_permitted(why)),
        }
    }

    /// The approver's rules decide a pending request once: the checks every rules decision
    /// shares.
    fn require_unevaluated(&self) -> Result<(), TransitionError> {
        self.require_service(Service::Approver)?;
        self.require_pending()?;
        if self.grant.approvals_required.is_some() {
            return Err(TransitionError::AlreadyEvaluated {
                id: self.grant.id.clone(),
            });
        }
        Ok(())
    }

    pub(super) fn await_review(
        &mut self,
        required: u32,
        requirements: Vec<Requirement>,
        hash: String,
        rules_said: String,
    ) -> Result<AuditAction, TransitionError> {
        self.require_unevaluated()?;
        // Named requirements need exactly as many approvals as they name together.
        let named: u32 = requirements.iter().map(|r| r.approvals).sum();
        let required = if requirements.is_empty() {
            required
        } else {
            named
        }
        .max(1);
        self.next.approvals_required = Some(required);
        self.next.requirements = requirements;
        self.detail
            .insert("approvals_required".to_owned(), required.to_string());
        if !self.next.requirements.is_empty() {
            self.detail
                .insert("requirements".to_owned(), self.next.requirements_text());
        }
        self.detail
            .insert("decide_by".to_owned(), self.grant.decide_by.to_string());
        if !rules_said.is_empty() {
            self.detail
                .insert("rules_said".to_owned(), rules_said.clone());
            self.next.rules_said = Some(rules_said);
        }
        self.next.policy_hash.clone_from(&hash);
        self.policy_hash = Some(hash);
        Ok(AuditAction::AwaitingReview)
    }

    /// Records what the on-call provider said when the target asks about it.
    pub(super) fn note_on_call(&mut self, on_call: &OnCall) {
        if on_call.asked {
            self.detail
                .insert("on_call".to_owned(), on_call.said.clone());
        }
    }

    /// A review made from Slack: the Slack user and workspace beside the person (the actor),
    /// whom the broker resolved from its own signed link.
    pub(super) fn note_slack(&mut self, slack: Option<&SlackReviewer>) {
        if let Some(slack) = slack {
            self.detail.insert("via".to_owned(), "slack".to_owned());
            self.detail
                .insert("slack_team".to_owned(), slack.team_id.clone());
            self.detail
                .insert("slack_user".to_owned(), slack.user_id.clone());
        }
    }

    /// Auto-approval and break-glass: the rules open the request at once.
    pub(super) fn activate_by_rules(
        &mut self,
        break_glass: bool,
        policies: Vec<String>,
        hash: String,
        shift_end: Option<Timestamp>,
    ) -> Result<AuditAction, TransitionError> {
        self.require_unevaluated()?;
        if break_glass && !self.grant.break_glass {
            return Err(TransitionError::NotBreakGlass {
                id: self.grant.id.clone(),
            });
        }
        // A request nobody decided in time times out; the rules cannot open it late.
        if self.now >= self.grant.decide_by {
            return Err(self.time_ran_out(self.grant.decide_by));
        }
        self.next.approvals_required = Some(0);
        self.open_access();
        // Opened because the requester is on call: no longer than the shift, as the
        // activation record signs (the evidence check holds the end to it).
        if let (Some(shift_end), Some(end)) = (shift_end, self.next.ends_at)
            && shift_end < end
        {
            self.next.ends_at = Some(shift_end);
            self.detail
                .insert("shift_ends_at".to_owned(), shift_end.to_string());
            self.detail
                .insert("ends_at".to_owned(), shift_end.to_string());
        }
        self.next.review_owed = break_glass;
        self.detail
            .insert("policies".to_owned(), policies.join(","));
        self.next.policy_hash.clone_from(&hash);
        self.policy_hash = Some(hash);
        Ok(if break_glass {
            AuditAction::BreakGlassActivated
        } else {
            AuditAction::AutoApproved
        })
    }

    pub(super) fn review(
        &mut self,
        decision: ReviewDecision,
        comment: Option<String>,
        fills: Vec<String>,
    ) -> Result<AuditAction, TransitionError> {
        let reviewer = self.person("only a person may review")?;
        if reviewer == &self.grant.requester {
            return Err(self.not_permitted("a requester cannot review their own request"));
        }
        if self.grant.state == GrantState::Active {
            return self.review_extension(reviewer, decision, comment);
        }
        self.require_pending()?;
        let Some(required) = self.grant.approvals_required else {
            return Err(TransitionError::NotYetEvaluated {
                id: self.grant.id.clone(),
            });
        };
        if self.now >= self.grant.decide_by {
            return Err(self.time_ran_out(self.grant.decide_by));
        }
        if self.grant.reviews.iter().any(|r| &r.reviewer == reviewer) {
            return Err(TransitionError::AlreadyReviewed {
                id: self.grant.id.clone(),
                reviewer: self.actor.clone(),
            });
        }
        // Where approvals fill named requirements, an approver must be able to fill one.
        let named = !self.grant.requirements.is_empty();
        let fills: Vec<String> = if named {
            fills
                .into_iter()
                .filter(|f| self.grant.requirements.iter().any(|r| &r.name == f))
                .collect()
        } else {
            Vec::new()
        };
        if named && decision == ReviewDecision::Approve && fills.is_empty() {
            return Err(
                self.not_permitted("the rules let you fill none of this request's requirements")
            );
        }
        if !fills.is_empty() {
            self.detail.insert("fills".to_owned(), fills.join(","));
        }
        self.next.reviews.push(Review {
            reviewer: reviewer.clone(),
            decision,
            at: self.now,
            fills,
        });
        if let Some(comment) = comment {
            self.detail.insert("comment".to_owned(), comment);
        }
        if named && decision == ReviewDecision::Approve {
            let met = self.next.requirements_met();
            let text: Vec<String> = self
                .next
                .requirements
                .iter()
                .zip(&met)
                .map(|(r, m)| format!("{} {m}/{}", r.name, r.approvals))
                .collect();
            self.detail
                .insert("requirements_met".to_owned(), text.join(", "));
            let all = self
                .next
                .requirements
                .iter()
                .zip(&met)
                .all(|(r, m)| *m >= r.approvals);
            self.detail.insert(
                "approvals".to_owned(),
                format!("{}/{required}", self.next.approval_count()),
            );
            if all {
                self.open_access();
            }
            return Ok(AuditAction::Approved);
        }
        match decision {
            ReviewDecision::Deny => {
                self.next.close(GrantState::Denied, self.now);
                Ok(AuditAction::Denied)
            }
            ReviewDecision::Approve => {
                let approvals = self.next.approval_count();
                self.detail
                    .insert("approvals".to_owned(), format!("{approvals}/{required}"));
                if u32::try_from(approvals).unwrap_or(u32::MAX) >= required {
                    self.open_access();
                }
                Ok(AuditAction::Approved)
            }
        }
    }

    /// The requester asks for more time on their active grant, before its end; the rules'
    /// answer comes with the command.
    pub(super) fn extend(
        &mut self,
        by: GrantDuration,
        reason: Reason,
        limit: Timestamp,
        approvals_required: u32,
        policies: Vec<String>,
        hash: String,
    ) -> Result<AuditAction, TransitionError> {
        if self.actor != &Actor::User(self.grant.requester.clone()) {
            return Err(self.not_permitted("only the requester may extend their access"));
        }
        let ends_at = self.require_active()?;
        if self.now >= ends_at {
            return Err(self.time_ran_out(ends_at));
        }
        if self.grant.extension.is_some() {
            return Err(TransitionError::ExtensionPending {
                id: self.grant.id.clone(),
            });
        }
        let asked = ends_at.plus_secs(i64::from(by.as_secs()));
        if asked > limit {
            return Err(TransitionError::BeyondLimit {
                id: self.grant.id.clone(),
                asked,
                limit,
            });
        }
        self.detail
            .insert("extension_secs".to_owned(), by.as_secs().to_string());
        self.detail
            .insert("reason".to_owned(), reason.as_str().to_owned());
        self.detail
            .insert("previous_ends_at".to_owned(), ends_at.to_string());
        self.next.policy_hash.clone_from(&hash);
        self.policy_hash = Some(hash);
        if approvals_required == 0 {
            self.detail
                .insert("policies".to_owned(), policies.join(","));
            self.detail.insert("ends_at".to_owned(), asked.to_string());
            self.next.ends_at = Some(asked);
            return Ok(AuditAction::Extended);
        }
        let required = approvals_required;
        self.detail
            .insert("approvals_required".to_owned(), required.to_string());
        self.detail
            .insert("requested_ends_at".to_owned(), asked.to_string());
        self.next.extension = Some(PendingExtension {
            secs: by.as_secs(),
            reason,
            requested_at: self.now,
            ends_at: asked,
            approvals_required: required,
            reviews: Vec::new(),
        });
        Ok(AuditAction::ExtensionRequested)
    }

    /// A review of the extension an active grant waits for: before the grant's current end,
    /// once per reviewer; the last approval needed moves the end.
    fn review_extension(
        &mut self,
        reviewer: &UserId,
        decision: ReviewDecision,
        comment: Option<String>,
    ) -> Result<AuditAction, TransitionError> {
        let ends_at = self.require_active()?;
        let Some(mut extension) = self.grant.extension.clone() else {
            return Err(TransitionError::NoExtensionPending {
                id: self.grant.id.clone(),
                command: self.command,
            });
        };
        if self.now >= ends_at {
            return Err(self.time_ran_out(ends_at));
        }
        if extension.reviews.iter().any(|r| &r.reviewer == reviewer) {
            return Err(TransitionError::AlreadyReviewed {
                id: self.grant.id.clone(),
                reviewer: self.actor.clone(),
            });
        }
        extension.reviews.push(Review {
            reviewer: reviewer.clone(),
            decision,
            at: self.now,
            fills: Vec::new(),
        });
        if let Some(comment) = comment {
            self.detail.insert("comment".to_owned(), comment);
        }
        self.detail
            .insert("extension_secs".to_owned(), extension.secs.to_string());
        if decision == ReviewDecision::Deny {
            self.next.extension = None;
            return Ok(AuditAction::ExtensionDenied);
        }
        let approvals = extension.approval_count();
        let required = extension.approvals_required;
        self.detail
            .insert("approvals".to_owned(), format!("{approvals}/{required}"));
        if u32::try_from(approvals).unwrap_or(u32::MAX) >= required {
            self.detail
                .insert("previous_ends_at".to_owned(), ends_at.to_string());
            self.detail
                .insert("ends_at".to_owned(), extension.ends_at.to_string());
            self.next.ends_at = Some(extension.ends_at);
            self.next.extension = None;
            Ok(AuditAction::Extended)
        } else {
            self.next.extension = Some(extension);
            Ok(AuditAction::ExtensionApproved)
        }
    }

    /// Grants access: active now, usable from its scheduled start if it has one. The record
    /// of a scheduled grant signs the window it opens.
    fn open_access(&mut self) {
        self.next.activate(self.now);
        if let (Some(start), Some(end)) = (self.next.starts_at, self.next.ends_at) {
            self.detail
                .insert("starts_at".to_owned(), start.to_string());
            self.detail.insert("ends_at".to_owned(), end.to_string());
        }
    }

    /// The requester withdraws a pending request, or a granted one whose scheduled start is
    /// still ahead and which no credentials were issued for (nothing to cut off).
    pub(super) fn cancel(&mut self) -> Result<AuditAction, TransitionError> {
        if self.actor != &Actor::User(self.grant.requester.clone()) {
            return Err(self.not_permitted("only the requester may cancel"));
        }
        if self.grant.state == GrantState::Active {
            let why = match self.grant.starts_at {
                None => Some("was not scheduled ahead"),
                Some(start) if self.now >= start => Some("its scheduled start has passed"),
                Some(_) if self.grant.sessions_issued > 0 => Some("credentials were issued"),
                Some(_) => None,
            };
            if let Some(why) = why {
                return Err(TransitionError::AlreadyOpen {
                    id: self.grant.id.clone(),
                    why,
                });
            }
        } else {
            self.require_pending()?;
        }
        self.next.close(GrantState::Cancelled, self.now);
        Ok(AuditAction::Cancelled)
    }

    pub(super) fn time_out(&mut self) -> Result<AuditAction, TransitionError> {
        self.require_service(Service::Sweeper)?;
        self.require_pending()?;
        if self.now < self.grant.decide_by {
            return Err(self.not_due(self.grant.decide_by));
        }
        self.next.close(GrantState::TimedOut, self.now);
        Ok(AuditAction::TimedOut)
    }

    pub(super) fn expire(&mut self) -> Result<AuditAction, TransitionError> {
        self.require_service(Service::Sweeper)?;
        let ends_at = self.require_active()?;
        if self.now < ends_at {
            return Err(self.not_due(ends_at));
        }
        self.next.close(GrantState::Expired, self.now);
        self.revocation = self.grant.revocation_after(self.now);
        Ok(AuditAction::Expired)
    }

    pub(super) fn revoke(&mut self, reason: &Reason) -> Result<AuditAction, TransitionError> {
        // A person, or the sweeper when a revoking guardrail fired on the grant's activity.
        if self.actor != &Actor::Service(Service::Sweeper) {
            self.person("only a person, or the sweeper on a guardrail, may revoke")?;
        }
        self.require_active()?;
        self.next.close(GrantState::Revoked, self.now);
        self.detail
            .insert("reason".to_owned(), reason.as_str().to_owned());
        self.revocation = self.grant.revocation_after(self.now);
        Ok(AuditAction::Revoked)
    }

    pub(super) fn post_review(
        &mut self,
        comment: Option<String>,
    ) -> Result<AuditAction, TransitionError> {
        let reviewer = self.person("only a person may review")?;
        if reviewer == &self.grant.requester {
            return Err(self.not_permitted("a requester cannot review their own access"));
        }
        if !self.grant.review_owed {
            return Err(TransitionError::NoReviewOwed {
                id: self.grant.id.clone(),
            });
        }
        self.next.review_owed = false;
        if let Some(comment) = comment {
            self.detail.insert("comment".to_owned(), comment);
        }
        Ok(AuditAction::PostReviewed)
    }

    pub(super) fn note_fallback(
        &mut self,
        issued_before: Timestamp,
    ) -> Result<AuditAction, TransitionError> {
        self.require_service(Service::Sweeper)?;
        self.detail.insert(
            "sessions_issued_before".to_owned(),
            issued_before.to_string(),
        );
        self.detail
            .insert("role_arn".to_owned(), self.grant.role_arn.to_string());
        if self.grant.state == GrantState::Active {
            // Not this grant's revocation: someone else's cut this grant's sessions too.
            self.detail.insert(
                "effect".to_owned(),
                "live sessions issued before the cut-off are denied; new credentials are not"
                    .to_owned(),
            );
        }
        Ok(AuditAction::RevocationFallback)
    }

    pub(super) fn note_repaired(&mut self, found: String) -> Result<AuditAction, TransitionError> {
        self.require_service(Service::Sweeper)?;
        self.detail.insert("found".to_owned(), found);
        self.detail
            .insert("role_arn".to_owned(), self.grant.role_arn.to_string());
        Ok(AuditAction::RevocationRepaired)
    }

    pub(super) fn cover_activity(
        &mut self,
        count: u64,
        digest: String,
        through: Timestamp,
    ) -> Result<AuditAction, TransitionError> {
        self.require_service(Service::Sweeper)?;
        if self.grant.activated_at.is_none() {
            return Err(self.not_permitted("a grant that was never active has no activity"));
        }
        self.detail
            .insert("activity_count".to_owned(), count.to_string());
        self.detail.insert("activity_digest".to_owned(), digest);
        self.detail
            .insert("activity_through".to_owned(), through.to_rfc3339());
        Ok(AuditAction::ActivityCovered)
    }

    pub(super) fn issue_session(
        &mut self,
        kind: SessionKind,
        expires_at: Timestamp,
    ) -> Result<AuditAction, TransitionError> {
        if self.actor != &Actor::User(self.grant.requester.clone()) {
            return Err(self.not_permitted("only the requester may use a grant"));
        }
        let ends_at = self.require_active()?;
        if self.now >= ends_at {
            return Err(self.time_ran_out(ends_at));
        }
        if let Some(opens_at) = self.grant.starts_at.filter(|s| self.now < *s) {
            return Err(TransitionError::NotYetOpen {
                id: self.grant.id.clone(),
                opens_at,
            });
        }
        if expires_at <= self.now {
            return Err(TransitionError::SessionInPast {
                id: self.grant.id.clone(),
                now: self.now,
                expires_at,
            });
        }
        self.next.sessions_issued = self.next.sessions_issued.saturating_add(1);
        self.next.sessions_valid_until = self.grant.sessions_valid_until.max(Some(expires_at));
        self.detail.insert("kind".to_owned(), kind.to_string());
        self.detail
            .insert("session_expires_at".to_owned(), expires_at.to_string());
        self.detail
            .insert("session".to_owned(), self.next.sessions_issued.to_string());
        Ok(AuditAction::SessionIssued)
    }
}
