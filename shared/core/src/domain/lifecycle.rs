//! The lifecycle as an explicit state machine: every legal transition, who may cause it, and
//! the audit record it writes.
//!
//! ```text
//! PENDING --auto rule / break-glass / N approvals--> ACTIVE --end time--> EXPIRED
//!    |--deny--> DENIED                                  |`----revoke----> REVOKED
//!    |--requester cancels--> CANCELLED                  |`--extend: a later end, by the
//!    `--decide-by passed--> TIMED_OUT                   |   rules or N approvals--> ACTIVE
//!                                                        `--requester cancels before a
//!                                                           scheduled start--> CANCELLED
//! ```
//!
//! Anything else is a [`TransitionError`]; terminal states never change.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::step::Step;
use super::{
    Actor, Grant, GrantDuration, GrantId, GrantState, OnCall, Reason, Requirement, ReviewDecision,
    RoleArn,
};
use crate::clock::Timestamp;
use crate::domain::audit::AuditRecord;

/// The kind of credentials handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    /// `credential_process` JSON for the CLI and SDKs.
    Cli,
    /// A console sign-in link.
    Console,
}

impl SessionKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Console => "console",
        }
    }
}

/// Who clicked in Slack, for a review made there: recorded beside the person the broker
/// resolved them to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackReviewer {
    /// The workspace (`team_id`).
    pub team_id: String,
    /// The Slack user (`user_id`).
    pub user_id: String,
}

/// Something that can happen to a request or grant.
#[derive(Debug, Clone)]
pub enum Command {
    /// The rules did not approve at once: wait for `approvals_required` distinct reviewers.
    AwaitReview {
        /// Distinct approvals needed.
        approvals_required: u32,
        /// The named requirements those approvals must fill (empty: any approvers count).
        requirements: Vec<Requirement>,
        /// The policy set that decided.
        policy_hash: String,
        /// What the on-call provider said, as the rules saw it.
        on_call: OnCall,
        /// Why the rules did not approve at once, in a sentence for reviewers (the refusing
        /// forbids' `@reason`s, or that no rule approves it at once).
        rules_said: String,
    },
    /// The rules approved at once. A grant opened while its requester is on call ends no
    /// later than the shift when the target says so (`OnCall::shift_end`).
    AutoApprove {
        /// The policies that permitted it.
        policies: Vec<String>,
        /// The policy set that decided.
        policy_hash: String,
        /// What the on-call provider said, as the rules saw it.
        on_call: OnCall,
    },
    /// Break-glass was permitted: open at once, review owed.
    BreakGlass {
        /// The policies that permitted it.
        policies: Vec<String>,
        /// The policy set that decided.
        policy_hash: String,
        /// What the on-call provider said, as the rules saw it.
        on_call: OnCall,
    },
    /// The requester asks for `by` more time on an active grant, with the rules' answer: when
    /// `approvals_required` is 0 they permitted it at once (by `policies`) and the end moves
    /// now; otherwise it waits for that many distinct approvals. The new end may not pass
    /// `limit` (the target's longest total from activation).
    Extend {
        /// The time added to the grant's end.
        by: GrantDuration,
        /// Why more time is needed.
        reason: Reason,
        /// The latest end the target allows this grant.
        limit: Timestamp,
        /// Distinct approvals needed; 0 when the rules permitted it at once.
        approvals_required: u32,
        /// The policies that permitted it at once (empty when it waits for reviewers).
        policies: Vec<String>,
        /// The policy set that decided.
        policy_hash: String,
        /// What the on-call provider said, as the rules saw it.
        on_call: OnCall,
    },
    /// A reviewer approves or denies: the pending request, or the pending extension of an
    /// active grant.
    Review {
        /// The decision.
        decision: ReviewDecision,
        /// What the reviewer wrote, if anything.
        comment: Option<String>,
        /// The requirements the rules let this reviewer fill (for a request that has them).
        fills: Vec<String>,
        /// The Slack user who clicked, when the review came from Slack.
        slack: Option<SlackReviewer>,
    },
    /// The requester withdraws the request.
    Cancel,
    /// The decision deadline passed.
    TimeOut,
    /// The grant reached its end time.
    Expire,
    /// Someone ends the grant early.
    Revoke {
        /// Why.
        reason: Reason,
    },
    /// A reviewer records the review a break-glass activation owes. The only change a closed
    /// grant still accepts: it never changes the state, only settles the debt.
    PostReview {
        /// What the reviewer found.
        comment: Option<String>,
    },
    /// The sweeper had to cut every session of the grant's role issued before `issued_before`,
    /// because the precise revocation policy no longer fit. Recorded on every grant it
    /// concerns, whatever its state: the revoked ones it is meant for, and the active grants
    /// of others whose live sessions it cuts too. The state never changes.
    NoteRevocationFallback {
        /// The cut-off.
        issued_before: Timestamp,
    },
    /// The sweeper found the role's revocation policy missing or changed outside this system
    /// (`found` says which) and put it back. Recorded on every grant the policy covers; the
    /// state never changes.
    NoteRevocationRepaired {
        /// What IAM held instead of the wanted policy.
        found: String,
    },
    /// The sweeper signs what covers the grant's activity: the `count` events stored up to
    /// `through` and their `digest` (`activity_digest`). Any state the grant reached by being
    /// active; the state never changes. A later one covers events delivered since.
    CoverActivity {
        /// Events covered.
        count: u64,
        /// Their digest.
        digest: String,
        /// Events stored up to this time are covered.
        through: Timestamp,
    },
    /// Credentials valid until `expires_at` are about to be handed out.
    IssueSession {
        /// CLI credentials or a console link.
        kind: SessionKind,
        /// When the session's credentials expire.
        expires_at: Timestamp,
    },
}

