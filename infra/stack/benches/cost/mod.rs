//! What a grant costs on AWS, computed from what the local stack counted while flows ran:
//! API requests, each function's invocations and their durations, every AWS call the
//! functions made (through the recording pass-through, with the items they wrote), and the
//! bytes they logged; priced with the list prices below.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use jit_stack::Stack;
use serde_json::Value;

/// List prices, us-east-1, on-demand, read from the services' pricing pages on the date given.
/// Free tiers are left out: they matter for a trial, not for a deployment's bill.
pub struct Prices {
    pub date: &'static str,
    /// HTTP API, per request (first 300 million a month).
    pub api_request: f64,
    /// Lambda, per request.
    pub lambda_request: f64,
    /// Lambda on arm64, per GB-second (first 7.5 billion a month); init is billed too.
    pub lambda_gb_second: f64,
    /// The template's `MemorySize`, in GB.
    pub lambda_memory_gb: f64,
    /// DynamoDB on-demand, per write request unit (1 KB; twice in a transaction).
    pub write_unit: f64,
    /// DynamoDB on-demand, per read request unit (4 KB strongly consistent, 8 KB eventually).
    pub read_unit: f64,
    /// DynamoDB storage, per GB-month, and point-in-time recovery on top of it.
    pub storage_gb_month: f64,
    pub pitr_gb_month: f64,
    /// KMS, per request with an asymmetric key other than RSA 2048 (ECC `Sign`, `GetPublicKey`).
    pub kms_asymmetric_request: f64,
    /// KMS, per key-month.
    pub kms_key_month: f64,
    /// X-Ray, per trace recorded.
    pub xray_trace: f64,
    /// CloudWatch Logs, per GB ingested (standard class), and per GB-month stored.
    pub logs_ingested_gb: f64,
    pub logs_stored_gb_month: f64,
    /// CloudWatch, per custom metric-month (first 10,000) and per standard alarm-month.
    pub metric_month: f64,
    pub alarm_month: f64,
}

pub const PRICES: Prices = Prices {
    date: "2026-12-05",
    api_request: 1.00 / 1e6,
    lambda_request: 0.20 / 1e6,
    lambda_gb_second: 0.000_013_333_4,
    lambda_memory_gb: 0.25,
    write_unit: 0.625 / 1e6,
    read_unit: 0.125 / 1e6,
    storage_gb_month: 0.25,
    pitr_gb_month: 0.20,
    kms_asymmetric_request: 0.15 / 1e4,
    kms_key_month: 1.00,
    xray_trace: 5.00 / 1e6,
    logs_ingested_gb: 0.50,
    logs_stored_gb_month: 0.03,
    metric_month: 0.30,
    alarm_month: 0.10,
};

/// What Lambda itself writes per invocation (`START`, `END`, `REPORT` with its X-Ray line).
const PLATFORM_LOG_BYTES: f64 = 420.0;
const GB: f64 = 1024.0 * 1024.0 * 1024.0;

/// What one stretch of work used.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub api_requests: f64,
    /// Per function: invocations and their summed duration in ms (each rounded up to 1 ms).
    pub invocations: BTreeMap<String, (f64, f64)>,
    pub write_units: f64,
    /// Of which each function wrote.
    pub writes_by: BTreeMap<String, f64>,
    /// Of which written to indexes (each index with the item in it, as a standard write).
    pub index_write_units: f64,
    pub read_units: f64,
    pub kms_signs: f64,
    /// Bytes the functions logged, and the items' bytes the table keeps.
    pub log_bytes: f64,
    pub stored_bytes: f64,
    /// Every AWS call, by `service:operation`.
    pub calls: BTreeMap<String, f64>,
}

impl Usage {
    pub fn scaled(&self, by: f64) -> Self {
        let mut u = self.clone();
        u.api_requests *= by;
        for (n, ms) in u.invocations.values_mut() {
            *n *= by;
            *ms *= by;
        }
        u.write_units *= by;
        for n in u.writes_by.values_mut() {
            *n *= by;
        }
        u.index_write_units *= by;
        u.read_units *= by;
        u.kms_signs *= by;
        u.log_bytes *= by;
        u.stored_bytes *= by;
        for n in u.calls.values_mut() {
            *n *= by;
        }
        u
    }

