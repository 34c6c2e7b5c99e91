#!/bin/sh
# cli_test.sh KILN SRCDIR: the `kiln` command line as a user runs it: the quick-start job on the
# bundled model, and clear errors (exit status 1, no crash) for bad input.
set -u
kiln="$1"
src="$2"
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

expect 0 "bit-identical" "$kiln" tir "$src/tools/models/default.tir"
expect 0 "JIT-compiled code gives bit-identical results" "$kiln" tir "$src/tools/models/default.tir"
out=$("$kiln" tir "$src/tools/models/default.tir" --no-jit 2>&1)
if printf '%s' "$out" | grep -q "JIT-compiled"; then
  echo "FAIL: --no-jit still ran the JIT"; failures=$((failures + 1))
fi
printf 'func @p(n: int32, A: buffer(float32, [n, 4], strides=[8, 1], offset=2)) {\n  for i: int32 in parallel(0, n) {\n    for j: int32 in range(0, 4) {\n      A[i, j] = A[i, j] * 2f32 + exp(A[i, j]);\n    }\n  }\n}\n' > "$tmp/par.tir"
expect 0 "JIT-compiled code gives" "$kiln" tir "$tmp/par.tir" --set n=5
expect 0 "out .*sum" "$kiln" tir "$src/tools/models/default.tir" --quiet
# the simplifier removes the extent-1 loop and the "* 1 + 0" of the default model
expect 0 "after simplification" "$kiln" tir "$src/tools/models/default.tir"
out=$("$kiln" tir "$src/tools/models/default.tir" 2>&1)
if printf '%s' "$out" | grep -q "range(0, 1)\|\* 1 + 0"; then
  echo "FAIL: the simplified default model still has an extent-1 loop or '* 1 + 0'"; failures=$((failures + 1))
fi
expect 0 "kiln 0" "$kiln" version
expect 0 "usage" "$kiln" help
expect 2 "usage" "$kiln"
expect 2 "unknown command 'frobnicate'" "$kiln" frobnicate
expect 1 "cannot open" "$kiln" tir "$tmp/missing.tir"
expect 2 "no file given" "$kiln" tir
expect 2 "unknown option '--bogus'" "$kiln" tir "$src/tools/models/default.tir" --bogus
expect 1 "no function 'nope'" "$kiln" tir "$src/tools/models/default.tir" --func nope

printf 'func @f(A: buffer(float32, [4])) {\n  A[0] = 1f32\n}\n' > "$tmp/bad.tir"
expect 1 "bad.tir:3:1" "$kiln" tir "$tmp/bad.tir"
printf 'func @f(A: buffer(float32, [4])) {\n  A[0] = 1;\n}\n' > "$tmp/type.tir"
expect 1 "int32" "$kiln" tir "$tmp/type.tir"
head -c 900 "$src/tools/models/default.tir" > "$tmp/trunc.tir"
expect 1 "trunc.tir" "$kiln" tir "$tmp/trunc.tir"
printf 'func @g(n: int32, A: buffer(float32, [n])) {\n  for i: int32 in range(0, n) {\n    A[i] = 2f32;\n  }\n}\n' > "$tmp/sym.tir"
expect 1 "needs a value" "$kiln" tir "$tmp/sym.tir"
expect 0 "A  *float32 *\[2, 2, 2\]" "$kiln" tir "$tmp/sym.tir" --set n=3
printf 'func @h(A: buffer(float32, [4])) {\n  for i: int32 in range(0, 5) {\n    A[i] = 2f32;\n  }\n}\n' > "$tmp/oob.tir"
expect 1 "out of bounds" "$kiln" tir "$tmp/oob.tir"

