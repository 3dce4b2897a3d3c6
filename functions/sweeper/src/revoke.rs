//! `POST /grants/{id}/revoke`: end a grant early and cut its live sessions.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;

use jit_core::audit::{AuditAction, AuditRecord};
use jit_core::clock::Timestamp;
use jit_core::domain::{Actor, Command, GrantId, Reason};
use jit_core::identity::Caller;
use jit_core::policy::{AccessContext, Action};
use jit_core::store::GrantStore;
use jit_core::transition::{Retry, transition_from};
use jit_http::{
    Problem, body_text, hidden_or_forbidden, json, parse_body, transition_problem, views,
};

use crate::Sweeper;
use crate::iam::RolePolicies;

/// The latest session expiry a grant's SESSION_ISSUED records state.
fn latest_session_expiry(records: &[AuditRecord]) -> Option<Timestamp> {
    records
        .iter()
        .filter(|r| r.action == AuditAction::SessionIssued)
        .filter_map(|r| r.detail.get("session_expires_at"))
        .filter_map(|t| Timestamp::parse_rfc3339(t))
        .max()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    reason: String,
}

impl<S: GrantStore, P: RolePolicies> Sweeper<S, P> {
    /// Revokes one grant: REVOKED, its audit record and its ledger entry in one transaction
    /// (issuance stops at once), then the role's revocation policy is applied. If IAM fails,
    /// the revocation stands and the next sweep applies the policy.
    pub(crate) async fn revoke(
        &self,
        request: &Request,
        id: &str,
        caller: &Caller,
        now: Timestamp,
    ) -> Result<Response<Body>, Problem> {
        let body: RevokeBody = parse_body(body_text(request)?)?;
        let reason = Reason::parse(body.reason).map_err(|e| Problem::invalid(e.to_string()))?;
        let id = GrantId::parse(id).map_err(|_| Problem::not_found("grant"))?;
        let actor = Actor::User(caller.user.clone());
        // The grant with its chain, in the one read a revoke makes. Its sessions are cut up to
        // the latest expiry its SESSION_ISSUED records state, not only what the grant item
        // says: an item edited to claim earlier expiries cannot shorten the revocation.
        let (grant, records) = self
            .store
            .evidence(&id)
            .await?
            .ok_or_else(|| Problem::not_found("grant"))?;
        let recorded = latest_session_expiry(&records);
        let change = transition_from(&self.store, grant, &Retry::STANDARD, |grant| {
            let mut grant = grant.clone();
            grant.sessions_valid_until = grant.sessions_valid_until.max(recorded);
            let grant = &grant;
            let permitted = grant.requester == caller.user
                || self
                    .rules
                    .decide(
                        caller,
                        Action::Revoke,
                        &grant.target,
                        &AccessContext::of_grant(grant, now),
                    )
                    .allowed;
            if !permitted {
                return Err(hidden_or_forbidden(
                    &self.rules,
                    grant,
                    caller,
                    now,
                    "grant",
                    format!(
                        "no policy permits you to Revoke on target `{}`",
                        grant.target
                    ),
                ));
            }
            Ok(grant.apply(
                Command::Revoke {
                    reason: reason.clone(),
                },
                &actor,
                now,
            )?)
        })
        .await
        .map_err(|f| transition_problem(f, "grant"))?;
        let grant = change.grant();
        tracing::warn!(grant = %grant.id, by = %caller.user, target = %grant.target, "grant revoked");
        // The role as recorded on the grant, whatever the targets file says now. "cut"
        // only once a policy that denies this grant is in place and recorded as current.
        let sessions = match change.revocation() {
            None => "none-live",
            Some(entry) => match self.reconcile(&entry.target_role(), now).await {
                Ok(outcome) if outcome.covered.contains(&grant.id) => "cut",
                Ok(_) => "pending",
                Err(e) => {
                    tracing::error!(grant = %grant.id, error = %e, "revocation policy not applied; the next sweep retries");
                    "pending"
                }
            },
        };
        let mut body = views::grant(grant);
        if let Some(fields) = body.as_object_mut() {
            fields.insert("live_sessions".to_owned(), json!(sessions));
        }
        Ok(json(StatusCode::OK, &body))
    }
}
