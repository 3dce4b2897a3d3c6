//! `POST /grants/{id}/credentials` and `POST /grants/{id}/console`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;

use jit_core::clock::Timestamp;
use jit_core::domain::{Actor, Command, Grant, GrantId, SessionKind};
use jit_core::identity::Caller;
use jit_core::store::GrantStore;
use jit_core::transition::{Retry, transition_from};
use jit_core::trust::check_grant;
use jit_http::{
    Problem, evidence_refused, hidden_or_forbidden, json, optional_body, transition_problem,
};

use crate::federation::{SigninFederation, console_destination, login_url};
use crate::naming::{GRANT_TAG, REQUESTER_TAG, role_session_name, source_identity, tag_value};
use crate::sts::{BrokerError, SessionBroker, SessionCredentials, SessionRequest};
use crate::{Issuer, MAX_CHAINED_SESSION_SECS, MIN_SESSION_SECS};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoBody {}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsoleBody {
    #[serde(default)]
    destination: Option<String>,
}

fn broker_problem(e: BrokerError) -> Problem {
    match e {
        BrokerError::AccessDenied(help) => {
            tracing::error!(detail = %help, "STS access denied: fix the target role's trust policy");
            Problem::new(StatusCode::BAD_GATEWAY, "sts-access-denied", help)
        }
        refused @ BrokerError::Refused(_) => {
            tracing::error!(error = %refused, "STS refused the session");
            Problem::new(
                StatusCode::BAD_GATEWAY,
                "sts-refused",
                format!("{refused}; nothing was issued"),
            )
        }
        BrokerError::Unavailable(why) => Problem::unavailable(format!(
            "STS is unavailable ({why}); nothing was issued, try again"
        )),
    }
}

impl<S: GrantStore, B: SessionBroker, F: SigninFederation> Issuer<S, B, F> {
    /// The grant, if `caller` may use it: its requester only. Others who may see it are told
    /// so; everyone else is told it does not exist.
    async fn usable_grant(
        &self,
        id: &str,
        caller: &Caller,
        now: Timestamp,
    ) -> Result<Grant, Problem> {
        let not_found = || Problem::not_found("grant");
        let id = GrantId::parse(id).map_err(|_| not_found())?;
        // The grant and its whole chain in one query: what is about to be acted on is checked
        // against signed evidence, not taken on the word of whoever wrote the item.
        let (grant, records) = self.store.evidence(&id).await?.ok_or_else(not_found)?;
        if grant.requester != caller.user {
            return Err(hidden_or_forbidden(
                &self.rules,
                &grant,
                caller,
                now,
                "grant",
                "only the requester may use a grant",
            ));
        }
        if let Err(broken) = check_grant(&grant, &records, &self.keys) {
            return Err(evidence_refused(
                &grant,
                &broken,
                now,
                "no credentials were issued",
            ));
        }
        Ok(grant)
    }

    /// Refuses a grant whose target changed since it was asked for: removed, pointed at
    /// another role, or given another session policy. The grant was approved for what it
    /// recorded; using it under changed rules needs a new request.
    fn still_bound(&self, grant: &Grant) -> Result<(), Problem> {
        let changed = |why: String| {
            tracing::warn!(grant = %grant.id, target = %grant.target, why = %why, "grant refused: its target changed");
            Problem::new(
                StatusCode::CONFLICT,
                "target-changed",
                format!("{why}; this grant can no longer be used, request access again"),
            )
        };
        let Some(target) = self.rules.target(&grant.target) else {
            return Err(changed(format!(
                "target `{}` is no longer declared",
                grant.target
            )));
        };
        if target.role_arn != grant.role_arn {
            return Err(changed(format!(
                "target `{}` now names role `{}`, not `{}` as when this grant was requested",
                grant.target, target.role_arn, grant.role_arn
            )));
        }
        if target.session_policy != grant.session_policy {
            return Err(changed(format!(
                "target `{}`'s session policy changed since this grant was requested",
                grant.target
            )));
        }
        // What the grant recorded, judged as this deployment is placed now.
        let isolation = self.rules.isolation();
        if let Some(why) = isolation.problem(&grant.role_arn, grant.revoker_role_arn.as_ref()) {
            tracing::error!(grant = %grant.id, target = %grant.target, why = %why, "credentials refused: target not isolated from the broker");
            return Err(Problem::target_not_isolated(format!(
                "target `{}` ({}): {why}; no credentials were issued",
                grant.target, target.location
            )));
        }
        Ok(())
    }