# kiln relay: the default pipeline fuses the golden conv2d + batch_norm block into one
# primitive function; named passes, shape binding, and clear errors
relay_src="$src/tests/golden/relay_pass"
sed -n '/^def/,/^}/{p;/^}/q}' "$relay_src/pipeline.relay" > "$tmp/block.relay"
expect 0 "fn \[primitive=1\]" "$kiln" relay "$tmp/block.relay"
expect 0 "FuseOps  *[0-9.]*  *yes" "$kiln" relay "$tmp/block.relay" --time
expect 0 "# after FoldScaleAxis" "$kiln" relay "$tmp/block.relay" --dump
expect 0 "batch_norm" "$kiln" relay "$tmp/block.relay" --passes InferType
expect 0 "FoldScaleAxis" "$kiln" relay --passes list
expect 2 "unknown pass 'Bogus'" "$kiln" relay "$tmp/block.relay" --passes InferType,Bogus
expect 1 "cannot open" "$kiln" relay "$tmp/missing.relay"
expect 2 "no file given" "$kiln" relay
printf 'def @main(%%x: Tensor[(n, 3), float32]) {\n  nn.relu(%%x)\n}\n' > "$tmp/sym.relay"
expect 0 "Tensor\[(4, 3), float32\]" "$kiln" relay "$tmp/sym.relay" --bind n=4
expect 1 "no dimension 'm' (it has: n)" "$kiln" relay "$tmp/sym.relay" --bind m=4
expect 2 "--bind takes NAME=VALUE" "$kiln" relay "$tmp/sym.relay" --bind n
printf 'def @main(%%x: Tensor[(2,), float32], %%w) {\n  add(%%x, %%x)\n}\n' > "$tmp/unannotated.relay"
expect 1 "unannotated.relay:1:38: InferType @main: parameter %w needs a type annotation" "$kiln" relay "$tmp/unannotated.relay"
printf 'def @main(%%x: Tensor[(2,), float32]) {\n  add(%%x, %%y)\n}\n' > "$tmp/undefined.relay"
expect 1 "undefined.relay:2:11" "$kiln" relay "$tmp/undefined.relay"

# kiln asm: assembly and LLVM IR of the generated code
expect 0 "dense_bias_relu:" "$kiln" asm "$src/tools/models/default.tir"
expect 0 "zmm\|vfmadd" "$kiln" asm "$src/tools/models/default.tir" --target "llvm -mcpu=znver4 -mattr=+avx512f,+fma -fast-math"
expect 0 "fmax" "$kiln" asm "$src/tools/models/default.tir" --target "llvm -mtriple=aarch64-linux-gnu -mcpu=neoverse-n1"
expect 0 "define .*@dense_bias_relu" "$kiln" asm "$src/tools/models/default.tir" --ir --func dense_bias_relu
expect 0 "target triple = \"aarch64" "$kiln" asm "$src/tools/models/default.tir" --ir --target "llvm -mtriple=aarch64-linux-gnu"
# --no-opt keeps the unoptimized IR (allocas that -O3 removes)
noopt=$("$kiln" asm "$src/tools/models/default.tir" --ir --no-opt 2>&1 | grep -c "alloca")
opt=$("$kiln" asm "$src/tools/models/default.tir" --ir 2>&1 | grep -c "alloca")
if [ "$noopt" -le "$opt" ]; then
  echo "FAIL: kiln asm --no-opt IR has $noopt allocas, optimized $opt"; failures=$((failures + 1))
fi
if ! "$kiln" asm "$src/tools/models/default.tir" -o "$tmp/out.s" || ! grep -q "dense_bias_relu:" "$tmp/out.s"; then
  echo "FAIL: kiln asm -o did not write the assembly"; failures=$((failures + 1))
fi
expect 1 "no function 'nope'" "$kiln" asm "$src/tools/models/default.tir" --func nope
expect 1 "unknown target option" "$kiln" asm "$src/tools/models/default.tir" --target "llvm -bogus=1"
expect 1 "cannot open" "$kiln" asm "$tmp/missing.tir"
expect 2 "no file given" "$kiln" asm
expect 2 "unknown option or missing value: '--bogus'" "$kiln" asm "$src/tools/models/default.tir" --bogus
expect 2 "opt-level takes" "$kiln" asm "$src/tools/models/default.tir" --opt-level 9
expect 1 "bad.tir:3:1" "$kiln" asm "$tmp/bad.tir"
expect 1 "cannot write" "$kiln" asm "$src/tools/models/default.tir" -o "$tmp/no/such/dir/out.s"
expect 1 "unknown CPU 'bogus'" "$kiln" asm "$src/tools/models/default.tir" --target "llvm -mcpu=bogus"

# kiln import: ONNX models written by Debian's python3-onnx
/usr/bin/python3 "$src/tests/make_onnx_model.py" gemm "$tmp/gemm.onnx"
/usr/bin/python3 "$src/tests/make_onnx_model.py" unsupported "$tmp/unsupported.onnx"
expect 0 "nn.dense(%x" "$kiln" import "$tmp/gemm.onnx"
expect 0 "Tensor\[(batch, 3), float32\]" "$kiln" import "$tmp/gemm.onnx"
if ! "$kiln" import "$tmp/gemm.onnx" -o "$tmp/gemm.relay" || ! grep -q "nn.relu" "$tmp/gemm.relay"; then
  echo "FAIL: kiln import -o did not write the module"; failures=$((failures + 1))
