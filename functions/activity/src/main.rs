//! The activity Lambda: builds its clients and rules once, then keeps and judges each
//! CloudTrail event the broker's event bus delivers.

// The SDK and runtime futures nest deeply; the default limit is too low to lay them out.
#![recursion_limit = "256"]

use std::sync::Arc;

use jit_activity::{ActivityFunction, LambdaHandover};
use jit_core::policy::Rules;
use jit_core::store::DynamoStore;
use jit_http::startup::{StartupError, aws_timeouts, ms, setting};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // A bad setting or policy set stops the function here, saying what to fix.
    let table = setting("TABLE_NAME").ok_or(StartupError::Missing { name: "TABLE_NAME" })?;
    let sweeper = setting("JIT_SWEEPER_FUNCTION").ok_or(StartupError::Missing {
        name: "JIT_SWEEPER_FUNCTION",
    })?;
    let clock = jit_http::startup::clock()?;
    let started = std::time::Instant::now();
    let rules = tokio::task::spawn_blocking(move || (Rules::load_from_env(), started.elapsed()));
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(aws_timeouts())
        .load()
        .await;
    let aws_config_took = started.elapsed();
    let (rules, policies_took) = rules
        .await
        .map_err(|e| StartupError::Panicked(e.to_string()))?;
    let rules = rules.map_err(StartupError::Policies)?;
    // The hand-over waits for the sweeper's revocation (IAM included): a longer budget than
    // the table's calls get.
    let lambda_config = aws_sdk_lambda::config::Builder::from(&aws)
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_secs(1))
                .operation_timeout(std::time::Duration::from_secs(25))
                .build(),
        )
        .build();
    let function = Arc::new(ActivityFunction {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table),
        rules: Arc::new(rules),
        handover: LambdaHandover::new(aws_sdk_lambda::Client::from_conf(lambda_config), sweeper),
        clock,
    });
    tracing::info!(
        policies_ms = ms(policies_took),
        aws_config_ms = ms(aws_config_took),
        total_ms = ms(started.elapsed()),
        "init phases"
    );
    tracing::info!(policy_hash = %function.rules.hash(), "activity ready");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let function = Arc::clone(&function);
        async move { function.handle(event.payload).await }
    }))
    .await
}
