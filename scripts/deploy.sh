#!/usr/bin/env bash
# Zero-downtime gradual deploy of the Worker to one wrangler environment, with
# wrangler's own versions and deployments (docs/OPERATIONS.md):
#
#   scripts/deploy.sh [--dry-run] staging|production
#
#  1. finds the version serving now (`wrangler deployments status --json`); a Worker
#     with no deployment yet gets a plain `wrangler deploy` and the health gate;
#  2. uploads the new version without traffic (`wrangler versions upload`, which builds
#     the Worker through wrangler.toml's [build]);
#  3. smoke-tests it before it takes traffic: at its preview URL when Cloudflare made one,
#     else (always, for a Worker with Durable Objects: Cloudflare makes no preview URLs
#     for those) by deploying it at 0% and pinning the smoke test's requests to it with
#     the `Cloudflare-Workers-Version-Overrides` header;
#  4. shifts traffic in steps (DEPLOY_STEPS, default 10 50 100 percent) with
#     `wrangler versions deploy NEW@P% OLD@(100-P)%`; after each, waits SOAK_SECONDS and
#     runs the health gate: HEALTH_CHECKS polls of $DEPLOY_BASE_URL/healthz pinned to the
#     new version and as many unpinned, all must answer 200, then `make smoke`;
#  5. at 100%, applies the non-versioned settings (cron, routes): `wrangler triggers deploy`.
#
# Any failure after the upload — smoke test, gate, wrangler error, Ctrl-C or a cancelled
# CI job — runs `wrangler rollback OLD` (100% back to the version that served before)
# and exits non-zero. A new Durable Object migration cannot go through a gradual
# rollout: deploy such a change with `npx wrangler deploy --env ENV`.
#
# --dry-run bundles the Worker for ENV (`wrangler deploy --dry-run`) and prints the plan;
# it needs no account.
#
# Environment:
#   DEPLOY_BASE_URL       required: the URL ENV serves, e.g. https://edge-backends-staging.<subdomain>.workers.dev
#   ADMIN_TOKEN           required: ENV's admin token (`make smoke` writes with it)
#   CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID   wrangler's credentials (or `wrangler login`)
#   DEPLOY_STEPS          traffic steps in percent, ending at 100 (default "10 50 100")
#   SOAK_SECONDS          wait at each step before its gate (default 60)
#   HEALTH_CHECKS         /healthz polls per gate, each pinned and unpinned (default 10)
#   HEALTH_INTERVAL       seconds between polls (default 2)
#   WRANGLER, MAKE        commands to run (default `npx wrangler`, `make`)
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

dry_run=0
env_name=
for arg in "$@"; do
  case "$arg" in
    -h | --help) usage; exit 0 ;;
    --dry-run) dry_run=1 ;;
    -*) echo "deploy: unknown option $arg (see --help)" >&2; exit 2 ;;
    *) [ -z "$env_name" ] || { echo "deploy: one environment only" >&2; exit 2; }; env_name=$arg ;;
  esac
done
case "$env_name" in
  staging | production) ;;
  *) usage >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
read -r -a wrangler <<<"${WRANGLER:-npx wrangler}"
read -r -a make_cmd <<<"${MAKE:-make}"
export WRANGLER_SEND_METRICS=${WRANGLER_SEND_METRICS:-false}
steps=${DEPLOY_STEPS:-10 50 100}
soak=${SOAK_SECONDS:-60}
checks=${HEALTH_CHECKS:-10}
interval=${HEALTH_INTERVAL:-2}
work=$(mktemp -d)

log() { printf '%s deploy[%s]: %s\n' "$(date -u +%H:%M:%SZ)" "$env_name" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# --- the plan, offline ----------------------------------------------------------------
if [ "$dry_run" = 1 ]; then
  log "dry run: bundling the Worker for --env $env_name"
  "${wrangler[@]}" deploy --dry-run --env "$env_name" --outdir "$work/bundle"
  log "bundle: $(find "$work/bundle" -maxdepth 1 -type f -printf '%f ')"
  log "plan: versions upload -> smoke test pinned to the new version -> $steps% (soak ${soak}s, gate: $checks+$checks /healthz polls + make smoke) -> triggers deploy; rollback on any failure"
  rm -rf "$work"
  exit 0
fi

[ -n "${DEPLOY_BASE_URL:-}" ] || die "DEPLOY_BASE_URL is not set (the URL $env_name serves)"
[ -n "${ADMIN_TOKEN:-}" ] || die "ADMIN_TOKEN is not set ($env_name's admin token, for the smoke test)"
base=${DEPLOY_BASE_URL%/}
case " $steps " in *" 100 "*) ;; *) die "DEPLOY_STEPS must end at 100: $steps" ;; esac

