import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../sim/fleet/token-bucket.js';

describe('token bucket', () => {
  it('never admits more than rate × time + burst over any interval', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.01, max: 1000, noNaN: true }),
        fc.double({ min: 1, max: 100, noNaN: true }),
        fc.array(fc.integer({ min: 0, max: 2_000_000 }), { minLength: 1, maxLength: 300 }),
        (ratePerS, burst, gapsUs) => {
          const bucket = new TokenBucket(ratePerS, burst);
          const admitted: number[] = [];
          let t = 0;
          for (const gap of gapsUs) {
            t += gap;
            if (bucket.tryTake(t)) admitted.push(t);
          }
          // Every window [admitted[i], admitted[j]] holds j − i + 1 admissions.
          for (let i = 0; i < admitted.length; i++) {
            for (let j = i; j < admitted.length; j++) {
              const bound = (ratePerS * (admitted[j] - admitted[i])) / 1e6 + burst;
              if (j - i + 1 > bound + 1e-9) return false;
            }
          }
          return true;
        },
      ),
      { numRuns: 300 },
    );
  });

  it('admits a full burst at once, then one per 1/rate', () => {
    const b = new TokenBucket(2, 3);
    expect([0, 0, 0, 0].map(() => b.tryTake(0))).toEqual([true, true, true, false]);
    expect(b.tryTake(499_999)).toBe(false);
    expect(b.tryTake(500_000)).toBe(true);
  });

  it('names a wrong rate or burst', () => {
    expect(() => new TokenBucket(-1, 3)).toThrow(/rateLimit.ratePerS = -1: must be a positive number/);
    expect(() => new TokenBucket(1, 0.5)).toThrow(/rateLimit.burst = 0.5/);
  });
});
