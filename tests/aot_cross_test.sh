#!/bin/sh
# aot_cross_test.sh GEN SRCDIR: ahead-of-time compilation for aarch64, run under qemu. GEN
# (aot_cross_gen) compiles the default model and int8/float16/parallel kernels for
# aarch64-linux-gnu (neoverse-n1) into kernels.so and writes their inputs and the host
# interpreter's results; aot_driver.c, cross-compiled with the runtime sources, runs the kernels
# under qemu-aarch64 and must print exactly the host's results. Missing cross tools are a
# failure, not a skip (scripts/setup.sh installs qemu-user, gcc-aarch64-linux-gnu and
# libc6-dev-arm64-cross).
set -u
gen="$1"
src="$2"
sysroot=/usr/aarch64-linux-gnu
cc=aarch64-linux-gnu-gcc
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*"; exit 1; }

missing=""
command -v qemu-aarch64 >/dev/null 2>&1 || missing="$missing qemu-aarch64 (package qemu-user)"
command -v "$cc" >/dev/null 2>&1 || missing="$missing $cc (package gcc-aarch64-linux-gnu)"
[ -e "$sysroot/lib/ld-linux-aarch64.so.1" ] ||
  missing="$missing $sysroot/lib/ld-linux-aarch64.so.1 (package libc6-arm64-cross)"
[ -n "$missing" ] && fail "the aarch64 cross test needs:$missing; run scripts/setup.sh"

"$gen" "$src/tools/models/default.tir" "llvm -mtriple=aarch64-linux-gnu -mcpu=neoverse-n1" "$tmp" ||
  fail "aot_cross_gen could not compile the kernels for aarch64"

# the shared object is aarch64 code and needs nothing but the kernel ABI and libc/libm
readelf=$(command -v llvm-readelf-19 || command -v readelf) || fail "no readelf"
"$readelf" -h "$tmp/kernels.so" | grep -q "AArch64" || fail "kernels.so is not an aarch64 object"
undef=$("$readelf" --dyn-syms -W "$tmp/kernels.so" | awk '$7 == "UND" && $8 != "" { print $8 }' |
        sed 's/@.*//' | sort -u)
[ -n "$undef" ] || fail "kernels.so has no undefined symbols (expected kiln_rt_parallel_launch)"
for s in $undef; do
  case "$s" in
    kiln_rt_*|memcpy|memmove|memset|snprintf|strlen|strcpy|stpcpy) ;;
    exp*|log*|pow*|__powi*|ldexp*|sqrt*|cbrt*|fmod*|fma*|fabs*|fmin*|fmax*) ;;
    floor*|ceil*|trunc*|round*|rint*|nearbyint*|tanh*|erf*|sin*|cos*) ;;
    *) fail "kernels.so needs '$s', which is neither the kernel ABI nor libc/libm" ;;
  esac
done
echo "$undef" | grep -q '^kiln_rt_parallel_launch$' || fail "kernels.so does not call the thread pool"

# the driver, with the runtime compiled in and exported to the shared object
"$cc" -std=c11 -O1 -Wall -Wextra -D_GNU_SOURCE -DKILN_BUILDING -DKILN_VERSION_STRING='"cross"' \
  -I"$src/include" -I"$src" -rdynamic -o "$tmp/driver" "$src/tests/aot_driver.c" \
  "$src/runtime/threadpool.c" "$src/runtime/status.c" "$src/runtime/dtype.c" \
  -lpthread -ldl -lm || fail "cannot build the aarch64 driver"

for threads in 1 4; do
  KILN_NUM_THREADS=$threads qemu-aarch64 -L "$sysroot" "$tmp/driver" "$tmp/kernels.so" \
    "$tmp/cases.txt" > "$tmp/got.txt" || fail "the driver failed under qemu-aarch64 ($threads threads)"
  if ! cmp -s "$tmp/expected.txt" "$tmp/got.txt"; then
    diff "$tmp/expected.txt" "$tmp/got.txt" | cut -c1-200 | head -20
    fail "aarch64 results differ from the host interpreter's ($threads threads)"
  fi
done
n=$(grep -c '^kernel' "$tmp/got.txt")
[ "$n" -ge 3 ] || fail "only $n kernels ran"
echo "ok: $n kernels compiled for aarch64 give the host interpreter's results under qemu"
