//! Builders shared by the integration tests.

use jit_core::activity::{Activity, ActivityKind};
use jit_core::clock::Timestamp;
use jit_core::domain::{
    Actor, Command, Creation, Grant, GrantDuration, GrantId, GroupName, NewRequest, Reason,
    ReviewDecision, RoleArn, RoleBinding, Service, SessionKind, TargetId, UserId,
};

/// A fixed start time: 2027-01-15T08:00:00Z.
pub const T0: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);
/// How long reviewers have in these tests.
pub const WINDOW: i64 = 3600;

pub fn user(name: &str) -> UserId {
    UserId::parse(name).unwrap()
}

pub fn as_user(name: &str) -> Actor {
    Actor::User(user(name))
}

pub fn approver() -> Actor {
    Actor::Service(Service::Approver)
}

pub fn sweeper() -> Actor {
    Actor::Service(Service::Sweeper)
}

pub fn request(requester: &str, target: &str, duration_secs: u64) -> NewRequest {
    NewRequest {
        requester: user(requester),
        requester_groups: vec![GroupName::parse("engineers").unwrap()],
        target: TargetId::parse(target).unwrap(),
        binding: RoleBinding {
            role_arn: RoleArn::parse(format!("arn:aws:iam::111122223333:role/jit-{target}"))
                .unwrap(),
            revoker_role_arn: None,
            session_policy: None,
            max_session_secs: 3600,
        },
        duration: GrantDuration::from_secs(duration_secs).unwrap(),
        reason: Reason::parse("investigating INC-42 in production").unwrap(),
        ticket: None,
        break_glass: false,
        decision_window_secs: WINDOW,
        starts_at: None,
        bundle: None,
        policy_hash: "policy-hash-1".to_owned(),
    }
}

/// A new request by `requester` for `target`, made at `at`.
pub fn open(requester: &str, target: &str, at: Timestamp) -> Creation {
    Grant::open(GrantId::generate(at), request(requester, target, 3600), at)
}

pub fn await_review(n: u32) -> Command {
    Command::AwaitReview {
        approvals_required: n,
        requirements: Vec::new(),
        policy_hash: "policy-hash-2".to_owned(),
        rules_said: String::new(),
        on_call: Default::default(),
    }
}

pub fn auto_approve() -> Command {
    Command::AutoApprove {
        policies: vec!["sre-read-only".to_owned()],
        policy_hash: "policy-hash-2".to_owned(),
        on_call: Default::default(),
    }
}

pub fn review(decision: ReviewDecision) -> Command {
    Command::Review {
        decision,
        comment: Some("looks right".to_owned()),
        fills: Vec::new(),
        slack: None,
    }
}

pub fn issue(expires_at: Timestamp) -> Command {
    Command::IssueSession {
        kind: SessionKind::Cli,
        expires_at,
    }
}

/// The latest end the extensions of these tests may reach.
pub const EXTEND_LIMIT: Timestamp = Timestamp::from_unix_seconds(1_800_000_000 + 8 * 3600);

/// The requester asks for 30 more minutes: at once when `approvals` is 0, otherwise waiting
/// for that many approvals.
pub fn extend(approvals: u32) -> Command {
    Command::Extend {
        by: jit_core::domain::GrantDuration::from_secs(1800).unwrap(),
        reason: Reason::parse("the migration is still running").unwrap(),
        limit: EXTEND_LIMIT,
        approvals_required: approvals,
        policies: if approvals == 0 {
            vec!["extend-briefly".to_owned()]
        } else {
            Vec::new()
        },
        policy_hash: "policy-hash-2".to_owned(),
        on_call: Default::default(),
    }
}

pub fn revoke() -> Command {
    Command::Revoke {
        reason: Reason::parse("incident closed, access no longer needed").unwrap(),
    }
}

/// An API call at `at` with CloudTrail event id `event_id`.
pub fn call(event_id: &str, at: Timestamp) -> Activity {
    Activity {
        event_id: event_id.to_owned(),
        kind: ActivityKind::ApiCall,
        time: at,
        account: "222222222222".to_owned(),
        region: "eu-west-1".to_owned(),
        service: "s3.amazonaws.com".to_owned(),
        action: "GetObject".to_owned(),
        read_only: Some(true),
        error_code: None,
        resources: vec!["arn:aws:s3:::prod-logs".to_owned()],
        resources_dropped: 0,
        source_ip: Some("203.0.113.7".to_owned()),
        user_agent: Some("aws-cli/2".to_owned()),
        stored_at: None,
    }
}
