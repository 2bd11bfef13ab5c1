"""boto3 and the aws CLI, unchanged, against the /dynamodb endpoint of a deployment.

Usage: dynamodb_basics.py BASE_URL ACCESS_KEY_ID SECRET_ACCESS_KEY TABLE_NAME

Runs the table and item operations the endpoint serves with boto3's resource and
client APIs and the aws CLI, checks every answer, and exits non-zero naming the first
that is wrong. TABLE_NAME must be fresh (it is created, then deleted).
"""

import json
import os
import subprocess
import time
import sys
from decimal import Decimal

import boto3
import botocore
from botocore.config import Config
from checks import check, error_code

base, key_id, secret, name = sys.argv[1:5]
endpoint = base + "/dynamodb"
session = dict(
    endpoint_url=endpoint,
    region_name="eu-west-1",
    aws_access_key_id=key_id,
    aws_secret_access_key=secret,
    config=Config(retries={"max_attempts": 1}),
)
dynamodb = boto3.resource("dynamodb", **session)
client = boto3.client("dynamodb", **session)


# The AWS Getting Started table: year (N) + title (S).
table = dynamodb.create_table(
    TableName=name,
    KeySchema=[
        {"AttributeName": "year", "KeyType": "HASH"},
        {"AttributeName": "title", "KeyType": "RANGE"},
    ],
    AttributeDefinitions=[
        {"AttributeName": "year", "AttributeType": "N"},
        {"AttributeName": "title", "AttributeType": "S"},
    ],
    ProvisionedThroughput={"ReadCapacityUnits": 10, "WriteCapacityUnits": 10},
)
table.wait_until_exists()
check(table.table_status == "ACTIVE", f"status {table.table_status}")
check(name in client.list_tables()["TableNames"], "list_tables lacks the table")
check(
    error_code(lambda: client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "year", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "year", "AttributeType": "N"}],
        BillingMode="PAY_PER_REQUEST",
    )) == "ResourceInUseException",
    "a second create_table was not refused",
)

movie = {
    "year": 2013,
    "title": "Rush",
    "info": {
        "rating": Decimal("8.3"),
        "rank": 2,
        "genres": {"Action", "Biography", "Drama"},
        "actors": ["Daniel Bruhl", "Chris Hemsworth"],
        "big": Decimal("12345678901234567890123456789012345678"),
        "poster": b"\x00\x01\xff",
        "sequel": None,
        "released": True,
    },
}
put = table.put_item(Item=movie, ReturnConsumedCapacity="TOTAL")
check(put["ConsumedCapacity"] == {"TableName": name, "CapacityUnits": 1.0}, f"consumed {put}")
read = table.get_item(Key={"year": 2013, "title": "Rush"}, ReturnConsumedCapacity="TOTAL")
check(read["ConsumedCapacity"]["CapacityUnits"] == 0.5, f"eventually consistent read {read}")
limits = client.describe_limits()
check(limits["TableMaxReadCapacityUnits"] == 40000, f"limits {limits}")
endpoints = client.describe_endpoints()["Endpoints"]
check(len(endpoints) == 1 and endpoints[0]["CachePeriodInMinutes"] == 1440, f"endpoints {endpoints}")
# The legacy parameters older SDKs send: an OR of Expected conditions, the first false.
client.put_item(TableName=name, Item={"year": {"N": "1"}, "title": {"S": "old"}, "n": {"N": "1"}},
                ConditionalOperator="OR",
                Expected={"n": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "5"}]},
                          "title": {"ComparisonOperator": "NULL"}})
legacy = client.query(TableName=name, AttributesToGet=["n"],
                      KeyConditions={"year": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}]}})
check(legacy["Items"] == [{"n": {"N": "1"}}], f"legacy query {legacy}")
client.delete_item(TableName=name, Key={"year": {"N": "1"}, "title": {"S": "old"}},
                   Expected={"n": {"Value": {"N": "1"}}})
