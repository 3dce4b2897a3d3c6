//! Local latency from `POST /requests` to usable credentials for an auto-approved request,
//! over HTTP against the local stack, and where the time goes (the gateway's own share, each
//! function's invocations, the stream's delay).
//!
//! `cargo bench -p jit-stack --bench latency` (`JIT_BENCH_FLOWS` sets how many, default 50).
// A benchmark may unwrap: a panic is how it reports a broken run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use jit_stack::demo::Api;
use jit_stack::{LogSink, Stack, StackOptions};
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64)).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// One auto-approved request to usable credentials: (time to ACTIVE, total).
async fn flow(api: &Api, token: &str) -> (Duration, Duration) {
    let started = Instant::now();
    let a = api
        .call(
            "POST",
            "/requests",
            Some(token),
            Some(json!({"target": "prod-logs-ro",
            "duration": "30m", "reason": "measuring request to credentials", "ticket": "INC-1"})),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.body["id"].as_str().unwrap().to_owned();
    loop {
        let g = api
            .call("GET", &format!("/requests/{id}"), Some(token), None)
            .await
            .unwrap();
        if g.body["state"] == "ACTIVE" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{}", g.body);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let active = started.elapsed();
    let c = api
        .call(
            "POST",
            &format!("/grants/{id}/credentials"),
            Some(token),
            None,
        )
        .await
        .unwrap();
    assert_eq!(c.status, 200, "{}", c.body);
    (active, started.elapsed())
}

#[tokio::main]
async fn main() {
    let flows: usize = std::env::var("JIT_BENCH_FLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let state_dir = jit_local::target_dir().join("jit-bench");
    let stack = Stack::start(StackOptions {
        port: 0,
        logs: LogSink::Dir(state_dir.join("logs")),
        state_dir,
        ..StackOptions::default()
    })
    .await
    .unwrap();
    let api = Api::new(&stack.api_url);
    // Warm one instance of each function first, as a deployed function would be.
    flow(&api, &stack.token("warm-up", &["sre"])).await;
    stack.timings.take();
    let mut totals = Vec::new();
    let mut to_active = Vec::new();
    for i in 0..flows {
        let (active, total) = flow(&api, &stack.token(&format!("bench-{i}"), &["sre"])).await;
        to_active.push(active);
        totals.push(total);
    }
    totals.sort();
    to_active.sort();
    println!("request -> usable credentials, auto-approved, {flows} flows one after another:");
    println!(
        "  total      p50 {}  p95 {}  max {}",
        ms(percentile(&totals, 50.0)),
        ms(percentile(&totals, 95.0)),
        ms(percentile(&totals, 100.0))
    );
    println!(
        "  to ACTIVE  p50 {}  p95 {}  (the client polls every 10 ms)",
        ms(percentile(&to_active, 50.0)),
        ms(percentile(&to_active, 95.0))
    );
    println!("where the time goes:");
    for (what, mut took) in stack.timings.take() {
        took.sort();
        println!(
            "  {what:<20} n {:>4}  p50 {:>9}  p95 {:>9}",
            took.len(),
            ms(percentile(&took, 50.0)),
            ms(percentile(&took, 95.0))
        );
    }
}
