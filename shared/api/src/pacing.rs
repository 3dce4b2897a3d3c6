//! How often a client looks again at something that has not changed yet.

use std::time::Duration;

/// The first look's wait: auto-approval answers within it.
const FIRST_MS: u64 = 500;
/// The longest wait between two looks.
const MOST_MS: u64 = 15_000;

/// How long to wait before the next look at a pending request, after `polls` looks: half a
/// second at first, doubling to 15 s. Waiting ten minutes for a person then costs about 45
/// requests rather than 1,200, and a decision is seen at most 15 s late.
pub fn poll_interval(polls: u32) -> Duration {
    Duration::from_millis(FIRST_MS.saturating_mul(1 << polls.min(5)).min(MOST_MS))
}

/// How long to wait before sending a throttled request again, after `retries` of it: what
/// the answer's `Retry-After` says (capped), else a quarter second doubling to four.
/// API Gateway refuses a throttled request before any function runs, so sending any request
/// again, a `POST` included, does it at most once.
pub fn throttled_wait(retries: u32, retry_after: Option<&str>) -> Duration {
    const THROTTLED_MOST_MS: u64 = 4_000;
    let said = retry_after
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|secs| secs.saturating_mul(1000));
    Duration::from_millis(
        said.unwrap_or(250_u64.saturating_mul(1 << retries.min(4)))
            .min(THROTTLED_MOST_MS),
    )
}
