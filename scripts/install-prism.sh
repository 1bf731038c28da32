#!/usr/bin/env bash
# Installs Stoplight's Prism CLI (the OpenAPI validating proxy the
# integration tests put between fieldsync and a simulator) from npm into a
# folder of the build tree, pinned, and prints the path of its binary.
# Idempotent: does nothing when that version is already there. Shared by
# every CRM's spec test; node_modules stays in the build tree, never in
# git.
#
#   scripts/install-prism.sh DIR      # e.g. build/tools/prism
set -euo pipefail

PRISM_VERSION=5.14.2 # the newest release whose engines take Node 18 and 20

dir=${1:?usage: install-prism.sh DIR}
bin="$dir/node_modules/.bin/prism"
stamp="$dir/.installed-$PRISM_VERSION"

if [ -x "$bin" ] && [ -f "$stamp" ]; then
    echo "$bin"
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "install-prism: npm is missing (scripts/install-deps.sh installs it)" >&2
    exit 1
fi
mkdir -p "$dir"
# A package.json of its own, so npm installs here and not in a parent.
[ -f "$dir/package.json" ] ||
    echo '{"name":"fieldsync-tools","private":true}' >"$dir/package.json"
npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error \
    "@stoplight/prism-cli@$PRISM_VERSION" >&2
rm -f "$dir"/.installed-*
touch "$stamp"
echo "$bin"
