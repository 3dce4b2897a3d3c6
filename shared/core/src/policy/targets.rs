//! The targets file: every role access can be requested to, and its limits.

use serde::Deserialize;

use crate::domain::{GrantDuration, Requirement, RoleArn, RoleBinding, TargetId};

/// The longest session policy STS accepts, in characters, once minified.
pub const SESSION_POLICY_MAX_CHARS: usize = 2048;

/// The most approvals a target may require.
pub const MAX_APPROVALS: u32 = 10;

/// A target as the targets file declares it, after checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its id, used in requests and policies.
    pub id: TargetId,
    /// What it is for, for people.
    pub description: String,
    /// The AWS account the role lives in.
    pub account: String,
    /// `prod`, `staging`, ...
    pub environment: String,
    /// `read-only`, `write`, `admin`, ...
    pub tier: String,
    /// The role credentials are issued for, its revoker, session scope and longest session:
    /// what a request records.
    pub binding: RoleBinding,
    /// The longest grant it allows.
    pub max_duration: GrantDuration,
    /// The longest a grant may last from when it opens once extended (`max_total_duration`);
    /// `max_duration` when the file does not say, so extensions only reach what one request
    /// could have asked.
    pub max_total: GrantDuration,
    /// Distinct approvals a request needs when no rule approves it at once.
    pub approvals_required: u32,
    /// The named requirements those approvals must fill (`requirements`), all of them; empty
    /// when any approvers count.
    pub requirements: Vec<Requirement>,
    /// How long reviewers have before a request times out, in seconds.
    pub decision_window_secs: u32,
    /// Where it is declared: `targets.json` and the line of its id.
    pub location: String,
    /// Who is on call for it, as the on-call provider names it (`on_call`); `None` when the
    /// rules never hear about on-call for this target.
    pub on_call: Option<OnCallSettings>,
}

/// Where the on-call provider keeps who is on call for a target: PagerDuty escalation
/// policies and schedules. A person is on call for the target when any of them has them on
/// call now.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnCallSettings {
    /// PagerDuty escalation policy ids (`escalation_policy_ids[]`).
    #[serde(default)]
    pub escalation_policy_ids: Vec<String>,
    /// PagerDuty schedule ids (`schedule_ids[]`).
    #[serde(default)]
    pub schedule_ids: Vec<String>,
    /// Whether a grant the rules open at once ends no later than the requester's shift.
    #[serde(default)]
    pub end_with_shift: bool,
}

/// Who each person is to the on-call provider: the file's top-level `on_call.people`, from a
/// person's `sub` to their PagerDuty user id. Nobody is matched by anything else (an email a
/// person could change, a display name): someone absent is not on call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnCallPeople {
    /// `sub` to PagerDuty user id.
    pub people: std::collections::BTreeMap<String, String>,
}

/// Whether `id` looks like a PagerDuty object id: 1 to 64 ASCII letters and digits.
fn provider_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric())
}

fn check_on_call(settings: &OnCallSettings) -> Result<(), String> {
    if settings.escalation_policy_ids.is_empty() && settings.schedule_ids.is_empty() {
        return Err(
            "on_call must name at least one escalation_policy_ids or schedule_ids entry".to_owned(),
        );
    }
    for id in settings
        .escalation_policy_ids
        .iter()
        .chain(&settings.schedule_ids)
    {
        if !provider_id(id) {
            return Err(format!(
                "on_call: `{id}` is not a PagerDuty id (1 to 64 letters and digits)"
            ));
        }
    }
    Ok(())
}

