#!/bin/sh
# quickstart.sh: installs what is missing, builds kiln, and runs the main job on the bundled
# default model: parse, verify, simplify and interpret tools/models/default.tir.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
sh scripts/build.sh build
exec build/tools/kiln tir tools/models/default.tir
