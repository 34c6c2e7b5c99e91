"""Tutorial 2: from a PyTorch model to a deployable artifact.

The path a model takes to production with kiln:

    torch.nn.Module --(torch.onnx.export)--> ONNX --(kiln import)--> Relay graph
      --(kiln.compile_from_torch: optimize, fuse, lower, schedule, LLVM)--> .kiln artifact
      --(kiln.load / kiln.Runtime, or the C runtime alone)--> outputs

We take torchvision's ResNet-18 (random weights: no download), compile it for batch 1,
check the result against PyTorch, save the artifact, load it back as a deployment would,
compare the speed with PyTorch eager and look at the per-kernel profile.

What to look at in the output:
  - the compile statistics (kernels, weights, where the time went);
  - the largest difference from PyTorch (float32 rounding only);
  - the artifact's size, inputs and outputs after kiln.load;
  - median latency of kiln and of PyTorch eager and their ratio (the machine may be busy:
    this is a demonstration, not a benchmark);
  - the ten kernels that take the most time (convolutions, as expected for a CNN).

Run from the repository root after ./scripts/build.sh:
    PYTHONPATH=python-bindings /usr/bin/python3 tutorials/02_pytorch_to_artifact.py
"""
import os
import shutil
import tempfile
import time

import numpy as np
import torch
import torchvision

import kiln

# Use the same number of threads for both frameworks so the comparison is fair.
threads = max(1, min(4, os.cpu_count() or 1))
torch.set_num_threads(threads)
kiln.set_num_threads(threads)
print("kiln %s, PyTorch %s, %d threads" % (kiln.__version__, torch.__version__,
                                           kiln.num_threads()))


# ---- 1. The PyTorch model --------------------------------------------------------------
#
# weights=None: random initialization, nothing to download. Batch norm statistics are
# randomized too, so that folding batch norm into the convolutions is really exercised.
torch.manual_seed(0)
model = torchvision.models.resnet18(weights=None).eval()
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.1, 0.1)


# ---- 2. Compile ----------------------------------------------------------------------------
#
# One bucket: batch 1 at 224x224. target=None means the host CPU (kiln detects its vector
# width). No tuning database: every kernel gets kiln's default schedule (tutorial 3 tunes).
t0 = time.perf_counter()
compiled = kiln.compile_from_torch(model, [("input", (1, 3, 224, 224), "float32")],
                                   model_name="resnet18")
s = compiled.stats
print("\ncompile_from_torch took %.1f s (ONNX export and import included; kiln's compile %.1f s)"
      % (time.perf_counter() - t0, s["seconds_total"]))
print("  %d kernel calls, %d distinct kernels, weights %.1f MiB, code %.1f KiB" % (
    s["ncalls"], s["nkernels"], s["params_bytes"] / 2**20, s["code_bytes"] / 1024))
print("  compile time: graph passes %.2f s, lowering %.2f s, scheduling %.2f s, LLVM %.2f s" % (
    s["seconds_passes"], s["seconds_lower"], s["seconds_schedule"], s["seconds_codegen"]))


# ---- 3. Check against PyTorch ----------------------------------------------------------
x = torch.randn(1, 3, 224, 224)
with torch.no_grad():
    expected = model(x).numpy()
rt = kiln.Runtime(compiled, tensor_type="np")
got = rt(x)   # a torch tensor goes in without a copy; a numpy array comes out
err = np.abs(got - expected).max()
print("\nmax |kiln - torch| = %.2e (outputs up to %.2f)" % (err, np.abs(expected).max()))
np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())
assert got.argmax() == expected.argmax()


# ---- 4. Save, and load as a deployment would ---------------------------------------------
#
# The .kiln file holds everything: meta data, the plan, the weights and the machine code.
# Loading it needs no LLVM and no compiler (tutorial 5 does it from C); kiln.load maps the
# file, so the weights are not copied.
workdir = tempfile.mkdtemp(prefix="kiln_tutorial2_")
path = os.path.join(workdir, "resnet18.kiln")
compiled.save(path)
del rt, compiled
loaded = kiln.load(path)
print("\nsaved %s (%.1f MiB)" % (path, os.path.getsize(path) / 2**20))
print("  inputs:  %s" % [(t.name, t.dtype, loaded.buckets[0][t.name]) for t in loaded.inputs])
print("  outputs: %s" % [(t.name, t.dtype, shape)
                         for t, shape in zip(loaded.outputs, loaded.output_shapes(0))])
meta = loaded.meta   # the artifact's META section: who made it, when, for which target
print("  made by kiln %s at %s for target %.60s..." % (meta.get("kiln_version"),
                                                      meta.get("created"), meta.get("target")))
rt = kiln.Runtime(loaded, tensor_type="pt")   # outputs as torch tensors this time
got = rt(x)
assert isinstance(got, torch.Tensor)
np.testing.assert_allclose(got.numpy(), expected, rtol=1e-3,
                           atol=1e-4 * np.abs(expected).max())


# ---- 5. Benchmark: kiln vs PyTorch eager --------------------------------------------------
#
# Median of several runs after a warm-up. rt.benchmark times whole runs of the model (inputs
# bound once). The numbers depend on what else runs on the machine: read the ratio, and
# rerun on a quiet machine before drawing conclusions.
REPEATS = 10
bench = rt.benchmark(x, repeats=REPEATS, warmup=3)
with torch.no_grad():
    for _ in range(3):
        model(x)
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        model(x)
        times.append((time.perf_counter() - t0) * 1e3)
torch_ms = float(np.median(times))
print("\nlatency (median of %d, batch 1):" % REPEATS)
print("  kiln          %7.2f ms  (min %.2f, max %.2f)" % (bench["median_ms"], bench["min_ms"],
                                                          bench["max_ms"]))
print("  PyTorch eager %7.2f ms  (min %.2f, max %.2f)" % (torch_ms, min(times), max(times)))
print("  kiln is %.2fx the speed of PyTorch eager" % (torch_ms / bench["median_ms"]))
assert bench["median_ms"] > 0 and bench["repeats"] >= REPEATS


# ---- 6. Where the time goes: the per-kernel profile -------------------------------------
#
# With profiling on, every kernel call is timed. Each entry is one call of the plan (a fused
# kernel such as conv2d + batch norm + ReLU), with how often it ran and its total time.
rt.profile(True)
for _ in range(5):
    rt(x)
entries = sorted(rt.profile_entries(), key=lambda e: -e["total_us"])
rt.profile(False)
total = sum(e["total_us"] for e in entries)
print("\nprofile: top 10 of %d kernel calls (5 runs, %.2f ms per run):" % (
    len(entries), total / 5e3))
print("  %5s  %-52s %9s %6s" % ("call", "kernel", "mean us", "share"))
for e in entries[:10]:
    print("  %5d  %-52s %9.1f %5.1f%%" % (e["call"], e["kernel"][:52], e["total_us"] / e["count"],
                                          100 * e["total_us"] / total))
assert entries and all(e["count"] == 5 for e in entries)
assert len(entries) == loaded.num_calls(0)
shutil.rmtree(workdir, ignore_errors=True)
print("\ntutorial 2 passed")
