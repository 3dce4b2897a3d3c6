//! A bounded load run on loopback: `JIT_LOAD_REQUESTS` (default 1,000) people,
//! `JIT_LOAD_CONCURRENCY` (default 32) at a time, each asking for access (auto-approved),
//! waiting for it as `jit request --wait` does (its back-off) and pulling credentials, against
//! the local stack with up to 4 instances per function and the template's route throttle (the
//! client sends a throttled request again with back-off, as the command and the page do); at
//! most `JIT_LOAD_SECONDS` (default 300) in all. Prints throughput, latency percentiles per
//! route as the person saw them (retries included), the gateway's 429s per route, and answers
//! by status; then checks that nothing was lost: every accepted request is in the table with
//! its chain verifying under the functions' keys, and every credential pull that answered 200
//! has its SESSION_ISSUED record. A loss panics (the run is broken); times assert nothing.
//! `cargo bench -p jit-stack --bench load`.
// A benchmark may unwrap: a panic is how it reports a broken run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jit_core::domain::GrantId;
use jit_core::store::{DynamoStore, GrantStore};
use jit_stack::demo::Api;
use jit_stack::{LogSink, Stack, StackOptions};
use serde_json::json;
use tokio::sync::Semaphore;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64)).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Default)]
struct Person {
    created: Option<(u16, Duration)>,
    grant: Option<String>,
    pulled: Option<(u16, Duration)>,
    /// Each look at the request while it was pending: (status, time).
    looks: Vec<(u16, Duration)>,
}

async fn one(api: Api, token: String, deadline: Instant) -> Person {
    let mut p = Person::default();
    let t = Instant::now();
    let Ok(a) = api
        .call(
            "POST",
            "/requests",
            Some(&token),
            Some(json!({"target": "prod-logs-ro",
            "duration": "30m", "reason": "load test of the broker", "ticket": "INC-1"})),
        )
        .await
    else {
        return p;
    };
    p.created = Some((a.status, t.elapsed()));
    if a.status != 201 {
        return p;
    }
    let id = a.body["id"].as_str().unwrap().to_owned();
    p.grant = Some(id.clone());
    for polls in 0.. {
        tokio::time::sleep(jit_api::poll_interval(polls)).await;
        let t = Instant::now();
        let Ok(g) = api
            .call("GET", &format!("/requests/{id}"), Some(&token), None)
            .await
        else {
            return p;
        };
        p.looks.push((g.status, t.elapsed()));
        if g.body["state"] == "ACTIVE" {
            break;
        }
        if Instant::now() > deadline {
            return p;
        }
    }
    let t = Instant::now();
    if let Ok(c) = api
        .call(
            "POST",
            &format!("/grants/{id}/credentials"),
            Some(&token),
            None,
        )
        .await
    {
        p.pulled = Some((c.status, t.elapsed()));
    }
    p
}

#[tokio::main]
async fn main() {
    let requests = setting("JIT_LOAD_REQUESTS", 1000);
    let concurrency = setting("JIT_LOAD_CONCURRENCY", 32);
    let seconds = setting("JIT_LOAD_SECONDS", 300);
    let state_dir = jit_local::target_dir().join("jit-bench-load");
    let stack = Stack::start(StackOptions {
        port: 0,
        logs: LogSink::Dir(state_dir.join("logs")),
        state_dir,
        max_instances: 4,
        ..StackOptions::default()
    })
    .await
    .unwrap();
    let api = Api::new(&stack.api_url);
    let deadline = Instant::now() + Duration::from_secs(seconds as u64);
    let gate = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..requests {
        let token = stack.token(&format!("load-{i}"), &["sre"]);
        let (api, gate) = (api.clone(), Arc::clone(&gate));
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            if Instant::now() > deadline {
                return Person::default();
            }
            one(api, token, deadline).await
        }));
    }
    let mut people = Vec::new();
    for t in tasks {
        people.push(t.await.unwrap());
    }
    let took = started.elapsed();

    let mut statuses = BTreeMap::<String, usize>::new();
    let (mut create_times, mut pull_times, mut look_times) = (Vec::new(), Vec::new(), Vec::new());
    for p in &people {
        for (s, d) in &p.looks {
            *statuses
                .entry(format!("GET /requests/{{id}} {s}"))
                .or_default() += 1;
            if *s == 200 {
                look_times.push(*d);
            }
        }
        match p.created {
            Some((s, d)) => {
                *statuses.entry(format!("POST /requests {s}")).or_default() += 1;
                if s == 201 {
                    create_times.push(d);
                }
            }
            None => {
                *statuses
                    .entry("POST /requests: no answer or not run".into())
                    .or_default() += 1
            }
        }
        if let Some((s, d)) = p.pulled {
            *statuses
                .entry(format!("POST /grants/{{id}}/credentials {s}"))
                .or_default() += 1;
            if s == 200 {
                pull_times.push(d);
            }
        }
    }
    create_times.sort();
    pull_times.sort();
    look_times.sort();
    let timings = stack.timings.take();
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    let flows = pull_times.len();
    println!(
        "{requests} people, {concurrency} at a time, up to 4 instances per function: {flows} \
         request -> approval -> credentials flows in {:.1} s ({:.1} flows/s, {:.1} API calls/s \
         counting the status polls)",
        took.as_secs_f64(),
        flows as f64 / took.as_secs_f64(),
        timings.get("gateway").map_or(0, Vec::len) as f64 / took.as_secs_f64(),
    );
    for (label, times) in [
        ("POST /requests", &create_times),
        ("GET /requests/{id}", &look_times),
        ("POST /grants/{id}/credentials", &pull_times),
    ] {
        println!(
            "  {label:<30} n {:>5}  p50 {:>9}  p95 {:>9}  p99 {:>9}  max {:>9}",
            times.len(),
            ms(percentile(times, 50.0)),
            ms(percentile(times, 95.0)),
            ms(percentile(times, 99.0)),
            ms(percentile(times, 100.0)),
        );
    }
    println!("  answers: {statuses:?}");
    let throttled: Vec<String> = timings
        .iter()
        .filter_map(|(what, n)| Some(format!("{} {}", what.strip_prefix("throttled ")?, n.len())))
        .collect();
    println!(
        "  429s the gateway answered (each sent again by the client): {}",
        if throttled.is_empty() {
            "none".to_owned()
        } else {
            throttled.join(", ")
        }
    );
    for f in ["intake", "approver", "issuer"] {
        if let Some(runtime) = stack.function(f) {
            println!(
                "  {f:<9} {} invocations on {} instances",
                runtime.invocations(),
                runtime.instances_started()
            );
        }
    }

    // Nothing lost: every accepted request and every pull that answered 200 is on record.
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.aws), &stack.table);
    let ring = stack.key_ring().await.unwrap();
    let mut checked = 0;
    for p in &people {
        let Some(id) = &p.grant else { continue };
        let (grant, records) = store
            .evidence(&GrantId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("accepted request {id} is not in the table"));
        jit_core::trust::check_grant(&grant, &records, &ring)
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        let issued = records
            .iter()
            .filter(|r| r.action.as_str() == "SESSION_ISSUED")
            .count();
        if matches!(p.pulled, Some((200, _))) {
            assert_eq!(issued, 1, "{id}: a pull answered 200 without its record");
        }
        checked += 1;
    }
    println!(
        "  nothing lost: {checked} accepted requests in the table, each chain verified, every 200 pull recorded"
    );
}
