#!/usr/bin/python3
"""models.py: the model-level benchmark (bench/run.sh runs it; run it with /usr/bin/python3).

For each model (torchvision resnet18, resnet50, mobilenet_v2, efficientnet_b0 with
weights=None and randomized BatchNorm statistics, and a Transformer encoder), fixed seed:
  1. export ONNX once (dynamic batch axis);
  2. `kiln compile` it with one bucket per batch size (default schedules; and a second
     artifact tuned from a database when --db is given), wall time = compile time;
  3. check every kiln artifact against PyTorch on a fixed input for every batch size
     (`kiln run --expect` with a .npy reference) BEFORE timing: a model whose check fails
     gets no kiln number (marked WRONG) and the script exits 1 at the end;
  4. time kiln (`kiln bench --json`: median, p10-p90), PyTorch eager and TorchScript
     (torch.jit.trace + freeze; torch.set_num_threads), ONNX Runtime (node bench/ort.js,
     onnxruntime-node, intraOpNumThreads), for batch 1 and 4 on 1 and 2 threads;
  5. artifact load time (bench/kiln-bench-load: kiln_model_load + kiln_session_new) against
     ONNX Runtime's session creation;
and writes bench/results/models.md (tables), models.json (raw numbers) and PNG plots.

Modes: default (all models, batch 1 and 4, threads 1 and 2); --quick (resnet18,
mobilenet_v2, transformer; batch 1; fewer repeats: a few minutes); --smoke (one tiny CNN,
batch 1, 1 thread, 3 repeats, every installed peer: for tests/bench_smoke_test.sh).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

# PyTorch's BLAS (OpenBLAS on Debian) picks its kernels for this CPU (see bench/run.sh): set
# before torch is imported, which loads OpenBLAS.
os.environ.pop("OPENBLAS_CORETYPE", None)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
ALL_MODELS = ["resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "transformer"]
QUICK_MODELS = ["resnet18", "mobilenet_v2", "transformer"]
# The Transformer encoder: d_model, heads, feed-forward width, layers, sequence length.
TF_D, TF_HEADS, TF_FF, TF_LAYERS, TF_SEQ = 256, 4, 1024, 4, 128


def log(msg):
    print(f"[models] {msg}", file=sys.stderr, flush=True)


# ---- models -----------------------------------------------------------------------------------

def randomize_bn(model, torch):
    """Random BatchNorm statistics and affine parameters, so that an exported model does not
    fold to an identity-like BN (fresh torchvision models have mean 0, var 1)."""
    for mod in model.modules():
        if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = mod.num_features
            with torch.no_grad():
                mod.running_mean.copy_(torch.randn(n) * 0.1)
                mod.running_var.copy_(torch.rand(n) + 0.5)
                mod.weight.copy_(torch.rand(n) + 0.5)
                mod.bias.copy_(torch.randn(n) * 0.1)


def make_model(name, torch):
    """(model in eval mode, input shape without the batch) for `name`; seed 0."""
    torch.manual_seed(0)
    if name == "transformer":
        layer = torch.nn.TransformerEncoderLayer(TF_D, TF_HEADS, dim_feedforward=TF_FF,
                                                 dropout=0.0, batch_first=True)
        model = torch.nn.TransformerEncoder(layer, TF_LAYERS, enable_nested_tensor=False)
        shape = (TF_SEQ, TF_D)
    elif name == "tiny":
        nn = torch.nn
        model = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
        shape = (3, 32, 32)
    else:
        import torchvision
        model = getattr(torchvision.models, name)(weights=None)
        shape = (3, 224, 224)
    randomize_bn(model, torch)
    return model.eval(), shape


# ---- helpers ------------------------------------------------------------------------------------

def run(cmd, timeout, env=None):
    """Runs cmd; returns (returncode, stdout, stderr, seconds). A timeout is returncode -9."""
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        return p.returncode, p.stdout, p.stderr, time.perf_counter() - t0
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return -9, out, f"timed out after {timeout} s", time.perf_counter() - t0


def last_line(text):
    lines = [l for l in (text or "").strip().splitlines() if l.strip()]
    return lines[-1] if lines else ""


def percentiles(times):
    """median, p10, p90, min, max (same units as times)."""
    import numpy as np
    a = np.asarray(times, dtype=float)
    return {"median": float(np.median(a)), "p10": float(np.percentile(a, 10)),
            "p90": float(np.percentile(a, 90)), "min": float(a.min()), "max": float(a.max()),
            "repeats": int(a.size)}


def time_torch(fn, x, warmup, repeats, min_time):
    """Times fn(x) in ms: warm-up calls, then at least `repeats` calls lasting min_time s."""
    for _ in range(warmup):
        fn(x)
    times = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn(x)
        times.append((time.perf_counter() - t0) * 1e3)
    return percentiles(times)


def machine_info():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (-1, -1, -1)
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem,
            "os": platform.platform(), "load_before": [round(v, 2) for v in load]}


# ---- the benchmark ------------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.a = args
        self.kiln = os.path.join(args.build, "tools", "kiln")
        self.load_tool = args.load_tool or os.path.join(args.build, "bench", "kiln-bench-load")
        self.env = dict(os.environ)
        ort_modules = os.path.join(args.ort_dir, "node_modules")
        self.env["NODE_PATH"] = ort_modules + (
            os.pathsep + self.env["NODE_PATH"] if self.env.get("NODE_PATH") else "")
        self.failures = []   # kiln checks that failed (model, variant, batch, message)
        self.notes = []
        self.ort_ok = None    # None: not probed yet
        self.ort_version = None

    def probe_ort(self):
        """Whether node + onnxruntime-node work; a note saying why not."""
        if shutil.which("node") is None:
            self.notes.append("ONNX Runtime skipped: node is not installed (scripts/setup.sh)")
            return False
        rc, out, err, _ = run(["node", "-e", "require('onnxruntime-node')"], 60, self.env)
        if rc != 0:
            self.notes.append("ONNX Runtime skipped: onnxruntime-node is not installed in "
                              f"{self.a.ort_dir} (run scripts/setup_bench.sh)")
            return False
        return True

    def kiln_compile(self, onnx_path, out, batches, shape, db=None):
        cmd = [self.kiln, "compile", onnx_path, "-o", out]
        for b in batches:
            cmd += ["--bucket", "input=" + "x".join(str(d) for d in (b,) + shape)]
        if db:
            cmd += ["--db", db]
        rc, out_, err, secs = run(cmd, self.a.compile_timeout)
        if rc != 0:
            return None, f"compile failed: {last_line(err) or rc}", None
        if err.strip():
            log(f"kiln compile warnings: {err.strip()[:400]}")
        # "kernels  34 distinct, 3 scheduled from the tuning database ..."
        m = re.search(r"(\d+) distinct, (\d+) scheduled from the tuning database", out_)
        return secs, None, (int(m.group(2)), int(m.group(1))) if m else None

    def kiln_check(self, artifact, inp, ref, outdir):
        cmd = [self.kiln, "run", artifact, "--input", f"input={inp}", "--output-dir", outdir,
               "--expect", f"output={ref}", "--rtol", str(self.a.rtol),
               "--atol-rel", str(self.a.atol_rel)]
        rc, out, err, _ = run(cmd, 600)
        if rc == 0:  # "output matches FILE (N values, ...)": the path left out
            msg = last_line(out)
            return None, msg.replace(ref + " ", "") if msg else "ok"
        return last_line(err) or last_line(out) or f"exit status {rc}", None

    def kiln_bench(self, artifact, bucket, threads):
        cmd = [self.kiln, "bench", artifact, "--bucket", str(bucket), "--threads", str(threads),
               "--json", "--warmup", str(self.a.warmup), "--iters", str(self.a.repeats),
               "--min-time", str(self.a.min_time)]
        rc, out, err, _ = run(cmd, 900)
        if rc != 0:
            return {"error": last_line(err) or f"exit status {rc}"}
        j = json.loads(out)
        us = 1e-3
        return {"median": j["p50_us"] * us, "p10": j["p10_us"] * us, "p90": j["p90_us"] * us,
                "min": j["min_us"] * us, "max": j["max_us"] * us, "repeats": j["iters"]}

    def kiln_load(self, artifact):
        rc, out, err, _ = run([self.load_tool, artifact, "--repeats", str(self.a.load_repeats)],
                              300)
        if rc != 0:
            return {"error": last_line(err) or f"exit status {rc}"}
        return json.loads(out)

    def ort_bench(self, onnx_path, shape, threads, sessions):
        cmd = ["node", os.path.join(BENCH, "ort.js"), onnx_path,
               "--shape", "x".join(str(d) for d in shape), "--input", "input",
               "--threads", str(threads), "--warmup", str(self.a.warmup),
               "--repeats", str(self.a.repeats), "--min-time", str(self.a.min_time),
               "--sessions", str(sessions)]
        rc, out, err, _ = run(cmd, 900, self.env)
        if rc != 0:
            return {"error": last_line(err) or f"exit status {rc}"}
        j = json.loads(last_line(out))
        self.ort_version = j.get("version")
        return {"median": j["median_ms"], "p10": j["p10_ms"], "p90": j["p90_ms"],
                "min": j["min_ms"], "max": j["max_ms"], "repeats": j["repeats"],
                "session_ms": j["session_ms"], "session_first_ms": j["session_first_ms"]}

    def model(self, name):
        import numpy as np
        import torch
        a = self.a
        work = os.path.join(a.work, name)
        os.makedirs(work, exist_ok=True)
        res = {"name": name, "variants": {}, "timings": [], "notes": []}
        model, shape = make_model(name, torch)
        res["input_shape"] = list(shape)

        # 1. ONNX, dynamic batch
        onnx_path = os.path.join(work, f"{name}.onnx")
        torch.manual_seed(1)
        x1 = torch.randn((1,) + shape)
        t0 = time.perf_counter()
        # not under no_grad: there nn.TransformerEncoder takes its fused fast path, which has
        # no ONNX export
        torch.onnx.export(model, x1, onnx_path, input_names=["input"],
                          output_names=["output"], opset_version=13,
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        res["export_s"] = time.perf_counter() - t0
        res["onnx_mb"] = os.path.getsize(onnx_path) / 2**20

        # fixed inputs and PyTorch's outputs for the checks
        inputs = {}
        for b in a.batches:
            torch.manual_seed(100 + b)
            x = torch.randn((b,) + shape)
            with torch.no_grad():
                y = model(x)
            inputs[b] = x
            np.save(os.path.join(work, f"input_b{b}.npy"), x.numpy())
            ref = y.numpy() * (1.01 if a.corrupt_reference else 1.0)
            np.save(os.path.join(work, f"ref_b{b}.npy"), ref)

        # 2. + 3. kiln artifacts, compiled and checked
        variants = [("default", None)] + ([("tuned", a.db)] if a.db else [])
        for vname, db in variants:
            art = os.path.join(work, f"{name}.{vname}.kiln")
            v = {"artifact": art, "ok": False}
            secs, err, kernels = self.kiln_compile(onnx_path, art, a.batches, shape, db)
            v["kernels_from_db"] = kernels
            if err:
                v["error"] = err
                self.failures.append((name, vname, "-", err))
                log(f"{name} {vname}: {err}")
            else:
                v["compile_s"] = secs
                v["artifact_mb"] = os.path.getsize(art) / 2**20
                v["checks"] = {}
                ok = True
                for b in a.batches:
                    bad, msg = self.kiln_check(art, os.path.join(work, f"input_b{b}.npy"),
                                               os.path.join(work, f"ref_b{b}.npy"), work)
                    v["checks"][b] = bad or msg
                    if bad:
                        ok = False
                        self.failures.append((name, vname, b, bad))
                        log(f"{name} {vname} batch {b}: WRONG: {bad}")
                    else:
                        log(f"{name} {vname} batch {b}: {msg}")
                v["ok"] = ok
                if ok:
                    v["load"] = self.kiln_load(art)
            res["variants"][vname] = v

        # 4. timings: per thread count and batch, every peer
        traced = {}
        for threads in ([] if a.check_only else a.threads):
            for bi, b in enumerate(a.batches):
                x = inputs[b]
                row = {"batch": b, "threads": threads}
                for vname, v in res["variants"].items():
                    if v["ok"]:
                        row["kiln_" + vname] = self.kiln_bench(v["artifact"], bi, threads)
                    else:
                        row["kiln_" + vname] = {"error": "WRONG" if "checks" in v else
                                                v.get("error", "failed")}
                if self.ort_ok:
                    first = threads == a.threads[0] and bi == 0
                    sessions = a.ort_sessions if first else 1
                    row["ort"] = self.ort_bench(onnx_path, (b,) + shape, threads, sessions)
                    if "session_ms" in row["ort"] and first:
                        res["ort_session"] = {"median_ms": row["ort"]["session_ms"],
                                              "first_ms": row["ort"]["session_first_ms"],
                                              "threads": threads}
                time.sleep(0.2)
                torch.set_num_threads(threads)
                with torch.inference_mode():
                    row["torch_eager"] = time_torch(model, x, a.warmup, a.repeats, a.min_time)
                with torch.no_grad():
                    if b not in traced:
                        ts = torch.jit.freeze(torch.jit.trace(model, x, check_trace=False))
                        traced[b] = ts
                    row["torchscript"] = time_torch(traced[b], x, max(a.warmup, 3), a.repeats,
                                                    a.min_time)
                res["timings"].append(row)
                log(f"{name} batch {b} threads {threads}: " + ", ".join(
                    f"{k} {v['median']:.2f} ms" if "median" in v else f"{k} {v.get('error')}"
                    for k, v in row.items() if isinstance(v, dict)))
        return res


# ---- output -------------------------------------------------------------------------------------

PEERS = [("torch_eager", "PyTorch eager"), ("torchscript", "TorchScript"), ("ort", "ONNX Runtime")]


def md_escape(text):
    """text for a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def cell(m):
    if m is None:
        return "-"
    if "median" not in m:
        err = str(m.get("error", "?"))
        return "**WRONG**" if err == "WRONG" else f"n/a: {md_escape(err[:100])}"
    return f"{m['median']:.2f} ({m['p10']:.2f}-{m['p90']:.2f})"


