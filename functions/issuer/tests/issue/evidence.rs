//! Credentials only for what the signed chain says: a changed target, a target the deployment does not isolate, forged or edited evidence.

use super::*;

#[tokio::test]
async fn issuance_keeps_the_scope_recorded_with_the_grant_and_refuses_a_changed_target() {
    let h = Harness::new("bound").await;
    let g = h.active("alice", "prod-logs-ro", "1h").await;
    let recorded = g.session_policy.clone().unwrap();
    let dir = jit_local::workspace_root().join("infra/policies");
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
    let rules_with = |edit: &dyn Fn(&mut Value)| {
        let mut file: Value = serde_json::from_str(&read("targets.json")).unwrap();
        edit(&mut file);
        Rules::from_sources(
            &read("schema.cedarschema"),
            vec![
                ("access.cedar".into(), read("access.cedar")),
                ("auto-approve.cedar".into(), read("auto-approve.cedar")),
            ],
            &file.to_string(),
        )
        .unwrap()
    };
    fn logs(file: &mut Value) -> &mut Value {
        file["targets"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|t| t["id"] == "prod-logs-ro")
            .unwrap()
    }
    let config = jit_local::Emulator::shared().unwrap().sdk_config().await;
    for (change, edit, says) in [
        (
            "session policy removed",
            Box::new(|f: &mut Value| {
                logs(f).as_object_mut().unwrap().remove("session_policy");
            }) as Box<dyn Fn(&mut Value)>,
            "target `prod-logs-ro`'s session policy changed since this grant was requested",
        ),
        (
            "session policy widened",
            Box::new(|f: &mut Value| {
                logs(f)["session_policy"]["Statement"][0]["Action"] = json!("*");
            }),
            "session policy changed",
        ),
        (
            "role changed",
            Box::new(|f: &mut Value| {
                logs(f)["role_arn"] = json!("arn:aws:iam::333333333333:role/jit/other");
            }),
            "target `prod-logs-ro` now names role `arn:aws:iam::333333333333:role/jit/other`",
        ),
        (
            "target removed",
            Box::new(|f: &mut Value| {
                f["targets"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|t| t["id"] != "prod-logs-ro");
            }),
            "target `prod-logs-ro` is no longer declared",
        ),
    ] {
        let calls = CallCounter::new();
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&config)
                .interceptor(calls.clone())
                .build(),
        );
        let issuer = h.issuer_with(rules_with(&edit), sts);
        let reply = call_on(&issuer, Some(("alice", ENGINEER)), CREDENTIALS, &g.id, None).await;
        assert_eq!(reply.status, 409, "{change}: {}", reply.body);
        assert!(
            reply.body["type"]
                .as_str()
                .unwrap()
                .ends_with("target-changed"),
            "{change}"
        );
        assert!(
            reply.detail().contains(says) && reply.detail().ends_with("request access again"),
            "{change}: {}",
            reply.detail()
        );
        assert!(calls.take().is_empty(), "{change}: no STS call");
        assert_eq!(
            h.grant(&g.id).await.version,
            g.version,
            "{change}: nothing written"
        );
    }
    // Unchanged, the session carries exactly the scope recorded with the grant.
    let reply = h
        .call(Some(("alice", ENGINEER)), CREDENTIALS, &g.id, None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(h.last_assume_role()["Policy"], recorded);
}

#[tokio::test]
async fn a_target_the_deployment_does_not_isolate_from_the_broker_gets_no_credentials() {
    let h = Harness::new("isolation").await;
    let g = h.active("alice", "prod-logs-ro", "1h").await;
    let dir = jit_local::workspace_root().join("infra/policies");
    let config = jit_local::Emulator::shared().unwrap().sdk_config().await;
    // The broker now runs in the target's own account (333333333333): without the opt-in a
    // session there could change the broker, so nothing is issued; with it, it is.
    for (opted_in, status) in [(false, 409), (true, 200)] {
        let calls = CallCounter::new();
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&config)
                .interceptor(calls.clone())
                .build(),
        );
        let rules = Rules::load_dir(&dir).unwrap().with_isolation(Isolation {
            broker_account: Some("333333333333".into()),
            targets_in_broker_account: opted_in,
        });
        let issuer = h.issuer_with(rules, sts);
        let reply = call_on(&issuer, Some(("alice", ENGINEER)), CREDENTIALS, &g.id, None).await;
        assert_eq!(reply.status, status, "opted in: {opted_in}: {}", reply.body);
        if status == 409 {
            assert!(
                reply.body["type"]
                    .as_str()
                    .unwrap()
                    .ends_with("target-not-isolated")
            );
            reply.assert_detail_spans("target `prod-logs-ro` (targets.json:4): its role is in the broker's own account 333333333333", "no credentials were issued");
            assert!(calls.take().is_empty(), "no STS call");
            assert_eq!(h.grant(&g.id).await.version, g.version, "nothing written");
        }
    }
}