client.update_table(TableName=name, ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 6})
units = client.describe_table(TableName=name)["Table"]["ProvisionedThroughput"]
check((units["ReadCapacityUnits"], units["WriteCapacityUnits"]) == (5, 6), f"update_table {units}")
arn = client.describe_table(TableName=name)["Table"]["TableArn"]
client.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "edge"}, {"Key": "env", "Value": "test"}])
client.untag_resource(ResourceArn=arn, TagKeys=["env"])
tags = client.list_tags_of_resource(ResourceArn=arn)["Tags"]
check(tags == [{"Key": "team", "Value": "edge"}], f"tags {tags}")
# Time to live: off at first, on for one attribute, refused twice as DynamoDB refuses it.
ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
check(ttl == {"TimeToLiveStatus": "DISABLED"}, f"ttl {ttl}")
spec = client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"})
check(spec["TimeToLiveSpecification"] == {"Enabled": True, "AttributeName": "expires"}, f"ttl spec {spec}")
ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
check(ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}, f"ttl {ttl}")
check(error_code(lambda: client.update_time_to_live(
    TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "other"})) == "ValidationException",
    "ttl moved to another attribute while enabled")
# Transactions: all or nothing, with DynamoDB's cancellation reasons in request order.
k1 = {"year": {"N": "7"}, "title": {"S": "one"}}
k2 = {"year": {"N": "8"}, "title": {"S": "two"}}
client.transact_write_items(TransactItems=[
    {"Put": {"TableName": name, "Item": {**k1, "n": {"N": "1"}}}},
    {"Put": {"TableName": name, "Item": {**k2, "n": {"N": "2"}}, "ConditionExpression": "attribute_not_exists(title)"}},
], ClientRequestToken="basics-1")
try:
    client.transact_write_items(TransactItems=[
        {"Update": {"TableName": name, "Key": k1, "UpdateExpression": "SET n = n + :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"ConditionCheck": {"TableName": name, "Key": k2, "ConditionExpression": "n > :two",
                            "ExpressionAttributeValues": {":two": {"N": "2"}}}},
    ])
    check(False, "a transaction with a false condition went through")
except client.exceptions.TransactionCanceledException as e:
    codes = [r["Code"] for r in e.response["CancellationReasons"]]
    check(codes == ["None", "ConditionalCheckFailed"], f"reasons {codes}")
got = client.transact_get_items(TransactItems=[{"Get": {"TableName": name, "Key": k1}},
                                               {"Get": {"TableName": name, "Key": k2}}])["Responses"]
