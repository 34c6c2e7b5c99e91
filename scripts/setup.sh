#!/bin/sh
# setup.sh: installs the Debian 12 packages kiln needs, skipping those already present.
# Idempotent; needs root (or sudo) only when something is missing.
set -eu

PACKAGES="gcc libc6-dev binutils pkg-config meson ninja-build
  llvm-19-dev lld-19 libsqlite3-dev libcjson-dev check libsubunit-dev
  libprotobuf-c-dev protobuf-c-compiler libonnx-dev libxgboost-dev
  qemu-user gcc-aarch64-linux-gnu libc6-arm64-cross libc6-dev-arm64-cross
  libopenblas-dev python3 python3-numpy python3-onnx python3-torch python3-torchvision
  python3-pytest libdnnl-dev python3-matplotlib"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

# The model benchmark's ONNX Runtime peer runs on Node.js (bench/ort.js; scripts/setup_bench.sh
# then installs onnxruntime-node with npm). A node installed otherwise (e.g. NodeSource's
# nodejs, which bundles npm) is kept: Debian's npm package would conflict with it.
if ! command -v node >/dev/null 2>&1; then
  missing="$missing nodejs npm"
elif ! command -v npm >/dev/null 2>&1; then
  missing="$missing npm"
fi

if [ -z "$missing" ]; then
  echo "setup: all packages present"
  exit 0
fi

echo "setup: installing$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
