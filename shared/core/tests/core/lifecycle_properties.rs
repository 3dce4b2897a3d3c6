//! Property: random sequences of commands by random actors at random times, against the
//! in-memory store, never reach an illegal state, never lose or duplicate an audit record, and
//! every chain verifies.

use std::collections::HashMap;

use crate::support::*;
use jit_core::clock::Timestamp;
use jit_core::domain::audit::verify_against_head;
use jit_core::domain::{
    Actor, Change, Command, Grant, GrantId, GrantState, ReviewDecision, Service,
};
use jit_core::store::{GrantStore, MemoryStore, PageRequest, StoreError};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Create {
        requester: usize,
        target: usize,
        /// Minutes ahead its access is scheduled to open, if at all.
        scheduled: Option<i64>,
    },
    Apply {
        grant: usize,
        command: usize,
        actor: usize,
    },
    /// Commit a change computed earlier again: stale by now, it must be refused.
    Replay {
        change: usize,
    },
    Wait {
        secs: i64,
    },
}

const PEOPLE: [&str; 4] = ["alice", "bob", "rob", "ria"];
const TARGETS: [&str; 2] = ["prod-logs", "prod-db"];

fn command(i: usize, now: Timestamp) -> Command {
    match i % 13 {
        0 => await_review(1 + (i / 13 % 3) as u32),
        1 => auto_approve(),
        2 => Command::BreakGlass {
            policies: vec!["bg".to_owned()],
            policy_hash: "h".to_owned(),
            on_call: Default::default(),
        },
        3 | 4 => review(ReviewDecision::Approve),
        5 => review(ReviewDecision::Deny),
        6 => Command::Cancel,
        7 => Command::TimeOut,
        8 => Command::Expire,
        9 => revoke(),
        10 => issue(now.plus_secs(900 + (i as i64 % 2700))),
        11 => extend(0),
        _ => extend(1 + (i / 13 % 2) as u32),
    }
}

fn actor(i: usize) -> Actor {
    match i % 7 {
        n @ 0..4 => as_user(PEOPLE[n]),
        4 => Actor::Service(Service::Approver),
        5 => Actor::Service(Service::Sweeper),
        _ => Actor::Service(Service::Issuer),
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0..PEOPLE.len(), 0..TARGETS.len(), prop::option::of(1..120_i64))
            .prop_map(|(requester, target, scheduled)| Op::Create { requester, target, scheduled }),
        6 => (0..8_usize, 0..1000_usize, 0..7_usize).prop_map(|(grant, command, actor)| Op::Apply { grant, command, actor }),
        1 => (0..64_usize).prop_map(|change| Op::Replay { change }),
        2 => (1..3000_i64).prop_map(|secs| Op::Wait { secs }),
    ]
}

