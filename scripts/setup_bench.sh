#!/bin/sh
# setup_bench.sh: installs the peers of the model benchmark (bench/models.py) that are not Debian
# packages: ONNX Runtime through the npm package onnxruntime-node, which bundles its CPU library
# for linux/x64. Its postinstall script would also fetch the CUDA execution provider from NuGet;
# ONNXRUNTIME_NODE_INSTALL=skip (read by its script/install-utils.js) skips that download.
#
# Installs into $KILN_ORT_DIR (default ~/.cache/kiln-bench/ort), outside the checkout, so nothing
# lands in git; bench/models.py and bench/ort.js look there (NODE_PATH=$KILN_ORT_DIR/node_modules).
# Idempotent: does nothing when the pinned version is already there. Needs node + npm
# (scripts/setup.sh installs them).
set -eu

ORT_VERSION=${KILN_ORT_VERSION:-1.30.0}
dir=${KILN_ORT_DIR:-$HOME/.cache/kiln-bench/ort}

if ! command -v npm >/dev/null 2>&1; then
  echo "setup_bench: npm not found (run scripts/setup.sh first)" >&2
  exit 1
fi

pkg="$dir/node_modules/onnxruntime-node/package.json"
if [ -f "$pkg" ] && grep -q "\"version\": \"$ORT_VERSION\"" "$pkg"; then
  echo "setup_bench: onnxruntime-node $ORT_VERSION present in $dir"
  exit 0
fi

mkdir -p "$dir"
# A private package.json so that npm installs here and not into some parent project.
if [ ! -f "$dir/package.json" ]; then
  printf '{ "name": "kiln-bench-ort", "private": true }\n' > "$dir/package.json"
fi
echo "setup_bench: installing onnxruntime-node $ORT_VERSION into $dir (CPU only)"
ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix "$dir" --no-audit --no-fund \
  "onnxruntime-node@$ORT_VERSION"
# Check that the binding loads (the bundled libonnxruntime.so must work on this glibc).
NODE_PATH="$dir/node_modules" node -e \
  "const o = require('onnxruntime-node'); console.log('setup_bench: onnxruntime-node loads, backends:', Object.keys(o.env.versions || {}).join(' ') || 'ok')"
