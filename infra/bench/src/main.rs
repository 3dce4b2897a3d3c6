//! The benchmark command: `cargo run --release -p jit-bench` (from the workspace root).
//!
//! Builds the five functions in release, then measures in one run on this machine, and writes
//! `BENCHMARKS.md`:
//! - cold starts of each function side by side with (a) a bare `lambda_runtime` function,
//!   (b) the same with a DynamoDB client doing one `GetItem`, and (c) a Python handler doing
//!   that `GetItem` with boto3 under awslambdaric: process start to the first Runtime API
//!   `next`, the first invocation, and peak RSS after it, the median of `JIT_BENCH_STARTS`
//!   (default 10) starts each, taken in turns so that noise falls on all alike. Every one is
//!   served by the local stack's own Runtime API (`FunctionRuntime`) against the same
//!   emulator, and each function's init is broken down by the `init phases` line it logs;
//!   `--cold-starts-only` prints that section and stops, leaving `BENCHMARKS.md` as it is;
//! - each function's release binary and zipped size, here and (unless `--no-arm64`) for arm64
//!   as `sam build` makes them (`infra/deploy/check`);
//! - the other benchmarks' own reports (`cargo bench`): latency and AWS calls per flow over
//!   HTTP, Cedar decisions, sweeps, auto-approval and issuance.

// A benchmark may unwrap: a failure is a crash with a message, which is what we want here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const FUNCTIONS: [&str; 6] = [
    "intake", "approver", "issuer", "sweeper", "activity", "slack",
];

/// The package that builds function `f`'s binary: the Slack function is a binary of the
/// approver's crate.
fn package_of(f: &str) -> String {
    match f {
        "slack" => "jit-approver".to_owned(),
        other => format!("jit-{other}"),
    }
}

/// What one start measured.
#[derive(Debug, Clone)]
struct Start {
    /// Process start to its first `next`.
    init: Duration,
    /// The first event handed over to its response.
    first: Duration,
    /// Peak resident memory after the first invocation, in KiB (`VmHWM`).
    rss_kib: u64,
    /// The function's own `init phases` line (its fields, in ms), when it logs one.
    phases: Option<Value>,
}

/// The `init phases` line's fields (milliseconds) in a function's log, if it wrote one, with
/// the `public keys read` line's (the background read) merged in.
fn init_phases(log: &str) -> Option<Value> {
    let line_of = |message: &str| {
        log.lines().find_map(|line| {
            let json = line.split_once("] ").map_or(line, |(_, rest)| rest);
            let entry: Value = serde_json::from_str(json).ok()?;
            let fields = entry.get("fields")?;
            (fields.get("message")? == message).then(|| fields.clone())
        })
    };
    let mut phases = line_of("init phases")?;
    if let (Some(all), Some(Value::Object(keys))) =
        (phases.as_object_mut(), line_of("public keys read"))
    {
        all.extend(keys.into_iter().filter(|(k, _)| k.ends_with("_ms")));
    }
    Some(phases)
}

