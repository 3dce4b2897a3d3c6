//! The approver Lambda: builds its clients and rules once, then serves stream batches and
//! API Gateway requests.

// The SDK and runtime futures nest deeply; the default limit is too low to lay them out.
#![recursion_limit = "256"]

use std::sync::Arc;

use jit_approver::{Approver, ApproverConfig, ApproverEvent, LogNotifier};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // A bad policy set or setting stops the function here, saying what to fix.
    let base = jit_http::startup::foundation(jit_core::domain::Service::Approver).await?;
    // Every decision verifies a request's evidence: the keys are read beside the first one.
    base.read_keys_ahead();
    let on_call = jit_approver::oncall::from_env(&base.aws)?;
    if on_call.provider.is_none()
        && let Some(t) = base.rules.targets().find(|t| t.on_call.is_some())
    {
        tracing::error!(target = %t.id, "a target asks about on-call but JIT_PAGERDUTY_TOKEN_SECRET is not set: nobody is on call");
    }
    let approver = Arc::new(Approver {
        store: base.store,
        rules: base.rules,
        clock: base.clock,
        notifier: LogNotifier,
        config: ApproverConfig::from_env(),
        keys: base.keys,
        on_call,
    });
    tracing::info!(policy_hash = %approver.rules.hash(), "approver ready");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ApproverEvent>| {
        let approver = Arc::clone(&approver);
        async move { Ok::<_, Error>(approver.handle_event(event.payload).await) }
    }))
    .await
}
