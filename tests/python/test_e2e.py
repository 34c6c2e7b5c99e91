"""End-to-end: PyTorch model -> ONNX -> `kiln compile` (buckets) -> run, compared with PyTorch.

torchvision ResNet-18 and MobileNetV2 (random weights, non-trivial batch-norm statistics) are
exported with a dynamic batch axis, compiled once for batches 1, 2 and 4 with the batch axis
declared paddable, and every bucket is run
  - through the command line (`kiln run`, inputs and outputs as .npy), and
  - through the C API, by tests/rt_run.c: a program linked only against libkiln_runtime.so;
batch 3 (no bucket) runs padded into the batch-4 bucket, and fails with a clear error when
padding is not allowed. Outputs must match PyTorch's float32 outputs:
    |kiln - torch| <= ATOL_REL * max|torch| + RTOL * |torch|.

The executables come from $KILN_EXE and $KILN_RT_RUN (set by meson), else build/.
"""
import os
import subprocess

import numpy as np
import pytest
import torch
import torchvision

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KILN = os.environ.get("KILN_EXE", os.path.join(REPO, "build", "tools", "kiln"))
RT_RUN = os.environ.get("KILN_RT_RUN", os.path.join(REPO, "build", "tests", "rt_run"))

RTOL = 1e-3
ATOL_REL = 1e-4
BATCHES = (1, 2, 4)


def run(*args, expect=0):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    assert p.returncode == expect, "%s -> exit %d (want %d)\nstdout:\n%s\nstderr:\n%s" % (
        " ".join(map(str, args)), p.returncode, expect, p.stdout, p.stderr)
    return p.stdout + p.stderr


def assert_close(got, want, what):
    scale = float(np.abs(want).max())
    assert scale > 1e-2, "%s: degenerate reference output (max |y| = %g)" % (what, scale)
    assert got.shape == want.shape, "%s: shape %s, want %s" % (what, got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL_REL * scale, err_msg=what)


def make_model(name):
    gen = torch.Generator().manual_seed(7)
    model = getattr(torchvision.models, name)(weights=None).eval()
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                mod.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
                mod.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                mod.bias.copy_(torch.randn(c, generator=gen) * 0.1)
    return model


@pytest.fixture(scope="module", params=["resnet18", "mobilenet_v2"])
def compiled(request, tmp_path_factory):
    """(name, torch model, artifact path, work dir): the model compiled for batches 1, 2, 4."""
    name = request.param
    d = tmp_path_factory.mktemp(name)
    model = make_model(name)
    onnx_path = d / (name + ".onnx")
    torch.onnx.export(model, torch.randn(1, 3, 224, 224), str(onnx_path), input_names=["input"],
                      output_names=["output"], opset_version=13,
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    art = d / (name + ".kiln")
    args = [KILN, "compile", onnx_path, "-o", art, "--paddable", "input:0", "--quiet"]
    for b in BATCHES:
        args += ["--bucket", "input=%dx3x224x224" % b]
    run(*args)
    return name, model, art, d


def reference(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("batch", [1, 2, 4, 3])
def test_cli_run_matches_torch(compiled, batch):
    name, model, art, d = compiled
    x = np.random.default_rng(batch).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    np.save(d / "x.npy", x)
    out_dir = d / ("cli_out%d" % batch)
    out_dir.mkdir(exist_ok=True)
    text = run(KILN, "run", art, "--input", "input=%s" % (d / "x.npy"), "--output-dir", out_dir)
    if batch == 3:
        assert "pad" in text, "batch 3 should run padded into the batch-4 bucket:\n" + text
    got = np.load(out_dir / "output.npy")
    assert_close(got, reference(model, x), "%s batch %d (kiln run)" % (name, batch))


@pytest.mark.parametrize("batch", [1, 2, 4, 3])
def test_c_api_matches_torch(compiled, batch):
    """rt_run links only libkiln_runtime.so: the deployment path without LLVM."""
    name, model, art, d = compiled
    x = np.random.default_rng(10 + batch).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    x.tofile(d / "x.bin")
    prefix = d / ("rt%d_" % batch)
    args = [RT_RUN, art, d / "x.bin", "--shape", "%d,3,224,224" % batch, "-o", prefix]
    if batch == 3:
        args += ["--pad", "input:0"]
    text = run(*args)
    assert "output 0" in text
    assert "LLVM mapped: no" in text, text
    got = np.fromfile(str(prefix) + "0.bin", dtype=np.float32).reshape(batch, 1000)
    assert_close(got, reference(model, x), "%s batch %d (C API)" % (name, batch))


def test_no_bucket_without_padding(compiled, tmp_path):
    """A batch no bucket has, with padding not allowed: a clear error listing the buckets."""
    name, model, art, d = compiled
    x = np.zeros((5, 3, 224, 224), dtype=np.float32)  # larger than every bucket
    np.save(tmp_path / "x5.npy", x)
    text = run(KILN, "run", art, "--input", "input=%s" % (tmp_path / "x5.npy"),
               "--output-dir", tmp_path, expect=1)
    assert "bucket" in text and "4,3,224,224" in text.replace(" ", "").replace("x", ","), text


def test_inspect_lists_buckets_and_memory_plan(compiled):
    """inspect --json: the three buckets with their shapes, activation memory shared by
    liveness (planned below naive), every kernel listed once with its calls."""
    import json
    name, model, art, d = compiled
    info = json.loads(run(KILN, "inspect", art, "--json"))
    assert [b["inputs"] for b in info["buckets"]] == [[[b, 3, 224, 224]] for b in BATCHES]
    assert [b["outputs"] for b in info["buckets"]] == [[[b, 1000]] for b in BATCHES]
    for b in info["buckets"]:
        assert 0 < b["planned_bytes"] < b["naive_bytes"], b
        assert b["calls"] == len(b["kernel_calls"]) > 10
    assert info["inputs"][0]["name"] == "input" and info["outputs"][0]["name"] == "output"
    names = [k["name"] for k in info["kernels"]]
    assert len(names) == len(set(names))


def test_bundled_default_model(tmp_path):
    """The quick start's model: compiled for batches 1 and 4, its sample input gives
    PyTorch's output (stored next to it by tools/models/make_default.py)."""
    models = os.path.join(REPO, "tools", "models")
    art = tmp_path / "default.kiln"
    run(KILN, "compile", os.path.join(models, "default.onnx"), "-o", art,
        "--bucket", "input=1x3x32x32", "--bucket", "input=4x3x32x32", "--quiet")
    run(KILN, "run", art, "--input", "input=" + os.path.join(models, "default_input.npy"),
        "--output-dir", tmp_path)
    want = np.load(os.path.join(models, "default_output.npy"))
    assert_close(np.load(tmp_path / "logits.npy"), want, "default model")