# --- rollback on any failure once a new version may serve ------------------------------
old=
new=
worker=
shifting=0
finish() {
  local status=$?
  if [ "$shifting" = 1 ] && [ "$status" != 0 ]; then
    log "rolling back: 100% to $old"
    if "${wrangler[@]}" rollback "$old" --env "$env_name" -y \
      --message "deploy.sh: rollout of ${new:-the new version} failed" >&2; then
      log "rolled back to $old; the failed version $new stays uploaded (wrangler versions list)"
    else
      log "ROLLBACK FAILED: run \`npx wrangler rollback $old --env $env_name\` now"
    fi
  fi
  rm -rf "$work"
  exit "$status"
}
trap finish EXIT
trap 'log "interrupted"; exit 130' INT TERM

# `node -e` reads wrangler's JSON: node is a prerequisite of the project anyway.
json() { node -e "$1"; }

# --- health gate ----------------------------------------------------------------------
override_header() { printf 'Cloudflare-Workers-Version-Overrides: %s="%s"' "$worker" "$new"; }

poll_health() { # poll_health LABEL [HEADER]
  local label=$1 header=${2:-} i code bad=0
  for ((i = 1; i <= checks; i++)); do
    if [ -n "$header" ]; then
      code=$(curl -sS -o /dev/null -m 10 -w '%{http_code}' -H "$header" "$base/healthz" || true)
    else
      code=$(curl -sS -o /dev/null -m 10 -w '%{http_code}' "$base/healthz" || true)
    fi
    [ "$code" = 200 ] || { bad=$((bad + 1)); log "  $label /healthz poll $i: $code"; }
    [ "$i" = "$checks" ] || sleep "$interval"
  done
  [ "$bad" = 0 ] || { log "  $label: $bad of $checks /healthz polls failed"; return 1; }
  log "  $label: $checks/$checks /healthz polls answered 200"
}

smoke() { # smoke URL [HEADER]: the smoke suite, its requests pinned by HEADER if given
  log "  make smoke BASE_URL=$1${2:+ (SMOKE_HEADER: $2)}"
  SMOKE_HEADER=${2:-} "${make_cmd[@]}" --no-print-directory smoke BASE_URL="$1" >&2
}

gate() { # gate LABEL
  log "gate $1: health of $base, pinned to $new and unpinned"
  poll_health "pinned" "$(override_header)" || return 1
  poll_health "unpinned" || return 1
  smoke "$base" "$(override_header)" || { log "  smoke test failed"; return 1; }
  log "gate $1 passed"
}

# --- 1. what serves now ----------------------------------------------------------------
log "reading the current deployment"
if status_json=$("${wrangler[@]}" deployments status --env "$env_name" --json 2>"$work/status.err"); then
  current=$(printf '%s' "$status_json" | json '
    let s = require("fs").readFileSync(0, "utf8");
    const d = JSON.parse(s.slice(s.indexOf("{")));
    const v = d.versions || [];
    console.log(v.map((x) => x.version_id + "@" + x.percentage).join(" "));')
  case "$current" in
    *" "*) die "a split deployment is live ($current): finish it (\`npx wrangler versions deploy\`) or roll it back (\`npx wrangler rollback VERSION --env $env_name\`) first" ;;
    "") die "could not read the current version from: $status_json" ;;
  esac
  old=${current%@*}
  log "serving now: $old (100%)"
