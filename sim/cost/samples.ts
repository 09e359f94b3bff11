// Raw calibration samples: the CSV that `stratos calibrate run` writes (calibration/samples.ts is
// the writer) and `stratos calibrate fit` reads. The first line carries the run's provenance as
// JSON after a '#' marker; each row is one kernel shape with its timing statistics.
import { FAMILIES, FAMILY_SPECS, parseKeyText, type ConfigValues, type Family, type PointValues } from './op-work.js';

export const SAMPLES_MARKER = '# stratos-calibration-samples ';
export const SAMPLES_END_MARKER = '# stratos-calibration-end ';
export const SAMPLE_COLUMNS = ['family', 'config', 'point', 'set', 'median_us', 'p10_us', 'p90_us', 'min_us', 'max_us', 'reps', 'calls_per_rep'] as const;

export interface Sample {
  readonly family: Family;
  readonly config: ConfigValues;
  readonly point: PointValues;
  /** 'fit': a grid point the profile is fitted on; 'holdout': an off-grid shape kept back to test it. */
  readonly set: 'fit' | 'holdout';
  readonly medianUs: number;
  readonly p10Us: number;
  readonly p90Us: number;
  readonly minUs: number;
  readonly maxUs: number;
  readonly reps: number;
  readonly callsPerRep: number;
}

export class SamplesError extends Error {
  readonly code = 'samples' as const;
  constructor(message: string) {
    super(message);
    this.name = 'SamplesError';
  }
}

/** Parses a samples CSV: its provenance header and its rows; errors name the line. */
export function parseSamplesCsv(text: string, source = 'samples'): { meta: Record<string, unknown>; samples: Sample[] } {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length < 2 || !lines[0].startsWith(SAMPLES_MARKER)) {
    throw new SamplesError(`${source}: not a calibration samples file (its first line must start with "${SAMPLES_MARKER.trim()}")`);
  }
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(lines[0].slice(SAMPLES_MARKER.length)) as Record<string, unknown>;
  } catch (err) {
    throw new SamplesError(`${source}: line 1: provenance is not valid JSON: ${(err as Error).message}`);
  }
  const header = lines[1].split(',');
  if (header.join(',') !== SAMPLE_COLUMNS.join(',')) throw new SamplesError(`${source}: line 2: columns must be ${SAMPLE_COLUMNS.join(',')}`);
  const samples: Sample[] = [];
  for (let i = 2; i < lines.length; i++) {
    if (lines[i].startsWith(SAMPLES_END_MARKER)) {
      try {
        meta = { ...meta, end: JSON.parse(lines[i].slice(SAMPLES_END_MARKER.length)) as unknown };
      } catch (err) {
        throw new SamplesError(`${source}: line ${i + 1}: end summary is not valid JSON: ${(err as Error).message}`);
      }
      continue;
    }
    if (lines[i].startsWith('#')) continue;
    const f = lines[i].split(',');
    const where = `${source}: line ${i + 1}`;
    if (f.length !== SAMPLE_COLUMNS.length) throw new SamplesError(`${where}: ${f.length} fields, expected ${SAMPLE_COLUMNS.length}`);
    const family = f[0] as Family;
    if (!FAMILIES.includes(family)) throw new SamplesError(`${where}: family "${f[0]}" is not one of ${FAMILIES.join(', ')}`);
    const spec = FAMILY_SPECS[family];
    let config: Record<string, number | string>;
    let point: Record<string, number | string>;
    try {
      config = parseKeyText(f[1]);
      point = parseKeyText(f[2]);
    } catch (err) {
      throw new SamplesError(`${where}: ${(err as Error).message}`);
    }
    for (const k of spec.configKeys) if (config[k] === undefined) throw new SamplesError(`${where}: config lacks ${k}`);
    for (const a of spec.axes) {
      const v = point[a.name];
      if (typeof v !== 'number' || !(v + a.offset > 0)) throw new SamplesError(`${where}: point ${a.name} = ${String(v)} must be a number with ${a.name} + ${a.offset} > 0`);
    }
    if (f[3] !== 'fit' && f[3] !== 'holdout') throw new SamplesError(`${where}: set "${f[3]}" must be fit or holdout`);
    const nums = f.slice(4).map(Number);
    if (!nums.every((n) => Number.isFinite(n) && n >= 0)) throw new SamplesError(`${where}: timings must be finite numbers >= 0`);
    if (!(nums[0] > 0)) throw new SamplesError(`${where}: median_us must be > 0`);
    samples.push({
      family, config, point: point as PointValues, set: f[3], medianUs: nums[0], p10Us: nums[1], p90Us: nums[2], minUs: nums[3], maxUs: nums[4], reps: nums[5], callsPerRep: nums[6],
    });
  }
  if (samples.length === 0) throw new SamplesError(`${source}: no samples`);
  return { meta, samples };
}

function keyValues(values: Readonly<Record<string, number | string>>): string {
  return Object.entries(values).map(([k, v]) => `${k}=${v}`).join(';');
}

/** Writes samples in the same CSV format (e.g. the held-back rows committed beside a profile). */
export function formatSamplesCsv(meta: Record<string, unknown>, samples: readonly Sample[]): string {
  const rows = samples.map((s) =>
    [s.family, keyValues(s.config), keyValues(s.point), s.set, s.medianUs, s.p10Us, s.p90Us, s.minUs, s.maxUs, s.reps, s.callsPerRep].join(','),
  );
  return `${SAMPLES_MARKER}${JSON.stringify(meta)}\n${SAMPLE_COLUMNS.join(',')}\n${rows.join('\n')}\n`;
}

/**
 * Replaces whole families of `base` by a later run's: every family that `patch` holds is taken
 * from `patch` only (fit and holdout rows alike), every other family stays as in `base`. The
 * provenance is `base`'s, with the patch's run appended under `replacedBy` (which families, its
 * own provenance), so a profile fitted on the result names both runs.
 */
export function mergeSamples(
  base: { meta: Record<string, unknown>; samples: readonly Sample[] },
  patch: { meta: Record<string, unknown>; samples: readonly Sample[] },
): { meta: Record<string, unknown>; samples: Sample[]; families: Family[] } {
  const families = FAMILIES.filter((f) => patch.samples.some((s) => s.family === f));
  const kept = base.samples.filter((s) => !families.includes(s.family));
  const earlier = Array.isArray(base.meta.replacedBy) ? (base.meta.replacedBy as unknown[]) : [];
  const meta = { ...base.meta, replacedBy: [...earlier, { families, run: patch.meta }] };
  return { meta, samples: [...kept, ...patch.samples], families };
}