check([r["Item"]["n"]["N"] for r in got] == ["1", "2"], f"transact_get_items {got}")
on_demand = client.describe_table(TableName="Movies")["Table"]
check(on_demand["ProvisionedThroughput"]["ReadCapacityUnits"] == 0
      and on_demand["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST", f"Movies {on_demand}")
got = table.get_item(Key={"year": 2013, "title": "Rush"})["Item"]
check(got["info"]["genres"] == {"Action", "Biography", "Drama"}, f"set {got}")
check(got["info"]["big"] == Decimal("12345678901234567890123456789012345678"), f"38 digits {got}")
check(got["info"]["poster"].value == b"\x00\x01\xff", f"binary {got}")
check(got["info"]["rating"] == Decimal("8.3") and got["info"]["sequel"] is None, f"{got}")
check(got["info"]["actors"] == ["Daniel Bruhl", "Chris Hemsworth"], f"list {got}")
check("Item" not in table.get_item(Key={"year": 2013, "title": "Nope"}), "a missing item")

# The Getting Started updates: SET, arithmetic, REMOVE with a size() condition.
new = table.update_item(
    Key={"year": 2013, "title": "Rush"},
    UpdateExpression="SET info.rating = :r, info.plot = :p",
    ExpressionAttributeValues={":r": Decimal("8.5"), ":p": "Everything happens all at once."},
    ReturnValues="UPDATED_NEW",
)["Attributes"]
check(new == {"info": {"rating": Decimal("8.5"), "plot": "Everything happens all at once."}}, f"UPDATED_NEW {new}")
bumped = table.update_item(
    Key={"year": 2013, "title": "Rush"},
    UpdateExpression="SET info.rating = info.rating + :val",
    ExpressionAttributeValues={":val": Decimal("0.25")},
    ReturnValues="UPDATED_NEW",
)["Attributes"]["info"]["rating"]
check(bumped == Decimal("8.75"), f"arithmetic {bumped}")
table.update_item(
    Key={"year": 2013, "title": "Rush"},
    UpdateExpression="REMOVE info.actors[0]",
    ConditionExpression="size(info.actors) > :num",
    ExpressionAttributeValues={":num": 1},
)
check(
    table.get_item(Key={"year": 2013, "title": "Rush"})["Item"]["info"]["actors"] == ["Chris Hemsworth"],
    "REMOVE info.actors[0]",
)
check(
    error_code(lambda: table.update_item(
        Key={"year": 2013, "title": "Rush"},
        UpdateExpression="REMOVE info.actors[0]",
        ConditionExpression="size(info.actors) > :num",
        ExpressionAttributeValues={":num": 1},
    )) == "ConditionalCheckFailedException",
    "a false size() condition",
)
projected = table.get_item(
    Key={"year": 2013, "title": "Rush"},
    ProjectionExpression="#yr, title, info.rating",
    ExpressionAttributeNames={"#yr": "year"},
)["Item"]
check(projected == {"year": 2013, "title": "Rush", "info": {"rating": Decimal("8.75")}}, f"projection {projected}")
check(
    error_code(lambda: table.delete_item(
        Key={"year": 2013, "title": "Rush"},
        ConditionExpression="info.rating <= :val",
        ExpressionAttributeValues={":val": Decimal("5")},
    )) == "ConditionalCheckFailedException",
    "a conditional delete that must fail",
)


# Query: a year, a title range with a projection and the reserved word "year" as #yr,
# paging with Limit and LastEvaluatedKey, reverse order, COUNT, a filter.
from boto3.dynamodb.conditions import Attr, Key

with table.batch_writer() as batch:
    for i in range(12):
        batch.put_item(Item={"year": 1985, "title": f"Film {i:02}", "info": {"rating": Decimal(i)}})
year = table.query(KeyConditionExpression=Key("year").eq(1985))
check([m["title"] for m in year["Items"]] == [f"Film {i:02}" for i in range(12)], f"query {year}")
check(year["Count"] == 12 and "LastEvaluatedKey" not in year, f"count {year}")
ranged = table.query(
    ProjectionExpression="#yr, title, info.rating",
    ExpressionAttributeNames={"#yr": "year"},
    KeyConditionExpression=Key("year").eq(1985) & Key("title").between("Film 03", "Film 05"),
)["Items"]
check(ranged == [{"year": 1985, "title": f"Film {i:02}", "info": {"rating": i}} for i in (3, 4, 5)], f"range {ranged}")
pages, start = [], None
while True:
    args = dict(KeyConditionExpression=Key("year").eq(1985), Limit=5)
    if start:
        args["ExclusiveStartKey"] = start
    page = table.query(**args)
    pages.append([m["title"] for m in page["Items"]])
    start = page.get("LastEvaluatedKey")
    if not start:
        break
check(sum(pages, []) == [f"Film {i:02}" for i in range(12)] and len(pages[0]) == 5, f"pages {pages}")
backwards = table.query(KeyConditionExpression=Key("year").eq(1985) & Key("title").begins_with("Film 1"),
                        ScanIndexForward=False)["Items"]
check([m["title"] for m in backwards] == ["Film 11", "Film 10"], f"reverse {backwards}")
counted = client.query(TableName=name, Select="COUNT", KeyConditionExpression="#y = :y",
                       ExpressionAttributeNames={"#y": "year"}, ExpressionAttributeValues={":y": {"N": "1985"}})
check(counted["Count"] == 12 and "Items" not in counted, f"COUNT {counted}")
good = table.query(KeyConditionExpression=Key("year").eq(1985), FilterExpression=Attr("info.rating").gte(10))
check(good["Count"] == 2 and good["ScannedCount"] == 12, f"filter {good}")
check(
    error_code(lambda: table.query(KeyConditionExpression=Key("title").eq("x"))) == "ValidationException",
    "a query without the partition key",
)
got = client.batch_get_item(RequestItems={name: {
    "Keys": [{"year": {"N": "1985"}, "title": {"S": f"Film {i:02}"}} for i in (1, 7)] +
            [{"year": {"N": "1985"}, "title": {"S": "Nope"}}],
    "ProjectionExpression": "title",
}})
check(sorted(i["title"]["S"] for i in got["Responses"][name]) == ["Film 01", "Film 07"], f"batch get {got}")
# Scan: years 1980-1989 over 10 partitions, a filter, paging, two segments.
with table.batch_writer() as batch:
    for y in range(1980, 1990):
        batch.put_item(Item={"year": y, "title": "Scan me", "info": {"rating": Decimal(y - 1980)}})
everything, start, pages = [], None, 0
while True:
    args = dict(FilterExpression=Key("year").between(1980, 1989) & Attr("info.rating").gte(0), Limit=4)
    if start:
        args["ExclusiveStartKey"] = start
    page = table.scan(**args)
    pages += 1
    everything += [(m["year"], m["title"]) for m in page["Items"]]
    start = page.get("LastEvaluatedKey")
    if not start:
        break
want = sorted([(y, "Scan me") for y in range(1980, 1990)] + [(1985, f"Film {i:02}") for i in range(12)])
check(sorted(everything) == want and pages >= 5, f"scan pages {pages}: {everything}")
halves = [
    table.scan(Segment=s, TotalSegments=2, FilterExpression=Attr("title").eq("Scan me"))["Items"]
    for s in (0, 1)
]
check(sorted(m["year"] for m in halves[0] + halves[1]) == list(range(1980, 1990)), f"segments {halves}")
with table.batch_writer() as batch:
    for i in range(12):
        batch.delete_item(Key={"year": 1985, "title": f"Film {i:02}"})
left = [m["title"] for m in table.query(KeyConditionExpression=Key("year").eq(1985))["Items"]]
check(left == ["Scan me"], f"batch deletes left {left}")

with_old = table.put_item(Item={"year": 2013, "title": "Rush"}, ReturnValues="ALL_OLD")
check(with_old["Attributes"]["info"]["plot"] == "Everything happens all at once.", f"ALL_OLD {with_old}")
deleted = table.delete_item(Key={"year": 2013, "title": "Rush"}, ReturnValues="ALL_OLD")
check(deleted["Attributes"] == {"year": 2013, "title": "Rush"}, f"deleted {deleted}")
check("Item" not in table.get_item(Key={"year": 2013, "title": "Rush"}), "not deleted")


check(
    error_code(lambda: table.put_item(Item={"year": "2013", "title": "x"})) == "ValidationException",
    "a key of the wrong type was accepted",
)
check(
    error_code(lambda: client.describe_table(TableName=name + "-none")) == "ResourceNotFoundException",
    "describe of a missing table",
)
wrong = boto3.client("dynamodb", **dict(session, aws_secret_access_key="wrong"))
check(error_code(lambda: wrong.list_tables()) == "InvalidSignatureException", "wrong secret")
stranger = boto3.client("dynamodb", **dict(session, aws_access_key_id="AKIDSTRANGER"))
check(error_code(lambda: stranger.list_tables()) == "UnrecognizedClientException", "unknown key")
unsigned = boto3.client(
    "dynamodb",
    **dict(session, config=Config(signature_version=botocore.UNSIGNED, retries={"max_attempts": 1})),
)
check(
    error_code(lambda: unsigned.list_tables()) == "MissingAuthenticationTokenException",
    "unsigned",
)

# The aws CLI (v1), unchanged.
env = dict(
    os.environ,
    AWS_ACCESS_KEY_ID=key_id,
    AWS_SECRET_ACCESS_KEY=secret,
    AWS_DEFAULT_REGION="us-west-2",
    AWS_CONFIG_FILE="/dev/null",
    AWS_SHARED_CREDENTIALS_FILE="/dev/null",
)
aws = [os.path.join(os.path.dirname(sys.executable), "aws"), "dynamodb", "--endpoint-url", endpoint, "--output", "json"]


def cli(*args):
    out = subprocess.run(aws + list(args), env=env, capture_output=True, text=True)
    check(out.returncode == 0, f"aws {' '.join(args)}: {out.stderr}")
    return json.loads(out.stdout) if out.stdout.strip() else {}


cli("put-item", "--table-name", name, "--item",
    json.dumps({"year": {"N": "1999"}, "title": {"S": "The Matrix"}, "info": {"M": {"plot": {"S": "Neo"}}}}))
item = cli("get-item", "--table-name", name, "--key",
           json.dumps({"year": {"N": "1999"}, "title": {"S": "The Matrix"}}))["Item"]
check(item["info"] == {"M": {"plot": {"S": "Neo"}}}, f"cli get-item {item}")
check(name in cli("list-tables")["TableNames"], "cli list-tables")
cli("update-time-to-live", "--table-name", name, "--time-to-live-specification", "Enabled=false,AttributeName=expires")
got = cli("transact-get-items", "--transact-items",
          json.dumps([{"Get": {"TableName": name, "Key": {"year": {"N": "7"}, "title": {"S": "one"}}}}]))
check(got["Responses"][0]["Item"]["n"] == {"N": "1"}, f"cli transact-get-items {got}")
ttl = cli("describe-time-to-live", "--table-name", name)["TimeToLiveDescription"]
check(ttl == {"TimeToLiveStatus": "DISABLED"}, f"cli ttl {ttl}")
cli("delete-table", "--table-name", name)
check(
    error_code(lambda: client.describe_table(TableName=name)) == "ResourceNotFoundException",
    "the table survived delete-table",
)

# Secondary indexes through the CLI: a table with a GSI and an LSI, a query of each.
indexed = name + "-ix"
cli("create-table", "--table-name", indexed, "--billing-mode", "PAY_PER_REQUEST",
    "--attribute-definitions", "AttributeName=user,AttributeType=S", "AttributeName=at,AttributeType=N",
    "AttributeName=kind,AttributeType=S", "AttributeName=size,AttributeType=N",
    "--key-schema", "AttributeName=user,KeyType=HASH", "AttributeName=at,KeyType=RANGE",
    "--global-secondary-indexes", json.dumps([{"IndexName": "by_kind", "KeySchema": [
        {"AttributeName": "kind", "KeyType": "HASH"}, {"AttributeName": "at", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "KEYS_ONLY"}}]),
    "--local-secondary-indexes", json.dumps([{"IndexName": "by_size", "KeySchema": [
        {"AttributeName": "user", "KeyType": "HASH"}, {"AttributeName": "size", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "ALL"}}]))
for user, at, kind, size in [("u1", 1, "photo", 30), ("u1", 2, "video", 10), ("u2", 3, "photo", 20)]:
    cli("put-item", "--table-name", indexed, "--item", json.dumps(
        {"user": {"S": user}, "at": {"N": str(at)}, "kind": {"S": kind}, "size": {"N": str(size)}}))
photos = cli("query", "--table-name", indexed, "--index-name", "by_kind",
             "--key-condition-expression", "kind = :k", "--expression-attribute-values", '{":k": {"S": "photo"}}')
check([i["at"]["N"] for i in photos["Items"]] == ["1", "3"] and "size" not in photos["Items"][0],
      f"cli query of a GSI {photos}")
smallest = cli("query", "--table-name", indexed, "--index-name", "by_size", "--consistent-read",
               "--key-condition-expression", "#u = :u", "--expression-attribute-names", '{"#u": "user"}',
               "--expression-attribute-values", '{":u": {"S": "u1"}}', "--max-items", "1")
check(smallest["Items"][0]["size"] == {"N": "10"}, f"cli query of an LSI {smallest}")
described = cli("describe-table", "--table-name", indexed)["Table"]
check(described["GlobalSecondaryIndexes"][0]["IndexStatus"] == "ACTIVE", f"cli describe {described}")
# A GSI added to the table with its items: CREATING, then ACTIVE with every item in it
# (filled after a grace period, a step per DescribeTable, as clients poll it).
cli("update-table", "--table-name", indexed, "--attribute-definitions", "AttributeName=size,AttributeType=N",
    "--global-secondary-index-updates", json.dumps([{"Create": {"IndexName": "by_size_global", "KeySchema": [
        {"AttributeName": "size", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}}]))
statuses = []
for _ in range(60):
    gsis = client.describe_table(TableName=indexed)["Table"]["GlobalSecondaryIndexes"]
    statuses.append(next(g["IndexStatus"] for g in gsis if g["IndexName"] == "by_size_global"))
    if statuses[-1] == "ACTIVE":
        break
    time.sleep(0.5)
check(statuses[0] == "CREATING" and statuses[-1] == "ACTIVE", f"a new GSI went {statuses}")
sized = client.query(TableName=indexed, IndexName="by_size_global", KeyConditionExpression="#z = :s",
                     ExpressionAttributeNames={"#z": "size"},
                     ExpressionAttributeValues={":s": {"N": "20"}})["Items"]
check([i["at"]["N"] for i in sized] == ["3"], f"the new GSI holds {sized}")
cli("delete-table", "--table-name", indexed)
print("dynamodb basics: ok")
