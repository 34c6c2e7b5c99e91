"""kiln.tir: the loop-level tensor IR (TIR) from Python: parse, print, verify, simplify,
hash, compare and run functions with the reference interpreter.

    mod = kiln.tir.parse(text)
    mod.verify()
    out = np.zeros((4, 6), np.float32)
    mod.interpret("dense_bias_relu", x, w, b, out)     # numpy arrays, written in place
"""
import ctypes
import re

import numpy as np

from kiln import _lib

__all__ = ["Module", "parse"]


class Module(_lib.Owner):
    """A TIR module (owned; freed with the object). str(m) and m.text are its text;
    m == other is structural equality."""

    def __init__(self, ctx, handle):
        self._own(ctx, handle, ctx.lib.kiln_tir_module_free)

    def _handle(self):
        if self._h is None:
            raise ValueError("the TIR module has been freed")
        return self._h

    @property
    def text(self):
        out = ctypes.c_void_p()
        self._ctx.check(self._ctx.lib.kiln_tir_module_print(self._handle(), ctypes.byref(out)))
        return self._ctx.take_string(out)

    def __str__(self):
        return self.text

    @property
    def funcs(self):
        """The names of the module's functions."""
        lib, h = self._ctx.lib, self._handle()
        return [lib.kiln_tir_module_func_name(h, i).decode()
                for i in range(lib.kiln_tir_module_num_funcs(h))]

    def verify(self):
        """Checks well-formedness (KilnError naming what is wrong); returns the module."""
        self._ctx.check(self._ctx.lib.kiln_tir_module_verify(self._handle()))
        return self

    def simplify(self):
        """A new module with every function rewritten by the arithmetic simplifier."""
        out = ctypes.c_void_p()
        self._ctx.check(self._ctx.lib.kiln_tir_module_simplify(self._handle(),
                                                               ctypes.byref(out)))
        return Module(self._ctx, out)

    def hash(self):
        """The 64-bit structural hash (the same across runs, processes and machines)."""
        out = ctypes.c_uint64()
        self._ctx.check(self._ctx.lib.kiln_tir_module_hash(self._handle(), ctypes.byref(out)))
        return out.value

    def __eq__(self, other):
        if not isinstance(other, Module):
            return NotImplemented
        out = ctypes.c_int()
        self._ctx.check(self._ctx.lib.kiln_tir_module_equal(self._handle(), other._handle(),
                                                            ctypes.byref(out)))
        return bool(out.value)

    def __hash__(self):
        return self.hash()

    def params(self, func):
        """The parameters of `func` from its text: [(name, dtype, shape or None)] where shape
        is a tuple of ints/str for a buffer and None for a scalar."""
        return func_params(self.text, func)

    def interpret(self, func, *args):
        """Runs `func` with the reference interpreter (slow, exact). args are numpy arrays
        for buffer parameters (C-contiguous, the parameter's dtype and shape: outputs are
        written in place) and numbers for scalar parameters."""
        if func not in self.funcs:
            raise ValueError("interpret: no function %r in the module (functions: %s)"
                             % (func, ", ".join(self.funcs)))
        params = self.params(func)
        if len(args) != len(params):
            raise TypeError("interpret: @%s takes %d arguments, got %d"
                            % (func, len(params), len(args)))
        keep = []
        ptrs = (ctypes.c_void_p * max(len(args), 1))()
        for k, (a, (name, dt, shape)) in enumerate(zip(args, params)):
            want = _np_dtype(dt)
            if shape is None:  # a scalar: a pointer to one value of its dtype
                v = np.array(a, dtype=want)
                keep.append(v)
                ptrs[k] = v.ctypes.data
                continue
            if not isinstance(a, np.ndarray):
                raise TypeError("interpret: argument %d (%s) must be a numpy array, got %s"
                                % (k, name, type(a).__name__))
            if want is not None and a.dtype != want:
                raise TypeError("interpret: argument %d (%s) has dtype %s, the buffer is %s"
                                % (k, name, a.dtype, dt))
            if all(isinstance(d, int) for d in shape) and a.shape != tuple(shape):
                raise ValueError("interpret: argument %d (%s) has shape %s, the buffer is %s"
                                 % (k, name, a.shape, tuple(shape)))
            if not a.flags.c_contiguous or not a.flags.writeable:
                raise ValueError("interpret: argument %d (%s) must be a writable C-contiguous "
                                 "array (outputs are written in place)" % (k, name))
            ptrs[k] = a.ctypes.data
        self._ctx.check(self._ctx.lib.kiln_tir_module_interpret(
            self._handle(), func.encode(), len(args), ptrs))


def _np_dtype(name):
    try:
        return np.dtype(name)
    except TypeError:
        return None


def _split_top(s):
    """s split at the commas outside brackets and parentheses."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return out


def func_params(text, func):
    """[(name, dtype, shape tuple or None)] of `func @func(...)` in TIR text."""
    m = re.search(r"func @%s\(" % re.escape(func), text)
    if not m:
        raise ValueError("no function %r" % func)
    depth, k = 1, m.end()
    while k < len(text) and depth:
        depth += {"(": 1, ")": -1}.get(text[k], 0)
        k += 1
    out = []
    for p in _split_top(text[m.end():k - 1]):
        name, _, ty = p.partition(":")
        name, ty = name.strip(), ty.strip()
        b = re.match(r"buffer\(\s*([a-z0-9]+)\s*,\s*\[(.*)\]", ty)
        if b:
            dims = tuple(int(d) if re.fullmatch(r"-?\d+", d.strip()) else d.strip()
                         for d in b.group(2).split(",") if d.strip())
            out.append((name, b.group(1), dims))
        else:
            out.append((name, ty, None))
    return out


def parse(text, name="<string>"):
    """Parses TIR text into a Module (KilnError PARSE with line and column on errors)."""
    if not isinstance(text, (str, bytes)):
        raise TypeError("parse: text must be a str, got %s" % type(text).__name__)
    data = text.encode() if isinstance(text, str) else text
    ctx = _lib.Context()
    h = ctypes.c_void_p()
    try:
        ctx.check(ctx.lib.kiln_tir_module_parse(ctx.handle, data, len(data), name.encode(),
                                                ctypes.byref(h)))
    except BaseException:
        ctx.discard()
        raise
    return Module(ctx, h)
