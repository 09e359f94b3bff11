import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { detDecay, detExp, detLn } from '../../sim/cost/det-math.js';

describe('deterministic ln and exp', () => {
  it('match Math.log and Math.exp to a few ulps', () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-300, max: 1e300, noNaN: true }), (x) => {
        const want = Math.log(x);
        expect(Math.abs(detLn(x) - want)).toBeLessThanOrEqual(4e-16 * Math.max(1, Math.abs(want)));
      }),
    );
    fc.assert(
      fc.property(fc.double({ min: -700, max: 700, noNaN: true }), (y) => {
        const want = Math.exp(y);
        expect(Math.abs(detExp(y) - want) / want).toBeLessThanOrEqual(1e-14);
      }),
    );
  });

  it('are exact where they must be and refuse what they cannot do', () => {
    expect(detLn(1)).toBe(0);
    expect(detExp(0)).toBe(1);
    expect(() => detLn(0)).toThrow(/> 0/);
    expect(() => detLn(-1)).toThrow(/> 0/);
    expect(() => detExp(800)).toThrow(/700/);
  });

  it('round-trip: exp(ln x) = x to 1e-14', () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-6, max: 1e9, noNaN: true }), (x) => {
        expect(Math.abs(detExp(detLn(x)) / x - 1)).toBeLessThan(1e-14);
      }),
    );
  });

  it('decay e^-x is detExp(-x) up to 700 and 0 past it (a power state over a long idle gap)', () => {
    fc.assert(
      fc.property(fc.double({ min: -700, max: 700, noNaN: true }), (x) => {
        expect(detDecay(x)).toBe(detExp(-x));
      }),
    );
    expect(detDecay(700.5)).toBe(0);
    expect(detDecay(1e12)).toBe(0);
    expect(detDecay(Infinity)).toBe(0);
    expect(() => detDecay(-800)).toThrow(/700/);
    expect(() => detDecay(NaN)).toThrow(/finite/);
  });
});
