// Fits a profile from raw samples: per (family, config), efficiency = roofline time ÷ measured
// median time on the grid the samples span; then scores the interpolation by leave-one-out over
// the grid and by the off-grid samples held back from the fit. The score uses the very
// interpolation the cost model prices with (EfficiencyGrid), so it measures what the simulator
// will compute. Pure and deterministic: same samples, same profile.
import { GPUS, type GpuName } from '../catalog.js';
import { EfficiencyGrid } from './interp.js';
import { FAMILY_SPECS, keyText, opWork, rooflineUs, type ConfigValues, type Family, type Peaks } from './op-work.js';
import { CompiledProfile, PROFILE_SCHEMA, type ErrorStats, type Profile, type ProfileTable } from './profile.js';
import type { Sample } from './samples.js';

/** A nominal host memory rate: host-side efficiencies are relative to it (a scale, not a claim). */
export const NOMINAL_HOST_BYTES_PER_S = 10e9;

export function specPeaks(gpu: GpuName): Peaks {
  const g = GPUS[gpu];
  return { memoryBytesPerS: g.memoryBytesPerS, bf16FlopsPerS: g.bf16FlopsPerS, pcieBytesPerS: g.pcieBytesPerS, hostBytesPerS: NOMINAL_HOST_BYTES_PER_S };
}

export const FIT_METHOD =
  'efficiency = roofline time (max of FLOPs / bf16 peak, bytes / HBM peak; PCIe or nominal host rate for copies and host ops) ÷ median measured time; ' +
  'per (family, config) a grid over the sampled axis values; priced by multilinear interpolation of ln(efficiency) in ln(axis value + offset), held at the grid edge beyond it. ' +
  'looError: each interior grid point predicted from its two neighbours along every axis where both exist (averaged in ln), relative time error; ' +
  'looEdgeError: grid-edge points predicted by clamping; holdoutError: off-grid samples not used in the fit. ' +
  'Before that, grid times are made non-decreasing along paddable axes (a larger shape that measured faster is what an engine would pad to); fit.padded counts those points.';

