//! Asking for access, and withdrawing the request.

use sha2::{Digest, Sha256};

use super::{Cases, Noun, Refusal, commit};
use crate::clock::Timestamp;
use crate::domain::{
    Actor, Bundle, Command, Grant, GrantDuration, GrantId, NewRequest, OnCall, Reason, TargetId,
    Ticket,
};
use crate::identity::Caller;
use crate::policy::{AccessContext, Action, Window};
use crate::store::{Created, GrantStore, Idempotency, IdempotencyKey};

/// A request for access, its values already parsed.
#[derive(Debug, Clone)]
pub struct OpenRequest {
    /// The target asked for.
    pub target: TargetId,
    /// For how long.
    pub duration: GrantDuration,
    /// Why.
    pub reason: Reason,
    /// The ticket it is for, if any.
    pub ticket: Option<Ticket>,
    /// Whether the requester breaks the glass.
    pub break_glass: bool,
    /// When access is to open, if scheduled ahead: a whole minute, within
    /// [`MAX_SCHEDULE_AHEAD_SECS`].
    pub starts_at: Option<Timestamp>,
}

/// How many targets one request may name: each costs the write three items (the grant, its
/// first record, the requester's open slot for the target), within DynamoDB's 100 per
/// transaction.
pub const MAX_BUNDLE_TARGETS: usize = 20;

/// Why a request of several targets was refused, and which target refused it (none when
/// the request as a whole was, such as a target named twice).
#[derive(Debug)]
pub struct BundleRefusal {
    /// The target that refused the whole request, if one did.
    pub target: Option<TargetId>,
    /// The refusal, naming that target.
    pub refusal: Refusal,
}

impl From<BundleRefusal> for Refusal {
    fn from(b: BundleRefusal) -> Self {
        b.refusal
    }
}

/// A refusal of one target of a bundle, as the whole request's: naming the target.
fn in_bundle(refusal: Refusal, target: &TargetId) -> Refusal {
    let whole = "the whole request was refused; nothing was made";
    match refusal {
        Refusal::Forbidden { why, policies } => Refusal::Forbidden {
            why: format!("target `{target}`: {why}; {whole}"),
            policies,
        },
        Refusal::Invalid(why) => Refusal::Invalid(format!("target `{target}`: {why}; {whole}")),
        Refusal::NotIsolated(why) => {
            Refusal::NotIsolated(format!("target `{target}`: {why}; {whole}"))
        }
        other => other,
    }
}

/// How far ahead access may be scheduled: seven days.
pub const MAX_SCHEDULE_AHEAD_SECS: i64 = 7 * 86_400;

/// Why `starts_at` cannot be a scheduled start when asked at `now`, if it cannot.
fn schedule_problem(starts_at: Timestamp, break_glass: bool, now: Timestamp) -> Option<String> {
    if break_glass {
        return Some(
            "break-glass opens access at once and cannot be scheduled; leave out starts_at"
                .to_owned(),
        );
    }
    if starts_at.unix_seconds().rem_euclid(60) != 0 {
        return Some(format!(
            "starts_at {starts_at} must be a whole minute (seconds 00)"
        ));
    }
    if starts_at <= now {
        return Some(format!(
            "starts_at {starts_at} is not in the future (it is {now}); leave it out to start when granted"
        ));
    }
    let latest = now.plus_secs(MAX_SCHEDULE_AHEAD_SECS);
    if starts_at > latest {
        return Some(format!(
            "starts_at {starts_at} is more than 7 days ahead (the latest is {latest})"
        ));
    }
    None
}

