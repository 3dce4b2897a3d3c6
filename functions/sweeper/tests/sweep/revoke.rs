//! The revoke route: who may revoke, and live sessions cut on the role the grant recorded, in its own account or through its revoker role.

use super::*;

#[tokio::test]
async fn revoking_cuts_the_live_sessions_through_the_roles_policy() {
    let h = Harness::new("revoke", 10_240).await;
    let g = h.with_session("alice", "prod-logs-ro", "1h", 1800).await;
    let other = h.with_session("bob", "prod-logs-ro", "1h", 1800).await;
    let (status, body) = h
        .revoke(Some(("alice", &["engineers"])), &g.id, &reason())
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["state"].as_str(), body["live_sessions"].as_str()),
        (Some("REVOKED"), Some("cut"))
    );
    let policy = h.policy("prod-logs-ro").await.unwrap();
    assert_eq!(
        policy,
        json!({"Version": "2012-10-17", "Statement": [{
            "Sid": "JitRevokedGrants", "Effect": "Deny", "Action": "*", "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalTag/jit-grant": [g.id.as_str()]}}
        }]})
    );
    // An SRE revokes the other: both are denied now, derived from the ledger.
    let (status, _) = h.revoke(Some(("sam", SRE)), &other.id, &reason()).await;
    assert_eq!(status, 200);
    let mut expected = vec![g.id.to_string(), other.id.to_string()];
    expected.sort();
    assert_eq!(
        denied_grants(&h.policy("prod-logs-ro").await.unwrap()),
        expected
    );
    assert!(h.actions(&g.id).await.contains(&AuditAction::Revoked));
    assert_eq!(h.grant(&g.id).await.state, GrantState::Revoked);
}

#[tokio::test]
async fn revocation_is_refused_to_the_wrong_people_and_states() {
    let h = Harness::new("revoke-refused", 10_240).await;
    let g = h.with_session("dan", "prod-db-admin", "1h", 1800).await;
    let pending = h.pending("erin", "prod-logs-ro", "1h").await;
    for (who, status, detail) in [
        (
            Some(("bob", &["engineers"][..])),
            404,
            "no grant with that id is visible to you",
        ),
        (
            Some(("lee", &["dba-leads"][..])),
            403,
            "no policy permits you to Revoke on target `prod-db-admin`",
        ),
        (None, 401, "the request carries no verified identity"),
    ] {
        let (s, body) = h.revoke(who, &g.id, &reason()).await;
        assert_eq!(s, status, "{who:?}: {body}");
        assert!(
            body["detail"].as_str().unwrap().starts_with(detail),
            "{body}"
        );
    }
    let (s, body) = h
        .revoke(Some(("dan", &["dba"])), &g.id, r#"{"reason": "short"}"#)
        .await;
    assert_eq!(
        (s, body["detail"].as_str()),
        (422, Some("reason must be at least 10 characters, got 5"))
    );
    let (s, _) = h
        .revoke(
            Some(("dan", &["dba"])),
            &g.id,
            r#"{"reason": "long enough reason", "force": 1}"#,
        )
        .await;
    assert_eq!(s, 400);
    let (s, body) = h
        .revoke(Some(("erin", &["engineers"])), &pending.id, &reason())
        .await;
    assert_eq!(s, 409);
    assert_eq!(
        body["detail"],
        format!("cannot revoke request `{}`: it is PENDING", pending.id)
    );
    assert_eq!(
        h.grant(&g.id).await.state,
        GrantState::Active,
        "nothing changed"
    );
    assert!(h.policy("prod-db-admin").await.is_none());
    // The requester may end it; a second time is refused.
    assert_eq!(
        h.revoke(Some(("dan", &["dba"])), &g.id, &reason()).await.0,
        200
    );
    let (s, body) = h.revoke(Some(("sam", SRE)), &g.id, &reason()).await;
    assert_eq!(s, 409);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .ends_with("it is REVOKED, which is final")
    );
}

#[tokio::test]
async fn a_role_in_another_account_is_changed_through_its_revoker_role() {
    let h = Harness::new("cross", 10_240).await;
    // A role of the same name in the broker's own account, as one StackSet deploying the
    // target stack everywhere would make.
    let name = format!("prod-db-admin-{}", h.suffix);
    h.jit_role_in_broker_account(&name).await;
    let g = h.with_session("dan", "prod-db-admin", "1h", 1800).await;
    assert_eq!(h.revoke(Some(("sam", SRE)), &g.id, &reason()).await.0, 200);
    let policy = h.policy("prod-db-admin").await.unwrap();
    assert_eq!(denied_grants(&policy), [g.id.to_string()]);
    // Not in the broker's own account.
    let own = h
        .iam
        .get_role_policy()
        .role_name(&name)
        .policy_name("jit-revocations")
        .send()
        .await;
    assert!(own.is_err(), "{own:?}");
}

