// The CPU references against straightforward f64 formulations, on odd generated shapes.
import { describe, expect, it } from 'vitest';
import { cpu, decode, encode, f32ToBf16, bf16ToF32, f32ToF16, f16ToF32, f32ToFp8e4m3, fp8e4m3ToF32, NativeError, type ActDType } from '../../native/index.js';
import { attendRow, makePages, maxAbsDiff, nmse, randn, rng, slotOf } from './helpers.js';

const ops = cpu();
// f32 references are exact up to f32 rounding; 16-bit outputs carry one rounding (2^-8 for bf16).
const TOL: Record<ActDType, number> = { f32: 1e-10, bf16: 3e-5, f16: 1e-6 };

describe('dtype conversions', () => {
  it('bf16 rounds to nearest even and keeps NaN/inf', () => {
    expect(f32ToBf16(1)).toBe(0x3f80);
    expect(bf16ToF32(f32ToBf16(1 + 2 ** -8))).toBe(1); // tie -> even
    expect(bf16ToF32(f32ToBf16(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6); // tie -> even (up)
    expect(Number.isNaN(bf16ToF32(f32ToBf16(NaN)))).toBe(true);
    expect(bf16ToF32(f32ToBf16(Infinity))).toBe(Infinity);
  });
  it('f16 handles normals, subnormals, overflow', () => {
    for (const v of [0, 1, -2.5, 65504, 6.1e-5, 3e-7, -1e-8]) expect(Math.abs(f16ToF32(f32ToF16(v)) - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 2 ** -25);
    expect(f16ToF32(f32ToF16(70000))).toBe(Infinity);
  });
  it('fp8 e4m3 saturates at 448 and round-trips every code', () => {
    expect(fp8e4m3ToF32(f32ToFp8e4m3(1000))).toBe(448);
    expect(fp8e4m3ToF32(f32ToFp8e4m3(-1000))).toBe(-448);
    for (let code = 0; code < 256; code++) {
      if ((code & 0x7f) === 0x7f) continue;
      expect(f32ToFp8e4m3(fp8e4m3ToF32(code))).toBe(code === 0x80 ? 0x80 : code);
    }
  });
  it('the C++ reference rounds like index.ts (kvWrite into bf16, f16 and fp8 caches)', () => {
    const r = rng(7);
    const n = 3 * 2 * 8;
    const key = randn(r, n, 3);
    const value = randn(r, n, 0.01);
    for (const cacheDtype of ['bf16', 'f16', 'fp8e4m3'] as const) {
      const kCache = encode(cacheDtype, new Float32Array(4 * 2 * 4 * 8));
      const vCache = encode(cacheDtype, new Float32Array(4 * 2 * 4 * 8));
      ops.kvWrite({ dtype: 'f32', cacheDtype, numTokens: 3, numKvHeads: 2, headDim: 8, pageSize: 4, numPages: 4, kScale: 0.5, vScale: 0.5, key, value, slotMapping: new Int32Array([5, -1, 14]), kCache, vCache });
      const scale = cacheDtype === 'fp8e4m3' ? 0.5 : 1;
      const expected = encode(cacheDtype, Array.from(key.subarray(0, 16), (x) => x / scale));
      // token 0 -> slot 5 = page 1, offset 1; head h at ((1 * 2 + h) * 4 + 1) * 8
      for (let h = 0; h < 2; h++) for (let d = 0; d < 8; d++) expect(kCache[((1 * 2 + h) * 4 + 1) * 8 + d]).toBe(expected[h * 8 + d]);
    }
  });
});

describe('embedding', () => {
  it.each(['f32', 'bf16'] as const)('gathers rows (%s) and rejects out-of-range ids', (dtype) => {
    const r = rng(1);
    const vocab = 37;
    const hidden = 23;
    const table = encode(dtype, randn(r, vocab * hidden));
    const ids = new Int32Array([0, 36, 5, 5, 17]);
    const out = ops.embedding({ dtype, vocab, hidden, numTokens: 5, table, ids });
    ids.forEach((id, t) => expect(Array.from(out.subarray(t * hidden, (t + 1) * hidden))).toEqual(Array.from(table.subarray(id * hidden, (id + 1) * hidden))));
    expect(() => ops.embedding({ dtype, vocab, hidden, numTokens: 1, table, ids: new Int32Array([37]) })).toThrow(/ids\[0\] = 37 is out of range/);
  });
});

describe('rmsnorm (+ residual)', () => {
  it.each(['f32', 'bf16', 'f16'] as const)('%s matches the formula with and without the residual', (dtype) => {
    const r = rng(2);
    const numTokens = 5;
    const hidden = 37;
    const x = encode(dtype, randn(r, numTokens * hidden));
    const res = encode(dtype, randn(r, numTokens * hidden));
    const w = encode(dtype, randn(r, hidden));
    const xf = decode(dtype, x);
    const rf = decode(dtype, res);
    const wf = decode(dtype, w);
    for (const withResidual of [false, true]) {
      const residual = withResidual ? res.slice() : undefined;
      const out = ops.rmsnorm({ dtype, numTokens, hidden, eps: 1e-5, x, residual, weight: w });
      const expect_: number[] = [];
      const expectRes: number[] = [];
      for (let t = 0; t < numTokens; t++) {
        const h = Array.from({ length: hidden }, (_, i) => xf[t * hidden + i] + (withResidual ? rf[t * hidden + i] : 0));
        const hr = withResidual ? Array.from(decode(dtype, encode(dtype, h))) : h;
        expectRes.push(...hr);
        const ms = hr.reduce((a, v) => a + v * v, 0) / hidden;
        for (let i = 0; i < hidden; i++) expect_.push((hr[i] / Math.sqrt(ms + 1e-5)) * wf[i]);
      }
      expect(nmse(decode(dtype, out), expect_)).toBeLessThan(TOL[dtype]);
      if (residual) expect(nmse(decode(dtype, residual), expectRes)).toBeLessThan(TOL[dtype]);
    }
  });
});

describe('rope', () => {
  it.each([
    ['f32', true, 24],
    ['f32', false, 16],
    ['bf16', true, 24],
  ] as const)('%s neox=%s rotDim=%d', (dtype, neox, rotDim) => {
    const r = rng(3);
    const numTokens = 7;
    const numHeads = 3;
    const numKvHeads = 1;
    const headDim = 24;
    const q0 = encode(dtype, randn(r, numTokens * numHeads * headDim));
    const k0 = encode(dtype, randn(r, numTokens * numKvHeads * headDim));
    const positions = new Int32Array([0, 1, 2, 17, 100, 4095, 9]);
    const q = q0.slice();
    const k = k0.slice();
    ops.rope({ dtype, numTokens, numHeads, numKvHeads, headDim, rotDim, theta: 10000, neox, positions, q, k });
    const check = (orig: Float32Array, got: Float32Array, heads: number) => {
      const want: number[] = [];
      for (let t = 0; t < numTokens; t++)
        for (let h = 0; h < heads; h++) {
          const row = Array.from(orig.subarray((t * heads + h) * headDim, (t * heads + h + 1) * headDim));
          const outRow = row.slice();
          for (let i = 0; i < rotDim / 2; i++) {
            const a = positions[t] * 10000 ** ((-2 * i) / rotDim);
            const [i0, i1] = neox ? [i, i + rotDim / 2] : [2 * i, 2 * i + 1];
            outRow[i0] = row[i0] * Math.cos(a) - row[i1] * Math.sin(a);
            outRow[i1] = row[i1] * Math.cos(a) + row[i0] * Math.sin(a);
          }
          want.push(...outRow);
        }
      // f32 angles at position 4095 carry ~1e-4 absolute phase error: the tolerance covers it.
      expect(nmse(got, want)).toBeLessThan(dtype === 'f32' ? 1e-7 : 3e-5);
    };
    check(decode(dtype, q0), decode(dtype, q), numHeads);
    check(decode(dtype, k0), decode(dtype, k), numKvHeads);
  });

  it('with kvCache writes what rope then kvWrite write (the same cache bits, padding slots skipped)', () => {
    const r = rng(9);
    const [numTokens, numHeads, numKvHeads, headDim, pageSize, numPages] = [4, 4, 2, 16, 4, 3];
    const q0 = encode('bf16', randn(r, numTokens * numHeads * headDim));
    const k0 = encode('bf16', randn(r, numTokens * numKvHeads * headDim));
    const value = encode('bf16', randn(r, numTokens * numKvHeads * headDim));
    const positions = new Int32Array([3, 0, 7, 11]);
    const slotMapping = new Int32Array([3, -1, 7, 11]);
    const cacheN = numPages * numKvHeads * pageSize * headDim;
    const base = { dtype: 'bf16' as const, numTokens, numHeads, numKvHeads, headDim, rotDim: 12, neox: true, positions };
    const [q1, k1, kc1, vc1] = [q0.slice(), k0.slice(), new Uint16Array(cacheN), new Uint16Array(cacheN)];
    ops.rope({ ...base, q: q1, k: k1 });
    ops.kvWrite({ dtype: 'bf16', cacheDtype: 'bf16', numTokens, numKvHeads, headDim, pageSize, numPages, key: k1, value, slotMapping, kCache: kc1, vCache: vc1 });
    const [q2, k2, kc2, vc2] = [q0.slice(), k0.slice(), new Uint16Array(cacheN), new Uint16Array(cacheN)];
    ops.rope({ ...base, q: q2, k: k2, kvCache: { value, slotMapping, kCache: kc2, vCache: vc2, pageSize, numPages } });
    expect(Array.from(q2)).toEqual(Array.from(q1));
    expect(Array.from(k2)).toEqual(Array.from(k1));
    expect(Array.from(kc2)).toEqual(Array.from(kc1));
    expect(Array.from(vc2)).toEqual(Array.from(vc1));
    expect(kc2.some((x) => x !== 0)).toBe(true);
    // Its cache arguments are checked as kvWrite's.
    expect(() => ops.rope({ ...base, q: q0.slice(), k: k0.slice(), kvCache: { value, slotMapping: new Int32Array([0, 1, 2, 99]), kCache: kc2, vCache: vc2, pageSize, numPages } })).toThrow(/kvWrite: slotMapping\[3\] = 99 is out of range/);
  });
});

describe('pagedDecode with ropeNew', () => {
  it('equals rope (writing the newest token to the cache) then pagedDecode, and leaves q, kNew and vNew alone', () => {
    const r = rng(12);
    const [numHeads, numKvHeads, headDim, pageSize, maxPagesPerSeq] = [4, 2, 16, 4, 3];
    const lens = Int32Array.of(5, 1, 9);
    const numSeqs = lens.length;
    const numPages = numSeqs * maxPagesPerSeq;
    const blockTables = Int32Array.from({ length: numSeqs * maxPagesPerSeq }, (_, i) => (i * 5) % numPages); // a permutation
    const cacheN = numPages * numKvHeads * pageSize * headDim;
    const kc0 = encode('bf16', randn(r, cacheN));
    const vc0 = encode('bf16', randn(r, cacheN));
    const q = encode('bf16', randn(r, numSeqs * numHeads * headDim));
    const kNew = encode('bf16', randn(r, numSeqs * numKvHeads * headDim));
    const vNew = encode('bf16', randn(r, numSeqs * numKvHeads * headDim));
    const base = { dtype: 'bf16' as const, kvDtype: 'bf16' as const, numSeqs, numHeads, numKvHeads, headDim, pageSize, numPages, maxPagesPerSeq, blockTables, seqLens: lens };
    // Unfused: rope at position len - 1, the newest k and v written to its slot, then attention.
    const [q1, k1, kc1, vc1] = [q.slice(), kNew.slice(), kc0.slice(), vc0.slice()];
    const positions = Int32Array.from(lens, (l) => l - 1);
    const slotMapping = Int32Array.from(lens, (l, s) => blockTables[s * maxPagesPerSeq + Math.floor((l - 1) / pageSize)] * pageSize + ((l - 1) % pageSize));
    ops.rope({ dtype: 'bf16', numTokens: numSeqs, numHeads, numKvHeads, headDim, positions, q: q1, k: k1, kvCache: { value: vNew, slotMapping, kCache: kc1, vCache: vc1, pageSize, numPages } });
    const want = ops.pagedDecode({ ...base, q: q1, kCache: kc1, vCache: vc1 });
    const [q2, kNew2, vNew2, kc2, vc2] = [q.slice(), kNew.slice(), vNew.slice(), kc0.slice(), vc0.slice()];
    const got = ops.pagedDecode({ ...base, q: q2, kCache: kc2, vCache: vc2, ropeNew: { kNew: kNew2, vNew: vNew2 } });
    expect(Array.from(got)).toEqual(Array.from(want));
    expect(Array.from(kc2)).toEqual(Array.from(kc1));
    expect(Array.from(vc2)).toEqual(Array.from(vc1));
    expect(Array.from(q2)).toEqual(Array.from(q));
    expect(Array.from(kNew2)).toEqual(Array.from(kNew));
    expect(Array.from(kc2)).not.toEqual(Array.from(kc0));
    expect(() => ops.pagedDecode({ ...base, seqLens: Int32Array.of(5, 0, 9), q: q2, kCache: kc2, vCache: vc2, ropeNew: { kNew: kNew2, vNew: vNew2 } })).toThrow(/ropeNew needs every seqLens >= 1/);
    expect(() => ops.pagedDecode({ ...base, q: q2, kCache: kc2, vCache: vc2, ropeNew: { kNew: kNew2.subarray(1), vNew: vNew2 } })).toThrow(/ropeNew.kNew must have 96 elements/);
  });
});

// Builds a paged cache holding random K/V for each sequence (through kvWrite); returns the values
// the cache holds as contiguous f32 rows per sequence, for the naive formulation.
type CacheDtype = 'f32' | 'bf16' | 'f16' | 'fp8e4m3';
function buildCache(seed: number, seqLens: number[], numKvHeads: number, headDim: number, pageSize: number, cacheDtype: CacheDtype, kvScale = 1) {
  const r = rng(seed);
  const { blockTables, maxPagesPerSeq, numPages } = makePages(r, seqLens, pageSize);
  const cacheN = numPages * numKvHeads * pageSize * headDim;
  const kCache = encode(cacheDtype, new Float32Array(cacheN));
  const vCache = encode(cacheDtype, new Float32Array(cacheN));
  const sc = cacheDtype === 'fp8e4m3' ? kvScale : 1;
  const held = (x: Float32Array) => decode(cacheDtype, encode(cacheDtype, Array.from(x, (v) => v / sc))).map((v) => v * sc);
  const kRows: Float32Array[] = [];
  const vRows: Float32Array[] = [];
  seqLens.forEach((len, s) => {
    const n = len * numKvHeads * headDim;
    const key = randn(r, n);
    const value = randn(r, n);
    const slotMapping = Int32Array.from({ length: len }, (_, t) => slotOf(blockTables, maxPagesPerSeq, pageSize, s, t));
    ops.kvWrite({ dtype: 'f32', cacheDtype, numTokens: len, numKvHeads, headDim, pageSize, numPages, kScale: kvScale, vScale: kvScale, key, value, slotMapping, kCache, vCache });
    kRows.push(held(key));
    vRows.push(held(value));
  });
  return { blockTables, maxPagesPerSeq, numPages, kCache, vCache, kRows, vRows };
}

const ATT_TOL: Record<CacheDtype, number> = { f32: 1e-10, bf16: 3e-5, f16: 1e-6, fp8e4m3: 3e-5 };

describe('paged decode attention', () => {
  it.each([
    [8, 4, 4, 'f32'],
    [16, 6, 2, 'f32'], // GQA, group of 3
    [32, 4, 1, 'bf16'], // MQA
    [64, 2, 2, 'f16'],
    [128, 4, 2, 'fp8e4m3'],
  ] as const)('pageSize %d, %d heads over %d kv heads, %s cache', (pageSize, numHeads, numKvHeads, cacheDtype) => {
    const headDim = 24;
    const seqLens = [1, 37, 0, 130, 5];
    const kvScale = cacheDtype === 'fp8e4m3' ? 0.05 : 1;
    const c = buildCache(11 + pageSize, seqLens, numKvHeads, headDim, pageSize, cacheDtype, kvScale);
    const dtype = cacheDtype === 'f32' ? 'f32' : cacheDtype === 'f16' ? 'f16' : 'bf16';
    const q = encode(dtype, randn(rng(5), seqLens.length * numHeads * headDim));
    const qf = decode(dtype, q);
    const scale = 1 / Math.sqrt(headDim);
    const out = ops.pagedDecode({
      dtype, kvDtype: cacheDtype, numSeqs: seqLens.length, numHeads, numKvHeads, headDim, pageSize, numPages: c.numPages,
      maxPagesPerSeq: c.maxPagesPerSeq, kScale: kvScale, vScale: kvScale, q, kCache: c.kCache, vCache: c.vCache,
      blockTables: c.blockTables, seqLens: Int32Array.from(seqLens),
    });
    const want: number[] = [];
    seqLens.forEach((len, s) => {
      for (let h = 0; h < numHeads; h++) {
        const kvh = Math.floor(h / (numHeads / numKvHeads));
        want.push(...attendRow(qf, (s * numHeads + h) * headDim, c.kRows[s], c.vRows[s], len, headDim, scale, numKvHeads * headDim, kvh * headDim));
      }
    });
    expect(nmse(decode(dtype, out), want)).toBeLessThan(ATT_TOL[cacheDtype]);
  });

  it('rejects out-of-range page ids, bad lengths and wrong dtypes', () => {
    const c = buildCache(3, [20], 1, 8, 8, 'bf16');
    const base = {
      dtype: 'bf16' as const, kvDtype: 'bf16' as const, numSeqs: 1, numHeads: 1, numKvHeads: 1, headDim: 8, pageSize: 8, numPages: c.numPages,
      maxPagesPerSeq: c.maxPagesPerSeq, q: new Uint16Array(8), kCache: c.kCache as Uint16Array, vCache: c.vCache as Uint16Array,
      blockTables: c.blockTables, seqLens: new Int32Array([20]),
    };
    expect(() => ops.pagedDecode(base)).not.toThrow();
    const bad = c.blockTables.slice();
    bad[1] = c.numPages;
    expect(() => ops.pagedDecode({ ...base, blockTables: bad })).toThrow(/blockTables\[0\]\[1\] = \d+ is out of range/);
    expect(() => ops.pagedDecode({ ...base, seqLens: new Int32Array([25]) })).toThrow(/seqLens\[0\] = 25 is out of range/);
    expect(() => ops.pagedDecode({ ...base, q: new Float32Array(8) as never })).toThrow(/q must be a Uint16Array/);
    expect(() => ops.pagedDecode({ ...base, q: new Uint16Array(7) })).toThrow(/q must have 8 elements, got 7/);
    expect(() => ops.pagedDecode({ ...base, numHeads: 3, numKvHeads: 2 })).toThrow(NativeError);
    try {
      ops.pagedDecode({ ...base, kvDtype: 'int4' as never });
    } catch (e) {
      expect((e as NativeError).code).toBe('bad_argument');
      expect((e as Error).message).toMatch(/kvDtype must be one of/);
    }
  });
});

describe('prefill / chunked-prefill attention', () => {
  it.each([
    [16, 4, 4, 'f32'],
    [8, 6, 2, 'bf16'],
    [32, 2, 1, 'f16'],
  ] as const)('pageSize %d, %d heads over %d kv heads, %s, with earlier context', (pageSize, numHeads, numKvHeads, dtype) => {
    const headDim = 40;
    const qLens = [7, 1, 19, 0, 3];
    const ctxLens = [0, 12, 33, 5, 64];
    const kvLens = qLens.map((q, i) => q + ctxLens[i]);
    const c = buildCache(21 + pageSize, kvLens, numKvHeads, headDim, pageSize, dtype);
    const numTokens = qLens.reduce((a, b) => a + b, 0);
    const q = encode(dtype, randn(rng(9), numTokens * numHeads * headDim));
    const qf = decode(dtype, q);
    const cu = new Int32Array(qLens.length + 1);
    qLens.forEach((l, i) => (cu[i + 1] = cu[i] + l));
    const scale = 1 / Math.sqrt(headDim);
    const out = ops.prefill({
      dtype, numSeqs: qLens.length, numTokens, numHeads, numKvHeads, headDim, pageSize, numPages: c.numPages, maxPagesPerSeq: c.maxPagesPerSeq,
      q, cuSeqlensQ: cu, seqLensKv: Int32Array.from(kvLens), blockTables: c.blockTables, kCache: c.kCache, vCache: c.vCache,
    });
    const want = new Float64Array(numTokens * numHeads * headDim);
    qLens.forEach((ql, s) => {
      for (let i = 0; i < ql; i++)
        for (let h = 0; h < numHeads; h++) {
          const kvh = Math.floor(h / (numHeads / numKvHeads));
          const row = (cu[s] + i) * numHeads + h;
          const o = attendRow(qf, row * headDim, c.kRows[s], c.vRows[s], ctxLens[s] + i + 1, headDim, scale, numKvHeads * headDim, kvh * headDim);
          want.set(o, row * headDim);
        }
    });
    expect(nmse(decode(dtype, out), want)).toBeLessThan(ATT_TOL[dtype]);
  });

  it('one query token per sequence equals paged decode', () => {
    const kvLens = [9, 40, 1];
    const c = buildCache(4, kvLens, 2, 16, 8, 'f32');
    const q = randn(rng(4), 3 * 4 * 16);
    const common = { numHeads: 4, numKvHeads: 2, headDim: 16, pageSize: 8, numPages: c.numPages, maxPagesPerSeq: c.maxPagesPerSeq, q, kCache: c.kCache as Float32Array, vCache: c.vCache as Float32Array, blockTables: c.blockTables };
    const a = ops.prefill({ ...common, dtype: 'f32', numSeqs: 3, numTokens: 3, cuSeqlensQ: new Int32Array([0, 1, 2, 3]), seqLensKv: Int32Array.from(kvLens) });
    const b = ops.pagedDecode({ ...common, dtype: 'f32', kvDtype: 'f32', numSeqs: 3, seqLens: Int32Array.from(kvLens) });
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-6);
  });

  it('rejects inconsistent lengths', () => {
    const c = buildCache(4, [10], 1, 8, 8, 'f32');
    const args = { dtype: 'f32' as const, numSeqs: 1, numTokens: 4, numHeads: 1, numKvHeads: 1, headDim: 8, pageSize: 8, numPages: c.numPages, maxPagesPerSeq: c.maxPagesPerSeq, q: new Float32Array(32), kCache: c.kCache as Float32Array, vCache: c.vCache as Float32Array, blockTables: c.blockTables, cuSeqlensQ: new Int32Array([0, 4]), seqLensKv: new Int32Array([3]) };
    expect(() => ops.prefill(args)).toThrow(/seqLensKv\[0\] = 3 must be in \[4, 16\]/);
    expect(() => ops.prefill({ ...args, cuSeqlensQ: new Int32Array([0, 3]) })).toThrow(/must start at 0 and end at numTokens/);
  });
});

describe('siluMul', () => {
  it.each(['f32', 'bf16'] as const)('%s', (dtype) => {
    const numTokens = 3;
    const d = 13;
    const x = encode(dtype, randn(rng(6), numTokens * 2 * d, 3));
    const xf = decode(dtype, x);
    const out = ops.siluMul({ dtype, numTokens, d, x });
    const want: number[] = [];
    for (let t = 0; t < numTokens; t++)
      for (let i = 0; i < d; i++) {
        const g = xf[t * 2 * d + i];
        want.push((g / (1 + Math.exp(-g))) * xf[t * 2 * d + d + i]);
      }
    expect(nmse(decode(dtype, out), want)).toBeLessThan(TOL[dtype]);
  });
});

describe('gemm', () => {
  it.each([
    ['f32', 1e-10],
    ['bf16', 3e-5],
    ['fp8e4m3', 3e-5],
  ] as const)('%s c = alpha a b^T on odd shapes', (dtype, tol) => {
    const m = 5;
    const n = 11;
    const k = 37;
    const r = rng(8);
    const a = encode(dtype, randn(r, m * k));
    const b = encode(dtype, randn(r, n * k));
    const af = decode(dtype, a);
    const bf = decode(dtype, b);
    const aScale = dtype === 'fp8e4m3' ? 0.5 : 1;
    const bScale = dtype === 'fp8e4m3' ? 0.25 : 1;
    const out = ops.gemm({ dtype, outDtype: dtype === 'fp8e4m3' ? 'bf16' : dtype, m, n, k, alpha: 2, a, b, aScale, bScale } as never);
    const want: number[] = [];
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let kk = 0; kk < k; kk++) acc += af[i * k + kk] * bf[j * k + kk];
        want.push(2 * aScale * bScale * acc);
      }
    expect(nmse(decode(dtype === 'fp8e4m3' ? 'bf16' : dtype, out), want)).toBeLessThan(tol);
  });
});

