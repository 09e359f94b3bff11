// The engine's request source when requests come over the network: a FIFO the server pushes into
// while the engine runs, and a wait the engine parks on when it has nothing to do.
import type { EngineRequest, EngineRequestSource } from '../engine.js';

export class OnlineSource implements EngineRequestSource {
  private queue: EngineRequest[] = [];
  private head = 0;
  private closed = false;
  private waiter: ((ready: boolean) => void) | null = null;

  /** Queues a request (its arrivalUs is the engine clock's now). Throws once closed. */
  push(request: EngineRequest): void {
    if (this.closed) throw new Error(`online source: request ${request.id} after close`);
    this.queue.push(request);
    this.wake(true);
  }

  /** Removes a queued request the engine has not taken yet; false when it was taken (or never queued). */
  cancel(id: number): boolean {
    for (let i = this.head; i < this.queue.length; i++) {
      if (this.queue[i].id === id) {
        this.queue.splice(i, 1);
        return true;
      }
    }
    return false;
  }

  /** No more requests: the engine returns once it has finished what it has. */
  close(): void {
    this.closed = true;
    this.wake(false);
  }

  get size(): number {
    return this.queue.length - this.head;
  }

  next(): EngineRequest | null {
    if (this.head === this.queue.length) return null;
    const request = this.queue[this.head++];
    // Drop the taken prefix now and then, so a long-running server's queue does not grow.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return request;
  }

  waitForRequest(): Promise<boolean> {
    if (this.head < this.queue.length) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    if (this.waiter !== null) throw new Error('online source: two waits at once');
    return new Promise<boolean>((resolve) => {
      this.waiter = resolve;
    });
  }

  private wake(ready: boolean): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.(ready);
  }
}
