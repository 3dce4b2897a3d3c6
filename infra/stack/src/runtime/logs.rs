//! Where an instance's output goes: each line of its stdout and stderr, labelled with the
//! instance, to the stack's standard error or to one log file per function.

use std::path::PathBuf;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Where the functions' output goes.
#[derive(Debug, Clone)]
pub enum LogSink {
    /// Each line on the stack's standard error, prefixed with the instance.
    Stderr,
    /// Each function's lines appended to `<dir>/<binary>.log`.
    Dir(PathBuf),
}

/// Forwards the process's stdout and stderr, line by line, to `logs` under `label`.
pub(super) fn forward_output(
    child: &mut tokio::process::Child,
    label: String,
    logs: &LogSink,
) -> Vec<tokio::task::JoinHandle<()>> {
    [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        child
            .stderr
            .take()
            .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .flatten()
    .map(|stream| tokio::spawn(forward_logs(stream, label.clone(), logs.clone())))
    .collect()
}

async fn forward_logs(
    stream: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    label: String,
    sink: LogSink,
) {
    let mut lines = BufReader::new(stream).lines();
    let mut file = match &sink {
        LogSink::Dir(dir) => {
            let _ = tokio::fs::create_dir_all(dir).await;
            let name = label.split('#').next().unwrap_or("function");
            tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(format!("{name}.log")))
                .await
                .ok()
        }
        LogSink::Stderr => None,
    };
    while let Ok(Some(line)) = lines.next_line().await {
        match file.as_mut() {
            Some(f) => {
                let _ = f.write_all(format!("[{label}] {line}\n").as_bytes()).await;
            }
            None => eprintln!("[{label}] {line}"),
        }
    }
}
