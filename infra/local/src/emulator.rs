//! The AWS emulator (moto server) on loopback: installed by the project into a virtualenv
//! under the cargo target directory when missing, started on a free port, stopped when the
//! process that started it ends.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EmulatorError + '_ {
    move |source| EmulatorError::Io {
        path: path.to_owned(),
        source,
    }
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

/// Makes sure the pinned emulator is installed in its virtualenv; returns its Python.
pub fn ensure_installed() -> Result<PathBuf, EmulatorError> {
    ensure_venv("emulator-venv", "infra/local/requirements.txt")
}

/// Makes sure a virtualenv `name` under the target directory holds the pinned packages of
/// `requirements` (a path in the workspace); returns its Python.
///
/// A marker file records which requirements the virtualenv was built from, so changing a pin
/// reinstalls; a file lock keeps concurrent test binaries from installing at once.
pub fn ensure_venv(name: &str, requirements: &str) -> Result<PathBuf, EmulatorError> {
    let target = target_dir();
    fs::create_dir_all(&target).map_err(io(&target))?;
    let venv = target.join(name);
    let python = venv.join("bin/python");
    let requirements_path = workspace_root().join(requirements);
    let requirements = fs::read_to_string(&requirements_path).map_err(io(&requirements_path))?;
    let marker = venv.join(".jit-requirements");
    if fs::read_to_string(&marker).ok().as_deref() == Some(requirements.as_str()) {
        return Ok(python);
    }

    let lock_path = target.join(format!("{name}.lock"));
    let lock = File::create(&lock_path).map_err(io(&lock_path))?;
    lock.lock().map_err(io(&lock_path))?;
    // Another process may have finished the install while we waited for the lock.
    if fs::read_to_string(&marker).ok().as_deref() == Some(requirements.as_str()) {
        return Ok(python);
    }
    let host_python = std::env::var("JIT_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    eprintln!(
        "jit-local: installing {requirements} into {} (once)",
        venv.display()
    );
    let started = Instant::now();
    run(Command::new(&host_python)
        .args(["-m", "venv", "--clear"])
        .arg(&venv))
    .map_err(|e| match e {
        RunError::Spawn(source) => EmulatorError::NoPython {
            python: host_python.clone(),
            source,
        },
        RunError::Failed(status, output) => EmulatorError::InstallFailed {
            venv: venv.clone(),
            status,
            output,
        },
    })?;
    let pip = || {
        let mut c = Command::new(&python);
        c.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ]);
        c
    };
    run(pip().arg("-r").arg(&requirements_path)).map_err(|e| match e {
        RunError::Spawn(source) => EmulatorError::Io {
            path: python.clone(),
            source,
        },
        RunError::Failed(status, output) => EmulatorError::InstallFailed {
            venv: venv.clone(),
            status,
            output,
        },
    })?;
    fs::write(&marker, &requirements).map_err(io(&marker))?;
    eprintln!(
        "jit-local: {name} installed in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(python)
}

enum RunError {
    Spawn(std::io::Error),
    Failed(String, String),
}

fn run(command: &mut Command) -> Result<(), RunError> {
    let out = command.output().map_err(RunError::Spawn)?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let tail: String = text
        .lines()
        .rev()
        .take(30)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    Err(RunError::Failed(out.status.to_string(), tail))
}
