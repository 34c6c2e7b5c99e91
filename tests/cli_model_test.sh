#!/bin/sh
# cli_model_test.sh KILN SRCDIR: the compiled-model commands as a user runs them: kiln compile
# (Relay text and ONNX models, several buckets), inspect (table and JSON), run (every bucket,
# padding, .npy inputs of several format versions, outputs checked against numpy), bench and
# profile; and the exit status and message of every kind of mistake (1: a bad file or a run
# that cannot work, 2: a malformed command line).
set -u
kiln="$1"
src="$2"
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

# expect STATUS PATTERN CMD...: runs CMD, checks its exit status and that PATTERN occurs in
# its output (stdout and stderr together).
expect() {
  want="$1"; pattern="$2"; shift 2
  out=$("$@" 2>&1); got=$?
  if [ "$got" != "$want" ] || ! printf '%s' "$out" | grep -q -- "$pattern"; then
    echo "FAIL: $* -> status $got (want $want), output lacks '$pattern':"; printf '%s\n' "$out"
    failures=$((failures + 1))
  else
    echo "ok: $*"
  fi
}

# pycheck DESCRIPTION: runs the Python program on stdin (in $tmp); it fails by raising.
pycheck() {
  if out=$(cd "$tmp" && $py - 2>&1); then
    echo "ok: $1"
  else
    echo "FAIL: $1"; printf '%s\n' "$out"; failures=$((failures + 1))
  fi
}

# ---- a Relay model: two inputs with a symbolic batch n, a weight, two outputs -------------
cat > "$tmp/two.relay" <<'EOF'
def @main(%x: Tensor[(n, 4), float32], %s: Tensor[(n, 3), float32]) {
  %0 = nn.dense(%x, const(Tensor[(3, 4), float32], [0.5, -1, 0.25, 2, 1, 0, -0.5, 0.75, -2, 1.5, 0.125, -0.25]));
  %1 = add(%0, %s);
  %2 = nn.relu(%1);
  %3 = sum(%2, axis=[1]);
  (%2, %3)
}
EOF
# the numpy reference of two.relay, and inputs for batches 1 to 4 (fixed seeds)
cat > "$tmp/ref.py" <<'EOF'
import numpy as np
W = np.array([[0.5, -1, 0.25, 2], [1, 0, -0.5, 0.75], [-2, 1.5, 0.125, -0.25]], np.float32)
def reference(x, s):
    y = np.maximum(x @ W.T + s, 0)
    return [y, y.sum(axis=1)]
def inputs(b):
    rng = np.random.default_rng(b)
    return (rng.standard_normal((b, 4)).astype(np.float32),
            rng.standard_normal((b, 3)).astype(np.float32))
def sanitize(name, i):
    s = "".join(c if c.isalnum() and c.isascii() or c in "_.-" else "_" for c in name)
    return s if s not in ("", ".", "..") else "output%d" % i
EOF
pycheck "write the inputs" <<'EOF'
import numpy as np
from ref import inputs
for b in range(1, 5):
    x, s = inputs(b)
    np.save("x%d.npy" % b, x)
    np.save("s%d.npy" % b, s)
EOF

# compile: three buckets (the last one weighs 2), a summary on stdout
expect 0 "buckets *3" "$kiln" compile "$tmp/two.relay" -o "$tmp/two.kiln" \
  --bucket x=1x4,s=1x3 --bucket x=2x4,s=2x3 --bucket "x=4x4,s=4x3@2"
"$kiln" compile "$tmp/two.relay" -o "$tmp/two.kiln" --bucket x=1x4,s=1x3 --bucket x=2x4,s=2x3 \
  --bucket "x=4x4,s=4x3@2" > "$tmp/summary.txt" 2>&1
for pattern in "compiled .*two.relay -> .*two.kiln" "kernel calls  *[0-9]" \
               "kernels  *[0-9][0-9]* distinct, 0 scheduled from the tuning database" \
               "params  *48 B" "time  *[0-9.]* s: passes"; do
  if ! grep -q -- "$pattern" "$tmp/summary.txt"; then
    echo "FAIL: the compile summary lacks '$pattern':"; cat "$tmp/summary.txt"
    failures=$((failures + 1))
  fi
done
out=$("$kiln" compile "$tmp/two.relay" -o "$tmp/quiet.kiln" --quiet --bucket x=2x4,s=2x3 2>&1)
if [ $? != 0 ] || [ -n "$out" ] || [ ! -s "$tmp/quiet.kiln" ]; then
  echo "FAIL: kiln compile --quiet printed '$out' or wrote no artifact"; failures=$((failures + 1))
fi
# the same model with the batch axes declared paddable at compile time
expect 0 "buckets *2" "$kiln" compile "$tmp/two.relay" -o "$tmp/pad.kiln" \
  --bucket x=2x4,s=2x3 --bucket x=4x4,s=4x3 --paddable x:0 --paddable s:0