    pub fn plus(&self, other: &Self) -> Self {
        let mut u = self.clone();
        u.api_requests += other.api_requests;
        for (f, (n, ms)) in &other.invocations {
            let e = u.invocations.entry(f.clone()).or_default();
            e.0 += n;
            e.1 += ms;
        }
        u.write_units += other.write_units;
        for (k, n) in &other.writes_by {
            *u.writes_by.entry(k.clone()).or_default() += n;
        }
        u.index_write_units += other.index_write_units;
        u.read_units += other.read_units;
        u.kms_signs += other.kms_signs;
        u.log_bytes += other.log_bytes;
        u.stored_bytes += other.stored_bytes;
        for (k, n) in &other.calls {
            *u.calls.entry(k.clone()).or_default() += n;
        }
        u
    }

    fn invocation_count(&self) -> f64 {
        self.invocations.values().map(|(n, _)| n).sum()
    }

    /// Each line of the bill, in dollars, for this usage (one month's storage of what it
    /// wrote).
    pub fn bill(&self, p: &Prices) -> Vec<(&'static str, f64)> {
        let ms: f64 = self.invocations.values().map(|(_, ms)| ms).sum();
        let invocations = self.invocation_count();
        vec![
            (
                "KMS Sign (one per audit record)",
                self.kms_signs * p.kms_asymmetric_request,
            ),
            (
                "API Gateway HTTP API requests",
                self.api_requests * p.api_request,
            ),
            ("Lambda requests", invocations * p.lambda_request),
            (
                "Lambda duration (arm64, 256 MB)",
                ms / 1000.0 * p.lambda_memory_gb * p.lambda_gb_second,
            ),
            (
                "DynamoDB writes (transactions ×2, indexes)",
                self.write_units * p.write_unit,
            ),
            ("DynamoDB reads", self.read_units * p.read_unit),
            (
                "X-Ray traces (every invocation sampled)",
                invocations * p.xray_trace,
            ),
            (
                "CloudWatch Logs ingestion",
                (self.log_bytes + invocations * PLATFORM_LOG_BYTES) / GB * p.logs_ingested_gb,
            ),
            (
                "CloudWatch Logs storage, first month",
                (self.log_bytes + invocations * PLATFORM_LOG_BYTES) / GB * p.logs_stored_gb_month,
            ),
            (
                "DynamoDB storage + PITR, first month",
                self.stored_bytes / GB * (p.storage_gb_month + p.pitr_gb_month),
            ),
        ]
    }
}

/// The DynamoDB size of an attribute value in its wire form (`{"S": ...}`): names and values,
/// as the developer guide counts them (numbers about one byte per two digits, plus one).
fn value_bytes(v: &Value) -> f64 {
    let Some((kind, inner)) = v.as_object().and_then(|o| o.iter().next()) else {
        return 0.0;
    };
    match (kind.as_str(), inner) {
        ("S", Value::String(s)) => s.len() as f64,
        ("N", Value::String(s)) => (s.len() as f64 / 2.0).ceil() + 1.0,
        ("B", Value::String(s)) => s.len() as f64 * 3.0 / 4.0,
        ("BOOL" | "NULL", _) => 1.0,
        ("M", Value::Object(m)) => {
            3.0 + m
                .iter()
                .map(|(k, v)| 1.0 + k.len() as f64 + value_bytes(v))
                .sum::<f64>()
        }
        ("L", Value::Array(l)) => 3.0 + l.iter().map(|v| 1.0 + value_bytes(v)).sum::<f64>(),
        (_, Value::Array(set)) => set
            .iter()
            .map(|s| s.as_str().map_or(0, str::len) as f64)
            .sum(),
        _ => 0.0,
    }
}

fn item_bytes(item: &serde_json::Map<String, Value>) -> f64 {
    item.iter()
        .map(|(k, v)| k.len() as f64 + value_bytes(v))
        .sum()
}

