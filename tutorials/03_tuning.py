"""Tutorial 3: tuning a model, reading the tuning database, recompiling with it.

Without tuning, kiln schedules every kernel with its default rules: good tilings chosen by
formula for the target, the same for every machine of that kind. The tuner searches the
schedule space of each kernel instead and *measures* candidates on this machine:

  - the model is split into tasks, one per distinct kernel (weighted by how often it runs);
  - a task scheduler gives each round's trials to the tasks that promise the largest
    reduction of the model's latency;
  - per task, an evolutionary search proposes schedules (mutating the best ones found so
    far), a cost model learnt from the measurements ranks them, and the best few are built and
    timed in worker processes;
  - every measurement goes into a tuning database (SQLite): the workload (a hash of the
    kernel), the target, the schedule's trace and its timing.

Compiling with db=... then takes the best record of each kernel from the database (and the
default rules for kernels it does not know). The database is reusable: tune once, compile
many times, merge databases from several runs.

What to look at in the output:
  - the progress lines of the search (round, trials, estimated model latency);
  - the report table: per kernel the default time, the best tuned time and the speedup;
  - the database's workloads and their best records;
  - the recompiled model: how many kernels came from the database, outputs still equal;
  - model latency, default schedules vs tuned. With a budget of a few dozen trials on a busy
    2-core CI machine the gain may be small or noise: real tuning uses ~1000 trials.

Run from the repository root after ./scripts/build.sh:
    PYTHONPATH=python-bindings /usr/bin/python3 tutorials/03_tuning.py
"""
import json
import os
import shutil
import tempfile

import numpy as np

import kiln

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "tools", "models")

# The bundled default model: a small residual CNN for 3x32x32 images (written by
# tools/models/make_default.py), with a sample input and PyTorch's output for it.
onnx_path = os.path.join(MODELS, "default.onnx")
x = np.load(os.path.join(MODELS, "default_input.npy"))
expected = np.load(os.path.join(MODELS, "default_output.npy"))
bucket = [("input", tuple(x.shape), "float32")]

workdir = tempfile.mkdtemp(prefix="kiln_tutorial3_")
db_path = os.path.join(workdir, "tune.db")


def check(out, what):
    err = np.abs(out - expected).max()
    print("  %s: max |kiln - torch| = %.2e" % (what, err))
    np.testing.assert_allclose(out, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())


# ---- 1. The baseline: default schedules -------------------------------------------------
default = kiln.compile_from_onnx(onnx_path, bucket)
print("default compile: %d kernels, %d from a database" % (default.stats["nkernels"],
                                                           default.stats["nfrom_db"]))
assert default.stats["nfrom_db"] == 0
rt_default = kiln.Runtime(default)
check(rt_default(x), "default schedules")


# ---- 2. Tune ------------------------------------------------------------------------------
#
# trials: the total number of measured candidates over all kernels (a CI-sized budget);
# time_budget: a wall-clock limit in seconds, whichever comes first. seed makes the search
# reproducible up to measurement noise. progress gets one dict per scheduling round.
def progress(p):
    print("  round %2d: %3d/%d trials, task %d/%d %-40s best %8.1f us, model est. %.3f ms "
          "(default %.3f ms), %.0f s" % (
              p["round"], p["trials"], p["budget"], p["task"] + 1, p["ntasks"],
              p["task_name"][:40], p["task_best_s"] * 1e6, p["est_latency_s"] * 1e3,
              p["default_latency_s"] * 1e3, p["elapsed_s"]))


print("\ntuning into %s:" % db_path)
report = kiln.tune(onnx_path, bucket, db=db_path, trials=24, time_budget=120, seed=1,
                   progress=progress)
print()
print(report)   # the readable table: one line per task
print("\n%d trials; estimated model latency %.3f ms with default schedules, %.3f ms tuned" % (
    report.trials, report.default_latency_s * 1e3, report.est_latency_s * 1e3))
assert report.trials > 0
assert report.tasks and all(t["trials"] >= 0 for t in report.tasks)
assert any(t["ok"] > 0 for t in report.tasks), "no candidate was measured successfully"


# ---- 3. Read the database ------------------------------------------------------------------
#
# The database is an ordinary file; kiln.Database opens it (as `kiln db` does on the command
# line). Workloads are kernels (identified by a structural hash of their TIR), records are
# measured schedules (their trace: the schedule instructions, replayable).
print("\nthe tuning database:")
with kiln.Database(db_path) as db:
    targets = db.targets()
    for t in targets:   # the full target string: the CPU and its features, as measured
        print("  target %d: %.70s..." % (t["id"], t["target"]))
    workloads = db.workloads()
    nbest = 0
    for w in workloads:
        best = db.best(w["hash"])
        line = "  %s %-48s %3d records" % (w["hash"], w["summary"].split(" ->")[0][:48],
                                            w["nrecords"])
        if best is not None:
            nbest += 1
            insts = best["trace"]["insts"] if isinstance(best["trace"], dict) else []
            line += ", best %8.1f us (record %d, %d instructions)" % (
                best["median_s"] * 1e6, best["id"], len(insts))
        print(line)
    nrecords = len(db.records())
print("  %d workloads, %d with a best record, %d records in all" % (len(workloads), nbest,
                                                                   nrecords))
assert workloads and nbest > 0 and nrecords >= nbest

# One record in full: what the database keeps for a measured schedule.
with kiln.Database(db_path) as db:
    w = next(w for w in workloads if db.best(w["hash"]) is not None)
    best = db.best(w["hash"])
print("\nbest record of %s (trace shortened):" % w["summary"])
shown = dict(best)
shown["trace"] = json.dumps(best["trace"])[:300] + " ..."
for k in ("id", "status", "median_s", "min_s", "repeats", "seed", "trace"):
    print("  %-9s %s" % (k, shown.get(k)))


# ---- 4. Recompile with the database -------------------------------------------------------
#
# The same call as in step 1 plus db=: each kernel's best record is replayed onto the freshly
# lowered kernel (the trace is the schedule), the rest get the default rules.
tuned = kiln.compile_from_onnx(onnx_path, bucket, db=db_path)
print("\ntuned compile: %d kernels, %d scheduled from the database" % (
    tuned.stats["nkernels"], tuned.stats["nfrom_db"]))
for w in tuned.warnings:
    print("  warning:", w)
assert tuned.stats["nfrom_db"] > 0
rt_tuned = kiln.Runtime(tuned)
check(rt_tuned(x), "tuned schedules")


# ---- 5. Default vs tuned latency --------------------------------------------------------
#
# Both runtimes in the same process, timed alternately. No assertion: CI machines are noisy.
print("\nmodel latency (median of 30 runs):")
results = {}
for name, rt in (("default", rt_default), ("tuned", rt_tuned)):
    results[name] = rt.benchmark(x, repeats=30, warmup=3)["median_ms"]
    print("  %-8s %.3f ms" % (name, results[name]))
print("  speedup from tuning: %.2fx" % (results["default"] / results["tuned"]))

shutil.rmtree(workdir, ignore_errors=True)
print("\ntutorial 3 passed")
