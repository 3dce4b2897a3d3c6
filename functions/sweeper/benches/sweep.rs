//! Sweep cost against DynamoDB on the local emulator: the time and AWS calls to settle the due
//! grants, first alone, then among many grants that are not due. The calls must not grow with
//! the not-due ones (the due index is queried by time; nothing is scanned). Prints numbers;
//! asserts nothing. Run with `cargo bench -p jit-sweeper --bench sweep`
//! (`JIT_BENCH_DUE` and `JIT_BENCH_NOT_DUE` change the sizes; defaults 10,000 and 100,000).
// A benchmark may unwrap: a failure is a crash with a message, which is what we want here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jit_core::clock::{ManualClock, Timestamp};
use jit_core::domain::{Creation, Grant, GrantId};
use jit_core::policy::Rules;
use jit_core::store::DynamoStore;
use jit_local::TestTable;
use jit_sweeper::{IamPolicies, Sweeper, SweeperConfig};

const NOW: Timestamp = Timestamp::from_unix_seconds(1_799_834_400);

fn size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A pending request by `user`, due (decide-by passed) or due in a day.
fn request(rules: &Rules, user: &str, due: bool) -> Creation {
    let created = NOW.plus_secs(-3600);
    let mut new = jit_test_support::request(rules, user, &["engineers"], "prod-deploy", "1h");
    new.decision_window_secs = if due { 1800 } else { 86_400 };
    Grant::open(GrantId::generate(created), new, created)
}

async fn run(label: &str, due: usize, not_due: usize) {
    let rules = Arc::new(jit_test_support::example_rules());
    let table = TestTable::create(label).await.unwrap();
    let store = DynamoStore::new(table.client.clone(), &table.name);
    let started = Instant::now();
    let mut batch = Vec::new();
    for i in 0..due + not_due {
        batch.push(request(&rules, &format!("user-{i}"), i < due));
        if batch.len() == 5000 {
            store.import(&batch).await.unwrap();
            batch.clear();
        }
    }
    store.import(&batch).await.unwrap();
    let seeded = started.elapsed();
    let config = jit_local::Emulator::shared().unwrap().sdk_config().await;
    let sweeper = Sweeper {
        store,
        rules,
        clock: Arc::new(ManualClock::at(NOW)),
        policies: IamPolicies::new(&config),
        config: SweeperConfig {
            concurrency: 16,
            deadline_margin: Duration::ZERO,
            ..SweeperConfig::default()
        },
        archive: None,
    };
    table.calls.take();
    let started = Instant::now();
    let report = sweeper
        .sweep(Instant::now() + Duration::from_secs(3600))
        .await;
    let elapsed = started.elapsed();
    let calls: BTreeMap<String, u64> = table.calls.take();
    let total: u64 = calls.values().sum();
    println!(
        "{label:<8} due {due:>6}  not due {not_due:>7}  (seeded in {:>5.1} s)  sweep {:>7.1} s  {:>6.2} ms per due grant  AWS calls {total} {calls:?}  timed out {}  failures {}",
        seeded.as_secs_f64(),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3 / due.max(1) as f64,
        report.timed_out,
        report.failures.len(),
    );
}

#[tokio::main]
async fn main() {
    let due = size("JIT_BENCH_DUE", 10_000);
    let not_due = size("JIT_BENCH_NOT_DUE", 100_000);
    run("alone", due, 0).await;
    run("among", due, not_due).await;
}
