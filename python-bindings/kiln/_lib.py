"""kiln._lib: loading libkiln.so, the C signatures, KilnError, contexts, dtypes and tensors.

Every other module of the package calls the C API through load() (one ctypes.CDLL, loaded
with RTLD_GLOBAL because kernels in loaded artifacts resolve kiln_rt_* from the process).
The library is found from $KILN_LIBRARY, else the repository's build/libkiln.so (two
directories above this package), else an installed libkiln.so (ctypes.util.find_library,
then plain "libkiln.so" for the dynamic loader's search path).
"""
import ctypes
import ctypes.util
import os

import numpy as np


class KilnError(RuntimeError):
    """A failed kiln call: .status is the kiln_status code (ERR_* below; -1 when libkiln
    cannot be loaded), .status_name its short name, .message the C message."""

    def __init__(self, status, status_name, message):
        super().__init__("%s: %s" % (status_name, message))
        self.status = status
        self.status_name = status_name
        self.message = message


# kiln_status codes (include/kiln/kiln_runtime.h).
OK, ERR_NOMEM, ERR_MISUSE, ERR_PARSE, ERR_TYPE, ERR_SHAPE, ERR_UNDEFINED, ERR_SCHEDULE, \
    ERR_IO, ERR_CORRUPT, ERR_UNSUPPORTED, ERR_RUNTIME, ERR_INTERNAL = range(13)


# ---- ctypes mirrors of the public structs ------------------------------------------------------


class DType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class Tensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device_type", ctypes.c_int32),
        ("device_id", ctypes.c_int32),
        ("ndim", ctypes.c_int32),
        ("dtype", DType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class InputShape(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("ndim", ctypes.c_int),
                ("shape", ctypes.POINTER(ctypes.c_int64))]


class Bucket(ctypes.Structure):
    _fields_ = [("ninputs", ctypes.c_int), ("inputs", ctypes.POINTER(InputShape)),
                ("weight", ctypes.c_double)]


class PadAxis(ctypes.Structure):
    _fields_ = [("input", ctypes.c_char_p), ("axis", ctypes.c_int)]


class CompileOptions(ctypes.Structure):
    _fields_ = [("target", ctypes.c_char_p), ("db_path", ctypes.c_char_p),
                ("opt_level", ctypes.c_int), ("model_name", ctypes.c_char_p),
                ("npaddable", ctypes.c_int), ("paddable", ctypes.POINTER(PadAxis))]


class CompileStats(ctypes.Structure):
    _fields_ = [("nbuckets", ctypes.c_int), ("ncalls", ctypes.c_int),
                ("nkernels", ctypes.c_int), ("nfrom_db", ctypes.c_int),
                ("nwarnings", ctypes.c_int), ("params_bytes", ctypes.c_uint64),
                ("code_bytes", ctypes.c_uint64), ("seconds_total", ctypes.c_double),
                ("seconds_passes", ctypes.c_double), ("seconds_lower", ctypes.c_double),
                ("seconds_schedule", ctypes.c_double), ("seconds_codegen", ctypes.c_double)]


class ProfileEntry(ctypes.Structure):
    _fields_ = [("bucket", ctypes.c_int32), ("call", ctypes.c_int32),
                ("kernel", ctypes.c_char_p), ("count", ctypes.c_int64),
                ("total_us", ctypes.c_double), ("min_us", ctypes.c_double),
                ("max_us", ctypes.c_double)]


class SchArg(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int32), ("i", ctypes.c_int64), ("f", ctypes.c_double),
                ("s", ctypes.c_char_p)]


SCH_ARG_RV, SCH_ARG_INT, SCH_ARG_FLOAT, SCH_ARG_STR = range(4)
SCH_MAX_ARGS = 64


class Timing(ctypes.Structure):
    _fields_ = [("median_s", ctypes.c_double), ("min_s", ctypes.c_double),
                ("max_s", ctypes.c_double), ("mean_s", ctypes.c_double),
                ("stddev_s", ctypes.c_double), ("repeats", ctypes.c_int)]


