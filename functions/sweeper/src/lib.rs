//! Expiry sweeps and early revocation that reaches live sessions.
//!
//! STS sessions cannot be recalled, so every session carries its grant id as a tag, and each
//! target role carries an inline policy, derived from the revocation ledger, that denies every
//! action to the sessions of revoked (or expired, still-live) grants.

mod archive;
mod iam;
mod reconcile;
mod revoke;
mod sweep;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

use jit_core::clock::Clock;
use jit_core::policy::Rules;
use jit_core::revocation::INLINE_POLICY_LIMIT;
use jit_core::store::{ActivityStore, GrantStore};
use jit_core::trust::CheckpointPeriod;
use jit_http::startup::{StartupError, checkpoint_period, parsed, setting};
use jit_http::{Call, Route, no_such_route, respond, route};

pub use archive::{AuditBucket, BucketSettings, s3_client};
pub use iam::{IamPolicies, PolicyError, RolePolicies, iam_as, role_name};
pub use reconcile::{ReconcileError, RoleOutcome};
pub use revoke::GuardrailReport;
pub use sweep::SweepReport;

/// Settings read once at start-up.
#[derive(Debug, Clone)]
pub struct SweeperConfig {
    /// The JWT claim that lists the caller's groups.
    pub groups_claim: String,
    /// Characters the revocation policy may use of a role's inline-policy allowance.
    pub policy_budget: usize,
    /// Due items settled at once.
    pub concurrency: usize,
    /// Due items read per page.
    pub page_size: u32,
    /// How long before the Lambda deadline the sweep stops taking new work.
    pub deadline_margin: Duration,
    /// How much of the invocation settling due items leaves for reconciling roles.
    pub role_reserve: Duration,
    /// How the audit trail is cut into checkpointed periods.
    pub checkpoint_period: CheckpointPeriod,
    /// How long after a grant ends its activity is first covered (CloudTrail's delay).
    pub activity_settle_secs: i64,
    /// How long after a grant ends its activity is covered again, for events delivered late.
    pub activity_recheck_secs: i64,
    /// How long before a covering record an event must have been stored to be in it.
    pub activity_lag_secs: i64,
    /// How often a grant's activity is covered while it is still active (a long grant gets a
    /// signed checkpoint of what it did so far, not only one at its end).
    pub activity_checkpoint_secs: i64,
}

impl Default for SweeperConfig {
    fn default() -> Self {
        Self {
            groups_claim: "groups".to_owned(),
            policy_budget: INLINE_POLICY_LIMIT,
            concurrency: 8,
            page_size: 100,
            deadline_margin: Duration::from_secs(5),
            role_reserve: Duration::from_secs(15),
            checkpoint_period: CheckpointPeriod::HOURLY,
            activity_settle_secs: 900,
            activity_recheck_secs: 7200,
            activity_lag_secs: jit_core::cases::COVER_LAG_SECS,
            activity_checkpoint_secs: 3600,
        }
    }
}

impl SweeperConfig {
    /// Reads `JIT_GROUPS_CLAIM`, the checkpoint period and `JIT_REVOCATION_POLICY_BUDGET` (for
    /// roles that carry other inline policies: the limit less what those use).
    pub fn from_env() -> Result<Self, StartupError> {
        let defaults = Self::default();
        let budget = parsed("JIT_REVOCATION_POLICY_BUDGET", |text| {
            text.parse()
                .ok()
                .filter(|b| (200..=INLINE_POLICY_LIMIT).contains(b))
                .ok_or_else(|| format!("must be 200 to {INLINE_POLICY_LIMIT}"))
        })?;
        let checkpoint_period = checkpoint_period()?;
        let secs = |name: &'static str, min: i64| {
            parsed(name, move |text| {
                text.parse::<i64>()
                    .ok()
                    .filter(|n| (min..=86_400).contains(n))
                    .ok_or_else(|| format!("must be {min} to 86400 seconds"))
            })
        };
        let settle = secs("JIT_ACTIVITY_SETTLE_SECS", 1)?.unwrap_or(defaults.activity_settle_secs);
        let recheck =
            secs("JIT_ACTIVITY_RECHECK_SECS", 1)?.unwrap_or(defaults.activity_recheck_secs);
        let lag = secs("JIT_ACTIVITY_LAG_SECS", 0)?.unwrap_or(defaults.activity_lag_secs);
        let checkpoint =
            secs("JIT_ACTIVITY_CHECKPOINT_SECS", 60)?.unwrap_or(defaults.activity_checkpoint_secs);
        if recheck <= settle || lag >= settle {
            return Err(StartupError::Invalid {
                name: "JIT_ACTIVITY_RECHECK_SECS",
                value: recheck.to_string(),
                why: format!(
                    "must be longer than JIT_ACTIVITY_SETTLE_SECS ({settle}), which must be longer than JIT_ACTIVITY_LAG_SECS ({lag})"
                ),
            });
        }
        Ok(Self {
            groups_claim: setting("JIT_GROUPS_CLAIM").unwrap_or(defaults.groups_claim),
            policy_budget: budget.unwrap_or(defaults.policy_budget),
            checkpoint_period,
            activity_settle_secs: settle,
            activity_recheck_secs: recheck,
            activity_lag_secs: lag,
            activity_checkpoint_secs: checkpoint,
            ..defaults
        })
    }
}

