//! What every function does at start-up, one way: its settings from the environment, the
//! rules (a bad policy set stops the function with the file and line to fix), the AWS
//! configuration, the grant store on the table, signing with the function's own key, and the
//! functions' public keys, read when first needed (or ahead, beside the first invocation).

use std::sync::Arc;
use std::time::{Duration, Instant};

use jit_core::clock::{Clock, STACK_CLOCK_ENV, clock_from_env};
use jit_core::domain::Service;
use jit_core::policy::{PolicyError, Rules};
use jit_core::store::{DynamoStore, SignedStore};
use jit_core::trust::{CheckpointPeriod, KmsKey, PublicKeys, kms_public_keys};

/// Why a function could not start; each says what to fix.
#[derive(thiserror::Error)]
pub enum StartupError {
    /// The rules could not be loaded.
    #[error("policies: {0}")]
    Policies(#[from] PolicyError),
    /// A required setting is missing.
    #[error("{name} is not set")]
    Missing {
        /// The variable.
        name: &'static str,
    },
    /// Loading the policy set stopped without an answer.
    #[error("policies: loading them stopped: {0}")]
    Panicked(String),
    /// A setting has a value the function cannot use.
    #[error("{name} `{value}` {why}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        why: String,
    },
}

/// Shown as its message: a `main` that returns it prints `Error: ` and what to fix.
impl std::fmt::Debug for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// A setting from the environment; `None` when unset or empty.
pub fn setting(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The function's clock: the machine's, or in the local stack only, the stack's movable one
/// ([`jit_core::clock::STACK_CLOCK_ENV`]); set anywhere else, the function does not start.
pub fn clock() -> Result<Arc<dyn Clock>, StartupError> {
    clock_from_env(setting).map_err(|why| StartupError::Invalid {
        name: STACK_CLOCK_ENV,
        value: setting(STACK_CLOCK_ENV).unwrap_or_default(),
        why,
    })
}

/// The setting `name` parsed by `parse`, which says what is wrong with a bad value.
pub fn parsed<T>(
    name: &'static str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, StartupError> {
    setting(name)
        .map(|value| parse(&value).map_err(|why| StartupError::Invalid { name, value, why }))
        .transpose()
}

/// How the trail is cut into checkpointed periods: `JIT_CHECKPOINT_PERIOD_SECS` (60 to 86400,
/// dividing a day) and `JIT_CHECKPOINT_GRACE_SECS` (at least 1), hourly with five minutes'
/// grace when unset. The sweeper signs them; intake says them in each export, so a verifier
/// knows which periods must have a checkpoint.
pub fn checkpoint_period() -> Result<CheckpointPeriod, StartupError> {
    let defaults = CheckpointPeriod::HOURLY;
    let length = parsed("JIT_CHECKPOINT_PERIOD_SECS", |text| {
        text.parse::<i64>()
            .ok()
            .filter(|n| CheckpointPeriod::valid_length(*n))
            .ok_or_else(|| "must be 60 to 86400 seconds and divide a day".to_owned())
    })?
    .unwrap_or(defaults.length_secs);
    let grace = parsed("JIT_CHECKPOINT_GRACE_SECS", |text| {
        text.parse::<i64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| "must be a whole number of seconds, at least 1".to_owned())
    })?
    .unwrap_or(defaults.grace_secs);
    Ok(CheckpointPeriod {
        length_secs: length,
        grace_secs: grace,
    })
}

/// What every function builds once per instance.
pub struct Foundation {
    /// The rules, from `JIT_POLICY_DIR`.
    pub rules: Arc<Rules>,
    /// The AWS configuration of the function's role.
    pub aws: aws_config::SdkConfig,
    /// The grant store on `TABLE_NAME`, signing with the function's key.
    pub store: SignedStore<DynamoStore>,
    /// The four functions' public keys, read once, when first needed: init does not wait for
    /// them. A function whose invocations verify evidence starts reading them at once with
    /// [`Foundation::read_keys_ahead`].
    pub keys: Arc<PublicKeys>,
    /// Where time comes from: the machine's clock (the local stack's movable one, there only).
    pub clock: Arc<dyn Clock>,
}