class TuneProgress(ctypes.Structure):
    _fields_ = [("round", ctypes.c_int), ("trials", ctypes.c_int), ("budget", ctypes.c_int),
                ("task", ctypes.c_int), ("ntasks", ctypes.c_int),
                ("task_name", ctypes.c_char_p), ("task_trials", ctypes.c_int),
                ("task_best_s", ctypes.c_double), ("task_gflops", ctypes.c_double),
                ("est_latency_s", ctypes.c_double), ("default_latency_s", ctypes.c_double),
                ("elapsed_s", ctypes.c_double)]


TUNE_PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(TuneProgress))


class TuneOptions(ctypes.Structure):
    _fields_ = [("target", ctypes.c_char_p), ("db_path", ctypes.c_char_p),
                ("trials", ctypes.c_int), ("time_budget_s", ctypes.c_double),
                ("seed", ctypes.c_uint64), ("progress", TUNE_PROGRESS_FN),
                ("progress_ud", ctypes.c_void_p)]


# ---- Signatures ------------------------------------------------------------------------------

_vp, _st, _cp, _i64, _u64 = (ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int64,
                             ctypes.c_uint64)
_P = ctypes.POINTER
_int, _sz, _dbl = ctypes.c_int, ctypes.c_size_t, ctypes.c_double

