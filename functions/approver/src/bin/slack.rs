//! The Slack function: the approver's review code behind Slack's signed requests, and the
//! table stream's second reader keeping each request's Slack message up to date. A function
//! of its own, with its own reserved concurrency, so traffic from the internet never takes
//! what auto-approval needs.

// The SDK and runtime futures nest deeply; the default limit is too low to lay them out.
#![recursion_limit = "256"]

use std::sync::Arc;

use jit_approver::slack::{SlackApp, SlackEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // Reviews are the approver's records: this function signs with the approver's key.
    let base = jit_http::startup::foundation(jit_core::domain::Service::Approver).await?;
    base.read_keys_ahead();
    let (api, signing_secret, web_url) = jit_approver::slack::from_env(&base.aws)?;
    if base.rules.slack().is_none() {
        tracing::error!("the targets file has no `slack`: every Slack request will be refused");
    }
    let app = Arc::new(SlackApp {
        store: base.store,
        rules: base.rules,
        clock: base.clock,
        keys: base.keys,
        api,
        signing_secret,
        web_url,
    });
    tracing::info!("slack ready");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SlackEvent>| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Error>(app.handle_event(event.payload).await) }
    }))
    .await
}
