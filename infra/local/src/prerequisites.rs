//! Everything the tests and the local stack need that the Rust toolchain does not bring,
//! installed in one place when missing, into the target directory (so a fresh machine needs
//! only Rust, Python with pip, Node with npm, and, for the browser tests, root for apt-get):
//! Python virtualenvs from pinned requirements, npm packages from a lock file, and Debian's
//! Chromium and ChromeDriver. Each install runs once, under a file lock, and again only when
//! its pins change.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{EmulatorError, target_dir, workspace_root};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EmulatorError + '_ {
    move |source| EmulatorError::Io {
        path: path.to_owned(),
        source,
    }
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
    .map_err(|e| {
        install_error(e, &venv, |source| EmulatorError::NoPython {
            python: host_python.clone(),
            source,
        })
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
    run(pip().arg("-r").arg(&requirements_path)).map_err(|e| {
        install_error(e, &venv, |source| EmulatorError::Io {
            path: python.clone(),
            source,
        })
    })?;
    fs::write(&marker, &requirements).map_err(io(&marker))?;
    eprintln!(
        "jit-local: {name} installed in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(python)
}

/// An install's failure: `spawn` when the installer could not run at all.
fn install_error(
    e: RunError,
    venv: &Path,
    spawn: impl FnOnce(std::io::Error) -> EmulatorError,
) -> EmulatorError {
    match e {
        RunError::Spawn(source) => spawn(source),
        RunError::Failed(status, output) => EmulatorError::InstallFailed {
            venv: venv.to_owned(),
            status,
            output,
        },
    }
}

/// Holds the install lock `name` under the target directory until dropped, so concurrent
/// test binaries install one at a time.
fn locked(name: &str) -> Result<File, String> {
    fs::create_dir_all(target_dir()).map_err(|e| e.to_string())?;
    let path = target_dir().join(format!("{name}.lock"));
    let lock = File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    lock.lock()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(lock)
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

/// Makes sure the npm packages `source` (a folder of the workspace with `package.json` and
/// `package-lock.json`) pins are installed in `name` under the target directory, with the
/// folder's other `files` copied beside them; returns that folder. `npm ci` installs exactly
/// what the lock file pins, and only when a copied file changed.
pub fn ensure_npm(name: &str, source: &str, files: &[&str]) -> Result<PathBuf, String> {
    let source = workspace_root().join(source);
    let dir = target_dir().join(name);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let _lock = locked(name)?;
    let mut fresh = true;
    for file in ["package.json", "package-lock.json"].iter().chain(files) {
        let want = fs::read(source.join(file)).map_err(|e| format!("{file}: {e}"))?;
        let have = fs::read(dir.join(file)).ok();
        if have.as_deref() != Some(want.as_slice()) {
            fresh = false;
            fs::write(dir.join(file), &want).map_err(|e| format!("{file}: {e}"))?;
        }
    }
    let marker = dir.join("node_modules/.installed");
    if fresh && marker.exists() {
        return Ok(dir);
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .output()
        .map_err(|e| format!("npm (Node.js and npm are needed for {name}): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "npm ci in {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    fs::write(&marker, b"").map_err(|e| format!("{}: {e}", marker.display()))?;
    Ok(dir)
}

/// Debian's Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's ChromeDriver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Installs Debian's Chromium and ChromeDriver with apt-get if they are missing (as root).
pub fn ensure_chromium() -> Result<(), String> {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return Ok(());
    }
    let _lock = locked("chromium")?;
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return Ok(());
    }
    eprintln!("installing Debian's chromium and chromium-driver (apt-get, about a minute)");
    let run = |args: &[&str]| -> Result<(), String> {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("apt-get: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "`apt-get {}` failed ({status}); install chromium and chromium-driver (as root) to run the browser tests",
                args.join(" ")
            ))
        }
    };
    run(&["update", "-qq"])?;
    run(&["install", "-y", "-qq", "chromium", "chromium-driver"])
}
