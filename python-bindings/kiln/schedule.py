"""kiln.schedule: TensorIR-style schedules over one PrimFunc, and single kernels built and
timed in this process.

    sch = kiln.Schedule(kiln.tir.parse(text))
    blk = sch.get_block("matmul")
    i, j, k = sch.get_loops(blk)
    i0, i1 = sch.split(i, [None, 8])          # None: the inferred factor
    sch.parallel(i0)
    print(sch.trace)                          # the instructions so far, as JSON
    k = kiln.build(sch)                       # or kiln.build(tir_module, func)
    k(a, b, c)                                # numpy arrays; outputs written in place
    print(k.time(a, b, c)["median_s"])

Every instruction goes through kiln_schedule_apply with the trace's argument conventions, so
what Python does is exactly what a replayed trace does.
"""
import ctypes
import json as _json

import numpy as np

from kiln import _lib
from kiln.tir import Module as TirModule

__all__ = ["Schedule", "BlockRV", "LoopRV", "IntRV", "Kernel", "build"]


class _RV:
    """A random variable of a schedule (a handle valid for the schedule's lifetime)."""

    def __init__(self, sch, handle):
        self._sch = sch
        self.handle = handle

    @property
    def name(self):
        """A block's name, a loop's variable name (None for integers)."""
        n = self._sch._lib.kiln_schedule_rv_name(self._sch._handle(), self.handle)
        return n.decode() if n is not None else None

    def __repr__(self):
        return "<%s %d %s>" % (type(self).__name__, self.handle, self.name)

    def __eq__(self, other):
        return type(self) is type(other) and self._sch is other._sch and \
            self.handle == other.handle

    def __hash__(self):
        return hash((id(self._sch), self.handle))


class BlockRV(_RV):
    pass


class LoopRV(_RV):
    pass


class IntRV(_RV):
    @property
    def value(self):
        out = ctypes.c_int64()
        _lib.check(self._sch._lib, self._sch._lib.kiln_schedule_rv_int(
            self._sch._handle(), self.handle, ctypes.byref(out)), self._sch._ctx.handle)
        return out.value

    def __int__(self):
        return self.value

    def __repr__(self):
        return "<IntRV %d = %d>" % (self.handle, self.value)


_RV_KINDS = {0: BlockRV, 1: LoopRV, 2: IntRV}


