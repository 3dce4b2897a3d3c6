//! Where `jit` finds its settings, its sign-in and its cache, and the caller's token.

use std::path::PathBuf;

use serde::Deserialize;

use crate::api::Failure;
use crate::login;

/// The config file: `$JIT_CONFIG`, else `$XDG_CONFIG_HOME/jit/config.json`, else
/// `~/.config/jit/config.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub api_url: Option<String>,
    /// The identity provider's issuer URL, for `jit login`.
    pub issuer: Option<String>,
    /// The client id registered for the command.
    pub client_id: Option<String>,
    /// A command that prints a token (for example one that asks the organisation's provider).
    pub token_command: Option<String>,
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

pub fn config_dir() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .map_or_else(|| home().join(".config"), PathBuf::from)
        .join("jit")
}

fn config_path() -> PathBuf {
    std::env::var_os("JIT_CONFIG").map_or_else(|| config_dir().join("config.json"), PathBuf::from)
}

pub fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("JIT_CACHE_DIR") {
        return PathBuf::from(p);
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map_or_else(|| home().join(".cache"), PathBuf::from)
        .join("jit/credentials")
}

pub fn load_config() -> Result<Config, Failure> {
    let path = config_path();
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| Failure::Usage(format!("{}: {e}", path.display()))),
        Err(_) => Ok(Config::default()),
    }
}

/// The token: `JIT_TOKEN`, else what the configured token command prints, else the one
/// `jit login` stored (renewed with its refresh token when it is about to expire).
pub async fn token(config: &Config) -> Result<Option<String>, Failure> {
    if let Ok(token) = std::env::var("JIT_TOKEN")
        && !token.trim().is_empty()
    {
        return Ok(Some(token.trim().to_owned()));
    }
    let Some(command) = std::env::var("JIT_TOKEN_COMMAND")
        .ok()
        .or_else(|| config.token_command.clone())
    else {
        return login::current(&login::path(config_dir())).await;
    };
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&command)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| Failure::SignIn(format!("the token command could not run: {e}")))?;
    if !out.status.success() {
        return Err(Failure::SignIn(format!(
            "the token command failed ({}); sign in with your provider and try again",
            out.status
        )));
    }
    Ok(Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()))
}
