//! What every command that calls the API shares: the API, the credentials cache, and how
//! results are printed.

use jit_api::GrantView;
use serde::Serialize;

use crate::Output;
use crate::api::Api;
use crate::cache::Cache;

/// The API, the cache and the output format.
pub struct Ctx {
    /// The API, as the caller.
    pub api: Api,
    /// The credentials cache.
    pub cache: Cache,
    /// How results are printed.
    pub output: Output,
}

impl Ctx {
    /// Prints `value`: as its JSON for scripts, as `text` says for people.
    pub fn print<T: Serialize>(&self, value: &T, text: impl FnOnce(&T) -> String) {
        let line = match self.output {
            Output::Json => serde_json::to_string(value).unwrap_or_default(),
            Output::Text => text(value),
        };
        println!("{line}");
    }

    /// Forgets cached sessions of grants `jit` sees have ended.
    pub fn forget_ended(&self, grant: &GrantView) {
        if !grant.is_open() {
            self.cache.drop_grant(&grant.id);
        }
    }
}

/// One line about a request or grant.
/// One line per item of a call on a bundle: id, target, what became of it and why.
pub fn bundle_lines(done: &jit_api::BundleOutcome) -> String {
    done.items
        .iter()
        .map(|i| {
            let mut line = format!(
                "{}  {:<9} {}  {}",
                i.id,
                i.state.as_str(),
                i.target,
                i.outcome
            );
            if let Some(sessions) = i.live_sessions {
                line.push_str(&format!("; live sessions: {}", sessions.as_str()));
            }
            if let Some(why) = &i.detail {
                line.push_str(&format!(" ({why})"));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn summary(g: &GrantView) -> String {
    let mut line = format!(
        "{}  {:<9} {}  {}",
        g.id,
        g.state.as_str(),
        g.target,
        g.duration
    );
    if let Some(bundle) = g.bundle.as_ref().filter(|b| *b != &g.id) {
        line.push_str(&format!("  (with {bundle})"));
    } else if g.bundle.is_some() {
        line.push_str("  (bundle)");
    }
    if let Some(starts) = &g.starts_at
        && g.is_open()
    {
        line.push_str(&format!("  opens {starts}"));
    }
    if let Some(ends) = &g.ends_at {
        line.push_str(&format!("  until {ends}"));
    }
    if g.state == jit_core::domain::GrantState::Pending
        && let Some(n) = g.approvals_required
    {
        line.push_str(&format!("  reviews {}/{n}", g.reviews.len()));
        // Named requirements: which are met.
        for r in &g.requirements {
            line.push_str(&format!("  {} {}/{}", r.name, r.met, r.approvals));
        }
    }
    if let Some(x) = &g.extension {
        line.push_str(&format!(
            "  extension +{} waiting, reviews {}/{}",
            x.duration,
            x.reviews.len(),
            x.approvals_required
        ));
    }
    line
}
