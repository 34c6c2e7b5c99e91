"""Tests of the `kiln` Python package (python-bindings/kiln): the users' flow (compile from
PyTorch / ONNX for buckets, Runtime with numpy and torch tensors, padding, save/load,
profiling, zero-copy inputs, threads), the researchers' flow (Relay and TIR text, passes one
by one, lowering, schedule primitives, traces, single kernels, tuning and the database), and
the errors of each part (KilnError with the status and C message; TypeError / ValueError
for wrong Python arguments).

Models are tiny (a conv/bn/relu/pool/linear CNN with random weights and a dynamic batch, and
the bundled tools/models/default.onnx) so that the file runs in well under 3 minutes on two
cores. libkiln.so comes from $KILN_LIBRARY (set by meson), else build/libkiln.so.
"""
import gc
import json
import os
import signal
import sys
import time

import numpy as np
import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "python-bindings"))

import kiln  # noqa: E402
from kiln import _lib  # noqa: E402

DEFAULT_ONNX = os.path.join(REPO, "tools", "models", "default.onnx")
DEFAULT_TIR = os.path.join(REPO, "tools", "models", "default.tir")
BUCKETS = [[("input", [1, 3, 8, 8], "float32")], [("input", [4, 3, 8, 8], "float32")]]

# The researchers' C functions (schedules, kernels, lowering, tuning, database).
HAS_RESEARCH = all(_lib.has(f) for f in ("kiln_schedule_new", "kiln_kernel_build",
                                         "kiln_relay_module_lower"))
HAS_TUNE = all(_lib.has(f) for f in ("kiln_tune", "kiln_db_open"))
research = pytest.mark.skipif(not HAS_RESEARCH, reason="libkiln.so lacks the schedule API")
tuning = pytest.mark.skipif(not HAS_TUNE, reason="libkiln.so lacks the tuning API")


class TinyCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        y = torch.nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return self.fc(torch.flatten(y, 1))


def assert_close(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    scale = float(np.abs(want).max())
    assert scale > 1e-2, "%s: degenerate reference (max |y| = %g)" % (what, scale)
    assert got.shape == want.shape, "%s: shape %s, want %s" % (what, got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * scale, err_msg=what)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = TinyCNN().eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.2, 0.2)
        model.bn.running_var.uniform_(0.5, 1.5)
        model.bn.weight.uniform_(0.5, 1.5)
        model.bn.bias.uniform_(-0.2, 0.2)
    return model


@pytest.fixture(scope="module")
def compiled(net):
    return kiln.compile_from_torch(net, BUCKETS)


def ref(net, x):
    with torch.no_grad():
        return net(torch.as_tensor(x)).numpy()


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---- Users' flow --------------------------------------------------------------------------------


@pytest.mark.parametrize("tensor_type", ["np", "pt"])
def test_runtime_matches_torch(net, compiled, tensor_type):
    rt = kiln.Runtime(compiled, tensor_type=tensor_type)
    assert rt.last_bucket is None
    for batch, bucket in ((1, 0), (4, 1), (3, 1)):  # batch 3 runs padded into bucket 1
        x = rand(batch, 3, 8, 8, seed=batch)
        y = rt(x if tensor_type == "np" else torch.from_numpy(x))
        assert isinstance(y, np.ndarray if tensor_type == "np" else torch.Tensor)
        assert_close(np.asarray(y), ref(net, x), "%s batch %d" % (tensor_type, batch))
        assert rt.last_bucket == bucket
    # named inputs
    x = rand(1, 3, 8, 8, seed=7)
    assert_close(np.asarray(rt(input=x)), ref(net, x), "named input")


def test_compiled_stats_warnings_and_model_info(compiled):
    st = compiled.stats
    assert st["nbuckets"] == 2 and st["nkernels"] >= 4 and st["nfrom_db"] == 0
    assert st["ncalls"] >= 2 * 4 and st["code_bytes"] > 0 and st["params_bytes"] > 0
    assert st["seconds_total"] >= st["seconds_codegen"] > 0
    assert compiled.warnings == [] and st["nwarnings"] == 0
    m = compiled.load()
    assert m.inputs == [kiln.TensorInfo("input", "float32", 4)]
    assert m.outputs == [kiln.TensorInfo("output", "float32", 2)]
    assert m.buckets == [{"input": (1, 3, 8, 8)}, {"input": (4, 3, 8, 8)}]
    assert m.output_shapes(1) == [(4, 5)]
    planned, naive = m.memory(1)
    assert 0 < planned <= naive
    assert m.num_calls(0) == len(m.plan["buckets"][0]["calls"]) >= 4
    assert m.meta["paddable"] == [[0, 0]]  # automatic: the batch axis differs
    with pytest.raises(ValueError, match="bucket 2 out of range"):
        m.memory(2)
    with pytest.raises(TypeError, match="bucket"):
        m.output_shapes("0")


