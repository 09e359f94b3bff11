// Sampling reference (semantics, statistics, bad logits) and the loader's reports.
import { describe, expect, it } from 'vitest';
import { cpu, gpu, gpuAvailable, nativeStatus, NativeError, SAMPLE_STATUS } from '../../native/index.js';
import { randn, rng } from './helpers.js';

const ops = cpu();
const W = 2 ** 31;

function rowArgs(batch: number, vocab: number, logits: Float32Array, p: { t?: number; k?: number; topP?: number; minP?: number; seed?: number; offset?: number }) {
  return {
    batch, vocab, logits,
    temperature: new Float32Array(batch).fill(p.t ?? 1),
    topK: new Int32Array(batch).fill(p.k ?? 0),
    topP: new Float32Array(batch).fill(p.topP ?? 1),
    minP: new Float32Array(batch).fill(p.minP ?? 0),
    seeds: BigUint64Array.from({ length: batch }, (_, i) => BigInt((p.seed ?? 1) + i)),
    offsets: new BigUint64Array(batch).fill(BigInt(p.offset ?? 0)),
  };
}

/** The kept set and the renormalized distribution, computed from the documented semantics in f64. */
function keptDistribution(x: Float32Array, t: number, k: number, topP: number, minP: number): Map<number, number> {
  const mx = Math.max(...x);
  const w = Array.from(x, (v) => Math.floor(Math.fround(Math.exp(Math.fround(Math.fround(v - mx) / t))) * W));
  let thresh = 1;
  if (minP > 0) thresh = Math.max(thresh, Math.floor(Math.fround(minP) * W));
  if (k > 0 && k < x.length) thresh = Math.max(thresh, [...w].sort((a, b) => b - a)[k - 1]);
  if (topP < 1) {
    const kept = w.filter((v) => v >= thresh).sort((a, b) => b - a);
    const mass = kept.reduce((a, b) => a + b, 0);
    const target = Math.max(1, Math.floor(Math.fround(topP) * mass));
    let cum = 0;
    for (const v of kept) {
      cum += v;
      if (cum >= target) {
        thresh = Math.max(thresh, v);
        break;
      }
    }
  }
  const total = w.reduce((a, v) => a + (v >= thresh ? v : 0), 0);
  const dist = new Map<number, number>();
  w.forEach((v, i) => v >= thresh && dist.set(i, v / total));
  return dist;
}

