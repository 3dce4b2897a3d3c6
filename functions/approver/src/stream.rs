//! New requests from the table's stream: decided by the rules, in one write each.
//!
//! The stream image is the read: a request is decided from the version it shows, and the write
//! applies only if the stored request is still that version. So a redelivered record, or one
//! for a request cancelled meanwhile, changes nothing.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

use jit_core::domain::{Actor, Command, Grant, GrantState, OnCall, Service};
use jit_core::identity::Caller;
use jit_core::policy::{AccessContext, Action};
use jit_core::store::{DynamoStore, GrantStore, StoreError, StreamImage};

use crate::oncall::Answers;
use crate::{Approver, Notifier};

/// What became of one stream record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The rules approved it: now active.
    AutoApproved,
    /// Break-glass was permitted: now active, review owed.
    BreakGlass,
    /// Waiting for this many reviewers.
    AwaitingReview(u32),
    /// Nothing to do, and why.
    Skipped(&'static str),
}

impl<S: GrantStore, N: Notifier> Approver<S, N> {
    /// Decides every new request in the batch. Records that failed for a passing reason (the
    /// database was unavailable or throttled) are reported so Lambda retries from them; records
    /// that can never succeed (unreadable, or refused by the database) are logged and skipped,
    /// so they block nothing.
    pub async fn handle_stream(&self, batch: Event) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        // What the on-call provider says about the batch's requesters, asked once, all at
        // once, under one deadline.
        let images: Vec<Grant> = batch
            .records
            .iter()
            .filter(|r| r.event_name == "INSERT")
            .filter_map(
                |r| match DynamoStore::stream_image(&r.change.keys, &r.change.new_image) {
                    Ok(StreamImage::Grant(grant)) if undecided(&grant) => Some(*grant),
                    _ => None,
                },
            )
            .collect();
        let answers = self
            .on_call
            .ask(
                &self.rules,
                &images.iter().collect::<Vec<_>>(),
                self.clock.now(),
            )
            .await;
        for record in batch.records {
            match self.handle_record(&record, &answers).await {
                Ok(outcome) => {
                    tracing::debug!(event = %record.event_id, ?outcome, "stream record handled");
                }
                // Retrying cannot fix a refusal (a missing permission, a missing table): holding
                // up the shard would not either. The request times out on its own.
                Err(e) if !e.is_transient() => {
                    tracing::error!(event = %record.event_id, error = %e, "stream record refused by the database; not retried");
                }
                Err(e) => {
                    tracing::warn!(event = %record.event_id, error = %e, "stream record failed; it will be retried");
                    let mut failure = DynamoDbBatchItemFailure::default();
                    failure.item_identifier = record.change.sequence_number.clone();
                    response.batch_item_failures.push(failure);
                }
            }
        }
        response
    }

    async fn handle_record(
        &self,
        record: &EventRecord,
        answers: &Answers,
    ) -> Result<Outcome, StoreError> {
        if record.event_name != "INSERT" {
            return Ok(Outcome::Skipped("not an insert"));
        }
        let grant = match DynamoStore::stream_image(&record.change.keys, &record.change.new_image) {
            Ok(StreamImage::Grant(grant)) => grant,
            Ok(StreamImage::Other) => return Ok(Outcome::Skipped("not a request")),
            Err(e) => {
                // Retrying cannot fix it; the request (if it is one) times out on its own.
                tracing::error!(event = %record.event_id, error = %e, "unreadable request image skipped");
                return Ok(Outcome::Skipped("unreadable image"));
            }
        };
        self.decide_with(&grant, answers).await
    }

    /// What the rules decide for a pending request, as the requester's recorded groups ask
    /// at `now`: break-glass (when asked and permitted), auto-approval, or review by the
    /// target's number of approvers.
    fn decide(
        &self,
        grant: &Grant,
        on_call: OnCall,
        now: jit_core::clock::Timestamp,
    ) -> (Command, Outcome) {
        let requester = Caller {
            user: grant.requester.clone(),
            email: None,
            groups: grant.requester_groups.clone(),
        };
        let mut context = AccessContext::of_grant(grant, now);
        context.on_call = on_call.clone();
        let hash = self.rules.hash().to_owned();
        let decide = |action| {
            self.rules
                .decide(&requester, action, &grant.target, &context)
        };
        if grant.break_glass {
            let d = decide(Action::BreakGlass);
            if d.allowed {
                return activation(Action::BreakGlass, d.policies, hash, on_call);
            }
            tracing::warn!(grant = %grant.id, "break-glass asked for but not permitted; deciding as a normal request");
        }
        let d = decide(Action::AutoApprove);
        if d.allowed {
            return activation(Action::AutoApprove, d.policies, hash, on_call);
        }
        let rules_said = rules_said(grant.break_glass, &d);
        let (required, requirements) = match self.rules.target(&grant.target) {
            Some(target) => (target.approvals_required, target.requirements.clone()),
            None => {
                tracing::warn!(grant = %grant.id, target = %grant.target, "target no longer declared; nobody can approve it");
                (1, Vec::new())
            }
        };
        let command = Command::AwaitReview {
            approvals_required: required,
            requirements,
            policy_hash: hash,
            on_call,
            rules_said,
        };
        (command, Outcome::AwaitingReview(required))
    }

    /// Decides one new request by the rules, from the version given, asking the on-call
    /// provider first when its target asks.
    pub async fn evaluate(&self, grant: &Grant) -> Result<Outcome, StoreError> {
        let answers = self
            .on_call
            .ask(&self.rules, &[grant], self.clock.now())
            .await;
        self.decide_with(grant, &answers).await
    }

    /// Decides one new request by the rules, from the version given, with the batch's
    /// on-call answers.
    async fn decide_with(&self, grant: &Grant, answers: &Answers) -> Result<Outcome, StoreError> {
        if !undecided(grant) {
            return Ok(Outcome::Skipped("already decided"));
        }
        let now = self.clock.now();
        let on_call = answers
            .get(&(grant.requester.clone(), grant.target.clone()))
            .cloned()
            .unwrap_or_default();
        let (command, outcome) = self.decide(grant, on_call, now);
        let change = match grant.apply(command, &Actor::Service(Service::Approver), now) {
            Ok(change) => change,
            Err(e) => {
                tracing::info!(grant = %grant.id, error = %e, "request no longer needs a decision");
                return Ok(Outcome::Skipped("no longer pending"));
            }
        };
        match self.store.commit(&change).await {
            Ok(()) => {}
            // The request changed since this image: decided already, or cancelled.
            Err(StoreError::Conflict { .. }) => return Ok(Outcome::Skipped("changed meanwhile")),
            Err(e) => return Err(e),
        }
        match &outcome {
            Outcome::AwaitingReview(n) => self.notifier.review_requested(change.grant(), *n, now),
            Outcome::BreakGlass => self.notifier.break_glass(change.grant(), now),
            _ => {
                tracing::info!(grant = %grant.id, target = %grant.target, "request approved by the rules")
            }
        }
        Ok(outcome)
    }
}

