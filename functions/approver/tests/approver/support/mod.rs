//! Drives the approver with real-shaped stream batches and API Gateway events, against
//! DynamoDB on the local emulator and the example rules.

use jit_test_support::Who;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;
use jit_approver::{Approver, ApproverConfig, Notifier};
use jit_core::clock::{Clock, ManualClock, Timestamp};
use jit_core::domain::{Grant, GrantId, Ticket};
use jit_core::store::{DynamoStore, FailingStore, GrantStore, SignedStore};
use jit_local::{Claims, TestTable};
use serde_json::Value;

/// Wednesday 2027-01-13, 10:00 UTC.
pub use jit_test_support::{Reply, WEDNESDAY_10};

/// Notices sent, for assertions.
#[derive(Debug, Default, Clone)]
pub struct Recorded(pub Arc<Mutex<Vec<String>>>);

impl Notifier for Recorded {
    fn review_requested(&self, grant: &Grant, approvals_required: u32, _at: Timestamp) {
        self.0
            .lock()
            .unwrap()
            .push(format!("review {} {approvals_required}", grant.id));
    }
    fn break_glass(&self, grant: &Grant, _at: Timestamp) {
        self.0
            .lock()
            .unwrap()
            .push(format!("break-glass {}", grant.id));
    }
    fn extension_requested(&self, grant: &Grant, approvals_required: u32, _at: Timestamp) {
        self.0
            .lock()
            .unwrap()
            .push(format!("extension {} {approvals_required}", grant.id));
    }
}

pub struct Harness {
    pub approver: Approver<FailingStore<SignedStore<DynamoStore>>, Recorded>,
    pub clock: Arc<ManualClock>,
    pub table: TestTable,
    pub notices: Recorded,
    sequence: std::sync::atomic::AtomicU64,
}

impl Harness {
    pub async fn new(label: &str) -> Self {
        let fixture = jit_test_support::signed_table(label).await;
        let clock = Arc::new(ManualClock::at(WEDNESDAY_10));
        let notices = Recorded::default();
        let approver = Approver {
            store: FailingStore::new(fixture.store),
            rules: fixture.rules,
            clock: clock.clone(),
            notifier: notices.clone(),
            config: ApproverConfig::default(),
            keys: fixture.ring,
            on_call: Default::default(),
        };
        Self {
            approver,
            clock,
            table: fixture.table,
            notices,
            sequence: 100.into(),
        }
    }

    pub fn store(&self) -> &SignedStore<DynamoStore> {
        self.approver.store.inner()
    }

    /// Stores a new request as intake would, and returns it.
    pub async fn request(
        &self,
        who: &str,
        groups: &[&str],
        target: &str,
        duration: &str,
        ticket: Option<&str>,
        break_glass: bool,
    ) -> Grant {
        let mut new =
            jit_test_support::request(&self.approver.rules, who, groups, target, duration);
        new.ticket = ticket.map(|t| Ticket::parse(t).unwrap());
        new.break_glass = break_glass;
        jit_test_support::create(self.store(), new, self.clock.now()).await
    }

    /// The stored item of a grant, exactly as DynamoDB holds it.
    pub async fn raw_item(&self, id: &GrantId) -> HashMap<String, AttributeValue> {
        self.table
            .client
            .get_item()
            .table_name(&self.table.name)
            .key("pk", AttributeValue::S(format!("GRANT#{id}")))
            .key("sk", AttributeValue::S("GRANT".to_owned()))
            .send()
            .await
            .unwrap()
            .item
            .unwrap()
    }

    /// The INSERT stream record for a grant as it was created.
    pub async fn insert_record(&self, id: &GrantId) -> Value {
        let item = self.raw_item(id).await;
        let seq = self
            .sequence
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        jit_local::stream_insert(&item, seq)
    }

    /// Delivers a batch as Lambda would and returns what the function answered.
    pub async fn deliver(&self, records: Vec<Value>) -> Value {
        deliver_to(&self.approver, records).await
    }

    pub async fn grant(&self, id: &GrantId) -> Grant {
        self.store().get(id).await.unwrap().unwrap()
    }

    /// Sends an API request as `sub` in `groups` (or nobody) through the Lambda entry point.
    pub async fn call(&self, who: Who<'_>, route: &str, path: &str, body: Option<&str>) -> Reply {
        let claims = who.map(|(sub, groups)| Claims { sub, groups });
        let event = jit_local::http_api_event(claims, route, path, body, &[]);
        Reply::of_proxy(&invoke(&self.approver, event).await)
    }
}

/// Invokes `approver` with `event` as the runtime would: deserialized into its event type,
/// the answer serialized back.
pub async fn invoke<S: jit_core::store::GrantStore, N: jit_approver::Notifier>(
    approver: &Approver<S, N>,
    event: Value,
) -> Value {
    let event: jit_approver::ApproverEvent = serde_json::from_value(event).unwrap();
    serde_json::to_value(approver.handle_event(event).await).unwrap()
}

/// Delivers a stream batch of `records` to `approver`.
pub async fn deliver_to<S: jit_core::store::GrantStore, N: jit_approver::Notifier>(
    approver: &Approver<S, N>,
    records: Vec<Value>,
) -> Value {
    invoke(approver, jit_local::stream_batch(records)).await
}
