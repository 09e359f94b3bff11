import { parentPort } from 'node:worker_threads';
import { runPoint, type PointTask } from './point.js';

// Worker-thread entry: runs the points it is sent, one at a time, and posts each record back.
if (parentPort === null) throw new Error('experiments/sweep/worker.ts runs only as a worker thread');
const port = parentPort;
port.on('message', (task: PointTask) => {
  try {
    port.postMessage({ ok: true, record: runPoint(task) });
  } catch (e) {
    port.postMessage({ ok: false, index: task.index, error: (e as Error).stack ?? String(e) });
  }
});
