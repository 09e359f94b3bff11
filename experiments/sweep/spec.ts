import { createHash } from 'node:crypto';
import { readConfigFile } from '../config-file.js';
import { parseSimConfig, type SimConfig } from '../../sim/config.js';

// A sweep: `base` (a simulate config) plus `grid` (dotted key -> list of values) and/or `points`
// (explicit list of overrides). Expansion order is part of the contract, because point indices
// decide shards and the row order of results.csv:
//   1. grid points first, as an odometer over the grid keys in the order the file lists them
//      (the LAST key varies fastest, like nested loops with the first key outermost);
//   2. then each entry of `points`, in file order.
// Every point's id is a hash of its canonical overrides (sorted keys), so it does not depend on
// its position; the spec hash (base + expanded overrides) guards resume against a changed sweep.

export type Overrides = Record<string, unknown>;

export interface SweepPoint {
  readonly index: number;
  readonly id: string;
  readonly overrides: Overrides;
  readonly config: SimConfig;
}

export interface SweepSpec {
  readonly base: Record<string, unknown>;
  readonly grid: [string, unknown[]][];
  readonly points: Overrides[];
  /** Swept keys in column order: grid keys, then keys first seen in `points`. */
  readonly keys: string[];
  readonly expanded: SweepPoint[];
  readonly hash: string;
}

export class SweepError extends Error {
  readonly code = 'sweep' as const;
}

/** JSON with object keys sorted at every level: equal values give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

export function pointId(overrides: Overrides): string {
  return createHash('sha256').update(canonicalJson(overrides)).digest('hex').slice(0, 12);
}

/** Sets a dotted key in a (deep-cloned) config object, creating objects on the way. */
export function setDotted(obj: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let o = obj;
  for (const p of parts.slice(0, -1)) {
    if (typeof o[p] !== 'object' || o[p] === null || Array.isArray(o[p])) o[p] = {};
    o = o[p] as Record<string, unknown>;
  }
  o[parts[parts.length - 1]] = value;
}

/** A swept key's value at a point: its override, else the base config's value, else undefined (the schema default). */
export function sweptValue(overrides: Overrides, base: Record<string, unknown>, key: string): unknown {
  if (key in overrides) return overrides[key];
  let v: unknown = base;
  for (const p of key.split('.')) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[p] : undefined;
  return v;
}

export function applyOverrides(base: Record<string, unknown>, overrides: Overrides): Record<string, unknown> {
  const raw = structuredClone(base);
  for (const [k, v] of Object.entries(overrides)) setDotted(raw, k, v);
  return raw;
}

export function describeOverrides(overrides: Overrides): string {
  const parts = Object.entries(overrides).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return parts.length > 0 ? parts.join(' ') : '(base)';
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Validates and expands a raw sweep object; every point's config is parsed before anything runs. */
export function parseSweepSpec(raw: unknown, source = 'sweep config'): SweepSpec {
  if (!isPlainObject(raw)) throw new SweepError(`${source}: must be an object with base, grid and/or points`);
  for (const k of Object.keys(raw)) {
    if (!['base', 'grid', 'points'].includes(k)) throw new SweepError(`${source}: ${k}: unknown key; allowed keys: base, grid, points`);
  }
  const base = raw.base ?? {};
  if (!isPlainObject(base)) throw new SweepError(`${source}: base = ${JSON.stringify(base)}: must be an object (a simulate config)`);
  const gridRaw = raw.grid ?? {};
  if (!isPlainObject(gridRaw)) throw new SweepError(`${source}: grid = ${JSON.stringify(gridRaw)}: must be a map of dotted config key -> list of values`);
  const grid: [string, unknown[]][] = [];
  for (const [k, values] of Object.entries(gridRaw)) {
    if (!Array.isArray(values) || values.length === 0) throw new SweepError(`${source}: grid.${k} = ${JSON.stringify(values)}: must be a non-empty list of values`);
    grid.push([k, values]);
  }
  const pointsRaw = raw.points ?? [];
  if (!Array.isArray(pointsRaw)) throw new SweepError(`${source}: points = ${JSON.stringify(pointsRaw)}: must be a list of override maps`);
  const points: Overrides[] = pointsRaw.map((p, i) => {
    if (!isPlainObject(p)) throw new SweepError(`${source}: points[${i}] = ${JSON.stringify(p)}: must be a map of dotted config key -> value`);
    return p;
  });
  const overridesList: Overrides[] = [];
  if (grid.length > 0) {
    const counters = grid.map(() => 0);
    for (;;) {
      overridesList.push(Object.fromEntries(grid.map(([k, vs], j) => [k, vs[counters[j]]])));
      let j = grid.length - 1;
      while (j >= 0 && ++counters[j] === grid[j][1].length) counters[j--] = 0;
      if (j < 0) break;
    }
  }
  overridesList.push(...points);
  if (overridesList.length === 0) overridesList.push({});
  const keys = [...grid.map(([k]) => k)];
  for (const p of points) for (const k of Object.keys(p)) if (!keys.includes(k)) keys.push(k);
  const seen = new Map<string, number>();
  const expanded = overridesList.map((overrides, index) => {
    const id = pointId(overrides);
    const before = seen.get(id);
    if (before !== undefined) throw new SweepError(`${source}: point ${index} (${describeOverrides(overrides)}) repeats point ${before}`);
    seen.set(id, index);
    let config: SimConfig;
    try {
      config = parseSimConfig(applyOverrides(base, overrides), `${source}, point ${index} (${describeOverrides(overrides)})`);
    } catch (e) {
      throw new SweepError((e as Error).message);
    }
    return { index, id, overrides, config };
  });
  const hash = createHash('sha256')
    .update(canonicalJson({ base, points: expanded.map((p) => p.overrides) }))
    .digest('hex')
    .slice(0, 16);
  return { base, grid, points, keys, expanded, hash };
}

export function loadSweepSpec(file: string): SweepSpec {
  let data: unknown;
  try {
    data = readConfigFile(file);
  } catch (e) {
    throw new SweepError((e as Error).message);
  }
  return parseSweepSpec(data, file);
}
