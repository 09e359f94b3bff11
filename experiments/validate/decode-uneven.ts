// Issue 7's 7B ITL misses (decode-residuals.ts): decode steps whose contexts are uneven (longest / mean
// >= 2) run 1.5-3.7% longer than priced, and the profile prices decode attention at the batch's mean
// context because the calibration times uniform batches. This times paged decode attention (7B: 32
// heads, head 128, page 16, bf16) on batches of one mean context and one spread, four ways:
//   uniform/launcher  every sequence at the mean, the launcher's own split (what the calibration times)
//   uniform/engine    the same, split as the engine splits (llama.ts decodePartitionTokens on its buckets)
//   uneven/engine     the uneven lengths, maxSeqLen the longest, split as the engine splits
//   uneven/launcher   the uneven lengths, the launcher's split from the longest (the engine of 2026-11-22)
// Two uneven patterns of the same mean and longest: `one-long` (one sequence at the longest, the others
// equal) and `power` (a smooth fall from the longest, as a log-normal batch has).
// uneven/engine over uniform/launcher is the factor the cost model misses. Each case is graph-timed by
// the calibration's harness, KV caches rotated past L2. Bundled by engine/runtime/gpu-check/bundle9.mjs
// to dist-prof/decode-uneven.mjs. Usage: node dist-prof/decode-uneven.mjs OUT_DIR (run10.sh uneven)
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Arena, copiesFor, fillRandom, GraphTimer } from '../../calibration/harness.js';
import { seededRandom } from '../../calibration/grids.js';
import { gpu } from '../../native/index.js';
import { gpuRowBucket } from '../../engine/runtime/device.js';
import { contextBucket, decodePartitionTokens } from '../../engine/runtime/llama.js';

const HEADS = 32;
const HEAD_DIM = 128;
const PAGE = 16;
const BF16 = 2;
const BATCHES = [8, 16, 32, 64];
const MEANS = [512, 1024, 2048];
const SPREADS = [1.5, 2, 3, 4];

/**
 * Lengths of `batch` sequences with this mean and longest = spread × mean; null when the pattern cannot
 * keep every length >= 16 (one-long; power holds its shortest at 16). one-long: one at the longest, the others equal. power: mean × (x_i^p / mean of
 * x^p) for x_i = 1, (batch - 1) / batch, …, 1 / batch, p found by bisection (a smooth spread, as a
 * log-normal batch has).
 */
function unevenLengths(pattern: 'one-long' | 'power', batch: number, mean: number, spread: number): number[] | null {
  const longest = Math.round(spread * mean);
  if (pattern === 'one-long') {
    const rest = Math.round((batch * mean - longest) / (batch - 1));
    return rest >= 16 ? [longest, ...new Array<number>(batch - 1).fill(rest)] : null;
  }
  const xs = Array.from({ length: batch }, (_, i) => (batch - i) / batch);
  const spreadOf = (p: number): number => batch / xs.reduce((a, x) => a + x ** p, 0);
  if (spread >= spreadOf(60)) return null;
  let lo = 0;
  let hi = 60;
  for (let k = 0; k < 60; k++) {
    const mid = (lo + hi) / 2;
    if (spreadOf(mid) < spread) lo = mid;
    else hi = mid;
  }
  const norm = xs.reduce((a, x) => a + x ** lo, 0) / batch;
  // The shortest are held at 16 tokens (a sequence just admitted): the mean rises by a few tokens at most.
  return xs.map((x) => Math.max(16, Math.round((mean * x ** lo) / norm)));
}

const outDir = process.argv[2] ?? 'out';
mkdirSync(outDir, { recursive: true });
const g = gpu();
const stream = g.createStream();
const smCount = g.status.smCount ?? 132;
const arena = new Arena(g, 12 * 2 ** 30);
fillRandom(g, arena, seededRandom(7), stream);
arena.pin();
const timer = new GraphTimer(g, stream);
const random = seededRandom(11);

