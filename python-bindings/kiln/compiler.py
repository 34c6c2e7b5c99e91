"""kiln.compiler: compiling a model (ONNX, PyTorch or Relay) for one or several input-shape
buckets into one .kiln artifact held in memory (kiln_compile).

    compiled = kiln.compile_from_onnx("model.onnx", input_info=[{"input": [1, 3, 32, 32]},
                                                                {"input": [4, 3, 32, 32]}])
    compiled.save("model.kiln"); print(compiled.stats, compiled.warnings)
    model = compiled.load()                      # a kiln.Model, ready for kiln.Runtime

input_info (shared with kiln.tune): None (the model's own static shapes, one bucket), one
bucket, or a list of buckets; a bucket is a list of (name, shape, dtype) / (name, shape)
tuples or a dict {name: shape}. paddable: None declares axis 0 (the batch) of every input
whose batch differs between buckets paddable (zero-padding any other axis, e.g. an image's
height, would change what the model computes), [] none, or a list of (input name, axis).
"""
import ctypes
import io
import os

import numpy as np

from kiln import _lib
from kiln.relay import Module, import_onnx

__all__ = ["Compiled", "compile", "compile_from_onnx", "compile_from_torch"]


# ---- Buckets ---------------------------------------------------------------------------------


def _is_entry(x):
    """Whether x looks like one input of a bucket: (name, shape) or (name, shape, dtype)."""
    return isinstance(x, (tuple, list)) and len(x) in (2, 3) and isinstance(x[0], str) and \
        hasattr(x[1], "__len__") and not isinstance(x[1], str)


def _shape(name, shape):
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise ValueError("input_info: the shape of input %r must be a list of ints, got %r"
                         % (name, shape))
    if any(d < 0 for d in dims):
        raise ValueError("input_info: the shape of input %r has a negative dimension: %r"
                         % (name, list(dims)))
    return dims


def normalize_buckets(input_info):
    """input_info as a list of buckets, each a list of (name, shape tuple, dtype or None)."""
    if input_info is None:
        return []
    if isinstance(input_info, dict):
        raw = [input_info]
    elif isinstance(input_info, (list, tuple)):
        if not input_info:
            raise ValueError("input_info: empty (pass None for the model's own shapes)")
        raw = [input_info] if _is_entry(input_info[0]) else list(input_info)
    else:
        raise TypeError("input_info: expected a list of buckets, a list of (name, shape, dtype) "
                        "or a dict {name: shape}, got %s" % type(input_info).__name__)
    buckets = []
    for k, b in enumerate(raw):
        if isinstance(b, dict):
            b = [(name, shape) for name, shape in b.items()]
        if not isinstance(b, (list, tuple)) or not b or not all(_is_entry(e) for e in b):
            raise ValueError("input_info: bucket %d must be a non-empty list of (name, shape, "
                             "dtype) tuples or a dict {name: shape}, got %r" % (k, b))
        entries, seen = [], set()
        for e in b:
            name = e[0]
            if name in seen:
                raise ValueError("input_info: bucket %d names input %r twice" % (k, name))
            seen.add(name)
            dt = _lib.dtype_of_name(e[2]) if len(e) == 3 and e[2] is not None else None
            entries.append((name, _shape(name, e[1]), dt))
        buckets.append(entries)
    return buckets


def differing_axes(buckets):
    """Every (input, axis) whose extent differs between buckets (inputs of equal rank in all)."""
    if len(buckets) < 2:
        return []
    shapes = {}
    for b in buckets:
        for name, shape, _ in b:
            shapes.setdefault(name, []).append(shape)
    out = []
    for name, ss in shapes.items():
        if len(ss) != len(buckets) or len({len(s) for s in ss}) != 1:
            continue
        out += [(name, a) for a in range(len(ss[0])) if len({s[a] for s in ss}) > 1]
    return out


def auto_paddable(buckets):
    """The default paddable axes: the batch axis (0) of the inputs whose batch differs between
    buckets. Padding a batch leaves the other samples' results unchanged; padding a spatial
    axis would not (a global pooling would average the zeros in), so those stay exact."""
    return [(name, axis) for name, axis in differing_axes(buckets) if axis == 0]


def check_dtypes(module, buckets):
    """TypeError when a bucket gives an input a dtype other than the model's."""
    sig = None
    for b in buckets:
        for name, _, dt in b:
            if dt is None:
                continue
            if sig is None:
                sig = module.main_signature() or ([], [])
            want = {n: d for n, _, d in sig[0]}.get(name)
            if want is not None and want != dt:
                raise TypeError("input_info: input %r has dtype %s in the model, not %s"
                                % (name, want.name, dt.name))


class CBuckets:
    """The C arrays of a list of buckets (kept alive as long as this object)."""

    def __init__(self, buckets):
        self.keep = []
        self.n = len(buckets)
        self.array = (_lib.Bucket * max(self.n, 1))()
        for k, b in enumerate(buckets):
            ins = (_lib.InputShape * len(b))()
            for j, (name, shape, _) in enumerate(b):
                dims = (ctypes.c_int64 * max(len(shape), 1))(*shape)
                self.keep += [dims, name.encode()]
                ins[j] = _lib.InputShape(self.keep[-1], len(shape), dims)
            self.keep.append(ins)
            self.array[k] = _lib.Bucket(len(b), ins, 1.0)


def _enc(s):
    return os.fsencode(s) if s is not None else None


# ---- Compiled ---------------------------------------------------------------------------------


