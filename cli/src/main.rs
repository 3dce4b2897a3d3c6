//! `jit`: ask for just-in-time AWS access, review requests, pull and use short-lived
//! credentials, and verify the audit trail, from a terminal or a script.
// Answers are JSON navigated by key: `serde_json::Value`'s index by key yields `Null` for a
// missing field and never panics (the lint cannot tell it from slice indexing).
#![allow(clippy::indexing_slicing)]

/// A line on stderr for the person at the terminal; a closed stderr is not worth a panic.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// As `note!`, without the line end (the waiting spinner).
macro_rules! note_inline {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

mod api;
mod audit;
mod cache;
mod login;
mod policy;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use jit_core::domain::GrantId;
use serde::Deserialize;
use serde_json::{Value, json};

use api::{Api, Failure};
use cache::{Cache, Entry};

const EXIT_CODES: &str = "Exit codes: 0 done; 1 other failure; 2 bad usage or input; 3 not signed \
in or token refused; 4 not permitted or not found; 5 not in a state that allows it (or not \
granted); 6 API unreachable or unavailable; 7 audit export does not verify; 8 no active grant \
for the target. The command run by `jit exec` passes its own code through.";

#[derive(Parser)]
#[command(name = "jit", version, about = "Just-in-time AWS access: request, review, use, audit", after_help = EXIT_CODES)]
struct Cli {
    /// The broker's API URL (default: JIT_API_URL, then `api_url` in the config file).
    #[arg(long, global = true, env = "JIT_API_URL")]
    api: Option<String>,
    /// How results are printed: text for people, json for scripts.
    #[arg(long, global = true, value_enum, default_value = "text")]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in with the organisation's identity provider (browser, or a code with
    /// --no-browser).
    Login {
        /// The provider's issuer URL (default: JIT_ISSUER, then `issuer` in the config file).
        #[arg(long, env = "JIT_ISSUER")]
        issuer: Option<String>,
        /// The client id registered for the command (default: `client_id` in the config
        /// file, then `jit-cli`).
        #[arg(long, env = "JIT_CLIENT_ID")]
        client_id: Option<String>,
        /// Sign in with a code on another device instead of a browser here.
        #[arg(long)]
        no_browser: bool,
        /// Print the sign-in address without trying to open a browser.
        #[arg(long)]
        no_open: bool,
    },
    /// Forget the stored sign-in.
    Logout,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Ask for access to a target.
    Request {
        /// The target, as `jit policy check` lists them.
        target: String,
        /// For how long: 30m, 1h, 4h...
        #[arg(long = "for")]
        duration: String,
        /// Why, in words a reviewer understands.
        #[arg(long)]
        reason: String,
        /// The ticket or incident it is for.
        #[arg(long)]
        ticket: Option<String>,
        /// Invoke break-glass (only where the rules permit it; loud, reviewed afterwards).
        #[arg(long)]
        break_glass: bool,
        /// Wait until it is approved, denied or timed out.
        #[arg(long)]
        wait: bool,
        /// How long to wait at most.
        #[arg(long, default_value = "15m")]
        timeout: String,
    },
    /// The targets you may ask for, and whether a ticket is needed.
    Targets,
    /// List your requests, or the ones you may review.
    Ls {
        /// Pending requests you may approve instead of your own.
        #[arg(long)]
        reviewable: bool,
        /// Only this state (PENDING, ACTIVE, ...).
        #[arg(long)]
        state: Option<String>,
    },
    /// One request or grant.
    Show { id: String },
    /// Approve a request.
    Approve {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Deny a request.
    Deny {
        id: String,
        #[arg(long)]
        comment: String,
    },
    /// Withdraw your pending request.
    Cancel { id: String },
    /// End a grant now, live sessions included.
    Revoke {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Record the review a break-glass grant owes.
    PostReview {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Print `credential_process` JSON for a grant (by id, or your active grant of a target).
    Credentials {
        grant_or_target: String,
        /// Pull a new session even if a cached one is still good (also JIT_NO_CACHE=1).
        #[arg(long, env = "JIT_NO_CACHE", value_parser = clap::builder::BoolishValueParser::new())]
        no_cache: bool,
    },
    /// Run a command with the grant's session in its environment; its exit code is passed on.
    Exec {
        grant_or_target: String,
        #[arg(long, env = "JIT_NO_CACHE", value_parser = clap::builder::BoolishValueParser::new())]
        no_cache: bool,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// A console sign-in link for a grant.
    Console {
        grant_or_target: String,
        /// Where in the console to land.
        #[arg(long)]
        destination: Option<String>,
        /// Open it in the browser.
        #[arg(long)]
        open: bool,
    },
    /// Export or verify the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Check the rules, or explain what they decide.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Write the trail of [from, to) as JSON Lines to stdout (signatures, heads, checkpoints,
    /// keys included).
    Export {
        /// RFC 3339, e.g. 2026-11-01T00:00:00Z.
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
    /// Verify an export offline: every link, signature, head and checkpoint.
    Verify {
        file: PathBuf,
        /// The functions' public keys as obtained separately (a JSON list), instead of the
        /// ones the export carries.
        #[arg(long)]
        keys: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Load the rules as the functions do; report the first broken file and line, and every
    /// target the deployment would refuse (in the broker's account, or with no revoker role).
    Check {
        #[arg(default_value = "infra/policies")]
        dir: PathBuf,
        /// The broker's account (the template's AWS::AccountId).
        #[arg(long)]
        broker_account: Option<String>,
        /// The deployment sets TargetsInBrokerAccount=true.
        #[arg(long)]
        targets_in_broker_account: bool,
    },
    /// What the rules would decide for a request.
    Explain {
        #[arg(long)]
        user: String,
        /// Comma-separated.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        #[arg(long)]
        target: String,
        #[arg(long = "for")]
        duration: String,
        #[arg(long)]
        ticket: Option<String>,
        #[arg(long, default_value = "explaining a request")]
        reason: String,
        #[arg(long)]
        break_glass: bool,
        /// When (RFC 3339); now by default.
        #[arg(long)]
        at: Option<String>,
        #[arg(long, default_value = "infra/policies")]
        dir: PathBuf,
    },
}

/// The config file: `$JIT_CONFIG`, else `$XDG_CONFIG_HOME/jit/config.json`, else
/// `~/.config/jit/config.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    api_url: Option<String>,
    /// The identity provider's issuer URL, for `jit login`.
    issuer: Option<String>,
    /// The client id registered for the command.
    client_id: Option<String>,
    /// A command that prints a token (for example one that asks the organisation's provider).
    token_command: Option<String>,
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

fn config_dir() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .map_or_else(|| home().join(".config"), PathBuf::from)
        .join("jit")
}

fn config_path() -> PathBuf {
    std::env::var_os("JIT_CONFIG").map_or_else(|| config_dir().join("config.json"), PathBuf::from)
}

fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("JIT_CACHE_DIR") {
        return PathBuf::from(p);
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map_or_else(|| home().join(".cache"), PathBuf::from)
        .join("jit/credentials")
}

fn load_config() -> Result<Config, Failure> {
    let path = config_path();
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| Failure::Usage(format!("{}: {e}", path.display()))),
        Err(_) => Ok(Config::default()),
    }
}

/// The token: `JIT_TOKEN`, else what the configured token command prints, else the one
/// `jit login` stored (renewed with its refresh token when it is about to expire).
async fn token(config: &Config) -> Result<Option<String>, Failure> {
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

struct Ctx {
    api: Api,
    cache: Cache,
    output: Output,
}

impl Ctx {
    fn print(&self, value: &Value, text: impl FnOnce(&Value) -> String) {
        let line = match self.output {
            Output::Json => value.to_string(),
            Output::Text => text(value),
        };
        println!("{line}");
    }

    /// Forgets cached sessions of grants `jit` sees have ended.
    fn forget_ended(&self, grant: &Value) {
        let state = grant["state"].as_str().unwrap_or_default();
        if !matches!(state, "PENDING" | "ACTIVE")
            && let Some(id) = grant["id"].as_str()
        {
            self.cache.drop_grant(id);
        }
    }
}

fn summary(g: &Value) -> String {
    let s = |k: &str| g[k].as_str().unwrap_or("-").to_owned();
    let mut line = format!(
        "{}  {:<9} {}  {}",
        s("id"),
        s("state"),
        s("target"),
        s("duration")
    );
    if let Some(ends) = g["ends_at"].as_str() {
        line.push_str(&format!("  until {ends}"));
    }
    if g["state"] == "PENDING"
        && let Some(n) = g["approvals_required"].as_u64()
    {
        let got = g["reviews"].as_array().map_or(0, Vec::len);
        line.push_str(&format!("  reviews {got}/{n}"));
    }
    line
}

fn parse_wait(text: &str) -> Result<Duration, Failure> {
    let (n, unit) = text.split_at(text.len().saturating_sub(1));
    let n: u64 = n.parse().map_err(|_| {
        Failure::Usage(format!("`{text}` is not a duration such as 90s, 15m or 1h"))
    })?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => {
            return Err(Failure::Usage(format!(
                "`{text}` is not a duration such as 90s, 15m or 1h"
            )));
        }
    };
    Ok(Duration::from_secs(secs))
}

/// The grant `grant_or_target` names: a grant id as given, or the caller's active grant of
/// the target.
async fn resolve_grant(ctx: &Ctx, grant_or_target: &str) -> Result<Value, Failure> {
    if GrantId::parse(grant_or_target).is_ok() {
        let grant = ctx
            .api
            .call("GET", &format!("/requests/{grant_or_target}"), None)
            .await?;
        ctx.forget_ended(&grant);
        return Ok(grant);
    }
    let mine = ctx
        .api
        .call("GET", "/requests?scope=mine&state=ACTIVE&limit=100", None)
        .await?;
    mine["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| g["target"] == grant_or_target)
        .cloned()
        .ok_or_else(|| {
            Failure::NoGrant(format!(
                "you have no active grant for `{grant_or_target}`: ask for one with \
                 `jit request {grant_or_target} --for 1h --reason \"...\" --wait`"
            ))
        })
}

/// A session for `grant_or_target`: from the cache when one is good for five more minutes
/// (no API call at all), otherwise pulled from the issuer and cached.
async fn session(ctx: &Ctx, grant_or_target: &str, no_cache: bool) -> Result<Entry, Failure> {
    if !no_cache {
        let cached = if GrantId::parse(grant_or_target).is_ok() {
            ctx.cache.by_grant(grant_or_target)
        } else {
            ctx.cache.by_target(grant_or_target)
        };
        if let Some(entry) = cached {
            return Ok(entry);
        }
    }
    let grant = resolve_grant(ctx, grant_or_target).await?;
    let id = grant["id"].as_str().unwrap_or_default().to_owned();
    let pulled = ctx
        .api
        .call("POST", &format!("/grants/{id}/credentials"), None)
        .await;
    let credentials = match pulled {
        Ok(c) => c,
        Err(e) => {
            // A refused refresh means the grant ended or cannot be used: forget its session.
            ctx.cache.drop_grant(&id);
            return Err(e);
        }
    };
    let entry = Entry {
        grant: id,
        target: grant["target"].as_str().unwrap_or_default().to_owned(),
        credentials,
    };
    // The issuer has recorded this session: a cache that cannot be written costs the next
    // call a fresh session, never this one.
    if !no_cache && let Err(e) = ctx.cache.put(&entry) {
        note!("warning: the session was not cached ({e}); the next call asks for a new one");
    }
    Ok(entry)
}

async fn review(
    ctx: &Ctx,
    id: &str,
    decision: &str,
    comment: Option<String>,
) -> Result<(), Failure> {
    let mut body = json!({"decision": decision});
    if let Some(c) = comment {
        body["comment"] = json!(c);
    }
    let g = ctx
        .api
        .call("POST", &format!("/requests/{id}/reviews"), Some(body))
        .await?;
    ctx.print(&g, summary);
    Ok(())
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    match &cli.command {
        Command::Login {
            issuer,
            client_id,
            no_browser,
            no_open,
        } => {
            let config = load_config()?;
            let issuer = issuer.clone().or(config.issuer).ok_or_else(|| {
                Failure::Usage(
                    "no identity provider: pass --issuer, set JIT_ISSUER, or put `issuer` in \
                     the config file"
                        .into(),
                )
            })?;
            let client_id = client_id
                .clone()
                .or(config.client_id)
                .unwrap_or_else(|| "jit-cli".to_owned());
            let session = login::login(&issuer, &client_id, *no_browser, !*no_open).await?;
            let path = login::path(config_dir());
            login::save(&path, &session)?;
            note!("signed in; the token is kept in {}", path.display());
            if cli.output == Output::Json {
                println!("{}", json!({"signed_in": true, "token_file": path}));
            }
            return Ok(0);
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "jit", &mut std::io::stdout());
            return Ok(0);
        }
        Command::Logout => {
            let path = login::path(config_dir());
            match std::fs::remove_file(&path) {
                Ok(()) => note!("signed out"),
                Err(_) => note!("not signed in"),
            }
            // Sessions pulled while signed in go too: signing out ends local access.
            let dropped = Cache::new(cache_dir()).clear();
            if dropped > 0 {
                note!("{dropped} cached AWS session(s) removed");
            }
            if cli.output == Output::Json {
                println!("{}", json!({"signed_in": false}));
            }
            return Ok(0);
        }
        _ => {}
    }
    let needs_api = !matches!(
        cli.command,
        Command::Policy { .. }
            | Command::Audit {
                command: AuditCommand::Verify { .. }
            }
    );
    let config = if needs_api {
        load_config()?
    } else {
        Config::default()
    };
    let base = cli
        .api
        .clone()
        .or_else(|| config.api_url.clone())
        .unwrap_or_default();
    if needs_api && base.is_empty() {
        return Err(Failure::Usage(
            "no API URL: pass --api, set JIT_API_URL, or put `api_url` in the config file".into(),
        ));
    }
    let token = if needs_api {
        token(&config).await
    } else {
        Ok(None)
    };
    let ctx = Ctx {
        api: Api::new(&base, token.as_ref().ok().cloned().flatten())?,
        cache: Cache::new(cache_dir()),
        output: cli.output,
    };
    // A cached session needs no token and no call, so credentials and exec go on without one
    // and fail for want of it only if they must call the API.
    if let Err(e) = token
        && !matches!(
            cli.command,
            Command::Credentials { .. } | Command::Exec { .. }
        )
    {
        return Err(e);
    }
    match cli.command {
        Command::Request {
            target,
            duration,
            reason,
            ticket,
            break_glass,
            wait,
            timeout,
        } => {
            let timeout = parse_wait(&timeout)?;
            let mut body = json!({"target": target, "duration": duration, "reason": reason,
                "break_glass": break_glass});
            if let Some(t) = ticket {
                body["ticket"] = json!(t);
            }
            let created = ctx.api.call("POST", "/requests", Some(body)).await?;
            let id = created["id"].as_str().unwrap_or_default().to_owned();
            if !wait {
                ctx.print(&created, |g| format!("requested: {}", summary(g)));
                return Ok(0);
            }
            let started = Instant::now();
            let spin = std::io::stderr().is_terminal();
            let frames = ['|', '/', '-', '\\'];
            let mut tick = 0;
            loop {
                let g = ctx
                    .api
                    .call("GET", &format!("/requests/{id}"), None)
                    .await?;
                if g["state"] != "PENDING" {
                    if spin {
                        note_inline!("\r\x1b[K");
                    }
                    let granted = g["state"] == "ACTIVE";
                    ctx.print(&g, |g| {
                        if granted {
                            format!("granted: {}", summary(g))
                        } else {
                            format!("not granted: {}", summary(g))
                        }
                    });
                    return Ok(if granted { 0 } else { 5 });
                }
                if started.elapsed() > timeout {
                    return Err(Failure::Conflict(format!(
                        "request {id} is still waiting for review after {}; see it with `jit show {id}`",
                        timeout.as_secs()
                    )));
                }
                if spin {
                    let reviews = g["reviews"].as_array().map_or(0, Vec::len);
                    let needed = g["approvals_required"].as_u64().unwrap_or(0);
                    note_inline!(
                        "\r{} waiting for approval of {id} ({reviews}/{needed} reviews)",
                        frames.get(tick % 4).copied().unwrap_or('|')
                    );
                    let _ = std::io::stderr().flush();
                    tick += 1;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Command::Targets => {
            let list = ctx.api.call("GET", "/targets", None).await?;
            ctx.print(&list, |l| {
                let items = l["items"].as_array().cloned().unwrap_or_default();
                if items.is_empty() {
                    return "no target you may ask for".to_owned();
                }
                items
                    .iter()
                    .map(|t| {
                        format!(
                            "{:<20} up to {:<4} {} approval(s){}  {}",
                            t["id"].as_str().unwrap_or_default(),
                            t["max_duration"].as_str().unwrap_or_default(),
                            t["approvals_required"],
                            if t["ticket_required"] == true {
                                ", ticket needed"
                            } else {
                                ""
                            },
                            t["description"].as_str().unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(0)
        }
        Command::Ls { reviewable, state } => {
            let scope = if reviewable { "reviewable" } else { "mine" };
            let mut path = format!("/requests?scope={scope}&limit=100");
            if let Some(s) = state {
                path.push_str(&format!("&state={}", s.to_ascii_uppercase()));
            }
            let list = ctx.api.call("GET", &path, None).await?;
            let items = list["items"].as_array().cloned().unwrap_or_default();
            if !reviewable {
                items.iter().for_each(|g| ctx.forget_ended(g));
            }
            ctx.print(&list, |_| {
                if items.is_empty() {
                    "nothing".to_owned()
                } else {
                    items.iter().map(summary).collect::<Vec<_>>().join("\n")
                }
            });
            Ok(0)
        }
        Command::Show { id } => {
            let g = ctx
                .api
                .call("GET", &format!("/requests/{id}"), None)
                .await?;
            ctx.forget_ended(&g);
            ctx.print(&g, |g| serde_json::to_string_pretty(g).unwrap_or_default());
            Ok(0)
        }
        Command::Approve { id, comment } => review(&ctx, &id, "approve", comment).await.map(|()| 0),
        Command::Deny { id, comment } => review(&ctx, &id, "deny", Some(comment)).await.map(|()| 0),
        Command::Cancel { id } => {
            let g = ctx
                .api
                .call("POST", &format!("/requests/{id}/cancel"), None)
                .await?;
            ctx.print(&g, summary);
            Ok(0)
        }
        Command::Revoke { id, reason } => {
            let g = ctx
                .api
                .call(
                    "POST",
                    &format!("/grants/{id}/revoke"),
                    Some(json!({"reason": reason})),
                )
                .await?;
            ctx.cache.drop_grant(&id);
            ctx.print(&g, |g| {
                format!(
                    "revoked {id}; live sessions: {}",
                    g["live_sessions"].as_str().unwrap_or("?")
                )
            });
            Ok(0)
        }
        Command::PostReview { id, comment } => {
            let body = comment.map(|c| json!({"comment": c}));
            let g = ctx
                .api
                .call("POST", &format!("/grants/{id}/post-review"), body)
                .await?;
            ctx.print(&g, summary);
            Ok(0)
        }
        Command::Credentials {
            grant_or_target,
            no_cache,
        } => {
            let entry = session(&ctx, &grant_or_target, no_cache).await?;
            // Always the credential_process shape: this is what the AWS CLI and SDKs read.
            println!("{}", entry.credentials);
            Ok(0)
        }
        Command::Exec {
            grant_or_target,
            no_cache,
            command,
        } => {
            let entry = session(&ctx, &grant_or_target, no_cache).await?;
            let c = &entry.credentials;
            let (program, args) = command
                .split_first()
                .ok_or_else(|| Failure::Usage("no command to run after `--`".into()))?;
            let status = std::process::Command::new(program)
                .args(args)
                .env(
                    "AWS_ACCESS_KEY_ID",
                    c["AccessKeyId"].as_str().unwrap_or_default(),
                )
                .env(
                    "AWS_SECRET_ACCESS_KEY",
                    c["SecretAccessKey"].as_str().unwrap_or_default(),
                )
                .env(
                    "AWS_SESSION_TOKEN",
                    c["SessionToken"].as_str().unwrap_or_default(),
                )
                .env(
                    "AWS_CREDENTIAL_EXPIRATION",
                    c["Expiration"].as_str().unwrap_or_default(),
                )
                .env_remove("AWS_PROFILE")
                // The person's bearer token is theirs, not the command's.
                .env_remove("JIT_TOKEN")
                .status()
                .map_err(|e| Failure::Usage(format!("cannot run `{program}`: {e}")))?;
            Ok(exit_of(status))
        }
        Command::Console {
            grant_or_target,
            destination,
            open,
        } => {
            let grant = resolve_grant(&ctx, &grant_or_target).await?;
            let id = grant["id"].as_str().unwrap_or_default();
            let body = destination.map(|d| json!({"destination": d}));
            let link = ctx
                .api
                .call("POST", &format!("/grants/{id}/console"), body)
                .await?;
            let url = link["url"].as_str().unwrap_or_default().to_owned();
            if open {
                let opener = if cfg!(target_os = "macos") {
                    "open"
                } else {
                    "xdg-open"
                };
                if let Err(e) = std::process::Command::new(opener).arg(&url).status() {
                    note!("could not open a browser ({e}); the link is below");
                }
            }
            ctx.print(&link, |_| url.clone());
            Ok(0)
        }
        Command::Audit {
            command: AuditCommand::Export { from, to },
        } => {
            let lines = audit::export(&ctx.api, &from, &to).await?;
            print!("{lines}");
            Ok(0)
        }
        Command::Audit {
            command: AuditCommand::Verify { file, keys },
        } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::Usage(format!("{}: {e}", file.display())))?;
            let pinned = match keys {
                Some(path) => Some(
                    std::fs::read_to_string(&path)
                        .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?,
                ),
                None => None,
            };
            let summary = audit::verify(&text, pinned.as_deref())?;
            ctx.print(&summary, |s| {
                format!(
                    "verified: {} records of {} grants, {} checkpoints, {} closed periods counted",
                    s["records"], s["grants"], s["checkpoints"], s["periods_checked"]
                )
            });
            Ok(0)
        }
        Command::Login { .. } | Command::Logout | Command::Completions { .. } => Ok(0),
        Command::Policy {
            command:
                PolicyCommand::Check {
                    dir,
                    broker_account,
                    targets_in_broker_account,
                },
        } => {
            let isolation = jit_core::policy::Isolation {
                broker_account,
                targets_in_broker_account,
            };
            let report = policy::check(&dir, isolation)?;
            ctx.print(&report, |r| {
                format!(
                    "ok: {} policies, targets {}, policy hash {}",
                    r["policies"], r["targets"], r["policy_hash"]
                )
            });
            Ok(0)
        }
        Command::Policy {
            command:
                PolicyCommand::Explain {
                    user,
                    groups,
                    target,
                    duration,
                    ticket,
                    reason,
                    break_glass,
                    at,
                    dir,
                },
        } => {
            let answer = policy::explain(
                &dir,
                &policy::Question {
                    user: &user,
                    groups: &groups,
                    target: &target,
                    duration: &duration,
                    ticket: ticket.as_deref(),
                    reason: &reason,
                    break_glass,
                    at: at.as_deref(),
                },
            )?;
            ctx.print(&answer, |a| {
                format!(
                    "{}: {}",
                    a["outcome"].as_str().unwrap_or_default(),
                    a["why"].as_str().unwrap_or_default()
                )
            });
            Ok(0)
        }
    }
}

/// The exit code of a finished child: its own, or 128 + the signal that ended it.
fn exit_of(status: std::process::ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return u8::try_from(code & 0xff).unwrap_or(1);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return u8::try_from(128 + (signal & 0x7f)).unwrap_or(1);
        }
    }
    1
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            // Never a secret here: failures carry API details and paths, not credentials.
            note!("jit: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
