//! `POST /grants/{id}/revoke` (and `POST /bundles/{id}/revoke`, every item of a request of
//! several targets): end a grant early and cut its live sessions.

use lambda_http::http::StatusCode;
use serde::{Deserialize, Serialize};

use jit_api::{BundleItemOutcome, BundleOutcome, GrantView, LiveSessions, Revoked};
use jit_core::activity::GuardrailHandover;
use jit_core::cases::{Cases, GuardrailRevocation, ItemOutcome};
use jit_core::clock::Timestamp;
use jit_core::domain::{Change, Reason};
use jit_core::store::{ActivityStore, GrantStore};
use jit_core::trust::{KeyRing, PublicKeys};
use jit_http::{Call, Problem, Reply, body_text, json, parse_body};

use crate::iam::RolePolicies;
use crate::{SweepError, Sweeper};

/// The sweeper holds no public keys: revocation acts on what the table holds and cuts
/// sessions up to the latest expiry the records state, so it verifies nothing. A use case that
/// does verify would refuse with no keys to verify against (it fails closed).
pub(crate) static NO_KEYS: std::sync::LazyLock<PublicKeys> =
    std::sync::LazyLock::new(|| KeyRing::new([]).into());

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    reason: String,
}

impl<S: GrantStore, P: RolePolicies> Sweeper<S, P> {
    /// Revokes one grant: REVOKED, its audit record and its ledger entry in one transaction
    /// (issuance stops at once), then the role's revocation policy is applied. If IAM fails,
    /// the revocation stands and the next sweep applies the policy.
    pub(crate) async fn revoke(&self, call: &Call<'_>, id: &str) -> Reply {
        let body: RevokeBody = parse_body(body_text(call.request)?)?;
        let reason = Reason::parse(body.reason).map_err(|e| Problem::invalid(e.to_string()))?;
        let cases = Cases::new(&self.store, &self.rules, &NO_KEYS);
        let change = cases.revoke(&call.caller, id, reason, call.now).await?;
        let grant = change.grant();
        tracing::warn!(grant = %grant.id, by = %call.caller.user, target = %grant.target, "grant revoked");
        let sessions = self.cut_sessions(&change, call.now).await;
        let body = Revoked {
            grant: GrantView::from(grant),
            live_sessions: sessions,
        };
        Ok(json(StatusCode::OK, &body))
    }

    /// `POST /bundles/{id}/revoke`: every active item of a request of several targets the
    /// caller may revoke, each revoked and its live sessions cut as one grant's would be.
    pub(crate) async fn revoke_bundle(&self, call: &Call<'_>, id: &str) -> Reply {
        let body: RevokeBody = parse_body(body_text(call.request)?)?;
        let reason = Reason::parse(body.reason).map_err(|e| Problem::invalid(e.to_string()))?;
        let cases = Cases::new(&self.store, &self.rules, &NO_KEYS);
        let outcomes = cases
            .revoke_bundle(&call.caller, id, &reason, call.now)
            .await?;
        let mut items = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            items.push(match outcome {
                ItemOutcome::Done(change) => {
                    let grant = change.grant();
                    tracing::warn!(grant = %grant.id, bundle = %id, by = %call.caller.user, target = %grant.target, "grant revoked");
                    let sessions = self.cut_sessions(&change, call.now).await;
                    BundleItemOutcome::done(grant, "revoked", Some(sessions))
                }
                ItemOutcome::Skipped(grant, why) => BundleItemOutcome::skipped(&grant, why),
                ItemOutcome::Refused(grant, refusal) => BundleItemOutcome::refused(&grant, &refusal),
            });
        }
        Ok(json(
            StatusCode::OK,
            &BundleOutcome {
                bundle: id.to_owned(),
                items,
            },
        ))
    }

    /// Applies the role's revocation policy after `change` revoked a grant. The role is the
    /// one recorded on the grant, whatever the targets file says now; "cut" only once a
    /// policy that denies this grant is in place and recorded as current.
    async fn cut_sessions(&self, change: &Change, now: Timestamp) -> LiveSessions {
        let grant = change.grant();
        match change.revocation() {
            None => LiveSessions::NoneLive,
            Some(entry) => match self.reconcile(&entry.target_role(), now).await {
                Ok(outcome) if outcome.covered.contains(&grant.id) => LiveSessions::Cut,
                Ok(_) => LiveSessions::Pending,
                Err(e) => {
                    tracing::error!(grant = %grant.id, error = %e, "revocation policy not applied; the next sweep retries");
                    LiveSessions::Pending
                }
            },
        }
    }
}

impl<S: GrantStore + ActivityStore, P: RolePolicies> Sweeper<S, P> {
    /// A revoking guardrail fired on an event of a grant (the activity function's
    /// hand-over): the event is read back and judged again by the sweeper's own rules, and
    /// only then is the grant revoked, as the sweeper, and its sessions cut. A failure fails
    /// the invocation, so the activity function fails its event and EventBridge delivers it
    /// again.
    pub async fn guardrail_revoke(
        &self,
        handover: &GuardrailHandover,
    ) -> Result<GuardrailReport, SweepError> {
        let now = self.clock.now();
        let cases = Cases::new(&self.store, &self.rules, &NO_KEYS);
        let outcome = cases
            .revoke_for_guardrail(
                &handover.grant,
                handover.event_time,
                &handover.event_id,
                now,
            )
            .await
            .map_err(|e| SweepError::Guardrail(e.to_string()))?;
        let report = match outcome {
            GuardrailRevocation::Revoked { change, guardrail } => {
                tracing::warn!(grant = %handover.grant, %guardrail, event = %handover.event_id, "grant revoked by a guardrail");
                let live_sessions = self.cut_sessions(&change, now).await;
                GuardrailReport {
                    outcome: "revoked",
                    guardrail: Some(guardrail),
                    live_sessions: Some(live_sessions),
                }
            }
            GuardrailRevocation::NotFired => {
                tracing::warn!(grant = %handover.grant, guardrail = %handover.guardrail, event = %handover.event_id, "judged again, the event fires no revoking guardrail; nothing done");
                GuardrailReport::nothing("not-fired")
            }
            GuardrailRevocation::NotActive(state) => {
                tracing::info!(grant = %handover.grant, state = state.as_str(), "the grant is not active; nothing to revoke");
                GuardrailReport::nothing("not-active")
            }
            GuardrailRevocation::NoSuchEvent => {
                tracing::error!(grant = %handover.grant, event = %handover.event_id, "the hand-over names an event the grant does not hold; nothing done");
                GuardrailReport::nothing("no-such-event")
            }
        };
        Ok(report)
    }
}

/// What the sweeper did with a guardrail's hand-over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuardrailReport {
    /// `revoked`, `not-fired` (judged again, nothing fires), `not-active` or `no-such-event`.
    pub outcome: &'static str,
    /// The guardrail that revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guardrail: Option<String>,
    /// Whether the live sessions are cut, when revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_sessions: Option<LiveSessions>,
}

impl GuardrailReport {
    fn nothing(outcome: &'static str) -> Self {
        Self {
            outcome,
            guardrail: None,
            live_sessions: None,
        }
    }
}
