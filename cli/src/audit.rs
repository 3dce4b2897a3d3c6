//! `jit audit export` and `jit audit verify`: the trail as JSON Lines, one item per line
//! (`range`, `key`, `checkpoint`, `head`, `record`), and its fully offline check.

use std::collections::BTreeMap;

use jit_core::trust::{AuditExport, GrantHead, KeyRing, PublicKey, verify_export};
use serde_json::{Value, json};

use crate::api::{Api, Failure};

/// Every page of `GET /audit` for `[from, to)`, as JSON Lines.
pub async fn export(api: &Api, from: &str, to: &str) -> Result<String, Failure> {
    let mut export = AuditExport::default();
    let mut heads: BTreeMap<String, GrantHead> = BTreeMap::new();
    let mut next: Option<String> = None;
    loop {
        let mut path = format!("/audit?from={from}&to={to}&limit=100");
        if let Some(cursor) = &next {
            path.push_str(&format!("&next={cursor}"));
        }
        let page = api.call("GET", &path, None).await?;
        let part: AuditExport = serde_json::from_value(page.clone()).map_err(|e| {
            Failure::Other(format!(
                "the API answered an export page that is not one: {e}"
            ))
        })?;
        export.from = part.from;
        export.to = part.to;
        export.keys = part.keys;
        export.checkpoints = part.checkpoints;
        export.checkpoint_period = part.checkpoint_period;
        // The first page's time: a checkpoint due by then is due on every later page too.
        export.exported_at = export.exported_at.or(part.exported_at);
        export.records.extend(part.records);
        // A grant on two pages has two heads: the later read is the longer chain.
        for head in part.heads {
            let id = head.grant_id.to_string();
            let longer = heads.get(&id).is_none_or(|h| h.head.seq <= head.head.seq);
            if longer {
                heads.insert(id, head);
            }
        }
        match page["next"].as_str() {
            Some(cursor) => next = Some(cursor.to_owned()),
            None => break,
        }
    }
    export.heads = heads.into_values().collect();
    let mut lines = vec![json!({
        "type": "range",
        "from": export.from,
        "to": export.to,
        "checkpoint_period": export.checkpoint_period,
        "exported_at": export.exported_at,
    })];
    let tagged = |kind: &str, value: Value| {
        let mut value = value;
        if let Value::Object(fields) = &mut value {
            fields.insert("type".to_owned(), json!(kind));
        }
        value
    };
    for key in &export.keys {
        lines.push(tagged("key", json!(key)));
    }
    for checkpoint in &export.checkpoints {
        lines.push(tagged("checkpoint", json!(checkpoint)));
    }
    for head in &export.heads {
        lines.push(tagged("head", json!(head)));
    }
    for record in &export.records {
        lines.push(tagged("record", json!(record)));
    }
    Ok(lines.iter().map(|l| format!("{l}\n")).collect::<String>())
}

/// Reads an export written by [`export`]: line `n` that is not one of its items is refused.
pub fn read(text: &str) -> Result<AuditExport, Failure> {
    let mut export = AuditExport::default();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: String| Failure::Tampered(format!("line {n} is not an export item: {why}"));
        let mut value: Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let kind = value["type"].as_str().unwrap_or_default().to_owned();
        if let Value::Object(fields) = &mut value {
            fields.remove("type");
        }
        match kind.as_str() {
            "range" => {
                export.from = serde_json::from_value(value["from"].clone())
                    .map_err(|e| bad(e.to_string()))?;
                export.to =
                    serde_json::from_value(value["to"].clone()).map_err(|e| bad(e.to_string()))?;
                export.checkpoint_period =
                    serde_json::from_value(value["checkpoint_period"].clone())
                        .map_err(|e| bad(e.to_string()))?;
                export.exported_at = serde_json::from_value(value["exported_at"].clone())
                    .map_err(|e| bad(e.to_string()))?;
            }
            "key" => export
                .keys
                .push(serde_json::from_value(value).map_err(|e| bad(e.to_string()))?),
            "checkpoint" => export
                .checkpoints
                .push(serde_json::from_value(value).map_err(|e| bad(e.to_string()))?),
            "head" => export
                .heads
                .push(serde_json::from_value(value).map_err(|e| bad(e.to_string()))?),
            "record" => {
                let mut value = value;
                if let Value::Object(fields) = &mut value {
                    fields.remove("time");
                }
                export
                    .records
                    .push(serde_json::from_value(value).map_err(|e| bad(e.to_string()))?)
            }
            other => return Err(bad(format!("unknown type `{other}`"))),
        }
    }
    Ok(export)
}

/// Checks an export offline; with `pinned`, against keys the auditor holds.
pub fn verify(text: &str, pinned: Option<&str>) -> Result<Value, Failure> {
    let export = read(text)?;
    let ring = match pinned {
        Some(keys) => {
            let keys: Vec<PublicKey> = serde_json::from_str(keys).map_err(|e| {
                Failure::Usage(format!("the pinned keys are not a JSON list of keys: {e}"))
            })?;
            Some(KeyRing::new(keys))
        }
        None => None,
    };
    if export.keys.is_empty() && ring.is_none() {
        return Err(Failure::Tampered(
            "the export carries no public keys: nothing can be verified".to_owned(),
        ));
    }
    let now = jit_core::clock::Timestamp::from_unix_seconds(
        time::OffsetDateTime::now_utc().unix_timestamp(),
    );
    let summary = verify_export(&export, ring.as_ref(), now)
        .map_err(|broken| Failure::Tampered(format!("the export does not verify: {broken}")))?;
    Ok(json!({
        "verified": true,
        "grants": summary.grants,
        "records": summary.records,
        "checkpoints": summary.checkpoints,
        "periods_checked": summary.periods,
        "checkpointed_from": summary.checkpointed.map(|(from, _)| from),
        "checkpointed_until": summary.checkpointed.map(|(_, until)| until),
    }))
}
