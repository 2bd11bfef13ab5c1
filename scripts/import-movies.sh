#!/usr/bin/env bash
# Loads a moviedata.json file (AWS's sample, or any JSON array of {year, title, info})
# into a running deployment through POST /api/movies/import, in chunks, with progress.
#
#   ADMIN_TOKEN=s3cret scripts/import-movies.sh http://127.0.0.1:3000 moviedata.json
#   scripts/import-movies.sh --token s3cret https://edge-backends.example.workers.dev data.json
#
# Every item is checked first with the server's rules (nothing is sent if one is bad).
# Items are grouped by year and years are packed into chunks of at most --chunk-bytes
# (default 1 MiB; the endpoint takes up to 8 MiB), so each year is written once: the
# whole sample is 3 requests and 92 storage writes. Smaller chunks mean less CPU per
# request (Workers' free plan allows 10 ms); a year bigger than a chunk is split, which
# is still correct (an import merges with what is stored) but writes that year again.
# Network errors, 429 and 5xx are retried with backoff; any other error stops the run.
# Re-running an import is harmless: movies are replaced by year and title.
#
# Options: --token T (else $ADMIN_TOKEN), --chunk-bytes N, --dry-run (validate and show
# the chunks, send nothing). Needs Node.js >= 20 (which the project already requires).
set -euo pipefail
exec node --input-type=module - "$@" <<'EOF'
const usage = `usage: import-movies.sh [--token T] [--chunk-bytes N] [--dry-run] BASE_URL FILE
  BASE_URL  the deployment, e.g. http://127.0.0.1:3000 (POSTs to BASE_URL/api/movies/import)
  FILE      a JSON array of movies in moviedata.json's shape
  --token   admin token (default: $ADMIN_TOKEN)`;

const fail = (message) => { console.error(`import-movies: ${message}`); process.exit(1); };

const args = process.argv.slice(2);
let token = process.env.ADMIN_TOKEN ?? "";
let chunkBytes = 1024 * 1024;
let dryRun = false;
const positional = [];
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === "--token") token = args[++i] ?? fail("--token needs a value");
  else if (arg === "--chunk-bytes") chunkBytes = Number(args[++i]);
  else if (arg === "--dry-run") dryRun = true;
  else if (arg === "-h" || arg === "--help") { console.log(usage); process.exit(0); }
  else if (arg.startsWith("--")) fail(`unknown option ${arg}\n${usage}`);
  else positional.push(arg);
}
if (positional.length !== 2) fail(usage);
const MAX_BODY = 8 * 1024 * 1024;
if (!Number.isInteger(chunkBytes) || chunkBytes < 1024 || chunkBytes > MAX_BODY) {
  fail(`--chunk-bytes must be a whole number from 1024 to ${MAX_BODY}`);
}
const [base, file] = positional;
const endpoint = `${base.replace(/\/+$/, "")}/api/movies/import`;
if (!dryRun && !token) fail("no admin token: set ADMIN_TOKEN or pass --token");

const { readFileSync } = await import("node:fs");
let items;
try {
  items = JSON.parse(readFileSync(file, "utf8"));
} catch (e) {
  fail(`${file}: ${e.message}`);
}
if (!Array.isArray(items)) fail(`${file}: not a JSON array`);

// The server's rules (components/movies/src/domain.rs), so a bad file sends nothing.
const utf8 = (s) => Buffer.byteLength(s, "utf8");
items.forEach((item, index) => {
  const bad = (reason) => fail(`${file}: item at index ${index}: ${reason}; nothing was sent`);
  if (item === null || typeof item !== "object" || Array.isArray(item)) bad("an item must be a JSON object");
  if (!("year" in item)) bad("`year` is missing");
  if (!Number.isInteger(item.year) || item.year < 0 || item.year > 9999) bad("`year` must be a whole number from 0 to 9999");
  if (!("title" in item)) bad("`title` is missing");
  if (typeof item.title !== "string") bad("`title` must be a string");
  if (item.title === "") bad("the title must not be empty");
  if (utf8(item.title) > 1024) bad("the title must be at most 1024 bytes of UTF-8");
  if (item.title === "." || item.title === "..") bad("the title cannot be `.` or `..`");
  if ("info" in item && (item.info === null || typeof item.info !== "object" || Array.isArray(item.info))) {
    bad("`info` must be a JSON object when present");
  }
});

// Years in order; each year's items serialized once. Only year, title and info are sent.
const byYear = new Map();
for (const { year, title, info } of items) {
  if (!byYear.has(year)) byYear.set(year, []);
  byYear.get(year).push(JSON.stringify(info === undefined ? { year, title } : { year, title, info }));
}
const years = [...byYear.keys()].sort((a, b) => a - b);

// Chunks: whole years packed up to chunkBytes; a year bigger than that is split.
const chunks = [];
let current = { parts: [], bytes: 2, years: new Set() };
const flush = () => { if (current.parts.length) chunks.push(current); current = { parts: [], bytes: 2, years: new Set() }; };
for (const year of years) {
  const parts = byYear.get(year);
  const yearBytes = parts.reduce((n, p) => n + utf8(p) + 1, 0);
  if (current.bytes + yearBytes > chunkBytes) flush();
  for (const part of parts) {
    const size = utf8(part) + 1;
    if (size + 2 > MAX_BODY) fail(`a movie of ${year} is over 8 MiB on its own`);
    if (current.bytes + size > chunkBytes && current.parts.length) flush();
    current.parts.push(part);
    current.bytes += size;
    current.years.add(year);
  }
}
flush();

const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;
const span = (set) => { const ys = [...set]; return ys.length === 1 ? `${ys[0]}` : `${ys[0]}–${ys[ys.length - 1]}`; };
console.log(`${file}: ${items.length} movies, ${years.length} years -> ${chunks.length} request(s) of at most ${kib(chunkBytes)} to ${endpoint}`);
if (dryRun) {
  chunks.forEach((c, i) => console.log(`  [${i + 1}/${chunks.length}] years ${span(c.years)}: ${c.parts.length} movies, ${kib(c.bytes)}`));
  process.exit(0);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function post(body) {
  for (let attempt = 1; ; attempt++) {
    let status, text;
    try {
      const res = await fetch(endpoint, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body,
      });
      status = res.status;
      text = await res.text();
    } catch (e) {
      status = 0;
      text = e.cause?.message ?? e.message;
    }
    if (status === 200) return JSON.parse(text);
    const retry = status === 0 || status === 429 || status >= 500 && status !== 503
      || status === 503 && !text.includes("admin_disabled");
    if (!retry || attempt >= 5) fail(`POST ${endpoint}: ${status || "network error"} ${text}`);
    const wait = 1000 * 2 ** (attempt - 1);
    console.log(`    ${status || "network error"}; retrying in ${wait / 1000} s`);
    await sleep(wait);
  }
}

const started = Date.now();
let done = 0;
for (const [i, chunk] of chunks.entries()) {
  const t = Date.now();
  const reply = await post(`[${chunk.parts.join(",")}]`);
  done += chunk.parts.length;
  console.log(`  [${i + 1}/${chunks.length}] years ${span(chunk.years)}: ${chunk.parts.length} movies, ${kib(chunk.bytes)} -> imported ${reply.imported} in ${((Date.now() - t) / 1000).toFixed(1)} s (${done}/${items.length})`);
}
console.log(`done: ${done} movies in ${chunks.length} request(s), ${((Date.now() - started) / 1000).toFixed(1)} s`);
EOF