# name -> (restype, argtypes). Strings the caller must free are returned through c_void_p
# out-parameters (a c_char_p would lose the pointer).
SIGNATURES = {
    # context, status, strings
    "kiln_context_new": (_st, [_P(_vp)]),
    "kiln_context_free": (None, [_vp]),
    "kiln_context_errmsg": (_cp, [_vp]),
    "kiln_status_str": (_cp, [_st]),
    "kiln_last_error": (_cp, []),
    "kiln_string_free": (None, [_vp, _vp]),
    "kiln_rt_free": (None, [_vp]),
    "kiln_version": (_cp, []),
    "kiln_dtype_str": (_cp, [DType, ctypes.c_char_p, _sz]),
    "kiln_dtype_parse": (_st, [_cp, _sz, _P(DType)]),
    "kiln_rt_set_num_threads": (_st, [ctypes.c_int32]),
    "kiln_rt_num_threads": (ctypes.c_int32, []),
    # TIR modules
    "kiln_tir_module_parse": (_st, [_vp, _cp, _sz, _cp, _P(_vp)]),
    "kiln_tir_module_free": (None, [_vp]),
    "kiln_tir_module_print": (_st, [_vp, _P(_vp)]),
    "kiln_tir_module_equal": (_st, [_vp, _vp, _P(_int)]),
    "kiln_tir_module_hash": (_st, [_vp, _P(_u64)]),
    "kiln_tir_module_verify": (_st, [_vp]),
    "kiln_tir_module_simplify": (_st, [_vp, _P(_vp)]),
    "kiln_tir_module_num_funcs": (_int, [_vp]),
    "kiln_tir_module_func_name": (_cp, [_vp, _int]),
    "kiln_tir_module_interpret": (_st, [_vp, _cp, _int, _P(_vp)]),
    # Relay modules
    "kiln_relay_module_free": (None, [_vp]),
    "kiln_relay_module_parse": (_st, [_vp, _cp, _sz, _P(_vp)]),
    "kiln_relay_module_from_onnx": (_st, [_vp, _cp, _sz, _cp, _P(_vp)]),
    "kiln_relay_module_from_onnx_file": (_st, [_vp, _cp, _P(_vp)]),
    "kiln_relay_module_print": (_st, [_vp, _P(_vp)]),
    "kiln_relay_module_equal": (_st, [_vp, _vp, _P(_int)]),
    "kiln_relay_module_hash": (_st, [_vp, _P(_u64)]),
    "kiln_relay_module_num_funcs": (_int, [_vp]),
    "kiln_relay_module_func_name": (_cp, [_vp, _int]),
    "kiln_relay_module_run_passes": (_st, [_vp, _cp, _st]),
    "kiln_relay_module_bind": (_st, [_vp, _st, _P(_cp), _P(_i64)]),
    "kiln_relay_module_interpret": (_st, [_vp, _cp, _st, _P(Tensor), _st, _P(Tensor)]),
    "kiln_relay_module_lower": (_st, [_vp, _P(_vp)]),
    # compiling
    "kiln_compile": (_st, [_vp, _int, _P(Bucket), _P(CompileOptions), _P(_vp)]),
    "kiln_compiled_free": (None, [_vp]),
    "kiln_compiled_save": (_st, [_vp, _cp]),
    "kiln_compiled_bytes": (_st, [_vp, _P(_vp), _P(_sz)]),
    "kiln_compiled_load": (_st, [_vp, _P(_vp)]),
    "kiln_compiled_stats": (_st, [_vp, _P(CompileStats)]),
    "kiln_compiled_warning": (_cp, [_vp, _int]),
    # models and sessions
    "kiln_model_load": (_st, [_cp, _P(_vp)]),
    "kiln_model_load_memory": (_st, [_vp, _sz, _cp, _P(_vp)]),
    "kiln_model_free": (None, [_vp]),
    "kiln_model_num_inputs": (_int, [_vp]),
    "kiln_model_num_outputs": (_int, [_vp]),
    "kiln_model_num_buckets": (_int, [_vp]),
    "kiln_model_input_name": (_cp, [_vp, _int]),
    "kiln_model_output_name": (_cp, [_vp, _int]),
    "kiln_model_input_index": (_int, [_vp, _cp]),
    "kiln_model_input_dtype": (DType, [_vp, _int]),
    "kiln_model_output_dtype": (DType, [_vp, _int]),
    "kiln_model_input_ndim": (_int, [_vp, _int]),
    "kiln_model_output_ndim": (_int, [_vp, _int]),
    "kiln_model_input_shape": (_st, [_vp, _int, _int, _P(_i64)]),
    "kiln_model_output_shape": (_st, [_vp, _int, _int, _P(_i64)]),
    "kiln_model_bucket_memory": (_st, [_vp, _int, _P(_u64), _P(_u64)]),
    "kiln_model_bucket_num_calls": (_int, [_vp, _int]),
    "kiln_model_meta_json": (_cp, [_vp]),
    "kiln_model_plan_json": (_cp, [_vp]),
    "kiln_session_new": (_st, [_vp, _P(_vp)]),
    "kiln_session_free": (None, [_vp]),
    "kiln_session_set_paddable": (_st, [_vp, _int, _int, _int]),
    "kiln_session_set_input": (_st, [_vp, _int, _P(Tensor)]),
    "kiln_session_run": (_st, [_vp]),
    "kiln_session_get_output": (_st, [_vp, _int, _P(Tensor)]),
    "kiln_session_last_bucket": (_int, [_vp]),
    "kiln_session_set_profiling": (_st, [_vp, _int]),
    "kiln_session_profile": (_st, [_vp, _P(_int), _P(_P(ProfileEntry))]),
    "kiln_session_profile_report": (_st, [_vp, _int, _P(_vp)]),
    # schedules and kernels
    "kiln_schedule_new": (_st, [_vp, _cp, _u64, _P(_vp)]),
    "kiln_schedule_free": (None, [_vp]),
    "kiln_schedule_apply": (_st, [_vp, _cp, _int, _P(SchArg), _P(_int), _P(ctypes.c_int32)]),
    "kiln_schedule_rv_kind": (_int, [_vp, ctypes.c_int32]),
    "kiln_schedule_rv_int": (_st, [_vp, ctypes.c_int32, _P(_i64)]),
    "kiln_schedule_rv_name": (_cp, [_vp, ctypes.c_int32]),
    "kiln_schedule_apply_default_rules": (_st, [_vp, _cp]),
    "kiln_schedule_trace": (_st, [_vp, _P(_vp)]),
    "kiln_schedule_replay": (_st, [_vp, _cp]),
    "kiln_schedule_module": (_st, [_vp, _P(_vp)]),
    "kiln_kernel_build": (_st, [_vp, _cp, _cp, _P(_vp)]),
    "kiln_kernel_free": (None, [_vp]),
    "kiln_kernel_num_params": (_int, [_vp]),
    "kiln_kernel_lowered_text": (_st, [_vp, _P(_vp)]),
    "kiln_kernel_call": (_st, [_vp, _P(Tensor), _int]),
    "kiln_kernel_time": (_st, [_vp, _P(Tensor), _int, _int, _int, _dbl, _P(Timing)]),
    # tuning and the database
    "kiln_tune": (_st, [_vp, _int, _P(Bucket), _P(TuneOptions), _P(_vp)]),
    "kiln_db_open": (_st, [_vp, _cp, _P(_vp)]),
    "kiln_db_close": (None, [_vp]),
    "kiln_db_workloads_json": (_st, [_vp, _P(_vp)]),
    "kiln_db_targets_json": (_st, [_vp, _P(_vp)]),
    "kiln_db_records_json": (_st, [_vp, _cp, _P(_vp)]),
    "kiln_db_best_json": (_st, [_vp, _cp, _cp, _P(_vp)]),
    "kiln_db_merge": (_st, [_vp, _cp, _P(_i64), _P(_i64)]),
}


