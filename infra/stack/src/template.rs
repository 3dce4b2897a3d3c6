//! What the stack reads from `template.yaml`: each function's binary, timeout, memory and
//! environment, its HTTP API routes, its stream and schedule sources, and the JWT authorizer.
//! One definition serves the deployment and the local stack.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_yaml::Value;

/// Why the template could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The file could not be read or parsed.
    #[error("cannot read `{path}`: {why}")]
    Read {
        /// The file.
        path: String,
        /// What failed.
        why: String,
    },
    /// Something the stack needs is missing or malformed.
    #[error("template: {0}")]
    Shape(String),
}

/// One HTTP API route: `POST /requests/{id}/cancel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The method, upper case.
    pub method: String,
    /// The path template, with `{name}` parameters.
    pub path: String,
    /// Served without the authorizer (`Auth: {Authorizer: NONE}`): the web page's files.
    pub public: bool,
}

impl Route {
    /// The route key as API Gateway writes it.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The path parameters when `path` matches this route.
    pub fn matches(&self, method: &str, path: &str) -> Option<BTreeMap<String, String>> {
        if !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        let want: Vec<&str> = self.path.trim_matches('/').split('/').collect();
        let got: Vec<&str> = path.trim_matches('/').split('/').collect();
        if want.len() != got.len() {
            return None;
        }
        let mut params = BTreeMap::new();
        for (w, g) in want.iter().zip(&got) {
            match w.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
                Some(name) if !g.is_empty() => {
                    params.insert(name.to_owned(), (*g).to_owned());
                }
                Some(_) => return None,
                None if w == g => {}
                None => return None,
            }
        }
        Some(params)
    }
}

/// A DynamoDB stream source.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSource {
    /// Records per invocation at most.
    pub batch_size: usize,
    /// Retries of a failing batch before its records are set aside.
    pub maximum_retry_attempts: u32,
    /// Whether a failing batch is split in two and each half retried.
    pub bisect_on_error: bool,
    /// Whether the function reports failed records (`batchItemFailures`).
    pub report_item_failures: bool,
    /// Event filter patterns (EventBridge pattern syntax); a record passes if any matches.
    pub filters: Vec<serde_json::Value>,
}

/// One function as the template declares it.
#[derive(Debug, Clone)]
pub struct FunctionDef {
    /// The template's logical id, e.g. `IntakeFunction`.
    pub logical_id: String,
    /// The binary `sam build` packages (`BuildProperties.Binary`).
    pub binary: String,
    /// The invocation timeout.
    pub timeout: Duration,
    /// Memory in MB.
    pub memory_mb: u32,
    /// Environment variables, references resolved.
    pub environment: BTreeMap<String, String>,
    /// HTTP API routes.
    pub routes: Vec<Route>,
    /// The table stream, if it feeds this function.
    pub stream: Option<StreamSource>,
    /// The schedule, if any.
    pub schedule: Option<Duration>,
}

/// The parts of the template the stack runs.
#[derive(Debug, Clone)]
pub struct Template {
    /// Every function.
    pub functions: Vec<FunctionDef>,
    /// The JWT authorizer's identity source header (`authorization`).
    pub identity_header: String,
}

/// The values `!Ref` resolves to locally.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    /// Logical id or parameter name → value (overrides parameter defaults).
    pub values: BTreeMap<String, String>,
}

/// `!Tag value` as the tag (`!Ref`) and its value.
fn tagged(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(t) => Some((t.tag.to_string(), &t.value)),
        _ => None,
    }
}

/// A value as CloudFormation resolves it, for what the template uses in environment
/// variables: `!Ref` of a parameter, `!Select [n, list]` and `!Join [sep, list]` over a
/// comma-delimited parameter, and plain scalars.
fn intrinsic(value: &Value, params: &BTreeMap<String, String>) -> String {
    let list = |v: &Value| -> Vec<String> {
        match v {
            Value::Sequence(items) => items.iter().map(|i| intrinsic(i, params)).collect(),
            other => intrinsic(other, params)
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    };
    match tagged(value) {
        Some((tag, inner)) if tag == "!Ref" => {
            let name = inner.as_str().unwrap_or_default();
            params.get(name).cloned().unwrap_or_else(|| name.to_owned())
        }
        Some((tag, Value::Sequence(args))) if tag == "!Select" => {
            let n = args.first().and_then(Value::as_u64).unwrap_or(0);
            let items = args.get(1).map(list).unwrap_or_default();
            usize::try_from(n)
                .ok()
                .and_then(|n| items.get(n).cloned())
                .unwrap_or_default()
        }
        Some((tag, Value::Sequence(args))) if tag == "!Join" => {
            let separator = args.first().and_then(Value::as_str).unwrap_or("");
            args.get(1).map(list).unwrap_or_default().join(separator)
        }
        _ => scalar(value).unwrap_or_default(),
    }
}

fn rate(expression: &str) -> Option<Duration> {
    let inner = expression.strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let secs = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n * secs))
}

