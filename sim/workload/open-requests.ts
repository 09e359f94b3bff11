import type { WorkloadRequest } from './types.js';

/**
 * The workload requests of a simulation by dense id, kept only while they are open: a request is
 * added when it arrives and released when it ends (completed, rejected, aborted or failed), after
 * which nothing reads it (every outcome is in RequestRecords). A fleet-day has millions of
 * requests; keeping each one's object to the end held ~0.4 GB of the heap, which every major
 * collection walked (full optimized day, old and new tree side by side: 320.4 s -> 300.0 s, heap
 * 1.30 -> 0.86 GB; experiments/stratos/results/bench-fleet.txt).
 */
export class OpenRequests {
  private readonly byId: (WorkloadRequest | undefined)[] = [];

  /** Requests added so far (open or not): the next id. */
  get size(): number {
    return this.byId.length;
  }

  /** Adds the next request; its id is the previous size. */
  add(req: WorkloadRequest): number {
    this.byId.push(req);
    return this.byId.length - 1;
  }

  get(id: number): WorkloadRequest {
    const req = this.byId[id];
    if (req === undefined) throw new Error(`request ${id} ${id < this.byId.length ? 'has ended' : 'was never added'}: its workload request is gone`);
    return req;
  }

  isOpen(id: number): boolean {
    return this.byId[id] !== undefined;
  }

  /** The request ended. Pairs with add; releasing twice is a bug in the caller. */
  release(id: number): void {
    if (this.byId[id] === undefined) throw new Error(`request ${id} released twice (or never added)`);
    this.byId[id] = undefined;
  }
}
