#!/usr/bin/env bash
# Installs the Debian packages fieldsync builds and tests with. Idempotent:
# does nothing when every package is already present. Works as root or
# through sudo.
set -euo pipefail

packages=(
    build-essential cmake pkg-config clang clang-format
    libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev libsqlite3-dev
    libssl-dev libgeos-dev libcmocka-dev curl openssl
)

# npm installs the spec tests' validating proxy (scripts/install-prism.sh);
# a Node.js that brings its own npm is kept as it is.
if ! command -v npm >/dev/null 2>&1; then
    packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
        grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
# npm installs the prism CLI of the Pipedrive spec test
# (scripts/install-prism.sh); a Node.js that bundles its own npm will do.
if ! command -v npm >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
