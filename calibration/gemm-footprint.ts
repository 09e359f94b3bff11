// Issue 7's 13B prefill miss, one more candidate: the weights' footprint. A 512-row GEMM timed back to
// back on one weight copy (the calibration rotates copies only until 256 MB are touched; a 13B gate/up
// weight is 283 MB, so it reuses one) ran 7% faster in the engine's process than its price
// (run10-h100-6), yet inside a 13B forward the same GEMMs run 8-16% slower (run9), while 7B's do not.
// A forward walks every layer's weights once: 25.6 GB for 13B, 13.5 GB for 7B. If the GPU's address
// translation covers the one but not the other, each 13B layer's weights start with translation misses
// the calibration never sees. This times the engine's GEMM shapes (m = 512) cycling through weight
// copies that span 1 copy up to 48 GB, hot (the calibration's 40 ms soak first), each call on the next
// copy: per-call time against the footprint is the test. Bundled by engine/runtime/gpu-check/bundle9.mjs
// to dist-prof/gemm-footprint.mjs. Usage: node dist-prof/gemm-footprint.mjs OUT_DIR (run10.sh footprint)
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calibrationBf16Block, fillByDoubling, hotPerCallUs, statsOf } from './harness.js';
import { seededRandom } from './grids.js';
import { DeviceBuffer, gpu } from '../native/index.js';

const outDir = process.argv[2] ?? 'out';
mkdirSync(outDir, { recursive: true });
const g = gpu();
const stream = g.createStream();
const events: [bigint, bigint] = [g.createEvent(), g.createEvent()];
const M = 512;
const GiB = 2 ** 30;
const POOL_BYTES = 48 * GiB;
const FOOTPRINTS_GIB = [0, 1, 2, 4, 8, 12, 16, 20, 24, 32, 40, 48]; // 0: one copy
const SHAPES = [
  { model: '13b', name: 'gate/up', n: 27648, k: 5120 },
  { model: '13b', name: 'down', n: 5120, k: 13824 },
  { model: '7b', name: 'gate/up', n: 22016, k: 4096 },
  { model: '7b', name: 'down', n: 4096, k: 11008 },
] as const;

const pool = g.alloc(POOL_BYTES);
fillByDoubling(g, pool, POOL_BYTES, calibrationBf16Block(seededRandom(23), 1 << 23), stream);
const a = g.alloc(M * 16384 * 2);
fillByDoubling(g, a, M * 16384 * 2, calibrationBf16Block(seededRandom(29), 1 << 20), stream);
const c = g.alloc(M * 32768 * 2);

const t0 = performance.now();
const results: Record<string, unknown>[] = [];
for (const s of SHAPES) {
  const weightBytes = s.n * s.k * 2;
  const stride = Math.ceil(weightBytes / 2 ** 21) * 2 ** 21; // copies 2 MB aligned, as large allocations are
  const rows: { footprintGiB: number; copies: number; perCallUs: number; overOneCopy: number }[] = [];
  let oneCopyUs = 0;
  for (const f of FOOTPRINTS_GIB) {
    const copies = Math.max(1, Math.floor((f * GiB) / stride));
    if (copies * stride > POOL_BYTES) continue;
    if (f > 0 && copies === 1) continue;
    const b = Array.from({ length: copies }, (_, i) => new DeviceBuffer(pool.ptr + BigInt(i * stride), weightBytes));
    let i = 0;
    const call = (): void => g.gemm({ dtype: 'bf16', m: M, n: s.n, k: s.k, a, b: b[i++ % copies], c, stream });
    // Every copy at least once per timed run, so a run's mean covers the whole footprint.
    const callsPerRep = Math.max(20, copies);
    const perCallUs = statsOf(hotPerCallUs(g, stream, call, events, 5, callsPerRep), callsPerRep).medianUs;
    if (f === 0) oneCopyUs = perCallUs;
    rows.push({ footprintGiB: Math.round(((copies * stride) / GiB) * 100) / 100, copies, perCallUs: Math.round(perCallUs * 10) / 10, overOneCopy: Math.round((perCallUs / oneCopyUs) * 1000) / 1000 });
    console.log(`${s.model} ${s.name} (m ${M}, n ${s.n}, k ${s.k}): ${copies} copies, ${((copies * stride) / GiB).toFixed(2)} GiB: ${perCallUs.toFixed(1)} us per call (x${(perCallUs / oneCopyUs).toFixed(3)})`);
  }
  results.push({ ...s, m: M, weightBytes, rows });
}
const out = { device: g.status.name, command: 'node dist-prof/gemm-footprint.mjs OUT (engine/runtime/gpu-check/run10.sh footprint)', wallS: (performance.now() - t0) / 1000, shapes: results };
writeFileSync(join(outDir, 'gemm-footprint.json'), JSON.stringify(out, null, 1) + '\n');
console.log(`wrote ${join(outDir, 'gemm-footprint.json')} (${out.wallS.toFixed(0)} s)`);
