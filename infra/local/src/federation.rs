//! A stand-in for the AWS federation endpoint (`getSigninToken`), on loopback: it checks each
//! request as the real one would and answers in its format, and records what it received.

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

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

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b),
                }
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The answer to one request line: status and body.
fn answer(target: &str, log: &FederationLog, fail_with: Option<u16>) -> (u16, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != "/federation" {
        return (404, "not found".into());
    }
    let params: Vec<(String, String)> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
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
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}/federation", listener.local_addr()?);
        let log = FederationLog::default();
        let fail_with = Arc::new(Mutex::new(None));
        let (task_log, task_fail) = (log.clone(), fail_with.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (log, fail) = (task_log.clone(), task_fail.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0_u8; 16 * 1024];
                    let mut len = 0;
                    while !buf
                        .get(..len)
                        .is_some_and(|b| b.windows(4).any(|w| w == b"\r\n\r\n"))
                    {
                        match socket.read(buf.get_mut(len..).unwrap_or_default()).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => len += n,
                        }
                    }
                    let head =
                        String::from_utf8_lossy(buf.get(..len).unwrap_or_default()).into_owned();
                    let target = head.split_whitespace().nth(1).unwrap_or("/");
                    let fail_with = *fail.lock().unwrap_or_else(PoisonError::into_inner);
                    let (status, body) = answer(target, &log, fail_with);
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Ok(Self {
            endpoint,
            log,
            fail_with,
            task,
        })
    }
}
