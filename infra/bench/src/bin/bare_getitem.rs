//! Baseline (b) for cold starts: a bare `lambda_runtime` function whose client is built at
//! start (as the functions build theirs) and whose every invocation does one DynamoDB
//! `GetItem` on `TABLE_NAME`.

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = std::env::var("TABLE_NAME")?;
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| {
        let (client, table) = (client.clone(), table.clone());
        async move {
            let item = client
                .get_item()
                .table_name(table)
                .key("pk", AttributeValue::S("GRANT#none".into()))
                .key("sk", AttributeValue::S("GRANT".into()))
                .send()
                .await?;
            Ok::<_, Error>(json!({"found": item.item.is_some()}))
        }
    }))
    .await
}