describe('lora shrink/expand', () => {
  it.each([true, false])('segments=%s, mixed ranks, a token without adapter', (segments) => {
    const r = rng(12);
    const numTokens = 7;
    const inDim = 19;
    const outDim = 13;
    const maxRank = 8;
    const numSlots = 3;
    const ranks = new Int32Array([8, 3, 5]);
    const scales = new Float32Array([0.5, 2, 1]);
    const dtype = 'f32';
    const x = randn(r, numTokens * inDim);
    const a = randn(r, numSlots * maxRank * inDim);
    const bw = randn(r, numSlots * outDim * maxRank);
    const tokenSlot = [2, 2, 0, -1, 1, 1, 1];
    const seg = segments
      ? { segStarts: new Int32Array([0, 2, 3, 4, 7]), numSegs: 4, segSlots: new Int32Array([2, 0, -1, 1]) }
      : { segSlots: Int32Array.from(tokenSlot) };
    const y = ops.loraShrink({ dtype, numTokens, inDim, maxRank, numSlots, x, a, ranks, ...seg });
    const base = randn(r, numTokens * outDim);
    const out = base.slice();
    ops.loraExpand({ dtype, numTokens, outDim, maxRank, numSlots, y, b: bw, ranks, scales, out, ...seg });
    const wantY: number[] = [];
    const wantOut: number[] = [];
    for (let t = 0; t < numTokens; t++) {
      const s = tokenSlot[t];
      const yt: number[] = [];
      for (let rr = 0; rr < maxRank; rr++) {
        let acc = 0;
        if (s >= 0 && rr < ranks[s]) for (let k = 0; k < inDim; k++) acc += x[t * inDim + k] * a[(s * maxRank + rr) * inDim + k];
        yt.push(acc);
      }
      wantY.push(...yt);
      for (let nn = 0; nn < outDim; nn++) {
        let acc = 0;
        if (s >= 0) for (let rr = 0; rr < ranks[s]; rr++) acc += yt[rr] * bw[(s * outDim + nn) * maxRank + rr];
        wantOut.push(base[t * outDim + nn] + (s >= 0 ? scales[s] * acc : 0));
      }
    }
    expect(nmse(y, wantY)).toBeLessThan(1e-10);
    expect(nmse(out, wantOut)).toBeLessThan(1e-10);
    expect(() => ops.loraShrink({ dtype, numTokens, inDim, maxRank, numSlots, x, a, ranks, segSlots: new Int32Array([0, 0, 0, 3, 0, 0, 0]) })).toThrow(/segSlots\[3\] = 3 is out of range/);
  });
});
