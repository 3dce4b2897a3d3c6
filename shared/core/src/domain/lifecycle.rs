//! The lifecycle as an explicit state machine: every legal transition, who may cause it, and
//! the audit record it writes.
//!
//! ```text
//! PENDING --auto rule / break-glass / N approvals--> ACTIVE --end time--> EXPIRED
//!    |--deny--> DENIED                                  `----revoke----> REVOKED
//!    |--requester cancels--> CANCELLED
//!    `--decide-by passed--> TIMED_OUT
//! ```
//!
//! Anything else is a [`TransitionError`]; terminal states never change.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Actor, Grant, GrantId, GrantState, Reason, Review, ReviewDecision, RoleArn, Service};
use crate::audit::{AuditAction, AuditEntry, AuditRecord};
use crate::clock::Timestamp;

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

/// Something that can happen to a request or grant.
#[derive(Debug, Clone)]
pub enum Command {
    /// The rules did not approve at once: wait for `approvals_required` distinct reviewers.
    AwaitReview {
        /// Distinct approvals needed.
        approvals_required: u32,
        /// The policy set that decided.
        policy_hash: String,
    },
    /// The rules approved at once.
    AutoApprove {
        /// The policies that permitted it.
        policies: Vec<String>,
        /// The policy set that decided.
        policy_hash: String,
    },
    /// Break-glass was permitted: open at once, review owed.
    BreakGlass {
        /// The policies that permitted it.
        policies: Vec<String>,
        /// The policy set that decided.
        policy_hash: String,
    },
    /// A reviewer approves or denies.
    Review {
        /// The decision.
        decision: ReviewDecision,
        /// What the reviewer wrote, if anything.
        comment: Option<String>,
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
        let id = &self.id;
        let name = command.name();
        // Annotations that never change the state are the only changes a closed grant takes.
        let annotation = matches!(
            command,
            Command::PostReview { .. }
                | Command::NoteRevocationFallback { .. }
                | Command::NoteRevocationRepaired { .. }
        );
        if self.state.is_terminal() && !annotation {
            return Err(TransitionError::Terminal {
                id: id.clone(),
                command: name,
                state: self.state,
            });
        }
        let wrong_state = || TransitionError::WrongState {
            id: id.clone(),
            command: name,
            state: self.state,
        };
        let not_permitted = |why| TransitionError::NotPermitted {
            id: id.clone(),
            actor: actor.clone(),
            command: name,
            why,
        };
        let require_service = |service: Service| {
            if actor == &Actor::Service(service) {
                Ok(())
            } else {
                Err(not_permitted("only the system may do this"))
            }
        };

        let mut next = self.clone();
        let mut detail = BTreeMap::new();
        let mut policy_hash = None;
        let mut revocation = None;
        let action = match command {
            Command::AwaitReview {
                approvals_required,
                policy_hash: hash,
            } => {
                require_service(Service::Approver)?;
                self.require_pending(wrong_state)?;
                if self.approvals_required.is_some() {
                    return Err(TransitionError::AlreadyEvaluated { id: id.clone() });
                }
                next.approvals_required = Some(approvals_required.max(1));
                detail.insert(
                    "approvals_required".to_owned(),
                    approvals_required.max(1).to_string(),
                );
                detail.insert("decide_by".to_owned(), self.decide_by.to_string());
                next.policy_hash.clone_from(&hash);
                policy_hash = Some(hash);
                AuditAction::AwaitingReview
            }
            Command::AutoApprove {
                policies,
                policy_hash: hash,
            } => {
                self.activate_by_rules(&mut next, actor, false, now)?;
                detail.insert("policies".to_owned(), policies.join(","));
                next.policy_hash.clone_from(&hash);
                policy_hash = Some(hash);
                AuditAction::AutoApproved
            }
            Command::BreakGlass {
                policies,
                policy_hash: hash,
            } => {
                self.activate_by_rules(&mut next, actor, true, now)?;
                detail.insert("policies".to_owned(), policies.join(","));
                next.policy_hash.clone_from(&hash);
                policy_hash = Some(hash);
                AuditAction::BreakGlassActivated
            }
            Command::Review { decision, comment } => {
                let Actor::User(reviewer) = actor else {
                    return Err(not_permitted("only a person may review"));
                };
                if reviewer == &self.requester {
                    return Err(not_permitted("a requester cannot review their own request"));
                }
                self.require_pending(wrong_state)?;
                let Some(required) = self.approvals_required else {
                    return Err(TransitionError::NotYetEvaluated { id: id.clone() });
                };
                if now >= self.decide_by {
                    return Err(TransitionError::TimeRanOut {
                        id: id.clone(),
                        command: name,
                        at: self.decide_by,
                    });
                }
                if self.reviews.iter().any(|r| &r.reviewer == reviewer) {
                    return Err(TransitionError::AlreadyReviewed {
                        id: id.clone(),
                        reviewer: actor.clone(),
                    });
                }
                next.reviews.push(Review {
                    reviewer: reviewer.clone(),
                    decision,
                    at: now,
                });
                if let Some(comment) = comment {
                    detail.insert("comment".to_owned(), comment);
                }
                match decision {
                    ReviewDecision::Deny => {
                        next.close(GrantState::Denied, now);
                        AuditAction::Denied
                    }
                    ReviewDecision::Approve => {
                        let approvals = next.approval_count();
                        detail.insert("approvals".to_owned(), format!("{approvals}/{required}"));
                        if u32::try_from(approvals).unwrap_or(u32::MAX) >= required {
                            next.activate(now);
                        }
                        AuditAction::Approved
                    }
                }
            }
            Command::Cancel => {
                if actor != &Actor::User(self.requester.clone()) {
                    return Err(not_permitted("only the requester may cancel"));
                }
                self.require_pending(wrong_state)?;
                next.close(GrantState::Cancelled, now);
                AuditAction::Cancelled
            }
            Command::TimeOut => {
                require_service(Service::Sweeper)?;
                self.require_pending(wrong_state)?;
                if now < self.decide_by {
                    return Err(TransitionError::NotDue {
                        id: id.clone(),
                        command: name,
                        due: self.decide_by,
                    });
                }
                next.close(GrantState::TimedOut, now);
                AuditAction::TimedOut
            }
            Command::Expire => {
                require_service(Service::Sweeper)?;
                let ends_at = self.require_active(wrong_state)?;
                if now < ends_at {
                    return Err(TransitionError::NotDue {
                        id: id.clone(),
                        command: name,
                        due: ends_at,
                    });
                }
                next.close(GrantState::Expired, now);
                revocation = self.revocation_after(now);
                AuditAction::Expired
            }
            Command::Revoke { reason } => {
                if !matches!(actor, Actor::User(_)) {
                    return Err(not_permitted("only a person may revoke"));
                }
                self.require_active(wrong_state)?;
                next.close(GrantState::Revoked, now);
                detail.insert("reason".to_owned(), reason.as_str().to_owned());
                revocation = self.revocation_after(now);
                AuditAction::Revoked
            }
            Command::PostReview { comment } => {
                let Actor::User(reviewer) = actor else {
                    return Err(not_permitted("only a person may review"));
                };
                if reviewer == &self.requester {
                    return Err(not_permitted("a requester cannot review their own access"));
                }
                if !self.review_owed {
                    return Err(TransitionError::NoReviewOwed { id: id.clone() });
                }
                next.review_owed = false;
                if let Some(comment) = comment {
                    detail.insert("comment".to_owned(), comment);
                }
                AuditAction::PostReviewed
            }
            Command::NoteRevocationFallback { issued_before } => {
                require_service(Service::Sweeper)?;
                detail.insert(
                    "sessions_issued_before".to_owned(),
                    issued_before.to_string(),
                );
                detail.insert("role_arn".to_owned(), self.role_arn.to_string());
                if self.state == GrantState::Active {
                    // Not this grant's revocation: someone else's cut this grant's sessions too.
                    detail.insert(
                        "effect".to_owned(),
                        "live sessions issued before the cut-off are denied; new credentials are not"
                            .to_owned(),
                    );
                }
                AuditAction::RevocationFallback
            }
            Command::NoteRevocationRepaired { found } => {
                require_service(Service::Sweeper)?;
                detail.insert("found".to_owned(), found);
                detail.insert("role_arn".to_owned(), self.role_arn.to_string());
                AuditAction::RevocationRepaired
            }
            Command::IssueSession { kind, expires_at } => {
                if actor != &Actor::User(self.requester.clone()) {
                    return Err(not_permitted("only the requester may use a grant"));
                }
                let ends_at = self.require_active(wrong_state)?;
                if now >= ends_at {
                    return Err(TransitionError::TimeRanOut {
                        id: id.clone(),
                        command: name,
                        at: ends_at,
                    });
                }
                if expires_at <= now {
                    return Err(TransitionError::SessionInPast {
                        id: id.clone(),
                        now,
                        expires_at,
                    });
                }
                next.sessions_issued = next.sessions_issued.saturating_add(1);
                next.sessions_valid_until = self.sessions_valid_until.max(Some(expires_at));
                detail.insert("kind".to_owned(), kind.to_string());
                detail.insert("session_expires_at".to_owned(), expires_at.to_string());
                detail.insert("session".to_owned(), next.sessions_issued.to_string());
                AuditAction::SessionIssued
            }
        };

        if let Some(entry) = &revocation {
            detail.insert("revoke_sessions_until".to_owned(), entry.until.to_string());
        }
        let audit = AuditRecord::chained(
            id,
            &self.audit_head,
            AuditEntry {
                at: now,
                actor: actor.clone(),
                action,
                from: Some(self.state),
                to: next.state,
                detail,
                policy_hash,
            },
        );
        next.version = self.version.saturating_add(1);
        next.audit_head = audit.head();
        Ok(Change {
            grant: next,
            expected_version: self.version,
            audit,
            revocation,
        })
    }

