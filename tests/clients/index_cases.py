"""Generated steps over secondary indexes, run by the differentials against moto and
dynalite alike: a table with two GSIs (ALL with a sort key, KEYS_ONLY without) and an
LSI (INCLUDE); random PutItem, UpdateItem, DeleteItem, BatchWriteItem and
TransactWriteItems moving items between index keys and out of sparse indexes; after
each, Queries of every index (paged, with key conditions) and Scans of every index;
then a consistent read of a GSI, refused. Items that tie on an index's key come back in
an order DynamoDB does not define, so results are compared as sets.

`run(step, rng, table, cases, created, transactions)`: `step(name, call)` runs
`call(client)` (a boto3 client) on every server and compares the answers;
`created(client)` waits for a new table where a server creates tables in the
background; `transactions=False` leaves TransactWriteItems out (dynalite has none).
"""

import json

PKS = ["a", "b", "c"]
SKS = ["1", "2", "3"]
INDEXES = ["by_tag", "by_n", "by_score"]


def sorted_items(page_call):
    """A step's call reading every page of `page_call(client, start)`, its items as a
    set (in a fixed order)."""
    def call(client):
        items, start = [], {}
        while True:
            page = page_call(client, start)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
        return {"Items": sorted(items, key=lambda i: json.dumps(i, sort_keys=True))}
    return call


def run(step, rng, table, cases, created=lambda client: None, transactions=True):
    def create(client):
        client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for a, t in
                                  [("pk", "S"), ("sk", "N"), ("tag", "S"), ("n", "N"), ("score", "N")]],
            LocalSecondaryIndexes=[{"IndexName": "by_score", "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "score", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["tag"]}}],
            GlobalSecondaryIndexes=[
                {"IndexName": "by_tag", "KeySchema": [{"AttributeName": "tag", "KeyType": "HASH"},
                                                      {"AttributeName": "n", "KeyType": "RANGE"}],
                 "Projection": {"ProjectionType": "ALL"}},
                {"IndexName": "by_n", "KeySchema": [{"AttributeName": "n", "KeyType": "HASH"}],
                 "Projection": {"ProjectionType": "KEYS_ONLY"}},
            ],
            BillingMode="PAY_PER_REQUEST")
        created(client)
        return {}

    def item():
        made = {"pk": {"S": rng.choice(PKS)}, "sk": {"N": rng.choice(SKS)}}
        for attr, values in (("tag", ["x", "y", "z"]), ("n", ["1", "2", "3"]), ("score", ["7", "8"])):
            if rng.random() < 0.8:  # sometimes absent: the item leaves that index
                made[attr] = {"S": rng.choice(values)} if attr == "tag" else {"N": rng.choice(values)}
        made["other"] = {"S": rng.choice(["p", "q"])}
        return made

    def write():
        kind = rng.choice(["put", "update", "delete", "batch"] + ["transaction"] * transactions)
        one = item()
        key = {"pk": one["pk"], "sk": one["sk"]}
        if kind == "put":
            return kind, lambda c: c.put_item(TableName=table, Item=one)
        if kind == "update":
            update, values = rng.choice([
                ("SET tag = :t", {":t": {"S": rng.choice(["x", "y"])}}),
                ("REMOVE n", {}),
                ("SET n = :n, score = :s", {":n": {"N": rng.choice(["1", "2"])}, ":s": {"N": "9"}}),
                ("SET other = :o", {":o": {"S": "r"}}),
            ])
            args = {"TableName": table, "Key": key, "UpdateExpression": update}
            if values:
                args["ExpressionAttributeValues"] = values
            return kind, lambda c: c.update_item(**args)
        if kind == "delete":
            return kind, lambda c: c.delete_item(TableName=table, Key=key)
        if kind == "batch":
            puts = {json.dumps([i["pk"], i["sk"]]): i for i in (item() for _ in range(3))}
            requests = [{"PutRequest": {"Item": i}} for i in puts.values()]
            return kind, lambda c: c.batch_write_item(RequestItems={table: requests})
        other = item()
        if (other["pk"], other["sk"]) == (one["pk"], one["sk"]):
            other["sk"] = {"N": "9"}
        actions = [{"Put": {"TableName": table, "Item": one}},
                   {"Delete": {"TableName": table, "Key": {"pk": other["pk"], "sk": other["sk"]}}}]
        return kind, lambda c: c.transact_write_items(TransactItems=actions)

    def reads(case):
        # Drawn before the calls, which run once per server and page.
        tag, low, n, pk = rng.choice(["x", "y", "z"]), rng.choice(["1", "2"]), rng.choice(["1", "2", "3"]), rng.choice(PKS)
        step(f"index case {case}: query by_tag", sorted_items(lambda c, s: c.query(
            TableName=table, IndexName="by_tag", KeyConditionExpression="tag = :t AND n >= :n",
            ExpressionAttributeValues={":t": {"S": tag}, ":n": {"N": low}}, Limit=2, **s)))
        step(f"index case {case}: query by_n", sorted_items(lambda c, s: c.query(
            TableName=table, IndexName="by_n", KeyConditionExpression="n = :n",
            ExpressionAttributeValues={":n": {"N": n}}, **s)))
        step(f"index case {case}: query by_score", sorted_items(lambda c, s: c.query(
            TableName=table, IndexName="by_score", KeyConditionExpression="pk = :p AND score BETWEEN :a AND :b",
            ExpressionAttributeValues={":p": {"S": pk}, ":a": {"N": "7"}, ":b": {"N": "8"}},
            ConsistentRead=True, **s)))
        for index in INDEXES:
            step(f"index case {case}: scan {index}", sorted_items(lambda c, s, index=index: c.scan(
                TableName=table, IndexName=index, **s)))

    step("create indexed table", create)
    for case in range(cases):
        kind, call = write()
        step(f"index case {case}: {kind}", call)
        reads(case)
    step("consistent read of a GSI", lambda c: c.query(
        TableName=table, IndexName="by_n", KeyConditionExpression="n = :n",
        ExpressionAttributeValues={":n": {"N": "1"}}, ConsistentRead=True))