class Schedule(_lib.Owner):
    """A schedule over one function of a TIR module (func None: its only function). The
    module may be dropped afterwards (the schedule holds a copy)."""

    def __init__(self, tir_module, func=None, seed=1):
        if not isinstance(tir_module, TirModule):
            raise TypeError("Schedule: tir_module must be a kiln.tir.Module, got %s"
                            % type(tir_module).__name__)
        ctx = tir_module._ctx
        self._lib = ctx.lib
        h = ctypes.c_void_p()
        ctx.check(self._lib.kiln_schedule_new(
            tir_module._handle(), func.encode() if func else None, int(seed), ctypes.byref(h)))
        self._own(ctx, h, self._lib.kiln_schedule_free)
        self.func = func

    def _handle(self):
        if self._h is None:
            raise ValueError("the schedule has been freed")
        return self._h

    # ---- the generic instruction call ----------------------------------------------------------

    def _arg(self, a):
        if isinstance(a, _RV):
            if a._sch is not self:
                raise ValueError("%r belongs to another schedule" % (a,))
            return _lib.SchArg(_lib.SCH_ARG_RV, a.handle, 0.0, None)
        if isinstance(a, (bool, np.bool_)):
            return _lib.SchArg(_lib.SCH_ARG_INT, int(a), 0.0, None)
        if isinstance(a, (int, np.integer)):
            return _lib.SchArg(_lib.SCH_ARG_INT, int(a), 0.0, None)
        if isinstance(a, (float, np.floating)):
            return _lib.SchArg(_lib.SCH_ARG_FLOAT, 0, float(a), None)
        if isinstance(a, str):
            return _lib.SchArg(_lib.SCH_ARG_STR, 0, 0.0, a.encode())
        raise TypeError("schedule argument %r: expected an RV, int, float or str" % (a,))

    def apply(self, inst, *args):
        """Applies the instruction `inst` (trace conventions; see kiln_schedule_apply) and
        returns its results as a list of RVs."""
        if len(args) > _lib.SCH_MAX_ARGS:
            raise ValueError("%s: at most %d arguments" % (inst, _lib.SCH_MAX_ARGS))
        cargs = (_lib.SchArg * max(len(args), 1))(*[self._arg(a) for a in args])
        nout = ctypes.c_int()
        outs = (ctypes.c_int32 * _lib.SCH_MAX_ARGS)()
        self._ctx.check(self._lib.kiln_schedule_apply(self._handle(), inst.encode(), len(args),
                                                      cargs, ctypes.byref(nout), outs))
        return [self._rv(outs[k]) for k in range(nout.value)]

    def _rv(self, h):
        kind = self._lib.kiln_schedule_rv_kind(self._handle(), h)
        return _RV_KINDS.get(kind, _RV)(self, h)

    def _one(self, inst, *args):
        res = self.apply(inst, *args)
        return res[0] if res else None

    # ---- instructions ------------------------------------------------------------------------

    def get_block(self, name):
        return self._one("get_block", str(name))

    def get_loops(self, block):
        return self.apply("get_loops", block)

    def get_child_blocks(self, block):
        return self.apply("get_child_blocks", block)

    def split(self, loop, factors):
        """Splits loop by factors (ints, IntRVs, or one None for the inferred factor)."""
        return self.apply("split", loop, *[-1 if f is None else f for f in factors])

    def fuse(self, *loops):
        return self._one("fuse", *loops)

    def reorder(self, *loops):
        self.apply("reorder", *loops)

    def parallel(self, loop):
        self.apply("parallel", loop)

    def vectorize(self, loop):
        self.apply("vectorize", loop)

    def unroll(self, loop):
        self.apply("unroll", loop)

    def annotate(self, rv, key, value):
        self.apply("annotate", rv, str(key), value)

    def compute_at(self, block, loop, preserve_unit_loops=False):
        self.apply("compute_at", block, loop, 1 if preserve_unit_loops else 0)

    def reverse_compute_at(self, block, loop, preserve_unit_loops=False):
        self.apply("reverse_compute_at", block, loop, 1 if preserve_unit_loops else 0)

    def compute_inline(self, block):
        self.apply("compute_inline", block)

    def reverse_compute_inline(self, block):
        self.apply("reverse_compute_inline", block)

    def cache_read(self, block, index, scope="global"):
        return self._one("cache_read", block, int(index), str(scope))

    def cache_write(self, block, index, scope="global"):
        return self._one("cache_write", block, int(index), str(scope))

    def decompose_reduction(self, block, loop):
        return self._one("decompose_reduction", block, loop)

    def storage_align(self, block, buffer_index, axis, factor, offset):
        self.apply("storage_align", block, int(buffer_index), int(axis), int(factor),
                   int(offset))

    def sample_perfect_tile(self, loop, n, max_innermost=16):
        return self.apply("sample_perfect_tile", loop, int(n), int(max_innermost))

    def sample_categorical(self, candidates, probs):
        if len(candidates) != len(probs) or not candidates:
            raise ValueError("sample_categorical: candidates and probs must be non-empty and "
                             "of equal length")
        return self._one("sample_categorical", len(candidates), *[int(c) for c in candidates],
                         *[float(p) for p in probs])

    def sample_compute_location(self, block):
        return self._one("sample_compute_location", block)

    def apply_default_rules(self, target=None):
        """The default schedule rules for every block not yet scheduled."""
        self._ctx.check(self._lib.kiln_schedule_apply_default_rules(
            self._handle(), target.encode() if target else None))
        return self

    # ---- traces and results ------------------------------------------------------------------

    @property
    def trace(self):
        """The trace so far as JSON text."""
        out = ctypes.c_void_p()
        self._ctx.check(self._lib.kiln_schedule_trace(self._handle(), ctypes.byref(out)))
        return self._ctx.take_string(out)

    @property
    def trace_dict(self):
        return _json.loads(self.trace)

    def replay(self, trace):
        """Replays a trace (JSON text or its dict) on this schedule."""
        if isinstance(trace, dict):
            trace = _json.dumps(trace)
        if not isinstance(trace, str):
            raise TypeError("replay: trace must be JSON text or a dict, got %s"
                            % type(trace).__name__)
        self._ctx.check(self._lib.kiln_schedule_replay(self._handle(), trace.encode()))
        return self

    @property
    def mod(self):
        """The scheduled function as a new one-function kiln.tir.Module."""
        out = ctypes.c_void_p()
        self._ctx.check(self._lib.kiln_schedule_module(self._handle(), ctypes.byref(out)))
        return TirModule(self._ctx, out)

    def __str__(self):
        return self.mod.text


