// A calibration profile: measured kernel efficiencies over shape grids for one GPU, with the
// peaks they are relative to and where they came from. The profile is data (JSON); this module
// checks it and compiles its tables for pricing. It reads no clock and runs no kernel.
import { readFileSync } from 'node:fs';
import { detLn } from './det-math.js';
import { EfficiencyGrid } from './interp.js';
import { parsePowerProfile, type PowerProfile } from './power.js';
import { FAMILIES, FAMILY_SPECS, keyText, type ConfigValues, type Family, type Peaks } from './op-work.js';

export const PROFILE_SCHEMA = 'stratos-profile/1';

export interface ProfileTable {
  readonly family: Family;
  readonly config: ConfigValues;
  readonly axes: readonly { readonly name: string; readonly offset: number; readonly values: readonly number[] }[];
  /** Row-major over `axes` (last axis fastest); null where the grid point was not measured. */
  readonly efficiency: readonly (number | null)[];
}

export interface ErrorStats {
  readonly median: number;
  readonly p90: number;
  readonly n: number;
}

export interface ProfileFit {
  readonly method: string;
  /** Leave-one-out relative time error per family over interior grid points (the goal: median ≤ 3%, p90 ≤ 10%). */
  readonly looError: Readonly<Record<string, ErrorStats>>;
  /** The same for grid-edge points, predicted by clamping (what happens beyond the grid). */
  readonly looEdgeError: Readonly<Record<string, ErrorStats>>;
  /** Relative time error on off-grid samples held back from the fit. */
  readonly holdoutError: Readonly<Record<string, ErrorStats>>;
  /** Grid points whose time was lowered to a larger shape's (monotone padding), per family. */
  readonly padded?: Readonly<Record<string, { readonly points: number; readonly of: number; readonly maxTimeReduction: number }>>;
}

export interface AllReduceProfile {
  readonly latencyUs: number;
  readonly bytesPerS: number;
}

export interface Profile {
  readonly schema: typeof PROFILE_SCHEMA;
  readonly name: string;
  readonly gpu: string;
  readonly derived: boolean;
  readonly peaks: Peaks;
  /** Per-step host overhead of the engine loop, measured; null until the engine exists. */
  readonly hostOverheadUs: number | null;
  /** Tensor-parallel all-reduce, measured; null when the profile was measured on one GPU. */
  readonly allReduce: AllReduceProfile | null;
  /**
   * How the GPU's power management speeds up compute-bound work below its power cap
   * (sim/cost/power.ts), from the power microbenchmark; absent or null: not measured.
   */
  readonly power?: PowerProfile | null;
  readonly provenance: Readonly<Record<string, unknown>>;
  readonly fit: ProfileFit;
  readonly tables: readonly ProfileTable[];
}

