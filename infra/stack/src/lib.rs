//! The local stack: the whole broker on one machine, on loopback, with nothing from AWS.
//!
//! It starts the AWS emulator, creates the table from `template.yaml` and the demo roles from
//! `targets.json`, runs the four functions' real binaries behind its own Lambda Runtime API,
//! fronts them with an HTTP gateway that behaves like API Gateway's HTTP API (routes from the
//! template, payload 2.0, the JWT authorizer), acts as the OpenID provider whose tokens that
//! authorizer accepts, feeds the table's stream to `approver` as the event source mapping
//! would, and ticks `sweeper` on the template's schedule.

pub mod demo;
mod gateway;
pub mod oidc;
pub mod recorder;
mod runtime;
pub mod setup;
pub mod signin;
mod stream;
pub mod template;
mod timings;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use oidc::{Authorizer, Person, Provider, Rejection};
pub use runtime::{FunctionError, FunctionRuntime, LogSink};
pub use template::{Bindings, FunctionDef, Route, Template};
pub use timings::Timings;

/// The audience every token is for, and the API's JWT authorizer accepts.
pub const AUDIENCE: &str = "jit-access";

/// The table the stack creates.
pub const TABLE: &str = "jit-grants";

/// The API's port unless told otherwise; the identity provider listens on the next one.
pub const DEFAULT_PORT: u16 = 9680;

/// The demo people: who they are, their groups, and what they are for.
pub const DEMO_PEOPLE: [(&str, &[&str], &str); 5] = [
    (
        "alice",
        &["engineers", "sre"],
        "requester (read-only prod logs, auto-approved with a ticket)",
    ),
    ("dan", &["dba"], "requester (database admin, two approvals)"),
    ("lee", &["dba-leads"], "approver (databases)"),
    ("sue", &["security"], "approver (admin access) and auditor"),
    ("bob", &["sre", "oncall"], "break-glass responder"),
];

/// Why the stack could not start.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// Building the functions failed.
    #[error("building the functions failed: {0}")]
    Build(String),
    /// The emulator or the table could not be had.
    #[error(transparent)]
    Emulator(#[from] jit_local::EmulatorError),
    /// The table could not be created.
    #[error(transparent)]
    Table(#[from] jit_local::TableError),
    /// The template could not be read.
    #[error(transparent)]
    Template(#[from] template::TemplateError),
    /// The identity provider's key could not be had.
    #[error(transparent)]
    Oidc(#[from] oidc::OidcError),
    /// Anything else in setting up.
    #[error("{0}")]
    Setup(String),
}

/// How to run the stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// The API's port (0: any free one); the identity provider takes the next one when fixed.
    pub port: u16,
    /// How often the sweeper runs instead of the template's schedule.
    pub sweep_every: Option<Duration>,
    /// Where the functions' output goes.
    pub logs: LogSink,
    /// Where the stack keeps its key, logs and dead letters.
    pub state_dir: PathBuf,
    /// Instances per function at most.
    pub max_instances: usize,
    /// Extra environment for one function's processes: (binary, name, value).
    pub function_env: Vec<(String, String, String)>,
    /// Whether to build the function binaries first (`cargo build`).
    pub build: bool,
    /// How often the stream is read when it had nothing.
    pub stream_poll: Duration,
    /// The rules (schema, policies, targets) the functions load, as the layer ships them.
    pub policy_dir: PathBuf,
    /// Whether to put a recording pass-through between each function and the emulator, so
    /// [`Stack::aws_calls`] holds every AWS call each function made.
    pub record_aws_calls: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        let state_dir = jit_local::target_dir().join("jit-stack");
        Self {
            port: DEFAULT_PORT,
            sweep_every: None,
            logs: LogSink::Dir(state_dir.join("logs")),
            state_dir,
            max_instances: 4,
            function_env: Vec::new(),
            build: true,
            stream_poll: Duration::from_millis(100),
            policy_dir: jit_local::workspace_root().join("infra/policies"),
            record_aws_calls: false,
        }
    }
}

/// A running stack; everything stops when it is dropped.
pub struct Stack {
    /// The API's base URL.
    pub api_url: String,
    /// The identity provider's URL (the tokens' issuer).
    pub issuer: String,
    /// SDK configuration for the emulator (the broker's account).
    pub aws: aws_config::SdkConfig,
    /// The table's name.
    pub table: String,
    /// Where the stack keeps its state.
    pub state_dir: PathBuf,
    /// Durations the stack measured.
    pub timings: Timings,
    /// Every AWS call each function made, when the options asked for recording.
    pub aws_calls: recorder::AwsCalls,
    /// The functions' signing keys in the emulator: template logical id → key id.
    pub signing_keys: BTreeMap<String, String>,
    provider: Arc<Provider>,
    functions: HashMap<String, FunctionRuntime>,
    tasks: Vec<JoinHandle<()>>,
    _federation: jit_local::FederationStandIn,
    environments: HashMap<String, Vec<(String, String)>>,
    _emulator: jit_local::Emulator,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for function in self.functions.values() {
            function.stop();
        }
    }
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("api_url", &self.api_url)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Where `cargo build` puts the function binaries.
pub fn binary_dir() -> PathBuf {
    jit_local::target_dir().join("debug")
}

/// The binaries the template's functions run, built with the workspace's dev profile.
pub fn build_functions(binaries: &[String]) -> Result<(), StackError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = std::process::Command::new(cargo);
    command
        .current_dir(jit_local::workspace_root())
        .args(["build", "--quiet"])
        .env("CARGO_TARGET_DIR", jit_local::target_dir());
    for binary in binaries {
        command.args(["--bin", binary]);
    }
    let status = command
        .status()
        .map_err(|e| StackError::Build(e.to_string()))?;
    if status.success() {
        Ok(())
    } else {
        Err(StackError::Build(format!(
            "cargo build exited with {status}"
        )))
    }
}

