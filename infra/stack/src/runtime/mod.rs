//! The Lambda Runtime API, served to the functions' real binaries: each instance is a process
//! of its own with a Runtime API endpoint of its own (so the stack knows which process holds
//! which invocation); instances of one function share its queue. An instance starts on
//! demand when no idle one can take an invocation, up to a limit. A process that exits while it
//! holds an invocation fails that invocation as Lambda does (`Runtime.ExitError`); one that
//! exits before taking any fails the waiting invocations with its init error.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::template::FunctionDef;

mod api;
mod logs;
use api::runtime_api;
pub use logs::LogSink;
use logs::forward_output;

/// Why an invocation gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FunctionError {
    /// The handler returned an error.
    #[error("{error_type}: {message}")]
    Handled {
        /// `errorType`.
        error_type: String,
        /// `errorMessage`.
        message: String,
    },
    /// The process exited while it held the invocation.
    #[error("Runtime.ExitError: the function's process exited during the invocation ({0})")]
    Crashed(String),
    /// No result within the function's timeout; the instance was stopped.
    #[error("Sandbox.Timedout: the function timed out after {0:?}")]
    TimedOut(Duration),
    /// The function could not start.
    #[error("Runtime.InitError: {0}")]
    InitFailed(String),
}

type Reply = oneshot::Sender<Result<Value, FunctionError>>;

struct Invocation {
    id: String,
    payload: Value,
    deadline: Instant,
    deadline_ms: u128,
    reply: Reply,
}

/// What an instance runs: a program with its arguments, in a directory.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Where it runs; the stack's own directory when `None`.
    pub cwd: Option<PathBuf>,
}

impl Launch {
    /// A function's binary, as Lambda runs a `provided.al2023` bootstrap.
    pub fn binary(program: PathBuf) -> Self {
        Self {
            program,
            args: Vec::new(),
            cwd: None,
        }
    }
}

/// One instance's start as the Runtime API saw it: when its process was spawned, when it first
/// asked for work (its init ended), and when its first invocation was handed over and answered.
#[derive(Debug, Clone, Copy)]
pub struct InstanceStart {
    /// The process, while it runs.
    pub pid: Option<u32>,
    /// When the process was spawned.
    pub spawned: Instant,
    /// Its first `GET invocation/next`.
    pub ready: Option<Instant>,
    /// When its first invocation was handed over.
    pub first_handed: Option<Instant>,
    /// When its first invocation's response or error came back.
    pub first_answered: Option<Instant>,
}

/// Everything the instances of one function share.
struct Shared {
    def: FunctionDef,
    launch: Launch,
    env: Vec<(String, String)>,
    logs: LogSink,
    max_instances: usize,
    sender: mpsc::UnboundedSender<Invocation>,
    receiver: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    waiting: AtomicUsize,
    idle: AtomicUsize,
    /// Instances that answered and are on their way back to `next`.
    finishing: AtomicUsize,
    starting: AtomicUsize,
    instances: AtomicUsize,
    next_instance: AtomicU64,
    /// Invocation id → (instance, reply).
    in_flight: Mutex<HashMap<String, (u64, Reply)>>,
    /// Instance → the sender that stops it.
    stoppers: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    init_error: Mutex<Option<String>>,
    /// Instance → how its start went.
    starts: Mutex<HashMap<u64, InstanceStart>>,
    started: AtomicUsize,
    invocations: AtomicUsize,
    /// The stack's runtime: instances live there, whoever invokes.
    handle: tokio::runtime::Handle,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One function's instances and queue.
#[derive(Clone)]
pub struct FunctionRuntime {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FunctionRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionRuntime")
            .field("binary", &self.shared.def.binary)
            .finish_non_exhaustive()
    }
}

fn unix_ms(at: Instant) -> u128 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now + at.saturating_duration_since(Instant::now())).as_millis()
}

impl FunctionRuntime {
    /// A function whose instances run `binary` with `env` (the process's whole environment).
    /// Call it within the runtime the instances should live on.
    pub fn new(
        def: FunctionDef,
        binary: PathBuf,
        env: Vec<(String, String)>,
        logs: LogSink,
        max_instances: usize,
    ) -> Self {
        Self::launching(def, Launch::binary(binary), env, logs, max_instances)
    }

