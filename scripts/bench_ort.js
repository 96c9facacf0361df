// Benchmark helper (never a build or test dependency; see docs/performance.md): times ONNX Runtime fp32
// on the images bench_runtime dumped (PREFIX.f32 / .labels / .json), same batches, same thread count,
// and prints one JSON line. With a second argument (bench_runtime's JSON line, in a file) it adds the
// ratios of our executors to ONNX Runtime.
//
//   ORT_DIR=/tmp/ort-bench node scripts/bench_ort.js /tmp/dcs-bench/lenet5 [dcsearch.json]
// ORT_DIR holds node_modules/onnxruntime-node (npm install --ignore-scripts onnxruntime-node).
'use strict';
const fs = require('fs');
const path = require('path');

const ortDir = process.env.ORT_DIR || '/tmp/ort-bench';
const ort = require(path.join(ortDir, 'node_modules', 'onnxruntime-node'));

async function main() {
  const prefix = process.argv[2];
  if (!prefix) {
    console.error('usage: node bench_ort.js PREFIX [dcsearch.json]');
    process.exit(2);
  }
  const meta = JSON.parse(fs.readFileSync(prefix + '.json', 'utf8'));
  const raw = fs.readFileSync(prefix + '.f32');
  const images = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const lraw = fs.readFileSync(prefix + '.labels');
  const labels = new Int32Array(lraw.buffer, lraw.byteOffset, lraw.byteLength / 4);
  const threads = parseInt(process.env.OMP_NUM_THREADS || '1', 10);
  const repeats = parseInt(process.env.REPEATS || '5', 10);
  const session = await ort.InferenceSession.create(meta.model, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const per = meta.sample_shape.reduce((a, b) => a * b, 1);
  const batches = [];
  for (let off = 0; off < meta.count; off += meta.batch) {
    const n = Math.min(meta.batch, meta.count - off);
    batches.push({
      n,
      off,
      tensor: new ort.Tensor('float32', images.subarray(off * per, (off + n) * per), [n, ...meta.sample_shape]),
    });
  }
  const outName = session.outputNames[0];
  async function pass() {
    let correct = 0;
    let seconds = 0;
    for (const b of batches) {
      const t0 = process.hrtime.bigint();
      const out = await session.run({ [meta.input]: b.tensor });
      seconds += Number(process.hrtime.bigint() - t0) / 1e9;
      const y = out[outName].data;
      const k = y.length / b.n;
      for (let i = 0; i < b.n; ++i) {
        let best = 0;
        for (let j = 1; j < k; ++j) if (y[i * k + j] > y[i * k + best]) best = j;
        correct += best === labels[b.off + i] ? 1 : 0;
      }
    }
    return { ips: meta.count / seconds, accuracy: correct / meta.count };
  }
  await pass();  // warm-up
  let best = { ips: 0, accuracy: 0 };
  for (let r = 0; r < repeats; ++r) {
    const p = await pass();
    if (p.ips > best.ips) best = p;
  }
  const result = {
    model: meta.model,
    images: meta.count,
    threads,
    onnxruntime_version: require(path.join(ortDir, 'node_modules', 'onnxruntime-node', 'package.json')).version,
    onnxruntime_fp32: Math.round(best.ips * 10) / 10,
    accuracy_onnxruntime: best.accuracy,
  };
  if (process.argv[3]) {
    const ours = JSON.parse(fs.readFileSync(process.argv[3], 'utf8').trim().split('\n').pop());
    for (const k of ['reference_fp32', 'onednn_fp32', 'onednn_int8']) {
      result[k] = ours[k];
      result[k + '_vs_ort'] = Math.round((ours[k] / best.ips) * 1000) / 1000;
    }
    result.accuracy_fp32 = ours.accuracy_fp32;
    result.accuracy_int8 = ours.accuracy_int8;
  }
  console.log(JSON.stringify(result));
}

main().catch((e) => {
  console.error('bench_ort: ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