/// Why the rules did not open `grant` at once, for its reviewers: the `@reason`s of the forbids
/// that refused auto-approval, else the forbids' ids, else that no rule approves it at once;
/// after a break-glass request, that break-glass was not permitted either.
fn rules_said(break_glass: bool, auto_approval: &jit_core::policy::Decision) -> String {
    let why = if !auto_approval.reasons.is_empty() {
        format!("not approved at once: {}", auto_approval.reasons.join("; "))
    } else if !auto_approval.policies.is_empty() {
        format!(
            "not approved at once: forbidden by {}",
            auto_approval.policies.join(", ")
        )
    } else {
        "no rule approves this at once".to_owned()
    };
    if break_glass {
        format!("break-glass not permitted; {why}")
    } else {
        why
    }
}

/// The activation the rules' `action` (break-glass or auto-approval) permitted by `policies`
/// makes, and how the stream reports it.
fn activation(
    action: Action,
    policies: Vec<String>,
    policy_hash: String,
    on_call: OnCall,
) -> (Command, Outcome) {
    if action == Action::BreakGlass {
        let command = Command::BreakGlass {
            policies,
            policy_hash,
            on_call,
        };
        (command, Outcome::BreakGlass)
    } else {
        let command = Command::AutoApprove {
            policies,
            policy_hash,
            on_call,
        };
        (command, Outcome::AutoApproved)
    }
}

/// Whether the rules have yet to decide `grant`.
fn undecided(grant: &Grant) -> bool {
    grant.state == GrantState::Pending && grant.approvals_required.is_none()
}
