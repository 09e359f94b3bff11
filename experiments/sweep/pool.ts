import { Worker } from 'node:worker_threads';
import { runPoint, type PointRecord, type PointTask } from './point.js';

/**
 * Runs tasks on K worker threads (K = 1 runs in-process, no thread). Each worker loads the
 * TypeScript sources through tsx (worker-entry.mjs). Records arrive in completion order; callers
 * sort by point index. The first failure stops the pool and rejects with the point and its error.
 */
export async function runTasks(tasks: readonly PointTask[], numWorkers: number, onRecord: (r: PointRecord) => void): Promise<void> {
  if (numWorkers <= 1 || tasks.length <= 1) {
    for (const t of tasks) onRecord(runPoint(t));
    return;
  }
  const k = Math.min(numWorkers, tasks.length);
  let next = 0;
  const workers: Worker[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let running = 0;
      let failed = false;
      const feed = (w: Worker): void => {
        if (failed) return;
        if (next >= tasks.length) {
          if (running === 0) resolve();
          return;
        }
        running++;
        w.postMessage(tasks[next++]);
      };
      for (let i = 0; i < k; i++) {
        const w = new Worker(new URL('./worker-entry.mjs', import.meta.url));
        workers.push(w);
        w.on('message', (msg: { ok: true; record: PointRecord } | { ok: false; index: number; error: string }) => {
          running--;
          if (!msg.ok) {
            failed = true;
            reject(new Error(`point ${msg.index} failed: ${msg.error}`));
            return;
          }
          try {
            onRecord(msg.record);
          } catch (e) {
            failed = true;
            reject(e as Error);
            return;
          }
          feed(w);
        });
        w.on('error', (e) => {
          failed = true;
          reject(e);
        });
        feed(w);
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