# ---- Kernels -----------------------------------------------------------------------------------


def _kernel_arg(k, a, keep):
    """A Tensor for argument k: a numpy array (C-contiguous; written in place) or a number
    (a 0-d tensor: Python ints as int64, floats as float32; numpy scalars keep their dtype)."""
    if isinstance(a, np.ndarray):
        if not a.flags.c_contiguous:
            raise ValueError("argument %d must be C-contiguous (outputs are written in place)"
                             % k)
        arr = a
    elif isinstance(a, (bool, np.bool_)):
        arr = np.array(a, dtype=np.bool_)
    elif isinstance(a, np.generic):
        arr = np.array(a)
    elif isinstance(a, int):
        arr = np.array(a, dtype=np.int64)
    elif isinstance(a, float):
        arr = np.array(a, dtype=np.float32)
    else:
        raise TypeError("argument %d: expected a numpy array or a number, got %s"
                        % (k, type(a).__name__))
    keep.append(arr)
    return _lib.tensor_of(arr, keep)


class Kernel(_lib.Owner):
    """One PrimFunc compiled with the JIT into this process."""

    def __init__(self, ctx, handle):
        self._own(ctx, handle, ctx.lib.kiln_kernel_free)

    def _handle(self):
        if self._h is None:
            raise ValueError("the kernel has been freed")
        return self._h

    @property
    def num_params(self):
        return self._ctx.lib.kiln_kernel_num_params(self._handle())

    @property
    def lowered(self):
        """The function after the TIR lowering pipeline, as text."""
        out = ctypes.c_void_p()
        self._ctx.check(self._ctx.lib.kiln_kernel_lowered_text(self._handle(),
                                                               ctypes.byref(out)))
        return self._ctx.take_string(out)

    def _args(self, args):
        if len(args) != self.num_params:
            raise TypeError("the kernel takes %d arguments, got %d" % (self.num_params, len(args)))
        keep = []
        ts = (_lib.Tensor * max(len(args), 1))(*[_kernel_arg(k, a, keep)
                                                 for k, a in enumerate(args)])
        return ts, keep

    def __call__(self, *args):
        ts, keep = self._args(args)
        self._ctx.check(self._ctx.lib.kiln_kernel_call(self._handle(), ts, len(args)))

    def time(self, *args, warmup=1, repeats=10, min_seconds=0.1):
        """Times the kernel: dict(median_s, min_s, max_s, mean_s, stddev_s, repeats)."""
        ts, keep = self._args(args)
        t = _lib.Timing()
        self._ctx.check(self._ctx.lib.kiln_kernel_time(self._handle(), ts, len(args),
                                                       int(warmup), int(repeats),
                                                       float(min_seconds), ctypes.byref(t)))
        return {name: getattr(t, name) for name, _ in _lib.Timing._fields_}


def build(mod_or_schedule, func=None, target=None):
    """Builds a kernel from a kiln.tir.Module (func None: its only function) or from a
    Schedule's current function."""
    if isinstance(mod_or_schedule, Schedule):
        mod, func = mod_or_schedule.mod, None
    elif isinstance(mod_or_schedule, TirModule):
        mod = mod_or_schedule
    else:
        raise TypeError("build: expected a kiln.tir.Module or a kiln.Schedule, got %s"
                        % type(mod_or_schedule).__name__)
    ctx = mod._ctx
    h = ctypes.c_void_p()
    ctx.check(ctx.lib.kiln_kernel_build(mod._handle(), func.encode() if func else None,
                                        target.encode() if target else None, ctypes.byref(h)))
    return Kernel(ctx, h)
