//! `jit request`: ask for access, and with `--wait`, wait for the decision.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use jit_api::{BundleView, CreateBundle, CreateRequest, DurationInput};
use jit_core::clock::{Clock, SystemClock, Timestamp};
use jit_core::domain::GrantState;

use crate::api::Failure;
use crate::ctx::{Ctx, summary};

/// What `jit request` was asked.
#[derive(clap::Args)]
pub struct Ask {
    /// The target, as `jit targets` lists them; several make one request of several targets
    /// (up to 20: one reason and ticket, each decided, used and ended on its own).
    #[arg(required = true, num_args = 1.., value_name = "TARGET")]
    pub targets: Vec<String>,
    /// For how long: 30m, 1h, 4h...
    #[arg(long = "for")]
    pub duration: String,
    /// Why, in words a reviewer understands.
    #[arg(long)]
    pub reason: String,
    /// The ticket or incident it is for.
    #[arg(long)]
    pub ticket: Option<String>,
    /// Invoke break-glass (only where the rules permit it; loud, reviewed afterwards).
    #[arg(long)]
    pub break_glass: bool,
    /// Schedule access to open later: an RFC 3339 time on a whole minute
    /// (2026-12-07T09:00:00Z), or `+` and a duration from now (+90m, +2h, +1d), rounded up to
    /// the next whole minute. At most 7 days ahead; approval must come before it.
    #[arg(long, value_name = "WHEN")]
    pub start: Option<String>,
    /// Wait until it is approved, denied or timed out.
    #[arg(long)]
    pub wait: bool,
    /// How long to wait at most.
    #[arg(long, default_value = "15m")]
    pub timeout: String,
}

/// Looks at `what` with `look` until `done` says so, for at most `timeout`, with the
/// client's growing poll interval; `waiting` hears each look that is not done yet. A look
/// that fails for a moment (unreachable, throttled, a 5xx) is no answer: what is waited on is
/// there either way, so the wait goes on to its end. `None` when the time ran out.
pub(crate) async fn poll<T>(
    what: &str,
    timeout: Duration,
    mut look: impl AsyncFnMut() -> Result<T, Failure>,
    done: impl Fn(&T) -> bool,
    mut waiting: impl FnMut(&T),
) -> Result<Option<T>, Failure> {
    let started = Instant::now();
    let mut polls = 0;
    loop {
        match look().await {
            Ok(seen) if done(&seen) => return Ok(Some(seen)),
            Ok(seen) => waiting(&seen),
            Err(Failure::Unreachable(why)) if started.elapsed() <= timeout => {
                note!("could not look at {what} just now ({why}); still waiting");
            }
            Err(e) => return Err(e),
        }
        if started.elapsed() > timeout {
            return Ok(None);
        }
        let left = timeout.saturating_sub(started.elapsed());
        tokio::time::sleep(jit_api::poll_interval(polls).min(left)).await;
        polls += 1;
    }
}

/// A wait such as `90s`, `15m` or `1h`.
pub(crate) fn parse_wait(text: &str) -> Result<Duration, Failure> {
    let (n, unit) = text.split_at(text.len().saturating_sub(1));
    let bad = || Failure::Usage(format!("`{text}` is not a duration such as 90s, 15m or 1h"));
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(secs))
}

/// `--start`: RFC 3339 as given, or `+DURATION` from `now` rounded up to a whole minute.
pub(crate) fn parse_start(text: &str, now: Timestamp) -> Result<String, Failure> {
    let Some(ahead) = text.strip_prefix('+') else {
        return Timestamp::parse_rfc3339(text)
            .map(Timestamp::to_rfc3339)
            .ok_or_else(|| {
                Failure::Usage(format!(
                    "--start `{text}` is neither an RFC 3339 time (2026-12-07T09:00:00Z) nor +DURATION (+2h)"
                ))
            });
    };
    let secs = match ahead.strip_suffix('d') {
        Some(days) => days
            .parse::<u64>()
            .ok()
            .map(|d| d * 86_400)
            .ok_or_else(|| Failure::Usage(format!("--start `{text}`: `{days}` is not a number")))?,
        None => parse_wait(ahead)?.as_secs(),
    };
    let at = now.plus_secs(i64::try_from(secs).unwrap_or(i64::MAX));
    let whole = at.unix_seconds().div_euclid(60) * 60;
    let rounded = if whole == at.unix_seconds() {
        at
    } else {
        Timestamp::from_unix_seconds(whole + 60)
    };
    Ok(rounded.to_rfc3339())
}

