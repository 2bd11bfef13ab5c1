#!/usr/bin/env bash
# Gathers the files GET /docs serves into build/docs-assets/docs/ (gitignored): the page
# and its initializer from components/docs/static/, and Swagger UI's CSS, bundle and
# favicons from npm swagger-ui-dist (node_modules/, `npm ci`); and the OpenAPI document
# (components/docs/openapi.json) into build/docs-assets/api/. They are static files
# of the deployment, not part of any wasm: Spin mounts docs/ into the docs component and
# api/ into the movies component (spin.toml `files`), wrangler uploads build/docs-assets
# as the Worker's static assets (wrangler.toml `[assets]`), the native test server reads
# it from disk.
#
# Run by scripts/setup.sh, scripts/build-worker.sh and `make components`. A file whose
# content is already in place is left alone (wrangler dev watches the folder); files
# the list does not name are removed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dist=$root/node_modules/swagger-ui-dist
static=$root/components/docs/static
out=$root/build/docs-assets/docs

ours=(index.html swagger-initializer.js)
theirs=(swagger-ui.css swagger-ui-bundle.js favicon-32x32.png favicon-16x16.png)

if [ ! -f "$dist/package.json" ]; then
  echo "docs-assets: $dist is missing: run \`npm ci\` (scripts/setup.sh does)" >&2
  exit 1
fi

mkdir -p "$out"
place() { # source, name: copies unless identical, through a temporary name
  if ! cmp -s "$1" "$out/$2"; then
    cp "$1" "$out/.$2.tmp"
    mv -f "$out/.$2.tmp" "$out/$2"
  fi
}
for name in "${ours[@]}"; do place "$static/$name" "$name"; done
for name in "${theirs[@]}"; do place "$dist/$name" "$name"; done

# Nothing else may be uploaded as an asset.
keep=" ${ours[*]} ${theirs[*]} "
for path in "$out"/* "$out"/.[!.]*; do
  [ -e "$path" ] || continue
  name=$(basename "$path")
  case "$keep" in *" $name "*) ;; *) rm -rf "$path" ;; esac
done
# The OpenAPI document (GET /api/movies/openapi.json, the docs crate's OPENAPI_PATH),
# in a folder of its own: on Spin only the movies component mounts it.
api=$root/build/docs-assets/api
mkdir -p "$api"
if ! cmp -s "$root/components/docs/openapi.json" "$api/openapi.json"; then
  cp "$root/components/docs/openapi.json" "$api/.openapi.json.tmp"
  mv -f "$api/.openapi.json.tmp" "$api/openapi.json"
fi
find "$api" -mindepth 1 ! -name openapi.json -exec rm -rf {} +
find "$root/build/docs-assets" -mindepth 1 -maxdepth 1 ! -name docs ! -name api -exec rm -rf {} +
