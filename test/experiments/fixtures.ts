import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A tiny sweep (a few seconds of traffic per point) for tests. */
export const TINY_SWEEP = {
  base: { model: 'llama2-7b', gpu: 'h200', workload: { durationS: 3, outputTokens: 'uniform:10:40' } },
  grid: { policy: ['static', 'continuous'], 'workload.rate': [2, 6], 'kv.pageSizeTokens': [16, 32] },
  points: [{ 'lora.eviction': 'lfu' }, { replicas: 2, 'workload.rate': 6 }],
};

/** One 7B pool with GPU pricing, over load and pool size: every point has `cost` in summary.json (the "$/M tokens vs SLA" chart). */
const pool7b = (replicas: number): Record<string, unknown>[] => [{ name: '7b', model: 'llama2-7b', replicas }];
export const FLEET_SWEEP = {
  base: {
    gpu: 'h200',
    workload: { durationS: 3, outputTokens: 'uniform:10:40' },
    fleet: { pools: pool7b(1), tenants: [{ name: 'acme', plan: 'standard', tier: '7b' }], pricing: { gpuHourUsd: { h200: 6 } } },
  },
  grid: { 'workload.rate': [4, 12], 'fleet.pools': [pool7b(1), pool7b(2)] },
};

export function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `stratos-${name}-`));
}
