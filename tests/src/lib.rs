//! What the end-to-end tests share: stacks that outlive any one test's runtime, and the
//! client they talk to them with.

use std::ops::Deref;
use std::sync::OnceLock;

pub mod browser;
pub mod iam;

pub use jit_api::Answer;
pub use jit_stack::AUDIT_BUCKET;
pub use jit_stack::demo::Api;
use jit_stack::{LogSink, Stack, StackOptions};

/// A stack on a runtime of its own, so it outlives whichever test started it.
pub struct Running {
    stack: Option<Stack>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Deref for Running {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        // Set at construction and taken only in `drop`.
        self.stack.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            let guard = runtime.enter();
            drop(self.stack.take());
            drop(guard);
            runtime.shutdown_background();
        }
    }
}

/// Options for a stack of the tests' own, on free ports, keeping its state and the functions'
/// logs under `<target>/jit-e2e/<name>`.
pub fn options(name: &str) -> StackOptions {
    let state_dir = jit_local::target_dir().join("jit-e2e").join(name);
    StackOptions {
        port: 0,
        logs: LogSink::Dir(state_dir.join("logs")),
        state_dir,
        ..StackOptions::default()
    }
}

/// Starts a stack with `options` on a runtime (and thread) of its own.
pub fn start(options: StackOptions) -> Result<Running, String> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("a runtime for the stack: {e}"))?;
        let stack = runtime
            .block_on(Stack::start(options))
            .map_err(|e| format!("the stack did not start: {e}"))?;
        Ok(Running {
            stack: Some(stack),
            runtime: Some(runtime),
        })
    })
    .join()
    .map_err(|_| "starting the stack panicked".to_owned())?
}

/// The stack the tests that need nothing special share.
pub fn shared() -> Result<&'static Stack, String> {
    static SHARED: OnceLock<Result<Running, String>> = OnceLock::new();
    match SHARED.get_or_init(|| start(options("shared"))) {
        Ok(running) => Ok(running),
        Err(e) => Err(e.clone()),
    }
}