impl Command {
    /// A short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AwaitReview { .. } => "await review of",
            Self::AutoApprove { .. } => "auto-approve",
            Self::Extend { .. } => "extend",
            Self::BreakGlass { .. } => "break glass on",
            Self::Review {
                decision: ReviewDecision::Approve,
                ..
            } => "approve",
            Self::Review {
                decision: ReviewDecision::Deny,
                ..
            } => "deny",
            Self::Cancel => "cancel",
            Self::TimeOut => "time out",
            Self::Expire => "expire",
            Self::Revoke { .. } => "revoke",
            Self::IssueSession { .. } => "issue credentials for",
            Self::PostReview { .. } => "post-review",
            Self::NoteRevocationFallback { .. } => "note the revocation fallback on",
            Self::NoteRevocationRepaired { .. } => "note the revocation repair on",
            Self::CoverActivity { .. } => "cover the activity of",
        }
    }
}

/// A role that carries a revocation policy, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TargetRole {
    /// The role.
    pub role_arn: RoleArn,
    /// The role to assume for changing its policies when it lives in another account.
    pub revoker_role_arn: Option<RoleArn>,
}

/// A role whose live sessions for one grant must be cut off until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationEntry {
    /// The role the sessions belong to.
    pub role_arn: RoleArn,
    /// The role's revoker role, as recorded on the grant.
    #[serde(default)]
    pub revoker_role_arn: Option<RoleArn>,
    /// The grant whose sessions are cut (sessions carry it as a tag).
    pub grant_id: GrantId,
    /// When the last of those sessions expires; after that the entry can go.
    pub until: Timestamp,
}

/// A checked transition, ready to be stored in one transaction: the grant as it becomes, the
/// version it must still have, its audit record, and any revocation it calls for.
#[derive(Debug, Clone)]
pub struct Change {
    pub(crate) grant: Grant,
    pub(crate) expected_version: u64,
    pub(crate) audit: AuditRecord,
    pub(crate) revocation: Option<RevocationEntry>,
}

impl Change {
    /// The grant as it becomes.
    pub fn grant(&self) -> &Grant {
        &self.grant
    }

    /// The version the stored grant must still have for this change to apply.
    pub fn expected_version(&self) -> u64 {
        self.expected_version
    }

    /// The audit record the change appends.
    pub fn audit(&self) -> &AuditRecord {
        &self.audit
    }

    /// Whether the change closes an open grant (so the requester's slot for the target frees).
    pub fn closes(&self) -> bool {
        self.audit.from.is_some_and(|from| !from.is_terminal()) && self.grant.state.is_terminal()
    }

    /// The revocation ledger entry the change writes, if any.
    pub fn revocation(&self) -> Option<&RevocationEntry> {
        self.revocation.as_ref()
    }

