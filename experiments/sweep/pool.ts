import { parentPort, Worker } from 'node:worker_threads';

/** What a pool runs: `run` in-process, or the worker module (which calls `serveTasks(run)`) on threads. */
export interface PoolJob<T, R> {
  /** The worker module, loaded in each thread through tsx by worker-entry.mjs. */
  readonly workerModule: URL;
  readonly run: (task: T) => R;
  /** Names a task in a failure, e.g. "point 3". */
  readonly describe: (task: T) => string;
}

type WorkerReply<R> = { ok: true; result: R } | { ok: false; error: string };

/**
 * Runs tasks on K worker threads (K = 1 runs in-process, no thread). Results arrive in completion
 * order with the task's position in `tasks`. The first failure stops the pool and rejects with
 * the task and its error.
 */
export async function runTasks<T, R>(tasks: readonly T[], numWorkers: number, job: PoolJob<T, R>, onResult: (r: R, taskIndex: number) => void): Promise<void> {
  if (numWorkers <= 1 || tasks.length <= 1) {
    tasks.forEach((t, i) => onResult(job.run(t), i));
    return;
  }
  const k = Math.min(numWorkers, tasks.length);
  let next = 0;
  const workers: Worker[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let running = 0;
      let failed = false;
      for (let i = 0; i < k; i++) {
        const w = new Worker(new URL('./worker-entry.mjs', import.meta.url), { workerData: { module: job.workerModule.href } });
        workers.push(w);
        let current = -1; // the index in `tasks` of the task this worker runs
        const feed = (): void => {
          if (failed) return;
          if (next >= tasks.length) {
            if (running === 0) resolve();
            return;
          }
          running++;
          current = next++;
          w.postMessage(tasks[current]);
        };
        w.on('message', (msg: WorkerReply<R>) => {
          running--;
          if (!msg.ok) {
            failed = true;
            reject(new Error(`${job.describe(tasks[current])} failed: ${msg.error}`));
            return;
          }
          try {
            onResult(msg.result, current);
          } catch (e) {
            failed = true;
            reject(e as Error);
            return;
          }
          feed();
        });
        w.on('error', (e) => {
          failed = true;
          reject(e);
        });
        feed();
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** The worker side: runs each task it is sent, one at a time, and posts the result (or the error) back. */
export function serveTasks<T, R>(run: (task: T) => R): void {
  if (parentPort === null) throw new Error('serveTasks runs only in a worker thread (see runTasks)');
  const port = parentPort;
  port.on('message', (task: T) => {
    try {
      port.postMessage({ ok: true, result: run(task) } satisfies WorkerReply<R>);
    } catch (e) {
      port.postMessage({ ok: false, error: (e as Error).stack ?? String(e) } satisfies WorkerReply<R>);
    }
  });
}
