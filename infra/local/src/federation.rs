//! A stand-in for the AWS federation endpoint (`getSigninToken`), on loopback: it checks each
//! request as the real one would and answers in its format, and records what it received.

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

use crate::http;

/// What the stand-in received: the `Session` JSON of each `getSigninToken`.
#[derive(Debug, Clone, Default)]
pub struct FederationLog(Arc<Mutex<Vec<Value>>>);

impl FederationLog {
    /// The sessions received so far.
    pub fn sessions(&self) -> Vec<Value> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A running stand-in; it stops when dropped.
#[derive(Debug)]
pub struct FederationStandIn {
    /// Its endpoint, such as `http://127.0.0.1:40123/federation`.
    pub endpoint: String,
    /// What it received.
    pub log: FederationLog,
    /// When set, it answers this status instead of a token.
    pub fail_with: Arc<Mutex<Option<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FederationStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The answer to one request for `path` with `query`: status and body.
fn answer(path: &str, query: &str, log: &FederationLog, fail_with: Option<u16>) -> (u16, String) {
    if path != "/federation" {
        return (404, "not found".into());
    }
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if param("Action") != Some("getSigninToken") {
        return (400, "unsupported Action".into());
    }
    let session: Option<Value> = param("Session").and_then(|s| serde_json::from_str(s).ok());
    let complete = session.as_ref().is_some_and(|s| {
        ["sessionId", "sessionKey", "sessionToken"].iter().all(|k| {
            s.get(*k)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
        })
    });
    let Some(session) = session.filter(|_| complete) else {
        return (
            400,
            "Session must be JSON with sessionId, sessionKey and sessionToken".into(),
        );
    };
    let mut sessions = log.0.lock().unwrap_or_else(PoisonError::into_inner);
    sessions.push(session);
    if let Some(status) = fail_with {
        return (status, "injected failure".into());
    }
    (
        200,
        format!("{{\"SigninToken\":\"standin-token-{}\"}}", sessions.len()),
    )
}

impl FederationStandIn {
    /// Starts the stand-in on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let log = FederationLog::default();
        let fail_with = Arc::new(Mutex::new(None));
        let (task_log, task_fail) = (log.clone(), fail_with.clone());
        let (task, address) = http::spawn(move |request: hyper::Request<_>| {
            let fail = *task_fail.lock().unwrap_or_else(PoisonError::into_inner);
            let (status, body) = answer(
                request.uri().path(),
                request.uri().query().unwrap_or_default(),
                &task_log,
                fail,
            );
            async move { http::reply(status, "application/json", body) }
        })
        .await?;
        let endpoint = format!("{address}/federation");
        Ok(Self {
            endpoint,
            log,
            fail_with,
            task,
        })
    }
}
