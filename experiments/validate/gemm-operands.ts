// Issue 7's 13B miss, one step further than calibration/gemm-data.ts: the same cuBLAS plan for the
// same shape runs 8-21% apart in the calibration process and the engine (run9 run2-same-card), and
// synthetic engine-like values did not reproduce it. This takes the engine's own GEMM calls of one
// 512-token prefill (layer 0: q, k, v, o, gate/up, down), in the engine's process, and times each
// back to back (as the calibration does) on:
//   engine     the engine's own buffers (its weights and the activations the forward left there)
//   copied     fresh buffers holding copies of the same bytes (same values, other addresses)
//   calib      fresh buffers with the calibration's bit pattern (calibration/harness.ts)
//   engA+calB, calA+engB  the engine's activations with calibration weights, and the reverse
// engine = copied means addresses do not matter; copied != calib means the values do, and the two
// mixed cases say which operand's. Kinds interleaved, 3 rounds, median of 5 x 10 calls after 40 ms
// of back-to-back warm-up (the calibration's hot state).
// Here (not in engine/runtime/gpu-check) because it takes the calibration's data pattern. Bundled by
// engine/runtime/gpu-check/bundle9.mjs to dist-prof/gemm-operands.mjs. Usage: node dist-prof/gemm-operands.mjs OUT_DIR
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calibrationBf16Block, fillByDoubling, hotPerCallUs } from '../../calibration/harness.js';
import { seededRandom } from '../../calibration/grids.js';
import { gpu, type DeviceBuffer } from '../../native/index.js';
import { gpuDevice, type OpArgs } from '../../engine/runtime/device.js';
import { LlamaModel } from '../../engine/runtime/llama.js';
import { modelConfig } from '../../engine/runtime/model-config.js';
import { randomWeights } from '../../engine/runtime/weights.js';
import { median, OpProfiler } from '../../engine/runtime/gpu-check/op-profiler.js';

const outDir = process.argv[2] ?? 'out';
mkdirSync(outDir, { recursive: true });
const g = gpu();
const TOKENS = 512;
const PAGE = 16;
const KINDS = ['engine', 'copied', 'calib', 'engA+calB', 'calA+engB'] as const;
type Kind = (typeof KINDS)[number];
const results: Record<string, unknown> = { device: g.status.name, m: TOKENS, command: 'node dist-prof/gemm-operands.mjs OUT (engine/runtime/gpu-check/run10.sh operands)', kinds: KINDS };

const events: [bigint, bigint] = [g.createEvent(), g.createEvent()];

/** A fresh buffer holding a copy of `bytes` of `src` (same values, another address). */
function copyOf(src: DeviceBuffer, bytes: number, stream: bigint): DeviceBuffer {
  const d = g.alloc(bytes);
  g.copy(d, src, bytes, stream);
  return d;
}

/** A fresh buffer of `elems` bf16 values in the calibration's bit pattern. */
function calibOf(elems: number, seed: number, stream: bigint): DeviceBuffer {
  const d = g.alloc(elems * 2);
  fillByDoubling(g, d, elems * 2, calibrationBf16Block(seededRandom(seed), 1 << 23), stream);
  return d;
}

for (const name of ['llama2-7b', 'llama2-13b'] as const) {
  const cfg = modelConfig(name);
  const stream = g.createStream();
  const base = gpuDevice('bf16', 2 ** 31, stream);
  const profiler = new OpProfiler(base, stream);
  const model = new LlamaModel(profiler.dev, randomWeights(cfg, 1), { numBlocks: TOKENS / PAGE + 8, pageSizeTokens: PAGE });
  const seq = { tokenIds: Int32Array.from({ length: TOKENS }, (_, j) => (j * 7 + 3) % cfg.vocabSize), contextTokens: 0, blockTable: Array.from({ length: TOKENS / PAGE }, (_, p) => p), samples: true };
  profiler.dev.resetScratch();
  model.forward({ seqs: [seq], blockCopies: [] }); // tunes every shape
  g.sync(stream);
  profiler.record(() => {
    profiler.dev.resetScratch();
    model.forward({ seqs: [seq], blockCopies: [] });
  });
  g.sync(stream);
  // Layer 0's calls: the first call of each shape (the LM head's m is 1 row per sequence, left out).
  const seen = new Set<string>();
  const layer0: OpArgs[] = [];
  for (const a of profiler.calls('gemm')) {
    const key = `${String(a.m)}x${String(a.n)}x${String(a.k)}`;
    if (a.m !== TOKENS || seen.has(key)) continue;
    seen.add(key);
    layer0.push(a);
  }
  const rows: unknown[] = [];
  for (const call of layer0) {
    const m = call.m as number;
    const n = call.n as number;
    const k = call.k as number;
    const engA = call.a as DeviceBuffer;
    const engB = call.b as DeviceBuffer;
    const cpA = copyOf(engA, m * k * 2, stream);
    const cpB = copyOf(engB, n * k * 2, stream);
    const calA = calibOf(m * k, 11, stream);
    const calB = calibOf(n * k, 17, stream);
    const c = g.alloc(m * n * 2);
    g.sync(stream);
    const operands: Record<Kind, [DeviceBuffer, DeviceBuffer]> = { engine: [engA, engB], copied: [cpA, cpB], calib: [calA, calB], 'engA+calB': [engA, calB], 'calA+engB': [calA, engB] };
    // c is a fresh buffer in every case, so the engine's activations the forward left stay intact.
    const run = (kind: Kind): void => g.gemm({ dtype: 'bf16', m, n, k, a: operands[kind][0], b: operands[kind][1], c, stream });
    const hot: Record<Kind, number[]> = Object.fromEntries(KINDS.map((kd) => [kd, []])) as never;
    for (let round = 0; round < 3; round++) {
      for (const kind of KINDS) hot[kind].push(...hotPerCallUs(g, stream, () => run(kind), events));
    }
    const us = Object.fromEntries(KINDS.map((kd) => [kd, Math.round(median(hot[kd]) * 10) / 10])) as Record<Kind, number>;
    const overCalib = Object.fromEntries(KINDS.map((kd) => [kd, Math.round((us[kd] / us.calib) * 1000) / 1000]));
    rows.push({ m, n, k, hot_us: us, over_calib: overCalib });
    console.log(`${name} m=${m} n=${n} k=${k}: hot us ${JSON.stringify(us)}; / calib ${JSON.stringify(overCalib)}`);
    for (const b of [cpA, cpB, calA, calB, c]) b.free();
  }
  results[name] = rows;
  profiler.free();
  base.free();
}
for (const e of events) g.destroyEvent(e);
writeFileSync(join(outDir, 'engine-gemm-operands.json'), JSON.stringify(results, null, 2) + '\n');
