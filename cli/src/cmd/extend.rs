//! `jit extend`: more time on one's own active grant, and with `--wait`, wait for reviewers.

use jit_api::{DurationInput, ExtendRequest};
use jit_core::domain::GrantState;

use crate::api::Failure;
use crate::cmd::request::{parse_wait, poll};
use crate::ctx::{Ctx, summary};

/// What `jit extend` was asked.
#[derive(clap::Args)]
pub struct Ask {
    /// The grant.
    pub id: String,
    /// How much time to add to its end: 30m, 1h...
    #[arg(long = "for")]
    pub duration: String,
    /// Why more time is needed, in words a reviewer understands.
    #[arg(long)]
    pub reason: String,
    /// When reviewers must decide, wait until they have (or the grant has ended).
    #[arg(long)]
    pub wait: bool,
    /// How long to wait at most.
    #[arg(long, default_value = "15m")]
    pub timeout: String,
}

/// Asks; the exit code is 0 when extended (or, without `--wait`, when the extension waits for
/// reviewers), 5 when it was denied or the grant ended first.
pub async fn run(ctx: &Ctx, ask: Ask) -> Result<u8, Failure> {
    let timeout = parse_wait(&ask.timeout)?;
    let before = ctx.api.call(|api| api.get_request(&ask.id)).await?;
    let body = ExtendRequest {
        duration: DurationInput::Text(ask.duration),
        reason: ask.reason,
    };
    let id = ask.id;
    let answered = ctx.api.call(|api| api.extend(&id, &body)).await?;
    let Some(waiting) = &answered.extension else {
        ctx.print(&answered, |g| format!("extended: {}", summary(g)));
        return Ok(0);
    };
    if !ask.wait {
        let needed = waiting.approvals_required;
        ctx.print(&answered, |g| {
            format!("extension waiting for {needed} approval(s): {}", summary(g))
        });
        return Ok(0);
    }
    let decided = poll(
        &id,
        timeout,
        async || ctx.api.call(|api| api.get_request(&id)).await,
        |g| g.extension.is_none() || g.state != GrantState::Active,
        |_| {},
    )
    .await?;
    let Some(g) = decided else {
        return Err(Failure::Conflict(format!(
            "the extension of {id} is still waiting for review after {}s; see it with `jit show {id}`",
            timeout.as_secs()
        )));
    };
    let extended = g.state == GrantState::Active && g.ends_at != before.ends_at;
    ctx.print(&g, |g| {
        let verdict = if extended { "extended" } else { "not extended" };
        format!("{verdict}: {}", summary(g))
    });
    Ok(if extended { 0 } else { 5 })
}
