"""kiln.tune: tuning a model's kernels into a database (kiln_tune), and reading the database.

    report = kiln.tune("model.onnx", [{"input": [1, 3, 32, 32]}], db="tune.db", trials=64,
                       progress=print)
    print(report)                                   # a table per task
    compiled = kiln.compile_from_onnx("model.onnx", ..., db="tune.db")   # uses the records
    with kiln.Database("tune.db") as db:
        for w in db.workloads(): print(w["summary"], db.best(w["hash"]))
"""
import ctypes
import json as _json
import os
import signal
import threading

from kiln import _lib
from kiln.compiler import CBuckets, check_dtypes, export_torch, normalize_buckets
from kiln.relay import Module, import_onnx

__all__ = ["TuneReport", "tune", "Database"]


class TuneReport:
    """What kiln_tune reports: .json (the dict), .tasks (one dict per task), .trials,
    .default_latency_s, .est_latency_s, .interrupted (stopped by the progress callable),
    .time_limited; str() is a readable table."""

    def __init__(self, report):
        self.json = report
        self.tasks = report.get("tasks", [])
        self.trials = report.get("trials", 0)
        self.interrupted = bool(report.get("interrupted", False))
        self.time_limited = bool(report.get("time_limited", False))
        self.default_latency_s = report.get("default_latency_s")
        self.est_latency_s = report.get("est_latency_s")

    def __repr__(self):
        return "<kiln.TuneReport %d tasks, %d trials>" % (len(self.tasks), self.trials)

    def __str__(self):
        def us(v):
            return "%11.2f" % (v * 1e6) if isinstance(v, (int, float)) else "%11s" % "-"

        lines = ["%-40s %6s %4s %11s %11s %8s %9s" % ("task", "trials", "ok", "default_us",
                                                     "best_us", "speedup", "GFLOP/s")]
        for t in self.tasks:
            sp, gf = t.get("speedup"), t.get("best_gflops")
            lines.append("%-40s %6d %4d %s %s %8s %9s" % (
                str(t.get("name", ""))[:40], t.get("trials", 0), t.get("ok", 0),
                us(t.get("default_s")), us(t.get("best_s")),
                "%.2fx" % sp if isinstance(sp, (int, float)) else "-",
                "%.2f" % gf if isinstance(gf, (int, float)) else "-"))
            if t.get("error"):
                lines.append("    error: %s" % t["error"])
        lines.append("model latency: default %s us, tuned (estimated) %s us; %d trials" % (
            us(self.default_latency_s).strip(), us(self.est_latency_s).strip(), self.trials))
        return "\n".join(lines)


def _as_relay(model, input_info, opset=14):
    """(relay Module, buckets) of a path / bytes / ModelProto / relay Module / torch module."""
    if isinstance(model, Module):
        return model, normalize_buckets(input_info)
    if type(model).__module__.startswith("torch") or hasattr(model, "forward") and \
            hasattr(model, "parameters"):
        data, buckets = export_torch(model, input_info, opset)
        return import_onnx(_lib.Context(), data), buckets
    return import_onnx(_lib.Context(), model), normalize_buckets(input_info)


