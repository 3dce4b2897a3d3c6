//! `jit credentials` and `jit exec`: a session for a grant, from the cache when one is still
//! good, else pulled from the issuer.

use jit_api::GrantView;
use jit_core::domain::{GrantId, GrantState};

use crate::api::Failure;
use crate::cache::Entry;
use crate::ctx::Ctx;

/// The grant `grant_or_target` names: a grant id as given, or the caller's active grant of
/// the target.
pub async fn resolve_grant(ctx: &Ctx, grant_or_target: &str) -> Result<GrantView, Failure> {
    if GrantId::parse(grant_or_target).is_ok() {
        let grant = ctx.api.call(|api| api.get_request(grant_or_target)).await?;
        ctx.forget_ended(&grant);
        return Ok(grant);
    }
    let active = GrantState::Active.as_str();
    let mine = ctx
        .api
        .call(|api| api.list_requests("mine", Some(active), 100, None))
        .await?;
    mine.items
        .into_iter()
        .find(|g| g.target == grant_or_target)
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
    let credentials = match ctx.api.call(|api| api.credentials(&grant.id)).await {
        Ok(c) => c,
        Err(e) => {
            // A refused refresh means the grant ended or cannot be used: forget its session.
            ctx.cache.drop_grant(&grant.id);
            return Err(e);
        }
    };
    let entry = Entry {
        grant: grant.id,
        target: grant.target,
        credentials,
    };
    // The issuer has recorded this session: a cache that cannot be written costs the next
    // call a fresh session, never this one.
    if !no_cache && let Err(e) = ctx.cache.put(&entry) {
        note!("warning: the session was not cached ({e}); the next call asks for a new one");
    }
    Ok(entry)
}

/// Prints `credential_process` JSON: what the AWS CLI and SDKs read, whatever `--output`.
pub async fn credentials(ctx: &Ctx, grant_or_target: &str, no_cache: bool) -> Result<u8, Failure> {
    let entry = session(ctx, grant_or_target, no_cache).await?;
    let json = serde_json::to_string(&entry.credentials)
        .map_err(|e| Failure::Other(format!("cannot write the credentials: {e}")))?;
    println!("{json}");
    Ok(0)
}

/// Runs `command` with the session in its environment; its exit code is passed on.
pub async fn exec(
    ctx: &Ctx,
    grant_or_target: &str,
    no_cache: bool,
    command: &[String],
) -> Result<u8, Failure> {
    let entry = session(ctx, grant_or_target, no_cache).await?;
    let c = &entry.credentials;
    let (program, args) = command
        .split_first()
        .ok_or_else(|| Failure::Usage("no command to run after `--`".into()))?;
    let status = std::process::Command::new(program)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", &c.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &c.secret_access_key)
        .env("AWS_SESSION_TOKEN", &c.session_token)
        .env("AWS_CREDENTIAL_EXPIRATION", &c.expiration)
        .env_remove("AWS_PROFILE")
        // The person's bearer token is theirs, not the command's.
        .env_remove("JIT_TOKEN")
        .status()
        .map_err(|e| Failure::Usage(format!("cannot run `{program}`: {e}")))?;
    Ok(exit_of(status))
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
