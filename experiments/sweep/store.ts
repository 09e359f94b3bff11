import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PointRecord } from './point.js';
import { SweepError, type Overrides, type SweepSpec } from './spec.js';

// The sweep directory: sweep.json (the expanded spec), points/<id>.json (one per finished point,
// written atomically: temp file, then rename, so a killed run never leaves half a file) and
// results.csv.

export interface SweepManifest {
  readonly stratos_output: 'sweep';
  readonly spec_hash: string;
  readonly keys: string[];
  readonly base: Record<string, unknown>;
  readonly points: { index: number; id: string; overrides: Overrides }[];
}

export function manifestOf(spec: SweepSpec): SweepManifest {
  return {
    stratos_output: 'sweep',
    spec_hash: spec.hash,
    keys: spec.keys,
    base: spec.base,
    points: spec.expanded.map((p) => ({ index: p.index, id: p.id, overrides: p.overrides })),
  };
}

export function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

export function readManifest(dir: string): SweepManifest {
  const file = join(dir, 'sweep.json');
  if (!existsSync(file)) throw new SweepError(`${dir}: no sweep.json here (not a sweep output directory)`);
  return JSON.parse(readFileSync(file, 'utf8')) as SweepManifest;
}

/** Creates DIR (or checks that it holds this same sweep, for resume) and writes sweep.json. */
export function openSweepDir(dir: string, manifest: SweepManifest): void {
  mkdirSync(join(dir, 'points'), { recursive: true });
  const file = join(dir, 'sweep.json');
  if (existsSync(file)) {
    const old = readManifest(dir);
    if (old.spec_hash !== manifest.spec_hash) {
      throw new SweepError(`${dir} holds a different sweep (spec hash ${old.spec_hash}, this config is ${manifest.spec_hash}); use another --out, or delete the directory`);
    }
    return;
  }
  writeAtomic(file, JSON.stringify(manifest, null, 2) + '\n');
}

export function pointFile(dir: string, id: string): string {
  return join(dir, 'points', `${id}.json`);
}

export function hasPoint(dir: string, id: string): boolean {
  return existsSync(pointFile(dir, id));
}

export function writePoint(dir: string, record: PointRecord): void {
  writeAtomic(pointFile(dir, record.id), JSON.stringify(record) + '\n');
}

export function readPoint(dir: string, id: string): PointRecord {
  return JSON.parse(readFileSync(pointFile(dir, id), 'utf8')) as PointRecord;
}
