//! What a grant's sessions did: CloudTrail's events as EventBridge delivers them, read into
//! what the broker keeps of each, and attached to the grant they were made with, or reported
//! as unattributed.
//!
//! Two checks stand between an event and a grant. The envelope must be genuine: its `source`
//! is `aws.*`, which `PutEvents` refuses to anyone but AWS, and its account is the account of
//! the identity that made the call, so a forwarding rule in one account cannot speak for
//! another. Then the session must be one the broker issued for that grant: the grant id is
//! what follows the *last* `@` of the role session name, and the role, the account, the whole
//! session name and the source identity must all be what the grant recorded and the issuer
//! set. A genuine event that fails the second check is still kept, as unattributed: someone is
//! using a `/jit/` role outside the broker.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::domain::{Grant, GrantId, RoleArn};
use crate::naming::{claimed_grant, role_session_name, source_identity};

/// The path every target role lives under; the forwarding rules match it in the session
/// issuer's ARN (the assumed-role ARN does not carry the path).
pub const ROLE_PATH: &str = "/jit/";

/// The most characters kept of any one text field of an event (user agents can be long).
pub const MAX_FIELD_CHARS: usize = 512;

/// The most resources kept per event; the count beyond is kept as a number.
pub const MAX_RESOURCES: usize = 16;

/// One event from the broker's bus, told apart by its `detail-type`: anything else is refused
/// when it is read, before the handler sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "detail-type")]
pub enum TrailEvent {
    /// An AWS API call, as CloudTrail records it.
    #[serde(rename = "AWS API Call via CloudTrail")]
    ApiCall(Envelope),
    /// A sign-in to the AWS console.
    #[serde(rename = "AWS Console Sign In via CloudTrail")]
    ConsoleSignIn(Envelope),
}

/// EventBridge's envelope around a CloudTrail record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// EventBridge's id for this delivery (not CloudTrail's event id).
    pub id: String,
    /// `aws.<service>` for events AWS puts; `PutEvents` refuses that prefix to everyone else.
    pub source: String,
    /// The account the event came from.
    pub account: String,
    /// The region the event came from.
    pub region: String,
    /// CloudTrail's record.
    pub detail: Detail,
}

/// The fields of a CloudTrail record the broker reads; the rest is ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Detail {
    /// CloudTrail's own id for the event: what an auditor looks up in CloudTrail's digests.
    #[serde(rename = "eventID")]
    pub event_id: String,
    /// When the call was made, RFC 3339.
    pub event_time: String,
    /// The service, such as `s3.amazonaws.com`.
    pub event_source: String,
    /// The action, such as `GetObject`.
    pub event_name: String,
    /// The region the call was made in.
    pub aws_region: String,
    /// Who made the call.
    pub user_identity: UserIdentity,
    /// Where the call came from.
    #[serde(rename = "sourceIPAddress", default)]
    pub source_ip_address: Option<String>,
    /// The caller's user agent.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// The error, when the call failed (`AccessDenied` and the like).
    #[serde(default)]
    pub error_code: Option<String>,
    /// Whether the call only reads, when CloudTrail says.
    #[serde(default)]
    pub read_only: Option<bool>,
    /// The resources the call named, when CloudTrail lists them.
    #[serde(default)]
    pub resources: Vec<Resource>,
    /// A console sign-in's outcome (`{"ConsoleLogin": "Success"}`); other calls' answers are
    /// not kept.
    #[serde(default)]
    pub response_elements: Option<serde_json::Value>,
}

/// A resource a call named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// Its ARN.
    #[serde(rename = "ARN", default)]
    pub arn: Option<String>,
}

/// CloudTrail's `userIdentity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    /// `AssumedRole` for every session the broker issues.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The assumed-role ARN, `arn:aws:sts::<account>:assumed-role/<role>/<session name>`.
    #[serde(default)]
    pub arn: Option<String>,
    /// The caller's account.
    #[serde(default)]
    pub account_id: Option<String>,
    /// What the session was made from.
    #[serde(default)]
    pub session_context: Option<SessionContext>,
}

