#!/usr/bin/env bash
# `make run`: serves the app on 127.0.0.1:3000 (PORT overrides) with real Spin when a
# `spin` binary is on PATH, else with workerd through `wrangler dev`.
#
# Spin runs the scraper on its cron trigger, which is a plugin. Without the plugin
# `spin up` refuses the whole application ("Couldn't find trigger executor"), so then
# this serves the HTTP components only (`spin up --component-id …`, one per HTTP
# trigger in spin.toml) and says how to install the plugin; `POST /api/shows/scrape`
# (admin) still runs a scraper tick on demand.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${PORT:-3000}"
spin="${SPIN:-spin}"
cron_plugin_url="https://github.com/fermyon/spin-trigger-cron/releases/download/canary/trigger-cron.json"

if ! command -v "$spin" >/dev/null 2>&1; then
  echo "make run: spin is not installed; serving with workerd (wrangler dev)"
  exec env WRANGLER_SEND_METRICS=false npx wrangler dev --ip 127.0.0.1 --port "$port"
fi

# The components named by [[trigger.http]] entries, in manifest order.
http_components() {
  awk '
    /^\[\[trigger\./ { http = ($0 ~ /^\[\[trigger\.http\]\]/); next }
    /^\[/ { http = 0; next }
    http && $1 == "component" { gsub(/[" ]/, "", $3); print $3 }
  ' spin.toml
}

"${MAKE:-make}" components
plugins=$("$spin" plugins list --installed 2>/dev/null || true)
if grep -q '^trigger-cron ' <<<"$plugins"; then
  echo "make run: serving with Spin (spin up), scraper on the cron trigger"
  exec "$spin" up --listen "127.0.0.1:$port"
fi

args=()
for component in $(http_components); do
  args+=(--component-id "$component")
done
cat <<EOF
make run: serving with Spin (spin up), HTTP components only: the trigger-cron plugin is
not installed, so the scraper does not run on a schedule (POST /api/shows/scrape with
the admin token runs one tick). To run it on its cron schedule:
  $spin plugins install --url $cron_plugin_url
EOF
exec "$spin" up --listen "127.0.0.1:$port" "${args[@]}"
