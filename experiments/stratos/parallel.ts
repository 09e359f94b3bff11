import { Worker } from 'node:worker_threads';
import { runStack } from './run.js';
import type { ScenarioOptions } from './scenario.js';

/**
 * Runs independent stacks at once, one worker thread each (in-process when `parallel` is false).
 * Results come back in the order of `runs`; the first failure rejects with the stack's error.
 */
export async function runStacks(runs: readonly ScenarioOptions[], parallel: boolean): Promise<Record<string, unknown>[]> {
  if (!parallel || runs.length <= 1) return runs.map((o) => runStack(o));
  const workers: Worker[] = [];
  try {
    return await Promise.all(
      runs.map(
        (o) =>
          new Promise<Record<string, unknown>>((resolve, reject) => {
            const w = new Worker(new URL('./worker-entry.mjs', import.meta.url));
            workers.push(w);
            w.on('message', (msg: { ok: true; summary: Record<string, unknown> } | { ok: false; error: string }) => {
              if (msg.ok) resolve(msg.summary);
              else reject(new Error(`stack ${o.stack} failed: ${msg.error}`));
            });
            w.on('error', reject);
            w.postMessage(o);
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
