"""kiln.runtime: running compiled models (kiln_model / kiln_session) from Python.

    model = kiln.load("model.kiln")             # or compiled.load(), or bytes
    rt = kiln.Runtime(model, tensor_type="pt")  # "np": numpy outputs, "pt": torch tensors
    y = rt(x)                                   # the bucket is picked from x's shape

Inputs that are C-contiguous CPU arrays / tensors of the input's dtype are bound without a
copy (the session reads their memory during the run); other layouts are copied once; a
wrong dtype is a TypeError. Outputs are copied out of session memory unless
rt.run(..., copy=False), whose views stay valid until the next run of that runtime.
"""
import collections
import ctypes
import json as _json
import os
import time

import numpy as np

from kiln import _lib
from kiln._lib import KilnError

__all__ = ["TensorInfo", "Model", "Runtime", "load", "set_num_threads", "num_threads"]

TensorInfo = collections.namedtuple("TensorInfo", ["name", "dtype", "ndim"])


def set_num_threads(n):
    """Sets the kernel thread pool's size (n <= 0: $KILN_NUM_THREADS or every CPU)."""
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError("set_num_threads: n must be an int, got %s" % type(n).__name__)
    lib = _lib.load()
    _lib.check(lib, lib.kiln_rt_set_num_threads(n))


def num_threads():
    """The kernel thread pool's size (threads including the caller)."""
    return int(_lib.load().kiln_rt_num_threads())


class Model:
    """A loaded .kiln artifact (immutable; shared by any number of Runtimes)."""

    def __init__(self, lib, handle, name="<memory>"):
        self._lib = lib
        self._h = handle
        self._free = lib.kiln_model_free
        self.name = name
        n_in, n_out = lib.kiln_model_num_inputs(handle), lib.kiln_model_num_outputs(handle)
        self.inputs = [TensorInfo(lib.kiln_model_input_name(handle, i).decode(),
                                  _lib.dtype_name(lib, lib.kiln_model_input_dtype(handle, i)),
                                  lib.kiln_model_input_ndim(handle, i)) for i in range(n_in)]
        self.outputs = [TensorInfo(lib.kiln_model_output_name(handle, i).decode(),
                                   _lib.dtype_name(lib, lib.kiln_model_output_dtype(handle, i)),
                                   lib.kiln_model_output_ndim(handle, i)) for i in range(n_out)]

    def __del__(self):
        if getattr(self, "_h", None) is not None and self._h.value:
            self._free(self._h)
        self._h = None

    def __repr__(self):
        return "<kiln.Model %s: inputs %s, %d buckets>" % (
            self.name, ", ".join("%s %s" % (t.name, t.dtype) for t in self.inputs),
            self.num_buckets)

    @property
    def num_buckets(self):
        return self._lib.kiln_model_num_buckets(self._h)

    def _bucket(self, bucket):
        if not isinstance(bucket, int) or isinstance(bucket, bool):
            raise TypeError("bucket must be an int, got %s" % type(bucket).__name__)
        if not 0 <= bucket < self.num_buckets:
            raise ValueError("bucket %d out of range (the model has %d)"
                             % (bucket, self.num_buckets))
        return bucket

    def _shape(self, fn, bucket, i, ndim):
        shape = (ctypes.c_int64 * max(ndim, 1))()
        _lib.check(self._lib, fn(self._h, bucket, i, shape))
        return tuple(shape[k] for k in range(ndim))

    @property
    def buckets(self):
        """One dict {input name: shape tuple} per bucket, in compile order."""
        return [{t.name: self._shape(self._lib.kiln_model_input_shape, b, i, t.ndim)
                 for i, t in enumerate(self.inputs)} for b in range(self.num_buckets)]

    def output_shapes(self, bucket):
        """The outputs' shapes in bucket (a list of tuples)."""
        b = self._bucket(bucket)
        return [self._shape(self._lib.kiln_model_output_shape, b, i, t.ndim)
                for i, t in enumerate(self.outputs)]

    def memory(self, bucket):
        """(planned, naive) activation bytes of bucket."""
        planned, naive = ctypes.c_uint64(), ctypes.c_uint64()
        _lib.check(self._lib, self._lib.kiln_model_bucket_memory(
            self._h, self._bucket(bucket), ctypes.byref(planned), ctypes.byref(naive)))
        return planned.value, naive.value

    def num_calls(self, bucket):
        return self._lib.kiln_model_bucket_num_calls(self._h, self._bucket(bucket))

    @property
    def meta(self):
        return _json.loads(self._lib.kiln_model_meta_json(self._h).decode())

    @property
    def plan(self):
        return _json.loads(self._lib.kiln_model_plan_json(self._h).decode())


