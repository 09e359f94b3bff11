import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A tiny sweep (a few seconds of traffic per point) for tests. */
export const TINY_SWEEP = {
  base: { model: 'llama2-7b', gpu: 'h200', workload: { durationS: 3, outputTokens: 'uniform:10:40' } },
  grid: { policy: ['static', 'continuous'], 'workload.rate': [2, 6], 'kv.pageSizeTokens': [16, 32] },
  points: [{ 'lora.eviction': 'lfu' }, { replicas: 2, 'workload.rate': 6 }],
};

export function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `stratos-${name}-`));
}
