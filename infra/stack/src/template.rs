//! What the stack reads from `template.yaml`: each function's binary, timeout, memory and
//! environment, its HTTP API routes, its stream and schedule sources, and the JWT authorizer.
//! One definition serves the deployment and the local stack.
// Indexing a template node by key or position returns `Node::Null` when absent: it never
// panics (the lint cannot tell it from slice indexing).
#![allow(clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use jit_local::cfn::{self, Node};
use serde_json::json;

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
    /// The event pattern of the EventBridge rule on the broker's own bus that feeds it (the
    /// activity function's CloudTrail events), if any.
    pub bus_rule: Option<serde_json::Value>,
}

/// The parts of the template the stack runs.
#[derive(Debug, Clone)]
pub struct Template {
    /// Every function.
    pub functions: Vec<FunctionDef>,
    /// The JWT authorizer's identity source header (`authorization`).
    pub identity_header: String,
    /// The HTTP API's `DefaultRouteSettings` throttle, applied to each route on its own.
    pub throttle: Option<Throttle>,
    /// `RouteSettings`: the throttles of routes that have their own, by route key.
    pub route_throttles: BTreeMap<String, Throttle>,
}

/// A route's throttle as API Gateway applies it: a token bucket holding `burst` requests,
/// refilled at `rate` a second; a request that finds it empty is answered 429.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    /// `ThrottlingBurstLimit`.
    pub burst: u32,
    /// `ThrottlingRateLimit`, requests a second.
    pub rate: f64,
}

/// A throttle from route settings (`ThrottlingBurstLimit`, `ThrottlingRateLimit`).
fn throttle_of(settings: &Node) -> Option<Throttle> {
    Some(Throttle {
        burst: u32::try_from(settings["ThrottlingBurstLimit"].as_u64()?).ok()?,
        // A whole number, or a decimal (which the template reader keeps as text).
        rate: match &settings["ThrottlingRateLimit"] {
            n if n.as_u64().is_some() => f64::from(u32::try_from(n.as_u64()?).ok()?),
            n => n.as_str()?.parse().ok()?,
        },
    })
}

