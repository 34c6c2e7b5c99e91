"""End-to-end tests of the ONNX / PyTorch frontend through the Python bindings (pytest).

Each model is exported by the test itself with random weights, imported into Relay, run with
the reference interpreter (which computes in double) before and after the default pass
pipeline, and compared with PyTorch's float32 outputs:
    |kiln - torch| <= ATOL_REL * max|torch| + RTOL * |torch|   with RTOL = 1e-4, ATOL_REL = 1e-4.
A model whose import fails names the missing converters (the importer's error lists every
unsupported op with its opset and node name).

libkiln.so comes from $KILN_LIBRARY (set by meson), else build/libkiln.so in the repository.
"""
import io
import os
import sys

import numpy as np
import onnx
import pytest
import torch
import torchvision
from onnx import TensorProto, helper

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "python-bindings"))

import kiln  # noqa: E402
from kiln import frontend  # noqa: E402

RTOL = 1e-4
ATOL_REL = 1e-4


def assert_close(got, want, what):
    want = np.asarray(want)
    scale = float(np.abs(want).max())
    # Random-weight models can collapse to (near) zero outputs, which would compare trivially.
    assert scale > 1e-2, "%s: the PyTorch output is degenerate (max |y| = %g)" % (what, scale)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL_REL * scale, err_msg=what)


def import_torch(name, model, info, **kw):
    try:
        return frontend.from_torch(model, info, **kw)
    except kiln.KilnError as e:
        pytest.fail("%s: the ONNX import failed (missing converter?): %s" % (name, e))


