//! Auto-approval cost: handler time per stream record and AWS calls per auto-approval, against
//! DynamoDB on the local emulator, with the in-memory store alongside for the handler's own
//! share. Prints numbers; asserts nothing. Run with
//! `cargo bench -p jit-approver --bench auto_approve`.
// A benchmark may unwrap: a failure is a crash with a message, which is what we want here.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::event::dynamodb::Event;
use jit_approver::{Approver, ApproverConfig, LogNotifier, Outcome};
use jit_core::clock::{ManualClock, Timestamp};
use jit_core::domain::{Grant, GrantId, NewRequest};
use jit_core::policy::Rules;
use jit_core::store::{DynamoStore, GrantStore, MemoryStore};
use jit_local::TestTable;
use serde_json::Value;

const AT: Timestamp = Timestamp::from_unix_seconds(1_799_834_400);
const RECORDS: usize = 500;
const BATCH: usize = 25;

fn rules() -> Arc<Rules> {
    Arc::new(jit_test_support::example_rules())
}

fn request(rules: &Rules, i: usize) -> NewRequest {
    let new =
        jit_test_support::request(rules, &format!("sre-{i}"), &["sre"], "prod-logs-ro", "30m");
    jit_test_support::with_ticket(new, "INC-42")
}

#[tokio::main]
async fn main() {
    let rules = rules();

    // DynamoDB on the emulator: the real cost, network and all.
    let table = TestTable::create("bench").await.unwrap();
    let store = DynamoStore::new(table.client.clone(), &table.name);
    let mut batches: Vec<Vec<Value>> = Vec::new();
    for i in 0..RECORDS {
        let creation = Grant::open(GrantId::generate(AT), request(&rules, i), AT);
        store.create(&creation, None).await.unwrap();
        let g = creation.grant();
        let item = table
            .client
            .get_item()
            .table_name(&table.name)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("GRANT#{}", g.id)),
            )
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S("GRANT".into()),
            )
            .send()
            .await
            .unwrap()
            .item
            .unwrap();
        if i % BATCH == 0 {
            batches.push(Vec::new());
        }
        batches
            .last_mut()
            .unwrap()
            .push(jit_local::stream_insert(&item, i as u64 + 1));
    }
    let approver = Approver {
        store,
        rules: rules.clone(),
        clock: Arc::new(ManualClock::at(AT)),
        notifier: LogNotifier,
        config: ApproverConfig::default(),
        keys: Arc::new(jit_core::trust::KeyRing::default().into()),
        on_call: Default::default(),
    };
    let events: Vec<Event> = batches
        .iter()
        .map(|b| serde_json::from_value(jit_local::stream_batch(b.clone())).unwrap())
        .collect();
    table.calls.take();
    let started = Instant::now();
    let mut failures = 0;
    for event in events.clone() {
        failures += approver
            .handle_stream(event)
            .await
            .batch_item_failures
            .len();
    }
    let elapsed = started.elapsed();
    let calls = table.calls.take();
    let total: u64 = calls.values().sum();
    println!(
        "emulator  records {RECORDS:>5}  batches of {BATCH}  per record {:>8.1} µs  AWS calls per auto-approval {:.2} {:?}  failures {failures}",
        elapsed.as_secs_f64() * 1e6 / RECORDS as f64,
        total as f64 / RECORDS as f64,
        calls,
    );

    // The same records redelivered: every write is refused, nothing changes.
    table.calls.take();
    let started = Instant::now();
    for event in events {
        approver.handle_stream(event).await;
    }
    let calls = table.calls.take();
    println!(
        "redelivery per record {:>8.1} µs  AWS calls per record {:.2} {:?}",
        started.elapsed().as_secs_f64() * 1e6 / RECORDS as f64,
        calls.values().sum::<u64>() as f64 / RECORDS as f64,
        calls,
    );

    // The in-memory store: the handler's own time (rules, image decoding, the change).
    let memory = Approver {
        store: MemoryStore::new(),
        rules,
        clock: Arc::new(ManualClock::at(AT)),
        notifier: LogNotifier,
        config: ApproverConfig::default(),
        keys: Arc::new(jit_core::trust::KeyRing::default().into()),
        on_call: Default::default(),
    };
    let mut grants: Vec<Grant> = Vec::new();
    for i in 0..RECORDS {
        let creation = Grant::open(GrantId::generate(AT), request(&memory.rules, i), AT);
        memory.store.create(&creation, None).await.unwrap();
        grants.push(creation.grant().clone());
    }
    let started = Instant::now();
    let mut approved = 0;
    for g in &grants {
        if memory.evaluate(g).await.unwrap() == Outcome::AutoApproved {
            approved += 1;
        }
    }
    println!(
        "in memory records {RECORDS:>5}  per record {:>8.1} µs  ({approved} auto-approved)",
        started.elapsed().as_secs_f64() * 1e6 / RECORDS as f64,
    );
}
