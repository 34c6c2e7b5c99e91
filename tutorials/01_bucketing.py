"""Tutorial 1: one model, several input shapes ("buckets"), one runtime.

kiln compiles ahead of time for fixed shapes: every kernel is specialized, scheduled and
code-generated for the exact sizes it will see. Real services see several shapes, though
(a batch of 1 at night, a batch of 4 at peak, sometimes bigger images), so kiln compiles a
model for a list of *buckets*, each one set of input shapes, into ONE artifact: kernels shared
between buckets are compiled once, weights are stored once, and every bucket gets its own
execution plan with its own memory plan. At run time the bucket is picked from the shapes of
the inputs; a batch that fits no bucket exactly is zero-padded into the next larger one when
the batch axis was declared paddable.

What to look at in the output:
  - the buckets of the artifact and, for every run, the bucket the runtime picked;
  - batch 3 running in the batch-4 bucket (padded) and still matching PyTorch;
  - the error message for a shape no bucket takes (it lists every bucket);
  - activation memory per bucket: planned (buffers reused once dead) versus naive.

Run from the repository root after ./scripts/build.sh:
    PYTHONPATH=python-bindings /usr/bin/python3 tutorials/01_bucketing.py
"""
import sys

import numpy as np
import torch
from torch import nn

import kiln


# ---- 1. A small model ---------------------------------------------------------------------
#
# A CIFAR-sized residual CNN with random weights. It ends in global average pooling, so it
# accepts any image size: the same weights serve 32x32 and 64x64 images.

class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(y)))


class TinyNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(16), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(32), nn.ReLU())
        self.block = Block(32)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        x = self.block(self.down(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


torch.manual_seed(0)
model = TinyNet().eval()
with torch.no_grad():  # random batch-norm statistics, so batch norm is not an identity
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.1, 0.1)


# ---- 2. Compile it for three buckets ------------------------------------------------------
#
# input_info is a list of buckets; each bucket lists (input name, shape, dtype). Here: batch 1
# and 4 at 32x32, and batch 1 at 64x64. compile_from_torch exports the module to ONNX with
# dynamic axes for the dimensions that differ between buckets (batch, height, width) and
# compiles every bucket into one artifact.
#
# paddable says which axes the runtime may zero-pad. Padding is only harmless along the batch
# axis (images of a batch do not interact; the padded rows of the output are dropped), so
# that is what kiln declares by default (paddable=None) and what we spell out here. Padding a
# 48x48 image into 64x64 would change what global pooling averages: spatial axes are never
# padded unless you list them yourself.
buckets = [
    [("input", (1, 3, 32, 32), "float32")],
    [("input", (4, 3, 32, 32), "float32")],
    [("input", (1, 3, 64, 64), "float32")],
]
compiled = kiln.compile_from_torch(model, buckets, paddable=[("input", 0)],
                                   model_name="tinynet")
stats = compiled.stats
print("compiled %d buckets: %d kernel calls, %d distinct kernels, %.1f KiB of weights, "
      "%.1f s" % (stats["nbuckets"], stats["ncalls"], stats["nkernels"],
                  stats["params_bytes"] / 1024, stats["seconds_total"]))
for w in compiled.warnings:
    print("warning:", w)
assert stats["nbuckets"] == 3
# Kernels are specialized to their shapes, so most differ between buckets; a kernel whose
# shapes are the same in two buckets (the classifier of the two batch-1 buckets, for one) is
# compiled once: fewer distinct kernels than calls.
assert stats["nkernels"] < stats["ncalls"]


# ---- 3. One runtime for all buckets ---------------------------------------------------------
#
# A Runtime owns one session: the activation memory of the largest bucket, allocated once
# (kiln.Runtime also takes the Compiled object, a .kiln path or bytes). Calling it binds the inputs (numpy arrays here; torch tensors work too), picks the bucket
# and runs its plan.
model_info = compiled.load()   # a kiln.Model: the loaded artifact (shapes, plans, memory)
rt = kiln.Runtime(model_info)
print("\nbuckets of the artifact:")
for b, shapes in enumerate(model_info.buckets):
    print("  bucket %d: %s -> output %s" % (b, shapes, model_info.output_shapes(b)))


def reference(x):
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def check(x, expect_bucket, note=""):
    """Runs x through kiln and PyTorch, prints the bucket that ran, checks both."""
    out = rt(x)
    ref = reference(x)
    err = float(np.abs(out - ref).max())
    bucket = rt.last_bucket
    print("  input %-16s -> bucket %d %-20s output %-8s max |kiln - torch| = %.2e %s" % (
        tuple(x.shape), bucket, str(tuple(model_info.buckets[bucket]["input"])),
        tuple(out.shape), err, note))
    assert out.shape == ref.shape, (out.shape, ref.shape)
    np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-4 * max(1.0, np.abs(ref).max()))
    assert bucket == expect_bucket, "expected bucket %d, ran %d" % (expect_bucket, bucket)


rng = np.random.default_rng(0)


def image(n, size):
    return rng.standard_normal((n, 3, size, size), dtype=np.float32)


print("\nruns (each checked against PyTorch):")
check(image(1, 32), 0)
check(image(4, 32), 1)
check(image(1, 64), 2)
# Batch 3 fits no bucket exactly. The batch axis is paddable, so the runtime copies the three
# images into the batch-4 bucket's input buffer, zero-fills the fourth, runs bucket 1 and
# slices the output back to 3 rows.
check(image(3, 32), 1, "(batch 3 padded into 4)")
check(image(2, 32), 1, "(batch 2 padded into 4)")


# ---- 4. Shapes no bucket takes ------------------------------------------------------------
#
# A 48x48 image: no bucket has that resolution and the spatial axes are not paddable. A batch
# of 8: larger than every bucket. Both fail with a shape error that lists the buckets; the
# runtime stays usable afterwards. (The message also points out that the spatial axes could
# be declared paddable: technically possible, numerically wrong for this model, see step 2.)
print("\nshapes no bucket takes:")
for x in (image(1, 48), image(8, 32)):
    try:
        rt(x)
    except kiln.KilnError as e:
        print("  input %s: KilnError (%s):\n    %s" % (tuple(x.shape), e.status_name,
                                                     e.message.replace("\n", "\n    ")))
        assert e.status_name == "shape error", e.status_name
        assert "bucket" in e.message, e.message
    else:
        sys.exit("expected a shape error for input %s" % (tuple(x.shape),))
check(image(1, 32), 0, "(still works after the errors)")


# ---- 5. Memory per bucket -----------------------------------------------------------------
#
# kiln plans the activations of each bucket ahead of time: intermediates whose lifetimes do
# not overlap share memory. "naive" is one buffer per intermediate.
print("\nactivation memory per bucket (planned vs naive):")
for b, shapes in enumerate(model_info.buckets):
    planned, naive = model_info.memory(b)
    print("  bucket %d %-22s %8.1f KiB planned, %8.1f KiB naive (%.0f%%), %d kernel calls" % (
        b, str(tuple(shapes["input"])), planned / 1024, naive / 1024, 100.0 * planned / naive,
        model_info.num_calls(b)))
    assert 0 < planned <= naive
print("\ntutorial 1 passed")
