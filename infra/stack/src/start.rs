//! The steps of [`crate::Stack::start`], each named for what it sets up.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{
    Bindings, FunctionDef, FunctionRuntime, Provider, StackError, StackOptions, TABLE, Template,
    Timings, binary_dir, build_functions, json_response, lambda_api, recorder, scheduled_event,
    serve, setup, signin, stream, trail,
};

/// The API's listener on `port` (0: any free one) and the identity provider's on the next one
/// (or any free one).
pub(crate) async fn listeners(port: u16) -> Result<(TcpListener, TcpListener), StackError> {
    let api = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| StackError::Setup(format!("port {port}: {e}")))?;
    let idp_port = if port == 0 { 0 } else { port.saturating_add(1) };
    let idp = TcpListener::bind(("127.0.0.1", idp_port))
        .await
        .map_err(|e| StackError::Setup(format!("port {idp_port}: {e}")))?;
    Ok((api, idp))
}

/// The base URL a listener serves.
pub(crate) fn url_of(listener: &TcpListener) -> String {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    format!("http://127.0.0.1:{port}")
}

/// The workspace's `template.yaml` as the stack runs it: its table, the broker's account,
/// and the local provider as the JWT issuer.
pub(crate) fn template(issuer: &str) -> Result<Template, StackError> {
    let bindings = Bindings {
        values: BTreeMap::from([
            ("GrantsTable".to_owned(), TABLE.to_owned()),
            ("AuditBucket".to_owned(), crate::AUDIT_BUCKET.to_owned()),
            (
                "AWS::AccountId".to_owned(),
                setup::BROKER_ACCOUNT.to_owned(),
            ),
            ("JwtIssuer".to_owned(), issuer.to_owned()),
            ("JwtAudience".to_owned(), crate::AUDIENCE.to_owned()),
        ]),
    };
    Ok(Template::load(
        &jit_local::workspace_root().join("template.yaml"),
        &bindings,
    )?)
}

/// Builds the template's function binaries.
pub(crate) async fn build(template: &Template) -> Result<(), StackError> {
    let binaries: Vec<String> = template
        .functions
        .iter()
        .map(|f| f.binary.clone())
        .collect();
    tokio::task::spawn_blocking(move || build_functions(&binaries))
        .await
        .map_err(|e| StackError::Build(e.to_string()))?
}

/// The emulated AWS account the functions run against, set up as a deployment is: the table
/// (and its stream), the target roles, the signing keys, and the console federation endpoint.
pub(crate) struct Account {
    pub(crate) emulator: jit_local::Emulator,
    /// The emulator behind the trail: what every function and person calls.
    pub(crate) trail_url: String,
    pub(crate) trail_events: Option<tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>>,
    pub(crate) trail_task: JoinHandle<()>,
    pub(crate) aws: aws_config::SdkConfig,
    pub(crate) stream_arn: String,
    pub(crate) signing_keys: BTreeMap<String, String>,
    pub(crate) federation: jit_local::FederationStandIn,
    /// PagerDuty's stand-in, its token in Secrets Manager as the template names it.
    pub(crate) pagerduty: jit_local::PagerDutyStandIn,
    pub(crate) slack: jit_local::SlackStandIn,
}