class Compiled(_lib.Owner):
    """A compiled model in memory (the artifact's bytes). Keeps its context alive."""

    def __init__(self, ctx, handle, name="<memory>"):
        self._own(ctx, handle, ctx.lib.kiln_compiled_free)
        self._name = name

    def _handle(self):
        if self._h is None:
            raise ValueError("the compiled model has been freed")
        return self._h

    def save(self, path):
        """Writes the artifact to path (atomically) and returns path."""
        self._ctx.check(self._ctx.lib.kiln_compiled_save(self._handle(), os.fsencode(path)))
        return path

    def to_bytes(self):
        data, size = ctypes.c_void_p(), ctypes.c_size_t()
        self._ctx.check(self._ctx.lib.kiln_compiled_bytes(self._handle(), ctypes.byref(data),
                                                          ctypes.byref(size)))
        return ctypes.string_at(data.value, size.value)

    @property
    def stats(self):
        """kiln_compile_stats as a dict (nbuckets, ncalls, nkernels, nfrom_db, nwarnings,
        params_bytes, code_bytes, seconds_*)."""
        st = _lib.CompileStats()
        self._ctx.check(self._ctx.lib.kiln_compiled_stats(self._handle(), ctypes.byref(st)))
        return {name: getattr(st, name) for name, _ in _lib.CompileStats._fields_}

    @property
    def warnings(self):
        out, lib = [], self._ctx.lib
        while True:
            w = lib.kiln_compiled_warning(self._handle(), len(out))
            if w is None:
                return out
            out.append(w.decode(errors="replace"))

    def load(self):
        """Loads the artifact into this process: a kiln.Model."""
        from kiln.runtime import Model
        h = ctypes.c_void_p()
        self._ctx.check(self._ctx.lib.kiln_compiled_load(self._handle(), ctypes.byref(h)))
        return Model(self._ctx.lib, h, self._name)


# ---- Entry points --------------------------------------------------------------------------------


def compile(relay_module, input_info=None, target=None, db=None, paddable=None, opt_level=3,
            model_name=None):
    """Compiles @main of a kiln.relay.Module for the buckets of input_info (see the module
    doc); the module itself is left as it was. Returns a Compiled."""
    if not isinstance(relay_module, Module):
        raise TypeError("compile: relay_module must be a kiln.relay.Module, got %s"
                        % type(relay_module).__name__)
    buckets = normalize_buckets(input_info)
    check_dtypes(relay_module, buckets)
    if paddable is None:
        paddable = auto_paddable(buckets)
    pads = []
    for p in paddable:
        if not (isinstance(p, (tuple, list)) and len(p) == 2 and isinstance(p[0], str)):
            raise ValueError("paddable: expected (input name, axis) pairs, got %r" % (p,))
        pads.append((p[0].encode(), int(p[1])))
    if not isinstance(opt_level, int) or not 0 <= opt_level <= 3:
        raise ValueError("opt_level must be an int in 0..3, got %r" % (opt_level,))
    cb = CBuckets(buckets)
    cpads = (_lib.PadAxis * max(len(pads), 1))(*[_lib.PadAxis(n, a) for n, a in pads])
    opts = _lib.CompileOptions(target.encode() if target else None, _enc(db), opt_level,
                               model_name.encode() if model_name else None, len(pads), cpads)
    ctx = relay_module._ctx
    h = ctypes.c_void_p()
    ctx.check(ctx.lib.kiln_compile(relay_module._h, cb.n, cb.array if cb.n else None,
                                   ctypes.byref(opts), ctypes.byref(h)))
    return Compiled(ctx, h, model_name or "<memory>")


def compile_from_onnx(model, input_info=None, target=None, db=None, paddable=None, opt_level=3,
                      model_name=None):
    """Imports an ONNX model (a path, bytes or an onnx.ModelProto) and compiles it."""
    m = import_onnx(_lib.Context(), model)
    if model_name is None and isinstance(model, (str, os.PathLike)):
        model_name = os.path.basename(os.fspath(model))
    return compile(m, input_info, target=target, db=db, paddable=paddable,
                   opt_level=opt_level, model_name=model_name)


def export_torch(module, input_info, opset=14, **export_options):
    """(ONNX bytes, buckets): module exported once with torch.onnx.export, the dims that
    differ between buckets made dynamic axes, inputs named after input_info."""
    import torch

    if input_info is None:
        raise ValueError("input_info is required for a torch module")
    buckets = normalize_buckets(input_info)
    first = buckets[0]
    names = [name for name, _, _ in first]
    example = tuple(torch.zeros(shape, dtype=getattr(torch, (dt or np.dtype("float32")).name))
                    for _, shape, dt in first)
    dynamic = {}
    for name, axis in differing_axes(buckets):
        dynamic.setdefault(name, {})[axis] = "%s_%d" % (name, axis)
    opts = dict(export_options)
    if "output_names" not in opts:
        with torch.no_grad():
            was_training = module.training
            module.eval()
            out = module(*example)
            module.train(was_training)
        n = len(out) if isinstance(out, (tuple, list)) else 1
        opts["output_names"] = ["output"] if n == 1 else ["output_%d" % i for i in range(n)]
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, example, buf, input_names=names, opset_version=opset,
                          do_constant_folding=True, dynamic_axes=dynamic or None, **opts)
    return buf.getvalue(), buckets


def compile_from_torch(module, input_info, target=None, db=None, paddable=None, opset=14,
                       opt_level=3, model_name=None, **export_options):
    """Exports a torch.nn.Module to ONNX (dynamic axes for the dims that differ between
    buckets; extra keyword arguments go to torch.onnx.export) and compiles it."""
    data, buckets = export_torch(module, input_info, opset, **export_options)
    return compile_from_onnx(data, buckets, target=target, db=db, paddable=paddable,
                             opt_level=opt_level,
                             model_name=model_name or type(module).__name__)
