#!/bin/sh
# Installs Stoplight's prism CLI (the validating proxy the Pipedrive spec
# test puts between fieldsync and crmsim) from npm into a folder of the
# build, pinned to a version that runs on Node 20. Idempotent: a folder
# that already holds that version is left as it is. Prints the path of
# the prism program on success.
#   scripts/install-prism.sh [DIR]     (default: build/prism)
set -eu

PRISM_VERSION=5.14.2
dir=${1:-build/prism}
bin="$dir/node_modules/.bin/prism"
stamp="$dir/.installed-$PRISM_VERSION"

if [ -x "$bin" ] && [ -f "$stamp" ]; then
    echo "$bin"
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "install-prism: npm is not installed (scripts/install-deps.sh)" >&2
    exit 1
fi
mkdir -p "$dir"
# A package.json of its own, so npm installs here and nowhere else.
[ -f "$dir/package.json" ] ||
    printf '{"name":"fieldsync-prism","private":true}\n' >"$dir/package.json"
npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
    "@stoplight/prism-cli@$PRISM_VERSION" >&2
"$bin" --version >/dev/null
touch "$stamp"
echo "$bin"