def test_default_paddable_is_the_batch_axis_only():
    from kiln import compiler
    buckets = compiler.normalize_buckets([{"input": [1, 3, 32, 32]}, {"input": [4, 3, 32, 32]},
                                          {"input": [1, 3, 64, 64]}])
    # every differing axis becomes a dynamic axis of the export ...
    assert compiler.differing_axes(buckets) == [("input", 0), ("input", 2), ("input", 3)]
    # ... but only the batch is padded by default: zero rows of an image change the result
    assert compiler.auto_paddable(buckets) == [("input", 0)]
    assert compiler.auto_paddable(buckets[:1]) == []


def test_save_load_round_trip(net, compiled, tmp_path):
    path = str(tmp_path / "tiny.kiln")
    assert compiled.save(path) == path
    data = compiled.to_bytes()
    assert open(path, "rb").read() == data
    x = rand(4, 3, 8, 8, seed=3)
    want = ref(net, x)
    for src in (path, data, kiln.load(path), kiln.load(data)):
        rt = kiln.Runtime(src)
        assert_close(rt(x), want, "loaded from %s" % type(src).__name__)
    assert kiln.load(path).name == path


def test_load_errors(compiled, tmp_path):
    bad = tmp_path / "garbage.kiln"
    bad.write_bytes(b"KILN" + bytes(200))
    with pytest.raises(kiln.KilnError) as e:
        kiln.load(str(bad))
    assert e.value.status == _lib.ERR_CORRUPT and e.value.status_name == "corrupted data"
    assert "garbage.kiln" in e.value.message
    data = compiled.to_bytes()
    trunc = tmp_path / "truncated.kiln"
    trunc.write_bytes(data[:len(data) // 2])
    with pytest.raises(kiln.KilnError) as e:
        kiln.Runtime(str(trunc))
    assert e.value.status == _lib.ERR_CORRUPT and "truncated.kiln" in str(e.value)
    assert "truncated" in e.value.message
    with pytest.raises(kiln.KilnError) as e:
        kiln.load(data[:-1])
    assert e.value.status == _lib.ERR_CORRUPT
    with pytest.raises(kiln.KilnError) as e:
        kiln.load(str(tmp_path / "missing.kiln"))
    assert e.value.status == _lib.ERR_IO and "missing.kiln" in str(e.value)
    with pytest.raises(TypeError, match="path or bytes"):
        kiln.load(42)


def test_wrong_shape_lists_buckets(compiled):
    rt = kiln.Runtime(compiled, paddable=[])  # no padding: batch 3 fits no bucket
    with pytest.raises(kiln.KilnError) as e:
        rt(rand(3, 3, 8, 8))
    assert e.value.status == _lib.ERR_SHAPE
    msg = e.value.message.replace(" ", "")
    assert "(3,3,8,8)" in msg and "(1,3,8,8)" in msg and "(4,3,8,8)" in msg
    rt.set_paddable("input", 0)  # declared again: now it runs padded
    assert rt(rand(3, 3, 8, 8)).shape == (3, 5) and rt.last_bucket == 1
    with pytest.raises(kiln.KilnError) as e:  # larger than every bucket
        rt(rand(5, 3, 8, 8))
    assert e.value.status == _lib.ERR_SHAPE and "(4,3,8,8)" in e.value.message.replace(" ", "")
    with pytest.raises(kiln.KilnError) as e:
        rt.set_paddable(0, 9)
    assert e.value.status == _lib.ERR_MISUSE
    with pytest.raises(ValueError, match="'nope'"):
        rt.set_paddable("nope", 0)


def test_wrong_dtype_and_arguments(compiled):
    rt = kiln.Runtime(compiled)
    with pytest.raises(TypeError) as e:
        rt(np.zeros((1, 3, 8, 8), np.float64))
    assert "'input'" in str(e.value) and "float64" in str(e.value) and "float32" in str(e.value)
    with pytest.raises(TypeError) as e:
        rt(torch.zeros(1, 3, 8, 8, dtype=torch.int64))
    assert "'input'" in str(e.value) and "int64" in str(e.value) and "float32" in str(e.value)
    with pytest.raises(TypeError, match="missing input.*input"):
        rt()
    with pytest.raises(TypeError, match="unknown input 'x'"):
        rt(x=rand(1, 3, 8, 8))
    with pytest.raises(TypeError, match="takes 1 inputs"):
        rt(rand(1, 3, 8, 8), rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="tensor_type"):
        kiln.Runtime(compiled, tensor_type="tf")
    # a list is converted (one copy) to the input's dtype
    assert rt(rand(1, 3, 8, 8).tolist()).shape == (1, 5)
    rt.close()
    with pytest.raises(ValueError, match="closed"):
        rt(rand(1, 3, 8, 8))


def test_zero_copy_inputs_and_output_views(net, compiled):
    """A model returning its input: the output (copy=False) is the caller's memory itself
    when the input was bound in place, and a copy for a non-contiguous input."""
    m = kiln.relay.parse("def @main(%x: Tensor[(2, 3), float32], %y: Tensor[(2, 3), float32]) {\n"
                         "  (%x, add(%x, %y))\n}\n")
    rt = kiln.Runtime(kiln.compile(m))
    x, y = rand(2, 3, seed=1), rand(2, 3, seed=2)
    out_x, out_sum = rt.run(x, y, copy=False)
    assert out_x.__array_interface__["data"][0] == x.ctypes.data
    np.testing.assert_allclose(out_sum, x + y, rtol=1e-6)
    xt = torch.from_numpy(rand(2, 3, seed=3))
    assert rt.run(xt, y, copy=False)[0].__array_interface__["data"][0] == xt.data_ptr()
    xf = np.asfortranarray(x)  # not C-contiguous: bound through one copy
    out_x, _ = rt.run(xf, y, copy=False)
    assert out_x.__array_interface__["data"][0] != xf.ctypes.data
    np.testing.assert_array_equal(out_x, x)
    # default outputs are copies; copy=False views see the next run's results
    rt2 = kiln.Runtime(compiled)
    a, b = rand(1, 3, 8, 8, seed=4), rand(1, 3, 8, 8, seed=5)
    copied = rt2(a)
    view = rt2.run(a, copy=False)
    rt2(b)
    assert_close(copied, ref(net, a), "copied output")
    assert_close(view, ref(net, b), "view after the next run")


def test_profile_report_and_entries(compiled):
    rt = kiln.Runtime(compiled)
    n = compiled.load().num_calls(0)
    rt.profile(True)
    x = rand(1, 3, 8, 8)
    rt(x)
    rt(x)
    text = rt.profile_report()
    assert "total" in text and "fused_nn_conv2d" in text
    rep = rt.profile_report(json=True)
    assert rep["runs"] == 2 and len(rep["calls"]) == n and rep["total_us"] > 0
    entries = rt.profile_entries()
    assert len(entries) == n and all(e["count"] == 2 and e["bucket"] == 0 for e in entries)
    assert {e["kernel"] for e in entries} == {c["kernel"] for c in rep["calls"]}
    rt.profile(True)  # turning it on again clears the record
    assert rt.profile_entries() == []
    rt.profile(False)
    b = rt.benchmark(x, repeats=3, warmup=1)
    assert b["repeats"] == 3 and 0 < b["min_ms"] <= b["median_ms"] <= b["max_ms"]
    with pytest.raises(ValueError, match="repeats"):
        rt.benchmark(x, repeats=0)


def test_num_threads():
    old = kiln.num_threads()
    assert old >= 1
    try:
        kiln.set_num_threads(1)
        assert kiln.num_threads() == 1
        kiln.set_num_threads(2)
        assert kiln.num_threads() == 2
    finally:
        kiln.set_num_threads(old)
    with pytest.raises(TypeError, match="n must be an int"):
        kiln.set_num_threads("2")
    assert isinstance(kiln.__version__, str) and kiln.__version__.count(".") == 2


def test_compile_from_onnx_default_model(tmp_path):
    x = np.load(os.path.join(REPO, "tools", "models", "default_input.npy"))
    want = np.load(os.path.join(REPO, "tools", "models", "default_output.npy"))
    import onnx
    for model, info in ((DEFAULT_ONNX, {"input": [1, 3, 32, 32]}),
                        (open(DEFAULT_ONNX, "rb").read(), [("input", [1, 3, 32, 32], "float32")]),
                        (onnx.load(DEFAULT_ONNX), [[("input", (1, 3, 32, 32))]])):
        c = kiln.compile_from_onnx(model, info, opt_level=2, model_name="dflt")
        assert c.stats["nbuckets"] == 1
        rt = kiln.Runtime(c)
        assert_close(rt(x), want, "default model")
        assert rt.model.meta["model"] == "dflt" and rt.model.meta["paddable"] == []


def test_compile_errors():
    def compile_err(info, **kw):
        with pytest.raises(kiln.KilnError) as e:
            kiln.compile_from_onnx(DEFAULT_ONNX, info, **kw)
        return e.value

    e = compile_err({"inp": [1, 3, 32, 32]})
    assert e.status == _lib.ERR_UNDEFINED and "'inp'" in e.message
    e = compile_err({"input": [1, 3, 31, 32]})
    assert e.status == _lib.ERR_SHAPE and "axis 2" in e.message
    e = compile_err([{"input": [1, 3, 32, 32]}, {"input": [1, 3, 32, 32]}])
    assert e.status == _lib.ERR_MISUSE and "same input shapes" in e.message
    e = compile_err({"input": [1, 3, 32, 32]}, paddable=[("input", 7)])
    assert e.status == _lib.ERR_MISUSE and "axis 7" in e.message
    e = compile_err(None)  # the model's batch is symbolic
    assert e.status == _lib.ERR_SHAPE and "symbolic" in e.message
    e = compile_err({"input": [1, 3, 32, 32]}, target="bogus")
    assert "bogus" in e.message
    with pytest.raises(TypeError, match="'input' has dtype float32 in the model, not float16"):
        kiln.compile_from_onnx(DEFAULT_ONNX, [("input", [1, 3, 32, 32], "float16")])
    with pytest.raises(ValueError, match="negative"):
        kiln.compile_from_onnx(DEFAULT_ONNX, {"input": [-1, 3, 32, 32]})
    with pytest.raises(ValueError, match="bucket 0"):
        kiln.compile_from_onnx(DEFAULT_ONNX, [[1, 2]])
    with pytest.raises(ValueError, match="paddable"):
        kiln.compile_from_onnx(DEFAULT_ONNX, {"input": [1, 3, 32, 32]}, paddable=[0])
    with pytest.raises(ValueError, match="opt_level"):
        kiln.compile_from_onnx(DEFAULT_ONNX, {"input": [1, 3, 32, 32]}, opt_level=7)
    with pytest.raises(kiln.KilnError) as e:
        kiln.compile_from_onnx(b"not an onnx model", {"input": [1, 3, 32, 32]})
    assert e.value.status == _lib.ERR_CORRUPT
    with pytest.raises(TypeError, match="kiln.relay.Module"):
        kiln.compile("def @main() {}")


def test_objects_outlive_their_parents(net):
    """A Runtime keeps its model alive, a Compiled its context; cyclic garbage (a module
    kept by a traceback) is collected without crashing."""
    c = kiln.compile_from_torch(net, BUCKETS[:1])
    rt = kiln.Runtime(c.load())
    del c
    gc.collect()
    x = rand(1, 3, 8, 8)
    assert_close(rt(x), ref(net, x), "after the Compiled was dropped")
    # Objects in a cycle are finalized in no fixed order: a context freed before the
    # modules made on it would crash here (it did, before contexts were reference-counted).
    for _ in range(20):
        m = kiln.relay.parse("def @main(%x: Tensor[(2,), float32]) {\n  nn.relu(%x)\n}\n")
        t = kiln.tir.parse(open(DEFAULT_TIR).read())
        cycle = [m, t, kiln.tir.parse(t.text)]
        cycle.append(cycle)
        del m, t, cycle
        gc.collect()


def test_handles_freed_at_interpreter_exit(tmp_path):
    """Objects of every kind left in globals (one in a reference cycle) when the interpreter
    exits: no crash, no error output."""
    script = tmp_path / "leftovers.py"
    script.write_text("""
import sys
sys.path.insert(0, %r)
import numpy as np
import kiln
mod = kiln.tir.parse(open(%r).read())
relay = kiln.relay.from_onnx(%r)
compiled = kiln.compile_from_onnx(%r, {"input": [1, 3, 32, 32]})
rt = kiln.Runtime(compiled)
out = rt.run(np.zeros((1, 3, 32, 32), np.float32), copy=False)
cycle = [relay, rt]
cycle.append(cycle)
if kiln._lib.has("kiln_schedule_new"):
    sch = kiln.Schedule(mod)
    kern = kiln.build(sch)
    cycle.append(sch)
if kiln._lib.has("kiln_db_open"):
    db = kiln.Database(%r)
print("done")
""" % (os.path.join(REPO, "python-bindings"), DEFAULT_TIR, DEFAULT_ONNX, DEFAULT_ONNX,
       str(tmp_path / "x.db")))
    import subprocess
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       env=dict(os.environ), timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "done", p.stdout + p.stderr
    assert "Exception" not in p.stderr and "Error" not in p.stderr, p.stderr


# ---- Relay ---------------------------------------------------------------------------------------

RELAY = """def @main(%x: Tensor[(2, 3), float32], %w: Tensor[(4, 3), float32]) {
  %0 = nn.dense(%x, %w);
  %1 = multiply(%0, 2f);
  nn.relu(%1)
}
"""


def test_relay_parse_print_and_passes_one_by_one():
    m = kiln.relay.parse(RELAY)
    assert m.funcs == ["main"] and "nn.dense(%x, %w)" in m.text and str(m) == m.text
    again = kiln.relay.parse(m.text)
    assert again == m and again.hash() == m.hash()
    before = m.text
    m.run_passes("InferType")
    m.run_passes(["FoldConstant"])
    assert m == kiln.relay.parse(before)  # nothing to fold here
    m.run_passes("FuseOps")
    assert "primitive=1" in m.text and m.text != before and m != again
    x, w = rand(2, 3, seed=1), rand(4, 3, seed=2)
    got = m.run(x, w, outputs=[((2, 4), "float32")])[0]
    np.testing.assert_allclose(got, np.maximum(x @ w.T * 2, 0), rtol=1e-5, atol=1e-6)
    with pytest.raises(kiln.KilnError) as e:
        m.run(x, w)  # the result type is not in the text of a parsed module
    assert e.value.status == _lib.ERR_MISUSE and "outputs=" in e.value.message


def test_relay_from_onnx_and_errors():
    m = kiln.relay.from_onnx(DEFAULT_ONNX)
    assert "Tensor[(N, 3, 32, 32), float32]" in m.text
    m.bind(N=1)
    x = np.load(os.path.join(REPO, "tools", "models", "default_input.npy"))
    want = np.load(os.path.join(REPO, "tools", "models", "default_output.npy"))
    assert_close(m.run(x)[0], want, "relay interpreter")
    c = kiln.compile(m)  # compile leaves m as it was
    assert_close(kiln.Runtime(c)(x), want, "kiln.compile of a relay module")
    with pytest.raises(kiln.KilnError) as e:
        kiln.relay.parse("def @main(%x: Tensor[(2,), float32]) {\n  nn.nope(%x)\n}\n")
    assert e.value.status in (_lib.ERR_UNDEFINED, _lib.ERR_PARSE) and "nn.nope" in e.value.message
    with pytest.raises(kiln.KilnError) as e:
        kiln.relay.parse("def @main(%x) {\n  %x +\n}\n")
    assert e.value.status == _lib.ERR_PARSE and "2:" in e.value.message
    with pytest.raises(kiln.KilnError) as e:
        kiln.relay.parse(RELAY).run_passes("NoSuchPass")
    assert "NoSuchPass" in e.value.message
    with pytest.raises(TypeError, match="text must be a str"):
        kiln.relay.parse(42)


@research
def test_relay_lower_to_tir():
    m = kiln.relay.parse(RELAY)
    with pytest.raises(kiln.KilnError) as e:
        m.lower()  # FuseOps did not run
    assert e.value.status == _lib.ERR_MISUSE
    m.run_passes("InferType,FuseOps")
    t = m.lower()
    assert len(t.funcs) == 1 and t.funcs[0].startswith("fused_nn_dense")
    t.verify()
    x, w = rand(2, 3, seed=1), rand(4, 3, seed=2)
    out = np.zeros((2, 4), np.float32)
    t.interpret(t.funcs[0], x, w, out)
    np.testing.assert_allclose(out, np.maximum(x @ w.T * 2, 0), rtol=1e-5, atol=1e-6)


# ---- TIR ---------------------------------------------------------------------------------------

MATMUL = """func @matmul(A: buffer(float32, [64, 64]), B: buffer(float32, [64, 64]), \
C: buffer(float32, [64, 64])) attrs {"global_symbol" = "matmul"} {
  block "root"() {
    reads(A[0 +: 64, 0 +: 64], B[0 +: 64, 0 +: 64])
    writes(C[0 +: 64, 0 +: 64])
    for i: int32 in range(0, 64) {
      for j: int32 in range(0, 64) {
        for k: int32 in range(0, 64) {
          block "matmul"(vi: int32 = spatial(0, 64) <- i, vj: int32 = spatial(0, 64) <- j, \
vk: int32 = reduce(0, 64) <- k) {
            reads(A[vi, vk], B[vk, vj])
            writes(C[vi, vj])
            init {
              C[vi, vj] = 0f32;
            }
            C[vi, vj] = C[vi, vj] + A[vi, vk] * B[vk, vj];
          }
        }
      }
    }
  }
}
"""


def test_tir_parse_verify_simplify_interpret():
    m = kiln.tir.parse(open(DEFAULT_TIR).read(), "default.tir")
    assert m.funcs == ["dense_bias_relu"]
    m.verify()
    s = m.simplify()
    assert s != m and s.hash() != m.hash() and "+ 0" not in s.text and "+ 0" in m.text
    assert kiln.tir.parse(m.text) == m and kiln.tir.parse(m.text).hash() == m.hash()
    x, w, b = rand(4, 8, seed=1), rand(8, 6, seed=2), rand(6, seed=3)
    for mod in (m, s):
        out = np.zeros((4, 6), np.float32)
        mod.interpret("dense_bias_relu", x, w, b, out)
        np.testing.assert_allclose(out, np.maximum(x @ w + b, 0), rtol=1e-5, atol=1e-6)
    out = np.zeros((4, 6), np.float32)
    with pytest.raises(TypeError, match="X.*float64.*float32"):
        m.interpret("dense_bias_relu", x.astype(np.float64), w, b, out)
    with pytest.raises(ValueError, match="shape"):
        m.interpret("dense_bias_relu", x, w, b, np.zeros((6, 4), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        m.interpret("dense_bias_relu", x, w, b, np.zeros((6, 4), np.float32).T)
    with pytest.raises(TypeError, match="takes 4 arguments"):
        m.interpret("dense_bias_relu", x, w, b)
    with pytest.raises(ValueError, match="no function 'nope'"):
        m.interpret("nope")


def test_tir_errors():
    with pytest.raises(kiln.KilnError) as e:
        kiln.tir.parse("func @f(A: buffer(float32, [4])) {\n  A[0] = 1f32 +\n}\n")
    assert e.value.status == _lib.ERR_PARSE and "3:1:" in e.value.message
    with pytest.raises(kiln.KilnError) as e:  # the parser checks variables
        kiln.tir.parse("func @f(A: buffer(float32, [4])) {\n  A[i] = 2f32;\n}\n")
    assert e.value.status == _lib.ERR_UNDEFINED and "'i'" in e.value.message
    bad = kiln.tir.parse(BAD_REGIONS)  # parses, but the block writes outside its regions
    with pytest.raises(kiln.KilnError) as e:
        bad.verify()
    assert "block 'copy' stores to buffer 'B'" in e.value.message


BAD_REGIONS = """func @f(A: buffer(float32, [4]), B: buffer(float32, [4])) {
  block "root"() {
    reads(A[0 +: 4])
    writes(B[0 +: 4])
    for i: int32 in range(0, 4) {
      block "copy"(vi: int32 = spatial(0, 4) <- i) {
        reads(A[vi])
        writes(A[vi])
        B[vi] = A[vi];
      }
    }
  }
}
"""


# ---- Schedules and kernels --------------------------------------------------------------------


@research
def test_schedule_primitives_trace_replay_build():
    mod = kiln.tir.parse(MATMUL)
    sch = kiln.Schedule(mod)
    blk = sch.get_block("matmul")
    assert isinstance(blk, kiln.BlockRV) and blk.name == "matmul"
    i, j, k = sch.get_loops(blk)
    assert all(isinstance(lp, kiln.LoopRV) for lp in (i, j, k))
    i0, i1 = sch.split(i, [None, 8])
    j0, j1 = sch.split(j, [16, 4])
    sch.reorder(i0, j0, i1, k, j1)
    sch.parallel(i0)
    sch.vectorize(j1)
    tiles = sch.sample_perfect_tile(k, 2, max_innermost=8)
    assert len(tiles) == 2 and all(isinstance(t, kiln.IntRV) for t in tiles)
    assert tiles[0].value * tiles[1].value == 64 and tiles[1].value <= 8
    trace = sch.trace_dict
    assert trace["version"] == 1
    assert [inst["kind"] for inst in trace["insts"]] == [
        "get_block", "get_loops", "split", "split", "reorder", "parallel", "vectorize",
        "sample_perfect_tile"]
    assert len(trace["insts"][2]["outputs"]) == 2 and len(trace["insts"][7]["outputs"]) == 2
    assert json.loads(sch.trace) == trace
    scheduled = sch.mod
    assert scheduled != mod and "parallel" in str(sch) and "vectorized" in str(sch)
    # the trace replays on a fresh schedule to the same function
    again = kiln.Schedule(kiln.tir.parse(MATMUL)).replay(sch.trace)
    assert again.mod == scheduled
    # build and run the scheduled and the unscheduled function
    a, b = rand(64, 64, seed=1), rand(64, 64, seed=2)
    for src in (sch, mod):
        kern = kiln.build(src)
        assert kern.num_params == 3 and "matmul" in kern.lowered
        c = np.zeros((64, 64), np.float32)
        kern(a, b, c)
        np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)
        t = kern.time(a, b, c, repeats=3, min_seconds=0.01)
        assert t["repeats"] >= 3 and 0 < t["min_s"] <= t["median_s"] <= t["max_s"]
    # against numpy's matmul (printed; no assertion on the ratio: the machine is shared)
    t_kiln = kiln.build(sch).time(a, b, c, repeats=5, min_seconds=0.01)["median_s"]
    t0 = time.perf_counter()
    for _ in range(20):
        a @ b
    t_np = (time.perf_counter() - t0) / 20
    print("64x64x64 matmul: kiln %.1f us, numpy %.1f us" % (t_kiln * 1e6, t_np * 1e6))
    assert 0 < t_kiln < 0.05


ELEMENTWISE = """func @ew(A: buffer(float32, [16, 16]), C: buffer(float32, [16, 16])) \
attrs {"global_symbol" = "ew"} {
  block "root"() {
    reads(A[0 +: 16, 0 +: 16])
    writes(C[0 +: 16, 0 +: 16])
    alloc B: buffer(float32, [16, 16])
    for i: int32 in range(0, 16) {
      for j: int32 in range(0, 16) {
        block "scale"(vi: int32 = spatial(0, 16) <- i, vj: int32 = spatial(0, 16) <- j) {
          reads(A[vi, vj])
          writes(B[vi, vj])
          B[vi, vj] = A[vi, vj] * 2f32;
        }
      }
    }
    for i: int32 in range(0, 16) {
      for j: int32 in range(0, 16) {
        block "shift"(vi: int32 = spatial(0, 16) <- i, vj: int32 = spatial(0, 16) <- j) {
          reads(B[vi, vj])
          writes(C[vi, vj])
          C[vi, vj] = B[vi, vj] + 1f32;
        }
      }
    }
  }
}
"""


@research
@pytest.mark.parametrize("how", ["compute_inline", "reverse_compute_inline", "compute_at",
                                 "reverse_compute_at"])
def test_schedule_inline_and_compute_at(how):
    sch = kiln.Schedule(kiln.tir.parse(ELEMENTWISE))
    scale, shift = sch.get_block("scale"), sch.get_block("shift")
    children = sch.get_child_blocks(sch.get_block("root"))
    assert [b.name for b in children] == ["scale", "shift"] and children[0] != scale
    if how == "compute_inline":
        sch.compute_inline(scale)
    elif how == "reverse_compute_inline":
        sch.reverse_compute_inline(shift)
    elif how == "compute_at":
        sch.compute_at(scale, sch.get_loops(shift)[0])
    else:
        sch.reverse_compute_at(shift, sch.get_loops(scale)[0])
    text = str(sch)
    assert text.count('block "') == (2 if "inline" in how else 3), text
    a = rand(16, 16, seed=4)
    c = np.zeros((16, 16), np.float32)
    kiln.build(sch)(a, c)
    np.testing.assert_allclose(c, a * 2 + 1, rtol=1e-6)
    c2 = np.zeros((16, 16), np.float32)
    sch.mod.interpret("ew", a, c2)
    np.testing.assert_array_equal(c2, c)


@research
def test_schedule_more_primitives():
    """fuse, unroll, annotate, cache_read/write, decompose_reduction, storage_align and the
    sampling instructions on the bundled dense+bias+relu function; the result still
    computes the same and its trace replays."""
    text = open(DEFAULT_TIR).read()
    sch = kiln.Schedule(kiln.tir.parse(text), seed=5)
    mm, br = sch.get_block("matmul"), sch.get_block("bias_relu")
    ij, u, k = sch.get_loops(mm)
    fused = sch.fuse(ij, u)
    assert fused.name == "ij_u_fused"
    sch.unroll(sch.get_loops(mm)[-1])
    sch.annotate(fused, "pragma_test", 4)
    assert sch.cache_read(mm, 0, "global").name == "X_global"
    assert sch.cache_write(br, 0, "global").name == "out_global"
    sch.reverse_compute_at(br, sch.get_loops(mm)[0])
    init = sch.decompose_reduction(mm, sch.get_loops(mm)[-1])
    assert init.name == "matmul_init"
    sch.storage_align(mm, 0, 0, 16, 1)
    v = sch.sample_categorical([1, 2, 4], [0.2, 0.3, 0.5])
    assert v.value in (1, 2, 4)
    loc = sch.sample_compute_location(sch.get_block("X_global"))
    assert isinstance(loc, kiln.LoopRV)
    out_text = str(sch)
    for piece in ("unrolled", '"pragma_test" = 4', "strides=[17, 1]", 'block "matmul_init"'):
        assert piece in out_text, piece
    x, w, b = rand(4, 8, seed=1), rand(8, 6, seed=2), rand(6, seed=3)
    out = np.zeros((4, 6), np.float32)
    kiln.build(sch)(x, w, b, out)
    np.testing.assert_allclose(out, np.maximum(x @ w + b, 0), rtol=1e-5, atol=1e-6)
    assert kiln.Schedule(kiln.tir.parse(text), seed=5).replay(sch.trace_dict).mod == sch.mod
    with pytest.raises(ValueError, match="equal length"):
        sch.sample_categorical([1, 2], [1.0])
    with pytest.raises(TypeError, match="schedule argument"):
        sch.annotate(fused, "k", [1])


@research
def test_schedule_default_rules_and_errors():
    sch = kiln.Schedule(kiln.tir.parse(MATMUL), seed=3)
    sch.apply_default_rules()
    assert len(sch.trace_dict["insts"]) > 0
    a, b, c = rand(64, 64, seed=1), rand(64, 64, seed=2), np.zeros((64, 64), np.float32)
    kiln.build(sch)(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)

    sch = kiln.Schedule(kiln.tir.parse(ELEMENTWISE))
    with pytest.raises(kiln.KilnError) as e:
        sch.compute_inline(sch.get_block("shift"))  # it writes the output
    assert e.value.status == _lib.ERR_SCHEDULE and "'shift'" in e.value.message
    sch = kiln.Schedule(kiln.tir.parse(MATMUL))
    with pytest.raises(kiln.KilnError) as e:
        sch.get_block("nope")
    assert "nope" in e.value.message
    i, j, k = sch.get_loops(sch.get_block("matmul"))
    before = sch.trace
    with pytest.raises(kiln.KilnError) as e:
        sch.split(i, [3, 5])  # 15 != 64
    assert e.value.status == _lib.ERR_SCHEDULE
    assert sch.trace == before  # the schedule is unchanged
    with pytest.raises(kiln.KilnError) as e:
        sch.apply("no_such_instruction", i)
    assert e.value.status == _lib.ERR_UNDEFINED and "no_such_instruction" in e.value.message
    with pytest.raises(kiln.KilnError) as e:
        kiln.Schedule(kiln.tir.parse(MATMUL)).replay('{"version": 1, "insts": [{"bogus": 1}]}')
    assert e.value.status in (_lib.ERR_PARSE, _lib.ERR_SCHEDULE)
    with pytest.raises(kiln.KilnError) as e:
        kiln.Schedule(kiln.tir.parse(MATMUL), func="nope")
    assert e.value.status == _lib.ERR_UNDEFINED
    with pytest.raises(TypeError, match="tir.Module"):
        kiln.Schedule(MATMUL)
    kern = kiln.build(kiln.tir.parse(MATMUL))
    with pytest.raises(kiln.KilnError) as e:
        kern(a, b, np.zeros((64, 32), np.float32))
    assert e.value.status == _lib.ERR_RUNTIME
    with pytest.raises(TypeError, match="takes 3 arguments"):
        kern(a, b)


# ---- Tuning and the database ---------------------------------------------------------------


@tuning
def test_tune_database_and_compile_with_db(tmp_path):
    m = kiln.relay.parse(RELAY.replace("(2, 3)", "(8, 32)").replace("(4, 3)", "(16, 32)"))
    db = str(tmp_path / "tune.db")
    rounds = []
    report = kiln.tune(m, None, db=db, trials=4, seed=1, progress=rounds.append)
    assert isinstance(report, kiln.TuneReport) and rounds
    assert {"round", "trials", "task_name", "est_latency_s"} <= set(rounds[-1])
    assert report.trials == 4 and report.json["db"] == db
    assert sum(t["trials"] for t in report.tasks) == 4
    dense = [t for t in report.tasks if t["name"].startswith("fused_nn_dense")]
    assert len(dense) == 1 and dense[0]["ok"] >= 1 and dense[0]["best_s"] > 0
    assert "fused_nn_dense" in str(report) and "trials" in str(report)
    with kiln.Database(db) as d:
        ws = d.workloads()
        assert {w["hash"] for w in ws} == {t["hash"] for t in report.tasks}
        assert len(d.targets()) == 1
        h = dense[0]["hash"]
        recs = d.records(h)
        assert len(recs) == dense[0]["trials"] and all(r["workload"] for r in recs)
        assert len(d.records()) == 4
        best = d.best(h)
        assert best is not None and best["status"] == "ok" and best["median_s"] > 0
        assert d.best("0000000000000000") is None
    c = kiln.compile(m, db=db)
    assert c.stats["nfrom_db"] > 0
    x, w = rand(8, 32, seed=1), rand(16, 32, seed=2)
    np.testing.assert_allclose(kiln.Runtime(c)(x, w), np.maximum(x @ w.T * 2, 0), rtol=1e-4,
                               atol=1e-4)
    # merging into an empty database copies every record; merging again skips them
    with kiln.Database(str(tmp_path / "other.db")) as other:
        assert other.merge(db) == (4, 0)
        assert other.merge(db) == (0, 4)
        assert len(other.records()) == 4


@tuning
def test_tune_torch_module_and_progress_errors(net, tmp_path):
    db = str(tmp_path / "torch.db")
    report = kiln.tune(net, BUCKETS[:1], db=db, trials=2)
    assert report.trials == 2 and any("conv2d" in t["name"] for t in report.tasks)

    def stop(progress):
        raise KeyboardInterrupt("stop")

    with pytest.raises(KeyboardInterrupt, match="stop"):  # raised again after kiln_tune
        kiln.tune(net, BUCKETS[:1], db=db, trials=1, progress=stop)
    with pytest.raises(ValueError, match="input_info is required"):
        kiln.tune(net, None, db=db, trials=1)


@tuning
def test_tune_stops_on_request_and_on_ctrl_c(tmp_path):
    m = kiln.relay.parse(RELAY.replace("(2, 3)", "(8, 32)").replace("(4, 3)", "(16, 32)"))
    # progress returning True: the run ends after that round, with its report
    db = str(tmp_path / "stop.db")
    report = kiln.tune(m, None, db=db, trials=500, progress=lambda p: p["round"] >= 2)
    assert report.interrupted and not report.time_limited and report.json["interrupted"]
    assert 2 <= report.trials <= 16
    with kiln.Database(db) as d:
        assert len(d.records()) == report.trials  # every measurement is in the database

    # a real SIGINT (Ctrl-C) during tuning: stops after the round, KeyboardInterrupt after
    db2 = str(tmp_path / "ctrl_c.db")
    seen = []

    def ctrl_c(p):
        seen.append(p["trials"])
        if len(seen) == 2:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        kiln.tune(m, None, db=db2, trials=500, progress=ctrl_c)
    assert len(seen) == 2  # no round after the one Ctrl-C came in
    with kiln.Database(db2) as d:
        assert len(d.records()) == seen[-1]
    # Python's own SIGINT handler is back
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@tuning
def test_tune_and_database_errors(tmp_path):
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"this is not a tuning database" * 10)
    with pytest.raises(kiln.KilnError) as e:
        kiln.Database(str(bad))
    assert e.value.status == _lib.ERR_CORRUPT
    with pytest.raises(ValueError, match="trials"):
        kiln.tune(kiln.relay.parse(RELAY), db=str(tmp_path / "t.db"), trials=0)
    with pytest.raises(TypeError, match="progress"):
        kiln.tune(kiln.relay.parse(RELAY), db=str(tmp_path / "t.db"), progress=3)
    d = kiln.Database(str(tmp_path / "t.db"))
    d.close()
    with pytest.raises(ValueError, match="closed"):
        d.workloads()
