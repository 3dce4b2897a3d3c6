//! `GET /targets`: what the caller may ask for, so clients can offer only that.

use jit_api::{TargetList, TargetView};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};

use jit_core::clock::Timestamp;
use jit_core::domain::OnCall;
use jit_core::identity::Caller;
use jit_core::policy::{AccessContext, Action, Window};
use jit_core::store::GrantStore;

use crate::App;
use jit_http::json;

impl<S: GrantStore> App<S> {
    /// The declared targets the rules permit `caller` to Request now, for up to an hour (or
    /// the target's longest duration if shorter): asked once without a ticket and once with
    /// one, so a client can say when a ticket is needed. The decision at request time is
    /// still the rules' own, with the real duration, reason and ticket.
    pub(crate) fn targets(&self, caller: &Caller, now: Timestamp) -> Response<Body> {
        let items: Vec<_> = self
            .rules
            .targets()
            .filter_map(|t| {
                let ask = |ticket: Option<&str>| {
                    let duration_secs = t.max_duration.as_secs().min(3600);
                    let context = AccessContext {
                        duration_secs,
                        reason: "listing the targets one may ask for".to_owned(),
                        ticket: ticket.map(str::to_owned),
                        break_glass: false,
                        at: now,
                        window: Window::of(None, now, duration_secs),
                        on_call: OnCall::not_asked(),
                    };
                    self.rules
                        .decide(caller, Action::Request, &t.id, &context)
                        .allowed
                };
                let without = ask(None);
                let with = without || ask(Some("TICKET-1"));
                with.then(|| TargetView::of(t, !without))
            })
            .collect();
        json(StatusCode::OK, &TargetList { items })
    }
}