impl Target {
    /// What a request for this target records, so the grant keeps it whatever the targets
    /// file says later.
    pub fn binding(&self) -> RoleBinding {
        self.binding.clone()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetsFile {
    targets: Vec<RawTarget>,
    #[serde(default)]
    on_call: Option<OnCallPeople>,
    #[serde(default)]
    slack: Option<RawSlack>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlack {
    team_id: String,
    #[serde(default)]
    enterprise_id: Option<String>,
    #[serde(default)]
    channels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    fresh_sign_in: Vec<String>,
    #[serde(default)]
    groups_max_age: Option<String>,
    #[serde(default)]
    admin_groups_max_age: Option<String>,
}

/// Approvals in Slack (the file's top-level `slack`): the one workspace clicks may come from,
/// where each target's requests are posted, and how recent the groups a click is decided on
/// must be. Who is *notified* (a channel) is not who may approve (the rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackSettings {
    /// The workspace (`team_id`) clicks and links must come from.
    pub team_id: String,
    /// The Enterprise Grid organization they must come from, if any; clicks naming another,
    /// or one when this is `None`, are refused.
    pub enterprise_id: Option<String>,
    /// Target id to channel id; `*` for every target not named.
    pub channels: std::collections::BTreeMap<String, String>,
    /// Targets whose requests are never decided from Slack: the button sends the reviewer to
    /// the web page, where the normal sign-in (and its MFA) applies.
    pub fresh_sign_in: Vec<TargetId>,
    /// How old the groups a click is decided on may be (`groups_max_age`, default 12 h).
    pub groups_max_age_secs: u32,
    /// The same for targets of the `admin` tier (`admin_groups_max_age`, default 1 h).
    pub admin_groups_max_age_secs: u32,
}

impl SlackSettings {
    /// The channel `target`'s requests are posted to, if any.
    pub fn channel(&self, target: &TargetId) -> Option<&str> {
        self.channels
            .get(target.as_str())
            .or_else(|| self.channels.get("*"))
            .map(String::as_str)
    }

    /// How old the groups a click on `target` is decided on may be.
    pub fn groups_max_age_secs(&self, target: &Target) -> u32 {
        if target.tier == "admin" {
            self.admin_groups_max_age_secs
        } else {
            self.groups_max_age_secs
        }
    }
}

/// Whether `id` looks like a Slack id (`T…`, `E…`, `C…`): 2 to 32 ASCII letters and digits.
fn slack_id(id: &str) -> bool {
    (2..=32).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The file's top-level `slack`, checked against the targets it names.
pub(crate) fn parse_slack(
    text: &str,
    declared: impl Fn(&TargetId) -> bool,
) -> Result<Option<SlackSettings>, String> {
    let file: TargetsFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let Some(raw) = file.slack else {
        return Ok(None);
    };
    if !slack_id(&raw.team_id) {
        return Err(format!(
            "slack.team_id: `{}` is not a Slack id",
            raw.team_id
        ));
    }
    if let Some(e) = raw.enterprise_id.as_deref().filter(|e| !slack_id(e)) {
        return Err(format!("slack.enterprise_id: `{e}` is not a Slack id"));
    }
    let known = |id: &str| {
        TargetId::parse(id)
            .ok()
            .filter(|t| declared(t))
            .ok_or_else(|| format!("no target `{id}` is declared"))
    };
    for (target, channel) in &raw.channels {
        if target != "*" {
            known(target).map_err(|e| format!("slack.channels: {e}"))?;
        }
        if !slack_id(channel) {
            return Err(format!(
                "slack.channels: `{target}` maps to `{channel}`, which is not a channel id"
            ));
        }
    }
    let fresh_sign_in = raw
        .fresh_sign_in
        .iter()
        .map(|t| known(t).map_err(|e| format!("slack.fresh_sign_in: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let age = |text: Option<String>, default: u32, name: &str| -> Result<u32, String> {
        let Some(text) = text else { return Ok(default) };
        let d = GrantDuration::parse(&text).map_err(|e| format!("slack.{name}: {e}"))?;
        if d.as_secs() > 7 * 86_400 {
            return Err(format!("slack.{name}: at most 7 days"));
        }
        Ok(d.as_secs())
    };
    Ok(Some(SlackSettings {
        team_id: raw.team_id,
        enterprise_id: raw.enterprise_id,
        channels: raw.channels,
        fresh_sign_in,
        groups_max_age_secs: age(raw.groups_max_age, 12 * 3600, "groups_max_age")?,
        admin_groups_max_age_secs: age(raw.admin_groups_max_age, 3600, "admin_groups_max_age")?,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    id: String,
    #[serde(default)]
    description: String,
    account: String,
    environment: String,
    tier: String,
    role_arn: String,
    max_duration: String,
    #[serde(default)]
    max_total_duration: Option<String>,
    approvals_required: u32,
    #[serde(default)]
    requirements: Vec<RawRequirement>,
    decision_window: String,
    #[serde(default)]
    session_policy: Option<serde_json::Value>,
    #[serde(default)]
    max_session_duration: Option<String>,
    #[serde(default)]
    revoker_role_arn: Option<String>,
    #[serde(default)]
    on_call: Option<OnCallSettings>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    name: String,
    approvals: u32,
}

/// Whether `name` is a requirement name: lowercase letters, digits and dashes, 1 to 40.
pub(crate) fn requirement_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The named requirements of a target: valid names, each once, each at least one approval,
/// together exactly `approvals_required`.
fn requirements(
    raw: Vec<RawRequirement>,
    approvals_required: u32,
) -> Result<Vec<Requirement>, String> {
    let mut out: Vec<Requirement> = Vec::new();
    for r in raw {
        if !requirement_name(&r.name) {
            return Err(format!(
                "requirement name `{}` must be 1 to 40 lowercase letters, digits or dashes",
                r.name
            ));
        }
        if out.iter().any(|o| o.name == r.name) {
            return Err(format!("requirement `{}` is declared twice", r.name));
        }
        if r.approvals == 0 {
            return Err(format!(
                "requirement `{}` needs at least one approval",
                r.name
            ));
        }
        out.push(Requirement {
            name: r.name,
            approvals: r.approvals,
        });
    }
    let named: u32 = out.iter().map(|r| r.approvals).sum();
    if !out.is_empty() && named != approvals_required {
        return Err(format!(
            "approvals_required ({approvals_required}) must be the sum of its requirements' approvals ({named})"
        ));
    }
    Ok(out)
}

/// Reads and checks a targets file; each error names the target and what to fix.
pub(crate) fn parse_targets(text: &str) -> Result<Vec<Target>, String> {
    let file: TargetsFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut targets: Vec<Target> = Vec::new();
    for raw in file.targets {
        let name = raw.id.clone();
        let mut target = check(raw).map_err(|e| format!("target `{name}`: {e}"))?;
        target.location = location_of(text, &name);
        if targets.iter().any(|t| t.id == target.id) {
            return Err(format!("target `{name}` is declared twice"));
        }
        targets.push(target);
    }
    if targets.is_empty() {
        return Err("no targets are declared".to_owned());
    }
    if file.on_call.is_none()
        && let Some(t) = targets.iter().find(|t| t.on_call.is_some())
    {
        return Err(format!(
            "target `{}` asks about on-call, but the file has no top-level `on_call` with the `people` it may match",
            t.id
        ));
    }
    Ok(targets)
}

/// The file's top-level `on_call.people`: each `sub` a valid person, each mapped to a
/// PagerDuty user id.
pub(crate) fn parse_on_call_people(text: &str) -> Result<OnCallPeople, String> {
    let file: TargetsFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let people = file.on_call.unwrap_or_default();
    for (sub, id) in &people.people {
        crate::domain::UserId::parse(sub.as_str())
            .map_err(|e| format!("on_call.people: `{sub}`: {e}"))?;
        if !provider_id(id) {
            return Err(format!(
                "on_call.people: `{sub}` maps to `{id}`, which is not a PagerDuty user id"
            ));
        }
    }
    Ok(people)
}

/// `targets.json:<line>` of the target's id, or the file alone when it cannot be found.
fn location_of(text: &str, id: &str) -> String {
    let quoted = format!("\"{id}\"");
    text.lines()
        .position(|l| l.contains("\"id\"") && l.contains(&quoted))
        .map_or_else(
            || "targets.json".to_owned(),
            |n| format!("targets.json:{}", n + 1),
        )
}

/// A session policy as STS takes it: an IAM policy document, minified, within STS's limit.
fn session_policy(policy: serde_json::Value) -> Result<String, String> {
    if !policy.is_object() {
        return Err("session_policy must be an IAM policy document (a JSON object)".into());
    }
    let minified = policy.to_string();
    let chars = minified.chars().count();
    if chars > SESSION_POLICY_MAX_CHARS {
        return Err(format!(
            "session_policy is {chars} characters minified; STS accepts at most {SESSION_POLICY_MAX_CHARS}"
        ));
    }
    Ok(minified)
}

/// The role's longest session in seconds, within what IAM allows (1 to 12 hours).
fn max_session(text: &str) -> Result<u32, String> {
    let d = GrantDuration::parse(text).map_err(|e| format!("max_session_duration: {e}"))?;
    if d.as_secs() < 3600 {
        return Err(format!(
            "max_session_duration is {d}; IAM roles allow 1h to 12h"
        ));
    }
    Ok(d.as_secs())
}

/// The revoker role, which must be in the target's `account`.
fn revoker_role(arn: String, account: &str) -> Result<RoleArn, String> {
    let in_account = arn
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.split_once(":role/"))
        .map(|(a, _)| a.to_owned());
    if in_account.as_deref() != Some(account) {
        return Err(format!(
            "revoker_role_arn `{arn}` must be a role in the target's account `{account}`"
        ));
    }
    RoleArn::parse(arn).map_err(|e| e.to_string())
}

fn check(raw: RawTarget) -> Result<Target, String> {
    let id = TargetId::parse(raw.id).map_err(|e| e.to_string())?;
    let arn_account = raw
        .role_arn
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.split_once(":role/"))
        .map(|(account, _)| account.to_owned())
        .ok_or_else(|| {
            format!(
                "role_arn `{}` is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
                raw.role_arn
            )
        })?;
    if raw.account.len() != 12 || !raw.account.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "account `{}` is not a 12-digit AWS account id",
            raw.account
        ));
    }
    if arn_account != raw.account {
        return Err(format!(
            "role_arn is in account `{arn_account}` but account says `{}`",
            raw.account
        ));
    }
    let role_arn = RoleArn::parse(raw.role_arn).map_err(|e| e.to_string())?;
    let max_duration =
        GrantDuration::parse(&raw.max_duration).map_err(|e| format!("max_duration: {e}"))?;
    let max_total = match &raw.max_total_duration {
        None => max_duration,
        Some(text) => GrantDuration::parse(text).map_err(|e| format!("max_total_duration: {e}"))?,
    };
    if max_total < max_duration {
        return Err(format!(
            "max_total_duration ({max_total}) must not be shorter than max_duration ({max_duration})"
        ));
    }
    let decision_window =
        GrantDuration::parse(&raw.decision_window).map_err(|e| format!("decision_window: {e}"))?;
    if !(1..=MAX_APPROVALS).contains(&raw.approvals_required) {
        return Err(format!(
            "approvals_required must be between 1 and {MAX_APPROVALS}, got {}",
            raw.approvals_required
        ));
    }
    let requirements = requirements(raw.requirements, raw.approvals_required)?;
    let session_policy = raw.session_policy.map(session_policy).transpose()?;
    for (field, value) in [("environment", &raw.environment), ("tier", &raw.tier)] {
        if value.trim().is_empty() {
            return Err(format!("{field} must not be empty"));
        }
    }
    let max_session_secs = match raw.max_session_duration {
        None => 3600,
        Some(text) => max_session(&text)?,
    };
    if let Some(settings) = &raw.on_call {
        check_on_call(settings)?;
    }
    let revoker_role_arn = raw
        .revoker_role_arn
        .map(|arn| revoker_role(arn, &raw.account))
        .transpose()?;
    Ok(Target {
        id,
        binding: RoleBinding {
            role_arn,
            revoker_role_arn,
            session_policy,
            max_session_secs,
        },
        description: raw.description,
        account: raw.account,
        environment: raw.environment,
        tier: raw.tier,
        max_duration,
        max_total,
        approvals_required: raw.approvals_required,
        requirements,
        decision_window_secs: decision_window.as_secs(),
        location: String::new(),
        on_call: raw.on_call,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(extra: &str) -> String {
        format!(
            r#"{{"targets":[{{"id":"prod-logs","account":"111111111111","environment":"prod",
            "tier":"read-only","role_arn":"arn:aws:iam::111111111111:role/jit/logs",
            "max_duration":"1h","approvals_required":1,"decision_window":"30m"{extra}}}]}}"#
        )
    }