export function errorStats(errors: readonly number[]): ErrorStats {
  if (errors.length === 0) return { median: NaN, p90: NaN, n: 0 };
  const s = [...errors].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
  return { median: round(at(0.5), 4), p90: round(at(0.9), 4), n: s.length };
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function sig(x: number, digits: number): number {
  return Number(x.toPrecision(digits));
}

export interface FitInput {
  readonly samples: readonly Sample[];
  /** The run's provenance (the samples file's header). */
  readonly meta: Record<string, unknown>;
  readonly gpu: GpuName;
  /** Profile name; default `<gpu>-<date of the run>`. */
  readonly name?: string;
}

export interface FitResult {
  readonly profile: Profile;
  readonly holdout: readonly Sample[];
}

function efficiencyOf(s: Sample, peaks: Peaks): number {
  const roof = rooflineUs(FAMILY_SPECS[s.family].bound, opWork(s.family, s.config, s.point), peaks);
  return roof / s.medianUs;
}

export interface PaddingStats {
  /** Grid points whose time was lowered to a larger shape's (padding). */
  points: number;
  of: number;
  /** The largest relative lowering of a time. */
  maxTimeReduction: number;
}

/** The tables of `samples` (fit set only), in a stable order: family order, then config text. */
export function buildTables(samples: readonly Sample[], peaks: Peaks, padding?: Map<Family, PaddingStats>): ProfileTable[] {
  const groups = new Map<string, { family: Family; config: ConfigValues; rows: Sample[] }>();
  for (const s of samples) {
    if (s.set !== 'fit') continue;
    const key = `${s.family}|${keyText(FAMILY_SPECS[s.family].configKeys, s.config)}`;
    const g = groups.get(key) ?? { family: s.family, config: s.config, rows: [] };
    g.rows.push(s);
    groups.set(key, g);
  }
  const familyOrder = Object.keys(FAMILY_SPECS);
  const ordered = [...groups.entries()].sort(([ka, a], [kb, b]) => familyOrder.indexOf(a.family) - familyOrder.indexOf(b.family) || (ka < kb ? -1 : ka > kb ? 1 : 0));
  return ordered.map(([, g]) => {
    const spec = FAMILY_SPECS[g.family];
    const axes = spec.axes.map((a) => ({ name: a.name, offset: a.offset, values: [...new Set(g.rows.map((r) => r.point[a.name]))].sort((x, y) => x - y) }));
    const strides: number[] = [];
    let size = 1;
    for (let a = axes.length - 1; a >= 0; a--) {
      strides[a] = size;
      size *= axes[a].values.length;
    }
    const effs: number[][] = Array.from({ length: size }, () => []);
    for (const r of g.rows) {
      let idx = 0;
      axes.forEach((a, i) => {
        idx += a.values.indexOf(r.point[a.name]) * strides[i];
      });
      effs[idx].push(efficiencyOf(r, peaks));
    }
    const measured = effs.map((list) => {
      if (list.length === 0) return null;
      const s = [...list].sort((x, y) => x - y);
      return s[Math.floor((s.length - 1) / 2)];
    });
    const config: Record<string, number | string> = {};
    for (const k of spec.configKeys) config[k] = g.config[k];
    const padded = padToMonotone(g.family, config, axes, strides, measured, peaks);
    if (padding) {
      const st = padding.get(g.family) ?? { points: 0, of: 0, maxTimeReduction: 0 };
      measured.forEach((e, i) => {
        const pe = padded[i];
        if (e === null || pe === null) return;
        st.of++;
        const reduction = 1 - e / pe; // time ratio padded / measured = e / pe
        if (reduction > 1e-9) {
          st.points++;
          st.maxTimeReduction = Math.max(st.maxTimeReduction, round(reduction, 4));
        }
      });
      padding.set(g.family, st);
    }
    const efficiency = padded.map((e) => (e === null ? null : sig(e, 5)));
    return { family: g.family, config, axes, efficiency };
  });
}

/**
 * Makes grid times non-decreasing along every paddable axis: where a larger shape measured
 * faster, an engine would pad up to it, so t(x) = min(t(x), t(next measured larger x)).
 * Returns the adjusted efficiencies (unchanged where no larger shape was faster).
 */
export function padToMonotone(
  family: Family,
  config: ConfigValues,
  axes: readonly { name: string; values: readonly number[] }[],
  strides: readonly number[],
  efficiency: readonly (number | null)[],
  peaks: Peaks,
): (number | null)[] {
  const bound = FAMILY_SPECS[family].bound;
  const roofs = efficiency.map((_, idx) => {
    const point: Record<string, number> = {};
    axes.forEach((a, i) => (point[a.name] = a.values[Math.floor(idx / strides[i]) % a.values.length]));
    return rooflineUs(bound, opWork(family, config, point), peaks);
  });
  const times = efficiency.map((e, idx) => (e === null ? null : roofs[idx] / e));
  FAMILY_SPECS[family].axes.forEach((spec, a) => {
    if (!spec.paddable) return;
    const n = axes[a].values.length;
    for (let start = 0; start < times.length; start++) {
      if (Math.floor(start / strides[a]) % n !== 0) continue; // each line along axis a once, from its first point
      let best = Infinity;
      for (let i = n - 1; i >= 0; i--) {
        const idx = start + i * strides[a];
        const t = times[idx];
        if (t === null) continue;
        if (t > best) times[idx] = best;
        else best = t;
      }
    }
  });
  return times.map((t, idx) => (t === null ? null : roofs[idx] / t));
}

/** Leave-one-out errors of every table, by family. */
export function leaveOneOut(tables: readonly ProfileTable[]): { interior: Map<Family, number[]>; edge: Map<Family, number[]> } {
  const interior = new Map<Family, number[]>();
  const edge = new Map<Family, number[]>();
  for (const t of tables) {
    const grid = new EfficiencyGrid(t.axes, t.efficiency);
    for (let idx = 0; idx < grid.size; idx++) {
      const measured = grid.measuredAt(idx);
      if (measured === null) continue;
      const est = grid.leaveOneOut(idx);
      if (!est) continue;
      // Predicted time = roofline / estimate; measured time = roofline / measured.
      const err = Math.abs(measured / est.estimate - 1);
      const into = est.edge ? edge : interior;
      const list = into.get(t.family) ?? [];
      list.push(err);
      into.set(t.family, list);
    }
  }
  return { interior, edge };
}

/** Relative time error of a profile on samples (e.g. the held-back ones), by family. */
export function sampleErrors(profile: Profile, samples: readonly Sample[]): Map<Family, number[]> {
  const compiled = new CompiledProfile(profile);
  const out = new Map<Family, number[]>();
  for (const s of samples) {
    const match = compiled.match(s.family, s.config);
    if (!match) continue;
    const spec = FAMILY_SPECS[s.family];
    const roof = rooflineUs(spec.bound, opWork(s.family, s.config, s.point), profile.peaks);
    const predicted = roof / match.grid.efficiency(spec.axes.map((a) => s.point[a.name]));
    const list = out.get(s.family) ?? [];
    list.push(Math.abs(predicted / s.medianUs - 1));
    out.set(s.family, list);
  }
  return out;
}

function statsByFamily(m: Map<Family, number[]>): Record<string, ErrorStats> {
  const out: Record<string, ErrorStats> = {};
  for (const f of Object.keys(FAMILY_SPECS) as Family[]) {
    const list = m.get(f);
    if (list && list.length) out[f] = errorStats(list);
  }
  return out;
}

export function fitProfile(input: FitInput): FitResult {
  const peaks = specPeaks(input.gpu);
  const padding = new Map<Family, PaddingStats>();
  const tables = buildTables(input.samples, peaks, padding);
  if (tables.length === 0) throw new Error('no fit samples to build a profile from');
  const loo = leaveOneOut(tables);
  const holdout = input.samples.filter((s) => s.set === 'holdout');
  const date = typeof input.meta.date === 'string' ? input.meta.date.slice(0, 10) : 'undated';
  const base: Profile = {
    schema: PROFILE_SCHEMA,
    name: input.name ?? `${input.gpu}-${date}`,
    gpu: input.gpu,
    derived: false,
    peaks,
    hostOverheadUs: null,
    allReduce: null,
    provenance: {
      ...input.meta,
      peaksSource: `spec sheet figures of ${input.gpu} (sim/catalog.ts); hostBytesPerS is a nominal scale`,
      hostOverhead: 'not measured: the engine loop does not exist yet; the cost model takes hostOverheadUs from its options and says so',
      allReduce: 'not measured: one GPU; the cost model uses an analytic term and says so',
      samples: { fit: input.samples.length - holdout.length, holdout: holdout.length },
    },
    fit: { method: FIT_METHOD, looError: statsByFamily(loo.interior), looEdgeError: statsByFamily(loo.edge), holdoutError: {}, padded: Object.fromEntries(padding) },
    tables,
  };
  const profile: Profile = { ...base, fit: { ...base.fit, holdoutError: statsByFamily(sampleErrors(base, holdout)) } };
  return { profile, holdout };
}