/// The issuer URL the provider has when it listens on `port`.
pub fn issuer_for(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// The provider for `issuer`, with the key kept in `state_dir`.
pub fn provider(state_dir: &std::path::Path, issuer: &str) -> Result<Provider, StackError> {
    Ok(Provider::load_or_create(
        &state_dir.join("oidc-signing-key.der"),
        issuer,
        AUDIENCE,
    )?)
}

/// Serves HTTP/1 on `listener` with `handler`, each connection on a task of its own, until
/// dropped.
pub async fn serve<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let handler = handler.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
}

fn json_response(value: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// The scheduled event EventBridge delivers for the sweep rule.
pub fn scheduled_event() -> Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::now_v7().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": setup::BROKER_ACCOUNT,
        "time": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "region": "us-east-1",
        "resources": [format!("arn:aws:events:us-east-1:{}:rule/jit-sweep", setup::BROKER_ACCOUNT)],
        "detail": {},
    })
}

impl Stack {
    /// Starts everything; ready to serve when it returns.
    pub async fn start(options: StackOptions) -> Result<Self, StackError> {
        let root = jit_local::workspace_root();
        std::fs::create_dir_all(&options.state_dir)
            .map_err(|e| StackError::Setup(format!("{}: {e}", options.state_dir.display())))?;
        let api = TcpListener::bind(("127.0.0.1", options.port))
            .await
            .map_err(|e| StackError::Setup(format!("port {}: {e}", options.port)))?;
        let idp_port = if options.port == 0 {
            0
        } else {
            options.port.saturating_add(1)
        };
        let idp = TcpListener::bind(("127.0.0.1", idp_port))
            .await
            .map_err(|e| StackError::Setup(format!("port {idp_port}: {e}")))?;
        let api_url = format!(
            "http://127.0.0.1:{}",
            api.local_addr().map(|a| a.port()).unwrap_or_default()
        );
        let issuer = issuer_for(idp.local_addr().map(|a| a.port()).unwrap_or_default());
        let provider = Arc::new(provider(&options.state_dir, &issuer)?);
        let bindings = Bindings {
            values: BTreeMap::from([
                ("GrantsTable".to_owned(), TABLE.to_owned()),
                (
                    "AWS::AccountId".to_owned(),
                    setup::BROKER_ACCOUNT.to_owned(),
                ),
                ("JwtIssuer".to_owned(), issuer.clone()),
                ("JwtAudience".to_owned(), AUDIENCE.to_owned()),
            ]),
        };
        let template = Arc::new(Template::load(&root.join("template.yaml"), &bindings)?);
        let binaries: Vec<String> = template
            .functions
            .iter()
            .map(|f| f.binary.clone())
            .collect();
        if options.build {
            let b = binaries.clone();
            tokio::task::spawn_blocking(move || build_functions(&b))
                .await
                .map_err(|e| StackError::Build(e.to_string()))??;
        }

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
            .map_err(|e| StackError::Setup(format!("creating the demo roles: {e}")))?;
        let signing_keys = setup::create_signing_keys(&aws)
            .await
            .map_err(|e| StackError::Setup(format!("creating the signing keys: {e}")))?;
        let federation = jit_local::FederationStandIn::start()
            .await
            .map_err(|e| StackError::Setup(format!("federation stand-in: {e}")))?;

        if let LogSink::Dir(dir) = &options.logs {
            // Each run's logs alone, so what a reader finds is this run's.
            let _ = std::fs::remove_dir_all(dir);
        }
        let home = options.state_dir.join("home");
        let _ = std::fs::create_dir_all(&home);
        let mut functions = HashMap::new();
        let mut environments = HashMap::new();
        let aws_calls = recorder::AwsCalls::default();
        let mut recorders = Vec::new();
        for def in &template.functions {
            let endpoint = if options.record_aws_calls {
                let (url, task) = recorder::start(
                    def.binary.clone(),
                    emulator.endpoint().to_owned(),
                    aws_calls.clone(),
                )
                .await
                .map_err(StackError::Setup)?;
                recorders.push(task);
                url
            } else {
                emulator.endpoint().to_owned()
            };
            let mut env: BTreeMap<String, String> = def
                .environment
                .iter()
                .map(|(k, v)| {
                    // The policies layer is mounted at /opt/policies in Lambda.
                    let v = match v.strip_prefix("/opt/policies") {
                        Some(rest) => format!("{}{rest}", options.policy_dir.display()),
                        // `!Ref` of a signing key: the key made in the emulator.
                        None => signing_keys.get(v).cloned().unwrap_or_else(|| v.clone()),
                    };
                    (k.clone(), v)
                })
                .collect();
            for (k, v) in [
                ("AWS_ENDPOINT_URL", endpoint),
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
                ("JIT_FEDERATION_ENDPOINT", federation.endpoint.clone()),
                // Minute-long checkpoint periods, so a local run shows signed checkpoints soon.
                ("JIT_CHECKPOINT_PERIOD_SECS", "60".to_owned()),
                ("JIT_CHECKPOINT_GRACE_SECS", "10".to_owned()),
                ("HOME", home.display().to_string()),
                ("PATH", std::env::var("PATH").unwrap_or_default()),
            ] {
                env.insert(k.to_owned(), v);
            }
            for (binary, k, v) in &options.function_env {
                if binary == &def.binary {
                    env.insert(k.clone(), v.clone());
                }
            }
            let env: Vec<(String, String)> = env.into_iter().collect();
            environments.insert(def.binary.clone(), env.clone());
            functions.insert(
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

        let timings = Timings::default();
        let mut tasks = recorders;
        let gateway = Arc::new(gateway::Gateway {
            template: Arc::clone(&template),
            functions: functions.clone(),
            authorizer: Authorizer::new(&issuer, &[AUDIENCE], &provider.jwks()),
            timings: timings.clone(),
        });
        tasks.push(tokio::spawn(serve(api, move |request| {
            let gateway = Arc::clone(&gateway);
            async move { gateway.handle(request).await }
        })));
        let p = Arc::clone(&provider);
        let signin = Arc::new(signin::SignIn::new(Arc::clone(&provider)));
        tasks.push(tokio::spawn(serve(
            idp,
            move |request: Request<Incoming>| {
                let p = Arc::clone(&p);
                let signin = Arc::clone(&signin);
                async move {
                    let path = request.uri().path().to_owned();
                    let mut response = match path.as_str() {
                        "/.well-known/openid-configuration" => json_response(&p.discovery()),
                        "/.well-known/jwks.json" => json_response(&p.jwks()),
                        _ => {
                            let method = request.method().as_str().to_owned();
                            let query: HashMap<String, String> = url::form_urlencoded::parse(
                                request.uri().query().unwrap_or_default().as_bytes(),
                            )
                            .into_owned()
                            .collect();
                            let body = request
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let form: HashMap<String, String> =
                                url::form_urlencoded::parse(&body).into_owned().collect();
                            match signin.handle(&method, &path, &query, &form) {
                                Some(answer) => {
                                    let mut r = Response::new(Full::new(Bytes::from(answer.body)));
                                    *r.status_mut() = hyper::StatusCode::from_u16(answer.status)
                                        .unwrap_or(hyper::StatusCode::BAD_REQUEST);
                                    r.headers_mut().insert(
                                        "content-type",
                                        hyper::header::HeaderValue::from_static(
                                            answer.content_type,
                                        ),
                                    );
                                    r.headers_mut().insert(
                                        "cache-control",
                                        hyper::header::HeaderValue::from_static("no-store"),
                                    );
                                    if let Some(location) = answer
                                        .location
                                        .and_then(|l| hyper::header::HeaderValue::from_str(&l).ok())
                                    {
                                        r.headers_mut().insert("location", location);
                                    }
                                    r
                                }
                                None => {
                                    let mut r = json_response(&json!({"error": "not_found"}));
                                    *r.status_mut() = hyper::StatusCode::NOT_FOUND;
                                    r
                                }
                            }
                        }
                    };
                    // What a browser page on another origin reads (the web page's sign-in),
                    // as providers serve it: discovery, keys and the token endpoint.
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
            },
        )));
        for def in &template.functions {
            let Some(function) = functions.get(&def.binary).cloned() else {
                continue;
            };
            if let Some(source) = &def.stream {
                let poller = stream::StreamPoller {
                    client: aws_sdk_dynamodbstreams::Client::new(&aws),
                    stream_arn: stream_arn.clone(),
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
            // it starts the chain of audit checkpoints, so an export made right after start
            // finds one.
            if let Some(every) = def.schedule.map(|s| options.sweep_every.unwrap_or(s)) {
                tasks.push(tokio::spawn(async move {
                    let mut ticks = tokio::time::interval(every);
                    loop {
                        ticks.tick().await;
                        match function.invoke(scheduled_event()).await {
                            Ok(report) => tracing::info!(function = %function.name(), %report, "scheduled run"),
                            Err(e) => tracing::warn!(function = %function.name(), error = %e, "scheduled run failed"),
                        }
                    }
                }));
            }
        }
        Ok(Self {
            api_url,
            issuer,
            aws,
            table: TABLE.to_owned(),
            state_dir: options.state_dir,
            timings,
            aws_calls,
            signing_keys,
            environments,
            provider,
            functions,
            tasks,
            _federation: federation,
            _emulator: emulator,
        })
    }

    /// A token for `sub` in `groups`, valid for an hour.
    pub fn token(&self, sub: &str, groups: &[&str]) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.provider.mint(
            &Person {
                sub: sub.to_owned(),
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            },
            now,
            3600,
        )
    }

    /// The identity provider (tests forge variations of its tokens).
    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// The four functions' public keys, read from the emulator's KMS: what an auditor pins.
    pub async fn key_ring(&self) -> Result<jit_core::trust::KeyRing, String> {
        use jit_core::domain::Service;
        let keys: Vec<(Service, String)> = [
            (Service::Intake, "IntakeSigningKey"),
            (Service::Approver, "ApproverSigningKey"),
            (Service::Issuer, "IssuerSigningKey"),
            (Service::Sweeper, "SweeperSigningKey"),
        ]
        .into_iter()
        .map(|(s, logical)| {
            (
                s,
                self.signing_keys.get(logical).cloned().unwrap_or_default(),
            )
        })
        .collect();
        let kms = aws_sdk_kms::Client::new(&self.aws);
        jit_core::trust::load_key_ring(&kms, &keys)
            .await
            .map_err(|e| e.to_string())
    }

    /// The environment the stack gives `binary`'s processes (the template's variables with
    /// the emulator's endpoint, keys and credentials): for running a build of it elsewhere.
    pub fn environment(&self, binary: &str) -> Option<&[(String, String)]> {
        self.environments.get(binary).map(Vec::as_slice)
    }

    /// One function's runtime, by binary name.
    pub fn function(&self, binary: &str) -> Option<&FunctionRuntime> {
        self.functions.get(binary)
    }

    /// Invokes the sweeper now, as its schedule would.
    pub async fn sweep(&self) -> Result<Value, FunctionError> {
        match self.functions.get("sweeper") {
            Some(f) => f.invoke(scheduled_event()).await,
            None => Err(FunctionError::InitFailed(
                "no sweeper in the template".into(),
            )),
        }
    }
}