elif grep -qiE "has no deployments|does not exist on your account|code: 10007" "$work/status.err"; then
  # --- first deploy: nothing to roll back to ----------------------------------------
  log "no deployment yet: first deploy with \`wrangler deploy\` (applies migrations and triggers)"
  "${wrangler[@]}" deploy --env "$env_name" >&2
  worker=$(awk -v h="[env.$env_name]" '$0 == h {f = 1; next} /^\[/ {f = 0} f && /^name *=/ {split($0, q, "\""); print q[2]; exit}' wrangler.toml)
  new=unused
  poll_health "first deploy" || die "the first deploy is unhealthy (nothing to roll back to)"
  smoke "$base" || die "the first deploy fails its smoke test (nothing to roll back to)"
  log "done: first deploy of $env_name is live"
  exit 0
else
  cat "$work/status.err" >&2
  die "wrangler deployments status failed"
fi

# --- 2. upload the new version ---------------------------------------------------------
rev=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
log "uploading the new version (commit $rev)"
WRANGLER_OUTPUT_FILE_PATH="$work/upload.ndjson" "${wrangler[@]}" versions upload \
  --env "$env_name" --tag "$rev" --message "deploy.sh $env_name $rev" | tee "$work/upload.log" >&2
# wrangler writes one JSON line per command to WRANGLER_OUTPUT_FILE_PATH; the upload's
# is {"type":"version-upload","version_id":…,"preview_url":…,"worker_name":…}.
read -r new preview worker < <(json '
  const fs = require("fs");
  const f = process.argv[1];
  const lines = fs.existsSync(f) ? fs.readFileSync(f, "utf8").split("\n").filter(Boolean) : [];
  const e = lines.map((l) => JSON.parse(l)).filter((x) => x.type === "version-upload").pop() || {};
  console.log([e.version_id || "-", e.preview_url || "-", e.worker_name || "-"].join(" "));' \
  "$work/upload.ndjson")
if [ "$new" = - ]; then # older output format: "Worker Version ID: <uuid>"
  new=$(sed -n -E 's/^.*Worker Version ID: ([0-9a-f-]{36}).*$/\1/p' "$work/upload.log" | tail -n 1)
fi
[ -n "$new" ] && [ "$new" != - ] || die "could not read the new version id from wrangler's output"
[ "$worker" != - ] || worker=$(awk -v h="[env.$env_name]" '$0 == h {f = 1; next} /^\[/ {f = 0} f && /^name *=/ {split($0, q, "\""); print q[2]; exit}' wrangler.toml)
[ "$new" != "$old" ] || die "the uploaded version is the one already serving ($new)"
log "uploaded $worker version $new"

# --- 3. smoke test before any traffic --------------------------------------------------
shifting=1 # from here on, any failure rolls back
if [ "$preview" != - ]; then
  log "smoke test at the version's preview URL $preview"
  smoke "$preview" || die "the new version fails its smoke test at $preview"
else
  log "no preview URL (Cloudflare makes none for a Worker with Durable Objects): deploying $new at 0% to smoke-test it pinned"
  "${wrangler[@]}" versions deploy "$new@0%" "$old@100%" --env "$env_name" -y \
    --message "deploy.sh: $rev at 0% for its smoke test" >&2
  sleep "${OVERRIDE_PROPAGATION_SECONDS:-5}" # overrides apply once the deployment has propagated
  gate "0% (pinned smoke test)" || die "the new version fails before taking traffic"
fi

# --- 4. shift traffic -------------------------------------------------------------------
for p in $steps; do
  if [ "$p" = 100 ]; then
    specs=("$new@100%")
  else
    specs=("$new@$p%" "$old@$((100 - p))%")
  fi
  log "traffic: ${specs[*]}"
  "${wrangler[@]}" versions deploy "${specs[@]}" --env "$env_name" -y \
    --message "deploy.sh: $rev at $p%" >&2
  log "soaking ${soak}s at $p%"
  sleep "$soak" & wait $! # (in the background, so that a signal rolls back at once)
  gate "$p%" || die "the gate at $p% failed"
done

# --- 5. non-versioned settings -----------------------------------------------------------
shifting=0 # the new version serves everything and passed its gates
log "applying triggers (cron, routes): wrangler triggers deploy"
"${wrangler[@]}" triggers deploy --env "$env_name" >&2 ||
  die "triggers deploy failed: version $new serves 100%, but cron/routes are not updated"
log "done: $worker serves version $new at 100% (previous: $old)"
