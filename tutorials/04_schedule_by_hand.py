"""Tutorial 4: writing a schedule by hand for a dense (fully connected) kernel.

kiln separates WHAT a kernel computes (its TIR, lowered from the graph) from HOW the loops
run (its schedule). A schedule is a sequence of primitives (split, reorder, vectorize,
parallel, cache_write, decompose_reduction, ...) applied to the kernel; each one checks that
it keeps the result unchanged and rewrites the loops. The sequence is recorded as a *trace*:
JSON that can be printed, stored in the tuning database and replayed on the same kernel.
The default rules and the autotuner write schedules the same way.

Steps:
  1. Relay: parse a one-op graph, run passes one by one, lower it to TIR.
  2. Build the unscheduled kernel (plain loop nest), time it.
  3. Schedule it by hand, print the trace and the scheduled TIR.
  4. Replay the trace on a fresh schedule: the same kernel.
  5. Let the default rules schedule it, and compare all three (each checked against numpy).

What to look at in the output: the lowered TIR (the block "dense" with its spatial and reduce
iterators), the scheduled TIR (tiles, the local accumulator, vector and parallel loops), the
trace, the error message of an invalid primitive, and the timing table (GFLOP/s). Timings on
a busy machine are noisy: compare the orders of magnitude.

Run from the repository root after ./scripts/build.sh:
    PYTHONPATH=python-bindings /usr/bin/python3 tutorials/04_schedule_by_hand.py
"""
import json

import numpy as np

import kiln

# out[M, N] = x[M, K] . w[N, K]^T, the layout of nn.dense (and of a PyTorch Linear layer).
M, N, K = 256, 256, 256


def lower_dense():
    """Step 1: the graph, its passes and the lowered kernel."""
    text = """
def @main(%%x: Tensor[(%d, %d), float32], %%w: Tensor[(%d, %d), float32]) {
  nn.dense(%%x, %%w)
}
""" % (M, K, N, K)
    graph = kiln.relay.parse(text)
    # Passes can run one at a time (the default pipeline runs many more). InferType fills in
    # the types; FuseOps groups ops into primitive functions, one kernel each.
    graph.run_passes("InferType")
    graph.run_passes("FuseOps")
    print("Relay after FuseOps:\n%s" % graph.text)
    tir = graph.lower()   # one PrimFunc per fused group
    print("lowered to TIR: functions %s\n%s" % (tir.funcs, tir.text))
    tir.verify()
    return tir


def check_and_time(name, kernel, x, w, expected, table):
    """Runs a built kernel, checks it against numpy and times it."""
    out = np.zeros((M, N), dtype=np.float32)
    kernel(x, w, out)   # the output buffer is written in place
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    t = kernel.time(x, w, out, warmup=2, repeats=10, min_seconds=0.2)
    gflops = 2.0 * M * N * K / t["median_s"] / 1e9
    table.append((name, t["median_s"] * 1e3, gflops))
    print("%s: checked against numpy, %.3f ms (%.1f GFLOP/s)" % (name, t["median_s"] * 1e3,
                                                                 gflops))