impl Template {
    /// Reads `path`, resolving references through `bindings` and parameter defaults.
    pub fn load(path: &Path, bindings: &Bindings) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|e| TemplateError::Read {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
        let doc: Value = serde_yaml::from_str(&text).map_err(|e| TemplateError::Read {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
        Self::from_value(&doc, bindings)
    }

    fn from_value(doc: &Value, bindings: &Bindings) -> Result<Self, TemplateError> {
        let shape = |why: String| TemplateError::Shape(why);
        let mut params = BTreeMap::new();
        if let Some(map) = doc.get("Parameters").and_then(Value::as_mapping) {
            for (k, v) in map {
                if let (Some(k), Some(default)) = (k.as_str(), v.get("Default")) {
                    params.insert(k.to_owned(), scalar(default).unwrap_or_default());
                }
            }
        }
        params.extend(bindings.values.clone());
        let resolve = |value: &Value| -> String { intrinsic(value, &params) };
        let globals = doc
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .cloned()
            .unwrap_or(Value::Null);
        let global_timeout = globals.get("Timeout").and_then(Value::as_u64).unwrap_or(3);
        let global_memory = globals
            .get("MemorySize")
            .and_then(Value::as_u64)
            .unwrap_or(128);
        let mut global_env = BTreeMap::new();
        if let Some(vars) = globals
            .get("Environment")
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping)
        {
            for (k, v) in vars {
                if let Some(k) = k.as_str() {
                    global_env.insert(k.to_owned(), resolve(v));
                }
            }
        }
        let resources = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| shape("no Resources".into()))?;
        let mut functions = Vec::new();
        let mut identity_header = "authorization".to_owned();
        for (id, resource) in resources {
            let id = id.as_str().unwrap_or_default().to_owned();
            let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("");
            let props = resource.get("Properties").cloned().unwrap_or(Value::Null);
            if kind == "AWS::Serverless::HttpApi" {
                if let Some(source) = props
                    .get("Auth")
                    .and_then(|a| a.get("Authorizers"))
                    .and_then(Value::as_mapping)
                    .and_then(|m| m.values().next())
                    .and_then(|a| a.get("IdentitySource"))
                    .and_then(Value::as_str)
                {
                    identity_header = source
                        .strip_prefix("$request.header.")
                        .unwrap_or(source)
                        .to_ascii_lowercase();
                }
                continue;
            }
            if kind != "AWS::Serverless::Function" {
                continue;
            }
            let binary = resource
                .get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(Value::as_str)
                .ok_or_else(|| shape(format!("{id} has no Metadata.BuildProperties.Binary")))?
                .to_owned();
            let mut environment = global_env.clone();
            if let Some(vars) = props
                .get("Environment")
                .and_then(|e| e.get("Variables"))
                .and_then(Value::as_mapping)
            {
                for (k, v) in vars {
                    if let Some(k) = k.as_str() {
                        environment.insert(k.to_owned(), resolve(v));
                    }
                }
            }
            let mut routes = Vec::new();
            let mut stream = None;
            let mut schedule = None;
            if let Some(events) = props.get("Events").and_then(Value::as_mapping) {
                for (name, event) in events {
                    let name = name.as_str().unwrap_or_default();
                    let ep = event.get("Properties").cloned().unwrap_or(Value::Null);
                    match event.get("Type").and_then(Value::as_str) {
                        Some("HttpApi") => {
                            let method = ep.get("Method").and_then(Value::as_str);
                            let path = ep.get("Path").and_then(Value::as_str);
                            let (Some(method), Some(path)) = (method, path) else {
                                return Err(shape(format!("{id}.{name} needs Method and Path")));
                            };
                            let public = ep
                                .get("Auth")
                                .and_then(|a| a.get("Authorizer"))
                                .and_then(Value::as_str)
                                == Some("NONE");
                            routes.push(Route {
                                method: method.to_ascii_uppercase(),
                                path: path.to_owned(),
                                public,
                            });
                        }
                        Some("DynamoDB") => {
                            let filters = ep
                                .get("FilterCriteria")
                                .and_then(|f| f.get("Filters"))
                                .and_then(Value::as_sequence)
                                .map(|list| {
                                    list.iter()
                                        .filter_map(|f| f.get("Pattern").and_then(Value::as_str))
                                        .filter_map(|p| serde_json::from_str(p).ok())
                                        .collect()
                                })
                                .unwrap_or_default();
                            let types = ep
                                .get("FunctionResponseTypes")
                                .and_then(Value::as_sequence)
                                .cloned()
                                .unwrap_or_default();
                            stream = Some(StreamSource {
                                batch_size: ep
                                    .get("BatchSize")
                                    .and_then(Value::as_u64)
                                    .map_or(100, |n| usize::try_from(n).unwrap_or(100)),
                                maximum_retry_attempts: ep
                                    .get("MaximumRetryAttempts")
                                    .and_then(Value::as_u64)
                                    .map_or(10_000, |n| u32::try_from(n).unwrap_or(10_000)),
                                bisect_on_error: ep
                                    .get("BisectBatchOnFunctionError")
                                    .and_then(Value::as_bool)
                                    .unwrap_or(false),
                                report_item_failures: types
                                    .iter()
                                    .any(|t| t.as_str() == Some("ReportBatchItemFailures")),
                                filters,
                            });
                        }
                        Some("Schedule") => {
                            let expression = ep.get("Schedule").and_then(Value::as_str);
                            schedule = Some(expression.and_then(rate).ok_or_else(|| {
                                shape(format!("{id}.{name}: only rate(...) schedules are run"))
                            })?);
                        }
                        Some("ScheduleV2") => {
                            let expression = ep.get("ScheduleExpression").and_then(Value::as_str);
                            schedule = Some(expression.and_then(rate).ok_or_else(|| {
                                shape(format!("{id}.{name}: only rate(...) schedules are run"))
                            })?);
                        }
                        _ => {}
                    }
                }
            }
            functions.push(FunctionDef {
                logical_id: id.clone(),
                binary,
                timeout: Duration::from_secs(
                    props
                        .get("Timeout")
                        .and_then(Value::as_u64)
                        .unwrap_or(global_timeout),
                ),
                memory_mb: u32::try_from(
                    props
                        .get("MemorySize")
                        .and_then(Value::as_u64)
                        .unwrap_or(global_memory),
                )
                .unwrap_or(256),
                environment,
                routes,
                stream,
                schedule,
            });
        }
        if functions.is_empty() {
            return Err(shape("no AWS::Serverless::Function resources".into()));
        }
        Ok(Self {
            functions,
            identity_header,
        })
    }

