//! Every body the API takes or answers with, as its JSON reads. Times a person reads are RFC
//! 3339 text; the audit trail's own types (records, keys, checkpoints) are jit-core's, exactly
//! as stored and signed.

use serde::{Deserialize, Serialize};

use jit_core::activity::Activity;
use jit_core::clock::Timestamp;
use jit_core::domain::audit::{AuditRecord, ChainHead};
use jit_core::domain::{Grant, GrantState, ReviewDecision};
use jit_core::policy::Target;
use jit_core::trust::{Checkpoint, CheckpointPeriod, GrantHead, PublicKey};

fn time(t: Option<Timestamp>) -> Option<String> {
    t.map(Timestamp::to_rfc3339)
}

/// A request or grant, as every route that returns one shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantView {
    /// Its id.
    pub id: String,
    /// Where it stands.
    pub state: GrantState,
    /// Who asked.
    pub requester: String,
    /// The target asked for.
    pub target: String,
    /// The role the target named when it was asked for.
    pub role_arn: String,
    /// For how long, as text (`1h30m`).
    pub duration: String,
    /// For how long, in seconds.
    pub duration_secs: u32,
    /// Why.
    pub reason: String,
    /// The ticket it is for.
    pub ticket: Option<String>,
    /// Whether it was asked as break-glass.
    pub break_glass: bool,
    /// When its access opens, if scheduled ahead; absent: when granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    /// The request of several targets it is an item of (`GET /bundles/{id}`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    /// When it was asked for.
    pub created_at: String,
    /// When it times out unless decided.
    pub decide_by: String,
    /// Approvals needed, once the rules have looked at it.
    pub approvals_required: Option<u32>,
    /// The reviews so far.
    pub reviews: Vec<ReviewView>,
    /// The named requirements its approvals must fill, and how far each is met; empty where
    /// any approvers count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<RequirementView>,
    /// Why the rules did not approve it at once, as their signed decision says; absent where
    /// they did, or have not decided yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_said: Option<String>,
    /// When it became active.
    pub activated_at: Option<String>,
    /// When its access ends.
    pub ends_at: Option<String>,
    /// When it closed.
    pub closed_at: Option<String>,
    /// Sessions issued on it.
    pub sessions_issued: u32,
    /// The latest expiry of a session issued on it.
    pub sessions_valid_until: Option<String>,
    /// Whether a break-glass review is still owed.
    pub review_owed: bool,
    /// The hash of the rules that decided it.
    pub policy_hash: String,
    /// More time its requester asked for, waiting for reviewers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<ExtensionView>,
    /// Bumped by every change.
    pub version: u64,
    /// Where its audit chain stands.
    pub audit_head: ChainHead,
}

impl From<&Grant> for GrantView {
    fn from(g: &Grant) -> Self {
        Self {
            id: g.id.as_str().to_owned(),
            state: g.state,
            requester: g.requester.as_str().to_owned(),
            target: g.target.as_str().to_owned(),
            role_arn: g.role_arn.as_str().to_owned(),
            duration: g.duration.to_string(),
            duration_secs: g.duration.as_secs(),
            reason: g.reason.as_str().to_owned(),
            ticket: g.ticket.as_ref().map(|t| t.as_str().to_owned()),
            break_glass: g.break_glass,
            starts_at: time(g.starts_at),
            bundle: g
                .bundle
                .as_ref()
                .and_then(|b| b.id())
                .map(|id| id.as_str().to_owned()),
            created_at: g.created_at.to_rfc3339(),
            decide_by: g.decide_by.to_rfc3339(),
            approvals_required: g.approvals_required,
            reviews: g.reviews.iter().map(review_view).collect(),
            requirements: g
                .requirements
                .iter()
                .zip(g.requirements_met())
                .map(|(r, met)| RequirementView {
                    name: r.name.clone(),
                    approvals: r.approvals,
                    met,
                })
                .collect(),
            rules_said: g.rules_said.clone(),
            activated_at: time(g.activated_at),
            ends_at: time(g.ends_at),
            closed_at: time(g.closed_at),
            sessions_issued: g.sessions_issued,
            sessions_valid_until: time(g.sessions_valid_until),
            review_owed: g.review_owed,
            policy_hash: g.policy_hash.clone(),
            extension: g.extension.as_ref().map(|x| ExtensionView {
                duration: jit_core::domain::GrantDuration::from_secs(u64::from(x.secs))
                    .map_or_else(|_| format!("{}s", x.secs), |d| d.to_string()),
                duration_secs: x.secs,
                reason: x.reason.as_str().to_owned(),
                requested_at: x.requested_at.to_rfc3339(),
                ends_at: x.ends_at.to_rfc3339(),
                approvals_required: x.approvals_required,
                reviews: x.reviews.iter().map(review_view).collect(),
            }),
            version: g.version,
            audit_head: g.audit_head.clone(),
        }
    }
}