    /// The checks and changes shared by auto-approval and break-glass.
    fn activate_by_rules(
        &self,
        next: &mut Grant,
        actor: &Actor,
        break_glass: bool,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        let command = if break_glass {
            "break glass on"
        } else {
            "auto-approve"
        };
        if actor != &Actor::Service(Service::Approver) {
            return Err(TransitionError::NotPermitted {
                id: self.id.clone(),
                actor: actor.clone(),
                command,
                why: "only the system may do this",
            });
        }
        if self.state != GrantState::Pending {
            return Err(TransitionError::WrongState {
                id: self.id.clone(),
                command,
                state: self.state,
            });
        }
        if self.approvals_required.is_some() {
            return Err(TransitionError::AlreadyEvaluated {
                id: self.id.clone(),
            });
        }
        if break_glass && !self.break_glass {
            return Err(TransitionError::NotBreakGlass {
                id: self.id.clone(),
            });
        }
        // A request nobody decided in time times out; the rules cannot open it late.
        if now >= self.decide_by {
            return Err(TransitionError::TimeRanOut {
                id: self.id.clone(),
                command,
                at: self.decide_by,
            });
        }
        next.approvals_required = Some(0);
        next.activate(now);
        next.review_owed = break_glass;
        Ok(())
    }

    fn require_pending(
        &self,
        wrong_state: impl Fn() -> TransitionError,
    ) -> Result<(), TransitionError> {
        if self.state == GrantState::Pending {
            Ok(())
        } else {
            Err(wrong_state())
        }
    }

    fn require_active(
        &self,
        wrong_state: impl Fn() -> TransitionError,
    ) -> Result<Timestamp, TransitionError> {
        match (self.state, self.ends_at) {
            (GrantState::Active, Some(ends_at)) => Ok(ends_at),
            _ => Err(wrong_state()),
        }
    }

    fn activate(&mut self, now: Timestamp) {
        self.state = GrantState::Active;
        self.activated_at = Some(now);
        self.ends_at = Some(now.plus_secs(i64::from(self.duration.as_secs())));
    }

    fn close(&mut self, state: GrantState, now: Timestamp) {
        self.state = state;
        self.closed_at = Some(now);
    }

    /// A ledger entry when sessions handed out for this grant outlive `now`.
    fn revocation_after(&self, now: Timestamp) -> Option<RevocationEntry> {
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
