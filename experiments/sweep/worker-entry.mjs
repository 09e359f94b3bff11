// Worker-thread bootstrap for pool.ts: registers tsx's TypeScript loader in this thread, then loads
// the worker module named in workerData (one that calls serveTasks). (`execArgv: ['--import', 'tsx']`
// is not honoured for worker threads on Node 20.)
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.module);