    /// The change with `signature` on its audit record. Anyone may attach one; verification
    /// decides whether it counts.
    pub fn with_signature(mut self, signature: crate::domain::audit::RecordSignature) -> Self {
        self.audit.signature = Some(signature);
        self
    }
}

impl RevocationEntry {
    /// The role the entry's policy goes on, and how to reach it.
    pub fn target_role(&self) -> TargetRole {
        TargetRole {
            role_arn: self.role_arn.clone(),
            revoker_role_arn: self.revoker_role_arn.clone(),
        }
    }
}

/// Why a transition is refused. Each message says what the state is and why it does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The grant is in a final state.
    #[error("cannot {command} request `{id}`: it is {state}, which is final")]
    Terminal {
        /// The grant.
        id: GrantId,
        /// What was attempted.
        command: &'static str,
        /// Its final state.
        state: GrantState,
    },
    /// The command does not apply in the grant's current state.
    #[error("cannot {command} request `{id}`: it is {state}")]
    WrongState {
        /// The grant.
        id: GrantId,
        /// What was attempted.
        command: &'static str,
        /// Its state.
        state: GrantState,
    },
    /// This actor may not cause this transition.
    #[error("{actor} may not {command} request `{id}`: {why}")]
    NotPermitted {
        /// The grant.
        id: GrantId,
        /// Who tried.
        actor: Actor,
        /// What was attempted.
        command: &'static str,
        /// Why not.
        why: &'static str,
    },
    /// The reviewer has already reviewed this request.
    #[error("{reviewer} has already reviewed request `{id}`")]
    AlreadyReviewed {
        /// The grant.
        id: GrantId,
        /// The reviewer.
        reviewer: Actor,
    },
    /// The rules have not looked at the request yet.
    #[error("request `{id}` is still being evaluated by the rules; try again shortly")]
    NotYetEvaluated {
        /// The grant.
        id: GrantId,
    },
    /// The rules already decided on this request.
    #[error("request `{id}` was already evaluated by the rules")]
    AlreadyEvaluated {
        /// The grant.
        id: GrantId,
    },
    /// A time-driven transition was attempted before its time.
    #[error("cannot {command} request `{id}` before {due}")]
    NotDue {
        /// The grant.
        id: GrantId,
        /// What was attempted.
        command: &'static str,
        /// When it becomes possible.
        due: Timestamp,
    },
    /// The decision window or the grant's time has run out.
    #[error("cannot {command} request `{id}`: its time ran out at {at}")]
    TimeRanOut {
        /// The grant.
        id: GrantId,
        /// What was attempted.
        command: &'static str,
        /// When it ran out.
        at: Timestamp,
    },
    /// Break-glass was not asked for on this request.
    #[error("request `{id}` did not ask for break-glass")]
    NotBreakGlass {
        /// The grant.
        id: GrantId,
    },
    /// No review is owed: the grant was not opened through break-glass, or was reviewed.
    #[error(
        "request `{id}` owes no review: it was not opened by break-glass, or was already reviewed"
    )]
    NoReviewOwed {
        /// The grant.
        id: GrantId,
    },
    /// An extension already waits for reviewers.
    #[error("request `{id}` already has an extension waiting for review")]
    ExtensionPending {
        /// The grant.
        id: GrantId,
    },
    /// An active grant with no extension waiting: there is nothing to review.
    #[error("cannot {command} request `{id}`: it is ACTIVE, with no extension waiting for review")]
    NoExtensionPending {
        /// The grant.
        id: GrantId,
        /// What was attempted.
        command: &'static str,
    },
    /// The extension would take the grant past the longest its target allows.
    #[error(
        "cannot extend request `{id}` to {asked}: its target allows access until {limit} at most (its longest total from activation)"
    )]
    BeyondLimit {
        /// The grant.
        id: GrantId,
        /// The end asked for.
        asked: Timestamp,
        /// The latest end allowed.
        limit: Timestamp,
    },
    /// The grant's scheduled start is still ahead.
    #[error("access under request `{id}` opens at {opens_at}; no credentials before then")]
    NotYetOpen {
        /// The grant.
        id: GrantId,
        /// When it opens.
        opens_at: Timestamp,
    },
    /// An active grant can be cancelled only before its scheduled start, unused.
    #[error("cannot cancel request `{id}`: it is ACTIVE and {why}; revoke it instead")]
    AlreadyOpen {
        /// The grant.
        id: GrantId,
        /// Why it cannot be cancelled.
        why: &'static str,
    },
    /// A session that would expire before it starts.
    #[error("a session for `{id}` must expire after {now}, not at {expires_at}")]
    SessionInPast {
        /// The grant.
        id: GrantId,
        /// When the clock stands.
        now: Timestamp,
        /// The expiry given.
        expires_at: Timestamp,
    },
}