/// Asks; the exit code is 0 when asked (or granted, with `--wait`), 5 when not granted.
pub async fn run(ctx: &Ctx, ask: Ask) -> Result<u8, Failure> {
    let timeout = parse_wait(&ask.timeout)?;
    let starts_at = ask
        .start
        .as_deref()
        .map(|text| parse_start(text, SystemClock.now()))
        .transpose()?;
    if ask.targets.len() > 1 {
        return several(ctx, ask, starts_at, timeout).await;
    }
    let body = CreateRequest {
        target: ask.targets.into_iter().next().unwrap_or_default(),
        duration: DurationInput::Text(ask.duration),
        reason: ask.reason,
        ticket: ask.ticket,
        break_glass: ask.break_glass,
        starts_at,
    };
    let created = ctx.api.call(|api| api.create_request(&body)).await?;
    if !ask.wait {
        ctx.print(&created, |g| format!("requested: {}", summary(g)));
        return Ok(0);
    }
    let id = created.id;
    let spin = std::io::stderr().is_terminal();
    let frames = ['|', '/', '-', '\\'];
    let mut tick = 0;
    let decided = poll(
        &id,
        timeout,
        async || ctx.api.call(|api| api.get_request(&id)).await,
        |g| g.state != GrantState::Pending,
        |g| {
            if spin {
                let needed = g.approvals_required.unwrap_or(0);
                note_inline!(
                    "\r{} waiting for approval of {id} ({}/{needed} reviews)",
                    frames.get(tick % 4).copied().unwrap_or('|'),
                    g.reviews.len()
                );
                let _ = std::io::stderr().flush();
                tick += 1;
            }
        },
    )
    .await?;
    let Some(g) = decided else {
        return Err(Failure::Conflict(format!(
            "request {id} is still waiting for review after {}; see it with `jit show {id}`",
            timeout.as_secs()
        )));
    };
    if spin {
        note_inline!("\r\x1b[K");
    }
    let granted = g.state == GrantState::Active;
    ctx.print(&g, |g| {
        let verdict = if granted { "granted" } else { "not granted" };
        format!("{verdict}: {}", summary(g))
    });
    Ok(if granted { 0 } else { 5 })
}

/// `jit request a b c`: one request of several targets; with `--wait`, until none waits for
/// a decision (exit 0 when every item was granted, 5 otherwise).
async fn several(
    ctx: &Ctx,
    ask: Ask,
    starts_at: Option<String>,
    timeout: Duration,
) -> Result<u8, Failure> {
    if ask.break_glass {
        return Err(Failure::Usage(
            "--break-glass opens one target in an emergency; ask for one target".to_owned(),
        ));
    }
    let body = CreateBundle {
        targets: ask.targets,
        duration: DurationInput::Text(ask.duration),
        reason: ask.reason,
        ticket: ask.ticket,
        starts_at,
    };
    let created = ctx.api.call(|api| api.create_bundle(&body)).await?;
    if !ask.wait {
        ctx.print(&created, bundle_summary);
        return Ok(0);
    }
    let bundle = created.bundle;
    let decided = poll(
        &bundle,
        timeout,
        async || ctx.api.call(|api| api.get_bundle(&bundle)).await,
        |b| b.items.iter().all(|g| g.state != GrantState::Pending),
        |_| {},
    )
    .await?;
    let Some(b) = decided else {
        return Err(Failure::Conflict(format!(
            "request {bundle} still has items waiting for review after {}s; see it with `jit ls`",
            timeout.as_secs()
        )));
    };
    let granted = b.items.iter().all(|g| g.state == GrantState::Active);
    ctx.print(&b, bundle_summary);
    Ok(if granted { 0 } else { 5 })
}

/// A bundle, one item a line.
fn bundle_summary(b: &BundleView) -> String {
    let mut lines = vec![format!(
        "request {} of {} targets:",
        b.bundle,
        b.items.len()
    )];
    lines.extend(b.items.iter().map(|g| format!("  {}", summary(g))));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_is_a_time_or_a_whole_minute_from_now() {
        // 2026-11-27T20:37:10Z.
        let now = Timestamp::from_unix_seconds(1_795_811_830);
        for (text, want) in [
            ("2026-12-07T09:00:00Z", "2026-12-07T09:00:00Z"),
            ("2026-12-07T10:00:00+01:00", "2026-12-07T09:00:00Z"),
            ("+2h", "2026-11-27T22:38:00Z"),
            ("+50s", "2026-11-27T20:38:00Z"),
            ("+1d", "2026-11-28T20:38:00Z"),
        ] {
            assert_eq!(parse_start(text, now).unwrap(), want, "{text}");
        }
        for bad in ["tomorrow", "+2x", "+d", "2026-12-07 09:00"] {
            let err = parse_start(bad, now).unwrap_err();
            assert!(matches!(err, Failure::Usage(_)), "{bad}");
        }
    }
}
