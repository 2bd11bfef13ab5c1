#!/usr/bin/env python3
"""Post-deploy smoke test: a read-mostly, self-cleaning subset of the conformance suite
against any deployment.

    make smoke BASE_URL=https://edge-backends.example.workers.dev [ADMIN_TOKEN=...]
    python3 scripts/smoke.py BASE_URL            # ADMIN_TOKEN from the environment
    SMOKE_HEADER='name: value' ...               # one more header on every request

Every check prints one line; the exit status is non-zero when any failed. Writes use
fresh random names and are undone before the script ends (a stream is ended, a movie in
a year past 9000 is deleted, a friendship is removed); without ADMIN_TOKEN the admin
checks are skipped. Only the Python standard library: it runs from a CI runner or a
laptop, over http or https, with nothing installed.
"""

import json
import os
import random
import string
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

TIMEOUT_S = 30


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body

    def json(self):
        return json.loads(self.body or b"null")

    def error_code(self):
        try:
            return self.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None


class Smoke:
    def __init__(self, base, admin_token):
        self.base = base.rstrip("/")
        self.admin_token = admin_token
        self.failed = []
        self.passed = 0
        self.cleanups = []

    def send(self, method, path, body=None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        # `SMOKE_HEADER="name: value"` goes on every request: scripts/deploy.sh pins the
        # smoke test to a new version at 0% traffic with Cloudflare's version override.
        extra = os.environ.get("SMOKE_HEADER", "")
        if extra:
            name, _, value = extra.partition(":")
            req.add_header(name.strip(), value.strip())
        if data is not None:
            req.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
                return Reply(resp.status, dict(resp.headers), resp.read())
        except urllib.error.HTTPError as e:
            return Reply(e.code, dict(e.headers), e.read())

    def admin(self):
        return {"authorization": "Bearer " + self.admin_token}

    def check(self, name, fn):
        started = time.monotonic()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
            self.failed.append(name)
            print(f"FAIL {name}: {e}")
            return
        self.passed += 1
        print(f"ok   {name} ({(time.monotonic() - started) * 1000:.0f} ms)")


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def expect_status(reply, status, code=None):
    expect(
        reply.status == status and (code is None or reply.error_code() == code),
        f"expected {status} {code or ''}, got {reply.status} {reply.body[:300]!r}",
    )


def fresh(n=10):
    return "".join(random.choice(string.ascii_lowercase) for _ in range(n))


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    smoke = Smoke(sys.argv[1], os.environ.get("ADMIN_TOKEN", ""))
    tag = fresh()
    q = urllib.parse.quote

    def health():
        r = smoke.send("GET", "/healthz")
        expect_status(r, 200)
        expect(r.json() == {"status": "ok"}, f"body {r.body!r}")
        expect(r.headers.get("x-content-type-options") == "nosniff", "no nosniff header")
        expect(len(r.headers.get("x-request-id", "")) >= 16, "no generated x-request-id")

    def unknown_route():
        expect_status(smoke.send("GET", f"/smoke-{tag}"), 404, "not_found")

    def request_id_echoed():
        r = smoke.send("GET", "/healthz", headers={"x-request-id": f"smoke-{tag}"})
        expect(r.headers.get("x-request-id") == f"smoke-{tag}", "x-request-id not echoed")

    def birthdays():
        user = "Smoke" + tag
        expect_status(smoke.send("GET", f"/hello/{user}"), 404, "user_not_found")
        bad = smoke.send("PUT", f"/hello/{user}", {"dateOfBirth": "1990-02-30"})
        expect_status(bad, 400, "invalid_date_of_birth")
        # The refused PUT stored nothing.
        expect_status(smoke.send("GET", f"/hello/{user}"), 404, "user_not_found")
        expect_status(smoke.send("GET", "/hello/not-valid-1"), 400, "invalid_username")

    def shows():
        r = smoke.send("GET", "/api/shows?page=0&size=2")
        expect_status(r, 200)
        expect(isinstance(r.json(), list), "shows page is not an array")
        expect_status(smoke.send("GET", "/api/shows?size=0"), 400, "invalid_query")
        status = smoke.send("GET", "/api/shows/scrape/status")
        expect_status(status, 200)
        for field in ("shows_stored", "phase", "last_run_at", "fetches_last_run", "backoff_until"):
            expect(field in status.json(), f"status lacks {field}")

    def streams():
        # This run's own user (a proxy in front may put the runner's address first:
        # then that is the user, and the stream is still ended below).
        who = {"x-forwarded-for": f"smoke-{tag}"}
        started = smoke.send("POST", "/api/v1/streams", {"video_name": "smoke"}, who)
        expect_status(started, 201)
        stream = started.json()
        smoke.cleanups.append(("DELETE", f"/api/v1/streams/{q(stream['id'])}", who))
        listed = smoke.send("GET", "/api/v1/streams", headers=who)
        expect_status(listed, 200)
        expect(any(s["id"] == stream["id"] for s in listed.json()["active"]), "stream not listed")
        expect_status(smoke.send("POST", f"/api/v1/streams/{q(stream['id'])}/heartbeat", headers=who), 200)
        expect_status(smoke.send("DELETE", f"/api/v1/streams/{q(stream['id'])}", headers=who), 204)
        smoke.cleanups.pop()
        expect_status(smoke.send("DELETE", f"/api/v1/streams/{q(stream['id'])}", headers=who), 404, "stream_not_found")

    def movies_read():
        r = smoke.send("GET", "/api/movies?year=2013&limit=2")
        expect_status(r, 200)
        expect(set(r.json()) == {"items", "next_cursor"}, f"list body {r.body[:200]!r}")
        expect_status(smoke.send("GET", "/api/movies"), 400, "invalid_query")
        doc = smoke.send("GET", "/api/movies/openapi.json")
        expect_status(doc, 200)
        expect(doc.json().get("openapi", "").startswith("3.1"), "not an OpenAPI 3.1 document")

    def docs():
        r = smoke.send("GET", "/docs")
        expect_status(r, 200)
        expect(b"swagger-ui" in r.body, "no Swagger UI page")
        expect("content-security-policy" in r.headers, "no content-security-policy on /docs")

    def graph_read():
        expect_status(smoke.send("GET", f"/api/graph/actors/Smoke%20{tag}"), 404, "actor_not_found")
        expect_status(smoke.send("GET", "/api/graph/path?from=x"), 400, "invalid_query")

    def graph_users():
        a, b = "Smoke" + tag, "Smokefriend" + tag
        expect_status(smoke.send("PUT", f"/api/graph/users/{a}/friends/{b}"), 204)
        smoke.cleanups.append(("DELETE", f"/api/graph/users/{a}/friends/{b}", {}))
        r = smoke.send("GET", f"/api/graph/users/{b}/friends/watched")
        expect_status(r, 200)
        expect_status(smoke.send("DELETE", f"/api/graph/users/{a}/friends/{b}"), 204)
        smoke.cleanups.pop()

    def dynamodb_refuses_unsigned():
        r = smoke.send(
            "POST",
            "/dynamodb",
            {},
            {"x-amz-target": "DynamoDB_20120810.ListTables", "content-type": "application/x-amz-json-1.0"},
        )
        expect(r.status == 400 and b"MissingAuthenticationToken" in r.body, f"got {r.status} {r.body[:200]!r}")

    def admin_refuses_a_wrong_token():
        r = smoke.send("POST", "/api/movies/import", [], {"authorization": "Bearer wrong-" + tag})
        expect(r.status in (401, 503), f"got {r.status}")

    def movie_write_and_graph():
        year, title = 9000 + random.randint(0, 999), f"Smoke {tag}"
        path = f"/api/movies/{year}/{q(title, safe='')}"
        one, two = f"Smoke Actor {tag}", f"Smoke Costar {tag}"
        info = {"actors": [one, two], "directors": [], "rating": 5.0}
        put = smoke.send("PUT", path, {"info": info}, smoke.admin())
        expect_status(put, 200)
        smoke.cleanups.append(("DELETE", path, smoke.admin()))
        expect_status(smoke.send("GET", path), 200)
        actor = smoke.send("GET", f"/api/graph/actors/{q(one, safe='')}")
        expect_status(actor, 200)
        expect(actor.json()["costars"][0]["name"] == two, f"costars {actor.body[:200]!r}")
        expect_status(smoke.send("DELETE", path, headers=smoke.admin()), 204)
        smoke.cleanups.pop()
        expect_status(smoke.send("GET", path), 404, "movie_not_found")
        expect_status(smoke.send("GET", f"/api/graph/actors/{q(one, safe='')}"), 404, "actor_not_found")

    for name, fn in [
        ("healthz", health),
        ("unknown route is a JSON 404", unknown_route),
        ("x-request-id is echoed", request_id_echoed),
        ("birthdays: unknown user, refused date changes nothing", birthdays),
        ("shows: page, bad query, scraper status", shows),
        ("streams: start, list, heartbeat, end", streams),
        ("movies: list, bad query, OpenAPI", movies_read),
        ("docs: Swagger UI with a CSP", docs),
        ("graph: unknown actor, bad query", graph_read),
        ("graph: befriend and unfriend", graph_users),
        ("dynamodb: unsigned call refused", dynamodb_refuses_unsigned),
        ("admin: a wrong token is refused", admin_refuses_a_wrong_token),
    ]:
        smoke.check(name, fn)
    if smoke.admin_token:
        smoke.check("movies + graph: put, read, delete (admin)", movie_write_and_graph)
    else:
        print("skip movies + graph writes: no ADMIN_TOKEN")
    for method, path, headers in reversed(smoke.cleanups):
        smoke.send(method, path, headers=headers)
    print(f"smoke: {smoke.passed} passed, {len(smoke.failed)} failed against {smoke.base}")
    return 1 if smoke.failed else 0


if __name__ == "__main__":
    sys.exit(main())
