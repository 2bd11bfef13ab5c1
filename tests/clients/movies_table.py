"""`Movies` is one table, whether boto3 or the movies API (OpenAPI tag `movies`) reaches it.

Usage: movies_table.py BASE_URL ACCESS_KEY_ID SECRET_ACCESS_KEY ADMIN_TOKEN YEAR [IN_FLIGHT]

IN_FLIGHT (default 40, a divisor of 40) caps the racing writers at once (10 under
`wrangler dev`, as dynamodb_concurrency.py).

boto3's put_item into Movies is served by GET /api/movies; a PUT or an import through
the movies API is what boto3 gets, queries and scans (typed as boto3 would have
written it); the table is listed and cannot be deleted or created again; and 20
admin PUTs racing 20 boto3 put_items into one year all survive. Works in years YEAR,
YEAR + 1 and YEAR + 2 only, which the caller keeps apart from every other test's.
"""

import json
import sys
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import boto3
from boto3.dynamodb.conditions import Attr, Key
from botocore.config import Config
from checks import check, error_code

base, key_id, secret, admin, first_year = sys.argv[1:6]
in_flight = int(sys.argv[6]) if len(sys.argv) > 6 else 40
check(40 % in_flight == 0, f"IN_FLIGHT {in_flight} must divide 40")
session = dict(endpoint_url=base + "/dynamodb", region_name="us-east-1", aws_access_key_id=key_id,
               aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}, max_pool_connections=40))
dynamodb = boto3.resource("dynamodb", **session)
client = boto3.client("dynamodb", **session)
movies = dynamodb.Table("Movies")
year = int(first_year)


def api(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"authorization": f"Bearer {admin}", "content-type": "application/json"})
    try:
        with urllib.request.urlopen(req) as resp:
            text = resp.read()
            return resp.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


# The table every deployment has.
described = client.describe_table(TableName="Movies")["Table"]
check([k["AttributeName"] for k in described["KeySchema"]] == ["year", "title"], f"key schema {described}")
check({d["AttributeName"]: d["AttributeType"] for d in described["AttributeDefinitions"]}
      == {"year": "N", "title": "S"}, f"attribute types {described}")
check("Movies" in client.list_tables()["TableNames"], "ListTables lacks Movies")
check(error_code(lambda: client.delete_table(TableName="Movies")) == "ValidationException", "Movies was deletable")
check(error_code(lambda: client.create_table(
    TableName="Movies", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
)) == "ResourceInUseException", "Movies could be created again")

# boto3 -> the movies API.
movies.put_item(Item={"year": year, "title": "Through boto3", "info": {
    "rating": Decimal("7.5"), "genres": ["Drama", "Comedy"], "plot": "Put with put_item.", "rank": 12}})
status, page = api("GET", f"/api/movies?year={year}")
check(status == 200 and page["items"] == [{"year": year, "title": "Through boto3", "info": {
    "rating": 7.5, "genres": ["Drama", "Comedy"], "plot": "Put with put_item.", "rank": 12}}],
      f"GET /api/movies after put_item: {status} {page}")
status, one = api("GET", f"/api/movies/{year}/Through%20boto3")
check(status == 200 and one["info"]["rank"] == 12, f"GET one after put_item: {status} {one}")
status, page = api("GET", f"/api/movies?year={year}&genre=Comedy&min_rating=7")
check(status == 200 and [m["title"] for m in page["items"]] == ["Through boto3"], f"filters: {page}")

# The movies API -> boto3: PUT, import, DELETE.
status, _ = api("PUT", f"/api/movies/{year}/Through%20the%20API", {"info": {"rating": 6.25, "actors": ["A", "B"]}})
check(status == 200, f"PUT {status}")
got = movies.get_item(Key={"year": year, "title": "Through the API"})["Item"]
check(got == {"year": year, "title": "Through the API", "info": {"rating": Decimal("6.25"), "actors": ["A", "B"]}},
      f"get_item after PUT {got}")
typed = client.get_item(TableName="Movies", Key={"year": {"N": str(year)}, "title": {"S": "Through the API"}})["Item"]
check(typed["info"]["M"]["actors"] == {"L": [{"S": "A"}, {"S": "B"}]}, f"typed as boto3 types lists {typed}")
imported = [{"year": year + 1, "title": f"Imported {i}", "info": {"rating": i}} for i in range(5)]
status, answer = api("POST", "/api/movies/import", imported)
check(status == 200 and answer == {"imported": 5}, f"import {status} {answer}")
scanned, start = [], None
while True:  # Movies holds what other tests imported: the filter runs over many pages.
    page = movies.scan(FilterExpression=Attr("year").eq(year + 1), **({"ExclusiveStartKey": start} if start else {}))
    scanned += page["Items"]
    start = page.get("LastEvaluatedKey")
    if not start:
        break
check(sorted(m["title"] for m in scanned) == [f"Imported {i}" for i in range(5)], f"Scan after import {scanned}")
queried = movies.query(KeyConditionExpression=Key("year").eq(year + 1) & Key("title").begins_with("Imported"),
                       ScanIndexForward=False, Limit=2)
check([m["title"] for m in queried["Items"]] == ["Imported 4", "Imported 3"] and "LastEvaluatedKey" in queried,
      f"Query after import {queried}")
status, _ = api("DELETE", f"/api/movies/{year}/Through%20boto3")
check(status == 204, f"DELETE {status}")
check("Item" not in movies.get_item(Key={"year": year, "title": "Through boto3"}), "deleted through the API")

# Concurrent writers through both doors, into one fresh year: nothing lost.
race = year + 2
barrier = threading.Barrier(in_flight)


def write(i):
    barrier.wait()
    if i % 2:
        status, _ = api("PUT", f"/api/movies/{race}/Racer%20{i:02}", {"info": {"n": i}})
        check(status == 200, f"PUT racer {i}: {status}")
    else:
        client.put_item(TableName="Movies", Item={"year": {"N": str(race)}, "title": {"S": f"Racer {i:02}"},
                                                  "info": {"M": {"n": {"N": str(i)}}}})


with ThreadPoolExecutor(max_workers=in_flight) as pool:
    list(pool.map(write, range(40)))
status, page = api("GET", f"/api/movies?year={race}&limit=500")
titles = [m["title"] for m in page["items"]]
check(titles == [f"Racer {i:02}" for i in range(40)], f"racing writes lost: {sorted(set(range(40)) - {int(t[6:]) for t in titles})}")
check(movies.query(KeyConditionExpression=Key("year").eq(race), Select="COUNT")["Count"] == 40, "Query count")
print("movies table: ok")
