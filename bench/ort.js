// ort.js: the ONNX Runtime peer of the model benchmark (bench/models.py runs it with node).
// Creates an onnxruntime-node (CPU execution provider) session for an ONNX model, runs
// warm-up + timed inferences on a fixed random float32 input, and prints one JSON object:
//   {"version", "session_ms" (median session creation over --sessions tries),
//    "session_first_ms", "median_ms", "p10_ms", "p90_ms", "min_ms", "max_ms", "repeats",
//    "output_dims", "output_sum"}
// Session creation includes ORT's graph optimizations (level "all"), the counterpart of
// loading a compiled .kiln artifact.
//
// Usage: node bench/ort.js MODEL.onnx --shape 1x3x224x224 [--input NAME] [--threads N]
//                          [--warmup W] [--repeats R] [--min-time S] [--sessions K]
// onnxruntime-node is looked up by node's usual rules plus NODE_PATH (scripts/setup_bench.sh
// installs it into ~/.cache/kiln-bench/ort; models.py sets NODE_PATH). Exit status 3 when it
// cannot be loaded (models.py then skips the ORT columns), 1 on other errors.
'use strict';

let ort;
try {
  ort = require('onnxruntime-node');
} catch (e) {
  console.error(`ort.js: onnxruntime-node is not installed (${e.message.split('\n')[0]}); ` +
                'run scripts/setup_bench.sh');
  process.exit(3);
}

function parseArgs(argv) {
  const o = {model: null, shape: null, input: null, threads: 1, warmup: 3, repeats: 20,
             minTime: 0, sessions: 3};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--shape') o.shape = v().split('x').map(Number);
    else if (a === '--input') o.input = v();
    else if (a === '--threads') o.threads = Number(v());
    else if (a === '--warmup') o.warmup = Number(v());
    else if (a === '--repeats') o.repeats = Number(v());
    else if (a === '--min-time') o.minTime = Number(v());
    else if (a === '--sessions') o.sessions = Number(v());
    else if (!a.startsWith('--') && !o.model) o.model = a;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.model || !o.shape || o.shape.some((d) => !(d > 0)))
    throw new Error('usage: node ort.js MODEL.onnx --shape DxDxD [--threads N] ...');
  return o;
}

// The p-th percentile (0-100) of sorted xs, linearly interpolated.
function percentile(xs, p) {
  const r = (xs.length - 1) * p / 100, lo = Math.floor(r), hi = Math.ceil(r);
  return xs[lo] + (xs[hi] - xs[lo]) * (r - lo);
}

function nowMs() {
  return Number(process.hrtime.bigint()) / 1e6;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const opts = {executionProviders: ['cpu'], intraOpNumThreads: o.threads, interOpNumThreads: 1,
                executionMode: 'sequential', graphOptimizationLevel: 'all'};
  // session creation, timed: the first one apart (cold caches), then the median of the rest
  const created = [];
  let session = null;
  for (let i = 0; i < Math.max(1, o.sessions); i++) {
    if (session && session.release) await session.release();
    const t0 = nowMs();
    session = await ort.InferenceSession.create(o.model, opts);
    created.push(nowMs() - t0);
  }
  const inputName = o.input || session.inputNames[0];
  // a fixed pseudo-random input in [-1, 1) (the time does not depend on the values)
  const n = o.shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    data[i] = s / 2147483648 - 1;
  }
  const feeds = {[inputName]: new ort.Tensor('float32', data, o.shape)};
  let out = null;
  for (let i = 0; i < o.warmup; i++) out = await session.run(feeds);
  const times = [];
  const start = nowMs();
  while (times.length < o.repeats || nowMs() - start < o.minTime * 1000) {
    const t0 = nowMs();
    out = await session.run(feeds);
    times.push(nowMs() - t0);
    if (times.length >= 100000) break;
  }
  times.sort((a, b) => a - b);
  const first = out[session.outputNames[0]];
  let sum = 0;
  for (let i = 0; i < first.data.length; i++) sum += first.data[i];
  const rest = created.slice(1).sort((a, b) => a - b);
  console.log(JSON.stringify({
    version: ort.env.versions ? ort.env.versions.node || ort.env.versions.common : null,
    session_first_ms: created[0],
    session_ms: rest.length ? percentile(rest, 50) : created[0],
    median_ms: percentile(times, 50), p10_ms: percentile(times, 10),
    p90_ms: percentile(times, 90), min_ms: times[0], max_ms: times[times.length - 1],
    repeats: times.length, threads: o.threads, output_dims: first.dims, output_sum: sum,
  }));
}

main().catch((e) => {
  console.error(`ort.js: ${e && e.message ? e.message : e}`);
  process.exit(1);
});