def randomize_batchnorm(model, gen):
    """Gives every BatchNorm non-trivial statistics and affine parameters, so that eval-mode
    outputs are O(1) and the normalization is really tested."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                mod.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
                mod.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                mod.bias.copy_(torch.randn(c, generator=gen) * 0.1)
            elif isinstance(mod, torch.nn.Linear):
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) * 0.1)


def check_model(name, model, info, x, **kw):
    with torch.no_grad():
        want = model(x).numpy()
    m = import_torch(name, model, info, **kw)
    got = m.run(x.numpy())
    assert len(got) == 1 and got[0].shape == want.shape and got[0].dtype == np.float32
    assert_close(got[0], want, name + " (imported)")
    m.run_passes()
    got = m.run(x.numpy())
    assert_close(got[0], want, name + " (after the default passes)")


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "shufflenet_v2_x1_0"])
def test_torchvision(name):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = getattr(torchvision.models, name)(weights=None).eval()
    randomize_batchnorm(model, gen)
    x = torch.randn(1, 3, 64, 64, generator=gen)
    check_model(name, model, [("x", (1, 3, 64, 64), "float32")], x)


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "efficientnet_b0", "squeezenet1_0",
                                  "densenet121", "regnet_y_400mf", "convnext_tiny"])
def test_torchvision_other_families(name):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = getattr(torchvision.models, name)(weights=None).eval()
    randomize_batchnorm(model, gen)
    x = torch.randn(1, 3, 64, 64, generator=gen)
    check_model(name, model, [("x", (1, 3, 64, 64), "float32")], x)


class Broadcast7x7(torch.nn.Module):
    """AdaptiveAvgPool2d((7, 7)) of a 1x1 map: every output bin averages the one input pixel."""

    def forward(self, t):
        return t.expand(-1, -1, 7, 7)


def test_vgg11():
    # PyTorch exports vgg11's AdaptiveAvgPool2d((7, 7)) only when the feature map is a multiple
    # of 7 (224x224 images: ~110 s in the reference interpreter). At 32x32 the map is 1x1 and
    # the pool is exactly a broadcast: swap in that (checked equal) and test the rest as is.
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = torchvision.models.vgg11(weights=None).eval()
    randomize_batchnorm(model, gen)
    x = torch.randn(1, 3, 32, 32, generator=gen)
    with torch.no_grad():
        feat = model.features(x)
        assert feat.shape == (1, 512, 1, 1)
        assert torch.equal(model.avgpool(feat), Broadcast7x7()(feat))
    model.avgpool = Broadcast7x7()
    check_model("vgg11", model, [("x", (1, 3, 32, 32), "float32")], x)


def test_vit_b_16():
    # 32x32 images: 2x2 patches of 16 plus the class token. The eval-mode encoder runs through
    # a fused attention op that does not export, so export in train mode (ViT has no
    # BatchNorm and its dropouts are 0: the same computation). The head is zero-initialized:
    # give it random weights so the output is not trivially zero.
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = torchvision.models.vit_b_16(weights=None, image_size=32).train()
    with torch.no_grad():
        model.heads.head.weight.copy_(torch.randn(model.heads.head.weight.shape, generator=gen) * 0.1)
    x = torch.randn(1, 3, 32, 32, generator=gen)
    check_model("vit_b_16", model, [("x", (1, 3, 32, 32), "float32")], x,
                training=torch.onnx.TrainingMode.PRESERVE)


def test_transformer_encoder():
    # PyTorch 1.13 runs an eval-mode encoder layer through a fused op that does not export:
    # export in train mode with dropout 0 (the computation is the same).
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64,
                                             dropout=0.0, batch_first=True)
    model = torch.nn.TransformerEncoder(layer, num_layers=2).train()
    x = torch.randn(1, 8, 32)
    check_model("TransformerEncoder", model, [("x", (1, 8, 32), "float32")], x,
                training=torch.onnx.TrainingMode.PRESERVE)


def test_transformer_encoder_gelu_seq_first():
    # The other layout and activation: (seq, batch, d_model) with GELU (the Erf pattern).
    torch.manual_seed(1)
    layer = torch.nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64,
                                             dropout=0.0, activation="gelu")
    model = torch.nn.TransformerEncoder(layer, num_layers=2).train()
    x = torch.randn(8, 2, 32)
    check_model("TransformerEncoder(gelu)", model, [("x", (8, 2, 32), "float32")], x,
                training=torch.onnx.TrainingMode.PRESERVE)


# ---- The Python API --------------------------------------------------------------------------


def gemm_model_bytes():
    w = helper.make_tensor("W", TensorProto.FLOAT, [4, 3],
                           np.arange(12, dtype=np.float32).tolist())
    nodes = [helper.make_node("Gemm", ["x", "W"], ["y"], transB=1, name="fc"),
             helper.make_node("Relu", ["y"], ["z"], name="act")]
    g = helper.make_graph(nodes, "gemm", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                        ["batch", 3])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 4])],
                          [w])
    return make_model(g)


def make_model(graph, opset=13):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model.SerializeToString()


def gemm_ref(x):
    w = np.arange(12, dtype=np.float32).reshape(4, 3)
    return np.maximum(x @ w.T, 0)


def test_from_onnx_bytes_print_and_symbolic_dims():
    m = frontend.from_onnx(gemm_model_bytes())
    text = str(m)
    assert "Tensor[(batch, 3), float32]" in text and "nn.relu" in text
    x = np.array([[1, -2, 3], [-1, -1, -1], [0.5, 0, 0]], dtype=np.float32)
    # The symbolic batch dimension is taken from the input's shape.
    np.testing.assert_allclose(m.run(x)[0], gemm_ref(x), rtol=1e-6)


def test_from_onnx_path_and_bind(tmp_path):
    p = tmp_path / "gemm.onnx"
    p.write_bytes(gemm_model_bytes())
    m = frontend.from_onnx(str(p))
    m.bind(batch=2)
    assert "Tensor[(2, 3), float32]" in str(m)
    x = np.array([[1, 2, 3], [-4, 5, -6]], dtype=np.float32)
    np.testing.assert_allclose(m.run(x)[0], gemm_ref(x), rtol=1e-6)
    # A bound module refuses other shapes, with the interpreter's message.
    with pytest.raises(kiln.KilnError) as e:
        m.run(np.zeros((3, 3), np.float32))
    assert e.value.status in (frontend.ERR_SHAPE, frontend.ERR_TYPE)
    # onnx.ModelProto and pathlib paths are accepted too.
    assert str(frontend.from_onnx(p)) == str(frontend.from_onnx(onnx.load(str(p))))


def test_from_torch_buckets():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU()).eval()
    buckets = [[("x", (1, 6), "float32")], [("x", (4, 6), np.float32)]]
    mods = frontend.from_torch(model, buckets, all_buckets=True)
    assert len(mods) == 2
    assert "Tensor[(1, 6), float32]" in str(mods[0])
    assert "Tensor[(4, 6), float32]" in str(mods[1])
    # Without all_buckets: the first bucket's module.
    assert str(frontend.from_torch(model, buckets)) == str(mods[0])
    for m, n in zip(mods, (1, 4)):
        x = torch.randn(n, 6)
        with torch.no_grad():
            want = model(x).numpy()
        np.testing.assert_allclose(m.run(x.numpy())[0], want, rtol=1e-5, atol=1e-6)


def test_external_data(tmp_path):
    # Every initializer in one side file next to the model: the importer reads it relative to
    # the model's directory.
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 5 * 5, 6)).eval()
    x = torch.randn(2, 3, 5, 5)
    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, input_names=["x"], output_names=["y"], opset_version=14)
    proto = onnx.load_from_string(buf.getvalue())
    path = tmp_path / "model.onnx"
    onnx.save_model(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    # The weights really are outside the model file.
    assert (tmp_path / "weights.bin").stat().st_size >= 4 * (4 * 3 * 9 + 6 * 100)
    saved = onnx.load(str(path), load_external_data=False)
    assert saved.graph.initializer and all(
        i.data_location == TensorProto.EXTERNAL and not i.raw_data for i in saved.graph.initializer)
    m = frontend.from_onnx(str(path))
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(m.run(x.numpy())[0], want, rtol=1e-5, atol=1e-5)
    # A missing side file is an I/O error naming it.
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(kiln.KilnError) as e:
        frontend.from_onnx(str(path))
    assert e.value.status == frontend.ERR_IO and "weights.bin" in str(e.value)


def test_run_passes_by_name_and_unknown_pass():
    m = frontend.from_onnx(gemm_model_bytes())
    m.run_passes(["InferType"])
    with pytest.raises(kiln.KilnError) as e:
        m.run_passes("NoSuchPass")
    assert "NoSuchPass" in str(e.value)


# ---- Errors ------------------------------------------------------------------------------------


def test_unsupported_ops_are_all_listed():
    nodes = [helper.make_node("TopK", ["x", "k"], ["v", "i"], name="topk_1"),
             helper.make_node("NonZero", ["v"], ["z"], name="nz_2")]
    k = helper.make_tensor("k", TensorProto.INT64, [1], [2])
    g = helper.make_graph(nodes, "unsupported",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5])],
                          [helper.make_tensor_value_info("z", TensorProto.INT64, [1, None])], [k])
    with pytest.raises(kiln.KilnError) as e:
        frontend.from_onnx(make_model(g))
    assert e.value.status == frontend.ERR_UNSUPPORTED
    msg = str(e.value)
    assert "TopK (opset 13, node 'topk_1')" in msg and "NonZero (opset 13, node 'nz_2')" in msg


def test_truncated_file(tmp_path):
    data = gemm_model_bytes()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[:len(data) // 2])
    for src in (str(p), data[:len(data) // 2]):
        with pytest.raises(kiln.KilnError) as e:
            frontend.from_onnx(src)
        assert e.value.status == frontend.ERR_CORRUPT and e.value.message


def test_wrong_magic_and_missing_file(tmp_path):
    with pytest.raises(kiln.KilnError) as e:
        frontend.from_onnx(b"\x89PNG\r\n\x1a\n this is not an ONNX model")
    assert e.value.status == frontend.ERR_CORRUPT
    with pytest.raises(kiln.KilnError) as e:
        frontend.from_onnx(str(tmp_path / "missing.onnx"))
    assert e.value.status == frontend.ERR_IO and "missing.onnx" in str(e.value)
    with pytest.raises(TypeError):
        frontend.from_onnx(42)


def test_inconsistent_shapes():
    nodes = [helper.make_node("Add", ["a", "b"], ["c"], name="bad_add")]
    g = helper.make_graph(nodes, "bad",
                          [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 3]),
                           helper.make_tensor_value_info("b", TensorProto.FLOAT, [4, 5])],
                          [helper.make_tensor_value_info("c", TensorProto.FLOAT, [2, 3])])
    with pytest.raises(kiln.KilnError) as e:
        frontend.from_onnx(make_model(g))
    assert e.value.status in (frontend.ERR_SHAPE, frontend.ERR_TYPE)
    assert "bad_add" in str(e.value)


def test_library_load_error(monkeypatch):
    # A missing library is an exception naming the path, not a crash.
    monkeypatch.setattr(frontend, "_lib", None)
    monkeypatch.setenv("KILN_LIBRARY", "/nonexistent/libkiln.so")
    with pytest.raises(kiln.KilnError) as e:
        frontend.from_onnx(gemm_model_bytes())
    assert "/nonexistent/libkiln.so" in str(e.value)


# ---- Dynamic batch (ONNX dim_param): symbolic shape chains ---------------------------------


class ViewCNN(torch.nn.Module):
    """A small CNN whose flatten is x.view(x.size(0), -1) and with a reshape(b, -1, c): with a
    dynamic batch PyTorch exports Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 4 * 4, 6)

    def forward(self, x):
        y = torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
        y = y.view(y.size(0), -1)
        y = self.fc(y).reshape(y.size(0), -1, 2)
        return y * 2


