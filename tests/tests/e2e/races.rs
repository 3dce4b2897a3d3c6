//! Races over HTTP against the real binaries, with the windows held open on purpose: the
//! pass-through in front of a function holds one of its AWS calls (a delay, not luck) while the
//! competing calls go through, and storms of concurrent reviews, cancels, revokes, credential
//! pulls and sweeps hit one grant and one role. Afterwards: one legal outcome, every chain
//! verifies against its grant, no credentials left once REVOKED was committed (each 200 has
//! its SESSION_ISSUED record, and every one of those precedes the REVOKED record), and the
//! role's policy denies every revoked grant. An extension racing a revocation and sweeps
//! loses to the revocation or lands before it, never after.

use std::time::Duration;

use futures::future::join_all;
use jit_core::domain::audit::AuditRecord;
use jit_stack::recorder::Fault;
use serde_json::{Value, json};

use super::faults::Harness;

fn seq_of(records: &[AuditRecord], action: &str) -> Vec<u64> {
    records
        .iter()
        .filter(|r| r.action.as_str() == action)
        .map(|r| r.seq)
        .collect()
}

/// Every credential answer that was a 200 has its own SESSION_ISSUED record, and none of those
/// comes after the revocation.
fn no_credentials_after_revocation(records: &[AuditRecord], pulled: usize) {
    let issued = seq_of(records, "SESSION_ISSUED");
    assert_eq!(
        issued.len(),
        pulled,
        "{pulled} credentials left, {} recorded",
        issued.len()
    );
    if let Some(revoked) = seq_of(records, "REVOKED").first() {
        assert!(
            issued.iter().all(|s| s < revoked),
            "a session was issued after the revocation: {issued:?} vs {revoked}"
        );
    }
}

async fn denied_on_role(h: &Harness) -> String {
    jit_stack::demo::revocation_policy(h.stack(), "prod-logs-ro")
        .await
        .map(|doc| doc.to_string())
        .unwrap_or_default()
}

/// Runs `held` with `function`'s next write held for 1.5 s and `then` 400 ms into it; both
/// outcomes. Fails if the write was never held.
async fn while_held<A: Future, B: Future>(
    h: &Harness,
    function: &str,
    held: A,
    then: B,
) -> (A::Output, B::Output) {
    h.stack()
        .aws_calls
        .arm_on(function, "TransactWriteItems", Fault::Delay(1500));
    let both = tokio::join!(held, async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        then.await
    });
    assert!(
        h.stack().aws_calls.disarm(),
        "the {function}'s write was never held"
    );
    both
}