/// CloudTrail's `sessionContext`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext {
    /// The role the session was assumed from.
    #[serde(default)]
    pub session_issuer: Option<SessionIssuer>,
    /// The source identity set when the session was made; it survives role chaining.
    #[serde(default)]
    pub source_identity: Option<String>,
}

/// CloudTrail's `sessionIssuer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer {
    /// The role's ARN, with its path.
    #[serde(default)]
    pub arn: Option<String>,
    /// The role's account.
    #[serde(default)]
    pub account_id: Option<String>,
}

/// Which kind of event an activity item holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// An API call.
    ApiCall,
    /// A console sign-in.
    ConsoleSignIn,
}

impl ActivityKind {
    /// The kind's name, as hashes and guardrails see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiCall => "api_call",
            Self::ConsoleSignIn => "console_sign_in",
        }
    }
}

/// What the broker keeps of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    /// CloudTrail's event id: what the item is stored under, so a redelivery is stored once.
    pub event_id: String,
    /// An API call or a console sign-in.
    pub kind: ActivityKind,
    /// When the call was made.
    pub time: Timestamp,
    /// The account it was made in.
    pub account: String,
    /// The region it was made in.
    pub region: String,
    /// The service, such as `s3.amazonaws.com`.
    pub service: String,
    /// The action, such as `GetObject` (`ConsoleLogin` for a sign-in).
    pub action: String,
    /// Whether it only read, when CloudTrail says.
    pub read_only: Option<bool>,
    /// The error it failed with, if it failed (a failed console sign-in is `Failure`).
    pub error_code: Option<String>,
    /// The resources it named (at most [`MAX_RESOURCES`]).
    pub resources: Vec<String>,
    /// How many more resources it named than are kept.
    pub resources_dropped: u32,
    /// Where it came from.
    pub source_ip: Option<String>,
    /// The caller's user agent (at most [`MAX_FIELD_CHARS`] characters).
    pub user_agent: Option<String>,
    /// When the broker stored it (not part of its hash): a record covering a grant's activity
    /// covers the events stored up to its time, so an event CloudTrail delivers later never
    /// breaks it and goes into the next covering record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_at: Option<Timestamp>,
}

/// What an event's hash starts with, naming its encoding.
const ACTIVITY_TAG: &[u8] = b"jit-activity-v1";
/// What a digest of a grant's activity starts with.
const DIGEST_TAG: &[u8] = b"jit-activity-digest-v1";

/// Feeds `fields` to `h`, each as a 4-byte big-endian length and its bytes.
fn length_prefixed<'a>(h: &mut Sha256, fields: impl IntoIterator<Item = &'a str>) {
    for field in fields {
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        h.update(len.to_be_bytes());
        h.update(field.as_bytes());
    }
}

impl Activity {
    /// Whether IAM refused the call: its error code names access denied or an unauthorized
    /// operation (`AccessDenied`, `AccessDeniedException`, `Client.UnauthorizedOperation`).
    pub fn refused(&self) -> bool {
        self.kind == ActivityKind::ApiCall
            && self
                .error_code
                .as_deref()
                .is_some_and(|code| code.contains("AccessDenied") || code.contains("Unauthorized"))
    }

    /// SHA-256, as lower-case hex, over every field kept, length-prefixed in a fixed order
    /// (event id, kind, unix time, account, region, service, action, read-only as
    /// `true`/`false`/empty, error code, the resource count and each resource, how many were
    /// dropped, source IP, user agent; an absent value is empty), so any language can
    /// recompute it.
    pub fn hash(&self) -> String {
        let kind = self.kind.as_str();
        let read_only = self
            .read_only
            .map_or("", |r| if r { "true" } else { "false" });
        let (time, count, dropped) = (
            self.time.unix_seconds().to_string(),
            self.resources.len().to_string(),
            self.resources_dropped.to_string(),
        );
        let mut h = Sha256::new();
        h.update(ACTIVITY_TAG);
        length_prefixed(
            &mut h,
            [
                self.event_id.as_str(),
                kind,
                &time,
                &self.account,
                &self.region,
                &self.service,
                &self.action,
                read_only,
                self.error_code.as_deref().unwrap_or(""),
                &count,
            ],
        );
        length_prefixed(&mut h, self.resources.iter().map(String::as_str));
        length_prefixed(
            &mut h,
            [
                dropped.as_str(),
                self.source_ip.as_deref().unwrap_or(""),
                self.user_agent.as_deref().unwrap_or(""),
            ],
        );
        hex::encode(h.finalize())
    }
}