# inspect: the table and the JSON
expect 0 "format *kiln artifact 1\.0" "$kiln" inspect "$tmp/two.kiln"
expect 0 "model *two.relay" "$kiln" inspect "$tmp/two.kiln"
expect 0 "sections *META .*PLAN .*PARAMS .*CODE" "$kiln" inspect "$tmp/two.kiln"
expect 0 "x *float32 *1x4 | 2x4 | 4x4" "$kiln" inspect "$tmp/two.kiln"
expect 0 "weight 2 .*kernel calls  *activations .* planned, .* naive" "$kiln" inspect "$tmp/two.kiln"
expect 0 "params *1 tensors, 48 B" "$kiln" inspect "$tmp/two.kiln"
expect 0 "paddable *x:0, s:0" "$kiln" inspect "$tmp/pad.kiln"
"$kiln" inspect "$tmp/two.kiln" --json > "$tmp/two.json"
"$kiln" inspect "$tmp/pad.kiln" --json > "$tmp/pad.json"
pycheck "inspect --json describes two.kiln" <<'EOF'
import json, os
j = json.load(open("two.json"))
assert j["file_bytes"] == os.path.getsize("two.kiln"), j["file_bytes"]
assert j["format_version"] == "1.0" and j["model"] == "two.relay"
assert [s["kind"] for s in j["sections"]] and {"META", "PLAN", "PARAMS", "CODE"} <= {s["kind"] for s in j["sections"]}
assert [i["name"] for i in j["inputs"]] == ["x", "s"], j["inputs"]
assert j["inputs"][0]["dtype"] == "float32"
assert j["inputs"][0]["shapes"] == [[1, 4], [2, 4], [4, 4]], j["inputs"][0]
assert j["inputs"][1]["shapes"] == [[1, 3], [2, 3], [4, 3]]
assert len(j["outputs"]) == 2 and j["outputs"][0]["shapes"] == [[1, 3], [2, 3], [4, 3]]
assert j["outputs"][1]["shapes"] == [[1], [2], [4]], j["outputs"][1]
assert [b["weight"] for b in j["buckets"]] == [1, 1, 2]
total = 0
for b in j["buckets"]:
    assert 0 < b["planned_bytes"] <= b["naive_bytes"], b
    assert b["calls"] >= 2
    total += b["calls"]
assert sum(k["calls"] for k in j["kernels"]) == total
for k in j["kernels"]:
    assert len(k["hash"]) == 16 and k["schedule"] == "default" and k["name"], k
assert j["params"] == {"count": 1, "bytes": 48}, j["params"]
assert j["inputs"][0]["paddable_axes"] == []
p = json.load(open("pad.json"))
assert p["inputs"][0]["paddable_axes"] == [0] and p["inputs"][1]["paddable_axes"] == [0]
EOF

# run every bucket and compare with numpy; outputs are named after the model's outputs
for b in 1 2 4; do
  mkdir -p "$tmp/out$b"
  expect 0 "bucket" "$kiln" run "$tmp/two.kiln" --input "x=$tmp/x$b.npy" --input "s=$tmp/s$b.npy" \
    --output-dir "$tmp/out$b"
done
expect 0 "bucket 2" "$kiln" run "$tmp/two.kiln" --input "s=$tmp/s4.npy" --input "x=$tmp/x4.npy" \
  --output-dir "$tmp/out4" --threads 2
pycheck "run: every bucket's outputs match numpy, files as np.save writes them" <<'EOF'
import io, json
import numpy as np
from ref import inputs, reference, sanitize
j = json.load(open("two.json"))
names = [sanitize(o["name"], i) for i, o in enumerate(j["outputs"])]
for b in (1, 2, 4):
    want = reference(*inputs(b))
    for i, name in enumerate(names):
        path = "out%d/%s.npy" % (b, name)
        got = np.load(path)
        assert got.dtype == np.float32 and got.shape == want[i].shape, (path, got.shape)
        assert np.allclose(got, want[i], rtol=1e-5, atol=1e-5), (path, got, want[i])
        buf = io.BytesIO()
        np.save(buf, got)
        assert buf.getvalue() == open(path, "rb").read(), path + " differs from np.save's bytes"
EOF

# the output lines: name, shape, dtype, file, bucket
out=$("$kiln" run "$tmp/two.kiln" --input "x=$tmp/x2.npy" --input "s=$tmp/s2.npy" --output-dir "$tmp/out2" 2>&1)
if ! printf '%s' "$out" | grep -q "\[2, 3\]  float32  $tmp/out2/.*\.npy  bucket 1$"; then
  echo "FAIL: kiln run's output line:"; printf '%s\n' "$out"; failures=$((failures + 1))
fi

# padding: batch 3 lies between buckets; it fails unless the batch axes may be padded
expect 1 "3" "$kiln" run "$tmp/two.kiln" --input "x=$tmp/x3.npy" --input "s=$tmp/s3.npy" --output-dir "$tmp/out3"
out=$("$kiln" run "$tmp/two.kiln" --input "x=$tmp/x3.npy" --input "s=$tmp/s3.npy" --output-dir "$tmp/out3" 2>&1)
if ! printf '%s' "$out" | grep -q "(3,4), (3,3)" || ! printf '%s' "$out" | grep -q "(1,4), (1,3).*(2,4), (2,3).*(4,4), (4,3)"; then
  echo "FAIL: a shape between buckets: the message does not list the buckets:"; printf '%s\n' "$out"
  failures=$((failures + 1))
