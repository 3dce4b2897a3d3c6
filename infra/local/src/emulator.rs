//! The AWS emulator (moto server) on loopback: installed by the project into a virtualenv
//! under the cargo target directory when missing, started on a free port, stopped when the
//! process that started it ends.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// Why the emulator could not be had.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Python 3 (with `venv`) was not found.
    #[error(
        "cannot run `{python}` to create the emulator's virtualenv: {source}; install Python 3 with venv and pip, or set JIT_PYTHON"
    )]
    NoPython {
        /// The interpreter tried.
        python: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Installing the pinned packages failed.
    #[error("installing the emulator into `{venv}` failed ({status}); pip said:\n{output}")]
    InstallFailed {
        /// The virtualenv.
        venv: PathBuf,
        /// How pip exited.
        status: String,
        /// The end of pip's output.
        output: String,
    },
    /// The emulator process did not start or did not report its address.
    #[error("the emulator did not start: {0}")]
    StartFailed(String),
    /// A file under the target directory could not be read or written.
    #[error("cannot use `{path}`: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// The workspace's root folder, found when asked rather than when compiled, so a build shared
/// between checkouts (one target directory for several clones) reads each checkout's own files:
/// `JIT_WORKSPACE` when set; else the workspace around the package Cargo is running (its
/// `CARGO_MANIFEST_DIR` at run time) or around the current folder; else where this crate was
/// compiled.
pub fn workspace_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("JIT_WORKSPACE") {
        return PathBuf::from(dir);
    }
    let starts = [
        std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
        std::env::current_dir().ok(),
    ];
    starts
        .into_iter()
        .flatten()
        .find_map(|start| {
            start.ancestors().find_map(|dir| {
                let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
                let ours = manifest.contains("[workspace]") && dir.join("infra/local").is_dir();
                ours.then(|| dir.to_owned())
            })
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set, else `target/` in the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The example configuration's broker account: the emulator's default account, where calls
/// made with plain test credentials land.
pub const BROKER_ACCOUNT: &str = "111111111111";

/// A running emulator, reachable at [`Emulator::endpoint`].
#[derive(Debug)]
pub struct Emulator {
    endpoint: String,
    // Held for the life of the process: when it closes, the emulator exits.
    _lifeline: Option<Mutex<(Child, ChildStdin)>>,
}

impl Emulator {
    /// The emulator this process shares: started on first use, or the one named by
    /// `JIT_EMULATOR_URL` when that is set (then nothing is installed or started).
    pub fn shared() -> Result<&'static Emulator, EmulatorError> {
        static SHARED: OnceLock<Result<Emulator, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| match std::env::var("JIT_EMULATOR_URL") {
                Ok(url) if !url.is_empty() => Ok(Emulator {
                    endpoint: url,
                    _lifeline: None,
                }),
                // Test credentials land in the example's broker account, as on the stack.
                _ => Emulator::start_with(&[("JIT_DEFAULT_ACCOUNT", BROKER_ACCOUNT)])
                    .map_err(|e| e.to_string()),
            })
            .as_ref()
            .map_err(|e| EmulatorError::StartFailed(e.clone()))
    }

    /// Installs the emulator if needed and starts a new one on a free loopback port.
    pub fn start() -> Result<Emulator, EmulatorError> {
        Self::start_with(&[])
    }

    /// Starts a private emulator with extra environment variables for moto, such as
    /// `JIT_DEFAULT_ACCOUNT` (the account plain test-credential calls land in; see `emulator.py`).
    pub fn start_with(env: &[(&str, &str)]) -> Result<Emulator, EmulatorError> {
        let python = ensure_installed()?;
        let script = workspace_root().join("infra/local/emulator.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .args(["127.0.0.1", "0"])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| EmulatorError::StartFailed(format!("{}: {e}", python.display())))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
            return Err(EmulatorError::StartFailed(
                "no pipes to the emulator".into(),
            ));
        };
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let endpoint = match (read, line.trim().strip_prefix("READY ")) {
            (Ok(_), Some(url)) => url.to_owned(),
            _ => {
                let mut err = String::new();
                if let Some(s) = stderr.as_mut() {
                    let _ = s.read_to_string(&mut err);
                }
                let _ = child.kill();
                return Err(EmulatorError::StartFailed(format!(
                    "it printed `{}` and then:\n{err}",
                    line.trim()
                )));
            }
        };
        // Werkzeug logs every request to stderr; drain it so the pipe never fills and blocks
        // the server, and keep it only when asked to.
        if let Some(mut s) = stderr {
            let keep = std::env::var_os("JIT_EMULATOR_LOG").is_some();
            std::thread::spawn(move || {
                let mut buf = [0_u8; 8192];
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    if keep {
                        eprint!("{}", String::from_utf8_lossy(buf.get(..n).unwrap_or(&[])));
                    }
                }
            });
        }
        Ok(Emulator {
            endpoint,
            _lifeline: Some(Mutex::new((child, stdin))),
        })
    }

    /// The emulator's base URL, such as `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// SDK configuration that talks to the emulator: fixed test credentials, `us-east-1`.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .test_credentials()
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .load()
            .await
    }
}

use crate::prerequisites::ensure_venv;

/// Makes sure the pinned emulator is installed in its virtualenv; returns its Python.
pub fn ensure_installed() -> Result<PathBuf, EmulatorError> {
    ensure_venv("emulator-venv", "infra/local/requirements.txt")
}