impl GrantView {
    /// Whether it is still open: pending or active.
    pub fn is_open(&self) -> bool {
        matches!(self.state, GrantState::Pending | GrantState::Active)
    }
}

fn review_view(r: &jit_core::domain::Review) -> ReviewView {
    ReviewView {
        reviewer: r.reviewer.as_str().to_owned(),
        decision: r.decision,
        at: r.at.to_rfc3339(),
        fills: r.fills.clone(),
    }
}

/// One named requirement of a request and how far it is met.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequirementView {
    /// Its name.
    pub name: String,
    /// Distinct approvers it needs.
    pub approvals: u32,
    /// How many approvers fill it so far, in the assignment that fills the most.
    pub met: u32,
}

/// More time asked for on an active grant, waiting for reviewers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionView {
    /// The time added, as text (`30m`).
    pub duration: String,
    /// The time added, in seconds.
    pub duration_secs: u32,
    /// Why.
    pub reason: String,
    /// When it was asked for.
    pub requested_at: String,
    /// The end the grant gets once approved.
    pub ends_at: String,
    /// Distinct approvals it needs.
    pub approvals_required: u32,
    /// The approvals so far.
    pub reviews: Vec<ReviewView>,
}

/// The body of `POST /grants/{id}/extend`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    /// The time to add to the grant's end.
    pub duration: DurationInput,
    /// Why more time is needed.
    pub reason: String,
}

/// The body of `POST /slack/links`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSlackRequest {
    /// The one-time code `/jit link` gave in Slack.
    pub code: String,
}

/// The answer to `POST /slack/links`: the Slack user now linked to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackLinkView {
    /// The workspace.
    pub team_id: String,
    /// The Slack user.
    pub user_id: String,
    /// The caller it is linked to.
    pub sub: String,
    /// When (RFC 3339).
    pub linked_at: String,
}

/// The body of `POST /slack/handoffs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenHandoffRequest {
    /// The token of the link Slack's answer gave.
    pub token: String,
}

/// The answer to `POST /slack/handoffs`: the request the click in Slack was on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffView {
    /// The request to review.
    pub request_id: String,
    /// When the click was (RFC 3339).
    pub clicked_at: String,
}

/// One reviewer's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewView {
    /// Who reviewed.
    pub reviewer: String,
    /// What they decided.
    pub decision: ReviewDecision,
    /// When.
    pub at: String,
    /// The requirements the reviewer may fill (one of them at most), where the request has
    /// named requirements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fills: Vec<String>,
}

/// How long: seconds, or text such as `1h30m`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DurationInput {
    /// Seconds.
    Secs(u64),
    /// Text such as `90m`.
    Text(String),
}

/// The body of `POST /requests`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// A target id.
    pub target: String,
    /// For how long.
    pub duration: DurationInput,
    /// Why.
    pub reason: String,
    /// The ticket it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// Break-glass.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
    /// When access is to open (RFC 3339, a whole minute, at most 7 days ahead); absent: as
    /// soon as granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
}

/// The body of `POST /bundles`: several targets at once, one request, one reason and ticket,
/// one grant per target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBundle {
    /// 2 to 20 distinct target ids.
    pub targets: Vec<String>,
    /// For how long, each.
    pub duration: DurationInput,
    /// Why.
    pub reason: String,
    /// The ticket it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// When access is to open, if scheduled ahead (as for one target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
}

/// A request of several targets: its id (its first item's) and the items the caller may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleView {
    /// The bundle's id.
    pub bundle: String,
    /// Its items, in the order asked.
    pub items: Vec<GrantView>,
}

/// What a call on a whole bundle did to one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleItemOutcome {
    /// The item's id.
    pub id: String,
    /// Its target.
    pub target: String,
    /// `approved`, `denied` or `revoked` when acted on; `skipped` (left as it was) or
    /// `refused` (acting on it failed) otherwise.
    pub outcome: String,
    /// Where the item stands now.
    pub state: GrantState,
    /// Why it was skipped or refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For a revoked item: what became of its live sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_sessions: Option<LiveSessions>,
}

