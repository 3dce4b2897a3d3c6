//! What each grant did: the CloudTrail events of `/jit/` roles that the target accounts
//! forward to the broker's event bus, attached to the grant whose session made them, kept, and
//! judged by the guardrails as they arrive.
//!
//! The function holds no signing key and writes only activity items (the template limits its
//! table access to the `ACTIVITY#` and `UNATTRIBUTED#` partitions and reads of grants). An
//! alerting guardrail is a log line and a metric; a revoking one is handed to the sweeper,
//! which reads the event back, judges it again and revokes: the one function that revokes.

use std::future::Future;
use std::sync::Arc;

use jit_core::activity::{GuardrailHandover, Refused, TrailEvent};
use jit_core::cases::{ActivityOutcome, record_activity};
use jit_core::clock::Clock;
use jit_core::policy::Rules;
use jit_core::store::{ActivityStore, GrantStore, Recorded};
use serde::Serialize;

pub use handover::{HandoverError, LambdaHandover};

mod handover;

/// Hands a revoking guardrail's event to the sweeper and waits for what it did.
pub trait Handover: Send + Sync {
    /// Asks the sweeper to judge `handover`'s event again and revoke; `Err` when it could not
    /// be asked or did not finish, so the event is failed and delivered again.
    fn revoke(
        &self,
        handover: &GuardrailHandover,
    ) -> impl Future<Output = Result<serde_json::Value, HandoverError>> + Send;
}

/// Everything the activity function needs, built once per Lambda instance.
pub struct ActivityFunction<S, H> {
    /// Grants (read) and activity (written).
    pub store: S,
    /// The guardrails.
    pub rules: Arc<Rules>,
    /// The way to the sweeper.
    pub handover: H,
    /// Where time comes from (metric timestamps).
    pub clock: Arc<dyn Clock>,
}

/// What the function did with one event: what it answers the invocation, and logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handled {
    /// `attached`, `unattributed` or `refused`.
    pub outcome: &'static str,
    /// The grant it was attached to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// `stored`, `already-stored` or `over-cap`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<&'static str>,
    /// Why it is unattributed or refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The alerting guardrails it fired.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<String>,
    /// The revoking guardrails it fired, each handed to the sweeper.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub revokes: Vec<String>,
}

impl Handled {
    fn new(outcome: &'static str) -> Self {
        Self {
            outcome,
            grant: None,
            recorded: None,
            why: None,
            alerts: Vec::new(),
            revokes: Vec::new(),
        }
    }
}