def ratio(peer, kiln):
    if not peer or not kiln or "median" not in peer or "median" not in kiln:
        return "-"
    return f"{peer['median'] / kiln['median']:.2f}"


def write_markdown(path, results, meta, variants, peers):
    L = []
    L.append("# Model benchmark: kiln vs PyTorch and ONNX Runtime\n")
    L.append(f"Run of `{meta['command']}` on {meta['date']} ({meta['mode']} mode).  ")
    m = meta["machine"]
    L.append(f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, {m['os']}; "
             f"load average before: {' '.join(str(v) for v in m['load_before'])}.  ")
    L.append("Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".  ")
    L.append(f"Timing: {meta['warmup']} warm-up runs, then at least {meta['repeats']} runs "
             f"and {meta['min_time']} s; median (p10-p90) in ms. \"kiln speed vs X\" = X's "
             "median / kiln's median from the same run (> 1: kiln is faster).\n")
    for n in meta["notes"]:
        L.append(f"- {n}")
    if meta["notes"]:
        L.append("")
    L.append("## Latency\n")
    head = ["model", "batch", "threads"] + [f"kiln {v}" for v in variants] + \
        [p[1] for p in peers] + [f"kiln {v} speed vs {p[1]}" for v in variants for p in peers]
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "---|" * len(head))
    for r in results:
        for t in r["timings"]:
            cells = [r["name"], str(t["batch"]), str(t["threads"])]
            cells += [cell(t.get("kiln_" + v)) for v in variants]
            cells += [cell(t.get(p[0])) for p in peers]
            cells += [ratio(t.get(p[0]), t.get("kiln_" + v)) for v in variants for p in peers]
            L.append("| " + " | ".join(cells) + " |")
    L.append("\n## Correctness (kiln vs PyTorch, before timing)\n")
    L.append("| model | variant | batch | result |")
    L.append("|---|---|---|---|")
    for r in results:
        for v, d in r["variants"].items():
            if "checks" not in d:
                L.append(f"| {r['name']} | {v} | - | **FAILED**: {md_escape(d.get('error'))} |")
                continue
            for b, msg in d["checks"].items():
                ok = msg and "matches" in msg
                L.append(f"| {r['name']} | {v} | {b} | {'ok: ' if ok else '**WRONG**: '}"
                         f"{md_escape(msg)} |")
    L.append("\n## Compile and load time\n")
    L.append("kiln compile: wall time of `kiln compile` for all the buckets (batch "
             f"{', '.join(str(b) for b in meta['batches'])}). kiln load: `kiln-bench-load` "
             "(kiln_model_load + kiln_session_new), first and median of repeats. ONNX Runtime "
             "session: `InferenceSession.create` with graph optimizations, first and median.\n")
    head = ["model", "ONNX MiB"] + [f"kiln compile s ({v})" for v in variants] + \
        ["artifact MiB", "kiln load ms (first / median)", "ORT session ms (first / median)",
         "load speed vs ORT session"]
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "---|" * len(head))
    for r in results:
        d = r["variants"].get("default", {})
        cells = [r["name"], f"{r['onnx_mb']:.1f}"]
        for v in variants:
            c = r["variants"].get(v, {}).get("compile_s")
            k = r["variants"].get(v, {}).get("kernels_from_db")
            note = f" ({k[0]} of {k[1]} kernels from the db)" if v == "tuned" and k else ""
            cells.append(f"{c:.2f}{note}" if c is not None else "n/a")
        cells.append(f"{d['artifact_mb']:.1f}" if "artifact_mb" in d else "-")
        ld = d.get("load") or {}
        cells.append(f"{ld['first_ms']:.2f} / {ld['median_ms']:.2f}" if "median_ms" in ld
                     else "-")
        os_ = r.get("ort_session")
        cells.append(f"{os_['first_ms']:.1f} / {os_['median_ms']:.1f}" if os_ else "-")
        cells.append(f"{os_['median_ms'] / ld['median_ms']:.1f}"
                     if os_ and "median_ms" in ld and ld["median_ms"] > 0 else "-")
        L.append("| " + " | ".join(cells) + " |")
    L.append("")
    with open(path, "w") as f:
        f.write("\n".join(L))


