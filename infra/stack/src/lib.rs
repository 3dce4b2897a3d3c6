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
mod lambda_api;
pub mod oidc;
pub mod recorder;
mod runtime;
pub mod setup;
pub mod signin;
mod start;
mod stream;
pub mod template;
mod timings;
pub mod trail;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub use jit_local::http::serve;

pub use oidc::{Authorizer, Person, Provider, Rejection};
pub use runtime::{FunctionError, FunctionRuntime, InstanceStart, Launch, LogSink};
pub use template::{Bindings, FunctionDef, Route, Template};
pub use timings::Timings;

/// The audience every token is for, and the API's JWT authorizer accepts.
pub const AUDIENCE: &str = "jit-access";

/// The table the stack creates.
pub const TABLE: &str = "jit-grants";

/// The audit bucket the stack creates, with Object Lock as the template declares it.
pub const AUDIT_BUCKET: &str = "jit-audit";

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
    /// Whether the gateway applies the template's route throttle (429 past it), as API
    /// Gateway does.
    pub throttle: bool,
    /// Whether the functions run on a movable clock ([`Stack::advance_clock`]), so scheduled
    /// starts, extensions and ends are tried without waiting. The functions accept it only
    /// with every AWS endpoint on this machine: never deployed.
    pub movable_clock: bool,
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
            throttle: true,
            movable_clock: false,
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
    /// Where people's AWS calls go (`AWS_ENDPOINT_URL`): the emulator, behind the trail that
    /// records each call made with a grant's session as the grant's activity.
    pub aws_endpoint: String,
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
    pagerduty: jit_local::PagerDutyStandIn,
    slack: jit_local::SlackStandIn,
    environments: HashMap<String, Vec<(String, String)>>,
    movable_clock: bool,
    _emulator: jit_local::Emulator,
}

/// The movable clock's file, in the state directory.
pub const CLOCK_FILE: &str = "clock-offset-secs";

