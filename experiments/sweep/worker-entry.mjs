// Worker-thread bootstrap: registers tsx's TypeScript loader in this thread, then loads the
// worker. (`execArgv: ['--import', 'tsx']` is not honoured for worker threads on Node 20.)
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
