import { runPoint } from './point.js';
import { serveTasks } from './pool.js';

// Worker-thread module of a sweep (pool.ts): runs the points it is sent, one at a time.
serveTasks(runPoint);