def load(path_or_bytes):
    """Loads an artifact from a path or from its bytes (no LLVM involved)."""
    lib = _lib.load()
    h = ctypes.c_void_p()
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
        _lib.check(lib, lib.kiln_model_load_memory(data, len(data), None, ctypes.byref(h)))
        return Model(lib, h)
    if not isinstance(path_or_bytes, (str, os.PathLike)):
        raise TypeError("load: expected a path or bytes, got %s" % type(path_or_bytes).__name__)
    _lib.check(lib, lib.kiln_model_load(os.fsencode(path_or_bytes), ctypes.byref(h)))
    return Model(lib, h, os.fspath(path_or_bytes))


def _is_torch(x):
    return type(x).__module__.startswith("torch") and hasattr(x, "data_ptr")


class Runtime:
    """One session over a model: rt(*inputs, **named) runs it."""

    def __init__(self, model, tensor_type="np", paddable=None):
        from kiln.compiler import Compiled
        if tensor_type not in ("np", "pt"):
            raise ValueError("tensor_type must be 'np' or 'pt', got %r" % (tensor_type,))
        if isinstance(model, Compiled):
            model = model.load()
        elif not isinstance(model, Model):
            model = load(model)
        self.model = model
        self.tensor_type = tensor_type
        lib = model._lib
        self._lib = lib
        self._free = lib.kiln_session_free
        h = ctypes.c_void_p()
        _lib.check(lib, lib.kiln_session_new(model._h, ctypes.byref(h)))
        self._h = h
        self._names = [t.name for t in model.inputs]
        self._np = []
        for t in model.inputs:
            try:
                self._np.append(np.dtype(t.dtype))
            except TypeError:
                self._np.append(None)
        self._out_np = []
        for t in model.outputs:
            try:
                self._out_np.append(np.dtype(t.dtype))
            except TypeError:
                self._out_np.append(None)
        self._keep = []
        self._profiling = False
        if paddable is not None:
            for i, axis in model.meta.get("paddable", []):
                self.set_paddable(i, axis, False)
            for name, axis in paddable:
                self.set_paddable(name, axis, True)

    def close(self):
        """Frees the session (also done when the object is collected)."""
        if getattr(self, "_h", None) is not None and self._h.value:
            self._free(self._h)
        self._h = None
        self._keep = []

    __del__ = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _handle(self):
        if self._h is None:
            raise ValueError("the runtime has been closed")
        return self._h

    def _input_index(self, input):
        if isinstance(input, str):
            if input not in self._names:
                raise ValueError("input %r is not an input of the model (inputs: %s)"
                                 % (input, ", ".join(self._names)))
            return self._names.index(input)
        if not isinstance(input, int) or isinstance(input, bool):
            raise TypeError("input must be a name or an index, got %s" % type(input).__name__)
        if not 0 <= input < len(self._names):
            raise ValueError("input index %d out of range (the model has %d inputs)"
                             % (input, len(self._names)))
        return input

    def set_paddable(self, input, axis, on=True):
        """Declares (or withdraws) axis `axis` of an input (name or index) as paddable."""
        i = self._input_index(input)
        _lib.check(self._lib, self._lib.kiln_session_set_paddable(self._handle(), i, int(axis),
                                                                  1 if on else 0))

    # ---- running ----------------------------------------------------------------------------

    def _tensor(self, i, x, keep):
        """The Tensor binding input i to x (x or its one converted copy goes in keep)."""
        name, want = self._names[i], self._np[i]
        if _is_torch(x):
            got = str(x.dtype).replace("torch.", "")
            if want is None or got != want.name:
                raise TypeError("input %r: got a tensor of dtype %s, the model wants %s"
                                % (name, got, self.model.inputs[i].dtype))
            if x.device.type != "cpu":
                x = x.cpu()
            if not x.is_contiguous():
                x = x.contiguous()
            keep.append(x)
            data, shape = x.data_ptr(), tuple(x.shape)
        else:
            if isinstance(x, (np.ndarray, np.generic)):
                if x.dtype != want:
                    raise TypeError("input %r: got an array of dtype %s, the model wants %s"
                                    % (name, x.dtype, self.model.inputs[i].dtype))
                arr = np.ascontiguousarray(x)
            else:
                arr = np.ascontiguousarray(np.asarray(x, dtype=want))
            keep.append(arr)
            data, shape = arr.ctypes.data, arr.shape
        dims = (ctypes.c_int64 * max(len(shape), 1))(*shape)
        keep.append(dims)
        t = _lib.Tensor()
        t.data = data or None
        t.device_type, t.device_id, t.ndim = 1, 0, len(shape)
        t.dtype = self._lib.kiln_model_input_dtype(self.model._h, i)
        t.shape = dims
        t.strides = None
        t.byte_offset = 0
        return t

    def _bind(self, inputs, named):
        n = len(self._names)
        if len(inputs) > n:
            raise TypeError("the model takes %d inputs (%s), got %d"
                            % (n, ", ".join(self._names), len(inputs)))
        given = dict(enumerate(inputs))
        for name, x in named.items():
            if name not in self._names:
                raise TypeError("unknown input %r (inputs: %s)" % (name, ", ".join(self._names)))
            i = self._names.index(name)
            if i in given:
                raise TypeError("input %r given twice" % name)
            given[i] = x
        missing = [self._names[i] for i in range(n) if i not in given]
        if missing:
            raise TypeError("missing input(s): %s" % ", ".join(missing))
        keep = []
        h = self._handle()
        for i in range(n):
            t = self._tensor(i, given[i], keep)
            _lib.check(self._lib, self._lib.kiln_session_set_input(h, i, ctypes.byref(t)))
        # The session reads the inputs during the run, and an output may be an input.
        self._keep = keep

    def _run_bound(self):
        _lib.check(self._lib, self._lib.kiln_session_run(self._handle()))

    def _outputs(self, copy):
        outs = []
        for i in range(len(self._out_np)):
            t = _lib.Tensor()
            _lib.check(self._lib, self._lib.kiln_session_get_output(self._h, i, ctypes.byref(t)))
            dt = self._out_np[i]
            if dt is None:
                raise KilnError(_lib.ERR_UNSUPPORTED, "unsupported", "output %r has dtype %s, "
                                "which numpy cannot hold" % (self.model.outputs[i].name,
                                                             self.model.outputs[i].dtype))
            a = _lib.array_view(t, dt)
            if copy:
                a = a.copy()
            if self.tensor_type == "pt":
                import torch
                a = torch.from_numpy(a)
            outs.append(a)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def run(self, *inputs, copy=True, **named):
        """Runs the model; returns one output or a tuple. copy=False returns views of session
        memory, valid until the next run (or close) of this runtime."""
        self._bind(inputs, named)
        self._run_bound()
        return self._outputs(copy)

    def __call__(self, *inputs, **named):
        return self.run(*inputs, **named)

    @property
    def last_bucket(self):
        """The bucket the last run used (None before the first run)."""
        b = self._lib.kiln_session_last_bucket(self._handle())
        return None if b < 0 else b

    def benchmark(self, *inputs, repeats=10, warmup=1, **named):
        """Times whole runs (inputs bound once; outputs not copied): dict(median_ms, min_ms,
        max_ms, repeats)."""
        if int(repeats) < 1:
            raise ValueError("benchmark: repeats must be >= 1, got %r" % (repeats,))
        self._bind(inputs, named)
        for _ in range(int(warmup)):
            self._run_bound()
        times = []
        for _ in range(int(repeats)):
            t0 = time.perf_counter()
            self._run_bound()
            times.append((time.perf_counter() - t0) * 1e3)
        return {"median_ms": float(np.median(times)), "min_ms": min(times),
                "max_ms": max(times), "repeats": len(times)}

    # ---- profiling --------------------------------------------------------------------------

    def profile(self, on=True):
        """Turns per-kernel timing on (clearing what was recorded) or off."""
        _lib.check(self._lib, self._lib.kiln_session_set_profiling(self._handle(),
                                                                   1 if on else 0))
        self._profiling = bool(on)

    def profile_entries(self):
        """One dict per recorded call: bucket, call, kernel, count, total_us, mean_us,
        min_us, max_us."""
        n = ctypes.c_int()
        p = ctypes.POINTER(_lib.ProfileEntry)()
        _lib.check(self._lib, self._lib.kiln_session_profile(self._handle(), ctypes.byref(n),
                                                             ctypes.byref(p)))
        out = []
        for k in range(n.value):
            e = p[k]
            out.append({"bucket": e.bucket, "call": e.call,
                        "kernel": e.kernel.decode() if e.kernel else "", "count": e.count,
                        "total_us": e.total_us,
                        "mean_us": e.total_us / e.count if e.count else 0.0,
                        "min_us": e.min_us, "max_us": e.max_us})
        return out

    def profile_report(self, json=False):
        """The profile as a text table, or (json=True) as a dict {runs, total_us, calls}."""
        out = ctypes.c_void_p()
        _lib.check(self._lib, self._lib.kiln_session_profile_report(
            self._handle(), 1 if json else 0, ctypes.byref(out)))
        try:
            text = ctypes.string_at(out.value).decode() if out.value else ""
        finally:
            self._lib.kiln_rt_free(out)
        return _json.loads(text) if json else text
