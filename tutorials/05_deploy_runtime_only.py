"""Tutorial 5: deploying with the runtime only.

Compiling needs LLVM, the compiler library and (here) Python. Running does not: a .kiln
artifact holds the weights and the machine code, and the small runtime library
libkiln_runtime.so (libc only) loads and runs it. A device or a service image ships just the
artifact, libkiln_runtime.so and its own program.

This script plays both sides:
  - the build machine: compile a PyTorch model with the kiln package into model.kiln
    (buckets for batch 1 and 4, batch axis paddable) and write an input as raw float32;
  - the target: run 05_deploy.c (the C program tutorial_deploy, built by meson, linked only
    against libkiln_runtime.so) on it, and compare its output with PyTorch;
and shows what the program links against (ldd: no LLVM, no libkiln.so), how it reports
errors, and how to build it by hand.

What to look at in the output: the C program's own printout (buckets, the bucket it ran,
the output), the comparison with PyTorch, the ldd listing, the error messages for a shape
no bucket takes and for a damaged file, the `kiln inspect` summary of the artifact.

Run from the repository root after ./scripts/build.sh:
    PYTHONPATH=python-bindings /usr/bin/python3 tutorials/05_deploy_runtime_only.py
(the program is build/tutorials/tutorial_deploy, or $KILN_TUTORIAL_DEPLOY).
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
from torch import nn

import kiln

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.join(ROOT, "build")
DEPLOY = os.environ.get("KILN_TUTORIAL_DEPLOY") or os.path.join(BUILD, "tutorials",
                                                                "tutorial_deploy")
KILN_EXE = os.environ.get("KILN_EXE") or os.path.join(BUILD, "tools", "kiln")
# libkiln_runtime.so sits next to libkiln.so in the build directory.
LIBDIR = os.path.dirname(os.environ.get("KILN_LIBRARY") or os.path.join(BUILD, "libkiln.so"))


def show(path):
    """A path as printed: the temporary directory abbreviated to $WORK."""
    return path.replace(work, "$WORK") if work else path


def run(cmd, expect_ok=True):
    """Runs a command, prints its output (stdout, then stderr) indented, long lines cut;
    returns (exit status, stdout + stderr)."""
    print("$ " + " ".join(show(c) for c in cmd))
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in (p.stdout + p.stderr).rstrip().splitlines():
        line = show(line)
        print("    " + (line if len(line) <= 110 else line[:106] + " ..."))
    if expect_ok and p.returncode != 0:
        sys.exit("command failed with status %d" % p.returncode)
    return p.returncode, p.stdout + p.stderr


work = None
if not os.path.exists(DEPLOY):
    sys.exit("tutorial_deploy not found at %s: build first (./scripts/build.sh) or set "
             "KILN_TUTORIAL_DEPLOY" % DEPLOY)
work = tempfile.mkdtemp(prefix="kiln_tutorial5_")
print("WORK=%s (temporary files)\n" % work)


# ---- 1. On the build machine: compile and save -------------------------------------------
class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


torch.manual_seed(0)
model = SmallCNN().eval()
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)

# Batch 1 and 4; the batch axis (differing between the buckets) is declared paddable
# automatically and recorded in the artifact, so the C runtime pads batch 3 into 4 by itself.
compiled = kiln.compile_from_torch(model, [[("input", (1, 3, 32, 32), "float32")],
                                           [("input", (4, 3, 32, 32), "float32")]],
                                   model_name="small_cnn")
artifact = os.path.join(work, "model.kiln")
compiled.save(artifact)
print("wrote %s (%.1f KiB)\n" % (show(artifact), os.path.getsize(artifact) / 1024))

# What the file holds, as the command-line tool shows it (optional: needs the kiln CLI).
if os.path.exists(KILN_EXE):
    run([KILN_EXE, "inspect", artifact])
    print()


# ---- 2. On the target: the C program ------------------------------------------------------
#
# Inputs travel as raw little-endian float32 (numpy's tofile); the program writes the output
# the same way. Batch 1 runs bucket 0; batch 3 is padded into the batch-4 bucket.
rng = np.random.default_rng(0)
for batch, bucket in ((1, 0), (3, 1)):
    x = rng.standard_normal((batch, 3, 32, 32), dtype=np.float32)
    in_path = os.path.join(work, "input%d.f32" % batch)
    out_path = os.path.join(work, "output%d.f32" % batch)
    x.tofile(in_path)
    _, text = run([DEPLOY, artifact, in_path, out_path, ",".join(map(str, x.shape))])
    assert "ran bucket %d" % bucket in text, text
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    got = np.fromfile(out_path, dtype=np.float32).reshape(expected.shape)
    print("  batch %d: max |C runtime - torch| = %.2e\n" % (batch, np.abs(got - expected).max()))
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())


# ---- 3. What the program depends on ------------------------------------------------------
#
# ldd lists the shared libraries the program loads: libkiln_runtime.so and libc, nothing of
# LLVM and not the compiler (libkiln.so). The runtime library itself needs only libc.
print("dependencies:")
_, deps = run(["ldd", DEPLOY])
_, rt_deps = run(["ldd", os.path.join(LIBDIR, "libkiln_runtime.so")])
assert "libkiln_runtime" in deps, deps
for listing in (deps, rt_deps):
    assert "LLVM" not in listing and "libkiln.so" not in listing, listing
print("  -> no LLVM, no compiler: only libkiln_runtime.so and libc\n")


# ---- 4. Errors -----------------------------------------------------------------------------
#
# The program prints kiln_status_str(status) and kiln_last_error(): the runtime's messages
# name the file, the shapes and the buckets, so the user knows what went wrong.
print("errors:")
x = rng.standard_normal((1, 3, 48, 48), dtype=np.float32)   # a resolution no bucket has
x.tofile(os.path.join(work, "big.f32"))
status, text = run([DEPLOY, artifact, os.path.join(work, "big.f32"),
                    os.path.join(work, "big_out.f32"), "1,3,48,48"], expect_ok=False)
assert status == 1 and "shape error" in text and "bucket" in text, text

damaged = os.path.join(work, "damaged.kiln")   # the artifact with a flipped byte
data = bytearray(open(artifact, "rb").read())
data[len(data) // 2] ^= 0xFF
open(damaged, "wb").write(bytes(data))
status, text = run([DEPLOY, damaged, os.path.join(work, "input1.f32"),
                    os.path.join(work, "out.f32")], expect_ok=False)
assert status == 1 and "kiln_model_load" in text, text
print()


# ---- 5. Building the program by hand ----------------------------------------------------
#
# meson builds tutorial_deploy for you; outside the kiln tree it is one compiler call
# against the public header and the runtime library (the rpath lets it find the library
# without LD_LIBRARY_PATH). We build it again that way when a C compiler is around.
cc = shutil.which("cc") or shutil.which("gcc")
hand_built = os.path.join(work, "deploy")
cmd = [cc or "cc", "-std=c11", "-O2", "-Wall", "-Wextra", os.path.join(HERE, "05_deploy.c"),
       "-I", os.path.join(ROOT, "include"), "-L", LIBDIR, "-lkiln_runtime",
       "-Wl,-rpath," + LIBDIR, "-o", hand_built]
print("building by hand:")
if cc:
    run(cmd)
    _, text = run([hand_built, artifact, os.path.join(work, "input1.f32"),
                   os.path.join(work, "output_hand.f32")])
    assert np.array_equal(np.fromfile(os.path.join(work, "output_hand.f32"), np.float32),
                          np.fromfile(os.path.join(work, "output1.f32"), np.float32))
    print("  -> the hand-built program gives the same output")
else:
    print("  (no C compiler found) " + " ".join(cmd))

shutil.rmtree(work, ignore_errors=True)
print("\ntutorial 5 passed")
