//! Approval: decides new requests by the rules as they arrive on the table's stream, takes
//! human reviews over the API, and records the reviews break-glass activations owe.
//!
//! One Lambda, two event sources: DynamoDB stream batches and API Gateway requests. The rules
//! decide on the requester's groups as the identity provider vouched for them at request time.

mod notify;
mod reviews;
mod stream;

use std::sync::Arc;

use jit_core::clock::Clock;
use jit_core::policy::Rules;
use jit_core::store::GrantStore;
use serde_json::Value;

pub use notify::{LogNotifier, Notifier};
pub use stream::Outcome;

/// Settings read once at start-up.
#[derive(Debug, Clone)]
pub struct ApproverConfig {
    /// The JWT claim that lists the caller's groups.
    pub groups_claim: String,
}

impl Default for ApproverConfig {
    fn default() -> Self {
        Self {
            groups_claim: "groups".to_owned(),
        }
    }
}

impl ApproverConfig {
    /// Reads `JIT_GROUPS_CLAIM`.
    pub fn from_env() -> Self {
        let mut config = Self::default();
        if let Ok(claim) = std::env::var("JIT_GROUPS_CLAIM")
            && !claim.is_empty()
        {
            config.groups_claim = claim;
        }
        config
    }
}

/// Everything the approver needs, built once per Lambda instance.
pub struct Approver<S, N> {
    /// Where grants live.
    pub store: S,
    /// The rules.
    pub rules: Arc<Rules>,
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
    /// Who hears about requests waiting for review and break-glass activations.
    pub notifier: N,
    /// Settings.
    pub config: ApproverConfig,
}

impl<S: GrantStore, N: Notifier> Approver<S, N> {
    /// Handles whatever Lambda delivered: a stream batch or an API Gateway request. Returns
    /// the JSON Lambda expects back for that source.
    pub async fn handle_event(&self, event: Value) -> Result<Value, String> {
        if event.get("Records").is_some() {
            let batch: aws_lambda_events::event::dynamodb::Event = serde_json::from_value(event)
                .map_err(|e| format!("not a DynamoDB stream batch: {e}"))?;
            let response = self.handle_stream(batch).await;
            return serde_json::to_value(response).map_err(|e| e.to_string());
        }
        if event.get("requestContext").is_some() {
            let request = jit_http::request_from_event(&event)?;
            let response = self.handle_http(request).await;
            return Ok(jit_http::response_to_event(&response));
        }
        Err("unrecognised event: neither a DynamoDB stream batch nor an API Gateway request".into())
    }
}
