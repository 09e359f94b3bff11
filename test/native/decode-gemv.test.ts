// decodeGemv (the one-row fused linear layer of batch-1 decode) against the ops it replaces:
// rmsnorm, gemm, the residual add (rmsnorm's residual input) and siluMul, on the CPU references.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { cpu, decode, encode, NativeError, type ActDType } from '../../native/index.js';
import { maxAbsDiff, randn, rng } from './helpers.js';

const ops = cpu();

function unfused(dtype: ActDType, n: number, k: number, epilogue: 'store' | 'add' | 'siluPair', x: Float32Array, w: Float32Array, g: Float32Array | null, out0: Float32Array): Float32Array {
  const xs = g === null ? encode(dtype, x) : ops.rmsnorm({ dtype, numTokens: 1, hidden: k, eps: 1e-5, x: encode(dtype, x), weight: encode(dtype, g) });
  const rows = epilogue === 'siluPair' ? 2 * n : n;
  const y = ops.gemm({ dtype, m: 1, n: rows, k, a: xs, b: encode(dtype, w) });
  if (epilogue === 'store') return decode(dtype, y);
  if (epilogue === 'siluPair') return decode(dtype, ops.siluMul({ dtype, numTokens: 1, d: n, x: y }));
  // The residual add as the unfused forward does it: the next rmsnorm's residual input.
  const h = encode(dtype, out0);
  ops.rmsnorm({ dtype, numTokens: 1, hidden: n, x: y, residual: h, weight: encode(dtype, new Float32Array(n).fill(1)) });
  return decode(dtype, h);
}

describe('decodeGemv', () => {
  it('equals rmsnorm -> gemm -> store / residual add / siluMul up to the order of f32 sums', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 24 }), fc.constantFrom<'store' | 'add' | 'siluPair'>('store', 'add', 'siluPair'),
        fc.boolean(), fc.constantFrom<ActDType>('f32', 'bf16'), fc.integer({ min: 1, max: 1000 }),
        (n, k8, epilogue, norm, dtype, seed) => {
          const k = 8 * k8;
          const r = rng(seed);
          const rows = epilogue === 'siluPair' ? 2 * n : n;
          const x = randn(r, k);
          const w = randn(r, rows * k, 1 / Math.sqrt(k));
          const g = norm ? randn(r, k) : null;
          const out0 = randn(r, n);
          const want = unfused(dtype, n, k, epilogue, x, w, g, out0);
          const out = encode(dtype, out0);
          ops.decodeGemv({ dtype, n, k, epilogue, eps: 1e-5, x: encode(dtype, x), weight: encode(dtype, w), ...(g !== null ? { normWeight: encode(dtype, g) } : {}), out });
          const got = decode(dtype, out);
          // f32: sums in another order; bf16: that difference can flip one rounding of an output (2^-8 relative) or of a normed input.
          const tol = dtype === 'f32' ? 1e-4 : 0.02;
          return maxAbsDiff(got, want) <= tol * Math.max(1, ...Array.from(want, Math.abs));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('is exactly the unfused result when the sums are exact (small integers)', () => {
    const n = 5;
    const k = 16;
    const x = Float32Array.from({ length: k }, (_, i) => (i % 5) - 2);
    const w = Float32Array.from({ length: 2 * n * k }, (_, i) => ((i * 7) % 5) - 2);
    const out0 = Float32Array.from({ length: n }, (_, i) => i - 2);
    for (const epilogue of ['store', 'add', 'siluPair'] as const) {
      const out = encode('bf16', out0);
      ops.decodeGemv({ dtype: 'bf16', n, k, epilogue, x: encode('bf16', x), weight: encode('bf16', w.subarray(0, (epilogue === 'siluPair' ? 2 : 1) * n * k)), out });
      expect(Array.from(decode('bf16', out))).toEqual(Array.from(unfused('bf16', n, k, epilogue, x, w.subarray(0, (epilogue === 'siluPair' ? 2 : 1) * n * k), null, out0)));
    }
  });

  it('names what is wrong', () => {
    const x = new Float32Array(8);
    const w = new Float32Array(16);
    const call = (a: Record<string, unknown>) => () => ops.decodeGemv({ dtype: 'f32', n: 2, k: 8, x, weight: w, ...a } as never);
    expect(call({ epilogue: 'add' })).toThrow(/out must be given for epilogue 'add'/);
    expect(call({ epilogue: 'gelu' })).toThrow(/epilogue must be one of store, add, siluPair, got gelu/);
    expect(call({ epilogue: 'siluPair' })).toThrow(/weight must have 32 elements, got 16/);
    expect(call({ pdl: 1 })).toThrow(/pdl must be a boolean/);
    expect(call({ out: x })).toThrow(/out must not alias x/);
    expect(call({ eps: -1 })).toThrow(NativeError);
    expect(call({ blocksPerSm: 9 })).toThrow(/blocksPerSm must be in \[1, 8\], got 9/);
    expect(call({ l2Prefetch: new Uint16Array(8) })).toThrow(/l2Prefetch must be a Float32Array for dtype f32, got Uint16Array/);
    expect(call({ l2PrefetchBytes: 64 })).toThrow(/l2PrefetchBytes needs l2Prefetch/);
    expect(call({ l2Prefetch: w, l2PrefetchBytes: 0 })).toThrow(/l2PrefetchBytes/);
  });

  it('takes an L2 prefetch range as a hint: the CPU output is the same without it', () => {
    const r = rng(3);
    const x = encode('bf16', randn(r, 64));
    const w = encode('bf16', randn(r, 24 * 64, 0.125));
    const next = encode('bf16', randn(r, 640));
    const plain = ops.decodeGemv({ dtype: 'bf16', n: 24, k: 64, x, weight: w });
    const hinted = ops.decodeGemv({ dtype: 'bf16', n: 24, k: 64, x, weight: w, l2Prefetch: next, l2PrefetchBytes: 512 });
    expect(Array.from(hinted)).toEqual(Array.from(plain));
  });
});