fi
mkdir -p "$tmp/out3" "$tmp/outp"
expect 0 "bucket 2 (padded: input 'x' \[3, 4\] -> \[4, 4\], input 's' \[3, 3\] -> \[4, 3\])" \
  "$kiln" run "$tmp/two.kiln" --input "x=$tmp/x3.npy" --input "s=$tmp/s3.npy" --output-dir "$tmp/out3" \
  --pad x:0 --pad s:0
expect 0 "bucket 1 (padded" "$kiln" run "$tmp/pad.kiln" --input "x=$tmp/x3.npy" --input "s=$tmp/s3.npy" \
  --output-dir "$tmp/outp"
pycheck "run with padding: batch 3 outputs sliced back and right" <<'EOF'
import json
import numpy as np
from ref import inputs, reference, sanitize
j = json.load(open("two.json"))
want = reference(*inputs(3))
for d in ("out3", "outp"):
    for i, o in enumerate(j["outputs"]):
        got = np.load("%s/%s.npy" % (d, sanitize(o["name"], i)))
        assert got.shape == want[i].shape, (d, got.shape)
        assert np.allclose(got, want[i], rtol=1e-5, atol=1e-5), (d, got, want[i])
EOF

# .npy inputs: format versions 2.0 and 3.0, keys in another order, a native byte order
pycheck "write .npy variants" <<'EOF'
import numpy as np
from ref import inputs
x, s = inputs(2)
for v in (2, 3):
    with open("x_v%d.npy" % v, "wb") as f:
        np.lib.format.write_array(f, x, version=(v, 0))
h = b"{ 'shape' : (2, 4 ,), \"fortran_order\": False, 'descr': '=f4' }"
h = h + b" " * (118 - len(h)) + b"\n"
open("x_odd.npy", "wb").write(b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h + x.tobytes())
h = b"{'descr': '>f4', 'fortran_order': False, 'shape': (2, 4), }"
h = h + b" " * (118 - len(h)) + b"\n"
open("x_big.npy", "wb").write(b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h + x.astype(">f4").tobytes())
np.save("x_fortran.npy", np.asfortranarray(x))
np.save("x_f64.npy", x.astype(np.float64))
np.save("x_rank3.npy", x.reshape(2, 2, 2))
raw = open("x2.npy", "rb").read()
open("x_trunc.npy", "wb").write(raw[:-5])
open("x_garbage.npy", "wb").write(b"this is not an array\n" * 4)
open("x_badheader.npy", "wb").write(raw[:10] + raw[10:20].replace(b"descr", b"dtype") + raw[20:])
EOF
for v in v2 v3 odd; do
  mkdir -p "$tmp/out_$v"
  expect 0 "bucket 1" "$kiln" run "$tmp/two.kiln" --input "x=$tmp/x_$v.npy" --input "s=$tmp/s2.npy" \
    --output-dir "$tmp/out_$v"
  if ! cmp -s "$tmp/out_$v/$(ls "$tmp/out2" | head -1)" "$tmp/out2/$(ls "$tmp/out2" | head -1)"; then
    echo "FAIL: input x_$v.npy gave other outputs than x2.npy"; failures=$((failures + 1))
  fi
done

# bench and profile
expect 0 "Microseconds per iter: [0-9]" "$kiln" bench "$tmp/two.kiln" --iters 5 --min-time 0
expect 0 "min [0-9.]*  p10 [0-9.]*  p50 [0-9.]*  p90 [0-9.]*  p99 [0-9.]*  max [0-9.]*  std [0-9.]*  (us; threads 2, bucket 2)" \
  "$kiln" bench "$tmp/two.kiln" --bucket 2 --threads 2 --warmup 1 --iters 3 --min-time 0
expect 0 "bucket 1, inputs x \[2, 4\] s \[2, 3\]" "$kiln" bench "$tmp/two.kiln" --input-dims 2,4:2,3 --iters 2 --min-time 0
expect 0 "bucket 1" "$kiln" bench "$tmp/pad.kiln" --input-dims 3,4:3,3 --iters 2 --min-time 0
"$kiln" bench "$tmp/two.kiln" --iters 7 --min-time 0 --json > "$tmp/bench.json"
"$kiln" profile "$tmp/two.kiln" --bucket 1 --iters 4 > "$tmp/profile.txt"
"$kiln" profile "$tmp/two.kiln" --bucket 1 --iters 4 --json > "$tmp/profile.json"
pycheck "bench --json, profile (table and --json) name every kernel" <<'EOF'
import json
b = json.load(open("bench.json"))
assert b["iters"] >= 7 and b["bucket"] == 0 and b["threads"] >= 1, b
assert b["min_us"] <= b["p10_us"] <= b["p50_us"] <= b["p90_us"] <= b["p99_us"] <= b["max_us"], b
assert b["min_us"] <= b["mean_us"] <= b["max_us"] and b["stddev_us"] >= 0
assert b["input_shapes"] == [[1, 4], [1, 3]], b["input_shapes"]
kernels = json.load(open("two.json"))["buckets"][1]["kernel_calls"]
assert len(kernels) == 2, kernels
table = open("profile.txt").read()
assert "threads" in table, table
for k in kernels:
    assert k in table, (k, table)