/// The table's indexes, by the attribute whose presence puts an item in them (all project
/// every attribute).
const INDEX_KEYS: [&str; 4] = ["requester_key", "pending_target", "due_shard", "audit_day"];

fn key_of(item: &serde_json::Map<String, Value>) -> String {
    format!(
        "{}|{}",
        item.get("pk").unwrap_or(&Value::Null),
        item.get("sk").unwrap_or(&Value::Null)
    )
}

/// Where a stretch of work starts: what had been counted before it.
pub struct Meter {
    calls: Vec<usize>,
    logs: BTreeMap<String, u64>,
}

const FUNCTIONS: [&str; 4] = ["intake", "approver", "issuer", "sweeper"];

fn log_sizes(dir: &std::path::Path) -> BTreeMap<String, u64> {
    FUNCTIONS
        .iter()
        .map(|f| {
            let size = std::fs::metadata(dir.join(format!("{f}.log"))).map_or(0, |m| m.len());
            ((*f).to_owned(), size)
        })
        .collect()
}

impl Meter {
    /// Starts counting; the stack's timings so far are dropped.
    pub fn start(stack: &Stack, logs: &std::path::Path) -> Self {
        stack.timings.take();
        Self {
            calls: FUNCTIONS
                .iter()
                .map(|f| stack.aws_calls.of(f).len())
                .collect(),
            logs: log_sizes(logs),
        }
    }

    /// What was used since the start, divided over `flows`; `extra` are invocations the
    /// gateway and the stream did not time (a scheduled sweep), by function.
    pub async fn finish(
        self,
        stack: &Stack,
        logs: &std::path::Path,
        flows: usize,
        extra: &[(&str, Duration)],
    ) -> Usage {
        // The last lines reach the files a moment after the answers.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut u = Usage::default();
        for (what, took) in stack.timings.take() {
            let function = match what.as_str() {
                "stream batch" => "approver".to_owned(),
                other => match other.strip_prefix("function:") {
                    Some(f) => {
                        u.api_requests += took.len() as f64;
                        f.to_owned()
                    }
                    None => continue,
                },
            };
            let e = u.invocations.entry(function).or_default();
            e.0 += took.len() as f64;
            e.1 += took
                .iter()
                .map(|d| (d.as_secs_f64() * 1000.0).ceil())
                .sum::<f64>();
        }
        for (f, took) in extra {
            let e = u.invocations.entry((*f).to_owned()).or_default();
            e.0 += 1.0;
            e.1 += (took.as_secs_f64() * 1000.0).ceil();
        }
        let after = log_sizes(logs);
        u.log_bytes = after
            .iter()
            .map(|(f, n)| n.saturating_sub(self.logs.get(f).copied().unwrap_or(0)) as f64)
            .sum();
        // Items as last written, across every function's calls so far, to size updates,
        // deletes and reads, and to see which indexes an item leaves or joins.
        let mut known: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
        for (i, f) in FUNCTIONS.iter().enumerate() {
            for (n, call) in stack.aws_calls.of(f).into_iter().enumerate() {
                let counted = n >= self.calls[i];
                if counted {
                    *u.calls
                        .entry(format!("{}:{}", call.service, call.operation))
                        .or_default() += 1.0;
                    if call.operation == "Sign" {
                        u.kms_signs += 1.0;
                    }
                }
                if call.service == "dynamodb" {
                    let before = u.write_units;
                    dynamodb(
                        &call.operation,
                        &call.request,
                        &mut known,
                        counted.then_some(&mut u),
                    );
                    let wrote = u.write_units - before;
                    if wrote > 0.0 {
                        *u.writes_by.entry((*f).to_owned()).or_default() += wrote;
                    }
                }
            }
        }
        u.scaled(1.0 / flows as f64)
    }
}

