"""Concurrent writers through boto3 against the /dynamodb endpoint: nothing is lost.

Usage: dynamodb_concurrency.py BASE_URL ACCESS_KEY_ID SECRET_ACCESS_KEY TABLE_NAME [IN_FLIGHT]

Creates TABLE_NAME (year N + title S), then 40 concurrent conditional increments of one
item (read, then write n+1 only if n is still what was read, retried) must end at
exactly 40, and 40 simultaneous put_item of distinct titles into one year (one
partition) must all survive, and 40 simultaneous `ADD n :one` updates of one item (no
client retries) must all succeed and count exactly 40; then, on a table with a GSI, 40
simultaneous updates moving one item between index keys must leave exactly its final
entry, and 40 simultaneous puts into one index partition must all be in the index.
Deletes the tables; exits non-zero naming what was lost.
IN_FLIGHT (default 40) caps the writers at once: under `wrangler dev`, 10 (its proxy
drops connections under a burst of 40; see the conformance suite's WORKERD_IN_FLIGHT).
"""

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from checks import check

base, key_id, secret, name = sys.argv[1:5]
in_flight = int(sys.argv[5]) if len(sys.argv) > 5 else 40
# The puts meet at a barrier in groups of IN_FLIGHT; a last, smaller group never would.
check(40 % in_flight == 0, f"IN_FLIGHT {in_flight} must divide 40")
client = boto3.client("dynamodb", endpoint_url=base + "/dynamodb", region_name="us-east-1",
                      aws_access_key_id=key_id, aws_secret_access_key=secret,
                      config=Config(retries={"max_attempts": 1}, max_pool_connections=40))


client.create_table(
    TableName=name,
    KeySchema=[{"AttributeName": "year", "KeyType": "HASH"}, {"AttributeName": "title", "KeyType": "RANGE"}],
    AttributeDefinitions=[{"AttributeName": "year", "AttributeType": "N"},
                          {"AttributeName": "title", "AttributeType": "S"}],
    BillingMode="PAY_PER_REQUEST",
)
client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})

# 40 concurrent conditional increments of one item: read, then write n+1 only if n is
# still what was read, retrying when it is not. The count must come out exact.
def increment(_):
    for _ in range(400):
        current = client.get_item(TableName=name, Key={"year": {"N": "1"}, "title": {"S": "counter"}},
                                  ConsistentRead=True).get("Item")
        try:
            if current is None:
                client.put_item(TableName=name,
                                Item={"year": {"N": "1"}, "title": {"S": "counter"}, "n": {"N": "1"}},
                                ConditionExpression="attribute_not_exists(title)")
            else:
                n = int(current["n"]["N"])
                client.update_item(TableName=name, Key={"year": {"N": "1"}, "title": {"S": "counter"}},
                                   UpdateExpression="SET n = :next", ConditionExpression="n = :seen",
                                   ExpressionAttributeValues={":next": {"N": str(n + 1)}, ":seen": {"N": str(n)}})
            return
        except ClientError as e:
            if e.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
    raise AssertionError("an incrementer starved")


with ThreadPoolExecutor(max_workers=in_flight) as pool:
    list(pool.map(increment, range(40)))
count = client.get_item(TableName=name, Key={"year": {"N": "1"}, "title": {"S": "counter"}})["Item"]["n"]["N"]
check(count == "40", f"40 conditional increments counted {count}")

# 40 simultaneous puts of distinct titles into one year (one partition): all survive.
barrier = threading.Barrier(in_flight)


def put_title(i):
    barrier.wait()
    client.put_item(TableName=name, Item={"year": {"N": "1977"}, "title": {"S": f"Title {i:02}"}})


with ThreadPoolExecutor(max_workers=in_flight) as pool:
    list(pool.map(put_title, range(40)))
missing = [
    i for i in range(40)
    if "Item" not in client.get_item(TableName=name, Key={"year": {"N": "1977"}, "title": {"S": f"Title {i:02}"}})
]
check(not missing, f"concurrent puts lost: {missing}")

# 40 simultaneous `ADD n :one` on one item, the client retrying nothing: DynamoDB
# never fails an update for contention, so every one succeeds and the count is exact.
errors = []


def add_one(_):
    barrier.wait()
    try:
        client.update_item(TableName=name, Key={"year": {"N": "2"}, "title": {"S": "adds"}},
                           UpdateExpression="ADD n :one", ExpressionAttributeValues={":one": {"N": "1"}})
    except ClientError as e:
        errors.append(e.response["Error"]["Code"])


with ThreadPoolExecutor(max_workers=in_flight) as pool:
    list(pool.map(add_one, range(40)))
check(not errors, f"concurrent ADD updates failed: {errors}")
adds = client.get_item(TableName=name, Key={"year": {"N": "2"}, "title": {"S": "adds"}},
                       ConsistentRead=True)["Item"]["n"]["N"]
check(adds == "40", f"40 concurrent ADD updates counted {adds}")
client.delete_table(TableName=name)

# A table with a GSI: 40 simultaneous updates moving one item between index keys leave
# exactly one entry, the item's final one; 40 simultaneous puts into one index
# partition all appear in it.
indexed = name + "-ix"
client.create_table(
    TableName=indexed,
    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"},
                          {"AttributeName": "state", "AttributeType": "S"}],
    GlobalSecondaryIndexes=[{"IndexName": "by_state", "KeySchema": [{"AttributeName": "state", "KeyType": "HASH"}],
                             "Projection": {"ProjectionType": "ALL"}}],
    BillingMode="PAY_PER_REQUEST",
)


def move(i):
    barrier.wait()
    client.update_item(TableName=indexed, Key={"id": {"S": "moving"}}, UpdateExpression="SET #s = :s, n = :n",
                       ExpressionAttributeNames={"#s": "state"},
                       ExpressionAttributeValues={":s": {"S": f"state-{i % 8}"}, ":n": {"N": str(i)}})


def put_pending(i):
    barrier.wait()
    client.put_item(TableName=indexed, Item={"id": {"S": f"item-{i:02}"}, "state": {"S": "pending"}})


def entries(state):
    """The index's entries under `state`, read by a Query (which reads the entries)."""
    return client.query(TableName=indexed, IndexName="by_state", KeyConditionExpression="#s = :s",
                        ExpressionAttributeNames={"#s": "state"},
                        ExpressionAttributeValues={":s": {"S": state}})["Items"]


with ThreadPoolExecutor(max_workers=in_flight) as pool:
    list(pool.map(move, range(40)))
final = client.get_item(TableName=indexed, Key={"id": {"S": "moving"}}, ConsistentRead=True)["Item"]
moving = [e for state in range(8) for e in entries(f"state-{state}") if e["id"]["S"] == "moving"]
check(moving == [final], f"40 concurrent moves left index entries {moving}, the item is {final}")
with ThreadPoolExecutor(max_workers=in_flight) as pool:
    list(pool.map(put_pending, range(40)))
pending = entries("pending")
check(len(pending) == 40, f"40 concurrent puts into one index partition: {len(pending)} in the index")
client.delete_table(TableName=indexed)
print("dynamodb concurrency: ok")