/// The count and digest of a grant's activity: SHA-256 over each event's id and hash,
/// length-prefixed, in (time, event id) order, whatever order they are given in. What a signed
/// record covering a grant's activity carries, so a deleted or edited item shows.
pub fn activity_digest<'a>(events: impl IntoIterator<Item = &'a Activity>) -> (u64, String) {
    let mut sorted: Vec<&Activity> = events.into_iter().collect();
    sorted.sort_by(|a, b| (a.time, &a.event_id).cmp(&(b.time, &b.event_id)));
    let mut h = Sha256::new();
    h.update(DIGEST_TAG);
    for event in &sorted {
        let hash = event.hash();
        length_prefixed(&mut h, [event.event_id.as_str(), hash.as_str()]);
    }
    (sorted.len() as u64, hex::encode(h.finalize()))
}

/// A genuine event of a session of a `/jit/` role that no grant accounts for: someone is using
/// a target role outside the broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnattributedEvent {
    /// What the event did.
    pub activity: Activity,
    /// The role it was made with.
    pub role_arn: RoleArn,
    /// The role session name.
    pub session_name: String,
    /// The source identity, if the session had one.
    pub source_identity: Option<String>,
    /// Why no grant accounts for it.
    pub why: String,
}

impl UnattributedEvent {
    /// `activity`, made with `session`, kept for `why`.
    pub fn new(activity: Activity, session: Session, why: &Unattributed) -> Self {
        Self {
            activity,
            role_arn: session.role_arn,
            session_name: clip(&session.session_name),
            source_identity: session.source_identity.as_deref().map(clip),
            why: why.to_string(),
        }
    }
}

/// The session an event says it was made with, as the envelope and record give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The role, with its path (the session issuer's ARN).
    pub role_arn: RoleArn,
    /// The account the session acted in.
    pub account: String,
    /// The role session name.
    pub session_name: String,
    /// The source identity, if the session has one.
    pub source_identity: Option<String>,
}

/// Why an event was refused: it is not what the forwarding rules deliver, so nothing of it is
/// kept (each is logged and counted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The envelope is not one AWS put: its source is not `aws.*`, or its account is not the
    /// caller's.
    #[error("forged envelope: {why}")]
    Forged {
        /// What gave it away.
        why: String,
    },
    /// The call was not made with a session of a role under `/jit/`: the rules forward no
    /// other.
    #[error("not a session of a role under /jit/: {who}")]
    NotJitRole {
        /// The identity's type and ARN as the event gives them.
        who: String,
    },
    /// A field the broker needs is missing or not of its form.
    #[error("malformed event: {what}")]
    Malformed {
        /// What is wrong.
        what: String,
    },
}

/// Why a genuine event of a `/jit/` role is not attached to a grant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unattributed {
    /// The session name does not end in `@<grant id>`.
    #[error("the session name `{session_name}` names no grant")]
    NoGrant {
        /// The role session name.
        session_name: String,
    },
    /// The session name names a grant the broker does not have.
    #[error("the session names grant {grant}, which does not exist")]
    UnknownGrant {
        /// The grant named.
        grant: GrantId,
    },
    /// The session names a grant, but does not match what that grant recorded.
    #[error("the session names grant {grant}, but its {field} is `{seen}`, not `{recorded}`")]
    Mismatch {
        /// The grant named.
        grant: GrantId,
        /// Which of role, account, session name or source identity differs.
        field: &'static str,
        /// What the grant recorded (or the issuer would have set).
        recorded: String,
        /// What the event says.
        seen: String,
    },
    /// The session names a grant the broker never issued a session for.
    #[error("the session names grant {grant}, which was never issued a session")]
    NeverIssued {
        /// The grant named.
        grant: GrantId,
    },
}

