//! `jit`: ask for just-in-time AWS access, review requests, pull and use short-lived
//! credentials, and verify the audit trail, from a terminal or a script.

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
mod bucket;
mod cache;
mod cmd;
mod config;
mod ctx;
mod login;
mod policy;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use jit_core::domain::ReviewDecision;
use serde_json::json;

use api::{Api, Failure};
use cache::Cache;
use config::{Config, cache_dir, load_config, token};
use ctx::Ctx;

const EXIT_CODES: &str = "Exit codes: 0 done; 1 other failure; 2 bad usage or input; 3 not signed \
in or token refused; 4 not permitted or not found; 5 not in a state that allows it (or not \
granted); 6 API unreachable or unavailable; 7 audit export or bucket does not verify; 8 no active grant \
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
/// How results are printed.
pub enum Output {
    /// For people.
    Text,
    /// For scripts: the API's JSON.
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
    Request(cmd::request::Ask),
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
    /// What a grant's sessions did, from CloudTrail (minutes late), oldest first.
    Activity {
        id: String,
        /// Keep printing new events until the grant has ended and CloudTrail's delay passed.
        #[arg(long, conflicts_with = "verify")]
        follow: bool,
        /// Check the activity against the grant's signed records that cover it (exit 7 if
        /// something was deleted, edited or added).
        #[arg(long)]
        verify: bool,
    },
    /// Approve a request.
    Approve {
        id: String,
        #[arg(long)]
        comment: Option<String>,
        /// `id` is a request of several targets: approve every item you may, in one call.
        #[arg(long)]
        bundle: bool,
    },
    /// Deny a request.
    Deny {
        id: String,
        #[arg(long)]
        comment: String,
        /// `id` is a request of several targets: deny every item you may, in one call.
        #[arg(long)]
        bundle: bool,
    },
    /// Withdraw your pending request, or your scheduled grant before it opens.
    Cancel { id: String },
    /// Ask for more time on your active grant: at once where the rules say so, otherwise
    /// through the target's reviewers (`--wait` for them).
    Extend(cmd::extend::Ask),
    /// End a grant now, live sessions included.
    Revoke {
        id: String,
        #[arg(long)]
        reason: String,
        /// `id` is a request of several targets: revoke every active item you may.
        #[arg(long)]
        bundle: bool,
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
    /// An auditor's report of a period, from a trail that verifies: a row per grant, totals
    /// per target and person, and the exceptions (break-glass reviews missing or late,
    /// guardrail revocations, requests the rules refused).
    Report(cmd::report::Ask),
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
    /// Approvals in Slack.
    Slack {
        #[command(subcommand)]
        command: SlackCommand,
    },
}

#[derive(Subcommand)]
enum SlackCommand {
    /// Link your Slack user to you with the one-time code `/jit link` gave you there.
    Link { code: String },
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
    /// Verify an export offline (every link, signature, head and checkpoint), or the audit
    /// bucket straight from S3 (`--bucket`: the chain of checkpoints there, each period's
    /// object by the version its checkpoint names, and any later version or delete marker).
    Verify {
        /// The export file (not with --bucket).
        #[arg(required_unless_present = "bucket", conflicts_with = "bucket")]
        file: Option<PathBuf>,
        /// The functions' public keys as obtained separately (a JSON list), instead of the
        /// ones the export carries (with --bucket: instead of the API's).
        #[arg(long)]
        keys: Option<PathBuf>,
        /// The audit bucket (the stack's `AuditBucketName` output). Credentials come from
        /// the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).
        #[arg(long)]
        bucket: Option<String>,
        /// An S3 endpoint other than AWS's, such as the local stack's emulator.
        #[arg(long, env = "AWS_ENDPOINT_URL_S3", requires = "bucket")]
        endpoint_url: Option<String>,
        /// The bucket's region.
        #[arg(
            long,
            env = "AWS_REGION",
            default_value = "us-east-1",
            requires = "bucket"
        )]
        region: String,
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
        /// The scheduled start (RFC 3339) the rules judge as the window; `--at` by default.
        #[arg(long)]
        starts_at: Option<String>,
        /// As if the on-call provider had the requester on call at this escalation level
        /// (only for a target whose `on_call` asks); not on call by default.
        #[arg(long)]
        on_call_level: Option<u32>,
        #[arg(long, default_value = "infra/policies")]
        dir: PathBuf,
    },
}

