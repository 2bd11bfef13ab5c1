#!/usr/bin/env bash
# Makes `wrangler dev` deliver cron events to a Worker that has static assets, as
# production does. miniflare 4.20260426 (our wrangler 4.86's) puts an RPC proxy in
# front of such a Worker that forwards `scheduled` by RPC with the ScheduledController
# as its argument, which cannot be serialized: every /cdn-cgi/handler/scheduled answers
# "exception" (workers-sdk issue #9882). Upstream fixed it in miniflare 4.20260605
# (workers-sdk PR #14177), but every wrangler/miniflare from then on needs Node 22 and
# this machine's is Node 20. The patch gives the proxy a `scheduled` method that
# forwards the event's two fields (scheduledTime, cron), which serialize. Idempotent;
# setup.sh runs it after `npm ci`. Drop it when package.json moves to wrangler >= 4.98.
set -euo pipefail
cd "$(dirname "$0")/.."
proxy=node_modules/miniflare/dist/src/workers/assets/rpc-proxy.worker.js
marker="edge-backends: scheduled over RPC"
if grep -q "$marker" "$proxy"; then
  exit 0
fi
anchor='  async fetch(request) {'
grep -qF "$anchor" "$proxy" || {
  echo "patch-miniflare: $proxy has changed shape; check whether workers-sdk#9882 is fixed in this version" >&2
  exit 1
}
python3 - "$proxy" "$marker" <<'PY'
import sys
path, marker = sys.argv[1], sys.argv[2]
text = open(path).read()
method = (
    f"  // {marker} (workers-sdk#9882; see scripts/patch-miniflare.sh)\n"
    "  async scheduled(controller) {\n"
    "    await this.env.USER_WORKER.scheduled({ scheduledTime: new Date(controller.scheduledTime), cron: controller.cron });\n"
    "  }\n"
)
text = text.replace("  async fetch(request) {", method + "  async fetch(request) {", 1)
open(path, "w").write(text)
PY
echo "patch-miniflare: patched $proxy"