    /// A function whose instances run `launch` with `env`, such as an interpreter and its
    /// Lambda runtime client (the benchmark's comparisons).
    pub fn launching(
        def: FunctionDef,
        launch: Launch,
        env: Vec<(String, String)>,
        logs: LogSink,
        max_instances: usize,
    ) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        Self {
            shared: Arc::new(Shared {
                def,
                launch,
                env,
                logs,
                max_instances: max_instances.max(1),
                sender,
                receiver: tokio::sync::Mutex::new(receiver),
                waiting: AtomicUsize::new(0),
                idle: AtomicUsize::new(0),
                finishing: AtomicUsize::new(0),
                starting: AtomicUsize::new(0),
                instances: AtomicUsize::new(0),
                next_instance: AtomicU64::new(1),
                in_flight: Mutex::new(HashMap::new()),
                stoppers: Mutex::new(HashMap::new()),
                init_error: Mutex::new(None),
                starts: Mutex::new(HashMap::new()),
                started: AtomicUsize::new(0),
                invocations: AtomicUsize::new(0),
                handle: tokio::runtime::Handle::current(),
            }),
        }
    }

    /// The function's binary name.
    pub fn name(&self) -> &str {
        &self.shared.def.binary
    }

    /// How many invocations were asked for so far.
    pub fn invocations(&self) -> usize {
        self.shared.invocations.load(Ordering::SeqCst)
    }

    /// How each instance's start went, in the order they started.
    pub fn starts(&self) -> Vec<InstanceStart> {
        let starts = lock(&self.shared.starts);
        let mut all: Vec<(&u64, &InstanceStart)> = starts.iter().collect();
        all.sort_by_key(|(instance, _)| **instance);
        all.into_iter().map(|(_, start)| *start).collect()
    }

    /// How many instances were started so far.
    pub fn instances_started(&self) -> usize {
        self.shared.started.load(Ordering::SeqCst)
    }

    /// Invokes the function with `payload`, as Lambda's synchronous invoke does.
    pub async fn invoke(&self, payload: Value) -> Result<Value, FunctionError> {
        let s = &self.shared;
        s.invocations.fetch_add(1, Ordering::SeqCst);
        let timeout = s.def.timeout;
        let (reply, result) = oneshot::channel();
        let deadline = Instant::now() + timeout;
        let id = uuid::Uuid::now_v7().to_string();
        let waiting = s.waiting.fetch_add(1, Ordering::SeqCst) + 1;
        if waiting > ready(s) && s.instances.load(Ordering::SeqCst) < s.max_instances {
            self.start_instance();
        }
        let invocation = Invocation {
            id: id.clone(),
            payload,
            deadline,
            deadline_ms: unix_ms(deadline),
            reply,
        };
        if s.sender.send(invocation).is_err() {
            return Err(FunctionError::InitFailed("the runtime has stopped".into()));
        }
        match tokio::time::timeout(timeout + Duration::from_millis(500), result).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(FunctionError::Crashed("the invocation was dropped".into())),
            Err(_) => {
                // Lambda stops an instance that overran; its next invocation starts afresh.
                let holder = lock(&s.in_flight).remove(&id).map(|(instance, _)| instance);
                if let Some(instance) = holder
                    && let Some(stop) = lock(&s.stoppers).remove(&instance)
                {
                    let _ = stop.send(());
                }
                Err(FunctionError::TimedOut(timeout))
            }
        }
    }

    fn start_instance(&self) {
        start_instance(&self.shared);
    }

    /// How many instances are running now (starting, idle or working).
    pub fn instances_running(&self) -> usize {
        self.shared.instances.load(Ordering::SeqCst)
    }

    /// Stops every instance of the function.
    pub fn stop(&self) {
        for (_, stop) in lock(&self.shared.stoppers).drain() {
            let _ = stop.send(());
        }
    }
}

/// Instances that can take a call without a new one starting: idle in `next`, starting up,
/// or just answered and on their way back to `next` (as Lambda reuses a warm sandbox).
fn ready(s: &Shared) -> usize {
    s.idle.load(Ordering::SeqCst)
        + s.starting.load(Ordering::SeqCst)
        + s.finishing.load(Ordering::SeqCst)
}