/** Per-call µs (median) of paged decode over `lens`, split by `partitionTokens` (0: the launcher chooses from maxSeqLen). */
function timeDecode(lens: readonly number[], partitionTokens: number): number {
  arena.reset();
  const batch = lens.length;
  const longest = Math.max(...lens);
  const pagesPer = Math.ceil(longest / PAGE);
  const pagesOf = lens.map((l) => Math.ceil(l / PAGE));
  const numPages = pagesOf.reduce((a, p) => a + p, 0);
  // Each sequence's pages scattered over the pool, as the engine's allocator leaves them after a while.
  const ids = Int32Array.from({ length: numPages }, (_, i) => i);
  for (let i = numPages - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  const table = new Int32Array(batch * pagesPer);
  let next = 0;
  pagesOf.forEach((p, s) => {
    for (let k = 0; k < p; k++) table[s * pagesPer + k] = ids[next++];
  });
  const cacheBytes = numPages * HEADS * PAGE * HEAD_DIM * BF16;
  const copies = copiesFor(2 * cacheBytes);
  const kc = Array.from({ length: copies }, () => arena.take(cacheBytes));
  const vc = Array.from({ length: copies }, () => arena.take(cacheBytes));
  const blockTables = arena.put(table, stream);
  const seqLens = arena.put(Int32Array.from(lens), stream);
  const q = arena.take(batch * HEADS * HEAD_DIM * BF16);
  const out = arena.take(batch * HEADS * HEAD_DIM * BF16);
  const stats = timer.time((i) => g.pagedDecode({
    dtype: 'bf16', kvDtype: 'bf16', numSeqs: batch, numHeads: HEADS, numKvHeads: HEADS, headDim: HEAD_DIM, pageSize: PAGE, numPages,
    maxPagesPerSeq: pagesPer, maxSeqLen: longest, ...(partitionTokens > 0 ? { partitionTokens } : {}),
    q, kCache: kc[i % copies], vCache: vc[i % copies], blockTables, seqLens, out, stream,
  }), copies);
  return stats.medianUs;
}

const engineSplit = (batch: number, longest: number): number => decodePartitionTokens(gpuRowBucket(batch) * HEADS, contextBucket(longest), smCount, 128);
const cases: Record<string, unknown>[] = [];
const t0 = performance.now();
for (const batch of BATCHES) {
  for (const mean of MEANS) {
    const uniform = new Array<number>(batch).fill(mean);
    const uniformLauncherUs = timeDecode(uniform, 0);
    const uniformEngineUs = timeDecode(uniform, engineSplit(batch, mean));
    for (const spread of SPREADS) {
      for (const pattern of ['one-long', 'power'] as const) {
        const lens = unevenLengths(pattern, batch, mean, spread);
        if (lens === null) continue;
        const longest = Math.max(...lens);
        const unevenEngineUs = timeDecode(lens, engineSplit(batch, longest));
        const unevenLauncherUs = timeDecode(lens, 0);
        const row = { batch, mean, spread, pattern, actualMean: lens.reduce((a, l) => a + l, 0) / batch, uniformLauncherUs, uniformEngineUs, unevenEngineUs, unevenLauncherUs, ratio: unevenEngineUs / uniformLauncherUs };
        cases.push(row);
        console.log(`batch ${batch} mean ${mean} spread ${spread} ${pattern}: uniform ${uniformLauncherUs.toFixed(1)} us (engine split ${uniformEngineUs.toFixed(1)}), uneven ${unevenEngineUs.toFixed(1)} (launcher split ${unevenLauncherUs.toFixed(1)}): x${row.ratio.toFixed(3)}`);
      }
    }
  }
}
const result = { device: g.status.name, smCount, command: 'node dist-prof/decode-uneven.mjs OUT (engine/runtime/gpu-check/run10.sh uneven)', wallS: (performance.now() - t0) / 1000, cases };
writeFileSync(join(outDir, 'decode-uneven.json'), JSON.stringify(result, null, 1) + '\n');
console.log(`wrote ${join(outDir, 'decode-uneven.json')} (${cases.length} cases, ${result.wallS.toFixed(0)} s)`);
timer.dispose();
