// castF32: the CPU reference of the widening cast (bf16/f16/f32 -> f32, row gather, scale) on
// odd shapes, against a decode in TypeScript; and its argument checks.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { cpu, decode, encode, NativeError } from '../../native/index.js';
import { randn, rng } from './helpers.js';

const ops = cpu();

describe('castF32 (CPU reference)', () => {
  it.each([
    ['bf16', 7, 33, 5, true, 1],
    ['bf16', 3, 1001, 3, false, 0.5],
    ['f16', 9, 17, 11, true, -2],
    ['f32', 2, 5, 2, false, 3],
  ] as const)('%s: %i source rows x %i cols, %i output rows, gather=%s, scale=%s', (dtype, srcRows, cols, numRows, gather, scale) => {
    const r = rng(srcRows * 1000 + cols);
    const x = encode(dtype, randn(r, srcRows * cols, 5));
    const rows = gather ? Int32Array.from({ length: numRows }, () => Math.floor(r() * srcRows)) : undefined;
    const out = ops.castF32({ dtype, numRows, cols, srcRows, scale, x, rows });
    const values = decode(dtype, x);
    expect(out.length).toBe(numRows * cols);
    for (let i = 0; i < numRows; i++) {
      const src = rows ? rows[i] : i;
      // widening is exact; the only rounding is the f32 product with the scale
      for (let c = 0; c < cols; c++) expect(out[i * cols + c]).toBe(Math.fround(values[src * cols + c] * scale));
    }
  });

  it('keeps every bf16 bit pattern (NaN, infinities, -0, subnormals) with scale 1', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 1, maxLength: 64 }), (bits) => {
        const x = Uint16Array.from(bits);
        const out = ops.castF32({ dtype: 'bf16', numRows: 1, cols: x.length, x });
        const words = new Uint32Array(out.buffer, out.byteOffset, out.length);
        for (let i = 0; i < x.length; i++) {
          if ((x[i] & 0x7fff) > 0x7f80) expect(Number.isNaN(out[i])).toBe(true);
          else expect(words[i]).toBe(x[i] << 16 >>> 0);
        }
      }),
    );
  });

  it('rejects bad arguments with a NativeError naming them', () => {
    const x = new Uint16Array(6);
    const bad = (a: Record<string, unknown>) => () => ops.castF32({ dtype: 'bf16', numRows: 2, cols: 3, x, ...a } as never);
    expect(bad({ rows: Int32Array.of(0, 2), srcRows: 2 })).toThrow(/rows\[1\] = 2 is out of range \[0, 2\)/);
    expect(bad({ numRows: 3 })).toThrow(/x must have 9 elements/);
    expect(bad({ numRows: 3, srcRows: 2 })).toThrow(/numRows \(3\) exceeds srcRows \(2\)/);
    expect(bad({ scale: NaN })).toThrow(/scale must be a finite number/);
    expect(bad({ dtype: 'fp8e4m3' })).toThrow(/dtype must be one of/);
    expect(bad({ x: new Float32Array(6) })).toThrow(NativeError);
  });
});
