//! One typed model of a CloudFormation (SAM) template, read with `saphyr` (YAML 1.2, safe
//! Rust): every reader of `template.yaml` and `infra/target-account.yaml` (the table, the
//! local stack's functions and target roles, the IAM evaluation in the tests) goes through it.
//!
//! Intrinsic functions become [`Intrinsic`]s whichever form they are written in: the short
//! tags (`!Ref`, `!Sub`, `!GetAtt`, `!If`, `!Select`, `!Join`, ...) and the long form
//! (`{Ref: X}`, `{"Fn::Sub": ...}`). [`Node::resolve`] is the one place they are evaluated.
// Indexing a node by key or position returns `Node::Null` when absent: it never panics (the
// lint cannot tell it from slice indexing).
#![allow(clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::Path;

use indexmap::IndexMap;
use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::{Value, json};

/// Why a template could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CfnError {
    /// The file could not be read.
    #[error("cannot read `{path}`: {why}")]
    Read {
        /// The file.
        path: String,
        /// What failed.
        why: String,
    },
    /// The text is not YAML, or not a template.
    #[error("`{path}` is not a template: {why}")]
    Parse {
        /// The file.
        path: String,
        /// What failed.
        why: String,
    },
}

/// A CloudFormation intrinsic function.
#[derive(Debug, Clone, PartialEq)]
pub enum Intrinsic {
    /// `!Ref name`: a parameter, a pseudo parameter or a resource.
    Ref(String),
    /// `!GetAtt Resource.Attribute`.
    GetAtt(String),
    /// `!Sub text` or `!Sub [text, {name: value}]`.
    Sub(Node),
    /// `!If [condition, then, else]`.
    If(String, Node, Node),
    /// `!Select [index, list]`.
    Select(Node, Node),
    /// `!Join [separator, list]`.
    Join(Node, Node),
    /// Any other function (`Equals`, `Not`, `Condition`, `Split`, ...), by its name without
    /// `Fn::`, with its argument.
    Other(String, Node),
}

/// A value in a template.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Node {
    /// Nothing (also what a missing key or index reads as).
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// Text.
    Str(String),
    /// A list.
    Seq(Vec<Node>),
    /// A mapping from text keys, in the document's order.
    Map(IndexMap<String, Node>),
    /// An intrinsic function.
    Fn(Box<Intrinsic>),
}

static NULL: Node = Node::Null;

impl Node {
    /// Parses YAML text (its first document).
    pub fn parse(text: &str) -> Result<Self, String> {
        let docs = Yaml::load_from_str(text).map_err(|e| e.to_string())?;
        Ok(docs.first().map(Self::of_yaml).unwrap_or_default())
    }

    fn of_yaml(yaml: &Yaml<'_>) -> Self {
        match yaml {
            Yaml::Value(scalar) => Self::of_scalar(scalar),
            Yaml::Representation(text, _, _) => Self::Str(text.to_string()),
            Yaml::Sequence(items) => Self::Seq(items.iter().map(Self::of_yaml).collect()),
            Yaml::Mapping(map) => {
                let entries: IndexMap<String, Node> = map
                    .iter()
                    .map(|(k, v)| (Self::of_yaml(k).key(), Self::of_yaml(v)))
                    .collect();
                Self::long_form(entries)
            }
            Yaml::Tagged(tag, inner) => {
                Self::function(tag.suffix.trim_start_matches("Fn::"), Self::of_yaml(inner))
            }
            Yaml::Alias(_) | Yaml::BadValue => Self::Null,
        }
    }

    fn of_scalar(scalar: &Scalar<'_>) -> Self {
        match scalar {
            Scalar::Null => Self::Null,
            Scalar::Boolean(b) => Self::Bool(*b),
            Scalar::Integer(i) => Self::Int(*i),
            Scalar::FloatingPoint(f) => Self::Float(f.into_inner()),
            Scalar::String(s) => Self::Str(s.to_string()),
        }
    }

    /// A key as text, whatever scalar it was written as.
    fn key(&self) -> String {
        match self {
            Self::Str(s) => s.clone(),
            Self::Int(i) => i.to_string(),
            Self::Bool(b) => b.to_string(),
            Self::Float(f) => f.to_string(),
            _ => String::new(),
        }
    }

    /// A one-key mapping `Ref` or `Fn::...` is the long form of an intrinsic function.
    fn long_form(entries: IndexMap<String, Node>) -> Self {
        if entries.len() == 1
            && let Some((name, arg)) = entries.iter().next()
            && (name == "Ref" || name.starts_with("Fn::"))
        {
            return Self::function(name.trim_start_matches("Fn::"), arg.clone());
        }
        Self::Map(entries)
    }

