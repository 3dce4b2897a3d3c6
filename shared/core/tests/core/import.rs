//! Bulk import into DynamoDB: what it writes reads back exactly as created ones do.

use crate::support::*;
use jit_core::domain::audit::verify_against_head;
use jit_core::store::{DynamoStore, GrantStore, PageRequest, StoreError};
use jit_local::TestTable;

#[tokio::test]
async fn imported_requests_read_back_with_their_chains_indexes_and_slots() {
    let table = TestTable::create("import").await.unwrap();
    let store = DynamoStore::new(table.client.clone(), &table.name);
    let creations: Vec<_> = (0..60)
        .map(|i| open(&format!("user{i}"), "prod-logs", T0.plus_secs(i)))
        .collect();
    assert_eq!(store.import(&creations).await.unwrap(), 60);
    let calls = table.calls.take();
    assert_eq!(
        calls["DynamoDB.BatchWriteItem"], 8,
        "180 items in batches of 25"
    );
    for c in &creations {
        let g = store.get(&c.grant().id).await.unwrap().unwrap();
        assert_eq!(&g, c.grant());
        let audit = store
            .audit_of_grant(&g.id, &PageRequest::first(5))
            .await
            .unwrap()
            .items;
        verify_against_head(&g.id, &audit, &g.audit_head).unwrap();
    }
    let due = store
        .list_due(T0.plus_secs(WINDOW + 100), &PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(due.items.len(), 60);
    // The open slots came along: a second request by the same person is refused.
    let again = open("user7", "prod-logs", T0.plus_secs(500));
    assert!(matches!(
        store.create(&again, None).await,
        Err(StoreError::AlreadyOpen { .. })
    ));
}
