//! A request for access and, once approved, the grant it becomes: one record, one lifecycle.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::lifecycle::TargetRole;
use super::{
    Actor, GrantDuration, GrantId, GrantState, GroupName, Reason, RoleArn, TargetId, Ticket, UserId,
};
use crate::clock::Timestamp;
use crate::domain::audit::{AuditAction, AuditEntry, AuditRecord, ChainHead};

/// What a reviewer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewDecision {
    /// Let it through.
    Approve,
    /// Turn it down.
    Deny,
}

/// One reviewer's decision on a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// Who reviewed.
    pub reviewer: UserId,
    /// What they decided.
    pub decision: ReviewDecision,
    /// When.
    pub at: Timestamp,
    /// The requirements of the request this reviewer may fill (one of them at most), as the
    /// rules said when they approved; empty where the target counts approvals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fills: Vec<String>,
}

/// What an on-call provider said about the requester when the rules decided a request: an
/// input the rules see (`context.on_call`) and the decision's record keeps. No answer (a
/// provider too slow, refusing, or a person it cannot name) counts as not on call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OnCall {
    /// Whether the target asks about on-call at all (its `on_call` settings).
    pub asked: bool,
    /// The lowest escalation level the person is on call at now; `None` when not on call,
    /// or when there was no answer.
    pub level: Option<u32>,
    /// When that on-call entry ends; `None` for a permanent entry, or when not on call.
    pub shift_ends_at: Option<Timestamp>,
    /// Whether a grant the rules open at once ends no later than the shift (the target's
    /// `end_with_shift`).
    pub end_with_shift: bool,
    /// What was asked and answered, as the decision's record says it.
    pub said: String,
}

impl OnCall {
    /// The target does not ask.
    pub fn not_asked() -> Self {
        Self::default()
    }

    /// Whether the person is on call, as answered.
    pub fn on_call(&self) -> bool {
        self.level.is_some()
    }

    /// The end a grant the rules open at once may have, when the shift cuts it short.
    pub fn shift_end(&self) -> Option<Timestamp> {
        self.shift_ends_at
            .filter(|_| self.end_with_shift && self.on_call())
    }
}

/// One named requirement of a request: `approvals` distinct approvers whom the rules let fill
/// it (an `Approve` permit annotated `@requirement("name")`, or one with no annotation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    /// Its name, as the targets file and the annotations say it.
    pub name: String,
    /// Distinct approvers it needs.
    pub approvals: u32,
}

/// How many approvers fill each of `requirements` (in order) in a largest assignment of the
/// `approvals` (each the requirements one approver may fill) where every approver fills one
/// requirement at most. All requirements are met exactly when each count reaches its
/// requirement's `approvals`: an approver who may fill two requirements is put where the
/// others cannot go, whatever the order they came in.
pub fn requirements_met(requirements: &[Requirement], approvals: &[&[String]]) -> Vec<u32> {
    // One slot per approval a requirement needs; augmenting paths (Kuhn's algorithm) over at
    // most ten slots and a few approvers.
    let slots: Vec<usize> = requirements
        .iter()
        .enumerate()
        .flat_map(|(i, r)| std::iter::repeat_n(i, r.approvals as usize))
        .collect();
    let mut holder: Vec<Option<usize>> = vec![None; slots.len()];
    fn place(
        approver: usize,
        slots: &[usize],
        requirements: &[Requirement],
        approvals: &[&[String]],
        holder: &mut [Option<usize>],
        seen: &mut [bool],
    ) -> bool {
        for (slot, &requirement) in slots.iter().enumerate() {
            let fits = requirements.get(requirement).is_some_and(|r| {
                approvals
                    .get(approver)
                    .is_some_and(|fills| fills.contains(&r.name))
            });
            if !fits || seen.get(slot).copied().unwrap_or(true) {
                continue;
            }
            if let Some(flag) = seen.get_mut(slot) {
                *flag = true;
            }
            let current = holder.get(slot).copied().flatten();
            let free = match current {
                None => true,
                Some(other) => place(other, slots, requirements, approvals, holder, seen),
            };
            if free {
                if let Some(h) = holder.get_mut(slot) {
                    *h = Some(approver);
                }
                return true;
            }
        }
        false
    }
    for approver in 0..approvals.len() {
        let mut seen = vec![false; slots.len()];
        place(
            approver,
            &slots,
            requirements,
            approvals,
            &mut holder,
            &mut seen,
        );
    }
    let mut met = vec![0_u32; requirements.len()];
    for (slot, h) in slots.iter().zip(&holder) {
        if h.is_some()
            && let Some(count) = met.get_mut(*slot)
        {
            *count += 1;
        }
    }
    met
}

