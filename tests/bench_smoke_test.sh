#!/bin/sh
# bench_smoke_test.sh SRCDIR BUILDDIR: keeps the model benchmark (bench/models.py) from
# rotting. Runs its smoke mode (one tiny CNN, batch 1, 1 thread, 3 repeats, every installed
# peer) and checks that the table and plots are produced with a kiln number checked against
# PyTorch; then runs it with a corrupted PyTorch reference and checks that kiln's check fails
# it (exit status 1, "WRONG" in the table, no kiln number). ONNX Runtime (onnxruntime-node,
# scripts/setup_bench.sh) is optional: without it its column is skipped with a message.
# Exit 77 (skipped) when Debian's python3-torch is not installed.
set -u
src="$1"
build="$2"
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

if ! $py -c "import torch, numpy" 2>/dev/null; then
  echo "SKIP: /usr/bin/python3 cannot import torch and numpy (apt-get install python3-torch)"
  exit 77
fi
for tool in "$build/tools/kiln" "$build/bench/kiln-bench-load"; do
  if [ ! -x "$tool" ]; then
    echo "FAIL: $tool is not built"
    exit 1
  fi
done

ort_dir=${KILN_ORT_DIR:-${HOME:-/nonexistent}/.cache/kiln-bench/ort}
if command -v node >/dev/null 2>&1 &&
   NODE_PATH="$ort_dir/node_modules" node -e "require('onnxruntime-node')" 2>/dev/null; then
  have_ort=1
else
  have_ort=0
  echo "SKIP (ONNX Runtime column only): onnxruntime-node is not installed in $ort_dir" \
       "(scripts/setup_bench.sh installs it)"
fi

# ---- the smoke run: must succeed and produce the table and plots --------------------------
out="$tmp/out"
if ! $py "$src/bench/models.py" --smoke --build "$build" --work "$tmp/work" --out "$out" \
     --ort-dir "$ort_dir" > "$tmp/smoke.log" 2>&1; then
  fail "bench/models.py --smoke failed:"
  cat "$tmp/smoke.log"
fi
md="$out/models.md"
if [ ! -s "$md" ]; then
  fail "no table $md"
else
  # the tiny model's latency row: kiln's cell is a number "M (P10-P90)", not WRONG or n/a
  row=$(grep '^| tiny | 1 | 1 |' "$md" || true)
  if ! printf '%s\n' "$row" | grep -Eq '^\| tiny \| 1 \| 1 \| [0-9.]+ \([0-9.]+-[0-9.]+\) \|'; then
    fail "no kiln number in the latency row: '$row'"
  fi
  grep -q '| tiny | default | 1 | ok: output matches' "$md" ||
    fail "the table does not show kiln's passed check against PyTorch"
  grep -q 'PyTorch eager' "$md" || fail "no PyTorch eager column"
  grep -q 'TorchScript' "$md" || fail "no TorchScript column"
  # compile time and load time are numbers
  grep -Eq '^\| tiny \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ / [0-9.]+ \|' "$md" ||
    fail "no compile/load time row: $(grep '^| tiny |' "$md" | tail -1)"
  if [ "$have_ort" = 1 ]; then
    grep -q 'ONNX Runtime' "$md" || fail "onnxruntime-node is installed but the table has no ORT column"
  else
    grep -q 'ONNX Runtime skipped' "$md" || fail "no note saying that ONNX Runtime was skipped"
  fi
fi
if $py -c "import matplotlib" 2>/dev/null; then
  for png in models_latency.png models_speedup.png; do
    [ -s "$out/$png" ] || fail "no plot $png"
  done
else
  echo "note: python3-matplotlib is not installed: plots not checked"
fi
[ -s "$out/models.json" ] || fail "no models.json"

# ---- a wrong kiln result must fail the run and get no number ------------------------------
out2="$tmp/out2"
$py "$src/bench/models.py" --smoke --build "$build" --work "$tmp/work2" --out "$out2" \
    --ort-dir "$ort_dir" --no-plots --corrupt-reference > "$tmp/wrong.log" 2>&1
st=$?
if [ "$st" != 1 ]; then
  fail "a failed kiln check gave exit status $st (want 1)"
  cat "$tmp/wrong.log"
fi
grep -q '^| tiny | 1 | 1 | \*\*WRONG\*\* |' "$out2/models.md" 2>/dev/null ||
  fail "a failed kiln check is not marked WRONG in the latency table"
grep -q '| tiny | default | 1 | \*\*WRONG\*\*: ' "$out2/models.md" 2>/dev/null ||
  fail "the correctness table does not show the failed check"

if [ "$failures" != 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "bench smoke test passed (ONNX Runtime: $([ "$have_ort" = 1 ] && echo measured || echo skipped))"
