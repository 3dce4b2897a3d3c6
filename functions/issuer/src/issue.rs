//! `POST /grants/{id}/credentials` and `POST /grants/{id}/console`.

use lambda_http::http::StatusCode;
use serde::Deserialize;

use jit_api::{ConsoleLink, Credentials};
use jit_core::cases::Cases;
use jit_core::clock::Timestamp;
use jit_core::domain::{Grant, SessionKind};
use jit_core::identity::Caller;
use jit_core::store::GrantStore;
use jit_http::{Call, Problem, Reply, json, optional_body};

use crate::Issuer;
use crate::federation::{SigninFederation, console_destination, login_url};
use crate::naming::{GRANT_TAG, REQUESTER_TAG, role_session_name, source_identity, tag_value};
use crate::sts::{BrokerError, SessionBroker, SessionCredentials, SessionRequest};

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
    /// Checks the grant, asks STS, and records the session: the shared path of both routes.
    async fn session(
        &self,
        id: &str,
        kind: SessionKind,
        caller: &Caller,
        now: Timestamp,
    ) -> Result<(Grant, SessionCredentials, Option<String>), Problem> {
        let cases = Cases::new(&self.store, &self.rules, &self.keys);
        let plan = cases.plan_session(caller, id, kind, now).await?;
        let grant = &plan.grant;
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
            duration_secs: i32::try_from(plan.duration_secs).unwrap_or(i32::MAX),
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
        // Recorded with the grant re-checked: revoked or expired meanwhile means no credentials.
        let issued = cases
            .record_session(caller, plan, kind, credentials.expiration, now)
            .await?;
        tracing::info!(
            grant = %issued.id,
            requester = %issued.requester,
            role = %issued.role_arn,
            session = %request.session_name,
            expires = %credentials.expiration,
            kind = %kind,
            "session issued"
        );
        Ok((issued, credentials, token))
    }

    pub(crate) async fn credentials(&self, call: &Call<'_>, id: &str) -> Reply {
        let _: NoBody = optional_body(call.request)?;
        let (_, creds, _) = self
            .session(id, SessionKind::Cli, &call.caller, call.now)
            .await?;
        Ok(json(
            StatusCode::OK,
            &Credentials {
                version: 1,
                access_key_id: creds.access_key_id,
                secret_access_key: creds.secret_access_key,
                session_token: creds.session_token,
                expiration: creds.expiration.to_rfc3339(),
            },
        ))
    }

    pub(crate) async fn console(&self, call: &Call<'_>, id: &str) -> Reply {
        let body: ConsoleBody = optional_body(call.request)?;
        let destination =
            console_destination(body.destination.as_deref()).map_err(Problem::invalid)?;
        let (grant, creds, token) = self
            .session(id, SessionKind::Console, &call.caller, call.now)
            .await?;
        let token = token.unwrap_or_default();
        let url = login_url(
            self.federation.endpoint(),
            &self.config.signin_issuer,
            &destination,
            &token,
        );
        Ok(json(
            StatusCode::OK,
            &ConsoleLink {
                url: url.to_string(),
                expires_at: creds.expiration.to_rfc3339(),
                grant: grant.id.as_str().to_owned(),
            },
        ))
    }
}
