//! The intake Lambda: builds its clients and rules once, then serves API Gateway requests.

use std::sync::Arc;

use jit_core::clock::SystemClock;
use jit_core::policy::Rules;
use jit_core::store::DynamoStore;
use jit_intake::{App, IntakeConfig};
use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    // A bad policy set stops the function here, with the file and line to fix.
    let rules = Rules::load_from_env().map_err(|e| format!("policies: {e}"))?;
    let config = IntakeConfig::from_env()?;
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let app = Arc::new(App {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table),
        rules: Arc::new(rules),
        clock: Arc::new(SystemClock),
        config,
    });
    tracing::info!(policy_hash = %app.rules.hash(), "intake ready");
    lambda_http::run(service_fn(move |request: Request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Error>(app.handle(request).await) }
    }))
    .await
}