    #[test]
    fn a_well_formed_target_loads() {
        let t = parse_targets(&one("")).unwrap();
        assert_eq!(t[0].max_duration.as_secs(), 3600);
        assert_eq!(t[0].decision_window_secs, 1800);
        // Unless the file says otherwise, an extension reaches only what one request could.
        assert_eq!(t[0].max_total.as_secs(), 3600);
        let longer = parse_targets(&one(r#","max_total_duration":"4h""#)).unwrap();
        assert_eq!(longer[0].max_total.as_secs(), 4 * 3600);
    }

    #[test]
    fn on_call_settings_and_people_load() {
        let text = one(r#","on_call":{"escalation_policy_ids":["PSRE001"],"end_with_shift":true}"#)
            .replacen('{', r#"{"on_call":{"people":{"sam":"PSAM001"}},"#, 1);
        let t = parse_targets(&text).unwrap();
        let settings = t[0].on_call.as_ref().unwrap();
        assert_eq!(settings.escalation_policy_ids, ["PSRE001"]);
        assert!(settings.end_with_shift);
        let people = parse_on_call_people(&text).unwrap();
        assert_eq!(people.people["sam"], "PSAM001");
        for (bad, expected) in [
            (
                r#""sam":"not an id""#,
                "maps to `not an id`, which is not a PagerDuty user id",
            ),
            (r#""":"PSAM001""#, "on_call.people: ``"),
        ] {
            let text = one("").replacen('{', &format!(r#"{{"on_call":{{"people":{{{bad}}}}},"#), 1);
            let err = parse_on_call_people(&text).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn slack_settings_load_and_their_mistakes_are_named() {
        let with = |slack: &str| one("").replacen('{', &format!(r#"{{"slack":{slack},"#), 1);
        let declared = |t: &TargetId| t.as_str() == "prod-logs";
        let settings = parse_slack(
            &with(r#"{"team_id":"T0AB","channels":{"*":"C0ALL","prod-logs":"C0LOGS"},"fresh_sign_in":["prod-logs"],"groups_max_age":"6h"}"#),
            declared,
        )
        .unwrap()
        .unwrap();
        let logs = TargetId::parse("prod-logs").unwrap();
        assert_eq!(settings.channel(&logs), Some("C0LOGS"));
        assert_eq!(
            settings.channel(&TargetId::parse("other").unwrap()),
            Some("C0ALL")
        );
        assert_eq!(settings.fresh_sign_in, [logs]);
        assert_eq!(
            (
                settings.groups_max_age_secs,
                settings.admin_groups_max_age_secs
            ),
            (6 * 3600, 3600)
        );
        assert_eq!(parse_slack(&one(""), declared), Ok(None));
        for (bad, expected) in [
            (
                r#"{"team_id":"T 1"}"#,
                "slack.team_id: `T 1` is not a Slack id",
            ),
            (
                r#"{"team_id":"T1","enterprise_id":"E/1"}"#,
                "slack.enterprise_id: `E/1` is not a Slack id",
            ),
            (
                r#"{"team_id":"T1","channels":{"gone":"C1"}}"#,
                "slack.channels: no target `gone` is declared",
            ),
            (
                r##"{"team_id":"T1","channels":{"*":"#reviews"}}"##,
                "`*` maps to `#reviews`, which is not a channel id",
            ),
            (
                r#"{"team_id":"T1","fresh_sign_in":["gone"]}"#,
                "slack.fresh_sign_in: no target `gone` is declared",
            ),
            (
                r#"{"team_id":"T1","groups_max_age":"8d"}"#,
                "slack.groups_max_age:",
            ),
            (
                r#"{"team_id":"T1","channel":"C1"}"#,
                "unknown field `channel`",
            ),
        ] {
            let err = parse_slack(&with(bad), declared).unwrap_err();
            assert!(err.contains(expected), "{bad}: {err}");
        }
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (r#","surprise":1"#, "unknown field `surprise`"),
            (
                r#","session_policy":"allow everything""#,
                "session_policy must be an IAM policy document",
            ),
            (
                r#","session_policy":{"x":"PADDING"}"#,
                "STS accepts at most 2048",
            ),
            (
                r#","max_total_duration":"30m""#,
                "max_total_duration (30m) must not be shorter than max_duration (1h)",
            ),
            (r#","max_total_duration":"2d""#, "max_total_duration:"),
            (
                r#","requirements":[{"name":"Leads","approvals":1}]"#,
                "requirement name `Leads` must be",
            ),
            (
                r#","requirements":[{"name":"a","approvals":1},{"name":"b","approvals":1}]"#,
                "approvals_required (1) must be the sum of its requirements' approvals (2)",
            ),
            (
                r#","requirements":[{"name":"a","approvals":1},{"name":"a","approvals":0}]"#,
                "requirement `a` is declared twice",
            ),
            (
                r#","on_call":{"end_with_shift":true}"#,
                "on_call must name at least one escalation_policy_ids or schedule_ids entry",
            ),
            (
                r#","on_call":{"schedule_ids":["P 1"]}"#,
                "on_call: `P 1` is not a PagerDuty id",
            ),
            (
                r#","on_call":{"schedule_ids":["PS1"],"level":1}"#,
                "unknown field `level`",
            ),
            (
                r#","on_call":{"schedule_ids":["PS1"]}"#,
                "target `prod-logs` asks about on-call, but the file has no top-level `on_call`",
            ),
        ];
        for (extra, expected) in cases {
            let extra = extra.replace("PADDING", &"y".repeat(3000));
            let err = parse_targets(&one(&extra)).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
        let wrong_account =
            one("").replace("arn:aws:iam::111111111111", "arn:aws:iam::999999999999");
        assert!(
            parse_targets(&wrong_account)
                .unwrap_err()
                .contains("in account `999999999999`")
        );
        let twice = r#"{"targets":[T,T]}"#.replace(
            'T',
            one("")
                .trim_start_matches(r#"{"targets":["#)
                .trim_end_matches("]}"),
        );
        assert!(
            parse_targets(&twice)
                .unwrap_err()
                .contains("declared twice")
        );
        let zero = one("").replace(r#""approvals_required":1"#, r#""approvals_required":0"#);
        assert!(
            parse_targets(&zero)
                .unwrap_err()
                .contains("between 1 and 10")
        );
    }
}