p = json.load(open("profile.json"))
assert p["runs"] == 4, p
assert {c["kernel"] for c in p["calls"]} == set(kernels), p["calls"]
assert all(c["count"] == 4 and c["bucket"] == 1 for c in p["calls"]), p["calls"]
EOF

# ---- an ONNX model with one input (by file only), odd names, and an int32 Relay model -------
pycheck "write the ONNX model" <<'EOF'
import numpy as np
import onnx
from onnx import TensorProto, helper
w = helper.make_tensor("W", TensorProto.FLOAT, [4, 3], np.arange(12, dtype=np.float32).tolist())
nodes = [helper.make_node("Gemm", ["in:0", "W"], ["y"], transB=1, name="fc"),
         helper.make_node("Relu", ["y"], ["out/put:0"], name="act"),
         helper.make_node("Neg", ["y"], ["out:put/0"], name="neg")]
inputs = [helper.make_tensor_value_info("in:0", TensorProto.FLOAT, ["batch", 3])]
outputs = [helper.make_tensor_value_info("out/put:0", TensorProto.FLOAT, ["batch", 4]),
           helper.make_tensor_value_info("out:put/0", TensorProto.FLOAT, ["batch", 4])]
model = helper.make_model(helper.make_graph(nodes, "gemm", inputs, outputs, [w]),
                          opset_imports=[helper.make_opsetid("", 13)])
model.ir_version = 8
onnx.save(model, "gemm.onnx")
np.save("g.npy", np.random.default_rng(7).standard_normal((2, 3)).astype(np.float32))
np.save("g3.npy", np.random.default_rng(8).standard_normal((3, 3)).astype(np.float32))
np.save("gi.npy", np.arange(6, dtype=np.int32).reshape(2, 3))
EOF
expect 1 "batch" "$kiln" compile "$tmp/gemm.onnx" -o "$tmp/gemm.kiln"
expect 0 "kernels" "$kiln" compile "$tmp/gemm.onnx" -o "$tmp/gemm.kiln" --bucket in:0=2x3 --bucket in:0=5x3
# output files are named after the outputs: characters outside [A-Za-z0-9_.-] become '_', and
# a name an earlier output took gets the output's index appended
expect 0 "out/put:0  \[2, 4\]  float32  $tmp/gout/out_put_0.npy  bucket 0" \
  "$kiln" run "$tmp/gemm.kiln" --input "$tmp/g.npy" --output-dir "$tmp/gout"
expect 0 "out:put/0  \[2, 4\]  float32  $tmp/gout/out_put_0_1.npy  bucket 0" \
  "$kiln" run "$tmp/gemm.kiln" --input "$tmp/g.npy" --output-dir "$tmp/gout"
mkdir -p "$tmp/gout2"
expect 0 "bucket 0" "$kiln" run "$tmp/gemm.kiln" --input "in:0=$tmp/g.npy" --output-dir "$tmp/gout2"
mkdir -p "$tmp/gout3"
expect 0 "bucket 1 (padded: input 'in:0' \[3, 3\] -> \[5, 3\])" \
  "$kiln" run "$tmp/gemm.kiln" --input "$tmp/g3.npy" --output-dir "$tmp/gout3" --pad in:0:0
pycheck "ONNX model outputs match numpy (exact bucket and padded)" <<'EOF'
import os
import numpy as np
for d, x in (("gout", "g.npy"), ("gout2", "g.npy"), ("gout3", "g3.npy")):
    x = np.load(x)
    y = x @ np.arange(12, dtype=np.float32).reshape(4, 3).T
    assert sorted(os.listdir(d)) == ["out_put_0.npy", "out_put_0_1.npy"], os.listdir(d)
    for f, want in (("out_put_0.npy", np.maximum(y, 0)), ("out_put_0_1.npy", -y)):
        got = np.load(os.path.join(d, f))
        assert got.shape == want.shape and np.allclose(got, want, rtol=1e-5), (d, f, got, want)
EOF

cat > "$tmp/int.relay" <<'EOF'
def @main(%i: Tensor[(n, 3), int32]) {
  %0 = multiply(%i, %i);
  add(%0, const(Tensor[(3,), int32], [1, -2, 3]))
}
EOF
expect 0 "kernels" "$kiln" compile "$tmp/int.relay" -o "$tmp/int.kiln" --bucket i=2x3
mkdir -p "$tmp/iout"
expect 0 "int32" "$kiln" run "$tmp/int.kiln" --input "$tmp/gi.npy" --output-dir "$tmp/iout"
pycheck "int32 model output is exact" <<'EOF'
import os
import numpy as np
x = np.load("gi.npy")
files = os.listdir("iout")
assert len(files) == 1, files
got = np.load("iout/" + files[0])
assert got.dtype == np.int32 and (got == x * x + np.array([1, -2, 3], np.int32)).all(), got
EOF

