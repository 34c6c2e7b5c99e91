#!/bin/sh
# test.sh [--sanitize]: installs what is missing, builds, and runs every test suite.
# With --sanitize the build (in build-asan/) uses AddressSanitizer and UBSan.
# Ends with the line "N passed, M failed" and fails if any test failed.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh

dir=build
opts=""
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-asan
  opts="-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug"
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi
# shellcheck disable=SC2086
sh scripts/build.sh "$dir" $opts

status=0
meson test -C "$dir" --print-errorlogs --num-processes 2 || status=$?

# One summary line from meson's JSON log (passed = OK, failed = everything else that ran).
/usr/bin/python3 - "$dir/meson-logs/testlog.json" <<'PY' || status=1
import json, sys
ok = bad = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("result") in ("OK", "EXPECTEDFAIL"): ok += 1
    elif r.get("result") != "SKIP": bad += 1
print(f"{ok} passed, {bad} failed")
sys.exit(1 if bad or ok == 0 else 0)
PY
exit $status
