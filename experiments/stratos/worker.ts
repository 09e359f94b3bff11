import { serveTasks } from '../sweep/pool.js';
import { runStack } from './run.js';

// Worker-thread module of `npm start` (the sweep's pool): runs the stacks it is sent, one at a time.
serveTasks(runStack);
