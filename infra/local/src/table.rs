//! The table, created from `template.yaml`'s own definition so that the local stack and the
//! tests cannot drift from what is deployed.

use std::path::Path;

use crate::cfn::{CfnError, Node as Value, Template};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};

/// The logical id of the table in `template.yaml`.
pub const TABLE_LOGICAL_ID: &str = "GrantsTable";

/// Why the table definition could not be read or the table not created.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The template could not be read or parsed.
    #[error(transparent)]
    Template(#[from] CfnError),
    /// The template's table lacks something the code needs.
    #[error("`{TABLE_LOGICAL_ID}` in the template: {0}")]
    Definition(String),
    /// DynamoDB refused to create the table.
    #[error("creating table `{table}` failed: {why}")]
    Create {
        /// The table's name.
        table: String,
        /// What DynamoDB said.
        why: String,
    },
}

/// One key attribute: its name and type letter (`S` or `N`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAttribute {
    /// The attribute's name.
    pub name: String,
    /// `S`, `N` or `B`.
    pub kind: String,
}

/// A global secondary index as the template declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDefinition {
    /// The index's name.
    pub name: String,
    /// Partition key.
    pub hash: KeyAttribute,
    /// Sort key.
    pub range: Option<KeyAttribute>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection: String,
}

/// The table as the template declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDefinition {
    /// Partition key.
    pub hash: KeyAttribute,
    /// Sort key.
    pub range: Option<KeyAttribute>,
    /// Global secondary indexes.
    pub indexes: Vec<IndexDefinition>,
    /// The stream's view type, if a stream is on.
    pub stream_view: Option<String>,
    /// The TTL attribute, if TTL is on.
    pub ttl_attribute: Option<String>,
    /// Whether point-in-time recovery is on.
    pub point_in_time_recovery: bool,
    /// `PAY_PER_REQUEST` or `PROVISIONED`.
    pub billing_mode: String,
}

fn text<'a>(value: &'a Value, key: &str) -> Result<&'a str, TableError> {
    value
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| TableError::Definition(format!("`{key}` is missing or not text")))
}

fn keys(
    schema: &Value,
    attributes: &[(String, String)],
) -> Result<(KeyAttribute, Option<KeyAttribute>), TableError> {
    let list = schema
        .as_sequence()
        .ok_or_else(|| TableError::Definition("`KeySchema` is not a list".into()))?;
    let mut hash = None;
    let mut range = None;
    for element in list {
        let name = text(element, "AttributeName")?;
        let kind = attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, k)| k.clone())
            .ok_or_else(|| {
                TableError::Definition(format!("key `{name}` has no AttributeDefinitions entry"))
            })?;
        let attribute = KeyAttribute {
            name: name.to_owned(),
            kind,
        };
        match text(element, "KeyType")? {
            "HASH" => hash = Some(attribute),
            "RANGE" => range = Some(attribute),
            other => return Err(TableError::Definition(format!("unknown KeyType `{other}`"))),
        }
    }
    let hash = hash.ok_or_else(|| TableError::Definition("a key schema has no HASH key".into()))?;
    Ok((hash, range))
}

/// A key schema: the partition key, and the sort key when there is one.
fn schema(
    hash: &KeyAttribute,
    range: &Option<KeyAttribute>,
) -> Result<Vec<KeySchemaElement>, aws_sdk_dynamodb::error::BuildError> {
    let key = |k: &KeyAttribute, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(&k.name)
            .key_type(t)
            .build()
    };
    let mut schema = vec![key(hash, KeyType::Hash)];
    if let Some(r) = range {
        schema.push(key(r, KeyType::Range));
    }
    schema.into_iter().collect()
}

/// The table's attribute definitions: (name, type letter).
fn attributes(props: &Value) -> Result<Vec<(String, String)>, TableError> {
    props
        .get("AttributeDefinitions")
        .and_then(Value::as_sequence)
        .ok_or_else(|| TableError::Definition("`AttributeDefinitions` is missing".into()))?
        .iter()
        .map(|a| {
            Ok((
                text(a, "AttributeName")?.to_owned(),
                text(a, "AttributeType")?.to_owned(),
            ))
        })
        .collect()
}

/// The table's global secondary indexes.
fn indexes(
    props: &Value,
    attributes: &[(String, String)],
) -> Result<Vec<IndexDefinition>, TableError> {
    let mut indexes = Vec::new();
    for index in props
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let (hash, range) = keys(
            index
                .get("KeySchema")
                .ok_or_else(|| TableError::Definition("an index has no KeySchema".into()))?,
            attributes,
        )?;
        indexes.push(IndexDefinition {
            name: text(index, "IndexName")?.to_owned(),
            hash,
            range,
            projection: index
                .get("Projection")
                .map(|p| text(p, "ProjectionType"))
                .transpose()?
                .unwrap_or("ALL")
                .to_owned(),
        });
    }
    Ok(indexes)
}

