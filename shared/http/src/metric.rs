//! The functions' CloudWatch metrics, written as Embedded Metric Format log lines (one JSON
//! object on standard output per data point, which Lambda's log group turns into a metric).

use serde_json::{Map, Value, json};

use jit_core::clock::Timestamp;

/// The namespace every metric of the broker is in; the template's alarms name it.
pub const NAMESPACE: &str = "JitAccess";

/// One count of `name` at `at` in Embedded Metric Format. `dimensions` name the properties the
/// metric is split by (each must be in `properties`); the other properties ride along in the
/// log line for whoever reads it.
pub fn count(
    name: &str,
    value: u32,
    at: Timestamp,
    dimensions: &[&str],
    properties: &[(&str, &str)],
) -> String {
    let mut line = Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": at.unix_seconds() * 1000,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions],
                "Metrics": [{"Name": name, "Unit": "Count"}],
            }],
        }),
    );
    for (key, text) in properties {
        line.insert((*key).into(), Value::from(*text));
    }
    line.insert(name.into(), Value::from(value));
    Value::Object(line).to_string()
}