impl Account {
    pub(crate) async fn set_up(options: &StackOptions) -> Result<Self, StackError> {
        let setup_error = |what: &str| {
            let what = what.to_owned();
            move |e: String| StackError::Setup(format!("{what}: {e}"))
        };
        let emulator = tokio::task::spawn_blocking(|| {
            jit_local::Emulator::start_with(&[("JIT_DEFAULT_ACCOUNT", setup::BROKER_ACCOUNT)])
        })
        .await
        .map_err(|e| StackError::Setup(e.to_string()))??;
        let aws = emulator.sdk_config().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
        jit_local::TableDefinition::from_workspace_template()?
            .create(&dynamodb, TABLE)
            .await?;
        let stream_arn = dynamodb
            .describe_table()
            .table_name(TABLE)
            .send()
            .await
            .map_err(|e| {
                StackError::Setup(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
            })?
            .table
            .and_then(|t| t.latest_stream_arn)
            .ok_or_else(|| StackError::Setup("the table has no stream".into()))?;
        let rules = jit_core::policy::Rules::load_dir(&options.policy_dir)
            .map_err(|e| StackError::Setup(format!("policies: {e}")))?;
        setup::create_roles(&aws, &rules)
            .await
            .map_err(setup_error("creating the demo roles"))?;
        let signing_keys = setup::create_signing_keys(&aws)
            .await
            .map_err(setup_error("creating the signing keys"))?;
        setup::create_audit_bucket(&aws, crate::AUDIT_BUCKET)
            .await
            .map_err(setup_error("creating the audit bucket"))?;
        let federation = jit_local::FederationStandIn::start()
            .await
            .map_err(|e| StackError::Setup(format!("federation stand-in: {e}")))?;
        let pagerduty = start_pagerduty(&aws)
            .await
            .map_err(setup_error("the PagerDuty stand-in"))?;
        let slack = start_slack(&aws, &rules)
            .await
            .map_err(setup_error("the Slack stand-in"))?;
        let (trail_url, _, trail_events, trail_task) = trail::start(emulator.endpoint().to_owned())
            .await
            .map_err(StackError::Setup)?;
        Ok(Self {
            emulator,
            trail_url,
            trail_events: Some(trail_events),
            trail_task,
            aws,
            stream_arn,
            signing_keys,
            federation,
            pagerduty,
            slack,
        })
    }
}

/// PagerDuty's stand-in, with a token of this run's own in the secret the template's
/// `PagerDutyTokenSecretName` names, so the approver reads it as deployed.
async fn start_pagerduty(
    aws: &aws_config::SdkConfig,
) -> Result<jit_local::PagerDutyStandIn, String> {
    let template =
        jit_local::cfn::Template::load(&jit_local::workspace_root().join("template.yaml"))
            .map_err(|e| e.to_string())?;
    let name = template
        .default_of("PagerDutyTokenSecretName")
        .ok_or("the template's PagerDutyTokenSecretName has no default")?;
    let token = format!("local-{}", uuid::Uuid::now_v7().simple());
    aws_sdk_secretsmanager::Client::new(aws)
        .create_secret()
        .name(name)
        .secret_string(&token)
        .send()
        .await
        .map_err(|e| aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string())?;
    jit_local::PagerDutyStandIn::start(&token)
        .await
        .map_err(|e| e.to_string())
}

/// Slack's stand-in, for the workspace the targets file names, with a bot token and signing
/// secret of this run's own in the secrets the template's `SlackBotTokenSecretName` and
/// `SlackSigningSecretName` name, so the Slack function reads them as deployed.
async fn start_slack(
    aws: &aws_config::SdkConfig,
    rules: &jit_core::policy::Rules,
) -> Result<jit_local::SlackStandIn, String> {
    let template =
        jit_local::cfn::Template::load(&jit_local::workspace_root().join("template.yaml"))
            .map_err(|e| e.to_string())?;
    let team = rules
        .slack()
        .map_or_else(|| "T0JITLOCAL".to_owned(), |s| s.team_id.clone());
    let secrets = aws_sdk_secretsmanager::Client::new(aws);
    let mut values = Vec::new();
    for (parameter, prefix) in [
        ("SlackBotTokenSecretName", "xoxb-local-"),
        ("SlackSigningSecretName", ""),
    ] {
        let name = template
            .default_of(parameter)
            .ok_or_else(|| format!("the template's {parameter} has no default"))?;
        let value = format!("{prefix}{}", uuid::Uuid::now_v7().simple());
        secrets
            .create_secret()
            .name(name)
            .secret_string(&value)
            .send()
            .await
            .map_err(|e| aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string())?;
        values.push(value);
    }
    let (token, secret) = match values.as_slice() {
        [token, secret] => (token.clone(), secret.clone()),
        _ => return Err("two secrets were not made".into()),
    };
    jit_local::SlackStandIn::start(&team, &token, &secret)
        .await
        .map_err(|e| e.to_string())
}

/// Each function's runtime and the environment its processes get, and the recorders of their
/// AWS calls when the options ask for them.
pub(crate) struct Runtimes {
    pub(crate) functions: HashMap<String, FunctionRuntime>,
    pub(crate) environments: HashMap<String, Vec<(String, String)>>,
    pub(crate) aws_calls: recorder::AwsCalls,
    pub(crate) recorders: Vec<JoinHandle<()>>,
}

/// The functions by every name a caller may use: logical id and binary.
pub(crate) fn by_name(
    functions: &HashMap<String, FunctionRuntime>,
    template: &Template,
) -> HashMap<String, FunctionRuntime> {
    let mut named = functions.clone();
    for def in &template.functions {
        if let Some(f) = functions.get(&def.binary) {
            named.insert(def.logical_id.clone(), f.clone());
        }
    }
    named
}

impl Runtimes {
    pub(crate) async fn of(
        options: &StackOptions,
        template: &Template,
        account: &Account,
    ) -> Result<Self, StackError> {
        let mut runtimes = Self {
            functions: HashMap::new(),
            environments: HashMap::new(),
            aws_calls: recorder::AwsCalls::default(),
            recorders: Vec::new(),
        };
        let mut lambda_listeners = Vec::new();
        for def in &template.functions {
            let endpoint = if options.record_aws_calls {
                let (url, task) = recorder::start(
                    def.binary.clone(),
                    account.trail_url.clone(),
                    runtimes.aws_calls.clone(),
                )
                .await
                .map_err(StackError::Setup)?;
                runtimes.recorders.push(task);
                url
            } else {
                account.trail_url.clone()
            };
            let (listener, lambda_url) = lambda_api::bind().await?;
            lambda_listeners.push((def.binary.clone(), listener));
            let env = environment(options, def, account, endpoint, lambda_url);
            runtimes
                .environments
                .insert(def.binary.clone(), env.clone());
            runtimes.functions.insert(
                def.binary.clone(),
                FunctionRuntime::new(
                    def.clone(),
                    binary_dir().join(&def.binary),
                    env,
                    options.logs.clone(),
                    options.max_instances,
                ),
            );
        }
        let named = Arc::new(by_name(&runtimes.functions, template));
        let calls = options.record_aws_calls.then(|| runtimes.aws_calls.clone());
        for (binary, listener) in lambda_listeners {
            runtimes.recorders.push(lambda_api::serve(
                listener,
                binary,
                Arc::clone(&named),
                calls.clone(),
            ));
        }
        Ok(runtimes)
    }
}

/// What a function's processes get in their environment: the template's variables (the
/// policies layer's path and the signing keys' references made local), Lambda's own
/// variables, the emulator's endpoint and credentials, and the options' extras.
fn environment(
    options: &StackOptions,
    def: &FunctionDef,
    account: &Account,
    endpoint: String,
    lambda_endpoint: String,
) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = def
        .environment
        .iter()
        .map(|(k, v)| {
            // The policies layer is mounted at /opt/policies in Lambda.
            let v = match v.strip_prefix("/opt/policies") {
                Some(rest) => format!("{}{rest}", options.policy_dir.display()),
                // `!Ref` of a signing key: the key made in the emulator.
                None => account
                    .signing_keys
                    .get(v)
                    .cloned()
                    .unwrap_or_else(|| v.clone()),
            };
            (k.clone(), v)
        })
        .collect();
    let home = options.state_dir.join("home");
    let _ = std::fs::create_dir_all(&home);
    for (k, v) in [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ENDPOINT_URL_LAMBDA", lambda_endpoint),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_SESSION_TOKEN", "testing".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", def.logical_id.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", def.memory_mb.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", def.logical_id),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_owned()),
        (
            "JIT_FEDERATION_ENDPOINT",
            account.federation.endpoint.clone(),
        ),
        ("JIT_PAGERDUTY_URL", account.pagerduty.url.clone()),
        ("JIT_SLACK_API_URL", account.slack.api_url()),
        // Minute-long checkpoint periods, so a local run shows signed checkpoints soon.
        ("JIT_CHECKPOINT_PERIOD_SECS", "60".to_owned()),
        ("JIT_CHECKPOINT_GRACE_SECS", "10".to_owned()),
        // A grant's activity covered 40 s after it ends, again after 2 minutes, each record
        // covering what was stored up to 35 s before it (the activity function's 30 s
        // timeout): soon enough to see locally.
        ("JIT_ACTIVITY_SETTLE_SECS", "40".to_owned()),
        ("JIT_ACTIVITY_RECHECK_SECS", "120".to_owned()),
        ("JIT_ACTIVITY_LAG_SECS", "35".to_owned()),
        ("JIT_ACTIVITY_CHECKPOINT_SECS", "120".to_owned()),
        ("HOME", home.display().to_string()),
        ("PATH", std::env::var("PATH").unwrap_or_default()),
    ] {
        env.insert(k.to_owned(), v);
    }
    if options.movable_clock {
        env.insert(
            jit_core::clock::STACK_CLOCK_ENV.to_owned(),
            options
                .state_dir
                .join(crate::CLOCK_FILE)
                .display()
                .to_string(),
        );
    }
    for (binary, k, v) in &options.function_env {
        if binary == &def.binary {
            env.insert(k.clone(), v.clone());
        }
    }
    env.into_iter().collect()
}