def write_plots(outdir, results, variants, peers):
    """models_latency.png (median latency per model and implementation, one panel per batch and
    thread count, log scale) and models_speedup.png (kiln default's speed vs each peer)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker
    configs = sorted({(t["batch"], t["threads"]) for r in results for t in r["timings"]})
    impls = [("kiln_" + v, "kiln " + v) for v in variants] + list(peers)
    files = []
    for kind in ("latency", "speedup"):
        fig, axes = plt.subplots(1, len(configs), figsize=(max(6, 5 * len(configs)), 4.5),
                                 squeeze=False)
        for ax, (b, th) in zip(axes[0], configs):
            names = [r["name"] for r in results]
            series = impls if kind == "latency" else \
                [(f"{k}|{p[0]}", f"{lbl} vs {p[1]}") for k, lbl in impls[:len(variants)]
                 for p in peers]
            width = 0.8 / max(1, len(series))
            for si, (key, label) in enumerate(series):
                vals = []
                for r in results:
                    t = next((t for t in r["timings"] if t["batch"] == b and t["threads"] == th),
                             None)
                    v = float("nan")
                    if t is not None and kind == "latency":
                        m = t.get(key) or {}
                        v = m.get("median", float("nan"))
                    elif t is not None:
                        kk, pk = key.split("|")
                        km, pm = t.get(kk) or {}, t.get(pk) or {}
                        if "median" in km and "median" in pm:
                            v = pm["median"] / km["median"]
                    vals.append(v)
                xs = [i + (si - (len(series) - 1) / 2) * width for i in range(len(names))]
                bars = ax.bar(xs, vals, width, label=label)
                if kind == "speedup":
                    ax.bar_label(bars, labels=[f"{v:.2f}" if v == v else "" for v in vals],
                                 fontsize=6)
            ax.set_xticks(range(len(names)))
            ax.set_xticklabels(names, rotation=20, fontsize=8)
            ax.set_title(f"batch {b}, {th} thread{'s' if th > 1 else ''}")
            ax.set_yscale("log")
            plain = ticker.FuncFormatter(lambda v, _: f"{v:g}")
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(plain)
            ax.tick_params(axis="y", which="minor", labelsize=6)
            if kind == "latency":
                ax.set_ylabel("median latency (ms, lower is better)")
            else:
                ax.axhline(1.0, color="black", linewidth=0.8)
                ax.set_ylabel("peer time / kiln time (> 1: kiln faster)")
            ax.grid(axis="y", which="both", alpha=0.3)
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(outdir, f"models_{kind}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
    return files


def versions(kiln):
    v = {}
    rc, out, _, _ = run([kiln, "version"], 30)
    v["kiln"] = out.strip().splitlines()[0].replace("kiln ", "") if rc == 0 and out.strip() \
        else "?"
    import torch
    v["torch"] = torch.__version__
    try:
        import torchvision
        v["torchvision"] = torchvision.__version__
    except ImportError:
        pass
    return v


def parse_args(argv):
    p = argparse.ArgumentParser(description="kiln model benchmark (bench/README.md)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="resnet18, mobilenet_v2, transformer; batch 1; fewer repeats")
    mode.add_argument("--smoke", action="store_true",
                      help="one tiny CNN, batch 1, 1 thread, 3 repeats (tests)")
    p.add_argument("--models", help="comma-separated subset of " + ",".join(ALL_MODELS))
    p.add_argument("--batches", help="comma-separated batch sizes (default 1,4)")
    p.add_argument("--threads", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--db", help="tuning database: also compile and time kiln tuned from it")
    p.add_argument("--repeats", type=int, help="timed runs at least (default 20)")
    p.add_argument("--min-time", type=float, help="seconds of timed runs at least (default 1)")
    p.add_argument("--warmup", type=int, help="warm-up runs (default 3)")
    p.add_argument("--build", default=os.environ.get("KILN_BUILD_DIR",
                                                     os.path.join(ROOT, "build")))
    p.add_argument("--work", default=os.path.join(BENCH, "work"),
                   help="ONNX files, artifacts, .npy inputs (default bench/work)")
    p.add_argument("--out", default=os.path.join(BENCH, "results"),
                   help="models.md, models.json, PNG plots (default bench/results)")
    p.add_argument("--ort-dir", default=os.environ.get(
        "KILN_ORT_DIR", os.path.expanduser("~/.cache/kiln-bench/ort")))
    p.add_argument("--rtol", type=float, default=1e-3)
    p.add_argument("--atol-rel", type=float, default=1e-4)
    p.add_argument("--compile-timeout", type=int, default=1800)
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--check-only", action="store_true",
                   help="export, compile and check kiln against PyTorch; no timings")
    p.add_argument("--load-tool", help="kiln-bench-load (default BUILD/bench/kiln-bench-load)")
    p.add_argument("--corrupt-reference", action="store_true",
                   help="test hook: scale PyTorch's reference by 1.01, so that every kiln "
                   "check must fail (tests/bench_smoke_test.sh)")
    a = p.parse_args(argv)
    if a.smoke:
        models, batches, threads, reps, mt, wu = ["tiny"], [1], [1], 3, 0.0, 1
        a.ort_sessions, a.load_repeats = 1, 3
    elif a.quick:
        models, batches, threads, reps, mt, wu = QUICK_MODELS, [1], [1, 2], 10, 0.3, 2
        a.ort_sessions, a.load_repeats = 2, 5
    else:
        models, batches, threads, reps, mt, wu = ALL_MODELS, [1, 4], [1, 2], 20, 1.0, 3
        a.ort_sessions, a.load_repeats = 3, 10
    a.mode = "smoke" if a.smoke else "quick" if a.quick else "full"
    a.models = a.models.split(",") if a.models else models
    a.batches = [int(b) for b in a.batches.split(",")] if a.batches else batches
    a.threads = [int(t) for t in a.threads.split(",")] if a.threads else threads
    a.repeats = a.repeats or reps
    a.min_time = mt if a.min_time is None else a.min_time
    a.warmup = wu if a.warmup is None else a.warmup
    for m in a.models:
        if m not in ALL_MODELS + ["tiny"]:
            p.error(f"unknown model '{m}' (known: {', '.join(ALL_MODELS)}, tiny)")
    if a.db and not os.path.isfile(a.db):
        p.error(f"--db {a.db}: no such file")
    return a


def main(argv):
    a = parse_args(argv)
    b = Bench(a)
    for tool in (b.kiln, b.load_tool):
        if not os.access(tool, os.X_OK):
            log(f"{tool} is missing: build first (ninja -C {a.build})")
            return 2
    os.makedirs(a.work, exist_ok=True)
    os.makedirs(a.out, exist_ok=True)
    meta = {"command": "bench/models.py " + " ".join(argv), "mode": a.mode,
            "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "machine": machine_info(), "warmup": a.warmup, "repeats": a.repeats,
            "min_time": a.min_time, "batches": a.batches, "threads": a.threads,
            "notes": b.notes}
    load1 = meta["machine"]["load_before"][0]
    if load1 > 0.5 * (os.cpu_count() or 1):
        b.notes.append(f"The machine was busy (load average {load1} on {os.cpu_count()} cores): "
                       "timings, 2-thread ones above all, are not representative")
    b.ort_ok = b.probe_ort()
    meta["versions"] = versions(b.kiln)
    results = []
    for name in a.models:
        log(f"--- {name}")
        try:
            results.append(b.model(name))
        except Exception as e:  # one broken model must not lose the others' numbers
            import traceback
            traceback.print_exc()
            msg = f"{type(e).__name__}: {e}".splitlines()[0][:200]
            b.failures.append((name, "-", "-", msg))
            b.notes.append(f"{name}: the benchmark failed: {msg}")
    if b.ort_version:
        meta["versions"]["onnxruntime-node"] = b.ort_version
    variants = ["default"] + (["tuned"] if a.db else [])
    peers = [p for p in PEERS if p[0] != "ort" or b.ort_ok]
    md = os.path.join(a.out, "models.md")
    write_markdown(md, results, meta, variants, peers)
    with open(os.path.join(a.out, "models.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1, default=str)
    log(f"wrote {md}")
    if not a.no_plots:
        try:
            for path in write_plots(a.out, results, variants, peers):
                log(f"wrote {path}")
        except ImportError as e:
            log(f"no plots: {e} (apt-get install python3-matplotlib)")
    print(open(md).read())
    if b.failures:
        for name, v, bt, msg in b.failures:
            log(f"FAILED: {name} ({v}, batch {bt}): {msg}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
