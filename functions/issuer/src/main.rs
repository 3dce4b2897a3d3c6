//! The issuer Lambda: builds its clients and rules once, then serves API Gateway requests.

// The SDK and runtime futures nest deeply; the default limit is too low to lay them out.
#![recursion_limit = "256"]

use std::sync::Arc;

use jit_issuer::{AWS_FEDERATION_ENDPOINT, HttpFederation, Issuer, IssuerConfig, StsBroker};
use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    // A bad policy set or setting stops the function here, saying what to fix.
    let base = jit_http::startup::foundation(jit_core::domain::Service::Issuer).await?;
    // Every credentials call verifies a grant's evidence: the keys are read beside the first.
    base.read_keys_ahead();
    let endpoint = jit_http::startup::parsed("JIT_FEDERATION_ENDPOINT", |text| {
        url::Url::parse(text).map_err(|e| format!("is not a URL: {e}"))
    })?;
    let endpoint = match endpoint {
        Some(url) => url,
        None => url::Url::parse(AWS_FEDERATION_ENDPOINT)?,
    };
    let issuer = Arc::new(Issuer {
        store: base.store,
        rules: base.rules,
        clock: base.clock,
        broker: StsBroker::new(aws_sdk_sts::Client::new(&base.aws)),
        federation: HttpFederation::new(endpoint),
        config: IssuerConfig::from_env(),
        keys: base.keys,
    });
    tracing::info!(policy_hash = %issuer.rules.hash(), "issuer ready");
    lambda_http::run(service_fn(move |request: Request| {
        let issuer = Arc::clone(&issuer);
        async move { Ok::<_, Error>(issuer.handle(request).await) }
    }))
    .await
}