    fn function(name: &str, arg: Node) -> Self {
        let at = |i: usize| arg[i].clone();
        let intrinsic = match name {
            "Ref" => Intrinsic::Ref(arg.as_str().unwrap_or_default().to_owned()),
            "GetAtt" => Intrinsic::GetAtt(match &arg {
                Self::Seq(parts) => parts
                    .iter()
                    .filter_map(Node::as_str)
                    .collect::<Vec<_>>()
                    .join("."),
                other => other.as_str().unwrap_or_default().to_owned(),
            }),
            "Sub" => Intrinsic::Sub(arg),
            "If" => Intrinsic::If(arg[0].as_str().unwrap_or_default().to_owned(), at(1), at(2)),
            "Select" => Intrinsic::Select(at(0), at(1)),
            "Join" => Intrinsic::Join(at(0), at(1)),
            other => Intrinsic::Other(other.to_owned(), arg),
        };
        Self::Fn(Box::new(intrinsic))
    }

    /// The value under `key`, if this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Self::Map(map) => map.get(key),
            _ => None,
        }
    }

    /// The text, if this is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is a whole number of at least 0.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Self::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        }
    }

    /// The number, if this is a whole number.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The flag, if this is `true` or `false`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The items, if this is a list.
    pub fn as_sequence(&self) -> Option<&Vec<Node>> {
        match self {
            Self::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// The entries, if this is a mapping.
    pub fn as_mapping(&self) -> Option<&IndexMap<String, Node>> {
        match self {
            Self::Map(map) => Some(map),
            _ => None,
        }
    }

    /// The function, if this is one.
    pub fn as_intrinsic(&self) -> Option<&Intrinsic> {
        match self {
            Self::Fn(f) => Some(f),
            _ => None,
        }
    }

    /// The value as JSON with each function in its long form (`{"Ref": ...}`), as
    /// CloudFormation itself reads a template.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Bool(b) => json!(b),
            Self::Int(i) => json!(i),
            Self::Float(f) => json!(f),
            Self::Str(s) => json!(s),
            Self::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Self::Map(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
            Self::Fn(f) => match f.as_ref() {
                Intrinsic::Ref(name) => json!({ "Ref": name }),
                Intrinsic::GetAtt(name) => json!({ "Fn::GetAtt": name }),
                Intrinsic::Sub(arg) => json!({ "Fn::Sub": arg.to_json() }),
                Intrinsic::If(c, a, b) => json!({ "Fn::If": [c, a.to_json(), b.to_json()] }),
                Intrinsic::Select(i, l) => json!({ "Fn::Select": [i.to_json(), l.to_json()] }),
                Intrinsic::Join(s, l) => json!({ "Fn::Join": [s.to_json(), l.to_json()] }),
                Intrinsic::Other(name, arg) => {
                    let key = if name == "Condition" {
                        name.clone()
                    } else {
                        format!("Fn::{name}")
                    };
                    json!({ key: arg.to_json() })
                }
            },
        }
    }

    /// The value as JSON, as CloudFormation would deploy it: `!Ref`, `!GetAtt` (`X.Arn` is
    /// the reference `X.Arn`) and `!Sub` from `refs` (a `CommaDelimitedList` parameter may be
    /// a list or comma-separated text), `!If` from the conditions in `refs`
    /// (`Condition::<name>`: `true` or `false`), `!Join` and `!Select`, and `AWS::NoValue`
    /// dropped from lists and mappings. A reference `refs` does not know reads as its name.
    pub fn resolve(&self, refs: &BTreeMap<String, Value>) -> Value {
        self.resolved(refs).unwrap_or(Value::Null)
    }

    /// As [`Node::resolve`], as text: a list joined with commas, anything else as written.
    pub fn resolve_text(&self, refs: &BTreeMap<String, Value>) -> String {
        text_of(&self.resolve(refs))
    }

    fn resolved(&self, refs: &BTreeMap<String, Value>) -> Option<Value> {
        Some(match self {
            Self::Seq(items) => {
                Value::Array(items.iter().filter_map(|i| i.resolved(refs)).collect())
            }
            Self::Map(map) => Value::Object(
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.resolved(refs)?)))
                    .collect(),
            ),
            Self::Fn(f) => match f.as_ref() {
                Intrinsic::Ref(name) if name == "AWS::NoValue" => return None,
                Intrinsic::Ref(name) | Intrinsic::GetAtt(name) => {
                    refs.get(name).cloned().unwrap_or_else(|| json!(name))
                }
                Intrinsic::Sub(arg) => {
                    let (template, own) = match arg {
                        Self::Seq(parts) => (
                            parts.first().cloned().unwrap_or_default(),
                            parts.get(1).cloned(),
                        ),
                        other => (other.clone(), None),
                    };
                    let mut vars = refs.clone();
                    if let Some(Self::Map(own)) = own {
                        for (k, v) in own {
                            vars.insert(k, v.resolve(refs));
                        }
                    }
                    let mut text = template.as_str().unwrap_or_default().to_owned();
                    for (name, value) in &vars {
                        text = text.replace(&format!("${{{name}}}"), &text_of(value));
                    }
                    json!(text)
                }
                Intrinsic::If(condition, then, otherwise) => {
                    let on = refs.get(&format!("Condition::{condition}")) == Some(&json!(true));
                    return if on { then } else { otherwise }.resolved(refs);
                }
                Intrinsic::Join(separator, list) => {
                    let separator = separator.as_str().unwrap_or_default();
                    json!(list_of(&list.resolve(refs)).join(separator))
                }
                Intrinsic::Select(index, list) => {
                    let at = usize::try_from(index.as_u64().unwrap_or_default()).unwrap_or(0);
                    let items = list_of(&list.resolve(refs));
                    json!(items.get(at).cloned().unwrap_or_default())
                }
                Intrinsic::Other(_, arg) => arg.resolve(refs),
            },
            scalar => scalar.to_json(),
        })
    }
}