def export_dynamic(model, shape):
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (torch.zeros(*shape),), buf, input_names=["input"],
                          output_names=["output"], opset_version=14,
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    return buf.getvalue()


def check_dynamic(name, model, data, shape):
    m = frontend.from_onnx(data)
    assert "Tensor[(batch, %s), float32]" % ", ".join(str(d) for d in shape[1:]) in str(m)
    gen = torch.Generator().manual_seed(2)
    for batch in (1, 3):
        x = torch.randn((batch,) + tuple(shape[1:]), generator=gen)
        with torch.no_grad():
            want = model(x).numpy()
        got = m.run(x.numpy())[0]
        assert got.shape == want.shape
        assert_close(got, want, "%s at batch %d" % (name, batch))
    return m


def test_dynamic_batch_view_cnn():
    torch.manual_seed(0)
    model = ViewCNN().eval()
    m = check_dynamic("view CNN", model, export_dynamic(model, (1, 3, 8, 8)), (1, 3, 8, 8))
    text = str(m)
    # the symbolic batch element became 0 (copy); -1 stays -1
    assert "newshape=[0, -1]" in text and "newshape=[0, -1, 2]" in text
    # binding the batch specializes the module, which then runs at that batch only
    m.bind(batch=3)
    assert "Tensor[(3, 3, 8, 8), float32]" in str(m)
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        want = model(x).numpy()
    m.run_passes()
    assert_close(m.run(x.numpy())[0], want, "view CNN bound to batch 3, after the passes")


def test_dynamic_batch_resnet18():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = torchvision.models.resnet18(weights=None).eval()
    randomize_batchnorm(model, gen)
    check_dynamic("resnet18", model, export_dynamic(model, (1, 3, 32, 32)), (1, 3, 32, 32))


def test_dynamic_batch_inexpressible_shape():
    # torch.zeros(x.size(0), 4) is a ConstantOfShape of [batch, 4]: relay constants have
    # constant shapes, so the import fails naming the node and the symbolic element.
    class Zeros(torch.nn.Module):
        def forward(self, x):
            return x + torch.zeros(x.size(0), 4)

    with pytest.raises(kiln.KilnError) as e:
        frontend.from_onnx(export_dynamic(Zeros().eval(), (2, 4)))
    assert e.value.status == frontend.ERR_UNSUPPORTED
    assert "ConstantOfShape" in str(e.value) and "[batch, 4]" in str(e.value)
    assert "symbolic element batch" in str(e.value)
