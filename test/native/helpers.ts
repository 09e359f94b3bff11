// Shared helpers for the native tests: a seeded generator, straightforward f64 formulations of
// every op (deliberately simpler than the C++ references), and error metrics.
export { rng } from '../../native/gpu-tests/numeric.js';

export function randn(r: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

/** ||a - b||^2 / ||b||^2 (normalized MSE); Infinity if anything is NaN. */
export function nmse(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i]) || Number.isNaN(b[i])) return Infinity;
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return den === 0 ? num : num / den;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A random paged layout: each sequence gets distinct pages from a shuffled pool. */
export function makePages(r: () => number, seqLens: number[], pageSize: number, extraPages = 3) {
  const pagesPer = seqLens.map((l) => Math.ceil(l / pageSize));
  const maxPagesPerSeq = Math.max(1, ...pagesPer);
  const numPages = pagesPer.reduce((a, b) => a + b, 0) + extraPages;
  const pool = Array.from({ length: numPages }, (_, i) => i);
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  const blockTables = new Int32Array(seqLens.length * maxPagesPerSeq).fill(-1);
  let next = 0;
  seqLens.forEach((_, s) => {
    for (let j = 0; j < pagesPer[s]; j++) blockTables[s * maxPagesPerSeq + j] = pool[next++];
  });
  return { blockTables, maxPagesPerSeq, numPages };
}

/** slot of token t of sequence s */
export function slotOf(blockTables: Int32Array, maxPagesPerSeq: number, pageSize: number, s: number, t: number): number {
  return blockTables[s * maxPagesPerSeq + Math.floor(t / pageSize)] * pageSize + (t % pageSize);
}

/** Naive attention of one query row over contiguous K/V rows [len, D] (f64). */
export function attendRow(q: ArrayLike<number>, qOff: number, k: ArrayLike<number>, v: ArrayLike<number>, len: number, D: number, scale: number, rowStride: number, rowOff: number): number[] {
  const scores: number[] = [];
  for (let t = 0; t < len; t++) {
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[qOff + d] * k[t * rowStride + rowOff + d];
    scores.push(dot * scale);
  }
  const mx = Math.max(...scores);
  const e = scores.map((s) => Math.exp(s - mx));
  const z = e.reduce((a, b) => a + b, 0);
  const out = new Array<number>(D).fill(0);
  for (let t = 0; t < len; t++) for (let d = 0; d < D; d++) out[d] += (e[t] / z) * v[t * rowStride + rowOff + d];
  return len === 0 ? new Array<number>(D).fill(0) : out;
}
