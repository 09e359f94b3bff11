import type { PolicyKind } from '../types.js';
import { ChunkedScheduler } from './chunked.js';
import type { SchedulerConfig } from './config.js';
import { ContinuousScheduler } from './continuous.js';
import type { Scheduler } from './scheduler.js';
import { StaticScheduler } from './static.js';

const SCHEDULERS: Record<PolicyKind, new (config: SchedulerConfig) => Scheduler> = {
  static: StaticScheduler,
  continuous: ContinuousScheduler,
  chunked: ChunkedScheduler,
};

export const POLICY_KINDS = Object.keys(SCHEDULERS) as PolicyKind[];

/** Builds the scheduler (with its KV allocator and LoRA cache) that `config.policy` names. */
export function createScheduler(config: SchedulerConfig): Scheduler {
  const constructor = SCHEDULERS[config.policy];
  if (constructor === undefined) {
    throw new Error(`policy = ${String(config.policy)}: must be one of ${POLICY_KINDS.join(', ')}`);
  }
  return new constructor(config);
}
