import { join } from 'node:path';
import { resultsCsv } from './csv.js';
import { runPoint, type PointRecord, type PointTask } from './point.js';
import { runTasks, type PoolJob } from './pool.js';
import { inShard, type Shard } from './shard.js';
import { applyOverrides, SweepError, type SweepSpec } from './spec.js';
import { hasPoint, manifestOf, openSweepDir, readManifest, readPoint, writeAtomic, writePoint } from './store.js';
import { mkdirSync } from 'node:fs';

const POINT_JOB: PoolJob<PointTask, PointRecord> = {
  workerModule: new URL('./worker.ts', import.meta.url),
  run: runPoint,
  describe: (t) => `point ${t.index}`,
};

export interface SweepRunOptions {
  readonly outDir: string;
  readonly workers?: number;
  readonly shard?: Shard;
  /** Called once before running (total points of this shard, how many are already done) and after each point. */
  readonly onStart?: (total: number, skipped: number) => void;
  readonly onPoint?: () => void;
}

export interface SweepRunResult {
  readonly total: number;
  readonly skipped: number;
  readonly ran: number;
  readonly csvFile: string;
}

/** Runs the points of a sweep (of one shard), skipping finished ones, then writes results.csv for them. */
export async function runSweep(spec: SweepSpec, opts: SweepRunOptions): Promise<SweepRunResult> {
  const dir = opts.outDir;
  openSweepDir(dir, manifestOf(spec));
  const mine = spec.expanded.filter((p) => opts.shard === undefined || inShard(p.index, opts.shard));
  const todo = mine.filter((p) => !hasPoint(dir, p.id));
  opts.onStart?.(mine.length, mine.length - todo.length);
  const tasks = todo.map((p) => ({ id: p.id, index: p.index, overrides: p.overrides, raw: applyOverrides(spec.base, p.overrides) }));
  await runTasks(tasks, opts.workers ?? 1, POINT_JOB, (record) => {
    writePoint(dir, record);
    opts.onPoint?.();
  });
  const csvFile = join(dir, 'results.csv');
  writeAtomic(csvFile, resultsCsv(spec.keys, mine.map((p) => readPoint(dir, p.id)), spec.base));
  return { total: mine.length, skipped: mine.length - todo.length, ran: todo.length, csvFile };
}

/**
 * Joins shard directories (or one shared directory) into `outDir`: copies every point file,
 * checks that all shards ran the same sweep and that no point is missing, and writes
 * results.csv over all points, byte for byte what one unsharded run writes.
 */
export function mergeSweeps(inDirs: readonly string[], outDir: string): { points: number } {
  if (inDirs.length === 0) throw new SweepError('sweep merge: name at least one shard directory');
  const manifests = inDirs.map((d) => readManifest(d));
  const first = manifests[0];
  manifests.forEach((m, i) => {
    if (m.spec_hash !== first.spec_hash) throw new SweepError(`sweep merge: ${inDirs[i]} ran another sweep (spec hash ${m.spec_hash}, ${inDirs[0]} has ${first.spec_hash})`);
  });
  mkdirSync(join(outDir, 'points'), { recursive: true });
  openSweepDir(outDir, first);
  const missing: string[] = [];
  const records = first.points.map((p) => {
    const from = inDirs.find((d) => hasPoint(d, p.id));
    if (from === undefined) {
      missing.push(`${p.index} (${p.id})`);
      return null;
    }
    const record = readPoint(from, p.id);
    if (!hasPoint(outDir, p.id)) writePoint(outDir, record);
    return record;
  });
  if (missing.length > 0) {
    throw new SweepError(`sweep merge: ${missing.length} of ${first.points.length} points have no result in ${inDirs.join(', ')}: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''}; run the missing shards (they resume) and merge again`);
  }
  writeAtomic(join(outDir, 'results.csv'), resultsCsv(first.keys, records as NonNullable<(typeof records)[number]>[], first.base));
  return { points: records.length };
}
