import { parentPort } from 'node:worker_threads';
import type { ScenarioOptions } from './scenario.js';
import { runStack } from './run.js';

// Worker-thread entry for `npm start`: runs the stacks it is sent, one at a time.
if (parentPort === null) throw new Error('experiments/stratos/worker.ts runs only as a worker thread');
const port = parentPort;
port.on('message', (o: ScenarioOptions) => {
  try {
    port.postMessage({ ok: true, stack: o.stack, summary: runStack(o) });
  } catch (e) {
    port.postMessage({ ok: false, stack: o.stack, error: (e as Error).stack ?? String(e) });
  }
});
