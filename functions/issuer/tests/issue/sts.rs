//! What STS refuses or fails, and a revocation landing between AssumeRole and the write.

use super::*;

/// An STS client for `endpoint`, retrying as the SDK does but without long back-offs.
async fn sts_at(endpoint: &str) -> aws_sdk_sts::Client {
    let config = jit_local::Emulator::shared().unwrap().sdk_config().await;
    aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(&config)
            .endpoint_url(endpoint)
            .retry_config(
                aws_sdk_sts::config::retry::RetryConfig::standard()
                    .with_max_attempts(2)
                    .with_initial_backoff(std::time::Duration::from_millis(10)),
            )
            .build(),
    )
}

#[tokio::test]
async fn sts_errors_in_their_real_shape_say_what_to_fix_and_write_nothing() {
    let h = Harness::new("sts-fail").await;
    let g = h.active("alice", "prod-logs-ro", "1h").await;
    // STS's own error answers, from a loopback endpoint, through the real SDK client.
    let sts = jit_local::CannedEndpoint::start().await.unwrap();
    let rules = Rules::load_dir(&jit_local::workspace_root().join("infra/policies")).unwrap();
    let issuer = h.issuer_with(rules, sts_at(&sts.endpoint).await);
    let denied = "User: arn:aws:sts::123456789012:assumed-role/jit-issuer/issuer is not \
        authorized to perform: sts:TagSession on resource: \
        arn:aws:iam::333333333333:role/jit/prod-logs-ro";
    for (status, kind, code, message, expected, problem, says) in [
        (
            403,
            "Sender",
            "AccessDenied",
            denied,
            502,
            "sts-access-denied",
            "The role's trust policy must allow this function's role the actions sts:AssumeRole, sts:TagSession and sts:SetSourceIdentity",
        ),
        (
            503,
            "Receiver",
            "ServiceUnavailable",
            "Service Unavailable",
            503,
            "unavailable",
            "STS is unavailable (ServiceUnavailable: Service Unavailable); nothing was issued, try again",
        ),
        (
            500,
            "Receiver",
            "InternalFailure",
            "An internal error occurred",
            503,
            "unavailable",
            "STS is unavailable (InternalFailure: An internal error occurred)",
        ),
        (
            400,
            "Sender",
            "Throttling",
            "Rate exceeded",
            503,
            "unavailable",
            "STS is unavailable (Throttling: Rate exceeded)",
        ),
        (
            403,
            "Sender",
            "RegionDisabledException",
            "STS is not activated in this region for account:111111111111",
            502,
            "sts-refused",
            "STS refused: RegionDisabledException: STS is not activated",
        ),
    ] {
        sts.sts_error(status, kind, code, message);
        let reply = call_on(&issuer, Some(("alice", ENGINEER)), CREDENTIALS, &g.id, None).await;
        assert_eq!(reply.status, expected, "{code}: {}", reply.body);
        assert!(
            reply.body["type"].as_str().unwrap().ends_with(problem),
            "{code}: {}",
            reply.body
        );
        assert!(reply.detail().contains(says), "{code}: {}", reply.detail());
        assert_eq!(
            h.grant(&g.id).await.version,
            g.version,
            "{code}: nothing written"
        );
    }
    assert!(sts.requests() >= 5);
}

#[tokio::test]
async fn a_revocation_between_assume_role_and_the_write_drops_the_credentials() {
    let h = Harness::new("race").await;
    let g = h.active("alice", "prod-logs-ro", "1h").await;
    let (now, grant, table) = (h.now(), g.clone(), h.table.name.clone());
    let keys = h.keys.clone();
    let config = jit_local::Emulator::shared().unwrap().sdk_config().await;
    let revoked = Arc::new(std::sync::Mutex::new(false));
    let flag = revoked.clone();
    *h.issuer.broker.before.lock().unwrap() = Some(Box::new(move || {
        // Revoke from another thread while the issuer waits on STS.
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                // Its own client: the test's runtime is blocked while this runs.
                let store = SignedStore::new(
                    DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table),
                    Arc::new(keys),
                );
                let change = grant
                    .apply(
                        Command::Revoke {
                            reason: Reason::parse("stop right there please").unwrap(),
                        },
                        &Actor::User(UserId::parse("sam").unwrap()),
                        now,
                    )
                    .unwrap();
                store.commit(&change).await.unwrap();
            });
        })
        .join()
        .unwrap();
        *flag.lock().unwrap() = true;
    }));
    let reply = h
        .call(Some(("alice", ENGINEER)), CREDENTIALS, &g.id, None)
        .await;
    assert!(*revoked.lock().unwrap());
    reply.assert_refused(409, "it is REVOKED");
    assert!(reply.body.get("AccessKeyId").is_none());
    let stored = h.grant(&g.id).await;
    assert_eq!(
        (stored.state, stored.sessions_issued),
        (GrantState::Revoked, 0)
    );
    assert!(
        !h.audit_actions(&g.id)
            .await
            .contains(&AuditAction::SessionIssued)
    );
}