/// What Lambda delivers to the sweeper: the schedule's EventBridge event, or a revoke request
/// from the HTTP API. Anything else does not deserialize, so the runtime refuses it before the
/// handler runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SweeperEvent {
    /// A revoking guardrail fired: the activity function's hand-over (first, since it is the
    /// narrowest shape: one field, nothing else).
    Guardrail(GuardrailEvent),
    /// The EventBridge rule's scheduled event.
    Schedule(Box<aws_lambda_events::event::cloudwatch_events::CloudWatchEvent>),
    /// `POST /grants/{id}/revoke`.
    Http(Box<jit_http::ApiGatewayV2httpRequest>),
}

/// `{"guardrail_revoke": {...}}`, as the activity function invokes the sweeper.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailEvent {
    /// Which event of which grant.
    pub guardrail_revoke: jit_core::activity::GuardrailHandover,
}

/// What the sweeper answers each source.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum SweeperResponse {
    /// What the sweep did.
    Report(SweepReport),
    /// The HTTP response, payload format 2.0.
    Http(Box<jit_http::ApiGatewayV2httpResponse>),
    /// What became of a guardrail's hand-over.
    Guardrail(GuardrailReport),
}

/// Why a scheduled sweep fails its invocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SweepError {
    /// Some roles were left unreconciled, or something failed; the next sweep retries it all.
    #[error(
        "sweep incomplete: {roles_pending} role(s) left unreconciled, {} failure(s): {}",
        failures.len(),
        failures.join("; ")
    )]
    Incomplete {
        /// Roles whose revocation policy may not be in force.
        roles_pending: u32,
        /// What failed.
        failures: Vec<String>,
    },
    /// A guardrail's hand-over could not be acted on (the table unreachable, the grant kept
    /// changing); the activity function fails its event and it is delivered again.
    #[error("guardrail revocation not done: {0}")]
    Guardrail(String),
}

impl From<SweepError> for lambda_runtime::Diagnostic {
    fn from(e: SweepError) -> Self {
        let error_type = match &e {
            SweepError::Incomplete { .. } => "SweepIncomplete",
            SweepError::Guardrail(_) => "GuardrailRevocationFailed",
        };
        Self {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// Everything the sweeper needs, built once per Lambda instance.
pub struct Sweeper<S, P> {
    /// Where grants and the ledger live.
    pub store: S,
    /// The rules (targets, who may revoke).
    pub rules: Arc<Rules>,
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
    /// IAM, for the revocation policies.
    pub policies: P,
    /// Settings.
    pub config: SweeperConfig,
    /// Where closed periods and their checkpoints are archived, if the deployment has a bucket.
    pub archive: Option<AuditBucket>,
}

/// The sweep's `RolesPending` metric in CloudWatch Embedded Metric Format: how many roles the
/// sweep left unreconciled (0 when all is in force). The template alarms on it.
pub fn roles_pending_metric(count: u32, at: jit_core::clock::Timestamp) -> String {
    jit_http::metric::count("RolesPending", count, at, &[], &[])
}

impl<S: GrantStore + ActivityStore, P: RolePolicies> Sweeper<S, P> {
    /// Handles whatever Lambda delivered: the EventBridge schedule or an API Gateway request.
    /// `deadline` is when Lambda will stop this invocation. A sweep that left any role
    /// unreconciled, or failed at anything, fails the invocation, so Lambda's error metric and
    /// the template's alarm fire; the next sweep retries all of it.
    pub async fn handle_event(
        &self,
        event: SweeperEvent,
        deadline: Instant,
    ) -> Result<SweeperResponse, SweepError> {
        match event {
            SweeperEvent::Guardrail(event) => self
                .guardrail_revoke(&event.guardrail_revoke)
                .await
                .map(SweeperResponse::Guardrail),
            SweeperEvent::Schedule(_) => {
                let report = self.sweep(deadline).await;
                println!(
                    "{}",
                    roles_pending_metric(report.roles_pending, self.clock.now())
                );
                if report.roles_pending > 0 || !report.failures.is_empty() {
                    tracing::error!(?report, "sweep incomplete");
                    return Err(SweepError::Incomplete {
                        roles_pending: report.roles_pending,
                        failures: report.failures,
                    });
                }
                tracing::info!(?report, "sweep done");
                Ok(SweeperResponse::Report(report))
            }
            SweeperEvent::Http(request) => {
                let response = self.handle_http(jit_http::into_request(*request)).await;
                Ok(SweeperResponse::Http(Box::new(
                    jit_http::into_response_event(&response),
                )))
            }
        }
    }
}

impl<S: GrantStore, P: RolePolicies> Sweeper<S, P> {
    /// Handles one API Gateway request. Never fails: every outcome is a response.
    pub async fn handle_http(&self, request: Request) -> Response<Body> {
        let now = self.clock.now();
        let outcome = async {
            let call = Call::new(&request, &self.config.groups_claim, now)?;
            match route(&request) {
                Some(Route::Revoke(id)) => self.revoke(&call, id).await,
                Some(Route::RevokeBundle(id)) => self.revoke_bundle(&call, id).await,
                _ => Err(no_such_route(&request)),
            }
        };
        respond(outcome.await)
    }
}
