//! People over the API: reviews (`POST /requests/{id}/reviews`), reviews owed after
//! break-glass (`POST /grants/{id}/post-review`), and extensions asked by the requester
//! (`POST /grants/{id}/extend`), which the rules decide here, as the approver alone signs
//! decisions; and one review of every item of a request of several targets the reviewer may
//! decide (`POST /bundles/{id}/reviews`).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

use jit_api::{BundleItemOutcome, BundleOutcome, GrantView};
use jit_core::cases::{Cases, ItemOutcome};
use jit_core::clock::Timestamp;
use jit_core::domain::{Reason, ReviewDecision};
use jit_core::store::GrantStore;
use jit_http::{
    Problem, Reply, Route, body_text, caller, duration_of, json, no_such_route, optional_body,
    parse_body, respond, route,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtendBody {
    duration: serde_json::Value,
    reason: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PostReviewBody {
    #[serde(default)]
    comment: Option<String>,
}

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

    async fn dispatch(&self, request: &Request, now: Timestamp) -> Reply {
        let caller = caller(request, &self.config.groups_claim)?;
        let cases = Cases::new(&self.store, &self.rules, &self.keys);
        let grant = match route(request) {
            Some(Route::Review(id)) => {
                let body: ReviewBody = parse_body(body_text(request)?)?;
                let comment = comment(body.comment)?;
                cases
                    .review(&caller, id, body.decision, comment, now)
                    .await?
            }
            Some(Route::ReviewBundle(id)) => {
                let body: ReviewBody = parse_body(body_text(request)?)?;
                let comment = comment(body.comment)?;
                let outcomes = cases
                    .review_bundle(&caller, id, body.decision, comment, now)
                    .await?;
                let decided = match body.decision {
                    ReviewDecision::Approve => "approved",
                    ReviewDecision::Deny => "denied",
                };
                let items: Vec<BundleItemOutcome> = outcomes
                    .into_iter()
                    .map(|o| match o {
                        ItemOutcome::Done(grant) => BundleItemOutcome::done(&grant, decided, None),
                        ItemOutcome::Skipped(grant, why) => BundleItemOutcome::skipped(&grant, why),
                        ItemOutcome::Refused(grant, refusal) => {
                            BundleItemOutcome::refused(&grant, &refusal)
                        }
                    })
                    .collect();
                tracing::info!(bundle = %id, reviewer = %caller.user, "bundle reviewed");
                return Ok(json(
                    StatusCode::OK,
                    &BundleOutcome {
                        bundle: id.to_owned(),
                        items,
                    },
                ));
            }
            Some(Route::PostReview(id)) => {
                let body: PostReviewBody = optional_body(request)?;
                let comment = comment(body.comment)?;
                cases.post_review(&caller, id, comment, now).await?
            }
            Some(Route::Extend(id)) => {
                let body: ExtendBody = parse_body(body_text(request)?)?;
                let by = duration_of(&body.duration)?;
                let reason =
                    Reason::parse(body.reason).map_err(|e| Problem::invalid(e.to_string()))?;
                // Who is on call, asked of the grant once its evidence is verified.
                let on_call = async |grant: &jit_core::domain::Grant| {
                    let key = (grant.requester.clone(), grant.target.clone());
                    let mut answers = self.on_call.ask(&self.rules, &[grant], now).await;
                    answers.remove(&key).unwrap_or_default()
                };
                let grant = cases.extend(&caller, id, by, reason, now, on_call).await?;
                match &grant.extension {
                    Some(waiting) => {
                        self.notifier
                            .extension_requested(&grant, waiting.approvals_required, now);
                        return Ok(json(StatusCode::ACCEPTED, &GrantView::from(&grant)));
                    }
                    None => {
                        tracing::info!(grant = %grant.id, ends_at = ?grant.ends_at, "extended by the rules");
                        return Ok(json(StatusCode::OK, &GrantView::from(&grant)));
                    }
                }
            }
            _ => return Err(no_such_route(request)),
        };
        tracing::info!(
            grant = %grant.id,
            reviewer = %caller.user,
            state = %grant.state,
            "review recorded"
        );
        Ok(json(StatusCode::OK, &GrantView::from(&grant)))
    }
}
