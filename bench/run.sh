#!/bin/sh
# Runs the whole benchmark (bench/README.md):  bench/run.sh [--quick] [--db TUNE.db] [--ops-only]
#   1. builds kiln (meson + ninja in build/, or $KILN_BUILD_DIR) with bench/kiln-bench-ops,
#      bench/kiln-bench-load and tools/kiln;
#   2. the op table (kiln-bench-ops: peak, GEMM, conv2d vs OpenBLAS and oneDNN), written to
#      bench/results/ops.md (correctness checks: bench/results/ops.log);
#   3. the model table and plots (bench/models.py: kiln vs PyTorch eager / TorchScript / ONNX
#      Runtime), written to bench/results/models.md, models.json, models_*.png.
# --quick: 0.1 s per op measurement, 3 models at batch 1 (a few minutes); --db: also kiln tuned
# from that tuning database (op rows "kiln tuned (db)", model column "kiln tuned").
# $KILN_BENCH_OUT / $KILN_BENCH_WORK move the outputs (default bench/results, bench/work).
# ONNX Runtime needs scripts/setup_bench.sh once (else its columns are skipped with a note).
# Exit status: 0, or non-zero when a build, a correctness check or a step failed.
set -eu
# The peers at their best: OpenBLAS (and PyTorch's BLAS, which is OpenBLAS on Debian) choose
# their kernels for this CPU. An inherited OPENBLAS_CORETYPE (a sandbox here set it to Haswell)
# would force AVX2 kernels on an AVX-512 machine: 50% of peak instead of 88% for sgemm.
unset OPENBLAS_CORETYPE
root=$(cd "$(dirname "$0")/.." && pwd)
build=${KILN_BUILD_DIR:-$root/build}
out=${KILN_BENCH_OUT:-$root/bench/results}    # tables, plots
work=${KILN_BENCH_WORK:-$root/bench/work}      # ONNX files, artifacts, .npy
quick=""
db=""
ops_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=--quick ;;
    --db) [ $# -ge 2 ] || { echo "run.sh: --db needs a file" >&2; exit 2; }
          db=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift ;;
    --ops-only) ops_only=1 ;;
    *) echo "usage: bench/run.sh [--quick] [--db TUNE.db] [--ops-only]" >&2; exit 2 ;;
  esac
  shift
done

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$root"
fi
ninja -C "$build" bench/kiln-bench-ops bench/kiln-bench-load tools/kiln
mkdir -p "$out"

echo "== op benchmark (bench/results/ops.md)" >&2
set -- $quick
[ -n "$db" ] && set -- "$@" --db "$db"
status=0
"$build/bench/kiln-bench-ops" "$@" >"$out/ops.md" 2>"$out/ops.log" || status=$?
cat "$out/ops.md"
cat "$out/ops.log" >&2
if [ "$status" != 0 ]; then
  echo "run.sh: the op benchmark failed (exit status $status)" >&2
  exit "$status"
fi
[ "$ops_only" = 1 ] && exit 0

echo "== model benchmark (bench/results/models.md)" >&2
set -- $quick --build "$build" --out "$out" --work "$work"
[ -n "$db" ] && set -- "$@" --db "$db"
exec /usr/bin/python3 "$root/bench/models.py" "$@"