/// More time the requester asked for on an active grant, which the rules sent to reviewers.
/// While it waits, the grant stays active with its old end; it goes when it is decided, or
/// when the grant ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingExtension {
    /// The time added to the grant's end, in seconds.
    pub secs: u32,
    /// Why more time is needed.
    pub reason: Reason,
    /// When it was asked for.
    pub requested_at: Timestamp,
    /// The end the grant gets once it is approved.
    pub ends_at: Timestamp,
    /// Distinct approvals it needs.
    pub approvals_required: u32,
    /// Every review of it so far, one per reviewer.
    pub reviews: Vec<Review>,
}

impl PendingExtension {
    /// How many distinct reviewers have approved it.
    pub fn approval_count(&self) -> usize {
        self.reviews
            .iter()
            .filter(|r| r.decision == ReviewDecision::Approve)
            .count()
    }
}

/// The request of several targets a grant was asked in: one request, one reason, one grant
/// per target, all made in one write. Its id is its first item's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// Every item of the request, in the order asked; the first is the bundle's id.
    pub items: Vec<GrantId>,
}

impl Bundle {
    /// The bundle's id: its first item's.
    pub fn id(&self) -> Option<&GrantId> {
        self.items.first()
    }

    /// The items as the request's record states them: ids, comma-separated.
    pub fn text(&self) -> String {
        self.items
            .iter()
            .map(GrantId::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Everything issuance and revocation need from the target, recorded when access is asked
/// for: a later edit of the targets file never changes what an existing grant's credentials
/// can do, nor where its revocation lands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleBinding {
    /// The role credentials are issued for.
    pub role_arn: RoleArn,
    /// The role the sweeper assumes to change `role_arn`'s policies, when it lives in another
    /// account than the broker.
    pub revoker_role_arn: Option<RoleArn>,
    /// The scope-down policy every session carries, minified; `None` means the role's own
    /// rights.
    pub session_policy: Option<String>,
    /// The role's maximum session duration, in seconds.
    pub max_session_secs: u32,
}

impl RoleBinding {
    /// The role whose revocation policy cuts this grant's sessions.
    pub fn target_role(&self) -> TargetRole {
        TargetRole {
            role_arn: self.role_arn.clone(),
            revoker_role_arn: self.revoker_role_arn.clone(),
        }
    }

    /// The SHA-256 of the session policy, hex, as audit records name it.
    pub fn session_policy_digest(&self) -> Option<String> {
        self.session_policy
            .as_ref()
            .map(|p| hex::encode(Sha256::digest(p.as_bytes())))
    }
}

/// A request for access as a person made it, already checked by intake.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// Who asks.
    pub requester: UserId,
    /// The groups the identity provider vouched for when they asked; the rules decide on these.
    pub requester_groups: Vec<GroupName>,
    /// For which target.
    pub target: TargetId,
    /// The target's role, revoker and session scope at the time of asking; the grant stays
    /// bound to them.
    pub binding: RoleBinding,
    /// For how long.
    pub duration: GrantDuration,
    /// Why.
    pub reason: Reason,
    /// The ticket it is for, if any.
    pub ticket: Option<Ticket>,
    /// Whether break-glass is invoked.
    pub break_glass: bool,
    /// How long reviewers have to decide before the request times out (never past
    /// `starts_at`).
    pub decision_window_secs: i64,
    /// When access is to open, if scheduled ahead; `None` opens it when granted.
    pub starts_at: Option<Timestamp>,
    /// The request of several targets this one is an item of, if any.
    pub bundle: Option<Bundle>,
    /// The policy set that allowed the request.
    pub policy_hash: String,
}

/// A request or grant: everything the lifecycle needs, and its audit chain's head.
///
/// Fields can be read freely; a changed grant can only be stored through a [`super::Change`]
/// made by [`Grant::apply`], so the state machine cannot be bypassed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The grant's id.
    pub id: GrantId,
    /// Who asked and who may use it.
    pub requester: UserId,
    /// The requester's groups when they asked, as the identity provider vouched for them.
    #[serde(default)]
    pub requester_groups: Vec<GroupName>,
    /// The target asked for.
    pub target: TargetId,
    /// The role credentials are issued for.
    pub role_arn: RoleArn,
    /// The role the sweeper assumes to change `role_arn`'s policies, if another account's.
    pub revoker_role_arn: Option<RoleArn>,
    /// The scope-down policy every session carries, as recorded when asked for.
    pub session_policy: Option<String>,
    /// The role's maximum session duration when asked for, in seconds.
    pub max_session_secs: u32,
    /// How long access lasts once active.
    pub duration: GrantDuration,
    /// When access opens, when scheduled ahead: granted before, it is usable only from then,
    /// and ends `duration` after it. `None`: access opens when granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Timestamp>,
    /// The request of several targets it is an item of, if any: each item is decided, used
    /// and ended on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<Bundle>,
    /// Why access was asked for.
    pub reason: Reason,
    /// The ticket it is for, if any.
    pub ticket: Option<Ticket>,
    /// Whether break-glass was invoked.
    pub break_glass: bool,
    /// Where it stands.
    pub state: GrantState,
    /// Bumped by every change; every write checks it.
    pub version: u64,
    /// When it was asked for.
    pub created_at: Timestamp,
    /// When a pending request times out.
    pub decide_by: Timestamp,
    /// How many distinct approvals it needs; absent until the rules have looked at it.
    pub approvals_required: Option<u32>,
    /// Every review so far, one per reviewer.
    pub reviews: Vec<Review>,
    /// When access opened.
    pub activated_at: Option<Timestamp>,
    /// When access ends (or ended, if revoked early this is the planned end).
    pub ends_at: Option<Timestamp>,
    /// When it reached a terminal state.
    pub closed_at: Option<Timestamp>,
    /// How many credential sessions were handed out.
    pub sessions_issued: u32,
    /// When the last handed-out session expires: until then, revocation must reach it.
    pub sessions_valid_until: Option<Timestamp>,
    /// Whether a break-glass activation still waits for its after-the-fact review.
    pub review_owed: bool,
    /// The policy set that made the latest rule decision.
    pub policy_hash: String,
    /// The named requirements its approvals must fill, recorded when the rules sent it to
    /// reviewers; empty where the target counts approvals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<Requirement>,
    /// Why the rules did not approve it at once, recorded when they sent it to reviewers (the
    /// `AWAITING_REVIEW` record's `rules_said`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_said: Option<String>,
    /// An extension of an active grant waiting for reviewers, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<PendingExtension>,
    /// The last audit record's sequence number and hash.
    pub audit_head: ChainHead,
}