describe('sampling (CPU reference)', () => {
  it('greedy returns the first argmax and its raw logprob', () => {
    const x = new Float32Array([0.5, 3, -1, 3, 2]);
    const res = ops.sample(rowArgs(1, 5, x, { t: 0 }));
    expect(res.tokens[0]).toBe(1);
    const lse = Math.log(Array.from(x).reduce((a, v) => a + Math.exp(v), 0));
    expect(res.logprobs[0]).toBeCloseTo(3 - lse, 5);
    expect(res.status[0]).toBe(SAMPLE_STATUS.ok);
  });

  it('is reproducible per (seed, offset) and varies with either', () => {
    const x = randn(rng(1), 1000, 2);
    const a = ops.sample(rowArgs(1, 1000, x, { seed: 42, offset: 7 }));
    const b = ops.sample(rowArgs(1, 1000, x, { seed: 42, offset: 7 }));
    expect(a.tokens[0]).toBe(b.tokens[0]);
    const draws = new Set<number>();
    for (let o = 0; o < 50; o++) draws.add(ops.sample(rowArgs(1, 1000, x, { seed: 42, offset: o })).tokens[0]);
    expect(draws.size).toBeGreaterThan(10);
  });

  it.each([
    { t: 1, k: 0, topP: 1, minP: 0 },
    { t: 0.7, k: 20, topP: 1, minP: 0 },
    { t: 1.3, k: 0, topP: 0.8, minP: 0 },
    { t: 1, k: 50, topP: 0.9, minP: 0.02 },
  ])('never leaves the kept set and matches its distribution (%o)', ({ t, k, topP, minP }) => {
    const vocab = 301;
    const x = randn(rng(3), vocab, 1.5);
    const dist = keptDistribution(x, t, k, topP, minP);
    const draws = 40000;
    const batch = 4000;
    const logits = new Float32Array(batch * vocab);
    for (let i = 0; i < batch; i++) logits.set(x, i * vocab);
    const counts = new Map<number, number>();
    for (let rep = 0; rep < draws / batch; rep++) {
      const res = ops.sample(rowArgs(batch, vocab, logits, { t, k, topP, minP, seed: 1000 + rep * batch }));
      for (let i = 0; i < batch; i++) {
        expect(dist.has(res.tokens[i])).toBe(true);
        counts.set(res.tokens[i], (counts.get(res.tokens[i]) ?? 0) + 1);
      }
    }
    // Pearson chi-square over kept tokens with expected count >= 5 (the rest lumped).
    let chi = 0;
    let df = -1;
    let lumpE = 0;
    let lumpO = 0;
    for (const [tok, p] of dist) {
      const e = p * draws;
      const o = counts.get(tok) ?? 0;
      if (e >= 5) {
        chi += (o - e) ** 2 / e;
        df++;
      } else {
        lumpE += e;
        lumpO += o;
      }
    }
    if (lumpE > 0) {
      chi += (lumpO - lumpE) ** 2 / lumpE;
      df++;
    }
    // Wilson-Hilferty: the 1e-4 upper tail of chi-square(df) is ~ df (1 - 2/(9df) + 3.72 sqrt(2/(9df)))^3.
    const bound = df * (1 - 2 / (9 * df) + 3.72 * Math.sqrt(2 / (9 * df))) ** 3;
    expect(df).toBeGreaterThan(0);
    expect(chi).toBeLessThan(bound);
  });

  it('reports NaN/inf logits, all -inf rows and bad temperatures with a status, never a bad token', () => {
    const vocab = 6;
    const logits = new Float32Array([
      0, 1, NaN, 2, 0, 0,
      0, Infinity, 0, 0, 0, 0,
      -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity,
      0, 1, 2, 3, 4, 5,
      -Infinity, 1, -Infinity, 0.5, -Infinity, -Infinity,
    ]);
    const args = rowArgs(5, vocab, logits, {});
    args.temperature[3] = NaN;
    const res = ops.sample(args);
    expect(Array.from(res.status)).toEqual([1, 1, 2, 3, 0]);
    for (const tok of res.tokens) expect(tok >= 0 && tok < vocab).toBe(true);
    expect(Number.isNaN(res.logprobs[0])).toBe(true);
    expect([1, 3]).toContain(res.tokens[4]);
  });

  it('checks argument types and lengths', () => {
    const a = rowArgs(2, 4, new Float32Array(8), {});
    expect(() => ops.sample({ ...a, logits: new Float32Array(7) })).toThrow(/logits must have 8 elements, got 7/);
    expect(() => ops.sample({ ...a, seeds: new Int32Array(2) as never })).toThrow(/seeds must be a BigUint64Array/);
  });
});

describe('loader', () => {
  it('loads the addon and says what it holds', () => {
    const st = nativeStatus();
    expect(st.loaded).toBe(true);
    expect(st.path).toMatch(/stratos_native\.node$/);
    expect(typeof st.withCuda).toBe('boolean');
  });

  it.skipIf(gpuAvailable())('gpu() says exactly why there is no GPU path', () => {
    const st = nativeStatus();
    expect(st.gpu.available).toBe(false);
    expect(st.gpu.reason.length).toBeGreaterThan(10);
    expect(['no_cuda_build', 'no_gpu', 'driver_too_old']).toContain(st.gpu.code);
    if (st.withCuda) expect(st.gpu.reason).toMatch(/no GPU|driver too old|compute capability/);
    else expect(st.gpu.reason).toMatch(/built without CUDA/);
    try {
      gpu();
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(NativeError);
      expect((e as NativeError).code).toBe(st.gpu.code);
    }
  });
});
