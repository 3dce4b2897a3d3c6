//! Where the time goes: durations the stack measures (the gateway's own share, each function's
//! invocations, the stream's delay), for the latency benchmark.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Durations by what they measure.
#[derive(Debug, Clone, Default)]
pub struct Timings(Arc<Mutex<BTreeMap<String, Vec<Duration>>>>);

impl Timings {
    /// Records one duration of `what`.
    pub fn record(&self, what: &str, took: Duration) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(what.to_owned())
            .or_default()
            .push(took);
    }

    /// Everything recorded so far, which is then forgotten.
    pub fn take(&self) -> BTreeMap<String, Vec<Duration>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