/// A resolved value as text.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// A resolved value as a list: a list's items, or comma-separated text split.
fn list_of(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().map(text_of).collect(),
        other => text_of(other)
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    }
}

impl std::ops::Index<&str> for Node {
    type Output = Node;

    /// The value under `key`; [`Node::Null`] when there is none.
    fn index(&self, key: &str) -> &Node {
        self.get(key).unwrap_or(&NULL)
    }
}

impl std::ops::Index<usize> for Node {
    type Output = Node;

    /// Item `at` of a list; [`Node::Null`] when there is none.
    fn index(&self, at: usize) -> &Node {
        self.as_sequence()
            .and_then(|items| items.get(at))
            .unwrap_or(&NULL)
    }
}

/// A template parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// Its `Type` (`String`, `CommaDelimitedList`, ...).
    pub kind: String,
    /// Its `Default`, if it has one.
    pub default: Option<Node>,
}

/// A template resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Its `Type` (`AWS::Serverless::Function`, ...).
    pub kind: String,
    /// Its `Properties`.
    pub properties: Node,
    /// Its `Metadata`.
    pub metadata: Node,
    /// The condition it is made under, if any.
    pub condition: Option<String>,
}

/// A CloudFormation or SAM template, each section in the document's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// `Parameters`, by name.
    pub parameters: IndexMap<String, Parameter>,
    /// `Conditions`, by name.
    pub conditions: IndexMap<String, Node>,
    /// SAM's `Globals`.
    pub globals: Node,
    /// `Resources`, by logical id.
    pub resources: IndexMap<String, Resource>,
    /// `Outputs`, by name.
    pub outputs: IndexMap<String, Node>,
}

impl Template {
    /// Reads the template at `path`.
    pub fn load(path: &Path) -> Result<Self, CfnError> {
        let text = std::fs::read_to_string(path).map_err(|e| CfnError::Read {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
        Self::parse(&text).map_err(|why| CfnError::Parse {
            path: path.display().to_string(),
            why,
        })
    }

    /// Reads the template at `relative` (such as `template.yaml`) in the workspace.
    pub fn workspace(relative: &str) -> Result<Self, CfnError> {
        Self::load(&crate::workspace_root().join(relative))
    }

    /// Parses a template's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let doc = Node::parse(text)?;
        if doc.as_mapping().is_none() {
            return Err("the document is not a mapping".to_owned());
        }
        let section = |name: &str| doc[name].as_mapping().cloned().unwrap_or_default();
        Ok(Self {
            parameters: section("Parameters")
                .into_iter()
                .map(|(name, p)| {
                    let parameter = Parameter {
                        kind: p["Type"].as_str().unwrap_or("String").to_owned(),
                        default: p.get("Default").cloned(),
                    };
                    (name, parameter)
                })
                .collect(),
            conditions: section("Conditions"),
            globals: doc["Globals"].clone(),
            resources: section("Resources")
                .into_iter()
                .map(|(id, r)| {
                    let resource = Resource {
                        kind: r["Type"].as_str().unwrap_or_default().to_owned(),
                        properties: r["Properties"].clone(),
                        metadata: r["Metadata"].clone(),
                        condition: r["Condition"].as_str().map(str::to_owned),
                    };
                    (id, resource)
                })
                .collect(),
            outputs: section("Outputs"),
        })
    }

    /// A resource's properties; [`Node::Null`] when there is no such resource.
    pub fn properties(&self, logical_id: &str) -> &Node {
        self.resources
            .get(logical_id)
            .map_or(&NULL, |r| &r.properties)
    }

    /// The resources of `kind`, by logical id.
    pub fn resources_of<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Resource)> + 'a {
        self.resources.iter().filter(move |(_, r)| r.kind == kind)
    }

    /// A parameter's default as text, if it has one.
    pub fn default_of(&self, parameter: &str) -> Option<String> {
        let default = self.parameters.get(parameter)?.default.as_ref()?;
        Some(default.resolve_text(&BTreeMap::new()))
    }
}
