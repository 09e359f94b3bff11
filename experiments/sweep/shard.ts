import { SweepError } from './spec.js';

/**
 * Shard I/N takes the points whose index % N == I (round-robin, so every shard gets a similar
 * mix of cheap and expensive points). Deterministic: any batch system can run shard I as job I
 * (e.g. a Kubernetes Indexed Job with --shard $JOB_COMPLETION_INDEX/N).
 */
export interface Shard {
  readonly index: number;
  readonly count: number;
}

export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (m === null) throw new SweepError(`--shard = ${JSON.stringify(text)}: expected I/N with 0 <= I < N, e.g. 0/4`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index >= count) throw new SweepError(`--shard = ${JSON.stringify(text)}: expected I/N with 0 <= I < N, e.g. 0/4`);
  return { index, count };
}

export function inShard(pointIndex: number, shard: Shard): boolean {
  return pointIndex % shard.count === shard.index;
}