/// Fields that must agree with the state, whatever path led there.
fn consistent(g: &Grant) -> Result<(), String> {
    let ok = match g.state {
        GrantState::Pending => {
            g.activated_at.is_none() && g.closed_at.is_none() && g.sessions_issued == 0
        }
        GrantState::Active => {
            g.activated_at.is_some() && g.ends_at.is_some() && g.closed_at.is_none()
        }
        GrantState::Expired | GrantState::Revoked => {
            g.activated_at.is_some() && g.closed_at.is_some()
        }
        GrantState::Denied => {
            g.activated_at.is_none()
                && g.closed_at.is_some()
                && g.reviews.iter().any(|r| r.decision == ReviewDecision::Deny)
        }
        // A scheduled grant may be cancelled after it was granted, before anything was issued.
        GrantState::Cancelled => {
            g.closed_at.is_some()
                && (g.activated_at.is_none() || (g.starts_at.is_some() && g.sessions_issued == 0))
        }
        GrantState::TimedOut => g.activated_at.is_none() && g.closed_at.is_some(),
    };
    // Reviewers decide before a scheduled start; a scheduled grant runs from its start.
    let schedule_kept = g.starts_at.is_none_or(|start| {
        g.decide_by <= start
            && g.activated_at.is_none_or(|a| a < start)
            && g.ends_at.is_none_or(|end| end > start)
    });
    let reviewers_distinct = {
        let mut names: Vec<_> = g.reviews.iter().map(|r| &r.reviewer).collect();
        names.sort();
        names.dedup();
        names.len() == g.reviews.len()
    };
    let requester_never_reviews = g.reviews.iter().all(|r| r.reviewer != g.requester);
    // An extension waits only on an active grant, reviewed by distinct people other than the
    // requester, never moving the end past the limit.
    let extension_sound = g.extension.as_ref().is_none_or(|x| {
        let mut names: Vec<_> = x.reviews.iter().map(|r| &r.reviewer).collect();
        names.sort();
        names.dedup();
        g.state == GrantState::Active
            && names.len() == x.reviews.len()
            && x.reviews.iter().all(|r| r.reviewer != g.requester)
            && Some(x.ends_at) > g.ends_at
            && x.ends_at <= EXTEND_LIMIT
    });
    let within_limit = g.ends_at.is_none_or(|end| {
        end <= EXTEND_LIMIT
            || g.opens_at()
                .is_some_and(|a| end == a.plus_secs(i64::from(g.duration.as_secs())))
    });
    if ok
        && reviewers_distinct
        && requester_never_reviews
        && extension_sound
        && within_limit
        && schedule_kept
    {
        Ok(())
    } else {
        Err(format!("inconsistent grant: {g:#?}"))
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = MemoryStore::new();
        let mut now = T0;
        let mut ids: Vec<GrantId> = Vec::new();
        let mut last_state: HashMap<GrantId, GrantState> = HashMap::new();
        let mut computed: Vec<Change> = Vec::new();
        let mut accepted = 0_usize;
        for op in ops {
            match op {
                Op::Create {
                    requester,
                    target,
                    scheduled,
                } => {
                    let mut asked = request(PEOPLE[requester], TARGETS[target], 3600);
                    asked.starts_at = scheduled.map(|m| now.plus_secs(m * 60));
                    let creation = Grant::open(GrantId::generate(now), asked, now);
                    let mut open_one = None;
                    for id in &ids {
                        let g = store.get(id).await.unwrap().unwrap();
                        if !g.state.is_terminal()
                            && g.requester == creation.grant().requester
                            && g.target == creation.grant().target
                        {
                            open_one = Some(g.id);
                        }
                    }
                    match (store.create(&creation, None).await, open_one) {
                        (Ok(_), None) => {
                            ids.push(creation.grant().id.clone());
                            accepted += 1;
                        }
                        (Err(StoreError::AlreadyOpen { existing }), Some(open)) => {
                            prop_assert_eq!(existing, open)
                        }
                        (result, open) => prop_assert!(
                            false,
                            "create gave {:?} with open request {:?}",
                            result,
                            open
                        ),
                    }
                }
                Op::Apply {
                    grant,
                    command: c,
                    actor: a,
                } => {
                    let Some(id) = ids.get(grant % ids.len().max(1)) else {
                        continue;
                    };
                    let before = store.get(id).await.unwrap().unwrap();
                    let issuing = matches!(command(c, now), Command::IssueSession { .. });
                    if let Ok(change) = before.apply(command(c, now), &actor(a), now) {
                        // Nothing is issued before a scheduled start.
                        prop_assert!(!issuing || before.starts_at.is_none_or(|s| now >= s));
                        store.commit(&change).await.unwrap();
                        accepted += 1;
                        computed.push(change);
                    }
                }
                Op::Replay { change } => {
                    let Some(change) = computed.get(change % computed.len().max(1)) else {
                        continue;
                    };
                    let result = store.commit(change).await;
                    prop_assert_eq!(
                        result,
                        Err(StoreError::Conflict {
                            id: change.grant().id.clone()
                        })
                    );
                }
                Op::Wait { secs } => now = now.plus_secs(secs),
            }

            let mut records_total = 0;
            for id in &ids {
                let g = store.get(id).await.unwrap().unwrap();
                let records = store
                    .audit_of_grant(id, &PageRequest::first(100))
                    .await
                    .unwrap()
                    .items;
                prop_assert!(
                    verify_against_head(id, &records, &g.audit_head).is_ok(),
                    "chain of {id} broke"
                );
                prop_assert_eq!(records.len() as u64, g.version, "one record per version");
                prop_assert_eq!(records.last().map(|r| r.to), Some(g.state));
                if let Err(e) = consistent(&g) {
                    return Err(TestCaseError::fail(e));
                }
                if let Some(prev) = last_state.insert(id.clone(), g.state) {
                    prop_assert!(
                        !prev.is_terminal() || prev == g.state,
                        "{prev} changed to {}",
                        g.state
                    );
                }
                records_total += records.len();
            }
            prop_assert_eq!(
                records_total,
                accepted,
                "an audit record was lost or duplicated"
            );
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_command_sequences_keep_every_invariant(ops in prop::collection::vec(op(), 1..80)) {
        run(ops)?;
    }
}