impl fmt::Display for SessionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Grant {
    /// Applies `command` by `actor` at `now`: the checked change, or why it is refused.
    ///
    /// Checks here are those the grant alone can answer (state, time, requester, one review per
    /// reviewer). Whether a person may approve or revoke on this target at all is the policy's
    /// question, asked before this.
    pub fn apply(
        &self,
        command: Command,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Change, TransitionError> {
        // Annotations that never change the state are the only changes a closed grant takes.
        let annotation = matches!(
            command,
            Command::PostReview { .. }
                | Command::NoteRevocationFallback { .. }
                | Command::NoteRevocationRepaired { .. }
                | Command::CoverActivity { .. }
        );
        if self.state.is_terminal() && !annotation {
            return Err(TransitionError::Terminal {
                id: self.id.clone(),
                command: command.name(),
                state: self.state,
            });
        }
        let mut step = Step::new(self, actor, now, command.name());
        let action = match command {
            Command::AwaitReview {
                approvals_required,
                requirements,
                policy_hash,
                on_call,
                rules_said,
            } => {
                step.note_on_call(&on_call);
                step.await_review(approvals_required, requirements, policy_hash, rules_said)?
            }
            Command::AutoApprove {
                policies,
                policy_hash,
                on_call,
            } => {
                step.note_on_call(&on_call);
                step.activate_by_rules(false, policies, policy_hash, on_call.shift_end())?
            }
            Command::BreakGlass {
                policies,
                policy_hash,
                on_call,
            } => {
                // An emergency is not cut short by a shift.
                step.note_on_call(&on_call);
                step.activate_by_rules(true, policies, policy_hash, None)?
            }
            Command::Extend {
                by,
                reason,
                limit,
                approvals_required,
                policies,
                policy_hash,
                on_call,
            } => {
                step.note_on_call(&on_call);
                step.extend(by, reason, limit, approvals_required, policies, policy_hash)?
            }
            Command::Review {
                decision,
                comment,
                fills,
                slack,
            } => {
                step.note_slack(slack.as_ref());
                step.review(decision, comment, fills)?
            }
            Command::Cancel => step.cancel()?,
            Command::TimeOut => step.time_out()?,
            Command::Expire => step.expire()?,
            Command::Revoke { reason } => step.revoke(&reason)?,
            Command::PostReview { comment } => step.post_review(comment)?,
            Command::NoteRevocationFallback { issued_before } => {
                step.note_fallback(issued_before)?
            }
            Command::NoteRevocationRepaired { found } => step.note_repaired(found)?,
            Command::CoverActivity {
                count,
                digest,
                through,
            } => step.cover_activity(count, digest, through)?,
            Command::IssueSession { kind, expires_at } => step.issue_session(kind, expires_at)?,
        };
        Ok(step.finish(action))
    }

    /// Grants access at `now`: it ends `duration` after its scheduled start, or after now.
    pub(super) fn activate(&mut self, now: Timestamp) {
        self.state = GrantState::Active;
        self.activated_at = Some(now);
        let opens = self.starts_at.unwrap_or(now);
        self.ends_at = Some(opens.plus_secs(i64::from(self.duration.as_secs())));
    }

    pub(super) fn close(&mut self, state: GrantState, now: Timestamp) {
        self.state = state;
        self.closed_at = Some(now);
        // An extension still waiting ends with the grant.
        self.extension = None;
    }

    /// A ledger entry when sessions handed out for this grant outlive `now`.
    pub(super) fn revocation_after(&self, now: Timestamp) -> Option<RevocationEntry> {
        self.sessions_valid_until
            .filter(|until| *until > now)
            .map(|until| RevocationEntry {
                role_arn: self.role_arn.clone(),
                revoker_role_arn: self.revoker_role_arn.clone(),
                grant_id: self.id.clone(),
                until,
            })
    }
}