impl BundleItemOutcome {
    /// An item acted on (`outcome` says how), as it became.
    pub fn done(grant: &Grant, outcome: &str, live_sessions: Option<LiveSessions>) -> Self {
        Self {
            id: grant.id.as_str().to_owned(),
            target: grant.target.as_str().to_owned(),
            outcome: outcome.to_owned(),
            state: grant.state,
            detail: None,
            live_sessions,
        }
    }

    /// An item left as it was, and why.
    pub fn skipped(grant: &Grant, why: String) -> Self {
        Self {
            outcome: "skipped".to_owned(),
            detail: Some(why),
            ..Self::done(grant, "skipped", None)
        }
    }

    /// An item whose action was refused, and why.
    pub fn refused(grant: &Grant, why: &impl std::fmt::Display) -> Self {
        Self {
            outcome: "refused".to_owned(),
            detail: Some(why.to_string()),
            ..Self::done(grant, "refused", None)
        }
    }
}

/// The answer to `POST /bundles/{id}/reviews` and `POST /bundles/{id}/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleOutcome {
    /// The bundle's id.
    pub bundle: String,
    /// Each item the caller may see, in the order asked.
    pub items: Vec<BundleItemOutcome>,
}

/// The body of `POST /requests/{id}/reviews`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// Approve or deny.
    pub decision: ReviewDecision,
    /// What the reviewer writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// The body of `POST /grants/{id}/post-review` (optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostReviewRequest {
    /// What the reviewer found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// The body of `POST /grants/{id}/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Why.
    pub reason: String,
}

/// The body of `POST /grants/{id}/console` (optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleRequest {
    /// Where in the console to land.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

/// An empty body: `POST /requests/{id}/cancel` and `POST /grants/{id}/credentials` take
/// nothing (or `{}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// The cursor of the next page, if there may be more.
    pub next: Option<String>,
}

/// `credential_process` JSON: what the AWS CLI and SDKs read.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Credentials {
    /// Always 1.
    pub version: u8,
    /// The access key id.
    pub access_key_id: String,
    /// The secret key.
    pub secret_access_key: String,
    /// The session token.
    pub session_token: String,
    /// When they expire, RFC 3339.
    pub expiration: String,
}

/// Credentials never print their secrets, even in a debug log.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// A console sign-in link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleLink {
    /// The link.
    pub url: String,
    /// When its session ends, RFC 3339.
    pub expires_at: String,
    /// The grant it is for.
    pub grant: String,
}

/// What became of a revoked grant's live sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LiveSessions {
    /// A policy denying them is in place.
    Cut,
    /// None had been issued, or all had expired.
    NoneLive,
    /// The policy is not in place yet; the next sweep applies it.
    Pending,
}

impl LiveSessions {
    /// As the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cut => "cut",
            Self::NoneLive => "none-live",
            Self::Pending => "pending",
        }
    }
}

/// The answer to `POST /grants/{id}/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    /// The grant, now revoked.
    #[serde(flatten)]
    pub grant: GrantView,
    /// What became of its live sessions.
    pub live_sessions: LiveSessions,
}

/// A target the caller may ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetView {
    /// Its id.
    pub id: String,
    /// What it is.
    pub description: String,
    /// The account its role is in.
    pub account: String,
    /// Its environment.
    pub environment: String,
    /// Its tier.
    pub tier: String,
    /// The longest grant, as text.
    pub max_duration: String,
    /// Approvals a request needs.
    pub approvals_required: u32,
    /// Whether this caller needs a ticket to ask.
    pub ticket_required: bool,
}

impl TargetView {
    /// `target` as shown to a caller who needs a ticket or not.
    pub fn of(target: &Target, ticket_required: bool) -> Self {
        Self {
            id: target.id.as_str().to_owned(),
            description: target.description.clone(),
            account: target.account.clone(),
            environment: target.environment.clone(),
            tier: target.tier.clone(),
            max_duration: target.max_duration.to_string(),
            approvals_required: target.approvals_required,
            ticket_required,
        }
    }
}

/// The answer to `GET /targets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetList {
    /// The targets.
    pub items: Vec<TargetView>,
}

