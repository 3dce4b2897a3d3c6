"""Baseline (c) for cold starts: a Python handler doing the same DynamoDB GetItem with boto3,
run by awslambdaric (the runtime interface client AWS's Python images use). The client is
made at import, as in the Rust functions and baseline (b)."""

import os

import boto3

TABLE = os.environ["TABLE_NAME"]
CLIENT = boto3.client("dynamodb")


def handler(event, context):
    item = CLIENT.get_item(
        TableName=TABLE, Key={"pk": {"S": "GRANT#none"}, "sk": {"S": "GRANT"}}
    )
    return {"found": "Item" in item}