def _missing(name, path):
    """A stand-in for a C function this libkiln.so does not export (an older build)."""
    def call(*args):
        raise KilnError(ERR_UNSUPPORTED, "unsupported",
                        "%s is not exported by %s (rebuild libkiln)" % (name, path))
    call.kiln_missing = True
    return call


_lib = None


def library_path():
    """Where load() looks first: $KILN_LIBRARY, else build/libkiln.so of the repository when
    it exists, else None (the installed library)."""
    env = os.environ.get("KILN_LIBRARY")
    if env:
        return env
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "build", "libkiln.so")
    return path if os.path.exists(path) else None


def load(fresh=False):
    """The loaded library (cached; fresh=True resolves the path and loads again). Raises
    KilnError (status -1) naming the path when it cannot be loaded."""
    global _lib
    if _lib is not None and not fresh:
        return _lib
    path = library_path()
    candidates = [path] if path else [ctypes.util.find_library("kiln") or "libkiln.so"]
    try:
        lib = ctypes.CDLL(candidates[0], mode=ctypes.RTLD_GLOBAL)
    except OSError as e:
        raise KilnError(-1, "load error", "cannot load libkiln from '%s' (set KILN_LIBRARY): %s"
                        % (candidates[0], e))
    for name, (restype, argtypes) in SIGNATURES.items():
        try:
            f = getattr(lib, name)
        except AttributeError:
            setattr(lib, name, _missing(name, candidates[0]))
            continue
        f.restype, f.argtypes = restype, argtypes
    lib.kiln_path = candidates[0]
    _lib = lib
    return lib


def has(name):
    """Whether the loaded library exports the C function `name`."""
    return not getattr(getattr(load(), name), "kiln_missing", False)


def raise_error(lib, status, ctx=None):
    """Raises the KilnError of a failed call: the thread's last error, or the context's
    message when it is the same error written in full (the thread copy is truncated)."""
    msg = (lib.kiln_last_error() or b"").decode(errors="replace")
    if ctx is not None:
        full = (lib.kiln_context_errmsg(ctx) or b"").decode(errors="replace")
        if full and (not msg or (full.startswith(msg) and len(full) > len(msg))):
            msg = full
    name = lib.kiln_status_str(status).decode()
    raise KilnError(status, name, msg)


def check(lib, status, ctx=None):
    if status != 0:
        raise_error(lib, status, ctx)


