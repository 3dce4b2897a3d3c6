//! Credential issuance: short-lived STS sessions for active grants, as `credential_process`
//! JSON or as a console sign-in link.
//!
//! No credentials leave without an audit record: after STS answers, one transaction re-checks
//! that the grant is still active and unexpired, raises its `sessions_valid_until` and appends
//! the record. If that fails, the credentials are dropped and the caller gets 409.

mod federation;
mod issue;
mod naming;
mod sts;

use std::sync::Arc;

use lambda_http::{Body, Request, Response};

use jit_core::clock::{Clock, Timestamp};
use jit_core::policy::Rules;
use jit_core::store::GrantStore;
use jit_http::startup::setting;
use jit_http::{Call, Reply, Route, no_such_route, respond, route};

pub use federation::{
    AWS_FEDERATION_ENDPOINT, DEFAULT_DESTINATION, FederationError, HttpFederation,
    SigninFederation, console_destination, login_url,
};
pub use naming::{GRANT_TAG, REQUESTER_TAG, role_session_name, source_identity, tag_value};
pub use sts::{BrokerError, SessionBroker, SessionCredentials, SessionRequest, StsBroker};

/// Settings read once at start-up.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// The JWT claim that lists the caller's groups.
    pub groups_claim: String,
    /// The `Issuer` the console shows on its sign-out page.
    pub signin_issuer: String,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        Self {
            groups_claim: "groups".to_owned(),
            signin_issuer: "jit-access".to_owned(),
        }
    }
}

impl IssuerConfig {
    /// Reads `JIT_GROUPS_CLAIM` and `JIT_SIGNIN_ISSUER`.
    pub fn from_env() -> Self {
        let defaults = Self::default();
        Self {
            groups_claim: setting("JIT_GROUPS_CLAIM").unwrap_or(defaults.groups_claim),
            signin_issuer: setting("JIT_SIGNIN_ISSUER").unwrap_or(defaults.signin_issuer),
        }
    }
}

/// Everything the issuer needs, built once per Lambda instance.
pub struct Issuer<S, B, F> {
    /// Where grants live.
    pub store: S,
    /// The rules (for targets and visibility).
    pub rules: Arc<Rules>,
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
    /// STS.
    pub broker: B,
    /// The console federation endpoint.
    pub federation: F,
    /// Settings.
    pub config: IssuerConfig,
    /// The functions' public keys: a grant's evidence must verify under them.
    pub keys: Arc<jit_core::trust::PublicKeys>,
}

impl<S: GrantStore, B: SessionBroker, F: SigninFederation> Issuer<S, B, F> {
    /// Handles one API Gateway request. Never fails: every outcome is a response.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        respond(self.dispatch(&request, self.clock.now()).await)
    }

    async fn dispatch(&self, request: &Request, now: Timestamp) -> Reply {
        let call = Call::new(request, &self.config.groups_claim, now)?;
        match route(request) {
            Some(Route::Credentials(id)) => self.credentials(&call, id).await,
            Some(Route::Console(id)) => self.console(&call, id).await,
            _ => Err(no_such_route(request)),
        }
    }
}