/// An audit record as the API shows it: exactly the stored record (so an export deserialises
/// and verifies as it is), plus its time in RFC 3339 for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecordView {
    /// The record.
    #[serde(flatten)]
    pub record: AuditRecord,
    /// Its time, RFC 3339.
    pub time: String,
}

impl From<&AuditRecord> for AuditRecordView {
    fn from(record: &AuditRecord) -> Self {
        Self {
            record: record.clone(),
            time: record.at.to_rfc3339(),
        }
    }
}

/// One call a grant's session made, as the API shows it: exactly the stored event (its fields
/// as CloudTrail gave them, `time` in unix seconds), plus its time in RFC 3339 and its hash,
/// what the signed record covering the grant's activity digests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityView {
    /// The event.
    #[serde(flatten)]
    pub activity: Activity,
    /// Its time, RFC 3339.
    pub at: String,
    /// Its hash (SHA-256, hex).
    pub hash: String,
}

impl From<&Activity> for ActivityView {
    fn from(activity: &Activity) -> Self {
        Self {
            activity: activity.clone(),
            at: activity.time.to_rfc3339(),
            hash: activity.hash(),
        }
    }
}

/// One page of `GET /requests/{id}/activity`: what the grant's sessions did, oldest first, as
/// CloudTrail delivered it (minutes late, best effort).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityPage {
    /// The grant.
    pub grant: GrantView,
    /// The page's events.
    pub items: Vec<ActivityView>,
    /// Events kept for the grant in all.
    pub stored: u64,
    /// Events past the grant's cap: counted, not kept.
    pub over_cap: u64,
    /// Where to read on from: after the page's last event, whenever the page has any (events
    /// arrive late, so there may always be more); none for an empty page.
    pub next: Option<String>,
}

/// One call no grant accounts for (`GET /audit/unattributed`): the call, the session it was
/// made with, and why no grant accounts for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnattributedView {
    /// The call.
    pub event: ActivityView,
    /// The role it was made with.
    pub role_arn: String,
    /// The role session name.
    pub session_name: String,
    /// The source identity, if the session had one.
    pub source_identity: Option<String>,
    /// Why no grant accounts for it.
    pub why: String,
}

impl From<&jit_core::activity::UnattributedEvent> for UnattributedView {
    fn from(e: &jit_core::activity::UnattributedEvent) -> Self {
        Self {
            event: ActivityView::from(&e.activity),
            role_arn: e.role_arn.to_string(),
            session_name: e.session_name.clone(),
            source_identity: e.source_identity.clone(),
            why: e.why.clone(),
        }
    }
}

/// One page of `GET /audit/unattributed`: a UTC day's calls no grant accounts for, by time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnattributedPage {
    /// The day, `YYYY-MM-DD`.
    pub day: String,
    /// The page's calls.
    pub items: Vec<UnattributedView>,
    /// Where to read on from; none on the last page.
    pub next: Option<String>,
}

/// The answer to `GET /requests/{id}/audit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantTrail {
    /// The grant.
    pub grant: GrantView,
    /// Its whole chain, in order.
    pub records: Vec<AuditRecordView>,
    /// The functions' public keys.
    pub keys: Vec<PublicKey>,
}

/// One page of `GET /audit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    /// The range's first second.
    pub from: Timestamp,
    /// The second after the range.
    pub to: Timestamp,
    /// The page's records.
    pub records: Vec<AuditRecordView>,
    /// The chain heads of the page's grants.
    pub heads: Vec<GrantHead>,
    /// The checkpoints of periods that overlap the range.
    pub checkpoints: Vec<Checkpoint>,
    /// The functions' public keys.
    pub keys: Vec<PublicKey>,
    /// How the trail is cut into signed periods.
    pub checkpoint_period: CheckpointPeriod,
    /// When the page was read.
    pub exported_at: Timestamp,
    /// The cursor of the next page, if there may be more.
    pub next: Option<String>,
}

/// The answer to `GET /web/config.json`: where the page signs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebConfig {
    /// The provider's issuer.
    pub issuer: String,
    /// The page's client id.
    pub client_id: String,
    /// The claim that lists groups.
    pub groups_claim: String,
    /// Whether the deployment takes approvals in Slack (the page then offers to link a Slack
    /// user).
    #[serde(default)]
    pub slack: bool,
}

/// An RFC 9457 problem, as every refusal by a function reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemBody {
    /// `urn:jit-access:problem:<kind>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened and what to do.
    pub detail: String,
    /// Extra members (`existing`, `policies`, ...).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}
