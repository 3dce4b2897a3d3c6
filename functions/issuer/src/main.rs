//! The issuer Lambda: builds its clients and rules once, then serves API Gateway requests.

// The SDK and runtime futures nest deeply; the default limit is too low to lay them out.
#![recursion_limit = "256"]

use std::sync::Arc;

use jit_core::clock::SystemClock;
use jit_core::policy::Rules;
use jit_core::store::DynamoStore;
use jit_issuer::{AWS_FEDERATION_ENDPOINT, HttpFederation, Issuer, IssuerConfig, StsBroker};
use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    // A bad policy set stops the function here, with the file and line to fix.
    let rules = Rules::load_from_env().map_err(|e| format!("policies: {e}"))?;
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
    let endpoint = std::env::var("JIT_FEDERATION_ENDPOINT")
        .unwrap_or_else(|_| AWS_FEDERATION_ENDPOINT.to_owned());
    let endpoint = url::Url::parse(&endpoint)
        .map_err(|e| format!("JIT_FEDERATION_ENDPOINT `{endpoint}` is not a URL: {e}"))?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let issuer = Arc::new(Issuer {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table),
        rules: Arc::new(rules),
        clock: Arc::new(SystemClock),
        broker: StsBroker::new(aws_sdk_sts::Client::new(&aws)),
        federation: HttpFederation::new(endpoint)?,
        config: IssuerConfig::from_env(),
    });
    tracing::info!(policy_hash = %issuer.rules.hash(), "issuer ready");
    lambda_http::run(service_fn(move |request: Request| {
        let issuer = Arc::clone(&issuer);
        async move { Ok::<_, Error>(issuer.handle(request).await) }
    }))
    .await
}