/// What identifies a request's content for idempotency: a retry with the same key must ask
/// for exactly the same thing.
fn fingerprint(request: &NewRequest) -> String {
    let mut h = Sha256::new();
    for part in [
        request.target.as_str(),
        &request.duration.as_secs().to_string(),
        request.reason.as_str(),
        request.ticket.as_ref().map_or("", |t| t.as_str()),
        if request.break_glass { "1" } else { "0" },
        &request
            .starts_at
            .map_or_else(String::new, |t| t.unix_seconds().to_string()),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

impl<S: GrantStore> Cases<'_, S> {
    /// Opens a request for `caller`: the target must be declared and isolated from the
    /// broker, the duration within its maximum, and the rules must permit the request (and
    /// break-glass, when asked). With an idempotency key, a retry of the same request within
    /// `idempotency_ttl_secs` returns the first one.
    pub async fn open_request(
        &self,
        caller: &Caller,
        input: OpenRequest,
        idempotency_key: Option<IdempotencyKey>,
        idempotency_ttl_secs: i64,
        now: Timestamp,
    ) -> Result<Created, Refusal> {
        let new = self.checked_request(caller, input, None, now)?;
        let idempotency = idempotency_key.map(|key| Idempotency {
            key,
            caller: caller.user.clone(),
            fingerprint: fingerprint(&new),
            expires_at: now.plus_secs(idempotency_ttl_secs),
            now,
        });
        let creation = Grant::open(GrantId::generate(now), new, now);
        Ok(self.store.create(&creation, idempotency.as_ref()).await?)
    }

    /// Opens one request of several targets for `caller`: every target checked as
    /// [`Cases::open_request`] checks one (a target the rules forbid refuses the whole
    /// request, naming it), then one grant per target, all stored in one write or none.
    /// Each is then decided, used and ended on its own. The first item's id is the bundle's.
    pub async fn open_bundle(
        &self,
        caller: &Caller,
        targets: Vec<TargetId>,
        input: OpenRequest,
        now: Timestamp,
    ) -> Result<Vec<Grant>, BundleRefusal> {
        let whole = |refusal| BundleRefusal {
            target: None,
            refusal,
        };
        if !(2..=MAX_BUNDLE_TARGETS).contains(&targets.len()) {
            return Err(whole(Refusal::Invalid(format!(
                "targets must name 2 to {MAX_BUNDLE_TARGETS} targets (it names {}); for one, use target",
                targets.len()
            ))));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(twice) = targets.iter().find(|t| !seen.insert(t.as_str())) {
            return Err(whole(Refusal::Invalid(format!(
                "targets names `{twice}` twice"
            ))));
        }
        if input.break_glass {
            return Err(whole(Refusal::Invalid(
                "break-glass opens one target in an emergency; ask for several without it"
                    .to_owned(),
            )));
        }
        let bundle = Bundle {
            items: targets.iter().map(|_| GrantId::generate(now)).collect(),
        };
        let mut creations = Vec::with_capacity(targets.len());
        for (target, id) in targets.into_iter().zip(&bundle.items) {
            let named = target.clone();
            let ask = OpenRequest {
                target,
                ..input.clone()
            };
            let new = self
                .checked_request(caller, ask, Some(bundle.clone()), now)
                .map_err(|refusal| BundleRefusal {
                    refusal: in_bundle(refusal, &named),
                    target: Some(named),
                })?;
            creations.push(Grant::open(id.clone(), new, now));
        }
        self.store
            .create_bundle(&creations)
            .await
            .map_err(|e| whole(e.into()))
    }

    /// The request `input` makes, once the target is declared and isolated from the broker,
    /// the duration within its maximum, any scheduled start acceptable, and the rules permit
    /// the request (and break-glass, when asked).
    fn checked_request(
        &self,
        caller: &Caller,
        input: OpenRequest,
        bundle: Option<Bundle>,
        now: Timestamp,
    ) -> Result<NewRequest, Refusal> {
        let Some(target) = self.rules.target(&input.target) else {
            let known: Vec<&str> = self.rules.targets().map(|t| t.id.as_str()).collect();
            return Err(Refusal::Invalid(format!(
                "unknown target `{}`; known targets: {}",
                input.target,
                known.join(", ")
            )));
        };
        if input.duration > target.max_duration {
            return Err(Refusal::Invalid(format!(
                "duration {} is longer than target `{}` allows ({})",
                input.duration, input.target, target.max_duration
            )));
        }
        if let Some(why) = input
            .starts_at
            .and_then(|start| schedule_problem(start, input.break_glass, now))
        {
            return Err(Refusal::Invalid(why));
        }
        // The rules judge the time the access covers: the scheduled window, or from now.
        let context = AccessContext {
            duration_secs: input.duration.as_secs(),
            reason: input.reason.as_str().to_owned(),
            ticket: input.ticket.as_ref().map(ToString::to_string),
            break_glass: input.break_glass,
            at: now,
            window: Window::of(input.starts_at, now, input.duration.as_secs()),
            on_call: OnCall::not_asked(),
        };
        // The break-glass flag lifts `forbid` rules written with `!context.break_glass`, so it
        // counts only for those the rules permit to break the glass; anyone else asking for it
        // is refused rather than let past those rules.
        if input.break_glass {
            let decision = self
                .rules
                .decide(caller, Action::BreakGlass, &input.target, &context);
            if !decision.allowed {
                return Err(Refusal::Forbidden {
                    why: format!(
                        "break-glass is not permitted here: {}; ask without break_glass to go through review",
                        decision.explain_denial(Action::BreakGlass, input.target.as_str())
                    ),
                    policies: Some(decision.policies),
                });
            }
        }
        let decision = self
            .rules
            .decide(caller, Action::Request, &input.target, &context);
        if !decision.allowed {
            return Err(Refusal::Forbidden {
                why: decision.explain_denial(Action::Request, input.target.as_str()),
                policies: Some(decision.policies),
            });
        }
        if let Some(why) = self.rules.isolation_problem(target) {
            return Err(Refusal::NotIsolated(format!("{why}; no request was made")));
        }
        Ok(NewRequest {
            requester: caller.user.clone(),
            requester_groups: caller.groups.clone(),
            target: input.target,
            binding: target.binding(),
            duration: input.duration,
            reason: input.reason,
            ticket: input.ticket,
            break_glass: input.break_glass,
            decision_window_secs: i64::from(target.decision_window_secs),
            starts_at: input.starts_at,
            bundle,
            policy_hash: self.rules.hash().to_owned(),
        })
    }

    /// Cancels a pending request, or a granted one before its scheduled start with no
    /// credentials issued: its requester only.
    pub async fn cancel(
        &self,
        caller: &Caller,
        id: &str,
        now: Timestamp,
    ) -> Result<Grant, Refusal> {
        let noun = Noun::Request;
        let id = super::parse_id(id, noun)?;
        let grant = self.store.get(&id).await?.ok_or(Refusal::NotFound(noun))?;
        let actor = Actor::User(caller.user.clone());
        let change = commit(self.store, grant, noun, |grant| {
            if !self.rules.may_see(grant, caller, now) {
                return Err(Refusal::NotFound(noun));
            }
            if grant.requester != caller.user {
                return Err(Refusal::forbidden(
                    "only the requester may cancel a request",
                ));
            }
            Ok(grant.apply(Command::Cancel, &actor, now)?)
        })
        .await?;
        Ok(change.grant().clone())
    }
}