/// Why an event is failed, so EventBridge delivers it again (its retry policy, then the
/// rule's dead-letter queue).
#[derive(Debug, thiserror::Error)]
pub enum ActivityError {
    /// The table could not be read or written.
    #[error("the activity could not be kept: {0}")]
    Store(#[from] jit_core::store::StoreError),
    /// A revoking guardrail fired and the sweeper could not be asked, or failed.
    #[error("guardrail `{guardrail}` fired on grant {grant} and the sweeper did not act: {why}")]
    Handover {
        /// The guardrail.
        guardrail: String,
        /// The grant.
        grant: String,
        /// What failed.
        why: HandoverError,
    },
}

impl From<ActivityError> for lambda_runtime::Diagnostic {
    fn from(e: ActivityError) -> Self {
        let error_type = match &e {
            ActivityError::Store(_) => "ActivityNotKept",
            ActivityError::Handover { .. } => "GuardrailHandoverFailed",
        };
        Self {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

fn recorded_str(recorded: Recorded) -> &'static str {
    match recorded {
        Recorded::Stored => "stored",
        Recorded::AlreadyStored => "already-stored",
        Recorded::OverCap => "over-cap",
    }
}

impl<S: GrantStore + ActivityStore, H: Handover> ActivityFunction<S, H> {
    /// Handles one event as EventBridge delivers it. Whatever its shape, an event that is not
    /// a genuine CloudTrail event of a `/jit/` role is refused with a log line and a metric and
    /// the invocation succeeds: a malformed event never blocks the ones after it. Only a
    /// table that cannot be reached, or a revocation the sweeper did not make, fails it.
    pub async fn handle(&self, event: serde_json::Value) -> Result<Handled, ActivityError> {
        let now = self.clock.now();
        let trail: TrailEvent = match serde_json::from_value(event) {
            Ok(trail) => trail,
            Err(e) => {
                let refused = Refused::Malformed {
                    what: format!("not a CloudTrail event EventBridge forwards: {e}"),
                };
                return Ok(self.refused(&refused, now));
            }
        };
        let outcome = record_activity(&self.store, &self.rules, &trail, now).await?;
        match outcome {
            ActivityOutcome::Refused(refused) => Ok(self.refused(&refused, now)),
            ActivityOutcome::Unattributed { why, recorded } => {
                tracing::error!(why = %why, recorded = recorded_str(recorded), "a /jit/ role was used outside the broker: the event is kept as unattributed");
                println!(
                    "{}",
                    jit_http::metric::count("UnattributedActivity", 1, now, &[], &[])
                );
                let mut handled = Handled::new("unattributed");
                handled.recorded = Some(recorded_str(recorded));
                handled.why = Some(why.to_string());
                Ok(handled)
            }
            ActivityOutcome::Attached {
                grant,
                recorded,
                fired,
            } => {
                // Read once already to be attached: it reads the same again.
                let (event_id, event_time) = trail
                    .read()
                    .map_or_else(|_| (String::new(), now), |(a, _)| (a.event_id, a.time));
                let mut handled = Handled::new("attached");
                handled.grant = Some(grant.to_string());
                handled.recorded = Some(recorded_str(recorded));
                if recorded == Recorded::OverCap {
                    tracing::warn!(grant = %grant, "the grant's activity is past its cap: the event is counted, not kept");
                }
                for error in &fired.errors {
                    tracing::error!(grant = %grant, %error, "a guardrail could not be evaluated");
                }
                for alert in &fired.alerts {
                    tracing::warn!(grant = %grant, guardrail = %alert, event = %event_id, "guardrail alert");
                    println!(
                        "{}",
                        jit_http::metric::count(
                            "GuardrailAlert",
                            1,
                            now,
                            &["Guardrail"],
                            &[
                                ("Guardrail", alert),
                                ("Grant", grant.as_str()),
                                ("EventId", &event_id)
                            ],
                        )
                    );
                }
                if let Some(guardrail) = fired.revokes.first() {
                    let handover = GuardrailHandover {
                        grant: grant.to_string(),
                        event_time,
                        event_id: event_id.clone(),
                        guardrail: guardrail.clone(),
                    };
                    let done = self.handover.revoke(&handover).await.map_err(|why| {
                        ActivityError::Handover {
                            guardrail: guardrail.clone(),
                            grant: grant.to_string(),
                            why,
                        }
                    })?;
                    tracing::warn!(grant = %grant, %guardrail, event = %event_id, sweeper = %done, "guardrail revocation handed to the sweeper");
                    println!(
                        "{}",
                        jit_http::metric::count(
                            "GuardrailRevoke",
                            1,
                            now,
                            &["Guardrail"],
                            &[
                                ("Guardrail", guardrail),
                                ("Grant", grant.as_str()),
                                ("EventId", &event_id)
                            ],
                        )
                    );
                }
                handled.alerts = fired.alerts;
                handled.revokes = fired.revokes;
                Ok(handled)
            }
        }
    }

    /// A refused event: logged as an error (someone sent the bus what CloudTrail did not, or
    /// CloudTrail's shape changed) and counted by reason.
    fn refused(&self, refused: &Refused, now: jit_core::clock::Timestamp) -> Handled {
        let reason = match refused {
            Refused::Forged { .. } => "forged",
            Refused::NotJitRole { .. } => "not-jit-role",
            Refused::Malformed { .. } => "malformed",
        };
        tracing::error!(%refused, reason, "event refused: nothing kept");
        println!(
            "{}",
            jit_http::metric::count(
                "ActivityRefused",
                1,
                now,
                &["Reason"],
                &[("Reason", reason)]
            )
        );
        let mut handled = Handled::new("refused");
        handled.why = Some(refused.to_string());
        handled
    }
}