# ---- every dtype numpy and kiln share, in and out (a 0-d input, inputs returned directly) ------
cat > "$tmp/dt.relay" <<'EOF'
def @main(%a: Tensor[(2, 3), float16], %b: Tensor[(3,), float64], %c: Tensor[(2, 2), int8], %d: Tensor[(4,), uint8], %e: Tensor[(2,), int16], %f: Tensor[(2,), int64], %g: Tensor[(2, 2), bool], %h: Tensor[(), float32], %i: Tensor[(2,), uint16], %j: Tensor[(2,), uint32], %k: Tensor[(2,), uint64], %l: Tensor[(2,), int32]) {
  %0 = add(%a, %a);
  %1 = multiply(%b, %b);
  %2 = negative(%c);
  %3 = add(%d, %d);
  %4 = cast(%h, dtype="bfloat16");
  %5 = logical_not(%g);
  (%0, %1, %2, %3, %e, %f, %5, %4, %i, %j, %k, %l)
}
EOF
expect 0 "h=()" "$kiln" compile "$tmp/dt.relay" -o "$tmp/dt.kiln"
"$kiln" inspect "$tmp/dt.kiln" --json > "$tmp/dt.json"
pycheck "write inputs of every dtype" <<'EOF'
import numpy as np
r = np.random.default_rng(3)
arrs = dict(a=r.standard_normal((2, 3)).astype(np.float16), b=r.standard_normal(3),
            c=np.array([[1, -2], [127, -128]], np.int8), d=np.array([1, 2, 200, 255], np.uint8),
            e=np.array([-300, 300], np.int16), f=np.array([-2**40, 7], np.int64),
            g=np.array([[True, False], [False, True]]), h=np.array(1.7, np.float32),
            i=np.array([1, 65535], np.uint16), j=np.array([0, 2**32 - 1], np.uint32),
            k=np.array([2**64 - 1, 3], np.uint64), l=np.array([-5, 5], np.int32))
for n, v in arrs.items():
    np.save("dt_%s.npy" % n, v)
EOF
mkdir -p "$tmp/dtout"
expect 0 "output_7  \[\]  bfloat16 (written as float32)" "$kiln" run "$tmp/dt.kiln" --output-dir "$tmp/dtout" \
  $(for n in a b c d e f g h i j k l; do printf -- "--input %s=$tmp/dt_%s.npy " $n $n; done)
pycheck "outputs of every dtype" <<'EOF'
import json, os
import numpy as np
from ref import sanitize
names = [sanitize(o["name"], i) for i, o in enumerate(json.load(open("dt.json"))["outputs"])]
x = {n: np.load("dt_%s.npy" % n) for n in "abcdefghijkl"}
want = [x["a"] + x["a"], x["b"] * x["b"], -x["c"], x["d"] + x["d"], x["e"], x["f"], ~x["g"],
        None, x["i"], x["j"], x["k"], x["l"]]
for i, (name, w) in enumerate(zip(names, want)):
    got = np.load(os.path.join("dtout", name + ".npy"))
    if w is None:  # bfloat16 widened to float32: a bfloat16 value near 1.7
        assert got.dtype == np.float32 and got.shape == () and abs(got - 1.7) < 0.01, got
        assert got.reshape(1).view(np.uint32)[0] & 0xffff == 0, got
        continue
    assert got.dtype == w.dtype and got.shape == w.shape, (i, got.dtype, w.dtype, got.shape)
    assert (got == w).all(), (i, got, w)
EOF

# ---- schedules from a tuning database; a record that does not replay is a warning -------------
mkdir -p "$tmp/traces"
"$kiln" lower "$tmp/two.relay" --bind n=1 --trace-out "$tmp/traces" > /dev/null
pycheck "write tuning records (one that replays, one that does not)" <<'EOF'
import json
j = json.load(open("two.json"))
k, t = j["kernels"][0], j["target"]
assert k["name"] == "fused_nn_dense_add_nn_relu", k
def records(trace):
    return "\n".join(json.dumps(l) for l in [
        {"format": "kiln-tune-db", "schema_version": 2},
        {"kind": "workload", "hash": k["hash"], "summary": k["workload"], "func_text": "func @f() {}"},
        {"kind": "target", "canonical": t, "cpu": "x", "features": ""},
        {"kind": "record", "workload": k["hash"], "target": t, "trace": trace, "median_s": 0.001,
         "min_s": 0.001, "max_s": 0.001, "stddev_s": 0, "repeats": 1, "status": "ok", "error": "",
         "seed": "0000000000000001", "kiln_version": "0.1.0", "host": "h", "time": 1700000000}]) + "\n"
