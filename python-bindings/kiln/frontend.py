"""kiln.frontend: importing ONNX models and PyTorch modules into Relay (ctypes over libkiln.so).

    m = kiln.frontend.from_onnx("model.onnx")         # a path, or the model's bytes
    print(m)                                          # the Relay text
    m.bind(n=4)                                       # specialize symbolic dimensions
    m.run_passes()                                    # the default pass pipeline
    outs = m.run(x)                                   # the reference interpreter, numpy in/out

    m = kiln.frontend.from_torch(model, [("x", (1, 3, 64, 64), "float32")])

The library comes from $KILN_LIBRARY, else from build/libkiln.so at the repository root
(two directories above this package). Every failing C call raises KilnError with the
context's message; nothing here aborts.
"""
import ctypes
import io
import os

import numpy as np

__all__ = ["KilnError", "Module", "from_onnx", "from_torch"]


class KilnError(RuntimeError):
    """A failed kiln call: .status is the kiln_status code (ERR_* below; -1 when libkiln
    cannot be loaded), .status_name its short name, .message the context's message."""

    def __init__(self, status, status_name, message):
        super().__init__("%s: %s" % (status_name, message))
        self.status = status
        self.status_name = status_name
        self.message = message


# kiln_status codes (include/kiln/kiln_runtime.h).
OK, ERR_NOMEM, ERR_MISUSE, ERR_PARSE, ERR_TYPE, ERR_SHAPE, ERR_UNDEFINED, ERR_SCHEDULE, \
    ERR_IO, ERR_CORRUPT, ERR_UNSUPPORTED, ERR_RUNTIME, ERR_INTERNAL = range(13)


# ---- Loading the library ---------------------------------------------------------------------


