"""kiln.frontend: importing ONNX models and PyTorch modules into Relay (ctypes over libkiln.so).

    m = kiln.frontend.from_onnx("model.onnx")         # a path, or the model's bytes
    print(m)                                          # the Relay text
    m.bind(n=4)                                       # specialize symbolic dimensions
    m.run_passes()                                    # the default pass pipeline
    outs = m.run(x)                                   # the reference interpreter, numpy in/out

    m = kiln.frontend.from_torch(model, [("x", (1, 3, 64, 64), "float32")])

The Module is kiln.relay.Module; the loader, KilnError and the status codes live in
kiln._lib (re-exported here). Every failing C call raises KilnError with the C message.
"""
import io

import numpy as np

from kiln import _lib as _L
from kiln._lib import (KilnError, OK, ERR_NOMEM, ERR_MISUSE, ERR_PARSE, ERR_TYPE, ERR_SHAPE,
                       ERR_UNDEFINED, ERR_SCHEDULE, ERR_IO, ERR_CORRUPT, ERR_UNSUPPORTED,
                       ERR_RUNTIME, ERR_INTERNAL)
from kiln.relay import Module, import_onnx

__all__ = ["KilnError", "Module", "from_onnx", "from_torch", "OK", "ERR_NOMEM", "ERR_MISUSE",
           "ERR_PARSE", "ERR_TYPE", "ERR_SHAPE", "ERR_UNDEFINED", "ERR_SCHEDULE", "ERR_IO",
           "ERR_CORRUPT", "ERR_UNSUPPORTED", "ERR_RUNTIME", "ERR_INTERNAL"]

# The library this module uses; None makes the next call resolve $KILN_LIBRARY again.
_lib = None


def _load():
    global _lib
    if _lib is None:
        _lib = _L.load(fresh=True)
    return _lib


def from_onnx(model, external_data_dir=None):
    """Imports an ONNX model: a path (str or os.PathLike) or its serialized bytes
    (bytes / bytearray / memoryview, or an onnx.ModelProto). Returns a Module."""
    if not hasattr(model, "SerializeToString") and not isinstance(
            model, (bytes, bytearray, memoryview, str)) and not hasattr(model, "__fspath__"):
        raise TypeError("from_onnx: expected a path or bytes, got %s" % type(model).__name__)
    return import_onnx(_L.Context(_load()), model, external_data_dir)


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
    e.g. training=torch.onnx.TrainingMode.PRESERVE for a module in train mode.
    (kiln.compile_from_torch exports once with dynamic axes and compiles all buckets.)"""
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