/// The API, the cache and the output for a command that may call the API: the API's
/// address and the caller's token from the flags, the environment or the config file.
async fn context(cli: &Cli) -> Result<Ctx, Failure> {
    // Verifying needs no API, except for the keys of a bucket when none are pinned.
    let needs_api = !matches!(
        cli.command,
        Command::Policy { .. }
            | Command::Report(cmd::report::Ask {
                export: Some(_),
                ..
            })
            | Command::Audit {
                command: AuditCommand::Verify { keys: Some(_), .. }
                    | AuditCommand::Verify { bucket: None, .. }
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
    Ok(ctx)
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    match &cli.command {
        Command::Login {
            issuer,
            client_id,
            no_browser,
            no_open,
        } => {
            let sign_in = cmd::account::SignIn {
                issuer: issuer.clone(),
                client_id: client_id.clone(),
                device: *no_browser,
                open: !*no_open,
            };
            return cmd::account::login(sign_in, cli.output).await;
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "jit", &mut std::io::stdout());
            return Ok(0);
        }
        Command::Logout => return Ok(cmd::account::logout(cli.output)),
        _ => {}
    }
    let ctx = context(&cli).await?;
    match cli.command {
        Command::Request(ask) => cmd::request::run(&ctx, ask).await,
        Command::Targets => cmd::targets::run(&ctx).await,
        Command::Ls { reviewable, state } => cmd::ls::run(&ctx, reviewable, state).await,
        Command::Show { id } => cmd::show::run(&ctx, &id).await,
        Command::Activity {
            id, verify: true, ..
        } => cmd::activity::verify(&ctx, &id).await,
        Command::Activity { id, follow, .. } => cmd::activity::run(&ctx, &id, follow).await,
        Command::Approve {
            id,
            comment,
            bundle,
        } => cmd::review::run(&ctx, &id, ReviewDecision::Approve, comment, bundle).await,
        Command::Deny {
            id,
            comment,
            bundle,
        } => cmd::review::run(&ctx, &id, ReviewDecision::Deny, Some(comment), bundle).await,
        Command::Cancel { id } => cmd::cancel::run(&ctx, &id).await,
        Command::Slack {
            command: SlackCommand::Link { code },
        } => cmd::slack::link(&ctx, &code).await,
        Command::Extend(ask) => cmd::extend::run(&ctx, ask).await,
        Command::Revoke { id, reason, bundle } => {
            cmd::revoke::run(&ctx, &id, &reason, bundle).await
        }
        Command::PostReview { id, comment } => cmd::review::post(&ctx, &id, comment).await,
        Command::Credentials {
            grant_or_target,
            no_cache,
        } => cmd::session::credentials(&ctx, &grant_or_target, no_cache).await,
        Command::Exec {
            grant_or_target,
            no_cache,
            command,
        } => cmd::session::exec(&ctx, &grant_or_target, no_cache, &command).await,
        Command::Console {
            grant_or_target,
            destination,
            open,
        } => cmd::console::run(&ctx, &grant_or_target, destination, open).await,
        Command::Audit {
            command: AuditCommand::Export { from, to },
        } => {
            let lines = audit::export(&ctx.api, &from, &to).await?;
            print!("{lines}");
            Ok(0)
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    file,
                    keys,
                    bucket,
                    endpoint_url,
                    region,
                },
        } => {
            let read = |path: &PathBuf| {
                std::fs::read_to_string(path)
                    .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))
            };
            let pinned = keys.as_ref().map(read).transpose()?;
            if let Some(bucket) = bucket {
                let location = bucket::Location {
                    bucket: bucket.clone(),
                    endpoint: endpoint_url.clone(),
                    region: region.clone(),
                };
                let ring = audit::key_ring(&ctx.api, pinned.as_deref()).await?;
                // With the API (keys not pinned), the bucket's checkpoints are also compared
                // with the table's: one deleted or rewritten there is reported.
                let table = if pinned.is_none() {
                    Some(&ctx.api)
                } else {
                    None
                };
                let summary = bucket::verify(&location, &ring, table).await?;
                ctx.print(&summary, |s| {
                    format!(
                        "verified from the bucket: checkpoints {} to {}, {} period objects \
                         holding {} records, {} to {}",
                        s.first_seq.unwrap_or_default(),
                        s.last_seq.unwrap_or_default(),
                        s.periods,
                        s.records,
                        s.checkpointed_from
                            .map(|t| t.to_string())
                            .unwrap_or_default(),
                        s.checkpointed_until
                            .map(|t| t.to_string())
                            .unwrap_or_default(),
                    )
                });
                return Ok(0);
            }
            let Some(file) = file else {
                return Err(Failure::Usage("name an export file or --bucket".to_owned()));
            };
            let text = read(&file)?;
            let summary = audit::verify(&text, pinned.as_deref())?;
            ctx.print(&summary, |s| {
                format!(
                    "verified: {} records of {} grants, {} checkpoints, {} closed periods counted",
                    s.records, s.grants, s.checkpoints, s.periods_checked
                )
            });
            Ok(0)
        }
        Command::Report(ask) => cmd::report::run(&ctx, ask).await,
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
                    r.policies,
                    json!(r.targets),
                    json!(r.policy_hash)
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
                    starts_at,
                    on_call_level,
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
                    starts_at: starts_at.as_deref(),
                    on_call_level,
                },
            )?;
            ctx.print(&answer, |a| format!("{}: {}", a.outcome, a.why));
            Ok(0)
        }
    }
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
