//! The local AWS: the emulator on loopback, the one model of the templates (`cfn`), the table
//! built from `template.yaml`, an AWS call counter, and what the tests install
//! (`prerequisites`), and the one loopback HTTP server the stand-ins are built on (`http`). Tests and benchmarks use these; the local stack (`jit-stack`)
//! command is built on them.

mod calls;
mod canned;
pub mod cfn;
mod emulator;
mod events;
mod federation;
pub mod http;
mod pagerduty;
pub mod prerequisites;
pub mod slack;
mod table;

use std::sync::atomic::{AtomicU32, Ordering};

pub use calls::CallCounter;
pub use canned::CannedEndpoint;
pub use emulator::{
    BROKER_ACCOUNT, Emulator, EmulatorError, ensure_installed, target_dir, workspace_root,
};
pub use events::{
    Claims, anonymous_event, bearer, dynamodb_json, http_api_event, stream_batch, stream_insert,
    stream_record,
};
pub use federation::{FederationLog, FederationStandIn};
pub use pagerduty::{PagerDutyStandIn, PagerDutyState, RosterEntry};
pub use prerequisites::ensure_venv;
pub use slack::{SignedInteraction, SlackMember, SlackStandIn, SlackState};
pub use table::{IndexDefinition, KeyAttribute, TABLE_LOGICAL_ID, TableDefinition, TableError};

/// A fresh table on the shared emulator, made from the template, for one test.
#[derive(Debug, Clone)]
pub struct TestTable {
    /// A DynamoDB client for the emulator that counts its calls in `calls`.
    pub client: aws_sdk_dynamodb::Client,
    /// The table's name, unique within this process's emulator.
    pub name: String,
    /// Every call `client` sends.
    pub calls: CallCounter,
}

/// Why a test table could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TestTableError {
    /// The emulator could not be installed or started.
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
    /// The template or the table creation failed.
    #[error(transparent)]
    Table(#[from] TableError),
}

impl TestTable {
    /// Writes `value` as the item `pk`/`sk`, straight into the table as someone with write
    /// access could, past every check of the code: how tests play an insider.
    pub async fn put_raw<T: serde::Serialize>(
        &self,
        pk: &str,
        sk: &str,
        value: &T,
    ) -> Result<(), String> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let mut item: std::collections::HashMap<String, AttributeValue> =
            serde_dynamo::to_item(value).map_err(|e| e.to_string())?;
        item.insert("pk".into(), AttributeValue::S(pk.to_owned()));
        item.insert("sk".into(), AttributeValue::S(sk.to_owned()));
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
    }

    /// Creates a table of its own for one test, so tests can run in parallel on one emulator.
    pub async fn create(label: &str) -> Result<Self, TestTableError> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let emulator = tokio::task::spawn_blocking(Emulator::shared)
            .await
            .map_err(|e| EmulatorError::StartFailed(e.to_string()))??;
        let config = emulator.sdk_config().await;
        let calls = CallCounter::new();
        let client = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&config)
                .interceptor(calls.clone())
                .build(),
        );
        let name = format!(
            "jit-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        TableDefinition::from_workspace_template()?
            .create(&client, &name)
            .await?;
        calls.take();
        Ok(Self {
            client,
            name,
            calls,
        })
    }
}

/// A policy directory of a test's own, `dir` under the target directory: the example files
/// named in `copied`, and `written` (a file name and its text) beside them, such as a policy
/// that does not validate.
pub fn policy_dir(
    dir: &str,
    copied: &[&str],
    written: (&str, &str),
) -> std::io::Result<std::path::PathBuf> {
    let examples = workspace_root().join("infra/policies");
    let dir = target_dir().join(dir);
    std::fs::create_dir_all(&dir)?;
    for file in copied {
        std::fs::copy(examples.join(file), dir.join(file))?;
    }
    std::fs::write(dir.join(written.0), written.1)?;
    Ok(dir)
}
