"""The /dynamodb endpoint against moto, a second reference DynamoDB, on what dynalite
lacks: transactions, time to live and secondary indexes.

Usage: dynamodb_moto.py BASE_URL ACCESS_KEY_ID SECRET_ACCESS_KEY MOTO_URL PREFIX SEED CASES

Every step runs on both servers in lockstep with the same boto3 client code, and their
answers must match once what DynamoDB leaves server-specific is set aside (request
ids, error messages but for the cancellation reasons, capacity figures):

1. Time to live: DescribeTimeToLive of a fresh table, UpdateTimeToLive enabling it,
   DescribeTimeToLive again, expired and live items still read.
2. CASES generated steps from SEED over two tables (a partition key alone; a partition
   and a sort key) seeded with items: TransactWriteItems of 1-6 random Put, Update,
   Delete and ConditionCheck actions with random conditions (true and false) and
   ReturnValuesOnConditionCheckFailure, some naming one item twice or a missing
   table; TransactGetItems of random keys. After every
   write step both tables are scanned and must hold the same items.
3. CASES/2 generated writes into a table with GSIs and an LSI, each followed by
   queries and scans of every index (`index_cases.py`).

Left out, where moto departs from DynamoDB's documentation (which the endpoint
follows): UpdateTimeToLive's refusals (moto accepts enabling twice, moving the
attribute while enabled and disabling under another attribute name, all of which
DynamoDB refuses with ValidationException), ClientRequestToken (moto does not keep
tokens), and TransactGetItems' ProjectionExpression (moto's adds the key attributes,
and on some items ignores the projection; GetItem's projections are compared with
dynalite). Exits non-zero naming the first step whose answers differ; prints how many
matched.
"""

import json
import random
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

import index_cases

base, key_id, secret, moto_url, prefix, seed, cases = sys.argv[1:8]
SEED, CASES = int(seed), int(cases)

SERVERS = {"edge": (base + "/dynamodb", key_id, secret), "moto": (moto_url, "moto", "moto")}


def connect(server):
    endpoint, kid, sec = SERVERS[server]
    config = Config(retries={"max_attempts": 1})
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=kid, aws_secret_access_key=sec, config=config)


CLIENTS = {server: connect(server) for server in SERVERS}
compared = {"steps": 0}
outcomes = {}


def answer(call):
    """What a call answered, in the terms compared: the result, or the error code (and
    for a cancelled transaction, its reasons)."""
    try:
        result = call()
        result.pop("ResponseMetadata", None)
        # moto reports capacity (for UpdateItem, filled in) and empty metrics unasked;
        # DynamoDB leaves them out, and no step here asks.
        result.pop("ConsumedCapacity", None)
        if not result.get("ItemCollectionMetrics", True):
            del result["ItemCollectionMetrics"]
        return {"ok": result}
    except ClientError as e:
        error = {"error": e.response["Error"]["Code"]}
        if "CancellationReasons" in e.response:
            error["reasons"] = e.response["CancellationReasons"]
        return error


def step(name, call):
    """Runs `call(client)` on both servers; their answers must match."""
    got = {server: answer(lambda: call(client)) for server, client in CLIENTS.items()}
    if got["edge"] != got["moto"]:
        print(f"step {compared['steps']} ({name}) differs:\n  edge: {json.dumps(got['edge'], sort_keys=True)}\n"
              f"  moto: {json.dumps(got['moto'], sort_keys=True)}", file=sys.stderr)
        sys.exit(1)
    compared["steps"] += 1
    kind = got["edge"].get("error", "ok")
    outcomes[kind] = outcomes.get(kind, 0) + 1
    return got["edge"]


def scan_all(table):
    return index_cases.sorted_items(lambda client, start: client.scan(TableName=table, **start))


HASH = f"{prefix}-txh"
RANGE = f"{prefix}-txr"
INDEXED = f"{prefix}-ix"
TTL = f"{prefix}-ttl"


def create(client, name, ranged):
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
    attrs = [{"AttributeName": "pk", "AttributeType": "S"}]
    if ranged:
        keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
        attrs.append({"AttributeName": "sk", "AttributeType": "N"})
    client.create_table(TableName=name, KeySchema=keys, AttributeDefinitions=attrs,
                        BillingMode="PAY_PER_REQUEST")
    return {}


