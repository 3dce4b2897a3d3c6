//! The sweeper Lambda: builds its clients and rules once, then serves the schedule and the
//! revoke route.

// The SDK and runtime futures nest deeply; the default limit is too low to lay them out.
#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use jit_sweeper::{
    AuditBucket, BucketSettings, IamPolicies, Sweeper, SweeperConfig, SweeperEvent, s3_client,
};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // A bad setting or policy set stops the function here, saying what to fix.
    let config = SweeperConfig::from_env()?;
    let bucket = BucketSettings::from_env()?;
    let base = jit_http::startup::foundation(jit_core::domain::Service::Sweeper).await?;
    let sweeper = Arc::new(Sweeper {
        store: base.store,
        rules: base.rules,
        clock: base.clock,
        policies: IamPolicies::new(&base.aws),
        config,
        archive: bucket.map(|settings| AuditBucket::new(s3_client(&base.aws), settings)),
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
