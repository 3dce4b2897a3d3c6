//! `cargo run -p jit-local --bin prerequisites -- chromium`: installs what the named tests need
//! ahead of the run, through the same code the tests call when something is missing (CI uses
//! it so an apt-get minute is not spent inside a test's own timeouts).

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut failed = false;
    for what in std::env::args().skip(1) {
        let outcome = match what.as_str() {
            "chromium" => jit_local::prerequisites::ensure_chromium(),
            "emulator" => jit_local::ensure_installed()
                .map(drop)
                .map_err(|e| e.to_string()),
            other => Err(format!(
                "unknown prerequisite `{other}` (chromium, emulator)"
            )),
        };
        match outcome {
            Ok(()) => eprintln!("{what}: ready"),
            Err(why) => {
                eprintln!("{what}: {why}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