/// Moves the clock whose offset `file` holds `secs` further ahead; the new offset. Written
/// whole or not at all: a function reading mid-write never sees half a number.
pub fn move_clock_file(file: &std::path::Path, secs: i64) -> Result<i64, String> {
    let now: i64 = std::fs::read_to_string(file)
        .map_err(|e| format!("no movable clock at {} ({e})", file.display()))?
        .trim()
        .parse()
        .unwrap_or(0);
    let next = now.saturating_add(secs);
    let partial = file.with_extension("partial");
    std::fs::write(&partial, next.to_string())
        .and_then(|()| std::fs::rename(&partial, file))
        .map_err(|e| format!("cannot move the clock at {}: {e}", file.display()))?;
    Ok(next)
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

fn json_response(value: &Value) -> Response<Full<Bytes>> {
    jit_local::http::reply(200, "application/json", value.to_string())
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
    /// Starts everything; ready to serve when it returns: the listeners, the template, the
    /// build, the emulated AWS account, the function runtimes, the gateway and the provider,
    /// then the stream and the schedule (each a step of `start`).
    pub async fn start(mut options: StackOptions) -> Result<Self, StackError> {
        std::fs::create_dir_all(&options.state_dir)
            .map_err(|e| StackError::Setup(format!("{}: {e}", options.state_dir.display())))?;
        if options.movable_clock {
            // Every function starts on the machine's time.
            let file = options.state_dir.join(CLOCK_FILE);
            std::fs::write(&file, "0")
                .map_err(|e| StackError::Setup(format!("{}: {e}", file.display())))?;
        }
        let (api, idp) = start::listeners(options.port).await?;
        let api_url = start::url_of(&api);
        let issuer = issuer_for(idp.local_addr().map(|a| a.port()).unwrap_or_default());
        let provider = Arc::new(provider(&options.state_dir, &issuer)?);
        let template = Arc::new(start::template(&issuer)?);
        if options.build {
            start::build(&template).await?;
        }
        let mut account = start::Account::set_up(&options).await?;
        // Slack's clicks reach the API as Slack's would; the web page is where a click that
        // needs a fresh sign-in sends the reviewer.
        account
            .slack
            .deliver_to(&format!("{api_url}/slack/interactions"));
        options
            .function_env
            .push(("slack".into(), "JIT_WEB_URL".into(), api_url.clone()));
        if let LogSink::Dir(dir) = &options.logs {
            // Each run's logs alone, so what a reader finds is this run's.
            let _ = std::fs::remove_dir_all(dir);
        }
        let runtimes = start::Runtimes::of(&options, &template, &account).await?;
        let timings = Timings::default();
        let mut tasks = runtimes.recorders;
        let gateway = Arc::new(gateway::Gateway {
            template: Arc::clone(&template),
            functions: runtimes.functions.clone(),
            authorizer: Authorizer::new(&issuer, &[AUDIENCE], &provider.jwks()),
            timings: timings.clone(),
            throttles: gateway::Throttles::new(
                template.throttle.filter(|_| options.throttle),
                if options.throttle {
                    template.route_throttles.clone()
                } else {
                    std::collections::BTreeMap::new()
                },
            ),
        });
        tasks.push(tokio::spawn(serve(api, move |request| {
            let gateway = Arc::clone(&gateway);
            async move { gateway.handle(request).await }
        })));
        tasks.push(start::serve_provider(idp, Arc::clone(&provider)));
        tasks.extend(start::event_sources(
            &options,
            &template,
            &runtimes.functions,
            &mut account,
            &timings,
        ));
        tasks.push(account.trail_task);
        Ok(Self {
            api_url,
            issuer,
            aws: account.aws,
            aws_endpoint: account.trail_url,
            table: TABLE.to_owned(),
            movable_clock: options.movable_clock,
            state_dir: options.state_dir,
            timings,
            aws_calls: runtimes.aws_calls,
            signing_keys: account.signing_keys,
            environments: runtimes.environments,
            provider,
            functions: runtimes.functions,
            tasks,
            _federation: account.federation,
            pagerduty: account.pagerduty,
            slack: account.slack,
            _emulator: account.emulator,
        })
    }

    /// Slack's stand-in: the channels the Slack function posts to, and where clicks come from.
    pub fn slack(&self) -> &jit_local::SlackStandIn {
        &self.slack
    }

    /// A one-time code for Slack user `user` (added to the workspace), as typing `/jit link`
    /// in Slack gives it: the Slack function's answer to the signed command, through the API.
    pub async fn slack_link_code(&self, user: &str) -> Result<String, String> {
        let slack = self.slack();
        slack.add_users([jit_local::SlackMember::member(user, &slack.team_id)]);
        let command = slack.command(user, &slack.team_id, "link");
        let url = format!("{}/slack/interactions", self.api_url);
        let (status, answer) = jit_local::slack::post_form(&url, &command).await?;
        match answer.split('`').nth(1) {
            Some(code) if status == 200 => Ok(code.to_owned()),
            _ => Err(format!("`/jit link` gave no code: {status} {answer}")),
        }
    }

    /// PagerDuty's stand-in: who is on call, as the approver asks it.
    pub fn pagerduty(&self) -> &jit_local::PagerDutyStandIn {
        &self.pagerduty
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

    /// The file the functions' movable clock reads (its offset from the machine's time, in
    /// seconds), when the stack runs on one.
    pub fn clock_file(&self) -> Option<std::path::PathBuf> {
        self.movable_clock.then(|| self.state_dir.join(CLOCK_FILE))
    }

    /// Moves every function's time `secs` further ahead of the machine's (a stack started
    /// with a movable clock only): the next call each function serves sees it. The tokens the
    /// provider mints, the gateway and the emulator keep the machine's time.
    pub fn advance_clock(&self, secs: i64) -> Result<i64, String> {
        let file = self
            .clock_file()
            .ok_or("this stack was not started with a movable clock")?;
        move_clock_file(&file, secs)
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