impl TableDefinition {
    /// Reads the table from the workspace's `template.yaml`.
    pub fn from_workspace_template() -> Result<Self, TableError> {
        Self::from_template(&crate::workspace_root().join("template.yaml"))
    }

    /// Reads the table from a SAM/CloudFormation template.
    pub fn from_template(path: &Path) -> Result<Self, TableError> {
        let template = Template::load(path)?;
        let table = template.resources.get(TABLE_LOGICAL_ID).ok_or_else(|| {
            TableError::Template(CfnError::Parse {
                path: path.display().to_string(),
                why: format!("no resource `{TABLE_LOGICAL_ID}`"),
            })
        })?;
        if table.kind != "AWS::DynamoDB::Table" {
            return Err(TableError::Definition(
                "is not an AWS::DynamoDB::Table".into(),
            ));
        }
        let props = &table.properties;
        if props.as_mapping().is_none() {
            return Err(TableError::Definition("has no Properties".into()));
        }
        let attributes = attributes(props)?;
        let (hash, range) = keys(
            props
                .get("KeySchema")
                .ok_or_else(|| TableError::Definition("`KeySchema` is missing".into()))?,
            &attributes,
        )?;
        let indexes = indexes(props, &attributes)?;
        let enabled = |section: &str, flag: &str| {
            props
                .get(section)
                .and_then(|s| s.get(flag))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        Ok(Self {
            hash,
            range,
            indexes,
            stream_view: props
                .get("StreamSpecification")
                .map(|s| text(s, "StreamViewType").map(str::to_owned))
                .transpose()?,
            ttl_attribute: props
                .get("TimeToLiveSpecification")
                .filter(|_| enabled("TimeToLiveSpecification", "Enabled"))
                .map(|s| text(s, "AttributeName").map(str::to_owned))
                .transpose()?,
            point_in_time_recovery: enabled(
                "PointInTimeRecoverySpecification",
                "PointInTimeRecoveryEnabled",
            ),
            billing_mode: props
                .get("BillingMode")
                .and_then(Value::as_str)
                .unwrap_or("PROVISIONED")
                .to_owned(),
        })
    }

    /// Every attribute a key of the table or an index names, once each, by name.
    fn key_attributes(&self) -> Vec<&KeyAttribute> {
        let mut attributes: Vec<&KeyAttribute> = vec![&self.hash];
        attributes.extend(&self.range);
        for index in &self.indexes {
            attributes.push(&index.hash);
            attributes.extend(&index.range);
        }
        attributes.sort_by(|a, b| a.name.cmp(&b.name));
        attributes.dedup_by(|a, b| a.name == b.name);
        attributes
    }

    /// Creates the table under `name` (with its indexes, stream and TTL) and returns once it
    /// can be used.
    pub async fn create(&self, client: &Client, name: &str) -> Result<(), TableError> {
        let create_error = |why: String| TableError::Create {
            table: name.to_owned(),
            why,
        };
        let built = |e: aws_sdk_dynamodb::error::BuildError| create_error(e.to_string());
        let attributes = self.key_attributes();
        let mut request = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::from(self.billing_mode.as_str()))
            .set_key_schema(Some(schema(&self.hash, &self.range).map_err(built)?));
        for a in attributes {
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(&a.name)
                    .attribute_type(ScalarAttributeType::from(a.kind.as_str()))
                    .build()
                    .map_err(built)?,
            );
        }
        for index in &self.indexes {
            request = request.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(&index.name)
                    .set_key_schema(Some(schema(&index.hash, &index.range).map_err(built)?))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::from(index.projection.as_str()))
                            .build(),
                    )
                    .build()
                    .map_err(built)?,
            );
        }
        if let Some(view) = &self.stream_view {
            request = request.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(view.as_str()))
                    .build()
                    .map_err(built)?,
            );
        }
        request
            .send()
            .await
            .map_err(|e| create_error(DisplayErrorContext(e).to_string()))?;
        if let Some(attribute) = &self.ttl_attribute {
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(attribute)
                        .enabled(true)
                        .build()
                        .map_err(built)?,
                )
                .send()
                .await
                .map_err(|e| create_error(DisplayErrorContext(e).to_string()))?;
        }
        Ok(())
    }
}