/// The values `!Ref` resolves to locally.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    /// Logical id or parameter name → value (overrides parameter defaults).
    pub values: BTreeMap<String, String>,
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
        let template = cfn::Template::load(path).map_err(|e| TemplateError::Read {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
        Self::of(&template, bindings)
    }

    /// The functions `template` declares, with references resolved through `bindings` and
    /// parameter defaults.
    pub fn of(template: &cfn::Template, bindings: &Bindings) -> Result<Self, TemplateError> {
        let mut refs: BTreeMap<String, serde_json::Value> = template
            .parameters
            .keys()
            .filter_map(|name| Some((name.clone(), json!(template.default_of(name)?))))
            .collect();
        refs.extend(bindings.values.iter().map(|(k, v)| (k.clone(), json!(v))));
        let globals = &template.globals["Function"];
        let mut functions = Vec::new();
        for (id, resource) in template.resources_of("AWS::Serverless::Function") {
            functions.push(function(id, resource, globals, &refs)?);
        }
        if functions.is_empty() {
            return Err(TemplateError::Shape(
                "no AWS::Serverless::Function resources".into(),
            ));
        }
        let identity_header = template
            .resources_of("AWS::Serverless::HttpApi")
            .find_map(|(_, api)| {
                let authorizers = api.properties["Auth"]["Authorizers"].as_mapping()?;
                authorizers.values().next()?["IdentitySource"].as_str()
            })
            .map_or_else(
                || "authorization".to_owned(),
                |source| {
                    source
                        .strip_prefix("$request.header.")
                        .unwrap_or(source)
                        .to_ascii_lowercase()
                },
            );
        let throttle = template
            .resources_of("AWS::Serverless::HttpApi")
            .find_map(|(_, api)| throttle_of(&api.properties["DefaultRouteSettings"]));
        let route_throttles = template
            .resources_of("AWS::Serverless::HttpApi")
            .filter_map(|(_, api)| match &api.properties["RouteSettings"] {
                Node::Map(routes) => Some(routes.clone()),
                _ => None,
            })
            .flatten()
            .filter_map(|(key, settings)| Some((key, throttle_of(&settings)?)))
            .collect();
        Ok(Self {
            functions,
            identity_header,
            throttle,
            route_throttles,
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

/// The variables of an `Environment` section, resolved.
fn variables(
    section: &Node,
    refs: &BTreeMap<String, serde_json::Value>,
) -> BTreeMap<String, String> {
    section["Variables"]
        .as_mapping()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.resolve_text(refs)))
        .collect()
}

/// One function as the template declares it, over the `Globals` it inherits.
fn function(
    id: &str,
    resource: &cfn::Resource,
    globals: &Node,
    refs: &BTreeMap<String, serde_json::Value>,
) -> Result<FunctionDef, TemplateError> {
    let shape = TemplateError::Shape;
    let props = &resource.properties;
    let binary = resource.metadata["BuildProperties"]["Binary"]
        .as_str()
        .ok_or_else(|| shape(format!("{id} has no Metadata.BuildProperties.Binary")))?
        .to_owned();
    let mut environment = variables(&globals["Environment"], refs);
    environment.extend(variables(&props["Environment"], refs));
    let mut routes = Vec::new();
    let mut stream = None;
    let mut schedule = None;
    let mut bus_rule = None;
    for (name, event) in props["Events"].as_mapping().into_iter().flatten() {
        let ep = &event["Properties"];
        let rate_of = |expression: &Node| {
            expression
                .as_str()
                .and_then(rate)
                .ok_or_else(|| shape(format!("{id}.{name}: only rate(...) schedules are run")))
        };
        match event["Type"].as_str() {
            Some("HttpApi") => {
                let (Some(method), Some(path)) = (ep["Method"].as_str(), ep["Path"].as_str())
                else {
                    return Err(shape(format!("{id}.{name} needs Method and Path")));
                };
                routes.push(Route {
                    method: method.to_ascii_uppercase(),
                    path: path.to_owned(),
                    public: ep["Auth"]["Authorizer"].as_str() == Some("NONE"),
                });
            }
            Some("DynamoDB") => stream = Some(stream_source(ep)),
            Some("Schedule") => schedule = Some(rate_of(&ep["Schedule"])?),
            Some("ScheduleV2") => schedule = Some(rate_of(&ep["ScheduleExpression"])?),
            Some("EventBridgeRule") => bus_rule = Some(ep["Pattern"].resolve(refs)),
            _ => {}
        }
    }
    let number = |key: &str, default: u64| {
        props[key]
            .as_u64()
            .or_else(|| globals[key].as_u64())
            .unwrap_or(default)
    };
    Ok(FunctionDef {
        logical_id: id.to_owned(),
        binary,
        timeout: Duration::from_secs(number("Timeout", 3)),
        memory_mb: u32::try_from(number("MemorySize", 128)).unwrap_or(256),
        environment,
        routes,
        stream,
        schedule,
        bus_rule,
    })
}

/// A `DynamoDB` event source, with Lambda's defaults where the template says nothing.
fn stream_source(ep: &Node) -> StreamSource {
    let filters = ep["FilterCriteria"]["Filters"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|f| f["Pattern"].as_str())
        .filter_map(|p| serde_json::from_str(p).ok())
        .collect();
    StreamSource {
        batch_size: ep["BatchSize"]
            .as_u64()
            .map_or(100, |n| usize::try_from(n).unwrap_or(100)),
        maximum_retry_attempts: ep["MaximumRetryAttempts"]
            .as_u64()
            .map_or(10_000, |n| u32::try_from(n).unwrap_or(10_000)),
        bisect_on_error: ep["BisectBatchOnFunctionError"].as_bool().unwrap_or(false),
        report_item_failures: ep["FunctionResponseTypes"]
            .as_sequence()
            .into_iter()
            .flatten()
            .any(|t| t.as_str() == Some("ReportBatchItemFailures")),
        filters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_template_gives_six_functions_their_routes_streams_schedule_and_bus_rule() {
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
        assert_eq!(
            binaries,
            [
                "intake", "approver", "slack", "issuer", "sweeper", "activity"
            ]
        );
        // Only the activity function is fed by the activity bus's rule, and only /jit/ roles'
        // CloudTrail events pass it.
        let fed: Vec<&str> = t
            .functions
            .iter()
            .filter(|f| f.bus_rule.is_some())
            .map(|f| f.binary.as_str())
            .collect();
        assert_eq!(fed, ["activity"]);
        let rule = t.functions[5].bus_rule.as_ref().unwrap();
        assert_eq!(
            rule["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"],
            serde_json::json!([{"wildcard": "arn:aws:iam::*:role/jit/*"}])
        );
        assert_eq!(t.functions[5].timeout, Duration::from_secs(30));
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
        let sweeper = &t.functions[4];
        assert_eq!(sweeper.schedule, Some(Duration::from_secs(60)));
        assert_eq!(sweeper.timeout, Duration::from_secs(60));
        assert_eq!(t.functions[0].timeout, Duration::from_secs(10));
        assert_eq!(t.functions[0].environment["TABLE_NAME"], "jit-grants");
        assert_eq!(t.functions[0].environment["JIT_GROUPS_CLAIM"], "groups");
        assert_eq!(t.identity_header, "authorization");
        assert_eq!(
            t.throttle,
            Some(Throttle {
                burst: 50,
                rate: 20.0
            })
        );
        // Slack's route, which takes no token, has a lower limit of its own.
        assert_eq!(
            t.route_throttles,
            BTreeMap::from([(
                "POST /slack/interactions".to_owned(),
                Throttle {
                    burst: 20,
                    rate: 10.0
                }
            )])
        );
        // The web page signs in where the authorizer's tokens come from, as the first
        // audience, and only its files and Slack's signed requests skip the authorizer.
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
        assert_eq!(
            public,
            ["GET /", "GET /web/{file}", "POST /slack/interactions"]
        );
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
        let doc =
            Node::parse(&std::fs::read_to_string(root.join("openapi.yaml")).unwrap()).unwrap();
        assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
        let mut in_document = Vec::new();
        for (path, item) in doc["paths"].as_mapping().unwrap() {
            for (method, operation) in item.as_mapping().unwrap() {
                if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    continue;
                }
                let key = format!("{} {path}", method.to_uppercase());
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
                        operation["responses"]["401"].as_mapping().is_some(),
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
        assert!(doc["security"][0]["jwt"].as_sequence().is_some());
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
        // Read only in the local stack, which sets it; a deployed function refuses to start
        // with it, so the template must never set it.
        let local_only = [jit_core::clock::STACK_CLOCK_ENV];
        for name in &read {
            let set = t.functions.iter().any(|f| f.environment.contains_key(name));
            if local_only.contains(&name.as_str()) {
                assert!(
                    !set,
                    "`{name}` is for the local stack only; template.yaml sets it"
                );
            } else {
                assert!(
                    set,
                    "`{name}` is read but no function sets it in template.yaml"
                );
            }
            assert!(
                readme.contains(&format!("`{name}`")),
                "`{name}` is not in the README's configuration table"
            );
        }
    }
}
