"""Runs moto's server on loopback for as long as whoever started it is alive.

Prints `READY http://HOST:PORT` once it is listening (pass port 0 for a free one), then waits
for its standard input to close: the parent holds the pipe, so when the parent exits for any
reason, even a crash, the emulator stops too and never holds a port.

Two fixes keep moto faithful to DynamoDB's transactions:

- Requests are served one at a time. moto's transactions are not isolated from each other: a
  cancelled transaction restores a copy of the table taken when it began, wiping out whatever
  a concurrent request wrote meanwhile. Real DynamoDB serialises conflicting transactions.
  Connections are still accepted concurrently.
- A transaction journals the items it touches instead of copying whole tables. moto copies
  every table a transaction names before it starts, so each write cost grows with the table
  (over 100 ms per write at a few hundred items); a cancelled transaction now restores exactly
  the items (and stream records) it changed, which, with requests serialised, is the same.

One fix keeps moto faithful to S3 Object Lock: a retention may be lengthened, never shortened
or removed while it runs (COMPLIANCE: by nobody; GOVERNANCE: only with
`x-amz-bypass-governance-retention: true`). moto replaces the retention with whatever it is sent.
"""

import copy
import datetime
import os
import sys
import threading

import moto.dynamodb.models as dynamodb_models
import moto.iam.models as moto_iam_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.s3.exceptions import AccessDeniedByLock
from moto.s3.responses import S3Response
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

_original_transact_write_items = DynamoDBBackend.transact_write_items


class _KeepTables:
    """Stands in for `copy` in moto's transaction code: whole tables are kept by reference
    (the journal undoes a cancelled transaction), anything else is copied as before."""

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


def _key_of(table, op):
    """The (hash, range) key a transaction operation addresses, or None if malformed."""
    source = op.get("Key") or op.get("Item") or {}
    try:
        hash_key = DynamoType(source[table.hash_key_attr])
        range_key = DynamoType(source[table.range_key_attr]) if table.range_key_attr else None
    except (KeyError, TypeError):
        return None
    return hash_key, range_key


def _journalled_transact_write_items(self, transact_items):
    journal = []
    for entry in transact_items:
        try:
            _, op = next(iter(entry.items()))
            table = self.get_table(op["TableName"])
        except Exception:  # moto refuses it itself, before writing anything
            continue
        key = _key_of(table, op)
        if key is None:
            continue
        before = copy.deepcopy(table.get_item(*key))
        shard = table.stream_shard
        journal.append((table, key, before, shard, len(shard.items) if shard else 0))
    dynamodb_models.copy = _KeepTables
    try:
        return _original_transact_write_items(self, transact_items)
    except Exception:
        for table, (hash_key, range_key), before, shard, stream_length in reversed(journal):
            if range_key is None:
                if before is None:
                    table.items.pop(hash_key, None)
                else:
                    table.items[hash_key] = before
            elif before is None:
                table.items[hash_key].pop(range_key, None)
            else:
                table.items[hash_key][range_key] = before
            if shard is not None:
                del shard.items[stream_length:]
        raise
    finally:
        dynamodb_models.copy = copy


DynamoDBBackend.transact_write_items = _journalled_transact_write_items

_original_put_object_retention = S3Response.put_object_retention


def _until(text):
    """An S3 retain-until date as comparable text (ISO 8601, UTC, seconds), or None."""
    if not text:
        return None
    return str(text).replace("+00:00", "Z")[:19]


def _refusing_shorter_retention(self):
    try:
        key = self.backend.get_object(
            self.bucket_name, self.parse_key_name(), version_id=self._get_param("versionId")
        )
    except Exception:  # moto answers it itself (no such bucket, key or version)
        return _original_put_object_retention(self)
    mode, until = self._mode_until_from_body()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    running = key is not None and key.lock_mode and (_until(key.lock_until) or "") > now
    if running:
        bypass = self.headers.get("x-amz-bypass-governance-retention", "").lower() == "true"
        shorter = _until(until) is None or _until(until) < _until(key.lock_until)
        weaker = key.lock_mode == "COMPLIANCE" and mode != "COMPLIANCE"
        if (shorter or weaker) and not (key.lock_mode == "GOVERNANCE" and bypass):
            raise AccessDeniedByLock
    return _original_put_object_retention(self)


S3Response.put_object_retention = _refusing_shorter_retention

# The account that calls with plain test credentials land in. moto's own MOTO_ACCOUNT_ID puts
# every call there, an assumed role's too, so a role in another account would be changed in
# this one; this sets only the default, and credentials from AssumeRole stay in the assumed
# role's account, as they are on AWS.
if os.environ.get("JIT_DEFAULT_ACCOUNT"):
    moto_iam_models.DEFAULT_ACCOUNT_ID = os.environ["JIT_DEFAULT_ACCOUNT"]


def main() -> None:
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    app = DomainDispatcherApplication(create_backend_app)
    one_at_a_time = threading.Lock()

    def serialised(environ, start_response):
        with one_at_a_time:
            return list(app(environ, start_response))

    server = make_server(host, port, serialised, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"READY http://{host}:{server.server_port}", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