open("good.jsonl", "w").write(records(open("traces/fused_nn_dense_add_nn_relu.json").read()))
open("bad.jsonl", "w").write(records('{"version": 1, "insts": [{"kind": "split"}]}'))
EOF
"$kiln" db import "$tmp/good.db" "$tmp/good.jsonl" > /dev/null
"$kiln" db import "$tmp/bad.db" "$tmp/bad.jsonl" > /dev/null
expect 0 "kernels  *2 distinct, 1 scheduled from the tuning database" \
  "$kiln" compile "$tmp/two.relay" -o "$tmp/db.kiln" --bucket x=1x4,s=1x3 --db "$tmp/good.db"
expect 0 "fused_nn_dense_add_nn_relu  *[0-9a-f]*  database  1 call" "$kiln" inspect "$tmp/db.kiln"
out=$("$kiln" compile "$tmp/two.relay" -o "$tmp/db.kiln" --bucket x=1x4,s=1x3 --db "$tmp/bad.db" 2>&1 >/dev/null); got=$?
if [ $got != 0 ] || ! printf '%s' "$out" | grep -q "kiln compile: warning: kernel fused_nn_dense_add_nn_relu .*does not replay"; then
  echo "FAIL: a record that does not replay: status $got, stderr:"; printf '%s\n' "$out"; failures=$((failures + 1))
fi
expect 0 "0 scheduled from the tuning database" "$kiln" compile "$tmp/two.relay" -o "$tmp/db.kiln" \
  --bucket x=1x4,s=1x3 --db "$tmp/bad.db"
expect 0 "default" "$kiln" inspect "$tmp/db.kiln"

# ---- a static model compiles without --bucket -------------------------------------------------
printf 'def @main(%%a: Tensor[(2, 2), float32]) {\n  exp(%%a)\n}\n' > "$tmp/static.relay"
expect 0 "a=2x2" "$kiln" compile "$tmp/static.relay" -o "$tmp/static.kiln"
"$py" -c "import numpy as np; np.save('$tmp/a.npy', np.array([[0, 1], [-1, 2]], np.float32))"
mkdir -p "$tmp/sout"
expect 0 "\[2, 2\]  float32" "$kiln" run "$tmp/static.kiln" --input "$tmp/a.npy" --output-dir "$tmp/sout"
pycheck "static model output" <<'EOF'
import os
import numpy as np
got = np.load(os.path.join("sout", os.listdir("sout")[0]))
assert np.allclose(got, np.exp(np.array([[0, 1], [-1, 2]], np.float32)), rtol=1e-6), got
EOF

# ---- the bundled default model (tools/models): PyTorch's output, padded batch 3 -----------------
models="$src/tools/models"
expect 0 "buckets *3" "$kiln" compile "$models/default.onnx" -o "$tmp/default.kiln" --bucket input=1x3x32x32 \
  --bucket input=2x3x32x32 --bucket input=4x3x32x32 --paddable input:0
mkdir -p "$tmp/d1" "$tmp/d3"
expect 0 "\[1, 10\]  float32  .*bucket 0$" "$kiln" run "$tmp/default.kiln" --input "$models/default_input.npy" --output-dir "$tmp/d1"
"$py" -c "import numpy as np; x = np.load('$models/default_input.npy'); np.save('$tmp/d3.npy', np.concatenate([x, x * 0.5, x]))"
expect 0 "bucket 2 (padded: input 'input' \[3, 3, 32, 32\] -> \[4, 3, 32, 32\])" \
  "$kiln" run "$tmp/default.kiln" --input "input=$tmp/d3.npy" --output-dir "$tmp/d3"
pycheck "the default model matches PyTorch, alone and in a padded batch" <<EOF
import os
import numpy as np
want = np.load("$models/default_output.npy")
one = np.load(os.path.join("d1", os.listdir("d1")[0]))
three = np.load(os.path.join("d3", os.listdir("d3")[0]))
assert one.shape == (1, 10) and np.allclose(one, want, atol=1e-4), (one, want)
assert three.shape == (3, 10), three.shape
assert np.allclose(three[0], want[0], atol=1e-4) and np.allclose(three[2], want[0], atol=1e-4)
assert not np.allclose(three[1], want[0], atol=1e-4)
EOF
expect 0 "Microseconds per iter: [0-9]" "$kiln" bench "$tmp/default.kiln" --bucket 1 --iters 3 --min-time 0
# --expect: the stored PyTorch output matches; a tolerance of 0 or another file does not
expect 0 "logits matches .*default_output.npy (10 values" "$kiln" run "$tmp/default.kiln" \
  --input "$models/default_input.npy" --output-dir "$tmp/d1" --expect "logits=$models/default_output.npy"
"$py" -c "import numpy as np; y = np.load('$models/default_output.npy'); y[0, 3] += 0.01; np.save('$tmp/off.npy', y)"
expect 1 "output 'logits' does not match .*off.npy: element 3 is" "$kiln" run "$tmp/default.kiln" \
  --input "$models/default_input.npy" --output-dir "$tmp/d1" --expect "logits=$tmp/off.npy"
expect 1 "the reference .*default_input.npy is float32 \[1, 3, 32, 32\]" "$kiln" run "$tmp/default.kiln" \
  --input "$models/default_input.npy" --output-dir "$tmp/d1" --expect "logits=$models/default_input.npy"
