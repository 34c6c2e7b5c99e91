#!/bin/sh
# tune_resnet18.sh: end-to-end tuning of ResNet-18 (torchvision, weights=None, batch 1 and 4)
# with the kiln CLI: export to ONNX, compile with the default schedules, tune with a fixed
# budget into a database, compile again with the database, then time both artifacts back to
# back and print both latencies per bucket and their ratio. Both artifacts are checked
# against PyTorch's outputs with `kiln run --expect`.
#
#   bench/tune_resnet18.sh [--trials N] [--time-budget S] [--seed K] [--threads T]
#                          [--work DIR] [--build DIR]
# Defaults: 400 trials, 1200 s, seed 1, all threads, a fresh temporary work folder, the
# build folder $KILN_BUILD_DIR or build/. Needs /usr/bin/python3 with torch, torchvision,
# onnx and numpy. The database stays in the work folder (resnet18.db) for later runs:
# `kiln tune` warm-starts from it.
set -eu

trials=400
budget=1200
seed=1
threads=""
work=""
here=$(cd "$(dirname "$0")/.." && pwd)
build=${KILN_BUILD_DIR:-$here/build}
py=/usr/bin/python3

while [ $# -gt 0 ]; do
  case "$1" in
    --trials) trials=$2; shift 2 ;;
    --time-budget) budget=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "usage: $0 [--trials N] [--time-budget S] [--seed K] [--threads T] [--work DIR] [--build DIR]" >&2
       exit 2 ;;
  esac
done

kiln=$build/tools/kiln
if [ ! -x "$kiln" ]; then
  echo "tune_resnet18.sh: $kiln not found: build kiln first (meson setup $build && ninja -C $build)" >&2
  exit 1
fi
if [ -z "$work" ]; then
  work=$(mktemp -d /tmp/kiln-resnet18-XXXXXX)
fi
mkdir -p "$work"
thread_opt=""
if [ -n "$threads" ]; then thread_opt="--threads $threads"; fi
echo "tune_resnet18.sh: work folder $work, $trials trials, $budget s budget, seed $seed"

# 1. the model and PyTorch's reference outputs for both batch sizes
"$py" - "$work" <<'EOF'
import sys, numpy as np, torch, torchvision
work = sys.argv[1]
torch.manual_seed(0)
model = torchvision.models.resnet18(weights=None).eval()
x1 = torch.randn(1, 3, 224, 224)
torch.onnx.export(model, x1, work + "/resnet18.onnx", input_names=["input"],
                  output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                  opset_version=13)
rng = np.random.default_rng(0)
for b in (1, 4):
    x = rng.standard_normal((b, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
    np.save("%s/x%d.npy" % (work, b), x)
    np.save("%s/y%d.npy" % (work, b), y)
EOF

buckets="--bucket input=1x3x224x224 --bucket input=4x3x224x224"

# Times bucket $2 of artifact $1; prints the mean microseconds per inference.
bench() {
  "$kiln" bench "$1" --bucket "$2" --min-time 2 $thread_opt | sed -n 's/^Microseconds per iter: *//p'
}

# Checks both buckets of artifact $1 against PyTorch.
check() {
  for b in 1 4; do
    "$kiln" run "$1" --input "input=$work/x$b.npy" --output-dir "$work/out" $thread_opt \
      --expect "logits=$work/y$b.npy" > /dev/null
  done
  echo "  $1: outputs of both buckets match PyTorch"
}

# 2. default schedules (timed below, next to the tuned artifact: the machine's load changes
#    over a long tuning run, so only back-to-back timings compare)
"$kiln" compile "$work/resnet18.onnx" -o "$work/default.kiln" $buckets --quiet
check "$work/default.kiln"

# 3. tuning with a fixed budget, then the tuned artifact (no measurement at compile time)
"$kiln" tune "$work/resnet18.onnx" --db "$work/resnet18.db" $buckets --trials "$trials" \
  --time-budget "$budget" --seed "$seed"
"$kiln" compile "$work/resnet18.onnx" -o "$work/tuned.kiln" $buckets --db "$work/resnet18.db" --quiet
check "$work/tuned.kiln"
d1=$(bench "$work/default.kiln" 0)
t1=$(bench "$work/tuned.kiln" 0)
d4=$(bench "$work/default.kiln" 1)
t4=$(bench "$work/tuned.kiln" 1)

"$py" - "$d1" "$t1" "$d4" "$t4" <<'EOF'
import sys
d1, t1, d4, t4 = map(float, sys.argv[1:])
print("ResNet-18 latency (mean us per inference)")
print("  batch 1: default %10.0f  tuned %10.0f  speedup %.2fx" % (d1, t1, d1 / t1))
print("  batch 4: default %10.0f  tuned %10.0f  speedup %.2fx" % (d4, t4, d4 / t4))
EOF