class Context:
    """One kiln_context, shared by the objects made through it (modules, compiled models,
    schedules, kernels, databases). Each owner calls retain() when it takes the context and
    release() in its finalizer after freeing its own handle; the last release frees the
    context. The context deliberately has no finalizer of its own: objects caught in a
    reference cycle (a traceback holding a module) are finalized in no fixed order, and a
    context finalizer could then free memory an owner is about to free through it. A context
    that never got an owner is freed with discard() (error paths)."""

    def __init__(self, lib=None):
        lib = lib or load()
        h = ctypes.c_void_p()
        check(lib, lib.kiln_context_new(ctypes.byref(h)))
        self.lib = lib
        self.handle = h
        self.owners = 0
        self._free = lib.kiln_context_free

    def retain(self):
        self.owners += 1
        return self

    def release(self):
        self.owners -= 1
        if self.owners <= 0:
            self.free()

    def discard(self):
        if self.owners <= 0:
            self.free()

    def check(self, s):
        if s != 0:
            raise_error(self.lib, s, self.handle)

    def take_string(self, out):
        """The text of a kiln string out-parameter (a c_void_p), freed."""
        try:
            return ctypes.string_at(out.value).decode() if out.value else ""
        finally:
            if out.value:
                self.lib.kiln_string_free(self.handle, out)

    def free(self):
        if self.handle is not None and self.handle.value:
            self._free(self.handle)
        self.handle = None


class Owner:
    """Base of the objects owning one C handle made on a Context: subclasses set
    self._free_fn (the C free function) and call _own(ctx, handle)."""

    _h = None
    _ctx = None

    def _own(self, ctx, handle, free_fn):
        self._ctx = ctx.retain()
        self._free_fn = free_fn
        self._h = handle

    def _release(self):
        h, self._h = self._h, None
        if h is not None and h.value:
            self._free_fn(h)
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            ctx.release()

    def __del__(self):
        self._release()


# ---- dtypes and tensors ---------------------------------------------------------------------

# numpy dtype -> (kiln type code, bits)
NP_TO_KILN = {
    np.dtype(np.float32): (2, 32), np.dtype(np.float64): (2, 64), np.dtype(np.float16): (2, 16),
    np.dtype(np.int8): (0, 8), np.dtype(np.int16): (0, 16), np.dtype(np.int32): (0, 32),
    np.dtype(np.int64): (0, 64), np.dtype(np.uint8): (1, 8), np.dtype(np.uint16): (1, 16),
    np.dtype(np.uint32): (1, 32), np.dtype(np.uint64): (1, 64), np.dtype(np.bool_): (6, 8),
}
KILN_TO_NP = {v: k for k, v in NP_TO_KILN.items()}


def dtype_name(lib, dt):
    """The kiln name of a DType ("float32", "bool", ...)."""
    buf = ctypes.create_string_buffer(32)
    return lib.kiln_dtype_str(dt, buf, 32).decode()


def np_dtype(dt):
    """The numpy dtype of a DType (None when numpy has none, e.g. bfloat16)."""
    if dt.lanes != 1:
        return None
    return KILN_TO_NP.get((dt.code, dt.bits))


def dtype_of_name(name):
    """A numpy dtype from a name, numpy dtype or torch dtype ("float32", np.float32,
    torch.float32); ValueError for something else."""
    s = str(name)
    if s.startswith("torch."):
        s = s[len("torch."):]
    try:
        return np.dtype(s)
    except TypeError:
        raise ValueError("unknown dtype %r" % (name,))


def tensor_of(arr, keep):
    """A Tensor describing the C-contiguous numpy array arr (its shape array goes in keep)."""
    key = NP_TO_KILN.get(arr.dtype)
    if key is None:
        raise TypeError("kiln: unsupported numpy dtype %s" % arr.dtype)
    shape = (ctypes.c_int64 * max(arr.ndim, 1))(*arr.shape)
    keep.append(shape)
    t = Tensor()
    t.data = arr.ctypes.data if arr.size else None
    t.device_type = 1
    t.device_id = 0
    t.ndim = arr.ndim
    t.dtype = DType(key[0], key[1], 1)
    t.shape = shape
    t.strides = None
    t.byte_offset = 0
    return t


def array_view(t, dtype):
    """A numpy view (no copy) of the memory a Tensor describes."""
    shape = tuple(t.shape[k] for k in range(t.ndim))
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if n == 0 or not t.data:
        return np.empty(shape, dtype=dtype)
    buf = (ctypes.c_char * (n * dtype.itemsize)).from_address(t.data + t.byte_offset)
    return np.frombuffer(buf, dtype=dtype).reshape(shape)
