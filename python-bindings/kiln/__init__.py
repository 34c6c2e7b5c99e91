"""kiln: Python bindings of the kiln tensor compiler (pure ctypes over libkiln.so).

Users' flow:
    compiled = kiln.compile_from_torch(model, input_info=[[("input", [1, 3, 32, 32], "float32")],
                                                          [("input", [4, 3, 32, 32], "float32")]])
    compiled.save("model.kiln")
    rt = kiln.Runtime(compiled, tensor_type="pt")    # or kiln.Runtime("model.kiln")
    out = rt(torch.randn(4, 3, 32, 32))              # the bucket is picked from the shape

Researchers' flow: kiln.relay (parse, passes, lower), kiln.tir (parse, verify, interpret),
kiln.Schedule (primitives, traces), kiln.build (single kernels), kiln.tune / kiln.Database.

The library is loaded from $KILN_LIBRARY, else the repository's build/libkiln.so, else the
installed libkiln.so. Every C error becomes a kiln.KilnError carrying the status and message.
"""
from kiln._lib import KilnError
from kiln import _lib, frontend, relay, tir  # noqa: F401
from kiln.compiler import Compiled, compile, compile_from_onnx, compile_from_torch
from kiln.runtime import TensorInfo, Model, Runtime, load, set_num_threads, num_threads
from kiln.schedule import Schedule, BlockRV, LoopRV, IntRV, Kernel, build
from kiln.tune import TuneReport, tune, Database

__all__ = ["KilnError", "__version__", "set_num_threads", "num_threads", "compile",
           "compile_from_onnx", "compile_from_torch", "Compiled", "load", "Model", "TensorInfo",
           "Runtime", "tune", "TuneReport", "Database", "Schedule", "BlockRV", "LoopRV", "IntRV",
           "build", "Kernel", "relay", "tir", "frontend"]


def __getattr__(name):
    # The version comes from the library, loaded on first use (importing kiln needs no
    # libkiln.so, so a missing library is a KilnError at the first call, not at import).
    if name == "__version__":
        return _lib.load().kiln_version().decode()
    raise AttributeError("module 'kiln' has no attribute %r" % name)