impl TrailEvent {
    /// The envelope, whatever the kind.
    pub fn envelope(&self) -> &Envelope {
        match self {
            Self::ApiCall(e) | Self::ConsoleSignIn(e) => e,
        }
    }

    /// Checks that the envelope is genuine and the caller a session of a `/jit/` role, and
    /// reads what the broker keeps and the session it claims.
    pub fn read(&self) -> Result<(Activity, Session), Refused> {
        let envelope = self.envelope();
        let detail = &envelope.detail;
        if !envelope.source.starts_with("aws.") {
            return Err(Refused::Forged {
                why: format!("source `{}` is not AWS's", clip(&envelope.source)),
            });
        }
        let session = session_of(envelope)?;
        let time = Timestamp::parse_rfc3339(&detail.event_time).ok_or_else(|| {
            malformed(format!(
                "eventTime `{}` is not RFC 3339",
                clip(&detail.event_time)
            ))
        })?;
        let event_id = detail.event_id.trim();
        if event_id.is_empty()
            || event_id.len() > 128
            || !event_id.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(malformed(format!("eventID `{}`", clip(&detail.event_id))));
        }
        let (kind, error_code) = match self {
            Self::ApiCall(_) => (
                ActivityKind::ApiCall,
                detail.error_code.as_deref().map(clip),
            ),
            Self::ConsoleSignIn(_) => (ActivityKind::ConsoleSignIn, sign_in_error(detail)),
        };
        let mut resources: Vec<String> = detail
            .resources
            .iter()
            .filter_map(|r| r.arn.as_deref())
            .map(clip)
            .collect();
        let resources_dropped =
            u32::try_from(resources.len().saturating_sub(MAX_RESOURCES)).unwrap_or(u32::MAX);
        resources.truncate(MAX_RESOURCES);
        let activity = Activity {
            event_id: event_id.to_owned(),
            kind,
            time,
            account: session.account.clone(),
            region: clip(&detail.aws_region),
            service: clip(&detail.event_source),
            action: clip(&detail.event_name),
            read_only: detail.read_only,
            error_code,
            resources,
            resources_dropped,
            source_ip: detail.source_ip_address.as_deref().map(clip),
            user_agent: detail.user_agent.as_deref().map(clip),
            stored_at: None,
        };
        Ok((activity, session))
    }
}

/// A console sign-in's outcome: `None` on success, else CloudTrail's error message or
/// `Failure`.
fn sign_in_error(detail: &Detail) -> Option<String> {
    let outcome = detail
        .response_elements
        .as_ref()
        .and_then(|r| r.get("ConsoleLogin"))
        .and_then(|v| v.as_str());
    match (outcome, &detail.error_code) {
        (Some("Success"), None) => None,
        (_, Some(code)) => Some(clip(code)),
        (Some(other), None) => Some(clip(other)),
        (None, None) => None,
    }
}

fn malformed(what: String) -> Refused {
    Refused::Malformed { what }
}

/// At most [`MAX_FIELD_CHARS`] characters of `text`, without control characters.
fn clip(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_FIELD_CHARS)
        .collect()
}