class _DType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _Tensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device_type", ctypes.c_int32),
        ("device_id", ctypes.c_int32),
        ("ndim", ctypes.c_int32),
        ("dtype", _DType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


_lib = None


def _library_path():
    env = os.environ.get("KILN_LIBRARY")
    if env:
        return env
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(root, "build", "libkiln.so")


def _load():
    global _lib
    if _lib is not None:
        return _lib
    path = _library_path()
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise KilnError(-1, "load error",
                        "cannot load libkiln from '%s' (set KILN_LIBRARY): %s" % (path, e))
    vp, st, cp, i64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int64
    sigs = {
        "kiln_context_new": (st, [ctypes.POINTER(vp)]),
        "kiln_context_free": (None, [vp]),
        "kiln_context_errmsg": (cp, [vp]),
        "kiln_status_str": (cp, [st]),
        "kiln_last_error": (cp, []),
        "kiln_string_free": (None, [vp, vp]),
        "kiln_relay_module_free": (None, [vp]),
        "kiln_relay_module_from_onnx": (st, [vp, cp, ctypes.c_size_t, cp, ctypes.POINTER(vp)]),
        "kiln_relay_module_from_onnx_file": (st, [vp, cp, ctypes.POINTER(vp)]),
        "kiln_relay_module_print": (st, [vp, ctypes.POINTER(vp)]),
        "kiln_relay_module_run_passes": (st, [vp, cp, st]),
        "kiln_relay_module_bind": (st, [vp, st, ctypes.POINTER(cp), ctypes.POINTER(i64)]),
        "kiln_relay_module_interpret": (st, [vp, cp, st, ctypes.POINTER(_Tensor), st,
                                             ctypes.POINTER(_Tensor)]),
    }
    for name, sig in sigs.items():
        if sig is None:
            continue
        f = getattr(lib, name)
        f.restype, f.argtypes = sig
    _lib = lib
    return lib


class _Context:
    """One kiln_context. It has no finalizer of its own: the Module that owns it frees the
    module and then the context, in that order (finalizers of objects collected together
    run in no fixed order, so a context finalizer could free memory a module still uses)."""

    def __init__(self):
        lib = _load()
        h = ctypes.c_void_p()
        s = lib.kiln_context_new(ctypes.byref(h))
        if s != 0:
            raise KilnError(s, lib.kiln_status_str(s).decode(), lib.kiln_last_error().decode())
        self.lib = lib
        self.handle = h

    def check(self, s):
        if s != 0:
            lib = self.lib
            msg = lib.kiln_context_errmsg(self.handle).decode(errors="replace")
            raise KilnError(s, lib.kiln_status_str(s).decode(), msg)

    def free(self):
        if self.handle is not None and self.handle.value:
            self.lib.kiln_context_free(self.handle)
        self.handle = None


# ---- dtypes ------------------------------------------------------------------------------------

# numpy dtype -> (kiln type code, bits)
_NP_TO_KILN = {
    np.dtype(np.float32): (2, 32), np.dtype(np.float64): (2, 64), np.dtype(np.float16): (2, 16),
    np.dtype(np.int8): (0, 8), np.dtype(np.int16): (0, 16), np.dtype(np.int32): (0, 32),
    np.dtype(np.int64): (0, 64), np.dtype(np.uint8): (1, 8), np.dtype(np.uint16): (1, 16),
    np.dtype(np.uint32): (1, 32), np.dtype(np.uint64): (1, 64), np.dtype(np.bool_): (6, 8),
}
_KILN_TO_NP = {v: k for k, v in _NP_TO_KILN.items()}


def _tensor_of(arr, keep):
    """A kiln_tensor describing the C-contiguous numpy array arr (its shape array goes in keep)."""
    key = _NP_TO_KILN.get(arr.dtype)
    if key is None:
        raise TypeError("kiln: unsupported numpy dtype %s" % arr.dtype)
    shape = (ctypes.c_int64 * max(arr.ndim, 1))(*arr.shape)
    keep.append(shape)
    t = _Tensor()
    t.data = arr.ctypes.data if arr.size else None
    t.device_type = 1
    t.device_id = 0
    t.ndim = arr.ndim
    t.dtype = _DType(key[0], key[1], 1)
    t.shape = shape
    t.strides = None
    t.byte_offset = 0
    return t


# ---- Module --------------------------------------------------------------------------------------


class Module:
    """A Relay module (owned; freed with the object). str(m) is its text."""

    def __init__(self, ctx, handle, io_info=None):
        self._ctx = ctx
        self._h = handle
        # ONNX graph inputs and outputs: ([(name, dims)], [(dims, numpy dtype)]) where a dim is
        # an int or a dim_param name (None when unknown); used to size run()'s outputs.
        self._io = io_info
        self._bound = {}

    def __del__(self):
        if getattr(self, "_h", None) is not None and self._h.value:
            self._ctx.lib.kiln_relay_module_free(self._h)
        self._h = None
        if getattr(self, "_ctx", None) is not None:
            self._ctx.free()

    def text(self):
        out = ctypes.c_void_p()
        self._ctx.check(self._ctx.lib.kiln_relay_module_print(self._h, ctypes.byref(out)))
        try:
            return ctypes.string_at(out.value).decode()
        finally:
            self._ctx.lib.kiln_string_free(self._ctx.handle, out)

    __str__ = text

    def run_passes(self, passes=None, opt_level=3):
        """Runs the passes (a list or comma-separated names; None: the default pipeline)."""
        if passes is not None and not isinstance(passes, str):
            passes = ",".join(passes)
        self._ctx.check(self._ctx.lib.kiln_relay_module_run_passes(
            self._h, passes.encode() if passes is not None else None, int(opt_level)))
        return self

    def bind(self, **dims):
        """Specializes symbolic dimensions: m.bind(batch=4, seq=128)."""
        names = (ctypes.c_char_p * max(len(dims), 1))(*[k.encode() for k in dims])
        values = (ctypes.c_int64 * max(len(dims), 1))(*[int(v) for v in dims.values()])
        self._ctx.check(self._ctx.lib.kiln_relay_module_bind(self._h, len(dims), names, values))
        self._bound.update({k: int(v) for k, v in dims.items()})
        return self

    def run(self, *inputs, func="main", outputs=None):
        """Runs `func` with the reference interpreter (slow, computes in double) on numpy
        inputs and returns a list of numpy outputs (one per tensor of the result, nested tuples
        flattened). The C API needs preallocated outputs: their (shape, dtype) list comes from
        `outputs`, else (for @main of an imported model) from the ONNX graph's output types,
        with symbolic dimensions taken from bind() and from the inputs' shapes."""
        arrs = [np.ascontiguousarray(x) for x in inputs]
        if outputs is None:
            outputs = self._output_types(func, arrs)
        outs = [np.empty(tuple(int(d) for d in s), dtype=np.dtype(d)) for s, d in outputs]
        keep = []
        targs = (_Tensor * max(len(arrs), 1))(*[_tensor_of(a, keep) for a in arrs])
        touts = (_Tensor * max(len(outs), 1))(*[_tensor_of(o, keep) for o in outs])
        self._ctx.check(self._ctx.lib.kiln_relay_module_interpret(
            self._h, func.encode(), len(arrs), targs, len(outs), touts))
        return outs

    def _output_types(self, func, arrs):
        if func != "main" or self._io is None:
            raise KilnError(ERR_MISUSE, "misuse", "run: the result types of @%s are unknown: "
                            "pass outputs=[(shape, dtype), ...]" % func)
        ins, outs = self._io
        dims = dict(self._bound)
        for (name, idims), a in zip(ins, arrs):
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
                    raise KilnError(ERR_MISUSE, "misuse", "run: output %d has the unknown dimension "
                                    "%r: bind it or pass outputs=" % (k, d))
                shape.append(d)
            res.append((shape, dt))
        return res


def _onnx_io(data=None, path=None):
    """The graph's inputs (not initializers) and outputs, read with the onnx package (None
    when it is not installed or the model has no usable output types)."""
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

    inits = {t.name for t in g.initializer}
    ins = [(vi.name, dims_of(vi)) for vi in g.input if vi.name not in inits]
    outs = []
    for vi in g.output:
        t = vi.type.tensor_type
        if t.elem_type not in mapping.TENSOR_TYPE_TO_NP_TYPE or not t.HasField("shape"):
            return None
        outs.append((dims_of(vi), np.dtype(mapping.TENSOR_TYPE_TO_NP_TYPE[t.elem_type])))
    return ins, outs


# ---- Entry points ----------------------------------------------------------------------------


def from_onnx(model, external_data_dir=None):
    """Imports an ONNX model: a path (str or os.PathLike) or its serialized bytes
    (bytes / bytearray / memoryview, or an onnx.ModelProto). Returns a Module."""
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    if not isinstance(model, (bytes, bytearray, memoryview, str, os.PathLike)):
        raise TypeError("from_onnx: expected a path or bytes, got %s" % type(model).__name__)
    ctx = _Context()
    try:
        return _import(ctx, model, external_data_dir)
    except BaseException:
        ctx.free()
        raise


def _import(ctx, model, external_data_dir):
    h = ctypes.c_void_p()
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
        ext = os.fsencode(external_data_dir) if external_data_dir is not None else None
        ctx.check(ctx.lib.kiln_relay_module_from_onnx(ctx.handle, data, len(data), ext,
                                                      ctypes.byref(h)))
        return Module(ctx, h, _onnx_io(data=data))
    ctx.check(ctx.lib.kiln_relay_module_from_onnx_file(ctx.handle, os.fsencode(model),
                                                       ctypes.byref(h)))
    return Module(ctx, h, _onnx_io(path=os.fspath(model)))


def _torch_dtype(torch, d):
    if isinstance(d, torch.dtype):
        return d
    return getattr(torch, np.dtype(d).name)


def from_torch(module, input_info, opset=14, all_buckets=False, **export_options):
    """Imports a torch.nn.Module through ONNX (exported in memory with torch.onnx.export,
    constant folding on, static shapes).

    input_info is a list of (name, shape, dtype) for the module's inputs, in order; dtype is
    a numpy name ("float32"), a numpy dtype or a torch.dtype. Several buckets (one shape set
    each, as in the vendor SDKs' bucketing APIs) are given as a list of such lists: each bucket
    is exported and imported separately with its static shapes. Returns the Module of the first
    bucket, or a list with one Module per bucket when all_buckets is True. The module is
    traced in eval mode unless export_options (passed on to torch.onnx.export) say otherwise,
    e.g. training=torch.onnx.TrainingMode.PRESERVE for a module in train mode."""
    import torch

    if not input_info:
        raise ValueError("from_torch: input_info is empty")
    is_single = isinstance(input_info[0], tuple) and len(input_info[0]) == 3 and \
        isinstance(input_info[0][0], str)
    buckets = [input_info] if is_single else list(input_info)
    mods = []
    for bucket in buckets:
        names, example = [], []
        for entry in bucket:
            name, shape, dtype = entry
            names.append(name)
            t = torch.zeros(tuple(int(s) for s in shape), dtype=_torch_dtype(torch, dtype))
            example.append(t)
        buf = io.BytesIO()
        with torch.no_grad():
            torch.onnx.export(module, tuple(example), buf, input_names=names,
                              opset_version=opset, do_constant_folding=True, **export_options)
        mods.append(from_onnx(buf.getvalue()))
        if not all_buckets:
            break
    return mods if all_buckets else mods[0]