fi
expect 0 "fn \[primitive=1\]" "$kiln" relay "$tmp/gemm.relay"
expect 1 "TopK (opset 13, node 'topk_1'), NonZero (opset 13, node 'nz_2')" "$kiln" import "$tmp/unsupported.onnx"
expect 1 "cannot open\|No such file" "$kiln" import "$tmp/missing.onnx"
head -c 60 "$tmp/gemm.onnx" > "$tmp/trunc.onnx"
expect 1 "truncated or corrupt" "$kiln" import "$tmp/trunc.onnx"

# kiln lower: fused groups as scheduled, lowered TIR; traces out and replayed
cat > "$tmp/net.relay" <<'EOF_RELAY'
def @main(%x: Tensor[(n, 3, 16, 16), float32], %w: Tensor[(8, 3, 3, 3), float32], %b: Tensor[(8,), float32]) {
  %0 = nn.conv2d(%x, %w, padding=[1, 1, 1, 1]);
  %1 = nn.bias_add(%0, %b);
  %2 = nn.relu(%1);
  %3 = nn.max_pool2d(%2, pool_size=[2, 2], strides=[2, 2]);
  %4 = nn.batch_flatten(%3);
  nn.softmax(%4)
}
EOF_RELAY
expect 0 "workload [0-9a-f]*: nn.conv2d+nn.bias_add+nn.relu (1,3,16,16)f32" "$kiln" lower "$tmp/net.relay" --bind n=1
expect 0 "parallel(" "$kiln" lower "$tmp/net.relay" --bind n=1
expect 0 "block \"conv2d\"" "$kiln" lower "$tmp/net.relay" --bind n=1 --schedule none --no-pipeline
mkdir -p "$tmp/traces"
expect 0 "func @fused_nn_softmax" "$kiln" lower "$tmp/net.relay" --bind n=1 --trace-out "$tmp/traces"
# a trace folder that does not exist: the reason, not a bogus "out of memory"
expect 1 "cannot write '$tmp/no/such/dir/fused_nn_.*': No such file or directory" \
  "$kiln" lower "$tmp/net.relay" --bind n=1 --trace-out "$tmp/no/such/dir"
if "$kiln" lower "$tmp/net.relay" --bind n=1 --trace-out "$tmp/no/such/dir" 2>&1 >/dev/null |
    grep -q "out of memory"; then
  echo "FAIL: kiln lower --trace-out into a missing folder reports out of memory"
  failures=$((failures + 1))
fi
f=fused_nn_conv2d_nn_bias_add_nn_relu
if ! grep -q '"kind": *"sample_perfect_tile"' "$tmp/traces/$f.json"; then
  echo "FAIL: kiln lower --trace-out wrote no trace for $f"; failures=$((failures + 1))
fi
"$kiln" lower "$tmp/net.relay" --bind n=1 --func $f > "$tmp/default.txt" 2>&1
if ! "$kiln" lower "$tmp/net.relay" --bind n=1 --func $f --replay "$tmp/traces/$f.json" -o "$tmp/replayed.txt"; then
  echo "FAIL: kiln lower --replay failed"; failures=$((failures + 1))
elif ! cmp -s "$tmp/default.txt" "$tmp/replayed.txt"; then
  echo "FAIL: replaying the default trace did not give the default schedule"; failures=$((failures + 1))
fi
expect 1 "no fused group named 'nope'" "$kiln" lower "$tmp/net.relay" --bind n=1 --func nope
expect 1 "name the one the trace is for with --func" "$kiln" lower "$tmp/net.relay" --bind n=1 --replay "$tmp/traces/$f.json"
printf '{"version": 1, "insts": [{"kind": "split"' > "$tmp/bad.json"
expect 1 "trace" "$kiln" lower "$tmp/net.relay" --bind n=1 --func $f --replay "$tmp/bad.json"
expect 1 "replay: instruction .*no block named" "$kiln" lower "$tmp/net.relay" --bind n=1 --func fused_nn_softmax --replay "$tmp/traces/$f.json"
expect 2 "unknown option" "$kiln" lower "$tmp/net.relay" --frobnicate

