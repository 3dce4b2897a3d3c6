//! What every function does at start-up, one way: its settings from the environment, the
//! rules (a bad policy set stops the function with the file and line to fix), the AWS
//! configuration and the grant store on the table.

use std::sync::Arc;

use jit_core::policy::{PolicyError, Rules};
use jit_core::store::DynamoStore;

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

/// The setting `name` parsed by `parse`, which says what is wrong with a bad value.
pub fn parsed<T>(
    name: &'static str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, StartupError> {
    setting(name)
        .map(|value| parse(&value).map_err(|why| StartupError::Invalid { name, value, why }))
        .transpose()
}

/// What every function builds once per instance.
pub struct Foundation {
    /// The rules, from `JIT_POLICY_DIR`.
    pub rules: Arc<Rules>,
    /// The AWS configuration of the function's role.
    pub aws: aws_config::SdkConfig,
    /// The grant store on `TABLE_NAME`.
    pub store: DynamoStore,
}

/// Loads the rules, the AWS configuration and the store, or says what is wrong.
pub async fn foundation() -> Result<Foundation, StartupError> {
    let rules = Rules::load_from_env()?;
    let table = setting("TABLE_NAME").ok_or(StartupError::Missing { name: "TABLE_NAME" })?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
    Ok(Foundation {
        rules: Arc::new(rules),
        aws,
        store,
    })
}
