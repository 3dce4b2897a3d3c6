//! Request intake: the HTTP API behind API Gateway for creating, reading, listing and
//! cancelling requests, and for exporting the audit trail.
//!
//! The caller is whoever API Gateway's JWT authorizer vouched for; nothing in the body, query
//! or headers can change that. Every refusal is an RFC 9457 problem that says what to fix, and
//! no refused request writes anything.

mod audit;
mod requests;
mod slack;
mod targets;
mod web;

pub use slack::SlackLinks;
pub use web::WebConfig;

use std::sync::Arc;

use lambda_http::{Body, Request, Response};

use jit_core::clock::{Clock, Timestamp};
use jit_core::policy::Rules;
use jit_core::store::{ActivityStore, GrantStore};
use jit_core::trust::CheckpointPeriod;
use jit_http::startup::{StartupError, checkpoint_period, parsed, setting};
use jit_http::{Call, Reply, Route, no_such_route, respond, route};

pub use jit_http::{MAX_BODY_BYTES, Problem};

/// Settings read once at start-up.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// The JWT claim that lists the caller's groups (`groups`, `cognito:groups`, ...).
    pub groups_claim: String,
    /// What a ticket must look like, if anything (a regular expression matched in full).
    pub ticket_pattern: Option<regex::Regex>,
    /// How long an idempotency key is remembered, in seconds.
    pub idempotency_ttl_secs: i64,
    /// How the sweeper cuts the trail into checkpointed periods, said in each export.
    pub checkpoint_period: CheckpointPeriod,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        Self {
            groups_claim: "groups".to_owned(),
            ticket_pattern: None,
            idempotency_ttl_secs: 24 * 3600,
            checkpoint_period: CheckpointPeriod::HOURLY,
        }
    }
}

impl IntakeConfig {
    /// Reads `JIT_GROUPS_CLAIM`, `JIT_TICKET_PATTERN` and the checkpoint period; a bad value
    /// is refused.
    pub fn from_env() -> Result<Self, StartupError> {
        let defaults = Self::default();
        Ok(Self {
            groups_claim: setting("JIT_GROUPS_CLAIM").unwrap_or(defaults.groups_claim),
            ticket_pattern: parsed("JIT_TICKET_PATTERN", |text| {
                ticket_pattern(text).map_err(|e| format!("is not a valid pattern: {e}"))
            })?,
            checkpoint_period: checkpoint_period()?,
            ..defaults
        })
    }
}

/// Compiles a ticket pattern so that it must match the whole ticket.
pub fn ticket_pattern(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
}

/// Everything a handler needs, built once per Lambda instance.
pub struct App<S> {
    /// Where grants live.
    pub store: S,
    /// The rules.
    pub rules: Arc<Rules>,
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
    /// Settings.
    pub config: IntakeConfig,
    /// The functions' public keys, exported with the audit trail.
    pub keys: Arc<jit_core::trust::PublicKeys>,
    /// Where the web page signs in.
    pub web: WebConfig,
    /// Links to Slack users and the groups clicks there are decided on, when the targets file
    /// sets up approvals in Slack.
    pub slack: Option<Arc<SlackLinks>>,
}

impl<S: GrantStore + ActivityStore> App<S> {
    /// Handles one API Gateway request. Never fails: every outcome is a response.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        respond(self.dispatch(&request, self.clock.now()).await)
    }

    async fn dispatch(&self, request: &Request, now: Timestamp) -> Reply {
        // The web page's routes, which API Gateway serves without its authorizer.
        let route = route(request);
        match route {
            Some(Route::WebPage) => return Ok(self.web_index()),
            Some(Route::WebFile(file)) => return self.web_file(file),
            _ => {}
        }
        let call = Call::new(request, &self.config.groups_claim, now)?;
        // The caller's groups, for clicks in Slack, are recorded after the response (at most
        // every few minutes each): the call neither waits for them nor shares the table with
        // them. Lambda freezes the sandbox once the response is sent, so there the record is
        // made as the instance's next invocation thaws it. A record that never lands (no next
        // invocation) only sends a click to the web page; one that lands late still says when
        // the call was, and never replaces a later one.
        if let Some(slack) = &self.slack {
            let (slack, caller) = (Arc::clone(slack), call.caller.clone());
            tokio::spawn(async move {
                tokio::time::sleep(slack::AFTER_RESPONSE).await;
                slack.saw(&caller, now).await;
            });
        }
        self.serve(request, route, &call, now).await
    }

    /// Links and handoffs, or 404 where the targets file sets up no Slack.
    fn slack(&self) -> Result<&SlackLinks, Problem> {
        self.slack.as_deref().ok_or_else(|| {
            Problem::new(
                lambda_http::http::StatusCode::NOT_FOUND,
                "not-found",
                "approvals in Slack are not set up in this deployment (the targets file has no `slack`)",
            )
        })
    }

    async fn serve(
        &self,
        request: &Request,
        route: Option<Route<'_>>,
        call: &Call<'_>,
        now: Timestamp,
    ) -> Reply {
        match route {
            Some(Route::CreateRequest) => self.create(call).await,
            Some(Route::CreateBundle) => self.create_bundle(call).await,
            Some(Route::ListRequests) => self.list(call).await,
            Some(Route::GetRequest(id)) => self.get(call, id).await,
            Some(Route::Cancel(id)) => self.cancel(call, id).await,
            Some(Route::GetBundle(id)) => self.get_bundle(call, id).await,
            Some(Route::RequestTrail(id)) => self.grant_trail(call, id).await,
            Some(Route::RequestActivity(id)) => self.activity(call, id).await,
            Some(Route::Targets) => Ok(self.targets(&call.caller, now)),
            Some(Route::Audit) => self.export_audit(call).await,
            Some(Route::Unattributed) => self.unattributed(call).await,
            Some(Route::LinkSlack) => self.slack()?.link(call).await,
            Some(Route::OpenHandoff) => self.slack()?.open_handoff(call).await,
            _ => Err(no_such_route(request)),
        }
    }
}
