//! Signed checkpoints and what an offline check of an export catches.

use super::*;

/// The export an auditor would get for `[from, to)`, read from the table.
async fn export_of(h: &Harness, from: Timestamp, to: Timestamp) -> AuditExport {
    let store = h.store();
    let records =
        jit_core::store::every_page(
            |page| async move { store.audit_between(from, to, &page).await },
        )
        .await
        .unwrap();
    let mut ids: Vec<GrantId> = records.iter().map(|r| r.grant_id.clone()).collect();
    ids.sort();
    ids.dedup();
    AuditExport {
        from: Some(from),
        to: Some(to),
        keys: h.sweeper.store.keys.ring().public_keys(),
        heads: store.heads(&ids).await.unwrap(),
        checkpoints: store.checkpoints_between(from, to).await.unwrap(),
        records,
        checkpoint_period: Some(SweeperConfig::default().checkpoint_period),
        exported_at: Some(h.now()),
        activity: Default::default(),
    }
}

#[tokio::test]
async fn checkpoints_let_an_offline_check_catch_edits_drops_forgeries_and_deleted_grants() {
    let h = Harness::new("checkpoints", 10_240).await;
    let hour = 3600;
    let start = Timestamp::from_unix_seconds((h.now().unix_seconds() / hour + 1) * hour);
    let end = start.plus_secs(hour);
    h.clock.set(start.plus_secs(10));
    // The first sweep starts the chain with the latest closed period: the hour before last,
    // since the last one closes five minutes past `start`. Nothing of the current one yet.
    assert_eq!(h.sweep().await["checkpoints"], 1);
    let first = h.sweeper.store.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(
        (first.seq, first.period_start, first.period_end),
        (1, start.plus_secs(-2 * hour), start.plus_secs(-hour))
    );
    assert_eq!(h.sweep().await["checkpoints"], 0);

    h.pending("alice", "prod-logs-ro", "1h").await;
    let bob = h.with_session("bob", "prod-logs-ro", "1h", 900).await;
    h.clock.advance(60);
    let (status, body) = h
        .revoke(
            Some(("sam", SRE)),
            &bob.id,
            r#"{"reason":"done with it, thanks"}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let carol = h.pending("carol", "prod-db-admin", "1h").await;

    // Past the end and the grace: the next sweep signs the hour before `start`, then the
    // period's own checkpoint.
    h.clock.set(end.plus_secs(301));
    assert_eq!(h.sweep().await["checkpoints"], 2);
    // One checkpoint per period: the next sweep has nothing new to sign.
    assert_eq!(h.sweep().await["checkpoints"], 0);

    let export = export_of(&h, start, end).await;
    assert_eq!(export.checkpoints.len(), 1);
    assert_eq!(export.checkpoints[0].count, 1 + 4 + 1);
    let summary = verify_export(&export, None, h.now()).unwrap();
    assert_eq!(
        (summary.grants, summary.records, summary.periods),
        (3, 6, 1)
    );
    // The keys an auditor pinned beforehand verify it just as well.
    verify_export(&export, Some(&h.sweeper.store.keys.ring()), h.now()).unwrap();

    // One byte edited in the exported text.
    let text = serde_json::to_string(&export).unwrap();
    let edited = text.replacen("done with it, thanks", "done with it, thankz", 1);
    assert_ne!(edited, text);
    let edited: AuditExport = serde_json::from_str(&edited).unwrap();
    let broken = verify_export(&edited, None, h.now()).unwrap_err();
    assert!(
        matches!(&broken, ExportBreak::Record { grant_id, seq: 4, problem } if grant_id == &bob.id && problem.contains("altered")),
        "{broken}"
    );

    // One record dropped from the middle of a chain.
    let mut dropped = export.clone();
    dropped
        .records
        .retain(|r| !(r.grant_id == bob.id && r.seq == 2));
    let broken = verify_export(&dropped, None, h.now()).unwrap_err();
    assert!(
        matches!(&broken, ExportBreak::Record { seq: 3, problem, .. } if problem.contains("record 2 is missing")),
        "{broken}"
    );

    // A record rewritten and signed with a key that is not one of the functions'.
    let mut forged = export.clone();
    let stranger = LocalKey::generate(Service::Sweeper);
    let record = forged
        .records
        .iter_mut()
        .find(|r| r.grant_id == bob.id && r.seq == 4)
        .unwrap();
    record
        .detail
        .insert("reason".to_owned(), "routine".to_owned());
    record.hash = record.compute_hash();
    record.signature = Some(stranger.sign_as(&record_message(&record.hash)));
    let broken = verify_export(&forged, None, h.now()).unwrap_err();
    assert!(
        matches!(&broken, ExportBreak::Record { seq: 4, problem, .. } if problem.contains("not one of the functions' keys")),
        "{broken}"
    );

    // A whole grant deleted from the table with its chain, as an insider could: the export
    // of the closed period no longer matches what the sweeper signed.
    let table = &h.sweeper.store.table;
    let delete = |pk: String, sk: String| {
        table
            .client
            .delete_item()
            .table_name(&table.name)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(sk))
            .send()
    };
    for sk in ["GRANT", "AUDIT#0000000001"] {
        delete(format!("GRANT#{}", carol.id), sk.to_owned())
            .await
            .unwrap();
    }
    let export = export_of(&h, start, end).await;
    assert!(export.records.iter().all(|r| r.grant_id != carol.id));
    let broken = verify_export(&export, None, h.now()).unwrap_err();
    assert_eq!(
        broken,
        ExportBreak::Period {
            seq: 3,
            start,
            end,
            signed: 6,
            found: 5,
            digest: String::new(),
        }
    );
    assert!(
        broken.to_string().contains("held 6 audit records"),
        "{broken}"
    );

    // The period's checkpoint deleted too: once it was due to be signed, the export says
    // it is missing rather than checking nothing.
    delete(
        "CHECKPOINTS".to_owned(),
        format!("PERIOD#{:012}", start.unix_seconds()),
    )
    .await
    .unwrap();
    h.clock.set(end.plus_secs(300 + 120));
    let export = export_of(&h, start, end).await;
    assert!(export.checkpoints.is_empty());
    let broken = verify_export(&export, None, h.now()).unwrap_err();
    assert_eq!(broken, ExportBreak::NoCheckpoints { start, end });
    assert!(broken.to_string().contains("has no checkpoint"), "{broken}");
}
