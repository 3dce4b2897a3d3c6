//! `POST /grants/{id}/revoke`: end a grant early and cut its live sessions.

use lambda_http::http::StatusCode;
use serde::Deserialize;

use jit_api::{GrantView, LiveSessions, Revoked};
use jit_core::cases::Cases;
use jit_core::domain::Reason;
use jit_core::store::GrantStore;
use jit_core::trust::{KeyRing, PublicKeys};
use jit_http::{Call, Problem, Reply, body_text, json, parse_body};

use crate::Sweeper;
use crate::iam::RolePolicies;

/// The sweeper holds no public keys: revocation acts on what the table holds and cuts
/// sessions up to the latest expiry the records state, so it verifies nothing. A use case that
/// does verify would refuse with no keys to verify against (it fails closed).
static NO_KEYS: std::sync::LazyLock<PublicKeys> =
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
        // The role as recorded on the grant, whatever the targets file says now. "cut"
        // only once a policy that denies this grant is in place and recorded as current.
        let sessions = match change.revocation() {
            None => LiveSessions::NoneLive,
            Some(entry) => match self.reconcile(&entry.target_role(), call.now).await {
                Ok(outcome) if outcome.covered.contains(&grant.id) => LiveSessions::Cut,
                Ok(_) => LiveSessions::Pending,
                Err(e) => {
                    tracing::error!(grant = %grant.id, error = %e, "revocation policy not applied; the next sweep retries");
                    LiveSessions::Pending
                }
            },
        };
        let body = Revoked {
            grant: GrantView::from(grant),
            live_sessions: sessions,
        };
        Ok(json(StatusCode::OK, &body))
    }
}