/// The session an envelope's record names, once the account checks hold: the envelope's
/// account is the caller's, the session issuer's and the role ARN's.
fn session_of(envelope: &Envelope) -> Result<Session, Refused> {
    let identity = &envelope.detail.user_identity;
    let who = || {
        format!(
            "{} {}",
            identity.kind.as_deref().unwrap_or("(no type)"),
            clip(identity.arn.as_deref().unwrap_or("(no arn)"))
        )
    };
    let context = identity.session_context.as_ref();
    let issuer = context.and_then(|c| c.session_issuer.as_ref());
    let role_arn = issuer.and_then(|i| i.arn.as_deref()).unwrap_or_default();
    if identity.kind.as_deref() != Some("AssumedRole")
        || !role_arn.contains(&format!(":role{ROLE_PATH}"))
    {
        return Err(Refused::NotJitRole { who: who() });
    }
    let role_arn = RoleArn::parse(role_arn).map_err(|e| malformed(e.to_string()))?;
    let accounts = [
        ("the caller's", identity.account_id.as_deref()),
        (
            "the session issuer's",
            issuer.and_then(|i| i.account_id.as_deref()),
        ),
        ("the role's", role_arn.account()),
    ];
    for (whose, account) in accounts {
        if account != Some(envelope.account.as_str()) {
            return Err(Refused::Forged {
                why: format!(
                    "the envelope's account {} is not {whose} ({})",
                    clip(&envelope.account),
                    account.map_or_else(|| "none".to_owned(), clip)
                ),
            });
        }
    }
    // arn:aws:sts::<account>:assumed-role/<role name>/<session name>
    let assumed = identity.arn.as_deref().unwrap_or_default();
    let mut parts = assumed.rsplitn(3, '/');
    let (Some(session_name), Some(role_name), Some(prefix)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(format!("assumed-role ARN `{}`", clip(assumed))));
    };
    let expected_prefix = format!(":sts::{}:assumed-role", envelope.account);
    if role_name != role_arn.name() || !prefix.ends_with(&expected_prefix) {
        return Err(malformed(format!(
            "assumed-role ARN `{}` is not a session of {role_arn}",
            clip(assumed)
        )));
    }
    Ok(Session {
        role_arn,
        account: envelope.account.clone(),
        session_name: session_name.to_owned(),
        source_identity: context.and_then(|c| c.source_identity.clone()),
    })
}

impl Session {
    /// The grant this session's name claims, before anything is checked.
    pub fn claimed_grant(&self) -> Result<GrantId, Unattributed> {
        claimed_grant(&self.session_name).ok_or_else(|| Unattributed::NoGrant {
            session_name: clip(&self.session_name),
        })
    }

    /// Attaches the session to `grant` (what its claimed id read as, if anything) when the
    /// grant recorded this role and account, the issuer would have named the session so and
    /// set this source identity, and the grant was issued a session.
    pub fn attribute(&self, grant: Option<&Grant>) -> Result<GrantId, Unattributed> {
        let claimed = self.claimed_grant()?;
        let Some(grant) = grant.filter(|g| g.id == claimed) else {
            return Err(Unattributed::UnknownGrant { grant: claimed });
        };
        let mismatch = |field, recorded: &str, seen: &str| Unattributed::Mismatch {
            grant: grant.id.clone(),
            field,
            recorded: recorded.to_owned(),
            seen: clip(seen),
        };
        if grant.role_arn != self.role_arn {
            return Err(mismatch(
                "role",
                grant.role_arn.as_str(),
                self.role_arn.as_str(),
            ));
        }
        let name = role_session_name(&grant.requester, &grant.id);
        if name != self.session_name {
            return Err(mismatch("session name", &name, &self.session_name));
        }
        let source = source_identity(&grant.requester);
        let seen = self.source_identity.as_deref().unwrap_or("(none)");
        if self.source_identity.as_deref() != Some(source.as_str()) {
            return Err(mismatch("source identity", &source, seen));
        }
        if grant.sessions_issued == 0 {
            return Err(Unattributed::NeverIssued { grant: claimed });
        }
        Ok(claimed)
    }
}

/// What the activity function hands the sweeper when a revoking guardrail fires: which event
/// of which grant, as `{"guardrail_revoke": {...}}`. It decides nothing: the sweeper reads the
/// event back from the table and judges it again by its own rules before revoking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailHandover {
    /// The grant whose session made the call.
    pub grant: String,
    /// When the call was made (unix seconds): with the event id, where the event is kept.
    pub event_time: Timestamp,
    /// CloudTrail's event id.
    pub event_id: String,
    /// The guardrail the activity function saw fire (for the log; the sweeper judges again).
    pub guardrail: String,
}
