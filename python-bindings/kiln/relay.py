"""kiln.relay: the graph IR (Relay) from Python: parse, import ONNX, print, run passes one by
one, specialize shapes, run the reference interpreter, lower fused functions to TIR.

    m = kiln.relay.parse(text)                 # or kiln.relay.from_onnx("model.onnx")
    m.run_passes("InferType").run_passes("FoldConstant")
    print(m.text)                              # str(m) is the same
    m.run_passes("FuseOps")
    tir = m.lower()                            # a kiln.tir.Module, one PrimFunc per group
"""
import ctypes
import os
import re

import numpy as np

from kiln import _lib
from kiln._lib import KilnError, ERR_MISUSE

__all__ = ["Module", "parse", "from_onnx"]


class Module(_lib.Owner):
    """A Relay module (owned; freed with the object). str(m) and m.text are its text."""

    def __init__(self, ctx, handle, io_info=None):
        self._own(ctx, handle, ctx.lib.kiln_relay_module_free)
        # ONNX graph inputs and outputs: ([(name, dims, numpy dtype)], [(dims, numpy dtype)])
        # where a dim is an int or a dim_param name (None when unknown); used to size run()'s
        # outputs and to check the dtypes of compile's input_info.
        self._io = io_info
        self._bound = {}

    def _lib(self):
        if self._h is None:
            raise ValueError("the relay module has been freed")
        return self._ctx.lib

    @property
    def text(self):
        """The module as Relay text (parses back to an equal module)."""
        out = ctypes.c_void_p()
        self._ctx.check(self._lib().kiln_relay_module_print(self._h, ctypes.byref(out)))
        return self._ctx.take_string(out)

    def __str__(self):
        return self.text

    @property
    def funcs(self):
        """The names of the module's functions."""
        lib = self._lib()
        return [lib.kiln_relay_module_func_name(self._h, i).decode()
                for i in range(lib.kiln_relay_module_num_funcs(self._h))]

    def hash(self):
        """The structural hash (an int, the same across runs and machines)."""
        out = ctypes.c_uint64()
        self._ctx.check(self._lib().kiln_relay_module_hash(self._h, ctypes.byref(out)))
        return out.value

    def __eq__(self, other):
        if not isinstance(other, Module):
            return NotImplemented
        out = ctypes.c_int()
        self._ctx.check(self._lib().kiln_relay_module_equal(self._h, other._h, ctypes.byref(out)))
        return bool(out.value)

    __hash__ = None  # mutable (passes rewrite it in place)

    def run_passes(self, passes=None, opt_level=3):
        """Runs the passes in place (a list, or comma-separated names; None: the default
        pipeline) and returns the module."""
        if passes is not None and not isinstance(passes, str):
            passes = ",".join(passes)
        self._ctx.check(self._lib().kiln_relay_module_run_passes(
            self._h, passes.encode() if passes is not None else None, int(opt_level)))
        return self

    def bind(self, **dims):
        """Specializes symbolic dimensions: m.bind(batch=4, seq=128)."""
        names = (ctypes.c_char_p * max(len(dims), 1))(*[k.encode() for k in dims])
        values = (ctypes.c_int64 * max(len(dims), 1))(*[int(v) for v in dims.values()])
        self._ctx.check(self._lib().kiln_relay_module_bind(self._h, len(dims), names, values))
        self._bound.update({k: int(v) for k, v in dims.items()})
        return self

    def lower(self):
        """Lowers every primitive function (run FuseOps first) to one TIR PrimFunc each, in
        a new kiln.tir.Module."""
        from kiln import tir
        out = ctypes.c_void_p()
        self._ctx.check(self._lib().kiln_relay_module_lower(self._h, ctypes.byref(out)))
        return tir.Module(self._ctx, out)

    def run(self, *inputs, func="main", outputs=None):
        """Runs `func` with the reference interpreter (slow, computes in double) on numpy
        inputs and returns a list of numpy outputs (one per tensor of the result, nested tuples
        flattened). The C API needs preallocated outputs: their (shape, dtype) list comes from
        `outputs`, else (for @main) from the ONNX graph's output types or @main's result type
        in the text, with symbolic dimensions taken from bind() and from the inputs' shapes."""
        arrs = [np.ascontiguousarray(x) for x in inputs]
        if outputs is None:
            outputs = self._output_types(func, arrs)
        outs = [np.empty(tuple(int(d) for d in s), dtype=np.dtype(d)) for s, d in outputs]
        keep = []
        targs = (_lib.Tensor * max(len(arrs), 1))(*[_lib.tensor_of(a, keep) for a in arrs])
        touts = (_lib.Tensor * max(len(outs), 1))(*[_lib.tensor_of(o, keep) for o in outs])
        self._ctx.check(self._lib().kiln_relay_module_interpret(
            self._h, func.encode(), len(arrs), targs, len(outs), touts))
        return outs

    def main_signature(self):
        """@main's parameters and results as ([(name, dims, numpy dtype)], [(dims, dtype)]),
        from the ONNX graph when the module was imported, else from the text (dims are ints
        or symbol names). None when they cannot be read (e.g. @main is not typed yet)."""
        if self._io is not None:
            return self._io
        return _signature_from_text(self.text)

    def _output_types(self, func, arrs):
        sig = self.main_signature() if func == "main" else None
        if sig is None or sig[1] is None:
            raise KilnError(ERR_MISUSE, "misuse", "run: the result types of @%s are unknown: "
                            "pass outputs=[(shape, dtype), ...]" % func)
        ins, outs = sig
        dims = dict(self._bound)
        for (name, idims, _), a in zip(ins, arrs):
            for d, n in zip(idims, a.shape):
                if isinstance(d, str):
                    dims.setdefault(d, n)
        res = []
        for k, (odims, dt) in enumerate(outs):
            shape = []
            for d in odims:
                if isinstance(d, str) and d in dims:
                    d = dims[d]
                if not isinstance(d, int):
                    raise KilnError(ERR_MISUSE, "misuse", "run: output %d has the unknown "
                                    "dimension %r: bind it or pass outputs=" % (k, d))
                shape.append(d)
            res.append((shape, dt))
        return res


