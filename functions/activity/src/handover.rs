//! The hand-over to the sweeper: a synchronous `lambda:Invoke` of the one function the
//! activity function may invoke (the template grants exactly that), so a revocation that did
//! not happen fails the event and EventBridge delivers it again.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use jit_core::activity::GuardrailHandover;
use serde_json::json;

use crate::Handover;

/// Why the sweeper was not asked, or did not act.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    /// Lambda refused or could not be reached.
    #[error("invoking the sweeper failed: {0}")]
    Invoke(String),
    /// The sweeper ran and failed (the table unreachable, the grant kept changing).
    #[error("the sweeper failed ({kind}): {message}")]
    Failed {
        /// Lambda's `FunctionError` (`Unhandled`, or the sweeper's error type).
        kind: String,
        /// What the sweeper said.
        message: String,
    },
}

/// The sweeper, through Lambda.
#[derive(Debug, Clone)]
pub struct LambdaHandover {
    client: aws_sdk_lambda::Client,
    sweeper: String,
}

impl LambdaHandover {
    /// Invokes `sweeper` (a function name or ARN) with `client`.
    pub fn new(client: aws_sdk_lambda::Client, sweeper: impl Into<String>) -> Self {
        Self {
            client,
            sweeper: sweeper.into(),
        }
    }
}

impl Handover for LambdaHandover {
    async fn revoke(
        &self,
        handover: &GuardrailHandover,
    ) -> Result<serde_json::Value, HandoverError> {
        let payload = json!({ "guardrail_revoke": handover }).to_string();
        let out = self
            .client
            .invoke()
            .function_name(&self.sweeper)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| {
                HandoverError::Invoke(aws_sdk_lambda::error::DisplayErrorContext(e).to_string())
            })?;
        let body = out
            .payload
            .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())
            .unwrap_or_default();
        if let Some(kind) = out.function_error {
            return Err(HandoverError::Failed {
                kind,
                message: body,
            });
        }
        Ok(serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)))
    }
}
