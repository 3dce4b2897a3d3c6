//! The intake Lambda: builds its clients and rules once, then serves API Gateway requests.

use std::sync::Arc;

use jit_intake::{App, IntakeConfig, WebConfig};
use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    // A bad setting or policy set stops the function here, saying what to fix.
    let config = IntakeConfig::from_env()?;
    let web = WebConfig::from_env(&config.groups_claim);
    let base = jit_http::startup::foundation(jit_core::domain::Service::Intake).await?;
    let slack = base.rules.slack().is_some().then(|| {
        Arc::new(jit_intake::SlackLinks::new(
            base.store.inner().clone(),
            Arc::clone(base.store.key()),
        ))
    });
    let app = Arc::new(App {
        slack,
        store: base.store,
        rules: base.rules,
        clock: base.clock,
        config,
        // Read when first needed (a cancel, a trail, an export), not at start: most of what
        // intake serves verifies nothing.
        keys: base.keys,
        web,
    });
    tracing::info!(policy_hash = %app.rules.hash(), "intake ready");
    lambda_http::run(service_fn(move |request: Request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Error>(app.handle(request).await) }
    }))
    .await
}