    /// The function a route belongs to, and the route's parameters.
    pub fn route(
        &self,
        method: &str,
        path: &str,
    ) -> Option<(&FunctionDef, &Route, BTreeMap<String, String>)> {
        self.functions.iter().find_map(|f| {
            f.routes
                .iter()
                .find_map(|r| r.matches(method, path).map(|p| (f, r, p)))
        })
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_template_gives_four_functions_their_routes_stream_and_schedule() {
        let bindings = Bindings {
            values: BTreeMap::from([
                ("GrantsTable".to_owned(), "jit-grants".to_owned()),
                (
                    "JwtAudience".to_owned(),
                    "jit-access,other-client".to_owned(),
                ),
            ]),
        };
        let t = Template::load(
            &jit_local::workspace_root().join("template.yaml"),
            &bindings,
        )
        .unwrap();
        let binaries: Vec<&str> = t.functions.iter().map(|f| f.binary.as_str()).collect();
        assert_eq!(binaries, ["intake", "approver", "issuer", "sweeper"]);
        let (f, route, params) = t.route("POST", "/requests/abc/cancel").unwrap();
        assert_eq!(
            (
                f.binary.as_str(),
                route.key().as_str(),
                params["id"].as_str()
            ),
            ("intake", "POST /requests/{id}/cancel", "abc")
        );
        assert!(t.route("DELETE", "/requests").is_none());
        assert!(t.route("GET", "/requests/a/b/c").is_none());
        let approver = &t.functions[1];
        let stream = approver.stream.as_ref().unwrap();
        assert_eq!(
            (
                stream.batch_size,
                stream.maximum_retry_attempts,
                stream.bisect_on_error
            ),
            (25, 10, true)
        );
        assert!(stream.report_item_failures);
        assert_eq!(stream.filters.len(), 1);
        let sweeper = &t.functions[3];
        assert_eq!(sweeper.schedule, Some(Duration::from_secs(60)));
        assert_eq!(sweeper.timeout, Duration::from_secs(60));
        assert_eq!(t.functions[0].timeout, Duration::from_secs(10));
        assert_eq!(t.functions[0].environment["TABLE_NAME"], "jit-grants");
        assert_eq!(t.functions[0].environment["JIT_GROUPS_CLAIM"], "groups");
        assert_eq!(t.identity_header, "authorization");
        // The web page signs in where the authorizer's tokens come from, as the first
        // audience, and only its files skip the authorizer.
        let intake = &t.functions[0].environment;
        assert_eq!(intake["JIT_WEB_CLIENT_ID"], "jit-access");
        assert_eq!(intake["JIT_WEB_ORIGINS"], "");
        let public: Vec<String> = t
            .functions
            .iter()
            .flat_map(|f| &f.routes)
            .filter(|r| r.public)
            .map(Route::key)
            .collect();
        assert_eq!(public, ["GET /", "GET /web/{file}"]);
    }

    #[test]
    fn the_openapi_document_and_the_template_name_the_same_routes() {
        let root = jit_local::workspace_root();
        let t = Template::load(&root.join("template.yaml"), &Bindings::default()).unwrap();
        let mut in_template: Vec<String> = t
            .functions
            .iter()
            .flat_map(|f| f.routes.iter().map(Route::key))
            .collect();
        in_template.sort();
        let doc: Value =
            serde_yaml::from_str(&std::fs::read_to_string(root.join("openapi.yaml")).unwrap())
                .unwrap();
        assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
        let mut in_document = Vec::new();
        for (path, item) in doc["paths"].as_mapping().unwrap() {
            for (method, operation) in item.as_mapping().unwrap() {
                let method = method.as_str().unwrap();
                if !["get", "post", "put", "patch", "delete"].contains(&method) {
                    continue;
                }
                let key = format!("{} {}", method.to_uppercase(), path.as_str().unwrap());
                // Every route sits behind the authorizer, and says so, but the web page's
                // files, which the template serves without it and the document says need
                // no token.
                let public = t
                    .functions
                    .iter()
                    .flat_map(|f| &f.routes)
                    .any(|r| r.key() == key && r.public);
                if public {
                    assert!(
                        operation["security"]
                            .as_sequence()
                            .is_some_and(Vec::is_empty),
                        "{key} is public in the template but not in the document"
                    );
                } else {
                    assert!(
                        operation["responses"]["401"].is_mapping(),
                        "{key} documents no 401"
                    );
                }
                in_document.push(key);
            }
        }
        in_document.sort();
        assert_eq!(
            in_template, in_document,
            "template.yaml and openapi.yaml disagree"
        );
        assert!(doc["security"][0]["jwt"].is_sequence());
    }

    /// The `JIT_*` and `TABLE_NAME` names a source file spells out.
    fn names_in(text: &str) -> Vec<String> {
        let mut names = Vec::new();
        for (i, _) in text.match_indices('"') {
            let rest = &text[i + 1..];
            let end = rest.find('"').unwrap_or(0);
            let word = &rest[..end];
            if (word.starts_with("JIT_") || word == "TABLE_NAME")
                && word.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            {
                names.push(word.to_owned());
            }
        }
        names
    }

    #[test]
    fn every_variable_a_function_reads_is_set_in_the_template_and_in_the_readme() {
        let root = jit_local::workspace_root();
        let t = Template::load(&root.join("template.yaml"), &Bindings::default()).unwrap();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let mut read = Vec::new();
        for dir in [
            "shared/core/src",
            "shared/core/src/policy",
            "shared/http/src",
            "functions/intake/src",
            "functions/approver/src",
            "functions/issuer/src",
            "functions/sweeper/src",
        ] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "rs") {
                    read.extend(names_in(&std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        read.sort();
        read.dedup();
        assert!(read.len() >= 7, "found {read:?}");
        for name in &read {
            assert!(
                t.functions.iter().any(|f| f.environment.contains_key(name)),
                "`{name}` is read but no function sets it in template.yaml"
            );
            assert!(
                readme.contains(&format!("`{name}`")),
                "`{name}` is not in the README's configuration table"
            );
        }
    }
}
