//! Telling people: a request waits for their review, or someone broke the glass.
//!
//! For now a structured log line and a CloudWatch metric (Embedded Metric Format, one JSON line
//! on stdout that CloudWatch turns into a metric). Slack or SNS plug in as another `Notifier`.

use jit_core::clock::Timestamp;
use jit_core::domain::Grant;

/// Who hears about decisions that need people.
pub trait Notifier: Send + Sync {
    /// `grant` waits for `approvals_required` distinct approvals.
    fn review_requested(&self, grant: &Grant, approvals_required: u32, at: Timestamp);
    /// `grant` was opened through break-glass and owes a review.
    fn break_glass(&self, grant: &Grant, at: Timestamp);
    /// Active `grant`'s requester asked for more time, which waits for `approvals_required`
    /// distinct approvals.
    fn extension_requested(&self, grant: &Grant, approvals_required: u32, at: Timestamp);
}

/// Logs each notice and emits it as a CloudWatch metric.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogNotifier;

/// One metric in Embedded Metric Format, dimensioned by target.
fn emf(metric: &str, grant: &Grant, at: Timestamp) -> String {
    jit_http::metric::count(
        metric,
        1,
        at,
        &["Target"],
        &[
            ("Target", grant.target.as_str()),
            ("GrantId", grant.id.as_str()),
        ],
    )
}

impl Notifier for LogNotifier {
    fn review_requested(&self, grant: &Grant, approvals_required: u32, at: Timestamp) {
        tracing::info!(
            grant = %grant.id,
            target = %grant.target,
            requester = %grant.requester,
            approvals_required,
            decide_by = %grant.decide_by,
            "review requested"
        );
        println!("{}", emf("ReviewsRequested", grant, at));
    }

    fn break_glass(&self, grant: &Grant, at: Timestamp) {
        tracing::warn!(
            grant = %grant.id,
            target = %grant.target,
            requester = %grant.requester,
            reason = %grant.reason.as_str(),
            "BREAK-GLASS access opened; a review is owed"
        );
        println!("{}", emf("BreakGlassActivations", grant, at));
    }

    fn extension_requested(&self, grant: &Grant, approvals_required: u32, at: Timestamp) {
        tracing::info!(
            grant = %grant.id,
            target = %grant.target,
            requester = %grant.requester,
            approvals_required,
            ends_at = ?grant.ends_at,
            "extension review requested"
        );
        println!("{}", emf("ExtensionReviewsRequested", grant, at));
    }
}