/// Counts one DynamoDB call's capacity into `u` (when counted), and remembers what it wrote.
fn dynamodb(
    operation: &str,
    request: &Value,
    known: &mut BTreeMap<String, serde_json::Map<String, Value>>,
    mut u: Option<&mut Usage>,
) {
    let kb = |bytes: f64| (bytes / 1024.0).ceil().max(1.0);
    let consistent = request["ConsistentRead"].as_bool().unwrap_or(false);
    let read = |bytes: f64| {
        let units = (bytes / 4096.0).ceil().max(1.0);
        if consistent { units } else { units / 2.0 }
    };
    match operation {
        "TransactWriteItems" | "PutItem" | "UpdateItem" | "DeleteItem" => {
            let factor = if operation == "TransactWriteItems" {
                2.0
            } else {
                1.0
            };
            let actions: Vec<(String, Value)> = if operation == "TransactWriteItems" {
                request["TransactItems"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| {
                        a.as_object()?
                            .iter()
                            .next()
                            .map(|(k, v)| (k.clone(), v.clone()))
                    })
                    .collect()
            } else {
                let kind = operation.trim_end_matches("Item").to_owned();
                vec![(kind, request.clone())]
            };
            for (kind, action) in actions {
                let (key, old, new) = match kind.as_str() {
                    "Put" => {
                        let item = action["Item"].as_object().cloned().unwrap_or_default();
                        let key = key_of(&item);
                        (key.clone(), known.get(&key).cloned(), Some(item))
                    }
                    _ => {
                        let k = action["Key"].as_object().cloned().unwrap_or_default();
                        let key = key_of(&k);
                        let old = known.get(&key).cloned();
                        // An update's result is not in the request: sized as it was.
                        let new = (kind == "Update").then(|| old.clone().unwrap_or(k));
                        (key, old, new)
                    }
                };
                let size = old
                    .as_ref()
                    .map_or(0.0, item_bytes)
                    .max(new.as_ref().map_or(0.0, item_bytes));
                if let Some(u) = u.as_deref_mut() {
                    u.write_units += factor * kb(size);
                    if kind == "Put" && old.is_none() {
                        u.stored_bytes += size;
                    }
                    if kind != "ConditionCheck" {
                        for index in INDEX_KEYS {
                            let was = old.as_ref().and_then(|o| o.get(index));
                            let is = new.as_ref().and_then(|o| o.get(index));
                            let writes = match (was, is) {
                                (Some(a), Some(b)) if a != b => 2.0,
                                (None, None) => 0.0,
                                _ => 1.0,
                            };
                            u.write_units += writes * kb(size);
                            u.index_write_units += writes * kb(size);
                        }
                    }
                }
                match (kind.as_str(), new) {
                    ("Delete", _) => {
                        known.remove(&key);
                    }
                    ("Put", Some(item)) => {
                        known.insert(key, item);
                    }
                    _ => {}
                }
            }
        }
        "GetItem" => {
            if let Some(u) = u {
                let k = request["Key"].as_object().cloned().unwrap_or_default();
                let size = known.get(&key_of(&k)).map_or(0.0, item_bytes);
                u.read_units += read(size);
            }
        }
        "Query" => {
            if let Some(u) = u {
                // A query of a partition of the table reads what was written there; an index
                // query is counted at its minimum (the items it finds are not in the request).
                let pk = request["ExpressionAttributeValues"]
                    .as_object()
                    .and_then(|v| v.values().find_map(|v| v["S"].as_str().map(str::to_owned)));
                let size: f64 = match (&request["IndexName"], pk) {
                    (Value::Null, Some(pk)) => known
                        .values()
                        .filter(|i| i.get("pk").and_then(|v| v["S"].as_str()) == Some(pk.as_str()))
                        .map(item_bytes)
                        .sum(),
                    _ => 0.0,
                };
                u.read_units += read(size);
            }
        }
        _ => {}
    }
}

/// An expiry, which a sweep does for each grant in a batch: one signed record and one
/// transaction of the grant with it, the shape and size of the approver's decision in `auto`
/// (the local stack cannot let a grant of at least five minutes run out inside a benchmark).
pub fn expiry(auto: &Usage) -> Usage {
    let writes = auto.writes_by.get("approver").copied().unwrap_or(0.0);
    Usage {
        write_units: writes,
        writes_by: BTreeMap::from([("sweeper".to_owned(), writes)]),
        kms_signs: 1.0,
        calls: BTreeMap::from([
            ("kms:Sign".to_owned(), 1.0),
            ("dynamodb:TransactWriteItems".to_owned(), 1.0),
        ]),
        ..Usage::default()
    }
}