_TENSOR_TYPE = re.compile(r"Tensor\[\(([^)]*)\),\s*([a-z0-9]+)\]")


def _parse_tensor_type(m):
    dims = []
    for d in m.group(1).split(","):
        d = d.strip()
        if not d:
            continue
        dims.append(int(d) if re.fullmatch(r"-?\d+", d) else d)
    try:
        dt = np.dtype(m.group(2))
    except TypeError:
        dt = None
    return dims, dt


def _signature_from_text(text):
    """@main's typed parameters and result type from Relay text ("def @main [attrs] (%x:
    Tensor[(1, 4), float32]) -> Tensor[(1, 4), float32] {"), or None. Parameters without a
    type are left out; the result list is None when the text has no result type."""
    m = re.search(r"def @main\b(\s*\[[^\]]*\])?\s*\(", text)
    if not m:
        return None
    depth, k = 1, m.end()
    while k < len(text) and depth:
        depth += {"(": 1, ")": -1}.get(text[k], 0)
        k += 1
    params = text[m.end():k - 1]
    brace = text.find("{", k)
    result = text[k:brace] if brace >= 0 else ""
    ins = []
    for pm in re.finditer(r"%([\w.]+)\s*:\s*(Tensor\[\([^)]*\),\s*[a-z0-9]+\])", params):
        dims, dt = _parse_tensor_type(_TENSOR_TYPE.match(pm.group(2)))
        ins.append((pm.group(1), dims, dt))
    outs = None
    if "->" in result:
        outs = [_parse_tensor_type(t) for t in _TENSOR_TYPE.finditer(result)]
    return ins, outs


def parse(text):
    """Parses Relay text into a Module. Errors are KilnError PARSE with line and column."""
    if not isinstance(text, (str, bytes)):
        raise TypeError("parse: text must be a str, got %s" % type(text).__name__)
    data = text.encode() if isinstance(text, str) else text
    ctx = _lib.Context()
    h = ctypes.c_void_p()
    try:
        ctx.check(ctx.lib.kiln_relay_module_parse(ctx.handle, data, len(data), ctypes.byref(h)))
    except BaseException:
        ctx.discard()
        raise
    return Module(ctx, h)


def onnx_io(data=None, path=None):
    """The graph's inputs (not initializers) with their dtypes, and outputs, read with the
    onnx package (None when it is not installed or the model has no usable types)."""
    try:
        import onnx
        from onnx import mapping
    except ImportError:
        return None
    try:
        if data is not None:
            model = onnx.load_model_from_string(data)
        else:
            model = onnx.load(path, load_external_data=False)
    except Exception:
        return None
    g = model.graph

    def dims_of(vi):
        out = []
        for d in vi.type.tensor_type.shape.dim:
            which = d.WhichOneof("value")
            out.append(d.dim_value if which == "dim_value" else
                       d.dim_param if which == "dim_param" else None)
        return out

    def dtype_of(vi):
        t = vi.type.tensor_type
        if t.elem_type not in mapping.TENSOR_TYPE_TO_NP_TYPE or not t.HasField("shape"):
            return None
        return np.dtype(mapping.TENSOR_TYPE_TO_NP_TYPE[t.elem_type])

    inits = {t.name for t in g.initializer}
    ins = [(vi.name, dims_of(vi), dtype_of(vi)) for vi in g.input if vi.name not in inits]
    outs = []
    for vi in g.output:
        dt = dtype_of(vi)
        if dt is None:
            return None
        outs.append((dims_of(vi), dt))
    return ins, outs


def import_onnx(ctx, model, external_data_dir=None):
    """Imports an ONNX model (a path, bytes or a ModelProto) on the context ctx (discarded
    when the import fails)."""
    try:
        return _import_onnx(ctx, model, external_data_dir)
    except BaseException:
        ctx.discard()
        raise


def _import_onnx(ctx, model, external_data_dir):
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    if not isinstance(model, (bytes, bytearray, memoryview, str, os.PathLike)):
        raise TypeError("from_onnx: model must be a path, bytes or an onnx.ModelProto, got %s"
                        % type(model).__name__)
    h = ctypes.c_void_p()
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
        ext = os.fsencode(external_data_dir) if external_data_dir is not None else None
        ctx.check(ctx.lib.kiln_relay_module_from_onnx(ctx.handle, data, len(data), ext,
                                                      ctypes.byref(h)))
        return Module(ctx, h, onnx_io(data=data))
    ctx.check(ctx.lib.kiln_relay_module_from_onnx_file(ctx.handle, os.fsencode(model),
                                                       ctypes.byref(h)))
    return Module(ctx, h, onnx_io(path=os.fspath(model)))


def from_onnx(model, external_data_dir=None):
    """Imports an ONNX model: a path (str or os.PathLike), its serialized bytes or an
    onnx.ModelProto. Returns a Module."""
    return import_onnx(_lib.Context(), model, external_data_dir)