def schedule_by_hand(tir):
    """Step 3: a register-tiled, vectorized, parallel schedule."""
    sch = kiln.Schedule(tir)
    # Blocks are found by name; "dense" computes out[v0, v1] += x[v0, vk0] * w[v1, vk0].
    dense = sch.get_block("dense")

    # Accumulate into a "local" buffer (registers, after unrolling) and copy the finished tile
    # to `out` once, instead of reading and writing `out` for every k.
    write_back = sch.cache_write(dense, 0, "local")

    # Tile the output: 8 rows x 32 columns per tile (32 float32 = two AVX-512 or four AVX
    # vectors). The loops become i0, j0 (tile index), k, i1, j1 (inside the tile).
    i, j, k = sch.get_loops(dense)
    i0, i1 = sch.split(i, [None, 8])     # None: the factor kiln infers (256 / 8)
    j0, j1 = sch.split(j, [None, 32])
    sch.reorder(i0, j0, k, i1, j1)

    # Move the write-back of the tile into the tile loop, right after its k loop.
    sch.reverse_compute_at(write_back, j0)

    # Split the reduction into its initialization (acc = 0) and the update, so the update
    # loop carries no "is this the first k?" test.
    init = sch.decompose_reduction(dense, k)

    # One parallel loop over all tiles (8 x 32 = 256 tasks for the thread pool).
    tiles = sch.fuse(i0, j0)
    sch.parallel(tiles)

    # Inside a tile: 8 unrolled rows, each a 32-wide vector; the same for the init and the
    # write-back blocks (their two innermost loops).
    sch.unroll(i1)
    sch.vectorize(j1)
    for block in (init, write_back):
        rows, cols = sch.get_loops(block)[-2:]
        sch.unroll(rows)
        sch.vectorize(cols)
    return sch


def show_invalid_primitive(tir):
    """Every primitive checks its preconditions; a violation is a KilnError naming the
    primitive, the loop and the reason, and leaves the schedule unchanged."""
    sch = kiln.Schedule(tir)
    k = sch.get_loops(sch.get_block("dense"))[2]
    try:
        sch.vectorize(k)   # k is a reduction: its iterations depend on each other
    except kiln.KilnError as e:
        print("vectorize(k) refused: %s" % e)
        assert e.status_name == "schedule error", e.status_name
        assert "vectoriz" in e.message, e.message
    else:
        raise AssertionError("vectorizing the reduction loop should fail")
    assert sch.trace_dict["insts"][-1]["kind"] == "get_loops"   # nothing recorded


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((M, K), dtype=np.float32)
    w = rng.standard_normal((N, K), dtype=np.float32)
    expected = x @ w.T
    table = []

    tir = lower_dense()

    # ---- 2. The unscheduled kernel: three nested loops, one multiply-add at a time.
    check_and_time("unscheduled", kiln.build(tir), x, w, expected, table)

    # ---- 3. By hand.
    sch = schedule_by_hand(tir)
    print("\nthe trace (%d instructions):" % len(sch.trace_dict["insts"]))
    for inst in sch.trace_dict["insts"]:
        print("  %-20s %s -> %s" % (inst["kind"], json.dumps(inst["inputs"]),
                                    inst.get("outputs", [])))
    print("\nthe scheduled TIR:\n%s" % sch)
    hand = kiln.build(sch)
    print("after the TIR pipeline (what LLVM gets), first lines:\n%s\n  ..." % "\n".join(
        hand.lowered.splitlines()[:12]))
    check_and_time("by hand", hand, x, w, expected, table)
    show_invalid_primitive(tir)

    # ---- 4. Replaying the trace on the unscheduled kernel gives the same function: this is
    # how the tuning database stores schedules and how kiln compile applies them.
    again = kiln.Schedule(tir).replay(sch.trace)
    assert again.mod == sch.mod, "the replayed schedule differs"
    print("\nreplayed the trace: structurally equal to the hand schedule")

    # ---- 5. The default rules: what kiln compile uses when no database has a record. They
    # build the same kind of schedule, but pick the tile sizes with sample_perfect_tile
    # instructions: those sampled decisions are the knobs the autotuner turns (tutorial 3).
    default = kiln.Schedule(tir)
    default.apply_default_rules()
    print("\nthe default rules' trace: %s" % ", ".join(
        i["kind"] for i in default.trace_dict["insts"]))
    check_and_time("default rules", kiln.build(default), x, w, expected, table)

    print("\n%-14s %10s %10s %8s" % ("schedule", "ms", "GFLOP/s", "speedup"))
    for name, ms, gflops in table:
        print("%-14s %10.3f %10.1f %7.1fx" % (name, ms, gflops, table[0][1] / ms))
    print("\ntutorial 4 passed")


if __name__ == "__main__":
    main()