expect 1 "has no output 'nope'; its outputs are: 'logits'" "$kiln" run "$tmp/default.kiln" \
  --input "$models/default_input.npy" --output-dir "$tmp/d1" --expect "nope=$models/default_output.npy"
expect 2 "--expect takes NAME=FILE.npy" "$kiln" run "$tmp/default.kiln" --input "$models/default_input.npy" --expect logits
expect 2 "take a number >= 0, not 'x'" "$kiln" run "$tmp/default.kiln" --input "$models/default_input.npy" --rtol x

# ---- mistakes -------------------------------------------------------------------------------
# usage errors: status 2
expect 2 "unknown option '--frobnicate'" "$kiln" compile "$tmp/two.relay" -o "$tmp/x.kiln" --frobnicate
expect 2 "no output file given" "$kiln" compile "$tmp/two.relay"
expect 2 "no model given" "$kiln" compile -o "$tmp/x.kiln"
expect 2 "--bucket takes NAME=DxDxD" "$kiln" compile "$tmp/two.relay" -o "$tmp/x.kiln" --bucket 1x4
expect 2 "'x=1xx4' is not NAME=DxDx...D" "$kiln" compile "$tmp/two.relay" -o "$tmp/x.kiln" --bucket x=1xx4,s=1x3
expect 2 "'x=1x4x' is not NAME=DxDx...D" "$kiln" compile "$tmp/two.relay" -o "$tmp/x.kiln" --bucket x=1x4x
expect 2 "weight after '@' must be a positive number" "$kiln" compile "$tmp/two.relay" -o "$tmp/x.kiln" --bucket "x=1x4,s=1x3@0"
expect 2 "input 'x' is given twice" "$kiln" compile "$tmp/two.relay" -o "$tmp/x.kiln" --bucket x=1x4,x=2x4
expect 2 "--bucket needs a value" "$kiln" compile "$tmp/two.relay" -o "$tmp/x.kiln" --bucket
expect 2 "--paddable takes INPUT:AXIS" "$kiln" compile "$tmp/two.relay" -o "$tmp/x.kiln" --paddable x
expect 2 "--opt-level takes 1, 2 or 3" "$kiln" compile "$tmp/two.relay" -o "$tmp/x.kiln" --opt-level 7
expect 2 "unknown option '--frobnicate'" "$kiln" run "$tmp/two.kiln" --frobnicate
expect 2 "no model given" "$kiln" run
expect 2 "--input needs a value" "$kiln" run "$tmp/two.kiln" --input
expect 2 "--pad takes INPUT:AXIS" "$kiln" run "$tmp/two.kiln" --pad x:y
expect 2 "--threads takes a whole number" "$kiln" run "$tmp/two.kiln" --threads 0
expect 2 "unknown option '--frobnicate'" "$kiln" bench "$tmp/two.kiln" --frobnicate
expect 2 "--iters takes a whole number" "$kiln" bench "$tmp/two.kiln" --iters many
expect 2 "--min-time takes a number" "$kiln" bench "$tmp/two.kiln" --min-time -1
expect 2 "--input-dims takes" "$kiln" bench "$tmp/two.kiln" --input-dims 1,,4
expect 2 "--warmup needs a value" "$kiln" bench "$tmp/two.kiln" --warmup
expect 2 "unknown option '--warmup'" "$kiln" profile "$tmp/two.kiln" --warmup 3
expect 2 "unknown option '--frobnicate'" "$kiln" inspect "$tmp/two.kiln" --frobnicate
expect 2 "no model given" "$kiln" inspect

# failures: status 1, the message names the file and the problem
expect 1 "missing.relay" "$kiln" compile "$tmp/missing.relay" -o "$tmp/x.kiln"
expect 1 "unknown target option '-bogus=1'" "$kiln" compile "$tmp/two.relay" -o "$tmp/x.kiln" --target "llvm -bogus=1"
expect 1 "cannot open the tuning database .*nothing.db" "$kiln" compile "$tmp/two.relay" -o "$tmp/x.kiln" \
  --bucket x=1x4,s=1x3 --db "$tmp/nothing.db"