/// Serves the OpenID provider on `idp`: discovery, keys, and the sign-in pages and token
/// endpoint.
pub(crate) fn serve_provider(idp: TcpListener, provider: Arc<Provider>) -> JoinHandle<()> {
    let signin = Arc::new(signin::SignIn::new(Arc::clone(&provider)));
    tokio::spawn(serve(idp, move |request: Request<Incoming>| {
        let provider = Arc::clone(&provider);
        let signin = Arc::clone(&signin);
        async move { provider_answer(&provider, &signin, request).await }
    }))
}

/// The provider's answer to one request.
async fn provider_answer(
    provider: &Provider,
    signin: &signin::SignIn,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let mut response = match path.as_str() {
        "/.well-known/openid-configuration" => json_response(&provider.discovery()),
        "/.well-known/jwks.json" => json_response(&provider.jwks()),
        _ => {
            let method = request.method().as_str().to_owned();
            let query: HashMap<String, String> =
                url::form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
                    .into_owned()
                    .collect();
            let body = jit_local::http::body_bytes(request).await;
            let form: HashMap<String, String> =
                url::form_urlencoded::parse(&body).into_owned().collect();
            match signin.handle(&method, &path, &query, &form) {
                Some(answer) => page(answer),
                None => {
                    let mut r = json_response(&json!({"error": "not_found"}));
                    *r.status_mut() = hyper::StatusCode::NOT_FOUND;
                    r
                }
            }
        }
    };
    // What a browser page on another origin reads (the web page's sign-in), as providers
    // serve it: discovery, keys and the token endpoint.
    if matches!(
        path.as_str(),
        "/.well-known/openid-configuration" | "/.well-known/jwks.json" | "/token"
    ) {
        response.headers_mut().insert(
            "access-control-allow-origin",
            hyper::header::HeaderValue::from_static("*"),
        );
    }
    response
}

