//! The table's stream, delivered as Lambda's event source mapping delivers it: records read
//! with the DynamoDB Streams API, filtered by the template's patterns, in batches of its batch
//! size, with `batchItemFailures` (retry from the first failed record), bisection of a batch
//! whose invocation failed, bounded retries, and a dead-letter file for what still fails.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use serde_json::{Value, json};

use crate::runtime::FunctionRuntime;
use crate::template::StreamSource;
use crate::timings::Timings;

/// The poller's settings and collaborators.
pub struct StreamPoller {
    pub(crate) client: Client,
    pub(crate) stream_arn: String,
    pub(crate) source: StreamSource,
    pub(crate) function: FunctionRuntime,
    pub(crate) dead_letters: PathBuf,
    pub(crate) poll_every: Duration,
    pub(crate) timings: Timings,
}

/// Whether `event` matches an EventBridge-style `pattern`: every key of the pattern must be in
/// the event; an array lists the values accepted (exact, `{"prefix": ...}` or
/// `{"wildcard": ...}` with `*` for any run of characters), an object matches recursively.
pub fn matches(pattern: &Value, event: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields.iter().all(|(k, want)| {
            let got = event.get(k);
            match want {
                Value::Object(_) => got.is_some_and(|g| matches(want, g)),
                Value::Array(accepted) => accepted.iter().any(|a| match (a, got) {
                    (Value::Object(rule), Some(Value::String(g))) => {
                        rule.get("prefix")
                            .and_then(Value::as_str)
                            .is_some_and(|p| g.starts_with(p))
                            || rule
                                .get("wildcard")
                                .and_then(Value::as_str)
                                .is_some_and(|w| wildcard(w, g))
                    }
                    (Value::Object(rule), None) => rule.get("exists") == Some(&json!(false)),
                    (scalar, Some(g)) => scalar == g,
                    _ => false,
                }),
                scalar => got == Some(scalar),
            }
        }),
        _ => false,
    }
}

