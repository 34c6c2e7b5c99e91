#!/bin/sh
# quickstart.sh: installs what is missing, builds kiln, and runs the main job on the bundled
# default model (tools/models/default.onnx, a small residual CNN for 3x32x32 images with a
# dynamic batch): compile it for batches 1 and 4 into one artifact, run it on the bundled
# sample input and check the result against PyTorch's output stored next to it, run a batch
# of 3 padded into the batch-4 bucket, and benchmark it.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
sh scripts/build.sh build
kiln=build/tools/kiln
models=tools/models
out=build/quickstart
mkdir -p "$out"
set -x
$kiln compile $models/default.onnx -o $out/default.kiln \
  --bucket input=1x3x32x32 --bucket input=4x3x32x32 --paddable input:0
$kiln inspect $out/default.kiln
$kiln run $out/default.kiln --input input=$models/default_input.npy --output-dir $out \
  --expect logits=$models/default_output.npy
$kiln bench $out/default.kiln --input-dims 1,3,32,32 --iters 200
$kiln bench $out/default.kiln --input-dims 3,3,32,32 --iters 200
$kiln profile $out/default.kiln --input-dims 4,3,32,32