fn start_instance(shared: &Arc<Shared>) {
    let s = Arc::clone(shared);
    s.starting.fetch_add(1, Ordering::SeqCst);
    s.instances.fetch_add(1, Ordering::SeqCst);
    s.started.fetch_add(1, Ordering::SeqCst);
    let instance = s.next_instance.fetch_add(1, Ordering::SeqCst);
    let handle = s.handle.clone();
    handle.spawn(async move {
        let (outcome, took_work) = run_instance(Arc::clone(&s), instance).await;
        s.instances.fetch_sub(1, Ordering::SeqCst);
        lock(&s.stoppers).remove(&instance);
        // Whatever it held fails as Lambda fails it.
        let held: Vec<Reply> = {
            let mut in_flight = lock(&s.in_flight);
            let ids: Vec<String> = in_flight
                .iter()
                .filter(|(_, (i, _))| *i == instance)
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter()
                .filter_map(|id| in_flight.remove(id).map(|(_, r)| r))
                .collect()
        };
        for reply in held {
            let _ = reply.send(Err(FunctionError::Crashed(outcome.clone())));
        }
        if took_work {
            // A sandbox that worked and died: what waits gets a fresh one, as in Lambda.
            let waiting = s.waiting.load(Ordering::SeqCst);
            if waiting > ready(&s) && s.instances.load(Ordering::SeqCst) < s.max_instances {
                start_instance(&s);
            }
        } else if s.instances.load(Ordering::SeqCst) == 0 {
            // It could not start and no other instance can take the calls: fail them with
            // its init error rather than leave callers hanging; the next call tries again.
            let why = lock(&s.init_error).clone().unwrap_or(outcome);
            let mut receiver = s.receiver.lock().await;
            while let Ok(invocation) = receiver.try_recv() {
                s.waiting.fetch_sub(1, Ordering::SeqCst);
                let _ = invocation
                    .reply
                    .send(Err(FunctionError::InitFailed(why.clone())));
            }
        }
    });
}

