#!/bin/sh
# check_no_llvm.sh RUNTIME_LIB PROBE_LIB: fails if RUNTIME_LIB needs libLLVM or references any
# LLVM symbol; PROBE_LIB (which uses LLVM) must be flagged, or the check itself is broken.
uses_llvm() {
  readelf -d "$1" | grep -q 'NEEDED.*LLVM' && return 0
  nm -D "$1" | grep -Eq '(^| )(LLVM|_ZN4llvm)' && return 0
  return 1
}
if ! uses_llvm "$2"; then
  echo "FAIL: the check did not detect LLVM in the probe library $2"; exit 1
fi
if uses_llvm "$1"; then
  echo "FAIL: $1 references LLVM:"; readelf -d "$1" | grep NEEDED; nm -D "$1" | grep -E 'LLVM|llvm'; exit 1
fi
echo "ok: $1 has no LLVM dependency or symbol"
