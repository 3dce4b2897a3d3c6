//! Request intake: the HTTP API behind API Gateway for creating, reading, listing and
//! cancelling requests, and for exporting the audit trail.
//!
//! The caller is whoever API Gateway's JWT authorizer vouched for; nothing in the body, query
//! or headers can change that. Every refusal is an RFC 9457 problem that says what to fix, and
//! no refused request writes anything.

mod audit;
mod requests;

use std::sync::Arc;

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

use jit_core::clock::{Clock, Timestamp};
use jit_core::policy::Rules;
use jit_core::store::GrantStore;
use jit_http::{caller, no_such_route, path_parameter, route_key};

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
}

impl Default for IntakeConfig {
    fn default() -> Self {
        Self {
            groups_claim: "groups".to_owned(),
            ticket_pattern: None,
            idempotency_ttl_secs: 24 * 3600,
        }
    }
}

impl IntakeConfig {
    /// Reads `JIT_GROUPS_CLAIM` and `JIT_TICKET_PATTERN`; a bad pattern is refused.
    pub fn from_env() -> Result<Self, String> {
        let mut config = Self::default();
        if let Ok(claim) = std::env::var("JIT_GROUPS_CLAIM")
            && !claim.is_empty()
        {
            config.groups_claim = claim;
        }
        if let Ok(pattern) = std::env::var("JIT_TICKET_PATTERN")
            && !pattern.is_empty()
        {
            config.ticket_pattern = Some(ticket_pattern(&pattern)?);
        }
        Ok(config)
    }
}

/// Compiles a ticket pattern so that it must match the whole ticket.
pub fn ticket_pattern(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| format!("JIT_TICKET_PATTERN `{pattern}` is not a valid pattern: {e}"))
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
}

/// The routes this function serves.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Create,
    List,
    Get(String),
    Cancel(String),
    Audit,
}

/// Works out the route from API Gateway's matched route key and path parameters, or, when
/// those are absent, from the method and path.
fn route(request: &Request) -> Option<Route> {
    let id = || path_parameter(request, "id").map(str::to_owned);
    if let Some(key) = route_key(request).filter(|k| *k != "$default") {
        return match key {
            "POST /requests" => Some(Route::Create),
            "GET /requests" => Some(Route::List),
            "GET /requests/{id}" => id().map(Route::Get),
            "POST /requests/{id}/cancel" => id().map(Route::Cancel),
            "GET /audit" => Some(Route::Audit),
            _ => None,
        };
    }
    let segments: Vec<&str> = request
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match (request.method(), segments.as_slice()) {
        (&Method::POST, ["requests"]) => Some(Route::Create),
        (&Method::GET, ["requests"]) => Some(Route::List),
        (&Method::GET, ["requests", id]) => Some(Route::Get((*id).to_owned())),
        (&Method::POST, ["requests", id, "cancel"]) => Some(Route::Cancel((*id).to_owned())),
        (&Method::GET, ["audit"]) => Some(Route::Audit),
        _ => None,
    }
}

impl<S: GrantStore> App<S> {
    /// Handles one API Gateway request. Never fails: every outcome is a response.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let now = self.clock.now();
        match self.dispatch(&request, now).await {
            Ok(response) => response,
            Err(problem) => {
                if problem.status.is_server_error() {
                    tracing::warn!(status = %problem.status, detail = %problem.detail, "request failed");
                }
                problem.into_response()
            }
        }
    }

    async fn dispatch(&self, request: &Request, now: Timestamp) -> Result<Response<Body>, Problem> {
        let caller = caller(request, &self.config.groups_claim)?;
        match route(request) {
            Some(Route::Create) => self.create(request, &caller, now).await,
            Some(Route::List) => self.list(request, &caller, now).await,
            Some(Route::Get(id)) => self.get(&id, &caller, now).await,
            Some(Route::Cancel(id)) => self.cancel(request, &id, &caller, now).await,
            Some(Route::Audit) => self.export_audit(request, &caller, now).await,
            None => Err(no_such_route(request)),
        }
    }
}
