#!/usr/bin/env bash
# Creates the Workers KV namespace(s) of one wrangler environment and writes their ids
# into that environment's section of wrangler.toml.
#
#   scripts/kv-namespaces.sh ENV          ENV: staging | production (an [env.ENV] of wrangler.toml)
#
# For every `[[env.ENV.kv_namespaces]]` binding whose id is still a placeholder (31
# zeros and one hex digit), runs `wrangler kv namespace create BINDING --env ENV`
# (Cloudflare titles it "ENV-BINDING"), reads the new id from wrangler's output and
# writes it in place of the placeholder. Idempotent: a binding that already has a real
# id is left alone, and when the namespace exists on the account but not in the file
# (an earlier run that could not write it), its id is looked up with
# `wrangler kv namespace list` instead of failing.
#
# Needs Cloudflare credentials (CLOUDFLARE_API_TOKEN + CLOUDFLARE_ACCOUNT_ID, or
# `npx wrangler login`). Review and commit the wrangler.toml change afterwards.
# Environment: WRANGLER (default `npx wrangler`), WRANGLER_CONFIG (default wrangler.toml
# at the repository root).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "") usage >&2; exit 2 ;;
esac
env_name=$1
root=$(cd "$(dirname "$0")/.." && pwd)
config=${WRANGLER_CONFIG:-$root/wrangler.toml}
read -r -a wrangler <<<"${WRANGLER:-npx wrangler}"
export WRANGLER_SEND_METRICS=${WRANGLER_SEND_METRICS:-false}

log() { printf 'kv-namespaces[%s]: %s\n' "$env_name" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $env_name =~ ^[A-Za-z0-9_-]+$ ]] || die "not an environment name: $env_name"
grep -q "^\[env\.$env_name\]" "$config" || die "$config has no [env.$env_name] section"

# The bindings of [[env.ENV.kv_namespaces]] tables, one "BINDING ID" per line.
env_bindings() {
  awk -v header="[[env.$env_name.kv_namespaces]]" '
    function flush() { if (inside && binding != "") print binding, (id == "" ? "-" : id) }
    /^[ \t]*\[/ { flush(); inside = ($0 == header); binding = ""; id = ""; next }
    inside && match($0, /^[ \t]*binding[ \t]*=[ \t]*"[^"]*"/) { split($0, q, "\""); binding = q[2] }
    inside && match($0, /^[ \t]*id[ \t]*=[ \t]*"[^"]*"/) { split($0, q, "\""); id = q[2] }
    END { flush() }
  ' "$config"
}

is_placeholder() { [[ $1 == - || $1 =~ ^0{31}[0-9a-f]$ ]]; }

# Replaces the id of BINDING in the env's kv_namespaces table, atomically.
write_id() {
  local binding=$1 id=$2 tmp
  tmp=$(mktemp "$config.XXXXXX")
  awk -v header="[[env.$env_name.kv_namespaces]]" -v binding="$binding" -v id="$id" '
    function flush(   i) {
      for (i = 1; i <= n; i++) {
        if (mine && i == idline) { sub(/"[^"]*"/, "\"" id "\"", buf[i]); done = 1 }
        print buf[i]
      }
      n = 0; mine = 0; idline = 0
    }
    /^[ \t]*\[/ { flush(); inside = ($0 == header) }
    {
      if (inside && $0 ~ /^[ \t]*binding[ \t]*=/) { split($0, q, "\""); if (q[2] == binding) mine = 1 }
      if (inside && $0 ~ /^[ \t]*id[ \t]*=/) idline = n + 1
      buf[++n] = $0
    }
    END { flush(); exit(done ? 0 : 1) }
  ' "$config" >"$tmp" || { rm -f "$tmp"; die "no id line for $binding under [[env.$env_name.kv_namespaces]]"; }
  chmod --reference="$config" "$tmp" 2>/dev/null || true
  mv "$tmp" "$config"
}

# The id of the namespace titled TITLE on the account, from `kv namespace list` (JSON).
lookup_id() {
  local title=$1
  "${wrangler[@]}" kv namespace list 2>/dev/null | TITLE=$title node -e '
    let s = "";
    process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const list = JSON.parse(s.slice(s.indexOf("[")));
      const hit = list.find((ns) => ns.title === process.env.TITLE);
      if (hit) console.log(hit.id);
    });'
}

bindings=$(env_bindings)
[ -n "$bindings" ] || die "[env.$env_name] has no [[env.$env_name.kv_namespaces]] binding"
while read -r binding id; do
  if ! is_placeholder "$id"; then
    log "$binding already has id $id: left as is"
    continue
  fi
  title="$env_name-$binding"
  log "creating KV namespace \"$title\" for binding $binding"
  set +e
  output=$("${wrangler[@]}" kv namespace create "$binding" --env "$env_name" 2>&1)
  status=$?
  set -e
  printf '%s\n' "$output" | sed 's/^/  | /' >&2
  # wrangler prints the binding to add as a config snippet: TOML `id = "…"` for a
  # wrangler.toml, JSON `"id": "…"` for a wrangler.json(c). Ids are 32 hex digits.
  new_id=$(printf '%s\n' "$output" | sed -n -E 's/^[[:space:]]*"?id"?[[:space:]]*[:=][[:space:]]*"([0-9a-f]{32})".*$/\1/p' | tail -n 1)
  if [ -z "$new_id" ] && printf '%s' "$output" | grep -q "already exists"; then
    log "\"$title\" already exists on the account: looking its id up"
    new_id=$(lookup_id "$title")
  fi
  if [ -z "$new_id" ]; then
    die "could not read the new namespace id from wrangler (exit $status)"
  fi
  write_id "$binding" "$new_id"
  log "$binding = $new_id written to ${config#"$root"/} [env.$env_name]"
done <<<"$bindings"

# Read back what is now in the file.
env_bindings | while read -r binding id; do
  is_placeholder "$id" && die "$binding still has the placeholder id $id"
  log "ok: $binding -> $id"
done