/// What someone who can write the table, or holds one function's key, might do to get
/// credentials without the approver's say-so; each is refused before STS is called.
#[tokio::test]
async fn a_grant_whose_evidence_does_not_verify_gets_no_credentials() {
    use jit_core::trust::{LocalKey, record_message};

    let h = Harness::new("forged").await;
    let raw = h.store().inner().clone();
    let auto_approve = |g: &Grant, now| {
        g.apply(
            Command::AutoApprove {
                policies: vec!["forged".into()],
                policy_hash: "h".into(),
                on_call: Default::default(),
            },
            &Actor::Service(Service::Approver),
            now,
        )
        .unwrap()
    };
    let put_grant = |grant: Grant| {
        let table = h.table.clone();
        async move {
            table
                .put_raw(&format!("GRANT#{}", grant.id), "GRANT", &grant)
                .await
                .unwrap();
        }
    };

    let mut cases: Vec<(&str, GrantId, &str)> = Vec::new();

    // 1. Intake's key (a compromised intake) signs the activation: a well-formed chain whose
    //    activating record is not the approver's.
    let g = h.pending("alice", "prod-logs-ro", "1h").await;
    let change = auto_approve(&g, h.now());
    let intake = h.keys.key(Service::Intake);
    let forged = intake.sign_as(&record_message(&change.audit().hash));
    raw.commit(&change.with_signature(forged)).await.unwrap();
    cases.push((
        "intake's key on an activation",
        g.id,
        "only the approver function",
    ));

    // 2. Someone with table access and no key at all appends an unsigned activation.
    let g = h.pending("bob", "prod-logs-ro", "1h").await;
    raw.commit(&auto_approve(&g, h.now())).await.unwrap();
    cases.push(("an unsigned activation", g.id, "not signed"));

    // 3. A key from outside the deployment, claiming to be the approver's.
    let g = h.pending("carol", "prod-logs-ro", "1h").await;
    let change = auto_approve(&g, h.now());
    let stranger = LocalKey::generate(Service::Approver);
    let forged = stranger.sign_as(&record_message(&change.audit().hash));
    raw.commit(&change.with_signature(forged)).await.unwrap();
    cases.push(("an outside key", g.id, "not one of the functions' keys"));

    // 4. A properly approved grant whose item is rewritten to last ten hours longer.
    let g = h.active("dave", "prod-logs-ro", "1h").await;
    let mut longer = h.grant(&g.id).await;
    longer.ends_at = longer.ends_at.map(|t| t.plus_secs(36_000));
    put_grant(longer).await;
    cases.push(("an extended end time", g.id, "end time"));

    // 5. A pending request's item set to ACTIVE with its chain left as it was.
    let g = h.pending("erin", "prod-logs-ro", "1h").await;
    let mut active = h.grant(&g.id).await;
    active.state = GrantState::Active;
    active.activated_at = Some(h.now());
    active.ends_at = Some(h.now().plus_secs(3600));
    put_grant(active).await;
    cases.push(("a state written directly", g.id, "state"));

    // 6. A properly approved grant moved to another role.
    let g = h.active("frank", "prod-logs-ro", "1h").await;
    let mut moved = h.grant(&g.id).await;
    moved.role_arn =
        jit_core::domain::RoleArn::parse("arn:aws:iam::333333333333:role/jit/prod-admin").unwrap();
    put_grant(moved).await;
    cases.push(("another role", g.id, "role"));

    for (case, id, says) in cases {
        let who = h.grant(&id).await.requester;
        let before = h.audit_actions(&id).await;
        h.calls();
        let reply = h
            .call(Some((who.as_str(), ENGINEER)), CREDENTIALS, &id, None)
            .await;
        assert_eq!(reply.status, 409, "{case}: {}", reply.body);
        assert!(
            reply.body["type"]
                .as_str()
                .unwrap()
                .ends_with("evidence-unverified"),
            "{case}: {}",
            reply.body
        );
        assert!(
            reply.detail().contains("failed verification") && reply.detail().contains(says),
            "{case}: {}",
            reply.detail()
        );
        assert!(reply.body.get("AccessKeyId").is_none(), "{case}");
        let calls = h.calls();
        assert!(!calls.contains_key("STS.AssumeRole"), "{case}: {calls:?}");
        assert_eq!(
            calls.get("DynamoDB.Query"),
            Some(&1),
            "{case}: one read, nothing written: {calls:?}"
        );
        assert_eq!(calls.values().sum::<u64>(), 1, "{case}: {calls:?}");
        assert_eq!(h.audit_actions(&id).await, before, "{case}");
    }

    // The same grant, signed by the approver, is served: the refusals above are the evidence's.
    let g = h.active("grace", "prod-logs-ro", "1h").await;
    let reply = h
        .call(Some(("grace", ENGINEER)), CREDENTIALS, &g.id, None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}