/// A sign-in page or redirect as an HTTP response, never cached.
fn page(answer: signin::Answer) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(answer.body)));
    *r.status_mut() =
        hyper::StatusCode::from_u16(answer.status).unwrap_or(hyper::StatusCode::BAD_REQUEST);
    let headers = r.headers_mut();
    headers.insert(
        "content-type",
        hyper::header::HeaderValue::from_static(answer.content_type),
    );
    headers.insert(
        "cache-control",
        hyper::header::HeaderValue::from_static("no-store"),
    );
    if let Some(location) = answer
        .location
        .and_then(|l| hyper::header::HeaderValue::from_str(&l).ok())
    {
        headers.insert("location", location);
    }
    r
}

/// The table's stream to the functions it feeds, the schedule to the functions the template
/// schedules, and the trail's events to the functions the broker bus's rule feeds.
pub(crate) fn event_sources(
    options: &StackOptions,
    template: &Template,
    functions: &HashMap<String, FunctionRuntime>,
    account: &mut Account,
    timings: &Timings,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    let bus_targets: Vec<(FunctionRuntime, serde_json::Value)> = template
        .functions
        .iter()
        .filter_map(|def| Some((functions.get(&def.binary)?.clone(), def.bus_rule.clone()?)))
        .collect();
    if let Some(events) = account.trail_events.take() {
        tasks.push(trail::deliver(
            events,
            bus_targets,
            options.state_dir.clone(),
        ));
    }
    for def in &template.functions {
        let Some(function) = functions.get(&def.binary).cloned() else {
            continue;
        };
        if let Some(source) = &def.stream {
            let poller = stream::StreamPoller {
                client: aws_sdk_dynamodbstreams::Client::new(&account.aws),
                stream_arn: account.stream_arn.clone(),
                source: source.clone(),
                function: function.clone(),
                dead_letters: options
                    .state_dir
                    .join(format!("{}-dead-letters.jsonl", def.binary)),
                poll_every: options.stream_poll,
                timings: timings.clone(),
            };
            tasks.push(tokio::spawn(poller.run()));
        }
        // Only a function the template schedules runs on a schedule; the flag changes how
        // often. The first run is at once, as a deployment's first within its first minute:
        // it starts the chain of audit checkpoints, so an export made right after start finds
        // one.
        if let Some(every) = def.schedule.map(|s| options.sweep_every.unwrap_or(s)) {
            tasks.push(tokio::spawn(async move {
                let mut ticks = tokio::time::interval(every);
                loop {
                    ticks.tick().await;
                    match function.invoke(scheduled_event()).await {
                        Ok(report) => {
                            tracing::info!(function = %function.name(), %report, "scheduled run");
                        }
                        Err(e) => {
                            tracing::warn!(function = %function.name(), error = %e, "scheduled run failed");
                        }
                    }
                }
            }));
        }
    }
    tasks
}
