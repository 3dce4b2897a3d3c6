//! The table the code queries is the table `template.yaml` deploys, and the table the tests
//! and the local stack create on the emulator is that same definition.

use jit_core::store::TableLayout;
use jit_local::{KeyAttribute, TableDefinition, TestTable};

fn key(name: &str, number: bool) -> KeyAttribute {
    KeyAttribute {
        name: name.to_owned(),
        kind: if number { "N" } else { "S" }.to_owned(),
    }
}

#[test]
fn the_template_declares_exactly_the_layout_the_code_uses() {
    let table = TableDefinition::from_workspace_template().unwrap();
    assert_eq!(table.hash, key(TableLayout::PARTITION_KEY, false));
    assert_eq!(table.range, Some(key(TableLayout::SORT_KEY, false)));
    let mut declared: Vec<_> = table
        .indexes
        .iter()
        .map(|i| {
            (
                i.name.clone(),
                i.hash.clone(),
                i.range.clone(),
                i.projection.clone(),
            )
        })
        .collect();
    let mut used: Vec<_> = TableLayout::INDEXES
        .iter()
        .map(|i| {
            (
                i.name.to_owned(),
                key(i.partition_key, false),
                Some(key(i.sort_key.0, i.sort_key.1)),
                "ALL".to_owned(),
            )
        })
        .collect();
    declared.sort_by(|a, b| a.0.cmp(&b.0));
    used.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(declared, used);
    assert_eq!(
        table.ttl_attribute.as_deref(),
        Some(TableLayout::TTL_ATTRIBUTE)
    );
    assert_eq!(table.stream_view.as_deref(), Some("NEW_AND_OLD_IMAGES"));
    assert!(table.point_in_time_recovery);
    assert_eq!(table.billing_mode, "PAY_PER_REQUEST");
}

#[tokio::test]
async fn the_emulator_table_is_built_from_the_template() {
    let table = TestTable::create("layout").await.unwrap();
    let described = table
        .client
        .describe_table()
        .table_name(&table.name)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let mut names: Vec<_> = described
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name().map(str::to_owned))
        .collect();
    names.sort();
    let mut expected: Vec<_> = TableLayout::INDEXES
        .iter()
        .map(|i| i.name.to_owned())
        .collect();
    expected.sort();
    assert_eq!(names, expected);
    let stream = described.stream_specification().unwrap();
    assert!(stream.stream_enabled());
    assert_eq!(
        stream.stream_view_type().unwrap().as_str(),
        "NEW_AND_OLD_IMAGES"
    );
    let ttl = table
        .client
        .describe_time_to_live()
        .table_name(&table.name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|t| t.attribute_name()),
        Some(TableLayout::TTL_ATTRIBUTE)
    );
}