#[tokio::test]
async fn races_over_http_end_in_one_legal_outcome_and_leave_nothing_behind() {
    let harness = Harness::new("races").await;
    let h = &harness;

    // 1. A credential pull whose record write is held while the grant is revoked: the pull
    //    re-reads, finds it REVOKED, and hands nothing out (STS's session is discarded).
    let me = h.person("sre");
    let grant = h.active(&me).await;
    let (pull, revoke) = while_held(h, "issuer", h.pull(&grant, &me), h.revoke(&grant, &me)).await;
    assert_eq!(revoke.0, 200, "{}", revoke.1);
    assert_eq!(
        pull.0, 409,
        "a pull that lost to the revocation: {}",
        pull.1
    );
    let (g, records) = h.verified(&grant).await;
    assert_eq!(g.state.as_str(), "REVOKED");
    no_credentials_after_revocation(&records, 0);

    // 2. The other way round: the revocation's write is held while a pull goes through. The
    //    session is recorded before the revocation, and the role denies it.
    let me = h.person("sre");
    let grant = h.active(&me).await;
    let (revoke, pull) = while_held(h, "sweeper", h.revoke(&grant, &me), h.pull(&grant, &me)).await;
    assert_eq!(pull.0, 200, "{}", pull.1);
    assert_eq!(revoke.0, 200, "{}", revoke.1);
    let (_, records) = h.verified(&grant).await;
    no_credentials_after_revocation(&records, 1);
    assert!(
        denied_on_role(h).await.contains(&grant),
        "{grant} not denied"
    );

    // 3. Reviews and cancels on one request, one reviewer's write held: exactly one decision.
    let requester = h.person("engineers");
    let grant = h.awaiting_review(&requester).await;
    h.stack()
        .aws_calls
        .arm_on("approver", "TransactWriteItems", Fault::Delay(800));
    let path = format!("/requests/{grant}/reviews");
    let mut calls = Vec::new();
    for i in 0..8 {
        let reviewer = h.person("sre");
        let body = if i % 4 == 3 {
            json!({"decision": "deny", "comment": "not now"})
        } else {
            json!({"decision": "approve"})
        };
        let path = path.clone();
        calls.push(Box::pin(async move {
            ("review", h.call("POST", &path, &reviewer, Some(body)).await)
        })
            as std::pin::Pin<
                Box<dyn std::future::Future<Output = (&str, (u16, Value))>>,
            >);
    }
    for _ in 0..2 {
        let path = format!("/requests/{grant}/cancel");
        let requester = requester.clone();
        calls.push(Box::pin(async move {
            ("cancel", h.call("POST", &path, &requester, None).await)
        }));
    }
    let answers = join_all(calls).await;
    h.stack().aws_calls.disarm();
    let won: Vec<&(&str, (u16, Value))> = answers.iter().filter(|(_, (s, _))| *s == 200).collect();
    assert_eq!(won.len(), 1, "exactly one decision wins: {answers:?}");
    for (_, (status, body)) in &answers {
        assert!(
            *status == 200 || *status == 409,
            "a loser is told the state, nothing else: {status} {body}"
        );
    }
    let (g, records) = h.verified(&grant).await;
    assert_eq!(
        Some(g.state.as_str()),
        won[0].1.1["state"].as_str(),
        "the winner's answer is the stored state"
    );
    let decisions = records
        .iter()
        .filter(|r| ["APPROVED", "DENIED", "CANCELLED"].contains(&r.action.as_str()))
        .count();
    assert_eq!(decisions, 1, "one decision recorded: {records:?}");

    // 4. A storm on one grant: pulls, revokes by the requester and an SRE, and sweeps.
    let (me, grant) = h.in_use().await;
    let sre = h.person("sre");
    h.stack()
        .aws_calls
        .arm_on("issuer", "AssumeRole", Fault::Delay(300));
    let pulls = join_all((0..8).map(|_| h.pull(&grant, &me)));
    let revokes = join_all([
        h.revoke_because(&grant, &me, "done early"),
        h.revoke_because(&grant, &sre, "incident closed"),
        h.revoke_because(&grant, &me, "no longer needed"),
    ]);
    let sweeps = join_all((0..2).map(|_| h.stack().sweep()));
    let (pulls, revokes, sweeps) = tokio::join!(pulls, revokes, sweeps);
    h.stack().aws_calls.disarm();
    assert_eq!(
        revokes.iter().filter(|(s, _)| *s == 200).count(),
        1,
        "one revocation: {revokes:?}"
    );
    assert!(sweeps.iter().all(Result::is_ok), "{sweeps:?}");
    assert!(
        pulls.iter().all(|(s, _)| *s == 200 || *s == 409),
        "{pulls:?}"
    );
    let pulled = pulls.iter().filter(|(s, _)| *s == 200).count();
    let (g, records) = h.verified(&grant).await;
    assert_eq!(g.state.as_str(), "REVOKED");
    // The one pull before the storm, and those of the storm that won.
    no_credentials_after_revocation(&records, pulled + 1);
    assert!(
        denied_on_role(h).await.contains(&grant),
        "{grant} not denied"
    );

    // 5. Revocations of four grants on one role at once, the first role change held, with a
    //    sweep in the middle: the role ends up denying all four.
    let mut grants = Vec::new();
    for _ in 0..4 {
        grants.push(h.in_use().await);
    }
    h.stack()
        .aws_calls
        .arm_on("sweeper", "PutRolePolicy", Fault::Delay(1500));
    let revokes = join_all(grants.iter().map(|(me, g)| h.revoke(g, me)));
    let sweep = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        h.stack().sweep().await
    };
    let (revokes, sweep) = tokio::join!(revokes, sweep);
    h.stack().aws_calls.disarm();
    assert!(sweep.is_ok(), "{sweep:?}");
    for ((_, g), (status, body)) in grants.iter().zip(&revokes) {
        assert_eq!(*status, 200, "{g}: {body}");
        h.verified(g).await;
    }
    // What a revocation promised as cut is denied now; the rest by the next sweep at the latest.
    let policy = denied_on_role(h).await;
    for ((_, g), (_, body)) in grants.iter().zip(&revokes) {
        if body["live_sessions"] == "cut" {
            assert!(
                policy.contains(g.as_str()),
                "{g} said cut but is not denied: {policy}"
            );
        }
    }
    h.stack().sweep().await.unwrap();
    let policy = denied_on_role(h).await;
    for (_, g) in &grants {
        assert!(
            policy.contains(g.as_str()),
            "{g} not denied after a sweep: {policy}"
        );
    }

    // 6. An extension racing a revocation and sweeps, each way round: revoked wins, and no
    //    credentials come after it. (An SRE's read-only grant with a ticket: the rules extend
    //    it at once.)
    let extend = |grant: String, me: String| async move {
        let body = json!({"duration": "30m", "reason": "the incident is still open"});
        h.call("POST", &format!("/grants/{grant}/extend"), &me, Some(body))
            .await
    };
    //    The extension's write held while the grant is revoked: it re-reads and is refused.
    let (me, grant) = h.in_use().await;
    let (extended, revoked) = while_held(
        h,
        "approver",
        extend(grant.clone(), me.clone()),
        h.revoke(&grant, &me),
    )
    .await;
    assert_eq!(revoked.0, 200, "{}", revoked.1);
    assert_eq!(extended.0, 409, "{}", extended.1);
    assert!(
        extended.1["detail"].as_str().unwrap().contains("REVOKED"),
        "{}",
        extended.1
    );
    let (g, records) = h.verified(&grant).await;
    assert_eq!(g.state.as_str(), "REVOKED");
    assert!(seq_of(&records, "EXTENDED").is_empty(), "{records:?}");
    assert_eq!(h.pull(&grant, &me).await.0, 409);
    no_credentials_after_revocation(&records, 1);
    //    The revocation's write held while the grant is extended and swept: the extension
    //    lands first, the revocation after it, and the role denies the grant's sessions.
    let (me, grant) = h.in_use().await;
    let sweeps = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        join_all((0..2).map(|_| h.stack().sweep())).await
    };
    let ((revoked, (extended, sweeps)), pulled) = tokio::join!(
        while_held(h, "sweeper", h.revoke(&grant, &me), async {
            tokio::join!(extend(grant.clone(), me.clone()), sweeps)
        },),
        async {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            h.pull(&grant, &me).await
        }
    );
    assert_eq!(revoked.0, 200, "{}", revoked.1);
    assert_eq!(extended.0, 200, "{}", extended.1);
    assert!(sweeps.iter().all(Result::is_ok), "{sweeps:?}");
    assert_eq!(pulled.0, 409, "after the revocation: {}", pulled.1);
    let (g, records) = h.verified(&grant).await;
    assert_eq!(g.state.as_str(), "REVOKED");
    let (extended_at, revoked_at) = (seq_of(&records, "EXTENDED"), seq_of(&records, "REVOKED"));
    assert!(
        extended_at.len() == 1 && extended_at < revoked_at,
        "{records:?}"
    );
    no_credentials_after_revocation(&records, 1);
    assert!(
        denied_on_role(h).await.contains(&grant),
        "{grant} not denied"
    );

    // Everything the storms wrote verifies offline.
    let sue = h.stack().token("sue-races", &["security"]);
    super::verified_export(h.stack(), &h.api, &sue).await;
}
