// Does a GEMM's time depend on the values it multiplies? run9 found the same cuBLAS algorithm
// (same tile) for the same shape 8-21% apart between the calibration process and the engine, in
// opposite directions for 7B and 13B shapes. The calibration fills its buffers with one bit
// pattern (sign and 7 mantissa bits random, exponent fixed: |x| in [2^-7, 2^-6)); the engine
// multiplies uniform weights (±sqrt(3 / k)) by activations of order 1. This times the engine's
// prefill GEMM shapes (m = 512) on each kind of data with one plan per shape, hot (after 40 ms of
// back-to-back calls) and cool (after 50 ms of memory-bound copies), the kinds interleaved.
// Bundled by engine/runtime/gpu-check/bundle9.mjs to dist-prof/gemm-data.mjs (run by run9.sh data). Usage: node dist-prof/gemm-data.mjs OUT_DIR
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calibrationBf16Block, fillByDoubling, hotPerCallUs } from './harness.js';
import { seededRandom } from './grids.js';
import { f32ToBf16, gpu, type DeviceBuffer } from '../native/index.js';

const outDir = process.argv[2] ?? 'out';
mkdirSync(outDir, { recursive: true });
const g = gpu();
const stream = g.createStream();
const e0 = g.createEvent();
const e1 = g.createEvent();
const M = 512;
const SHAPES = [
  { model: '7b', name: 'gate/up', n: 22016, k: 4096 },
  { model: '7b', name: 'down', n: 4096, k: 11008 },
  { model: '13b', name: 'gate/up', n: 27648, k: 5120 },
  { model: '13b', name: 'down', n: 5120, k: 13824 },
  { model: '13b', name: 'o', n: 5120, k: 5120 },
] as const;
const BLOCK = 1 << 23; // host pattern elements, replicated on the device by copies

type Kind = 'calibration' | 'engine' | 'zeros';
const KINDS: Kind[] = ['calibration', 'engine', 'zeros'];

/** One block of `kind` data; engine-like values are uniform in ±scale. */
function pattern(kind: Kind, scale: number, seed: number): Uint16Array {
  const random = seededRandom(seed);
  if (kind === 'calibration') return calibrationBf16Block(random, BLOCK);
  const out = new Uint16Array(BLOCK);
  if (kind === 'engine') for (let i = 0; i < BLOCK; i++) out[i] = f32ToBf16(scale * (2 * random() - 1));
  return out;
}

const fill = (buf: DeviceBuffer, elems: number, block: Uint16Array): void => fillByDoubling(g, buf, elems * 2, block, stream);

const busyA = g.alloc(2 ** 30);
const busyB = g.alloc(2 ** 30);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const results: Record<string, unknown> = { device: g.status.name, m: M, command: 'node dist-prof/gemm-data.mjs OUT (engine/runtime/gpu-check/run9.sh data)', shapes: [] as unknown[] };
for (const s of SHAPES) {
  const a: Record<Kind, DeviceBuffer> = {} as never;
  const b: Record<Kind, DeviceBuffer> = {} as never;
  for (const kind of KINDS) {
    a[kind] = g.alloc(M * s.k * 2);
    b[kind] = g.alloc(s.n * s.k * 2);
    fill(a[kind], M * s.k, pattern(kind, 1, 11)); // activations of order 1
    fill(b[kind], s.n * s.k, pattern(kind, Math.sqrt(3 / s.k), 17)); // the engine's linear init
  }
  const c = g.alloc(M * s.n * 2);
  const call = (kind: Kind): void => g.gemm({ dtype: 'bf16', m: M, n: s.n, k: s.k, a: a[kind], b: b[kind], c, stream });
  call('calibration'); // tunes the shape once, on the calibration's data: one plan for every kind
  g.sync(stream);
  const hot: Record<Kind, number[]> = { calibration: [], engine: [], zeros: [] };
  const cool: Record<Kind, number[]> = { calibration: [], engine: [], zeros: [] };
  for (let round = 0; round < 3; round++) {
    for (const kind of KINDS) {
      hot[kind].push(...hotPerCallUs(g, stream, () => call(kind), [e0, e1]));
      for (let i = 0; i < 5; i++) {
        for (let j = 0; j < 50; j++) g.copy(busyB, busyA, 2 ** 30, stream); // ~50 ms memory-bound
        g.record(e0, stream);
        call(kind);
        g.record(e1, stream);
        g.sync(stream);
        cool[kind].push(g.elapsedMs(e0, e1) * 1000);
      }
    }
  }
  const row = {
    ...s,
    hot_us: Object.fromEntries(KINDS.map((kd) => [kd, Math.round(median(hot[kd]) * 10) / 10])),
    cool_us: Object.fromEntries(KINDS.map((kd) => [kd, Math.round(median(cool[kd]) * 10) / 10])),
  };
  (results.shapes as unknown[]).push(row);
  console.log(`${s.model} ${s.name} m=${M} n=${s.n} k=${s.k}: hot ${JSON.stringify(row.hot_us)} cool ${JSON.stringify(row.cool_us)}`);
  for (const kind of KINDS) {
    a[kind].free();
    b[kind].free();
  }
  c.free();
}
busyA.free();
busyB.free();
writeFileSync(join(outDir, 'engine-gemm-data.json'), JSON.stringify(results, null, 2) + '\n');