/// Starts instance `instance`'s process, its Runtime API on `port`, and records when.
fn spawn(s: &Shared, instance: u64, port: u16) -> Result<tokio::process::Child, String> {
    let mut command = tokio::process::Command::new(&s.launch.program);
    command.args(&s.launch.args);
    if let Some(cwd) = &s.launch.cwd {
        command.current_dir(cwd);
    }
    command
        .env_clear()
        .envs(s.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let spawned = Instant::now();
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start `{}`: {e}", s.launch.program.display()))?;
    let start = InstanceStart {
        pid: child.id(),
        spawned,
        ready: None,
        first_handed: None,
        first_answered: None,
    };
    lock(&s.starts).insert(instance, start);
    Ok(child)
}

/// Runs one instance: its Runtime API endpoint and its process, until the process exits or the
/// instance is stopped. Returns how it ended, and whether it ever asked for work.
async fn run_instance(s: Arc<Shared>, instance: u64) -> (String, bool) {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => {
            s.starting.fetch_sub(1, Ordering::SeqCst);
            return (format!("no port for the Runtime API: {e}"), false);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let mut child = match spawn(&s, instance, port) {
        Ok(child) => child,
        Err(why) => {
            s.starting.fetch_sub(1, Ordering::SeqCst);
            *lock(&s.init_error) = Some(why.clone());
            return (why, false);
        }
    };
    let forwarders = forward_output(&mut child, format!("{}#{instance}", s.def.binary), &s.logs);
    let (stop, stopped) = oneshot::channel();
    lock(&s.stoppers).insert(instance, stop);
    let took_any = Arc::new(AtomicUsize::new(0));
    let finishing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = serve_runtime_api(
        Arc::clone(&s),
        instance,
        listener,
        Arc::clone(&took_any),
        Arc::clone(&finishing),
    );
    let server = tokio::spawn(server);
    let ended = tokio::select! {
        status = child.wait() => match status {
            Ok(status) => format!("exit {status}"),
            Err(e) => format!("lost the process: {e}"),
        },
        _ = stopped => {
            let _ = child.kill().await;
            "stopped after a timeout".to_owned()
        }
    };
    server.abort();
    // What the process wrote before it ended is in the log before its end is reported.
    for forwarder in forwarders {
        let _ = tokio::time::timeout(Duration::from_secs(2), forwarder).await;
    }
    if finishing.swap(false, Ordering::SeqCst) {
        s.finishing.fetch_sub(1, Ordering::SeqCst);
    }
    let took_work = took_any.load(Ordering::SeqCst) > 0;
    if !took_work {
        // Never reached `next`: still counted as starting.
        s.starting.fetch_sub(1, Ordering::SeqCst);
        let mut init = lock(&s.init_error);
        if init.is_none() {
            *init = Some(format!(
                "the process ended before asking for work ({ended})"
            ));
        }
    }
    (ended, took_work)
}

/// Serves instance `instance`'s Runtime API on `listener`. Connections live in one set, so
/// stopping the server stops them all (a dead instance's `next` must not go on taking
/// invocations).
async fn serve_runtime_api(
    s: Arc<Shared>,
    instance: u64,
    listener: TcpListener,
    took_any: Arc<AtomicUsize>,
    finishing: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let s = Arc::clone(&s);
        let took_any = Arc::clone(&took_any);
        let finishing = Arc::clone(&finishing);
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let s = Arc::clone(&s);
                let took_any = Arc::clone(&took_any);
                let finishing = Arc::clone(&finishing);
                async move {
                    Ok::<_, Infallible>(
                        runtime_api(&s, instance, &took_any, &finishing, request).await,
                    )
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Counts an instance as idle while it waits in `next`, however that wait ends.
struct Idle<'a>(&'a AtomicUsize);

impl<'a> Idle<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    /// A function written against the Runtime API in a few lines of Python: it does what the
    /// event's `do` says, so each test can make it answer, fail, crash, stall or refuse to start.
    const FUNCTION: &str = r#"
import json, os, sys, time, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
def post(path, body):
    urllib.request.urlopen(urllib.request.Request(api + path, json.dumps(body).encode(), method="POST"))
if os.environ.get("FAIL_INIT"):
    post("/init/error", {"errorType": "Runtime.ConfigError", "errorMessage": "TABLE_NAME is not set"})
    sys.exit(1)
while True:
    r = urllib.request.urlopen(api + "/invocation/next")
    rid = r.headers["lambda-runtime-aws-request-id"]
    deadline = int(r.headers["lambda-runtime-deadline-ms"])
    event = json.loads(r.read())
    what = event.get("do")
    if what == "crash":
        os._exit(3)
    if what == "crash_later":
        time.sleep(0.3)
        os._exit(3)
    if what == "sleep":
        time.sleep(event["secs"])
    if what == "fail":
        post("/invocation/" + rid + "/error", {"errorType": "Boom", "errorMessage": "it broke"})
        continue
    post("/invocation/" + rid + "/response", {"echo": event, "pid": os.getpid(), "deadline_ms": deadline,
        "arn": r.headers["lambda-runtime-invoked-function-arn"]})
"#;

    fn function(timeout_secs: u64, env: &[(&str, &str)]) -> FunctionRuntime {
        function_with(timeout_secs, env, 3)
    }

    fn function_with(timeout_secs: u64, env: &[(&str, &str)], max: usize) -> FunctionRuntime {
        let dir = jit_local::target_dir().join("jit-stack-test");
        std::fs::create_dir_all(&dir).unwrap();
        // A file of its own per test: tests run in parallel, and a script rewritten while
        // another test's process starts it would be read half-written.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let script = dir.join(format!("function-{}-{n}.py", std::process::id()));
        std::fs::write(&script, FUNCTION).unwrap();
        let launcher = dir.join(format!("function-{}-{n}.sh", std::process::id()));
        std::fs::write(
            &launcher,
            format!("#!/bin/sh\nexec python3 {}\n", script.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&launcher, std::fs::Permissions::from_mode(0o755)).unwrap();
        let def = FunctionDef {
            logical_id: "TestFunction".into(),
            binary: "test".into(),
            timeout: Duration::from_secs(timeout_secs),
            memory_mb: 128,
            environment: BTreeMap::new(),
            routes: vec![],
            stream: None,
            schedule: None,
            bus_rule: None,
        };
        let mut vars = vec![("PATH".to_owned(), std::env::var("PATH").unwrap_or_default())];
        vars.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        FunctionRuntime::new(def, launcher, vars, LogSink::Dir(dir.join("logs")), max)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn invocations_get_lambdas_headers_answers_and_errors() {
        let f = function(10, &[]);
        let out = f.invoke(json!({"n": 1})).await.unwrap();
        assert_eq!(out["echo"], json!({"n": 1}));
        assert_eq!(
            out["arn"],
            "arn:aws:lambda:us-east-1:123456789012:function:TestFunction"
        );
        let left = out["deadline_ms"].as_u64().unwrap() as i128
            - SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis() as i128;
        assert!((8_000..=10_500).contains(&left), "deadline {left} ms away");
        assert_eq!(
            f.invoke(json!({"do": "fail"})).await,
            Err(FunctionError::Handled {
                error_type: "Boom".into(),
                message: "it broke".into()
            })
        );
        // The same warm instance served all of it.
        f.invoke(json!({})).await.unwrap();
        assert_eq!(f.instances_started(), 1);
    }

    /// What the benchmark relies on: an interpreter started with arguments in a directory
    /// of its own, and each instance's start timed by the Runtime API.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_launch_with_arguments_runs_in_its_directory_and_its_start_is_timed() {
        let dir = jit_local::target_dir()
            .join("jit-stack-test")
            .join(format!("launch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("handler.py"), FUNCTION).unwrap();
        let def = FunctionDef {
            logical_id: "TestFunction".into(),
            binary: "launched".into(),
            timeout: Duration::from_secs(10),
            memory_mb: 128,
            environment: BTreeMap::new(),
            routes: vec![],
            stream: None,
            schedule: None,
            bus_rule: None,
        };
        // A relative script: found only if the process runs in `dir`.
        let launch = Launch {
            program: "python3".into(),
            args: vec!["handler.py".into()],
            cwd: Some(dir.clone()),
        };
        let vars = vec![("PATH".to_owned(), std::env::var("PATH").unwrap_or_default())];
        let f = FunctionRuntime::launching(def, launch, vars, LogSink::Dir(dir.join("logs")), 1);
        let before = Instant::now();
        let out = f.invoke(json!({"n": 2})).await.unwrap();
        let after = Instant::now();
        assert_eq!(out["echo"], json!({"n": 2}));
        f.invoke(json!({"n": 3})).await.unwrap();
        let starts = f.starts();
        assert_eq!(starts.len(), 1, "one warm instance served both");
        let s = starts[0];
        assert_eq!(u64::from(s.pid.unwrap()), out["pid"].as_u64().unwrap());
        let (ready, handed, answered) = (
            s.ready.unwrap(),
            s.first_handed.unwrap(),
            s.first_answered.unwrap(),
        );
        assert!(before <= s.spawned && s.spawned <= ready && ready <= handed);
        assert!(
            handed <= answered && answered <= after,
            "the first call's times, not the second's"
        );
        f.stop();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn overlapping_calls_start_more_instances_up_to_the_limit() {
        let f = function(10, &[]);
        let calls = (0..3).map(|_| f.invoke(json!({"do": "sleep", "secs": 1})));
        let outs = futures::future::join_all(calls).await;
        let mut pids: Vec<u64> = outs
            .iter()
            .map(|o| o.as_ref().unwrap()["pid"].as_u64().unwrap())
            .collect();
        pids.sort();
        pids.dedup();
        assert_eq!(pids.len(), 3, "three overlapping calls, three instances");
        assert_eq!(f.instances_started(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crash_fails_its_invocation_and_the_next_gets_a_new_instance() {
        let f = function(10, &[]);
        let first = f.invoke(json!({})).await.unwrap()["pid"].clone();
        let crashed = f.invoke(json!({"do": "crash"})).await;
        assert!(
            matches!(crashed, Err(FunctionError::Crashed(ref why)) if why.contains("exit")),
            "{crashed:?}"
        );
        let after = f.invoke(json!({})).await.unwrap()["pid"].clone();
        assert_ne!(first, after);
        assert_eq!(f.instances_started(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_queued_behind_a_crash_get_a_fresh_instance() {
        let f = function_with(10, &[], 1);
        f.invoke(json!({})).await.unwrap();
        let (crashed, queued) = tokio::join!(f.invoke(json!({"do": "crash_later"})), async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            f.invoke(json!({"n": 2})).await
        });
        assert!(
            matches!(crashed, Err(FunctionError::Crashed(_))),
            "{crashed:?}"
        );
        assert_eq!(queued.unwrap()["echo"], json!({"n": 2}));
        assert_eq!(f.instances_started(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_overrun_is_a_timeout_and_the_instance_is_stopped() {
        let f = function(1, &[]);
        let started = Instant::now();
        let out = f.invoke(json!({"do": "sleep", "secs": 5})).await;
        assert_eq!(out, Err(FunctionError::TimedOut(Duration::from_secs(1))));
        assert!(started.elapsed() < Duration::from_secs(3));
        f.invoke(json!({})).await.unwrap();
        assert_eq!(
            f.instances_started(),
            2,
            "the overrunning instance was replaced"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_init_error_fails_the_waiting_invocation_with_its_reason() {
        let f = function(10, &[("FAIL_INIT", "1")]);
        let out = f.invoke(json!({})).await;
        assert_eq!(
            out,
            Err(FunctionError::InitFailed(
                "Runtime.ConfigError: TABLE_NAME is not set".into()
            ))
        );
    }
}
