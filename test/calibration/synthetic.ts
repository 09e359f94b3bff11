// Synthetic calibration samples for tests: every case of a grid, timed by a known efficiency
// function (a fixed launch latency in front of the roofline), so the fit's answers are known.
import { buildCases, type GridName } from '../../calibration/grids.js';
import type { CalibModel } from '../../calibration/shapes.js';
import { FAMILY_SPECS, opWork, rooflineUs, type ConfigValues, type Family, type PointValues } from '../../sim/cost/op-work.js';
import { specPeaks } from '../../sim/cost/profile-fit.js';
import type { Sample } from '../../sim/cost/samples.js';

export const PEAKS = specPeaks('h200');

/** Known efficiency: 0.8 × roof / (roof + 4 us), times a mild page-size and adapter-count effect. */
export function knownEfficiency(family: Family, config: ConfigValues, point: PointValues): number {
  const roof = rooflineUs(FAMILY_SPECS[family].bound, opWork(family, config, point), PEAKS);
  let eff = (0.8 * roof) / (roof + 4);
  if (family === 'decode') eff *= 1 - 0.02 * Math.abs(Math.log2(point.page / 16));
  if (family === 'lora') eff *= 0.5 + 0.5 * (point.adapters / (point.adapters + 4));
  return eff;
}

export function syntheticSamples(models: CalibModel[], grid: GridName, eff = knownEfficiency): Sample[] {
  return buildCases({ models, grid }).map((c) => {
    const family = c.family as Family;
    const roof = rooflineUs(FAMILY_SPECS[family].bound, opWork(family, c.config, c.point), PEAKS);
    const t = roof / eff(family, c.config, c.point);
    return { family, config: c.config, point: c.point, set: c.set, medianUs: t, p10Us: t, p90Us: t, minUs: t, maxUs: t, reps: 9, callsPerRep: 1 };
  });
}

export const SYNTHETIC_META = { date: '2026-01-01T00:00:00.000Z', gpu: { name: 'NVIDIA H200 (synthetic)' }, synthetic: true };
