#!/bin/sh
# Builds and runs the op benchmark: bench/run.sh [--quick]
# Configures build/ (or $KILN_BUILD_DIR) with meson if needed, builds bench/kiln-bench-ops with
# ninja and runs it; the markdown table goes to stdout, correctness checks to stderr.
# Needs OpenBLAS (libopenblas-dev) and the top-level meson.build's subdir('bench').
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${KILN_BUILD_DIR:-$root/build}
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$root"
fi
ninja -C "$build" bench/kiln-bench-ops
exec "$build/bench/kiln-bench-ops" "$@"
