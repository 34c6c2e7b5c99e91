#!/bin/sh
# build.sh [BUILD_DIR] [meson options...]: configures (once) and builds kiln with meson+ninja.
set -eu
cd "$(dirname "$0")/.."
dir="${1:-build}"
[ $# -gt 0 ] && shift
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" "$@"
fi
ninja -C "$dir"