def tune(model, input_info=None, db="tune.db", target=None, trials=64, time_budget=None,
         seed=1, progress=None):
    """Tunes the model's kernels for the buckets of input_info and records every measurement
    in the database `db` (created when absent). progress: a callable taking one dict per
    round (round, trials, budget, task, ntasks, task_name, task_trials, task_best_s,
    task_gflops, est_latency_s, default_latency_s, elapsed_s); when it returns True the
    tuning stops after that round (the report's .interrupted is then True). Returns a
    TuneReport.

    Ctrl-C (KeyboardInterrupt) stops the tuning after the scheduling round in progress (a
    few measurements): what was measured is in the database, and KeyboardInterrupt is
    raised once kiln_tune has returned. An exception raised by progress stops it likewise
    and is raised again."""
    if db is None:
        raise ValueError("tune: db (the database path) is required")
    if not isinstance(trials, int) or trials < 1:
        raise ValueError("tune: trials must be a positive int, got %r" % (trials,))
    if progress is not None and not callable(progress):
        raise TypeError("tune: progress must be callable")
    m, buckets = _as_relay(model, input_info)
    check_dtypes(m, buckets)
    cb = CBuckets(buckets)
    errors = []  # an exception of progress, or KeyboardInterrupt: raised after kiln_tune

    def on_sigint(signum, frame):
        # Ctrl-C while kiln_tune runs: Python runs this handler when the callback below next
        # runs Python code (after a round); the callback then asks kiln_tune to stop
        errors.append(KeyboardInterrupt())

    def on_progress(ud, p):
        try:
            if errors:
                return 1
            if progress is None:
                return 0
            p = p.contents
            d = {name: getattr(p, name) for name, _ in _lib.TuneProgress._fields_}
            d["task_name"] = d["task_name"].decode() if d["task_name"] else ""
            return 1 if progress(d) is True or errors else 0
        except BaseException as e:
            errors.append(e)
            return 1

    cb_fn = _lib.TUNE_PROGRESS_FN(on_progress)
    opts = _lib.TuneOptions(target.encode() if target else None, os.fsencode(db), trials,
                            float(time_budget) if time_budget else 0.0, int(seed), cb_fn, None)
    ctx = m._ctx
    out = ctypes.c_void_p()
    main_thread = threading.current_thread() is threading.main_thread()
    old_handler = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
    try:
        st = ctx.lib.kiln_tune(m._h, cb.n, cb.array if cb.n else None, ctypes.byref(opts),
                               ctypes.byref(out))
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, old_handler)
    ctx.check(st)
    report = _json.loads(ctx.take_string(out))
    if errors:
        raise errors[0]
    return TuneReport(report)


class Database(_lib.Owner):
    """A tuning database (opened, or created when absent). Use as a context manager or
    call close()."""

    def __init__(self, path):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError("Database: path must be a str or os.PathLike, got %s"
                            % type(path).__name__)
        self.path = os.fspath(path)
        ctx = _lib.Context()
        self._lib = ctx.lib
        h = ctypes.c_void_p()
        try:
            ctx.check(self._lib.kiln_db_open(ctx.handle, os.fsencode(path), ctypes.byref(h)))
        except BaseException:
            ctx.discard()
            raise
        self._own(ctx, h, self._lib.kiln_db_close)

    def close(self):
        """Closes the database (also done when the object is collected)."""
        self._release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _handle(self):
        if self._h is None:
            raise ValueError("the database %s is closed" % self.path)
        return self._h

    def _json(self, fn, *args):
        h, out = self._handle(), ctypes.c_void_p()
        self._ctx.check(fn(h, *args, ctypes.byref(out)))
        return _json.loads(self._ctx.take_string(out))

    def workloads(self):
        """[{id, hash, summary, nrecords, best_s}]"""
        return self._json(self._lib.kiln_db_workloads_json)

    def targets(self):
        """[{id, target, cpu, host}]"""
        return self._json(self._lib.kiln_db_targets_json)

    def records(self, hash=None):
        """Every record, or those of one workload (its 16-hex-digit hash)."""
        return self._json(self._lib.kiln_db_records_json, hash.encode() if hash else None)

    def best(self, hash, target=None):
        """The best ok record of (workload, target) as a dict, or None."""
        if not isinstance(hash, str):
            raise TypeError("best: hash must be a str of 16 hex digits, got %s"
                            % type(hash).__name__)
        return self._json(self._lib.kiln_db_best_json, hash.encode(),
                          target.encode() if target else None)

    def merge(self, other_path):
        """Merges another database file into this one: (added, skipped) records."""
        h, added, skipped = self._handle(), ctypes.c_int64(), ctypes.c_int64()
        self._ctx.check(self._lib.kiln_db_merge(h, os.fsencode(other_path),
                                                ctypes.byref(added), ctypes.byref(skipped)))
        return added.value, skipped.value