/// Whether `text` matches `pattern`, where each `*` stands for any run of characters.
fn wildcard(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = rest.get(at + part.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn item_json(
    item: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>,
) -> Option<Value> {
    let item: serde_dynamo::Item = item?.clone().into();
    serde_json::to_value(item).ok()
}

/// A stream record as Lambda delivers it to the function.
fn lambda_record(record: &aws_sdk_dynamodbstreams::types::Record, stream_arn: &str) -> Value {
    let mut change = serde_json::Map::new();
    if let Some(d) = &record.dynamodb {
        if let Some(at) = d.approximate_creation_date_time {
            change.insert("ApproximateCreationDateTime".into(), json!(at.secs()));
        }
        for (name, image) in [
            ("Keys", item_json(d.keys.as_ref())),
            ("NewImage", item_json(d.new_image.as_ref())),
            ("OldImage", item_json(d.old_image.as_ref())),
        ] {
            if let Some(image) = image {
                change.insert(name.into(), image);
            }
        }
        if let Some(seq) = &d.sequence_number {
            change.insert("SequenceNumber".into(), json!(seq));
        }
        if let Some(size) = d.size_bytes {
            change.insert("SizeBytes".into(), json!(size));
        }
        if let Some(kind) = &d.stream_view_type {
            change.insert("StreamViewType".into(), json!(kind.as_str()));
        }
    }
    json!({
        "eventID": record.event_id,
        "eventName": record.event_name.as_ref().map(|n| n.as_str()),
        "eventVersion": record.event_version.as_deref().unwrap_or("1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.aws_region.as_deref().unwrap_or("us-east-1"),
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    })
}

impl StreamPoller {
    /// Polls until the task is dropped.
    pub async fn run(self) {
        let mut iterators: HashMap<String, Option<String>> = HashMap::new();
        loop {
            self.discover_shards(&mut iterators).await;
            let mut got_any = false;
            for iterator in iterators.values_mut() {
                got_any |= self.read_shard(iterator).await;
            }
            if !got_any {
                tokio::time::sleep(self.poll_every).await;
            }
        }
    }

    /// Starts reading any shard not seen before from its oldest record.
    async fn discover_shards(&self, iterators: &mut HashMap<String, Option<String>>) {
        let described = self
            .client
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await;
        let shards = match described {
            Ok(out) => out
                .stream_description
                .and_then(|d| d.shards)
                .unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(e), "describing the stream failed");
                return;
            }
        };
        for shard in shards {
            let Some(id) = shard.shard_id else { continue };
            if !iterators.contains_key(&id) {
                let it = self
                    .client
                    .get_shard_iterator()
                    .stream_arn(&self.stream_arn)
                    .shard_id(&id)
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await
                    .ok()
                    .and_then(|o| o.shard_iterator);
                iterators.insert(id.clone(), it);
            }
        }
    }

    /// Reads one shard from `iterator` (moving it on) and delivers what passes the filters, in
    /// batches. Whether anything was read.
    async fn read_shard(&self, iterator: &mut Option<String>) -> bool {
        let Some(current) = iterator.clone() else {
            return false;
        };
        let out = match self
            .client
            .get_records()
            .shard_iterator(&current)
            .limit(1000)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                tracing::warn!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(e), "reading the stream failed");
                return false;
            }
        };
        *iterator = out.next_shard_iterator.clone();
        let records: Vec<Value> = out
            .records
            .unwrap_or_default()
            .iter()
            .map(|r| {
                if let Some(at) = r
                    .dynamodb
                    .as_ref()
                    .and_then(|d| d.approximate_creation_date_time)
                {
                    let written = std::time::UNIX_EPOCH + Duration::from_secs_f64(at.as_secs_f64());
                    if let Ok(delay) = std::time::SystemTime::now().duration_since(written) {
                        self.timings.record("stream delay", delay);
                    }
                }
                lambda_record(r, &self.stream_arn)
            })
            .filter(|r| {
                self.source.filters.is_empty() || self.source.filters.iter().any(|p| matches(p, r))
            })
            .collect();
        for batch in records.chunks(self.source.batch_size.max(1)) {
            self.deliver(batch.to_vec()).await;
        }
        !records.is_empty()
    }

    /// Delivers one batch until it succeeds or its retries run out.
    fn deliver(
        &self,
        batch: Vec<Value>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let mut pending = batch;
            let mut retries = 0_u32;
            let mut backoff = Duration::from_millis(100);
            loop {
                let started = Instant::now();
                let outcome = self.function.invoke(json!({ "Records": pending })).await;
                self.timings.record("stream batch", started.elapsed());
                let why = match outcome {
                    Ok(response) => {
                        let failed: Vec<&str> = if self.source.report_item_failures {
                            response
                                .get("batchItemFailures")
                                .and_then(Value::as_array)
                                .map(|l| {
                                    l.iter()
                                        .filter_map(|f| {
                                            f.get("itemIdentifier").and_then(Value::as_str)
                                        })
                                        .collect()
                                })
                                .unwrap_or_default()
                        } else {
                            Vec::new()
                        };
                        // Lambda checkpoints before the first failed record and retries from it.
                        let first = pending.iter().position(|r| {
                            r.pointer("/dynamodb/SequenceNumber")
                                .and_then(Value::as_str)
                                .is_some_and(|s| failed.contains(&s))
                        });
                        match first {
                            None if failed.is_empty() => return,
                            None => "batchItemFailures named records not in the batch".to_owned(),
                            Some(i) => {
                                pending = pending.split_off(i);
                                format!("{} record(s) reported as failed", failed.len())
                            }
                        }
                    }
                    Err(e) => {
                        if self.source.bisect_on_error && pending.len() > 1 {
                            let second = pending.split_off(pending.len() / 2);
                            self.deliver(pending).await;
                            self.deliver(second).await;
                            return;
                        }
                        e.to_string()
                    }
                };
                retries += 1;
                if retries > self.source.maximum_retry_attempts {
                    self.set_aside(&pending, &why).await;
                    return;
                }
                tracing::info!(records = pending.len(), retry = retries, why = %why, "stream batch retried");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        })
    }

    /// The on-failure destination's stand-in: one JSON line per batch set aside.
    async fn set_aside(&self, records: &[Value], why: &str) {
        tracing::warn!(
            records = records.len(),
            why,
            "stream records set aside after their retries"
        );
        let line = json!({"reason": why, "records": records}).to_string() + "\n";
        if let Some(dir) = self.dead_letters.parent() {
            let _ = tokio::fs::create_dir_all(dir).await;
        }
        if let Ok(mut file) = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.dead_letters)
            .await
        {
            let _ = tokio::io::AsyncWriteExt::write_all(&mut file, line.as_bytes()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_filter_passes_request_inserts_only() {
        let pattern: Value = serde_json::from_str(
            r#"{"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": ["GRANT"]}}}}"#,
        )
        .unwrap();
        let record = |name: &str, sk: &str| json!({"eventName": name, "dynamodb": {"Keys": {"pk": {"S": "GRANT#1"}, "sk": {"S": sk}}}});
        assert!(matches(&pattern, &record("INSERT", "GRANT")));
        assert!(!matches(&pattern, &record("MODIFY", "GRANT")));
        assert!(!matches(&pattern, &record("INSERT", "AUDIT#0000000001")));
        assert!(!matches(&pattern, &json!({"eventName": "INSERT"})));
        assert!(matches(
            &json!({"a": [{"prefix": "GR"}]}),
            &json!({"a": "GRANT"})
        ));
    }

    #[test]
    fn wildcards_match_the_activity_rules_role_paths_only() {
        let pattern = json!({"arn": [{"wildcard": "arn:aws:iam::*:role/jit/*"}]});
        let arn = |a: &str| json!({ "arn": a });
        for (text, want) in [
            ("arn:aws:iam::222222222222:role/jit/prod-logs-ro", true),
            ("arn:aws:iam::222222222222:role/jit/team/db-admin", true),
            ("arn:aws:iam::222222222222:role/jit-revoker", false),
            ("arn:aws:iam::222222222222:role/other/jit/x", false),
            ("arn:aws:iam::222222222222:role/jit/", true),
            ("arn:aws:sts::222222222222:assumed-role/jit/x", false),
        ] {
            assert_eq!(matches(&pattern, &arn(text)), want, "{text}");
        }
        assert!(wildcard("a*b*c", "a-b-b-c"));
        assert!(!wildcard("a*bc", "abcx"));
        assert!(wildcard("exact", "exact"));
        assert!(!wildcard("exact", "exactly"));
    }
}