/// The cost model's report: per 1,000 grants of each flow, the fixed monthly cost of an idle
/// deployment, and what dominates.
pub fn report(auto: &Usage, two: &Usage, poll: &Usage, sweep: &Usage) -> String {
    let p = &PRICES;
    let mut out = String::new();
    let total = |u: &Usage| u.bill(p).iter().map(|(_, d)| d).sum::<f64>();
    let _ = writeln!(
        out,
        "Cost model: list prices of {} (us-east-1, on demand, no free tier), applied to what this run counted per flow.",
        p.date
    );
    let _ = writeln!(
        out,
        "Per 1,000 auto-approved grants (request, approval, one credentials call, expiry; the CLI's --wait sees it at its first look):"
    );
    let ends = expiry(auto);
    let auto_one = auto.plus(poll).plus(&ends);
    let auto_k = auto_one.scaled(1000.0);
    let print = |out: &mut String, u: &Usage| {
        let t = total(u);
        let mut lines = u.bill(p);
        lines.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (line, d) in lines {
            let _ = writeln!(out, "  {line:<44} ${d:>9.4}  {:>5.1}%", 100.0 * d / t);
        }
        let _ = writeln!(out, "  {:<44} ${t:>9.4}", "total");
    };
    print(&mut out, &auto_k);
    // The floor: one KMS signature per audit record, the records counted as their signatures.
    let floor = |u: &Usage| u.kms_signs * p.kms_asymmetric_request;
    let _ = writeln!(
        out,
        "  floor (one KMS signature per audit record, {:.0} records a grant): ${:.4}; variable cost {:.2}× the floor",
        auto_one.kms_signs,
        floor(&auto_k),
        total(&auto_k) / floor(&auto_k)
    );
    let _ = writeln!(
        out,
        "  calls per grant: {}",
        auto_one
            .calls
            .iter()
            .map(|(k, n)| format!("{k} {n:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        out,
        "  DynamoDB write units per grant: {:.1}, of which indexes {:.1}; log bytes per grant {:.0} (+ {PLATFORM_LOG_BYTES} a Lambda invocation)",
        auto_one.write_units, auto_one.index_write_units, auto_one.log_bytes
    );
    let _ = writeln!(
        out,
        "Per 1,000 two-approver grants, by how long approval takes (the CLI's --wait backs off from 0.5 s to one look every 15 s):"
    );
    let _ = writeln!(
        out,
        "  {:<16} {:>6} {:>10} {:>12}",
        "approval takes", "looks", "total", "× floor"
    );
    for minutes in [1.0, 10.0, 60.0, 240.0] {
        let looks = looks_within(Duration::from_secs_f64(minutes * 60.0));
        let u = two
            .plus(&poll.scaled(f64::from(looks)))
            .plus(&ends)
            .scaled(1000.0);
        let _ = writeln!(
            out,
            "  {:<16} {looks:>6} ${:>9.4} {:>11.2}×",
            format!("{minutes} min"),
            total(&u),
            total(&u) / floor(&u)
        );
    }
    let month = 30.0 * 24.0 * 60.0;
    let sweeps = sweep.scaled(month);
    let _ = writeln!(
        out,
        "Fixed monthly cost of an idle deployment (a sweep a minute, {month:.0} a month):"
    );
    let fixed = [
        ("KMS keys (4)", 4.0 * p.kms_key_month),
        ("CloudWatch alarms (3 standard)", 3.0 * p.alarm_month),
        ("custom metric RolesPending (every sweep)", p.metric_month),
        (
            "sweeps: Lambda, DynamoDB reads, X-Ray, logs",
            total(&sweeps),
        ),
    ];
    let sum: f64 = fixed.iter().map(|(_, d)| d).sum();
    for (line, d) in fixed {
        let _ = writeln!(out, "  {line:<44} ${d:>9.2}");
    }
    let _ = writeln!(out, "  {:<44} ${sum:>9.2}", "total");
    out
}

/// How many looks `--wait` makes before a decision that takes `t`.
pub fn looks_within(t: Duration) -> u32 {
    let mut waited = Duration::ZERO;
    let mut looks = 0;
    while waited < t {
        waited += jit_api::poll_interval(looks);
        looks += 1;
    }
    looks + 1
}

/// Where a real deployment saturates first: each limit, what one auto-approved grant takes of
/// it (as counted in `auto`), and the grants a day it allows.
pub fn scale(auto: &Usage, poll: &Usage) -> String {
    let ends = expiry(auto);
    let grant = auto.plus(poll).plus(&ends);
    let per_day = 86_400.0;
    let call = |k: &str| grant.calls.get(k).copied().unwrap_or(0.0);
    // A record is well under 1 KB (one unit); a grant's item, rewritten at each of its
    // transactions while it is open, is under 2 KB.
    let record_wru = 1.0;
    let grant_writes = call("dynamodb:TransactWriteItems") * 2.0;
    let rows: Vec<(String, f64, String)> = vec![
        (
            "route throttle, POST /requests: 20 a second (burst 50)".into(),
            20.0 * per_day,
            "raise DefaultRouteSettings (a stage setting; the account's 10,000 a second is the ceiling)".into(),
        ),
        (
            format!(
                "route throttle, GET /requests/{{id}}: 20 a second; a person waiting with --wait looks every 15 s, so {} people can wait at once",
                20 * 15
            ),
            f64::NAN,
            "the first limit a large team meets: raise the route's throttle, or wait on the server (long poll) instead of looking".into(),
        ),
        (
            format!("KMS, ECC Sign: 300 a second (shared by the account's ECC keys); {:.0} a grant", call("kms:Sign")),
            300.0 / call("kms:Sign").max(1.0) * per_day,
            "ask for a higher quota (Service Quotas); or sign a batch of records at once (one signature over their hashes)".into(),
        ),
        (
            format!("DynamoDB, one partition's 1,000 write units a second: the audit_by_day index keeps a day's records in one partition (about {record_wru:.0} unit a record, {:.0} records a grant)", call("kms:Sign")),
            1000.0 / (record_wru * call("kms:Sign").max(1.0)) * per_day,
            "shard the day key (audit_day#0..n) as the due index is".into(),
        ),
        (
            format!("DynamoDB, the due index: 8 shards, each a partition of 1,000 write units a second; a grant's item is written {:.0} times while open, 2 units each", call("dynamodb:TransactWriteItems")),
            8.0 * 1000.0 / grant_writes.max(1.0) * per_day,
            "more shards (DUE_SHARDS): sweeps query them side by side".into(),
        ),
        (
            format!("STS AssumeRole: about 600 a second per account and region; {:.0} a grant", call("sts:AssumeRole")),
            600.0 / call("sts:AssumeRole").max(1.0) * per_day,
            "ask for more; each credentials call is one".into(),
        ),
        (
            format!("Lambda: 1,000 concurrent executions per account by default; {} invocations a grant of about {:.0} ms each", grant.invocation_count(), grant.invocations.values().map(|(_, ms)| ms).sum::<f64>() / grant.invocation_count().max(1.0)),
            1000.0 / (grant.invocations.values().map(|(_, ms)| ms).sum::<f64>() / 1000.0).max(0.001) * per_day,
            "a quota increase; reserved concurrency keeps the sweeper and the approver from being starved".into(),
        ),
    ];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Where a deployment saturates, on paper from the counts above (published default quotas):"
    );
    for (limit, grants, change) in rows {
        let allows = if grants.is_nan() {
            "see the limit".to_owned()
        } else {
            format!("{:.1} million grants a day", grants / 1e6)
        };
        let _ = writeln!(out, "  - {limit}: {allows}; outgrown: {change}.");
    }
    out
}
