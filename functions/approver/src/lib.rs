//! Approval: decides new requests by the rules as they arrive on the table's stream, takes
//! human reviews over the API, and records the reviews break-glass activations owe.
//!
//! One Lambda, two event sources: DynamoDB stream batches and API Gateway requests. The rules
//! decide on the requester's groups as the identity provider vouched for them at request time.

mod notify;
pub mod oncall;
mod reviews;
pub mod slack;
mod stream;

use std::sync::Arc;

use jit_core::clock::Clock;
use jit_core::policy::Rules;
use jit_core::store::GrantStore;
use serde::{Deserialize, Serialize};

pub use notify::{LogNotifier, Notifier};
pub use oncall::{OnCallAsker, OnCallProvider};
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
        Self {
            groups_claim: jit_http::startup::setting("JIT_GROUPS_CLAIM")
                .unwrap_or_else(|| Self::default().groups_claim),
        }
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
    /// The functions' public keys: a request's evidence must verify before it is reviewed.
    pub keys: Arc<jit_core::trust::PublicKeys>,
    /// Who is on call, for the rules of targets that ask.
    pub on_call: OnCallAsker,
}

/// What Lambda delivers to the approver: a batch from the table's stream, or a request from
/// the HTTP API. Anything else does not deserialize, so the runtime refuses it before the
/// handler runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ApproverEvent {
    /// New requests, from the event source mapping.
    Stream(aws_lambda_events::event::dynamodb::Event),
    /// A review or post-review.
    Http(Box<jit_http::ApiGatewayV2httpRequest>),
}

/// What the approver answers each source.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ApproverResponse {
    /// The records to retry (`batchItemFailures`).
    Stream(aws_lambda_events::event::streams::DynamoDbEventResponse),
    /// The HTTP response, payload format 2.0.
    Http(Box<jit_http::ApiGatewayV2httpResponse>),
}

impl<S: GrantStore, N: Notifier> Approver<S, N> {
    /// Handles whatever Lambda delivered and answers in the shape that source expects.
    pub async fn handle_event(&self, event: ApproverEvent) -> ApproverResponse {
        match event {
            ApproverEvent::Stream(batch) => {
                ApproverResponse::Stream(self.handle_stream(batch).await)
            }
            ApproverEvent::Http(request) => {
                let response = self.handle_http(jit_http::into_request(*request)).await;
                ApproverResponse::Http(Box::new(jit_http::into_response_event(&response)))
            }
        }
    }
}
