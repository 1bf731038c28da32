#!/usr/bin/env bash
# Installs the Debian packages fieldsync builds and tests with. Idempotent:
# does nothing when every package is already present. Works as root or
# through sudo.
set -euo pipefail

packages=(
    build-essential cmake pkg-config clang clang-format libclang-rt-dev
    libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev libsqlite3-dev
    libssl-dev libgeos-dev libcmocka-dev curl openssl
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
        grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