/// A new request and the audit record that opens its chain, ready to be stored together.
#[derive(Debug, Clone)]
pub struct Creation {
    pub(crate) grant: Grant,
    pub(crate) audit: AuditRecord,
}

impl Creation {
    /// The request as it will be stored.
    pub fn grant(&self) -> &Grant {
        &self.grant
    }

    /// The first audit record.
    pub fn audit(&self) -> &AuditRecord {
        &self.audit
    }

    /// The creation with `signature` on its audit record.
    pub fn with_signature(mut self, signature: crate::domain::audit::RecordSignature) -> Self {
        self.audit.signature = Some(signature);
        self
    }
}

impl Grant {
    /// Opens a request: PENDING, version 1, with its first audit record.
    pub fn open(id: GrantId, request: NewRequest, now: Timestamp) -> Creation {
        let mut detail = BTreeMap::from([
            ("target".to_owned(), request.target.to_string()),
            ("role_arn".to_owned(), request.binding.role_arn.to_string()),
            (
                "max_session_secs".to_owned(),
                request.binding.max_session_secs.to_string(),
            ),
            (
                "duration_secs".to_owned(),
                request.duration.as_secs().to_string(),
            ),
            ("reason".to_owned(), request.reason.as_str().to_owned()),
        ]);
        if let Some(ticket) = &request.ticket {
            detail.insert("ticket".to_owned(), ticket.to_string());
        }
        if request.break_glass {
            detail.insert("break_glass".to_owned(), "true".to_owned());
        }
        if let Some(start) = request.starts_at {
            detail.insert("starts_at".to_owned(), start.to_string());
        }
        if let Some(bundle) = &request.bundle {
            detail.insert("bundle".to_owned(), bundle.text());
        }
        if let Some(revoker) = &request.binding.revoker_role_arn {
            detail.insert("revoker_role_arn".to_owned(), revoker.to_string());
        }
        if let Some(digest) = request.binding.session_policy_digest() {
            detail.insert("session_policy_sha256".to_owned(), digest);
        }
        if !request.requester_groups.is_empty() {
            let groups: Vec<&str> = request
                .requester_groups
                .iter()
                .map(GroupName::as_str)
                .collect();
            detail.insert("groups".to_owned(), groups.join(","));
        }
        let audit = AuditRecord::chained(
            &id,
            &ChainHead::genesis(),
            AuditEntry {
                at: now,
                actor: Actor::User(request.requester.clone()),
                action: AuditAction::Requested,
                from: None,
                to: GrantState::Pending,
                detail,
                policy_hash: Some(request.policy_hash.clone()),
            },
        );
        let grant = Self {
            id,
            requester: request.requester,
            requester_groups: request.requester_groups,
            target: request.target,
            role_arn: request.binding.role_arn,
            revoker_role_arn: request.binding.revoker_role_arn,
            session_policy: request.binding.session_policy,
            max_session_secs: request.binding.max_session_secs,
            duration: request.duration,
            starts_at: request.starts_at,
            bundle: request.bundle,
            reason: request.reason,
            ticket: request.ticket,
            break_glass: request.break_glass,
            state: GrantState::Pending,
            version: 1,
            created_at: now,
            // Reviewers decide before access is to open, never after.
            decide_by: now.plus_secs(request.decision_window_secs.max(0)).min(
                request
                    .starts_at
                    .unwrap_or(Timestamp::from_unix_seconds(i64::MAX)),
            ),
            approvals_required: None,
            reviews: Vec::new(),
            activated_at: None,
            ends_at: None,
            closed_at: None,
            sessions_issued: 0,
            sessions_valid_until: None,
            review_owed: false,
            policy_hash: request.policy_hash,
            requirements: Vec::new(),
            rules_said: None,
            extension: None,
            audit_head: audit.head(),
        };
        Creation { grant, audit }
    }

