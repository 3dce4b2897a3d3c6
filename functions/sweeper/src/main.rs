//! The sweeper Lambda: builds its clients and rules once, then serves the schedule and the
//! revoke route.

// The SDK and runtime futures nest deeply; the default limit is too low to lay them out.
#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use jit_core::clock::SystemClock;
use jit_core::policy::Rules;
use jit_core::store::DynamoStore;
use jit_sweeper::{IamPolicies, Sweeper, SweeperConfig, SweeperEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // A bad policy set stops the function here, with the file and line to fix.
    let rules = Rules::load_from_env().map_err(|e| format!("policies: {e}"))?;
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let sweeper = Arc::new(Sweeper {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table),
        rules: Arc::new(rules),
        clock: Arc::new(SystemClock),
        policies: IamPolicies::new(&aws),
        config: SweeperConfig::from_env()?,
    });
    tracing::info!(policy_hash = %sweeper.rules.hash(), "sweeper ready");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SweeperEvent>| {
        let sweeper = Arc::clone(&sweeper);
        // The invocation's deadline, as an instant on this machine's monotonic clock.
        let left = event
            .context
            .deadline()
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        let deadline = Instant::now() + left;
        async move { sweeper.handle_event(event.payload, deadline).await }
    }))
    .await
}