# 1. Time to live.
step("create ttl table", lambda c: create(c, TTL, False))
step("describe ttl, fresh", lambda c: c.describe_time_to_live(TableName=TTL))
now = int(time.time())
step("put expired", lambda c: c.put_item(TableName=TTL, Item={"pk": {"S": "old"}, "exp": {"N": str(now - 60)}}))
step("put live", lambda c: c.put_item(TableName=TTL, Item={"pk": {"S": "new"}, "exp": {"N": str(now + 3600)}}))
step("enable ttl", lambda c: c.update_time_to_live(
    TableName=TTL, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"}))
step("describe ttl, enabled", lambda c: c.describe_time_to_live(TableName=TTL))
step("expired item still read", lambda c: c.get_item(TableName=TTL, Key={"pk": {"S": "old"}}))
# (DescribeTimeToLive of a missing table is left out: moto names its error
# `ResourceNotFound`, DynamoDB `ResourceNotFoundException`.)

# 2. Generated transactions.
rng = random.Random(SEED)
step("create hash table", lambda c: create(c, HASH, False))
step("create range table", lambda c: create(c, RANGE, True))
PKS = ["a", "b", "c", "d", "e", "f"]
SKS = ["1", "2", "3"]


def key(table):
    k = {"pk": {"S": rng.choice(PKS)}}
    if table == RANGE:
        k["sk"] = {"N": rng.choice(SKS)}
    return k


def number():
    return {"N": str(rng.randint(-5, 20))}


def condition():
    """A condition and its values, or None: true or false on the items generated."""
    return rng.choice([
        None,
        ("attribute_exists(pk)", {}),
        ("attribute_not_exists(pk)", {}),
        ("n > :c", {":c": number()}),
        ("n <= :c OR attribute_not_exists(n)", {":c": number()}),
        ("tag = :t", {":t": {"S": rng.choice(["x", "y"])}}),
    ])


def with_condition(action, values=None):
    values = dict(values or {})
    cond = condition()
    if cond:
        action["ConditionExpression"] = cond[0]
        values.update(cond[1])
    if values:
        action["ExpressionAttributeValues"] = values
    if rng.random() < 0.3:
        action["ReturnValuesOnConditionCheckFailure"] = rng.choice(["ALL_OLD", "NONE"])
    return action


def random_action():
    table = rng.choice([HASH, RANGE])
    kind = rng.choice(["Put", "Update", "Delete", "ConditionCheck"])
    if kind == "Put":
        item = dict(key(table), n=number(), tag={"S": rng.choice(["x", "y"])})
        return {"Put": with_condition({"TableName": table, "Item": item})}
    if kind == "Update":
        update, values = rng.choice([
            ("SET n = if_not_exists(n, :z) + :d", {":z": {"N": "0"}, ":d": number()}),
            ("SET tag = :t", {":t": {"S": rng.choice(["x", "y"])}}),
            ("REMOVE tag", {}),
            ("ADD hits :one", {":one": {"N": "1"}}),
        ])
        return {"Update": with_condition({"TableName": table, "Key": key(table), "UpdateExpression": update},
                                         values)}
    if kind == "Delete":
        return {"Delete": with_condition({"TableName": table, "Key": key(table)})}
    cond = condition() or ("attribute_exists(pk)", {})
    check = {"TableName": table, "Key": key(table), "ConditionExpression": cond[0]}
    if cond[1]:
        check["ExpressionAttributeValues"] = cond[1]
    return {"ConditionCheck": check}


for pk in PKS:
    step("seed", lambda c, pk=pk: c.put_item(TableName=HASH, Item={"pk": {"S": pk}, "n": {"N": "5"}, "tag": {"S": "x"}}))
    for sk in SKS[:2]:
        step("seed", lambda c, pk=pk, sk=sk: c.put_item(
            TableName=RANGE, Item={"pk": {"S": pk}, "sk": {"N": sk}, "n": {"N": sk}}))

for case in range(CASES):
    if rng.random() < 0.25:
        gets = []
        for _ in range(rng.randint(1, 5)):
            table = rng.choice([HASH, RANGE])
            get = {"TableName": table, "Key": key(table)}
            gets.append({"Get": get})
        step(f"case {case}: transact_get_items", lambda c, gets=gets: c.transact_get_items(TransactItems=gets))
        continue
    actions = [random_action() for _ in range(rng.randint(1, 6))]
    if rng.random() < 0.03:
        # A missing table, in a request otherwise valid: which of two refusals comes
        # first is not documented, and moto and the endpoint order them differently.
        unique = {}
        for action in actions:
            body = next(iter(action.values()))
            item = body.get("Key", body.get("Item"))
            unique[(body["TableName"], item["pk"]["S"], json.dumps(item.get("sk")))] = action
        actions = list(unique.values())
        actions.append({"Put": {"TableName": f"{prefix}-none", "Item": {"pk": {"S": "a"}}}})
    step(f"case {case}: transact_write_items", lambda c, actions=actions: c.transact_write_items(TransactItems=actions))
    for table in (HASH, RANGE):
        step(f"case {case}: scan {table}", scan_all(table))

# 3. Secondary indexes (index_cases.py). Left out, where moto departs from DynamoDB: a
# Query of a missing index (DynamoDB answers ValidationException, moto
# ResourceNotFoundException) and an index key of the wrong type (moto stores the item;
# DynamoDB refuses it, as the endpoint and dynalite do).
index_cases.run(step, rng, INDEXED, CASES // 2)

for client in CLIENTS.values():
    for table in (HASH, RANGE, TTL, INDEXED):
        client.delete_table(TableName=table)
print(f"moto differential: {compared['steps']} steps answered as moto answers; outcomes {outcomes}")