    /// When the sweeper must next look at this grant: the decision deadline of a pending
    /// request, the end of an active grant, never for a terminal one.
    pub fn due_at(&self) -> Option<Timestamp> {
        match self.state {
            GrantState::Pending => Some(self.decide_by),
            GrantState::Active => self.ends_at,
            _ => None,
        }
    }

    /// The reviews of what waits for reviewers: a pending request's, or the extension an
    /// active grant waits for; `None` when nothing waits for people.
    pub fn awaiting_review(&self) -> Option<&[Review]> {
        match (self.state, &self.extension) {
            (GrantState::Pending, _) => Some(&self.reviews),
            (GrantState::Active, Some(extension)) => Some(&extension.reviews),
            _ => None,
        }
    }

    /// When access opens (or opened): the scheduled start, else the activation; `None` for a
    /// request not yet granted without a schedule.
    pub fn opens_at(&self) -> Option<Timestamp> {
        self.starts_at.or(self.activated_at)
    }

    /// Whether the grant is active but its scheduled start is still ahead at `now`.
    pub fn not_yet_open(&self, now: Timestamp) -> bool {
        self.state == GrantState::Active && self.starts_at.is_some_and(|s| now < s)
    }

    /// What the grant was bound to when asked for: role, revoker, session scope.
    pub fn binding(&self) -> RoleBinding {
        RoleBinding {
            role_arn: self.role_arn.clone(),
            revoker_role_arn: self.revoker_role_arn.clone(),
            session_policy: self.session_policy.clone(),
            max_session_secs: self.max_session_secs,
        }
    }

    /// How many approvers fill each requirement (in order), in a largest assignment.
    pub fn requirements_met(&self) -> Vec<u32> {
        let fills: Vec<&[String]> = self
            .reviews
            .iter()
            .filter(|r| r.decision == ReviewDecision::Approve)
            .map(|r| r.fills.as_slice())
            .collect();
        requirements_met(&self.requirements, &fills)
    }

    /// The requirements as records state them: `name:approvals`, comma-separated.
    pub fn requirements_text(&self) -> String {
        self.requirements
            .iter()
            .map(|r| format!("{}:{}", r.name, r.approvals))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// How many distinct reviewers have approved.
    pub fn approval_count(&self) -> usize {
        self.reviews
            .iter()
            .filter(|r| r.decision == ReviewDecision::Approve)
            .count()
    }
}
