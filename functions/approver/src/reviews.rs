//! Human reviews over the API: `POST /requests/{id}/reviews` and
//! `POST /grants/{id}/post-review`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

use jit_core::clock::Timestamp;
use jit_core::domain::{Actor, Command, Grant, GrantId, ReviewDecision};
use jit_core::identity::Caller;
use jit_core::policy::{AccessContext, Action};
use jit_core::store::GrantStore;
use jit_core::transition::{Retry, transition_from};
use jit_core::trust::check_grant;
use jit_http::{
    Problem, body_text, caller, evidence_refused, json, match_route, no_such_route, optional_body,
    parse_body, respond, transition_problem, views,
};

use crate::{Approver, Notifier};

/// The longest comment a reviewer may leave.
pub const MAX_COMMENT_CHARS: usize = 2000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    decision: ReviewDecision,
    #[serde(default)]
    comment: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PostReviewBody {
    #[serde(default)]
    comment: Option<String>,
}

/// The routes this function serves over the API.
const ROUTES: [&str; 2] = [
    "POST /requests/{id}/reviews",
    "POST /grants/{id}/post-review",
];

fn comment(text: Option<String>) -> Result<Option<String>, Problem> {
    let Some(text) = text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let chars = text.chars().count();
    if chars > MAX_COMMENT_CHARS {
        return Err(Problem::invalid(format!(
            "comment must be at most {MAX_COMMENT_CHARS} characters, got {chars}"
        )));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Problem::invalid(
            "comment must not contain control characters",
        ));
    }
    Ok(Some(text))
}

impl<S: GrantStore, N: Notifier> Approver<S, N> {
    /// Handles one API Gateway request. Never fails: every outcome is a response.
    pub async fn handle_http(&self, request: Request) -> Response<Body> {
        respond(self.dispatch(&request, self.clock.now()).await)
    }

    async fn dispatch(&self, request: &Request, now: Timestamp) -> Result<Response<Body>, Problem> {
        let caller = caller(request, &self.config.groups_claim)?;
        let (id, command) = match match_route(request, &ROUTES) {
            Some(("POST /requests/{id}/reviews", Some(id))) => {
                let body: ReviewBody = parse_body(body_text(request)?)?;
                let command = Command::Review {
                    decision: body.decision,
                    comment: comment(body.comment)?,
                };
                (id, command)
            }
            Some(("POST /grants/{id}/post-review", Some(id))) => {
                let body: PostReviewBody = optional_body(request)?;
                let command = Command::PostReview {
                    comment: comment(body.comment)?,
                };
                (id, command)
            }
            _ => return Err(no_such_route(request)),
        };
        let grant = self.review(&id, command, &caller, now).await?;
        Ok(json(StatusCode::OK, &views::grant(&grant)))
    }

    /// Applies a review by `caller`, deciding afresh whenever concurrent reviews race it.
    async fn review(
        &self,
        id: &str,
        command: Command,
        caller: &Caller,
        now: Timestamp,
    ) -> Result<Grant, Problem> {
        let id = GrantId::parse(id).map_err(|_| Problem::not_found("request"))?;
        let actor = Actor::User(caller.user.clone());
        // The request with its chain, in the one read a review makes: approvals are counted
        // against what the signed records say (approvals required, earlier reviews), never
        // against an item someone edited.
        let (grant, records) = self
            .store
            .evidence(&id)
            .await?
            .ok_or_else(|| Problem::not_found("request"))?;
        if !self.rules.may_see(&grant, caller, now) {
            return Err(Problem::not_found("request"));
        }
        if let Err(broken) = check_grant(&grant, &records, &self.keys) {
            return Err(evidence_refused(
                &grant,
                &broken,
                now,
                "no review was recorded",
            ));
        }
        let change = transition_from(&self.store, grant, &Retry::STANDARD, |grant| {
            if !self.rules.may_see(grant, caller, now) {
                return Err(Problem::not_found("request"));
            }
            let permitted = self.rules.decide(
                caller,
                Action::Approve,
                &grant.target,
                &AccessContext::of_grant(grant, now),
            );
            if !permitted.allowed {
                return Err(Problem::forbidden(
                    permitted.explain_denial(Action::Approve, grant.target.as_str()),
                ));
            }
            Ok(grant.apply(command.clone(), &actor, now)?)
        })
        .await
        .map_err(|f| transition_problem(f, "request"))?;
        tracing::info!(
            grant = %change.grant().id,
            reviewer = %caller.user,
            action = %change.audit().action,
            state = %change.grant().state,
            "review recorded"
        );
        Ok(change.grant().clone())
    }
}