/// The median of each `init phases` part over `starts`, as a table row's cells.
fn phase_cells(starts: &[Start]) -> Option<String> {
    starts.iter().find(|s| s.phases.is_some())?;
    let parts = ["policies_ms", "aws_config_ms", "total_ms", "public_keys_ms"];
    let cells: Vec<String> = parts
        .iter()
        .map(|part| {
            let values: Vec<f64> = starts
                .iter()
                .filter_map(|s| s.phases.as_ref()?.get(part)?.as_f64())
                .collect();
            if values.is_empty() {
                "not read".to_owned()
            } else {
                format!("{:.1} ms", median(values))
            }
        })
        .collect();
    Some(cells.join(" | "))
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One cold start of `program` with `env`, given `event`, through the local stack's own
/// Runtime API (the one the functions run on there): a fresh runtime whose one instance is
/// started by the invocation, timed from the spawn to its first `next` (init) and from the
/// event's hand-over to its response (first invocation), its peak memory read before it stops.
async fn start_once(
    program: &[String],
    env: &[(String, String)],
    cwd: &Path,
    event: Value,
) -> Start {
    let def = jit_stack::FunctionDef {
        logical_id: "BenchFunction".into(),
        binary: "bench".into(),
        timeout: Duration::from_secs(60),
        memory_mb: 128,
        environment: BTreeMap::new(),
        routes: vec![],
        stream: None,
        schedule: None,
        bus_rule: None,
    };
    let launch = jit_stack::Launch {
        program: PathBuf::from(&program[0]),
        args: program[1..].to_vec(),
        cwd: Some(cwd.to_owned()),
    };
    static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("jit-bench-logs/{}-{n}", std::process::id()));
    let logs = jit_stack::LogSink::Dir(dir.clone());
    let runtime = jit_stack::FunctionRuntime::launching(def, launch, env.to_vec(), logs, 1);
    if let Err(e) = runtime.invoke(event).await {
        panic!("{} failed: {e}", program.join(" "));
    }
    let start = runtime.starts()[0];
    let rss_kib = peak_rss_kib(start.pid.unwrap());
    runtime.stop();
    // The log is complete once the process has ended: wait a moment for its last lines.
    let mut phases = None;
    for _ in 0..20 {
        let log = std::fs::read_to_string(dir.join("bench.log")).unwrap_or_default();
        phases = init_phases(&log);
        if phases.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Start {
        init: start.ready.unwrap() - start.spawned,
        first: start.first_answered.unwrap() - start.first_handed.unwrap(),
        rss_kib,
        phases,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.stderr(Stdio::inherit()).output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn zipped_size(path: &Path) -> u64 {
    let script = "import io,sys,zipfile\nb=io.BytesIO()\nz=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED)\nz.write(sys.argv[1],'bootstrap')\nz.close()\nprint(len(b.getvalue()))";
    run(Command::new("python3").args(["-c", script]).arg(path))
        .trim()
        .parse()
        .unwrap()
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or("?".into(), |kib| {
            format!("{:.0} GiB", kib as f64 / 1024.0 / 1024.0)
        });
    let kernel = run(Command::new("uname").arg("-srm")).trim().to_owned();
    let rustc = run(Command::new("rustc").arg("--version"))
        .trim()
        .to_owned();
    format!("{cpu}, {cores} cores, {memory} memory; {kernel}; {rustc}")
}

#[tokio::main]
async fn main() {
    let arm64 = !std::env::args().any(|a| a == "--no-arm64");
    let starts: usize = std::env::var("JIT_BENCH_STARTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let root = jit_local::workspace_root();
    let target = jit_local::target_dir();
    let begun = Instant::now();
    let mut report = String::new();

    eprintln!("== building the functions in release");
    let mut build = Command::new("cargo");
    build
        .current_dir(&root)
        .args(["build", "--release", "--quiet"]);
    for f in FUNCTIONS {
        build.args(["-p", &package_of(f)]);
    }
    build.args(["-p", "jit-bench", "--bins"]);
    run(&mut build);
    let release = target.join("release");

    eprintln!("== the Python baseline's virtualenv");
    let python =
        jit_local::ensure_venv("bench-python-venv", "infra/bench/python/requirements.txt").unwrap();

    eprintln!("== a stack for the emulator, table, keys and roles");
    let state_dir = target.join("jit-bench-coldstart");
    let stack = jit_stack::Stack::start(jit_stack::StackOptions {
        port: 0,
        logs: jit_stack::LogSink::Dir(state_dir.join("logs")),
        state_dir,
        sweep_every: Some(Duration::from_secs(24 * 3600)),
        ..jit_stack::StackOptions::default()
    })
    .await
    .unwrap();
    let base_env: Vec<(String, String)> = stack
        .environment("intake")
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("AWS_") || k == "TABLE_NAME" || k == "PATH" || k == "HOME")
        .cloned()
        .collect();
    // One grant, auto-approved through the stack, that every first invocation works on.
    let api = jit_stack::demo::Api::new(&stack.api_url);
    let token = stack.token("bench", &["sre"]);
    let asked = api
        .call(
            "POST",
            "/requests",
            Some(&token),
            Some(
                json!({"target": "prod-logs-ro", "duration": "30m", "ticket": "INC-1",
                "reason": "cold-start benchmark"}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(asked.status, 201, "{}", asked.body);
    let grant = asked.body["id"].as_str().unwrap().to_owned();
    api.wait_for(&grant, &token, Duration::from_secs(60), |g| {
        g.state.as_str() == "ACTIVE"
    })
    .await
    .unwrap();
    let requester = jit_local::Claims {
        sub: "bench",
        groups: &["sre"],
    };
    let reviewer = jit_local::Claims {
        sub: "bench-reviewer",
        groups: &["sre"],
    };
    // A Slack user linked to an SRE, whose click on the (active) grant the Slack function
    // decides: each start gets a click signed now (a signature seen before is a replay).
    let slack = stack.slack();
    let code = stack.slack_link_code("U0BENCH").await.unwrap();
    let linker = stack.token("bench-reviewer", &["sre"]);
    let linked = api
        .call(
            "POST",
            "/slack/links",
            Some(&linker),
            Some(json!({ "code": code })),
        )
        .await
        .unwrap();
    assert_eq!(linked.status, 201, "{}", linked.body);
    let click: Box<dyn Fn() -> Value> = {
        let (secret, team, grant) = (
            slack.signing_secret.clone(),
            slack.team_id.clone(),
            grant.clone(),
        );
        Box::new(move || {
            let body = jit_local::slack::click_body("U0BENCH", &team, "jit_approve", &grant);
            let timestamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                .to_string();
            let signature = jit_local::slack::slack_signature(&secret, &timestamp, &body);
            jit_local::http_api_event(
                None,
                "POST /slack/interactions",
                "/slack/interactions",
                Some(&body),
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("x-slack-request-timestamp", &timestamp),
                    ("x-slack-signature", &signature),
                ],
            )
        })
    };
    let events: BTreeMap<&str, Value> = BTreeMap::from([
        (
            "intake",
            jit_local::http_api_event(
                Some(requester),
                "GET /requests/{id}",
                &format!("/requests/{grant}"),
                None,
                &[],
            ),
        ),
        (
            "approver",
            jit_local::http_api_event(
                Some(reviewer),
                "POST /requests/{id}/reviews",
                &format!("/requests/{grant}/reviews"),
                Some(r#"{"decision":"approve"}"#),
                &[("content-type", "application/json")],
            ),
        ),
        (
            "issuer",
            jit_local::http_api_event(
                Some(requester),
                "POST /grants/{id}/credentials",
                &format!("/grants/{grant}/credentials"),
                None,
                &[],
            ),
        ),
        ("sweeper", jit_stack::scheduled_event()),
        // A read made with the grant's session (the issuer's starts issued sessions before),
        // as the broker's bus delivers CloudTrail's record of it.
        ("activity", {
            let session = jit_stack::trail::Session::of_grant(
                "arn:aws:iam::333333333333:role/jit/prod-logs-ro",
                "bench",
                &grant,
            )
            .unwrap();
            let call = jit_stack::trail::RecordedCall {
                service: "logs".into(),
                operation: "FilterLogEvents".into(),
                region: "us-east-1".into(),
                access_key: "ASIABENCH".into(),
                error_code: None,
                resources: vec![],
                user_agent: Some("aws-cli/2".into()),
            };
            jit_stack::trail::api_call_event(&session, &call, "2026-12-06T00:00:00Z")
        }),
    ]);

    struct Subject {
        name: String,
        program: Vec<String>,
        env: Vec<(String, String)>,
        cwd: PathBuf,
        event: Box<dyn Fn() -> Value>,
    }
    let fixed = |event: Value| -> Box<dyn Fn() -> Value> { Box::new(move || event.clone()) };
    let mut subjects = Vec::new();
    let mut click = Some(click);
    for f in FUNCTIONS {
        let event = match events.get(f) {
            Some(e) => fixed(e.clone()),
            None => click.take().unwrap(),
        };
        subjects.push(Subject {
            name: f.to_owned(),
            program: vec![release.join(f).display().to_string()],
            env: stack.environment(f).unwrap().to_vec(),
            cwd: root.clone(),
            event,
        });
    }
    for (name, binary) in [
        ("(a) bare lambda_runtime", "bare-hello"),
        ("(b) bare + DynamoDB GetItem", "bare-getitem"),
    ] {
        subjects.push(Subject {
            name: name.into(),
            program: vec![release.join(binary).display().to_string()],
            env: base_env.clone(),
            cwd: root.clone(),
            event: fixed(json!({})),
        });
    }
    subjects.push(Subject {
        name: "(c) Python, boto3 GetItem".into(),
        program: vec![
            python.display().to_string(),
            "-m".into(),
            "awslambdaric".into(),
            "handler.handler".into(),
        ],
        env: base_env.clone(),
        cwd: root.join("infra/bench/python"),
        event: fixed(json!({})),
    });

    eprintln!("== cold starts: {starts} of each, in turns");
    let mut results: Vec<Vec<Start>> = subjects.iter().map(|_| Vec::new()).collect();
    for round in 0..=starts {
        for (i, s) in subjects.iter().enumerate() {
            let one = start_once(&s.program, &s.env, &s.cwd, (s.event)()).await;
            // The first round warms the page cache and the emulator; it is not counted.
            if round > 0 {
                results[i].push(one);
            }
        }
    }
    // The Slack function's starts decided the click: each answered the linked SRE (in Slack,
    // ephemerally) that the request is active already, not that they are unknown.
    let answered = stack.slack().ephemeral_to("U0BENCH");
    assert!(
        answered.len() > starts && answered.iter().all(|t| t.contains("it is ACTIVE")),
        "{answered:?}"
    );
    drop(stack);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let summary: Vec<(f64, f64, f64)> = results
        .iter()
        .map(|r| {
            (
                median(r.iter().map(|s| ms(s.init)).collect()),
                median(r.iter().map(|s| ms(s.first)).collect()),
                median(r.iter().map(|s| s.rss_kib as f64 / 1024.0).collect()),
            )
        })
        .collect();
    // After the functions: (a), (b), (c).
    let b = summary[FUNCTIONS.len() + 1];
    let c = summary[FUNCTIONS.len() + 2];
    let _ = writeln!(report, "## Cold start\n");
    let _ = writeln!(
        report,
        "Process start to its first Runtime API `next` (init), the first invocation (event \
         handed over to its response), and peak RSS (`VmHWM`) after it: the median of {starts} \
         starts each, in turns, after one unmeasured round. Release builds for this machine; \
         the local stack's own Runtime API and the same emulator on loopback for all. The \
         functions' first invocations work on one active grant: intake reads it (`GET \
         /requests/{{id}}`, 200); the approver reviews it (its chain read and verified against \
         the public keys, then 409: it is no longer pending); the issuer issues credentials on \
         it (chain verified, STS `AssumeRole`, KMS `Sign`, one transaction; 200); the sweeper \
         runs a scheduled sweep; the activity function stores one CloudTrail event of the \
         grant's session (the grant read, one transaction, the refused-call count queried); the \
         Slack function decides a click on it, signed as Slack signs (the signing secret read \
         from Secrets Manager, `users.info`, the link and seen groups read and verified, then \
         the review refused: it is no longer pending; the answer also posted ephemerally). \
         Init does not read the public keys: the approver and the \
         issuer start reading them in the background as init ends, beside the first \
         invocation, which waits for them only if they are not there yet.\n"
    );
    let _ = writeln!(
        report,
        "| | init (min–max) | first invocation (min–max) | init + first | peak RSS | init ÷ (b) | (init + first) ÷ (b) | (c) ÷ (init + first) |"
    );
    let _ = writeln!(report, "|---|---:|---:|---:|---:|---:|---:|---:|");
    let spread = |values: Vec<f64>| {
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(0.0, f64::max);
        format!("{low:.1}–{high:.1}")
    };
    for ((s, (init, first, rss)), r) in subjects.iter().zip(&summary).zip(&results) {
        let _ = writeln!(
            report,
            "| {} | {init:.1} ms ({}) | {first:.1} ms ({}) | {:.1} ms | {rss:.1} MB | {:.2}× | {:.2}× | {:.1}× |",
            s.name,
            spread(r.iter().map(|s| ms(s.init)).collect()),
            spread(r.iter().map(|s| ms(s.first)).collect()),
            init + first,
            init / b.0,
            (init + first) / (b.0 + b.1),
            (c.0 + c.1) / (init + first),
        );
    }
    let _ = writeln!(
        report,
        "\nGoals, for each function: init within 1.5× of (b), and init + first invocation within \
         1.5× of (b)'s; for every function but the sweeper, init + first invocation at least 10× \
         faster than (c) (the sweeper's first invocation is a whole sweep, several queries and \
         writes, where (c) does one `GetItem`: the ratio is shown, not judged); at most 30 MB \
         peak RSS.\n"
    );
    for (s, (init, first, rss)) in subjects.iter().zip(&summary).take(FUNCTIONS.len()) {
        let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
        let python = (c.0 + c.1) / (init + first);
        let _ = writeln!(
            report,
            "- {}: init {:.2}× (b), {}; init + first {:.2}× (b), {}; {python:.1}× faster than (c), {}; {rss:.1} MB, {}.",
            s.name,
            init / b.0,
            verdict(init / b.0 <= 1.5),
            (init + first) / (b.0 + b.1),
            verdict((init + first) / (b.0 + b.1) <= 1.5),
            if s.name == "sweeper" {
                "not judged"
            } else {
                verdict(python >= 10.0)
            },
            verdict(*rss <= 30.0),
        );
    }

    let _ = writeln!(
        report,
        "\nInit, part by part, as each function logs it (`init phases`; the policy set loads \
         beside the AWS configuration, so the parts overlap), and the background read of the \
         four public keys (`public keys read`: from its start as init ends, all four at once), \
         median of the same starts:\n"
    );
    let _ = writeln!(
        report,
        "| function | policies | AWS configuration | start-up total | public keys (background) |"
    );
    let _ = writeln!(report, "|---|---:|---:|---:|---:|");
    for (s, r) in subjects.iter().zip(&results).take(FUNCTIONS.len()) {
        let cells = phase_cells(r).unwrap_or_else(|| "no `init phases` line | | |".into());
        let _ = writeln!(report, "| {} | {cells} |", s.name);
    }
    if std::env::args().any(|a| a == "--cold-starts-only") {
        println!("{report}");
        return;
    }

    let _ = writeln!(report, "\n## Sizes\n");
    let _ = writeln!(
        report,
        "| function | release binary (this machine, {}) | zipped |",
        std::env::consts::ARCH
    );
    let _ = writeln!(report, "|---|---:|---:|");
    for f in FUNCTIONS {
        let path = release.join(f);
        let size = std::fs::metadata(&path).unwrap().len();
        let _ = writeln!(
            report,
            "| {f} | {} | {} |",
            mb(size),
            mb(zipped_size(&path))
        );
    }
    if arm64 {
        eprintln!("== arm64: infra/deploy/check (sam build with cargo-lambda and zig)");
        let out = run(Command::new("bash")
            .current_dir(&root)
            .arg("infra/deploy/check"));
        let lines: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("arm64 bootstrap"))
            .collect();
        let _ = writeln!(
            report,
            "\nFor arm64, as `sam build` packages them (`infra/deploy/check`; goal: under 5 MB zipped):\n\n```\n{}\n```",
            lines.join("\n")
        );
    } else {
        let _ = writeln!(report, "\n(arm64 sizes skipped: `--no-arm64`.)");
    }

    for (title, package, bench, note) in [
        (
            "Latency over HTTP, and AWS calls per flow",
            "jit-stack",
            "latency",
            "The local stack over HTTP (its function binaries are the dev-profile builds the stack runs); then, on a second stack through the recording pass-through, the AWS calls each function makes per flow.",
        ),
        (
            "Load, with the route throttle",
            "jit-stack",
            "load",
            "1,000 people, 32 at a time, each asking (auto-approved), waiting as `jit request --wait` does and pulling credentials, against the local stack (4 instances per function at most) with the template's route throttle, which the client meets with back-off.",
        ),
        (
            "Cedar decisions",
            "jit-core",
            "cedar",
            "`Rules::decide`, the example policies and 1,000 generated ones.",
        ),
        (
            "Sweeps",
            "jit-sweeper",
            "sweep",
            "10,000 due grants among 100,000 not due, against DynamoDB on the emulator.",
        ),
        (
            "Auto-approval",
            "jit-approver",
            "auto_approve",
            "The approver's handler per stream record.",
        ),
        (
            "Issuance",
            "jit-issuer",
            "issuance",
            "The issuer's handler per credentials call, against STS and DynamoDB on the emulator.",
        ),
    ] {
        eprintln!("== cargo bench -p {package} --bench {bench}");
        let out = run(Command::new("cargo")
            .current_dir(&root)
            .args(["bench", "--quiet", "-p", package, "--bench", bench]));
        let _ = writeln!(
            report,
            "\n## {title}\n\n{note} `cargo bench -p {package} --bench {bench}`:\n\n```\n{}\n```",
            out.trim_end()
        );
    }

    let took = begun.elapsed().as_secs();
    let header = format!(
        "# Benchmarks\n\nEvery figure below comes from one run of `cargo run --release -p jit-bench` \
         (which builds what it measures in release mode), on {}, finished {} after {} min {} s. \
         The machine is shared and noisy: compare figures within this file, not with another \
         run's.\n\nMachine: {}.\n\n",
        run(Command::new("date").args(["-u", "+%Y-%m-%d"])).trim(),
        run(Command::new("date").args(["-u", "+%H:%M UTC"])).trim(),
        took / 60,
        took % 60,
        machine(),
    );
    let path = root.join("BENCHMARKS.md");
    std::fs::write(&path, format!("{header}{report}")).unwrap();
    eprintln!("wrote {}", path.display());
}