impl Foundation {
    /// Starts reading the public keys in the background, so the first invocation that needs
    /// them finds them read or on their way instead of init waiting for them. A read that
    /// fails here is logged; the invocation that needs the keys reads them again and, should
    /// that fail too, refuses with nothing done.
    pub fn read_keys_ahead(&self) {
        let keys = Arc::clone(&self.keys);
        tokio::spawn(async move {
            let started = Instant::now();
            match keys.ring().await {
                Ok(_) => tracing::info!(public_keys_ms = ms(started.elapsed()), "public keys read"),
                Err(e) => {
                    tracing::warn!(error = %e, "the public keys could not be read ahead; the first invocation that needs them reads them again")
                }
            }
        });
    }
}

/// The setting naming each function's KMS key.
pub fn key_setting(service: Service) -> &'static str {
    match service {
        Service::Intake => "JIT_KEY_INTAKE",
        Service::Approver => "JIT_KEY_APPROVER",
        Service::Issuer => "JIT_KEY_ISSUER",
        Service::Sweeper => "JIT_KEY_SWEEPER",
    }
}

/// How long an AWS call may take: an attempt that gets no answer in 2 s is abandoned and
/// retried (the SDK's standard retries, 3 attempts), and the whole call gives up after 7 s,
/// so a call that hangs ends as a retryable 503 from the function itself, well inside API
/// Gateway's and the functions' 10 s, rather than as an instance killed at its timeout
/// (without this, the SDK waits for an answer as long as the Lambda lives).
pub fn aws_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(1))
        .operation_attempt_timeout(std::time::Duration::from_secs(2))
        .operation_timeout(std::time::Duration::from_secs(7))
        .build()
}

/// Loads the rules, the AWS configuration and the store of the function `me`, or says what is
/// wrong. The policy set is parsed and validated on a blocking thread while the AWS
/// configuration loads, since neither waits for the other; a bad policy set is still the error
/// reported first. How long each part took is logged once, as `init phases`. The public keys
/// are not read here (see [`Foundation::keys`]): a missing key setting still stops the
/// function.
pub async fn foundation(me: Service) -> Result<Foundation, StartupError> {
    let started = Instant::now();
    let clock = clock()?;
    let rules = tokio::task::spawn_blocking(move || {
        let rules = Rules::load_from_env();
        (rules, started.elapsed())
    });
    let (rules, rest) = tokio::join!(rules, aws_and_store(me));
    let (rules, policies_took) = rules.map_err(|e| StartupError::Panicked(e.to_string()))?;
    let rules = rules?;
    let (aws, keys, store, aws_config_took) = rest?;
    tracing::info!(
        policies_ms = ms(policies_took),
        aws_config_ms = ms(aws_config_took),
        total_ms = ms(started.elapsed()),
        "init phases"
    );
    Ok(Foundation {
        rules: Arc::new(rules),
        aws,
        store,
        keys: Arc::new(keys),
        clock,
    })
}

/// Milliseconds, to a tenth.
pub fn ms(took: Duration) -> f64 {
    (took.as_secs_f64() * 10_000.0).round() / 10.0
}

/// The settings, the AWS configuration (and how long it took to load), the functions' public
/// keys, unread, and the signed store of function `me`.
async fn aws_and_store(
    me: Service,
) -> Result<
    (
        aws_config::SdkConfig,
        PublicKeys,
        SignedStore<DynamoStore>,
        Duration,
    ),
    StartupError,
> {
    let table = setting("TABLE_NAME").ok_or(StartupError::Missing { name: "TABLE_NAME" })?;
    let mut key_ids = Vec::new();
    for service in Service::ALL {
        let name = key_setting(service);
        let id = setting(name).ok_or(StartupError::Missing { name })?;
        key_ids.push((service, id));
    }
    let own = key_ids
        .iter()
        .find(|(s, _)| *s == me)
        .map(|(_, id)| id.clone())
        .unwrap_or_default();
    let started = Instant::now();
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(aws_timeouts())
        .load()
        .await;
    let aws_config = started.elapsed();
    let kms = aws_sdk_kms::Client::new(&aws);
    let keys = kms_public_keys(kms.clone(), key_ids);
    let store = SignedStore::new(
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table),
        Arc::new(KmsKey::new(kms, me, own)),
    );
    Ok((aws, keys, store, aws_config))
}
