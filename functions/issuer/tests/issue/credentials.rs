//! Who gets credentials, in which states, scoped how, and for how long.

use super::*;

#[tokio::test]
async fn an_active_grant_gets_scoped_credentials_in_one_read_one_assume_role_one_write() {
    let h = Harness::new("creds").await;
    let g = h.active("alice", "prod-logs-ro", "30m").await;
    h.calls();
    let reply = h
        .call(Some(("alice", ENGINEER)), CREDENTIALS, &g.id, None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // The one read is a query of the grant's partition: the grant and its chain, verified.
    assert_eq!(
        h.calls(),
        BTreeMap::from([
            ("DynamoDB.Query".to_owned(), 1),
            ("DynamoDB.TransactWriteItems".to_owned(), 1),
            ("STS.AssumeRole".to_owned(), 1),
        ])
    );
    let b = &reply.body;
    assert_eq!(b["Version"], 1);
    for key in ["AccessKeyId", "SecretAccessKey", "SessionToken"] {
        assert!(!b[key].as_str().unwrap().is_empty(), "{key}");
    }
    let expiration = Timestamp::parse_rfc3339(b["Expiration"].as_str().unwrap()).unwrap();
    let lasts = expiration.unix_seconds() - h.now().unix_seconds();
    assert!(
        (1790..=1810).contains(&lasts),
        "the grant's remaining 30 minutes, got {lasts}s"
    );

    let sent = h.last_assume_role();
    assert_eq!(
        sent["RoleArn"],
        "arn:aws:iam::333333333333:role/jit/prod-logs-ro"
    );
    assert_eq!(sent["RoleSessionName"], format!("alice@{}", g.id));
    assert_eq!(sent["SourceIdentity"], "alice");
    // To the grant's end, less the second STS may count from later than the issuer's now.
    assert_eq!(sent["DurationSeconds"], "1799");
    assert_eq!(sent["Tags.member.1.Key"], "jit-grant");
    assert_eq!(sent["Tags.member.1.Value"], g.id.as_str());
    assert_eq!(sent["Tags.member.2.Key"], "jit-requester");
    assert_eq!(sent["Tags.member.2.Value"], "alice");
    assert_eq!(sent["TransitiveTagKeys.member.1"], "jit-grant");
    assert_eq!(sent["TransitiveTagKeys.member.2"], "jit-requester");
    let policy: Value = serde_json::from_str(&sent["Policy"]).unwrap();
    assert_eq!(policy["Version"], "2012-10-17");

    let stored = h.grant(&g.id).await;
    assert_eq!(
        (stored.sessions_issued, stored.sessions_valid_until),
        (1, Some(expiration))
    );
    assert_eq!(
        h.audit_actions(&g.id).await.last(),
        Some(&AuditAction::SessionIssued)
    );
}

#[tokio::test]
async fn session_length_is_clamped_to_sts_limits() {
    let h = Harness::new("clamp").await;
    // (who, target, grant length) → the session length asked of STS. Two hours left: role
    // chaining caps a session at one hour. Five minutes left: STS's minimum is fifteen, so the
    // session outlives the grant and the grant records that, for revocation to reach it.
    let mut short = None;
    for (who, target, length, asked) in [
        ("alice", "prod-deploy", "2h", "3600"),
        ("bob", "prod-logs-ro", "5m", "900"),
    ] {
        let g = h.active(who, target, length).await;
        let reply = h
            .call(Some((who, ENGINEER)), CREDENTIALS, &g.id, None)
            .await;
        assert_eq!(reply.status, 200, "{length}: {}", reply.body);
        assert_eq!(h.last_assume_role()["DurationSeconds"], asked, "{length}");
        short = Some(g);
    }
    let short = short.unwrap();
    let stored = h.grant(&short.id).await;
    assert!(stored.sessions_valid_until.unwrap() > stored.ends_at.unwrap());
}

#[tokio::test]
async fn only_the_requester_of_an_active_unexpired_grant_gets_credentials() {
    let h = Harness::new("refusals").await;
    let active = h.active("alice", "prod-logs-ro", "1h").await;
    let pending = h.pending("alice", "prod-deploy", "1h").await;
    let denied = {
        let g = h.pending("carol", "prod-logs-ro", "1h").await;
        let g = h
            .apply(
                &g,
                Command::AwaitReview {
                    approvals_required: 1,
                    requirements: Vec::new(),
                    policy_hash: "h".into(),
                    rules_said: String::new(),
                    on_call: Default::default(),
                },
                Actor::Service(Service::Approver),
            )
            .await;
        h.apply(
            &g,
            Command::Review {
                decision: jit_core::domain::ReviewDecision::Deny,
                comment: None,
                fills: Vec::new(),
                slack: None,
            },
            Actor::User(UserId::parse("sam").unwrap()),
        )
        .await
    };
    let revoked = {
        let g = h.active("dave", "prod-logs-ro", "1h").await;
        h.apply(
            &g,
            Command::Revoke {
                reason: Reason::parse("incident is over now").unwrap(),
            },
            Actor::User(UserId::parse("sam").unwrap()),
        )
        .await
    };
    let short = h.active("erin", "prod-logs-ro", "5m").await;
    h.calls();
    type Case<'a> = (Option<(&'a str, &'a [&'a str])>, &'a Grant, u16, String);
    let cases: Vec<Case> = vec![
        (
            Some(("bob", ENGINEER)),
            &active,
            404,
            "no grant with that id is visible to you".into(),
        ),
        (
            Some(("sam", &["sre"])),
            &active,
            403,
            "only the requester may use a grant".into(),
        ),
        (
            None,
            &active,
            401,
            "the request carries no verified identity".into(),
        ),
        (
            Some(("alice", ENGINEER)),
            &pending,
            409,
            format!(
                "cannot issue credentials for request `{}`: it is PENDING",
                pending.id
            ),
        ),
        (
            Some(("carol", ENGINEER)),
            &denied,
            409,
            format!(
                "cannot issue credentials for request `{}`: it is DENIED, which is final",
                denied.id
            ),
        ),
        (
            Some(("dave", ENGINEER)),
            &revoked,
            409,
            format!(
                "cannot issue credentials for request `{}`: it is REVOKED, which is final",
                revoked.id
            ),
        ),
    ];
    for (who, g, status, detail) in cases {
        let reply = h.call(who, CREDENTIALS, &g.id, None).await;
        assert_eq!(reply.status, status, "{who:?} {}: {}", g.state, reply.body);
        assert!(reply.detail().starts_with(&detail), "{}", reply.detail());
        assert!(reply.body.get("AccessKeyId").is_none());
    }
    // Bodies these routes do not take are refused, not ignored.
    let extra = h
        .call(
            Some(("alice", ENGINEER)),
            CREDENTIALS,
            &active.id,
            Some(r#"{"duration": 7200}"#),
        )
        .await;
    extra.assert_refused(400, "unknown field `duration`");
    let extra = h
        .call(
            Some(("alice", ENGINEER)),
            CONSOLE,
            &active.id,
            Some(r#"{"dest": "https://console.aws.amazon.com/"}"#),
        )
        .await;
    assert_eq!(extra.status, 400);
    // Past its end but not yet swept: refused before STS is asked.
    h.clock.advance(6 * 60);
    let late = h
        .call(Some(("erin", ENGINEER)), CREDENTIALS, &short.id, None)
        .await;
    late.assert_refused(409, "its time ran out");
    let calls = h.calls();
    assert!(!calls.contains_key("STS.AssumeRole"), "{calls:?}");
    assert!(
        !calls.contains_key("DynamoDB.TransactWriteItems"),
        "{calls:?}"
    );
}

#[tokio::test]
async fn hostile_user_names_still_give_sessions_sts_accepts() {
    let h = Harness::new("names").await;
    let long = "x".repeat(200);
    for (i, user) in [
        "Jörg Müller",
        "auth0|5f7c8ec7c33c",
        "team/alice",
        "alice@example.com",
        long.as_str(),
        "日本語",
    ]
    .iter()
    .enumerate()
    {
        let target = ["prod-logs-ro", "prod-deploy"][i % 2];
        let g = h.active(user, target, "1h").await;
        let reply = h
            .call(Some((user, ENGINEER)), CREDENTIALS, &g.id, None)
            .await;
        assert_eq!(reply.status, 200, "{user}: {}", reply.body);
        let sent = h.last_assume_role();
        let name = &sent["RoleSessionName"];
        assert!(name.len() <= 64 && name.ends_with(g.id.as_str()), "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)),
            "{name}"
        );
        let source = &sent["SourceIdentity"];
        assert!((2..=64).contains(&source.len()), "{source}");
    }
}
