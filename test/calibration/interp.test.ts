import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EfficiencyGrid } from '../../sim/cost/interp.js';

const axis = (name: string, values: number[], offset = 0) => ({ name, values, offset });

describe('EfficiencyGrid', () => {
  it('reproduces a power law exactly between grid points (log-log interpolation)', () => {
    const xs = [1, 2, 4, 8, 16, 32];
    const grid = new EfficiencyGrid([axis('m', xs)], xs.map((x) => 0.01 * x ** 0.7));
    fc.assert(
      fc.property(fc.double({ min: 1, max: 32, noNaN: true }), (x) => {
        expect(grid.efficiency([x]) / (0.01 * x ** 0.7) - 1).toBeCloseTo(0, 12);
      }),
    );
  });

  it('holds the efficiency at the edge beyond the grid, so time keeps the roofline\'s scaling', () => {
    const grid = new EfficiencyGrid([axis('m', [4, 8])], [0.2, 0.4]);
    expect(grid.efficiency([1])).toBeCloseTo(0.2, 14);
    expect(grid.efficiency([1e6])).toBeCloseTo(0.4, 14);
  });

  it('interpolates bilinearly in log space; unmeasured points are clamped from measured neighbours', () => {
    const grid = new EfficiencyGrid([axis('a', [1, 4]), axis('b', [1, 4])], [0.1, 0.2, 0.3, null]);
    // At a measured corner: that value.
    expect(grid.efficiency([1, 4])).toBeCloseTo(0.2, 12);
    // The missing corner (4, 4) takes its neighbour along the last axis, (4, 1) = 0.3.
    expect(grid.efficiency([4, 4])).toBeCloseTo(0.3, 12);
    expect(grid.measuredAt(3)).toBeNull();
    // In the middle: geometric mean of the four corners (equal weights).
    expect(grid.efficiency([2, 2])).toBeCloseTo((0.1 * 0.2 * 0.3 * 0.3) ** (1 / 4), 12);
    // Continuous across the edge of the measured region.
    expect(Math.abs(grid.efficiency([3.999, 3.999]) - grid.efficiency([4, 4]))).toBeLessThan(1e-3);
  });

  it('leave-one-out is exact for a power law at interior points and flags edges', () => {
    const xs = [1, 2, 4, 8];
    const grid = new EfficiencyGrid([axis('m', xs)], xs.map((x) => 0.05 * x ** 0.5));
    for (let i = 1; i < xs.length - 1; i++) {
      const r = grid.leaveOneOut(i)!;
      expect(r.edge).toBe(false);
      expect(r.estimate / (0.05 * xs[i] ** 0.5)).toBeCloseTo(1, 12);
    }
    expect(grid.leaveOneOut(0)!.edge).toBe(true);
    expect(grid.leaveOneOut(0)!.estimate).toBeCloseTo(0.05 * 2 ** 0.5, 12);
  });

  it('offset axes accept 0 and reject what is outside the domain', () => {
    const grid = new EfficiencyGrid([axis('ctx', [0, 64, 256], 64)], [0.1, 0.2, 0.3]);
    expect(grid.efficiency([0])).toBeCloseTo(0.1, 12);
    expect(() => grid.efficiency([-100])).toThrow(/outside the domain/);
    expect(() => new EfficiencyGrid([axis('m', [2, 1])], [0.1, 0.2])).toThrow(/strictly increasing/);
    expect(() => new EfficiencyGrid([axis('m', [1, 2])], [null, null])).toThrow(/at least one/);
    expect(() => new EfficiencyGrid([axis('m', [1, 2])], [0.1, -1])).toThrow(/> 0/);
  });
});