#[tokio::test]
async fn a_role_the_sweeper_cannot_reach_in_its_own_account_is_pending_never_cut() {
    let h = Harness::new("wrong-account", 10_240).await;
    // The target names a role in account 444444444444 with no revoker role, and a role of
    // that name exists in the broker's account. IAM addresses roles by name in the caller's
    // account, so changing it with the sweeper's own credentials would put the deny on the
    // broker account's role, read it back as done, and leave the real sessions live. (A
    // revoker role in yet another account is refused when the targets file loads, and again
    // by the sweeper before it assumes one.)
    let name = format!("prod-logs-ro-{}", h.suffix);
    h.jit_role_in_broker_account(&name).await;
    let edited = h.with_targets(|targets| {
        let mut file: Value = serde_json::from_str(targets).unwrap();
        for t in file["targets"].as_array_mut().unwrap() {
            if t["id"] == "prod-logs-ro" {
                t["role_arn"] = json!(format!("arn:aws:iam::444444444444:role/jit/{name}"));
                t["account"] = json!("444444444444");
                t.as_object_mut().unwrap().remove("revoker_role_arn");
            }
        }
        file.to_string()
    });
    let g = h
        .pending_under(&edited.rules, "alice", "prod-logs-ro", "1h")
        .await;
    let g = h.activated_with_session(&g, 1800).await;
    assert_eq!(g.role_arn.account(), Some("444444444444"));
    let (status, body) = revoke_with(&edited, Some(("sam", SRE)), &g.id, &reason()).await;
    assert_eq!(
        (status, body["live_sessions"].as_str()),
        (200, Some("pending")),
        "{body}"
    );
    assert_eq!(h.grant(&g.id).await.state, GrantState::Revoked);
    // Nothing landed on the broker account's role of the same name.
    let own = RoleArn::parse(format!("arn:aws:iam::111111111111:role/jit/{name}")).unwrap();
    assert!(policy_in(&h.iam, &own).await.is_none());
    // Every sweep fails its invocation (the alarm) and says why, until it can be reached.
    let err = invoke(&edited, scheduled_event()).await.unwrap_err();
    assert!(
        err.contains("444444444444") && err.contains("the grant recorded no revoker role there"),
        "{err}"
    );
    assert!(policy_in(&h.iam, &own).await.is_none());
}

#[tokio::test]
async fn revocation_follows_the_role_recorded_on_the_grant_not_the_targets_file() {
    let h = Harness::new("moved", 10_240).await;
    let moved = h.with_session("alice", "prod-logs-ro", "1h", 1800).await;
    let removed = h.with_session("dan", "prod-db-admin", "1h", 1800).await;
    // The targets file now points prod-logs-ro at another role, and no longer declares
    // prod-db-admin (whose role lives in another account, reached through its revoker role).
    let edited = h.with_targets(|targets| {
        let mut file: Value = serde_json::from_str(targets).unwrap();
        let list = file["targets"].as_array_mut().unwrap();
        let db = list
            .iter()
            .position(|t| t["id"] == "prod-db-admin")
            .unwrap();
        let requirements = list.remove(db)["requirements"].clone();
        for t in list.iter_mut() {
            if t["id"] == "prod-logs-ro" {
                t["role_arn"] = json!("arn:aws:iam::333333333333:role/jit/some-other-role");
            }
            // The rules' @requirement annotations must name a requirement some target
            // declares: the removed target's move to another admin target.
            if t["id"] == "break-glass-admin" {
                t["requirements"] = requirements.clone();
            }
        }
        // Nor may Slack's settings name a target no longer declared.
        if let Some(channels) = file["slack"]["channels"].as_object_mut() {
            channels.remove("prod-db-admin");
        }
        file.to_string()
    });
    let (status, body) = revoke_with(&edited, Some(("sam", SRE)), &moved.id, &reason()).await;
    assert_eq!(
        (status, body["live_sessions"].as_str()),
        (200, Some("cut")),
        "{body}"
    );
    assert_eq!(denied(h.policy_of(&moved).await), sorted(&[&moved.id]));
    // The removed target's grant: revoked by its requester, cut through the recorded revoker.
    let (status, body) =
        revoke_with(&edited, Some(("dan", &["dba"])), &removed.id, &reason()).await;
    assert_eq!(
        (status, body["live_sessions"].as_str()),
        (200, Some("cut")),
        "{body}"
    );
    assert_eq!(denied(h.policy_of(&removed).await), sorted(&[&removed.id]));
    // The sweep walks every role with ledger entries, declared or not: it repairs the
    // removed target's role when its policy goes missing.
    h.iam_of(&removed.role_arn)
        .delete_role_policy()
        .role_name(jit_sweeper::role_name(&removed.role_arn))
        .policy_name("jit-revocations")
        .send()
        .await
        .unwrap();
    let report = invoke(&edited, scheduled_event()).await.unwrap();
    assert_eq!(report["repaired"], 1, "{report}");
    assert_eq!(denied(h.policy_of(&removed).await), sorted(&[&removed.id]));
}

#[tokio::test]
async fn a_revoke_cuts_sessions_until_the_signed_expiry_whatever_the_item_claims() {
    let h = Harness::new("revoke-lowered", 10_240).await;
    let g = h.with_session("alice", "prod-logs-ro", "1h", 3600).await;
    let signed_expiry = h.grant(&g.id).await.sessions_valid_until.unwrap();
    // Someone with table access claims the session ends in a minute, hoping the revocation
    // lapses (and its deny is pruned) while the session still works.
    let mut lowered = h.grant(&g.id).await;
    lowered.sessions_valid_until = Some(h.now().plus_secs(60));
    h.sweeper
        .store
        .table
        .put_raw(&format!("GRANT#{}", g.id), "GRANT", &lowered)
        .await
        .unwrap();

    let (status, body) = h.revoke(Some(("sam", SRE)), &g.id, &reason()).await;
    assert_eq!(status, 200, "{body}");
    let ledger = h.store().role_ledger(&g.role_arn).await.unwrap();
    let entry = ledger.entries.iter().find(|e| e.grant_id == g.id).unwrap();
    assert_eq!(entry.until, signed_expiry);
    // Past the claimed minute the grant is still denied, and stays so until the real expiry.
    h.clock.advance(600);
    h.sweep().await;
    assert_eq!(
        denied_grants(&h.policy("prod-logs-ro").await.unwrap()),
        [g.id.to_string()]
    );
}