# kiln db: a tuning database filled from JSON lines, queried, exported, merged, pruned
cat > "$tmp/recs.jsonl" <<'EOF_JSONL'
{"format": "kiln-tune-db", "schema_version": 2}
{"kind": "workload", "hash": "8da2e7c9174a1f24", "summary": "nn.max_pool2d (1,8,16,16)f32", "func_text": "func @f() {}"}
{"kind": "target", "canonical": "llvm -mcpu=znver4", "cpu": "znver4", "features": "+avx512f"}
{"kind": "record", "workload": "8da2e7c9174a1f24", "target": "llvm -mcpu=znver4", "trace": "{\"version\": 1, \"insts\": []}", "median_s": 0.002, "min_s": 0.0019, "max_s": 0.003, "stddev_s": 0.0001, "repeats": 10, "status": "ok", "error": "", "seed": "0000000000000007", "kiln_version": "0.1.0", "host": "h", "time": 1700000000}
{"kind": "record", "workload": "8da2e7c9174a1f24", "target": "llvm -mcpu=znver4", "trace": "{\"version\": 1, \"insts\": [1]}", "median_s": 0.001, "min_s": 0.0009, "max_s": 0.002, "stddev_s": 0.0001, "repeats": 10, "status": "ok", "error": "", "seed": "0000000000000008", "kiln_version": "0.1.0", "host": "h", "time": 1700000001}
{"kind": "record", "workload": "8da2e7c9174a1f24", "target": "llvm -mcpu=znver4", "trace": "{}", "median_s": 0.0001, "min_s": 0.0001, "max_s": 0.0001, "stddev_s": 0, "repeats": 1, "status": "timeout", "error": "killed after 1 s", "seed": "0000000000000009", "kiln_version": "0.1.0", "host": "h", "time": 1700000002}
EOF_JSONL
expect 0 "imported 3 new records" "$kiln" db import "$tmp/t.db" "$tmp/recs.jsonl"
expect 0 "workload 8da2e7c9174a1f24  nn.max_pool2d" "$kiln" db list "$tmp/t.db"
expect 0 "timeout .*killed after 1 s" "$kiln" db list "$tmp/t.db" --records --workload 8da2e7c9174a1f24
expect 0 "median 1000.000 us" "$kiln" db best "$tmp/t.db" --workload 8da2e7c9174a1f24 --target "llvm -mcpu=znver4"
expect 1 "no ok record" "$kiln" db best "$tmp/t.db" --workload 0000000000000001 --target "llvm -mcpu=znver4"
expect 0 "exported 3 records" "$kiln" db export "$tmp/t.db" "$tmp/out.jsonl"
expect 0 "imported 3 new records" "$kiln" db import "$tmp/t2.db" "$tmp/out.jsonl"
expect 0 "merged 0 new records" "$kiln" db merge "$tmp/t.db" "$tmp/t2.db"
expect 0 "deleted 2 records" "$kiln" db prune "$tmp/t.db" --keep 1 --drop-failed
expect 2 "unknown command 'frob'" "$kiln" db frob "$tmp/t.db"
printf 'this is not a database, just text that is long enough to look like one to nobody\n' > "$tmp/junk.db"
expect 1 "junk.db" "$kiln" db list "$tmp/junk.db"
printf '{"format": "kiln-tune-db", "schema_version": 2}\n{"kind": "record", "workload": 12}\n' > "$tmp/bad.jsonl"
expect 1 "bad.jsonl:2: malformed line" "$kiln" db import "$tmp/t.db" "$tmp/bad.jsonl"

# exit status: --help of every command prints its usage on stdout with status 0; a malformed
# command line is status 2 (the model commands are checked in cli_model_test.sh)
for c in tir relay asm import lower db compile run bench profile inspect; do
  out=$("$kiln" $c --help 2>/dev/null); got=$?
  if [ "$got" != 0 ] || ! printf '%s' "$out" | grep -q "usage" || ! printf '%s' "$out" | grep -q "exit status"; then
    echo "FAIL: kiln $c --help -> status $got, or no usage / exit status on stdout"; failures=$((failures + 1))
  else
    echo "ok: kiln $c --help"
  fi
done
expect 2 "more than one file given" "$kiln" tir "$src/tools/models/default.tir" "$src/tools/models/default.tir"
expect 2 "--set takes NAME=VALUE" "$kiln" tir "$src/tools/models/default.tir" --set n
expect 2 "unexpected argument '--bogus'" "$kiln" import "$tmp/gemm.onnx" --bogus
expect 2 "no file given" "$kiln" import
expect 2 "--schedule takes 'default' or 'none'" "$kiln" lower "$tmp/net.relay" --schedule fast
expect 2 "--keep takes a count" "$kiln" db prune "$tmp/t.db" --keep -3
expect 2 "no database file given" "$kiln" db list

if [ "$failures" -ne 0 ]; then echo "$failures CLI checks failed"; exit 1; fi
echo "all CLI checks passed"