export class ProfileError extends Error {
  readonly code = 'profile' as const;
  constructor(message: string) {
    super(message);
    this.name = 'ProfileError';
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks a parsed profile, naming the first problem with its key and value. */
export function parseProfile(raw: unknown, source = 'profile'): Profile {
  const bad = (key: string, value: unknown, want: string): never => {
    throw new ProfileError(`${source}: ${key} = ${JSON.stringify(value)?.slice(0, 80)}: ${want}`);
  };
  if (!isObj(raw)) bad('(root)', raw, 'must be a JSON object');
  const r = raw as Record<string, unknown>;
  if (r.schema !== PROFILE_SCHEMA) bad('schema', r.schema, `must be "${PROFILE_SCHEMA}"`);
  if (typeof r.name !== 'string' || r.name === '') bad('name', r.name, 'must be a non-empty string');
  if (typeof r.gpu !== 'string' || r.gpu === '') bad('gpu', r.gpu, 'must be a non-empty string');
  if (typeof r.derived !== 'boolean') bad('derived', r.derived, 'must be true or false');
  if (!isObj(r.peaks)) bad('peaks', r.peaks, 'must be an object');
  const peaks = r.peaks as Record<string, unknown>;
  for (const k of ['memoryBytesPerS', 'bf16FlopsPerS', 'pcieBytesPerS', 'hostBytesPerS']) {
    if (typeof peaks[k] !== 'number' || !((peaks[k] as number) > 0)) bad(`peaks.${k}`, peaks[k], 'must be a number > 0');
  }
  if (r.hostOverheadUs !== null && !(typeof r.hostOverheadUs === 'number' && r.hostOverheadUs >= 0)) bad('hostOverheadUs', r.hostOverheadUs, 'must be null or a number >= 0');
  if (r.allReduce !== null) {
    if (!isObj(r.allReduce)) bad('allReduce', r.allReduce, 'must be null or { latencyUs, bytesPerS }');
    const a = r.allReduce as Record<string, unknown>;
    if (typeof a.latencyUs !== 'number' || a.latencyUs < 0) bad('allReduce.latencyUs', a.latencyUs, 'must be a number >= 0');
    if (typeof a.bytesPerS !== 'number' || a.bytesPerS <= 0) bad('allReduce.bytesPerS', a.bytesPerS, 'must be a number > 0');
  }
  if (r.power !== undefined && r.power !== null) parsePowerProfile(r.power, source);
  if (!isObj(r.provenance)) bad('provenance', r.provenance, 'must be an object');
  if (!isObj(r.fit)) bad('fit', r.fit, 'must be an object');
  if (!Array.isArray(r.tables) || r.tables.length === 0) bad('tables', r.tables, 'must be a non-empty array');
  (r.tables as unknown[]).forEach((t, i) => {
    const key = `tables[${i}]`;
    if (!isObj(t)) bad(key, t, 'must be an object');
    const tt = t as Record<string, unknown>;
    if (!FAMILIES.includes(tt.family as Family)) bad(`${key}.family`, tt.family, `must be one of ${FAMILIES.join(', ')}`);
    const spec = FAMILY_SPECS[tt.family as Family];
    if (!isObj(tt.config)) bad(`${key}.config`, tt.config, 'must be an object');
    for (const ck of spec.configKeys) {
      const v = (tt.config as Record<string, unknown>)[ck];
      if (typeof v !== 'number' && typeof v !== 'string') bad(`${key}.config.${ck}`, v, 'must be a number or a string');
    }
    if (!Array.isArray(tt.axes) || tt.axes.length !== spec.axes.length) bad(`${key}.axes`, tt.axes, `must list the axes ${spec.axes.map((a) => a.name).join(', ')}`);
    (tt.axes as unknown[]).forEach((axis, a) => {
      const ak = `${key}.axes[${a}]`;
      if (!isObj(axis) || axis.name !== spec.axes[a].name) bad(`${ak}.name`, isObj(axis) ? axis.name : axis, `must be "${spec.axes[a].name}"`);
      const ax = axis as Record<string, unknown>;
      if (typeof ax.offset !== 'number' || ax.offset < 0) bad(`${ak}.offset`, ax.offset, 'must be a number >= 0');
      if (!Array.isArray(ax.values) || ax.values.length === 0 || !ax.values.every((v) => typeof v === 'number' && v + (ax.offset as number) > 0)) {
        bad(`${ak}.values`, ax.values, 'must be a non-empty array of numbers with value + offset > 0');
      }
    });
    if (!Array.isArray(tt.efficiency)) bad(`${key}.efficiency`, tt.efficiency, 'must be an array');
    (tt.efficiency as unknown[]).forEach((e, j) => {
      if (e !== null && !(typeof e === 'number' && e > 0 && Number.isFinite(e))) bad(`${key}.efficiency[${j}]`, e, 'must be null or a finite number > 0');
    });
  });
  return raw as unknown as Profile;
}

/** Reads and checks a profile file; errors name the file and what is wrong with it. */
export function loadProfile(path: string): Profile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ProfileError(`cannot read profile ${path}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ProfileError(`profile ${path} is not valid JSON: ${(err as Error).message}`);
  }
  return parseProfile(raw, path);
}

export interface CompiledTable {
  readonly table: ProfileTable;
  readonly grid: EfficiencyGrid;
}

/** How a config asked for by the cost model was answered: the exact table or the nearest one. */
export interface TableMatch extends CompiledTable {
  readonly asked: string;
  readonly used: string;
  readonly exact: boolean;
}

/** A profile's tables compiled for lookup by family and config. */
export class CompiledProfile {
  private readonly byFamily = new Map<Family, CompiledTable[]>();

  constructor(readonly profile: Profile) {
    profile.tables.forEach((table, i) => {
      let grid: EfficiencyGrid;
      try {
        grid = new EfficiencyGrid(table.axes, table.efficiency);
      } catch (err) {
        throw new ProfileError(`${profile.name}: tables[${i}] (${table.family} ${configText(table.family, table.config)}): ${(err as Error).message}`);
      }
      const list = this.byFamily.get(table.family) ?? [];
      list.push({ table, grid });
      this.byFamily.set(table.family, list);
    });
  }

  has(family: Family): boolean {
    return this.byFamily.has(family);
  }

  /**
   * The table for `config`: the exact one, else the one nearest in Σ|ln ratio| over the numeric
   * config keys among those whose string keys match (ties: the first in the profile). Null when
   * the profile has no table of the family with matching string keys.
   */
  match(family: Family, config: ConfigValues): TableMatch | null {
    const list = this.byFamily.get(family);
    if (!list) return null;
    const keys = FAMILY_SPECS[family].configKeys;
    let best: CompiledTable | null = null;
    let bestDist = Infinity;
    for (const entry of list) {
      let dist = 0;
      let ok = true;
      for (const k of keys) {
        const a = config[k];
        const b = entry.table.config[k];
        if (typeof a === 'string' || typeof b === 'string') {
          if (a !== b) ok = false;
        } else dist += a > 0 && b > 0 ? Math.abs(detLn(a / b)) : a === b ? 0 : Infinity;
      }
      if (ok && dist < bestDist) {
        bestDist = dist;
        best = entry;
      }
    }
    if (!best) return null;
    return { ...best, asked: configText(family, config), used: configText(family, best.table.config), exact: bestDist === 0 };
  }
}

export function configText(family: Family, config: ConfigValues): string {
  return keyText(FAMILY_SPECS[family].configKeys, config);
}
