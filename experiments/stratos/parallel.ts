import { runTasks, type PoolJob } from '../sweep/pool.js';
import { runStack } from './run.js';
import type { ScenarioOptions } from './scenario.js';

const STACK_JOB: PoolJob<ScenarioOptions, Record<string, unknown>> = {
  workerModule: new URL('./worker.ts', import.meta.url),
  run: runStack,
  describe: (o) => `stack ${o.stack}`,
};

/**
 * Runs independent stacks at once on the sweep's worker pool, one thread each (in-process when
 * `parallel` is false). Results come back in the order of `runs`; the first failure rejects with
 * the stack's error.
 */
export async function runStacks(runs: readonly ScenarioOptions[], parallel: boolean): Promise<Record<string, unknown>[]> {
  const summaries = new Array<Record<string, unknown>>(runs.length);
  await runTasks(runs, parallel ? runs.length : 1, STACK_JOB, (summary, i) => {
    summaries[i] = summary;
  });
  return summaries;
}
