//! The STS port and its adapter: assume a target role for one grant.

use std::future::Future;

use aws_sdk_sts::Client;
use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sts::types::Tag;

use jit_core::clock::Timestamp;

/// What to ask STS for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRequest {
    /// The target role.
    pub role_arn: String,
    /// The session name (user and grant id).
    pub session_name: String,
    /// The person, carried by the session through role chaining.
    pub source_identity: String,
    /// Session tags (key, value); all of them transitive.
    pub tags: Vec<(String, String)>,
    /// The scope-down policy, if the target has one.
    pub policy: Option<String>,
    /// How long the session lasts.
    pub duration_secs: i32,
}

/// Temporary credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionCredentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret.
    pub secret_access_key: String,
    /// The session token.
    pub session_token: String,
    /// When they stop working.
    pub expiration: Timestamp,
}

/// Why STS gave no credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// The target role does not trust the issuer (or lacks the permissions it needs).
    #[error("{0}")]
    AccessDenied(String),
    /// STS refused for another reason that retrying will not fix.
    #[error("STS refused: {0}")]
    Refused(String),
    /// STS could not be reached or kept throttling after retries.
    #[error("STS is unavailable: {0}")]
    Unavailable(String),
}

/// Assumes target roles.
pub trait SessionBroker: Send + Sync {
    /// One session for `request`.
    fn assume(
        &self,
        request: &SessionRequest,
    ) -> impl Future<Output = Result<SessionCredentials, BrokerError>> + Send;
}

/// The real STS, through the SDK (whose standard retries handle throttling with back-off).
#[derive(Debug, Clone)]
pub struct StsBroker {
    client: Client,
}

impl StsBroker {
    /// A broker over `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn access_denied_help(role: &str, detail: &str) -> String {
    format!(
        "STS refused to assume `{role}` ({detail}). The role's trust policy must allow this \
         function's role the actions sts:AssumeRole, sts:TagSession and sts:SetSourceIdentity, \
         and this function's role must be allowed them on the target role"
    )
}

/// What an STS error answer means for the caller: the trust policy to fix, a passing outage
/// (throttling, STS's own faults, any 5xx: retrying later helps), or a refusal that retrying
/// will not change.
fn classify(status: u16, code: &str, message: &str, role: &str) -> BrokerError {
    match code {
        "AccessDenied" | "AccessDeniedException" => {
            BrokerError::AccessDenied(access_denied_help(role, message))
        }
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "InternalFailure"
        | "InternalError"
        | "InternalServerError" => BrokerError::Unavailable(format!("{code}: {message}")),
        _ if status >= 500 => BrokerError::Unavailable(format!("{status} {code}: {message}")),
        _ => BrokerError::Refused(format!("{code}: {message}")),
    }
}

impl SessionBroker for StsBroker {
    async fn assume(&self, request: &SessionRequest) -> Result<SessionCredentials, BrokerError> {
        let mut call = self
            .client
            .assume_role()
            .role_arn(&request.role_arn)
            .role_session_name(&request.session_name)
            .source_identity(&request.source_identity)
            .duration_seconds(request.duration_secs)
            .set_policy(request.policy.clone());
        for (key, value) in &request.tags {
            let tag = Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|e| BrokerError::Refused(e.to_string()))?;
            call = call.tags(tag).transitive_tag_keys(key);
        }
        let out = match call.send().await {
            Ok(out) => out,
            Err(SdkError::ServiceError(e)) => {
                let status = e.raw().status().as_u16();
                let err = e.into_err();
                let code = err.code().unwrap_or("").to_owned();
                let message = err.message().unwrap_or("").to_owned();
                return Err(classify(status, &code, &message, &request.role_arn));
            }
            Err(e) => return Err(BrokerError::Unavailable(DisplayErrorContext(e).to_string())),
        };
        let creds = out
            .credentials
            .ok_or_else(|| BrokerError::Refused("STS answered without credentials".into()))?;
        Ok(SessionCredentials {
            access_key_id: creds.access_key_id,
            secret_access_key: creds.secret_access_key,
            session_token: creds.session_token,
            expiration: Timestamp::from_unix_seconds(creds.expiration.secs()),
        })
    }
}