    /// Checks the grant, asks STS, and records the session: the shared path of both routes.
    async fn session(
        &self,
        id: &str,
        kind: SessionKind,
        caller: &Caller,
        now: Timestamp,
    ) -> Result<(Grant, SessionCredentials, Option<String>), Problem> {
        let grant = self.usable_grant(id, caller, now).await?;
        let actor = Actor::User(caller.user.clone());
        let ends_at = grant.ends_at.unwrap_or(now);
        let max = i64::from(grant.max_session_secs).min(MAX_CHAINED_SESSION_SECS);
        let duration = (ends_at.unix_seconds() - now.unix_seconds()).clamp(MIN_SESSION_SECS, max);
        // Refuse before calling STS if the grant cannot take a session now.
        grant.apply(
            Command::IssueSession {
                kind,
                expires_at: now.plus_secs(duration),
            },
            &actor,
            now,
        )?;
        self.still_bound(&grant)?;

        let mut tags = vec![(GRANT_TAG.to_owned(), grant.id.to_string())];
        tags.push((
            REQUESTER_TAG.to_owned(),
            tag_value(grant.requester.as_str()),
        ));
        let request = SessionRequest {
            role_arn: grant.role_arn.to_string(),
            session_name: role_session_name(&grant.requester, &grant.id),
            source_identity: source_identity(&grant.requester),
            tags,
            // The scope recorded with the grant, never the targets file's current one.
            policy: grant.session_policy.clone(),
            duration_secs: i32::try_from(duration).unwrap_or(i32::MAX),
        };
        let credentials = self.broker.assume(&request).await.map_err(broker_problem)?;
        // A console link needs a sign-in token; fetched before anything is recorded, so a
        // federation failure writes nothing.
        let token = match kind {
            SessionKind::Console => Some(
                self.federation
                    .signin_token(&credentials)
                    .await
                    .map_err(|e| {
                        Problem::new(StatusCode::BAD_GATEWAY, "federation-failed", e.to_string())
                    })?,
            ),
            SessionKind::Cli => None,
        };

        // Record it, re-checking the grant: revoked or expired meanwhile means no credentials.
        let change = transition_from(&self.store, grant, &Retry::STANDARD, |current| {
            Ok::<_, Problem>(current.apply(
                Command::IssueSession {
                    kind,
                    expires_at: credentials.expiration,
                },
                &actor,
                now,
            )?)
        })
        .await
        .map_err(|f| transition_problem(f, "grant"))?;
        let issued = change.grant();
        tracing::info!(
            grant = %issued.id,
            requester = %issued.requester,
            role = %issued.role_arn,
            session = %request.session_name,
            expires = %credentials.expiration,
            kind = %kind,
            "session issued"
        );
        Ok((issued.clone(), credentials, token))
    }

    pub(crate) async fn credentials(
        &self,
        request: &Request,
        id: &str,
        caller: &Caller,
        now: Timestamp,
    ) -> Result<Response<Body>, Problem> {
        let _: NoBody = optional_body(request)?;
        let (_, creds, _) = self.session(id, SessionKind::Cli, caller, now).await?;
        Ok(json(
            StatusCode::OK,
            &json!({
                "Version": 1,
                "AccessKeyId": creds.access_key_id,
                "SecretAccessKey": creds.secret_access_key,
                "SessionToken": creds.session_token,
                "Expiration": creds.expiration.to_rfc3339(),
            }),
        ))
    }

    pub(crate) async fn console(
        &self,
        request: &Request,
        id: &str,
        caller: &Caller,
        now: Timestamp,
    ) -> Result<Response<Body>, Problem> {
        let body: ConsoleBody = optional_body(request)?;
        let destination =
            console_destination(body.destination.as_deref()).map_err(Problem::invalid)?;
        let (grant, creds, token) = self.session(id, SessionKind::Console, caller, now).await?;
        let token = token.unwrap_or_default();
        let url = login_url(
            self.federation.endpoint(),
            &self.config.signin_issuer,
            &destination,
            &token,
        );
        Ok(json(
            StatusCode::OK,
            &json!({
                "url": url.as_str(),
                "expires_at": creds.expiration.to_rfc3339(),
                "grant": grant.id.as_str(),
            }),
        ))
    }
}