expect 1 "x.kiln" "$kiln" compile "$tmp/two.relay" -o "$tmp/no/such/dir/x.kiln" --bucket x=1x4,s=1x3
expect 1 "symbolic dimensions (input .x. axis 0 is n" "$kiln" compile "$tmp/two.relay" -o "$tmp/x.kiln"
printf 'def @main(%%x: Tensor[(2,), float32]) {\n  add(%%x, %%y)\n}\n' > "$tmp/bad.relay"
expect 1 "bad.relay:2:11" "$kiln" compile "$tmp/bad.relay" -o "$tmp/x.kiln"
expect 1 "'y'" "$kiln" compile "$tmp/two.relay" -o "$tmp/x.kiln" --bucket y=1x4
expect 1 "missing.kiln" "$kiln" run "$tmp/missing.kiln" --input "x=$tmp/x1.npy" --input "s=$tmp/s1.npy"
expect 1 "missing.kiln" "$kiln" inspect "$tmp/missing.kiln"
expect 1 "missing.kiln" "$kiln" bench "$tmp/missing.kiln"
expect 1 "missing.kiln" "$kiln" profile "$tmp/missing.kiln"
size=$(wc -c < "$tmp/two.kiln")
head -c $((size / 2)) "$tmp/two.kiln" > "$tmp/trunc.kiln"
expect 1 "trunc.kiln" "$kiln" inspect "$tmp/trunc.kiln"
expect 1 "trunc.kiln" "$kiln" run "$tmp/trunc.kiln" --input "x=$tmp/x1.npy" --input "s=$tmp/s1.npy"
expect 1 "trunc.kiln" "$kiln" bench "$tmp/trunc.kiln" --iters 1 --min-time 0
expect 1 "default.tir" "$kiln" run "$src/tools/models/default.tir" --input "x=$tmp/x1.npy"
expect 1 "no input named 'y'; its inputs are: 'x', 's'" \
  "$kiln" run "$tmp/two.kiln" --input "y=$tmp/x1.npy" --input "s=$tmp/s1.npy"
expect 1 "no file for input 's'" "$kiln" run "$tmp/two.kiln" --input "x=$tmp/x1.npy"
expect 1 "has 2 inputs: name each one" "$kiln" run "$tmp/two.kiln" --input "$tmp/x1.npy"
expect 1 "input 'x' is given twice" "$kiln" run "$tmp/two.kiln" --input "x=$tmp/x1.npy" --input "x=$tmp/x2.npy"
expect 1 "x_f64.npy: input 'x' of the model is float32, the file holds float64" \
  "$kiln" run "$tmp/two.kiln" --input "x=$tmp/x_f64.npy" --input "s=$tmp/s2.npy"
expect 1 "gi.npy: input 'x' of the model is float32, the file holds int32" \
  "$kiln" run "$tmp/two.kiln" --input "x=$tmp/gi.npy" --input "s=$tmp/s2.npy"
expect 1 "x_rank3.npy\|\[2, 2, 2\]" "$kiln" run "$tmp/two.kiln" --input "x=$tmp/x_rank3.npy" --input "s=$tmp/s2.npy"
expect 1 "x_trunc.npy: truncated: the header's shape (2, 4) of float32 needs 32 bytes of data, the file has 27" \
  "$kiln" run "$tmp/two.kiln" --input "x=$tmp/x_trunc.npy" --input "s=$tmp/s2.npy"
expect 1 "x_garbage.npy: not a .npy file" "$kiln" run "$tmp/two.kiln" --input "x=$tmp/x_garbage.npy" --input "s=$tmp/s2.npy"
expect 1 "x_badheader.npy: malformed .npy header: no 'descr' key" \
  "$kiln" run "$tmp/two.kiln" --input "x=$tmp/x_badheader.npy" --input "s=$tmp/s2.npy"
expect 1 "x_big.npy: big-endian data ('>f4') is not supported" \
  "$kiln" run "$tmp/two.kiln" --input "x=$tmp/x_big.npy" --input "s=$tmp/s2.npy"
expect 1 "x_fortran.npy: the array is in Fortran (column-major) order; save np.ascontiguousarray" \
  "$kiln" run "$tmp/two.kiln" --input "x=$tmp/x_fortran.npy" --input "s=$tmp/s2.npy"
expect 1 "nothing.npy: cannot read" "$kiln" run "$tmp/two.kiln" --input "x=$tmp/nothing.npy" --input "s=$tmp/s2.npy"
expect 1 "--pad q:0" "$kiln" run "$tmp/two.kiln" --input "x=$tmp/x3.npy" --input "s=$tmp/s3.npy" --pad q:0
expect 1 "--pad x:5: input 'x' has 2 axes" "$kiln" run "$tmp/two.kiln" --input "x=$tmp/x3.npy" --input "s=$tmp/s3.npy" --pad x:5
expect 1 "has 3 buckets (0 to 2); there is no bucket 3" "$kiln" bench "$tmp/two.kiln" --bucket 3
expect 1 "--input-dims has 1 list, .* has 2 inputs" "$kiln" bench "$tmp/two.kiln" --input-dims 1,4
expect 1 "--input-dims has 3 lists, .* has 2 inputs" "$kiln" bench "$tmp/two.kiln" --input-dims 1,4:1,3:1
expect 1 "3" "$kiln" bench "$tmp/two.kiln" --input-dims 3,4:3,3 --iters 1 --min-time 0
expect 1 "summary.txt: not a directory" "$kiln" run "$tmp/two.kiln" --input "x=$tmp/x1.npy" --input "s=$tmp/s1.npy" --output-dir "$tmp/summary.txt"
expect 1 "cannot create" "$kiln" run "$tmp/two.kiln" --input "x=$tmp/x1.npy" --input "s=$tmp/s1.npy" --output-dir "$tmp/no/such/dir"

if [ "$failures" -ne 0 ]; then echo "$failures compiled-model CLI checks failed"; exit 1; fi
echo "all compiled-model CLI checks passed"
