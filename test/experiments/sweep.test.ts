import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mergeSweeps, runSweep } from '../../experiments/sweep/run.js';
import { parseShard } from '../../experiments/sweep/shard.js';
import { parseSweepSpec, pointId } from '../../experiments/sweep/spec.js';
import { TINY_SWEEP, tempDir } from './fixtures.js';

describe('sweep spec', () => {
  it('expands the grid as an odometer (last key fastest), then the explicit points', () => {
    const spec = parseSweepSpec(TINY_SWEEP);
    expect(spec.expanded.length).toBe(2 * 2 * 2 + 2);
    expect(spec.expanded.slice(0, 3).map((p) => p.overrides)).toEqual([
      { policy: 'static', 'workload.rate': 2, 'kv.pageSizeTokens': 16 },
      { policy: 'static', 'workload.rate': 2, 'kv.pageSizeTokens': 32 },
      { policy: 'static', 'workload.rate': 6, 'kv.pageSizeTokens': 16 },
    ]);
    expect(spec.expanded[8].overrides).toEqual({ 'lora.eviction': 'lfu' });
    expect(spec.keys).toEqual(['policy', 'workload.rate', 'kv.pageSizeTokens', 'lora.eviction', 'replicas']);
    expect(spec.expanded[9].config.replicas).toBe(2);
  });

  it('gives each point an id from its canonical overrides, independent of key order and position', () => {
    expect(pointId({ a: 1, b: 'x' })).toBe(pointId({ b: 'x', a: 1 }));
    expect(pointId({ a: 1 })).not.toBe(pointId({ a: 2 }));
    expect(parseSweepSpec(TINY_SWEEP).hash).toBe(parseSweepSpec(structuredClone(TINY_SWEEP)).hash);
  });

  it('validates every point before running: errors name the key, the value and what is allowed', () => {
    expect(() => parseSweepSpec({ ...TINY_SWEEP, grid: { policy: ['static', 'fifo'] } })).toThrow(/policy = "fifo": allowed: static, continuous, chunked/);
    expect(() => parseSweepSpec({ base: {}, grid: { 'kv.pageSize': [16] } })).toThrow(/kv\.pageSize: unknown key; allowed keys: .*pageSizeTokens/);
    expect(() => parseSweepSpec({ base: {}, grid: { 'workload.rate': [] } })).toThrow(/grid\.workload\.rate = \[\]: must be a non-empty list/);
    expect(() => parseSweepSpec({ base: {}, gird: {} })).toThrow(/gird: unknown key; allowed keys: base, grid, points/);
    expect(() => parseSweepSpec({ points: [{ seed: 1 }, { seed: 1 }] })).toThrow(/point 1 \(seed=1\) repeats point 0/);
  });

  it('parses shards I/N and rejects others', () => {
    expect(parseShard('2/4')).toEqual({ index: 2, count: 4 });
    expect(() => parseShard('4/4')).toThrow(/expected I\/N with 0 <= I < N/);
    expect(() => parseShard('x')).toThrow(/--shard = "x"/);
  });
});

describe('sweep runs', () => {
  it('sharded runs merged give results.csv byte for byte equal to one unsharded run (2 worker threads)', async () => {
    const spec = parseSweepSpec(TINY_SWEEP);
    const whole = tempDir('whole');
    const r = await runSweep(spec, { outDir: whole, workers: 2 });
    expect(r).toMatchObject({ total: 10, ran: 10, skipped: 0 });
    const shards = [0, 1, 2].map((i) => tempDir(`shard${i}`));
    for (const [i, dir] of shards.entries()) {
      const s = await runSweep(spec, { outDir: dir, shard: { index: i, count: 3 } });
      expect(s.total).toBe([4, 3, 3][i]);
    }
    const merged = tempDir('merged');
    expect(mergeSweeps(shards, merged).points).toBe(10);
    const csv = readFileSync(join(whole, 'results.csv'), 'utf8');
    expect(readFileSync(join(merged, 'results.csv'), 'utf8')).toBe(csv);
    const lines = csv.trim().split('\n');
    expect(lines.length).toBe(11);
    expect(lines[0]).toMatch(/^point_index,point_id,policy,workload\.rate,kv\.pageSizeTokens,lora\.eviction,replicas,requests,completed,rejected,throughput_output_tokens_per_s/);
    expect(lines.slice(1).map((l) => Number(l.split(',')[0]))).toEqual([...Array(10).keys()]);
    expect(readdirSync(join(whole, 'points')).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('resumes: finished points are skipped, a missing one is run again, and merge names missing points', async () => {
    const spec = parseSweepSpec({ ...TINY_SWEEP, points: [] });
    const dir = tempDir('resume');
    await runSweep(spec, { outDir: dir });
    const before = readFileSync(join(dir, 'results.csv'), 'utf8');
    const again = await runSweep(spec, { outDir: dir });
    expect(again).toMatchObject({ ran: 0, skipped: 8 });
    rmSync(join(dir, 'points', `${spec.expanded[3].id}.json`));
    const third = await runSweep(spec, { outDir: dir });
    expect(third).toMatchObject({ ran: 1, skipped: 7 });
    expect(readFileSync(join(dir, 'results.csv'), 'utf8')).toBe(before);
    const other = parseSweepSpec({ ...TINY_SWEEP, points: [], grid: { policy: ['static'] } });
    await expect(runSweep(other, { outDir: dir })).rejects.toThrow(/holds a different sweep/);
    const half = tempDir('half');
    await runSweep(spec, { outDir: half, shard: { index: 0, count: 2 } });
    expect(() => mergeSweeps([half], tempDir('m'))).toThrow(/4 of 8 points have no result/);
  });
});
